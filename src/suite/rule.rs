use serde::{Deserialize, Serialize};

/// A check the rules judge decides without an LLM. Text rules look at what the caller heard
/// the agent say, both sides normalized as for WER (case, punctuation, numbers as digits), so
/// `contains: 4521` matches "four five two one".
///
/// ```yaml
/// check: { contains: shipped }
/// check: { regex: "deliver(ed)? on (friday|monday)" }
/// check: { any_of: [ { contains: friday }, { contains: monday } ] }
/// check: { all_of: [ { contains: order }, { not: { contains: sorry } } ] }
/// check: { metric: "latency_p95_ms < 1500" }
/// ```
#[derive(Debug, Clone, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case", try_from = "RuleMap")]
pub enum Rule {
    Contains(String),
    Regex(Pattern),
    AnyOf(Vec<Rule>),
    AllOf(Vec<Rule>),
    Not(Box<Rule>),
    Metric(Threshold),
}

impl Rule {
    /// Whether judging it needs the agent's words (not only the call's metrics).
    pub fn reads_words(&self) -> bool {
        match self {
            Rule::Contains(_) | Rule::Regex(_) => true,
            Rule::AnyOf(rules) | Rule::AllOf(rules) => rules.iter().any(Rule::reads_words),
            Rule::Not(rule) => rule.reads_words(),
            Rule::Metric(_) => false,
        }
    }
}

/// A rule as written: a map with exactly one key.
#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct RuleMap {
    contains: Option<String>,
    regex: Option<Pattern>,
    any_of: Option<Vec<Rule>>,
    all_of: Option<Vec<Rule>>,
    not: Option<Box<Rule>>,
    metric: Option<Threshold>,
}

impl TryFrom<RuleMap> for Rule {
    type Error = String;
    fn try_from(m: RuleMap) -> Result<Self, String> {
        let mut rules: Vec<Rule> = [
            m.contains.map(Rule::Contains),
            m.regex.map(Rule::Regex),
            m.any_of.map(Rule::AnyOf),
            m.all_of.map(Rule::AllOf),
            m.not.map(Rule::Not),
            m.metric.map(Rule::Metric),
        ]
        .into_iter()
        .flatten()
        .collect();
        match rules.len() {
            1 => Ok(rules.remove(0)),
            n => Err(format!(
                "a check has exactly one of contains, regex, any_of, all_of, not, metric (this one has {n}); \
                 combine several with all_of or any_of"
            )),
        }
    }
}

/// A regular expression, checked when the suite is read; matched case-insensitively against
/// the normalized text.
#[derive(Debug, Clone, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(try_from = "String", into = "String")]
pub struct Pattern(pub regex::Regex);

impl TryFrom<String> for Pattern {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        regex::RegexBuilder::new(&s)
            .case_insensitive(true)
            .build()
            .map(Pattern)
            .map_err(|e| format!("not a regular expression: {e}"))
    }
}

impl From<Pattern> for String {
    fn from(p: Pattern) -> String {
        p.0.as_str().to_string()
    }
}

/// `metric < value` and the like, e.g. `latency_p95_ms < 1500`, `wer <= 0.15`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(try_from = "String", into = "String")]
pub struct Threshold {
    pub metric: Metric,
    pub comparison: Comparison,
    pub value: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Comparison {
    Below,
    AtMost,
    Above,
    AtLeast,
}

impl Comparison {
    const ALL: [(&'static str, Comparison); 4] = [
        ("<=", Comparison::AtMost),
        (">=", Comparison::AtLeast),
        ("<", Comparison::Below),
        (">", Comparison::Above),
    ];

    pub fn holds(self, left: f64, right: f64) -> bool {
        match self {
            Comparison::Below => left < right,
            Comparison::AtMost => left <= right,
            Comparison::Above => left > right,
            Comparison::AtLeast => left >= right,
        }
    }

    pub fn symbol(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(_, c)| *c == self)
            .map_or("?", |(s, _)| s)
    }
}

/// What a threshold can be put on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    /// Median response latency over the call's answered turns.
    LatencyP50Ms,
    LatencyP95Ms,
    LatencyMaxMs,
    /// Agent turns in the call.
    Turns,
    DurationS,
    /// Dropouts in the agent's audio.
    Underruns,
    /// Word error rate of what the agent heard against what the caller said, where the agent
    /// reports what it heard.
    Wer,
    /// WER between what voicesim's caller heard as each agent turn played and the whole turn
    /// heard once it ended: how far its reactions rest on mishearing.
    HearingDrift,
    /// The noise KPIs: caller turns the agent never answered, its reactions to burst noises
    /// as to speech, its turns asking the caller to say it again, the caller's lines said
    /// again for a step.
    NoAnswers,
    FalseBargeIns,
    AskedToRepeat,
    CallerRepeats,
}

impl Metric {
    pub const NAMES: [(&'static str, Metric); 12] = [
        ("latency_p50_ms", Metric::LatencyP50Ms),
        ("latency_p95_ms", Metric::LatencyP95Ms),
        ("latency_max_ms", Metric::LatencyMaxMs),
        ("turns", Metric::Turns),
        ("duration_s", Metric::DurationS),
        ("underruns", Metric::Underruns),
        ("wer", Metric::Wer),
        ("hearing_drift", Metric::HearingDrift),
        ("no_answers", Metric::NoAnswers),
        ("false_barge_ins", Metric::FalseBargeIns),
        ("asked_to_repeat", Metric::AskedToRepeat),
        ("caller_repeats", Metric::CallerRepeats),
    ];

    /// Whether it measures time, which voicesim's own lateness moves.
    pub fn is_timing(self) -> bool {
        !matches!(
            self,
            Metric::Turns
                | Metric::Wer
                | Metric::HearingDrift
                | Metric::AskedToRepeat
                | Metric::CallerRepeats
        )
    }

    pub fn name(self) -> &'static str {
        Self::NAMES
            .iter()
            .find(|(_, m)| *m == self)
            .map_or("?", |(n, _)| n)
    }
}

impl TryFrom<String> for Threshold {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        let (symbol, comparison, at) = Comparison::ALL
            .iter()
            .find_map(|(sym, c)| s.find(sym).map(|at| (*sym, *c, at)))
            .ok_or_else(|| format!("{s:?}: write METRIC < VALUE (or <=, >, >=)"))?;
        let name = s[..at].trim();
        let metric = Metric::NAMES
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, m)| *m)
            .ok_or_else(|| {
                let names: Vec<&str> = Metric::NAMES.iter().map(|(n, _)| *n).collect();
                format!("unknown metric {name:?}; one of {}", names.join(", "))
            })?;
        let value = s[at + symbol.len()..]
            .trim()
            .parse::<f64>()
            .map_err(|_| format!("{s:?}: the value after {symbol} must be a number"))?;
        Ok(Threshold {
            metric,
            comparison,
            value,
        })
    }
}

impl From<Threshold> for String {
    fn from(t: Threshold) -> String {
        format!("{} {} {}", t.metric.name(), t.comparison.symbol(), t.value)
    }
}
