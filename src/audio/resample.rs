use audioadapter_buffers::direct::InterleavedSlice;
use rubato::{Fft, FixedSync, Resampler as _, WindowFunction};

use super::{AudioError, Clip};

/// Rates the pipeline is tested at; any other rate in [`RATES`] works too.
pub const SUPPORTED_RATES: [u32; 6] = [8_000, 16_000, 22_050, 24_000, 44_100, 48_000];

/// The sample rates voicesim reads and resamples. Outside them a file's header is corrupt:
/// a 4 GHz "rate" would have the resampler plan FFTs for seconds and eat gigabytes.
pub const RATES: std::ops::RangeInclusive<u32> = 1_000..=384_000;

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
        if !RATES.contains(&from) || !RATES.contains(&to) {
            return Err(err(format!(
                "sample rates must be {}-{} Hz",
                RATES.start(),
                RATES.end()
            )));
        }
        // rubato trims a delay of half the output FFT size; with an odd size that is half a
        // sample off (48k->8k measured 0.5 samples late), so use an even number of the
        // smallest blocks the rate pair allows, which makes both FFT sizes even.
        let (from_us, to_us) = (from as usize, to as usize);
        let min_block_in = from_us / gcd(from_us, to_us);
        let blocks = (1024 / min_block_in).max(1).next_multiple_of(2);
        let inner = Fft::<f32>::new_custom(
            from_us,
            to_us,
            blocks * min_block_in,
            1,
            1,
            WindowFunction::BlackmanHarris2,
            FixedSync::Both,
        )
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
        let err = |reason: String| AudioError::Resample {
            from: self.from,
            to: self.to,
            reason,
        };
        if clip.rate != self.from {
            return Err(err(format!("clip is at {} Hz", clip.rate)));
        }
        if clip.is_empty() {
            return Ok(Clip::new(Vec::new(), self.to));
        }
        let input =
            InterleavedSlice::new(&clip.samples, 1, clip.len()).map_err(|e| err(e.to_string()))?;
        let out = self
            .inner
            .process_all(&input, clip.len(), None)
            .map_err(|e| err(e.to_string()))?;
        Ok(Clip::new(out.take_data(), self.to))
    }
}

fn gcd(a: usize, b: usize) -> usize {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

/// A [`Resampler`] for a stream that arrives in pieces of any size (an agent's audio frames
/// at its own rate): whole blocks go through as they fill, the rest waits for the next
/// piece. The output lags by the resampler's delay, a few milliseconds, as a real receiver's
/// would; the same resampler state runs across pieces, so there are no seams.
pub struct StreamResampler {
    inner: Resampler,
    pending: Vec<f32>,
}

impl StreamResampler {
    pub fn new(from: u32, to: u32) -> Result<Self, AudioError> {
        Ok(StreamResampler {
            inner: Resampler::new(from, to)?,
            pending: Vec::new(),
        })
    }

    pub fn from_rate(&self) -> u32 {
        self.inner.from
    }

    /// The next piece in; whatever whole blocks it completes, out.
    pub fn push(&mut self, samples: &[f32]) -> Result<Vec<f32>, AudioError> {
        let (from, to) = (self.inner.from, self.inner.to);
        let err = |reason: String| AudioError::Resample { from, to, reason };
        self.pending.extend_from_slice(samples);
        let mut out = Vec::new();
        loop {
            let block = self.inner.inner.input_frames_next();
            if block == 0 || self.pending.len() < block {
                return Ok(out);
            }
            let input =
                InterleavedSlice::new(&self.pending, 1, block).map_err(|e| err(e.to_string()))?;
            let resampled = self
                .inner
                .inner
                .process(&input, None)
                .map_err(|e| err(e.to_string()))?;
            out.extend(resampled.take_data());
            self.pending.drain(..block);
        }
    }
}
