//! The caller of a suite test: pursues the test's steps in order. After each agent turn the
//! current step's success criterion is judged (rule, else LLM, else "not judged"); met, the
//! caller moves on to the next goal; not met, it tries again until the step's turns run out,
//! and then the call ends there. Lines come from `static_utterance`/`audio` (scripted,
//! deterministic) or from an LLM playing the persona.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::{Caller, Reply, SimError, Utterance};
use crate::audio::Clip;
use crate::judge::{self, Judgement, StepResult, Verdict};
use crate::llm::{Chat, Message};
use crate::record::{Line, Speaker};
use crate::speech::wer::normalize;
use crate::suite::{render, FirstSpeaker, Match, Persona, Scenario, Step, StopRules, TestCase};

#[derive(Clone)]
pub struct StepCaller {
    /// The test's name.
    test: String,
    steps: Vec<Step>,
    vars: BTreeMap<String, String>,
    persona: Persona,
    scenario: Scenario,
    stop: StopRules,
    dir: PathBuf,
    llm: Option<Arc<dyn Chat>>,
    /// The call's seed, from which each LLM line's is drawn.
    seed: u64,
    /// Draws whether and when the persona cuts into an agent turn.
    manners: ChaCha8Rng,
    /// Draws each turn's reaction time.
    reflexes: ChaCha8Rng,
    /// Index of the current step, and whether its first line was said.
    current: usize,
    begun: bool,
    turns_in_step: u32,
    turns: u32,
    /// What the agent said since the current step's last caller line.
    heard_in_step: String,
    heard_all: String,
    transcript: Vec<Line>,
    pub results: Vec<StepResult>,
    /// Why the caller hung up early, if it did.
    pub stopped_by: Option<String>,
    /// It has hung up: from then on it says nothing, whatever it hears.
    hung_up: bool,
    /// The step whose first line the caller said cutting into the agent's turn, not yet
    /// entered (it is entered once the turn is judged and that step comes up).
    said_ahead: Option<usize>,
    /// Agent turns heard so far; a turn's number is its place in that order.
    agent_turns: usize,
    /// The agent turns `heard_in_step` holds.
    heard_turns: Vec<usize>,
    /// What each judgement of the current step read.
    judged: Vec<Judged>,
    /// What the judgements of each step in `results` read.
    judged_steps: Vec<Vec<Judged>>,
}

/// What one judgement of a step read: agent turns by number, and the transcript's length then.
#[derive(Debug, Clone)]
struct Judged {
    turns: Vec<usize>,
    lines: usize,
}

impl StepCaller {
    pub fn new(
        test: &TestCase,
        persona: Persona,
        scenario: Scenario,
        stop: StopRules,
        dir: PathBuf,
        llm: Option<Arc<dyn Chat>>,
        seed: u64,
    ) -> Self {
        let mut manners = ChaCha8Rng::seed_from_u64(seed);
        // Its own stream: the noise of the same seed draws from streams below 2^33.
        manners.set_stream(1 << 40);
        let mut reflexes = ChaCha8Rng::seed_from_u64(seed);
        reflexes.set_stream(1 << 41);
        let caller = StepCaller {
            test: test.name.clone(),
            manners,
            reflexes,
            steps: test.steps.clone(),
            vars: test.inputs.clone(),
            persona,
            scenario,
            stop,
            dir,
            llm,
            seed,
            current: 0,
            begun: false,
            turns_in_step: 0,
            turns: 0,
            heard_in_step: String::new(),
            heard_all: String::new(),
            transcript: Vec::new(),
            results: Vec::new(),
            stopped_by: None,
            hung_up: false,
            said_ahead: None,
            agent_turns: 0,
            heard_turns: Vec::new(),
            judged: Vec::new(),
            judged_steps: Vec::new(),
        };
        // The model reads who the caller is while the agent greets, not after.
        if let (Some(llm), true) = (&caller.llm, caller.steps.iter().any(|s| !s.scripted())) {
            if let Ok(system) = caller.caller_system(&caller.vars) {
                let llm = llm.clone();
                std::thread::spawn(move || llm.prepare(&system));
            }
        }
        caller
    }

    /// The steps' verdicts once the call is over, judged on the whole agent turns of `record`
    /// (the call's transcript). Steps never reached count as not met: the test did not get
    /// there.
    pub fn finish(&mut self, record: &[Line]) -> Vec<StepResult> {
        let reached = self.results.len();
        for (i, step) in self.steps.iter().enumerate().skip(reached) {
            let here = i == self.current;
            let why = if here && self.begun {
                "the call ended before the agent met it"
            } else {
                "not reached"
            };
            self.results.push(StepResult {
                goal: render(&step.goal, &self.vars).unwrap_or_default(),
                verdict: Verdict::NotMet,
                justification: why.to_string(),
                turns: if here { self.turns_in_step } else { 0 },
            });
            let judged = if here {
                std::mem::take(&mut self.judged)
            } else {
                Vec::new()
            };
            self.judged_steps.push(judged);
        }
        self.rejudge(record);
        self.results.clone()
    }

    /// The caller judged each step on the agent's turns as it heard them playing; the verdict
    /// is of the whole turns. Every step one of whose judgements read a turn heard otherwise
    /// is judged again on the whole turns: met if any of its tries was.
    fn rejudge(&mut self, record: &[Line]) {
        let whole = self.whole_turns(record);
        let differs = |t: &usize| whole.get(*t).is_some_and(Option::is_some);
        for i in 0..self.results.len() {
            let (Some(step), Some(judged)) = (self.steps.get(i), self.judged_steps.get(i)) else {
                continue;
            };
            if !judged.iter().any(|j| j.turns.iter().any(differs)) {
                continue;
            }
            let mut last = None;
            for j in judged {
                let (heard, transcript) = self.as_whole(j, &whole);
                // A judge that fails now leaves the verdict the caller reached.
                let Ok(judgement) = self.judge_on(step, &heard, &transcript) else {
                    last = None;
                    break;
                };
                let met = judgement.verdict == Verdict::Met;
                last = Some(judgement);
                if met {
                    break;
                }
            }
            let (Some(judgement), Some(result)) = (last, self.results.get_mut(i)) else {
                continue;
            };
            if judgement.verdict != result.verdict {
                result.justification = format!(
                    "{} (judged on the whole turns; as they played, the caller heard them \
                     otherwise and found: {})",
                    judgement.justification, result.justification
                );
            } else {
                result.justification = judgement.justification;
            }
            result.verdict = judgement.verdict;
        }
    }

    /// For each agent turn the caller heard, by number: the whole turn's words where the record
    /// says the caller heard it otherwise. The record holds the turns in the order heard; the
    /// first that does not match what this caller heard ends the list.
    fn whole_turns(&self, record: &[Line]) -> Vec<Option<String>> {
        let recorded = record.iter().filter(|l| l.speaker == Speaker::Agent);
        let heard = self
            .transcript
            .iter()
            .filter(|l| l.speaker == Speaker::Agent);
        recorded
            .zip(heard)
            .map_while(|(line, mine)| {
                let as_heard = line.heard.as_deref().unwrap_or(&line.text);
                (as_heard.trim() == mine.text.trim())
                    .then(|| line.heard.is_some().then(|| line.text.clone()))
            })
            .collect()
    }

    /// What judgement `j` read, with the whole turns in place of what was heard.
    fn as_whole(&self, j: &Judged, whole: &[Option<String>]) -> (String, Vec<Line>) {
        let mut number = 0;
        let transcript: Vec<Line> = self
            .transcript
            .iter()
            .take(j.lines)
            .map(|line| {
                let mut line = line.clone();
                if line.speaker == Speaker::Agent {
                    if let Some(Some(text)) = whole.get(number) {
                        line.text = text.clone();
                    }
                    number += 1;
                }
                line
            })
            .collect();
        let agent: Vec<&Line> = transcript
            .iter()
            .filter(|l| l.speaker == Speaker::Agent)
            .collect();
        let heard = j
            .turns
            .iter()
            .filter_map(|t| agent.get(*t).map(|l| l.text.as_str()))
            .collect::<Vec<_>>()
            .join(" ");
        (heard, transcript)
    }

    /// Each step's line in order, for a caller that says them without listening (a load run):
    /// every step must be scripted (`static_utterance`, `audio` or `dtmf`).
    pub fn script(&self) -> Result<Vec<Utterance>, SimError> {
        self.steps
            .iter()
            .enumerate()
            .map(|(i, step)| {
                if !step.scripted() {
                    return Err(SimError::Caller(format!(
                        "test {:?} steps[{i}]: a load run's caller says scripted lines only \
                         (static_utterance, audio or dtmf), not an LLM's",
                        self.test
                    )));
                }
                self.utterance(step, &self.vars)
            })
            .collect()
    }

    fn text(&self, template: &str) -> Result<String, SimError> {
        render(template, &self.vars).map_err(SimError::Caller)
    }

    /// Judges `step` on what the agent said since the step's line, and keeps what it read.
    fn judge_step(&mut self, step: &Step) -> Result<Judgement, SimError> {
        self.judged.push(Judged {
            turns: self.heard_turns.clone(),
            lines: self.transcript.len(),
        });
        self.judge_on(step, &self.heard_in_step, &self.transcript)
    }

    /// Judges `step` on `heard` (the agent's words since the step's line), with `transcript`
    /// (the call so far) for an LLM judge.
    fn judge_on(
        &self,
        step: &Step,
        heard: &str,
        transcript: &[Line],
    ) -> Result<Judgement, SimError> {
        if let Some(rule) = &step.check {
            return Ok(judge::check(rule, heard, None));
        }
        let criterion = match &step.success_criteria {
            Some(c) => self.text(c)?,
            None => {
                return Ok(Judgement::not_judged(
                    "the step has no success criterion or check",
                ))
            }
        };
        match &self.llm {
            Some(llm) => judge::ask_llm(llm.as_ref(), &criterion, transcript)
                .map_err(|e| SimError::Caller(e.to_string())),
            None => Ok(Judgement::not_judged(
                "no rule (check) and no LLM judge configured (VOICESIM_LLM_BASE_URL)",
            )),
        }
    }

    fn stop_phrases_said(&self) -> bool {
        let heard = format!(" {} ", normalize(&self.heard_all));
        let said = |p: &String| heard.contains(&format!(" {} ", normalize(p)));
        !self.stop.phrases.is_empty()
            && match self.stop.phrases_match {
                Match::Any => self.stop.phrases.iter().any(said),
                Match::All => self.stop.phrases.iter().all(said),
            }
    }

    /// The current step's line: said now, or already said cutting into the last agent turn.
    fn line(&mut self) -> Result<Reply, SimError> {
        // A line said ahead already counted as a turn.
        let ahead = self.said_ahead.take() == Some(self.current) && !self.begun;
        if !ahead && self.turns >= self.stop.max_turns.0 {
            self.stopped_by = Some(format!("max_turns ({}) reached", self.stop.max_turns.0));
            return Ok(Reply::HangUp);
        }
        // Every step is done: there is nothing left to say (an agent that goes on talking
        // while the caller hangs up lands here).
        let Some(step) = self.steps.get(self.current).cloned() else {
            return Ok(Reply::HangUp);
        };
        for (k, v) in &step.inject_variables {
            let v = self.text(v)?;
            self.vars.insert(k.clone(), v);
        }
        self.begun = true;
        if !ahead {
            self.turns += 1;
        }
        self.turns_in_step += 1;
        self.heard_in_step.clear();
        self.heard_turns.clear();
        if ahead {
            return Ok(Reply::Listen);
        }
        let utterance = self.utterance(&step, &self.vars)?;
        self.said(&utterance);
        Ok(Reply::Say(utterance))
    }

    fn said(&mut self, utterance: &Utterance) {
        self.transcript.push(Line {
            speaker: Speaker::Caller,
            text: utterance.text().to_string(),
            at_ms: 0.0,
            heard: None,
        });
    }

    /// What the caller says for `step`, with these variables.
    fn utterance(
        &self,
        step: &Step,
        vars: &BTreeMap<String, String>,
    ) -> Result<Utterance, SimError> {
        let text = |t: &str| render(t, vars).map_err(SimError::Caller);
        Ok(if let Some(keys) = &step.dtmf {
            Utterance::Keys(text(keys)?)
        } else if let Some(audio) = &step.audio {
            let path = self.dir.join(audio);
            let clip = Clip::open(&path).map_err(|e| SimError::Caller(e.to_string()))?;
            let text = match &step.static_utterance {
                Some(t) => text(t)?,
                None => format!("({})", audio.display()),
            };
            Utterance::Audio { clip, text }
        } else if let Some(t) = &step.static_utterance {
            Utterance::Text(text(t)?)
        } else {
            Utterance::Text(self.generate(step, vars)?)
        })
    }

    /// Asks the LLM what the persona says next: one line, in character, turned into the words
    /// a person would say (numbers digit by digit) before it reaches the voice.
    fn generate(&self, step: &Step, vars: &BTreeMap<String, String>) -> Result<String, SimError> {
        let llm = self.llm.as_ref().ok_or_else(|| {
            SimError::Caller(format!(
                "test {:?}: a step without static_utterance or audio needs an LLM caller",
                self.test
            ))
        })?;
        let mut messages = self.caller_prompt(step, vars)?;
        let before = self
            .transcript
            .iter()
            .rev()
            .find(|l| l.speaker == Speaker::Caller)
            .map(|l| normalize(&l.text));
        let mut line = String::new();
        // A small model now and then speaks for the agent or says its last line again word
        // for word to an agent that did not understand it: asked again, it does better.
        for attempt in 0..3u64 {
            // One seed per turn and attempt, from the call's: a rerun says the same lines.
            let seed = self.seed
                ^ (u64::from(self.turns) + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15)
                ^ attempt;
            let raw = llm
                .line(&messages, self.seed, seed)
                .map_err(|e| SimError::Caller(e.to_string()))?;
            line = spoken(&clean_line(&raw));
            let as_agent = raw.trim_start().to_lowercase().starts_with("agent");
            let again = before.as_deref() == Some(normalize(&line).as_str());
            if !line.is_empty() && !as_agent && !again {
                break;
            }
            if let Some(last) = messages.last_mut() {
                last.content.push_str(if again {
                    "\n(You said exactly that already and the agent did not get it: say it \
                     another way, in a full sentence.)"
                } else {
                    "\n(Speak as the caller, in your own words.)"
                });
            }
        }
        Ok(line)
    }

    /// Who the caller is and what it wants: the same all call long.
    fn caller_system(&self, vars: &BTreeMap<String, String>) -> Result<Message, SimError> {
        let text = |t: &str| render(t, vars).map_err(SimError::Caller);
        let p = &self.persona;
        let mut system = format!(
            "You play a person who has phoned a company. You are the CALLER. The other party is \
             the company's voice agent; never speak for the agent. Each reply is exactly what \
             the caller says next: one short spoken sentence, no stage directions, no quotes, \
             no lists. Give numbers and codes digit by digit. If the agent did not understand \
             or asks again, say it again in a different, complete sentence. When your objective \
             is met, end the call in one full sentence, such as \"Thank you, that is all I \
             needed. Goodbye.\" Language: {}. Patience: {:?}.",
            p.language, p.patience
        );
        for (label, part) in [
            ("Who you are", &p.background),
            ("Your role", &p.role),
            ("Your objective", &self.scenario.objective),
            ("Instructions", &self.scenario.instructions),
        ] {
            if !part.is_empty() {
                system.push_str(&format!("\n{label}: {}", text(part)?));
            }
        }
        Ok(Message::system(system))
    }

    /// The conversation as the caller's model reads it: who it is and what it wants (the same
    /// every turn, so the engine reads it once), the call so far with the agent as the other
    /// party, and last the goal of the moment restated.
    fn caller_prompt(
        &self,
        step: &Step,
        vars: &BTreeMap<String, String>,
    ) -> Result<Vec<Message>, SimError> {
        let mut messages = vec![self.caller_system(vars)?];
        let text = |t: &str| render(t, vars).map_err(SimError::Caller);
        for line in &self.transcript {
            messages.push(match line.speaker {
                // The model plays the caller: the agent's lines are what it hears.
                Speaker::Agent => Message::user(format!("Agent: {}", line.text)),
                Speaker::Caller => Message::assistant(line.text.clone()),
            });
        }
        let mut now = format!(
            "(Your goal now: {}.",
            text(&step.goal)?.trim_end_matches('.')
        );
        if let Some(guide) = &step.response_guide {
            now.push_str(&format!(" {}", text(guide)?));
        }
        now.push_str(" Say the caller's next line only.)");
        match messages.last_mut() {
            Some(last) if last.role == "user" => {
                last.content = format!("{}\n{now}", last.content);
            }
            _ => messages.push(Message::user(if self.transcript.is_empty() {
                format!("(The call has connected. You speak first.)\n{now}")
            } else {
                format!("(The agent is silent.)\n{now}")
            })),
        }
        Ok(messages)
    }
}

/// A model's line as speech: no speaker label, quotes or stage directions.
fn clean_line(line: &str) -> String {
    let mut line = line.trim();
    // "Agent:" too: a line the model still wrote as the agent after being asked again is
    // said without the label, which an agent would take for a request for one.
    for label in ["Caller:", "caller:", "Customer:", "Me:", "Agent:", "agent:"] {
        line = line.strip_prefix(label).unwrap_or(line).trim();
    }
    let line = line.trim_matches(|c| c == '"' || c == '\'' || c == '*');
    let bracketed = without_brackets(line);
    bracketed.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// `line` without what stands in brackets: "(smiling) Hi" is "Hi".
fn without_brackets(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut depth = 0usize;
    for c in line.chars() {
        match c {
            '(' | '[' => depth += 1,
            ')' | ']' => depth = depth.saturating_sub(1),
            _ if depth == 0 => out.push(c),
            _ => {}
        }
    }
    out
}

/// Runs of three or more digits said one digit at a time, as a caller gives an order number,
/// a code or a phone number: a voice reads "4521" as "four thousand five hundred twenty-one",
/// which no agent takes for an order number. Amounts and years are left to the script.
pub fn spoken(line: &str) -> String {
    const DIGITS: [&str; 10] = [
        "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine",
    ];
    // The line as runs of digits and runs of everything else.
    let mut runs: Vec<String> = Vec::new();
    for c in line.chars() {
        match runs.last_mut() {
            Some(run) if run.starts_with(|r: char| r.is_ascii_digit()) == c.is_ascii_digit() => {
                run.push(c)
            }
            _ => runs.push(c.to_string()),
        }
    }
    let mut out = String::with_capacity(line.len() * 2);
    for (k, run) in runs.iter().enumerate() {
        let before = k
            .checked_sub(1)
            .and_then(|b| runs.get(b))
            .and_then(|r| r.chars().last());
        let mut after = runs.get(k + 1).map(|r| r.chars()).into_iter().flatten();
        let (next, then) = (after.next(), after.next());
        let digits = run.starts_with(|c: char| c.is_ascii_digit()) && run.len() >= 3;
        // `$250`, `3.125`, `1,500`, `100%`, `1,500.25` are amounts, not codes.
        let amount = matches!(before, Some('$' | '€' | '£' | '.' | ','))
            || next == Some('%')
            || (matches!(next, Some('.' | ',')) && runs.get(k + 2).is_some() && then.is_none());
        if digits && !amount {
            let words: Vec<&str> = run
                .chars()
                .filter_map(|c| c.to_digit(10).and_then(|d| DIGITS.get(d as usize)).copied())
                .collect();
            out.push_str(&words.join(" "));
        } else {
            out.push_str(run);
        }
    }
    out
}

/// How far into an agent turn an interrupting caller cuts in, in ms: after the agent's first
/// words, before a typical answer is over.
const CUT_IN_MS: std::ops::Range<f64> = 600.0..2500.0;

impl Caller for StepCaller {
    /// A caller who cuts in says what it would say next if the turn goes well: the next
    /// step's line while the agent answers the current one, the current step's line while
    /// the agent is still greeting. The turn is judged whole when it ends.
    fn cut_in(&mut self) -> Result<Option<(f64, Utterance)>, SimError> {
        // Draw on every turn, so whether turn k is interrupted depends on the seed alone.
        let (p, after) = (
            self.manners.random::<f64>(),
            self.manners.random_range(CUT_IN_MS),
        );
        let ahead = self.current + usize::from(self.begun);
        if self.hung_up
            || p >= self.persona.interrupt.0
            || self.said_ahead.is_some()
            || self.turns >= self.stop.max_turns.0
        {
            return Ok(None);
        }
        // Keys are pressed when the agent has finished, never over it.
        let Some(step) = self.steps.get(ahead).filter(|s| s.dtmf.is_none()).cloned() else {
            return Ok(None);
        };
        let mut vars = self.vars.clone();
        for (k, v) in &step.inject_variables {
            vars.insert(k.clone(), render(v, &vars).map_err(SimError::Caller)?);
        }
        let utterance = self.utterance(&step, &vars)?;
        self.said(&utterance);
        self.said_ahead = Some(ahead);
        self.turns += 1;
        Ok(Some((after, utterance)))
    }

    fn speaks_first(&self) -> bool {
        self.scenario.first == FirstSpeaker::Caller
    }

    fn reaction_ms(&mut self) -> Option<f64> {
        let r = self.persona.reaction_ms;
        Some(self.reflexes.random_range(r.from_ms..=r.to_ms))
    }

    fn answers_ahead(&self) -> bool {
        true
    }

    fn upcoming(&self) -> Option<Utterance> {
        // The current step's line until it is said, then the next step's.
        let step = self.steps.get(self.current + usize::from(self.begun))?;
        if step.static_utterance.is_none() || step.audio.is_some() || step.dtmf.is_some() {
            return None;
        }
        self.utterance(step, &self.vars).ok()
    }

    fn snapshot(&self) -> Option<Box<dyn std::any::Any + Send>> {
        Some(Box::new(self.clone()))
    }

    fn restore(&mut self, snapshot: Box<dyn std::any::Any + Send>) {
        if let Ok(before) = snapshot.downcast::<StepCaller>() {
            *self = *before;
        }
    }

    fn last_words(&mut self, heard: &str) -> Result<(), SimError> {
        if self.hung_up {
            self.listen(heard);
        } else {
            self.hear(heard)?;
        }
        Ok(())
    }

    fn next(&mut self, heard: Option<&str>) -> Result<Reply, SimError> {
        #[cfg(feature = "test-hooks")]
        if heard.is_some() && std::env::var("VOICESIM_TEST_PANIC").is_ok_and(|t| t == self.test) {
            #[allow(
                clippy::panic,
                reason = "the deliberate panic the last guard is tested with"
            )]
            {
                panic!(
                    "deliberate panic in test {:?} (VOICESIM_TEST_PANIC)",
                    self.test
                );
            }
        }
        if self.hung_up {
            // Gone: what the agent says now is heard, and judges nothing.
            if let Some(heard) = heard {
                self.listen(heard);
            }
            return Ok(Reply::HangUp);
        }
        let next = match heard {
            None => self.line()?,
            Some(heard) => match self.hear(heard)? {
                Next::Again => self.line()?,
                Next::Hangup => Reply::HangUp,
                Next::Continue if self.stop_phrases_said() => {
                    self.stopped_by = Some("the agent said a stop phrase".into());
                    Reply::HangUp
                }
                Next::Continue => match self.line()? {
                    Reply::Listen => self.answered_in_same_turn(heard)?,
                    reply => reply,
                },
            },
        };
        self.hung_up = matches!(next, Reply::HangUp);
        Ok(next)
    }
}

/// What the caller does after judging an agent turn.
enum Next {
    /// Say the current step's line again.
    Again,
    Hangup,
    /// Go on with the (next) step.
    Continue,
}

impl StepCaller {
    /// Takes in an agent turn.
    fn listen(&mut self, heard: &str) {
        self.transcript.push(Line {
            speaker: Speaker::Agent,
            text: heard.to_string(),
            at_ms: 0.0,
            heard: None,
        });
        self.agent_turns += 1;
        self.heard_all.push(' ');
        self.heard_all.push_str(heard);
    }

    /// Takes in an agent turn and judges the current step on it.
    fn hear(&mut self, heard: &str) -> Result<Next, SimError> {
        self.listen(heard);
        let step = match self.steps.get(self.current) {
            // Every step is done: whatever the agent says now needs no answer.
            None => return Ok(Next::Hangup),
            Some(_) if !self.begun => return Ok(Next::Continue),
            Some(step) => step.clone(),
        };
        self.heard_in_step.push(' ');
        self.heard_in_step.push_str(heard);
        self.heard_turns.push(self.agent_turns.saturating_sub(1));
        let judgement = self.judge_step(&step)?;
        if judgement.verdict == Verdict::NotMet && self.turns_in_step < step.max_turns.0 {
            if self.stop_phrases_said() {
                self.stopped_by = Some("the agent said a stop phrase".into());
                return Ok(Next::Hangup);
            }
            return Ok(Next::Again);
        }
        self.settle(&step, judgement)
    }

    /// Records the current step's verdict and moves on to the next step.
    fn settle(&mut self, step: &Step, judgement: Judgement) -> Result<Next, SimError> {
        let failed = judgement.verdict == Verdict::NotMet;
        self.results.push(StepResult {
            goal: self.text(&step.goal)?,
            verdict: judgement.verdict,
            justification: judgement.justification,
            turns: self.turns_in_step,
        });
        self.judged_steps.push(std::mem::take(&mut self.judged));
        self.current += 1;
        self.begun = false;
        self.turns_in_step = 0;
        if failed || self.current >= self.steps.len() {
            return Ok(Next::Hangup);
        }
        Ok(Next::Continue)
    }

    /// The step whose line was said cutting into the turn just heard may have been answered
    /// in that same turn (an agent that talks over the caller answers straight after what
    /// it was saying): met there, the caller goes on; not met, it waits for the agent's next
    /// turn, and the wait costs the step no attempt.
    fn answered_in_same_turn(&mut self, heard: &str) -> Result<Reply, SimError> {
        let Some(step) = self.steps.get(self.current).cloned() else {
            return Ok(Reply::Listen);
        };
        self.heard_in_step = heard.to_string();
        self.heard_turns = vec![self.agent_turns.saturating_sub(1)];
        let judgement = self.judge_step(&step)?;
        if judgement.verdict != Verdict::Met {
            return Ok(Reply::Listen);
        }
        match self.settle(&step, judgement)? {
            Next::Continue if !self.stop_phrases_said() => self.line(),
            Next::Continue => {
                self.stopped_by = Some("the agent said a stop phrase".into());
                Ok(Reply::HangUp)
            }
            Next::Hangup | Next::Again => Ok(Reply::HangUp),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_said_digit_by_digit_and_amounts_are_left_alone() {
        assert_eq!(
            spoken("My order number is 4521."),
            "My order number is four five two one."
        );
        assert_eq!(
            spoken("Call 555-0199"),
            "Call five five five-zero one nine nine"
        );
        assert_eq!(
            spoken("It costs $250 or 12 euros"),
            "It costs $250 or 12 euros"
        );
        assert_eq!(
            spoken("Pay 3.125 or 1,500 now, 100% sure"),
            "Pay 3.125 or 1,500 now, 100% sure"
        );
    }

    #[test]
    fn a_model_s_line_loses_its_label_quotes_and_stage_directions() {
        assert_eq!(
            clean_line("Caller: \"(sighs) It's order 4521.\""),
            "It's order 4521."
        );
        assert_eq!(clean_line("  Hi   there [pause] "), "Hi there");
    }
}
