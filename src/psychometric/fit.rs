//! The psychometric function fitted to every trial: a logistic in the SNR, by maximum
//! likelihood, its threshold's 95 % interval by profile likelihood.

use serde::{Deserialize, Serialize};

/// The slopes a fit may take, per dB. The upper bound stands in for "a step": an agent that
/// passes every call above some SNR and fails every one below has an infinite slope by maximum
/// likelihood, and its threshold anywhere in the gap; the bound puts it mid-gap.
const SLOPE_MIN: f64 = 0.02;
const SLOPE_MAX: f64 = 5.0;
/// Where the threshold is searched: the range tried and this far past it.
const MARGIN_DB: f64 = 15.0;
const GRID_DB: f64 = 0.05;
/// chi-square(1) at 95 %: the likelihood-ratio bound of the interval.
const CHI2_95: f64 = 3.841;

/// What the trials say about the SNR at which the agent passes `target` of its calls.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Estimate {
    /// A threshold inside the range tried.
    Found(Fit),
    /// The agent passed often enough even at the loudest noise tried: the threshold is below
    /// `lowest_db`.
    Below { lowest_db: f64 },
    /// The agent failed too often even at the quietest noise tried: the threshold is above
    /// `highest_db`.
    Above { highest_db: f64 },
    /// No trial to fit.
    Nothing,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Fit {
    pub threshold_db: f64,
    /// The logistic's slope at the threshold, per dB (log-odds per dB).
    pub slope_per_db: f64,
    /// The 95 % interval; `None` where the trials leave it open on that side (it runs
    /// `MARGIN_DB` past the range tried).
    pub low_db: Option<f64>,
    pub high_db: Option<f64>,
}

impl Fit {
    /// The interval's width, when it is closed on both sides.
    pub fn width_db(&self) -> Option<f64> {
        Some(self.high_db? - self.low_db?)
    }
}

fn log_odds(p: f64) -> f64 {
    (p / (1.0 - p)).ln()
}

/// Trials at one SNR: how many passed and failed there. The likelihood is a sum over levels,
/// so a sweep of hundreds of calls at fifty levels costs fifty terms.
#[derive(Clone, Copy)]
struct Level {
    snr: f64,
    passed: f64,
    failed: f64,
}

fn levels(trials: &[(f64, bool)]) -> Vec<Level> {
    let mut levels: Vec<Level> = Vec::new();
    for &(snr, passed) in trials {
        let i = match levels.iter().position(|l| l.snr == snr) {
            Some(i) => i,
            None => {
                levels.push(Level {
                    snr,
                    passed: 0.0,
                    failed: 0.0,
                });
                levels.len() - 1
            }
        };
        if let Some(l) = levels.get_mut(i) {
            if passed {
                l.passed += 1.0;
            } else {
                l.failed += 1.0;
            }
        }
    }
    levels
}

/// Log-likelihood of the trials for a logistic through (`threshold`, `target`) with `slope`.
fn likelihood(levels: &[Level], target_odds: f64, threshold: f64, slope: f64) -> f64 {
    levels
        .iter()
        .map(|l| {
            let z = target_odds + slope * (l.snr - threshold);
            // log sigma(z) and log(1 - sigma(z)), stable for large |z|.
            -l.passed * softplus(-z) - l.failed * softplus(z)
        })
        .sum()
}

fn softplus(z: f64) -> f64 {
    if z > 30.0 {
        z
    } else {
        z.exp().ln_1p()
    }
}

/// The best slope for a threshold: the likelihood is concave in the slope, so a golden-section
/// search finds it.
fn best_slope(levels: &[Level], target_odds: f64, threshold: f64) -> (f64, f64) {
    let f = |s: f64| likelihood(levels, target_odds, threshold, s);
    let (mut a, mut b) = (SLOPE_MIN.ln(), SLOPE_MAX.ln());
    let g = (5f64.sqrt() - 1.0) / 2.0;
    // Searched in log slope: the interesting slopes span two decades.
    let (mut c, mut d) = (b - g * (b - a), a + g * (b - a));
    let (mut fc, mut fd) = (f(c.exp()), f(d.exp()));
    for _ in 0..50 {
        if fc > fd {
            b = d;
            d = c;
            fd = fc;
            c = b - g * (b - a);
            fc = f(c.exp());
        } else {
            a = c;
            c = d;
            fc = fd;
            d = a + g * (b - a);
            fd = f(d.exp());
        }
    }
    let ends = [(SLOPE_MIN, f(SLOPE_MIN)), (SLOPE_MAX, f(SLOPE_MAX))];
    let mid = ((a + b) / 2.0).exp();
    ends.into_iter()
        .chain([(mid, f(mid))])
        .fold((mid, f64::NEG_INFINITY), |best, x| {
            if x.1 > best.1 {
                x
            } else {
                best
            }
        })
}

/// Fits the trials (SNR in dB, passed) for the SNR at which the agent passes `target` (0..1)
/// of its calls.
pub fn fit(trials: &[(f64, bool)], target: f64) -> Estimate {
    let Some(lowest) = trials.iter().map(|t| t.0).reduce(f64::min) else {
        return Estimate::Nothing;
    };
    let highest = trials.iter().map(|t| t.0).fold(lowest, f64::max);
    let passes = trials.iter().filter(|t| t.1).count();
    if passes == trials.len() {
        return Estimate::Below { lowest_db: lowest };
    }
    if passes == 0 {
        return Estimate::Above {
            highest_db: highest,
        };
    }
    let odds = log_odds(target);
    let levels = levels(trials);
    let (from, to) = (lowest - MARGIN_DB, highest + MARGIN_DB);
    let steps = ((to - from) / GRID_DB).round() as usize;
    let profile: Vec<(f64, f64, f64)> = (0..=steps)
        .map(|i| {
            let threshold = from + i as f64 * GRID_DB;
            let (slope, ll) = best_slope(&levels, odds, threshold);
            (threshold, slope, ll)
        })
        .collect();
    let Some(&(threshold, slope, best)) = profile.iter().max_by(|a, b| a.2.total_cmp(&b.2)) else {
        return Estimate::Nothing;
    };
    // Where the likelihood is flat at its top (a step with a gap), the middle of the flat.
    let top: Vec<f64> = profile
        .iter()
        .filter(|p| best - p.2 < 1e-6)
        .map(|p| p.0)
        .collect();
    let threshold = match (top.first(), top.last()) {
        (Some(first), Some(last)) => (first + last) / 2.0,
        _ => threshold,
    };
    if threshold < lowest {
        return Estimate::Below { lowest_db: lowest };
    }
    if threshold > highest {
        return Estimate::Above {
            highest_db: highest,
        };
    }
    let inside: Vec<f64> = profile
        .iter()
        .filter(|p| 2.0 * (best - p.2) <= CHI2_95)
        .map(|p| p.0)
        .collect();
    // A bound at the end of the search is no bound: the data leave that side open.
    let open = |x: f64| (x > from + GRID_DB / 2.0 && x < to - GRID_DB / 2.0).then_some(x);
    Estimate::Found(Fit {
        threshold_db: threshold,
        slope_per_db: slope,
        low_db: inside.first().copied().and_then(open),
        high_db: inside.last().copied().and_then(open),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{RngExt, SeedableRng};

    fn logistic(x: f64, threshold: f64, slope: f64) -> f64 {
        1.0 / (1.0 + (-slope * (x - threshold)).exp())
    }

    #[test]
    fn a_simulated_agent_is_found_within_its_interval() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        let trials: Vec<(f64, bool)> = (0..200)
            .map(|i| {
                let x = -10.0 + (i % 41) as f64 * 0.75;
                (x, rng.random::<f64>() < logistic(x, 7.0, 0.6))
            })
            .collect();
        let Estimate::Found(fit) = fit(&trials, 0.5) else {
            panic!("no fit")
        };
        assert!((fit.threshold_db - 7.0).abs() < 1.0, "{fit:?}");
        assert!(
            fit.low_db.unwrap() < 7.0 && fit.high_db.unwrap() > 7.0,
            "{fit:?}"
        );
        assert!((fit.slope_per_db - 0.6).abs() < 0.3, "{fit:?}");
    }

    #[test]
    fn the_target_moves_the_threshold_up_the_curve() {
        let trials: Vec<(f64, bool)> = (0..=40)
            .flat_map(|i| {
                let x = i as f64 * 0.5;
                // About 3 in 4 passing at 10 dB, a smooth rise either side.
                let p = logistic(x, 8.0, 0.5);
                let n = 20;
                let k = (p * n as f64).round() as usize;
                (0..n).map(move |j| (x, j < k))
            })
            .collect();
        let at = |target| match fit(&trials, target) {
            Estimate::Found(f) => f.threshold_db,
            e => panic!("{e:?}"),
        };
        assert!((at(0.5) - 8.0).abs() < 0.3);
        // logit(0.707) / 0.5 = 1.76 dB higher.
        assert!((at(0.707) - 9.76).abs() < 0.3, "{}", at(0.707));
    }

    #[test]
    fn a_step_puts_the_threshold_mid_gap_with_a_narrow_interval() {
        let trials = [
            (20.0, true),
            (14.0, true),
            (12.0, true),
            (10.0, false),
            (12.0, true),
            (10.0, false),
            (12.0, true),
        ];
        let Estimate::Found(fit) = fit(&trials, 0.5) else {
            panic!()
        };
        assert!((fit.threshold_db - 11.0).abs() < 0.1, "{fit:?}");
        assert!(fit.width_db().unwrap() < 3.0, "{fit:?}");
    }

    #[test]
    fn a_threshold_outside_the_range_tried_is_not_invented() {
        assert_eq!(
            fit(&[(0.0, true), (5.0, true)], 0.5),
            Estimate::Below { lowest_db: 0.0 }
        );
        assert_eq!(
            fit(&[(30.0, false), (40.0, false)], 0.5),
            Estimate::Above { highest_db: 40.0 }
        );
        assert_eq!(fit(&[], 0.5), Estimate::Nothing);
        // Mostly passing, one stray fail at the top: still below everything tried.
        let trials = [
            (0.0, true),
            (0.0, true),
            (0.0, true),
            (20.0, false),
            (10.0, true),
        ];
        assert!(
            matches!(fit(&trials, 0.5), Estimate::Below { .. }),
            "{:?}",
            fit(&trials, 0.5)
        );
    }
}
