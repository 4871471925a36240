//! `voicesim analyze` and `voicesim noise extract` on "production" calls built from the
//! repository's own fixtures: Piper speech on the caller's side mixed with a noise recording at
//! a known SNR, the agent's turns placed at known times on the other, one of them cut into.

mod common;

use std::path::Path;
use std::sync::OnceLock;

use voicesim::analyze::{activity, analyze, extract, Sides};
use voicesim::audio::{level, spectrum, write_wav, Clip};
use voicesim::speech::{Piper, Tts, Voice};

const RATE: u32 = 16_000;

fn piper() -> &'static Piper {
    static PIPER: OnceLock<Piper> = OnceLock::new();
    PIPER.get_or_init(|| Piper::load_default().expect("the Piper voice; run `make setup`"))
}

/// A line of speech at the speech reference level, trimmed to where it is audible (20 ms
/// windows within 40 dB of its loudest), so its edges are the truth the analysis is held to.
fn say(text: &str) -> Vec<f32> {
    let clip = piper()
        .synthesize(text, &Voice::default())
        .unwrap()
        .resample(RATE)
        .unwrap()
        .normalized_to(-20.0);
    let frame = RATE as usize / 50;
    let loud: Vec<f64> = clip
        .samples
        .chunks(frame)
        .map(|c| level::to_dbfs(level::rms(c)))
        .collect();
    let top = loud.iter().cloned().fold(f64::MIN, f64::max);
    let first = loud.iter().position(|&d| d > top - 40.0).unwrap();
    let last = loud.iter().rposition(|&d| d > top - 40.0).unwrap();
    clip.samples[first * frame..((last + 1) * frame).min(clip.len())].to_vec()
}

/// `noise` looped to `len` samples at `snr` dB under the speech reference (-20 dBFS).
fn room(noise: &str, len: usize, snr: f64) -> Vec<f32> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/noise")
        .join(noise);
    let clip = Clip::open(path).unwrap().resample(RATE).unwrap();
    let looped: Vec<f32> = clip.samples.iter().cycle().take(len).copied().collect();
    Clip::new(looped, RATE).normalized_to(-20.0 - snr).samples
}

fn place(track: &mut Vec<f32>, at_ms: f64, samples: &[f32]) -> (f64, f64) {
    let at = (at_ms * RATE as f64 / 1000.0) as usize;
    if track.len() < at + samples.len() {
        track.resize(at + samples.len(), 0.0);
    }
    for (t, s) in track[at..].iter_mut().zip(samples) {
        *t += s;
    }
    (at_ms, at_ms + samples.len() as f64 * 1000.0 / RATE as f64)
}

/// A call as a platform records it, and what really happened on it.
struct Production {
    sides: Sides,
    /// Agent start minus the end of the caller's turn before it, for each answered turn.
    latencies: Vec<f64>,
    /// The caller cut into the agent's turn at this time; the agent went on this long after.
    cut_in: (f64, f64),
}

fn production(noise: &str, snr: f64) -> Production {
    let mut caller = Vec::new();
    let mut agent = Vec::new();
    let greeting = place(
        &mut agent,
        500.0,
        &say("Thanks for calling Acme. How can I help you today?"),
    );
    let ask = place(
        &mut caller,
        greeting.1 + 800.0,
        &say("I'd like to know where my order is."),
    );
    let number = place(
        &mut agent,
        ask.1 + 650.0,
        &say("Sure. What is your order number?"),
    );
    let digits = place(
        &mut caller,
        number.1 + 900.0,
        &say("It is four five two one."),
    );
    // A long answer the caller cuts into after two seconds; the agent stops 400 ms later.
    let long = say(
        "Order four five two one shipped on Monday and arrives on Friday, between nine and five.",
    );
    let answer_at = digits.1 + 720.0;
    let stop = (2_400.0 * RATE as f64 / 1000.0) as usize;
    place(&mut agent, answer_at, &long[..stop]);
    let thanks = place(
        &mut caller,
        answer_at + 2_000.0,
        &say("Great, thank you, that's all."),
    );
    let bye = place(
        &mut agent,
        thanks.1 + 600.0,
        &say("You're welcome. Goodbye!"),
    );
    let len = ((bye.1 + 1_500.0) * RATE as f64 / 1000.0) as usize;
    caller.resize(len, 0.0);
    agent.resize(len, 0.0);
    let noise = room(noise, len, snr);
    // The caller's turns as a listener has them: where the speech stands above the room.
    let (ask, digits, thanks) = (
        audible(&caller, &noise, ask),
        audible(&caller, &noise, digits),
        audible(&caller, &noise, thanks),
    );
    for (c, n) in caller.iter_mut().zip(&noise) {
        *c += n;
    }
    Production {
        sides: Sides::new(Clip::new(caller, RATE), Clip::new(agent, RATE)),
        latencies: vec![number.0 - ask.1, answer_at - digits.1, bye.0 - thanks.1],
        cut_in: (thanks.0, answer_at + 2_400.0 - thanks.0),
    }
}

/// The first and last 10 ms of `span` in which the speech, in the band a phone carries, has
/// more power than the noise under it.
fn audible(speech: &[f32], noise: &[f32], span: (f64, f64)) -> (f64, f64) {
    let band = |x: &[f32]| activity::speech_band(&Clip::new(x.to_vec(), RATE)).samples;
    let (s, n) = (band(speech), band(noise));
    let w = RATE as usize / 100;
    let at = |ms: f64| (ms * RATE as f64 / 1000.0) as usize;
    let power = |x: &[f32]| x.iter().map(|v| v * v).sum::<f32>();
    let above: Vec<usize> = (at(span.0)..at(span.1) - w)
        .step_by(w / 2)
        .filter(|&i| power(&s[i..i + w]) > power(&n[i..i + w]))
        .collect();
    let ms = |i: usize| i as f64 * 1000.0 / RATE as f64;
    (ms(above[0]), ms(above[above.len() - 1] + w))
}

#[test]
fn analyze_finds_the_latencies_the_cut_in_and_the_snr() {
    // A bus engine that swells by 12 dB every 3.7 s, where a word's end sinks into the room.
    // Measured: every latency within 20 ms of the truth, a frame, as the aim is (up to 25 ms
    // off while an edge was held to the room's typical level, not the room beside it; 85 ms
    // while it stopped at the first quiet 10 ms). (In street traffic and office noise a loud noise
    // within 0.7 s of the caller's words still joins their turn: see docs/analyze.md.)
    const FRAME_MS: f64 = 20.0;
    for (noise, snr) in [("car.wav", 15.0), ("car.wav", 20.0)] {
        let call = production(noise, snr);
        let found = analyze(&call.sides, Some(common::whisper().as_ref())).unwrap();
        let m = &found.metrics;
        let latencies: Vec<f64> = found
            .record
            .turns
            .iter()
            .filter_map(|t| t.response_latency_ms)
            .collect();
        eprintln!(
            "{noise} at {snr} dB: latencies {latencies:?}, truly {:?}; SNR {:?}; yield {:?} and overlap {:?}, truly {}",
            call.latencies, m.caller_snr_db, m.yield_p50_ms, m.overlap_ms, call.cut_in.1
        );
        assert_eq!(
            latencies.len(),
            call.latencies.len(),
            "{noise}: {latencies:?}"
        );
        for (found, truth) in latencies.iter().zip(&call.latencies) {
            assert!(
                (found - truth).abs() <= FRAME_MS,
                "{noise}: latency {found} against {truth}"
            );
        }
        assert_eq!(m.caller_cut_ins, Some(1), "{noise}");
        assert_eq!(m.agent_cut_ins, Some(0), "{noise}");
        let yielded = m.yield_p50_ms.unwrap();
        assert!(
            (yielded - call.cut_in.1).abs() <= 40.0,
            "{noise}: yield {yielded} against {:?}",
            call.cut_in
        );
        assert!(
            (m.overlap_ms.unwrap() - call.cut_in.1).abs() <= 40.0,
            "{noise}"
        );
        let measured = m.caller_snr_db.unwrap();
        assert!(
            (measured - snr).abs() <= 1.5,
            "{noise}: SNR {measured} against {snr}"
        );
        assert_eq!(m.turns, 4, "{noise}");
    }
}

#[test]
fn noise_extract_keeps_the_room_its_spectrum_and_snr_and_no_words() {
    let snr = 12.0;
    let call = production("car.wav", snr);
    let whisper = common::whisper();
    let taken = extract::extract(&call.sides.caller, whisper.as_ref()).unwrap();
    assert_eq!(taken.speech.len(), 3, "{:?}", taken.speech);
    let measured = taken.snr_db.unwrap();
    assert!(
        (measured - snr).abs() <= 1.5,
        "SNR {measured} against {snr}"
    );
    // The long-term spectrum of what was kept matches the noise that went in.
    let original = room("car.wav", RATE as usize * 20, snr);
    let want = spectrum::third_octaves(&Clip::new(original, RATE));
    let got = spectrum::third_octaves(&taken.background);
    assert_eq!(want.len(), got.len());
    let worst = want
        .iter()
        .zip(&got)
        .map(|(w, g)| (w.db - g.db).abs())
        .fold(0.0, f64::max);
    eprintln!(
        "extracted: SNR {measured:.1} dB for {snr}, {:.1} s of room, spectrum within {worst:.1} dB",
        taken.background.duration()
    );
    for (w, g) in want.iter().zip(&got) {
        assert!(
            (w.db - g.db).abs() <= 3.0,
            "{:.0} Hz: {:.1} dB kept against {:.1} dB",
            w.centre_hz,
            g.db,
            w.db
        );
    }
    // Nobody is heard in it.
    let heard = whisper.transcribe(&taken.background).unwrap();
    assert!(
        heard.text.split_whitespace().count() <= 1,
        "heard {:?}",
        heard.text
    );
}

#[test]
fn analyze_and_extract_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let call = production("street.wav", 10.0);
    let wav = dir.path().join("calls").join("street-call.wav");
    std::fs::create_dir_all(wav.parent().unwrap()).unwrap();
    write_wav(&wav, &[&call.sides.caller, &call.sides.agent]).unwrap();
    let out = dir.path().join("analyzed");
    let o = common::voicesim(&[
        "analyze",
        dir.path().join("calls").to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    let text = common::text(&o);
    assert!(o.status.success(), "{text}");
    assert!(text.contains("calls/street-call"), "{text}");
    let line: serde_json::Value = serde_json::from_str(
        std::fs::read_to_string(out.join("results.jsonl"))
            .unwrap()
            .lines()
            .next()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(line["test"], "calls/street-call");
    assert_eq!(line["metrics"]["turns"], 4);
    let said: String = line["transcript"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["speaker"] == "agent")
        .map(|l| l["text"].as_str().unwrap().to_lowercase())
        .collect();
    assert!(said.contains("friday") || said.contains("monday"), "{said}");
    // The report reads a recording as one: nothing judged (not a failed test), no noise
    // KPIs against clean calls it has not got, the conversation's measures in its section.
    let page = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(
        page.contains("<td class=\"nj\" data-test=\"calls/street-call\" data-condition=\"recorded\"><b>not judged</b>"),
        "the matrix cell"
    );
    assert!(!page.contains("Noise KPIs"));
    for measure in [
        "caller's SNR",
        "overlap",
        "caller cut-ins",
        "caller's share of talk",
    ] {
        assert!(page.contains(&format!("<dt>{measure}</dt>")), "{measure}");
    }
    // A second analysis into the same folder is refused, not mixed in.
    let again = common::voicesim(&[
        "analyze",
        wav.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(again.status.code(), Some(2), "{}", common::text(&again));

    let profile = dir.path().join("field").join("street-call.yaml");
    let o = common::voicesim(&[
        "noise",
        "extract",
        wav.to_str().unwrap(),
        "-o",
        profile.to_str().unwrap(),
    ]);
    let text = common::text(&o);
    assert!(o.status.success(), "{text}");
    assert!(dir
        .path()
        .join("field/street-call-background.wav")
        .is_file());
    // The profile plays like any other.
    let mixed = dir.path().join("mixed.wav");
    let piece = dir.path().join("piece.wav");
    write_wav(&piece, &[&Clip::new(say("Hello there."), RATE)]).unwrap();
    let o = common::voicesim(&[
        "noise",
        "mix",
        piece.to_str().unwrap(),
        "--profile",
        profile.to_str().unwrap(),
        "-o",
        mixed.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", common::text(&o));

    // Speech left in: a call whose caller never stops talking has no room to take.
    let talker = dir.path().join("talker.wav");
    let words: Vec<f32> = (0..4)
        .flat_map(|_| say("one two three four five six seven eight"))
        .collect();
    write_wav(&talker, &[&Clip::new(words, RATE)]).unwrap();
    let o = common::voicesim(&[
        "noise",
        "extract",
        talker.to_str().unwrap(),
        "-o",
        dir.path().join("talker.yaml").to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", common::text(&o));
}

/// A run's own recording, analyzed, gives the turns and latencies the run measured as it
/// called: the example suite's scripted calls against the reference agent, both sides Piper.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn analyze_of_a_run_s_own_recording_agrees_with_the_run() {
    use std::sync::Arc;
    use voicesim::transport::Protocol;
    let yaml = common::scripted_examples();
    let voice: Arc<dyn Tts> = Arc::new(Piper::load_default().expect("run `make setup`"));
    let url = common::reference_agent(Protocol::Twilio, voice.clone()).await;
    let ran = common::run_at(
        &yaml,
        url,
        Protocol::Twilio,
        1,
        1,
        (voice, common::whisper()),
        None,
    )
    .await;
    assert_eq!(ran.results.len(), 3);
    for r in &ran.results {
        let wav = r.recording.as_ref().unwrap().join("call.wav");
        let sides = Sides::stereo(&wav, voicesim::analyze::Channel::Left).unwrap();
        let found = analyze(&sides, Some(common::whisper().as_ref())).unwrap();
        let latencies: Vec<f64> = found
            .record
            .turns
            .iter()
            .filter_map(|t| t.response_latency_ms)
            .collect();
        eprintln!(
            "{}: run {:?}, analyze {latencies:?}",
            r.test, r.latencies_ms
        );
        assert_eq!(found.metrics.turns, r.metrics.turns, "{}", r.test);
        assert_eq!(latencies.len(), r.latencies_ms.len(), "{}", r.test);
        for (a, b) in latencies.iter().zip(&r.latencies_ms) {
            assert!(
                (a - b).abs() <= 20.0,
                "{}: analyze {a} against the run's {b}",
                r.test
            );
        }
        assert_eq!(found.metrics.caller_cut_ins, Some(0), "{}", r.test);
    }
}

/// How long the street call is.
const CALL_S: usize = 40;

/// The caller's side of a long call in the street at `snr`: three lines over 40 s of the
/// street recording looped, as a platform records it.
fn street_caller_side(snr: f64) -> Clip {
    let len = CALL_S * RATE as usize;
    let mut caller = vec![0.0; len];
    for (at_ms, text) in [
        (3_000.0, "Hi, I am calling about my order."),
        (17_000.0, "It is four five two one."),
        (31_000.0, "Okay, thank you. Bye."),
    ] {
        place(&mut caller, at_ms, &say(text));
    }
    for (c, n) in caller.iter_mut().zip(room("street.wav", len, snr)) {
        *c += n;
    }
    Clip::new(caller, RATE)
}

/// What the reference agent's ear (its endpointer, then Whisper, as `voicesim agent` hears)
/// makes of `lines` said one after another through `profile` from each of `seeds`: the
/// hearing WER over all of them.
fn heard_through(
    profile: &Path,
    snr: f64,
    lines: &[(String, Clip)],
    seeds: std::ops::Range<u64>,
) -> f64 {
    use voicesim::audio::{Endpointer, Heard};
    use voicesim::noise::{LoadedNoise, MicTimeline, NoiseProfile};
    let profile = NoiseProfile::load(profile)
        .unwrap()
        .with_background_snr(snr)
        .unwrap();
    let noise = LoadedNoise::load(&profile, RATE).unwrap();
    let (mut said, mut heard) = (String::new(), String::new());
    for seed in seeds {
        let mut mic = MicTimeline::new(&noise, seed);
        let mut ear = Endpointer::new(RATE, 500.0);
        for (text, clip) in lines {
            said.push_str(text);
            said.push(' ');
            // A second and a half of the room before each line, and after it.
            mic.say(clip.clone()).unwrap();
            let frames = (clip.duration() * 50.0) as usize + 150;
            for _ in 0..frames {
                for h in ear.push(&mic.next_frame().samples) {
                    if let Heard::Ended { utterance, .. } = h {
                        heard.push_str(&common::whisper().transcribe(&utterance).unwrap().text);
                        heard.push(' ');
                    }
                }
            }
        }
    }
    voicesim::speech::wer::wer(&said, &heard)
}

/// The reference agent hears callers as well through a room taken from a real call as through
/// the noise that went into it, at the same SNR, over the same lines from the same seeds.
/// Measured over 30 seeds: 41.2 % through the street recording at 10 dB, 42.1 % through the
/// room taken from the call at 10 dB, and 45.8 % at the 9.6 dB the room reads (that level is
/// `noise extract`'s SNR estimate, held to 1.5 dB by its own test). Eight seeds were too few:
/// the same two rooms measured 37.2 % and 44.0 % there. The aim, within 5 points, is held here.
#[test]
fn the_agent_hears_as_well_through_an_extracted_room_as_through_the_original() {
    const SNR: f64 = 10.0;
    let dir = tempfile::tempdir().unwrap();
    let call = dir.path().join("street-call.wav");
    write_wav(&call, &[&street_caller_side(SNR)]).unwrap();
    let extracted = dir.path().join("street-call.yaml");
    let o = common::voicesim(&[
        "noise",
        "extract",
        call.to_str().unwrap(),
        "-o",
        extracted.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", common::text(&o));
    eprintln!("{}", common::text(&o));
    // The noise that went into the call, as a profile at the SNR the call had.
    write_wav(
        dir.path().join("street-original.wav"),
        &[&Clip::new(
            room("street.wav", CALL_S * RATE as usize, SNR),
            RATE,
        )],
    )
    .unwrap();
    let original = dir.path().join("street-original.yaml");
    std::fs::write(
        &original,
        format!(
            "name: street-original\nbackground:\n  - file: street-original.wav\n    snr: {SNR}\n"
        ),
    )
    .unwrap();
    // What the example suite's callers say, and more of the same.
    let lines: Vec<(String, Clip)> = [
        "Hi, my order number is four five two one.",
        "Thank you, that's all. Goodbye.",
        "I'm calling about order nine nine nine nine.",
        "Can I talk to a real person, please?",
        "When will my parcel arrive?",
        "It was supposed to come on Monday.",
    ]
    .iter()
    .map(|t| (t.to_string(), Clip::new(say(t), RATE)))
    .collect();
    let before = heard_through(&original, SNR, &lines, 1..31);
    let after = heard_through(&extracted, SNR, &lines, 1..31);
    eprintln!(
        "hearing WER at {SNR} dB through the street recording {:.1}%, through the room taken from the call {:.1}%",
        before * 100.0,
        after * 100.0,
    );
    assert!(
        (before - after).abs() <= 0.05,
        "hearing WER at {SNR} dB: {:.1}% through the street recording, {:.1}% through the room taken from the call",
        before * 100.0,
        after * 100.0
    );
}

/// A clear line Whisper's tiny model hears nothing in as the turn is first cut (an espeak line
/// over a car at 20 dB, as a `voicesim call` recorded it) is still the caller's turn: heard
/// again with more air around it.
#[test]
fn a_turn_whisper_hears_nothing_in_at_first_is_heard_again() {
    let caller = common::espeak_in_a_car("That is all, thank you. Goodbye.", 238, 495);
    let sides = Sides::new(
        Clip::new(caller.clone(), RATE),
        Clip::new(vec![0.0; caller.len()], RATE),
    );
    let found = analyze(&sides, Some(common::whisper().as_ref())).unwrap();
    let said: Vec<&str> = found
        .record
        .transcript
        .iter()
        .map(|l| l.text.as_str())
        .collect();
    assert!(
        said.len() == 1 && said[0].to_lowercase().contains("goodbye"),
        "{said:?}"
    );
}
