//! The caller's ear: plays the agent's audio out on a timeline, the way a phone does.
//!
//! Agents often send audio faster than real time, so "the agent stopped talking" has to mean
//! "its playout ended", not "bytes stopped arriving". The `Ear` is sans-IO: the caller of each
//! method says what time it is (ms since the call started), so it runs the same on a real clock
//! and in tests.
//!
//! ```
//! use voicesim::transport::ear::{Ear, EarEvent};
//!
//! let mut ear = Ear::new(8_000, 700.0);
//! // One second of agent audio arrives at once, 100 ms into the call ...
//! ear.hear(100.0, &vec![0.1; 8_000]);
//! ear.mark(100.0, "greeting");
//! // ... it plays until 1100 ms; the turn ends 700 ms of quiet later.
//! let events = ear.advance(2_000.0);
//! assert!(events.contains(&EarEvent::MarkPlayed { name: "greeting".into(), at_ms: 1_100.0 }));
//! assert!(events.contains(&EarEvent::TurnEnded { spoke_until_ms: 1_100.0, at_ms: 1_800.0 }));
//! ```

use std::collections::VecDeque;

use crate::audio::Clip;

/// A gap in playout this long or longer is a dropout the caller hears. Shorter ones are the
/// jitter of a real-time stream (the call's clock moves in 20 ms steps), which a phone's
/// jitter buffer absorbs.
pub const UNDERRUN_MS: f64 = 40.0;
/// A gap this long or longer is a pause (between sentences, say), not a dropout.
pub const PAUSE_MS: f64 = 250.0;

/// The agent has sent nothing new for this long (or half again its last gap between two
/// sends, where it sends more seldom): its turn may be over, so a caller who answers like a
/// person starts working out its answer now, not after the end gap. Longer than the 100 ms
/// chunks some protocols send in, with room for their jitter.
pub const QUIET_MS: f64 = 150.0;

/// Something the ear noticed; times are ms since the call started.
#[derive(Debug, Clone, PartialEq)]
pub enum EarEvent {
    /// Agent audio started playing (the first sample of a turn).
    AgentStarted { at_ms: f64 },
    /// The audio queued before this mark has played: time to echo it (Twilio).
    MarkPlayed { name: String, at_ms: f64 },
    /// The agent dropped its queued audio (barge-in); `dropped_ms` of it never played.
    Cleared { at_ms: f64, dropped_ms: f64 },
    /// The agent's playout ran dry mid-turn for `gap_ms` (40 to 250 ms) before more audio
    /// came: the caller heard a dropout (the agent streams slower than real time).
    Underrun { at_ms: f64, gap_ms: f64 },
    /// The agent's turn is over: its playout ended at `spoke_until_ms` and nothing new came for
    /// the gap, or the protocol said it is done; `at_ms` is when that became known.
    TurnEnded { spoke_until_ms: f64, at_ms: f64 },
    /// Nothing new has come for [`QUIET_MS`], or the protocol said the agent is done: if no
    /// more comes, the turn's playout ends at `spoke_until_ms` (which may be still to come).
    Quiet { spoke_until_ms: f64, at_ms: f64 },
}

/// The agent side of a call's playout.
#[derive(Debug, Clone)]
pub struct Ear {
    rate: u32,
    end_gap_ms: f64,
    /// The agent channel of the recording, on the call's timeline, from sample `base` on:
    /// a taped call forgets what is on tape and no turn needs any more.
    recording: Vec<f32>,
    base: usize,
    /// How far the tape has been given the agent channel, in samples.
    taped: usize,
    /// Where the turn playing now started, in samples.
    turn_start: usize,
    /// When the audio queued so far finishes playing.
    playout_end_ms: f64,
    marks: VecDeque<(String, f64)>,
    in_turn: bool,
    done_signalled: bool,
    /// When agent audio last arrived, the gap before that, and whether the quiet since has
    /// been told.
    heard_at_ms: f64,
    last_gap_ms: f64,
    quiet_told: bool,
    events: Vec<EarEvent>,
}

impl Ear {
    /// `end_gap_ms`: quiet after the playout ends before the turn counts as over (700 ms is the
    /// usual default).
    pub fn new(rate: u32, end_gap_ms: f64) -> Self {
        Ear {
            rate,
            end_gap_ms,
            recording: Vec::new(),
            base: 0,
            taped: 0,
            turn_start: 0,
            playout_end_ms: 0.0,
            marks: VecDeque::new(),
            in_turn: false,
            done_signalled: false,
            heard_at_ms: 0.0,
            last_gap_ms: 0.0,
            quiet_told: false,
            events: Vec::new(),
        }
    }

    fn ms_to_index(&self, ms: f64) -> usize {
        (ms * self.rate as f64 / 1000.0).round() as usize
    }

    /// Agent audio arrived at `now_ms`: it plays after what is already queued.
    pub fn hear(&mut self, now_ms: f64, samples: &[f32]) {
        if samples.is_empty() {
            return;
        }
        let start_ms = self.playout_end_ms.max(now_ms);
        // Audio after the gap is a new turn even if nobody advanced the clock in between.
        self.tick(now_ms);
        let gap = now_ms - self.playout_end_ms;
        if self.in_turn && (UNDERRUN_MS..PAUSE_MS).contains(&gap) {
            self.events.push(EarEvent::Underrun {
                at_ms: self.playout_end_ms,
                gap_ms: now_ms - self.playout_end_ms,
            });
        }
        let start = self.ms_to_index(start_ms);
        let continues = self.in_turn;
        if !self.in_turn {
            self.in_turn = true;
            self.done_signalled = false;
            self.turn_start = start;
            self.events.push(EarEvent::AgentStarted { at_ms: start_ms });
        }
        let start = start.saturating_sub(self.base);
        if self.recording.len() < start {
            self.recording.resize(start, 0.0);
        }
        self.recording.truncate(start);
        self.recording.extend_from_slice(samples);
        self.playout_end_ms = start_ms + samples.len() as f64 * 1000.0 / self.rate as f64;
        // The cadence of sends within a turn: not the wait before it, nor a pause in it.
        let gap = now_ms - self.heard_at_ms;
        if !continues {
            self.last_gap_ms = 0.0;
        } else if gap < PAUSE_MS {
            self.last_gap_ms = gap;
        }
        self.heard_at_ms = now_ms;
        self.quiet_told = false;
    }

    /// The agent placed a mark after the audio it sent so far.
    pub fn mark(&mut self, now_ms: f64, name: &str) {
        self.marks
            .push_back((name.to_string(), self.playout_end_ms.max(now_ms)));
    }

    /// The agent asked to drop its queued audio: what has not played by `now_ms` is gone, and
    /// every pending mark is echoed now.
    pub fn clear(&mut self, now_ms: f64) {
        let dropped_ms = (self.playout_end_ms - now_ms).max(0.0);
        if dropped_ms > 0.0 {
            let keep = self.ms_to_index(now_ms).saturating_sub(self.base);
            self.recording.truncate(keep);
            self.playout_end_ms = now_ms;
        }
        self.events.push(EarEvent::Cleared {
            at_ms: now_ms,
            dropped_ms,
        });
        for (name, _) in self.marks.drain(..) {
            self.events.push(EarEvent::MarkPlayed {
                name,
                at_ms: now_ms,
            });
        }
    }

    /// The protocol says the agent's turn is complete (OpenAI `response.done`, an RTVI
    /// `bot-stopped-speaking`): the turn ends when the playout does, without the gap.
    pub fn agent_done(&mut self) {
        self.done_signalled = true;
    }

    /// How long without new audio before the turn may be over.
    fn quiet_after_ms(&self) -> f64 {
        QUIET_MS.max(1.5 * self.last_gap_ms)
    }

    /// When the audio queued so far finishes playing.
    pub fn playout_end_ms(&self) -> f64 {
        self.playout_end_ms
    }

    /// True while queued agent audio is still playing at `now_ms`.
    pub fn is_playing(&self, now_ms: f64) -> bool {
        now_ms < self.playout_end_ms
    }

    /// Moves the clock to `now_ms`; returns what happened up to then, in order.
    pub fn advance(&mut self, now_ms: f64) -> Vec<EarEvent> {
        self.tick(now_ms);
        std::mem::take(&mut self.events)
    }

    fn tick(&mut self, now_ms: f64) {
        while let Some((_, due)) = self.marks.front() {
            if *due > now_ms {
                break;
            }
            let (name, at_ms) = self.marks.pop_front().unwrap_or_default();
            self.events.push(EarEvent::MarkPlayed { name, at_ms });
        }
        if self.in_turn
            && !self.quiet_told
            && (self.done_signalled || now_ms >= self.heard_at_ms + self.quiet_after_ms())
        {
            self.quiet_told = true;
            self.events.push(EarEvent::Quiet {
                spoke_until_ms: self.playout_end_ms,
                at_ms: if self.done_signalled {
                    now_ms
                } else {
                    self.heard_at_ms + self.quiet_after_ms()
                },
            });
        }
        if self.in_turn {
            let end = if self.done_signalled {
                self.playout_end_ms
            } else {
                self.playout_end_ms + self.end_gap_ms
            };
            if now_ms >= end {
                self.end_turn(end);
            }
        }
    }

    /// The call is over at `now_ms`: a turn still open ends here, as far as it played.
    pub fn finish(&mut self, now_ms: f64) -> Vec<EarEvent> {
        self.tick(now_ms);
        if self.in_turn {
            self.playout_end_ms = self.playout_end_ms.min(now_ms);
            self.end_turn(now_ms);
        }
        std::mem::take(&mut self.events)
    }

    fn end_turn(&mut self, at_ms: f64) {
        self.in_turn = false;
        self.events.push(EarEvent::TurnEnded {
            spoke_until_ms: self.playout_end_ms,
            at_ms,
        });
    }

    /// What the caller heard of the agent between two moments of the call (of a taped call,
    /// only the turn playing now and what is not yet on tape are still here).
    pub fn played(&self, from_ms: f64, to_ms: f64) -> Clip {
        let local = |ms: f64| self.ms_to_index(ms).saturating_sub(self.base);
        let from = local(from_ms).min(self.recording.len());
        let to = local(to_ms).clamp(from, self.recording.len());
        let played = self.recording.get(from..to).unwrap_or_default();
        Clip::new(played.to_vec(), self.rate)
    }

    /// The agent channel as the caller heard it, from the call's start to `until_ms`: audio
    /// still queued when the call ended was never heard. Of a taped call, what is on tape is
    /// not here.
    pub fn recording(&self, until_ms: f64) -> Clip {
        let mut samples = self.recording.clone();
        samples.resize(self.ms_to_index(until_ms).saturating_sub(self.base), 0.0);
        Clip::new(samples, self.rate)
    }

    /// The agent channel from where the tape stopped to `until_ms` (which has played, so no
    /// clear can take it back); what no turn still needs is forgotten.
    pub fn tape(&mut self, until_ms: f64) -> Vec<f32> {
        let until = self.ms_to_index(until_ms).max(self.taped);
        let (from, to) = (
            self.taped.saturating_sub(self.base),
            until.saturating_sub(self.base),
        );
        let mut out: Vec<f32> = self
            .recording
            .get(from..to.min(self.recording.len()))
            .unwrap_or_default()
            .to_vec();
        out.resize(to.saturating_sub(from), 0.0);
        self.taped = until;
        let keep_from = if self.in_turn {
            self.turn_start.min(until)
        } else {
            until
        };
        let forget = keep_from
            .saturating_sub(self.base)
            .min(self.recording.len());
        self.recording.drain(..forget);
        self.base += forget;
        out
    }

    /// Agent samples held in memory.
    pub fn held(&self) -> usize {
        self.recording.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An agent that answers in bursts faster than real time, pauses, is cleared mid-turn.
    fn agent_says(ear: &mut Ear, frame: u64) {
        let now = frame as f64 * 20.0;
        match frame % 150 {
            10..=20 => ear.hear(now, &vec![0.25 + frame as f32 / 10_000.0; 480]),
            60 => ear.clear(now),
            90..=95 => ear.hear(now, &vec![-0.5; 160]),
            _ => {}
        }
    }

    #[test]
    fn a_taped_ear_gives_the_tape_what_it_would_have_recorded_and_keeps_only_the_turn() {
        let (mut whole, mut taped) = (Ear::new(8_000, 700.0), Ear::new(8_000, 700.0));
        let mut tape = Vec::new();
        let mut held = 0;
        let (mut turns, mut started) = ((0, 0), 0.0);
        for frame in 0..3_000 {
            agent_says(&mut whole, frame);
            agent_says(&mut taped, frame);
            let now = frame as f64 * 20.0;
            let (a, b) = (whole.advance(now), taped.advance(now));
            assert_eq!(format!("{a:?}"), format!("{b:?}"));
            // A turn's audio, asked for when it ends, is the same from both.
            for event in &b {
                if let EarEvent::TurnEnded { spoke_until_ms, .. } = event {
                    let (a, b) = (
                        whole.played(started, *spoke_until_ms),
                        taped.played(started, *spoke_until_ms),
                    );
                    assert!(!a.is_empty() && a == b, "the turn at {started} ms differs");
                    turns.1 += 1;
                }
                if let EarEvent::AgentStarted { at_ms } = event {
                    (turns.0, started) = (turns.0 + 1, *at_ms);
                }
            }
            tape.extend(taped.tape(now));
            held = held.max(taped.held());
        }
        assert!(turns.0 >= 40 && turns.1 >= 40, "{turns:?}");
        let recording = whole.recording(3_000.0 * 20.0 - 20.0).samples;
        assert!(
            tape == recording,
            "{} taped, {} recorded",
            tape.len(),
            recording.len()
        );
        // A minute of calls, never more than the longest turn and what is queued to play.
        assert!(held < 8_000 * 3, "{held} samples held");
        assert!(whole.held() > 8_000 * 50);
    }
}
