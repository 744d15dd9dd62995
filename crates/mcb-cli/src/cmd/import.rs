//! `mcb import`.

use mcb_realise::Recognised;

use crate::cli::{GlobalArgs, ImportArgs};
use crate::error::{CliError, Exit};
use crate::progress::Progress;
use crate::term::{out_json, say};

pub fn run(g: &GlobalArgs, a: &ImportArgs) -> Result<Exit, CliError> {
    let name = match &a.name {
        Some(n) => n.clone(),
        None => {
            // A `result` link is named after the directory that holds it.
            let given = std::path::absolute(&a.dir).unwrap_or_else(|_| a.dir.clone());
            if given.file_name().is_some_and(|n| n == "result") {
                super::site_name_from(given.parent())
            } else {
                super::site_name_from(Some(&given))
            }
        }
    };
    let opts = a.net.options(g);
    let progress = Progress::new(g);
    let result = mcb_realise::import(&a.dir, &name, &a.out, &opts, &progress);
    progress.finish();
    let r = result?;
    let code = if r.same_files() {
        Exit::Success
    } else {
        Exit::Integrity
    };
    if !r.same_files() {
        crate::term::failed(&match (&r.lock_file, &r.lock_tree) {
            (None, _) => format!(
                "{} cannot be reproduced exactly: no lock was written (see the problems above)",
                a.dir.display()
            ),
            (Some(_), Some(t)) => format!(
                "{} cannot be reproduced exactly: the site file builds tree {t}, the installation is tree {}",
                a.dir.display(),
                r.installation_tree
            ),
            (Some(_), None) => format!("{} cannot be reproduced exactly", a.dir.display()),
        });
    }
    if g.json {
        out_json(&crate::json::imported(&r));
        return Ok(code);
    }
    if g.quiet {
        return Ok(code);
    }
    say!(
        "imported {} (Moodle {}) into {}",
        r.site,
        r.moodle_release,
        r.site_file.display()
    );
    for p in std::iter::once(&r.core).chain(&r.plugins) {
        say_piece(p);
    }
    if !r.in_core.is_empty() {
        let shown: Vec<&str> = r.in_core.iter().take(8).map(String::as_str).collect();
        say!(
            "  in core's own tree, so they stay in core: {} plugin{} ({}{})",
            r.in_core.len(),
            if r.in_core.len() == 1 { "" } else { "s" },
            shown.join(", "),
            if r.in_core.len() > shown.len() {
                ", … (--json lists them all)"
            } else {
                ""
            }
        );
    }
    for (from, to) in &r.copied {
        say!("  copied {} → {to}", from.display());
    }
    for (at, target) in &r.links {
        say!("  link {at} → {target}");
    }
    if !r.left_out.is_empty() {
        say!("left out (not code): {}", r.left_out.join(", "));
    }
    match &r.lock_file {
        Some(l) => say!("wrote {}", l.display()),
        None => say!("no lock written"),
    }
    if r.same_files() {
        say!(
            "the site file builds exactly the installation's code (tree {})",
            r.installation_tree
        );
    }
    // With the same files, what could not be recognised is worth knowing, not a failure.
    let label = if r.same_files() {
        "note"
    } else {
        "cannot reproduce"
    };
    for p in &r.problems {
        say!("{label}: {p}");
    }
    for n in &r.notes {
        say!("note: {n}");
    }
    Ok(code)
}

/// How one piece was recognised, and the files that differ from the nearest known one.
fn say_piece(p: &mcb_realise::ImportedPiece) {
    let how = match &p.recognised {
        Recognised::Store { source } => format!("as built before: {source}"),
        Recognised::Checkout { url, commit } => {
            format!("git checkout {url} at {}", &commit[..12.min(commit.len())])
        }
        Recognised::Directory { version } => format!("plugins directory {version}"),
        Recognised::Path { dir } => format!("NOT RECOGNISED: taken from {dir} as it is"),
        Recognised::Release { version } => {
            format!("NOT RECOGNISED: assumed Moodle {version} from moodle.git")
        }
    };
    say!("  {:<28} {how}", p.component);
    if let Some(n) = &p.nearest {
        say!(
            "    {} {} from {n}:",
            p.differs.len(),
            if p.differs.len() == 1 {
                "file differs"
            } else {
                "files differ"
            }
        );
        for d in p.differs.iter().take(20) {
            say!("      {d}");
        }
        if p.differs.len() > 20 {
            say!("      … and {} more", p.differs.len() - 20);
        }
    }
}
