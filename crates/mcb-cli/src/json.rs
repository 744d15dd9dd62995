//! Every `--json` document mcb prints, one type per command (docs/json.md describes them).
//! They are the CLI's own: the libraries' types change as the code does, and a field
//! renamed there must not change what scripts read. Each document is built from a
//! command's outcome by one function here; `term::out_json` adds `format`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use mcb_store::{GitOid, LinkMode, ManifestHash, ObjectHash};
use serde::Serialize;

/// How a tree's files are laid out, as the JSON names it.
fn link_mode(mode: LinkMode) -> &'static str {
    match mode {
        LinkMode::Hardlink => "hardlink",
        LinkMode::Reflink => "reflink",
        LinkMode::Clone => "clone",
        LinkMode::Copy => "copy",
    }
}

/// A change between two generations (or a generation and a lock).
#[derive(Serialize)]
#[serde(tag = "change", rename_all = "snake_case")]
pub enum Change {
    Core {
        from: Option<String>,
        to: String,
        downgrade: bool,
    },
    Added {
        component: String,
        version: String,
        auto: bool,
    },
    Removed {
        component: String,
        version: String,
        auto: bool,
    },
    Upgraded {
        component: String,
        from: String,
        to: String,
    },
    Downgraded {
        component: String,
        from: String,
        to: String,
    },
    Rebuilt {
        component: String,
        version: String,
        from: String,
        to: String,
    },
    Source {
        component: String,
        from: String,
        to: String,
    },
    Link {
        path: String,
        from: Option<String>,
        to: Option<String>,
    },
}

fn changes(list: &[mcb_realise::Change]) -> Vec<Change> {
    use mcb_realise::Change as C;
    list.iter()
        .map(|c| match c.clone() {
            C::Core {
                from,
                to,
                downgrade,
            } => Change::Core {
                from,
                to,
                downgrade,
            },
            C::Added {
                component,
                version,
                auto,
            } => Change::Added {
                component,
                version,
                auto,
            },
            C::Removed {
                component,
                version,
                auto,
            } => Change::Removed {
                component,
                version,
                auto,
            },
            C::Upgraded {
                component,
                from,
                to,
            } => Change::Upgraded {
                component,
                from,
                to,
            },
            C::Downgraded {
                component,
                from,
                to,
            } => Change::Downgraded {
                component,
                from,
                to,
            },
            C::Rebuilt {
                component,
                version,
                from,
                to,
            } => Change::Rebuilt {
                component,
                version,
                from,
                to,
            },
            C::Source {
                component,
                from,
                to,
            } => Change::Source {
                component,
                from,
                to,
            },
            C::Link { path, from, to } => Change::Link { path, from, to },
        })
        .collect()
}

#[derive(Serialize)]
pub struct Moodle {
    release: String,
    build: String,
}

#[derive(Serialize)]
pub struct RealisedPlugin {
    version: String,
    release: Option<String>,
    install_path: String,
    source: String,
    auto: bool,
}

/// `realise`, `update`, `reconcile`.
#[derive(Serialize)]
pub struct Realised {
    site: String,
    /// `None` after `update --lock-only`.
    commit: Option<GitOid>,
    tree: GitOid,
    path: Option<PathBuf>,
    link: PathBuf,
    /// What the web server serves: `link`, or its `public` from Moodle 5.1.
    web_root: PathBuf,
    moodle: Moodle,
    plugins: BTreeMap<String, RealisedPlugin>,
    warnings: Vec<String>,
    changes: Vec<Change>,
    changed: bool,
    lock_written: bool,
    copied_files: usize,
    link_mode: &'static str,
}

fn realised_plugins(plugins: &[mcb_realise::RealisedPlugin]) -> BTreeMap<String, RealisedPlugin> {
    plugins
        .iter()
        .map(|p| {
            (
                p.component.clone(),
                RealisedPlugin {
                    version: p.version.clone(),
                    release: p.release.clone(),
                    install_path: p.install_path.clone(),
                    source: p.source.clone(),
                    auto: p.auto,
                },
            )
        })
        .collect()
}

pub fn realised(r: &mcb_realise::Realised) -> Realised {
    Realised {
        site: r.site.clone(),
        commit: Some(r.commit.clone()),
        tree: r.tree.clone(),
        path: Some(r.path.clone()),
        link: r.link.clone(),
        web_root: r.web_root.clone(),
        moodle: Moodle {
            release: r.moodle_release.clone(),
            build: r.moodle_build.clone(),
        },
        plugins: realised_plugins(&r.plugins),
        warnings: r.warnings.clone(),
        changes: changes(&r.changes),
        changed: r.changed,
        lock_written: r.lock_written,
        copied_files: r.copied_files,
        link_mode: link_mode(r.link_mode),
    }
}

/// `update --lock-only`: the realise document with nothing built.
pub fn locked(r: &mcb_realise::LockResolved, link: &Path) -> Realised {
    Realised {
        site: r.site.clone(),
        commit: None,
        tree: r.tree.clone(),
        path: None,
        link: link.to_path_buf(),
        web_root: mcb_realise::ops::realise::web_root(link, r.lock.moodle.branch),
        moodle: Moodle {
            release: r.lock.moodle.release.clone(),
            build: r.lock.moodle.build.clone(),
        },
        plugins: realised_plugins(&mcb_realise::RealisedPlugin::of_lock(&r.lock)),
        warnings: r.warnings.clone(),
        changes: changes(&r.changes),
        changed: false,
        lock_written: r.lock_written,
        copied_files: 0,
        link_mode: link_mode(LinkMode::Hardlink),
    }
}

#[derive(Serialize)]
pub struct PlannedChoice {
    component: String,
    version: String,
    release: Option<String>,
    source: String,
    auto: bool,
    why: String,
    passed_over: Vec<String>,
}

#[derive(Serialize)]
pub struct AdvisoryHit {
    id: String,
    component: String,
    version: String,
    package: String,
    title: String,
    cve: Option<String>,
    link: Option<String>,
    affected: String,
    malware: bool,
    revoked: bool,
    fixed_by_plan: bool,
    acknowledged: bool,
}

/// `plan` (and `add`, `remove`).
#[derive(Serialize)]
pub struct Plan {
    site: String,
    moodle_release: String,
    moodle_build: String,
    generation: Option<GitOid>,
    changes: Vec<Change>,
    lock_changes: Vec<Change>,
    plugins: Vec<PlannedChoice>,
    warnings: Vec<String>,
    advisories: Vec<AdvisoryHit>,
    pending_changes: bool,
    dangerous: bool,
}

pub fn plan(p: &mcb_realise::Pending) -> Plan {
    Plan {
        site: p.site.clone(),
        moodle_release: p.moodle_release.clone(),
        moodle_build: p.moodle_build.clone(),
        generation: p.generation.clone(),
        changes: changes(&p.changes),
        lock_changes: changes(&p.lock_changes),
        plugins: p
            .plugins
            .iter()
            .map(|c| PlannedChoice {
                component: c.component.clone(),
                version: c.version.clone(),
                release: c.release.clone(),
                source: c.source.clone(),
                auto: c.auto,
                why: c.why.clone(),
                passed_over: c.passed_over.clone(),
            })
            .collect(),
        warnings: p.warnings.clone(),
        advisories: p
            .advisories
            .iter()
            .map(|a| AdvisoryHit {
                id: a.advisory.id.clone(),
                component: a.component.clone(),
                version: a.version.clone(),
                package: a.advisory.package.clone(),
                title: a.advisory.title.clone(),
                cve: a.advisory.cve.clone(),
                link: a.advisory.link.clone(),
                affected: a.advisory.affected.clone(),
                malware: a.advisory.flag == mcb_catalog::AdvisoryFlag::Malware,
                revoked: a.advisory.flag == mcb_catalog::AdvisoryFlag::Revoked,
                fixed_by_plan: a.fixed_by_plan,
                acknowledged: a.acknowledged,
            })
            .collect(),
        pending_changes: p.is_pending(),
        dangerous: p.is_dangerous(),
    }
}

/// `outdated`.
#[derive(Serialize)]
pub struct Outdated {
    site: String,
    outdated: Vec<Change>,
}

pub fn outdated(p: &mcb_realise::Pending) -> Outdated {
    Outdated {
        site: p.site.clone(),
        outdated: changes(&p.lock_changes),
    }
}

#[derive(Serialize)]
pub struct Generation {
    number: usize,
    commit: GitOid,
    tree: GitOid,
    date: i64,
    title: String,
    moodle_release: Option<String>,
    changes: Vec<Change>,
    kept: bool,
    current: bool,
    test: Option<String>,
    /// When this store made it (seconds); null when not recorded.
    made: Option<i64>,
    /// When a result link was switched to it (seconds), oldest first.
    served: Vec<i64>,
}

/// `history`.
#[derive(Serialize)]
pub struct History {
    site: String,
    generations: Vec<Generation>,
}

pub fn history(site: &str, generations: &[mcb_realise::Generation]) -> History {
    History {
        site: site.to_string(),
        generations: generations
            .iter()
            .map(|g| Generation {
                number: g.number,
                commit: g.commit.clone(),
                tree: g.tree.clone(),
                date: g.date,
                title: g.title.clone(),
                moodle_release: g.moodle_release.clone(),
                changes: changes(&g.changes),
                kept: g.kept,
                current: g.current,
                test: g.test.clone(),
                made: g.made,
                served: g.served.clone(),
            })
            .collect(),
    }
}

#[derive(Serialize)]
pub struct Downgrade {
    component: String,
    from: String,
    to: String,
}

/// `rollback`.
#[derive(Serialize)]
pub struct RolledBack {
    site: String,
    to: GitOid,
    commit: GitOid,
    tree: GitOid,
    path: PathBuf,
    link: PathBuf,
    moodle_release: String,
    changes: Vec<Change>,
    downgrades: Vec<Downgrade>,
    from_git: bool,
    lock_written: bool,
    /// With --pin: what was pinned in the site file (`component version`).
    pub pinned: Vec<String>,
    /// What the next realise would change: the site file asks for another codebase.
    pub next_realise: Vec<String>,
}

pub fn rolled_back(r: &mcb_realise::RolledBack) -> RolledBack {
    RolledBack {
        site: r.site.clone(),
        to: r.to.clone(),
        commit: r.commit.clone(),
        tree: r.tree.clone(),
        path: r.path.clone(),
        link: r.link.clone(),
        moodle_release: r.moodle_release.clone(),
        changes: changes(&r.changes),
        downgrades: r
            .downgrades
            .iter()
            .map(|d| Downgrade {
                component: d.component.clone(),
                from: d.from.clone(),
                to: d.to.clone(),
            })
            .collect(),
        from_git: r.from_git,
        lock_written: r.lock_written,
        pinned: Vec::new(),
        next_realise: Vec::new(),
    }
}

#[derive(Serialize)]
pub struct SiteSummary {
    name: String,
    commit: GitOid,
    tree: GitOid,
    moodle_release: Option<String>,
    site_file: Option<PathBuf>,
    results: Vec<PathBuf>,
    unique_bytes: u64,
}

/// `sites`.
#[derive(Serialize)]
pub struct Sites {
    sites: Vec<SiteSummary>,
}

pub fn sites(list: &[mcb_realise::SiteSummary]) -> Sites {
    Sites {
        sites: list
            .iter()
            .map(|s| SiteSummary {
                name: s.name.clone(),
                commit: s.commit.clone(),
                tree: s.tree.clone(),
                moodle_release: s.moodle_release.clone(),
                site_file: s.site_file.clone(),
                results: s.results.clone(),
                unique_bytes: s.unique_bytes,
            })
            .collect(),
    }
}

/// `forget`.
#[derive(Serialize)]
pub struct Forgotten {
    site: String,
    commit: GitOid,
    dropped_results: Vec<PathBuf>,
}

pub fn forgotten(f: &mcb_realise::Forgotten) -> Forgotten {
    Forgotten {
        site: f.site.clone(),
        commit: f.commit.clone(),
        dropped_results: f.dropped_results.clone(),
    }
}

/// How an imported piece was recognised.
#[derive(Serialize)]
#[serde(tag = "matched", rename_all = "snake_case")]
pub enum Recognised {
    Store { source: String },
    Checkout { url: String, commit: String },
    Directory { version: String },
    Path { dir: String },
    Release { version: String },
}

#[derive(Serialize)]
pub struct ImportedPiece {
    component: String,
    install_path: String,
    version: String,
    #[serde(flatten)]
    recognised: Recognised,
    differs: Vec<String>,
    nearest: Option<String>,
}

fn imported_piece(p: &mcb_realise::ImportedPiece) -> ImportedPiece {
    use mcb_realise::Recognised as R;
    ImportedPiece {
        component: p.component.clone(),
        install_path: p.install_path.clone(),
        version: p.version.clone(),
        recognised: match p.recognised.clone() {
            R::Store { source } => Recognised::Store { source },
            R::Checkout { url, commit } => Recognised::Checkout { url, commit },
            R::Directory { version } => Recognised::Directory { version },
            R::Path { dir } => Recognised::Path { dir },
            R::Release { version } => Recognised::Release { version },
        },
        differs: p.differs.clone(),
        nearest: p.nearest.clone(),
    }
}

/// `import`.
#[derive(Serialize)]
pub struct Imported {
    site: String,
    site_file: PathBuf,
    lock_file: Option<PathBuf>,
    moodle_release: String,
    core: ImportedPiece,
    /// Add-ons core's own tree carries: they stay in core.
    in_core: Vec<String>,
    plugins: Vec<ImportedPiece>,
    /// Add-ons taken as they are: copied from the installation to beside the site file.
    copied: Vec<CopiedAddon>,
    links: BTreeMap<String, String>,
    left_out: Vec<String>,
    installation_tree: GitOid,
    lock_tree: Option<GitOid>,
    problems: Vec<String>,
    notes: Vec<String>,
    same_files: bool,
}

#[derive(Serialize)]
pub struct CopiedAddon {
    from: PathBuf,
    /// Relative to the site file, as its `path:` entry says.
    to: String,
}

pub fn imported(r: &mcb_realise::Imported) -> Imported {
    Imported {
        site: r.site.clone(),
        site_file: r.site_file.clone(),
        lock_file: r.lock_file.clone(),
        moodle_release: r.moodle_release.clone(),
        core: imported_piece(&r.core),
        in_core: r.in_core.clone(),
        plugins: r.plugins.iter().map(imported_piece).collect(),
        copied: r
            .copied
            .iter()
            .map(|(from, to)| CopiedAddon {
                from: from.clone(),
                to: to.clone(),
            })
            .collect(),
        links: r.links.clone(),
        left_out: r.left_out.clone(),
        installation_tree: r.installation_tree.clone(),
        lock_tree: r.lock_tree.clone(),
        problems: r.problems.clone(),
        notes: r.notes.clone(),
        same_files: r.same_files(),
    }
}

/// A plugin's readiness for a release.
#[derive(Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Readiness {
    Fits {
        version: String,
        release: Option<String>,
        warning: Option<String>,
    },
    Blocked {
        reasons: Vec<String>,
        last_supported: Option<String>,
    },
    InCore,
    Unknown {
        reason: String,
    },
    NotNeeded,
}

fn readiness(r: &mcb_realise::Readiness) -> Readiness {
    use mcb_realise::Readiness as R;
    match r.clone() {
        R::Fits {
            version,
            release,
            warning,
        } => Readiness::Fits {
            version,
            release,
            warning,
        },
        R::Blocked {
            reasons,
            last_supported,
        } => Readiness::Blocked {
            reasons,
            last_supported,
        },
        R::InCore => Readiness::InCore,
        R::Unknown { reason } => Readiness::Unknown { reason },
        R::NotNeeded => Readiness::NotNeeded,
    }
}

#[derive(Serialize)]
pub struct PluginReadiness {
    component: String,
    locked: Option<String>,
    source: &'static str,
    auto: bool,
    #[serde(flatten)]
    readiness: Readiness,
}

/// What a release needs of the host.
#[derive(Serialize)]
pub struct Requirements {
    php_min: String,
    php_below: Option<String>,
    databases: BTreeMap<String, String>,
    extensions: Vec<String>,
    from: &'static str,
}

/// `check --moodle X.Y`.
#[derive(Serialize)]
pub struct Check {
    site: String,
    target: String,
    core_release: Option<String>,
    core_build: Option<String>,
    plugins: Vec<PluginReadiness>,
    blocked: bool,
    unknown: bool,
    notes: Vec<String>,
    environment: Vec<String>,
    requirements: Option<Requirements>,
}

pub fn check(c: &mcb_realise::UpgradeCheck) -> Check {
    Check {
        site: c.site.clone(),
        target: c.target.clone(),
        core_release: c.core_release.clone(),
        core_build: c.core_build.clone(),
        plugins: c
            .plugins
            .iter()
            .map(|p| PluginReadiness {
                component: p.component.clone(),
                locked: p.locked.clone(),
                source: p.source,
                auto: p.auto,
                readiness: readiness(&p.readiness),
            })
            .collect(),
        blocked: c.blocked,
        unknown: c.unknown,
        notes: c.notes.clone(),
        environment: c.environment.clone(),
        requirements: c.requirements.as_ref().map(|r| Requirements {
            php_min: r.php_min.clone(),
            php_below: r.php_below.clone(),
            databases: r.databases.iter().cloned().collect(),
            extensions: r.extensions.clone(),
            from: r.from,
        }),
    }
}

#[derive(Serialize)]
pub struct MatrixCell {
    release: String,
    #[serde(flatten)]
    readiness: Readiness,
}

#[derive(Serialize)]
pub struct MatrixRow {
    component: String,
    auto: bool,
    locked: Option<String>,
    locked_release: Option<String>,
    cells: Vec<MatrixCell>,
}

/// Can the site go to a release: every plugin has a version for it, or these block it.
#[derive(Serialize)]
pub struct ReleaseSummary {
    pub release: String,
    pub ready: bool,
    pub blocking: Vec<String>,
    pub unknown: Vec<String>,
}

#[derive(Serialize)]
pub struct OutOfSupport {
    release: String,
    ended: String,
}

/// `check --all-branches`.
#[derive(Serialize)]
pub struct Matrix {
    site: String,
    date: String,
    core_now: Option<String>,
    releases: Vec<String>,
    /// Per release: ready or not, and what blocks it.
    summary: Vec<ReleaseSummary>,
    /// The first release after the site's own that is still supported (its readiness
    /// decides the exit code).
    next_supported: Option<String>,
    plugins: Vec<MatrixRow>,
    notes: BTreeMap<String, Vec<String>>,
    lts: Vec<String>,
    out_of_support: Vec<OutOfSupport>,
}

pub fn matrix(m: &mcb_realise::ReadinessMatrix) -> Matrix {
    Matrix {
        site: m.site.clone(),
        date: m.date.clone(),
        core_now: m.core_now.clone(),
        summary: m
            .summary()
            .into_iter()
            .map(|s| ReleaseSummary {
                release: s.release,
                ready: s.ready,
                blocking: s.blocking,
                unknown: s.unknown,
            })
            .collect(),
        next_supported: m.next_supported().map(str::to_string),
        releases: m.releases.clone(),
        plugins: m
            .plugins
            .iter()
            .map(|row| MatrixRow {
                component: row.component.clone(),
                auto: row.auto,
                locked: row.locked.clone(),
                locked_release: row.locked_release.clone(),
                cells: row
                    .cells
                    .iter()
                    .map(|c| MatrixCell {
                        release: c.release.clone(),
                        readiness: readiness(&c.readiness),
                    })
                    .collect(),
            })
            .collect(),
        notes: m.notes.clone(),
        lts: m.lts.clone(),
        out_of_support: m
            .out_of_support
            .iter()
            .map(|(release, ended)| OutOfSupport {
                release: release.clone(),
                ended: ended.clone(),
            })
            .collect(),
    }
}

#[derive(Serialize)]
pub struct Version {
    version: String,
    release: Option<String>,
    maturity: &'static str,
    supported_moodles: Vec<String>,
    download_url: String,
    id: u64,
}

/// One index's versions of a plugin.
#[derive(Serialize)]
pub struct Listed {
    directory: String,
    versions: Vec<Version>,
}

/// `info`: the first index that lists the plugin, and every index in `indexes`.
#[derive(Serialize)]
pub struct Info {
    component: String,
    name: Option<String>,
    directory: String,
    versions: Vec<Version>,
    indexes: Vec<Listed>,
}

/// A plugin version's maturity, as the plugins directory names it.
pub fn maturity_name(code: Option<i64>) -> &'static str {
    match code {
        Some(50) => "alpha",
        Some(100) => "beta",
        Some(150) => "rc",
        Some(200) | None => "stable",
        Some(_) => "unknown",
    }
}

fn versions_of(record: &mcb_catalog::PluginRecord) -> Vec<Version> {
    record
        .newest_first()
        .into_iter()
        .map(|v| Version {
            version: v.version.clone(),
            release: v.release.clone(),
            maturity: maturity_name(v.maturity),
            supported_moodles: v
                .supportedmoodles
                .iter()
                .map(|s| s.release.clone())
                .collect(),
            download_url: v.downloadurl.clone(),
            id: v.id,
        })
        .collect()
}

pub fn info(found: &[(String, mcb_catalog::PluginRecord)]) -> Info {
    let (directory, record) = &found[0];
    Info {
        component: record.component.clone(),
        name: record.name.clone(),
        directory: directory.clone(),
        versions: versions_of(record),
        indexes: found
            .iter()
            .map(|(d, r)| Listed {
                directory: d.clone(),
                versions: versions_of(r),
            })
            .collect(),
    }
}

/// `gc`.
#[derive(Serialize)]
pub struct Gc {
    dry_run: bool,
    generations: Vec<GitOid>,
    manifests: usize,
    objects: usize,
    leftovers: usize,
    files: u64,
    bytes: u64,
    git_bytes: u64,
    dead_links: Vec<PathBuf>,
    kept: BTreeMap<String, Vec<GitOid>>,
    kept_generations: usize,
    recovered_records: Vec<GitOid>,
    unknown_use: Vec<GitOid>,
    test_leftovers: usize,
    /// Kept generations whose laid-out tree was removed (laid out again on demand).
    retired: Vec<GitOid>,
    spared: Spared,
}

pub fn gc(r: &mcb_realise::GcOutcome, dry_run: bool) -> Gc {
    let s = &r.store;
    Gc {
        dry_run,
        generations: s.generations.clone(),
        manifests: s.manifests,
        objects: s.objects,
        leftovers: s.leftovers,
        files: s.files,
        bytes: s.bytes,
        git_bytes: r.git_bytes,
        dead_links: r.dead_links.clone(),
        kept: r.kept.clone(),
        kept_generations: s.kept_generations,
        recovered_records: r.recovered.clone(),
        unknown_use: s.unknown_use.clone(),
        test_leftovers: r.test_leftovers,
        retired: r.retired.clone(),
        spared: Spared {
            generations: s.spared_generations,
            manifests: s.spared_manifests,
            objects: s.spared_objects,
            bytes: s.spared_bytes,
        },
    }
}

/// What only gc's grace period kept.
#[derive(Serialize)]
pub struct Spared {
    generations: usize,
    manifests: usize,
    objects: usize,
    bytes: u64,
}

#[derive(Serialize)]
pub struct DamagePlace {
    generation: GitOid,
    path: String,
    sites: Vec<String>,
}

#[derive(Serialize)]
pub struct Corrupt {
    object: ObjectHash,
    paths: Vec<DamagePlace>,
}

#[derive(Serialize)]
pub struct ChangedGeneration {
    generation: GitOid,
    paths: Vec<String>,
    sites: Vec<String>,
}

#[derive(Serialize)]
pub struct Missing {
    manifest: ManifestHash,
    object: ObjectHash,
}

#[derive(Serialize)]
pub struct BadManifest {
    manifest: ManifestHash,
    error: String,
}

#[derive(Serialize)]
pub struct Mispaired {
    manifest: ManifestHash,
    path: String,
    problem: String,
}

#[derive(Serialize)]
pub struct BadGitObject {
    object: GitOid,
    generation: GitOid,
    path: String,
    problem: String,
}

#[derive(Serialize)]
pub struct CacheEntry {
    entry: PathBuf,
    problem: String,
}

/// `verify`.
#[derive(Serialize)]
pub struct Verify {
    objects: usize,
    manifests: usize,
    corrupt: Vec<Corrupt>,
    changed_generations: Vec<ChangedGeneration>,
    missing: Vec<Missing>,
    bad_manifests: Vec<BadManifest>,
    mispaired: Vec<Mispaired>,
    git_objects: Vec<BadGitObject>,
    cache: Vec<CacheEntry>,
    repaired_objects: usize,
    repaired_git_objects: usize,
    removed_cache_entries: usize,
    rebuilt_generations: Vec<GitOid>,
    unrepaired: Vec<String>,
    clean: bool,
}

pub fn verify(v: &mcb_realise::VerifyOutcome) -> Verify {
    let rep = &v.report;
    Verify {
        objects: rep.objects,
        manifests: rep.manifests,
        corrupt: v
            .object_paths
            .iter()
            .map(|(o, paths)| Corrupt {
                object: o.clone(),
                paths: paths
                    .iter()
                    .map(|p| DamagePlace {
                        generation: p.generation.clone(),
                        path: p.path.clone(),
                        sites: v.sites_of(&p.generation),
                    })
                    .collect(),
            })
            .collect(),
        changed_generations: v
            .generations
            .iter()
            .map(|(k, paths)| ChangedGeneration {
                generation: k.clone(),
                paths: paths.clone(),
                sites: v.sites_of(k),
            })
            .collect(),
        missing: rep
            .missing
            .iter()
            .map(|(m, o)| Missing {
                manifest: m.clone(),
                object: o.clone(),
            })
            .collect(),
        bad_manifests: rep
            .bad_manifests
            .iter()
            .map(|(m, e)| BadManifest {
                manifest: m.clone(),
                error: e.clone(),
            })
            .collect(),
        mispaired: rep
            .mispaired
            .iter()
            .map(|(m, path, problem)| Mispaired {
                manifest: m.clone(),
                path: path.clone(),
                problem: problem.clone(),
            })
            .collect(),
        git_objects: v
            .git_objects
            .iter()
            .map(|b| BadGitObject {
                object: b.id.clone(),
                generation: b.generation.clone(),
                path: b.path.clone(),
                problem: b.problem.clone(),
            })
            .collect(),
        cache: v
            .cache
            .iter()
            .map(|c| CacheEntry {
                entry: c.entry.clone(),
                problem: c.problem.clone(),
            })
            .collect(),
        repaired_objects: v.repaired_objects,
        repaired_git_objects: v.repaired_git_objects,
        removed_cache_entries: v.removed_cache_entries,
        rebuilt_generations: v.rebuilt_generations.clone(),
        unrepaired: v.unrepaired.clone(),
        clean: v.is_clean(),
    }
}

/// `verify --tree`.
#[derive(Serialize)]
pub struct TreeDrift {
    generation: String,
    found_by: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    site: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    number: Option<usize>,
    modified: Vec<String>,
    added: Vec<String>,
    removed: Vec<String>,
}

pub fn tree_drift(d: &mcb_realise::TreeDrift) -> TreeDrift {
    TreeDrift {
        generation: d.generation.clone(),
        found_by: d.found_by.clone(),
        site: d.site.clone(),
        number: d.number,
        modified: d.modified.clone(),
        added: d.added.clone(),
        removed: d.removed.clone(),
    }
}

#[derive(Serialize)]
pub struct Differing {
    component: String,
    locked: ManifestHash,
    rebuilt: Option<ManifestHash>,
}

/// `reproduce`.
#[derive(Serialize)]
pub struct Reproduce {
    site: String,
    expected_tree: GitOid,
    tree: GitOid,
    same: bool,
    differing: Vec<Differing>,
}

pub fn reproduce(r: &mcb_realise::Reproduction) -> Reproduce {
    Reproduce {
        site: r.site.clone(),
        expected_tree: r.expected_tree.clone(),
        tree: r.tree.clone(),
        same: r.same(),
        differing: r
            .differing
            .iter()
            .map(|(c, l, b)| Differing {
                component: c.clone(),
                locked: l.clone(),
                rebuilt: b.clone(),
            })
            .collect(),
    }
}

#[derive(Serialize)]
pub struct MoodleFailure {
    component: Option<String>,
    message: String,
    code: Option<String>,
}

#[derive(Serialize)]
pub struct Step {
    step: String,
    passed: bool,
    seconds: f64,
    detail: String,
    failures: Vec<MoodleFailure>,
}

/// `test`.
#[derive(Serialize)]
pub struct Test {
    site: String,
    commit: GitOid,
    tree: GitOid,
    php: String,
    database: TestDatabase,
    steps: Vec<Step>,
    passed: bool,
    snapshot_used: bool,
    kept: Vec<PathBuf>,
    notes: Vec<String>,
}

/// The database a test ran on.
#[derive(Serialize)]
pub struct TestDatabase {
    /// `postgresql` or `mariadb`.
    engine: String,
    version: String,
}

pub fn test(r: &mcb_sitetest::TestReport) -> Test {
    Test {
        site: r.site.clone(),
        commit: r.commit.clone(),
        tree: r.tree.clone(),
        php: r.php.clone(),
        database: TestDatabase {
            engine: r.database.0.clone(),
            version: r.database.1.clone(),
        },
        steps: r
            .steps
            .iter()
            .map(|s| Step {
                step: s.step.clone(),
                passed: s.passed,
                seconds: s.seconds,
                detail: s.detail.clone(),
                failures: s
                    .failures
                    .iter()
                    .map(|f| MoodleFailure {
                        component: f.component.clone(),
                        message: f.message.clone(),
                        code: f.code.clone(),
                    })
                    .collect(),
            })
            .collect(),
        passed: r.passed,
        snapshot_used: r.snapshot_used,
        kept: r.kept.clone(),
        notes: r.notes.clone(),
    }
}

/// `push`.
#[derive(Serialize)]
pub struct Pushed {
    site: String,
    remote: String,
    commit: GitOid,
    updated: bool,
    tags: usize,
}

pub fn pushed(p: &mcb_deploy::Pushed) -> Pushed {
    Pushed {
        site: p.site.clone(),
        remote: p.remote.clone(),
        commit: p.commit.clone(),
        updated: p.updated,
        tags: p.tags,
    }
}

/// `deploy`.
#[derive(Serialize)]
pub struct Deployed {
    site: String,
    commit: GitOid,
    release: PathBuf,
    current: PathBuf,
    /// What the web server serves: `current`, or `current/public` from Moodle 5.1.
    web_root: PathBuf,
    previous: Option<PathBuf>,
    link: &'static str,
    copied: usize,
    drifted: Vec<String>,
    removed: Vec<PathBuf>,
    test: Option<&'static str>,
}

pub fn deployed(d: &mcb_deploy::Deployed) -> Deployed {
    Deployed {
        site: d.site.clone(),
        commit: d.commit.clone(),
        release: d.release.clone(),
        current: d.current.clone(),
        web_root: d.web_root.clone(),
        previous: d.previous.clone(),
        link: link_mode(d.link),
        copied: d.copied,
        drifted: d.drifted.clone(),
        removed: d.removed.clone(),
        test: d.test.map(|t| t.word()),
    }
}

/// One round of `reconcile --watch`: `realised` or `error`.
#[derive(Serialize)]
pub struct Round {
    round: u64,
    next_in_secs: u64,
    ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    realised: Option<Realised>,
    /// With `--apply`: the live site brought to the generation.
    #[serde(skip_serializing_if = "Option::is_none")]
    applied: Option<ApplyLine>,
    /// With `--apply`: why the newest generation was not applied.
    #[serde(skip_serializing_if = "Option::is_none")]
    held: Option<String>,
    /// With `--push-cache`: what was published to the binary cache.
    #[serde(skip_serializing_if = "Option::is_none")]
    pushed: Option<CachePush>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<serde_json::Value>,
}

pub fn round(
    n: u64,
    next_in_secs: u64,
    outcome: Result<&mcb_reconcile::Reconciled, serde_json::Value>,
) -> Round {
    let (done, error) = match outcome {
        Ok(r) => (Some(r), None),
        Err(e) => (None, Some(e)),
    };
    Round {
        round: n,
        next_in_secs,
        ok: done.is_some(),
        realised: done.map(|d| realised(&d.realised)),
        applied: done.and_then(|d| d.applied.as_ref()).map(applied),
        held: done.and_then(|d| d.held.clone()),
        pushed: done.and_then(|d| d.pushed.as_ref()).map(cache_push),
        error,
    }
}

/// `status`.
#[derive(Serialize)]
pub struct Status {
    site: String,
    current: PathBuf,
    serves: String,
    serves_number: Option<usize>,
    newest: Option<String>,
    newest_number: Option<usize>,
    changed_files: Vec<String>,
    /// How the database is reached: engine, host, name (never the user's password).
    database: StatusDatabase,
    core_db: Option<String>,
    core_code: Option<String>,
    upgrade_pending: bool,
    to_upgrade: Vec<ComponentVersions>,
    database_ahead: Vec<ComponentVersions>,
    orphaned: Vec<ComponentVersions>,
    maintenance: bool,
    /// An apply that was cut off: the generation it applied and the step it was at.
    unfinished_apply: Option<UnfinishedApply>,
    in_sync: bool,
}

#[derive(Serialize)]
pub struct UnfinishedApply {
    generation: String,
    step: String,
}

#[derive(Serialize)]
pub struct StatusDatabase {
    dbtype: String,
    host: String,
    port: String,
    name: String,
}

#[derive(Serialize)]
pub struct ComponentVersions {
    component: String,
    database: Option<String>,
    code: Option<String>,
}

pub fn status(s: &mcb_apply::SiteStatus) -> Status {
    let versions = |list: &[(String, mcb_apply::ComponentState)]| {
        list.iter()
            .map(|(c, v)| ComponentVersions {
                component: c.clone(),
                database: v.db.clone(),
                code: v.disk.clone(),
            })
            .collect()
    };
    Status {
        site: s.site.clone(),
        current: s.current.clone(),
        serves: s.serves.clone(),
        serves_number: s.serves_number,
        newest: s.newest.clone(),
        newest_number: s.newest_number,
        changed_files: s.changed_files.clone(),
        database: StatusDatabase {
            dbtype: s.database.dbtype.clone(),
            host: s.database.host.clone(),
            port: s.database.port.clone(),
            name: s.database.name.clone(),
        },
        core_db: s.core_db.clone(),
        core_code: s.core_code.clone(),
        upgrade_pending: s.upgrade_pending,
        to_upgrade: versions(&s.to_upgrade),
        database_ahead: versions(&s.database_ahead),
        orphaned: versions(&s.orphaned),
        maintenance: s.maintenance,
        unfinished_apply: s
            .unfinished_apply
            .as_ref()
            .map(|(generation, step)| UnfinishedApply {
                generation: generation.clone(),
                step: step.clone(),
            }),
        in_sync: s.in_sync(),
    }
}

/// `apply`: one line per site.
#[derive(Serialize)]
pub struct ApplyLine {
    site: String,
    ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    generation: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    number: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    from: Option<String>,
    unchanged: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    recovered: Option<String>,
    steps: Vec<ApplyStep>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<serde_json::Value>,
}

#[derive(Serialize)]
pub struct ApplyStep {
    step: String,
    passed: bool,
    seconds: f64,
    detail: String,
}

pub fn applied(a: &mcb_apply::Applied) -> ApplyLine {
    ApplyLine {
        site: a.site.clone(),
        ok: true,
        generation: Some(a.generation.to_string()),
        number: a.number,
        from: a.from.clone(),
        unchanged: a.unchanged,
        recovered: a.recovered.clone(),
        steps: a
            .steps
            .iter()
            .map(|s| ApplyStep {
                step: s.step.clone(),
                passed: s.passed,
                seconds: s.seconds,
                detail: s.detail.clone(),
            })
            .collect(),
        error: None,
    }
}

/// A site whose apply failed, named by its site file.
pub fn apply_failed(site: &std::path::Path, error: &serde_json::Value) -> ApplyLine {
    ApplyLine {
        site: site.display().to_string(),
        ok: false,
        generation: None,
        number: None,
        from: None,
        unchanged: false,
        recovered: None,
        steps: Vec::new(),
        error: Some(error.clone()),
    }
}

/// `archive`.
#[derive(Serialize)]
pub struct Archive {
    site: String,
    path: std::path::PathBuf,
    bytes: u64,
    generations: Vec<usize>,
    sources: Vec<mcb_realise::ArchivedSource>,
    warnings: Vec<String>,
}

pub fn archive(r: &mcb_realise::Audited) -> Archive {
    Archive {
        site: r.site.clone(),
        path: std::path::absolute(&r.out).unwrap_or_else(|_| r.out.clone()),
        bytes: r.bytes,
        generations: r.generations.clone(),
        sources: r.sources.clone(),
        warnings: r.warnings.clone(),
    }
}

/// `cache push`.
#[derive(Serialize)]
pub struct CachePush {
    cache: String,
    sites: Vec<String>,
    key: String,
    packages: usize,
    present: usize,
    /// Generation records written (what each pushed lock resolved to).
    generations: usize,
    files: usize,
    bytes: u64,
}

pub fn cache_push(r: &mcb_realise::CachePushed) -> CachePush {
    CachePush {
        cache: r.cache.clone(),
        sites: r.sites.clone(),
        key: r.key.clone(),
        packages: r.pushed.packages,
        present: r.pushed.present,
        generations: r.pushed.locks,
        files: r.pushed.objects,
        bytes: r.pushed.bytes,
    }
}

/// `mcb cache gc --json`.
#[derive(Serialize)]
pub struct CacheGc {
    cache: String,
    dry_run: bool,
    /// Lock records kept (recent, or a site's newest).
    kept_records: usize,
    /// Deleted (or, in a dry run, to be deleted).
    records: usize,
    manifests: usize,
    files: usize,
    bytes: u64,
    /// Keys younger than the grace period, spared.
    spared: usize,
}

pub fn cache_gc(r: &mcb_substitute::CacheGc) -> CacheGc {
    CacheGc {
        cache: r.cache.clone(),
        dry_run: r.dry_run,
        kept_records: r.kept_records,
        records: r.records,
        manifests: r.manifests,
        files: r.objects,
        bytes: r.bytes,
        spared: r.spared,
    }
}
