//! One simulated call, end to end: a [`Caller`] decides what to say, a [`Tts`] says it into
//! the noisy microphone, the call streams it to the agent in real time, each agent turn the
//! caller hears is transcribed and handed back to the caller for its next line.

pub mod run;
mod script;
mod steps;

pub use script::{Live, Script};
pub use steps::StepCaller;

use std::sync::Arc;

use tokio::sync::mpsc;

use crate::audio::Clip;
use crate::guard::{self, Panic};
use crate::noise::MicTimeline;
use crate::record::{CallRecord, Line, Speaker};
use crate::speech::{SpeechError, Stt, Tts, Voice};
use crate::transport::call::{
    self, CallError, CallEvent, CallEventKind, CallOptions, CallerCommand,
};
use crate::transport::turns;
use crate::transport::Adapter;

/// Something the caller says: text to synthesize, or a recording to play.
#[derive(Debug, Clone, PartialEq)]
pub enum Utterance {
    Text(String),
    Audio {
        clip: Clip,
        text: String,
    },
    /// Keys pressed on the phone's keypad (0-9, *, #, A-D).
    Keys(String),
}

impl Utterance {
    /// What was said, for the transcript (a recording carries its own reference text).
    pub fn text(&self) -> &str {
        match self {
            Utterance::Text(t) => t,
            Utterance::Audio { text, .. } => text,
            Utterance::Keys(keys) => keys,
        }
    }
}

/// What the caller does after an agent turn.
#[derive(Debug, Clone)]
pub enum Reply {
    Say(Utterance),
    /// Say nothing and wait for the agent: what the caller meant to say it already said,
    /// cutting into the turn.
    Listen,
    HangUp,
}

impl Reply {
    /// What is said, if anything.
    pub fn utterance(&self) -> Option<&Utterance> {
        match self {
            Reply::Say(u) => Some(u),
            Reply::Listen | Reply::HangUp => None,
        }
    }
}

/// The simulated caller's mind.
pub trait Caller: Send {
    /// What to do having just heard the agent say `heard` (all of its turn; `None` before the
    /// agent has said anything, for a caller who speaks first).
    fn next(&mut self, heard: Option<&str>) -> Result<Reply, SimError>;
    /// The call ended while the agent said `heard`: judge it, there is nothing to answer.
    fn last_words(&mut self, _heard: &str) -> Result<(), SimError> {
        Ok(())
    }
    /// Called as each agent turn starts: to cut into it, how far into it (ms) and what to say.
    /// The line is decided now, before the moment, so the voice lands on time whatever the
    /// machine's load; the turn is still judged, whole, when it ends.
    fn cut_in(&mut self) -> Result<Option<(f64, Utterance)>, SimError> {
        Ok(None)
    }
    /// Whether the caller speaks before the agent does.
    fn speaks_first(&self) -> bool {
        false
    }
    /// Whether it needs the agent's words to go on. A caller that does not (a load run's
    /// script) answers the moment a turn ends, and the call's words are transcribed afterwards.
    fn listens(&self) -> bool {
        true
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error(transparent)]
    Connect(#[from] CallError),
    #[error(transparent)]
    Speech(#[from] SpeechError),
    #[error("{0}")]
    Caller(String),
    /// A bug: something inside the call panicked.
    #[error("voicesim failed inside the call (a bug; please report it): {0}")]
    Panic(Panic),
    /// The call was made, then the caller's side failed: why, and the call up to that moment.
    #[error("{error}")]
    Broke {
        error: Box<SimError>,
        record: Box<CallRecord>,
    },
}

impl From<Panic> for SimError {
    fn from(panic: Panic) -> Self {
        SimError::Panic(panic)
    }
}

/// The mouth and ears of the simulated caller.
#[derive(Clone)]
pub struct Senses {
    pub tts: Arc<dyn Tts>,
    pub voice: Voice,
    pub stt: Arc<dyn Stt>,
}

/// Runs one call to its end. `lines` receives each transcript line as it happens (for a live
/// console); it may be dropped.
pub async fn converse(
    options: CallOptions,
    adapter: Box<dyn Adapter>,
    mic: MicTimeline,
    caller: &mut dyn Caller,
    senses: &Senses,
    lines: Option<mpsc::UnboundedSender<Line>>,
) -> Result<CallRecord, SimError> {
    let (cmd_tx, cmd_rx) = mpsc::unbounded_channel();
    let (ev_tx, mut ev_rx) = mpsc::unbounded_channel();
    let call = tokio::spawn(guard::catch_async(call::run(
        options, adapter, mic, cmd_rx, ev_tx,
    )));
    let mut side = CallerSide {
        commands: cmd_tx,
        lines,
        transcript: Vec::new(),
        failure: None,
        hung_up: false,
    };
    let mut events = Vec::new();
    if caller.speaks_first() {
        let first = next_line(caller, None, senses).await;
        side.answer(first, 0.0);
    }
    // Agent lines are placed where their turn started to play, so a report seeks to them.
    let mut turn_started_ms = 0.0;
    while let Some(event) = ev_rx.recv().await {
        let at_ms = event.at_ms;
        if matches!(event.kind, CallEventKind::AgentStarted) {
            turn_started_ms = at_ms;
        }
        let mut event = event;
        let heard_audio = match &mut event.kind {
            CallEventKind::AgentStarted if !side.hung_up => {
                let cut = prepare_cut_in(caller, senses).await;
                side.cut_in(cut, at_ms);
                None
            }
            // The turn's audio is heard once, here; the record keeps the event without it.
            CallEventKind::AgentTurnEnded { audio, cut_off, .. } => Some((
                std::mem::replace(audio, Clip::new(Vec::new(), audio.rate)),
                *cut_off,
            )),
            _ => None,
        };
        events.push(event);
        let Some((audio, cut_off)) = heard_audio else {
            continue;
        };
        if !caller.listens() {
            if !side.hung_up && !cut_off {
                let next = next_line(caller, None, senses).await;
                side.answer(next, at_ms);
            }
            continue;
        }
        let heard = match transcribe(senses, audio).await {
            Ok(heard) => heard,
            Err(e) => {
                side.answer(Err(e), at_ms);
                continue;
            }
        };
        side.record(line(Speaker::Agent, &heard, turn_started_ms));
        if side.hung_up {
            continue;
        }
        let next = if cut_off {
            // The call ended with this turn: judge it, nobody to answer.
            think(|| caller.last_words(&heard)).map(|()| Spoken::HangUp)
        } else {
            next_line(caller, Some(&heard), senses).await
        };
        side.answer(next, at_ms);
    }
    let outcome = call
        .await
        .map_err(|e| SimError::Caller(format!("the call task stopped: {e}")))???;
    let turns = turns::turns(&events);
    place_caller_lines(&mut side.transcript, &events);
    let record = CallRecord {
        faults: turns::faults(&outcome.ended, &turns),
        ended: outcome.ended.clone(),
        duration_ms: outcome.duration_ms,
        transcript: side.transcript,
        turns,
        events,
        outcome,
    };
    match side.failure {
        None => Ok(record),
        Some(error) => Err(SimError::Broke {
            error: Box::new(error),
            record: Box::new(record),
        }),
    }
}

/// A caller line is written when the caller decides to say it; it is placed where the
/// microphone started to speak it, the next speech start not yet taken.
fn place_caller_lines(transcript: &mut [Line], events: &[CallEvent]) {
    let mut starts = events.iter().filter_map(|e| match &e.kind {
        CallEventKind::Mic {
            detail: crate::noise::MicEvent::SpeechStarted { at_ms },
        } => Some(*at_ms),
        _ => None,
    });
    // Keys sent as messages have no speech start to be placed at.
    for line in transcript
        .iter_mut()
        .filter(|l| l.speaker == Speaker::Caller && !l.text.starts_with("[keys "))
    {
        if let Some(start) = starts.by_ref().find(|s| *s + 1.0 >= line.at_ms) {
            line.at_ms = start;
        }
    }
}

/// The caller's half of the conversation loop: what it said, and whether it is still on.
struct CallerSide {
    commands: mpsc::UnboundedSender<CallerCommand>,
    lines: Option<mpsc::UnboundedSender<Line>>,
    transcript: Vec<Line>,
    failure: Option<SimError>,
    /// Once the caller has hung up (or failed), turns still in flight are heard and recorded
    /// but never answered: an agent may well go on talking while the hangup reaches it.
    hung_up: bool,
}

impl CallerSide {
    /// Sends a prepared cut-in into the turn that started at `turn_started_ms`.
    fn cut_in(
        &mut self,
        cut: Result<Option<(f64, Utterance, Clip)>, SimError>,
        turn_started_ms: f64,
    ) {
        match cut {
            Ok(Some((after_ms, utterance, clip))) => {
                let at_ms = turn_started_ms + after_ms;
                self.record(line(Speaker::Caller, utterance.text(), at_ms));
                self.command(CallerCommand::BargeIn {
                    clip,
                    after_ms,
                    turn_started_ms: Some(turn_started_ms),
                });
            }
            Ok(None) => {}
            Err(e) => self.answer(Err(e), turn_started_ms),
        }
    }

    fn command(&self, command: CallerCommand) {
        // The call task gone means the call is over; its outcome says why.
        let _ = self.commands.send(command);
    }

    fn record(&mut self, line: Line) {
        if let Some(tx) = &self.lines {
            let _ = tx.send(line.clone());
        }
        self.transcript.push(line);
    }

    /// Says the caller's next line, or hangs up when it has none or failed to find one.
    fn answer(&mut self, next: Result<Spoken, SimError>, at_ms: f64) {
        match next {
            Ok(Spoken::Say(utterance, clip)) => {
                self.record(line(Speaker::Caller, utterance.text(), at_ms));
                self.command(CallerCommand::Say(clip));
            }
            Ok(Spoken::Press(keys)) => {
                self.record(line(Speaker::Caller, &format!("[keys {keys}]"), at_ms));
                for digit in keys.chars() {
                    self.command(CallerCommand::Dtmf(digit));
                }
            }
            Ok(Spoken::Listen) => {}
            Ok(Spoken::HangUp) => {
                self.hung_up = true;
                self.command(CallerCommand::Hangup);
            }
            Err(e) => {
                self.hung_up = true;
                self.failure.get_or_insert(e);
                self.command(CallerCommand::Hangup);
            }
        }
    }
}

fn line(speaker: Speaker, text: &str, at_ms: f64) -> Line {
    Line {
        speaker,
        text: text.trim().to_string(),
        at_ms,
    }
}

/// What the caller does next, with the audio of what it says.
enum Spoken {
    Say(Utterance, Clip),
    Press(String),
    Listen,
    HangUp,
}

/// Runs the caller's mind; it may ask an LLM, a blocking HTTP call, kept off the async workers
/// where the runtime allows it.
fn think<T>(f: impl FnOnce() -> Result<T, SimError>) -> Result<T, SimError> {
    let multi = tokio::runtime::Handle::current().runtime_flavor()
        == tokio::runtime::RuntimeFlavor::MultiThread;
    if multi {
        tokio::task::block_in_place(|| guard::catch(f))?
    } else {
        guard::catch(f)?
    }
}

/// The caller's next line and its audio.
async fn next_line(
    caller: &mut dyn Caller,
    heard: Option<&str>,
    senses: &Senses,
) -> Result<Spoken, SimError> {
    match think(|| caller.next(heard))? {
        Reply::Say(Utterance::Keys(keys)) => Ok(Spoken::Press(keys)),
        Reply::Say(utterance) => {
            let clip = speak(&utterance, senses).await?;
            Ok(Spoken::Say(utterance, clip))
        }
        Reply::Listen => Ok(Spoken::Listen),
        Reply::HangUp => Ok(Spoken::HangUp),
    }
}

/// Whether the caller cuts into the turn that just started: when, what, and its audio, all
/// ready before the moment comes.
async fn prepare_cut_in(
    caller: &mut dyn Caller,
    senses: &Senses,
) -> Result<Option<(f64, Utterance, Clip)>, SimError> {
    let Some((after_ms, utterance)) = think(|| caller.cut_in())? else {
        return Ok(None);
    };
    let clip = speak(&utterance, senses).await?;
    Ok(Some((after_ms, utterance, clip)))
}

/// The audio of an utterance: a recording as it is, text through the caller's TTS.
async fn speak(utterance: &Utterance, senses: &Senses) -> Result<Clip, SimError> {
    let clip = match utterance {
        Utterance::Audio { clip, .. } => clip.clone(),
        // Keys are pressed, not spoken (see `Spoken::Press`).
        Utterance::Keys(_) => Clip::new(Vec::new(), 16_000),
        Utterance::Text(text) => {
            let (tts, voice, text) = (senses.tts.clone(), senses.voice.clone(), text.clone());
            guard::blocking(move || tts.synthesize(&text, &voice)).await??
        }
    };
    // Engines pad speech with silence; the caller's turn ends when the voice does.
    Ok(clip.trim_silence())
}

async fn transcribe(senses: &Senses, audio: Clip) -> Result<String, SimError> {
    if audio.is_empty() {
        return Ok(String::new());
    }
    let stt = senses.stt.clone();
    let transcript = guard::blocking(move || stt.transcribe(&audio)).await??;
    Ok(transcript.text)
}
