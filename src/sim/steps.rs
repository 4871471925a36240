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
use crate::llm::{ChatClient, Message};
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
    llm: Option<Arc<ChatClient>>,
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
        llm: Option<Arc<ChatClient>>,
        seed: u64,
    ) -> Self {
        let mut manners = ChaCha8Rng::seed_from_u64(seed);
        // Its own stream: the noise of the same seed draws from streams below 2^33.
        manners.set_stream(1 << 40);
        let mut reflexes = ChaCha8Rng::seed_from_u64(seed);
        reflexes.set_stream(1 << 41);
        StepCaller {
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
        }
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
                if step.static_utterance.is_none() && step.audio.is_none() && step.dtmf.is_none()
                {
                    return Err(SimError::Caller(format!(
                        "test {:?} steps[{i}]: a load run's caller says scripted lines only                          (static_utterance, audio or dtmf), not an LLM's",
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
            Some(llm) => judge::ask_llm(llm, &criterion, transcript)
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

    /// Asks the LLM what the persona says next.
    fn generate(&self, step: &Step, vars: &BTreeMap<String, String>) -> Result<String, SimError> {
        let text = |t: &str| render(t, vars).map_err(SimError::Caller);
        let llm = self.llm.as_ref().ok_or_else(|| {
            SimError::Caller(format!(
                "test {:?}: a step without static_utterance or audio needs an LLM caller: set \
                 VOICESIM_LLM_BASE_URL (and VOICESIM_LLM_MODEL)",
                self.test
            ))
        })?;
        let p = &self.persona;
        let mut system = format!(
            "You are a caller on a phone call with a company's voice agent. Speak as the caller \
             only: one or two short spoken sentences, no stage directions, no quotes. \
             Language: {}. Patience: {:?}.",
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
        system.push_str(&format!("\nYour goal right now: {}", text(&step.goal)?));
        if let Some(guide) = &step.response_guide {
            system.push_str(&format!("\nHow to respond: {}", text(guide)?));
        }
        let mut messages = vec![Message::system(system)];
        for line in &self.transcript {
            messages.push(match line.speaker {
                // The model plays the caller: the agent's lines are what it hears.
                Speaker::Agent => Message::user(line.text.clone()),
                Speaker::Caller => Message::assistant(line.text.clone()),
            });
        }
        if self.transcript.is_empty() {
            messages.push(Message::user("(The call has connected. You speak first.)"));
        }
        let text = llm
            .chat(&messages)
            .map_err(|e| SimError::Caller(e.to_string()))?;
        Ok(text.trim().trim_matches('"').to_string())
    }
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
