//! The databases Moodle runs on, as mcb uses them: a throwaway PostgreSQL cluster (its
//! server a child of mcb, its directory held while the run lives, reaped when a killed run
//! left it) or a server the user names, and what is done with them — create a database,
//! dump one, restore a dump as the code it is.
//!
//! It runs PostgreSQL's own programs through `mcb-exec`; it knows nothing of sites,
//! generations or Moodle's tables.

pub mod postgres;

pub use postgres::{
    CLUSTER_PREFIX, DbUrl, PgError, Server, check_programs, installed_version,
    reap_abandoned_clusters, shown_db_url,
};
