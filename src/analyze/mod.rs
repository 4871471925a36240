//! A call from its recording alone: who spoke when, how soon the agent answered, who cut in
//! and how long the other took to yield, silences, talk ratio, each side's level and the
//! caller's SNR. The figures are voicesim's own [`Metrics`], worked out by the same code as a
//! simulated call's from the events a recording implies, so production calls and simulated
//! ones sit in one report.
//!
//! ```
//! use voicesim::analyze::{analyze, Sides};
//! use voicesim::audio::Clip;
//! use std::f32::consts::TAU;
//!
//! // A voice as a detector hears one: a 120 Hz buzz and its harmonics, syllables 4 a second.
//! let voice = |ms: usize| {
//!     (0..ms * 16).map(|i| {
//!         let t = i as f32 / 16_000.0;
//!         let buzz: f32 = (1..=25).map(|k| (TAU * 120.0 * k as f32 * t).sin() / k as f32).sum();
//!         buzz * 0.2 * (0.6 + 0.4 * (TAU * 4.0 * t).sin())
//!     })
//! };
//! let quiet = |ms: usize| std::iter::repeat(0.0f32).take(ms * 16);
//! // The caller speaks from 0.5 s to 1.5 s; the agent answers 600 ms later, for a second.
//! let caller: Vec<f32> = quiet(500).chain(voice(1_000)).chain(quiet(2_600)).collect();
//! let agent: Vec<f32> = quiet(2_100).chain(voice(1_000)).chain(quiet(1_000)).collect();
//! let sides = Sides::new(Clip::new(caller, 16_000), Clip::new(agent, 16_000));
//! let call = analyze(&sides, None).unwrap(); // None: no speech recognizer, no transcript
//! let latency = call.metrics.latency_p50_ms.unwrap();
//! assert!((latency - 600.0).abs() <= 20.0, "{latency}");
//! assert_eq!(call.metrics.caller_cut_ins, Some(0));
//! ```

pub mod activity;
pub mod extract;

use std::path::Path;

use crate::audio::{level, AudioError, Clip, Resampler};
use crate::judge::{percentile, Metrics};
use crate::record::{CallRecord, Line, Speaker};
use crate::speech::{SpeechError, Stt};
use crate::transport::call::CallOutcome;
use crate::transport::event::{CallEvent, CallEventKind, EndReason};
use crate::transport::turns::turns;

pub use activity::Span;

/// Margin left out around speech when the room between it is measured: speech fades in and
/// out over it, and would read as room.
const ROOM_MARGIN_MS: f64 = 200.0;

/// The two sides of a recorded call at one rate, caller and agent.
#[derive(Debug, Clone)]
pub struct Sides {
    pub caller: Clip,
    pub agent: Clip,
}

/// Which channel of a two-channel recording is the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Channel {
    Left,
    Right,
}

impl Sides {
    /// Both sides at the caller's rate, the shorter padded with silence to the longer.
    pub fn new(caller: Clip, agent: Clip) -> Sides {
        let mut agent = if agent.rate == caller.rate {
            agent
        } else {
            Resampler::new(agent.rate, caller.rate)
                .and_then(|mut r| r.process(&agent))
                .unwrap_or_else(|_| Clip::new(Vec::new(), caller.rate))
        };
        let mut caller = caller;
        let len = caller.len().max(agent.len());
        caller.samples.resize(len, 0.0);
        agent.samples.resize(len, 0.0);
        Sides { caller, agent }
    }

    /// A two-channel recording, the caller on `caller`'s side (Twilio, Vonage, Telnyx and
    /// voicesim's own `call.wav` put the caller left).
    pub fn stereo(path: &Path, caller: Channel) -> Result<Sides, AudioError> {
        let mut channels = Clip::open_channels(path)?.into_iter();
        let (Some(left), Some(right)) = (channels.next(), channels.next()) else {
            return Err(AudioError::Unsupported {
                path: path.into(),
                reason: "it has one channel; a call needs the caller and the agent on two \
                         channels, or give the two sides as two files with --pair"
                    .into(),
            });
        };
        Ok(match caller {
            Channel::Left => Sides::new(left, right),
            Channel::Right => Sides::new(right, left),
        })
    }

    /// One file per side (downmixed to mono each), as some platforms export them.
    pub fn pair(caller: &Path, agent: &Path) -> Result<Sides, AudioError> {
        Ok(Sides::new(Clip::open(caller)?, Clip::open(agent)?))
    }
}

/// A recorded call, worked out.
#[derive(Debug, Clone)]
pub struct Analysis {
    pub caller: Vec<Span>,
    pub agent: Vec<Span>,
    pub metrics: Metrics,
    pub record: CallRecord,
}

/// The events a recording implies: each caller span as speech started and ended, each agent
/// span as a turn that started and ended, in time order.
fn events(caller: &[Span], agent: &[Span]) -> Vec<CallEvent> {
    use crate::noise::MicEvent;
    let mut events: Vec<(f64, u8, CallEventKind)> = Vec::new();
    for s in caller {
        events.push((
            s.start_ms,
            1,
            CallEventKind::Mic {
                detail: MicEvent::SpeechStarted { at_ms: s.start_ms },
            },
        ));
        events.push((
            s.end_ms,
            0,
            CallEventKind::Mic {
                detail: MicEvent::SpeechEnded { at_ms: s.end_ms },
            },
        ));
    }
    for s in agent {
        events.push((s.start_ms, 1, CallEventKind::AgentStarted));
        events.push((
            s.end_ms,
            0,
            CallEventKind::AgentTurnEnded {
                spoke_until_ms: s.end_ms,
                cut_off: false,
                audio: Clip::new(Vec::new(), 8_000),
            },
        ));
    }
    // At the same moment an end comes before a start.
    events.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    events
        .into_iter()
        .map(|(at_ms, _, kind)| CallEvent { at_ms, kind })
        .collect()
}

/// Works out a recorded call: turns, latency, cut-ins, silences, talk ratio and levels. With
/// `stt`, each stretch the detector takes for speech is listened to: one with no words in it
/// is a sound of the room (a horn, a slammed door), not a turn, and the words of the rest are
/// the transcript. Without, every stretch is a turn and the transcript is empty.
pub fn analyze(sides: &Sides, stt: Option<&dyn Stt>) -> Result<Analysis, SpeechError> {
    let caller = activity::detect(&sides.caller);
    let agent = activity::detect(&sides.agent);
    let mut transcript = Vec::new();
    let (caller, agent) = match stt {
        Some(stt) => (
            heard(
                &sides.caller,
                caller.spans,
                Speaker::Caller,
                stt,
                &mut transcript,
            )?,
            heard(
                &sides.agent,
                agent.spans,
                Speaker::Agent,
                stt,
                &mut transcript,
            )?,
        ),
        None => (caller.spans, agent.spans),
    };
    transcript.sort_by(|a, b| a.at_ms.total_cmp(&b.at_ms));
    Ok(work_out(sides, caller, agent, transcript))
}

/// The turns of `side` in which `stt` hears words, their words added to `transcript`.
fn heard(
    side: &Clip,
    spans: Vec<Span>,
    speaker: Speaker,
    stt: &dyn Stt,
    transcript: &mut Vec<Line>,
) -> Result<Vec<Span>, SpeechError> {
    let mut kept = Vec::new();
    for span in spans {
        let text = listen(side, &span, stt)?;
        if words(&text) > 0 {
            transcript.push(Line {
                speaker,
                text,
                at_ms: span.start_ms,
                heard: None,
            });
            kept.push(span);
        }
    }
    Ok(kept)
}

/// What `stt` hears in `span` of `side`, with 100 ms of air either side so a soft first or
/// last sound is not cut; where that holds no words, once more with 300 ms. Whisper's tiny
/// model can hear nothing at all in a clear line cut one way and the line cut another (an
/// espeak "That is all, thank you. Goodbye." over a car at 20 dB: nothing, then "Happy Mall,
/// thank you, goodbye!"), and a turn it hears nothing in is taken for a noise.
pub(crate) fn listen(side: &Clip, span: &Span, stt: &dyn Stt) -> Result<String, SpeechError> {
    let mut text = String::new();
    for air in [100.0, 300.0] {
        text = stt
            .transcribe(&side.between(span.start_ms - air, span.end_ms + air))?
            .text
            .trim()
            .to_string();
        if words(&text) > 0 {
            break;
        }
    }
    Ok(text)
}

/// Words in a transcript, leaving out what a recognizer writes for sounds that are not
/// speech: `[MUSIC]`, `(door slams)`, `*cough*`, `♪`.
pub(crate) fn words(text: &str) -> usize {
    let mut depth = 0i32;
    let mut plain = String::new();
    for c in text.chars() {
        match c {
            '[' | '(' | '{' => depth += 1,
            ']' | ')' | '}' => depth = (depth - 1).max(0),
            _ if depth == 0 => plain.push(c),
            _ => {}
        }
    }
    plain
        .split('*')
        .step_by(2)
        .flat_map(str::split_whitespace)
        .filter(|w| w.chars().any(char::is_alphanumeric))
        .count()
}

fn work_out(sides: &Sides, caller: Vec<Span>, agent: Vec<Span>, transcript: Vec<Line>) -> Analysis {
    let events = events(&caller, &agent);
    let duration_ms = sides.caller.duration() * 1000.0;
    let record = CallRecord {
        ended: EndReason::CallerHungUp,
        duration_ms,
        transcript,
        turns: turns(&events),
        faults: Vec::new(),
        reactions: Vec::new(),
        hearing_drift: None,
        events,
        outcome: CallOutcome {
            ended: EndReason::CallerHungUp,
            duration_ms,
            caller: Clip::new(Vec::new(), sides.caller.rate),
            agent: Clip::new(Vec::new(), sides.caller.rate),
            tape: None,
            slip: Default::default(),
            stall_ms: None,
        },
    };
    let mut metrics = Metrics::of(&record);
    // A recording does not say where bursts were: none is known, not zero.
    metrics.false_barge_ins = None;
    metrics.bursts = None;
    let cut_in = |by: &[Span], into: &[Span]| -> Vec<f64> {
        by.iter()
            .filter_map(|s| {
                let talking = into
                    .iter()
                    .find(|o| o.contains(s.start_ms) && o.start_ms < s.start_ms)?;
                Some(talking.end_ms.min(s.end_ms) - s.start_ms)
            })
            .collect()
    };
    let by_caller = cut_in(&caller, &agent);
    let by_agent = cut_in(&agent, &caller);
    let mut yields: Vec<f64> = by_caller.iter().chain(&by_agent).copied().collect();
    yields.sort_by(f64::total_cmp);
    metrics.caller_cut_ins = Some(by_caller.len() as u32);
    metrics.agent_cut_ins = Some(by_agent.len() as u32);
    metrics.yield_p50_ms = percentile(&yields, 50.0);
    // Folded from +0: a float sum of nothing is -0, which would print as "-0".
    metrics.overlap_ms = Some(
        caller
            .iter()
            .flat_map(|c| agent.iter().map(|a| c.overlap_ms(a)))
            .fold(0.0, |total, ms| total + ms),
    );
    metrics.silence_max_ms = silence_max_ms(&caller, &agent);
    let talk = |spans: &[Span]| spans.iter().map(Span::ms).fold(0.0, |total, ms| total + ms);
    let (caller_talk, agent_talk) = (talk(&caller), talk(&agent));
    metrics.talk_ratio =
        (caller_talk + agent_talk > 0.0).then(|| caller_talk / (caller_talk + agent_talk));
    let levels = Levels::of(&sides.caller, &caller);
    metrics.caller_speech_dbfs = levels.speech_dbfs;
    metrics.caller_noise_dbfs = levels.noise_dbfs;
    metrics.caller_snr_db = levels.snr_db;
    metrics.agent_speech_dbfs = Levels::of(&sides.agent, &agent).speech_dbfs;
    Analysis {
        caller,
        agent,
        metrics,
        record,
    }
}

/// The longest stretch neither side spoke, between the first speech and the last.
fn silence_max_ms(caller: &[Span], agent: &[Span]) -> Option<f64> {
    let mut all: Vec<Span> = caller.iter().chain(agent).copied().collect();
    all.sort_by(|a, b| a.start_ms.total_cmp(&b.start_ms));
    let mut reach = all.first()?.end_ms;
    let mut longest = 0.0f64;
    for s in all.iter().skip(1) {
        longest = longest.max(s.start_ms - reach);
        reach = reach.max(s.end_ms);
    }
    Some(longest)
}

/// One side's speech and room levels, and the SNR between them as voicesim sets it when it
/// mixes (speech RMS over the speech, noise RMS over the room): the speech's power is what its
/// spans hold less the room's.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Levels {
    pub speech_dbfs: Option<f64>,
    pub noise_dbfs: Option<f64>,
    pub snr_db: Option<f64>,
}

impl Levels {
    pub fn of(side: &Clip, spans: &[Span]) -> Levels {
        let ((speech, n), (room, m)) = activity::powers(side, spans, ROOM_MARGIN_MS);
        let room = (m > 0).then(|| room / m as f64).filter(|&p| p > 1e-12);
        let mixed = (n > 0).then(|| speech / n as f64);
        let speech = mixed.map(|p| (p - room.unwrap_or(0.0)).max(p * 1e-3));
        let dbfs = |p: f64| level::to_dbfs(p.sqrt());
        Levels {
            speech_dbfs: speech.map(dbfs),
            noise_dbfs: room.map(dbfs),
            snr_db: speech.zip(room).map(|(s, r)| 10.0 * (s / r).log10()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sound_tags_are_not_words() {
        assert_eq!(words("[MUSIC] (door slams) *cough* ♪"), 0);
        assert_eq!(words("  "), 0);
        assert_eq!(words("Thank you. [laughs]"), 2);
        assert_eq!(words("order 4521"), 2);
    }

    #[test]
    fn the_longest_silence_is_between_anyone_s_speech() {
        let span = |a: f64, b: f64| Span {
            start_ms: a,
            end_ms: b,
        };
        let caller = [span(1_000.0, 2_000.0), span(6_000.0, 7_000.0)];
        let agent = [span(2_500.0, 4_000.0), span(3_000.0, 3_500.0)];
        assert_eq!(silence_max_ms(&caller, &agent), Some(2_000.0));
        assert_eq!(silence_max_ms(&[], &[]), None);
    }
}
