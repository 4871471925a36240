//! `voicesim report html`, `voicesim diff`, `voicesim export` and `voicesim merge`: what is made
//! of finished runs' results folders.

use std::path::{Path, PathBuf};

use clap::{Args, Subcommand, ValueEnum};

use super::run::{load_results as load, BaselineArgs, GateArgs};
use super::{CliError, Exit};
use crate::report::html::HtmlOptions;
use crate::report::{diff, export, folder, html, merge};

#[derive(Subcommand)]
pub enum ReportCommand {
    /// Build report.html from a results folder's results.jsonl (and its calls/).
    Html(HtmlArgs),
}

#[derive(Args)]
pub struct HtmlArgs {
    /// The results folder (or its results.jsonl).
    results: PathBuf,
    /// Where to write the page [default: report.html in the results folder].
    #[arg(long, short)]
    output: Option<PathBuf>,
    /// Put the recordings inside the page (Ogg Opus): one file to attach anywhere.
    #[arg(long)]
    embed_audio: bool,
    #[command(flatten)]
    baseline: BaselineArgs,
}

pub fn report(cmd: ReportCommand) -> Result<Exit, CliError> {
    let ReportCommand::Html(args) = cmd;
    let (dir, _) = folder::locate(&args.results);
    let results = load(&args.results)?;
    let compared = args
        .baseline
        .load()?
        .map(|(_, base)| diff::diff(&base, &results, args.baseline.gate.thresholds()));
    let out = args.output.unwrap_or_else(|| dir.join(folder::REPORT));
    let opts = HtmlOptions {
        embed_audio: args.embed_audio,
    };
    html::write(&results, &dir, &out, compared.as_ref(), &opts)
        .map_err(|e| CliError::bad_input(format!("{}: cannot write: {e}", out.display())))?;
    println!("{} ({} calls)", out.display(), results.len());
    Ok(Exit::Ok)
}

#[derive(Clone, Copy, ValueEnum)]
enum DiffFormat {
    /// Aligned columns for a terminal.
    Table,
    /// A pull-request comment or $GITHUB_STEP_SUMMARY.
    Markdown,
    Json,
}

#[derive(Args)]
pub struct DiffArgs {
    /// The earlier run: a results folder or a results.jsonl.
    base: PathBuf,
    /// The run to judge against it.
    new: PathBuf,
    #[arg(long, value_enum, default_value = "table")]
    format: DiffFormat,
    #[command(flatten)]
    gate: GateArgs,
}

pub fn diff(args: DiffArgs) -> Result<Exit, CliError> {
    let (base, new) = (load(&args.base)?, load(&args.new)?);
    let d = diff::diff(&base, &new, args.gate.thresholds());
    match args.format {
        DiffFormat::Table => print!("{}", diff::text(&d)),
        DiffFormat::Markdown => print!("{}", diff::markdown(&d)),
        DiffFormat::Json => println!(
            "{}",
            serde_json::to_string_pretty(&d).map_err(|e| CliError::bad_input(e.to_string()))?
        ),
    }
    Ok(if d.regressed() {
        Exit::Failed
    } else {
        Exit::Ok
    })
}

#[derive(Clone, Copy, ValueEnum)]
enum ExportFormat {
    Csv,
    Json,
}

#[derive(Args)]
pub struct ExportArgs {
    /// The results folder (or its results.jsonl).
    results: PathBuf,
    #[arg(long, value_enum, default_value = "csv")]
    format: ExportFormat,
    /// Write here instead of standard output.
    #[arg(long, short)]
    output: Option<PathBuf>,
}

pub fn export(args: ExportArgs) -> Result<Exit, CliError> {
    let results = load(&args.results)?;
    let text = match args.format {
        ExportFormat::Csv => export::csv(&results),
        ExportFormat::Json => export::json(&results).map(|j| j + "\n"),
    }
    .map_err(CliError::bad_input)?;
    match &args.output {
        Some(path) => std::fs::write(path, text)
            .map_err(|e| CliError::bad_input(format!("{}: cannot write: {e}", path.display())))?,
        None => print!("{text}"),
    }
    Ok(Exit::Ok)
}

#[derive(Args)]
pub struct MergeArgs {
    /// The folders of `voicesim run --shard K/N`, one per shard.
    #[arg(required = true)]
    shards: Vec<PathBuf>,
    /// The merged run's folder.
    #[arg(long, short)]
    out: PathBuf,
    /// Merge even when some shards are missing; `voicesim run --resume --out OUT` with the
    /// run's options makes their calls later.
    #[arg(long)]
    partial: bool,
    /// Replace a run already in --out.
    #[arg(long)]
    overwrite: bool,
    #[command(flatten)]
    baseline: BaselineArgs,
}

/// `voicesim merge`: the shards' folders joined into one run folder, with its reports; exits
/// as `voicesim run` of the whole would have.
pub fn merge(args: MergeArgs) -> Result<Exit, CliError> {
    let bad = |e: merge::MergeError| CliError::bad_input(e.to_string());
    let same = |a: &Path, b: &Path| match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    };
    if let Some(inside) = args.shards.iter().find(|s| same(s, &args.out)) {
        return Err(CliError::bad_input(format!(
            "{}: is both a shard and --out; merge into a new folder",
            inside.display()
        )));
    }
    let shards = args
        .shards
        .iter()
        .map(|dir| merge::read_shard(dir))
        .collect::<Result<Vec<_>, _>>()
        .map_err(bad)?;
    for s in shards.iter().filter(|s| s.torn > 0) {
        eprintln!(
            "note: {}: its last result was cut off mid-write (a crash); that call is left out",
            s.dir.display()
        );
    }
    let mut merged = merge::join(&shards).map_err(bad)?;
    if !merged.missing.is_empty() {
        let missing: Vec<String> = merged.missing.iter().map(|s| s.to_string()).collect();
        let what = format!("shard {} missing", missing.join(", "));
        if !args.partial {
            return Err(CliError::bad_input(format!(
                "{what}: give every shard's folder, or --partial to merge what there is"
            )));
        }
        eprintln!(
            "warning: {what}: the merged run has {} of its {} calls; `voicesim run SUITE \
             --resume --out {}` with the run's options makes the rest",
            merged.results.len(),
            merged.plan.plan.calls,
            args.out.display()
        );
    }
    if folder::holds_a_run(&args.out) {
        if !args.overwrite {
            return Err(CliError::bad_input(format!(
                "{}: holds an earlier run; pass --overwrite to replace it, or choose another --out",
                args.out.display()
            )));
        }
        folder::clear(&args.out)
            .map_err(|e| CliError::bad_input(format!("{}: {e}", args.out.display())))?;
    }
    merge::write(&mut merged, &shards, &args.out).map_err(bad)?;
    let output = super::run::Output {
        plan: merged.plan.plan.clone(),
        reuse: folder::Reuse::Refuse,
        baseline: args.baseline.load()?,
        thresholds: args.baseline.gate.thresholds(),
        html: HtmlOptions::default(),
    };
    eprintln!(
        "merged {} shards of {}: {} calls",
        shards.len(),
        merged.plan.plan.suite,
        merged.results.len()
    );
    super::run::conclude(&merged.plan.plan.suite, &merged.results, &args.out, &output)
}
