use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use super::{SpeechError, Tts, Voice};
use crate::audio::Clip;

/// espeak-ng, run as a subprocess so its GPL code stays out of this binary.
#[derive(Debug, Clone)]
pub struct Espeak {
    program: PathBuf,
}

const ENGINE: &str = "espeak-ng";

impl Espeak {
    /// Finds `espeak-ng` on PATH (or `VOICESIM_ESPEAK`) and checks that it runs.
    pub fn new() -> Result<Self, SpeechError> {
        let program = std::env::var_os("VOICESIM_ESPEAK")
            .map(PathBuf::from)
            .unwrap_or_else(|| ENGINE.into());
        let version = Command::new(&program).arg("--version").output();
        match version {
            Ok(out) if out.status.success() => Ok(Espeak { program }),
            Ok(out) => Err(SpeechError::Missing {
                engine: ENGINE.into(),
                reason: format!(
                    "`{} --version` failed: {}",
                    program.display(),
                    String::from_utf8_lossy(&out.stderr).trim()
                ),
                fix: "reinstall it: apt-get install espeak-ng".into(),
            }),
            Err(e) => Err(SpeechError::Missing {
                engine: ENGINE.into(),
                reason: format!("cannot run {}: {e}", program.display()),
                fix: "install it with `apt-get install espeak-ng` (or `make setup`)".into(),
            }),
        }
    }
}

impl Tts for Espeak {
    fn id(&self) -> String {
        ENGINE.into()
    }

    fn synthesize(&self, text: &str, voice: &Voice) -> Result<Clip, SpeechError> {
        let fail = |message: String| SpeechError::Engine {
            engine: ENGINE.into(),
            message,
        };
        let mut cmd = Command::new(&self.program);
        cmd.arg("--stdout")
            .arg("-v")
            .arg(voice.name.as_deref().unwrap_or("en-us"));
        if let Some(rate) = voice.rate_wpm {
            cmd.arg("-s").arg(rate.clamp(80, 450).to_string());
        }
        if let Some(pitch) = voice.pitch {
            cmd.arg("-p").arg(pitch.min(99).to_string());
        }
        // Text goes through stdin: no quoting problems, no argument that looks like a flag.
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| fail(format!("cannot start: {e}")))?;
        if let Some(mut stdin) = child.stdin.take() {
            stdin
                .write_all(text.as_bytes())
                .map_err(|e| fail(format!("cannot send text: {e}")))?;
        }
        let out = child.wait_with_output().map_err(|e| fail(e.to_string()))?;
        if !out.status.success() {
            let stderr = String::from_utf8_lossy(&out.stderr);
            return Err(fail(format!(
                "{} ({}; `espeak-ng --voices` lists the voices)",
                stderr.trim(),
                out.status
            )));
        }
        Ok(Clip::decode(out.stdout, "espeak-ng.wav")?)
    }
}
