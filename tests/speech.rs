//! Speech engines really run: espeak-ng speaks, Whisper listens, WER judges; HTTP providers are
//! exercised against a local server that speaks OpenAI's wire format.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use voicesim::audio::{level, wav_bytes, Clip};
use voicesim::noise::{LoadedNoise, MicTimeline, NoiseProfile};
use voicesim::speech::wer::wer;
use voicesim::speech::{
    CachedTts, Espeak, OpenAiConfig, OpenAiStt, OpenAiTts, SpeechError, Stt, Tts, Voice, Whisper,
};

/// One Whisper per test process, as the tool itself loads it once.
fn whisper() -> &'static Whisper {
    static WHISPER: OnceLock<Whisper> = OnceLock::new();
    WHISPER.get_or_init(|| Whisper::load_default().expect("Whisper model; run `make setup`"))
}

fn sentences() -> Vec<String> {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/speech/customer-service.txt"
    ))
    .unwrap();
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(str::to_string)
        .collect()
}

#[test]
fn espeak_speaks_with_the_persona_voice_settings() {
    let espeak = Espeak::new().unwrap();
    let text = "Thank you for calling, how can I help you today?";
    let normal = espeak.synthesize(text, &Voice::default()).unwrap();
    assert_eq!(normal.rate, 22_050);
    assert!(normal.duration() > 1.5 && normal.rms_dbfs() > -40.0);
    let fast = espeak
        .synthesize(
            text,
            &Voice {
                rate_wpm: Some(320),
                ..Voice::default()
            },
        )
        .unwrap();
    let slow = espeak
        .synthesize(
            text,
            &Voice {
                rate_wpm: Some(110),
                ..Voice::default()
            },
        )
        .unwrap();
    assert!(fast.duration() < normal.duration() && normal.duration() < slow.duration());
    let british = espeak
        .synthesize(
            text,
            &Voice {
                name: Some("en-gb".into()),
                ..Voice::default()
            },
        )
        .unwrap();
    assert_ne!(british.samples, normal.samples);
    let high = espeak
        .synthesize(
            text,
            &Voice {
                pitch: Some(90),
                ..Voice::default()
            },
        )
        .unwrap();
    assert_ne!(high.samples, normal.samples);
    // The same request is the same audio: synthesis is deterministic.
    assert_eq!(espeak.synthesize(text, &Voice::default()).unwrap(), normal);
}

#[test]
fn an_unknown_espeak_voice_is_a_clear_error() {
    let err = Espeak::new()
        .unwrap()
        .synthesize(
            "hello",
            &Voice {
                name: Some("xx-nope".into()),
                ..Voice::default()
            },
        )
        .unwrap_err();
    assert!(matches!(err, SpeechError::Engine { .. }), "{err}");
    assert!(err.to_string().contains("voice"), "{err}");
}

/// Counts the calls that reach the wrapped engine.
struct Counting<T>(T, Arc<AtomicUsize>);

impl<T: Tts> Tts for Counting<T> {
    fn id(&self) -> String {
        self.0.id()
    }
    fn synthesize(&self, text: &str, voice: &Voice) -> Result<Clip, SpeechError> {
        self.1.fetch_add(1, Ordering::SeqCst);
        self.0.synthesize(text, voice)
    }
}

#[test]
fn synthesized_clips_are_cached_by_engine_voice_and_text() {
    let dir = tempfile::tempdir().unwrap();
    let calls = Arc::new(AtomicUsize::new(0));
    let tts = CachedTts::new(Counting(Espeak::new().unwrap(), calls.clone()), dir.path());
    let first = tts
        .synthesize("Where is my parcel?", &Voice::default())
        .unwrap();
    let again = tts
        .synthesize("Where is my parcel?", &Voice::default())
        .unwrap();
    assert_eq!(
        calls.load(Ordering::SeqCst),
        1,
        "the second request must come from the cache"
    );
    assert_eq!(first, again, "a hit gives exactly the samples of the miss");
    tts.synthesize(
        "Where is my parcel?",
        &Voice {
            rate_wpm: Some(200),
            ..Voice::default()
        },
    )
    .unwrap();
    tts.synthesize("Where is my package?", &Voice::default())
        .unwrap();
    assert_eq!(
        calls.load(Ordering::SeqCst),
        3,
        "other settings or text are other entries"
    );
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 3);
    // A damaged entry is re-synthesized, not an error.
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        std::fs::write(entry.unwrap().path(), b"garbage").unwrap();
    }
    assert_eq!(
        tts.synthesize("Where is my parcel?", &Voice::default())
            .unwrap(),
        first
    );
    assert_eq!(calls.load(Ordering::SeqCst), 4);
}

#[test]
fn whisper_transcribes_real_human_speech() {
    let clip = Clip::open(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/audio/speech_orig_16k.wav"
    ))
    .unwrap();
    let t = whisper().transcribe(&clip).unwrap();
    let reference =
        "The birch canoe slid on the smooth planks. Glue the sheet to the dark blue background. \
                     It's easy to tell the depth of a well. Four hours of steady work faced us.";
    assert!(wer(reference, &t.text) <= 0.05, "{}", t.text);
    assert!(t.confidence.is_some_and(|c| (0.5..=1.0).contains(&c)));
    assert!(
        t.segments.len() >= 2
            && t.segments
                .windows(2)
                .all(|w| w[0].end_ms <= w[1].start_ms + 10)
    );
    // At 8 kHz (a phone line) it still hears the words.
    let narrow = clip.resample(8_000).unwrap();
    assert!(wer(reference, &whisper().transcribe(&narrow).unwrap().text) <= 0.15);
}

#[test]
fn whisper_hears_silence_as_nothing_much() {
    let t = whisper().transcribe(&Clip::silence(2.0, 16_000)).unwrap();
    assert!(t.text.split_whitespace().count() <= 2, "{:?}", t.text);
    assert_eq!(
        whisper()
            .transcribe(&Clip::silence(0.05, 16_000))
            .unwrap()
            .text,
        ""
    );
}

#[test]
fn customer_service_sentences_round_trip_with_clean_wer_under_10_percent() {
    let espeak = Espeak::new().unwrap();
    let (mut edits, mut words) = (0.0, 0usize);
    for sentence in sentences() {
        let clip = espeak.synthesize(&sentence, &Voice::default()).unwrap();
        let heard = whisper().transcribe(&clip).unwrap().text;
        let n = voicesim::speech::wer::normalize(&sentence)
            .split_whitespace()
            .count();
        if wer(&sentence, &heard) > 0.0 {
            eprintln!("{sentence:?} -> {heard:?}");
        }
        edits += wer(&sentence, &heard) * n as f64;
        words += n;
    }
    let total = edits / words as f64;
    assert!(sentences().len() >= 20);
    eprintln!("clean WER {:.2}%", total * 100.0);
    assert!(total <= 0.10, "clean WER {:.1}%", total * 100.0);
}

#[test]
fn noise_makes_whisper_worse() {
    // The same sentence through the cafe at 0 dB: real noise must cost words, or the
    // pipeline is not mixing what it claims.
    let espeak = Espeak::new().unwrap();
    let sentence = "I would like to book an appointment for next Tuesday.";
    let clean = espeak.synthesize(sentence, &Voice::default()).unwrap();
    let noise = LoadedNoise::load(
        &NoiseProfile::bundled("cafe")
            .unwrap()
            .with_background_snr(-5.0)
            .unwrap(),
        16_000,
    )
    .unwrap();
    let mut mic = MicTimeline::new(&noise, 2);
    mic.say(clean.clone()).unwrap();
    let mut noisy = Vec::new();
    while mic.is_speaking() {
        noisy.extend(mic.next_frame().samples);
    }
    let noisy = Clip::new(noisy, 16_000);
    let clean_wer = wer(sentence, &whisper().transcribe(&clean).unwrap().text);
    let heard = whisper().transcribe(&noisy).unwrap();
    let noisy_wer = wer(sentence, &heard.text);
    assert!(
        clean_wer <= 0.1 && noisy_wer > clean_wer,
        "clean {clean_wer}, noisy {noisy_wer}"
    );
    // Even where decoding falls back to sampling, the same audio gives the same words.
    assert_eq!(whisper().transcribe(&noisy).unwrap(), heard);
}

#[test]
fn a_missing_whisper_model_says_how_to_get_it() {
    let err = Whisper::load("/nonexistent/ggml-tiny.en.bin").unwrap_err();
    assert!(matches!(err, SpeechError::Missing { .. }));
    assert!(err.to_string().contains("make setup"), "{err}");
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("junk.bin");
    std::fs::write(&junk, b"not a model").unwrap();
    assert!(matches!(
        Whisper::load(&junk),
        Err(SpeechError::Engine { .. })
    ));
}

// ---- OpenAI-compatible providers against a local server speaking the same wire format ----

struct Captured {
    method: String,
    url: String,
    auth: Option<String>,
    content_type: Option<String>,
    body: Vec<u8>,
}

/// Serves one request with `reply` and hands back what was asked.
fn serve_once(
    status: u16,
    content_type: &'static str,
    reply: Vec<u8>,
) -> (String, std::thread::JoinHandle<Captured>) {
    let server = tiny_http::Server::http("127.0.0.1:0").unwrap();
    let base = format!("http://{}/v1", server.server_addr().to_ip().unwrap());
    let handle = std::thread::spawn(move || {
        let mut request = server.recv().unwrap();
        let header = |name: &'static str| {
            request
                .headers()
                .iter()
                .find(|h| h.field.equiv(name))
                .map(|h| h.value.to_string())
        };
        let (auth, content_type_in) = (header("Authorization"), header("Content-Type"));
        let mut body = Vec::new();
        request.as_reader().read_to_end(&mut body).unwrap();
        let captured = Captured {
            method: request.method().to_string(),
            url: request.url().to_string(),
            auth,
            content_type: content_type_in,
            body,
        };
        let response = tiny_http::Response::from_data(reply)
            .with_status_code(status)
            .with_header(tiny_http::Header::from_bytes("Content-Type", content_type).unwrap());
        request.respond(response).unwrap();
        captured
    });
    (base, handle)
}

fn config(base: &str, model: &str) -> OpenAiConfig {
    OpenAiConfig {
        base_url: base.into(),
        api_key: Some("sk-test-secret".into()),
        model: model.into(),
        timeout: std::time::Duration::from_secs(10),
    }
}

#[test]
fn openai_tts_posts_the_speech_request_and_decodes_the_wav() {
    let tone = Clip::new(
        (0..24_000)
            .map(|i| ((i as f32) * 0.05).sin() * 0.3)
            .collect(),
        24_000,
    );
    let (base, server) = serve_once(200, "audio/wav", wav_bytes(&[&tone]).unwrap());
    let clip = OpenAiTts::new(config(&base, "tts-1"))
        .synthesize(
            "Hello there",
            &Voice {
                name: Some("nova".into()),
                rate_wpm: Some(350),
                pitch: None,
            },
        )
        .unwrap();
    let req = server.join().unwrap();
    assert_eq!(
        (req.method.as_str(), req.url.as_str()),
        ("POST", "/v1/audio/speech")
    );
    assert_eq!(req.auth.as_deref(), Some("Bearer sk-test-secret"));
    assert!(req
        .content_type
        .unwrap_or_default()
        .starts_with("application/json"));
    let body: serde_json::Value = serde_json::from_slice(&req.body).unwrap();
    assert_eq!(body["model"], "tts-1");
    assert_eq!(body["input"], "Hello there");
    assert_eq!(body["voice"], "nova");
    assert_eq!(body["response_format"], "wav");
    assert_eq!(body["speed"], 2.0);
    assert_eq!(clip.rate, 24_000);
    assert!((level::rms(&clip.samples) - level::rms(&tone.samples)).abs() < 1e-3);
}

#[test]
fn openai_stt_uploads_multipart_wav_and_reads_the_text() {
    let (base, server) = serve_once(
        200,
        "application/json",
        br#"{"text":" I need to reset my password. "}"#.to_vec(),
    );
    let sent = Clip::new(
        (0..8_000).map(|i| ((i as f32) * 0.1).sin() * 0.2).collect(),
        8_000,
    );
    let t = OpenAiStt::new(config(&base, "whisper-1"))
        .transcribe(&sent)
        .unwrap();
    assert_eq!(t.text, "I need to reset my password.");
    let req = server.join().unwrap();
    assert_eq!(
        (req.method.as_str(), req.url.as_str()),
        ("POST", "/v1/audio/transcriptions")
    );
    let content_type = req.content_type.unwrap();
    let boundary = content_type
        .strip_prefix("multipart/form-data; boundary=")
        .expect(&content_type);
    let body = req.body;
    let text = String::from_utf8_lossy(&body);
    assert!(text.contains(&format!("--{boundary}")));
    assert!(
        text.contains("name=\"model\"\r\n\r\nwhisper-1\r\n"),
        "{text}"
    );
    assert!(text.contains("name=\"response_format\"\r\n\r\njson\r\n"));
    assert!(text.contains("name=\"file\"; filename=\"audio.wav\""));
    // The uploaded file is the clip, as a WAV.
    let start = body.windows(4).position(|w| w == b"RIFF").unwrap();
    let end =
        start + 8 + u32::from_le_bytes(body[start + 4..start + 8].try_into().unwrap()) as usize;
    let uploaded = Clip::decode(body[start..end].to_vec(), "upload.wav").unwrap();
    assert_eq!(uploaded.rate, 8_000);
    assert_eq!(uploaded.len(), sent.len());
}

#[test]
fn provider_errors_are_clear_and_never_show_the_key() {
    let (base, server) = serve_once(
        401,
        "application/json",
        br#"{"error":{"message":"Incorrect API key provided","type":"invalid_request_error"}}"#
            .to_vec(),
    );
    let err = OpenAiStt::new(config(&base, "whisper-1"))
        .transcribe(&Clip::silence(0.5, 16_000))
        .unwrap_err();
    server.join().unwrap();
    let msg = err.to_string();
    assert!(matches!(err, SpeechError::Engine { .. }));
    assert!(
        msg.contains("401")
            && msg.contains("Incorrect API key")
            && msg.contains("API key variable"),
        "{msg}"
    );
    assert!(!msg.contains("sk-test-secret"));
    assert!(!format!("{:?}", config(&base, "m")).contains("sk-test-secret"));

    // Nothing listening: unreachable, with the URL.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let err = OpenAiTts::new(config(&format!("http://127.0.0.1:{port}/v1"), "tts-1"))
        .synthesize("hi", &Voice::default())
        .unwrap_err();
    assert!(matches!(err, SpeechError::Unreachable { .. }), "{err}");
    assert!(err.to_string().contains(&format!("127.0.0.1:{port}")));
}

#[test]
fn piper_speaks_deterministically_and_whisper_understands_it() {
    let piper = voicesim::speech::Piper::load_default().expect("Piper voice; run `make setup`");
    let text = "Hi, I'd like to cancel my subscription. Can you help me?";
    let clip = piper.synthesize(text, &Voice::default()).unwrap();
    assert_eq!(clip.rate, 22_050);
    assert!(
        clip.duration() > 2.0 && clip.rms_dbfs() > -35.0,
        "{} s, {} dBFS",
        clip.duration(),
        clip.rms_dbfs()
    );
    assert_eq!(
        piper.synthesize(text, &Voice::default()).unwrap(),
        clip,
        "noise scales are 0: same text, same audio"
    );
    let slow = piper
        .synthesize(
            text,
            &Voice {
                rate_wpm: Some(120),
                ..Voice::default()
            },
        )
        .unwrap();
    assert!(slow.duration() > clip.duration() * 1.2);
    let heard = whisper().transcribe(&clip).unwrap().text;
    assert!(wer(text, &heard) <= 0.1, "{heard}");
}

#[test]
fn a_missing_piper_voice_says_how_to_get_it() {
    let err = voicesim::speech::Piper::load(
        "/nonexistent/voice.onnx",
        voicesim::speech::Piper::default_runtime(),
    )
    .unwrap_err();
    assert!(matches!(err, SpeechError::Missing { .. }));
    assert!(err.to_string().contains("make setup"), "{err}");
}

/// The lines of the reference agent the example suite's checks read, said with each of the
/// agent's voices over an 8 kHz mu-law line, as a caller on Twilio hears them: the words the
/// checks look for come through.
#[test]
fn the_reference_agents_lines_come_through_a_phone_line_in_either_voice() {
    use voicesim::agent::Dialogue;
    use voicesim::audio::Encoding;
    let after = |first: &str, then: &str| {
        let mut d = Dialogue::new(false);
        d.reply(first);
        d.reply(then).text
    };
    let lines = [
        (Dialogue::new(false).greeting().text, vec!["order number"]),
        (
            Dialogue::new(false).reply("four five two one").text,
            vec!["shipped", "friday"],
        ),
        (
            Dialogue::new(false).reply("nine nine nine nine").text,
            vec!["find", "again"],
        ),
        (
            Dialogue::new(false).reply("a person please").text,
            vec!["transfer", "human", "goodbye"],
        ),
        (after("4521", "that's all, goodbye"), vec!["goodbye"]),
    ];
    let piper = voicesim::speech::Piper::load_default().expect("run `make setup`");
    let espeak = Espeak::new().unwrap();
    let voices: [(&str, &dyn Tts); 2] = [("espeak", &espeak), ("piper", &piper)];
    for (name, tts) in voices {
        let (mut said, mut all_heard) = (Vec::new(), Vec::new());
        for (line, words) in &lines {
            let clip = tts.synthesize(line, &Voice::default()).unwrap();
            let narrow = clip.resample(8_000).unwrap();
            let wire = Encoding::Mulaw.decode(&Encoding::Mulaw.encode(&narrow.samples));
            let heard = whisper().transcribe(&Clip::new(wire, 8_000)).unwrap().text;
            said.push(line.clone());
            all_heard.push(heard.clone());
            let heard = voicesim::speech::wer::normalize(&heard);
            for word in words {
                assert!(
                    format!(" {heard} ").contains(&format!(" {word} ")),
                    "{name} said {line:?}, heard {heard:?}: no {word:?}"
                );
            }
        }
        // docs/speech.md's figure for each agent voice (`-- --nocapture` shows it).
        eprintln!(
            "{name}: WER {:.1}% over the agent's lines on a clean 8 kHz line",
            wer(&said.join(" "), &all_heard.join(" ")) * 100.0
        );
    }
}
