//! The commands that touch the sound card: `devices`, `noise record`, `noise play`, `listen`.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{Args, ValueEnum};

use super::{CliError, Exit};
use crate::audio::{level, write_wav, Clip, FRAME_MS};
use crate::devices::{self, Capture, DeviceError, Speaker};
use crate::noise::{LoadedNoise, MicTimeline, NoiseProfile};

impl From<DeviceError> for CliError {
    fn from(e: DeviceError) -> Self {
        CliError::bad_input(e.to_string())
    }
}

/// `voicesim devices`.
pub fn list() -> Result<Exit, CliError> {
    let all = devices::list()?;
    if all.is_empty() {
        println!("no audio devices (is a sound server running?)");
        return Ok(Exit::Ok);
    }
    let describe = |f: &Option<devices::Format>, default: bool| match f {
        Some(f) => format!(
            "{} Hz, {} ch, {}{}",
            f.rate,
            f.channels,
            f.sample,
            if default { " (default)" } else { "" }
        ),
        None => "-".into(),
    };
    println!(
        "{:<16} {:<30} {:<30} description",
        "device", "input", "output"
    );
    for d in all {
        println!(
            "{:<16} {:<30} {:<30} {}",
            d.name,
            describe(&d.input, d.default_input),
            describe(&d.output, d.default_output),
            d.description
        );
    }
    Ok(Exit::Ok)
}

#[derive(Args)]
pub struct RecordArgs {
    /// The WAV file to write; a noise profile that loops it is written beside it (.yaml).
    #[arg(long, short)]
    output: PathBuf,
    /// How long to record the room.
    #[arg(long, default_value_t = 30.0)]
    seconds: f64,
    /// The input device [default: the system's default input] (see `voicesim devices`).
    #[arg(long)]
    device: Option<String>,
    /// Keep the device's own sample rate instead of resampling to 16 kHz.
    #[arg(long)]
    native_rate: bool,
    /// First have a person read a sentence at their normal voice, and write the SNR the room
    /// really had into the profile.
    #[arg(long)]
    calibrate: bool,
}

/// What a person reads for `--calibrate`.
const CALIBRATION: &str =
    "Hello, I am calling about my order. The number is four five two one, and it has not arrived yet.";

/// The SNR written into a profile recorded without `--calibrate`.
const GUESSED_SNR_DB: f64 = 10.0;

/// A live level meter on a terminal, a line a second elsewhere.
struct Meter {
    tty: bool,
    heard: usize,
    total: usize,
    rate: u32,
    last_second: usize,
}

impl Meter {
    fn new(seconds: f64, rate: u32) -> Meter {
        Meter {
            tty: std::io::stderr().is_terminal(),
            heard: 0,
            total: (seconds * f64::from(rate)) as usize,
            rate,
            last_second: usize::MAX,
        }
    }

    fn show(&mut self, piece: &[f32]) {
        self.heard += piece.len();
        let db = level::to_dbfs(level::rms(piece)).max(-90.0);
        let left = self.total.saturating_sub(self.heard) / self.rate.max(1) as usize;
        let bars = ((db + 70.0) / 70.0 * 30.0).clamp(0.0, 30.0) as usize;
        if self.tty {
            eprint!(
                "\r  [{:<30}] {db:6.1} dBFS  {left:>3} s left ",
                "#".repeat(bars)
            );
            let _ = std::io::stderr().flush();
        } else if left != self.last_second {
            eprintln!("  {db:6.1} dBFS, {left} s left");
        }
        self.last_second = left;
    }

    fn done(&self) {
        if self.tty {
            eprintln!();
        }
    }
}

/// Records `seconds`, showing the meter; a failure keeps what was captured.
fn capture(mic: &mut Capture, seconds: f64) -> Result<Clip, (Clip, DeviceError)> {
    let mut meter = Meter::new(seconds, mic.rate());
    let clip = mic.record(Duration::from_secs_f64(seconds), |p| meter.show(p));
    meter.done();
    clip
}

/// `voicesim noise record`.
pub fn record(args: RecordArgs) -> Result<Exit, CliError> {
    if !(args.seconds.is_finite() && (1.0..=3600.0).contains(&args.seconds)) {
        return Err(CliError::bad_input(format!(
            "--seconds {} must be between 1 and 3600",
            args.seconds
        )));
    }
    let mut mic = Capture::open(args.device.as_deref())?;
    let reading = if args.calibrate {
        eprintln!(
            "calibrating on {} ({} Hz). Read this aloud, at your normal voice, now:\n\n  \"{CALIBRATION}\"\n",
            mic.device(),
            mic.rate()
        );
        let reading = capture(&mut mic, 8.0).map_err(|(_, e)| CliError::from(e))?;
        eprintln!("thank you; now the room alone: stay quiet");
        Some(reading)
    } else {
        None
    };
    eprintln!(
        "recording {:.0} s from {} ({} Hz)",
        args.seconds,
        mic.device(),
        mic.rate()
    );
    let (room, failure) = match capture(&mut mic, args.seconds) {
        Ok(clip) => (clip, None),
        Err((partial, e)) => {
            // A failed device's stream may never let its thread go: stopping it could hang
            // on what is gone, and the process is about to end anyway.
            std::mem::forget(mic);
            (partial, Some(e))
        }
    };
    let room = if args.native_rate {
        room
    } else {
        room.resample(16_000)?
    };
    if room.is_empty() {
        return Err(failure.map_or_else(
            || CliError::bad_input("nothing was recorded"),
            CliError::from,
        ));
    }
    write_wav(&args.output, &[&room])?;
    let snr = reading
        .as_ref()
        .and_then(|r| r.clone().resample(room.rate).ok())
        .and_then(|r| devices::calibrated_snr(&r, &room));
    let profile = write_profile(&args.output, &room, snr)?;
    println!(
        "wrote {} ({:.1} s at {} Hz, {:.1} dBFS) and {}",
        args.output.display(),
        room.duration(),
        room.rate,
        room.rms_dbfs(),
        profile.display()
    );
    match (snr, args.calibrate) {
        (Some(snr), _) => println!("  the room was {snr:.1} dB below the reader's voice: the profile replays it at that SNR"),
        (None, true) => println!("  warning: the reading was not louder than the room; the profile guesses {GUESSED_SNR_DB} dB SNR"),
        (None, false) => println!("  the profile guesses {GUESSED_SNR_DB} dB SNR; --calibrate measures it"),
    }
    for problem in devices::problems(&room) {
        println!("  warning: {problem}");
    }
    match failure {
        Some(e) => Err(CliError::bad_input(format!(
            "{e} (the {:.1} s recorded before it are kept in {})",
            room.duration(),
            args.output.display()
        ))),
        None => Ok(Exit::Ok),
    }
}

/// Writes `<stem>.yaml` beside the recording: the recording as a looped background.
fn write_profile(wav: &Path, room: &Clip, snr: Option<f64>) -> Result<PathBuf, CliError> {
    let stem = wav
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("recorded");
    let file = wav.file_name().and_then(|s| s.to_str()).unwrap_or_default();
    let snr_db = snr.unwrap_or(GUESSED_SNR_DB).clamp(-30.0, 60.0);
    let how = match snr {
        Some(_) => "measured with --calibrate: a normal voice over this room",
        None => "not measured (record with --calibrate to measure it)",
    };
    let yaml = format!(
        "# Recorded by `voicesim noise record`: {:.1} s at {} Hz, {:.1} dBFS.\n\
         name: {stem}\n\
         description: A recorded room, looped.\n\
         background:\n  - file: {file}\n    snr: {snr_db:.1}  # {how}\n",
        room.duration(),
        room.rate,
        room.rms_dbfs()
    );
    let path = wav.with_extension("yaml");
    std::fs::write(&path, yaml)
        .map_err(|e| CliError::bad_input(format!("cannot write {}: {e}", path.display())))?;
    // The profile must load as any other does.
    NoiseProfile::load(&path)?;
    Ok(path)
}

#[derive(Args)]
pub struct PlayArgs {
    /// A bundled profile name or a profile .yaml file.
    profile: String,
    #[arg(long, allow_negative_numbers = true)]
    snr: Option<f64>,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Stop after this long [default: play until Ctrl-C].
    #[arg(long)]
    seconds: Option<f64>,
    /// The output device [default: the system's default output].
    #[arg(long)]
    device: Option<String>,
    /// Sample rate played at.
    #[arg(long, default_value_t = 48_000, value_parser = clap::value_parser!(u32).range(8000..=48000))]
    rate: u32,
}

/// `voicesim noise play`: the profile's microphone timeline, with no one speaking, on the
/// speakers (the same samples `noise mix` writes for the same profile, seed and rate).
pub fn play(args: PlayArgs) -> Result<Exit, CliError> {
    let mut profile = NoiseProfile::find(&args.profile)?;
    if let Some(snr) = args.snr {
        profile = profile.with_background_snr(snr)?;
    }
    let noise = LoadedNoise::load(&profile, args.rate)?;
    let mut mic = MicTimeline::new(&noise, args.seed);
    let speaker = Speaker::open(args.device.as_deref())?;
    eprintln!(
        "playing {} (seed {}) on {}{}",
        profile.name,
        args.seed,
        speaker.device(),
        if args.seconds.is_none() {
            "; Ctrl-C stops"
        } else {
            ""
        }
    );
    let frames_per_chunk = 1000 / FRAME_MS as usize; // a second at a time
    let mut left = args
        .seconds
        .map(|s| (s.max(0.0) * 1000.0 / f64::from(FRAME_MS)).round() as usize);
    loop {
        let n = left.map_or(frames_per_chunk, |l| l.min(frames_per_chunk));
        if n == 0 {
            break;
        }
        let mut chunk = Vec::with_capacity(n * args.rate as usize / 50);
        for _ in 0..n {
            chunk.extend(mic.next_frame().samples);
        }
        speaker.play(&Clip::new(chunk, args.rate));
        left = left.map(|l| l - n);
        // Two seconds queued at most: enough to never run dry, little to wait for at the end.
        while speaker.queued() > 2 && speaker.playing()? {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    speaker.finish()?;
    Ok(Exit::Ok)
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Channel {
    Caller,
    Agent,
    Both,
}

#[derive(Args)]
pub struct ListenArgs {
    /// A WAV file, or a call folder (with call.wav, events.jsonl, call.json).
    path: PathBuf,
    /// Which side of a call to play (caller left, agent right in call.wav).
    #[arg(long, value_enum, default_value_t = Channel::Both)]
    channel: Channel,
    /// Start this many seconds in.
    #[arg(long, default_value_t = 0.0)]
    from: f64,
    /// The output device [default: the system's default output].
    #[arg(long)]
    device: Option<String>,
}

/// Something to print when playback reaches it.
struct Cue {
    at_s: f64,
    text: String,
}

/// The transcript lines and notable events of a call folder, in time order.
fn cues(dir: &Path) -> Vec<Cue> {
    let mut cues = Vec::new();
    if let Ok(text) = std::fs::read_to_string(dir.join("call.json")) {
        let call: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
        for line in call
            .get("transcript")
            .and_then(|t| t.as_array())
            .into_iter()
            .flatten()
        {
            let at = line.get("at_ms").and_then(|v| v.as_f64()).unwrap_or(0.0);
            let who = line.get("speaker").and_then(|v| v.as_str()).unwrap_or("?");
            let text = line.get("text").and_then(|v| v.as_str()).unwrap_or("");
            cues.push(Cue {
                at_s: at / 1000.0,
                text: format!("{who:<7} {text}"),
            });
        }
    }
    if let Ok(text) = std::fs::read_to_string(dir.join("events.jsonl")) {
        for event in text
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        {
            let at = event.get("at_ms").and_then(|v| v.as_f64()).unwrap_or(0.0) / 1000.0;
            let kind = event.get("event").and_then(|v| v.as_str()).unwrap_or("");
            let detail = event.pointer("/detail/kind").and_then(|v| v.as_str());
            let text = match (kind, detail) {
                ("agent_cleared", _) => "        [the agent stopped: clear]".to_string(),
                ("agent_underrun", _) => format!(
                    "        [dropout: {:.0} ms]",
                    event.get("gap_ms").and_then(|v| v.as_f64()).unwrap_or(0.0)
                ),
                ("key_pressed", _) => format!(
                    "        [key {}]",
                    event.get("digit").and_then(|v| v.as_str()).unwrap_or("?")
                ),
                ("mic", Some("burst_placed")) => format!(
                    "        [burst: {}]",
                    event
                        .pointer("/detail/file")
                        .and_then(|v| v.as_str())
                        .unwrap_or("?")
                ),
                _ => continue,
            };
            cues.push(Cue { at_s: at, text });
        }
    }
    cues.sort_by(|a, b| a.at_s.total_cmp(&b.at_s));
    cues
}

/// `voicesim listen`.
pub fn listen(args: ListenArgs) -> Result<Exit, CliError> {
    let (wav, cues) = if args.path.is_dir() {
        (args.path.join("call.wav"), cues(&args.path))
    } else {
        (args.path.clone(), Vec::new())
    };
    let (samples, channels, rate) = read_channels(&wav)?;
    let (mut samples, channels) = match (channels, args.channel) {
        (2, Channel::Caller) => (samples.iter().step_by(2).copied().collect(), 1),
        (2, Channel::Agent) => (samples.iter().skip(1).step_by(2).copied().collect(), 1),
        _ => (samples, channels),
    };
    let frames = samples.len() / usize::from(channels.max(1));
    let duration = frames as f64 / f64::from(rate);
    let from = args.from.clamp(0.0, duration);
    let skip = (from * f64::from(rate)) as usize * usize::from(channels);
    samples.drain(..skip.min(samples.len()));
    let speaker = Speaker::open(args.device.as_deref())?;
    println!(
        "playing {} ({duration:.1} s) on {}",
        wav.display(),
        speaker.device()
    );
    speaker.play_channels(&samples, channels, rate);
    let keys = Keys::start();
    // In raw mode a newline does not return the carriage.
    let say = |text: String| {
        if keys.is_some() {
            print!("{text}\r\n");
            let _ = std::io::stdout().flush();
        } else {
            println!("{text}");
        }
    };
    if keys.is_some() {
        say("space pauses, ← → seek 5 s, q quits".into());
    }
    let mut next = cues
        .iter()
        .position(|c| c.at_s >= from)
        .unwrap_or(cues.len());
    while speaker.playing()? {
        if let Some(keys) = &keys {
            match keys.poll() {
                Some(Key::Quit) => break,
                Some(Key::Pause) if speaker.is_paused() => speaker.resume(),
                Some(Key::Pause) => speaker.pause(),
                Some(Key::Seek(by)) => {
                    let now = speaker.position().as_secs_f64();
                    let to = (now + by).clamp(0.0, (duration - from).max(0.0));
                    speaker.seek(Duration::from_secs_f64(to));
                    next = cues
                        .iter()
                        .position(|c| c.at_s >= from + to)
                        .unwrap_or(cues.len());
                }
                None => {}
            }
        } else {
            std::thread::sleep(Duration::from_millis(20));
        }
        let now = from + speaker.position().as_secs_f64();
        while let Some(cue) = cues.get(next).filter(|c| c.at_s <= now) {
            say(format!("{:7.1} s  {}", cue.at_s, cue.text));
            next += 1;
        }
    }
    drop(keys);
    Ok(Exit::Ok)
}

/// A WAV's interleaved samples, channel count and rate (hound: a call.wav is stereo).
fn read_channels(path: &Path) -> Result<(Vec<f32>, u16, u32), CliError> {
    let fail = |e: String| CliError::bad_input(format!("{}: {e}", path.display()));
    let reader = hound::WavReader::open(path).map_err(|e| fail(e.to_string()))?;
    let spec = reader.spec();
    let samples: Result<Vec<f32>, _> = match spec.sample_format {
        hound::SampleFormat::Float => reader.into_samples::<f32>().collect(),
        hound::SampleFormat::Int => {
            let scale = 2f32.powi(i32::from(spec.bits_per_sample) - 1);
            reader
                .into_samples::<i32>()
                .map(|s| s.map(|s| s as f32 / scale))
                .collect()
        }
    };
    Ok((
        samples.map_err(|e| fail(e.to_string()))?,
        spec.channels,
        spec.sample_rate,
    ))
}

enum Key {
    Pause,
    Seek(f64),
    Quit,
}

/// The terminal in raw mode while `listen` plays, restored when dropped; `None` when stdin
/// is not a terminal.
struct Keys;

impl Keys {
    fn start() -> Option<Keys> {
        (std::io::stdin().is_terminal() && crossterm::terminal::enable_raw_mode().is_ok())
            .then_some(Keys)
    }

    fn poll(&self) -> Option<Key> {
        use crossterm::event::{self, Event, KeyCode, KeyModifiers};
        if !event::poll(Duration::from_millis(20)).unwrap_or(false) {
            return None;
        }
        let Ok(Event::Key(key)) = event::read() else {
            return None;
        };
        match key.code {
            KeyCode::Char(' ') => Some(Key::Pause),
            KeyCode::Left => Some(Key::Seek(-5.0)),
            KeyCode::Right => Some(Key::Seek(5.0)),
            KeyCode::Char('q') | KeyCode::Esc => Some(Key::Quit),
            KeyCode::Char('c') if key.modifiers.contains(KeyModifiers::CONTROL) => Some(Key::Quit),
            _ => None,
        }
    }
}

impl Drop for Keys {
    fn drop(&mut self) {
        let _ = crossterm::terminal::disable_raw_mode();
    }
}

/// The sound card's side of a live call: a thread capturing the person's microphone into the
/// call's microphone timeline (resampled to the wire rate), a thread playing what the caller
/// hears, and Enter on the terminal to hang up.
pub struct LiveCall {
    pub voice: std::sync::mpsc::Receiver<Vec<f32>>,
    pub monitor: tokio::sync::mpsc::UnboundedSender<Clip>,
    pub hang_up: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

pub fn live_call(
    input: Option<String>,
    output: Option<String>,
    rate: u32,
) -> Result<LiveCall, CliError> {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{mpsc, Arc};
    let (voice_tx, voice) = mpsc::channel();
    let (opened_tx, opened) = mpsc::channel();
    // cpal streams stay on the thread that made them.
    std::thread::spawn(move || {
        let mut mic = match Capture::open(input.as_deref()) {
            Ok(mic) => mic,
            Err(e) => {
                let _ = opened_tx.send(Err(e));
                return;
            }
        };
        let resampler = if mic.rate() == rate {
            None
        } else {
            match crate::audio::StreamResampler::new(mic.rate(), rate) {
                Ok(r) => Some(r),
                Err(e) => {
                    let _ = opened_tx.send(Err(DeviceError::Failed {
                        device: mic.device().into(),
                        message: e.to_string(),
                        fix: "pick another device with --input",
                    }));
                    return;
                }
            }
        };
        let _ = opened_tx.send(Ok(mic.device().to_string()));
        let mut resampler = resampler;
        loop {
            let piece = match mic.take(Duration::from_millis(20)) {
                Ok(piece) => piece,
                Err(e) => {
                    eprintln!("warning: {e}; the caller is silent from now on");
                    return;
                }
            };
            let piece = match resampler.as_mut() {
                Some(r) => r.push(&piece).unwrap_or_default(),
                None => piece,
            };
            if voice_tx.send(piece).is_err() {
                return; // the call is over
            }
        }
    });
    let input_name = opened
        .recv()
        .map_err(|_| CliError::bad_input("the microphone thread ended before it opened"))??;
    let (monitor, mut heard) = tokio::sync::mpsc::unbounded_channel::<Clip>();
    let (opened_tx, opened) = mpsc::channel();
    std::thread::spawn(move || {
        let speaker = match Speaker::open(output.as_deref()) {
            Ok(s) => s,
            Err(e) => {
                let _ = opened_tx.send(Err(e));
                return;
            }
        };
        let _ = opened_tx.send(Ok(speaker.device().to_string()));
        while let Some(clip) = heard.blocking_recv() {
            speaker.play(&clip);
        }
    });
    let output_name = opened
        .recv()
        .map_err(|_| CliError::bad_input("the speaker thread ended before it opened"))??;
    let hang_up = Arc::new(AtomicBool::new(false));
    let flag = hang_up.clone();
    std::thread::spawn(move || {
        let mut line = String::new();
        // A line typed hangs up; no terminal (end of input) leaves the call to the agent.
        if std::io::stdin().read_line(&mut line).is_ok_and(|n| n > 0) {
            flag.store(true, Ordering::Relaxed);
        }
    });
    eprintln!(
        "live: you are the caller. Speaking into {input_name}, hearing on {output_name}. \
         Use headphones (the microphone must not hear the agent). Press Enter to hang up."
    );
    Ok(LiveCall {
        voice,
        monitor,
        hang_up,
    })
}
