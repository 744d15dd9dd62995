//! `mcb apply`: a generation brought to the live site, database and all. In order: the
//! generation's test must have passed; the live database is backed up; the upgrade is
//! rehearsed on a throwaway copy of that backup; then, on the live site, plugins the
//! generation drops are uninstalled with the code that has them, maintenance mode goes on,
//! `current` is switched, Moodle upgrades, caches are purged, maintenance goes off, and the
//! health page must answer. A failure on the live site puts it back: the release before,
//! the database from the backup, maintenance off. A journal in the deploy directory makes
//! a killed apply recoverable by the next one.

use std::path::{Path, PathBuf};
use std::time::Instant;

use mcb_config::{SiteFile, Target};
use mcb_database::{DbServer, DbTarget};
use mcb_deploy::{DeployRequest, DeploySource, KEEP_RELEASES};
use mcb_realise::{RealiseError, Reporter, RunContext, RunOptions, TestOutcome};
use mcb_store::{GitOid, LinkMode};

use crate::backup::{back_up, backups_dir, engine_of, live_server, prune};
use crate::error::{ApplyError, ApplyFailure};
use crate::journal::{Journal, Phase};
use crate::moodle::{SiteDatabase, read_site_database, read_state, run_cli, said};
use crate::record::{APPLY_NOTE_FORMAT, ApplyNote, ApplyOutcome, StepDone, record};

/// What to apply, and how.
#[derive(Debug, Clone, Default)]
pub struct ApplyRequest {
    pub site_path: PathBuf,
    /// `gen-N` or a commit's prefix; the site's newest generation when none.
    pub to: Option<String>,
    /// Apply a generation whose test failed or never ran.
    pub untested: bool,
}

/// Hears each step as it starts and ends (the CLI says it as it happens).
pub trait ApplyWatch {
    fn started(&self, _site: &str, _step: &str) {}
    fn finished(&self, _site: &str, _step: &StepDone) {}
}

/// A watch that hears nothing.
pub struct Unwatched;

impl ApplyWatch for Unwatched {}

/// What an apply did.
#[derive(Debug, Clone)]
pub struct Applied {
    pub site: String,
    pub generation: GitOid,
    /// Its number on the site's branch.
    pub number: Option<usize>,
    /// The commit `current` served before.
    pub from: Option<String>,
    pub steps: Vec<StepDone>,
    /// What a killed apply had left, and how it was put back first.
    pub recovered: Option<String>,
    /// The site already ran this generation: nothing was done.
    pub unchanged: bool,
    /// Backups of the site kept after this one.
    pub backups_kept: usize,
}

/// The steps of one apply, timed and told as they run.
struct Steps<'a> {
    site: String,
    done: Vec<StepDone>,
    watch: &'a dyn ApplyWatch,
}

impl Steps<'_> {
    /// Runs `f` as step `name`; its `Ok` is the step's detail, its `Err` Moodle's message.
    fn run(
        &mut self,
        name: &str,
        f: impl FnOnce() -> Result<String, String>,
    ) -> Result<(), String> {
        self.watch.started(&self.site, name);
        let started = Instant::now();
        let outcome = f();
        let step = StepDone {
            step: name.to_string(),
            passed: outcome.is_ok(),
            seconds: started.elapsed().as_secs_f64(),
            detail: match &outcome {
                Ok(d) => d.clone(),
                Err(m) => m.clone(),
            },
        };
        self.watch.finished(&self.site, &step);
        self.done.push(step);
        outcome.map(|_| ())
    }
}

/// Runs Moodle's `script` with `args` in `codebase`; `Ok(what)` when it exits 0.
fn moodle_step(
    php: &str,
    codebase: &Path,
    script: &str,
    args: &[&str],
    what: &str,
) -> Result<String, String> {
    let out = run_cli(php, codebase, script, args).map_err(|e| e.to_string())?;
    if out.success() {
        Ok(what.to_string())
    } else {
        Err(said(&out))
    }
}

/// Holds `DIR/.mcb-apply.lock`: one apply at a time on a site's deploy directory.
fn hold_apply_lock(dir: &Path) -> Result<std::fs::File, ApplyError> {
    use std::os::unix::fs::OpenOptionsExt;
    let path = dir.join(".mcb-apply.lock");
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&path)
        .and_then(|f| f.lock().map(|()| f))
        .map_err(|e| ApplyError::Filesystem {
            message: format!("cannot lock {}", path.display()),
            source: e,
        })?;
    Ok(f)
}

/// The commit a release directory is named by.
fn release_commit(release: &Path) -> Option<String> {
    release
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .filter(|n| GitOid::parse(n).is_ok())
}

/// What the store knows of the generation to apply.
struct Chosen {
    commit: GitOid,
    number: Option<usize>,
    test: Option<TestOutcome>,
    /// Components the served generation has and this one does not.
    dropped: Vec<String>,
}

fn choose(
    site: &SiteFile,
    opts: &RunOptions,
    to: Option<&str>,
    served: Option<&str>,
) -> Result<Chosen, ApplyError> {
    let ctx = RunContext::open(opts, None, &mcb_realise::Silent)?;
    let tip = ctx
        .git
        .branch_head(&site.name)
        .map_err(RealiseError::from)?
        .ok_or_else(|| ApplyError::NotDeployed {
            message: format!(
                "site {} has no generation to apply: realise it first",
                site.name
            ),
        })?;
    let commit = mcb_deploy::pick_commit(&ctx.git, &site.name, &tip, to)?;
    let log = ctx
        .git
        .first_parent_log(&tip, 100_000)
        .map_err(RealiseError::from)?;
    let number = log
        .iter()
        .position(|(c, _, _)| *c == commit)
        .map(|i| log.len() - i);
    let test = mcb_realise::test_note::outcomes(&ctx.git)?
        .get(&commit)
        .copied();
    let components = |c: &GitOid| -> Result<Vec<String>, ApplyError> {
        Ok(mcb_realise::lock_in_commit(&ctx.git, c)?
            .map(|l| l.plugins.into_iter().map(|p| p.component).collect())
            .unwrap_or_default())
    };
    let keeps = components(&commit)?;
    let dropped = match served.and_then(|s| GitOid::parse(s).ok()) {
        Some(s) => components(&s)?
            .into_iter()
            .filter(|c| !keeps.contains(c))
            .collect(),
        None => Vec::new(),
    };
    Ok(Chosen {
        commit,
        number,
        test,
        dropped,
    })
}

/// Applies a generation of the site at `request.site_path` to its target.
pub fn apply(
    request: &ApplyRequest,
    opts: &RunOptions,
    reporter: &dyn Reporter,
    watch: &dyn ApplyWatch,
) -> Result<Applied, ApplyError> {
    let site = SiteFile::load(&request.site_path).map_err(RealiseError::from)?;
    let target = site.target.clone().ok_or_else(|| ApplyError::NoTarget {
        site: site.name.clone(),
    })?;
    let dir = target.deploy.clone();
    std::fs::create_dir_all(&dir).map_err(|e| ApplyError::Filesystem {
        message: format!("cannot make {}", dir.display()),
        source: e,
    })?;
    let _apply_lock = hold_apply_lock(&dir)?;
    let backups = backups_dir(&target.backups, &dir)?;
    let db = read_site_database(&target.php, &target.config)?;
    let mut steps = Steps {
        site: site.name.clone(),
        done: Vec::new(),
        watch,
    };
    let recovered = match Journal::read(&dir, &backups)? {
        Some(j) => Some(recover(&j, &target, &db, &mut steps)?),
        None => None,
    };
    let served = mcb_deploy::served_release(&dir).ok_or_else(|| ApplyError::NotDeployed {
        message: format!(
            "{}/current serves nothing: deploy a generation there and install Moodle first",
            dir.display()
        ),
    })?;
    let from = release_commit(&served);
    let chosen = choose(&site, opts, request.to.as_deref(), from.as_deref())?;
    let mut applied = Applied {
        site: site.name.clone(),
        generation: chosen.commit.clone(),
        number: chosen.number,
        from: from.clone(),
        steps: Vec::new(),
        recovered,
        unchanged: false,
        backups_kept: 0,
    };
    if from.as_deref() == Some(chosen.commit.as_str()) {
        let state = read_state(&target.php, &served)?;
        if !crate::moodle::upgrade_pending(&target.php, &served)? && !state.maintenance {
            applied.unchanged = true;
            applied.steps = steps.done;
            return Ok(applied);
        }
    }
    match (chosen.test, request.untested) {
        (Some(TestOutcome::Passed), _) | (_, true) => {}
        (outcome, false) => {
            return Err(ApplyError::Untested {
                site: site.name.clone(),
                generation: generation_name(&chosen.commit, chosen.number),
                why: if outcome.is_some() {
                    "failed its test"
                } else {
                    "was never tested"
                },
            });
        }
    }
    let mut journal = Journal::new(&site.name, Some(served.clone()), chosen.commit.as_str());
    journal.write(&dir)?;
    let run = Run {
        site: site.name.clone(),
        request,
        target: &target,
        db: &db,
        opts,
        reporter,
        dir: &dir,
        backups: &backups,
        served: &served,
        chosen: &chosen,
        generation: generation_name(&chosen.commit, chosen.number),
    };
    let outcome = run.go(&mut journal, &mut steps);
    applied.steps = steps.done.clone();
    let (outcome_word, result) = match outcome {
        Ok(kept) => {
            applied.backups_kept = kept;
            (ApplyOutcome::Applied, Ok(applied))
        }
        Err(failure) => (
            failure.outcome,
            Err(ApplyError::Failed(Box::new(ApplyFailure {
                site: site.name.clone(),
                generation: run.generation.clone(),
                step: failure.step,
                message: failure.message,
                outcome: failure.outcome,
                steps: steps.done.clone(),
                serves: mcb_deploy::served_release(&dir),
            }))),
        ),
    };
    note(opts, &site.name, &chosen.commit, outcome_word, &steps.done)?;
    result
}

/// `gen-N (abcdef123456)`.
fn generation_name(commit: &GitOid, number: Option<usize>) -> String {
    let short = &commit.as_str()[..12];
    match number {
        Some(n) => format!("gen-{n} ({short})"),
        None => short.to_string(),
    }
}

/// Records how the apply ended on the generation.
fn note(
    opts: &RunOptions,
    site: &str,
    commit: &GitOid,
    outcome: ApplyOutcome,
    steps: &[StepDone],
) -> Result<(), ApplyError> {
    let ctx = RunContext::open(opts, None, &mcb_realise::Silent)?;
    record(
        &ctx.git,
        commit,
        &ApplyNote {
            format: APPLY_NOTE_FORMAT,
            site: site.to_string(),
            outcome,
            steps: steps.to_vec(),
        },
    )
}

/// A failed apply: where, Moodle's words, and what the site was left as.
struct Failure {
    step: String,
    message: String,
    outcome: ApplyOutcome,
}

/// One apply's settings, read once.
struct Run<'a> {
    site: String,
    request: &'a ApplyRequest,
    target: &'a Target,
    db: &'a SiteDatabase,
    opts: &'a RunOptions,
    reporter: &'a dyn Reporter,
    dir: &'a Path,
    backups: &'a Path,
    served: &'a Path,
    chosen: &'a Chosen,
    generation: String,
}

/// The step a failure happened in, from the last step recorded.
fn failed_at(steps: &Steps<'_>, message: String, outcome: ApplyOutcome) -> Failure {
    Failure {
        step: steps
            .done
            .last()
            .map(|s| s.step.clone())
            .unwrap_or_default(),
        message,
        outcome,
    }
}

impl Run<'_> {
    /// The steps, in order; `Ok` holds how many backups are kept.
    fn go(&self, journal: &mut Journal, steps: &mut Steps<'_>) -> Result<usize, Failure> {
        let php = self.target.php.as_str();
        let prepare = |m: String| Failure {
            step: String::new(),
            message: m,
            outcome: ApplyOutcome::RehearsalFailed,
        };
        // The live database, before anything changes it.
        let engine = engine_of(self.db).map_err(|e| prepare(e.to_string()))?;
        let server = live_server(self.db).map_err(|e| prepare(e.to_string()))?;
        let mut backup = None;
        let kept = steps
            .run("backup", || {
                let (path, size) = back_up(
                    &self.site,
                    self.db,
                    &server,
                    &self.target.backups,
                    self.backups,
                )
                .map_err(|e| e.to_string())?;
                backup = Some(path);
                Ok(format!("{} of the live database", bytes(size)))
            })
            .map_err(|m| failed_at(steps, m, ApplyOutcome::RehearsalFailed));
        if let Err(f) = kept {
            Journal::remove(self.dir);
            return Err(f);
        }
        let backup = backup.expect("a backup was written");
        journal.backup = Some(backup.clone());
        journal.step = "rehearse".into();
        journal
            .write(self.dir)
            .map_err(|e| prepare(e.to_string()))?;
        let kept = prune(&self.site, self.backups, self.target.backups.keep);

        // The upgrade, on a throwaway copy of the backup, with the new code.
        let rehearsal = steps.run("rehearse", || self.rehearse(&backup, engine));
        if let Err(m) = rehearsal {
            Journal::remove(self.dir);
            return Err(failed_at(steps, m, ApplyOutcome::RehearsalFailed));
        }
        // The release laid out beside the live one: the switch is one rename.
        let mut staged = None;
        let stage = steps.run("stage", || {
            let (d, lock) = mcb_deploy::stage_release(&DeployRequest {
                source: DeploySource::Store(self.opts.store.clone()),
                site: self.site.clone(),
                commit: Some(self.chosen.commit.to_string()),
                dir: self.dir.to_path_buf(),
                keep: KEEP_RELEASES,
                link: LinkMode::Clone,
                // The test gate is apply's own, before the backup.
                untested: true,
            })
            .map_err(|e| e.to_string())?;
            let detail = format!("release {}", &d.commit.as_str()[..12]);
            staged = Some((d, lock));
            Ok(detail)
        });
        if let Err(m) = stage {
            Journal::remove(self.dir);
            return Err(failed_at(steps, m, ApplyOutcome::RehearsalFailed));
        }
        let (staged, _deploy_lock) = staged.expect("a release was staged");

        // The live site, from here on undone on failure.
        journal.phase = Phase::Live;
        journal
            .write(self.dir)
            .map_err(|e| prepare(e.to_string()))?;
        let live = self.live_steps(php, &staged.release, journal, steps);
        if let Err(m) = live {
            let at = steps
                .done
                .last()
                .map(|s| s.step.clone())
                .unwrap_or_default();
            let outcome = match put_back(
                self.target,
                self.db,
                &server,
                self.served,
                &backup,
                self.dir,
                journal,
                steps,
            ) {
                Ok(()) => ApplyOutcome::RolledBack,
                Err(_) => ApplyOutcome::RollbackFailed,
            };
            return Err(Failure {
                step: at,
                message: m,
                outcome,
            });
        }
        Journal::remove(self.dir);
        mcb_deploy::prune_releases(self.dir, KEEP_RELEASES);
        Ok(kept)
    }

    /// Restores `backup` into a throwaway server and upgrades it with the new code.
    fn rehearse(&self, backup: &Path, engine: mcb_database::Engine) -> Result<String, String> {
        let plan = mcb_sitetest::TestPlan {
            upgrade_from: Some(backup.to_string_lossy().into_owned()),
            db: Some(DbTarget::Throwaway(engine)),
            generation: Some(self.chosen.commit.clone()),
            unrecorded: true,
            ..mcb_sitetest::TestPlan::default()
        };
        let report =
            mcb_sitetest::test_site(&self.request.site_path, &plan, self.opts, self.reporter)
                .map_err(|e| e.to_string())?;
        if report.passed {
            let secs: f64 = report.steps.iter().map(|s| s.seconds).sum();
            return Ok(format!(
                "the live database's copy upgraded on {} {} in {secs:.1} s",
                report.database.0, report.database.1
            ));
        }
        let said: Vec<String> = report
            .steps
            .iter()
            .filter(|s| !s.passed)
            .flat_map(|s| {
                let step = s.step.clone();
                s.failures.iter().map(move |f| format!("{step}: {f}"))
            })
            .collect();
        Err(if said.is_empty() {
            "the rehearsal failed".into()
        } else {
            said.join("; ")
        })
    }

    /// Uninstall, maintenance, switch, upgrade, caches, maintenance off, health.
    fn live_steps(
        &self,
        php: &str,
        release: &Path,
        journal: &mut Journal,
        steps: &mut Steps<'_>,
    ) -> Result<(), String> {
        let at = |journal: &mut Journal, step: &str| {
            journal.step = step.to_string();
            let _ = journal.write(self.dir);
        };
        if !self.chosen.dropped.is_empty() {
            at(journal, "uninstall");
            let state = read_state(php, self.served).map_err(|e| e.to_string())?;
            let installed: Vec<&str> = self
                .chosen
                .dropped
                .iter()
                .filter(|c| state.plugins.get(*c).is_some_and(|s| s.db.is_some()))
                .map(String::as_str)
                .collect();
            if !installed.is_empty() {
                let list = installed.join(",");
                let arg = format!("--plugins={list}");
                steps.run("uninstall", || {
                    moodle_step(
                        php,
                        self.served,
                        "admin/cli/uninstall_plugins.php",
                        &[&arg, "--run"],
                        &format!("{list}, by Moodle's uninstaller with the code that has them"),
                    )
                })?;
            }
        }
        at(journal, "maintenance on");
        if let Some(m) = &self.target.maintenance_message {
            let set = format!("--set={m}");
            steps.run("maintenance message", || {
                moodle_step(
                    php,
                    self.served,
                    "admin/cli/cfg.php",
                    &["--name=maintenance_message", &set],
                    "set",
                )
            })?;
        }
        steps.run("maintenance on", || {
            moodle_step(
                php,
                self.served,
                "admin/cli/maintenance.php",
                &["--enable"],
                "the site shows its maintenance page",
            )
        })?;
        at(journal, "switch");
        steps.run("switch", || {
            mcb_deploy::switch_release(self.dir, release)
                .map(|()| format!("current → {}", &self.chosen.commit.as_str()[..12]))
                .map_err(|e| e.to_string())
        })?;
        if let Some(argv) = &self.target.reload {
            steps.run("reload", || reload(argv))?;
        }
        at(journal, "upgrade");
        steps.run("upgrade", || {
            moodle_step(
                php,
                release,
                "admin/cli/upgrade.php",
                &["--non-interactive"],
                "Moodle's upgrade.php --non-interactive",
            )
        })?;
        at(journal, "purge caches");
        steps.run("purge caches", || {
            moodle_step(php, release, "admin/cli/purge_caches.php", &[], "purged")
        })?;
        at(journal, "maintenance off");
        steps.run("maintenance off", || {
            moodle_step(
                php,
                release,
                "admin/cli/maintenance.php",
                &["--disable"],
                "the site is open",
            )
        })?;
        if let Some(h) = &self.target.health {
            at(journal, "health");
            steps.run("health", || crate::health::check(h))?;
        }
        Ok(())
    }
}

/// Puts the live site back as it was before: maintenance on, the release before, the
/// database from the backup, caches purged, maintenance off, health checked. Each step is
/// tried; the first that fails leaves the journal for the next apply to finish. The caller
/// holds the deploy directory's lock.
#[allow(clippy::too_many_arguments)]
fn put_back(
    target: &Target,
    db: &SiteDatabase,
    server: &DbServer,
    release: &Path,
    backup: &Path,
    dir: &Path,
    journal: &mut Journal,
    steps: &mut Steps<'_>,
) -> Result<(), String> {
    let php = target.php.as_str();
    journal.phase = Phase::RollingBack;
    journal.step = "roll back".into();
    let _ = journal.write(dir);
    // Maintenance on with whatever code serves now; the step is told, not fatal (the code
    // that serves may be the code that failed).
    let current = mcb_deploy::served_release(dir).unwrap_or_else(|| release.to_path_buf());
    let _ = steps.run("rollback: maintenance on", || {
        moodle_step(
            php,
            &current,
            "admin/cli/maintenance.php",
            &["--enable"],
            "on",
        )
    });
    steps.run("rollback: switch", || {
        mcb_deploy::switch_release(dir, release)
            .map(|()| {
                format!(
                    "current → {}",
                    release_commit(release).as_deref().unwrap_or("?")
                )
            })
            .map_err(|e| e.to_string())
    })?;
    if let Some(argv) = &target.reload {
        steps.run("rollback: reload", || reload(argv))?;
    }
    steps.run("rollback: restore database", || {
        server
            .restore_over(&db.name, backup, &db.prefix)
            .map(|()| "the backup taken before the apply".to_string())
            .map_err(|e| e.to_string())
    })?;
    let _ = steps.run("rollback: purge caches", || {
        moodle_step(php, release, "admin/cli/purge_caches.php", &[], "purged")
    });
    steps.run("rollback: maintenance off", || {
        moodle_step(
            php,
            release,
            "admin/cli/maintenance.php",
            &["--disable"],
            "the site is open",
        )
    })?;
    Journal::remove(dir);
    if let Some(h) = &target.health {
        // Told, not undone: there is nothing before the release before.
        let _ = steps.run("rollback: health", || crate::health::check(h));
    }
    Ok(())
}

/// Finishes what a killed apply left: nothing to undo while it was preparing; else the site
/// is put back as it was before it.
fn recover(
    j: &Journal,
    target: &Target,
    db: &SiteDatabase,
    steps: &mut Steps<'_>,
) -> Result<String, ApplyError> {
    let dir = &target.deploy;
    let short = &j.to[..12.min(j.to.len())];
    if j.phase == Phase::Preparing {
        Journal::remove(dir);
        return Ok(format!(
            "an apply of {short} was cut off while preparing ({}); the live site was not touched",
            j.step
        ));
    }
    let (Some(release), Some(backup)) = (&j.from_release, &j.backup) else {
        return Err(ApplyError::NotDeployed {
            message: "an apply was cut off and its journal names no release or backup to put back"
                .into(),
        });
    };
    let server = live_server(db)?;
    let _deploy_lock = mcb_deploy::lock_deploy(dir)?;
    let mut journal = j.clone();
    put_back(
        target,
        db,
        &server,
        release,
        backup,
        dir,
        &mut journal,
        steps,
    )
    .map_err(|message| {
        ApplyError::Failed(Box::new(ApplyFailure {
            site: j.site.clone(),
            generation: short.to_string(),
            step: "recovery".into(),
            message,
            outcome: ApplyOutcome::RollbackFailed,
            steps: steps.done.clone(),
            serves: mcb_deploy::served_release(dir),
        }))
    })?;
    Ok(format!(
        "an apply of {short} was cut off at {}; the site was put back as it was before it",
        j.step
    ))
}

/// `12.3 MB`.
fn bytes(n: u64) -> String {
    if n >= 1 << 20 {
        format!("{:.1} MB", n as f64 / (1u64 << 20) as f64)
    } else {
        format!("{:.1} kB", n as f64 / 1024.0)
    }
}

/// Runs the target's reload command (PHP-FPM's, the web server's).
fn reload(argv: &[String]) -> Result<String, String> {
    let out = mcb_exec::Program::new(&argv[0])
        .args(&argv[1..])
        .output()
        .map_err(|e| format!("cannot run {}: {e}", argv[0]))?;
    if out.success() {
        Ok(argv.join(" "))
    } else {
        Err(format!(
            "{} failed ({}): {}",
            argv.join(" "),
            mcb_exec::describe(out.status),
            mcb_exec::last_lines(&out.all_text(), 3)
        ))
    }
}

/// Why the newest generation of the site at `site_path` is not to be applied by an
/// automatic round: its test failed, or its apply on this site failed before. `None`: go.
pub fn held_back(site_path: &Path, opts: &RunOptions) -> Result<Option<String>, ApplyError> {
    let site = SiteFile::load(site_path).map_err(RealiseError::from)?;
    let ctx = RunContext::open(opts, None, &mcb_realise::Silent)?;
    let Some(head) = ctx
        .git
        .branch_head(&site.name)
        .map_err(RealiseError::from)?
    else {
        return Ok(None);
    };
    let short = &head.as_str()[..12];
    if mcb_realise::test_note::outcomes(&ctx.git)?.get(&head) == Some(&TestOutcome::Failed) {
        return Ok(Some(format!(
            "{short} failed its test; it is not applied until the site file or upstream changes"
        )));
    }
    if let Some(note) = crate::record::recorded(&ctx.git)?.get(&head)
        && note.outcome != ApplyOutcome::Applied
    {
        return Ok(Some(format!(
            "the apply of {short} {} before; it is not tried again until the site file or upstream changes",
            note.outcome.word()
        )));
    }
    Ok(None)
}
