//! Composer's version syntax, as a site file's `version` says it for a `composer:` source:
//! exact versions, wildcards (`2.1.*`), comparisons (`>=2.1 <3`), `^` and `~`, hyphen
//! ranges (`2.0 - 2.3`), and `||` between alternatives. Only stable releases match unless
//! a bound names a pre-release; branches (`dev-main`, `2.x-dev`) never do.

use std::cmp::Ordering;
use std::fmt;

/// A release's stability, lowest first, as Composer orders them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Stability {
    Alpha,
    Beta,
    Rc,
    Stable,
}

/// A package version: up to four numbers and a stability with its number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComposerVersion {
    parts: [u64; 4],
    stability: Stability,
    pre: u64,
}

impl ComposerVersion {
    /// `2.1`, `v2.1.3`, `2.1.3.0`, `2.1.0-beta2`, `2.1.0-RC1`; `None` for a branch or text.
    pub fn parse(text: &str) -> Option<ComposerVersion> {
        let t = text.trim();
        let t = t.strip_prefix(['v', 'V']).unwrap_or(t);
        if t.is_empty() || t.starts_with("dev-") || t.ends_with("-dev") {
            return None;
        }
        let (nums, suffix) = match t.find(['-', '+']) {
            Some(i) => (&t[..i], &t[i + 1..]),
            None => {
                // `2.1.0beta1` is written too.
                match t.find(|c: char| c.is_ascii_alphabetic()) {
                    Some(i) => (&t[..i], &t[i..]),
                    None => (t, ""),
                }
            }
        };
        let mut parts = [0u64; 4];
        for (n, p) in nums.split('.').enumerate() {
            if n == 4 || p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            parts[n] = p.parse().ok()?;
        }
        let lower = suffix.to_ascii_lowercase();
        let lower = lower.trim_start_matches(['.', '-']);
        let (stability, rest) = if lower.is_empty() || lower == "stable" || lower.starts_with("p") {
            (Stability::Stable, "")
        } else if let Some(r) = lower.strip_prefix("alpha").or(lower.strip_prefix("a")) {
            (Stability::Alpha, r)
        } else if let Some(r) = lower.strip_prefix("beta").or(lower.strip_prefix("b")) {
            (Stability::Beta, r)
        } else if let Some(r) = lower.strip_prefix("rc") {
            (Stability::Rc, r)
        } else {
            return None;
        };
        let rest = rest.trim_start_matches(['.', '-']);
        let pre = if rest.is_empty() {
            0
        } else {
            rest.parse().ok()?
        };
        Some(ComposerVersion {
            parts,
            stability,
            pre,
        })
    }

    pub fn is_stable(&self) -> bool {
        self.stability == Stability::Stable
    }

    /// The lowest pre-release of `parts` (the lower bound of `^2.1`, which takes 2.1.0's
    /// pre-releases only when asked).
    fn lowest(parts: [u64; 4]) -> ComposerVersion {
        ComposerVersion {
            parts,
            stability: Stability::Alpha,
            pre: 0,
        }
    }
}

impl Ord for ComposerVersion {
    fn cmp(&self, other: &Self) -> Ordering {
        self.parts
            .cmp(&other.parts)
            .then(self.stability.cmp(&other.stability))
            .then(self.pre.cmp(&other.pre))
    }
}

impl PartialOrd for ComposerVersion {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Op {
    Ge,
    Gt,
    Le,
    Lt,
    Eq,
    Ne,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Bound {
    op: Op,
    version: ComposerVersion,
}

impl Bound {
    fn holds(&self, v: &ComposerVersion) -> bool {
        match self.op {
            Op::Ge => v >= &self.version,
            Op::Gt => v > &self.version,
            Op::Le => v <= &self.version,
            Op::Lt => v < &self.version,
            Op::Eq => v == &self.version,
            Op::Ne => v != &self.version,
        }
    }
}

/// A Composer version constraint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Constraint {
    text: String,
    /// Alternatives, each a conjunction of bounds.
    any: Vec<Vec<Bound>>,
    /// A bound names a pre-release: pre-releases may match.
    pre: bool,
}

impl fmt::Display for Constraint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// The numbers written in `text` (`2.1` → [2, 1]) and the version they make.
fn numbers(text: &str) -> Option<(Vec<u64>, ComposerVersion)> {
    let v = ComposerVersion::parse(text)?;
    let t = text.trim().trim_start_matches(['v', 'V']);
    let nums = t.split(['-', '+']).next().unwrap_or(t);
    let given: Vec<u64> = nums
        .split('.')
        .take_while(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
        .filter_map(|p| p.parse().ok())
        .collect();
    Some((given, v))
}

fn parts_of(given: &[u64]) -> [u64; 4] {
    let mut p = [0u64; 4];
    for (i, n) in given.iter().take(4).enumerate() {
        p[i] = *n;
    }
    p
}

/// `given` with its last number raised by one and the rest zeroed.
fn next(given: &[u64], at: usize) -> [u64; 4] {
    let mut p = parts_of(&given[..=at]);
    p[at] += 1;
    p
}

fn term(t: &str) -> Option<Vec<Bound>> {
    let t = t.trim();
    let b = |op: Op, version: ComposerVersion| Bound { op, version };
    if t == "*" || t.is_empty() {
        return Some(vec![b(Op::Ge, ComposerVersion::lowest([0; 4]))]);
    }
    if let Some(w) = t.strip_suffix(".*").or(t.strip_suffix(".x")) {
        let (given, _) = numbers(w)?;
        let last = given.len().checked_sub(1)?;
        return Some(vec![
            b(Op::Ge, ComposerVersion::lowest(parts_of(&given))),
            b(Op::Lt, ComposerVersion::lowest(next(&given, last))),
        ]);
    }
    if let Some(r) = t.strip_prefix('^') {
        let (given, v) = numbers(r)?;
        // The first non-zero number is the one that may not change.
        let at = given
            .iter()
            .position(|n| *n != 0)
            .unwrap_or(given.len().saturating_sub(1));
        return Some(vec![
            b(Op::Ge, v),
            b(Op::Lt, ComposerVersion::lowest(next(&given, at))),
        ]);
    }
    if let Some(r) = t.strip_prefix('~') {
        let (given, v) = numbers(r)?;
        let at = given.len().saturating_sub(2);
        return Some(vec![
            b(Op::Ge, v),
            b(Op::Lt, ComposerVersion::lowest(next(&given, at))),
        ]);
    }
    for (prefix, op) in [
        (">=", Op::Ge),
        ("<=", Op::Le),
        ("!=", Op::Ne),
        ("==", Op::Eq),
        (">", Op::Gt),
        ("<", Op::Lt),
        ("=", Op::Eq),
    ] {
        if let Some(r) = t.strip_prefix(prefix) {
            let (given, v) = numbers(r.trim())?;
            // `<2.1` excludes 2.1's pre-releases too; `<=2.1` takes all of 2.1.
            let v = match op {
                Op::Lt if v.is_stable() => ComposerVersion::lowest(v.parts),
                Op::Le if given.len() < 4 && v.is_stable() => {
                    return Some(vec![b(
                        Op::Lt,
                        ComposerVersion::lowest(next(&given, given.len() - 1)),
                    )]);
                }
                _ => v,
            };
            return Some(vec![b(op, v)]);
        }
    }
    let (_, v) = numbers(t)?;
    Some(vec![b(Op::Eq, v)])
}

impl Constraint {
    pub fn parse(text: &str) -> Result<Constraint, String> {
        let bad = || {
            format!(
                "'{text}' is not a Composer version constraint (write e.g. \"^2.1\", \"~2.1.0\", \">=2.1 <3\", \"2.1.*\" or \"2.1.3\")"
            )
        };
        let mut any = Vec::new();
        let mut pre = false;
        for alt in text.split("||").flat_map(|a| a.split('|')) {
            let alt = alt.trim();
            if alt.is_empty() {
                return Err(bad());
            }
            let mut all = Vec::new();
            if let Some((lo, hi)) = alt.split_once(" - ") {
                let (_, l) = numbers(lo).ok_or_else(bad)?;
                let (given, h) = numbers(hi).ok_or_else(bad)?;
                all.push(Bound {
                    op: Op::Ge,
                    version: l,
                });
                if given.len() < 4 {
                    all.push(Bound {
                        op: Op::Lt,
                        version: ComposerVersion::lowest(next(&given, given.len() - 1)),
                    });
                } else {
                    all.push(Bound {
                        op: Op::Le,
                        version: h,
                    });
                }
            } else {
                for t in alt.split([' ', ',']).filter(|t| !t.is_empty()) {
                    let bounds = term(t).ok_or_else(bad)?;
                    all.extend(bounds);
                }
            }
            pre |= all.iter().any(|b| {
                !b.version.is_stable() && b.version.stability != Stability::Alpha
                    || (b.version.stability == Stability::Alpha && b.version.pre > 0)
            });
            any.push(all);
        }
        Ok(Constraint {
            text: text.trim().to_string(),
            any,
            pre,
        })
    }

    /// Does `version` satisfy the constraint (a pre-release only when a bound names one)?
    pub fn matches(&self, version: &ComposerVersion) -> bool {
        if !version.is_stable() && !self.pre {
            return false;
        }
        self.any
            .iter()
            .any(|all| all.iter().all(|b| b.holds(version)))
    }

    /// Does the version written `text` satisfy it?
    pub fn matches_text(&self, text: &str) -> bool {
        ComposerVersion::parse(text).is_some_and(|v| self.matches(&v))
    }
}

/// A Composer package name: `vendor/name`, lowercase letters, digits and `_.-`.
pub fn check_package_name(name: &str) -> Result<(), String> {
    let ok = |s: &str| {
        !s.is_empty()
            && s.len() <= 100
            && s.bytes().all(|b| {
                b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'.' | b'-')
            })
            && !s.starts_with(['.', '-', '_'])
    };
    match name.split_once('/') {
        Some((v, n)) if ok(v) && ok(n) => Ok(()),
        _ => Err(format!(
            "'{name}' is not a Composer package name (vendor/name, lowercase)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(c: &str, v: &str) -> bool {
        Constraint::parse(c).unwrap().matches_text(v)
    }

    #[test]
    fn carets_tildes_wildcards_and_ranges_read_as_composer_reads_them() {
        assert!(m("^2.1", "2.1.0") && m("^2.1", "2.9.9") && !m("^2.1", "3.0.0"));
        assert!(!m("^2.1", "2.0.9"));
        assert!(m("^0.3", "0.3.5") && !m("^0.3", "0.4.0"));
        assert!(m("~2.1", "2.9") && !m("~2.1", "3.0"));
        assert!(m("~2.1.3", "2.1.9") && !m("~2.1.3", "2.2.0"));
        assert!(m("2.1.*", "2.1.7") && !m("2.1.*", "2.2.0"));
        assert!(m(">=2.1 <3", "2.5") && !m(">=2.1 <3", "3.0.0"));
        assert!(m(">=2.1,<3", "2.1"));
        assert!(m("2.0 - 2.3", "2.3.9") && !m("2.0 - 2.3", "2.4.0"));
        assert!(m("^1.0 || ^3.0", "3.2") && !m("^1.0 || ^3.0", "2.0"));
        assert!(m("2.1.3", "v2.1.3") && !m("2.1.3", "2.1.4"));
        assert!(m("*", "7.0"));
        assert!(m("<=2.1", "2.1.5") && !m("<=2.1", "2.2"));
    }

    #[test]
    fn pre_releases_and_branches_match_only_when_asked() {
        assert!(!m("^2.1", "2.2.0-beta1"));
        assert!(m(">=2.2.0-beta1", "2.2.0-beta2"));
        assert!(!m("*", "dev-main"));
        assert!(!m("^2.1", "2.x-dev"));
        assert!(ComposerVersion::parse("2.2.0-RC1") < ComposerVersion::parse("2.2.0"));
        assert!(ComposerVersion::parse("2.2.0-beta3") < ComposerVersion::parse("2.2.0-RC1"));
    }

    #[test]
    fn nonsense_is_refused() {
        for bad in ["", "^", "latest", ">=x", "1.2.3.4.5", "||"] {
            assert!(Constraint::parse(bad).is_err(), "{bad}");
        }
        assert!(check_package_name("acme/moodle-mod_foo").is_ok());
        assert!(check_package_name("Acme/x").is_err());
        assert!(check_package_name("acme").is_err());
    }
}
