//! Every command the documentation shows is run and its output compared.
//!
//! A ```` ```console ```` block in README.md, docs/*.md or store/README.md is a session:
//! `$ COMMAND` lines are run in order, the lines under each are what it must print
//! (stdout, then stderr), and `? N` right under a command is its exit code (default 0).
//! In expected output, `...` on a line of its own stands for any number of lines, `[..]`
//! for any text within a line, and `[ROOT]` for the directory the session runs in. Each
//! file's blocks run in one sandbox, in order, as a reader following the page would: a
//! fresh directory holding a copy of `examples/`, `MCB_STORE=[ROOT]/store`, nothing
//! reachable on the network. `mcb` is the binary under test; `cd` changes directory;
//! other programs (`git`, `cp`, `cat`) run as themselves, without a shell.
//!
//! `MCB_DOCS_UPDATE=1` writes what was printed into the blocks that differ, for review.

use std::path::{Path, PathBuf};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The pages whose examples run.
fn pages() -> Vec<PathBuf> {
    let root = repo();
    let mut out = vec![root.join("README.md"), root.join("store/README.md")];
    let mut docs: Vec<PathBuf> = std::fs::read_dir(root.join("docs"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    docs.sort();
    out.extend(docs);
    out
}

#[derive(Debug)]
struct Step {
    /// 0-based line of the `$` line.
    line: usize,
    argv: Vec<String>,
    code: i32,
    /// Lines of expected output, and the range of page lines they occupy.
    expected: Vec<String>,
    first: usize,
    end: usize,
}

/// The steps of every console block of a page.
fn steps(text: &str) -> Vec<Step> {
    let lines: Vec<&str> = text.lines().collect();
    let mut out: Vec<Step> = Vec::new();
    let mut in_block = false;
    for (i, l) in lines.iter().enumerate() {
        if !in_block {
            in_block = l.trim_end() == "```console";
            continue;
        }
        if l.starts_with("```") {
            in_block = false;
            continue;
        }
        if let Some(cmd) = l.strip_prefix("$ ") {
            out.push(Step {
                line: i,
                argv: split(cmd),
                code: 0,
                expected: Vec::new(),
                first: i + 1,
                end: i + 1,
            });
        } else if let Some(step) = out.last_mut() {
            if step.expected.is_empty()
                && step.first == i
                && let Some(code) = l.strip_prefix("? ")
            {
                step.code = code.trim().parse().expect("? N takes a number");
                step.first = i + 1;
                step.end = i + 1;
                continue;
            }
            step.expected.push((*l).to_string());
            step.end = i + 1;
        }
    }
    out
}

/// Splits a command line as a POSIX shell would for words, single and double quotes
/// (no variables, no globbing: the examples need none).
fn split(cmd: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    for c in cmd.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => word.push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                in_word = true;
            }
            (None, c) if c.is_whitespace() => {
                if in_word {
                    out.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            (None, c) => {
                word.push(c);
                in_word = true;
            }
        }
    }
    assert!(quote.is_none(), "unclosed quote in `{cmd}`");
    if in_word {
        out.push(word);
    }
    out
}

/// Whether `actual` matches `expected` (with `...` and `[..]`).
fn matches(expected: &[String], actual: &[String]) -> bool {
    match expected.split_first() {
        None => actual.is_empty(),
        Some((e, rest)) if e == "..." => {
            (0..=actual.len()).any(|skip| matches(rest, &actual[skip..]))
        }
        Some((e, rest)) => actual
            .split_first()
            .is_some_and(|(a, arest)| line_matches(e, a) && matches(rest, arest)),
    }
}

fn line_matches(expected: &str, actual: &str) -> bool {
    let parts: Vec<&str> = expected.split("[..]").collect();
    if parts.len() == 1 {
        return expected == actual;
    }
    let mut at = 0;
    for (i, p) in parts.iter().enumerate() {
        if i == 0 {
            if !actual.starts_with(p) {
                return false;
            }
            at = p.len();
        } else if i == parts.len() - 1 {
            return actual.len() >= at + p.len() && actual[at..].ends_with(p);
        } else {
            match actual[at..].find(p) {
                Some(k) => at += k + p.len(),
                None => return false,
            }
        }
    }
    true
}

struct Sandbox {
    _dir: tempfile::TempDir,
    root: PathBuf,
    cwd: PathBuf,
}

impl Sandbox {
    fn new() -> Sandbox {
        let dir = tempfile::tempdir().unwrap();
        // The canonical path, so that what mcb prints and [ROOT] agree.
        let root = dir.path().canonicalize().unwrap();
        let ok = std::process::Command::new("cp")
            .arg("-r")
            .arg(repo().join("examples"))
            .arg(root.join("examples"))
            .status()
            .unwrap()
            .success();
        assert!(ok);
        for stale in ["examples/demo/site.lock", "examples/demo/result"] {
            let _ = std::fs::remove_file(root.join(stale));
        }
        Sandbox {
            cwd: root.clone(),
            root,
            _dir: dir,
        }
    }

    /// Runs one step: its exit code and what it printed, `[ROOT]` put back.
    fn run(&mut self, argv: &[String]) -> (i32, Vec<String>) {
        if argv[0] == "cd" {
            self.cwd = self.cwd.join(&argv[1]).canonicalize().unwrap();
            return (0, Vec::new());
        }
        let program = if argv[0] == "mcb" {
            PathBuf::from(assert_cmd::cargo::cargo_bin!("mcb"))
        } else {
            PathBuf::from(&argv[0])
        };
        let out = std::process::Command::new(program)
            .args(&argv[1..])
            .current_dir(&self.cwd)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", &self.root)
            .env("MCB_STORE", self.root.join("store"))
            .env("MCB_MOODLE_GIT", "/nonexistent/moodle.git")
            .env("TZ", "UTC")
            .env("GIT_AUTHOR_NAME", "admin")
            .env("GIT_AUTHOR_EMAIL", "admin@example.org")
            .env("GIT_COMMITTER_NAME", "admin")
            .env("GIT_COMMITTER_EMAIL", "admin@example.org")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", argv[0]));
        let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
        text.push_str(&String::from_utf8_lossy(&out.stderr));
        let text = text.replace(self.root.to_str().unwrap(), "[ROOT]");
        (
            out.status.code().unwrap_or(-1),
            text.lines().map(|l| l.trim_end().to_string()).collect(),
        )
    }
}

fn run_page(page: &Path, update: bool) -> Vec<String> {
    let text = std::fs::read_to_string(page).unwrap();
    let steps = steps(&text);
    let mut sandbox = Sandbox::new();
    let mut failures = Vec::new();
    // (first, end, replacement) for the update mode.
    let mut rewrites: Vec<(usize, usize, Vec<String>)> = Vec::new();
    for step in &steps {
        let (code, actual) = sandbox.run(&step.argv);
        let ok_code = code == step.code;
        let ok_out = matches(&step.expected, &actual);
        if ok_code && ok_out {
            continue;
        }
        let name = page.strip_prefix(repo()).unwrap_or(page).display();
        failures.push(format!(
            "{name}:{}: `{}` exited {code} (page says {}){}\n--- page\n{}\n--- printed\n{}",
            step.line + 1,
            step.argv.join(" "),
            step.code,
            if ok_out { "" } else { ", output differs" },
            step.expected.join("\n"),
            actual.join("\n"),
        ));
        let mut new = Vec::new();
        if code != 0 {
            new.push(format!("? {code}"));
        }
        new.extend(actual);
        let first = if step.code != 0 {
            step.first - 1
        } else {
            step.first
        };
        rewrites.push((first, step.end, new));
    }
    if update && !rewrites.is_empty() {
        let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
        for (first, end, new) in rewrites.into_iter().rev() {
            lines.splice(first..end, new);
        }
        std::fs::write(page, lines.join("\n") + "\n").unwrap();
    }
    failures
}

#[test]
fn every_command_the_documentation_shows_prints_what_it_says() {
    let update = std::env::var_os("MCB_DOCS_UPDATE").is_some();
    let pages = pages();
    let failures: Vec<String> = std::thread::scope(|s| {
        let runs: Vec<_> = pages
            .iter()
            .map(|p| s.spawn(move || run_page(p, update)))
            .collect();
        runs.into_iter().flat_map(|r| r.join().unwrap()).collect()
    });
    assert!(
        failures.is_empty(),
        "{} example(s) differ:\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}

/// A command shown outside a console block would go unchecked: every `mcb` command line in
/// a code block must be in one.
#[test]
fn the_documentation_shows_mcb_commands_only_in_console_blocks() {
    let mut unchecked = Vec::new();
    for page in pages() {
        let text = std::fs::read_to_string(&page).unwrap();
        let mut block: Option<String> = None;
        for (i, l) in text.lines().enumerate() {
            if let Some(info) = l.strip_prefix("```") {
                block = match block {
                    None => Some(info.trim().to_string()),
                    Some(_) => None,
                };
                continue;
            }
            if let Some(info) = &block
                && info != "console"
                && (l.trim_start().starts_with("mcb ") || l.trim_start().starts_with("$ mcb "))
            {
                unchecked.push(format!("{}:{}: {l}", page.display(), i + 1));
            }
        }
    }
    assert!(
        unchecked.is_empty(),
        "commands outside console blocks:\n{}",
        unchecked.join("\n")
    );
}

#[test]
fn the_matcher_takes_wildcards_and_nothing_else() {
    let v = |s: &[&str]| s.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    assert!(matches(&v(&["a", "...", "d"]), &v(&["a", "b", "c", "d"])));
    assert!(matches(&v(&["a", "...", "d"]), &v(&["a", "d"])));
    assert!(!matches(&v(&["a", "...", "d"]), &v(&["a", "b"])));
    assert!(matches(&v(&["x [..] z"]), &v(&["x y y z"])));
    assert!(!matches(&v(&["x [..] z"]), &v(&["x y y"])));
    assert!(!matches(&v(&["a"]), &v(&["a", "b"])));
    assert_eq!(
        split("mcb add 'a b' \"c\" d"),
        v(&["mcb", "add", "a b", "c", "d"])
    );
}

/// The operating guide shows what `mcb plan` prints when core, a plugin and a dependency
/// move; that scenario needs upstreams with history, so it is the snapshot of the test
/// that builds them (`gitops::plan_…`), shown with the generation id elided.
#[test]
fn the_operating_guide_shows_the_plan_the_gitops_test_snapshots() {
    let snap = std::fs::read_to_string(repo().join("tests/it/snapshots/plan.snap")).unwrap();
    let printed = snap
        .split("--- stdout\n")
        .nth(1)
        .unwrap()
        .replace("[short]", "…");
    let guide = std::fs::read_to_string(repo().join("docs/operating.md")).unwrap();
    assert!(
        guide.contains(&format!("```\n{printed}```")),
        "docs/operating.md should show:\n{printed}"
    );
}

/// Every site file the documentation shows is one mcb accepts.
#[test]
fn every_site_file_the_documentation_shows_parses() {
    let mut checked = 0;
    for page in pages() {
        let text = std::fs::read_to_string(&page).unwrap();
        let mut block: Option<(usize, String)> = None;
        for (i, l) in text.lines().enumerate() {
            match &mut block {
                None if l.trim_end() == "```ron" => block = Some((i + 2, String::new())),
                None => {}
                Some((at, body)) if l.starts_with("```") => {
                    if body.trim_start().starts_with("Site(")
                        || body.lines().any(|l| l.starts_with("Site("))
                    {
                        let path = page.with_file_name("site.ron");
                        // `/* … */` stands for what the page leaves out.
                        let body = body.replace("plugins: { /* … */ },", "plugins: {},");
                        if let Err(e) = mcb_config::SiteFile::parse(&path, &body) {
                            panic!("{}:{at}: {e}", page.display());
                        }
                        checked += 1;
                    }
                    block = None;
                }
                Some((_, body)) => {
                    body.push_str(l);
                    body.push('\n');
                }
            }
        }
    }
    assert!(checked >= 3, "only {checked} site files found");
}

/// Every command `mcb --help` lists has its row in the README's table of commands.
#[test]
fn the_readme_describes_every_command() {
    let help = std::process::Command::new(assert_cmd::cargo::cargo_bin!("mcb"))
        .arg("--help")
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&help.stdout).into_owned();
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    let commands: Vec<&str> = help
        .lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| !l.is_empty())
        .filter_map(|l| l.split_whitespace().next())
        .filter(|c| *c != "help")
        .collect();
    assert!(commands.len() > 20, "{help}");
    let missing: Vec<&&str> = commands
        .iter()
        .filter(|c| {
            !readme.contains(&format!("| `mcb {c}")) && !readme.contains(&format!(", `mcb {c}`"))
        })
        .collect();
    assert!(missing.is_empty(), "README's table lacks {missing:?}");
}

/// The ```` ```sh ```` blocks of every page, in page order: (page, 1-based line, text).
fn sh_blocks() -> Vec<(PathBuf, usize, String)> {
    let mut out = Vec::new();
    for page in pages() {
        let text = std::fs::read_to_string(&page).unwrap();
        let mut block: Option<(usize, String)> = None;
        for (i, l) in text.lines().enumerate() {
            match &mut block {
                None if l.trim_end() == "```sh" => block = Some((i + 2, String::new())),
                None => {}
                Some((at, body)) if l.starts_with("```") => {
                    out.push((page.clone(), *at, std::mem::take(body)));
                    block = None;
                }
                Some((_, body)) => {
                    body.push_str(l);
                    body.push('\n');
                }
            }
        }
    }
    out
}

/// The command CI itself runs: the README's test command. A test cannot run it (it is
/// the run the test is part of), so it is the one block left out, and it must be exactly
/// what `.ci/run` is.
const CI_COMMAND: &str = "bash .ci/run\n";

/// What a newcomer copies is what CI runs: every command of every ```` ```sh ```` block, in
/// page order, verbatim through `bash -e` in a fresh clone of the repository (its
/// committed state), with nothing prepared beforehand. Benchmarks run at smoke scale
/// (`MCB_BENCH_SCALE=smoke`: tiny fixtures, one run); `MCB_STORE` is the clone's `store/`,
/// which the README's first command fills.
#[test]
#[ignore = "builds mcb in release and runs every documented command; .ci/run runs it"]
fn every_sh_block_runs_verbatim_in_a_fresh_clone() {
    let blocks = sh_blocks();
    assert!(
        blocks.iter().any(|(_, _, b)| b == CI_COMMAND),
        "the README's test command is `{}`",
        CI_COMMAND.trim()
    );
    assert!(repo().join(".ci/run").is_file());
    let sandbox = tempfile::tempdir().unwrap();
    let clone = sandbox.path().join("mcb");
    let ok = std::process::Command::new("git")
        .args(["clone", "-q"])
        .arg(repo())
        .arg(&clone)
        .status()
        .unwrap()
        .success();
    assert!(ok, "git clone of the repository failed");
    // Builds go where this test's own build is, so what CI built once is not built again.
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("target"));
    let mut failures = Vec::new();
    for (page, line, block) in &blocks {
        if block == CI_COMMAND {
            continue;
        }
        let name = page.strip_prefix(repo()).unwrap_or(page).display();
        let out = std::process::Command::new("bash")
            .args(["-e", "-u", "-o", "pipefail", "-c", block])
            .current_dir(&clone)
            .env("CARGO_TARGET_DIR", &target)
            .env("MCB_STORE", clone.join("store"))
            .env("MCB_BENCH_SCALE", "smoke")
            .env(
                "MCB_BENCH_DIR",
                sandbox.path().join(format!("bench-{line}")),
            )
            .env("MCB_MOODLE_GIT", "/nonexistent/moodle.git")
            .env_remove("MCB_DIRECTORY")
            .output()
            .unwrap();
        if !out.status.success() {
            failures.push(format!(
                "{name}:{line}: {}exited {:?}\n{}",
                block,
                out.status.code(),
                String::from_utf8_lossy(&out.stderr)
                    .lines()
                    .rev()
                    .take(15)
                    .collect::<Vec<_>>()
                    .into_iter()
                    .rev()
                    .collect::<Vec<_>>()
                    .join("\n")
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    // The README's first command realised the demo into the clone's store.
    let result = clone.join("examples/demo/result");
    assert!(
        std::fs::read_link(&result).is_ok_and(|t| t.starts_with(clone.join("store"))),
        "the demo's result link points into the clone's store"
    );
    assert!(clone.join("examples/demo/site.lock").is_file());
}
