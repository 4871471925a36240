use std::path::Path;

use super::{AudioError, Clip};

/// Writes 16-bit PCM WAV; one channel per clip (all clips must share a rate and length is
/// taken from the longest, shorter ones padded with silence).
pub fn write_wav(path: impl AsRef<Path>, channels: &[&Clip]) -> Result<(), AudioError> {
    let path = path.as_ref();
    let fail = |reason: String| AudioError::Write {
        path: path.into(),
        reason,
    };
    let Some(first) = channels.first() else {
        return Err(fail("no channels to write".into()));
    };
    if channels.iter().any(|c| c.rate != first.rate) {
        return Err(fail("channels have different sample rates".into()));
    }
    let spec = hound::WavSpec {
        channels: channels.len() as u16,
        sample_rate: first.rate,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut writer = hound::WavWriter::create(path, spec).map_err(|e| fail(e.to_string()))?;
    let frames = channels.iter().map(|c| c.len()).max().unwrap_or(0);
    for i in 0..frames {
        for c in channels {
            let s = c.samples.get(i).copied().unwrap_or(0.0);
            writer
                .write_sample(super::codec::to_i16(s))
                .map_err(|e| fail(e.to_string()))?;
        }
    }
    writer.finalize().map_err(|e| fail(e.to_string()))
}
