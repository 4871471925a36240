//! Audio core: the [`Clip`] every stage passes around, decoding, WAV output, resampling,
//! wire codecs, levels and 20 ms framing.

mod clip;
mod codec;
mod decode;
pub mod endpoint;
mod envelope;
mod frame;
pub mod level;
mod resample;
pub mod spectrum;
pub mod tape;
mod wav;

pub use clip::Clip;
pub(crate) use codec::to_i16;
pub use codec::{quantize_i16, Encoding};
pub use endpoint::{Endpointer, Heard, SnrMeter};
pub use envelope::Envelope;
pub use frame::{Frame, FRAME_MS};
pub use resample::{Resampler, StreamResampler, RATES, SUPPORTED_RATES};
pub use tape::{Tape, Taped};
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

/// Whether `key` is on a DTMF keypad: 0-9, *, #, A-D.
pub fn is_dtmf_key(key: char) -> bool {
    "0123456789*#ABCDabcd".contains(key)
}

/// The dual tone of a phone key (ITU-T Q.23), 100 ms at `rate`, at -20 dBFS RMS; `None` for
/// anything but 0-9, *, #, A-D.
pub fn dtmf_tone(key: char, rate: u32) -> Option<Clip> {
    const ROWS: [f32; 4] = [697.0, 770.0, 852.0, 941.0];
    const COLS: [f32; 4] = [1209.0, 1336.0, 1477.0, 1633.0];
    const KEYS: [&str; 4] = ["123A", "456B", "789C", "*0#D"];
    let (row, col) = KEYS
        .iter()
        .enumerate()
        .find_map(|(r, keys)| keys.find(key.to_ascii_uppercase()).map(|c| (r, c)))?;
    let (low, high) = (ROWS.get(row)?, COLS.get(col)?);
    let samples = (0..rate as usize / 10)
        .map(|i| {
            let t = i as f32 / rate as f32;
            (std::f32::consts::TAU * low * t).sin() + (std::f32::consts::TAU * high * t).sin()
        })
        .collect();
    Some(Clip::new(samples, rate).normalized_to(-20.0))
}
