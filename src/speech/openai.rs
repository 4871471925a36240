//! OpenAI-compatible HTTP speech: `POST /audio/speech` and `POST /audio/transcriptions`, as
//! served by OpenAI, Groq, and local servers (Speaches, LocalAI, vLLM, llama.cpp's whisper
//! server).

use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;

use super::{Segment, SpeechError, Stt, Transcript, Tts, Voice};
use crate::audio::{wav_bytes, Clip};

/// Where and how to reach a provider. The API key is read from the environment and never
/// printed (`Debug` redacts it).
#[derive(Clone)]
pub struct OpenAiConfig {
    /// Base URL including the version path, e.g. `https://api.openai.com/v1`.
    pub base_url: String,
    pub api_key: Option<String>,
    pub model: String,
    pub timeout: Duration,
}

impl std::fmt::Debug for OpenAiConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenAiConfig")
            .field("base_url", &self.base_url)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("model", &self.model)
            .finish()
    }
}

impl OpenAiConfig {
    /// From the environment: `VOICESIM_{TTS,STT}_BASE_URL` (else `OPENAI_BASE_URL`, else
    /// OpenAI), `VOICESIM_{TTS,STT}_API_KEY` (else `OPENAI_API_KEY`), `VOICESIM_{TTS,STT}_MODEL`
    /// (else `default_model`). `kind` is `TTS` or `STT`.
    pub fn from_env(kind: &str, default_model: &str) -> Self {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        OpenAiConfig {
            base_url: var(&format!("VOICESIM_{kind}_BASE_URL"))
                .or_else(|| var("OPENAI_BASE_URL"))
                .unwrap_or_else(|| "https://api.openai.com/v1".into())
                .trim_end_matches('/')
                .to_string(),
            api_key: var(&format!("VOICESIM_{kind}_API_KEY")).or_else(|| var("OPENAI_API_KEY")),
            model: var(&format!("VOICESIM_{kind}_MODEL")).unwrap_or_else(|| default_model.into()),
            timeout: Duration::from_secs(60),
        }
    }

    fn agent(&self) -> ureq::Agent {
        ureq::Agent::config_builder()
            .timeout_global(Some(self.timeout))
            .http_status_as_error(false)
            .build()
            .into()
    }

    fn url(&self, path: &str) -> String {
        format!("{}/{path}", self.base_url)
    }

    /// Turns a transport failure or an error status into a [`SpeechError`] with the server's
    /// own message (OpenAI's `{"error":{"message":…}}` where present).
    fn check(
        &self,
        engine: &str,
        url: &str,
        result: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    ) -> Result<ureq::http::Response<ureq::Body>, SpeechError> {
        let mut response = result.map_err(|e| SpeechError::Unreachable {
            engine: engine.into(),
            url: url.into(),
            message: e.to_string(),
        })?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let body = response.body_mut().read_to_string().unwrap_or_default();
        let message = serde_json::from_str::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| {
                v.pointer("/error/message")
                    .and_then(Value::as_str)
                    .map(str::to_string)
            })
            .unwrap_or_else(|| body.chars().take(300).collect());
        let hint = match status.as_u16() {
            401 | 403 => " (check the API key variable)",
            404 => " (check the base URL and model)",
            _ => "",
        };
        Err(SpeechError::Engine {
            engine: engine.into(),
            message: format!("{url} answered {status}: {message}{hint}"),
        })
    }
}

/// OpenAI-compatible text to speech.
#[derive(Debug, Clone)]
pub struct OpenAiTts {
    config: OpenAiConfig,
}

impl OpenAiTts {
    pub fn new(config: OpenAiConfig) -> Self {
        OpenAiTts { config }
    }

    pub fn from_env() -> Self {
        Self::new(OpenAiConfig::from_env("TTS", "gpt-4o-mini-tts"))
    }
}

impl Tts for OpenAiTts {
    fn id(&self) -> String {
        format!("openai-tts:{}:{}", self.config.base_url, self.config.model)
    }

    fn synthesize(&self, text: &str, voice: &Voice) -> Result<Clip, SpeechError> {
        let engine = "openai-tts";
        let url = self.config.url("audio/speech");
        let mut body = serde_json::json!({
            "model": self.config.model,
            "input": text,
            "voice": voice.name.as_deref().unwrap_or("alloy"),
            "response_format": "wav",
        });
        if let (Some(wpm), Some(body)) = (voice.rate_wpm, body.as_object_mut()) {
            // OpenAI's speed is relative to its natural ~175 words per minute.
            body.insert(
                "speed".into(),
                serde_json::json!((wpm as f64 / 175.0).clamp(0.25, 4.0)),
            );
        }
        let mut request = self.config.agent().post(&url);
        if let Some(key) = &self.config.api_key {
            request = request.header("Authorization", format!("Bearer {key}"));
        }
        let mut response = self.config.check(engine, &url, request.send_json(&body))?;
        let bytes = response
            .body_mut()
            .with_config()
            .limit(64 * 1024 * 1024)
            .read_to_vec()
            .map_err(|e| SpeechError::Engine {
                engine: engine.into(),
                message: format!("{url}: reading audio: {e}"),
            })?;
        Ok(Clip::decode(bytes, "speech.wav")?)
    }
}

/// OpenAI-compatible speech to text.
#[derive(Debug, Clone)]
pub struct OpenAiStt {
    config: OpenAiConfig,
}

impl OpenAiStt {
    pub fn new(config: OpenAiConfig) -> Self {
        OpenAiStt { config }
    }

    pub fn from_env() -> Self {
        Self::new(OpenAiConfig::from_env("STT", "whisper-1"))
    }
}

#[derive(Deserialize)]
struct TranscriptionJson {
    text: String,
    #[serde(default)]
    segments: Vec<SegmentJson>,
}

#[derive(Deserialize)]
struct SegmentJson {
    start: f64,
    end: f64,
    text: String,
}

impl Stt for OpenAiStt {
    fn id(&self) -> String {
        format!("openai-stt:{}:{}", self.config.base_url, self.config.model)
    }

    fn transcribe(&self, clip: &Clip) -> Result<Transcript, SpeechError> {
        let engine = "openai-stt";
        let url = self.config.url("audio/transcriptions");
        let wav = wav_bytes(&[clip])?;
        let form = ureq::unversioned::multipart::Form::new()
            .part(
                "file",
                ureq::unversioned::multipart::Part::bytes(&wav)
                    .file_name("audio.wav")
                    .mime_str("audio/wav")
                    .map_err(|e| SpeechError::Engine {
                        engine: engine.into(),
                        message: e.to_string(),
                    })?,
            )
            .text("model", &self.config.model)
            .text("language", "en")
            .text("response_format", "json");
        let mut request = self.config.agent().post(&url);
        if let Some(key) = &self.config.api_key {
            request = request.header("Authorization", format!("Bearer {key}"));
        }
        let mut response = self.config.check(engine, &url, request.send(form))?;
        let json: TranscriptionJson =
            response
                .body_mut()
                .read_json()
                .map_err(|e| SpeechError::Engine {
                    engine: engine.into(),
                    message: format!("{url}: unexpected answer: {e}"),
                })?;
        Ok(Transcript {
            text: json.text.trim().to_string(),
            confidence: None,
            queued_ms: 0.0,
            segments: json
                .segments
                .into_iter()
                .map(|s| Segment {
                    start_ms: (s.start * 1000.0) as u64,
                    end_ms: (s.end * 1000.0) as u64,
                    text: s.text.trim().into(),
                })
                .collect(),
        })
    }
}
