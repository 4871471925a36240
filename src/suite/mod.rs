//! The test-definition format: a suite of tests, each a simulated call with steps (goals the
//! caller pursues, one after another, each with a success criterion) and expectations judged
//! at the end; reusable personas and scenarios; noise conditions; stop rules; runs (pass^k).
//!
//! Plain data: everything is checked when the file is read, with the place of each mistake
//! (`suite.yaml:14:7: ...`), so a run never starts on a suite that cannot work.
//!
//! ```
//! let suite = voicesim::suite::Suite::parse(r#"
//! name: orders
//! tests:
//!   - name: status
//!     inputs: { order: "4521" }
//!     steps:
//!       - goal: Ask about order {{ order }}
//!         static_utterance: My order number is {{ order }}.
//!         check: { contains: shipped }
//! "#, "orders.yaml", std::path::Path::new(".")).unwrap();
//! assert_eq!(suite.tests[0].steps[0].static_utterance.as_deref(), Some("My order number is {{ order }}."));
//! ```

pub mod load;
mod repeat;
mod rule;
mod template;

pub use repeat::{AskedToRepeat, DEFAULT_PHRASES};
pub use rule::{Comparison, Metric, Rule, Threshold};
pub use template::render;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::speech::Voice;
use crate::transport::Protocol;

/// A suite file that cannot be used, with the place and the fix.
#[derive(Debug, thiserror::Error)]
#[error("{place}: {message}")]
pub struct SuiteError {
    pub place: String,
    pub message: String,
}

/// The hard cap on turns in one call, whatever a suite says.
pub const MAX_TURNS: u32 = 50;

#[derive(Debug, Clone, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Suite {
    /// The suite's name, in reports and results.
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// Defaults for `--agent` and `--protocol`.
    #[serde(default)]
    pub agent: AgentTarget,
    /// Who calls, by name; a test names one.
    #[serde(default)]
    pub personas: BTreeMap<String, Persona>,
    /// What callers want, by name; a test names one.
    #[serde(default)]
    pub scenarios: BTreeMap<String, Scenario>,
    /// Noise conditions every test runs under; none means a clean line.
    #[serde(default)]
    pub noise: Vec<NoiseCondition>,
    /// Runs of each test per condition; a test passes only if every run does (pass^k).
    #[serde(default = "one_run")]
    pub runs: Runs,
    #[serde(default)]
    pub stop: StopRules,
    /// What the agent says when it asks the caller to say something again (the "asked to
    /// repeat" KPI); English defaults when absent.
    #[serde(default)]
    pub asked_to_repeat: AskedToRepeat,
    /// The simulated calls: each test runs under every noise condition, `runs` times.
    pub tests: Vec<TestCase>,
    /// How `voicesim load` puts these tests on the agent (the command line may override it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load: Option<load::LoadSpec>,
    /// The folder of the suite file: relative paths in it resolve here.
    #[serde(skip)]
    pub dir: PathBuf,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AgentTarget {
    pub url: Option<String>,
    pub protocol: Option<Protocol>,
    /// Wire rate for raw PCM, Vonage and Pipecat.
    pub rate: Option<u32>,
    /// Extra websocket handshake headers; values may name environment variables as
    /// `${NAME}`, so secrets stay out of the file.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
}

/// Who the simulated caller is.
#[derive(Debug, Clone, Default, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Persona {
    #[serde(default)]
    pub background: String,
    #[serde(default)]
    pub role: String,
    #[serde(default = "english")]
    pub language: String,
    #[serde(default)]
    pub voice: Voice,
    /// Told to an LLM caller, which plays it.
    #[serde(default)]
    pub patience: Patience,
    /// How likely the caller is to cut into each agent turn, 0..=1 (seeded): 0.6-2.5 s into
    /// it, the caller answers what it has heard so far, and the step is judged on that.
    #[serde(default)]
    pub interrupt: Probability,
    /// How soon after the agent's voice stops the caller starts its answer, in ms: each turn's
    /// target is drawn from this range (seeded). People answer within a few hundred.
    #[serde(default)]
    pub reaction_ms: Reaction,
}

/// A range of reaction times, `[from, to]` ms.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(try_from = "[f64; 2]", into = "[f64; 2]")]
pub struct Reaction {
    pub from_ms: f64,
    pub to_ms: f64,
}

impl Default for Reaction {
    fn default() -> Self {
        Reaction {
            from_ms: 200.0,
            to_ms: 800.0,
        }
    }
}

impl TryFrom<[f64; 2]> for Reaction {
    type Error = String;
    fn try_from([from_ms, to_ms]: [f64; 2]) -> Result<Self, String> {
        if from_ms >= 0.0 && from_ms <= to_ms && to_ms <= 10_000.0 {
            Ok(Reaction { from_ms, to_ms })
        } else {
            Err(format!(
                "must be [from, to] ms with 0 <= from <= to <= 10000, not [{from_ms}, {to_ms}]"
            ))
        }
    }
}

impl From<Reaction> for [f64; 2] {
    fn from(r: Reaction) -> Self {
        [r.from_ms, r.to_ms]
    }
}

#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Patience {
    Low,
    #[default]
    Medium,
    High,
}

/// What the caller wants and how the call opens.
#[derive(Debug, Clone, Default, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// What the caller wants from the call (templated; told to an LLM caller).
    #[serde(default)]
    pub objective: String,
    /// How the caller should go about it (for an LLM caller).
    #[serde(default)]
    pub instructions: String,
    /// Who speaks first: the agent greets (default), or the caller opens.
    #[serde(default)]
    pub first: FirstSpeaker,
}

#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum FirstSpeaker {
    #[default]
    Agent,
    Caller,
}

/// A noise profile at one SNR, or a sweep over several.
#[derive(Debug, Clone, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NoiseCondition {
    /// A bundled profile, `clean`, or a profile file relative to the suite.
    pub profile: String,
    #[serde(default)]
    pub snr: Option<SnrSweep>,
}

#[derive(Debug, Clone, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(untagged)]
pub enum SnrSweep {
    One(Snr),
    Sweep(Vec<Snr>),
    /// `snr: adaptive`: a staircase finds the agent's threshold under this profile.
    Adaptive(Adaptive),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Adaptive {
    Adaptive,
}

/// An SNR in dB, -30..=60.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(try_from = "f64")]
pub struct Snr(pub f64);

impl TryFrom<f64> for Snr {
    type Error = String;
    fn try_from(db: f64) -> Result<Self, String> {
        if (-30.0..=60.0).contains(&db) {
            Ok(Snr(db))
        } else {
            Err(format!("SNR {db} dB is outside -30..=60 dB"))
        }
    }
}

/// One noise setting a test runs under.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Condition {
    pub profile: String,
    /// The background's SNR; `None` keeps the profile's own (or there is no noise).
    pub snr: Option<f64>,
}

impl Condition {
    /// The condition of a call voicesim did not make but analyzed from its recording
    /// (`voicesim analyze`): nothing was judged, and no clean call stands beside it.
    pub fn recorded() -> Self {
        Condition {
            profile: "recorded".into(),
            snr: None,
        }
    }

    pub fn is_recorded(&self) -> bool {
        *self == Condition::recorded()
    }

    /// `clean`, `cafe`, `cafe@10dB`: short enough for tables and file names.
    pub fn label(&self) -> String {
        match self.snr {
            Some(snr) => format!("{}@{snr}dB", self.profile),
            None => self.profile.clone(),
        }
    }
}

/// How many runs, 1..=100.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(try_from = "u32")]
pub struct Runs(pub u32);

impl TryFrom<u32> for Runs {
    type Error = String;
    fn try_from(n: u32) -> Result<Self, String> {
        if (1..=100).contains(&n) {
            Ok(Runs(n))
        } else {
            Err(format!("runs must be 1..=100, not {n}"))
        }
    }
}

fn one_run() -> Runs {
    Runs(1)
}

fn english() -> String {
    "en".into()
}

/// Turns, 1..=50.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(try_from = "u32")]
pub struct Turns(pub u32);

impl TryFrom<u32> for Turns {
    type Error = String;
    fn try_from(n: u32) -> Result<Self, String> {
        if (1..=MAX_TURNS).contains(&n) {
            Ok(Turns(n))
        } else {
            Err(format!("max_turns must be 1..={MAX_TURNS}, not {n}"))
        }
    }
}

/// A probability, 0..=1.
#[derive(Debug, Clone, Copy, Default, PartialEq, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(try_from = "f64")]
pub struct Probability(pub f64);

impl TryFrom<f64> for Probability {
    type Error = String;
    fn try_from(p: f64) -> Result<Self, String> {
        if (0.0..=1.0).contains(&p) {
            Ok(Probability(p))
        } else {
            Err(format!("must be 0..=1, not {p}"))
        }
    }
}

/// When a call stops before the caller runs out of steps.
#[derive(Debug, Clone, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StopRules {
    /// Caller turns in the whole call (at most 50).
    #[serde(default = "twenty")]
    pub max_turns: Turns,
    /// Call time.
    #[serde(default = "five_minutes")]
    pub max_seconds: u32,
    /// The caller hangs up once the agent has said these phrases (any one, or all of them).
    #[serde(default)]
    pub phrases: Vec<String>,
    #[serde(default)]
    pub phrases_match: Match,
    /// Seconds of agent silence that end the call as "no answer".
    #[serde(default = "fifteen")]
    pub answer_timeout_seconds: u32,
}

impl Default for StopRules {
    fn default() -> Self {
        StopRules {
            max_turns: twenty(),
            max_seconds: five_minutes(),
            phrases: Vec::new(),
            phrases_match: Match::Any,
            answer_timeout_seconds: fifteen(),
        }
    }
}

#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Match {
    #[default]
    Any,
    All,
}

fn twenty() -> Turns {
    Turns(20)
}
fn five_minutes() -> u32 {
    300
}
fn fifteen() -> u32 {
    15
}

/// One simulated call, run `runs` times under every noise condition.
#[derive(Debug, Clone, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TestCase {
    /// The test's name, unique in the suite; reports and `--only` use it.
    pub name: String,
    /// Picked with `--tags`.
    #[serde(default)]
    pub tags: Vec<String>,
    /// A persona of the suite's `personas`.
    pub persona: Option<String>,
    /// A scenario of the suite's `scenarios`.
    pub scenario: Option<String>,
    /// Template variables for every text of the test (`{{ order }}`).
    #[serde(default)]
    #[schemars(schema_with = "crate::schema::scalar_map")]
    pub inputs: BTreeMap<String, String>,
    /// Sent to the agent when the call starts (Twilio `customParameters`).
    #[serde(default)]
    #[schemars(schema_with = "crate::schema::scalar_map")]
    pub session_parameters: BTreeMap<String, String>,
    /// Goals the caller pursues in order, each judged after every agent turn.
    pub steps: Vec<Step>,
    /// Judged once, on the whole call.
    #[serde(default)]
    pub expectations: Vec<Expectation>,
    /// Overrides the suite's runs.
    pub runs: Option<Runs>,
    /// Overrides the suite's noise conditions.
    pub noise: Option<Vec<NoiseCondition>>,
    /// Overrides the suite's stop rules.
    pub stop: Option<StopRules>,
}

/// A goal the caller pursues until the agent meets its success criterion or the step's turns
/// run out.
#[derive(Debug, Clone, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Step {
    /// What the caller is after in this step (templated; told to an LLM caller).
    pub goal: String,
    /// What the agent must do for the step to pass, in words (for an LLM judge).
    pub success_criteria: Option<String>,
    /// How the caller should respond along the way (for an LLM caller).
    pub response_guide: Option<String>,
    #[serde(default = "three")]
    pub max_turns: Turns,
    /// Say exactly this (templated) instead of asking an LLM what to say.
    pub static_utterance: Option<String>,
    /// Play this recording (relative to the suite) instead of synthesizing speech.
    pub audio: Option<PathBuf>,
    /// Press these keys (0-9, *, #, A-D; templated) instead of speaking: the protocol's
    /// key-press message where it has one, the tones in-band where it has not.
    #[serde(default)]
    #[schemars(schema_with = "crate::schema::scalar_text")]
    pub dtmf: Option<String>,
    /// Variables added for this and later steps (templated themselves).
    #[serde(default)]
    #[schemars(schema_with = "crate::schema::scalar_map")]
    pub inject_variables: BTreeMap<String, String>,
    /// A rule that decides the success criterion without an LLM.
    pub check: Option<Rule>,
}

fn three() -> Turns {
    Turns(3)
}

impl Step {
    /// Said or played as written (a line, a recording, keys): no LLM speaks it.
    pub fn scripted(&self) -> bool {
        self.static_utterance.is_some() || self.audio.is_some() || self.dtmf.is_some()
    }
}

/// Judged once, after the call.
#[derive(Debug, Clone, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Expectation {
    /// Its name in reports.
    pub name: String,
    /// What should be true of the call, in words (for an LLM judge).
    pub description: Option<String>,
    /// A rule that decides it without an LLM.
    pub check: Option<Rule>,
}

impl Suite {
    /// Reads and checks a suite file.
    pub fn load(path: &Path) -> Result<Suite, SuiteError> {
        let text = crate::file::read_text(path).map_err(|e| SuiteError {
            place: path.display().to_string(),
            message: format!("cannot read: {e}"),
        })?;
        let dir = path.parent().unwrap_or(Path::new(".")).to_path_buf();
        Suite::parse(&text, &path.display().to_string(), &dir)
    }

    /// Parses and checks suite YAML; `origin` names the file in errors, `dir` resolves paths.
    pub fn parse(yaml: &str, origin: &str, dir: &Path) -> Result<Suite, SuiteError> {
        let mut suite: Suite = crate::yaml::parse(yaml, origin)
            .map_err(|(place, message)| SuiteError { place, message })?;
        suite.dir = dir.to_path_buf();
        suite.check(yaml, origin)?;
        Ok(suite)
    }

    fn check(&self, yaml: &str, origin: &str) -> Result<(), SuiteError> {
        let places = Places { yaml, origin };
        if self.tests.is_empty() {
            return Err(places.error(None, "tests", "a suite needs at least one test".into()));
        }
        if let Err(e) = self.asked_to_repeat.check() {
            return Err(places.error(None, "asked_to_repeat", e));
        }
        let mut names = std::collections::HashSet::new();
        for test in &self.tests {
            let at = Some(test.name.as_str());
            if !names.insert(test.name.as_str()) {
                return Err(places.error(
                    at,
                    "name",
                    format!(
                        "a second test named {:?}; test names must be unique",
                        test.name
                    ),
                ));
            }
            if test.steps.is_empty() {
                return Err(places.error(
                    at,
                    "steps",
                    format!(
                        "test {:?} has no steps; give it at least one goal",
                        test.name
                    ),
                ));
            }
            if let Some(p) = test
                .persona
                .as_ref()
                .filter(|p| !self.personas.contains_key(*p))
            {
                return Err(places.error(
                    at,
                    "persona",
                    format!("unknown persona {p:?}; {}", known(self.personas.keys())),
                ));
            }
            if let Some(s) = test
                .scenario
                .as_ref()
                .filter(|s| !self.scenarios.contains_key(*s))
            {
                return Err(places.error(
                    at,
                    "scenario",
                    format!("unknown scenario {s:?}; {}", known(self.scenarios.keys())),
                ));
            }
            for condition in test.noise.as_ref().unwrap_or(&self.noise) {
                if condition.profile != "clean"
                    && crate::noise::NoiseProfile::find(&self.resolve_profile(&condition.profile))
                        .is_err()
                {
                    return Err(places.error(at, "profile", format!(
                        "unknown noise profile {:?}; use clean, a bundled one ({}) or a profile file",
                        condition.profile,
                        crate::noise::NoiseProfile::bundled_names().join(", ")
                    )));
                }
                if condition.profile == "clean"
                    && matches!(condition.snr, Some(SnrSweep::Adaptive(_)))
                {
                    return Err(places.error(
                        at,
                        "snr",
                        "snr: adaptive needs a noise profile to vary (clean has none); name \
                         one, e.g. {profile: cafe, snr: adaptive}"
                            .into(),
                    ));
                }
            }
            // Every template must render with the test's inputs and the variables its steps inject.
            let mut vars = test.inputs.clone();
            let texts = |step: &Step| {
                [
                    Some(&step.goal),
                    step.success_criteria.as_ref(),
                    step.response_guide.as_ref(),
                    step.static_utterance.as_ref(),
                ]
                .into_iter()
                .flatten()
                .cloned()
                .collect::<Vec<_>>()
            };
            for (i, step) in test.steps.iter().enumerate() {
                for (k, v) in &step.inject_variables {
                    let v = render(v, &vars).map_err(|e| {
                        places.error(at, k, format!("steps[{i}].inject_variables.{k}: {e}"))
                    })?;
                    vars.insert(k.clone(), v);
                }
                for text in texts(step) {
                    render(&text, &vars)
                        .map_err(|e| places.error(at, "steps", format!("steps[{i}]: {e}")))?;
                }
                if let Some(keys) = &step.dtmf {
                    let keys = render(keys, &vars)
                        .map_err(|e| places.error(at, "dtmf", format!("steps[{i}].dtmf: {e}")))?;
                    if let Some(bad) = keys.chars().find(|c| !crate::audio::is_dtmf_key(*c)) {
                        return Err(places.error(
                            at,
                            "dtmf",
                            format!("steps[{i}].dtmf: {bad:?} is not a key; use 0-9, *, #, A-D"),
                        ));
                    }
                }
                if let Some(audio) = &step.audio {
                    let path = self.dir.join(audio);
                    if !path.is_file() {
                        return Err(places.error(at, "audio", format!(
                            "steps[{i}].audio: no file {}; paths are relative to the suite's folder",
                            path.display()
                        )));
                    }
                }
            }
        }
        Ok(())
    }

    /// Every test runs under `conditions` instead of the suite's and its own (`run --noise`).
    pub fn set_noise(&mut self, conditions: Vec<NoiseCondition>) {
        self.noise = conditions;
        for test in &mut self.tests {
            test.noise = None;
        }
    }

    /// Keeps only the calls `only` names (`run --only`): `TEST`, every call of the test, or
    /// `TEST/CONDITION`, its calls under one condition as reports name it (`clean`,
    /// `cafe@20dB`). A test named with conditions keeps just those (no staircase of its
    /// `snr: adaptive` profiles). A name that is not in the suite is an error that lists
    /// what is.
    pub fn narrow(&mut self, only: &[String]) -> Result<(), String> {
        if only.is_empty() {
            return Ok(());
        }
        // Per test: None keeps all its conditions, Some the labels named.
        let mut keep: BTreeMap<String, Option<Vec<String>>> = BTreeMap::new();
        let is_test = |name: &str| self.tests.iter().any(|t| t.name == name);
        for pick in only {
            let (test, condition) = match pick.rsplit_once('/') {
                Some((test, condition)) if is_test(test) && !is_test(pick) => {
                    (test, Some(condition))
                }
                _ if is_test(pick) => (pick.as_str(), None),
                _ => {
                    return Err(format!(
                        "--only {pick}: the suite has no test {:?} ({})",
                        pick.rsplit_once('/').map_or(pick.as_str(), |(t, _)| t),
                        known(self.tests.iter().map(|t| &t.name))
                    ))
                }
            };
            let entry = keep.entry(test.to_string()).or_insert(Some(Vec::new()));
            match (condition, entry.as_mut()) {
                (None, _) => *entry = None,
                (Some(label), Some(labels)) => labels.push(label.to_string()),
                (Some(_), None) => {}
            }
        }
        let mut tests = Vec::new();
        for mut test in std::mem::take(&mut self.tests) {
            let Some(labels) = keep.get(&test.name) else {
                continue;
            };
            if let Some(labels) = labels {
                let conditions = self.conditions(&test);
                for label in labels {
                    if !conditions.iter().any(|c| &c.label() == label) {
                        let there: Vec<String> = conditions.iter().map(|c| c.label()).collect();
                        return Err(format!(
                            "--only {}/{label}: test {} runs under no condition {label:?} (it runs under {})",
                            test.name,
                            test.name,
                            there.join(", ")
                        ));
                    }
                }
                test.noise = Some(
                    conditions
                        .into_iter()
                        .filter(|c| labels.contains(&c.label()))
                        .map(|c| NoiseCondition {
                            profile: c.profile,
                            snr: c.snr.map(|db| SnrSweep::One(Snr(db))),
                        })
                        .collect(),
                );
            }
            tests.push(test);
        }
        self.tests = tests;
        Ok(())
    }

    /// A profile name, or a profile file relative to the suite's folder.
    pub fn resolve_profile(&self, profile: &str) -> String {
        if profile.ends_with(".yaml") || profile.ends_with(".yml") {
            self.dir.join(profile).display().to_string()
        } else {
            profile.to_string()
        }
    }

    /// Every fixed condition a test runs under, sweeps expanded (adaptive profiles are
    /// [`Suite::adaptive`]).
    pub fn conditions(&self, test: &TestCase) -> Vec<Condition> {
        let list = test.noise.as_ref().unwrap_or(&self.noise);
        if list.is_empty() {
            return vec![Condition {
                profile: "clean".into(),
                snr: None,
            }];
        }
        list.iter()
            .flat_map(|c| {
                match &c.snr {
                    None => vec![None],
                    Some(SnrSweep::One(s)) => vec![Some(s.0)],
                    Some(SnrSweep::Sweep(v)) => v.iter().map(|s| Some(s.0)).collect(),
                    Some(SnrSweep::Adaptive(_)) => vec![],
                }
                .into_iter()
                .map(|snr| Condition {
                    profile: c.profile.clone(),
                    snr,
                })
            })
            .collect()
    }

    /// The profiles under which a staircase finds the test's threshold (`snr: adaptive`).
    pub fn adaptive(&self, test: &TestCase) -> Vec<String> {
        let mut profiles: Vec<String> = Vec::new();
        for c in test.noise.as_ref().unwrap_or(&self.noise) {
            if matches!(c.snr, Some(SnrSweep::Adaptive(_))) && !profiles.contains(&c.profile) {
                profiles.push(c.profile.clone());
            }
        }
        profiles
    }

    /// Every noisy profile becomes adaptive (or `only` these, replacing the suite's noise):
    /// what `voicesim threshold` measures.
    pub fn all_adaptive(&mut self, only: &[String]) {
        let adapt = |list: &[NoiseCondition]| -> Vec<NoiseCondition> {
            let mut profiles: Vec<String> = list
                .iter()
                .map(|c| c.profile.clone())
                .filter(|p| p != "clean")
                .collect();
            if !only.is_empty() {
                profiles = only.to_vec();
            }
            profiles.dedup();
            profiles
                .into_iter()
                .map(|profile| NoiseCondition {
                    profile,
                    snr: Some(SnrSweep::Adaptive(Adaptive::Adaptive)),
                })
                .collect()
        };
        self.noise = adapt(&self.noise);
        for test in &mut self.tests {
            if let Some(list) = &test.noise {
                test.noise = Some(adapt(list));
            }
        }
    }

    /// Tests carrying any of `tags` (all tests when `tags` is empty).
    pub fn selected(&self, tags: &[String]) -> Vec<&TestCase> {
        self.tests
            .iter()
            .filter(|t| tags.is_empty() || t.tags.iter().any(|tag| tags.contains(tag)))
            .collect()
    }
}

fn known<'a>(names: impl Iterator<Item = &'a String>) -> String {
    let names: Vec<&str> = names.map(String::as_str).collect();
    if names.is_empty() {
        "none are defined".into()
    } else {
        format!("defined: {}", names.join(", "))
    }
}

/// Finds where things are in the suite text, for errors found after parsing.
struct Places<'a> {
    yaml: &'a str,
    origin: &'a str,
}

impl Places<'_> {
    /// The first `key:` inside the test named `test` (or anywhere, without a test).
    fn error(&self, test: Option<&str>, key: &str, message: String) -> SuiteError {
        let lines: Vec<&str> = self.yaml.lines().collect();
        let start = test
            .and_then(|name| {
                lines.iter().position(|l| {
                    let l = l.trim_start().trim_start_matches("- ").trim_start();
                    l.strip_prefix("name:")
                        .is_some_and(|v| v.trim().trim_matches(['"', '\'']) == name)
                })
            })
            .unwrap_or(0);
        let needle = format!("{key}:");
        let found = lines
            .get(start..)
            .unwrap_or_default()
            .iter()
            .enumerate()
            .find_map(|(i, l)| l.find(&needle).map(|col| (start + i, col)))
            .or_else(|| {
                lines
                    .get(start)
                    .map(|l| (start, l.len() - l.trim_start().len()))
            });
        let place = match found {
            Some((line, col)) => format!("{}:{}:{}", self.origin, line + 1, col + 1),
            None => self.origin.to_string(),
        };
        SuiteError { place, message }
    }
}
