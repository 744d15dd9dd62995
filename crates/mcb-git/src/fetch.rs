//! Fetching upstream repositories into the store's repository, each under its own ref
//! namespace `refs/mcb/src/<key>/` (heads, tags and the remote's HEAD), and reading those
//! refs back without the network.

use std::collections::BTreeMap;
use std::sync::atomic::AtomicBool;

use gix::remote::Direction;

use crate::{Context, GitError, GitStore};

/// The namespace key of an upstream URL or path: stable, short, filesystem-safe.
pub fn source_key(url: &str) -> String {
    blake3::hash(url.trim_end_matches('/').as_bytes()).to_hex()[..16].to_string()
}

/// An upstream's refs as last fetched: names without their `refs/heads/` or `refs/tags/`
/// prefix, each peeled to the commit it names.
#[derive(Debug, Clone, Default)]
pub struct RemoteRefs {
    pub heads: BTreeMap<String, String>,
    pub tags: BTreeMap<String, String>,
    /// The commit the remote's HEAD (default branch) pointed at.
    pub head: Option<String>,
}

impl RemoteRefs {
    /// Resolves a tag, branch or (possibly abbreviated) commit named by a site file.
    /// Returns the name to record and the commit.
    pub fn resolve(&self, git: &GitStore, reference: &str) -> Option<(String, String)> {
        if let Some(c) = self.tags.get(reference) {
            return Some((reference.to_string(), c.clone()));
        }
        if let Some(c) = self.heads.get(reference) {
            return Some((reference.to_string(), c.clone()));
        }
        if reference.len() >= 4 && reference.bytes().all(|b| b.is_ascii_hexdigit()) {
            let lower = reference.to_ascii_lowercase();
            if let Ok(Some(full)) = git.expand_commit(&lower) {
                return Some((full.clone(), full));
            }
        }
        None
    }
}

impl GitStore {
    /// Fetches every branch and tag of `url` (a URL or a local path). Objects already in
    /// the store are not transferred again.
    pub fn fetch(&self, url: &str) -> Result<RemoteRefs, GitError> {
        let key = source_key(url);
        let repo = self.repo();
        let what = || format!("cannot fetch {url}");
        let remote = repo
            .remote_at(url)
            .context(what)?
            .with_fetch_tags(gix::remote::fetch::Tags::None)
            .with_refspecs(
                [
                    format!("+refs/heads/*:refs/mcb/src/{key}/heads/*"),
                    format!("+refs/tags/*:refs/mcb/src/{key}/tags/*"),
                    format!("+HEAD:refs/mcb/src/{key}/HEAD"),
                ]
                .iter()
                .map(String::as_str),
                Direction::Fetch,
            )
            .context(what)?;
        let connection = remote.connect(Direction::Fetch).context(what)?;
        let interrupt = AtomicBool::new(false);
        connection
            .prepare_fetch(gix::progress::Discard, Default::default())
            .context(what)?
            .receive(gix::progress::Discard, &interrupt)
            .context(what)?;
        self.refs(url)
    }

    /// The refs of `url` as last fetched into the store, without the network.
    pub fn refs(&self, url: &str) -> Result<RemoteRefs, GitError> {
        let key = source_key(url);
        let repo = self.repo();
        let mut out = RemoteRefs::default();
        let base = format!("refs/mcb/src/{key}/");
        let platform = repo
            .references()
            .context(|| "cannot list the store's refs".to_string())?;
        let iter = platform
            .prefixed(base.as_str())
            .context(|| "cannot list the store's refs".to_string())?;
        for r in iter {
            let mut r = r.map_err(|e| GitError::new("cannot read a ref", e))?;
            let name = r.name().as_bstr().to_string();
            let Some(rest) = name.strip_prefix(&base) else {
                continue;
            };
            let rest = rest.to_string();
            let Ok(id) = r.peel_to_id() else { continue };
            // Tags may name trees or blobs; only commits are sources.
            let Ok(obj) = repo.find_object(id.detach()) else {
                continue;
            };
            if obj.kind != gix::object::Kind::Commit {
                continue;
            }
            let id = id.to_string();
            if let Some(h) = rest.strip_prefix("heads/") {
                out.heads.insert(h.to_string(), id);
            } else if let Some(t) = rest.strip_prefix("tags/") {
                out.tags.insert(t.to_string(), id);
            } else if rest == "HEAD" {
                out.head = Some(id);
            }
        }
        Ok(out)
    }
}
