//! How many calls a task threshold costs: the adaptive staircases `voicesim threshold` runs,
//! against a fixed sweep at 1 dB steps over the same range, on simulated agents whose pass
//! rate is a logistic in the SNR (thresholds drawn over 0-25 dB; the slope of the reference
//! agent's measured curve, about 2.5 per dB, and a shallow 0.5 per dB).
//!
//! `cargo bench --bench threshold` prints a Markdown table for docs/benchmarks.md. Under `cargo test`
//! it runs a short smoke version so it cannot rot.

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use voicesim::psychometric::{fit, Estimate, Settings, Staircase};

/// The staircases' defaults (`voicesim threshold` with no options).
const STARTS: [f64; 2] = [25.0, 0.0];
const BUDGET: usize = 40;
const RANGE: (f64, f64) = (-10.0, 40.0);

fn passes(rng: &mut ChaCha8Rng, snr: f64, threshold: f64, slope: f64) -> bool {
    rng.random::<f64>() < 1.0 / (1.0 + (-slope * (snr - threshold)).exp())
}

/// Interval width (the whole range when open) and error of one fit.
fn judged(trials: &[(f64, bool)], threshold: f64) -> (f64, f64) {
    match fit(trials, 0.5) {
        Estimate::Found(f) => (
            f.high_db.unwrap_or(RANGE.1) - f.low_db.unwrap_or(RANGE.0),
            (f.threshold_db - threshold).abs(),
        ),
        _ => (RANGE.1 - RANGE.0, f64::INFINITY),
    }
}

fn staircases(rng: &mut ChaCha8Rng, threshold: f64, slope: f64) -> (f64, f64, usize) {
    let mut stairs: Vec<Staircase> = STARTS
        .iter()
        .map(|&s| Staircase::new(Settings::default(), s))
        .collect();
    let mut trials = Vec::new();
    // Interleaved, as the calls of a run are.
    'calls: while trials.len() < BUDGET {
        let mut moved = false;
        for s in stairs.iter_mut().filter(|s| !s.done()) {
            if trials.len() >= BUDGET {
                break 'calls;
            }
            let snr = s.level();
            let passed = passes(rng, snr, threshold, slope);
            s.record(passed);
            trials.push((snr, passed));
            moved = true;
        }
        if !moved {
            break;
        }
    }
    let (width, error) = judged(&trials, threshold);
    (width, error, trials.len())
}

fn sweep(rng: &mut ChaCha8Rng, threshold: f64, slope: f64, repeats: usize) -> (f64, f64, usize) {
    let mut trials = Vec::new();
    let levels = (RANGE.1 - RANGE.0) as usize + 1;
    for i in 0..levels {
        let snr = RANGE.0 + i as f64;
        for _ in 0..repeats {
            trials.push((snr, passes(rng, snr, threshold, slope)));
        }
    }
    let (width, error) = judged(&trials, threshold);
    (width, error, trials.len())
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let agents = if full { 300 } else { 12 };
    println!("| slope | staircases: calls | interval (median) | within ±1.5 dB | 1 dB sweep: calls for that interval | interval | ratio |");
    println!("| --- | --- | --- | --- | --- | --- | --- |");
    for slope in [2.5, 0.5] {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let thresholds: Vec<f64> = (0..agents).map(|_| rng.random_range(0.0..25.0)).collect();
        let runs: Vec<(f64, f64, usize)> = thresholds
            .iter()
            .map(|&t| staircases(&mut rng, t, slope))
            .collect();
        let width = median(runs.iter().map(|r| r.0).collect());
        let within = runs.iter().filter(|r| r.1 <= 1.5).count() as f64 / runs.len() as f64;
        let calls = runs.iter().map(|r| r.2).sum::<usize>() as f64 / runs.len() as f64;
        // The fewest repeats per 1 dB level whose median interval is as narrow.
        let mut found = None;
        for repeats in 1..=if full { 8 } else { 2 } {
            let sweeps: Vec<(f64, f64, usize)> = thresholds
                .iter()
                .map(|&t| sweep(&mut rng, t, slope, repeats))
                .collect();
            let w = median(sweeps.iter().map(|r| r.0).collect());
            if w <= width {
                found = Some((sweeps[0].2, w));
                break;
            }
        }
        let (sweep_calls, sweep_width, ratio) = match found {
            Some((c, w)) => (
                c.to_string(),
                format!("{w:.1} dB"),
                format!("{:.1}×", c as f64 / calls),
            ),
            None => ("more than tried".into(), "-".into(), "-".into()),
        };
        println!(
            "| {slope}/dB | {calls:.0} | {width:.1} dB | {:.0}% | {sweep_calls} | {sweep_width} | {ratio} |",
            within * 100.0
        );
    }
}
