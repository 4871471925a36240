//! How well the default ears (Whisper tiny.en) hear each local voice (espeak-ng, Piper)
//! through every bundled noise profile, on an 8 kHz phone line: WER by SNR, and STT cost per
//! utterance.
//!
//! `cargo bench --bench speech` (or `make bench`) prints a Markdown table for docs/speech.md.
//! Under `cargo test` it runs a two-sentence smoke version so it cannot rot.

use cpu_time::ProcessTime;
use voicesim::audio::Clip;
use voicesim::noise::{LoadedNoise, MicTimeline, NoiseProfile};
use voicesim::speech::wer::{normalize, wer};
use voicesim::speech::{Espeak, Piper, Stt, Tts, Voice, Whisper};

const RATE: u32 = 8_000;

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/speech/customer-service.txt"
    ))
    .expect("sentence list");
    let mut sentences: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let (profiles, snrs): (Vec<&str>, Vec<f64>) = if full {
        (NoiseProfile::bundled_names(), vec![20.0, 10.0, 5.0, 0.0])
    } else {
        sentences.truncate(2);
        (vec!["cafe"], vec![10.0])
    };
    let whisper = Whisper::load_default().expect("Whisper model; run `make setup`");
    let voices: Vec<(&str, Box<dyn Tts>)> = vec![
        (
            "espeak-ng",
            Box::new(Espeak::new().expect("espeak-ng; run `make setup`")),
        ),
        (
            "piper",
            Box::new(Piper::load_default().expect("Piper voice; run `make setup`")),
        ),
    ];
    let mut cpu_ms = Vec::new();
    let mut audio_s = 0.0;
    for (voice_name, tts) in &voices {
        let speech: Vec<Clip> = sentences
            .iter()
            .map(|s| tts.synthesize(s, &Voice::default()).expect("synthesis"))
            .collect();
        let mut run = |profile: &NoiseProfile| -> f64 {
            let noise = LoadedNoise::load(profile, RATE).expect("profile loads");
            let (mut edits, mut words) = (0.0, 0);
            for (i, (sentence, clip)) in sentences.iter().zip(&speech).enumerate() {
                let mut mic = MicTimeline::new(&noise, i as u64);
                let mut heard = mic.render(0.3);
                mic.say(clip.clone()).expect("resample");
                while mic.is_speaking() {
                    heard.samples.extend(mic.next_frame().samples);
                }
                heard.samples.extend(mic.render(0.3).samples);
                let cpu = ProcessTime::now();
                let text = whisper.transcribe(&heard).expect("transcription").text;
                cpu_ms.push(cpu.elapsed().as_secs_f64() * 1000.0);
                audio_s += heard.duration();
                let n = normalize(sentence).split_whitespace().count();
                edits += wer(sentence, &text) * n as f64;
                words += n;
            }
            edits / words as f64
        };

        let clean = run(&NoiseProfile::clean());
        println!(
            "\nWER of Whisper tiny.en on {} {voice_name} sentences, 8 kHz line (clean: {:.1}%)\n",
            sentences.len(),
            clean * 100.0
        );
        print!("| profile |");
        snrs.iter().for_each(|s| print!(" {s} dB |"));
        print!("\n| --- |");
        snrs.iter().for_each(|_| print!(" --- |"));
        println!();
        for name in &profiles {
            print!("| {name} |");
            for &snr in &snrs {
                let profile = NoiseProfile::bundled(name)
                    .expect("bundled")
                    .with_background_snr(snr)
                    .expect("valid snr");
                print!(" {:.1}% |", run(&profile) * 100.0);
            }
            println!();
        }
    }
    let n = cpu_ms.len() as f64;
    let mean = cpu_ms.iter().sum::<f64>() / n;
    println!(
        "\nSTT cost: {mean:.0} ms CPU per utterance (mean of {n}, {:.2} s of audio each), {:.2} s CPU per second of audio",
        audio_s / n,
        cpu_ms.iter().sum::<f64>() / 1000.0 / audio_s
    );
}
