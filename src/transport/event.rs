//! What happens on a call, as the call loop reports it to the caller and writes it to the
//! event log: plain types, shared by the call, its recorder and everything that reads a log.

use serde::{Deserialize, Serialize};

use crate::audio::Clip;
use crate::noise::MicEvent;

/// Something that happened on the call, at `at_ms` of call time.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CallEvent {
    pub at_ms: f64,
    #[serde(flatten)]
    pub kind: CallEventKind,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum CallEventKind {
    Connected,
    Mic {
        detail: MicEvent,
    },
    AgentStarted,
    /// The caller pressed a key, sent as the protocol's key-press message.
    KeyPressed {
        digit: char,
    },
    AgentTurnEnded {
        spoke_until_ms: f64,
        /// The call ended while this turn was still going.
        #[serde(skip_serializing_if = "std::ops::Not::not")]
        cut_off: bool,
        /// What the caller heard of this turn, for transcription; not in the event log.
        #[serde(skip)]
        audio: Clip,
    },
    /// The agent has sent nothing new for a moment (or said it is done): if nothing more
    /// comes, its turn's playout ends at `spoke_until_ms`. `audio` is the turn so far.
    AgentQuiet {
        spoke_until_ms: f64,
        #[serde(skip)]
        audio: Clip,
    },
    /// The agent's turn so far, every [`PARTIAL_MS`](super::call::PARTIAL_MS) while it plays:
    /// a caller transcribes it as it goes, so little is left to hear when the turn ends. Not in
    /// the event log.
    AgentSpeaking {
        #[serde(skip)]
        audio: Clip,
    },
    /// The caller started saying its answer to the agent's turn; it was due at `due_ms`.
    CallerAnswered {
        due_ms: f64,
    },
    /// The caller started cutting into the agent's turn; it was due at `due_ms`, and asked
    /// for at `asked_ms` (later than due when the caller was still working out the turn
    /// before: then it starts on the first frame after it was asked for).
    CallerCutIn {
        due_ms: f64,
        asked_ms: f64,
    },
    /// An answer prepared in the agent's pause was dropped: the agent spoke on.
    CallerWithdrew,
    /// The agent's audio ran dry mid-turn for `gap_ms`: the caller heard a dropout.
    AgentUnderrun {
        gap_ms: f64,
    },
    MarkEchoed {
        name: String,
    },
    AgentCleared {
        dropped_ms: f64,
    },
    AgentTranscript {
        text: String,
    },
    /// The agent reported what it heard the caller say.
    AgentHeard {
        text: String,
    },
    AgentError {
        message: String,
    },
    Ended {
        reason: EndReason,
    },
}

/// Why a call ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "by", rename_all = "snake_case")]
pub enum EndReason {
    CallerHungUp,
    AgentHungUp,
    /// The agent closed the socket.
    AgentClosed,
    TimeLimit,
    /// The agent said nothing for `waited_ms` after the call started or the caller spoke.
    NoAnswer {
        waited_ms: f64,
    },
    /// The agent broke its protocol or the socket failed; the call stops there.
    Error {
        message: String,
    },
}
