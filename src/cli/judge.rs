//! `voicesim judge-eval`: the LLM judge's score on a labelled set of transcripts.

use std::path::PathBuf;

use clap::Args;

use super::run::LlmArgs;
use super::{CliError, Exit};
use crate::judge::eval::{self, JudgeSet, Score};

#[derive(Args)]
pub struct JudgeEvalArgs {
    /// The labelled set (YAML: items with criterion, transcript, met, near_miss); the
    /// repository's is fixtures/judge/set.yaml.
    set: PathBuf,
    /// Decide "met" at this probability of it instead of the engine's own threshold (local
    /// models only: they tell the probability).
    #[arg(long, value_parser = probability)]
    threshold: Option<f64>,
    /// Print every item, not only the ones the judge got wrong.
    #[arg(long)]
    verbose: bool,
    #[command(flatten)]
    llm: LlmArgs,
}

fn probability(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(p) if (0.0..=1.0).contains(&p) => Ok(p),
        _ => Err(format!("{s:?}: give a probability from 0 to 1")),
    }
}

pub fn judge_eval(args: JudgeEvalArgs) -> Result<Exit, CliError> {
    let set = JudgeSet::load(&args.set).map_err(CliError::bad_input)?;
    let Some(llm) = args.llm.open(true)? else {
        return Err(CliError::bad_input("no LLM"));
    };
    let mut score = Score::default();
    let mut odds = Vec::new();
    for item in &set.items {
        let mut judged = eval::judge(llm.as_ref(), item);
        if let (Some(t), Some(p)) = (args.threshold, judged.p_met) {
            judged.met = Some(p >= t);
        }
        score.add(item, &judged);
        if let Some(p) = judged.p_met {
            odds.push((item, p));
        }
        let mark = match judged.met {
            Some(met) if met == item.met => "ok  ",
            Some(true) if item.near_miss => "PASS (near miss)",
            Some(true) => "PASS",
            Some(false) => "FAIL",
            None => "NOT JUDGED",
        };
        if args.verbose || !mark.starts_with("ok") {
            let p = judged
                .p_met
                .map(|p| format!(" p={p:.3}"))
                .unwrap_or_default();
            println!(
                "{mark:<16} {}{p} ({:.1} s): {}",
                item.id,
                judged.took.as_secs_f64(),
                judged.justification
            );
        }
    }
    println!(
        "{}: {} of {} right ({:.0} %), {} false passes ({} on near misses), {} false fails, {} \
         not judged; {:.1} s a verdict",
        args.set.display(),
        score.right,
        score.items,
        score.accuracy() * 100.0,
        score.false_passes,
        score.near_miss_passes,
        score.false_fails,
        score.not_judged,
        score.seconds_per_verdict()
    );
    if let Some((t, accuracy)) = eval::best_threshold(&odds) {
        println!(
            "best threshold on this set: {t:.3} ({:.0} % right, no near miss passed if any \
             threshold keeps them out)",
            accuracy * 100.0
        );
    }
    Ok(Exit::Ok)
}
