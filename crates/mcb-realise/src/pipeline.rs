//! `realise`: the whole pipeline, in the order that keeps a failed run harmless. Nothing
//! the user sees (branch, `result`, lock) changes until the new codebase is complete.

use std::path::{Path, PathBuf};

use mcb_catalog::{Http, Limits};
use mcb_config::{
    LOCK_FORMAT, Lock, LockedMoodle, LockedPlugin, LockedSource, PluginRequest, SiteFile,
    SourceSpec,
};
use mcb_git::{CommitInfo, GitStore, Graft, RemoteRefs};
use mcb_moodle::release::parse_release_tag;
use mcb_moodle::{Build, Component, CoreLayout, CoreVersion, MoodleSpec, PluginVersion};
use mcb_resolve::{Candidate, Fit, Problem, Rule, SelectedPlugin, check_site, choose, fit};
use mcb_store::{Entry, GitOid, LinkMode, LockMode, ObjectHash, Store, StoreError};

use crate::directory::Directory;
use crate::error::RealiseError;
use crate::publish;
use crate::report::{Reporter, Stage};
use crate::sources::{Fetched, Sources};

/// How to realise.
#[derive(Debug, Clone)]
pub struct Options {
    pub store: PathBuf,
    /// Use only the store and cached metadata.
    pub offline: bool,
    /// Where the `result` link goes (default: `result` beside the site file).
    pub out: Option<PathBuf>,
    /// The plugins directory to use whatever the site file says (`MCB_DIRECTORY`).
    pub directory: Option<String>,
    /// Revalidate cached metadata (the directory list) whatever its age.
    pub refresh: bool,
    /// A bearer token for the plugins directory's host (`MCB_MARKETPLACE_TOKEN`).
    pub token: Option<String>,
    /// Bounds on sizes and network time (`MCB_LIMITS`).
    pub limits: Limits,
    /// How generations are laid out.
    pub link: LinkMode,
    /// Take over a site name another site file owns.
    pub force: bool,
}

impl Options {
    pub fn new(store: PathBuf) -> Options {
        Options {
            store,
            offline: false,
            out: None,
            directory: None,
            refresh: false,
            token: None,
            limits: Limits::default(),
            link: LinkMode::Hardlink,
            force: false,
        }
    }

    /// The directory a site uses: the override, else the site file's, else the public one.
    pub fn directory_for(&self, site: &SiteFile) -> String {
        self.directory
            .clone()
            .or_else(|| site.directory.clone())
            .unwrap_or_else(|| mcb_catalog::DEFAULT_DIRECTORY.to_string())
    }

    pub(crate) fn http(&self, directory: &str) -> Http {
        let http = Http::new(self.offline, self.limits.http);
        match &self.token {
            Some(t) => http.with_token_for(directory, t.clone()),
            None => http,
        }
    }

    pub(crate) fn cache_policy(&self) -> mcb_catalog::CachePolicy {
        mcb_catalog::CachePolicy {
            refresh: self.refresh,
            ..Default::default()
        }
    }
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct RealisedPlugin {
    pub component: String,
    pub version: String,
    pub release: Option<String>,
    pub install_path: String,
    pub source: String,
    pub auto: bool,
}

/// What a realise produced.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Realised {
    pub site: String,
    pub commit: GitOid,
    pub tree: GitOid,
    /// The generation directory in the store.
    pub path: PathBuf,
    /// The `result` link that now points at it.
    pub link: PathBuf,
    pub moodle_release: String,
    pub moodle_build: String,
    pub plugins: Vec<RealisedPlugin>,
    pub warnings: Vec<String>,
    /// A new commit or generation was made (false: the site was already realised).
    pub changed: bool,
    /// The lock file was written.
    pub lock_written: bool,
    /// Files copied rather than hardlinked.
    pub copied_files: usize,
    /// How the generation's files are laid out.
    pub link_mode: LinkMode,
}

/// Core, resolved and in the store.
struct CoreResolved {
    fetched: Fetched,
    version: CoreVersion,
    public: bool,
}

/// One plugin, chosen and in the store.
struct ChosenPlugin {
    component: Component,
    request: Option<PluginRequest>,
    fetched: Fetched,
    info: PluginVersion,
}

pub fn realise(
    site_path: &Path,
    opts: &Options,
    reporter: &dyn Reporter,
) -> Result<Realised, RealiseError> {
    let site = SiteFile::load(site_path)?;
    let old_lock = Lock::load(&site.lock_path())?;
    realise_site(&site, old_lock, opts, reporter, true).map(|(r, _)| r)
}

/// Realises `site` from `old_lock` (when given). With `write_lock` false the lock file is
/// left alone (reproduce); the lock the run arrived at is returned either way.
pub(crate) fn realise_site(
    site: &SiteFile,
    old_lock: Option<Lock>,
    opts: &Options,
    reporter: &dyn Reporter,
    write_lock: bool,
) -> Result<(Realised, Lock), RealiseError> {
    let site = site.clone();
    let store = Store::open(&opts.store)?;
    let _store_lock = store.lock(LockMode::Shared, || {
        reporter.warn("waiting for the store lock: `mcb gc` is running on this store")
    })?;
    // One run per site at a time: a second waits rather than racing for the branch.
    let _site_lock =
        store.lock_named(&format!("site-{}", site.name), LockMode::Exclusive, || {
            reporter.warn(&format!(
                "waiting: another mcb is realising site {}",
                site.name
            ))
        })?;
    let git = crate::sources::open_git(&store)?;
    // Under the site lock, a ref lock file on the site's branch is a killed run's leftover.
    git.clear_stale_ref_locks(&format!("heads/{}", site.name));
    git.clear_stale_packed_refs_lock(std::time::Duration::from_secs(10));
    let link_path = match &opts.out {
        Some(p) => std::path::absolute(p).unwrap_or_else(|_| p.clone()),
        None => site.dir().join("result"),
    };
    if write_lock {
        check_owner(&store, &site, opts.force, reporter)?;
    }

    if let Some(lock) = &old_lock
        && let Some(done) =
            already_realised(&site, lock, &store, &git, &link_path, opts.link, write_lock)?
    {
        if write_lock {
            record_owner(&store, &site)?;
        }
        return Ok((done, lock.clone()));
    }

    let directory_url = opts.directory_for(&site);
    let http = opts.http(&directory_url);
    let sources = Sources::new(
        &store,
        &git,
        &http,
        &site,
        opts.offline,
        opts.limits,
        opts.cache_policy(),
    );
    let directory = Directory::new(directory_url, &http, Some(&store), opts.cache_policy());
    let mut warnings: Vec<String> = Vec::new();
    let warn = |w: String, warnings: &mut Vec<String>| {
        reporter.warn(&w);
        warnings.push(w);
    };

    // Core.
    reporter.stage(Stage::Resolve, "moodle");
    let core = resolve_core(&sources, &site, old_lock.as_ref())?;
    let mut layout = core_layout(&sources, &core)?;

    // Plugins.
    let mut chosen: Vec<ChosenPlugin> = Vec::new();
    let mut problems: Vec<Problem> = Vec::new();
    // Two at a time: the fetches overlap, and no upstream host sees more than two.
    let resolved: Vec<Result<PluginOutcome, RealiseError>> = fetch_pool().install(|| {
        use rayon::prelude::*;
        site.plugins
            .par_iter()
            .map(|req| {
                reporter.stage(Stage::Fetch, req.component.as_str());
                resolve_plugin(&sources, &directory, &core.version, req, old_lock.as_ref())
            })
            .collect()
    });
    for (req, outcome) in site.plugins.iter().zip(resolved) {
        match outcome? {
            Ok((fetched, info, warning)) => {
                if let Some(w) = warning {
                    warn(w.to_string(), &mut warnings);
                }
                chosen.push(ChosenPlugin {
                    component: req.component.clone(),
                    request: Some(req.clone()),
                    fetched,
                    info,
                });
            }
            Err(p) => problems.push(p),
        }
    }
    if problems.is_empty() {
        add_dependencies(
            &sources,
            &directory,
            &core.version,
            &layout,
            old_lock.as_ref(),
            &mut chosen,
            &mut problems,
            &mut |w| warn(w, &mut warnings),
        )?;
    }
    if !problems.is_empty() {
        return Err(RealiseError::Unsatisfiable(problems));
    }

    // Subplugin types declared by the site's plugins, parents before children.
    add_plugin_subplugins(&sources, &mut layout, &chosen)?;

    let selected: Vec<SelectedPlugin> = chosen
        .iter()
        .map(|c| SelectedPlugin {
            component: c.component.clone(),
            info: c.info.clone(),
            auto: c.request.is_none(),
        })
        .collect();
    let core_plugin_version = |component: &str| -> Option<Build> {
        let c = Component::parse(component).ok()?;
        let dir = layout.install_path(&c).ok()?;
        let bytes = sources
            .read("moodle", &core.fetched, &format!("{dir}/version.php"))
            .ok()??;
        PluginVersion::parse(&String::from_utf8_lossy(&bytes))
            .ok()?
            .version
    };
    let check = check_site(&core.version, &layout, &selected, &core_plugin_version)
        .map_err(RealiseError::Unsatisfiable)?;
    for w in &check.warnings {
        warn(w.to_string(), &mut warnings);
    }

    // Every source is in the store: record their manifests after one sync.
    let mut batch: Vec<&Fetched> = vec![&core.fetched];
    batch.extend(chosen.iter().map(|c| &c.fetched));
    sources.record(&batch)?;
    for note in sources.take_notes() {
        warn(note, &mut warnings);
    }

    // Compose.
    reporter.stage(Stage::Compose, &site.name);
    let grafts: Vec<Graft> = chosen
        .iter()
        .map(|c| Graft {
            path: check.paths[c.component.as_str()].clone(),
            tree: c.fetched.manifest.tree.clone(),
        })
        .collect();
    let tree = git.compose(&core.fetched.manifest.tree, &grafts)?;

    // Materialise before anything points at it.
    reporter.stage(Stage::Materialise, tree.as_str());
    let files = codebase_files(&core.fetched, &chosen, &check.paths);
    reporter.total(files.len() as u64);
    let mut uses: Vec<mcb_store::ManifestHash> = batch.iter().map(|f| f.hash.clone()).collect();
    uses.sort();
    uses.dedup();
    let generation = materialise_repairing(
        &store,
        &git,
        &tree,
        &files,
        &uses,
        opts.link,
        reporter,
        &mut |w| warn(w, &mut warnings),
    )?;
    if generation.cross_device {
        warn(
            format!(
                "the store and {} are on different filesystems: files were copied, not hardlinked",
                generation.path.display()
            ),
            &mut warnings,
        );
    }

    // The lock, then the commit it describes.
    let mut lock = Lock {
        format: LOCK_FORMAT,
        site: site.name.clone(),
        moodle: LockedMoodle {
            spec: site.moodle.spec.as_ref().map(|s| s.to_string()),
            request: site.moodle.source.clone(),
            source: core.fetched.locked.clone(),
            build: core.version.build.to_string(),
            release: core.version.release.clone(),
            branch: core.version.branch.0,
            manifest: core.fetched.hash.clone(),
            date: core.fetched.date,
        },
        plugins: chosen
            .iter()
            .map(|c| LockedPlugin {
                component: c.component.to_string(),
                request: c.request.as_ref().map(|r| r.source.clone()),
                pin: c.request.as_ref().and_then(|r| r.version.clone()),
                auto: c.request.is_none(),
                version: c.info.version.map(|v| v.to_string()).unwrap_or_default(),
                release: c.info.release.clone(),
                source: c.fetched.locked.clone(),
                install_path: check.paths[c.component.as_str()].clone(),
                manifest: c.fetched.hash.clone(),
                date: c.fetched.date,
            })
            .collect(),
        tree: tree.clone(),
        commit: None,
        date: 0,
    };
    lock.date = std::iter::once(lock.moodle.date)
        .chain(lock.plugins.iter().map(|p| p.date))
        .max()
        .unwrap_or(0);

    reporter.stage(Stage::Commit, &site.name);
    let head = git.branch_head(&site.name)?;
    let head_tree = match &head {
        Some(h) => Some(git.commit_tree_id(h)?),
        None => None,
    };
    let (commit, new_commit) = match &head {
        Some(h) if head_tree.as_ref() == Some(&tree) => (h.clone(), false),
        _ => {
            let info = CommitInfo {
                message: commit_message(&lock),
                time: lock.date,
                parent: head.clone(),
            };
            (git.write_commit(&tree, &info)?, true)
        }
    };
    lock.commit = Some(commit.clone());

    // Publish: every destination prepared first, then branch, lock and link in that order.
    let lock_text = (write_lock && old_lock.as_ref() != Some(&lock)).then(|| lock.to_text());
    let lock_path = site.lock_path();
    let mut prepared = publish::prepare(
        lock_text.as_deref().map(|t| (lock_path.as_path(), t)),
        &link_path,
        &generation.path,
    )?;
    // Everything the branch, the lock and the link will name is durable before they move.
    store.sync()?;
    if new_commit {
        git.set_branch(&site.name, &commit, head.as_ref())?;
    }
    let lock_written = prepared.writes_lock();
    prepared.switch_lock()?;
    prepared.switch_link()?;
    store.add_result_root(&link_path)?;
    if write_lock {
        record_owner(&store, &site)?;
    }

    let realised = Realised {
        site: site.name.clone(),
        commit,
        tree,
        path: generation.path,
        link: link_path,
        moodle_release: core.version.release.clone(),
        moodle_build: core.version.build.to_string(),
        plugins: realised_plugins(&lock),
        warnings,
        changed: new_commit || generation.created,
        lock_written,
        copied_files: generation.copied,
        link_mode: generation.mode,
    };
    Ok((realised, lock))
}

/// Materialises a generation; objects found edited in place or missing are restored from
/// git first (it holds every blob), and an existing generation found changed is rebuilt.
#[allow(clippy::too_many_arguments)]
fn materialise_repairing(
    store: &Store,
    git: &GitStore,
    tree: &GitOid,
    files: &[(String, &Entry)],
    uses: &[mcb_store::ManifestHash],
    mode: LinkMode,
    reporter: &dyn Reporter,
    warn: &mut dyn FnMut(String),
) -> Result<mcb_store::Materialised, RealiseError> {
    let generation = match store.materialise(tree, files, uses, mode, &|| reporter.advance()) {
        Err(StoreError::DamagedObjects { tampered, missing }) => {
            let all: Vec<(ObjectHash, bool)> = tampered.iter().chain(&missing).cloned().collect();
            repair_objects(store, git, files, &all)?;
            let mut said = Vec::new();
            if !tampered.is_empty() {
                said.push(format!(
                    "{} store object{} had been edited through a hardlinked tree",
                    tampered.len(),
                    if tampered.len() == 1 { "" } else { "s" }
                ));
            }
            if !missing.is_empty() {
                said.push(format!(
                    "{} store object{} {} missing",
                    missing.len(),
                    if missing.len() == 1 { "" } else { "s" },
                    if missing.len() == 1 { "was" } else { "were" }
                ));
            }
            warn(format!(
                "{}; restored from git. `mcb verify` names every tree that still holds damage, and `mcb verify --repair` rebuilds them",
                said.join(" and ")
            ));
            store.materialise(tree, files, uses, mode, &|| reporter.advance())?
        }
        other => other?,
    };
    if !generation.repaired.is_empty() {
        let shown: Vec<&str> = generation
            .repaired
            .iter()
            .take(5)
            .map(String::as_str)
            .collect();
        warn(format!(
            "the codebase {} had been changed in place ({}{}); it was rebuilt from the store, and the change is gone",
            tree,
            shown.join(", "),
            if generation.repaired.len() > 5 {
                format!(" and {} more", generation.repaired.len() - 5)
            } else {
                String::new()
            }
        ));
    }
    Ok(generation)
}

/// Refuses to let a second site file use a name another site file owns: both would move
/// one branch and overwrite each other's codebase forever.
fn check_owner(
    store: &Store,
    site: &SiteFile,
    force: bool,
    reporter: &dyn Reporter,
) -> Result<(), RealiseError> {
    let me = canonical(&site.path);
    let Some(owner) = store.site_owner(&site.name) else {
        return Ok(());
    };
    if owner == me {
        return Ok(());
    }
    if force {
        reporter.warn(&format!(
            "site {} now belongs to {} (it belonged to {})",
            site.name,
            me.display(),
            owner.display()
        ));
        return Ok(());
    }
    if !owner.exists() {
        reporter.warn(&format!(
            "site {} belonged to {}, which is gone; {} takes it over",
            site.name,
            owner.display(),
            me.display()
        ));
        return Ok(());
    }
    Err(RealiseError::Owner {
        message: format!(
            "site name '{}' belongs to {}, not to {}: two site files with one name would overwrite each other's codebase",
            site.name,
            owner.display(),
            me.display()
        ),
        hint: "give this site file another `name`, or pass --force to move the site to this file"
            .into(),
    })
}

fn record_owner(store: &Store, site: &SiteFile) -> Result<(), RealiseError> {
    let me = canonical(&site.path);
    if store.site_owner(&site.name).as_deref() != Some(me.as_path()) {
        store.set_site_owner(&site.name, &me)?;
    }
    Ok(())
}

fn canonical(p: &Path) -> PathBuf {
    std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf())
}

/// The pool plugin sources are fetched on: two threads, so at most two requests reach one
/// host at once whatever the machine's size.
fn fetch_pool() -> &'static rayon::ThreadPool {
    static POOL: std::sync::OnceLock<rayon::ThreadPool> = std::sync::OnceLock::new();
    POOL.get_or_init(|| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(2)
            .thread_name(|i| format!("mcb-fetch-{i}"))
            .build()
            .expect("a thread pool of two starts")
    })
}

/// The no-op case: the lock answers the site file, the branch is at the lock's commit,
/// whose tree is the lock's tree, and that generation is in the store, sound. Nothing is
/// read but the lock, two git objects and the generation's directory entries.
fn already_realised(
    site: &SiteFile,
    lock: &Lock,
    store: &Store,
    git: &GitStore,
    link_path: &Path,
    mode: LinkMode,
    link: bool,
) -> Result<Option<Realised>, RealiseError> {
    if lock.site != site.name || !lock.moodle_fits(site) {
        return Ok(None);
    }
    if matches!(site.moodle.source, SourceSpec::Path { .. }) {
        return Ok(None);
    }
    for req in &site.plugins {
        if matches!(req.source, SourceSpec::Path { .. }) {
            return Ok(None);
        }
        match lock.plugin(req.component.as_str()) {
            Some(l) if Lock::plugin_fits(l, req) => {}
            _ => return Ok(None),
        }
    }
    if lock
        .plugins
        .iter()
        .any(|p| !p.auto && site.plugin(&p.component).is_none())
    {
        return Ok(None);
    }
    let Some(commit) = &lock.commit else {
        return Ok(None);
    };
    if git.branch_head(&site.name)?.as_ref() != Some(commit) {
        return Ok(None);
    }
    // The lock's `tree` is a claim: the commit on the branch says which tree it is.
    if !git.has_commit(commit) || git.commit_tree_id(commit)? != lock.tree {
        return Ok(None);
    }
    match store.check_generation(&lock.tree)? {
        Some(damaged) if damaged.is_empty() => {}
        _ => return Ok(None),
    }
    if store
        .generation_record(&lock.tree)
        .is_some_and(|r| r.mode != mode)
    {
        return Ok(None);
    }
    let generation = store.generation_path(&lock.tree);
    if link {
        let mut prepared = publish::prepare(None, link_path, &generation)?;
        prepared.switch_link()?;
        store.add_result_root(link_path)?;
    }
    Ok(Some(Realised {
        site: site.name.clone(),
        commit: commit.clone(),
        tree: lock.tree.clone(),
        path: generation,
        link: link_path.to_path_buf(),
        moodle_release: lock.moodle.release.clone(),
        moodle_build: lock.moodle.build.clone(),
        plugins: realised_plugins(lock),
        warnings: Vec::new(),
        changed: false,
        lock_written: false,
        copied_files: 0,
        link_mode: mode,
    }))
}

fn repair_objects(
    store: &Store,
    git: &GitStore,
    files: &[(String, &Entry)],
    objects: &[(ObjectHash, bool)],
) -> Result<(), RealiseError> {
    for (hash, exec) in objects {
        let entry = files
            .iter()
            .map(|(_, e)| *e)
            .find(|e| e.object() == hash && e.executable() == *exec)
            .expect("a damaged object belongs to one of the files laid out");
        let bytes = git.read_blob(&entry.oid)?;
        store.repair_object(hash, *exec, &bytes)?;
    }
    Ok(())
}

fn source_label(s: &LockedSource) -> String {
    match s {
        LockedSource::Git {
            url,
            reference,
            commit,
        } => {
            format!("git {url} {reference} ({})", &commit.as_str()[..12])
        }
        LockedSource::Zip { location, blake3 } => {
            format!("zip {location} (blake3 {})", &blake3.as_str()[..12])
        }
        LockedSource::Path { dir } => format!("path {dir}"),
        LockedSource::Directory { id, .. } => format!("directory version {id}"),
    }
}

fn realised_plugins(lock: &Lock) -> Vec<RealisedPlugin> {
    lock.plugins
        .iter()
        .map(|p| RealisedPlugin {
            component: p.component.clone(),
            version: p.version.clone(),
            release: p.release.clone(),
            install_path: p.install_path.clone(),
            source: source_label(&p.source),
            auto: p.auto,
        })
        .collect()
}

/// Everything in the message comes from the lock, so the same lock on the same parent
/// always gives the same commit.
fn commit_message(lock: &Lock) -> String {
    let mut m = format!(
        "{}: Moodle {} with {} plugin{}\n\nmoodle {} {}\n",
        lock.site,
        lock.moodle.release,
        lock.plugins.len(),
        if lock.plugins.len() == 1 { "" } else { "s" },
        lock.moodle.build,
        source_label(&lock.moodle.source)
    );
    for p in &lock.plugins {
        m.push_str(&format!(
            "{} {} {}{} {}\n",
            p.component,
            p.version,
            p.install_path,
            if p.auto { " (auto)" } else { "" },
            source_label(&p.source)
        ));
    }
    // The whole lock (but its own commit id), so `mcb reproduce COMMIT` can rebuild it.
    m.push_str(LOCK_MARKER);
    m.push_str(
        &Lock {
            commit: None,
            ..lock.clone()
        }
        .to_text(),
    );
    m
}

/// Where the lock starts in a site commit's message.
pub(crate) const LOCK_MARKER: &str = "\n--- site.lock ---\n";

/// The codebase as files: core, then each plugin at its install path, where a deeper
/// graft replaces whatever the layer around it has at its path (a subplugin inside its
/// parent plugin, any plugin inside core) — exactly as composition edits the git tree,
/// so the materialised tree and the committed tree agree.
fn codebase_files<'a>(
    core: &'a Fetched,
    chosen: &'a [ChosenPlugin],
    paths: &std::collections::BTreeMap<String, String>,
) -> Vec<(String, &'a Entry)> {
    let grafts: Vec<&str> = paths.values().map(String::as_str).collect();
    // Is `file` (a codebase path) inside or on the way to a graft deeper than `base`?
    let replaced = |base: &str, file: &str| {
        grafts.iter().any(|g| {
            let deeper = base.is_empty()
                || (g.len() > base.len()
                    && g.starts_with(base)
                    && g.as_bytes()[base.len()] == b'/');
            deeper
                && (file == *g
                    || (file.starts_with(g) && file.as_bytes().get(g.len()) == Some(&b'/'))
                    || (g.starts_with(file) && g.as_bytes().get(file.len()) == Some(&b'/')))
        })
    };
    let mut files: Vec<(String, &Entry)> = core
        .manifest
        .entries
        .iter()
        .filter(|e| !replaced("", &e.path))
        .map(|e| (e.path.clone(), e))
        .collect();
    for c in chosen {
        let base = &paths[c.component.as_str()];
        files.extend(
            c.fetched
                .manifest
                .entries
                .iter()
                .map(|e| (format!("{base}/{}", e.path), e))
                .filter(|(p, _)| !replaced(base, p)),
        );
    }
    files
}

fn resolve_core(
    sources: &Sources,
    site: &SiteFile,
    lock: Option<&Lock>,
) -> Result<CoreResolved, RealiseError> {
    let spec = site.moodle.spec.as_ref();
    let fetched = match lock.filter(|l| l.moodle_fits(site)) {
        Some(l) => match sources.stored(&l.moodle.source, &l.moodle.manifest, l.moodle.date)? {
            Some(f) => f,
            None => refetch_locked(sources, "moodle", &l.moodle.source, &site.moodle.source)?,
        },
        None => match &site.moodle.source {
            SourceSpec::Git { url, .. } => {
                let refs = sources.git_refs("moodle", url)?;
                let spec = spec.expect("a git core always has a spec (checked by mcb-config)");
                let (name, commit) = pick_core_ref(sources, &refs, spec, url)?;
                sources.git_commit("moodle", url, &name, &commit)?
            }
            SourceSpec::Zip { location, hash } => {
                sources.zip("moodle", location, hash.as_deref(), None)?
            }
            SourceSpec::Path { dir } => sources.path("moodle", dir)?,
            SourceSpec::Directory => unreachable!("mcb-config never gives core a directory source"),
        },
    };
    let public = fetched.manifest.get("public/version.php").is_some();
    let version_php = match sources.read("moodle", &fetched, "version.php")? {
        Some(b) => b,
        None => sources
            .read("moodle", &fetched, "public/version.php")?
            .ok_or_else(|| {
                RealiseError::source(
                    "moodle",
                    "the source has no version.php: it is not a Moodle codebase",
                )
            })?,
    };
    let version = CoreVersion::parse(&String::from_utf8_lossy(&version_php))
        .map_err(|e| RealiseError::source("moodle", format!("core {e}")))?;
    if let Some(spec) = spec {
        check_core_spec(spec, &version)?;
    }
    Ok(CoreResolved {
        fetched,
        version,
        public,
    })
}

/// A core source must hold the release the site file asks for.
fn check_core_spec(spec: &MoodleSpec, core: &CoreVersion) -> Result<(), RealiseError> {
    let Some(want) = spec.release() else {
        return Ok(());
    };
    let have = core.major_release();
    let mismatch = || {
        RealiseError::source(
            "moodle",
            format!(
                "the site file asks for Moodle {spec}, but the source holds {}",
                core.release
            ),
        )
    };
    if have != want {
        return Err(mismatch());
    }
    if let MoodleSpec::Exact(r, patch) = spec {
        let text = core.release.split([' ', '+']).next().unwrap_or("");
        let ok = text == format!("{r}.{patch}") || (*patch == 0 && text == r.to_string());
        if !ok {
            return Err(mismatch());
        }
    }
    Ok(())
}

pub(crate) fn pick_core_ref(
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

/// Fetches a locked source again (into an empty store, say), checking it is unchanged.
fn refetch_locked(
    sources: &Sources,
    component: &str,
    locked: &LockedSource,
    request: &SourceSpec,
) -> Result<Fetched, RealiseError> {
    match locked {
        LockedSource::Git {
            url,
            reference,
            commit,
        } => sources.git_commit(component, url, reference, commit),
        LockedSource::Zip { location, blake3 } => {
            let pinned = match request {
                SourceSpec::Zip { hash, .. } => hash.as_deref(),
                _ => None,
            };
            sources.zip(component, location, pinned, Some(blake3))
        }
        LockedSource::Path { dir } => sources.path(component, dir),
        LockedSource::Directory {
            id,
            url,
            md5,
            blake3,
        } => sources.directory_zip(
            component,
            &crate::directory::locked_version(*id, url, md5),
            Some(blake3),
        ),
    }
}

fn core_layout(sources: &Sources, core: &CoreResolved) -> Result<CoreLayout, RealiseError> {
    let rel = |p: &str| mcb_moodle::layout::web_root_path(core.public, p);
    let components = sources
        .read("moodle", &core.fetched, &rel("lib/components.json"))?
        .ok_or_else(|| {
            RealiseError::source(
                "moodle",
                format!("the core has no {}", rel("lib/components.json")),
            )
        })?;
    let plugins = sources.read("moodle", &core.fetched, &rel("lib/plugins.json"))?;
    let mut layout = CoreLayout::new(
        &String::from_utf8_lossy(&components),
        plugins.as_deref().map(String::from_utf8_lossy).as_deref(),
        core.public,
    )
    .map_err(|e| RealiseError::source("moodle", e.to_string()))?;
    let web_prefix = if core.public { "public/" } else { "" };
    for e in &core.fetched.manifest.entries {
        let Some(dir) = e.path.strip_suffix("/db/subplugins.json") else {
            continue;
        };
        let Some(web_dir) = dir.strip_prefix(web_prefix) else {
            continue;
        };
        let json = sources
            .read("moodle", &core.fetched, &e.path)?
            .unwrap_or_default();
        layout
            .add_subplugins(web_dir, &e.path, &String::from_utf8_lossy(&json))
            .map_err(|err| RealiseError::source("moodle", err.to_string()))?;
    }
    Ok(layout)
}

fn add_plugin_subplugins(
    sources: &Sources,
    layout: &mut CoreLayout,
    chosen: &[ChosenPlugin],
) -> Result<(), RealiseError> {
    let mut waiting: Vec<&ChosenPlugin> = chosen
        .iter()
        .filter(|c| c.fetched.manifest.get("db/subplugins.json").is_some())
        .collect();
    loop {
        let before = waiting.len();
        let mut still = Vec::new();
        for c in waiting {
            match layout.web_path(&c.component) {
                Ok(dir) => {
                    let json = sources
                        .read(c.component.as_str(), &c.fetched, "db/subplugins.json")?
                        .unwrap_or_default();
                    layout
                        .add_plugin_subplugins(
                            &dir,
                            &format!("{}/db/subplugins.json", c.component),
                            &String::from_utf8_lossy(&json),
                        )
                        .map_err(|e| {
                            RealiseError::Unsatisfiable(vec![
                                Problem::new(c.component.as_str(), Rule::UnknownType, e.to_string())
                                    .hint("a plugin may declare only new subplugin types, inside its own directory"),
                            ])
                        })?;
                }
                Err(_) => still.push(c),
            }
        }
        waiting = still;
        if waiting.is_empty() || waiting.len() == before {
            return Ok(());
        }
    }
}

pub(crate) fn read_plugin_version(
    sources: &Sources,
    component: &str,
    fetched: &Fetched,
) -> Result<Result<PluginVersion, Problem>, RealiseError> {
    if fetched
        .manifest
        .get("version.php")
        .is_some_and(|e| e.kind == mcb_store::EntryKind::Symlink)
    {
        return Ok(Err(Problem::new(
            component,
            Rule::VersionPhp,
            "its version.php is a symlink; mcb reads version.php only as a regular file",
        )));
    }
    match sources.read(component, fetched, "version.php")? {
        None => Ok(Err(Problem::new(
            component,
            Rule::VersionPhp,
            "the source has no version.php at its root",
        )
        .hint(
            "a plugin source must hold the plugin's own directory (version.php at the top)",
        ))),
        Some(bytes) => Ok(PluginVersion::parse(&String::from_utf8_lossy(&bytes))
            .map_err(|e| Problem::new(component, Rule::VersionPhp, e.to_string()))),
    }
}

pub(crate) type PluginOutcome =
    Result<(Fetched, PluginVersion, Option<mcb_resolve::Warning>), Problem>;

fn check_pin(component: &str, pin: Option<&str>, info: &PluginVersion) -> Result<(), Problem> {
    let Some(p) = pin else { return Ok(()) };
    if info.version.is_some() && info.version == Build::parse(p) {
        return Ok(());
    }
    Err(Problem::new(
        component,
        Rule::Pin,
        format!(
            "the site file pins version {p}, but the source holds {}",
            info.version
                .map(|v| v.to_string())
                .unwrap_or_else(|| "no version".into())
        ),
    ))
}

pub(crate) fn resolve_plugin(
    sources: &Sources,
    directory: &Directory,
    core: &CoreVersion,
    req: &PluginRequest,
    lock: Option<&Lock>,
) -> Result<PluginOutcome, RealiseError> {
    let name = req.component.as_str();
    let pin = req.version.as_deref();
    let finish = |fetched: Fetched, warning| -> Result<PluginOutcome, RealiseError> {
        Ok(match read_plugin_version(sources, name, &fetched)? {
            Ok(info) => check_pin(name, pin, &info).map(|()| (fetched, info, warning)),
            Err(p) => Err(p),
        })
    };
    if let Some(l) = lock.and_then(|l| l.plugin(name))
        && Lock::plugin_fits(l, req)
        && !matches!(req.source, SourceSpec::Path { .. })
    {
        let fetched = match sources.stored(&l.source, &l.manifest, l.date)? {
            Some(f) => f,
            None => refetch_locked(sources, name, &l.source, &req.source)?,
        };
        return finish(fetched, None);
    }
    match &req.source {
        SourceSpec::Git {
            url,
            reference: Some(r),
        } => {
            let refs = sources.git_refs(name, url)?;
            let (resolved, commit) = refs.resolve(sources.git, r)?.ok_or_else(|| {
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
            finish(sources.git_commit(name, url, &resolved, &commit)?, None)
        }
        SourceSpec::Git {
            url,
            reference: None,
        } => {
            let refs = sources.git_refs(name, url)?;
            let mut tags: Vec<(&String, &GitOid)> = refs.tags.iter().collect();
            tags.sort_by(|a, b| mcb_moodle::natural_cmp(b.0, a.0));
            let mut candidates = Vec::new();
            for (tag, commit) in tags {
                let Some(bytes) = sources.git.read_file(commit, "version.php")? else {
                    continue;
                };
                if let Ok(info) = PluginVersion::parse(&String::from_utf8_lossy(&bytes)) {
                    candidates.push(Candidate {
                        label: tag.clone(),
                        info,
                        payload: commit.clone(),
                    });
                }
            }
            match choose(name, core, candidates, pin) {
                Ok((c, warning)) => finish(
                    sources.git_commit(name, url, &c.label, &c.payload)?,
                    warning,
                ),
                Err(problem) if pin.is_some() => Ok(Err(problem)),
                Err(problem) => {
                    // No tag fits: the default branch, if it fits.
                    let Some(head) = refs.head.clone() else {
                        return Ok(Err(problem));
                    };
                    let branch = refs
                        .heads
                        .iter()
                        .find(|(_, c)| **c == head)
                        .map(|(b, _)| b.clone())
                        .unwrap_or_else(|| "HEAD".into());
                    let fetched = sources.git_commit(name, url, &branch, &head)?;
                    match read_plugin_version(sources, name, &fetched)? {
                        Ok(info) => match fit(core, &info, &format!("{name} on branch {branch}")) {
                            Fit::Blocked(_, why) => Ok(Err(problem.fact(why))),
                            _ => {
                                let w = mcb_resolve::Warning {
                                    component: name.to_string(),
                                    message: format!(
                                        "no tag fits this Moodle; using the default branch {branch}"
                                    ),
                                };
                                Ok(Ok((fetched, info, Some(w))))
                            }
                        },
                        Err(p) => Ok(Err(problem.fact(p.facts.join("; ")))),
                    }
                }
            }
        }
        SourceSpec::Zip { location, hash } => {
            finish(sources.zip(name, location, hash.as_deref(), None)?, None)
        }
        SourceSpec::Path { dir } => finish(sources.path(name, dir)?, None),
        SourceSpec::Directory => crate::directory::resolve(sources, directory, core, name, pin),
    }
}

/// Adds, from the plugins directory, every dependency the chosen plugins declare that the
/// site does not list and core does not ship, transitively. Each is marked `auto`.
#[allow(clippy::too_many_arguments)]
fn add_dependencies(
    sources: &Sources,
    directory: &Directory,
    core: &CoreVersion,
    layout: &CoreLayout,
    lock: Option<&Lock>,
    chosen: &mut Vec<ChosenPlugin>,
    problems: &mut Vec<Problem>,
    warn: &mut dyn FnMut(String),
) -> Result<(), RealiseError> {
    let mut queue: Vec<(String, Option<Build>, String)> = Vec::new();
    let enqueue = |c: &ChosenPlugin, queue: &mut Vec<(String, Option<Build>, String)>| {
        let who = match c.info.version {
            Some(v) => format!("{} {v}", c.component),
            None => c.component.to_string(),
        };
        for (dep, min) in &c.info.dependencies {
            queue.push((dep.clone(), *min, who.clone()));
        }
    };
    for c in chosen.iter() {
        enqueue(c, &mut queue);
    }
    let xy = core.major_release();
    while let Some((dep, min, needed_by)) = queue.pop() {
        if chosen.iter().any(|c| c.component.as_str() == dep) || layout.is_standard(&dep) {
            continue;
        }
        let Ok(component) = Component::parse(&dep) else {
            problems.push(Problem::new(
                needed_by.clone(),
                Rule::MissingDependency,
                format!("{needed_by} depends on '{dep}', which is not a component name"),
            ));
            continue;
        };
        let need = match min {
            Some(v) => format!("{dep} ≥ {v}"),
            None => dep.clone(),
        };
        let locked = lock
            .and_then(|l| l.plugin(&dep))
            .filter(|l| l.auto)
            .filter(|l| min.is_none_or(|m| Build::parse(&l.version).is_some_and(|v| v >= m)));
        let outcome = match locked {
            Some(l) => {
                let fetched = match sources.stored(&l.source, &l.manifest, l.date)? {
                    Some(f) => f,
                    None => refetch_locked(sources, &dep, &l.source, &SourceSpec::Directory)?,
                };
                read_plugin_version(sources, &dep, &fetched)?.map(|info| (fetched, info, None))
            }
            None => crate::directory::resolve(sources, directory, core, &dep, None)?,
        };
        match outcome {
            Ok((fetched, info, warning)) => {
                if let (Some(m), Some(have)) = (min, info.version)
                    && have < m
                {
                    problems.push(
                        Problem::new(
                            needed_by.split(' ').next().unwrap_or(&needed_by),
                            Rule::DependencyTooOld,
                            format!("{needed_by} requires {need}"),
                        )
                        .fact(format!("the newest {dep} for Moodle {xy} is {have}"))
                        .hint(format!(
                            "use an older {} or a newer Moodle",
                            needed_by.split(' ').next().unwrap_or(&needed_by)
                        )),
                    );
                    continue;
                }
                if let Some(w) = warning {
                    warn(w.to_string());
                }
                let c = ChosenPlugin {
                    component,
                    request: None,
                    fetched,
                    info,
                };
                enqueue(&c, &mut queue);
                chosen.push(c);
            }
            Err(p) => {
                let mut problem = Problem::new(
                    needed_by.split(' ').next().unwrap_or(&needed_by),
                    Rule::MissingDependency,
                    format!("{needed_by} requires {need}, which the site file does not list"),
                );
                for f in p.facts {
                    problem = problem.fact(f);
                }
                problems.push(problem.hint(format!(
                    "add \"{dep}\" to the site file with a source that fits"
                )));
            }
        }
    }
    chosen.sort_by(|a, b| a.component.cmp(&b.component));
    Ok(())
}
