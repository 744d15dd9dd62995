//! What help shows beyond the flags: an Examples section per command, and the environment
//! the manual page lists. A test parses every example with the real command line, so none
//! goes stale.

/// Each command's examples: the command line (after `mcb`) and what it does.
pub(crate) const EXAMPLES: &[(&str, &[(&str, &str)])] = &[
    (
        "realise",
        &[
            ("realise", "build the site file found here or above"),
            (
                "realise sites/web.ron --link copy",
                "a codebase of plain copies",
            ),
            ("realise --locked", "in CI: build exactly the lock in git"),
        ],
    ),
    (
        "check",
        &[
            (
                "check --moodle 5.2",
                "which plugins block an upgrade to 5.2",
            ),
            (
                "check --all-branches --html readiness.html",
                "the readiness page for every later release",
            ),
        ],
    ),
    (
        "gc",
        &[
            ("gc --dry-run", "what would be deleted"),
            ("gc --keep 5", "keep five generations per site"),
        ],
    ),
    (
        "verify",
        &[
            ("verify", "re-hash the whole store"),
            (
                "verify --tree /var/www/moodle/current",
                "files changed on a web server",
            ),
            ("verify --repair", "restore damaged objects from git"),
        ],
    ),
    (
        "reproduce",
        &[(
            "reproduce site.lock --check",
            "rebuild the lock from upstream in an empty store",
        )],
    ),
    (
        "info",
        &[(
            "info mod_attendance",
            "its versions and the releases each supports",
        )],
    ),
    (
        "plan",
        &[
            ("plan", "what realise would change"),
            ("plan --out web.plan", "save the plan for `realise --plan`"),
        ],
    ),
    (
        "update",
        &[
            ("update", "move every plugin to its newest allowed version"),
            ("update block_xp mod_attendance", "only these two"),
            ("update --core", "only Moodle itself"),
        ],
    ),
    ("outdated", &[("outdated", "what update would move")]),
    (
        "reconcile",
        &[
            (
                "reconcile --test",
                "build, test and switch when the test passes",
            ),
            (
                "reconcile --watch 600 --apply",
                "every ten minutes, up to the live site",
            ),
        ],
    ),
    (
        "history",
        &[
            ("history", "this site's generations, newest first"),
            ("history web -n 5", "site web's five newest"),
        ],
    ),
    (
        "rollback",
        &[
            ("rollback", "back one generation"),
            ("rollback --to gen-3", "back to the third generation"),
            (
                "rollback --to gen-3 --pin",
                "and pin its versions in the site file",
            ),
        ],
    ),
    (
        "sites",
        &[("sites", "every site in the store and what it costs")],
    ),
    (
        "forget",
        &[(
            "forget old-site",
            "retire a site; gc frees what only it used",
        )],
    ),
    (
        "archive",
        &[
            (
                "archive prod --since 2026-01-01 -o prod-2026.tar.gz",
                "the sources of this year's generations, for an audit",
            ),
            (
                "archive --offline",
                "only what the store kept (a zip it no longer has is archived as its files)",
            ),
        ],
    ),
    (
        "cache",
        &[
            (
                "cache key build-1 -o /etc/mcb/cache.key",
                "a signing key; prints the public key for readers' trusted_keys",
            ),
            (
                "cache push --to s3://mcb-cache/builds --key /etc/mcb/cache.key",
                "publish what every site's newest generations use, signed",
            ),
            (
                "cache push prod --to https://cache.example.org/mcb/",
                "one site, to a WebDAV share (key from MCB_SIGNING_KEY)",
            ),
            (
                "cache gc --to s3://mcb-cache/builds --keep-days 30 --dry-run",
                "what a collection would remove: nothing a lock of the last 30 days names",
            ),
        ],
    ),
    (
        "init",
        &[
            ("init --moodle 4.5", "a commented site.ron for Moodle 4.5"),
            (
                "init --config-php /etc/moodle/web.php",
                "with a config.php kept outside the codebase",
            ),
        ],
    ),
    (
        "add",
        &[
            ("add mod_attendance", "from the plugins directory"),
            (
                "add block_xp --git https://github.com/FMCorz/moodle-block_xp --ref v19.1",
                "from git, or change its entry",
            ),
        ],
    ),
    (
        "remove",
        &[("remove block_xp", "take it out of the site file")],
    ),
    (
        "why",
        &[(
            "why qtype_gapfill",
            "which plugins of the site file need it",
        )],
    ),
    ("tree", &[("tree --json", "the dependency graph as JSON")]),
    (
        "import",
        &[(
            "import /var/www/moodle --out ops/web",
            "a site file and lock of an installation",
        )],
    ),
    (
        "test",
        &[
            ("test", "lint, install and schema check"),
            (
                "test --upgrade-from gen-2",
                "upgrade from the second generation",
            ),
            (
                "test --upgrade-from prod.dump --db mariadb",
                "upgrade a copy of a live database",
            ),
        ],
    ),
    (
        "push",
        &[(
            "push git@git.example.org:ops/sites.git",
            "branch, generation tags, test results",
        )],
    ),
    (
        "deploy",
        &[
            (
                "deploy git@git.example.org:ops/sites.git --site web --to /var/www/moodle",
                "the newest generation",
            ),
            (
                "deploy /srv/mcb --site web --commit gen-4 --to /var/www/moodle",
                "the fourth, from a store on this machine",
            ),
            (
                "deploy --rollback --to /var/www/moodle",
                "switch back to the release before",
            ),
        ],
    ),
    (
        "status",
        &[("status", "what the live site runs and what it lacks")],
    ),
    (
        "apply",
        &[
            (
                "apply",
                "bring the live site to its newest tested generation",
            ),
            (
                "apply --all --wave 1,25%,100%",
                "a canary, a quarter, then the rest",
            ),
        ],
    ),
    (
        "completions",
        &[("completions bash", "bash completions, on stdout")],
    ),
    ("man", &[("man", "the manual page, in roff")]),
];

/// The environment variables mcb reads, for the manual page.
pub(crate) const ENVIRONMENT: &[(&str, &str)] = &[
    ("MCB_STORE", "The store (as --store)."),
    ("MCB_DIRECTORY", "The plugins directory (as --directory)."),
    (
        "MCB_LIMITS",
        "Bounds on sizes and network time (as --limits).",
    ),
    (
        "MCB_MARKETPLACE_TOKEN",
        "A bearer token for the Moodle Marketplace; never printed or stored.",
    ),
    (
        "MCB_MARKETPLACE_HOSTS",
        "The hosts the Marketplace token goes to.",
    ),
    ("MCB_MARKETPLACE_API", "The Marketplace API's base URL."),
    (
        "MCB_MOODLE_GIT",
        "Moodle's own git upstream, for releases no site source holds.",
    ),
    (
        "NO_COLOR",
        "When set and not empty, no colour (as --color never).",
    ),
    (
        "XDG_DATA_HOME",
        "The store is $XDG_DATA_HOME/mcb when neither --store nor MCB_STORE is given.",
    ),
];

/// The Examples section of command `name`'s help.
pub(crate) fn section(name: &str) -> Option<String> {
    let (_, list) = EXAMPLES.iter().find(|(n, _)| *n == name)?;
    let width = list
        .iter()
        .map(|(c, _)| c.len() + 4)
        .filter(|w| *w <= 56)
        .max()
        .unwrap_or(0)
        + 2;
    let mut out = String::from("Examples:");
    for (cmd, what) in *list {
        let line = format!("mcb {cmd}");
        if line.len() > 56 {
            out.push_str(&format!("\n  # {what}\n  {line}"));
        } else {
            out.push_str(&format!("\n  {line:<width$}# {what}"));
        }
    }
    Some(out)
}

/// The command line with each command's Examples section.
pub(crate) fn command() -> clap::Command {
    use clap::CommandFactory;
    let mut cmd = crate::cli::Cli::command();
    let names: Vec<String> = cmd
        .get_subcommands()
        .map(|c| c.get_name().to_string())
        .collect();
    for name in names {
        if let Some(text) = section(&name) {
            cmd = cmd.mut_subcommand(&name, |c| c.after_help(text));
        }
    }
    cmd
}

/// Global options that mean nothing to a command: `init` uses no store, `completions` and
/// `man` print a script and a page. They are accepted (an alias that always gives --store
/// keeps working) but not shown in the command's help.
const UNUSED_GLOBALS: [(&str, &[&str]); 3] = [
    ("init", &["store"]),
    (
        "completions",
        &["store", "json", "quiet", "verbose", "color"],
    ),
    ("man", &["store", "json", "quiet", "verbose", "color"]),
];

/// The help of command `name` when some global options mean nothing to it, else none.
pub(crate) fn help_without_unused(name: &str) -> Option<String> {
    let (_, unused) = UNUSED_GLOBALS.iter().find(|(n, _)| *n == name)?;
    let mut cmd = command();
    cmd.build();
    let sub = cmd.find_subcommand_mut(name)?;
    let mut sub = sub.clone();
    for id in *unused {
        sub = sub.mut_arg(*id, |a| a.hide(true));
    }
    Some(
        sub.bin_name(format!("mcb {name}"))
            .render_help()
            .to_string(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_command_has_examples_and_every_example_parses() {
        let cmd = command();
        for sub in cmd.get_subcommands() {
            assert!(
                EXAMPLES.iter().any(|(n, _)| *n == sub.get_name()),
                "{} has no examples",
                sub.get_name()
            );
        }
        for (name, list) in EXAMPLES {
            for (line, _) in *list {
                let args = std::iter::once("mcb").chain(line.split_whitespace());
                let parsed = command().try_get_matches_from(args);
                let m = parsed.unwrap_or_else(|e| panic!("mcb {line}: {e}"));
                let (sub, _) = m.subcommand().expect("a command");
                assert_eq!(sub, *name, "{line} listed under {name}");
            }
        }
    }
}
