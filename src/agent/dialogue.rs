//! The reference agent's brain: a small order-status dialogue, text in, text out.
//!
//! It greets first and asks for the order number, answers the status and delivery day of the
//! orders it knows, hands over to a person on "agent", and hangs up on "goodbye". Numbers are
//! read after [`crate::speech::wer::normalize`], so "four five two one", "4521" and "forty five
//! twenty one" are the same order.
//!
//! ```
//! use voicesim::agent::Dialogue;
//!
//! let mut d = Dialogue::new(false);
//! assert!(d.greeting().text.contains("order number"));
//! let reply = d.reply("Hi, it's order four five two one.");
//! assert!(reply.text.contains("has been shipped") && !reply.hangup);
//! assert!(d.reply("That's all, goodbye.").hangup);
//! ```

use crate::speech::wer::normalize;

/// What the agent says next, and whether it hangs up after saying it.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    pub text: String,
    pub hangup: bool,
}

impl Reply {
    fn say(text: impl Into<String>) -> Self {
        Reply {
            text: text.into(),
            hangup: false,
        }
    }

    fn bye(text: impl Into<String>) -> Self {
        Reply {
            text: text.into(),
            hangup: true,
        }
    }
}

/// The orders the reference agent knows: number, status, delivery.
///
/// Its lines are worded for a phone line, as a voice agent's prompts are: read over 8 kHz and
/// heard with Whisper tiny.en, espeak-ng's "one has shipped" comes out "1th and shift" and
/// "Acme" as "at me"; "has been shipped", and a greeting without the name, come through with
/// both voices (`tests/speech.rs` holds every line to that).
pub const ORDERS: &[(&str, &str, &str)] = &[
    (
        "4521",
        "has been shipped",
        "It will be delivered on Friday.",
    ),
    ("7788", "is being packed", "It will be delivered on Monday."),
    ("1234", "was delivered", "It was delivered on Tuesday."),
];

/// Misunderstood turns in a row before the agent offers a person.
const MAX_MISSES: u32 = 3;

/// One call's dialogue state.
#[derive(Debug, Clone)]
pub struct Dialogue {
    /// The `--mishear` fault: order numbers are heard with their last two digits swapped.
    mishear: bool,
    order: Option<&'static (&'static str, &'static str, &'static str)>,
    misses: u32,
}

impl Dialogue {
    pub fn new(mishear: bool) -> Self {
        Dialogue {
            mishear,
            order: None,
            misses: 0,
        }
    }

    pub fn greeting(&self) -> Reply {
        Reply::say("Hello, this is the order line. What is your order number?")
    }

    /// The answer to what the agent heard the caller say.
    pub fn reply(&mut self, heard: &str) -> Reply {
        let words = normalize(heard);
        let has = |w: &[&str]| words.split_whitespace().any(|x| w.contains(&x));
        if has(&["agent", "representative", "human", "person", "operator"]) {
            return Reply::bye("Let me transfer you to a human agent. Goodbye.");
        }
        if has(&["goodbye", "bye"]) || words.contains("that is all") || words.contains("no thank") {
            return Reply::bye("Thank you for calling. Goodbye.");
        }
        if let Some(number) = order_number(&words) {
            self.misses = 0;
            let number = if self.mishear {
                swap_last_two(&number)
            } else {
                number
            };
            let spoken = spell(&number);
            return match ORDERS.iter().find(|(n, _, _)| *n == number) {
                Some(order) => {
                    self.order = Some(order);
                    Reply::say(format!(
                        "Order {spoken} {}. {} Anything else?",
                        order.1, order.2
                    ))
                }
                // Not read back: espeak-ng's "nine" is heard as "I'm", differently each time.
                None => Reply::say(
                    "Sorry, I cannot find that order. Please say the order number again.",
                ),
            };
        }
        if let Some((_, status, delivery)) = self.order.filter(|_| {
            has(&[
                "when",
                "delivery",
                "deliver",
                "delivered",
                "arrive",
                "arriving",
                "date",
            ])
        }) {
            return Reply::say(format!("Your order {status}. {delivery} Anything else?"));
        }
        self.misses += 1;
        if self.misses >= MAX_MISSES {
            return Reply::say(
                "I am having trouble understanding. Say agent to talk to a person, or tell me your order number.",
            );
        }
        Reply::say("Sorry, I did not catch that. What is your order number?")
    }
}

/// The first run of three or more digits in normalized text (which spells digits one by one).
fn order_number(normalized: &str) -> Option<String> {
    let mut best = String::new();
    for word in normalized.split_whitespace() {
        if word.chars().all(|c| c.is_ascii_digit()) {
            best.push_str(word);
        } else if best.len() >= 3 {
            break;
        } else {
            best.clear();
        }
    }
    (best.len() >= 3).then_some(best)
}

fn swap_last_two(number: &str) -> String {
    let mut digits: Vec<char> = number.chars().collect();
    let n = digits.len();
    digits.swap(n - 1, n - 2);
    digits.into_iter().collect()
}

/// Digits read one by one, as agents read order numbers back: "4 5 2 1".
fn spell(number: &str) -> String {
    number
        .chars()
        .map(String::from)
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_numbers_are_read_however_they_are_spoken() {
        for said in [
            "order 4521",
            "four five two one",
            "forty five twenty one please",
        ] {
            let r = Dialogue::new(false).reply(said);
            assert!(r.text.contains("has been shipped"), "{said}: {}", r.text);
        }
        let r = Dialogue::new(false).reply("it's 9 9 9 9");
        assert!(r.text.contains("cannot find that order"), "{}", r.text);
    }

    #[test]
    fn delivery_questions_need_a_known_order_and_misses_lead_to_a_person() {
        let mut d = Dialogue::new(false);
        assert!(d
            .reply("when will it arrive")
            .text
            .contains("did not catch"));
        d.reply("7788");
        assert!(d.reply("when will it arrive?").text.contains("Monday"));
        let mut d = Dialogue::new(false);
        d.reply("hmm");
        d.reply("what");
        assert!(d.reply("uh").text.contains("Say agent"));
        let r = d.reply("Can I talk to a representative");
        assert!(r.hangup && r.text.contains("human agent"));
    }

    #[test]
    fn mishearing_answers_about_another_order() {
        let r = Dialogue::new(true).reply("order 4521");
        assert!(r.text.contains("cannot find that order"), "{}", r.text);
    }
}
