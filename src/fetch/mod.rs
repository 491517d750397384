//! Fetch stage: AIA caIssuers retrieval (RFC 5280 §4.2.2.1) feeding new candidates back into
//! the pool between the rounds of path searches (`chain::rounds`).
//!
//! Each distinct URL is resolved at most once per run: from memory, else from the download
//! cache, else (unless `--offline`) over HTTP through a [`Fetcher`], charged to a per-run
//! budget. Responses may be DER, PEM or PKCS#7 with several certificates. Nothing fetched is
//! trusted: the chain stage uses a fetched certificate only if its signature check passes.
//!
//! Each round resolves the URLs of every open tip of the searches at once
//! ([`IssuerSource::fetch_round`]): a thousand leaves missing the same intermediate share one
//! request, and distinct URLs are fetched concurrently, at most [`MAX_CONCURRENT_FETCHES`] at
//! a time.

pub mod cache;
pub mod http;

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Arc;

use crate::cert::Certificate;
use crate::chain::{check_signature, IssuerSource, SigCheck};
use crate::load::{self, NoPassword};
use crate::pool::Source;

pub use cache::Cache;
pub use http::{HttpFetcher, HttpLimits, LazyHttpFetcher};

/// Most certificates accepted from one AIA response (a real `.p7c` holds 1-5).
pub const MAX_CERTS_PER_RESPONSE: usize = 64;

/// Most AIA requests in flight at once. Enough to hide round trips when a fleet's leaves
/// come from a handful of CAs, few enough not to look like a flood to one CA's web server
/// (browsers open at most 6 connections per host).
pub const MAX_CONCURRENT_FETCHES: usize = 6;

/// Gets the bytes behind an http(s) URL. The seam between chain building and the network.
/// Called from several threads at once by [`IssuerSource::fetch_round`].
pub trait Fetcher: Sync {
    fn get(&self, url: &str) -> Result<Vec<u8>, FetchError>;
}

/// Why an AIA URL gave no certificates. Each budget has its own variant.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FetchError {
    #[error("skipped: only http and https URLs are fetched, not {0}")]
    UnsupportedScheme(String),
    #[error("not fetched: --offline and not in the download cache")]
    Offline,
    #[error("not fetched: the budget of {0} AIA fetches per run is spent")]
    BudgetExhausted(usize),
    #[error("HTTP status {0}")]
    Status(u16),
    #[error("response larger than {0} bytes")]
    TooLarge(u64),
    #[error("no complete response within {0} s")]
    Timeout(u64),
    #[error("more than {0} redirects")]
    TooManyRedirects(usize),
    #[error("redirect to a non-HTTP URL refused: {0}")]
    RedirectRefused(String),
    #[error("{0}")]
    Transport(String),
    #[error("response is not a certificate (DER, PEM or PKCS#7)")]
    NotCertificates,
    #[error("response holds more than {0} certificates")]
    TooManyCertificates(usize),
}

impl FetchError {
    /// Stable machine-readable detail code, used in JSON next to `aia-fetch-failed`.
    pub fn code(&self) -> &'static str {
        match self {
            FetchError::UnsupportedScheme(_) => "unsupported-scheme",
            FetchError::Offline => "offline",
            FetchError::BudgetExhausted(_) => "fetch-budget",
            FetchError::Status(_) => "http-status",
            FetchError::TooLarge(_) => "response-too-large",
            FetchError::Timeout(_) => "timeout",
            FetchError::TooManyRedirects(_) => "too-many-redirects",
            FetchError::RedirectRefused(_) => "redirect-refused",
            FetchError::Transport(_) => "transport",
            FetchError::NotCertificates => "not-a-certificate",
            FetchError::TooManyCertificates(_) => "too-many-certificates",
        }
    }
}

/// What became of one URL in this run.
#[derive(Debug, Clone)]
pub enum UrlOutcome {
    Fetched(Vec<Arc<Certificate>>),
    Cached(Vec<Arc<Certificate>>),
    Failed(FetchError),
}

/// Per-run AIA settings.
#[derive(Debug, Clone)]
pub struct AiaConfig {
    pub offline: bool,
    /// Most HTTP requests per run.
    pub max_fetches: usize,
    /// Most caIssuers URLs tried per certificate (a hostile certificate may list thousands).
    pub max_urls_per_cert: usize,
}

impl Default for AiaConfig {
    fn default() -> AiaConfig {
        AiaConfig {
            offline: false,
            max_fetches: 64,
            max_urls_per_cert: 8,
        }
    }
}

/// What became of each caIssuers URL in a finished run ([`Aia::finish`]).
#[derive(Debug, Default)]
pub struct AiaRecord {
    outcomes: HashMap<String, UrlOutcome>,
    max_urls_per_cert: usize,
}

impl AiaRecord {
    pub fn outcome(&self, url: &str) -> Option<&UrlOutcome> {
        self.outcomes.get(url)
    }

    /// Most caIssuers URLs tried per certificate.
    pub fn max_urls_per_cert(&self) -> usize {
        self.max_urls_per_cert
    }
}

/// The [`IssuerSource`] that follows AIA caIssuers URLs.
pub struct Aia<'a> {
    fetcher: Option<&'a dyn Fetcher>,
    /// Told each URL just before it is requested (progress display).
    observer: Option<&'a (dyn Fn(&str) + Sync)>,
    cache: Option<&'a Cache>,
    config: AiaConfig,
    outcomes: HashMap<String, UrlOutcome>,
    requests: usize,
}

impl<'a> Aia<'a> {
    pub fn new(
        fetcher: Option<&'a dyn Fetcher>,
        cache: Option<&'a Cache>,
        config: AiaConfig,
    ) -> Aia<'a> {
        Aia {
            fetcher,
            observer: None,
            cache,
            config,
            outcomes: HashMap::new(),
            requests: 0,
        }
    }

    /// Calls `observer` with each URL just before it is requested.
    pub fn observe(mut self, observer: &'a (dyn Fn(&str) + Sync)) -> Aia<'a> {
        self.observer = Some(observer);
        self
    }

    /// The outcome for `url`, if it was tried in this run.
    pub fn outcome(&self, url: &str) -> Option<&UrlOutcome> {
        self.outcomes.get(url)
    }

    /// HTTP requests made so far.
    pub fn requests(&self) -> usize {
        self.requests
    }

    pub fn max_urls_per_cert(&self) -> usize {
        self.config.max_urls_per_cert
    }

    /// What this run's fetching found, kept for diagnosis once fetching is over.
    pub fn finish(self) -> AiaRecord {
        AiaRecord {
            outcomes: self.outcomes,
            max_urls_per_cert: self.config.max_urls_per_cert,
        }
    }

    /// Resolves `url` without the network when possible (a refused scheme, the download
    /// cache, `--offline`, a spent budget); otherwise hands back the fetcher to use, with the
    /// request already charged to the budget.
    fn resolve_locally(&mut self, url: &str) -> Result<UrlOutcome, &'a dyn Fetcher> {
        let scheme = url.split_once("://").map(|(s, _)| s.to_ascii_lowercase());
        if !matches!(scheme.as_deref(), Some("http" | "https")) {
            let shown =
                scheme.map_or_else(|| "a URL without a scheme".into(), |s| format!("{s}://"));
            return Ok(UrlOutcome::Failed(FetchError::UnsupportedScheme(shown)));
        }
        if let Some(certs) = self.cache.and_then(|c| c.get(url)) {
            return Ok(UrlOutcome::Cached(certs));
        }
        let Some(fetcher) = self.fetcher.filter(|_| !self.config.offline) else {
            return Ok(UrlOutcome::Failed(FetchError::Offline));
        };
        if self.requests >= self.config.max_fetches {
            return Ok(UrlOutcome::Failed(FetchError::BudgetExhausted(
                self.config.max_fetches,
            )));
        }
        self.requests += 1;
        Err(fetcher)
    }

    fn download(&self, fetcher: &dyn Fetcher, url: &str) -> UrlOutcome {
        if let Some(observe) = self.observer {
            observe(url);
        }
        match fetcher.get(url).and_then(|body| parse_response(&body)) {
            Ok(certs) => UrlOutcome::Fetched(certs),
            Err(e) => UrlOutcome::Failed(e),
        }
    }

    /// Downloads each URL with its fetcher, at most [`MAX_CONCURRENT_FETCHES`] at a time;
    /// the outcomes come back in the order of `jobs`.
    fn download_all(&self, jobs: &[(&str, &dyn Fetcher)]) -> Vec<UrlOutcome> {
        let next = std::sync::atomic::AtomicUsize::new(0);
        let results: std::sync::Mutex<Vec<Option<UrlOutcome>>> =
            std::sync::Mutex::new(vec![None; jobs.len()]);
        let workers = jobs.len().min(MAX_CONCURRENT_FETCHES);
        std::thread::scope(|scope| {
            for _ in 0..workers {
                scope.spawn(|| loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some((url, fetcher)) = jobs.get(i) else {
                        break;
                    };
                    let outcome = self.download(*fetcher, url);
                    results.lock().unwrap_or_else(|e| e.into_inner())[i] = Some(outcome);
                });
            }
        });
        results
            .into_inner()
            .unwrap_or_else(|e| e.into_inner())
            .into_iter()
            .map(|o| {
                o.unwrap_or_else(|| {
                    UrlOutcome::Failed(FetchError::Transport("the download did not finish".into()))
                })
            })
            .collect()
    }
}

impl Aia<'_> {
    /// Caches a response only if one of its certificates really issued `child`, so an
    /// impostor served once is not replayed from the cache in every later run.
    fn cache_if_genuine(&self, url: &str, child: &Certificate, certs: &[Arc<Certificate>]) {
        let Some(cache) = self.cache else { return };
        if issues(child, certs) {
            // A cache we cannot write only costs a refetch next run.
            let _ = cache.put(url, certs);
        }
    }

    /// Drops a cache entry none of whose certificates verifies `child`'s signature: a cache
    /// holds only verified issuers, so such an entry is stale, damaged or planted.
    fn drop_if_not_genuine(&self, url: &str, child: &Certificate, certs: &[Arc<Certificate>]) {
        let Some(cache) = self.cache else { return };
        if !issues(child, certs) {
            // An entry we cannot remove is still never trusted: its links do not verify.
            let _ = cache.remove(url);
        }
    }
}

impl IssuerSource for Aia<'_> {
    /// Resolves the URLs of `tips` not tried yet (at most `max_urls_per_cert` each), the
    /// downloads concurrently. What comes back is returned in URL order, so the pool, and
    /// every report, is the same whatever order the responses arrive in. A download is cached
    /// if it issued the first tip (in `tips` order) naming its URL; a cache entry that did not
    /// is dropped.
    fn fetch_round(&mut self, tips: &[&Certificate]) -> Vec<(Arc<Certificate>, Source)> {
        // URL -> the first tip that names it.
        let mut wanted: BTreeMap<&str, &Certificate> = BTreeMap::new();
        for &tip in tips {
            for url in tip.ca_issuers.iter().take(self.config.max_urls_per_cert) {
                if !self.outcomes.contains_key(&**url) {
                    wanted.entry(url).or_insert(tip);
                }
            }
        }
        let mut local = Vec::new();
        let mut remote = Vec::new();
        for &url in wanted.keys() {
            match self.resolve_locally(url) {
                Ok(outcome) => local.push((url, outcome)),
                Err(fetcher) => remote.push((url, fetcher)),
            }
        }
        let downloaded = self.download_all(&remote);
        let mut resolved: Vec<(&str, UrlOutcome)> = local;
        resolved.extend(remote.iter().map(|(url, _)| *url).zip(downloaded));
        resolved.sort_by(|a, b| a.0.cmp(b.0));
        let mut arrived = Vec::new();
        for (url, outcome) in resolved {
            let source = match &outcome {
                UrlOutcome::Fetched(certs) => {
                    self.cache_if_genuine(url, wanted[url], certs);
                    Some((certs, Source::Aia { url: url.into() }))
                }
                UrlOutcome::Cached(certs) => {
                    self.drop_if_not_genuine(url, wanted[url], certs);
                    Some((certs, Source::Cache { url: url.into() }))
                }
                UrlOutcome::Failed(_) => None,
            };
            if let Some((certs, source)) = source {
                arrived.extend(certs.iter().map(|c| (c.clone(), source.clone())));
            }
            self.outcomes.insert(url.to_string(), outcome);
        }
        arrived
    }
}

/// Whether one of `certs` is named as `child`'s issuer and its key verifies `child`'s
/// signature: only then is a response worth caching.
fn issues(child: &Certificate, certs: &[Arc<Certificate>]) -> bool {
    certs.iter().any(|c| {
        *c.subject_key == *child.issuer_key && check_signature(child, c) == SigCheck::Valid
    })
}

/// Parses an AIA response: a DER certificate, PEM, or PKCS#7 (DER or PEM).
pub fn parse_response(body: &[u8]) -> Result<Vec<Arc<Certificate>>, FetchError> {
    // caIssuers serves certificates, never key stores: a PFX would only cost KDF work.
    if load::pkcs12::looks_like_pfx(body) {
        return Err(FetchError::NotCertificates);
    }
    let contents = load::parse_bytes(body, Path::new("<aia response>"), &NoPassword)
        .map_err(|_| FetchError::NotCertificates)?;
    if contents.certs.len() > MAX_CERTS_PER_RESPONSE {
        return Err(FetchError::TooManyCertificates(MAX_CERTS_PER_RESPONSE));
    }
    if contents.certs.is_empty() {
        return Err(FetchError::NotCertificates);
    }
    Ok(contents.certs.into_iter().map(Arc::new).collect())
}
