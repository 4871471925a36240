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
    /// Take a noise profile from a real call: the caller's side with its speech cut out,
    /// looped, its loud non-speech sounds as bursts, at the SNR the caller had. Refused if
    /// words are still heard in what it would keep.
    Extract(ExtractArgs),
}

#[derive(Args)]
pub struct ExtractArgs {
    /// The call: a two-channel recording (see --caller), or the caller's side alone.
    call: PathBuf,
    /// Which channel of a two-channel recording is the caller.
    #[arg(long, value_enum, default_value = "left")]
    caller: crate::analyze::Channel,
    /// The profile to write; its recordings go beside it (NAME-background.wav,
    /// NAME-burst-N.wav).
    #[arg(long, short)]
    output: PathBuf,
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
        NoiseCommand::Extract(args) => extract(args),
    }
}

fn extract(args: ExtractArgs) -> Result<Exit, CliError> {
    use crate::analyze::extract::{self, ExtractError};
    if args.output.extension().and_then(|e| e.to_str()) != Some("yaml") {
        return Err(CliError::bad_input(format!(
            "{}: the profile is a .yaml file; name one ending in .yaml",
            args.output.display()
        )));
    }
    let mut channels = Clip::open_channels(&args.call)?;
    let caller = match (args.caller, channels.len()) {
        (_, 1) => channels.remove(0),
        (crate::analyze::Channel::Left, _) => channels.remove(0),
        (crate::analyze::Channel::Right, _) => channels.remove(1),
    };
    let stt = crate::speech::Whisper::load_default()?;
    let taken = extract::extract(&caller, &stt).map_err(|e| match e {
        ExtractError::Speech(e) => CliError::from(e),
        e => CliError::bad_input(format!("{}: {e}", args.call.display())),
    })?;
    let dir = args.output.parent().unwrap_or(std::path::Path::new(""));
    let stem = args
        .output
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("field")
        .to_string();
    let cannot = |e: std::io::Error| {
        CliError::bad_input(format!("{}: cannot write: {e}", args.output.display()))
    };
    if !dir.as_os_str().is_empty() {
        std::fs::create_dir_all(dir).map_err(cannot)?;
    }
    let background_file = format!("{stem}-background.wav");
    write_wav(dir.join(&background_file), &[&taken.background])?;
    // A line too clean to measure gets a room 40 dB under the voice, the cleanest worth a file.
    let snr = taken.snr_db.unwrap_or(40.0).clamp(-30.0, 60.0);
    let mut yaml = format!(
        "# Taken from {} by `voicesim noise extract`: the caller's speech cut out\n\
         # ({} turns), {:.1} s of room left at {:.1} dBFS, {} bursts.\n\
         name: {stem}\n\
         description: The room of a recorded call, looped.\n\
         background:\n  - file: {background_file}\n    snr: {snr:.1}\n",
        args.call.display(),
        taken.speech.len(),
        taken.background.duration(),
        taken.background_dbfs,
        taken.bursts.len(),
    );
    if !taken.bursts.is_empty() {
        yaml.push_str("bursts:\n");
    }
    for (i, burst) in taken.bursts.iter().enumerate() {
        let file = format!("{stem}-burst-{}.wav", i + 1);
        write_wav(dir.join(&file), &[&burst.clip])?;
        yaml.push_str(&format!(
            "  - file: {file}\n    snr: {:.1}\n    at: [{:.2}]\n",
            burst.snr_db.unwrap_or(snr).clamp(-30.0, 60.0),
            burst.at_ms / 1000.0
        ));
    }
    std::fs::write(&args.output, yaml).map_err(cannot)?;
    // The profile must load as any other does.
    let profile = NoiseProfile::load(&args.output)?;
    println!("wrote {} ({})", args.output.display(), profile.name);
    println!(
        "  background  {background_file}: {:.1} s of room at {:.1} dBFS, SNR {}",
        taken.background.duration(),
        taken.background_dbfs,
        taken
            .snr_db
            .map_or("not measured (no caller speech found)".into(), |s| format!(
                "{s:.1} dB"
            )),
    );
    println!("  speech cut  {} caller turns", taken.speech.len());
    for (i, burst) in taken.bursts.iter().enumerate() {
        println!(
            "  burst {}     at {:.2} s, {:.0} ms, {:.1} dBFS",
            i + 1,
            burst.at_ms / 1000.0,
            burst.clip.duration() * 1000.0,
            burst.dbfs
        );
    }
    let bands = crate::audio::spectrum::third_octaves(&taken.background);
    if !bands.is_empty() {
        println!(
            "  spectrum    {}",
            bands
                .iter()
                .step_by(3)
                .map(|b| format!("{:.0} Hz {:.0} dB", b.centre_hz, b.db))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    if taken.background.duration() < extract::SHORT_NOISE_S {
        eprintln!(
            "warning: only {:.1} s of room was left; a loop this short has a seam a listener \
             hears. A longer call, or one where the caller talks less, gives a better profile.",
            taken.background.duration()
        );
    }
    if taken.snr_db.is_some_and(|s| s > extract::CLEAN_SNR_DB) {
        eprintln!(
            "warning: the line was clean ({:.1} dB SNR); replaying it adds next to no noise",
            snr
        );
    }
    Ok(Exit::Ok)
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
