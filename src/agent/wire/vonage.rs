//! A Vonage agent: binary L16 both ways, `notify` after each reply (answered when played),
//! `clear` on a barge-in.

use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

use super::{fail, AgentWire, FromCaller};
use crate::audio::Encoding;
use crate::transport::ProtocolError;

pub(super) struct VonageAgent {
    pub(super) rate: u32,
    pub(super) marks: u64,
}

impl AgentWire for VonageAgent {
    fn rate(&self) -> u32 {
        self.rate
    }

    fn receive(&mut self, message: &Message) -> Result<Vec<FromCaller>, ProtocolError> {
        const P: &str = "vonage";
        let Some(v) = super::json_of(P, message)? else {
            return Ok(match message {
                Message::Binary(bytes) => vec![FromCaller::Audio(Encoding::Pcm16.decode(bytes))],
                _ => Vec::new(),
            });
        };
        Ok(match v.get("event").and_then(Value::as_str) {
            Some("websocket:connected") => {
                let mut parameters = super::parameters_of(Some(&v));
                parameters.remove("event");
                parameters.remove("content-type");
                vec![FromCaller::Start { parameters }]
            }
            Some("websocket:dtmf") => vec![FromCaller::Dtmf(
                v.get("digit")
                    .map(|d| d.as_str().map_or(d.to_string(), str::to_string))
                    .unwrap_or_default(),
            )],
            Some("websocket:notify") => vec![FromCaller::MarkPlayed(
                v.pointer("/payload/mark")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .into(),
            )],
            Some("websocket:cleared") => Vec::new(),
            other => return Err(fail(P, format!("unknown event {other:?} from Vonage"))),
        })
    }

    fn audio(&mut self, samples: &[f32]) -> Vec<Message> {
        vec![Message::binary(Encoding::Pcm16.encode(samples))]
    }

    fn reply_sent(&mut self, _text: &str) -> Vec<Message> {
        self.marks += 1;
        let payload = json!({ "mark": format!("reply-{}", self.marks) });
        vec![Message::text(
            json!({"action": "notify", "payload": payload}).to_string(),
        )]
    }

    fn clear(&mut self) -> Vec<Message> {
        vec![Message::text(r#"{"action":"clear"}"#)]
    }

    fn echoes_marks(&self) -> bool {
        true
    }

    fn garbage(&self) -> Message {
        Message::text("{not json")
    }
}
