//! The pipeline from a site file to a codebase: resolve (reusing the lock where it still
//! fits) → fetch into the store → compose the git tree → commit on the site's branch →
//! materialise a generation → switch the `result` link → write the lock.
//!
//! It orders the work and keeps its promises (a failed run changes neither the lock nor
//! the `result` link), and reports progress through [`Reporter`]; it never prints.

mod directory;
mod error;
mod lifecycle;
mod pipeline;
mod publish;
mod report;
mod sources;
mod upgrade;

pub use error::RealiseError;
pub use lifecycle::{
    GcOutcome, Reproduction, TreeDrift, VerifyOutcome, gc, reproduce, verify, verify_tree,
};
pub use pipeline::{Options, Realised, RealisedPlugin, realise};
pub use report::{Reporter, Silent, Stage};
pub use upgrade::{PluginReadiness, Readiness, UpgradeCheck, check_upgrade, plugin_info};
