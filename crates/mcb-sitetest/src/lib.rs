//! `mcb test`: a site's generation proven with Moodle's own command line before it is
//! served — lint what changed, install or upgrade from the generation the site runs into a
//! throwaway database, check the schema — and the result recorded on the generation's
//! commit.
//!
//! It is built on `mcb-realise` (the site, its generations, their records) and
//! `mcb-database` (the throwaway cluster); it never deploys, and deploy never calls it.

mod error;
mod run;

pub use error::TestError;
pub use mcb_database::{DbTarget, Engine};
pub use run::{StepResult, TestPlan, TestReport, reap_abandoned, test_site};
