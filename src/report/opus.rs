//! Ogg Opus (RFC 7845) from a call's channels, for a report that carries its recordings: a
//! stereo call of a minute is ~240 KB at 32 kbit/s against ~1.9 MB of 8 kHz WAV.

use ogg::writing::{PacketWriteEndInfo, PacketWriter};
use opus::{Application, Bitrate, Channels, Encoder};

/// Rates Opus encodes natively; others are resampled to 48 kHz first.
const OPUS_RATES: [u32; 5] = [8_000, 12_000, 16_000, 24_000, 48_000];
const FRAME_MS: usize = 20;

/// One or two channels as an Ogg Opus file; `None` if the encoder refuses.
pub fn ogg(channels: &[Vec<f32>], rate: u32) -> Option<Vec<u8>> {
    let (channels, rate) = if OPUS_RATES.contains(&rate) {
        (channels.to_vec(), rate)
    } else {
        let mut resampler = crate::audio::Resampler::new(rate, 48_000).ok()?;
        let resampled = channels
            .iter()
            .map(|c| {
                resampler
                    .process(&crate::audio::Clip::new(c.clone(), rate))
                    .ok()
                    .map(|clip| clip.samples)
            })
            .collect::<Option<Vec<_>>>()?;
        (resampled, 48_000)
    };
    let stereo = channels.len() >= 2;
    let (left, right) = match channels.as_slice() {
        [l, r, ..] => (l.as_slice(), r.as_slice()),
        [l] => (l.as_slice(), l.as_slice()),
        [] => return None,
    };
    let count = if stereo { 2 } else { 1 };
    let mut encoder = Encoder::new(
        rate,
        if stereo {
            Channels::Stereo
        } else {
            Channels::Mono
        },
        Application::Voip,
    )
    .ok()?;
    encoder.set_bitrate(Bitrate::Bits(32_000)).ok()?;
    let pre_skip = encoder.get_lookahead().ok()? as u64 * 48_000 / rate as u64;

    let mut head = b"OpusHead".to_vec();
    head.push(1);
    head.push(count as u8);
    head.extend((pre_skip as u16).to_le_bytes());
    head.extend(rate.to_le_bytes());
    head.extend(0i16.to_le_bytes());
    head.push(0);
    let mut tags = b"OpusTags".to_vec();
    let vendor = b"voicesim";
    tags.extend((vendor.len() as u32).to_le_bytes());
    tags.extend(vendor);
    tags.extend(0u32.to_le_bytes());

    let serial = 0x766f_6963;
    let mut writer = PacketWriter::new(Vec::new());
    writer
        .write_packet(head, serial, PacketWriteEndInfo::EndPage, 0)
        .ok()?;
    writer
        .write_packet(tags, serial, PacketWriteEndInfo::EndPage, 0)
        .ok()?;
    let frame = rate as usize * FRAME_MS / 1000;
    let len = left.len().max(right.len());
    let frames = len.div_ceil(frame).max(1);
    let mut pcm = vec![0f32; frame * count];
    let mut packet = vec![0u8; 4000];
    for i in 0..frames {
        for (j, slot) in pcm.chunks_mut(count).enumerate() {
            let at = i * frame + j;
            if let Some(s) = slot.first_mut() {
                *s = left.get(at).copied().unwrap_or(0.0);
            }
            if let Some(s) = slot.get_mut(1) {
                *s = right.get(at).copied().unwrap_or(0.0);
            }
        }
        let n = encoder.encode_float(&pcm, &mut packet).ok()?;
        let end = if i + 1 == frames {
            PacketWriteEndInfo::EndStream
        } else {
            PacketWriteEndInfo::NormalPacket
        };
        // Granule positions count 48 kHz samples, the pre-skip included; the last one cuts
        // the padding of the final frame.
        let granule = if i + 1 == frames {
            pre_skip + len as u64 * 48_000 / rate as u64
        } else {
            pre_skip + ((i + 1) * frame) as u64 * 48_000 / rate as u64
        };
        writer
            .write_packet(packet.get(..n)?.to_vec(), serial, end, granule)
            .ok()?;
    }
    Some(writer.into_inner())
}
