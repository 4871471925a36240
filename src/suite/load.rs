//! How a load run puts calls on the agent: stages of concurrency (ramp, hold, spike, soak) or an
//! arrival rate. Given in the suite's `load:` or on `voicesim load`'s command line.
//!
//! ```
//! use voicesim::suite::load::{Schedule, Stage};
//!
//! // Ramp to 100 calls at once over a minute, hold them for five.
//! let schedule = Schedule::Stages(vec!["1m:100".parse().unwrap(), "5m:100".parse().unwrap()]);
//! assert_eq!(schedule.target_at(30.0), 50);
//! assert_eq!(schedule.target_at(200.0), 100);
//! assert_eq!(schedule.seconds(), 360.0);
//! ```

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Reach `target` calls at once by the end of `duration`, linearly from where the previous
/// stage ended (0 before the first). Written `DURATION:TARGET` (`30s:50`, `5m:50`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Stage {
    /// How long: `30s`, `5m`, `1h`, `1m 30s`.
    #[serde(with = "humantime_serde_compat")]
    #[schemars(with = "String")]
    pub duration: Duration,
    pub target: u32,
}

impl std::str::FromStr for Stage {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let bad = |why: String| {
            format!("{text:?}: {why}; give a stage as DURATION:CALLS, e.g. 30s:50 or 5m:200")
        };
        let (duration, target) = text.split_once(':').ok_or_else(|| bad("no ':'".into()))?;
        Ok(Stage {
            duration: humantime::parse_duration(duration.trim()).map_err(|e| bad(e.to_string()))?,
            target: target
                .trim()
                .parse()
                .map_err(|e: std::num::ParseIntError| bad(e.to_string()))?,
        })
    }
}

/// New calls arrive at random (a Poisson process, seeded) at `rate` a second for `duration`,
/// whether or not earlier ones have ended; never more than `max` at once.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Arrival {
    /// Calls a second, on average.
    pub rate: f64,
    /// How long: `30s`, `5m`, `1h`, `1m 30s`.
    #[serde(with = "humantime_serde_compat")]
    #[schemars(with = "String")]
    pub duration: Duration,
    /// The most calls at once; an arrival beyond it is counted as refused, not started.
    pub max: u32,
}

/// A suite's `load:`: stages or an arrival rate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LoadSpec {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stages: Vec<Stage>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arrival: Option<Arrival>,
}

impl LoadSpec {
    pub fn schedule(&self) -> Result<Schedule, String> {
        match (&self.stages[..], self.arrival) {
            ([], Some(arrival)) => Schedule::arrival(arrival),
            ([_, ..], None) => Schedule::stages(self.stages.clone()),
            ([], None) => Err("load: give stages or an arrival rate".into()),
            (_, Some(_)) => Err("load: give stages or an arrival rate, not both".into()),
        }
    }
}

/// When calls start.
#[derive(Debug, Clone, PartialEq)]
pub enum Schedule {
    Stages(Vec<Stage>),
    Arrival(Arrival),
}

impl Schedule {
    /// Checked stages: at least one, lasting something.
    pub fn stages(stages: Vec<Stage>) -> Result<Self, String> {
        if stages.iter().all(|s| s.duration.is_zero()) {
            return Err("the stages last no time at all; give each a duration (30s:50)".into());
        }
        Ok(Schedule::Stages(stages))
    }

    pub fn arrival(arrival: Arrival) -> Result<Self, String> {
        if !(arrival.rate.is_finite() && arrival.rate > 0.0) {
            return Err(format!(
                "an arrival rate of {} calls a second: give a positive rate",
                arrival.rate
            ));
        }
        if arrival.duration.is_zero() || arrival.max == 0 {
            return Err("an arrival needs a duration and a max above zero".into());
        }
        Ok(Schedule::Arrival(arrival))
    }

    /// How long calls are started for.
    pub fn seconds(&self) -> f64 {
        match self {
            Schedule::Stages(stages) => stages.iter().map(|s| s.duration.as_secs_f64()).sum(),
            Schedule::Arrival(a) => a.duration.as_secs_f64(),
        }
    }

    /// The most calls the schedule may hold at once.
    pub fn peak(&self) -> u32 {
        match self {
            Schedule::Stages(stages) => stages.iter().map(|s| s.target).max().unwrap_or(0),
            Schedule::Arrival(a) => a.max,
        }
    }

    /// Calls that should be up `t` seconds into the run (stages; an arrival rate has no
    /// target, only its max).
    pub fn target_at(&self, t: f64) -> u32 {
        let Schedule::Stages(stages) = self else {
            return self.peak();
        };
        let (mut from, mut start) = (0.0, 0.0);
        for stage in stages {
            let length = stage.duration.as_secs_f64();
            let to = stage.target as f64;
            if t < start + length {
                let done = if length > 0.0 {
                    (t - start) / length
                } else {
                    1.0
                };
                return (from + (to - from) * done.clamp(0.0, 1.0)).round() as u32;
            }
            from = to;
            start += length;
        }
        0
    }
}

/// Durations as humantime text ("30s", "5m") in YAML and JSON.
mod humantime_serde_compat {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&humantime::format_duration(*d).to_string())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(d)?;
        humantime::parse_duration(&text).map_err(|e| {
            serde::de::Error::custom(format!("{text:?}: {e}; write a duration as 30s, 5m or 1h"))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stages_ramp_hold_spike_and_end() {
        let s = Schedule::stages(
            ["10s:100", "20s:100", "0s:300", "5s:300", "10s:0"]
                .iter()
                .map(|s| s.parse().unwrap())
                .collect(),
        )
        .unwrap();
        assert_eq!(s.target_at(0.0), 0);
        assert_eq!(s.target_at(5.0), 50);
        assert_eq!(s.target_at(15.0), 100);
        // A zero-length stage is a spike: the next stage starts from its target at once.
        assert_eq!(s.target_at(30.0), 300);
        assert_eq!(s.target_at(34.9), 300);
        assert_eq!(s.target_at(40.0), 150);
        assert_eq!(s.target_at(45.0), 0);
        assert_eq!(s.peak(), 300);
        assert_eq!(s.seconds(), 45.0);
    }

    #[test]
    fn bad_stages_and_rates_are_refused_with_the_form_to_use() {
        for bad in ["30s", "x:5", "30s:-1", "30:5"] {
            let e = bad.parse::<Stage>().unwrap_err();
            assert!(e.contains("DURATION:CALLS"), "{e}");
        }
        let arrival = |rate, max| Arrival {
            rate,
            duration: Duration::from_secs(10),
            max,
        };
        assert!(Schedule::arrival(arrival(0.0, 10)).is_err());
        assert!(Schedule::arrival(arrival(f64::NAN, 10)).is_err());
        assert!(Schedule::arrival(arrival(2.0, 0)).is_err());
        assert!(Schedule::stages(vec!["0s:10".parse().unwrap()]).is_err());
        let spec: LoadSpec =
            serde_norway::from_str("stages: [{duration: 1m, target: 10}]").unwrap();
        assert_eq!(spec.schedule().unwrap().seconds(), 60.0);
        let e = serde_norway::from_str::<LoadSpec>("stages: [{duration: soon, target: 1}]")
            .unwrap_err()
            .to_string();
        assert!(e.contains("30s, 5m or 1h"), "{e}");
    }
}
