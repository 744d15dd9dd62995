//! `mcb cache push`, `mcb cache gc` and `mcb cache key`.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;

use crate::cli::{CacheCommand, CacheGcArgs, CacheKeyArgs, CachePushArgs, GlobalArgs};
use crate::cmd::plural;
use crate::error::{CliError, Exit};
use crate::progress::Progress;
use crate::term::{out_json, say};

use super::sites::size;

/// A key file is a line of text; anything larger is not one.
const MAX_KEY_FILE_BYTES: u64 = 4096;

pub fn run(g: &GlobalArgs, c: &CacheCommand) -> Result<Exit, CliError> {
    match c {
        CacheCommand::Push(a) => push(g, a),
        CacheCommand::Key(a) => key(g, a),
        CacheCommand::Gc(a) => gc(g, a),
    }
}

fn gc(g: &GlobalArgs, a: &CacheGcArgs) -> Result<Exit, CliError> {
    let opts = a.net.options(g);
    let progress = Progress::new(g);
    let result = mcb_realise::cache_gc(
        &opts,
        a.to.as_deref(),
        std::time::Duration::from_secs(a.keep_days * 86_400),
        std::time::Duration::from_secs(a.grace),
        a.dry_run,
    );
    progress.finish();
    let r = result?;
    if g.json {
        out_json(&crate::json::cache_gc(&r));
        return Ok(Exit::Success);
    }
    if !g.quiet {
        say!(
            "{} from {}: {}, {}, {}: {}; kept what {} name{}{}",
            if r.dry_run { "would delete" } else { "deleted" },
            r.cache,
            plural(r.records, "record"),
            plural(r.manifests, "manifest"),
            plural(r.objects, "file"),
            size(r.bytes),
            plural(r.kept_records, "lock record"),
            if r.kept_records == 1 { "s" } else { "" },
            if r.spared > 0 {
                format!(
                    " ({} younger than the grace period spared)",
                    plural(r.spared, "key")
                )
            } else {
                String::new()
            }
        );
    }
    Ok(Exit::Success)
}

fn push(g: &GlobalArgs, a: &CachePushArgs) -> Result<Exit, CliError> {
    let opts = a.net.options(g);
    let key = signing_key(g, a.key.as_deref())?;
    let progress = Progress::new(g);
    let result = mcb_realise::cache_push(&opts, &a.sites, a.keep, a.to.as_deref(), &key);
    progress.finish();
    let r = result?;
    if g.json {
        out_json(&crate::json::cache_push(&r));
        return Ok(Exit::Success);
    }
    if !g.quiet {
        say!("{}", pushed_line(&r));
    }
    Ok(Exit::Success)
}

/// What a push did, in a line.
pub(crate) fn pushed_line(r: &mcb_realise::CachePushed) -> String {
    let p = &r.pushed;
    format!(
        "pushed {} and {} of {} to {}: {}, {} uploaded; {} there already (signed by {})",
        plural(p.packages - p.present, "package"),
        plural(p.locks, "generation record"),
        plural(r.sites.len(), "site"),
        r.cache,
        plural(p.objects, "file"),
        size(p.bytes),
        plural(p.present, "package"),
        r.key
    )
}

/// The key pushes are signed with: `file`, else MCB_SIGNING_KEY, else the store's
/// config.ron `signing_key`.
pub(crate) fn signing_key(
    g: &GlobalArgs,
    file: Option<&std::path::Path>,
) -> Result<mcb_substitute::SigningKey, CliError> {
    let from_env = std::env::var_os("MCB_SIGNING_KEY")
        .filter(|v| !v.is_empty())
        .map(std::path::PathBuf::from);
    let key_file = match file.map(std::path::Path::to_path_buf).or(from_env) {
        Some(k) => k,
        None => mcb_config::StoreConfig::load(&g.store())
            .map_err(mcb_realise::RealiseError::from)?
            .signing_key
            .ok_or_else(|| {
                CliError::usage_text(
                    "no signing key: give --key FILE (or MCB_SIGNING_KEY), or signing_key in the store's config.ron".into(),
                )
            })?,
    };
    let text = std::fs::metadata(&key_file)
        .and_then(|m| {
            if m.len() > MAX_KEY_FILE_BYTES {
                Err(std::io::Error::other("it is not a key file"))
            } else {
                std::fs::read_to_string(&key_file)
            }
        })
        .map_err(|e| {
            CliError::failure(
                format!("cannot read the signing key {}", key_file.display()),
                e,
            )
        })?;
    Ok(mcb_substitute::SigningKey::from_file_text(&text)
        .map_err(mcb_realise::RealiseError::from)?)
}

fn key(g: &GlobalArgs, a: &CacheKeyArgs) -> Result<Exit, CliError> {
    let key =
        mcb_substitute::SigningKey::generate(&a.name).map_err(mcb_realise::RealiseError::from)?;
    // Never over an existing file; readable by its owner only from its first byte.
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&a.out)
        .map_err(|e| CliError::failure(format!("cannot write {}", a.out.display()), e))?;
    f.write_all(key.to_file_text().as_bytes())
        .and_then(|()| f.sync_all())
        .map_err(|e| CliError::failure(format!("cannot write {}", a.out.display()), e))?;
    let public = key.public().to_string();
    if g.json {
        out_json(&serde_json::json!({"name": a.name, "public_key": public, "file": a.out}));
    } else {
        println!("{public}");
    }
    Ok(Exit::Success)
}
