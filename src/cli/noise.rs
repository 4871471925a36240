use std::path::PathBuf;

use clap::{Args, Subcommand};

use super::{CliError, Exit};
use crate::audio::{write_wav, Clip, FRAME_MS};
use crate::noise::{LoadedNoise, MicEvent, MicTimeline, NoiseProfile, Timing};

#[derive(Subcommand)]
pub enum NoiseCommand {
    /// Mix a speech file into a noise profile, as the caller's microphone would hear it.
    Mix(MixArgs),
    /// List the bundled noise profiles.
    List,
    /// Show a profile: its files, their levels, and the bursts it would place.
    Show(ShowArgs),
    /// Record a real room from the microphone as a WAV and a noise profile that loops it.
    #[cfg(feature = "devices")]
    Record(super::live::RecordArgs),
    /// Play a profile (background and bursts, nobody speaking) on the speakers.
    #[cfg(feature = "devices")]
    Play(super::live::PlayArgs),
}

#[derive(Args)]
pub struct MixArgs {
    /// Speech to mix (WAV, FLAC, MP3 or OGG Vorbis, any rate and channel count).
    input: PathBuf,
    /// A bundled profile name (see `voicesim noise list`) or a profile .yaml file.
    #[arg(long, short)]
    profile: String,
    /// Background SNR in dB: all background layers move together to sit at this level.
    #[arg(long, allow_negative_numbers = true)]
    snr: Option<f64>,
    /// Seed for loop offsets, burst times and SNR ranges; the same seed gives the same file.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Output WAV file.
    #[arg(long, short)]
    output: PathBuf,
    /// Output sample rate in Hz [default: the input's rate].
    #[arg(long, value_parser = clap::value_parser!(u32).range(8000..=48000))]
    rate: Option<u32>,
    /// Seconds of noise before the speech starts.
    #[arg(long, default_value_t = 0.5, allow_negative_numbers = true)]
    lead: f64,
    /// Seconds of noise after the speech ends.
    #[arg(long, default_value_t = 0.5, allow_negative_numbers = true)]
    tail: f64,
}

#[derive(Args)]
pub struct ShowArgs {
    /// A bundled profile name or a profile .yaml file.
    profile: String,
    /// Seed for the burst times shown.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// How many seconds of a call to place bursts in.
    #[arg(long, default_value_t = 60.0, allow_negative_numbers = true)]
    duration: f64,
    /// Timeline rate in Hz.
    #[arg(long, default_value_t = 16000, value_parser = clap::value_parser!(u32).range(8000..=48000))]
    rate: u32,
}

pub fn run(cmd: NoiseCommand) -> Result<Exit, CliError> {
    match cmd {
        NoiseCommand::Mix(args) => mix(args),
        NoiseCommand::List => list(),
        NoiseCommand::Show(args) => show(args),
        #[cfg(feature = "devices")]
        NoiseCommand::Record(args) => super::live::record(args),
        #[cfg(feature = "devices")]
        NoiseCommand::Play(args) => super::live::play(args),
    }
}

fn seconds(name: &str, value: f64, max: f64) -> Result<f64, CliError> {
    if value.is_finite() && (0.0..=max).contains(&value) {
        Ok(value)
    } else {
        Err(CliError::bad_input(format!(
            "--{name} {value} must be between 0 and {max} seconds"
        )))
    }
}

fn mix(args: MixArgs) -> Result<Exit, CliError> {
    let lead = seconds("lead", args.lead, 60.0)?;
    let tail = seconds("tail", args.tail, 60.0)?;
    let mut profile = NoiseProfile::find(&args.profile)?;
    if let Some(snr) = args.snr {
        profile = profile.with_background_snr(snr)?;
    }
    let speech = Clip::open(&args.input)?;
    let rate = args.rate.unwrap_or(speech.rate);
    let speech_secs = speech.duration();
    let noise = LoadedNoise::load(&profile, rate)?;
    let mut mic = MicTimeline::new(&noise, args.seed);

    let mut out = mic.render(lead);
    mic.say(speech)?;
    while mic.is_speaking() {
        out.samples.extend(mic.next_frame().samples);
    }
    out.samples.extend(mic.render(tail).samples);
    write_wav(&args.output, &[&out])?;

    println!(
        "wrote {}: {:.2} s at {} Hz",
        args.output.display(),
        out.duration(),
        rate
    );
    println!(
        "  speech   {} ({speech_secs:.2} s, normalized to -20 dBFS RMS, starts at {lead:.2} s)",
        args.input.display()
    );
    println!("  profile  {} (seed {})", profile.name, args.seed);
    for (bg, snr) in profile.background.iter().zip(mic.background_snrs()) {
        println!("  noise    {} at {snr:.1} dB SNR", bg.file);
    }
    for (seconds, file, snr_db) in placed_bursts(&mut mic) {
        println!("  burst    {file} at {seconds:.2} s ({snr_db:.1} dB SNR)");
    }
    if !profile.line.is_clean() {
        println!("  line     {}", describe_line(&profile));
    }
    match mic.measured_snr_db() {
        Some(snr) => println!("  measured SNR while speaking: {snr:.2} dB"),
        None => println!("  measured SNR while speaking: no noise (clean)"),
    }
    Ok(Exit::Ok)
}

fn describe_line(profile: &NoiseProfile) -> String {
    let line = &profile.line;
    let mut parts = Vec::new();
    if line.telephone_band {
        parts.push("telephone band 300-3400 Hz".to_string());
    }
    if let Some(c) = line.clip_dbfs {
        parts.push(format!("clipping at {c} dBFS"));
    }
    if let Some(ge) = &line.packet_loss {
        parts.push(format!(
            "packet loss (Gilbert-Elliott p={} r={}, mean {:.1}% of {FRAME_MS} ms frames)",
            ge.p,
            ge.r,
            ge.mean_loss() * 100.0
        ));
    }
    parts.join(", ")
}

fn list() -> Result<Exit, CliError> {
    for name in NoiseProfile::bundled_names() {
        let profile = NoiseProfile::bundled(name)?;
        println!("{name:<12} {}", profile.description);
    }
    println!(
        "\nUse one with --profile NAME, or write your own .yaml (see `voicesim noise show cafe`)."
    );
    Ok(Exit::Ok)
}

fn show(args: ShowArgs) -> Result<Exit, CliError> {
    let duration = seconds("duration", args.duration, 3600.0)?;
    let profile = NoiseProfile::find(&args.profile)?;
    let noise = LoadedNoise::load(&profile, args.rate)?;
    println!("{}: {}", profile.name, profile.description);
    let levels = noise.levels();
    let (bg_levels, burst_levels) = levels.split_at(profile.background.len());
    if !profile.background.is_empty() {
        println!("\nbackground (looped from a seeded offset)");
        for (bg, (file, secs, rms, peak)) in profile.background.iter().zip(bg_levels) {
            println!(
                "  {file:<16} {secs:>6.2} s loop  {rms:>6.1} dBFS RMS  {peak:>6.1} dBFS peak  SNR {}  crossfade {} ms",
                bg.snr, bg.crossfade_ms
            );
        }
    }
    if !profile.bursts.is_empty() {
        println!("\nbursts");
        for (burst, (file, secs, rms, peak)) in profile.bursts.iter().zip(burst_levels) {
            let timing = match burst.timing() {
                Timing::At(times) => format!("at {times:?} s"),
                Timing::PerMinute(rate) => format!("{rate}/min (Poisson)"),
            };
            println!("  {file:<16} {secs:>6.2} s       {rms:>6.1} dBFS RMS  {peak:>6.1} dBFS peak  SNR {}  {timing}", burst.snr);
        }
    }
    println!(
        "\nline: {}",
        if profile.line.is_clean() {
            "clean".to_string()
        } else {
            describe_line(&profile)
        }
    );

    let mut mic = MicTimeline::new(&noise, args.seed);
    let frames = (duration * 1000.0 / FRAME_MS as f64).ceil() as usize;
    for _ in 0..frames {
        mic.next_frame();
    }
    let snrs: Vec<String> = mic
        .background_snrs()
        .iter()
        .map(|s| format!("{s:.1} dB"))
        .collect();
    println!(
        "\nwith seed {} over {duration} s: background SNR {}",
        args.seed,
        if snrs.is_empty() {
            "-".into()
        } else {
            snrs.join(", ")
        }
    );
    let placed = placed_bursts(&mut mic);
    for (seconds, file, snr_db) in &placed {
        println!("  {seconds:>8.2} s  {file} ({snr_db:.1} dB SNR)");
    }
    if placed.is_empty() {
        println!("  no bursts");
    }
    Ok(Exit::Ok)
}

/// (seconds, file, SNR) of the bursts the timeline placed since the last look.
fn placed_bursts(mic: &mut MicTimeline) -> Vec<(f64, String, f64)> {
    mic.take_events()
        .into_iter()
        .filter_map(|event| match event {
            MicEvent::Burst {
                at_ms,
                file,
                snr_db,
                ..
            } => Some((at_ms / 1000.0, file, snr_db)),
            _ => None,
        })
        .collect()
}
