//! Results of a run and what is made of them: `results.jsonl` (one line per finished call,
//! appended as each call ends, so a crash or Ctrl-C keeps every finished call), the console
//! summary, and JUnit XML for CI.

pub mod diff;
pub mod export;
pub mod folder;
pub mod html;
pub mod kpi;
pub mod merge;
mod opus;
mod stats;
pub mod threshold;

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

pub use folder::{ResultsFile, RunPlan};

use crate::guard::Panic;
use crate::judge::{Judgement, Metrics, StepResult, Verdict};
use crate::record::{Line, Reaction};
use crate::suite::{Condition, TestCase};
use crate::transport::event::EndReason;
use crate::transport::turns::Fault;

/// How one call of one test came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Every step and expectation met, no fault.
    Passed,
    /// A step or expectation not met, or the call had a fault.
    Failed,
    /// Nothing failed, but something could not be judged: not a pass.
    NotJudged,
    /// The call could not be made (agent unreachable, a provider failed).
    Error,
}

#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ExpectationResult {
    pub name: String,
    #[serde(flatten)]
    pub judgement: Judgement,
}

/// Where a call's result comes from: enough to head a report made from results alone.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default)]
pub struct Origin {
    pub voicesim: String,
    /// The agent's URL, credentials and query values removed.
    pub agent: String,
    pub protocol: String,
    /// The run's seed (each call's own seed is made from it and the call's identity).
    pub seed: u64,
}

/// A call made as one trial of a staircase (see [`crate::psychometric`]).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Trial {
    /// 1-based: which of the test and profile's staircases.
    pub staircase: u32,
    /// 1-based: which of its trials.
    pub n: u32,
    /// The pass share its staircase converges on (0.5 for 1-down-1-up).
    pub target: f64,
}

/// One finished call: a line of `results.jsonl`.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct RunResult {
    pub suite: String,
    pub test: String,
    pub tags: Vec<String>,
    pub condition: Condition,
    /// 1-based run number within the test and condition; for a staircase's trial, its place
    /// among the trials of the test and profile.
    pub run: u32,
    /// Set on the trials of an adaptive staircase: which staircase, which of its trials.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trial: Option<Trial>,
    pub seed: u64,
    /// Sent to the agent as the `voicesim_call` session parameter, to find the call in its logs.
    pub call_id: String,
    #[serde(default)]
    pub origin: Origin,
    /// When the call started, RFC 3339 UTC.
    #[serde(default)]
    pub started_at: String,
    pub outcome: Outcome,
    pub steps: Vec<StepResult>,
    pub expectations: Vec<ExpectationResult>,
    pub metrics: Metrics,
    /// Response latency of each answered agent turn.
    pub latencies_ms: Vec<f64>,
    /// How soon the caller answered each agent turn, and where the time went.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reactions: Vec<Reaction>,
    pub faults: Vec<Fault>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ended: Option<EndReason>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stopped_by: Option<String>,
    pub transcript: Vec<Line>,
    /// The call's folder: call.wav, events.jsonl, call.json.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recording: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Set when the error is a bug in voicesim: something inside the call panicked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub panic: Option<Panic>,
}

impl RunResult {
    /// A call of `test` not made yet: an error until it says otherwise.
    pub fn new(suite: &str, test: &TestCase, condition: &Condition, run: u32, seed: u64) -> Self {
        RunResult {
            suite: suite.to_string(),
            test: test.name.clone(),
            tags: test.tags.clone(),
            condition: condition.clone(),
            run,
            trial: None,
            seed,
            call_id: format!("{seed:016x}"),
            origin: Origin::default(),
            started_at: folder::now(),
            outcome: Outcome::Error,
            steps: Vec::new(),
            expectations: Vec::new(),
            metrics: Metrics::default(),
            latencies_ms: Vec::new(),
            reactions: Vec::new(),
            faults: Vec::new(),
            ended: None,
            stopped_by: None,
            transcript: Vec::new(),
            recording: None,
            error: None,
            panic: None,
        }
    }

    /// The call hit a bug in voicesim: an error, with the panic's message and place.
    pub fn crashed(mut self, panic: Panic) -> Self {
        self.error = Some(format!(
            "voicesim failed inside this call (a bug; please report it): {panic}"
        ));
        self.panic = Some(panic);
        self.outcome = Outcome::Error;
        self
    }

    /// The outcome its parts add up to.
    pub fn decide(&mut self) {
        if self.error.is_some() {
            self.outcome = Outcome::Error;
            return;
        }
        let verdicts = self
            .steps
            .iter()
            .map(|s| s.verdict)
            .chain(self.expectations.iter().map(|e| e.judgement.verdict));
        let mut outcome = Outcome::Passed;
        for verdict in verdicts {
            match verdict {
                Verdict::NotMet => outcome = Outcome::Failed,
                Verdict::NotJudged if outcome == Outcome::Passed => outcome = Outcome::NotJudged,
                _ => {}
            }
        }
        // Silence and dropouts are timing too: when voicesim was late, they may be its own.
        let late = self.metrics.harness_late();
        let (timing, other): (Vec<&Fault>, Vec<&Fault>) = self
            .faults
            .iter()
            .partition(|f| late.is_some() && f.is_timing());
        if !other.is_empty() {
            outcome = Outcome::Failed;
        } else if !timing.is_empty() && outcome == Outcome::Passed {
            outcome = Outcome::NotJudged;
        }
        self.outcome = outcome;
    }

    /// One line on why it did not pass.
    pub fn why(&self) -> String {
        if let Some(e) = &self.error {
            return e.clone();
        }
        let late = self.metrics.harness_late();
        let mut reasons: Vec<String> = self
            .faults
            .iter()
            .map(|f| match &late {
                Some(why) if f.is_timing() => format!("not judged: {f}, but {why}"),
                _ => f.to_string(),
            })
            .collect();
        for (i, s) in self.steps.iter().enumerate() {
            if s.verdict != Verdict::Met {
                reasons.push(format!("step {} ({}): {}", i + 1, s.goal, s.justification));
            }
        }
        for e in &self.expectations {
            if e.judgement.verdict != Verdict::Met {
                reasons.push(format!(
                    "expectation {}: {}",
                    e.name, e.judgement.justification
                ));
            }
        }
        reasons.join("; ")
    }
}

/// Once per run: the calls where voicesim itself was late past its bounds (see
/// [`Metrics::harness_late`]), the worst figures, and what to do about it.
pub fn late_warning(results: &[RunResult]) -> Option<String> {
    let late: Vec<&Metrics> = results
        .iter()
        .map(|r| &r.metrics)
        .filter(|m| m.harness_late().is_some())
        .collect();
    if late.is_empty() {
        return None;
    }
    let worst =
        |f: fn(&Metrics) -> Option<f64>| late.iter().filter_map(|m| f(m)).fold(0.0, f64::max);
    let (slip, answer) = (
        worst(|m| m.send_slip_max_ms),
        worst(|m| m.reaction_late_max_ms),
    );
    Some(format!(
        "warning: voicesim itself was late in {} of {} calls (a frame sent up to {slip:.0} ms \
         behind its schedule, the caller speaking up to {:.1} s after its moment): their \
         timing verdicts (latency, silence, dropouts) are not judged; lower --parallel or give \
         voicesim more CPU (send_slip_max_ms and reaction_late_max_ms in results.jsonl)",
        late.len(),
        results.len(),
        answer / 1000.0
    ))
}

/// Results of one test under one condition, over its runs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Row {
    pub test: String,
    pub condition: String,
    pub runs: u32,
    pub passed: u32,
    pub steps_met: u32,
    pub steps: u32,
    pub expectations_met: u32,
    pub expectations: u32,
    pub latency_p50_ms: Option<f64>,
    pub latency_p95_ms: Option<f64>,
    /// pass^k: every run passed.
    pub pass_k: bool,
    /// Runs with nothing judged (recorded calls, or calls whose verdicts could not be decided).
    pub not_judged: u32,
}

/// Results grouped by test and condition label, in the order each group first appears.
pub fn groups(results: &[RunResult]) -> Vec<((String, String), Vec<&RunResult>)> {
    let mut groups: Vec<((String, String), Vec<&RunResult>)> = Vec::new();
    // A staircase's trials are one threshold each (`threshold`), not a row per SNR.
    for r in results.iter().filter(|r| r.trial.is_none()) {
        let key = (r.test.clone(), r.condition.label());
        match groups.iter_mut().find(|(k, _)| *k == key) {
            Some((_, group)) => group.push(r),
            None => groups.push((key, vec![r])),
        }
    }
    groups
}

/// One row per test and condition, in the order they first appear.
pub fn rows(results: &[RunResult]) -> Vec<Row> {
    groups(results)
        .into_iter()
        .map(|((test, condition), group)| Row::of(test, condition, &group))
        .collect()
}

impl Row {
    /// What one group of calls adds up to.
    pub fn of(test: String, condition: String, group: &[&RunResult]) -> Row {
        let count = |f: &dyn Fn(&RunResult) -> (u32, u32)| {
            group
                .iter()
                .map(|r| f(r))
                .fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1))
        };
        let (steps_met, steps) = count(&|r| {
            (
                r.steps.iter().filter(|s| s.verdict == Verdict::Met).count() as u32,
                r.steps.len() as u32,
            )
        });
        let (expectations_met, expectations) = count(&|r| {
            (
                r.expectations
                    .iter()
                    .filter(|e| e.judgement.verdict == Verdict::Met)
                    .count() as u32,
                r.expectations.len() as u32,
            )
        });
        let mut latencies: Vec<f64> = group
            .iter()
            .flat_map(|r| r.latencies_ms.iter().copied())
            .collect();
        latencies.sort_by(f64::total_cmp);
        let passed = group
            .iter()
            .filter(|r| r.outcome == Outcome::Passed)
            .count() as u32;
        Row {
            not_judged: group
                .iter()
                .filter(|r| r.outcome == Outcome::NotJudged)
                .count() as u32,
            runs: group.len() as u32,
            pass_k: passed == group.len() as u32,
            passed,
            test,
            condition,
            steps_met,
            steps,
            expectations_met,
            expectations,
            latency_p50_ms: crate::judge::percentile(&latencies, 50.0),
            latency_p95_ms: crate::judge::percentile(&latencies, 95.0),
        }
    }
}

/// The console summary: one row per test and condition.
pub fn summary(results: &[RunResult]) -> String {
    let rows = rows(results);
    let width = rows.iter().map(|r| r.test.len()).max().unwrap_or(4).max(4);
    let cwidth = rows
        .iter()
        .map(|r| r.condition.len())
        .max()
        .unwrap_or(9)
        .max(9);
    let mut out = format!(
        "{:<width$}  {:<cwidth$}  {:>7}  {:>7}  {:>12}  {:>8}  {:>8}\n",
        "test", "condition", "passed", "steps", "expectations", "p50 ms", "p95 ms"
    );
    let ms = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.0}"));
    for r in &rows {
        out.push_str(&format!(
            "{:<width$}  {:<cwidth$}  {:>7}  {:>7}  {:>12}  {:>8}  {:>8}\n",
            r.test,
            r.condition,
            format!("{}/{}", r.passed, r.runs),
            format!("{}/{}", r.steps_met, r.steps),
            format!("{}/{}", r.expectations_met, r.expectations),
            ms(r.latency_p50_ms),
            ms(r.latency_p95_ms),
        ));
    }
    if kpi::noisy(results) {
        out.push_str("\nnoise KPIs (vs clean: against the same test's clean calls):\n");
        out.push_str(&kpi::table(&kpi::by_test(results)));
    }
    out.push_str(&drift_line(results));
    let reactions: Vec<&Reaction> = results.iter().flat_map(|r| &r.reactions).collect();
    if !reactions.is_empty() {
        let mut times: Vec<f64> = reactions.iter().map(|a| a.reaction_ms).collect();
        times.sort_by(f64::total_cmp);
        let late: Vec<f64> = reactions
            .iter()
            .map(|a| a.late_ms)
            .filter(|&ms| ms > crate::audio::FRAME_MS as f64)
            .collect();
        out.push_str(&format!(
            "\ncaller answered in {} ms (p50), {} ms (p95) over {} turns; ",
            ms(crate::judge::percentile(&times, 50.0)),
            ms(crate::judge::percentile(&times, 95.0)),
            times.len()
        ));
        out.push_str(&if late.is_empty() {
            "every answer on its persona's reaction time\n".to_string()
        } else {
            format!(
                "{} late for its persona's reaction time, by up to {:.0} ms\n",
                late.len(),
                late.iter().copied().fold(0.0, f64::max)
            )
        });
    }
    out
}

/// Where the caller heard agent turns otherwise as they played than whole, a line that says
/// how often and how far (its reactions rested on that; the verdicts read the whole turns).
fn drift_line(results: &[RunResult]) -> String {
    let drifts: Vec<f64> = results
        .iter()
        .filter_map(|r| r.metrics.hearing_drift)
        .collect();
    let drifted = drifts.iter().filter(|&&d| d > 0.0).count();
    if drifted == 0 {
        return String::new();
    }
    format!(
        "\nthe caller heard agent turns otherwise as they played than whole in {drifted} of {} \
         calls (hearing drift up to {:.0}%); verdicts read the whole turns\n",
        drifts.len(),
        drifts.iter().copied().fold(0.0, f64::max) * 100.0
    )
}

/// JUnit XML: one test case per call, named `test [condition] #run`.
pub fn junit(suite: &str, results: &[RunResult]) -> String {
    use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};
    let mut report = Report::new("voicesim");
    let mut tests = TestSuite::new(suite);
    // A staircase's trials fail by design: its threshold is the test case, not each call.
    for r in results.iter().filter(|r| r.trial.is_none()) {
        let status = match r.outcome {
            Outcome::Passed => TestCaseStatus::success(),
            Outcome::Failed | Outcome::NotJudged => {
                let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
                s.set_message(r.why());
                s
            }
            Outcome::Error => {
                let mut s = TestCaseStatus::non_success(NonSuccessKind::Error);
                s.set_message(r.why());
                s
            }
        };
        let mut case = TestCase::new(
            format!("{} [{}] #{}", r.test, r.condition.label(), r.run),
            status,
        );
        case.set_classname(r.test.clone());
        case.set_time(std::time::Duration::from_secs_f64(
            r.metrics.duration_s.max(0.0),
        ));
        let transcript: Vec<String> = r
            .transcript
            .iter()
            .map(|l| format!("{:?}: {}", l.speaker, l.text))
            .collect();
        case.set_system_out(transcript.join("\n"));
        tests.add_test_case(case);
    }
    for t in threshold::of(results) {
        let status = match t.estimate {
            crate::psychometric::Estimate::Nothing => {
                let mut s = TestCaseStatus::non_success(NonSuccessKind::Error);
                s.set_message(t.describe());
                s
            }
            _ => TestCaseStatus::success(),
        };
        let mut case = TestCase::new(format!("{} [{} threshold]", t.test, t.profile), status);
        case.set_classname(t.test.clone());
        case.set_system_out(format!(
            "task threshold at {:.0}%: {} over {} calls",
            t.target * 100.0,
            t.describe(),
            t.calls
        ));
        tests.add_test_case(case);
    }
    report.add_test_suite(tests);
    report.to_string().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_summary_says_when_the_caller_heard_turns_otherwise_than_whole() {
        let suite = crate::suite::Suite::parse(
            "name: s\ntests:\n  - name: t\n    steps: [{goal: g, static_utterance: hi}]\n",
            "s.yaml",
            std::path::Path::new("."),
        )
        .expect("suite");
        let clean = Condition {
            profile: "clean".into(),
            snr: None,
        };
        let call = |drift: Option<f64>| {
            let mut r = RunResult::new("s", &suite.tests[0], &clean, 1, 7);
            r.metrics.hearing_drift = drift;
            r
        };
        let heard_alike = [call(Some(0.0)), call(None)];
        assert!(!summary(&heard_alike).contains("heard agent turns otherwise"));
        let drifted = [call(Some(0.0)), call(Some(0.25)), call(Some(0.1))];
        assert!(
            summary(&drifted).contains(
                "otherwise as they played than whole in 2 of 3 calls \
                 (hearing drift up to 25%)"
            ),
            "{}",
            summary(&drifted)
        );
    }
}
