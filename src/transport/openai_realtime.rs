//! OpenAI Realtime, with voicesim as the client of an agent that exposes an OpenAI-compatible
//! realtime server. Sans-IO: the client events voicesim sends, the server events it reads.
//! Both the GA event names and the older beta ones are read.

use base64::Engine as _;
use serde_json::{json, Value};

use super::ProtocolError;
use crate::audio::Encoding;
use tokio_tungstenite::tungstenite::Message;

const PROTOCOL: &str = "openai-realtime";

/// The audio format of both directions, with its name in `session.update`.
pub fn format_name(encoding: Encoding) -> &'static str {
    match encoding {
        Encoding::Pcm16 => "audio/pcm",
        Encoding::Mulaw => "audio/pcmu",
        Encoding::Alaw => "audio/pcma",
    }
}

/// `session.update` setting both audio formats; with `server_vad` false, turn detection is off
/// and voicesim commits each turn itself ([`commit`] + [`response_create`]).
pub fn session_update(encoding: Encoding, rate: u32, server_vad: bool) -> String {
    let format = if encoding == Encoding::Pcm16 {
        json!({ "type": format_name(encoding), "rate": rate })
    } else {
        json!({ "type": format_name(encoding) })
    };
    let turn_detection = if server_vad {
        json!({ "type": "server_vad" })
    } else {
        Value::Null
    };
    json!({
        "type": "session.update",
        "session": {
            "type": "realtime",
            "audio": {
                "input": { "format": format, "turn_detection": turn_detection },
                "output": { "format": format },
            },
        },
    })
    .to_string()
}

/// One frame of the caller's audio, already encoded.
pub fn append(audio: &[u8]) -> String {
    json!({ "type": "input_audio_buffer.append", "audio": base64::engine::general_purpose::STANDARD.encode(audio) })
        .to_string()
}

pub fn commit() -> String {
    json!({ "type": "input_audio_buffer.commit" }).to_string()
}

pub fn response_create() -> String {
    json!({ "type": "response.create" }).to_string()
}

/// Barge-in: stop the response being generated.
pub fn response_cancel() -> String {
    json!({ "type": "response.cancel" }).to_string()
}

/// Barge-in: tell the server how much of an assistant item the caller actually heard.
pub fn truncate(item_id: &str, audio_end_ms: u64) -> String {
    json!({ "type": "conversation.item.truncate", "item_id": item_id, "content_index": 0, "audio_end_ms": audio_end_ms })
        .to_string()
}

/// What the server says, reduced to what a call needs.
#[derive(Debug, Clone, PartialEq)]
pub enum ServerEvent {
    SessionCreated,
    SessionUpdated,
    /// The server's VAD heard the caller start (barge-in, if the agent was talking).
    SpeechStarted,
    SpeechStopped,
    Committed,
    /// Agent audio, in the session's output format.
    AudioDelta {
        item_id: Option<String>,
        audio: Vec<u8>,
    },
    /// Part of what the agent is saying, as text.
    TranscriptDelta {
        delta: String,
    },
    TranscriptDone {
        transcript: String,
    },
    /// The server's transcription of the caller's audio (when the session asks for one).
    InputTranscript {
        transcript: String,
    },
    /// The agent's turn is complete.
    ResponseDone,
    Error {
        message: String,
    },
    /// An event a call does not act on (rate limits, item bookkeeping, ...).
    Other {
        kind: String,
    },
}

/// Reads one text frame from the server.
pub fn parse(text: &str) -> Result<ServerEvent, ProtocolError> {
    let fail = |message: String| ProtocolError {
        protocol: PROTOCOL,
        message,
    };
    let v: Value = serde_json::from_str(text).map_err(|e| fail(format!("not JSON: {e}")))?;
    let kind = v
        .get("type")
        .and_then(Value::as_str)
        .ok_or_else(|| fail("an event without \"type\"".into()))?;
    let text_field = |field: &str| {
        v.get(field)
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| fail(format!("{kind} without {field}")))
    };
    Ok(match kind {
        "session.created" => ServerEvent::SessionCreated,
        "session.updated" => ServerEvent::SessionUpdated,
        "input_audio_buffer.speech_started" => ServerEvent::SpeechStarted,
        "input_audio_buffer.speech_stopped" => ServerEvent::SpeechStopped,
        "input_audio_buffer.committed" => ServerEvent::Committed,
        "response.output_audio.delta" | "response.audio.delta" => {
            let audio = base64::engine::general_purpose::STANDARD
                .decode(text_field("delta")?)
                .map_err(|e| fail(format!("{kind}.delta is not base64: {e}")))?;
            ServerEvent::AudioDelta {
                item_id: v.get("item_id").and_then(Value::as_str).map(str::to_string),
                audio,
            }
        }
        "response.output_audio_transcript.delta" | "response.audio_transcript.delta" => {
            ServerEvent::TranscriptDelta {
                delta: text_field("delta")?,
            }
        }
        "response.output_audio_transcript.done" | "response.audio_transcript.done" => {
            ServerEvent::TranscriptDone {
                transcript: text_field("transcript")?,
            }
        }
        "conversation.item.input_audio_transcription.completed" => ServerEvent::InputTranscript {
            transcript: text_field("transcript")?,
        },
        "response.done" => ServerEvent::ResponseDone,
        "error" => ServerEvent::Error {
            message: v
                .pointer("/error/message")
                .and_then(Value::as_str)
                .unwrap_or("error without a message")
                .to_string(),
        },
        other => ServerEvent::Other {
            kind: other.to_string(),
        },
    })
}

/// The OpenAI Realtime adapter. With `server_vad` the agent decides when the caller finished;
/// without it voicesim commits each utterance and asks for a response when the caller stops.
pub struct OpenAiRealtime {
    encoding: Encoding,
    rate: u32,
    server_vad: bool,
}

impl OpenAiRealtime {
    /// PCM16 is at 24 kHz in this protocol; G.711 at 8 kHz.
    pub fn new(encoding: Encoding, server_vad: bool) -> Self {
        let rate = if encoding == Encoding::Pcm16 {
            24_000
        } else {
            8_000
        };
        OpenAiRealtime {
            encoding,
            rate,
            server_vad,
        }
    }
}

impl super::Adapter for OpenAiRealtime {
    fn name(&self) -> &'static str {
        PROTOCOL
    }

    fn rate(&self) -> u32 {
        self.rate
    }

    fn opening(&mut self) -> Vec<Message> {
        vec![Message::text(session_update(
            self.encoding,
            self.rate,
            self.server_vad,
        ))]
    }

    fn frame(&mut self, frame: &crate::audio::Frame, _elapsed_ms: u64) -> Vec<Message> {
        vec![Message::text(append(&self.encoding.encode(&frame.samples)))]
    }

    fn caller_stopped(&mut self) -> Vec<Message> {
        if self.server_vad {
            Vec::new()
        } else {
            vec![Message::text(commit()), Message::text(response_create())]
        }
    }

    fn receive(&mut self, message: &Message) -> Result<Vec<super::AgentEvent>, ProtocolError> {
        use super::AgentEvent;
        let Some(text) = super::text_frame(PROTOCOL, message)? else {
            return Ok(Vec::new());
        };
        Ok(match parse(text)? {
            ServerEvent::AudioDelta { audio, .. } => {
                vec![AgentEvent::Audio(self.encoding.decode(&audio))]
            }
            ServerEvent::TranscriptDone { transcript } => vec![AgentEvent::Transcript(transcript)],
            ServerEvent::InputTranscript { transcript } => vec![AgentEvent::Heard(transcript)],
            ServerEvent::ResponseDone => vec![AgentEvent::Done],
            ServerEvent::Error { message } => vec![AgentEvent::Error(message)],
            _ => Vec::new(),
        })
    }
}
