//! The dependency graph a site's lock stands for: each locked plugin, whether the site file
//! asked for it, and what its `version.php` requires. `mcb why` and `mcb tree` read it.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::path::Path;

use mcb_config::{Lock, SiteFile};
use mcb_moodle::PluginVersion;
use mcb_store::Store;

use crate::error::RealiseError;

/// A plugin of the lock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GraphNode {
    pub component: String,
    pub version: String,
    pub release: Option<String>,
    /// Added because another plugin needs it, not listed in the site file.
    pub auto: bool,
    /// What its version.php requires: component → minimum build (`None`: any version).
    /// `None` when its files are not in the store.
    pub requires: Option<BTreeMap<String, Option<String>>>,
}

/// A site's plugins and what each requires.
#[derive(Debug, Clone)]
pub struct DependencyGraph {
    pub site: String,
    /// Sorted by component.
    pub nodes: Vec<GraphNode>,
}

impl DependencyGraph {
    /// The graph of the lock beside `site_file`, from the version.php files in the store.
    pub fn of_site(site_file: &Path, store: &Path) -> Result<DependencyGraph, RealiseError> {
        let site = SiteFile::load(site_file)?;
        let lock = Lock::load(&site.lock_path())?.ok_or_else(|| RealiseError::Usage {
            message: format!(
                "{} has no lock yet: realise (or update --lock-only) writes it",
                site_file.display()
            ),
            about: crate::error::Named::Existing,
        })?;
        let store = Store::open_existing(store).ok();
        let nodes = lock
            .plugins
            .iter()
            .map(|p| GraphNode {
                component: p.component.clone(),
                version: p.version.clone(),
                release: p.release.clone(),
                auto: p.auto,
                requires: store.as_ref().and_then(|s| requires(s, &p.manifest)),
            })
            .collect();
        Ok(DependencyGraph {
            site: site.name,
            nodes,
        })
    }

    pub fn node(&self, component: &str) -> Option<&GraphNode> {
        self.nodes.iter().find(|n| n.component == component)
    }

    /// Plugins of the lock that `component` requires.
    pub fn needs(&self, component: &str) -> Vec<&str> {
        self.node(component)
            .and_then(|n| n.requires.as_ref())
            .map(|r| {
                r.keys()
                    .filter(|c| self.node(c).is_some())
                    .map(String::as_str)
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Every chain from a plugin the site file lists to `component`, shortest first: each
    /// chain starts at the site file's plugin and ends at `component`.
    pub fn why(&self, component: &str) -> Vec<Vec<String>> {
        let mut chains = Vec::new();
        for root in self.nodes.iter().filter(|n| !n.auto) {
            // Breadth first from the root, remembering how each plugin was reached.
            let mut came_from: BTreeMap<&str, &str> = BTreeMap::new();
            let mut seen: BTreeSet<&str> = BTreeSet::from([root.component.as_str()]);
            let mut queue = VecDeque::from([root.component.as_str()]);
            while let Some(c) = queue.pop_front() {
                if c == component {
                    break;
                }
                for next in self.needs(c) {
                    if seen.insert(next) {
                        came_from.insert(next, c);
                        queue.push_back(next);
                    }
                }
            }
            if !seen.contains(component) {
                continue;
            }
            let mut chain = vec![component.to_string()];
            let mut at = component;
            while let Some(prev) = came_from.get(at) {
                chain.push(prev.to_string());
                at = prev;
            }
            chain.reverse();
            chains.push(chain);
        }
        chains.sort_by_key(|c| (c.len(), c.clone()));
        chains
    }
}

/// What the plugin's version.php, in the store under `manifest`, requires.
fn requires(
    store: &Store,
    manifest: &mcb_store::ManifestHash,
) -> Option<BTreeMap<String, Option<String>>> {
    let m = store.read_manifest(manifest).ok()?;
    let entry = m.get("version.php")?;
    let bytes = store.read_object(entry.object(), entry.executable()).ok()?;
    let v = PluginVersion::parse(&String::from_utf8_lossy(&bytes)).ok()?;
    Some(
        v.dependencies
            .into_iter()
            .map(|(c, b)| (c, b.map(|b| b.to_string())))
            .collect(),
    )
}
