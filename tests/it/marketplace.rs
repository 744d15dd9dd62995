//! The Moodle Marketplace: a token sent only to the hosts it belongs to (redirects
//! included), downloads through the Marketplace API, and 401 / 402 said as what they mean.

use crate::snapshots::{settings, shown};
use crate::support::directory::{Published, publish};
use crate::support::http::{Response, Server};
use crate::support::*;

const ZIP: &str = "/download/10000/mod_t_2024100800.zip";

fn site(f: &Fixture, m: &GitRepo, list: &str) -> std::path::PathBuf {
    f.site(
        &Site::new("mp")
            .core(m.url(), "4.5")
            .plugin("mod_t", Src::index())
            .directory(list),
    )
}

fn auth(r: &crate::support::http::Request) -> Option<&str> {
    r.headers.get("authorization").map(String::as_str)
}

fn host(s: &Server) -> String {
    format!("127.0.0.1:{}", s.port)
}

#[test]
fn the_token_follows_redirects_only_to_the_hosts_named() {
    let f = Fixture::new();
    let m = moodle_repo(f.path("moodle"));
    let (list_host, relay, market, third) = (
        Server::start(),
        Server::start(),
        Server::start(),
        Server::start(),
    );
    let list = publish(
        &list_host,
        &relay,
        &[Published::new("mod_t", 2024100800, "2024100700", &["4.5"])],
    );
    // The list's URL goes through a relay to the Marketplace, which hands over to a CDN.
    let zip = relay.body(ZIP);
    relay.set(
        ZIP,
        Response::status(302).header("Location", &market.url("/hop")),
    );
    market.set(
        "/hop",
        Response::status(302).header("Location", &third.url("/cdn/t.zip")),
    );
    third.set("/cdn/t.zip", Response::ok(zip));
    let out = f
        .mcb()
        .env("MCB_MARKETPLACE_TOKEN", "s3cret")
        .env(
            "MCB_MARKETPLACE_HOSTS",
            format!("{},{}", host(&list_host), host(&market)),
        )
        .args(["realise", "--json"])
        .arg(site(&f, &m, &list))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(auth(&list_host.requests()[0]), Some("Bearer s3cret"));
    assert_eq!(auth(&relay.requests()[0]), None, "not a host named");
    assert_eq!(auth(&market.requests()[0]), Some("Bearer s3cret"));
    assert_eq!(
        auth(&third.requests()[0]),
        None,
        "a redirect does not carry it on"
    );
    // Never written down.
    let lock = std::fs::read_to_string(f.path("site/site.lock")).unwrap();
    assert!(!lock.contains("s3cret"));
    let grep = std::process::Command::new("grep")
        .args(["-r", "-l", "s3cret"])
        .arg(f.store())
        .output()
        .unwrap();
    assert!(
        grep.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&grep.stdout)
    );
}

/// A list whose zip lives on the Marketplace double, whose API answers `api`.
fn on_marketplace(f: &Fixture, api: Response) -> (std::path::PathBuf, Server, Server) {
    let m = moodle_repo(f.path("moodle"));
    let (list_host, market) = (Server::start(), Server::start());
    let list = publish(
        &list_host,
        &market,
        &[Published::new("mod_t", 2024100800, "2024100700", &["4.5"])],
    );
    let zip = market.body(ZIP);
    market.set(ZIP, Response::status(404));
    let api = if api.status == 200 {
        Response::ok(zip)
    } else {
        api
    };
    market.set("/api/plugins/mod_t/versions/2024100800/download", api);
    (site(f, &m, &list), list_host, market)
}

#[test]
fn a_marketplace_zip_is_downloaded_through_the_api_with_the_token() {
    let f = Fixture::new();
    let (site, _list, market) = on_marketplace(&f, Response::ok(""));
    let out = f
        .mcb()
        .env("MCB_MARKETPLACE_TOKEN", "s3cret")
        .env("MCB_MARKETPLACE_API", market.url("/api"))
        .args(["realise", "--json"])
        .arg(&site)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let calls = market.requests_to("/api/plugins/mod_t/versions/2024100800/download");
    assert_eq!(calls.len(), 1);
    assert_eq!(auth(&calls[0]), Some("Bearer s3cret"));
    // The lock names the directory's URL, checked by md5 and blake3 like any zip.
    let lock = std::fs::read_to_string(f.path("site/site.lock")).unwrap();
    assert!(lock.contains(ZIP), "{lock}");
    assert!(!lock.contains("/api/"), "{lock}");
}

#[test]
fn unauthorised_and_payment_required_say_what_to_do() {
    let problem = |status: u16, title: &str, detail: &str| {
        let mut r = Response::status(status).header("Content-Type", "application/problem+json");
        r.body = serde_json::to_vec(&serde_json::json!({
            "type": "about:blank", "title": title, "status": status, "detail": detail
        }))
        .unwrap();
        r
    };
    for (status, name, title, detail, needle) in [
        (
            401,
            "marketplace-401",
            "Unauthorized",
            "A Marketplace subscription is required.",
            "the Marketplace needs a token for mod_t 2024100800",
        ),
        (
            402,
            "marketplace-402",
            "Payment Required",
            "This plugin is sold on the Marketplace.",
            "mod_t 2024100800 must be purchased on the Marketplace",
        ),
    ] {
        let f = Fixture::new();
        let (site, _list, market) = on_marketplace(&f, problem(status, title, detail));
        let out = f
            .mcb()
            .env("MCB_MARKETPLACE_TOKEN", "wrong")
            .env("MCB_MARKETPLACE_API", market.url("/api"))
            .arg("realise")
            .arg(&site)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(5), "{err}");
        assert!(err.contains(needle), "{err}");
        assert!(err.contains(detail), "{err}");
        assert!(!err.contains("wrong"), "the token is never printed: {err}");
        settings(&f).bind(|| insta::assert_snapshot!(name, shown(&out)));
    }
}

#[test]
fn a_direct_download_answering_401_names_the_url_without_its_query() {
    let f = Fixture::new();
    let m = moodle_repo(f.path("moodle"));
    let s = Server::start();
    let list = publish(
        &s,
        &s,
        &[Published::new("mod_t", 2024100800, "2024100700", &["4.5"])],
    );
    // The list points at a Marketplace URL with a key in its query string.
    let body = String::from_utf8(s.body("/api/1.3/pluglist.php")).unwrap();
    let keyed = body.replace(".zip\"", ".zip?key=k3y\"");
    s.set("/api/1.3/pluglist.php", Response::ok(keyed));
    s.set(ZIP, Response::status(401));
    let out = f
        .mcb()
        .arg("realise")
        .arg(site(&f, &m, &list))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(5), "{err}");
    assert!(err.contains("answered 401"), "{err}");
    assert!(!err.contains("k3y"), "{err}");
}

#[test]
fn a_site_mixing_list_marketplace_composer_and_git_realises_and_reproduces() {
    let f = Fixture::new();
    let m = moodle_repo(f.path("moodle"));
    let (list_host, market, packages) = (Server::start(), Server::start(), Server::start());
    // The list: mod_free downloads from the list's host, mod_t from the Marketplace.
    let free = Published::new("mod_free", 2024100800, "2024100700", &["4.5"]);
    let paid = Published::new("mod_t", 2024100800, "2024100700", &["4.5"]);
    let list = publish(&list_host, &list_host, &[free]);
    let free_zip = list_host.body("/download/10000/mod_free_2024100800.zip");
    let list_body = publish(&list_host, &market, &[paid]);
    assert_eq!(list, list_body);
    let paid_zip = market.body(ZIP);
    market.set(ZIP, Response::status(401));
    market.set(
        "/api/plugins/mod_t/versions/2024100800/download",
        Response::ok(paid_zip),
    );
    // One list with both: mod_free's zip on the list host, mod_t's on the Marketplace.
    let mut doc: serde_json::Value =
        serde_json::from_slice(&list_host.body("/api/1.3/pluglist.php")).unwrap();
    let mut free_record = doc["plugins"][0].clone();
    free_record["component"] = "mod_free".into();
    free_record["id"] = 900.into();
    free_record["versions"][0]["id"] = 20000.into();
    free_record["versions"][0]["downloadurl"] = list_host.url("/free.zip").into();
    free_record["versions"][0]["downloadmd5"] =
        crate::support::directory::md5_hex(&free_zip).into();
    doc["plugins"].as_array_mut().unwrap().push(free_record);
    list_host.set("/free.zip", Response::ok(free_zip));
    list_host.set(
        "/api/1.3/pluglist.php",
        Response::ok(serde_json::to_vec(&doc).unwrap()),
    );
    // A Composer repository with one package.
    let dist = zip_bytes(&[(
        "acme-moodle-local_c-1/version.php",
        &plugin_php("local_c", 2024090100, "2024100700", ""),
        0o644,
    )]);
    let dist_sum = {
        use sha1::Digest;
        hex::encode(sha1::Sha1::digest(&dist))
    };
    packages.set("/dist/local_c.zip", Response::ok(dist));
    packages.set(
        "/packages.json",
        Response::ok(r#"{"packages": [], "metadata-url": "/p2/%package%.json"}"#),
    );
    packages.set(
        "/p2/acme/moodle-local_c.json",
        Response::ok(
            serde_json::to_vec(&serde_json::json!({"packages": {"acme/moodle-local_c": [
                {"name": "acme/moodle-local_c", "version": "1.2.0", "type": "moodle-local",
                 "dist": {"type": "zip", "url": packages.url("/dist/local_c.zip"), "shasum": dist_sum}}
            ]}}))
            .unwrap(),
        ),
    );
    let g = plugin_repo(
        f.path("block_g"),
        &[("v1.0", plugin_php("block_g", 2024100100, "2024100700", ""))],
    );
    let site = f.write(
        "site/site.ron",
        format!(
            "Site(\n    name: \"mixed\",\n    moodle: (version: \"4.5\", git: \"{}\"),\n    plugins: {{\n        \"mod_free\": (),\n        \"mod_t\": (),\n        \"local_c\": (composer: \"acme/moodle-local_c\"),\n        \"block_g\": (git: \"{}\"),\n    }},\n    directory: \"{list}\",\n    composer_repositories: [\"{}\"],\n)\n",
            m.url(),
            g.url(),
            packages.url("")
        ),
    );
    let env = |c: &mut Mcb| {
        c.env("MCB_MARKETPLACE_TOKEN", "s3cret")
            .env("MCB_MARKETPLACE_API", market.url("/api"));
    };
    let mut c = f.mcb();
    env(&mut c);
    let out = c.args(["realise", "--json"]).arg(&site).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let j: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    for c in ["mod_free", "mod_t", "local_c", "block_g"] {
        assert!(j["plugins"][c]["version"].is_string(), "{c}: {j}");
    }
    let lock = std::fs::read_to_string(f.path("site/site.lock")).unwrap();
    assert!(lock.contains("/free.zip"), "{lock}");
    assert!(lock.contains(ZIP), "{lock}");
    assert!(lock.contains("package: \"acme/moodle-local_c\""), "{lock}");
    assert!(lock.contains("Git("), "{lock}");
    assert!(!lock.contains("s3cret"));
    // reproduce rebuilds it all from its origins in an empty store.
    let mut c = f.mcb();
    env(&mut c);
    let out = c
        .args(["reproduce", "--json"])
        .arg(f.path("site/site.lock"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["same"], true, "{r}");
    assert_eq!(
        market
            .requests_to("/api/plugins/mod_t/versions/2024100800/download")
            .len(),
        2,
        "the realise and the reproduce, both through the API"
    );
}

/// A server that answers with the token it was sent (in a problem's title and detail, in
/// a redirect's query) never gets it printed: not on stderr, not in `--json`.
#[test]
fn a_token_a_server_sends_back_is_never_printed() {
    const TOKEN: &str = "tok-4f2a9c81e3";
    let f = Fixture::new();
    let mut echo = Response::status(401).header("Content-Type", "application/problem+json");
    echo.body = serde_json::to_vec(&serde_json::json!({
        "title": format!("Bad token {TOKEN}"),
        "detail": format!("The bearer token '{TOKEN}' has expired"),
        "status": 401
    }))
    .unwrap();
    let (site, _list, market) = on_marketplace(&f, echo);
    let out = f
        .mcb()
        .env("MCB_MARKETPLACE_TOKEN", TOKEN)
        .env("MCB_MARKETPLACE_API", market.url("/api"))
        .args(["realise", "--json", "-v"])
        .arg(&site)
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert_eq!(out.status.code(), Some(5), "{stderr}");
    // The token went to the Marketplace, and came back.
    let calls = market.requests_to("/api/plugins/mod_t/versions/2024100800/download");
    assert_eq!(
        auth(&calls[0]).map(str::to_string),
        Some(format!("Bearer {TOKEN}"))
    );
    assert!(stderr.contains("has expired"), "{stderr}");
    assert!(stderr.contains("[token]"), "{stderr}");
    for text in [&stdout, &stderr] {
        assert!(!text.contains(TOKEN), "the token was printed: {text}");
    }
    for entry in walkdir::WalkDir::new(f.path("site"))
        .into_iter()
        .chain(walkdir::WalkDir::new(f.store()))
        .flatten()
    {
        if entry.file_type().is_file() {
            let text = std::fs::read(entry.path()).unwrap();
            assert!(!text.windows(TOKEN.len()).any(|w| w == TOKEN.as_bytes()));
        }
    }
}
