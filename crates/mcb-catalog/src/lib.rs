//! Where source content and versions come from, and getting it into the store once: zip
//! archives (local or over HTTP), local directories, upstream git repositories (fetched
//! through `mcb-git`, their refs cached), plugin indexes (the plugins directory's list), the
//! HTTP client every download goes through (User-Agent, per-host limit, retries, token
//! scoping, time and size limits), the limits themselves, and core's `vendor/` built by
//! the `composer` program from dists checked here.
//!
//! The catalog reads, checks and stores what it is given; it does not choose among
//! versions (that is `mcb-resolve`) nor decide what a site contains.

pub mod archive;
pub mod composer;
pub mod directory;
pub mod http;
pub mod index;
pub mod limits;
pub mod localdir;
pub mod scan;
pub mod sources;
pub mod stage;
pub mod tuf;
pub mod vendor;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;

pub use archive::{ZipSource, unpack_zip};
pub use composer::{
    Advisory, AdvisoryFlag, ComposerPackage, PACKAGIST, advisories, package_versions,
};
pub use directory::{
    CachePolicy, DEFAULT_DIRECTORY, DirectoryVersion, PluginIndex, PluginRecord, Pluglist,
    check_md5,
};
pub use http::{Fetched, Http, HttpError};
pub use index::{IndexAnswer, LazyIndex};
pub use limits::{HttpLimits, Limits, LimitsError};
pub use localdir::{unpack_dir, unpack_dir_except};
pub use scan::Scanner;
pub use sources::{SourceError, SourceFailure, Sources, StoredLinks, StoredSource};
pub use stage::{Staged, stage_archive};
pub use vendor::StoredVendor;

/// Watches transfers (git fetches, downloads) while they run, for progress.
pub trait TransferWatch: Sync {
    /// A transfer starts: `label` says what and from where; `bytes` counts what has
    /// arrived so far, until the transfer ends.
    fn transfer(&self, _label: &str, _bytes: Arc<AtomicUsize>) {}
    /// A package came from a binary cache: `objects` files of `bytes` were downloaded.
    fn substituted(&self, _component: &str, _cache: &str, _objects: usize, _bytes: u64) {}
    /// A binary cache had a package and it was refused: `why`; upstream is asked instead.
    fn substitute_refused(&self, _component: &str, _why: &str) {}
}

/// Watches nothing.
pub struct NoWatch;

impl TransferWatch for NoWatch {}

#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("zip {label}: {message}")]
    Zip { label: String, message: String },
    #[error("{}: {message}", path.display())]
    Dir { path: PathBuf, message: String },
    #[error(transparent)]
    Http(#[from] HttpError),
    #[error("plugins directory {url}: {message}")]
    Directory { url: String, message: String },
    #[error("composer repository {location}: {message}")]
    Index { location: String, message: String },
    #[error(transparent)]
    Store(#[from] mcb_store::StoreError),
    #[error("cannot read {}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}
