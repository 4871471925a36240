//! Building `report.html` for a run of 1,000 calls: how long it takes and how big the page is.
//!
//! The run is made up from a real recording (the bundled speech fixture and cafe noise as each
//! call's two channels) and realistic results: ten transcript lines, two steps, two
//! expectations, per-turn events. It is written once to `target/bench-report-1000/`, where
//! `voicesim report html target/bench-report-1000` can be timed as a whole process too.

use std::path::{Path, PathBuf};

use criterion::{criterion_group, criterion_main, Criterion};
use serde_json::json;
use voicesim::audio::{Clip, Envelope};
use voicesim::judge::{Judgement, Metrics, StepResult, Verdict};
use voicesim::record::{Line, Speaker, Waveform, WAVEFORM};
use voicesim::report::folder::{call_dir, RESULTS};
use voicesim::report::html::{self, HtmlOptions};
use voicesim::report::{ExpectationResult, Origin, Outcome, RunResult};
use voicesim::suite::{Condition, TestCase};

const CALLS: u32 = 1_000;

fn folder() -> (PathBuf, Vec<RunResult>) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench-report-1000");
    let speech = Clip::open(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/audio/speech_orig_16k.wav"
    ))
    .expect("bundled speech");
    // A 30 s call: the caller's speech three times over, the agent's the same shifted.
    let mut samples = speech.samples.clone();
    samples.extend(speech.samples.iter().copied());
    samples.extend(speech.samples.iter().copied());
    samples.truncate(30 * speech.rate as usize);
    let caller = Clip::new(samples.clone(), speech.rate);
    let agent = Clip::new(samples.iter().rev().copied().collect(), speech.rate);
    let waveform = serde_json::to_vec(&Waveform {
        caller: Envelope::of(&caller),
        agent: Envelope::of(&agent),
    })
    .expect("json");
    let tests = [
        "order-status",
        "unknown-order",
        "ask-for-a-person",
        "reschedule",
        "refund",
    ];
    let conditions: Vec<Condition> = [None, Some(20.0), Some(10.0), Some(5.0), Some(0.0)]
        .into_iter()
        .map(|snr| Condition {
            profile: if snr.is_some() { "cafe" } else { "clean" }.into(),
            snr,
        })
        .collect();
    let mut results = Vec::new();
    let mut lines = String::new();
    for i in 0..CALLS {
        let name = tests[i as usize % tests.len()];
        let condition = &conditions[(i as usize / tests.len()) % conditions.len()];
        let run = i / (tests.len() * conditions.len()) as u32 + 1;
        let case: TestCase = serde_json::from_value(json!({
            "name": name, "steps": [{"goal": "g", "static_utterance": "hi"}]
        }))
        .expect("a test case");
        let mut r = RunResult::new("acme-orders", &case, condition, run, 1000 + i as u64);
        r.origin = Origin {
            voicesim: "bench".into(),
            agent: "ws://127.0.0.1:8765/".into(),
            protocol: "twilio".into(),
            seed: 1,
        };
        r.error = None;
        let passed = i % 3 != 0;
        r.outcome = if passed {
            Outcome::Passed
        } else {
            Outcome::Failed
        };
        r.transcript = (0..10)
            .map(|k| Line {
                speaker: if k % 2 == 0 {
                    Speaker::Agent
                } else {
                    Speaker::Caller
                },
                text: "Order four five two one has shipped and will be delivered on Friday.".into(),
                at_ms: k as f64 * 3000.0,
                heard: None,
            })
            .collect();
        r.steps = ["Give the order number", "End the call"]
            .iter()
            .map(|goal| StepResult {
                goal: goal.to_string(),
                verdict: if passed {
                    Verdict::Met
                } else {
                    Verdict::NotMet
                },
                justification: "the agent said \"friday\"".into(),
                turns: 1,
            })
            .collect();
        r.expectations = ["states-the-status", "answers-promptly"]
            .iter()
            .map(|name| ExpectationResult {
                name: name.to_string(),
                judgement: Judgement {
                    verdict: Verdict::Met,
                    justification: "latency_p95_ms was 812, wanted < 3000".into(),
                },
            })
            .collect();
        r.metrics = Metrics {
            latency_p50_ms: Some(600.0 + (i % 50) as f64),
            latency_p95_ms: Some(900.0),
            latency_max_ms: Some(950.0),
            turns: 5,
            duration_s: 30.0,
            underruns: 0,
            wer: Some(0.1),
            hearing_drift: Some(0.0),
            send_slip_p99_ms: Some(1.5),
            send_slip_max_ms: Some(4.0),
            loop_stall_max_ms: Some(3.0),
            reaction_p50_ms: Some(450.0),
            reaction_p95_ms: Some(760.0),
            reaction_late_max_ms: Some(0.0),
            no_answers: Some(0),
            false_barge_ins: Some(u32::from(i % 7 == 0)),
            bursts: Some(2),
            asked_to_repeat: Some(u32::from(i % 5 == 0)),
            caller_repeats: Some(u32::from(i % 5 == 0)),
            abandoned: Some(false),
            ..Metrics::default()
        };
        r.latencies_ms = vec![600.0, 650.0, 700.0, 900.0, 950.0];
        let call = dir.join(call_dir(name, &condition.label(), run));
        std::fs::create_dir_all(&call).expect("mkdir");
        std::fs::write(call.join(WAVEFORM), &waveform).expect("write");
        let mut events = String::new();
        let mut turns = Vec::new();
        for k in 0..5 {
            let t = k as f64 * 6000.0;
            events.push_str(&format!(
                "{{\"at_ms\":{t},\"event\":\"mic\",\"detail\":{{\"event\":\"speech_started\",\"at_ms\":{t}}}}}\n\
                 {{\"at_ms\":{e},\"event\":\"mic\",\"detail\":{{\"event\":\"speech_ended\",\"at_ms\":{e}}}}}\n\
                 {{\"at_ms\":{b},\"event\":\"mic\",\"detail\":{{\"event\":\"burst\",\"at_ms\":{b},\"file\":\"door.wav\",\"snr_db\":5.0}}}}\n",
                e = t + 2500.0,
                b = t + 1000.0
            ));
            turns.push(
                json!({"agent_started_ms": t + 3100.0, "caller_ended_ms": t + 2500.0,
                "response_latency_ms": 600.0, "agent_talk_ms": 2500.0}),
            );
        }
        std::fs::write(call.join("events.jsonl"), events).expect("write");
        std::fs::write(call.join("call.json"), json!({"turns": turns}).to_string()).expect("write");
        r.recording = Some(call);
        lines.push_str(&serde_json::to_string(&r).expect("json"));
        lines.push('\n');
        results.push(r);
    }
    std::fs::write(dir.join(RESULTS), lines).expect("write");
    (dir, results)
}

fn report(c: &mut Criterion) {
    let (dir, results) = folder();
    let page = dir.join("report.html");
    let mut group = c.benchmark_group("report.html");
    group.sample_size(10);
    group.bench_function("1000 calls", |b| {
        b.iter(|| {
            html::write(&results, &dir, &page, None, &HtmlOptions::default()).expect("writes")
        })
    });
    group.finish();
    let size = std::fs::metadata(&page).map_or(0, |m| m.len());
    eprintln!(
        "report.html for {CALLS} calls: {:.2} MB ({} bytes)",
        size as f64 / 1e6,
        size
    );
}

criterion_group!(benches, report);
criterion_main!(benches);
