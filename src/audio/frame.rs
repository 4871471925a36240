use super::Clip;

/// Every frame on the call timeline is this long, as on a phone network.
pub const FRAME_MS: u32 = 20;

/// 20 ms of mono audio at the timeline's rate, numbered from the start of the call.
#[derive(Debug, Clone, PartialEq)]
pub struct Frame {
    pub index: u64,
    pub rate: u32,
    pub samples: Vec<f32>,
}

impl Frame {
    pub fn samples_per_frame(rate: u32) -> usize {
        (rate * FRAME_MS / 1000) as usize
    }

    /// Milliseconds from the start of the call to this frame's first sample.
    pub fn start_ms(&self) -> u64 {
        self.index * FRAME_MS as u64
    }
}

impl Clip {
    /// Splits the clip into 20 ms frames; the last one is padded with silence.
    pub fn frames(&self) -> impl Iterator<Item = Frame> + '_ {
        let n = Frame::samples_per_frame(self.rate);
        self.samples.chunks(n).enumerate().map(move |(i, chunk)| {
            let mut samples = chunk.to_vec();
            samples.resize(n, 0.0);
            Frame {
                index: i as u64,
                rate: self.rate,
                samples,
            }
        })
    }
}
