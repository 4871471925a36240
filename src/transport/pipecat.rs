//! Pipecat's own websocket transport with its `ProtobufFrameSerializer`: binary protobuf
//! frames both ways, the way a Pipecat app is reached without a phone provider (Pipecat's
//! web and native clients speak it). The types are generated from
//! `proto/pipecat_frames.proto` by prost.
//!
//! The caller sends `audio` frames of PCM16 at its rate; the bot sends `audio` at whatever
//! rate its output runs (resampled here to the caller's), `text` (its words),
//! `transcription` (what it heard), `interruption` (clear) and `message` frames (JSON; RTVI's
//! `bot-stopped-speaking` ends its turn).
//!
//! ```
//! use voicesim::transport::pipecat::{self, frame::Frame as Kind, Frame};
//! use prost::Message as _;
//!
//! let bytes = pipecat::audio_frame(1, &[0.0; 320], 16_000);
//! let frame = Frame::decode(bytes.as_slice()).unwrap();
//! assert!(matches!(frame.frame, Some(Kind::Audio(a)) if a.sample_rate == 16_000));
//! ```

use prost::Message as _;
use serde_json::Value;
use tokio_tungstenite::tungstenite::Message;

use super::{AgentEvent, ProtocolError};
use crate::audio::{Encoding, StreamResampler};

include!(concat!(env!("OUT_DIR"), "/pipecat.rs"));

const PROTOCOL: &str = "pipecat";

/// One `audio` frame of PCM16 mono at `rate`.
pub fn audio_frame(id: u64, samples: &[f32], rate: u32) -> Vec<u8> {
    Frame {
        frame: Some(frame::Frame::Audio(AudioRawFrame {
            id,
            name: String::new(),
            audio: Encoding::Pcm16.encode(samples),
            sample_rate: rate,
            num_channels: 1,
            pts: None,
        })),
    }
    .encode_to_vec()
}

/// The mono samples of an `audio` frame (channels averaged).
pub fn samples(audio: &AudioRawFrame) -> Vec<f32> {
    let all = Encoding::Pcm16.decode(&audio.audio);
    let channels = audio.num_channels.max(1) as usize;
    if channels == 1 {
        return all;
    }
    all.chunks(channels)
        .map(|c| c.iter().sum::<f32>() / channels as f32)
        .collect()
}

/// The Pipecat adapter.
pub struct Pipecat {
    rate: u32,
    frames: u64,
    /// The bot's audio, from its rate to ours (made when a frame at another rate arrives).
    resampler: Option<StreamResampler>,
}

impl Pipecat {
    pub fn new(rate: u32) -> Self {
        Pipecat {
            rate,
            frames: 0,
            resampler: None,
        }
    }

    fn audio(&mut self, audio: &AudioRawFrame) -> Result<Vec<f32>, ProtocolError> {
        let samples = samples(audio);
        let from = audio.sample_rate;
        if from == self.rate {
            return Ok(samples);
        }
        let fail = |e: crate::audio::AudioError| ProtocolError {
            protocol: PROTOCOL,
            message: format!("an audio frame at {from} Hz: {e}"),
        };
        if self.resampler.as_ref().map(StreamResampler::from_rate) != Some(from) {
            self.resampler = Some(StreamResampler::new(from, self.rate).map_err(fail)?);
        }
        match self.resampler.as_mut() {
            // Ringing at the band edge may overshoot full scale; a DAC clips it.
            Some(r) => Ok(r
                .push(&samples)
                .map_err(fail)?
                .into_iter()
                .map(|s| s.clamp(-1.0, 1.0))
                .collect()),
            None => Ok(Vec::new()),
        }
    }
}

impl super::Adapter for Pipecat {
    fn name(&self) -> &'static str {
        PROTOCOL
    }

    fn rate(&self) -> u32 {
        self.rate
    }

    fn frame(&mut self, frame: &crate::audio::Frame, _elapsed_ms: u64) -> Vec<Message> {
        self.frames += 1;
        vec![Message::binary(audio_frame(
            self.frames,
            &frame.samples,
            self.rate,
        ))]
    }

    fn receive(&mut self, message: &Message) -> Result<Vec<AgentEvent>, ProtocolError> {
        let fail = |message: String| ProtocolError {
            protocol: PROTOCOL,
            message,
        };
        let bytes = match message {
            Message::Binary(bytes) => bytes,
            Message::Text(text) => {
                return Err(fail(format!(
                    "a text frame ({:?}) where only binary protobuf frames belong: is the bot's \
                     serializer ProtobufFrameSerializer?",
                    text.chars().take(40).collect::<String>()
                )))
            }
            _ => return Ok(Vec::new()),
        };
        let decoded = Frame::decode(bytes.as_ref())
            .map_err(|e| fail(format!("not a protobuf Frame: {e}")))?;
        Ok(match decoded.frame {
            Some(frame::Frame::Audio(audio)) => vec![AgentEvent::Audio(self.audio(&audio)?)],
            Some(frame::Frame::Text(text)) => vec![AgentEvent::Transcript(text.text)],
            Some(frame::Frame::Transcription(heard)) => vec![AgentEvent::Heard(heard.text)],
            Some(frame::Frame::Interruption(_)) => vec![AgentEvent::Clear],
            Some(frame::Frame::Message(m)) => {
                let value: Value = serde_json::from_str(&m.data)
                    .map_err(|e| fail(format!("a message frame that is not JSON: {e}")))?;
                match value.get("type").and_then(Value::as_str) {
                    Some("bot-stopped-speaking") => vec![AgentEvent::Done],
                    _ => Vec::new(),
                }
            }
            None => Vec::new(),
        })
    }
}
