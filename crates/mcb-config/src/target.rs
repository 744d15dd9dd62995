//! A site's target: where its code is served and how the live site is reached, for the
//! commands that act on the site itself (`status`, `apply`). The database is not here: it
//! is read from the site's own config.php, never written in the site file.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::ConfigError;

/// Where a site runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The deploy directory: `releases/`, and `current`, which the web server serves.
    pub deploy: PathBuf,
    /// The site's config.php (outside the codebase; its `links:` entry links it in).
    pub config: PathBuf,
    /// The PHP command line that runs Moodle's scripts for this site.
    pub php: String,
    /// A page the web server must answer with 200 and this text once the site is up.
    pub health: Option<Health>,
    /// What Moodle's maintenance page says while mcb works on the site.
    pub maintenance_message: Option<String>,
    /// Where database backups go, and how many are kept.
    pub backups: Backups,
    /// A program and its arguments run after each switch of `current` (`systemctl reload
    /// php8.3-fpm`): PHP-FPM keeps resolved paths and compiled files of the release before
    /// until it is reloaded.
    pub reload: Option<Vec<String>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Health {
    pub url: String,
    pub contains: String,
    /// How long the page has to answer as it should after a switch.
    pub within_seconds: u32,
}

/// How long a health page has when the site file does not say.
pub const DEFAULT_HEALTH_WITHIN: u32 = 60;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backups {
    /// `None`: `backups/` in the deploy directory.
    pub dir: Option<PathBuf>,
    pub keep: u32,
    /// The site's own backup program and its arguments, `{file}` standing for the file it
    /// writes (a dump the engine's own restore reads); `None`: `pg_dump -Fc` or
    /// `mariadb-dump`.
    pub command: Option<Vec<String>>,
}

/// Backups kept when the site file does not say.
pub const DEFAULT_BACKUPS_KEPT: u32 = 3;

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename = "Target")]
pub(crate) struct RawTarget {
    deploy: String,
    config: String,
    #[serde(default)]
    php: Option<String>,
    #[serde(default)]
    health: Option<RawHealth>,
    #[serde(default)]
    maintenance_message: Option<String>,
    #[serde(default)]
    backups: Option<RawBackups>,
    #[serde(default)]
    reload: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename = "Health")]
struct RawHealth {
    url: String,
    contains: String,
    #[serde(default)]
    within: Option<u32>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename = "Backups")]
struct RawBackups {
    #[serde(default)]
    dir: Option<String>,
    #[serde(default)]
    keep: Option<u32>,
    #[serde(default)]
    command: Option<Vec<String>>,
}

const SHAPE: &str = "target: (deploy: \"/srv/www/SITE\", config: \"/etc/moodle/SITE/config.php\", php: \"php\", health: (url: \"https://…/login/index.php\", contains: \"Log in\"), backups: (dir: \"/var/backups/mcb/SITE\", keep: 3))";

/// `argv` names a program (no spaces, no control characters) and its arguments.
fn is_program(argv: &[String]) -> bool {
    argv.first()
        .is_some_and(|p| !p.is_empty() && !p.chars().any(|c| c.is_whitespace() || c.is_control()))
        && argv.iter().all(|a| !a.chars().any(char::is_control))
}

/// Checks a site file's `target` (at `pos` in `path`).
pub(crate) fn target(
    path: &Path,
    raw: RawTarget,
    pos: Option<(usize, usize)>,
) -> Result<Target, ConfigError> {
    let bad = |why: String| {
        ConfigError::new(path, format!("target: {why}"))
            .at(pos)
            .hint(SHAPE)
    };
    let absolute = |field: &str, p: &str| -> Result<PathBuf, ConfigError> {
        let pb = PathBuf::from(p);
        if !pb.is_absolute() || p.split('/').any(|c| c == "..") || p.chars().any(char::is_control) {
            return Err(bad(format!(
                "{field} '{}' is not an absolute path without '..'",
                p.escape_debug()
            )));
        }
        Ok(pb)
    };
    let deploy = absolute("deploy", &raw.deploy)?;
    let config = absolute("config", &raw.config)?;
    if config.starts_with(&deploy) {
        return Err(bad(
            "config is inside the deploy directory; keep the site's config.php outside the code it serves".into(),
        ));
    }
    let php = raw.php.unwrap_or_else(|| "php".into());
    if php.is_empty() || php.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(bad(format!(
            "php '{}' is not a program (a name on the PATH or a path, no arguments)",
            php.escape_debug()
        )));
    }
    let health = match raw.health {
        Some(h) => {
            let scheme_ok = ["http://", "https://"].iter().any(|s| {
                h.url
                    .get(..s.len())
                    .is_some_and(|p| p.eq_ignore_ascii_case(s))
            });
            if !scheme_ok || h.url.chars().any(char::is_whitespace) {
                return Err(bad(format!(
                    "health url '{}' is not an http(s) URL",
                    h.url.escape_debug()
                )));
            }
            if h.contains.trim().is_empty() {
                return Err(bad("health contains nothing to look for".into()));
            }
            let within_seconds = h.within.unwrap_or(DEFAULT_HEALTH_WITHIN);
            if !(1..=3600).contains(&within_seconds) {
                return Err(bad(format!(
                    "health within {within_seconds} is not between 1 and 3600 seconds"
                )));
            }
            Some(Health {
                url: h.url,
                contains: h.contains,
                within_seconds,
            })
        }
        None => None,
    };
    let backups = match raw.backups {
        Some(b) => {
            let keep = b.keep.unwrap_or(DEFAULT_BACKUPS_KEPT);
            if !(1..=1000).contains(&keep) {
                return Err(bad(format!(
                    "backups keep {keep} is not between 1 and 1000"
                )));
            }
            let command = match b.command {
                Some(argv) => {
                    if !is_program(&argv) || !argv.iter().any(|a| a.contains("{file}")) {
                        return Err(bad(
                            "backups command is a program and its arguments, one of them holding {file}".into(),
                        ));
                    }
                    Some(argv)
                }
                None => None,
            };
            Backups {
                dir: b.dir.map(|d| absolute("backups dir", &d)).transpose()?,
                keep,
                command,
            }
        }
        None => Backups {
            dir: None,
            keep: DEFAULT_BACKUPS_KEPT,
            command: None,
        },
    };
    let reload = match raw.reload {
        Some(argv) if !is_program(&argv) => {
            return Err(bad(
                "reload is a program and its arguments: [\"systemctl\", \"reload\", \"php8.3-fpm\"]".into(),
            ));
        }
        r => r,
    };
    Ok(Target {
        reload,
        deploy,
        config,
        php,
        health,
        maintenance_message: raw.maintenance_message,
        backups,
    })
}

#[cfg(test)]
mod tests {
    use crate::SiteFile;

    fn parse(target: &str) -> Result<SiteFile, crate::ConfigError> {
        SiteFile::parse(
            std::path::Path::new("/s/site.ron"),
            &format!(
                "Site(\n  name: \"a\",\n  moodle: (version: \"4.5\"),\n  target: {target},\n)"
            ),
        )
    }

    #[test]
    fn a_target_is_read_with_its_defaults_and_every_field_checked() {
        let s = parse(r#"(deploy: "/srv/www/a", config: "/etc/moodle/a/config.php")"#).unwrap();
        let t = s.target.unwrap();
        assert_eq!(t.php, "php");
        assert_eq!(t.backups.keep, super::DEFAULT_BACKUPS_KEPT);
        assert_eq!(t.backups.dir, None);
        let s = parse(
            r#"(deploy: "/srv/www/a", config: "/etc/moodle/a/config.php", php: "/usr/bin/php8.3",
               health: (url: "https://a.example/login/index.php", contains: "Log in"),
               maintenance_message: "Back at 7", backups: (dir: "/var/backups/a", keep: 7))"#,
        )
        .unwrap();
        let t = s.target.unwrap();
        let health = t.health.unwrap();
        assert_eq!(health.contains, "Log in");
        assert_eq!(health.within_seconds, super::DEFAULT_HEALTH_WITHIN);
        assert_eq!(t.backups.keep, 7);
        let s = parse(
            r#"(deploy: "/srv/www/a", config: "/etc/c.php",
               health: (url: "http://127.0.0.1/", contains: "x", within: 5),
               backups: (command: ["/usr/local/bin/dump", "--to", "{file}"]))"#,
        )
        .unwrap();
        let t = s.target.unwrap();
        assert_eq!(t.health.unwrap().within_seconds, 5);
        assert_eq!(t.backups.command.unwrap()[2], "{file}");
        assert_eq!(t.reload, None);
        for (bad, says) in [
            (
                r#"(deploy: "www", config: "/etc/c.php")"#,
                "deploy 'www' is not an absolute path",
            ),
            (
                r#"(deploy: "/srv/../etc", config: "/etc/c.php")"#,
                "without '..'",
            ),
            (
                r#"(deploy: "/srv/www", config: "/srv/www/config.php")"#,
                "config is inside the deploy directory",
            ),
            (
                r#"(deploy: "/srv/www", config: "/etc/c.php", php: "php -d x=1")"#,
                "is not a program",
            ),
            (
                r#"(deploy: "/srv/www", config: "/etc/c.php", health: (url: "file:///etc", contains: "x"))"#,
                "is not an http(s) URL",
            ),
            (
                r#"(deploy: "/srv/www", config: "/etc/c.php", backups: (command: ["dump"]))"#,
                "one of them holding {file}",
            ),
            (
                r#"(deploy: "/srv/www", config: "/etc/c.php", reload: ["systemctl reload fpm"])"#,
                "reload is a program and its arguments",
            ),
            (
                r#"(deploy: "/srv/www", config: "/etc/c.php", health: (url: "http://h/", contains: "x", within: 0))"#,
                "between 1 and 3600",
            ),
            (
                r#"(deploy: "/srv/www", config: "/etc/c.php", health: (url: "https://a", contains: " "))"#,
                "nothing to look for",
            ),
            (
                r#"(deploy: "/srv/www", config: "/etc/c.php", backups: (keep: 0))"#,
                "not between 1 and 1000",
            ),
            (
                r#"(deploy: "/srv/www", config: "/etc/c.php", password: "x")"#,
                "password",
            ),
        ] {
            let e = parse(bad).unwrap_err().to_string();
            assert!(e.contains(says), "{bad}: {e}");
            assert!(e.contains("4:"), "the target's line is said: {e}");
        }
    }
}
