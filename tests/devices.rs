//! The sound card, for real: a user-mode PulseAudio server with two null sinks, started and
//! stopped by the fixture. ALSA's default device goes to it (its pulse plugin, through an
//! `.asoundrc` in a private HOME), so voicesim's cpal and rodio use it as any desktop's.
//! `speakers` is the default output; `mic` is a sink whose monitor is the default input, so a
//! test plays "the person" into `mic` and hears what voicesim played on `speakers.monitor`.
#![cfg(feature = "devices")]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use voicesim::audio::{level, write_wav, Clip};
use voicesim::noise::{LoadedNoise, MicTimeline, NoiseProfile};

use common::{text, Child};

/// One PulseAudio server for one test.
struct Pulse {
    server: Child,
    dir: tempfile::TempDir,
    cache: PathBuf,
}

impl Pulse {
    fn start() -> Pulse {
        let dir = tempfile::tempdir().unwrap();
        let (run, home) = (dir.path().join("run"), dir.path().join("home"));
        std::fs::create_dir_all(&run).unwrap();
        std::fs::create_dir_all(&home).unwrap();
        std::fs::write(
            home.join(".asoundrc"),
            "pcm.!default { type pulse }\nctl.!default { type pulse }\n",
        )
        .unwrap();
        let script = dir.path().join("default.pa");
        std::fs::write(
            &script,
            format!(
                "load-module module-native-protocol-unix socket={} auth-anonymous=1\n\
                 load-module module-null-sink sink_name=speakers rate=48000\n\
                 load-module module-null-sink sink_name=mic rate=48000\n\
                 set-default-sink speakers\n\
                 set-default-source mic.monitor\n",
                run.join("native").display()
            ),
        )
        .unwrap();
        let log = std::fs::File::create(dir.path().join("pulse.log")).unwrap();
        let server = Command::new("pulseaudio")
            .args([
                "--daemonize=no",
                "--exit-idle-time=-1",
                "-n",
                "--use-pid-file=no",
            ])
            .arg("-F")
            .arg(&script)
            .args(["--log-target=stderr"])
            .env("HOME", &home)
            .env("XDG_RUNTIME_DIR", &run)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start pulseaudio ({e}): `make setup-test` installs it")
            });
        let server = Child(server);
        let start = Instant::now();
        while !run.join("native").exists() {
            assert!(
                start.elapsed() < Duration::from_secs(15),
                "PulseAudio did not start:\n{}",
                std::fs::read_to_string(dir.path().join("pulse.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Pulse {
            server,
            dir,
            cache: voicesim::cache_dir(),
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// `voicesim ARGS` on this server, with `env` (PULSE_SINK, PULSE_SOURCE) added.
    fn voicesim(&self, args: &[&str], env: &[(&str, &str)]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_voicesim"));
        cmd.args(args)
            .env("HOME", self.path("home"))
            .env(
                "PULSE_SERVER",
                format!("unix:{}", self.path("run/native").display()),
            )
            .env("VOICESIM_CACHE", &self.cache)
            .stdin(Stdio::null());
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd
    }

    fn run(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        finish(&mut self.spawn(args, env))
    }

    fn spawn(&self, args: &[&str], env: &[(&str, &str)]) -> Child {
        Child(
            self.voicesim(args, env)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap(),
        )
    }
}

/// Waits for a spawned command and collects what it printed; none of them takes minutes, so
/// one that does has hung.
fn finish(child: &mut Child) -> Output {
    common::wait_within(&mut child.0, Duration::from_secs(300))
}

fn tone(hz: f32, amplitude: f32, seconds: f32, rate: u32) -> Clip {
    let n = (seconds * rate as f32) as usize;
    Clip::new(
        (0..n)
            .map(|i| (i as f32 * hz * std::f32::consts::TAU / rate as f32).sin() * amplitude)
            .collect(),
        rate,
    )
}

/// The frequency of a clip's strongest pure tone, from its zero crossings.
fn frequency(clip: &Clip) -> f64 {
    let crossings = clip
        .samples
        .windows(2)
        .filter(|w| (w[0] < 0.0) != (w[1] < 0.0))
        .count();
    crossings as f64 / 2.0 / clip.duration()
}

fn wav(path: &Path) -> Clip {
    Clip::open(path).unwrap()
}

#[test]
fn a_tone_played_by_listen_is_captured_by_noise_record() {
    let pulse = Pulse::start();
    let played = pulse.path("tone.wav");
    write_wav(&played, &[&tone(1000.0, 0.3, 4.0, 16_000)]).unwrap();
    let player = pulse.spawn(
        &["listen", played.to_str().unwrap()],
        &[("PULSE_SINK", "mic")],
    );
    std::thread::sleep(Duration::from_millis(700));
    let out = pulse.path("room.wav");
    let recorded = pulse.run(
        &[
            "noise",
            "record",
            "-o",
            out.to_str().unwrap(),
            "--seconds",
            "2",
        ],
        &[],
    );
    drop(player);
    assert!(recorded.status.success(), "{}", text(&recorded));
    let room = wav(&out);
    assert_eq!(room.rate, 16_000, "resampled to 16 kHz");
    assert!(
        (room.duration() - 2.0).abs() < 0.05,
        "{} s",
        room.duration()
    );
    // The middle second: the tone, at its level (0.3 peak is -13.5 dBFS RMS).
    let middle = Clip::new(room.samples[8_000..24_000].to_vec(), 16_000);
    assert!(
        (frequency(&middle) - 1000.0).abs() < 5.0,
        "{} Hz",
        frequency(&middle)
    );
    assert!(
        (middle.rms_dbfs() + 13.5).abs() < 1.0,
        "{} dBFS",
        middle.rms_dbfs()
    );
    // Beside it, a profile that loops it, loadable as any other.
    let profile = NoiseProfile::load(pulse.path("room.yaml")).unwrap();
    assert_eq!(profile.background.len(), 1);
    assert_eq!(profile.background[0].file, "room.wav");
    LoadedNoise::load(&profile, 8_000).unwrap();
    let said = text(&recorded);
    assert!(!said.contains("warning"), "{said}");
}

#[test]
fn noise_play_sounds_as_noise_mix_renders_the_same_profile_and_seed() {
    let pulse = Pulse::start();
    let player = pulse.spawn(
        &[
            "noise",
            "play",
            "cafe",
            "--seed",
            "3",
            "--seconds",
            "4",
            "--rate",
            "48000",
        ],
        &[],
    );
    std::thread::sleep(Duration::from_millis(800));
    let out = pulse.path("heard.wav");
    let recorded = pulse.run(
        &[
            "noise",
            "record",
            "-o",
            out.to_str().unwrap(),
            "--seconds",
            "2",
            "--native-rate",
        ],
        &[("PULSE_SOURCE", "speakers.monitor")],
    );
    drop(player);
    assert!(recorded.status.success(), "{}", text(&recorded));
    let heard = wav(&out);
    assert_eq!(heard.rate, 48_000);
    let expected = MicTimeline::new(
        &LoadedNoise::load(&NoiseProfile::bundled("cafe").unwrap(), 48_000).unwrap(),
        3,
    )
    .render(4.0);
    // Where in the expected timeline the recording lies, and how alike the two are there.
    let probe = &heard.samples[4_800..4_800 + 9_600];
    let (mut best, mut best_at) = (0.0f64, 0usize);
    for at in (0..expected.len() - probe.len()).step_by(4) {
        let window = &expected.samples[at..at + probe.len()];
        let dot: f64 = window.iter().zip(probe).map(|(a, b)| (a * b) as f64).sum();
        let norm = (level::rms(window) * level::rms(probe)) * probe.len() as f64;
        if norm > 0.0 && dot / norm > best {
            (best, best_at) = (dot / norm, at);
        }
    }
    // Refine around the coarse match.
    for at in best_at.saturating_sub(4)..(best_at + 4).min(expected.len() - probe.len()) {
        let window = &expected.samples[at..at + probe.len()];
        let dot: f64 = window.iter().zip(probe).map(|(a, b)| (a * b) as f64).sum();
        let norm = (level::rms(window) * level::rms(probe)) * probe.len() as f64;
        best = best.max(dot / norm);
    }
    assert!(best > 0.95, "correlation {best} with noise mix's timeline");
    let expected_db = level::to_dbfs(level::rms(
        &expected.samples[best_at..best_at + probe.len()],
    ));
    let heard_db = level::to_dbfs(level::rms(probe));
    assert!(
        (expected_db - heard_db).abs() < 1.0,
        "{heard_db} vs {expected_db} dBFS"
    );
}

#[test]
fn a_person_on_a_live_call_is_heard_by_the_agent_and_hears_it() {
    use std::io::BufRead;
    let pulse = Pulse::start();
    // The reference agent, its log of what it heard read as it goes.
    let port = common::free_port();
    let mut agent = Child(
        Command::new(env!("CARGO_BIN_EXE_voicesim"))
            .args(["agent", "--listen", &format!("127.0.0.1:{port}")])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let agent_log = std::io::BufReader::new(agent.0.stdout.take().unwrap());
    let agent_lines =
        std::thread::spawn(move || agent_log.lines().map_while(Result::ok).collect::<Vec<_>>());
    let url = format!("ws://127.0.0.1:{port}/");
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        std::thread::sleep(Duration::from_millis(50));
    }
    let said = pulse.path("said.wav");
    let tts = pulse.run(
        &[
            "tts",
            "My order number is four five two one.",
            "-o",
            said.to_str().unwrap(),
        ],
        &[],
    );
    assert!(tts.status.success(), "{}", text(&tts));
    let call_dir = pulse.path("call");
    let mut call = pulse.spawn(
        &[
            "call",
            &url,
            "--live",
            "--noise",
            "car",
            "--snr",
            "30",
            "--max-duration-s",
            "16",
            "--out",
            call_dir.to_str().unwrap(),
        ],
        &[],
    );
    // What the caller's speakers play, recorded from their monitor.
    let heard = pulse.path("heard.wav");
    let mut ears = pulse.spawn(
        &[
            "noise",
            "record",
            "-o",
            heard.to_str().unwrap(),
            "--seconds",
            "14",
        ],
        &[("PULSE_SOURCE", "speakers.monitor")],
    );
    // The person answers the greeting.
    std::thread::sleep(Duration::from_millis(4_500));
    let spoke = pulse.run(
        &["listen", said.to_str().unwrap()],
        &[("PULSE_SINK", "mic")],
    );
    assert!(spoke.status.success(), "{}", text(&spoke));
    let call = finish(&mut call);
    let ears = finish(&mut ears);
    // The agent writes its log of the call once it has noticed the hangup.
    std::thread::sleep(Duration::from_millis(1_500));
    drop(agent);
    let agent_lines = agent_lines.join().unwrap();
    let log = text(&call);
    assert!(ears.status.success(), "{}", text(&ears));
    // The agent heard the person's words through the caller's line (noise, telephone band,
    // mu-law) ...
    let agent_heard: Vec<String> = agent_lines
        .iter()
        .filter_map(|l| l.trim().strip_prefix("heard"))
        .map(voicesim::speech::wer::normalize)
        .collect();
    // Whisper tiny writes the number its own way in noise ("4 5 2 1", "4 point 5 2 1"): the
    // digits, in order, are what must arrive. The car is 30 dB under the voice: this is about
    // the live line, not how well Whisper tiny hears in noise (at 20 dB, on a loaded machine,
    // it once heard "them for 5 2 1").
    let digits = |l: &String| l.chars().filter(char::is_ascii_digit).collect::<String>();
    assert!(
        agent_heard.iter().any(|l| digits(l).contains("4521")),
        "the agent heard: {agent_heard:?}\n{log}"
    );
    let record: serde_json::Value =
        serde_json::from_slice(&std::fs::read(call_dir.join("call.json")).unwrap()).unwrap();
    let lines = |who: &str| -> Vec<String> {
        record["transcript"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|l| l["speaker"] == who)
            .map(|l| voicesim::speech::wer::normalize(l["text"].as_str().unwrap()))
            .collect()
    };
    // ... the person's words are in the call's transcript, as the caller's line carried them
    // (Whisper tiny hears that line in car noise as "... order ... 4 5 2 1", now and then as
    // "I ordered them for 521", and on a loaded machine once as "number is 4521" over and
    // over: "order" or the digits) and the agent's greeting as the caller heard it ...
    assert!(
        lines("caller")
            .iter()
            .any(|l| l.contains("order") || digits(l).contains("4521")),
        "{log}"
    );
    assert!(lines("agent").iter().any(|l| l.contains("order")), "{log}");
    // ... the answer was timed from the end of the person's words ...
    let turns = record["turns"].as_array().unwrap();
    assert!(
        turns
            .iter()
            .any(|t| t["response_latency_ms"].as_f64().is_some_and(|l| l > 0.0)),
        "{turns:?}"
    );
    // ... and the person heard the agent on the speakers.
    let transcribed = pulse.run(&["stt", heard.to_str().unwrap()], &[]);
    let words = voicesim::speech::wer::normalize(&text(&transcribed));
    assert!(words.contains("order"), "the speakers played: {words}");
}

#[test]
fn a_missing_device_or_a_server_that_goes_away_is_a_clear_error_and_keeps_the_recording() {
    let pulse = Pulse::start();
    let out = pulse.path("x.wav");
    let missing = pulse.run(
        &[
            "noise",
            "record",
            "-o",
            out.to_str().unwrap(),
            "--seconds",
            "1",
            "--device",
            "no-such-mic",
        ],
        &[],
    );
    assert_eq!(missing.status.code(), Some(2), "{}", text(&missing));
    let said = text(&missing);
    assert!(
        said.contains("no-such-mic") && said.contains("voicesim devices"),
        "{said}"
    );

    // The sound server dies mid-recording: what was captured is written, exit 2. (A faint
    // hum keeps the monitor delivering, as a real microphone always does.)
    let hum = pulse.path("hum.wav");
    write_wav(&hum, &[&tone(100.0, 0.001, 30.0, 16_000)]).unwrap();
    let mut room = pulse.spawn(&["listen", hum.to_str().unwrap()], &[("PULSE_SINK", "mic")]);
    std::thread::sleep(Duration::from_millis(300));
    let mut recording = pulse.spawn(
        &[
            "noise",
            "record",
            "-o",
            out.to_str().unwrap(),
            "--seconds",
            "10",
        ],
        &[],
    );
    std::thread::sleep(Duration::from_millis(3_000));
    drop(pulse.server);
    let ended = finish(&mut recording);
    assert_eq!(ended.status.code(), Some(2), "{}", text(&ended));
    let said = text(&ended);
    assert!(said.contains("kept"), "{said}");
    let kept = wav(&out);
    assert!(
        (0.5..9.0).contains(&kept.duration()),
        "{} s kept",
        kept.duration()
    );
    // Playback into the dead server ends too, long before the hum would have, naming the device.
    let room = finish(&mut room);
    assert_eq!(room.status.code(), Some(2), "{}", text(&room));
    let said = text(&room);
    assert!(said.contains("played nothing"), "{said}");
}

#[test]
fn listen_prints_a_call_s_lines_and_events_as_they_are_heard() {
    let pulse = Pulse::start();
    let dir = pulse.path("call");
    std::fs::create_dir_all(&dir).unwrap();
    let caller = tone(300.0, 0.2, 2.0, 8_000);
    let agent = tone(600.0, 0.2, 2.0, 8_000);
    write_wav(dir.join("call.wav"), &[&caller, &agent]).unwrap();
    std::fs::write(
        dir.join("call.json"),
        r#"{"transcript":[{"speaker":"agent","text":"Hello, how can I help?","at_ms":200.0},
                          {"speaker":"caller","text":"Where is my order?","at_ms":1000.0}]}"#,
    )
    .unwrap();
    std::fs::write(
        dir.join("events.jsonl"),
        "{\"at_ms\":1500.0,\"event\":\"agent_cleared\",\"dropped_ms\":300.0}\n",
    )
    .unwrap();
    // What is played of the agent's side goes to the speakers; record it meanwhile.
    let heard = pulse.path("heard.wav");
    let mut ears = pulse.spawn(
        &[
            "noise",
            "record",
            "-o",
            heard.to_str().unwrap(),
            "--seconds",
            "3",
            "--native-rate",
        ],
        &[("PULSE_SOURCE", "speakers.monitor")],
    );
    std::thread::sleep(Duration::from_millis(300));
    let listened = pulse.run(
        &["listen", dir.to_str().unwrap(), "--channel", "agent"],
        &[],
    );
    let ears = finish(&mut ears);
    assert!(listened.status.success(), "{}", text(&listened));
    assert!(ears.status.success(), "{}", text(&ears));
    let said = String::from_utf8_lossy(&listened.stdout).to_string();
    let at = |needle: &str| {
        said.find(needle)
            .unwrap_or_else(|| panic!("{needle:?} in {said}"))
    };
    assert!(at("Hello, how can I help?") < at("Where is my order?"));
    assert!(at("Where is my order?") < at("the agent stopped"));
    // The agent's channel alone was played: its 600 Hz tone, not the caller's 300 Hz.
    let played = wav(&heard);
    let power = |hz: f64| {
        let (mut re, mut im) = (0.0, 0.0);
        for (i, s) in played.samples.iter().enumerate() {
            let phase = std::f64::consts::TAU * hz * i as f64 / f64::from(played.rate);
            re += f64::from(*s) * phase.cos();
            im += f64::from(*s) * phase.sin();
        }
        re * re + im * im
    };
    assert!(
        power(600.0) > 100.0 * power(300.0),
        "{} vs {}",
        power(600.0),
        power(300.0)
    );
}

#[test]
fn calibrate_measures_the_snr_the_room_had() {
    let pulse = Pulse::start();
    // The room: a steady hum at -40 dBFS RMS, for the whole recording.
    let room = pulse.path("room-sound.wav");
    write_wav(&room, &[&tone(120.0, 0.01 * 2f32.sqrt(), 30.0, 16_000)]).unwrap();
    let _room = pulse.spawn(
        &["listen", room.to_str().unwrap()],
        &[("PULSE_SINK", "mic")],
    );
    // The reader: a voice at -20 dBFS RMS (a 500 Hz tone stands in), 2 s of the reading.
    let voice = pulse.path("voice.wav");
    write_wav(&voice, &[&tone(500.0, 0.1 * 2f32.sqrt(), 2.0, 16_000)]).unwrap();
    let mut reader = pulse.spawn(
        &["listen", voice.to_str().unwrap()],
        &[("PULSE_SINK", "mic")],
    );
    let out = pulse.path("quiet.wav");
    let recorded = pulse.run(
        &[
            "noise",
            "record",
            "-o",
            out.to_str().unwrap(),
            "--seconds",
            "2",
            "--calibrate",
        ],
        &[],
    );
    finish(&mut reader);
    assert!(recorded.status.success(), "{}", text(&recorded));
    let profile = NoiseProfile::load(pulse.path("quiet.yaml")).unwrap();
    let yaml = std::fs::read_to_string(pulse.path("quiet.yaml")).unwrap();
    let snr = match profile.background[0].snr {
        voicesim::noise::Snr::Db(db) => db,
        other => panic!("{other:?}"),
    };
    // -20 dBFS over -40 dBFS: 20 dB.
    assert!(
        (snr - 20.0).abs() < 1.5,
        "{snr} dB: {yaml}\n{}",
        text(&recorded)
    );
    assert!(yaml.contains("measured with --calibrate"), "{yaml}");
}

#[test]
fn a_recording_s_problems_and_the_calibrated_snr() {
    use voicesim::devices::{calibrated_snr, problems};
    let clean = tone(200.0, 0.1, 1.0, 16_000);
    assert!(problems(&clean).is_empty(), "{:?}", problems(&clean));
    let clipped = tone(200.0, 3.0, 1.0, 16_000);
    let clipped = Clip::new(
        clipped.samples.iter().map(|s| s.clamp(-1.0, 1.0)).collect(),
        16_000,
    );
    assert!(
        problems(&clipped)[0].contains("clipped"),
        "{:?}",
        problems(&clipped)
    );
    let silent = Clip::new(vec![0.0; 16_000], 16_000);
    assert!(
        problems(&silent)[0].contains("muted"),
        "{:?}",
        problems(&silent)
    );
    let biased = Clip::new(clean.samples.iter().map(|s| s + 0.05).collect(), 16_000);
    assert!(
        problems(&biased)[0].contains("DC offset"),
        "{:?}",
        problems(&biased)
    );

    // A voice at -20 dBFS for half the reading, over a room at -40 dBFS: 20 dB.
    let room = tone(120.0, 0.01 * 2f32.sqrt(), 4.0, 16_000);
    let mut reading = room.clone();
    for (r, v) in reading
        .samples
        .iter_mut()
        .zip(tone(500.0, 0.1 * 2f32.sqrt(), 2.0, 16_000).samples)
    {
        *r += v;
    }
    let snr = calibrated_snr(&reading, &room).unwrap();
    assert!((snr - 20.0).abs() < 0.5, "{snr}");
    assert_eq!(
        calibrated_snr(&room, &room),
        None,
        "no voice above the room"
    );
}
