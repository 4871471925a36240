//! The local LLM's speed on this machine: load time, prompt and generation tokens a second, a
//! caller's line (first and next turns), a verdict, and resident memory.
//!
//! `cargo bench --bench llm` (beside a busy core: `scripts/busy.sh 1 cargo bench --bench llm`)
//! prints a Markdown table for docs/benchmarks.md; `-- --llm-model FILE` measures another model.
//! Under `cargo test` it runs a short smoke version so it cannot rot.

use std::time::Instant;

use voicesim::judge::eval::{self, JudgeSet};
use voicesim::llm::{default_file, Chat, LocalChat, Message};

fn rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let full = args.iter().any(|a| a == "--bench");
    let file = args
        .iter()
        .position(|a| a == "--llm-model")
        .and_then(|i| args.get(i + 1))
        .map_or_else(default_file, std::path::PathBuf::from);
    let started = Instant::now();
    let model = LocalChat::load(&file).expect("the local chat model; run `make setup`");
    let load = started.elapsed().as_secs_f64();
    let (prompt_tps, gen_tps) = model
        .speed(if full { 300 } else { 20 }, if full { 30 } else { 3 })
        .unwrap();

    // A caller: the first line reads the instructions, the next ones only what is new.
    let mut messages = vec![
        Message::system(
            "You play a person who has phoned a company. You are the CALLER. Each reply is \
             exactly what the caller says next: one short spoken sentence. Who you are: A \
             customer at home checking on a parcel. Your objective: Find out when order 4521 \
             arrives, then end the call politely.",
        ),
        Message::user(
            "Agent: Hello, this is the order line. What is your order number?\n(Your goal now: \
             Give order number 4521. Say the caller's next line only.)",
        ),
    ];
    let mut lines = Vec::new();
    for (turn, agent) in [
        "Agent: Order four five two one has been shipped. It will be delivered on Friday. \
         Anything else?\n(Your goal now: Thank the agent and say goodbye. Say the caller's next \
         line only.)",
        "",
    ]
    .iter()
    .enumerate()
    {
        let started = Instant::now();
        let line = model.line(&messages, 1, turn as u64).unwrap();
        lines.push(started.elapsed().as_secs_f64());
        messages.push(Message::assistant(line));
        messages.push(Message::user(*agent));
        if !full {
            break;
        }
    }
    messages.truncate(messages.len() - 1);

    let set = JudgeSet::load(std::path::Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/judge/set.yaml"
    )))
    .unwrap();
    let items = if full { 8 } else { 1 };
    let started = Instant::now();
    for item in set.items.iter().take(items) {
        eval::judge(&model, item);
    }
    let verdict = started.elapsed().as_secs_f64() / items as f64;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!("{} on {cores} cores:\n", model.describe());
    println!("| load | prompt | generation | caller line, first turn | caller line, next turn | verdict | memory |");
    println!("| --- | --- | --- | --- | --- | --- | --- |");
    println!(
        "| {load:.1} s | {prompt_tps:.0} tokens/s | {gen_tps:.1} tokens/s | {:.1} s | {} | {verdict:.1} s | {:.0} MB |",
        lines[0],
        lines.get(1).map_or("-".into(), |s| format!("{s:.1} s")),
        rss_mb()
    );
}
