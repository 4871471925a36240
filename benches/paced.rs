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

/// Accepts streams until its stdin closes (the sender is done), then prints the lateness of all
/// frames; its port goes out first.
fn sink() {
    room(var("PACED_CALLS"));
    // One thread: the sink should take as little of the two cores from the sender as it can.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        println!("{}", listener.local_addr().unwrap().port());
        let (tx, mut rx) = mpsc::unbounded_channel::<Vec<(Instant, f64)>>();
        let open = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let open_ = open.clone();
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                let tx = tx.clone();
                let open = open_.clone();
                open.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
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
                    open.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
                });
            }
        });
        let (done, sender_done) = tokio::sync::oneshot::channel();
        std::thread::spawn(move || {
            let _ = std::io::copy(&mut std::io::stdin(), &mut std::io::sink());
            let _ = done.send(());
        });
        let _ = sender_done.await;
        // The sender has gone: its last streams are closing.
        let drained = Instant::now() + Duration::from_secs(10);
        while open.load(std::sync::atomic::Ordering::SeqCst) > 0 && Instant::now() < drained {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let (mut all, mut calls_up) = (Vec::new(), Vec::new());
        let mut streams = 0;
        while let Ok(frames) = rx.try_recv() {
            streams += 1;
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
        // Calls started and ended a second in the window PACED_WINDOW ("from,to" in seconds
        // after the first frame): the churn at full load.
        let window: Vec<f64> = std::env::var("PACED_WINDOW")
            .unwrap_or_default()
            .split(',')
            .filter_map(|w| w.parse().ok())
            .collect();
        let first = calls_up.iter().map(|c| c.0).min();
        let rate = |pick: fn(&(Instant, Instant)) -> Instant| match (first, &window[..]) {
            (Some(first), &[from, to]) if to > from => {
                let within = |at: Instant| (from..to).contains(&at.duration_since(first).as_secs_f64());
                calls_up.iter().filter(|c| within(pick(c))).count() as f64 / (to - from)
            }
            _ => 0.0,
        };
        let (started_per_s, ended_per_s) = (rate(|c| c.0), rate(|c| c.1));
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
            json!({"streams": streams, "frames": all.len(), "p50": at(&all, 0.5), "p99": at(&all, 0.99),
                   "max": all.last().copied().unwrap_or(0.0), "p99_all_up": at(&steady, 0.99),
                   "started_per_s": started_per_s, "ended_per_s": ended_per_s})
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

/// This process's memory figure `field`, in kB.
fn vm(field: &str) -> u64 {
    proc_kb(std::process::id(), field).unwrap_or(0)
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

/// The sink, started for up to `calls` streams at once, and its URL.
fn start_sink(me: &Path, calls: u64, window: (u32, u32)) -> (std::process::Child, String) {
    let mut sink = Command::new(me)
        .env("PACED_ROLE", "sink")
        .env("PACED_WINDOW", format!("{},{}", window.0, window.1))
        .env("PACED_CALLS", calls.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("the sink starts");
    let mut port = String::new();
    BufReader::new(sink.stdout.as_mut().expect("piped"))
        .read_line(&mut port)
        .expect("the sink's port");
    (sink, format!("ws://127.0.0.1:{}/", port.trim()))
}

/// What the sink measured, once the sender is done.
fn sink_report(mut sink: std::process::Child) -> Value {
    drop(sink.stdin.take());
    report(sink, "the sink")
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
            let (sink, url) = start_sink(&me, calls, (0, 0));
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
            let got = sink_report(sink);
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
    churn(bench, &me, &python);
}

/// How long the calls of the churn table last: a line, then the agent's silence for one of
/// these (s), so calls end at different moments and are replaced at once.
const CHURN_TIMEOUTS: [u32; 4] = [3, 5, 7, 9];

/// The `k`th caller's wait for an answer, in whole seconds, shortened `scale` times (at least 1).
fn churn_timeout(k: usize, scale: u32) -> u32 {
    CHURN_TIMEOUTS[k % CHURN_TIMEOUTS.len()].div_ceil(scale)
}

/// The suite of the churn table: four callers, each saying a line in a cafe at 20 dB and then
/// waiting for an answer that never comes.
fn churn_suite(dir: &Path, scale: u32) -> std::path::PathBuf {
    let lines = [
        "Hi, I'm calling about my order, number four five two one.",
        "Hello, can you tell me when my parcel arrives?",
        "Good morning, I would like to change my delivery address.",
        "Hi there, I think I was charged twice for the same order.",
    ];
    let tests: String = (lines.iter().enumerate())
        .map(|(i, line)| {
            format!(
                "  - name: caller-{i}\n    scenario: first\n    stop: {{ answer_timeout_seconds: {}, max_seconds: 60 }}\n    \
                 noise: [{{ profile: cafe, snr: 20 }}]\n    steps:\n      - goal: Ask\n        \
                 static_utterance: \"{line}\"\n        check: {{ contains: order }}\n",
                churn_timeout(i, scale)
            )
        })
        .collect();
    let path = dir.join("churn.yaml");
    std::fs::write(
        &path,
        format!("name: churn\nscenarios:\n  first:\n    objective: Ask.\n    first: caller\ntests:\n{tests}"),
    )
    .expect("the churn suite");
    path
}

/// CPU seconds (user + system) of a process, and whether it has exited (its times are final
/// then, until it is reaped), from /proc.
fn proc_cpu(pid: u32) -> Option<(f64, bool)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The fields after the command's closing parenthesis: state first, utime and stime 12th
    // and 13th, in clock ticks (100 a second).
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks = |k: usize| fields.get(k).and_then(|f| f.parse::<f64>().ok());
    Some((
        (ticks(11)? + ticks(12)?) / 100.0,
        fields.first() == Some(&"Z"),
    ))
}

/// A memory figure of a running process from /proc, in kB.
fn proc_kb(pid: u32, field: &str) -> Option<u64> {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()?
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
}

/// A real `voicesim load` of the churn suite, calls ending and replaced throughout, beside the
/// Python sender keeping as many calls up with the same churn.
fn churn(bench: bool, me: &Path, python: &str) {
    let (levels, ramp, hold, scale): (Vec<u64>, u32, u32, u32) = if bench {
        let levels = std::env::var("PACED_CHURN_LEVELS").unwrap_or_else(|_| "1000,2000".into());
        let levels = levels.split(',').filter_map(|l| l.trim().parse().ok());
        (levels.collect(), 5, 20, 1)
    } else {
        (vec![4], 1, 4, 4)
    };
    let work = tempfile::tempdir().expect("a folder for the load runs");
    let suite = churn_suite(work.path(), scale);
    let sender_py = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/paced_sender.py");
    println!();
    println!("| calls up | sender | calls started / ended a second at full load | frame lateness p50 / p99 / max | CPU-s per call-second | memory per call | voicesim's own account |");
    println!("| --- | --- | --- | --- | --- | --- | --- |");
    for &calls in &levels {
        for sender in ["voicesim load", "python asyncio"] {
            let (sink, url) = start_sink(me, calls, (ramp, ramp + hold));
            let out = work.path().join(format!("load-{calls}"));
            let mut child = if sender == "voicesim load" {
                Command::new(env!("CARGO_BIN_EXE_voicesim"))
                    .arg("load")
                    .arg(&suite)
                    .args([
                        "--agent",
                        &url,
                        "--protocol",
                        "twilio",
                        "--transcribe",
                        "0%",
                    ])
                    .args(["--stage", &format!("{ramp}s:{calls}")])
                    .args(["--stage", &format!("{hold}s:{calls}")])
                    .arg("--out")
                    .arg(&out)
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
            } else {
                // The same lengths: the line (about 3 s) and the wait for an answer.
                let lengths: Vec<String> = (0..CHURN_TIMEOUTS.len())
                    .map(|k| (churn_timeout(k, scale) + 3).to_string())
                    .collect();
                Command::new(python)
                    .arg(&sender_py)
                    .args([&url, &calls.to_string(), &lengths.join(",")])
                    .args([ramp.to_string(), hold.to_string()])
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
            }
            .expect("the sender starts");
            let pid = child.id();
            // The sender's memory before its first call: voicesim's as the load begins (its
            // engines loaded), Python's as it says.
            let base_kb = std::sync::Arc::new(std::sync::Mutex::new(None::<u64>));
            let stderr = child.stderr.take().expect("piped");
            let base = base_kb.clone();
            let said = std::thread::spawn(move || {
                let mut text = String::new();
                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                    if line.starts_with("load on ") {
                        *base.lock().unwrap() = proc_kb(pid, "VmRSS");
                    }
                    text.push_str(&line);
                    text.push('\n');
                }
                text
            });
            let stdout = child.stdout.take().expect("piped");
            let printed =
                std::thread::spawn(move || std::io::read_to_string(stdout).unwrap_or_default());
            let (mut cpu, mut peak_kb) = (0.0, 0);
            // Until it exits (its times final, not yet reaped).
            while let Some((c, exited)) = proc_cpu(pid) {
                cpu = c;
                if exited {
                    break;
                }
                peak_kb = proc_kb(pid, "VmHWM").unwrap_or(peak_kb);
                std::thread::sleep(Duration::from_millis(50));
            }
            let status = child.wait().expect("the sender ran");
            let (printed, said) = (printed.join().unwrap(), said.join().unwrap());
            let got = sink_report(sink);
            let streams = got["streams"].as_u64().unwrap_or(0);
            let (call_seconds, base_kb, own) = if sender == "voicesim load" {
                // It ran to the end (1: calls the agent never answered failed their checks).
                assert!(
                    matches!(status.code(), Some(0 | 1)),
                    "voicesim load: {status}\n{printed}\n{said}"
                );
                let results =
                    std::fs::read_to_string(out.join("results.jsonl")).expect("the load's results");
                let results: Vec<Value> = results
                    .lines()
                    .map(|l| serde_json::from_str(l).expect("a result line"))
                    .collect();
                // Every call it made streamed to the sink, and calls were replaced as they ended.
                assert_eq!(
                    results.len() as u64,
                    streams,
                    "calls made and streams received"
                );
                assert!(
                    streams > calls,
                    "{streams} calls for {calls} at once: none replaced"
                );
                let seconds: f64 = results
                    .iter()
                    .map(|r| r["metrics"]["duration_s"].as_f64().unwrap_or(0.0))
                    .sum();
                let warned = printed
                    .lines()
                    .chain(said.lines())
                    .find(|l| l.contains("itself was late"));
                let own = match warned.and_then(|w| w.split(" calls (").next()) {
                    Some(w) => w
                        .trim_start_matches("warning: voicesim itself was ")
                        .to_string(),
                    None => format!("on time in all {} calls", results.len()),
                };
                let base = base_kb
                    .lock()
                    .unwrap()
                    .expect("voicesim load said it began");
                (seconds, base, own)
            } else {
                // Past what it can carry, the Python sender gives up; the table says how.
                if bench && !status.success() {
                    let why = said
                        .lines()
                        .rfind(|l| !l.starts_with(' '))
                        .unwrap_or_default();
                    println!("| {calls} | {sender} | failed: {why} | | | | |");
                    continue;
                }
                assert!(status.success(), "the Python sender: {status}\n{said}");
                let sent: Value = serde_json::from_str(printed.lines().last().unwrap_or_default())
                    .unwrap_or_else(|e| panic!("the Python sender printed {printed:?}: {e}"));
                let seconds = sent["call_seconds"].as_f64().unwrap_or(0.0);
                (
                    seconds,
                    sent["base_kb"].as_u64().unwrap_or(0),
                    "not measured".into(),
                )
            };
            let f = |k: &str| got[k].as_f64().unwrap_or(0.0);
            println!(
                "| {calls} | {sender} | {:.0} / {:.0} | {:.1} / {:.1} / {:.1} ms | {:.4} | {:.2} MB | {own} |",
                f("started_per_s"),
                f("ended_per_s"),
                f("p50"),
                f("p99"),
                f("max"),
                cpu / call_seconds.max(1.0),
                peak_kb.saturating_sub(base_kb) as f64 / 1024.0 / calls as f64,
            );
        }
    }
}
