//! `voicesim agent` (the reference agent) and `voicesim call` (one scripted call to any agent).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;

use super::{CliError, Exit};
use crate::agent::{AgentConfig, Faults, ReferenceAgent};
use crate::audio::Clip;
use crate::noise::{LoadedNoise, MicTimeline, NoiseProfile};
use crate::record::{CallRecord, Line, Speaker};
use crate::sim::{self, Script, Senses, SimError, Utterance};
use crate::speech::{SttEngine, TtsEngine, Voice};
use crate::transport::call::{CallError, CallOptions};
use crate::transport::Protocol;

#[derive(Args)]
pub struct AgentArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8765")]
    listen: String,
    #[arg(long, value_enum, default_value_t = Protocol::Twilio)]
    protocol: Protocol,
    /// Wire rate in Hz for raw-pcm, vonage and pipecat (the telephony protocols are 8 kHz,
    /// OpenAI Realtime 24 kHz).
    #[arg(long, default_value_t = 16_000, value_parser = wire_rate)]
    rate: u32,
    /// The agent's voice.
    #[arg(long, value_enum, default_value_t)]
    tts: TtsEngine,
    /// The agent's ears.
    #[arg(long, value_enum, default_value_t)]
    stt: SttEngine,
    /// Quiet after the caller's speech before the agent takes its turn.
    #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(u64).range(100..=5_000))]
    silence_ms: u64,
    /// Fault: answer this many ms after the caller stops speaking.
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u64).range(0..=60_000))]
    delay_ms: u64,
    /// Fault: drop the connection without a closing handshake after N replies (the greeting is one).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    drop_after: Option<u32>,
    /// Fault: accept calls and never say anything.
    #[arg(long)]
    silent: bool,
    /// Fault: send a message that breaks the protocol when the call starts.
    #[arg(long)]
    garbage: bool,
    /// Fault: stream replies at a quarter of real time.
    #[arg(long)]
    slow_drip: bool,
    /// Fault: hear order numbers with their last two digits swapped.
    #[arg(long)]
    mishear: bool,
    /// Fault: never stop talking; another line follows every reply until the caller speaks.
    #[arg(long)]
    chatty: bool,
    /// Fault: end each call at a random moment within its first MS ms, by closing or by
    /// just going away.
    #[arg(long, value_name = "MS", value_parser = clap::value_parser!(u64).range(1..))]
    close_within_ms: Option<u64>,
    /// Fault: make out no words when the caller's SNR, as the agent measures what it
    /// receives, is below DB: a known threshold for `voicesim threshold` to find.
    #[arg(long, value_name = "DB", allow_negative_numbers = true)]
    deaf_below_snr: Option<f64>,
}

#[derive(Args)]
pub struct CallArgs {
    /// The agent's websocket URL (ws:// or wss://).
    url: String,
    #[arg(long, value_enum, default_value_t = Protocol::Twilio)]
    protocol: Protocol,
    /// A line the caller says, in order, one per agent turn; `@FILE` plays a recording instead.
    #[arg(long = "say", value_name = "TEXT|@FILE")]
    lines: Vec<String>,
    /// The caller speaks first instead of waiting for the agent's greeting.
    #[arg(long)]
    caller_first: bool,
    /// Noise profile at the caller's end: a bundled name or a .yaml file.
    #[arg(long, default_value = "clean")]
    noise: String,
    /// Move the profile's background to this SNR in dB.
    #[arg(long, allow_negative_numbers = true)]
    snr: Option<f64>,
    /// Fixes noise offsets, bursts and Twilio ids: same seed, same call audio.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Session parameter for the agent, KEY=VALUE (Twilio customParameters).
    #[arg(long = "param", value_name = "KEY=VALUE", value_parser = key_value)]
    params: Vec<(String, String)>,
    /// Extra handshake header, "NAME: VALUE" (e.g. an auth token).
    #[arg(long = "header", value_name = "NAME: VALUE", value_parser = header)]
    headers: Vec<(String, String)>,
    /// Wire rate in Hz for raw-pcm, vonage and pipecat.
    #[arg(long, default_value_t = 16_000, value_parser = wire_rate)]
    rate: u32,
    /// Send audio unpaced, for agents that accept faster than real time.
    #[arg(long)]
    fast: bool,
    /// End the call when the agent says nothing for this many seconds.
    #[arg(long, default_value_t = 15, value_parser = clap::value_parser!(u64).range(1..=600))]
    answer_timeout_s: u64,
    /// End the call after this many seconds.
    #[arg(long, default_value_t = 300, value_parser = clap::value_parser!(u64).range(1..=3_600))]
    max_duration_s: u64,
    /// The caller's voice.
    #[arg(long, value_enum, default_value_t)]
    tts: TtsEngine,
    #[arg(long)]
    voice: Option<String>,
    /// The caller's ears.
    #[arg(long, value_enum, default_value_t)]
    stt: SttEngine,
    /// Where to write call.wav, events.jsonl and call.json.
    #[arg(long, short, default_value = "voicesim-call")]
    out: PathBuf,
    /// You are the caller: your microphone goes through the caller's line (--noise, bursts,
    /// impairments) to the agent in real time, the agent plays on your output device, and
    /// the call is recorded, measured and transcribed like any other. Use headphones.
    #[cfg(feature = "devices")]
    #[arg(long, conflicts_with_all = ["lines", "caller_first", "fast"])]
    live: bool,
    /// With --live: the input device [default: the system's default input].
    #[cfg(feature = "devices")]
    #[arg(long, requires = "live")]
    input: Option<String>,
    /// With --live: the output device [default: the system's default output].
    #[cfg(feature = "devices")]
    #[arg(long, requires = "live")]
    output: Option<String>,
}

pub(super) fn wire_rate(s: &str) -> Result<u32, String> {
    match s.parse::<u32>() {
        Ok(r @ (8_000 | 16_000 | 24_000 | 48_000)) => Ok(r),
        _ => Err(format!("{s}: use 8000, 16000, 24000 or 48000")),
    }
}

fn key_value(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.trim().to_string(), v.to_string()))
        .filter(|(k, _)| !k.is_empty())
        .ok_or_else(|| format!("{s}: write KEY=VALUE"))
}

pub(super) fn header(s: &str) -> Result<(String, String), String> {
    s.split_once(':')
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .filter(|(k, _)| !k.is_empty())
        .ok_or_else(|| format!("{s}: write \"NAME: VALUE\""))
}

pub(super) fn runtime() -> Result<tokio::runtime::Runtime, CliError> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError {
            exit: Exit::Unreachable,
            message: format!("cannot start the async runtime: {e}"),
        })
}

pub fn agent(args: AgentArgs) -> Result<Exit, CliError> {
    let mut config = AgentConfig::new(args.protocol);
    config.rate = args.rate;
    config.silence_ms = args.silence_ms as f64;
    config.faults = Faults {
        delay_ms: args.delay_ms,
        drop_after: args.drop_after,
        silent: args.silent,
        garbage: args.garbage,
        slow_drip: args.slow_drip,
        mishear: args.mishear,
        chatty: args.chatty,
        close_within_ms: args.close_within_ms,
        deaf_below_snr: args.deaf_below_snr,
    };
    let agent = Arc::new(ReferenceAgent::new(
        config,
        args.tts.open()?.into(),
        args.stt.open()?.into(),
    ));
    runtime()?.block_on(async move {
        let listener = tokio::net::TcpListener::bind(&args.listen)
            .await
            .map_err(|e| {
                CliError::bad_input(format!(
                    "cannot listen on {}: {e}; choose another address with --listen",
                    args.listen
                ))
            })?;
        let addr = listener
            .local_addr()
            .map_err(|e| CliError::bad_input(e.to_string()))?;
        println!(
            "voicesim agent: {} on ws://{addr}/ (Ctrl-C stops it)",
            serde_json::to_value(args.protocol)
                .map_or_else(|_| "?".into(), |v| v.as_str().unwrap_or("?").to_string())
        );
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let server = tokio::spawn(agent.serve(listener, tx));
        while let Some(call) = rx.recv().await {
            // A closed stdout must not stop the agent: the report is a courtesy.
            let _ = report_call(call);
        }
        match server.await {
            Ok(Err(e)) => Err(CliError {
                exit: Exit::Unreachable,
                message: format!("the agent stopped: {e}"),
            }),
            _ => Ok(Exit::Ok),
        }
    })
}

fn report_call(
    call: Result<crate::agent::AgentCallLog, crate::agent::AgentError>,
) -> std::io::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match call {
        Ok(log) => {
            writeln!(
                out,
                "call ended ({}): {} replies",
                log.ended,
                log.turns.len()
            )?;
            for turn in &log.turns {
                if !turn.heard.is_empty() {
                    writeln!(out, "  heard  {}", turn.heard.trim())?;
                }
                writeln!(out, "  said   {}", turn.said)?;
            }
        }
        Err(e) => writeln!(out, "call failed: {e}")?,
    }
    out.flush()
}

pub fn call(args: CallArgs) -> Result<Exit, CliError> {
    let live = args.live_caller();
    let mut profile = NoiseProfile::find(&args.noise)?;
    if let Some(snr) = args.snr {
        profile = profile.with_background_snr(snr)?;
    }
    let mut lines = Vec::new();
    for line in &args.lines {
        lines.push(match line.strip_prefix('@') {
            Some(path) => Utterance::Audio {
                clip: Clip::open(path)?,
                text: format!("({path})"),
            },
            None if line.trim().is_empty() => {
                return Err(CliError::bad_input(
                    "--say: an empty line; give the words to say",
                ))
            }
            None => Utterance::Text(line.clone()),
        });
    }
    let adapter = args.protocol.adapter(
        args.seed,
        args.params.into_iter().collect::<BTreeMap<_, _>>(),
        args.rate,
    );
    #[cfg_attr(not(feature = "devices"), allow(unused_mut))]
    let mut mic = MicTimeline::new(&LoadedNoise::load(&profile, adapter.rate())?, args.seed);
    let senses = Senses {
        tts: args.tts.open()?.into(),
        voice: Voice {
            name: args.voice,
            ..Voice::default()
        },
        stt: args.stt.open()?.into(),
    };
    let mut options = CallOptions::new(&args.url);
    options.headers = args.headers;
    options.fast = args.fast;
    options.answer_timeout = Duration::from_secs(args.answer_timeout_s);
    options.max_duration = Duration::from_secs(args.max_duration_s);
    let mut script = Script::new(lines, args.caller_first);
    #[cfg_attr(not(feature = "devices"), allow(unused_mut, unused_variables))]
    let mut live_caller = sim::Live;
    #[cfg_attr(not(feature = "devices"), allow(unused_mut))]
    let mut caller: &mut dyn sim::Caller = &mut script;
    #[cfg(feature = "devices")]
    if args.live {
        let live = super::live::live_call(args.input.clone(), args.output.clone(), adapter.rate())?;
        mic = mic.with_live_voice(live.voice);
        options.monitor = Some(live.monitor);
        options.hang_up = Some(live.hang_up);
        caller = &mut live_caller;
    }

    let record = runtime()?.block_on(async {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Line>();
        let printer = tokio::spawn(async move {
            while let Some(line) = rx.recv().await {
                let who = match line.speaker {
                    Speaker::Caller => "caller",
                    Speaker::Agent => "agent ",
                };
                println!("{:>7.1} s  {who}  {}", line.at_ms / 1000.0, line.text);
            }
        });
        let record = sim::converse(options, adapter, mic, caller, &senses, Some(tx)).await;
        let _ = printer.await;
        record
    });
    let save = |record: &CallRecord| {
        record
            .save(&args.out)
            .map_err(|e| CliError::bad_input(format!("{}: cannot write: {e}", args.out.display())))
    };
    let record = match record {
        // What a live caller said is known only by listening to it.
        Ok(record) if live => transcribe_caller(record, &senses)?,
        Ok(record) => record,
        Err(SimError::Broke { error, record }) => {
            // The call up to the failure is kept for a listen; the failure decides the exit.
            save(&record)?;
            return Err(sim_error(*error));
        }
        Err(e) => return Err(sim_error(e)),
    };
    save(&record)?;

    println!();
    println!(
        "ended: {} after {:.1} s",
        describe_end(&record.ended),
        record.duration_ms / 1000.0
    );
    for (i, turn) in record.turns.iter().enumerate() {
        let latency = turn
            .response_latency_ms
            .map_or("greeting".to_string(), |l| format!("answered in {l:.0} ms"));
        println!(
            "  agent turn {}: {latency}, talked {:.1} s",
            i + 1,
            turn.agent_talk_ms / 1000.0
        );
    }
    for fault in &record.faults {
        println!("FAULT: {fault}");
    }
    println!("recording: {}", args.out.join("call.wav").display());
    Ok(if record.faults.is_empty() {
        Exit::Ok
    } else {
        Exit::Failed
    })
}

impl CallArgs {
    fn live_caller(&self) -> bool {
        #[cfg(feature = "devices")]
        return self.live;
        #[cfg(not(feature = "devices"))]
        return false;
    }
}

/// Adds the caller's lines of a live call: each utterance the microphone timeline marked,
/// transcribed from the caller's channel.
fn transcribe_caller(mut record: CallRecord, senses: &Senses) -> Result<CallRecord, CliError> {
    use crate::noise::MicEvent;
    use crate::transport::event::CallEventKind;
    let mut start = None;
    let mut spans = Vec::new();
    for event in &record.events {
        match &event.kind {
            CallEventKind::Mic {
                detail: MicEvent::SpeechStarted { at_ms },
            } => start = Some(*at_ms),
            CallEventKind::Mic {
                detail: MicEvent::SpeechEnded { at_ms },
            } => {
                if let Some(from) = start.take() {
                    spans.push((from, *at_ms));
                }
            }
            _ => {}
        }
    }
    let caller = &record.outcome.caller;
    let index = |ms: f64| ((ms / 1000.0 * f64::from(caller.rate)) as usize).min(caller.len());
    for (from, to) in spans {
        let piece = caller
            .samples
            .get(index(from)..index(to))
            .unwrap_or_default();
        let heard = senses
            .stt
            .transcribe(&Clip::new(piece.to_vec(), caller.rate))?;
        if !heard.text.trim().is_empty() {
            println!("{:>7.1} s  caller  {}", from / 1000.0, heard.text.trim());
            record.transcript.push(Line {
                speaker: Speaker::Caller,
                text: heard.text.trim().to_string(),
                at_ms: from,
                heard: None,
            });
        }
    }
    record
        .transcript
        .sort_by(|a, b| a.at_ms.total_cmp(&b.at_ms));
    Ok(record)
}

/// How a call that could not be made, or broke on the caller's side, exits.
fn sim_error(e: SimError) -> CliError {
    match e {
        SimError::Connect(e @ (CallError::Connect { .. } | CallError::Timeout { .. })) => {
            CliError {
                exit: Exit::Unreachable,
                message: e.to_string(),
            }
        }
        SimError::Connect(e) => CliError::bad_input(e.to_string()),
        SimError::Speech(e) => e.into(),
        SimError::Caller(m) => CliError {
            exit: Exit::Unreachable,
            message: m,
        },
        e @ SimError::Panic(_) => CliError {
            exit: Exit::Internal,
            message: e.to_string(),
        },
        SimError::Broke { error, .. } => sim_error(*error),
    }
}

fn describe_end(ended: &crate::transport::event::EndReason) -> String {
    use crate::transport::event::EndReason;
    match ended {
        EndReason::CallerHungUp => "the caller hung up".into(),
        EndReason::AgentHungUp => "the agent hung up".into(),
        EndReason::AgentClosed => "the agent closed the connection".into(),
        EndReason::TimeLimit => "time limit".into(),
        EndReason::NoAnswer { waited_ms } => format!("no answer for {:.1} s", waited_ms / 1000.0),
        EndReason::Error { message } => format!("error: {message}"),
    }
}
