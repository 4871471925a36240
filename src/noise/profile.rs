use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{bundled, line::Line, NoiseError};
use crate::audio::{AudioError, Clip};

/// A named noisy setting: background layers, burst sounds and line impairments.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NoiseProfile {
    /// How reports and conditions name it (`cafe@10dB`).
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// Recordings looped under the whole call; together at the suite's SNR when it gives one.
    #[serde(default)]
    pub background: Vec<Background>,
    /// Short sounds at given or seeded moments, each at its own SNR.
    #[serde(default)]
    pub bursts: Vec<Burst>,
    /// Impairments of the line, applied after mixing.
    #[serde(default)]
    pub line: Line,
    /// Where the profile's files live; not part of the YAML.
    #[serde(skip)]
    pub base: Base,
}

/// A recording looped for the whole call from a seeded random offset.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Background {
    /// A recording (WAV, FLAC, MP3, OGG) relative to the profile's folder, or a bundled sound.
    pub file: String,
    /// dB over the speech's level, or a `[min, max]` range each call draws from.
    pub snr: Snr,
    /// Length of the equal-power crossfade where the loop wraps around.
    #[serde(default = "default_crossfade_ms")]
    pub crossfade_ms: u32,
}

fn default_crossfade_ms() -> u32 {
    500
}

/// A short sound placed at explicit times or at seeded random times.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Burst {
    /// A recording (WAV, FLAC, MP3, OGG) relative to the profile's folder, or a bundled sound.
    pub file: String,
    /// dB over the speech's level, or a `[min, max]` range each call draws from.
    pub snr: Snr,
    /// Seconds from the start of the call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<Vec<f64>>,
    /// Mean occurrences per minute of a Poisson process.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_minute: Option<f64>,
}

/// When a burst sounds.
#[derive(Debug, Clone, PartialEq)]
pub enum Timing {
    At(Vec<f64>),
    PerMinute(f64),
}

impl Burst {
    pub fn timing(&self) -> Timing {
        match (&self.at, self.per_minute) {
            (Some(at), _) => Timing::At(at.clone()),
            (None, Some(rate)) => Timing::PerMinute(rate),
            (None, None) => Timing::At(Vec::new()),
        }
    }
}

/// An SNR in dB, or a `[min, max]` range from which each call draws one value.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(untagged)]
pub enum Snr {
    Db(f64),
    Range([f64; 2]),
}

impl Snr {
    pub fn pick(self, rng: &mut impl rand::Rng) -> f64 {
        use rand::RngExt;
        match self {
            Snr::Db(db) => db,
            Snr::Range([lo, hi]) if lo == hi => lo,
            Snr::Range([lo, hi]) => rng.random_range(lo..=hi),
        }
    }
}

impl std::fmt::Display for Snr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Snr::Db(db) => write!(f, "{db} dB"),
            Snr::Range([lo, hi]) => write!(f, "{lo}..{hi} dB"),
        }
    }
}

/// Where a profile's relative file names are looked up.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Base {
    /// The recordings compiled into the binary (fixtures/noise).
    #[default]
    Bundled,
    Dir(PathBuf),
}

/// A profile's audio file, resolved.
#[derive(Debug, Clone, PartialEq)]
pub enum Source {
    Bundled(&'static str),
    File(PathBuf),
}

impl Source {
    pub fn load(&self) -> Result<Clip, AudioError> {
        match self {
            Source::Bundled(name) => {
                let bytes = bundled::file(name).map_or(&[][..], |(_, b)| b);
                Clip::decode(bytes.to_vec(), format!("<bundled>/{name}"))
            }
            Source::File(path) => Clip::open(path),
        }
    }
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::Bundled(name) => write!(f, "{name} (bundled)"),
            Source::File(path) => write!(f, "{}", path.display()),
        }
    }
}

impl NoiseProfile {
    /// Names of the profiles compiled into the binary.
    pub fn bundled_names() -> Vec<&'static str> {
        bundled::PROFILES.iter().map(|(n, _)| *n).collect()
    }

    pub fn bundled(name: &str) -> Result<NoiseProfile, NoiseError> {
        let yaml = bundled::profile(name).ok_or_else(|| NoiseError::UnknownProfile {
            name: name.into(),
            known: Self::bundled_names()
                .iter()
                .map(|s| s.to_string())
                .collect(),
        })?;
        Self::parse(yaml, &format!("<bundled>/{name}.yaml"), Base::Bundled)
    }

    pub fn load(path: impl AsRef<Path>) -> Result<NoiseProfile, NoiseError> {
        let path = path.as_ref();
        let yaml = crate::file::read_text(path).map_err(|source| NoiseError::Read {
            path: path.into(),
            source,
        })?;
        let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        Self::parse(&yaml, &path.display().to_string(), Base::Dir(dir))
    }

    /// A bundled profile by name, or a YAML file by path (anything with a `/` or a `.yaml`/`.yml`
    /// ending, or an existing file).
    pub fn find(name_or_path: &str) -> Result<NoiseProfile, NoiseError> {
        if name_or_path == "clean" {
            return Ok(Self::clean());
        }
        let path = Path::new(name_or_path);
        let looks_like_path = name_or_path.contains(std::path::MAIN_SEPARATOR)
            || name_or_path.contains('/')
            || matches!(
                path.extension().and_then(|e| e.to_str()),
                Some("yaml" | "yml")
            );
        if looks_like_path || (bundled::profile(name_or_path).is_none() && path.is_file()) {
            Self::load(path)
        } else {
            Self::bundled(name_or_path)
        }
    }

    /// Parses and validates profile YAML; `origin` names the file in errors.
    pub fn parse(yaml: &str, origin: &str, base: Base) -> Result<NoiseProfile, NoiseError> {
        let mut profile: NoiseProfile = crate::yaml::parse(yaml, origin)
            .map_err(|(place, message)| NoiseError::Profile { place, message })?;
        profile.base = base;
        profile.validate(origin)?;
        Ok(profile)
    }

    fn validate(&self, origin: &str) -> Result<(), NoiseError> {
        let fail = |field: String, message: String| NoiseError::Profile {
            place: format!("{origin}: {field}"),
            message,
        };
        if self.name.trim().is_empty() {
            return Err(fail("name".into(), "must not be empty".into()));
        }
        let check_snr = |field: String, snr: Snr| match snr {
            Snr::Db(db) if !(-30.0..=60.0).contains(&db) => {
                Err(fail(field, format!("{db} dB is outside -30..=60 dB")))
            }
            Snr::Range([lo, hi]) if lo > hi => Err(fail(
                field,
                format!("range [{lo}, {hi}] has min > max; write [{hi}, {lo}]"),
            )),
            Snr::Range([lo, hi])
                if !(-30.0..=60.0).contains(&lo) || !(-30.0..=60.0).contains(&hi) =>
            {
                Err(fail(
                    field,
                    format!("range [{lo}, {hi}] is outside -30..=60 dB"),
                ))
            }
            _ => Ok(()),
        };
        for (i, bg) in self.background.iter().enumerate() {
            check_snr(format!("background[{i}].snr"), bg.snr)?;
            self.source(&bg.file)
                .map_err(|m| fail(format!("background[{i}].file"), m))?;
        }
        for (i, burst) in self.bursts.iter().enumerate() {
            check_snr(format!("bursts[{i}].snr"), burst.snr)?;
            self.source(&burst.file)
                .map_err(|m| fail(format!("bursts[{i}].file"), m))?;
            match (&burst.at, burst.per_minute) {
                (Some(_), Some(_)) => {
                    return Err(fail(
                        format!("bursts[{i}]"),
                        "give either `at` or `per_minute`, not both".into(),
                    ))
                }
                (None, None) => {
                    return Err(fail(
                        format!("bursts[{i}]"),
                        "needs `at: [seconds, ...]` or `per_minute: N`".into(),
                    ))
                }
                (Some(at), None) => {
                    if let Some(t) = at.iter().find(|t| !t.is_finite() || **t < 0.0) {
                        return Err(fail(
                            format!("bursts[{i}].at"),
                            format!("{t} is not a time in seconds >= 0"),
                        ));
                    }
                }
                (None, Some(rate)) => {
                    if !(rate.is_finite() && rate > 0.0 && rate <= 600.0) {
                        return Err(fail(
                            format!("bursts[{i}].per_minute"),
                            format!("{rate} must be in (0, 600]"),
                        ));
                    }
                }
            }
        }
        self.line
            .validate()
            .map_err(|(field, m)| fail(format!("line.{field}"), m))
    }

    /// Resolves a file name of this profile.
    pub fn source(&self, file: &str) -> Result<Source, String> {
        match &self.base {
            Base::Bundled => bundled::file(file)
                .map(|(name, _)| Source::Bundled(name))
                .ok_or_else(|| format!("{file:?} is not a bundled noise file")),
            Base::Dir(dir) => {
                let path = dir.join(file);
                if path.is_file() {
                    Ok(Source::File(path))
                } else {
                    Err(format!(
                        "{} does not exist; paths are relative to the profile's folder",
                        path.display()
                    ))
                }
            }
        }
    }

    /// The same profile with its background at `snr` dB (the CLI's `--snr`): every layer moves
    /// by the same number of dB, so the layers keep their balance and together (their powers
    /// summed) sit at `snr`. Ranges move with their midpoint.
    pub fn with_background_snr(mut self, snr: f64) -> Result<NoiseProfile, NoiseError> {
        if !(snr.is_finite() && (-30.0..=60.0).contains(&snr)) {
            return Err(NoiseError::Profile {
                place: "--snr".into(),
                message: format!("{snr} dB is outside -30..=60 dB"),
            });
        }
        let nominal = |s: Snr| match s {
            Snr::Db(db) => db,
            Snr::Range([lo, hi]) => (lo + hi) / 2.0,
        };
        let combined_power: f64 = self
            .background
            .iter()
            .map(|bg| 10f64.powf(-nominal(bg.snr) / 10.0))
            .sum();
        if combined_power > 0.0 {
            let shift = snr + 10.0 * combined_power.log10();
            for bg in &mut self.background {
                bg.snr = match bg.snr {
                    Snr::Db(db) => Snr::Db(db + shift),
                    Snr::Range([lo, hi]) => Snr::Range([lo + shift, hi + shift]),
                };
            }
        }
        Ok(self)
    }

    /// A profile that adds nothing: the clean condition.
    pub fn clean() -> NoiseProfile {
        NoiseProfile {
            name: "clean".into(),
            description: "No added noise.".into(),
            background: Vec::new(),
            bursts: Vec::new(),
            line: Line::default(),
            base: Base::Bundled,
        }
    }
}
