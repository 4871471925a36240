use std::io::Cursor;
use std::path::Path;

use symphonia::core::codecs::audio::AudioDecoderOptions;
use symphonia::core::errors::Error as SymError;
use symphonia::core::formats::probe::Hint;
use symphonia::core::formats::{FormatOptions, TrackType};
use symphonia::core::io::MediaSourceStream;
use symphonia::core::meta::MetadataOptions;

use super::{AudioError, Clip};

/// Decodes a whole file, downmixed to mono.
pub(super) fn decode(bytes: Vec<u8>, path: &Path) -> Result<Clip, AudioError> {
    let mut channels = decode_channels(bytes, path)?;
    if channels.len() == 1 {
        return Ok(channels.remove(0));
    }
    let rate = channels.first().map_or(8_000, |c| c.rate);
    let n = channels.len().max(1);
    let len = channels.iter().map(Clip::len).max().unwrap_or(0);
    let scale = 1.0 / n as f32;
    let mono = (0..len)
        .map(|i| {
            channels
                .iter()
                .filter_map(|c| c.samples.get(i))
                .sum::<f32>()
                * scale
        })
        .collect();
    Ok(Clip::new(mono, rate))
}

/// Decodes a whole file, one clip per channel. A decoder that panics on a malformed file
/// (symphonia's RIFF reader overflows on some chunk sizes, found by fuzzing) has met a corrupt
/// file, not a bug of ours.
pub(super) fn decode_channels(bytes: Vec<u8>, path: &Path) -> Result<Vec<Clip>, AudioError> {
    crate::guard::catch(|| decode_unguarded(bytes, path)).unwrap_or_else(|panic| {
        Err(AudioError::Corrupt {
            path: path.into(),
            reason: format!("the decoder gave up: {}", panic.message),
        })
    })
}

fn decode_unguarded(bytes: Vec<u8>, path: &Path) -> Result<Vec<Clip>, AudioError> {
    let unsupported = |reason: String| AudioError::Unsupported {
        path: path.into(),
        reason,
    };
    let corrupt = |reason: String| AudioError::Corrupt {
        path: path.into(),
        reason,
    };
    if bytes.is_empty() {
        return Err(AudioError::Empty { path: path.into() });
    }

    let mut hint = Hint::new();
    if let Some(ext) = path.extension().and_then(|e| e.to_str()) {
        hint.with_extension(ext);
    }
    let mss = MediaSourceStream::new(Box::new(Cursor::new(bytes)), Default::default());
    let mut format = symphonia::default::get_probe()
        .probe(
            &hint,
            mss,
            FormatOptions::default(),
            MetadataOptions::default(),
        )
        .map_err(|e| unsupported(e.to_string()))?;
    let track = format
        .default_track(TrackType::Audio)
        .ok_or_else(|| unsupported("no audio track".into()))?;
    let track_id = track.id;
    let params = track
        .codec_params
        .as_ref()
        .and_then(|p| p.audio())
        .ok_or_else(|| unsupported("no audio codec parameters".into()))?;
    let mut decoder = symphonia::default::get_codecs()
        .make_audio_decoder(params, &AudioDecoderOptions::default())
        .map_err(|e| unsupported(e.to_string()))?;

    let mut channels: Vec<Vec<f32>> = Vec::new();
    let mut interleaved: Vec<f32> = Vec::new();
    let mut rate = None;
    loop {
        let packet = match format.next_packet() {
            Ok(Some(packet)) => packet,
            Ok(None) => break,
            // A truncated file ends in an unexpected EOF: keep what decoded.
            Err(SymError::IoError(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => break,
            Err(e) => return Err(corrupt(e.to_string())),
        };
        if packet.track_id != track_id {
            continue;
        }
        let buf = match decoder.decode(&packet) {
            Ok(buf) => buf,
            // One bad packet is a glitch, not a reason to lose the file.
            Err(SymError::DecodeError(_)) => continue,
            Err(e) => return Err(corrupt(e.to_string())),
        };
        let spec = buf.spec();
        let n = spec.channels().count().max(1);
        rate.get_or_insert(spec.rate());
        interleaved.resize(buf.samples_interleaved(), 0.0);
        buf.copy_to_slice_interleaved(&mut interleaved);
        // A stream whose channel count changes midway keeps the channels it began with.
        if channels.is_empty() {
            channels = vec![Vec::new(); n];
        }
        for frame in interleaved.chunks_exact(n) {
            for (channel, s) in channels.iter_mut().zip(frame) {
                channel.push(*s);
            }
        }
    }

    match rate {
        Some(rate) if !super::RATES.contains(&rate) => Err(corrupt(format!(
            "its header says {rate} samples a second; audio has {}-{}",
            super::RATES.start(),
            super::RATES.end()
        ))),
        Some(rate) if channels.first().is_some_and(|c| !c.is_empty()) => Ok(channels
            .into_iter()
            .map(|samples| Clip::new(samples, rate))
            .collect()),
        _ => Err(AudioError::Empty { path: path.into() }),
    }
}
