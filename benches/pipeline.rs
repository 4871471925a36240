//! Throughput of the caller's side of a call: queue 16 kHz speech, mix it with background and
//! bursts on an 8 kHz timeline, encode every 20 ms frame to mu-law.
//!
//! Each benchmark declares its throughput in *seconds of call audio*, so criterion's
//! `thrpt: N elem/s` reads directly as "N times real time" (one core: criterion runs on one).

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use voicesim::audio::{Clip, Encoding, FRAME_MS};
use voicesim::noise::{LoadedNoise, MicTimeline, NoiseProfile};

const SPEECH: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/fixtures/audio/speech_orig_16k.wav"
);

fn mic_pipeline(c: &mut Criterion) {
    let speech = Clip::open(SPEECH).expect("bundled speech fixture");
    let mut group = c.benchmark_group("mic 16k speech -> 8k mu-law");
    group.sample_size(20);
    for (name, profile) in [
        ("cafe", "cafe"),
        ("call-center (2 backgrounds, band filter)", "call-center"),
    ] {
        let noise = LoadedNoise::load(&NoiseProfile::bundled(profile).expect("bundled"), 8_000)
            .expect("loads");
        // Ten seconds of call (the 10.8 s utterance is still going at the end).
        let seconds = 10;
        let frames = seconds * 1000 / FRAME_MS as u64;
        group.throughput(Throughput::Elements(seconds));
        group.bench_function(name, |b| {
            let mut wire = Vec::with_capacity(160);
            b.iter(|| {
                let mut mic = MicTimeline::new(&noise, 1);
                mic.say(speech.clone()).expect("resamples");
                for _ in 0..frames {
                    let frame = mic.next_frame();
                    wire.clear();
                    Encoding::Mulaw.encode_into(&frame.samples, &mut wire);
                }
                wire.len()
            })
        });
    }
    group.finish();
}

fn profile_load(c: &mut Criterion) {
    let profile = NoiseProfile::bundled("call-center").expect("bundled");
    c.bench_function(
        "load call-center profile at 8 kHz (once per process and rate)",
        |b| b.iter(|| LoadedNoise::load(&profile, 8_000).expect("loads")),
    );
}

criterion_group!(benches, mic_pipeline, profile_load);
criterion_main!(benches);
