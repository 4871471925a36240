//! Verdicts: whether the agent met a step's success criterion or an expectation, with a
//! justification. Rules decide offline and deterministically; an LLM judge decides what only
//! words describe. With neither, the verdict is "not judged" — never a silent pass.

pub mod eval;
pub mod kpi;

use serde::{Deserialize, Serialize};

use crate::llm::{Chat, LlmError, Message};
use crate::record::{CallRecord, Line, Speaker};
use crate::speech::wer::normalize;
use crate::suite::{Metric, Rule};
use crate::transport::event::CallEventKind;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Met,
    NotMet,
    /// Nothing could decide it: no rule, no LLM judge, or a metric the call did not produce.
    NotJudged,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Judgement {
    pub verdict: Verdict,
    pub justification: String,
}

impl Judgement {
    fn new(verdict: Verdict, justification: impl Into<String>) -> Self {
        Judgement {
            verdict,
            justification: justification.into(),
        }
    }

    pub fn not_judged(why: impl Into<String>) -> Self {
        Judgement::new(Verdict::NotJudged, why)
    }
}

/// The numbers of one call that thresholds can be put on.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default)]
pub struct Metrics {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency_p50_ms: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency_p95_ms: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency_max_ms: Option<f64>,
    pub turns: u32,
    pub duration_s: f64,
    pub underruns: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wer: Option<f64>,
    /// How far what the caller heard as the agent's turns played is from the whole turns (the
    /// transcript): WER, 0 when every turn was heard alike (see [`CallRecord::hearing_drift`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hearing_drift: Option<f64>,
    /// voicesim's own lateness: how far behind the 20 ms schedule it sent its frames (p99 and
    /// the worst), none for an unpaced call. High figures mean the machine was too busy for
    /// the call's timing to be trusted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub send_slip_p99_ms: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub send_slip_max_ms: Option<f64>,
    /// The longest the whole of voicesim's runtime stalled during the call (every call and
    /// timer of the process waited as long): a starved CPU, not this call's socket.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub loop_stall_max_ms: Option<f64>,
    /// The caller's reaction time over the turns it answered (see [`crate::record::Reaction`]),
    /// and the most it missed its moment by: an answer after its reaction time, or a cut-in
    /// after the moment it chose (see [`crate::transport::turns::BargeIn::late_ms`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reaction_p50_ms: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reaction_p95_ms: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reaction_late_max_ms: Option<f64>,
    /// The noise KPIs (see [`kpi`]); none on a call that could not be made.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub no_answers: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub false_barge_ins: Option<u32>,
    /// Bursts that sounded on the call: what false barge-ins are out of.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bursts: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub asked_to_repeat: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub caller_repeats: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub abandoned: Option<bool>,
    /// From a call's recording (`voicesim analyze`): how long both sides talked at once, how
    /// often each started while the other talked, and how long the one cut into went on after
    /// (median over cut-ins).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub overlap_ms: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caller_cut_ins: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_cut_ins: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub yield_p50_ms: Option<f64>,
    /// The longest stretch neither side spoke, between the first speech and the last.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub silence_max_ms: Option<f64>,
    /// The caller's share of the talking, 0 to 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub talk_ratio: Option<f64>,
    /// The caller's speech and room levels, and the SNR between them as voicesim mixes it
    /// (speech RMS against noise RMS), and the agent's speech level.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caller_speech_dbfs: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caller_noise_dbfs: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caller_snr_db: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_speech_dbfs: Option<f64>,
}

impl Metrics {
    /// The WER is of what the agent reported hearing (OpenAI Realtime's input transcription)
    /// against everything the caller said; agents that report nothing have none.
    pub fn of(record: &CallRecord) -> Metrics {
        let mut latencies: Vec<f64> = record
            .turns
            .iter()
            .filter_map(|t| t.response_latency_ms)
            .collect();
        latencies.sort_by(f64::total_cmp);
        let heard: Vec<&str> = record
            .events
            .iter()
            .filter_map(|e| match &e.kind {
                CallEventKind::AgentHeard { text } => Some(text.as_str()),
                _ => None,
            })
            .collect();
        let wer = (!heard.is_empty()).then(|| {
            let said = crate::record::words(&record.transcript, Speaker::Caller);
            crate::speech::wer::wer(&said, &heard.join(" "))
        });
        let mut reactions: Vec<f64> = record.reactions.iter().map(|r| r.reaction_ms).collect();
        reactions.sort_by(f64::total_cmp);
        Metrics {
            reaction_p50_ms: percentile(&reactions, 50.0),
            reaction_p95_ms: percentile(&reactions, 95.0),
            reaction_late_max_ms: record
                .reactions
                .iter()
                .map(|r| r.late_ms)
                .chain(
                    record
                        .turns
                        .iter()
                        .filter_map(|t| t.barge_in.as_ref()?.late_ms),
                )
                .reduce(f64::max),
            latency_p50_ms: percentile(&latencies, 50.0),
            latency_p95_ms: percentile(&latencies, 95.0),
            latency_max_ms: latencies.last().copied(),
            turns: record.turns.len() as u32,
            duration_s: record.duration_ms / 1000.0,
            underruns: record.turns.iter().map(|t| t.underruns).sum(),
            wer,
            hearing_drift: record.hearing_drift,
            send_slip_p99_ms: record.outcome.slip.quantile(0.99),
            send_slip_max_ms: (record.outcome.slip.frames() > 0)
                .then(|| record.outcome.slip.max_ms()),
            loop_stall_max_ms: record.outcome.stall_ms,
            no_answers: Some(kpi::no_answers(record)),
            false_barge_ins: Some(kpi::false_barge_ins(record)),
            bursts: Some(kpi::burst_count(record)),
            // These need the suite and the steps: see `kpi`'s callers.
            asked_to_repeat: None,
            caller_repeats: None,
            abandoned: None,
            ..Metrics::default()
        }
    }

    /// Why this call's timing cannot be trusted, if voicesim itself was late past a bound:
    /// it sent a frame over [`LATE_MS`] behind its schedule, or the caller answered over
    /// [`ANSWER_LATE_MS`] after its reaction target. Timing verdicts of such a call are not
    /// judged, with this reason.
    pub fn harness_late(&self) -> Option<String> {
        let why = if let Some(ms) = self.send_slip_max_ms.filter(|&ms| ms > LATE_MS) {
            format!("voicesim sent the caller's audio up to {ms:.0} ms late")
        } else if let Some(ms) = self.reaction_late_max_ms.filter(|&ms| ms > ANSWER_LATE_MS) {
            format!(
                "the caller spoke {:.1} s later than a person would",
                ms / 1000.0
            )
        } else {
            return None;
        };
        Some(format!(
            "{why}, so the call's timing is not the agent's: lower --parallel or give voicesim more CPU"
        ))
    }

    pub fn get(&self, metric: Metric) -> Option<f64> {
        match metric {
            Metric::LatencyP50Ms => self.latency_p50_ms,
            Metric::LatencyP95Ms => self.latency_p95_ms,
            Metric::LatencyMaxMs => self.latency_max_ms,
            Metric::Turns => Some(self.turns as f64),
            Metric::DurationS => Some(self.duration_s),
            Metric::Underruns => Some(self.underruns as f64),
            Metric::Wer => self.wer,
            Metric::HearingDrift => self.hearing_drift,
            Metric::NoAnswers => self.no_answers.map(f64::from),
            Metric::FalseBargeIns => self.false_barge_ins.map(f64::from),
            Metric::AskedToRepeat => self.asked_to_repeat.map(f64::from),
            Metric::CallerRepeats => self.caller_repeats.map(f64::from),
        }
    }
}

/// voicesim sending a frame this late has stalled long enough to move what a call measures
/// (latency, barge-in timing) by as much.
pub const LATE_MS: f64 = 100.0;

/// A caller answering this long after its persona's reaction time has kept the agent waiting
/// long enough to set off its "are you still there?" logic: the call no longer tests what it
/// meant to.
pub const ANSWER_LATE_MS: f64 = 1_000.0;

/// How one step went.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct StepResult {
    pub goal: String,
    pub verdict: Verdict,
    pub justification: String,
    /// Caller turns spent on it.
    pub turns: u32,
}

/// Nearest-rank percentile of sorted values.
pub fn percentile(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted.get(rank.clamp(1, sorted.len()) - 1).copied()
}

/// Decides `rule` on what the agent said (`agent_text`) and, for metric rules, the call's
/// metrics (`None` while the call is still going).
pub fn check(rule: &Rule, agent_text: &str, metrics: Option<&Metrics>) -> Judgement {
    let text = normalize(agent_text);
    let said = |ok: bool, what: String| {
        Judgement::new(
            if ok { Verdict::Met } else { Verdict::NotMet },
            format!(
                "the agent {} {what}",
                if ok { "said" } else { "did not say" }
            ),
        )
    };
    match rule {
        Rule::Contains(needle) => {
            let needle_n = normalize(needle);
            let ok = !needle_n.is_empty() && format!(" {text} ").contains(&format!(" {needle_n} "));
            said(ok, format!("{needle:?}"))
        }
        Rule::Regex(pattern) => said(
            pattern.0.is_match(&text),
            format!("anything matching /{}/", pattern.0.as_str()),
        ),
        Rule::Not(inner) => {
            let j = check(inner, agent_text, metrics);
            let verdict = match j.verdict {
                Verdict::Met => Verdict::NotMet,
                Verdict::NotMet => Verdict::Met,
                Verdict::NotJudged => Verdict::NotJudged,
            };
            Judgement::new(verdict, j.justification)
        }
        Rule::AnyOf(rules) | Rule::AllOf(rules) => {
            let all = matches!(rule, Rule::AllOf(_));
            let parts: Vec<Judgement> = rules
                .iter()
                .map(|r| check(r, agent_text, metrics))
                .collect();
            let (want, decisive) = if all {
                (Verdict::NotMet, Verdict::NotMet)
            } else {
                (Verdict::Met, Verdict::Met)
            };
            let verdict = if let Some(j) = parts.iter().find(|j| j.verdict == want) {
                return Judgement::new(decisive, j.justification.clone());
            } else if parts.iter().any(|j| j.verdict == Verdict::NotJudged) {
                Verdict::NotJudged
            } else if all {
                Verdict::Met
            } else {
                Verdict::NotMet
            };
            let why: Vec<String> = parts.into_iter().map(|j| j.justification).collect();
            Judgement::new(verdict, why.join("; "))
        }
        Rule::Metric(t) => match metrics.map(|m| (m.get(t.metric), m.harness_late())) {
            Some((_, Some(late))) if t.metric.is_timing() => Judgement::not_judged(late),
            Some((value, _)) => match value {
                None => Judgement::not_judged(format!("this call has no {}", t.metric.name())),
                Some(v) => {
                    let ok = t.comparison.holds(v, t.value);
                    Judgement::new(
                        if ok { Verdict::Met } else { Verdict::NotMet },
                        format!(
                            "{} was {v:.3}, wanted {} {}",
                            t.metric.name(),
                            t.comparison.symbol(),
                            t.value
                        ),
                    )
                }
            },
            None => {
                Judgement::not_judged(format!("{} is known only after the call", t.metric.name()))
            }
        },
    }
}

/// Asks an LLM whether `criterion` holds of the call so far.
pub fn ask_llm(
    llm: &dyn Chat,
    criterion: &str,
    transcript: &[Line],
) -> Result<Judgement, LlmError> {
    let d = llm.decide(&question(criterion, transcript))?;
    Ok(Judgement::new(
        if d.met { Verdict::Met } else { Verdict::NotMet },
        d.justification,
    ))
}

/// The judge's instructions, with worked examples: the same for every verdict (so a local
/// engine reads them once). Measured on `fixtures/judge/set.yaml` (`voicesim judge-eval`).
const JUDGE: &str = r#"You check one criterion against a phone call between a caller and a company's voice agent. The agent's lines come from a speech recognizer: read past small slips ("4-521" or "4, 5, 2, 1" is 4521), but a different number, order or day is a different fact.
The criterion is met when the agent's lines say it. It is not met when the agent speaks of another order or another day, only offers something without doing it, is cut off before saying it, or never says it. Judge only the agent's lines; what the caller says does not count.
Reply with JSON only: {"met": true or false, "justification": "one short sentence"}.

Examples:
Agent: Order 7, 7, 8, 8 is being packed. It will be delivered on Monday. Anything else?
Criterion: The agent says when order 7788 will be delivered.
{"met": true, "justification": "The agent says order 7788 arrives on Monday."}

Agent: Order 7788 is being packed. It will be delivered on Monday. Anything else?
Criterion: The agent says when order 1234 will be delivered.
{"met": false, "justification": "The agent gives a day for order 7788, not 1234."}

Agent: Sorry, I cannot find that order. Please say the order number again.
Criterion: The agent asks for the order number again.
{"met": true, "justification": "The agent asks the caller to say the number again."}

Agent: Say agent to talk to a person, or tell me your order number.
Criterion: The agent transfers the caller to a person.
{"met": false, "justification": "The agent only offers a person; no transfer is made."}

Agent: Your order is being packed. Anything else?
Criterion: The agent says goodbye.
{"met": false, "justification": "The agent asks if there is anything else; no goodbye."}

Agent: Thank you for calling. Goodbye.
Criterion: The agent says goodbye.
{"met": true, "justification": "The agent says goodbye."}

Agent: Order 7788 is
Criterion: The agent says order 7788 is being packed.
{"met": false, "justification": "The agent is cut off before the status."}"#;

/// What the judge is asked about `criterion` on `transcript`.
pub fn question(criterion: &str, transcript: &[Line]) -> Vec<Message> {
    let conversation: Vec<String> = transcript
        .iter()
        .map(|l| {
            let who = match l.speaker {
                Speaker::Caller => "Caller",
                Speaker::Agent => "Agent",
            };
            format!("{who}: {}", l.text)
        })
        .collect();
    vec![
        Message::system(JUDGE),
        Message::user(format!(
            "{}\nCriterion: {criterion}",
            conversation.join("\n")
        )),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(yaml: &str) -> Rule {
        serde_norway::from_str(yaml).unwrap()
    }

    #[test]
    fn text_rules_read_normalized_words() {
        let said = "Order four five two one has shipped. It arrives Friday!";
        assert_eq!(
            check(&rule("contains: 4521"), said, None).verdict,
            Verdict::Met
        );
        assert_eq!(
            check(&rule("contains: ship"), said, None).verdict,
            Verdict::NotMet,
            "whole words"
        );
        assert_eq!(
            check(&rule("regex: 'arrives? (friday|monday)'"), said, None).verdict,
            Verdict::Met
        );
        let any = rule("any_of: [{contains: monday}, {contains: friday}]");
        assert_eq!(check(&any, said, None).verdict, Verdict::Met);
        let all = rule("all_of: [{contains: shipped}, {not: {contains: sorry}}]");
        assert_eq!(check(&all, said, None).verdict, Verdict::Met);
        let j = check(
            &rule("all_of: [{contains: shipped}, {contains: monday}]"),
            said,
            None,
        );
        assert_eq!(j.verdict, Verdict::NotMet);
        assert!(
            j.justification.contains("did not say \"monday\""),
            "{}",
            j.justification
        );
    }

    #[test]
    fn metric_rules_need_the_metric() {
        let m = Metrics {
            latency_p95_ms: Some(900.0),
            ..Metrics::default()
        };
        let fast = rule("metric: latency_p95_ms < 1500");
        assert_eq!(check(&fast, "", Some(&m)).verdict, Verdict::Met);
        assert_eq!(
            check(&rule("metric: latency_p95_ms < 500"), "", Some(&m)).verdict,
            Verdict::NotMet
        );
        assert_eq!(check(&fast, "", None).verdict, Verdict::NotJudged);
        assert_eq!(
            check(&rule("metric: wer <= 0.2"), "", Some(&m)).verdict,
            Verdict::NotJudged
        );
        assert_eq!(percentile(&[1.0, 2.0, 3.0, 4.0], 50.0), Some(2.0));
        assert_eq!(percentile(&[1.0, 2.0, 3.0, 4.0], 95.0), Some(4.0));
    }
}
