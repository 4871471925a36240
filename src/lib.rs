//! voicesim tests voice agents the way callers reach them: as sound, over a websocket,
//! in noisy places.
//!
//! The audio side is a set of small stages around one type, [`audio::Clip`]. A
//! [`noise::MicTimeline`] is the caller's microphone: background noise and bursts for the
//! whole call, the caller's utterances mixed in when queued, 20 ms [`audio::Frame`]s out.
//!
//! ```
//! use voicesim::audio::{Clip, Encoding};
//! use voicesim::noise::{LoadedNoise, MicTimeline, NoiseProfile};
//!
//! // A bundled profile's recordings, decoded and resampled once for 8 kHz calls.
//! let cafe = LoadedNoise::load(&NoiseProfile::bundled("cafe").unwrap(), 8_000).unwrap();
//! let mut mic = MicTimeline::new(&cafe, 7); // seed 7: same seed, same audio
//! // One second of a 440 Hz tone stands in for the caller's speech.
//! let tone: Vec<f32> = (0..16_000).map(|i| (i as f32 * 440.0 * std::f32::consts::TAU / 16_000.0).sin() * 0.3).collect();
//! mic.say(Clip::new(tone, 16_000)).unwrap();
//! let frame = mic.next_frame();
//! let wire = Encoding::Mulaw.encode(&frame.samples); // what a Twilio media event carries
//! assert_eq!(wire.len(), 160);
//! ```

// Nothing from a file, the network, a user or an engine may panic: no indexing, unwrap,
// expect or panic in library code; each `allow` that remains gives its reason.
#![deny(
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

pub mod agent;
pub mod analyze;
pub mod audio;
pub mod cli;
#[cfg(feature = "devices")]
pub mod devices;
pub mod file;
pub mod guard;
pub mod judge;
pub mod llm;
pub mod load;
pub mod noise;
pub mod psychometric;
pub mod record;
pub mod report;
pub mod schema;
pub mod sim;
pub mod speech;
pub mod suite;
pub mod transport;
mod yaml;

use std::path::PathBuf;

/// Where voicesim keeps downloaded models and synthesized speech: `$VOICESIM_CACHE`, else
/// `$XDG_CACHE_HOME/voicesim`, else `~/.cache/voicesim`.
pub fn cache_dir() -> PathBuf {
    env_path("VOICESIM_CACHE")
        .or_else(|| env_path("XDG_CACHE_HOME").map(|d| d.join("voicesim")))
        .or_else(|| env_path("HOME").map(|h| h.join(".cache/voicesim")))
        .unwrap_or_else(|| PathBuf::from(".voicesim-cache"))
}

/// A path from the environment variable `name`; unset and empty are both "not given".
pub(crate) fn env_path(name: &str) -> Option<PathBuf> {
    std::env::var_os(name)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}
