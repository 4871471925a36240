//! Piper, a neural voice: espeak-ng turns text into IPA phonemes, a VITS model (ONNX, run by
//! ONNX Runtime loaded at run time) turns phonemes into speech. It sounds far more human than
//! espeak-ng, which matters for noise experiments: STT degrades much faster on espeak's voice.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use ort::session::Session;
use ort::value::Tensor;
use serde::Deserialize;

use super::wer::between_digits;
use super::{Espeak, SpeechError, Tts, Voice};
use crate::audio::Clip;

const ENGINE: &str = "piper";

/// The parts of a Piper voice's `.onnx.json` that synthesis needs.
#[derive(Debug, Deserialize)]
struct VoiceConfig {
    audio: AudioConfig,
    espeak: EspeakConfig,
    phoneme_id_map: HashMap<String, Vec<i64>>,
    #[serde(default)]
    num_speakers: u32,
}

#[derive(Debug, Deserialize)]
struct AudioConfig {
    sample_rate: u32,
}

#[derive(Debug, Deserialize)]
struct EspeakConfig {
    voice: String,
}

/// A Piper voice, loaded once. Synthesis is deterministic: both noise scales are 0.
pub struct Piper {
    session: Mutex<Session>,
    config: VoiceConfig,
    espeak: Espeak,
    model: PathBuf,
}

impl std::fmt::Debug for Piper {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Piper").field("model", &self.model).finish()
    }
}

fn missing(reason: String) -> SpeechError {
    SpeechError::Missing {
        engine: ENGINE.into(),
        reason,
        fix:
            "run `voicesim setup` (in a source checkout `make setup`) to fetch the voice and ONNX Runtime, or set \
              VOICESIM_PIPER_MODEL and VOICESIM_ONNXRUNTIME"
                .into(),
    }
}

fn engine_error(e: impl std::fmt::Display) -> SpeechError {
    SpeechError::Engine {
        engine: ENGINE.into(),
        message: e.to_string(),
    }
}

/// ONNX Runtime is one library per process: it is loaded on first use and kept.
fn environment(library: &Path) -> Result<&'static ort::environment::Environment, SpeechError> {
    static ENV: OnceLock<Result<ort::environment::Environment, String>> = OnceLock::new();
    ENV.get_or_init(|| {
        ort::init_from(library)
            .map_err(|e| format!("cannot load ONNX Runtime from {}: {e}", library.display()))?
            .with_name("voicesim")
            .build()
            .map_err(|e| e.to_string())
    })
    .as_ref()
    .map_err(|e| missing(e.clone()))
}

impl Piper {
    /// `$VOICESIM_PIPER_MODEL`, else the joe (en_US, medium) voice in the cache folder.
    pub fn default_model() -> PathBuf {
        crate::env_path("VOICESIM_PIPER_MODEL")
            .unwrap_or_else(|| crate::cache_dir().join("piper/en_US-joe-medium.onnx"))
    }

    /// `$VOICESIM_ONNXRUNTIME`, else the library `make setup` unpacked into the cache folder.
    pub fn default_runtime() -> PathBuf {
        crate::env_path("VOICESIM_ONNXRUNTIME")
            .unwrap_or_else(|| crate::cache_dir().join("onnxruntime/libonnxruntime.so"))
    }

    pub fn load_default() -> Result<Self, SpeechError> {
        Self::load(Self::default_model(), Self::default_runtime())
    }

    /// Loads `model` (with `model.json` beside it, as Piper ships voices) on the ONNX Runtime
    /// library `runtime`.
    pub fn load(model: impl AsRef<Path>, runtime: impl AsRef<Path>) -> Result<Self, SpeechError> {
        let (model, runtime) = (model.as_ref(), runtime.as_ref());
        let json = PathBuf::from(format!("{}.json", model.display()));
        for path in [model, &json, runtime] {
            if !path.is_file() {
                return Err(missing(format!("{} does not exist", path.display())));
            }
        }
        let config: VoiceConfig = std::fs::read_to_string(&json)
            .map_err(engine_error)
            .and_then(|text| {
                serde_json::from_str(&text)
                    .map_err(|e| engine_error(format!("{}: {e}", json.display())))
            })?;
        if config.num_speakers > 1 {
            return Err(SpeechError::Config {
                engine: ENGINE.into(),
                message: "multi-speaker voices are not supported yet".into(),
            });
        }
        let env = environment(runtime)?;
        let threads = std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .min(4);
        let session = Session::builder(env)
            .and_then(|b| b.with_intra_threads(threads).map_err(Into::into))
            .and_then(|mut b| b.commit_from_file(model))
            .map_err(|e| engine_error(format!("cannot load {}: {e}", model.display())))?;
        Ok(Piper {
            session: Mutex::new(session),
            config,
            espeak: Espeak::new()?,
            model: model.into(),
        })
    }

    /// Phoneme ids for one sentence: `^`, then each phoneme followed by the pad `_`, then `$`,
    /// as Piper's own phonemizer lays them out. Clause punctuation is kept as a phoneme.
    fn phoneme_ids(&self, sentence: &str) -> Result<Vec<i64>, SpeechError> {
        let map = &self.config.phoneme_id_map;
        let id = |symbol: &str| map.get(symbol).cloned().unwrap_or_default();
        let mut phonemes = String::new();
        for (clause, punct) in clauses(sentence) {
            let ipa = self.espeak.phonemize(&clause, &self.config.espeak.voice)?;
            if ipa.is_empty() {
                continue;
            }
            if !phonemes.is_empty() {
                phonemes.push(' ');
            }
            phonemes.push_str(&ipa);
            if let Some(p) = punct {
                phonemes.push(p);
            }
        }
        let pad = id("_");
        let mut ids = id("^");
        ids.extend(&pad);
        let mut buf = [0u8; 4];
        for ch in phonemes.chars() {
            // Symbols the voice does not know are dropped, as Piper does.
            if let Some(p) = map.get(ch.encode_utf8(&mut buf) as &str) {
                ids.extend(p);
                ids.extend(&pad);
            }
        }
        ids.extend(id("$"));
        Ok(ids)
    }

    fn speak_sentence(&self, sentence: &str, length_scale: f32) -> Result<Vec<f32>, SpeechError> {
        let ids = self.phoneme_ids(sentence)?;
        if ids.len() <= 3 {
            return Ok(Vec::new());
        }
        let n = ids.len();
        let inputs = ort::inputs![
            "input" => Tensor::from_array(([1usize, n], ids)).map_err(engine_error)?,
            "input_lengths" => Tensor::from_array(([1usize], vec![n as i64])).map_err(engine_error)?,
            // noise_scale, length_scale, noise_w: no noise, so the same text is the same audio.
            "scales" => Tensor::from_array(([3usize], vec![0.0f32, length_scale, 0.0])).map_err(engine_error)?,
        ];
        let mut session = self
            .session
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let outputs = session.run(inputs).map_err(engine_error)?;
        let (_, audio) = outputs
            .get("output")
            .ok_or_else(|| engine_error("the voice model has no \"output\""))?
            .try_extract_tensor::<f32>()
            .map_err(engine_error)?;
        Ok(audio.to_vec())
    }
}

/// Splits text into clauses at punctuation, keeping the punctuation mark of each.
fn clauses(text: &str) -> Vec<(String, Option<char>)> {
    let mut out = Vec::new();
    let mut current = String::new();
    let chars: Vec<char> = text.chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        // A '.' or ',' inside a number (3.5, 1,000) does not end a clause.
        let in_number = between_digits(&chars, i);
        if matches!(c, '.' | ',' | '!' | '?' | ';' | ':') && !in_number {
            if !current.trim().is_empty() {
                out.push((current.trim().to_string(), Some(c)));
            }
            current.clear();
        } else {
            current.push(c);
        }
    }
    if !current.trim().is_empty() {
        out.push((current.trim().to_string(), None));
    }
    out
}

/// Sentences: runs of clauses up to a `.`, `!` or `?`.
fn sentences(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    for (clause, punct) in clauses(text) {
        current.push_str(&clause);
        if let Some(p) = punct {
            current.push(p);
        }
        current.push(' ');
        if matches!(punct, Some('.' | '!' | '?') | None) {
            out.push(current.trim().to_string());
            current.clear();
        }
    }
    if !current.trim().is_empty() {
        out.push(current.trim().to_string());
    }
    out
}

impl Tts for Piper {
    fn id(&self) -> String {
        super::model_id(ENGINE, &self.model)
    }

    fn synthesize(&self, text: &str, voice: &Voice) -> Result<Clip, SpeechError> {
        // Piper's natural pace is about 175 words per minute; slower speech is longer.
        let length_scale = voice.rate_wpm.map_or(1.0, |wpm| {
            (175.0 / wpm.clamp(80, 450) as f32).clamp(0.4, 2.2)
        });
        let rate = self.config.audio.sample_rate;
        let gap = vec![0.0f32; rate as usize / 5]; // 200 ms between sentences
        let mut samples = Vec::new();
        for sentence in sentences(text) {
            let audio = self.speak_sentence(&sentence, length_scale)?;
            if !samples.is_empty() && !audio.is_empty() {
                samples.extend(&gap);
            }
            samples.extend(audio);
        }
        Ok(Clip::new(samples, rate))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_splits_into_clauses_and_sentences() {
        assert_eq!(
            clauses("Hi, it costs 3.50 dollars. OK?"),
            vec![
                ("Hi".into(), Some(',')),
                ("it costs 3.50 dollars".into(), Some('.')),
                ("OK".into(), Some('?'))
            ]
        );
        assert_eq!(
            sentences("Hi, there. How are you? Fine"),
            vec!["Hi, there.", "How are you?", "Fine"]
        );
    }
}
