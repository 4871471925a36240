use std::collections::HashMap;
use std::sync::Arc;

use rand::RngExt;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use super::layer::{make_loop, BurstTrack, LiveVoice, Loop, Schedule, SpeechQueue};
use super::line::LineState;
use super::profile::{NoiseProfile, Timing};
use super::{NoiseError, SPEECH_REF_DBFS};
use crate::audio::{level, AudioError, Clip, Frame, Resampler};

/// A profile's recordings decoded and resampled to one timeline rate: the expensive part of
/// setting up a call, done once and shared by every call at that rate.
#[derive(Debug, Clone)]
pub struct LoadedNoise {
    pub profile: NoiseProfile,
    pub rate: u32,
    backgrounds: Vec<Sound>,
    bursts: Vec<Sound>,
}

/// One decoded file of a profile.
#[derive(Debug, Clone)]
struct Sound {
    label: String,
    samples: Arc<Vec<f32>>,
    /// RMS over the whole loop (backgrounds) or the whole burst.
    rms: f64,
}

impl LoadedNoise {
    pub fn load(profile: &NoiseProfile, rate: u32) -> Result<LoadedNoise, NoiseError> {
        let sound =
            |file: &str, field: String, crossfade_ms: Option<u32>| -> Result<Sound, NoiseError> {
                let source = profile
                    .source(file)
                    .map_err(|message| NoiseError::Profile {
                        place: format!("{}: {field}", profile.name),
                        message,
                    })?;
                let clip = source.load()?.resample(rate)?;
                let samples = match crossfade_ms {
                    Some(ms) => make_loop(&clip.samples, (ms as u64 * rate as u64 / 1000) as usize),
                    None => clip.samples,
                };
                let rms = level::rms(&samples);
                if rms == 0.0 {
                    return Err(NoiseError::Profile {
                        place: format!("{}: {field}", profile.name),
                        message: format!("{source} is silent; a noise file needs sound in it"),
                    });
                }
                Ok(Sound {
                    label: file.to_string(),
                    samples: Arc::new(samples),
                    rms,
                })
            };
        let backgrounds = (profile.background.iter().enumerate())
            .map(|(i, bg)| sound(&bg.file, format!("background[{i}]"), Some(bg.crossfade_ms)))
            .collect::<Result<_, _>>()?;
        let bursts = (profile.bursts.iter().enumerate())
            .map(|(i, b)| sound(&b.file, format!("bursts[{i}]"), None))
            .collect::<Result<_, _>>()?;
        Ok(LoadedNoise {
            profile: profile.clone(),
            rate,
            backgrounds,
            bursts,
        })
    }

    /// Whether both play the very same decoded sounds (loaded once, shared).
    #[cfg(test)]
    pub(crate) fn shares_sounds_with(&self, other: &LoadedNoise) -> bool {
        let sounds = |n: &LoadedNoise| -> Vec<*const Vec<f32>> {
            (n.backgrounds.iter().chain(&n.bursts))
                .map(|s| Arc::as_ptr(&s.samples))
                .collect()
        };
        !self.backgrounds.is_empty() && sounds(self) == sounds(other)
    }

    /// (label, duration in seconds, RMS dBFS, peak dBFS) of each background loop, then each burst.
    pub fn levels(&self) -> Vec<(String, f64, f64, f64)> {
        (self.backgrounds.iter().chain(&self.bursts))
            .map(|s| {
                let d = s.samples.len() as f64 / self.rate as f64;
                (
                    s.label.clone(),
                    d,
                    level::to_dbfs(s.rms),
                    level::to_dbfs(level::peak(&s.samples)),
                )
            })
            .collect()
    }
}

/// Something that happened on the microphone timeline; times are ms from the call start.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum MicEvent {
    SpeechStarted {
        at_ms: f64,
    },
    SpeechEnded {
        at_ms: f64,
    },
    Burst {
        at_ms: f64,
        /// How long it sounds.
        ms: f64,
        file: String,
        snr_db: f64,
    },
    FrameLost {
        at_ms: f64,
    },
}

/// Random streams, one per purpose, so adding a burst never moves the background offsets.
const STREAM_BACKGROUND: u64 = 0;
const STREAM_BURST: u64 = 1 << 16;
const STREAM_LINE: u64 = 1 << 32;

/// The caller's microphone: an endless stream of 20 ms frames.
///
/// Background noise and bursts sound in every frame, whether or not the caller speaks; queued
/// utterances are mixed in back to back. The same [`LoadedNoise`], seed and utterances always
/// give the same samples.
pub struct MicTimeline {
    rate: u32,
    frame_len: usize,
    index: u64,
    backgrounds: Vec<Loop>,
    background_snrs: Vec<f64>,
    bursts: Vec<BurstTrack>,
    speech: SpeechQueue,
    /// A person speaking live, for `call --live`.
    live: Option<LiveVoice>,
    line: LineState,
    line_rng: ChaCha8Rng,
    resamplers: HashMap<u32, Resampler>,
    events: Vec<MicEvent>,
    marks: Vec<(usize, bool)>,
    speech_energy: f64,
    noise_energy: f64,
}

fn rng(seed: u64, stream: u64) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(stream);
    rng
}

/// Linear gain that puts a sound of RMS `rms` at `snr` dB below the speech reference.
fn gain_for(rms: f64, snr: f64) -> f32 {
    (level::from_dbfs(SPEECH_REF_DBFS - snr) / rms) as f32
}

impl MicTimeline {
    pub fn new(noise: &LoadedNoise, seed: u64) -> MicTimeline {
        let rate = noise.rate;
        let profile = &noise.profile;
        let mut backgrounds = Vec::new();
        let mut background_snrs = Vec::new();
        for (i, (bg, sound)) in profile
            .background
            .iter()
            .zip(&noise.backgrounds)
            .enumerate()
        {
            let mut rng = rng(seed, STREAM_BACKGROUND + i as u64);
            let snr = bg.snr.pick(&mut rng);
            let offset = rng.random_range(0..sound.samples.len());
            backgrounds.push(Loop::new(
                sound.samples.clone(),
                offset,
                gain_for(sound.rms, snr),
            ));
            background_snrs.push(snr);
        }
        let bursts = (profile.bursts.iter().zip(&noise.bursts).enumerate())
            .map(|(i, (burst, sound))| {
                let mut rng = rng(seed, STREAM_BURST + i as u64);
                let snr = burst.snr.pick(&mut rng);
                let schedule = match burst.timing() {
                    Timing::At(times) => {
                        let mut starts: Vec<u64> = times
                            .iter()
                            .map(|t| (t * rate as f64).round() as u64)
                            .collect();
                        starts.sort_unstable();
                        Schedule::At(starts.into())
                    }
                    Timing::PerMinute(per_minute) => Schedule::poisson(rng, per_minute, rate),
                };
                BurstTrack::new(
                    sound.label.clone(),
                    snr,
                    sound.samples.clone(),
                    gain_for(sound.rms, snr),
                    schedule,
                )
            })
            .collect();
        MicTimeline {
            rate,
            frame_len: Frame::samples_per_frame(rate),
            index: 0,
            backgrounds,
            background_snrs,
            bursts,
            speech: SpeechQueue::default(),
            live: None,
            line: LineState::new(&profile.line, rate),
            line_rng: rng(seed, STREAM_LINE),
            resamplers: HashMap::new(),
            events: Vec::new(),
            marks: Vec::new(),
            speech_energy: 0.0,
            noise_energy: 0.0,
        }
    }

    pub fn rate(&self) -> u32 {
        self.rate
    }

    /// A person's live voice as well as queued utterances: pieces of samples at the timeline
    /// rate, sent from a capture thread, mixed in as they come (see [`LiveVoice`]).
    pub fn with_live_voice(mut self, source: std::sync::mpsc::Receiver<Vec<f32>>) -> Self {
        self.live = Some(LiveVoice::new(source, self.rate));
        self
    }

    /// The SNR each background layer got on this call (ranges are drawn from the seed).
    pub fn background_snrs(&self) -> &[f64] {
        &self.background_snrs
    }

    /// Queues an utterance, resampled to the timeline rate and normalized to the speech
    /// reference level; it starts in the next frame, or after the utterances already queued.
    pub fn say(&mut self, clip: Clip) -> Result<(), AudioError> {
        let clip = if clip.rate == self.rate {
            clip
        } else {
            let resampler = match self.resamplers.entry(clip.rate) {
                std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
                std::collections::hash_map::Entry::Vacant(e) => {
                    e.insert(Resampler::new(clip.rate, self.rate)?)
                }
            };
            resampler.process(&clip)?
        };
        self.speech
            .push(clip.normalized_to(SPEECH_REF_DBFS).samples);
        Ok(())
    }

    /// True while queued speech remains to be played, or the live voice is speaking.
    pub fn is_speaking(&self) -> bool {
        self.speech.is_speaking() || self.live.as_ref().is_some_and(LiveVoice::is_speaking)
    }

    /// Drops the rest of the queued speech: the caller stops mid-sentence.
    pub fn stop_speaking(&mut self) {
        if self.speech.is_speaking() {
            self.speech.clear();
            self.events.push(MicEvent::SpeechEnded {
                at_ms: self.elapsed_ms(),
            });
        }
    }

    /// Milliseconds of the call produced so far.
    pub fn elapsed_ms(&self) -> f64 {
        self.index as f64 * crate::audio::FRAME_MS as f64
    }

    /// Events since the last call.
    pub fn take_events(&mut self) -> Vec<MicEvent> {
        std::mem::take(&mut self.events)
    }

    /// SNR actually achieved while the caller spoke so far, measured on the separate speech and
    /// noise signals before line impairments; `None` before any speech or with no noise.
    pub fn measured_snr_db(&self) -> Option<f64> {
        (self.speech_energy > 0.0 && self.noise_energy > 0.0)
            .then(|| 10.0 * (self.speech_energy / self.noise_energy).log10())
    }

    pub fn next_frame(&mut self) -> Frame {
        let n = self.frame_len;
        let t0 = self.index * n as u64;
        let ms = |offset: u64| offset as f64 * 1000.0 / self.rate as f64;
        let mut samples = vec![0.0f32; n];
        for bg in &mut self.backgrounds {
            bg.add_to(&mut samples);
        }
        for burst in &mut self.bursts {
            for start in burst.add_to(&mut samples, t0) {
                self.events.push(MicEvent::Burst {
                    at_ms: ms(start),
                    ms: ms(burst.len() as u64),
                    file: burst.label.clone(),
                    snr_db: burst.snr,
                });
            }
        }
        let mut speech = vec![0.0f32; n];
        self.marks.clear();
        let covered = self.speech.add_to(&mut speech, &mut self.marks);
        for &(offset, started) in &self.marks {
            let at_ms = ms(t0 + offset as u64);
            self.events.push(if started {
                MicEvent::SpeechStarted { at_ms }
            } else {
                MicEvent::SpeechEnded { at_ms }
            });
        }
        for (s, x) in samples.iter_mut().zip(&speech).take(covered) {
            self.speech_energy += (*x as f64) * (*x as f64);
            self.noise_energy += (*s as f64) * (*s as f64);
            *s += x;
        }
        if let Some(live) = self.live.as_mut() {
            let heard = live.add_to(&mut samples);
            if let Some(at_ms) = heard.started_ms {
                self.events.push(MicEvent::SpeechStarted { at_ms });
            }
            if let Some(at_ms) = heard.ended_ms {
                self.events.push(MicEvent::SpeechEnded { at_ms });
            }
        }
        if !self.line.apply(&mut samples, &mut self.line_rng) {
            self.events.push(MicEvent::FrameLost { at_ms: ms(t0) });
        }
        let frame = Frame {
            index: self.index,
            rate: self.rate,
            samples,
        };
        self.index += 1;
        frame
    }

    /// The next `seconds` of the call as one clip.
    pub fn render(&mut self, seconds: f64) -> Clip {
        let frames = (seconds * 1000.0 / crate::audio::FRAME_MS as f64).ceil() as usize;
        let mut out = Vec::with_capacity(frames * self.frame_len);
        for _ in 0..frames {
            out.extend(self.next_frame().samples);
        }
        Clip::new(out, self.rate)
    }
}

impl Iterator for MicTimeline {
    type Item = Frame;

    /// Never ends: a microphone does not run out.
    fn next(&mut self) -> Option<Frame> {
        Some(self.next_frame())
    }
}
