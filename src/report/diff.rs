//! Two runs of a suite side by side: what got worse, what got better, and whether a change in
//! passes is more than chance.
//!
//! Rows are test × condition. Calls are matched by test, condition, run and seed, so a seeded
//! call is compared with itself (same noise, same bursts): a call that passed before and fails
//! now is a *new failure*, whatever the statistics say about its row.

use std::collections::{BTreeSet, HashMap};

use serde::Serialize;

use super::kpi::ConditionKpis;
use super::stats::{fisher_drop, wilson};
use super::threshold::{self, TaskThreshold};
use super::{Outcome, RunResult};
use crate::psychometric::Estimate;

/// When a change fails the comparison (exit 1).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Thresholds {
    /// A row's pass rate may drop this many percentage points before it counts, and only a
    /// drop that is more than chance (Fisher's exact test, p < `confidence`) counts at all.
    pub max_pass_drop: f64,
    /// A row's median response latency may grow this many milliseconds.
    pub max_latency_increase_ms: f64,
    /// The p-value below which a drop in passes is more than chance.
    pub confidence: f64,
    /// dB a task threshold may rise; `None`: only a rise beyond both 95 % intervals counts.
    pub max_threshold_rise_db: Option<f64>,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            max_pass_drop: 0.0,
            max_latency_increase_ms: 250.0,
            confidence: 0.05,
            max_threshold_rise_db: None,
        }
    }
}

/// One side of a row.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Side {
    pub runs: u32,
    pub passed: u32,
    pub latency_p50_ms: Option<f64>,
    pub latency_p95_ms: Option<f64>,
    /// Mean of the calls' hearing WER (what the agent reported hearing), where reported.
    pub wer: Option<f64>,
    /// The noise KPIs, summed over the calls that counted them (abandoned: calls).
    pub no_answers: Option<u32>,
    pub false_barge_ins: Option<u32>,
    pub asked_to_repeat: Option<u32>,
    pub caller_repeats: Option<u32>,
    pub abandoned: Option<u32>,
}

impl Side {
    fn of(group: &[&RunResult]) -> Side {
        let row = super::Row::of(String::new(), String::new(), group);
        let kpis = ConditionKpis::of(&row, group);
        Side {
            runs: row.runs,
            passed: row.passed,
            latency_p50_ms: row.latency_p50_ms,
            latency_p95_ms: row.latency_p95_ms,
            wer: kpis.wer,
            no_answers: kpis.no_answers,
            false_barge_ins: kpis.false_barge_ins,
            asked_to_repeat: kpis.asked_to_repeat,
            caller_repeats: kpis.caller_repeats,
            abandoned: kpis.abandoned,
        }
    }

    /// The noise KPIs by name, as the console says them.
    fn kpis(&self) -> [(&'static str, Option<u32>); 5] {
        [
            ("no answers", self.no_answers),
            ("false barge-ins", self.false_barge_ins),
            ("asked to repeat", self.asked_to_repeat),
            ("caller repeats", self.caller_repeats),
            ("abandoned", self.abandoned),
        ]
    }

    pub fn rate(&self) -> Option<f64> {
        (self.runs > 0).then(|| self.passed as f64 / self.runs as f64)
    }
}

/// What happened to a row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Change {
    /// Worse beyond the thresholds: fails the comparison.
    Regressed,
    /// Fewer passes, but within chance or the thresholds.
    Worse,
    Same,
    Better,
    Added,
    Removed,
}

/// One test under one condition, before and after.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RowDiff {
    pub test: String,
    pub condition: String,
    pub base: Side,
    pub new: Side,
    pub change: Change,
    /// Fisher's exact test (one-sided) of the drop in passes; 1 when nothing dropped.
    pub p_value: f64,
    /// 95% Wilson interval of the new pass rate.
    pub new_rate_interval: (f64, f64),
    pub latency_p50_delta_ms: Option<f64>,
    pub latency_p95_delta_ms: Option<f64>,
    pub wer_delta: Option<f64>,
    /// Why it regressed, when it did.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub reasons: Vec<String>,
}

/// One test's task threshold under one profile, before and after.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ThresholdDiff {
    pub test: String,
    pub profile: String,
    pub base: Option<TaskThreshold>,
    pub new: Option<TaskThreshold>,
    /// New minus base, where both were found.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rise_db: Option<f64>,
    pub regressed: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Whether the agent now needs a quieter line to do its task: a rise past the limit, or past
/// both intervals when there is none; a threshold now above everything tried; one found now
/// where before the agent passed at everything tried, above all it passed at then.
fn threshold_change(
    base: &TaskThreshold,
    new: &TaskThreshold,
    t: &Thresholds,
) -> (Option<f64>, Option<String>) {
    let (b, n) = (base.describe(), new.describe());
    match (&base.estimate, &new.estimate) {
        (Estimate::Found(before), Estimate::Found(after)) => {
            let rise = after.threshold_db - before.threshold_db;
            let regressed = match t.max_threshold_rise_db {
                Some(limit) => rise > limit,
                None => {
                    matches!((after.low_db, before.high_db), (Some(low), Some(high)) if low > high)
                }
            };
            (
                Some(rise),
                regressed.then(|| format!("task threshold {b} → {n}: {rise:+.1} dB")),
            )
        }
        (Estimate::Found(_) | Estimate::Below { .. }, Estimate::Above { .. }) => {
            (None, Some(format!("task threshold {b} → {n}")))
        }
        (Estimate::Below { lowest_db }, Estimate::Found(after))
            if after.low_db.is_some_and(|low| low > *lowest_db) =>
        {
            (None, Some(format!("task threshold {b} → {n}")))
        }
        _ => (None, None),
    }
}

/// A matched call whose outcome changed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CallChange {
    pub test: String,
    pub condition: String,
    pub run: u32,
    pub seed: u64,
    pub before: Outcome,
    pub after: Outcome,
    /// Why the failing side failed.
    pub why: String,
}

/// The whole comparison.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Diff {
    pub thresholds: Thresholds,
    pub rows: Vec<RowDiff>,
    /// Every call of both runs pooled: a broad drop shows here before any one row is sure.
    pub overall: RowDiff,
    pub new_failures: Vec<CallChange>,
    pub fixes: Vec<CallChange>,
    pub tests_added: Vec<String>,
    pub tests_removed: Vec<String>,
    /// Task thresholds of the staircases of either run.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub thresholds_compared: Vec<ThresholdDiff>,
}

impl Diff {
    pub fn regressed(&self) -> bool {
        self.overall.change == Change::Regressed
            || self.rows.iter().any(|r| r.change == Change::Regressed)
            || self.thresholds_compared.iter().any(|t| t.regressed)
    }

    /// The row of `test` under `condition`, if either run had it.
    pub fn row(&self, test: &str, condition: &str) -> Option<&RowDiff> {
        self.rows
            .iter()
            .find(|r| r.test == test && r.condition == condition)
    }
}

fn compare(test: String, condition: String, base: Side, new: Side, t: &Thresholds) -> RowDiff {
    let delta = |a: Option<f64>, b: Option<f64>| Some(b? - a?);
    let p_value = fisher_drop(base.passed, base.runs, new.passed, new.runs);
    let latency_p50_delta_ms = delta(base.latency_p50_ms, new.latency_p50_ms);
    let mut reasons = Vec::new();
    let change = match (base.rate(), new.rate()) {
        (None, _) => Change::Added,
        (_, None) => Change::Removed,
        (Some(before), Some(after)) => {
            let drop_points = (before - after) * 100.0;
            if after < before && p_value < t.confidence && drop_points > t.max_pass_drop {
                reasons.push(format!(
                    "pass rate {}/{} → {}/{} (p = {p_value:.3})",
                    base.passed, base.runs, new.passed, new.runs
                ));
            }
            if let Some(d) = latency_p50_delta_ms.filter(|d| *d > t.max_latency_increase_ms) {
                reasons.push(format!(
                    "median latency +{d:.0} ms (over {:.0} ms)",
                    t.max_latency_increase_ms
                ));
            }
            if !reasons.is_empty() {
                Change::Regressed
            } else if after < before {
                Change::Worse
            } else if after > before {
                Change::Better
            } else {
                Change::Same
            }
        }
    };
    RowDiff {
        new_rate_interval: wilson(new.passed, new.runs),
        latency_p50_delta_ms,
        latency_p95_delta_ms: delta(base.latency_p95_ms, new.latency_p95_ms),
        wer_delta: delta(base.wer, new.wer),
        p_value,
        test,
        condition,
        base,
        new,
        change,
        reasons,
    }
}

/// Compares `new` with `base`.
pub fn diff(base: &[RunResult], new: &[RunResult], thresholds: Thresholds) -> Diff {
    let (base_rows, new_rows) = (super::groups(base), super::groups(new));
    let side = |rows: &[((String, String), Vec<&RunResult>)], key: &(String, String)| {
        rows.iter()
            .find(|(k, _)| k == key)
            .map(|(_, g)| Side::of(g))
            .unwrap_or_default()
    };
    // The new run's rows in its order, then those only the base had.
    let mut keys: Vec<(String, String)> = new_rows.iter().map(|(k, _)| k.clone()).collect();
    keys.extend(
        base_rows
            .iter()
            .map(|(k, _)| k.clone())
            .filter(|k| !new_rows.iter().any(|(n, _)| n == k)),
    );
    let rows = keys
        .into_iter()
        .map(|key| {
            let (b, n) = (side(&base_rows, &key), side(&new_rows, &key));
            compare(key.0, key.1, b, n, &thresholds)
        })
        .collect();
    // A staircase's trials fail by design: they count in thresholds, not pass rates.
    let everything = |results: &[RunResult]| {
        Side::of(
            &results
                .iter()
                .filter(|r| r.trial.is_none())
                .collect::<Vec<_>>(),
        )
    };
    let mut overall = compare(
        "all tests".into(),
        "all conditions".into(),
        everything(base),
        everything(new),
        &thresholds,
    );
    // Pooled latency mixes tests of different lengths: only rows judge latency.
    overall.reasons.retain(|r| r.starts_with("pass rate"));
    if overall.reasons.is_empty() && overall.change == Change::Regressed {
        overall.change = Change::Worse;
    }

    let key = |r: &RunResult| (r.test.clone(), r.condition.label(), r.run, r.seed);
    let before: HashMap<_, &RunResult> = base.iter().map(|r| (key(r), r)).collect();
    let (mut new_failures, mut fixes) = (Vec::new(), Vec::new());
    for r in new.iter().filter(|r| r.trial.is_none()) {
        let Some(b) = before.get(&key(r)) else {
            continue;
        };
        let change = |why: String| CallChange {
            test: r.test.clone(),
            condition: r.condition.label(),
            run: r.run,
            seed: r.seed,
            before: b.outcome,
            after: r.outcome,
            why,
        };
        let (was, is) = (b.outcome == Outcome::Passed, r.outcome == Outcome::Passed);
        if was && !is {
            new_failures.push(change(r.why()));
        } else if !was && is {
            fixes.push(change(b.why()));
        }
    }
    let tests = |results: &[RunResult]| -> BTreeSet<String> {
        results.iter().map(|r| r.test.clone()).collect()
    };
    let (base_tests, new_tests) = (tests(base), tests(new));
    let (base_found, new_found) = (threshold::of(base), threshold::of(new));
    let mut pairs: Vec<(String, String)> = new_found
        .iter()
        .chain(&base_found)
        .map(|t| (t.test.clone(), t.profile.clone()))
        .collect();
    let mut seen = BTreeSet::new();
    pairs.retain(|p| seen.insert(p.clone()));
    let thresholds_compared = pairs
        .into_iter()
        .map(|(test, profile)| {
            let find = |list: &[TaskThreshold]| {
                list.iter()
                    .find(|t| t.test == test && t.profile == profile)
                    .cloned()
            };
            let (b, n) = (find(&base_found), find(&new_found));
            let (rise_db, reason) = match (&b, &n) {
                (Some(b), Some(n)) => threshold_change(b, n, &thresholds),
                _ => (None, None),
            };
            ThresholdDiff {
                regressed: reason.is_some(),
                test,
                profile,
                base: b,
                new: n,
                rise_db,
                reason,
            }
        })
        .collect();
    Diff {
        thresholds,
        thresholds_compared,
        rows,
        overall,
        new_failures,
        fixes,
        tests_added: new_tests.difference(&base_tests).cloned().collect(),
        tests_removed: base_tests.difference(&new_tests).cloned().collect(),
    }
}

fn rate(s: &Side) -> String {
    if s.runs == 0 {
        "-".into()
    } else {
        format!("{}/{}", s.passed, s.runs)
    }
}

fn ms(v: Option<f64>) -> String {
    v.map_or("-".into(), |v| format!("{v:+.0}"))
}

fn pct(v: Option<f64>) -> String {
    v.map_or("-".into(), |v| format!("{:+.0}", v * 100.0))
}

fn word(c: Change) -> &'static str {
    match c {
        Change::Regressed => "REGRESSED",
        Change::Worse => "worse (within chance)",
        Change::Same => "same",
        Change::Better => "better",
        Change::Added => "added",
        Change::Removed => "removed",
    }
}

/// The comparison's lines as cells: header first.
fn table(d: &Diff) -> Vec<[String; 8]> {
    let mut out = vec![[
        "test".to_string(),
        "condition".into(),
        "passed".into(),
        "p".into(),
        "p50 Δms".into(),
        "p95 Δms".into(),
        "WER Δpts".into(),
        "change".into(),
    ]];
    for r in d.rows.iter().chain([&d.overall]) {
        out.push([
            r.test.clone(),
            r.condition.clone(),
            format!("{} → {}", rate(&r.base), rate(&r.new)),
            format!("{:.2}", r.p_value),
            ms(r.latency_p50_delta_ms),
            ms(r.latency_p95_delta_ms),
            pct(r.wer_delta),
            word(r.change).to_string(),
        ]);
    }
    out
}

fn calls_text(d: &Diff, line: impl Fn(&str, &CallChange) -> String) -> Vec<String> {
    let mut out: Vec<String> = d
        .new_failures
        .iter()
        .map(|c| line("new failure", c))
        .collect();
    out.extend(d.fixes.iter().map(|c| line("fixed", c)));
    for r in d.rows.iter().filter(|r| r.base.runs > 0 && r.new.runs > 0) {
        let moved: Vec<String> = r
            .base
            .kpis()
            .into_iter()
            .zip(r.new.kpis())
            .filter_map(|((name, b), (_, n))| match (b, n) {
                (Some(b), Some(n)) if b != n => Some(format!("{name} {b} → {n}")),
                _ => None,
            })
            .collect();
        if !moved.is_empty() {
            out.push(format!(
                "noise KPIs {} [{}] over {} → {} calls: {}",
                r.test,
                r.condition,
                r.base.runs,
                r.new.runs,
                moved.join(", ")
            ));
        }
    }
    for t in &d.tests_added {
        out.push(format!("test added: {t}"));
    }
    for t in &d.tests_removed {
        out.push(format!("test removed: {t}"));
    }
    let said =
        |t: &Option<TaskThreshold>| t.as_ref().map_or("not measured".into(), |t| t.describe());
    for t in &d.thresholds_compared {
        out.push(format!(
            "task threshold {} [{}]: {} → {}{}{}",
            t.test,
            t.profile,
            said(&t.base),
            said(&t.new),
            t.rise_db
                .map_or(String::new(), |r| format!(" ({r:+.1} dB)")),
            if t.regressed { ": REGRESSED" } else { "" }
        ));
    }
    out
}

fn verdict(d: &Diff) -> String {
    if d.regressed() {
        let why: Vec<String> = d
            .rows
            .iter()
            .chain([&d.overall])
            .filter(|r| r.change == Change::Regressed)
            .map(|r| format!("{} [{}]: {}", r.test, r.condition, r.reasons.join("; ")))
            .chain(d.thresholds_compared.iter().filter_map(|t| {
                Some(format!(
                    "{} [{}]: {}",
                    t.test,
                    t.profile,
                    t.reason.as_ref()?
                ))
            }))
            .collect();
        format!("REGRESSED: {}", why.join("; "))
    } else {
        format!(
            "no regression beyond the thresholds (pass drop > {} pts at p < {}, median latency > +{} ms)",
            d.thresholds.max_pass_drop, d.thresholds.confidence, d.thresholds.max_latency_increase_ms
        )
    }
}

/// For a terminal: aligned columns.
pub fn text(d: &Diff) -> String {
    let rows = table(d);
    let mut widths = [0usize; 8];
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in &rows {
        let cells: Vec<String> = row
            .iter()
            .zip(widths)
            .map(|(c, w)| format!("{c}{}", " ".repeat(w - c.chars().count())))
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    let calls = calls_text(d, |what, c| {
        format!(
            "{what}: {} [{}] #{} (seed {:016x}): {}",
            c.test, c.condition, c.run, c.seed, c.why
        )
    });
    if !calls.is_empty() {
        out.push('\n');
        out.push_str(&calls.join("\n"));
        out.push('\n');
    }
    out.push('\n');
    out.push_str(&verdict(d));
    out.push('\n');
    out
}

/// For a pull-request comment or `$GITHUB_STEP_SUMMARY`.
pub fn markdown(d: &Diff) -> String {
    let escape = |s: &str| s.replace('|', "\\|").replace('\n', " ");
    let rows = table(d);
    let mut out = format!(
        "### voicesim: {}\n\n",
        if d.regressed() {
            "regressed"
        } else {
            "no regression"
        }
    );
    for (i, row) in rows.iter().enumerate() {
        let cells: Vec<String> = row.iter().map(|c| escape(c)).collect();
        out.push_str(&format!("| {} |\n", cells.join(" | ")));
        if i == 0 {
            out.push_str(&format!("|{}\n", " --- |".repeat(row.len())));
        }
    }
    let calls = calls_text(d, |what, c| {
        format!(
            "**{what}**: {} [{}] #{}: {}",
            escape(&c.test),
            escape(&c.condition),
            c.run,
            escape(&c.why)
        )
    });
    if !calls.is_empty() {
        out.push('\n');
        for c in calls {
            out.push_str(&format!("- {c}\n"));
        }
    }
    out.push_str(&format!("\n{}\n", escape(&verdict(d))));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::psychometric::{Settings, Staircase};
    use crate::report::Trial;
    use crate::suite::{Condition, TestCase};

    fn call(test: &str, run: u32, passed: bool, latency: f64) -> RunResult {
        let case: TestCase = serde_json::from_value(serde_json::json!({
            "name": test, "steps": [{"goal": "g", "static_utterance": "hi"}]
        }))
        .expect("a test case");
        let condition = Condition {
            profile: "cafe".into(),
            snr: Some(10.0),
        };
        let mut r = RunResult::new("s", &case, &condition, run, 100 + run as u64);
        r.error = None;
        r.outcome = if passed {
            Outcome::Passed
        } else {
            Outcome::Failed
        };
        r.latencies_ms = vec![latency];
        r
    }

    /// A staircase's trials against an agent that passes at `threshold` dB and above.
    fn staircase(threshold: f64) -> Vec<RunResult> {
        let mut stairs = Staircase::new(Settings::default(), 30.0);
        let mut out = Vec::new();
        let mut n = 0;
        while !stairs.done() {
            n += 1;
            let snr = stairs.level();
            let passed = snr >= threshold;
            let mut r = call("order", n, passed, 500.0);
            r.condition.snr = Some(snr);
            r.trial = Some(Trial {
                staircase: 1,
                n,
                target: 0.5,
            });
            out.push(r);
            stairs.record(passed);
        }
        out
    }

    #[test]
    fn a_task_threshold_that_rose_beyond_both_intervals_is_a_regression() {
        let (before, after) = (staircase(10.0), staircase(20.0));
        let d = diff(&before, &after, Thresholds::default());
        assert!(d.regressed(), "{}", text(&d));
        let t = &d.thresholds_compared[0];
        assert!((t.rise_db.unwrap() - 10.0).abs() < 1.0, "{t:?}");
        assert!(
            text(&d).contains("task threshold order [cafe]"),
            "{}",
            text(&d)
        );
        // Trials are not calls to pass: no pass-rate row, no new failures from them.
        assert!(d.rows.is_empty() && d.new_failures.is_empty(), "{d:?}");
        let lenient = Thresholds {
            max_threshold_rise_db: Some(12.0),
            ..Thresholds::default()
        };
        assert!(!diff(&before, &after, lenient).regressed());
        // Better hearing, or the same, is no regression.
        assert!(!diff(&after, &before, Thresholds::default()).regressed());
        assert!(!diff(&before, &staircase(10.0), Thresholds::default()).regressed());
    }

    fn runs(test: &str, passes: &[bool], latency: f64) -> Vec<RunResult> {
        passes
            .iter()
            .enumerate()
            .map(|(i, &p)| call(test, i as u32 + 1, p, latency))
            .collect()
    }

    #[test]
    fn one_flip_in_three_is_worse_not_a_regression_but_its_call_is_a_new_failure() {
        let base = runs("a", &[true, true, true], 500.0);
        let new = runs("a", &[true, false, true], 520.0);
        let d = diff(&base, &new, Thresholds::default());
        assert_eq!(d.rows.len(), 1);
        assert_eq!(d.rows[0].change, Change::Worse);
        assert!(!d.regressed());
        assert_eq!(d.new_failures.len(), 1);
        assert_eq!(d.new_failures[0].run, 2);
        assert_eq!(d.rows[0].latency_p50_delta_ms, Some(20.0));
    }

    #[test]
    fn a_collapse_over_many_runs_and_slower_answers_regress() {
        let base = runs("a", &[true; 10], 500.0);
        let new = runs(
            "a",
            &[
                true, false, true, false, false, true, false, true, false, true,
            ],
            500.0,
        );
        let d = diff(&base, &new, Thresholds::default());
        assert_eq!(d.rows[0].change, Change::Regressed, "{d:?}");
        assert!(d.regressed());
        let slow = diff(&base, &runs("a", &[true; 10], 900.0), Thresholds::default());
        assert_eq!(slow.rows[0].change, Change::Regressed);
        assert!(slow.rows[0].reasons[0].contains("+400 ms"));
        let lenient = Thresholds {
            max_latency_increase_ms: 500.0,
            ..Thresholds::default()
        };
        assert!(!diff(&base, &runs("a", &[true; 10], 900.0), lenient).regressed());
    }

    #[test]
    fn tests_added_and_removed_are_named() {
        let base = runs("old", &[true], 500.0);
        let new = runs("fresh", &[true], 500.0);
        let d = diff(&base, &new, Thresholds::default());
        assert_eq!(d.tests_added, ["fresh"]);
        assert_eq!(d.tests_removed, ["old"]);
        assert_eq!(d.rows[0].change, Change::Added);
        assert_eq!(d.rows[1].change, Change::Removed);
        assert!(!d.regressed());
        assert!(markdown(&d).contains("| fresh | cafe@10dB | - → 1/1 |"));
    }

    #[test]
    fn noise_kpis_that_moved_are_said_per_row() {
        let mut base = runs("a", &[true, true], 500.0);
        let mut new = runs("a", &[true, false], 500.0);
        for r in base.iter_mut().chain(new.iter_mut()) {
            r.metrics.no_answers = Some(0);
            r.metrics.asked_to_repeat = Some(1);
            r.metrics.abandoned = Some(false);
        }
        new[1].metrics.no_answers = Some(1);
        new[1].metrics.abandoned = Some(true);
        let d = diff(&base, &new, Thresholds::default());
        assert!(
            text(&d).contains(
                "noise KPIs a [cafe@10dB] over 2 → 2 calls: no answers 0 → 1, abandoned 0 → 1"
            ),
            "{}",
            text(&d)
        );
        // What did not move is not said.
        assert!(!text(&d).contains("asked to repeat"), "{}", text(&d));
        assert!(!text(&diff(&base, &base, Thresholds::default())).contains("noise KPIs"));
    }
}
