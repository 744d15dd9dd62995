//! `import`: an existing Moodle installation read back into a site file and a lock. Core's
//! `version.php`, `lib/components.json`, `lib/plugins.json` and every `db/subplugins.json`
//! say where plugins live and which ship with core; every other plugin directory is an
//! add-on. Each piece (core, each add-on) is matched by its git tree id: against every
//! source a site in this store was built from, against its own git checkout, against the
//! plugins directory's zip of the version its `version.php` names; what matches nothing
//! becomes a `path:` entry, reported with the files that differ from the nearest known
//! version. `config.php` and data stay out (a `config.php` symlink becomes a `links:`
//! entry). The lock is then written by resolving the new site file, and its tree compared
//! with the installation's.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use mcb_catalog::{SourceFailure, unpack_dir_except};
use mcb_config::{Lock, LockedSource};
use mcb_git::SourceFile;
use mcb_moodle::{Component, CoreLayout, CoreVersion, PluginVersion};
use mcb_store::{GitOid, Manifest};

use crate::context::RunContext;
use crate::error::RealiseError;
use crate::options::RunOptions;
use crate::report::{Reporter, Stage};
use crate::stage::commit::lock_in_commit;

/// How far back each site's history is searched for known sources.
const KNOWN_GENERATIONS: usize = 50;

/// Files of an installation that are not code: never read, never stored (`config.php`
/// holds the database password; a data directory holds the site's users' files).
const LEFT_OUT: &[&str] = &["config.php", "public/config.php", "moodledata"];

/// What a Moodle data directory holds: a directory with two or more of these inside is
/// one, whatever its name.
const DATAROOT_MARKS: &[&str] = &[
    "filedir",
    "temp",
    "cache",
    "localcache",
    "sessions",
    "trashdir",
    "muc",
    "lang",
];

/// Is `dir` a Moodle data directory?
fn is_dataroot(dir: &Path) -> bool {
    DATAROOT_MARKS
        .iter()
        .filter(|m| dir.join(m).is_dir())
        .count()
        >= 2
}

/// What of the installation at `root` is not code and is left out before anything is read:
/// `config.php` (a symlink to it kept apart, as the `links:` entry it becomes), `moodledata`
/// and any other data directory at the top (or under `public/`).
fn left_out(root: &Path) -> (Vec<String>, BTreeMap<String, String>) {
    let mut out = Vec::new();
    let mut links = BTreeMap::new();
    for rel in LEFT_OUT {
        let path = root.join(rel);
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        if meta.file_type().is_symlink()
            && let Ok(target) = std::fs::read_link(&path)
            && target.is_absolute()
            && rel.ends_with("config.php")
        {
            links.insert(rel.to_string(), target.to_string_lossy().into_owned());
        }
        out.push(rel.to_string());
    }
    for base in ["", "public"] {
        let Ok(rd) = std::fs::read_dir(root.join(base)) else {
            continue;
        };
        for e in rd.flatten() {
            let rel = if base.is_empty() {
                e.file_name().to_string_lossy().into_owned()
            } else {
                format!("{base}/{}", e.file_name().to_string_lossy())
            };
            if e.file_type().is_ok_and(|t| t.is_dir())
                && !out.contains(&rel)
                && is_dataroot(&e.path())
            {
                out.push(rel);
            }
        }
    }
    out.sort();
    (out, links)
}

/// How a piece of the installation was recognised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recognised {
    /// The same files as a source a site in this store was built from.
    Store { source: String },
    /// A git checkout at a commit whose tree is exactly these files.
    Checkout { url: String, commit: String },
    /// The plugins directory's zip of this version.
    Directory { version: String },
    /// Nothing known holds these files: the directory itself is the source.
    Path { dir: String },
    /// Core matched nothing known: the official release of its version is assumed.
    Release { version: String },
}

/// One piece of the installation.
#[derive(Debug, Clone)]
pub struct ImportedPiece {
    pub component: String,
    pub install_path: String,
    pub version: String,
    pub recognised: Recognised,
    /// Against the nearest known version, when it matched nothing: `M path`, `A path`,
    /// `D path`.
    pub differs: Vec<String>,
    /// What the nearest known version was.
    pub nearest: Option<String>,
}

/// What `import` wrote and found.
#[derive(Debug, Clone)]
pub struct Imported {
    pub site: String,
    pub site_file: PathBuf,
    /// The lock, when the site file could be resolved.
    pub lock_file: Option<PathBuf>,
    pub moodle_release: String,
    pub core: ImportedPiece,
    /// Add-ons core's own tree carries (a fork's plugins): they stay in core.
    pub in_core: Vec<String>,
    pub plugins: Vec<ImportedPiece>,
    /// Add-ons taken as they are, copied beside the site file: their directory in the
    /// installation, and their copy's path relative to the site file.
    pub copied: Vec<(PathBuf, String)>,
    pub links: BTreeMap<String, String>,
    /// What stayed out (config.php, data directories).
    pub left_out: Vec<String>,
    /// The git tree of the installation's code.
    pub installation_tree: GitOid,
    /// The tree the new lock builds.
    pub lock_tree: Option<GitOid>,
    /// What cannot be reproduced as it is, and why.
    pub problems: Vec<String>,
    /// What the administrator has to do that mcb does not (config.php), each said once.
    pub notes: Vec<String>,
}

impl Imported {
    /// Does the site file build exactly the installation's files?
    pub fn same_files(&self) -> bool {
        self.lock_tree.as_ref() == Some(&self.installation_tree)
    }
}

/// The installation could not be read as a Moodle codebase: a source that cannot be read.
fn import_error(dir: &Path, message: String) -> RealiseError {
    RealiseError::Source(mcb_catalog::SourceError::new(
        "moodle",
        SourceFailure::Refused,
        format!("{}: {message}", dir.display()),
    ))
}

fn read(dir: &Path, rel: &str) -> Option<String> {
    std::fs::read_to_string(dir.join(rel)).ok()
}

/// A source known to this store: how a site file asks for it, as an entry.
#[derive(Debug, Clone)]
struct Known {
    label: String,
    /// The entry's value in a site file.
    entry: String,
    manifest: Manifest,
}

fn q(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// A location as the site file at `base` wrote it, made to work from anywhere: a URL as
/// it is, a relative path made absolute.
fn anywhere(base: Option<&Path>, written: &str) -> String {
    match base {
        Some(b) => mcb_config::Location::of(b, written).for_git(),
        None => written.to_string(),
    }
}

fn plugin_entry(source: &LockedSource, version: &str, base: Option<&Path>) -> String {
    match source {
        LockedSource::Git { url, reference, .. } => {
            format!("(git: {}, ref: {})", q(&anywhere(base, url)), q(reference))
        }
        LockedSource::Zip { location, blake3 } => format!(
            "(zip: {}, hash: {})",
            q(&anywhere(base, location)),
            q(&format!("blake3:{blake3}"))
        ),
        LockedSource::Path { dir } => format!("(path: {})", q(&anywhere(base, dir))),
        LockedSource::Directory { .. } => format!("(version: {})", q(version)),
        LockedSource::Composer {
            package, version, ..
        } => format!("(composer: {}, version: {})", q(package), q(version)),
    }
}

fn core_entry(lock: &Lock, base: Option<&Path>) -> String {
    let spec = lock
        .moodle
        .spec
        .as_deref()
        .map(|s| format!("version: {}, ", q(s)))
        .unwrap_or_default();
    match &lock.moodle.source {
        LockedSource::Git {
            url,
            reference,
            commit,
        } => {
            let url = anywhere(base, url);
            match mcb_moodle::release::parse_release_tag(reference) {
                Some((r, p)) => format!("(version: {}, git: {})", q(&format!("{r}.{p}")), q(&url)),
                None => format!(
                    "(version: {}, git: {})",
                    q(&format!("commit:{commit}")),
                    q(&url)
                ),
            }
        }
        LockedSource::Zip { location, blake3 } => format!(
            "({spec}zip: {}, hash: {})",
            q(&anywhere(base, location)),
            q(&format!("blake3:{blake3}"))
        ),
        LockedSource::Path { dir } => format!("({spec}path: {})", q(&anywhere(base, dir))),
        LockedSource::Directory { .. } | LockedSource::Composer { .. } => "()".into(),
    }
}

/// Every source the sites of this store were built from, by the git tree of its files:
/// component → tree → how to ask for it. `moodle` is core.
fn known_sources(
    ctx: &RunContext,
) -> Result<HashMap<String, HashMap<GitOid, Known>>, RealiseError> {
    let mut out: HashMap<String, HashMap<GitOid, Known>> = HashMap::new();
    for (site, head) in ctx.git.site_branches()? {
        // Relative locations are relative to the site file that wrote them.
        let owner = ctx.store.site_owner(&site);
        let base = owner.as_deref().and_then(Path::parent);
        for (commit, _, _) in ctx.git.first_parent_log(&head, KNOWN_GENERATIONS)? {
            let Ok(Some(lock)) = lock_in_commit(&ctx.git, &commit) else {
                continue;
            };
            if let Ok(m) = ctx.store.read_manifest(&lock.moodle.manifest) {
                out.entry("moodle".into())
                    .or_default()
                    .entry(m.tree.clone())
                    .or_insert_with(|| Known {
                        label: lock.moodle.source.label(),
                        entry: core_entry(&lock, base),
                        manifest: m,
                    });
            }
            for p in &lock.plugins {
                if let Ok(m) = ctx.store.read_manifest(&p.manifest) {
                    out.entry(p.component.clone())
                        .or_default()
                        .entry(m.tree.clone())
                        .or_insert_with(|| Known {
                            label: format!("{} {}", p.version, p.source.label()),
                            entry: plugin_entry(&p.source, &p.version, base),
                            manifest: m,
                        });
                }
            }
        }
    }
    Ok(out)
}

/// A git checkout at `dir` whose HEAD holds exactly `tree`: its remote (or the checkout
/// itself), commit and the tags at that commit.
fn checkout(dir: &Path, tree: &GitOid) -> Option<(String, String, Vec<String>)> {
    let c = mcb_git::program::checkout_at(dir).filter(|c| c.tree == tree.as_str())?;
    let url = c.origin.unwrap_or_else(|| dir.display().to_string());
    Some((url, c.commit, c.tags))
}

/// Core's entry for a checkout at `commit` of `url`: its release tag exactly when one points
/// there (`"4.5.5"`), else the commit.
fn core_checkout_entry(url: &str, commit: &str, tags: &[String]) -> String {
    let release = tags
        .iter()
        .filter_map(|t| mcb_moodle::release::parse_release_tag(t))
        .max_by_key(|(r, p)| (*r, *p));
    match release {
        Some((r, p)) => format!("(version: {}, git: {})", q(&format!("{r}.{p}")), q(url)),
        None => format!(
            "(version: {}, git: {})",
            q(&format!("commit:{commit}")),
            q(url)
        ),
    }
}

/// The files of `ours` against `theirs`: modified, added and removed.
fn differences(ours: &Manifest, theirs: &Manifest) -> Vec<String> {
    let a: BTreeMap<&str, &mcb_store::Entry> =
        ours.entries.iter().map(|e| (e.path.as_str(), e)).collect();
    let b: BTreeMap<&str, &mcb_store::Entry> = theirs
        .entries
        .iter()
        .map(|e| (e.path.as_str(), e))
        .collect();
    let mut out = Vec::new();
    for (p, e) in &a {
        match b.get(p) {
            None => out.push(format!("A {p}")),
            Some(t) if t.oid != e.oid || t.kind != e.kind => out.push(format!("M {p}")),
            _ => {}
        }
    }
    for p in b.keys() {
        if !a.contains_key(p) {
            out.push(format!("D {p}"));
        }
    }
    out
}

/// The known manifest sharing the most files with `ours`.
fn nearest<'a>(ours: &Manifest, known: impl Iterator<Item = &'a Known>) -> Option<&'a Known> {
    let mine: std::collections::HashSet<(&str, &GitOid)> = ours
        .entries
        .iter()
        .map(|e| (e.path.as_str(), &e.oid))
        .collect();
    known.max_by_key(|k| {
        k.manifest
            .entries
            .iter()
            .filter(|e| mine.contains(&(e.path.as_str(), &e.oid)))
            .count()
    })
}

/// What an installation holds, as read before anything is stored.
struct Installation {
    root: PathBuf,
    core: CoreVersion,
    /// Add-on component → its install path, relative to the root.
    addons: Vec<(String, String)>,
    left_out: Vec<String>,
    links: BTreeMap<String, String>,
}

/// Reads where an installation's pieces are: core's version, its layout, its add-ons,
/// what stays out.
fn read_installation(dir: &Path) -> Result<Installation, RealiseError> {
    let root = std::fs::canonicalize(dir).map_err(|e| RealiseError::Filesystem {
        message: format!("cannot read the installation {}", dir.display()),
        source: e,
    })?;
    let public = !root.join("version.php").is_file() && root.join("public/version.php").is_file();
    let web = if public {
        root.join("public")
    } else {
        root.clone()
    };
    let core_php = read(&web, "version.php").ok_or_else(|| {
        import_error(
            &root,
            "has no version.php: it is not a Moodle codebase".into(),
        )
    })?;
    let core = CoreVersion::parse(&core_php)
        .map_err(|e| import_error(&root.join("version.php"), e.to_string()))?;
    // Moodle 5.1 keeps these at the codebase root; older releases in the web root (the same).
    let lib_file = |name: &str| {
        read(&root, &format!("lib/{name}")).or_else(|| read(&web, &format!("lib/{name}")))
    };
    let components = lib_file("components.json")
        .ok_or_else(|| import_error(&root, "has no lib/components.json".into()))?;
    // Before 4.4 the standard plugins are only in core's plugin manager.
    let plugins = lib_file("plugins.json").or_else(|| {
        read(&web, "lib/classes/plugin_manager.php")
            .and_then(|php| mcb_moodle::plugins_json_from_plugin_manager(&php))
    });
    let mut layout = CoreLayout::new(&components, plugins.as_deref(), public)
        .map_err(|e| import_error(&root, e.to_string()))?;
    let addons = find_addons(&mut layout, &web, if public { "public/" } else { "" });
    let (left_out, links) = left_out(&root);
    Ok(Installation {
        root,
        core,
        addons,
        left_out,
        links,
    })
}

/// The add-ons under `web`: plugin directories, type by type, that core does not ship;
/// subplugin types found on the way add more types. Paths are prefixed with `web_prefix`.
fn find_addons(layout: &mut CoreLayout, web: &Path, web_prefix: &str) -> Vec<(String, String)> {
    let mut found: BTreeMap<String, (String, bool)> = BTreeMap::new();
    loop {
        let before = found.len();
        let types: Vec<(String, String)> = layout
            .types()
            .map(|(t, d)| (t.to_string(), d.to_string()))
            .collect();
        for (ty, tdir) in types {
            let Ok(rd) = std::fs::read_dir(web.join(&tdir)) else {
                continue;
            };
            for e in rd.flatten() {
                let pname = e.file_name().to_string_lossy().into_owned();
                let component = format!("{ty}_{pname}");
                let pdir = format!("{tdir}/{pname}");
                if found.contains_key(&component)
                    || Component::parse(&component).is_err()
                    || !e.path().join("version.php").is_file()
                {
                    continue;
                }
                let standard = layout.is_standard(&component);
                if let Some(json) = read(&e.path(), "db/subplugins.json") {
                    let label = format!("{pdir}/db/subplugins.json");
                    let _ = if standard {
                        layout.add_subplugins(&pdir, &label, &json)
                    } else {
                        layout.add_plugin_subplugins(&pdir, &label, &json)
                    };
                }
                found.insert(component, (format!("{web_prefix}{pdir}"), standard));
            }
        }
        if found.len() == before {
            return found
                .into_iter()
                .filter(|(_, (_, standard))| !standard)
                .map(|(c, (p, _))| (c, p))
                .collect();
        }
    }
}

/// The installation's code, stored: its git tree (with its links as symlinks) and each
/// piece's files (`moodle` for core, each add-on relative to its directory).
fn store_installation(
    ctx: &RunContext,
    inst: &Installation,
    limits: &mcb_store::SourceLimits,
) -> Result<(GitOid, BTreeMap<String, Vec<SourceFile>>), RealiseError> {
    // Checkouts of add-ons keep their metadata to themselves; what is not code is never
    // read.
    let mut skipped: Vec<String> = inst
        .addons
        .iter()
        .flat_map(|(_, p)| [".git", ".hg", ".svn"].map(|v| format!("{p}/{v}")))
        .collect();
    skipped.extend(inst.left_out.iter().cloned());
    let files = unpack_dir_except(&inst.root, &ctx.store, limits, &skipped).map_err(|e| {
        RealiseError::Source(
            mcb_catalog::SourceError::new(
                "moodle",
                SourceFailure::Refused,
                format!("cannot read {}", inst.root.display()),
            )
            .because(e),
        )
    })?;
    // Each file to its piece: the deepest add-on holding it, else core.
    let mut by_depth: Vec<&(String, String)> = inst.addons.iter().collect();
    by_depth.sort_by_key(|(_, p)| std::cmp::Reverse(p.len()));
    let mut pieces: BTreeMap<String, Vec<SourceFile>> = BTreeMap::new();
    let mut whole: Vec<SourceFile> = Vec::new();
    for f in files {
        whole.push(f.clone());
        match by_depth
            .iter()
            .find(|(_, p)| f.path.starts_with(&format!("{p}/")))
        {
            Some((component, p)) => {
                let rel = f.path[p.len() + 1..].to_string();
                pieces
                    .entry(component.clone())
                    .or_default()
                    .push(SourceFile { path: rel, ..f });
            }
            None => pieces.entry("moodle".into()).or_default().push(f),
        }
    }
    let code = manifest_of(ctx, whole)?;
    if inst.links.is_empty() {
        return Ok((code.tree, pieces));
    }
    // The links kept apart are the installation's as symlinks, as a site's `links:` are.
    let list: Vec<(String, String)> = inst
        .links
        .iter()
        .map(|(a, t)| (a.clone(), t.clone()))
        .collect();
    let linked = ctx.git.link_package(&ctx.store, &list).map_err(|e| {
        RealiseError::Git(mcb_git::GitError::new("cannot read the installation", e))
    })?;
    Ok((ctx.git.compose(&code.tree, &[], &linked.entries)?, pieces))
}

fn manifest_of(ctx: &RunContext, files: Vec<SourceFile>) -> Result<Manifest, RealiseError> {
    ctx.git
        .ingest_files(&ctx.store, files)
        .map_err(|e| RealiseError::Git(mcb_git::GitError::new("cannot read the installation", e)))
}

/// Matches a piece against what is known: the store's sources, its own checkout, the
/// plugins directory; what matches nothing is taken as it is, and said in `problems`.
struct Recogniser<'a> {
    known: HashMap<String, HashMap<GitOid, Known>>,
    sources: mcb_catalog::Sources<'a>,
    index: mcb_catalog::LazyIndex<'a>,
    core_release: String,
    problems: Vec<String>,
    /// Add-ons not compared with the plugins directory, and why: said once per reason.
    unasked: Vec<(String, String)>,
    /// Add-ons taken as they are: their directory, and where beside the site file their
    /// copy goes.
    copies: Vec<(PathBuf, String)>,
}

impl Recogniser<'_> {
    /// How the piece was recognised, and its entry's value in the site file.
    fn recognise(
        &mut self,
        component: &str,
        install_path: &str,
        dir: &Path,
        manifest: &Manifest,
        version: &str,
    ) -> (ImportedPiece, String) {
        let mut piece = ImportedPiece {
            component: component.to_string(),
            install_path: install_path.to_string(),
            version: version.to_string(),
            recognised: Recognised::Path {
                dir: dir.display().to_string(),
            },
            differs: Vec::new(),
            nearest: None,
        };
        let mine = self.known.get(component);
        if let Some(k) = mine.and_then(|m| m.get(&manifest.tree)) {
            piece.recognised = Recognised::Store {
                source: k.label.clone(),
            };
            return (piece, k.entry.clone());
        }
        if let Some((url, commit, tags)) = checkout(dir, &manifest.tree) {
            let entry = if component == "moodle" {
                core_checkout_entry(&url, &commit, &tags)
            } else {
                format!("(git: {}, ref: {})", q(&url), q(&commit))
            };
            piece.recognised = Recognised::Checkout { url, commit };
            return (piece, entry);
        }
        let mut candidates: Vec<Known> = mine
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default();
        if component != "moodle" && self.in_directory(component, version, manifest, &mut candidates)
        {
            piece.recognised = Recognised::Directory {
                version: version.to_string(),
            };
            return (piece, format!("(version: {})", q(version)));
        }
        if let Some(n) = nearest(manifest, candidates.iter()) {
            piece.differs = differences(manifest, &n.manifest);
            piece.nearest = Some(n.label.clone());
        }
        if component == "moodle" {
            return self.core_on_trust(piece);
        }
        self.problems.push(format!(
            "{component} matches no known version: it is taken from {} as it is{}",
            dir.display(),
            match &piece.nearest {
                Some(n) => format!(
                    "; {} differ{} from {n}",
                    if piece.differs.len() == 1 {
                        "1 file".to_string()
                    } else {
                        format!("{} files", piece.differs.len())
                    },
                    if piece.differs.len() == 1 { "s" } else { "" }
                ),
                None => String::new(),
            }
        ));
        (piece, format!("(path: {})", q(&dir.display().to_string())))
    }

    /// Core, with the add-ons its own tree carries (a fork of Moodle with the institution's
    /// plugins in it): a known core source, or the installation's own checkout, whose tree
    /// is core's files plus those add-ons' exactly. Returns the piece, its entry and the
    /// add-ons that stay in core; else core alone is recognised as any piece is.
    fn core(
        &mut self,
        ctx: &RunContext,
        inst: &Installation,
        pieces: &BTreeMap<String, Vec<SourceFile>>,
    ) -> Result<(ImportedPiece, String, Vec<String>), RealiseError> {
        let core_files = pieces.get("moodle").cloned().unwrap_or_default();
        let with = |carried: &[&(String, String)]| -> Result<Manifest, RealiseError> {
            let mut files = core_files.clone();
            for (component, path) in carried {
                for f in pieces.get(component.as_str()).into_iter().flatten() {
                    files.push(SourceFile {
                        path: format!("{path}/{}", f.path),
                        ..f.clone()
                    });
                }
            }
            manifest_of(ctx, files)
        };
        let piece = |recognised: Recognised| ImportedPiece {
            component: "moodle".into(),
            install_path: String::new(),
            version: inst.core.build.to_string(),
            recognised,
            differs: Vec::new(),
            nearest: None,
        };
        let known: Vec<Known> = self
            .known
            .get("moodle")
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default();
        // Cores carrying the same add-ons share one composition.
        let mut composed: HashMap<Vec<String>, GitOid> = HashMap::new();
        for k in &known {
            let carried: Vec<&(String, String)> = inst
                .addons
                .iter()
                .filter(|(_, path)| {
                    let under = format!("{path}/");
                    k.manifest
                        .entries
                        .iter()
                        .any(|e| e.path.starts_with(&under))
                })
                .collect();
            if carried.is_empty() {
                continue;
            }
            let names: Vec<String> = carried.iter().map(|(c, _)| c.clone()).collect();
            let tree = match composed.get(&names) {
                Some(t) => t.clone(),
                None => {
                    let t = with(&carried)?.tree;
                    composed.insert(names.clone(), t.clone());
                    t
                }
            };
            if tree == k.manifest.tree {
                let source = k.label.clone();
                return Ok((piece(Recognised::Store { source }), k.entry.clone(), names));
            }
        }
        let paths: Vec<String> = inst.addons.iter().map(|(_, p)| p.clone()).collect();
        let tracked = mcb_git::program::tracked_dirs(&inst.root, &paths);
        if !tracked.is_empty() {
            let carried: Vec<&(String, String)> = inst
                .addons
                .iter()
                .filter(|(_, p)| tracked.contains(p))
                .collect();
            let m = with(&carried)?;
            if let Some((url, commit, tags)) = checkout(&inst.root, &m.tree) {
                let entry = core_checkout_entry(&url, &commit, &tags);
                let names = carried.iter().map(|(c, _)| c.clone()).collect();
                return Ok((piece(Recognised::Checkout { url, commit }), entry, names));
            }
        }
        let manifest = manifest_of(ctx, core_files)?;
        let (p, entry) = self.recognise(
            "moodle",
            "",
            &inst.root,
            &manifest,
            &inst.core.build.to_string(),
        );
        Ok((p, entry, Vec::new()))
    }

    /// Each add-on recognised: its piece, and its entry in the site file's `plugins`.
    /// An add-on that matches nothing is copied beside the site file (`plugins/<component>`)
    /// and its entry points there, never into the installation.
    fn addons(
        &mut self,
        ctx: &RunContext,
        inst: &Installation,
        in_core: &[String],
        pieces: &mut BTreeMap<String, Vec<SourceFile>>,
    ) -> Result<(Vec<ImportedPiece>, Vec<String>), RealiseError> {
        let mut plugin_pieces = Vec::new();
        let mut entries = Vec::new();
        for (component, path) in inst.addons.iter().filter(|(c, _)| !in_core.contains(c)) {
            let manifest = manifest_of(ctx, pieces.remove(component).unwrap_or_default())?;
            let dir = inst.root.join(path);
            let version = read(&dir, "version.php")
                .and_then(|t| PluginVersion::parse(&t).ok())
                .and_then(|v| v.version)
                .map(|v| v.to_string())
                .unwrap_or_default();
            let (piece, mut value) = self.recognise(component, path, &dir, &manifest, &version);
            if matches!(piece.recognised, Recognised::Path { .. }) {
                let copy = format!("{COPIES}/{component}");
                value = format!("(path: {})", q(&copy));
                self.copies.push((dir.clone(), copy));
            }
            let how = match &piece.recognised {
                Recognised::Store { source } => format!("as built before: {source}"),
                Recognised::Checkout { .. } => "its git checkout".into(),
                Recognised::Directory { version } => format!("the plugins directory's {version}"),
                _ => "matches no known version: taken as it is".into(),
            };
            entries.push(format!(
                "        // {how}\n        {}: {value},\n",
                q(component)
            ));
            plugin_pieces.push(piece);
        }
        Ok((plugin_pieces, entries))
    }

    /// Is the piece the plugins directory's zip of `version`? A zip that differs is a
    /// candidate for the nearest known version; what could not be asked is a problem.
    fn in_directory(
        &mut self,
        component: &str,
        version: &str,
        manifest: &Manifest,
        candidates: &mut Vec<Known>,
    ) -> bool {
        let ix = match self.index.get(component) {
            Ok(ix) => ix,
            Err(e) => {
                // The same failure for every add-on: said once, naming them all.
                let chain = crate::error::chain(&e);
                let reason = chain
                    .strip_prefix(&format!("{component}: "))
                    .unwrap_or(&chain)
                    .to_string();
                self.unasked.push((component.to_string(), reason));
                return false;
            }
        };
        let Some(v) = ix
            .lookup(component)
            .and_then(|r| r.versions.iter().find(|v| v.version == version))
        else {
            return false;
        };
        match self.sources.directory_zip(component, v, None, None) {
            Ok(stored) if stored.manifest.tree == manifest.tree => true,
            Ok(stored) => {
                candidates.push(Known {
                    label: format!("{version} from the plugins directory"),
                    entry: String::new(),
                    manifest: stored.manifest,
                });
                false
            }
            Err(e) => {
                self.problems.push(format!(
                    "{component}: the plugins directory's zip of {version} could not be compared: {}",
                    crate::error::chain(&e)
                ));
                false
            }
        }
    }

    /// What could not be compared with the plugins directory, one line per reason.
    fn unasked_problems(&mut self) {
        let mut by_reason: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (component, reason) in self.unasked.drain(..) {
            by_reason.entry(reason).or_default().push(component);
        }
        for (reason, components) in by_reason {
            self.problems.push(format!(
                "not compared with the plugins directory ({}): {reason}",
                components.join(", ")
            ));
        }
    }

    /// Core that matched nothing: the official release of its version, on trust, said.
    fn core_on_trust(&mut self, mut piece: ImportedPiece) -> (ImportedPiece, String) {
        let release = exact_release(&self.core_release);
        piece.recognised = Recognised::Release {
            version: release.clone(),
        };
        self.problems.push(format!(
            "core matches no source this store knows and is not a git checkout: the site file asks for Moodle {release} from moodle.git, whose files may differ{}",
            if piece.differs.is_empty() {
                String::new()
            } else {
                format!(" ({} files differ from {})", piece.differs.len(), piece.nearest.as_deref().unwrap_or("?"))
            }
        ));
        (piece, format!("(version: {})", q(&release)))
    }
}

/// Where add-ons taken as they are are copied, beside the written site file.
const COPIES: &str = "plugins";

/// The version spec that names exactly the release `version.php` calls `release`:
/// `"4.5 (Build: …)"` is 4.5.0, `"4.5.5 (Build: …)"` 4.5.5; a weekly build (`"4.5.5+"`)
/// has no tag, and follows its stable branch (`"4.5+"`).
fn exact_release(release: &str) -> String {
    let word = release.split(' ').next().unwrap_or("");
    let (number, weekly) = match word.strip_suffix('+') {
        Some(n) => (n, true),
        None => (word, false),
    };
    let parts: Vec<&str> = number.split('.').collect();
    match (parts.as_slice(), weekly) {
        ([x, y, ..], true) => format!("{x}.{y}+"),
        ([x, y], false) => format!("{x}.{y}.0"),
        _ => number.to_string(),
    }
}

/// Copies the add-on at `from` to `to`: its files and symlinks, not its checkout's
/// metadata, read-write for the site's maintainers.
fn copy_addon(from: &Path, to: &Path) -> Result<(), RealiseError> {
    let fail = |what: &Path, e: std::io::Error| RealiseError::Filesystem {
        message: format!("cannot copy {} beside the site file", what.display()),
        source: e,
    };
    let vcs = |e: &walkdir::DirEntry| {
        e.depth() == 1 && matches!(e.file_name().to_str(), Some(".git" | ".hg" | ".svn"))
    };
    for e in walkdir::WalkDir::new(from)
        .follow_links(false)
        .into_iter()
        .filter_entry(|e| !vcs(e))
    {
        let e = e.map_err(|err| fail(from, err.into()))?;
        let rel = e.path().strip_prefix(from).expect("under its root");
        let dest = to.join(rel);
        let t = e.file_type();
        if t.is_dir() {
            std::fs::create_dir_all(&dest).map_err(|err| fail(e.path(), err))?;
        } else if t.is_symlink() {
            let target = std::fs::read_link(e.path()).map_err(|err| fail(e.path(), err))?;
            std::os::unix::fs::symlink(target, &dest).map_err(|err| fail(e.path(), err))?;
        } else if t.is_file() {
            std::fs::copy(e.path(), &dest).map_err(|err| fail(e.path(), err))?;
            let mode = e.metadata().map_err(|err| fail(e.path(), err.into()))?;
            use std::os::unix::fs::PermissionsExt;
            let exec = mode.permissions().mode() & 0o111 != 0;
            let perms = std::fs::Permissions::from_mode(if exec { 0o755 } else { 0o644 });
            std::fs::set_permissions(&dest, perms).map_err(|err| fail(&dest, err))?;
        }
    }
    Ok(())
}

/// The site file of an imported installation: every version pinned to what it holds.
fn site_text(
    inst: &Installation,
    name: &str,
    core_value: &str,
    entries: &[String],
    directory: Option<&str>,
) -> String {
    let mut text = format!(
        "// Imported by `mcb import` from {}.\n// Every version is pinned to what the installation holds; loosen pins to follow upstream.\nSite(\n    name: {},\n    moodle: {core_value},\n    plugins: {{\n",
        inst.root.display(),
        q(name)
    );
    for e in entries {
        text.push_str(e);
    }
    text.push_str("    },\n");
    if let Some(d) = directory {
        text.push_str(&format!("    directory: {},\n", q(d)));
    }
    if !inst.links.is_empty() {
        let l: Vec<String> = inst
            .links
            .iter()
            .map(|(a, t)| format!("{}: {}", q(a), q(t)))
            .collect();
        text.push_str(&format!("    links: {{{}}},\n", l.join(", ")));
    }
    text.push_str(")\n");
    text
}

/// Reads the installation at `dir` and writes `site.ron` and `site.lock` in `out`.
pub fn import(
    dir: &Path,
    name: &str,
    out: &Path,
    opts: &RunOptions,
    reporter: &dyn Reporter,
) -> Result<Imported, RealiseError> {
    let inst = read_installation(dir)?;
    let site_file = out.join("site.ron");
    if site_file.exists() {
        return Err(RealiseError::Usage {
            message: format!(
                "{} exists already; import writes a new site file only",
                site_file.display()
            ),
            about: crate::error::Named::Existing,
        });
    }
    let ctx = RunContext::open(opts, None, reporter)?;
    if ctx.git.branch_head(name)?.is_some() {
        return Err(RealiseError::Config(
            mcb_config::ConfigError::new(
                &site_file,
                format!("the store has a site named {name} already"),
            )
            .hint("give the imported site another name"),
        ));
    }
    reporter.stage(Stage::Fetch, &inst.root.display().to_string());
    let (installation_tree, mut pieces) = store_installation(&ctx, &inst, &opts.limits.source)?;
    let mut recogniser = Recogniser {
        known: known_sources(&ctx)?,
        sources: ctx.sources(&inst.root, reporter),
        index: ctx.index(),
        core_release: inst.core.release.clone(),
        problems: Vec::new(),
        unasked: Vec::new(),
        copies: Vec::new(),
    };
    reporter.stage(Stage::Plan, name);
    let (core_piece, core_value, in_core) = recogniser.core(&ctx, &inst, &pieces)?;
    let (plugin_pieces, entries) = recogniser.addons(&ctx, &inst, &in_core, &mut pieces)?;
    recogniser.unasked_problems();
    let mut problems = recogniser.problems;
    let copies = recogniser.copies;
    drop(ctx);

    let text = site_text(
        &inst,
        name,
        &core_value,
        &entries,
        opts.directory.as_deref(),
    );
    mcb_config::SiteFile::parse(&site_file, &text)?;
    std::fs::create_dir_all(out).map_err(|e| RealiseError::Filesystem {
        message: format!("cannot make {}", out.display()),
        source: e,
    })?;
    for (from, copy) in &copies {
        let to = out.join(copy);
        if to.exists() {
            return Err(RealiseError::Usage {
                message: format!(
                    "{} exists already; import copies add-ons only where nothing is",
                    to.display()
                ),
                about: crate::error::Named::Existing,
            });
        }
        copy_addon(from, &to)?;
    }
    crate::stage::publish::write_file_atomic(&site_file, &text)?;

    let lock_file = out.join("site.lock");
    let on_trust = matches!(core_piece.recognised, Recognised::Release { .. });
    let lock_tree = lock_for(
        &site_file,
        &lock_file,
        on_trust,
        &installation_tree,
        opts,
        reporter,
        &mut problems,
    );
    let notes = config_notes(&inst, name, out);
    Ok(Imported {
        site: name.to_string(),
        site_file,
        lock_file: lock_tree.as_ref().map(|_| lock_file.clone()),
        moodle_release: inst.core.release.clone(),
        core: core_piece,
        in_core,
        plugins: plugin_pieces,
        copied: copies,
        links: inst.links,
        left_out: inst.left_out,
        installation_tree,
        lock_tree,
        problems,
        notes,
    })
}

/// The lock: the new site file resolved, nothing built or switched. It stays only when it
/// builds the installation's files, or when every piece was recognised (then what differs
/// is said in `problems`). Returns the tree it builds.
fn lock_for(
    site_file: &Path,
    lock_file: &Path,
    on_trust: bool,
    installation_tree: &GitOid,
    opts: &RunOptions,
    reporter: &dyn Reporter,
    problems: &mut Vec<String>,
) -> Option<GitOid> {
    let nothing = crate::stage::plan::Update::Nothing;
    let mut lock_tree = match crate::ops::realise::resolve_lock(site_file, opts, &nothing, reporter)
    {
        Ok(r) => Some(r.tree),
        Err(e) => {
            problems.push(format!("no lock was written: {}", crate::error::chain(&e)));
            None
        }
    };
    if on_trust && lock_tree.as_ref() != Some(installation_tree) {
        if lock_tree.take().is_some() {
            let _ = std::fs::remove_file(lock_file);
            problems.push(
                "no lock was written: the release core was taken for does not give the installation's files; point `moodle:` at its true source, then realise"
                    .into(),
            );
        }
    } else if let Some(t) = &lock_tree
        && t != installation_tree
    {
        problems.push(format!(
            "the site file builds tree {t}, the installation's code is tree {installation_tree}: see the differences above"
        ));
    }
    lock_tree
}

/// What to do with a config.php that was left out: it holds the database password, so it
/// lives outside the codebase and the site file links it; through the link, it must name
/// the codebase by its path.
fn config_notes(inst: &Installation, name: &str, out: &Path) -> Vec<String> {
    let mut notes = Vec::new();
    for rel in ["config.php", "public/config.php"] {
        if !inst.left_out.iter().any(|l| l == rel) || inst.links.contains_key(rel) {
            continue;
        }
        let keep = format!("/etc/moodle/{name}/config.php");
        let setup = mcb_moodle::config_php::setup_php(inst.core.major_release());
        let result = std::path::absolute(out.join("result")).unwrap_or_else(|_| out.join("result"));
        notes.push(format!(
            "{rel} was left out (it holds the database password): keep it outside the codebase with `install -D -m 0640 {} {keep}`, end it with `require_once('{}/{setup}');` in place of `__DIR__`, and link it: add `links: {{\"{rel}\": \"{keep}\"}}` to {}",
            inst.root.join(rel).display(),
            result.display(),
            out.join("site.ron").display()
        ));
    }
    notes
}
