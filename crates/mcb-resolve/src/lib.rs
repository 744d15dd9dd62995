//! Choosing plugin versions that fit a Moodle core and each other, and explaining, as a
//! short chain of facts, why none fits when that happens.
//!
//! Inputs are what sources offer (versions, with their `version.php` or a function that
//! reads it on demand) and the core's facts; outputs are choices with the reason for each,
//! an install order, warnings and problems. This crate fetches nothing and reads no files.

mod candidates;
mod check;
mod problem;
mod solve;

pub use candidates::{
    Candidates, Fit, Offer, Policy, Slot, Standing, Tier, describe, fit, pin_build,
};
pub use check::{SelectedPlugin, SiteCheck, check_site};
pub use problem::{Problem, Rule, Warning};
pub use solve::{Package, Solution, Solved, SourceFailure, Universe, solve};
