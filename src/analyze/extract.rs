//! A noise profile from a real call's caller side: the caller's speech cut out, what is left
//! joined into a loopable background, short loud sounds that are not words kept as bursts, and
//! the SNR the caller really had. Nothing heard as words may leave: the result is listened to
//! again, and refused if anyone is heard saying anything.

use crate::audio::{level, Clip};
use crate::speech::{SpeechError, Stt};

use super::activity::{self, Span};
use super::{listen, words, Levels};

/// Speech fades in before and out after what the detector marks: this much more goes too.
const SPEECH_MARGIN_MS: f64 = 300.0;
/// Around a burst, this much goes with it (its attack and ring).
const BURST_MARGIN_MS: f64 = 100.0;
/// A burst is a sound this far above the room...
const BURST_ABOVE_DB: f64 = 10.0;
/// ... lasting this long; longer is a change of room, not an event.
const BURST_MIN_MS: f64 = 40.0;
const BURST_MAX_MS: f64 = 2_000.0;
/// The strongest this many are kept.
const MAX_BURSTS: usize = 6;
/// Pieces of room are joined with an equal-power crossfade this long.
const JOIN_MS: f64 = 30.0;
/// Less room than this loops with a seam a listener hears.
pub const SHORT_NOISE_S: f64 = 8.0;
/// A line this clean is not worth replaying as noise.
pub const CLEAN_SNR_DB: f64 = 35.0;

/// What was taken from a call.
#[derive(Debug, Clone)]
pub struct Extracted {
    /// The room, speech and bursts cut out, joined with crossfades.
    pub background: Clip,
    pub bursts: Vec<ExtractedBurst>,
    /// The caller's speech against the room, as voicesim mixes it.
    pub snr_db: Option<f64>,
    pub background_dbfs: f64,
    /// The caller's speech turns that were cut out.
    pub speech: Vec<Span>,
}

/// A short loud sound from the call, and where and how loud it was.
#[derive(Debug, Clone)]
pub struct ExtractedBurst {
    pub clip: Clip,
    pub at_ms: f64,
    /// Against the caller's speech level, as a profile's burst SNR.
    pub snr_db: Option<f64>,
    pub dbfs: f64,
}

/// Why a call gave no profile.
#[derive(Debug, thiserror::Error)]
pub enum ExtractError {
    #[error("the caller's side has no room left once its speech is cut out ({0:.1} s of noise)")]
    NoRoom(f64),
    #[error(
        "words are still heard in what would be kept ({0}): the profile is refused so that no \
         one's speech leaves the recording"
    )]
    WordsHeard(String),
    #[error(transparent)]
    Speech(#[from] SpeechError),
}

/// Stretches of `side` louder than `threshold_dbfs`, 20 ms frame by frame; frames up to 60 ms
/// apart are one stretch.
fn loud_runs(side: &Clip, threshold_dbfs: f64) -> Vec<Span> {
    let frame = crate::audio::Frame::samples_per_frame(side.rate).max(1);
    let ms = |i: usize| i as f64 * 1000.0 / side.rate as f64;
    let mut runs: Vec<Span> = Vec::new();
    for (i, chunk) in side.samples.chunks(frame).enumerate() {
        if level::to_dbfs(level::rms(chunk)) <= threshold_dbfs {
            continue;
        }
        let (start, end) = (ms(i * frame), ms(i * frame + chunk.len()));
        match runs.last_mut() {
            // Frames a little apart are one sound (a bark's two halves).
            Some(last) if start - last.end_ms <= 60.0 => last.end_ms = end,
            _ => runs.push(Span {
                start_ms: start,
                end_ms: end,
            }),
        }
    }
    runs
}

fn overlaps_any(span: &Span, others: &[Span], margin_ms: f64) -> bool {
    others
        .iter()
        .any(|o| span.start_ms < o.end_ms + margin_ms && o.start_ms - margin_ms < span.end_ms)
}

/// Takes a noise profile's material from a caller's side. `stt` decides which loud stretches
/// are words (cut out) and which are not (bursts), and listens to what is kept.
pub fn extract(caller: &Clip, stt: &dyn Stt) -> Result<Extracted, ExtractError> {
    let found = activity::detect(caller);
    // Loud stretches with words in them are the caller's speech; without, sounds of the room.
    let mut speech = Vec::new();
    let mut wordless = Vec::new();
    for span in found.spans {
        if words(&listen(caller, &span, stt)?) > 0 {
            speech.push(span);
        } else {
            wordless.push(span);
        }
    }
    let levels = Levels::of(caller, &speech);
    // The room's level, from what is left between speech and loud sounds.
    let quiet: Vec<Span> = speech.iter().chain(&wordless).copied().collect();
    let ((_, _), (room_power, room_n)) = activity::powers(caller, &quiet, SPEECH_MARGIN_MS);
    let room_dbfs = level::to_dbfs((room_power / room_n.max(1) as f64).sqrt()).max(-120.0);
    let mut bursts: Vec<ExtractedBurst> = loud_runs(caller, room_dbfs + BURST_ABOVE_DB)
        .into_iter()
        .filter(|r| (BURST_MIN_MS..=BURST_MAX_MS).contains(&r.ms()))
        .filter(|r| !overlaps_any(r, &speech, SPEECH_MARGIN_MS))
        .map(|r| {
            let clip = caller.between(r.start_ms - BURST_MARGIN_MS, r.end_ms + BURST_MARGIN_MS);
            let dbfs = clip.rms_dbfs();
            ExtractedBurst {
                at_ms: (r.start_ms - BURST_MARGIN_MS).max(0.0),
                snr_db: levels.speech_dbfs.map(|s| s - dbfs),
                dbfs,
                clip,
            }
        })
        .collect();
    bursts.sort_by(|a, b| b.dbfs.total_cmp(&a.dbfs));
    bursts.truncate(MAX_BURSTS);
    bursts.sort_by(|a, b| a.at_ms.total_cmp(&b.at_ms));

    // The room: everything but speech (with its margin) and the bursts kept, joined. Loud
    // sounds that are not words and not kept as bursts (a truck going by, the seventh horn)
    // stay in it: cut, they would leave a room quieter than the caller's was.
    let mut cut: Vec<Span> = speech
        .iter()
        .map(|s| Span {
            start_ms: s.start_ms - SPEECH_MARGIN_MS,
            end_ms: s.end_ms + SPEECH_MARGIN_MS,
        })
        .chain(bursts.iter().map(|b| Span {
            start_ms: b.at_ms,
            end_ms: b.at_ms + b.clip.duration() * 1000.0,
        }))
        .collect();
    cut.sort_by(|a, b| a.start_ms.total_cmp(&b.start_ms));
    let mut pieces = Vec::new();
    let mut from = 0.0;
    for span in &cut {
        if span.start_ms > from {
            pieces.push(caller.between(from, span.start_ms));
        }
        from = from.max(span.end_ms);
    }
    pieces.push(caller.between(from, caller.duration() * 1000.0));
    let background = join(pieces, caller.rate);
    if background.duration() < 1.0 {
        return Err(ExtractError::NoRoom(background.duration()));
    }
    let background_dbfs = background.rms_dbfs();
    // What leaves is listened to once more: anything the detector takes for speech in the
    // background, and every burst, must hold no words.
    let mut heard = Vec::new();
    for span in activity::detect(&background).spans {
        let text = stt
            .transcribe(&background.between(span.start_ms, span.end_ms))?
            .text;
        if words(&text) > 0 {
            heard.push(format!(
                "{} word(s) at {:.1} s of the background",
                words(&text),
                span.start_ms / 1000.0
            ));
        }
    }
    for burst in &bursts {
        if words(&stt.transcribe(&burst.clip)?.text) > 0 {
            heard.push(format!("the burst at {:.1} s", burst.at_ms / 1000.0));
        }
    }
    if !heard.is_empty() {
        return Err(ExtractError::WordsHeard(heard.join(", ")));
    }
    Ok(Extracted {
        snr_db: levels.speech_dbfs.map(|s| s - background_dbfs),
        background_dbfs,
        background,
        bursts,
        speech,
    })
}

/// Pieces end to end, each seam an equal-power crossfade of [`JOIN_MS`] (shorter where a
/// piece is).
fn join(pieces: Vec<Clip>, rate: u32) -> Clip {
    let fade = (JOIN_MS * rate as f64 / 1000.0) as usize;
    let mut out: Vec<f32> = Vec::new();
    for piece in pieces.into_iter().filter(|p| !p.is_empty()) {
        let n = fade.min(piece.len() / 2).min(out.len() / 2);
        let start = out.len() - n;
        for (i, (o, &s)) in out.iter_mut().skip(start).zip(&piece.samples).enumerate() {
            let t = (i as f32 + 0.5) / n as f32 * std::f32::consts::FRAC_PI_2;
            *o = *o * t.cos() + s * t.sin();
        }
        out.extend(piece.samples.iter().skip(n));
    }
    Clip::new(out, rate)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn joined_pieces_keep_their_level_across_the_seams() {
        let noise = |n: usize, seed: u32| -> Vec<f32> {
            let mut x = seed;
            (0..n)
                .map(|_| {
                    x = x.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                    (x >> 8) as f32 / (1u32 << 24) as f32 - 0.5
                })
                .collect()
        };
        let pieces: Vec<Clip> = (0..5).map(|k| Clip::new(noise(8_000, k), 16_000)).collect();
        let joined = join(pieces, 16_000);
        assert_eq!(joined.len(), 5 * 8_000 - 4 * 480);
        let level = |s: &[f32]| level::to_dbfs(level::rms(s));
        let whole = level(&joined.samples);
        let seam = joined.between(500.0 - 15.0, 500.0 + 15.0);
        assert!((level(&seam.samples) - whole).abs() < 1.5);
    }
}
