//! The one HTTP client every download goes through: `User-Agent: mcb/<version>`, at most
//! two requests at once to one host, retries with backoff on 429 and 5xx (honouring
//! `Retry-After`), a bearer token sent only to the host it belongs to, conditional requests
//! with ETags, and a hard refusal when offline.

use std::collections::HashMap;
use std::sync::{Condvar, Mutex};
use std::time::Duration;

pub const USER_AGENT: &str = concat!("mcb/", env!("CARGO_PKG_VERSION"));
const PER_HOST: usize = 2;
const ATTEMPTS: u32 = 4;

#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("not fetching {url}: --offline was given and it is not in the store")]
    Offline { url: String },
    #[error("{url} answered HTTP {status}{}", if *.attempts > 1 { format!(" (after {} attempts)", .attempts) } else { String::new() })]
    Status {
        url: String,
        status: u16,
        attempts: u32,
    },
    #[error("cannot reach {url}: {message}")]
    Transport { url: String, message: String },
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

pub struct Http {
    client: reqwest::blocking::Client,
    offline: bool,
    /// (host, token): the token goes to this host only.
    token: Option<(String, String)>,
    in_flight: Mutex<HashMap<String, usize>>,
    freed: Condvar,
    base_backoff: Duration,
}

fn host_of(url: &str) -> String {
    reqwest::Url::parse(url)
        .ok()
        .and_then(|u| {
            u.host_str()
                .map(|h| format!("{h}:{}", u.port_or_known_default().unwrap_or(0)))
        })
        .unwrap_or_default()
}

impl Http {
    pub fn new(offline: bool) -> Http {
        let client = reqwest::blocking::Client::builder()
            .user_agent(USER_AGENT)
            .connect_timeout(Duration::from_secs(20))
            .timeout(Duration::from_secs(600))
            .build()
            .expect("the HTTP client has a static configuration");
        Http {
            client,
            offline,
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

    /// Sends `token` as a bearer token to the host of `url`, and to no other host.
    pub fn with_token_for(mut self, url: &str, token: String) -> Http {
        self.token = Some((host_of(url), token));
        self
    }

    pub fn is_offline(&self) -> bool {
        self.offline
    }

    pub fn get_bytes(&self, url: &str) -> Result<Vec<u8>, HttpError> {
        match self.get_conditional(url, None)? {
            Fetched::Body { bytes, .. } => Ok(bytes),
            Fetched::NotModified => Err(HttpError::Status {
                url: url.to_string(),
                status: 304,
                attempts: 1,
            }),
        }
    }

    /// GET with `If-None-Match: etag` when an ETag is known.
    pub fn get_conditional(&self, url: &str, etag: Option<&str>) -> Result<Fetched, HttpError> {
        if self.offline {
            return Err(HttpError::Offline {
                url: url.to_string(),
            });
        }
        let host = host_of(url);
        let _slot = self.acquire(&host);
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut req = self.client.get(url);
            if let Some(e) = etag {
                req = req.header(reqwest::header::IF_NONE_MATCH, e);
            }
            if let Some((h, t)) = &self.token
                && *h == host
            {
                req = req.bearer_auth(t);
            }
            let retry_wait = match req.send() {
                Ok(resp) => {
                    let status = resp.status();
                    if status == reqwest::StatusCode::NOT_MODIFIED {
                        return Ok(Fetched::NotModified);
                    }
                    if status.is_success() {
                        let etag = resp
                            .headers()
                            .get(reqwest::header::ETAG)
                            .and_then(|v| v.to_str().ok())
                            .map(str::to_string);
                        let bytes = resp.bytes().map_err(|e| HttpError::Transport {
                            url: url.to_string(),
                            message: e.to_string(),
                        })?;
                        return Ok(Fetched::Body {
                            bytes: bytes.to_vec(),
                            etag,
                        });
                    }
                    let retryable = status.as_u16() == 429 || status.is_server_error();
                    if !retryable || attempt >= ATTEMPTS {
                        return Err(HttpError::Status {
                            url: url.to_string(),
                            status: status.as_u16(),
                            attempts: attempt,
                        });
                    }
                    resp.headers()
                        .get(reqwest::header::RETRY_AFTER)
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.trim().parse::<u64>().ok())
                        .map(|s| Duration::from_secs(s.min(60)))
                }
                Err(e) => {
                    if attempt >= ATTEMPTS || !(e.is_timeout() || e.is_connect() || e.is_request())
                    {
                        return Err(HttpError::Transport {
                            url: url.to_string(),
                            message: error_chain(&e),
                        });
                    }
                    None
                }
            };
            let backoff = self.base_backoff * 2u32.pow(attempt - 1);
            std::thread::sleep(retry_wait.unwrap_or(backoff));
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
        let http = Arc::new(Http::new(false));
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
    fn offline_never_connects() {
        let http = Http::new(true);
        let err = http.get_bytes("http://127.0.0.1:1/x").unwrap_err();
        assert!(matches!(err, HttpError::Offline { .. }));
    }
}
