//! The built-in reference voice agent: the server side of every protocol voicesim speaks, with
//! a real ear (Whisper), a small order-status brain ([`Dialogue`]) and a real mouth (espeak-ng
//! or Piper), streamed back in real time. Fault modes make it misbehave on purpose, so tests
//! can show that voicesim reports each failure clearly.
//!
//! Its clock is the caller's stream: each 20 ms of caller audio received moves it 20 ms and
//! lets 20 ms of reply audio out, as a real agent pacing its output against the call does. A
//! reply's first [`LEAD_MS`] go out at once, as real bots send ahead of real time and let the
//! line buffer it: a busy machine that holds either side back for less than that makes no
//! dropout.
//! Latency injected with `delay_ms` is counted from the end of the caller's speech as the
//! agent's endpointer heard it.

mod dialogue;
pub mod wire;

use crate::audio::{Endpointer, Heard, SnrMeter};
pub use dialogue::{Dialogue, Reply, ORDERS};

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use futures_util::{SinkExt, StreamExt};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message;

use crate::audio::{Clip, Frame};
use crate::speech::{SpeechError, Stt, Tts, Voice};
use crate::transport::Protocol;
use wire::{AgentWire, FromCaller};

/// Ways to make the agent misbehave on purpose.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Faults {
    /// Answer this long after the caller stops speaking (or later, if thinking takes longer).
    pub delay_ms: u64,
    /// Drop the connection, without a closing handshake, after this many replies.
    pub drop_after: Option<u32>,
    /// Never say anything.
    pub silent: bool,
    /// Send a message that breaks the protocol as soon as the call starts.
    pub garbage: bool,
    /// Stream replies at a quarter of real time, so the caller's playout keeps running dry.
    pub slow_drip: bool,
    /// Hear order numbers with their last two digits swapped.
    pub mishear: bool,
    /// Never stop talking: after each reply, another line follows a short pause, until the
    /// caller speaks (as an agent whose VAD takes background babble for speech does).
    pub chatty: bool,
    /// End each call at a moment drawn within its first this many ms (of the caller's stream),
    /// by closing the socket or, on every other draw, by just going away.
    pub close_within_ms: Option<u64>,
    /// Make out no words in an utterance whose SNR, as the agent measures what it receives
    /// (`audio::SnrMeter`), is below this many dB: answer as to words not caught.
    pub deaf_below_snr: Option<f64>,
}

/// How far ahead of real time a reply is sent (all of it on a slow drip is late on purpose).
pub const LEAD_MS: f64 = 300.0;

/// What a chatty agent keeps saying, and the pause before it says it again.
const CHATTER: &str = "And one more thing while I have you.";
const CHATTER_GAP_MS: f64 = 900.0;

/// How the agent runs.
#[derive(Debug, Clone)]
pub struct AgentConfig {
    pub protocol: Protocol,
    /// The wire rate for raw PCM (the other protocols fix their own).
    pub rate: u32,
    pub voice: Voice,
    /// Quiet after the caller's speech before the agent takes its turn.
    pub silence_ms: f64,
    pub faults: Faults,
}

impl AgentConfig {
    pub fn new(protocol: Protocol) -> Self {
        AgentConfig {
            protocol,
            rate: 16_000,
            voice: Voice::default(),
            silence_ms: 500.0,
            faults: Faults::default(),
        }
    }
}

/// One exchange as the agent saw it, on its stream clock (ms of caller audio received).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AgentTurn {
    /// What the agent's STT heard ("" for the greeting).
    pub heard: String,
    /// When the caller's speech ended, as the agent's endpointer placed it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub heard_end_ms: Option<f64>,
    pub said: String,
    /// When the first sample of the reply went out.
    pub replied_at_ms: f64,
}

/// What happened on one call, from the agent's side.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct AgentCallLog {
    pub parameters: BTreeMap<String, String>,
    pub turns: Vec<AgentTurn>,
    pub barge_ins: u32,
    /// Keys the caller pressed (Twilio `dtmf` events), in order.
    pub keys: String,
    /// How the call ended for the agent.
    pub ended: String,
}

#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("websocket: {0}")]
    Socket(#[from] tokio_tungstenite::tungstenite::Error),
    #[error("{0}")]
    Protocol(#[from] crate::transport::ProtocolError),
    #[error(transparent)]
    Speech(#[from] SpeechError),
    /// A bug: working out a reply panicked. The call ends with it rather than go silent.
    #[error("the reference agent failed inside (a bug; please report it): {0}")]
    Panic(crate::guard::Panic),
}

/// The reference agent. Share it (`Arc`) across calls: the speech engines load once.
pub struct ReferenceAgent {
    config: AgentConfig,
    tts: Arc<dyn Tts>,
    stt: Arc<dyn Stt>,
    /// Calls answered so far: seeds each call's random faults, in order.
    calls: AtomicU64,
}

/// What a reply is for: which turn, when the caller's speech ended, when it may go out.
struct Ask {
    generation: u64,
    heard_end_ms: Option<f64>,
    due_ms: f64,
    rate: u32,
}

/// A reply ready to play. `generation` orders the utterances replied to.
struct Prepared {
    ask: Ask,
    heard: String,
    reply: Reply,
    audio: Vec<f32>,
}

/// A reply going out.
struct Speaking {
    turn: AgentTurn,
    hangup: bool,
    left: VecDeque<f32>,
    /// Samples sent so far: the reply plays out until `replied_at_ms` plus their length.
    sent: usize,
}

impl ReferenceAgent {
    pub fn new(config: AgentConfig, tts: Arc<dyn Tts>, stt: Arc<dyn Stt>) -> Self {
        ReferenceAgent {
            config,
            tts,
            stt,
            calls: AtomicU64::new(0),
        }
    }

    pub fn config(&self) -> &AgentConfig {
        &self.config
    }

    /// Answers every call on `listener`, each in its own task, until the task is dropped.
    /// Each finished call's log goes to `logs`.
    pub async fn serve(
        self: Arc<Self>,
        listener: TcpListener,
        logs: mpsc::UnboundedSender<Result<AgentCallLog, AgentError>>,
    ) -> std::io::Result<()> {
        loop {
            let (stream, _) = listener.accept().await?;
            let agent = self.clone();
            let logs = logs.clone();
            tokio::spawn(async move {
                let _ = logs.send(agent.answer(stream).await);
            });
        }
    }

    /// Runs one call on an accepted connection.
    pub async fn answer(&self, stream: TcpStream) -> Result<AgentCallLog, AgentError> {
        let faults = &self.config.faults;
        let _ = stream.set_nodelay(true);
        let socket = tokio_tungstenite::accept_async_with_config(
            stream,
            Some(crate::transport::websocket_config()),
        )
        .await?;
        let (mut tx, mut rx) = socket.split();
        let mut wire = wire::for_protocol(self.config.protocol, self.config.rate);
        for m in wire.opening() {
            tx.send(m).await?;
        }
        let (ready_tx, mut ready_rx) = mpsc::unbounded_channel::<Result<Prepared, AgentError>>();
        let dialogue = Arc::new(Mutex::new(Dialogue::new(faults.mishear)));
        let mut log = AgentCallLog::default();
        let mut ear: Option<Endpointer> = None;
        let mut meter = SnrMeter::default();
        // Utterances sent off to be understood, and the newest one that had words in it.
        let mut generation = 0u64;
        let mut newest = 0u64;
        let mut queue: VecDeque<Prepared> = VecDeque::new();
        let mut speaking: Option<Speaking> = None;
        // Owed reply samples: slow-drip pays out a quarter of what real time would.
        let mut budget = 0.0f64;
        let mut manual_turn: Vec<f32> = Vec::new();
        let mut hangup_at: Option<f64> = None;
        let mut awaiting_mark: Option<String> = None;
        let mut replies = 0u32;
        // Where the last reply ends playing, on the stream clock (sent ahead, it ends later).
        let mut played = 0.0f64;
        let mut fate = ChaCha8Rng::seed_from_u64(self.calls.fetch_add(1, Ordering::Relaxed));
        let close_at = faults.close_within_ms.map(|within| {
            (
                fate.random_range(0..within.max(1)) as f64,
                fate.random::<bool>(),
            )
        });

        let ended = 'call: loop {
            let message = tokio::select! {
                m = rx.next() => m,
                ready = ready_rx.recv() => {
                    match ready {
                        // A reply to newer words supersedes what is still queued; a reply to
                        // older words than one already queued is stale.
                        Some(Ok(p)) if p.ask.generation >= newest => {
                            newest = p.ask.generation;
                            queue.clear();
                            queue.push_back(p);
                        }
                        Some(Err(e)) => {
                            // Said as a server that failed says it (1011), not a reset.
                            let _ = tx.send(Message::Close(Some(CloseFrame {
                                code: CloseCode::Error,
                                reason: "the agent failed to work out a reply".into(),
                            }))).await;
                            return Err(e);
                        }
                        _ => {}
                    }
                    continue;
                }
            };
            let message = match message {
                None | Some(Ok(Message::Close(_))) => break "caller closed".to_string(),
                Some(Err(e)) => return Err(e.into()),
                Some(Ok(m)) => m,
            };
            let events = wire.receive(&message)?;
            let mut out = wire.answers();
            for event in events {
                // Raw PCM has no start message: the first audio starts the call.
                let event = match (&ear, event) {
                    (None, FromCaller::Audio(a)) => {
                        out.extend(self.start(
                            &mut log,
                            &*wire,
                            BTreeMap::new(),
                            &ready_tx,
                            &dialogue,
                        ));
                        ear = Some(Endpointer::new(wire.rate(), self.config.silence_ms));
                        FromCaller::Audio(a)
                    }
                    (_, e) => e,
                };
                match event {
                    FromCaller::Start { parameters } => {
                        if ear.is_none() {
                            out.extend(
                                self.start(&mut log, &*wire, parameters, &ready_tx, &dialogue),
                            );
                            ear = Some(Endpointer::new(wire.rate(), self.config.silence_ms));
                        }
                    }
                    FromCaller::Audio(samples) => {
                        let Some(ep) = ear.as_mut() else { continue };
                        if wire.caller_ends_turns() {
                            manual_turn.extend_from_slice(&samples);
                        }
                        if !ep.is_speaking() {
                            meter.room(&samples, ep);
                        }
                        for heard in ep.push(&samples) {
                            match heard {
                                Heard::Started { at_ms } => {
                                    out.extend(wire.speech_started(at_ms));
                                    if speaking.take().is_some() {
                                        // Barge-in: stop talking. What comes next depends on
                                        // what the caller says; a noise says nothing.
                                        log.barge_ins += 1;
                                        hangup_at = None;
                                        out.extend(wire.clear());
                                    }
                                }
                                Heard::Ended { utterance, at_ms } if !wire.caller_ends_turns() => {
                                    generation += 1;
                                    let ask = self.ask(generation, at_ms, wire.rate());
                                    let deaf = faults.deaf_below_snr.is_some_and(|limit| {
                                        meter.snr_db(&utterance).is_some_and(|snr| snr < limit)
                                    });
                                    if deaf {
                                        let reply = lock(&dialogue).reply("");
                                        self.think(None, Some(reply), ask, &ready_tx, &dialogue);
                                    } else {
                                        self.think(
                                            Some(utterance),
                                            None,
                                            ask,
                                            &ready_tx,
                                            &dialogue,
                                        );
                                    }
                                }
                                Heard::Ended { .. } => {}
                            }
                        }
                        let now = ep.now_ms();
                        // Nobody talks over a caller who is (or a noise that is) still going.
                        let due = speaking.is_none()
                            && !ep.is_speaking()
                            && queue.front().is_some_and(|p| p.ask.due_ms <= now);
                        if let Some(p) = due.then(|| queue.pop_front()).flatten() {
                            if p.ask.heard_end_ms.is_some() {
                                out.extend(wire.heard(&p.heard));
                            }
                            speaking = Some(Speaking {
                                turn: AgentTurn {
                                    heard: p.heard,
                                    heard_end_ms: p.ask.heard_end_ms,
                                    said: p.reply.text,
                                    replied_at_ms: now,
                                },
                                hangup: p.reply.hangup,
                                left: p.audio.into(),
                                sent: 0,
                            });
                            if !faults.slow_drip {
                                budget += LEAD_MS / 1000.0 * wire.rate() as f64;
                            }
                        }
                        budget += samples.len() as f64 * if faults.slow_drip { 0.25 } else { 1.0 };
                        let frame = Frame::samples_per_frame(wire.rate());
                        match speaking.as_mut() {
                            // Whole frames only, so a slow drip arrives as 20 ms chunks with gaps.
                            Some(s) => {
                                while budget >= frame as f64 && !s.left.is_empty() {
                                    let n = frame.min(s.left.len());
                                    let chunk: Vec<f32> = s.left.drain(..n).collect();
                                    out.extend(wire.audio(&chunk));
                                    budget -= n as f64;
                                    s.sent += n;
                                }
                            }
                            None => budget = budget.min(frame as f64),
                        }
                        if let Some(s) = speaking.take_if(|s| s.left.is_empty()) {
                            // Counted from where the reply ends playing, not from its last send.
                            let length_ms = s.sent as f64 * 1000.0 / wire.rate() as f64;
                            played = now.max(s.turn.replied_at_ms + length_ms);
                            out.extend(wire.reply_sent(&s.turn.said));
                            log.turns.push(s.turn);
                            replies += 1;
                            if s.hangup {
                                if wire.echoes_marks() {
                                    awaiting_mark = Some(format!("reply-{replies}"));
                                }
                                hangup_at = Some(played + 300.0);
                            } else if faults.chatty {
                                let more = Reply {
                                    text: CHATTER.into(),
                                    hangup: false,
                                };
                                let ask = Ask {
                                    generation: newest,
                                    heard_end_ms: None,
                                    due_ms: played + CHATTER_GAP_MS,
                                    rate: wire.rate(),
                                };
                                self.think(None, Some(more), ask, &ready_tx, &dialogue);
                            }
                        }
                        if let Some((_, handshake)) = close_at.filter(|(at, _)| now >= *at) {
                            for m in out.drain(..) {
                                tx.send(m).await?;
                            }
                            if handshake {
                                tx.send(Message::Close(None)).await?;
                            }
                            log.ended = format!("closed at {now:.0} ms");
                            return Ok(log);
                        }
                        if faults.drop_after.is_some_and(|n| replies >= n) && now >= played {
                            for m in out.drain(..) {
                                tx.send(m).await?;
                            }
                            // No closing handshake: the connection just goes away.
                            log.ended = format!("dropped after {replies} replies");
                            return Ok(log);
                        }
                        if awaiting_mark.is_none() && hangup_at.is_some_and(|t| now >= t) {
                            out.extend(wire.hangup());
                            for m in out.drain(..) {
                                tx.send(m).await?;
                            }
                            tx.send(Message::Close(None)).await?;
                            break 'call "agent hung up".to_string();
                        }
                    }
                    FromCaller::EndOfTurn => {
                        let now = ear.as_ref().map_or(0.0, |e| e.now_ms());
                        let utterance = Clip::new(std::mem::take(&mut manual_turn), wire.rate());
                        generation += 1;
                        let ask = self.ask(generation, now, wire.rate());
                        self.think(Some(utterance), None, ask, &ready_tx, &dialogue);
                    }
                    FromCaller::MarkPlayed(name) => {
                        if awaiting_mark.as_ref() == Some(&name) {
                            awaiting_mark = None;
                        }
                    }
                    FromCaller::Dtmf(key) => log.keys.push_str(&key),
                    FromCaller::Stop => {
                        for m in out.drain(..) {
                            tx.send(m).await?;
                        }
                        log.ended = "caller hung up".into();
                        return Ok(log);
                    }
                }
            }
            for m in out {
                tx.send(m).await?;
            }
        };
        log.ended = ended;
        Ok(log)
    }

    /// The call has started: greet (unless silent), or break the protocol (garbage).
    fn start(
        &self,
        log: &mut AgentCallLog,
        wire: &dyn AgentWire,
        parameters: BTreeMap<String, String>,
        ready: &mpsc::UnboundedSender<Result<Prepared, AgentError>>,
        dialogue: &Arc<Mutex<Dialogue>>,
    ) -> Vec<Message> {
        log.parameters = parameters;
        if self.config.faults.garbage {
            return vec![wire.garbage()];
        }
        let greeting = lock(dialogue).greeting();
        let ask = Ask {
            generation: 0,
            heard_end_ms: None,
            due_ms: 0.0,
            rate: wire.rate(),
        };
        self.think(None, Some(greeting), ask, ready, dialogue);
        Vec::new()
    }

    /// A reply to speech that ended at `end_ms`, due `delay_ms` later.
    fn ask(&self, generation: u64, end_ms: f64, rate: u32) -> Ask {
        Ask {
            generation,
            heard_end_ms: Some(end_ms),
            due_ms: end_ms + self.config.faults.delay_ms as f64,
            rate,
        }
    }

    /// Prepares a reply off the call's task: transcribes `utterance` and asks the dialogue, or
    /// says `fixed` (the greeting); then synthesizes it.
    fn think(
        &self,
        utterance: Option<Clip>,
        fixed: Option<Reply>,
        ask: Ask,
        ready: &mpsc::UnboundedSender<Result<Prepared, AgentError>>,
        dialogue: &Arc<Mutex<Dialogue>>,
    ) {
        if self.config.faults.silent {
            return;
        }
        let (stt, tts, voice) = (
            self.stt.clone(),
            self.tts.clone(),
            self.config.voice.clone(),
        );
        let (ready, dialogue) = (ready.clone(), dialogue.clone());
        tokio::task::spawn_blocking(move || {
            let result = crate::guard::catch(|| -> Result<Option<Prepared>, SpeechError> {
                let heard = match &utterance {
                    Some(clip) => stt.transcribe(clip)?.text,
                    None => String::new(),
                };
                #[cfg(feature = "test-hooks")]
                if std::env::var("VOICESIM_TEST_AGENT_PANIC")
                    .is_ok_and(|w| crate::speech::wer::normalize(&heard).contains(&w))
                {
                    #[allow(
                        clippy::panic,
                        reason = "the deliberate panic the agent's guard is tested with"
                    )]
                    {
                        panic!("deliberate panic on hearing {heard:?} (VOICESIM_TEST_AGENT_PANIC)");
                    }
                }
                let reply = match fixed {
                    Some(reply) => reply,
                    // A noise, not words: no answer.
                    None if heard.trim().is_empty() => return Ok(None),
                    None => lock(&dialogue).reply(&heard),
                };
                let audio = say(&*tts, &reply.text, &voice, ask.rate)?;
                Ok(Some(Prepared {
                    ask,
                    heard,
                    reply,
                    audio,
                }))
            });
            match result {
                Ok(Ok(Some(p))) => drop(ready.send(Ok(p))),
                Ok(Ok(None)) => {}
                Ok(Err(e)) => drop(ready.send(Err(e.into()))),
                Err(panic) => drop(ready.send(Err(AgentError::Panic(panic)))),
            }
        });
    }
}

/// Synthesized speech at the wire rate, without the engine's leading and trailing silence.
fn say(tts: &dyn Tts, text: &str, voice: &Voice, rate: u32) -> Result<Vec<f32>, SpeechError> {
    Ok(tts
        .synthesize(text, voice)?
        .resample(rate)?
        .trim_silence()
        .samples)
}

fn lock(dialogue: &Mutex<Dialogue>) -> std::sync::MutexGuard<'_, Dialogue> {
    dialogue.lock().unwrap_or_else(|e| e.into_inner())
}
