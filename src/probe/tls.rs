//! Probe stage, TLS: capture the certificate chain a server presents, without validating it.
//!
//! The chain is whatever the server puts in its Certificate handshake message: a list of DER
//! certificates, the server's own first, the others meant to certify the one before them
//! (RFC 5246 §7.4.2 for TLS 1.2 and older; RFC 8446 §4.4.2 for TLS 1.3, which relaxes the
//! ordering to a SHOULD). We keep it exactly as sent, order and duplicates included, because
//! diagnosing what the server got wrong is the whole point.
//!
//! Two methods exist because neither reaches every server:
//!
//! * [`capture_rustls`] runs a real handshake with rustls and a verifier that accepts
//!   anything but records the chain. It is the only way to read a TLS 1.3 chain: in TLS 1.3
//!   the Certificate message travels encrypted under the handshake keys (RFC 8446 §4.4.2), so
//!   a key exchange has to actually happen. But rustls offers only TLS 1.3 and TLS 1.2 with
//!   ECDHE and AEAD suites, so a server that speaks only TLS 1.0/1.1, or TLS 1.2 with CBC
//!   suites or RSA key exchange (older Exchange/IIS, old appliances), refuses the
//!   ClientHello before sending any certificate.
//! * [`capture_legacy`] sends a hand-built TLS 1.2 ClientHello that also offers those legacy
//!   suites, and reads the server's answer without any cryptography: up to TLS 1.2 the
//!   ServerHello, Certificate and everything before ChangeCipherSpec travel in plaintext
//!   (RFC 5246 §7.4.2), so the Certificate message can simply be parsed off the wire. Having
//!   read it, we abort the handshake with an alert; no key is ever exchanged. It cannot reach
//!   a TLS 1.3-only server, which is why it is the fallback and not the first try.
//!
//! [`fallback_worthy`] says when a rustls failure is worth a second connection with the
//! legacy method. Nothing here sets timeouts: the caller's stream does (a read or write that
//! fails with `WouldBlock`/`TimedOut` becomes [`TlsError::Timeout`]).

use std::io::{self, Read, Write};
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, ClientConnection, DigitallySignedStruct, SignatureScheme};

/// What the server presented, and how we got it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Captured {
    /// DER certificates exactly as sent, in order (leaf first as the server sent them).
    pub certs: Vec<Vec<u8>>,
    /// "TLSv1.3", "TLSv1.2", "TLSv1.1", "TLSv1.0" (and "SSLv3" should a server answer so).
    pub version: String,
    /// IANA cipher suite name, e.g. "TLS_AES_128_GCM_SHA256" or
    /// "TLS_RSA_WITH_AES_128_CBC_SHA" ("0xc013" style if unknown).
    pub cipher: String,
    pub method: CaptureMethod,
}

/// Which of the two capture methods produced a [`Captured`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaptureMethod {
    Rustls,
    LegacyHello,
}

impl CaptureMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            CaptureMethod::Rustls => "rustls",
            CaptureMethod::LegacyHello => "legacy-hello",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("timed out during the TLS handshake")]
    Timeout,
    /// The alert's name and number, e.g. "handshake_failure (40)".
    #[error("the server sent TLS alert {0}")]
    Alert(String),
    #[error("TLS handshake failed: {0}")]
    Handshake(String),
    #[error("the server sent no certificate")]
    NoCertificate,
    #[error("connection closed during the TLS handshake")]
    Closed,
    #[error("{0}")]
    Io(String),
}

/// Most bytes read from the server before giving up on seeing its certificates.
const MAX_READ: usize = 256 * 1024;
/// Most certificates accepted in one Certificate message.
const MAX_CERTS: usize = 64;
/// Largest record payload accepted: 2^14 plaintext plus the 2048 bytes of expansion that
/// RFC 5246 §6.2.3 allows a ciphertext record, so a lenient but bounded limit.
const MAX_RECORD: usize = (1 << 14) + 2048;

// Record content types (RFC 5246 §6.2.1).
const CHANGE_CIPHER_SPEC: u8 = 20;
const ALERT: u8 = 21;
const HANDSHAKE: u8 = 22;
const APPLICATION_DATA: u8 = 23;

// Handshake message types (RFC 5246 §7.4).
const HELLO_REQUEST: u8 = 0;
const CLIENT_HELLO: u8 = 1;
const SERVER_HELLO: u8 = 2;
const CERTIFICATE: u8 = 11;
const SERVER_HELLO_DONE: u8 = 14;

/// user_canceled, sent (fatal) to abort the legacy handshake once we have the chain.
const USER_CANCELED: u8 = 90;

/// The suites the legacy ClientHello offers, in our order of preference: the modern ones
/// first (a server that accepts them would also have talked to rustls, unless it trips over
/// something else), then CBC, RSA key exchange, 3DES and RC4. Offering broken suites is
/// harmless here: the handshake is abandoned before any key is exchanged.
const LEGACY_SUITES: &[(u16, &str)] = &[
    (0xc02b, "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"),
    (0xc02f, "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"),
    (0xc02c, "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384"),
    (0xc030, "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384"),
    (0xcca9, "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256"),
    (0xcca8, "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256"),
    (0x009e, "TLS_DHE_RSA_WITH_AES_128_GCM_SHA256"),
    (0x009f, "TLS_DHE_RSA_WITH_AES_256_GCM_SHA384"),
    (0xc023, "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256"),
    (0xc027, "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256"),
    (0xc024, "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA384"),
    (0xc028, "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA384"),
    (0xc009, "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA"),
    (0xc013, "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA"),
    (0xc00a, "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA"),
    (0xc014, "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA"),
    (0x0067, "TLS_DHE_RSA_WITH_AES_128_CBC_SHA256"),
    (0x006b, "TLS_DHE_RSA_WITH_AES_256_CBC_SHA256"),
    (0x0033, "TLS_DHE_RSA_WITH_AES_128_CBC_SHA"),
    (0x0039, "TLS_DHE_RSA_WITH_AES_256_CBC_SHA"),
    (0x009c, "TLS_RSA_WITH_AES_128_GCM_SHA256"),
    (0x009d, "TLS_RSA_WITH_AES_256_GCM_SHA384"),
    (0x003c, "TLS_RSA_WITH_AES_128_CBC_SHA256"),
    (0x003d, "TLS_RSA_WITH_AES_256_CBC_SHA256"),
    (0x002f, "TLS_RSA_WITH_AES_128_CBC_SHA"),
    (0x0035, "TLS_RSA_WITH_AES_256_CBC_SHA"),
    (0xc008, "TLS_ECDHE_ECDSA_WITH_3DES_EDE_CBC_SHA"),
    (0xc012, "TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA"),
    (0x0016, "TLS_DHE_RSA_WITH_3DES_EDE_CBC_SHA"),
    (0x000a, "TLS_RSA_WITH_3DES_EDE_CBC_SHA"),
    (0x0005, "TLS_RSA_WITH_RC4_128_SHA"),
    (0x0004, "TLS_RSA_WITH_RC4_128_MD5"),
];

/// TLS 1.3 suite names (RFC 8446 §B.4), for what rustls negotiates.
const TLS13_SUITES: &[(u16, &str)] = &[
    (0x1301, "TLS_AES_128_GCM_SHA256"),
    (0x1302, "TLS_AES_256_GCM_SHA384"),
    (0x1303, "TLS_CHACHA20_POLY1305_SHA256"),
];

/// IANA name of a cipher suite, or "0x%04x" if we do not know it.
fn cipher_name(code: u16) -> String {
    TLS13_SUITES
        .iter()
        .chain(LEGACY_SUITES)
        .find(|(c, _)| *c == code)
        .map_or_else(|| format!("0x{code:04x}"), |(_, name)| (*name).to_string())
}

fn version_name(code: u16) -> Option<&'static str> {
    match code {
        0x0304 => Some("TLSv1.3"),
        0x0303 => Some("TLSv1.2"),
        0x0302 => Some("TLSv1.1"),
        0x0301 => Some("TLSv1.0"),
        0x0300 => Some("SSLv3"),
        _ => None,
    }
}

/// "handshake_failure (40)": an alert's registered name and its number.
fn alert_label(code: u8) -> String {
    let name = match code {
        0 => "close_notify",
        10 => "unexpected_message",
        20 => "bad_record_mac",
        21 => "decryption_failed",
        22 => "record_overflow",
        30 => "decompression_failure",
        40 => "handshake_failure",
        41 => "no_certificate",
        42 => "bad_certificate",
        43 => "unsupported_certificate",
        44 => "certificate_revoked",
        45 => "certificate_expired",
        46 => "certificate_unknown",
        47 => "illegal_parameter",
        48 => "unknown_ca",
        49 => "access_denied",
        50 => "decode_error",
        51 => "decrypt_error",
        60 => "export_restriction",
        70 => "protocol_version",
        71 => "insufficient_security",
        80 => "internal_error",
        86 => "inappropriate_fallback",
        90 => "user_canceled",
        100 => "no_renegotiation",
        109 => "missing_extension",
        110 => "unsupported_extension",
        111 => "certificate_unobtainable",
        112 => "unrecognized_name",
        113 => "bad_certificate_status_response",
        114 => "bad_certificate_hash_value",
        115 => "unknown_psk_identity",
        116 => "certificate_required",
        120 => "no_application_protocol",
        _ => "unknown",
    };
    format!("{name} ({code})")
}

fn io_error(e: io::Error) -> TlsError {
    match e.kind() {
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => TlsError::Timeout,
        io::ErrorKind::UnexpectedEof
        | io::ErrorKind::ConnectionReset
        | io::ErrorKind::ConnectionAborted
        | io::ErrorKind::BrokenPipe => TlsError::Closed,
        _ => TlsError::Io(e.to_string()),
    }
}

// Prefixes of the Handshake messages made from rustls errors; `fallback_worthy` keys on them.
const PEER_INCOMPATIBLE: &str = "peer incompatible";
const PEER_MISBEHAVED: &str = "peer misbehaved";
const INVALID_MESSAGE: &str = "invalid message";
const UNEXPECTED_MESSAGE: &str = "unexpected message";

fn from_rustls(e: rustls::Error) -> TlsError {
    use rustls::Error as E;
    match e {
        E::AlertReceived(alert) => TlsError::Alert(alert_label(u8::from(alert))),
        E::PeerIncompatible(why) => TlsError::Handshake(format!("{PEER_INCOMPATIBLE}: {why:?}")),
        E::PeerMisbehaved(why) => TlsError::Handshake(format!("{PEER_MISBEHAVED}: {why:?}")),
        E::InvalidMessage(why) => TlsError::Handshake(format!("{INVALID_MESSAGE}: {why:?}")),
        e @ (E::InappropriateMessage { .. } | E::InappropriateHandshakeMessage { .. }) => {
            TlsError::Handshake(format!("{UNEXPECTED_MESSAGE}: {e}"))
        }
        other => TlsError::Handshake(other.to_string()),
    }
}

/// The name as a host name for SNI: trailing dot and IPv6 brackets removed, lowercased.
/// `None` for an IP address (RFC 6066 §3 forbids literal addresses in SNI) and for anything
/// that is not a plausible DNS name.
fn sni_host(server_name: &str) -> Option<String> {
    let name = server_name.trim();
    let name = name
        .strip_prefix('[')
        .and_then(|n| n.strip_suffix(']'))
        .unwrap_or(name);
    let name = name.strip_suffix('.').unwrap_or(name);
    if name.parse::<IpAddr>().is_ok() || name.is_empty() || name.len() > 253 {
        return None;
    }
    let plausible = name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_');
    plausible.then(|| name.to_ascii_lowercase())
}

// ---------------------------------------------------------------------------------------
// rustls
// ---------------------------------------------------------------------------------------

type Slot = Arc<Mutex<Option<Vec<Vec<u8>>>>>;

/// A verifier that accepts every certificate and signature and keeps a copy of the chain.
/// Safe here because nothing is ever sent over the connection: we only look at the chain.
#[derive(Debug)]
struct Recorder {
    slot: Slot,
    schemes: Vec<SignatureScheme>,
}

impl ServerCertVerifier for Recorder {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let chain = std::iter::once(end_entity)
            .chain(intermediates)
            .map(|c| c.as_ref().to_vec())
            .collect();
        *self.slot.lock().unwrap_or_else(PoisonError::into_inner) = Some(chain);
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }

    fn verify_tls13_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.schemes.clone()
    }
}

/// Handshake with rustls (TLS 1.3 and TLS 1.2 ECDHE/AEAD), accepting any certificate,
/// capturing the chain. The handshake is completed and then closed with close_notify; if it
/// fails after the chain was seen (a server demanding a client certificate, say), the chain
/// is returned anyway.
///
/// SNI is sent for a DNS name, not for an IP address; a name rustls cannot use as a DNS name
/// is probed without SNI rather than refused (the verifier ignores the name anyway).
pub fn capture_rustls<S: Read + Write>(
    stream: &mut S,
    server_name: &str,
) -> Result<Captured, TlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    // Everything ring can verify, plus the SHA-1 schemes some old TLS 1.2 servers still sign
    // with: we never check the signatures, so offering them costs nothing.
    let mut schemes = provider
        .signature_verification_algorithms
        .supported_schemes();
    for extra in [
        SignatureScheme::RSA_PKCS1_SHA1,
        SignatureScheme::ECDSA_SHA1_Legacy,
    ] {
        if !schemes.contains(&extra) {
            schemes.push(extra);
        }
    }
    let slot = Slot::default();
    let recorder = Arc::new(Recorder {
        slot: Arc::clone(&slot),
        schemes,
    });
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| TlsError::Handshake(format!("rustls configuration: {e}")))?
        .dangerous()
        .with_custom_certificate_verifier(recorder)
        .with_no_client_auth();
    config.resumption = rustls::client::Resumption::disabled();

    let name = match server_name_for_rustls(server_name) {
        Some(name) => name,
        None => {
            config.enable_sni = false;
            ServerName::DnsName(
                rustls::pki_types::DnsName::try_from("invalid")
                    .map_err(|e| TlsError::Handshake(format!("placeholder server name: {e}")))?,
            )
        }
    };
    let mut conn = ClientConnection::new(Arc::new(config), name)
        .map_err(|e| TlsError::Handshake(format!("rustls: {e}")))?;

    let outcome = drive(&mut conn, stream);
    let certs = slot.lock().unwrap_or_else(PoisonError::into_inner).take();
    let Some(certs) = certs else {
        return match outcome {
            Ok(()) => Err(TlsError::NoCertificate),
            Err(e) => Err(e),
        };
    };
    if certs.is_empty() {
        return Err(TlsError::NoCertificate);
    }
    if outcome.is_ok() {
        conn.send_close_notify();
        flush_best_effort(&mut conn, stream);
    }
    let version = match conn.protocol_version() {
        Some(rustls::ProtocolVersion::TLSv1_3) => "TLSv1.3".to_string(),
        Some(rustls::ProtocolVersion::TLSv1_2) => "TLSv1.2".to_string(),
        Some(other) => format!("{other:?}"),
        None => "unknown".to_string(),
    };
    let cipher = conn.negotiated_cipher_suite().map_or_else(
        || "unknown".to_string(),
        |s| cipher_name(u16::from(s.suite())),
    );
    Ok(Captured {
        certs,
        version,
        cipher,
        method: CaptureMethod::Rustls,
    })
}

fn server_name_for_rustls(server_name: &str) -> Option<ServerName<'static>> {
    let name = server_name.trim();
    let bare = name
        .strip_prefix('[')
        .and_then(|n| n.strip_suffix(']'))
        .unwrap_or(name);
    if let Ok(ip) = bare.parse::<IpAddr>() {
        return Some(ServerName::IpAddress(ip.into()));
    }
    let host = sni_host(name)?;
    ServerName::try_from(host).ok()
}

/// Runs the handshake to its end: writes what rustls wants written, reads and processes
/// until it is no longer handshaking.
fn drive<S: Read + Write>(conn: &mut ClientConnection, stream: &mut S) -> Result<(), TlsError> {
    let mut total = 0usize;
    loop {
        while conn.wants_write() {
            match conn.write_tls(stream) {
                Ok(0) => return Err(TlsError::Closed),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(io_error(e)),
            }
        }
        stream.flush().map_err(io_error)?;
        if !conn.is_handshaking() {
            return Ok(());
        }
        match conn.read_tls(stream) {
            Ok(0) => return Err(TlsError::Closed),
            Ok(n) => total += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(io_error(e)),
        }
        if total > MAX_READ {
            return Err(TlsError::Handshake(format!(
                "the server sent more than {} KiB without finishing the handshake",
                MAX_READ / 1024
            )));
        }
        if let Err(e) = conn.process_new_packets() {
            // rustls has queued an alert for the server; say goodbye if we still can.
            flush_best_effort(conn, stream);
            return Err(from_rustls(e));
        }
    }
}

fn flush_best_effort<S: Write>(conn: &mut ClientConnection, stream: &mut S) {
    while conn.wants_write() {
        match conn.write_tls(stream) {
            Ok(n) if n > 0 => {}
            _ => break,
        }
    }
    let _ = stream.flush();
}

// ---------------------------------------------------------------------------------------
// Hand-built legacy ClientHello
// ---------------------------------------------------------------------------------------

/// Sends a hand-built TLS 1.2 ClientHello (record version 0x0301, client_version 0x0303)
/// offering modern and legacy suites (see `LEGACY_SUITES`), with SNI for a DNS name,
/// supported_groups, ec_point_formats, signature_algorithms and renegotiation_info; then reads
/// plaintext records, reassembling handshake messages across records, until the Certificate
/// message, and parses ServerHello (version and suite) and the certificate list. Reads at
/// most 256 KiB and accepts at most 64 certificates. Once the chain is read, sends a fatal
/// user_canceled alert and stops.
pub fn capture_legacy<S: Read + Write>(
    stream: &mut S,
    server_name: &str,
) -> Result<Captured, TlsError> {
    let mut random = [0u8; 32];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut random)
        .map_err(|_| TlsError::Io("no random bytes for the ClientHello".to_string()))?;
    let hello = client_hello(sni_host(server_name).as_deref(), &random);
    stream.write_all(&hello).map_err(io_error)?;
    stream.flush().map_err(io_error)?;

    let (version, captured) = read_until_certificate(stream)?;
    // Abort the handshake: a fatal alert in a plaintext record of the negotiated version.
    let [major, minor] = version.to_be_bytes();
    let alert = [ALERT, major, minor, 0, 2, 2, USER_CANCELED];
    let _ = stream.write_all(&alert).and_then(|()| stream.flush());
    Ok(captured)
}

fn push_u16(out: &mut Vec<u8>, v: usize) {
    // Every length we write is far below 2^16; saturate rather than wrap if not.
    let v = u16::try_from(v).unwrap_or(u16::MAX);
    out.extend_from_slice(&v.to_be_bytes());
}

fn push_u24(out: &mut Vec<u8>, v: usize) {
    let v = u32::try_from(v).unwrap_or(0x00ff_ffff).min(0x00ff_ffff);
    out.extend_from_slice(&v.to_be_bytes()[1..]);
}

fn push_extension(out: &mut Vec<u8>, kind: u16, data: &[u8]) {
    out.extend_from_slice(&kind.to_be_bytes());
    push_u16(out, data.len());
    out.extend_from_slice(data);
}

/// The ClientHello record. `sni` is the host name to send, if any.
fn client_hello(sni: Option<&str>, random: &[u8; 32]) -> Vec<u8> {
    let mut body = Vec::with_capacity(512);
    body.extend_from_slice(&[0x03, 0x03]); // client_version: TLS 1.2
    body.extend_from_slice(random);
    body.push(0); // no session_id
    push_u16(&mut body, LEGACY_SUITES.len() * 2);
    for (code, _) in LEGACY_SUITES {
        body.extend_from_slice(&code.to_be_bytes());
    }
    body.extend_from_slice(&[1, 0]); // compression_methods: null only

    let mut ext = Vec::new();
    if let Some(host) = sni {
        // server_name (RFC 6066 §3): a list holding one host_name entry.
        let mut entry = vec![0u8];
        push_u16(&mut entry, host.len());
        entry.extend_from_slice(host.as_bytes());
        let mut list = Vec::new();
        push_u16(&mut list, entry.len());
        list.extend_from_slice(&entry);
        push_extension(&mut ext, 0x0000, &list);
    }
    // supported_groups (RFC 8422 §5.1.1): x25519, secp256r1, secp384r1, secp521r1.
    let groups: [u16; 4] = [0x001d, 0x0017, 0x0018, 0x0019];
    let mut data = Vec::new();
    push_u16(&mut data, groups.len() * 2);
    groups
        .iter()
        .for_each(|g| data.extend_from_slice(&g.to_be_bytes()));
    push_extension(&mut ext, 0x000a, &data);
    // ec_point_formats (RFC 8422 §5.1.2): uncompressed.
    push_extension(&mut ext, 0x000b, &[1, 0]);
    // signature_algorithms (RFC 5246 §7.4.1.4.1, code points from RFC 8446 §4.2.3).
    let schemes: [u16; 13] = [
        0x0403, 0x0503, 0x0603, // ecdsa_secp256r1_sha256 .. secp521r1_sha512
        0x0807, // ed25519
        0x0804, 0x0805, 0x0806, // rsa_pss_rsae_sha256 .. sha512
        0x0401, 0x0501, 0x0601, // rsa_pkcs1_sha256 .. sha512
        0x0201, 0x0203, // rsa_pkcs1_sha1, ecdsa_sha1
        0x0202, // dsa_sha1, for the truly old
    ];
    let mut data = Vec::new();
    push_u16(&mut data, schemes.len() * 2);
    schemes
        .iter()
        .for_each(|s| data.extend_from_slice(&s.to_be_bytes()));
    push_extension(&mut ext, 0x000d, &data);
    // renegotiation_info (RFC 5746 §3.2), empty: we are not renegotiating.
    push_extension(&mut ext, 0xff01, &[0]);
    // padding (RFC 7685): some old TLS terminators hang on a ClientHello of 256 to 511
    // bytes; pad such a hello to 512.
    let unpadded = 4 + body.len() + 2 + ext.len();
    if (256..512).contains(&unpadded) {
        let pad = 512usize.saturating_sub(unpadded + 4);
        push_extension(&mut ext, 0x0015, &vec![0u8; pad]);
    }
    push_u16(&mut body, ext.len());
    body.extend_from_slice(&ext);

    let mut message = vec![CLIENT_HELLO];
    push_u24(&mut message, body.len());
    message.extend_from_slice(&body);

    // Record version 0x0301: the most tolerated value for a first flight.
    let mut record = vec![HANDSHAKE, 0x03, 0x01];
    push_u16(&mut record, message.len());
    record.extend_from_slice(&message);
    record
}

/// Reads exactly `buf.len()` bytes, counting them against the read budget.
fn read_full<R: Read>(r: &mut R, buf: &mut [u8], total: &mut usize) -> Result<(), TlsError> {
    if total.saturating_add(buf.len()) > MAX_READ {
        return Err(over_budget());
    }
    let mut filled = 0;
    while filled < buf.len() {
        match r.read(&mut buf[filled..]) {
            Ok(0) => return Err(TlsError::Closed),
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(io_error(e)),
        }
    }
    *total += buf.len();
    Ok(())
}

fn over_budget() -> TlsError {
    TlsError::Handshake(format!(
        "the server sent more than {} KiB without completing its Certificate message",
        MAX_READ / 1024
    ))
}

fn u24(b: &[u8]) -> usize {
    (usize::from(b[0]) << 16) | (usize::from(b[1]) << 8) | usize::from(b[2])
}

fn malformed(what: &str) -> TlsError {
    TlsError::Handshake(format!("malformed {what}"))
}

/// Reads records until the Certificate message; returns the negotiated record version with
/// the capture.
fn read_until_certificate<R: Read>(stream: &mut R) -> Result<(u16, Captured), TlsError> {
    let mut total = 0usize;
    // Handshake bytes received but not yet consumed (a message may span records).
    let mut pending: Vec<u8> = Vec::new();
    // (version, cipher suite) from the ServerHello.
    let mut hello: Option<(u16, u16)> = None;
    loop {
        let mut header = [0u8; 5];
        read_full(stream, &mut header, &mut total)?;
        let content_type = header[0];
        let len = usize::from(u16::from_be_bytes([header[3], header[4]]));
        if !(CHANGE_CIPHER_SPEC..=APPLICATION_DATA).contains(&content_type) || header[1] != 3 {
            return Err(TlsError::Handshake(format!(
                "the server did not answer with TLS (first bytes {:?})",
                String::from_utf8_lossy(&header)
            )));
        }
        if len > MAX_RECORD {
            return Err(TlsError::Handshake(format!(
                "record of {len} bytes exceeds the TLS maximum"
            )));
        }
        let mut payload = vec![0u8; len];
        read_full(stream, &mut payload, &mut total)?;
        match content_type {
            ALERT => {
                // Warning alerts other than close_notify do not end the handshake (old Java
                // servers warn unrecognized_name and carry on); anything else does.
                if len == 0 || len % 2 != 0 {
                    return Err(malformed("alert record"));
                }
                for alert in payload.chunks_exact(2) {
                    if alert[0] != 1 || alert[1] == 0 {
                        return Err(TlsError::Alert(alert_label(alert[1])));
                    }
                }
            }
            HANDSHAKE => {
                pending.extend_from_slice(&payload);
                let mut pos = 0;
                while pending.len() - pos >= 4 {
                    let kind = pending[pos];
                    let msg_len = u24(&pending[pos + 1..pos + 4]);
                    let have = pending.len() - pos - 4;
                    if have < msg_len {
                        // Can the rest still arrive within the budget (each record costing
                        // at least a 5-byte header too)?
                        if msg_len - have > MAX_READ.saturating_sub(total) {
                            return Err(TlsError::Handshake(format!(
                                "handshake message of {msg_len} bytes exceeds the {} KiB \
                                 read budget",
                                MAX_READ / 1024
                            )));
                        }
                        break;
                    }
                    let body = &pending[pos + 4..pos + 4 + msg_len];
                    pos += 4 + msg_len;
                    match kind {
                        HELLO_REQUEST => {}
                        SERVER_HELLO if hello.is_none() => hello = Some(parse_server_hello(body)?),
                        CERTIFICATE => {
                            let (version, cipher) = hello.ok_or_else(|| {
                                TlsError::Handshake(
                                    "the server sent its Certificate before its ServerHello"
                                        .to_string(),
                                )
                            })?;
                            let certs = parse_certificate(body)?;
                            let captured = Captured {
                                certs,
                                version: version_name(version).unwrap_or("unknown").to_string(),
                                cipher: cipher_name(cipher),
                                method: CaptureMethod::LegacyHello,
                            };
                            return Ok((version, captured));
                        }
                        SERVER_HELLO_DONE if hello.is_some() => {
                            return Err(TlsError::NoCertificate)
                        }
                        other => {
                            return Err(TlsError::Handshake(format!(
                                "unexpected handshake message type {other} before the \
                                 server's Certificate"
                            )))
                        }
                    }
                }
                pending.drain(..pos);
            }
            CHANGE_CIPHER_SPEC => {
                return Err(TlsError::Handshake(
                    "the server sent ChangeCipherSpec before any certificate".to_string(),
                ))
            }
            _ => {
                return Err(TlsError::Handshake(
                    "the server sent application data during the handshake".to_string(),
                ))
            }
        }
    }
}

/// ServerHello (RFC 5246 §7.4.1.3): returns (server_version, cipher_suite).
fn parse_server_hello(body: &[u8]) -> Result<(u16, u16), TlsError> {
    let bad = || malformed("ServerHello");
    let version = u16::from_be_bytes([
        *body.first().ok_or_else(bad)?,
        *body.get(1).ok_or_else(bad)?,
    ]);
    let sid_len = usize::from(*body.get(34).ok_or_else(bad)?);
    if sid_len > 32 {
        return Err(bad());
    }
    let at = 35 + sid_len;
    let suite = body.get(at..at + 2).ok_or_else(bad)?;
    let cipher = u16::from_be_bytes([suite[0], suite[1]]);
    body.get(at + 2).ok_or_else(bad)?; // compression_method
    let mut rest = &body[at + 3..];
    let mut selected = version;
    if !rest.is_empty() {
        let ext_len = usize::from(u16::from_be_bytes([
            *rest.first().ok_or_else(bad)?,
            *rest.get(1).ok_or_else(bad)?,
        ]));
        rest = rest.get(2..).ok_or_else(bad)?;
        if rest.len() != ext_len {
            return Err(bad());
        }
        while !rest.is_empty() {
            let head = rest.get(..4).ok_or_else(bad)?;
            let kind = u16::from_be_bytes([head[0], head[1]]);
            let len = usize::from(u16::from_be_bytes([head[2], head[3]]));
            let data = rest.get(4..4 + len).ok_or_else(bad)?;
            if kind == 0x002b {
                // supported_versions: only a TLS 1.3 server sends it, and we did not offer 1.3.
                let v = data.get(..2).ok_or_else(bad)?;
                selected = u16::from_be_bytes([v[0], v[1]]);
            }
            rest = &rest[4 + len..];
        }
    }
    if selected == 0x0304 {
        return Err(TlsError::Handshake(
            "the server chose TLS 1.3, which the legacy ClientHello does not offer".to_string(),
        ));
    }
    if !(0x0300..=0x0303).contains(&selected) {
        return Err(TlsError::Handshake(format!(
            "the server chose protocol version 0x{selected:04x}"
        )));
    }
    Ok((selected, cipher))
}

/// Certificate (RFC 5246 §7.4.2): a 3-byte list length, then 3-byte-length DER blobs.
fn parse_certificate(body: &[u8]) -> Result<Vec<Vec<u8>>, TlsError> {
    let bad = || malformed("Certificate message");
    let list_len = u24(body.get(..3).ok_or_else(bad)?);
    let mut rest = &body[3..];
    if list_len != rest.len() {
        return Err(TlsError::Handshake(format!(
            "malformed Certificate message: list of {list_len} bytes in a {}-byte message",
            body.len()
        )));
    }
    let mut certs = Vec::new();
    while !rest.is_empty() {
        let len = u24(rest.get(..3).ok_or_else(bad)?);
        let der = rest.get(3..3 + len).ok_or_else(|| {
            TlsError::Handshake(format!(
                "malformed Certificate message: certificate of {len} bytes, {} left",
                rest.len() - 3
            ))
        })?;
        if der.is_empty() {
            return Err(TlsError::Handshake(
                "malformed Certificate message: empty certificate".to_string(),
            ));
        }
        if certs.len() == MAX_CERTS {
            return Err(TlsError::Handshake(format!(
                "the server sent more than {MAX_CERTS} certificates"
            )));
        }
        certs.push(der.to_vec());
        rest = &rest[3 + len..];
    }
    if certs.is_empty() {
        return Err(TlsError::NoCertificate);
    }
    Ok(certs)
}

// ---------------------------------------------------------------------------------------
// Fallback policy
// ---------------------------------------------------------------------------------------

/// Whether a [`capture_rustls`] failure suggests a server that only speaks legacy TLS, so
/// that a fresh connection with [`capture_legacy`] is worth trying.
///
/// Yes for: the alerts a server sends when it dislikes a ClientHello (handshake_failure,
/// protocol_version, insufficient_security, illegal_parameter, decode_error,
/// unexpected_message, record_overflow, internal_error, missing_extension,
/// unsupported_extension); rustls finding the server incompatible, misbehaving or
/// unparseable (a TLS 1.0 ServerHello, an unoffered suite, a message rustls rejects); and
/// [`TlsError::Closed`], since some old stacks just drop the connection on a ClientHello
/// they cannot handle. The cost of a needless fallback is one more connection.
///
/// No for: timeouts (a server that stalls would most likely stall again, doubling the wait),
/// other alerts (access_denied, unrecognized_name, ... the legacy hello would get the same),
/// a missing certificate, local I/O errors.
pub fn fallback_worthy(err: &TlsError) -> bool {
    match err {
        TlsError::Alert(label) => {
            let name = label.split(" (").next().unwrap_or_default();
            matches!(
                name,
                "handshake_failure"
                    | "protocol_version"
                    | "insufficient_security"
                    | "illegal_parameter"
                    | "decode_error"
                    | "unexpected_message"
                    | "record_overflow"
                    | "internal_error"
                    | "missing_extension"
                    | "unsupported_extension"
            )
        }
        TlsError::Handshake(msg) => [
            PEER_INCOMPATIBLE,
            PEER_MISBEHAVED,
            INVALID_MESSAGE,
            UNEXPECTED_MESSAGE,
        ]
        .iter()
        .any(|prefix| msg.starts_with(prefix)),
        TlsError::Closed => true,
        TlsError::Timeout | TlsError::NoCertificate | TlsError::Io(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // -----------------------------------------------------------------------------------
    // In-memory server
    // -----------------------------------------------------------------------------------

    /// Serves `input` at most `step` bytes per read, then EOF; records what is written.
    struct Mock {
        input: Vec<u8>,
        pos: usize,
        step: usize,
        output: Vec<u8>,
    }

    impl Mock {
        fn new(input: Vec<u8>, step: usize) -> Mock {
            Mock {
                input,
                pos: 0,
                step,
                output: Vec::new(),
            }
        }
    }

    impl Read for Mock {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = buf.len().min(self.step).min(self.input.len() - self.pos);
            buf[..n].copy_from_slice(&self.input[self.pos..self.pos + n]);
            self.pos += n;
            Ok(n)
        }
    }

    impl Write for Mock {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.output.extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn handshake_msg(kind: u8, body: &[u8]) -> Vec<u8> {
        let mut m = vec![kind];
        push_u24(&mut m, body.len());
        m.extend_from_slice(body);
        m
    }

    fn server_hello(version: u16, cipher: u16, extensions: Option<&[u8]>) -> Vec<u8> {
        let mut b = version.to_be_bytes().to_vec();
        b.extend_from_slice(&[7u8; 32]);
        b.push(32);
        b.extend_from_slice(&[9u8; 32]);
        b.extend_from_slice(&cipher.to_be_bytes());
        b.push(0);
        if let Some(ext) = extensions {
            push_u16(&mut b, ext.len());
            b.extend_from_slice(ext);
        }
        handshake_msg(SERVER_HELLO, &b)
    }

    fn certificate(certs: &[&[u8]]) -> Vec<u8> {
        let mut list = Vec::new();
        for c in certs {
            push_u24(&mut list, c.len());
            list.extend_from_slice(c);
        }
        let mut b = Vec::new();
        push_u24(&mut b, list.len());
        b.extend_from_slice(&list);
        handshake_msg(CERTIFICATE, &b)
    }

    /// `payload` cut into records of at most `chunk` bytes.
    fn records(kind: u8, version: u16, payload: &[u8], chunk: usize) -> Vec<u8> {
        let mut out = Vec::new();
        for piece in payload.chunks(chunk) {
            out.push(kind);
            out.extend_from_slice(&version.to_be_bytes());
            push_u16(&mut out, piece.len());
            out.extend_from_slice(piece);
        }
        out
    }

    const LEAF: &[u8] = b"0\x82leaf certificate bytes";
    const INTER: &[u8] = b"0\x82intermediate certificate bytes, somewhat longer";

    #[test]
    fn certificate_split_across_records_is_reassembled() {
        let mut wire = records(HANDSHAKE, 0x0303, &server_hello(0x0303, 0x002f, None), 1000);
        wire.extend(records(HANDSHAKE, 0x0303, &certificate(&[LEAF, INTER]), 7));
        let mut mock = Mock::new(wire, 3);
        let c = capture_legacy(&mut mock, "mx.example.com").expect("capture");
        assert_eq!(c.certs, vec![LEAF.to_vec(), INTER.to_vec()]);
        assert_eq!(c.version, "TLSv1.2");
        assert_eq!(c.cipher, "TLS_RSA_WITH_AES_128_CBC_SHA");
        assert_eq!(c.method, CaptureMethod::LegacyHello);
        assert_eq!(c.method.as_str(), "legacy-hello");
        // ClientHello first, the fatal user_canceled alert last.
        assert_eq!(&mock.output[..3], &[HANDSHAKE, 3, 1]);
        assert!(mock
            .output
            .ends_with(&[ALERT, 3, 3, 0, 2, 2, USER_CANCELED]));
    }

    #[test]
    fn several_messages_in_one_record_and_tls10() {
        let mut flight = server_hello(0x0301, 0x0035, Some(&[0xff, 0x01, 0, 1, 0]));
        flight.extend(certificate(&[LEAF, INTER, LEAF]));
        flight.extend(handshake_msg(SERVER_HELLO_DONE, &[]));
        let mut mock = Mock::new(records(HANDSHAKE, 0x0301, &flight, 16384), 4096);
        let c = capture_legacy(&mut mock, "127.0.0.1").expect("capture");
        assert_eq!(c.certs, vec![LEAF.to_vec(), INTER.to_vec(), LEAF.to_vec()]);
        assert_eq!(c.version, "TLSv1.0");
        assert_eq!(c.cipher, "TLS_RSA_WITH_AES_256_CBC_SHA");
        assert!(mock
            .output
            .ends_with(&[ALERT, 3, 1, 0, 2, 2, USER_CANCELED]));
    }

    #[test]
    fn truncated_certificate_is_an_error() {
        // The stream ends in the middle of the message.
        let mut flight = server_hello(0x0303, 0xc013, None);
        let cert = certificate(&[LEAF, INTER]);
        flight.extend_from_slice(&cert[..cert.len() - 10]);
        let mut mock = Mock::new(records(HANDSHAKE, 0x0303, &flight, 16384), 100);
        let err = capture_legacy(&mut mock, "mx").expect_err("truncated");
        assert!(matches!(err, TlsError::Closed), "{err:?}");

        // The message is complete but a certificate inside claims more than is left.
        let mut body = Vec::new();
        push_u24(&mut body, 3 + 4);
        push_u24(&mut body, 50);
        body.extend_from_slice(b"0\x82ab");
        let mut flight = server_hello(0x0303, 0xc013, None);
        flight.extend(handshake_msg(CERTIFICATE, &body));
        let mut mock = Mock::new(records(HANDSHAKE, 0x0303, &flight, 16384), 100);
        let err = capture_legacy(&mut mock, "mx").expect_err("inner truncation");
        assert!(matches!(err, TlsError::Handshake(_)), "{err:?}");

        // The list length disagrees with the message length.
        let mut body = Vec::new();
        push_u24(&mut body, 1000);
        push_u24(&mut body, 4);
        body.extend_from_slice(b"0\x82ab");
        let mut flight = server_hello(0x0303, 0xc013, None);
        flight.extend(handshake_msg(CERTIFICATE, &body));
        let mut mock = Mock::new(records(HANDSHAKE, 0x0303, &flight, 16384), 100);
        let err = capture_legacy(&mut mock, "mx").expect_err("list length");
        assert!(matches!(err, TlsError::Handshake(_)), "{err:?}");

        // A truncated ServerHello.
        let sh = server_hello(0x0303, 0xc013, None);
        let mut short = vec![SERVER_HELLO];
        push_u24(&mut short, 20);
        short.extend_from_slice(&sh[4..24]);
        let mut mock = Mock::new(records(HANDSHAKE, 0x0303, &short, 16384), 100);
        let err = capture_legacy(&mut mock, "mx").expect_err("short hello");
        assert!(matches!(err, TlsError::Handshake(_)), "{err:?}");
    }

    #[test]
    fn absurd_length_is_refused_without_reading_it() {
        let mut flight = server_hello(0x0303, 0xc013, None);
        flight.extend_from_slice(&[CERTIFICATE, 0xff, 0xff, 0xff, 0, 0, 1]);
        // More data follows (which a naive reader would wait for); the error comes first.
        let mut wire = records(HANDSHAKE, 0x0303, &flight, 16384);
        wire.extend(records(HANDSHAKE, 0x0303, &[0u8; 100], 16384));
        let mut mock = Mock::new(wire, 16384);
        let err = capture_legacy(&mut mock, "mx").expect_err("absurd");
        match err {
            TlsError::Handshake(msg) => assert!(msg.contains("budget"), "{msg}"),
            other => panic!("{other:?}"),
        }
        assert!(mock.pos < mock.input.len());
    }

    #[test]
    fn read_budget_is_enforced() {
        // Endless zero-length handshake records never complete a message.
        let wire = [HANDSHAKE, 3, 3, 0, 0].repeat(MAX_READ / 5 + 10);
        let mut mock = Mock::new(wire, 16384);
        let err = capture_legacy(&mut mock, "mx").expect_err("budget");
        assert!(matches!(err, TlsError::Handshake(_)), "{err:?}");
        assert!(mock.pos <= MAX_READ);
    }

    #[test]
    fn alerts_are_reported_and_warnings_skipped() {
        let mut mock = Mock::new(vec![ALERT, 3, 3, 0, 2, 2, 40], 100);
        let err = capture_legacy(&mut mock, "mx").expect_err("alert");
        match &err {
            TlsError::Alert(a) => assert_eq!(a, "handshake_failure (40)"),
            other => panic!("{other:?}"),
        }
        assert_eq!(
            err.to_string(),
            "the server sent TLS alert handshake_failure (40)"
        );

        // A warning unrecognized_name, then the handshake goes on.
        let mut wire = vec![ALERT, 3, 3, 0, 2, 1, 112];
        wire.extend(records(
            HANDSHAKE,
            0x0303,
            &server_hello(0x0303, 0xc02f, None),
            100,
        ));
        wire.extend(records(HANDSHAKE, 0x0303, &certificate(&[LEAF]), 100));
        let mut mock = Mock::new(wire, 100);
        let c = capture_legacy(&mut mock, "mx").expect("warning skipped");
        assert_eq!(c.certs, vec![LEAF.to_vec()]);
        assert_eq!(c.cipher, "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256");

        // A warning close_notify ends it.
        let mut mock = Mock::new(vec![ALERT, 3, 3, 0, 2, 1, 0], 100);
        let err = capture_legacy(&mut mock, "mx").expect_err("close_notify");
        assert!(matches!(err, TlsError::Alert(ref a) if a == "close_notify (0)"));

        // A malformed alert record.
        let mut mock = Mock::new(vec![ALERT, 3, 3, 0, 1, 2], 100);
        let err = capture_legacy(&mut mock, "mx").expect_err("short alert");
        assert!(matches!(err, TlsError::Handshake(_)), "{err:?}");
    }

    #[test]
    fn more_than_64_certificates_is_an_error() {
        let certs: Vec<&[u8]> = vec![LEAF; MAX_CERTS + 1];
        let mut flight = server_hello(0x0303, 0xc013, None);
        flight.extend(certificate(&certs));
        let mut mock = Mock::new(records(HANDSHAKE, 0x0303, &flight, 16384), 16384);
        let err = capture_legacy(&mut mock, "mx").expect_err("65 certs");
        match err {
            TlsError::Handshake(msg) => assert!(msg.contains("64"), "{msg}"),
            other => panic!("{other:?}"),
        }
        // Exactly 64 is fine.
        let certs: Vec<&[u8]> = vec![LEAF; MAX_CERTS];
        let mut flight = server_hello(0x0303, 0xc013, None);
        flight.extend(certificate(&certs));
        let mut mock = Mock::new(records(HANDSHAKE, 0x0303, &flight, 16384), 16384);
        assert_eq!(
            capture_legacy(&mut mock, "mx").expect("64").certs.len(),
            MAX_CERTS
        );
    }

    #[test]
    fn garbage_and_odd_answers_are_errors() {
        let mut mock = Mock::new(b"220 smtp ESMTP\r\n".to_vec(), 100);
        let err = capture_legacy(&mut mock, "mx").expect_err("smtp banner");
        match err {
            TlsError::Handshake(msg) => assert!(msg.contains("220 s"), "{msg}"),
            other => panic!("{other:?}"),
        }
        let mut mock = Mock::new(Vec::new(), 100);
        assert!(matches!(
            capture_legacy(&mut mock, "mx"),
            Err(TlsError::Closed)
        ));
        // An SSLv2-style answer.
        let mut mock = Mock::new(vec![0x80, 0x2e, 0x04, 0x00, 0x01, 0x00, 0x02], 100);
        assert!(matches!(
            capture_legacy(&mut mock, "mx"),
            Err(TlsError::Handshake(_))
        ));
        // An oversized record.
        let mut mock = Mock::new(vec![HANDSHAKE, 3, 3, 0xff, 0xff], 100);
        assert!(matches!(
            capture_legacy(&mut mock, "mx"),
            Err(TlsError::Handshake(_))
        ));
        // Certificate before ServerHello.
        let mut mock = Mock::new(records(HANDSHAKE, 0x0303, &certificate(&[LEAF]), 100), 100);
        assert!(matches!(
            capture_legacy(&mut mock, "mx"),
            Err(TlsError::Handshake(_))
        ));
        // ServerHelloDone without a Certificate: an anonymous suite.
        let mut flight = server_hello(0x0303, 0xc013, None);
        flight.extend(handshake_msg(SERVER_HELLO_DONE, &[]));
        let mut mock = Mock::new(records(HANDSHAKE, 0x0303, &flight, 100), 100);
        assert!(matches!(
            capture_legacy(&mut mock, "mx"),
            Err(TlsError::NoCertificate)
        ));
        // An empty certificate list.
        let mut flight = server_hello(0x0303, 0xc013, None);
        flight.extend(certificate(&[]));
        let mut mock = Mock::new(records(HANDSHAKE, 0x0303, &flight, 100), 100);
        assert!(matches!(
            capture_legacy(&mut mock, "mx"),
            Err(TlsError::NoCertificate)
        ));
        // A ServerHello choosing TLS 1.3 through supported_versions.
        let mut flight = server_hello(0x0303, 0x1301, Some(&[0, 0x2b, 0, 2, 3, 4]));
        flight.extend(certificate(&[LEAF]));
        let mut mock = Mock::new(records(HANDSHAKE, 0x0303, &flight, 100), 100);
        assert!(matches!(
            capture_legacy(&mut mock, "mx"),
            Err(TlsError::Handshake(_))
        ));
        // Random bytes of every length never panic.
        let mut seed = 0x2545_f491_u32;
        for len in 0..300 {
            let bytes: Vec<u8> = (0..len)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 17;
                    seed ^= seed << 5;
                    seed.to_be_bytes()[0]
                })
                .collect();
            let mut wire = vec![HANDSHAKE, 3, 3];
            push_u16(&mut wire, bytes.len());
            wire.extend(bytes);
            let _ = capture_legacy(&mut Mock::new(wire, 7), "mx");
        }
    }

    /// Extensions of our ClientHello, as (type, data), after checking every length in it.
    fn parse_client_hello(record: &[u8]) -> Vec<(u16, Vec<u8>)> {
        assert_eq!(&record[..3], &[HANDSHAKE, 3, 1]);
        assert_eq!(
            usize::from(u16::from_be_bytes([record[3], record[4]])),
            record.len() - 5
        );
        let msg = &record[5..];
        assert_eq!(msg[0], CLIENT_HELLO);
        assert_eq!(u24(&msg[1..4]), msg.len() - 4);
        let hello = &msg[4..];
        assert_eq!(&hello[..2], &[3, 3]);
        assert_eq!(hello[34], 0);
        let suites_len = usize::from(u16::from_be_bytes([hello[35], hello[36]]));
        let suites = &hello[37..37 + suites_len];
        for needed in [
            0x002f_u16, 0x0035, 0x003c, 0x003d, 0x000a, 0xc013, 0xc02f, 0x0033,
        ] {
            assert!(
                suites.chunks(2).any(|c| c == needed.to_be_bytes()),
                "{needed:04x}"
            );
        }
        let mut rest = &hello[37 + suites_len..];
        assert_eq!(&rest[..2], &[1, 0]);
        rest = &rest[2..];
        assert_eq!(
            usize::from(u16::from_be_bytes([rest[0], rest[1]])),
            rest.len() - 2
        );
        rest = &rest[2..];
        let mut out = Vec::new();
        while !rest.is_empty() {
            let kind = u16::from_be_bytes([rest[0], rest[1]]);
            let len = usize::from(u16::from_be_bytes([rest[2], rest[3]]));
            out.push((kind, rest[4..4 + len].to_vec()));
            rest = &rest[4 + len..];
        }
        out
    }

    #[test]
    fn client_hello_is_well_formed() {
        let hello = client_hello(sni_host("MX.Example.COM.").as_deref(), &[1; 32]);
        let ext = parse_client_hello(&hello);
        let kinds: Vec<u16> = ext.iter().map(|(k, _)| *k).collect();
        for needed in [0x0000, 0x000a, 0x000b, 0x000d, 0xff01] {
            assert!(kinds.contains(&needed), "{needed:04x} in {kinds:?}");
        }
        let sni = &ext[0].1;
        assert_eq!(&sni[5..], b"mx.example.com");
        // RFC 7685: never between 256 and 511 bytes.
        let msg_len = hello.len() - 5;
        assert!(!(256..512).contains(&msg_len), "{msg_len}");

        for ip in ["127.0.0.1", "::1", "[2001:db8::1]"] {
            let hello = client_hello(sni_host(ip).as_deref(), &[1; 32]);
            let ext = parse_client_hello(&hello);
            assert!(ext.iter().all(|(k, _)| *k != 0), "SNI sent for {ip}");
        }
        for len in [1, 40, 100, 200, 253] {
            let name = "a".repeat(len);
            let hello = client_hello(sni_host(&name).as_deref(), &[1; 32]);
            parse_client_hello(&hello);
            assert!(!(256..512).contains(&(hello.len() - 5)), "{len}");
        }
    }

    #[test]
    fn names_and_fallback_policy() {
        assert_eq!(cipher_name(0x1301), "TLS_AES_128_GCM_SHA256");
        assert_eq!(cipher_name(0x000a), "TLS_RSA_WITH_3DES_EDE_CBC_SHA");
        assert_eq!(cipher_name(0xbeef), "0xbeef");
        assert_eq!(alert_label(70), "protocol_version (70)");
        assert_eq!(alert_label(250), "unknown (250)");
        assert_eq!(CaptureMethod::Rustls.as_str(), "rustls");

        let alert = |c| TlsError::Alert(alert_label(c));
        assert!(fallback_worthy(&alert(40)));
        assert!(fallback_worthy(&alert(70)));
        assert!(fallback_worthy(&alert(71)));
        assert!(!fallback_worthy(&alert(49)));
        assert!(!fallback_worthy(&alert(112)));
        assert!(fallback_worthy(&TlsError::Closed));
        assert!(!fallback_worthy(&TlsError::Timeout));
        assert!(!fallback_worthy(&TlsError::NoCertificate));
        assert!(!fallback_worthy(&TlsError::Io("refused".into())));
        assert!(fallback_worthy(&from_rustls(
            rustls::Error::PeerIncompatible(
                rustls::PeerIncompatible::ServerDoesNotSupportTls12Or13
            )
        )));
        assert!(fallback_worthy(&from_rustls(rustls::Error::AlertReceived(
            rustls::AlertDescription::HandshakeFailure
        ))));
        assert!(!fallback_worthy(&from_rustls(rustls::Error::General(
            "x".into()
        ))));
    }

    #[test]
    fn rustls_sends_sni_only_for_dns_names() {
        let sent = |name: &str| {
            let mut mock = Mock::new(Vec::new(), 100);
            let err = capture_rustls(&mut mock, name).expect_err("EOF");
            assert!(matches!(err, TlsError::Closed), "{name}: {err:?}");
            assert_eq!(mock.output[0], HANDSHAKE, "{name}");
            mock.output
        };
        let has = |hay: &[u8], needle: &[u8]| hay.windows(needle.len()).any(|w| w == needle);
        assert!(has(&sent("MX.example.com."), b"mx.example.com"));
        assert!(!has(&sent("127.0.0.1"), b"127.0.0.1"));
        // Not a DNS name rustls accepts: probed without SNI (and without the placeholder).
        let out = sent("bad name!");
        assert!(!has(&out, b"bad name") && !has(&out, b"invalid"));
        // Garbage instead of a ServerHello: an error, not a panic.
        let mut mock = Mock::new(b"220 smtp ESMTP\r\n".to_vec(), 100);
        let err = capture_rustls(&mut mock, "mx").expect_err("garbage");
        assert!(matches!(err, TlsError::Handshake(_)), "{err:?}");
    }

    // -----------------------------------------------------------------------------------
    // Against a real `openssl s_server`
    // -----------------------------------------------------------------------------------

    use std::io::BufRead;
    use std::net::TcpStream;
    use std::path::Path;
    use std::process::{Child, ChildStdin, Command, Stdio};
    use std::time::Duration;

    fn openssl(dir: &Path, args: &[&str]) {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("run openssl");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// root (P-256) -> intermediate (P-256) -> leaf (RSA 2048, so RSA key exchange works).
    /// Returns the DER of leaf and intermediate.
    fn make_chain(dir: &Path) -> (Vec<u8>, Vec<u8>) {
        let ec = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
        ];
        let mut root = vec!["req", "-x509"];
        root.extend(ec);
        root.extend([
            "-keyout",
            "root.key",
            "-out",
            "root.pem",
            "-subj",
            "/CN=Test Root",
            "-days",
            "30",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ]);
        openssl(dir, &root);
        let mut inter = vec!["req"];
        inter.extend(ec);
        inter.extend([
            "-keyout",
            "inter.key",
            "-out",
            "inter.csr",
            "-subj",
            "/CN=Test Intermediate",
        ]);
        openssl(dir, &inter);
        std::fs::write(
            dir.join("inter.ext"),
            "basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n",
        )
        .expect("write inter.ext");
        openssl(
            dir,
            &[
                "x509",
                "-req",
                "-in",
                "inter.csr",
                "-CA",
                "root.pem",
                "-CAkey",
                "root.key",
                "-set_serial",
                "2",
                "-days",
                "30",
                "-extfile",
                "inter.ext",
                "-out",
                "inter.pem",
            ],
        );
        openssl(
            dir,
            &[
                "req",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-keyout",
                "leaf.key",
                "-out",
                "leaf.csr",
                "-subj",
                "/CN=mx.test",
            ],
        );
        std::fs::write(
            dir.join("leaf.ext"),
            "basicConstraints=CA:FALSE\nsubjectAltName=DNS:mx.test\n",
        )
        .expect("write leaf.ext");
        openssl(
            dir,
            &[
                "x509",
                "-req",
                "-in",
                "leaf.csr",
                "-CA",
                "inter.pem",
                "-CAkey",
                "inter.key",
                "-set_serial",
                "3",
                "-days",
                "30",
                "-extfile",
                "leaf.ext",
                "-out",
                "leaf.pem",
            ],
        );
        openssl(
            dir,
            &[
                "x509", "-in", "leaf.pem", "-outform", "DER", "-out", "leaf.der",
            ],
        );
        openssl(
            dir,
            &[
                "x509",
                "-in",
                "inter.pem",
                "-outform",
                "DER",
                "-out",
                "inter.der",
            ],
        );
        (
            std::fs::read(dir.join("leaf.der")).expect("leaf.der"),
            std::fs::read(dir.join("inter.der")).expect("inter.der"),
        )
    }

    /// A running `openssl s_server`, killed when dropped.
    struct Server {
        child: Child,
        port: u16,
        // Held open: s_server quits a connection when its stdin reaches EOF.
        _stdin: ChildStdin,
    }

    impl Drop for Server {
        fn drop(&mut self) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }

    impl Server {
        fn connect(&self) -> TcpStream {
            let s = TcpStream::connect(("127.0.0.1", self.port)).expect("connect");
            s.set_read_timeout(Some(Duration::from_secs(10)))
                .expect("read timeout");
            s.set_write_timeout(Some(Duration::from_secs(10)))
                .expect("write timeout");
            s
        }
    }

    /// Starts s_server serving leaf + intermediate with the extra `args`; `None` if it
    /// never gets to accepting (e.g. this OpenSSL refuses the protocol settings).
    fn start_server(dir: &Path, args: &[&str]) -> Option<Server> {
        for _attempt in 0..5 {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .expect("free port")
                .port();
            let accept = format!("127.0.0.1:{port}");
            let stderr = std::fs::File::create(dir.join(format!("s_server.{port}.err")))
                .expect("stderr file");
            let mut child = Command::new("openssl")
                .args(["s_server", "-accept", &accept, "-naccept", "2"])
                .args([
                    "-cert",
                    "leaf.pem",
                    "-key",
                    "leaf.key",
                    "-cert_chain",
                    "inter.pem",
                ])
                .args(args)
                .current_dir(dir)
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(stderr)
                .spawn()
                .expect("spawn s_server");
            let stdin = child.stdin.take().expect("stdin");
            let stdout = child.stdout.take().expect("stdout");
            let mut lines = std::io::BufReader::new(stdout);
            let mut line = String::new();
            let mut accepting = false;
            while lines.read_line(&mut line).is_ok_and(|n| n > 0) {
                if line.contains("ACCEPT") {
                    accepting = true;
                    break;
                }
                line.clear();
            }
            if accepting {
                // Keep draining so s_server never blocks on a full pipe.
                std::thread::spawn(move || std::io::copy(&mut lines, &mut std::io::sink()));
                return Some(Server {
                    child,
                    port,
                    _stdin: stdin,
                });
            }
            let _ = child.kill();
            let _ = child.wait();
            let err = std::fs::read_to_string(dir.join(format!("s_server.{port}.err")))
                .unwrap_or_default();
            eprintln!("s_server {args:?} did not start: {err}");
            if !err.contains("in use") {
                return None;
            }
        }
        None
    }

    #[test]
    #[cfg_attr(not(have_openssl), ignore = "needs openssl on PATH")]
    fn openssl_tls13_rustls_captures_leaf_and_intermediate() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (leaf, inter) = make_chain(dir.path());
        let server = start_server(dir.path(), &["-tls1_3"]).expect("s_server -tls1_3");
        let c = capture_rustls(&mut server.connect(), "127.0.0.1").expect("capture");
        assert_eq!(c.certs, vec![leaf, inter]);
        assert_eq!(c.version, "TLSv1.3");
        assert!(
            c.cipher.starts_with("TLS_AES_") || c.cipher.starts_with("TLS_CHACHA"),
            "{}",
            c.cipher
        );
        assert_eq!(c.method, CaptureMethod::Rustls);
    }

    #[test]
    #[cfg_attr(not(have_openssl), ignore = "needs openssl on PATH")]
    fn openssl_tls12_gcm_both_methods_capture() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (leaf, inter) = make_chain(dir.path());
        let server = start_server(
            dir.path(),
            &["-tls1_2", "-cipher", "ECDHE-RSA-AES128-GCM-SHA256"],
        )
        .expect("s_server -tls1_2");
        let c = capture_rustls(&mut server.connect(), "mx.test").expect("rustls");
        assert_eq!(c.certs, vec![leaf.clone(), inter.clone()]);
        assert_eq!(c.version, "TLSv1.2");
        assert_eq!(c.cipher, "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256");
        let c = capture_legacy(&mut server.connect(), "mx.test").expect("legacy");
        assert_eq!(c.certs, vec![leaf, inter]);
        assert_eq!(c.version, "TLSv1.2");
        assert_eq!(c.cipher, "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256");
        assert_eq!(c.method, CaptureMethod::LegacyHello);
    }

    #[test]
    #[cfg_attr(not(have_openssl), ignore = "needs openssl on PATH")]
    fn openssl_legacy_only_server_needs_the_fallback() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (leaf, inter) = make_chain(dir.path());
        let server = start_server(dir.path(), &["-tls1_2", "-cipher", "AES128-SHA:AES256-SHA"])
            .expect("s_server legacy");
        let err = capture_rustls(&mut server.connect(), "mx.test").expect_err("rustls must fail");
        eprintln!("rustls against a CBC/RSA-only server: {err}");
        assert!(fallback_worthy(&err), "{err:?}");
        let c = capture_legacy(&mut server.connect(), "mx.test").expect("legacy");
        assert_eq!(c.certs, vec![leaf, inter]);
        assert_eq!(c.version, "TLSv1.2");
        assert!(
            c.cipher == "TLS_RSA_WITH_AES_128_CBC_SHA"
                || c.cipher == "TLS_RSA_WITH_AES_256_CBC_SHA",
            "{}",
            c.cipher
        );
    }

    #[test]
    #[cfg_attr(not(have_openssl), ignore = "needs openssl on PATH")]
    fn openssl_tls10_server_via_legacy_hello() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (leaf, inter) = make_chain(dir.path());
        // OpenSSL 3 serves TLS 1.0 only at security level 0.
        let server = start_server(dir.path(), &["-tls1", "-cipher", "AES128-SHA:@SECLEVEL=0"])
            .expect("s_server -tls1 with @SECLEVEL=0");
        let err = capture_rustls(&mut server.connect(), "mx.test").expect_err("rustls must fail");
        eprintln!("rustls against a TLS 1.0 server: {err}");
        assert!(fallback_worthy(&err), "{err:?}");
        let c = capture_legacy(&mut server.connect(), "mx.test")
            .expect("the legacy hello captures the chain of a TLS 1.0 server");
        assert_eq!(c.certs, vec![leaf, inter]);
        assert_eq!(c.version, "TLSv1.0");
        assert_eq!(c.cipher, "TLS_RSA_WITH_AES_128_CBC_SHA");
        assert_eq!(c.method, CaptureMethod::LegacyHello);
    }
}
