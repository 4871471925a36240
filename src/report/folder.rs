//! A results folder: what a run leaves and how it is read back.
//!
//! ```text
//! OUT/run.json        the plan: suite hash, options, seed, voicesim version (for --resume)
//! OUT/results.jsonl   one line per finished call, appended and synced as each call ends
//! OUT/junit.xml       the same calls for CI
//! OUT/report.html     the report a person opens
//! OUT/calls/TEST/CONDITION/run-N/   call.wav, events.jsonl, call.json, envelope.json
//! OUT/load.json, OUT/timeseries.jsonl   a load run's plan and its figures second by second
//! ```

use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use super::RunResult;

pub const RESULTS: &str = "results.jsonl";
pub const PLAN: &str = "run.json";
pub const JUNIT: &str = "junit.xml";
pub const REPORT: &str = "report.html";
pub const CALLS: &str = "calls";
/// The task thresholds of a run with staircases.
pub const THRESHOLD: &str = "threshold.json";
/// A load run's plan, in place of run.json.
pub const LOAD_PLAN: &str = "load.json";
/// A load run's figures, one line per second.
pub const SERIES: &str = "timeseries.jsonl";

/// A results file or folder that cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum FolderError {
    #[error("{path}: {message}")]
    Unreadable { path: PathBuf, message: String },
    #[error("{path}:{line}: not a voicesim result: {message}")]
    BadLine {
        path: PathBuf,
        line: usize,
        message: String,
    },
}

/// A call's folder inside a results folder, from what identifies the call.
pub fn call_dir(test: &str, condition: &str, run: u32) -> PathBuf {
    Path::new(CALLS)
        .join(safe_name(test))
        .join(safe_name(condition))
        .join(format!("run-{run}"))
}

/// A name safe as a folder name.
fn safe_name(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// The folder and results file a user named: either may be given.
pub fn locate(path: &Path) -> (PathBuf, PathBuf) {
    if path.is_dir() {
        (path.to_path_buf(), path.join(RESULTS))
    } else {
        let dir = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        (dir.to_path_buf(), path.to_path_buf())
    }
}

/// What `results.jsonl` holds.
#[derive(Debug, Default)]
pub struct Stored {
    pub results: Vec<RunResult>,
    /// Bytes of a last line cut off mid-write (a crash): not a result.
    pub torn: usize,
    /// Length of the file up to the end of the last whole line.
    pub whole: u64,
}

/// Reads every result of `results.jsonl`. A last line without its newline that does not parse
/// is a call cut off by a crash: counted in `torn`, not an error.
pub fn read(path: &Path) -> Result<Stored, FolderError> {
    let unreadable = |message: String| FolderError::Unreadable {
        path: path.to_path_buf(),
        message,
    };
    let bytes = crate::file::read(path, crate::file::RESULTS_LIMIT)
        .map_err(|e| unreadable(format!("{e}; give a results folder or its results.jsonl")))?;
    parse(&bytes, path)
}

/// The results in the bytes of a `results.jsonl` (named `path` in errors).
pub fn parse(bytes: &[u8], path: &Path) -> Result<Stored, FolderError> {
    let mut out = Stored::default();
    let mut start = 0;
    let mut number = 0;
    while start < bytes.len() {
        number += 1;
        let rest = bytes.get(start..).unwrap_or_default();
        let (line, next, complete) = match rest.iter().position(|&b| b == b'\n') {
            Some(i) => (rest.get(..i).unwrap_or_default(), start + i + 1, true),
            None => (rest, bytes.len(), false),
        };
        if line.iter().all(u8::is_ascii_whitespace) {
            if complete {
                out.whole = next as u64;
            }
            start = next;
            continue;
        }
        match serde_json::from_slice::<RunResult>(line) {
            Ok(r) => {
                out.results.push(r);
                out.whole = next as u64;
            }
            Err(_) if !complete => out.torn = line.len(),
            Err(e) => {
                return Err(FolderError::BadLine {
                    path: path.to_path_buf(),
                    line: number,
                    message: e.to_string(),
                })
            }
        }
        start = next;
    }
    Ok(out)
}

/// Appends results to `results.jsonl`, one synced line per call, from any task.
pub struct ResultsFile {
    path: PathBuf,
    file: Mutex<std::fs::File>,
}

impl ResultsFile {
    /// Opens `path` for appending; a torn last line (a crash mid-write) is cut off first, so the
    /// next result starts on a line of its own.
    pub fn append_to(path: &Path) -> std::io::Result<Self> {
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(path)?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)?;
        if let Some(&last) = bytes.last() {
            if last != b'\n' {
                let keep = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
                file.set_len(keep as u64)?;
                file.seek(SeekFrom::End(0))?;
            }
        }
        Ok(ResultsFile {
            path: path.to_path_buf(),
            file: Mutex::new(file),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn append(&self, result: &RunResult) -> std::io::Result<()> {
        let mut line = serde_json::to_vec(result).map_err(std::io::Error::other)?;
        line.push(b'\n');
        let mut file = self.file.lock().unwrap_or_else(|e| e.into_inner());
        file.write_all(&line)?;
        file.sync_data()
    }
}

/// What a run was asked to do: equal plans make the same calls with the same seeds, so a
/// resumed run may only go on under the plan it started with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunPlan {
    pub voicesim: String,
    pub suite: String,
    /// sha256 of the suite file's bytes.
    pub suite_sha256: String,
    /// The agent's URL with credentials and query values removed.
    pub agent: String,
    pub protocol: String,
    /// The wire rate, where the protocol lets it vary (raw PCM, Vonage, Pipecat).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate: Option<u32>,
    pub seed: u64,
    pub runs: Option<u32>,
    pub tags: Vec<String>,
    /// `--only`: the tests and conditions the run kept.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub only: Vec<String>,
    /// `--noise`: the conditions that replaced the suite's.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub noise: Vec<String>,
    pub tts: String,
    pub stt: String,
    pub fast: bool,
    /// Calls of the whole run, all shards together.
    pub calls: usize,
    /// The slice of the calls this folder holds, when the run was spread over machines.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<Shard>,
}

/// One of `count` deterministic slices of a run's calls (`--shard 2/4`): the calls in plan
/// order are dealt round-robin, so each shard gets every test and condition in turn, and a call
/// keeps its seed whichever shard makes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Shard {
    /// 1-based.
    pub index: u32,
    pub count: u32,
}

impl Shard {
    /// Whether the call at `position` (0-based, in plan order) is this shard's.
    pub fn holds(self, position: usize) -> bool {
        position % self.count as usize == (self.index - 1) as usize
    }
}

impl std::str::FromStr for Shard {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let bad = || format!("{text:?}: give the shard as K/N, 1 <= K <= N (e.g. 2/4)");
        let (k, n) = text.split_once('/').ok_or_else(bad)?;
        let (index, count) = (
            k.trim().parse::<u32>().map_err(|_| bad())?,
            n.trim().parse::<u32>().map_err(|_| bad())?,
        );
        if index == 0 || index > count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// `run.json`: the plan and when it started.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PlanFile {
    #[serde(flatten)]
    pub plan: RunPlan,
    pub started_at: String,
}

impl RunPlan {
    /// The fields that differ from `other`, by name.
    pub fn differences(&self, other: &RunPlan) -> Vec<String> {
        let (a, b) = (
            serde_json::to_value(self).unwrap_or_default(),
            serde_json::to_value(other).unwrap_or_default(),
        );
        let (Some(a), Some(b)) = (a.as_object(), b.as_object()) else {
            return Vec::new();
        };
        a.iter()
            .filter(|(k, v)| b.get(k.as_str()) != Some(v))
            .map(|(k, v)| {
                format!(
                    "{k}: {} then, {} now",
                    b.get(k.as_str()).cloned().unwrap_or_default(),
                    v
                )
            })
            .collect()
    }
}

/// How `--out` treats a folder that holds an earlier run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reuse {
    /// Refuse it.
    Refuse,
    /// Go on with it: finished calls are kept and skipped.
    Resume,
    /// Replace it.
    Overwrite,
}

/// The folder holds an earlier run.
pub fn holds_a_run(dir: &Path) -> bool {
    [RESULTS, PLAN, LOAD_PLAN]
        .iter()
        .any(|f| dir.join(f).exists())
}

/// Deletes what a run writes in `dir` (and nothing else a user may keep there).
pub fn clear(dir: &Path) -> std::io::Result<()> {
    for name in [RESULTS, PLAN, JUNIT, REPORT, THRESHOLD, LOAD_PLAN, SERIES] {
        match std::fs::remove_file(dir.join(name)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
    }
    match std::fs::remove_dir_all(dir.join(CALLS)) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// Credentials and query values removed: a URL fit for results and reports.
pub fn redact_url(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let (authority, path) = match rest.find(['/', '?', '#']) {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    let authority = match authority.rsplit_once('@') {
        Some((_, host)) => format!("***@{host}"),
        None => authority.to_string(),
    };
    let path = match path.split_once('?') {
        Some((p, query)) => {
            let query = query.split('#').next().unwrap_or_default();
            let pairs: Vec<String> = query
                .split('&')
                .map(|pair| match pair.split_once('=') {
                    Some((k, _)) => format!("{k}=***"),
                    None => pair.to_string(),
                })
                .collect();
            format!("{p}?{}", pairs.join("&"))
        }
        None => path.to_string(),
    };
    if scheme.is_empty() {
        format!("{authority}{path}")
    } else {
        format!("{scheme}://{authority}{path}")
    }
}

/// Now, as RFC 3339 UTC to the second.
pub fn now() -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_deal_every_call_to_exactly_one() {
        let shards: Vec<Shard> = (1..=3).map(|k| format!("{k}/3").parse().unwrap()).collect();
        for position in 0..10 {
            assert_eq!(shards.iter().filter(|s| s.holds(position)).count(), 1);
        }
        assert!(shards[1].holds(4));
        for bad in ["0/3", "4/3", "3", "a/b", "1/0"] {
            assert!(bad.parse::<Shard>().is_err(), "{bad}");
        }
        assert_eq!(shards[2].to_string(), "3/3");
    }

    #[test]
    fn urls_lose_their_secrets() {
        assert_eq!(
            redact_url("wss://user:pw@agent.example/voice?token=abc&x=1#f"),
            "wss://***@agent.example/voice?token=***&x=***"
        );
        assert_eq!(redact_url("ws://127.0.0.1:8765/"), "ws://127.0.0.1:8765/");
        assert_eq!(redact_url("ws://h?key=s"), "ws://h?key=***");
    }
}
