//! Stalls of the async runtime itself: a task that should wake every 10 ms notes how late it
//! woke. A late wake means every task of the process waited as long (a starved CPU, or
//! something blocking a worker), which a call's send slip alone cannot tell from its own
//! socket. Each call reads the worst stall over its own span.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Duration;

use tokio::time::Instant;

const PERIOD: Duration = Duration::from_millis(10);
/// Seconds of history kept: calls longer than this read only their last hour.
const KEEP_S: usize = 3_600;

/// The worst wake lateness of each second since it started; shared by the calls of a run.
#[derive(Debug, Clone, Default)]
pub struct StallWatch {
    seconds: Arc<Mutex<VecDeque<(u64, f64)>>>,
    started: Arc<OnceLock<Instant>>,
}

impl StallWatch {
    pub fn new() -> StallWatch {
        StallWatch::default()
    }

    /// Watches the runtime this is called on from now, if not already: the first call of a
    /// run starts it; it ends when the last clone is dropped.
    pub fn begin(&self) {
        self.started.get_or_init(|| {
            let origin = Instant::now();
            tokio::spawn(run(Arc::downgrade(&self.seconds), origin));
            origin
        });
    }

    /// The longest the runtime stalled between two moments, ms (its 1 ms timer granularity
    /// included); `None` before the watch saw any of it.
    pub fn worst_between(&self, from: Instant, to: Instant) -> Option<f64> {
        let origin = *self.started.get()?;
        let second = |t: Instant| t.saturating_duration_since(origin).as_secs();
        let (from, to) = (second(from), second(to));
        let seconds = self.seconds.lock().unwrap_or_else(|e| e.into_inner());
        seconds
            .iter()
            .filter(|(s, _)| (from..=to).contains(s))
            .map(|&(_, ms)| ms)
            .reduce(f64::max)
    }
}

async fn run(seconds: Weak<Mutex<VecDeque<(u64, f64)>>>, origin: Instant) {
    let mut due = Instant::now() + PERIOD;
    loop {
        tokio::time::sleep_until(due).await;
        let now = Instant::now();
        let late_ms = now.saturating_duration_since(due).as_secs_f64() * 1000.0;
        let Some(seconds) = seconds.upgrade() else {
            return;
        };
        let second = now.saturating_duration_since(origin).as_secs();
        let mut seconds = seconds.lock().unwrap_or_else(|e| e.into_inner());
        match seconds.back_mut() {
            Some((s, worst)) if *s == second => *worst = worst.max(late_ms),
            _ => seconds.push_back((second, late_ms)),
        }
        if seconds.len() > KEEP_S {
            seconds.pop_front();
        }
        // A stall is counted once: the next wake is a period from now, not a burst of them.
        due = now + PERIOD;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn a_blocked_runtime_shows_as_a_stall_in_the_span_it_happened() {
        let watch = StallWatch::new();
        watch.begin();
        tokio::time::sleep(Duration::from_millis(100)).await;
        let before = Instant::now();
        assert!(watch
            .worst_between(before, before)
            .is_none_or(|ms| ms < 250.0));
        // Blocks the only worker, as a busy machine or a blocking call would.
        tokio::spawn(async { std::thread::sleep(Duration::from_millis(300)) })
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
        let worst = watch.worst_between(before, Instant::now());
        assert!(worst.is_some_and(|ms| ms >= 250.0), "{worst:?}");
    }
}
