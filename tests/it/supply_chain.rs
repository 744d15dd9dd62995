//! Supply chain: what enters the store passes the site's virus scanner first (a real
//! ClamAV, with a signature database the test writes: these machines cannot download
//! ClamAV's), and a scanner that cannot scan is an error, never a pass.

use crate::support::*;

/// The EICAR anti-virus test file, put together at run time so that no scanner flags this
/// source file itself.
fn eicar() -> String {
    let head = ["X5O!P%@AP[4\\PZX54(P^)7CC)7}$", "EICAR-STANDARD-ANTIVIRUS"];
    format!("{}{}-TEST-FILE!$H+H*", head[0], head[1])
}

/// `clamscan`, which `.ci/run` installs (Debian's `clamav`).
fn clamscan() -> &'static str {
    let ok = std::process::Command::new("clamscan")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        ok,
        "clamscan is needed (Debian's clamav; .ci/run installs it)"
    );
    "clamscan"
}

#[test]
fn a_package_the_scanner_flags_never_enters_the_store() {
    let scanner = clamscan();
    let f = Fixture::new();
    let m = moodle_repo(f.path("moodle"));
    let virus = eicar();
    assert_eq!(virus.len(), 68);
    // ClamAV's hash signature format: md5:size:name.
    let digest = {
        use md5::Digest;
        hex::encode(md5::Md5::digest(virus.as_bytes()))
    };
    let db = f.write(
        "sigs/eicar.hdb",
        format!("{digest}:68:Eicar-Test-Signature\n"),
    );
    let version = plugin_php("local_z", 2024100100, "2024100700", "");
    f.write(
        "z.zip",
        zip_bytes(&[
            ("local_z/version.php", &version, 0o644),
            ("local_z/files/readme.txt", &virus, 0o644),
        ]),
    );
    let scan = format!(
        "scan: [{scanner:?}, \"-d\", {:?}],",
        db.display().to_string()
    );
    let write_site = |scan: &str| {
        let text = Site::new("s1")
            .core(m.url(), "4.5")
            .plugin("local_z", Src::zip("../z.zip"))
            .ron()
            .replace("\n)\n", &format!("\n    {scan}\n)\n"));
        f.write("site/site.ron", text)
    };
    let site = write_site(&scan);
    let out = f.run(&["realise", s(&site)]);
    assert_eq!(code(&out), 5, "{}", said(&out));
    let t = said(&out);
    assert!(t.contains("Eicar-Test-Signature"), "{t}");
    assert!(t.contains("files/readme.txt"), "{t}");
    assert!(!f.path("site/result").exists(), "nothing was built");
    assert!(!f.path("site/site.lock").exists(), "nothing was locked");
    crate::snapshots::settings(&f)
        .bind(|| insta::assert_snapshot!("scan-refused", crate::snapshots::shown(&out)));

    // The same plugin without the file: scanned, passed, built.
    f.write(
        "z.zip",
        zip_bytes(&[("local_z/version.php", &version, 0o644)]),
    );
    f.realise_ok(&site);

    // A scanner that cannot scan (no signature database) stops the run: never a pass. (A
    // new package to scan: the zip changes, and the lock goes so it is read again.)
    std::fs::remove_file(f.path("site/site.lock")).unwrap();
    f.write(
        "z.zip",
        zip_bytes(&[
            ("local_z/version.php", &version, 0o644),
            ("local_z/more.txt", "new content to scan", 0o644),
        ]),
    );
    let site = write_site(&format!(
        "scan: [{scanner:?}, \"-d\", \"/nonexistent/db.hdb\"],"
    ));
    let out = f.run(&["realise", s(&site)]);
    assert_eq!(code(&out), 5, "{}", said(&out));
    assert!(said(&out).contains("could not scan"), "{}", said(&out));
    let site = write_site("scan: [\"no-such-scanner\"],");
    let out = f.run(&["realise", s(&site)]);
    assert_eq!(code(&out), 5, "{}", said(&out));
    assert!(
        said(&out).contains("cannot run the scanner no-such-scanner"),
        "{}",
        said(&out)
    );
}
