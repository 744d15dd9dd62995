//! What Moodle itself says of a live site, through PHP: its database settings from its
//! config.php (read by PHP, never parsed by hand), and the versions its database has run
//! against the versions its code holds (Moodle's own bootstrap and plugin manager, and
//! `admin/cli/upgrade.php --is-pending`).

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

use crate::error::ApplyError;

/// How a site's database is reached, from its config.php. The password is held, never
/// shown: not in `Debug`, not in messages.
#[derive(Clone, Deserialize)]
pub struct SiteDatabase {
    pub dbtype: String,
    pub host: String,
    pub name: String,
    pub user: String,
    #[serde(default)]
    pub port: String,
    pub prefix: String,
    password: String,
}

impl SiteDatabase {
    /// The password, for the program that connects (through its environment).
    pub fn password(&self) -> &str {
        &self.password
    }
}

impl std::fmt::Debug for SiteDatabase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SiteDatabase")
            .field("dbtype", &self.dbtype)
            .field("host", &self.host)
            .field("name", &self.name)
            .field("user", &self.user)
            .field("port", &self.port)
            .field("prefix", &self.prefix)
            .field("password", &"***")
            .finish()
    }
}

impl std::fmt::Display for SiteDatabase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {} on {}", self.dbtype, self.name, self.host)?;
        if !self.port.is_empty() {
            write!(f, ":{}", self.port)?;
        }
        Ok(())
    }
}

/// Reads config.php's settings and stops before Moodle connects (`ABORT_AFTER_CONFIG`).
const READ_CONFIG: &str = r#"
define('CLI_SCRIPT', true);
define('ABORT_AFTER_CONFIG', true);
require($argv[1]);
echo json_encode([
    'dbtype' => (string)($CFG->dbtype ?? ''),
    'host' => (string)($CFG->dbhost ?? ''),
    'name' => (string)($CFG->dbname ?? ''),
    'user' => (string)($CFG->dbuser ?? ''),
    'password' => (string)($CFG->dbpass ?? ''),
    'prefix' => (string)($CFG->prefix ?? ''),
    'port' => (string)($CFG->dboptions['dbport'] ?? ''),
]);
"#;

/// What the site's database has run and what its code holds, through Moodle's bootstrap.
const READ_STATE: &str = r#"
define('CLI_SCRIPT', true);
require($argv[1]);
$out = [
    'version' => isset($CFG->version) ? (string)$CFG->version : null,
    'maintenance' => !empty($CFG->maintenance_enabled),
    'plugins' => [],
];
foreach (core_plugin_manager::instance()->get_plugins() as $type => $list) {
    foreach ($list as $p) {
        $out['plugins'][$p->component] = [
            'db' => $p->versiondb === null ? null : (string)$p->versiondb,
            'disk' => $p->versiondisk === null ? null : (string)$p->versiondisk,
        ];
    }
}
echo json_encode($out);
"#;

/// A component's version in the database and in the code (`None`: not there).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ComponentState {
    pub db: Option<String>,
    pub disk: Option<String>,
}

/// What Moodle says of the live site.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct MoodleState {
    /// The core version the database has run.
    pub version: Option<String>,
    pub maintenance: bool,
    pub plugins: BTreeMap<String, ComponentState>,
}

fn php_failed(what: &str, out: &mcb_exec::Output) -> ApplyError {
    ApplyError::Moodle {
        message: format!(
            "{what} failed ({}): {}",
            mcb_exec::describe(out.status),
            mcb_exec::last_lines(&out.all_text(), 5)
        ),
        hint: None,
    }
}

fn run_php(php: &str, code: &str, arg: &Path, cwd: &Path) -> Result<mcb_exec::Output, ApplyError> {
    mcb_exec::Program::new(php)
        .arg("-r")
        .arg(code)
        .arg(arg)
        .current_dir(cwd)
        .output()
        .map_err(|e| ApplyError::Moodle {
            message: format!("cannot run {php}: {e}"),
            hint: Some("install PHP's command line, or name it with target: (php: \"…\")".into()),
        })
}

/// The database settings of the site whose config.php is `config`.
pub fn read_site_database(php: &str, config: &Path) -> Result<SiteDatabase, ApplyError> {
    let dir = config.parent().unwrap_or(Path::new("/"));
    let out = run_php(php, READ_CONFIG, config, dir)?;
    if !out.success() {
        return Err(php_failed(&format!("reading {}", config.display()), &out));
    }
    serde_json::from_slice(&out.stdout).map_err(|_| ApplyError::Moodle {
        message: format!(
            "{} gave no settings PHP could print (is it a Moodle config.php?)",
            config.display()
        ),
        hint: None,
    })
}

/// Where Moodle's scripts are in `codebase`: its web root (`public/` from 5.1).
pub(crate) fn web_root(codebase: &Path) -> std::path::PathBuf {
    let public = codebase.join("public");
    if public.join("version.php").is_file() {
        public
    } else {
        codebase.to_path_buf()
    }
}

/// What the database behind `codebase` (through its config.php) has run, component by
/// component, and whether maintenance mode is on.
pub(crate) fn read_state(php: &str, codebase: &Path) -> Result<MoodleState, ApplyError> {
    let config = codebase.join("config.php");
    let out = run_php(php, READ_STATE, &config, codebase)?;
    if !out.success() {
        return Err(php_failed(
            "reading the site's database through Moodle",
            &out,
        ));
    }
    serde_json::from_slice(&out.stdout).map_err(|_| ApplyError::Moodle {
        message: format!(
            "Moodle at {} said what mcb cannot read: {}",
            codebase.display(),
            mcb_exec::last_lines(&out.all_text(), 3)
        ),
        hint: None,
    })
}

/// `admin/cli/upgrade.php --is-pending`: exit 2 when an upgrade is pending, 0 when not.
pub(crate) fn upgrade_pending(php: &str, codebase: &Path) -> Result<bool, ApplyError> {
    let script = web_root(codebase).join("admin/cli/upgrade.php");
    let out = mcb_exec::Program::new(php)
        .arg(&script)
        .arg("--is-pending")
        .current_dir(codebase)
        .output()
        .map_err(|e| ApplyError::Moodle {
            message: format!("cannot run {php}: {e}"),
            hint: None,
        })?;
    match out.status.code() {
        Some(0) => Ok(false),
        Some(2) => Ok(true),
        _ => Err(php_failed("admin/cli/upgrade.php --is-pending", &out)),
    }
}

/// Runs Moodle's command-line script `script` (`admin/cli/upgrade.php`) of `codebase` with
/// `args`; its output whatever its exit.
pub(crate) fn run_cli(
    php: &str,
    codebase: &Path,
    script: &str,
    args: &[&str],
) -> Result<mcb_exec::Output, ApplyError> {
    mcb_exec::Program::new(php)
        .arg(web_root(codebase).join(script))
        .args(args)
        .current_dir(codebase)
        .output()
        .map_err(|e| ApplyError::Moodle {
            message: format!("cannot run {php}: {e}"),
            hint: Some("install PHP's command line, or name it with target: (php: \"…\")".into()),
        })
}

/// What a failed script said, in Moodle's words when it used them: `component: message
/// [code]`, else its last lines.
pub(crate) fn said(out: &mcb_exec::Output) -> String {
    let text = out.all_text();
    match mcb_moodle::moodle_failure(&text) {
        Some(f) => f.to_string(),
        None => format!(
            "{}: {}",
            mcb_exec::describe(out.status),
            mcb_exec::last_lines(&text, 5)
        ),
    }
}
