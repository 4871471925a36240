//! Noise: what the caller's microphone hears besides the caller.
//!
//! A [`NoiseProfile`] (YAML) names background recordings, burst sounds and line impairments.
//! [`MicTimeline`] turns a profile and a seed into the endless 20 ms frame stream of a real
//! caller's microphone: the background never stops, bursts land at their scheduled times, and
//! the caller's utterances are mixed in when queued.
//!
//! Levels: SNR is 20*log10(RMS_speech / RMS_noise). Noise levels are set against a fixed speech
//! reference of [`SPEECH_REF_DBFS`] (utterances are normalized to it), so the silence between
//! turns carries noise at the same level as during speech. A background's RMS is taken over its
//! whole loop, a burst's over the whole burst. SNR applies before line impairments.

mod bundled;
mod layer;
mod line;
mod profile;
mod shelf;
mod timeline;

pub use line::{GilbertElliott, Line};
pub use profile::{Background, Base, Burst, NoiseProfile, Snr, Source, Timing};
pub use shelf::Shelf;
pub use timeline::{LoadedNoise, MicEvent, MicTimeline};

use std::path::PathBuf;

use crate::audio::AudioError;

/// The level every utterance is normalized to, and the reference all noise SNRs are set against.
pub const SPEECH_REF_DBFS: f64 = -20.0;

#[derive(Debug, thiserror::Error)]
pub enum NoiseError {
    /// The profile file is not valid YAML or breaks a rule; `place` is `file:line:col` or
    /// `file: field`.
    #[error("{place}: {message}")]
    Profile { place: String, message: String },
    #[error("unknown noise profile {name:?}; bundled profiles are: {}; or give a path to a .yaml file", known.join(", "))]
    UnknownProfile { name: String, known: Vec<String> },
    #[error("cannot read noise profile {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Audio(#[from] AudioError),
}
