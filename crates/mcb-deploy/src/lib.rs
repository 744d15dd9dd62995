//! Beyond one machine: `push` carries a site's generations (its branch, one tag per
//! generation, its test results) to any git remote; `deploy` lays a generation out on a
//! web server as `DIR/releases/<commit>` and switches `DIR/current` to it in one rename,
//! keeps the newest releases, and rolls back.
//!
//! It is built on `mcb-realise` (the site's generations, the one way a tree is laid out)
//! and runs git through `mcb-git`; it never runs a site's test, and the test runner never
//! calls it.

mod deploy;
mod error;
mod push;

pub use deploy::{
    DeployRequest, DeploySource, Deployed, KEEP_RELEASES, deploy, lock_deploy, pick_commit,
    prune_releases, rollback_deploy, served_release, stage_release, switch_release,
};
pub use error::{Absent, DeployError};
pub use push::{Pushed, push};
