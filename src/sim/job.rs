//! One call to make: its test, condition, run number and seed, from the suite and the run's
//! seed. Shared by a run's fixed calls, its staircases and a load run.

use crate::report::folder::Shard;
use crate::suite::{Condition, Suite, TestCase};

/// One call to make.
#[derive(Debug, Clone)]
pub(crate) struct Job {
    pub test: TestCase,
    pub condition: Condition,
    pub run: u32,
    pub seed: u64,
}

/// The calls of the tests carrying `tags`, in order, those of `shard` when given; `runs`
/// overrides the suite's. Seeds come from each call's identity, so a shard's calls are the very
/// calls the whole run makes.
pub(crate) fn jobs(
    suite: &Suite,
    tags: &[String],
    runs: Option<u32>,
    seed: u64,
    shard: Option<Shard>,
) -> Vec<Job> {
    let mut jobs = Vec::new();
    for test in suite.selected(tags) {
        let runs = runs.unwrap_or(test.runs.unwrap_or(suite.runs).0);
        for condition in suite.conditions(test) {
            for run in 1..=runs {
                let seed = mix(seed, &[&test.name, &condition.label(), &run.to_string()]);
                jobs.push(Job {
                    test: test.clone(),
                    condition: condition.clone(),
                    run,
                    seed,
                });
            }
        }
    }
    jobs.into_iter()
        .enumerate()
        .filter(|(position, _)| shard.is_none_or(|s| s.holds(*position)))
        .map(|(_, job)| job)
        .collect()
}

/// A seed per call from the run's seed and the call's identity (FNV-1a): the same call gets the
/// same noise in every run of the suite, different calls get different noise.
pub(crate) fn mix(seed: u64, parts: &[&str]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ seed;
    for part in parts {
        for b in part.bytes().chain([0]) {
            h ^= b as u64;
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    h
}
