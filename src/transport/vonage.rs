//! Vonage Voice API websockets: binary PCM16 (L16) frames at 16 kHz (or 8 kHz) both ways,
//! JSON events around them. Vonage opens with `websocket:connected` naming the format (and
//! carrying the call's headers), sends key presses as `websocket:dtmf`, answers the agent's
//! `{"action":"clear"}` with `websocket:cleared` and its `{"action":"notify"}` with
//! `websocket:notify` once the audio before it has played.
//!
//! ```
//! use voicesim::transport::vonage;
//!
//! let opening: serde_json::Value =
//!     serde_json::from_str(&vonage::connected(16_000, &Default::default())).unwrap();
//! assert_eq!(opening["content-type"], "audio/l16;rate=16000");
//! ```

use std::collections::BTreeMap;

use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

use super::{AgentEvent, ProtocolError};
use crate::audio::{Encoding, Frame};

const PROTOCOL: &str = "vonage";

/// Vonage's first message; the call's headers (session parameters) ride along in it.
pub fn connected(rate: u32, headers: &BTreeMap<String, String>) -> String {
    let mut message = json!({
        "event": "websocket:connected",
        "content-type": format!("audio/l16;rate={rate}"),
    });
    if let Some(m) = message.as_object_mut() {
        for (name, value) in headers {
            m.insert(name.clone(), json!(value));
        }
    }
    message.to_string()
}

/// A key press.
pub fn dtmf(digit: char) -> String {
    json!({"event": "websocket:dtmf", "digit": digit.to_string(), "duration": 250}).to_string()
}

/// The answer to a notify whose audio has played: the agent's payload, back as it was sent.
pub fn notify(payload: &str) -> String {
    let payload: Value = serde_json::from_str(payload).unwrap_or(Value::Null);
    json!({"event": "websocket:notify", "payload": payload}).to_string()
}

/// The Vonage adapter.
pub struct Vonage {
    rate: u32,
    headers: BTreeMap<String, String>,
}

impl Vonage {
    pub fn new(rate: u32, headers: BTreeMap<String, String>) -> Self {
        Vonage { rate, headers }
    }
}

impl super::Adapter for Vonage {
    fn name(&self) -> &'static str {
        PROTOCOL
    }

    fn rate(&self) -> u32 {
        self.rate
    }

    fn opening(&mut self) -> Vec<Message> {
        vec![Message::text(connected(self.rate, &self.headers))]
    }

    fn frame(&mut self, frame: &Frame, _elapsed_ms: u64) -> Vec<Message> {
        vec![Message::binary(Encoding::Pcm16.encode(&frame.samples))]
    }

    fn receive(&mut self, message: &Message) -> Result<Vec<AgentEvent>, ProtocolError> {
        super::raw_pcm::receive(PROTOCOL, message)
    }

    fn cleared(&mut self) -> Vec<Message> {
        vec![Message::text(
            json!({"event": "websocket:cleared"}).to_string(),
        )]
    }

    fn mark_played(&mut self, name: &str) -> Vec<Message> {
        vec![Message::text(notify(name))]
    }

    fn dtmf(&mut self, digit: char) -> Option<Vec<Message>> {
        Some(vec![Message::text(dtmf(digit))])
    }
}
