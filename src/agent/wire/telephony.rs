//! A Telnyx, Plivo or Exotel agent: the provider's media events in, its spelling of media,
//! mark (Plivo: checkpoint) and clear out.

use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

use super::{fail, json_of, parameters_of, unb64, AgentWire, FromCaller};
use crate::transport::telephony::Dialect;
use crate::transport::ProtocolError;

pub(super) struct TelephonyAgent {
    dialect: Dialect,
    stream_id: String,
    marks: u64,
}

impl TelephonyAgent {
    pub(super) fn new(dialect: Dialect) -> Self {
        TelephonyAgent {
            dialect,
            stream_id: String::new(),
            marks: 0,
        }
    }

    /// The agent's message with the stream id where the dialect puts it.
    fn message(&self, event: &str, body: Value) -> Message {
        let mut m = json!({ "event": event });
        let key = match self.dialect {
            Dialect::Telnyx => None, // Telnyx knows the stream by its socket
            Dialect::Plivo => Some("streamId"),
            Dialect::Exotel => Some("stream_sid"),
        };
        if let Some(o) = m.as_object_mut() {
            if let Some(key) = key {
                o.insert(key.into(), json!(self.stream_id));
            }
            if let Value::Object(body) = body {
                o.extend(body);
            }
        }
        Message::text(m.to_string())
    }
}

impl AgentWire for TelephonyAgent {
    fn rate(&self) -> u32 {
        8_000
    }

    fn receive(&mut self, message: &Message) -> Result<Vec<FromCaller>, ProtocolError> {
        let p = self.dialect.name();
        let Some(v) = json_of(p, message)? else {
            return Ok(Vec::new());
        };
        let text = |pointer: &str| {
            v.pointer(pointer)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        };
        Ok(match v.get("event").and_then(Value::as_str) {
            Some("connected") | Some("clearedAudio") => Vec::new(),
            Some("start") => {
                let (stream, parameters) = match self.dialect {
                    Dialect::Telnyx => (
                        "/stream_id",
                        parameters_of(v.pointer("/start/custom_parameters")),
                    ),
                    Dialect::Exotel => (
                        "/start/stream_sid",
                        parameters_of(v.pointer("/start/custom_parameters")),
                    ),
                    Dialect::Plivo => {
                        let headers = v
                            .get("extra_headers")
                            .and_then(Value::as_str)
                            .unwrap_or("{}");
                        let headers: Value = serde_json::from_str(headers).unwrap_or(Value::Null);
                        ("/start/streamId", parameters_of(Some(&headers)))
                    }
                };
                self.stream_id = text(stream);
                vec![FromCaller::Start { parameters }]
            }
            Some("media") => {
                let payload = unb64(
                    p,
                    "media.payload",
                    v.pointer("/media/payload").and_then(Value::as_str),
                )?;
                vec![FromCaller::Audio(self.dialect.encoding().decode(&payload))]
            }
            Some("mark") => vec![FromCaller::MarkPlayed(text("/mark/name"))],
            Some("playedStream") => vec![FromCaller::MarkPlayed(text("/name"))],
            Some("dtmf") => vec![FromCaller::Dtmf(text("/dtmf/digit"))],
            Some("stop") => vec![FromCaller::Stop],
            other => return Err(fail(p, format!("unknown event {other:?} from {p}"))),
        })
    }

    fn audio(&mut self, samples: &[f32]) -> Vec<Message> {
        let payload = super::b64(&self.dialect.encoding().encode(samples));
        vec![match self.dialect {
            Dialect::Plivo => self.message(
                "playAudio",
                json!({"media": {"contentType": "audio/x-mulaw", "sampleRate": 8000, "payload": payload}}),
            ),
            Dialect::Telnyx | Dialect::Exotel => {
                self.message("media", json!({"media": {"payload": payload}}))
            }
        }]
    }

    fn reply_sent(&mut self, _text: &str) -> Vec<Message> {
        self.marks += 1;
        let name = format!("reply-{}", self.marks);
        vec![match self.dialect {
            Dialect::Plivo => self.message("checkpoint", json!({ "name": name })),
            Dialect::Telnyx | Dialect::Exotel => {
                self.message("mark", json!({"mark": {"name": name}}))
            }
        }]
    }

    fn clear(&mut self) -> Vec<Message> {
        vec![match self.dialect {
            Dialect::Plivo => self.message("clearAudio", json!({})),
            Dialect::Telnyx | Dialect::Exotel => self.message("clear", json!({})),
        }]
    }

    fn echoes_marks(&self) -> bool {
        true
    }

    fn garbage(&self) -> Message {
        Message::text(r#"{"event":"wave","at":"you"}"#)
    }
}
