//! Who is talking when, on one side of a recorded call, from the whole recording at once.
//!
//! The live [`Endpointer`](crate::audio::Endpointer) decides frame by frame against a floor it
//! learns as it goes; a recording can be read twice, so the floor is the quiet end of the whole
//! side, and each span's edges are set to 5 ms within the 20 ms frame that found them.

use biquad::{Biquad, Coefficients, DirectForm2Transposed, ToHertz, Type, Q_BUTTERWORTH_F32};

use crate::audio::{level, Clip};

/// Speech stands this far above the side's noise floor (as the live endpointer's rule).
const ABOVE_FLOOR_DB: f64 = 10.0;
/// Below this nothing counts as speech, however quiet the side.
const ABSOLUTE_MIN_DBFS: f64 = -50.0;
/// The floor: this quantile of the 20 ms frame levels within [`FLOOR_WINDOW_MS`] (speech
/// leaves a tenth of any 3 s to the room between its words and turns).
const FLOOR_QUANTILE: f64 = 0.1;
const FLOOR_WINDOW_MS: f64 = 3_000.0;
/// Voiced stretches closer than this are one turn: a person's pause mid-sentence, not the
/// end of what they said (the gap after which a simulated call's caller hears a turn as over).
pub const TURN_GAP_MS: f64 = 700.0;
/// A turn shorter than this is a noise (a click, a knock), not words.
const MIN_TURN_MS: f64 = 300.0;
/// Voiced frames in a row that can start a turn (100 ms): shorter runs are clicks and knocks
/// unless a longer one joins them.
const START_FRAMES: usize = 5;
const FRAME_MS: f64 = 20.0;
const EDGE_MS: f64 = 5.0;
/// An edge's soft part must stand this far over the floor, and lies within this much.
const EDGE_ABOVE_FLOOR_DB: f64 = 5.0;
const EDGE_ABOVE_TYPICAL_DB: f64 = 3.0;
const EDGE_REACH_MS: f64 = 300.0;
/// The room beside an edge: this long, this far out from it.
const LOCAL_ROOM_MS: f64 = 100.0;
const LOCAL_ROOM_GAP_MS: f64 = 20.0;
/// Speech is heard over the room where it has more power than the room: together 3 dB over it.
const EDGE_OVER_ROOM_DB: f64 = 3.0;
/// Past a dip, the room's own swings (a few dB in an engine's pulses) are not yet the word.
const EDGE_RESUME_DB: f64 = 3.0;

/// A stretch of one side's speech, ms from the start of the recording.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Span {
    pub start_ms: f64,
    pub end_ms: f64,
}

impl Span {
    pub fn ms(&self) -> f64 {
        self.end_ms - self.start_ms
    }

    /// How long this span and `other` overlap (0 when they do not).
    pub fn overlap_ms(&self, other: &Span) -> f64 {
        (self.end_ms.min(other.end_ms) - self.start_ms.max(other.start_ms)).max(0.0)
    }

    pub fn contains(&self, ms: f64) -> bool {
        self.start_ms <= ms && ms < self.end_ms
    }
}

/// One side's speech.
#[derive(Debug, Clone, PartialEq)]
pub struct Activity {
    pub spans: Vec<Span>,
}

fn db(samples: &[f32]) -> f64 {
    level::to_dbfs(level::rms(samples)).max(-120.0)
}

/// The side band-limited to where speech carries its energy (300-3400 Hz, a phone line's
/// band): a car's rumble or a fan's hum below it would otherwise pass for the end of a word.
pub fn speech_band(side: &Clip) -> Clip {
    let rate = side.rate as f32;
    let stages: Vec<DirectForm2Transposed<f32>> = [
        (Type::HighPass, 300.0f32),
        (Type::LowPass, 3_400.0f32.min(rate * 0.45)),
    ]
    .into_iter()
    .filter_map(|(kind, f0)| {
        Coefficients::<f32>::from_params(kind, rate.hz(), f0.hz(), Q_BUTTERWORTH_F32).ok()
    })
    .map(DirectForm2Transposed::<f32>::new)
    .collect();
    let mut stages = stages;
    let samples = side
        .samples
        .iter()
        .map(|&s| stages.iter_mut().fold(s, |x, stage| stage.run(x)))
        .collect();
    Clip::new(samples, side.rate)
}

/// Which 20 ms frames of `side` hold a voice, by WebRTC's voice activity detector (libfvad):
/// it weighs six speech bands against a noise model it keeps up to date, so a passing car or
/// a street's roar is taken for words far less often than by level alone.
fn voiced(side: &Clip) -> Vec<bool> {
    use webrtc_vad::{SampleRate, Vad, VadMode};
    let (rate, clip) = match side.rate {
        8_000 => (SampleRate::Rate8kHz, side.clone()),
        16_000 => (SampleRate::Rate16kHz, side.clone()),
        32_000 => (SampleRate::Rate32kHz, side.clone()),
        48_000 => (SampleRate::Rate48kHz, side.clone()),
        _ => match side.clone().resample(16_000) {
            Ok(clip) => (SampleRate::Rate16kHz, clip),
            Err(_) => return Vec::new(),
        },
    };
    let frame = crate::audio::Frame::samples_per_frame(clip.rate).max(1);
    let mut vad = Vad::new_with_rate_and_mode(rate, VadMode::VeryAggressive);
    let pcm: Vec<i16> = clip
        .samples
        .iter()
        .map(|&s| crate::audio::to_i16(s))
        .collect();
    pcm.chunks_exact(frame)
        .map(|f| vad.is_voice_segment(f).unwrap_or(false))
        .collect()
}

/// The turns of speech on one side of a call.
pub fn detect(side: &Clip) -> Activity {
    let voice = voiced(side);
    let side = &speech_band(side);
    let per = |ms: f64| ((ms * side.rate as f64 / 1000.0).round() as usize).max(1);
    let frame = per(FRAME_MS);
    let levels: Vec<f64> = side.samples.chunks(frame).map(db).collect();
    // The floor follows the room: the quiet end of the 3 s around each frame, so a room that
    // swells (a passing car) is still the room at its loudest.
    let reach = (FLOOR_WINDOW_MS / 2.0 / FRAME_MS) as usize;
    // Per frame: the threshold a frame must pass to be speech, and the one a turn's soft edge
    // must pass (the room's typical level there plus a little: noise that is merely loud for
    // the room does not stretch a word).
    let (thresholds, edge_thresholds): (Vec<f64>, Vec<f64>) = (0..levels.len())
        .map(|i| {
            let mut near: Vec<f64> = levels
                .iter()
                .skip(i.saturating_sub(reach))
                .take(2 * reach + 1)
                .copied()
                .collect();
            near.sort_by(f64::total_cmp);
            let at = |q: f64| {
                near.get((near.len() as f64 * q) as usize)
                    .copied()
                    .unwrap_or(-120.0)
            };
            let floor = at(FLOOR_QUANTILE);
            (
                (floor + ABOVE_FLOOR_DB).max(ABSOLUTE_MIN_DBFS),
                (floor + EDGE_ABOVE_FLOOR_DB)
                    .max(at(0.5) + EDGE_ABOVE_TYPICAL_DB)
                    .max(ABSOLUTE_MIN_DBFS - 5.0),
            )
        })
        .unzip();
    let loud_frame = |i: usize| {
        voice.get(i).copied().unwrap_or(false)
            && levels
                .get(i)
                .zip(thresholds.get(i))
                .is_some_and(|(l, t)| l > t)
    };
    // Runs of voiced frames long enough to be more than a click, joined across short pauses.
    let mut runs: Vec<(usize, usize)> = Vec::new();
    let mut open: Option<usize> = None;
    for i in 0..levels.len() {
        match (loud_frame(i), open) {
            (true, None) => open = Some(i),
            (false, Some(start)) => {
                runs.push((start, i));
                open = None;
            }
            _ => {}
        }
    }
    if let Some(start) = open {
        runs.push((start, levels.len()));
    }
    let gap_frames = (TURN_GAP_MS / FRAME_MS) as usize;
    // The voiced runs of each turn.
    let mut turns: Vec<Vec<(usize, usize)>> = Vec::new();
    // A lone frame above the threshold is the room's own peak, not speech: it neither starts
    // a turn nor stretches one.
    for (start, end) in runs.into_iter().filter(|(start, end)| end - start > 1) {
        match turns
            .last_mut()
            .filter(|t| t.last().is_some_and(|l| start - l.1 < gap_frames))
        {
            Some(turn) => turn.push((start, end)),
            None => turns.push(vec![(start, end)]),
        }
    }
    // Each edge is then set to 5 ms: a word's soft start and end stand out of the room by
    // less than the frames that found the turn.
    let (step, look) = (per(EDGE_MS), per(2.0 * EDGE_MS));
    let reach = per(EDGE_REACH_MS);
    let audible = |from: usize, to: usize, threshold: f64| {
        side.samples
            .get(from..to)
            .is_some_and(|s| !s.is_empty() && db(s) > threshold)
    };
    let typical = |at: usize| {
        edge_thresholds
            .get(at / frame)
            .copied()
            .unwrap_or(ABSOLUTE_MIN_DBFS)
    };
    // Out from `from` while the 10 ms beyond the edge stand out over `threshold(at, false)`,
    // and past a dip shorter than a frame (a voice dips between its pulses) to 10 ms that
    // stand out over `threshold(at, true)`.
    let outward = |from: usize, back: bool, threshold: &dyn Fn(usize, bool) -> f64| {
        let (mut edge, mut at) = (from, from);
        if back {
            let floor = from.saturating_sub(reach);
            while at >= floor + look && edge.saturating_sub(at) < frame {
                if audible(at - look, at, threshold(at - look, at < edge)) {
                    edge = at - look;
                }
                at -= step;
            }
        } else {
            let ceiling = (from + reach).min(side.len());
            while at + look <= ceiling && at.saturating_sub(edge) < frame {
                if audible(at, at + look, threshold(at, at > edge)) {
                    edge = at + look;
                }
                at += step;
            }
        }
        edge
    };
    let refine = |start: usize, end: usize| {
        // From inside the edge frames: a frame loud as a whole may hold the word's edge anywhere.
        let (first, last) = ((start + 1) * frame, ((end - 1) * frame).min(side.len()));
        // Roughly, against the room's typical level and past a whole frame that does not stand
        // out (a voice dips between its pulses): that says where the room beside the turn is.
        let rough = (
            outward(first, true, &|at, _| typical(at)),
            outward(last, false, &|at, _| typical(at)),
        );
        // The edge is where the speech stops having more power than the room right beside it:
        // a room that swells as a word ends hides the end sooner than its typical level says,
        // and a room quieter there hears more of it. (Measured in a swelling engine at 10-20 dB:
        // latencies within 20 ms of the truth; up to 35 ms off against the typical level.)
        let (gap, beside) = (per(LOCAL_ROOM_GAP_MS), per(LOCAL_ROOM_MS));
        let room = |around: Option<&[f32]>| {
            around
                .filter(|r| r.len() >= beside / 2)
                .map(|r| db(r) + EDGE_OVER_ROOM_DB)
        };
        let before = side
            .samples
            .get(rough.0.saturating_sub(gap + beside)..rough.0.saturating_sub(gap));
        let after = side
            .samples
            .get((rough.1 + gap).min(side.len())..(rough.1 + gap + beside).min(side.len()));
        let over = |room: Option<f64>| {
            move |at: usize, resuming: bool| match room {
                Some(room) => (room + if resuming { EDGE_RESUME_DB } else { 0.0 })
                    .max(ABSOLUTE_MIN_DBFS - 5.0),
                None => typical(at),
            }
        };
        let first = outward(first, true, &over(room(before)));
        let last = outward(last, false, &over(room(after)));
        Span {
            start_ms: first as f64 * 1000.0 / side.rate as f64,
            end_ms: last as f64 * 1000.0 / side.rate as f64,
        }
    };
    let spans = turns
        .into_iter()
        .filter(|runs| runs.iter().any(|(s, e)| e - s >= START_FRAMES))
        .filter_map(|runs| Some(refine(runs.first()?.0, runs.last()?.1)))
        .filter(|span| span.ms() >= MIN_TURN_MS)
        .collect();
    Activity { spans }
}

/// The samples of `side` inside `spans` and outside them with `margin_ms` left out around
/// each span (where speech fades in and out), as power sums: (speech, samples), (rest, samples).
pub fn powers(side: &Clip, spans: &[Span], margin_ms: f64) -> ((f64, usize), (f64, usize)) {
    let ms = |i: usize| i as f64 * 1000.0 / side.rate as f64;
    let mut speech = (0.0, 0);
    let mut rest = (0.0, 0);
    let mut k = 0;
    for (i, &s) in side.samples.iter().enumerate() {
        let t = ms(i);
        while spans.get(k).is_some_and(|s| s.end_ms + margin_ms <= t) {
            k += 1;
        }
        let p = (s as f64) * (s as f64);
        match spans.get(k) {
            Some(span) if span.contains(t) => {
                speech.0 += p;
                speech.1 += 1;
            }
            Some(span) if t >= span.start_ms - margin_ms => {}
            _ if k
                .checked_sub(1)
                .and_then(|j| spans.get(j))
                .is_some_and(|s| t < s.end_ms + margin_ms) => {}
            _ => {
                rest.0 += p;
                rest.1 += 1;
            }
        }
    }
    (speech, rest)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(ms: usize, amp: f32) -> Vec<f32> {
        (0..ms * 16).map(|i| (i as f32 * 0.3).sin() * amp).collect()
    }

    /// A voice as a detector hears one: a 120 Hz buzz with its harmonics to 3 kHz, its loudness
    /// moving with the syllables (4 a second).
    fn voice(ms: usize, amp: f32) -> Vec<f32> {
        use std::f32::consts::TAU;
        (0..ms * 16)
            .map(|i| {
                let t = i as f32 / 16_000.0;
                let buzz: f32 = (1..=25)
                    .map(|k| (TAU * 120.0 * k as f32 * t).sin() / k as f32)
                    .sum();
                buzz * amp * (0.6 + 0.4 * (TAU * 4.0 * t).sin())
            })
            .collect()
    }

    /// A room's hiss: a fixed pseudo-random sequence.
    fn hiss(ms: usize, amp: f32) -> Vec<f32> {
        let mut x = 12_345u32;
        (0..ms * 16)
            .map(|_| {
                x = x.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                ((x >> 8) as f32 / (1u32 << 24) as f32 - 0.5) * amp
            })
            .collect()
    }

    #[test]
    fn speech_in_steady_noise_is_found_to_within_a_frame_and_pauses_join_a_turn() {
        let mut side = hiss(1_003, 0.01);
        side.extend(voice(800, 0.2));
        side.extend(hiss(400, 0.01)); // a pause mid-sentence
        side.extend(voice(600, 0.2));
        side.extend(hiss(2_000, 0.01));
        let found = detect(&Clip::new(side, 16_000));
        assert_eq!(found.spans.len(), 1, "{found:?}");
        let span = found.spans[0];
        assert!((span.start_ms - 1_003.0).abs() <= 20.0, "{span:?}");
        assert!((span.end_ms - 2_803.0).abs() <= 20.0, "{span:?}");
    }

    #[test]
    fn clicks_and_a_quiet_side_are_not_speech() {
        let mut side = tone(1_000, 0.0);
        for _ in 0..8 {
            side.extend(tone(30, 0.3));
            side.extend(tone(400, 0.0));
        }
        assert!(detect(&Clip::new(side, 16_000)).spans.is_empty());
        assert!(detect(&Clip::new(vec![0.0; 32_000], 16_000))
            .spans
            .is_empty());
    }

    #[test]
    fn powers_leave_out_the_margins_around_speech() {
        let mut side = tone(1_000, 0.01);
        side.extend(tone(1_000, 0.2));
        side.extend(tone(1_000, 0.01));
        let clip = Clip::new(side, 16_000);
        let spans = [Span {
            start_ms: 1_000.0,
            end_ms: 2_000.0,
        }];
        let ((speech, n), (rest, m)) = powers(&clip, &spans, 200.0);
        assert_eq!(n, 16_000);
        assert_eq!(m, 2 * 800 * 16);
        let ratio_db = 10.0 * ((speech / n as f64) / (rest / m as f64)).log10();
        assert!((ratio_db - 26.0).abs() < 0.2, "{ratio_db}");
    }
}
