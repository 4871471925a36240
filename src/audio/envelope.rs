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
    /// At most [`MAX_POINTS`] slices of whole 20 ms frames.
    pub fn of(clip: &Clip) -> Envelope {
        let mut peaks = Peaks::new(clip.rate);
        peaks.push(&clip.samples);
        peaks.envelope()
    }

    /// The level of each slice, 0..=63.
    pub fn levels(&self) -> Vec<u8> {
        self.peaks
            .bytes()
            .map(|c| LEVELS.iter().position(|&l| l == c).unwrap_or(0) as u8)
            .collect()
    }
}

/// An envelope made as samples stream by (a recording as it is written): the level of each
/// 20 ms frame, a byte each, grouped into the envelope's slices at the end.
#[derive(Debug, Clone)]
pub struct Peaks {
    frame: usize,
    /// One level (0..=63) per whole frame so far.
    levels: Vec<u8>,
    peak: f32,
    in_frame: usize,
}

impl Peaks {
    pub fn new(rate: u32) -> Peaks {
        Peaks {
            frame: (rate as usize / 50).max(1),
            levels: Vec::new(),
            peak: 0.0,
            in_frame: 0,
        }
    }

    pub fn push(&mut self, samples: &[f32]) {
        for s in samples {
            self.peak = self.peak.max(s.abs());
            self.in_frame += 1;
            if self.in_frame == self.frame {
                self.levels.push(level(self.peak));
                (self.peak, self.in_frame) = (0.0, 0);
            }
        }
    }

    /// The envelope so far: the loudest frame of each slice (a level is the rounded peak, so
    /// the slice's level is its loudest frame's).
    pub fn envelope(&self) -> Envelope {
        let last = (self.in_frame > 0).then(|| level(self.peak));
        let frames: Vec<u8> = self.levels.iter().copied().chain(last).collect();
        let per = frames.len().div_ceil(MAX_POINTS).max(1);
        let peaks = frames
            .chunks(per)
            .map(|slice| {
                let loudest = slice.iter().copied().max().unwrap_or(0);
                LEVELS
                    .get(usize::from(loudest))
                    .copied()
                    .map_or('A', char::from)
            })
            .collect::<String>();
        Envelope {
            ms_per_point: per as f64 * 20.0,
            peaks,
        }
    }
}

/// The level 0..=63 of a peak.
fn level(peak: f32) -> u8 {
    (peak * 63.0).round().clamp(0.0, 63.0) as u8
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

    #[test]
    fn a_long_call_streamed_in_pieces_draws_as_the_whole_clip_does() {
        let rate = 8_000;
        // 30 s: 1,500 frames, so each of the 400 slices is four frames.
        let samples: Vec<f32> = (0..rate * 30)
            .map(|i| ((i / 4_000) % 7) as f32 / 7.0 * (i as f32 * 0.01).sin())
            .collect();
        let whole = Envelope::of(&Clip::new(samples.clone(), rate as u32));
        assert_eq!(whole.peaks.len(), 375);
        assert!((whole.ms_per_point - 80.0).abs() < 1e-9);
        let mut streamed = Peaks::new(rate as u32);
        for piece in samples.chunks(2_001) {
            streamed.push(piece);
        }
        assert_eq!(streamed.envelope(), whole);
        assert_eq!(Envelope::of(&Clip::new(Vec::new(), 8_000)).peaks, "");
    }
}
