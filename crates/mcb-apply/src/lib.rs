//! The live site, not only its code: what a site's target serves and what its database has
//! run (`status`), read through Moodle's own bootstrap and command line. Nothing here
//! prints; the database's password is read from the site's config.php by PHP, held in
//! memory, and never said, stored or committed.
//!
//! Built on `mcb-realise` (the site's generations, the drift of a served tree); it never
//! calls the test runner or deploy.

mod error;
mod moodle;
mod status;

pub use error::ApplyError;
pub use moodle::{ComponentState, SiteDatabase};
pub use status::{SiteStatus, status};
