//! The record of a finished call: who said what and when, the agent's turns, the faults, the
//! events and both channels. Plain data that the simulation writes and the judge and the
//! reports read.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::audio::Envelope;
use crate::transport::call;
use crate::transport::event::{CallEvent, EndReason};
use crate::transport::turns::{Fault, Turn};

/// Who spoke a line of the transcript.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Speaker {
    Caller,
    Agent,
}

/// A line of the call's transcript: for the caller, what it said; for the agent, what the
/// caller's STT heard in the whole turn once it had ended (what the judge reads).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Line {
    pub speaker: Speaker,
    pub text: String,
    pub at_ms: f64,
    /// Of an agent line: what the caller heard as the turn played and reacted to, where its
    /// words differ from `text`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heard: Option<String>,
}

/// Everything `speaker` said over `lines`, as one text.
pub fn words(lines: &[Line], speaker: Speaker) -> String {
    lines
        .iter()
        .filter(|l| l.speaker == speaker)
        .map(|l| l.text.as_str())
        .collect::<Vec<_>>()
        .join(" ")
}

/// The file in a call's folder that holds its [`Waveform`].
pub const WAVEFORM: &str = "envelope.json";

/// Both channels of a call, small enough to draw.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Waveform {
    pub caller: Envelope,
    pub agent: Envelope,
}

/// How soon the caller answered one agent turn, and where the time went. Times are ms; the
/// parts are wall-clock time spent on the caller's side, what is left of `reaction_ms` is
/// waiting for the target (or for a frame).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Reaction {
    /// When the agent's voice stopped (call time).
    pub agent_stopped_ms: f64,
    /// The persona's reaction time drawn for this turn (none: as soon as it could).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_ms: Option<f64>,
    /// From the agent's voice stopping to the caller's voice starting.
    pub reaction_ms: f64,
    /// How far past the target it started (0 when on time).
    pub late_ms: f64,
    /// When the caller knew the turn might be over, from the agent's voice stopping:
    /// negative when the agent had sent all its audio ahead of playing it.
    pub end_of_turn_ms: f64,
    /// Waiting for the speech recognizer, then recognizing.
    pub stt_queue_ms: f64,
    pub stt_ms: f64,
    /// Deciding the line (an LLM, for a caller that asks one).
    pub think_ms: f64,
    pub tts_ms: f64,
    /// The answer was worked out in the agent's pause, before its turn was known to be over.
    pub ahead: bool,
}

/// A finished call.
#[derive(Debug, Clone, Serialize)]
pub struct CallRecord {
    pub ended: EndReason,
    pub duration_ms: f64,
    pub transcript: Vec<Line>,
    pub turns: Vec<Turn>,
    pub faults: Vec<Fault>,
    /// One per agent turn the caller answered.
    pub reactions: Vec<Reaction>,
    /// How far what the caller heard as each agent turn played is from the whole turn heard
    /// once it ended: the WER between the two (none where the caller heard no turn).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hearing_drift: Option<f64>,
    #[serde(skip)]
    pub events: Vec<CallEvent>,
    #[serde(skip)]
    pub outcome: call::CallOutcome,
}

impl CallRecord {
    /// What the agent said over the whole call, as heard.
    pub fn agent_text(&self) -> String {
        words(&self.transcript, Speaker::Agent)
    }

    /// `call.wav` (caller left, agent right), `events.jsonl`, `call.json` and `envelope.json`
    /// (what a report draws the waveform from) in `dir`.
    pub fn save(&self, dir: &Path) -> std::io::Result<()> {
        std::fs::create_dir_all(dir)?;
        let wav = dir.join("call.wav");
        // A call taped into this folder has its recording and event log here already.
        let taped = self.outcome.tape.as_ref().is_some_and(|t| t.path == wav);
        if !taped {
            self.outcome
                .write_wav(&wav)
                .map_err(std::io::Error::other)?;
            call::write_event_log(dir.join("events.jsonl"), &self.events)?;
        }
        let json = serde_json::to_vec_pretty(self).map_err(std::io::Error::other)?;
        std::fs::write(dir.join("call.json"), json)?;
        let (caller, agent) = self.outcome.envelopes();
        let envelope = Waveform { caller, agent };
        let json = serde_json::to_vec(&envelope).map_err(std::io::Error::other)?;
        std::fs::write(dir.join(WAVEFORM), json)
    }
}
