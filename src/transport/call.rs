//! One call in real time: connect, stream the microphone every 20 ms for the whole call, play
//! the agent out through the [`Ear`], echo marks, record both sides on one timeline.
//!
//! The call is driven from outside through two channels: [`CallerCommand`]s in (say this,
//! stop, hang up) and [`CallEvent`]s out, each stamped with the call time. Time is the number
//! of frames sent times 20 ms; paced, that is the monotonic clock; with `fast`, frames go as
//! fast as the agent takes them and the timeline stays consistent.

use std::time::Duration;

use futures_util::{FutureExt, SinkExt, StreamExt};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::{HeaderName, HeaderValue};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::Message;

use super::ear::{Ear, EarEvent};
use super::event::{CallEvent, CallEventKind, EndReason};
use super::pacer::{Metronome, Pacer};
use super::recorder::{Deck, Recording};
use super::slip::Slip;
use super::stalls::StallWatch;
use super::{Adapter, AgentEvent};
use crate::audio::{Clip, Envelope, Taped, FRAME_MS};
use crate::noise::{MicEvent, MicTimeline};

/// How to reach the agent and how to run the call.
#[derive(Debug, Clone)]
pub struct CallOptions {
    /// `ws://` or `wss://`.
    pub url: String,
    /// Extra HTTP headers for the websocket handshake (auth tokens and the like).
    pub headers: Vec<(String, String)>,
    pub connect_timeout: Duration,
    /// Send frames without waiting 20 ms between them, for agents that accept that.
    pub fast: bool,
    /// The call ends by itself after this long (call time).
    pub max_duration: Duration,
    /// Quiet after the agent's playout before its turn counts as over.
    pub end_gap_ms: f64,
    /// The call ends with [`EndReason::NoAnswer`] when the agent has said nothing this long
    /// (wall-clock time) since the call started or the caller last stopped speaking.
    pub answer_timeout: Duration,
    /// Receives what the caller hears, 20 ms at a time as it plays (for speakers, live).
    pub monitor: Option<mpsc::UnboundedSender<Clip>>,
    /// Set from outside to hang up (a person on a live call pressing Enter, a load run
    /// stopping).
    pub hang_up: Option<std::sync::Arc<std::sync::atomic::AtomicBool>>,
    /// Receives every event as it happens but those that carry the agent's audio (the ends of
    /// its turns and its pauses): a load run's live figures.
    pub tap: Option<mpsc::UnboundedSender<CallEvent>>,
    /// How far into the 20 ms frame period this call's frames go out (see [`stagger`]).
    pub phase: Duration,
    /// Write the recording into this WAV and the event log beside it (`events.jsonl`) as the
    /// call runs, through the deck's thread, instead of holding them until it ends: memory
    /// stays flat however long the call.
    pub tape: Option<(Deck, std::path::PathBuf)>,
    /// The run's watch on the runtime's stalls; the call reads the worst of its span.
    pub watch: Option<StallWatch>,
    /// The run's shared frame clocks (many calls); alone, a call keeps its own time.
    pub metronome: Option<Metronome>,
}

impl CallOptions {
    pub fn new(url: impl Into<String>) -> Self {
        CallOptions {
            url: url.into(),
            headers: Vec::new(),
            connect_timeout: Duration::from_secs(10),
            fast: false,
            max_duration: Duration::from_secs(300),
            end_gap_ms: 700.0,
            answer_timeout: Duration::from_secs(15),
            monitor: None,
            hang_up: None,
            tap: None,
            phase: Duration::ZERO,
            tape: None,
            watch: None,
            metronome: None,
        }
    }
}

/// The frame phase for the `k`th of many calls started together: calls started in the same
/// millisecond would otherwise all send on the same timer tick, and the last of a thousand
/// such sends goes out a whole burst's work late. Successive multiples of the golden ratio
/// spread any number of calls evenly over the period.
pub fn stagger(k: u64) -> Duration {
    const GOLDEN: f64 = 0.618_033_988_749_895;
    let period = f64::from(FRAME_MS) / 1000.0;
    Duration::from_secs_f64((k as f64 * GOLDEN).fract() * period)
}

/// How often a playing agent turn is handed to the caller so far ([`CallEventKind::AgentSpeaking`]).
pub const PARTIAL_MS: f64 = 1_500.0;

/// What the caller side asks of the call.
#[derive(Debug, Clone)]
pub enum CallerCommand {
    /// Speak this (queued after anything still being said).
    Say(Clip),
    /// Start speaking once `after_ms` of the agent's current (or next) turn has played: a
    /// barge-in, to test how the agent handles being interrupted. The clip is ready before the
    /// moment, so the voice starts on the frame it is due, whatever the machine is doing; if
    /// the turn ends first, the caller says it then.
    BargeIn {
        clip: Clip,
        after_ms: f64,
        /// The agent turn it cuts into, by the time it started; if that turn is already
        /// over when the command arrives, the caller speaks at once. `None`: the current
        /// turn, or the next.
        turn_started_ms: Option<f64>,
    },
    /// The answer to an agent turn, said at its moment.
    Answer(Answer),
    /// Press a key (0-9, *, #, A-D): a Twilio `dtmf` event, or the tones in-band elsewhere.
    Dtmf(char),
    /// Stop talking mid-sentence.
    StopSpeaking,
    /// Send the protocol's closing messages and hang up.
    Hangup,
}

/// A finished call: how it ended and what both sides sounded like.
#[derive(Debug, Clone)]
pub struct CallOutcome {
    pub ended: EndReason,
    pub duration_ms: f64,
    /// What the caller's microphone sent (empty when taped).
    pub caller: Clip,
    /// What the caller heard of the agent, on the same timeline (empty when taped).
    pub agent: Clip,
    /// The WAV the call was recorded into as it ran, with `events.jsonl` beside it.
    pub tape: Option<Taped>,
    /// How late voicesim sent its frames (nothing in fast mode).
    pub slip: Slip,
    /// The longest the whole runtime stalled during the call, ms (with a watch).
    pub stall_ms: Option<f64>,
}

impl CallOutcome {
    /// Stereo WAV: caller left, agent right.
    pub fn write_wav(
        &self,
        path: impl AsRef<std::path::Path>,
    ) -> Result<(), crate::audio::AudioError> {
        let path = path.as_ref();
        match &self.tape {
            Some(tape) if tape.path == path => Ok(()),
            Some(tape) => std::fs::copy(&tape.path, path).map(drop).map_err(|e| {
                crate::audio::AudioError::Write {
                    path: path.into(),
                    reason: e.to_string(),
                }
            }),
            None => crate::audio::write_wav(path, &[&self.caller, &self.agent]),
        }
    }

    /// The envelope of each channel, caller then agent, as taped or from memory.
    pub fn envelopes(&self) -> (Envelope, Envelope) {
        match &self.tape {
            Some(tape) => (tape.caller.clone(), tape.agent.clone()),
            None => (Envelope::of(&self.caller), Envelope::of(&self.agent)),
        }
    }

    /// What the caller heard of the agent between two moments.
    pub fn agent_between(
        &self,
        from_ms: f64,
        to_ms: f64,
    ) -> Result<Clip, crate::audio::AudioError> {
        match &self.tape {
            Some(tape) => crate::audio::tape::channel_between(&tape.path, 1, from_ms, to_ms),
            None => Ok(self.agent.between(from_ms, to_ms)),
        }
    }
}

/// Where a call's audio goes while it runs.
enum Recorder {
    Memory(Vec<f32>),
    /// The recording, and the caller frame waiting for the agent audio that plays beside it.
    Tape(Recording, Vec<f32>),
}

impl Recorder {
    /// The caller frame that starts at `at_ms`; the agent's audio up to then is final.
    fn frame(&mut self, caller: &[f32], ear: &mut Ear, at_ms: f64) {
        match self {
            Recorder::Memory(samples) => samples.extend_from_slice(caller),
            Recorder::Tape(recording, waiting) => {
                recording.append(waiting, &ear.tape(at_ms));
                waiting.clear();
                waiting.extend_from_slice(caller);
            }
        }
    }

    /// Both channels up to `duration_ms`, in memory, or the finished tape's path.
    async fn finish(
        self,
        ear: &mut Ear,
        rate: u32,
        duration_ms: f64,
    ) -> Result<(Clip, Clip, Option<Taped>), crate::audio::AudioError> {
        let empty = || Clip::new(Vec::new(), rate);
        match self {
            Recorder::Memory(caller) => {
                Ok((Clip::new(caller, rate), ear.recording(duration_ms), None))
            }
            Recorder::Tape(mut recording, waiting) => {
                recording.append(&waiting, &ear.tape(duration_ms));
                Ok((empty(), empty(), Some(recording.finish().await?)))
            }
        }
    }
}

/// Writes a call's events as JSON lines, one event a line, in the order they happened.
pub fn write_event_log(
    path: impl AsRef<std::path::Path>,
    events: &[CallEvent],
) -> std::io::Result<()> {
    use std::io::Write;
    let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
    for event in events {
        serde_json::to_writer(&mut out, event)?;
        out.write_all(b"\n")?;
    }
    out.flush()
}

/// The call could not start.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    #[error("cannot connect to {url}: {message}")]
    Connect { url: String, message: String },
    #[error("cannot connect to {url}: no answer within {seconds} s")]
    Timeout { url: String, seconds: u64 },
    #[error("{0}: not a usable websocket URL or header; use ws://host:port/path or wss://…")]
    BadRequest(String),
}

/// Runs one call until someone hangs up, the agent closes, or time runs out. Dropping the
/// command sender hangs up too.
pub async fn run(
    options: CallOptions,
    mut adapter: Box<dyn Adapter>,
    mut mic: MicTimeline,
    mut commands: mpsc::UnboundedReceiver<CallerCommand>,
    events: mpsc::UnboundedSender<CallEvent>,
) -> Result<CallOutcome, CallError> {
    let mut request = options
        .url
        .as_str()
        .into_client_request()
        .map_err(|e| CallError::BadRequest(format!("{}: {e}", options.url)))?;
    for (name, value) in &options.headers {
        let name = HeaderName::try_from(name.as_str())
            .map_err(|e| CallError::BadRequest(format!("header {name}: {e}")))?;
        let value = HeaderValue::try_from(value.as_str())
            .map_err(|e| CallError::BadRequest(format!("header {name}: {e}")))?;
        request.headers_mut().insert(name, value);
    }
    // No Nagle: a 20 ms frame must leave when it is written, not wait for the last one's ack.
    let connect = tokio_tungstenite::connect_async_with_config(
        request,
        Some(super::websocket_config()),
        true,
    );
    let (socket, _) = tokio::time::timeout(options.connect_timeout, connect)
        .await
        .map_err(|_| CallError::Timeout {
            url: options.url.clone(),
            seconds: options.connect_timeout.as_secs(),
        })?
        .map_err(|e| CallError::Connect {
            url: options.url.clone(),
            message: e.to_string(),
        })?;
    let (mut tx, mut rx) = socket.split();

    let rate = adapter.rate();
    let mut ear = Ear::new(rate, options.end_gap_ms);
    let (mut recorder, log) = match &options.tape {
        Some((deck, wav)) => {
            let recording = deck.record(wav.clone(), rate);
            let log = recording.log();
            (Recorder::Tape(recording, Vec::new()), Some(log))
        }
        None => (Recorder::Memory(Vec::new()), None),
    };
    let mut frames: u64 = 0;
    let now = |frames: u64| (frames * FRAME_MS as u64) as f64;
    let tap = options.tap.clone();
    let emit = |at_ms: f64, kind: CallEventKind| {
        let event = CallEvent { at_ms, kind };
        // The turn so far, handed to the caller as it plays, is not something that happened.
        let progress = matches!(event.kind, CallEventKind::AgentSpeaking { .. });
        if let Some(log) = log.as_ref().filter(|_| !progress) {
            log.write(&event);
        }
        if let Some(tap) = tap.as_ref() {
            if !matches!(
                event.kind,
                CallEventKind::AgentTurnEnded { .. }
                    | CallEventKind::AgentQuiet { .. }
                    | CallEventKind::AgentSpeaking { .. }
            ) {
                let _ = tap.send(event.clone());
            }
        }
        let _ = events.send(event);
    };
    emit(0.0, CallEventKind::Connected);

    let began = Instant::now();
    if let Some(watch) = &options.watch {
        watch.begin();
    }
    let (mut ticker, first_frame) = Pacer::new(
        began,
        options.phase,
        options.metronome.as_ref().filter(|_| !options.fast),
    );
    let mut slip = Slip::default();
    let max_frames = options.max_duration.as_millis() as u64 / FRAME_MS as u64;

    let mut turn = TurnState {
        waiting_since: Some(std::time::Instant::now()),
        ..TurnState::default()
    };
    let mut outgoing = adapter.opening();
    let ended = 'call: loop {
        for message in outgoing.drain(..) {
            if let Err(e) = tx.send(message).await {
                // An agent that closed the socket is often found out by a send that fails
                // before its close frame has been read: read it now.
                let closed = matches!(
                    rx.next().now_or_never(),
                    Some(None | Some(Ok(Message::Close(_))))
                );
                break 'call if closed {
                    EndReason::AgentClosed
                } else {
                    EndReason::Error {
                        message: format!("sending to the agent: {e}"),
                    }
                };
            }
        }
        if frames >= max_frames {
            break EndReason::TimeLimit;
        }
        if options
            .hang_up
            .as_ref()
            .is_some_and(|h| h.load(std::sync::atomic::Ordering::Relaxed))
        {
            break EndReason::CallerHungUp;
        }
        if let Some(since) = turn.waiting_since.filter(|_| !mic.is_speaking()) {
            if since.elapsed() >= options.answer_timeout {
                break EndReason::NoAnswer {
                    waited_ms: since.elapsed().as_millis() as f64,
                };
            }
        }
        tokio::select! {
            biased;
            command = commands.recv() => match command {
                Some(CallerCommand::Say(clip)) => {
                    if let Err(e) = mic.say(clip) {
                        break EndReason::Error { message: e.to_string() };
                    }
                }
                Some(CallerCommand::BargeIn { clip, after_ms, turn_started_ms }) => {
                    let over = turn_started_ms.is_some_and(|t| turn.agent_started_ms != Some(t));
                    if over {
                        if let Err(e) = mic.say(clip) {
                            break EndReason::Error { message: e.to_string() };
                        }
                    } else {
                        turn.barge = Some(Barge {
                            clip,
                            after_ms,
                            asked_ms: now(frames),
                        });
                    }
                }
                Some(CallerCommand::Answer(answer)) => {
                    // One answer waits at a time. One worked out ahead gives way (the caller has
                    // gone back on it); one to a turn that ended is said now.
                    let waiting = turn.answer.replace(answer);
                    if let Some(waiting) = waiting.filter(|w| w.unless_heard_after.is_none()) {
                        if let Err(e) = mic.say(waiting.clip) {
                            break EndReason::Error { message: e.to_string() };
                        }
                        emit(now(frames), CallEventKind::CallerAnswered { due_ms: waiting.at_ms });
                    }
                }
                Some(CallerCommand::StopSpeaking) => mic.stop_speaking(),
                Some(CallerCommand::Dtmf(digit)) => match adapter.dtmf(digit) {
                    Some(messages) => {
                        outgoing.extend(messages);
                        emit(now(frames), CallEventKind::KeyPressed { digit });
                        // The caller's turn is over: from now on the agent owes an answer.
                        turn.waiting_since = Some(std::time::Instant::now());
                    }
                    None => match crate::audio::dtmf_tone(digit, rate).map(|tone| mic.say(tone)) {
                        Some(Ok(())) => {}
                        Some(Err(e)) => break EndReason::Error { message: e.to_string() },
                        None => break EndReason::Error { message: format!("{digit:?} is not a DTMF key; use 0-9, *, #, A-D") },
                    },
                },
                Some(CallerCommand::Hangup) | None => break EndReason::CallerHungUp,
            },
            incoming = rx.next() => match incoming {
                Some(Ok(Message::Close(Some(frame)))) if closed_failing(frame.code) => break EndReason::Error {
                    message: format!("the agent closed the call as failed ({}: {})", u16::from(frame.code), frame.reason),
                },
                None | Some(Ok(Message::Close(_))) => break EndReason::AgentClosed,
                Some(Err(e)) => break EndReason::Error { message: format!("websocket: {e}") },
                Some(Ok(message)) => {
                    let at = now(frames);
                    match adapter.receive(&message) {
                        Err(e) => break EndReason::Error { message: e.to_string() },
                        Ok(agent_events) => {
                            for event in agent_events {
                                match event {
                                    AgentEvent::Audio(samples) => ear.hear(at, &samples),
                                    AgentEvent::Mark(name) => ear.mark(at, &name),
                                    AgentEvent::Clear => {
                                        ear.clear(at);
                                        outgoing.extend(adapter.cleared());
                                    }
                                    AgentEvent::Done => ear.agent_done(),
                                    AgentEvent::Hangup => break 'call EndReason::AgentHungUp,
                                    AgentEvent::Transcript(text) => emit(at, CallEventKind::AgentTranscript { text }),
                                    AgentEvent::Heard(text) => emit(at, CallEventKind::AgentHeard { text }),
                                    AgentEvent::Error(message) => emit(at, CallEventKind::AgentError { message }),
                                }
                            }
                        }
                    }
                }
            },
            _ = next_tick(&mut ticker, options.fast) => {
                #[cfg(feature = "test-hooks")]
                stall_for_test(frames);
                if !options.fast {
                    let due = first_frame + Duration::from_millis(frames * FRAME_MS as u64);
                    slip.add(Instant::now().saturating_duration_since(due).as_secs_f64() * 1000.0);
                }
                outgoing = match send_frame(&mut *adapter, &mut mic, &mut ear, &mut turn, &mut recorder, &mut frames, &emit) {
                    Ok(messages) => messages,
                    Err(e) => break EndReason::Error { message: e.to_string() },
                };
                if let Some(monitor) = &options.monitor {
                    let to = now(frames);
                    let _ = monitor.send(ear.played(to - FRAME_MS as f64, to));
                }
            }
        }
    };

    for message in adapter.closing() {
        let _ = tx.send(message).await;
    }
    let _ = tx.send(Message::Close(None)).await;
    let duration_ms = now(frames);
    turn.over = true;
    for event in ear.finish(duration_ms) {
        // The call is over: nothing more is said, so this cannot fail.
        let _ = forward_ear(event, &mut *adapter, &ear, &mut mic, &mut turn, &emit);
    }
    let (recorded, ended) = match recorder.finish(&mut ear, rate, duration_ms).await {
        Ok(recorded) => (recorded, ended),
        Err(e) => {
            let empty = Clip::new(Vec::new(), rate);
            (
                (empty.clone(), empty, None),
                EndReason::Error {
                    message: e.to_string(),
                },
            )
        }
    };
    emit(
        duration_ms,
        CallEventKind::Ended {
            reason: ended.clone(),
        },
    );
    if let Some(log) = log {
        log.close().await;
    }
    let (caller, agent, tape) = recorded;
    Ok(CallOutcome {
        ended,
        duration_ms,
        caller,
        agent,
        tape,
        slip,
        stall_ms: options
            .watch
            .as_ref()
            .and_then(|w| w.worst_between(began, Instant::now())),
    })
}

/// `VOICESIM_TEST_STALL_MS`: blocks the runtime that long at the call's second second, as a
/// machine too busy for voicesim would.
#[cfg(feature = "test-hooks")]
fn stall_for_test(frames: u64) {
    if frames == 50 {
        if let Some(ms) = std::env::var("VOICESIM_TEST_STALL_MS")
            .ok()
            .and_then(|v| v.parse().ok())
        {
            std::thread::sleep(Duration::from_millis(ms));
        }
    }
}

/// The next frame's moment: the pacer's tick, or at once in fast mode.
async fn next_tick(ticker: &mut Pacer, fast: bool) {
    if !fast {
        ticker.tick().await;
    }
}

/// Where the call stands between frames.
#[derive(Default)]
struct TurnState {
    /// A barge-in waiting for its moment.
    barge: Option<Barge>,
    /// When the agent's current turn started playing.
    agent_started_ms: Option<f64>,
    /// Since when the caller has been waiting for the agent to say something.
    waiting_since: Option<std::time::Instant>,
    /// The call has ended; what the ear reports now was cut off.
    over: bool,
    /// The caller's answer, waiting for its moment.
    answer: Option<Answer>,
    /// When the turn playing was last handed to the caller so far.
    partial_at_ms: f64,
}

/// Whether a close code says the server failed (RFC 6455's error codes), not that it is done.
fn closed_failing(code: CloseCode) -> bool {
    matches!(
        code,
        CloseCode::Protocol
            | CloseCode::Unsupported
            | CloseCode::Invalid
            | CloseCode::Policy
            | CloseCode::Size
            | CloseCode::Extension
            | CloseCode::Error
    )
}

/// A cut-in waiting for its moment: `after_ms` into the agent's turn, asked for at
/// `asked_ms` of call time.
struct Barge {
    clip: Clip,
    after_ms: f64,
    asked_ms: f64,
}

/// The answer to an agent turn, said at `at_ms` of call time (at once if that has passed):
/// the caller's reaction time held to its target. With `unless_heard_after`, it was prepared
/// while the agent's playout was due to end there: if more agent audio comes before the
/// moment, the answer is withdrawn ([`CallEventKind::CallerWithdrew`]).
#[derive(Debug, Clone)]
pub struct Answer {
    pub clip: Clip,
    pub at_ms: f64,
    pub unless_heard_after: Option<f64>,
}

/// One tick: the next microphone frame out, the ear's clock forward; returns what to send.
fn send_frame(
    adapter: &mut dyn Adapter,
    mic: &mut MicTimeline,
    ear: &mut Ear,
    turn: &mut TurnState,
    recorder: &mut Recorder,
    frames: &mut u64,
    emit: &impl Fn(f64, CallEventKind),
) -> Result<Vec<Message>, crate::audio::AudioError> {
    let at_ms = (*frames * FRAME_MS as u64) as f64;
    let mut out = Vec::new();
    // Before the ear's events: a withdrawn answer is told before the turn it gave way to.
    if let Some(answer) = turn.answer.take() {
        let spoke_on = answer
            .unless_heard_after
            .is_some_and(|until| ear.playout_end_ms() > until + 1.0);
        if spoke_on {
            emit(at_ms, CallEventKind::CallerWithdrew);
        } else if at_ms + 0.5 * FRAME_MS as f64 >= answer.at_ms {
            mic.say(answer.clip)?;
            emit(
                at_ms,
                CallEventKind::CallerAnswered {
                    due_ms: answer.at_ms,
                },
            );
        } else {
            turn.answer = Some(answer);
        }
    }
    for event in ear.advance(at_ms) {
        out.extend(forward_ear(event, adapter, ear, mic, turn, emit)?);
    }
    let due_ms = turn
        .agent_started_ms
        .zip(turn.barge.as_ref())
        .map(|(start, barge)| start + barge.after_ms)
        .filter(|due| at_ms >= *due);
    if let Some(due_ms) = due_ms.filter(|_| ear.is_playing(at_ms)) {
        if let Some(barge) = turn.barge.take() {
            mic.say(barge.clip)?;
            emit(
                at_ms,
                CallEventKind::CallerCutIn {
                    due_ms,
                    asked_ms: barge.asked_ms,
                },
            );
        }
    }
    if let Some(started) = turn.agent_started_ms {
        if ear.is_playing(at_ms) && at_ms - turn.partial_at_ms.max(started) >= PARTIAL_MS {
            turn.partial_at_ms = at_ms;
            let audio = ear.played(started, at_ms);
            emit(at_ms, CallEventKind::AgentSpeaking { audio });
        }
    }
    let frame = mic.next_frame();
    out.extend(adapter.frame(&frame, at_ms as u64));
    recorder.frame(&frame.samples, ear, at_ms);
    *frames += 1;
    for detail in mic.take_events() {
        if matches!(detail, MicEvent::SpeechEnded { .. }) {
            out.extend(adapter.caller_stopped());
            turn.waiting_since = Some(std::time::Instant::now());
        }
        emit(at_ms, CallEventKind::Mic { detail });
    }
    Ok(out)
}

/// Reports an ear event; returns the messages it calls for (mark echoes).
fn forward_ear(
    event: EarEvent,
    adapter: &mut dyn Adapter,
    ear: &Ear,
    mic: &mut MicTimeline,
    turn: &mut TurnState,
    emit: &impl Fn(f64, CallEventKind),
) -> Result<Vec<Message>, crate::audio::AudioError> {
    match event {
        EarEvent::AgentStarted { at_ms } => {
            turn.agent_started_ms = Some(at_ms);
            turn.waiting_since = None;
            emit(at_ms, CallEventKind::AgentStarted)
        }
        EarEvent::TurnEnded {
            spoke_until_ms,
            at_ms,
        } => {
            let started = turn.agent_started_ms.take().unwrap_or(spoke_until_ms);
            // The agent stopped before the moment to cut in came: the caller says it now.
            if let Some(barge) = turn.barge.take().filter(|_| !turn.over) {
                mic.say(barge.clip)?;
            }
            let audio = ear.played(started, spoke_until_ms);
            emit(
                at_ms,
                CallEventKind::AgentTurnEnded {
                    spoke_until_ms,
                    cut_off: turn.over,
                    audio,
                },
            )
        }
        EarEvent::Quiet {
            spoke_until_ms,
            at_ms,
        } => {
            let started = turn.agent_started_ms.unwrap_or(spoke_until_ms);
            let audio = ear.played(started, spoke_until_ms);
            emit(
                at_ms,
                CallEventKind::AgentQuiet {
                    spoke_until_ms,
                    audio,
                },
            )
        }
        EarEvent::Underrun { at_ms, gap_ms } => {
            emit(at_ms, CallEventKind::AgentUnderrun { gap_ms })
        }
        EarEvent::Cleared { at_ms, dropped_ms } => {
            emit(at_ms, CallEventKind::AgentCleared { dropped_ms })
        }
        EarEvent::MarkPlayed { name, at_ms } => {
            let messages = adapter.mark_played(&name);
            emit(at_ms, CallEventKind::MarkEchoed { name });
            return Ok(messages);
        }
    }
    Ok(Vec::new())
}
