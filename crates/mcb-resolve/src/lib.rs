//! Choosing plugin versions that fit a Moodle core and each other, and explaining, as a
//! short chain of facts, why none fits when that happens.
//!
//! Inputs are what the catalog found (candidate versions with their `version.php`) and the
//! core's facts; outputs are choices, an install order, warnings and problems. This crate
//! fetches nothing and reads no files.

mod check;
mod choose;
mod problem;

pub use check::{SelectedPlugin, SiteCheck, check_site};
pub use choose::{Chosen, Fit, Offer, choose, fit};
pub use problem::{Problem, Rule, Warning};
