use std::path::PathBuf;
use std::time::Instant;

use clap::Args;
use cpu_time::ProcessTime;

use super::{CliError, Exit};
use crate::audio::{write_wav, Clip};
use crate::speech::{SttEngine, TtsEngine, Voice};

#[derive(Args)]
pub struct TtsArgs {
    /// What to say.
    text: String,
    /// Output WAV file.
    #[arg(long, short)]
    output: PathBuf,
    #[arg(long, value_enum, default_value_t)]
    engine: TtsEngine,
    /// Voice name (espeak-ng: en-us, en-gb, ... see `espeak-ng --voices`; OpenAI: alloy, ...).
    #[arg(long)]
    voice: Option<String>,
    /// Speaking rate in words per minute.
    #[arg(long, value_parser = clap::value_parser!(u32).range(80..=450))]
    rate_wpm: Option<u32>,
    /// Pitch, 0..=99.
    #[arg(long, value_parser = clap::value_parser!(u32).range(0..=99))]
    pitch: Option<u32>,
    /// Resample the output to this rate in Hz [default: the engine's].
    #[arg(long, value_parser = clap::value_parser!(u32).range(8000..=48000))]
    sample_rate: Option<u32>,
}

#[derive(Args)]
pub struct SttArgs {
    /// Audio to transcribe (WAV, FLAC, MP3 or OGG Vorbis).
    input: PathBuf,
    #[arg(long, value_enum, default_value_t)]
    engine: SttEngine,
    /// Print JSON with segments, confidence and timing instead of the bare text.
    #[arg(long)]
    json: bool,
}

pub fn tts(args: TtsArgs) -> Result<Exit, CliError> {
    if args.text.trim().is_empty() {
        return Err(CliError::bad_input("nothing to say: the text is empty"));
    }
    let engine = args.engine.open()?;
    let voice = Voice {
        name: args.voice,
        rate_wpm: args.rate_wpm,
        pitch: args.pitch,
    };
    let mut clip = engine.synthesize(&args.text, &voice)?;
    if let Some(rate) = args.sample_rate {
        clip = clip.resample(rate)?;
    }
    write_wav(&args.output, &[&clip])?;
    println!(
        "wrote {}: {:.2} s at {} Hz ({})",
        args.output.display(),
        clip.duration(),
        clip.rate,
        engine.id()
    );
    Ok(Exit::Ok)
}

pub fn stt(args: SttArgs) -> Result<Exit, CliError> {
    let clip = Clip::open(&args.input)?;
    let load_wall = Instant::now();
    let engine = args.engine.open()?;
    let load_ms = load_wall.elapsed().as_secs_f64() * 1000.0;
    let (wall, cpu) = (Instant::now(), ProcessTime::now());
    let transcript = engine.transcribe(&clip)?;
    let (wall_ms, cpu_ms) = (
        wall.elapsed().as_secs_f64() * 1000.0,
        cpu.elapsed().as_secs_f64() * 1000.0,
    );
    if args.json {
        let out = serde_json::json!({
            "engine": engine.id(),
            "text": transcript.text,
            "confidence": transcript.confidence,
            "segments": transcript.segments,
            "audio_ms": (clip.duration() * 1000.0).round(),
            "load_ms": load_ms.round(),
            "wall_ms": wall_ms.round(),
            "cpu_ms": cpu_ms.round(),
        });
        println!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
    } else {
        println!("{}", transcript.text);
    }
    Ok(Exit::Ok)
}
