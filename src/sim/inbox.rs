//! The call's events as the caller's side takes them, with a look at what is already waiting.
//!
//! The caller works out an answer in each pause of the agent's voice, and that takes its
//! recognizer a while. On a busy machine, or against an agent whose stream stutters, pauses
//! come faster than they are heard; worked through in turn, the caller ends up answering
//! seconds (or minutes) after the agent stopped. A person hears the agent go on and drops
//! what they were making of the pause: so does the caller, for a pause or a part of a turn
//! that events already waiting have overtaken.

use std::collections::VecDeque;

use tokio::sync::mpsc;

use crate::transport::event::{CallEvent, CallEventKind};

pub(super) struct Inbox {
    events: mpsc::UnboundedReceiver<CallEvent>,
    waiting: VecDeque<CallEvent>,
}

impl Inbox {
    pub fn new(events: mpsc::UnboundedReceiver<CallEvent>) -> Self {
        Inbox {
            events,
            waiting: VecDeque::new(),
        }
    }

    /// The next event; `None` once the call is over and every event taken.
    pub async fn next(&mut self) -> Option<CallEvent> {
        match self.waiting.pop_front() {
            Some(event) => Some(event),
            None => self.events.recv().await,
        }
    }

    /// Whether the agent's voice has already moved on from the event just taken: it played
    /// more, paused again, started a turn or ended one.
    pub fn overtaken(&mut self) -> bool {
        while let Ok(event) = self.events.try_recv() {
            self.waiting.push_back(event);
        }
        self.waiting.iter().any(|e| {
            matches!(
                e.kind,
                CallEventKind::AgentSpeaking { .. }
                    | CallEventKind::AgentQuiet { .. }
                    | CallEventKind::AgentTurnEnded { .. }
                    | CallEventKind::AgentStarted
            )
        })
    }
}
