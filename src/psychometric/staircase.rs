//! The adaptive up-down staircase (Levitt 1971): a pass makes the next trial harder, a fail
//! easier, so the trials gather where the agent is in doubt.

use serde::{Deserialize, Serialize};

/// How many passes in a row move the level down (harder); one fail moves it up. The rule sets
/// the pass rate the staircase settles at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Rule {
    /// 1-down-1-up: 50 %.
    OneDown,
    /// 2-down-1-up: 70.7 %.
    TwoDown,
    /// 3-down-1-up: 79.4 %.
    ThreeDown,
}

impl Rule {
    /// The pass rate the rule converges on: p^n = 1/2.
    pub fn target(self) -> f64 {
        0.5f64.powf(1.0 / self.passes() as f64)
    }

    /// Passes in a row that make the next trial harder.
    pub fn passes(self) -> u32 {
        match self {
            Rule::OneDown => 1,
            Rule::TwoDown => 2,
            Rule::ThreeDown => 3,
        }
    }

    /// The rule for a target given in percent: 50, 70.7 or 79.4.
    pub fn for_percent(percent: f64) -> Option<Rule> {
        [Rule::OneDown, Rule::TwoDown, Rule::ThreeDown]
            .into_iter()
            .find(|r| (r.target() * 100.0 - percent).abs() < 0.1)
    }
}

/// How a staircase moves and when it stops.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Settings {
    pub rule: Rule,
    /// Step in dB until `coarse_reversals` reversals, then `fine_db`.
    pub coarse_db: f64,
    pub fine_db: f64,
    pub coarse_reversals: u32,
    /// A staircase ends after this many reversals.
    pub reversals: u32,
    /// The levels it never leaves: the SNRs worth trying.
    pub lowest_db: f64,
    pub highest_db: f64,
}

impl Default for Settings {
    /// Chosen on simulated agents (`cargo bench --bench threshold`): with two staircases and
    /// 40 calls, these put the 50 % threshold of a logistic agent (slope 0.3-1.5 /dB) within
    /// about ±1.5 dB wherever it lies in -5..30 dB.
    fn default() -> Self {
        Settings {
            rule: Rule::OneDown,
            coarse_db: 6.0,
            fine_db: 2.0,
            coarse_reversals: 2,
            reversals: 8,
            lowest_db: -10.0,
            highest_db: 40.0,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Direction {
    Down,
    Up,
}

/// One staircase: the level of its next trial, and what its trials so far did to it.
#[derive(Debug, Clone)]
pub struct Staircase {
    settings: Settings,
    level: f64,
    passes_in_a_row: u32,
    last_move: Option<Direction>,
    reversals: Vec<f64>,
    trials: Vec<(f64, bool)>,
}

impl Staircase {
    pub fn new(settings: Settings, start_db: f64) -> Staircase {
        Staircase {
            level: start_db.clamp(settings.lowest_db, settings.highest_db),
            settings,
            passes_in_a_row: 0,
            last_move: None,
            reversals: Vec::new(),
            trials: Vec::new(),
        }
    }

    /// The SNR of the next trial.
    pub fn level(&self) -> f64 {
        self.level
    }

    /// Reached its number of reversals.
    pub fn done(&self) -> bool {
        self.reversals.len() as u32 >= self.settings.reversals
    }

    /// The levels at which it turned.
    pub fn reversals(&self) -> &[f64] {
        &self.reversals
    }

    /// Every trial: its SNR and whether the call passed.
    pub fn trials(&self) -> &[(f64, bool)] {
        &self.trials
    }

    /// A trial at `level()` came out `passed`.
    pub fn record(&mut self, passed: bool) {
        self.trials.push((self.level, passed));
        let direction = if passed {
            self.passes_in_a_row += 1;
            if self.passes_in_a_row < self.settings.rule.passes() {
                return;
            }
            self.passes_in_a_row = 0;
            Direction::Down
        } else {
            self.passes_in_a_row = 0;
            Direction::Up
        };
        if self.last_move.is_some_and(|last| last != direction) {
            self.reversals.push(self.level);
        }
        self.last_move = Some(direction);
        let step = if (self.reversals.len() as u32) < self.settings.coarse_reversals {
            self.settings.coarse_db
        } else {
            self.settings.fine_db
        };
        let moved = match direction {
            Direction::Down => self.level - step,
            Direction::Up => self.level + step,
        };
        self.level = moved.clamp(self.settings.lowest_db, self.settings.highest_db);
    }
}

/// The levels at which a sequence of trial levels turned (a level repeated is no move).
pub fn reversals(levels: &[f64]) -> Vec<f64> {
    let mut turns = Vec::new();
    let mut last: Option<bool> = None;
    for (&from, &to) in levels.iter().zip(levels.iter().skip(1)) {
        if to == from {
            continue;
        }
        let up = to > from;
        if last.is_some_and(|l| l != up) {
            turns.push(from);
        }
        last = Some(up);
    }
    turns
}

/// The reversals of the coarse steps, which the classic estimate leaves out.
const COARSE: usize = 2;

/// The classic estimate, beside the fit as a check: the mean of each staircase's reversals after
/// its first two, an even number of them, the last; none before there are any.
pub fn reversal_mean(staircases: &[Vec<f64>]) -> Option<f64> {
    let mut levels = Vec::new();
    for turns in staircases {
        let fine = turns.get(COARSE..).unwrap_or_default();
        // An even number, the last: as many turns down as up.
        levels.extend(fine.iter().skip(fine.len() % 2));
    }
    (!levels.is_empty()).then(|| levels.iter().sum::<f64>() / levels.len() as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_hold_their_targets() {
        assert!((Rule::OneDown.target() - 0.5).abs() < 1e-9);
        assert!((Rule::TwoDown.target() - std::f64::consts::FRAC_1_SQRT_2).abs() < 1e-9);
        assert!((Rule::ThreeDown.target() - 0.7937).abs() < 1e-4);
        assert_eq!(Rule::for_percent(70.7), Some(Rule::TwoDown));
        assert_eq!(Rule::for_percent(79.4), Some(Rule::ThreeDown));
        assert_eq!(Rule::for_percent(60.0), None);
    }

    #[test]
    fn a_pass_goes_harder_a_fail_easier_and_turns_are_counted() {
        let mut s = Staircase::new(Settings::default(), 20.0);
        s.record(true);
        assert_eq!(s.level(), 14.0);
        s.record(true);
        assert_eq!(s.level(), 8.0);
        s.record(false); // turn 1 at 8
        assert_eq!(s.level(), 14.0);
        s.record(true); // turn 2 at 14: fine steps from here
        assert_eq!(s.level(), 12.0);
        assert_eq!(s.reversals(), &[8.0, 14.0]);
        assert_eq!(s.trials().len(), 4);
    }

    #[test]
    fn two_down_moves_down_only_after_two_passes_in_a_row() {
        let settings = Settings {
            rule: Rule::TwoDown,
            ..Settings::default()
        };
        let mut s = Staircase::new(settings, 10.0);
        s.record(true);
        assert_eq!(s.level(), 10.0);
        s.record(true);
        assert_eq!(s.level(), 4.0);
        s.record(true);
        s.record(false);
        assert_eq!(
            s.level(),
            10.0,
            "a fail resets the run of passes and goes up"
        );
    }

    #[test]
    fn levels_stay_in_range_and_a_staircase_stops_after_its_reversals() {
        let mut s = Staircase::new(Settings::default(), 38.0);
        s.record(false);
        assert_eq!(s.level(), 40.0);
        let mut i = 0;
        while !s.done() {
            s.record(i % 3 != 0);
            i += 1;
            assert!(i < 100);
        }
        assert!(s.trials().iter().all(|t| (-10.0..=40.0).contains(&t.0)));
        // The levels tried tell every turn but the last (whose next level is not tried yet).
        let mut levels: Vec<f64> = s.trials().iter().map(|t| t.0).collect();
        levels.push(s.level());
        assert_eq!(reversals(&levels), s.reversals());
        assert!(reversal_mean(&[s.reversals().to_vec()]).is_some());
    }
}
