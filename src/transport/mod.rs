//! Transport: how voicesim talks to an agent over a websocket, as the agent's real callers'
//! networks do. This holds the wire formats so far; the call client, pacer and `Ear` follow.

pub mod ear;
pub mod openai_realtime;
pub mod raw_pcm;
pub mod twilio;

/// A message from the agent that does not follow its protocol.
#[derive(Debug, thiserror::Error)]
#[error("{protocol}: {message}")]
pub struct ProtocolError {
    pub protocol: &'static str,
    pub message: String,
}
