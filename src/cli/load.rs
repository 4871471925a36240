//! `voicesim load`: the suite's calls on the agent many at once, on a schedule.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;

use super::{CliError, Exit};
use crate::load::series::AbortRule;
use crate::load::{self, LoadPlan};
use crate::report::folder::{self, ResultsFile};
use crate::report::{self, Outcome};
use crate::suite::load::{Arrival, Schedule, Stage};

#[derive(Args)]
pub struct LoadArgs {
    /// The suite file: its tests are the calls, taken in turn.
    suite: PathBuf,
    #[command(flatten)]
    target: super::run::TargetArgs,
    /// Reach CALLS at once by the end of DURATION, from where the last stage ended; repeat for
    /// a ramp, hold, spike or soak: --stage 1m:100 --stage 5m:100 [default: the suite's load:]
    #[arg(long = "stage", value_name = "DURATION:CALLS")]
    stages: Vec<Stage>,
    /// Instead of stages: calls arriving at random (Poisson) at this many a second.
    #[arg(
        long,
        value_name = "PER_SECOND",
        conflicts_with = "stages",
        requires = "duration"
    )]
    arrival_rate: Option<f64>,
    /// How long calls arrive (with --arrival-rate): 30s, 10m.
    #[arg(long, value_parser = humantime::parse_duration)]
    duration: Option<Duration>,
    /// The most calls at once with --arrival-rate; arrivals beyond it are refused and counted.
    #[arg(long, default_value_t = 1000)]
    max: u32,
    /// The share of calls whose words are transcribed and judged (the rest: not judged).
    #[arg(long, default_value = "10%", value_parser = share)]
    transcribe: f64,
    /// Transcriptions at the same time (they run after each call, never holding one up).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=64))]
    stt_workers: u64,
    /// Stop early when a figure crosses a line: "error_rate > 5%", "latency_p95_ms > 2000".
    #[arg(long = "abort-on", value_name = "RULE")]
    abort_on: Vec<AbortRule>,
    /// Only tests with one of these tags.
    #[arg(long, value_delimiter = ',')]
    tags: Vec<String>,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Where load.json, timeseries.jsonl, results.jsonl, junit.xml, report.html and the calls go.
    #[arg(long, short, default_value = "voicesim-load")]
    out: PathBuf,
    /// Replace an earlier run in --out.
    #[arg(long)]
    overwrite: bool,
}

/// "10%", "0.1", "100%", "0".
fn share(text: &str) -> Result<f64, String> {
    let value: f64 = match text.trim().strip_suffix('%') {
        Some(percent) => percent.trim().parse::<f64>().map(|p| p / 100.0),
        None => text.trim().parse(),
    }
    .map_err(|_| format!("{text:?}: give a share such as 10% or 0.1"))?;
    if !(0.0..=1.0).contains(&value) {
        return Err(format!("{text:?}: a share is between 0% and 100%"));
    }
    Ok(value)
}

pub fn load(args: LoadArgs) -> Result<Exit, CliError> {
    let suite = super::run::load(&args.suite)?;
    let target = args.target.target(&args.suite, &suite, false)?;
    let named = |e: String| CliError::bad_input(format!("{}: {e}", args.suite.display()));
    let schedule = match (&args.stages[..], args.arrival_rate, &suite.load) {
        ([_, ..], _, _) => Schedule::stages(args.stages.clone()),
        ([], Some(rate), _) => Schedule::arrival(Arrival {
            rate,
            duration: args.duration.unwrap_or_default(),
            max: args.max,
        }),
        ([], None, Some(spec)) => spec.schedule(),
        ([], None, None) => Err(
            "no load to put on the agent: pass --stage DURATION:CALLS (or --arrival-rate N \
             --duration D), or give the suite a load: section"
                .into(),
        ),
    }
    .map_err(named)?;
    let jobs = crate::sim::run::count(&suite, &args.tags, Some(1), None);
    if jobs == 0 {
        return Err(named(format!(
            "no test carries the tags {}",
            args.tags.join(", ")
        )));
    }
    for test in suite.selected(&args.tags) {
        for (i, step) in test.steps.iter().enumerate() {
            if !step.scripted() {
                return Err(named(format!(
                    "test {:?} steps[{i}]: a load run's caller says scripted lines only \
                     (static_utterance, audio or dtmf); leave LLM-played tests out with --tags",
                    test.name
                )));
            }
        }
    }
    load::make_room(schedule.peak(), load::TAPED_CALL_BYTES).map_err(CliError::bad_input)?;

    let out = args.out.clone();
    let cannot = |e: std::io::Error| CliError::bad_input(format!("{}: {e}", out.display()));
    std::fs::create_dir_all(&out).map_err(cannot)?;
    if folder::holds_a_run(&out) {
        if !args.overwrite {
            return Err(CliError::bad_input(format!(
                "{}: holds an earlier run; pass --overwrite to replace it, or choose another --out",
                out.display()
            )));
        }
        folder::clear(&out).map_err(cannot)?;
    }
    let plan_json = serde_json::json!({
        "voicesim": env!("CARGO_PKG_VERSION"),
        "suite": suite.name,
        "agent": folder::redact_url(&target.url),
        "protocol": target.protocol.name(),
        "seed": args.seed,
        "load": match &schedule {
            Schedule::Stages(stages) => serde_json::json!({ "stages": stages }),
            Schedule::Arrival(a) => serde_json::json!({ "arrival": a }),
        },
        "transcribe": args.transcribe,
        "abort_on": args.abort_on.iter().map(|r| r.text.clone()).collect::<Vec<_>>(),
        "started_at": folder::now(),
    });
    std::fs::write(
        out.join(folder::LOAD_PLAN),
        serde_json::to_vec_pretty(&plan_json).unwrap_or_default(),
    )
    .map_err(cannot)?;
    let results_path = out.join(folder::RESULTS);
    let results = Arc::new(ResultsFile::append_to(&results_path).map_err(cannot)?);
    let series_path = out.join(folder::SERIES);
    let mut series = std::fs::File::create(&series_path).map_err(cannot)?;
    let senses = args.target.senses()?;
    let plan = LoadPlan {
        schedule,
        tags: args.tags.clone(),
        seed: args.seed,
        out: out.clone(),
        transcribe: args.transcribe,
        stt_workers: args.stt_workers as usize,
        abort_on: args.abort_on.clone(),
    };
    eprintln!(
        "load on {} for {:.0} s, up to {} calls at once; {}% of calls transcribed",
        folder::redact_url(&target.url),
        plan.schedule.seconds(),
        plan.schedule.peak(),
        plan.transcribe * 100.0
    );
    let terminal = std::io::stderr().is_terminal();
    let runtime = super::call::runtime()?;
    let outcome = runtime.block_on(load::run_load(
        Arc::new(suite.clone()),
        target,
        plan,
        senses,
        results,
        |row, line| {
            // Each second as it ends: a crash keeps every second before it.
            if let Ok(mut json) = serde_json::to_vec(row) {
                json.push(b'\n');
                let _ = series.write_all(&json);
            }
            if terminal || row.t % 10 == 0 {
                eprintln!("{line}");
            }
        },
    ));
    let results = outcome.results;
    let junit = out.join(folder::JUNIT);
    std::fs::write(&junit, report::junit(&suite.name, &results)).map_err(cannot)?;
    let page = out.join(folder::REPORT);
    report::html::write(&results, &out, &page, None, &Default::default()).map_err(cannot)?;

    println!("\n{}", report::summary(&results));
    let t = &outcome.totals;
    let count = |o: Outcome| results.iter().filter(|r| r.outcome == o).count();
    println!(
        "{} calls: {} answered the websocket, {} failed, {} refused at the door (max reached); \
         {} passed, {} failed, {} not judged, {} errors",
        t.started,
        t.connected,
        t.failed,
        t.refused,
        count(Outcome::Passed),
        count(Outcome::Failed),
        count(Outcome::NotJudged),
        count(Outcome::Error),
    );
    println!(
        "figures: {} (one line a second), results: {}, report: {}",
        series_path.display(),
        results_path.display(),
        page.display()
    );
    if let Some(why) = &outcome.aborted {
        println!("aborted: {why}");
    }
    if let Some(warning) = report::late_warning(&results) {
        eprintln!("\n{warning}");
    }
    let failed = count(Outcome::Failed) + count(Outcome::Error);
    Ok(if results.iter().any(|r| r.panic.is_some()) {
        Exit::Internal
    } else if t.connected == 0 && t.started > 0 {
        Exit::Unreachable
    } else if outcome.aborted.is_some() || failed > 0 {
        Exit::Failed
    } else {
        Exit::Ok
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn shares_read_as_percent_or_fraction() {
        assert_eq!(super::share("10%"), Ok(0.1));
        assert_eq!(super::share("0.25"), Ok(0.25));
        assert_eq!(super::share("100%"), Ok(1.0));
        assert!(super::share("150%").is_err());
        assert!(super::share("lots").is_err());
    }
}
