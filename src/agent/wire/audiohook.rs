//! A Genesys AudioHook server: answers open, ping, pause, resume and close as the protocol
//! asks; PCMU audio in binary frames both ways; a barge-in is an `event`, hanging up a
//! `disconnect`.

use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

use super::{fail, parameters_of, AgentWire, FromCaller};
use crate::audio::Encoding;
use crate::transport::ProtocolError;

#[derive(Default)]
pub(super) struct AudioHookAgent {
    id: String,
    seq: u64,
    client_seq: u64,
    position: String,
    answers: Vec<Message>,
}

impl AudioHookAgent {
    fn message(&mut self, kind: &str, parameters: Value) -> Message {
        self.seq += 1;
        Message::text(
            json!({
                "version": "2",
                "type": kind,
                "seq": self.seq,
                "clientseq": self.client_seq,
                "id": self.id,
                "position": self.position,
                "parameters": parameters,
            })
            .to_string(),
        )
    }
}

impl AgentWire for AudioHookAgent {
    fn rate(&self) -> u32 {
        8_000
    }

    fn receive(&mut self, message: &Message) -> Result<Vec<FromCaller>, ProtocolError> {
        const P: &str = "genesys";
        let Some(v) = super::json_of(P, message)? else {
            return Ok(match message {
                Message::Binary(bytes) => vec![FromCaller::Audio(Encoding::Mulaw.decode(bytes))],
                _ => Vec::new(),
            });
        };
        self.client_seq = v
            .get("seq")
            .and_then(Value::as_u64)
            .unwrap_or(self.client_seq);
        if let Some(position) = v.get("position").and_then(Value::as_str) {
            self.position = position.into();
        }
        Ok(match v.get("type").and_then(Value::as_str) {
            Some("open") => {
                self.id = v
                    .get("id")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .into();
                let media = v
                    .pointer("/parameters/media/0")
                    .cloned()
                    .unwrap_or(Value::Null);
                let opened =
                    self.message("opened", json!({"startPaused": false, "media": [media]}));
                self.answers.push(opened);
                vec![FromCaller::Start {
                    parameters: parameters_of(v.pointer("/parameters/inputVariables")),
                }]
            }
            Some("ping") => {
                let pong = self.message("pong", json!({}));
                self.answers.push(pong);
                Vec::new()
            }
            Some("pause") => {
                let paused = self.message("paused", json!({}));
                self.answers.push(paused);
                Vec::new()
            }
            Some("resume") => {
                let resumed = self.message("resumed", json!({}));
                self.answers.push(resumed);
                Vec::new()
            }
            Some("dtmf") => vec![FromCaller::Dtmf(
                v.pointer("/parameters/digit")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .into(),
            )],
            Some("close") => {
                let closed = self.message("closed", json!({}));
                self.answers.push(closed);
                vec![FromCaller::Stop]
            }
            Some("update") | Some("error") => Vec::new(),
            other => {
                return Err(fail(
                    P,
                    format!("unknown message type {other:?} from Genesys"),
                ))
            }
        })
    }

    fn answers(&mut self) -> Vec<Message> {
        std::mem::take(&mut self.answers)
    }

    fn audio(&mut self, samples: &[f32]) -> Vec<Message> {
        vec![Message::binary(Encoding::Mulaw.encode(samples))]
    }

    fn reply_sent(&mut self, _text: &str) -> Vec<Message> {
        Vec::new()
    }

    fn clear(&mut self) -> Vec<Message> {
        vec![self.message(
            "event",
            json!({"entities": [{"type": "barge_in", "data": {}}]}),
        )]
    }

    fn hangup(&mut self) -> Vec<Message> {
        vec![self.message(
            "disconnect",
            json!({"reason": "completed", "outputVariables": {"action": "finished"}}),
        )]
    }

    fn garbage(&self) -> Message {
        Message::text(r#"{"version":"2","type":"dance"}"#)
    }
}
