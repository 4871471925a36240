//! One simulated call, end to end: a [`Caller`] decides what to say, a [`Tts`] says it into
//! the noisy microphone, the call streams it to the agent in real time, each agent turn the
//! caller hears is transcribed and handed back to the caller for its next line.

pub mod run;
mod script;
mod steps;

pub use script::Script;
pub use steps::{StepCaller, StepResult};

use std::path::Path;
use std::sync::Arc;

use serde::Serialize;
use tokio::sync::mpsc;

use crate::audio::Clip;
use crate::noise::MicTimeline;
use crate::speech::{SpeechError, Stt, Tts, Voice};
use crate::transport::call::{
    self, CallError, CallEvent, CallEventKind, CallOptions, CallerCommand, EndReason,
};
use crate::transport::turns::{self, Fault, Turn};
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
}

/// Who spoke a line of the transcript.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Speaker {
    Caller,
    Agent,
}

/// A line of the call's transcript: for the caller, what it said; for the agent, what the
/// caller's STT heard.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Line {
    pub speaker: Speaker,
    pub text: String,
    pub at_ms: f64,
}

/// A finished call.
#[derive(Debug, Clone, Serialize)]
pub struct CallRecord {
    pub ended: EndReason,
    pub duration_ms: f64,
    pub transcript: Vec<Line>,
    pub turns: Vec<Turn>,
    pub faults: Vec<Fault>,
    #[serde(skip)]
    pub events: Vec<CallEvent>,
    #[serde(skip)]
    pub outcome: call::CallOutcome,
}

impl CallRecord {
    /// What the agent said over the whole call, as heard.
    pub fn agent_text(&self) -> String {
        self.transcript
            .iter()
            .filter(|l| l.speaker == Speaker::Agent)
            .map(|l| l.text.as_str())
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// `call.wav` (caller left, agent right), `events.jsonl` and `call.json` in `dir`.
    pub fn save(&self, dir: &Path) -> std::io::Result<()> {
        std::fs::create_dir_all(dir)?;
        self.outcome
            .write_wav(dir.join("call.wav"))
            .map_err(std::io::Error::other)?;
        call::write_event_log(dir.join("events.jsonl"), &self.events)?;
        let json = serde_json::to_vec_pretty(self).map_err(std::io::Error::other)?;
        std::fs::write(dir.join("call.json"), json)
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
    let call = tokio::spawn(call::run(options, adapter, mic, cmd_rx, ev_tx));
    let mut transcript = Vec::new();
    let mut events = Vec::new();
    let record = |line: Line, transcript: &mut Vec<Line>| {
        if let Some(tx) = &lines {
            let _ = tx.send(line.clone());
        }
        transcript.push(line);
    };
    let mut failure = None;
    if caller.speaks_first() {
        match next_line(caller, None, senses).await {
            Ok(Some((utterance, clip))) => {
                record(
                    line(Speaker::Caller, utterance.text(), 0.0),
                    &mut transcript,
                );
                let _ = cmd_tx.send(CallerCommand::Say(clip));
            }
            Ok(None) => drop(cmd_tx.send(CallerCommand::Hangup)),
            Err(e) => failure = Some(e),
        }
    }
    // The agent line of a turn the caller cut into, to be completed when the turn ends.
    let mut cut_into: Option<usize> = None;
    while let Some(event) = ev_rx.recv().await {
        let at_ms = event.at_ms;
        let heard_audio = match &event.kind {
            CallEventKind::AgentStarted => {
                if let Some(after_ms) = caller.cuts_in() {
                    let _ = cmd_tx.send(CallerCommand::Overhear {
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
                failure = Some(e);
                let _ = cmd_tx.send(CallerCommand::Hangup);
                continue;
            }
        };
        if let Some(i) = cut_into.take().filter(|_| !so_far) {
            // The caller already answered this turn mid-way; the transcript gets all of it.
            transcript[i].text = heard.trim().to_string();
            continue;
        }
        if so_far {
            cut_into = Some(transcript.len());
        }
        record(line(Speaker::Agent, &heard, at_ms), &mut transcript);
        let next = if cut_off {
            // The call ended with this turn: judge it, nobody to answer.
            caller.last_words(&heard).map(|()| None)
        } else {
            next_line(caller, Some(&heard), senses).await
        };
        match next {
            Ok(Some((utterance, clip))) => {
                record(
                    line(Speaker::Caller, utterance.text(), at_ms),
                    &mut transcript,
                );
                let _ = cmd_tx.send(CallerCommand::Say(clip));
            }
            Ok(None) => drop(cmd_tx.send(CallerCommand::Hangup)),
            Err(e) => {
                failure = Some(e);
                let _ = cmd_tx.send(CallerCommand::Hangup);
            }
        }
    }
    let outcome = call
        .await
        .map_err(|e| SimError::Caller(format!("the call task failed: {e}")))??;
    if let Some(e) = failure {
        return Err(e);
    }
    let turns = turns::turns(&events);
    Ok(CallRecord {
        faults: turns::faults(&outcome.ended, &turns),
        ended: outcome.ended.clone(),
        duration_ms: outcome.duration_ms,
        transcript,
        turns,
        events,
        outcome,
    })
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
        tokio::task::block_in_place(|| caller.next(heard))
    } else {
        caller.next(heard)
    };
    let Some(utterance) = next? else {
        return Ok(None);
    };
    let clip = match &utterance {
        Utterance::Audio { clip, .. } => clip.clone(),
        Utterance::Text(text) => {
            let (tts, voice, text) = (senses.tts.clone(), senses.voice.clone(), text.clone());
            tokio::task::spawn_blocking(move || tts.synthesize(&text, &voice))
                .await
                .map_err(|e| SimError::Caller(format!("speech synthesis stopped: {e}")))??
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
    let transcript = tokio::task::spawn_blocking(move || stt.transcribe(&audio))
        .await
        .map_err(|e| SimError::Caller(format!("transcription stopped: {e}")))??;
    Ok(transcript.text)
}
