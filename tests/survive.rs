//! A run never dies: agents that go on talking while the caller hangs up, agents that close
//! at any moment, and a panic inside one call. Every call ends with a result in
//! results.jsonl; the other calls go on.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{espeak, whisper};

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::Message;
use voicesim::audio::Encoding;
use voicesim::report::{Outcome, RunResult};
use voicesim::speech::{Stt, Tts, Voice};
use voicesim::transport::Protocol;

/// A Twilio agent on loopback that says `line` (mu-law, 8 kHz) every `every` frames of the
/// caller's stream (20 ms each) for the whole call, whatever the caller does.
async fn chatty_agent(every: u32, line: &str) -> String {
    let speech = espeak()
        .synthesize(line, &Voice::default())
        .unwrap()
        .resample(8_000)
        .unwrap()
        .trim_silence();
    let payload = {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(Encoding::Mulaw.encode(&speech.samples))
    };
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/", listener.local_addr().unwrap());
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let payload = payload.clone();
            tokio::spawn(async move {
                let Ok(mut ws) = tokio_tungstenite::accept_async(stream).await else {
                    return;
                };
                let mut sid = String::new();
                let mut frames = 0u32;
                while let Some(Ok(message)) = ws.next().await {
                    let Ok(text) = message.to_text() else {
                        continue;
                    };
                    let Ok(event) = serde_json::from_str::<Value>(text) else {
                        continue;
                    };
                    match event["event"].as_str() {
                        Some("start") => {
                            sid = event["streamSid"].as_str().unwrap_or_default().to_string()
                        }
                        Some("media") => {
                            frames += 1;
                            if frames % every == 1 {
                                let media = json!({"event": "media", "streamSid": sid,
                                    "media": {"payload": payload}});
                                if ws.send(Message::text(media.to_string())).await.is_err() {
                                    return;
                                }
                            }
                        }
                        Some("stop") => return,
                        _ => {}
                    }
                }
            });
        }
    });
    url
}

/// Whisper, slowed down as on a machine with other work to do: the caller decides late, and
/// the call goes on meanwhile.
struct Busy(Arc<dyn Stt>, Duration);

impl Stt for Busy {
    fn id(&self) -> String {
        self.0.id()
    }

    fn transcribe(
        &self,
        clip: &voicesim::audio::Clip,
    ) -> Result<voicesim::speech::Transcript, voicesim::speech::SpeechError> {
        std::thread::sleep(self.1);
        self.0.transcribe(clip)
    }
}

/// Runs `yaml` over Twilio against the agent at `url` with this voice and these ears.
async fn run(
    yaml: &str,
    url: String,
    parallel: usize,
    tts: Arc<dyn Tts>,
    stt: Arc<dyn Stt>,
) -> (Vec<RunResult>, Vec<Value>, tempfile::TempDir) {
    let ran = common::run_at(yaml, url, Protocol::Twilio, parallel, 7, (tts, stt), None).await;
    (ran.results, ran.lines, ran.out)
}

/// Two scripted steps, each met by any words from the agent.
const TWO_STEPS: &str = r#"
name: chatter
runs: 4
stop: { answer_timeout_seconds: 8, max_seconds: 40 }
tests:
  - name: two-steps
    steps:
      - goal: Say hello
        static_utterance: Hello there.
        check: { regex: '\w' }
      - goal: Say goodbye
        static_utterance: Thanks, goodbye.
        check: { regex: '\w' }
"#;

/// The agent keeps talking after the caller's last line. With the caller's ears slower than
/// the agent's turns (as on a busy machine), agent turns end after the caller has decided to
/// hang up and before the hangup reaches the call: each must be heard, never answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_with_every_step_done_says_nothing_more_to_an_agent_that_goes_on_talking() {
    let url = chatty_agent(75, "Please go on.").await;
    let slow = Arc::new(Busy(whisper(), Duration::from_millis(2_000)));
    let (results, lines, _out) = run(TWO_STEPS, url, 4, espeak(), slow).await;
    assert_eq!(results.len(), 4);
    assert_eq!(lines.len(), 4, "every call is in results.jsonl");
    for r in &results {
        assert_eq!(r.outcome, Outcome::Passed, "{}", r.why());
        let last_caller = r
            .transcript
            .iter()
            .rposition(|l| l.speaker == voicesim::record::Speaker::Caller)
            .unwrap();
        assert_eq!(
            r.transcript
                .iter()
                .filter(|l| l.speaker == voicesim::record::Speaker::Caller)
                .count(),
            2,
            "one line per step, nothing after: {:?}",
            r.transcript
        );
        assert!(
            r.transcript.len() > last_caller + 2,
            "the agent spoke more than once after the caller's last line: {:?}",
            r.transcript
        );
    }
}

/// A voice that breaks on one line, as a bug in a speech engine would.
struct Brittle(Arc<dyn Tts>);

impl Tts for Brittle {
    fn id(&self) -> String {
        self.0.id()
    }

    fn synthesize(
        &self,
        text: &str,
        voice: &Voice,
    ) -> Result<voicesim::audio::Clip, voicesim::speech::SpeechError> {
        if text.contains("Boom") {
            panic!("deliberate panic in the voice");
        }
        self.0.synthesize(text, voice)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_inside_one_call_is_that_calls_error_and_the_others_go_on() {
    let yaml = r#"
name: brittle
runs: 2
stop: { answer_timeout_seconds: 8, max_seconds: 30 }
tests:
  - name: fine
    steps:
      - goal: Say hello
        static_utterance: Hello there.
        check: { regex: '\w' }
  - name: breaks
    steps:
      - goal: Say hello
        static_utterance: Hello there.
        check: { regex: '\w' }
      - goal: Break the voice
        static_utterance: Boom.
"#;
    let url = chatty_agent(75, "Please go on.").await;
    let (results, lines, _out) = run(yaml, url, 4, Arc::new(Brittle(espeak())), whisper()).await;
    assert_eq!(results.len(), 4, "every call ran");
    for r in &results {
        if r.test == "fine" {
            assert_eq!(r.outcome, Outcome::Passed, "{}", r.why());
            assert!(r.panic.is_none());
            continue;
        }
        assert_eq!(r.outcome, Outcome::Error);
        let panic = r.panic.as_ref().expect("the panic is in the result");
        assert_eq!(panic.message, "deliberate panic in the voice");
        assert!(panic.location.starts_with("tests/survive.rs:"), "{panic}");
        assert!(r.why().contains("a bug; please report it"), "{}", r.why());
        assert_eq!(r.steps.len(), 2, "the steps are accounted for");
        let dir = r
            .recording
            .as_ref()
            .expect("the call up to the panic is kept");
        assert!(dir.join("call.wav").is_file() && dir.join("events.jsonl").is_file());
        assert_eq!(r.steps[0].verdict, voicesim::judge::Verdict::Met);
    }
    assert_eq!(lines.len(), 4);
    let crashed: Vec<&Value> = lines.iter().filter(|l| l["outcome"] == "error").collect();
    assert_eq!(crashed.len(), 2);
    assert!(crashed
        .iter()
        .all(|l| l["panic"]["message"] == "deliberate panic in the voice"));
}
