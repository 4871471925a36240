use biquad::{Biquad, Coefficients, DirectForm2Transposed, ToHertz, Type};
use rand::{Rng, RngExt};
use serde::{Deserialize, Serialize};

/// Impairments of the phone line, applied after speech and noise are mixed.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Line {
    /// Band-limit to the 300–3400 Hz of a narrowband phone call.
    #[serde(default)]
    pub telephone_band: bool,
    /// Hard-clip at this peak level (dBFS), as an overdriven microphone or codec does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clip_dbfs: Option<f64>,
    /// Lose whole 20 ms frames in bursts, as a congested network does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub packet_loss: Option<GilbertElliott>,
}

/// The Gilbert-Elliott two-state packet-loss model, one step per 20 ms frame.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GilbertElliott {
    /// Probability of moving from the good to the bad state.
    pub p: f64,
    /// Probability of moving from the bad back to the good state.
    pub r: f64,
    /// Loss probability while good.
    #[serde(default)]
    pub loss_good: f64,
    /// Loss probability while bad.
    #[serde(default = "one")]
    pub loss_bad: f64,
}

fn one() -> f64 {
    1.0
}

impl GilbertElliott {
    /// Long-run fraction of frames lost.
    pub fn mean_loss(&self) -> f64 {
        let in_bad = if self.p + self.r > 0.0 {
            self.p / (self.p + self.r)
        } else {
            0.0
        };
        in_bad * self.loss_bad + (1.0 - in_bad) * self.loss_good
    }
}

impl Line {
    pub fn is_clean(&self) -> bool {
        !self.telephone_band && self.clip_dbfs.is_none() && self.packet_loss.is_none()
    }

    /// Checks ranges; the error is (field, message).
    pub(super) fn validate(&self) -> Result<(), (String, String)> {
        if let Some(c) = self.clip_dbfs {
            if !(c.is_finite() && (-40.0..=0.0).contains(&c)) {
                return Err(("clip_dbfs".into(), format!("{c} must be in -40..=0 dBFS")));
            }
        }
        if let Some(ge) = &self.packet_loss {
            for (name, v) in [
                ("p", ge.p),
                ("r", ge.r),
                ("loss_good", ge.loss_good),
                ("loss_bad", ge.loss_bad),
            ] {
                if !(0.0..=1.0).contains(&v) {
                    return Err((
                        format!("packet_loss.{name}"),
                        format!("{v} is not a probability in 0..=1"),
                    ));
                }
            }
        }
        Ok(())
    }
}

/// Section Qs of a 4th-order Butterworth filter: 1 / (2 cos(pi/8)) and 1 / (2 cos(3pi/8)).
const BUTTERWORTH_4TH_Q: [f32; 2] = [0.541_196_1, 1.306_563];

/// The running state of a [`Line`] on one call.
pub(super) struct LineState {
    band: Vec<DirectForm2Transposed<f32>>,
    clip: Option<f32>,
    loss: Option<(GilbertElliott, bool)>,
}

impl LineState {
    pub(super) fn new(line: &Line, rate: u32) -> Self {
        let mut band = Vec::new();
        // A 4th-order Butterworth at each edge (two sections with these Qs): flat in the
        // band, 24 dB/octave outside, like a channel bank filter. The low-pass needs the rate
        // to exceed 6.8 kHz; every supported rate does.
        if line.telephone_band && rate as f32 > 2.0 * 3400.0 {
            for kind in [Type::HighPass, Type::LowPass] {
                let f0: f32 = if kind == Type::HighPass {
                    300.0
                } else {
                    3400.0
                };
                for q in BUTTERWORTH_4TH_Q {
                    if let Ok(c) =
                        Coefficients::<f32>::from_params(kind, (rate as f32).hz(), f0.hz(), q)
                    {
                        band.push(DirectForm2Transposed::<f32>::new(c));
                    }
                }
            }
        }
        LineState {
            band,
            clip: line
                .clip_dbfs
                .map(|d| crate::audio::level::from_dbfs(d) as f32),
            loss: line.packet_loss.map(|ge| (ge, false)),
        }
    }

    /// Applies the line to one frame; returns false if the frame was lost.
    pub(super) fn apply(&mut self, frame: &mut [f32], rng: &mut impl Rng) -> bool {
        for f in &mut self.band {
            frame.iter_mut().for_each(|s| *s = f.run(*s));
        }
        if let Some(limit) = self.clip {
            frame.iter_mut().for_each(|s| *s = s.clamp(-limit, limit));
        }
        if let Some((ge, bad)) = &mut self.loss {
            *bad = if *bad {
                !rng.random_bool(ge.r)
            } else {
                rng.random_bool(ge.p)
            };
            let loss = if *bad { ge.loss_bad } else { ge.loss_good };
            if rng.random_bool(loss) {
                frame.fill(0.0);
                return false;
            }
        }
        true
    }
}
