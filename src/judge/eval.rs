//! How far an LLM judge can be trusted: a set of call transcripts labelled by reading, each
//! with the criterion it was judged on and the right verdict, and the judge's score on it.
//!
//! ```yaml
//! items:
//!   - id: wrong-order-right-day
//!     criterion: The agent says when order 4521 will be delivered.
//!     near_miss: true        # looks met, is not: a false pass here is the worst kind
//!     met: false
//!     condition: cafe@10dB   # where the transcript was heard (for the reader)
//!     transcript: |
//!       Agent: Hello, this is the order line. What is your order number?
//!       Caller: Hi, my order number is seven seven eight eight.
//!       Agent: Order seven seven eight eight is being packed. It will be delivered on Monday.
//! ```

use std::path::Path;
use std::time::{Duration, Instant};

use serde::Deserialize;

use super::question;
use crate::llm::{Chat, LlmError};
use crate::record::{Line, Speaker};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JudgeSet {
    pub items: Vec<Item>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Item {
    pub id: String,
    pub criterion: String,
    pub met: bool,
    #[serde(default)]
    pub near_miss: bool,
    #[serde(default)]
    pub condition: Option<String>,
    /// `Agent: ...` and `Caller: ...` lines.
    pub transcript: String,
}

impl Item {
    pub fn lines(&self) -> Result<Vec<Line>, String> {
        self.transcript
            .lines()
            .filter(|l| !l.trim().is_empty())
            .enumerate()
            .map(|(i, l)| {
                let (speaker, text) = match l.split_once(':') {
                    Some(("Agent", text)) => (Speaker::Agent, text),
                    Some(("Caller", text)) => (Speaker::Caller, text),
                    _ => {
                        return Err(format!(
                            "item {:?}, transcript line {}: {l:?} starts with neither \"Agent:\" \
                             nor \"Caller:\"",
                            self.id,
                            i + 1
                        ))
                    }
                };
                Ok(Line {
                    speaker,
                    text: text.trim().to_string(),
                    at_ms: 0.0,
                    heard: None,
                })
            })
            .collect()
    }
}

impl JudgeSet {
    pub fn load(path: &Path) -> Result<Self, String> {
        let text = crate::file::read_text(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let set: JudgeSet = serde_norway::from_str(&text).map_err(|e| {
            let place = e
                .location()
                .map(|l| format!(":{}:{}", l.line(), l.column()))
                .unwrap_or_default();
            format!("{}{place}: {e}", path.display())
        })?;
        if set.items.is_empty() {
            return Err(format!("{}: the set has no items", path.display()));
        }
        for item in &set.items {
            item.lines()
                .map_err(|e| format!("{}: {e}", path.display()))?;
        }
        Ok(set)
    }
}

/// One item judged.
#[derive(Debug)]
pub struct Judged {
    /// `None`: the judge gave no verdict (its error).
    pub met: Option<bool>,
    /// The judge's probability of "met", where its engine tells.
    pub p_met: Option<f64>,
    pub justification: String,
    pub took: Duration,
}

/// The judge's score on a set.
#[derive(Debug, Default, PartialEq)]
pub struct Score {
    pub items: usize,
    pub right: usize,
    pub false_passes: usize,
    /// False passes on near misses (of `false_passes`).
    pub near_miss_passes: usize,
    pub false_fails: usize,
    pub not_judged: usize,
    pub seconds: f64,
}

impl Score {
    pub fn add(&mut self, item: &Item, judged: &Judged) {
        self.items += 1;
        self.seconds += judged.took.as_secs_f64();
        match judged.met {
            None => self.not_judged += 1,
            Some(met) if met == item.met => self.right += 1,
            Some(true) => {
                self.false_passes += 1;
                self.near_miss_passes += usize::from(item.near_miss);
            }
            Some(false) => self.false_fails += 1,
        }
    }

    pub fn accuracy(&self) -> f64 {
        self.right as f64 / self.items.max(1) as f64
    }

    pub fn seconds_per_verdict(&self) -> f64 {
        self.seconds / self.items.max(1) as f64
    }
}

/// Judges one item as a run would: the same question, the same transcript form.
pub fn judge(llm: &dyn Chat, item: &Item) -> Judged {
    let started = Instant::now();
    let answer: Result<_, LlmError> = item
        .lines()
        .map_err(|message| LlmError::Reply { message })
        .and_then(|lines| llm.decide(&question(&item.criterion, &lines)));
    let took = started.elapsed();
    match answer {
        Ok(d) => Judged {
            met: Some(d.met),
            p_met: d.p_met,
            justification: d.justification,
            took,
        },
        Err(e) => Judged {
            met: None,
            p_met: None,
            justification: e.to_string(),
            took,
        },
    }
}

/// The threshold on the probability of "met" that judges `judged` best: no false pass on a
/// near miss first, then the most right; with its accuracy. `None` without probabilities.
pub fn best_threshold(judged: &[(&Item, f64)]) -> Option<(f64, f64)> {
    if judged.is_empty() {
        return None;
    }
    let mut cuts: Vec<f64> = judged.iter().map(|(_, p)| *p).collect();
    cuts.push(1.0 + f64::EPSILON);
    cuts.sort_by(f64::total_cmp);
    cuts.into_iter()
        .map(|t| {
            let right = judged.iter().filter(|(i, p)| (*p >= t) == i.met).count();
            let near = judged
                .iter()
                .filter(|(i, p)| i.near_miss && !i.met && *p >= t)
                .count();
            (t, near, right)
        })
        .min_by(|a, b| a.1.cmp(&b.1).then(b.2.cmp(&a.2)))
        .map(|(t, _, right)| (t, right as f64 / judged.len() as f64))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(met: bool, near_miss: bool) -> Item {
        Item {
            id: "x".into(),
            criterion: "c".into(),
            met,
            near_miss,
            condition: None,
            transcript: "Agent: hi\nCaller: hello".into(),
        }
    }

    fn said(met: Option<bool>) -> Judged {
        Judged {
            met,
            p_met: None,
            justification: String::new(),
            took: Duration::from_secs(2),
        }
    }

    #[test]
    fn a_score_counts_false_passes_on_near_misses_apart() {
        let mut s = Score::default();
        s.add(&item(true, false), &said(Some(true)));
        s.add(&item(false, true), &said(Some(true)));
        s.add(&item(false, false), &said(Some(true)));
        s.add(&item(true, false), &said(Some(false)));
        s.add(&item(true, false), &said(None));
        assert_eq!(
            (
                s.right,
                s.false_passes,
                s.near_miss_passes,
                s.false_fails,
                s.not_judged
            ),
            (1, 2, 1, 1, 1)
        );
        assert_eq!(s.accuracy(), 0.2);
        assert_eq!(s.seconds_per_verdict(), 2.0);
    }

    #[test]
    fn the_best_threshold_lets_no_near_miss_pass_then_gets_most_right() {
        let (yes, near, no) = (item(true, false), item(false, true), item(false, false));
        let judged = [(&yes, 0.7), (&yes, 0.6), (&near, 0.65), (&no, 0.2)];
        let (t, accuracy) = best_threshold(&judged).unwrap();
        assert!(t > 0.65 && t <= 0.7, "{t}");
        assert_eq!(accuracy, 0.75);
        assert_eq!(best_threshold(&[]), None);
    }

    #[test]
    fn transcript_lines_name_their_speaker() {
        let lines = item(true, false).lines().unwrap();
        assert_eq!(lines[1].speaker, Speaker::Caller);
        assert_eq!(lines[1].text, "hello");
        let mut bad = item(true, false);
        bad.transcript = "Agent: hi\nBot: no".into();
        let e = bad.lines().unwrap_err();
        assert!(
            e.contains("transcript line 2") && e.contains("Bot: no"),
            "{e}"
        );
    }
}
