//! The language model behind the simulated caller and the judge, as one small trait
//! ([`Chat`]: a caller's next line, a yes/no decision with its reason) with two engines: a
//! GGUF model in process ([`LocalChat`], offline, the default) and any OpenAI-compatible
//! endpoint ([`ChatClient`], when the environment names one).

mod http;
mod local;

use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::Value;

pub use http::{decision_of, ChatClient, LlmConfig};
pub use local::{default_file, LocalChat, DEFAULT_MODEL};

/// What voicesim asks of a language model.
pub trait Chat: Send + Sync {
    /// The model and where it runs, for the one line a run prints about it.
    fn describe(&self) -> String;
    /// The next reply of `conversation` (a call: the caller's line), sampled with `seed` so
    /// the same seed says the same (as far as the engine honours a seed).
    fn line(&self, messages: &[Message], conversation: u64, seed: u64) -> Result<String, LlmError>;
    /// Whether what `messages` asks about is met, with a one-sentence justification.
    fn decide(&self, messages: &[Message]) -> Result<Decision, LlmError>;
    /// Reads `system` ahead of the first request that begins with it, so that request answers
    /// sooner (a local engine; a no-op elsewhere).
    fn prepare(&self, _system: &Message) {}
}

/// A judge model's answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    pub met: bool,
    /// The model's probability of "met", where the engine can tell.
    pub p_met: Option<f64>,
    pub justification: String,
}

/// Which engine answers: `--llm local|http`, else HTTP when the environment names an endpoint,
/// else the local model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Engine {
    #[default]
    Auto,
    Local,
    Http,
}

/// The engine a run uses, made ready; `model_file` overrides the local model's file.
pub fn open(engine: Engine, model_file: Option<&Path>) -> Result<Box<dyn Chat>, LlmError> {
    let config = LlmConfig::from_env().map_err(|message| LlmError::Config { message })?;
    match (engine, config) {
        (Engine::Http, None) => Err(LlmError::Config {
            message: "--llm http needs VOICESIM_LLM_BASE_URL (and VOICESIM_LLM_MODEL)".into(),
        }),
        (Engine::Http | Engine::Auto, Some(config)) => Ok(Box::new(ChatClient::new(config))),
        (Engine::Local | Engine::Auto, _) => {
            let file: PathBuf = model_file.map_or_else(default_file, Path::to_path_buf);
            Ok(Box::new(LocalChat::load(&file)?))
        }
    }
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Message {
    pub role: &'static str,
    pub content: String,
}

impl Message {
    pub fn system(content: impl Into<String>) -> Self {
        Message {
            role: "system",
            content: content.into(),
        }
    }
    pub fn user(content: impl Into<String>) -> Self {
        Message {
            role: "user",
            content: content.into(),
        }
    }
    pub fn assistant(content: impl Into<String>) -> Self {
        Message {
            role: "assistant",
            content: content.into(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LlmError {
    #[error("LLM: cannot reach {url}: {message}")]
    Unreachable { url: String, message: String },
    #[error("LLM: {url} answered {status}: {message}")]
    Status {
        url: String,
        status: u16,
        message: String,
    },
    #[error("LLM: {message}")]
    Reply { message: String },
    #[error("LLM: {message}")]
    Config { message: String },
    /// The local model file: missing, cut short, of another architecture, or too small a
    /// context for the conversation.
    #[error("LLM model {}: {message}; {fix}", file.display())]
    Model {
        file: PathBuf,
        message: String,
        fix: String,
    },
}

/// The JSON a model was asked for, in the text of its reply.
pub fn json_in(text: &str) -> Result<Value, LlmError> {
    // Some servers wrap JSON in a code fence despite the format.
    let trimmed = text
        .trim()
        .trim_start_matches("```json")
        .trim_start_matches("```")
        .trim_end_matches("```");
    serde_json::from_str(trimmed.trim()).map_err(|e| LlmError::Reply {
        message: format!("expected a JSON object, got {text:?}: {e}"),
    })
}

/// The text of the first choice of a chat-completions response body.
pub fn content_of(body: &str) -> Result<String, LlmError> {
    let v: Value = serde_json::from_str(body).map_err(|e| LlmError::Reply {
        message: format!("the reply is not JSON: {e}"),
    })?;
    v.pointer("/choices/0/message/content")
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| LlmError::Reply {
            message: "the reply has no choices[0].message.content".into(),
        })
}
