//! Fetching upstream repositories into the store's repository, each under its own ref
//! namespace `refs/mcb/src/<key>/` (heads, tags and the remote's HEAD), reading those refs
//! back without the network, and resolving a site file's `ref` among what one upstream
//! offers (never among every object of the store: a commit of a fork that another site
//! fetched is not a commit of this upstream).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize};
use std::time::Duration;

use gix::remote::Direction;
use mcb_store::GitOid;

use crate::progress::PackBytes;
use crate::{Context, GitError, GitStore, git_oid, oid};

/// Time limits for talking to an upstream over HTTP(S).
#[derive(Debug, Clone, Copy)]
pub struct FetchLimits {
    /// To open the connection.
    pub connect: Duration,
    /// Without a byte from the server, once connected.
    pub idle: Duration,
}

impl Default for FetchLimits {
    fn default() -> Self {
        FetchLimits {
            connect: Duration::from_secs(10),
            idle: Duration::from_secs(30),
        }
    }
}

/// An upstream's refs as last fetched: names without their `refs/heads/` or `refs/tags/`
/// prefix, each peeled to the commit it names.
#[derive(Debug, Clone, Default)]
pub struct RemoteRefs {
    /// The upstream these refs belong to (its namespace key).
    pub key: String,
    pub heads: BTreeMap<String, GitOid>,
    pub tags: BTreeMap<String, GitOid>,
    /// The commit the remote's HEAD (default branch) pointed at.
    pub head: Option<GitOid>,
}

impl RemoteRefs {
    /// Every commit a ref of this upstream names.
    pub fn tips(&self) -> impl Iterator<Item = &GitOid> {
        self.tags
            .values()
            .chain(self.heads.values())
            .chain(&self.head)
    }

    /// Resolves a tag, branch or (possibly abbreviated) commit named by a site file, among
    /// the commits this upstream's refs reach. Returns the name to record and the commit.
    pub fn resolve(
        &self,
        git: &GitStore,
        reference: &str,
    ) -> Result<Option<(String, GitOid)>, GitError> {
        if let Some(c) = self.tags.get(reference) {
            return Ok(Some((reference.to_string(), c.clone())));
        }
        if let Some(c) = self.heads.get(reference) {
            return Ok(Some((reference.to_string(), c.clone())));
        }
        if (4..=40).contains(&reference.len()) && reference.bytes().all(|b| b.is_ascii_hexdigit()) {
            let prefix = reference.to_ascii_lowercase();
            if let Some(full) = git.find_reachable(self, &prefix)? {
                return Ok(Some((full.to_string(), full)));
            }
        }
        Ok(None)
    }
}

impl GitStore {
    /// Fetches every branch and tag of `url` (a URL or a local path). Objects already in
    /// the store are not transferred again. `received` counts the bytes of pack received
    /// as they arrive.
    pub fn fetch(
        &self,
        url: &str,
        limits: FetchLimits,
        received: &Arc<AtomicUsize>,
    ) -> Result<RemoteRefs, GitError> {
        let key = mcb_store::url_key(url);
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
        // gix's HTTP transport makes its reqwest client on connecting.
        crate::tls::install_crypto_provider();
        let mut connection = remote
            .connect(Direction::Fetch)
            .map_err(|e| network_error(url, limits, e))?;
        if let Some(options) = http_options(&repo, url, limits) {
            connection.set_transport_options(options);
        }
        let interrupt = AtomicBool::new(false);
        let mut progress = PackBytes::root(received.clone());
        connection
            .prepare_fetch(&mut progress, Default::default())
            .map_err(|e| network_error(url, limits, e))?
            .receive(&mut progress, &interrupt)
            .map_err(|e| network_error(url, limits, e))?;
        self.refs(url)
    }

    /// The refs of `url` as last fetched into the store, without the network.
    pub fn refs(&self, url: &str) -> Result<RemoteRefs, GitError> {
        let key = mcb_store::url_key(url);
        let repo = self.repo();
        let mut out = RemoteRefs {
            key: key.clone(),
            ..Default::default()
        };
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
            let id = git_oid(id.detach());
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

    /// Is `commit` one of the commits `refs` reach (a tip or an ancestor of one)?
    pub fn is_reachable(&self, refs: &RemoteRefs, commit: &GitOid) -> Result<bool, GitError> {
        Ok(self.find_reachable(refs, commit.as_str())?.is_some())
    }

    /// The commit whose id starts with `prefix` among those `refs` reach; `None` when there
    /// is none or more than one.
    pub fn find_reachable(
        &self,
        refs: &RemoteRefs,
        prefix: &str,
    ) -> Result<Option<GitOid>, GitError> {
        let tips: Vec<GitOid> = refs.tips().cloned().collect();
        self.find_from(&tips, prefix)
    }

    /// The commit whose id starts with `prefix` among `tips` and their ancestors; `None`
    /// when there is none or more than one.
    pub fn find_from(&self, tips: &[GitOid], prefix: &str) -> Result<Option<GitOid>, GitError> {
        let full = prefix.len() == 40;
        let mut found: Option<GitOid> = None;
        for tip in tips {
            if tip.as_str().starts_with(prefix) {
                if full {
                    return Ok(Some(tip.clone()));
                }
                if found.as_ref().is_some_and(|f| f != tip) {
                    return Ok(None);
                }
                found = Some(tip.clone());
            }
        }
        let repo = self.repo();
        let tips: Vec<gix::ObjectId> = tips.iter().map(oid).collect();
        if tips.is_empty() {
            return Ok(found);
        }
        let walk = repo
            .rev_walk(tips)
            .all()
            .context(|| "cannot walk the history of an upstream".to_string())?;
        for info in walk {
            let info =
                info.map_err(|e| GitError::new("cannot walk the history of an upstream", e))?;
            let hex = info.id.to_string();
            if hex.starts_with(prefix) {
                if full {
                    return Ok(Some(git_oid(info.id)));
                }
                let id = git_oid(info.id);
                if found.as_ref().is_some_and(|f| *f != id) {
                    return Ok(None);
                }
                found = Some(id);
            }
        }
        Ok(found)
    }
}

/// Transport options with mcb's time limits for an HTTP(S) upstream; `None` for others.
fn http_options(
    repo: &gix::Repository,
    url: &str,
    limits: FetchLimits,
) -> Option<Box<dyn std::any::Any>> {
    use gix::protocol::transport::client::blocking_io::http;
    let mut options = repo.transport_options(url, None).ok()??;
    let http_options = options.downcast_mut::<http::Options>()?;
    let backend = http::reqwest::Options {
        configure_client: Some(Box::new(move |b: reqwest::blocking::ClientBuilder| {
            Ok(b.connect_timeout(limits.connect).timeout(limits.idle))
        })),
        configure_request: None,
    };
    http_options.backend = Some(std::sync::Arc::new(std::sync::Mutex::new(backend)));
    Some(options)
}

/// A fetch failure, said plainly: refused, timed out, or a name that does not resolve,
/// rather than the transport's "handshake failed".
fn network_error(
    url: &str,
    limits: FetchLimits,
    e: impl Into<Box<dyn std::error::Error + Send + Sync + 'static>>,
) -> GitError {
    let e = e.into();
    let host = reqwest::Url::parse(url)
        .ok()
        .and_then(|u| {
            u.host_str().map(|h| match u.port() {
                Some(p) => format!("{h}:{p}"),
                None => h.to_string(),
            })
        })
        .unwrap_or_else(|| url.to_string());
    let plain = match classify(e.as_ref()) {
        Some(Network::Refused) => Some(format!("{host} refused the connection")),
        Some(Network::TimedOut) => Some(format!(
            "{host} did not answer in time (connect limit {} s, idle limit {} s)",
            limits.connect.as_secs(),
            limits.idle.as_secs()
        )),
        Some(Network::Dns) => Some(format!("the host name {host} could not be resolved")),
        None => None,
    };
    match plain {
        Some(p) => GitError::new(format!("cannot fetch {url}: {p}"), e),
        None => GitError::new(format!("cannot fetch {url}"), e),
    }
}

enum Network {
    Refused,
    TimedOut,
    Dns,
}

fn classify(e: &(dyn std::error::Error + 'static)) -> Option<Network> {
    let mut cur = Some(e);
    while let Some(err) = cur {
        if let Some(r) = err.downcast_ref::<reqwest::Error>()
            && r.is_timeout()
        {
            return Some(Network::TimedOut);
        }
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            match io.kind() {
                std::io::ErrorKind::ConnectionRefused => return Some(Network::Refused),
                std::io::ErrorKind::TimedOut => return Some(Network::TimedOut),
                _ => {}
            }
        }
        let text = err.to_string().to_ascii_lowercase();
        if text.contains("dns error") || text.contains("failed to lookup address") {
            return Some(Network::Dns);
        }
        if text.contains("connection refused") {
            return Some(Network::Refused);
        }
        if text.contains("timed out") || text.contains("operation timed out") {
            return Some(Network::TimedOut);
        }
        cur = err.source();
    }
    None
}
