//! The "golden" table: one row per call and one per step and expectation, for spreadsheets
//! and other tools.

use serde::Serialize;

use super::RunResult;
use crate::judge::Verdict;
use crate::psychometric::Estimate;

/// One row of the table. A call's row carries its outcome and metrics; its steps' and
/// expectations' rows carry their verdict and justification.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ExportRow {
    pub suite: String,
    pub test: String,
    pub condition: String,
    pub run: u32,
    pub seed: u64,
    pub call_id: String,
    /// `call`, `step`, `expectation`, `condition` (a test's calls under one condition: its run
    /// is 0, its result the calls passed as `n/m`, its figures the noise KPIs), or `threshold`
    /// (a test's task threshold under a profile: its condition is the profile, its result the
    /// threshold in dB, or `below`/`above` the range tried, its justification the interval).
    pub kind: &'static str,
    /// The step's goal or the expectation's name; empty for a call.
    pub name: String,
    /// The call's outcome or the verdict.
    pub result: String,
    pub justification: String,
    pub latency_p50_ms: Option<f64>,
    pub latency_p95_ms: Option<f64>,
    pub wer: Option<f64>,
    pub hearing_drift: Option<f64>,
    pub duration_s: Option<f64>,
    pub turns: Option<u32>,
    /// The noise KPIs: a call's own counts, or a `condition` row's sums over its calls.
    pub no_answers: Option<u32>,
    pub false_barge_ins: Option<u32>,
    pub bursts: Option<u32>,
    pub asked_to_repeat: Option<u32>,
    pub caller_repeats: Option<u32>,
    /// A call's: 1 when abandoned; a `condition` row's: the calls abandoned.
    pub abandoned: Option<u32>,
    /// A `condition` row's WER over the same test's clean calls', and its median latency minus
    /// theirs.
    pub wer_vs_clean: Option<f64>,
    pub latency_p50_vs_clean_ms: Option<f64>,
}

fn verdict(v: Verdict) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

/// Every row of `results`, call by call.
pub fn rows(results: &[RunResult]) -> Vec<ExportRow> {
    let mut out = Vec::new();
    for r in results {
        let row = |kind, name: String, result: String, justification: String| ExportRow {
            suite: r.suite.clone(),
            test: r.test.clone(),
            condition: r.condition.label(),
            run: r.run,
            seed: r.seed,
            call_id: r.call_id.clone(),
            kind,
            name,
            result,
            justification,
            ..ExportRow::default()
        };
        let outcome = serde_json::to_value(r.outcome)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        let why = if r.outcome == super::Outcome::Passed {
            String::new()
        } else {
            r.why()
        };
        out.push(ExportRow {
            latency_p50_ms: r.metrics.latency_p50_ms,
            latency_p95_ms: r.metrics.latency_p95_ms,
            wer: r.metrics.wer,
            hearing_drift: r.metrics.hearing_drift,
            duration_s: Some(r.metrics.duration_s),
            turns: Some(r.metrics.turns),
            no_answers: r.metrics.no_answers,
            false_barge_ins: r.metrics.false_barge_ins,
            bursts: r.metrics.bursts,
            asked_to_repeat: r.metrics.asked_to_repeat,
            caller_repeats: r.metrics.caller_repeats,
            abandoned: r.metrics.abandoned.map(u32::from),
            ..row("call", String::new(), outcome, why)
        });
        for s in &r.steps {
            out.push(row(
                "step",
                s.goal.clone(),
                verdict(s.verdict),
                s.justification.clone(),
            ));
        }
        for e in &r.expectations {
            out.push(row(
                "expectation",
                e.name.clone(),
                verdict(e.judgement.verdict),
                e.judgement.justification.clone(),
            ));
        }
    }
    let suite = results.first().map(|r| r.suite.clone()).unwrap_or_default();
    if super::kpi::noisy(results) {
        for k in super::kpi::by_test(results) {
            out.push(ExportRow {
                suite: suite.clone(),
                test: k.test,
                condition: k.condition,
                kind: "condition",
                result: format!("{}/{}", k.passed, k.calls),
                latency_p50_ms: k.latency_p50_ms,
                wer: k.wer,
                no_answers: k.no_answers,
                false_barge_ins: k.false_barge_ins,
                bursts: k.bursts,
                asked_to_repeat: k.asked_to_repeat,
                caller_repeats: k.caller_repeats,
                abandoned: k.abandoned,
                wer_vs_clean: k.wer_vs_clean,
                latency_p50_vs_clean_ms: k.latency_p50_vs_clean_ms,
                ..ExportRow::default()
            });
        }
    }
    for t in super::threshold::of(results) {
        let result = match &t.estimate {
            Estimate::Found(f) => format!("{:.1}", f.threshold_db),
            Estimate::Below { .. } => "below".into(),
            Estimate::Above { .. } => "above".into(),
            Estimate::Nothing => "not_measured".into(),
        };
        out.push(ExportRow {
            suite: suite.clone(),
            test: t.test.clone(),
            condition: t.profile.clone(),
            kind: "threshold",
            name: format!("task threshold at {:.0}%", t.target * 100.0),
            result,
            justification: format!("{} over {} calls", t.describe(), t.calls),
            turns: Some(t.calls),
            ..ExportRow::default()
        });
    }
    out
}

/// CSV with a header row.
pub fn csv(results: &[RunResult]) -> Result<String, String> {
    let mut writer = csv::Writer::from_writer(Vec::new());
    for row in rows(results) {
        writer.serialize(row).map_err(|e| e.to_string())?;
    }
    let bytes = writer.into_inner().map_err(|e| e.to_string())?;
    String::from_utf8(bytes).map_err(|e| e.to_string())
}

/// A JSON array of the same rows.
pub fn json(results: &[RunResult]) -> Result<String, String> {
    serde_json::to_string_pretty(&rows(results)).map_err(|e| e.to_string())
}
