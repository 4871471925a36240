use tokio_tungstenite::tungstenite::Message;

use super::ProtocolError;
use crate::audio::Frame;

/// What an agent's message means to the call, whatever the protocol.
#[derive(Debug, Clone, PartialEq)]
pub enum AgentEvent {
    /// Audio to play to the caller, at the adapter's wire rate.
    Audio(Vec<f32>),
    /// Echo this mark back once the audio before it has played.
    Mark(String),
    /// Drop the queued audio (the agent handles a barge-in).
    Clear,
    /// The agent says its turn is complete.
    Done,
    /// The agent ends the call.
    Hangup,
    /// Text of what the agent says, where the protocol carries it.
    Transcript(String),
    /// What the agent's speech recognition made of the caller, where the protocol carries it
    /// (OpenAI Realtime's input transcription): the agent's hearing, for the `wer` metric.
    Heard(String),
    /// The agent reports an error.
    Error(String),
}

/// One wire protocol, client side: turns caller frames into messages and agent messages into
/// [`AgentEvent`]s. Adding a protocol is one file implementing this.
pub trait Adapter: Send {
    /// The name on the command line (`--protocol`).
    fn name(&self) -> &'static str;
    /// The rate of the caller's audio on the wire; the microphone timeline runs at it.
    fn rate(&self) -> u32;
    /// Messages sent right after connecting (a start event); raw PCM and Pipecat send nothing.
    fn opening(&mut self) -> Vec<Message> {
        Vec::new()
    }
    /// One 20 ms frame of the caller's microphone.
    fn frame(&mut self, frame: &Frame, elapsed_ms: u64) -> Vec<Message>;
    /// A message from the agent.
    fn receive(&mut self, message: &Message) -> Result<Vec<AgentEvent>, ProtocolError>;
    /// Sent when the caller's utterance ends (protocols without server-side turn detection
    /// commit the turn here).
    fn caller_stopped(&mut self) -> Vec<Message> {
        Vec::new()
    }
    /// Sent when the agent's clear has been carried out (Plivo's `clearedAudio`, Vonage's
    /// `websocket:cleared`); most protocols send nothing.
    fn cleared(&mut self) -> Vec<Message> {
        Vec::new()
    }
    /// Sent when a mark's audio has played (Twilio echoes marks); most protocols send nothing.
    fn mark_played(&mut self, _name: &str) -> Vec<Message> {
        Vec::new()
    }
    /// A key press, for protocols that carry DTMF as a message (Twilio); `None` means the
    /// protocol has no such message and the tones go in-band, through the microphone.
    fn dtmf(&mut self, _digit: char) -> Option<Vec<Message>> {
        None
    }
    /// Messages sent before closing.
    fn closing(&mut self) -> Vec<Message> {
        Vec::new()
    }
}
