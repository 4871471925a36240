//! Noise profile YAML: a profile or a placed error, never a panic; a valid one also loads,
//! mixes and runs its line for a few frames.
#![no_main]

use libfuzzer_sys::fuzz_target;
use voicesim::noise::{Base, LoadedNoise, MicTimeline, NoiseProfile};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // Bundled: file names resolve to the recordings compiled in, never to the disk.
    let Ok(profile) = NoiseProfile::parse(text, "fuzz.yaml", Base::Bundled) else {
        return;
    };
    if let Ok(noise) = LoadedNoise::load(&profile, 8_000) {
        let mut mic = MicTimeline::new(&noise, 1);
        for _ in 0..5 {
            let _ = mic.next_frame();
        }
    }
});
