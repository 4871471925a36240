//! The layers a microphone timeline sums: looped backgrounds, scheduled bursts, queued speech.
//! Each one adds its samples for a span of the timeline into a buffer.

use std::collections::VecDeque;
use std::sync::Arc;

use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Exp};

/// Builds a seamlessly loopable version of `samples`: the last `xfade` samples are faded out
/// over the first `xfade` faded in (equal power, right for uncorrelated noise), so the loop is
/// `len - xfade` long and has no click where it wraps.
pub(super) fn make_loop(samples: &[f32], xfade: usize) -> Vec<f32> {
    let n = samples.len();
    let xfade = xfade.min(n / 4);
    if xfade == 0 {
        return samples.to_vec();
    }
    let (body, tail) = samples.split_at(n - xfade);
    let mut out = body.to_vec();
    for (i, (head, tail)) in out.iter_mut().zip(tail).enumerate() {
        let t = (i as f32 + 0.5) / xfade as f32 * std::f32::consts::FRAC_PI_2;
        // Overwrite the start: head fading in under the tail fading out.
        *head = *head * t.sin() + tail * t.cos();
    }
    out
}

/// A background recording looped forever from an offset.
pub(super) struct Loop {
    samples: Arc<Vec<f32>>,
    pos: usize,
    gain: f32,
}

impl Loop {
    pub(super) fn new(samples: Arc<Vec<f32>>, offset: usize, gain: f32) -> Self {
        let pos = if samples.is_empty() {
            0
        } else {
            offset % samples.len()
        };
        Loop { samples, pos, gain }
    }

    pub(super) fn add_to(&mut self, out: &mut [f32]) {
        let n = self.samples.len();
        if n == 0 {
            return;
        }
        let mut rest = out;
        while !rest.is_empty() {
            let source = self.samples.get(self.pos..).unwrap_or_default();
            let (now, later) = rest.split_at_mut(source.len().min(rest.len()));
            for (o, s) in now.iter_mut().zip(source) {
                *o += s * self.gain;
            }
            self.pos = (self.pos + now.len()) % n;
            rest = later;
        }
    }
}

/// When a burst's next occurrence starts, in samples from the start of the call.
pub(super) enum Schedule {
    At(VecDeque<u64>),
    Poisson {
        rng: Box<ChaCha8Rng>,
        gap: Exp<f64>,
        next: u64,
        rate: u32,
    },
}

impl Schedule {
    fn peek(&self) -> Option<u64> {
        match self {
            Schedule::At(times) => times.front().copied(),
            Schedule::Poisson { next, .. } => Some(*next),
        }
    }

    fn advance(&mut self) {
        match self {
            Schedule::At(times) => {
                times.pop_front();
            }
            Schedule::Poisson {
                rng,
                gap,
                next,
                rate,
            } => {
                // At least one sample apart so the schedule always moves forward.
                let seconds: f64 = gap.sample(rng.as_mut());
                *next += ((seconds * *rate as f64) as u64).max(1);
            }
        }
    }

    pub(super) fn poisson(mut rng: ChaCha8Rng, per_minute: f64, rate: u32) -> Schedule {
        #[allow(clippy::expect_used, reason = "1.0 is a valid rate")]
        let gap = Exp::new(per_minute / 60.0)
            .unwrap_or_else(|_| Exp::new(1.0).expect("1.0 is a valid rate"));
        let first: f64 = gap.sample(&mut rng);
        Schedule::Poisson {
            rng: Box::new(rng),
            gap,
            next: (first * rate as f64) as u64,
            rate,
        }
    }
}

/// A burst sound and the times it starts; occurrences may overlap.
pub(super) struct BurstTrack {
    pub(super) label: String,
    pub(super) snr: f64,
    samples: Arc<Vec<f32>>,
    gain: f32,
    schedule: Schedule,
    playing: Vec<u64>,
}

impl BurstTrack {
    pub(super) fn new(
        label: String,
        snr: f64,
        samples: Arc<Vec<f32>>,
        gain: f32,
        schedule: Schedule,
    ) -> Self {
        BurstTrack {
            label,
            snr,
            samples,
            gain,
            schedule,
            playing: Vec::new(),
        }
    }

    /// The burst's length in samples.
    pub(super) fn len(&self) -> usize {
        self.samples.len()
    }

    /// Adds the burst for the span starting at sample `t0`; returns the start times that fell
    /// in this span.
    pub(super) fn add_to(&mut self, out: &mut [f32], t0: u64) -> Vec<u64> {
        let t1 = t0 + out.len() as u64;
        let mut started = Vec::new();
        while let Some(start) = self.schedule.peek().filter(|&s| s < t1) {
            self.schedule.advance();
            if start + self.samples.len() as u64 > t0 {
                self.playing.push(start);
                started.push(start);
            }
        }
        let len = self.samples.len() as u64;
        for &start in &self.playing {
            let from = start.max(t0);
            let to = (start + len).min(t1);
            let span = |a: u64, b: u64| a as usize..b as usize;
            let (Some(out), Some(burst)) = (
                out.get_mut(span(from - t0, to - t0)),
                self.samples.get(span(from - start, to - start)),
            ) else {
                continue;
            };
            for (o, s) in out.iter_mut().zip(burst) {
                *o += s * self.gain;
            }
        }
        self.playing.retain(|&start| start + len > t1);
        started
    }
}

/// The caller's utterances, played back to back as they are queued.
#[derive(Default)]
pub(super) struct SpeechQueue {
    queue: VecDeque<Vec<f32>>,
    pos: usize,
}

impl SpeechQueue {
    pub(super) fn push(&mut self, samples: Vec<f32>) {
        if !samples.is_empty() {
            self.queue.push_back(samples);
        }
    }

    pub(super) fn is_speaking(&self) -> bool {
        !self.queue.is_empty()
    }

    pub(super) fn clear(&mut self) {
        self.queue.clear();
        self.pos = 0;
    }

    /// Adds speech into `out`, which it fills from the start while utterances last; returns how
    /// many samples it covered and pushes (offset, started) for each utterance start and end.
    pub(super) fn add_to(&mut self, out: &mut [f32], marks: &mut Vec<(usize, bool)>) -> usize {
        let mut i = 0;
        while i < out.len() {
            let Some(current) = self.queue.front() else {
                break;
            };
            if self.pos == 0 {
                marks.push((i, true));
            }
            let source = current.get(self.pos..).unwrap_or_default();
            let target = out.get_mut(i..).unwrap_or_default();
            let take = source.len().min(target.len());
            for (o, s) in target.iter_mut().zip(source) {
                *o += s;
            }
            i += take;
            self.pos += take;
            if self.pos == current.len() {
                self.queue.pop_front();
                self.pos = 0;
                marks.push((i, false));
            }
        }
        i
    }
}

/// Most live audio kept waiting (ms): more means the sound card runs ahead of the call's
/// clock, and the oldest is dropped so the person stays in real time.
const LIVE_BACKLOG_MS: usize = 120;
/// The quiet that ends a live utterance, as a patient endpointer would.
const LIVE_SILENCE_MS: f64 = 600.0;
/// Gain limits for a live voice (dB): a very quiet mic is not raised into hiss.
const LIVE_GAIN_DB: std::ops::RangeInclusive<f64> = -20.0..=30.0;

/// A person's microphone, live: samples arrive in pieces (at the timeline rate) from another
/// thread and are mixed in a frame at a time. An energy endpointer on the voice alone says
/// where speech starts and ends, and after each utterance the gain moves so the voice sits at
/// the speech reference, as TTS lines do: the profile's SNR means the same thing.
pub struct LiveVoice {
    source: std::sync::mpsc::Receiver<Vec<f32>>,
    pending: VecDeque<f32>,
    backlog: usize,
    gain: f32,
    endpointer: crate::audio::Endpointer,
}

/// What a frame of live voice added.
pub struct LiveFrame {
    pub started_ms: Option<f64>,
    pub ended_ms: Option<f64>,
}

impl LiveVoice {
    pub fn new(source: std::sync::mpsc::Receiver<Vec<f32>>, rate: u32) -> LiveVoice {
        LiveVoice {
            source,
            pending: VecDeque::new(),
            backlog: rate as usize * LIVE_BACKLOG_MS / 1000,
            gain: 1.0,
            endpointer: crate::audio::Endpointer::new(rate, LIVE_SILENCE_MS),
        }
    }

    pub fn is_speaking(&self) -> bool {
        self.endpointer.is_speaking()
    }

    /// Adds the next `out.len()` samples of the voice to `out` (silence where none came).
    pub fn add_to(&mut self, out: &mut [f32]) -> LiveFrame {
        while let Ok(piece) = self.source.try_recv() {
            self.pending.extend(piece);
        }
        let excess = self.pending.len().saturating_sub(self.backlog + out.len());
        self.pending.drain(..excess);
        let voice: Vec<f32> = (0..out.len())
            .map(|_| self.pending.pop_front().unwrap_or(0.0))
            .collect();
        let mut frame = LiveFrame {
            started_ms: None,
            ended_ms: None,
        };
        for heard in self.endpointer.push(&voice) {
            match heard {
                crate::audio::Heard::Started { at_ms } => frame.started_ms = Some(at_ms),
                crate::audio::Heard::Ended { utterance, at_ms } => {
                    frame.ended_ms = Some(at_ms);
                    let rms = crate::audio::level::rms(&utterance.trim_silence().samples);
                    if rms > 0.0 {
                        let db = (super::SPEECH_REF_DBFS - crate::audio::level::to_dbfs(rms))
                            .clamp(*LIVE_GAIN_DB.start(), *LIVE_GAIN_DB.end());
                        self.gain = crate::audio::level::from_dbfs(db) as f32;
                    }
                }
            }
        }
        for (o, v) in out.iter_mut().zip(&voice) {
            *o += v * self.gain;
        }
        frame
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Largest step between neighbouring samples of the loop played twice, wrap included.
    fn max_step(samples: &[f32]) -> f32 {
        let twice: Vec<f32> = samples.iter().chain(samples).copied().collect();
        twice
            .windows(2)
            .map(|w| (w[1] - w[0]).abs())
            .fold(0.0, f32::max)
    }

    #[test]
    fn the_loop_point_has_no_click() {
        // A ramp jumps from 1 back to 0 when looped naively.
        let ramp: Vec<f32> = (0..1000).map(|i| i as f32 / 1000.0).collect();
        assert!(max_step(&ramp) > 0.99);
        let looped = make_loop(&ramp, 100);
        assert_eq!(looped.len(), 900);
        assert!(max_step(&looped) < 0.02, "{}", max_step(&looped));
    }

    #[test]
    fn a_loop_plays_from_its_offset_and_wraps() {
        let mut l = Loop::new(Arc::new(vec![1.0, 2.0, 3.0]), 4, 2.0);
        let mut out = [0.0; 7];
        l.add_to(&mut out);
        assert_eq!(out, [4.0, 6.0, 2.0, 4.0, 6.0, 2.0, 4.0]);
    }
}
