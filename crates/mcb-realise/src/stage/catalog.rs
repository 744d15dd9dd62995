//! The plan stage's [`Catalog`] over real sources: git upstreams (read from the store's git
//! repository without ingesting them), zips and directories (ingested: that is how they
//! are read), and the plugins index (a version's zip downloaded only when the plan reads
//! its `version.php`, and once per run).

use std::collections::HashMap;
use std::sync::Mutex;

use mcb_catalog::{DirectoryVersion, LazyIndex, SourceError, SourceFailure, Sources, StoredSource};
use mcb_config::{Lock, LockedMoodle, LockedPlugin, LockedSource, SiteFile, SourceSpec};
use mcb_git::{FileAt, RemoteRefs};
use mcb_moodle::release::parse_release_tag;
use mcb_moodle::{Build, Component, CoreVersion, Maturity, MoodleSpec};
use mcb_resolve::{Offer, Problem, Rule};
use mcb_store::{Blake3, GitOid};

use crate::error::RealiseError;
use crate::report::Reporter;
use crate::stage::plan::{Catalog, Offers};

/// A source the plan chose.
#[derive(Debug, Clone)]
pub enum SourcePick {
    /// Already in the store (a zip, a directory, a locked source found there).
    Stored(Box<StoredSource>),
    /// A commit of a git upstream: read from git now, ingested at the fetch stage.
    Git {
        url: String,
        reference: String,
        commit: GitOid,
    },
    /// A version of the plugins index: downloaded when first read.
    Index {
        version: Box<DirectoryVersion>,
        locked: Option<Blake3>,
        /// The index that lists it, when the site asks more than one.
        index: Option<String>,
    },
    /// A version of a Composer package: its dist zip downloaded when first read.
    Composer {
        package: Box<mcb_catalog::ComposerPackage>,
        repository: String,
        locked: Option<Blake3>,
    },
}

pub struct SiteCatalog<'a> {
    pub sources: &'a Sources<'a>,
    index: &'a LazyIndex<'a>,
    /// The Composer repositories `composer:` entries come from, in order.
    composer: Vec<String>,
    /// Index zips downloaded while choosing, by URL: each once per run.
    loaded: Mutex<HashMap<String, StoredSource>>,
    /// Plugins bound to one plugin index (component → its location): their versions come
    /// from there only, whatever another index offers.
    bound: HashMap<String, String>,
    /// Composer packages bound to the repository that served them (component → its URL).
    bound_composer: HashMap<String, String>,
    /// Advisory ids the site acknowledges (`ignore_advisories`).
    acknowledged: Vec<String>,
    /// Each Composer package's advisories, by repository and package: asked once per run
    /// (`None`: the repository could not be asked, which was said).
    advisories: Mutex<AdvisoriesByPackage>,
    /// The site's CAMP registry, and its tier floors (the site's, and per plugin).
    camp: Option<CampSetting>,
    /// The registry as read and verified, once per run.
    camp_read: std::sync::OnceLock<Result<mcb_catalog::tuf::CampRepository, String>>,
}

struct CampSetting {
    config: mcb_config::CampConfig,
    min_tier: HashMap<String, u8>,
}

/// Advisories by (repository, package); `None` where the repository could not be asked.
type AdvisoriesByPackage = HashMap<(String, String), Option<Vec<mcb_catalog::Advisory>>>;

/// An advisory that affects a version a plan considers.
#[derive(Debug, Clone)]
pub struct AdvisoryFinding {
    pub advisory: mcb_catalog::Advisory,
    /// The version it affects.
    pub version: String,
    /// The site file acknowledges it (`ignore_advisories`); a malware flag never is.
    pub acknowledged: bool,
}

impl AdvisoryFinding {
    /// "mod_foo 2.1.3 (acme/moodle-mod_foo): advisory PKSA-1: XSS … [CVE-…] https://…".
    pub fn text(&self, component: &str) -> String {
        let a = &self.advisory;
        let what = match a.flag {
            mcb_catalog::AdvisoryFlag::Vulnerable => format!("advisory {}", a.id),
            mcb_catalog::AdvisoryFlag::Malware => format!("flagged as malware ({})", a.id),
            mcb_catalog::AdvisoryFlag::Revoked => "revoked by its registry".to_string(),
        };
        let mut s = format!(
            "{component} {} ({}): {what}: {}",
            self.version, a.package, a.title
        );
        if let Some(cve) = &a.cve
            && *cve != a.id
        {
            s.push_str(&format!(" [{cve}]"));
        }
        if let Some(link) = &a.link {
            s.push_str(&format!(" {link}"));
        }
        s
    }
}

fn reject(e: SourceError) -> RealiseError {
    RealiseError::from(e)
}

impl<'a> SiteCatalog<'a> {
    pub fn new(sources: &'a Sources<'a>, index: &'a LazyIndex<'a>) -> Self {
        SiteCatalog {
            sources,
            index,
            composer: vec![mcb_catalog::PACKAGIST.to_string()],
            loaded: Mutex::new(HashMap::new()),
            bound: HashMap::new(),
            bound_composer: HashMap::new(),
            acknowledged: Vec::new(),
            advisories: Mutex::new(HashMap::new()),
            camp: None,
            camp_read: std::sync::OnceLock::new(),
        }
    }

    /// Takes `camp: true` plugins from the site's CAMP registry.
    pub fn with_camp(mut self, site: &SiteFile) -> Self {
        self.camp = site.camp.clone().map(|config| CampSetting {
            min_tier: site
                .plugins
                .iter()
                .filter_map(|p| p.min_tier.map(|t| (p.component.to_string(), t)))
                .collect(),
            config,
        });
        self
    }

    /// The CAMP registry read and verified against the pinned root and the versions this
    /// store trusted before (which it then records).
    fn camp_repository(&self) -> Result<&mcb_catalog::tuf::CampRepository, String> {
        let setting = self
            .camp
            .as_ref()
            .ok_or("the site names no CAMP registry")?;
        self.camp_read
            .get_or_init(|| {
                let url = &setting.config.url;
                let cache = self.sources.store.cache();
                let previous = cache
                    .camp_state(url)
                    .and_then(|t| serde_json::from_str::<mcb_catalog::tuf::TrustedState>(&t).ok());
                if self.sources.offline {
                    return Err(
                        "the run is offline: CAMP's signed metadata is read fresh every run".into(),
                    );
                }
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs() as i64);
                let repo = mcb_catalog::tuf::load(
                    self.sources.http,
                    url,
                    &setting.config.root,
                    previous.as_ref(),
                    now,
                )
                .map_err(|e| format!("CAMP {url}: {e}"))?;
                let text = serde_json::to_string(&repo.state).map_err(|e| e.to_string())?;
                cache
                    .set_camp_state(url, &text)
                    .map_err(|e| e.to_string())?;
                Ok(repo)
            })
            .as_ref()
            .map_err(Clone::clone)
    }

    /// The versions of `component` the CAMP registry offers, newest first; one below the
    /// tier asked for is listed with why it is not taken.
    fn camp_offers(&self, component: &Component) -> Result<Offers<SourcePick>, RealiseError> {
        let name = component.as_str();
        let repo = self
            .camp_repository()
            .map_err(|e| RealiseError::Source(SourceError::new(name, SourceFailure::Refused, e)))?;
        let setting = self.camp.as_ref().expect("read above");
        let floor = setting
            .min_tier
            .get(name)
            .copied()
            .unwrap_or(setting.config.min_tier);
        let mut offers = Vec::new();
        for t in repo.targets.iter().filter(|t| t.component == name) {
            let package = mcb_catalog::ComposerPackage {
                name: format!("camp:{name}"),
                version: t.version.clone(),
                package_type: format!("moodle-{}", component.plugin_type()),
                dist_url: repo.target_url(t),
                sha1: None,
                sha256: Some(t.sha256.clone()),
                installer_name: Some(component.plugin_name().to_string()),
                time: t.published,
            };
            offers.push(Offer {
                version: Build::parse(&t.version),
                release: t.release.clone(),
                published: t.published,
                not_listed: (t.tier < floor).then(|| {
                    format!(
                        "{name} {} is CAMP tier {}, below the tier {floor} the site takes (min_tier)",
                        t.release.as_deref().unwrap_or(&t.version),
                        t.tier
                    )
                }),
                ..Offer::new(
                    t.version.clone(),
                    SourcePick::Composer {
                        package: Box::new(package),
                        repository: repo.url.clone(),
                        locked: None,
                    },
                )
            });
        }
        if offers.is_empty() {
            return Ok(Err(Problem::new(
                name,
                Rule::NoCompatibleVersion,
                format!("{name} is not in the CAMP registry {}", repo.url),
            )
            .hint("check the component name, or give another source")));
        }
        offers.sort_by_key(|o| std::cmp::Reverse(o.version));
        Ok(Ok(offers))
    }

    /// `a`, affecting `version`: acknowledged when it is a vulnerability the site file
    /// names in `ignore_advisories` (a malware flag or revocation never is).
    fn finding(&self, a: mcb_catalog::Advisory, version: &str) -> AdvisoryFinding {
        AdvisoryFinding {
            acknowledged: a.flag == mcb_catalog::AdvisoryFlag::Vulnerable
                && self.acknowledged.contains(&a.id),
            version: version.to_string(),
            advisory: a,
        }
    }

    /// The CAMP registry's signed metadata can be trusted now (or why not).
    pub fn camp_check(&self) -> Result<(), String> {
        self.camp_repository().map(|_| ())
    }

    /// What CAMP signs against `version` of `component` (from the registry at
    /// `repository`): its advisories, and its revocation of the release.
    fn camp_advisories(
        &self,
        repository: &str,
        component: &str,
        version: &str,
    ) -> Vec<AdvisoryFinding> {
        let repo = match self.camp_repository() {
            Ok(r) => r,
            Err(e) => {
                self.sources.note(format!(
                    "cannot check CAMP's advisories and revocations: {e}"
                ));
                return Vec::new();
            }
        };
        if repo.url != repository {
            return Vec::new();
        }
        let package = format!("camp:{component}");
        let revoked = repo
            .targets
            .iter()
            .filter(|t| t.component == component && t.version == version)
            .filter_map(|t| t.revoked.clone())
            .map(|why| mcb_catalog::Advisory {
                id: format!("revoked-{component}-{version}"),
                package: package.clone(),
                title: why,
                cve: None,
                link: None,
                affected: version.to_string(),
                flag: mcb_catalog::AdvisoryFlag::Revoked,
            });
        let advised = repo
            .advisories
            .iter()
            .filter(|a| a.component == component && a.versions.iter().any(|v| v == version))
            .map(|a| mcb_catalog::Advisory {
                id: a.id.clone(),
                package: package.clone(),
                title: a.title.clone(),
                cve: None,
                link: a.link.clone(),
                affected: a.versions.join(", "),
                flag: if a.malware {
                    mcb_catalog::AdvisoryFlag::Malware
                } else {
                    mcb_catalog::AdvisoryFlag::Vulnerable
                },
            });
        revoked
            .chain(advised)
            .map(|a| self.finding(a, version))
            .collect()
    }

    /// Takes the advisories the site file acknowledges.
    pub fn with_acknowledged(mut self, ids: &[String]) -> Self {
        self.acknowledged = ids.to_vec();
        self
    }

    /// The advisories (and malware flags) that affect `pick`: the security advisories
    /// its Composer repository publishes for its version. Offline, or for a source that
    /// publishes none, nothing. A repository that cannot be asked is said once.
    pub fn advisories_of(&self, pick: &SourcePick) -> Vec<AdvisoryFinding> {
        let (repository, package, version) = match pick {
            SourcePick::Composer {
                package,
                repository,
                ..
            } => (
                repository.as_str(),
                package.name.as_str(),
                package.version.as_str(),
            ),
            SourcePick::Stored(s) => match &s.locked {
                LockedSource::Composer {
                    repository,
                    package,
                    version,
                    ..
                } => (repository.as_str(), package.as_str(), version.as_str()),
                _ => return Vec::new(),
            },
            _ => return Vec::new(),
        };
        self.advisories_at(repository, package, version)
    }

    /// The advisories that affect the versions `lock` holds, each with its component.
    pub fn advisories_in(&self, lock: &Lock) -> Vec<(String, AdvisoryFinding)> {
        let mut out = Vec::new();
        for p in &lock.plugins {
            if let LockedSource::Composer {
                repository,
                package,
                version,
                ..
            } = &p.source
            {
                for f in self.advisories_at(repository, package, version) {
                    out.push((p.component.clone(), f));
                }
            }
        }
        out
    }

    /// The advisories that affect `version` of Composer package `package` of `repository`.
    pub fn advisories_at(
        &self,
        repository: &str,
        package: &str,
        version: &str,
    ) -> Vec<AdvisoryFinding> {
        if let Some(component) = package.strip_prefix("camp:") {
            return self.camp_advisories(repository, component, version);
        }
        if self.sources.offline {
            return Vec::new();
        }
        let Some(v) = mcb_config::composer::ComposerVersion::parse(version) else {
            return Vec::new();
        };
        let key = (repository.to_string(), package.to_string());
        let known = self
            .advisories
            .lock()
            .expect("not poisoned")
            .get(&key)
            .cloned();
        let list = match known {
            Some(l) => l,
            None => {
                let location = self.sources.locate(repository).for_git();
                let asked = mcb_catalog::advisories(
                    self.sources.http,
                    &location,
                    &[package.to_string()],
                    &self.sources.limits.metadata,
                );
                let l = match asked {
                    Ok(l) => Some(l),
                    Err(e) => {
                        self.sources.note(format!(
                            "cannot read the security advisories of {repository}: {e}"
                        ));
                        None
                    }
                };
                self.advisories
                    .lock()
                    .expect("not poisoned")
                    .insert(key, l.clone());
                l
            }
        };
        list.unwrap_or_default()
            .into_iter()
            .filter(|a| a.package == package)
            .filter(|a| {
                mcb_config::composer::Constraint::parse(&a.affected).is_ok_and(|c| c.matches(&v))
            })
            .map(|a| self.finding(a, version))
            .collect()
    }

    /// The plugin index a pick comes from, when the site asks more than one.
    pub fn index_of(&self, pick: &SourcePick) -> Option<String> {
        match pick {
            SourcePick::Index { index, .. } => index.clone(),
            SourcePick::Stored(s) => match &s.locked {
                LockedSource::Directory { index, .. } => index.clone(),
                _ => None,
            },
            _ => None,
        }
    }

    /// Binds each plugin of the plugins directory to the index it comes from, so that a
    /// same-named plugin on another index (a public one, beside a private mirror) never
    /// takes its place: the index the site file names (`index:`), else the one the lock
    /// records, else, for a lock written when the site asked one index (which it does not
    /// name), the index that lists the locked version's download.
    pub fn with_bindings(mut self, site: &SiteFile, lock: Option<&Lock>) -> Self {
        // A Composer package stays with the repository that served it, in the same way.
        if self.composer.len() > 1 {
            for p in lock.map(|l| l.plugins.as_slice()).unwrap_or_default() {
                if let LockedSource::Composer { repository, .. } = &p.source
                    && self.composer.contains(repository)
                {
                    self.bound_composer
                        .insert(p.component.clone(), repository.clone());
                }
            }
        }
        let locations = self.index.locations.clone();
        if locations.len() < 2 {
            return self;
        }
        for p in lock.map(|l| l.plugins.as_slice()).unwrap_or_default() {
            let LockedSource::Directory {
                index, url, md5, ..
            } = &p.source
            else {
                continue;
            };
            let at = match index {
                Some(at) => Some(at.clone()),
                None => (0..locations.len())
                    .find(|i| {
                        matches!(self.index.answer(*i, &p.component).record,
                            Ok(Some(r)) if r.versions.iter().any(|v| {
                                v.downloadurl == *url || v.downloadmd5.eq_ignore_ascii_case(md5.as_str())
                            }))
                    })
                    .map(|i| locations[i].clone()),
            };
            if let Some(at) = at.filter(|at| locations.contains(at)) {
                self.bound.insert(p.component.clone(), at);
            }
        }
        for p in &site.plugins {
            if let Some(at) = &p.index {
                self.bound
                    .insert(p.component.as_str().to_string(), at.clone());
            }
        }
        self
    }

    /// Takes `composer:` entries from `repositories` (none given: Packagist's).
    pub fn with_composer(mut self, repositories: &[String]) -> Self {
        if !repositories.is_empty() {
            self.composer = repositories.to_vec();
        }
        self
    }

    /// A Composer version's zip, downloaded once per run.
    fn composer_zip(
        &self,
        component: &str,
        repository: &str,
        p: &mcb_catalog::ComposerPackage,
        locked: Option<&Blake3>,
    ) -> Result<StoredSource, RealiseError> {
        if let Some(s) = self.loaded.lock().expect("not poisoned").get(&p.dist_url) {
            return Ok(s.clone());
        }
        let s = self
            .sources
            .composer_zip(component, repository, p, locked)
            .map_err(reject)?;
        self.loaded
            .lock()
            .expect("not poisoned")
            .insert(p.dist_url.clone(), s.clone());
        Ok(s)
    }

    /// Fetches the refs of every git upstream the site names, two at a time, before the plan
    /// reads them one by one. A failure here is left for the plan to report with its
    /// component.
    pub fn prefetch(
        &self,
        site: &SiteFile,
        lock: Option<&mcb_config::Lock>,
        reporter: &dyn Reporter,
    ) {
        let mut urls: Vec<(String, String)> = Vec::new();
        let locked_core = lock.is_some_and(|l| l.moodle_fits(site));
        if let SourceSpec::Git { url, .. } = &site.moodle.source
            && !locked_core
        {
            urls.push(("moodle".into(), url.clone()));
        }
        for p in &site.plugins {
            let locked = lock
                .and_then(|l| l.plugin(p.component.as_str()))
                .is_some_and(|l| mcb_config::Lock::plugin_fits(l, p));
            if let SourceSpec::Git { url, .. } = &p.source
                && !locked
            {
                urls.push((p.component.to_string(), url.clone()));
            }
        }
        crate::pool::fetch_pool().install(|| {
            use rayon::prelude::*;
            urls.par_iter().for_each(|(component, url)| {
                reporter.stage(
                    crate::report::Stage::Fetch,
                    &format!("{component} refs {url}"),
                );
                let _ = self.sources.git_refs(component, url);
            });
        });
    }

    /// The source of `pick`, in the store (ingesting a git commit, downloading an index
    /// version not read yet).
    pub fn fetch(&self, component: &str, pick: &SourcePick) -> Result<StoredSource, RealiseError> {
        match pick {
            SourcePick::Stored(s) => Ok((**s).clone()),
            SourcePick::Git {
                url,
                reference,
                commit,
            } => self
                .sources
                .git_commit(component, url, reference, commit)
                .map_err(reject),
            SourcePick::Index {
                version,
                locked,
                index,
            } => self.index_zip(component, version, locked.as_ref(), index.as_deref()),
            SourcePick::Composer {
                package,
                repository,
                locked,
            } => self.composer_zip(component, repository, package, locked.as_ref()),
        }
    }

    fn index_zip(
        &self,
        component: &str,
        v: &DirectoryVersion,
        locked: Option<&Blake3>,
        index: Option<&str>,
    ) -> Result<StoredSource, RealiseError> {
        if let Some(s) = self
            .loaded
            .lock()
            .expect("not poisoned")
            .get(&v.downloadurl)
        {
            return Ok(s.clone());
        }
        let s = self
            .sources
            .directory_zip(component, v, locked, index)
            .map_err(reject)?;
        self.loaded
            .lock()
            .expect("not poisoned")
            .insert(v.downloadurl.clone(), s.clone());
        Ok(s)
    }

    /// The versions of Composer package `package` that meet `constraint`, newest first;
    /// a version of another type or installing under another name is listed with why it
    /// is not taken.
    fn composer_offers(
        &self,
        component: &Component,
        package: &str,
        constraint: Option<&str>,
    ) -> Result<Offers<SourcePick>, RealiseError> {
        let name = component.as_str();
        let constraint = match constraint {
            Some(c) => Some(
                mcb_config::composer::Constraint::parse(c)
                    .map_err(|e| RealiseError::source(name, e))?,
            ),
            None => None,
        };
        let repositories = match self.bound_composer.get(name) {
            Some(r) => std::slice::from_ref(r),
            None => self.composer.as_slice(),
        };
        let Some((repository, versions)) = self
            .sources
            .composer_versions(name, repositories, package)
            .map_err(reject)?
        else {
            return Ok(Err(Problem::new(
                name,
                Rule::NoCompatibleVersion,
                format!(
                    "{package} is in no Composer repository the site names ({})",
                    self.composer.join(", ")
                ),
            )
            .hint("check the package name and composer_repositories")));
        };
        let want_type = format!("moodle-{}", component.plugin_type());
        let default_name = package
            .split_once('/')
            .map(|(_, n)| n.strip_prefix("moodle-").unwrap_or(n))
            .unwrap_or(package);
        let mut offers = Vec::new();
        for p in versions {
            let Some(v) = mcb_config::composer::ComposerVersion::parse(&p.version) else {
                continue;
            };
            if constraint.as_ref().is_some_and(|c| !c.matches(&v))
                || (constraint.is_none() && !v.is_stable())
            {
                continue;
            }
            let folder = p.installer_name.as_deref().unwrap_or(default_name);
            let wrong = if p.package_type != want_type {
                Some(format!(
                    "{package} {} is of type {}, not {want_type}",
                    p.version, p.package_type
                ))
            } else if folder != component.plugin_name() && folder != name {
                Some(format!(
                    "{package} {} installs as {folder}, not {}",
                    p.version,
                    component.plugin_name()
                ))
            } else {
                None
            };
            offers.push(Offer {
                not_listed: wrong,
                published: p.time,
                ..Offer::new(
                    p.version.clone(),
                    SourcePick::Composer {
                        package: Box::new(p),
                        repository: repository.clone(),
                        locked: None,
                    },
                )
            });
        }
        if offers.is_empty() {
            return Ok(Err(Problem::new(
                name,
                Rule::Pin,
                format!(
                    "{package} has no version that meets {}",
                    constraint
                        .map(|c| c.to_string())
                        .unwrap_or_else(|| "the stable releases".into())
                ),
            )
            .hint(format!("the repository is {repository}"))));
        }
        Ok(Ok(offers))
    }

    /// The index `component` comes from: the first that has a version for Moodle `xy`,
    /// else the first that lists it at all. An index that cannot be read is passed over
    /// (and said) when another answers; when none can be read, the first's error.
    fn index_record(
        &self,
        component: &str,
        xy: &str,
    ) -> Result<Option<(&str, &mcb_catalog::PluginRecord)>, RealiseError> {
        let mut listed = None;
        let mut unread: Vec<SourceError> = Vec::new();
        let mut read_any = false;
        let asked: Vec<usize> = match self.bound.get(component) {
            Some(at) => self
                .index
                .locations
                .iter()
                .position(|l| l == at)
                .into_iter()
                .collect(),
            None => (0..self.index.locations.len()).collect(),
        };
        for i in asked {
            let answer = self.index.answer(i, component);
            match answer.record {
                Ok(Some(r)) => {
                    read_any = true;
                    if r.versions.iter().any(|v| v.supports(xy)) {
                        listed = Some((answer.location, r));
                        break;
                    }
                    listed.get_or_insert((answer.location, r));
                }
                Ok(None) => read_any = true,
                Err(e) => unread.push(e),
            }
        }
        if !read_any && !unread.is_empty() {
            return Err(reject(unread.remove(0)));
        }
        for e in unread {
            self.sources.note(format!(
                "{}; {component} was looked up in the other plugin indexes",
                crate::error::chain(&e)
            ));
        }
        Ok(listed)
    }

    /// The refs of a git source, and the commit to check it reaches.
    fn git_pick(
        &self,
        component: &str,
        url: &str,
        reference: &str,
        commit: &GitOid,
    ) -> Result<SourcePick, RealiseError> {
        self.sources
            .ensure_commit(component, url, commit)
            .map_err(reject)?;
        Ok(SourcePick::Git {
            url: url.to_string(),
            reference: reference.to_string(),
            commit: commit.clone(),
        })
    }

    /// A locked source with no git: from the store, or fetched again as the lock says.
    /// `version` is the locked plugin's (the Marketplace downloads by it).
    fn stored_or_refetched(
        &self,
        component: &str,
        locked: &LockedSource,
        manifest: &mcb_store::ManifestHash,
        date: i64,
        request: &SourceSpec,
        version: &str,
    ) -> Result<SourcePick, RealiseError> {
        if let Some(s) = self
            .sources
            .stored(component, locked, manifest, date)
            .map_err(reject)?
        {
            return Ok(SourcePick::Stored(Box::new(s)));
        }
        if let LockedSource::Directory {
            id,
            url,
            md5,
            blake3,
            index,
        } = locked
        {
            let mut v = DirectoryVersion::from_lock(*id, url, md5);
            v.version = version.to_string();
            return Ok(SourcePick::Index {
                version: Box::new(v),
                locked: Some(blake3.clone()),
                index: index.clone(),
            });
        }
        if let LockedSource::Composer {
            repository,
            package,
            version,
            url,
            blake3,
        } = locked
        {
            return Ok(SourcePick::Composer {
                package: Box::new(mcb_catalog::ComposerPackage::from_lock(
                    package, version, url,
                )),
                repository: repository.clone(),
                locked: Some(blake3.clone()),
            });
        }
        let pinned = match request {
            SourceSpec::Zip { hash, .. } => hash.as_deref(),
            _ => None,
        };
        Ok(SourcePick::Stored(Box::new(
            self.sources
                .refetch(component, locked, pinned)
                .map_err(reject)?,
        )))
    }
}

/// The commit a Moodle version spec names among a core upstream's refs.
pub fn pick_core_ref(
    sources: &Sources,
    refs: &RemoteRefs,
    spec: &MoodleSpec,
    url: &str,
) -> Result<(String, GitOid), RealiseError> {
    let found = match spec {
        MoodleSpec::Series(r) => refs
            .tags
            .iter()
            .filter_map(|(t, c)| match parse_release_tag(t) {
                Some((rel, patch)) if rel == *r => Some((patch, t, c)),
                _ => None,
            })
            .max_by_key(|(patch, _, _)| *patch)
            .map(|(_, t, c)| (t.clone(), c.clone())),
        MoodleSpec::StableHead(r) => {
            let b = r.stable_branch();
            refs.heads.get(&b).map(|c| (b, c.clone()))
        }
        MoodleSpec::Exact(r, p) => {
            let t = format!("v{r}.{p}");
            refs.tags.get(&t).map(|c| (t, c.clone()))
        }
        MoodleSpec::Tag(t) => refs.tags.get(t).map(|c| (t.clone(), c.clone())),
        MoodleSpec::Commit(c) => refs.resolve(sources.git, c)?,
    };
    found.ok_or_else(|| {
        let mut releases: Vec<&String> = refs
            .tags
            .keys()
            .filter(|t| parse_release_tag(t).is_some())
            .collect();
        releases.sort_by(|a, b| mcb_moodle::natural_cmp(b, a));
        let newest: Vec<&str> = releases.iter().take(5).map(|s| s.as_str()).collect();
        RealiseError::source(
            "moodle",
            format!("{url} has nothing that matches version \"{spec}\""),
        )
        .with_hint(if newest.is_empty() {
            "the repository has no vX.Y.Z release tags".to_string()
        } else {
            format!("its newest release tags are {}", newest.join(", "))
        })
    })
}

impl Catalog for SiteCatalog<'_> {
    type Pick = SourcePick;

    fn core(
        &self,
        site: &SiteFile,
        locked: Option<&LockedMoodle>,
    ) -> Result<SourcePick, RealiseError> {
        if let Some(l) = locked {
            if let Some(s) = self
                .sources
                .substituted("moodle", &l.source, &l.manifest, l.date)
            {
                return Ok(SourcePick::Stored(Box::new(s)));
            }
            return match &l.source {
                LockedSource::Git {
                    url,
                    reference,
                    commit,
                } => self.git_pick("moodle", url, reference, commit),
                other => self.stored_or_refetched(
                    "moodle",
                    other,
                    &l.manifest,
                    l.date,
                    &site.moodle.source,
                    &l.build,
                ),
            };
        }
        let s = self.sources;
        Ok(match &site.moodle.source {
            SourceSpec::Git { url, .. } => {
                let refs = s.git_refs("moodle", url).map_err(reject)?;
                let spec = site
                    .moodle
                    .spec
                    .as_ref()
                    .expect("a git core always has a spec (checked by mcb-config)");
                let (name, commit) = pick_core_ref(s, &refs, spec, url)?;
                self.git_pick("moodle", url, &name, &commit)?
            }
            SourceSpec::Zip { location, hash } => SourcePick::Stored(Box::new(
                s.zip("moodle", location, hash.as_deref(), None)
                    .map_err(reject)?,
            )),
            SourceSpec::Path { dir } => {
                SourcePick::Stored(Box::new(s.path("moodle", dir).map_err(reject)?))
            }
            SourceSpec::Directory | SourceSpec::Composer { .. } | SourceSpec::Camp => {
                unreachable!("mcb-config gives core only git, zip or path sources")
            }
        })
    }

    fn offers(
        &self,
        component: &Component,
        source: &SourceSpec,
        core: &CoreVersion,
    ) -> Result<Offers<SourcePick>, RealiseError> {
        let name = component.as_str();
        let s = self.sources;
        let stored = |st: StoredSource, label: &str| {
            Ok(Ok(vec![Offer::new(
                label,
                SourcePick::Stored(Box::new(st)),
            )]))
        };
        match source {
            SourceSpec::Git {
                url,
                reference: Some(r),
            } => {
                let refs = s.git_refs(name, url).map_err(reject)?;
                let (resolved, commit) = refs.resolve(s.git, r)?.ok_or_else(|| {
                    RealiseError::source(
                        name,
                        format!("'{r}' is not a tag, branch or commit of {url}"),
                    )
                    .with_hint(format!(
                        "it has {} tags and the branches {}",
                        refs.tags.len(),
                        refs.heads.keys().cloned().collect::<Vec<_>>().join(", ")
                    ))
                })?;
                Ok(Ok(vec![Offer::new(
                    resolved.clone(),
                    self.git_pick(name, url, &resolved, &commit)?,
                )]))
            }
            SourceSpec::Git {
                url,
                reference: None,
            } => {
                let refs = s.git_refs(name, url).map_err(reject)?;
                // Every tag's version.php is read now, from git objects already fetched:
                // the ranking orders tags by the plugin version they hold. A tag whose
                // version.php cannot be read is offered unread, and refused with why.
                let mut offers = Vec::new();
                for (tag, commit) in &refs.tags {
                    let pick = SourcePick::Git {
                        url: url.clone(),
                        reference: tag.clone(),
                        commit: commit.clone(),
                    };
                    let info = crate::stage::plan::read_version_php(self, name, &pick)?.ok();
                    let published = match &pick {
                        SourcePick::Git { commit, .. } => s.git.commit_time(commit).ok(),
                        _ => None,
                    };
                    offers.push(Offer {
                        info,
                        published,
                        ..Offer::new(tag.clone(), pick)
                    });
                }
                Ok(Ok(offers))
            }
            SourceSpec::Zip { location, hash } => stored(
                s.zip(name, location, hash.as_deref(), None)
                    .map_err(reject)?,
                location,
            ),
            SourceSpec::Path { dir } => stored(s.path(name, dir).map_err(reject)?, dir),
            SourceSpec::Composer {
                package,
                constraint,
            } => self.composer_offers(component, package, constraint.as_deref()),
            SourceSpec::Camp => self.camp_offers(component),
            SourceSpec::Directory => {
                let xy = core.major_release().to_string();
                let Some((location, record)) = self.index_record(name, &xy)? else {
                    let asked = match self.bound.get(name) {
                        Some(at) => format!("{at}, the index it is bound to"),
                        None => self.index.locations.join(", "),
                    };
                    return Ok(Err(Problem::new(
                        name,
                        Rule::NoCompatibleVersion,
                        format!("{name} is not in the plugins directory ({asked})"),
                    )
                    .hint("check the component name, or give a git, zip or path source")));
                };
                let index = (self.index.locations.len() > 1).then(|| location.to_string());
                Ok(Ok(record
                    .newest_first()
                    .into_iter()
                    .map(|v| Offer {
                        version: Build::parse(&v.version),
                        maturity: v.maturity.and_then(Maturity::from_code),
                        release: v.release.clone(),
                        published: v.timecreated,
                        not_listed: (!v.supports(&xy)).then(|| {
                            format!(
                                "{name} {} ({}) supports Moodle {}, not {xy}",
                                v.version,
                                v.release.as_deref().unwrap_or("no release name"),
                                v.supported_list()
                            )
                        }),
                        ..Offer::new(
                            v.version.clone(),
                            SourcePick::Index {
                                version: Box::new(v.clone()),
                                locked: None,
                                index: index.clone(),
                            },
                        )
                    })
                    .collect()))
            }
        }
    }

    fn default_branch(
        &self,
        component: &Component,
        source: &SourceSpec,
    ) -> Result<Option<Offer<SourcePick>>, RealiseError> {
        let SourceSpec::Git {
            url,
            reference: None,
        } = source
        else {
            return Ok(None);
        };
        let refs = self
            .sources
            .git_refs(component.as_str(), url)
            .map_err(reject)?;
        let Some(head) = refs.head.clone() else {
            return Ok(None);
        };
        let branch = refs
            .heads
            .iter()
            .find(|(_, c)| **c == head)
            .map(|(b, _)| b.clone())
            .unwrap_or_else(|| "HEAD".into());
        Ok(Some(Offer::new(
            branch.clone(),
            SourcePick::Git {
                url: url.clone(),
                reference: branch,
                commit: head,
            },
        )))
    }

    fn locked(
        &self,
        component: &Component,
        locked: &LockedPlugin,
        request: &SourceSpec,
    ) -> Result<SourcePick, RealiseError> {
        let name = component.as_str();
        if let Some(s) =
            self.sources
                .substituted(name, &locked.source, &locked.manifest, locked.date)
        {
            return Ok(SourcePick::Stored(Box::new(s)));
        }
        match &locked.source {
            LockedSource::Git {
                url,
                reference,
                commit,
            } => self.git_pick(name, url, reference, commit),
            other => self.stored_or_refetched(
                name,
                other,
                &locked.manifest,
                locked.date,
                request,
                &locked.version,
            ),
        }
    }

    fn without_upstream(&self, pick: &SourcePick) -> bool {
        // A git package is otherwise always picked as its commit.
        matches!(pick, SourcePick::Stored(s) if matches!(s.locked, LockedSource::Git { .. }))
    }

    fn read(
        &self,
        component: &str,
        pick: &SourcePick,
        path: &str,
    ) -> Result<Result<Option<Vec<u8>>, String>, RealiseError> {
        let stored = |s: &StoredSource| match self.sources.read(component, s, path) {
            Ok(b) => Ok(Ok(b)),
            Err(e) if e.failure == SourceFailure::Refused => Ok(Err(e.message)),
            Err(e) => Err(reject(e)),
        };
        match pick {
            SourcePick::Stored(s) => stored(s),
            SourcePick::Index {
                version,
                locked,
                index,
            } => stored(&self.index_zip(component, version, locked.as_ref(), index.as_deref())?),
            SourcePick::Composer {
                package,
                repository,
                locked,
            } => stored(&self.composer_zip(component, repository, package, locked.as_ref())?),
            SourcePick::Git { commit, .. } => {
                let limit = self.sources.limits.source.file_bytes;
                Ok(match self.sources.git.file_at(commit, path, limit)? {
                    FileAt::File(b) => Ok(Some(b)),
                    FileAt::Missing | FileAt::NotAFile => Ok(None),
                    FileAt::Symlink => Err(format!(
                        "its {path} is a symlink; mcb reads {path} only as a regular file"
                    )),
                    FileAt::TooLarge(n) => Err(format!(
                        "its {path} is {n} bytes, over the file-bytes limit"
                    )),
                })
            }
        }
    }

    fn files_ending(&self, pick: &SourcePick, suffix: &str) -> Result<Vec<String>, RealiseError> {
        let from_manifest = |s: &StoredSource| {
            s.manifest
                .entries
                .iter()
                .filter(|e| e.path.ends_with(suffix))
                .map(|e| e.path.clone())
                .collect()
        };
        Ok(match pick {
            SourcePick::Stored(s) => from_manifest(s),
            SourcePick::Index {
                version,
                locked,
                index,
            } => from_manifest(&self.index_zip(
                "index",
                version,
                locked.as_ref(),
                index.as_deref(),
            )?),
            SourcePick::Composer {
                package,
                repository,
                locked,
            } => from_manifest(&self.composer_zip(
                "composer",
                repository,
                package,
                locked.as_ref(),
            )?),
            SourcePick::Git { commit, .. } => {
                self.sources
                    .git
                    .paths_ending(commit, suffix, self.sources.limits.source.files)?
            }
        })
    }

    fn blocked(&self, component: &str, pick: &SourcePick) -> Option<String> {
        let open: Vec<String> = self
            .advisories_of(pick)
            .iter()
            .filter(|f| !f.acknowledged)
            .map(|f| f.text(component))
            .collect();
        (!open.is_empty()).then(|| open.join("; "))
    }

    fn describe(&self, pick: &SourcePick) -> String {
        match pick {
            SourcePick::Stored(s) => s.locked.label(),
            SourcePick::Git {
                url,
                reference,
                commit,
            } => format!("git {url} {reference} ({})", &commit.as_str()[..12]),
            SourcePick::Index { version, .. } => format!("directory version {}", version.id),
            SourcePick::Composer { package, .. } => {
                format!("composer {} {}", package.name, package.version)
            }
        }
    }
}
