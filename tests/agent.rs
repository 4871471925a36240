//! Whole calls against the reference agent on loopback: real speech both ways (espeak-ng,
//! Whisper), real websockets, every protocol, every fault mode. Each call runs under a timeout,
//! so a hang fails the test instead of stalling CI.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::whisper;
use tokio::net::TcpListener;
use voicesim::agent::{AgentCallLog, AgentConfig, AgentError, Faults, ReferenceAgent};
use voicesim::audio::{level, Clip, Frame};
use voicesim::noise::{LoadedNoise, MicTimeline, NoiseProfile};
use voicesim::record::CallRecord;
use voicesim::sim::{self, Script, Senses, Utterance};
use voicesim::speech::wer::normalize;
use voicesim::speech::{Espeak, Tts, Voice};
use voicesim::transport::call::CallOptions;
use voicesim::transport::event::EndReason;
use voicesim::transport::turns::Fault;
use voicesim::transport::Protocol;

fn espeak() -> Arc<dyn Tts> {
    Arc::new(Espeak::new().expect("espeak-ng is installed by `make setup`"))
}

fn senses() -> Senses {
    Senses {
        tts: espeak(),
        voice: Voice::default(),
        stt: whisper(),
    }
}

type Logs = tokio::sync::mpsc::UnboundedReceiver<Result<AgentCallLog, AgentError>>;

/// Starts the reference agent on a free loopback port; returns its URL and its call logs.
async fn start_agent(config: AgentConfig) -> (String, Logs) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/", listener.local_addr().unwrap());
    let agent = Arc::new(ReferenceAgent::new(config, espeak(), whisper()));
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(agent.serve(listener, tx));
    (url, rx)
}

/// One scripted call, in a clean room unless told otherwise, that must end within 2 minutes.
async fn call(
    url: &str,
    protocol: Protocol,
    lines: &[&str],
    tune: impl FnOnce(&mut CallOptions),
) -> CallRecord {
    let adapter = protocol.adapter(3, Default::default(), 16_000);
    let mic = MicTimeline::new(
        &LoadedNoise::load(&NoiseProfile::clean(), adapter.rate()).unwrap(),
        3,
    );
    let mut options = CallOptions::new(url);
    options.max_duration = Duration::from_secs(60);
    tune(&mut options);
    let mut caller = Script::new(lines.iter().map(|l| Utterance::Text(l.to_string())), false);
    let senses = senses();
    let call = sim::converse(options, adapter, mic, &mut caller, &senses, None);
    tokio::time::timeout(Duration::from_secs(120), call)
        .await
        .expect("the call hung")
        .expect("the call ran")
}

/// A call that asks about order 4521; asserts the agent heard the number.
async fn order_4521(config: AgentConfig) -> (CallRecord, AgentCallLog) {
    let protocol = config.protocol;
    let (url, mut logs) = start_agent(config).await;
    let record = call(
        &url,
        protocol,
        &["My order number is four five two one."],
        |_| {},
    )
    .await;
    let agent = logs.recv().await.unwrap().unwrap();
    assert!(
        agent.turns.len() == 2,
        "{protocol:?}: the agent answered {} times; the call: {:?}",
        agent.turns.len(),
        record.transcript
    );
    assert!(
        normalize(&agent.turns[1].heard).contains("4 5 2 1"),
        "{protocol:?}: the agent heard {:?}",
        agent.turns[1].heard
    );
    (record, agent)
}

fn saved(record: &CallRecord) {
    let dir = tempfile::tempdir().unwrap();
    record.save(dir.path()).unwrap();
    let wav = hound::WavReader::open(dir.path().join("call.wav")).unwrap();
    assert_eq!(wav.spec().channels, 2, "caller left, agent right");
    let log = std::fs::read_to_string(dir.path().join("events.jsonl")).unwrap();
    assert!(
        log.lines().last().unwrap().contains(r#""event":"ended""#),
        "{log}"
    );
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("call.json")).unwrap()).unwrap();
    assert!(json["transcript"].is_array());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_protocol_carries_a_whole_order_status_call() {
    // Two calls at a time: each runs in real time, mostly waiting for the other side.
    for protocols in Protocol::ALL.chunks(2) {
        let calls = protocols.iter().map(|&protocol| async move {
            (protocol, order_4521(AgentConfig::new(protocol)).await)
        });
        for (protocol, (record, agent)) in futures_util::future::join_all(calls).await {
            // The agent heard the number through the wire format and answered about that order...
            assert!(agent.turns[1].said.contains("has been shipped"));
            // ... and the caller heard the answer come back through it.
            let heard = normalize(&record.agent_text());
            assert!(
                heard.contains("friday") && heard.contains("order"),
                "{protocol:?}: {heard}"
            );
            assert!(
                record.faults.is_empty(),
                "{protocol:?}: {:?}",
                record.faults
            );
            assert_eq!(record.ended, EndReason::CallerHungUp, "{protocol:?}");
            assert_eq!(record.turns.len(), 2, "{protocol:?}: greeting and answer");
            assert!(
                record.turns[0].response_latency_ms.is_none(),
                "the greeting answers nothing"
            );
            assert!(record.turns[1].response_latency_ms.unwrap() > 0.0);
            assert!(record.outcome.agent.duration() > 5.0);
            saved(&record);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn goodbye_makes_the_agent_hang_up() {
    let (url, _logs) = start_agent(AgentConfig::new(Protocol::RawPcm)).await;
    let record = call(
        &url,
        Protocol::RawPcm,
        &["Goodbye.", "Are you still there?"],
        |_| {},
    )
    .await;
    assert_eq!(record.ended, EndReason::AgentHungUp);
    assert!(normalize(&record.agent_text()).contains("goodbye"));
}

/// Speech cut at the end of its last loud 20 ms frame, so the caller's timeline and the agent's
/// endpointer agree to the frame on when it ended.
fn sharp_edged_speech(text: &str, rate: u32) -> Clip {
    let clip = espeak()
        .synthesize(text, &Voice::default())
        .unwrap()
        .resample(rate)
        .unwrap()
        .trim_silence()
        .normalized_to(-20.0);
    let frame = Frame::samples_per_frame(rate);
    let loud = clip
        .samples
        .chunks(frame)
        .rposition(|f| f.len() == frame && level::to_dbfs(level::rms(f)) > -35.0)
        .unwrap();
    Clip::new(clip.samples[..(loud + 1) * frame].to_vec(), rate)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_injected_agent_delay_is_measured_to_within_20_ms() {
    let mut config = AgentConfig::new(Protocol::RawPcm);
    config.silence_ms = 300.0;
    config.faults.delay_ms = 800;
    let (url, mut logs) = start_agent(config).await;
    let adapter = Protocol::RawPcm.adapter(1, Default::default(), 16_000);
    let mic = MicTimeline::new(
        &LoadedNoise::load(&NoiseProfile::clean(), 16_000).unwrap(),
        1,
    );
    let line = sharp_edged_speech("Order seven seven eight eight.", 16_000);
    let mut caller = Script::new(
        [Utterance::Audio {
            clip: line,
            text: "Order 7788.".into(),
        }],
        false,
    );
    let record = tokio::time::timeout(
        Duration::from_secs(120),
        sim::converse(
            CallOptions::new(&url),
            adapter,
            mic,
            &mut caller,
            &senses(),
            None,
        ),
    )
    .await
    .unwrap()
    .unwrap();
    let agent = logs.recv().await.unwrap().unwrap();
    let answer = &agent.turns[1];
    // The agent's own account: 800 ms, or a little more when Whisper was busy with another
    // test's call when the agent needed it (the agent cannot answer before it has understood).
    let actual = answer.replied_at_ms - answer.heard_end_ms.unwrap();
    assert!(actual >= 800.0, "the delay was not applied: {actual} ms");
    let measured = record.turns[1].response_latency_ms.unwrap();
    assert!(
        (measured - actual).abs() <= 20.0,
        "measured {measured} ms; the agent answered after {actual} ms (800 ms injected)"
    );
}

fn faulty(faults: Faults) -> AgentConfig {
    let mut config = AgentConfig::new(Protocol::Twilio);
    config.faults = faults;
    config
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_agent_ends_the_call_with_no_answer() {
    let (url, _logs) = start_agent(faulty(Faults {
        silent: true,
        ..Faults::default()
    }))
    .await;
    let record = call(&url, Protocol::Twilio, &["Hello?"], |o| {
        o.answer_timeout = Duration::from_secs(2)
    })
    .await;
    assert!(
        matches!(record.ended, EndReason::NoAnswer { .. }),
        "{:?}",
        record.ended
    );
    assert!(
        matches!(record.faults[..], [Fault::NoAnswer { .. }]),
        "{:?}",
        record.faults
    );
    assert!(record.faults[0].to_string().contains("said nothing"));
    saved(&record);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_connection_is_a_broken_call_with_what_was_said_so_far() {
    let (url, _logs) = start_agent(faulty(Faults {
        drop_after: Some(1),
        ..Faults::default()
    }))
    .await;
    let record = call(
        &url,
        Protocol::Twilio,
        &["Order four five two one.", "Hello?"],
        |_| {},
    )
    .await;
    eprintln!(
        "DEBUG {:#?} {:?}",
        record.turns,
        record.outcome.agent.duration()
    );
    let [Fault::Broken { message }] = &record.faults[..] else {
        panic!("{:?}", record.faults)
    };
    assert!(message.contains("without closing handshake"), "{message}");
    // The greeting came before the drop and was heard.
    assert!(
        normalize(&record.agent_text()).contains("order number"),
        "{}",
        record.agent_text()
    );
    saved(&record);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_from_the_agent_is_a_protocol_error() {
    for protocol in Protocol::ALL {
        let mut config = AgentConfig::new(protocol);
        config.faults.garbage = true;
        let (url, _logs) = start_agent(config).await;
        let record = call(&url, protocol, &["Hello?"], |_| {}).await;
        let [Fault::Broken { message }] = &record.faults[..] else {
            panic!("{protocol:?}: {:?}", record.faults)
        };
        let name = serde_json::to_value(protocol).unwrap();
        assert!(message.starts_with(name.as_str().unwrap()), "{message}");
        saved(&record);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_drip_is_heard_as_choppy_audio() {
    let (url, _logs) = start_agent(faulty(Faults {
        slow_drip: true,
        ..Faults::default()
    }))
    .await;
    // Hang up after the greeting: its dropouts are enough.
    let record = call(&url, Protocol::Twilio, &[], |_| {}).await;
    let [Fault::Choppy { underruns, gap_ms }] = record.faults[..] else {
        panic!("{:?}", record.faults)
    };
    // The greeting plays in 20 ms pieces, each followed by a 60 ms dropout.
    let talk = record.turns[0].agent_talk_ms;
    assert!(
        underruns as f64 >= talk / 80.0 * 0.9,
        "{underruns} dropouts in {talk} ms"
    );
    assert!(gap_ms >= talk * 0.7, "{gap_ms} ms of dropouts in {talk} ms");
    saved(&record);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mishearing_agent_answers_about_the_wrong_order() {
    // It hears right ...
    let (record, _) = order_4521(faulty(Faults {
        mishear: true,
        ..Faults::default()
    }))
    .await;
    let heard = normalize(&record.agent_text());
    assert!(!heard.contains("friday"), "... and answered wrong: {heard}");
    assert!(record.faults.is_empty(), "the call itself was fine");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_agent_stops_talking_when_the_caller_barges_in_and_hears_key_presses() {
    use voicesim::transport::call::{self, CallerCommand};
    use voicesim::transport::event::CallEventKind;
    let (url, mut logs) = start_agent(AgentConfig::new(Protocol::Twilio)).await;
    let adapter = Protocol::Twilio.adapter(5, Default::default(), 8_000);
    let mic = MicTimeline::new(
        &LoadedNoise::load(&NoiseProfile::clean(), 8_000).unwrap(),
        5,
    );
    let (cmd, commands) = tokio::sync::mpsc::unbounded_channel();
    let (events_tx, mut events) = tokio::sync::mpsc::unbounded_channel();
    let run = tokio::spawn(call::run(
        CallOptions::new(&url),
        adapter,
        mic,
        commands,
        events_tx,
    ));
    let interruption = espeak()
        .synthesize("Wait, wait, I have a question.", &Voice::default())
        .unwrap()
        .trim_silence();
    cmd.send(CallerCommand::Dtmf('4')).unwrap();
    cmd.send(CallerCommand::Dtmf('#')).unwrap();
    cmd.send(CallerCommand::BargeIn {
        clip: interruption,
        after_ms: 1_000.0,
        turn_started_ms: None,
    })
    .unwrap();
    let mut log = Vec::new();
    let collect = async {
        while let Some(event) = events.recv().await {
            if matches!(event.kind, CallEventKind::AgentTurnEnded { .. }) {
                let _ = cmd.send(CallerCommand::Hangup);
            }
            log.push(event);
        }
    };
    tokio::time::timeout(Duration::from_secs(60), collect)
        .await
        .expect("the call hung");
    run.await.unwrap().unwrap();
    let turn = &voicesim::transport::turns::turns(&log)[0];
    let barge = turn.barge_in.as_ref().expect("the caller barged in");
    assert!(barge.cleared, "the agent cleared its audio: {turn:?}");
    // Its endpointer needs 120 ms of voice; the greeting would have gone on for 2 s more.
    assert!(barge.agent_stopped_after_ms < 400.0, "{turn:?}");
    assert!(turn.agent_talk_ms < 1_500.0, "{turn:?}");
    let agent = logs.recv().await.unwrap().unwrap();
    assert_eq!(agent.barge_ins, 1);
    assert_eq!(agent.keys, "4#");
}

/// Whisper, made as slow as a busy machine makes it; counts what it was asked to hear.
struct SlowEar {
    heard: std::sync::atomic::AtomicUsize,
    busy: std::sync::atomic::AtomicBool,
}

impl voicesim::speech::Stt for SlowEar {
    fn id(&self) -> String {
        "slow whisper".into()
    }
    fn transcribe(
        &self,
        clip: &Clip,
    ) -> Result<voicesim::speech::Transcript, voicesim::speech::SpeechError> {
        use std::sync::atomic::Ordering;
        self.busy.store(true, Ordering::SeqCst);
        self.heard.fetch_add(1, Ordering::SeqCst);
        std::thread::sleep(Duration::from_millis(2_000));
        let heard = whisper().transcribe(clip);
        self.busy.store(false, Ordering::SeqCst);
        heard
    }
    fn free(&self) -> bool {
        !self.busy.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// An agent whose stream stutters (a bit of its greeting, then nothing for 440 ms, eight
/// times) pauses faster than a slow ear hears: the caller drops each pause the agent has
/// already spoken past, and answers the turn once, when it ends, instead of working through
/// every pause in turn and answering a backlog later (or, with a recognizer slow enough, never).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_ear_drops_the_pauses_an_agent_has_spoken_past() {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    use voicesim::audio::Encoding;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/", listener.local_addr().unwrap());
    let greeting = espeak()
        .synthesize(
            "Hello, this is the order line. What is your order number? I am listening.",
            &Voice::default(),
        )
        .unwrap()
        .resample(16_000)
        .unwrap()
        .trim_silence();
    let agent = tokio::spawn(async move {
        let (stream, _) = listener.accept().await.unwrap();
        let ws = tokio_tungstenite::accept_async(stream).await.unwrap();
        let (mut tx, mut rx) = ws.split();
        // The agent's clock is the caller's stream: 20 ms a frame.
        let mut frame = async || loop {
            match rx.next().await {
                Some(Ok(Message::Binary(b))) => break Some(Encoding::Pcm16.decode(&b)),
                Some(Ok(_)) => continue,
                _ => break None,
            }
        };
        for _ in 0..10 {
            frame().await;
        }
        let chunk = greeting.samples.len().div_ceil(8);
        for part in greeting.samples.chunks(chunk) {
            tx.send(Message::binary(Encoding::Pcm16.encode(part)))
                .await
                .unwrap();
            for _ in 0..(part.len() / 320 + 22) {
                frame().await;
            }
        }
        // Then 40 s of call for the caller to answer in.
        let mut waited = 0;
        while waited < 2_000 {
            let Some(samples) = frame().await else { break };
            waited += 1;
            if level::rms(&samples) > 0.01 {
                break;
            }
        }
        let _ = tx.send(Message::text(r#"{"type":"hangup"}"#)).await;
        waited
    });
    let ear = Arc::new(SlowEar {
        heard: Default::default(),
        busy: Default::default(),
    });
    let senses = Senses {
        stt: ear.clone(),
        ..senses()
    };
    let adapter = Protocol::RawPcm.adapter(3, Default::default(), 16_000);
    let mic = MicTimeline::new(
        &LoadedNoise::load(&NoiseProfile::clean(), 16_000).unwrap(),
        3,
    );
    let mut options = CallOptions::new(&url);
    options.max_duration = Duration::from_secs(90);
    // A suite's caller: it hears the turn as it plays and works out its answer in each pause.
    let suite = voicesim::suite::Suite::parse(
        "name: s\ntests:\n  - name: bye\n    steps:\n      - goal: Say goodbye\n        static_utterance: That is all, thank you.\n",
        "suite.yaml",
        std::path::Path::new("."),
    )
    .unwrap();
    let mut caller = sim::StepCaller::new(
        &suite.tests[0],
        Default::default(),
        Default::default(),
        suite.stop.clone(),
        suite.dir.clone(),
        None,
        3,
    );
    let record = tokio::time::timeout(
        Duration::from_secs(180),
        sim::converse(options, adapter, mic, &mut caller, &senses, None),
    )
    .await
    .expect("the call hung")
    .expect("the call ran");
    let waited = agent.await.unwrap();
    let pauses = record
        .events
        .iter()
        .filter(|e| {
            matches!(
                e.kind,
                voicesim::transport::event::CallEventKind::AgentQuiet { .. }
            )
        })
        .count();
    let heard = ear.heard.load(std::sync::atomic::Ordering::SeqCst);
    assert!(pauses >= 7, "the stream stuttered: {pauses} pauses");
    assert!(
        waited < 2_000,
        "the caller answered the turn (within 40 s of call): {:?}",
        record.transcript
    );
    // Each hearing takes 2 s; the turn 8 s with its pauses: a pause or two heard while it
    // plays, the turn once when it ends, once more whole for the record. Working through
    // every pause would be eight and more.
    assert!(
        heard <= 5,
        "{heard} hearings for {pauses} pauses: {:?}",
        record.transcript
    );
}

/// The utterances the reference agent's endpointer cuts from a caller's espeak line over a car
/// at 20 dB, said from frames 223, 228 and 257 (as `voicesim call`s once had it, and the agent
/// then never answered): Whisper's shortened window sends each into a loop ("... goodbye. Bye.
/// Bye. Bye. ..."), dropped as no speech; heard again in its full window, each is the goodbye.
#[test]
fn the_agent_hears_a_sentence_whispers_short_window_heard_nothing_in() {
    use voicesim::audio::{Endpointer, Heard};
    for say_at in [223, 228, 257] {
        let sent = common::espeak_in_a_car("That is all, thank you. Goodbye.", say_at, 500);
        let mut ear = Endpointer::new(16_000, 500.0);
        let mut utterances = Vec::new();
        for frame in sent.chunks(Frame::samples_per_frame(16_000)) {
            for heard in ear.push(frame) {
                if let Heard::Ended { utterance, .. } = heard {
                    utterances.push(utterance);
                }
            }
        }
        let [utterance] = &utterances[..] else {
            panic!("from frame {say_at}: {} utterances", utterances.len())
        };
        let heard = whisper().transcribe(utterance).unwrap().text;
        assert!(normalize(&heard).contains("goodbye"), "{say_at}: {heard:?}");
    }
}

/// A real bot sends ahead of real time and lets the line buffer it, so a caller held back for
/// a moment (a busy machine) hears no dropout. The reference agent's clock is the caller's
/// stream: once the caller stops sending, all that has come of a reply is its lead.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_agent_sends_a_reply_ahead_of_the_callers_stream() {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    let (url, _logs) = start_agent(AgentConfig::new(Protocol::RawPcm)).await;
    let (socket, _) = tokio_tungstenite::connect_async(url.as_str())
        .await
        .unwrap();
    let (mut tx, mut rx) = socket.split();
    let silence = vec![0u8; Frame::samples_per_frame(16_000) * 2];
    let audio_ms = |m: &Message| match m {
        Message::Binary(b) => b.len() as f64 / 2.0 / 16.0,
        _ => 0.0,
    };
    // The caller's stream until the greeting starts (it is synthesized meanwhile) ...
    let mut heard_ms = 0.0;
    let first = async {
        loop {
            tx.send(Message::binary(silence.clone())).await.unwrap();
            let reply = tokio::time::timeout(Duration::from_millis(20), rx.next()).await;
            if let Ok(Some(Ok(m))) = reply {
                heard_ms += audio_ms(&m);
                if heard_ms > 0.0 {
                    break;
                }
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(60), first)
        .await
        .expect("the agent never greeted");
    // ... then nothing: what else comes is what was sent ahead with that first frame.
    while let Ok(Some(Ok(m))) = tokio::time::timeout(Duration::from_secs(1), rx.next()).await {
        heard_ms += audio_ms(&m);
    }
    // At least 200 ms ahead, and 20 ms for each frame the caller sent before it read the first of it; but
    // not the whole greeting (3 s) at once.
    assert!(
        (200.0..1_500.0).contains(&heard_ms),
        "{heard_ms} ms of the greeting came for the caller's first frames"
    );
}
