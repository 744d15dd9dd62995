//! `mcb verify`.

use serde::Serialize;

use crate::cli::{GlobalArgs, VerifyArgs, local_options};
use crate::error::{CliError, Exit};
use crate::progress::Progress;
use crate::term::{out_json, say};

#[derive(Serialize)]
struct Place<'a> {
    generation: &'a mcb_store::GitOid,
    path: &'a str,
    sites: Vec<String>,
}

#[derive(Serialize)]
struct Corrupt<'a> {
    object: &'a mcb_store::ObjectHash,
    paths: Vec<Place<'a>>,
}

#[derive(Serialize)]
struct Changed<'a> {
    generation: &'a mcb_store::GitOid,
    paths: &'a [String],
    sites: Vec<String>,
}

#[derive(Serialize)]
struct Missing<'a> {
    manifest: &'a mcb_store::ManifestHash,
    object: &'a mcb_store::ObjectHash,
}

#[derive(Serialize)]
struct BadManifest<'a> {
    manifest: &'a mcb_store::ManifestHash,
    error: &'a str,
}

/// `verify --json`.
#[derive(Serialize)]
struct Output<'a> {
    objects: usize,
    manifests: usize,
    corrupt: Vec<Corrupt<'a>>,
    changed_generations: Vec<Changed<'a>>,
    missing: Vec<Missing<'a>>,
    bad_manifests: Vec<BadManifest<'a>>,
    repaired_objects: usize,
    rebuilt_generations: &'a [mcb_store::GitOid],
    unrepaired: &'a [String],
    clean: bool,
}

pub fn run(g: &GlobalArgs, a: &VerifyArgs) -> Result<Exit, CliError> {
    let opts = local_options(g);
    let repair = a.repair;
    if let Some(dir) = &a.tree {
        let d = mcb_realise::verify_tree(&opts, dir)?;
        let code = if d.is_clean() {
            Exit::Success
        } else {
            Exit::Integrity
        };
        if g.json {
            out_json(&d);
            return Ok(code);
        }
        if g.quiet {
            return Ok(code);
        }
        for p in &d.modified {
            say!("modified {p}");
        }
        for p in &d.added {
            say!("added    {p}");
        }
        for p in &d.removed {
            say!("removed  {p}");
        }
        if d.is_clean() {
            say!("{} matches generation {}", dir.display(), d.generation);
        } else {
            say!(
                "{} has drifted from generation {}: {} modified, {} added, {} removed",
                dir.display(),
                d.generation,
                d.modified.len(),
                d.added.len(),
                d.removed.len()
            );
        }
        return Ok(code);
    }
    let progress = Progress::new(g);
    let result = mcb_realise::verify(&opts, repair);
    progress.finish();
    let v = result?;
    let rep = &v.report;
    let code = if v.is_clean() {
        Exit::Success
    } else {
        Exit::Integrity
    };
    let sites = |key: &mcb_store::GitOid| {
        let s = v.sites_of(key);
        if s.is_empty() {
            "no site".to_string()
        } else {
            s.join(", ")
        }
    };
    if g.json {
        out_json(&Output {
            objects: rep.objects,
            manifests: rep.manifests,
            corrupt: v
                .object_paths
                .iter()
                .map(|(o, paths)| Corrupt {
                    object: o,
                    paths: paths
                        .iter()
                        .map(|p| Place {
                            generation: &p.generation,
                            path: &p.path,
                            sites: v.sites_of(&p.generation),
                        })
                        .collect(),
                })
                .collect(),
            changed_generations: v
                .generations
                .iter()
                .map(|(k, paths)| Changed {
                    generation: k,
                    paths,
                    sites: v.sites_of(k),
                })
                .collect(),
            missing: rep
                .missing
                .iter()
                .map(|(m, o)| Missing {
                    manifest: m,
                    object: o,
                })
                .collect(),
            bad_manifests: rep
                .bad_manifests
                .iter()
                .map(|(m, e)| BadManifest {
                    manifest: m,
                    error: e,
                })
                .collect(),
            repaired_objects: v.repaired_objects,
            rebuilt_generations: &v.rebuilt_generations,
            unrepaired: &v.unrepaired,
            clean: v.is_clean(),
        });
        return Ok(code);
    }
    if g.quiet {
        return Ok(code);
    }
    if repair {
        say!(
            "repaired: {} object{} restored from git, {} generation{} rebuilt",
            v.repaired_objects,
            if v.repaired_objects == 1 { "" } else { "s" },
            v.rebuilt_generations.len(),
            if v.rebuilt_generations.len() == 1 {
                ""
            } else {
                "s"
            }
        );
        for u in &v.unrepaired {
            say!("not repaired: {u}");
        }
    }
    for (object, paths) in &v.object_paths {
        say!("corrupt object {object}");
        for p in paths {
            say!(
                "  in {} {} ({})",
                p.generation,
                p.path,
                sites(&p.generation)
            );
        }
    }
    for (key, paths) in &v.generations {
        say!("generation {key} was changed in place ({}):", sites(key));
        for p in paths.iter().take(20) {
            say!("  {p}");
        }
        if paths.len() > 20 {
            say!("  … and {} more", paths.len() - 20);
        }
    }
    for (m, o) in &rep.missing {
        say!("manifest {m} names missing object {o}");
    }
    for (m, e) in &rep.bad_manifests {
        say!("manifest {m} is damaged: {e}");
    }
    if v.is_clean() {
        say!(
            "store is sound: {} objects, {} manifests",
            rep.objects,
            rep.manifests
        );
    } else {
        say!(
            "store is damaged: {} corrupt object{}, {} missing, {} damaged manifest{}, {} changed generation{}",
            rep.corrupt.len(),
            if rep.corrupt.len() == 1 { "" } else { "s" },
            rep.missing.len(),
            rep.bad_manifests.len(),
            if rep.bad_manifests.len() == 1 {
                ""
            } else {
                "s"
            },
            v.generations.len(),
            if v.generations.len() == 1 { "" } else { "s" }
        );
        say!(
            "hint: `mcb verify --repair` restores every object from git (which holds each file) and rebuilds changed generations"
        );
    }
    Ok(code)
}
