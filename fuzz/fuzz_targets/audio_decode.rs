//! Audio files: any bytes decode to a clip or an error, never a panic, whatever they claim
//! to be.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&kind, bytes)) = data.split_first() else {
        return;
    };
    let name = ["x.wav", "x.flac", "x.mp3", "x.ogg", "x"][kind as usize % 5];
    if let Ok(clip) = voicesim::audio::Clip::decode(bytes.to_vec(), name) {
        // What the pipeline does next with a recording.
        let clip = clip.trim_silence();
        if clip.len() < 1 << 16 {
            let _ = clip.resample(8_000);
        }
    }
});
