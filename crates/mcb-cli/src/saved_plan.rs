//! `plan --out FILE` and `realise --plan FILE`, as Terraform's `plan -out` and `apply PLAN`:
//! the plan is saved with what it was made from (the site file's and the lock's bytes, the
//! site's newest generation) and what it chose; realise takes it only when nothing of that
//! moved since, so what was reviewed is what is built.

use std::path::Path;

use mcb_realise::Pending;
use mcb_store::Blake3;
use serde::{Deserialize, Serialize};

use crate::error::CliError;

/// The largest saved plan read: a plan names each plugin once.
const MAX_PLAN_BYTES: u64 = 4 << 20;

const KIND: &str = "mcb-plan";

/// One choice of a saved plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SavedChoice {
    pub component: String,
    pub version: String,
    pub source: String,
}

/// A plan as `plan --out` writes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SavedPlan {
    kind: String,
    format: u32,
    pub site: String,
    /// blake3 of the site file's bytes.
    site_file: Blake3,
    /// blake3 of the lock's bytes; none when there was no lock.
    lock: Option<Blake3>,
    /// The site's newest generation when the plan was made.
    generation: Option<String>,
    moodle_build: String,
    plugins: Vec<SavedChoice>,
    /// What realise would change, as the plan said it (for the reader; not compared).
    changes: Vec<String>,
}

fn hash_of(path: &Path) -> Result<Option<Blake3>, CliError> {
    match std::fs::read(path) {
        Ok(b) => Ok(Some(Blake3::of(&b))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(CliError::failure(
            format!("cannot read {}", path.display()),
            e,
        )),
    }
}

impl SavedPlan {
    /// The plan `p` of the site file at `site_file`.
    pub(crate) fn of(site_file: &Path, p: &Pending) -> Result<SavedPlan, CliError> {
        let site = mcb_config::SiteFile::load(site_file)?;
        Ok(SavedPlan {
            kind: KIND.into(),
            format: 1,
            site: p.site.clone(),
            site_file: hash_of(site_file)?.unwrap_or_else(|| Blake3::of(b"")),
            lock: hash_of(&site.lock_path())?,
            generation: p.generation.as_ref().map(|g| g.as_str().to_string()),
            moodle_build: p.moodle_build.clone(),
            plugins: choices(p),
            changes: p.changes.iter().map(ToString::to_string).collect(),
        })
    }

    pub(crate) fn write(&self, path: &Path) -> Result<(), CliError> {
        let text = serde_json::to_string_pretty(self).expect("plain data") + "\n";
        let dir = path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let mut tmp = tempfile::NamedTempFile::new_in(dir)
            .map_err(|e| CliError::failure(format!("cannot write {}", path.display()), e))?;
        use std::io::Write;
        tmp.write_all(text.as_bytes())
            .and_then(|()| tmp.as_file().sync_all())
            .map_err(|e| CliError::failure(format!("cannot write {}", path.display()), e))?;
        tmp.persist(path)
            .map_err(|e| CliError::failure(format!("cannot write {}", path.display()), e.error))?;
        Ok(())
    }

    /// The plan saved at `path`, checked to be one.
    pub(crate) fn read(path: &Path) -> Result<SavedPlan, CliError> {
        let bad = |m: String| CliError::from(mcb_config::ConfigError::new(path, m));
        let meta =
            std::fs::metadata(path).map_err(|e| bad(format!("cannot read the plan: {e}")))?;
        if meta.len() > MAX_PLAN_BYTES {
            return Err(bad(format!("a plan is at most {MAX_PLAN_BYTES} bytes")));
        }
        let bytes = std::fs::read(path).map_err(|e| bad(format!("cannot read the plan: {e}")))?;
        let plan: SavedPlan = serde_json::from_slice(&bytes)
            .map_err(|e| bad(format!("not a plan `mcb plan --out` wrote: {e}")))?;
        if plan.kind != KIND || plan.format != 1 {
            return Err(bad("not a plan `mcb plan --out` wrote".into()));
        }
        Ok(plan)
    }

    /// What moved between this plan and `now` (the same site planned again), one line
    /// each; empty when realise may take it.
    pub(crate) fn moved(&self, site_file: &Path, now: &SavedPlan) -> Vec<String> {
        let mut out = Vec::new();
        if self.site != now.site {
            out.push(format!(
                "it is a plan of site {}, not of {}",
                self.site, now.site
            ));
            return out;
        }
        if self.site_file != now.site_file {
            out.push(format!("{} changed", site_file.display()));
        }
        if self.lock != now.lock {
            out.push("site.lock changed".into());
        }
        if self.generation != now.generation {
            out.push(format!(
                "the site's newest generation is {} (the plan was made on {})",
                now.generation.as_deref().map_or("none", |g| &g[..12]),
                self.generation
                    .as_deref()
                    .map_or("none", |g| &g[..12.min(g.len())])
            ));
        }
        if self.moodle_build != now.moodle_build {
            out.push(format!(
                "Moodle {} → {}",
                self.moodle_build, now.moodle_build
            ));
        }
        for c in &self.plugins {
            match now.plugins.iter().find(|n| n.component == c.component) {
                None => out.push(format!("{} is no longer chosen", c.component)),
                Some(n) if n != c => out.push(format!(
                    "{} {} ({}) → {} ({})",
                    c.component, c.version, c.source, n.version, n.source
                )),
                Some(_) => {}
            }
        }
        for n in &now.plugins {
            if !self.plugins.iter().any(|c| c.component == n.component) {
                out.push(format!("{} {} is chosen now", n.component, n.version));
            }
        }
        out
    }
}

fn choices(p: &Pending) -> Vec<SavedChoice> {
    p.plugins
        .iter()
        .map(|c| SavedChoice {
            component: c.component.clone(),
            version: c.version.clone(),
            source: c.source.clone(),
        })
        .collect()
}
