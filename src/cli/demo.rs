use std::path::PathBuf;

use clap::Args;

use super::{CliError, Exit};
use crate::audio::{write_wav, Clip};
use crate::noise::{LoadedNoise, MicTimeline, NoiseProfile};
use crate::speech::wer::wer;
use crate::speech::{Stt, Whisper};

/// Real human speech (codec2's speech_orig_16k.wav, LGPL-2.1), so the demo works anywhere.
static SPEECH: &[u8] = include_bytes!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/fixtures/audio/speech_orig_16k.wav"
));
/// What that recording says (four Harvard sentences).
const SAID: &str =
    "The birch canoe slid on the smooth planks. Glue the sheet to the dark blue background. \
                    It's easy to tell the depth of a well. Four hours of steady work faced us.";

#[derive(Args)]
pub struct DemoArgs {
    /// Folder for the rendered calls.
    #[arg(long, default_value = "voicesim-demo")]
    out: PathBuf,
    /// Seed for loop offsets and burst times.
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

const SNRS: [Option<f64>; 5] = [None, Some(20.0), Some(10.0), Some(5.0), Some(0.0)];
const RATE: u32 = 8_000;

pub fn run(args: DemoArgs) -> Result<Exit, CliError> {
    std::fs::create_dir_all(&args.out).map_err(|e| {
        CliError::bad_input(format!("{}: cannot create folder: {e}", args.out.display()))
    })?;
    let speech = Clip::decode(SPEECH.to_vec(), "speech_orig_16k.wav")?;
    // The ears are optional here: without the model the demo still shows the levels.
    let whisper = match Whisper::load_default() {
        Ok(w) => Some(w),
        Err(e) => {
            eprintln!("note: no WER column ({e})");
            None
        }
    };
    println!(
        "voicesim demo: {:.1} s of real speech through every bundled noise profile, as an {} kHz phone line hears it",
        speech.duration(),
        RATE / 1000
    );
    println!("each cell: SNR measured over the utterance (bursts included) / word error rate of Whisper tiny.en\n");
    print!("{:<12}", "profile");
    for snr in SNRS {
        print!(
            "{:>16}",
            snr.map_or("clean".to_string(), |s| format!("{s} dB"))
        );
    }
    println!();
    for name in NoiseProfile::bundled_names() {
        print!("{name:<12}");
        for snr in SNRS {
            let profile = match snr {
                None => NoiseProfile::clean(),
                Some(snr) => NoiseProfile::bundled(name)?.with_background_snr(snr)?,
            };
            let noise = LoadedNoise::load(&profile, RATE)?;
            let mut mic = MicTimeline::new(&noise, args.seed);
            let mut call = mic.render(0.5);
            mic.say(speech.clone())?;
            while mic.is_speaking() {
                call.samples.extend(mic.next_frame().samples);
            }
            call.samples.extend(mic.render(0.5).samples);
            let file = args.out.join(format!(
                "{name}_{}.wav",
                snr.map_or("clean".into(), |s| format!("{s}dB"))
            ));
            write_wav(&file, &[&call])?;
            let level = mic
                .measured_snr_db()
                .map_or("clean".to_string(), |m| format!("{m:.1} dB"));
            let heard = match &whisper {
                Some(w) => format!(" / {:>3.0}%", wer(SAID, &w.transcribe(&call)?.text) * 100.0),
                None => String::new(),
            };
            print!("{:>16}", format!("{level}{heard}"));
        }
        println!();
    }
    println!(
        "\nlisten: {}/*.wav (e.g. {}/cafe_5dB.wav)",
        args.out.display(),
        args.out.display()
    );
    Ok(Exit::Ok)
}
