//! The last guard: a panic (a bug in voicesim, or in a crate under it) caught where one call,
//! or one command, runs, and turned into a plain value with its message and source location,
//! so one call's surprise never takes a whole run down.
//!
//! ```
//! let caught = voicesim::guard::catch(|| -> u32 { panic!("boom") }).unwrap_err();
//! assert_eq!(caught.message, "boom");
//! assert!(caught.location.contains(".rs:"));
//! ```
//!
//! The location comes from a panic hook, which is process-wide by nature: the one global this
//! module keeps. It records each panic for the thread it happens on; the guard on that thread
//! picks it up. A panic caught by a guard prints nothing (the call's result carries it) unless
//! `RUST_BACKTRACE` is set; any other panic goes to the hook that was there before.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::panic::{self, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::Once;
use std::task::{Context, Poll};

use serde::{Deserialize, Serialize};

/// A caught panic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Panic {
    pub message: String,
    /// `file:line:column` of the panic.
    pub location: String,
}

impl std::fmt::Display for Panic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (at {})", self.message, self.location)
    }
}

thread_local! {
    /// The last panic on this thread, as the hook saw it.
    static LAST: RefCell<Option<Panic>> = const { RefCell::new(None) };
    /// How many guards are running on this thread.
    static GUARDED: Cell<u32> = const { Cell::new(0) };
}

fn install_hook() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let rust_hook = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            let message = info
                .payload()
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| info.payload().downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a panic without a message".into());
            let location = info
                .location()
                .map(|l| format!("{}:{}:{}", l.file(), l.line(), l.column()))
                .unwrap_or_else(|| "an unknown place".into());
            if GUARDED.with(Cell::get) == 0 {
                return rust_hook(info);
            }
            // Caught: the result carries it. The hook before ours may abort (a fuzzer's does),
            // so a backtrace, when asked for, is printed here.
            if std::env::var_os("RUST_BACKTRACE").is_some_and(|v| v != "0") {
                let trace = std::backtrace::Backtrace::force_capture();
                eprintln!("caught a panic at {location}: {message}\n{trace}");
            }
            LAST.with(|last| *last.borrow_mut() = Some(Panic { message, location }));
        }));
    });
}

/// Runs `f`; a panic inside it comes back as `Err`.
pub fn catch<T>(f: impl FnOnce() -> T) -> Result<T, Panic> {
    install_hook();
    GUARDED.with(|g| g.set(g.get() + 1));
    let result = panic::catch_unwind(AssertUnwindSafe(f));
    GUARDED.with(|g| g.set(g.get().saturating_sub(1)));
    result.map_err(|_| {
        LAST.with(|last| last.borrow_mut().take())
            .unwrap_or_else(|| Panic {
                message: "a panic the hook did not see".into(),
                location: "an unknown place".into(),
            })
    })
}

/// Runs a future; a panic while it is polled comes back as `Err`. Tasks it spawns need their
/// own guard: they are polled elsewhere.
pub async fn catch_async<F: Future>(future: F) -> Result<F::Output, Panic> {
    Guarded {
        future: Some(Box::pin(future)),
    }
    .await
}

struct Guarded<F> {
    /// `None` once it panicked: a future that panicked is never polled again.
    future: Option<Pin<Box<F>>>,
}

impl<F: Future> Future for Guarded<F> {
    type Output = Result<F::Output, Panic>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let Some(future) = this.future.as_mut() else {
            return Poll::Ready(Err(Panic {
                message: "polled again after it panicked".into(),
                location: "voicesim::guard".into(),
            }));
        };
        match catch(|| future.as_mut().poll(cx)) {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(output)) => Poll::Ready(Ok(output)),
            Err(panic) => {
                this.future = None;
                Poll::Ready(Err(panic))
            }
        }
    }
}

/// Runs blocking work (a speech engine, an LLM request) on tokio's blocking pool, guarded.
pub async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, Panic> {
    match tokio::task::spawn_blocking(move || catch(f)).await {
        Ok(result) => result,
        // Not a panic (those are caught inside): the runtime is shutting down.
        Err(e) => Err(Panic {
            message: format!("the blocking task stopped: {e}"),
            location: "tokio's blocking pool".into(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_is_caught_with_its_message_and_place() {
        let caught = catch(|| -> () { panic!("deliberate {}", 42) }).unwrap_err();
        assert_eq!(caught.message, "deliberate 42");
        assert!(caught.location.starts_with("src/guard.rs:"), "{caught}");
        assert_eq!(catch(|| 7), Ok(7));
    }

    #[tokio::test]
    async fn a_panicking_future_and_blocking_task_are_caught() {
        let caught = catch_async(async {
            tokio::task::yield_now().await;
            let v: Vec<u8> = Vec::new();
            v.get(3)
                .copied()
                .unwrap_or_else(|| panic!("index 3 of nothing"))
        })
        .await
        .unwrap_err();
        assert_eq!(caught.message, "index 3 of nothing");
        let caught = blocking(|| -> u8 { panic!("in the pool") })
            .await
            .unwrap_err();
        assert_eq!(caught.message, "in the pool");
        assert_eq!(blocking(|| 5).await, Ok(5));
    }
}
