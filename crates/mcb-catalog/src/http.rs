//! The one HTTP client every download goes through: `User-Agent: mcb/<version>`, at most
//! two requests at once to one host, retries with backoff on 429 and 5xx (honouring
//! `Retry-After`), a bearer token sent only to the host it belongs to, conditional requests
//! with ETags, time limits (connect, idle, a deadline per request) and a size limit on
//! every body, each failure naming the host, and a hard refusal when offline.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

use crate::limits::{HttpLimits, human_bytes};

pub const USER_AGENT: &str = concat!("mcb/", env!("CARGO_PKG_VERSION"));
const PER_HOST: usize = 2;
const ATTEMPTS: u32 = 4;

#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("not fetching {url}: offline, and it is not in the store")]
    Offline { url: String },
    #[error("{url} answered HTTP {status}{}{}", if *.attempts > 1 { format!(" (after {} attempts)", .attempts) } else { String::new() }, .problem.as_deref().map(|p| format!(": {p}")).unwrap_or_default())]
    Status {
        url: String,
        status: u16,
        attempts: u32,
        /// The server's RFC 9457 problem (`title: detail`), when it sent one.
        problem: Option<String>,
    },
    #[error("cannot reach {url}: {message}")]
    Transport { url: String, message: String },
    /// The server did not answer in time.
    #[error("{host} did not answer in time: {what} (fetching {url})")]
    TimedOut {
        url: String,
        host: String,
        what: String,
    },
    /// The body is larger than the limit (`limit_name` in `MCB_LIMITS`).
    #[error("{url} sent more than {} (the {limit_name} limit); nothing was kept", human_bytes(*.limit))]
    TooLarge {
        url: String,
        limit: u64,
        limit_name: &'static str,
    },
}

/// The answer to a conditional GET.
#[derive(Debug)]
pub enum Fetched {
    NotModified,
    Body {
        bytes: Vec<u8>,
        etag: Option<String>,
    },
}

/// The most redirects one request follows.
const MAX_REDIRECTS: usize = 10;

/// A URL as messages show it: without its query string, which may carry a key, and
/// without a user and password before its host.
pub fn shown_url(url: &str) -> String {
    let base = match url.split_once('?') {
        Some((base, _)) => base,
        None => url,
    };
    match base.split_once("://") {
        Some((scheme, rest)) => {
            let authority_end = rest.find('/').unwrap_or(rest.len());
            match rest[..authority_end].rfind('@') {
                Some(at) => format!("{scheme}://{}", &rest[at + 1..]),
                None => base.to_string(),
            }
        }
        None => base.to_string(),
    }
}

/// A bearer token and the hosts it may go to (`host` for any port, or `host:port`).
#[derive(Clone)]
struct Token {
    hosts: Vec<String>,
    secret: String,
}

impl Token {
    fn allows(&self, url: &str) -> bool {
        let Ok(u) = reqwest::Url::parse(url) else {
            return false;
        };
        let Some(host) = u.host_str() else {
            return false;
        };
        let with_port = format!("{host}:{}", u.port_or_known_default().unwrap_or(0));
        self.hosts
            .iter()
            .any(|h| h.eq_ignore_ascii_case(host) || h.eq_ignore_ascii_case(&with_port))
    }
}

pub struct Http {
    /// Built on first use: loading the system's root certificates costs a run that
    /// never goes to the network (a rollback, a warm realise) a noticeable share.
    client: std::sync::OnceLock<reqwest::blocking::Client>,
    offline: bool,
    limits: HttpLimits,
    /// The token and the hosts it goes to; never to any other, redirects included.
    token: Option<Token>,
    in_flight: Mutex<HashMap<String, usize>>,
    freed: Condvar,
    base_backoff: Duration,
}

/// `host:port` of a URL, as messages and the per-host limit name it.
pub fn host_of(url: &str) -> String {
    reqwest::Url::parse(url)
        .ok()
        .and_then(|u| {
            u.host_str()
                .map(|h| format!("{h}:{}", u.port_or_known_default().unwrap_or(0)))
        })
        .unwrap_or_default()
}

impl Http {
    fn client(&self) -> &reqwest::blocking::Client {
        self.client.get_or_init(|| {
            mcb_git::tls::install_crypto_provider();
            reqwest::blocking::Client::builder()
                .user_agent(USER_AGENT)
                .connect_timeout(self.limits.connect)
                // In the blocking client this bounds each wait: for the answer, and for
                // each read of its body. The whole request is bounded by
                // `limits.deadline`.
                .timeout(self.limits.idle)
                // Redirects are followed here, one hop at a time, so that the token goes
                // to the hosts it belongs to and to no other.
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("the HTTP client has a static configuration")
        })
    }

    pub fn new(offline: bool, limits: HttpLimits) -> Http {
        Http {
            client: std::sync::OnceLock::new(),
            offline,
            limits,
            token: None,
            in_flight: Mutex::new(HashMap::new()),
            freed: Condvar::new(),
            base_backoff: Duration::from_millis(
                std::env::var("MCB_HTTP_BACKOFF_MS")
                    .ok()
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(500),
            ),
        }
    }

    /// Sends `token` as a bearer token to `hosts` (each `host` or `host:port`), and to
    /// no other host.
    pub fn with_token(mut self, hosts: Vec<String>, token: String) -> Http {
        self.token = Some(Token {
            hosts,
            secret: token,
        });
        self
    }

    /// `text` with the token put out of sight: nothing a server answers, and nothing an
    /// error relays, carries it to a terminal or a log.
    pub fn redact(&self, text: &str) -> String {
        match &self.token {
            Some(t) if !t.secret.is_empty() => text.replace(&t.secret, "[token]"),
            _ => text.to_string(),
        }
    }

    /// Is a token set for the host of `url`?
    pub fn has_token_for(&self, url: &str) -> bool {
        self.token.as_ref().is_some_and(|t| t.allows(url))
    }

    pub fn is_offline(&self) -> bool {
        self.offline
    }

    pub fn limits(&self) -> &HttpLimits {
        &self.limits
    }

    pub fn get_bytes(&self, url: &str) -> Result<Vec<u8>, HttpError> {
        match self.get_conditional(url, None)? {
            Fetched::Body { bytes, .. } => Ok(bytes),
            Fetched::NotModified => Err(HttpError::Status {
                url: shown_url(url),
                status: 304,
                attempts: 1,
                problem: None,
            }),
        }
    }

    /// GET of a document parsed whole (metadata), whose body is held to `limit` bytes
    /// (`limit_name` in messages) rather than the bound on bodies.
    pub fn get_document(
        &self,
        url: &str,
        limit: u64,
        limit_name: &'static str,
    ) -> Result<Vec<u8>, HttpError> {
        let mut bytes = Vec::new();
        self.get_into(url, &mut bytes, (limit, limit_name))?;
        Ok(bytes)
    }

    /// An unconditional GET whose body goes to `sink`, within `limit`.
    fn get_into(
        &self,
        url: &str,
        sink: &mut dyn Write,
        limit: (u64, &'static str),
    ) -> Result<u64, HttpError> {
        let started = Instant::now();
        let resp = self
            .send(url, None, started)?
            .ok_or_else(|| HttpError::Status {
                url: shown_url(url),
                status: 304,
                attempts: 1,
                problem: None,
            })?;
        self.read_body(url, resp, started, sink, limit)
    }

    /// GET with `If-None-Match: etag` when an ETag is known. The body is held in memory,
    /// up to the body limit.
    pub fn get_conditional(&self, url: &str, etag: Option<&str>) -> Result<Fetched, HttpError> {
        let started = Instant::now();
        let Some(resp) = self.send(url, etag, started)? else {
            return Ok(Fetched::NotModified);
        };
        let etag = resp
            .headers()
            .get(reqwest::header::ETAG)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let mut bytes = Vec::new();
        self.read_body(url, resp, started, &mut bytes, self.body_limit())?;
        Ok(Fetched::Body { bytes, etag })
    }

    fn body_limit(&self) -> (u64, &'static str) {
        (self.limits.body_bytes, "http-bytes")
    }

    /// GET, streaming the body into `sink` (never more than the body limit). Returns the
    /// number of bytes written.
    pub fn download(&self, url: &str, sink: &mut dyn Write) -> Result<u64, HttpError> {
        self.get_into(url, sink, self.body_limit())
    }

    fn timed_out(&self, url: &str, what: String) -> HttpError {
        HttpError::TimedOut {
            url: shown_url(url),
            host: host_of(url),
            what,
        }
    }

    /// Sends the request, retrying 429 and 5xx answers and failed connections with
    /// backoff, within the deadline. `None` when the server says Not Modified.
    fn send(
        &self,
        url: &str,
        etag: Option<&str>,
        started: Instant,
    ) -> Result<Option<reqwest::blocking::Response>, HttpError> {
        if self.offline {
            return Err(HttpError::Offline {
                url: shown_url(url),
            });
        }
        let host = host_of(url);
        let _slot = self.acquire(&host);
        let mut attempt = 0;
        let mut timeouts = 0;
        let mut hops = 0;
        let mut current = url.to_string();
        loop {
            attempt += 1;
            let mut req = self.client().get(&current);
            if let Some(e) = etag {
                req = req.header(reqwest::header::IF_NONE_MATCH, e);
            }
            if let Some(t) = &self.token
                && t.allows(&current)
            {
                req = req.bearer_auth(&t.secret);
            }
            let retry_wait = match req.send() {
                Ok(resp) => {
                    let status = resp.status();
                    if status == reqwest::StatusCode::NOT_MODIFIED {
                        return Ok(None);
                    }
                    if status.is_success() {
                        return Ok(Some(resp));
                    }
                    if status.is_redirection()
                        && let Some(next) = resp
                            .headers()
                            .get(reqwest::header::LOCATION)
                            .and_then(|l| l.to_str().ok())
                            .and_then(|l| reqwest::Url::parse(&current).ok()?.join(l).ok())
                    {
                        hops += 1;
                        if hops > MAX_REDIRECTS || !matches!(next.scheme(), "http" | "https") {
                            return Err(HttpError::Transport {
                                url: shown_url(url),
                                message: format!(
                                    "more than {MAX_REDIRECTS} redirects, or a redirect to a URL that is not http(s)"
                                ),
                            });
                        }
                        current = next.to_string();
                        attempt -= 1;
                        continue;
                    }
                    let retryable = status.as_u16() == 429 || status.is_server_error();
                    if !retryable || attempt >= ATTEMPTS {
                        return Err(HttpError::Status {
                            url: shown_url(&current),
                            status: status.as_u16(),
                            attempts: attempt,
                            // A server's words may carry back what it was sent.
                            problem: problem_of(resp).map(|p| self.redact(&p)),
                        });
                    }
                    resp.headers()
                        .get(reqwest::header::RETRY_AFTER)
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.trim().parse::<u64>().ok())
                        .map(|s| Duration::from_secs(s.min(60)))
                }
                Err(e) => {
                    if e.is_timeout() {
                        timeouts += 1;
                    }
                    let what = if e.is_connect() && e.is_timeout() {
                        format!(
                            "no connection within {} s (connect-timeout)",
                            self.limits.connect.as_secs()
                        )
                    } else if e.is_timeout() {
                        format!(
                            "no answer within {} s (idle-timeout)",
                            self.limits.idle.as_secs()
                        )
                    } else {
                        String::new()
                    };
                    // A server that does not answer once rarely answers the second time:
                    // one retry for time-outs, more for refused or broken connections.
                    let retryable = (e.is_timeout() && timeouts < 2)
                        || (!e.is_timeout() && (e.is_connect() || e.is_request()));
                    if attempt >= ATTEMPTS || !retryable {
                        if e.is_timeout() {
                            return Err(self.timed_out(url, what));
                        }
                        return Err(HttpError::Transport {
                            url: shown_url(url),
                            message: self.redact(&describe_transport(&e)),
                        });
                    }
                    None
                }
            };
            let backoff = self.base_backoff * 2u32.pow(attempt - 1);
            let wait = retry_wait.unwrap_or(backoff);
            if started.elapsed() + wait >= self.limits.deadline {
                return Err(self.timed_out(
                    url,
                    format!(
                        "no success within {} s (request-deadline)",
                        self.limits.deadline.as_secs()
                    ),
                ));
            }
            std::thread::sleep(wait);
        }
    }

    /// Reads a body into `sink`, within the size limit `(bytes, its name)` and the deadline.
    fn read_body(
        &self,
        url: &str,
        mut resp: reqwest::blocking::Response,
        started: Instant,
        sink: &mut dyn Write,
        (limit, limit_name): (u64, &'static str),
    ) -> Result<u64, HttpError> {
        if resp.content_length().is_some_and(|n| n > limit) {
            return Err(HttpError::TooLarge {
                url: shown_url(url),
                limit,
                limit_name,
            });
        }
        let mut buf = vec![0u8; 64 * 1024];
        let mut total = 0u64;
        loop {
            if started.elapsed() > self.limits.deadline {
                return Err(self.timed_out(
                    url,
                    format!(
                        "the answer took longer than {} s (request-deadline)",
                        self.limits.deadline.as_secs()
                    ),
                ));
            }
            let n = match resp.read(&mut buf) {
                Ok(0) => return Ok(total),
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) if is_timeout(&e) => {
                    return Err(self.timed_out(
                        url,
                        format!(
                            "the answer stalled for {} s (idle-timeout)",
                            self.limits.idle.as_secs()
                        ),
                    ));
                }
                Err(e) => {
                    return Err(HttpError::Transport {
                        url: shown_url(url),
                        message: format!("the answer broke off: {}", error_chain(&e)),
                    });
                }
            };
            total += n as u64;
            if total > limit {
                return Err(HttpError::TooLarge {
                    url: shown_url(url),
                    limit,
                    limit_name,
                });
            }
            sink.write_all(&buf[..n])
                .map_err(|e| HttpError::Transport {
                    url: shown_url(url),
                    message: format!("cannot keep the answer: {e}"),
                })?;
        }
    }

    fn acquire(&self, host: &str) -> HostSlot<'_> {
        let mut map = self
            .in_flight
            .lock()
            .expect("no panics while holding the lock");
        while map.get(host).copied().unwrap_or(0) >= PER_HOST {
            map = self
                .freed
                .wait(map)
                .expect("no panics while holding the lock");
        }
        *map.entry(host.to_string()).or_default() += 1;
        HostSlot {
            http: self,
            host: host.to_string(),
        }
    }
}

struct HostSlot<'a> {
    http: &'a Http,
    host: String,
}

impl Drop for HostSlot<'_> {
    fn drop(&mut self) {
        let mut map = self
            .http
            .in_flight
            .lock()
            .expect("no panics while holding the lock");
        if let Some(n) = map.get_mut(&self.host) {
            *n -= 1;
        }
        self.http.freed.notify_all();
    }
}

fn is_timeout(e: &std::io::Error) -> bool {
    if e.kind() == std::io::ErrorKind::TimedOut {
        return true;
    }
    let mut cur: Option<&(dyn std::error::Error + 'static)> = e.get_ref().map(|r| r as _);
    while let Some(c) = cur {
        if let Some(r) = c.downcast_ref::<reqwest::Error>()
            && r.is_timeout()
        {
            return true;
        }
        cur = c.source();
    }
    false
}

/// A transport failure said plainly: refused, unresolvable, or the error's own words.
fn describe_transport(e: &reqwest::Error) -> String {
    let chain = error_chain(e);
    let lower = chain.to_ascii_lowercase();
    if lower.contains("connection refused") {
        "the connection was refused".to_string()
    } else if lower.contains("dns error") || lower.contains("failed to lookup address") {
        "the host name could not be resolved".to_string()
    } else {
        chain
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let t = c.to_string();
        if !s.contains(&t) {
            s.push_str(": ");
            s.push_str(&t);
        }
        cur = c.source();
    }
    s
}

/// The RFC 9457 problem a failed answer carries (`application/problem+json`), as
/// `title: detail`; at most 64 KB of it is read.
fn problem_of(resp: reqwest::blocking::Response) -> Option<String> {
    let is_problem = resp
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.to_ascii_lowercase()
                .starts_with("application/problem+json")
        });
    if !is_problem {
        return None;
    }
    let mut body = Vec::new();
    resp.take(64 * 1024).read_to_end(&mut body).ok()?;
    let v: serde_json::Value = serde_json::from_slice(&body).ok()?;
    let text = |k: &str| {
        v.get(k)
            .and_then(|x| x.as_str())
            .map(|s| {
                s.chars()
                    .filter(|c| !c.is_control())
                    .take(300)
                    .collect::<String>()
            })
            .filter(|s| !s.is_empty())
    };
    match (text("title"), text("detail")) {
        (Some(t), Some(d)) => Some(format!("{t}: {d}")),
        (Some(t), None) => Some(t),
        (None, Some(d)) => Some(d),
        (None, None) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead, BufReader, Write};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A server that holds each request for a while and records the most it saw at once.
    fn slow_server() -> (String, Arc<AtomicUsize>) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/f", listener.local_addr().unwrap());
        let now = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let seen = most.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let (now, most) = (now.clone(), most.clone());
                std::thread::spawn(move || {
                    let mut r = BufReader::new(conn.try_clone().unwrap());
                    let mut line = String::new();
                    while r.read_line(&mut line).unwrap_or(0) > 2 {
                        line.clear();
                    }
                    let n = now.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(n, Ordering::SeqCst);
                    std::thread::sleep(Duration::from_millis(150));
                    now.fetch_sub(1, Ordering::SeqCst);
                    let mut c = conn;
                    let _ = c.write_all(
                        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok",
                    );
                });
            }
        });
        (url, seen)
    }

    #[test]
    fn at_most_two_requests_at_once_per_host() {
        let (url, most) = slow_server();
        let http = Arc::new(Http::new(false, HttpLimits::default()));
        let threads: Vec<_> = (0..6)
            .map(|_| {
                let (http, url) = (http.clone(), url.clone());
                std::thread::spawn(move || http.get_bytes(&url).unwrap())
            })
            .collect();
        for t in threads {
            assert_eq!(t.join().unwrap(), b"ok");
        }
        assert_eq!(most.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn a_shown_url_carries_no_key_and_no_password() {
        assert_eq!(
            shown_url("https://bob:s3cret@host.example/p/x.zip?key=k"),
            "https://host.example/p/x.zip"
        );
        assert_eq!(
            shown_url("https://host.example/a@b"),
            "https://host.example/a@b"
        );
        let http = Http::new(true, HttpLimits::default()).with_token(vec![], "t0k".into());
        assert_eq!(
            http.redact("bad token t0k, t0k"),
            "bad token [token], [token]"
        );
    }

    #[test]
    fn offline_never_connects() {
        let http = Http::new(true, HttpLimits::default());
        let err = http.get_bytes("http://127.0.0.1:1/x").unwrap_err();
        assert!(matches!(err, HttpError::Offline { .. }));
    }

    fn limits(idle_ms: u64, body: u64) -> HttpLimits {
        HttpLimits {
            idle: Duration::from_millis(idle_ms),
            body_bytes: body,
            ..HttpLimits::default()
        }
    }

    #[test]
    fn a_server_that_never_answers_times_out_naming_the_host() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            let mut held = Vec::new();
            for c in listener.incoming().flatten() {
                held.push(c);
            }
        });
        let http = Http::new(false, limits(300, 1 << 20));
        let started = Instant::now();
        let err = http.get_bytes(&format!("http://{addr}/x")).unwrap_err();
        assert!(matches!(err, HttpError::TimedOut { .. }), "{err}");
        let text = err.to_string();
        assert!(text.contains(&addr.to_string()), "{text}");
        assert!(text.contains("idle-timeout"), "{text}");
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn an_endless_body_stops_at_the_limit() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            for mut c in listener.incoming().flatten() {
                std::thread::spawn(move || {
                    let mut r = BufReader::new(c.try_clone().unwrap());
                    let mut line = String::new();
                    while r.read_line(&mut line).unwrap_or(0) > 2 {
                        line.clear();
                    }
                    let _ = c.write_all(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n");
                    let chunk = vec![b'x'; 64 * 1024];
                    while c.write_all(&chunk).is_ok() {}
                });
            }
        });
        let http = Http::new(false, limits(5_000, 1 << 20));
        let mut sink = Vec::new();
        let err = http
            .download(&format!("http://{addr}/x"), &mut sink)
            .unwrap_err();
        assert!(matches!(err, HttpError::TooLarge { .. }), "{err}");
        assert!(sink.len() <= 1 << 20);
    }
}
