use audio_codec_algorithms::{decode_alaw, decode_ulaw, encode_alaw, encode_ulaw};

/// How samples travel on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Encoding {
    /// 16-bit signed little-endian PCM.
    Pcm16,
    /// G.711 mu-law, one byte a sample (North America, Japan; Twilio).
    Mulaw,
    /// G.711 A-law, one byte a sample (Europe and most of the world).
    Alaw,
}

impl Encoding {
    pub fn bytes_per_sample(self) -> usize {
        match self {
            Encoding::Pcm16 => 2,
            Encoding::Mulaw | Encoding::Alaw => 1,
        }
    }

    pub fn encode(self, samples: &[f32]) -> Vec<u8> {
        let mut out = Vec::with_capacity(samples.len() * self.bytes_per_sample());
        self.encode_into(samples, &mut out);
        out
    }

    /// Appends the encoded samples to `out`, so a hot loop can reuse one buffer.
    pub fn encode_into(self, samples: &[f32], out: &mut Vec<u8>) {
        let pcm = samples.iter().map(|&s| to_i16(s));
        match self {
            Encoding::Pcm16 => pcm.for_each(|s| out.extend_from_slice(&s.to_le_bytes())),
            Encoding::Mulaw => out.extend(pcm.map(encode_ulaw)),
            Encoding::Alaw => out.extend(pcm.map(encode_alaw)),
        }
    }

    /// Decodes wire bytes; a trailing odd byte of PCM16 is dropped.
    pub fn decode(self, bytes: &[u8]) -> Vec<f32> {
        match self {
            Encoding::Pcm16 => bytes
                .chunks_exact(2)
                .map(|b| match *b {
                    [lo, hi] => from_i16(i16::from_le_bytes([lo, hi])),
                    _ => 0.0, // chunks_exact(2) makes none
                })
                .collect(),
            Encoding::Mulaw => bytes.iter().map(|&b| from_i16(decode_ulaw(b))).collect(),
            Encoding::Alaw => bytes.iter().map(|&b| from_i16(decode_alaw(b))).collect(),
        }
    }
}

/// f32 in [-1, 1] to i16, saturating: what a real ADC does with an overload.
pub(crate) fn to_i16(s: f32) -> i16 {
    // Rounds half away from zero as `f32::round` does (the sum is exact below 2^23), without
    // its libm call on every sample; `as` saturates.
    let v = s * 32768.0;
    (v + 0.5f32.copysign(v)) as i16
}

pub(crate) fn from_i16(s: i16) -> f32 {
    s as f32 / 32768.0
}

/// The value `s` has after a trip through 16-bit PCM.
pub fn quantize_i16(s: f32) -> f32 {
    from_i16(to_i16(s))
}
