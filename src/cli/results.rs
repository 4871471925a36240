//! `voicesim report html`, `voicesim diff` and `voicesim export`: what is made of a finished
//! run's results folder.

use std::path::{Path, PathBuf};

use clap::{Args, Subcommand, ValueEnum};

use super::run::GateArgs;
use super::{CliError, Exit};
use crate::report::html::HtmlOptions;
use crate::report::{diff, export, folder, html, RunResult};

/// Every result of a results folder (or its `results.jsonl`); a torn last line is noted.
pub fn load(path: &Path) -> Result<Vec<RunResult>, CliError> {
    let (_, file) = folder::locate(path);
    let stored = folder::read(&file).map_err(|e| CliError::bad_input(e.to_string()))?;
    if stored.torn > 0 {
        eprintln!(
            "note: {}: the last line was cut off mid-write (a crash); it is left out",
            file.display()
        );
    }
    Ok(stored.results)
}

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
    /// Show the deltas against an earlier run (its folder or results.jsonl).
    #[arg(long, value_name = "RESULTS")]
    baseline: Option<PathBuf>,
    #[command(flatten)]
    gate: GateArgs,
}

pub fn report(cmd: ReportCommand) -> Result<Exit, CliError> {
    let ReportCommand::Html(args) = cmd;
    let (dir, _) = folder::locate(&args.results);
    let results = load(&args.results)?;
    let compared = match &args.baseline {
        Some(b) => Some(diff::diff(&load(b)?, &results, args.gate.thresholds())),
        None => None,
    };
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
