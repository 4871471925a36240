//! The command line: the only place that prints for humans and maps errors to exit codes.

mod analyze;
mod call;
mod demo;
mod judge;
#[cfg(feature = "devices")]
mod live;
mod load;
mod noise;
mod results;
mod run;
mod setup;
mod speech;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::audio::AudioError;
use crate::noise::NoiseError;
use crate::speech::SpeechError;

/// Test voice agents the way callers reach them: as sound, over a websocket, in noisy places.
#[derive(Parser)]
#[command(name = "voicesim", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// The command line as clap describes it: its help, and the CLI reference made from it.
pub fn command() -> clap::Command {
    <Cli as clap::CommandFactory>::command()
}

#[derive(clap::Args)]
struct SchemaArgs {
    /// Which file's schema.
    #[arg(value_enum)]
    document: crate::schema::Document,
}

#[derive(Subcommand)]
enum Command {
    /// Run the built-in reference voice agent (an order-status line) with optional faults.
    Agent(call::AgentArgs),
    /// Work out recorded calls (production calls, two channels or two files) as voicesim
    /// works out its own: turns, latency, cut-ins, silences, talk ratio, levels, the caller's
    /// SNR and a transcript, into a results folder a report and `diff` read like a run's.
    Analyze(analyze::AnalyzeArgs),
    /// Call an agent with a scripted caller; record and transcribe the call.
    Call(call::CallArgs),
    /// Run the example suite against the built-in reference agent, clean and in a cafe at
    /// 20/10/5/0 dB; print how pass rate and the agent's hearing fall, and write its report.
    Demo(demo::DemoArgs),
    /// Run a suite of simulated calls against an agent; judge, record and report them.
    Run(run::RunArgs),
    /// How much noise the agent takes: per test and noise profile, the SNR at which it does its
    /// task half the time (--target), found by adaptive staircases of calls, with a 95% interval.
    Threshold(run::ThresholdArgs),
    /// Put the suite's calls on the agent many at once (ramp, hold, spike, soak, or an arrival
    /// rate) and follow its answers second by second.
    Load(load::LoadArgs),
    /// Check suite and noise profile files without calling anyone.
    Validate(run::ValidateArgs),
    /// Print the JSON Schema of a suite, a noise profile or a line of `results.jsonl`, for an
    /// editor's completion and checking (the YAML language server) or any validator.
    Schema(SchemaArgs),
    /// Score the LLM judge on a labelled set of transcripts: accuracy, false passes (near
    /// misses apart), false fails, seconds a verdict.
    JudgeEval(judge::JudgeEvalArgs),
    /// Compare two runs: pass rates with a test of chance, latency and hearing deltas, new
    /// failures and fixes; exits 1 when the new run regressed beyond the thresholds.
    Diff(results::DiffArgs),
    /// Rebuild a run's report from its results.
    #[command(subcommand)]
    Report(results::ReportCommand),
    /// Join the folders of a run spread over machines (`run --shard K/N`) into one run folder,
    /// with its JUnit file and report; exits as the whole run would have.
    Merge(results::MergeArgs),
    /// One row per call, step and expectation, as CSV or JSON.
    Export(results::ExportArgs),
    /// Mix, list and inspect noise profiles; record a real room as one, play one aloud.
    #[command(subcommand)]
    Noise(noise::NoiseCommand),
    /// List the sound card's input and output devices and their default formats.
    #[cfg(feature = "devices")]
    Devices,
    /// Play a WAV or a call's recording; for a call, print what was said and what happened
    /// as it is heard.
    #[cfg(feature = "devices")]
    Listen(live::ListenArgs),
    /// Fetch the speech models (and the local chat model) into the cache folder, as `make
    /// setup` does in a source checkout: what an installed voicesim needs once before its first
    /// call.
    Setup(setup::SetupArgs),
    /// Speak text to a WAV file.
    Tts(speech::TtsArgs),
    /// Transcribe an audio file.
    Stt(speech::SttArgs),
}

/// Exit codes are part of the interface: scripts and CI branch on them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Every test passed / the command did what was asked.
    Ok = 0,
    /// Some test failed.
    Failed = 1,
    /// The input was wrong: a file, a suite, a profile, a flag.
    BadInput = 2,
    /// The agent or a provider (speech, LLM) could not be reached or failed.
    Unreachable = 3,
    /// voicesim itself failed (a bug): in a run, some call's result says where; every other
    /// call's result, the summary and the JUnit file are still written.
    Internal = 4,
}

/// An error on its way to the user: what to print and how to exit.
#[derive(Debug)]
pub struct CliError {
    pub exit: Exit,
    pub message: String,
}

impl CliError {
    pub fn bad_input(message: impl Into<String>) -> Self {
        CliError {
            exit: Exit::BadInput,
            message: message.into(),
        }
    }
}

impl From<NoiseError> for CliError {
    fn from(e: NoiseError) -> Self {
        CliError::bad_input(e.to_string())
    }
}

impl From<SpeechError> for CliError {
    fn from(e: SpeechError) -> Self {
        let exit = match e {
            SpeechError::Unreachable { .. } | SpeechError::Engine { .. } => Exit::Unreachable,
            SpeechError::Missing { .. } | SpeechError::Config { .. } | SpeechError::Audio(_) => {
                Exit::BadInput
            }
        };
        CliError {
            exit,
            message: e.to_string(),
        }
    }
}

impl From<AudioError> for CliError {
    fn from(e: AudioError) -> Self {
        CliError::bad_input(e.to_string())
    }
}

pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            // clap uses 2 for usage errors and 0 for --help/--version: the same contract as ours.
            return ExitCode::from(e.exit_code() as u8);
        }
    };
    let result = crate::guard::catch(|| match cli.command {
        Command::Agent(args) => call::agent(args),
        Command::Analyze(args) => analyze::analyze(args),
        Command::Call(args) => call::call(args),
        Command::Demo(args) => demo::run(args),
        Command::Noise(cmd) => noise::run(cmd),
        #[cfg(feature = "devices")]
        Command::Devices => live::list(),
        #[cfg(feature = "devices")]
        Command::Listen(args) => live::listen(args),
        Command::Run(args) => run::run(args),
        Command::Threshold(args) => run::threshold(args),
        Command::Load(args) => load::load(args),
        Command::Validate(args) => run::validate(args),
        Command::Schema(args) => {
            print!("{}", args.document.text());
            Ok(Exit::Ok)
        }
        Command::Diff(args) => results::diff(args),
        Command::Report(cmd) => results::report(cmd),
        Command::Export(args) => results::export(args),
        Command::Merge(args) => results::merge(args),
        Command::Setup(args) => setup::setup(args),
        Command::Tts(args) => speech::tts(args),
        Command::Stt(args) => speech::stt(args),
        Command::JudgeEval(args) => judge::judge_eval(args),
    })
    .unwrap_or_else(|panic| {
        Err(CliError {
            exit: Exit::Internal,
            message: format!("voicesim failed (a bug; please report it): {panic}"),
        })
    });
    match result {
        Ok(exit) => ExitCode::from(exit as u8),
        Err(e) => {
            eprintln!("error: {}", e.message);
            ExitCode::from(e.exit as u8)
        }
    }
}
