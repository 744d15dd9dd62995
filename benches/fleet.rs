//! The fleet benchmark: many sites on one store, as a hosting team runs them.
//!
//! A pool of 150 git plugins (each site takes a common set of 20 and 20 of its own, drawn
//! from the other 130), a core repository with three 4.5 releases and a 5.0 release, and
//! a plugins directory of the real size (2,000 plugins, 30,000 versions, one of which
//! every site takes) served on 127.0.0.1. For 10, 30 and 100 sites, each on one of the
//! three releases, in a fresh store: realise every site (cold store), realise them again
//! (warm: nothing changed), a new site whose codebase already exists, two more generations
//! per site (each moves one plugin), rollback (the median of three sites) to the generation
//! before and to the first, then the store's size against its unique content, `gc`
//! (3 generations kept per site), `verify`, `plan` and `check --moodle 5.0` for every
//! site; and the directory list: its first parse, `info` and a warm realise that consults
//! it, with their peak memory.
//!
//!     cargo bench -p mcb-cli --bench fleet
//!
//! Writes `benches/fleet.md` (the table) and `benches/fleet.svg` (how each path grows with
//! the number of sites). `MCB_FLEET_SITES` (default `10,30,100`) sets the fleet sizes,
//! `MCB_FLEET_CORE_FILES` (default 8,000) the core's size, `MCB_BENCH_DIR` where the
//! fixture goes (default `target/bench-fleet`), `MCB_BENCH_KEEP` keeps it afterwards.

use mcb_fixtures::bench::*;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn pool() -> usize {
    scaled(150, 12)
}
fn common() -> usize {
    scaled(20, 3)
}
fn own_plugins() -> usize {
    scaled(20, 3)
}
fn directory_plugins() -> usize {
    scaled(2_000, 20)
}
/// At any scale: the newest versions are the ones that support 4.5 and 5.0.
fn versions_per_plugin() -> usize {
    15
}
const RELEASES: [&str; 3] = ["4.5.0", "4.5.1", "4.5.2"];
/// The directory plugin every site takes.
const FLEET_DIR_PLUGIN: &str = "block_fleetdir";

struct Fixture {
    core: PathBuf,
    plugins: Vec<PathBuf>,
    directory_url: String,
    core_files: usize,
}

fn build_core(root: &Path, files: usize, rng: &mut Rng) -> PathBuf {
    let core = root.join("upstream/moodle.git");
    std::fs::create_dir_all(&core).unwrap();
    let dirs = (files / 10).max(1);
    let paths: Vec<String> = (0..files)
        .map(|i| {
            let d = i % dirs;
            format!("c{:02}/d{:03}/f{i}.php", d % 60, d)
        })
        .collect();
    let sizes: Vec<usize> = (0..files).map(|_| file_size(rng) / 3).collect();
    let mut first: Files = paths
        .iter()
        .zip(&sizes)
        .enumerate()
        .map(|(i, (p, s))| (p.clone(), php_text(rng, *s, i), false))
        .collect();
    first.extend(core_metadata(
        mcb_fixtures::core_version_php("2024100700.00", "4.5 (Build: 20241007)", "405")
            .into_bytes(),
    ));
    let mut commits = vec![("v4.5.0".to_string(), first)];
    let later = [
        (
            "v4.5.1",
            "2024100701.00",
            "4.5.1 (Build: 20241209)",
            "405",
            200,
        ),
        (
            "v4.5.2",
            "2024100702.00",
            "4.5.2 (Build: 20250113)",
            "405",
            200,
        ),
        (
            "v5.0.0",
            "2025041400.00",
            "5.0 (Build: 20250414)",
            "500",
            600,
        ),
    ];
    for (n, (tag, build, release, branch, changed)) in later.into_iter().enumerate() {
        let mut files_changed = vec![(
            "version.php".to_string(),
            mcb_fixtures::core_version_php(build, release, branch).into_bytes(),
            false,
        )];
        for k in 0..changed {
            let i = (k * 37 + n * 11) % files;
            files_changed.push((
                paths[i].clone(),
                php_text(rng, sizes[i], i + (n + 1) * 1_000_000),
                false,
            ));
        }
        commits.push((tag.to_string(), files_changed));
    }
    fast_import(&core, commits);
    core
}

fn build_plugins(root: &Path, rng: &mut Rng) -> Vec<PathBuf> {
    (0..pool())
        .map(|p| {
            let component = format!("local_fp{p}");
            let repo = root.join(format!("upstream/{component}.git"));
            plugin_repo(
                &repo,
                15,
                5_000,
                p * 1000,
                &|v| {
                    mcb_fixtures::plugin_php(
                        &component,
                        v,
                        "2024100700",
                        "$plugin->supported = [405, 500];",
                    )
                    .into_bytes()
                },
                rng,
            );
            repo
        })
        .collect()
}

/// The directory list (and the zips of the plugin the sites take), in `dir`.
fn build_directory(dir: &Path, base_url: &str, rng: &mut Rng) {
    std::fs::create_dir_all(dir).unwrap();
    let releases = [
        ("3.11", 2021051700u64),
        ("4.0", 2022041900),
        ("4.1", 2022112800),
        ("4.2", 2023042400),
        ("4.3", 2023100900),
        ("4.4", 2024042200),
        ("4.5", 2024100700),
        ("5.0", 2025041400),
    ];
    let types = ["mod", "block", "local", "tool", "theme", "filter", "auth"];
    let mut list = String::from("{\"timestamp\":1733000000,\"plugins\":[");
    let mut id = 1;
    for p in 0..directory_plugins() {
        let component = if p == 0 {
            FLEET_DIR_PLUGIN.to_string()
        } else {
            format!("{}_dp{p}", types[p % types.len()])
        };
        if p > 0 {
            list.push(',');
        }
        write!(
            list,
            "{{\"id\":{},\"name\":\"Plugin {p} of the directory\",\"component\":\"{component}\",\"source\":\"https://github.com/example/moodle-{component}\",\"doc\":\"https://docs.example.org/{component}\",\"bugs\":\"https://tracker.example.org/{component}\",\"discussion\":null,\"timelastreleased\":1700000000,\"versions\":[",
            p + 1
        )
        .unwrap();
        for k in 0..versions_per_plugin() {
            let version = 2016010100 + k as u64 * 1_000_000 + (p % 97) as u64;
            let lo = (k / 2).min(releases.len() - 1);
            let hi = (lo + 2).min(releases.len() - 1);
            let supported: Vec<String> = releases[lo..=hi]
                .iter()
                .map(|(r, v)| format!("{{\"version\":{v},\"release\":\"{r}\"}}"))
                .collect();
            let newest = k + 2 >= versions_per_plugin();
            let (url, md5) = if p == 0 && newest {
                // A real zip for the versions a site can take.
                let name = format!("{component}-{version}.zip");
                let md5 = make_zip(&dir.join(&name), &component, version, rng);
                (format!("{base_url}/{name}"), md5)
            } else {
                (
                    format!(
                        "https://moodle.org/plugins/download.php/{id}/{component}_{version}.zip"
                    ),
                    format!("{:016x}{:016x}", rng.next_u64(), rng.next_u64()),
                )
            };
            if k > 0 {
                list.push(',');
            }
            write!(
                list,
                "{{\"id\":{id},\"version\":\"{version}\",\"release\":\"{k}.{}\",\"maturity\":200,\"downloadurl\":\"{url}\",\"downloadmd5\":\"{md5}\",\"vcssystem\":\"git\",\"vcssystemother\":null,\"vcsrepositoryurl\":\"https://github.com/example/moodle-{component}\",\"vcsbranch\":\"main\",\"vcstag\":\"v{k}\",\"timecreated\":{},\"supportedmoodles\":[{}]}}",
                p % 10,
                1_500_000_000 + k as u64 * 10_000_000,
                supported.join(",")
            )
            .unwrap();
            id += 1;
        }
        list.push_str("]}");
    }
    list.push_str("]}");
    std::fs::write(dir.join("pluglist.json"), list).unwrap();
}

/// A plugin zip with one top folder; returns its md5.
fn make_zip(path: &Path, component: &str, version: u64, rng: &mut Rng) -> String {
    use md5::Digest;
    let src = path.with_extension("src");
    let top = src.join(component.trim_start_matches("block_"));
    std::fs::create_dir_all(&top).unwrap();
    std::fs::write(
        top.join("version.php"),
        format!("<?php\ndefined('MOODLE_INTERNAL') || die();\n$plugin->component = '{component}';\n$plugin->version = {version};\n$plugin->requires = 2024100700;\n$plugin->maturity = MATURITY_STABLE;\n"),
    )
    .unwrap();
    for f in 0..10 {
        std::fs::write(
            top.join(format!("f{f}.php")),
            php_text(rng, 2_000, f + version as usize % 13),
        )
        .unwrap();
    }
    run(Command::new("python3")
        .current_dir(&src)
        .args([
            "-c",
            "import shutil,sys; shutil.make_archive(sys.argv[1], 'zip', '.', sys.argv[2])",
        ])
        .arg(path.with_extension(""))
        .arg(top.file_name().unwrap()));
    std::fs::remove_dir_all(&src).unwrap();
    hex::encode(md5::Md5::digest(std::fs::read(path).unwrap()))
}

/// `python3 -m http.server` on 127.0.0.1, stopped when dropped.
struct Server(std::process::Child);

impl Server {
    fn start(dir: &Path) -> (Server, u16) {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new("python3")
            .args(["-m", "http.server", "--bind", "127.0.0.1"])
            .arg(port.to_string())
            .current_dir(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "the HTTP server did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        (Server(child), port)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Fixture {
    /// The plugins of site `i`: the common ones and its own, the same on every run.
    fn site_plugins(i: usize) -> Vec<usize> {
        let mut rng = Rng(0x5eed_0000 + i as u64 * 7919);
        let mut own: Vec<usize> = Vec::new();
        while own.len() < own_plugins() {
            let p = common() + rng.below((pool() - common()) as u64) as usize;
            if !own.contains(&p) {
                own.push(p);
            }
        }
        own.sort();
        (0..common()).chain(own).collect()
    }

    /// Site file `i` at generation `generation` (1: two of its plugins pinned at v1.0;
    /// 2: the first moves to v1.1; 3: the second does too).
    fn site_text(&self, name: &str, i: usize, generation: usize) -> String {
        let plugins = Fixture::site_plugins(i);
        let pinned = [plugins[common()], plugins[common() + 1]];
        let mut body = String::new();
        for p in &plugins {
            let pin = (*p == pinned[0] && generation < 2) || (*p == pinned[1] && generation < 3);
            writeln!(
                body,
                "    \"local_fp{p}\": (git: \"file://{}\"{}),",
                self.plugins[*p].display(),
                if pin { ", version: \"2024100100\"" } else { "" }
            )
            .unwrap();
        }
        writeln!(body, "    \"{FLEET_DIR_PLUGIN}\": (),").unwrap();
        format!(
            "Site(\n  name: \"{name}\",\n  moodle: (version: \"{}\", git: \"file://{}\"),\n  plugins: {{\n{body}  }},\n  directory: \"{}\",\n)\n",
            RELEASES[i % RELEASES.len()],
            self.core.display(),
            self.directory_url
        )
    }
}

fn mcb_cmd(mcb: &Path, store: &Path) -> Command {
    let mut c = Command::new(mcb);
    c.env_remove("MCB_DIRECTORY")
        .env("MCB_MOODLE_GIT", "/nonexistent/moodle.git")
        .arg("--store")
        .arg(store)
        .arg("-q");
    c
}

/// Runs `args` through mcb for each site file; the total wall time.
fn for_each(mcb: &Path, store: &Path, sites: &[PathBuf], args: &[&str], ok: &[i32]) -> Duration {
    let mut total = Duration::ZERO;
    for s in sites {
        let start = Instant::now();
        let mut c = mcb_cmd(mcb, store);
        let out = c.args(args).arg(s).output().unwrap();
        total += start.elapsed();
        let code = out.status.code().unwrap_or(-1);
        assert!(
            ok.contains(&code),
            "mcb {args:?} {} exited {code}: {}",
            s.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    total
}

/// One fleet size's measures.
#[derive(Default, Clone)]
struct Row {
    sites: usize,
    cold: Duration,
    warm: Duration,
    identical: Duration,
    generations: Duration,
    store_bytes: u64,
    unique_bytes: u64,
    gc: Duration,
    verify: Duration,
    plan: Duration,
    check: Duration,
    floor_cp: Duration,
    rollback_previous: Duration,
    rollback_oldest: Duration,
}

fn run_fleet(mcb: &Path, fx: &Fixture, base: &Path, n: usize) -> Row {
    let root = base.join(format!("fleet-{n}"));
    remove(&root);
    std::fs::create_dir_all(&root).unwrap();
    let store = root.join("store");
    let mut sites = Vec::new();
    for i in 0..n {
        let dir = root.join(format!("sites/s{i:03}"));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("site.ron");
        std::fs::write(&file, fx.site_text(&format!("s{i:03}"), i, 1)).unwrap();
        sites.push(file);
    }
    eprintln!("  {n} sites: cold realise …");
    let cold = for_each(mcb, &store, &sites, &["realise"], &[0]);
    eprintln!("  warm realise …");
    let warm = for_each(mcb, &store, &sites, &["realise"], &[0]);
    // A new site whose codebase exists already: site 0's plugins under other names.
    let twins: Vec<PathBuf> = (0..5)
        .map(|k| {
            let dir = root.join(format!("twins/t{k}"));
            std::fs::create_dir_all(&dir).unwrap();
            let file = dir.join("site.ron");
            std::fs::write(&file, fx.site_text(&format!("twin{k}"), 0, 1)).unwrap();
            file
        })
        .collect();
    let identical = for_each(mcb, &store, &twins, &["realise"], &[0]) / 5;
    for k in 0..5 {
        let _ = mcb_cmd(mcb, &store)
            .args(["forget", "--force"])
            .arg(format!("twin{k}"))
            .output();
    }
    eprintln!("  two more generations per site …");
    let mut generations = Duration::ZERO;
    for g in [2, 3] {
        for (i, s) in sites.iter().enumerate() {
            std::fs::write(s, fx.site_text(&format!("s{i:03}"), i, g)).unwrap();
        }
        generations += for_each(mcb, &store, &sites, &["realise"], &[0]);
    }
    let generations = generations / (2 * n as u32);
    // The floor for one new codebase: `cp -al` of one generation.
    let one_generation = std::fs::read_link(sites[0].with_file_name("result")).unwrap();
    let copy = root.join("cp-al");
    let floor_cp = measure(
        Command::new("cp")
            .arg("-al")
            .arg(&one_generation)
            .arg(&copy),
    )
    .wall;
    remove(&copy);
    // Rolling back, each the median of three sites: to the generation before (laid
    // out) on the first three, then to the first generation (a commit only: laid out
    // again from the store) on the last three.
    let rollback = |site: &Path, to: &str| {
        let mut c = mcb_cmd(mcb, &store);
        c.args(["rollback", "--allow-downgrade", "--to", to])
            .arg(site);
        measure(&mut c).wall
    };
    let first = &sites[..n.min(3)];
    let last = &sites[n - n.min(3)..];
    let rollback_previous = median(first.iter().map(|s| rollback(s, "-1")).collect());
    let rollback_oldest = median(last.iter().map(|s| rollback(s, "gen-1")).collect());
    // Those sites back at what their site files say.
    for_each(mcb, &store, first, &["update"], &[0]);
    for_each(mcb, &store, last, &["update"], &[0]);
    let store_bytes = disk_usage(&store);
    let unique_bytes = disk_usage(&store.join("objects"));
    eprintln!(
        "  store {}: objects {}, generations {} ({} materialised), git {}",
        mb(store_bytes),
        mb(unique_bytes),
        mb(disk_usage(&store.join("generations"))),
        std::fs::read_dir(store.join("generations"))
            .map(|d| d.flatten().filter(|e| e.path().is_dir()).count())
            .unwrap_or(0),
        mb(disk_usage(&store.join("git")))
    );
    eprintln!("  gc, verify, plan, check …");
    let gc = measure(mcb_cmd(mcb, &store).args(["gc", "--keep", "3"])).wall;
    let verify = measure(mcb_cmd(mcb, &store).arg("verify")).wall;
    let plan = for_each(mcb, &store, &sites, &["plan", "--offline"], &[0]);
    let check = for_each(mcb, &store, &sites, &["check", "--moodle", "5.0"], &[0]);
    // The fleet stays until the benchmark ends: ext4 scans past recently freed inodes
    // when it makes new ones, so removing it here would slow the next fleet's runs.
    Row {
        sites: n,
        cold,
        warm,
        identical,
        generations,
        store_bytes,
        unique_bytes,
        gc,
        verify,
        plan,
        check,
        floor_cp,
        rollback_previous,
        rollback_oldest,
    }
}

/// The directory list's costs: its first parse (`info` in a store that has not seen it),
/// `info` again, and a warm realise of a site that takes a plugin from it.
struct DirectoryCosts {
    list_bytes: u64,
    first: Sample,
    info: Sample,
    realise: Sample,
}

fn directory_costs(mcb: &Path, fx: &Fixture, base: &Path) -> DirectoryCosts {
    let root = base.join("directory");
    remove(&root);
    std::fs::create_dir_all(&root).unwrap();
    let store = root.join("store");
    let info = |s: &Path| {
        measure(
            mcb_cmd(mcb, s)
                .args(["info", FLEET_DIR_PLUGIN, "--directory"])
                .arg(&fx.directory_url),
        )
    };
    // Without a store to keep it in, the list is fetched and parsed whole: its parse.
    let first = info(&root.join("no-store"));
    let site = root.join("site/site.ron");
    std::fs::create_dir_all(site.parent().unwrap()).unwrap();
    std::fs::write(&site, fx.site_text("dir", 0, 3)).unwrap();
    measure(mcb_cmd(mcb, &store).arg("realise").arg(&site));
    // The store keeps the list and where each record is in it.
    let again: Vec<Sample> = (0..3).map(|_| info(&store)).collect();
    // Without its lock, the site is resolved again: the list is consulted, and the
    // codebase it gives exists already.
    let realises: Vec<Sample> = (0..3)
        .map(|_| {
            std::fs::remove_file(site.with_extension("lock")).unwrap();
            measure(mcb_cmd(mcb, &store).arg("realise").arg(&site))
        })
        .collect();
    let best = |v: Vec<Sample>| {
        let mut v = v;
        v.sort_by_key(|s| s.wall);
        v.swap_remove(v.len() / 2)
    };
    let list_bytes = std::fs::metadata(base.join("directory-served/pluglist.json"))
        .map(|m| m.len())
        .unwrap_or(0);
    remove(&root);
    DirectoryCosts {
        list_bytes,
        first,
        info: best(again),
        realise: best(realises),
    }
}

fn plot(rows: &[Row]) -> String {
    type Series = (&'static str, &'static str, fn(&Row) -> f64);
    let series: [Series; 6] = [
        ("cold realise, all sites", "#1f77b4", |r| {
            r.cold.as_secs_f64()
        }),
        ("warm realise, all sites", "#ff7f0e", |r| {
            r.warm.as_secs_f64()
        }),
        ("gc", "#2ca02c", |r| r.gc.as_secs_f64()),
        ("verify", "#d62728", |r| r.verify.as_secs_f64()),
        ("plan, all sites", "#9467bd", |r| r.plan.as_secs_f64()),
        ("check --moodle 5.0, all sites", "#8c564b", |r| {
            r.check.as_secs_f64()
        }),
    ];
    let (w, h, left, bottom, top, right) = (720.0, 420.0, 70.0, 50.0, 20.0, 250.0);
    let max_sites = rows.iter().map(|r| r.sites).max().unwrap_or(1) as f64;
    let max_secs = rows
        .iter()
        .flat_map(|r| series.iter().map(move |s| (s.2)(r)))
        .fold(0.0f64, f64::max)
        .max(0.001);
    let x = |n: f64| left + (w - left - right) * n / max_sites;
    let y = |s: f64| h - bottom - (h - bottom - top) * s / max_secs;
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"{w}\" height=\"{h}\" fill=\"white\"/>\n"
    );
    writeln!(
        svg,
        "<line x1=\"{left}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"black\"/><line x1=\"{left}\" y1=\"{top}\" x2=\"{left}\" y2=\"{}\" stroke=\"black\"/>",
        h - bottom,
        w - right,
        h - bottom,
        h - bottom
    )
    .unwrap();
    for r in rows {
        writeln!(
            svg,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text>",
            x(r.sites as f64),
            h - bottom + 18.0,
            r.sites
        )
        .unwrap();
    }
    for k in 0..=4 {
        let s = max_secs * k as f64 / 4.0;
        writeln!(
            svg,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{s:.1} s</text><line x1=\"{left}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"#ddd\"/>",
            left - 6.0,
            y(s) + 4.0,
            y(s),
            w - right,
            y(s)
        )
        .unwrap();
    }
    writeln!(
        svg,
        "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">sites on one store</text>",
        (left + w - right) / 2.0,
        h - 12.0
    )
    .unwrap();
    for (k, (name, colour, f)) in series.iter().enumerate() {
        let points: Vec<String> = rows
            .iter()
            .map(|r| format!("{:.1},{:.1}", x(r.sites as f64), y(f(r))))
            .collect();
        writeln!(
            svg,
            "<polyline fill=\"none\" stroke=\"{colour}\" stroke-width=\"2\" points=\"{}\"/>",
            points.join(" ")
        )
        .unwrap();
        for p in &points {
            let (px, py) = p.split_once(',').unwrap();
            writeln!(
                svg,
                "<circle cx=\"{px}\" cy=\"{py}\" r=\"3\" fill=\"{colour}\"/>"
            )
            .unwrap();
        }
        let ly = top + 10.0 + k as f64 * 20.0;
        writeln!(
            svg,
            "<rect x=\"{}\" y=\"{}\" width=\"12\" height=\"12\" fill=\"{colour}\"/><text x=\"{}\" y=\"{}\">{name}</text>",
            w - right + 12.0,
            ly - 10.0,
            w - right + 30.0,
            ly
        )
        .unwrap();
    }
    svg.push_str("</svg>\n");
    svg
}

fn mb(b: u64) -> String {
    format!("{:.1} MB", b as f64 / 1e6)
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let mcb = PathBuf::from(env!("CARGO_BIN_EXE_mcb"));
    let sizes: Vec<usize> = std::env::var("MCB_FLEET_SITES")
        .unwrap_or_else(|_| if smoke() { "2" } else { "10,30,100" }.into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let core_files: usize = std::env::var("MCB_FLEET_CORE_FILES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(scaled(8_000, 200));
    let base = match std::env::var_os("MCB_BENCH_DIR") {
        Some(d) => PathBuf::from(d),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/bench-fleet"),
    };
    remove(&base);
    std::fs::create_dir_all(&base).unwrap();
    let base = base.canonicalize().unwrap();
    eprintln!("building the fleet fixture in {} …", base.display());
    let t = Instant::now();
    let mut rng = Rng(0x0f1e_e7b0_0c5a_11ce);
    let core = build_core(&base, core_files, &mut rng);
    let plugins = build_plugins(&base, &mut rng);
    let served = base.join("directory-served");
    std::fs::create_dir_all(&served).unwrap();
    let (server, port) = Server::start(&served);
    let base_url = format!("http://127.0.0.1:{port}");
    build_directory(&served, &base_url, &mut rng);
    let fx = Fixture {
        core,
        plugins,
        directory_url: format!("{base_url}/pluglist.json"),
        core_files,
    };
    eprintln!("fixture built in {:.1} s", t.elapsed().as_secs_f64());

    let dir = directory_costs(&mcb, &fx, &base);
    let mut rows = Vec::new();
    for n in sizes {
        eprintln!("fleet of {n} …");
        rows.push(run_fleet(&mcb, &fx, &base, n));
    }
    drop(server);

    let mut table = String::new();
    writeln!(
        table,
        "Machine: {} cores, the store on {}. Fixture: core of {} files on releases {}, and 5.0.0; a pool of {} git plugins (each site: {} common + {} of its own) and one plugin from a directory of {} plugins and {} versions ({}).\n",
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        filesystem(&base),
        fx.core_files,
        RELEASES.join(", "),
        pool(),
        common(),
        own_plugins(),
        directory_plugins(),
        directory_plugins() * versions_per_plugin(),
        mb(dir.list_bytes)
    )
    .unwrap();
    let header: Vec<String> = rows.iter().map(|r| format!("{} sites", r.sites)).collect();
    writeln!(
        table,
        "| path | {} | per site (largest fleet) | grows as |",
        header.join(" | ")
    )
    .unwrap();
    writeln!(table, "|---|{}---|---|", "---|".repeat(rows.len())).unwrap();
    let last = rows.last().cloned().unwrap_or_default();
    let per = |d: Duration| format!("{:.3} s", d.as_secs_f64() / last.sites.max(1) as f64);
    type Col = fn(&Row) -> String;
    let lines: Vec<(&str, Col, String, &str)> = vec![
        (
            "realise every site, cold store",
            |r| format!("{:.1} s", r.cold.as_secs_f64()),
            per(last.cold),
            "sites × files of a codebase (each new codebase is a hardlinked tree); each source fetched once",
        ),
        (
            "realise every site again, nothing changed",
            |r| format!("{:.2} s", r.warm.as_secs_f64()),
            per(last.warm),
            "sites × files checked in each generation",
        ),
        (
            "a new site whose codebase exists already",
            |r| format!("{:.3} s", r.identical.as_secs_f64()),
            format!("{:.3} s", last.identical.as_secs_f64()),
            "the site's plugins and the files of its codebase (checked, not laid out); not the fleet",
        ),
        (
            "a new generation (one plugin moved)",
            |r| format!("{:.3} s", r.generations.as_secs_f64()),
            format!(
                "{:.3} s ({:.2} × `cp -al` {:.3} s)",
                last.generations.as_secs_f64(),
                last.generations.as_secs_f64() / last.floor_cp.as_secs_f64().max(1e-9),
                last.floor_cp.as_secs_f64()
            ),
            "files of one codebase",
        ),
        (
            "rollback to the generation before (laid out)",
            |r| format!("{:.3} s", r.rollback_previous.as_secs_f64()),
            format!("{:.3} s", last.rollback_previous.as_secs_f64()),
            "the files of one codebase, checked",
        ),
        (
            "rollback to the first generation (laid out again)",
            |r| format!("{:.3} s", r.rollback_oldest.as_secs_f64()),
            format!(
                "{:.3} s ({:.2} × a new generation)",
                last.rollback_oldest.as_secs_f64(),
                last.rollback_oldest.as_secs_f64() / last.generations.as_secs_f64().max(1e-9)
            ),
            "files of one codebase",
        ),
        (
            "store size (3 generations per site)",
            |r| mb(r.store_bytes),
            mb(last.store_bytes / last.sites.max(1) as u64),
            "unique content + directory blocks of the generations laid out (each site's served one and the one before)",
        ),
        (
            "store size ÷ unique content (objects)",
            |r| format!("{:.2}", r.store_bytes as f64 / r.unique_bytes.max(1) as f64),
            "—".into(),
            "",
        ),
        (
            "`gc`, 3 generations kept per site",
            |r| format!("{:.2} s", r.gc.as_secs_f64()),
            per(last.gc),
            "generations kept + objects in the store",
        ),
        (
            "`verify`",
            |r| format!("{:.2} s", r.verify.as_secs_f64()),
            per(last.verify),
            "bytes of unique content + files of every generation",
        ),
        (
            "`plan` for every site",
            |r| format!("{:.2} s", r.plan.as_secs_f64()),
            per(last.plan),
            "sites × plugins per site",
        ),
        (
            "`check --moodle 5.0` for every site",
            |r| format!("{:.2} s", r.check.as_secs_f64()),
            per(last.check),
            "sites × plugins per site",
        ),
    ];
    for (name, col, per_site, grows) in &lines {
        let cells: Vec<String> = rows.iter().map(col).collect();
        writeln!(
            table,
            "| {name} | {} | {per_site} | {grows} |",
            cells.join(" | ")
        )
        .unwrap();
    }
    writeln!(
        table,
        "\nThe directory list ({}): fetched and parsed whole (`mcb info` without a store) {:.3} s and {:.0} MB peak; `mcb info` after it {:.3} s and {:.0} MB; a warm realise of a site that takes a plugin from it {:.3} s.",
        mb(dir.list_bytes),
        dir.first.wall.as_secs_f64(),
        dir.first.max_rss_kb as f64 / 1024.0,
        dir.info.wall.as_secs_f64(),
        dir.info.max_rss_kb as f64 / 1024.0,
        dir.realise.wall.as_secs_f64(),
    )
    .unwrap();
    println!("{table}");
    let benches = if smoke() {
        base.clone()
    } else {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../benches")
    };
    std::fs::write(benches.join("fleet.md"), &table).unwrap();
    std::fs::write(benches.join("fleet.svg"), plot(&rows)).unwrap();
    eprintln!(
        "written to {} and fleet.svg beside it",
        benches.join("fleet.md").display()
    );
    if std::env::var_os("MCB_BENCH_KEEP").is_none() {
        remove(&base);
    }
}
