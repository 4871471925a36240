//! The noise KPIs of a run per test and condition (or all tests per condition), beside the
//! same test's clean calls: what noise did to the conversations, short of failing them.

use serde::Serialize;

use super::{groups, Row, RunResult};

/// What a test's (or every test's) calls under one condition add up to.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ConditionKpis {
    /// The test, or `all tests`.
    pub test: String,
    pub condition: String,
    pub calls: u32,
    /// Calls that completed their task (passed).
    pub passed: u32,
    /// The mean of the calls' hearing WER, where the agent reports what it heard.
    pub wer: Option<f64>,
    /// `wer` over the clean condition's; none without clean calls or where clean was 0.
    pub wer_vs_clean: Option<f64>,
    pub no_answers: Option<u32>,
    pub false_barge_ins: Option<u32>,
    pub bursts: Option<u32>,
    pub asked_to_repeat: Option<u32>,
    pub caller_repeats: Option<u32>,
    pub abandoned: Option<u32>,
    pub latency_p50_ms: Option<f64>,
    /// `latency_p50_ms` minus the clean condition's.
    pub latency_p50_vs_clean_ms: Option<f64>,
}

/// The clean condition's label.
const CLEAN: &str = "clean";

/// The test of a row of every test's calls.
const ALL: &str = "all tests";

impl ConditionKpis {
    /// `row` is the group's [`Row`], whose counts and latency it shares.
    pub(super) fn of(row: &Row, group: &[&RunResult]) -> Self {
        // Summed over the calls that counted it: none where no call did (results from before
        // a KPI was counted, calls that could not be made).
        let sum = |f: fn(&RunResult) -> Option<u32>| {
            group.iter().filter_map(|r| f(r)).reduce(|a, b| a + b)
        };
        let wers: Vec<f64> = group.iter().filter_map(|r| r.metrics.wer).collect();
        ConditionKpis {
            test: row.test.clone(),
            condition: row.condition.clone(),
            calls: row.runs,
            passed: row.passed,
            wer: (!wers.is_empty()).then(|| wers.iter().sum::<f64>() / wers.len() as f64),
            wer_vs_clean: None,
            no_answers: sum(|r| r.metrics.no_answers),
            false_barge_ins: sum(|r| r.metrics.false_barge_ins),
            bursts: sum(|r| r.metrics.bursts),
            asked_to_repeat: sum(|r| r.metrics.asked_to_repeat),
            caller_repeats: sum(|r| r.metrics.caller_repeats),
            abandoned: sum(|r| r.metrics.abandoned.map(u32::from)),
            latency_p50_ms: row.latency_p50_ms,
            latency_p50_vs_clean_ms: None,
        }
    }

    /// The figures as the console and the report show them, in [`HEADS`]' order; `-` where
    /// there is none.
    pub fn cells(&self) -> [String; 9] {
        let or_dash = |v: Option<String>| v.unwrap_or_else(|| "-".into());
        let count = |n: Option<u32>| or_dash(n.map(|n| n.to_string()));
        let of =
            |n: Option<u32>, of: Option<u32>| or_dash(n.zip(of).map(|(n, of)| format!("{n}/{of}")));
        [
            format!("{}/{}", self.passed, self.calls),
            or_dash(self.wer.map(|w| format!("{:.0}%", w * 100.0))),
            or_dash(self.wer_vs_clean.map(|x| format!("{x:.1}×"))),
            count(self.no_answers),
            of(self.false_barge_ins, self.bursts),
            count(self.asked_to_repeat),
            count(self.caller_repeats),
            of(self.abandoned, Some(self.calls)),
            or_dash(self.latency_p50_vs_clean_ms.map(|d| format!("{d:+.0} ms"))),
        ]
    }

    /// Sets the figures against `clean`, the same test's (or tests') clean calls.
    fn against(&mut self, clean: &ConditionKpis) {
        self.wer_vs_clean = self
            .wer
            .zip(clean.wer.filter(|&w| w > 0.0))
            .map(|(w, c)| w / c);
        self.latency_p50_vs_clean_ms = self
            .latency_p50_ms
            .zip(clean.latency_p50_ms)
            .map(|(l, c)| l - c);
    }
}

fn compared(mut rows: Vec<ConditionKpis>) -> Vec<ConditionKpis> {
    let cleans: Vec<ConditionKpis> = rows
        .iter()
        .filter(|r| r.condition == CLEAN)
        .cloned()
        .collect();
    for row in rows.iter_mut().filter(|r| r.condition != CLEAN) {
        if let Some(clean) = cleans.iter().find(|c| c.test == row.test) {
            row.against(clean);
        }
    }
    rows
}

/// One row per test and condition, in the order they first appear (staircase trials left
/// out: their SNRs are a threshold's, not conditions).
pub fn by_test(results: &[RunResult]) -> Vec<ConditionKpis> {
    compared(
        groups(results)
            .into_iter()
            .map(|((test, condition), group)| {
                ConditionKpis::of(&Row::of(test, condition, &group), &group)
            })
            .collect(),
    )
}

/// One row per condition, every test's calls together.
pub fn by_condition(results: &[RunResult]) -> Vec<ConditionKpis> {
    let mut conditions: Vec<(String, Vec<&RunResult>)> = Vec::new();
    for ((_, condition), group) in groups(results) {
        match conditions.iter_mut().find(|(c, _)| *c == condition) {
            Some((_, all)) => all.extend(group),
            None => conditions.push((condition, group)),
        }
    }
    compared(
        conditions
            .into_iter()
            .map(|(condition, group)| {
                ConditionKpis::of(&Row::of(ALL.into(), condition, &group), &group)
            })
            .collect(),
    )
}

/// Whether any fixed call of the run was made under noise: a sweep, whose KPIs are worth a
/// table. Recorded calls (`voicesim analyze`) have no clean calls to be compared with.
pub fn noisy(results: &[RunResult]) -> bool {
    results
        .iter()
        .any(|r| r.trial.is_none() && r.condition.profile != CLEAN && !r.condition.is_recorded())
}

/// The columns of a KPI table, each with what it counts (the report's tooltips).
pub const HEADS: [(&str, &str); 9] = [
    ("passed", "calls that completed their task"),
    (
        "WER",
        "the agent's hearing: WER of what it reported hearing against what the caller said",
    ),
    ("vs clean", "WER over the same test's clean calls' WER"),
    (
        "no answer",
        "caller turns the agent left unanswered for 3 s or more",
    ),
    (
        "false barge-in",
        "the agent stopped or started talking on a burst noise while the caller was silent, of the bursts played",
    ),
    (
        "asked to repeat",
        "agent turns asking the caller to say it again",
    ),
    (
        "caller repeats",
        "caller lines said again (or rephrased) for a goal not yet met",
    ),
    (
        "abandoned",
        "calls that ran out of time or turns without their goal",
    ),
    (
        "p50 vs clean",
        "median response latency minus the same test's clean calls'",
    ),
];

/// The console table of `rows` (without a test column when every row is all tests).
pub fn table(rows: &[ConditionKpis]) -> String {
    let per_test = rows.iter().any(|r| r.test != ALL);
    let width = rows.iter().map(|r| r.test.len()).max().unwrap_or(4).max(4);
    let test = |name: &str| {
        if per_test {
            format!("{name:<width$}  ")
        } else {
            String::new()
        }
    };
    let cwidth = rows
        .iter()
        .map(|r| r.condition.len())
        .max()
        .unwrap_or(9)
        .max(9);
    let head = HEADS.map(|(h, _)| h);
    let mut out = format!("{}{:<cwidth$}", test("test"), "condition");
    for h in head {
        out.push_str(&format!("  {h:>w$}", w = h.len().max(6)));
    }
    out.push('\n');
    for r in rows {
        let cells = r.cells();
        out.push_str(&format!("{}{:<cwidth$}", test(&r.test), r.condition));
        for (h, c) in head.iter().zip(cells) {
            out.push_str(&format!("  {c:>w$}", w = h.len().max(6)));
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{summary, Outcome};
    use crate::suite::{Condition, Suite};

    fn call(test: &str, profile: &str, snr: Option<f64>, wer: f64, latency: f64) -> RunResult {
        let suite = Suite::parse(
            &format!("name: s\ntests:\n  - name: {test}\n    steps: [{{goal: g, static_utterance: hi}}]\n"),
            "s.yaml",
            std::path::Path::new("."),
        )
        .expect("suite");
        let condition = Condition {
            profile: profile.into(),
            snr,
        };
        let mut r = RunResult::new("s", &suite.tests[0], &condition, 1, 7);
        r.error = None;
        r.outcome = Outcome::Passed;
        r.metrics.wer = Some(wer);
        r.latencies_ms = vec![latency];
        r.metrics.no_answers = Some(0);
        r.metrics.false_barge_ins = Some(0);
        r.metrics.bursts = Some(0);
        r.metrics.abandoned = Some(false);
        r
    }

    #[test]
    fn each_condition_is_set_against_the_same_test_s_clean_calls() {
        let mut noisy = call("a", "cafe", Some(10.0), 0.3, 800.0);
        noisy.outcome = Outcome::Failed;
        noisy.metrics.no_answers = Some(1);
        noisy.metrics.false_barge_ins = Some(1);
        noisy.metrics.bursts = Some(3);
        noisy.metrics.abandoned = Some(true);
        let results = vec![
            call("a", "clean", None, 0.1, 500.0),
            noisy,
            call("b", "clean", None, 0.0, 400.0),
            call("b", "cafe", Some(10.0), 0.2, 350.0),
        ];
        let rows = by_test(&results);
        let a = &rows[1];
        assert_eq!((a.test.as_str(), a.condition.as_str()), ("a", "cafe@10dB"));
        assert!((a.wer_vs_clean.unwrap() - 3.0).abs() < 1e-9, "{a:?}");
        assert_eq!(a.latency_p50_vs_clean_ms, Some(300.0));
        assert_eq!(
            (a.no_answers, a.false_barge_ins, a.bursts, a.abandoned),
            (Some(1), Some(1), Some(3), Some(1))
        );
        // Clean heard every word: no ratio to give; the latency still compares.
        let b = &rows[3];
        assert_eq!(b.wer_vs_clean, None);
        assert_eq!(b.latency_p50_vs_clean_ms, Some(-50.0));
        assert_eq!(
            rows[0].wer_vs_clean, None,
            "clean is not set against itself"
        );
        let all = by_condition(&results);
        assert_eq!(all.len(), 2);
        assert!(table(&all).starts_with("condition "), "{}", table(&all));
        assert_eq!(
            (all[1].calls, all[1].passed, all[1].no_answers),
            (2, 1, Some(1))
        );
        // Calls from before the KPIs were counted leave them unknown, not zero.
        let mut old = results.clone();
        for r in &mut old {
            r.metrics.no_answers = None;
        }
        assert_eq!(by_test(&old)[1].no_answers, None);
        let text = summary(&results);
        assert!(text.contains("noise KPIs"), "{text}");
        assert!(
            text.contains("3.0×") && text.contains("+300 ms") && text.contains("1/3"),
            "{text}"
        );
        // A clean run is no sweep: no KPI table.
        assert!(!summary(&results[..1]).contains("noise KPIs"));
    }
}
