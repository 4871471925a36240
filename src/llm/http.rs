//! The OpenAI-compatible chat client (`POST {base}/chat/completions`): OpenAI, Gemini's
//! OpenAI-compatible endpoint, Ollama, vLLM, llama.cpp's server. Retries on rate limits and
//! server errors with backoff, and keeps to a requests-per-minute budget shared by every call
//! of the run.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::{content_of, json_in, Chat, Decision, LlmError, Message};

/// Settings of the chat client. The key is never printed (`Debug` redacts it).
#[derive(Clone)]
pub struct LlmConfig {
    /// Including the version path: `https://api.openai.com/v1`, `http://localhost:11434/v1`.
    pub base_url: String,
    pub api_key: Option<String>,
    pub model: String,
    pub temperature: f64,
    pub max_tokens: u32,
    pub top_p: f64,
    pub requests_per_minute: u32,
    pub retries: u32,
    pub timeout: Duration,
}

impl std::fmt::Debug for LlmConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LlmConfig")
            .field("base_url", &self.base_url)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("model", &self.model)
            .finish_non_exhaustive()
    }
}

impl LlmConfig {
    pub fn new(base_url: impl Into<String>, model: impl Into<String>) -> Self {
        LlmConfig {
            base_url: base_url.into().trim_end_matches('/').to_string(),
            api_key: None,
            model: model.into(),
            temperature: 0.7,
            max_tokens: 200,
            top_p: 1.0,
            requests_per_minute: 60,
            retries: 3,
            timeout: Duration::from_secs(60),
        }
    }

    /// From the environment, only when asked for: `VOICESIM_LLM_BASE_URL` or
    /// `VOICESIM_LLM_MODEL` must be set (an `OPENAI_API_KEY` alone never sends a suite's
    /// calls to a paid API). Also `VOICESIM_LLM_API_KEY` (else `OPENAI_API_KEY`),
    /// `VOICESIM_LLM_TEMPERATURE`, `VOICESIM_LLM_MAX_TOKENS`, `VOICESIM_LLM_TOP_P`,
    /// `VOICESIM_LLM_RPM`.
    pub fn from_env() -> Result<Option<Self>, String> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let (base, model) = (var("VOICESIM_LLM_BASE_URL"), var("VOICESIM_LLM_MODEL"));
        if base.is_none() && model.is_none() {
            return Ok(None);
        }
        let mut config = LlmConfig::new(
            base.unwrap_or_else(|| "https://api.openai.com/v1".into()),
            model.unwrap_or_else(|| "gpt-4o-mini".into()),
        );
        config.api_key = var("VOICESIM_LLM_API_KEY").or_else(|| var("OPENAI_API_KEY"));
        fn parse<T: std::str::FromStr>(
            name: &str,
            value: Option<String>,
            into: &mut T,
        ) -> Result<(), String> {
            if let Some(v) = value {
                *into = v.parse().map_err(|_| format!("{name}={v}: not a number"))?;
            }
            Ok(())
        }
        parse(
            "VOICESIM_LLM_TEMPERATURE",
            var("VOICESIM_LLM_TEMPERATURE"),
            &mut config.temperature,
        )?;
        parse(
            "VOICESIM_LLM_MAX_TOKENS",
            var("VOICESIM_LLM_MAX_TOKENS"),
            &mut config.max_tokens,
        )?;
        parse(
            "VOICESIM_LLM_TOP_P",
            var("VOICESIM_LLM_TOP_P"),
            &mut config.top_p,
        )?;
        parse(
            "VOICESIM_LLM_RPM",
            var("VOICESIM_LLM_RPM"),
            &mut config.requests_per_minute,
        )?;
        if config.requests_per_minute == 0 {
            return Err("VOICESIM_LLM_RPM must be at least 1".into());
        }
        Ok(Some(config))
    }
}

/// The client. Share one per run: its rate limit is for the whole run.
pub struct ChatClient {
    config: LlmConfig,
    agent: ureq::Agent,
    /// When the next request may go out.
    next_slot: Mutex<Instant>,
}

impl ChatClient {
    pub fn new(config: LlmConfig) -> Self {
        let agent = ureq::Agent::config_builder()
            .timeout_global(Some(config.timeout))
            .http_status_as_error(false)
            .build()
            .into();
        ChatClient {
            config,
            agent,
            next_slot: Mutex::new(Instant::now()),
        }
    }

    pub fn config(&self) -> &LlmConfig {
        &self.config
    }

    /// Waits for this request's slot in the requests-per-minute budget.
    fn pace(&self) {
        let spacing = Duration::from_secs_f64(60.0 / self.config.requests_per_minute as f64);
        let wait = {
            let mut next = self.next_slot.lock().unwrap_or_else(|e| e.into_inner());
            let now = Instant::now();
            let slot = (*next).max(now);
            *next = slot + spacing;
            slot - now
        };
        std::thread::sleep(wait);
    }

    fn complete(
        &self,
        messages: &[Message],
        json: bool,
        seed: Option<u64>,
    ) -> Result<String, LlmError> {
        let url = format!("{}/chat/completions", self.config.base_url);
        let mut body = json!({
            "model": self.config.model,
            "messages": messages,
            "temperature": self.config.temperature,
            "max_tokens": self.config.max_tokens,
            "top_p": self.config.top_p,
        });
        if let Some(body) = body.as_object_mut() {
            if json {
                body.insert("response_format".into(), json!({"type": "json_object"}));
            }
            if let Some(seed) = seed {
                body.insert("seed".into(), json!(seed));
            }
        }
        let mut attempt = 0;
        loop {
            self.pace();
            let mut request = self
                .agent
                .post(&url)
                .header("Content-Type", "application/json");
            if let Some(key) = &self.config.api_key {
                request = request.header("Authorization", &format!("Bearer {key}"));
            }
            let retry = match request.send(body.to_string()) {
                Err(e) => LlmError::Unreachable {
                    url: url.clone(),
                    message: e.to_string(),
                },
                Ok(mut response) => {
                    let status = response.status().as_u16();
                    let text = response.body_mut().read_to_string().unwrap_or_default();
                    if (200..300).contains(&status) {
                        return content_of(&text);
                    }
                    let message = serde_json::from_str::<Value>(&text)
                        .ok()
                        .and_then(|v| {
                            v.pointer("/error/message")
                                .and_then(Value::as_str)
                                .map(str::to_string)
                        })
                        .unwrap_or(text);
                    let error = LlmError::Status {
                        url: url.clone(),
                        status,
                        message,
                    };
                    if status != 429 && status < 500 {
                        return Err(error);
                    }
                    error
                }
            };
            attempt += 1;
            if attempt > self.config.retries {
                return Err(retry);
            }
            std::thread::sleep(Duration::from_millis(500 * (1 << attempt.min(5))));
        }
    }
}

impl Chat for ChatClient {
    fn describe(&self) -> String {
        format!("{} at {}", self.config.model, self.config.base_url)
    }

    fn line(
        &self,
        messages: &[Message],
        _conversation: u64,
        seed: u64,
    ) -> Result<String, LlmError> {
        self.complete(messages, false, Some(seed))
    }

    /// Asks for `{"met": true|false, "justification": "..."}` (`response_format: json_object`).
    fn decide(&self, messages: &[Message]) -> Result<Decision, LlmError> {
        decision_of(&json_in(&self.complete(messages, true, None)?)?)
    }
}

/// The judge's answer, `{"met": true|false, "justification": "..."}`.
pub fn decision_of(answer: &Value) -> Result<Decision, LlmError> {
    let met = answer
        .get("met")
        .and_then(Value::as_bool)
        .ok_or_else(|| LlmError::Reply {
            message: format!("the judge's JSON has no boolean \"met\": {answer}"),
        })?;
    Ok(Decision {
        met,
        p_met: None,
        justification: answer
            .get("justification")
            .and_then(Value::as_str)
            .unwrap_or("(no justification)")
            .to_string(),
    })
}
