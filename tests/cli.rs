//! The `voicesim` binary as a user runs it: outputs, messages and exit codes.

mod common;

use std::path::Path;
use std::process::Command;

use common::{agent, agent_with_env, free_port, suite_file, text, voicesim, Child};

use voicesim::audio::{write_wav, Clip};

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
            .env(
                "VOICESIM_PIPER_MODEL",
                voicesim::speech::Piper::default_model(),
            )
            .env(
                "VOICESIM_ONNXRUNTIME",
                voicesim::speech::Piper::default_runtime(),
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
fn demo_runs_the_example_suite_through_a_noise_sweep() {
    let dir = tempfile::tempdir().unwrap();
    // Two calls at a time, not the demo's three: the other CLI tests run beside it here, and a
    // lone call of theirs to a separate agent process once went unanswered on the busier box.
    let o = voicesim(&[
        "demo",
        "--out",
        dir.path().to_str().unwrap(),
        "--parallel",
        "2",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout).to_string();
    let results = std::fs::read_to_string(dir.path().join("results.jsonl")).unwrap();
    // Passed, failed and LLM-judged calls, for `make test`'s check of results lines against
    // the published schema (scripts/test-docs.sh).
    std::fs::write(
        Path::new(env!("CARGO_TARGET_TMPDIR")).join("results-demo.jsonl"),
        &results,
    )
    .unwrap();
    assert_eq!(
        results.lines().count(),
        17,
        "3 scripted tests x 5 conditions, the LLM-played test clean and at 20 dB"
    );
    assert!(dir.path().join("junit.xml").is_file());
    let report = dir.path().join("report.html");
    assert!(
        out.trim_end()
            .ends_with(&format!("open the report: {}", report.display())),
        "{out}"
    );
    // The agent's hearing, known only to the demo, is in the results and the report's sweep.
    assert!(results.contains("\"wer\":"), "{results}");
    let page = std::fs::read_to_string(&report).unwrap();
    assert!(page.contains("agent&#39;s hearing WER") && page.contains("<polyline"));
    // The run's summary sets each test's noisy calls against its clean ones.
    assert!(
        out.contains("noise KPIs (vs clean: against the same test's clean calls):"),
        "{out}"
    );
    assert!(page.contains("<h2>Noise KPIs</h2>"), "no KPI section");
    // The sweep table: a row per condition, clean first, each with its pass count, WER and
    // noise KPIs.
    let table: Vec<&str> = out
        .lines()
        .skip_while(|l| !l.starts_with("condition "))
        .skip(1)
        .take(5)
        .collect();
    let conditions: Vec<&str> = table
        .iter()
        .map(|l| l.split_whitespace().next().unwrap())
        .collect();
    assert_eq!(
        conditions,
        ["clean", "cafe@20dB", "cafe@10dB", "cafe@5dB", "cafe@0dB"],
        "{out}"
    );
    for (i, row) in table.iter().enumerate() {
        let cells: Vec<&str> = row.split_whitespace().collect();
        let calls = if i < 2 { "/4" } else { "/3" };
        assert!(
            cells[1].ends_with(calls) && cells[8].ends_with(calls),
            "{row}"
        );
        assert!(cells[2].ends_with('%'), "{row}");
        // Its WER over clean's, unless clean heard every word.
        assert!(cells[3].ends_with('×') || cells[3] == "-", "{row}");
        // Each burst of the profile is one a false barge-in can be out of.
        assert!(cells[5].contains('/'), "{row}");
    }
    // The export has a row per test and condition with the KPIs beside clean.
    let exported = voicesim(&["export", dir.path().to_str().unwrap(), "--format", "json"]);
    let rows: serde_json::Value = serde_json::from_slice(&exported.stdout).unwrap();
    let conditions: Vec<&serde_json::Value> = rows
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["kind"] == "condition")
        .collect();
    assert_eq!(conditions.len(), 17, "{rows}");
    assert!(
        conditions
            .iter()
            .all(|r| r["no_answers"].is_u64() && r["abandoned"].is_u64()),
        "{rows}"
    );
    // On a clean line the agent meets every step, and the caller heard every agent turn as
    // it played just as it heard the whole turn. (Whether each call passes also depends on
    // this build keeping a person's reaction time on a shared machine: a debug build beside
    // other tests may not, and its timing verdicts are then not judged, never failed.)
    // The LLM's calls were played and judged by the local model, said once on stderr.
    assert!(
        text(&o).contains("LLM caller and judge: Qwen2.5"),
        "{}",
        text(&o)
    );
    for call in results
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
    {
        let verdicts = call["expectations"].as_array().unwrap().iter();
        if call["test"] == "order-status-llm" {
            assert!(
                verdicts
                    .map(|e| &e["verdict"])
                    .all(|v| v == "met" || v == "not_met"),
                "the LLM judge gave a verdict: {call}"
            );
        } else if call["condition"]["profile"] == "clean" {
            assert!(
                call["outcome"] == "passed" || call["outcome"] == "not_judged",
                "{call}"
            );
            assert!(
                verdicts.map(|e| &e["verdict"]).all(|v| v != "not_met"),
                "{call}"
            );
            // Every step met, and every agent turn heard as it played as it was heard whole.
            let steps = call["steps"].as_array().unwrap();
            assert!(steps.iter().all(|s| s["verdict"] == "met"), "{call}");
            assert_eq!(call["metrics"]["hearing_drift"], 0.0, "{call}");
        }
    }
}

#[test]
fn a_scripted_call_to_the_agent_command_is_recorded_and_exits_0() {
    let (the_agent, url) = agent(&["--protocol", "raw-pcm"]);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("call");
    let o = voicesim(&[
        "call",
        &url,
        "--protocol",
        "raw-pcm",
        // Car noise has no bursts: where the one short line lands depends on the wall clock,
        // and a keyboard burst on top of it can leave the agent hearing no words at all.
        "--noise",
        "car",
        "--snr",
        "20",
        // A line with more than one way to say "done": a CI machine starved by the LLM tests
        // beside it once had the agent hear a lone espeak "Goodbye." as something else. The
        // agent's energy endpointer takes Piper's quick "Goodbye." in noise for a noise (its
        // "Good" under the 120 ms that start an utterance): this call is about the recording.
        "--say",
        "That is all, thank you. Goodbye.",
        "--tts",
        "espeak",
        // Other tests run Whisper in other processes at the same time: slow, not silent.
        "--answer-timeout-s",
        "300",
        "--out",
        out.to_str().unwrap(),
    ]);
    // What the call did, frame by frame, and what the agent heard, for a failure's message.
    let t = format!(
        "{}\nevents.jsonl:\n{}\nthe agent:\n{}",
        text(&o),
        std::fs::read_to_string(out.join("events.jsonl")).unwrap_or_default(),
        the_agent.log()
    );
    assert_eq!(o.status.code(), Some(0), "{t}");
    assert!(t.contains("ended: the agent hung up"), "{t}");
    assert!(t.contains("agent turn 2: answered in"), "{t}");
    for file in ["call.wav", "events.jsonl", "call.json"] {
        assert!(out.join(file).is_file(), "{file}");
    }
}

/// A bug in the reference agent while it works out a reply ends that call with the bug named,
/// instead of leaving the caller to wait on an agent that will never answer.
#[test]
fn a_panic_in_the_agent_ends_its_call_with_the_bug_named() {
    let (the_agent, url) = agent_with_env(
        &["--protocol", "raw-pcm", "--tts", "espeak"],
        &[("VOICESIM_TEST_AGENT_PANIC", "order")],
    );
    let dir = tempfile::tempdir().unwrap();
    let o = voicesim(&[
        "call",
        &url,
        "--protocol",
        "raw-pcm",
        "--say",
        "Where is my order?",
        "--tts",
        "espeak",
        "--max-duration-s",
        "120",
        "--out",
        dir.path().to_str().unwrap(),
    ]);
    let t = text(&o);
    assert_eq!(
        o.status.code(),
        Some(1),
        "{t}\nthe agent:\n{}",
        the_agent.log()
    );
    assert!(
        t.contains("FAULT: the call broke: the agent closed the call as failed (1011: the agent failed to work out a reply)"),
        "{t}"
    );
    // The agent's line for the call comes once the call is over on its side.
    let log = (0..100)
        .map(|_| {
            std::thread::sleep(std::time::Duration::from_millis(100));
            the_agent.log()
        })
        .find(|log| log.contains("call failed"))
        .unwrap_or_else(|| the_agent.log());
    assert!(
        log.contains("call failed: the reference agent failed inside (a bug; please report it): deliberate panic on hearing")
            && log.contains("src/agent/mod.rs:"),
        "needs `--features test-hooks`, which `make test` turns on: {log}"
    );
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

const ONE_CALL: &str = "name: cli\nstop: { answer_timeout_seconds: 300 }\ntests:\n  - name: status\n    steps:\n      - goal: Ask about order 4521\n        static_utterance: My order number is four five two one.\n        check: { contains: friday }\n        max_turns: 1\n";

#[test]
fn run_exits_0_when_every_call_passes_and_1_when_one_fails() {
    for (fault, code) in [(None, 0), (Some("--mishear"), 1)] {
        let (_agent, url) = agent(fault.as_slice());
        let dir = tempfile::tempdir().unwrap();
        let suite = suite_file(dir.path(), "suite", ONE_CALL);
        let out = dir.path().join("out");
        let o = voicesim(&[
            "run",
            &suite,
            "--agent",
            &url,
            "--out",
            out.to_str().unwrap(),
        ]);
        let t = text(&o);
        assert_eq!(o.status.code(), Some(code), "{fault:?}: {t}");
        assert!(t.contains("status  clean"), "{t}");
        let junit = std::fs::read_to_string(out.join("junit.xml")).unwrap();
        assert!(junit.contains(&format!("failures=\"{code}\"")), "{junit}");
        assert_eq!(
            std::fs::read_to_string(out.join("results.jsonl"))
                .unwrap()
                .lines()
                .count(),
            1
        );
        assert!(out.join("calls/status/clean/run-1/call.wav").is_file());
    }
}

/// `run --list` prints the calls a run would make, calling no one; `--only` keeps tests and
/// conditions as reports name them, `--noise` replaces the suite's conditions; names the suite
/// lacks are errors that list what it has.
#[test]
fn run_list_only_and_noise_pick_the_calls() {
    let suite = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/orders.yaml");
    let suite = suite.to_str().unwrap();
    let calls = |args: &[&str]| -> Vec<String> {
        let o = voicesim(&[&["run", suite, "--list"], args].concat());
        assert_eq!(o.status.code(), Some(0), "{}", text(&o));
        String::from_utf8_lossy(&o.stdout)
            .lines()
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).unwrap();
                format!(
                    "{}/{}/{}",
                    v["test"].as_str().unwrap(),
                    v["label"].as_str().unwrap(),
                    v["run"]
                )
            })
            .collect()
    };
    assert_eq!(
        calls(&[
            "--only",
            "order-status-llm/cafe@20dB",
            "--only",
            "unknown-order"
        ]),
        ["unknown-order/clean/1", "order-status-llm/cafe@20dB/1"]
    );
    assert_eq!(
        calls(&[
            "--noise",
            "clean,cafe@10",
            "--only",
            "human-handoff",
            "--runs",
            "2"
        ]),
        [
            "human-handoff/clean/1",
            "human-handoff/clean/2",
            "human-handoff/cafe@10dB/1",
            "human-handoff/cafe@10dB/2"
        ]
    );
    for (args, says) in [
        (
            &["--only", "nope"][..],
            "--only nope: the suite has no test \"nope\" (defined: order-status,",
        ),
        (
            &["--only", "order-status/cafe@20dB"],
            "test order-status runs under no condition \"cafe@20dB\" (it runs under clean)",
        ),
        (&["--noise", "kitchen"], "unknown noise profile \"kitchen\""),
        (
            &["--noise", "cafe@loud"],
            "--noise cafe@loud: \"loud\" is not an SNR in dB",
        ),
    ] {
        let o = voicesim(&[&["run", suite, "--list"], args].concat());
        assert_eq!(o.status.code(), Some(2), "{}", text(&o));
        assert!(text(&o).contains(says), "{}", text(&o));
    }
}

#[test]
fn run_and_validate_errors_have_their_exit_codes() {
    let dir = tempfile::tempdir().unwrap();
    let suite = suite_file(dir.path(), "suite", ONE_CALL);
    let o = voicesim(&["validate", &suite]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(text(&o).contains("ok: 1 test, 1 call per run"));
    // Noise profiles too, told apart by their fields, several files at once.
    let cafe = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/noise/cafe.yaml");
    let o = voicesim(&["validate", &suite, cafe]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(text(&o).contains("cafe.yaml: ok: noise profile, 1 background layer, 2 bursts"));
    let missing = dir.path().join("room.yaml");
    std::fs::write(
        &missing,
        "name: room\nbackground: [{ file: room.wav, snr: 10 }]\n",
    )
    .unwrap();
    let o = voicesim(&["validate", cafe, missing.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("room.wav"), "{}", text(&o));

    let closed = format!("ws://127.0.0.1:{}/", free_port());
    let o = voicesim(&[
        "run",
        &suite,
        "--agent",
        &closed,
        "--out",
        dir.path().join("o").to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    assert!(text(&o).contains("cannot connect"), "{}", text(&o));

    let o = voicesim(&["run", &suite]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).contains("no agent to call: pass --agent"));

    let bad = suite_file(
        dir.path(),
        "bad",
        &ONE_CALL.replace("max_turns: 1", "max_turns: 99"),
    );
    for command in ["validate", "run"] {
        let o =
            voicesim(&[command, &bad, "--agent", &closed][..if command == "run" { 4 } else { 2 }]);
        assert_eq!(o.status.code(), Some(2), "{}", text(&o));
        assert!(
            text(&o).contains(&format!(
                "{bad}:6:9: tests[0].steps[0]: max_turns must be 1..=50, not 99"
            )),
            "{}",
            text(&o)
        );
    }

    let unspoken = suite_file(
        dir.path(),
        "unspoken",
        "name: x\ntests:\n  - name: t\n    steps: [ { goal: Ask } ]\n",
    );
    // It needs an LLM caller; without the model, the run stops before its first call.
    let none = dir.path().join("none.gguf");
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_voicesim"))
        .args(["run", &unspoken, "--agent", &closed])
        .env("VOICESIM_LLM_MODEL_FILE", &none)
        .env_remove("VOICESIM_LLM_BASE_URL")
        .env_remove("VOICESIM_LLM_MODEL")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains(&format!(
            "LLM model {}: no model file there; run `voicesim setup`",
            none.display()
        )),
        "{}",
        text(&o)
    );

    let o = voicesim(&[
        "run",
        &suite,
        "--agent",
        &closed,
        "--tags",
        "nope",
        "--out",
        dir.path().join("t").to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o).contains("no test carries the tags nope"),
        "{}",
        text(&o)
    );
    assert!(
        !dir.path().join("t").exists(),
        "a run that cannot start leaves no output behind"
    );
}

/// Starts `voicesim ARGS` in the background, its output thrown away.
fn spawn(args: &[&str]) -> Child {
    Child(
        Command::new(env!("CARGO_BIN_EXE_voicesim"))
            .args(args)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    )
}

/// Waits until `results` has `n` lines (ten minutes at most).
fn wait_for_lines(results: &Path, n: usize) {
    let started = std::time::Instant::now();
    while std::fs::read_to_string(results)
        .unwrap_or_default()
        .lines()
        .count()
        < n
    {
        assert!(
            started.elapsed().as_secs() < 600,
            "{n} calls never finished"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// ONE_CALL and a second test that says the order number and waits for `word`.
fn and_test(name: &str, word: &str, max_turns: u32) -> String {
    format!(
        "{ONE_CALL}  - name: {name}\n    steps:\n      - goal: Ask\n        static_utterance: \
         Order four five two one.\n        check: {{ contains: {word} }}\n        max_turns: {max_turns}\n"
    )
}

/// `voicesim` with `args` to the end, a test hook's variable set.
fn voicesim_with_hook(args: &[&str], hook: (&str, &str)) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_voicesim"))
        .args(args)
        .env(hook.0, hook.1)
        .output()
        .unwrap()
}

/// `voicesim run SUITE --agent URL --out OUT` with a test hook's variable set.
fn run_with_hook(suite: &str, url: &str, out: &Path, hook: (&str, &str)) -> std::process::Output {
    let out = out.to_str().unwrap();
    voicesim_with_hook(&["run", suite, "--agent", url, "--out", out], hook)
}

#[test]
fn a_run_where_voicesim_itself_was_late_says_so_with_the_figures() {
    let (_agent, url) = agent(&[]);
    let dir = tempfile::tempdir().unwrap();
    let suite = suite_file(dir.path(), "suite", ONE_CALL);
    let out = dir.path().join("out");
    // The hook blocks the runtime 400 ms into the call, as a machine too busy would.
    let o = run_with_hook(&suite, &url, &out, ("VOICESIM_TEST_STALL_MS", "400"));
    let t = text(&o);
    let result = &json_lines(&out.join("results.jsonl"))[0];
    let slip = result["metrics"]["send_slip_max_ms"].as_f64();
    assert!(
        slip.is_some_and(|ms| ms >= 400.0),
        "the stall in the call's own figures (needs `--features test-hooks`): {result}"
    );
    assert!(
        t.contains("warning: voicesim itself was late in 1 of 1 calls")
            && t.contains("lower --parallel or give voicesim more CPU"),
        "{t}"
    );
}

/// `--parallel auto` starts one call at a time and goes up while voicesim keeps its timing.
#[test]
fn parallel_auto_finds_its_level_and_a_bad_value_is_refused() {
    let (_agent, url) = agent(&[]);
    let dir = tempfile::tempdir().unwrap();
    let suite = suite_file(
        dir.path(),
        "suite",
        &ONE_CALL.replace("tests:", "runs: 3\ntests:"),
    );
    let out = dir.path().join("out");
    let run = |parallel: &str| {
        voicesim(&[
            "run",
            &suite,
            "--agent",
            &url,
            "--parallel",
            parallel,
            "--out",
            out.to_str().unwrap(),
        ])
    };
    let o = run("auto");
    let t = text(&o);
    assert_eq!(o.status.code(), Some(0), "{t}");
    assert!(
        t.contains("--parallel auto: ") && t.contains("calls at once at the end"),
        "{t}"
    );
    assert_eq!(json_lines(&out.join("results.jsonl")).len(), 3);
    let o = run("lots");
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains("give a number of calls (1 or more) or `auto`"),
        "{}",
        text(&o)
    );
}

/// A caller whose speech recognizer is slow answers late: the agent is not failed on the
/// timing that lateness moved, nor passed; what the words decide is still decided.
#[test]
fn a_caller_that_answered_late_leaves_the_timing_verdicts_not_judged_with_the_reason() {
    let (_agent, url) = agent(&[]);
    let dir = tempfile::tempdir().unwrap();
    let timed = format!(
        "{ONE_CALL}    expectations:\n      - name: quick\n        check: {{ metric: \"latency_p95_ms < 60000\" }}\n      - name: talked\n        check: {{ metric: \"turns >= 2\" }}\n"
    );
    let suite = suite_file(dir.path(), "suite", &timed);
    let out = dir.path().join("out");
    let o = run_with_hook(&suite, &url, &out, ("VOICESIM_TEST_STT_DELAY_MS", "2500"));
    let t = text(&o);
    let result = &json_lines(&out.join("results.jsonl"))[0];
    let reaction = &result["reactions"][0];
    assert!(
        reaction["late_ms"].as_f64().is_some_and(|ms| ms > 1000.0)
            && reaction["stt_ms"].as_f64().is_some_and(|ms| ms >= 2500.0),
        "the late answer and where the time went (needs `--features test-hooks`): {result}"
    );
    let verdict = |name: &str| {
        result["expectations"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["name"] == name)
            .unwrap()
            .clone()
    };
    assert_eq!(verdict("quick")["verdict"], "not_judged", "{result}");
    assert!(
        verdict("quick")["justification"]
            .as_str()
            .unwrap()
            .contains("the caller spoke"),
        "{result}"
    );
    assert_eq!(verdict("talked")["verdict"], "met", "{result}");
    assert_eq!(result["outcome"], "not_judged", "{result}");
    assert!(
        t.contains("warning: voicesim itself was late in 1 of 1 calls"),
        "{t}"
    );
}

#[test]
fn a_panic_in_one_call_is_its_error_the_run_goes_on_and_exits_4() {
    let (_agent, url) = agent(&[]);
    let dir = tempfile::tempdir().unwrap();
    let suite = suite_file(dir.path(), "suite", &and_test("boom", "friday", 1));
    let out = dir.path().join("out");
    let o = run_with_hook(&suite, &url, &out, ("VOICESIM_TEST_PANIC", "boom"));
    let t = text(&o);
    assert_eq!(
        o.status.code(),
        Some(4),
        "an internal error (this test needs `--features test-hooks`, which `make test` turns on): {t}"
    );
    assert!(
        t.contains("ERROR boom [clean] #1: voicesim failed inside this call (a bug; please report it): deliberate panic"),
        "{t}"
    );
    assert!(
        t.contains("src/sim/steps.rs:"),
        "the place of the panic: {t}"
    );
    let results = std::fs::read_to_string(out.join("results.jsonl")).unwrap();
    let lines: Vec<serde_json::Value> = results
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2, "{results}");
    let by_test = |name: &str| lines.iter().find(|l| l["test"] == name).unwrap();
    assert_eq!(by_test("status")["outcome"], "passed");
    assert_eq!(by_test("boom")["outcome"], "error");
    assert!(by_test("boom")["panic"]["location"]
        .as_str()
        .unwrap()
        .starts_with("src/sim/steps.rs:"));
    let junit = std::fs::read_to_string(out.join("junit.xml")).unwrap();
    assert!(junit.contains("deliberate panic"), "{junit}");
    assert!(
        out.join("calls/boom/clean/run-1/call.wav").is_file(),
        "the call up to the panic is kept"
    );
}

#[test]
fn an_interrupted_run_keeps_every_finished_call() {
    let (_agent, url) = agent(&[]);
    let dir = tempfile::tempdir().unwrap();
    // The second test never meets its step, so the run is still busy when it is interrupted.
    let suite = suite_file(dir.path(), "suite", &and_test("endless", "zebra", 50));
    let out = dir.path().join("out");
    let out_s = out.to_str().unwrap();
    let mut run = spawn(&[
        "run",
        &suite,
        "--agent",
        &url,
        "--parallel",
        "1",
        "--out",
        out_s,
    ]);
    let results = out.join("results.jsonl");
    let lines = || std::fs::read_to_string(&results).unwrap_or_default();
    wait_for_lines(&results, 1);
    // Ctrl-C.
    let pid = run.0.id().to_string();
    assert!(Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .unwrap()
        .success());
    let status = run.0.wait().unwrap();
    assert!(!status.success(), "interrupted mid-call: {status:?}");
    let kept = lines();
    assert_eq!(kept.lines().count(), 1, "{kept}");
    let line: serde_json::Value = serde_json::from_str(kept.lines().next().unwrap()).unwrap();
    assert_eq!(line["test"], "status");
    assert_eq!(line["outcome"], "passed");
    assert!(out.join("calls/status/clean/run-1/call.wav").is_file());
}

#[test]
fn a_killed_run_resumes_without_redoing_or_losing_a_call() {
    let (_agent, url) = agent(&[]);
    let dir = tempfile::tempdir().unwrap();
    let yaml = format!("{ONE_CALL}runs: 4\n");
    let suite = suite_file(dir.path(), "suite", &yaml);
    let out = dir.path().join("out");
    let out_s = out.to_str().unwrap();
    let args = [
        "run",
        &suite,
        "--agent",
        &url,
        "--parallel",
        "1",
        "--out",
        out_s,
    ];
    let mut run = spawn(&args);
    let results = out.join("results.jsonl");
    let lines = || std::fs::read_to_string(&results).unwrap_or_default();
    wait_for_lines(&results, 2);
    // kill -9: no handler runs.
    run.0.kill().unwrap();
    run.0.wait().unwrap();
    let finished = lines();
    let done = finished.lines().count();
    assert!((2..4).contains(&done), "{finished}");
    // And a crash mid-write leaves half a line.
    std::fs::write(&results, format!("{finished}{{\"suite\":\"cli\",\"te")).unwrap();

    let o = voicesim(&args);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("holds an earlier run"), "{}", text(&o));
    assert!(text(&o).contains("--resume"), "{}", text(&o));
    // A changed suite is not resumed.
    let changed = suite_file(dir.path(), "changed", &yaml.replace("friday", "Friday"));
    let o = voicesim(&["run", &changed, "--agent", &url, "--out", out_s, "--resume"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("suite_sha256"), "{}", text(&o));

    let o = voicesim(&[&args[..], &["--resume"]].concat());
    let t = text(&o);
    assert_eq!(o.status.code(), Some(0), "{t}");
    assert!(t.contains("cut off by a crash"), "{t}");
    assert!(t.contains(&format!("{done} calls already finished")), "{t}");
    let after = lines();
    assert!(
        after.starts_with(&finished),
        "finished calls are kept as they were"
    );
    let runs: Vec<u64> = after
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["run"]
                .as_u64()
                .unwrap()
        })
        .collect();
    let mut sorted = runs.clone();
    sorted.sort();
    assert_eq!(sorted, [1, 2, 3, 4], "each call once: {runs:?}");
    let junit = std::fs::read_to_string(out.join("junit.xml")).unwrap();
    assert!(junit.contains("tests=\"4\""), "{junit}");

    // --overwrite starts again: one call of another suite, nothing of the old run left; with
    // the finished run as its baseline (latency is not what this test is about).
    let baseline = dir.path().join("baseline.jsonl");
    std::fs::copy(&results, &baseline).unwrap();
    let o = voicesim(&[
        "run",
        &changed,
        "--agent",
        &url,
        "--out",
        out_s,
        "--overwrite",
        "--runs",
        "1",
        "--baseline",
        baseline.to_str().unwrap(),
        "--max-latency-increase-ms",
        "100000",
    ]);
    let t = text(&o);
    assert_eq!(o.status.code(), Some(0), "{t}");
    assert!(t.contains("4/4 → 1/1"), "{t}");
    assert_eq!(lines().lines().count(), 1);
    assert!(!out.join("calls/status/clean/run-2").exists());
    let page = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(page.contains("Compared with the baseline") && page.contains("was 4/4"));
}

/// (test, condition, run, seed, call id) of every call in a results folder, sorted.
fn calls_in(out: &Path) -> Vec<(String, String, u64, u64, String)> {
    let mut calls: Vec<_> = std::fs::read_to_string(out.join("results.jsonl"))
        .unwrap_or_default()
        .lines()
        .map(|l| {
            let r: serde_json::Value = serde_json::from_str(l).unwrap();
            (
                r["test"].as_str().unwrap().to_string(),
                r["condition"]["profile"].to_string() + &r["condition"]["snr"].to_string(),
                r["run"].as_u64().unwrap(),
                r["seed"].as_u64().unwrap(),
                r["call_id"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    calls.sort();
    calls
}

#[test]
fn a_run_spread_over_shards_merges_into_the_whole_run_call_by_call() {
    let (_agent, url) = agent(&[]);
    let dir = tempfile::tempdir().unwrap();
    // Two tests, two runs each: four calls.
    let yaml = format!("{}runs: 2\n", and_test("second", "friday", 1));
    let suite = suite_file(dir.path(), "suite", &yaml);
    let path = |name: &str| dir.path().join(name).to_str().unwrap().to_string();
    let run = |out: &str, extra: &[&str]| {
        let mut args = vec![
            "run",
            &suite,
            "--agent",
            &url,
            "--out",
            out,
            "--parallel",
            "3",
        ];
        args.extend_from_slice(extra);
        voicesim(&args)
    };
    let whole = run(&path("whole"), &[]);
    assert_eq!(whole.status.code(), Some(0), "{}", text(&whole));
    let expected = calls_in(&dir.path().join("whole"));
    assert_eq!(expected.len(), 4);

    // Three machines, at the same time.
    let shards: Vec<String> = (1..=3).map(|k| path(&format!("shard-{k}"))).collect();
    std::thread::scope(|s| {
        let running: Vec<_> = shards
            .iter()
            .enumerate()
            .map(|(i, out)| {
                let shard = format!("{}/3", i + 1);
                let run = &run;
                s.spawn(move || (run(out, &["--shard", &shard]), shard))
            })
            .collect();
        for r in running {
            let (o, shard) = r.join().unwrap();
            assert_eq!(o.status.code(), Some(0), "shard {shard}: {}", text(&o));
        }
    });
    let sizes: Vec<usize> = shards
        .iter()
        .map(|s| calls_in(Path::new(s)).len())
        .collect();
    assert_eq!(sizes, [2, 1, 1], "dealt round-robin");

    let merged = path("merged");
    let mut args = vec!["merge", "-o", &merged];
    args.extend(shards.iter().map(String::as_str));
    let o = voicesim(&args);
    let t = text(&o);
    assert_eq!(o.status.code(), Some(0), "{t}");
    assert!(t.contains("4/4 calls passed"), "{t}");
    // The same calls with the same seeds as the whole run, each once, each with its recording.
    assert_eq!(calls_in(Path::new(&merged)), expected);
    let merged_dir = Path::new(&merged);
    assert!(merged_dir
        .join("calls/second/clean/run-2/call.wav")
        .is_file());
    assert!(merged_dir
        .join("calls/status/clean/run-2/call.wav")
        .is_file());
    let junit = std::fs::read_to_string(merged_dir.join("junit.xml")).unwrap();
    assert!(junit.contains("tests=\"4\""), "{junit}");
    assert!(merged_dir.join("report.html").is_file());
    // Read like any other run: the merged run and the whole one differ in nothing judged.
    let o = voicesim(&[
        "diff",
        &path("whole"),
        &merged,
        "--max-latency-increase-ms",
        "100000",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));

    // A shard missing: refused, or merged with --partial; the merged folder's plan is the
    // whole run's, so --resume makes exactly the missing calls, with their own seeds.
    let o = voicesim(&["merge", "-o", &path("part"), &shards[0], &shards[2]]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("shard 2/3 missing"), "{}", text(&o));
    let o = voicesim(&[
        "merge",
        "--partial",
        "-o",
        &path("part"),
        &shards[0],
        &shards[2],
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(text(&o).contains("3 of its 4 calls"), "{}", text(&o));
    let o = run(&path("part"), &["--resume"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(
        text(&o).contains("3 calls already finished, 1 to make"),
        "{}",
        text(&o)
    );
    assert_eq!(calls_in(&dir.path().join("part")), expected);

    // Not slices of one run: another seed, a shard given twice, a whole run, a bad K/N.
    let other = path("other-seed");
    std::fs::create_dir(&other).unwrap();
    let plan = std::fs::read_to_string(Path::new(&shards[1]).join("run.json")).unwrap();
    assert!(plan.contains("\"seed\": 1,"), "{plan}");
    std::fs::write(
        Path::new(&other).join("run.json"),
        plan.replace("\"seed\": 1,", "\"seed\": 9,"),
    )
    .unwrap();
    for (shards, says) in [
        (
            vec![shards[0].as_str(), &other],
            "not a shard of the same run",
        ),
        (vec![shards[0].as_str(), &shards[0]], "give each shard once"),
        (
            vec![shards[0].as_str(), &path("whole")],
            "holds a whole run",
        ),
    ] {
        let mut args = vec!["merge", "-o", "never"];
        args.extend(shards);
        let o = voicesim(&args);
        assert_eq!(o.status.code(), Some(2), "{}", text(&o));
        assert!(text(&o).contains(says), "{says}: {}", text(&o));
    }
    for bad in ["0/3", "4/3", "two"] {
        let o = run(&path("never"), &["--shard", bad]);
        assert_eq!(o.status.code(), Some(2), "{bad}: {}", text(&o));
        assert!(text(&o).contains("K/N"), "{}", text(&o));
    }
    let o = run(&path("never"), &["--shard", "7/7"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("holds no calls"), "{}", text(&o));
    assert!(!Path::new("never").exists());
}

/// Runs `script` with sh in `env`, the voicesim under test first on PATH.
fn sh(script: &str, env: &[(&str, String)]) -> std::process::Output {
    let bin = Path::new(env!("CARGO_BIN_EXE_voicesim")).parent().unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    Command::new("sh")
        .args(["-c", script])
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .env("PATH", path)
        .output()
        .unwrap()
}

/// Runs `script` once per shard, all at once as a cluster would, JOB_COMPLETION_INDEX set.
fn run_shards(script: &str, shards: u32, env: &[(&str, String)]) {
    std::thread::scope(|s| {
        let running: Vec<_> = (0..shards)
            .map(|index| {
                s.spawn(move || {
                    let mut env = env.to_vec();
                    env.push(("JOB_COMPLETION_INDEX", index.to_string()));
                    let o = sh(script, &env);
                    assert!(o.status.success(), "index {index}: {script}\n{}", text(&o));
                })
            })
            .collect();
        for r in running {
            r.join().unwrap();
        }
    });
}

#[test]
fn the_kubernetes_and_github_actions_examples_run_a_sharded_run_and_merge_it() {
    use serde_json::Value;
    let deploy = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy");
    let yaml = |name: &str| -> Vec<Value> {
        let text = std::fs::read_to_string(deploy.join(name)).unwrap();
        text.split("\n---")
            .map(|doc| serde_norway::from_str(doc).unwrap())
            .collect()
    };
    let (_agent, url) = agent(&[]);
    let dir = tempfile::tempdir().unwrap();
    // One call fails (the agent never says "tuesday"): shards still complete, the merge fails.
    let suite = suite_file(
        dir.path(),
        "suite",
        &format!("{}runs: 2\n", and_test("second", "tuesday", 1)),
    );
    let results = dir.path().join("results");

    // Kubernetes: the Indexed Job's own shell command, once per completion index.
    let job = &yaml("kubernetes-shards.yaml")[0];
    assert_eq!(job["spec"]["completionMode"], "Indexed");
    let completions = job["spec"]["completions"].as_u64().unwrap() as u32;
    let container = &job["spec"]["template"]["spec"]["containers"][0];
    let env_value = |c: &Value, name: &str| {
        c["env"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["name"] == name)
            .unwrap()["value"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert_eq!(env_value(container, "SHARDS"), completions.to_string());
    let script = container["args"][0].as_str().unwrap();
    let env = [
        ("AGENT_URL", url.clone()),
        ("SUITE", suite.clone()),
        ("RESULTS", results.to_str().unwrap().to_string()),
        ("SHARDS", env_value(container, "SHARDS")),
    ];
    run_shards(script, completions, &env);
    let merge = &yaml("kubernetes-merge.yaml")[0]["spec"]["template"]["spec"]["containers"][0];
    let o = sh(merge["args"][0].as_str().unwrap(), &env);
    let t = text(&o);
    assert_eq!(o.status.code(), Some(1), "the run had a failing call: {t}");
    assert!(t.contains(&format!("merged {completions} shards")), "{t}");
    assert!(t.contains("2/4 calls passed"), "{t}");
    assert!(results.join("merged/junit.xml").is_file());

    // GitHub Actions: one matrix entry per shard, and the shard step's script run for each.
    let flow = &yaml("github-actions-shards.yml")[0];
    let shards = flow["env"]["SHARDS"].as_u64().unwrap() as u32;
    let matrix: Vec<u64> = flow["jobs"]["shard"]["strategy"]["matrix"]["shard"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap())
        .collect();
    assert_eq!(matrix, (1..=shards as u64).collect::<Vec<_>>());
    let step = |job: &str, starts: &str| {
        flow["jobs"][job]["steps"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"].as_str().is_some_and(|n| n.starts_with(starts)))
            .unwrap()["run"]
            .as_str()
            .unwrap()
            .replace("./target/release/voicesim", "voicesim")
            .replace("examples/orders.yaml", &suite)
            .replace("${{ secrets.AGENT_URL }}", &url)
    };
    let gh = dir.path().join("gh");
    std::fs::create_dir(&gh).unwrap();
    let script = format!(
        "cd {} && shard=$((JOB_COMPLETION_INDEX + 1)) && {}",
        gh.display(),
        step("shard", "Run shard").replace("${{ matrix.shard }}", "$shard")
    );
    run_shards(&script, shards, &[("SHARDS", shards.to_string())]);
    let o = sh(
        &format!("cd {} && {}", gh.display(), step("merge", "Merge")),
        &[],
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("2/4 calls passed"), "{}", text(&o));
}

/// The lines of a JSON Lines file.
fn json_lines(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn a_load_run_ramps_calls_up_and_writes_its_figures_second_by_second() {
    let (_agent, url) = agent(&[]);
    let dir = tempfile::tempdir().unwrap();
    let suite = suite_file(dir.path(), "suite", ONE_CALL);
    let load = |out: &str, extra: &[&str]| {
        let mut args = vec!["load", &suite, "--agent", &url, "--out", out];
        args.extend_from_slice(extra);
        voicesim(&args)
    };
    // Ramp to 4 calls at once over 2 s, hold 2 s; every call transcribed and judged.
    let out = dir.path().join("ramp");
    let o = load(
        out.to_str().unwrap(),
        &[
            "--stage",
            "2s:4",
            "--stage",
            "2s:4",
            "--transcribe",
            "100%",
            "--stt-workers",
            "2",
        ],
    );
    let t = text(&o);
    assert!(matches!(o.status.code(), Some(0 | 1)), "{t}");
    let results = json_lines(&out.join("results.jsonl"));
    let seconds = json_lines(&out.join("timeseries.jsonl"));
    let started: u64 = seconds.iter().map(|s| s["started"].as_u64().unwrap()).sum();
    assert_eq!(
        started as usize,
        results.len(),
        "every call started has its result: {t}"
    );
    assert!(results.len() >= 4, "{t}");
    let peak = seconds.iter().map(|s| s["active"].as_u64().unwrap()).max();
    assert_eq!(peak, Some(4), "{seconds:?}");
    // The seconds follow each other, each with its concurrency, until the last call ended.
    for (i, s) in seconds.iter().enumerate() {
        assert_eq!(s["t"], i as u64 + 1);
    }
    assert_eq!(seconds.last().unwrap()["active"], 0);
    for r in &results {
        // Transcribed, the step is judged on the agent's words, met or not: never left open.
        assert_ne!(r["steps"][0]["verdict"], "not_judged", "{r}");
        // Recorded to disk as the call ran: both channels over the whole call, every event
        // logged up to the end, the waveform drawn from the file.
        let dir = Path::new(r["recording"].as_str().unwrap());
        let mut wav = hound::WavReader::open(dir.join("call.wav")).unwrap();
        let call: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.join("call.json")).unwrap()).unwrap();
        let frames = wav.duration() as f64;
        let duration_ms = call["duration_ms"].as_f64().unwrap();
        assert_eq!(wav.spec().channels, 2, "{r}");
        assert_eq!(frames * 1000.0 / wav.spec().sample_rate as f64, duration_ms);
        let samples: Vec<i16> = wav.samples::<i16>().map(Result::unwrap).collect();
        for channel in 0..2 {
            let peak = samples
                .iter()
                .skip(channel)
                .step_by(2)
                .map(|s| s.unsigned_abs())
                .max();
            assert!(peak > Some(1_000), "channel {channel} silent: {r}");
        }
        let log = std::fs::read_to_string(dir.join("events.jsonl")).unwrap();
        assert!(log.lines().last().unwrap().contains("\"ended\""), "{log}");
        assert!(log.contains("agent_started"), "{log}");
        assert!(dir.join("envelope.json").is_file());
        assert!(
            r["transcript"]
                .as_array()
                .unwrap()
                .iter()
                .any(|l| l["speaker"] == "agent"),
            "{r}"
        );
    }
    assert!(t.contains("latency p50/p95/p99"), "{t}");
    assert!(out.join("junit.xml").is_file());
    let page = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(page.contains("Load, second by second") && page.contains("calls up"));

    // Nothing transcribed: the word rule is not judged, never passed.
    let out = dir.path().join("deaf");
    let o = load(
        out.to_str().unwrap(),
        &["--stage", "1s:2", "--transcribe", "0"],
    );
    let t = text(&o);
    assert_eq!(o.status.code(), Some(0), "{t}");
    let results = json_lines(&out.join("results.jsonl"));
    assert!(!results.is_empty());
    for r in &results {
        assert_eq!(r["outcome"], "not_judged", "{r}");
        assert!(r["steps"][0]["justification"]
            .as_str()
            .unwrap()
            .contains("not transcribed"));
    }

    // Arrivals at random, at most 2 at once: the rest are refused at the door and counted.
    let out = dir.path().join("arrivals");
    let o = load(
        out.to_str().unwrap(),
        &[
            "--arrival-rate",
            "4",
            "--duration",
            "2s",
            "--max",
            "2",
            "--transcribe",
            "0",
        ],
    );
    let t = text(&o);
    assert_eq!(o.status.code(), Some(0), "{t}");
    let seconds = json_lines(&out.join("timeseries.jsonl"));
    assert!(
        seconds.iter().all(|s| s["active"].as_u64().unwrap() <= 2),
        "{seconds:?}"
    );
    let refused: u64 = seconds.iter().map(|s| s["refused"].as_u64().unwrap()).sum();
    let started: u64 = seconds.iter().map(|s| s["started"].as_u64().unwrap()).sum();
    assert!(refused > 0 && started >= 2, "{seconds:?}");
}

/// What a call leaves to do when it ends (its record, its result) is done where it cannot hold
/// up the calls still up: made slow by a hook, no other call sends a frame late.
#[test]
fn a_load_run_keeps_its_pace_however_slow_a_call_ending_is() {
    let (_agent, url) = agent(&[]);
    let dir = tempfile::tempdir().unwrap();
    let suite = suite_file(dir.path(), "suite", ONE_CALL);
    let out = dir.path().join("out");
    // Calls started 250 ms apart end apart, each while the others are still up.
    let o = voicesim_with_hook(
        &[
            "load",
            &suite,
            "--agent",
            &url,
            "--out",
            out.to_str().unwrap(),
            "--stage",
            "1s:4",
            "--stage",
            "1s:4",
            "--transcribe",
            "0",
        ],
        ("VOICESIM_TEST_SLOW_END_MS", "1000"),
    );
    let t = text(&o);
    assert_eq!(o.status.code(), Some(0), "{t}");
    let results = json_lines(&out.join("results.jsonl"));
    assert!(results.len() >= 4, "{t}");
    // Held up by a call ending, frames would go hundreds of ms late (the hook takes 1 s).
    for r in &results {
        let slip = r["metrics"]["send_slip_max_ms"].as_f64();
        assert!(slip.is_some_and(|ms| ms < 250.0), "{r}");
    }
}

#[test]
fn a_load_run_stops_when_an_abort_rule_fires_and_refuses_bad_plans() {
    let dir = tempfile::tempdir().unwrap();
    let suite = suite_file(dir.path(), "suite", ONE_CALL);
    let closed = format!("ws://127.0.0.1:{}/", free_port());
    let out = dir.path().join("out");
    // Nobody answers: every call fails, the error rate fires once 10 calls have ended, and
    // the run stops long before its minute is up.
    let o = voicesim(&[
        "load",
        &suite,
        "--agent",
        &closed,
        "--out",
        out.to_str().unwrap(),
        "--stage",
        "1s:20",
        "--stage",
        "1m:20",
        "--abort-on",
        "error_rate > 5%",
    ]);
    let t = text(&o);
    assert_eq!(o.status.code(), Some(3), "nothing answered: {t}");
    assert!(t.contains("aborted: error_rate > 5% (it was 100.0)"), "{t}");
    let seconds = json_lines(&out.join("timeseries.jsonl"));
    assert!(seconds.len() < 30, "{} seconds", seconds.len());

    let llm_step = suite_file(
        dir.path(),
        "llm",
        "name: l\ntests:\n  - name: t\n    steps:\n      - goal: Improvise\n",
    );
    for (args, says) in [
        (vec![suite.as_str()], "--stage DURATION:CALLS"),
        (vec![suite.as_str(), "--stage", "5:3"], "DURATION:CALLS"),
        (
            vec![suite.as_str(), "--stage", "1s:1", "--transcribe", "150%"],
            "between 0% and 100%",
        ),
        (
            vec![suite.as_str(), "--stage", "1s:1", "--abort-on", "speed > 1"],
            "NAME > VALUE",
        ),
        (
            vec![llm_step.as_str(), "--stage", "1s:1"],
            "scripted lines only",
        ),
        (
            vec![suite.as_str(), "--stage", "1s:100000000"],
            "open files",
        ),
    ] {
        let mut full = vec!["load", "--agent", &closed, "--out", "never"];
        full.extend(args);
        let o = voicesim(&full);
        assert_eq!(o.status.code(), Some(2), "{full:?}: {}", text(&o));
        assert!(text(&o).contains(says), "{says}: {}", text(&o));
    }
    assert!(!Path::new("never").exists());
}

/// A results.jsonl of `passes` (true: passed) for one test, latency `ms` in every call.
fn results_file(dir: &Path, name: &str, passes: &[bool], ms: f64) -> String {
    let lines: Vec<String> = passes
        .iter()
        .enumerate()
        .map(|(i, &p)| {
            serde_json::json!({
                "suite": "s", "test": "greet", "tags": [],
                "condition": {"profile": "cafe", "snr": 10.0},
                "run": i + 1, "seed": 7 + i, "call_id": format!("{i}"),
                "outcome": if p { "passed" } else { "failed" },
                "steps": [{"goal": "Greet", "verdict": if p { "met" } else { "not_met" },
                           "justification": if p { "ok" } else { "the agent did not say \"hello\"" }, "turns": 1}],
                "expectations": [], "metrics": {"turns": 2, "duration_s": 9.5, "latency_p50_ms": ms},
                "latencies_ms": [ms], "faults": [], "transcript": []
            })
            .to_string()
        })
        .collect();
    let path = dir.join(format!("{name}.jsonl"));
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    path.to_str().unwrap().to_string()
}

#[test]
fn diff_gates_on_real_regressions_and_export_writes_the_golden_table() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let three = results_file(d, "three", &[true; 3], 500.0);
    let one_flip = results_file(d, "flip", &[true, false, true], 520.0);
    let ten = results_file(d, "ten", &[true; 10], 500.0);
    let collapse = results_file(
        d,
        "collapse",
        &[
            true, false, false, true, false, false, true, false, false, true,
        ],
        500.0,
    );
    let slower = results_file(d, "slower", &[true; 10], 900.0);

    let o = voicesim(&["diff", &three, &one_flip]);
    let t = text(&o);
    assert_eq!(o.status.code(), Some(0), "3/3 → 2/3 is within chance: {t}");
    assert!(
        t.contains("3/3 → 2/3") && t.contains("worse (within chance)"),
        "{t}"
    );
    assert!(t.contains("new failure: greet [cafe@10dB] #2"), "{t}");
    assert!(t.contains("the agent did not say \"hello\""), "{t}");

    let o = voicesim(&["diff", &ten, &collapse]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("REGRESSED"));
    let o = voicesim(&["diff", &ten, &collapse, "--max-pass-drop", "70"]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "a 60-point drop is within 70: {}",
        text(&o)
    );
    let o = voicesim(&["diff", &ten, &slower]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("median latency +400 ms"), "{}", text(&o));
    let o = voicesim(&["diff", &ten, &slower, "--max-latency-increase-ms", "500"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));

    let o = voicesim(&["diff", &ten, &collapse, "--format", "markdown"]);
    let md = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(md.starts_with("### voicesim: regressed"), "{md}");
    assert!(md.contains("| greet | cafe@10dB | 10/10 → 4/10 |"), "{md}");
    let o = voicesim(&["diff", &ten, &collapse, "--format", "json"]);
    let json: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(json["rows"][0]["change"], "regressed");
    assert!(json["rows"][0]["p_value"].as_f64().unwrap() < 0.05);

    // Unreadable input: exit 2, the file and line named.
    let bad = d.join("bad.jsonl");
    std::fs::write(&bad, "{\"suite\": 1}\n").unwrap();
    let o = voicesim(&["diff", &ten, bad.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o).contains("bad.jsonl:1: not a voicesim result"),
        "{}",
        text(&o)
    );
    let o = voicesim(&["diff", &ten, "/no/such/run"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).contains("/no/such/run"), "{}", text(&o));

    // The report of a results file alone, against a baseline.
    let page = d.join("page.html");
    let o = voicesim(&[
        "report",
        "html",
        &one_flip,
        "--baseline",
        &three,
        "-o",
        page.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let page = std::fs::read_to_string(page).unwrap();
    assert_eq!(page.matches("<details class=\"call").count(), 3);
    assert!(page.contains("was 3/3 · worse"), "the cell shows the delta");
    assert!(page.contains("<b>new failure</b> greet [cafe@10dB] #2"));
    assert!(
        page.contains("recording not found"),
        "no calls folder next to a bare file"
    );

    let o = voicesim(&["export", &one_flip]);
    assert!(o.status.success(), "{}", text(&o));
    let csv = String::from_utf8_lossy(&o.stdout).to_string();
    let rows: Vec<&str> = csv.lines().collect();
    assert_eq!(
        rows.len(),
        1 + 3 * 2 + 1,
        "a header, then per call its row and its step's, then the condition's: {csv}"
    );
    // Results from before the noise KPIs were counted leave them empty, not zero.
    assert!(
        rows[7].starts_with("s,greet,cafe@10dB,0,0,,condition,,2/3,")
            && rows[7].ends_with(",,,,,,,,"),
        "{csv}"
    );
    assert!(rows[0].starts_with("suite,test,condition,run,seed,call_id,kind,name,result"));
    assert!(rows[3].contains(",call,,failed,"), "{csv}");
    assert!(
        rows[4].contains(",step,Greet,not_met,\"the agent did not say \"\"hello\"\"\""),
        "{csv}"
    );
    let o = voicesim(&["export", &one_flip, "--format", "json"]);
    let json: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(json.as_array().unwrap().len(), 7);
}
