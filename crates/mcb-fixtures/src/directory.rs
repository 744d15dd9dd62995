//! A plugins directory on loopback: `pluglist.php` in the real format (see
//! shared/reference/pluglist-record-tool_opcache.json) and real zips, served by the test
//! HTTP server.

use md5::{Digest, Md5};
use serde_json::json;

use super::http::{Response, Server};
use super::{plugin_php, zip_bytes};

/// One version of one plugin to publish.
pub struct Published {
    pub component: &'static str,
    pub version: u64,
    pub requires: &'static str,
    pub supports: &'static [&'static str],
    pub maturity: u32,
    /// Appended to version.php (dependencies, incompatible, ...).
    pub extra: String,
    /// When the directory says it was released (default: November 2023).
    pub created: Option<i64>,
}

impl Published {
    pub fn new(
        component: &'static str,
        version: u64,
        requires: &'static str,
        supports: &'static [&'static str],
    ) -> Published {
        Published {
            component,
            version,
            requires,
            supports,
            maturity: 200,
            extra: String::new(),
            created: None,
        }
    }

    pub fn extra(mut self, php: &str) -> Published {
        self.extra = php.to_string();
        self
    }

    /// Released at `secs` since the epoch.
    pub fn created(mut self, secs: i64) -> Published {
        self.created = Some(secs);
        self
    }

    pub fn maturity(mut self, m: u32) -> Published {
        self.maturity = m;
        self
    }

    pub fn zip(&self) -> Vec<u8> {
        let dir = self.component;
        zip_bytes(&[
            (
                &format!("{dir}/version.php"),
                &plugin_php(self.component, self.version, self.requires, &self.extra),
                0o644,
            ),
            (
                &format!("{dir}/lib.php"),
                &format!("<?php // {} {}\n", self.component, self.version),
                0o644,
            ),
        ])
    }
}

pub fn md5_hex(bytes: &[u8]) -> String {
    hex::encode(Md5::digest(bytes))
}

/// Publishes `versions` on `server` (list at /api/1.3/pluglist.php, zips at
/// /download/<id>.zip on `zips`, which may be another server) and returns the list URL.
pub fn publish(server: &Server, zips: &Server, versions: &[Published]) -> String {
    let mut by_component: std::collections::BTreeMap<&str, Vec<serde_json::Value>> =
        Default::default();
    for (i, v) in versions.iter().enumerate() {
        let id = 10_000 + i as u64;
        let bytes = v.zip();
        let path = format!("/download/{id}/{}_{}.zip", v.component, v.version);
        let md5 = md5_hex(&bytes);
        zips.set(&path, Response::ok(bytes));
        by_component.entry(v.component).or_default().push(json!({
            "id": id,
            "version": v.version.to_string(),
            "release": format!("r{}", v.version),
            "maturity": v.maturity,
            "downloadurl": zips.url(&path),
            "downloadmd5": md5,
            "vcssystem": "git",
            "vcssystemother": null,
            "vcsrepositoryurl": "https://example.invalid/repo",
            "vcsbranch": null,
            "vcstag": format!("v{}", v.version),
            "timecreated": v.created.unwrap_or(1700000000 + i as i64),
            "supportedmoodles": v.supports.iter().map(|r| json!({"version": 2024100700, "release": r})).collect::<Vec<_>>(),
        }));
    }
    let plugins: Vec<serde_json::Value> = by_component
        .into_iter()
        .enumerate()
        .map(|(i, (component, versions))| {
            json!({
                "id": 500 + i,
                "name": format!("Plugin {component}"),
                "component": component,
                "source": "https://example.invalid/repo",
                "doc": null, "bugs": null, "discussion": null,
                "timelastreleased": 1761988454,
                "versions": versions,
            })
        })
        .collect();
    let body = serde_json::to_vec(&json!({ "timestamp": 1761988454, "plugins": plugins })).unwrap();
    let etag = format!("\"{}\"", &md5_hex(&body)[..12]);
    server.set(
        "/api/1.3/pluglist.php",
        Response::ok(body).header("ETag", &etag),
    );
    server.url("/api/1.3/pluglist.php")
}
