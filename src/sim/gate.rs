//! How many calls of a run go at once: a fixed number, or (`--parallel auto`) as many as the
//! machine keeps time with. Starting fewer calls is better than letting running calls go late:
//! a late caller tests something else than the suite meant.
//!
//! ```
//! use voicesim::sim::gate::Gate;
//!
//! let gate = Gate::auto(8);
//! assert_eq!(gate.level(), 1);
//! gate.ended(true); // a call on time: one more at once after a round of them
//! assert_eq!(gate.level(), 2);
//! gate.ended(false); // one late: half as many
//! assert_eq!(gate.level(), 1);
//! ```

use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::Notify;

use crate::judge::Metrics;

/// An answer later than this for its persona's reaction time counts as late for `auto`: well
/// before the call's timing stops being trusted ([`crate::judge::ANSWER_LATE_MS`]).
pub const AUTO_LATE_MS: f64 = 250.0;

/// Shared by all the calls of a run.
#[derive(Debug, Clone)]
pub struct Gate {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    auto: bool,
    max: usize,
    state: Mutex<State>,
    opened: Notify,
}

#[derive(Debug)]
struct State {
    level: usize,
    running: usize,
    /// Calls on time since the level last rose, in rounds of `level`.
    credit: usize,
    /// The most calls at once that all ended on time.
    held: usize,
}

impl Gate {
    /// Always `n` at once.
    pub fn fixed(n: usize) -> Gate {
        Gate::new(false, n.max(1), n.max(1))
    }

    /// From one at a time up to `max`: one more after a round of calls that all kept time,
    /// half as many after a call that did not.
    pub fn auto(max: usize) -> Gate {
        Gate::new(true, 1, max.max(1))
    }

    fn new(auto: bool, level: usize, max: usize) -> Gate {
        Gate {
            inner: Arc::new(Inner {
                auto,
                max,
                state: Mutex::new(State {
                    level,
                    running: 0,
                    credit: 0,
                    held: 0,
                }),
                opened: Notify::new(),
            }),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // The counts are whole whatever panicked while holding them.
        self.inner.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The most calls that can ever go at once.
    pub fn max(&self) -> usize {
        self.inner.max
    }

    pub fn is_auto(&self) -> bool {
        self.inner.auto
    }

    /// How many go at once now.
    pub fn level(&self) -> usize {
        self.state().level
    }

    /// The most calls at once that all kept time (for `auto`).
    pub fn held(&self) -> usize {
        self.state().held
    }

    /// Waits for a place; the call holds it until [`Gate::ended`].
    pub async fn enter(&self) {
        loop {
            let opened = self.inner.opened.notified();
            {
                let mut s = self.state();
                if s.running < s.level {
                    s.running += 1;
                    return;
                }
            }
            opened.await;
        }
    }

    /// A call ended; `on_time`: voicesim kept its timing in it.
    pub fn ended(&self, on_time: bool) {
        {
            let mut s = self.state();
            s.running = s.running.saturating_sub(1);
            if self.inner.auto {
                if on_time {
                    s.held = s.held.max(s.level);
                    s.credit += 1;
                    if s.credit >= s.level {
                        s.credit = 0;
                        s.level = (s.level + 1).min(self.inner.max);
                    }
                } else {
                    s.credit = 0;
                    s.level = (s.level / 2).max(1);
                }
            }
        }
        self.inner.opened.notify_waiters();
    }

    /// Whether a call's figures say voicesim kept time in it, for `auto`.
    pub fn kept_time(metrics: &Metrics) -> bool {
        metrics.harness_late().is_none()
            && metrics
                .reaction_late_max_ms
                .is_none_or(|ms| ms <= AUTO_LATE_MS)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_climbs_a_round_at_a_time_halves_on_a_late_call_and_stays_in_bounds() {
        let gate = Gate::auto(4);
        let mut levels = Vec::new();
        for on_time in [
            true, true, true, true, true, true, true, true, true, true, false, true,
        ] {
            gate.ended(on_time);
            levels.push(gate.level());
        }
        assert_eq!(levels, [2, 2, 3, 3, 3, 4, 4, 4, 4, 4, 2, 2]);
        assert_eq!(gate.held(), 4);
        let fixed = Gate::fixed(3);
        fixed.ended(false);
        assert_eq!(fixed.level(), 3, "a fixed level never moves");
    }

    #[tokio::test]
    async fn no_more_enter_than_the_level_and_one_waits_for_a_place() {
        let gate = Gate::fixed(2);
        gate.enter().await;
        gate.enter().await;
        let third = tokio::spawn({
            let gate = gate.clone();
            async move { gate.enter().await }
        });
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        assert!(!third.is_finished(), "a third waits");
        gate.ended(true);
        third.await.unwrap();
    }
}
