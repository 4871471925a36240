//! What a load run looks like second by second, and the rules that stop it early.

use std::collections::VecDeque;

use serde::Serialize;

/// One second of a load run: `timeseries.jsonl` has one per line.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Second {
    /// Seconds since the run started (this row covers `t-1..t`).
    pub t: u64,
    /// Calls the schedule wanted up, mid-second.
    pub target: u32,
    /// Calls up at the end of the second.
    pub active: u32,
    pub started: u32,
    /// Calls whose agent answered the websocket.
    pub connected: u32,
    /// Calls that could not be set up or broke (unreachable agent, refused, protocol error).
    pub failed: u32,
    pub ended: u32,
    /// Arrivals turned away because `max` calls were up.
    pub refused: u32,
    /// Agent turns that started in this second, and their response latencies.
    pub answers: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency_p50_ms: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency_p95_ms: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency_p99_ms: Option<f64>,
}

/// Something that happened in a load run, as it happened.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Beat {
    Started,
    Connected,
    /// An agent turn started; its response latency when it answered the caller.
    Answered(Option<f64>),
    Failed,
    Ended,
    Refused,
}

/// Counts beats into seconds; keeps a window of recent seconds for the live line and the
/// abort rules.
#[derive(Debug, Default)]
pub struct Tally {
    current: Second,
    latencies: Vec<f64>,
    /// Recent seconds' latencies, newest last.
    window: VecDeque<Vec<f64>>,
    pub totals: Second,
    pub rows: Vec<Second>,
}

/// Seconds the live line's and the latency rules' percentiles cover.
pub const WINDOW_S: usize = 10;

impl Tally {
    /// Every beat sent so far.
    pub fn hear(&mut self, beats: &mut tokio::sync::mpsc::UnboundedReceiver<Beat>) {
        while let Ok(beat) = beats.try_recv() {
            self.beat(beat);
        }
    }

    pub fn beat(&mut self, beat: Beat) {
        for s in [&mut self.current, &mut self.totals] {
            match beat {
                Beat::Started => s.started += 1,
                Beat::Connected => s.connected += 1,
                Beat::Answered(_) => s.answers += 1,
                Beat::Failed => s.failed += 1,
                Beat::Ended => s.ended += 1,
                Beat::Refused => s.refused += 1,
            }
        }
        if let Beat::Answered(Some(ms)) = beat {
            self.latencies.push(ms);
        }
    }

    /// Closes second `t` with the concurrency at its end; returns its row.
    pub fn close(&mut self, t: u64, target: u32, active: u32) -> Second {
        let latencies = std::mem::take(&mut self.latencies);
        let mut row = std::mem::take(&mut self.current);
        row.t = t;
        row.target = target;
        row.active = active;
        [row.latency_p50_ms, row.latency_p95_ms, row.latency_p99_ms] =
            [50.0, 95.0, 99.0].map(|p| percentile(&latencies, p));
        self.window.push_back(latencies);
        if self.window.len() > WINDOW_S {
            self.window.pop_front();
        }
        self.rows.push(row.clone());
        row
    }

    /// Latency percentile `p` over the window.
    pub fn recent_latency(&self, p: f64) -> Option<f64> {
        let all: Vec<f64> = self.window.iter().flatten().copied().collect();
        percentile(&all, p)
    }

    /// The share of ended calls that failed, 0-100.
    pub fn error_rate(&self) -> f64 {
        let t = &self.totals;
        if t.ended == 0 {
            0.0
        } else {
            100.0 * t.failed as f64 / t.ended as f64
        }
    }

    /// The one line a terminal shows each second.
    pub fn live_line(&self, row: &Second) -> String {
        let ms = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.0}"));
        format!(
            "{:>4}s  up {:>4}/{:<4}  started {:>5}  connected {:>5}  failed {:>4}  ended {:>5}  \
             latency p50/p95/p99 {}/{}/{} ms (last {WINDOW_S} s)",
            row.t,
            row.active,
            row.target,
            self.totals.started,
            self.totals.connected,
            self.totals.failed,
            self.totals.ended,
            ms(self.recent_latency(50.0)),
            ms(self.recent_latency(95.0)),
            ms(self.recent_latency(99.0)),
        )
    }
}

/// The `p`th percentile (nearest rank) of `values`.
fn percentile(values: &[f64], p: f64) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted.get(rank.clamp(1, sorted.len()) - 1).copied()
}

/// What an abort rule watches.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Watch {
    /// Failed calls per ended call, in percent, over the run so far.
    ErrorRate,
    /// Response latency percentile over the last [`WINDOW_S`] seconds.
    Latency(f64),
}

/// Stops a load run early: `error_rate > 5%`, `latency_p95_ms > 2000`.
#[derive(Debug, Clone, PartialEq)]
pub struct AbortRule {
    pub text: String,
    pub watch: Watch,
    pub above: bool,
    pub value: f64,
}

/// Calls that must have ended before the error rate can stop a run: one early failure is not
/// a rate.
pub const MIN_ENDED: u32 = 10;

impl std::str::FromStr for AbortRule {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let bad = |why: &str| {
            format!(
                "--abort-on {text:?}: {why}; write NAME > VALUE or NAME < VALUE with NAME one of \
                 error_rate (percent), latency_p50_ms, latency_p95_ms, latency_p99_ms"
            )
        };
        let (name, above, value) = if let Some((n, v)) = text.split_once('>') {
            (n, true, v)
        } else if let Some((n, v)) = text.split_once('<') {
            (n, false, v)
        } else {
            return Err(bad("no > or <"));
        };
        let watch = match name.trim() {
            "error_rate" => Watch::ErrorRate,
            "latency_p50_ms" => Watch::Latency(50.0),
            "latency_p95_ms" => Watch::Latency(95.0),
            "latency_p99_ms" => Watch::Latency(99.0),
            _ => return Err(bad("unknown name")),
        };
        let value: f64 = value
            .trim()
            .trim_end_matches('%')
            .trim()
            .parse()
            .map_err(|_| bad("the value is not a number"))?;
        if !value.is_finite() {
            return Err(bad("the value is not a number"));
        }
        Ok(AbortRule {
            text: text.trim().to_string(),
            watch,
            above,
            value,
        })
    }
}

impl AbortRule {
    /// Why the run must stop now, if it must.
    pub fn fired(&self, tally: &Tally) -> Option<String> {
        let now = match self.watch {
            Watch::ErrorRate if tally.totals.ended < MIN_ENDED => return None,
            Watch::ErrorRate => tally.error_rate(),
            Watch::Latency(p) => tally.recent_latency(p)?,
        };
        let fired = if self.above {
            now > self.value
        } else {
            now < self.value
        };
        fired.then(|| format!("{} (it was {now:.1})", self.text))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_count_beats_and_latency_percentiles() {
        let mut tally = Tally::default();
        for ms in 1..=100 {
            tally.beat(Beat::Started);
            tally.beat(Beat::Answered(Some(ms as f64)));
        }
        tally.beat(Beat::Answered(None));
        let row = tally.close(1, 120, 100);
        assert_eq!(
            (row.started, row.answers, row.active, row.target),
            (100, 101, 100, 120)
        );
        assert_eq!(row.latency_p50_ms, Some(50.0));
        assert_eq!(row.latency_p95_ms, Some(95.0));
        assert_eq!(row.latency_p99_ms, Some(99.0));
        let quiet = tally.close(2, 120, 100);
        assert_eq!(quiet.started, 0);
        assert_eq!(quiet.latency_p50_ms, None);
        // The window still remembers the busy second.
        assert_eq!(tally.recent_latency(50.0), Some(50.0));
        assert_eq!(tally.totals.started, 100);
    }

    #[test]
    fn abort_rules_parse_and_fire() {
        let rule: AbortRule = "error_rate > 5%".parse().unwrap();
        let mut tally = Tally::default();
        for _ in 0..9 {
            tally.beat(Beat::Ended);
            tally.beat(Beat::Failed);
        }
        assert_eq!(rule.fired(&tally), None, "too few calls yet");
        tally.beat(Beat::Ended);
        assert!(rule.fired(&tally).unwrap().contains("it was 90.0"));
        let slow: AbortRule = "latency_p95_ms > 500".parse().unwrap();
        assert_eq!(slow.fired(&tally), None, "no latency yet");
        tally.beat(Beat::Answered(Some(800.0)));
        tally.close(1, 0, 0);
        assert!(slow.fired(&tally).is_some());
        for bad in ["error_rate = 5", "speed > 5", "error_rate > lots"] {
            let e = bad.parse::<AbortRule>().unwrap_err();
            assert!(e.contains("NAME > VALUE"), "{e}");
        }
    }
}
