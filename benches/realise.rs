//! The realise benchmark: a Moodle-scale fixture (a core git repository with two releases,
//! ≥ 30,000 files and ≥ 250 MB in about 3,000 directories, 30 plugin repositories and 5
//! plugin zips), then, side by side in one run, the median of several runs of:
//! cold realise, warm realise of a new site, no-op realise, realise after a point release,
//! realise after a release that changes only file modes, reproduce of a lock,
//! a cold realise from a binary cache (a directory) with every upstream out of reach and
//! the bytes a second site on the same core takes from it, `cp -a` (alone, and followed
//! by `sync`) and `cp -al` of the same tree (the floor), `git clone --bare` of the core (the fetch floor),
//! the naive script (clone + copy plugins + `git add -A` + `git commit`), mcb's peak memory,
//! and the store's size for 1 site and for 10 sites sharing two releases. Each measured
//! command starts after a `sync`.
//!
//!     cargo bench -p mcb-cli --bench realise
//!
//! `MCB_BENCH_RUNS` (default 3) sets the runs per measure, `MCB_BENCH_DIR` where the
//! fixture goes (default: `target/bench`), `MCB_BENCH_KEEP` keeps it afterwards, and
//! `MCB_BENCH_FIXTURE_ONLY` only builds it and prints a site file to profile by hand.

use mcb_fixtures::bench::*;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn core_files() -> usize {
    scaled(30_000, 300)
}
fn core_dirs() -> usize {
    scaled(3_000, 30)
}
fn target_bytes() -> u64 {
    scaled(270 * 1024 * 1024, 1024 * 1024) as u64
}
fn plugins() -> usize {
    scaled(30, 3)
}
fn zip_plugins() -> usize {
    scaled(5, 2)
}
fn changed_in_point_release() -> usize {
    scaled(600, 10)
}
/// Files whose mode alone changes in the next release (4.5.0 → 4.5.5 changed 27,889).
fn mode_only_changes() -> usize {
    scaled(20_000, 100)
}

/// A small deterministic generator (xorshift64*), so every machine builds the same fixture.
struct Fixture {
    root: PathBuf,
    core: PathBuf,
    plugins: Vec<PathBuf>,
    zips: Vec<PathBuf>,
    core_bytes: u64,
    changed_bytes: u64,
}

fn build_fixture(root: &Path) -> Fixture {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let core = root.join("upstream/moodle.git");
    std::fs::create_dir_all(&core).unwrap();
    let mut paths = Vec::with_capacity(core_files());
    for i in 0..core_files() {
        let d = i % core_dirs();
        paths.push(format!("c{:02}/d{:03}/f{i}.php", d % 60, d));
    }
    let mut sizes: Vec<usize> = (0..core_files()).map(|_| file_size(&mut rng)).collect();
    let total: u64 = sizes.iter().map(|s| *s as u64).sum();
    let scale = target_bytes() as f64 / total as f64;
    for s in sizes.iter_mut() {
        *s = ((*s as f64) * scale) as usize;
    }
    let mut first: Vec<(String, Vec<u8>, bool)> = paths
        .iter()
        .zip(&sizes)
        .enumerate()
        .map(|(i, (p, s))| (p.clone(), php_text(&mut rng, *s, i), false))
        .collect();
    let core_bytes = first.iter().map(|f| f.1.len() as u64).sum();
    first.extend(core_metadata(
        mcb_fixtures::core_version_php("2024100700.00", "4.5 (Build: 20241007)", "405")
            .into_bytes(),
    ));
    first.push((
        "admin/cli/upgrade.sh".into(),
        b"#!/bin/sh\nphp admin/cli/upgrade.php\n".to_vec(),
        true,
    ));
    // The point release changes a few hundred files, as real ones do.
    let mut second = vec![(
        "version.php".to_string(),
        mcb_fixtures::core_version_php("2024100701.00", "4.5.1 (Build: 20241209)", "405")
            .into_bytes(),
        false,
    )];
    let mut changed_bytes = 0;
    for k in 0..changed_in_point_release() {
        let i = (k * 47) % core_files();
        let content = php_text(&mut rng, sizes[i], i + 1_000_000);
        changed_bytes += content.len() as u64;
        second.push((paths[i].clone(), content, false));
    }
    // Then a release that changes only modes: the same content, now executable.
    let changed: std::collections::HashSet<usize> = (0..changed_in_point_release())
        .map(|k| (k * 47) % core_files())
        .collect();
    let mut third = vec![(
        "version.php".to_string(),
        mcb_fixtures::core_version_php("2024100702.00", "4.5.2 (Build: 20241216)", "405")
            .into_bytes(),
        false,
    )];
    third.extend(
        first
            .iter()
            .take(core_files())
            .enumerate()
            .filter(|(i, _)| !changed.contains(i))
            .take(mode_only_changes())
            .map(|(_, (path, content, _))| (path.clone(), content.clone(), true)),
    );
    fast_import(
        &core,
        vec![
            ("v4.5.0".into(), first),
            ("v4.5.1".into(), second),
            ("v4.5.2".into(), third),
        ],
    );

    let plugins = (0..plugins())
        .map(|p| {
            let component = format!("local_bp{p}");
            let repo = root.join(format!("upstream/{component}.git"));
            plugin_repo(
                &repo,
                40,
                8_000,
                p * 100,
                &|v| {
                    mcb_fixtures::plugin_php(
                        &component,
                        v,
                        "2024100700",
                        "$plugin->supported = [405, 405];",
                    )
                    .into_bytes()
                },
                &mut rng,
            );
            repo
        })
        .collect();

    let mut zips = Vec::new();
    for z in 0..zip_plugins() {
        let component = format!("block_bz{z}");
        let dir = root.join(format!("zipsrc/{component}"));
        std::fs::create_dir_all(dir.join("classes")).unwrap();
        std::fs::write(
            dir.join("version.php"),
            mcb_fixtures::plugin_php(
                &component,
                2024100500,
                "2024100700",
                "$plugin->supported = [405, 405];",
            ),
        )
        .unwrap();
        for f in 0..30 {
            let size = 500 + rng.below(6_000) as usize;
            std::fs::write(
                dir.join(format!("classes/c{f}.php")),
                php_text(&mut rng, size, z * 100 + f),
            )
            .unwrap();
        }
        let zip = root.join(format!("upstream/{component}.zip"));
        run(Command::new("python3")
            .current_dir(root.join("zipsrc"))
            .args([
                "-c",
                "import shutil,sys; shutil.make_archive(sys.argv[1], 'zip', '.', sys.argv[2])",
            ])
            .arg(zip.with_extension(""))
            .arg(&component));
        zips.push(zip);
    }
    Fixture {
        root: root.to_path_buf(),
        core,
        plugins,
        zips,
        core_bytes,
        changed_bytes,
    }
}

impl Fixture {
    /// A site file with core `spec` and the plugins `keep` selects.
    fn site(&self, dir: &Path, name: &str, spec: &str, keep: impl Fn(usize) -> bool) -> PathBuf {
        std::fs::create_dir_all(dir).unwrap();
        let mut plugins = String::new();
        for (i, p) in self.plugins.iter().enumerate() {
            if keep(i) {
                plugins.push_str(&format!(
                    "    \"local_bp{i}\": (git: \"file://{}\"),\n",
                    p.display()
                ));
            }
        }
        for (z, zip) in self.zips.iter().enumerate() {
            if keep(z) {
                plugins.push_str(&format!(
                    "    \"block_bz{z}\": (zip: \"{}\"),\n",
                    zip.display()
                ));
            }
        }
        let body = format!(
            "Site(\n  name: \"{name}\",\n  moodle: (version: \"{spec}\", git: \"file://{}\"),\n  plugins: {{\n{plugins}  }},\n)\n",
            self.core.display()
        );
        let path = dir.join("site.ron");
        std::fs::write(&path, body).unwrap();
        path
    }
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let mcb = PathBuf::from(env!("CARGO_BIN_EXE_mcb"));
    let runs: usize = std::env::var("MCB_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(scaled(3, 1));
    let base = match std::env::var_os("MCB_BENCH_DIR") {
        Some(d) => PathBuf::from(d),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/bench"),
    };
    let fixture_only = std::env::var_os("MCB_BENCH_FIXTURE_ONLY").is_some();
    let building = std::env::var_os("MCB_BENCH_BUILDING").is_some();
    if fixture_only || building {
        remove(&base);
        std::fs::create_dir_all(&base).unwrap();
        let base = base.canonicalize().unwrap();
        eprintln!("building the fixture in {} …", base.display());
        let t = Instant::now();
        let fx = build_fixture(&base);
        eprintln!(
            "fixture built in {} ({} core files, {:.0} MB)",
            secs(t.elapsed()),
            core_files(),
            fx.core_bytes as f64 / 1e6
        );
        if building {
            println!("{} {}", fx.core_bytes, fx.changed_bytes);
        } else {
            // For profiling by hand: the fixture and a site file, nothing measured.
            let site = fx.site(&fx.root.join("sites/profile"), "profile", "4.5.0", |_| true);
            println!("{}", site.display());
        }
        return;
    }
    // The fixture is built by a child process: peak memory (ru_maxrss) survives exec, so
    // every command this process starts would otherwise inherit the generator's footprint.
    let out = Command::new(std::env::current_exe().unwrap())
        .env("MCB_BENCH_BUILDING", "1")
        .env("MCB_BENCH_DIR", &base)
        .stderr(Stdio::inherit())
        .output()
        .unwrap();
    assert!(out.status.success(), "building the fixture failed");
    let sizes = String::from_utf8_lossy(&out.stdout);
    let mut sizes = sizes.split_whitespace().map(|n| n.parse::<u64>().unwrap());
    let base = base.canonicalize().unwrap();
    let fx = Fixture {
        core: base.join("upstream/moodle.git"),
        plugins: (0..plugins())
            .map(|p| base.join(format!("upstream/local_bp{p}.git")))
            .collect(),
        zips: (0..zip_plugins())
            .map(|z| base.join(format!("upstream/block_bz{z}.zip")))
            .collect(),
        root: base.clone(),
        core_bytes: sizes.next().unwrap(),
        changed_bytes: sizes.next().unwrap(),
    };
    let mcb_cmd = |store: &Path| {
        let mut c = Command::new(&mcb);
        c.arg("--store").arg(store).arg("-q");
        c
    };

    let mut cold = Vec::new();
    let mut warm = Vec::new();
    let mut noop = Vec::new();
    let mut point = Vec::new();
    let mut modes = Vec::new();
    let mut reproduce = Vec::new();
    let mut cp = Vec::new();
    let mut clone = Vec::new();
    let mut clone_checkout = Vec::new();
    let mut identical = Vec::new();
    let mut naive = Vec::new();
    let mut from_cache = Vec::new();
    let mut cp_a = Vec::new();
    let mut cp_a_sync = Vec::new();
    // Nothing a run makes is removed before the benchmark ends (each has a name of its
    // run): ext4 scans past recently freed inodes when it makes new ones, so a removal
    // would slow whichever measure came next.
    let mut second_site = (0u64, 0u64);
    // A signing key for the binary cache rows.
    let key = fx.root.join("cache.key");
    let _ = std::fs::remove_file(&key);
    let out = Command::new(&mcb)
        .args(["cache", "key", "bench", "-o"])
        .arg(&key)
        .output()
        .unwrap();
    assert!(out.status.success(), "mcb cache key failed");
    let public = String::from_utf8(out.stdout).unwrap().trim().to_string();
    let mut peak = 0i64;
    let mut store1 = 0u64;
    for r in 0..runs {
        eprintln!("run {}/{runs}", r + 1);
        let store = fx.root.join(format!("store-{r}"));
        let site_a = fx.site(
            &fx.root.join(format!("sites/a{r}")),
            "alpha",
            "4.5.0",
            |_| true,
        );
        let s = measure(mcb_cmd(&store).arg("realise").arg(&site_a));
        peak = peak.max(s.max_rss_kb);
        cold.push(s.wall);
        if r == 0 {
            store1 = disk_usage(&store);
        }

        // Another site, one plugin fewer: a new tree to lay out.
        let site_b = fx.site(&fx.root.join(format!("sites/b{r}")), "beta", "4.5.0", |i| {
            i != 0
        });
        let s = measure(mcb_cmd(&store).arg("realise").arg(&site_b));
        peak = peak.max(s.max_rss_kb);
        warm.push(s.wall);

        let s = measure(mcb_cmd(&store).arg("realise").arg(&site_b));
        noop.push(s.wall);

        // The copy a cold realise from a cache is held to, measured beside it: the same
        // tree, copied, then copied and made durable, as a realise makes what it stores.
        let tree = std::fs::read_link(fx.root.join(format!("sites/b{r}/result"))).unwrap();
        let copy = fx.root.join(format!("cp-a-{r}"));
        cp_a.push(measure(Command::new("cp").arg("-a").arg(&tree).arg(&copy)).wall);
        let copy_synced = fx.root.join(format!("cp-a-sync-{r}"));
        cp_a_sync.push(
            measure(
                Command::new("sh")
                    .arg("-c")
                    .arg(r#"cp -a "$1" "$2" && sync"#)
                    .arg("sh")
                    .arg(&tree)
                    .arg(&copy_synced),
            )
            .wall,
        );

        // A binary cache in a directory: beta pushed, then realised by an empty store with
        // every upstream out of reach; then alpha (two plugins more) in that store.
        let cache = format!("file://{}", fx.root.join(format!("cache-{r}")).display());
        measure(
            mcb_cmd(&store)
                .args(["cache", "push", "--to", &cache, "--key"])
                .arg(&key),
        );
        let upstream = fx.root.join("upstream");
        let away = fx.root.join("upstream-away");
        std::fs::rename(&upstream, &away).unwrap();
        let cached_store = fx.root.join(format!("store-cached-{r}"));
        let from = |site: &Path, out: &str| {
            let mut c = mcb_cmd(&cached_store);
            c.env("MCB_SUBSTITUTERS", &cache)
                .env("MCB_TRUSTED_KEYS", &public)
                .args(["realise", "--locked", "--out"])
                .arg(fx.root.join(out))
                .arg(site);
            measure(&mut c)
        };
        from_cache.push(from(&site_b, &format!("cached-b{r}")).wall);
        let before = apparent_size(&cached_store.join("objects"));
        from(&site_a, &format!("cached-a{r}"));
        std::fs::rename(&away, &upstream).unwrap();
        if r == 0 {
            // Beta lacks plugin 0 of each kind: a git plugin and a zip.
            let alpha = fx.root.join(format!("cached-a{r}"));
            let differs =
                apparent_size(&alpha.join("local/bp0")) + apparent_size(&alpha.join("blocks/bz0"));
            second_site = (
                apparent_size(&cached_store.join("objects")) - before,
                differs,
            );
        }
        // Another name, the same plugins as beta: its codebase exists already.
        let site_c = fx.site(
            &fx.root.join(format!("sites/c{r}")),
            "gamma",
            "4.5.0",
            |i| i != 0,
        );
        identical.push(measure(mcb_cmd(&store).arg("realise").arg(&site_c)).wall);

        let site_a1 = fx.site(
            &fx.root.join(format!("sites/a{r}")),
            "alpha",
            "4.5.1",
            |_| true,
        );
        let s = measure(mcb_cmd(&store).arg("realise").arg(&site_a1));
        peak = peak.max(s.max_rss_kb);
        point.push(s.wall);

        let site_a2 = fx.site(
            &fx.root.join(format!("sites/a{r}")),
            "alpha",
            "4.5.2",
            |_| true,
        );
        let s = measure(mcb_cmd(&store).arg("realise").arg(&site_a2));
        peak = peak.max(s.max_rss_kb);
        modes.push(s.wall);

        // Rebuilding the 4.5.0 site's lock from its origins: about one cold realise.
        let lock = fx.root.join(format!("sites/b{r}/site.lock"));
        // A reproduction that differs exits non-zero, and `measure` stops the bench.
        reproduce.push(measure(mcb_cmd(&store).arg("reproduce").arg(&lock)).wall);

        let tree = std::fs::read_link(fx.root.join(format!("sites/b{r}/result"))).unwrap();
        let copy = fx.root.join(format!("cp-{r}"));
        cp.push(measure(Command::new("cp").arg("-al").arg(&tree).arg(&copy)).wall);

        let bare = fx.root.join(format!("clone-{r}.git"));
        clone.push(
            measure(
                Command::new("git")
                    // --no-local: a real transfer, not git's hardlinking shortcut.
                    .args(["clone", "-q", "--bare", "--no-local"])
                    .arg(&fx.core)
                    .arg(&bare),
            )
            .wall,
        );
        // The floor a cold realise is held to: a full clone of the release, checked out.
        let work = fx.root.join(format!("clone-{r}"));
        clone_checkout.push(
            measure(
                Command::new("git")
                    .args(["clone", "-q", "--no-local", "--branch", "v4.5.0"])
                    .arg(&fx.core)
                    .arg(&work),
            )
            .wall,
        );

        // The naive script: clone, copy each plugin in, add everything, commit.
        let work = fx.root.join(format!("naive-{r}"));
        let mut script = format!(
            "set -e\ngit clone -q --branch v4.5.0 file://{core} {work}\n",
            core = fx.core.display(),
            work = work.display()
        );
        for (i, p) in fx.plugins.iter().enumerate() {
            script.push_str(&format!(
                "git clone -q --depth 1 --branch v1.1 file://{} {}/local/bp{i} && rm -rf {}/local/bp{i}/.git\n",
                p.display(),
                work.display(),
                work.display()
            ));
        }
        for (z, zip) in fx.zips.iter().enumerate() {
            script.push_str(&format!(
                "mkdir -p {w}/blocks && cd {w}/blocks && python3 -m zipfile -e {zip} . && mv block_bz{z} bz{z} && cd - >/dev/null\n",
                w = work.display(),
                zip = zip.display()
            ));
        }
        script.push_str(&format!(
            "cd {}\ngit add -A\ngit -c user.name=bench -c user.email=bench@localhost commit -qm site\n",
            work.display()
        ));
        naive.push(measure(Command::new("bash").arg("-c").arg(&script)).wall);
    }

    // Ten sites sharing two Moodle releases, each with its own plugin selection.
    let store10 = fx.root.join("store-10");
    for s in 0..10 {
        let spec = if s < 5 { "4.5.0" } else { "4.5.1" };
        let site = fx.site(
            &fx.root.join(format!("sites/ten{s}")),
            &format!("site{s}"),
            spec,
            |i| (i + s) % 3 != 0,
        );
        measure(mcb_cmd(&store10).arg("realise").arg(&site));
    }
    let store10_size = disk_usage(&store10);

    let (cold, warm, noop, point) = (median(cold), median(warm), median(noop), median(point));
    let (modes, reproduce) = (median(modes), median(reproduce));
    let (cp, clone, naive) = (median(cp), median(clone), median(naive));
    let (clone_checkout, identical) = (median(clone_checkout), median(identical));
    let (from_cache, cp_a, cp_a_sync) = (median(from_cache), median(cp_a), median(cp_a_sync));
    let ratio = |a: Duration, b: Duration| a.as_secs_f64() / b.as_secs_f64();
    let mb = |b: u64| format!("{:.1} MB", b as f64 / 1e6);
    let budget10 = 1.15 * (store1 + fx.changed_bytes) as f64;
    let machine = format!(
        "{} cores, the stores on {}, {}",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0),
        filesystem(&fx.root),
        std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(
                |c| c.lines().find(|l| l.starts_with("model name")).map(|l| l
                    .split(':')
                    .nth(1)
                    .unwrap_or("")
                    .trim()
                    .to_string())
            )
            .unwrap_or_default()
    );
    let mut table = String::new();
    table.push_str(&format!(
        "Machine: {machine}. Fixture: {} core files in {} directories, {} of content, {} git plugins, {} zip plugins. Median of {runs} runs.\n\n",
        core_files(),
        core_dirs(),
        mb(fx.core_bytes),
        plugins(),
        zip_plugins()
    ));
    table.push_str("| measure | median | target | holds |\n|---|---|---|---|\n");
    let mut row = |name: &str, value: String, target: String, holds: bool| {
        table.push_str(&format!(
            "| {name} | {value} | {target} | {} |\n",
            if holds { "yes" } else { "**no**" }
        ));
    };
    row(
        "cold realise (empty store)",
        secs(cold),
        format!(
            "< `git clone -b v4.5.0` = {} ({:.2}×)",
            secs(clone_checkout),
            ratio(cold, clone_checkout)
        ),
        cold < clone_checkout,
    );
    row(
        "warm realise, new site (a new combination: one plugin left out)",
        secs(warm),
        format!(
            "≤ 1.25 × cp -al = {} ({:.2}×); ≥ 10 × faster than naive ({:.1}×)",
            secs(cp.mul_f64(1.25)),
            ratio(warm, cp),
            ratio(naive, warm)
        ),
        warm <= cp.mul_f64(1.25) && ratio(naive, warm) >= 10.0,
    );
    row(
        "new site whose codebase exists (another name, same plugins)",
        secs(identical),
        "≤ 0.1 s".into(),
        identical <= Duration::from_millis(100),
    );
    row(
        "no-op realise",
        secs(noop),
        "≤ 0.2 s".into(),
        noop <= Duration::from_millis(200),
    );
    row(
        "realise after a point release",
        secs(point),
        "—".into(),
        true,
    );
    row(
        &format!(
            "realise after a release changing only the modes of {} files",
            mode_only_changes()
        ),
        secs(modes),
        format!("≤ 2 × the point release = {}", secs(point * 2)),
        modes <= point * 2,
    );
    row(
        "reproduce the lock of the 4.5.0 site",
        secs(reproduce),
        format!("≤ 1.5 × cold realise = {}", secs(cold.mul_f64(1.5))),
        reproduce.as_secs_f64() <= 1.5 * cold.as_secs_f64(),
    );
    row(
        "cold realise from a binary cache (a directory), upstreams out of reach",
        secs(from_cache),
        format!(
            "≤ 1.2 × `cp -a` = {} ({:.2}×; {:.2}× `cp -a` then `sync`)",
            secs(cp_a.mul_f64(1.2)),
            ratio(from_cache, cp_a),
            ratio(from_cache, cp_a_sync)
        ),
        from_cache <= cp_a.mul_f64(1.2),
    );
    row(
        "the same, against a cold realise from upstream",
        secs(from_cache),
        format!(
            "≤ 0.5 × cold realise = {} ({:.3}×)",
            secs(cold.mul_f64(0.5)),
            ratio(from_cache, cold)
        ),
        ratio(from_cache, cold) <= 0.5,
    );
    row(
        "bytes taken from the cache for a second site on the same core",
        mb(second_site.0),
        format!("≤ what differs (two plugins) = {}", mb(second_site.1)),
        second_site.0 <= second_site.1,
    );
    row("`cp -a` of the tree", secs(cp_a), "—".into(), true);
    row(
        "`cp -a` of the tree, then `sync`",
        secs(cp_a_sync),
        "—".into(),
        true,
    );
    row("`cp -al` of the tree (floor)", secs(cp), "—".into(), true);
    row(
        "`git clone -b v4.5.0` of core, checked out (floor)",
        secs(clone_checkout),
        "—".into(),
        true,
    );
    row(
        "`git clone --bare` of core (fetch floor)",
        secs(clone),
        "—".into(),
        true,
    );
    row("naive script", secs(naive), "—".into(), true);
    row(
        "mcb peak memory",
        format!("{:.0} MB", peak as f64 / 1024.0),
        "≤ 300 MB".into(),
        peak <= 300 * 1024,
    );
    row("store, 1 site", mb(store1), "—".into(), true);
    row(
        "store, 10 sites on 2 releases",
        mb(store10_size),
        format!(
            "≤ 1.15 × (1 site + {} changed) = {}",
            mb(fx.changed_bytes),
            mb(budget10 as u64)
        ),
        (store10_size as f64) <= budget10,
    );
    println!("{table}");
    let out = if smoke() {
        base.join("bench-results.md")
    } else {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/bench-results.md")
    };
    std::fs::write(&out, &table).unwrap();
    eprintln!("written to {}", out.display());
    if std::env::var_os("MCB_BENCH_KEEP").is_none() {
        remove(&base);
    }
}
