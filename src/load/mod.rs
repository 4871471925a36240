//! `voicesim load`: the suite's calls put on the agent many at once, on a schedule (stages of
//! concurrency or an arrival rate), to see whether it still answers in time.
//!
//! A load call's caller says its scripted lines without waiting for their words: it answers the
//! moment the agent's turn ends (the ear knows), so no transcription holds a call up. The words
//! are transcribed after the call ends, in a bounded pool, for the share of calls asked for;
//! a call not transcribed has its word rules *not judged*, never passed. Each call's result is
//! written to `results.jsonl` as it is judged, each second's figures to `timeseries.jsonl` as
//! the second ends.

pub mod series;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Exp};
use tokio::sync::{mpsc, Semaphore};
use tokio::task::JoinSet;

use crate::guard;
use crate::judge::{self, Judgement, StepResult};
use crate::noise::Shelf;
use crate::record::{CallRecord, Line, Speaker};
use crate::report::folder::{self, ResultsFile};
use crate::report::{ExpectationResult, Origin, Outcome, RunResult};
use crate::sim::job::{jobs, mix, Job};
use crate::sim::run::{keep, prepare, Prepared, Target};
use crate::sim::{converse, Caller, Script, Senses, SimError, Utterance};
use crate::speech::RehearsedTts;
use crate::suite::load::Schedule;
use crate::suite::Suite;
use crate::transport::call;
use crate::transport::event::{CallEvent, CallEventKind};
use crate::transport::pacer::Metronome;
use crate::transport::recorder::Deck;
use crate::transport::stalls::StallWatch;
use series::{AbortRule, Beat, Second, Tally};

/// What to put on the agent, and what to make of it.
#[derive(Debug, Clone)]
pub struct LoadPlan {
    pub schedule: Schedule,
    pub tags: Vec<String>,
    pub seed: u64,
    /// Per-call folders go in `out/calls/`.
    pub out: PathBuf,
    /// The share of calls (0 to 1) whose words are transcribed and judged.
    pub transcribe: f64,
    /// Transcriptions at the same time.
    pub stt_workers: usize,
    pub abort_on: Vec<AbortRule>,
}

/// How a load run went.
#[derive(Debug)]
pub struct LoadOutcome {
    pub results: Vec<RunResult>,
    pub series: Vec<Second>,
    pub totals: Second,
    /// The abort rule that stopped the run, with the figure that set it off.
    pub aborted: Option<String>,
}

/// How often the scheduler looks at the clock.
const TICK: Duration = Duration::from_millis(50);

/// Runs `plan`; `live` gets one line a second.
pub async fn run_load(
    suite: Arc<Suite>,
    target: Target,
    plan: LoadPlan,
    senses: Senses,
    results: Arc<ResultsFile>,
    mut live: impl FnMut(&Second, String),
) -> LoadOutcome {
    let jobs = Arc::new(jobs(&suite, &plan.tags, Some(1), plan.seed, None));
    if jobs.is_empty() {
        // Nothing to call (the CLI refuses such a plan before it gets here).
        return LoadOutcome {
            results: Vec::new(),
            series: Vec::new(),
            totals: Second::default(),
            aborted: None,
        };
    }
    // The lines made once, at the wire rate, for every call.
    let mut senses = senses;
    let rate = target
        .protocol
        .adapter(0, Default::default(), target.rate)
        .rate();
    senses.tts = Arc::new(RehearsedTts::new(senses.tts, rate));
    let origin = Origin {
        voicesim: env!("CARGO_PKG_VERSION").into(),
        agent: folder::redact_url(&target.url),
        protocol: target.protocol.name().into(),
        seed: plan.seed,
    };
    let shared = Arc::new(Shared {
        suite,
        target,
        senses,
        origin,
        results,
        out: plan.out.clone(),
        transcribe: plan.transcribe,
        stt: Semaphore::new(plan.stt_workers.max(1)),
        active: AtomicU32::new(0),
        stop: Arc::new(AtomicBool::new(false)),
        deck: Deck::start(),
        watch: StallWatch::new(),
        metronome: Metronome::new(),
        noise: Shelf::default(),
    });
    // Every profile decoded and every line said before the first call, not beside calls up.
    let (warm, warm_jobs) = (shared.clone(), jobs.clone());
    let _ = tokio::task::spawn_blocking(move || {
        for job in warm_jobs.iter() {
            let made = prepare(
                &warm.suite,
                job,
                &warm.target,
                &warm.senses,
                "",
                None,
                &warm.noise,
            );
            let Ok(p) = made else { continue };
            for line in p.caller.script().unwrap_or_default() {
                if let Utterance::Text(text) = line {
                    let _ = p.senses.tts.synthesize(&text, &p.senses.voice);
                }
            }
        }
    })
    .await;
    let (beats, mut heard) = mpsc::unbounded_channel::<Beat>();
    let mut tally = Tally::default();
    let mut calls = JoinSet::new();
    let mut done = Vec::new();
    let mut arrivals = ChaCha8Rng::seed_from_u64(plan.seed);
    let gap = match &plan.schedule {
        Schedule::Arrival(a) => Exp::new(a.rate).ok(),
        Schedule::Stages(_) => None,
    };
    let mut next_arrival = 0.0;
    let mut started: u64 = 0;
    let mut aborted = None;
    let mut next_second = 1;
    let length = plan.schedule.seconds();
    let start = Instant::now();
    let mut ticker = tokio::time::interval(TICK);
    loop {
        ticker.tick().await;
        let t = start.elapsed().as_secs_f64();
        tally.hear(&mut heard);
        while let Some(finished) = calls.try_join_next() {
            if let Ok(result) = finished {
                done.push(result);
            }
        }
        let active = || shared.active.load(Ordering::Relaxed);
        if aborted.is_none() && t < length {
            let mut begin = |index: u64| {
                let Some(job) = jobs.get(index as usize % jobs.len()).cloned() else {
                    return;
                };
                shared.active.fetch_add(1, Ordering::Relaxed);
                let _ = beats.send(Beat::Started);
                let (shared, beats) = (shared.clone(), beats.clone());
                calls.spawn(one_call(shared, job, index, beats));
            };
            match &plan.schedule {
                Schedule::Stages(_) => {
                    while active() < plan.schedule.target_at(t) {
                        begin(started);
                        started += 1;
                    }
                }
                Schedule::Arrival(a) => {
                    while next_arrival <= t {
                        if active() < a.max {
                            begin(started);
                            started += 1;
                        } else {
                            let _ = beats.send(Beat::Refused);
                        }
                        next_arrival += gap.map_or(1.0, |g| g.sample(&mut arrivals));
                    }
                }
            }
        }
        while t >= next_second as f64 {
            tally.hear(&mut heard);
            let target = plan.schedule.target_at(next_second as f64 - 0.5);
            let row = tally.close(next_second, target, active());
            let line = tally.live_line(&row);
            live(&row, line);
            if aborted.is_none() {
                if let Some(why) = plan.abort_on.iter().find_map(|r| r.fired(&tally)) {
                    aborted = Some(why);
                    shared.stop.store(true, Ordering::Relaxed);
                }
            }
            next_second += 1;
        }
        if (t >= length || aborted.is_some()) && calls.is_empty() {
            break;
        }
    }
    tally.hear(&mut heard);
    LoadOutcome {
        results: done,
        series: tally.rows.clone(),
        totals: tally.totals.clone(),
        aborted,
    }
}

/// What every call of a load run shares.
struct Shared {
    suite: Arc<Suite>,
    target: Target,
    senses: Senses,
    origin: Origin,
    results: Arc<ResultsFile>,
    out: PathBuf,
    transcribe: f64,
    /// Transcriptions wait here for a worker.
    stt: Semaphore,
    /// Calls up now; a call is down when it hangs up, before its words are transcribed.
    active: AtomicU32,
    /// Hangs up every call (an abort rule fired).
    stop: Arc<AtomicBool>,
    /// Writes every call's recording as it runs.
    deck: Deck,
    /// Stalls of the runtime, read by each call over its span.
    watch: StallWatch,
    /// The calls' shared frame clocks.
    metronome: Metronome,
    /// The noise the calls share.
    noise: Shelf,
}

/// One call of the load, from dialing to its result in `results.jsonl`.
async fn one_call(
    shared: Arc<Shared>,
    mut job: Job,
    index: u64,
    beats: mpsc::UnboundedSender<Beat>,
) -> RunResult {
    // Call N of the load is the Nth call made: its own seed, its own folder.
    job.run = index as u32 + 1;
    job.seed = mix(job.seed, &["load", &index.to_string()]);
    let mut result = RunResult::new(
        &shared.suite.name,
        &job.test,
        &job.condition,
        job.run,
        job.seed,
    );
    result.origin = shared.origin.clone();
    let call = talk(&shared, &job, &mut result, &beats);
    let made = match guard::catch_async(call).await {
        Ok(made) => made,
        Err(panic) => {
            result = result.crashed(panic);
            None
        }
    };
    shared.active.fetch_sub(1, Ordering::Relaxed);
    let _ = beats.send(Beat::Ended);
    // What is left is written on the deck, which yields to the calls still up.
    let mut judge = None;
    if let Some((record, broke)) = made {
        let (suite, out, job_, before) = (
            shared.suite.clone(),
            shared.out.clone(),
            job.clone(),
            result.clone(),
        );
        let kept = shared
            .deck
            .run(move || {
                #[cfg(feature = "test-hooks")]
                slow_end_for_test();
                keep(&record, &mut result, &suite, &out, &job_);
                (record, result)
            })
            .await;
        match kept {
            Ok((record, kept)) => {
                result = kept;
                match broke {
                    Some(error) => result.error = Some(error),
                    None => judge = Some(record),
                }
            }
            Err(panic) => result = before.crashed(panic),
        }
    }
    if result.error.is_some() {
        let _ = beats.send(Beat::Failed);
    }
    if let Some(record) = judge {
        let judged = judge_after(&shared, &job, record, &mut result);
        if let Err(panic) = guard::catch_async(judged).await {
            result = result.crashed(panic);
        }
    }
    result.decide();
    let results = shared.results.clone();
    let written = shared
        .deck
        .run(move || {
            let written = results.append(&result);
            (result, written)
        })
        .await;
    match written {
        Ok((mut result, Err(e))) => {
            result.error.get_or_insert(format!(
                "{}: cannot write: {e}",
                shared.results.path().display()
            ));
            result.outcome = Outcome::Error;
            result
        }
        Ok((result, Ok(()))) => result,
        Err(panic) => RunResult::new(
            &shared.suite.name,
            &job.test,
            &job.condition,
            job.run,
            job.seed,
        )
        .crashed(panic),
    }
}

/// `VOICESIM_TEST_SLOW_END_MS`: what a call leaves to do when it ends takes that much longer, as
/// on a slow disk; the calls still up must not feel it.
#[cfg(feature = "test-hooks")]
fn slow_end_for_test() {
    if let Some(ms) = std::env::var("VOICESIM_TEST_SLOW_END_MS")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        std::thread::sleep(Duration::from_millis(ms));
    }
}

/// Makes the call with a caller that does not listen: its record, with the error that broke it
/// off if one did; or nothing, with the error in `result`.
async fn talk(
    shared: &Shared,
    job: &Job,
    result: &mut RunResult,
    beats: &mpsc::UnboundedSender<Beat>,
) -> Option<(CallRecord, Option<String>)> {
    let Prepared {
        adapter,
        mic,
        mut options,
        senses,
        caller,
    } = match prepare(
        &shared.suite,
        job,
        &shared.target,
        &shared.senses,
        &result.call_id,
        None,
        &shared.noise,
    ) {
        Ok(p) => p,
        Err(e) => {
            result.error = Some(e);
            return None;
        }
    };
    let mut script = match caller.script() {
        Ok(lines) => Script::new(lines, caller.speaks_first()).without_listening(),
        Err(e) => {
            result.error = Some(e.to_string());
            return None;
        }
    };
    let (tap, events) = mpsc::unbounded_channel();
    options.tap = Some(tap);
    // Calls started in the same tick would send their frames in the same millisecond.
    options.phase = call::stagger(u64::from(job.run));
    // Recorded as it happens: a call's memory does not grow with its length.
    let dir = shared.out.join(folder::call_dir(
        &job.test.name,
        &job.condition.label(),
        job.run,
    ));
    options.tape = Some((shared.deck.clone(), dir.join("call.wav")));
    options.hang_up = Some(shared.stop.clone());
    options.watch = Some(shared.watch.clone());
    options.metronome = Some(shared.metronome.clone());
    let watching = tokio::spawn(watch(events, beats.clone()));
    let conversation = converse(options, adapter, mic, &mut script, &senses, None).await;
    watching.abort();
    match conversation {
        Ok(record) => Some((record, None)),
        Err(SimError::Broke { error, record }) => Some((*record, Some(error.to_string()))),
        Err(e) => {
            result.error = Some(e.to_string());
            None
        }
    }
}

/// Turns a call's events into beats as they happen: connected, and each answer's latency.
async fn watch(mut events: mpsc::UnboundedReceiver<CallEvent>, beats: mpsc::UnboundedSender<Beat>) {
    let mut caller_ended = None;
    while let Some(event) = events.recv().await {
        match event.kind {
            CallEventKind::Connected => {
                let _ = beats.send(Beat::Connected);
            }
            CallEventKind::Mic {
                detail: crate::noise::MicEvent::SpeechEnded { at_ms },
            } => caller_ended = Some(at_ms),
            CallEventKind::KeyPressed { .. } => caller_ended = Some(event.at_ms),
            CallEventKind::AgentStarted => {
                let latency = caller_ended.take().map(|end| event.at_ms - end);
                let _ = beats.send(Beat::Answered(latency));
            }
            _ => {}
        }
    }
}

/// Whether call `seed` is in the transcribed share: the same calls for the same seed.
fn in_sample(seed: u64, share: f64) -> bool {
    (seed % 10_000) as f64 / 10_000.0 < share
}

/// After the call: its agent turns transcribed (if in the sample), then its steps and
/// expectations judged on them.
async fn judge_after(shared: &Shared, job: &Job, mut record: CallRecord, result: &mut RunResult) {
    let heard = if in_sample(job.seed, shared.transcribe) {
        match transcribe_turns(shared, &record).await {
            Ok(lines) => Some(lines),
            Err(e) => {
                result.error = Some(e);
                return;
            }
        }
    } else {
        None
    };
    let not_judged = || {
        Judgement::not_judged(format!(
            "not transcribed: --transcribe {}% left this call out",
            shared.transcribe * 100.0
        ))
    };
    if let Some(lines) = &heard {
        record.transcript.extend(lines.iter().cloned());
        record
            .transcript
            .sort_by(|a, b| a.at_ms.total_cmp(&b.at_ms));
    }
    result.transcript = record.transcript.clone();
    // Step k is answered by what the agent said between the caller's line k and line k+1.
    let said: Vec<f64> = record
        .transcript
        .iter()
        .filter(|l| l.speaker == Speaker::Caller)
        .map(|l| l.at_ms)
        .collect();
    for (k, step) in job.test.steps.iter().enumerate() {
        let judgement = match (&heard, &step.check) {
            (_, None) => Judgement::not_judged(
                "a load run judges steps by their check rules only, not by an LLM",
            ),
            (None, Some(rule)) if rule.reads_words() => not_judged(),
            (lines, Some(rule)) => {
                let (from, to) = (
                    said.get(k).copied().unwrap_or(f64::INFINITY),
                    said.get(k + 1).copied().unwrap_or(f64::INFINITY),
                );
                let answer: Vec<&str> = lines
                    .iter()
                    .flatten()
                    .filter(|l| (from..to).contains(&l.at_ms))
                    .map(|l| l.text.as_str())
                    .collect();
                judge::check(rule, &answer.join(" "), Some(&result.metrics))
            }
        };
        result.steps.push(StepResult {
            goal: step.goal.clone(),
            verdict: judgement.verdict,
            justification: judgement.justification,
            turns: u32::from(k < said.len()),
        });
    }
    let agent_text = record.agent_text();
    for expectation in &job.test.expectations {
        let judgement = match &expectation.check {
            Some(rule) if heard.is_none() && rule.reads_words() => not_judged(),
            Some(rule) => judge::check(rule, &agent_text, Some(&result.metrics)),
            None => Judgement::not_judged(
                "a load run judges expectations by their check rules only, not by an LLM",
            ),
        };
        result.expectations.push(ExpectationResult {
            name: expectation.name.clone(),
            judgement,
        });
    }
    // The call's own record, now with the agent's words.
    if let Some(dir) = result.recording.clone().filter(|_| heard.is_some()) {
        let _ = shared.deck.run(move || record.save(&dir)).await;
    }
}

/// Each agent turn of the call, cut from its recording and transcribed by one of the pool's
/// workers.
async fn transcribe_turns(shared: &Shared, record: &CallRecord) -> Result<Vec<Line>, String> {
    let _worker = shared
        .stt
        .acquire()
        .await
        .map_err(|e| format!("the transcription pool closed: {e}"))?;
    let mut lines = Vec::new();
    for turn in &record.turns {
        let clip = record
            .outcome
            .agent_between(
                turn.agent_started_ms,
                turn.agent_started_ms + turn.agent_talk_ms,
            )
            .map_err(|e| e.to_string())?;
        if clip.is_empty() {
            continue;
        }
        let stt = shared.senses.stt.clone();
        let text = guard::blocking(move || stt.transcribe(&clip))
            .await
            .map_err(|panic| panic.to_string())?
            .map_err(|e| e.to_string())?
            .text;
        lines.push(Line {
            speaker: Speaker::Agent,
            text: text.trim().to_string(),
            at_ms: turn.agent_started_ms,
            heard: None,
        });
    }
    Ok(lines)
}

/// Makes room for `peak` calls at once: raises the soft limit on open files as far as needed
/// (each call holds a socket, and a file while it saves) and checks the memory their
/// recordings take (`call_bytes` each). The error says what does not fit and what would.
pub fn make_room(peak: u32, call_bytes: u64) -> Result<(), String> {
    let need = peak as u64 * 2 + 64;
    let may = rlimit::increase_nofile_limit(need)
        .map_err(|e| format!("cannot read or raise the limit on open files: {e}"))?;
    if may < need {
        return Err(format!(
            "the plan holds up to {peak} calls at once, which need about {need} open files, but \
             this process may open {may} (the hard limit, `ulimit -Hn`): raise it, or keep the \
             peak at {} calls or fewer",
            may.saturating_sub(64) / 2
        ));
    }
    if let Some(free) = available_memory() {
        let want = peak as u64 * call_bytes;
        if want > free / 10 * 8 {
            return Err(format!(
                "the plan holds up to {peak} calls at once; they need about {} MB but {} MB \
                 of memory is available: keep the peak at {} calls or fewer, or shorten the \
                 calls (stop.max_seconds)",
                want >> 20,
                free >> 20,
                free / 10 * 8 / call_bytes.max(1)
            ));
        }
    }
    Ok(())
}

/// What a load call holds, however long: recorded to disk as it runs, it keeps its caller's
/// speech and the agent turn playing.
pub const TAPED_CALL_BYTES: u64 = 2 << 20;

/// The memory one call of `run` may hold: both channels of its recording
/// at the wire rate (`rate`, 8 kHz at least) for the longest call the stop rules allow, and
/// room for its speech.
pub fn call_bytes(suite: &Suite, tags: &[String], rate: u32) -> u64 {
    let longest = suite
        .selected(tags)
        .into_iter()
        .map(|t| t.stop.as_ref().unwrap_or(&suite.stop).max_seconds as u64)
        .max()
        .unwrap_or(0);
    longest * rate.max(8_000) as u64 * 4 * 2 + (2 << 20)
}

/// MemAvailable, where the system says (Linux).
fn available_memory() -> Option<u64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = info.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}
