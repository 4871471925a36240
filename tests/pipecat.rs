//! Interop with Pipecat's own code: a small bot (examples/python/bot.py) on Pipecat's
//! FastAPIWebsocketTransport with Pipecat's serializer for each protocol, Silero VAD, and a
//! processor that greets, answers each caller turn with prepared audio and interrupts itself
//! when the caller cuts in. Every protocol voicesim speaks that Pipecat serves is called with
//! the real `voicesim run`; what the calls measured is checked against what the bot saw.
//!
//! The bot runs in a venv built by tests/pipecat/venv.sh (pinned in requirements.txt, cached
//! under ~/.cache/voicesim). If it cannot be built, these tests fail and say why.

mod common;

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use voicesim::audio::write_wav;
use voicesim::sim::{Caller, StepCaller};
use voicesim::speech::{Tts, Voice};
use voicesim::suite::Suite;

use common::{espeak, free_port, suite_file, text, voicesim, Child};

/// The bot's replies, in order: a greeting, then one per caller turn.
const REPLIES: [&str; 3] = [
    "Thank you for calling Acme orders. What is your order number?",
    "Your order four five two one has shipped. It will arrive on Friday.",
    "You are welcome. Goodbye.",
];

/// One test at a time: each runs several real-time calls against one bot, and two at once
/// would load the machine for both.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn venv() -> PathBuf {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/pipecat/venv.sh");
    let out = Command::new(&script)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
    assert!(
        out.status.success(),
        "cannot build the Pipecat venv for the interop tests (python3 with venv, and pip \
         reaching PyPI, are needed; `make setup-test` builds it):\n{}",
        text(&out)
    );
    PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
}

/// A running bot: its base URL and what it has reported so far.
struct Bot {
    _child: Child,
    base: String,
    seen: Arc<Mutex<Vec<Value>>>,
}

impl Bot {
    fn start(dir: &Path) -> Bot {
        let python = venv().join("bin/python");
        let replies = dir.join("replies");
        std::fs::create_dir_all(&replies).unwrap();
        let tts = espeak();
        for (i, line) in REPLIES.iter().enumerate() {
            let clip = tts.synthesize(line, &Voice::default()).unwrap();
            let clip = clip.trim_silence().resample(16_000).unwrap();
            write_wav(replies.join(format!("{i}.wav")), &[&clip]).unwrap();
        }
        let port = free_port();
        let log = dir.join("bot.log");
        let mut child = Command::new(&python)
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/python/bot.py"))
            .args(["--port", &port.to_string(), "--replies"])
            .arg(&replies)
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", python.display()));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let stdout = child.stdout.take().unwrap();
        let sink = seen.clone();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
            {
                if let Ok(v) = serde_json::from_str::<Value>(&line) {
                    sink.lock().unwrap().push(v);
                }
            }
        });
        let mut child = Child(child);
        let start = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            let gone = child.0.try_wait().unwrap();
            if gone.is_some() || start.elapsed() > Duration::from_secs(90) {
                panic!(
                    "the Pipecat bot did not start ({gone:?}):\n{}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                );
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        Bot {
            _child: child,
            base: format!("ws://127.0.0.1:{port}"),
            seen,
        }
    }

    fn url(&self, protocol: &str) -> String {
        match protocol {
            "vonage" | "genesys" | "pipecat" => format!("{}/{protocol}", self.base),
            _ => format!("{}/ws", self.base),
        }
    }

    fn seen(&self, event: &str, protocol: &str) -> Vec<Value> {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .filter(|v| v["event"] == event && v["protocol"] == protocol)
            .cloned()
            .collect()
    }
}

/// Two steps: the order's delivery day, then goodbye.
const ORDER_THEN_GOODBYE: &str = "      - goal: Give the order number
        static_utterance: My order number is four five two one.
        check: { contains: friday }
        max_turns: 1
      - goal: End the call
        static_utterance: Thank you, goodbye.
        check: { any_of: [ { contains: goodbye }, { contains: bye } ] }
        max_turns: 1
";

/// The suite each protocol runs: a whole order-status call, a caller who cuts into the
/// greeting, and (where the protocol carries key presses) the order number keyed in.
fn suite(keys: bool) -> String {
    let mut yaml = format!(
        r#"
name: pipecat-interop
personas:
  patient: {{ interrupt: 0 }}
  hasty: {{ interrupt: 1.0 }}
stop: {{ answer_timeout_seconds: 10, max_seconds: 45 }}
tests:
  - name: order-status
    persona: patient
    steps:
{ORDER_THEN_GOODBYE}    expectations:
      - name: answers-promptly
        check: {{ metric: "latency_p95_ms < 3000" }}
  - name: hasty
    persona: hasty
    steps:
      - goal: Give the order number over the greeting
        static_utterance: My order number is four five two one.
        check: {{ contains: friday }}
        max_turns: 1
"#
    );
    if keys {
        yaml.push_str(
            r#"  - name: keys
    persona: patient
    steps:
      - goal: Key in the order number
        dtmf: "4521#"
        check: { contains: friday }
        max_turns: 1
"#,
        );
    }
    yaml
}

fn results(out: &Path) -> Vec<Value> {
    std::fs::read_to_string(out.join("results.jsonl"))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Why a call did not get through on this protocol: an error, a step or expectation not met, or
/// a fault other than dropouts. Pipecat paces its audio in real time from Python, and on two
/// loaded cores its sender now and then comes a few tens of ms late at the start of a reply;
/// that is the bot's timing on this machine, which the wire format does not decide.
fn wire_failure(r: &Value) -> Option<String> {
    if r["outcome"] == "passed" {
        return None;
    }
    let met = |list: &Value, verdict: &str| {
        list.as_array().is_some_and(|all| {
            all.iter()
                .all(|v| v.pointer(verdict) == Some(&"met".into()))
        })
    };
    let faults = r["faults"].as_array().cloned().unwrap_or_default();
    let only_dropouts = faults.iter().all(|f| f["fault"] == "choppy");
    let judged = met(&r["steps"], "/verdict") && met(&r["expectations"], "/verdict");
    if r["error"].is_null() && judged && only_dropouts {
        return None;
    }
    Some(format!("outcome {}", r["outcome"]))
}

/// The call.json of a test's first run.
fn call(out: &Path, test: &str) -> Value {
    let dir = out.join("calls").join(test).join("clean").join("run-1");
    serde_json::from_slice(&std::fs::read(dir.join("call.json")).unwrap()).unwrap()
}

#[test]
fn every_protocol_reaches_pipecat_s_own_serializers() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let bot = Bot::start(dir.path());
    let mut failures = Vec::new();
    for protocol in [
        "twilio", "telnyx", "plivo", "exotel", "vonage", "genesys", "pipecat",
    ] {
        let keys = protocol != "pipecat"; // protobuf frames carry no key presses
        let suite = suite_file(dir.path(), protocol, &suite(keys));
        let out = dir.path().join(format!("out-{protocol}"));
        let url = bot.url(protocol);
        let ran = voicesim(&[
            "run",
            &suite,
            "--agent",
            &url,
            "--protocol",
            protocol,
            "--parallel",
            "3",
            "--out",
            out.to_str().unwrap(),
        ]);
        let mut fail = |why: String| failures.push(format!("{protocol}: {why}"));
        // Exit 1 is a call that did not pass, which the results say more about.
        if !matches!(ran.status.code(), Some(0 | 1)) || results(&out).len() != 3 - !keys as usize {
            fail(format!("the run failed:\n{}", text(&ran)));
            continue;
        }
        for r in results(&out) {
            if let Some(why) = wire_failure(&r) {
                fail(format!("{}: {why}: {r}", r["test"]));
            }
        }
        let whole = results(&out)
            .into_iter()
            .find(|r| r["test"] == "order-status")
            .unwrap();
        let p50 = whole["metrics"]["latency_p50_ms"].as_f64().unwrap_or(0.0);
        if !(100.0..3000.0).contains(&p50) {
            fail(format!("latency p50 {p50} ms: not measured"));
        }
        // The caller cut into the greeting, Pipecat interrupted itself, and its clear
        // (in this protocol's spelling) was measured.
        let greeting = &call(&out, "hasty")["turns"][0];
        if greeting["barge_in"]["cleared"] != true {
            fail(format!("no clear measured after the barge-in: {greeting}"));
        }
        if bot.seen("barge_in", protocol).is_empty() {
            fail("Pipecat's VAD never heard the caller cut in".into());
        }
        if keys {
            let keyed = bot.seen("keys", protocol);
            if keyed.first().map(|k| &k["keys"]) != Some(&Value::from("4521#")) {
                fail(format!("Pipecat got these key presses: {keyed:?}"));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{}\nbot log: {}",
        failures.join("\n"),
        std::fs::read_to_string(dir.path().join("bot.log"))
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains("ERROR") || l.contains("WARNING"))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

/// The moments a caller of `test` cuts into the first two agent turns, as its seed draws
/// them: replayed on the suite's own `StepCaller`.
fn cut_in_moments(suite: &Suite, test: &str, seed: u64) -> [f64; 2] {
    let case = suite.tests.iter().find(|t| t.name == test).unwrap();
    let persona = suite.personas[case.persona.as_ref().unwrap()].clone();
    let mut caller = StepCaller::new(
        case,
        persona,
        Default::default(),
        suite.stop.clone(),
        suite.dir.clone(),
        None,
        seed,
    );
    let (first, _) = caller.cut_in().unwrap().unwrap();
    caller.next(Some("greeting")).unwrap();
    let (second, _) = caller.cut_in().unwrap().unwrap();
    [first, second]
}

#[test]
fn a_caller_cuts_in_on_time_under_load_whether_the_agent_yields_or_not() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let bot = Bot::start(dir.path());
    let yaml = format!(
        r#"
name: cut-in
personas:
  hasty: {{ interrupt: 1.0 }}
stop: {{ answer_timeout_seconds: 10, max_seconds: 45 }}
tests:
  - name: hasty
    persona: hasty
    runs: 4
    steps:
{ORDER_THEN_GOODBYE}"#
    );
    let path = suite_file(dir.path(), "cut-in", &yaml);
    let suite = Suite::load(Path::new(&path)).unwrap();
    for yields in [false, true] {
        let out = dir.path().join(format!("out-{yields}"));
        let url = format!("{}/ws?yields={}", bot.base, u8::from(yields));
        // Four calls at once on two cores, each with its own speech recognition, and the bot.
        let ran = voicesim(&[
            "run",
            &path,
            "--agent",
            &url,
            "--parallel",
            "4",
            "--out",
            out.to_str().unwrap(),
        ]);
        let ran_results = results(&out);
        assert_eq!(ran_results.len(), 4, "{}", text(&ran));
        for r in &ran_results {
            let run = r["run"].as_u64().unwrap();
            let dir = out.join(format!("calls/hasty/clean/run-{run}"));
            let call: Value =
                serde_json::from_slice(&std::fs::read(dir.join("call.json")).unwrap()).unwrap();
            let moments = cut_in_moments(&suite, "hasty", r["seed"].as_u64().unwrap());
            let turns = call["turns"].as_array().unwrap();
            // The n-th agent turn is cut into at the n-th moment drawn (a caller with nothing
            // left to say lets later turns be).
            let cut: Vec<_> = turns
                .iter()
                .zip(moments)
                .filter(|(t, _)| t["barge_in"].is_object())
                .collect();
            assert!(
                !cut.is_empty(),
                "yields={yields} run {run}: never cut in: {turns:?}"
            );
            for (turn, moment) in cut {
                // The voice starts on the first 20 ms frame at or after the chosen moment; a
                // caller still hearing the turn before (a machine too busy for its recognizer)
                // asks for it late, and then it starts on the next frame, the lateness recorded
                // and counted as the caller's (which sets the call's timing verdicts aside).
                let late = turn["barge_in"]["late_ms"].as_f64().unwrap_or(0.0);
                assert!(
                    late == 0.0 || r["metrics"]["reaction_late_max_ms"].as_f64() >= Some(late),
                    "yields={yields} run {run}: {r}"
                );
                let into = turn["barge_in"]["at_ms"].as_f64().unwrap()
                    - turn["agent_started_ms"].as_f64().unwrap();
                let due = moment + late;
                assert!(
                    (due - 0.001..due + 20.0).contains(&into),
                    "yields={yields} run {run}: cut in {into} ms into the turn, chosen {moment}, asked {late} ms late: {turn}"
                );
                assert_eq!(turn["barge_in"]["cleared"], yields, "{turn}");
            }
            if !yields {
                // Talked over, the caller still heard the whole answer, and the step was
                // judged on all of it ("... Friday"), not on what it had heard when it cut in.
                // (The steps, not the outcome: a bot on a loaded machine may drop out.)
                let steps = r["steps"].as_array().unwrap();
                assert!(
                    steps.iter().all(|s| s["verdict"] == "met"),
                    "run {run}: {r}"
                );
            }
        }
    }
}
