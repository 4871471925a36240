//! How much noise an agent takes, measured as hearing science measures a listener: an adaptive
//! staircase over the SNR (`staircase`), and a psychometric function fitted to every trial
//! (`fit`), whose threshold is the SNR at which the agent does its task a target share of the
//! time.
//!
//! ```
//! use voicesim::psychometric::{fit, Estimate, Settings, Staircase};
//!
//! // An agent that does its task whenever the noise is 8 dB or more below the speech.
//! let mut stairs = Staircase::new(Settings::default(), 30.0);
//! while !stairs.done() {
//!     let passed = stairs.level() >= 8.0;
//!     stairs.record(passed);
//! }
//! let Estimate::Found(found) = fit(stairs.trials(), 0.5) else { panic!() };
//! assert!((found.threshold_db - 7.0).abs() <= 1.0);
//! ```

mod fit;
mod staircase;

pub use fit::{fit, Estimate, Fit};
pub use staircase::{reversal_mean, reversals, Rule, Settings, Staircase};
