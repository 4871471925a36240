//! `voicesim run` and `voicesim validate`.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use clap::Args;

use super::{CliError, Exit};
use crate::llm::{ChatClient, LlmConfig};
use crate::report::{self, Outcome, ResultsFile, RunResult};
use crate::sim::run::{self, Plan, Target};
use crate::sim::Senses;
use crate::speech::{SttEngine, TtsEngine, Voice};
use crate::suite::Suite;
use crate::transport::Protocol;

#[derive(Args)]
pub struct RunArgs {
    /// The suite file.
    suite: PathBuf,
    /// The agent's websocket URL [default: the suite's agent.url].
    #[arg(long)]
    agent: Option<String>,
    /// [default: the suite's agent.protocol, else twilio]
    #[arg(long, value_enum)]
    protocol: Option<Protocol>,
    /// Runs of every test per condition (pass^k) [default: the suite's].
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=100))]
    runs: Option<u32>,
    /// Calls at the same time.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u64).range(1..=64))]
    parallel: u64,
    /// Only tests with one of these tags (comma-separated or repeated).
    #[arg(long, value_delimiter = ',')]
    tags: Vec<String>,
    /// Fixes noise, bursts and ids of every call: same seed, same audio.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Where results.jsonl, junit.xml and the calls go.
    #[arg(long, short, default_value = "voicesim-results")]
    out: PathBuf,
    /// Send audio unpaced, for agents that accept it.
    #[arg(long)]
    fast: bool,
    /// Extra handshake header, "NAME: VALUE".
    #[arg(long = "header", value_name = "NAME: VALUE", value_parser = super::call::header)]
    headers: Vec<(String, String)>,
    /// The caller's voice.
    #[arg(long, value_enum, default_value_t)]
    tts: TtsEngine,
    /// The caller's ears.
    #[arg(long, value_enum, default_value_t)]
    stt: SttEngine,
}

#[derive(Args)]
pub struct ValidateArgs {
    /// The suite file.
    suite: PathBuf,
}

fn load(path: &Path) -> Result<Suite, CliError> {
    Suite::load(path).map_err(|e| CliError::bad_input(e.to_string()))
}

pub fn validate(args: ValidateArgs) -> Result<Exit, CliError> {
    let suite = load(&args.suite)?;
    let calls = run::count(&suite, &[], None);
    println!(
        "{}: ok: {} tests, {} calls per run",
        args.suite.display(),
        suite.tests.len(),
        calls
    );
    Ok(Exit::Ok)
}

/// The LLM client, when the environment configures one.
pub fn llm_from_env() -> Result<Option<Arc<ChatClient>>, CliError> {
    Ok(LlmConfig::from_env()
        .map_err(CliError::bad_input)?
        .map(|c| Arc::new(ChatClient::new(c))))
}

/// Every step must be speakable before the first call starts.
fn check_speakable(suite: &Suite, llm: bool) -> Result<(), CliError> {
    for test in &suite.tests {
        for (i, step) in test.steps.iter().enumerate() {
            if step.static_utterance.is_none() && step.audio.is_none() && !llm {
                return Err(CliError::bad_input(format!(
                    "{}: test {:?} steps[{i}] has no static_utterance or audio, so an LLM must \
                     play the caller: set VOICESIM_LLM_BASE_URL (and VOICESIM_LLM_MODEL)",
                    suite.name, test.name
                )));
            }
        }
    }
    Ok(())
}

pub fn run(args: RunArgs) -> Result<Exit, CliError> {
    let suite = load(&args.suite)?;
    let url = args
        .agent
        .clone()
        .or(suite.agent.url.clone())
        .ok_or_else(|| {
            CliError::bad_input(format!(
            "{}: no agent to call: pass --agent ws://HOST:PORT/PATH or set agent.url in the suite",
            args.suite.display()
        ))
        })?;
    let mut headers = args.headers.clone();
    for (name, value) in &suite.agent.headers {
        headers.push((
            name.clone(),
            expand_env(value).map_err(CliError::bad_input)?,
        ));
    }
    let target = Target {
        url,
        protocol: args
            .protocol
            .or(suite.agent.protocol)
            .unwrap_or(Protocol::Twilio),
        rate: suite.agent.rate.unwrap_or(16_000),
        headers,
        fast: args.fast,
    };
    let plan = Plan {
        runs: args.runs,
        parallel: args.parallel as usize,
        tags: args.tags.clone(),
        seed: args.seed,
        out: args.out.clone(),
    };
    let llm = llm_from_env()?;
    check_speakable(&suite, llm.is_some())?;
    let senses = Senses {
        tts: args.tts.open()?.into(),
        voice: Voice::default(),
        stt: args.stt.open()?.into(),
    };
    let (results, exit) = execute(suite, target, plan, senses, llm)?;
    let _ = results;
    Ok(exit)
}

/// `${NAME}` in a header value reads the environment, so secrets stay out of suite files.
fn expand_env(value: &str) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = value;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let end = rest[start..]
            .find('}')
            .ok_or_else(|| format!("{value:?}: an unclosed ${{"))?;
        let name = &rest[start + 2..start + end];
        out.push_str(
            &std::env::var(name).map_err(|_| format!("environment variable {name} is not set"))?,
        );
        rest = &rest[start + end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Runs a plan with a progress display, writes results.jsonl and junit.xml, prints the
/// summary; the exit code says how it went.
pub fn execute(
    suite: Suite,
    target: Target,
    plan: Plan,
    senses: Senses,
    llm: Option<Arc<ChatClient>>,
) -> Result<(Vec<RunResult>, Exit), CliError> {
    let total = run::count(&suite, &plan.tags, plan.runs);
    if total == 0 {
        return Err(CliError::bad_input(format!(
            "no test carries the tags {}; the suite's tags: {}",
            plan.tags.join(", "),
            suite
                .tests
                .iter()
                .flat_map(|t| t.tags.clone())
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    std::fs::create_dir_all(&plan.out)
        .map_err(|e| CliError::bad_input(format!("{}: cannot create: {e}", plan.out.display())))?;
    let results_path = plan.out.join("results.jsonl");
    // A run starts a fresh file: results of an older run would mix with this one.
    let _ = std::fs::remove_file(&results_path);
    let results_file = Arc::new(ResultsFile::create(&results_path).map_err(|e| {
        CliError::bad_input(format!("{}: cannot write: {e}", results_path.display()))
    })?);
    let suite = Arc::new(suite);
    let out = plan.out.clone();
    let runtime = super::call::runtime()?;
    let results = runtime.block_on(async {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<RunResult>();
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = indicatif::ProgressBar::new(total as u64);
            bar.set_style(
                indicatif::ProgressStyle::with_template(
                    "{bar:30} {pos}/{len} calls  {elapsed}  {msg}",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            );
            bar
        });
        let progress = tokio::spawn(async move {
            let mut n = 0;
            while let Some(r) = rx.recv().await {
                n += 1;
                let line = format!(
                    "{:<9} {} [{}] #{}",
                    label(r.outcome),
                    r.test,
                    r.condition.label(),
                    r.run
                );
                match &bar {
                    Some(bar) => {
                        bar.inc(1);
                        bar.set_message(line);
                    }
                    None => eprintln!("[{n}/{total}] {line}"),
                }
            }
            if let Some(bar) = bar {
                bar.finish_and_clear();
            }
        });
        let results =
            run::run_suite(suite.clone(), target, plan, senses, llm, results_file, tx).await;
        let _ = progress.await;
        results
    });
    // In the suite's order: tests as written, conditions as listed, runs counting up.
    let place = |r: &RunResult| {
        let test = suite
            .tests
            .iter()
            .position(|t| t.name == r.test)
            .unwrap_or(usize::MAX);
        let condition = suite
            .tests
            .get(test)
            .and_then(|t| suite.conditions(t).iter().position(|c| *c == r.condition))
            .unwrap_or(usize::MAX);
        (test, condition, r.run)
    };
    let mut ordered = results;
    ordered.sort_by_cached_key(place);
    let junit_path = out.join("junit.xml");
    std::fs::write(&junit_path, report::junit(&suite.name, &ordered))
        .map_err(|e| CliError::bad_input(format!("{}: cannot write: {e}", junit_path.display())))?;

    println!("\n{}", report::summary(&ordered));
    for r in ordered.iter().filter(|r| r.outcome != Outcome::Passed) {
        println!(
            "{} {} [{}] #{}: {}",
            label(r.outcome),
            r.test,
            r.condition.label(),
            r.run,
            r.why()
        );
    }
    let passed = ordered
        .iter()
        .filter(|r| r.outcome == Outcome::Passed)
        .count();
    println!(
        "\n{passed}/{} calls passed; results: {}, {}, calls in {}",
        ordered.len(),
        out.join("results.jsonl").display(),
        junit_path.display(),
        out.join("calls").display()
    );
    let exit = if ordered.iter().any(|r| r.panic.is_some()) {
        Exit::Internal
    } else if ordered.iter().any(|r| r.outcome == Outcome::Error) {
        Exit::Unreachable
    } else if passed < ordered.len() {
        Exit::Failed
    } else {
        Exit::Ok
    };
    Ok((ordered, exit))
}

fn label(outcome: Outcome) -> &'static str {
    match outcome {
        Outcome::Passed => "PASS",
        Outcome::Failed => "FAIL",
        Outcome::NotJudged => "NOT JUDGED",
        Outcome::Error => "ERROR",
    }
}
