//! Transport: how voicesim talks to an agent over a websocket, as the agent's real callers'
//! networks do: one [`Adapter`] per wire protocol, the [`ear::Ear`] that plays the agent out,
//! and [`call`], the real-time loop that joins them to a microphone over a websocket.

mod adapter;
pub mod call;
pub mod ear;
pub mod openai_realtime;
pub mod raw_pcm;
pub mod turns;
pub mod twilio;

pub use adapter::{Adapter, AgentEvent};

/// A message from the agent that does not follow its protocol.
#[derive(Debug, thiserror::Error)]
#[error("{protocol}: {message}")]
pub struct ProtocolError {
    pub protocol: &'static str,
    pub message: String,
}
