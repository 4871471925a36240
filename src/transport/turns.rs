//! Per-turn measurements of a call, read off its event log: how long the agent took to answer,
//! how long it talked, and whether it stopped when the caller barged in.

use serde::{Deserialize, Serialize};

use super::event::{CallEvent, CallEventKind};
use crate::noise::MicEvent;

/// One agent turn.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Turn {
    /// When the agent's audio started playing.
    pub agent_started_ms: f64,
    /// When the caller's utterance this turn answers ended, if it answers one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub caller_ended_ms: Option<f64>,
    /// From the end of the caller's speech to the first agent audio heard.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response_latency_ms: Option<f64>,
    /// How long the agent's audio played.
    pub agent_talk_ms: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub barge_in: Option<BargeIn>,
    /// Dropouts in the agent's audio (playout ran dry mid-turn), and their total length.
    #[serde(skip_serializing_if = "is_zero")]
    pub underruns: u32,
    #[serde(skip_serializing_if = "is_zero_ms")]
    pub underrun_ms: f64,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

fn is_zero_ms(n: &f64) -> bool {
    *n == 0.0
}

/// The caller started talking while the agent was.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BargeIn {
    pub at_ms: f64,
    /// How long the agent went on after it: until it cleared its audio or its playout ended.
    pub agent_stopped_after_ms: f64,
    /// The agent cleared its queued audio (rather than talking to the end).
    pub cleared: bool,
    /// How long past its moment the caller asked for a cut-in it chose, because it was still
    /// working out the turn before (a machine too busy for its speech recognizer); its voice
    /// then started on the next frame.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub late_ms: Option<f64>,
}

/// Splits a call's events into agent turns, in order. Events must be in the order the call
/// emitted them.
pub fn turns(events: &[CallEvent]) -> Vec<Turn> {
    let mut done = Vec::new();
    let mut open: Option<Turn> = None;
    let mut caller_ended: Option<f64> = None;
    let mut caller_speaking = false;
    let mut cut_in_late = None;
    for event in events {
        match &event.kind {
            CallEventKind::Mic {
                detail: MicEvent::SpeechStarted { at_ms },
            } => {
                caller_speaking = true;
                // A cut-in's lateness belongs to the speech it started, never to a later one.
                let late_ms = cut_in_late.take();
                if let Some(turn) = open.as_mut().filter(|t| t.barge_in.is_none()) {
                    turn.barge_in = Some(BargeIn {
                        at_ms: *at_ms,
                        agent_stopped_after_ms: 0.0,
                        cleared: false,
                        late_ms,
                    });
                }
            }
            CallEventKind::Mic {
                detail: MicEvent::SpeechEnded { at_ms },
            } => {
                caller_speaking = false;
                caller_ended = Some(*at_ms);
            }
            // A key press ends the caller's turn as the end of speech does.
            CallEventKind::KeyPressed { .. } => caller_ended = Some(event.at_ms),
            CallEventKind::AgentStarted => {
                // Speech still going when the agent starts is a barge-in the other way round:
                // no answer latency to measure.
                let answered = caller_ended.take().filter(|_| !caller_speaking);
                open = Some(Turn {
                    agent_started_ms: event.at_ms,
                    caller_ended_ms: answered,
                    response_latency_ms: answered.map(|end| event.at_ms - end),
                    agent_talk_ms: 0.0,
                    barge_in: None,
                    underruns: 0,
                    underrun_ms: 0.0,
                });
            }
            // Said on the same frame as the speech it starts, just before it.
            CallEventKind::CallerCutIn { due_ms, asked_ms } => {
                cut_in_late = (asked_ms > due_ms).then(|| asked_ms - due_ms);
            }
            CallEventKind::AgentUnderrun { gap_ms } => {
                if let Some(turn) = open.as_mut() {
                    turn.underruns += 1;
                    turn.underrun_ms += gap_ms;
                }
            }
            CallEventKind::AgentCleared { .. } => {
                if let Some(barge) = open
                    .as_mut()
                    .and_then(|t| t.barge_in.as_mut())
                    .filter(|b| !b.cleared)
                {
                    barge.cleared = true;
                    barge.agent_stopped_after_ms = event.at_ms - barge.at_ms;
                }
            }
            CallEventKind::AgentTurnEnded { spoke_until_ms, .. } => {
                if let Some(mut turn) = open.take() {
                    turn.agent_talk_ms = spoke_until_ms - turn.agent_started_ms;
                    // Speech that started once the agent's voice had stopped is an answer given
                    // in its pause, as people do, not a barge-in.
                    turn.barge_in = turn.barge_in.filter(|b| b.at_ms < *spoke_until_ms);
                    if let Some(barge) = turn.barge_in.as_mut().filter(|b| !b.cleared) {
                        barge.agent_stopped_after_ms = (spoke_until_ms - barge.at_ms).max(0.0);
                    }
                    done.push(turn);
                }
            }
            _ => {}
        }
    }
    done
}

/// What went wrong with a call as a call, whatever was said: the errors a voice agent's users
/// would notice before any words are judged.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "fault", rename_all = "snake_case")]
pub enum Fault {
    /// The agent broke its protocol or the connection failed (dropped without a close, ...).
    Broken { message: String },
    /// The agent never answered.
    NoAnswer { waited_ms: f64 },
    /// The agent's audio kept running dry: the caller heard it choppy.
    Choppy { underruns: u32, gap_ms: f64 },
    /// The agent ended the call (closed the socket or hung up) without saying a word.
    HungUpSilent,
}

impl Fault {
    /// Found by the clock: a caller side running late can cause it.
    pub fn is_timing(&self) -> bool {
        matches!(self, Fault::NoAnswer { .. } | Fault::Choppy { .. })
    }
}

impl std::fmt::Display for Fault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Fault::Broken { message } => write!(f, "the call broke: {message}"),
            Fault::NoAnswer { waited_ms } => {
                write!(f, "the agent said nothing for {:.1} s", waited_ms / 1000.0)
            }
            Fault::HungUpSilent => write!(f, "the agent hung up without saying anything"),
            Fault::Choppy { underruns, gap_ms } => write!(
                f,
                "the agent's audio ran dry {underruns} times ({gap_ms:.0} ms of dropouts): \
                 it streams slower than real time"
            ),
        }
    }
}

/// The faults of a finished call, from how it ended and its turns.
pub fn faults(ended: &super::event::EndReason, turns: &[Turn]) -> Vec<Fault> {
    use super::event::EndReason;
    let mut faults = Vec::new();
    match ended {
        EndReason::Error { message } => faults.push(Fault::Broken {
            message: message.clone(),
        }),
        EndReason::NoAnswer { waited_ms } => faults.push(Fault::NoAnswer {
            waited_ms: *waited_ms,
        }),
        EndReason::AgentClosed | EndReason::AgentHungUp if turns.is_empty() => {
            faults.push(Fault::HungUpSilent)
        }
        _ => {}
    }
    let underruns: u32 = turns.iter().map(|t| t.underruns).sum();
    if underruns > 0 {
        faults.push(Fault::Choppy {
            underruns,
            gap_ms: turns.iter().map(|t| t.underrun_ms).sum(),
        });
    }
    faults
}
