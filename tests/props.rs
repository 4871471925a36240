//! Property tests of the state machines: the suite's caller driven by random agent turns
//! against random suites, the call loop driven by random agents over a real websocket, and
//! every wire adapter (both sides) fed random and mutated messages of its protocol. Never a
//! panic; every call ends, recorded; never a pass that did not happen.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use proptest::prelude::*;
use tokio_tungstenite::tungstenite::Message;
use voicesim::audio::Clip;
use voicesim::judge::Verdict;
use voicesim::sim::{Caller, Reply, StepCaller};
use voicesim::suite::Suite;
use voicesim::transport::Protocol;

const WORDS: [&str; 5] = ["apple", "river", "stone", "cloud", "bye"];

/// A step of a random suite: the word its check looks for (none: no check), its turns.
#[derive(Debug, Clone)]
struct StepSpec {
    word: Option<usize>,
    max_turns: u32,
}

#[derive(Debug, Clone)]
struct SuiteSpec {
    steps: Vec<StepSpec>,
    max_turns: u32,
    phrases: Vec<usize>,
    all_phrases: bool,
    interrupt: f64,
    caller_first: bool,
}

impl SuiteSpec {
    fn yaml(&self) -> String {
        let mut y = format!(
            "name: props\npersonas:\n  p: {{ interrupt: {} }}\nscenarios:\n  s: {{ first: {} }}\n\
             stop:\n  max_turns: {}\n  phrases: [{}]\n  phrases_match: {}\ntests:\n  - name: t\n    \
             persona: p\n    scenario: s\n    steps:\n",
            self.interrupt,
            if self.caller_first { "caller" } else { "agent" },
            self.max_turns,
            self.phrases
                .iter()
                .map(|&w| WORDS[w])
                .collect::<Vec<_>>()
                .join(", "),
            if self.all_phrases { "all" } else { "any" },
        );
        // The parser wants a step; a suite of none is made by removing it afterwards.
        let steps = if self.steps.is_empty() {
            vec![StepSpec {
                word: None,
                max_turns: 1,
            }]
        } else {
            self.steps.clone()
        };
        for (i, step) in steps.iter().enumerate() {
            y += &format!(
                "      - goal: goal {i}\n        static_utterance: line {i}\n        max_turns: {}\n",
                step.max_turns
            );
            if let Some(w) = step.word {
                y += &format!("        check: {{ contains: {} }}\n", WORDS[w]);
            }
        }
        y
    }

    fn caller(&self, seed: u64) -> StepCaller {
        let suite = Suite::parse(&self.yaml(), "props.yaml", Path::new(".")).unwrap();
        let mut test = suite.tests[0].clone();
        test.steps.truncate(self.steps.len());
        StepCaller::new(
            &test,
            suite.personas["p"].clone(),
            suite.scenarios["s"].clone(),
            suite.stop.clone(),
            ".".into(),
            None,
            seed,
        )
    }
}

fn step_spec() -> impl Strategy<Value = StepSpec> {
    (proptest::option::weighted(0.8, 0..WORDS.len()), 1u32..=3)
        .prop_map(|(word, max_turns)| StepSpec { word, max_turns })
}

fn suite_spec() -> impl Strategy<Value = SuiteSpec> {
    (
        proptest::collection::vec(step_spec(), 0..=5),
        1u32..=12,
        proptest::collection::vec(0..WORDS.len(), 0..=2),
        any::<bool>(),
        prop_oneof![Just(0.0), Just(0.5), Just(1.0)],
        any::<bool>(),
    )
        .prop_map(
            |(steps, max_turns, phrases, all_phrases, interrupt, caller_first)| SuiteSpec {
                steps,
                max_turns,
                phrases,
                all_phrases,
                interrupt,
                caller_first,
            },
        )
}

/// What the call loop hands the caller.
#[derive(Debug, Clone)]
enum Heard {
    /// A whole agent turn, as transcribed (words, possibly none).
    Turn(Vec<usize>),
    /// The turn the call ended in.
    LastWords(Vec<usize>),
    /// A turn starts: the caller may decide to cut in.
    Starts,
}

fn heard() -> impl Strategy<Value = Heard> {
    let words = || proptest::collection::vec(0..WORDS.len(), 0..=3);
    prop_oneof![
        6 => words().prop_map(Heard::Turn),
        1 => words().prop_map(Heard::LastWords),
        2 => Just(Heard::Starts),
    ]
}

fn text(words: &[usize]) -> String {
    words
        .iter()
        .map(|&w| WORDS[w])
        .collect::<Vec<_>>()
        .join(" ")
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    #[test]
    fn the_step_caller_never_panics_never_talks_after_hanging_up_and_never_invents_a_pass(
        spec in suite_spec(),
        events in proptest::collection::vec(heard(), 0..24),
        seed in any::<u64>(),
    ) {
        let mut caller = spec.caller(seed);
        let mut lines = 0u32;
        let mut gone = false;
        // Per step: when its line was first said (index into events), and the words the
        // agent said after that while the caller was still on the call.
        let mut heard_since: Vec<Option<Vec<usize>>> = vec![None; spec.steps.len()];
        let said = |u: Reply, gone: &mut bool, lines: &mut u32,
                        heard_since: &mut Vec<Option<Vec<usize>>>| {
            match u {
                Reply::Say(u) => {
                    prop_assert!(!*gone, "a line after hanging up: {:?}", u.text());
                    *lines += 1;
                    let i: usize = u.text().trim_start_matches("line ").parse().unwrap();
                    heard_since[i].get_or_insert_with(Vec::new);
                }
                Reply::Listen => {}
                Reply::HangUp => *gone = true,
            }
            Ok(())
        };
        if caller.speaks_first() {
            let u = caller.next(None).unwrap();
            said(u, &mut gone, &mut lines, &mut heard_since)?;
        }
        for event in &events {
            match event {
                Heard::Starts => {
                    if let Some((_, u)) = caller.cut_in().unwrap() {
                        said(Reply::Say(u), &mut gone, &mut lines, &mut heard_since)?;
                    }
                }
                Heard::Turn(words) | Heard::LastWords(words) => {
                    if !gone {
                        for h in heard_since.iter_mut().flatten() {
                            h.extend(words);
                        }
                    }
                    if let Heard::LastWords(_) = event {
                        caller.last_words(&text(words)).unwrap();
                        continue;
                    }
                    let u = caller.next(Some(&text(words))).unwrap();
                    said(u, &mut gone, &mut lines, &mut heard_since)?;
                }
            }
        }
        prop_assert!(lines <= spec.max_turns, "{lines} lines, max_turns {}", spec.max_turns);
        let results = caller.finish(&[]);
        prop_assert_eq!(results.len(), spec.steps.len());
        for (i, (result, step)) in results.iter().zip(&spec.steps).enumerate() {
            if result.verdict != Verdict::Met {
                continue;
            }
            let word = step.word;
            prop_assert!(word.is_some(), "step {i} met without a check");
            let heard = heard_since[i].as_ref();
            prop_assert!(
                heard.is_some_and(|h| h.contains(&word.unwrap())),
                "step {i} met, but {:?} was not heard after its line: {:?}",
                WORDS[word.unwrap()],
                heard
            );
        }
    }
}

/// Two steps of one try each, met on "apple" and on "river".
fn two_steps() -> SuiteSpec {
    SuiteSpec {
        steps: vec![
            StepSpec {
                word: Some(0),
                max_turns: 1,
            },
            StepSpec {
                word: Some(1),
                max_turns: 1,
            },
        ],
        max_turns: 10,
        phrases: Vec::new(),
        all_phrases: false,
        interrupt: 0.0,
        caller_first: false,
    }
}

/// The panic a Pipecat bot set off: every step judged, the caller hung up, and one more agent
/// turn reached it before the hangup did.
#[test]
fn a_caller_with_every_step_done_says_nothing_to_one_more_turn() {
    let spec = two_steps();
    let mut caller = spec.caller(1);
    let said = |r: Reply| r.utterance().map(|u| u.text().to_string());
    assert_eq!(said(caller.next(Some("hello")).unwrap()).unwrap(), "line 0");
    assert_eq!(said(caller.next(Some("apple")).unwrap()).unwrap(), "line 1");
    let hang_up = |r: Reply| matches!(r, Reply::HangUp);
    assert!(
        hang_up(caller.next(Some("river")).unwrap()),
        "both steps met: hang up"
    );
    // The agent talks on while the hangup is in flight, and as the call ends.
    assert!(hang_up(caller.next(Some("and one more thing")).unwrap()));
    caller.last_words("still talking").unwrap();
    assert!(hang_up(caller.next(None).unwrap()));
    let results = caller.finish(&[]);
    assert_eq!(results.len(), 2);
    assert!(results.iter().all(|r| r.verdict == Verdict::Met));
}

/// The caller reacts to what it heard as each turn played, but the steps' verdicts are of the
/// whole turns the record holds: a word the caller's ear cut short is no failure, a word it
/// made up no success, and a record that is not of this caller's call changes nothing.
#[test]
fn steps_are_judged_on_the_whole_turns_the_record_holds() {
    use voicesim::record::{Line, Speaker};
    let spec = two_steps();
    let line = |speaker, text: &str, heard: Option<&str>| Line {
        speaker,
        text: text.into(),
        at_ms: 0.0,
        heard: heard.map(String::from),
    };
    let hang_up = |r: Reply| matches!(r, Reply::HangUp);
    // Heard "an app" for "an apple": not met as it played, and the caller hung up.
    let mut caller = spec.caller(1);
    caller.next(Some("hello")).unwrap();
    assert!(hang_up(caller.next(Some("an app")).unwrap()));
    let record = [
        line(Speaker::Agent, "hello", None),
        line(Speaker::Caller, "line 0", None),
        line(Speaker::Agent, "an apple", Some("an app")),
    ];
    let results = caller.clone().finish(&record);
    assert_eq!(results[0].verdict, Verdict::Met, "{:?}", results[0]);
    assert!(
        results[0].justification.contains("whole turns"),
        "{:?}",
        results[0]
    );
    assert_eq!(results[1].verdict, Verdict::NotMet, "not reached");
    // A record of another call (its turns are not what this caller heard): as heard.
    let other = [
        line(Speaker::Agent, "good day", None),
        record[1].clone(),
        record[2].clone(),
    ];
    assert_eq!(caller.finish(&other)[0].verdict, Verdict::NotMet);
    // Heard "apple" where the agent said "maple": met as it played, not met in truth; the
    // next step, met, stands.
    let mut caller = spec.caller(1);
    caller.next(Some("hello")).unwrap();
    caller.next(Some("apple")).unwrap();
    assert!(hang_up(caller.next(Some("river")).unwrap()));
    let record = [
        line(Speaker::Agent, "hello", None),
        line(Speaker::Caller, "line 0", None),
        line(Speaker::Agent, "maple", Some("apple")),
        line(Speaker::Caller, "line 1", None),
        line(Speaker::Agent, "river", None),
    ];
    let results = caller.finish(&record);
    assert_eq!(results[0].verdict, Verdict::NotMet, "{:?}", results[0]);
    assert_eq!(results[1].verdict, Verdict::Met);
}

/// A random message of each protocol, as an agent (or, for the server side, a caller) could
/// send it: valid shapes with random values, and plain junk.
fn json_value() -> impl Strategy<Value = serde_json::Value> {
    use serde_json::Value;
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|n| serde_json::Number::from_f64(n).map_or(Value::Null, Value::Number)),
        ".{0,12}".prop_map(Value::String),
        // Base64 of something, and base64 that is not quite.
        proptest::collection::vec(any::<u8>(), 0..64).prop_map(|b| {
            use base64::Engine as _;
            Value::String(base64::engine::general_purpose::STANDARD.encode(b))
        }),
        "[A-Za-z0-9+/=]{0,20}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::Array),
            proptest::collection::btree_map(
                prop_oneof![
                    Just("event".to_string()),
                    Just("type".to_string()),
                    Just("media".to_string()),
                    Just("payload".to_string()),
                    Just("mark".to_string()),
                    Just("name".to_string()),
                    Just("delta".to_string()),
                    Just("audio".to_string()),
                    Just("streamSid".to_string()),
                    "[a-z_.]{1,10}",
                ],
                inner,
                0..5
            )
            .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Event and type names each protocol knows, so random messages reach deep into the parsers.
const NAMES: [&str; 36] = [
    "connected",
    "start",
    "media",
    "mark",
    "clear",
    "stop",
    "dtmf",
    "hangup",
    "response.audio.delta",
    "response.output_audio.delta",
    "response.done",
    "response.audio_transcript.delta",
    "response.output_audio_transcript.delta",
    "input_audio_buffer.speech_started",
    "input_audio_buffer.append",
    "input_audio_buffer.commit",
    "conversation.item.input_audio_transcription.completed",
    "session.update",
    "session.created",
    "error",
    "websocket:connected",
    "transcript",
    "playAudio",
    "killAudio",
    "checkpoint",
    "clearAudio",
    "playedStream",
    "websocket:dtmf",
    "websocket:notify",
    "open",
    "opened",
    "ping",
    "pong",
    "close",
    "disconnect",
    "pause",
];

fn message() -> impl Strategy<Value = Message> {
    prop_oneof![
        // A known event with random fields.
        (0..NAMES.len(), json_value(), json_value(), any::<bool>()).prop_map(|(n, a, b, t)| {
            let mut m = serde_json::Map::new();
            m.insert(if t { "event" } else { "type" }.into(), NAMES[n].into());
            m.insert("media".into(), a.clone());
            m.insert("mark".into(), b.clone());
            m.insert("delta".into(), a);
            m.insert("streamSid".into(), b);
            Message::text(serde_json::Value::Object(m).to_string())
        }),
        json_value().prop_map(|v| Message::text(v.to_string())),
        ".{0,64}".prop_map(Message::text),
        proptest::collection::vec(any::<u8>(), 0..700).prop_map(Message::binary),
        Just(Message::Ping(Vec::new().into())),
        Just(Message::Close(None)),
    ]
}

fn protocol() -> impl Strategy<Value = Protocol> {
    proptest::sample::select(Protocol::ALL.to_vec())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3_000))]

    #[test]
    fn every_adapter_takes_any_message_without_panicking(
        protocol in protocol(),
        rate in prop_oneof![Just(8_000u32), Just(16_000), Just(24_000)],
        messages in proptest::collection::vec(message(), 1..12),
    ) {
        let mut caller_side = protocol.adapter(1, BTreeMap::new(), rate);
        let mut agent_side = voicesim::agent::wire::for_protocol(protocol, rate);
        let _ = caller_side.opening();
        for m in &messages {
            // Ok or a protocol error: both are answers; only a panic fails.
            if let Ok(events) = caller_side.receive(m) {
                for e in events {
                    if let voicesim::transport::AgentEvent::Audio(samples) = e {
                        prop_assert!(samples.iter().all(|s| s.is_finite() && s.abs() <= 1.0));
                    }
                }
            }
            let _ = agent_side.receive(m);
        }
        let _ = caller_side.mark_played("x");
        let _ = caller_side.caller_stopped();
        let _ = caller_side.closing();
    }
}

/// What a random Twilio agent does, each after `wait` more caller frames.
#[derive(Debug, Clone)]
enum AgentStep {
    /// Audio of this many samples (8 kHz), loud or silent.
    Speak(usize, bool),
    Mark(u8),
    Clear,
    /// A message that breaks the protocol.
    Junk(String),
    /// Close the socket properly.
    Close,
    /// Go away without a word.
    Vanish,
}

/// What the test's caller side asks of the call, once it has seen `after` events.
#[derive(Debug, Clone)]
enum Ask {
    Say(usize),
    BargeIn(usize, f64),
    /// A barge-in into the turn that started last (said at once if that turn is over).
    CutInto(usize, f64),
    Dtmf(char),
    StopSpeaking,
    Hangup,
}

fn agent_step() -> impl Strategy<Value = (u32, AgentStep)> {
    (
        0u32..60,
        prop_oneof![
            6 => (0usize..12_000, any::<bool>()).prop_map(|(n, loud)| AgentStep::Speak(n, loud)),
            2 => any::<u8>().prop_map(AgentStep::Mark),
            1 => Just(AgentStep::Clear),
            1 => ".{0,20}".prop_map(AgentStep::Junk),
            1 => Just(AgentStep::Close),
            1 => Just(AgentStep::Vanish),
        ],
    )
}

fn ask() -> impl Strategy<Value = (usize, Ask)> {
    (
        0usize..40,
        prop_oneof![
            3 => (1usize..16_000).prop_map(Ask::Say),
            1 => (1usize..8_000, 0.0f64..3_000.0).prop_map(|(n, ms)| Ask::BargeIn(n, ms)),
            1 => (1usize..8_000, 0.0f64..3_000.0).prop_map(|(n, ms)| Ask::CutInto(n, ms)),
            1 => prop_oneof![Just('5'), Just('#'), Just('x')].prop_map(Ask::Dtmf),
            1 => Just(Ask::StopSpeaking),
            1 => Just(Ask::Hangup),
        ],
    )
}

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: std::sync::OnceLock<tokio::runtime::Runtime> = std::sync::OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap()
    })
}

/// Plays `script` as a Twilio agent on one accepted connection; `Speak(n, true)` is a tone of
/// n samples.
async fn scripted_agent(listener: tokio::net::TcpListener, script: Vec<(u32, AgentStep)>) {
    let tone = |n: usize| (0..n).map(|i| (i as f32 * 0.2).sin() * 0.5).collect();
    scripted_agent_with(listener, script, tone).await
}

/// As [`scripted_agent`], with `loud(n)` the audio of `Speak(n, true)`.
async fn scripted_agent_with(
    listener: tokio::net::TcpListener,
    script: Vec<(u32, AgentStep)>,
    loud: impl Fn(usize) -> Vec<f32>,
) {
    use futures_util::{SinkExt, StreamExt};
    let Ok((stream, _)) = listener.accept().await else {
        return;
    };
    let Ok(mut ws) = tokio_tungstenite::accept_async(stream).await else {
        return;
    };
    let mut frames = 0u32;
    for (wait, step) in script {
        let until = frames + wait;
        while frames < until {
            match ws.next().await {
                Some(Ok(Message::Text(t))) if t.contains("\"media\"") => frames += 1,
                Some(Ok(_)) => {}
                _ => return,
            }
        }
        let media = |samples: usize, speak: bool| {
            use base64::Engine as _;
            let audio: Vec<f32> = if speak {
                loud(samples)
            } else {
                vec![0.0; samples]
            };
            let payload = base64::engine::general_purpose::STANDARD
                .encode(voicesim::audio::Encoding::Mulaw.encode(&audio));
            serde_json::json!({"event": "media", "streamSid": "MZ1", "media": {"payload": payload}})
                .to_string()
        };
        let message = match step {
            AgentStep::Speak(n, loud) => Message::text(media(n, loud)),
            AgentStep::Mark(n) => Message::text(
                serde_json::json!({"event": "mark", "streamSid": "MZ1", "mark": {"name": format!("m{n}")}})
                    .to_string(),
            ),
            AgentStep::Clear => Message::text(r#"{"event":"clear","streamSid":"MZ1"}"#),
            AgentStep::Junk(text) => Message::text(text),
            AgentStep::Close => {
                let _ = ws.close(None).await;
                return;
            }
            AgentStep::Vanish => return,
        };
        if ws.send(message).await.is_err() {
            return;
        }
    }
    // Script done: listen until the caller goes.
    while let Some(Ok(_)) = ws.next().await {}
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn the_call_loop_ends_every_call_recorded_whatever_the_agent_does(
        script in proptest::collection::vec(agent_step(), 0..10),
        asks in proptest::collection::vec(ask(), 0..8),
        seed in any::<u64>(),
    ) {
        use voicesim::transport::call::{self, CallOptions, CallerCommand};
        use voicesim::transport::event::CallEventKind;
        let ended = runtime().block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let url = format!("ws://{}/", listener.local_addr().unwrap());
            tokio::spawn(scripted_agent(listener, script));
            let noise = voicesim::noise::LoadedNoise::load(
                &voicesim::noise::NoiseProfile::bundled("office").unwrap(), 8_000).unwrap();
            let mic = voicesim::noise::MicTimeline::new(&noise, seed);
            let mut options = CallOptions::new(&url);
            options.fast = true;
            options.max_duration = std::time::Duration::from_secs(20);
            let (cmd_tx, cmd_rx) = tokio::sync::mpsc::unbounded_channel();
            let (ev_tx, mut ev_rx) = tokio::sync::mpsc::unbounded_channel();
            let adapter = Protocol::Twilio.adapter(seed, BTreeMap::new(), 8_000);
            let call = tokio::spawn(call::run(options, adapter, mic, cmd_rx, ev_tx));
            let mut events = Vec::new();
            let mut asks = asks;
            asks.sort_by_key(|(after, _)| *after);
            let mut asks = asks.into_iter().peekable();
            let tone = |n: usize| Clip::new((0..n).map(|i| (i as f32 * 0.05).sin() * 0.3).collect(), 8_000);
            while let Some(event) = ev_rx.recv().await {
                events.push(event);
                while let Some((_, ask)) = asks.next_if(|(after, _)| *after < events.len()) {
                    let started = events.iter().rev().find(|e| e.kind == CallEventKind::AgentStarted).map(|e| e.at_ms);
                    let command = match ask {
                        Ask::Say(n) => CallerCommand::Say(tone(n)),
                        Ask::BargeIn(n, after_ms) => CallerCommand::BargeIn { clip: tone(n), after_ms, turn_started_ms: None },
                        Ask::CutInto(n, after_ms) => CallerCommand::BargeIn {
                            clip: tone(n), after_ms, turn_started_ms: Some(started.unwrap_or(0.0)) },
                        Ask::Dtmf(key) => CallerCommand::Dtmf(key),
                        Ask::StopSpeaking => CallerCommand::StopSpeaking,
                        Ask::Hangup => CallerCommand::Hangup,
                    };
                    let _ = cmd_tx.send(command);
                }
            }
            let outcome = call.await.unwrap().expect("the agent accepted the call");
            (outcome, events)
        });
        let (outcome, events) = ended;
        prop_assert_eq!(&events.first().unwrap().kind, &CallEventKind::Connected);
        let last = events.last().unwrap();
        prop_assert_eq!(&last.kind, &CallEventKind::Ended { reason: outcome.ended.clone() });
        prop_assert_eq!(events.iter().filter(|e| matches!(e.kind, CallEventKind::Ended { .. })).count(), 1);
        // Both channels of the recording cover the whole call.
        let samples = (outcome.duration_ms * 8.0).round() as usize;
        prop_assert_eq!(outcome.caller.samples.len(), samples);
        prop_assert_eq!(outcome.agent.samples.len(), samples);
        // Turns open before they close, one at a time.
        let mut open = false;
        for e in &events {
            match e.kind {
                CallEventKind::AgentStarted => { prop_assert!(!open, "two turns at once"); open = true; }
                CallEventKind::AgentTurnEnded { .. } => { prop_assert!(open, "a turn ended that never started"); open = false; }
                _ => {}
            }
            prop_assert!(e.at_ms <= outcome.duration_ms + 1e-6, "{:?} after the end at {}", e, outcome.duration_ms);
        }
        prop_assert!(!open, "a turn still open after the call ended");
        let turns = voicesim::transport::turns::turns(&events);
        let _ = voicesim::transport::turns::faults(&outcome.ended, &turns);
    }
}

/// What a random agent says on a whole call: words (spoken by espeak-ng), silences, marks,
/// clears, junk, an early close.
#[derive(Debug, Clone)]
enum Says {
    Word(usize),
    Silence(usize),
    Mark,
    Clear,
    Junk,
    Close,
    Vanish,
}

fn says() -> impl Strategy<Value = (u32, Says)> {
    (
        0u32..60,
        prop_oneof![
            8 => (0..WORDS.len()).prop_map(Says::Word),
            1 => (100usize..8_000).prop_map(Says::Silence),
            1 => Just(Says::Mark),
            1 => Just(Says::Clear),
            1 => Just(Says::Junk),
            1 => Just(Says::Close),
            1 => Just(Says::Vanish),
        ],
    )
}

/// The agent's words as mu-law at 8 kHz, synthesized once.
fn spoken_words() -> &'static Vec<Vec<f32>> {
    static WORDS_AUDIO: std::sync::OnceLock<Vec<Vec<f32>>> = std::sync::OnceLock::new();
    WORDS_AUDIO.get_or_init(|| {
        use voicesim::speech::Tts;
        let espeak =
            voicesim::speech::Espeak::new().expect("espeak-ng is installed by `make setup`");
        WORDS
            .iter()
            .map(|w| {
                espeak
                    .synthesize(w, &voicesim::speech::Voice::default())
                    .unwrap()
                    .resample(8_000)
                    .unwrap()
                    .trim_silence()
                    .samples
            })
            .collect()
    })
}

/// Plays `script` as a Twilio agent, once per accepted call.
async fn talking_agent(listener: tokio::net::TcpListener, script: Vec<(u32, Says)>) {
    let script: Vec<(u32, AgentStep)> = script
        .into_iter()
        .map(|(wait, says)| {
            let step = match says {
                Says::Word(w) => AgentStep::Speak(w, true),
                Says::Silence(n) => AgentStep::Speak(n, false),
                Says::Mark => AgentStep::Mark(7),
                Says::Clear => AgentStep::Clear,
                Says::Junk => AgentStep::Junk("{\"event\":\"media\"}".into()),
                Says::Close => AgentStep::Close,
                Says::Vanish => AgentStep::Vanish,
            };
            (wait, step)
        })
        .collect();
    scripted_agent_with(listener, script, |i| spoken_words()[i].clone()).await
}

proptest! {
    // Real speech both ways: few cases, each a whole call.
    #![proptest_config(ProptestConfig { cases: 10, max_shrink_iters: 20, ..ProptestConfig::default() })]

    #[test]
    fn a_whole_call_against_any_agent_ends_judged_and_recorded_and_never_passes_unearned(
        spec in suite_spec(),
        script in proptest::collection::vec(says(), 0..8),
        seed in any::<u64>(),
    ) {
        use std::sync::Arc;
        use voicesim::report::Outcome;
        let spoken: Vec<usize> = script
            .iter()
            .filter_map(|(_, s)| if let Says::Word(w) = s { Some(*w) } else { None })
            .collect();
        let mut spec = spec;
        // The parser wants a step; StepCaller's own test covers none.
        if spec.steps.is_empty() {
            spec.steps.push(StepSpec { word: Some(0), max_turns: 1 });
        }
        let yaml = spec.yaml().replace("stop:\n", "stop:\n  max_seconds: 12\n  answer_timeout_seconds: 2\n");
        let ran = runtime().block_on(async {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let url = format!("ws://{}/", listener.local_addr().unwrap());
            tokio::spawn(talking_agent(listener, script));
            let senses = (common::espeak() as Arc<dyn voicesim::speech::Tts>, common::whisper());
            common::run_at(&yaml, url, Protocol::Twilio, 1, seed, senses, None).await
        });
        let results = &ran.results;
        prop_assert_eq!(results.len(), 1);
        let r = &results[0];
        prop_assert!(r.panic.is_none(), "{}", r.why());
        prop_assert!(r.outcome != Outcome::Error, "the call was made: {}", r.why());
        let dir = r.recording.as_ref().expect("recorded");
        prop_assert!(dir.join("call.wav").is_file() && dir.join("events.jsonl").is_file());
        prop_assert_eq!(r.steps.len(), spec.steps.len(), "every step has a verdict");
        for (i, (step, result)) in spec.steps.iter().zip(&r.steps).enumerate() {
            if result.verdict == Verdict::Met {
                let word = step.word.expect("a step without a check is never met");
                prop_assert!(spoken.contains(&word), "step {} met on {:?}, which the agent never said", i, WORDS[word]);
            }
        }
        if r.outcome == Outcome::Passed {
            prop_assert!(r.steps.iter().all(|s| s.verdict == Verdict::Met));
        }
        prop_assert_eq!(ran.lines.len(), 1);
    }
}
