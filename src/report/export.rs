//! The "golden" table: one row per call and one per step and expectation, for spreadsheets
//! and other tools.

use serde::Serialize;

use super::RunResult;
use crate::judge::Verdict;
use crate::psychometric::Estimate;

/// One row of the table. A call's row carries its outcome and metrics; its steps' and
/// expectations' rows carry their verdict and justification.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ExportRow {
    pub suite: String,
    pub test: String,
    pub condition: String,
    pub run: u32,
    pub seed: u64,
    pub call_id: String,
    /// `call`, `step`, `expectation`, or `threshold` (a test's task threshold under a profile:
    /// its condition is the profile, its result the threshold in dB, or `below`/`above` the
    /// range tried, its justification the interval).
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
            latency_p50_ms: None,
            latency_p95_ms: None,
            wer: None,
            hearing_drift: None,
            duration_s: None,
            turns: None,
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
    for t in super::threshold::of(results) {
        let result = match &t.estimate {
            Estimate::Found(f) => format!("{:.1}", f.threshold_db),
            Estimate::Below { .. } => "below".into(),
            Estimate::Above { .. } => "above".into(),
            Estimate::Nothing => "not_measured".into(),
        };
        out.push(ExportRow {
            suite: results.first().map(|r| r.suite.clone()).unwrap_or_default(),
            test: t.test.clone(),
            condition: t.profile.clone(),
            run: 0,
            seed: 0,
            call_id: String::new(),
            kind: "threshold",
            name: format!("task threshold at {:.0}%", t.target * 100.0),
            result,
            justification: format!("{} over {} calls", t.describe(), t.calls),
            latency_p50_ms: None,
            latency_p95_ms: None,
            wer: None,
            hearing_drift: None,
            duration_s: None,
            turns: Some(t.calls),
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
