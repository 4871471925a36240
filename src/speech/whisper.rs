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
/// Transcriptions run in *lanes*: at most `lanes` at a time, each on `threads` threads, and
/// never more threads than cores between them. ggml's threads wait for each other by spinning,
/// so a transcription whose threads outnumber the cores it really gets (another one beside it,
/// or any busy process on the machine) slows to a crawl: measured, 11 speech tests took 276 s
/// two at a time on two threads each against ~20 s one after another, and a tone took 13×
/// longer beside one busy loop. One thread a lane on a small machine has no one to wait for.
pub struct Whisper {
    ctx: WhisperContext,
    model: PathBuf,
    threads: i32,
    lanes: Lanes,
}

/// A counting semaphore: how many transcriptions may run now.
struct Lanes {
    free: Mutex<usize>,
    freed: std::sync::Condvar,
}

impl Lanes {
    fn new(n: usize) -> Lanes {
        Lanes {
            free: Mutex::new(n.max(1)),
            freed: std::sync::Condvar::new(),
        }
    }

    fn take(&self) -> Lane<'_> {
        // A poisoned lock only means a transcription panicked; the count is still right.
        let mut free = self.free.lock().unwrap_or_else(|p| p.into_inner());
        while *free == 0 {
            free = self.freed.wait(free).unwrap_or_else(|p| p.into_inner());
        }
        *free -= 1;
        Lane(self)
    }

    fn any_free(&self) -> bool {
        *self.free.lock().unwrap_or_else(|p| p.into_inner()) > 0
    }
}

/// A lane held for one transcription.
struct Lane<'a>(&'a Lanes);

impl Drop for Lane<'_> {
    fn drop(&mut self) {
        let mut free = self.0.free.lock().unwrap_or_else(|p| p.into_inner());
        *free += 1;
        self.0.freed.notify_one();
    }
}

/// Whisper's output on a tone or noise: one word over and over ("Be Be Be Be ..."), or a
/// short phrase said back to back ("I can't. I can't. I can't. I can't." in a cafe's babble),
/// filling half of what it wrote. `Some(n)`: a loop after `n` words that are not part of it
/// (a tone loops from the start; a sentence heard badly may end in one); `None`: no loop.
fn loop_after(text: &str) -> Option<usize> {
    let words: Vec<String> = text
        .split_whitespace()
        .map(|w| {
            w.trim_matches(|c: char| !c.is_alphanumeric())
                .to_lowercase()
        })
        .collect();
    if words.len() < 8 {
        return None;
    }
    let mut counts = std::collections::HashMap::new();
    for w in &words {
        *counts.entry(w).or_insert(0) += 1;
    }
    let start = match counts.iter().find(|(_, &n)| n * 2 >= words.len()) {
        Some((word, _)) => words.iter().position(|w| w == *word),
        None => (2..=4).find_map(|n| {
            words.windows(n).enumerate().find_map(|(at, phrase)| {
                let repeats = words
                    .get(at..)
                    .unwrap_or_default()
                    .chunks_exact(n)
                    .take_while(|next| *next == phrase)
                    .count();
                (repeats >= 3 && repeats * n * 2 >= words.len()).then_some(at)
            })
        }),
    }?;
    // Punctuation alone ("(") is not a word said.
    Some(words.iter().take(start).filter(|w| !w.is_empty()).count())
}

/// Threads a transcription gets by default: one on a machine of up to four cores, where a
/// second one mostly waits; half the cores, at most four, on bigger ones.
fn default_threads(cores: usize) -> usize {
    if cores <= 4 {
        1
    } else {
        (cores / 2).min(4)
    }
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
                fix: "run `voicesim setup` (in a source checkout `make setup`) to fetch and convert tiny.en, \
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
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        Ok(Whisper {
            ctx,
            model: model.into(),
            threads: 1,
            lanes: Lanes::new(1),
        }
        .with_cores(cores))
    }

    /// Spreads transcriptions over `cores` cores: [`default_threads`] each, as many at a time
    /// as fit. Two `Whisper`s that split the cores between them run side by side without
    /// slowing each other down.
    pub fn with_cores(mut self, cores: usize) -> Self {
        let cores = cores.clamp(1, 64);
        let threads = default_threads(cores);
        self.threads = threads as i32;
        self.lanes = Lanes::new(cores / threads);
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

    fn free(&self) -> bool {
        self.lanes.any_free()
    }

    fn transcribe(&self, clip: &Clip) -> Result<Transcript, SpeechError> {
        let audio = clip.clone().resample(RATE)?;
        if audio.samples.len() < RATE as usize / 10 {
            return Ok(Transcript::default()); // under 100 ms: nothing to hear
        }
        let asked = std::time::Instant::now();
        let _lane = self.lanes.take();
        let queued_ms = asked.elapsed().as_secs_f64() * 1000.0;
        // The encoder always looks at 30 s (1500 frames) unless told otherwise; a caller's
        // utterance is a few seconds, so shrink the window to the audio plus half again and a
        // margin: 3-4x faster per utterance, same words on the bundled sentence set.
        let frames = (audio.samples.len() * 50).div_ceil(RATE as usize);
        let window = std::env::var("VOICESIM_WHISPER_CTX")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(((frames * 3 / 2 + 64).next_multiple_of(64)).min(FULL_WINDOW) as i32);
        let mut heard = self.decode(&audio, window)?;
        // Now and then the shortened window sends a clear sentence into a loop up to the token
        // cap: an espeak "That is all, thank you. Goodbye." over a car at 20 dB, cut from 3
        // frames of 250, came out as "till all thank you goodbye. Bye. Bye. Bye. Bye. Bye. Bye.
        // Bye. Bye.", and the agent that took the loop for a noise never answered. In the 30 s
        // window Whisper was trained on, each is "Thank you, goodbye.". Words that fall into a
        // loop are heard again that way; a tone, which loops from its first word, is not (4x
        // the work, and it loops there too).
        if loop_after(&heard.text).is_some_and(|words| words > 0) && window < FULL_WINDOW as i32 {
            heard = self.decode(&audio, FULL_WINDOW as i32)?;
        }
        if loop_after(&heard.text).is_some() {
            // What the cap cut short was no speech: nothing was said.
            return Ok(Transcript::default());
        }
        heard.queued_ms = queued_ms;
        Ok(heard)
    }
}

/// Whisper's encoder window in 20 ms frames: the 30 s it was trained on.
const FULL_WINDOW: usize = 1500;

impl Whisper {
    /// One pass of the model over `audio` (16 kHz) with an encoder window of `window` frames.
    fn decode(&self, audio: &Clip, window: i32) -> Result<Transcript, SpeechError> {
        let mut state = self.ctx.create_state().map_err(Self::engine_error)?;
        // Greedy; where the output looks like a hallucination loop, whisper.cpp retries at a
        // higher temperature with two sampled candidates (its standard fallback).
        let mut params = FullParams::new(SamplingStrategy::Greedy { best_of: 2 });
        params.set_language(Some("en"));
        params.set_n_threads(self.threads);
        params.set_no_context(true);
        params.set_audio_ctx(window);
        // People say at most five or so tokens a second; a tone or hold music sends Whisper into
        // a loop it then retries at rising temperatures (a 3 s ringback took 3 s idle and 50 s
        // beside a busy process). A cap at six a second ends each try early.
        params.set_max_tokens((audio.duration() * 6.0).ceil() as i32 + 8);
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
            queued_ms: 0.0,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_word_or_a_phrase_over_and_over_is_a_loop_a_sentence_is_not() {
        assert_eq!(loop_after("( Be Be Be Be Be Be Be Be Be Be"), Some(0));
        assert_eq!(
            loop_after("bell, bell, bell, bell, bell. Bell bell bell"),
            Some(0)
        );
        assert_eq!(
            loop_after("are a few. I can't. I can't. I can't. I can't."),
            Some(3)
        );
        assert_eq!(
            loop_after("till all thank you goodbye. Bye. Bye. Bye. Bye. Bye. Bye. Bye. Bye."),
            Some(5)
        );
        assert_eq!(
            loop_after("I can't. I can't. I really can't find my order number."),
            None
        );
        assert_eq!(
            loop_after("I would like to check the status of my order. The number is 4521."),
            None
        );
        assert_eq!(loop_after("no no no"), None); // too short to tell
        assert_eq!(
            loop_after("the order, the number, the day and the time you called"),
            None
        );
    }

    #[test]
    fn small_machines_get_one_thread_a_lane_and_a_lane_a_core() {
        assert_eq!(default_threads(1), 1);
        assert_eq!(default_threads(2), 1);
        assert_eq!(default_threads(4), 1);
        assert_eq!(default_threads(8), 4);
        assert_eq!(default_threads(64), 4);
    }

    #[test]
    fn lanes_let_as_many_through_as_there_are_and_the_next_waits_for_one() {
        let lanes = std::sync::Arc::new(Lanes::new(2));
        let (a, b) = (lanes.take(), lanes.take());
        let (tx, rx) = std::sync::mpsc::channel();
        let third = {
            let lanes = lanes.clone();
            std::thread::spawn(move || {
                let _lane = lanes.take();
                let _ = tx.send(());
            })
        };
        // Both lanes are taken: the third caller is still waiting (the bound only ends a
        // failing test).
        assert!(rx
            .recv_timeout(std::time::Duration::from_millis(200))
            .is_err());
        drop(a);
        assert!(rx.recv_timeout(std::time::Duration::from_secs(60)).is_ok());
        third.join().unwrap();
        drop(b);
        assert_eq!(*lanes.free.lock().unwrap(), 2);
    }
}
