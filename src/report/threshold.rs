//! The task threshold of each test under each adaptive profile: the staircase trials of a run
//! fitted (see [`crate::psychometric`]), for the console, `threshold.json`, the report, export
//! and diff.

use serde::{Deserialize, Serialize};

use super::{Outcome, RunResult};
use crate::psychometric::{self, Estimate};

/// What `threshold.json` holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ThresholdFile {
    pub thresholds: Vec<TaskThreshold>,
}

/// One test under one noise profile: the SNR at which it does its task `target` of the time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskThreshold {
    pub test: String,
    pub profile: String,
    /// The pass share the threshold is at (0.5 for 1-down-1-up).
    pub target: f64,
    pub estimate: Estimate,
    /// The classic check: the mean SNR of the staircases' last reversals.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reversal_mean_db: Option<f64>,
    /// Calls made, including those that counted for nothing (errors, not judged).
    pub calls: u32,
    /// The trials that counted: SNR and whether the call passed.
    pub trials: Vec<Point>,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Point {
    pub snr_db: f64,
    pub passed: bool,
}

/// A trial's evidence: a pass or a fail; anything else says nothing about hearing.
pub fn evidence(outcome: Outcome) -> Option<bool> {
    match outcome {
        Outcome::Passed => Some(true),
        Outcome::Failed => Some(false),
        Outcome::NotJudged | Outcome::Error => None,
    }
}

/// Every test and profile with staircase trials in `results`, in the order they first appear.
pub fn of(results: &[RunResult]) -> Vec<TaskThreshold> {
    let mut keys: Vec<(String, String)> = Vec::new();
    for r in results.iter().filter(|r| r.trial.is_some()) {
        let key = (r.test.clone(), r.condition.profile.clone());
        if !keys.contains(&key) {
            keys.push(key);
        }
    }
    keys.into_iter()
        .map(|(test, profile)| {
            let mut group: Vec<&RunResult> = results
                .iter()
                .filter(|r| r.trial.is_some() && r.test == test && r.condition.profile == profile)
                .collect();
            group.sort_by_key(|r| r.trial.map(|t| (t.staircase, t.n)));
            let target = group
                .iter()
                .find_map(|r| r.trial.map(|t| t.target))
                .unwrap_or(0.5);
            let trials: Vec<Point> = group
                .iter()
                .filter_map(|r| {
                    Some(Point {
                        snr_db: r.condition.snr?,
                        passed: evidence(r.outcome)?,
                    })
                })
                .collect();
            let pairs: Vec<(f64, bool)> = trials.iter().map(|p| (p.snr_db, p.passed)).collect();
            let mut staircases: Vec<u32> = group
                .iter()
                .filter_map(|r| r.trial)
                .map(|t| t.staircase)
                .collect();
            staircases.dedup();
            let reversals: Vec<Vec<f64>> = staircases
                .iter()
                .map(|&s| {
                    let levels: Vec<f64> = group
                        .iter()
                        .filter(|r| r.trial.is_some_and(|t| t.staircase == s))
                        .filter_map(|r| r.condition.snr)
                        .collect();
                    psychometric::reversals(&levels)
                })
                .collect();
            TaskThreshold {
                estimate: psychometric::fit(&pairs, target),
                reversal_mean_db: psychometric::reversal_mean(&reversals),
                calls: group.len() as u32,
                test,
                profile,
                target,
                trials,
            }
        })
        .collect()
}

impl TaskThreshold {
    /// `7.2 dB (5.9 to 8.4)`, or where the threshold lies past the range tried.
    pub fn describe(&self) -> String {
        let db = |v: Option<f64>, open: &str| v.map_or(open.to_string(), |v| format!("{v:.1}"));
        match &self.estimate {
            Estimate::Found(f) => format!(
                "{:.1} dB ({} to {})",
                f.threshold_db,
                db(f.low_db, "below"),
                db(f.high_db, "above")
            ),
            Estimate::Below { lowest_db } => {
                format!("below {lowest_db:.1} dB (did its task at the loudest noise tried)")
            }
            Estimate::Above { highest_db } => {
                format!("above {highest_db:.1} dB (failed even at the quietest noise tried)")
            }
            Estimate::Nothing => "not measured (no call passed or failed)".into(),
        }
    }
}

/// The console table: test, profile, threshold with its interval, slope, calls.
pub fn table(thresholds: &[TaskThreshold]) -> String {
    let Some(first) = thresholds.first() else {
        return String::new();
    };
    let tw = thresholds
        .iter()
        .map(|t| t.test.len())
        .max()
        .unwrap_or(4)
        .max(4);
    let pw = thresholds
        .iter()
        .map(|t| t.profile.len())
        .max()
        .unwrap_or(7)
        .max(7);
    let target = first.target * 100.0;
    let mut out = format!(
        "task threshold: the SNR at which each test passes {target:.0}% of its calls (95% interval)\n\
         {:<tw$}  {:<pw$}  {:<28}  {:>8}  {:>5}  {:>9}\n",
        "test", "profile", "threshold", "slope", "calls", "reversals"
    );
    for t in thresholds {
        let slope = match &t.estimate {
            Estimate::Found(f) => format!("{:.2}/dB", f.slope_per_db),
            _ => "-".into(),
        };
        let reversals = t
            .reversal_mean_db
            .map_or("-".into(), |v| format!("{v:.1} dB"));
        out.push_str(&format!(
            "{:<tw$}  {:<pw$}  {:<28}  {:>8}  {:>5}  {:>9}\n",
            t.test,
            t.profile,
            t.describe(),
            slope,
            t.calls,
            reversals
        ));
    }
    out
}
