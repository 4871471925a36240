//! The audio core against real files and known signals.

use std::path::PathBuf;

use voicesim::audio::{
    level, write_wav, AudioError, Clip, Encoding, Frame, Resampler, SUPPORTED_RATES,
};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/audio")
        .join(name)
}

fn sine(freq: f32, rate: u32, seconds: f32, amp: f32) -> Clip {
    let n = (rate as f32 * seconds) as usize;
    // Phase in f64: in f32, i * freq loses whole radians after a few thousand samples.
    let step = freq as f64 * std::f64::consts::TAU / rate as f64;
    Clip::new(
        (0..n)
            .map(|i| ((i as f64 * step).sin() as f32) * amp)
            .collect(),
        rate,
    )
}

/// Frequency from the rising zero crossings between the first and the last one.
fn frequency(samples: &[f32], rate: u32) -> f64 {
    let rising: Vec<usize> = (1..samples.len())
        .filter(|&i| samples[i - 1] < 0.0 && samples[i] >= 0.0)
        .collect();
    let span = (rising[rising.len() - 1] - rising[0]) as f64 / rate as f64;
    (rising.len() - 1) as f64 / span
}

#[test]
fn decodes_every_format_to_mono_at_its_own_rate() {
    // Each file is a 0.5 s, 440 Hz sine at -6 dBFS peak (-9 dBFS RMS), both channels alike.
    for (file, rate) in [
        ("formats/tone_44k_stereo.wav", 44_100),
        ("formats/tone_22k.flac", 22_050),
        ("formats/tone_48k_stereo.mp3", 48_000),
        ("formats/tone_16k.ogg", 16_000),
        ("formats/tone_8k_mulaw.wav", 8_000),
    ] {
        let clip = Clip::open(fixture(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(clip.rate, rate, "{file}");
        assert!(
            (clip.duration() - 0.5).abs() < 0.06,
            "{file}: {} s",
            clip.duration()
        );
        // Measure the middle: MP3 pads both ends with encoder delay.
        let middle = &clip.samples[clip.len() / 4..clip.len() * 3 / 4];
        let freq = frequency(middle, clip.rate);
        assert!((freq - 440.0).abs() < 2.0, "{file}: {freq} Hz");
        let rms = level::to_dbfs(level::rms(middle));
        assert!((rms - -9.03).abs() < 1.0, "{file}: {rms} dBFS");
    }
}

#[test]
fn stereo_is_downmixed_by_averaging_channels() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("lr.wav");
    let left = sine(440.0, 16_000, 0.2, 0.5);
    let right = Clip::new(vec![0.0; left.len()], 16_000);
    write_wav(&path, &[&left, &right]).unwrap();
    let mono = Clip::open(&path).unwrap();
    assert_eq!(mono.len(), left.len());
    let expected = level::rms(&left.samples) / 2.0;
    assert!((level::rms(&mono.samples) - expected).abs() < 1e-3);
}

#[test]
fn bad_files_give_errors_that_name_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.wav");
    std::fs::write(&empty, b"").unwrap();
    let junk = dir.path().join("junk.wav");
    std::fs::write(
        &junk,
        b"this is not audio at all, just text pretending to be a wav file",
    )
    .unwrap();
    let header_only = dir.path().join("header.wav");
    write_wav(&header_only, &[&Clip::new(Vec::new(), 8000)]).unwrap();
    let truncated = dir.path().join("truncated.wav");
    let whole = std::fs::read(fixture("formats/tone_44k_stereo.wav")).unwrap();
    std::fs::write(&truncated, &whole[..whole.len() / 2 + 1]).unwrap();

    assert!(matches!(Clip::open(&empty), Err(AudioError::Empty { .. })));
    assert!(matches!(
        Clip::open(&header_only),
        Err(AudioError::Empty { .. })
    ));
    let err = Clip::open(&junk).unwrap_err();
    assert!(matches!(err, AudioError::Unsupported { .. }), "{err}");
    assert!(err.to_string().contains("junk.wav"), "{err}");
    let err = Clip::open(dir.path().join("missing.wav")).unwrap_err();
    assert!(matches!(err, AudioError::Read { .. }) && err.to_string().contains("missing.wav"));
    // A cut-off file keeps the audio before the cut.
    let clip = Clip::open(&truncated).unwrap();
    assert!((clip.duration() - 0.25).abs() < 0.01, "{}", clip.duration());
}

#[test]
fn a_clip_is_cut_in_the_middle_of_its_last_pause_between_sounds() {
    let tone = sine(440.0, 16_000, 0.5, 0.5).samples;
    let gap = |ms: usize| vec![0.0f32; 16 * ms];
    // sound, 300 ms pause, sound, 60 ms pause, sound, then quiet still running at the end.
    let samples = [
        tone.clone(),
        gap(300),
        tone.clone(),
        gap(60),
        tone.clone(),
        gap(400),
    ]
    .concat();
    let clip = Clip::new(samples, 16_000);
    let cut = clip.last_pause(120.0).expect("a pause of 300 ms");
    let middle = 16 * (500 + 150);
    assert!(
        cut.abs_diff(middle) <= 160,
        "cut at {cut}, the pause's middle is {middle}"
    );
    // The 60 ms pause is too short, and the quiet at the end may be a word's inner silence.
    assert_eq!(clip.last_pause(400.0), None);
    assert_eq!(Clip::new(vec![0.0; 16_000], 16_000).last_pause(120.0), None);
}

#[test]
fn wav_round_trip_keeps_16_bit_samples() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.wav");
    let clip = sine(1000.0, 24_000, 0.1, 0.8);
    write_wav(&path, &[&clip]).unwrap();
    let back = Clip::open(&path).unwrap();
    assert_eq!(back.rate, 24_000);
    assert_eq!(back.len(), clip.len());
    let max_err = clip
        .samples
        .iter()
        .zip(&back.samples)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f32::max);
    assert!(max_err <= 1.0 / 32768.0, "{max_err}");
}

/// SNR of `got` against `want`, over the middle (edges carry filter transients).
fn snr_against(want: &[f32], got: &[f32]) -> f64 {
    let n = want.len().min(got.len());
    let (a, b) = (n / 10, n - n / 10);
    let err: Vec<f32> = want[a..b]
        .iter()
        .zip(&got[a..b])
        .map(|(w, g)| w - g)
        .collect();
    level::snr_db(&want[a..b], &err)
}

#[test]
fn a_1khz_sine_survives_48k_to_8k_to_48k_at_60_db() {
    let original = sine(1000.0, 48_000, 1.0, 0.5);
    let down = original.clone().resample(8_000).unwrap();
    assert_eq!(down.len(), 8_000);
    let up = down.resample(48_000).unwrap();
    assert_eq!(up.len(), original.len());
    let snr = snr_against(&original.samples, &up.samples);
    assert!(snr >= 60.0, "round trip SNR {snr:.1} dB");
}

#[test]
fn resamples_between_every_pair_of_supported_rates() {
    for from in SUPPORTED_RATES {
        let clip = sine(440.0, from, 0.5, 0.5);
        for to in SUPPORTED_RATES {
            let out = clip.clone().resample(to).unwrap();
            assert_eq!(out.rate, to);
            let expected = (clip.len() as u64 * to as u64 / from as u64) as i64;
            assert!(
                (out.len() as i64 - expected).abs() <= 1,
                "{from}->{to}: {} vs {expected}",
                out.len()
            );
            // Same tone, same level: compare with a sine generated at the target rate.
            let reference = sine(440.0, to, 0.5, 0.5);
            let snr = snr_against(&reference.samples, &out.samples);
            assert!(snr >= 50.0, "{from}->{to}: {snr:.1} dB");
        }
    }
}

#[test]
fn a_resampler_is_reusable_and_rejects_the_wrong_rate() {
    let mut r = Resampler::new(16_000, 8_000).unwrap();
    let a = r.process(&sine(300.0, 16_000, 0.3, 0.4)).unwrap();
    let b = r.process(&sine(300.0, 16_000, 0.3, 0.4)).unwrap();
    assert_eq!(a, b, "state must not leak from one clip into the next");
    assert!(r.process(&sine(300.0, 8_000, 0.3, 0.4)).is_err());
    assert!(Resampler::new(0, 8_000).is_err());
}

#[test]
fn g711_round_trip_is_within_codec_quantization() {
    let clip = sine(1000.0, 8_000, 1.0, 0.5);
    for enc in [Encoding::Mulaw, Encoding::Alaw] {
        let bytes = enc.encode(&clip.samples);
        assert_eq!(bytes.len(), clip.len());
        let back = enc.decode(&bytes);
        let snr = snr_against(&clip.samples, &back);
        // G.711 gives about 38 dB SQNR for a signal near full scale.
        assert!((33.0..45.0).contains(&snr), "{enc:?}: {snr:.1} dB");
    }
}

#[test]
fn g711_matches_the_standard_code_points() {
    // Silence is 0xFF in mu-law (what Twilio sends) and 0xD5 in A-law.
    assert_eq!(Encoding::Mulaw.encode(&[0.0]), vec![0xFF]);
    assert_eq!(Encoding::Alaw.encode(&[0.0]), vec![0xD5]);
    // Full-scale positive and negative.
    assert_eq!(Encoding::Mulaw.encode(&[1.0, -1.0]), vec![0x80, 0x00]);
    assert_eq!(Encoding::Alaw.encode(&[1.0, -1.0]), vec![0xAA, 0x2A]);
}

#[test]
fn pcm16_rounds_to_the_nearest_step_and_halves_away_from_zero() {
    let step = 1.0 / 32768.0;
    let cases = [
        (0.4 * step, 0),
        (0.5 * step, 1),
        (-0.5 * step, -1),
        (2.5 * step, 3),
        (-2.5 * step, -3),
        (1000.49 * step, 1000),
        (-1000.51 * step, -1001),
        (-1.0, -32768),
        (-2.0, -32768),
        (f32::NAN, 0),
    ];
    for (sample, want) in cases {
        let bytes = Encoding::Pcm16.encode(&[sample]);
        assert_eq!(i16::from_le_bytes([bytes[0], bytes[1]]), want, "{sample}");
    }
}

#[test]
fn pcm16_is_little_endian_and_exact() {
    let bytes = Encoding::Pcm16.encode(&[0.5, -0.5, 1.5]);
    assert_eq!(
        bytes,
        vec![0x00, 0x40, 0x00, 0xC0, 0xFF, 0x7F],
        "1.5 must saturate to 32767"
    );
    let samples: Vec<f32> = (-32768..32768)
        .step_by(97)
        .map(|i| i as f32 / 32768.0)
        .collect();
    assert_eq!(
        Encoding::Pcm16.decode(&Encoding::Pcm16.encode(&samples)),
        samples
    );
}

#[test]
fn frames_are_20_ms_and_the_last_is_padded() {
    for (rate, n) in [
        (8_000, 160),
        (16_000, 320),
        (24_000, 480),
        (44_100, 882),
        (48_000, 960),
    ] {
        assert_eq!(Frame::samples_per_frame(rate), n);
    }
    let clip = Clip::new(vec![0.25; 350], 8_000);
    let frames: Vec<Frame> = clip.frames().collect();
    assert_eq!(frames.len(), 3);
    assert_eq!(frames[2].start_ms(), 40);
    assert!(frames.iter().all(|f| f.samples.len() == 160));
    assert_eq!(frames[2].samples[29], 0.25);
    assert_eq!(frames[2].samples[30], 0.0);
}

#[test]
fn real_speech_fixtures_decode() {
    for name in ["speech_orig_16k.wav", "hts1a.wav"] {
        let clip = Clip::open(fixture(name)).unwrap();
        assert_eq!(clip.rate, 16_000);
        assert!(clip.duration() > 2.0 && clip.rms_dbfs() > -40.0, "{name}");
    }
}

#[test]
fn dtmf_keys_are_two_tones_of_the_keypad() {
    use voicesim::audio::dtmf_tone;
    let five = dtmf_tone('5', 8_000).unwrap();
    assert_eq!(five.len(), 800, "100 ms");
    assert!((five.rms_dbfs() + 20.0).abs() < 0.01);
    // Energy at 770 Hz and 1336 Hz (the row and column of 5), none at 697 Hz (the row of 1).
    let power = |hz: f64| {
        let (mut re, mut im) = (0.0, 0.0);
        for (i, &s) in five.samples.iter().enumerate() {
            let phase = std::f64::consts::TAU * hz * i as f64 / 8_000.0;
            re += s as f64 * phase.cos();
            im += s as f64 * phase.sin();
        }
        re * re + im * im
    };
    assert!(power(770.0) > 100.0 * power(697.0));
    assert!(power(1336.0) > 100.0 * power(1209.0));
    assert!(dtmf_tone('x', 8_000).is_none());
    assert!(dtmf_tone('#', 8_000).is_some() && dtmf_tone('d', 8_000).is_some());
}

/// Found by fuzzing: a WAV whose header claims 4,278,198,080 samples a second had the
/// resampler plan FFTs for seconds and take 800 MB. Rates outside 1-384 kHz are corrupt.
#[test]
fn a_header_with_an_absurd_sample_rate_is_corrupt_audio() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("absurd.wav");
    write_wav(&path, &[&Clip::new(vec![0.1; 800], 8_000)]).unwrap();
    let mut bytes = std::fs::read(&path).unwrap();
    // The fmt chunk's sample rate (and the byte rate after it), as the fuzzer left them.
    bytes[24..28].copy_from_slice(&4_278_198_080u32.to_le_bytes());
    bytes[28..32].copy_from_slice(&u32::MAX.to_le_bytes());
    let err = Clip::decode(bytes, &path).unwrap_err().to_string();
    assert!(
        err.contains("corrupt audio") && err.contains("4278198080 samples a second"),
        "{err}"
    );
    assert!(voicesim::audio::Resampler::new(4_278_198_080, 8_000).is_err());
    assert!(voicesim::audio::Resampler::new(8_000, 0).is_err());
}

/// Found by fuzzing: symphonia's RIFF reader overflows (a panic with overflow checks on) on
/// some chunk sizes. A decoder that gives up is a corrupt file, not a crash.
#[test]
fn a_file_that_breaks_the_decoder_is_corrupt_audio() {
    let input = std::fs::read(
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("fuzz/regressions/audio_decode/riff-chunk-size-overflow.wav"),
    )
    .unwrap();
    // The fuzz target's first byte picks the file name; the file is the rest.
    let result = Clip::decode(input[1..].to_vec(), "found.wav");
    match result {
        Err(AudioError::Corrupt { .. } | AudioError::Unsupported { .. }) => {}
        other => panic!("expected corrupt audio, got {other:?}"),
    }
}
