//! The store over time: gc with roots, verify, verify --tree, reproduce, concurrent runs
//! and runs killed at any moment.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::support::*;

fn json(out: &std::process::Output) -> serde_json::Value {
    assert!(
        out.status.success(),
        "exit {:?}: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// A site on the test Moodle with one development plugin whose content we change.
fn dev_site(f: &Fixture, m: &GitRepo, name: &str, dir: &str) -> PathBuf {
    f.write(
        &format!("{dir}/local_dev/version.php"),
        plugin_php("local_dev", 2024100100, "2024100700", ""),
    );
    f.write(&format!("{dir}/local_dev/lib.php"), "<?php // 0\n");
    Site::new(name)
        .core(m.url(), "4.5")
        .plugin("local_dev", Src::path("local_dev"))
        .write(f, &format!("{dir}/site.ron"))
}

fn generation_of(link: &Path) -> String {
    std::fs::read_link(link)
        .unwrap()
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned()
}

fn generations(store: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(store.join("generations"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with('.') && !n.ends_with(".uses"))
        .collect();
    v.sort();
    v
}

#[test]
fn gc_keeps_the_newest_generations_and_frees_the_rest() {
    let f = Fixture::new();
    let m = moodle_repo(f.path("moodle"));
    let site = dev_site(&f, &m, "a", "a");
    let mut trees = Vec::new();
    for i in 0..4 {
        f.write(
            "a/local_dev/lib.php",
            format!("<?php // version {i} {}\n", "x".repeat(5000 + i)),
        );
        trees.push(f.realise_ok(&site)["tree"].as_str().unwrap().to_string());
    }
    // The served generation and the one before stay laid out; the older two are records.
    assert_eq!(generations(&f.store()), {
        let mut k = vec![trees[2].clone(), trees[3].clone()];
        k.sort();
        k
    });

    let dry = json(
        &f.mcb()
            .args(["gc", "--json", "--dry-run", "--keep", "2", "--grace", "0"])
            .output()
            .unwrap(),
    );
    assert_eq!(dry["generations"].as_array().unwrap().len(), 2);
    assert_eq!(
        f.store()
            .join("generations")
            .read_dir()
            .unwrap()
            .filter(|e| e
                .as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .ends_with(".uses"))
            .count(),
        4,
        "a dry run deletes nothing"
    );

    let done = json(
        &f.mcb()
            .args(["gc", "--json", "--keep", "2", "--grace", "0"])
            .output()
            .unwrap(),
    );
    let gone: Vec<&str> = done["generations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g.as_str().unwrap())
        .collect();
    assert_eq!(gone.len(), 2);
    assert!(
        gone.contains(&trees[0].as_str()) && gone.contains(&trees[1].as_str()),
        "the oldest go: {gone:?}"
    );
    assert_eq!(generations(&f.store()), {
        let mut k = vec![trees[2].clone(), trees[3].clone()];
        k.sort();
        k
    });
    // The two dropped lib.php versions were unique to their generations.
    assert_eq!(done["objects"], 2, "{done}");
    assert!(done["manifests"].as_u64().unwrap() >= 2, "{done}");
    assert!(done["bytes"].as_u64().unwrap() >= 2 * 4096, "{done}");
    assert!(done["files"].as_u64().unwrap() > 4, "{done}");
    assert_eq!(
        done["objects"], dry["objects"],
        "the dry run said what would go"
    );

    // Site branches stay loose refs: a branch update never needs packed-refs.lock, which
    // a killed run could leave behind.
    let packed = std::fs::read_to_string(f.store().join("git/packed-refs")).unwrap_or_default();
    assert!(
        !packed.contains("refs/heads/"),
        "gc packed the site branches: {packed}"
    );

    // What remains is sound and still realises without change.
    f.mcb().arg("verify").assert().success();
    assert_eq!(f.realise_ok(&site)["changed"], false);
    let again = json(
        &f.mcb()
            .args(["gc", "--json", "--keep", "2", "--grace", "0"])
            .output()
            .unwrap(),
    );
    assert_eq!(again["generations"].as_array().unwrap().len(), 0);
    assert_eq!(again["objects"], 0);
}

#[test]
fn a_removed_result_link_loses_its_root() {
    let f = Fixture::new();
    let m = moodle_repo(f.path("moodle"));
    let site = dev_site(&f, &m, "a", "a");
    let pinned = f.path("pinned-result");
    let out = f
        .mcb()
        .args(["realise", "--json", "--out"])
        .arg(&pinned)
        .arg(&site)
        .output()
        .unwrap();
    let first = json(&out)["tree"].as_str().unwrap().to_string();
    f.write("a/local_dev/lib.php", "<?php // changed\n");
    let second = f.realise_ok(&site)["tree"].as_str().unwrap().to_string();
    assert_ne!(first, second);

    // Only the newest generation per site is kept, but the extra link keeps the first.
    let r = json(
        &f.mcb()
            .args(["gc", "--json", "--keep", "1", "--grace", "0"])
            .output()
            .unwrap(),
    );
    assert_eq!(r["generations"].as_array().unwrap().len(), 0, "{r}");
    assert!(f.store().join("generations").join(&first).is_dir());

    std::fs::remove_file(&pinned).unwrap();
    let r = json(
        &f.mcb()
            .args(["gc", "--json", "--keep", "1", "--grace", "0"])
            .output()
            .unwrap(),
    );
    assert_eq!(r["dead_links"], serde_json::json!([pinned]));
    assert_eq!(r["generations"], serde_json::json!([first]));
    assert!(!f.store().join("generations").join(&first).exists());
    assert_eq!(generation_of(&f.path("a/result")), second);
}

#[test]
fn a_grace_period_spares_young_content() {
    let f = Fixture::new();
    let m = moodle_repo(f.path("moodle"));
    let site = dev_site(&f, &m, "a", "a");
    f.realise_ok(&site);
    f.write("a/local_dev/lib.php", "<?php // changed\n");
    f.realise_ok(&site);
    let r = json(
        &f.mcb()
            .args(["gc", "--json", "--keep", "1"])
            .output()
            .unwrap(),
    );
    assert_eq!(
        r["generations"].as_array().unwrap().len(),
        0,
        "an hour's grace spares both: {r}"
    );
    assert_eq!(r["objects"], 0);
}

#[test]
fn verify_finds_a_flipped_byte_and_names_the_site() {
    let f = Fixture::new();
    let m = moodle_repo(f.path("moodle"));
    let site = dev_site(&f, &m, "alpha", "a");
    f.realise_ok(&site);
    let out = f.mcb().arg("verify").output().unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("store is sound"));

    // Flip one byte of the object behind index.php.
    let index = std::fs::canonicalize(f.path("a/result/index.php")).unwrap();
    let bytes = std::fs::read(&index).unwrap();
    let object = blake3::hash(&bytes).to_hex().to_string();
    let path = f.store().join("objects").join(&object[..2]).join(&object);
    let mut damaged = bytes.clone();
    damaged[3] ^= 0x20;
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    std::fs::write(&path, &damaged).unwrap();

    let out = f.mcb().arg("verify").output().unwrap();
    assert_eq!(out.status.code(), Some(6));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(&format!("corrupt object {object}\n")) && text.contains("index.php (alpha"),
        "{text}"
    );
    let j = json_any(&f.mcb().args(["verify", "--json"]).output().unwrap());
    assert_eq!(j["corrupt"][0]["object"], object);
    assert_eq!(j["corrupt"][0]["paths"][0]["path"], "index.php");
    assert_eq!(j["corrupt"][0]["paths"][0]["sites"][0], "alpha");
    assert_eq!(j["clean"], false);
    // git holds every file: --repair restores the object and the generation.
    let out = f.mcb().args(["verify", "--repair"]).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert_eq!(std::fs::read(&index).unwrap(), bytes);
    f.mcb().arg("verify").assert().success();
}

fn json_any(out: &std::process::Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn verify_tree_reports_drift_and_edits_never_reach_a_new_generation() {
    let f = Fixture::new();
    let m = moodle_repo(f.path("moodle"));
    let site = dev_site(&f, &m, "a", "a");
    f.realise_ok(&site);
    let result = f.path("a/result");
    f.mcb()
        .args(["verify", "--tree"])
        .arg(&result)
        .assert()
        .success();

    let gen_dir = std::fs::canonicalize(&result).unwrap();
    let chmod = |p: &Path, mode: u32| {
        std::fs::set_permissions(p, std::os::unix::fs::PermissionsExt::from_mode(mode)).unwrap()
    };
    chmod(&gen_dir, 0o755);
    chmod(&gen_dir.join("lib"), 0o755);
    // Edit in place through the hardlink, add a file, delete one.
    chmod(&gen_dir.join("index.php"), 0o644);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(gen_dir.join("index.php"))
        .unwrap();
    std::io::Write::write_all(&mut file, b"<?php // hacked\n").unwrap();
    drop(file);
    std::fs::write(gen_dir.join("extra.php"), "<?php\n").unwrap();
    std::fs::remove_file(gen_dir.join("lib/plugins.json")).unwrap();

    let out = f
        .mcb()
        .args(["verify", "--tree"])
        .arg(&result)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(6));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("modified index.php"), "{text}");
    assert!(text.contains("added    extra.php"), "{text}");
    assert!(text.contains("removed  lib/plugins.json"), "{text}");

    // A new generation (another site on the same core) gets the true content back.
    let other = dev_site(&f, &m, "b", "b");
    f.write("b/local_dev/lib.php", "<?php // b\n");
    let out = f.mcb().arg("realise").arg(&other).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("restored from git"));
    let fresh = std::fs::read_to_string(f.path("b/result/index.php")).unwrap();
    assert!(
        fresh.contains("Moodle 4.5.10"),
        "the edit leaked into a new tree: {fresh}"
    );
    f.mcb()
        .args(["verify", "--tree"])
        .arg(f.path("b/result"))
        .assert()
        .success();
    // The store's objects are sound again, but the edited tree is still changed in place:
    // verify names it and the site behind it, and --repair rebuilds it.
    let out = f.mcb().arg("verify").output().unwrap();
    assert_eq!(out.status.code(), Some(6));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("was changed in place (a"), "{text}");
    assert!(
        text.contains("index.php") && text.contains("extra.php"),
        "{text}"
    );
    assert_eq!(
        f.mcb()
            .args(["verify", "--tree"])
            .arg(&result)
            .output()
            .unwrap()
            .status
            .code(),
        Some(6)
    );
    let out = f.mcb().args(["verify", "--repair"]).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    f.mcb()
        .args(["verify", "--tree"])
        .arg(&result)
        .assert()
        .success();
    assert!(!result.join("extra.php").exists());
}

#[test]
fn reproduce_rebuilds_the_same_tree_in_an_empty_store() {
    let f = Fixture::new();
    let site = git_and_zip_site(&f, "r");
    let j = f.realise_ok(&site);
    let out = f
        .mcb()
        .args(["reproduce", "--check"])
        .arg(f.path("site/site.lock"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains(&format!(
            "tree {} matches the lock",
            j["tree"].as_str().unwrap()
        )),
        "{text}"
    );
    assert!(
        text.contains("every source has the manifest the lock records"),
        "{text}"
    );

    // From the site commit alone (run where the site file's relative paths resolve).
    let out = f
        .mcb()
        .current_dir(f.path("site"))
        .args(["reproduce", "--json"])
        .arg(j["commit"].as_str().unwrap())
        .output()
        .unwrap();
    let r = json(&out);
    assert_eq!(r["tree"], j["tree"]);
    assert_eq!(r["same"], true);

    // An upstream that changed under the lock does not reproduce, and says where.
    f.write(
        "z.zip",
        zip_bytes(&[(
            "local_z/version.php",
            &plugin_php("local_z", 2024100200, "2024100700", ""),
            0o644,
        )]),
    );
    let out = f
        .mcb()
        .args(["reproduce"])
        .arg(f.path("site/site.lock"))
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(6),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("changed since the lock"));

    // The empty stores were made inside the store's tmp/ and are removed after the
    // answer, by a process of their own.
    let tmp = f.store().join("tmp");
    let mut left = usize::MAX;
    for _ in 0..100 {
        left = std::fs::read_dir(&tmp).unwrap().count();
        if left == 0 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_eq!(left, 0, "reproduce left its temporary store behind");
}

/// A CI runner keeps the store's content in the CI's own cache (objects, pkgs, git, cache:
/// not its scratch, roots or materialised generations) and restores it into the next job.
#[test]
fn a_store_restored_from_a_ci_cache_realises_the_locked_site_with_no_upstream() {
    let f = Fixture::new();
    let site = git_and_zip_site(&f, "ci");
    let j = f.realise_ok(&site);

    let restored = f.path("restored");
    std::fs::create_dir_all(&restored).unwrap();
    for part in ["VERSION", "objects", "pkgs", "git", "cache"] {
        let st = std::process::Command::new("cp")
            .arg("-a")
            .arg(f.store().join(part))
            .arg(&restored)
            .status()
            .unwrap();
        assert!(st.success(), "cp -a {part}");
    }
    // No upstream is reachable from the next job.
    for gone in ["moodle", "block_x", "z.zip"] {
        std::fs::rename(f.path(gone), f.path(&format!("{gone}.gone"))).unwrap();
    }
    std::fs::remove_file(f.path("site/result")).unwrap();

    let out = f
        .mcb_with_store(&restored)
        .args(["realise", "--locked", "--json"])
        .arg(&site)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r = json(&out);
    assert_eq!((&r["commit"], &r["tree"]), (&j["commit"], &j["tree"]));
    let link = f.path("site/result");
    assert_eq!(generation_of(&link), j["tree"].as_str().unwrap());
    assert!(link.join("blocks/x/version.php").is_file());
    let out = f
        .mcb_with_store(&restored)
        .args(["verify"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn concurrent_realises_on_one_store_both_end_well() {
    let f = Fixture::new();
    let m = moodle_repo(f.path("moodle"));
    let a = dev_site(&f, &m, "a", "a");
    let b = dev_site(&f, &m, "b", "b");
    f.write("b/local_dev/lib.php", "<?php // b\n");
    let spawn = |site: &Path| {
        let mut c = std::process::Command::new(assert_cmd::cargo::cargo_bin!("mcb"));
        c.arg("--store")
            .arg(f.store())
            .args(["realise", "-q"])
            .arg(site);
        c.stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    // Two sites, and the same site twice, at once.
    let runs = [spawn(&a), spawn(&b), spawn(&a)];
    for r in runs {
        let out = r.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    f.mcb().arg("verify").assert().success();
    for dir in ["a", "b"] {
        f.mcb()
            .args(["verify", "--tree"])
            .arg(f.path(&format!("{dir}/result")))
            .assert()
            .success();
    }
    // gc beside a realise: it waits for the realise and removes nothing it uses.
    f.write("a/local_dev/lib.php", "<?php // newer\n");
    let realise = spawn(&a);
    std::thread::sleep(Duration::from_millis(50));
    let gc = f
        .mcb()
        .args(["gc", "--keep", "1", "--grace", "0"])
        .output()
        .unwrap();
    assert!(
        gc.status.success(),
        "{}",
        String::from_utf8_lossy(&gc.stderr)
    );
    let out = realise.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    f.mcb().arg("verify").assert().success();
    f.mcb()
        .args(["verify", "--tree"])
        .arg(f.path("a/result"))
        .assert()
        .success();
    assert!(
        std::fs::read_to_string(f.path("a/result/local/dev/lib.php"))
            .unwrap()
            .contains("newer")
    );
}

/// Builds a core big enough that a realise spends measurable time in every stage.
fn big_moodle(path: PathBuf) -> GitRepo {
    let r = moodle_repo(path);
    r.git(&["checkout", "-q", "v4.5.10"]);
    r.git(&["checkout", "-q", "-b", "big"]);
    for d in 0..60 {
        for i in 0..25 {
            r.write(
                &format!("big/d{d}/f{i}.php"),
                &format!("<?php // {d} {i} {}\n", "z".repeat(2000 + d * 7 + i)),
            );
        }
    }
    r.commit("big core");
    r.git(&["tag", "-d", "v4.5.10"]);
    r.tag("v4.5.10");
    r
}

#[test]
fn a_realise_killed_at_any_point_leaves_the_store_sound() {
    let f = Fixture::new();
    let m = big_moodle(f.path("moodle"));
    let site = dev_site(&f, &m, "k", "k");
    let mcb = assert_cmd::cargo::cargo_bin!("mcb");
    let store_of = |i: usize| f.path(&format!("store-{}", i / 12));
    // A first good state, in the first store.
    f.mcb_with_store(&store_of(0))
        .args(["realise", "-q"])
        .arg(&site)
        .assert()
        .success();

    // How long a cold and a warm run take here, to spread the kills over them.
    let t = Instant::now();
    f.mcb_with_store(&f.path("store-probe"))
        .args(["realise", "-q", "--out"])
        .arg(f.path("probe"))
        .arg(&site)
        .assert()
        .success();
    let cold = t.elapsed();
    let runs = 24;
    for i in 0..runs {
        // Runs 0..12 change the plugin in a warm store; 12..24 start in a cold one.
        let store = if i < 12 {
            store_of(0)
        } else {
            f.path(&format!("cold-{i}"))
        };
        f.write("k/local_dev/lib.php", format!("<?php // run {i}\n"));
        let before_lock = std::fs::read_to_string(f.path("k/site.lock")).unwrap();
        let before_gen = generation_of(&f.path("k/result"));
        let span = if i < 12 { cold / 2 } else { cold };
        let delay = span * (i as u32 % 12) / 12;
        let mut child = std::process::Command::new(mcb)
            .arg("--store")
            .arg(&store)
            .args(["realise", "-q"])
            .arg(&site)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(delay);
        let _ = child.kill();
        let _ = child.wait();

        // The store is sound (if the run got as far as making one), the lock is whole, the
        // result is a whole codebase.
        if store.join("VERSION").exists() {
            let v = f.mcb_with_store(&store).arg("verify").output().unwrap();
            assert!(
                v.status.success(),
                "run {i} (kill after {delay:?}): {}{}",
                String::from_utf8_lossy(&v.stdout),
                String::from_utf8_lossy(&v.stderr)
            );
        }
        let lock = std::fs::read_to_string(f.path("k/site.lock")).unwrap();
        assert!(lock.contains("tree:"), "run {i}: lock damaged");
        let result = f.path("k/result");
        // Either the old codebase or the complete new one, never a partial tree.
        let gen_now = generation_of(&result);
        if gen_now == before_gen {
            assert!(
                store_of_link(&result)
                    .join("generations")
                    .join(&before_gen)
                    .is_dir()
            );
        }
        if lock == before_lock {
            assert!(
                lock.contains(&before_gen) || gen_now != before_gen,
                "run {i}"
            );
        }
        let tree_check = f
            .mcb_with_store(&store_of_link(&result))
            .args(["verify", "--tree"])
            .arg(&result)
            .output()
            .unwrap();
        assert!(
            tree_check.status.success(),
            "run {i}: result tree incomplete: {}",
            String::from_utf8_lossy(&tree_check.stdout)
        );

        // And the next realise succeeds and agrees with itself.
        let j = json(
            &f.mcb_with_store(&store)
                .args(["realise", "--json"])
                .arg(&site)
                .output()
                .unwrap(),
        );
        assert_eq!(
            generation_of(&result),
            j["tree"].as_str().unwrap(),
            "run {i}"
        );
        assert!(
            std::fs::read_to_string(result.join("local/dev/lib.php"))
                .unwrap()
                .contains(&format!("run {i}"))
        );
        let lock = std::fs::read_to_string(f.path("k/site.lock")).unwrap();
        assert!(
            lock.contains(j["tree"].as_str().unwrap()),
            "run {i}: lock and result disagree"
        );
        // Interrupted staging is garbage that gc removes.
        f.mcb_with_store(&store)
            .args(["gc", "--grace", "0", "-q"])
            .assert()
            .success();
        let staging: Vec<_> = std::fs::read_dir(store.join("tmp")).unwrap().collect();
        assert!(staging.is_empty(), "run {i}: staging left after gc");
    }
}

/// The store a result link points into.
fn store_of_link(link: &Path) -> PathBuf {
    let target = std::fs::read_link(link).unwrap();
    target.parent().unwrap().parent().unwrap().to_path_buf()
}
