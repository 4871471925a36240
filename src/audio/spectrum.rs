//! Long-term spectrum in third-octave bands: what a noise sounds like, whatever its level over
//! time. Welch's method (Hann windows of 4096 samples, half overlapping), each band's power
//! summed from the FFT bins whose centre falls in it.

use rustfft::num_complex::Complex;
use rustfft::FftPlanner;

use super::Clip;

const WINDOW: usize = 4096;

/// One third-octave band: its centre frequency (IEC 61260 base-10 series) and level in dB
/// (power relative to full scale, so a band's level adds up with its neighbours').
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Band {
    pub centre_hz: f64,
    pub db: f64,
}

/// The bands from 100 Hz up to the last whose upper edge is below the clip's Nyquist
/// frequency; none for a clip shorter than one window.
pub fn third_octaves(clip: &Clip) -> Vec<Band> {
    if clip.len() < WINDOW {
        return Vec::new();
    }
    let fft = FftPlanner::<f64>::new().plan_fft_forward(WINDOW);
    let hann: Vec<f64> = (0..WINDOW)
        .map(|i| 0.5 - 0.5 * (std::f64::consts::TAU * i as f64 / WINDOW as f64).cos())
        .collect();
    let norm: f64 = hann.iter().map(|w| w * w).sum::<f64>() * WINDOW as f64;
    let mut power = vec![0.0f64; WINDOW / 2 + 1];
    let mut windows = 0usize;
    let mut buf = vec![Complex::new(0.0, 0.0); WINDOW];
    for start in (0..=clip.len() - WINDOW).step_by(WINDOW / 2) {
        let frame = clip.samples.iter().skip(start).take(WINDOW);
        for ((b, &s), w) in buf.iter_mut().zip(frame).zip(&hann) {
            *b = Complex::new(s as f64 * w, 0.0);
        }
        fft.process(&mut buf);
        for (p, b) in power.iter_mut().zip(&buf) {
            *p += b.norm_sqr();
        }
        windows += 1;
    }
    let hz = |bin: usize| bin as f64 * clip.rate as f64 / WINDOW as f64;
    let nyquist = clip.rate as f64 / 2.0;
    // Band k of the base-10 series is centred at 1000 * 10^(k/10) Hz, edges a twentieth of a
    // decade either side.
    (-10..=13)
        .map(|k| 1000.0 * 10f64.powf(k as f64 / 10.0))
        .take_while(|centre| centre * 10f64.powf(0.05) < nyquist)
        .map(|centre| {
            let (lo, hi) = (centre * 10f64.powf(-0.05), centre * 10f64.powf(0.05));
            let sum: f64 = power
                .iter()
                .enumerate()
                .filter(|(bin, _)| (lo..hi).contains(&hz(*bin)))
                .map(|(bin, p)| {
                    if bin == 0 || bin == WINDOW / 2 {
                        *p
                    } else {
                        2.0 * p
                    }
                })
                .sum();
            Band {
                centre_hz: centre,
                db: 10.0 * (sum / (norm * windows.max(1) as f64)).max(1e-20).log10(),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tone_lands_in_its_band_at_its_level() {
        let rate = 16_000;
        let tone: Vec<f32> = (0..rate * 2)
            .map(|i| (std::f32::consts::TAU * 1000.0 * i as f32 / rate as f32).sin() * 0.5)
            .collect();
        let bands = third_octaves(&Clip::new(tone, rate as u32));
        let loudest = bands.iter().max_by(|a, b| a.db.total_cmp(&b.db)).unwrap();
        assert_eq!(loudest.centre_hz.round(), 1000.0);
        // A sine of amplitude 0.5 has power 0.125: -9.0 dB.
        assert!((loudest.db + 9.03).abs() < 0.3, "{loudest:?}");
        assert!(bands
            .iter()
            .filter(|b| b.centre_hz > 2_000.0)
            .all(|b| b.db < -50.0));
    }
}
