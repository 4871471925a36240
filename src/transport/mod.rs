//! Transport: how voicesim talks to an agent over a websocket, as the agent's real callers'
//! networks do: one [`Adapter`] per wire protocol, the [`ear::Ear`] that plays the agent out,
//! and [`call`], the real-time loop that joins them to a microphone over a websocket.

mod adapter;
pub mod audiohook;
pub mod call;
pub mod ear;
pub mod event;
pub mod openai_realtime;
pub mod pacer;
pub mod pipecat;
pub mod raw_pcm;
pub mod recorder;
pub mod slip;
pub mod stalls;
pub mod telephony;
pub mod turns;
pub mod twilio;
pub mod vonage;

pub use adapter::{Adapter, AgentEvent};

use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;

/// The websocket settings of both ends of a call. tungstenite zero-fills its whole read
/// buffer on every read attempt, and a call looks for the agent's messages every 20 ms:
/// with the default 128 KiB that was most of a paced call's CPU, and its memory. Messages
/// of a call are small; a bigger one is read in several reads.
pub fn websocket_config() -> WebSocketConfig {
    WebSocketConfig::default().read_buffer_size(8 * 1024)
}

/// A message from the agent that does not follow its protocol.
#[derive(Debug, thiserror::Error)]
#[error("{protocol}: {message}")]
pub struct ProtocolError {
    pub protocol: &'static str,
    pub message: String,
}

/// The wire protocols voicesim speaks, as named on the command line and in suites.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    serde::Serialize,
    serde::Deserialize,
    clap::ValueEnum,
    schemars::JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum Protocol {
    /// Twilio Media Streams: JSON events, mu-law 8 kHz, marks and clear.
    Twilio,
    /// Telnyx media streaming: Twilio's design in snake_case, PCMU 8 kHz.
    Telnyx,
    /// Plivo audio streams: playAudio, checkpoint and clearAudio; mu-law 8 kHz.
    Plivo,
    /// Exotel voicebot streams: PCM16 8 kHz in 100 ms chunks.
    Exotel,
    /// Vonage websockets: binary L16 (16 kHz unless --rate), JSON events.
    Vonage,
    /// Binary PCM16 frames at a set rate, optional JSON control (Vapi, Deepgram).
    RawPcm,
    /// An OpenAI-Realtime-compatible server: PCM16 24 kHz, server VAD.
    OpenaiRealtime,
    /// Pipecat's websocket transport with its protobuf serializer (PCM16, 16 kHz unless --rate).
    Pipecat,
    /// Genesys Cloud AudioHook: PCMU 8 kHz, open/opened, ping, barge-in events.
    Genesys,
}

/// A random UUID's text form, as Telnyx, Plivo and Genesys ids look.
fn uuid(rng: &mut impl rand::Rng) -> String {
    let bytes: [u8; 16] = rand::RngExt::random(rng);
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    let part = |from: usize, to: usize| hex.get(from..to).unwrap_or_default();
    format!(
        "{}-{}-{}-{}-{}",
        part(0, 8),
        part(8, 12),
        part(12, 16),
        part(16, 20),
        part(20, 32)
    )
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
            Protocol::Telnyx => "telnyx",
            Protocol::Plivo => "plivo",
            Protocol::Exotel => "exotel",
            Protocol::Vonage => "vonage",
            Protocol::RawPcm => "raw-pcm",
            Protocol::OpenaiRealtime => "openai-realtime",
            Protocol::Pipecat => "pipecat",
            Protocol::Genesys => "genesys",
        }
    }

    /// Every protocol, in the order `--help` lists them.
    pub const ALL: [Protocol; 9] = [
        Protocol::Twilio,
        Protocol::Telnyx,
        Protocol::Plivo,
        Protocol::Exotel,
        Protocol::Vonage,
        Protocol::RawPcm,
        Protocol::OpenaiRealtime,
        Protocol::Pipecat,
        Protocol::Genesys,
    ];

    /// Whether `--rate` sets the wire rate (the others fix their own).
    pub fn takes_rate(self) -> bool {
        matches!(
            self,
            Protocol::RawPcm | Protocol::Vonage | Protocol::Pipecat
        )
    }

    /// The client side. `seed` fixes the provider's ids; `parameters` reach the agent where
    /// the protocol carries them (Twilio `customParameters` and the like); `rate` applies
    /// where [`Protocol::takes_rate`].
    pub fn adapter(
        self,
        seed: u64,
        parameters: std::collections::BTreeMap<String, String>,
        rate: u32,
    ) -> Box<dyn Adapter> {
        match self {
            Protocol::Twilio => Box::new(twilio::Twilio::new(seed, parameters)),
            Protocol::Telnyx => Box::new(telephony::Telephony::new(
                telephony::Dialect::Telnyx,
                seed,
                parameters,
            )),
            Protocol::Plivo => Box::new(telephony::Telephony::new(
                telephony::Dialect::Plivo,
                seed,
                parameters,
            )),
            Protocol::Exotel => Box::new(telephony::Telephony::new(
                telephony::Dialect::Exotel,
                seed,
                parameters,
            )),
            Protocol::Vonage => Box::new(vonage::Vonage::new(rate, parameters)),
            Protocol::Pipecat => Box::new(pipecat::Pipecat::new(rate)),
            Protocol::Genesys => Box::new(audiohook::AudioHook::new(seed, parameters)),
            Protocol::RawPcm => Box::new(raw_pcm::RawPcm::new(rate)),
            Protocol::OpenaiRealtime => Box::new(openai_realtime::OpenAiRealtime::new(
                crate::audio::Encoding::Pcm16,
                true,
            )),
        }
    }
}
