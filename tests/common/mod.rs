//! What several integration tests share: the speech engines and a run of a suite against an
//! agent on loopback. Each test crate uses part of it.
#![allow(
    dead_code,
    reason = "each test crate uses what it needs of this module"
)]

pub mod browser;

use std::path::Path;
use std::process::{Command, Output};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use serde_json::Value;
use voicesim::llm::Chat;
use voicesim::report::{ResultsFile, RunResult};
use voicesim::sim::run::{run_suite, Plan, Target};
use voicesim::sim::Senses;
use voicesim::speech::{Espeak, Stt, Tts, Voice, Whisper};
use voicesim::suite::Suite;
use voicesim::transport::Protocol;

/// One Whisper for the whole test binary: it loads once and runs one transcription at a time.
pub fn whisper() -> Arc<dyn Stt> {
    static WHISPER: OnceLock<Arc<Whisper>> = OnceLock::new();
    WHISPER
        .get_or_init(|| Arc::new(Whisper::load_default().expect("run `make setup` first")))
        .clone()
}

/// The example suite's scripted tests (tests/llm.rs has an LLM play the last one).
pub fn scripted_examples() -> String {
    let whole =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/orders.yaml"))
            .unwrap();
    whole
        .split("\n  # Played by an LLM")
        .next()
        .unwrap()
        .to_string()
}

/// The reference agent in process, over `protocol`, speaking with `voice` and hearing with
/// Whisper; its URL. Its call logs are dropped.
pub async fn reference_agent(protocol: Protocol, voice: Arc<dyn Tts>) -> String {
    use voicesim::agent::{AgentConfig, ReferenceAgent};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/", listener.local_addr().unwrap());
    let agent = Arc::new(ReferenceAgent::new(
        AgentConfig::new(protocol),
        voice,
        whisper(),
    ));
    let (logs, _) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(agent.serve(listener, logs));
    url
}

/// A caller's side of a `voicesim call` as it goes out over 16 kHz PCM: espeak saying
/// `text` from frame `say_at` into a car at 20 dB (noise seed 1), `frames` frames in all. The
/// line is made as the caller's mouth makes it (the voice's samples as the TTS cache keeps
/// them, trimmed), so a recording of such a call is rebuilt sample for sample.
pub fn espeak_in_a_car(text: &str, say_at: usize, frames: usize) -> Vec<f32> {
    use voicesim::audio::quantize_i16;
    use voicesim::noise::{LoadedNoise, MicTimeline, NoiseProfile};
    let profile = NoiseProfile::find("car")
        .unwrap()
        .with_background_snr(20.0)
        .unwrap();
    let mut mic = MicTimeline::new(&LoadedNoise::load(&profile, 16_000).unwrap(), 1);
    let mut line = espeak().synthesize(text, &Voice::default()).unwrap();
    line.samples.iter_mut().for_each(|s| *s = quantize_i16(*s));
    let line = line.trim_silence();
    let mut sent = Vec::new();
    for frame in 0..frames {
        if frame == say_at {
            mic.say(line.clone()).unwrap();
        }
        sent.extend(mic.next_frame().samples.iter().map(|&s| quantize_i16(s)));
    }
    sent
}

pub fn espeak() -> Arc<Espeak> {
    Arc::new(Espeak::new().expect("espeak-ng is installed by `make setup`"))
}

/// A finished run: its results, the lines of its results.jsonl, and its folder (deleted when
/// dropped).
pub struct Ran {
    pub results: Vec<RunResult>,
    pub lines: Vec<Value>,
    pub out: tempfile::TempDir,
}

/// Runs `yaml` (8 kHz where the protocol lets it choose) against the agent at `url`, paced,
/// `parallel` calls at a time, with the given voice and ears; fails if it takes 5 minutes.
pub async fn run_at(
    yaml: &str,
    url: String,
    protocol: Protocol,
    parallel: usize,
    seed: u64,
    (tts, stt): (Arc<dyn Tts>, Arc<dyn Stt>),
    llm: Option<Arc<dyn Chat>>,
) -> Ran {
    let suite = Arc::new(Suite::parse(yaml, "test.yaml", Path::new(".")).unwrap());
    let out = tempfile::tempdir().unwrap();
    let results_file = Arc::new(ResultsFile::append_to(&out.path().join("results.jsonl")).unwrap());
    let (done, _done_rx) = tokio::sync::mpsc::unbounded_channel();
    let target = Target {
        url,
        protocol,
        rate: 8_000,
        headers: Vec::new(),
        fast: false,
    };
    let plan = Plan {
        runs: None,
        parallel: voicesim::sim::gate::Gate::fixed(parallel),
        watch: Default::default(),
        metronome: Default::default(),
        noise: Default::default(),
        tags: Vec::new(),
        seed,
        out: out.path().to_path_buf(),
        done: Default::default(),
        shard: None,
        staircases: Default::default(),
        trials_done: Vec::new(),
    };
    let senses = Senses {
        tts,
        voice: Voice::default(),
        stt,
    };
    let results = tokio::time::timeout(
        Duration::from_secs(300),
        run_suite(suite, target, plan, senses, llm, results_file, done),
    )
    .await
    .expect("the run hung");
    let lines = std::fs::read_to_string(out.path().join("results.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    Ran {
        results,
        lines,
        out,
    }
}

// The binary as a user runs it.

/// Runs `voicesim` with `args` to the end.
pub fn voicesim(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_voicesim"))
        .args(args)
        .output()
        .unwrap()
}

pub fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// A free loopback port (bound, then released for the child to take).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Waits for `child` to end and collects what it printed; past `limit` it is killed and the
/// test fails with its output (a hung child bounds a failure, it never hangs the suite).
pub fn wait_within(child: &mut std::process::Child, limit: std::time::Duration) -> Output {
    use std::io::Read;
    fn drain(from: Option<impl Read + Send + 'static>) -> std::thread::JoinHandle<Vec<u8>> {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            if let Some(mut from) = from {
                let _ = from.read_to_end(&mut bytes);
            }
            bytes
        })
    }
    let (stdout, stderr) = (drain(child.stdout.take()), drain(child.stderr.take()));
    let start = std::time::Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            break None;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let output = Output {
        status: status.unwrap_or_else(|| child.wait().unwrap()),
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
    };
    assert!(
        status.is_some(),
        "still running after {} s, killed; it printed:\n{}",
        limit.as_secs(),
        text(&output)
    );
    output
}

/// Kills the child when the test ends, however it ends.
pub struct Child(pub std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A running `voicesim agent`, stopped when dropped.
pub struct Agent {
    _child: Child,
    log: Arc<std::sync::Mutex<String>>,
}

impl Agent {
    /// What the agent has printed so far (a line per call: what it heard and said, or why the
    /// call failed).
    pub fn log(&self) -> String {
        self.log.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// Starts `voicesim agent` and waits for its "listening" line.
pub fn agent(args: &[&str]) -> (Agent, String) {
    agent_with_env(args, &[])
}

/// As [`agent`], with environment variables set for it. What it prints goes to the test's
/// output too, so a failing test shows what the agent heard and said.
pub fn agent_with_env(args: &[&str], env: &[(&str, &str)]) -> (Agent, String) {
    use std::io::BufRead;
    let port = free_port().to_string();
    let listen = format!("127.0.0.1:{port}");
    let mut child = Command::new(env!("CARGO_BIN_EXE_voicesim"))
        .args(["agent", "--listen", &listen])
        .args(args)
        .envs(env.iter().copied())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines.next().and_then(Result::ok).unwrap_or_default();
    assert!(first.contains(&listen), "{first}");
    let log = Arc::new(std::sync::Mutex::new(String::new()));
    let kept = log.clone();
    std::thread::spawn(move || {
        for line in lines.map_while(Result::ok) {
            println!("agent: {line}");
            let mut log = kept.lock().unwrap_or_else(|e| e.into_inner());
            log.push_str(&line);
            log.push('\n');
        }
    });
    (
        Agent {
            _child: Child(child),
            log,
        },
        format!("ws://{listen}/"),
    )
}

pub fn suite_file(dir: &Path, name: &str, yaml: &str) -> String {
    let path = dir.join(format!("{name}.yaml"));
    std::fs::write(&path, yaml).unwrap();
    path.to_str().unwrap().to_string()
}
