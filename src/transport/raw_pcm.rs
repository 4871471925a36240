//! Raw PCM over a websocket: binary frames of PCM16 LE mono at a set rate both ways, with
//! optional JSON text frames for control. Covers Vapi's websocket transport and Deepgram
//! Agent's audio path; Vonage, which adds JSON events around the same audio, is `vonage`.

use serde_json::Value;

use super::ProtocolError;
use crate::audio::{Encoding, FRAME_MS};
use tokio_tungstenite::tungstenite::Message;

const PROTOCOL: &str = "raw-pcm";

/// Bytes of one 20 ms binary frame at `rate`.
pub fn frame_bytes(rate: u32) -> usize {
    (rate * FRAME_MS / 1000) as usize * Encoding::Pcm16.bytes_per_sample()
}

/// A control message an agent may send as a text frame.
#[derive(Debug, Clone, PartialEq)]
pub enum Control {
    /// Drop the queued audio: `{"action":"clear"}`.
    Clear,
    /// Tell the agent when the audio before this has played: Vonage's
    /// `{"action":"notify","payload":…}`, the payload kept as JSON text.
    Notify(String),
    /// End the call: Vapi `{"type":"hangup"}`.
    Hangup,
    /// Any other JSON the agent sends; kept for the event log.
    Other(Value),
}

/// Reads one text frame from the agent.
pub fn parse_control(text: &str) -> Result<Control, ProtocolError> {
    let v: Value = serde_json::from_str(text).map_err(|e| ProtocolError {
        protocol: PROTOCOL,
        message: format!("text frame is not JSON: {e}"),
    })?;
    let field = |name: &str| v.get(name).and_then(Value::as_str);
    Ok(if field("action") == Some("clear") {
        Control::Clear
    } else if field("action") == Some("notify") {
        Control::Notify(v.get("payload").unwrap_or(&Value::Null).to_string())
    } else if field("type") == Some("hangup") || field("action") == Some("hangup") {
        Control::Hangup
    } else {
        Control::Other(v)
    })
}

/// The raw-PCM adapter: binary PCM16 frames at `rate` both ways.
pub struct RawPcm {
    rate: u32,
}

impl RawPcm {
    pub fn new(rate: u32) -> Self {
        RawPcm { rate }
    }
}

/// Agent audio or control, for raw PCM and Vonage alike.
pub(super) fn receive(
    protocol: &'static str,
    message: &Message,
) -> Result<Vec<super::AgentEvent>, ProtocolError> {
    use super::AgentEvent;
    Ok(match message {
        Message::Binary(bytes) => vec![AgentEvent::Audio(Encoding::Pcm16.decode(bytes))],
        Message::Text(text) => match parse_control(text).map_err(|e| ProtocolError {
            protocol,
            message: e.message,
        })? {
            Control::Clear => vec![AgentEvent::Clear],
            Control::Hangup => vec![AgentEvent::Hangup],
            Control::Notify(payload) => vec![AgentEvent::Mark(payload)],
            Control::Other(_) => Vec::new(),
        },
        _ => Vec::new(),
    })
}

impl super::Adapter for RawPcm {
    fn name(&self) -> &'static str {
        PROTOCOL
    }

    fn rate(&self) -> u32 {
        self.rate
    }

    fn frame(&mut self, frame: &crate::audio::Frame, _elapsed_ms: u64) -> Vec<Message> {
        vec![Message::binary(Encoding::Pcm16.encode(&frame.samples))]
    }

    fn receive(&mut self, message: &Message) -> Result<Vec<super::AgentEvent>, ProtocolError> {
        receive(PROTOCOL, message)
    }
}
