//! One simulated call, end to end: a [`Caller`] decides what to say, a [`Tts`] says it into
//! the noisy microphone, the call streams it to the agent in real time, each agent turn the
//! caller hears is transcribed and handed back to the caller for its next line.

pub mod run;
mod script;
mod steps;

pub use script::Script;
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
    Audio { clip: Clip, text: String },
}

impl Utterance {
    /// What was said, for the transcript (a recording carries its own reference text).
    pub fn text(&self) -> &str {
        match self {
            Utterance::Text(t) => t,
            Utterance::Audio { text, .. } => text,
        }
    }
}

/// The simulated caller's mind.
pub trait Caller: Send {
    /// The next thing to say, having just heard the agent say `heard` (`None` before the agent
    /// has said anything, for a caller who speaks first). `None` hangs up.
    fn next(&mut self, heard: Option<&str>) -> Result<Option<Utterance>, SimError>;
    /// The call ended while the agent said `heard`: judge it, there is nothing to answer.
    fn last_words(&mut self, _heard: &str) -> Result<(), SimError> {
        Ok(())
    }
    /// Called as each agent turn starts: `Some(ms)` to cut in once that much of it has played,
    /// answering what was heard so far instead of waiting for the turn to end.
    fn cuts_in(&mut self) -> Option<f64> {
        None
    }
    /// Whether the caller speaks before the agent does.
    fn speaks_first(&self) -> bool {
        false
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
    // The agent line of a turn the caller cut into, to be completed when the turn ends.
    let mut cut_into: Option<usize> = None;
    // Agent lines are placed where their turn started to play, so a report seeks to them.
    let mut turn_started_ms = 0.0;
    while let Some(event) = ev_rx.recv().await {
        let at_ms = event.at_ms;
        if matches!(event.kind, CallEventKind::AgentStarted) {
            turn_started_ms = at_ms;
        }
        let heard_audio = match &event.kind {
            CallEventKind::AgentStarted if !side.hung_up => {
                if let Some(after_ms) = caller.cuts_in() {
                    side.command(CallerCommand::Overhear {
                        turn_started_ms: at_ms,
                        after_ms,
                    });
                }
                None
            }
            CallEventKind::AgentSoFar { audio } => Some((audio.clone(), false, true)),
            CallEventKind::AgentTurnEnded { audio, cut_off, .. } => {
                Some((audio.clone(), *cut_off, false))
            }
            _ => None,
        };
        events.push(event);
        let Some((audio, cut_off, so_far)) = heard_audio else {
            continue;
        };
        let heard = match transcribe(senses, audio).await {
            Ok(heard) => heard,
            Err(e) => {
                side.answer(Err(e), at_ms);
                continue;
            }
        };
        if let Some(i) = cut_into.take().filter(|_| !so_far) {
            // The caller already answered this turn mid-way; the transcript gets all of it.
            if let Some(line) = side.transcript.get_mut(i) {
                line.text = heard.trim().to_string();
            }
            continue;
        }
        if so_far {
            cut_into = Some(side.transcript.len());
        }
        side.record(line(Speaker::Agent, &heard, turn_started_ms));
        if side.hung_up {
            continue;
        }
        let next = if cut_off {
            // The call ended with this turn: judge it, nobody to answer.
            guard::catch(|| caller.last_words(&heard))
                .map_err(SimError::from)
                .and_then(|judged| judged.map(|()| None))
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
    for line in transcript
        .iter_mut()
        .filter(|l| l.speaker == Speaker::Caller)
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
    fn answer(&mut self, next: Result<Option<(Utterance, Clip)>, SimError>, at_ms: f64) {
        match next {
            Ok(Some((utterance, clip))) => {
                self.record(line(Speaker::Caller, utterance.text(), at_ms));
                self.command(CallerCommand::Say(clip));
            }
            Ok(None) => {
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

/// The caller's next utterance and its audio.
async fn next_line(
    caller: &mut dyn Caller,
    heard: Option<&str>,
    senses: &Senses,
) -> Result<Option<(Utterance, Clip)>, SimError> {
    // The caller may ask an LLM: a blocking HTTP call, kept off the async workers where the
    // runtime allows it.
    let multi = tokio::runtime::Handle::current().runtime_flavor()
        == tokio::runtime::RuntimeFlavor::MultiThread;
    let next = if multi {
        tokio::task::block_in_place(|| guard::catch(|| caller.next(heard)))
    } else {
        guard::catch(|| caller.next(heard))
    };
    let Some(utterance) = next?? else {
        return Ok(None);
    };
    let clip = match &utterance {
        Utterance::Audio { clip, .. } => clip.clone(),
        Utterance::Text(text) => {
            let (tts, voice, text) = (senses.tts.clone(), senses.voice.clone(), text.clone());
            guard::blocking(move || tts.synthesize(&text, &voice)).await??
        }
    };
    // Engines pad speech with silence; the caller's turn ends when the voice does.
    Ok(Some((utterance, clip.trim_silence())))
}

async fn transcribe(senses: &Senses, audio: Clip) -> Result<String, SimError> {
    if audio.is_empty() {
        return Ok(String::new());
    }
    let stt = senses.stt.clone();
    let transcript = guard::blocking(move || stt.transcribe(&audio)).await??;
    Ok(transcript.text)
}
