//! Where source content and versions come from: zip archives (local or over HTTP), local
//! directories, upstream git repositories (through `mcb-git`), and the HTTP client every
//! download goes through (User-Agent, per-host limit, retries, token scoping).
//!
//! The catalog reads and checks what it is given; it does not choose among versions.

pub mod archive;
pub mod directory;
pub mod http;
pub mod localdir;

use std::path::PathBuf;

pub use archive::{ZipSource, read_zip};
pub use directory::{
    CachePolicy, DEFAULT_DIRECTORY, DirectoryVersion, PluginIndex, PluginRecord, Pluglist,
    check_md5,
};
pub use http::{Fetched, Http, HttpError};
pub use localdir::read_dir;

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
    #[error(transparent)]
    Store(#[from] mcb_store::StoreError),
    #[error("cannot read {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Reads a zip location: a local file or an `http(s)://` URL.
pub fn fetch_bytes(http: &Http, location: &mcb_config::Location) -> Result<Vec<u8>, CatalogError> {
    match location {
        mcb_config::Location::Path(p) => std::fs::read(p).map_err(|source| CatalogError::Io {
            path: p.clone(),
            source,
        }),
        mcb_config::Location::Url(u) => Ok(http.get_bytes(u)?),
    }
}

/// Normalises a relative `/`-path, refusing one that leaves its root.
pub(crate) fn inside_root(path: &str) -> Option<String> {
    let mut parts: Vec<&str> = Vec::new();
    for c in path.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            other => parts.push(other),
        }
    }
    Some(parts.join("/"))
}

/// Does a symlink at `link_path` pointing at `target` stay inside the source root?
pub(crate) fn link_stays_inside(link_path: &str, target: &str) -> bool {
    if target.starts_with('/') || target.contains('\\') {
        return false;
    }
    let parent = link_path.rsplit_once('/').map(|(p, _)| p).unwrap_or("");
    inside_root(&format!("{parent}/{target}")).is_some()
}
