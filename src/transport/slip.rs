//! How late voicesim itself sent each frame against the call's 20 ms schedule: a busy machine
//! shows here first, before it is taken for the agent's fault. Kept as a fixed histogram, so
//! a call's memory does not grow with its length.

use serde::{Deserialize, Serialize};

/// Fine bins (0.25 ms) up to 100 ms, coarse ones (10 ms) up to 2 s; later frames are counted
/// past the end, and the latest kept.
const FINE_MS: f64 = 0.25;
const FINE_UNTIL_MS: f64 = 100.0;
const COARSE_MS: f64 = 10.0;
const BINS: usize = 400 + 190;

fn bin(ms: f64) -> usize {
    if ms < FINE_UNTIL_MS {
        (ms / FINE_MS) as usize
    } else {
        400 + ((ms - FINE_UNTIL_MS) / COARSE_MS) as usize
    }
}

/// Where a bin ends.
fn upper(bin: usize) -> f64 {
    if bin < 400 {
        (bin + 1) as f64 * FINE_MS
    } else {
        FINE_UNTIL_MS + (bin - 399) as f64 * COARSE_MS
    }
}

/// Frame send slip of one call (or of many, merged).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Slip {
    counts: Vec<u32>,
    beyond: u32,
    max_ms: f64,
}

impl Slip {
    /// A frame went out `ms` after it was due.
    pub fn add(&mut self, ms: f64) {
        let ms = ms.max(0.0);
        self.max_ms = self.max_ms.max(ms);
        let bin = bin(ms);
        if bin >= BINS {
            self.beyond += 1;
            return;
        }
        if self.counts.len() <= bin {
            self.counts.resize(bin + 1, 0);
        }
        if let Some(count) = self.counts.get_mut(bin) {
            *count += 1;
        }
    }

    pub fn frames(&self) -> u64 {
        self.counts.iter().map(|&c| u64::from(c)).sum::<u64>() + u64::from(self.beyond)
    }

    /// The slip that a share `q` (0 to 1) of frames stayed within, to a bin's width; `None`
    /// when no frame was paced.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        let frames = self.frames();
        if frames == 0 {
            return None;
        }
        let want = (q.clamp(0.0, 1.0) * frames as f64).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (bin, &count) in self.counts.iter().enumerate() {
            seen += u64::from(count);
            if seen >= want {
                return Some(upper(bin).min(self.max_ms));
            }
        }
        Some(self.max_ms)
    }

    pub fn max_ms(&self) -> f64 {
        self.max_ms
    }

    pub fn merge(&mut self, other: &Slip) {
        if self.counts.len() < other.counts.len() {
            self.counts.resize(other.counts.len(), 0);
        }
        for (mine, theirs) in self.counts.iter_mut().zip(&other.counts) {
            *mine += theirs;
        }
        self.beyond += other.beyond;
        self.max_ms = self.max_ms.max(other.max_ms);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_come_within_a_bin_and_late_frames_are_not_lost() {
        let mut slip = Slip::default();
        assert_eq!(slip.quantile(0.99), None);
        for i in 0..990 {
            slip.add(f64::from(i % 10) * 0.1); // 0 to 0.9 ms
        }
        for _ in 0..9 {
            slip.add(30.0);
        }
        slip.add(451.0);
        assert_eq!(slip.frames(), 1_000);
        assert!(slip.quantile(0.5).unwrap() <= 0.75);
        assert_eq!(slip.quantile(0.99), Some(1.0));
        assert_eq!(slip.quantile(0.995), Some(30.25));
        assert_eq!(slip.quantile(1.0), Some(451.0));
        // Past 100 ms, to 10 ms.
        let mut late = Slip::default();
        (0..100).for_each(|i| late.add(200.0 + f64::from(i)));
        late.add(5_000.0);
        assert_eq!(late.quantile(0.5), Some(260.0));
        assert_eq!(late.quantile(0.99), Some(300.0));
        assert_eq!(late.quantile(1.0), Some(5_000.0));
        let mut both = slip.clone();
        both.merge(&slip);
        assert_eq!(both.frames(), 2_000);
        assert_eq!(both.quantile(0.99), slip.quantile(0.99));
        assert_eq!(both.max_ms(), 451.0);
    }
}
