//! One simulated call, end to end: a [`Caller`] decides what to say, a [`Tts`] says it into
//! the noisy microphone, the call streams it to the agent in real time, each agent turn the
//! caller hears is transcribed and handed back to the caller for its next line.

pub mod adaptive;
pub mod gate;
mod hearing;
mod inbox;
pub(crate) mod job;
pub mod run;
mod script;
mod steps;

pub use script::{Live, Script};
pub use steps::StepCaller;

use std::any::Any;
use std::sync::Arc;
use std::time::Instant;

use tokio::sync::mpsc;

use crate::audio::Clip;
use crate::guard::{self, Panic};
use crate::noise::MicTimeline;
use crate::record::{CallRecord, Line, Reaction, Speaker};
use crate::speech::{SpeechError, Stt, Tts, Voice};
use crate::transport::call::{self, Answer, CallError, CallOptions, CallerCommand};
use crate::transport::event::{CallEvent, CallEventKind};
use crate::transport::turns;
use crate::transport::Adapter;
use hearing::{Heard, Hearing, WholeTurns};
use inbox::Inbox;

/// Something the caller says: text to synthesize, or a recording to play.
#[derive(Debug, Clone, PartialEq)]
pub enum Utterance {
    Text(String),
    Audio {
        clip: Clip,
        text: String,
    },
    /// Keys pressed on the phone's keypad (0-9, *, #, A-D).
    Keys(String),
}

impl Utterance {
    /// What was said, for the transcript (a recording carries its own reference text).
    pub fn text(&self) -> &str {
        match self {
            Utterance::Text(t) => t,
            Utterance::Audio { text, .. } => text,
            Utterance::Keys(keys) => keys,
        }
    }
}

/// What the caller does after an agent turn.
#[derive(Debug, Clone)]
pub enum Reply {
    Say(Utterance),
    /// Say nothing and wait for the agent: what the caller meant to say it already said,
    /// cutting into the turn.
    Listen,
    HangUp,
}

impl Reply {
    /// What is said, if anything.
    pub fn utterance(&self) -> Option<&Utterance> {
        match self {
            Reply::Say(u) => Some(u),
            Reply::Listen | Reply::HangUp => None,
        }
    }
}

/// The simulated caller's mind.
pub trait Caller: Send {
    /// What to do having just heard the agent say `heard` (all of its turn; `None` before the
    /// agent has said anything, for a caller who speaks first).
    fn next(&mut self, heard: Option<&str>) -> Result<Reply, SimError>;
    /// The call ended while the agent said `heard`: judge it, there is nothing to answer.
    fn last_words(&mut self, _heard: &str) -> Result<(), SimError> {
        Ok(())
    }
    /// Called as each agent turn starts: to cut into it, how far into it (ms) and what to say.
    /// The line is decided now, before the moment, so the voice lands on time whatever the
    /// machine's load; the turn is still judged, whole, when it ends.
    fn cut_in(&mut self) -> Result<Option<(f64, Utterance)>, SimError> {
        Ok(None)
    }
    /// Whether the caller speaks before the agent does.
    fn speaks_first(&self) -> bool {
        false
    }
    /// Whether it needs the agent's words to go on. A caller that does not (a load run's
    /// script) answers the moment a turn ends, and the call's words are transcribed afterwards.
    fn listens(&self) -> bool {
        true
    }
    /// How soon after the agent's voice stops to start the answer to it, ms (drawn for each
    /// turn); `None`: as soon as the answer is ready.
    fn reaction_ms(&mut self) -> Option<f64> {
        None
    }
    /// Whether it hears the agent's turns as they play and works out its answer in the agent's
    /// pause, to answer on its reaction time (it can go back on an answer: see
    /// [`Caller::snapshot`]). Others hear each turn once it has ended.
    fn answers_ahead(&self) -> bool {
        false
    }
    /// The caller's mind as it is now, to go back to if an answer worked out in the agent's
    /// pause is dropped because the agent spoke on. `None`: it answers only turns that have
    /// ended (after the end gap).
    fn snapshot(&self) -> Option<Box<dyn std::any::Any + Send>> {
        None
    }
    /// Back to a [`Caller::snapshot`].
    fn restore(&mut self, _snapshot: Box<dyn std::any::Any + Send>) {}
    /// The line it will most likely say next, to make its speech ready ahead (a scripted
    /// line; `None` where it cannot know).
    fn upcoming(&self) -> Option<Utterance> {
        None
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error(transparent)]
    Connect(#[from] CallError),
    #[error(transparent)]
    Speech(#[from] SpeechError),
    #[error("{0}")]
    Caller(String),
    /// A bug: something inside the call panicked.
    #[error("voicesim failed inside the call (a bug; please report it): {0}")]
    Panic(Panic),
    /// The call was made, then the caller's side failed: why, and the call up to that moment.
    #[error("{error}")]
    Broke {
        error: Box<SimError>,
        record: Box<CallRecord>,
    },
}

impl From<Panic> for SimError {
    fn from(panic: Panic) -> Self {
        SimError::Panic(panic)
    }
}

/// The mouth and ears of the simulated caller.
#[derive(Clone)]
pub struct Senses {
    pub tts: Arc<dyn Tts>,
    pub voice: Voice,
    pub stt: Arc<dyn Stt>,
}

/// Runs one call to its end. `lines` receives each transcript line as it happens (for a live
/// console); it may be dropped.
pub async fn converse(
    options: CallOptions,
    adapter: Box<dyn Adapter>,
    mic: MicTimeline,
    caller: &mut dyn Caller,
    senses: &Senses,
    lines: Option<mpsc::UnboundedSender<Line>>,
) -> Result<CallRecord, SimError> {
    let (cmd_tx, cmd_rx) = mpsc::unbounded_channel();
    let (ev_tx, ev_rx) = mpsc::unbounded_channel();
    let call = tokio::spawn(guard::catch_async(call::run(
        options, adapter, mic, cmd_rx, ev_tx,
    )));
    let mut side = CallerSide {
        commands: cmd_tx,
        lines,
        transcript: Vec::new(),
        failure: None,
        hung_up: false,
        reactions: Vec::new(),
        answering: None,
        answered_until: None,
        held: None,
        mouth: Mouth::default(),
    };
    let mut events = Vec::new();
    if caller.speaks_first() {
        let first = next_line(caller, None, senses, &mut side.mouth).await;
        side.answer(first.map(|(spoken, _)| spoken), 0.0);
    }
    // Agent lines are placed where their turn started to play, so a report seeks to them.
    let mut turn_started_ms = 0.0;
    // What was heard of the turn up to its last pause, where that answer was not sent ahead.
    let mut heard_in_pause: Option<(f64, Heard)> = None;
    let mut hearing = Hearing::default();
    let mut wholes = WholeTurns::default();
    let mut inbox = Inbox::new(ev_rx);
    while let Some(mut event) = inbox.next().await {
        let at_ms = event.at_ms;
        let ended = match &mut event.kind {
            CallEventKind::AgentSpeaking { audio } => {
                if caller.answers_ahead() && !side.hung_up && !inbox.overtaken() {
                    hearing.partly(senses, turn_started_ms, take(audio)).await;
                }
                // Progress, not something that happened: not in the record.
                continue;
            }
            CallEventKind::AgentStarted => {
                turn_started_ms = at_ms;
                if !side.hung_up {
                    let cut = prepare_cut_in(caller, senses, &mut side.mouth).await;
                    side.cut_in(cut, at_ms);
                    // While the agent talks, the caller's next line is made ready to say.
                    side.mouth.prepare(caller.upcoming(), senses);
                }
                None
            }
            CallEventKind::AgentQuiet {
                spoke_until_ms,
                audio,
            } => {
                let (until, audio) = (*spoke_until_ms, take(audio));
                // The agent spoke on after a decision held for its turn's end: undone.
                if let Some(held) = side.held.take() {
                    caller.restore(held.snapshot);
                }
                if !side.hung_up
                    && caller.answers_ahead()
                    && side.answering.is_none()
                    && !inbox.overtaken()
                {
                    let pause = Pause {
                        until,
                        known_ms: at_ms,
                        turn_started_ms,
                    };
                    let heard = hearing.whole(senses, turn_started_ms, audio).await;
                    if let Some(heard) = side.answer_ahead(caller, senses, heard, pause).await {
                        heard_in_pause = Some((until, heard));
                    }
                }
                None
            }
            CallEventKind::CallerAnswered { .. } => {
                side.answered(at_ms);
                None
            }
            CallEventKind::CallerWithdrew => side.withdrawn(caller),
            // The turn's audio is heard once, here; the record keeps the event without it.
            CallEventKind::AgentTurnEnded {
                audio,
                cut_off,
                spoke_until_ms,
            } => {
                if caller.listens() {
                    wholes.ended(&hearing, turn_started_ms, audio);
                }
                let this_turn = |until: f64| same_end(until, *spoke_until_ms);
                let held = match side.held.take() {
                    // The turn ended where the caller thought it would: its decision stands.
                    Some(held) if this_turn(held.pause.until) && !*cut_off => Some(held),
                    Some(held) => {
                        caller.restore(held.snapshot);
                        None
                    }
                    None => None,
                };
                if let Some(held) = held {
                    side.record(line(Speaker::Agent, &held.heard.text, turn_started_ms));
                    side.answer(Ok(held.spoken), at_ms);
                    events.push(event);
                    continue;
                }
                let ahead = side
                    .answering
                    .as_mut()
                    .filter(|a| a.snapshot.is_some() && this_turn(a.pause.until));
                match ahead {
                    // Answered in its pause, and the answer said: heard and judged already.
                    _ if side.answered_until.is_some_and(this_turn) => None,
                    // Answered in the pause: the answer stands, unless the agent speaks on
                    // before it is said; then the turn is answered as any other.
                    Some(answer) if !*cut_off => {
                        answer.turn_ended = true;
                        None
                    }
                    _ => Some(Ended {
                        audio: take(audio),
                        cut_off: *cut_off,
                        pause: Pause {
                            until: *spoke_until_ms,
                            known_ms: at_ms,
                            turn_started_ms,
                        },
                        heard: None,
                    }),
                }
            }
            _ => None,
        };
        events.push(event);
        let Some(mut ended) = ended else {
            continue;
        };
        if let Some(answer) = side.answering.take_if(|a| a.snapshot.is_some()) {
            // The call ended before the answer worked out in the pause was said (or the agent
            // spoke on and the call loop is about to drop it).
            if let Some(snapshot) = answer.snapshot {
                caller.restore(snapshot);
            }
            ended.heard = answer
                .heard
                .filter(|_| same_end(answer.pause.until, ended.pause.until));
        }
        if ended.heard.is_none() {
            ended.heard = heard_in_pause
                .take()
                .filter(|(until, _)| same_end(*until, ended.pause.until))
                .map(|(_, heard)| heard);
        }
        side.turn_ended(caller, senses, &mut hearing, &mut wholes, ended)
            .await;
    }
    let outcome = call
        .await
        .map_err(|e| SimError::Caller(format!("the call task stopped: {e}")))???;
    let turns = turns::turns(&events);
    let hearing_drift = wholes.settle(senses, &mut side.transcript).await;
    place_caller_lines(&mut side.transcript, &events);
    let record = CallRecord {
        hearing_drift,
        faults: turns::faults(&outcome.ended, &turns),
        ended: outcome.ended.clone(),
        duration_ms: outcome.duration_ms,
        transcript: side.transcript,
        reactions: side.reactions,
        turns,
        events,
        outcome,
    };
    match side.failure {
        None => Ok(record),
        Some(error) => Err(SimError::Broke {
            error: Box::new(error),
            record: Box::new(record),
        }),
    }
}

/// A caller line is written when the caller decides to say it; it is placed where the
/// microphone started to speak it, the next speech start not yet taken.
fn place_caller_lines(transcript: &mut [Line], events: &[CallEvent]) {
    let mut starts = events.iter().filter_map(|e| match &e.kind {
        CallEventKind::Mic {
            detail: crate::noise::MicEvent::SpeechStarted { at_ms },
        } => Some(*at_ms),
        _ => None,
    });
    // Keys sent as messages have no speech start to be placed at.
    for line in transcript
        .iter_mut()
        .filter(|l| l.speaker == Speaker::Caller && !l.text.starts_with("[keys "))
    {
        if let Some(start) = starts.by_ref().find(|s| *s + 1.0 >= line.at_ms) {
            line.at_ms = start;
        }
    }
}

/// The caller's half of the conversation loop: what it said, and whether it is still on.
struct CallerSide {
    commands: mpsc::UnboundedSender<CallerCommand>,
    lines: Option<mpsc::UnboundedSender<Line>>,
    transcript: Vec<Line>,
    failure: Option<SimError>,
    /// Once the caller has hung up (or failed), turns still in flight are heard and recorded
    /// but never answered: an agent may well go on talking while the hangup reaches it.
    hung_up: bool,
    reactions: Vec<Reaction>,
    /// The answer sent to the call and not yet begun.
    answering: Option<Answering>,
    /// Where the last turn answered in its pause stopped.
    answered_until: Option<f64>,
    /// What the caller decided in the agent's pause other than to speak.
    held: Option<Held>,
    mouth: Mouth,
}

/// A decision made in the agent's pause that is not a line (to hang up, press keys, listen
/// on): it waits for the turn's end.
struct Held {
    pause: Pause,
    snapshot: Box<dyn Any + Send>,
    spoken: Spoken,
    heard: Heard,
}

/// Where an agent turn stopped, as the caller knows it.
#[derive(Debug, Clone, Copy)]
struct Pause {
    /// When the agent's voice stops (call time).
    until: f64,
    /// When the caller knew it would.
    known_ms: f64,
    turn_started_ms: f64,
}

/// Whether two ends of the agent's voice are the same one: nothing played between them.
fn same_end(a_ms: f64, b_ms: f64) -> bool {
    (a_ms - b_ms).abs() < 1.0
}

/// An agent turn over, to be heard and answered.
struct Ended {
    audio: Clip,
    cut_off: bool,
    pause: Pause,
    /// Heard already, in its pause.
    heard: Option<Heard>,
}

/// An answer sent to the call to be said at its moment, not yet begun.
struct Answering {
    pause: Pause,
    /// Of an answer worked out in the pause: the caller's mind before it, what it heard and
    /// the line (recorded once the answer is said).
    snapshot: Option<Box<dyn Any + Send>>,
    heard: Option<Heard>,
    line: Option<String>,
    reaction: Reaction,
    /// The turn has ended while the answer waited.
    turn_ended: bool,
}

impl CallerSide {
    /// Sends a prepared cut-in into the turn that started at `turn_started_ms`.
    fn cut_in(
        &mut self,
        cut: Result<Option<(f64, Utterance, Clip)>, SimError>,
        turn_started_ms: f64,
    ) {
        match cut {
            Ok(Some((after_ms, utterance, clip))) => {
                let at_ms = turn_started_ms + after_ms;
                self.record(line(Speaker::Caller, utterance.text(), at_ms));
                self.command(CallerCommand::BargeIn {
                    clip,
                    after_ms,
                    turn_started_ms: Some(turn_started_ms),
                });
            }
            Ok(None) => {}
            Err(e) => self.answer(Err(e), turn_started_ms),
        }
    }

    /// Works out the answer to an agent turn that may be over (its audio `audio` ends at
    /// `pause.until`) and sends it for its moment; returns what was heard where no answer
    /// went (the caller cannot go back on a line, or does not answer this way).
    async fn answer_ahead(
        &mut self,
        caller: &mut dyn Caller,
        senses: &Senses,
        heard: Result<Heard, SimError>,
        pause: Pause,
    ) -> Option<Heard> {
        // A failure to hear is met again, and told, when the turn ends.
        let heard = heard.ok()?;
        let Some(snapshot) = caller.snapshot() else {
            return Some(heard);
        };
        let Some(target) = caller.reaction_ms() else {
            caller.restore(snapshot);
            return Some(heard);
        };
        let (clip, line, effort) =
            match next_line(caller, Some(&heard.text), senses, &mut self.mouth).await {
                Ok((Spoken::Say(utterance, clip), effort)) => {
                    (clip, utterance.text().to_string(), effort)
                }
                // Hanging up, keys, listening on: nothing a person does the moment the other side
                // pauses. The decision waits for the turn's end, and stands if nothing more came.
                Ok((spoken, _)) => {
                    self.held = Some(Held {
                        pause,
                        snapshot,
                        spoken,
                        heard: heard.clone(),
                    });
                    return None;
                }
                // Failed: tried again, and told, when the turn ends.
                Err(_) => {
                    caller.restore(snapshot);
                    return Some(heard);
                }
            };
        self.command(CallerCommand::Answer(Answer {
            clip,
            at_ms: pause.until + target,
            unless_heard_after: Some(pause.until),
        }));
        self.answering = Some(Answering {
            pause,
            snapshot: Some(snapshot),
            reaction: reaction(pause, Some(target), &heard, effort, true),
            heard: Some(heard),
            line: Some(line),
            turn_ended: false,
        });
        None
    }

    /// The answer waiting began to be said at `at_ms`.
    fn answered(&mut self, at_ms: f64) {
        let Some(answer) = self.answering.take() else {
            return;
        };
        if let Some(heard) = &answer.heard {
            self.record(line(
                Speaker::Agent,
                &heard.text,
                answer.pause.turn_started_ms,
            ));
            self.answered_until = Some(answer.pause.until);
        }
        if let Some(text) = &answer.line {
            self.record(line(Speaker::Caller, text, at_ms));
        }
        let mut reaction = answer.reaction;
        reaction.reaction_ms = at_ms - answer.pause.until;
        reaction.late_ms = reaction
            .target_ms
            .map_or(0.0, |t| (reaction.reaction_ms - t).max(0.0));
        self.reactions.push(reaction);
    }

    /// The agent spoke on before the answer worked out in its pause was said: the caller goes
    /// back to before it; if the turn had ended meanwhile, it is answered now.
    fn withdrawn(&mut self, caller: &mut dyn Caller) -> Option<Ended> {
        let answer = self.answering.take_if(|a| a.snapshot.is_some())?;
        caller.restore(answer.snapshot?);
        answer.turn_ended.then(|| Ended {
            audio: Clip::new(Vec::new(), 8_000),
            cut_off: false,
            pause: answer.pause,
            heard: answer.heard,
        })
    }

    /// Hears an agent turn that is over and answers it at the caller's reaction time.
    async fn turn_ended(
        &mut self,
        caller: &mut dyn Caller,
        senses: &Senses,
        hearing: &mut Hearing,
        wholes: &mut WholeTurns,
        ended: Ended,
    ) {
        let Ended {
            audio,
            cut_off,
            pause,
            heard,
        } = ended;
        if !caller.listens() {
            if !self.hung_up && !cut_off {
                let next = next_line(caller, None, senses, &mut self.mouth).await;
                self.answer(next.map(|(spoken, _)| spoken), pause.known_ms);
            }
            return;
        }
        let heard = match heard {
            Some(heard) => Ok(heard),
            // Heard a part at a time as it played: only its last words are left.
            None if hearing.has_parts(pause.turn_started_ms) => {
                hearing.whole(senses, pause.turn_started_ms, audio).await
            }
            // Heard whole, once, for the caller and the record alike.
            None => match wholes.wait(senses, pause.turn_started_ms).await {
                Some(heard) => heard,
                None => hearing.whole(senses, pause.turn_started_ms, audio).await,
            },
        };
        let heard = match heard {
            Ok(heard) => heard,
            Err(e) => return self.answer(Err(e), pause.known_ms),
        };
        self.record(line(Speaker::Agent, &heard.text, pause.turn_started_ms));
        if self.hung_up {
            return;
        }
        if cut_off {
            // The call ended with this turn: judge it, nobody to answer.
            let judged = think(|| caller.last_words(&heard.text)).map(|()| Spoken::HangUp);
            return self.answer(judged, pause.known_ms);
        }
        let target = caller.reaction_ms();
        match next_line(caller, Some(&heard.text), senses, &mut self.mouth).await {
            Ok((Spoken::Say(utterance, clip), effort)) => {
                self.record(line(Speaker::Caller, utterance.text(), pause.known_ms));
                self.command(CallerCommand::Answer(Answer {
                    clip,
                    at_ms: pause.until + target.unwrap_or(0.0),
                    unless_heard_after: None,
                }));
                self.answering = Some(Answering {
                    pause,
                    snapshot: None,
                    reaction: reaction(pause, target, &heard, effort, false),
                    heard: None,
                    line: None,
                    turn_ended: true,
                });
            }
            other => self.answer(other.map(|(spoken, _)| spoken), pause.known_ms),
        }
    }

    fn command(&self, command: CallerCommand) {
        // The call task gone means the call is over; its outcome says why.
        let _ = self.commands.send(command);
    }

    fn record(&mut self, line: Line) {
        if let Some(tx) = &self.lines {
            let _ = tx.send(line.clone());
        }
        self.transcript.push(line);
    }

    /// Says the caller's next line, or hangs up when it has none or failed to find one.
    fn answer(&mut self, next: Result<Spoken, SimError>, at_ms: f64) {
        match next {
            Ok(Spoken::Say(utterance, clip)) => {
                self.record(line(Speaker::Caller, utterance.text(), at_ms));
                self.command(CallerCommand::Say(clip));
            }
            Ok(Spoken::Press(keys)) => {
                self.record(line(Speaker::Caller, &format!("[keys {keys}]"), at_ms));
                for digit in keys.chars() {
                    self.command(CallerCommand::Dtmf(digit));
                }
            }
            Ok(Spoken::Listen) => {}
            Ok(Spoken::HangUp) => {
                self.hung_up = true;
                self.command(CallerCommand::Hangup);
            }
            Err(e) => {
                self.hung_up = true;
                self.failure.get_or_insert(e);
                self.command(CallerCommand::Hangup);
            }
        }
    }
}

/// A reaction's parts before it is said.
fn reaction(
    pause: Pause,
    target: Option<f64>,
    heard: &Heard,
    effort: Effort,
    ahead: bool,
) -> Reaction {
    Reaction {
        agent_stopped_ms: pause.until,
        target_ms: target,
        end_of_turn_ms: pause.known_ms - pause.until,
        stt_queue_ms: heard.queued_ms,
        stt_ms: heard.stt_ms,
        think_ms: effort.think_ms,
        tts_ms: effort.tts_ms,
        ahead,
        ..Reaction::default()
    }
}

fn line(speaker: Speaker, text: &str, at_ms: f64) -> Line {
    Line {
        speaker,
        text: text.trim().to_string(),
        at_ms,
        heard: None,
    }
}

/// What the caller does next, with the audio of what it says.
enum Spoken {
    Say(Utterance, Clip),
    Press(String),
    Listen,
    HangUp,
}

/// Runs the caller's mind; it may ask an LLM, a blocking HTTP call, kept off the async workers
/// where the runtime allows it.
fn think<T>(f: impl FnOnce() -> Result<T, SimError>) -> Result<T, SimError> {
    let multi = tokio::runtime::Handle::current().runtime_flavor()
        == tokio::runtime::RuntimeFlavor::MultiThread;
    if multi {
        tokio::task::block_in_place(|| guard::catch(f))?
    } else {
        guard::catch(f)?
    }
}

/// Wall-clock time spent deciding a line and synthesizing it, ms.
#[derive(Debug, Clone, Copy, Default)]
struct Effort {
    think_ms: f64,
    tts_ms: f64,
}

pub(super) fn ms_since(start: Instant) -> f64 {
    start.elapsed().as_secs_f64() * 1000.0
}

/// The caller's next line and its audio, with the time each took.
async fn next_line(
    caller: &mut dyn Caller,
    heard: Option<&str>,
    senses: &Senses,
    mouth: &mut Mouth,
) -> Result<(Spoken, Effort), SimError> {
    let start = Instant::now();
    let reply = think(|| caller.next(heard))?;
    let mut effort = Effort {
        think_ms: ms_since(start),
        tts_ms: 0.0,
    };
    let spoken = match reply {
        Reply::Say(Utterance::Keys(keys)) => Spoken::Press(keys),
        Reply::Say(utterance) => {
            let start = Instant::now();
            let clip = mouth.speak(&utterance, senses).await?;
            effort.tts_ms = ms_since(start);
            Spoken::Say(utterance, clip)
        }
        Reply::Listen => Spoken::Listen,
        Reply::HangUp => Spoken::HangUp,
    };
    Ok((spoken, effort))
}

/// Whether the caller cuts into the turn that just started: when, what, and its audio, all
/// ready before the moment comes.
async fn prepare_cut_in(
    caller: &mut dyn Caller,
    senses: &Senses,
    mouth: &mut Mouth,
) -> Result<Option<(f64, Utterance, Clip)>, SimError> {
    let Some((after_ms, utterance)) = think(|| caller.cut_in())? else {
        return Ok(None);
    };
    let clip = mouth.speak(&utterance, senses).await?;
    Ok(Some((after_ms, utterance, clip)))
}

/// Speech made ahead: the scripted line the caller will say next is synthesized while the
/// agent talks, so an answer does not wait for TTS.
#[derive(Default)]
struct Mouth {
    ready: std::collections::HashMap<String, tokio::task::JoinHandle<Result<Clip, SimError>>>,
}

impl Mouth {
    /// Starts making `line` ready to say, if it is text not already under way.
    fn prepare(&mut self, line: Option<Utterance>, senses: &Senses) {
        let Some(Utterance::Text(text)) = line else {
            return;
        };
        if self.ready.contains_key(&text) {
            return;
        }
        let (utterance, senses_) = (Utterance::Text(text.clone()), senses.clone());
        let making = tokio::spawn(async move { speak(&utterance, &senses_).await });
        self.ready.insert(text, making);
    }

    /// The audio of `utterance`: made ahead if it was, else now.
    async fn speak(&mut self, utterance: &Utterance, senses: &Senses) -> Result<Clip, SimError> {
        if let Utterance::Text(text) = utterance {
            if let Some(making) = self.ready.remove(text) {
                // A failure made ahead is tried again now, and told if it fails again.
                if let Ok(Ok(clip)) = making.await {
                    return Ok(clip);
                }
            }
        }
        speak(utterance, senses).await
    }
}

/// The audio of an utterance: a recording as it is, text through the caller's TTS.
async fn speak(utterance: &Utterance, senses: &Senses) -> Result<Clip, SimError> {
    let clip = match utterance {
        Utterance::Audio { clip, .. } => clip.clone(),
        // Keys are pressed, not spoken (see `Spoken::Press`).
        Utterance::Keys(_) => Clip::new(Vec::new(), 16_000),
        Utterance::Text(text) => {
            let (tts, voice, text) = (senses.tts.clone(), senses.voice.clone(), text.clone());
            guard::blocking(move || tts.synthesize(&text, &voice)).await??
        }
    };
    // Engines pad speech with silence; the caller's turn ends when the voice does.
    Ok(clip.trim_silence())
}

fn take(audio: &mut Clip) -> Clip {
    std::mem::replace(audio, Clip::new(Vec::new(), audio.rate))
}
