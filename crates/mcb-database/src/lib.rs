//! The databases Moodle runs on, as mcb uses them: a throwaway PostgreSQL cluster or
//! MariaDB instance (its server a child of mcb, its directory held while the run lives,
//! reaped when a killed run left it) or a server the user names, and what is done with them
//! — create a database, dump one, restore a dump as the code it is.
//!
//! It runs the engines' own programs through `mcb-exec`; it knows nothing of sites,
//! generations or Moodle's tables.

pub mod error;
pub mod mariadb;
pub mod postgres;
pub mod server;
mod throwaway;
pub mod url;

pub use error::DbError;
pub use postgres::{CLUSTER_PREFIX, installed_version};
pub use server::{DbServer, DbTarget, Engine};
pub use throwaway::reap_abandoned_servers;
pub use url::{DbUrl, shown_db_url};
