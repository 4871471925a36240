//! Genesys Cloud AudioHook, with voicesim in Genesys' place (the client): JSON control
//! messages in text frames, PCMU 8 kHz audio of the customer's (external) channel in binary
//! frames. Genesys sends `open` and streams audio once the agent answers `opened`; it pings
//! (the agent answers `pong`), may `pause`/`resume` (hold), sends key presses as `dtmf`, and
//! ends with `close`, answered `closed`. The agent stops playout with an `event` carrying a
//! `barge_in` entity and ends the session with `disconnect`.
//!
//! ```
//! use voicesim::transport::audiohook::Session;
//!
//! let mut session = Session::new(3, Default::default());
//! let open: serde_json::Value = serde_json::from_str(&session.open()).unwrap();
//! assert_eq!(open["type"], "open");
//! assert_eq!(open["parameters"]["media"][0]["format"], "PCMU");
//! ```

use std::collections::BTreeMap;

use rand::SeedableRng;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

use super::{AgentEvent, ProtocolError};
use crate::audio::{Encoding, Frame, FRAME_MS};

const PROTOCOL: &str = "genesys";
/// Genesys pings this often.
const PING_EVERY_MS: u64 = 5_000;

/// One AudioHook session, client side: sequence numbers, the position in the audio.
#[derive(Debug, Clone)]
pub struct Session {
    pub id: String,
    pub conversation_id: String,
    /// Reach the agent as the open message's `inputVariables`.
    pub input_variables: BTreeMap<String, String>,
    seq: u64,
    server_seq: u64,
    position_ms: u64,
}

/// What an AudioHook server sends in a text frame.
#[derive(Debug, Clone, PartialEq)]
pub enum ServerMessage {
    Opened,
    /// The caller's audio should stop playing: an `event` with a `barge_in` entity.
    BargeIn,
    /// The agent ends the session.
    Disconnect {
        reason: String,
    },
    Error {
        message: String,
    },
    /// `pong`, `paused`, `resumed`, `closed`, other events: nothing for the call to do.
    Acknowledged(String),
}

impl Session {
    /// Ids are drawn from `seed`.
    pub fn new(seed: u64, input_variables: BTreeMap<String, String>) -> Self {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        Session {
            id: super::uuid(&mut rng),
            conversation_id: super::uuid(&mut rng),
            input_variables,
            seq: 0,
            server_seq: 0,
            position_ms: 0,
        }
    }

    /// The audio position as AudioHook writes it: an ISO 8601 duration.
    pub fn position(&self) -> String {
        format!(
            "PT{}.{:03}S",
            self.position_ms / 1000,
            self.position_ms % 1000
        )
    }

    /// `ms` more of audio sent.
    pub fn advance(&mut self, ms: u64) {
        self.position_ms += ms;
    }

    fn message(&mut self, kind: &str, parameters: Value) -> String {
        self.seq += 1;
        json!({
            "version": "2",
            "type": kind,
            "seq": self.seq,
            "serverseq": self.server_seq,
            "id": self.id,
            "position": self.position(),
            "parameters": parameters,
        })
        .to_string()
    }

    pub fn open(&mut self) -> String {
        let parameters = json!({
            "organizationId": "00000000-0000-4000-8000-000000000000",
            "conversationId": self.conversation_id,
            "participant": {"id": self.conversation_id, "ani": "+15550100",
                            "aniName": "voicesim", "dnis": "+15550199"},
            "media": [{"type": "audio", "format": "PCMU", "channels": ["external"], "rate": 8000}],
            "language": "en-US",
            "customConfig": {},
            "inputVariables": self.input_variables,
        });
        self.message("open", parameters)
    }

    pub fn ping(&mut self) -> String {
        self.message("ping", json!({}))
    }

    pub fn dtmf(&mut self, digit: char) -> String {
        self.message("dtmf", json!({ "digit": digit.to_string() }))
    }

    /// Hold: audio stops until [`Session::resume`].
    pub fn pause(&mut self) -> String {
        self.message("pause", json!({"reason": "hold"}))
    }

    pub fn resume(&mut self) -> String {
        self.message("resume", json!({}))
    }

    pub fn close(&mut self) -> String {
        self.message("close", json!({"reason": "end"}))
    }

    /// Reads one text frame from the agent.
    pub fn parse(&mut self, text: &str) -> Result<ServerMessage, ProtocolError> {
        let fail = |message: String| ProtocolError {
            protocol: PROTOCOL,
            message,
        };
        let v: Value = serde_json::from_str(text).map_err(|e| fail(format!("not JSON: {e}")))?;
        let kind = v
            .get("type")
            .and_then(Value::as_str)
            .ok_or_else(|| fail("a message without \"type\"".into()))?;
        if let Some(seq) = v.get("seq").and_then(Value::as_u64) {
            self.server_seq = seq;
        }
        let parameter = |name: &str| {
            v.pointer(&format!("/parameters/{name}"))
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        };
        Ok(match kind {
            "opened" => ServerMessage::Opened,
            "disconnect" => ServerMessage::Disconnect {
                reason: parameter("reason"),
            },
            "error" => ServerMessage::Error {
                message: parameter("message"),
            },
            "event" => {
                let barge_in = v
                    .pointer("/parameters/entities")
                    .and_then(Value::as_array)
                    .is_some_and(|es| {
                        es.iter()
                            .any(|e| e.get("type").and_then(Value::as_str) == Some("barge_in"))
                    });
                if barge_in {
                    ServerMessage::BargeIn
                } else {
                    ServerMessage::Acknowledged(kind.into())
                }
            }
            "pong" | "paused" | "resumed" | "closed" | "updated" => {
                ServerMessage::Acknowledged(kind.into())
            }
            other => {
                return Err(fail(format!(
                    "unknown message type {other:?}; an AudioHook server sends opened, pong, \
                     event, disconnect, closed, paused, resumed or error"
                )))
            }
        })
    }
}

/// The AudioHook adapter: audio flows once the agent has answered `opened`.
pub struct AudioHook {
    session: Session,
    opened: bool,
    last_ping_ms: u64,
}

impl AudioHook {
    pub fn new(seed: u64, input_variables: BTreeMap<String, String>) -> Self {
        AudioHook {
            session: Session::new(seed, input_variables),
            opened: false,
            last_ping_ms: 0,
        }
    }
}

impl super::Adapter for AudioHook {
    fn name(&self) -> &'static str {
        PROTOCOL
    }

    fn rate(&self) -> u32 {
        8_000
    }

    fn opening(&mut self) -> Vec<Message> {
        vec![Message::text(self.session.open())]
    }

    fn frame(&mut self, frame: &Frame, elapsed_ms: u64) -> Vec<Message> {
        // Before `opened` Genesys sends nothing: the caller's line is not connected yet.
        if !self.opened {
            return Vec::new();
        }
        let mut out = vec![Message::binary(Encoding::Mulaw.encode(&frame.samples))];
        self.session.advance(FRAME_MS as u64);
        if elapsed_ms >= self.last_ping_ms + PING_EVERY_MS {
            self.last_ping_ms = elapsed_ms;
            out.push(Message::text(self.session.ping()));
        }
        out
    }

    fn receive(&mut self, message: &Message) -> Result<Vec<AgentEvent>, ProtocolError> {
        let text = match message {
            Message::Binary(bytes) => {
                return Ok(vec![AgentEvent::Audio(Encoding::Mulaw.decode(bytes))])
            }
            Message::Text(text) => text,
            _ => return Ok(Vec::new()),
        };
        Ok(match self.session.parse(text)? {
            ServerMessage::Opened => {
                self.opened = true;
                Vec::new()
            }
            ServerMessage::BargeIn => vec![AgentEvent::Clear],
            ServerMessage::Disconnect { .. } => vec![AgentEvent::Hangup],
            ServerMessage::Error { message } => vec![AgentEvent::Error(message)],
            ServerMessage::Acknowledged(_) => Vec::new(),
        })
    }

    fn dtmf(&mut self, digit: char) -> Option<Vec<Message>> {
        Some(vec![Message::text(self.session.dtmf(digit))])
    }

    fn closing(&mut self) -> Vec<Message> {
        vec![Message::text(self.session.close())]
    }
}
