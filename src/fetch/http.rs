//! HTTP(S) fetching for AIA with reqwest (blocking, rustls), under hard limits: a total time
//! per request (a trickling body is cut at the deadline, not per read), a byte cap checked
//! both against `Content-Length` and while reading, a redirect cap, and redirects only to
//! http/https. Proxies come from `HTTP_PROXY`/`HTTPS_PROXY`/`ALL_PROXY`/`NO_PROXY` (and their
//! lower-case forms), as curl reads them.

use std::io::Read;
use std::time::{Duration, Instant};

use super::{FetchError, Fetcher};

#[derive(Debug, Clone)]
pub struct HttpLimits {
    /// Whole request, connect to last byte. Default 10 s (`--timeout`).
    pub timeout: Duration,
    /// Largest response body. 1 MiB: the largest real `.p7c` is a few KiB.
    pub max_bytes: u64,
    /// Most redirects followed (5, as many AIA hosts redirect http -> https -> CDN once or twice).
    pub max_redirects: usize,
}

impl Default for HttpLimits {
    fn default() -> HttpLimits {
        HttpLimits {
            timeout: Duration::from_secs(10),
            max_bytes: 1024 * 1024,
            max_redirects: 5,
        }
    }
}

pub struct HttpFetcher {
    client: reqwest::blocking::Client,
    limits: HttpLimits,
}

#[derive(Debug)]
struct RedirectCap(usize);
#[derive(Debug)]
struct RedirectScheme(String);

impl std::fmt::Display for RedirectCap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "more than {} redirects", self.0)
    }
}
impl std::error::Error for RedirectCap {}
impl std::fmt::Display for RedirectScheme {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "redirect to {} refused", self.0)
    }
}
impl std::error::Error for RedirectScheme {}

impl HttpFetcher {
    pub fn new(limits: HttpLimits) -> Result<HttpFetcher, String> {
        let max = limits.max_redirects;
        let policy = reqwest::redirect::Policy::custom(move |attempt| {
            let scheme = attempt.url().scheme().to_string();
            if scheme != "http" && scheme != "https" {
                let url = attempt.url().to_string();
                attempt.error(RedirectScheme(url))
            } else if attempt.previous().len() > max {
                attempt.error(RedirectCap(max))
            } else {
                attempt.follow()
            }
        });
        let client = reqwest::blocking::Client::builder()
            .timeout(limits.timeout)
            .connect_timeout(limits.timeout)
            .redirect(policy)
            .user_agent(concat!("chainfix/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("cannot start the HTTP client: {e}"))?;
        Ok(HttpFetcher { client, limits })
    }
}

impl Fetcher for HttpFetcher {
    fn get(&self, url: &str) -> Result<Vec<u8>, FetchError> {
        let start = Instant::now();
        let mut resp = self.client.get(url).send().map_err(|e| self.classify(&e))?;
        let status = resp.status();
        if status.is_redirection() {
            // reqwest hands back redirects it cannot even form a request for (file:///...)
            // without asking the policy; refuse them by name.
            if let Some(target) = non_http_location(&resp) {
                return Err(FetchError::RedirectRefused(target));
            }
        }
        if !status.is_success() {
            return Err(FetchError::Status(status.as_u16()));
        }
        if resp
            .content_length()
            .is_some_and(|n| n > self.limits.max_bytes)
        {
            return Err(FetchError::TooLarge(self.limits.max_bytes));
        }
        let mut body = Vec::new();
        let mut buf = [0u8; 16 * 1024];
        loop {
            if start.elapsed() > self.limits.timeout {
                return Err(FetchError::Timeout(self.limits.timeout.as_secs()));
            }
            let n = match resp.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(self.classify_io(&e)),
            };
            body.extend_from_slice(&buf[..n]);
            if body.len() as u64 > self.limits.max_bytes {
                return Err(FetchError::TooLarge(self.limits.max_bytes));
            }
        }
        Ok(body)
    }
}

impl HttpFetcher {
    fn classify(&self, e: &reqwest::Error) -> FetchError {
        let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
        while let Some(s) = source {
            if let Some(cap) = s.downcast_ref::<RedirectCap>() {
                return FetchError::TooManyRedirects(cap.0);
            }
            if let Some(r) = s.downcast_ref::<RedirectScheme>() {
                return FetchError::RedirectRefused(r.0.clone());
            }
            source = s.source();
        }
        if e.is_timeout() {
            return FetchError::Timeout(self.limits.timeout.as_secs());
        }
        FetchError::Transport(transport_message(e))
    }

    fn classify_io(&self, e: &std::io::Error) -> FetchError {
        let timed_out = e.kind() == std::io::ErrorKind::TimedOut
            || e.get_ref()
                .and_then(|inner| inner.downcast_ref::<reqwest::Error>())
                .is_some_and(reqwest::Error::is_timeout);
        if timed_out {
            FetchError::Timeout(self.limits.timeout.as_secs())
        } else {
            FetchError::Transport(format!("reading the response failed: {e}"))
        }
    }
}

/// The `Location` of a redirect response, if it points at a non-HTTP scheme.
fn non_http_location(resp: &reqwest::blocking::Response) -> Option<String> {
    let location = resp
        .headers()
        .get(reqwest::header::LOCATION)?
        .to_str()
        .ok()?;
    let target = resp.url().join(location).ok()?;
    (!matches!(target.scheme(), "http" | "https")).then(|| target.to_string())
}

/// The innermost cause, which is the useful part ("Connection refused").
fn transport_message(e: &reqwest::Error) -> String {
    let mut msg = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        msg = s.to_string();
        source = s.source();
    }
    msg
}

/// Builds the HTTP client on first use, so runs that fetch nothing never pay for it.
pub struct LazyHttpFetcher {
    limits: HttpLimits,
    client: std::sync::OnceLock<Result<HttpFetcher, String>>,
}

impl LazyHttpFetcher {
    pub fn new(limits: HttpLimits) -> LazyHttpFetcher {
        LazyHttpFetcher {
            limits,
            client: std::sync::OnceLock::new(),
        }
    }
}

impl Fetcher for LazyHttpFetcher {
    fn get(&self, url: &str) -> Result<Vec<u8>, FetchError> {
        match self
            .client
            .get_or_init(|| HttpFetcher::new(self.limits.clone()))
        {
            Ok(f) => f.get(url),
            Err(e) => Err(FetchError::Transport(e.clone())),
        }
    }
}
