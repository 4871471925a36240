//! Raw PCM over a websocket: binary frames of PCM16 LE mono at a set rate both ways, with
//! optional JSON text frames for control. Covers Vonage (which opens with a JSON message
//! naming the format), Vapi's websocket transport and Deepgram Agent's audio path.

use serde_json::{json, Value};

use super::ProtocolError;
use crate::audio::{Encoding, FRAME_MS};
use tokio_tungstenite::tungstenite::Message;

const PROTOCOL: &str = "raw-pcm";

/// Vonage's first message: `{"event":"websocket:connected","content-type":"audio/l16;rate=16000"}`.
pub fn vonage_connected(rate: u32) -> String {
    json!({ "event": "websocket:connected", "content-type": format!("audio/l16;rate={rate}") })
        .to_string()
}

/// Bytes of one 20 ms binary frame at `rate`.
pub fn frame_bytes(rate: u32) -> usize {
    (rate * FRAME_MS / 1000) as usize * Encoding::Pcm16.bytes_per_sample()
}

/// A control message an agent may send as a text frame.
#[derive(Debug, Clone, PartialEq)]
pub enum Control {
    /// Drop the queued audio: Vonage `{"action":"clear"}`.
    Clear,
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
    } else if field("type") == Some("hangup") || field("action") == Some("hangup") {
        Control::Hangup
    } else {
        Control::Other(v)
    })
}

/// The raw-PCM adapter: binary PCM16 frames at `rate` both ways.
pub struct RawPcm {
    rate: u32,
    /// Send Vonage's JSON opening first.
    vonage: bool,
}

impl RawPcm {
    pub fn new(rate: u32, vonage: bool) -> Self {
        RawPcm { rate, vonage }
    }
}

impl super::Adapter for RawPcm {
    fn name(&self) -> &'static str {
        PROTOCOL
    }

    fn rate(&self) -> u32 {
        self.rate
    }

    fn opening(&mut self) -> Vec<Message> {
        if self.vonage {
            vec![Message::text(vonage_connected(self.rate))]
        } else {
            Vec::new()
        }
    }

    fn frame(&mut self, frame: &crate::audio::Frame, _elapsed_ms: u64) -> Vec<Message> {
        vec![Message::binary(Encoding::Pcm16.encode(&frame.samples))]
    }

    fn receive(&mut self, message: &Message) -> Result<Vec<super::AgentEvent>, ProtocolError> {
        use super::AgentEvent;
        Ok(match message {
            Message::Binary(bytes) => vec![AgentEvent::Audio(Encoding::Pcm16.decode(bytes))],
            Message::Text(text) => match parse_control(text)? {
                Control::Clear => vec![AgentEvent::Clear],
                Control::Hangup => vec![AgentEvent::Hangup],
                Control::Other(_) => Vec::new(),
            },
            _ => Vec::new(),
        })
    }
}
