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
        source: NewSource,
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

/// Writes a new starter site file at `path` for site `name` on Moodle `moodle` (`X.Y`).
/// A file already there is left alone.
pub fn init(path: &Path, name: &str, moodle: &str) -> Result<(), RealiseError> {
    if path.exists() {
        return Err(RealiseError::Usage {
            message: format!(
                "{} exists already; a starter site file is written only where none is",
                path.display()
            ),
            about: Named::Existing,
        });
    }
    let text = starter(name, moodle);
    SiteFile::parse(path, &text)?;
    // A new site's directory is made with its file.
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| RealiseError::Filesystem {
            message: format!("cannot make {}", dir.display()),
            source: e,
        })?;
    }
    write_file_atomic(path, &text)
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
        } => add_plugin(path, &old, component, source, version.as_deref())?,
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
