//! Word and character error rates between what was said and what was heard.
//!
//! Both texts are normalized first, so that only recognition errors count, not spelling
//! conventions. The rules follow Whisper's English text normalizer (the usual way WER is
//! reported), with the differences listed after them:
//!
//! 1. lower case; curly apostrophes become `'`; text in brackets (`[BLANK_AUDIO]`,
//!    `<noise>`, `(laughs)`) and the fillers `hmm`, `mm`, `mhm`, `mmm`, `uh`, `um` go;
//! 2. contractions expanded: `won't` → `will not`, `can't` → `can not`, `n't` → ` not`,
//!    `'re` → ` are`, `'m` → ` am`, `'ll` → ` will`, `'ve` → ` have`, `'d` → ` would`,
//!    `let's` → `let us`, `y'all` → `you all`, `gonna`/`wanna`/`gotta` → `going to`/`want to`/
//!    `got to`, `ma'am` → `madam`, and `'s` → ` is` after it/that/what/there/here/where/who/
//!    how/he/she (other `'s` are possessive and just lose the apostrophe);
//! 3. titles spelled out, with or without their period: `mr` → `mister`, `mrs` → `missus`,
//!    `dr` → `doctor`, `st` → `saint`, `prof`, `capt`, `gov`, `gen`, `sen`, `rep`, `pres`,
//!    `rev`, `hon`, `asst`, `assoc`, `lt`, `col`, `jr`, `sr`, `esq` likewise;
//! 4. money read out: `$23.50` → `23 dollars 50 cents`, `$5` → `5 dollars`, `$0.99` →
//!    `99 cents`, `£`/`€`/`¢` as `pounds`/`euros`/`cents`; the words are made plural
//!    (`one dollar` → `1 dollars`) and an `and` between dollars and cents goes, so
//!    "twenty three dollars and fifty cents" reads the same;
//! 5. `%` → `percent`, `&` → `and`; hyphens, slashes and the `:` of a time separate words;
//!    other punctuation is dropped; a `.` between digits is the word `point` (`3.5` and
//!    "three point five" agree), a `,` between digits goes (`1,000` → `1000`);
//! 6. `a.m.`/`p.m.`/`a m`/`p m` after a number become `am`/`pm` (`3:30 p.m.` → `3 30 pm`);
//! 7. numbers as digits: `twenty three` → `23`, `one hundred and five` → `105`,
//!    `two thousand twenty four` → `2024`, `zero`/`oh` inside a digit run → `0`; ordinal
//!    suffixes go (`23rd` → `23`, "twenty third" → `23`);
//! 8. every run of digits is split into single digits, so `1234`, `12 34` and
//!    `one two three four` all read `1 2 3 4`: order numbers are read either way.
//!
//! Where Whisper's normalizer differs: it keeps numbers whole (rule 8 is ours, for phone and
//! order numbers), writes money as `$23.50` rather than words, keeps `.` in decimals, turns
//! every `'s` into ` is` and `ain't` into `aint` (here `is not`), and maps British spellings to
//! American (not done here).
//!
//! WER = (substitutions + deletions + insertions) / reference words, by word-level edit
//! distance; CER is the same over characters of the normalized text (spaces included).
//!
//! ```
//! use voicesim::speech::wer::{normalize, wer};
//! assert_eq!(normalize("It's order #4521, isn't it?"), "it is order 4 5 2 1 is not it");
//! assert_eq!(wer("Your order ships on the twenty third.", "your order ships on the 23rd"), 0.0);
//! assert_eq!(wer("That's $23.50, Dr. Smith.", "that is twenty three dollars and fifty cents doctor smith"), 0.0);
//! ```

use std::sync::LazyLock;

use regex::Regex;

/// Word error rate of `hypothesis` against `reference`, after [`normalize`]. 0.0 is perfect;
/// it can exceed 1.0 when the hypothesis adds words. An empty reference gives 0.0 for an
/// empty hypothesis and 1.0 otherwise.
pub fn wer(reference: &str, hypothesis: &str) -> f64 {
    let r = normalize(reference);
    let h = normalize(hypothesis);
    let r: Vec<&str> = r.split_whitespace().collect();
    let h: Vec<&str> = h.split_whitespace().collect();
    rate(strsim::generic_levenshtein(&r, &h), r.len(), h.is_empty())
}

/// Character error rate after [`normalize`].
pub fn cer(reference: &str, hypothesis: &str) -> f64 {
    let r: Vec<char> = normalize(reference).chars().collect();
    let h: Vec<char> = normalize(hypothesis).chars().collect();
    rate(strsim::generic_levenshtein(&r, &h), r.len(), h.is_empty())
}

fn rate(edits: usize, reference_len: usize, hypothesis_empty: bool) -> f64 {
    match reference_len {
        0 if hypothesis_empty => 0.0,
        0 => 1.0,
        n => edits as f64 / n as f64,
    }
}

/// Bracketed asides and fillers (rule 1).
static ASIDES: LazyLock<Option<Regex>> =
    LazyLock::new(|| Regex::new(r"\[[^\]]*\]|<[^>]*>|\([^)]*\)|\b(?:hmm|mm|mhm|mmm|uh|um)\b").ok());
/// An amount of money (rule 4): symbol, whole units, optional cents.
static MONEY: LazyLock<Option<Regex>> = LazyLock::new(|| {
    Regex::new(r"([$£€])\s?(\d[\d,]*)(?:\.(\d{1,2}))?\b|¢\s?(\d+)|(\d+)\s?¢").ok()
});

/// `$23.50` → ` 23 dollars 50 cents `.
fn spell_money(text: &str) -> String {
    let Some(money) = MONEY.as_ref() else {
        return text.to_string();
    };
    money
        .replace_all(text, |c: &regex::Captures| {
            let cents = |n: &str| format!(" {} cents ", unpadded(n));
            if let Some(n) = c.get(4).or_else(|| c.get(5)) {
                return cents(n.as_str());
            }
            let unit = match c.get(1).map(|m| m.as_str()) {
                Some("£") => "pounds",
                Some("€") => "euros",
                _ => "dollars",
            };
            let whole = c.get(2).map_or("", |m| m.as_str()).replace(',', "");
            let whole = unpadded(&whole);
            let fraction = c.get(3).map(|m| {
                // "$1.5" is a dollar fifty.
                let f = m.as_str();
                if f.len() == 1 {
                    format!("{f}0")
                } else {
                    f.to_string()
                }
            });
            let fraction = fraction.filter(|f| !f.trim_start_matches('0').is_empty());
            match (whole, fraction) {
                ("0", Some(f)) => cents(&f),
                (whole, None) => format!(" {whole} {unit} "),
                (whole, Some(f)) => format!(" {whole} {unit}{}", cents(&f)),
            }
        })
        .into_owned()
}

/// Digits without leading zeros; zero itself stays `0`.
fn unpadded(digits: &str) -> &str {
    match digits.trim_start_matches('0') {
        "" => "0",
        rest => rest,
    }
}

/// Titles and their spelled-out forms (rule 3), as Whisper's normalizer has them.
const TITLES: [(&str, &str); 21] = [
    ("mr", "mister"),
    ("mrs", "missus"),
    ("st", "saint"),
    ("dr", "doctor"),
    ("prof", "professor"),
    ("capt", "captain"),
    ("gov", "governor"),
    ("ald", "alderman"),
    ("gen", "general"),
    ("sen", "senator"),
    ("rep", "representative"),
    ("pres", "president"),
    ("rev", "reverend"),
    ("hon", "honorable"),
    ("asst", "assistant"),
    ("assoc", "associate"),
    ("lt", "lieutenant"),
    ("col", "colonel"),
    ("jr", "junior"),
    ("sr", "senior"),
    ("esq", "esquire"),
];

/// The normalized form both sides of a WER are compared in (see the module docs).
pub fn normalize(text: &str) -> String {
    let text = text
        .to_lowercase()
        .replace(['\u{2019}', '\u{2018}', '`'], "'");
    let text = match ASIDES.as_ref() {
        Some(asides) => asides.replace_all(&text, " ").into_owned(),
        None => text,
    };
    let text = spell_money(&text);
    let mut words = Vec::new();
    for raw in text.split(|c: char| {
        c.is_whitespace() || c == '-' || c == '/' || c == '\u{2014}' || c == '\u{2013}'
    }) {
        for word in expand_contraction(raw) {
            let cleaned = clean(&word);
            words.extend(cleaned.split_whitespace().map(str::to_string));
        }
    }
    let words = spoken_forms(numbers_to_digits(&words));
    let mut out: Vec<String> = Vec::new();
    for w in words {
        if w.chars().all(|c| c.is_ascii_digit()) {
            out.extend(w.chars().map(|c| c.to_string()));
        } else if w.chars().any(|c| c.is_ascii_digit())
            && w.chars().all(|c| c.is_ascii_digit() || c == '.')
        {
            // 3.5 → 3 point 5, as it is said.
            for part in w.split('.') {
                out.extend(part.chars().map(|c| c.to_string()));
                out.push("point".into());
            }
            out.pop();
        } else {
            out.push(w);
        }
    }
    out.join(" ")
}

/// After numbers are digits: money words plural, no `and` between dollars and cents, `a m`
/// and `p m` after a number as `am` and `pm`.
fn spoken_forms(words: Vec<String>) -> Vec<String> {
    let digits = |w: Option<&String>| {
        w.is_some_and(|w| !w.is_empty() && w.chars().all(|c| c.is_ascii_digit()))
    };
    let mut out: Vec<String> = Vec::with_capacity(words.len());
    let mut i = 0;
    while let Some(w) = words.get(i) {
        let next = words.get(i + 1);
        match w.as_str() {
            "dollar" | "cent" | "pound" | "euro" => out.push(format!("{w}s")),
            "and"
                if matches!(
                    out.last().map(String::as_str),
                    Some("dollars" | "pounds" | "euros")
                ) && digits(next) =>
            {
                // "five dollars and ten cents": the `and` is how money is said, not a word.
            }
            "a" | "p" if next.map(String::as_str) == Some("m") && digits(out.last()) => {
                out.push(format!("{w}m"));
                i += 1;
            }
            _ => out.push(w.clone()),
        }
        i += 1;
    }
    out
}

fn expand_contraction(word: &str) -> Vec<String> {
    let w = word.trim_matches(|c: char| !c.is_alphanumeric() && c != '\'');
    let w = w.trim_matches('\'');
    let whole = match w {
        "won't" => Some("will not"),
        "can't" => Some("can not"),
        "cannot" => Some("can not"),
        "shan't" => Some("shall not"),
        "let's" => Some("let us"),
        "i'm" => Some("i am"),
        "ain't" => Some("is not"),
        "y'all" => Some("you all"),
        "gonna" => Some("going to"),
        "wanna" => Some("want to"),
        "gotta" => Some("got to"),
        "ma'am" => Some("madam"),
        _ => TITLES
            .iter()
            .find(|(short, _)| *short == w)
            .map(|(_, long)| *long),
    };
    if let Some(e) = whole {
        return e.split(' ').map(str::to_string).collect();
    }
    for (suffix, expansion) in [
        ("n't", "not"),
        ("'re", "are"),
        ("'ll", "will"),
        ("'ve", "have"),
        ("'d", "would"),
        ("'m", "am"),
    ] {
        if let Some(stem) = w.strip_suffix(suffix) {
            if !stem.is_empty() {
                return vec![stem.to_string(), expansion.to_string()];
            }
        }
    }
    if let Some(stem) = w.strip_suffix("'s") {
        if matches!(
            stem,
            "it" | "that" | "what" | "there" | "here" | "where" | "who" | "how" | "he" | "she"
        ) {
            return vec![stem.to_string(), "is".to_string()];
        }
    }
    vec![word.to_string()]
}

/// Whether `chars[i]` stands between two digits (the `.` of 3.5, the `,` of 1,000).
pub(crate) fn between_digits(chars: &[char], i: usize) -> bool {
    let digit = |j: Option<usize>| {
        j.and_then(|j| chars.get(j))
            .is_some_and(char::is_ascii_digit)
    };
    digit(i.checked_sub(1)) && digit(i.checked_add(1))
}

/// Drops punctuation, keeping `.` between digits and removing `,` between digits (1,000).
fn clean(word: &str) -> String {
    let chars: Vec<char> = word.chars().collect();
    let mut out = String::new();
    for (i, &c) in chars.iter().enumerate() {
        let between_digits = between_digits(&chars, i);
        match c {
            c if c.is_alphanumeric() => out.push(c),
            '.' if between_digits => out.push('.'),
            ',' if between_digits => {}
            '%' => out.push_str(" percent "),
            '&' => out.push_str(" and "),
            _ => out.push(' '),
        }
    }
    // Ordinal suffixes on digits (23rd, 1st) go: "twenty third" and "23rd" both become 23.
    out.split_whitespace()
        .map(|w| {
            for suffix in ["st", "nd", "rd", "th"] {
                if let Some(stem) = w.strip_suffix(suffix) {
                    if !stem.is_empty() && stem.chars().all(|c| c.is_ascii_digit()) {
                        return stem.to_string();
                    }
                }
            }
            w.to_string()
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn small_number(word: &str) -> Option<u64> {
    const UNITS: [&str; 20] = [
        "zero",
        "one",
        "two",
        "three",
        "four",
        "five",
        "six",
        "seven",
        "eight",
        "nine",
        "ten",
        "eleven",
        "twelve",
        "thirteen",
        "fourteen",
        "fifteen",
        "sixteen",
        "seventeen",
        "eighteen",
        "nineteen",
    ];
    const ORDINALS: [&str; 20] = [
        "zeroth",
        "first",
        "second",
        "third",
        "fourth",
        "fifth",
        "sixth",
        "seventh",
        "eighth",
        "ninth",
        "tenth",
        "eleventh",
        "twelfth",
        "thirteenth",
        "fourteenth",
        "fifteenth",
        "sixteenth",
        "seventeenth",
        "eighteenth",
        "nineteenth",
    ];
    const TENS: [&str; 8] = [
        "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety",
    ];
    const TENTHS: [&str; 8] = [
        "twentieth",
        "thirtieth",
        "fortieth",
        "fiftieth",
        "sixtieth",
        "seventieth",
        "eightieth",
        "ninetieth",
    ];
    if let Some(i) = UNITS.iter().position(|&u| u == word) {
        return Some(i as u64);
    }
    // "second" is a number only as an ordinal in a date; too ambiguous to convert alone.
    if word != "second" {
        if let Some(i) = ORDINALS.iter().position(|&u| u == word) {
            return Some(i as u64);
        }
    }
    TENS.iter()
        .position(|&t| t == word)
        .or_else(|| TENTHS.iter().position(|&t| t == word))
        .map(|i| (i as u64 + 2) * 10)
}

/// Replaces runs of number words by their value in digits.
fn numbers_to_digits(words: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = words;
    while let Some(first) = rest.first() {
        let used = match parse_number(rest) {
            Some((value, used)) => {
                out.push(value);
                used
            }
            None => {
                out.push(first.clone());
                1
            }
        };
        rest = rest.get(used.max(1)..).unwrap_or_default();
    }
    out
}

/// Parses a number at the start of `words`: (digits, words used). Digits spoken one by one
/// ("four five two one") come out as separate numbers, which digit splitting treats alike.
fn parse_number(words: &[String]) -> Option<(String, usize)> {
    let first = words.first()?.as_str();
    if !first.is_empty() && first.chars().all(|c| c.is_ascii_digit()) {
        return Some((first.to_string(), 1));
    }
    small_number(first)?;
    let (mut total, mut current, mut used) = (0u64, 0u64, 0usize);
    let mut i = 0;
    while let Some(w) = words.get(i).map(String::as_str) {
        let r = current % 100;
        if let Some(n) = small_number(w) {
            // A word joins the number only where it can follow: "twenty three", "one hundred
            // five"; not "three four" or "twenty thirty"; nothing joins a leading "zero".
            let fits = match n {
                0..=9 => r == 0 || (r >= 20 && r % 10 == 0),
                _ => r == 0,
            };
            if used > 0 && (!fits || n == 0 || (total == 0 && current == 0)) {
                break;
            }
            current += n;
        } else if w == "hundred" && (1..10).contains(&current) {
            current *= 100;
        } else if (w == "thousand" || w == "million") && current > 0 {
            total += current * if w == "thousand" { 1_000 } else { 1_000_000 };
            current = 0;
        } else if w == "and"
            && current >= 100
            && r == 0
            && words.get(i + 1).is_some_and(|n| small_number(n).is_some())
        {
            i += 1; // "one hundred and five"
            continue;
        } else {
            break;
        }
        i += 1;
        used = i;
    }
    let mut digits = (total + current).to_string();
    // "four oh two": an "oh" between digits is a zero.
    while words.get(used).map(String::as_str) == Some("oh")
        && words
            .get(used + 1)
            .and_then(|w| small_number(w))
            .is_some_and(|n| n < 10)
    {
        digits.push('0');
        used += 1;
    }
    Some((digits, used))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalization_rules() {
        assert_eq!(normalize("Hello, World!"), "hello world");
        assert_eq!(
            normalize("I'm sure it's fine; we'll see. Don't worry."),
            "i am sure it is fine we will see do not worry"
        );
        assert_eq!(
            normalize("You can't, won't, shouldn't."),
            "you can not will not should not"
        );
        assert_eq!(normalize("John's order"), "john s order");
        assert_eq!(normalize("twenty three"), "2 3");
        assert_eq!(normalize("one hundred and five dollars"), "1 0 5 dollars");
        assert_eq!(normalize("two thousand twenty four"), "2 0 2 4");
        assert_eq!(normalize("four five two one"), "4 5 2 1");
        assert_eq!(normalize("order 4521"), "order 4 5 2 1");
        assert_eq!(normalize("order #45-21"), "order 4 5 2 1");
        assert_eq!(
            normalize("It costs $1,000 or 3.5%"),
            "it costs 1 0 0 0 dollars or 3 point 5 percent"
        );
        assert_eq!(normalize("on the twenty third"), "on the 2 3");
        assert_eq!(normalize("on the 23rd"), "on the 2 3");
        assert_eq!(normalize("wait a second"), "wait a second");
        assert_eq!(normalize("call four oh two"), "call 4 0 2");
        assert_eq!(normalize("Rock & roll"), "rock and roll");
        assert_eq!(normalize("  "), "");
    }

    /// Each pair reads the same after normalizing, and the first reads as the third.
    #[test]
    fn written_and_spoken_forms_agree() {
        for (written, spoken, normal) in [
            (
                "$23.50",
                "twenty three dollars and fifty cents",
                "2 3 dollars 5 0 cents",
            ),
            (
                "$23.50",
                "twenty-three dollars fifty cents",
                "2 3 dollars 5 0 cents",
            ),
            ("$5", "five dollars", "5 dollars"),
            ("$1", "one dollar", "1 dollars"),
            ("$0.99", "ninety nine cents", "9 9 cents"),
            ("$1.5", "one dollar fifty cents", "1 dollars 5 0 cents"),
            ("$12.00", "twelve dollars", "1 2 dollars"),
            ("£20", "twenty pounds", "2 0 pounds"),
            (
                "€3.25",
                "three euros twenty five cents",
                "3 euros 2 5 cents",
            ),
            ("50¢", "fifty cents", "5 0 cents"),
            ("3.5", "three point five", "3 point 5"),
            ("0.25", "zero point two five", "0 point 2 5"),
            ("3:30 pm", "three thirty p.m.", "3 3 0 pm"),
            ("3:30 PM", "three thirty p m", "3 3 0 pm"),
            ("at 9 a.m.", "at nine am", "at 9 am"),
            ("10:05", "ten oh five", "1 0 0 5"),
            ("Dr. Smith", "doctor smith", "doctor smith"),
            (
                "Mr. and Mrs. Lee",
                "mister and missus lee",
                "mister and missus lee",
            ),
            (
                "12 St. James St.",
                "twelve saint james saint",
                "1 2 saint james saint",
            ),
            ("Sgt. Pepper", "sgt pepper", "sgt pepper"),
            ("I'm gonna call", "i am going to call", "i am going to call"),
            ("um, I uh want it [BLANK_AUDIO]", "i want it", "i want it"),
            ("(laughs) yes <noise>", "yes", "yes"),
            ("I am here", "i am here", "i am here"),
            // The table of docs/speech.md.
            ("Um, yes [BLANK_AUDIO]", "yes", "yes"),
            (
                "It's, won't, gonna",
                "it is, will not, going to",
                "it is will not going to",
            ),
            (
                "Dr. Lee, Mr. Lee",
                "doctor lee, mister lee",
                "doctor lee mister lee",
            ),
            ("3.5%", "three point five percent", "3 point 5 percent"),
            ("3:30 p.m.", "three thirty pm", "3 3 0 pm"),
            ("on the 23rd", "on the twenty third", "on the 2 3"),
            ("order #45-21", "order four five two one", "order 4 5 2 1"),
        ] {
            assert_eq!(normalize(written), normal, "{written:?}");
            assert_eq!(normalize(spoken), normal, "{spoken:?}");
        }
    }

    #[test]
    fn error_rates_count_edits_against_the_reference() {
        assert_eq!(wer("the cat sat", "the cat sat"), 0.0);
        assert!((wer("the cat sat", "the bat sat") - 1.0 / 3.0).abs() < 1e-12); // substitution
        assert!((wer("the cat sat", "the sat") - 1.0 / 3.0).abs() < 1e-12); // deletion
        assert!((wer("the cat sat", "the cat sat down") - 1.0 / 3.0).abs() < 1e-12); // insertion
        assert_eq!(wer("a b", "c d e f"), 2.0); // more wrong words than reference words
        assert_eq!(wer("", ""), 0.0);
        assert_eq!(wer("", "noise"), 1.0);
        assert_eq!(wer("hello", ""), 1.0);
        assert_eq!(
            wer(
                "Your order number is 4521.",
                "your order number is four five two one"
            ),
            0.0
        );
        assert!((cer("abcd", "abed") - 0.25).abs() < 1e-12);
        assert_eq!(cer("It's here.", "it is here"), 0.0);
    }
}
