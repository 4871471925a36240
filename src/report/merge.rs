//! One run out of its shards: the folders `voicesim run --shard K/N` left on N machines,
//! joined into a folder that reads like the run made whole on one.
//!
//! The shards must be slices of one plan (same suite bytes, agent, seed, options); each call's
//! folder is copied under `calls/` and its result points at the copy. The merged `run.json` is
//! the unsharded plan, so `voicesim run --resume` on the merged folder makes whatever calls a
//! missing or cut-short shard did not.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use super::folder::{self, PlanFile, RunPlan, Shard};
use super::RunResult;

/// Shard folders that cannot be joined, and why.
#[derive(Debug, thiserror::Error)]
pub enum MergeError {
    #[error("{path}: {message}")]
    Shard { path: PathBuf, message: String },
    #[error("{path}: cannot write: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// A shard's folder, read.
pub struct ShardRun {
    pub dir: PathBuf,
    pub plan: PlanFile,
    pub shard: Shard,
    pub results: Vec<RunResult>,
    /// Bytes of a last line cut off by a crash (not a result).
    pub torn: usize,
}

/// Reads a folder `voicesim run --shard` wrote.
pub fn read_shard(dir: &Path) -> Result<ShardRun, MergeError> {
    let fail = |message: String| MergeError::Shard {
        path: dir.to_path_buf(),
        message,
    };
    let plan_path = dir.join(folder::PLAN);
    let bytes = crate::file::read(&plan_path, crate::file::TEXT_LIMIT).map_err(|e| {
        fail(format!(
            "{e}: not a run's folder (no {}); give the --out folders of `voicesim run --shard`",
            folder::PLAN
        ))
    })?;
    let plan: PlanFile = serde_json::from_slice(&bytes)
        .map_err(|e| fail(format!("{}: not a voicesim plan: {e}", folder::PLAN)))?;
    let shard = plan.plan.shard.ok_or_else(|| {
        fail(
            "holds a whole run, not a shard: only folders of `voicesim run --shard K/N` are merged"
                .into(),
        )
    })?;
    let results_path = dir.join(folder::RESULTS);
    let stored = if results_path.exists() {
        folder::read(&results_path).map_err(|e| fail(e.to_string()))?
    } else {
        folder::Stored::default()
    };
    Ok(ShardRun {
        dir: dir.to_path_buf(),
        plan,
        shard,
        results: stored.results,
        torn: stored.torn,
    })
}

/// What the shards add up to.
#[derive(Debug)]
pub struct Merged {
    /// The unsharded plan, started when the first shard started.
    pub plan: PlanFile,
    /// Every shard's results, shard by shard.
    pub results: Vec<RunResult>,
    /// Shards of the plan no folder held.
    pub missing: Vec<Shard>,
}

/// Checks that `shards` are distinct slices of one plan and joins their results.
pub fn join(shards: &[ShardRun]) -> Result<Merged, MergeError> {
    let Some(first) = shards.first() else {
        return Err(MergeError::Shard {
            path: PathBuf::from("."),
            message: "no shard folders given".into(),
        });
    };
    let whole = |plan: &RunPlan| RunPlan {
        shard: None,
        ..plan.clone()
    };
    let plan = whole(&first.plan.plan);
    let mut seen: BTreeMap<u32, &Path> = BTreeMap::new();
    for s in shards {
        let fail = |message: String| MergeError::Shard {
            path: s.dir.clone(),
            message,
        };
        let changed = whole(&s.plan.plan).differences(&plan);
        if !changed.is_empty() {
            return Err(fail(format!(
                "not a shard of the same run as {} ({}); merge only the shards of one plan",
                first.dir.display(),
                changed.join("; ")
            )));
        }
        if s.shard.count != first.shard.count {
            return Err(fail(format!(
                "shard {} of a run in {} shards, but {} is shard {}",
                s.shard,
                s.shard.count,
                first.dir.display(),
                first.shard
            )));
        }
        if let Some(other) = seen.insert(s.shard.index, &s.dir) {
            return Err(fail(format!(
                "is shard {} and so is {}; give each shard once",
                s.shard,
                other.display()
            )));
        }
    }
    let mut calls = HashSet::new();
    let mut results = Vec::new();
    for s in shards {
        for r in &s.results {
            if !calls.insert((r.test.clone(), r.condition.label(), r.run)) {
                return Err(MergeError::Shard {
                    path: s.dir.clone(),
                    message: format!(
                        "{} [{}] #{} is in two shards: these are not slices of one run",
                        r.test,
                        r.condition.label(),
                        r.run
                    ),
                });
            }
            results.push(r.clone());
        }
    }
    let missing = (1..=first.shard.count)
        .filter(|k| !seen.contains_key(k))
        .map(|index| Shard {
            index,
            count: first.shard.count,
        })
        .collect();
    let started_at = shards
        .iter()
        .map(|s| s.plan.started_at.clone())
        .min()
        .unwrap_or_default();
    Ok(Merged {
        plan: PlanFile { plan, started_at },
        results,
        missing,
    })
}

/// Writes the merged run into `out` (which holds no run): run.json, results.jsonl and every
/// call's folder, each result pointing at its copy. The reports are the caller's to write.
pub fn write(merged: &mut Merged, shards: &[ShardRun], out: &Path) -> Result<(), MergeError> {
    let cannot = |path: &Path| {
        let path = path.to_path_buf();
        move |source| MergeError::Write { path, source }
    };
    std::fs::create_dir_all(out).map_err(cannot(out))?;
    for s in shards {
        let calls = s.dir.join(folder::CALLS);
        if calls.is_dir() {
            copy_tree(&calls, &out.join(folder::CALLS))?;
        }
    }
    for r in &mut merged.results {
        let dir = out.join(folder::call_dir(&r.test, &r.condition.label(), r.run));
        r.recording = dir.is_dir().then_some(dir);
    }
    let plan_path = out.join(folder::PLAN);
    let json = serde_json::to_vec_pretty(&merged.plan)
        .map_err(|e| cannot(&plan_path)(std::io::Error::other(e)))?;
    std::fs::write(&plan_path, json).map_err(cannot(&plan_path))?;
    let results_path = out.join(folder::RESULTS);
    let file = folder::ResultsFile::append_to(&results_path).map_err(cannot(&results_path))?;
    for r in &merged.results {
        file.append(r).map_err(cannot(&results_path))?;
    }
    Ok(())
}

/// Copies the files under `from` into `to`, keeping the layout; a file already there is a call
/// two shards both made.
fn copy_tree(from: &Path, to: &Path) -> Result<(), MergeError> {
    let write = |path: &Path| {
        let path = path.to_path_buf();
        move |source| MergeError::Write { path, source }
    };
    std::fs::create_dir_all(to).map_err(write(to))?;
    let entries = std::fs::read_dir(from).map_err(|e| MergeError::Shard {
        path: from.to_path_buf(),
        message: e.to_string(),
    })?;
    for entry in entries {
        let entry = entry.map_err(|e| MergeError::Shard {
            path: from.to_path_buf(),
            message: e.to_string(),
        })?;
        let (source, target) = (entry.path(), to.join(entry.file_name()));
        if source.is_dir() {
            copy_tree(&source, &target)?;
        } else if target.exists() {
            return Err(MergeError::Shard {
                path: source,
                message: format!(
                    "{} came from another shard already: these are not slices of one run",
                    target.display()
                ),
            });
        } else {
            std::fs::copy(&source, &target).map_err(write(&target))?;
        }
    }
    Ok(())
}
