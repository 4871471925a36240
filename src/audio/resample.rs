use audioadapter_buffers::direct::InterleavedSlice;
use rubato::{Fft, FixedSync, Resampler as _};

use super::{AudioError, Clip};

/// Rates the pipeline is tested at; any other positive rate works too.
pub const SUPPORTED_RATES: [u32; 6] = [8_000, 16_000, 22_050, 24_000, 44_100, 48_000];

/// A reusable fixed-ratio resampler (rubato's FFT resampler: fixed ratio, full quality).
///
/// Building one costs FFT planning, so a stage that converts many clips between the same
/// two rates keeps one `Resampler` instead of calling [`Clip::resample`] each time.
pub struct Resampler {
    from: u32,
    to: u32,
    inner: Fft<f32>,
}

impl Resampler {
    pub fn new(from: u32, to: u32) -> Result<Self, AudioError> {
        let err = |reason: String| AudioError::Resample { from, to, reason };
        if from == 0 || to == 0 {
            return Err(err("sample rates must be positive".into()));
        }
        let inner = Fft::<f32>::new(from as usize, to as usize, 1024, 1, FixedSync::Both)
            .map_err(|e| err(e.to_string()))?;
        Ok(Resampler { from, to, inner })
    }

    pub fn from_rate(&self) -> u32 {
        self.from
    }

    pub fn to_rate(&self) -> u32 {
        self.to
    }

    /// Resamples a whole clip; the output is aligned with the input (no added delay).
    pub fn process(&mut self, clip: &Clip) -> Result<Clip, AudioError> {
        let err = |reason: String| AudioError::Resample { from: self.from, to: self.to, reason };
        if clip.rate != self.from {
            return Err(err(format!("clip is at {} Hz", clip.rate)));
        }
        if clip.is_empty() {
            return Ok(Clip::new(Vec::new(), self.to));
        }
        let input = InterleavedSlice::new(&clip.samples, 1, clip.len()).map_err(|e| err(e.to_string()))?;
        let out = self.inner.process_all(&input, clip.len(), None).map_err(|e| err(e.to_string()))?;
        Ok(Clip::new(out.take_data(), self.to))
    }
}
