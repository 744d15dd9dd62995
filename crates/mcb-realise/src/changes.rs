//! What moves between two states of a site: the previous generation (or lock) and a plan
//! or a new lock. Every command that changes a site says it the same way — core, plugins
//! added, removed, upgraded, downgraded, rebuilt from other content, sources and links —
//! and the commit that records a generation carries the same lines.

use std::collections::BTreeMap;
use std::fmt;

use mcb_config::{Lock, SourceSpec};
use mcb_moodle::Build;

/// One component as a state of the site holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Held {
    /// The build number (`$plugin->version`, core's `$version`).
    pub version: String,
    /// What administrators see (`$plugin->release`, core's `$release` up to its build).
    pub release: Option<String>,
    /// What the site file asks for: `git`, `zip`, `path`, `directory`; `auto` for a
    /// dependency added automatically.
    pub kind: String,
    /// Where the content comes from, exactly ("git URL v1.2 (0123abcd…)").
    pub source: String,
    /// The plugin index it came from, when the site asks more than one.
    pub index: Option<String>,
}

impl Held {
    fn build(&self) -> Option<Build> {
        Build::parse(&self.version)
    }

    /// The release and the build: `3.1.7 (2025042700)`, or the build alone.
    fn full_label(&self) -> String {
        match &self.release {
            Some(r) if !r.is_empty() && *r != self.version => format!("{r} ({})", self.version),
            _ => self.version.clone(),
        }
    }

    /// How the version reads: the release when there is one, else the build.
    fn label(&self) -> String {
        match &self.release {
            Some(r) if !r.is_empty() => r.clone(),
            _ => self.version.clone(),
        }
    }
}

/// A state of a site, as far as what it runs goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    pub core: Held,
    pub plugins: BTreeMap<String, Held>,
    pub links: BTreeMap<String, String>,
}

/// Core's release as administrators say it: `4.5.1`, `4.5.5+` (without the build date).
pub(crate) fn core_release(release: &str) -> String {
    release
        .split(" (")
        .next()
        .unwrap_or(release)
        .trim()
        .to_string()
}

pub(crate) fn kind_of(request: Option<&SourceSpec>) -> String {
    request.map_or_else(|| "auto".to_string(), |r| r.kind().to_string())
}

impl Snapshot {
    pub fn of_lock(lock: &Lock) -> Snapshot {
        Snapshot {
            core: Held {
                version: lock.moodle.build.clone(),
                release: Some(core_release(&lock.moodle.release)),
                kind: lock.moodle.request.kind().to_string(),
                source: lock.moodle.source.label(),
                index: None,
            },
            plugins: lock
                .plugins
                .iter()
                .map(|p| {
                    (
                        p.component.clone(),
                        Held {
                            version: p.version.clone(),
                            release: p.release.clone(),
                            kind: kind_of(p.request.as_ref()),
                            source: p.source.label(),
                            index: match &p.source {
                                mcb_config::LockedSource::Directory { index, .. } => index.clone(),
                                _ => None,
                            },
                        },
                    )
                })
                .collect(),
            links: lock.links.clone(),
        }
    }

    /// What moves from `before` (none: a site's first generation) to `self`.
    pub fn changes_from(&self, before: Option<&Snapshot>) -> Vec<Change> {
        let mut out = Vec::new();
        let Some(before) = before else {
            out.push(Change::Core {
                from: None,
                to: self.core.label(),
                downgrade: false,
            });
            for (c, h) in &self.plugins {
                out.push(Change::Added {
                    component: c.clone(),
                    version: h.label(),
                    auto: h.kind == "auto",
                });
            }
            for (at, target) in &self.links {
                out.push(Change::Link {
                    path: at.clone(),
                    from: None,
                    to: Some(target.clone()),
                });
            }
            return out;
        };
        if let Some(c) = moved("moodle", &before.core, &self.core) {
            out.push(match c {
                Change::Upgraded { from, to, .. } => Change::Core {
                    from: Some(from),
                    to,
                    downgrade: false,
                },
                Change::Downgraded { from, to, .. } => Change::Core {
                    from: Some(from),
                    to,
                    downgrade: true,
                },
                other => other,
            });
        }
        if before.core.kind != self.core.kind {
            out.push(Change::Source {
                component: "moodle".into(),
                from: before.core.kind.clone(),
                to: self.core.kind.clone(),
            });
        }
        for (c, h) in &self.plugins {
            let Some(was) = before.plugins.get(c) else {
                out.push(Change::Added {
                    component: c.clone(),
                    version: h.label(),
                    auto: h.kind == "auto",
                });
                continue;
            };
            if let Some(m) = moved(c, was, h) {
                out.push(m);
            }
            if was.kind != h.kind {
                out.push(Change::Source {
                    component: c.clone(),
                    from: was.kind.clone(),
                    to: h.kind.clone(),
                });
            } else if let (Some(a), Some(b)) = (&was.index, &h.index)
                && a != b
            {
                // Another plugin index: as much a change of source as git → directory.
                out.push(Change::Source {
                    component: c.clone(),
                    from: format!("index {a}"),
                    to: format!("index {b}"),
                });
            }
        }
        for (c, was) in &before.plugins {
            if !self.plugins.contains_key(c) {
                out.push(Change::Removed {
                    component: c.clone(),
                    version: was.label(),
                    auto: was.kind == "auto",
                });
            }
        }
        let paths: std::collections::BTreeSet<&String> =
            before.links.keys().chain(self.links.keys()).collect();
        for at in paths {
            let (from, to) = (before.links.get(at), self.links.get(at));
            if from != to {
                out.push(Change::Link {
                    path: at.clone(),
                    from: from.cloned(),
                    to: to.cloned(),
                });
            }
        }
        out
    }

    /// What would go down against `previous`: core's build or any plugin's version. Moodle
    /// refuses older code against a database that has run the newer one.
    pub fn downgrades_from(&self, previous: &Snapshot) -> Vec<Downgrade> {
        let down = |component: &str, was: &Held, now: &Held| {
            matches!((was.build(), now.build()), (Some(f), Some(t)) if t < f).then(|| Downgrade {
                component: component.to_string(),
                from: was.full_label(),
                to: now.full_label(),
            })
        };
        let mut out: Vec<Downgrade> = down("moodle", &previous.core, &self.core)
            .into_iter()
            .collect();
        for (c, now) in &self.plugins {
            if let Some(was) = previous.plugins.get(c)
                && let Some(d) = down(c, was, now)
            {
                out.push(d);
            }
        }
        out
    }
}

/// How a component moved, if it did: up, down, or the same version from other content.
fn moved(component: &str, was: &Held, now: &Held) -> Option<Change> {
    let (from, to) = labels(was, now);
    match (was.build(), now.build()) {
        (Some(f), Some(t)) if t > f => Some(Change::Upgraded {
            component: component.into(),
            from,
            to,
        }),
        (Some(f), Some(t)) if t < f => Some(Change::Downgraded {
            component: component.into(),
            from,
            to,
        }),
        _ if was.version != now.version => Some(Change::Upgraded {
            component: component.into(),
            from,
            to,
        }),
        _ if was.source != now.source => Some(Change::Rebuilt {
            component: component.into(),
            version: now.label(),
            from: was.source.clone(),
            to: now.source.clone(),
        }),
        _ => None,
    }
}

/// The two versions as they read: releases, or build numbers when the releases are equal
/// (a weekly build of `4.5.5+`, a plugin that did not bump its release).
fn labels(was: &Held, now: &Held) -> (String, String) {
    let (f, t) = (was.label(), now.label());
    if f == t && was.version != now.version {
        (
            format!("{f} ({})", was.version),
            format!("{t} ({})", now.version),
        )
    } else {
        (f, t)
    }
}

/// One thing that moves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Core {
        from: Option<String>,
        to: String,
        /// The new core build is older: Moodle refuses it against an upgraded database.
        downgrade: bool,
    },
    Added {
        component: String,
        version: String,
        auto: bool,
    },
    Removed {
        component: String,
        version: String,
        auto: bool,
    },
    Upgraded {
        component: String,
        from: String,
        to: String,
    },
    /// Moodle refuses older code against a database that ran the newer one: dangerous.
    Downgraded {
        component: String,
        from: String,
        to: String,
    },
    /// The same version from other content (another commit, another zip).
    Rebuilt {
        component: String,
        version: String,
        from: String,
        to: String,
    },
    /// What the site file asks for changed kind (git → directory).
    Source {
        component: String,
        from: String,
        to: String,
    },
    Link {
        path: String,
        from: Option<String>,
        to: Option<String>,
    },
}

impl Change {
    /// Does this change put older code on a site?
    pub fn is_dangerous(&self) -> bool {
        matches!(
            self,
            Change::Core {
                downgrade: true,
                ..
            } | Change::Downgraded { .. }
        )
    }
}

const DANGER: &str = "DOWNGRADE: Moodle refuses older code against a database that ran newer code";

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Change::Core { from: None, to, .. } => write!(f, "+ moodle {to}"),
            Change::Core {
                from: Some(from),
                to,
                downgrade,
            } => {
                write!(f, "  moodle {from} → {to}")?;
                if *downgrade {
                    write!(f, "  {DANGER}")?;
                }
                Ok(())
            }
            Change::Added {
                component,
                version,
                auto,
            } => write!(
                f,
                "+ {component} {version}{}",
                if *auto { " (auto)" } else { "" }
            ),
            Change::Removed {
                component,
                version,
                auto,
            } => write!(
                f,
                "- {component} {version}{}",
                if *auto { " (auto)" } else { "" }
            ),
            Change::Upgraded {
                component,
                from,
                to,
            } => write!(f, "  {component} {from} → {to}"),
            Change::Downgraded {
                component,
                from,
                to,
            } => write!(f, "! {component} {from} → {to}  {DANGER}"),
            Change::Rebuilt {
                component,
                version,
                from,
                to,
            } => write!(f, "~ {component} {version}: {from} → {to}"),
            Change::Source {
                component,
                from,
                to,
            } => write!(f, "~ {component} source {from} → {to}"),
            Change::Link { path, from, to } => match (from, to) {
                (None, Some(t)) => write!(f, "+ link {path} → {t}"),
                (Some(was), None) => write!(f, "- link {path} (was → {was})"),
                (Some(was), Some(t)) => write!(f, "~ link {path} → {t} (was → {was})"),
                (None, None) => Ok(()),
            },
        }
    }
}

/// A component whose version would go down.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Downgrade {
    pub component: String,
    pub from: String,
    pub to: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn held(version: &str, release: Option<&str>, kind: &str, source: &str) -> Held {
        Held {
            version: version.into(),
            release: release.map(Into::into),
            kind: kind.into(),
            source: source.into(),
            index: None,
        }
    }

    fn snapshot(core: Held, plugins: &[(&str, Held)]) -> Snapshot {
        Snapshot {
            core,
            plugins: plugins
                .iter()
                .map(|(c, h)| (c.to_string(), h.clone()))
                .collect(),
            links: BTreeMap::new(),
        }
    }

    #[test]
    fn every_kind_of_move_reads_as_one_line() {
        let before = snapshot(
            held("2024100701", Some("4.5.1"), "git", "git m v4.5.1 (a)"),
            &[
                (
                    "local_mailtest",
                    held("2024062800", Some("3.1.6"), "git", "g1"),
                ),
                ("block_y", held("2024010100", None, "directory", "d1")),
                ("mod_down", held("2024050100", Some("2.0"), "git", "g2")),
                ("mod_same", held("2024050100", Some("1.0"), "git", "g3")),
                ("mod_moved", held("2024050100", Some("1.0"), "git", "g4")),
            ],
        );
        let after = snapshot(
            held("2024100702", Some("4.5.2"), "git", "git m v4.5.2 (b)"),
            &[
                (
                    "local_mailtest",
                    held("2025042700", Some("3.1.7"), "git", "g1'"),
                ),
                ("filter_x", held("2024010100", None, "auto", "d2")),
                ("mod_down", held("2024040100", Some("1.9"), "git", "g2'")),
                ("mod_same", held("2024050100", Some("1.0"), "git", "g3'")),
                (
                    "mod_moved",
                    held("2024050100", Some("1.0"), "directory", "g4"),
                ),
            ],
        );
        let lines: Vec<String> = after
            .changes_from(Some(&before))
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            lines,
            [
                "  moodle 4.5.1 → 4.5.2",
                "+ filter_x 2024010100 (auto)",
                "  local_mailtest 3.1.6 → 3.1.7",
                "! mod_down 2.0 → 1.9  DOWNGRADE: Moodle refuses older code against a database that ran newer code",
                "~ mod_moved source git → directory",
                "~ mod_same 1.0: g3 → g3'",
                "- block_y 2024010100",
            ]
        );
        let down = after.downgrades_from(&before);
        assert_eq!(down.len(), 1);
        assert_eq!(down[0].component, "mod_down");
        assert!(after.changes_from(Some(&after)).is_empty());
    }

    #[test]
    fn a_weekly_build_of_one_release_shows_its_builds() {
        let before = snapshot(held("2024100705.01", Some("4.5.5+"), "git", "a"), &[]);
        let after = snapshot(held("2024100705.02", Some("4.5.5+"), "git", "b"), &[]);
        let c = after.changes_from(Some(&before));
        assert_eq!(
            c[0].to_string(),
            "  moodle 4.5.5+ (2024100705.01) → 4.5.5+ (2024100705.02)"
        );
        let back = before.changes_from(Some(&after));
        assert!(back[0].is_dangerous());
    }
}
