//! `voicesim analyze`: production call recordings worked out as voicesim works out its own
//! calls, into a results folder that `report html`, `export` and `diff` read like a run's.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use clap::Args;
use rayon::prelude::*;

use super::{CliError, Exit};
use crate::analyze::{self, Channel, Sides};
use crate::report::folder::{self, ResultsFile};
use crate::report::html::HtmlOptions;
use crate::report::{Origin, Outcome, RunResult};
use crate::speech::{Stt, Whisper};
use crate::suite::Condition;

#[derive(Args)]
pub struct AnalyzeArgs {
    /// Two-channel call recordings (WAV, FLAC, MP3 or OGG Vorbis, any rate), or folders
    /// holding them.
    calls: Vec<PathBuf>,
    /// A call recorded as two files: the caller's side, then the agent's. Give it again for
    /// more calls.
    #[arg(long, num_args = 2, value_names = ["CALLER", "AGENT"])]
    pair: Vec<PathBuf>,
    /// Which channel of a two-channel recording is the caller (Twilio, Vonage, Telnyx and
    /// voicesim put the caller left).
    #[arg(long, value_enum, default_value = "left")]
    caller: Channel,
    /// Folder for results.jsonl, the report and a copy of each call.
    #[arg(long, default_value = "voicesim-analyze")]
    out: PathBuf,
    /// Replace what --out holds from an earlier run or analysis.
    #[arg(long)]
    force: bool,
    /// Leave out the transcripts (no speech recognition, much faster).
    #[arg(long)]
    no_transcript: bool,
    /// Calls worked out at once [default: the machine's cores].
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=256))]
    parallel: Option<u64>,
}

/// One call to work out: its name in the results and where its sides are.
struct Call {
    name: String,
    source: Source,
}

enum Source {
    Stereo(PathBuf),
    Pair(PathBuf, PathBuf),
}

const AUDIO: [&str; 5] = ["wav", "flac", "mp3", "ogg", "oga"];

/// The recordings named: files as given, folders searched for audio files (in name order).
fn calls(args: &AnalyzeArgs) -> Result<Vec<Call>, CliError> {
    let mut calls = Vec::new();
    for path in &args.calls {
        if path.is_dir() {
            let mut found = Vec::new();
            walk(path, &mut found).map_err(|e| {
                CliError::bad_input(format!("{}: cannot read: {e}", path.display()))
            })?;
            if found.is_empty() {
                return Err(CliError::bad_input(format!(
                    "{}: holds no audio files ({})",
                    path.display(),
                    AUDIO.join(", ")
                )));
            }
            found.sort();
            calls.extend(found.into_iter().map(|file| Call {
                name: name(&file, Some(path)),
                source: Source::Stereo(file),
            }));
        } else if path.is_file() {
            calls.push(Call {
                name: name(path, None),
                source: Source::Stereo(path.clone()),
            });
        } else {
            return Err(CliError::bad_input(format!(
                "{}: no such file or folder",
                path.display()
            )));
        }
    }
    for pair in args.pair.chunks(2) {
        if let [caller, agent] = pair {
            calls.push(Call {
                name: name(caller, None),
                source: Source::Pair(caller.clone(), agent.clone()),
            });
        }
    }
    if calls.is_empty() {
        return Err(CliError::bad_input(
            "no calls given: name two-channel recordings or folders of them, or --pair CALLER \
             AGENT",
        ));
    }
    // Two calls of one name would share a folder: number the later ones.
    let mut seen = std::collections::HashMap::new();
    for call in &mut calls {
        let n = seen.entry(call.name.clone()).or_insert(0);
        *n += 1;
        if *n > 1 {
            call.name = format!("{}-{n}", call.name);
        }
    }
    Ok(calls)
}

fn walk(dir: &Path, found: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            walk(&path, found)?;
        } else if path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| AUDIO.contains(&e.to_ascii_lowercase().as_str()))
        {
            found.push(path);
        }
    }
    Ok(())
}

/// A call's name: its path from the folder it was found in (that folder's name first), or its
/// file name, less the extension.
fn name(file: &Path, under: Option<&Path>) -> String {
    let rel = under
        .and_then(|dir| file.strip_prefix(dir.parent().unwrap_or(dir)).ok())
        .unwrap_or_else(|| Path::new(file.file_name().unwrap_or_default()));
    rel.with_extension("").to_string_lossy().replace('\\', "/")
}

pub fn analyze(args: AnalyzeArgs) -> Result<Exit, CliError> {
    let calls = calls(&args)?;
    let out = &args.out;
    let cannot = cannot_write(out);
    if folder::holds_a_run(out) {
        if !args.force {
            return Err(CliError::bad_input(format!(
                "{}: holds an earlier run or analysis; choose another --out, or add --force to \
                 replace it",
                out.display()
            )));
        }
        folder::clear(out).map_err(cannot)?;
    }
    std::fs::create_dir_all(out).map_err(cannot)?;
    let stt: Option<Arc<dyn Stt>> = if args.no_transcript {
        None
    } else {
        Some(Arc::new(Whisper::load_default()?))
    };
    let results_file = ResultsFile::append_to(&out.join(folder::RESULTS)).map_err(cannot)?;
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(args.parallel.map_or(0, |n| n as usize))
        .build()
        .map_err(|e| CliError::bad_input(format!("cannot start worker threads: {e}")))?;
    let outcomes: Vec<Result<RunResult, CliError>> = pool.install(|| {
        calls
            .par_iter()
            .map(|call| {
                let result = one(call, args.caller, stt.as_deref(), out)?;
                // Written as each call is done: a stopped analysis keeps what it finished.
                results_file.append(&result).map_err(cannot)?;
                eprintln!("analyzed {}", call.name);
                Ok(result)
            })
            .collect()
    });
    let mut results = Vec::new();
    let mut failed = Vec::new();
    for (call, outcome) in calls.iter().zip(outcomes) {
        match outcome {
            Ok(r) => results.push(r),
            Err(e) => failed.push(format!("{}: {}", call.name, e.message)),
        }
    }
    print!("{}", table(&results));
    if !results.is_empty() {
        let report = out.join(folder::REPORT);
        crate::report::html::write(&results, out, &report, None, &HtmlOptions::default())
            .map_err(cannot)?;
        println!(
            "\n{} calls analyzed; results: {}, report: {}",
            results.len(),
            out.join(folder::RESULTS).display(),
            report.display()
        );
    }
    if failed.is_empty() {
        Ok(Exit::Ok)
    } else {
        Err(CliError::bad_input(format!(
            "{} of {} calls could not be analyzed:\n  {}",
            failed.len(),
            calls.len(),
            failed.join("\n  ")
        )))
    }
}

fn cannot_write(out: &Path) -> impl Fn(std::io::Error) -> CliError + Copy + '_ {
    move |e| CliError::bad_input(format!("{}: cannot write: {e}", out.display()))
}

/// Works out one call and keeps its recording (caller left, agent right) in its folder.
fn one(
    call: &Call,
    caller: Channel,
    stt: Option<&dyn Stt>,
    out: &Path,
) -> Result<RunResult, CliError> {
    let sides = match &call.source {
        Source::Stereo(path) => Sides::stereo(path, caller)?,
        Source::Pair(caller, agent) => Sides::pair(caller, agent)?,
    };
    let analysis = analyze::analyze(&sides, stt)?;
    let condition = Condition::recorded();
    let dir = folder::call_dir(&call.name, &condition.label(), 1);
    let mut record = analysis.record;
    record.outcome.caller = sides.caller;
    record.outcome.agent = sides.agent;
    record.save(&out.join(&dir)).map_err(cannot_write(out))?;
    // In turn order, as a run's.
    let latencies: Vec<f64> = record
        .turns
        .iter()
        .filter_map(|t| t.response_latency_ms)
        .collect();
    Ok(RunResult {
        suite: "recorded calls".into(),
        test: call.name.clone(),
        tags: Vec::new(),
        condition,
        run: 1,
        trial: None,
        seed: 0,
        call_id: call.name.clone(),
        origin: Origin {
            voicesim: env!("CARGO_PKG_VERSION").into(),
            agent: match &call.source {
                Source::Stereo(path) => path.display().to_string(),
                Source::Pair(_, agent) => agent.display().to_string(),
            },
            protocol: "recording".into(),
            seed: 0,
        },
        started_at: folder::now(),
        // Nothing was asked of the agent, so nothing is judged.
        outcome: Outcome::NotJudged,
        steps: Vec::new(),
        expectations: Vec::new(),
        metrics: analysis.metrics,
        latencies_ms: latencies,
        reactions: Vec::new(),
        faults: Vec::new(),
        ended: None,
        stopped_by: None,
        transcript: record.transcript,
        recording: Some(dir),
        error: None,
        panic: None,
    })
}

/// One row per call: what a person checks first.
fn table(results: &[RunResult]) -> String {
    let width = results
        .iter()
        .map(|r| r.test.len())
        .max()
        .unwrap_or(4)
        .max(4);
    let mut s = format!(
        "{:width$}  {:>7}  {:>5}  {:>14}  {:>8}  {:>16}  {:>8}  {:>10}  {:>9}\n",
        "call",
        "seconds",
        "turns",
        "latency p50/95",
        "overlap",
        "cut-ins (caller)",
        "silence",
        "talk ratio",
        "caller SNR"
    );
    let ms = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.0}"));
    for r in results {
        let m = &r.metrics;
        s.push_str(&format!(
            "{:width$}  {:>7.1}  {:>5}  {:>14}  {:>8}  {:>16}  {:>8}  {:>10}  {:>9}\n",
            r.test,
            m.duration_s,
            m.turns,
            format!("{}/{} ms", ms(m.latency_p50_ms), ms(m.latency_p95_ms)),
            format!("{} ms", ms(m.overlap_ms)),
            format!(
                "{} ({})",
                m.caller_cut_ins.unwrap_or(0) + m.agent_cut_ins.unwrap_or(0),
                m.caller_cut_ins.unwrap_or(0)
            ),
            format!("{} ms", ms(m.silence_max_ms)),
            m.talk_ratio
                .map_or("-".into(), |t| format!("{:.0}%", t * 100.0)),
            m.caller_snr_db.map_or("-".into(), |d| format!("{d:.1} dB")),
        ));
    }
    s
}
