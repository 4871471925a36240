//! Noise decoded once per run: every call under a profile shares its decoded sounds read-only
//! and keeps only its own offsets, gains and seed (a load run decoding and resampling a cafe for
//! each of a hundred calls a second took the cores its calls' frames needed, and 0.6 MB a call).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use super::{LoadedNoise, NoiseError, NoiseProfile};

/// A profile by name or path, at a rate.
type Key = (String, u32);

/// The profiles a run has loaded, by name or path and rate; a clone is the same shelf.
#[derive(Debug, Default, Clone)]
pub struct Shelf {
    loaded: Arc<Mutex<HashMap<Key, Arc<LoadedNoise>>>>,
}

impl Shelf {
    /// The profile `name_or_path` (as [`NoiseProfile::find`] takes it) at `rate`, its
    /// background at `snr` dB when given: decoded the first time it is asked for, shared after.
    pub fn get(
        &self,
        name_or_path: &str,
        snr: Option<f64>,
        rate: u32,
    ) -> Result<LoadedNoise, NoiseError> {
        let shared = {
            // A poisoned shelf still holds whole entries: each is inserted once loaded.
            let mut loaded = self.loaded.lock().unwrap_or_else(PoisonError::into_inner);
            match loaded.get(&(name_or_path.to_string(), rate)) {
                Some(noise) => noise.clone(),
                None => {
                    let noise =
                        Arc::new(LoadedNoise::load(&NoiseProfile::find(name_or_path)?, rate)?);
                    loaded.insert((name_or_path.to_string(), rate), noise.clone());
                    noise
                }
            }
        };
        let mut noise = LoadedNoise::clone(&shared);
        if let Some(snr) = snr {
            noise.profile = noise.profile.with_background_snr(snr)?;
        }
        Ok(noise)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::noise::MicTimeline;

    #[test]
    fn calls_share_one_decoding_and_still_sound_as_their_own() {
        let shelf = Shelf::default();
        let a = shelf.get("cafe", Some(20.0), 8_000).unwrap();
        let b = shelf.get("cafe", Some(5.0), 8_000).unwrap();
        assert!(a.shares_sounds_with(&b), "decoded once");
        assert!(!a.shares_sounds_with(&shelf.get("cafe", None, 16_000).unwrap()));
        // Each is what loading it alone gives: same seed, same frames.
        let alone = LoadedNoise::load(
            &NoiseProfile::find("cafe")
                .unwrap()
                .with_background_snr(5.0)
                .unwrap(),
            8_000,
        )
        .unwrap();
        let (mut shared, mut own) = (MicTimeline::new(&b, 7), MicTimeline::new(&alone, 7));
        for _ in 0..100 {
            assert_eq!(shared.next_frame(), own.next_frame());
        }
        assert!(shelf.get("no-such-room", None, 8_000).is_err());
    }
}
