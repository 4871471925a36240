//! The clock of a call's frames: one tick every 20 ms from its first frame, late ticks caught
//! up at once (the number of frames sent tracks the clock).
//!
//! Alone, a call keeps time with tokio's timer, which wakes a parked worker on whole
//! milliseconds: every frame leaves up to a millisecond after its moment, a different amount
//! each time, and a thousand calls each re-arming a timer 50 times a second contend for the
//! timer wheel's lock. The calls of a run share a [`Metronome`] instead: on Linux one kernel
//! timer (timerfd) per millisecond slot of the period, which wakes its reader on the
//! microsecond, and the calls whose phase falls in the slot tick with it. A thousand calls
//! cost twenty timers, not a thousand (measured with `cargo bench --bench paced`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

use crate::audio::FRAME_MS;

const PERIOD: Duration = Duration::from_millis(FRAME_MS as u64);
const SLOT: Duration = Duration::from_micros(1000);

/// Shared frame clocks for the calls of one run; clone it into each call's options.
#[derive(Debug, Clone)]
pub struct Metronome {
    epoch: Instant,
    /// Each slot's tick count, kept by a task reading its timer.
    slots: Arc<Mutex<HashMap<u32, watch::Receiver<u64>>>>,
}

impl Default for Metronome {
    fn default() -> Self {
        Metronome::new()
    }
}

impl Metronome {
    /// A slot's timer starts with the first call in it, on that call's runtime.
    pub fn new() -> Metronome {
        Metronome {
            epoch: Instant::now(),
            slots: Arc::default(),
        }
    }

    /// The slot nearest `phase` into the period: its next tick after now (its index and
    /// moment), and the slot's count of the last tick it gave.
    fn join(&self, phase: Duration) -> Option<(u64, Instant, watch::Receiver<u64>)> {
        let slots_in_period = (PERIOD.as_micros() / SLOT.as_micros()) as u32;
        let slot = (phase.as_micros() / SLOT.as_micros()) as u32 % slots_in_period;
        // Tick k of the slot is due at base + k periods (k from 1).
        let base = self.epoch + SLOT * slot;
        let next = |after: Instant| {
            after.saturating_duration_since(base).as_nanos() / PERIOD.as_nanos() + 1
        };
        let k = next(Instant::now()) as u64;
        let moment = base + PERIOD * k as u32;
        let mut slots = self.slots.lock().ok()?;
        let count = match slots.get(&slot) {
            Some(count) if count.has_changed().is_ok() => count.clone(),
            // The slot's timer starts at this call's first tick.
            _ => {
                let count = beat(k, moment)?;
                slots.insert(slot, count.clone());
                count
            }
        };
        Some((k, moment, count))
    }
}

/// A slot's timer, its tick `first` due at `at`, read by a task that publishes the index of
/// the last tick given.
#[cfg(target_os = "linux")]
fn beat(first: u64, at: Instant) -> Option<watch::Receiver<u64>> {
    use rustix::time::{
        timerfd_create, timerfd_settime, Itimerspec, TimerfdClockId, TimerfdFlags,
        TimerfdTimerFlags, Timespec,
    };
    let spec = |d: Duration| Timespec {
        tv_sec: d.as_secs() as i64,
        tv_nsec: d.subsec_nanos().into(),
    };
    let fd = timerfd_create(
        TimerfdClockId::Monotonic,
        TimerfdFlags::NONBLOCK | TimerfdFlags::CLOEXEC,
    )
    .ok()?;
    // Relative to now; a zero first expiry would disarm the timer.
    let wait = at
        .saturating_duration_since(Instant::now())
        .max(Duration::from_nanos(1));
    timerfd_settime(
        &fd,
        TimerfdTimerFlags::empty(),
        &Itimerspec {
            it_interval: spec(PERIOD),
            it_value: spec(wait),
        },
    )
    .ok()?;
    // SAFETY: the descriptor is owned by the AsyncFd for its whole life.
    let fd = unsafe {
        tokio::io::unix::AsyncFd::register_with_interest(fd, tokio::io::Interest::READABLE)
    }
    .ok()?;
    let (tx, rx) = watch::channel(first - 1);
    tokio::spawn(async move {
        // Ends when no call can listen any more, or the timer fails.
        while !tx.is_closed() {
            let Ok(mut ready) = fd.readable().await else {
                return;
            };
            let mut expirations = [0u8; 8];
            match ready.try_io(|fd| rustix::io::read(fd, &mut expirations).map_err(Into::into)) {
                Ok(Ok(8)) => {
                    let n = u64::from_ne_bytes(expirations);
                    tx.send_modify(|last| *last += n);
                }
                Ok(_) => return,
                Err(_would_block) => {}
            }
        }
    });
    Some(rx)
}

#[cfg(not(target_os = "linux"))]
fn beat(_first: u64, _at: Instant) -> Option<watch::Receiver<u64>> {
    None
}

/// One call's frame clock.
pub struct Pacer {
    clock: Clock,
}

enum Clock {
    Timer(tokio::time::Interval),
    /// A metronome slot's last tick, and the last this call has taken.
    Beat(watch::Receiver<u64>, u64),
}

impl Pacer {
    /// Ticks from the metronome's slot for `phase`, from the slot's next tick; or on its own
    /// timer from `began` + `phase`. Returns the first tick's moment with the pacer.
    pub fn new(began: Instant, phase: Duration, metronome: Option<&Metronome>) -> (Pacer, Instant) {
        let (clock, first) = match metronome.and_then(|m| m.join(phase)) {
            Some((k, moment, count)) => (Clock::Beat(count, k - 1), moment),
            None => (own_timer(began + phase), began + phase),
        };
        (Pacer { clock }, first)
    }

    pub async fn tick(&mut self) {
        match &mut self.clock {
            Clock::Timer(ticker) => {
                ticker.tick().await;
            }
            Clock::Beat(count, taken) => {
                while *count.borrow_and_update() <= *taken {
                    if count.changed().await.is_err() {
                        // The slot's timer failed: this call goes on tokio's timer.
                        self.clock = own_timer(Instant::now());
                        return;
                    }
                }
                *taken += 1;
            }
        }
    }
}

/// tokio's timer from `first`; late ticks burst, so frames sent track the clock.
fn own_timer(first: Instant) -> Clock {
    let mut ticker = tokio::time::interval_at(first, PERIOD);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    Clock::Timer(ticker)
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use futures_util::FutureExt;

    use super::*;

    #[tokio::test]
    async fn calls_whose_phases_share_a_slot_share_its_timer() {
        let metronome = Metronome::new();
        let (_, a, _) = metronome.join(Duration::from_micros(300)).unwrap();
        let (_, b, _) = metronome.join(Duration::from_micros(700)).unwrap();
        let (_, c, _) = metronome.join(Duration::from_micros(5_300)).unwrap();
        assert_eq!(metronome.slots.lock().unwrap().len(), 2);
        // A first frame is its slot's next tick: within a period, on the slot's offset.
        let offset = |at: Instant| at.duration_since(metronome.epoch).as_micros() % 20_000;
        assert_eq!((offset(a), offset(b), offset(c)), (0, 0, 5_000));
        let now = Instant::now();
        assert!(a > now - PERIOD && a <= now + PERIOD, "{a:?} vs {now:?}");
    }

    #[tokio::test]
    async fn a_call_that_fell_behind_takes_every_tick_it_missed_and_no_more() {
        let metronome = Metronome::new();
        let (mut pacer, _) = Pacer::new(Instant::now(), Duration::ZERO, Some(&metronome));
        assert!(matches!(pacer.clock, Clock::Beat(..)));
        pacer.tick().await;
        let since = Instant::now();
        tokio::time::sleep(Duration::from_millis(110)).await;
        // The slot's reader runs at the next yield; let it count the expirations first.
        tokio::task::yield_now().await;
        let mut caught_up = 0;
        while pacer.tick().now_or_never().is_some() {
            caught_up += 1;
        }
        let due = since.elapsed().as_millis() / 20;
        assert!(
            caught_up >= 5 && caught_up as u128 <= due + 1,
            "{caught_up} ticks at once, {due} due"
        );
    }
}
