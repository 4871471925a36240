//! Paced calls at scale: N calls at once, each streaming 20 ms frames (Twilio Media Streams,
//! 8 kHz mu-law) into a sink that timestamps every frame; voicesim's call loop side by side
//! with a minimal Python asyncio + websockets sender doing the same work
//! (benches/paced_sender.py, run in the Pipecat test venv, which has `websockets`).
//!
//! `cargo bench --bench paced` measures 100, 1,000 and 2,000 calls of 20 s with each sender and
//! prints the table; run as a test (`cargo test --all-targets`) it makes 10 calls of 2 s with
//! each and checks that every frame arrived. The sink and each sender are processes of their
//! own (this binary run again in a role), so CPU and memory are each side's own.
//!
//! A frame's lateness is how far behind its call's own 20 ms schedule it arrived, the schedule
//! anchored so that no frame of the call was early.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde_json::{json, Value};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use voicesim::noise::{LoadedNoise, MicTimeline, NoiseProfile};
use voicesim::transport::call::{self, CallOptions};
use voicesim::transport::event::EndReason;
use voicesim::transport::slip::Slip;
use voicesim::transport::Protocol;

// The sender allocates as the voicesim binary does (src/main.rs).
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    match std::env::var("PACED_ROLE").as_deref() {
        Ok("sink") => sink(),
        Ok("voicesim") => send(),
        _ => compare(),
    }
}

/// Both senders start their calls evenly over this long, as a load test ramps up, rather than
/// open every socket in the same millisecond.
const RAMP: Duration = Duration::from_secs(2);

fn var<T: std::str::FromStr>(name: &str) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{name} is not set"))
}

fn room(calls: u64) {
    rlimit::increase_nofile_limit(calls * 2 + 64).expect("the open-file limit");
}

/// Accepts PACED_CALLS streams, prints its port first and the lateness of all frames last.
fn sink() {
    let calls: usize = var("PACED_CALLS");
    room(calls as u64);
    // One thread: the sink should take as little of the two cores from the sender as it can.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        println!("{}", listener.local_addr().unwrap().port());
        let (tx, mut rx) = mpsc::unbounded_channel::<Vec<(Instant, f64)>>();
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                let tx = tx.clone();
                tokio::spawn(async move {
                    let mut arrivals = Vec::new();
                    let _ = socket.set_nodelay(true);
                    let config = Some(voicesim::transport::websocket_config());
                    if let Ok(mut ws) =
                        tokio_tungstenite::accept_async_with_config(socket, config).await
                    {
                        while let Some(Ok(message)) = ws.next().await {
                            match message {
                                // Both senders' media messages, and only those, hold "media".
                                Message::Text(t) if t.contains("\"media\"") => {
                                    arrivals.push(Instant::now())
                                }
                                Message::Close(_) => break,
                                _ => {}
                            }
                        }
                    }
                    let late = lateness(&arrivals);
                    let _ = tx.send(arrivals.into_iter().zip(late).collect());
                });
            }
        });
        let (mut all, mut calls_up) = (Vec::new(), Vec::new());
        for _ in 0..calls {
            let frames = rx.recv().await.unwrap_or_default();
            calls_up.extend(frames.first().zip(frames.last()).map(|(a, b)| (a.0, b.0)));
            all.extend(frames);
        }
        // While every call was up: after the last one's first frame, before the first one's last.
        let from = calls_up.iter().map(|c| c.0).max();
        let to = calls_up.iter().map(|c| c.1).min();
        let mut steady: Vec<f64> = all
            .iter()
            .filter(|(at, _)| from.zip(to).is_some_and(|(f, t)| *at >= f && *at <= t))
            .map(|f| f.1)
            .collect();
        let mut all: Vec<f64> = all.into_iter().map(|f| f.1).collect();
        all.sort_by(f64::total_cmp);
        steady.sort_by(f64::total_cmp);
        let at = |v: &[f64], p: f64| {
            v.get(((v.len() as f64 * p) as usize).min(v.len().saturating_sub(1)))
                .copied()
                .unwrap_or(0.0)
        };
        println!(
            "{}",
            json!({"frames": all.len(), "p50": at(&all, 0.5), "p99": at(&all, 0.99),
                   "max": all.last().copied().unwrap_or(0.0), "p99_all_up": at(&steady, 0.99)})
        );
    });
}

/// Each frame's ms behind the call's schedule, anchored where no frame was early.
fn lateness(arrivals: &[Instant]) -> Vec<f64> {
    let Some(&first) = arrivals.first() else {
        return Vec::new();
    };
    let offsets: Vec<f64> = arrivals
        .iter()
        .enumerate()
        .map(|(k, a)| a.duration_since(first).as_secs_f64() * 1000.0 - 20.0 * k as f64)
        .collect();
    let anchor = offsets.iter().copied().fold(f64::INFINITY, f64::min);
    offsets.iter().map(|o| o - anchor).collect()
}

/// From /proc/self/status, in kB.
fn vm(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or(0)
}

/// voicesim's sender: PACED_CALLS calls through its own call loop (a silent microphone on
/// the 8 kHz timeline, mu-law, Twilio messages), PACED_SECONDS each.
fn send() {
    let (url, calls, seconds): (String, u64, f64) =
        (var("PACED_URL"), var("PACED_CALLS"), var("PACED_SECONDS"));
    room(calls);
    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    let base_kb = vm("VmRSS");
    let cpu = cpu_time::ProcessTime::now();
    // Recorded as a load run records: to disk as the call runs.
    let tapes = tempfile::tempdir().expect("a folder for the recordings");
    let tapes_dir = tapes.path().to_path_buf();
    let deck = voicesim::transport::recorder::Deck::start();
    let on_time = runtime.block_on(async move {
        let noise = LoadedNoise::load(&NoiseProfile::clean(), 8_000).unwrap();
        // The calls share their frame clocks, as a load run's do.
        let metronome = voicesim::transport::pacer::Metronome::new();
        let mut calls_up = Vec::new();
        for i in 0..calls {
            let mut options = CallOptions::new(&url);
            options.max_duration = Duration::from_secs_f64(seconds);
            options.answer_timeout = Duration::from_secs(3600);
            options.connect_timeout = Duration::from_secs(60);
            options.phase = call::stagger(i);
            options.metronome = Some(metronome.clone());
            options.tape = Some((
                deck.clone(),
                tapes_dir.join(format!("call-{i}")).join("call.wav"),
            ));
            let adapter = Protocol::Twilio.adapter(i, Default::default(), 8_000);
            let mic = MicTimeline::new(&noise, i);
            let (commands, said) = mpsc::unbounded_channel();
            let (events, heard) = mpsc::unbounded_channel();
            drop(heard);
            let start = RAMP.mul_f64(i as f64 / calls as f64);
            calls_up.push(tokio::spawn(async move {
                tokio::time::sleep(start).await;
                let outcome = call::run(options, adapter, mic, said, events).await;
                drop(commands);
                outcome
                    .ok()
                    .filter(|o| matches!(o.ended, EndReason::TimeLimit))
                    .map(|o| o.slip)
            }));
        }
        let (mut on_time, mut slip) = (0, Slip::default());
        for c in calls_up {
            if let Ok(Some(s)) = c.await {
                on_time += 1;
                slip.merge(&s);
            }
        }
        (on_time, slip)
    });
    let (on_time, slip) = on_time;
    let (cpu_s, hwm_kb) = (cpu.elapsed().as_secs_f64(), vm("VmHWM"));
    // Every call's recording and event log were written whole as it ran.
    for i in 0..calls {
        let dir = tapes.path().join(format!("call-{i}"));
        let wav = hound::WavReader::open(dir.join("call.wav")).expect("the call's recording");
        assert_eq!(
            (wav.spec().channels, wav.duration()),
            (2, (seconds * 8_000.0) as u32),
            "call {i}'s recording"
        );
        let log = std::fs::read_to_string(dir.join("events.jsonl")).expect("the event log");
        assert!(
            log.lines().last().is_some_and(|l| l.contains("ended")),
            "call {i}: {log}"
        );
    }
    println!(
        "{}",
        json!({"cpu_s": cpu_s, "hwm_kb": hwm_kb, "base_kb": base_kb, "on_time": on_time,
               "slip_p99": slip.quantile(0.99), "slip_max": slip.max_ms()})
    );
}

/// The last line a child printed, as JSON.
fn report(child: std::process::Child, what: &str) -> Value {
    let out = child.wait_with_output().expect("the child ran");
    assert!(
        out.status.success(),
        "{what} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(text.lines().last().unwrap_or_default())
        .unwrap_or_else(|e| panic!("{what} printed {text:?}: {e}"))
}

fn python() -> String {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/pipecat/venv.sh");
    let out = Command::new(&script)
        .output()
        .expect("tests/pipecat/venv.sh runs");
    assert!(
        out.status.success(),
        "the Python sender needs the test venv (websockets), which could not be built: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    format!("{}/bin/python", String::from_utf8_lossy(&out.stdout).trim())
}

fn compare() {
    let bench = std::env::args().any(|a| a == "--bench");
    let (levels, seconds): (Vec<u64>, f64) = if bench {
        let levels = std::env::var("PACED_LEVELS").unwrap_or_else(|_| "100,1000,2000".into());
        (
            levels
                .split(',')
                .filter_map(|l| l.trim().parse().ok())
                .collect(),
            20.0,
        )
    } else {
        (vec![10], 2.0)
    };
    let python = python();
    let me = std::env::current_exe().expect("this bench's path");
    let sender_py = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/paced_sender.py");
    println!("| calls | sender | frame lateness p50 / p99 / max | p99 while all calls were up | CPU-s per call-second | memory per call | own send slip p99 / max |");
    println!("| --- | --- | --- | --- | --- | --- | --- |");
    for &calls in &levels {
        for sender in ["voicesim", "python asyncio"] {
            let mut sink = Command::new(&me)
                .env("PACED_ROLE", "sink")
                .env("PACED_CALLS", calls.to_string())
                .stdout(Stdio::piped())
                .spawn()
                .expect("the sink starts");
            let mut port = String::new();
            BufReader::new(sink.stdout.as_mut().expect("piped"))
                .read_line(&mut port)
                .expect("the sink's port");
            let url = format!("ws://127.0.0.1:{}/", port.trim());
            let child = if sender == "voicesim" {
                Command::new(&me)
                    .env("PACED_ROLE", "voicesim")
                    .env("PACED_URL", &url)
                    .env("PACED_CALLS", calls.to_string())
                    .env("PACED_SECONDS", seconds.to_string())
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
            } else {
                Command::new(&python)
                    .arg(&sender_py)
                    .args([
                        &url,
                        &calls.to_string(),
                        &seconds.to_string(),
                        &RAMP.as_secs_f64().to_string(),
                    ])
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
            }
            .expect("the sender starts");
            let sent = report(child, sender);
            let got = report(sink, "the sink");
            let frames = got["frames"].as_u64().unwrap_or(0);
            // Every frame of every call reached the sink (the smoke run's one check).
            assert_eq!(
                frames,
                calls * (seconds * 50.0) as u64,
                "{sender}: frames received"
            );
            if sender == "voicesim" {
                assert_eq!(sent["on_time"], calls, "every call ran its whole length");
            }
            let f = |k: &str| got[k].as_f64().unwrap_or(0.0);
            let per_call_s = sent["cpu_s"].as_f64().unwrap_or(0.0) / (calls as f64 * seconds);
            let per_call_mb = (sent["hwm_kb"].as_f64().unwrap_or(0.0)
                - sent["base_kb"].as_f64().unwrap_or(0.0))
                / 1024.0
                / calls as f64;
            // What the sender's own clock says of its lateness (voicesim measures it per call).
            let own = match (sent["slip_p99"].as_f64(), sent["slip_max"].as_f64()) {
                (Some(p99), Some(max)) => format!("{p99:.2} / {max:.1} ms"),
                _ => "not measured".into(),
            };
            println!(
                "| {calls} | {sender} | {:.1} / {:.1} / {:.1} ms | {:.1} ms | {per_call_s:.4} | {per_call_mb:.2} MB | {own} |",
                f("p50"),
                f("p99"),
                f("max"),
                f("p99_all_up")
            );
        }
    }
}
