//! Twilio Media Streams, with voicesim in Twilio's place: the messages a Twilio call sends to
//! the agent's websocket, and the ones a Twilio agent sends back. Sans-IO: text in, text out.
//!
//! ```
//! use voicesim::transport::twilio::{AgentMessage, TwilioStream};
//!
//! let mut stream = TwilioStream::new(7, Default::default());
//! let first = [stream.connected(), stream.start()];
//! let media = stream.media(0, &[0xFF; 160]); // 20 ms of mu-law silence
//! assert!(media.contains(r#""chunk":"1""#));
//! let reply = r#"{"event":"clear","streamSid":"MZ00"}"#;
//! assert_eq!(TwilioStream::parse(reply).unwrap(), AgentMessage::Clear);
//! ```

use std::collections::BTreeMap;

use base64::Engine as _;
use rand::{Rng, RngExt, SeedableRng};
use serde_json::{json, Value};

use super::ProtocolError;
use tokio_tungstenite::tungstenite::Message;

const PROTOCOL: &str = "twilio";

/// One call's stream, seen from Twilio's side: ids, sequence numbers, chunk counter.
#[derive(Debug, Clone)]
pub struct TwilioStream {
    pub stream_sid: String,
    pub account_sid: String,
    pub call_sid: String,
    /// Reaches the agent in `start.customParameters`: session parameters, test-mode flags.
    pub custom_parameters: BTreeMap<String, String>,
    sequence: u64,
    chunk: u64,
}

/// What a Twilio agent sends on the stream.
#[derive(Debug, Clone, PartialEq)]
pub enum AgentMessage {
    /// Audio to play to the caller: G.711 mu-law, 8 kHz.
    Media { payload: Vec<u8> },
    /// Echo this name back once the audio queued before it has played.
    Mark { name: String },
    /// Drop the queued audio and echo every pending mark now (barge-in).
    Clear,
}

/// `prefix` + 32 hex digits, as Twilio's ids look.
fn sid(prefix: &str, rng: &mut impl Rng) -> String {
    let bytes: [u8; 16] = rng.random();
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("{prefix}{hex}")
}

impl TwilioStream {
    /// Ids are drawn from `seed`, so a rerun of a call sends the same ids.
    pub fn new(seed: u64, custom_parameters: BTreeMap<String, String>) -> Self {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        TwilioStream {
            stream_sid: sid("MZ", &mut rng),
            account_sid: sid("AC", &mut rng),
            call_sid: sid("CA", &mut rng),
            custom_parameters,
            sequence: 0,
            chunk: 0,
        }
    }

    fn next_sequence(&mut self) -> String {
        self.sequence += 1;
        self.sequence.to_string()
    }

    /// The first message on the socket.
    pub fn connected(&self) -> String {
        json!({"event": "connected", "protocol": "Call", "version": "1.0.0"}).to_string()
    }

    pub fn start(&mut self) -> String {
        json!({
            "event": "start",
            "sequenceNumber": self.next_sequence(),
            "streamSid": self.stream_sid,
            "start": {
                "streamSid": self.stream_sid,
                "accountSid": self.account_sid,
                "callSid": self.call_sid,
                "tracks": ["inbound"],
                "customParameters": self.custom_parameters,
                "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
            },
        })
        .to_string()
    }

    /// One frame of the caller's audio (mu-law bytes); `timestamp_ms` counts from the start.
    pub fn media(&mut self, timestamp_ms: u64, mulaw: &[u8]) -> String {
        // Fifty of these a second per call: written straight from borrowed fields, where a
        // `json!` value would allocate every key and value first.
        #[derive(serde::Serialize)]
        #[serde(rename_all = "camelCase")]
        struct Media<'a> {
            event: &'static str,
            sequence_number: String,
            stream_sid: &'a str,
            media: Payload,
        }
        #[derive(serde::Serialize)]
        struct Payload {
            track: &'static str,
            chunk: String,
            timestamp: String,
            payload: String,
        }
        self.chunk += 1;
        let message = Media {
            event: "media",
            sequence_number: self.next_sequence(),
            stream_sid: &self.stream_sid,
            media: Payload {
                track: "inbound",
                chunk: self.chunk.to_string(),
                timestamp: timestamp_ms.to_string(),
                payload: base64::engine::general_purpose::STANDARD.encode(mulaw),
            },
        };
        // Strings and a static shape: serializing cannot fail.
        serde_json::to_string(&message).unwrap_or_default()
    }

    /// A key press on the caller's phone.
    pub fn dtmf(&mut self, digit: char) -> String {
        json!({
            "event": "dtmf",
            "sequenceNumber": self.next_sequence(),
            "streamSid": self.stream_sid,
            "dtmf": {"track": "inbound_track", "digit": digit.to_string()},
        })
        .to_string()
    }

    /// The echo of an agent's mark, sent when its audio has played.
    pub fn mark(&mut self, name: &str) -> String {
        json!({
            "event": "mark",
            "sequenceNumber": self.next_sequence(),
            "streamSid": self.stream_sid,
            "mark": {"name": name},
        })
        .to_string()
    }

    /// The last message before the socket closes.
    pub fn stop(&mut self) -> String {
        json!({
            "event": "stop",
            "sequenceNumber": self.next_sequence(),
            "streamSid": self.stream_sid,
            "stop": {"accountSid": self.account_sid, "callSid": self.call_sid},
        })
        .to_string()
    }

    /// Reads one text frame from the agent; anything but media, mark or clear is an error.
    pub fn parse(text: &str) -> Result<AgentMessage, ProtocolError> {
        parse_agent_message(PROTOCOL, text, &AGENT_EVENTS)
    }
}

/// How an agent of the Twilio family spells its three messages.
pub(super) struct AgentEvents {
    pub media: &'static str,
    pub mark: &'static str,
    pub clear: &'static str,
    /// Where a mark's name is (a JSON pointer).
    pub mark_name: &'static str,
}

/// Twilio's spelling, which Telnyx and Exotel share.
pub(super) const AGENT_EVENTS: AgentEvents = AgentEvents {
    media: "media",
    mark: "mark",
    clear: "clear",
    mark_name: "/mark/name",
};

/// Reads one text frame from an agent of the Twilio family (Twilio, Telnyx, Plivo, Exotel):
/// base64 audio in `media.payload`, a mark, or clear, each as `events` spells it.
pub(super) fn parse_agent_message(
    protocol: &'static str,
    text: &str,
    events: &AgentEvents,
) -> Result<AgentMessage, ProtocolError> {
    let fail = |message: String| ProtocolError { protocol, message };
    let value: Value = serde_json::from_str(text).map_err(|e| fail(format!("not JSON: {e}")))?;
    let event = value
        .get("event")
        .and_then(Value::as_str)
        .ok_or_else(|| fail("a message without \"event\"".into()))?;
    let string = |pointer: &str| {
        value
            .pointer(pointer)
            .and_then(Value::as_str)
            .ok_or_else(|| {
                fail(format!(
                    "{event} without {}",
                    pointer.trim_start_matches('/').replace('/', ".")
                ))
            })
    };
    let AgentEvents {
        media,
        mark,
        clear,
        mark_name,
    } = events;
    if event == *media {
        let payload = base64::engine::general_purpose::STANDARD
            .decode(string("/media/payload")?)
            .map_err(|e| fail(format!("media.payload is not base64: {e}")))?;
        Ok(AgentMessage::Media { payload })
    } else if event == *mark {
        Ok(AgentMessage::Mark {
            name: string(mark_name)?.into(),
        })
    } else if event == *clear {
        Ok(AgentMessage::Clear)
    } else {
        Err(fail(format!(
            "unknown event {event:?}; a {protocol} agent sends {media}, {mark} or {clear}"
        )))
    }
}

/// The Twilio adapter: mu-law at 8 kHz in `media` events, marks echoed.
pub struct Twilio {
    stream: TwilioStream,
}

impl Twilio {
    pub fn new(seed: u64, custom_parameters: BTreeMap<String, String>) -> Self {
        Twilio {
            stream: TwilioStream::new(seed, custom_parameters),
        }
    }
}

impl super::Adapter for Twilio {
    fn name(&self) -> &'static str {
        PROTOCOL
    }

    fn rate(&self) -> u32 {
        8_000
    }

    fn opening(&mut self) -> Vec<Message> {
        vec![
            Message::text(self.stream.connected()),
            Message::text(self.stream.start()),
        ]
    }

    fn frame(&mut self, frame: &crate::audio::Frame, elapsed_ms: u64) -> Vec<Message> {
        let payload = crate::audio::Encoding::Mulaw.encode(&frame.samples);
        vec![Message::text(self.stream.media(elapsed_ms, &payload))]
    }

    fn receive(&mut self, message: &Message) -> Result<Vec<super::AgentEvent>, ProtocolError> {
        use super::AgentEvent;
        let Some(text) = super::text_frame(PROTOCOL, message)? else {
            return Ok(Vec::new());
        };
        Ok(vec![match TwilioStream::parse(text)? {
            AgentMessage::Media { payload } => {
                AgentEvent::Audio(crate::audio::Encoding::Mulaw.decode(&payload))
            }
            AgentMessage::Mark { name } => AgentEvent::Mark(name),
            AgentMessage::Clear => AgentEvent::Clear,
        }])
    }

    fn mark_played(&mut self, name: &str) -> Vec<Message> {
        vec![Message::text(self.stream.mark(name))]
    }

    fn dtmf(&mut self, digit: char) -> Option<Vec<Message>> {
        Some(vec![Message::text(self.stream.dtmf(digit))])
    }

    fn closing(&mut self) -> Vec<Message> {
        vec![Message::text(self.stream.stop())]
    }
}
