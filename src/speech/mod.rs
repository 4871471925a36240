//! Speech: a mouth ([`Tts`]) and ears ([`Stt`]) for the simulated caller, and [`wer`] to say
//! how well the ears heard.
//!
//! Local engines work offline on a fresh machine: espeak-ng (a subprocess) speaks, Whisper
//! tiny.en (whisper.cpp, in process) listens. OpenAI-compatible HTTP providers are optional,
//! chosen by config and environment variables.

mod cache;
mod espeak;
mod openai;
mod piper;
mod rehearsed;
pub mod wer;
mod whisper;

pub use cache::CachedTts;
pub use espeak::Espeak;
pub use openai::{OpenAiConfig, OpenAiStt, OpenAiTts};
pub use piper::Piper;
pub use rehearsed::RehearsedTts;
pub use whisper::Whisper;

use serde::{Deserialize, Serialize};

use crate::audio::{AudioError, Clip};

/// How a voice should sound. Every field is optional; engines use their defaults.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Voice {
    /// Engine-specific voice name (espeak-ng: `en-us`, `en-gb`; OpenAI: `alloy`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Speaking rate in words per minute (espeak-ng default 175).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_wpm: Option<u32>,
    /// Pitch, 0..=99 (espeak-ng default 50).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pitch: Option<u32>,
}

/// Text to speech.
pub trait Tts: Send + Sync {
    /// A stable id of the engine and its model, part of the cache key.
    fn id(&self) -> String;
    fn synthesize(&self, text: &str, voice: &Voice) -> Result<Clip, SpeechError>;
}

/// Speech to text.
pub trait Stt: Send + Sync {
    fn id(&self) -> String;
    fn transcribe(&self, clip: &Clip) -> Result<Transcript, SpeechError>;
    /// Whether a transcription asked for now would start at once rather than wait for others
    /// to finish. Work that only saves time later (a caller hearing a turn while it still
    /// plays) is asked for only then, so on a loaded machine it never delays work a caller
    /// waits on.
    fn free(&self) -> bool {
        true
    }
}

/// What an [`Stt`] heard.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Transcript {
    pub text: String,
    /// Mean probability of the recognized tokens, where the engine reports one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub confidence: Option<f32>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub segments: Vec<Segment>,
    /// How long it waited for the engine to be free (other transcriptions ahead of it), ms.
    #[serde(skip)]
    pub queued_ms: f64,
}

/// Two transcripts are the same when they heard the same: how long each waited is not what
/// was heard.
impl PartialEq for Transcript {
    fn eq(&self, other: &Self) -> bool {
        (&self.text, self.confidence, &self.segments)
            == (&other.text, other.confidence, &other.segments)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Segment {
    pub start_ms: u64,
    pub end_ms: u64,
    pub text: String,
}

#[derive(Debug, thiserror::Error)]
pub enum SpeechError {
    /// An engine or model is not installed; `fix` says how to install it.
    #[error("{engine} is not available: {reason}; {fix}")]
    Missing {
        engine: String,
        reason: String,
        fix: String,
    },
    /// The engine ran and failed.
    #[error("{engine}: {message}")]
    Engine { engine: String, message: String },
    /// A provider could not be reached over the network.
    #[error("{engine}: cannot reach {url}: {message}")]
    Unreachable {
        engine: String,
        url: String,
        message: String,
    },
    #[error("{engine}: bad settings: {message}")]
    Config { engine: String, message: String },
    #[error(transparent)]
    Audio(#[from] AudioError),
}

/// `engine:file-name` of a local model, for [`Tts::id`] and [`Stt::id`].
fn model_id(engine: &str, model: &std::path::Path) -> String {
    format!(
        "{engine}:{}",
        model
            .file_name()
            .map_or("model".into(), |n| n.to_string_lossy())
    )
}

/// The text-to-speech engines voicesim can drive.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum TtsEngine {
    /// espeak-ng, local: a robotic voice, which Whisper often mishears on an 8 kHz line.
    Espeak,
    /// Piper, a neural voice (en_US joe), local (default): heard on a phone line almost as a
    /// person is.
    #[default]
    Piper,
    /// An OpenAI-compatible `/audio/speech` endpoint (VOICESIM_TTS_BASE_URL, OPENAI_API_KEY).
    Openai,
}

/// The speech-to-text engines voicesim can drive.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum SttEngine {
    /// Whisper tiny.en through whisper.cpp, local (default).
    #[default]
    Whisper,
    /// An OpenAI-compatible `/audio/transcriptions` endpoint (VOICESIM_STT_BASE_URL, OPENAI_API_KEY).
    Openai,
}

impl TtsEngine {
    /// The engine, its clips cached on disk.
    pub fn open(self) -> Result<Box<dyn Tts>, SpeechError> {
        Ok(match self {
            TtsEngine::Espeak => Box::new(CachedTts::in_default_dir(Espeak::new()?)),
            TtsEngine::Piper => Box::new(CachedTts::in_default_dir(Piper::load_default()?)),
            TtsEngine::Openai => Box::new(CachedTts::in_default_dir(OpenAiTts::from_env())),
        })
    }
}

impl SttEngine {
    pub fn open(self) -> Result<Box<dyn Stt>, SpeechError> {
        Ok(match self {
            SttEngine::Whisper => Box::new(Whisper::load_default()?),
            SttEngine::Openai => Box::new(OpenAiStt::from_env()),
        })
    }
}
