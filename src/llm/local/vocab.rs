//! The model's tokenizer and chat template, both read from the GGUF file's metadata, so a
//! model file is all a local LLM needs.

use candle_core::quantized::gguf_file::{Content, Value};
use minijinja::{context, Environment};
use serde_json::json;
use tokenizers::Tokenizer;

use crate::llm::Message;

/// Split of text into pieces before byte-pair merges, as Qwen2's tokenizer does
/// (`tokenizer.ggml.pre` = "qwen2").
const QWEN2_SPLIT: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

/// ChatML, for a file without a template of its own.
const CHATML: &str = "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}";

pub struct Vocab {
    tokenizer: Tokenizer,
    template: String,
    /// Tokens that end the assistant's turn.
    pub stops: Vec<u32>,
}

impl Vocab {
    pub fn from_gguf(content: &Content) -> Result<Self, String> {
        let get = |key: &str| {
            content
                .metadata
                .get(key)
                .ok_or_else(|| format!("the file has no {key}"))
        };
        let model = get("tokenizer.ggml.model")?
            .to_string()
            .map_err(|e| e.to_string())?;
        if model != "gpt2" {
            return Err(format!(
                "its tokenizer is {model:?}; voicesim reads byte-level BPE (\"gpt2\") tokenizers"
            ));
        }
        let strings = |key: &str| -> Result<Vec<String>, String> {
            get(key)?
                .to_vec()
                .map_err(|e| format!("{key}: {e}"))?
                .iter()
                .map(|v| v.to_string().cloned().map_err(|e| format!("{key}: {e}")))
                .collect()
        };
        let tokens = strings("tokenizer.ggml.tokens")?;
        let merges = strings("tokenizer.ggml.merges")?;
        let kinds: Vec<i32> = match get("tokenizer.ggml.token_type") {
            Ok(v) => v
                .to_vec()
                .map_err(|e| e.to_string())?
                .iter()
                .map(|k| k.to_i32().unwrap_or(1))
                .collect(),
            Err(_) => Vec::new(),
        };
        // Control (3) and user-defined (4) tokens are matched whole, never merged.
        let added: Vec<_> = tokens
            .iter()
            .enumerate()
            .filter_map(|(i, t)| match kinds.get(i) {
                Some(kind @ (3 | 4)) => Some(json!({"id": i, "content": t, "single_word": false,
                    "lstrip": false, "rstrip": false, "normalized": false, "special": *kind == 3})),
                _ => None,
            })
            .collect();
        let vocab: serde_json::Map<String, serde_json::Value> = tokens
            .iter()
            .enumerate()
            .map(|(i, t)| (t.clone(), json!(i)))
            .collect();
        let byte_level = json!({"type": "ByteLevel", "add_prefix_space": false,
                                "trim_offsets": false, "use_regex": false});
        let spec = json!({
            "version": "1.0",
            "added_tokens": added,
            "normalizer": {"type": "NFC"},
            "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
                {"type": "Split", "pattern": {"Regex": QWEN2_SPLIT}, "behavior": "Isolated",
                 "invert": false},
                byte_level,
            ]},
            "post_processor": null,
            "decoder": byte_level,
            "model": {"type": "BPE", "dropout": null, "unk_token": null,
                      "continuing_subword_prefix": null, "end_of_word_suffix": null,
                      "fuse_unk": false, "byte_fallback": false, "ignore_merges": false,
                      "vocab": vocab, "merges": merges},
        });
        let tokenizer: Tokenizer = spec
            .to_string()
            .parse()
            .map_err(|e| format!("its tokenizer cannot be built: {e}"))?;
        let mut stops = Vec::new();
        if let Ok(Value::U32(eos)) = get("tokenizer.ggml.eos_token_id") {
            stops.push(*eos);
        }
        for end in ["<|im_end|>", "<|endoftext|>"] {
            if let Some(id) = tokenizer.token_to_id(end) {
                if !stops.contains(&id) {
                    stops.push(id);
                }
            }
        }
        let template = match get("tokenizer.chat_template") {
            Ok(v) => v.to_string().map_err(|e| e.to_string())?.clone(),
            Err(_) => CHATML.to_string(),
        };
        let vocab = Vocab {
            tokenizer,
            template,
            stops,
        };
        vocab.prompt(&[Message::user("hello")])?; // a template that cannot render fails now
        Ok(vocab)
    }

    /// The conversation as the model reads it, ending where the assistant's reply begins.
    pub fn prompt(&self, messages: &[Message]) -> Result<String, String> {
        self.render(messages, true)
    }

    /// The conversation in the template; with `reply`, the start of the assistant's reply.
    pub fn render(&self, messages: &[Message], reply: bool) -> Result<String, String> {
        let mut env = Environment::new();
        env.add_function(
            "raise_exception",
            |m: String| -> Result<String, minijinja::Error> {
                Err(minijinja::Error::new(
                    minijinja::ErrorKind::InvalidOperation,
                    m,
                ))
            },
        );
        env.add_template("chat", &self.template)
            .map_err(|e| format!("its chat template does not parse: {e}"))?;
        env.get_template("chat")
            .and_then(|t| t.render(context! {messages => messages, add_generation_prompt => reply}))
            .map_err(|e| format!("its chat template fails: {e}"))
    }

    pub fn encode(&self, text: &str) -> Result<Vec<u32>, String> {
        self.tokenizer
            .encode(text, false)
            .map(|e| e.get_ids().to_vec())
            .map_err(|e| e.to_string())
    }

    pub fn decode(&self, ids: &[u32]) -> String {
        self.tokenizer.decode(ids, true).unwrap_or_default()
    }

    /// The one token `text` is, when it is one.
    pub fn token(&self, text: &str) -> Option<u32> {
        match self.encode(text).ok()?.as_slice() {
            [id] => Some(*id),
            _ => None,
        }
    }
}
