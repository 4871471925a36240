//! Raw PCM over a websocket: binary frames of PCM16 LE mono at a set rate both ways, with
//! optional JSON text frames for control. Covers Vonage (which opens with a JSON message
//! naming the format), Vapi's websocket transport and Deepgram Agent's audio path.

use serde_json::{json, Value};

use super::ProtocolError;
use crate::audio::{Encoding, FRAME_MS};

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
    Ok(if v["action"] == "clear" {
        Control::Clear
    } else if v["type"] == "hangup" || v["action"] == "hangup" {
        Control::Hangup
    } else {
        Control::Other(v)
    })
}
