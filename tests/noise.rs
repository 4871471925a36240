//! Noise profiles and the microphone timeline, measured on known signals and on the bundled
//! recordings.

use std::path::Path;

use voicesim::audio::{level, write_wav, Clip};
use voicesim::noise::{
    LoadedNoise, MicEvent, MicTimeline, NoiseError, NoiseProfile, SPEECH_REF_DBFS,
};

fn sine(freq: f64, rate: u32, seconds: f64, amp: f32) -> Clip {
    let step = freq * std::f64::consts::TAU / rate as f64;
    Clip::new(
        (0..(rate as f64 * seconds) as usize)
            .map(|i| ((i as f64 * step).sin() as f32) * amp)
            .collect(),
        rate,
    )
}

/// Uniform white noise from a fixed linear congruential generator.
fn white(rate: u32, seconds: f64, amp: f32, mut state: u64) -> Clip {
    let n = (rate as f64 * seconds) as usize;
    Clip::new(
        (0..n)
            .map(|_| {
                state = state
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((state >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0) * amp
            })
            .collect(),
        rate,
    )
}

fn write_profile(dir: &Path, yaml: &str) -> NoiseProfile {
    let path = dir.join("profile.yaml");
    std::fs::write(&path, yaml).unwrap();
    NoiseProfile::load(&path).unwrap()
}

/// Renders `speech` into the profile's timeline and, with the same seed, the noise alone;
/// the difference is the speech as mixed. Returns (mix, noise-only) over the speech span.
fn mix_and_noise(
    profile: &NoiseProfile,
    rate: u32,
    seed: u64,
    speech: &Clip,
) -> (Vec<f32>, Vec<f32>) {
    let noise = LoadedNoise::load(profile, rate).unwrap();
    let mut mic = MicTimeline::new(&noise, seed);
    mic.say(speech.clone()).unwrap();
    let mut mixed = Vec::new();
    while mic.is_speaking() {
        mixed.extend(mic.next_frame().samples);
    }
    let mut alone = MicTimeline::new(&noise, seed);
    let noise_only = alone.render(mixed.len() as f64 / rate as f64).samples;
    let n = mixed.len();
    (mixed, noise_only[..n].to_vec())
}

#[test]
fn achieved_snr_is_within_half_a_db_of_the_target() {
    let dir = tempfile::tempdir().unwrap();
    write_wav(dir.path().join("white.wav"), &[&white(16_000, 5.0, 0.9, 1)]).unwrap();
    for snr in [0.0, 5.0, 10.0, 20.0] {
        let profile = write_profile(
            dir.path(),
            &format!("name: w\nbackground:\n  - file: white.wav\n    snr: {snr}\n"),
        );
        // A 1 kHz tone at a different level and rate from the timeline: it is resampled and
        // normalized on the way in, as TTS output would be.
        let speech = sine(1000.0, 24_000, 3.0, 0.05);
        let (mixed, noise) = mix_and_noise(&profile, 16_000, 9, &speech);
        let speech_part: Vec<f32> = mixed.iter().zip(&noise).map(|(m, n)| m - n).collect();
        let achieved = level::snr_db(&speech_part, &noise);
        assert!(
            (achieved - snr).abs() <= 0.5,
            "target {snr} dB, achieved {achieved:.2} dB"
        );
        // The speech itself sits at the reference level.
        let speech_dbfs = level::to_dbfs(level::rms(&speech_part));
        assert!((speech_dbfs - SPEECH_REF_DBFS).abs() < 0.1, "{speech_dbfs}");
    }
}

#[test]
fn bundled_backgrounds_hit_their_snr_over_whole_loops() {
    for name in NoiseProfile::bundled_names() {
        let mut profile = NoiseProfile::bundled(name).unwrap();
        profile.bursts.clear();
        profile.line = Default::default();
        for rate in [8_000, 16_000] {
            for (i, bg) in profile.background.clone().into_iter().enumerate() {
                let mut one = profile.clone();
                one.background = vec![bg];
                let loaded = LoadedNoise::load(&one, rate).unwrap();
                let loop_secs = loaded.levels()[0].1;
                let target = one.background[0].snr;
                // Over exactly two loops the noise RMS is the loop's RMS, whatever the offset.
                let speech = sine(440.0, rate, 2.0 * loop_secs, 0.3);
                let (mixed, noise) = mix_and_noise(&one, rate, 3, &speech);
                let speech_part: Vec<f32> = mixed.iter().zip(&noise).map(|(m, n)| m - n).collect();
                let achieved = level::snr_db(&speech_part, &noise);
                let voicesim::noise::Snr::Db(target) = target else {
                    panic!("{name}: bundled SNRs are fixed")
                };
                assert!(
                    (achieved - target).abs() <= 0.5,
                    "{name}[{i}] at {rate} Hz: target {target}, achieved {achieved:.2}"
                );
            }
        }
    }
}

#[test]
fn noise_sounds_between_turns_at_the_same_level() {
    let profile = NoiseProfile::bundled("street")
        .unwrap()
        .with_background_snr(10.0)
        .unwrap();
    let mut profile = profile;
    profile.bursts.clear();
    let noise = LoadedNoise::load(&profile, 8_000).unwrap();
    let loop_secs = noise.levels()[0].1;
    let mut mic = MicTimeline::new(&noise, 1);
    // No speech queued: the microphone still carries the background, at -20 - 10 dBFS.
    let silence_between_turns = mic.render(2.0 * loop_secs);
    let dbfs = silence_between_turns.rms_dbfs();
    assert!((dbfs - (SPEECH_REF_DBFS - 10.0)).abs() < 0.2, "{dbfs}");
}

#[test]
fn the_same_seed_gives_the_same_samples_and_another_seed_does_not() {
    let profile = NoiseProfile::bundled("call-center").unwrap();
    let noise = LoadedNoise::load(&profile, 8_000).unwrap();
    let speech = Clip::open(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/audio/hts1a.wav"
    ))
    .unwrap();
    let run = |seed| {
        let mut mic = MicTimeline::new(&noise, seed);
        let mut out = mic.render(1.0).samples;
        mic.say(speech.clone()).unwrap();
        out.extend(mic.render(30.0).samples);
        (out, mic.take_events())
    };
    let (a, events_a) = run(42);
    let (b, events_b) = run(42);
    assert!(
        a.iter().zip(&b).all(|(x, y)| x.to_bits() == y.to_bits()),
        "same seed must be bit-identical"
    );
    assert_eq!(events_a, events_b);
    let (c, _) = run(43);
    assert_ne!(a, c);
    // Loading the profile again changes nothing either.
    let again = LoadedNoise::load(&profile, 8_000).unwrap();
    let mut mic = MicTimeline::new(&again, 42);
    let mut d = mic.render(1.0).samples;
    mic.say(speech).unwrap();
    d.extend(mic.render(30.0).samples);
    assert_eq!(a, d);
}

#[test]
fn explicit_bursts_land_on_time_at_their_level() {
    let dir = tempfile::tempdir().unwrap();
    // A burst that is 0.2 s of constant-level tone.
    write_wav(
        dir.path().join("beep.wav"),
        &[&sine(500.0, 8_000, 0.2, 0.5)],
    )
    .unwrap();
    let profile = write_profile(
        dir.path(),
        "name: b\nbursts:\n  - file: beep.wav\n    snr: 6\n    at: [1.5, 0.25]\n",
    );
    let noise = LoadedNoise::load(&profile, 8_000).unwrap();
    let mut mic = MicTimeline::new(&noise, 0);
    let out = mic.render(2.0).samples;
    let starts: Vec<f64> = mic
        .take_events()
        .into_iter()
        .filter_map(|e| match e {
            MicEvent::Burst { at_ms, .. } => Some(at_ms),
            _ => None,
        })
        .collect();
    assert_eq!(starts, vec![250.0, 1500.0]);
    // Silence before the first burst, sound from its first sample.
    assert!(out[..2000].iter().all(|&s| s == 0.0));
    assert!(out[2001] != 0.0);
    let burst = &out[12_000..12_000 + 1600];
    let dbfs = level::to_dbfs(level::rms(burst));
    assert!((dbfs - (SPEECH_REF_DBFS - 6.0)).abs() < 0.1, "{dbfs}");
    assert!(out[12_000 + 1600..].iter().all(|&s| s == 0.0));
}

#[test]
fn poisson_bursts_arrive_at_the_requested_rate() {
    let dir = tempfile::tempdir().unwrap();
    write_wav(
        dir.path().join("tick.wav"),
        &[&sine(1000.0, 8_000, 0.05, 0.5)],
    )
    .unwrap();
    let profile = write_profile(
        dir.path(),
        "name: p\nbursts:\n  - file: tick.wav\n    snr: 0\n    per_minute: 12\n",
    );
    let noise = LoadedNoise::load(&profile, 8_000).unwrap();
    let mut total = 0;
    for seed in 0..10 {
        let mut mic = MicTimeline::new(&noise, seed);
        mic.render(300.0);
        total += mic
            .take_events()
            .iter()
            .filter(|e| matches!(e, MicEvent::Burst { .. }))
            .count();
    }
    // 10 calls x 5 minutes x 12/min = 600 expected; Poisson sd ~ 24.5, allow 4 sd.
    assert!((500..=700).contains(&total), "{total} bursts");
}

#[test]
fn snr_ranges_are_drawn_per_call_within_bounds() {
    let dir = tempfile::tempdir().unwrap();
    write_wav(dir.path().join("w.wav"), &[&white(8_000, 2.0, 0.5, 7)]).unwrap();
    let profile = write_profile(
        dir.path(),
        "name: r\nbackground:\n  - file: w.wav\n    snr: [5, 15]\n",
    );
    let noise = LoadedNoise::load(&profile, 8_000).unwrap();
    let picks: Vec<f64> = (0..50)
        .map(|seed| MicTimeline::new(&noise, seed).background_snrs()[0])
        .collect();
    assert!(picks.iter().all(|s| (5.0..=15.0).contains(s)));
    assert!(picks.iter().cloned().fold(f64::MAX, f64::min) < 7.0);
    assert!(picks.iter().cloned().fold(f64::MIN, f64::max) > 13.0);
    assert_eq!(
        MicTimeline::new(&noise, 3).background_snrs(),
        MicTimeline::new(&noise, 3).background_snrs()
    );
}

/// Gain of the line for a tone: output RMS over input RMS, in dB.
fn line_gain_db(line_yaml: &str, freq: f64) -> f64 {
    let profile = NoiseProfile::parse(
        &format!("name: l\nline:\n{line_yaml}"),
        "test",
        Default::default(),
    )
    .unwrap();
    let noise = LoadedNoise::load(&profile, 16_000).unwrap();
    let mut mic = MicTimeline::new(&noise, 0);
    mic.say(sine(freq, 16_000, 1.0, 0.1)).unwrap();
    let out = mic.render(1.0).samples;
    let steady = &out[4000..12000];
    level::to_dbfs(level::rms(steady)) - SPEECH_REF_DBFS
}

#[test]
fn telephone_band_passes_speech_and_cuts_outside_300_to_3400_hz() {
    let band = "  telephone_band: true\n";
    assert!(line_gain_db(band, 1000.0).abs() < 0.5);
    assert!(line_gain_db(band, 2000.0).abs() < 0.5);
    assert!(line_gain_db(band, 100.0) < -20.0);
    assert!(line_gain_db(band, 6000.0) < -20.0);
}

#[test]
fn clipping_limits_the_peak() {
    let profile = NoiseProfile::parse(
        "name: c\nline:\n  clip_dbfs: -26\n",
        "test",
        Default::default(),
    )
    .unwrap();
    let noise = LoadedNoise::load(&profile, 8_000).unwrap();
    let mut mic = MicTimeline::new(&noise, 0);
    mic.say(sine(440.0, 8_000, 0.5, 0.5)).unwrap();
    let out = mic.render(0.5).samples;
    let limit = level::from_dbfs(-26.0) as f32;
    assert!(out.iter().all(|s| s.abs() <= limit));
    // A -20 dBFS RMS sine peaks at -17 dBFS, so most of it is flattened at the limit.
    assert!(out.iter().filter(|s| s.abs() == limit).count() > out.len() / 3);
}

#[test]
fn packet_loss_follows_the_gilbert_elliott_model() {
    let yaml = "name: g\nline:\n  packet_loss: { p: 0.05, r: 0.25 }\n";
    let profile = NoiseProfile::parse(yaml, "test", Default::default()).unwrap();
    let expected = profile.line.packet_loss.unwrap().mean_loss();
    assert!((expected - 0.05 / 0.30).abs() < 1e-12);
    let noise = LoadedNoise::load(&profile, 8_000).unwrap();
    let mut mic = MicTimeline::new(&noise, 5);
    mic.say(sine(440.0, 8_000, 200.0, 0.3)).unwrap();
    let frames: Vec<_> = (0..10_000).map(|_| mic.next_frame()).collect();
    let lost: Vec<bool> = frames
        .iter()
        .map(|f| f.samples.iter().all(|&s| s == 0.0))
        .collect();
    let rate = lost.iter().filter(|&&l| l).count() as f64 / lost.len() as f64;
    assert!(
        (rate - expected).abs() < 0.03,
        "lost {rate:.3}, expected {expected:.3}"
    );
    // Losses come in bursts: mean run length 1/r = 4 frames.
    let runs = lost.windows(2).filter(|w| !w[0] && w[1]).count();
    let mean_run = lost.iter().filter(|&&l| l).count() as f64 / runs as f64;
    assert!(
        (3.0..5.0).contains(&mean_run),
        "mean burst {mean_run:.2} frames"
    );
    let events = mic
        .take_events()
        .iter()
        .filter(|e| matches!(e, MicEvent::FrameLost { .. }))
        .count();
    assert_eq!(events, lost.iter().filter(|&&l| l).count());
}

#[test]
fn every_bundled_profile_loads_at_every_wire_rate() {
    assert_eq!(
        NoiseProfile::bundled_names(),
        vec!["cafe", "call-center", "car", "office", "street"]
    );
    for name in NoiseProfile::bundled_names() {
        let profile = NoiseProfile::bundled(name).unwrap();
        assert!(!profile.description.is_empty());
        assert!(!profile.background.is_empty(), "{name} needs a background");
        for rate in [8_000, 16_000, 24_000] {
            let noise = LoadedNoise::load(&profile, rate).unwrap();
            for (file, secs, rms, _) in noise.levels() {
                assert!(secs > 0.3 && secs < 30.0 && rms > -40.0, "{name}: {file}");
            }
        }
    }
}

fn profile_error(yaml: &str) -> String {
    match NoiseProfile::parse(yaml, "my.yaml", Default::default()) {
        Err(e @ NoiseError::Profile { .. }) => e.to_string(),
        other => panic!("expected a profile error, got {other:?}"),
    }
}

#[test]
fn profile_mistakes_are_reported_with_place_and_fix() {
    let e = profile_error("name: x\nbackground:\n  - file: babble.wav\n    snrr: 5\n");
    assert!(e.starts_with("my.yaml:4:") && e.contains("snrr"), "{e}");
    let e = profile_error("name: x\nbackground:\n  - file: babble.wav\n    snr: [15, 5]\n");
    assert!(
        e.contains("background[0].snr") && e.contains("[5, 15]"),
        "{e}"
    );
    let e = profile_error("name: x\nbackground:\n  - file: nope.wav\n    snr: 5\n");
    assert!(
        e.contains("background[0].file") && e.contains("nope.wav"),
        "{e}"
    );
    let e = profile_error("name: x\nbursts:\n  - file: door.wav\n    snr: 5\n");
    assert!(e.contains("bursts[0]") && e.contains("per_minute"), "{e}");
    let e = profile_error(
        "name: x\nbursts:\n  - file: door.wav\n    snr: 5\n    at: [1]\n    per_minute: 2\n",
    );
    assert!(e.contains("not both"), "{e}");
    let e = profile_error("name: x\nline:\n  packet_loss: { p: 1.5, r: 0.2 }\n");
    assert!(e.contains("line.packet_loss.p"), "{e}");
    let e = profile_error("name: x\nbackground:\n  - file: babble.wav\n    snr: 500\n");
    assert!(e.contains("-30..=60"), "{e}");
    let e = profile_error("name: [unclosed\n");
    assert!(e.starts_with("my.yaml:"), "{e}");
    match NoiseProfile::find("kitchen") {
        Err(e @ NoiseError::UnknownProfile { .. }) => {
            assert!(e.to_string().contains("cafe"), "{e}")
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        NoiseProfile::find("/no/such/profile.yaml"),
        Err(NoiseError::Read { .. })
    ));
}

#[test]
fn a_silent_noise_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    write_wav(dir.path().join("zero.wav"), &[&Clip::silence(1.0, 8_000)]).unwrap();
    let profile = write_profile(
        dir.path(),
        "name: z\nbackground:\n  - file: zero.wav\n    snr: 5\n",
    );
    let err = LoadedNoise::load(&profile, 8_000).unwrap_err().to_string();
    assert!(err.contains("silent") && err.contains("zero.wav"), "{err}");
}

#[test]
fn the_microphone_never_runs_dry() {
    let noise = LoadedNoise::load(&NoiseProfile::bundled("car").unwrap(), 8_000).unwrap();
    let mic = MicTimeline::new(&noise, 0);
    // Ten minutes of frames, far past the 3.7 s recording, every one carrying noise.
    for frame in mic.take(30_000) {
        assert_eq!(frame.samples.len(), 160);
        assert!(
            level::rms(&frame.samples) > 0.0,
            "frame {} is silent",
            frame.index
        );
    }
}

#[test]
fn an_snr_override_moves_all_layers_together_to_the_combined_target() {
    let profile = NoiseProfile::bundled("call-center").unwrap();
    let before: Vec<f64> = MicTimeline::new(&LoadedNoise::load(&profile, 8_000).unwrap(), 0)
        .background_snrs()
        .to_vec();
    let moved = profile.with_background_snr(10.0).unwrap();
    let after: Vec<f64> = MicTimeline::new(&LoadedNoise::load(&moved, 8_000).unwrap(), 0)
        .background_snrs()
        .to_vec();
    assert_eq!(after.len(), 2);
    assert!(
        ((after[1] - after[0]) - (before[1] - before[0])).abs() < 1e-9,
        "layers keep their balance"
    );
    let combined = -10.0
        * after
            .iter()
            .map(|s| 10f64.powf(-s / 10.0))
            .sum::<f64>()
            .log10();
    assert!((combined - 10.0).abs() < 1e-9, "{combined}");
    assert!(NoiseProfile::bundled("cafe")
        .unwrap()
        .with_background_snr(f64::NAN)
        .is_err());
}
