//! What a snapshot of mcb's output shows: the exit code, stdout (a JSON document pretty
//! printed) and stderr, with a test's directory, ids, hashes, ports and sizes replaced by
//! placeholders, so a snapshot changes only when the output does.

use std::path::Path;

/// The output of one run, as a snapshot shows it.
pub fn shown(out: &std::process::Output) -> String {
    let mut s = format!("exit: {}\n", out.status.code().unwrap_or(-1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stdout = match serde_json::from_str::<serde_json::Value>(&stdout) {
        Ok(v) => serde_json::to_string_pretty(&v).unwrap() + "\n",
        Err(_) => stdout.into_owned(),
    };
    if !stdout.is_empty() {
        s.push_str("--- stdout\n");
        s.push_str(&stdout);
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !stderr.is_empty() {
        s.push_str("--- stderr\n");
        s.push_str(&stderr);
    }
    s
}

/// Snapshot settings for a test whose files are under `dir`: snapshots in `snapshots/`
/// beside the test, and `dir`, every id, hash, port and size as placeholders.
pub fn settings(dir: &Path) -> insta::Settings {
    let mut s = insta::Settings::clone_current();
    s.set_snapshot_path("snapshots");
    s.set_prepend_module_to_snapshot(false);
    s.set_omit_expression(true);
    let real = std::fs::canonicalize(dir).unwrap();
    s.add_filter(&regex::escape(real.to_str().unwrap()), "[dir]");
    s.add_filter(&regex::escape(dir.to_str().unwrap()), "[dir]");
    s.add_filter(r"\b[0-9a-f]{64}\b", "[hash]");
    s.add_filter(r"\b[0-9a-f]{40}\b", "[id]");
    s.add_filter(r"\b[0-9a-f]{32}\b", "[md5]");
    s.add_filter(r"\b[0-9a-f]{12}\b", "[short]");
    s.add_filter(r"127\.0\.0\.1:\d+", "127.0.0.1:[port]");
    // Times the store records when things happen (history's made and served).
    s.add_filter(
        r"\b(made|served|last) \d{4}-\d\d-\d\d \d\d:\d\d",
        "$1 [time]",
    );
    s.add_filter(r"readiness on \d{4}-\d\d-\d\d", "readiness on [today]");
    s.add_filter(r"\b\d+(\.\d)? (B|KB|MB|GB)\b", "[size]");
    // What git's own collection frees depends on git's version.
    s.add_filter(r#""git_bytes": \d+"#, r#""git_bytes": [n]"#);
    s
}
