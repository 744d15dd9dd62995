//! `mcb apply` on a live site: the Moodle-shaped fixture installed on a PostgreSQL server of
//! the test's own (a password user, as a site's would be), its `current` served by PHP's
//! web server on 127.0.0.1, and every outcome checked on the database and `current`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};

use crate::moodle_test::{OpenTmp, PasswordServer, Release, core, install_xml, plugin};
use crate::support::*;

const SECRET: &str = "apply-pw-71c3";

/// PHP's web server, serving a deploy directory: `current/…` is resolved on each request.
struct WebServer {
    child: Child,
    port: u16,
}

impl WebServer {
    fn start(root: &Path) -> WebServer {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        // Each request resolves `current` again, as a PHP-FPM reloaded after the switch does
        // (the target's `reload`): without it, OPcache (keyed by the path through the
        // symlink) and the realpath cache keep serving the release before.
        let child = Command::new("php")
            .args([
                "-d",
                "opcache.enable=0",
                "-d",
                "realpath_cache_size=0",
                "-S",
                &format!("127.0.0.1:{port}"),
                "-t",
            ])
            .arg(root)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(std::time::Instant::now() < deadline, "php -S never started");
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        WebServer { child, port }
    }
}

impl Drop for WebServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One live site: its site file, deploy directory, config.php and dataroot, on database
/// `db` of the test's server.
struct Live {
    name: String,
    site: PathBuf,
    www: PathBuf,
    dataroot: PathBuf,
}

/// The plugins a site file takes: `(name, repository, ref)`.
type Takes<'a> = &'a [(&'a str, &'a GitRepo, &'a str)];

impl Live {
    fn new(f: &Fixture, server: &PasswordServer, name: &str, db: &str, web_port: u16) -> Live {
        Live::on(f, "pgsql", server.port, name, db, web_port)
    }

    /// A site on a database of `dbtype` (`pgsql`, `mariadb`) reached on 127.0.0.1:`db_port`.
    fn on(f: &Fixture, dbtype: &str, db_port: u16, name: &str, db: &str, web_port: u16) -> Live {
        let www = f.path(&format!("{name}/www"));
        let dataroot = f.path(&format!("{name}/moodledata"));
        std::fs::create_dir_all(&dataroot).unwrap();
        f.write(
            &format!("{name}/etc/config.php"),
            format!(
                "<?php\nunset($CFG);\nglobal $CFG;\n$CFG = new stdClass();\n$CFG->dbtype = '{dbtype}';\n$CFG->dblibrary = 'native';\n$CFG->dbhost = '127.0.0.1';\n$CFG->dbname = '{db}';\n$CFG->dbuser = 'bob';\n$CFG->dbpass = '{SECRET}';\n$CFG->prefix = 'mdl_';\n$CFG->dboptions = ['dbport' => {}];\n$CFG->wwwroot = 'http://127.0.0.1:{web_port}/{name}/www/current';\n$CFG->dataroot = '{}';\nrequire_once('{}/current/lib/setup.php');\n",
                db_port,
                dataroot.display(),
                www.display()
            ),
        );
        Live {
            name: name.to_string(),
            site: f.path(&format!("{name}/site/site.ron")),
            www,
            dataroot,
        }
    }

    /// Writes the site file taking `plugins`, with a target whose health page is served on
    /// `web_port`.
    fn write_site(&self, f: &Fixture, m: &GitRepo, plugins: Takes<'_>, web_port: u16) {
        let list = f.write("empty-pluglist.json", "{\"timestamp\": 0, \"plugins\": []}");
        let config = f.path(&format!("{}/etc/config.php", self.name));
        let entries: Vec<String> = plugins
            .iter()
            .map(|(n, r, reference)| {
                format!("\"local_{n}\": (git: {:?}, ref: {reference:?})", r.url())
            })
            .collect();
        let text = format!(
            "Site(\n    name: {:?},\n    moodle: (version: \"4.5\", git: {:?}),\n    plugins: {{ {} }},\n    directory: {:?},\n    links: {{\"config.php\": {:?}}},\n    target: (\n        deploy: {:?},\n        config: {:?},\n        health: (url: \"http://127.0.0.1:{web_port}/current/login/index.php\", contains: \"Log in\", within: 4),\n        maintenance_message: \"Back soon\",\n        reload: [\"touch\", {:?}],\n        backups: (keep: 2),\n    ),\n)\n",
            self.name,
            m.url(),
            entries.join(", "),
            list.display().to_string(),
            config.display().to_string(),
            self.www.display().to_string(),
            config.display().to_string(),
            self.reloaded().display().to_string(),
        );
        std::fs::create_dir_all(self.site.parent().unwrap()).unwrap();
        std::fs::write(&self.site, text).unwrap();
    }

    /// Realises, deploys and installs the site's first generation.
    fn install(&self, f: &Fixture) {
        let out = f.mcb().arg("realise").arg(&self.site).output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let out = f
            .mcb()
            .args([
                "deploy",
                s(&f.store()),
                "--site",
                &self.name,
                "--to",
                s(&self.www),
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let out = Command::new("php")
            .arg(self.www.join("current/admin/cli/install_database.php"))
            .arg("--agree-license")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stdout)
        );
    }

    /// What the live database holds: `SELECT`'s one value, through the site's own PHP.
    fn query(&self, sql: &str) -> String {
        let out = Command::new("php")
            .arg("-r")
            .arg("define('CLI_SCRIPT', true); require($argv[1]); $r = fx_sql($argv[2]); echo json_encode($r);")
            .arg(f_config(&self.www))
            .arg(sql)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn version_of(&self, component: &str) -> String {
        let rows: serde_json::Value = serde_json::from_str(&self.query(&format!(
            "SELECT version FROM fx_versions WHERE component = '{component}'"
        )))
        .unwrap();
        rows[0]["version"].as_str().unwrap_or("").to_string()
    }

    fn tables(&self) -> String {
        self.query("SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() ORDER BY table_name")
    }

    /// The columns of the live table `table` (either engine).
    fn columns(&self, table: &str) -> String {
        let out = Command::new("php")
            .arg("-r")
            .arg("define('CLI_SCRIPT', true); require($argv[1]); echo implode(',', fx_columns($argv[2]));")
            .arg(f_config(&self.www))
            .arg(table)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The commit `current` serves.
    fn serves(&self) -> String {
        std::fs::canonicalize(self.www.join("current"))
            .unwrap()
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned()
    }

    /// The file the target's reload command touches.
    fn reloaded(&self) -> PathBuf {
        self.dataroot.with_file_name("reloaded")
    }

    fn backups(&self) -> usize {
        std::fs::read_dir(self.www.join("backups"))
            .map(|rd| {
                rd.flatten()
                    .filter(|e| e.file_name().to_string_lossy().ends_with(".dump"))
                    .count()
            })
            .unwrap_or(0)
    }
}

fn f_config(www: &Path) -> PathBuf {
    www.join("current/config.php")
}

/// Everything a run said, kept to be searched for the password.
struct Said(String);

impl Said {
    fn run(&mut self, f: &Fixture, tmp: &OpenTmp, args: &[&str]) -> Output {
        let out = f.mcb().env("TMPDIR", &tmp.0).args(args).output().unwrap();
        self.0.push_str(&String::from_utf8_lossy(&out.stdout));
        self.0.push_str(&String::from_utf8_lossy(&out.stderr));
        assert!(
            !self.0.contains(SECRET),
            "the password was said: {}",
            self.0
        );
        out
    }
}

impl Said {
    /// `mcb status --json SITE`: its exit code and document.
    fn status(
        &mut self,
        f: &Fixture,
        tmp: &OpenTmp,
        site: &str,
    ) -> (Option<i32>, serde_json::Value) {
        let out = self.run(f, tmp, &["status", "--json", site]);
        let j = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|_| panic!("status said no JSON: {}", text(&out)));
        (out.status.code(), j)
    }
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The plugin `local_good`: v1 and v2 sound; v3's upgrade fails wherever it runs; v4's
/// upgrade fails only on a site whose dataroot holds `break-upgrade` (what the rehearsal's
/// copy does not have); v5 installs and upgrades and breaks every web page.
fn good_plugin(f: &Fixture) -> GitRepo {
    let upgrade = |fails: &str| {
        format!(
            "<?php\nfunction xmldb_local_good_upgrade($oldversion) {{\n    global $CFG;\n    {fails}\n    if ($oldversion < 2024020100) {{\n        fx_sql(\"ALTER TABLE {{$CFG->prefix}}local_good ADD COLUMN note VARCHAR(255)\");\n    }}\n    return true;\n}}\n"
        )
    };
    let v1: &[(&str, String)] = &[("db/install.xml", install_xml("local_good", &["id", "name"]))];
    let v2 = [
        (
            "db/install.xml",
            install_xml("local_good", &["id", "name", "note"]),
        ),
        ("db/upgrade.php", upgrade("")),
    ];
    let v3 = [(
        "db/upgrade.php",
        upgrade(
            "throw new Exception('local_good cannot upgrade: table mdl_local_good is locked');",
        ),
    )];
    let v4 = [(
        "db/upgrade.php",
        upgrade(
            "if (is_file($CFG->dataroot . '/break-upgrade')) { throw new Exception('the live data breaks the upgrade'); }",
        ),
    )];
    let v5 = [
        ("db/upgrade.php", upgrade("")),
        (
            "lib.php",
            "<?php\nif (!defined('CLI_SCRIPT')) {\n    throw new Exception('local_good breaks every page');\n}\n".to_string(),
        ),
    ];
    let releases: Vec<Release<'_>> = vec![
        ("v1", 2024010100, v1),
        ("v2", 2024020100, &v2),
        ("v3", 2024030100, &v3),
        ("v4", 2024040100, &v4),
        ("v5", 2024050100, &v5),
    ];
    plugin(f, "good", &releases)
}

/// A plugin with a table of its own, to be removed from the site file.
fn extra_plugin(f: &Fixture) -> GitRepo {
    plugin(
        f,
        "extra",
        &[(
            "v1",
            2024010100,
            &[("db/install.xml", install_xml("local_extra", &["id", "x"]))],
        )],
    )
}

fn psql(server: &PasswordServer, sql: &str) {
    let out = Command::new("psql")
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &server.port.to_string(),
            "-U",
            "bob",
            "-d",
            "postgres",
            "-c",
            sql,
        ])
        .env("PGPASSWORD", SECRET)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn apply_rehearses_upgrades_checks_health_and_puts_back_what_fails() {
    let f = Fixture::new();
    let tmp = OpenTmp::new();
    let server = PasswordServer::start(&tmp, "bob", SECRET);
    psql(&server, "CREATE DATABASE live");
    let m = core(&f);
    let good = good_plugin(&f);
    let extra = extra_plugin(&f);
    let web_root = f.path("live/www");
    std::fs::create_dir_all(&web_root).unwrap();
    let web = WebServer::start(&web_root);
    let live = Live::new(&f, &server, "live", "live", web.port);
    let mut said = Said(String::new());
    let site = s(&live.site).to_string();
    live.write_site(
        &f,
        &m,
        &[("good", &good, "v1"), ("extra", &extra, "v1")],
        web.port,
    );
    live.install(&f);
    assert!(
        live.tables().contains("mdl_local_extra"),
        "{}",
        live.tables()
    );

    // v3 first: its upgrade fails, and so does its test.
    live.write_site(
        &f,
        &m,
        &[("good", &good, "v3"), ("extra", &extra, "v1")],
        web.port,
    );
    assert!(said.run(&f, &tmp, &["realise", &site]).status.success());
    let out = said.run(&f, &tmp, &["test", &site]);
    assert_eq!(out.status.code(), Some(7), "{}", text(&out));

    // v2, never tested: refused, the live site untouched.
    live.write_site(
        &f,
        &m,
        &[("good", &good, "v2"), ("extra", &extra, "v1")],
        web.port,
    );
    // The live database never ran v3, so going back to v2 is allowed.
    let out = said.run(&f, &tmp, &["realise", "--allow-downgrade", &site]);
    assert!(out.status.success(), "{}", text(&out));
    let before = live.serves();
    let out = said.run(&f, &tmp, &["apply", &site]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("was never tested"), "{}", text(&out));
    assert_eq!(live.serves(), before);

    // Tested, it applies: every step said, the site upgraded, in sync, served healthy.
    // The test upgrades from what the live site runs (v1), not from the failed v3 before
    // it, which would be a downgrade.
    let out = said.run(&f, &tmp, &["test", &site]);
    assert!(out.status.success(), "{}", text(&out));
    let out = said.run(&f, &tmp, &["apply", &site]);
    let said_text = text(&out);
    assert!(out.status.success(), "{said_text}");
    for step in [
        "backup",
        "rehearse",
        "stage",
        "maintenance on",
        "switch",
        "upgrade",
        "purge caches",
        "maintenance off",
        "health",
    ] {
        assert!(
            said_text.contains(&format!("  {step} ")),
            "no step {step}: {said_text}"
        );
    }
    assert!(said_text.contains("live: applied gen-3"), "{said_text}");
    assert_ne!(live.serves(), before);
    assert_eq!(live.version_of("local_good"), "2024020100");
    assert!(live.reloaded().exists(), "the reload command never ran");
    assert!(!live.www.join(mcb_apply_journal()).exists());
    let (code, j) = said.status(&f, &tmp, &site);
    assert_eq!(
        (code, &j["in_sync"]),
        (Some(0), &serde_json::json!(true)),
        "{j}"
    );
    // Applying it again does nothing.
    let out = said.run(&f, &tmp, &["apply", &site]);
    assert!(text(&out).contains("already runs gen-3"), "{}", text(&out));

    // A plugin dropped from the site file: uninstalled by Moodle with the code that has
    // it, its table gone, nothing orphaned.
    live.write_site(&f, &m, &[("good", &good, "v2")], web.port);
    assert!(said.run(&f, &tmp, &["realise", &site]).status.success());
    let out = said.run(&f, &tmp, &["apply", "--untested", &site]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("  uninstall "), "{}", text(&out));
    assert!(
        !live.tables().contains("mdl_local_extra"),
        "{}",
        live.tables()
    );
    assert_eq!(live.version_of("local_extra"), "");
    let (_, j) = said.status(&f, &tmp, &site);
    assert_eq!(j["orphaned"], serde_json::json!([]), "{j}");
    assert_eq!(j["in_sync"], true, "{j}");
    let sound = live.serves();

    // v3's upgrade fails: the rehearsal stops it with Moodle's words; the live site, its
    // code and its database, are as they were.
    let tables_before = live.tables();
    live.write_site(&f, &m, &[("good", &good, "v3")], web.port);
    assert!(said.run(&f, &tmp, &["realise", &site]).status.success());
    let out = said.run(&f, &tmp, &["apply", "--untested", &site]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(7), "{t}");
    assert!(t.contains("failed at rehearse"), "{t}");
    assert!(
        t.contains("local_good cannot upgrade: table mdl_local_good is locked"),
        "{t}"
    );
    assert!(t.contains("the live site was not touched"), "{t}");
    assert_eq!(live.serves(), sound);
    assert_eq!(live.version_of("local_good"), "2024020100");
    assert_eq!(live.tables(), tables_before);
    assert!(!t.contains("maintenance on"), "{t}");

    // v4's upgrade fails on the live site only: code and database put back, maintenance
    // off, healthy again, exit 7 naming the step.
    std::fs::write(live.dataroot.join("break-upgrade"), "").unwrap();
    live.write_site(&f, &m, &[("good", &good, "v4")], web.port);
    assert!(said.run(&f, &tmp, &["realise", &site]).status.success());
    let out = said.run(&f, &tmp, &["apply", "--untested", &site]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(7), "{t}");
    assert!(t.contains("failed at upgrade"), "{t}");
    assert!(t.contains("the live data breaks the upgrade"), "{t}");
    assert!(t.contains("the site was put back"), "{t}");
    for step in [
        "rollback: switch",
        "rollback: restore database",
        "rollback: maintenance off",
        "rollback: health",
    ] {
        assert!(t.contains(&format!("  {step} ")), "no step {step}: {t}");
    }
    assert_eq!(live.serves(), sound);
    assert_eq!(live.version_of("local_good"), "2024020100");
    assert_eq!(live.version_of("moodle"), "2024100700");
    let (_, j) = said.status(&f, &tmp, &site);
    assert_eq!(j["maintenance"], false, "{j}");
    assert_eq!(j["upgrade_pending"], false, "{j}");
    assert_eq!(j["database_ahead"], serde_json::json!([]), "{j}");
    std::fs::remove_file(live.dataroot.join("break-upgrade")).unwrap();

    // v5 upgrades and breaks every page: the health check fails, the site is put back.
    live.write_site(&f, &m, &[("good", &good, "v5")], web.port);
    assert!(said.run(&f, &tmp, &["realise", &site]).status.success());
    let out = said.run(&f, &tmp, &["apply", "--untested", &site]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(7), "{t}");
    assert!(t.contains("failed at health"), "{t}");
    assert!(t.contains("answered 500"), "{t}");
    assert_eq!(live.serves(), sound);
    assert_eq!(live.version_of("local_good"), "2024020100");
    assert!(t.contains("  rollback: health "), "{t}");
    assert!(
        !t.lines()
            .any(|l| l.trim_start().starts_with("rollback:") && l.contains("FAILED")),
        "{t}"
    );

    // Backups: the newest two kept, owner-only; the password in no file mcb wrote, no note,
    // no lock.
    assert_eq!(live.backups(), 2);
    assert_no_secret(&f, &live);
    drop(web);
    drop(server);
}

fn mcb_apply_journal() -> &'static str {
    ".mcb-apply.json"
}

/// The password is nowhere mcb writes: the store's files and git history and notes, the
/// lock, the deploy directory's own files (the backups hold the database, not config.php).
fn assert_no_secret(f: &Fixture, live: &Live) {
    let holds = |p: &Path| {
        std::fs::read(p).is_ok_and(|b| b.windows(SECRET.len()).any(|w| w == SECRET.as_bytes()))
    };
    for e in walkdir::WalkDir::new(f.store()).into_iter().flatten() {
        assert!(
            !(e.file_type().is_file() && holds(e.path())),
            "{}",
            e.path().display()
        );
    }
    let git = Command::new("git")
        .arg("-C")
        .arg(f.store().join("git"))
        .args(["log", "--all", "-p", "--notes=*"])
        .output()
        .unwrap();
    assert!(git.status.success());
    assert!(!String::from_utf8_lossy(&git.stdout).contains(SECRET));
    let notes = Command::new("git")
        .arg("-C")
        .arg(f.store().join("git"))
        .args(["log", "-p", "refs/notes/mcb-apply"])
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&notes.stdout).contains("\"outcome\""),
        "no apply note"
    );
    assert!(!String::from_utf8_lossy(&notes.stdout).contains(SECRET));
    assert!(!holds(&live.site.with_extension("lock")));
    for e in std::fs::read_dir(&live.www).unwrap().flatten() {
        if e.file_type().unwrap().is_file() {
            assert!(!holds(&e.path()), "{}", e.path().display());
        }
    }
}

/// A plugin with `n` releases, each a new version whose upgrade changes nothing.
fn many_releases(f: &Fixture, n: u64) -> GitRepo {
    let tags: Vec<String> = (1..=n).map(|i| format!("v{i}")).collect();
    let files: &[(&str, String)] =
        &[("db/install.xml", install_xml("local_many", &["id", "name"]))];
    let releases: Vec<Release<'_>> = tags
        .iter()
        .enumerate()
        .map(|(i, t)| (t.as_str(), 2024010100 + i as u64 * 100, files))
        .collect();
    plugin(f, "many", &releases)
}

/// A number from the clock, for the moments the test kills at.
fn random_below(n: u64) -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos() as u64;
    let mut x = nanos ^ 0x9e37_79b9_7f4a_7c15;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    x % n.max(1)
}

#[test]
fn an_apply_killed_at_any_moment_is_finished_by_the_next() {
    let f = Fixture::new();
    let tmp = OpenTmp::new();
    let server = PasswordServer::start(&tmp, "bob", SECRET);
    psql(&server, "CREATE DATABASE killed");
    let m = core(&f);
    let many = many_releases(&f, 12);
    let web_root = f.path("killed/www");
    std::fs::create_dir_all(&web_root).unwrap();
    let web = WebServer::start(&web_root);
    let live = Live::new(&f, &server, "killed", "killed", web.port);
    let mut said = Said(String::new());
    let site = s(&live.site).to_string();
    live.write_site(&f, &m, &[("many", &many, "v1")], web.port);
    live.install(&f);

    live.write_site(&f, &m, &[("many", &many, "v2")], web.port);
    assert!(said.run(&f, &tmp, &["realise", &site]).status.success());
    let out = said.run(&f, &tmp, &["apply", "--untested", &site]);
    assert!(out.status.success(), "{}", text(&out));

    // Each kill waits for the journal to name its step, then comes within that step.
    let journal = live.www.join(".mcb-apply.json");
    let step_now = || {
        std::fs::read_to_string(&journal)
            .ok()
            .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
            .map(|j| j["step"].as_str().unwrap_or("").to_string())
    };
    let targets = [
        "backup",
        "rehearse",
        "maintenance on",
        "switch",
        "upgrade",
        "purge caches",
        "maintenance off",
        "health",
        "rehearse",
        "upgrade",
    ];
    let mut moments = Vec::new();
    for (i, target) in (3..=12u64).zip(targets) {
        live.write_site(&f, &m, &[("many", &many, &format!("v{i}"))], web.port);
        assert!(said.run(&f, &tmp, &["realise", &site]).status.success());
        let mut child = Command::new(assert_cmd::cargo::cargo_bin!("mcb"))
            .env_remove("MCB_STORE")
            .env("TMPDIR", &tmp.0)
            .arg("--store")
            .arg(f.store())
            .args(["apply", "--untested", &site])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while step_now().as_deref() != Some(target)
            && child.try_wait().unwrap().is_none()
            && std::time::Instant::now() < deadline
        {
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        let at = random_below(if target == "rehearse" { 1500 } else { 60 });
        std::thread::sleep(std::time::Duration::from_millis(at));
        unsafe {
            libc::kill(child.id() as i32, libc::SIGKILL);
        }
        let _ = child.wait();
        let cut = step_now().unwrap_or_else(|| "finished".into());
        moments.push(format!("{target} +{at} ms: {cut}"));
        if cut != "finished" {
            // `status` says an apply was cut off, and where.
            let (code, j) = said.status(&f, &tmp, &site);
            assert_eq!(code, Some(2), "{j}");
            assert_eq!(j["unfinished_apply"]["step"], cut.as_str(), "{j}");
        }

        // The next apply finishes what the killed one left, then applies.
        let out = said.run(&f, &tmp, &["apply", "--untested", &site]);
        assert!(out.status.success(), "killed at {at} ms: {}", text(&out));
        let (_, j) = said.status(&f, &tmp, &site);
        assert_eq!(j["in_sync"], true, "killed at {at} ms ({moments:?}): {j}");
        assert_eq!(j["maintenance"], false, "{j}");
        assert_eq!(
            live.version_of("local_many"),
            (2024010100 + (i - 1) * 100).to_string(),
            "killed at {at} ms"
        );
        assert!(!live.www.join(".mcb-apply.json").exists());
    }
    eprintln!("applies killed at {moments:#?}");
    // Most kills land in their step (a short one may end first).
    let live_cuts = moments
        .iter()
        .filter(|m| {
            ["maintenance", "switch", "upgrade", "purge", "health"]
                .iter()
                .any(|s| m.ends_with(&format!(": {s}")) || m.contains(&format!(": {s} ")))
        })
        .count();
    assert!(
        live_cuts >= 3,
        "too few kills on the live site: {moments:#?}"
    );
    assert_no_secret(&f, &live);
    drop(web);
    drop(server);
}

#[test]
fn a_wave_stops_at_the_site_that_fails() {
    let f = Fixture::new();
    let tmp = OpenTmp::new();
    let server = PasswordServer::start(&tmp, "bob", SECRET);
    let m = core(&f);
    let good = good_plugin(&f);
    let mut said = Said(String::new());
    let mut fleet = Vec::new();
    for name in ["wa", "wb", "wc", "wd"] {
        psql(&server, &format!("CREATE DATABASE {name}"));
        std::fs::create_dir_all(f.path(&format!("{name}/www"))).unwrap();
        let web = WebServer::start(&f.path(&format!("{name}/www")));
        let live = Live::new(&f, &server, name, name, web.port);
        live.write_site(&f, &m, &[("good", &good, "v1")], web.port);
        live.install(&f);
        // The second site's next release fails its rehearsal.
        let next = if name == "wb" { "v3" } else { "v2" };
        live.write_site(&f, &m, &[("good", &good, next)], web.port);
        assert!(
            said.run(&f, &tmp, &["realise", s(&live.site)])
                .status
                .success()
        );
        fleet.push((live, web));
    }
    let mut args = vec!["apply", "--json", "--untested", "--wave", "1,25%,100%"];
    args.extend(fleet.iter().map(|(l, _)| s(&l.site)));
    let out = said.run(&f, &tmp, &args);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(7), "{t}");
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2, "{t}");
    assert_eq!(
        (&lines[0]["site"], &lines[0]["ok"]),
        (&serde_json::json!("wa"), &serde_json::json!(true))
    );
    assert_eq!(lines[1]["ok"], false, "{t}");
    assert!(
        lines[1]["site"]
            .as_str()
            .unwrap()
            .ends_with("wb/site/site.ron")
    );
    assert!(
        t.contains("the rollout stopped after wave 2 of 3: 2 sites not applied"),
        "{t}"
    );
    let versions: Vec<String> = fleet
        .iter()
        .map(|(l, _)| l.version_of("local_good"))
        .collect();
    assert_eq!(
        versions,
        ["2024020100", "2024010100", "2024010100", "2024010100"]
    );

    // `--all`: every site of the store with a target here, one at a time; the first runs
    // its generation already, the second fails again and the rest wait.
    let out = said.run(&f, &tmp, &["apply", "--all", "--untested"]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(7), "{t}");
    assert!(t.contains("wa: already runs gen-2"), "{t}");
    assert!(
        t.contains("the rollout stopped after wave 2 of 4: 2 sites not applied"),
        "{t}"
    );
    crate::snapshots::settings(&f).bind(|| {
        insta::assert_snapshot!(
            "json-schema-apply",
            serde_json::to_string_pretty(&crate::json_schemas::schema_of(&lines)).unwrap()
        );
    });
    drop(fleet);
    drop(server);
}

#[test]
fn reconcile_apply_brings_the_live_site_along_and_retries_no_failed_gate() {
    let f = Fixture::new();
    let tmp = OpenTmp::new();
    let server = PasswordServer::start(&tmp, "bob", SECRET);
    psql(&server, "CREATE DATABASE looped");
    let m = core(&f);
    let good = good_plugin(&f);
    let web_root = f.path("looped/www");
    std::fs::create_dir_all(&web_root).unwrap();
    let web = WebServer::start(&web_root);
    let live = Live::new(&f, &server, "looped", "looped", web.port);
    let mut said = Said(String::new());
    let site = s(&live.site).to_string();
    live.write_site(&f, &m, &[("good", &good, "v1")], web.port);
    live.install(&f);

    // A new release: realised, tested, applied, in one round.
    live.write_site(&f, &m, &[("good", &good, "v2")], web.port);
    let out = said.run(&f, &tmp, &["reconcile", "--apply", &site]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("applied"), "{}", text(&out));
    assert_eq!(live.version_of("local_good"), "2024020100");

    // One that fails its test: not applied, and the next round does not try it again.
    live.write_site(&f, &m, &[("good", &good, "v3")], web.port);
    let out = said.run(&f, &tmp, &["reconcile", "--apply", &site]);
    assert_eq!(out.status.code(), Some(7), "{}", text(&out));
    let out = said.run(&f, &tmp, &["reconcile", "--apply", &site]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("held: ") && text(&out).contains("failed its test"),
        "{}",
        text(&out)
    );
    assert_eq!(live.version_of("local_good"), "2024020100");

    // One that passes its test and fails on the live site: put back, and not retried.
    std::fs::write(live.dataroot.join("break-upgrade"), "").unwrap();
    live.write_site(&f, &m, &[("good", &good, "v4")], web.port);
    let out = said.run(&f, &tmp, &["reconcile", "--apply", &site]);
    assert_eq!(out.status.code(), Some(7), "{}", text(&out));
    assert!(text(&out).contains("failed at upgrade"), "{}", text(&out));
    let out = said.run(&f, &tmp, &["reconcile", "--apply", "--json", &site]);
    assert!(out.status.success(), "{}", text(&out));
    let j: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        j["held"].as_str().unwrap().contains("rolled back before"),
        "{j}"
    );
    assert_eq!(live.version_of("local_good"), "2024020100");
    drop(web);
    drop(server);
}

/// A MariaDB server of the test's own, as a site's would be: a database `live` and a user
/// `bob` with a password whose rights end at it.
struct MariaDbLive {
    child: Child,
    port: u16,
    dir: PathBuf,
}

impl MariaDbLive {
    fn start(tmp: &OpenTmp) -> MariaDbLive {
        let dir = tmp.0.join("own-mariadb");
        std::fs::create_dir_all(dir.join("tmp")).unwrap();
        let root = unsafe { libc::geteuid() } == 0;
        if root {
            assert!(
                Command::new("chown")
                    .args(["-R", "mysql"])
                    .arg(&dir)
                    .status()
                    .unwrap()
                    .success()
            );
        }
        let as_mysql = |program: &str| {
            let bin = ["/usr/sbin", "/usr/bin"]
                .iter()
                .map(|d| Path::new(d).join(program))
                .find(|p| p.is_file())
                .unwrap_or_else(|| PathBuf::from(program));
            let mut c = if root {
                let mut c = Command::new("runuser");
                c.args(["-u", "mysql", "--"]).arg(bin);
                c
            } else {
                Command::new(bin)
            };
            c.current_dir(&dir).env("TMPDIR", dir.join("tmp"));
            c
        };
        let datadir = format!("--datadir={}", dir.join("data").display());
        let tmpdir = format!("--tmpdir={}", dir.join("tmp").display());
        let out = as_mysql("mariadb-install-db")
            .args([
                "--no-defaults",
                &datadir,
                &tmpdir,
                "--auth-root-authentication-method=normal",
                "--skip-test-db",
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = as_mysql("mariadbd")
            .args([
                "--no-defaults",
                &datadir,
                &tmpdir,
                &format!("--port={port}"),
            ])
            .arg(format!("--socket={}", dir.join("sock").display()))
            .arg(format!("--pid-file={}", dir.join("pid").display()))
            .args([
                "--bind-address=127.0.0.1",
                "--skip-name-resolve",
                "--skip-log-bin",
            ])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let server = MariaDbLive { child, port, dir };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while !server.admin("SELECT 1").status.success() {
            assert!(
                std::time::Instant::now() < deadline,
                "MariaDB never started"
            );
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        let out = server.admin(&format!(
            "CREATE DATABASE live DEFAULT CHARACTER SET utf8mb4; CREATE USER 'bob'@'127.0.0.1' IDENTIFIED BY '{SECRET}'; GRANT ALL PRIVILEGES ON live.* TO 'bob'@'127.0.0.1';"
        ));
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        server
    }

    fn admin(&self, sql: &str) -> Output {
        Command::new("mariadb")
            .args(["--no-defaults", "--user=root"])
            .arg(format!("--socket={}", self.dir.join("sock").display()))
            .args(["-e", sql])
            .output()
            .unwrap()
    }
}

impl Drop for MariaDbLive {
    fn drop(&mut self) {
        let pid = std::fs::read_to_string(self.dir.join("pid"))
            .ok()
            .and_then(|t| t.trim().parse::<i32>().ok())
            .unwrap_or(self.child.id() as i32);
        unsafe {
            libc::kill(pid, libc::SIGKILL);
        }
        let _ = self.child.wait();
    }
}

#[test]
fn apply_on_mariadb_backs_up_with_its_own_tools_and_restores_on_failure() {
    let f = Fixture::new();
    let tmp = OpenTmp::new();
    let server = MariaDbLive::start(&tmp);
    let m = core(&f);
    let good = good_plugin(&f);
    let web_root = f.path("maria/www");
    std::fs::create_dir_all(&web_root).unwrap();
    let web = WebServer::start(&web_root);
    let live = Live::on(&f, "mariadb", server.port, "maria", "live", web.port);
    let mut said = Said(String::new());
    let site = s(&live.site).to_string();
    live.write_site(&f, &m, &[("good", &good, "v1")], web.port);
    live.install(&f);

    live.write_site(&f, &m, &[("good", &good, "v2")], web.port);
    assert!(said.run(&f, &tmp, &["realise", &site]).status.success());
    let out = said.run(&f, &tmp, &["apply", "--untested", &site]);
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    assert!(
        t.contains("on mariadb"),
        "the rehearsal ran on MariaDB: {t}"
    );
    assert_eq!(live.version_of("local_good"), "2024020100");
    assert_eq!(live.columns("mdl_local_good"), "id,name,note");
    let dump = std::fs::read_dir(live.www.join("backups"))
        .unwrap()
        .flatten()
        .next()
        .unwrap()
        .path();
    assert!(
        std::fs::read(&dump).unwrap().starts_with(b"/*"),
        "a mariadb-dump"
    );

    // The live upgrade fails: the database comes back from mariadb-dump's backup.
    std::fs::write(live.dataroot.join("break-upgrade"), "").unwrap();
    live.write_site(&f, &m, &[("good", &good, "v4")], web.port);
    assert!(said.run(&f, &tmp, &["realise", &site]).status.success());
    let out = said.run(&f, &tmp, &["apply", "--untested", &site]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(7), "{t}");
    assert!(t.contains("the site was put back"), "{t}");
    assert_eq!(live.version_of("local_good"), "2024020100");
    assert_eq!(live.version_of("moodle"), "2024100700");
    drop(web);
    drop(server);
}
