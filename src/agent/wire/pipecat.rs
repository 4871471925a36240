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
    /// The rate of the caller's first audio frame, which the call then runs at.
    pub(super) caller_rate: Option<u32>,
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
            Some(Kind::Audio(audio)) => {
                // Each frame says its rate: the call runs at the caller's (its first frame's),
                // and a frame at another rate is the caller breaking the protocol.
                let rate = *self.caller_rate.get_or_insert(audio.sample_rate);
                if audio.sample_rate != rate || rate == 0 {
                    return Err(fail(
                        P,
                        format!(
                            "an audio frame at {} Hz in a call at {rate} Hz",
                            audio.sample_rate
                        ),
                    ));
                }
                self.rate = rate;
                vec![FromCaller::Audio(pipecat::samples(&audio))]
            }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn from_caller(rate: u32) -> Message {
        Message::binary(pipecat::audio_frame(1, &[0.25; 160], rate))
    }

    #[test]
    fn the_call_runs_at_the_rate_of_the_callers_first_frame() {
        let mut wire = PipecatAgent {
            rate: 16_000,
            frames: 0,
            caller_rate: None,
        };
        let heard = wire.receive(&from_caller(8_000)).unwrap();
        assert!(matches!(&heard[..], [FromCaller::Audio(a)] if a.len() == 160));
        assert_eq!(wire.rate(), 8_000);
        // The reply goes out at it too.
        let out = wire.audio(&[0.0; 160]);
        let [Message::Binary(bytes)] = &out[..] else {
            panic!("{out:?}")
        };
        let frame = Frame::decode(bytes.as_ref()).unwrap();
        assert!(matches!(frame.frame, Some(Kind::Audio(a)) if a.sample_rate == 8_000));
        // A caller that changes its rate mid-call breaks the protocol.
        let error = wire.receive(&from_caller(16_000)).unwrap_err();
        assert!(
            error
                .to_string()
                .contains("an audio frame at 16000 Hz in a call at 8000 Hz"),
            "{error}"
        );
    }
}
