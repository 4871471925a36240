//! The `voicesim` binary as a user runs it: outputs, messages and exit codes.

use std::path::Path;
use std::process::{Command, Output};

use voicesim::audio::{write_wav, Clip};

fn voicesim(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_voicesim"))
        .args(args)
        .output()
        .unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

const SPEECH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/audio/hts1a.wav");

#[test]
fn noise_mix_writes_the_noisy_call_at_the_requested_rate() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.wav");
    let o = voicesim(&[
        "noise",
        "mix",
        SPEECH,
        "--profile",
        "cafe",
        "--snr",
        "5",
        "--seed",
        "1",
        "-o",
        out.to_str().unwrap(),
        "--rate",
        "8000",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let clip = Clip::open(&out).unwrap();
    assert_eq!(clip.rate, 8000);
    // 0.5 s lead + 3 s speech (rounded up to whole frames) + 0.5 s tail.
    assert!((clip.duration() - 4.0).abs() < 0.03, "{}", clip.duration());
    let report = text(&o);
    assert!(
        report.contains("babble.wav at 5.0 dB SNR") && report.contains("measured SNR"),
        "{report}"
    );
    // The noise is there before the speech starts.
    assert!(voicesim::audio::level::rms(&clip.samples[..3000]) > 0.001);
}

#[test]
fn noise_mix_is_bit_identical_for_the_same_seed() {
    let dir = tempfile::tempdir().unwrap();
    let run = |name: &str, seed: &str| {
        let out = dir.path().join(name);
        let o = voicesim(&[
            "noise",
            "mix",
            SPEECH,
            "-p",
            "office",
            "--seed",
            seed,
            "-o",
            out.to_str().unwrap(),
        ]);
        assert!(o.status.success(), "{}", text(&o));
        std::fs::read(out).unwrap()
    };
    assert_eq!(run("a.wav", "7"), run("b.wav", "7"));
    assert_ne!(run("a.wav", "7"), run("c.wav", "8"));
}

#[test]
fn noise_mix_takes_a_profile_file() {
    let dir = tempfile::tempdir().unwrap();
    let noise = Clip::new(
        (0..16_000)
            .map(|i| ((i * 7919 % 200) as f32 / 100.0 - 1.0) * 0.3)
            .collect(),
        16_000,
    );
    write_wav(dir.path().join("hum.wav"), &[&noise]).unwrap();
    let profile = dir.path().join("mine.yaml");
    std::fs::write(
        &profile,
        "name: mine\nbackground:\n  - file: hum.wav\n    snr: 12\n",
    )
    .unwrap();
    let out = dir.path().join("out.wav");
    let o = voicesim(&[
        "noise",
        "mix",
        SPEECH,
        "--profile",
        profile.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("hum.wav at 12.0 dB SNR"), "{}", text(&o));
}

fn assert_bad_input(args: &[&str], must_mention: &[&str]) {
    let o = voicesim(args);
    assert_eq!(o.status.code(), Some(2), "{args:?}: {}", text(&o));
    let msg = text(&o);
    for m in must_mention {
        assert!(
            msg.contains(m),
            "{args:?}: message should mention {m:?}: {msg}"
        );
    }
    assert!(!msg.contains("panicked"), "{msg}");
}

#[test]
fn bad_input_exits_2_with_a_message_that_names_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    let d = |name: &str| dir.path().join(name).to_str().unwrap().to_string();
    std::fs::write(d("empty.wav"), b"").unwrap();
    std::fs::write(
        d("corrupt.wav"),
        b"RIFF\x10\x00\x00\x00WAVEfmt garbage here",
    )
    .unwrap();
    let out = d("out.wav");

    assert_bad_input(
        &["noise", "mix", &d("missing.wav"), "-p", "cafe", "-o", &out],
        &["missing.wav"],
    );
    assert_bad_input(
        &["noise", "mix", &d("empty.wav"), "-p", "cafe", "-o", &out],
        &["empty.wav", "no audio"],
    );
    assert_bad_input(
        &["noise", "mix", &d("corrupt.wav"), "-p", "cafe", "-o", &out],
        &["corrupt.wav"],
    );
    assert_bad_input(
        &["noise", "mix", SPEECH, "-p", "kitchen", "-o", &out],
        &["kitchen", "cafe", "street"],
    );
    assert_bad_input(
        &[
            "noise", "mix", SPEECH, "-p", "cafe", "--snr", "100", "-o", &out,
        ],
        &["--snr", "100"],
    );
    assert_bad_input(
        &[
            "noise", "mix", SPEECH, "-p", "cafe", "--rate", "1000", "-o", &out,
        ],
        &["--rate", "1000"],
    );
    assert_bad_input(
        &[
            "noise", "mix", SPEECH, "-p", "cafe", "--lead", "-1", "-o", &out,
        ],
        &["--lead"],
    );
    assert_bad_input(
        &[
            "noise",
            "mix",
            SPEECH,
            "-p",
            "cafe",
            "-o",
            &d("no/such/dir/out.wav"),
        ],
        &["out.wav"],
    );
    assert_bad_input(&["noise", "show", "kitchen"], &["kitchen"]);
    assert_bad_input(&["noise", "frobnicate"], &["frobnicate"]);
    assert!(!Path::new(&out).exists(), "no output on bad input");
}

#[test]
fn noise_list_names_every_bundled_profile() {
    let o = voicesim(&["noise", "list"]);
    assert!(o.status.success());
    for name in ["cafe", "street", "office", "car", "call-center"] {
        assert!(text(&o).contains(name), "{name}");
    }
}

#[test]
fn noise_show_prints_levels_and_placed_bursts() {
    let o = voicesim(&["noise", "show", "cafe", "--seed", "1", "--duration", "60"]);
    assert!(o.status.success(), "{}", text(&o));
    let s = text(&o);
    assert!(
        s.contains("babble.wav") && s.contains("dBFS RMS") && s.contains("19.50 s loop"),
        "{s}"
    );
    // The seed-1 door slams, as the timeline places them.
    assert!(s.contains("9.56 s  door.wav"), "{s}");
    let again = voicesim(&["noise", "show", "cafe", "--seed", "1", "--duration", "60"]);
    assert_eq!(o.stdout, again.stdout);
}

#[test]
fn tts_then_stt_round_trips_through_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let wav = dir.path().join("hello.wav");
    let cache = dir.path().join("cache");
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_voicesim"))
            .args(args)
            .env("VOICESIM_CACHE", &cache)
            // The model stays where `make setup` put it, wherever the TTS cache goes.
            .env(
                "VOICESIM_WHISPER_MODEL",
                voicesim::speech::Whisper::default_model(),
            )
            .output()
            .unwrap()
    };
    let o = run(&[
        "tts",
        "I want to check the status of my order.",
        "-o",
        wav.to_str().unwrap(),
        "--sample-rate",
        "16000",
        "--rate-wpm",
        "150",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(Clip::open(&wav).unwrap().rate, 16_000);
    assert_eq!(
        std::fs::read_dir(cache.join("tts")).unwrap().count(),
        1,
        "the clip is cached"
    );
    let o = run(&["stt", wav.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    let heard = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(
        voicesim::speech::wer::wer("I want to check the status of my order.", &heard) <= 0.2,
        "{heard}"
    );
    let o = run(&["stt", wav.to_str().unwrap(), "--json"]);
    let json: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(json["engine"], "whisper:ggml-tiny.en.bin");
    assert!(json["cpu_ms"].as_f64().unwrap() > 0.0 && json["audio_ms"].as_f64().unwrap() > 1000.0);
    assert!(json["confidence"].as_f64().unwrap() > 0.3);
    assert!(json["segments"].as_array().is_some_and(|s| !s.is_empty()));
}

#[test]
fn speech_commands_explain_missing_engines_and_bad_input() {
    let o = Command::new(env!("CARGO_BIN_EXE_voicesim"))
        .args(["stt", SPEECH])
        .env("VOICESIM_WHISPER_MODEL", "/nonexistent/model.bin")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("make setup"), "{}", text(&o));
    let o = Command::new(env!("CARGO_BIN_EXE_voicesim"))
        .args(["tts", "hello", "-o", "/tmp/x.wav"])
        .env("VOICESIM_ESPEAK", "/nonexistent/espeak-ng")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o).contains("apt-get install espeak-ng"),
        "{}",
        text(&o)
    );
    assert_bad_input(&["tts", "  ", "-o", "/tmp/x.wav"], &["empty"]);
    assert_bad_input(
        &["tts", "hi", "-o", "/tmp/x.wav", "--engine", "festival"],
        &["festival", "espeak"],
    );
    assert_bad_input(&["stt", "/nonexistent.wav"], &["nonexistent.wav"]);
    // A provider that is not there: exit 3.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let o = Command::new(env!("CARGO_BIN_EXE_voicesim"))
        .args(["stt", SPEECH, "--engine", "openai"])
        .env(
            "VOICESIM_STT_BASE_URL",
            format!("http://127.0.0.1:{port}/v1"),
        )
        .env("OPENAI_API_KEY", "sk-do-not-print")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    assert!(!text(&o).contains("sk-do-not-print"));
}

#[test]
fn demo_renders_every_profile_and_snr_and_reports_level_and_wer() {
    let dir = tempfile::tempdir().unwrap();
    let o = voicesim(&["demo", "--out", dir.path().to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout).to_string();
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        25,
        "5 profiles x 5 conditions"
    );
    for name in ["cafe", "call-center", "car", "office", "street"] {
        let row = out
            .lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("no {name} row: {out}"));
        let cells: Vec<&str> = row.split('%').collect();
        // clean, 20, 10, 5, 0 dB: five WER cells, the clean one good.
        assert_eq!(cells.len(), 6, "{row}");
        let clean_wer: f64 = cells[0].rsplit('/').next().unwrap().trim().parse().unwrap();
        assert!(clean_wer <= 20.0, "{row}");
    }
}

/// A free loopback port (bound, then released for the child to take).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Kills the child when the test ends, however it ends.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `voicesim agent` and waits for its "listening" line.
fn agent(args: &[&str]) -> (Child, String) {
    use std::io::BufRead;
    let port = free_port().to_string();
    let listen = format!("127.0.0.1:{port}");
    let mut child = Command::new(env!("CARGO_BIN_EXE_voicesim"))
        .args(["agent", "--listen", &listen])
        .args(args)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    assert!(first.contains(&listen), "{first}");
    (Child(child), format!("ws://{listen}/"))
}

#[test]
fn a_scripted_call_to_the_agent_command_is_recorded_and_exits_0() {
    let (_agent, url) = agent(&["--protocol", "raw-pcm"]);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("call");
    let o = voicesim(&[
        "call",
        &url,
        "--protocol",
        "raw-pcm",
        "--noise",
        "office",
        "--snr",
        "20",
        "--say",
        "Goodbye.",
        // Other tests run Whisper in other processes at the same time: slow, not silent.
        "--answer-timeout-s",
        "300",
        "--out",
        out.to_str().unwrap(),
    ]);
    let t = text(&o);
    assert_eq!(o.status.code(), Some(0), "{t}");
    assert!(t.contains("ended: the agent hung up"), "{t}");
    assert!(t.contains("agent turn 2: answered in"), "{t}");
    for file in ["call.wav", "events.jsonl", "call.json"] {
        assert!(out.join(file).is_file(), "{file}");
    }
}

#[test]
fn a_faulty_agent_makes_the_call_exit_1_with_the_fault_named() {
    let (_agent, url) = agent(&["--garbage"]);
    let dir = tempfile::tempdir().unwrap();
    let o = voicesim(&["call", &url, "--out", dir.path().to_str().unwrap()]);
    let t = text(&o);
    assert_eq!(o.status.code(), Some(1), "{t}");
    assert!(
        t.contains("FAULT: the call broke: twilio: media.payload is not base64"),
        "{t}"
    );
}

#[test]
fn call_and_agent_errors_have_their_exit_codes() {
    let port = free_port();
    let closed = format!("ws://127.0.0.1:{port}/");
    let o = voicesim(&["call", &closed, "--say", "hi"]);
    assert_eq!(o.status.code(), Some(3), "nobody listening: {}", text(&o));
    assert!(text(&o).contains(&format!("cannot connect to {closed}")));
    let o = voicesim(&["call", &closed, "--say", "  "]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).contains("--say: an empty line"));
    let o = voicesim(&["call", &closed, "--say", "@/no/such.wav"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).contains("/no/such.wav"));
    let o = voicesim(&["call", &closed, "--param", "novalue"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).contains("write KEY=VALUE"));
    let o = voicesim(&["agent", "--listen", "not-an-address"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("cannot listen on not-an-address"));
}
