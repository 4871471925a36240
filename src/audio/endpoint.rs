//! Turn detection by energy: a VAD over 20 ms frames against a noise floor (the room's average
//! level in dB) that follows the room, as simple agents do. The reference agent hears callers
//! with it, and a live caller's microphone is split into utterances by it. It is deliberately
//! ordinary: bursts can trigger it and loud babble can hide the end of a sentence, which is
//! what voicesim exists to show.

use super::{level, Clip};

/// Speech must stand this far above the noise floor.
const ABOVE_FLOOR_DB: f64 = 10.0;
/// Below this nothing counts as speech, however quiet the room.
const ABSOLUTE_MIN_DBFS: f64 = -50.0;
/// Voiced frames in a row that start an utterance (120 ms): a click or a knock is shorter.
const START_FRAMES: u32 = 6;
/// Utterances shorter than this (from start to last voiced frame) are noises, not words.
const MIN_UTTERANCE_MS: f64 = 300.0;
/// Audio kept from before the detected start, so the first syllable is not cut.
const PRE_ROLL_MS: f64 = 200.0;
/// How fast the floor (in dB) follows each frame: about a second's memory for quiet frames,
/// ten seconds' for voiced ones.
const FLOOR_FOLLOW: f64 = 0.02;
const FLOOR_FOLLOW_VOICED: f64 = 0.002;

/// What the endpointer noticed in a frame.
#[derive(Debug, Clone, PartialEq)]
pub enum Heard {
    /// The caller started talking; `at_ms` on the stream clock.
    Started { at_ms: f64 },
    /// The caller stopped: the utterance, and when its last voiced frame ended.
    Ended { utterance: Clip, at_ms: f64 },
}

/// Splits the caller's stream into utterances.
#[derive(Debug, Clone)]
pub struct Endpointer {
    rate: u32,
    /// Quiet needed after speech before the turn counts as over.
    silence_ms: f64,
    /// None until the first frame: the floor starts at whatever the room sounds like.
    floor_db: Option<f64>,
    received_ms: f64,
    voiced_run: u32,
    speaking: bool,
    last_voiced_end_ms: f64,
    started_ms: f64,
    /// Recent audio (pre-roll) while waiting, the utterance while speaking.
    buffer: Vec<f32>,
}

impl Endpointer {
    pub fn new(rate: u32, silence_ms: f64) -> Self {
        Endpointer {
            rate,
            silence_ms,
            floor_db: None,
            received_ms: 0.0,
            voiced_run: 0,
            speaking: false,
            last_voiced_end_ms: 0.0,
            started_ms: 0.0,
            buffer: Vec::new(),
        }
    }

    /// Stream time: ms of caller audio received so far.
    pub fn now_ms(&self) -> f64 {
        self.received_ms
    }

    pub fn is_speaking(&self) -> bool {
        self.speaking
    }

    fn samples(&self, ms: f64) -> usize {
        (ms * self.rate as f64 / 1000.0).round() as usize
    }

    /// Feeds caller audio (any length); returns what was noticed, in order.
    pub fn push(&mut self, samples: &[f32]) -> Vec<Heard> {
        let frame = crate::audio::Frame::samples_per_frame(self.rate);
        let mut heard = Vec::new();
        for chunk in samples.chunks(frame) {
            let start_ms = self.received_ms;
            self.received_ms += chunk.len() as f64 * 1000.0 / self.rate as f64;
            self.buffer.extend_from_slice(chunk);
            let energy = level::to_dbfs(level::rms(chunk)).max(-120.0);
            let floor = *self.floor_db.get_or_insert(energy);
            let voiced = energy > (floor + ABOVE_FLOOR_DB).max(ABSOLUTE_MIN_DBFS);
            // The floor is the room's average level; it barely moves under speech, but enough
            // to follow a room that got louder for good.
            let follow = if voiced {
                FLOOR_FOLLOW_VOICED
            } else {
                FLOOR_FOLLOW
            };
            self.floor_db = Some(floor + follow * (energy - floor));
            if voiced {
                self.voiced_run += 1;
                self.last_voiced_end_ms = self.received_ms;
            } else {
                self.voiced_run = 0;
            }
            if !self.speaking {
                if self.voiced_run >= START_FRAMES {
                    self.speaking = true;
                    let at_ms = start_ms - (START_FRAMES - 1) as f64 * 20.0;
                    self.started_ms = at_ms;
                    let keep = self.samples(PRE_ROLL_MS + self.received_ms - at_ms);
                    let cut = self.buffer.len().saturating_sub(keep);
                    self.buffer.drain(..cut);
                    heard.push(Heard::Started { at_ms });
                } else {
                    // Enough for the pre-roll before a start that is still being confirmed.
                    let keep = self.samples(PRE_ROLL_MS + START_FRAMES as f64 * 20.0);
                    let cut = self.buffer.len().saturating_sub(keep);
                    self.buffer.drain(..cut);
                }
            } else if self.received_ms - self.last_voiced_end_ms >= self.silence_ms {
                self.speaking = false;
                // The utterance ends with its last voiced frame plus a little air.
                let tail = self.samples(self.received_ms - self.last_voiced_end_ms - 100.0);
                let end = self.buffer.len().saturating_sub(tail);
                self.buffer.truncate(end);
                let utterance = Clip::new(std::mem::take(&mut self.buffer), self.rate);
                if self.last_voiced_end_ms - self.started_ms >= MIN_UTTERANCE_MS {
                    heard.push(Heard::Ended {
                        utterance,
                        at_ms: self.last_voiced_end_ms,
                    });
                }
            }
        }
        heard
    }
}

/// How loud the caller's speech stands above the room, as an agent can tell from what it
/// receives: the room's power over the frames outside utterances, against an utterance's power
/// between its detected start and its last voiced frame (noise included, so the noise is taken
/// out). The reference agent's `--deaf-below-snr` fault hears by it.
#[derive(Debug, Clone, Default)]
pub struct SnrMeter {
    /// Sum of squares of the samples outside utterances, and how many.
    room: f64,
    samples: u64,
}

/// What the meter reads high by: the median error over Piper lines in the `car` and `cafe`
/// profiles at 5-30 dB mixed as `voicesim noise mix` mixes them (`tests/threshold.rs`). The stretch it
/// measures leaves out the quiet around an utterance, which the mixer's speech level includes.
const SNR_CALIBRATION_DB: f64 = 2.3;

/// How far above the floor a frame may be and still count as the room.
const ROOM_ABOVE_FLOOR_DB: f64 = 3.0;

impl SnrMeter {
    /// Audio heard while `ear` was not in an utterance. Only frames near the room's floor
    /// count: a word's first syllables, before the endpointer is sure, and quiet words it never
    /// takes for speech would otherwise read as room, and at a high SNR outweigh it.
    pub fn room(&mut self, samples: &[f32], ear: &Endpointer) {
        let Some(floor) = ear.floor_db else { return };
        let frame = crate::audio::Frame::samples_per_frame(ear.rate);
        for chunk in samples.chunks(frame) {
            let power = level::rms(chunk).powi(2);
            if level::to_dbfs(power.sqrt()) <= floor + ROOM_ABOVE_FLOOR_DB {
                self.room += power * chunk.len() as f64;
                self.samples += chunk.len() as u64;
            }
        }
    }

    /// The SNR in dB of an utterance as the endpointer gave it (pre-roll and tail included,
    /// which are left out here); none before the room was heard or when nothing stands out.
    pub fn snr_db(&self, utterance: &Clip) -> Option<f64> {
        if self.samples == 0 {
            return None;
        }
        let ms = |ms: f64| (ms * utterance.rate as f64 / 1000.0).round() as usize;
        let samples = &utterance.samples;
        let (from, to) = (ms(PRE_ROLL_MS), samples.len().saturating_sub(ms(100.0)));
        let speech = samples.get(from..to).filter(|s| !s.is_empty())?;
        let room = self.room / self.samples as f64;
        let mixed = level::rms(speech).powi(2);
        let db = 10.0 * ((mixed - room).max(room * 1e-4) / room.max(1e-12)).log10();
        Some(db - SNR_CALIBRATION_DB)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(ms: usize, amp: f32) -> Vec<f32> {
        (0..ms * 8).map(|i| (i as f32 * 0.5).sin() * amp).collect()
    }

    #[test]
    fn an_utterance_in_steady_noise_is_found_with_its_end_on_the_stream_clock() {
        let mut ep = Endpointer::new(8_000, 400.0);
        let noise: Vec<f32> = tone(1_000, 0.01);
        let mut stream = noise.clone();
        stream.extend(tone(700, 0.2));
        stream.extend(tone(1_000, 0.01));
        let heard = ep.push(&stream);
        assert_eq!(heard.len(), 2, "{heard:?}");
        assert!(matches!(heard[0], Heard::Started { at_ms } if at_ms == 1_000.0));
        let Heard::Ended { utterance, at_ms } = &heard[1] else {
            panic!("{heard:?}")
        };
        assert_eq!(*at_ms, 1_700.0);
        // 200 ms pre-roll + 700 ms of speech + 100 ms tail.
        assert_eq!(utterance.len(), 8 * 1_000);
    }

    #[test]
    fn digital_silence_faint_hiss_and_clicks_are_not_speech() {
        let mut ep = Endpointer::new(8_000, 400.0);
        assert!(ep.push(&vec![0.0; 16_000]).is_empty());
        assert!(ep.push(&tone(2_000, 0.002)).is_empty());
        let mut clicks = Vec::new();
        for _ in 0..10 {
            clicks.extend(tone(60, 0.3));
            clicks.extend(tone(140, 0.002));
        }
        assert!(ep.push(&clicks).is_empty());
    }

    #[test]
    fn a_short_noise_starts_but_does_not_end_an_utterance() {
        let mut ep = Endpointer::new(8_000, 400.0);
        let mut stream = tone(1_000, 0.002);
        stream.extend(tone(200, 0.3));
        stream.extend(tone(1_000, 0.002));
        let heard = ep.push(&stream);
        assert!(matches!(heard[..], [Heard::Started { .. }]), "{heard:?}");
    }
}
