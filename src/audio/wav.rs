use std::io::{Cursor, Seek, Write};
use std::path::Path;

use super::{AudioError, Clip};

/// Writes 16-bit PCM WAV with one channel per clip. All clips must share a rate; the length is
/// the longest clip's, shorter ones padded with silence.
pub fn write_wav(path: impl AsRef<Path>, channels: &[&Clip]) -> Result<(), AudioError> {
    let path = path.as_ref();
    let file = std::fs::File::create(path).map_err(|e| AudioError::Write {
        path: path.into(),
        reason: e.to_string(),
    })?;
    encode_wav(std::io::BufWriter::new(file), channels).map_err(|reason| AudioError::Write {
        path: path.into(),
        reason,
    })
}

/// The bytes of the WAV file [`write_wav`] would write.
pub fn wav_bytes(channels: &[&Clip]) -> Result<Vec<u8>, AudioError> {
    let mut buf = Cursor::new(Vec::new());
    encode_wav(&mut buf, channels).map_err(|reason| AudioError::Write {
        path: "<memory>".into(),
        reason,
    })?;
    Ok(buf.into_inner())
}

fn encode_wav<W: Write + Seek>(out: W, channels: &[&Clip]) -> Result<(), String> {
    let Some(first) = channels.first() else {
        return Err("no channels to write".into());
    };
    if channels.iter().any(|c| c.rate != first.rate) {
        return Err("channels have different sample rates".into());
    }
    let spec = hound::WavSpec {
        channels: channels.len() as u16,
        sample_rate: first.rate,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut writer = hound::WavWriter::new(out, spec).map_err(|e| e.to_string())?;
    let frames = channels.iter().map(|c| c.len()).max().unwrap_or(0);
    for i in 0..frames {
        for c in channels {
            let s = c.samples.get(i).copied().unwrap_or(0.0);
            writer
                .write_sample(super::codec::to_i16(s))
                .map_err(|e| e.to_string())?;
        }
    }
    writer.finalize().map_err(|e| e.to_string())
}
