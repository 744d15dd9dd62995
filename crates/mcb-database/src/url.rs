//! A server named on the command line: `SCHEME://USER[:PASS]@HOST[:PORT]`, decoded, and
//! shown with its password masked.

use crate::error::DbError;

/// What `--db SCHEME://USER[:PASS]@HOST[:PORT]` names: user and password percent-decoded,
/// an IPv6 host without its brackets (the clients take it so).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DbUrl {
    pub user: String,
    pub password: String,
    pub host: String,
    pub port: u16,
}

impl DbUrl {
    /// A PostgreSQL server: `postgresql://` or `postgres://`, port 5432 by default.
    pub fn parse(text: &str) -> Result<DbUrl, DbError> {
        DbUrl::parse_as(text, &["postgresql", "postgres"], 5432)
    }

    /// A server of the engine whose schemes are `schemes` (the first is the one shown),
    /// `default_port` when the URL names none. The password is never in a message.
    pub fn parse_as(text: &str, schemes: &[&str], default_port: u16) -> Result<DbUrl, DbError> {
        let scheme = schemes[0];
        let bad = |why: &str| DbError {
            message: format!(
                "--db {}: {why}; give {scheme}://USER[:PASS]@HOST[:PORT]",
                shown_db_url(text)
            ),
            hint: None,
        };
        let u = url::Url::parse(text).map_err(|_| bad("not a URL"))?;
        if !schemes.contains(&u.scheme()) {
            return Err(bad(&format!("not a {scheme}:// URL")));
        }
        if u.username().is_empty() {
            return Err(bad("it names no user"));
        }
        let decode = |s: &str| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8()
                .map(|c| c.into_owned())
                .map_err(|_| bad("its user or password is not UTF-8 once decoded"))
        };
        let host = match u.host().ok_or_else(|| bad("it names no host"))? {
            url::Host::Domain(d) => d.to_string(),
            url::Host::Ipv4(a) => a.to_string(),
            url::Host::Ipv6(a) => a.to_string(),
        };
        Ok(DbUrl {
            user: decode(u.username())?,
            password: decode(u.password().unwrap_or(""))?,
            host,
            port: u.port().unwrap_or(default_port),
        })
    }
}

/// A database URL as messages show it: its password replaced by `***`.
pub fn shown_db_url(text: &str) -> String {
    let Some((scheme, rest)) = text.split_once("://") else {
        return "(not a URL)".into();
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    match authority.rfind('@') {
        Some(at) => {
            let userinfo = &authority[..at];
            let user = userinfo.split(':').next().unwrap_or("");
            let masked = if userinfo.contains(':') {
                format!("{user}:***")
            } else {
                user.to_string()
            };
            format!("{scheme}://{masked}@{}", &rest[at + 1..])
        }
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_db_url_is_decoded_and_its_password_never_shown() {
        let u = DbUrl::parse("postgresql://bob:a%2Fb%40c@db.example:5999").unwrap();
        assert_eq!((u.user.as_str(), u.password.as_str()), ("bob", "a/b@c"));
        assert_eq!((u.host.as_str(), u.port), ("db.example", 5999));
        let u = DbUrl::parse("postgres://al%20ice@[::1]:5999").unwrap();
        assert_eq!((u.user.as_str(), u.host.as_str()), ("al ice", "::1"));
        assert_eq!(u.password, "");
        for bad in [
            "mysql://bob:pw1@h",
            "postgresql://:pw1@h",
            "not a url pw1",
            "postgresql://bob:pw1@",
        ] {
            let e = DbUrl::parse(bad).unwrap_err();
            assert!(!e.message.contains("pw1"), "{}", e.message);
        }
        assert_eq!(
            shown_db_url("postgresql://bob:a%2Fb%40c@h:1/x"),
            "postgresql://bob:***@h:1/x"
        );
    }
}
