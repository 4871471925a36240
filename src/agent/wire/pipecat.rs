//! A Pipecat bot's side of the protobuf transport: audio frames both ways; after each reply
//! its text and RTVI's `bot-stopped-speaking`; an `interruption` frame on a barge-in; what it
//! heard as a `transcription` frame.

use prost::Message as _;
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

use super::{fail, AgentWire, FromCaller};
use crate::transport::pipecat::{self, frame::Frame as Kind, Frame};
use crate::transport::ProtocolError;

pub(super) struct PipecatAgent {
    pub(super) rate: u32,
    pub(super) frames: u64,
}

fn binary(kind: Kind) -> Message {
    Message::binary(Frame { frame: Some(kind) }.encode_to_vec())
}

impl AgentWire for PipecatAgent {
    fn rate(&self) -> u32 {
        self.rate
    }

    fn receive(&mut self, message: &Message) -> Result<Vec<FromCaller>, ProtocolError> {
        const P: &str = "pipecat";
        let Message::Binary(bytes) = message else {
            return Ok(Vec::new());
        };
        let frame = Frame::decode(bytes.as_ref())
            .map_err(|e| fail(P, format!("not a protobuf Frame: {e}")))?;
        Ok(match frame.frame {
            Some(Kind::Audio(audio)) => vec![FromCaller::Audio(pipecat::samples(&audio))],
            _ => Vec::new(),
        })
    }

    fn audio(&mut self, samples: &[f32]) -> Vec<Message> {
        self.frames += 1;
        vec![Message::binary(pipecat::audio_frame(
            self.frames,
            samples,
            self.rate,
        ))]
    }

    fn reply_sent(&mut self, text: &str) -> Vec<Message> {
        let stopped = json!({"label": "rtvi-ai", "type": "bot-stopped-speaking"}).to_string();
        vec![
            binary(Kind::Text(pipecat::TextFrame {
                text: text.into(),
                ..Default::default()
            })),
            binary(Kind::Message(pipecat::MessageFrame { data: stopped })),
        ]
    }

    fn clear(&mut self) -> Vec<Message> {
        vec![binary(Kind::Interruption(
            pipecat::InterruptionFrame::default(),
        ))]
    }

    fn heard(&mut self, text: &str) -> Vec<Message> {
        vec![binary(Kind::Transcription(pipecat::TranscriptionFrame {
            text: text.into(),
            user_id: "caller".into(),
            ..Default::default()
        }))]
    }

    fn garbage(&self) -> Message {
        Message::binary(vec![0xff, 0xff, 0xff, 0xff])
    }
}
