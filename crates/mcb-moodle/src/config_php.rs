//! A site's `config.php`, kept outside the codebase and linked into it. PHP resolves
//! `__DIR__` of a file reached through a symlink to the directory of the link's target, so
//! the `require_once(__DIR__ . '/lib/setup.php')` Moodle's own config-dist.php ends with
//! would look for `lib/setup.php` beside the linked file, outside the codebase. The
//! template names the served codebase by its path instead.

use crate::release::Release;

/// Where `lib/setup.php` is, relative to the codebase root: in the web root, which from
/// Moodle 5.1 is `public/` (config.php itself stays at the codebase root).
pub fn setup_php(release: Release) -> &'static str {
    match crate::layout::web_root_dir(release) {
        Some(_) => "public/lib/setup.php",
        None => "lib/setup.php",
    }
}

/// A starter `config.php` for site `site` on `release`, whose codebase is served from
/// `codebase` (a `result` link, or a deploy directory's `current`): every setting to fill
/// in, the database password empty.
pub fn config_template(site: &str, release: Release, codebase: &str) -> String {
    let setup = format!("{}/{}", codebase.trim_end_matches('/'), setup_php(release));
    let quoted = php_single_quoted(&setup);
    format!(
        r#"<?php  // Moodle configuration file of site {site}, linked into its codebase by mcb.

unset($CFG);
global $CFG;
$CFG = new stdClass();

$CFG->dbtype    = 'pgsql';      // 'pgsql', 'mariadb' or 'mysqli'
$CFG->dblibrary = 'native';
$CFG->dbhost    = 'localhost';
$CFG->dbname    = 'moodle';
$CFG->dbuser    = 'moodle';
$CFG->dbpass    = '';
$CFG->prefix    = 'mdl_';
$CFG->dboptions = ['dbpersist' => 0, 'dbport' => '', 'dbsocket' => ''];

$CFG->wwwroot   = 'https://moodle.example.org';
$CFG->dataroot  = '/var/lib/moodle/{site}';
$CFG->admin     = 'admin';

$CFG->directorypermissions = 02777;

// The codebase by its path, not __DIR__: through the link, __DIR__ is this file's own
// directory, outside the codebase.
require_once({quoted});

// There is no php closing tag in this file,
// it is intentional because it prevents trailing whitespace problems!
"#
    )
}

/// `s` as a PHP single-quoted string literal.
fn php_single_quoted(s: &str) -> String {
    format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_template_names_setup_php_by_the_codebase_path_in_each_layout() {
        let t = config_template("univ", Release::new(4, 5), "/srv/univ/result/");
        assert!(
            t.contains("require_once('/srv/univ/result/lib/setup.php');"),
            "{t}"
        );
        assert!(!t.contains("__DIR__ ."), "{t}");
        let t = config_template("univ", Release::new(5, 1), "/srv/www/univ/current");
        assert!(
            t.contains("require_once('/srv/www/univ/current/public/lib/setup.php');"),
            "{t}"
        );
        let t = config_template("o", Release::new(4, 5), "/srv/o'brien");
        assert!(
            t.contains(r"require_once('/srv/o\'brien/lib/setup.php');"),
            "{t}"
        );
    }
}
