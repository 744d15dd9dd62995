//! The command line's shape: global flags (every command reads the store and prints), the
//! network flags (only commands that fetch take them) and one struct per subcommand.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use clap_complete::ArgValueCompleter;

use crate::error::EXIT_CODES;

/// Builds reproducible Moodle codebases from a declarative site file.
#[derive(Parser, Debug)]
#[command(name = "mcb", version, after_help = EXIT_CODES)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// What every command takes.
#[derive(Args, Debug, Clone)]
#[command(next_help_heading = "Global options")]
pub struct GlobalArgs {
    /// The store [default: $XDG_DATA_HOME/mcb].
    #[arg(
        long,
        global = true,
        value_name = "DIR",
        env = "MCB_STORE",
        hide_env_values = true
    )]
    pub store: Option<PathBuf>,
    /// Print only errors.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    /// Say more about what happens.
    #[arg(short, long, global = true)]
    pub verbose: bool,
    /// Run as if mcb had been started in DIR (site files and paths are found from there).
    #[arg(short = 'C', long = "chdir", global = true, value_name = "DIR")]
    pub chdir: Option<PathBuf>,
    /// Print one machine-readable JSON object on stdout.
    #[arg(long, global = true)]
    pub json: bool,
    /// When to colour the output: on a terminal unless NO_COLOR is set (auto), always, never.
    #[arg(long, global = true, value_name = "WHEN", default_value = "auto")]
    pub color: crate::term::ColorWhen,
}

impl GlobalArgs {
    pub fn store(&self) -> PathBuf {
        if let Some(s) = self.store.as_ref().filter(|s| !s.as_os_str().is_empty()) {
            return s.clone();
        }
        if let Some(d) = std::env::var_os("XDG_DATA_HOME").filter(|s| !s.is_empty()) {
            return PathBuf::from(d).join("mcb");
        }
        let home = std::env::var_os("HOME").unwrap_or_else(|| ".".into());
        PathBuf::from(home).join(".local/share/mcb")
    }
}

/// What commands that reach upstreams take.
#[derive(Args, Debug, Clone)]
#[command(next_help_heading = "Network options")]
pub struct NetArgs {
    /// Use only the store and cached metadata; never touch the network.
    #[arg(long)]
    pub offline: bool,
    /// Ask upstreams again (plugin index, git refs) even when the cached answer is recent.
    #[arg(long)]
    pub refresh: bool,
    /// Bounds on sizes and network time, as name=value pairs over the defaults, e.g.
    /// "file-bytes=64M,idle-timeout=60s" (source-files, source-bytes, file-bytes,
    /// http-bytes, metadata-bytes, metadata-versions, connect-timeout, idle-timeout,
    /// request-deadline).
    #[arg(long, env = "MCB_LIMITS", hide_env_values = true, value_name = "LIMITS", value_parser = parse_limits)]
    pub limits: Option<mcb_catalog::Limits>,
    /// The plugins directory to use, whatever the site file says (a URL or a local file).
    #[arg(
        long,
        env = "MCB_DIRECTORY",
        hide_env_values = true,
        value_name = "URL|FILE"
    )]
    pub directory: Option<String>,
    /// A bearer token for the Moodle Marketplace.
    #[arg(
        long,
        env = "MCB_MARKETPLACE_TOKEN",
        hide = true,
        hide_env_values = true
    )]
    pub marketplace_token: Option<String>,
    /// The hosts the Marketplace token goes to (comma-separated `host` or `host:port`).
    #[arg(
        long,
        env = "MCB_MARKETPLACE_HOSTS",
        hide = true,
        hide_env_values = true,
        value_delimiter = ','
    )]
    pub marketplace_hosts: Option<Vec<String>>,
    /// The Marketplace API's base URL.
    #[arg(long, env = "MCB_MARKETPLACE_API", hide = true, hide_env_values = true)]
    pub marketplace_api: Option<String>,
    /// Moodle's own git upstream (for releases no site source holds).
    #[arg(long, env = "MCB_MOODLE_GIT", hide = true, hide_env_values = true)]
    pub moodle_git: Option<String>,
    /// Binary caches a locked package the store lacks is taken from before its upstream
    /// (comma-separated file://, http(s):// or s3:// URLs) [default: the store's config.ron].
    #[arg(
        long,
        env = "MCB_SUBSTITUTERS",
        hide_env_values = true,
        value_delimiter = ',',
        value_name = "URLS"
    )]
    pub substituters: Option<Vec<String>>,
    /// The public keys (NAME:HEX, comma-separated) a cache's records must be signed by
    /// [default: the store's config.ron].
    #[arg(
        long,
        env = "MCB_TRUSTED_KEYS",
        hide_env_values = true,
        value_delimiter = ',',
        value_name = "KEYS"
    )]
    pub trusted_keys: Option<Vec<String>>,
}

fn parse_limits(text: &str) -> Result<mcb_catalog::Limits, String> {
    mcb_catalog::Limits::parse(text).map_err(|e| e.to_string())
}

/// How a tree's files are laid out: one of `modes`, in the order help lists them.
fn link_modes(
    modes: [&'static str; 4],
) -> impl clap::builder::TypedValueParser<Value = mcb_store::LinkMode> {
    use clap::builder::TypedValueParser;
    clap::builder::PossibleValuesParser::new(modes)
        .map(|m| mcb_store::LinkMode::parse(&m).expect("every listed mode parses"))
}

/// A database as `check --db` names it: `postgres:16`, `mariadb:10.11`, `mysql:8.4`.
fn parse_db_facts(text: &str) -> Result<(String, String), String> {
    let (vendor, version) = text
        .split_once(':')
        .ok_or_else(|| format!("'{text}' is not VENDOR:VERSION such as postgres:16"))?;
    let vendor = match vendor.to_ascii_lowercase().as_str() {
        "postgres" | "postgresql" | "pgsql" => "postgres",
        "mariadb" => "mariadb",
        "mysql" => "mysql",
        other => {
            return Err(format!(
                "'{other}' is not a database Moodle runs on: postgres, mariadb or mysql"
            ));
        }
    };
    if version.is_empty()
        || !version
            .split('.')
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(format!("'{version}' is not a version such as 16 or 10.11"));
    }
    Ok((vendor.to_string(), version.to_string()))
}

/// A Moodle release `X.Y`.
/// `--db` of `mcb test`.
fn parse_db_target(text: &str) -> Result<mcb_sitetest::DbTarget, String> {
    mcb_sitetest::DbTarget::parse(text).map_err(|e| e.message)
}

pub fn parse_release(text: &str) -> Result<mcb_moodle::Release, String> {
    let parts: Vec<&str> = text.split('.').collect();
    let ok = parts.len() == 2
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    mcb_moodle::Release::parse_leading(text)
        .filter(|_| ok)
        .ok_or_else(|| format!("'{text}' is not a Moodle release X.Y such as 5.0"))
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Resolve (reusing the lock where it still fits), fetch, build, commit and materialise;
    /// print the commit id and the tree path.
    Realise(RealiseArgs),
    /// Which plugins have a version for Moodle X.Y and which block the upgrade.
    Check(CheckArgs),
    /// Delete store content that no root reaches: each site's newest generations and every
    /// live `result` link are roots.
    Gc(GcArgs),
    /// Re-hash the store, check its manifests and generations; with --tree, report drift in
    /// a materialised tree.
    Verify(VerifyArgs),
    /// Rebuild a lock (or a site commit) from its origins in an empty store; it must give
    /// the same tree.
    Reproduce(ReproduceArgs),
    /// Versions of a plugin in the plugins directory and the Moodle releases each supports.
    Info(InfoArgs),
    /// What realise would change, changing nothing: core, plugins added, removed, upgraded,
    /// downgraded (dangerous), sources; exit 2 when something is pending.
    Plan(PlanArgs),
    /// Move the lock to the newest versions the site file allows (all, or those named),
    /// then realise.
    Update(UpdateArgs),
    /// What update would move in the lock, without moving it; exit 2 when something would.
    Outdated(OutdatedArgs),
    /// Re-read the site file, ask upstream, update and realise; with --watch, again and
    /// again until stopped.
    Reconcile(ReconcileArgs),
    /// The site's generations, newest first.
    History(HistoryArgs),
    /// Make an earlier generation current again (a new commit on the site branch).
    Rollback(RollbackArgs),
    /// The sites in the store: current commit, tree, result links, what only each costs.
    Sites(SitesArgs),
    /// Retire a site: delete its branch and roots, so gc frees what only it used.
    Forget(ForgetArgs),
    /// Write every source the site's generations used (zips as downloaded, git bundles),
    /// with their locks and hashes, as a tarball an auditor checks without mcb.
    Archive(ArchiveArgs),
    /// Binary caches: push what the store's sites use (signed), make a signing key.
    #[command(subcommand)]
    Cache(CacheCommand),
    /// Write a commented starter site file.
    Init(InitArgs),
    /// Add a plugin to the site file (keeping its comments), then plan.
    Add(AddArgs),
    /// Remove a plugin from the site file (keeping its comments), then plan.
    Remove(RemoveArgs),
    /// Read an existing Moodle installation and write the site file and lock that realise
    /// to the same files.
    Import(ImportArgs),
    /// Prove the site's current generation with Moodle's own command line: lint, install
    /// or upgrade from the previous generation, schema check; exit 7 when it fails.
    Test(TestArgs),
    /// Push a site's branch, its generation tags (SITE/gen-N) and its test results to a git remote.
    Push(PushArgs),
    /// Lay a site's generation out on this machine as DIR/releases/<commit> and switch
    /// DIR/current to it.
    Deploy(DeployArgs),
    /// The live site: the generation its target serves, files changed in it, what its
    /// database has run against its code; exit 2 when it is not its newest generation.
    Status(StatusArgs),
    /// Bring the live site to a generation: test gate, database backup, rehearsal on a
    /// throwaway copy, maintenance, switch, upgrade, health check; put back on failure.
    Apply(ApplyArgs),
    /// Why a plugin is in the site's lock: each chain of requirements from a plugin of the
    /// site file to it.
    Why(WhyArgs),
    /// The site's plugins and what each requires, from its lock; --dot for Graphviz.
    Tree(TreeArgs),
    /// Shell completions for bash, zsh, fish, elvish or powershell, on stdout.
    Completions(CompletionsArgs),
    /// The manual page, in roff, on stdout.
    Man,
}

#[derive(Args, Debug)]
pub struct ApplyArgs {
    /// The site files (or directories holding site.ron), each with its target [default:
    /// site.ron here or in the nearest parent directory].
    pub sites: Vec<PathBuf>,
    /// Every site of the store whose site file's deploy directory is on this machine.
    #[arg(long, conflicts_with = "sites")]
    pub all: bool,
    /// The generation to apply: gen-N or a commit (one site only); the newest when not given.
    #[arg(long, value_name = "GEN")]
    pub to: Option<String>,
    /// Apply a generation whose `mcb test` failed or never ran.
    #[arg(long)]
    pub untested: bool,
    /// Waves over several sites: how many have been applied by the end of each, as counts
    /// or shares (`1,25%,100%`: a canary, then up to a quarter, then the rest); each wave's
    /// sites run at once, and a failure ends the rollout after its wave. One site at a time
    /// when not given.
    #[arg(long, value_name = "N,P%,…", value_parser = parse_waves)]
    pub wave: Option<Waves>,
}

/// `--wave`: each wave's end, as a count of sites or a share of them.
#[derive(Debug, Clone, PartialEq)]
pub struct Waves(pub Vec<WaveEnd>);

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum WaveEnd {
    Count(usize),
    Percent(u32),
}

impl Waves {
    /// The sites of each wave, for `n` sites: each wave ends where it says (at least one
    /// more than the wave before), the last takes the rest.
    pub fn split(&self, n: usize) -> Vec<std::ops::Range<usize>> {
        let mut out = Vec::new();
        let mut done = 0;
        for end in &self.0 {
            if done >= n {
                break;
            }
            let want = match *end {
                WaveEnd::Count(c) => c,
                WaveEnd::Percent(p) => (n * p as usize).div_ceil(100),
            };
            let upto = want.max(done + 1).min(n);
            out.push(done..upto);
            done = upto;
        }
        if done < n {
            out.push(done..n);
        }
        out
    }
}

fn parse_waves(text: &str) -> Result<Waves, String> {
    let ends = text
        .split(',')
        .map(|part| {
            let part = part.trim();
            match part.strip_suffix('%') {
                Some(p) => match p.parse::<u32>() {
                    Ok(v) if (1..=100).contains(&v) => Ok(WaveEnd::Percent(v)),
                    _ => Err(format!("'{part}' is not a share from 1% to 100%")),
                },
                None => match part.parse::<usize>() {
                    Ok(v) if v >= 1 => Ok(WaveEnd::Count(v)),
                    _ => Err(format!(
                        "'{part}' is not a count of sites (1 or more) or a share (25%)"
                    )),
                },
            }
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Waves(ends))
}

#[derive(Args, Debug)]
pub struct StatusArgs {
    /// The site file, or a directory holding site.ron [default: site.ron here or in the
    /// nearest parent directory].
    pub site: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct PushArgs {
    /// [SITE.ron|NAME] REMOTE: the site (default site.ron) and where to push it.
    #[arg(num_args = 1..=2, value_names = ["SITE", "REMOTE"], required = true)]
    pub args: Vec<String>,
    /// Overwrite a remote branch that has diverged.
    #[arg(long)]
    pub force: bool,
}

#[derive(Args, Debug)]
pub struct DeployArgs {
    /// A git remote holding the site's branch, or an mcb store on this machine.
    #[arg(required_unless_present = "rollback")]
    pub from: Option<String>,
    /// The site's name.
    #[arg(long, required_unless_present = "rollback", add = ArgValueCompleter::new(crate::complete::sites))]
    pub site: Option<String>,
    /// The generation (default: the newest).
    #[arg(long, value_name = "COMMIT")]
    pub commit: Option<String>,
    /// The deploy directory: releases/ and the current link go there.
    #[arg(long, value_name = "DIR")]
    pub to: PathBuf,
    /// Releases to keep.
    #[arg(long, default_value_t = mcb_deploy::KEEP_RELEASES)]
    pub keep: usize,
    /// How a release from a store on this machine holds its files: clones (copy-on-write
    /// where the filesystem can, else copies), copies, reflinks, or hardlinks to the
    /// store's objects (no extra space, but an edit on the server edits the store's copy
    /// until mcb repairs it). A release from a remote is always copies.
    #[arg(long, value_name = "MODE", default_value = "clone", value_parser = link_modes(["clone", "copy", "reflink", "hardlink"]), conflicts_with = "rollback")]
    pub link: mcb_store::LinkMode,
    /// Switch current back to the release before it.
    #[arg(long, conflicts_with_all = ["from", "commit"])]
    pub rollback: bool,
    /// Deploy a generation whose `mcb test` failed.
    #[arg(long, conflicts_with = "rollback")]
    pub untested: bool,
}

#[derive(Args, Debug)]
pub struct WhyArgs {
    /// A component in the site's lock.
    #[arg(add = ArgValueCompleter::new(crate::complete::components))]
    pub component: String,
    /// The site file, or a directory holding site.ron [default: site.ron here or in the
    /// nearest parent directory].
    #[arg(long, value_name = "SITE.ron")]
    pub site: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct TreeArgs {
    /// The site file, or a directory holding site.ron [default: site.ron here or in the
    /// nearest parent directory].
    pub site: Option<PathBuf>,
    /// The graph in Graphviz's DOT language (`mcb tree --dot | dot -Tsvg`).
    #[arg(long)]
    pub dot: bool,
}

#[derive(Args, Debug)]
pub struct CompletionsArgs {
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[derive(Args, Debug)]
pub struct TestArgs {
    /// The site file, or a directory holding site.ron [default: site.ron here or in the
    /// nearest parent directory].
    pub site: Option<PathBuf>,
    /// Parse the PHP files that changed since the previous generation.
    #[arg(long)]
    pub lint: bool,
    /// Install this generation into an empty database.
    #[arg(long)]
    pub install: bool,
    /// Install an earlier generation (gen-N, -N, or a commit) or restore a database dump,
    /// then upgrade to this one.
    #[arg(long, value_name = "GEN|DUMP", allow_hyphen_values = true)]
    pub upgrade_from: Option<String>,
    /// Compare the database with the install files after installing or upgrading.
    #[arg(long)]
    pub schema: bool,
    /// Lint every PHP file, not only those that changed.
    #[arg(long)]
    pub all: bool,
    /// The database: a throwaway server of `postgres` (the default) or `mariadb`, or a
    /// server of yours, postgresql://USER:PASS@HOST:PORT or mariadb://USER:PASS@HOST:PORT.
    #[arg(long, value_name = "postgres|mariadb|URL", value_parser = parse_db_target)]
    pub db: Option<mcb_sitetest::DbTarget>,
    /// Leave the scratch tree, dataroot and cluster for inspection, and say where.
    #[arg(long)]
    pub keep: bool,
}

#[derive(Args, Debug)]
pub struct PlanArgs {
    /// The site file, or a directory holding site.ron [default: site.ron here or in the
    /// nearest parent directory].
    pub site: Option<PathBuf>,
    /// Also save the plan to FILE: `realise --plan FILE` builds it, and only it.
    #[arg(long = "out", value_name = "FILE")]
    pub save: Option<PathBuf>,
    #[command(flatten)]
    pub net: NetArgs,
}

#[derive(Args, Debug)]
pub struct OutdatedArgs {
    /// The site file, or a directory holding site.ron [default: site.ron here or in the
    /// nearest parent directory].
    pub site: Option<PathBuf>,
    #[command(flatten)]
    pub net: NetArgs,
}

#[derive(Args, Debug)]
pub struct UpdateArgs {
    /// [SITE] COMPONENT…: the site file (when the first argument ends in .ron or is a
    /// path; else it is found as every command finds it), then only these plugins
    /// [default: everything].
    #[arg(value_name = "COMPONENT", add = ArgValueCompleter::new(crate::complete::components))]
    pub args: Vec<String>,
    /// Moodle itself (with components: core and those).
    #[arg(long)]
    pub core: bool,
    /// Write the lock only; build and switch nothing.
    #[arg(long)]
    pub lock_only: bool,
    /// Update even when a version would go down against the last generation.
    #[arg(long)]
    pub allow_downgrade: bool,
    /// Where to put the `result` link (default: beside the site file).
    #[arg(long, value_name = "PATH")]
    pub out: Option<PathBuf>,
    #[command(flatten)]
    pub net: NetArgs,
}

#[derive(Args, Debug)]
pub struct ReconcileArgs {
    /// The site file, or a directory holding site.ron [default: site.ron here or in the
    /// nearest parent directory].
    pub site: Option<PathBuf>,
    /// Repeat every SECS seconds until SIGINT or SIGTERM; a failed round is retried with
    /// backoff.
    #[arg(long, value_name = "SECS")]
    pub watch: Option<u64>,
    /// Where to put the `result` link (default: beside the site file).
    #[arg(long, value_name = "PATH")]
    pub out: Option<PathBuf>,
    /// Test each new generation (`mcb test`) and switch `result` only when it passes.
    #[arg(long)]
    pub test: bool,
    /// Apply each generation that passed its test to the live site (`mcb apply`); implies
    /// --test.
    #[arg(long)]
    pub apply: bool,
    /// Let a plugin move to another source (git → directory, one plugin index → another);
    /// without it such a round stops (exit 2) and says what would move.
    #[arg(long)]
    pub allow_source_change: bool,
    /// After each round, publish what the site's generations use to the first binary cache
    /// (`mcb cache push`), signed with the key of MCB_SIGNING_KEY or the store's config.ron.
    #[arg(long)]
    pub push_cache: bool,
    #[command(flatten)]
    pub net: NetArgs,
}

#[derive(Args, Debug)]
pub struct HistoryArgs {
    /// A site file (or a directory holding site.ron), or a site's name in the store
    /// [default: site.ron here or in the nearest parent directory].
    #[arg(add = ArgValueCompleter::new(crate::complete::sites))]
    pub site: Option<String>,
    /// At most this many generations.
    #[arg(long, short = 'n', default_value_t = 20)]
    pub limit: usize,
}

#[derive(Args, Debug)]
pub struct RollbackArgs {
    /// A site file (or a directory holding site.ron), or a site's name in the store
    /// [default: site.ron here or in the nearest parent directory].
    #[arg(add = ArgValueCompleter::new(crate::complete::sites))]
    pub site: Option<String>,
    /// The generation: gen-N (as history shows it), SITE/gen-N, -N for N generations
    /// back, or a commit (or its first hex digits) [default: -1].
    #[arg(long, value_name = "GEN", allow_hyphen_values = true)]
    pub to: Option<String>,
    /// Roll back even though components go down (only for a database that never ran
    /// the newer code, or was restored from before it).
    #[arg(long)]
    pub allow_downgrade: bool,
    /// Also pin the restored versions in the site file (core's release, each plugin's
    /// version; comments kept), so the next realise or update keeps them.
    #[arg(long)]
    pub pin: bool,
    /// Where to put the `result` link (default: beside the site file).
    #[arg(long, value_name = "PATH")]
    pub out: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct SitesArgs {
    /// Generations per site counted as kept (as gc --keep).
    #[arg(long, default_value_t = 3)]
    pub keep: usize,
}

#[derive(Subcommand, Debug)]
pub enum CacheCommand {
    /// Upload what the newest generations of the store's sites use to a binary cache, each
    /// package with a record signed by this host's key: only what the cache lacks.
    Push(Box<CachePushArgs>),
    /// Make a signing key: the secret to FILE (its owner alone reads it), the public key on
    /// stdout, for the `trusted_keys` of the stores that read the cache.
    Key(CacheKeyArgs),
    /// Remove from a binary cache what no recent lock record names: records published
    /// within --keep-days, and each site's newest, keep their packages and files. Needs a
    /// cache that can list its keys (a directory, S3); the local store is not touched.
    Gc(Box<CacheGcArgs>),
}

#[derive(Args, Debug)]
pub struct CacheGcArgs {
    /// The cache [default: the first of --substituters, MCB_SUBSTITUTERS or the store's
    /// config.ron].
    #[arg(long, value_name = "URL")]
    pub to: Option<String>,
    /// Lock records published within this many days are kept, with what they name; a
    /// site's newest record is kept whatever its age.
    #[arg(long, value_name = "DAYS", default_value_t = 30)]
    pub keep_days: u64,
    /// Keys younger than this many seconds are spared whatever names them (a push in
    /// progress writes its records last).
    #[arg(long, value_name = "SECONDS", default_value_t = 3600)]
    pub grace: u64,
    /// Say what would go; delete nothing.
    #[arg(long)]
    pub dry_run: bool,
    #[command(flatten)]
    pub net: NetArgs,
}

#[derive(Args, Debug)]
pub struct CachePushArgs {
    /// Sites of the store by name [default: every site].
    #[arg(add = ArgValueCompleter::new(crate::complete::sites))]
    pub sites: Vec<String>,
    /// The cache [default: the first of --substituters, MCB_SUBSTITUTERS or the store's
    /// config.ron].
    #[arg(long, value_name = "URL")]
    pub to: Option<String>,
    /// The signing key file [default: the store's config.ron `signing_key`].
    #[arg(
        long,
        env = "MCB_SIGNING_KEY",
        hide_env_values = true,
        value_name = "FILE"
    )]
    pub key: Option<PathBuf>,
    /// Generations per site whose packages are pushed, newest first.
    #[arg(long, default_value_t = 3)]
    pub keep: usize,
    #[command(flatten)]
    pub net: NetArgs,
}

#[derive(Args, Debug)]
pub struct CacheKeyArgs {
    /// The key's name, as readers see it in trusted_keys (letters, digits, '-', '_', '.').
    pub name: String,
    /// Where the secret key goes; an existing file is never overwritten.
    #[arg(long, short = 'o', value_name = "FILE")]
    pub out: PathBuf,
}

#[derive(Args, Debug)]
pub struct ArchiveArgs {
    /// A site file (or a directory holding site.ron), or a site's name in the store
    /// [default: site.ron here or in the nearest parent directory].
    #[arg(add = ArgValueCompleter::new(crate::complete::sites))]
    pub site: Option<String>,
    /// Only generations made on or after this day.
    #[arg(long, value_name = "YYYY-MM-DD", value_parser = parse_day)]
    pub since: Option<String>,
    /// The tarball to write [default: SITE-sources-YYYY-MM-DD.tar.gz here].
    #[arg(long, short = 'o', value_name = "FILE")]
    pub out: Option<PathBuf>,
    #[command(flatten)]
    pub net: NetArgs,
}

/// A day, `YYYY-MM-DD`.
fn parse_day(s: &str) -> Result<String, String> {
    let b = s.as_bytes();
    let digits = |r: std::ops::Range<usize>| b[r].iter().all(u8::is_ascii_digit);
    let ok = b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && digits(0..4)
        && digits(5..7)
        && digits(8..10)
        && (1..=12).contains(&s[5..7].parse::<u32>().unwrap_or(0))
        && (1..=31).contains(&s[8..10].parse::<u32>().unwrap_or(0));
    if ok {
        Ok(s.to_string())
    } else {
        Err(format!("'{s}' is not a day written YYYY-MM-DD"))
    }
}

#[derive(Args, Debug)]
pub struct ForgetArgs {
    /// The site's name (or its site file).
    #[arg(add = ArgValueCompleter::new(crate::complete::sites))]
    pub site: String,
    /// Forget it even though a `result` link serves its current generation.
    #[arg(long)]
    pub force: bool,
}

#[derive(Args, Debug)]
pub struct InitArgs {
    /// The site file to write.
    #[arg(default_value = "site.ron")]
    pub site: PathBuf,
    /// The Moodle release, e.g. 4.5.
    #[arg(long, value_name = "X.Y", value_parser = parse_release, default_value = "4.5")]
    pub moodle: mcb_moodle::Release,
    /// The site's name [default: the directory's name].
    #[arg(long)]
    pub name: Option<String>,
    /// Also write a config.php template here (outside the codebase) and link it into the
    /// codebase; it names the codebase by its path, as a linked config.php must.
    #[arg(long, value_name = "FILE")]
    pub config_php: Option<PathBuf>,
    /// The codebase the web server serves, named in the config.php [default: the site's
    /// result link]; a deploy directory's `current` on web servers.
    #[arg(long, value_name = "DIR", requires = "config_php")]
    pub codebase: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct AddArgs {
    /// A component such as mod_attendance.
    pub component: String,
    /// The site file, or a directory holding site.ron [default: site.ron here or in the
    /// nearest parent directory].
    #[arg(long, value_name = "SITE.ron")]
    pub site: Option<PathBuf>,
    /// From a git repository.
    #[arg(long, value_name = "URL", conflicts_with_all = ["zip", "path"])]
    pub git: Option<String>,
    /// A tag, branch or commit of --git.
    #[arg(long = "ref", value_name = "REF", requires = "git")]
    pub reference: Option<String>,
    /// From a zip (URL or file).
    #[arg(long, value_name = "URL|FILE", conflicts_with = "path")]
    pub zip: Option<String>,
    /// From a local directory.
    #[arg(long, value_name = "DIR", conflicts_with = "composer")]
    pub path: Option<String>,
    /// From a Composer package (vendor/moodle-type_name) of the site's repositories.
    #[arg(long, value_name = "NAME", conflicts_with_all = ["git", "zip"])]
    pub composer: Option<String>,
    /// Pin a release (as administrators see it) or a build number; with --composer, a
    /// Composer constraint such as ^2.1.
    #[arg(long)]
    pub version: Option<String>,
    #[command(flatten)]
    pub net: NetArgs,
}

#[derive(Args, Debug)]
pub struct RemoveArgs {
    /// A component in the site file.
    #[arg(add = ArgValueCompleter::new(crate::complete::components))]
    pub component: String,
    /// The site file, or a directory holding site.ron [default: site.ron here or in the
    /// nearest parent directory].
    #[arg(long, value_name = "SITE.ron")]
    pub site: Option<PathBuf>,
    #[command(flatten)]
    pub net: NetArgs,
}

#[derive(Args, Debug)]
pub struct ImportArgs {
    /// The Moodle installation (its code: the directory holding version.php).
    pub dir: PathBuf,
    /// The site's name [default: the directory's name].
    #[arg(long)]
    pub name: Option<String>,
    /// Where to write site.ron and site.lock.
    #[arg(long, value_name = "DIR", default_value = ".")]
    pub out: PathBuf,
    #[command(flatten)]
    pub net: NetArgs,
}

#[derive(Args, Debug)]
pub struct RealiseArgs {
    /// The site file, or a directory holding site.ron [default: site.ron here or in the
    /// nearest parent directory].
    pub site: Option<PathBuf>,
    /// Where to put the `result` link (default: beside the site file).
    #[arg(long, value_name = "PATH")]
    pub out: Option<PathBuf>,
    /// How the codebase's files are laid out: hardlinks to the store (no extra space; an
    /// edit in place is detected and repaired), reflinks (copy-on-write, btrfs or XFS: an
    /// edit stays in its tree), clones (reflinks where the filesystem makes them, else
    /// copies) or plain copies.
    #[arg(long, value_name = "MODE", default_value = "hardlink", value_parser = link_modes(["hardlink", "reflink", "clone", "copy"]))]
    pub link: mcb_store::LinkMode,
    /// Take over the site's name when another site file owns it.
    #[arg(long)]
    pub force: bool,
    /// Realise even when core or a plugin would go to an older version than the site's
    /// last generation has (only for a database that never ran the newer code).
    #[arg(long)]
    pub allow_downgrade: bool,
    /// Fail (exit 2) when the lock would change: the lock in git is what CI builds.
    #[arg(long)]
    pub locked: bool,
    /// Make the generation, but leave the `result` link as it is (as nix-build
    /// --no-out-link); the site's branch keeps the generation from gc.
    #[arg(long, conflicts_with = "out")]
    pub no_link: bool,
    /// Build the plan `plan --out FILE` saved; refused (exit 2) when the site file, the
    /// lock, the site's generations or any upstream choice moved since.
    #[arg(long, value_name = "FILE")]
    pub plan: Option<PathBuf>,
    #[command(flatten)]
    pub net: NetArgs,
}

#[derive(Args, Debug)]
pub struct CheckArgs {
    /// The site file, or a directory holding site.ron [default: site.ron here or in the
    /// nearest parent directory].
    pub site: Option<PathBuf>,
    /// The Moodle release to check, e.g. 5.0.
    #[arg(long, value_name = "X.Y", value_parser = parse_release, required_unless_present = "all_branches")]
    pub moodle: Option<mcb_moodle::Release>,
    /// Where the target release's code is (a git upstream or a directory), when the site's
    /// own core source does not hold it.
    #[arg(long, value_name = "URL|PATH")]
    pub core_source: Option<String>,
    /// Every release from the site's own to the newest mcb knows: which plugin has a
    /// version for which (the readiness matrix).
    #[arg(long, conflicts_with = "moodle")]
    pub all_branches: bool,
    /// With --all-branches, also write the matrix as a self-contained HTML page.
    #[arg(long, value_name = "FILE", requires = "all_branches")]
    pub html: Option<PathBuf>,
    /// Judge the release's requirements against this PHP version instead of this
    /// machine's (e.g. 8.3).
    #[arg(long, value_name = "VERSION", conflicts_with = "all_branches")]
    pub php: Option<String>,
    /// Judge them against this database instead of this machine's: VENDOR:VERSION, e.g.
    /// postgres:16 or mariadb:10.11.
    #[arg(long, value_name = "VENDOR:VERSION", value_parser = parse_db_facts, conflicts_with = "all_branches")]
    pub db: Option<(String, String)>,
    #[command(flatten)]
    pub net: NetArgs,
}

#[derive(Args, Debug)]
pub struct GcArgs {
    /// Generations to keep per site.
    #[arg(long, default_value_t = 3)]
    pub keep: usize,
    /// List what would go, delete nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Spare anything younger than this many seconds.
    #[arg(long, default_value_t = 3600, value_name = "SECS")]
    pub grace: u64,
}

#[derive(Args, Debug)]
pub struct VerifyArgs {
    /// A tree to compare with the generation it was made as: a `result` link, a
    /// generation directory, a deployed release or any copy of one (the generation is
    /// found from its place, its name or its files, unless --site or --commit names it).
    #[arg(long, value_name = "DIR")]
    pub tree: Option<PathBuf>,
    /// With --tree: compare with this site's current generation (or, with --commit, one
    /// of its generations).
    #[arg(long, value_name = "SITE", requires = "tree")]
    pub site: Option<String>,
    /// With --tree: compare with this generation (a commit id, or gen-N with --site).
    #[arg(long, value_name = "COMMIT|gen-N", requires = "tree")]
    pub commit: Option<String>,
    /// Restore damaged or missing objects from git and rebuild changed generations.
    #[arg(long, conflicts_with = "tree")]
    pub repair: bool,
}

#[derive(Args, Debug)]
pub struct ReproduceArgs {
    /// A site.lock, or a commit id of a site branch in the store.
    pub target: String,
    /// Also name every source whose content differs from the lock.
    #[arg(long)]
    pub check: bool,
    #[command(flatten)]
    pub net: NetArgs,
}

#[derive(Args, Debug)]
pub struct InfoArgs {
    /// A component such as mod_attendance.
    pub component: String,
    /// Use this site file's `directory:` (default: site.ron here, if there is one).
    #[arg(long, value_name = "SITE.ron")]
    pub site: Option<PathBuf>,
    #[command(flatten)]
    pub net: NetArgs,
}

impl NetArgs {
    /// Run options from the global and network flags.
    pub fn options(&self, global: &GlobalArgs) -> mcb_realise::RunOptions {
        let mut o = mcb_realise::RunOptions::new(global.store());
        o.offline = self.offline;
        o.refresh = self.refresh;
        o.limits = self.limits.unwrap_or_default();
        o.directory = self.directory.clone().filter(|d| !d.is_empty());
        o.token = self.marketplace_token.clone().filter(|t| !t.is_empty());
        o.token_hosts = self
            .marketplace_hosts
            .clone()
            .map(|h| {
                h.into_iter()
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty())
                    .collect::<Vec<_>>()
            })
            .filter(|h| !h.is_empty());
        if let Some(g) = self.moodle_git.clone().filter(|g| !g.is_empty()) {
            o.moodle_git = g;
        }
        if let Some(api) = self.marketplace_api.clone().filter(|a| !a.is_empty()) {
            o.marketplace_api = api.trim_end_matches('/').to_string();
        }
        let list = |v: &Option<Vec<String>>| -> Vec<String> {
            v.iter()
                .flatten()
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect()
        };
        o.substituters = list(&self.substituters);
        o.trusted_keys = list(&self.trusted_keys);
        o
    }
}

/// Run options for commands that never reach upstreams.
pub fn local_options(global: &GlobalArgs) -> mcb_realise::RunOptions {
    mcb_realise::RunOptions::new(global.store())
}

#[cfg(test)]
mod wave_tests {
    use super::*;

    #[test]
    fn waves_split_a_fleet_into_a_canary_and_the_rest() {
        let w = parse_waves("1,25%,100%").unwrap();
        assert_eq!(w.split(4), vec![0..1, 1..2, 2..4]);
        assert_eq!(w.split(100), vec![0..1, 1..25, 25..100]);
        assert_eq!(w.split(1), vec![0..1]);
        assert_eq!(parse_waves("2").unwrap().split(5), vec![0..2, 2..5]);
        for bad in ["0", "0%", "101%", "x", "1,,2"] {
            assert!(parse_waves(bad).is_err(), "{bad}");
        }
    }
}
