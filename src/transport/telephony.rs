//! The Twilio family: Telnyx, Plivo and Exotel media streams, with voicesim in the provider's
//! place. Each is Twilio's design (JSON events, base64 audio, the agent's `media`, `mark` and
//! `clear`) in its own spelling; a [`Dialect`] holds the differences and [`ProviderStream`]
//! builds and reads the messages. Sans-IO: text in, text out.
//!
//! ```
//! use voicesim::transport::telephony::{Dialect, ProviderStream};
//! use voicesim::transport::twilio::AgentMessage;
//!
//! let mut stream = ProviderStream::new(Dialect::Plivo, 7, Default::default());
//! assert!(stream.connected().is_none()); // Plivo opens with `start`
//! assert!(stream.start().contains(r#""streamId""#));
//! let clear = r#"{"event":"clearAudio","streamId":"x"}"#;
//! assert_eq!(Dialect::Plivo.parse(clear).unwrap(), AgentMessage::Clear);
//! ```

use std::collections::BTreeMap;

use base64::Engine as _;
use rand::{Rng, RngExt, SeedableRng};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

use super::twilio::{parse_agent_message, AgentEvents, AgentMessage, AGENT_EVENTS};
use super::{AgentEvent, ProtocolError};
use crate::audio::{Encoding, Frame, FRAME_MS};

/// A provider of the Twilio family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// snake_case, `stream_id` at the top level, PCMU at 8 kHz in 20 ms chunks.
    Telnyx,
    /// camelCase with numeric counters, no `connected`; the agent sends `playAudio`,
    /// `checkpoint` (answered `playedStream`) and `clearAudio` (answered `clearedAudio`).
    Plivo,
    /// `stream_sid`, raw PCM16 at 8 kHz in 100 ms chunks.
    Exotel,
}

impl Dialect {
    pub fn name(self) -> &'static str {
        match self {
            Dialect::Telnyx => "telnyx",
            Dialect::Plivo => "plivo",
            Dialect::Exotel => "exotel",
        }
    }

    /// How caller and agent audio are encoded on the wire.
    pub fn encoding(self) -> Encoding {
        match self {
            Dialect::Telnyx | Dialect::Plivo => Encoding::Mulaw,
            Dialect::Exotel => Encoding::Pcm16,
        }
    }

    /// Caller audio goes out in chunks this long.
    pub fn chunk_ms(self) -> u64 {
        match self {
            Dialect::Telnyx | Dialect::Plivo => 20,
            Dialect::Exotel => 100,
        }
    }

    fn stream_key(self) -> &'static str {
        match self {
            Dialect::Telnyx => "stream_id",
            Dialect::Plivo => "streamId",
            Dialect::Exotel => "stream_sid",
        }
    }

    fn sequence_key(self) -> &'static str {
        match self {
            Dialect::Plivo => "sequenceNumber",
            Dialect::Telnyx | Dialect::Exotel => "sequence_number",
        }
    }

    /// Reads one text frame from the agent: audio, a mark (a checkpoint, on Plivo) or clear.
    pub fn parse(self, text: &str) -> Result<AgentMessage, ProtocolError> {
        let events = match self {
            Dialect::Plivo => AgentEvents {
                media: "playAudio",
                mark: "checkpoint",
                clear: "clearAudio",
                mark_name: "/name",
            },
            Dialect::Telnyx | Dialect::Exotel => AGENT_EVENTS,
        };
        parse_agent_message(self.name(), text, &events)
    }
}

fn hex32(rng: &mut impl Rng) -> String {
    let b: [u8; 16] = rng.random();
    b.iter().map(|b| format!("{b:02x}")).collect()
}

/// One call's stream, seen from the provider's side.
#[derive(Debug, Clone)]
pub struct ProviderStream {
    pub dialect: Dialect,
    pub stream_id: String,
    pub call_id: String,
    pub account_id: String,
    /// Reach the agent in the start message (`custom_parameters`; Plivo's `extra_headers`).
    pub parameters: BTreeMap<String, String>,
    sequence: u64,
    chunk: u64,
}

impl ProviderStream {
    /// Ids are drawn from `seed`, so a rerun of a call sends the same ids.
    pub fn new(dialect: Dialect, seed: u64, parameters: BTreeMap<String, String>) -> Self {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let (stream_id, call_id, account_id) = match dialect {
            Dialect::Telnyx => (
                super::uuid(&mut rng),
                format!("v3:{}", hex32(&mut rng)),
                super::uuid(&mut rng),
            ),
            Dialect::Plivo => (
                super::uuid(&mut rng),
                super::uuid(&mut rng),
                format!(
                    "MA{}",
                    hex32(&mut rng)
                        .to_uppercase()
                        .chars()
                        .take(18)
                        .collect::<String>()
                ),
            ),
            Dialect::Exotel => (hex32(&mut rng), hex32(&mut rng), "voicesim".to_string()),
        };
        ProviderStream {
            dialect,
            stream_id,
            call_id,
            account_id,
            parameters,
            sequence: 0,
            chunk: 0,
        }
    }

    /// Telnyx and Exotel count as strings, Plivo as numbers.
    fn next_sequence(&mut self) -> Value {
        let n = self.sequence;
        self.sequence += 1;
        match self.dialect {
            Dialect::Telnyx => json!((n + 1).to_string()),
            Dialect::Plivo => json!(n),
            Dialect::Exotel => json!(n + 1),
        }
    }

    /// An event with the sequence number and stream id every message carries.
    fn event(&mut self, event: &str, body: Value) -> String {
        let mut message = json!({
            "event": event,
            self.dialect.sequence_key(): self.next_sequence(),
            self.dialect.stream_key(): self.stream_id,
        });
        if let (Some(m), Value::Object(body)) = (message.as_object_mut(), body) {
            m.extend(body);
        }
        message.to_string()
    }

    /// The first message on the socket, where the dialect has one (Plivo has none).
    pub fn connected(&self) -> Option<String> {
        match self.dialect {
            Dialect::Telnyx => Some(json!({"event": "connected", "version": "1.0.0"}).to_string()),
            Dialect::Exotel => Some(json!({"event": "connected"}).to_string()),
            Dialect::Plivo => None,
        }
    }

    pub fn start(&mut self) -> String {
        let body = match self.dialect {
            Dialect::Telnyx => json!({"start": {
                "user_id": self.account_id,
                "call_control_id": self.call_id,
                "client_state": "",
                "from": "+15550100",
                "to": "+15550199",
                "custom_parameters": self.parameters,
                "media_format": {"encoding": "PCMU", "sample_rate": 8000, "channels": 1},
            }}),
            Dialect::Plivo => json!({
                "start": {
                    "callId": self.call_id,
                    "streamId": self.stream_id,
                    "accountId": self.account_id,
                    "tracks": ["inbound"],
                    "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000},
                },
                "extra_headers": serde_json::to_string(&self.parameters).unwrap_or_default(),
            }),
            Dialect::Exotel => json!({"start": {
                "stream_sid": self.stream_id,
                "call_sid": self.call_id,
                "account_sid": self.account_id,
                "from": "+15550100",
                "to": "+15550199",
                "custom_parameters": self.parameters,
                "media_format": {"encoding": "base64", "sample_rate": "8000", "bit_rate": "128kbps"},
            }}),
        };
        self.event("start", body)
    }

    /// One chunk of the caller's audio, already encoded; `timestamp_ms` counts from the start.
    pub fn media(&mut self, timestamp_ms: u64, audio: &[u8]) -> String {
        self.chunk += 1;
        let payload = base64::engine::general_purpose::STANDARD.encode(audio);
        let media = match self.dialect {
            Dialect::Telnyx => json!({"track": "inbound", "chunk": self.chunk.to_string(),
                                      "timestamp": timestamp_ms.to_string(), "payload": payload}),
            Dialect::Plivo => json!({"track": "inbound", "chunk": self.chunk,
                                     "timestamp": timestamp_ms.to_string(), "payload": payload}),
            Dialect::Exotel => json!({"chunk": self.chunk,
                                      "timestamp": timestamp_ms.to_string(), "payload": payload}),
        };
        self.event("media", json!({ "media": media }))
    }

    /// A key press on the caller's phone.
    pub fn dtmf(&mut self, digit: char) -> String {
        let digit = digit.to_string();
        let dtmf = match self.dialect {
            Dialect::Telnyx => json!({ "digit": digit }),
            Dialect::Plivo => json!({"track": "inbound", "digit": digit}),
            Dialect::Exotel => json!({"duration": "250", "digit": digit}),
        };
        self.event("dtmf", json!({ "dtmf": dtmf }))
    }

    /// The answer to an agent's mark (Plivo: checkpoint) once its audio has played.
    pub fn mark(&mut self, name: &str) -> String {
        match self.dialect {
            Dialect::Plivo => self.event("playedStream", json!({ "name": name })),
            Dialect::Telnyx | Dialect::Exotel => {
                self.event("mark", json!({"mark": {"name": name}}))
            }
        }
    }

    /// The answer to the agent's clear, where the dialect has one (Plivo).
    pub fn cleared(&mut self) -> Option<String> {
        (self.dialect == Dialect::Plivo).then(|| self.event("clearedAudio", json!({})))
    }

    /// The last message before the socket closes (Plivo just closes).
    pub fn stop(&mut self) -> Option<String> {
        let body = match self.dialect {
            Dialect::Telnyx => {
                json!({"stop": {"user_id": self.account_id, "call_control_id": self.call_id}})
            }
            Dialect::Exotel => json!({"stop": {"call_sid": self.call_id,
                                               "account_sid": self.account_id, "reason": "callended"}}),
            Dialect::Plivo => return None,
        };
        Some(self.event("stop", body))
    }
}

/// The adapter for a Twilio-family provider: its encoding at 8 kHz, chunked as it chunks.
pub struct Telephony {
    stream: ProviderStream,
    /// Encoded caller audio not sent yet (Exotel sends 100 ms at a time) and its start.
    pending: Vec<u8>,
    pending_since_ms: u64,
}

impl Telephony {
    pub fn new(dialect: Dialect, seed: u64, parameters: BTreeMap<String, String>) -> Self {
        Telephony {
            stream: ProviderStream::new(dialect, seed, parameters),
            pending: Vec::new(),
            pending_since_ms: 0,
        }
    }

    fn dialect(&self) -> Dialect {
        self.stream.dialect
    }
}

impl super::Adapter for Telephony {
    fn name(&self) -> &'static str {
        self.dialect().name()
    }

    fn rate(&self) -> u32 {
        8_000
    }

    fn opening(&mut self) -> Vec<Message> {
        let connected = self.stream.connected();
        connected
            .into_iter()
            .chain([self.stream.start()])
            .map(Message::text)
            .collect()
    }

    fn frame(&mut self, frame: &Frame, elapsed_ms: u64) -> Vec<Message> {
        if self.pending.is_empty() {
            self.pending_since_ms = elapsed_ms;
        }
        self.pending
            .extend(self.dialect().encoding().encode(&frame.samples));
        if elapsed_ms + FRAME_MS as u64 - self.pending_since_ms < self.dialect().chunk_ms() {
            return Vec::new();
        }
        let audio = std::mem::take(&mut self.pending);
        vec![Message::text(
            self.stream.media(self.pending_since_ms, &audio),
        )]
    }

    fn receive(&mut self, message: &Message) -> Result<Vec<AgentEvent>, ProtocolError> {
        let Some(text) = super::text_frame(self.name(), message)? else {
            return Ok(Vec::new());
        };
        Ok(vec![match self.dialect().parse(text)? {
            AgentMessage::Media { payload } => {
                AgentEvent::Audio(self.dialect().encoding().decode(&payload))
            }
            AgentMessage::Mark { name } => AgentEvent::Mark(name),
            AgentMessage::Clear => AgentEvent::Clear,
        }])
    }

    fn cleared(&mut self) -> Vec<Message> {
        self.stream
            .cleared()
            .map(Message::text)
            .into_iter()
            .collect()
    }

    fn mark_played(&mut self, name: &str) -> Vec<Message> {
        vec![Message::text(self.stream.mark(name))]
    }

    fn dtmf(&mut self, digit: char) -> Option<Vec<Message>> {
        Some(vec![Message::text(self.stream.dtmf(digit))])
    }

    fn closing(&mut self) -> Vec<Message> {
        let mut out = Vec::new();
        if !self.pending.is_empty() {
            let audio = std::mem::take(&mut self.pending);
            out.push(Message::text(
                self.stream.media(self.pending_since_ms, &audio),
            ));
        }
        out.extend(self.stream.stop().map(Message::text));
        out
    }
}
