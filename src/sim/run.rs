//! A whole run: every selected test × noise condition × run, as real calls, a few at a time.
//! Each result is judged and appended to `results.jsonl` the moment its call ends.

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use tokio::sync::mpsc;

use super::adaptive::{self, Staircases};
use super::gate::Gate;
use super::job::{jobs, Job};
use super::{converse, Senses, SimError, StepCaller};
use crate::guard;
use crate::judge::{self, kpi, Judgement, Metrics};
use crate::llm::Chat;
use crate::noise::{MicTimeline, Shelf};
use crate::record::CallRecord;
use crate::report::folder::{self, ResultsFile, Shard};
use crate::report::{ExpectationResult, Origin, Outcome, RunResult, Trial};
use crate::suite::Suite;
use crate::transport::call::CallOptions;
use crate::transport::pacer::Metronome;
use crate::transport::stalls::StallWatch;
use crate::transport::Protocol;

/// The agent under test.
#[derive(Debug, Clone)]
pub struct Target {
    pub url: String,
    pub protocol: Protocol,
    /// Wire rate for raw PCM.
    pub rate: u32,
    pub headers: Vec<(String, String)>,
    pub fast: bool,
}

/// What to run and where to put it.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Overrides every test's runs.
    pub runs: Option<u32>,
    /// How many calls go at once.
    pub parallel: Gate,
    /// Watches the runtime for stalls while the run's calls go.
    pub watch: StallWatch,
    /// The frame clocks the run's calls share.
    pub metronome: Metronome,
    /// The noise the run's calls share.
    pub noise: Shelf,
    pub tags: Vec<String>,
    pub seed: u64,
    /// Per-call folders go in `out/calls/`.
    pub out: PathBuf,
    /// Calls already made (test, condition label, run): a resumed run skips them.
    pub done: HashSet<(String, String, u32)>,
    /// Only this slice of the calls.
    pub shard: Option<Shard>,
    /// How the staircases of `snr: adaptive` profiles go.
    pub staircases: Staircases,
    /// Staircase trials already made: a resumed run replays them and goes on from there.
    pub trials_done: Vec<RunResult>,
}

/// Number of calls of the tests carrying `tags` (all when empty), of `shard` when given; `runs`
/// overrides the suite's.
pub fn count(suite: &Suite, tags: &[String], runs: Option<u32>, shard: Option<Shard>) -> usize {
    jobs(suite, tags, runs, 0, shard).len()
}

/// The most calls the staircases of the tests carrying `tags` make, of `shard` when given.
pub fn most_trials(
    suite: &Suite,
    tags: &[String],
    staircases: &Staircases,
    shard: Option<Shard>,
) -> usize {
    adaptive::groups(suite, tags, shard).len() * staircases.budget as usize
}

/// Runs the plan; each result goes to `results` and `done` as its call ends.
pub async fn run_suite(
    suite: Arc<Suite>,
    target: Target,
    plan: Plan,
    senses: Senses,
    llm: Option<Arc<dyn Chat>>,
    results: Arc<ResultsFile>,
    done: mpsc::UnboundedSender<RunResult>,
) -> Vec<RunResult> {
    let gate = plan.parallel.clone();
    let origin = Origin {
        voicesim: env!("CARGO_PKG_VERSION").into(),
        agent: folder::redact_url(&target.url),
        protocol: target.protocol.name().into(),
        seed: plan.seed,
    };
    let fixed = jobs(&suite, &plan.tags, plan.runs, plan.seed, plan.shard)
        .into_iter()
        .filter(|job| {
            !plan
                .done
                .contains(&(job.test.name.clone(), job.condition.label(), job.run))
        })
        .collect::<Vec<_>>();
    let climbs = adaptive::climbs(
        &suite,
        &plan.tags,
        plan.shard,
        &plan.staircases,
        &plan.trials_done,
    );
    let cx = Arc::new(Context {
        suite,
        target,
        plan,
        senses,
        llm,
        results,
        done,
        origin,
        gate: gate.clone(),
    });
    let calls = fixed.into_iter().map(|job| {
        let cx = cx.clone();
        async move { cx.call(job, None).await }
    });
    let fixed = futures_util::stream::iter(calls)
        .buffer_unordered(gate.max())
        .collect::<Vec<_>>();
    let staircases = futures_util::future::join_all(climbs.into_iter().map(|climb| {
        let cx = cx.clone();
        async move {
            let call = |job, trial| {
                let cx = cx.clone();
                async move { cx.call(job, Some(trial)).await }
            };
            adaptive::climb(climb, &cx.plan.staircases, cx.plan.seed, call).await
        }
    }));
    let (mut all, trials) = futures_util::future::join(fixed, staircases).await;
    all.extend(trials.into_iter().flatten());
    all
}

/// What every call of a run shares.
struct Context {
    pub suite: Arc<Suite>,
    pub target: Target,
    pub plan: Plan,
    pub senses: Senses,
    pub llm: Option<Arc<dyn Chat>>,
    pub results: Arc<ResultsFile>,
    pub done: mpsc::UnboundedSender<RunResult>,
    pub origin: Origin,
    pub gate: Gate,
}

impl Context {
    /// Makes one call when the gate lets it, judges it and appends it to the results the moment
    /// it ends.
    async fn call(&self, job: Job, trial: Option<Trial>) -> RunResult {
        let blank = || {
            let mut r = RunResult::new(
                &self.suite.name,
                &job.test,
                &job.condition,
                job.run,
                job.seed,
            );
            r.origin = self.origin.clone();
            r.trial = trial;
            r
        };
        self.gate.enter().await;
        let call = one_call(
            blank(),
            &self.suite,
            &job,
            &self.target,
            &self.plan,
            &self.senses,
            self.llm.clone(),
        );
        // The last guard: a bug inside one call is that call's error, not the run's end.
        let mut result = match guard::catch_async(call).await {
            Ok(result) => result,
            Err(panic) => blank().crashed(panic),
        };
        self.gate.ended(Gate::kept_time(&result.metrics));
        result.decide();
        if let Err(e) = self.results.append(&result) {
            result.error.get_or_insert(format!(
                "{}: cannot write: {e}",
                self.results.path().display()
            ));
            result.outcome = Outcome::Error;
        }
        let _ = self.done.send(result.clone());
        result
    }
}

/// What a call of a job needs before it dials.
pub(crate) struct Prepared {
    pub adapter: Box<dyn crate::transport::Adapter>,
    pub mic: MicTimeline,
    pub options: CallOptions,
    /// The persona's voice in place.
    pub senses: Senses,
    /// The suite's caller for the test.
    pub caller: StepCaller,
}

/// The protocol adapter, the noisy microphone, the call's options and its caller, for `job`;
/// the error says why the call cannot be made (a noise profile that does not load).
pub(crate) fn prepare(
    suite: &Suite,
    job: &Job,
    target: &Target,
    senses: &Senses,
    call_id: &str,
    llm: Option<Arc<dyn Chat>>,
    shelf: &Shelf,
) -> Result<Prepared, String> {
    let test = &job.test;
    let persona = test
        .persona
        .as_ref()
        .and_then(|p| suite.personas.get(p))
        .cloned()
        .unwrap_or_default();
    let scenario = test
        .scenario
        .as_ref()
        .and_then(|s| suite.scenarios.get(s))
        .cloned()
        .unwrap_or_default();
    let stop = test.stop.clone().unwrap_or_else(|| suite.stop.clone());

    let mut parameters: BTreeMap<String, String> = test.session_parameters.clone();
    parameters.insert("voicesim_call".into(), call_id.to_string());
    let adapter = target.protocol.adapter(job.seed, parameters, target.rate);
    let noise = shelf
        .get(
            &suite.resolve_profile(&job.condition.profile),
            job.condition.snr,
            adapter.rate(),
        )
        .map_err(|e| e.to_string())?;
    let mic = MicTimeline::new(&noise, job.seed);
    let mut options = CallOptions::new(&target.url);
    options.headers = target.headers.clone();
    options.fast = target.fast;
    options.max_duration = Duration::from_secs(stop.max_seconds as u64);
    options.answer_timeout = Duration::from_secs(stop.answer_timeout_seconds as u64);
    let mut senses = senses.clone();
    if persona.voice != Default::default() {
        senses.voice = persona.voice.clone();
    }
    let caller = StepCaller::new(
        test,
        persona,
        scenario,
        stop,
        suite.dir.clone(),
        llm,
        job.seed,
    );
    Ok(Prepared {
        adapter,
        mic,
        options,
        senses,
        caller,
    })
}

async fn one_call(
    mut result: RunResult,
    suite: &Suite,
    job: &Job,
    target: &Target,
    plan: &Plan,
    senses: &Senses,
    llm: Option<Arc<dyn Chat>>,
) -> RunResult {
    let Prepared {
        adapter,
        mic,
        mut options,
        senses,
        mut caller,
    } = match prepare(
        suite,
        job,
        target,
        senses,
        &result.call_id,
        llm.clone(),
        &plan.noise,
    ) {
        Ok(prepared) => prepared,
        Err(e) => {
            result.error = Some(e);
            return result;
        }
    };
    options.watch = Some(plan.watch.clone());
    options.metronome = Some(plan.metronome.clone());
    let conversation = converse(options, adapter, mic, &mut caller, &senses, None).await;
    let transcript = match &conversation {
        Ok(record) => record.transcript.clone(),
        Err(SimError::Broke { record, .. }) => record.transcript.clone(),
        Err(_) => Vec::new(),
    };
    let stopped_by = caller.stopped_by.clone();
    // The steps are judged again on the whole turns, which may ask an LLM: a blocking call.
    result.steps = match guard::blocking(move || caller.finish(&transcript)).await {
        Ok(steps) => steps,
        Err(panic) => return result.crashed(panic),
    };
    let record = match conversation {
        Ok(record) => record,
        Err(SimError::Broke { error, record }) => {
            // What led up to the failure is worth a listen.
            keep(&record, &mut result, suite, &plan.out, job);
            return match *error {
                SimError::Panic(panic) => result.crashed(panic),
                error => {
                    result.error = Some(error.to_string());
                    result
                }
            };
        }
        Err(SimError::Panic(panic)) => return result.crashed(panic),
        Err(e) => {
            result.error = Some(e.to_string());
            return result;
        }
    };
    result.stopped_by = stopped_by;
    keep(&record, &mut result, suite, &plan.out, job);
    let agent_text = record.agent_text();
    for expectation in &job.test.expectations {
        let judgement = match (&expectation.check, &expectation.description, &llm) {
            (Some(rule), _, _) => judge::check(rule, &agent_text, Some(&result.metrics)),
            (None, Some(description), Some(llm)) => {
                let llm = llm.clone();
                let (description, transcript) = (description.clone(), record.transcript.clone());
                match guard::blocking(move || {
                    judge::ask_llm(llm.as_ref(), &description, &transcript)
                })
                .await
                {
                    Ok(Ok(j)) => j,
                    Ok(Err(e)) => Judgement::not_judged(format!("the LLM judge failed: {e}")),
                    Err(panic) => return result.crashed(panic),
                }
            }
            (None, Some(_), None) => Judgement::not_judged(
                "no check and no LLM judge configured (VOICESIM_LLM_BASE_URL)",
            ),
            (None, None, _) => {
                Judgement::not_judged("the expectation has neither a check nor a description")
            }
        };
        result.expectations.push(ExpectationResult {
            name: expectation.name.clone(),
            judgement,
        });
    }
    result
}

/// Saves the call's recording in its folder under `out` and puts what the record says into the
/// result: faults, how it ended, the transcript, the metrics (the noise KPIs among them, from the
/// steps already judged) and each answer's latency.
pub(crate) fn keep(
    record: &CallRecord,
    result: &mut RunResult,
    suite: &Suite,
    out: &std::path::Path,
    job: &Job,
) {
    let dir = out.join(folder::call_dir(
        &job.test.name,
        &job.condition.label(),
        job.run,
    ));
    match record.save(&dir) {
        Ok(()) => result.recording = Some(dir),
        Err(e) => {
            result.error = Some(format!(
                "{}: cannot write the recording: {e}",
                dir.display()
            ))
        }
    }
    result.faults = record.faults.clone();
    result.ended = Some(record.ended.clone());
    result.transcript = record.transcript.clone();
    result.metrics = Metrics::of(record);
    result.metrics.asked_to_repeat = Some(kpi::asked_to_repeat(
        &record.transcript,
        &suite.asked_to_repeat,
    ));
    result.metrics.caller_repeats = Some(kpi::caller_repeats(&result.steps));
    result.metrics.abandoned = Some(kpi::abandoned(
        &job.test,
        &result.steps,
        &record.ended,
        result.stopped_by.as_deref(),
    ));
    result.latencies_ms = record
        .turns
        .iter()
        .filter_map(|t| t.response_latency_ms)
        .collect();
    result.reactions = record.reactions.clone();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shards_of_a_run_are_its_calls_each_once_with_the_same_seeds() {
        let suite = Suite::parse(
            "name: s\nruns: 3\nnoise: [{profile: clean}, {profile: cafe, snr: [5, 10]}]\ntests:\n  \
             - name: a\n    steps: [{goal: g, static_utterance: hi}]\n  \
             - name: b\n    steps: [{goal: g, static_utterance: hi}]\n",
            "s.yaml",
            std::path::Path::new("."),
        )
        .unwrap();
        let id = |j: &Job| (j.test.name.clone(), j.condition.label(), j.run, j.seed);
        let whole: Vec<_> = jobs(&suite, &[], None, 7, None).iter().map(id).collect();
        assert_eq!(whole.len(), 18);
        for count in 1..=20 {
            let mut union: Vec<_> = (1..=count)
                .flat_map(|index| jobs(&suite, &[], None, 7, Some(Shard { index, count })))
                .map(|j| id(&j))
                .collect();
            let sizes: Vec<usize> = (1..=count)
                .map(|index| count_shard(&suite, Shard { index, count }))
                .collect();
            // Dealt evenly: shard sizes differ by one at most.
            assert!(sizes.iter().max().unwrap() - sizes.iter().min().unwrap() <= 1);
            union.sort();
            let mut expected = whole.clone();
            expected.sort();
            assert_eq!(union, expected, "{count} shards");
        }
    }

    fn count_shard(suite: &Suite, shard: Shard) -> usize {
        count(suite, &[], None, Some(shard))
    }
}
