use super::{Caller, Reply, SimError, Utterance};

/// A scripted caller: says its lines in order, one after each agent turn, then hangs up once
/// the agent has answered the last one. Deterministic: what it says never depends on what it
/// heard.
#[derive(Debug, Clone)]
pub struct Script {
    lines: std::collections::VecDeque<Utterance>,
    speaks_first: bool,
    listens: bool,
}

impl Script {
    pub fn new(lines: impl IntoIterator<Item = Utterance>, speaks_first: bool) -> Self {
        Script {
            lines: lines.into_iter().collect(),
            speaks_first,
            listens: true,
        }
    }

    /// Answers each agent turn as it ends, without waiting for its words (a load run's caller:
    /// no transcription holds the next line up).
    pub fn without_listening(mut self) -> Self {
        self.listens = false;
        self
    }
}

impl Caller for Script {
    fn next(&mut self, _heard: Option<&str>) -> Result<Reply, SimError> {
        Ok(self.lines.pop_front().map_or(Reply::HangUp, Reply::Say))
    }

    fn speaks_first(&self) -> bool {
        self.speaks_first
    }

    fn listens(&self) -> bool {
        self.listens
    }
}

/// The caller of a live call: a person speaks through the microphone (mixed in by the
/// microphone timeline), so this caller never says a line of its own; the person hangs up.
#[derive(Debug, Clone, Copy, Default)]
pub struct Live;

impl Caller for Live {
    fn next(&mut self, _heard: Option<&str>) -> Result<Reply, SimError> {
        Ok(Reply::Listen)
    }
}
