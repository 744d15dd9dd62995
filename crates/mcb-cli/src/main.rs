//! The `mcb` command line: parses flags, draws progress, prints results (or JSON) and maps
//! failures to exit codes. Everything else lives in the library crates.

mod lifecycle;
mod output;
mod progress;
mod term;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

const EXIT_CODES: &str = "\
Exit codes:
  0  success
  1  failure of the store, git or the filesystem
  2  (plan, check) changes pending / an upgrade is blocked
  3  the site file or lock is invalid
  4  no set of versions satisfies the site file and Moodle's rules
  5  a source could not be fetched or read
  6  content does not match its hash (verify found damage or drift; reproduce differs)";

/// Builds reproducible Moodle codebases from a declarative site file.
#[derive(Parser, Debug)]
#[command(name = "mcb", version, after_help = EXIT_CODES)]
struct Cli {
    /// The store (default: $MCB_STORE, else $XDG_DATA_HOME/mcb).
    #[arg(long, global = true, value_name = "DIR")]
    store: Option<PathBuf>,
    /// Use only the store and cached metadata; never touch the network.
    #[arg(long, global = true)]
    offline: bool,
    /// Print only errors.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    quiet: bool,
    /// Say more about what happens.
    #[arg(short, long, global = true)]
    verbose: bool,
    /// Print one machine-readable JSON object on stdout.
    #[arg(long, global = true)]
    json: bool,
    /// Ask the plugins directory again even when its cached list is recent.
    #[arg(long, global = true)]
    refresh: bool,
    /// Bounds on sizes and network time, as name=value pairs over the defaults, e.g.
    /// "file-bytes=64M,idle-timeout=60s" (source-files, source-bytes, file-bytes,
    /// http-bytes, connect-timeout, idle-timeout, request-deadline).
    #[arg(long, global = true, env = "MCB_LIMITS", value_name = "LIMITS", value_parser = parse_limits)]
    limits: Option<mcb_catalog::Limits>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Resolve (reusing the lock where it still fits), fetch, build, commit and materialise;
    /// print the commit id and the tree path.
    Realise {
        /// The site file.
        #[arg(default_value = "site.ron")]
        site: PathBuf,
        /// Where to put the `result` link (default: beside the site file).
        #[arg(long, value_name = "PATH")]
        out: Option<PathBuf>,
        /// How the codebase's files are laid out: hardlinks to the store (no extra space;
        /// an edit in place is detected and repaired), reflinks (copy-on-write, btrfs or
        /// XFS: an edit stays in its tree) or plain copies.
        #[arg(long, value_name = "MODE", default_value = "hardlink", value_parser = ["hardlink", "reflink", "copy"])]
        link: String,
        /// Take over the site's name when another site file owns it.
        #[arg(long)]
        force: bool,
    },
    /// Which plugins have a version for Moodle X.Y and which block the upgrade.
    Check {
        /// The site file.
        #[arg(default_value = "site.ron")]
        site: PathBuf,
        /// The Moodle release to check, e.g. 5.0.
        #[arg(long, value_name = "X.Y")]
        moodle: String,
    },
    /// Delete store content that no root reaches: each site's newest generations and every
    /// live `result` link are roots.
    Gc {
        /// Generations to keep per site.
        #[arg(long, default_value_t = 3)]
        keep: usize,
        /// List what would go, delete nothing.
        #[arg(long)]
        dry_run: bool,
        /// Spare anything younger than this many seconds.
        #[arg(long, default_value_t = 3600, value_name = "SECS")]
        grace: u64,
    },
    /// Re-hash the store and check its manifests; with --tree, report drift in a
    /// materialised tree.
    Verify {
        /// A `result` link or generation directory to compare with what it was made as.
        #[arg(long, value_name = "DIR")]
        tree: Option<PathBuf>,
        /// Restore damaged or missing objects from git and rebuild changed generations.
        #[arg(long, conflicts_with = "tree")]
        repair: bool,
    },
    /// Rebuild a lock (or a site commit) from its origins in an empty store; it must give
    /// the same tree.
    Reproduce {
        /// A site.lock, or a commit id of a site branch in the store.
        target: String,
        /// Also name every source whose content differs from the lock.
        #[arg(long)]
        check: bool,
    },
    /// Versions of a plugin in the plugins directory and the Moodle releases each supports.
    Info {
        /// A component such as mod_attendance.
        component: String,
        /// Use this site file's `directory:` (default: site.ron here, if there is one).
        #[arg(long, value_name = "SITE.ron")]
        site: Option<PathBuf>,
    },
}

pub(crate) struct Global {
    pub store: PathBuf,
    pub offline: bool,
    pub quiet: bool,
    pub verbose: bool,
    pub json: bool,
    pub refresh: bool,
    pub limits: mcb_catalog::Limits,
}

fn parse_limits(text: &str) -> Result<mcb_catalog::Limits, String> {
    mcb_catalog::Limits::parse(text).map_err(|e| e.to_string())
}

impl Global {
    /// Pipeline options from the flags and the environment (`MCB_DIRECTORY`,
    /// `MCB_MARKETPLACE_TOKEN`).
    pub fn options(&self) -> mcb_realise::Options {
        let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        let mut o = mcb_realise::Options::new(self.store.clone());
        o.offline = self.offline;
        o.refresh = self.refresh;
        o.limits = self.limits;
        o.directory = env("MCB_DIRECTORY");
        o.token = env("MCB_MARKETPLACE_TOKEN");
        o
    }
}

fn default_store() -> PathBuf {
    if let Some(s) = std::env::var_os("MCB_STORE").filter(|s| !s.is_empty()) {
        return PathBuf::from(s);
    }
    if let Some(d) = std::env::var_os("XDG_DATA_HOME").filter(|s| !s.is_empty()) {
        return PathBuf::from(d).join("mcb");
    }
    let home = std::env::var_os("HOME").unwrap_or_else(|| ".".into());
    PathBuf::from(home).join(".local/share/mcb")
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let global = Global {
        store: cli.store.clone().unwrap_or_else(default_store),
        offline: cli.offline,
        quiet: cli.quiet,
        verbose: cli.verbose,
        json: cli.json,
        refresh: cli.refresh,
        limits: cli.limits.unwrap_or_default(),
    };
    let code = match cli.command {
        Command::Realise {
            site,
            out,
            link,
            force,
        } => output::realise(&global, &site, out, &link, force),
        Command::Check { site, moodle } => output::check(&global, &site, &moodle),
        Command::Info { component, site } => output::info(&global, &component, site),
        Command::Gc {
            keep,
            dry_run,
            grace,
        } => lifecycle::gc(&global, keep, dry_run, grace),
        Command::Verify { tree, repair } => lifecycle::verify(&global, tree, repair),
        Command::Reproduce { target, check } => lifecycle::reproduce(&global, &target, check),
    };
    ExitCode::from(code)
}
