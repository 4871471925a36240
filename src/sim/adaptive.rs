//! The staircases of `snr: adaptive`: for each test and adaptive profile, a few interleaved
//! staircases over the SNR, started above and below, each trial a whole call made like any
//! other (same caller, judge, recording and results line), so `--parallel` keeps the agent busy
//! and no staircase waits on another's call.

use std::future::Future;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use super::job::{mix, Job};
use crate::psychometric::{Settings, Staircase};
use crate::report::folder::Shard;
use crate::report::threshold::evidence;
use crate::report::{Outcome, RunResult, Trial};
use crate::suite::{Condition, Suite, TestCase};

/// How the staircases go: how they move, where they start, how many calls a test and profile
/// may take in all.
#[derive(Debug, Clone, PartialEq)]
pub struct Staircases {
    pub settings: Settings,
    /// One staircase starts at each.
    pub starts_db: Vec<f64>,
    /// Calls per test and profile, all its staircases together.
    pub budget: u32,
}

impl Default for Staircases {
    /// Chosen on simulated agents (`cargo bench --bench threshold`): one start well above and
    /// one well below where most agents' cafe thresholds lie, 40 calls in all.
    fn default() -> Self {
        Staircases {
            settings: Settings::default(),
            starts_db: vec![25.0, 0.0],
            budget: 40,
        }
    }
}

/// Calls after which a staircase that got no pass or fail gives up (the agent is down).
const ERRORS_IN_A_ROW: u32 = 3;

/// Each test carrying `tags` with each of its adaptive profiles, those of `shard` when given.
pub fn groups(suite: &Suite, tags: &[String], shard: Option<Shard>) -> Vec<(TestCase, String)> {
    suite
        .selected(tags)
        .into_iter()
        .flat_map(|test| {
            suite
                .adaptive(test)
                .into_iter()
                .map(move |profile| (test.clone(), profile))
        })
        .enumerate()
        .filter(|(position, _)| shard.is_none_or(|s| s.holds(*position)))
        .map(|(_, group)| group)
        .collect()
}

/// One staircase to climb.
pub(crate) struct Climb {
    test: TestCase,
    profile: String,
    /// 0-based.
    index: u32,
    start_db: f64,
    /// The calls its test and profile may still make, shared with its sibling staircases.
    budget: Arc<AtomicU32>,
    /// Its trials of an earlier, resumed run, in order.
    earlier: Vec<RunResult>,
}

/// Every staircase of the tests carrying `tags` (of `shard`), each with its trials among
/// `done` (an earlier run being resumed).
pub(crate) fn climbs(
    suite: &Suite,
    tags: &[String],
    shard: Option<Shard>,
    stairs: &Staircases,
    done: &[RunResult],
) -> Vec<Climb> {
    let mut climbs = Vec::new();
    for (test, profile) in groups(suite, tags, shard) {
        let ours = |r: &&RunResult| r.test == test.name && r.condition.profile == profile;
        let spent = done.iter().filter(ours).count() as u32;
        let budget = Arc::new(AtomicU32::new(stairs.budget.saturating_sub(spent)));
        for (index, &start_db) in stairs.starts_db.iter().enumerate() {
            let index = index as u32;
            let mut earlier: Vec<RunResult> = done
                .iter()
                .filter(ours)
                .filter(|r| r.trial.is_some_and(|t| t.staircase == index + 1))
                .cloned()
                .collect();
            earlier.sort_by_key(|r| r.trial.map(|t| t.n));
            climbs.push(Climb {
                test: test.clone(),
                profile: profile.clone(),
                index,
                start_db,
                budget: budget.clone(),
                earlier,
            });
        }
    }
    climbs
}

/// Climbs one staircase to its end (its reversals, or the budget spent), each trial made by
/// `call` (which judges it and writes it down): its trials.
pub(crate) async fn climb<F, Fut>(
    climb: Climb,
    stairs: &Staircases,
    seed: u64,
    call: F,
) -> Vec<RunResult>
where
    F: Fn(Job, Trial) -> Fut,
    Fut: Future<Output = RunResult>,
{
    let count = stairs.starts_db.len() as u32;
    let target = stairs.settings.rule.target();
    let mut staircase = Staircase::new(stairs.settings, climb.start_db);
    let mut n = 0;
    for r in &climb.earlier {
        n = r.trial.map_or(n, |t| t.n);
        if let Some(passed) = evidence(r.outcome) {
            staircase.record(passed);
        }
    }
    let mut made = Vec::new();
    let mut errors = 0;
    while !staircase.done() && errors < ERRORS_IN_A_ROW {
        let spend = climb
            .budget
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |left| {
                left.checked_sub(1)
            });
        if spend.is_err() {
            break;
        }
        n += 1;
        let job = Job {
            test: climb.test.clone(),
            condition: Condition {
                profile: climb.profile.clone(),
                snr: Some(staircase.level()),
            },
            // Unique in the test and profile, and the same in every run of the plan.
            run: (n - 1) * count + climb.index + 1,
            seed: mix(
                seed,
                &[
                    &climb.test.name,
                    &climb.profile,
                    "staircase",
                    &climb.index.to_string(),
                    &n.to_string(),
                ],
            ),
        };
        let trial = Trial {
            staircase: climb.index + 1,
            n,
            target,
        };
        let result = call(job, trial).await;
        match evidence(result.outcome) {
            Some(passed) => {
                staircase.record(passed);
                errors = 0;
            }
            None if result.outcome == Outcome::Error => errors += 1,
            None => {}
        }
        made.push(result);
    }
    made
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every trial of every staircase against an agent that passes at 10 dB and up, starting
    /// from the trials in `done`: (staircase, n, snr).
    fn climb_all(suite: &Suite, done: &[RunResult]) -> Vec<RunResult> {
        let stairs = Staircases::default();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a runtime");
        let mut made: Vec<RunResult> = done.to_vec();
        for c in climbs(suite, &[], None, &stairs, done) {
            let call = |job: Job, trial: Trial| async move {
                let mut r = RunResult::new("s", &job.test, &job.condition, job.run, job.seed);
                r.trial = Some(trial);
                r.error = None;
                r.outcome = if job.condition.snr.is_some_and(|snr| snr >= 10.0) {
                    Outcome::Passed
                } else {
                    Outcome::Failed
                };
                r
            };
            made.extend(runtime.block_on(climb(c, &stairs, 7, call)));
        }
        made
    }

    fn key(r: &RunResult) -> (u32, u32, u64, Option<f64>, u32) {
        let t = r.trial.expect("a trial");
        (t.staircase, t.n, r.seed, r.condition.snr, r.run)
    }

    #[test]
    fn a_resumed_staircase_goes_on_where_it_stopped_and_keeps_the_budget() {
        let suite = Suite::parse(
            "name: s\nnoise: [{profile: car, snr: adaptive}]\ntests:\n  - name: t\n    steps: [{goal: g, static_utterance: hi}]\n",
            "s.yaml",
            std::path::Path::new("."),
        )
        .expect("a suite");
        let whole = climb_all(&suite, &[]);
        assert!(whole.len() <= 40 && whole.len() > 10, "{}", whole.len());
        let mut expected: Vec<_> = whole.iter().map(key).collect();
        expected.sort_by(|a, b| a.partial_cmp(b).expect("no NaN"));
        // Cut short after some of each staircase's trials, then resumed.
        let done: Vec<RunResult> = whole
            .iter()
            .filter(|r| r.trial.is_some_and(|t| t.n <= 5))
            .cloned()
            .collect();
        let mut resumed: Vec<_> = climb_all(&suite, &done).iter().map(key).collect();
        resumed.sort_by(|a, b| a.partial_cmp(b).expect("no NaN"));
        assert_eq!(resumed, expected);
    }
}
