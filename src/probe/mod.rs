//! Probe stage: connect to a live mail server, get through SMTP, IMAP or POP3 to STARTTLS (or
//! straight to TLS on ports 465, 993 and 995), and capture the certificate chain exactly as presented, without
//! validating it. The captured chain then goes through the same chain building and diagnosis
//! as files do.
//!
//! rustls is tried first (TLS 1.3 and modern TLS 1.2). A server that only offers legacy TLS
//! (CBC suites, RSA key exchange, TLS 1.0/1.1: older Exchange and IIS) refuses it before
//! sending certificates, so a fresh connection then sends a hand-built TLS 1.2 ClientHello
//! offering those suites and reads the plaintext Certificate message (see `tls.rs`).
//!
//! Every connection attempt is bounded by one deadline (`--timeout`), however slowly the
//! server trickles bytes.

pub mod mailbox;
pub mod smtp;
pub mod tls;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

pub use mailbox::MailboxError;
pub use smtp::SmtpError;
pub use tls::{CaptureMethod, Captured, TlsError};

/// `HOST[:PORT]`; IPv6 literals as `[::1]:25`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub host: String,
    pub port: u16,
}

impl Target {
    pub fn parse(s: &str) -> Result<Target, String> {
        let s = s.trim();
        let bad = || format!("{s:?} is not HOST[:PORT]");
        if s.is_empty() || s.contains(char::is_whitespace) || s.contains('/') {
            return Err(bad());
        }
        let (host, port) = if let Some(rest) = s.strip_prefix('[') {
            let (host, after) = rest.split_once(']').ok_or_else(bad)?;
            match after.strip_prefix(':') {
                Some(p) => (host, Some(p)),
                None if after.is_empty() => (host, None),
                None => return Err(bad()),
            }
        } else if s.matches(':').count() > 1 {
            (s, None) // a bare IPv6 address
        } else {
            match s.split_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (s, None),
            }
        };
        let port = match port {
            Some(p) => p.parse().ok().filter(|&p| p != 0).ok_or_else(bad)?,
            None => 25,
        };
        if host.is_empty() {
            return Err(bad());
        }
        Ok(Target {
            host: host.to_string(),
            port,
        })
    }

    /// `host:port` (`[v6]:port`).
    pub fn label(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// Whether the host is an IP address (then there is no name to check or send as SNI).
    pub fn is_ip(&self) -> bool {
        self.host.parse::<std::net::IpAddr>().is_ok()
    }
}

/// How TLS is started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartTls {
    /// EHLO, STARTTLS, then the handshake (ports 25 and 587).
    Smtp,
    /// IMAP `STARTTLS` (RFC 3501 §6.2.1), then the handshake (port 143).
    Imap,
    /// POP3 `STLS` (RFC 2595 §4), then the handshake (port 110).
    Pop3,
    /// The handshake right away (ports 465, 993 and 995: "implicit TLS", RFC 8314 §3.3).
    None,
}

impl StartTls {
    /// The choice by port when none is given: 465 (submissions), 993 (imaps) and 995 (pop3s)
    /// start TLS at once (RFC 8314 §7.3, §7.4); 143 is IMAP and 110 POP3 with STARTTLS; any
    /// other port is SMTP.
    pub fn for_port(port: u16) -> StartTls {
        match port {
            465 | 993 | 995 => StartTls::None,
            143 => StartTls::Imap,
            110 => StartTls::Pop3,
            _ => StartTls::Smtp,
        }
    }
}

#[derive(Debug, Clone)]
pub struct ProbeOptions {
    /// `None`: chosen by port ([`StartTls::for_port`]).
    pub starttls: Option<StartTls>,
    /// SNI; default the target host (none for an IP address).
    pub servername: Option<String>,
    pub helo: String,
    /// For each connection attempt, connect to last byte.
    pub timeout: Duration,
}

/// What the server presented.
#[derive(Debug)]
pub struct Served {
    pub captured: Captured,
    pub starttls: bool,
    pub address: SocketAddr,
}

#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error("cannot resolve {0}")]
    Resolve(String),
    #[error("connection to {0} refused")]
    Refused(String),
    #[error("cannot connect to {addr}: {why}")]
    Connect { addr: String, why: String },
    #[error("no answer from {0} within the timeout")]
    ConnectTimeout(String),
    #[error(transparent)]
    Smtp(#[from] SmtpError),
    #[error(transparent)]
    Mailbox(#[from] MailboxError),
    #[error(transparent)]
    Tls(#[from] TlsError),
}

/// Probes one target.
pub fn probe(target: &Target, opts: &ProbeOptions) -> Result<Served, ProbeError> {
    let mode = opts
        .starttls
        .unwrap_or_else(|| StartTls::for_port(target.port));
    let sni = opts
        .servername
        .clone()
        .unwrap_or_else(|| target.host.clone());
    let (mut stream, address) = connect(target, opts)?;
    let first = session(&mut stream, mode, opts, |s| tls::capture_rustls(s, &sni));
    let captured = match first {
        Ok(c) => c,
        Err(ProbeError::Tls(e)) if tls::fallback_worthy(&e) => {
            let (mut again, _) = connect(target, opts)?;
            session(&mut again, mode, opts, |s| tls::capture_legacy(s, &sni))?
        }
        Err(e) => return Err(e),
    };
    Ok(Served {
        captured,
        starttls: mode != StartTls::None,
        address,
    })
}

fn session(
    stream: &mut Deadline,
    mode: StartTls,
    opts: &ProbeOptions,
    capture: impl FnOnce(&mut Deadline) -> Result<Captured, TlsError>,
) -> Result<Captured, ProbeError> {
    match mode {
        StartTls::Smtp => {
            smtp::starttls(stream, &opts.helo)?;
        }
        StartTls::Imap => mailbox::starttls(stream, mailbox::Protocol::Imap)?,
        StartTls::Pop3 => mailbox::starttls(stream, mailbox::Protocol::Pop3)?,
        StartTls::None => {}
    }
    Ok(capture(stream)?)
}

fn connect(target: &Target, opts: &ProbeOptions) -> Result<(Deadline, SocketAddr), ProbeError> {
    let label = target.label();
    let addrs: Vec<SocketAddr> = (target.host.as_str(), target.port)
        .to_socket_addrs()
        .map_err(|_| ProbeError::Resolve(target.host.clone()))?
        .collect();
    if addrs.is_empty() {
        return Err(ProbeError::Resolve(target.host.clone()));
    }
    let mut last = ProbeError::Resolve(target.host.clone());
    for addr in addrs {
        match TcpStream::connect_timeout(&addr, opts.timeout) {
            Ok(stream) => {
                let deadline = Instant::now() + opts.timeout;
                return Ok((Deadline { stream, deadline }, addr));
            }
            Err(e) => {
                last = match e.kind() {
                    std::io::ErrorKind::ConnectionRefused => ProbeError::Refused(label.clone()),
                    std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock => {
                        ProbeError::ConnectTimeout(label.clone())
                    }
                    _ => ProbeError::Connect {
                        addr: addr.to_string(),
                        why: e.to_string(),
                    },
                }
            }
        }
    }
    Err(last)
}

/// A TCP stream whose every read and write must finish before one deadline.
pub struct Deadline {
    stream: TcpStream,
    deadline: Instant,
}

impl Deadline {
    fn remaining(&self) -> std::io::Result<Duration> {
        let left = self.deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "probe deadline reached",
            ))
        } else {
            Ok(left)
        }
    }
}

impl Read for Deadline {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let left = self.remaining()?;
        self.stream.set_read_timeout(Some(left))?;
        self.stream.read(buf)
    }
}

impl Write for Deadline {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let left = self.remaining()?;
        self.stream.set_write_timeout(Some(left))?;
        self.stream.write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.stream.flush()
    }
}

/// This machine's name, for EHLO: `/proc/sys/kernel/hostname`, else `localhost`.
pub fn local_hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".to_string())
}

#[cfg(test)]
mod tests {
    use super::Target;

    #[test]
    fn targets_parse_with_default_port_and_ipv6() {
        let t = |s: &str| Target::parse(s).map(|t| (t.host, t.port));
        assert_eq!(t("mx.example.com"), Ok(("mx.example.com".into(), 25)));
        assert_eq!(t("mx.example.com:465"), Ok(("mx.example.com".into(), 465)));
        assert_eq!(t("[::1]:587"), Ok(("::1".into(), 587)));
        assert_eq!(t("::1"), Ok(("::1".into(), 25)));
        assert_eq!(t("127.0.0.1:2525"), Ok(("127.0.0.1".into(), 2525)));
        assert!(t("mx:0").is_err());
        assert!(t("mx:99999").is_err());
        assert!(t("").is_err());
        assert!(t("smtp://mx").is_err());
        assert!(t(":25").is_err());
    }

    #[test]
    fn ports_choose_how_tls_starts() {
        use super::StartTls;
        assert_eq!(StartTls::for_port(25), StartTls::Smtp);
        assert_eq!(StartTls::for_port(587), StartTls::Smtp);
        assert_eq!(StartTls::for_port(465), StartTls::None);
        assert_eq!(StartTls::for_port(143), StartTls::Imap);
        assert_eq!(StartTls::for_port(993), StartTls::None);
        assert_eq!(StartTls::for_port(110), StartTls::Pop3);
        assert_eq!(StartTls::for_port(995), StartTls::None);
    }
}
