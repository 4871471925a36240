//! A waveform small enough to draw: the loudest sample of each slice of a clip, on a linear
//! scale as audio editors show it (speech stands well above noise), one character per slice.
//! A report draws a call from this, never from its samples.

use serde::{Deserialize, Serialize};

use super::Clip;

/// Characters of the levels 0..=63, quietest first (the base64 alphabet).
const LEVELS: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
/// At most this many slices per channel, whatever the call's length.
pub const MAX_POINTS: usize = 400;

/// Peaks of a clip, `ms_per_point` each.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    pub ms_per_point: f64,
    /// One character of [`LEVELS`] per slice.
    pub peaks: String,
}

impl Envelope {
    /// At most [`MAX_POINTS`] slices, no shorter than 20 ms each.
    pub fn of(clip: &Clip) -> Envelope {
        Envelope::of_samples(clip.samples.len(), clip.rate, clip.samples.iter().copied())
    }

    /// The envelope of `len` samples at `rate` as they stream by (a recording read from disk).
    pub fn of_samples(len: usize, rate: u32, samples: impl Iterator<Item = f32>) -> Envelope {
        let ms = len as f64 * 1000.0 / rate.max(1) as f64;
        let points = ((ms / 20.0).ceil() as usize).clamp(1, MAX_POINTS);
        let per = len.div_ceil(points).max(1);
        let level = |peak: f32| {
            let level = (peak * 63.0).round().clamp(0.0, 63.0) as usize;
            LEVELS.get(level).copied().map_or('A', char::from)
        };
        let mut peaks = String::with_capacity(points);
        let (mut peak, mut in_slice) = (0.0f32, 0);
        for s in samples {
            peak = peak.max(s.abs());
            in_slice += 1;
            if in_slice == per {
                peaks.push(level(peak));
                (peak, in_slice) = (0.0, 0);
            }
        }
        if in_slice > 0 {
            peaks.push(level(peak));
        }
        Envelope {
            ms_per_point: per as f64 * 1000.0 / rate.max(1) as f64,
            peaks,
        }
    }

    /// The level of each slice, 0..=63.
    pub fn levels(&self) -> Vec<u8> {
        self.peaks
            .bytes()
            .map(|c| LEVELS.iter().position(|&l| l == c).unwrap_or(0) as u8)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tone_then_silence_draws_loud_then_floor() {
        let rate = 8_000;
        let mut samples: Vec<f32> = (0..rate).map(|i| 0.5 * (i as f32 * 0.3).sin()).collect();
        samples.extend(std::iter::repeat_n(0.0, rate));
        let env = Envelope::of(&Clip::new(samples, rate as u32));
        assert_eq!(env.peaks.len(), 100);
        assert!((env.ms_per_point - 20.0).abs() < 1e-9);
        let levels = env.levels();
        // A 0.5 peak is half way up.
        assert!(
            levels.iter().take(50).all(|&l| (31..=32).contains(&l)),
            "{levels:?}"
        );
        assert!(levels.iter().skip(50).all(|&l| l == 0));
    }
}
