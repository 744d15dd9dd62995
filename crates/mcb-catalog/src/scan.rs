//! A virus scan of each new source package before it is recorded in the store: the site
//! names a scanner (ClamAV's `clamscan` or `clamdscan`, with its database), mcb gives it
//! the package's files and reads its verdict. A hit refuses the package; a scanner that
//! cannot run (not installed, no signature database) is an error, never a pass.

use std::io::Write;

use mcb_store::Store;

use crate::sources::{SourceError, SourceFailure, StoredSource};

/// The scanner's command line: a program and its own options (`["clamscan", "-d",
/// "/srv/clamav"]`); mcb adds `--no-summary --infected --file-list=LIST`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scanner {
    pub argv: Vec<String>,
}

/// What a scanner found in one package: (path in the package, what it found).
pub type Findings = Vec<(String, String)>;

impl Scanner {
    /// Scans the files of `source` (its objects in `store`); the findings, by path.
    pub fn scan(
        &self,
        store: &Store,
        component: &str,
        source: &StoredSource,
    ) -> Result<Findings, SourceError> {
        let failed = |what: String| {
            SourceError::new(component, SourceFailure::Unavailable, what)
                .hint("a package is recorded only once the scanner has passed it: fix the scanner (its program and signature database) or take `scan` out of the site file")
        };
        // The objects by their place in the store, each named back to its path.
        let mut by_object = std::collections::HashMap::new();
        let mut list = Vec::new();
        for e in &source.manifest.entries {
            if e.kind == mcb_store::EntryKind::Symlink {
                continue;
            }
            let p = store.object_path(e.object(), e.executable());
            list.push(p.display().to_string());
            by_object.insert(p.display().to_string(), e.path.clone());
        }
        if list.is_empty() {
            return Ok(Vec::new());
        }
        let mut file = store
            .staging_file()
            .map_err(|e| failed(format!("cannot write the scanner's file list: {e}")))?;
        file.write_all((list.join("\n") + "\n").as_bytes())
            .map_err(|e| failed(format!("cannot write the scanner's file list: {e}")))?;
        let (program, options) = self
            .argv
            .split_first()
            .ok_or_else(|| failed("the scanner's command is empty".into()))?;
        let out = mcb_exec::Program::new(program)
            .args(options)
            .arg("--no-summary")
            .arg("--infected")
            .arg(format!("--file-list={}", file.path().display()))
            .output()
            .map_err(|e| failed(format!("cannot run the scanner {program}: {e}")))?;
        // ClamAV: 0 clean, 1 found, anything else an error (no database, bad option).
        match out.status.code() {
            Some(0) => Ok(Vec::new()),
            Some(1) => {
                let mut found = Vec::new();
                for line in out.stdout_text().lines() {
                    let Some((object, verdict)) = line.rsplit_once(": ") else {
                        continue;
                    };
                    let path = by_object
                        .get(object)
                        .cloned()
                        .unwrap_or_else(|| object.to_string());
                    let verdict = verdict.trim();
                    let verdict = verdict.strip_suffix(" FOUND").unwrap_or(verdict);
                    found.push((path, verdict.to_string()));
                }
                if found.is_empty() {
                    return Err(failed(format!(
                        "{program} reported a find it did not name: {}",
                        out.all_text().trim()
                    )));
                }
                Ok(found)
            }
            _ => Err(failed(format!(
                "the scanner {program} could not scan ({}): {}",
                out.status,
                out.stderr_text().lines().last().unwrap_or("").trim()
            ))),
        }
    }
}
