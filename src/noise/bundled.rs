//! The noise recordings and profiles in fixtures/noise, compiled into the binary so that
//! `voicesim` works from any directory on a fresh machine.

macro_rules! fixtures {
    ($($name:literal),* $(,)?) => {
        &[$(($name, include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/noise/", $name)))),*]
    };
}

macro_rules! profiles {
    ($($name:literal),* $(,)?) => {
        &[$(($name, include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/noise/", $name, ".yaml")))),*]
    };
}

pub(crate) static FILES: &[(&str, &[u8])] = fixtures![
    "babble.wav",
    "car.wav",
    "dog_bark.wav",
    "door.wav",
    "keyboard.wav",
    "office.wav",
    "phone_ring.wav",
    "street.wav",
];

pub(crate) static PROFILES: &[(&str, &str)] =
    profiles!["cafe", "call-center", "car", "office", "street"];

/// A bundled recording by file name: its name as a static string, and its bytes.
pub(crate) fn file(name: &str) -> Option<(&'static str, &'static [u8])> {
    FILES.iter().find(|(n, _)| *n == name).copied()
}

pub(crate) fn profile(name: &str) -> Option<&'static str> {
    PROFILES.iter().find(|(n, _)| *n == name).map(|(_, y)| *y)
}
