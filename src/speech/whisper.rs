use std::path::{Path, PathBuf};
use std::sync::Mutex;

use whisper_rs::{FullParams, SamplingStrategy, WhisperContext, WhisperContextParameters};

use super::{Segment, SpeechError, Stt, Transcript};
use crate::audio::Clip;

const ENGINE: &str = "whisper";
/// Whisper hears 16 kHz mono.
const RATE: u32 = 16_000;

/// Whisper (whisper.cpp) in process. Load it once and share it: loading reads the whole model;
/// each transcription gets a fresh decoder state, whose sampler is seeded anew, so the same
/// audio always gives the same words even when decoding falls back to sampling.
///
/// One transcription runs at a time per `Whisper`: each already uses every core, and ggml's
/// spinning worker threads slow to a crawl when two runs share the cores (measured: 11 speech
/// tests took 276 s in parallel against ~20 s one after another).
pub struct Whisper {
    ctx: WhisperContext,
    model: PathBuf,
    threads: i32,
    busy: Mutex<()>,
}

impl std::fmt::Debug for Whisper {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Whisper")
            .field("model", &self.model)
            .finish()
    }
}

impl Whisper {
    /// `$VOICESIM_WHISPER_MODEL`, else tiny.en in the cache folder, where `make setup` puts it.
    pub fn default_model() -> PathBuf {
        crate::env_path("VOICESIM_WHISPER_MODEL")
            .unwrap_or_else(|| crate::cache_dir().join("models/ggml-tiny.en.bin"))
    }

    pub fn load_default() -> Result<Self, SpeechError> {
        Self::load(Self::default_model())
    }

    pub fn load(model: impl AsRef<Path>) -> Result<Self, SpeechError> {
        let model = model.as_ref();
        if !model.is_file() {
            return Err(SpeechError::Missing {
                engine: ENGINE.into(),
                reason: format!("no model at {}", model.display()),
                fix: "run `make setup` (scripts/fetch-whisper-model.sh) to fetch and convert tiny.en, \
                      or set VOICESIM_WHISPER_MODEL to a whisper.cpp ggml model"
                    .into(),
            });
        }
        // Without this whisper.cpp prints its whole load log on stderr.
        whisper_rs::install_logging_hooks();
        let path = model.to_str().ok_or_else(|| SpeechError::Config {
            engine: ENGINE.into(),
            message: format!("model path {} is not UTF-8", model.display()),
        })?;
        let ctx = WhisperContext::new_with_params(path, WhisperContextParameters::default())
            .map_err(|e| SpeechError::Engine {
                engine: ENGINE.into(),
                message: format!(
                    "cannot load {}: {e}; is it a whisper.cpp ggml model?",
                    model.display()
                ),
            })?;
        let threads = std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .min(4) as i32;
        Ok(Whisper {
            ctx,
            model: model.into(),
            threads,
            busy: Mutex::new(()),
        })
    }

    /// Threads per transcription (default: the cores, at most 4). Two `Whisper`s that split the
    /// cores between them run side by side without slowing each other down.
    pub fn with_threads(mut self, threads: usize) -> Self {
        self.threads = threads.clamp(1, 64) as i32;
        self
    }

    fn engine_error(e: impl std::fmt::Display) -> SpeechError {
        SpeechError::Engine {
            engine: ENGINE.into(),
            message: e.to_string(),
        }
    }
}

impl Stt for Whisper {
    fn id(&self) -> String {
        super::model_id(ENGINE, &self.model)
    }

    fn transcribe(&self, clip: &Clip) -> Result<Transcript, SpeechError> {
        let audio = clip.clone().resample(RATE)?;
        if audio.samples.len() < RATE as usize / 10 {
            return Ok(Transcript::default()); // under 100 ms: nothing to hear
        }
        // A poisoned lock only means another transcription panicked; the model is still fine.
        let _turn = self
            .busy
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut state = self.ctx.create_state().map_err(Self::engine_error)?;
        // Greedy; where the output looks like a hallucination loop, whisper.cpp retries at a
        // higher temperature with two sampled candidates (its standard fallback).
        let mut params = FullParams::new(SamplingStrategy::Greedy { best_of: 2 });
        params.set_language(Some("en"));
        params.set_n_threads(self.threads);
        params.set_no_context(true);
        // The encoder always looks at 30 s (1500 frames) unless told otherwise; a caller's
        // utterance is a few seconds, so shrink the window to the audio plus half again and a
        // margin: 3-4x faster per utterance, same words on the bundled sentence set.
        let frames = (audio.samples.len() * 50).div_ceil(RATE as usize);
        params.set_audio_ctx(
            std::env::var("VOICESIM_WHISPER_CTX")
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(((frames * 3 / 2 + 64).next_multiple_of(64)).min(1500) as i32),
        );
        params.set_print_progress(false);
        params.set_print_realtime(false);
        params.set_print_timestamps(false);
        params.set_print_special(false);
        state
            .full(params, &audio.samples)
            .map_err(Self::engine_error)?;

        let eot = self.ctx.token_eot();
        let (mut text, mut segments, mut probs) = (String::new(), Vec::new(), Vec::new());
        for segment in state.as_iter() {
            let words = segment
                .to_str_lossy()
                .map_err(Self::engine_error)?
                .trim()
                .to_string();
            for i in 0..segment.n_tokens() {
                if let Some(token) = segment.get_token(i) {
                    if token.token_id() < eot {
                        probs.push(token.token_probability());
                    }
                }
            }
            if words.is_empty() {
                continue;
            }
            if !text.is_empty() {
                text.push(' ');
            }
            text.push_str(&words);
            // whisper.cpp times are in centiseconds.
            segments.push(Segment {
                start_ms: segment.start_timestamp().max(0) as u64 * 10,
                end_ms: segment.end_timestamp().max(0) as u64 * 10,
                text: words,
            });
        }
        let confidence =
            (!probs.is_empty()).then(|| probs.iter().sum::<f32>() / probs.len() as f32);
        Ok(Transcript {
            text,
            confidence,
            segments,
        })
    }
}
