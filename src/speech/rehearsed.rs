//! Lines said over and over: a load run's callers say the suite's scripted lines thousands of
//! times, so each is synthesized once, trimmed and resampled to the wire rate, and shared (a
//! load makes them all before its first call: made as calls start, a hundred calls a second
//! each reading, trimming and resampling their line took the cores the calls up needed).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use super::{SpeechError, Tts, Voice};
use crate::audio::Clip;

/// A line: its text and its voice (as JSON).
type Line = (String, String);

/// Wraps any [`Tts`]; keeps every line it has said, so use it where the lines are few (scripted).
pub struct RehearsedTts {
    inner: Arc<dyn Tts>,
    rate: u32,
    lines: Mutex<HashMap<Line, Clip>>,
}

impl RehearsedTts {
    /// Lines come out at `rate`, without the engine's leading and trailing silence.
    pub fn new(inner: Arc<dyn Tts>, rate: u32) -> RehearsedTts {
        RehearsedTts {
            inner,
            rate,
            lines: Mutex::new(HashMap::new()),
        }
    }
}

impl Tts for RehearsedTts {
    fn id(&self) -> String {
        self.inner.id()
    }

    fn synthesize(&self, text: &str, voice: &Voice) -> Result<Clip, SpeechError> {
        let key = (
            text.to_string(),
            serde_json::to_string(voice).unwrap_or_default(),
        );
        let lines = || self.lines.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(clip) = lines().get(&key) {
            return Ok(clip.clone());
        }
        // Made without the lock, so other lines are not held up; a failure is not kept.
        let clip = self
            .inner
            .synthesize(text, voice)?
            .trim_silence()
            .resample(self.rate)?;
        Ok(lines().entry(key).or_insert(clip).clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    /// A tone per line at 16 kHz, with silence either side; counts what it is asked.
    struct Tone(AtomicU32);

    impl Tts for Tone {
        fn id(&self) -> String {
            "tone".into()
        }
        fn synthesize(&self, text: &str, _: &Voice) -> Result<Clip, SpeechError> {
            self.0.fetch_add(1, Ordering::SeqCst);
            let mut samples = vec![0.0; 1_600];
            samples.extend((0..16 * text.len() * 10).map(|i| (i as f32 * 0.2).sin() * 0.3));
            samples.extend(vec![0.0; 1_600]);
            Ok(Clip::new(samples, 16_000))
        }
    }

    #[test]
    fn each_line_is_made_once_trimmed_and_at_the_wire_rate() {
        let tone = Arc::new(Tone(AtomicU32::new(0)));
        let rehearsed = RehearsedTts::new(tone.clone(), 8_000);
        let voice = Voice::default();
        let first = rehearsed.synthesize("hello", &voice).unwrap();
        assert_eq!(first.rate, 8_000);
        // 50 ms of tone, no padding (trimmed to within a 10 ms window).
        assert!(
            (first.duration() - 0.05).abs() <= 0.011,
            "{}",
            first.duration()
        );
        for _ in 0..5 {
            assert_eq!(rehearsed.synthesize("hello", &voice).unwrap(), first);
        }
        rehearsed.synthesize("goodbye", &voice).unwrap();
        assert_eq!(tone.0.load(Ordering::SeqCst), 2);
    }
}
