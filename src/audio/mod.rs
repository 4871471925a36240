//! Audio core: the [`Clip`] every stage passes around, decoding, WAV output, resampling,
//! wire codecs, levels and 20 ms framing.

mod clip;
mod codec;
mod decode;
mod frame;
pub mod level;
mod resample;
mod wav;

pub use clip::Clip;
pub use codec::{quantize_i16, Encoding};
pub use frame::{Frame, FRAME_MS};
pub use resample::{Resampler, SUPPORTED_RATES};
pub use wav::{wav_bytes, write_wav};

use std::path::PathBuf;

/// Why audio could not be read, resampled or written. Every variant names the file it is about.
#[derive(Debug, thiserror::Error)]
pub enum AudioError {
    #[error("{path}: cannot read: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: cannot write: {reason}")]
    Write { path: PathBuf, reason: String },
    #[error("{path}: not a supported audio file ({reason}); use WAV, FLAC, MP3 or OGG Vorbis")]
    Unsupported { path: PathBuf, reason: String },
    #[error("{path}: corrupt audio: {reason}")]
    Corrupt { path: PathBuf, reason: String },
    #[error("{path}: holds no audio samples; record or choose a non-empty file")]
    Empty { path: PathBuf },
    #[error("cannot resample {from} Hz to {to} Hz: {reason}")]
    Resample { from: u32, to: u32, reason: String },
}
