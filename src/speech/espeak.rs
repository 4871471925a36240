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
        let program = crate::env_path("VOICESIM_ESPEAK").unwrap_or_else(|| ENGINE.into());
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

impl Espeak {
    /// The IPA phonemes espeak-ng would speak for `text`, one clause (no punctuation inside).
    pub fn phonemize(&self, text: &str, voice: &str) -> Result<String, SpeechError> {
        let out = self.run(&["-q", "--ipa", "-v", voice], text)?;
        Ok(String::from_utf8_lossy(&out)
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" "))
    }

    /// Runs espeak-ng with `args`, the text on stdin; returns stdout.
    fn run(&self, args: &[&str], text: &str) -> Result<Vec<u8>, SpeechError> {
        let fail = |message: String| SpeechError::Engine {
            engine: ENGINE.into(),
            message,
        };
        // Text goes through stdin: no quoting problems, no argument that looks like a flag.
        let mut child = Command::new(&self.program)
            .args(args)
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
        Ok(out.stdout)
    }
}

impl Tts for Espeak {
    fn id(&self) -> String {
        ENGINE.into()
    }

    fn synthesize(&self, text: &str, voice: &Voice) -> Result<Clip, SpeechError> {
        let rate = voice.rate_wpm.map(|r| r.clamp(80, 450).to_string());
        let pitch = voice.pitch.map(|p| p.min(99).to_string());
        let mut args = vec!["--stdout", "-v", voice.name.as_deref().unwrap_or("en-us")];
        if let Some(rate) = &rate {
            args.extend(["-s", rate]);
        }
        if let Some(pitch) = &pitch {
            args.extend(["-p", pitch]);
        }
        Ok(Clip::decode(self.run(&args, text)?, "espeak-ng.wav")?)
    }
}
