//! The caller's ears. Two hearings of each agent turn:
//!
//! - [`Hearing`], the quick one: the playing turn transcribed a part at a time, so that when it
//!   ends only its last words are left and the caller can answer on a person's timing. A part
//!   is cut at a pause and kept only once a longer window from the same place has heard the
//!   same words (the local-agreement policy of streaming Whisper), so a cut never splits a
//!   word.
//! - [`WholeTurns`], the one the record and the judge read: every turn transcribed whole when
//!   the call is over, so it never holds the recognizer while a caller's quick ear waits; a
//!   turn the quick ear heard in one go is not heard twice. Where the two differ, the record
//!   keeps both, and the difference is the call's hearing drift.

use std::time::Instant;

use super::{ms_since, Senses, SimError};
use crate::audio::Clip;
use crate::guard;
use crate::record::{Line, Speaker};
use crate::speech::wer::normalize;

/// What the caller's speech recognizer made of an agent turn, and how long it took (ms).
#[derive(Debug, Clone, Default)]
pub(super) struct Heard {
    pub text: String,
    pub queued_ms: f64,
    pub stt_ms: f64,
}

pub(super) async fn transcribe(senses: &Senses, audio: Clip) -> Result<Heard, SimError> {
    if audio.is_empty() {
        return Ok(Heard::default());
    }
    let stt = senses.stt.clone();
    let start = Instant::now();
    let transcript = guard::blocking(move || {
        // `VOICESIM_TEST_STT_DELAY_MS`: a recognizer that slow, as on a machine too busy.
        #[cfg(feature = "test-hooks")]
        if let Some(ms) = std::env::var("VOICESIM_TEST_STT_DELAY_MS")
            .ok()
            .and_then(|v| v.parse().ok())
        {
            std::thread::sleep(std::time::Duration::from_millis(ms));
        }
        stt.transcribe(&audio)
    })
    .await??;
    Ok(Heard {
        text: transcript.text.trim().to_string(),
        queued_ms: transcript.queued_ms,
        stt_ms: ms_since(start) - transcript.queued_ms,
    })
}

/// The words of `text` after those of `prefix`, if it begins with them, as the judge reads
/// words.
fn words_after(text: &str, prefix: &str) -> Option<String> {
    let (text, prefix) = (normalize(text), normalize(prefix));
    let mut words = text.split_whitespace();
    prefix
        .split_whitespace()
        .all(|w| words.next() == Some(w))
        .then(|| words.collect::<Vec<_>>().join(" "))
}

/// Whether two hearings of a turn have the same words, as the judge reads words.
fn same_words(a: &str, b: &str) -> bool {
    normalize(a) == normalize(b)
}

/// The playing agent turn as the caller has transcribed it so far, a part at a time. Whisper
/// hears a lone short word badly ("Goodbye." on its own can come out as nothing), so neither a
/// part nor what is left at the end is ever shorter than a sentence's worth: the end is heard
/// with the parts before it that it needs.
#[derive(Debug, Default)]
pub(super) struct Hearing {
    turn_started_ms: f64,
    /// Parts agreed on: where each ends (samples of the turn), and its words.
    parts: Vec<(usize, String)>,
    /// The window after the last part up to the latest pause, heard once and not yet agreed
    /// on: where it ends, and its words.
    pending: Option<(usize, String)>,
    /// The turn heard in one go from its start: how many samples, and what was heard.
    one_go: Option<(usize, Heard)>,
}

impl Hearing {
    /// A pause at least this long is where the turn so far may be cut: between words, and
    /// inside some (a stop consonant's closure: Piper's "shipped" is silent for 110 ms before
    /// its "p" releases). A window cut inside a word is heard with another word at its end,
    /// which the longer window after it does not agree with, so it is never kept.
    const CUT_MS: f64 = 120.0;
    /// The least audio a part, or the end, is transcribed from.
    const LEAST_S: f64 = 2.0;

    fn of_turn(&mut self, turn_started_ms: f64) {
        if self.turn_started_ms != turn_started_ms {
            *self = Hearing {
                turn_started_ms,
                ..Hearing::default()
            };
        }
    }

    fn upto(&self) -> usize {
        self.parts.last().map_or(0, |(end, _)| *end)
    }

    /// Hears `audio` (the turn from its start, still playing) from the last part agreed on
    /// to its last pause; the window heard before is agreed on, and becomes a part, when this
    /// longer one begins with the same words. Only while the recognizer is free: on a machine
    /// too busy for it the turn is heard whole at its end.
    pub async fn partly(&mut self, senses: &Senses, turn_started_ms: f64, audio: Clip) {
        self.of_turn(turn_started_ms);
        if !senses.stt.free() {
            return;
        }
        let upto = self.upto();
        let mut window = Clip::new(
            audio.samples.get(upto..).unwrap_or_default().to_vec(),
            audio.rate,
        );
        let Some(cut) = window.last_pause(Self::CUT_MS) else {
            return;
        };
        let end = upto + cut;
        if (cut as f64) < Self::LEAST_S * f64::from(audio.rate)
            || self.pending.as_ref().is_some_and(|(e, _)| *e >= end)
        {
            return;
        }
        window.samples.truncate(cut);
        // A failure here is met again when the turn is heard whole.
        let Ok(heard) = transcribe(senses, window).await else {
            return;
        };
        let agreed = self.pending.take().and_then(|(pending_end, words)| {
            Some((pending_end, words_after(&heard.text, &words)?, words))
        });
        self.pending = Some(match agreed {
            Some((pending_end, rest, words)) => {
                self.parts.push((pending_end, words));
                // What this window heard past the agreed part waits for the next to agree.
                (end, rest)
            }
            None => (end, heard.text),
        });
    }

    /// What was said in `audio` (the turn from its start): the parts agreed on, and the rest,
    /// heard now together with as many of the last parts as make it long enough.
    pub async fn whole(
        &mut self,
        senses: &Senses,
        turn_started_ms: f64,
        audio: Clip,
    ) -> Result<Heard, SimError> {
        self.of_turn(turn_started_ms);
        let least = (Self::LEAST_S * f64::from(audio.rate)) as usize;
        let kept = self
            .parts
            .iter()
            .rposition(|(end, _)| audio.samples.len().saturating_sub(*end) >= least)
            .map_or(0, |k| k + 1);
        let from = kept
            .checked_sub(1)
            .and_then(|k| self.parts.get(k))
            .map_or(0, |(end, _)| *end);
        let length = audio.samples.len();
        let rest = Clip::new(
            audio.samples.get(from..).unwrap_or_default().to_vec(),
            audio.rate,
        );
        let mut heard = transcribe(senses, rest).await?;
        if kept == 0 {
            self.one_go = Some((length, heard.clone()));
        }
        let before: Vec<&str> = self
            .parts
            .iter()
            .take(kept)
            .map(|(_, t)| t.as_str())
            .collect();
        heard.text = format!("{} {}", before.join(" "), heard.text)
            .trim()
            .to_string();
        Ok(heard)
    }

    /// Whether the turn that started at `turn_started_ms` has parts heard already (else it is
    /// heard in one go when it ends).
    pub fn has_parts(&self, turn_started_ms: f64) -> bool {
        self.turn_started_ms == turn_started_ms && !self.parts.is_empty()
    }

    /// This turn as heard in one go from its start, if it was, over these many samples.
    fn in_one_go(&self, turn_started_ms: f64, samples: usize) -> Option<Heard> {
        self.one_go
            .as_ref()
            .filter(|(n, _)| self.turn_started_ms == turn_started_ms && *n == samples)
            .map(|(_, heard)| heard.clone())
    }
}

/// Each ended agent turn, to be heard whole, by the turn's start.
#[derive(Default)]
pub(super) struct WholeTurns {
    turns: Vec<(f64, Whole)>,
}

enum Whole {
    /// Not heard yet: heard when the call is over, where it competes with no caller's ear.
    Audio(Clip),
    Heard(Heard),
    /// Transcription failed: the record keeps what the caller heard.
    Failed,
}

impl WholeTurns {
    /// The turn that started at `turn_started_ms` has ended with `audio`: kept to be heard
    /// whole, unless the caller's ear heard exactly this in one go.
    pub fn ended(&mut self, hearing: &Hearing, turn_started_ms: f64, audio: &Clip) {
        let whole = match hearing.in_one_go(turn_started_ms, audio.samples.len()) {
            Some(heard) => Whole::Heard(heard),
            None => Whole::Audio(audio.clone()),
        };
        self.turns
            .retain(|(at, _)| !super::same_end(*at, turn_started_ms));
        self.turns.push((turn_started_ms, whole));
    }

    /// The whole turn that started at `turn_started_ms`, heard now if it was not; an error is
    /// told once (then the record keeps what the caller heard).
    pub async fn wait(
        &mut self,
        senses: &Senses,
        turn_started_ms: f64,
    ) -> Option<Result<Heard, SimError>> {
        let (_, whole) = self
            .turns
            .iter_mut()
            .find(|(at, _)| super::same_end(*at, turn_started_ms))?;
        match whole {
            Whole::Audio(audio) => {
                let heard = transcribe(
                    senses,
                    std::mem::replace(audio, Clip::new(Vec::new(), audio.rate)),
                )
                .await;
                *whole = match &heard {
                    Ok(heard) => Whole::Heard(heard.clone()),
                    Err(_) => Whole::Failed,
                };
                Some(heard)
            }
            Whole::Heard(heard) => Some(Ok(heard.clone())),
            Whole::Failed => None,
        }
    }

    /// Puts the whole-turn words into the transcript's agent lines (each at its turn's start),
    /// keeping what the caller heard where its words differ; returns the hearing drift: the
    /// WER of what the caller heard against the whole turns, over the turns heard both ways.
    pub async fn settle(&mut self, senses: &Senses, transcript: &mut [Line]) -> Option<f64> {
        let (mut wholes, mut heards) = (Vec::new(), Vec::new());
        for line in transcript
            .iter_mut()
            .filter(|l| l.speaker == Speaker::Agent)
        {
            let Some(Ok(whole)) = self.wait(senses, line.at_ms).await else {
                continue;
            };
            let heard = std::mem::replace(&mut line.text, whole.text);
            line.heard = (!same_words(&heard, &line.text)).then(|| heard.clone());
            wholes.push(line.text.clone());
            heards.push(heard);
        }
        (!wholes.is_empty()).then(|| crate::speech::wer::wer(&wholes.join(" "), &heards.join(" ")))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::speech::{SpeechError, Stt, Transcript, Tts, Voice};

    /// Hears words as Whisper would, by their sound: a word is sound with gaps under 200 ms
    /// (a stop consonant's closure), named by its length in tenths of a second; a word the audio
    /// ends in, or less than 100 ms after, is heard as another one (as half of "shipped" is
    /// heard as "shit").
    struct Words;

    impl Stt for Words {
        fn id(&self) -> String {
            "words".into()
        }
        fn transcribe(&self, clip: &Clip) -> Result<Transcript, SpeechError> {
            let rate = f64::from(clip.rate);
            let name = |len: usize| (len as f64 / rate * 10.0).round();
            let (mut words, mut word, mut quiet) = (Vec::new(), None::<(usize, usize)>, 0);
            for (i, s) in clip.samples.iter().enumerate() {
                if s.abs() > 0.0 {
                    word = Some((word.map_or(i, |(start, _)| start), i));
                    quiet = 0;
                    continue;
                }
                quiet += 1;
                if let Some((start, last)) = word.filter(|_| quiet as f64 >= 0.2 * rate) {
                    words.push(format!("w{}", name(last + 1 - start)));
                    word = None;
                }
            }
            if let Some((start, last)) = word {
                let whole = quiet as f64 >= 0.1 * rate;
                words.push(format!(
                    "{}{}",
                    if whole { "w" } else { "cut" },
                    name(last + 1 - start)
                ));
            }
            Ok(Transcript {
                text: words.join(" "),
                ..Transcript::default()
            })
        }
    }

    impl Tts for Words {
        fn id(&self) -> String {
            "words".into()
        }
        fn synthesize(&self, _: &str, _: &Voice) -> Result<Clip, SpeechError> {
            Ok(Clip::new(Vec::new(), 16_000))
        }
    }

    fn senses() -> Senses {
        Senses {
            tts: Arc::new(Words),
            voice: Voice::default(),
            stt: Arc::new(Words),
        }
    }

    /// `pattern`: seconds of sound (positive) and of silence (negative).
    fn turn(pattern: &[f64]) -> Clip {
        let mut samples = Vec::new();
        for &s in pattern {
            let n = (s.abs() * 16_000.0).round() as usize;
            let level = if s > 0.0 { 0.3 } else { 0.0 };
            samples.extend((0..n).map(|_| level));
        }
        Clip::new(samples, 16_000)
    }

    fn so_far(whole: &Clip, s: f64) -> Clip {
        Clip::new(whole.samples[..(s * 16_000.0) as usize].to_vec(), 16_000)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn a_part_is_kept_once_a_longer_window_agrees_so_no_word_is_cut() {
        let senses = senses();
        let mut hearing = Hearing::default();
        // A word, a word with a 150 ms closure in it (1.5-3.6 s), a word, and a short last one
        // ("Goodbye."), with pauses of 300 ms between them.
        let whole = turn(&[1.2, -0.3, 1.0, -0.15, 0.95, -0.3, 1.3, -0.3, 0.5, -0.3]);
        // 1.5 s in: too little to cut.
        hearing.partly(&senses, 0.0, so_far(&whole, 1.5)).await;
        assert!(hearing.pending.is_none() && hearing.parts.is_empty());
        // 2.7 s in: the last pause is the closure; the window cut there hears half a word.
        hearing.partly(&senses, 0.0, so_far(&whole, 2.7)).await;
        assert_eq!(hearing.pending.as_ref().unwrap().1, "w12 cut10");
        // 4.2 s in: a longer window hears that word whole: nothing agreed, nothing kept.
        hearing.partly(&senses, 0.0, so_far(&whole, 4.2)).await;
        assert!(hearing.parts.is_empty(), "{:?}", hearing.parts);
        assert_eq!(hearing.pending.as_ref().unwrap().1, "w12 w21");
        // 5.7 s in: the next window begins with the same words: the one before is a part.
        hearing.partly(&senses, 0.0, so_far(&whole, 5.7)).await;
        assert_eq!(hearing.parts.len(), 1, "{:?}", hearing.parts);
        assert_eq!(hearing.parts[0].1, "w12 w21");
        // The end: what is left after the part is long enough to hear alone.
        let heard = hearing.whole(&senses, 0.0, whole.clone()).await.unwrap();
        assert_eq!(heard.text, "w12 w21 w13 w5");
        assert!(hearing.has_parts(0.0) && hearing.in_one_go(0.0, whole.samples.len()).is_none());
        // A new turn starts from nothing, and heard in one go it is known as such.
        let short = turn(&[1.0, -0.2]);
        let heard = hearing
            .whole(&senses, 9_000.0, short.clone())
            .await
            .unwrap();
        assert_eq!(heard.text, "w10");
        assert!(!hearing.has_parts(9_000.0));
        assert_eq!(
            hearing
                .in_one_go(9_000.0, short.samples.len())
                .unwrap()
                .text,
            "w10"
        );
    }

    /// A recognizer with no free lane: every transcription asked for now would wait.
    struct Busy;

    impl Stt for Busy {
        fn id(&self) -> String {
            "busy".into()
        }
        fn transcribe(&self, clip: &Clip) -> Result<Transcript, SpeechError> {
            Words.transcribe(clip)
        }
        fn free(&self) -> bool {
            false
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn a_recognizer_with_no_free_lane_hears_the_turn_whole_at_its_end() {
        let senses = Senses {
            stt: Arc::new(Busy),
            ..senses()
        };
        let mut hearing = Hearing::default();
        let whole = turn(&[1.2, -0.3, 1.0, -0.3, 1.3, -0.3]);
        for s in [2.7, 4.2] {
            hearing.partly(&senses, 0.0, so_far(&whole, s)).await;
        }
        assert!(hearing.pending.is_none() && hearing.parts.is_empty());
        let heard = hearing.whole(&senses, 0.0, whole.clone()).await.unwrap();
        assert_eq!(heard.text, "w12 w10 w13");
        // ... and that hearing is the whole turn's: not heard again for the record.
        assert!(hearing.in_one_go(0.0, whole.samples.len()).is_some());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn the_record_reads_the_whole_turn_and_keeps_what_the_caller_heard_where_it_differs() {
        let senses = senses();
        let hearing = Hearing::default();
        let mut wholes = WholeTurns::default();
        wholes.ended(&hearing, 100.0, &turn(&[0.5, -0.2, 0.7, -0.1]));
        wholes.ended(&hearing, 5_000.0, &turn(&[0.3, -0.1]));
        let line = |text: &str, at_ms| Line {
            speaker: Speaker::Agent,
            text: text.into(),
            at_ms,
            heard: None,
        };
        let mut transcript = vec![
            line("w5 cut7", 100.0),
            Line {
                speaker: Speaker::Caller,
                text: "hello".into(),
                at_ms: 3_000.0,
                heard: None,
            },
            line("W3.", 5_000.0),
        ];
        let drift = wholes.settle(&senses, &mut transcript).await.unwrap();
        assert_eq!(transcript[0].text, "w5 w7");
        assert_eq!(transcript[0].heard.as_deref(), Some("w5 cut7"));
        // The same words, however written: nothing kept twice.
        assert_eq!(transcript[2].text, "w3");
        assert_eq!(transcript[2].heard, None);
        assert_eq!(transcript[1].text, "hello");
        // One word of three misheard.
        assert!((drift - 1.0 / 3.0).abs() < 1e-9, "{drift}");
    }
}
