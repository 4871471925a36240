use std::path::Path;

use super::{level, AudioError, Resampler};

/// A mono stretch of audio: f32 samples in [-1, 1] at one sample rate.
///
/// Every stage of the pipeline takes and gives `Clip`s; multi-channel sources are downmixed
/// when decoded so nothing downstream has to care about channel layouts.
#[derive(Debug, Clone, PartialEq)]
pub struct Clip {
    pub samples: Vec<f32>,
    pub rate: u32,
}

fn read(path: &Path) -> Result<Vec<u8>, AudioError> {
    crate::file::read(path, crate::file::AUDIO_LIMIT).map_err(|source| AudioError::Read {
        path: path.into(),
        source,
    })
}

impl Clip {
    pub fn new(samples: Vec<f32>, rate: u32) -> Self {
        Clip { samples, rate }
    }

    /// `seconds` of digital silence.
    pub fn silence(seconds: f64, rate: u32) -> Self {
        Clip::new(vec![0.0; (seconds * rate as f64).round() as usize], rate)
    }

    /// Reads any WAV, FLAC, MP3 or OGG Vorbis file, downmixed to mono.
    pub fn open(path: impl AsRef<Path>) -> Result<Clip, AudioError> {
        let path = path.as_ref();
        Clip::decode(read(path)?, path)
    }

    /// Reads any file [`Clip::open`] reads, one clip per channel (a call recording's caller
    /// and agent sides).
    pub fn open_channels(path: impl AsRef<Path>) -> Result<Vec<Clip>, AudioError> {
        let path = path.as_ref();
        super::decode::decode_channels(read(path)?, path)
    }

    /// Decodes an in-memory file; `name` is used for the format hint and in errors.
    pub fn decode(bytes: Vec<u8>, name: impl AsRef<Path>) -> Result<Clip, AudioError> {
        super::decode::decode(bytes, name.as_ref())
    }

    /// The stretch from `from_ms` to `to_ms` (clamped to the clip).
    pub fn between(&self, from_ms: f64, to_ms: f64) -> Clip {
        let at = |ms: f64| ((ms.max(0.0) * self.rate as f64 / 1000.0) as usize).min(self.len());
        let (from, to) = (at(from_ms), at(to_ms));
        Clip::new(
            self.samples
                .get(from..to.max(from))
                .unwrap_or_default()
                .to_vec(),
            self.rate,
        )
    }

    pub fn len(&self) -> usize {
        self.samples.len()
    }

    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }

    pub fn duration(&self) -> f64 {
        self.samples.len() as f64 / self.rate as f64
    }

    /// Root-mean-square level of the whole clip, in dBFS (a full-scale sine is -3 dBFS).
    pub fn rms_dbfs(&self) -> f64 {
        level::to_dbfs(level::rms(&self.samples))
    }

    pub fn peak_dbfs(&self) -> f64 {
        level::to_dbfs(level::peak(&self.samples))
    }

    /// The same audio at `rate`. A no-op when the rate already matches.
    pub fn resample(self, rate: u32) -> Result<Clip, AudioError> {
        if rate == self.rate {
            return Ok(self);
        }
        Resampler::new(self.rate, rate)?.process(&self)
    }

    /// The clip without its leading and trailing silence: whatever lies outside the first and
    /// last 10 ms window within 40 dB of the loudest one. Engines pad speech with silence;
    /// trimmed, "the caller stopped speaking" means the voice stopped.
    pub fn trim_silence(mut self) -> Clip {
        let window = (self.rate as usize / 100).max(1);
        let levels: Vec<f64> = self.samples.chunks(window).map(level::rms).collect();
        let loudest = levels.iter().cloned().fold(0.0, f64::max);
        if loudest == 0.0 {
            return self;
        }
        let threshold = loudest * level::from_dbfs(-40.0);
        let first = levels.iter().position(|&l| l >= threshold).unwrap_or(0);
        let last = levels.iter().rposition(|&l| l >= threshold).unwrap_or(0);
        let end = ((last + 1) * window).min(self.samples.len());
        self.samples.truncate(end);
        self.samples.drain(..first * window);
        self
    }

    /// Where the clip can be cut between words: the middle of its last stretch of at least
    /// `min_ms` that stays 40 dB under its loudest 10 ms (the measure of [`Clip::trim_silence`]),
    /// as a sample index; `None` if it has none. A stretch still running at the clip's end
    /// does not count: the voice may only be between two sounds of a word.
    pub fn last_pause(&self, min_ms: f64) -> Option<usize> {
        let window = (self.rate as usize / 100).max(1);
        let levels: Vec<f64> = self.samples.chunks(window).map(level::rms).collect();
        let loudest = levels.iter().cloned().fold(0.0, f64::max);
        let threshold = loudest * level::from_dbfs(-40.0);
        let needed = (min_ms / 10.0).ceil().max(1.0) as usize;
        let (mut quiet, mut at_end) = (0, true);
        for (i, &l) in levels.iter().enumerate().rev() {
            if l < threshold || loudest == 0.0 {
                quiet += 1;
                continue;
            }
            if !at_end && quiet >= needed {
                return Some((i + 1 + quiet / 2) * window);
            }
            at_end = false;
            quiet = 0;
        }
        None
    }

    /// Scales the clip so its RMS is `dbfs`; silent clips stay silent.
    pub fn normalized_to(mut self, dbfs: f64) -> Clip {
        let rms = level::rms(&self.samples);
        if rms > 0.0 {
            let gain = (level::from_dbfs(dbfs) / rms) as f32;
            self.samples.iter_mut().for_each(|s| *s *= gain);
        }
        self
    }
}
