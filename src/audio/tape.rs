//! A call's recording written while the call runs: both channels, 20 ms at a time, into the
//! call's stereo WAV, so a call holds no more audio in memory at minute ten than at second one.
//! Read back a channel's stretch or its envelope without loading the whole file.

use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};

use super::codec::to_i16;
use super::envelope::Peaks;
use super::{AudioError, Clip, Envelope};

/// The stereo WAV being written: caller left, agent right (as [`super::write_wav`] writes a
/// finished call's), and each channel's envelope drawn as it goes (read back, a ten-second call
/// took more of a load run's CPU than streaming it).
pub struct Tape {
    writer: hound::WavWriter<BufWriter<File>>,
    path: PathBuf,
    caller: Peaks,
    agent: Peaks,
}

/// A finished recording: where it is, and how each channel looks.
#[derive(Debug, Clone, PartialEq)]
pub struct Taped {
    pub path: PathBuf,
    pub caller: Envelope,
    pub agent: Envelope,
}

impl Tape {
    pub fn create(path: impl Into<PathBuf>, rate: u32) -> Result<Tape, AudioError> {
        let path = path.into();
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| write_error(&path, e))?;
        }
        let spec = hound::WavSpec {
            channels: 2,
            sample_rate: rate,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let writer = hound::WavWriter::create(&path, spec).map_err(|e| write_error(&path, e))?;
        Ok(Tape {
            writer,
            path,
            caller: Peaks::new(rate),
            agent: Peaks::new(rate),
        })
    }

    /// Appends a stretch of both channels; the shorter is padded with silence.
    pub fn append(&mut self, caller: &[f32], agent: &[f32]) -> Result<(), AudioError> {
        let n = caller.len().max(agent.len());
        self.caller.push(caller);
        self.agent.push(agent);
        // Both channels are as long as the longer.
        for (peaks, channel) in [(&mut self.caller, caller), (&mut self.agent, agent)] {
            peaks.push(&vec![0.0; n - channel.len()]);
        }
        // hound's buffered writer: one write for the stretch, not one per sample.
        let mut out = self.writer.get_i16_writer(2 * n as u32);
        for i in 0..n {
            for channel in [caller, agent] {
                out.write_sample(to_i16(channel.get(i).copied().unwrap_or(0.0)));
            }
        }
        out.flush().map_err(|e| write_error(&self.path, e))
    }

    /// Writes the header's lengths: the file is a complete WAV from here on.
    pub fn finish(self) -> Result<Taped, AudioError> {
        self.writer
            .finalize()
            .map_err(|e| write_error(&self.path, e))?;
        Ok(Taped {
            path: self.path,
            caller: self.caller.envelope(),
            agent: self.agent.envelope(),
        })
    }
}

fn write_error(path: &Path, e: impl std::fmt::Display) -> AudioError {
    AudioError::Write {
        path: path.into(),
        reason: e.to_string(),
    }
}

fn open(path: &Path) -> Result<hound::WavReader<std::io::BufReader<File>>, AudioError> {
    hound::WavReader::open(path).map_err(|e| AudioError::Corrupt {
        path: path.into(),
        reason: e.to_string(),
    })
}

/// Channel `channel` (0 caller, 1 agent) of a WAV the tape wrote, from `from_ms` to `to_ms`.
pub fn channel_between(
    path: &Path,
    channel: usize,
    from_ms: f64,
    to_ms: f64,
) -> Result<Clip, AudioError> {
    let mut reader = open(path)?;
    let spec = reader.spec();
    let (rate, channels) = (spec.sample_rate, usize::from(spec.channels.max(1)));
    let index =
        |ms: f64| ((ms.max(0.0) * f64::from(rate) / 1000.0).round() as u32).min(reader.duration());
    let (from, to) = (index(from_ms), index(to_ms));
    reader.seek(from).map_err(|e| AudioError::Read {
        path: path.into(),
        source: e,
    })?;
    let wanted = (to.saturating_sub(from) as usize) * channels;
    let samples: Result<Vec<f32>, _> = reader
        .samples::<i16>()
        .take(wanted)
        .skip(channel)
        .step_by(channels)
        .map(|s| s.map(super::codec::from_i16))
        .collect();
    let samples = samples.map_err(|e| AudioError::Corrupt {
        path: path.into(),
        reason: e.to_string(),
    })?;
    Ok(Clip::new(samples, rate))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tape_reads_back_as_the_whole_call_would_have_been_written() {
        let dir = tempfile::tempdir().unwrap();
        let caller: Vec<f32> = (0..8_000).map(|i| ((i % 80) as f32 / 80.0) - 0.5).collect();
        let agent: Vec<f32> = (0..7_000).map(|i| (i % 33) as f32 / 66.0).collect();
        let path = dir.path().join("call.wav");
        let mut tape = Tape::create(&path, 8_000).unwrap();
        for (k, c) in caller.chunks(160).enumerate() {
            let a = agent
                .get(k * 160..((k + 1) * 160).min(agent.len()))
                .unwrap_or_default();
            tape.append(c, a).unwrap();
        }
        let taped = tape.finish().unwrap();
        let whole = dir.path().join("whole.wav");
        let (caller, agent) = (Clip::new(caller, 8_000), Clip::new(agent, 8_000));
        crate::audio::write_wav(&whole, &[&caller, &agent]).unwrap();
        assert_eq!(
            std::fs::read(&path).unwrap(),
            std::fs::read(&whole).unwrap()
        );

        let stretch = channel_between(&path, 1, 100.0, 350.0).unwrap();
        let expected = agent.between(100.0, 350.0);
        assert_eq!(stretch.len(), expected.len());
        for (a, b) in stretch.samples.iter().zip(&expected.samples) {
            assert!((a - b).abs() < 1e-4, "{a} vs {b}");
        }
        // Past the end: what there is.
        assert_eq!(
            channel_between(&path, 0, 900.0, 5_000.0).unwrap().len(),
            800
        );
        let padded = Clip::new(
            agent.samples.iter().copied().chain([0.0; 1_000]).collect(),
            8_000,
        );
        assert_eq!(
            (taped.caller, taped.agent),
            (Envelope::of(&caller), Envelope::of(&padded))
        );
    }
}
