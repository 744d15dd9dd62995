//! The shape of every `--json` document, under review: each command is run on one site
//! and its document reduced to its schema (each field's name and the types its values
//! took), so a field renamed, dropped or retyped shows as a snapshot change whatever the
//! values were. `test --json` is covered where `mcb test` runs (moodle_test.rs).

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::snapshots::{sample, settings};
use crate::support::*;

/// The type of a JSON value, as a schema names it.
fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// A value's schema: scalars by type, arrays by the union of their elements' schemas,
/// objects by field; a field that took several types lists them all (`null | string`).
/// Maps keyed by data (plugins by component, gc's sites) are objects like any other: the
/// fixture fixes their keys.
#[derive(Default)]
struct Shape {
    types: std::collections::BTreeSet<&'static str>,
    fields: BTreeMap<String, Shape>,
    items: Option<Box<Shape>>,
}

impl Shape {
    fn add(&mut self, v: &Value) {
        self.types.insert(type_name(v));
        match v {
            Value::Object(m) => {
                for (k, v) in m {
                    self.fields.entry(k.clone()).or_default().add(v);
                }
            }
            Value::Array(a) => {
                let items = self.items.get_or_insert_with(Box::default);
                for v in a {
                    items.add(v);
                }
            }
            _ => {}
        }
    }

    fn render(&self) -> Value {
        let mut parts: Vec<Value> = Vec::new();
        for t in &self.types {
            parts.push(match *t {
                "object" => Value::Object(
                    self.fields
                        .iter()
                        .map(|(k, s)| (k.clone(), s.render()))
                        .collect(),
                ),
                "array" => match &self.items {
                    Some(i) if !i.types.is_empty() => json!([i.render()]),
                    _ => json!([]),
                },
                t => json!(t),
            });
        }
        // Scalars joined as one string (`null | string`), then any object or array.
        let scalars: Vec<&str> = parts.iter().filter_map(Value::as_str).collect();
        let mut rest: Vec<Value> = parts.iter().filter(|p| !p.is_string()).cloned().collect();
        if !scalars.is_empty() {
            rest.insert(0, json!(scalars.join(" | ")));
        }
        if rest.len() == 1 {
            return rest.remove(0);
        }
        json!({ "one of": rest })
    }
}

pub(crate) fn schema_of(docs: &[Value]) -> Value {
    let mut s = Shape::default();
    for d in docs {
        s.add(d);
    }
    s.render()
}

/// Runs `mcb --json ARGS` and returns its one document, whatever the exit.
fn doc(f: &Fixture, args: &[&str]) -> Value {
    let out = f.mcb().arg("--json").args(args).output().unwrap();
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{args:?} printed no JSON document ({e}): {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// The first round of `reconcile --watch --json`, and one that failed (the site file
/// broken after the first): each a line of its own.
fn watch_rounds(f: &Fixture, site: &str) -> Vec<Value> {
    use std::io::BufRead;
    let original = std::fs::read_to_string(site).unwrap();
    let mut cmd = f.mcb().into_command();
    cmd.args(["--json", "reconcile", "--watch", "1", site])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null());
    let mut child = cmd.spawn().unwrap();
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let mut rounds = vec![serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap()];
    std::fs::write(site, "Site(").unwrap();
    rounds.push(serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap());
    std::fs::write(site, original).unwrap();
    // SAFETY: a signal to our own child.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
    assert!(child.wait().unwrap().success());
    rounds
}

#[test]
fn every_command_prints_its_documented_schema() {
    let f = Fixture::new();
    let (site, _server, _m) = sample(&f);
    let s = |p: &std::path::Path| p.to_str().unwrap().to_string();
    let site_arg = s(&site);
    let mut docs: BTreeMap<&str, Vec<Value>> = BTreeMap::new();
    let mut run = |name: &'static str, args: &[&str]| {
        docs.entry(name).or_default().push(doc(&f, args));
    };
    run("plan", &["plan", &site_arg]);
    run("realise", &["realise", &site_arg]);
    run("realise", &["realise", &site_arg]);
    run("update", &["update", "--lock-only", &site_arg]);
    run("update", &["update", &site_arg]);
    run("outdated", &["outdated", &site_arg]);
    run("reconcile", &["reconcile", &site_arg]);
    run("plan", &["remove", "local_z", "--site", &site_arg]);
    run("realise", &["realise", &site_arg]);
    run(
        "plan",
        &["add", "local_z", "--zip", "../z.zip", "--site", &site_arg],
    );
    run("realise", &["realise", &site_arg]);
    run("history", &["history", &site_arg]);
    run("rollback", &["rollback", &site_arg, "--to", "-1"]);
    run("sites", &["sites"]);
    run("check", &["check", &site_arg, "--moodle", "4.5"]);
    run(
        "check --all-branches",
        &["check", &site_arg, "--all-branches"],
    );
    run("info", &["info", "mod_att", "--site", &site_arg]);
    run(
        "info (own source)",
        &["info", "block_g", "--site", &site_arg],
    );
    run("why", &["why", "local_helper", "--site", &site_arg]);
    run("tree", &["tree", &site_arg]);
    run(
        "init",
        &["init", &s(&f.path("new/site.ron")), "--moodle", "5.1"],
    );
    run("verify", &["verify"]);
    let result = s(&f.path("site/result"));
    run("verify --tree", &["verify", "--tree", &result]);
    let lock = s(&f.path("site/site.lock"));
    run("reproduce", &["reproduce", &lock]);
    let imported = s(&f.path("imported"));
    std::fs::create_dir_all(&imported).unwrap();
    // The site's plugins directory, for the imported site to find its plugins in.
    let text = std::fs::read_to_string(&site).unwrap();
    let directory = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("directory: \""))
        .and_then(|l| l.split('"').next())
        .unwrap()
        .to_string();
    run(
        "import",
        &[
            "import",
            &result,
            "--name",
            "copy",
            "--out",
            &imported,
            "--directory",
            &directory,
        ],
    );
    let remote = f.path("remote.git");
    std::process::Command::new("git")
        .args(["init", "-q", "--bare"])
        .arg(&remote)
        .status()
        .unwrap();
    run("push", &["push", &site_arg, &s(&remote)]);
    let store = s(&f.store());
    let www = s(&f.path("www"));
    run(
        "deploy",
        &[
            "deploy", &store, "--site", "prod", "--to", &www, "--commit", "gen-1",
        ],
    );
    run(
        "deploy",
        &["deploy", &store, "--site", "prod", "--to", &www],
    );
    run("deploy", &["deploy", "--rollback", "--to", &www]);
    run("gc", &["gc", "--dry-run"]);
    run(
        "archive",
        &["archive", &site_arg, "-o", &s(&f.path("audit.tar.gz"))],
    );
    let rounds = watch_rounds(&f, &site_arg);
    run("forget", &["forget", "prod", "--force"]);
    run("error", &["history", "no-such-site"]);
    run("error", &["realise", &s(&f.path("nowhere/site.ron"))]);
    run("error", &["plan", "--no-such-flag"]);
    docs.insert("reconcile --watch (a round)", rounds);
    let schemas: serde_json::Map<String, Value> = docs
        .iter()
        .map(|(name, d)| (name.to_string(), schema_of(d)))
        .collect();
    settings(&f).bind(|| {
        insta::assert_snapshot!(
            "json-schemas",
            serde_json::to_string_pretty(&Value::Object(schemas)).unwrap()
        );
    });
}
