use std::path::PathBuf;

use sha2::{Digest, Sha256};

use super::{SpeechError, Tts, Voice};
use crate::audio::{write_wav, Clip};

/// Keeps every synthesized clip on disk, keyed by a hash of (engine, voice, text), so a suite
/// run twice synthesizes each line once. Wraps any [`Tts`].
pub struct CachedTts<T> {
    inner: T,
    dir: PathBuf,
}

impl<T: Tts> CachedTts<T> {
    pub fn new(inner: T, dir: impl Into<PathBuf>) -> Self {
        CachedTts {
            inner,
            dir: dir.into(),
        }
    }

    /// `$VOICESIM_CACHE/tts`, else `$XDG_CACHE_HOME/voicesim/tts`, else `~/.cache/voicesim/tts`.
    pub fn in_default_dir(inner: T) -> Self {
        CachedTts::new(inner, crate::cache_dir().join("tts"))
    }

    fn path(&self, text: &str, voice: &Voice) -> PathBuf {
        let mut hash = Sha256::new();
        // Length-prefixed fields: ("ab", "c") and ("a", "bc") must not collide.
        for field in [
            self.inner.id(),
            serde_json::to_string(voice).unwrap_or_default(),
            text.to_string(),
        ] {
            hash.update((field.len() as u64).to_le_bytes());
            hash.update(field.as_bytes());
        }
        let hex: String = hash.finalize().iter().map(|b| format!("{b:02x}")).collect();
        self.dir.join(format!("{hex}.wav"))
    }
}

impl<T: Tts> Tts for CachedTts<T> {
    fn id(&self) -> String {
        self.inner.id()
    }

    fn synthesize(&self, text: &str, voice: &Voice) -> Result<Clip, SpeechError> {
        let path = self.path(text, voice);
        // A damaged cache entry is just a miss.
        if let Ok(clip) = Clip::open(&path) {
            return Ok(clip);
        }
        // Quantized as the cache stores it, so a hit and a miss give the same samples.
        let mut clip = self.inner.synthesize(text, voice)?;
        clip.samples
            .iter_mut()
            .for_each(|s| *s = crate::audio::quantize_i16(*s));
        // Write beside and rename, so a crash never leaves half a file under the real name.
        if std::fs::create_dir_all(&self.dir).is_ok() {
            let tmp = path.with_extension(format!("{}.part", std::process::id()));
            if write_wav(&tmp, &[&clip]).is_ok() {
                let _ = std::fs::rename(&tmp, &path);
            }
        }
        Ok(clip)
    }
}
