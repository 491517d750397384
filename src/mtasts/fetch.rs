//! The policy fetch (RFC 8461 §3.3): HTTPS GET of `https://mta-sts.<domain>/.well-known/mta-sts.txt`
//! with rustls, the certificate validated as the Web PKI validates it (webpki: DNS-ID names
//! only, wildcards as the whole left-most label, not expired, chaining to Mozilla's roots as
//! chainfix embeds them, plus any `--sts-roots`), all under one deadline.
//!
//! The caller resolves `mta-sts.<domain>` itself (through its own DNS client) and passes the
//! addresses; the first that accepts a TCP connection is used. The HTTP side is `http.rs`.

use std::fmt;
use std::io::{self, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, ClientConfig, ClientConnection, RootCertStore};

use super::http;
use super::quote;

/// Most addresses of the policy host tried (a hostile DNS answer may list hundreds).
pub const MAX_ADDRS: usize = 8;
/// A timeout for the whole fetch when the caller has no better one: RFC 8461 §3.3 suggests
/// one minute ("A suggested timeout is one minute").
pub const SUGGESTED_TIMEOUT: Duration = Duration::from_secs(60);

/// What the fetch needs.
#[derive(Debug, Clone)]
pub struct Request<'a> {
    /// The policy domain (the mail domain), e.g. `example.com`; `mta-sts.` is put in front.
    pub domain: &'a str,
    /// The addresses of `mta-sts.<domain>`, in the order to try them.
    pub addrs: &'a [IpAddr],
    /// 443, or `--sts-port`.
    pub port: u16,
    /// DER certificates trusted as roots besides Mozilla's (`--sts-roots`).
    pub extra_roots: &'a [Vec<u8>],
    /// When the whole fetch (connect, handshake, response) must be done.
    pub deadline: Instant,
    /// The time certificates are judged at (Unix seconds; `--at` pins it).
    pub now: i64,
}

/// A policy body fetched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetched {
    /// Where it came from.
    pub url: String,
    /// The address that answered.
    pub addr: SocketAddr,
    /// The body, at most [`http::MAX_BODY`] bytes; `policy::parse` reads it.
    pub body: Vec<u8>,
}

/// Which step ran out of time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    Connect,
    Handshake,
    Response,
}

impl Stage {
    fn as_str(self) -> &'static str {
        match self {
            Stage::Connect => "connecting",
            Stage::Handshake => "the TLS handshake",
            Stage::Response => "the HTTP response",
        }
    }
}

/// What is wrong with the policy host's certificate (rustls/webpki's verdict).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CertProblem {
    /// No path to a trusted root.
    UnknownIssuer,
    /// The leaf does not name the policy host in a DNS subjectAltName (RFC 8461 §3.3:
    /// "matching is performed only against the DNS-ID identifiers"); the names it has.
    NameMismatch(Vec<String>),
    Expired,
    NotYetValid,
    /// An extendedKeyUsage without serverAuth.
    WrongPurpose,
    BadSignature,
    /// webpki's words for anything else.
    Other(String),
}

impl CertProblem {
    fn of(e: &CertificateError) -> CertProblem {
        match e {
            CertificateError::UnknownIssuer => CertProblem::UnknownIssuer,
            CertificateError::NotValidForName => CertProblem::NameMismatch(Vec::new()),
            CertificateError::NotValidForNameContext { presented, .. } => {
                CertProblem::NameMismatch(presented.clone())
            }
            CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                CertProblem::Expired
            }
            CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
                CertProblem::NotYetValid
            }
            CertificateError::InvalidPurpose | CertificateError::InvalidPurposeContext { .. } => {
                CertProblem::WrongPurpose
            }
            CertificateError::BadSignature => CertProblem::BadSignature,
            other => CertProblem::Other(format!("{other:?}")),
        }
    }
}

/// Why no policy body was fetched. Senders then have no policy (RFC 8461 §3.3: "If a valid TXT
/// record is found but no policy can be fetched via HTTPS (for any reason) ... senders MUST
/// continue with delivery as though the domain has not implemented MTA-STS").
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FetchError {
    /// `mta-sts.<domain>` is no valid DNS name.
    BadDomain(String),
    /// The caller found no address for the policy host.
    NoAddress,
    /// An extra root is no certificate webpki can use as a trust anchor.
    BadRoot(String),
    /// No address accepted a connection; the last error.
    Connect {
        addr: SocketAddr,
        reason: String,
    },
    Timeout(Stage),
    /// The policy host's certificate fails Web PKI validation.
    Certificate {
        host: String,
        problem: CertProblem,
    },
    /// The TLS handshake failed otherwise (an alert, no common version or suite).
    Tls(String),
    /// A 3xx: RFC 8461 §3.3 "HTTP 3xx redirects MUST NOT be followed".
    Redirect {
        status: u16,
        location: Option<String>,
    },
    /// Any status other than 200 (RFC 8461 §3.3: policies are "only valid if the HTTP
    /// response code is 200 (OK)").
    Status {
        status: u16,
        reason: String,
    },
    /// The media type is not `text/plain` (RFC 8461 §3.2); the Content-Type sent, if any.
    ContentType(Option<String>),
    /// The body is over the limit (bytes).
    TooLarge(usize),
    /// Over [`http::MAX_HEADER_BYTES`] or [`http::MAX_HEADER_LINES`].
    HeadersTooLarge,
    /// The response is not HTTP/1.x as RFC 9112 writes it.
    Malformed(&'static str),
    /// The connection ended before the response was complete.
    Truncated,
    /// Another I/O error.
    Io(String),
}

impl FetchError {
    /// Stable detail code (JSON `detail` of `mta-sts-policy-unavailable`).
    pub fn code(&self) -> &'static str {
        match self {
            FetchError::BadDomain(_) => "bad-domain",
            FetchError::NoAddress => "no-address",
            FetchError::BadRoot(_) => "bad-root",
            FetchError::Connect { .. } => "connect-failed",
            FetchError::Timeout(_) => "timeout",
            FetchError::Certificate { problem, .. } => match problem {
                CertProblem::UnknownIssuer => "certificate-untrusted",
                CertProblem::NameMismatch(_) => "certificate-name-mismatch",
                CertProblem::Expired => "certificate-expired",
                CertProblem::NotYetValid => "certificate-not-yet-valid",
                CertProblem::WrongPurpose | CertProblem::BadSignature | CertProblem::Other(_) => {
                    "certificate-invalid"
                }
            },
            FetchError::Tls(_) => "tls-failed",
            FetchError::Redirect { .. } => "redirect",
            FetchError::Status { .. } => "http-status",
            FetchError::ContentType(_) => "content-type",
            FetchError::TooLarge(_) => "too-large",
            FetchError::HeadersTooLarge => "headers-too-large",
            FetchError::Malformed(_) => "malformed-response",
            FetchError::Truncated => "truncated",
            FetchError::Io(_) => "io",
        }
    }

    /// An I/O error while reading or writing the HTTP exchange.
    pub(crate) fn from_io(e: io::Error) -> FetchError {
        FetchError::in_stage(e, Stage::Response)
    }

    fn in_stage(e: io::Error, stage: Stage) -> FetchError {
        if let Some(tls) = e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) {
            return FetchError::of_tls(tls);
        }
        match e.kind() {
            io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => FetchError::Timeout(stage),
            io::ErrorKind::UnexpectedEof | io::ErrorKind::ConnectionReset
                if stage == Stage::Handshake =>
            {
                FetchError::Tls("the server closed the connection during the handshake".into())
            }
            io::ErrorKind::UnexpectedEof
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe => FetchError::Truncated,
            _ => FetchError::Io(e.to_string()),
        }
    }

    fn of_tls(e: &rustls::Error) -> FetchError {
        match e {
            rustls::Error::InvalidCertificate(c) => FetchError::Certificate {
                host: String::new(),
                problem: CertProblem::of(c),
            },
            other => FetchError::Tls(other.to_string()),
        }
    }
}

impl fmt::Display for FetchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FetchError::BadDomain(d) => write!(f, "\"{}\" is not a DNS name", quote(d)),
            FetchError::NoAddress => write!(f, "the policy host has no address"),
            FetchError::BadRoot(why) => {
                write!(f, "an --sts-roots certificate is not a usable root: {why}")
            }
            FetchError::Connect { addr, reason } => {
                write!(f, "cannot connect to {addr}: {reason}")
            }
            FetchError::Timeout(stage) => {
                write!(f, "timed out during {}", stage.as_str())
            }
            FetchError::Certificate { host, problem } => match problem {
                CertProblem::UnknownIssuer => write!(
                    f,
                    "the certificate of {host} does not chain to a trusted root (Mozilla's \
                     roots, as senders use)"
                ),
                CertProblem::NameMismatch(names) if names.is_empty() => {
                    write!(f, "the certificate is not valid for {host}")
                }
                CertProblem::NameMismatch(names) => {
                    let names: Vec<String> = names.iter().map(|n| quote(n)).collect();
                    write!(
                        f,
                        "the certificate is not valid for {host}; it names {}",
                        names.join(", ")
                    )
                }
                CertProblem::Expired => write!(f, "the certificate of {host} has expired"),
                CertProblem::NotYetValid => {
                    write!(f, "the certificate of {host} is not valid yet")
                }
                CertProblem::WrongPurpose => write!(
                    f,
                    "the certificate of {host} is not for TLS servers (extendedKeyUsage)"
                ),
                CertProblem::BadSignature => write!(
                    f,
                    "a signature in the certificate chain of {host} does not verify"
                ),
                CertProblem::Other(why) => {
                    write!(f, "the certificate of {host} is invalid: {}", quote(why))
                }
            },
            FetchError::Tls(why) => write!(f, "TLS handshake failed: {}", quote(why)),
            FetchError::Redirect { status, location } => {
                write!(f, "HTTP {status}, a redirect")?;
                if let Some(to) = location {
                    write!(f, " to {}", quote(to))?;
                }
                write!(f, "; senders do not follow redirects (RFC 8461 §3.3)")
            }
            FetchError::Status { status, reason } => {
                write!(f, "HTTP {status} {}, not 200", quote(reason))
            }
            FetchError::ContentType(None) => {
                write!(
                    f,
                    "no Content-Type; senders should accept only text/plain (RFC 8461 §3.2)"
                )
            }
            FetchError::ContentType(Some(t)) => write!(
                f,
                "Content-Type \"{}\", not text/plain, which senders should require (RFC 8461 \
                 §3.2)",
                quote(t)
            ),
            FetchError::TooLarge(limit) => write!(
                f,
                "the policy is over {} KiB (the limit RFC 8461 §3.3 suggests)",
                limit / 1024
            ),
            FetchError::HeadersTooLarge => write!(
                f,
                "the response header is over {} KiB or {} fields",
                http::MAX_HEADER_BYTES / 1024,
                http::MAX_HEADER_LINES
            ),
            FetchError::Malformed(what) => write!(f, "not an HTTP/1.x response: {what}"),
            FetchError::Truncated => write!(f, "the connection ended before the response did"),
            FetchError::Io(why) => write!(f, "{}", quote(why)),
        }
    }
}

impl std::error::Error for FetchError {}

/// `mta-sts.<domain>`, lower-cased, without a trailing dot, in A-labels; `None` when that is
/// no DNS name.
pub fn policy_host(domain: &str) -> Option<String> {
    let domain = crate::hostname::to_ascii(domain)?;
    let host = format!("mta-sts.{domain}");
    let is_dns = matches!(
        ServerName::try_from(host.as_str()),
        Ok(ServerName::DnsName(_))
    );
    is_dns.then_some(host)
}

/// The policy URL as a report shows it (the port only when it is not 443).
pub fn policy_url(domain: &str, port: u16) -> String {
    let host = policy_host(domain).unwrap_or_else(|| format!("mta-sts.{domain}"));
    let port = if port == 443 {
        String::new()
    } else {
        format!(":{port}")
    };
    format!("https://{host}{port}{}", http::POLICY_PATH)
}

/// Fetches the policy body.
pub fn fetch(req: &Request<'_>) -> Result<Fetched, FetchError> {
    let host = policy_host(req.domain).ok_or_else(|| FetchError::BadDomain(req.domain.into()))?;
    let config = client_config(req.extra_roots, req.now)?;
    let name =
        ServerName::try_from(host.clone()).map_err(|_| FetchError::BadDomain(req.domain.into()))?;
    let (tcp, addr) = connect(req)?;
    let mut sock = Deadline {
        tcp,
        deadline: req.deadline,
    };
    let mut conn =
        ClientConnection::new(config, name).map_err(|e| FetchError::Tls(e.to_string()))?;
    while conn.is_handshaking() {
        conn.complete_io(&mut sock)
            .map_err(|e| FetchError::in_stage(e, Stage::Handshake))
            .map_err(|e| with_host(e, &host))?;
    }
    let mut tls = rustls::StreamOwned::new(conn, sock);
    // RFC 9112 §3.2: the Host field carries the port when it is not the scheme's default.
    let authority = match req.port {
        443 => host.clone(),
        port => format!("{host}:{port}"),
    };
    let body = http::exchange(&mut tls, &authority)?;
    Ok(Fetched {
        url: policy_url(req.domain, req.port),
        addr,
        body,
    })
}

fn with_host(e: FetchError, host: &str) -> FetchError {
    match e {
        FetchError::Certificate { problem, .. } => FetchError::Certificate {
            host: host.to_string(),
            problem,
        },
        other => other,
    }
}

/// rustls with the *ring* provider, webpki validation against Mozilla's roots plus
/// `extra_roots`, time pinned at `now`, ALPN `http/1.1`.
fn client_config(extra_roots: &[Vec<u8>], now: i64) -> Result<Arc<ClientConfig>, FetchError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = RootCertStore::empty();
    roots.add_parsable_certificates(webpki_root_certs::TLS_SERVER_ROOT_CERTS.iter().cloned());
    for der in extra_roots {
        roots
            .add(CertificateDer::from(der.clone()))
            .map_err(|e| FetchError::BadRoot(e.to_string()))?;
    }
    let verifier = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .map_err(|e| FetchError::BadRoot(e.to_string()))?;
    let time = Arc::new(FixedTime(UnixTime::since_unix_epoch(Duration::from_secs(
        u64::try_from(now).unwrap_or(0),
    ))));
    let mut config = ClientConfig::builder_with_details(provider, time)
        .with_safe_default_protocol_versions()
        .map_err(|e| FetchError::Tls(e.to_string()))?
        .with_webpki_verifier(verifier)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// The clock rustls judges certificates by: `now`, not the system's.
#[derive(Debug)]
struct FixedTime(UnixTime);

impl rustls::time_provider::TimeProvider for FixedTime {
    fn current_time(&self) -> Option<UnixTime> {
        Some(self.0)
    }
}

/// The first of the addresses (at most [`MAX_ADDRS`]) that accepts a connection.
fn connect(req: &Request<'_>) -> Result<(TcpStream, SocketAddr), FetchError> {
    let mut last = FetchError::NoAddress;
    for ip in req.addrs.iter().take(MAX_ADDRS) {
        let addr = SocketAddr::new(*ip, req.port);
        let Some(left) = remaining(req.deadline) else {
            return Err(FetchError::Timeout(Stage::Connect));
        };
        match TcpStream::connect_timeout(&addr, left) {
            Ok(tcp) => return Ok((tcp, addr)),
            Err(e) if e.kind() == io::ErrorKind::TimedOut => {
                last = FetchError::Timeout(Stage::Connect)
            }
            Err(e) => {
                last = FetchError::Connect {
                    addr,
                    reason: e.to_string(),
                }
            }
        }
    }
    Err(last)
}

fn remaining(deadline: Instant) -> Option<Duration> {
    deadline
        .checked_duration_since(Instant::now())
        .filter(|d| !d.is_zero())
}

/// A TCP stream whose every read and write ends by the deadline: a server that trickles a
/// byte at a time cannot stretch the fetch.
struct Deadline {
    tcp: TcpStream,
    deadline: Instant,
}

impl Deadline {
    fn left(&self) -> io::Result<Duration> {
        remaining(self.deadline).ok_or_else(|| io::Error::from(io::ErrorKind::TimedOut))
    }
}

impl Read for Deadline {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.tcp.set_read_timeout(Some(self.left()?))?;
        self.tcp.read(buf)
    }
}

impl Write for Deadline {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.tcp.set_write_timeout(Some(self.left()?))?;
        self.tcp.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.tcp.flush()
    }
}

#[cfg(test)]
mod tests {
    //! Names and messages; the fetch itself is tested against nginx in tests/mtasts.rs.

    use super::*;

    #[test]
    fn the_policy_host_and_url() {
        assert_eq!(
            policy_host("Example.COM.").as_deref(),
            Some("mta-sts.example.com")
        );
        assert_eq!(policy_host("bad domain"), None);
        assert_eq!(
            policy_url("example.com", 443),
            "https://mta-sts.example.com/.well-known/mta-sts.txt"
        );
        assert_eq!(
            policy_url("example.com", 8443),
            "https://mta-sts.example.com:8443/.well-known/mta-sts.txt"
        );
    }

    #[test]
    fn no_address_and_a_dead_port_are_named() {
        let base = Request {
            domain: "example.com",
            addrs: &[],
            port: 1,
            extra_roots: &[],
            deadline: Instant::now() + Duration::from_secs(5),
            now: 1_800_000_000,
        };
        assert_eq!(fetch(&base), Err(FetchError::NoAddress));
        let local = [IpAddr::from([127, 0, 0, 1])];
        let dead = Request {
            addrs: &local,
            ..base
        };
        let err = fetch(&dead).expect_err("nothing listens on port 1");
        assert_eq!(err.code(), "connect-failed", "{err}");
        let bad_root = Request {
            extra_roots: &[b"not DER".to_vec()],
            ..dead
        };
        assert_eq!(fetch(&bad_root).map_err(|e| e.code()), Err("bad-root"));
    }

    /// Eight refusing addresses use up the budget: the ninth, which would answer, is never
    /// tried.
    #[test]
    fn at_most_eight_addresses_are_tried() {
        let listener = std::net::TcpListener::bind("127.0.0.10:0").expect("bind 127.0.0.10");
        let port = listener.local_addr().expect("addr").port();
        let mut addrs: Vec<IpAddr> = (2..2 + MAX_ADDRS as u8)
            .map(|i| IpAddr::from([127, 0, 0, i]))
            .collect();
        addrs.push(IpAddr::from([127, 0, 0, 10]));
        let req = Request {
            domain: "example.com",
            addrs: &addrs,
            port,
            extra_roots: &[],
            deadline: Instant::now() + Duration::from_secs(5),
            now: 1_800_000_000,
        };
        assert_eq!(fetch(&req).map_err(|e| e.code()), Err("connect-failed"));
        // Within the budget the listener is reached (and, silent, times out).
        let reachable = Request {
            addrs: &addrs[MAX_ADDRS - 1..],
            deadline: Instant::now() + Duration::from_millis(300),
            ..req
        };
        assert_eq!(fetch(&reachable).map_err(|e| e.code()), Err("timeout"));
    }

    #[test]
    fn server_text_in_messages_is_escaped() {
        let e = FetchError::Redirect {
            status: 302,
            location: Some("https://x/\r\nFORGED".into()),
        };
        let text = e.to_string();
        assert!(
            !text.contains('\r') && text.contains("\\r\\nFORGED"),
            "{text}"
        );
    }
}
