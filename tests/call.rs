//! Real calls over websockets on loopback: the caller side against small agents that speak
//! each protocol. Assertions count frames and samples of call time, never wall-clock time.

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use voicesim::audio::{Clip, Encoding};
use voicesim::noise::{LoadedNoise, MicTimeline, NoiseProfile};
use voicesim::transport::call::{self, CallError, CallOptions, CallerCommand};
use voicesim::transport::event::{CallEvent, CallEventKind, EndReason};
use voicesim::transport::raw_pcm::RawPcm;
use voicesim::transport::twilio::Twilio;
use voicesim::transport::Adapter;

async fn listen() -> (TcpListener, String) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/stream", listener.local_addr().unwrap());
    (listener, url)
}

fn quiet_mic(rate: u32) -> MicTimeline {
    MicTimeline::new(&LoadedNoise::load(&NoiseProfile::clean(), rate).unwrap(), 0)
}

/// Starts a call; returns the command sender, the event receiver and the call's handle.
fn start(
    options: CallOptions,
    adapter: Box<dyn Adapter>,
    mic: MicTimeline,
) -> (
    mpsc::UnboundedSender<CallerCommand>,
    mpsc::UnboundedReceiver<CallEvent>,
    tokio::task::JoinHandle<Result<call::CallOutcome, CallError>>,
) {
    let (cmd_tx, cmd_rx) = mpsc::unbounded_channel();
    let (ev_tx, ev_rx) = mpsc::unbounded_channel();
    let handle = tokio::spawn(call::run(options, adapter, mic, cmd_rx, ev_tx));
    (cmd_tx, ev_rx, handle)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_pcm_call_plays_the_agent_out_on_the_timeline_and_records_both_sides() {
    let (listener, url) = listen().await;
    let agent = tokio::spawn(async move {
        let (stream, _) = listener.accept().await.unwrap();
        let mut ws = tokio_tungstenite::accept_async(stream).await.unwrap();
        let mut frames = 0;
        // After 10 caller frames, 500 ms of agent audio in one burst: faster than real time.
        while frames < 10 {
            if let Some(Ok(Message::Binary(b))) = ws.next().await {
                assert_eq!(b.len(), 320, "20 ms of PCM16 at 8 kHz");
                frames += 1;
            }
        }
        ws.send(Message::binary(Encoding::Pcm16.encode(&vec![0.5; 4000])))
            .await
            .unwrap();
        // Then keep listening for three seconds of call, and hang up.
        while frames < 160 {
            if let Some(Ok(Message::Binary(_))) = ws.next().await {
                frames += 1;
            }
        }
        ws.send(Message::text(r#"{"type":"hangup"}"#))
            .await
            .unwrap();
        frames
    });
    let (_cmd, mut events, call) = start(
        CallOptions::new(&url),
        Box::new(RawPcm::new(8_000)),
        quiet_mic(8_000),
    );
    let outcome = call.await.unwrap().unwrap();
    let agent_heard = agent.await.unwrap();
    assert_eq!(outcome.ended, EndReason::AgentHungUp);

    let mut log = Vec::new();
    while let Ok(e) = events.try_recv() {
        log.push(e);
    }
    let started = log
        .iter()
        .find(|e| e.kind == CallEventKind::AgentStarted)
        .expect("agent started")
        .at_ms;
    let ended = log
        .iter()
        .find_map(|e| match e.kind {
            CallEventKind::AgentTurnEnded { spoke_until_ms, .. } => Some((spoke_until_ms, e.at_ms)),
            _ => None,
        })
        .expect("turn ended");
    assert!(
        started >= 200.0,
        "the agent answered after 10 frames: {started}"
    );
    assert_eq!(
        ended.0 - started,
        500.0,
        "500 ms of audio plays for 500 ms however fast it came"
    );
    assert_eq!(
        ended.1 - ended.0,
        700.0,
        "the turn ends after the 700 ms gap"
    );
    // Both channels on one timeline: the agent's audio sits where it played.
    assert!(outcome.caller.len() >= agent_heard * 160);
    let start_i = (started * 8.0) as usize;
    let agent = &outcome.agent.samples;
    assert!(agent[..start_i].iter().all(|&s| s == 0.0));
    assert!(agent[start_i..start_i + 4000].iter().all(|&s| s == 0.5));
    assert!(agent[start_i + 4000..].iter().all(|&s| s == 0.0));
    let dir = tempfile::tempdir().unwrap();
    outcome.write_wav(dir.path().join("call.wav")).unwrap();
    let back = hound::WavReader::open(dir.path().join("call.wav")).unwrap();
    assert_eq!(back.spec().channels, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twilio_marks_are_echoed_only_after_their_audio_has_played() {
    let (listener, url) = listen().await;
    let agent = tokio::spawn(async move {
        let (stream, _) = listener.accept().await.unwrap();
        let mut ws = tokio_tungstenite::accept_async(stream).await.unwrap();
        let text =
            |m: Message| serde_json::from_str::<serde_json::Value>(m.to_text().unwrap()).unwrap();
        assert_eq!(
            text(ws.next().await.unwrap().unwrap())["event"],
            "connected"
        );
        let start = text(ws.next().await.unwrap().unwrap());
        assert_eq!(start["event"], "start");
        assert_eq!(start["start"]["customParameters"]["scenario"], "refund");
        let sid = start["streamSid"].as_str().unwrap().to_string();
        let mut media = 0;
        while media < 5 {
            if text(ws.next().await.unwrap().unwrap())["event"] == "media" {
                media += 1;
            }
        }
        // 400 ms of agent speech, then a mark.
        let payload = base64_mulaw(3200);
        ws.send(Message::text(
            serde_json::json!({"event":"media","streamSid":sid,"media":{"payload":payload}})
                .to_string(),
        ))
        .await
        .unwrap();
        ws.send(Message::text(
            serde_json::json!({"event":"mark","streamSid":sid,"mark":{"name":"said-hello"}})
                .to_string(),
        ))
        .await
        .unwrap();
        let mut frames_until_echo = 0;
        loop {
            let m = text(ws.next().await.unwrap().unwrap());
            match m["event"].as_str().unwrap() {
                "media" => frames_until_echo += 1,
                "mark" => {
                    assert_eq!(m["mark"]["name"], "said-hello");
                    break;
                }
                other => panic!("unexpected {other}"),
            }
        }
        // The caller hangs up: stop, then close.
        loop {
            match ws.next().await {
                Some(Ok(Message::Text(t))) if t.contains(r#""event":"stop""#) => break,
                Some(Ok(_)) => continue,
                other => panic!("no stop before the end: {other:?}"),
            }
        }
        frames_until_echo
    });
    let adapter = Twilio::new(1, [("scenario".to_string(), "refund".to_string())].into());
    let (cmd, mut events, call) =
        start(CallOptions::new(&url), Box::new(adapter), quiet_mic(8_000));
    while let Some(e) = events.recv().await {
        if matches!(e.kind, CallEventKind::MarkEchoed { .. }) {
            cmd.send(CallerCommand::Hangup).unwrap();
        }
    }
    let outcome = call.await.unwrap().unwrap();
    assert_eq!(outcome.ended, EndReason::CallerHungUp);
    let frames = agent.await.unwrap();
    // 400 ms of audio is 20 frames of call time; a few more may be in flight.
    assert!(
        (20..=25).contains(&frames),
        "mark echoed after {frames} caller frames"
    );
}

fn base64_mulaw(samples: usize) -> String {
    use base64::Engine as _;
    let tone: Vec<f32> = (0..samples).map(|i| (i as f32 * 0.3).sin() * 0.4).collect();
    base64::engine::general_purpose::STANDARD.encode(Encoding::Mulaw.encode(&tone))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_caller_speaks_into_the_call_and_the_noise_never_stops() {
    let (listener, url) = listen().await;
    let agent = tokio::spawn(async move {
        let (stream, _) = listener.accept().await.unwrap();
        let mut ws = tokio_tungstenite::accept_async(stream).await.unwrap();
        let mut heard = Vec::new();
        while let Some(Ok(m)) = ws.next().await {
            if let Message::Binary(b) = m {
                heard.extend(Encoding::Pcm16.decode(&b));
            }
        }
        heard
    });
    let noise = LoadedNoise::load(&NoiseProfile::bundled("street").unwrap(), 16_000).unwrap();
    let mut options = CallOptions::new(&url);
    options.fast = true;
    let (cmd, mut events, call) = start(
        options,
        Box::new(voicesim::transport::vonage::Vonage::new(
            16_000,
            Default::default(),
        )),
        MicTimeline::new(&noise, 4),
    );
    cmd.send(CallerCommand::Say(Clip::new(vec![0.3; 8_000], 8_000)))
        .unwrap();
    let mut spoke = false;
    while let Some(e) = events.recv().await {
        if let CallEventKind::Mic {
            detail: voicesim::noise::MicEvent::SpeechEnded { .. },
        } = e.kind
        {
            spoke = true;
            cmd.send(CallerCommand::Hangup).unwrap();
        }
    }
    let outcome = call.await.unwrap().unwrap();
    assert!(spoke);
    let heard = agent.await.unwrap();
    // The agent got every sample the caller's microphone produced, noise before and after.
    assert_eq!(heard.len(), outcome.caller.len());
    let quantized: Vec<f32> = outcome
        .caller
        .samples
        .iter()
        .map(|&s| voicesim::audio::quantize_i16(s))
        .collect();
    assert_eq!(heard, quantized);
    assert!(
        voicesim::audio::level::rms(&heard[..320]) > 0.0,
        "noise from the first frame"
    );
}

/// How a Twilio call ends when the agent's first and only message is `message`.
async fn twilio_call_to_an_agent_that_sends(message: Message) -> EndReason {
    let (listener, url) = listen().await;
    tokio::spawn(async move {
        let (stream, _) = listener.accept().await.unwrap();
        let mut ws = tokio_tungstenite::accept_async(stream).await.unwrap();
        ws.send(message).await.unwrap();
        while ws.next().await.is_some() {}
    });
    let (_c, _e, call) = start(
        CallOptions::new(&url),
        Box::new(Twilio::new(0, Default::default())),
        quiet_mic(8_000),
    );
    call.await.unwrap().unwrap().ended
}

#[tokio::test]
async fn an_agent_that_is_not_there_or_breaks_protocol_is_reported() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let (_c, _e, call) = start(
        CallOptions::new(format!("ws://127.0.0.1:{port}/")),
        Box::new(RawPcm::new(8_000)),
        quiet_mic(8_000),
    );
    let err = call.await.unwrap().unwrap_err();
    assert!(
        matches!(err, CallError::Connect { .. }) && err.to_string().contains(&port.to_string()),
        "{err}"
    );

    let (_c, _e, call) = start(
        CallOptions::new("http://nope"),
        Box::new(RawPcm::new(8_000)),
        quiet_mic(8_000),
    );
    assert!(matches!(
        call.await.unwrap().unwrap_err(),
        CallError::BadRequest(_) | CallError::Connect { .. }
    ));

    let ended = twilio_call_to_an_agent_that_sends(Message::text(
        r#"{"event":"media","media":{"payload":"%%%"}}"#,
    ))
    .await;
    match ended {
        EndReason::Error { message } => assert!(message.contains("base64"), "{message}"),
        other => panic!("{other:?}"),
    }

    // A binary frame on a protocol of JSON text frames is an error naming the frame.
    let ended =
        twilio_call_to_an_agent_that_sends(Message::binary(vec![0xde, 0xad, 0xbe, 0xef, 1, 2]))
            .await;
    match ended {
        EndReason::Error { message } => assert!(
            message.contains("a binary frame of 6 bytes (starting deadbeef0102)"),
            "{message}"
        ),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn an_agent_that_hangs_up_before_a_word_is_a_fault() {
    let (listener, url) = listen().await;
    tokio::spawn(async move {
        let (stream, _) = listener.accept().await.unwrap();
        let mut ws = tokio_tungstenite::accept_async(stream).await.unwrap();
        ws.close(None).await.unwrap();
    });
    let (_c, mut events, call) = start(
        CallOptions::new(&url),
        Box::new(Twilio::new(0, Default::default())),
        quiet_mic(8_000),
    );
    let outcome = call.await.unwrap().unwrap();
    assert_eq!(outcome.ended, EndReason::AgentClosed);
    let mut log = Vec::new();
    while let Ok(e) = events.try_recv() {
        log.push(e);
    }
    let turns = voicesim::transport::turns::turns(&log);
    assert!(turns.is_empty());
    let faults = voicesim::transport::turns::faults(&outcome.ended, &turns);
    assert_eq!(faults, [voicesim::transport::turns::Fault::HungUpSilent]);
    assert_eq!(
        faults[0].to_string(),
        "the agent hung up without saying anything"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openai_realtime_commits_the_turn_and_ends_it_on_response_done() {
    use voicesim::transport::openai_realtime::OpenAiRealtime;
    let (listener, url) = listen().await;
    let agent = tokio::spawn(async move {
        let (stream, _) = listener.accept().await.unwrap();
        let mut ws = tokio_tungstenite::accept_async(stream).await.unwrap();
        let mut seen = Vec::new();
        while let Some(Ok(Message::Text(t))) = ws.next().await {
            let v: serde_json::Value = serde_json::from_str(&t).unwrap();
            let kind = v["type"].as_str().unwrap().to_string();
            if kind == "input_audio_buffer.append" {
                use base64::Engine as _;
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(v["audio"].as_str().unwrap())
                    .unwrap();
                assert_eq!(bytes.len(), 960, "20 ms of PCM16 at 24 kHz");
            }
            if kind == "response.create" {
                // Answer the way a realtime server does: audio faster than real time, the
                // transcript, then response.done.
                use base64::Engine as _;
                let audio = base64::engine::general_purpose::STANDARD
                    .encode(Encoding::Pcm16.encode(&vec![0.2; 7_200]));
                for msg in [
                    serde_json::json!({"type":"response.output_audio.delta","item_id":"it1","delta":audio}),
                    serde_json::json!({"type":"response.output_audio_transcript.done","transcript":"Sure, one moment."}),
                    serde_json::json!({"type":"response.done","response":{}}),
                ] {
                    ws.send(Message::text(msg.to_string())).await.unwrap();
                }
            }
            if seen.last() != Some(&kind) {
                seen.push(kind);
            }
        }
        seen
    });
    let (cmd, mut events, call) = start(
        CallOptions::new(&url),
        Box::new(OpenAiRealtime::new(Encoding::Pcm16, false)),
        quiet_mic(24_000),
    );
    cmd.send(CallerCommand::Say(Clip::new(vec![0.1; 4_800], 24_000)))
        .unwrap();
    let (mut transcript, mut turn) = (None, None);
    while let Some(e) = events.recv().await {
        match e.kind {
            CallEventKind::AgentTranscript { text } => transcript = Some(text),
            CallEventKind::AgentTurnEnded { spoke_until_ms, .. } => {
                turn = Some((spoke_until_ms, e.at_ms));
                cmd.send(CallerCommand::Hangup).unwrap();
            }
            _ => {}
        }
    }
    call.await.unwrap().unwrap();
    assert_eq!(transcript.as_deref(), Some("Sure, one moment."));
    let (spoke_until, at) = turn.unwrap();
    assert_eq!(
        spoke_until, at,
        "response.done ends the turn when playout ends, no gap"
    );
    let seen = agent.await.unwrap();
    assert_eq!(seen[0], "session.update");
    let commit = seen
        .iter()
        .position(|k| k == "input_audio_buffer.commit")
        .expect("commit");
    assert_eq!(seen[commit + 1], "response.create");
    assert!(seen[1..commit]
        .iter()
        .all(|k| k == "input_audio_buffer.append"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_caller_barges_in_and_the_turn_records_how_fast_the_agent_yielded() {
    let (listener, url) = listen().await;
    tokio::spawn(async move {
        let (stream, _) = listener.accept().await.unwrap();
        let mut ws = tokio_tungstenite::accept_async(stream).await.unwrap();
        let mut frames = 0;
        let mut cleared_at = None;
        while let Some(Ok(m)) = ws.next().await {
            let Message::Binary(b) = m else { continue };
            frames += 1;
            if frames == 10 {
                // Two seconds of agent speech, all at once.
                ws.send(Message::binary(Encoding::Pcm16.encode(&vec![0.2; 16_000])))
                    .await
                    .unwrap();
            }
            // The caller's microphone is silent but for the barge-in: any sound is the caller.
            let loud = Encoding::Pcm16.decode(&b).iter().any(|s| s.abs() > 0.1);
            if loud && cleared_at.is_none() {
                ws.send(Message::text(r#"{"action":"clear"}"#))
                    .await
                    .unwrap();
                cleared_at = Some(frames);
            }
            if cleared_at.is_some_and(|c| frames > c + 80) {
                ws.send(Message::text(r#"{"type":"hangup"}"#))
                    .await
                    .unwrap();
            }
        }
    });
    let (cmd, mut events, call) = start(
        CallOptions::new(&url),
        Box::new(RawPcm::new(8_000)),
        quiet_mic(8_000),
    );
    cmd.send(CallerCommand::BargeIn {
        clip: Clip::new(vec![0.3; 8_000], 8_000),
        after_ms: 500.0,
        turn_started_ms: None,
    })
    .unwrap();
    let mut log = Vec::new();
    while let Some(e) = events.recv().await {
        log.push(e);
    }
    let outcome = call.await.unwrap().unwrap();
    assert_eq!(outcome.ended, EndReason::AgentHungUp);
    let turns = voicesim::transport::turns::turns(&log);
    assert_eq!(turns.len(), 1, "{log:?}");
    let barge = turns[0].barge_in.clone().expect("a barge-in");
    assert_eq!(
        barge.at_ms,
        turns[0].agent_started_ms + 500.0,
        "the caller cut in after 500 ms of agent audio"
    );
    assert!(barge.cleared, "the agent cleared its audio");
    assert!(
        barge.agent_stopped_after_ms > 0.0 && barge.agent_stopped_after_ms <= 200.0,
        "{barge:?}"
    );
    // Only what played before the clear is in the recording.
    let played = outcome.agent.samples.iter().filter(|&&s| s != 0.0).count() as f64 / 8.0;
    assert_eq!(played, turns[0].agent_talk_ms);
    assert!(played < 2000.0);
}
