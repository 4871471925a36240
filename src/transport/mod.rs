//! Transport: how voicesim talks to an agent over a websocket, as the agent's real callers'
//! networks do: one [`Adapter`] per wire protocol, the [`ear::Ear`] that plays the agent out,
//! and [`call`], the real-time loop that joins them to a microphone over a websocket.

mod adapter;
pub mod call;
pub mod ear;
pub mod openai_realtime;
pub mod raw_pcm;
pub mod turns;
pub mod twilio;

pub use adapter::{Adapter, AgentEvent};

use tokio_tungstenite::tungstenite::Message;

/// A message from the agent that does not follow its protocol.
#[derive(Debug, thiserror::Error)]
#[error("{protocol}: {message}")]
pub struct ProtocolError {
    pub protocol: &'static str,
    pub message: String,
}

/// The wire protocols voicesim speaks, as named on the command line and in suites.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, clap::ValueEnum,
)]
#[serde(rename_all = "kebab-case")]
pub enum Protocol {
    /// Twilio Media Streams: JSON events, mu-law 8 kHz, marks and clear.
    Twilio,
    /// Binary PCM16 frames at a set rate, optional JSON control (Vonage, Vapi, Deepgram).
    RawPcm,
    /// An OpenAI-Realtime-compatible server: PCM16 24 kHz, server VAD.
    OpenaiRealtime,
}

/// The text of a frame on a protocol of JSON text frames: `None` for pings, pongs and close
/// (the call handles those); a binary frame is an error naming it, not something to ignore.
pub fn text_frame<'m>(
    protocol: &'static str,
    message: &'m Message,
) -> Result<Option<&'m str>, ProtocolError> {
    match message {
        Message::Text(text) => Ok(Some(text.as_str())),
        Message::Binary(bytes) => {
            let head: String = bytes.iter().take(8).map(|b| format!("{b:02x}")).collect();
            Err(ProtocolError {
                protocol,
                message: format!(
                    "a binary frame of {} bytes (starting {head}) where only JSON text frames \
                     belong: is the agent speaking another protocol?",
                    bytes.len()
                ),
            })
        }
        _ => Ok(None),
    }
}

impl Protocol {
    /// The name on the command line and in suites.
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Twilio => "twilio",
            Protocol::RawPcm => "raw-pcm",
            Protocol::OpenaiRealtime => "openai-realtime",
        }
    }

    /// The client side. `seed` fixes Twilio's ids; `parameters` reach the agent where the
    /// protocol carries them (Twilio `customParameters`); `rate` applies to raw PCM.
    pub fn adapter(
        self,
        seed: u64,
        parameters: std::collections::BTreeMap<String, String>,
        rate: u32,
    ) -> Box<dyn Adapter> {
        match self {
            Protocol::Twilio => Box::new(twilio::Twilio::new(seed, parameters)),
            Protocol::RawPcm => Box::new(raw_pcm::RawPcm::new(rate, false)),
            Protocol::OpenaiRealtime => Box::new(openai_realtime::OpenAiRealtime::new(
                crate::audio::Encoding::Pcm16,
                true,
            )),
        }
    }
}
