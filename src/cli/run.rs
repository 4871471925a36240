//! `voicesim run` and `voicesim validate`.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use clap::Args;

use super::{CliError, Exit};
use crate::llm::{self, Chat, Engine, LlmError};
use crate::noise::{LoadedNoise, NoiseProfile};
use crate::psychometric::{Rule, Settings};
use crate::report::diff::{self, Diff, Thresholds};
use crate::report::folder::{self, ResultsFile, Reuse, RunPlan, Shard};
use crate::report::html::HtmlOptions;
use crate::report::{self, Outcome, RunResult};
use crate::sim::adaptive::Staircases;
use crate::sim::gate::Gate;
use crate::sim::run::{self, Plan, Target};
use crate::sim::Senses;
use crate::speech::{SttEngine, TtsEngine, Voice};
use crate::suite::{NoiseCondition, Snr, SnrSweep, Suite};
use crate::transport::Protocol;

#[derive(Args)]
pub struct RunArgs {
    /// The suite file.
    suite: PathBuf,
    #[command(flatten)]
    target: TargetArgs,
    /// Runs of every test per condition (pass^k) [default: the suite's].
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=100))]
    runs: Option<u32>,
    /// Calls at the same time (as many as open files and memory allow), or `auto`: from one at
    /// a time, one more after each round of calls in which voicesim kept its timing, half as
    /// many after one in which it did not, up to 64.
    #[arg(long, default_value = "4", value_parser = parallel)]
    parallel: Parallel,
    /// Only tests with one of these tags (comma-separated or repeated).
    #[arg(long, value_delimiter = ',')]
    tags: Vec<String>,
    /// Only these calls: `TEST` (all its conditions) or `TEST/CONDITION` with the condition as
    /// reports name it (`clean`, `cafe@20dB`); repeat for more.
    #[arg(long, value_name = "TEST[/CONDITION]")]
    only: Vec<String>,
    /// Every test under these noise conditions instead of the suite's (comma-separated or
    /// repeated): a profile (`clean`, `cafe`, a profile file) at its own SNR, or at one
    /// (`cafe@10`). For `threshold`: the profiles to find the threshold under.
    #[arg(
        long,
        value_delimiter = ',',
        value_name = "PROFILE[@SNR]",
        allow_negative_numbers = true
    )]
    noise: Vec<String>,
    /// Print the calls the run would make, one JSON object a line (test, condition, run,
    /// tags), and call no one.
    #[arg(long)]
    list: bool,
    /// Fixes noise, bursts and ids of every call: same seed, same audio.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Make only slice K of N of the run's calls (1-based), for spreading one run over N
    /// machines; `voicesim merge` joins the shards' folders into one run.
    #[arg(long, value_name = "K/N")]
    shard: Option<Shard>,
    /// Where run.json, results.jsonl, junit.xml, report.html and the calls go; a folder holding
    /// an earlier run is refused unless --resume or --overwrite.
    #[arg(long, short, default_value = "voicesim-results")]
    out: PathBuf,
    /// Send audio unpaced, for agents that accept it.
    #[arg(long)]
    fast: bool,
    /// Finish the earlier run in --out: calls already in its results.jsonl are kept and not
    /// made again; the suite and options must be the ones it started with.
    #[arg(long, conflicts_with = "overwrite")]
    resume: bool,
    /// Replace the earlier run in --out (its results, reports and calls/).
    #[arg(long)]
    overwrite: bool,
    #[command(flatten)]
    baseline: BaselineArgs,
    /// Put the recordings inside report.html (Ogg Opus) instead of linking calls/.
    #[arg(long)]
    embed_audio: bool,
    #[command(flatten)]
    pub llm: LlmArgs,
    #[command(flatten)]
    staircase: StaircaseArgs,
}

/// How the staircases of `snr: adaptive` profiles (and of `voicesim threshold`) go.
#[derive(Args, Clone)]
pub struct StaircaseArgs {
    /// The pass rate the threshold is at, in percent: 50 (1-down-1-up), 70.7 (2-down-1-up) or
    /// 79.4 (3-down-1-up).
    #[arg(long, default_value_t = 50.0, value_name = "PERCENT", value_parser = target,
          help_heading = "Threshold")]
    target: f64,
    /// Calls per test and noise profile, all its staircases together.
    #[arg(long, default_value_t = 40, value_name = "CALLS",
          value_parser = clap::value_parser!(u32).range(4..=1000), help_heading = "Threshold")]
    budget: u32,
    /// Where the staircases start, one per SNR (dB, comma-separated): above and below the
    /// threshold, so they close in from both sides.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "25,0",
        value_name = "DB",
        allow_negative_numbers = true,
        help_heading = "Threshold"
    )]
    start_db: Vec<f64>,
    /// The step before the first two reversals and after them, in dB.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "6,2",
        value_name = "COARSE,FINE",
        num_args = 1,
        help_heading = "Threshold"
    )]
    step_db: Vec<f64>,
    /// A staircase stops after this many reversals.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(2..=100),
          help_heading = "Threshold")]
    reversals: u32,
    /// The SNRs a staircase may try, in dB.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "-10,40",
        value_name = "LOW,HIGH",
        allow_negative_numbers = true,
        help_heading = "Threshold"
    )]
    snr_range: Vec<f64>,
}

fn target(s: &str) -> Result<f64, String> {
    s.parse::<f64>()
        .ok()
        .filter(|p| Rule::for_percent(*p).is_some())
        .ok_or_else(|| format!("{s:?}: the up-down rules reach 50, 70.7 or 79.4 (percent)"))
}

impl StaircaseArgs {
    pub fn staircases(&self) -> Result<Staircases, CliError> {
        let pair = |v: &[f64], flag: &str, what: &str| match v {
            [a, b] => Ok((*a, *b)),
            _ => Err(CliError::bad_input(format!(
                "--{flag}: give two numbers, {what} (e.g. --{flag} {})",
                if flag == "step-db" { "6,2" } else { "-10,40" }
            ))),
        };
        let (coarse_db, fine_db) = pair(&self.step_db, "step-db", "the coarse and the fine step")?;
        let (lowest_db, highest_db) =
            pair(&self.snr_range, "snr-range", "the lowest and highest SNR")?;
        if !(coarse_db > 0.0 && fine_db > 0.0) {
            return Err(CliError::bad_input("--step-db: steps must be above 0 dB"));
        }
        if lowest_db >= highest_db {
            return Err(CliError::bad_input("--snr-range: LOW must be below HIGH"));
        }
        if let Some(s) = self
            .start_db
            .iter()
            .find(|s| !(lowest_db..=highest_db).contains(*s))
        {
            return Err(CliError::bad_input(format!(
                "--start-db {s}: outside --snr-range {lowest_db},{highest_db}"
            )));
        }
        Ok(Staircases {
            settings: Settings {
                rule: Rule::for_percent(self.target).unwrap_or(Rule::OneDown),
                coarse_db,
                fine_db,
                coarse_reversals: 2,
                reversals: self.reversals,
                lowest_db,
                highest_db,
            },
            starts_db: self.start_db.clone(),
            budget: self.budget,
        })
    }
}

/// `voicesim threshold`: the run's arguments, and which profiles to measure.
#[derive(Args)]
pub struct ThresholdArgs {
    #[command(flatten)]
    run: RunArgs,
}

/// The language model of an LLM-played caller and an LLM judge.
#[derive(Args, Clone, Default)]
pub struct LlmArgs {
    /// `local`: the GGUF model in process (offline); `http`: the OpenAI-compatible endpoint of
    /// VOICESIM_LLM_BASE_URL / VOICESIM_LLM_MODEL [default: http when those are set, else local].
    #[arg(long = "llm", value_enum, value_name = "ENGINE")]
    pub engine: Option<LlmChoice>,
    /// The local model: a GGUF chat model of the Qwen2 family [default:
    /// VOICESIM_LLM_MODEL_FILE, else the one `make setup` fetches].
    #[arg(long = "llm-model", value_name = "FILE")]
    pub model: Option<PathBuf>,
}

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum LlmChoice {
    Local,
    Http,
}

impl LlmArgs {
    /// The model, made ready once for the whole run: only when `needed`, and said on stderr.
    pub fn open(&self, needed: bool) -> Result<Option<Arc<dyn Chat>>, CliError> {
        if !needed {
            return Ok(None);
        }
        let engine = match self.engine {
            None => Engine::Auto,
            Some(LlmChoice::Local) => Engine::Local,
            Some(LlmChoice::Http) => Engine::Http,
        };
        let started = std::time::Instant::now();
        let chat = llm::open(engine, self.model.as_deref()).map_err(llm_error)?;
        eprintln!(
            "LLM caller and judge: {} (ready in {:.1} s)",
            chat.describe(),
            started.elapsed().as_secs_f64()
        );
        Ok(Some(Arc::from(chat)))
    }
}

/// A model that cannot be had is the user's to fix (exit 2); an endpoint that does not answer
/// is unreachable (exit 3).
pub fn llm_error(e: LlmError) -> CliError {
    let exit = match e {
        LlmError::Unreachable { .. } | LlmError::Status { .. } => Exit::Unreachable,
        _ => Exit::BadInput,
    };
    CliError {
        exit,
        message: e.to_string(),
    }
}

/// Whether some test of `suite` needs a language model: a caller line nobody wrote, or a goal
/// or expectation no rule decides.
pub fn needs_llm(suite: &Suite) -> bool {
    suite.tests.iter().any(|test| {
        test.steps.iter().any(|step| {
            !step.scripted() || (step.check.is_none() && step.success_criteria.is_some())
        }) || test
            .expectations
            .iter()
            .any(|e| e.check.is_none() && e.description.is_some())
    })
}

/// The agent to call, and the caller's voice and ears (`run` and `load`).
#[derive(Args)]
pub struct TargetArgs {
    /// The agent's websocket URL [default: the suite's agent.url].
    #[arg(long)]
    agent: Option<String>,
    /// [default: the suite's agent.protocol, else twilio]
    #[arg(long, value_enum)]
    protocol: Option<Protocol>,
    /// Wire rate in Hz for raw-pcm, vonage and pipecat [default: the suite's agent.rate,
    /// else 16000].
    #[arg(long, value_parser = super::call::wire_rate)]
    rate: Option<u32>,
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

impl TargetArgs {
    /// The agent to call: these choices, else the suite's `agent:`.
    pub fn target(&self, suite_path: &Path, suite: &Suite, fast: bool) -> Result<Target, CliError> {
        let url = self
            .agent
            .clone()
            .or(suite.agent.url.clone())
            .ok_or_else(|| {
                CliError::bad_input(format!(
                "{}: no agent to call: pass --agent ws://HOST:PORT/PATH or set agent.url in the \
                 suite",
                suite_path.display()
            ))
            })?;
        let mut headers = self.headers.clone();
        for (name, value) in &suite.agent.headers {
            headers.push((
                name.clone(),
                expand_env(value).map_err(CliError::bad_input)?,
            ));
        }
        Ok(Target {
            url,
            protocol: self
                .protocol
                .or(suite.agent.protocol)
                .unwrap_or(Protocol::Twilio),
            rate: self.rate.or(suite.agent.rate).unwrap_or(16_000),
            headers,
            fast,
        })
    }

    /// The engines opened.
    pub fn senses(&self) -> Result<Senses, CliError> {
        Ok(Senses {
            tts: self.tts.open()?.into(),
            voice: Voice::default(),
            stt: self.stt.open()?.into(),
        })
    }

    /// The engines by name, for a run's plan.
    pub fn engines(&self) -> (String, String) {
        (
            format!("{:?}", self.tts).to_lowercase(),
            format!("{:?}", self.stt).to_lowercase(),
        )
    }
}

/// An earlier run to compare with, and when the comparison fails.
#[derive(Args, Clone)]
pub struct BaselineArgs {
    /// Compare with an earlier run (its folder or results.jsonl): the report shows the
    /// deltas, and a run's exit code says whether it regressed against it.
    #[arg(long, value_name = "RESULTS")]
    pub baseline: Option<PathBuf>,
    #[command(flatten)]
    pub gate: GateArgs,
}

/// Every result of a results folder (or its `results.jsonl`); a torn last line is noted.
pub fn load_results(path: &Path) -> Result<Vec<RunResult>, CliError> {
    let (_, file) = folder::locate(path);
    let stored = folder::read(&file).map_err(|e| CliError::bad_input(e.to_string()))?;
    if stored.torn > 0 {
        eprintln!(
            "note: {}: the last line was cut off mid-write (a crash); it is left out",
            file.display()
        );
    }
    Ok(stored.results)
}

impl BaselineArgs {
    /// The baseline's results and where they came from.
    pub fn load(&self) -> Result<Option<(PathBuf, Vec<RunResult>)>, CliError> {
        self.baseline
            .as_deref()
            .map(|b| load_results(b).map(|r| (b.to_path_buf(), r)))
            .transpose()
    }
}

/// When a comparison with a baseline fails.
#[derive(Args, Clone, Copy)]
pub struct GateArgs {
    /// Percentage points a test's pass rate may drop under a condition; only drops that are
    /// more than chance (Fisher's exact test, p < 0.05) count.
    #[arg(long, default_value_t = 0.0, value_name = "POINTS")]
    max_pass_drop: f64,
    /// Milliseconds a test's median response latency may grow under a condition.
    #[arg(long, default_value_t = 250.0, value_name = "MS")]
    max_latency_increase_ms: f64,
    /// dB a test's task threshold (`voicesim threshold`, `snr: adaptive`) may rise under a
    /// profile [default: a rise counts only beyond both runs' 95% intervals].
    #[arg(long, value_name = "DB")]
    max_threshold_rise_db: Option<f64>,
}

impl GateArgs {
    pub fn thresholds(self) -> Thresholds {
        Thresholds {
            max_pass_drop: self.max_pass_drop,
            max_latency_increase_ms: self.max_latency_increase_ms,
            max_threshold_rise_db: self.max_threshold_rise_db,
            ..Thresholds::default()
        }
    }
}

/// How a run treats its folder and what it reports besides the summary.
pub struct Output {
    pub plan: RunPlan,
    pub reuse: Reuse,
    /// The baseline's results and where they came from.
    pub baseline: Option<(PathBuf, Vec<RunResult>)>,
    pub thresholds: Thresholds,
    pub html: HtmlOptions,
}

#[derive(Args)]
pub struct ValidateArgs {
    /// Suite files, and noise profile files (told apart by their fields: a profile has
    /// `background`, `bursts` or `line` and no `tests`).
    #[arg(required = true)]
    files: Vec<PathBuf>,
}

pub fn load(path: &Path) -> Result<Suite, CliError> {
    Suite::load(path).map_err(|e| CliError::bad_input(e.to_string()))
}

/// Checks every file named, says what each holds, and fails (exit 2) if any is wrong, after
/// naming every mistake.
pub fn validate(args: ValidateArgs) -> Result<Exit, CliError> {
    let mut wrong = Vec::new();
    for file in &args.files {
        match validate_file(file) {
            Ok(said) => println!("{}: ok: {said}", file.display()),
            Err(e) => wrong.push(e.message),
        }
    }
    if wrong.is_empty() {
        Ok(Exit::Ok)
    } else {
        Err(CliError::bad_input(wrong.join("\n")))
    }
}

fn validate_file(path: &Path) -> Result<String, CliError> {
    if is_profile(path) {
        let profile = NoiseProfile::load(path)?;
        // Every recording it names is there and decodes.
        LoadedNoise::load(&profile, 16_000)?;
        return Ok(format!(
            "noise profile, {}, {}",
            counted(profile.background.len(), "background layer"),
            counted(profile.bursts.len(), "burst")
        ));
    }
    let suite = load(path)?;
    let calls = run::count(&suite, &[], None, None);
    let trials = run::most_trials(&suite, &[], &Staircases::default(), None);
    let staircases = if trials > 0 {
        format!(" and up to {trials} staircase calls (snr: adaptive, the default --budget)")
    } else {
        String::new()
    };
    Ok(format!(
        "{}, {} per run{staircases}",
        counted(suite.tests.len(), "test"),
        counted(calls, "call")
    ))
}

fn counted(n: usize, what: &str) -> String {
    format!("{n} {what}{}", if n == 1 { "" } else { "s" })
}

/// A noise profile rather than a suite: a mapping with a profile's own fields and no tests.
/// Anything else, unreadable files too, is read as a suite, whose errors say what is wrong.
fn is_profile(path: &Path) -> bool {
    let Ok(text) = crate::file::read_text(path) else {
        return false;
    };
    let Ok(serde_norway::Value::Mapping(top)) = serde_norway::from_str(&text) else {
        return false;
    };
    let has = |key: &str| top.contains_key(key);
    !has("tests") && (has("background") || has("bursts") || has("line"))
}

/// `--parallel`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Parallel {
    Fixed(u64),
    Auto,
}

impl std::fmt::Display for Parallel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Parallel::Fixed(n) => write!(f, "{n}"),
            Parallel::Auto => f.write_str("auto"),
        }
    }
}

fn parallel(s: &str) -> Result<Parallel, String> {
    match s {
        "auto" => Ok(Parallel::Auto),
        n => match n.parse::<u64>() {
            Ok(n) if n >= 1 => Ok(Parallel::Fixed(n)),
            _ => Err(format!(
                "{n:?}: give a number of calls (1 or more) or `auto`"
            )),
        },
    }
}

/// The most calls `--parallel auto` goes to.
const AUTO_MAX: u64 = 64;

pub fn run(args: RunArgs) -> Result<Exit, CliError> {
    let mut suite = load(&args.suite)?;
    if !args.noise.is_empty() {
        let conditions = args
            .noise
            .iter()
            .map(|n| noise_condition(n, &suite))
            .collect::<Result<_, _>>()?;
        suite.set_noise(conditions);
    }
    run_suite(args, suite)
}

/// `--noise cafe@10`: a profile the suite can find, at an SNR voicesim mixes.
fn noise_condition(spec: &str, suite: &Suite) -> Result<NoiseCondition, CliError> {
    let (profile, snr) = match spec.rsplit_once('@') {
        Some((profile, snr)) => {
            let db = snr
                .trim_end_matches("dB")
                .trim_end_matches("db")
                .parse::<f64>()
                .map_err(|_| {
                    CliError::bad_input(format!(
                        "--noise {spec}: {snr:?} is not an SNR in dB; write PROFILE@SNR, as cafe@10"
                    ))
                })?;
            let db = Snr::try_from(db)
                .map_err(|e| CliError::bad_input(format!("--noise {spec}: {e}")))?;
            (profile, Some(SnrSweep::One(db)))
        }
        None => (spec, None),
    };
    if profile != "clean" {
        crate::noise::NoiseProfile::find(&suite.resolve_profile(profile))?;
    }
    Ok(NoiseCondition {
        profile: profile.to_string(),
        snr,
    })
}

/// `voicesim threshold`: `run` with every noisy profile (or those named) adaptive.
pub fn threshold(args: ThresholdArgs) -> Result<Exit, CliError> {
    let mut suite = load(&args.run.suite)?;
    args.run.staircase.staircases()?;
    if let Some(spec) = args.run.noise.iter().find(|n| n.contains('@')) {
        return Err(CliError::bad_input(format!(
            "--noise {spec}: a threshold finds the SNR itself; name the profile alone"
        )));
    }
    for profile in &args.run.noise {
        if profile == "clean" {
            return Err(CliError::bad_input(
                "--noise clean: a threshold needs noise to vary; name a profile such as cafe",
            ));
        }
        crate::noise::NoiseProfile::find(&suite.resolve_profile(profile))?;
    }
    suite.all_adaptive(&args.run.noise);
    if crate::sim::adaptive::groups(&suite, &args.run.tags, None).is_empty() {
        return Err(CliError::bad_input(format!(
            "{}: no test runs under noise, so there is no threshold to find; add a noise \
             profile to the suite or pass --noise cafe",
            args.run.suite.display()
        )));
    }
    run_suite(args.run, suite)
}

fn run_suite(args: RunArgs, mut suite: Suite) -> Result<Exit, CliError> {
    suite.narrow(&args.only).map_err(CliError::bad_input)?;
    if args.list {
        return list(&suite, &args);
    }
    let target = args.target.target(&args.suite, &suite, args.fast)?;
    let staircases = args.staircase.staircases()?;
    // Never more at once than there are calls.
    let calls = (run::count(&suite, &args.tags, args.runs, args.shard)
        + run::most_trials(&suite, &args.tags, &staircases, args.shard)) as u64;
    let at_most = match args.parallel {
        Parallel::Fixed(n) => n,
        Parallel::Auto => AUTO_MAX,
    }
    .min(calls)
    .max(1);
    let plan = Plan {
        runs: args.runs,
        parallel: match args.parallel {
            Parallel::Fixed(_) => Gate::fixed(at_most as usize),
            Parallel::Auto => Gate::auto(at_most as usize),
        },
        watch: Default::default(),
        metronome: Default::default(),
        noise: Default::default(),
        tags: args.tags.clone(),
        seed: args.seed,
        out: args.out.clone(),
        done: Default::default(),
        shard: args.shard,
        staircases: staircases.clone(),
        trials_done: Vec::new(),
    };
    let suite_bytes = crate::file::read(&args.suite, crate::file::TEXT_LIMIT)
        .map_err(|e| CliError::bad_input(format!("{}: {e}", args.suite.display())))?;
    let output = Output {
        plan: RunPlan {
            voicesim: env!("CARGO_PKG_VERSION").into(),
            suite: suite.name.clone(),
            suite_sha256: sha256(&suite_bytes),
            agent: folder::redact_url(&target.url),
            protocol: target.protocol.name().into(),
            rate: target.protocol.takes_rate().then_some(target.rate),
            seed: args.seed,
            runs: args.runs,
            tags: args.tags.clone(),
            only: args.only.clone(),
            noise: args.noise.clone(),
            tts: args.target.engines().0,
            stt: args.target.engines().1,
            fast: args.fast,
            calls: run::count(&suite, &args.tags, args.runs, None)
                + run::most_trials(&suite, &args.tags, &staircases, None),
            shard: args.shard,
        },
        reuse: match (args.resume, args.overwrite) {
            (true, _) => Reuse::Resume,
            (_, true) => Reuse::Overwrite,
            _ => Reuse::Refuse,
        },
        baseline: args.baseline.load()?,
        thresholds: args.baseline.gate.thresholds(),
        html: HtmlOptions {
            embed_audio: args.embed_audio,
        },
    };
    let parallel = u32::try_from(at_most).unwrap_or(u32::MAX);
    crate::load::make_room(
        parallel,
        crate::load::call_bytes(&suite, &args.tags, target.rate),
    )
    .map_err(|e| CliError::bad_input(format!("--parallel {}: {e}", args.parallel)))?;
    let llm = args.llm.open(needs_llm(&suite))?;
    let senses = args.target.senses()?;
    let (_, exit) = execute(suite, target, plan, senses, llm, output)?;
    Ok(exit)
}

/// `run --list`: the calls, one JSON object a line, for tools that drive voicesim (the pytest
/// plugin makes an item of each).
fn list(suite: &Suite, args: &RunArgs) -> Result<Exit, CliError> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    for job in crate::sim::job::jobs(suite, &args.tags, args.runs, args.seed, args.shard) {
        let line = serde_json::json!({
            "test": job.test.name,
            "condition": job.condition,
            "label": job.condition.label(),
            "run": job.run,
            "tags": job.test.tags,
        });
        if writeln!(out, "{line}").is_err() {
            break;
        }
    }
    Ok(Exit::Ok)
}

/// Hex sha256 of `bytes`.
pub fn sha256(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Makes `out` ready for a run: refuses, replaces or resumes an earlier run there. Returns the
/// results already finished (resume) or none.
fn prepare(out: &Path, output: &Output) -> Result<Vec<RunResult>, CliError> {
    let cannot = |e: std::io::Error| CliError::bad_input(format!("{}: {e}", out.display()));
    std::fs::create_dir_all(out).map_err(cannot)?;
    let plan_path = out.join(folder::PLAN);
    let results_path = out.join(folder::RESULTS);
    if folder::holds_a_run(out) {
        match output.reuse {
            Reuse::Refuse => {
                let finished = folder::read(&results_path).map_or(0, |r| r.results.len());
                return Err(CliError::bad_input(format!(
                    "{}: holds an earlier run ({finished} finished calls); pass --resume to \
                     finish it, --overwrite to replace it, or choose another --out",
                    out.display()
                )));
            }
            Reuse::Overwrite => folder::clear(out).map_err(cannot)?,
            Reuse::Resume => {
                let started: folder::PlanFile =
                    crate::file::read(&plan_path, crate::file::TEXT_LIMIT)
                        .ok()
                        .and_then(|b| serde_json::from_slice(&b).ok())
                        .ok_or_else(|| {
                            CliError::bad_input(format!(
                                "{}: missing or unreadable, so the run there cannot be resumed; \
                             pass --overwrite to start it again",
                                plan_path.display()
                            ))
                        })?;
                let changed = output.plan.differences(&started.plan);
                if !changed.is_empty() {
                    return Err(CliError::bad_input(format!(
                        "{}: the run there was started with another plan ({}); resume it with \
                         the same suite and options, or pass --overwrite",
                        out.display(),
                        changed.join("; ")
                    )));
                }
                if !results_path.exists() {
                    return Ok(Vec::new());
                }
                let stored =
                    folder::read(&results_path).map_err(|e| CliError::bad_input(e.to_string()))?;
                if stored.torn > 0 {
                    eprintln!(
                        "note: {}: the last line was cut off by a crash ({} bytes); that call \
                         is made again",
                        results_path.display(),
                        stored.torn
                    );
                }
                return Ok(stored.results);
            }
        }
    }
    let file = folder::PlanFile {
        plan: output.plan.clone(),
        started_at: folder::now(),
    };
    let json = serde_json::to_vec_pretty(&file).map_err(|e| CliError::bad_input(e.to_string()))?;
    std::fs::write(&plan_path, json).map_err(cannot)?;
    Ok(Vec::new())
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
    llm: Option<Arc<dyn Chat>>,
    output: Output,
) -> Result<(Vec<RunResult>, Exit), CliError> {
    let total = run::count(&suite, &plan.tags, plan.runs, plan.shard)
        + run::most_trials(&suite, &plan.tags, &plan.staircases, plan.shard);
    if total == 0 && plan.shard.is_some() {
        return Err(CliError::bad_input(format!(
            "shard {} holds no calls: the run has only {} calls; use fewer shards",
            plan.shard.map(|s| s.to_string()).unwrap_or_default(),
            run::count(&suite, &plan.tags, plan.runs, None)
        )));
    }
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
    let previous = prepare(&plan.out, &output)?;
    let mut plan = plan;
    plan.done = previous
        .iter()
        .filter(|r| r.trial.is_none())
        .map(|r| (r.test.clone(), r.condition.label(), r.run))
        .collect();
    plan.trials_done = previous
        .iter()
        .filter(|r| r.trial.is_some())
        .cloned()
        .collect();
    let total = total.saturating_sub(previous.len());
    if !previous.is_empty() {
        eprintln!(
            "resuming {}: {} calls already finished, {total} to make",
            plan.out.display(),
            previous.len()
        );
    }
    let results_path = plan.out.join(folder::RESULTS);
    let results_file = Arc::new(ResultsFile::append_to(&results_path).map_err(|e| {
        CliError::bad_input(format!("{}: cannot write: {e}", results_path.display()))
    })?);
    let suite = Arc::new(suite);
    let out = plan.out.clone();
    let runtime = super::call::runtime()?;
    let gate = plan.parallel.clone();
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
            .and_then(|t| {
                let fixed = suite.conditions(t);
                match r.trial {
                    None => fixed.iter().position(|c| *c == r.condition),
                    Some(_) => suite
                        .adaptive(t)
                        .iter()
                        .position(|p| *p == r.condition.profile)
                        .map(|p| fixed.len() + p),
                }
            })
            .unwrap_or(usize::MAX);
        (test, condition, r.run)
    };
    let mut ordered = previous;
    ordered.extend(results);
    ordered.sort_by_cached_key(place);
    let exit = conclude(&suite.name, &ordered, &out, &output)?;
    if gate.is_auto() {
        println!(
            "--parallel auto: {} calls at once at the end; the most at once that all kept time: {}",
            gate.level(),
            gate.held()
        );
    }
    Ok((ordered, exit))
}

/// Writes a finished run's junit.xml and report.html into `out`, prints its summary and what did
/// not pass; the exit code says how it went.
pub fn conclude(
    suite: &str,
    ordered: &[RunResult],
    out: &Path,
    output: &Output,
) -> Result<Exit, CliError> {
    let junit_path = out.join(folder::JUNIT);
    std::fs::write(&junit_path, report::junit(suite, ordered))
        .map_err(|e| CliError::bad_input(format!("{}: cannot write: {e}", junit_path.display())))?;
    let compared: Option<Diff> = output
        .baseline
        .as_ref()
        .map(|(_, base)| diff::diff(base, ordered, output.thresholds));
    let report_path = out.join(folder::REPORT);
    report::html::write(ordered, out, &report_path, compared.as_ref(), &output.html).map_err(
        |e| CliError::bad_input(format!("{}: cannot write: {e}", report_path.display())),
    )?;

    let thresholds = report::threshold::of(ordered);
    if !thresholds.is_empty() {
        let path = out.join(folder::THRESHOLD);
        let file = report::threshold::ThresholdFile {
            thresholds: thresholds.clone(),
        };
        serde_json::to_vec_pretty(&file)
            .map_err(|e| e.to_string())
            .and_then(|json| std::fs::write(&path, json).map_err(|e| e.to_string()))
            .map_err(|e| CliError::bad_input(format!("{}: cannot write: {e}", path.display())))?;
    }
    // A staircase's trials fail by design: the fixed calls pass or fail the run.
    let fixed: Vec<&RunResult> = ordered.iter().filter(|r| r.trial.is_none()).collect();
    if !fixed.is_empty() {
        println!("\n{}", report::summary(ordered));
    }
    if !thresholds.is_empty() {
        println!("\n{}", report::threshold::table(&thresholds));
    }
    // A trial that failed is the staircase at work; one that erred is worth saying.
    let said = ordered.iter().filter(|r| match r.trial {
        None => r.outcome != Outcome::Passed,
        Some(_) => r.outcome == Outcome::Error,
    });
    for r in said {
        println!(
            "{} {} [{}] #{}: {}",
            label(r.outcome),
            r.test,
            r.condition.label(),
            r.run,
            r.why()
        );
    }
    let passed = fixed
        .iter()
        .filter(|r| r.outcome == Outcome::Passed)
        .count();
    let trials = ordered.len() - fixed.len();
    let mut made = Vec::new();
    if !fixed.is_empty() {
        made.push(format!("{passed}/{} calls passed", fixed.len()));
    }
    if trials > 0 {
        made.push(format!(
            "{trials} staircase calls, thresholds in {}",
            out.join(folder::THRESHOLD).display()
        ));
    }
    println!(
        "\n{}; results: {}, {}, calls in {}\nreport: {}",
        made.join("; "),
        out.join(folder::RESULTS).display(),
        junit_path.display(),
        out.join(folder::CALLS).display(),
        report_path.display()
    );
    if let (Some(d), Some((base, _))) = (&compared, &output.baseline) {
        println!("\ncompared with {}:\n{}", base.display(), diff::text(d));
    }
    if let Some(warning) = crate::report::late_warning(ordered) {
        eprintln!("\n{warning}");
    }
    Ok(if ordered.iter().any(|r| r.panic.is_some()) {
        Exit::Internal
    } else if ordered.iter().any(|r| r.outcome == Outcome::Error) {
        Exit::Unreachable
    } else if let Some(d) = &compared {
        // With a baseline the question is whether this run is worse than it.
        if d.regressed() {
            Exit::Failed
        } else {
            Exit::Ok
        }
    } else if passed < fixed.len() {
        Exit::Failed
    } else {
        Exit::Ok
    })
}

fn label(outcome: Outcome) -> &'static str {
    match outcome {
        Outcome::Passed => "PASS",
        Outcome::Failed => "FAIL",
        Outcome::NotJudged => "NOT JUDGED",
        Outcome::Error => "ERROR",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Flags {
        #[command(flatten)]
        staircase: StaircaseArgs,
    }

    /// The flags spell their defaults out for `--help`; they must be the library's.
    #[test]
    fn no_staircase_flag_means_the_library_s_staircases() {
        let flags = Flags::try_parse_from(["voicesim"]).expect("no flags parse");
        let staircases = flags
            .staircase
            .staircases()
            .expect("the defaults are valid");
        assert_eq!(staircases, Staircases::default());
    }
}
