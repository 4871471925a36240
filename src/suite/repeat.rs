//! The phrases by which an agent asks the caller to say something again: the "asked to repeat"
//! noise KPI counts the agent turns that hold one.

use serde::{Deserialize, Serialize};

use crate::speech::wer::normalize;

/// What English-speaking agents say when they did not make the caller out. A phrase matches an
/// agent turn when its words occur in the turn in order, both normalized as WER is (so
/// "didn't" is "did not" and case and punctuation do not count); `...` in a phrase stands for
/// up to four words.
pub const DEFAULT_PHRASES: [&str; 17] = [
    "did not catch",
    "did not hear",
    "did not get that",
    "did not understand",
    "could not hear",
    "could not understand",
    "having trouble understanding",
    "having trouble hearing",
    "missed that",
    "say ... again",
    "repeat that",
    "please repeat",
    "could you repeat",
    "can you repeat",
    "come again",
    "pardon",
    "one more time",
];

/// The longest run of words `...` stands for.
const GAP_WORDS: usize = 4;

/// The suite's `asked_to_repeat` phrases, normalized; [`DEFAULT_PHRASES`] when it has none.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(from = "Vec<String>", into = "Vec<String>")]
pub struct AskedToRepeat {
    written: Vec<String>,
    /// Each phrase as runs of words, the runs joined by gaps of up to [`GAP_WORDS`].
    phrases: Vec<Vec<Vec<String>>>,
}

impl Default for AskedToRepeat {
    fn default() -> Self {
        Self::from(DEFAULT_PHRASES.map(String::from).to_vec())
    }
}

impl From<Vec<String>> for AskedToRepeat {
    fn from(written: Vec<String>) -> Self {
        let phrases = written
            .iter()
            .map(|phrase| {
                phrase
                    .split("...")
                    .map(|run| {
                        normalize(run)
                            .split_whitespace()
                            .map(String::from)
                            .collect()
                    })
                    .collect()
            })
            .collect();
        AskedToRepeat { written, phrases }
    }
}

impl From<AskedToRepeat> for Vec<String> {
    fn from(a: AskedToRepeat) -> Self {
        a.written
    }
}

impl AskedToRepeat {
    /// What is wrong with the phrases, if anything: one with no words, or `...` at an end.
    pub fn check(&self) -> Result<(), String> {
        for (phrase, runs) in self.written.iter().zip(&self.phrases) {
            if runs.iter().any(Vec::is_empty) {
                return Err(format!(
                    "asked_to_repeat phrase {phrase:?} has no words{}; write the words the agent \
                     says, with `...` only between words",
                    if phrase.contains("...") {
                        " on one side of `...`"
                    } else {
                        ""
                    }
                ));
            }
        }
        Ok(())
    }

    /// Whether `turn` (what the agent said, as heard) holds one of the phrases.
    pub fn asks(&self, turn: &str) -> bool {
        let normalized = normalize(turn);
        let words: Vec<&str> = normalized.split_whitespace().collect();
        self.phrases.iter().any(|runs| found(&words, runs))
    }
}

/// Whether `runs` occur in `words` in order, each right after the last or up to
/// [`GAP_WORDS`] later.
fn found(words: &[&str], runs: &[Vec<String>]) -> bool {
    let Some((first, rest)) = runs.split_first() else {
        return false;
    };
    (0..words.len()).any(|start| {
        let mut at = start;
        if !run_at(words, first, at) {
            return false;
        }
        at += first.len();
        for run in rest {
            match (at..=at + GAP_WORDS).find(|&i| run_at(words, run, i)) {
                Some(i) => at = i + run.len(),
                None => return false,
            }
        }
        true
    })
}

fn run_at(words: &[&str], run: &[String], at: usize) -> bool {
    words
        .get(at..at + run.len())
        .is_some_and(|w| w.iter().zip(run).all(|(a, b)| *a == b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_hear_requests_to_repeat_and_not_what_merely_looks_alike() {
        let asks = AskedToRepeat::default();
        for turn in [
            "Sorry, I didn't catch that. What is your order number?",
            "Sorry, I cannot find that order. Please say the order number again.",
            "Could you repeat that?",
            "I'm having trouble understanding. Say agent to talk to a person.",
            "Pardon?",
        ] {
            assert!(asks.asks(turn), "{turn}");
        }
        for turn in [
            "Order four five two one has shipped. It arrives Friday.",
            "Thanks again for calling. Goodbye.",
            "Let me repeat your order: two pizzas.",
            // `...` spans four words, not a sentence and the next.
            "Say goodbye to long waits, we have now added one more line to call us on again.",
        ] {
            assert!(!asks.asks(turn), "{turn}");
        }
    }

    #[test]
    fn a_suite_s_own_phrases_replace_the_defaults_and_empty_ones_are_refused() {
        let own = AskedToRepeat::from(vec!["wie bitte".to_string()]);
        assert_eq!(own.check(), Ok(()));
        assert!(own.asks("Wie bitte?"));
        assert!(!own.asks("Sorry, I did not catch that."));
        for bad in ["", "...", "say ...", "?!"] {
            let e = AskedToRepeat::from(vec![bad.to_string()])
                .check()
                .unwrap_err();
            assert!(e.contains("has no words"), "{bad:?}: {e}");
        }
    }
}
