//! The agent side of each wire protocol: what a Twilio, raw-PCM or OpenAI Realtime agent reads
//! from its caller and sends back. The client side lives in `transport/`; this is its mirror,
//! so the reference agent can answer every adapter voicesim has.

mod audiohook;
mod pipecat;
mod telephony;
mod vonage;

use std::collections::BTreeMap;

use base64::Engine as _;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

use crate::audio::Encoding;
use crate::transport::{Protocol, ProtocolError};

/// What the caller's side sent, whatever the protocol.
#[derive(Debug, Clone, PartialEq)]
pub enum FromCaller {
    /// The call is set up; the agent may speak. Twilio's `customParameters` come along.
    Start {
        parameters: BTreeMap<String, String>,
    },
    /// Caller audio at the wire rate.
    Audio(Vec<f32>),
    /// The caller's turn is over (OpenAI Realtime without server VAD: commit + response.create).
    EndOfTurn,
    /// The caller's side played the audio before this mark (Twilio).
    MarkPlayed(String),
    /// A key press.
    Dtmf(String),
    /// The caller hangs up.
    Stop,
}

/// One protocol, agent side.
pub trait AgentWire: Send {
    /// The rate of audio on the wire, both ways.
    fn rate(&self) -> u32;
    /// Sent as soon as the socket is open.
    fn opening(&mut self) -> Vec<Message> {
        Vec::new()
    }
    fn receive(&mut self, message: &Message) -> Result<Vec<FromCaller>, ProtocolError>;
    /// What the protocol answers to the caller's last message by itself (AudioHook's
    /// `opened`, `pong`, `closed`), sent before anything else.
    fn answers(&mut self) -> Vec<Message> {
        Vec::new()
    }
    /// Agent audio to play to the caller.
    fn audio(&mut self, samples: &[f32]) -> Vec<Message>;
    /// The reply `text` has been sent in full.
    fn reply_sent(&mut self, text: &str) -> Vec<Message>;
    /// The caller barged in: tell the caller's side to drop what it has queued.
    fn clear(&mut self) -> Vec<Message>;
    /// The agent answers what its STT heard (only OpenAI Realtime reports it, as the input
    /// transcription).
    fn heard(&mut self, _text: &str) -> Vec<Message> {
        Vec::new()
    }
    /// The agent's VAD heard the caller start (only OpenAI Realtime reports it).
    fn speech_started(&mut self, _at_ms: f64) -> Vec<Message> {
        Vec::new()
    }
    /// The agent ends the call.
    fn hangup(&mut self) -> Vec<Message> {
        Vec::new()
    }
    /// The caller's side says when its turn ends ([`FromCaller::EndOfTurn`]); the agent's own
    /// endpointer then only notices barge-ins.
    fn caller_ends_turns(&self) -> bool {
        false
    }
    /// Whether the agent waits for the echo of its last mark before hanging up.
    fn echoes_marks(&self) -> bool {
        false
    }
    /// A message that breaks the protocol (the `--garbage` fault).
    fn garbage(&self) -> Message;
}

/// The agent side of `protocol`; `rate` applies where the protocol lets it vary.
pub fn for_protocol(protocol: Protocol, rate: u32) -> Box<dyn AgentWire> {
    use crate::transport::telephony::Dialect;
    match protocol {
        Protocol::Twilio => Box::new(TwilioAgent::default()),
        Protocol::Telnyx => Box::new(telephony::TelephonyAgent::new(Dialect::Telnyx)),
        Protocol::Plivo => Box::new(telephony::TelephonyAgent::new(Dialect::Plivo)),
        Protocol::Exotel => Box::new(telephony::TelephonyAgent::new(Dialect::Exotel)),
        Protocol::Vonage => Box::new(vonage::VonageAgent { rate, marks: 0 }),
        Protocol::Pipecat => Box::new(pipecat::PipecatAgent {
            rate,
            frames: 0,
            caller_rate: None,
        }),
        Protocol::Genesys => Box::new(audiohook::AudioHookAgent::default()),
        Protocol::RawPcm => Box::new(RawPcmAgent { rate }),
        Protocol::OpenaiRealtime => Box::new(RealtimeAgent::default()),
    }
}

fn fail(protocol: &'static str, message: String) -> ProtocolError {
    ProtocolError { protocol, message }
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn unb64(
    protocol: &'static str,
    field: &str,
    text: Option<&str>,
) -> Result<Vec<u8>, ProtocolError> {
    let text = text.ok_or_else(|| fail(protocol, format!("no {field}")))?;
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .map_err(|e| fail(protocol, format!("{field} is not base64: {e}")))
}

/// A JSON object's members as session parameters (strings as they are, the rest as JSON).
fn parameters_of(object: Option<&Value>) -> BTreeMap<String, String> {
    object
        .and_then(Value::as_object)
        .map(|o| {
            o.iter()
                .map(|(k, v)| (k.clone(), v.as_str().map_or(v.to_string(), str::to_string)))
                .collect()
        })
        .unwrap_or_default()
}

fn json_of(protocol: &'static str, message: &Message) -> Result<Option<Value>, ProtocolError> {
    match message {
        Message::Text(text) => serde_json::from_str(text)
            .map(Some)
            .map_err(|e| fail(protocol, format!("not JSON: {e}"))),
        _ => Ok(None),
    }
}

/// A Twilio Media Streams agent: mu-law 8 kHz in `media` events, a mark after each reply.
#[derive(Default)]
struct TwilioAgent {
    stream_sid: String,
    marks: u64,
}

impl AgentWire for TwilioAgent {
    fn rate(&self) -> u32 {
        8_000
    }

    fn receive(&mut self, message: &Message) -> Result<Vec<FromCaller>, ProtocolError> {
        const P: &str = "twilio";
        let Some(v) = json_of(P, message)? else {
            return Ok(Vec::new());
        };
        Ok(match v.get("event").and_then(Value::as_str) {
            Some("connected") => Vec::new(),
            Some("start") => {
                self.stream_sid = v
                    .pointer("/start/streamSid")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .into();
                let parameters = parameters_of(v.pointer("/start/customParameters"));
                vec![FromCaller::Start { parameters }]
            }
            Some("media") => {
                let payload = unb64(
                    P,
                    "media.payload",
                    v.pointer("/media/payload").and_then(Value::as_str),
                )?;
                vec![FromCaller::Audio(Encoding::Mulaw.decode(&payload))]
            }
            Some("mark") => vec![FromCaller::MarkPlayed(
                v.pointer("/mark/name")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .into(),
            )],
            Some("dtmf") => vec![FromCaller::Dtmf(
                v.pointer("/dtmf/digit")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .into(),
            )],
            Some("stop") => vec![FromCaller::Stop],
            other => return Err(fail(P, format!("unknown event {other:?} from Twilio"))),
        })
    }

    fn audio(&mut self, samples: &[f32]) -> Vec<Message> {
        let payload = b64(&Encoding::Mulaw.encode(samples));
        vec![Message::text(
            json!({"event": "media", "streamSid": self.stream_sid, "media": {"payload": payload}})
                .to_string(),
        )]
    }

    fn reply_sent(&mut self, _text: &str) -> Vec<Message> {
        self.marks += 1;
        let name = format!("reply-{}", self.marks);
        vec![Message::text(
            json!({"event": "mark", "streamSid": self.stream_sid, "mark": {"name": name}})
                .to_string(),
        )]
    }

    fn clear(&mut self) -> Vec<Message> {
        vec![Message::text(
            json!({"event": "clear", "streamSid": self.stream_sid}).to_string(),
        )]
    }

    fn echoes_marks(&self) -> bool {
        true
    }

    fn garbage(&self) -> Message {
        Message::text(r#"{"event":"media","media":{"payload":"%%% not base64 %%%"}}"#)
    }
}

/// Binary PCM16 both ways; `{"action":"clear"}` and `{"type":"hangup"}` as control.
struct RawPcmAgent {
    rate: u32,
}

impl AgentWire for RawPcmAgent {
    fn rate(&self) -> u32 {
        self.rate
    }

    fn receive(&mut self, message: &Message) -> Result<Vec<FromCaller>, ProtocolError> {
        Ok(match message {
            Message::Binary(bytes) => vec![FromCaller::Audio(Encoding::Pcm16.decode(bytes))],
            // Vonage's opening or other control: the raw stream needs none of it.
            Message::Text(_) => {
                json_of("raw-pcm", message)?;
                Vec::new()
            }
            _ => Vec::new(),
        })
    }

    fn audio(&mut self, samples: &[f32]) -> Vec<Message> {
        vec![Message::binary(Encoding::Pcm16.encode(samples))]
    }

    fn reply_sent(&mut self, _text: &str) -> Vec<Message> {
        Vec::new()
    }

    fn clear(&mut self) -> Vec<Message> {
        vec![Message::text(r#"{"action":"clear"}"#)]
    }

    fn hangup(&mut self) -> Vec<Message> {
        vec![Message::text(r#"{"type":"hangup"}"#)]
    }

    fn garbage(&self) -> Message {
        Message::text("this is not json")
    }
}

/// An OpenAI-Realtime-compatible server: formats from `session.update`, server VAD unless the
/// session turns it off, audio deltas, transcript, `response.done`.
struct RealtimeAgent {
    encoding: Encoding,
    server_vad: bool,
    responses: u64,
}

impl Default for RealtimeAgent {
    fn default() -> Self {
        RealtimeAgent {
            encoding: Encoding::Pcm16,
            server_vad: true,
            responses: 0,
        }
    }
}

impl RealtimeAgent {
    fn ids(&self) -> (String, String) {
        (
            format!("resp_{:04}", self.responses),
            format!("item_{:04}", self.responses),
        )
    }
}

impl AgentWire for RealtimeAgent {
    fn rate(&self) -> u32 {
        if self.encoding == Encoding::Pcm16 {
            24_000
        } else {
            8_000
        }
    }

    fn opening(&mut self) -> Vec<Message> {
        vec![Message::text(
            json!({"type": "session.created", "session": {"type": "realtime"}}).to_string(),
        )]
    }

    fn receive(&mut self, message: &Message) -> Result<Vec<FromCaller>, ProtocolError> {
        const P: &str = "openai-realtime";
        let Some(v) = json_of(P, message)? else {
            return Ok(Vec::new());
        };
        Ok(match v.get("type").and_then(Value::as_str) {
            Some("session.update") => {
                let input = v.pointer("/session/audio/input");
                let format = input.and_then(|i| i.pointer("/format/type"));
                self.encoding = match format.and_then(Value::as_str) {
                    Some("audio/pcmu") | Some("g711_ulaw") => Encoding::Mulaw,
                    Some("audio/pcma") | Some("g711_alaw") => Encoding::Alaw,
                    _ => Encoding::Pcm16,
                };
                self.server_vad = input
                    .and_then(|i| i.get("turn_detection"))
                    .is_some_and(|t| !t.is_null());
                vec![FromCaller::Start {
                    parameters: BTreeMap::new(),
                }]
            }
            Some("input_audio_buffer.append") => {
                let audio = unb64(P, "audio", v.get("audio").and_then(Value::as_str))?;
                vec![FromCaller::Audio(self.encoding.decode(&audio))]
            }
            Some("response.create") => vec![FromCaller::EndOfTurn],
            Some(_) => Vec::new(), // commit, cancel, truncate: the agent acts on response.create
            None => return Err(fail(P, "an event without \"type\"".into())),
        })
    }

    fn audio(&mut self, samples: &[f32]) -> Vec<Message> {
        let (response_id, item_id) = self.ids();
        vec![Message::text(
            json!({
                "type": "response.output_audio.delta",
                "response_id": response_id,
                "item_id": item_id,
                "output_index": 0,
                "content_index": 0,
                "delta": b64(&self.encoding.encode(samples)),
            })
            .to_string(),
        )]
    }

    fn reply_sent(&mut self, text: &str) -> Vec<Message> {
        let (response_id, item_id) = self.ids();
        self.responses += 1;
        vec![
            Message::text(
                json!({"type": "response.output_audio_transcript.done", "response_id": response_id,
                       "item_id": item_id, "output_index": 0, "content_index": 0, "transcript": text})
                .to_string(),
            ),
            Message::text(
                json!({"type": "response.done", "response": {"id": response_id, "status": "completed"}})
                    .to_string(),
            ),
        ]
    }

    fn clear(&mut self) -> Vec<Message> {
        let (response_id, _) = self.ids();
        self.responses += 1;
        vec![Message::text(
            json!({"type": "response.done", "response": {"id": response_id, "status": "cancelled"}})
                .to_string(),
        )]
    }

    fn caller_ends_turns(&self) -> bool {
        !self.server_vad
    }

    fn heard(&mut self, text: &str) -> Vec<Message> {
        let (_, item_id) = self.ids();
        vec![Message::text(
            json!({"type": "conversation.item.input_audio_transcription.completed",
                   "item_id": format!("{item_id}_in"), "content_index": 0, "transcript": text})
            .to_string(),
        )]
    }

    fn speech_started(&mut self, at_ms: f64) -> Vec<Message> {
        if !self.server_vad {
            return Vec::new();
        }
        vec![Message::text(
            json!({"type": "input_audio_buffer.speech_started", "audio_start_ms": at_ms as u64})
                .to_string(),
        )]
    }

    fn garbage(&self) -> Message {
        Message::text(r#"{"no_type": true}"#)
    }
}
