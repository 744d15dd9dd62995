//! One way to name a site's generation, whichever command takes it: `gen-N` (as `history`
//! prints it and `push` tags it), `SITE/gen-N` (the tag), `-N` (N generations before the
//! newest) or a commit's first hex digits.

use mcb_store::GitOid;

/// A generation as the user named it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GenerationName {
    /// The Nth commit of the site's branch, 1 for the first.
    Number(usize),
    /// N generations before the newest.
    Back(usize),
    /// A commit id, or its first hex digits (at least [`GenerationName::MIN_PREFIX`]).
    Prefix(String),
}

impl GenerationName {
    /// The fewest hex digits that name a commit.
    pub const MIN_PREFIX: usize = 7;

    /// `text` as a generation of site `site`: `SITE/gen-N` must name this site.
    pub fn parse(text: &str, site: &str) -> Result<GenerationName, String> {
        let bad = || {
            format!(
                "{text} is not a generation: give gen-N (as `mcb history` shows it), \
                 {site}/gen-N, -N for N generations back, or at least {} hex digits of a commit",
                Self::MIN_PREFIX
            )
        };
        let local = match text.split_once('/') {
            Some((owner, rest)) if owner == site => rest,
            Some((owner, _)) if !owner.is_empty() => {
                return Err(format!(
                    "{text} names a generation of site {owner}, not of {site}"
                ));
            }
            Some(_) => return Err(bad()),
            None => text,
        };
        let number = |n: &str| n.parse::<usize>().ok().filter(|n| *n > 0);
        if let Some(n) = local.strip_prefix("gen-") {
            return number(n).map(GenerationName::Number).ok_or_else(bad);
        }
        if let Some(n) = local.strip_prefix('-') {
            return number(n).map(GenerationName::Back).ok_or_else(bad);
        }
        let p = local.to_ascii_lowercase();
        if p.len() >= Self::MIN_PREFIX && p.len() <= 64 && p.bytes().all(|b| b.is_ascii_hexdigit())
        {
            return Ok(GenerationName::Prefix(p));
        }
        Err(bad())
    }

    /// Where in `log` (a branch's commits, newest first, as `first_parent_log` gives them)
    /// this generation is.
    pub fn position(&self, log: &[(GitOid, GitOid, i64)], site: &str) -> Result<usize, String> {
        let count = log.len();
        match self {
            GenerationName::Number(n) => count.checked_sub(*n).ok_or_else(|| {
                format!(
                    "site {site} has no gen-{n}: it has {count} generation{}",
                    plural(count)
                )
            }),
            GenerationName::Back(n) if *n < count => Ok(*n),
            GenerationName::Back(n) => Err(format!(
                "site {site} has {count} generation{}: there is none {n} back",
                plural(count)
            )),
            GenerationName::Prefix(p) => {
                let found: Vec<usize> = log
                    .iter()
                    .enumerate()
                    .filter(|(_, (c, _, _))| c.as_str().starts_with(p.as_str()))
                    .map(|(i, _)| i)
                    .collect();
                match found.as_slice() {
                    [one] => Ok(*one),
                    [] => Err(format!("commit {p} is not a generation of site {site}")),
                    _ => Err(format!(
                        "{p} names more than one generation of site {site}: give more digits"
                    )),
                }
            }
        }
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log() -> Vec<(GitOid, GitOid, i64)> {
        ["c3", "b2", "a1"]
            .iter()
            .map(|p| {
                let id = GitOid::parse(&p.repeat(20)).unwrap();
                (id.clone(), id, 0)
            })
            .collect()
    }

    #[test]
    fn every_spelling_names_the_same_generation() {
        let log = log();
        for text in ["gen-1", "web/gen-1", "-2", "a1a1a1a", "A1A1A1A1"] {
            let name = GenerationName::parse(text, "web").unwrap();
            assert_eq!(name.position(&log, "web"), Ok(2), "{text}");
        }
        assert_eq!(
            GenerationName::parse("gen-3", "web")
                .unwrap()
                .position(&log, "web"),
            Ok(0)
        );
    }

    #[test]
    fn what_names_nothing_says_so() {
        let log = log();
        for bad in [
            "gen-0",
            "gen-x",
            "-0",
            "abc",
            "other/gen-1",
            "/gen-1",
            "zzzzzzz",
        ] {
            assert!(GenerationName::parse(bad, "web").is_err(), "{bad}");
        }
        let four = GenerationName::parse("gen-4", "web").unwrap();
        assert!(
            four.position(&log, "web")
                .unwrap_err()
                .contains("has 3 generations")
        );
        let back = GenerationName::parse("-3", "web").unwrap();
        assert!(back.position(&log, "web").is_err());
    }
}
