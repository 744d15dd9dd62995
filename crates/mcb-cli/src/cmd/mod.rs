//! One module per subcommand: each runs its operation and presents the outcome, as text or
//! as its JSON document.

pub mod apply;
pub mod audit;
pub mod cache;
pub mod check;
pub mod deploy;
pub mod edit;
pub mod gc;
pub mod graph;
pub mod history;
pub mod import;
pub mod info;
pub mod manual;
pub mod plan;
pub mod push;
pub mod realise;
pub mod reconcile;
pub mod reproduce;
pub mod sites;
pub mod status;
pub mod test;
pub mod update;
pub mod verify;

/// A site name made from a directory's name: lowercase letters, digits, `-` and `_`.
pub(crate) fn site_name_from(dir: Option<&std::path::Path>) -> String {
    let raw = dir
        .and_then(|d| d.file_name())
        .map(|n| n.to_string_lossy().to_lowercase())
        .unwrap_or_default();
    let clean: String = raw
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect();
    if clean.is_empty() {
        "site".into()
    } else {
        clean
    }
}

/// What moved, one line each (nothing on a site's first build: everything is new, and the
/// list of plugins follows).
pub(crate) fn say_changes(changes: &[mcb_realise::Change]) {
    use crate::term::say;
    let first = changes
        .iter()
        .any(|c| matches!(c, mcb_realise::Change::Core { from: None, .. }));
    if first {
        return;
    }
    for c in changes {
        say!("  {c}");
    }
}

/// `n thing` or `n things`.
pub(crate) fn plural(n: usize, thing: &str) -> String {
    if n == 1 {
        format!("{n} {thing}")
    } else if let Some(stem) = thing.strip_suffix('y') {
        format!("{n} {stem}ies")
    } else {
        format!("{n} {thing}s")
    }
}
