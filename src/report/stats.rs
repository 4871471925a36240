//! The statistics a comparison of two runs needs: whether a change in passes is more than
//! chance, at the handful of runs a voice suite can afford.

/// ln(n!) by summing: counts here are calls, at most a few thousand.
fn ln_factorial(n: u32) -> f64 {
    (2..=n).map(|k| (k as f64).ln()).sum()
}

fn ln_choose(n: u32, k: u32) -> f64 {
    ln_factorial(n) - ln_factorial(k) - ln_factorial(n.saturating_sub(k))
}

/// Fisher's exact test, one-sided: the chance of seeing `new_passed` of `new_runs` or fewer
/// if both runs passed at the same rate, given `base_passed` of `base_runs` before. Small
/// means the pass rate really dropped; 3/3 → 2/3 gives 0.5, 10/10 → 5/10 gives 0.016.
pub fn fisher_drop(base_passed: u32, base_runs: u32, new_passed: u32, new_runs: u32) -> f64 {
    let passed = base_passed + new_passed;
    let total = base_runs + new_runs;
    if base_runs == 0 || new_runs == 0 {
        return 1.0;
    }
    let lowest = passed.saturating_sub(base_runs);
    let highest = passed.min(new_runs);
    let denominator = ln_choose(total, passed);
    let p: f64 = (lowest..=new_passed.min(highest))
        .map(|k| (ln_choose(new_runs, k) + ln_choose(base_runs, passed - k) - denominator).exp())
        .sum();
    p.min(1.0)
}

/// Wilson score interval of a pass rate at 95%: the range the true rate is likely in.
pub fn wilson(passed: u32, runs: u32) -> (f64, f64) {
    if runs == 0 {
        return (0.0, 1.0);
    }
    let (n, p, z) = (runs as f64, passed as f64 / runs as f64, 1.959_963_985);
    let centre = p + z * z / (2.0 * n);
    let spread = z * (p * (1.0 - p) / n + z * z / (4.0 * n * n)).sqrt();
    let scale = 1.0 + z * z / n;
    (
        ((centre - spread) / scale).max(0.0),
        ((centre + spread) / scale).min(1.0),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_drops_are_not_called_regressions() {
        assert!((fisher_drop(3, 3, 2, 3) - 0.5).abs() < 1e-9);
        // 3/3 → 0/3 is exactly 1 in 20.
        assert!((fisher_drop(3, 3, 0, 3) - 0.05).abs() < 1e-9);
        assert!(fisher_drop(1, 1, 0, 1) >= 0.5);
        // R: fisher.test(matrix(c(10,0,5,5),2), alternative="greater")$p.value = 0.01625
        assert!((fisher_drop(10, 10, 5, 10) - 0.016_253_869).abs() < 1e-6);
        // No drop at all is certain.
        assert!((fisher_drop(2, 4, 4, 4) - 1.0).abs() < 1e-9);
    }

    #[test]
    fn wilson_bounds_contain_the_rate() {
        let (lo, hi) = wilson(2, 3);
        assert!(lo < 2.0 / 3.0 && 2.0 / 3.0 < hi);
        assert!((lo - 0.2077).abs() < 1e-3 && (hi - 0.9385).abs() < 1e-3);
        assert_eq!(wilson(0, 0), (0.0, 1.0));
    }
}
