//! `voicesim demo`: the reference agent in process, the bundled example suite against it over
//! Twilio Media Streams, in a noise sweep: how pass rate and the agent's hearing fall with SNR.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use clap::Args;

use super::run::Output;
use super::{CliError, Exit};
use crate::agent::{AgentCallLog, AgentConfig, ReferenceAgent};
use crate::record::{words, Speaker};
use crate::report::folder::{self, Reuse, RunPlan};
use crate::report::html::HtmlOptions;
use crate::report::{self, RunResult};
use crate::sim::run::{Plan, Target};
use crate::sim::Senses;
use crate::speech::wer::wer;
use crate::speech::{Espeak, Piper, Stt, Tts, Voice, Whisper};
use crate::suite::{NoiseCondition, Snr, SnrSweep, Suite};
use crate::transport::Protocol;

/// The example suite, compiled in so the demo runs from any folder.
const SUITE: &str = include_str!("../../examples/orders.yaml");

#[derive(Args)]
pub struct DemoArgs {
    /// Folder for results, the report and call recordings (each demo replaces the last).
    #[arg(long, default_value = "voicesim-demo")]
    out: PathBuf,
    /// Seed for loop offsets and burst times.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// The noise the sweep runs through.
    #[arg(long, default_value = "cafe")]
    noise: String,
    /// Calls at the same time. Four keep two cores busy (the calls wait on each other's
    /// speech engines less than they talk; 1m30 against three's 1m44) and leave every
    /// scripted caller within its second of grace.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u64).range(1..=32))]
    parallel: u64,
    #[command(flatten)]
    llm: super::run::LlmArgs,
}

const SWEEP: [f64; 4] = [20.0, 10.0, 5.0, 0.0];

pub fn run(args: DemoArgs) -> Result<Exit, CliError> {
    let mut suite = Suite::parse(SUITE, "examples/orders.yaml", Path::new("."))
        .map_err(|e| CliError::bad_input(e.to_string()))?;
    crate::noise::NoiseProfile::find(&args.noise)?;
    // Loaded before the agent starts, so the model's load is not taken for the agent's silence.
    let llm = args.llm.open(super::run::needs_llm(&suite))?;
    suite.noise = vec![
        NoiseCondition {
            profile: "clean".into(),
            snr: None,
        },
        NoiseCondition {
            profile: args.noise.clone(),
            snr: Some(SnrSweep::Sweep(SWEEP.iter().map(|&s| Snr(s)).collect())),
        },
    ];
    // The agent's ears and the callers' each get half the cores: sharing one model, the
    // agent's hearing would queue behind the callers' and its latency would measure the queue.
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let (agent_stt, stt): (Arc<dyn Stt>, Arc<dyn Stt>) = if cores >= 2 {
        (
            Arc::new(Whisper::load_default()?.with_cores(cores / 2)),
            Arc::new(Whisper::load_default()?.with_cores(cores - cores / 2)),
        )
    } else {
        let one: Arc<dyn Stt> = Arc::new(Whisper::load_default()?);
        (one.clone(), one)
    };
    // Piper sounds like a person, espeak-ng like a robot: Whisper on an 8 kHz line hears the
    // first far better, so the sweep shows the noise, not the voice.
    let (voice, voice_name): (Arc<dyn Tts>, _) = match Piper::load_default() {
        Ok(piper) => (
            Arc::new(crate::speech::CachedTts::in_default_dir(piper)),
            "Piper",
        ),
        Err(e) => {
            eprintln!("note: using espeak-ng voices ({e})");
            (
                Arc::new(crate::speech::CachedTts::in_default_dir(Espeak::new()?)),
                "espeak-ng",
            )
        }
    };

    // The agent gets its own runtime: the run blocks on another.
    let agent_runtime = super::call::runtime()?;
    let agent = Arc::new(ReferenceAgent::new(
        AgentConfig::new(Protocol::Twilio),
        voice.clone(),
        agent_stt,
    ));
    let (logs_tx, mut logs_rx) = tokio::sync::mpsc::unbounded_channel();
    let url = agent_runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| CliError::bad_input(format!("cannot listen on loopback: {e}")))?;
        let url = format!(
            "ws://{}/",
            listener
                .local_addr()
                .map_err(|e| CliError::bad_input(e.to_string()))?
        );
        agent_runtime.spawn(agent.serve(listener, logs_tx));
        Ok::<_, CliError>(url)
    })?;
    let calls = crate::sim::run::count(&suite, &[], Some(1), None);
    let swept = suite.tests.iter().filter(|t| t.noise.is_none()).count();
    println!(
        "voicesim demo: the reference agent (in process, {url}) answers {calls} simulated calls over \
         Twilio Media Streams: {swept} scripted tests × clean and {} at {} dB, and one test \
         whose caller and judge are an LLM, clean and at 20 dB; both sides speak with \
         {voice_name} and hear with Whisper tiny.en",
        args.noise,
        SWEEP.map(|s| s.to_string()).join("/")
    );
    let target = Target {
        url,
        protocol: Protocol::Twilio,
        rate: 8_000,
        headers: Vec::new(),
        fast: false,
    };
    let plan = Plan {
        runs: Some(1),
        parallel: crate::sim::gate::Gate::fixed(args.parallel as usize),
        watch: Default::default(),
        metronome: Default::default(),
        noise: Default::default(),
        tags: Vec::new(),
        seed: args.seed,
        out: args.out.clone(),
        done: Default::default(),
        shard: None,
        staircases: Default::default(),
        trials_done: Vec::new(),
    };
    let senses = Senses {
        tts: voice,
        voice: Voice::default(),
        stt,
    };
    let output = Output {
        plan: RunPlan {
            voicesim: env!("CARGO_PKG_VERSION").into(),
            suite: suite.name.clone(),
            suite_sha256: super::run::sha256(format!("{SUITE}\n{}", args.noise).as_bytes()),
            agent: "the reference agent, in process".into(),
            protocol: Protocol::Twilio.name().into(),
            rate: None,
            seed: args.seed,
            runs: Some(1),
            tags: Vec::new(),
            only: Vec::new(),
            noise: Vec::new(),
            tts: voice_name.to_lowercase(),
            stt: "whisper".into(),
            fast: false,
            calls,
            shard: None,
        },
        // The demo's folder is the demo's own: each demo replaces the last.
        reuse: Reuse::Overwrite,
        baseline: None,
        thresholds: Default::default(),
        html: HtmlOptions::default(),
    };
    let out = args.out.clone();
    let (mut results, exit) = super::run::execute(suite, target, plan, senses, llm, output)?;
    let mut heard: HashMap<String, AgentCallLog> = HashMap::new();
    while let Ok(Ok(log)) = logs_rx.try_recv() {
        if let Some(id) = log.parameters.get("voicesim_call") {
            heard.insert(id.clone(), log);
        }
    }
    drop(agent_runtime);
    // Twilio has no place for what the agent heard, but this agent is in process: each call's
    // hearing WER goes into its result, and so into the report's sweep.
    for r in &mut results {
        if let Some(log) = heard.get(&r.call_id) {
            let said = words(&r.transcript, Speaker::Caller);
            let understood: Vec<&str> = log.turns.iter().map(|t| t.heard.as_str()).collect();
            if !said.is_empty() {
                r.metrics.wer = Some(wer(&said, &understood.join(" ")));
            }
        }
    }
    let report_path = out.join(folder::REPORT);
    rewrite_results(&out.join(folder::RESULTS), &results)
        .and_then(|()| {
            report::html::write(&results, &out, &report_path, None, &HtmlOptions::default())
        })
        .map_err(|e| CliError::bad_input(format!("{}: cannot write: {e}", out.display())))?;
    println!(
        "\nas the {} noise gets louder, every test together (WER: the agent's hearing, what its \
         Whisper heard against what the caller said; what each KPI counts: docs/noise-kpis.md):\n{}",
        args.noise,
        sweep_table(&results)
    );
    println!(
        "listen: {}/calls/<test>/<condition>/run-1/call.wav (caller left, agent right)\nopen the report: {}",
        args.out.display(),
        report_path.display()
    );
    // Failing in noise is the demo's point; a bug in voicesim is not.
    Ok(if exit == Exit::Internal {
        Exit::Internal
    } else {
        Exit::Ok
    })
}

/// Replaces `results.jsonl` whole (write, then rename): the demo adds what only it knows.
fn rewrite_results(path: &Path, results: &[RunResult]) -> std::io::Result<()> {
    let mut text = Vec::new();
    for r in results {
        serde_json::to_writer(&mut text, r)?;
        text.push(b'\n');
    }
    let tmp = path.with_extension("jsonl.tmp");
    std::fs::write(&tmp, text)?;
    std::fs::rename(tmp, path)
}

/// Per condition, every test together: the noise KPIs, the agent's hearing among them (WER of
/// what its STT heard against what the caller said), each set against the clean calls.
fn sweep_table(results: &[RunResult]) -> String {
    report::kpi::table(&report::kpi::by_condition(results))
}
