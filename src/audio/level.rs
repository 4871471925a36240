//! Level math. Levels are RMS in dBFS: 20*log10(rms), so a full-scale square wave is 0 dBFS
//! and a full-scale sine -3 dBFS. SNR is 20*log10(RMS_signal / RMS_noise).

pub fn rms(samples: &[f32]) -> f64 {
    if samples.is_empty() {
        return 0.0;
    }
    let sum: f64 = samples.iter().map(|&s| (s as f64) * (s as f64)).sum();
    (sum / samples.len() as f64).sqrt()
}

pub fn peak(samples: &[f32]) -> f64 {
    samples.iter().fold(0.0f64, |m, &s| m.max(s.abs() as f64))
}

/// dBFS of a linear amplitude; silence is -inf.
pub fn to_dbfs(amplitude: f64) -> f64 {
    20.0 * amplitude.log10()
}

pub fn from_dbfs(dbfs: f64) -> f64 {
    10f64.powf(dbfs / 20.0)
}

/// SNR in dB between two separately known components.
pub fn snr_db(signal: &[f32], noise: &[f32]) -> f64 {
    to_dbfs(rms(signal)) - to_dbfs(rms(noise))
}
