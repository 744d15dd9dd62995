//! The live site, not only its code: what a site's target serves and what its database has
//! run (`status`), read through Moodle's own bootstrap and command line, and a generation
//! brought to it database and all (`apply`: test gate, backup, rehearsal on a throwaway
//! copy, maintenance, switch, upgrade, health check, and everything put back on failure).
//! Nothing here prints; the database's password is read from the site's config.php by PHP,
//! held in memory, and never said, stored or committed.
//!
//! Built on `mcb-realise` (the site's generations), `mcb-deploy` (releases and the switch),
//! `mcb-sitetest` (the rehearsal) and `mcb-database` (backup and restore); none of them
//! calls it.

mod apply;
mod backup;
mod error;
mod health;
mod journal;
mod moodle;
mod record;
mod status;

pub use apply::{Applied, ApplyRequest, ApplyWatch, Unwatched, apply, held_back};
pub use error::{ApplyError, ApplyFailure};
pub use journal::{JOURNAL, Journal, Phase};
pub use moodle::{ComponentState, SiteDatabase};
pub use record::{APPLY_NOTES, ApplyNote, ApplyOutcome, StepDone, recorded};
pub use status::{SiteStatus, status};
