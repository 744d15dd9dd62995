//! `mcb test`: a generation proven against Moodle's own command line before it reaches a
//! server. Lint the PHP files that changed (many per PHP process, several processes at
//! once), install into a throwaway PostgreSQL database, upgrade from the previous
//! generation (restored from its snapshot when one is kept), and compare the schema with
//! the install files. A failure names the component Moodle was working on and quotes
//! Moodle's message. The result is recorded as a git note on the generation's commit.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use mcb_config::SiteFile;
use mcb_exec::Program;
use std::os::unix::fs::PermissionsExt;

use mcb_store::{EntryKind, GitOid, LinkMode};

use mcb_database::{DbServer, DbTarget};
use mcb_moodle::{MoodleFailure, moodle_failure, schema_failures, stack_files};
use mcb_realise::{Reporter, RunContext, RunOptions, Stage};

use crate::error::TestError;

/// PHP extensions Moodle needs, checked before anything starts (with the database's own:
/// see [`db_extension`]).
const PHP_EXTENSIONS: &[&str] = &[
    "intl",
    "zip",
    "mbstring",
    "xml",
    "gd",
    "curl",
    "soap",
    "dom",
    "simplexml",
];

/// Files linted per PHP process.
const LINT_BATCH: usize = 400;

/// The lint PHP runs: each file parsed fully (`TOKEN_PARSE`), every syntax error printed
/// as `file:line: message`.
const LINT_PHP: &str = r#"<?php
$bad = 0;
foreach (array_slice($argv, 1) as $f) {
    try {
        token_get_all(file_get_contents($f), TOKEN_PARSE);
    } catch (ParseError $e) {
        echo $f, ':', $e->getLine(), ': ', $e->getMessage(), "\n";
        $bad++;
    }
}
exit($bad ? 1 : 0);
"#;

/// Which steps to run.
#[derive(Debug, Clone, Default)]
pub struct TestPlan {
    pub lint: bool,
    pub install: bool,
    /// Upgrade from a generation (`-N`), a commit on the branch, or a `pg_dump` file.
    pub upgrade_from: Option<String>,
    pub schema: bool,
    /// Lint every PHP file, not only those that changed.
    pub all_files: bool,
    /// The database: a throwaway server of an engine (PostgreSQL unless said), or a
    /// server's URL.
    pub db: Option<DbTarget>,
    /// Leave the scratch tree, dataroot and cluster for inspection.
    pub keep: bool,
    /// The site's `result` link, when it is not beside the site file: the generation it
    /// serves is the one the site's database has run.
    pub served_by: Option<PathBuf>,
    /// Set by SIGINT/SIGTERM: stop after the running step and clean up.
    pub stop: Option<Arc<AtomicBool>>,
    /// The generation to test (a commit on the site's branch); the newest when none.
    pub generation: Option<GitOid>,
    /// A rehearsal, not the generation's test: its result is not recorded on the commit.
    pub unrecorded: bool,
}

/// One step's result.
#[derive(Debug, Clone)]
pub struct StepResult {
    pub step: String,
    pub passed: bool,
    pub seconds: f64,
    /// What it did ("12 files", "from snapshot").
    pub detail: String,
    pub failures: Vec<MoodleFailure>,
}

/// What `mcb test` found.
#[derive(Debug, Clone)]
pub struct TestReport {
    pub site: String,
    pub commit: GitOid,
    pub tree: GitOid,
    pub php: String,
    /// The database the test ran on: its engine ("postgresql", "mariadb") and version.
    pub database: (String, String),
    pub steps: Vec<StepResult>,
    pub passed: bool,
    /// The previous generation was restored from its snapshot, not installed again.
    pub snapshot_used: bool,
    /// With --keep: what was left.
    pub kept: Vec<PathBuf>,
    /// What the run found worth saying besides the steps (leftovers removed, a snapshot
    /// that was not as written).
    pub notes: Vec<String>,
}

fn env_error(message: impl Into<String>, hint: impl Into<String>) -> TestError {
    TestError::Environment {
        message: message.into(),
        hint: Some(hint.into()),
    }
}

/// The PHP extension Moodle reaches `engine` with.
fn db_extension(engine: mcb_database::Engine) -> &'static str {
    match engine {
        mcb_database::Engine::Postgres => "pgsql",
        mcb_database::Engine::MariaDb => "mysqli",
    }
}

/// The PHP version, after checking PHP and the extensions Moodle needs are there.
fn check_php(engine: mcb_database::Engine) -> Result<String, TestError> {
    let out = Program::new("php").arg("-m").output().map_err(|_| {
        env_error(
            "php cannot be found",
            "install PHP's command line (Debian: apt-get install php-cli php-pgsql php-intl php-zip php-mbstring php-xml php-gd php-curl php-soap)",
        )
    })?;
    let have = String::from_utf8_lossy(&out.stdout).to_ascii_lowercase();
    let have: Vec<&str> = have.lines().map(str::trim).collect();
    let missing: Vec<&str> = std::iter::once(db_extension(engine))
        .chain(PHP_EXTENSIONS.iter().copied())
        .filter(|e| !have.contains(e))
        .collect();
    if !missing.is_empty() {
        return Err(env_error(
            format!(
                "PHP lacks the extension{} Moodle needs: {}",
                if missing.len() == 1 { "" } else { "s" },
                missing.join(", ")
            ),
            format!(
                "install them (Debian: apt-get install {})",
                missing
                    .iter()
                    .map(|e| match *e {
                        "dom" | "simplexml" => "php-xml".to_string(),
                        "mysqli" => "php-mysql".to_string(),
                        e => format!("php-{e}"),
                    })
                    .collect::<std::collections::BTreeSet<_>>()
                    .into_iter()
                    .collect::<Vec<_>>()
                    .join(" ")
            ),
        ));
    }
    let v = Program::new("php")
        .args(["-r", "echo PHP_VERSION;"])
        .output()
        .map_err(|e| env_error(e.to_string(), "check the PHP installation"))?;
    Ok(String::from_utf8_lossy(&v.stdout).trim().to_string())
}

/// A Moodle codebase laid out for a test, with a generated config.php, in a staging
/// directory of the store that this run holds (files hardlinked from the generation).
struct Scratch {
    root: PathBuf,
    code: PathBuf,
    dataroot: PathBuf,
    _held: mcb_store::HeldDir,
}

/// What a test's staging directories are called: `mcb-test-…` (the scratch tree) and
/// `mcb-test-pg-…` (a throwaway cluster).
const STAGING_PREFIX: &str = "mcb-test-";

impl Scratch {
    fn new(store: &mcb_store::Store) -> Result<Scratch, TestError> {
        let held = store.held_staging(STAGING_PREFIX)?;
        let root = held.path.clone();
        let dataroot = root.join("moodledata");
        std::fs::create_dir_all(&dataroot).map_err(|e| fs_error("cannot make the dataroot", e))?;
        Ok(Scratch {
            code: root.join("code"),
            root,
            dataroot,
            _held: held,
        })
    }

    /// Lays out generation `tree` as the code (the store's way, hardlinked), with a
    /// config.php for `server` and `db`.
    fn switch_code(
        &self,
        ctx: &RunContext,
        tree: &GitOid,
        server: &DbServer,
        db: &str,
    ) -> Result<(), TestError> {
        if self.code.exists() {
            mcb_store::remove_tree(&self.code)?;
        }
        std::fs::create_dir(&self.code).map_err(|e| fs_error("cannot make the scratch tree", e))?;
        mcb_realise::stage::materialise::lay_out_tree(
            &ctx.store,
            &ctx.git,
            tree,
            &self.code,
            LinkMode::Hardlink,
            &mcb_realise::Silent,
        )?;
        // The tree is sealed as every tree of the store is; its top opens for config.php
        // (Moodle 5.1+ has its web root under public/; config.php stays at the top).
        std::fs::set_permissions(&self.code, std::fs::Permissions::from_mode(0o755))
            .map_err(|e| fs_error("cannot open the scratch tree", e))?;
        let config = self.code.join("config.php");
        let _ = std::fs::remove_file(&config);
        let php_str = |s: &str| s.replace('\\', "\\\\").replace('\'', "\\'");
        let text = format!(
            "<?php\n// Written by mcb test.\nunset($CFG);\nglobal $CFG;\n$CFG = new stdClass();\n$CFG->dbtype = '{}';\n$CFG->dblibrary = 'native';\n$CFG->dbhost = '{}';\n$CFG->dbname = '{}';\n$CFG->dbuser = '{}';\n$CFG->dbpass = '{}';\n$CFG->prefix = 'mdl_';\n$CFG->dboptions = ['dbport' => {}];\n$CFG->wwwroot = 'http://localhost';\n$CFG->dataroot = '{}';\n$CFG->admin = 'admin';\n$CFG->directorypermissions = 02777;\n// Moodle's messages with their stack traces: they name the plugin that failed.\n$CFG->debug = 32767;\n$CFG->debugdisplay = 1;\nrequire_once(__DIR__ . '/{}lib/setup.php');\n",
            server.engine().moodle_dbtype(),
            php_str(server.host()),
            php_str(db),
            php_str(server.user()),
            php_str(server.password()),
            server.port(),
            php_str(&self.dataroot.display().to_string()),
            self.web_root(),
        );
        std::fs::write(&config, text).map_err(|e| fs_error("cannot write config.php", e))
    }

    /// The plugin whose file is innermost in Moodle's stack trace, when Moodle's output names
    /// none (a plugin that breaks the installer before it reaches that plugin): the nearest
    /// directory above the file with a `version.php` that names its component.
    fn blame(&self, mut failure: MoodleFailure, output: &str) -> MoodleFailure {
        if failure.component.is_some() {
            return failure;
        }
        let root = self.code.join(self.web_root());
        for file in stack_files(output) {
            let mut dir = std::path::Path::new(file.trim_start_matches('/')).parent();
            while let Some(d) = dir.filter(|d| !d.as_os_str().is_empty()) {
                let version = root.join(d).join("version.php");
                if let Some(component) = std::fs::read_to_string(&version)
                    .ok()
                    .and_then(|t| mcb_moodle::PluginVersion::parse(&t).ok())
                    .and_then(|v| v.component)
                {
                    failure.component = Some(component);
                    return failure;
                }
                dir = d.parent();
            }
        }
        failure
    }

    /// Where the code's web root is: `public/` from Moodle 5.1, else the top.
    fn web_root(&self) -> &'static str {
        if self.code.join("public/version.php").is_file() {
            "public/"
        } else {
            ""
        }
    }

    /// Runs `php -d max_input_vars=5000 SCRIPT ARGS` in the code (`SCRIPT` in the web
    /// root); (passed, output).
    fn php(&self, script: &str, args: &[&str]) -> Result<(bool, String), TestError> {
        let out = Program::new("php")
            .args(["-d", "max_input_vars=5000"])
            .arg(self.code.join(self.web_root()).join(script))
            .args(args)
            .current_dir(&self.code)
            .output()
            .map_err(|e| env_error(e.to_string(), "check the PHP installation"))?;
        Ok((out.success(), out.all_text()))
    }
}

fn fs_error(what: &str, e: std::io::Error) -> TestError {
    TestError::Filesystem {
        message: what.to_string(),
        source: e,
    }
}

/// Copies a directory tree (the dataroot): directories and regular files only, and
/// returns the digest of what it copied (see [`tree_digest`]).
fn copy_tree(from: &Path, to: &Path) -> Result<String, TestError> {
    let mut digest = TreeDigest::default();
    for e in walkdir::WalkDir::new(from)
        .follow_links(false)
        .sort_by_file_name()
    {
        let e = e.map_err(|e| fs_error("cannot read a dataroot", e.into()))?;
        let rel = e.path().strip_prefix(from).expect("under its root");
        let dest = to.join(rel);
        if e.file_type().is_dir() {
            std::fs::create_dir_all(&dest)
                .map_err(|err| fs_error("cannot copy a dataroot", err))?;
            digest.dir(rel);
        } else if e.file_type().is_file() {
            let bytes =
                std::fs::read(e.path()).map_err(|err| fs_error("cannot read a dataroot", err))?;
            std::fs::write(&dest, &bytes).map_err(|err| fs_error("cannot copy a dataroot", err))?;
            digest.file(rel, &bytes);
        } else {
            return Err(fs_error(
                "cannot copy a dataroot",
                std::io::Error::other(format!(
                    "{} is neither a directory nor a regular file",
                    e.path().display()
                )),
            ));
        }
    }
    Ok(digest.finish())
}

/// The blake3 of a directory tree: each entry's path, kind and content, in name order.
#[derive(Default)]
struct TreeDigest(blake3::Hasher);

impl TreeDigest {
    fn dir(&mut self, rel: &Path) {
        self.0.update(b"d ");
        self.0.update(rel.as_os_str().as_encoded_bytes());
        self.0.update(b"\0");
    }

    fn file(&mut self, rel: &Path, bytes: &[u8]) {
        self.0.update(b"f ");
        self.0.update(rel.as_os_str().as_encoded_bytes());
        self.0.update(b"\0");
        self.0.update(blake3::hash(bytes).as_bytes());
    }

    fn finish(self) -> String {
        self.0.finalize().to_hex().to_string()
    }
}

/// The digest of the tree at `dir` as [`copy_tree`] computes it; `None` when it holds
/// anything but directories and regular files, or cannot be read.
fn tree_digest(dir: &Path) -> Option<String> {
    let mut digest = TreeDigest::default();
    for e in walkdir::WalkDir::new(dir)
        .follow_links(false)
        .sort_by_file_name()
    {
        let e = e.ok()?;
        let rel = e.path().strip_prefix(dir).ok()?;
        if e.file_type().is_dir() {
            digest.dir(rel);
        } else if e.file_type().is_file() {
            digest.file(rel, &std::fs::read(e.path()).ok()?);
        } else {
            return None;
        }
    }
    Some(digest.finish())
}

/// The record a snapshot's directory holds last: what its dump and its dataroot hash to.
const SNAPSHOT_RECORD: &str = "SNAPSHOT";

/// Is the snapshot at `dir` whole and as it was written: a custom-format dump and a
/// dataroot hashing to what its record says? Anything else there (a plain-SQL dump, a
/// file changed since) makes it no snapshot.
fn snapshot_sound(dir: &Path, server: &DbServer) -> bool {
    let Ok(record) = std::fs::read_to_string(dir.join(SNAPSHOT_RECORD)) else {
        return false;
    };
    let field = |name: &str| {
        record
            .lines()
            .find_map(|l| l.strip_prefix(name).map(str::trim).map(str::to_string))
    };
    let (Some(dump), Some(dataroot)) = (field("dump "), field("dataroot ")) else {
        return false;
    };
    let Ok(bytes) = std::fs::read(dir.join("db.dump")) else {
        return false;
    };
    server.is_own_dump(&bytes)
        && blake3::hash(&bytes).to_hex().as_str() == dump
        && tree_digest(&dir.join("dataroot")).as_deref() == Some(dataroot.as_str())
}

/// The files of a tree that differ from (or are not in) `before`, as paths.
fn changed_php(
    git: &mcb_git::GitStore,
    tree: &GitOid,
    before: Option<&GitOid>,
) -> Result<Vec<String>, TestError> {
    let limit = mcb_realise::stage::materialise::GENERATION_FILES;
    let old: BTreeMap<String, GitOid> = match before {
        Some(b) => git
            .tree_files(b, limit)?
            .into_iter()
            .map(|(p, _, o)| (p, o))
            .collect(),
        None => BTreeMap::new(),
    };
    Ok(git
        .tree_files(tree, limit)?
        .into_iter()
        .filter(|(p, k, o)| {
            *k != EntryKind::Symlink
                && p.ends_with(".php")
                && !p.contains("/tests/fixtures/")
                && old.get(p) != Some(o)
        })
        .map(|(p, _, _)| p)
        .collect())
}

/// The threads lint runs its PHP processes from: one per core.
fn lint_pool() -> &'static rayon::ThreadPool {
    static POOL: std::sync::OnceLock<rayon::ThreadPool> = std::sync::OnceLock::new();
    POOL.get_or_init(|| {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        rayon::ThreadPoolBuilder::new()
            .num_threads(cores)
            .thread_name(|i| format!("mcb-lint-{i}"))
            .build()
            .expect("a thread pool starts")
    })
}

/// Lints `files` (relative to `code`) in batches, as many PHP processes at once as there
/// are cores; each syntax error as a failure naming `file:line`.
fn lint(code: &Path, scratch: &Path, files: &[String]) -> Result<Vec<MoodleFailure>, TestError> {
    let script = scratch.join("lint.php");
    std::fs::write(&script, LINT_PHP).map_err(|e| fs_error("cannot write the lint script", e))?;
    let batches: Vec<&[String]> = files.chunks(LINT_BATCH).collect();
    let results: Vec<Result<String, TestError>> = lint_pool().install(|| {
        use rayon::prelude::*;
        batches
            .par_iter()
            .map(|batch| {
                let out = Program::new("php")
                    .arg(&script)
                    .args(batch.iter())
                    .current_dir(code)
                    .output()
                    .map_err(|e| env_error(e.to_string(), "check the PHP installation"))?;
                Ok(out.stdout_text())
            })
            .collect()
    });
    let mut failures = Vec::new();
    for r in results {
        for line in r?.lines().filter(|l| !l.trim().is_empty()) {
            failures.push(MoodleFailure {
                component: None,
                message: line.to_string(),
                code: Some("syntax".into()),
            });
        }
    }
    Ok(failures)
}

struct Run<'a> {
    ctx: &'a RunContext,
    server: &'a DbServer,
    scratch: &'a Scratch,
    steps: Vec<StepResult>,
    snapshot_used: bool,
    stop: Option<Arc<AtomicBool>>,
    /// What the run found worth saying that is not a step's result.
    notes: Vec<String>,
}

impl Run<'_> {
    fn stopped(&self) -> Result<(), TestError> {
        if self.stop.as_ref().is_some_and(|s| s.load(Ordering::SeqCst)) {
            return Err(TestError::Interrupted);
        }
        Ok(())
    }

    fn record(
        &mut self,
        step: &str,
        started: Instant,
        detail: String,
        failures: Vec<MoodleFailure>,
    ) -> bool {
        let passed = failures.is_empty();
        self.steps.push(StepResult {
            step: step.to_string(),
            passed,
            seconds: (started.elapsed().as_secs_f64() * 10.0).round() / 10.0,
            detail,
            failures,
        });
        passed
    }

    /// The generation of `tree` in the store (laid out from git when gc removed it).
    fn generation(&self, tree: &GitOid) -> Result<PathBuf, TestError> {
        Ok(mcb_realise::stage::materialise::generation(
            &self.ctx.store,
            &self.ctx.git,
            tree,
            LinkMode::Hardlink,
            &mcb_realise::Silent,
        )?)
    }

    /// Installs `tree` into database `db`: from its snapshot when one is kept, else with
    /// Moodle's installer (then snapshotted). Returns whether it passed.
    fn install(&mut self, step: &str, tree: &GitOid, db: &str) -> Result<bool, TestError> {
        self.stopped()?;
        let started = Instant::now();
        self.server.fresh_database(db)?;
        self.scratch.switch_code(self.ctx, tree, self.server, db)?;
        let _ = std::fs::remove_dir_all(&self.scratch.dataroot);
        std::fs::create_dir_all(&self.scratch.dataroot)
            .map_err(|e| fs_error("cannot make the dataroot", e))?;
        let snap = self
            .ctx
            .store
            .cache()
            .test_snapshot_dir(tree, self.server.engine().name());
        if snap.exists() && !snapshot_sound(&snap, self.server) {
            // Not as mcb wrote it: never restored, removed, installed again.
            let _ = std::fs::remove_dir_all(&snap);
            self.notes.push(format!(
                "the snapshot of {} was not as mcb wrote it; it was removed and the codebase installed again",
                short(tree)
            ));
        }
        if snap.exists() {
            self.server.restore_own(db, &snap.join("db.dump"))?;
            copy_tree(&snap.join("dataroot"), &self.scratch.dataroot)?;
            self.snapshot_used = true;
            return Ok(self.record(
                step,
                started,
                format!("{} restored from its snapshot", short(tree)),
                Vec::new(),
            ));
        }
        let (ok, out) = self.scratch.php(
            "admin/cli/install_database.php",
            &[
                "--agree-license",
                "--fullname=mcb test",
                "--shortname=mcbtest",
                "--adminuser=admin",
                "--adminpass=Mcb-test-1",
                "--adminemail=admin@example.invalid",
                "--supportemail=admin@example.invalid",
            ],
        )?;
        let completed = ok && out.contains("Installation completed successfully");
        if !completed {
            let f = moodle_failure(&out).unwrap_or_else(|| MoodleFailure {
                component: None,
                message: last_lines(&out),
                code: None,
            });
            let f = self.scratch.blame(f, &out);
            return Ok(self.record(
                step,
                started,
                format!("{} with Moodle's installer", short(tree)),
                vec![f],
            ));
        }
        self.snapshot(tree, db)?;
        Ok(self.record(
            step,
            started,
            format!("{} with Moodle's installer", short(tree)),
            Vec::new(),
        ))
    }

    /// Keeps database `db` and the dataroot as the snapshot of `tree`, with the record of
    /// what both hash to, written last.
    fn snapshot(&self, tree: &GitOid, db: &str) -> Result<(), TestError> {
        let dir = self
            .ctx
            .store
            .cache()
            .test_snapshot_dir(tree, self.server.engine().name());
        let staging = dir.with_extension(format!("tmp{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&staging);
        std::fs::create_dir_all(&staging).map_err(|e| fs_error("cannot keep a snapshot", e))?;
        let dump = staging.join("db.dump");
        self.server.dump(db, &dump)?;
        let dump_hash = blake3::hash(
            &std::fs::read(&dump).map_err(|e| fs_error("cannot read the snapshot's dump", e))?,
        )
        .to_hex()
        .to_string();
        let dataroot = copy_tree(&self.scratch.dataroot, &staging.join("dataroot"))?;
        std::fs::write(
            staging.join(SNAPSHOT_RECORD),
            format!("mcb test snapshot 2\ndump {dump_hash}\ndataroot {dataroot}\n"),
        )
        .map_err(|e| fs_error("cannot keep a snapshot", e))?;
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::rename(&staging, &dir).map_err(|e| fs_error("cannot keep a snapshot", e))
    }

    /// Switches the code to `tree` and runs Moodle's upgrade.
    fn upgrade(
        &mut self,
        step: &str,
        tree: &GitOid,
        db: &str,
        from: &str,
    ) -> Result<bool, TestError> {
        self.stopped()?;
        let started = Instant::now();
        self.scratch.switch_code(self.ctx, tree, self.server, db)?;
        let (ok, out) = self.scratch.php(
            "admin/cli/upgrade.php",
            &["--non-interactive", "--allow-unstable"],
        )?;
        let failures = if ok && !out.contains("!!!") {
            Vec::new()
        } else {
            let f = moodle_failure(&out).unwrap_or_else(|| MoodleFailure {
                component: None,
                message: last_lines(&out),
                code: None,
            });
            vec![self.scratch.blame(f, &out)]
        };
        Ok(self.record(step, started, format!("{from} → {}", short(tree)), failures))
    }

    fn schema(&mut self) -> Result<bool, TestError> {
        self.stopped()?;
        let started = Instant::now();
        let (ok, out) = self
            .scratch
            .php("admin/cli/check_database_schema.php", &[])?;
        let mut failures = if ok {
            Vec::new()
        } else {
            schema_failures(&out)
        };
        if !ok && failures.is_empty() {
            failures.push(MoodleFailure {
                component: None,
                message: last_lines(&out),
                code: Some("schema".into()),
            });
        }
        Ok(self.record(
            "schema",
            started,
            "check_database_schema.php".into(),
            failures,
        ))
    }
}

fn short(id: &GitOid) -> &str {
    &id.as_str()[..12]
}

/// The last lines of an output, for a failure that says nothing in Moodle's shape.
fn last_lines(out: &str) -> String {
    let lines: Vec<&str> = out.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(3)..].join(" / ")
}

/// Removes what killed test runs left: their throwaway clusters (stopping a server the
/// kernel did not stop with its run) and their scratch trees in the store. Returns how
/// many directories went.
pub fn reap_abandoned(store: &mcb_store::Store) -> usize {
    let clusters = mcb_database::reap_abandoned_servers();
    let scratch = store.abandoned_staging(STAGING_PREFIX);
    for d in &scratch {
        let _ = mcb_store::remove_tree(d);
    }
    clusters + scratch.len()
}

/// A generation on the site's branch: (commit, tree, commit time).
type LogEntry = (GitOid, GitOid, i64);

/// The generation to upgrade from: what the site's database has run (the release its
/// target's `current` serves, else the one `result` serves), else the newest earlier one
/// whose own test passed, else the one before. A live site's release comes first: after a
/// generation that failed, the next is proved against what the site runs, not against the
/// failure it replaces.
fn previous_generation(
    ctx: &RunContext,
    site: &SiteFile,
    served_by: Option<&Path>,
    log: &[LogEntry],
) -> Result<Option<LogEntry>, TestError> {
    let tree = &log[0].1;
    let earlier: Vec<&LogEntry> = log.iter().skip(1).filter(|(_, t, _)| t != tree).collect();
    let link = mcb_realise::ops::realise::link_path(site, served_by);
    let served: Option<GitOid> = std::fs::read_link(&link).ok().and_then(|t| {
        t.file_name()
            .and_then(|n| GitOid::parse(&n.to_string_lossy()).ok())
    });
    // A deploy directory names each release by its commit (`releases/<commit>`).
    let deployed: Option<GitOid> = site
        .target
        .as_ref()
        .and_then(|t| std::fs::read_link(t.deploy.join("current")).ok())
        .and_then(|l| {
            l.file_name()
                .and_then(|n| GitOid::parse(&n.to_string_lossy()).ok())
        });
    let outcomes = mcb_realise::test_note::outcomes(&ctx.git)?;
    Ok(earlier
        .iter()
        .find(|(c, _, _)| Some(c) == deployed.as_ref())
        .or_else(|| earlier.iter().find(|(_, t, _)| Some(t) == served.as_ref()))
        .or_else(|| {
            earlier.iter().find(|(c, _, _)| {
                outcomes.get(c) == Some(&mcb_realise::test_note::TestOutcome::Passed)
            })
        })
        .or(earlier.first())
        .map(|g| (*g).clone()))
}

/// The steps a test runs: the flags given, else lint, an upgrade from the previous
/// generation (or an install, when there is none) and the schema.
struct Steps {
    lint: bool,
    /// A generation (`-N`, a commit) or a dump file.
    upgrade_from: Option<String>,
    install: bool,
    schema: bool,
}

impl Steps {
    fn of(plan: &TestPlan, previous: Option<&LogEntry>) -> Steps {
        let chosen = plan.lint || plan.install || plan.upgrade_from.is_some() || plan.schema;
        let upgrade_from = match &plan.upgrade_from {
            Some(f) => Some(f.clone()),
            None if !chosen => previous.map(|(c, _, _)| c.as_str().to_string()),
            None => None,
        };
        Steps {
            lint: !chosen || plan.lint,
            install: plan.install
                || (!chosen && previous.is_none())
                || (plan.schema && upgrade_from.is_none()),
            upgrade_from,
            schema: !chosen || plan.schema,
        }
    }
}

impl Run<'_> {
    /// Compares what the generation's release needs (its `admin/environment.xml`) with this
    /// machine's PHP and the database server the test uses, as Moodle's installer will; a
    /// host that falls short fails the step `environment` in those words, before anything
    /// is installed. Returns whether to go on.
    fn environment(&mut self, commit: &GitOid) -> Result<bool, TestError> {
        let started = Instant::now();
        let git = &self.ctx.git;
        let read = |path: &str| -> Result<Option<String>, TestError> {
            Ok(git
                .read_file(commit, path)?
                .map(|b| String::from_utf8_lossy(&b).into_owned()))
        };
        let (version_php, xml) = match read("version.php")? {
            Some(v) => (Some(v), read("admin/environment.xml")?),
            None => (
                read("public/version.php")?,
                read("public/admin/environment.xml")?,
            ),
        };
        let release = version_php
            .and_then(|v| mcb_moodle::CoreVersion::parse(&v).ok())
            .map(|c| c.major_release());
        let (Some(release), Some(xml)) = (release, xml) else {
            return Ok(true);
        };
        let Ok(needs) = mcb_moodle::Requirements::from_environment_xml(&xml, release) else {
            return Ok(true);
        };
        let mut host = mcb_realise::host::probe();
        host.database = Some((
            self.server.engine().environment_vendor().into(),
            self.server.version().to_string(),
        ));
        let unmet = needs.unmet(&host);
        let detail = format!("PHP {}", host.php.as_deref().unwrap_or("?"));
        let failures = unmet
            .into_iter()
            .map(|message| MoodleFailure {
                component: None,
                message,
                code: Some("environment".into()),
            })
            .collect();
        Ok(self.record("environment", started, detail, failures))
    }

    /// Runs the steps on `log[0]`'s tree, into database `db`; a failed step's result is
    /// recorded, an error ends the run.
    fn run_steps(
        &mut self,
        steps: &Steps,
        plan: &TestPlan,
        previous: Option<&LogEntry>,
        log: &[LogEntry],
        db: &str,
        reporter: &dyn Reporter,
    ) -> Result<(), TestError> {
        let tree = &log[0].1;
        if steps.lint {
            self.stopped()?;
            reporter.stage(Stage::Plan, "lint");
            let started = Instant::now();
            let before = previous.filter(|_| !plan.all_files).map(|p| &p.1);
            let files = changed_php(&self.ctx.git, tree, before)?;
            let generation = self.generation(tree)?;
            let failures = lint(&generation, &self.scratch.root, &files)?;
            let detail = format!(
                "{} PHP file{}",
                files.len(),
                if files.len() == 1 { "" } else { "s" }
            );
            self.record("lint", started, detail, failures);
        }
        let installs = steps.upgrade_from.is_some() || steps.install;
        if installs && !self.environment(&log[0].0)? {
            return Ok(());
        }
        if let Some(from) = &steps.upgrade_from {
            reporter.stage(Stage::Materialise, "upgrade");
            if Path::new(from).is_file() {
                let started = Instant::now();
                self.server.fresh_database(db)?;
                // A dump that cannot be restored fails the test at this step, in its words.
                let failures = match self.server.restore(db, Path::new(from)) {
                    Ok(()) => Vec::new(),
                    Err(e) => vec![MoodleFailure {
                        component: None,
                        message: e.message,
                        code: Some("restore".into()),
                    }],
                };
                if self.record("restore", started, from.to_string(), failures) {
                    self.upgrade("upgrade", tree, db, from)?;
                }
            } else {
                let (commit, old_tree) = pick_generation(log, from)?;
                if self.install("install (previous)", &old_tree, db)? {
                    self.upgrade("upgrade", tree, db, short(&commit))?;
                }
            }
        } else if steps.install {
            reporter.stage(Stage::Materialise, "install");
            self.install("install", tree, db)?;
        }
        let installed = self
            .steps
            .iter()
            .any(|s| s.step.starts_with("install") || s.step == "upgrade");
        if steps.schema && installed && self.steps.iter().all(|s| s.passed || s.step == "lint") {
            self.schema()?;
        }
        Ok(())
    }
}

/// Tests the current generation of the site at `site_path`.
pub fn test_site(
    site_path: &Path,
    plan: &TestPlan,
    opts: &RunOptions,
    reporter: &dyn Reporter,
) -> Result<TestReport, TestError> {
    let site = SiteFile::load(site_path)?;
    let target = plan
        .db
        .clone()
        .unwrap_or(DbTarget::Throwaway(mcb_database::Engine::Postgres));
    let php = check_php(target.engine())?;
    DbServer::check_programs(&target)?;
    let ctx = RunContext::open(opts, Some(&site), reporter)?;
    let tip = ctx
        .git
        .branch_head(&site.name)?
        .ok_or_else(|| TestError::NothingToTest {
            site: site.name.clone(),
        })?;
    let mut log = ctx.git.first_parent_log(&tip, 100_000)?;
    if let Some(wanted) = &plan.generation {
        let at = log
            .iter()
            .position(|(c, _, _)| c == wanted)
            .ok_or_else(|| TestError::NoSuchStart {
                from: wanted.to_string(),
            })?;
        log.drain(..at);
    }
    let head = log[0].0.clone();
    let previous = previous_generation(&ctx, &site, plan.served_by.as_deref(), &log)?;
    let steps = Steps::of(plan, previous.as_ref());

    // What a killed test left: its cluster (and server, if the kernel did not stop it with
    // its run) and its scratch tree.
    let reaped = reap_abandoned(&ctx.store);
    let mut notes = Vec::new();
    if reaped > 0 {
        notes.push(format!(
            "{reaped} test director{} that a killed run left {} removed",
            if reaped == 1 { "y" } else { "ies" },
            if reaped == 1 { "was" } else { "were" }
        ));
    }
    if let DbTarget::Throwaway(engine) = &target {
        reporter.stage(Stage::Fetch, engine.name());
    }
    let server = DbServer::open(&target, plan.keep)?;
    let scratch = Scratch::new(&ctx.store)?;
    let db = format!("mcb_test_{}", std::process::id());
    let mut run = Run {
        ctx: &ctx,
        server: &server,
        scratch: &scratch,
        steps: Vec::new(),
        snapshot_used: false,
        stop: plan.stop.clone(),
        notes,
    };
    let outcome = run.run_steps(&steps, plan, previous.as_ref(), &log, &db, reporter);
    let (steps, snapshot_used, notes) = (run.steps, run.snapshot_used, run.notes);
    let database = (
        server.engine().name().to_string(),
        server.version().to_string(),
    );
    server.drop_database(&db);
    let mut kept = Vec::new();
    if plan.keep {
        kept.push(scratch.root.clone());
        if let Some(d) = server.scratch_dir() {
            kept.push(d.to_path_buf());
        }
    } else {
        let _ = std::fs::remove_dir_all(&scratch.root);
    }
    drop(server);
    outcome?;
    let report = TestReport {
        site: site.name.clone(),
        commit: head,
        tree: log[0].1.clone(),
        php,
        database,
        passed: steps.iter().all(|s| s.passed),
        steps,
        snapshot_used,
        kept,
        notes,
    };
    if !plan.unrecorded {
        record_note(&ctx, &report)?;
    }
    Ok(report)
}

/// The generation `from` names on the branch (`gen-N`, `SITE/gen-N`, `-N`, a commit's
/// first digits, as every command takes them): (commit, tree).
fn pick_generation(log: &[LogEntry], from: &str) -> Result<(GitOid, GitOid), TestError> {
    let no_such = || TestError::NoSuchStart {
        from: from.to_string(),
    };
    // The branch is the site's own: a `SITE/` prefix names it.
    let local = from.rsplit_once('/').map_or(from, |(_, g)| g);
    let name = mcb_git::GenerationName::parse(local, "").map_err(|_| no_such())?;
    let at = name.position(log, "").map_err(|_| no_such())?;
    let (c, t, _) = log[at].clone();
    Ok((c, t))
}

/// The result as a git note on the generation's commit (replacing an earlier one).
fn record_note(ctx: &RunContext, r: &TestReport) -> Result<(), TestError> {
    let note = mcb_realise::test_note::TestNote {
        format: mcb_realise::test_note::TEST_NOTE_FORMAT,
        passed: r.passed,
        php: r.php.clone(),
        database: format!("{} {}", r.database.0, r.database.1),
        steps: r
            .steps
            .iter()
            .map(|s| mcb_realise::test_note::NoteStep {
                step: s.step.clone(),
                passed: s.passed,
                seconds: s.seconds,
                detail: s.detail.clone(),
                failures: s.failures.iter().map(|f| f.to_string()).collect(),
            })
            .collect(),
    };
    Ok(mcb_realise::test_note::record(&ctx.git, &r.commit, &note)?)
}
