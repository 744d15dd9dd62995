//! `init`, `add` and `remove`: the site file edited as text (its comments and layout
//! kept), then planned. An edit whose plan fails is undone, so a site file never holds a
//! plugin that cannot be had.

use std::path::{Path, PathBuf};

use mcb_config::SiteFile;
use mcb_config::edit::{NewSource, add_plugin, remove_plugin, starter};

use crate::error::{ErrorKind, Named, RealiseError};
use crate::ops::preview::{Pending, pending};
use crate::options::RunOptions;
use crate::report::Reporter;
use crate::stage::plan::Update;
use crate::stage::publish::write_file_atomic;

/// A change to a site file.
#[derive(Debug, Clone)]
pub enum SiteEdit {
    /// A plugin from `source`, pinned when `version` is given.
    Add {
        component: String,
        /// None: the plugins directory for a new entry, its own source for one there already.
        source: Option<NewSource>,
        version: Option<String>,
    },
    Remove {
        component: String,
    },
}

/// Why an edit failed.
#[derive(Debug)]
pub enum EditError {
    /// The site file could not be read, edited or written: nothing changed.
    Edit(RealiseError),
    /// The edited site file could not be planned: the edit is undone, the file at `site`
    /// is as it was.
    Undone {
        site: PathBuf,
        error: Box<RealiseError>,
    },
}

impl std::fmt::Display for EditError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EditError::Edit(e) => e.fmt(f),
            EditError::Undone { error, .. } => error.fmt(f),
        }
    }
}

impl std::error::Error for EditError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            EditError::Edit(e) => e.source(),
            EditError::Undone { error, .. } => error.source(),
        }
    }
}

impl EditError {
    pub fn kind(&self) -> ErrorKind {
        self.error().kind()
    }

    /// The failure itself, whether or not the edit was undone.
    pub fn error(&self) -> &RealiseError {
        match self {
            EditError::Edit(e) => e,
            EditError::Undone { error, .. } => error,
        }
    }
}

impl<E: Into<RealiseError>> From<E> for EditError {
    fn from(e: E) -> EditError {
        EditError::Edit(e.into())
    }
}

/// A config.php for a new site: written at `file` (outside the codebase, linked into it),
/// naming the codebase served from `codebase`.
#[derive(Debug, Clone)]
pub struct NewConfigPhp {
    pub file: PathBuf,
    /// The served codebase: the site's `result` link, or a deploy directory's `current`.
    pub codebase: Option<PathBuf>,
}

/// Writes a new starter site file at `path` for site `name` on Moodle `moodle`, and with
/// `config` a config.php template the site file links. Files already there are left alone.
pub fn init(
    path: &Path,
    name: &str,
    moodle: mcb_moodle::Release,
    config: Option<&NewConfigPhp>,
) -> Result<(), RealiseError> {
    let exists = |p: &Path, what: &str| RealiseError::Usage {
        message: format!(
            "{} exists already; a starter {what} is written only where none is",
            p.display()
        ),
        about: Named::Existing,
    };
    if path.exists() {
        return Err(exists(path, "site file"));
    }
    let site_dir = std::path::absolute(path)
        .ok()
        .and_then(|p| p.parent().map(Path::to_path_buf))
        .unwrap_or_default();
    let config = match config {
        Some(c) => {
            let file = std::path::absolute(&c.file).unwrap_or_else(|_| c.file.clone());
            if file.exists() || file.is_symlink() {
                return Err(exists(&file, "config.php"));
            }
            let codebase = match &c.codebase {
                Some(d) => std::path::absolute(d).unwrap_or_else(|_| d.clone()),
                None => site_dir.join("result"),
            };
            let text = mcb_moodle::config_template(name, moodle, &codebase.to_string_lossy());
            Some((file, text))
        }
        None => None,
    };
    let target = config
        .as_ref()
        .map(|(f, _)| f.to_string_lossy().into_owned());
    let text = starter(name, &moodle.to_string(), target.as_deref());
    SiteFile::parse(path, &text)?;
    // A new site's directory is made with its file.
    let dirs = [path.parent(), config.as_ref().and_then(|(f, _)| f.parent())];
    for dir in dirs
        .into_iter()
        .flatten()
        .filter(|d| !d.as_os_str().is_empty())
    {
        std::fs::create_dir_all(dir).map_err(|e| RealiseError::Filesystem {
            message: format!("cannot make {}", dir.display()),
            source: e,
        })?;
    }
    if let Some((file, text)) = &config {
        write_private(file, text)?;
    }
    write_file_atomic(path, &text).inspect_err(|_| {
        if let Some((file, _)) = &config {
            let _ = std::fs::remove_file(file);
        }
    })
}

/// A new file only its owner and group read: a config.php gets the database password.
fn write_private(path: &Path, text: &str) -> Result<(), RealiseError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let written = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o640)
        .open(path)
        .and_then(|mut f| f.write_all(text.as_bytes()).and_then(|_| f.sync_all()));
    written.map_err(|e| RealiseError::Filesystem {
        message: format!("cannot write {}", path.display()),
        source: e,
    })
}

/// Edits the site file at `path`, then plans it (as `plan` does); when the plan fails the
/// file is put back as it was.
pub fn edit(
    path: &Path,
    edit: &SiteEdit,
    run: &RunOptions,
    reporter: &dyn Reporter,
) -> Result<Pending, EditError> {
    let old = std::fs::read_to_string(path).map_err(|e| RealiseError::Filesystem {
        message: format!("cannot read {}", path.display()),
        source: e,
    })?;
    let new = match edit {
        SiteEdit::Add {
            component,
            source,
            version,
        } => add_plugin(path, &old, component, source.as_ref(), version.as_deref())?,
        SiteEdit::Remove { component } => remove_plugin(path, &old, component)?,
    };
    write_file_atomic(path, &new)?;
    match pending(path, run, &Update::Nothing, reporter) {
        Ok(p) => Ok(p),
        Err(error) => {
            write_file_atomic(path, &old)?;
            Err(EditError::Undone {
                site: path.to_path_buf(),
                error: Box::new(error),
            })
        }
    }
}

/// Pins the site file at `path` to the lock beside it, so that it asks for exactly that
/// codebase: core to its release, each plugin to its locked version (its source and
/// comments kept), a plugin the lock has and the file lacks put back as it came, one the
/// file has and the lock lacks taken out. What it changed, one line each.
pub fn pin_to_lock(path: &Path) -> Result<Vec<String>, RealiseError> {
    let site = SiteFile::load(path)?;
    let Some(lock) = mcb_config::Lock::load(&site.lock_path())? else {
        return Ok(Vec::new());
    };
    let old = std::fs::read_to_string(path).map_err(|e| RealiseError::Filesystem {
        message: format!("cannot read {}", path.display()),
        source: e,
    })?;
    let mut text = old.clone();
    let mut pinned = Vec::new();
    // The lock is made to say what the pinned site file asks (each pin), so that
    // `realise --locked` takes the restored generation as it is.
    let mut new_lock = lock.clone();
    // `4.5.3 (Build: 20241007)` → `4.5.3`: one release, as a site file names it.
    let release = lock
        .moodle
        .release
        .split_whitespace()
        .next()
        .unwrap_or_default();
    if lock.moodle.spec.as_deref() != Some(release)
        && let Ok(t) = mcb_config::edit::pin_moodle(path, &text, release)
    {
        text = t;
        pinned.push(format!("moodle {release}"));
        new_lock.moodle.spec = Some(release.to_string());
    }
    let listed: Vec<&str> = site.plugins.iter().map(|p| p.component.as_str()).collect();
    for p in lock.plugins.iter().filter(|p| !p.auto) {
        if listed.contains(&p.component.as_str()) {
            if p.pin.as_deref() == Some(p.version.as_str()) {
                continue;
            }
            text = mcb_config::edit::pin_plugin(path, &text, &p.component, &p.version)?;
        } else {
            // In the generation, not in the site file any more: back in, as it came.
            let source = p.request.as_ref().map(new_source_of);
            text = add_plugin(path, &text, &p.component, source.as_ref(), Some(&p.version))?;
        }
        pinned.push(format!("{} {}", p.component, p.version));
        if let Some(l) = new_lock
            .plugins
            .iter_mut()
            .find(|l| l.component == p.component)
        {
            l.pin = Some(p.version.clone());
        }
    }
    // In the site file, not in the generation: out, or the next realise adds it.
    for c in listed {
        if !lock.plugins.iter().any(|p| p.component == c) {
            text = remove_plugin(path, &text, c)?;
            pinned.push(format!("{c} removed"));
        }
    }
    if text != old {
        write_file_atomic(path, &text)?;
    }
    if new_lock != lock {
        write_file_atomic(&site.lock_path(), &new_lock.to_text())?;
    }
    Ok(pinned)
}

/// A locked request as `add` writes it.
fn new_source_of(spec: &mcb_config::SourceSpec) -> NewSource {
    use mcb_config::SourceSpec;
    match spec {
        SourceSpec::Directory => NewSource::Directory,
        SourceSpec::Git { url, reference } => NewSource::Git {
            url: url.clone(),
            reference: reference.clone(),
        },
        SourceSpec::Zip { location, .. } => NewSource::Zip {
            location: location.clone(),
        },
        SourceSpec::Path { dir } => NewSource::Path { dir: dir.clone() },
        SourceSpec::Composer { package, .. } => NewSource::Composer {
            package: package.clone(),
        },
        SourceSpec::Camp => NewSource::Camp,
    }
}
