//! The site file (`site.ron`, the desired state) and the lock (`site.lock`, the resolved
//! state): their types, parsing, validation and positioned errors.
//!
//! Everything here happens before any fetch: a bad site file is rejected with its file,
//! line and column (RON syntax), or the component and the rule it breaks. This crate never
//! touches the network or the store.

pub mod composer;
pub mod edit;
mod error;
mod lock;
mod policy;
mod site;
mod store_config;
mod target;

pub use error::ConfigError;
pub use lock::{
    LOCK_FORMAT, Lock, LockedDist, LockedMoodle, LockedPlugin, LockedSource, LockedVendor,
};
pub use policy::{Policy, Refusal};
pub use site::{
    CampConfig, DEFAULT_MOODLE_GIT, Location, MoodleRequest, PluginRequest, SiteFile, SourceSpec,
    normalize,
};
pub use store_config::{STORE_CONFIG_FILE, StoreConfig};
pub use target::{Backups, DEFAULT_BACKUPS_KEPT, Health, Target};
