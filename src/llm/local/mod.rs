//! The LLM in process: a GGUF chat model (Qwen2 architecture) run on the CPU with candle,
//! for the caller and the judge when no endpoint is configured.
//!
//! Loaded once and shared by every call of a run. Work is done one request at a time on a
//! pool of its own (two requests on two cores go no faster together than one after the other,
//! and audio pacing runs on other threads). Recent conversations keep their attention cache,
//! so a request that shares a beginning with one before it (the caller's next turn, the next
//! verdict under the same instructions) computes only what is new.

mod qwen2;
mod vocab;

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use candle_core::quantized::gguf_file;
use candle_core::Tensor;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::{Chat, Decision, LlmError, Message};
use qwen2::{Cache, Qwen2};
use vocab::Vocab;

/// The model `make setup` fetches, in the cache's `llm/` folder.
pub const DEFAULT_MODEL: &str = "qwen2.5-coder-1.5b.gguf";

/// Conversations whose caches are kept: more than the calls of a run at once.
const KEPT: usize = 16;
/// Tokens fed per step while reading a prompt (bounds the attention matrix).
const CHUNK: usize = 256;
/// The longest caller line, in tokens.
const LINE_TOKENS: usize = 60;
/// The longest justification, in tokens.
const REASON_TOKENS: usize = 48;

/// The judge's threshold on the probability of "met": set on the labelled set
/// (`voicesim judge-eval fixtures/judge/set.yaml` prints the best one) as the lowest that lets
/// no near miss pass with the default model. The model's odds sit close to even, so 0.5 let
/// near misses through.
const THRESHOLD: f64 = 0.625;

/// How the caller samples: varied enough to sound like a person, seeded so a rerun says the
/// same.
const TEMPERATURE: f32 = 0.7;
const TOP_P: f32 = 0.9;

pub struct LocalChat {
    file: PathBuf,
    name: String,
    model: Qwen2,
    vocab: Vocab,
    pool: rayon::ThreadPool,
    memory: Mutex<Memory>,
    /// The judge says "met" when the model's probability of `true` is at least this.
    threshold: f64,
    pub load_time: Duration,
}

/// Where the model is looked for: `VOICESIM_LLM_MODEL_FILE`, else the cache's default model.
pub fn default_file() -> PathBuf {
    match std::env::var_os("VOICESIM_LLM_MODEL_FILE").filter(|v| !v.is_empty()) {
        Some(file) => PathBuf::from(file),
        None => crate::cache_dir().join("llm").join(DEFAULT_MODEL),
    }
}

impl LocalChat {
    /// Loads `file`, a GGUF chat model of the Qwen2 architecture.
    pub fn load(file: &Path) -> Result<Self, LlmError> {
        let started = Instant::now();
        let bad = |message: String, fix: &str| LlmError::Model {
            file: file.to_path_buf(),
            message,
            fix: fix.to_string(),
        };
        let refetch =
            "run `voicesim setup` (in a source checkout `make setup`) to fetch it again, or point \
                       --llm-model / VOICESIM_LLM_MODEL_FILE at another GGUF file";
        if !file.is_file() {
            return Err(bad(
                "no model file there".into(),
                "run `voicesim setup` (in a source checkout `make setup`) to fetch the default model, or point \
                 --llm-model / VOICESIM_LLM_MODEL_FILE at a GGUF chat model",
            ));
        }
        let mut reader = std::io::BufReader::new(
            std::fs::File::open(file).map_err(|e| bad(e.to_string(), refetch))?,
        );
        let content = gguf_file::Content::read(&mut reader)
            .map_err(|e| bad(format!("not a GGUF model file: {e}"), refetch))?;
        let size = std::fs::metadata(file).map(|m| m.len()).unwrap_or(0);
        let end = content
            .tensor_infos
            .values()
            .map(|t| {
                let bytes =
                    t.shape.elem_count() / t.ggml_dtype.block_size() * t.ggml_dtype.type_size();
                content.tensor_data_offset + t.offset + bytes as u64
            })
            .max()
            .unwrap_or(0);
        if end > size {
            return Err(bad(
                format!("the file is cut short: {size} bytes, its tensors need {end}"),
                refetch,
            ));
        }
        let architecture = content
            .metadata
            .get("general.architecture")
            .and_then(|v| v.to_string().ok().cloned())
            .unwrap_or_default();
        if architecture != "qwen2" {
            return Err(bad(
                format!("its architecture is {architecture:?}; voicesim runs \"qwen2\" models"),
                "use a Qwen2 or Qwen2.5 GGUF model, or serve this one over HTTP \
                 (VOICESIM_LLM_BASE_URL)",
            ));
        }
        let name = content
            .metadata
            .get("general.name")
            .and_then(|v| v.to_string().ok().cloned())
            .unwrap_or_else(|| file.display().to_string());
        let vocab = Vocab::from_gguf(&content).map_err(|m| bad(m, refetch))?;
        let model = Qwen2::load(&content, &mut reader)
            .map_err(|e| bad(format!("cannot read its weights: {e}"), refetch))?;
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .thread_name(|i| format!("llm-{i}"))
            .build()
            .map_err(|e| bad(e.to_string(), "free some threads"))?;
        Ok(LocalChat {
            file: file.to_path_buf(),
            name,
            model,
            vocab,
            pool,
            memory: Mutex::new(Memory::default()),
            threshold: THRESHOLD,
            load_time: started.elapsed(),
        })
    }

    pub fn file(&self) -> &Path {
        &self.file
    }

    /// Raw speed, for benchmarks: reads `prompt` arbitrary tokens into a fresh cache, then
    /// generates `generate` greedily; tokens a second for each.
    pub fn speed(&self, prompt: usize, generate: usize) -> Result<(f64, f64), LlmError> {
        let tokens: Vec<u32> = (0..prompt as u32).map(|i| 1000 + i * 7).collect();
        self.exclusive(|_| {
            let started = Instant::now();
            let mut cache = Cache::default();
            let logits = self.feed(&tokens, &mut cache)?;
            let read = started.elapsed().as_secs_f64();
            let started = Instant::now();
            let mut next = argmax(&logits.to_vec1::<f32>()?);
            for _ in 0..generate {
                next = argmax(&self.model.forward(&[next], &mut cache)?.to_vec1::<f32>()?);
            }
            let wrote = started.elapsed().as_secs_f64();
            Ok((prompt as f64 / read, generate as f64 / wrote))
        })
    }

    fn error(&self, message: impl std::fmt::Display) -> LlmError {
        LlmError::Model {
            file: self.file.clone(),
            message: message.to_string(),
            fix: "report this with the suite that made it".into(),
        }
    }

    fn tokens(&self, messages: &[Message], reply_start: &str) -> Result<Vec<u32>, LlmError> {
        let prompt = self.vocab.prompt(messages).map_err(|m| self.error(m))?;
        let tokens = self
            .vocab
            .encode(&format!("{prompt}{reply_start}"))
            .map_err(|m| self.error(m))?;
        // Room for the reply, too.
        if tokens.len() + LINE_TOKENS + REASON_TOKENS > self.model.context {
            return Err(LlmError::Model {
                file: self.file.clone(),
                message: format!(
                    "the conversation is {} tokens; the model reads at most {}",
                    tokens.len(),
                    self.model.context
                ),
                fix: "give the test fewer turns (stop.max_turns) or shorter instructions".into(),
            });
        }
        Ok(tokens)
    }

    /// Runs `work` with the model to itself, on its pool.
    fn exclusive<T: Send>(
        &self,
        work: impl FnOnce(&mut Memory) -> candle_core::Result<T> + Send,
    ) -> Result<T, LlmError> {
        let mut memory = self.memory.lock().unwrap_or_else(|e| e.into_inner());
        let memory: &mut Memory = &mut memory;
        self.pool
            .install(|| work(memory))
            .map_err(|e| self.error(e))
    }

    /// Feeds `tokens` after what `cache` holds, a chunk at a time; the logits after the last.
    fn feed(&self, tokens: &[u32], cache: &mut Cache) -> candle_core::Result<Tensor> {
        let mut logits = None;
        for chunk in tokens.chunks(CHUNK) {
            logits = Some(self.model.forward(chunk, cache)?);
        }
        logits.ok_or_else(|| candle_core::Error::Msg("nothing to feed".into()))
    }

    /// The cache of `system` read alone, read now if it is not kept yet.
    fn system_cache(&self, memory: &mut Memory, system: &[u32]) -> candle_core::Result<Cache> {
        if let Some((_, cache)) = memory.systems.iter().find(|(s, _)| s == system) {
            return Ok(cache.clone());
        }
        let mut cache = Cache::default();
        self.feed(system, &mut cache)?;
        memory.systems.push((system.to_vec(), cache.clone()));
        if memory.systems.len() > KEPT {
            memory.systems.remove(0);
        }
        Ok(cache)
    }

    /// Reads `prompt` into a cache; the logits after its last token. It starts from what
    /// `conversation` kept, cut back to where `prompt` parts from it, else from the cache of
    /// the system message alone. Either start depends on the conversation only, never on
    /// what other calls happened to leave, so a rerun of a call computes the same numbers.
    fn read(
        &self,
        memory: &mut Memory,
        conversation: Option<u64>,
        system: &[u32],
        prompt: &[u32],
    ) -> candle_core::Result<(Cache, Tensor)> {
        let shared = |kept: &[u32]| kept.iter().zip(prompt).take_while(|(a, b)| a == b).count();
        let own = conversation.and_then(|c| memory.talks.iter().find(|t| t.0 == c));
        let (mut cache, from) = match own {
            Some((_, kept, cache)) if shared(kept) > system.len() => {
                (cache.clone(), shared(kept).min(cache.len))
            }
            _ if !system.is_empty() && prompt.starts_with(system) => {
                (self.system_cache(memory, system)?, system.len())
            }
            _ => (Cache::default(), 0),
        };
        // At least one token is fed, for its logits.
        let from = from.min(prompt.len().saturating_sub(1));
        cache.truncate(from)?;
        let logits = self.feed(prompt.get(from..).unwrap_or_default(), &mut cache)?;
        Ok((cache, logits))
    }

    /// Generates up to `max` tokens after what `cache` holds (`tokens`), the first picked
    /// from `logits`, each with `pick`, until a stop token or until `done` says the text so
    /// far is complete. The text, and the tokens the cache now holds.
    fn generate(
        &self,
        cache: &mut Cache,
        mut logits: Tensor,
        mut tokens: Vec<u32>,
        max: usize,
        mut pick: impl FnMut(&[f32]) -> u32,
        done: impl Fn(&str) -> bool,
    ) -> candle_core::Result<(String, Vec<u32>)> {
        let start = tokens.len();
        for _ in 0..max {
            let next = pick(&logits.to_vec1::<f32>()?);
            if self.vocab.stops.contains(&next) {
                break;
            }
            tokens.push(next);
            let said = tokens.get(start..).unwrap_or_default();
            if done(&self.vocab.decode(said)) || cache.len + 1 >= self.model.context {
                break;
            }
            logits = self.model.forward(&[next], cache)?;
        }
        let text = self.vocab.decode(tokens.get(start..).unwrap_or_default());
        // The cache holds every token but the last picked one.
        tokens.truncate(cache.len);
        Ok((text, tokens))
    }

    /// The tokens of `messages`' system message as the prompt begins with it.
    fn system_tokens(&self, messages: &[Message]) -> Result<Vec<u32>, LlmError> {
        match messages.first().filter(|m| m.role == "system") {
            Some(system) => {
                let text = self
                    .vocab
                    .render(std::slice::from_ref(system), false)
                    .map_err(|m| self.error(m))?;
                self.vocab.encode(&text).map_err(|m| self.error(m))
            }
            None => Ok(Vec::new()),
        }
    }
}

/// What the engine keeps between requests.
#[derive(Default)]
struct Memory {
    /// Each conversation's last tokens and their cache, most recent last.
    talks: Vec<(u64, Vec<u32>, Cache)>,
    /// The caches of system messages read alone.
    systems: Vec<(Vec<u32>, Cache)>,
}

impl Memory {
    fn keep(&mut self, conversation: u64, tokens: Vec<u32>, cache: Cache) {
        self.talks.retain(|t| t.0 != conversation);
        self.talks.push((conversation, tokens, cache));
        if self.talks.len() > KEPT {
            self.talks.remove(0);
        }
    }
}

impl Chat for LocalChat {
    fn describe(&self) -> String {
        format!("{} ({}, local)", self.name, self.file.display())
    }

    fn line(&self, messages: &[Message], conversation: u64, seed: u64) -> Result<String, LlmError> {
        let tokens = self.tokens(messages, "")?;
        let system = self.system_tokens(messages)?;
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let text = self.exclusive(|memory| {
            let (mut cache, logits) = self.read(memory, Some(conversation), &system, &tokens)?;
            let (text, kept) = self.generate(
                &mut cache,
                logits,
                tokens,
                LINE_TOKENS,
                |logits| sample(logits, &mut rng),
                |text| text.trim_start().contains('\n'),
            )?;
            memory.keep(conversation, kept, cache);
            Ok(text)
        })?;
        Ok(text.trim().lines().next().unwrap_or("").trim().to_string())
    }

    fn prepare(&self, system: &Message) {
        let Ok(tokens) = self.system_tokens(std::slice::from_ref(system)) else {
            return;
        };
        let _ = self.exclusive(|memory| self.system_cache(memory, &tokens).map(|_| ()));
    }

    /// Decided by the model's odds of `true` against `false` as the value of `"met"`, then a
    /// one-sentence justification read greedily: the output is valid JSON by construction.
    fn decide(&self, messages: &[Message]) -> Result<Decision, LlmError> {
        let (yes, no) = match (self.vocab.token(" true"), self.vocab.token(" false")) {
            (Some(yes), Some(no)) => (yes, no),
            _ => return Err(self.error("its vocabulary has no single token for true/false")),
        };
        let tokens = self.tokens(messages, "{\"met\":")?;
        let system = self.system_tokens(messages)?;
        let reason_start = self
            .vocab
            .encode(", \"justification\": \"")
            .map_err(|m| self.error(m))?;
        let threshold = self.threshold;
        let (p_met, justification) = self.exclusive(|memory| {
            let (mut cache, logits) = self.read(memory, None, &system, &tokens)?;
            let logits = logits.to_vec1::<f32>()?;
            let odds = |id: u32| {
                logits
                    .get(id as usize)
                    .copied()
                    .unwrap_or(f32::NEG_INFINITY)
            };
            let (y, n) = (odds(yes), odds(no));
            let p_met = 1.0 / (1.0 + ((n - y) as f64).exp());
            let mut then = vec![if p_met >= threshold { yes } else { no }];
            then.extend(&reason_start);
            let logits = self.model.forward(&then, &mut cache)?;
            let (text, _) =
                self.generate(&mut cache, logits, Vec::new(), REASON_TOKENS, argmax, |t| {
                    t.contains('"')
                })?;
            Ok((p_met, text))
        })?;
        let justification = justification
            .split('"')
            .next()
            .unwrap_or("")
            .trim()
            .to_string();
        Ok(Decision {
            met: p_met >= threshold,
            p_met: Some(p_met),
            justification,
        })
    }
}

fn argmax(logits: &[f32]) -> u32 {
    logits
        .iter()
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(b.1))
        .map_or(0, |(i, _)| i as u32)
}

/// Nucleus sampling at [`TEMPERATURE`] and [`TOP_P`].
fn sample(logits: &[f32], rng: &mut ChaCha8Rng) -> u32 {
    let top = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut p: Vec<(u32, f32)> = logits
        .iter()
        .enumerate()
        .map(|(i, l)| (i as u32, ((l - top) / TEMPERATURE).exp()))
        .filter(|(_, p)| *p > 1e-6)
        .collect();
    p.sort_by(|a, b| b.1.total_cmp(&a.1));
    let total: f32 = p.iter().map(|(_, p)| p).sum();
    let mut kept = 0.0;
    let cut = p
        .iter()
        .position(|(_, q)| {
            kept += q / total;
            kept >= TOP_P
        })
        .map_or(p.len(), |i| i + 1);
    p.truncate(cut);
    let total: f32 = p.iter().map(|(_, p)| p).sum();
    let mut draw = rng.random::<f32>() * total;
    for (id, q) in &p {
        draw -= q;
        if draw <= 0.0 {
            return *id;
        }
    }
    p.last().map_or(0, |(id, _)| *id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nucleus_sampling_is_fixed_by_its_seed_and_keeps_to_the_likely_tokens() {
        let logits = [0.0, 5.0, 4.9, -3.0, 1.0];
        let draws = |seed| {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            (0..50)
                .map(|_| sample(&logits, &mut rng))
                .collect::<Vec<_>>()
        };
        assert_eq!(draws(7), draws(7));
        let d = draws(7);
        assert!(d.iter().all(|t| [1, 2].contains(t)), "{d:?}");
        assert!(d.contains(&1) && d.contains(&2), "{d:?}");
        assert_eq!(argmax(&logits), 1);
    }
}
