//! The noise KPIs of one call: what noise does to a conversation short of failing it. Each is
//! read off the call's record (events, turns, transcript) and its step results;
//! docs/noise-kpis.md defines them for users, with what counts and what does not.

use crate::judge::{StepResult, Verdict};
use crate::noise::MicEvent;
use crate::record::{CallRecord, Line, Speaker};
use crate::suite::{AskedToRepeat, TestCase};
use crate::transport::event::{CallEvent, CallEventKind, EndReason};
use crate::transport::turns::Turn;

/// A caller turn counts as not answered when the agent stayed silent this long after it: long
/// enough for any agent to have started, short of the no-answer timeout that ends a call.
pub const NO_ANSWER_MS: f64 = 3_000.0;

/// An agent that takes a burst for speech reacts within this long after the burst ends: its
/// endpointer's silence, then its first audio.
pub const BURST_REACH_MS: f64 = 2_000.0;

/// The caller must have been silent since this long before the burst for the agent's reaction
/// to be the burst's: an agent yields to speech this soon after it starts.
const QUIET_BEFORE_MS: f64 = 300.0;

/// Caller speech this close to the speech before it is the same turn (lines queued back to
/// back, a number typed key by key).
const SAME_TURN_MS: f64 = 500.0;

/// One caller turn on the call's clock; `end` is none when the call ended during it.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Span {
    start: f64,
    end: Option<f64>,
}

/// The caller's turns: its speech and key presses, runs close together with no agent turn
/// started between them merged.
fn caller_turns(events: &[CallEvent]) -> Vec<Span> {
    let mut spans: Vec<Span> = Vec::new();
    // Whether an agent turn started since the caller's last speech.
    let mut agent_since = false;
    for event in events {
        let start = match &event.kind {
            CallEventKind::Mic {
                detail: MicEvent::SpeechStarted { at_ms },
            } => *at_ms,
            CallEventKind::KeyPressed { .. } => event.at_ms,
            CallEventKind::Mic {
                detail: MicEvent::SpeechEnded { at_ms },
            } => {
                if let Some(last) = spans.last_mut() {
                    last.end = Some(*at_ms);
                }
                continue;
            }
            CallEventKind::AgentStarted => {
                agent_since = true;
                continue;
            }
            _ => continue,
        };
        match spans.last_mut() {
            Some(last)
                if !agent_since && last.end.is_some_and(|end| start - end < SAME_TURN_MS) =>
            {
                last.end = None
            }
            _ => spans.push(Span { start, end: None }),
        }
        agent_since = false;
        // A key press is over as it is pressed.
        if matches!(event.kind, CallEventKind::KeyPressed { .. }) {
            if let Some(last) = spans.last_mut() {
                last.end = Some(event.at_ms);
            }
        }
    }
    spans
}

/// Caller turns the agent never answered: after the turn ended, no agent audio started (or went
/// on) for at least [`NO_ANSWER_MS`], until the caller spoke again or the call ended. A call
/// the agent was to open and never said a word on counts one.
pub fn no_answers(record: &CallRecord) -> u32 {
    unanswered(
        &record.events,
        &record.turns,
        record.duration_ms,
        &record.ended,
    )
}

fn unanswered(events: &[CallEvent], turns: &[Turn], duration_ms: f64, ended: &EndReason) -> u32 {
    let spans = caller_turns(events);
    if spans.is_empty() && turns.is_empty() {
        return u32::from(matches!(ended, EndReason::NoAnswer { .. }));
    }
    let mut count = 0;
    for (i, span) in spans.iter().enumerate() {
        let Some(end) = span.end else { continue };
        let until = spans.get(i + 1).map_or(duration_ms, |next| next.start);
        if until - end < NO_ANSWER_MS {
            continue;
        }
        // An agent that started during the turn answered it early; one talking over it and
        // still talking after it may have answered in the same breath.
        let answered = turns.iter().any(|t| {
            t.agent_started_ms < until
                && (t.agent_started_ms > span.start || t.agent_started_ms + t.agent_talk_ms > end)
        });
        if !answered {
            count += 1;
        }
    }
    count
}

/// A burst on the call's clock: when it started and how long it sounded.
fn bursts(events: &[CallEvent]) -> Vec<(f64, f64)> {
    events
        .iter()
        .filter_map(|e| match &e.kind {
            CallEventKind::Mic {
                detail: MicEvent::Burst { at_ms, ms, .. },
            } => Some((*at_ms, *ms)),
            _ => None,
        })
        .collect()
}

/// How many bursts sounded on the call.
pub fn burst_count(record: &CallRecord) -> u32 {
    bursts(&record.events).len() as u32
}

/// The agent reacting to a burst as to speech: it cleared its audio (stopped talking), or
/// started a turn that answers no caller speech, between the burst's start and
/// [`BURST_REACH_MS`] after its end, the caller silent from [`QUIET_BEFORE_MS`] before the
/// burst until then. A stop is seen only where the protocol has a clear message (Twilio and
/// its family, Vonage, Genesys, Pipecat); an agent's greeting is never one.
pub fn false_barge_ins(record: &CallRecord) -> u32 {
    set_off(&record.events, &record.turns, record.duration_ms)
}

fn set_off(events: &[CallEvent], turns: &[Turn], duration_ms: f64) -> u32 {
    let bursts = bursts(events);
    let caller = caller_turns(events);
    let quiet = |from: f64, to: f64| {
        !caller
            .iter()
            .any(|s| s.start <= to && s.end.unwrap_or(duration_ms) >= from)
    };
    let burst_set_off = |at: f64| {
        bursts.iter().any(|&(start, ms)| {
            start <= at && at <= start + ms + BURST_REACH_MS && quiet(start - QUIET_BEFORE_MS, at)
        })
    };
    let stops = events
        .iter()
        .filter(|e| matches!(e.kind, CallEventKind::AgentCleared { .. }))
        .filter(|e| burst_set_off(e.at_ms))
        .count();
    let first_speech = caller.first().map_or(f64::INFINITY, |s| s.start);
    let starts = turns
        .iter()
        .filter(|t| t.caller_ended_ms.is_none() && t.agent_started_ms > first_speech)
        .filter(|t| burst_set_off(t.agent_started_ms))
        .count();
    (stops + starts) as u32
}

/// Agent turns asking the caller to say something again.
pub fn asked_to_repeat(transcript: &[Line], phrases: &AskedToRepeat) -> u32 {
    transcript
        .iter()
        .filter(|l| l.speaker == Speaker::Agent && phrases.asks(&l.text))
        .count() as u32
}

/// Caller lines said for a step after its first: the agent's answer had not met the step's
/// goal, so the caller said it again, rephrased it or added to it.
pub fn caller_repeats(steps: &[StepResult]) -> u32 {
    steps.iter().map(|s| s.turns.saturating_sub(1)).sum()
}

/// The call ended on a limit without its goal: the call's time or turn limit, or a step's
/// turns ran out, with a step not met or not reached. A call the agent ended, or that ended on
/// its silence (no answer) or an error, is not abandoned.
pub fn abandoned(
    test: &TestCase,
    steps: &[StepResult],
    ended: &EndReason,
    stopped_by: Option<&str>,
) -> bool {
    let missed =
        steps.len() < test.steps.len() || steps.iter().any(|s| s.verdict == Verdict::NotMet);
    let step_ran_out = steps.iter().zip(&test.steps).any(|(result, step)| {
        result.verdict == Verdict::NotMet && result.turns >= step.max_turns.0
    });
    // The caller hangs up when its turns run out; any other end was not the caller's doing.
    let limit = match ended {
        EndReason::TimeLimit => true,
        EndReason::CallerHungUp => {
            stopped_by.is_some_and(|s| s.starts_with("max_turns")) || step_ran_out
        }
        _ => false,
    };
    missed && limit
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::turns::turns;

    fn at(at_ms: f64, kind: CallEventKind) -> CallEvent {
        CallEvent { at_ms, kind }
    }

    fn mic(detail: MicEvent) -> CallEvent {
        at(0.0, CallEventKind::Mic { detail })
    }

    fn said(from: f64, to: f64) -> [CallEvent; 2] {
        [
            mic(MicEvent::SpeechStarted { at_ms: from }),
            mic(MicEvent::SpeechEnded { at_ms: to }),
        ]
    }

    fn agent(from: f64, to: f64) -> [CallEvent; 2] {
        [
            at(from, CallEventKind::AgentStarted),
            at(
                to,
                CallEventKind::AgentTurnEnded {
                    spoke_until_ms: to,
                    cut_off: false,
                    audio: crate::audio::Clip::new(Vec::new(), 8_000),
                },
            ),
        ]
    }

    fn burst(at_ms: f64, ms: f64) -> CallEvent {
        mic(MicEvent::Burst {
            at_ms,
            ms,
            file: "door.wav".into(),
            snr_db: 5.0,
        })
    }

    fn call(parts: &[&[CallEvent]]) -> Vec<CallEvent> {
        parts.iter().flat_map(|p| p.iter().cloned()).collect()
    }

    #[test]
    fn a_caller_turn_left_in_silence_is_not_answered_and_one_answered_late_or_early_is() {
        let no_answer = |events: &[CallEvent], duration: f64, ended: EndReason| {
            unanswered(events, &turns(events), duration, &ended)
        };
        let answered = call(&[
            &agent(0.0, 2_000.0),
            &said(3_000.0, 5_000.0),
            &agent(5_800.0, 8_000.0),
        ]);
        assert_eq!(no_answer(&answered, 9_000.0, EndReason::CallerHungUp), 0);
        // The agent's endpointer held open by noise: the call ends on its silence.
        let held = call(&[&agent(0.0, 2_000.0), &said(3_000.0, 5_000.0)]);
        let timeout = EndReason::NoAnswer {
            waited_ms: 20_000.0,
        };
        assert_eq!(no_answer(&held, 25_000.0, timeout.clone()), 1);
        // Hung up a moment after the caller spoke: too soon to say.
        assert_eq!(no_answer(&held, 6_000.0, EndReason::TimeLimit), 0);
        // Answered before the caller had finished (an endpointer that fired in a pause).
        let early = call(&[&said(0.0, 3_000.0), &agent(2_000.0, 6_000.0)]);
        assert_eq!(no_answer(&early, 10_000.0, EndReason::CallerHungUp), 0);
        // A cut-in the agent talked on through, then nothing: it went on past the cut-in.
        let talked_on = call(&[
            &agent(0.0, 9_000.0)[..1],
            &said(1_000.0, 2_000.0),
            &agent(0.0, 9_000.0)[1..],
        ]);
        assert_eq!(no_answer(&talked_on, 9_500.0, EndReason::CallerHungUp), 0);
        // Lines queued back to back are one turn, answered once.
        let queued = call(&[
            &said(0.0, 1_000.0),
            &said(1_000.0, 2_000.0),
            &agent(2_600.0, 4_000.0),
        ]);
        assert_eq!(no_answer(&queued, 8_000.0, EndReason::CallerHungUp), 0);
        // The agent blurted out over the caller's line and stopped; the caller said it again
        // at once, and that was never answered (a call of the demo at 5 dB).
        let blurted = call(&[
            &said(4_100.0, 6_813.0)[..1],
            &agent(5_520.0, 6_120.0),
            &said(4_100.0, 6_813.0)[1..],
            &said(6_920.0, 9_633.0),
        ]);
        assert_eq!(no_answer(&blurted, 29_660.0, timeout.clone()), 1);
        // A number keyed in is one turn: answered once, or left once.
        let key = |at_ms: f64| at(at_ms, CallEventKind::KeyPressed { digit: '1' });
        let keyed = [key(3_000.0), key(3_150.0), key(3_300.0)];
        let answered = call(&[&agent(0.0, 2_000.0), &keyed, &agent(4_000.0, 5_000.0)]);
        assert_eq!(no_answer(&answered, 6_000.0, EndReason::CallerHungUp), 0);
        let left = call(&[&agent(0.0, 2_000.0), &keyed]);
        assert_eq!(no_answer(&left, 23_300.0, timeout.clone()), 1);
        // An agent to open the call that never did.
        assert_eq!(no_answer(&[], 20_000.0, timeout), 1);
        assert_eq!(no_answer(&[], 20_000.0, EndReason::CallerHungUp), 0);
    }

    #[test]
    fn an_agent_stopping_or_starting_on_a_burst_while_the_caller_is_silent_is_a_false_barge_in() {
        let count = |events: &[CallEvent], duration: f64| set_off(events, &turns(events), duration);
        let cleared = |at_ms: f64| at(at_ms, CallEventKind::AgentCleared { dropped_ms: 800.0 });
        let greeting = agent(0.0, 2_000.0);
        let answer = said(3_000.0, 4_000.0);
        // The door slams while the agent answers; it stops talking.
        let stopped = call(&[
            &greeting,
            &answer,
            &agent(4_600.0, 6_300.0)[..1],
            &[burst(6_000.0, 600.0), cleared(6_250.0)],
            &agent(4_600.0, 6_300.0)[1..],
        ]);
        assert_eq!(count(&stopped, 10_000.0), 1);
        // The same stop on the caller's cut-in is a barge-in, not a false one.
        let cut_in = call(&[
            &greeting,
            &answer,
            &agent(4_600.0, 6_300.0)[..1],
            &said(5_900.0, 7_000.0),
            &[burst(6_000.0, 600.0), cleared(6_250.0)],
            &agent(4_600.0, 6_300.0)[1..],
        ]);
        assert_eq!(count(&cut_in, 10_000.0), 0);
        // The agent answers the caller, the door slams, it stops (a call of the demo at 20 dB).
        let answering = call(&[
            &greeting,
            &said(4_080.0, 6_265.0),
            &agent(6_920.0, 7_160.0)[..1],
            &[burst(7_037.0, 574.0), cleared(7_160.0)],
            &agent(6_920.0, 7_160.0)[1..],
        ]);
        assert_eq!(count(&answering, 9_000.0), 1);
        // The door slams in a silence and the agent answers it.
        let started = call(&[
            &greeting,
            &answer,
            &agent(4_600.0, 6_000.0),
            &[burst(8_000.0, 600.0)],
            &agent(9_700.0, 11_000.0),
        ]);
        assert_eq!(count(&started, 12_000.0), 1);
        // Too late after the burst to be its doing.
        let later = call(&[
            &greeting,
            &answer,
            &agent(4_600.0, 6_000.0),
            &[burst(8_000.0, 600.0)],
            &agent(10_700.0, 12_000.0),
        ]);
        assert_eq!(count(&later, 13_000.0), 0);
        // An answer to the caller with a burst between is an answer.
        let answered = call(&[
            &greeting,
            &said(3_000.0, 4_000.0),
            &[burst(4_100.0, 600.0)],
            &agent(4_900.0, 6_000.0),
        ]);
        assert_eq!(count(&answered, 7_000.0), 0);
        // A greeting is never one, burst or not.
        let greeted = call(&[&[burst(0.0, 600.0)], &agent(400.0, 2_000.0)]);
        assert_eq!(count(&greeted, 3_000.0), 0);
    }

    #[test]
    fn repeats_and_abandonment_come_from_the_steps() {
        let suite = crate::suite::Suite::parse(
            "name: s\ntests:\n  - name: t\n    steps:\n      - {goal: a, static_utterance: hi, max_turns: 2}\n      - {goal: b, static_utterance: bye}\n",
            "s.yaml",
            std::path::Path::new("."),
        )
        .unwrap();
        let test = &suite.tests[0];
        let step = |verdict, turns| StepResult {
            goal: "g".into(),
            verdict,
            justification: String::new(),
            turns,
        };
        let hung_up = EndReason::CallerHungUp;
        assert_eq!(
            caller_repeats(&[step(Verdict::Met, 2), step(Verdict::Met, 1)]),
            1
        );
        assert_eq!(caller_repeats(&[step(Verdict::NotMet, 2)]), 1);
        // The first step's two turns ran out.
        assert!(abandoned(test, &[step(Verdict::NotMet, 2)], &hung_up, None));
        // Met, then the call's time ran out before the second.
        assert!(abandoned(
            test,
            &[step(Verdict::Met, 1)],
            &EndReason::TimeLimit,
            None
        ));
        assert!(abandoned(
            test,
            &[step(Verdict::Met, 1)],
            &hung_up,
            Some("max_turns (20) reached")
        ));
        // Every goal met, whatever ended the call.
        let done = [step(Verdict::Met, 2), step(Verdict::Met, 1)];
        assert!(!abandoned(test, &done, &EndReason::TimeLimit, None));
        // The agent hung up, or never answered: not the caller giving up.
        assert!(!abandoned(
            test,
            &[step(Verdict::Met, 1)],
            &EndReason::AgentHungUp,
            None
        ));
        let silent = EndReason::NoAnswer {
            waited_ms: 20_000.0,
        };
        // ... even when its silence came after the step's last turn.
        assert!(!abandoned(test, &[step(Verdict::NotMet, 2)], &silent, None));
    }
}
