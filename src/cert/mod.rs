//! Owned certificate: the DER plus the parsed facts every later stage needs.
//!
//! This is the only module that imports x509-parser (its extension types change shape between
//! releases, see `../shared/notes/crates.md`). Everything downstream works on [`Certificate`],
//! which owns its DER, so certificates can move between threads and outlive the file they came
//! from. A signature check reads the two DER blobs again ([`with_signed_parts`]); that is
//! cheap next to the public-key operation itself, which is the chain stage's (`chain::link`).

mod extensions;
mod name;
mod sigalg;

pub use extensions::{
    Eku, Flaw, NameConstraints, Rare, Subtree, KU_DIGITAL_SIGNATURE, KU_KEY_AGREEMENT,
    KU_KEY_CERT_SIGN, KU_KEY_ENCIPHERMENT,
};
pub use sigalg::{Hash, Pss, SigAlg};

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;

use name::{display_name, name_key};

use sha2::{Digest, Sha256};
use x509_parser::certificate::X509Certificate;
use x509_parser::oid_registry::{
    OID_EC_P256, OID_KEY_TYPE_EC_PUBLIC_KEY, OID_NIST_EC_P384, OID_NIST_EC_P521,
    OID_PKCS1_RSAENCRYPTION, OID_SIG_ED25519,
};
use x509_parser::prelude::FromDer;
use x509_parser::public_key::PublicKey;
use x509_parser::x509::{SubjectPublicKeyInfo, X509Name};

/// The public key algorithm and size of a certificate's subject key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyKind {
    Rsa { bits: u32 },
    Ec { curve: &'static str },
    Ed25519,
    Other { oid: String },
}

impl fmt::Display for KeyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyKind::Rsa { bits } => write!(f, "RSA-{bits}"),
            KeyKind::Ec { curve } => write!(f, "EC {curve}"),
            KeyKind::Ed25519 => write!(f, "Ed25519"),
            KeyKind::Other { oid } => write!(f, "key {oid}"),
        }
    }
}

/// An owned, parsed X.509 certificate.
#[derive(Clone)]
pub struct Certificate {
    pub der: Vec<u8>,
    pub sha256: [u8; 32],
    /// RFC 4514-style display form of the subject.
    pub subject: String,
    /// Shared with the other certificates of this issuer ([`shared`]).
    pub issuer: Arc<str>,
    /// Normalised subject/issuer used for matching (RFC 5280 §7.1: case-insensitive, whitespace
    /// folded), so a PrintableString issuer matches a UTF8String subject.
    pub subject_key: String,
    pub issuer_key: Arc<str>,
    pub serial: String,
    /// Unix seconds.
    pub not_before: i64,
    pub not_after: i64,
    /// basicConstraints cA (RFC 5280 §4.2.1.9).
    pub is_ca: bool,
    /// A version 1 certificate (no extensions; RFC 5280 §4.1.2.1).
    pub is_v1: bool,
    /// Whether basicConstraints is present at all, and its pathLenConstraint.
    pub has_basic_constraints: bool,
    pub path_len: Option<u32>,
    /// keyUsage bits (RFC 5280 §4.2.1.3; bit 0 is digitalSignature, bit 5 keyCertSign);
    /// `None` without a keyUsage extension.
    pub key_usage: Option<u16>,
    /// extendedKeyUsage (RFC 5280 §4.2.1.12); `None` without the extension.
    pub eku: Option<Eku>,
    /// Names and constraints few certificates carry (e-mail, URI and directory names, name
    /// constraints), boxed so that the common certificate stays small.
    pub rare: Option<Box<Rare>>,
    /// What makes receivers refuse this certificate whatever its chain: an unknown critical
    /// extension, a damaged or repeated one (the first found).
    pub flaw: Option<Flaw>,
    pub ski: Option<Vec<u8>>,
    pub aki: Option<Vec<u8>>,
    /// AIA caIssuers locations, any scheme, in certificate order.
    pub ca_issuers: Vec<Arc<str>>,
    pub dns_names: Vec<String>,
    pub ip_addrs: Vec<IpAddr>,
    pub common_name: Option<String>,
    /// The outer signatureAlgorithm (RFC 5280 §4.1.1.2). A TBSCertificate `signature` field
    /// naming another one is the flaw [`Flaw::SignatureAlgorithmMismatch`].
    pub sig_alg: SigAlg,
    pub key: KeyKind,
    /// SHA-256 of the SubjectPublicKeyInfo: with `subject_key`, the identity RFC 4158 uses for
    /// loop detection and RFC 5280 §6.1.1(d) for trust anchors.
    pub spki_sha256: [u8; 32],
}

impl fmt::Debug for Certificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Certificate")
            .field("subject", &self.subject)
            .field("issuer", &self.issuer)
            .field("sha256", &hex(&self.sha256))
            .finish()
    }
}

/// Why a blob is not a certificate.
#[derive(Debug, thiserror::Error)]
#[error("not a valid X.509 certificate: {0}")]
pub struct ParseError(String);

impl Certificate {
    /// Parses one DER certificate. Trailing bytes after the certificate are refused.
    pub fn from_der(der: &[u8]) -> Result<Certificate, ParseError> {
        use x509_parser::nom::Parser;
        // The extensions are split up but not parsed: `facts` parses the five it reads with
        // the parsers the crate itself would use, and skips the others.
        let (rest, x) = x509_parser::certificate::X509CertificateParser::new()
            .with_deep_parse_extensions(false)
            .parse(der)
            .map_err(|e| ParseError(short_error(&e.to_string())))?;
        if !rest.is_empty() {
            return Err(ParseError(format!("{} trailing bytes", rest.len())));
        }
        let used = &der[..der.len() - rest.len()];
        Ok(facts(used, &x))
    }

    /// Canonical public key bytes, comparable with a private key's `public_id` for key
    /// matching. Made from the DER when asked: only key pairing needs it.
    pub fn public_key_id(&self) -> Vec<u8> {
        if let Some((_, spki)) = subject_and_spki(&self.der)
            .and_then(|[_, spki]| SubjectPublicKeyInfo::from_der(spki.raw).ok())
        {
            return spki_key_id(&spki);
        }
        // DER that x509-parser accepts and the quick walker does not (lengths in more than 4
        // bytes): the full parse, which read this certificate in the first place.
        X509Certificate::from_der(&self.der)
            .map(|(_, x)| spki_key_id(x.public_key()))
            .unwrap_or_default()
    }

    pub fn sha256_hex(&self) -> String {
        hex(&self.sha256)
    }

    /// keyUsage keyCertSign (RFC 5280 §4.2.1.3); `None` without a keyUsage extension.
    pub fn key_cert_sign(&self) -> Option<bool> {
        self.key_usage.map(|ku| ku & KU_KEY_CERT_SIGN != 0)
    }

    /// The name constraints this certificate imposes (RFC 5280 §4.2.1.10), if any.
    pub fn name_constraints(&self) -> Option<&NameConstraints> {
        self.rare.as_ref().and_then(|r| r.name_constraints.as_ref())
    }

    /// Whether this certificate's authorityKeyIdentifier names another certificate than
    /// `issuer` by serial number or by issuer name: OpenSSL's `X509_check_akid` (called from
    /// `X509_check_issued` for every issuer candidate, trust anchors included) then refuses the
    /// candidate with `X509_V_ERR_AKID_ISSUER_SERIAL_MISMATCH`. The key identifier is compared
    /// where candidates are found ([`crate::pool`]).
    pub fn akid_names_another_issuer(&self, issuer: &Certificate) -> bool {
        let Some(rare) = self.rare.as_deref() else {
            return false;
        };
        let serial_differs = rare.aki_serial.as_deref().is_some_and(|value| {
            let theirs = issuer
                .serial
                .split(':')
                .skip_while(|byte| *byte == "00")
                .collect::<Vec<_>>()
                .join(":");
            serial_text(value) != theirs
        });
        let issuer_differs = rare
            .aki_issuer
            .as_deref()
            .is_some_and(|name| *name != *issuer.issuer_key);
        serial_differs || issuer_differs
    }

    /// Subject and issuer are the same name (RFC 5280 §3.2: self-issued).
    pub fn is_self_issued(&self) -> bool {
        *self.subject_key == *self.issuer_key
    }

    /// A short human name: the CN, else the first DNS name, else the full subject.
    pub fn short_name(&self) -> String {
        self.common_name
            .clone()
            .or_else(|| self.dns_names.first().cloned())
            .unwrap_or_else(|| self.subject.clone())
    }

    /// Whether `now` (unix seconds) lies inside notBefore..=notAfter.
    pub fn valid_at(&self, now: i64) -> bool {
        self.not_before <= now && now <= self.not_after
    }

    /// The DER SubjectPublicKeyInfo (what a DANE selector 1 record hashes, RFC 6698 §2.1.2).
    /// `None` only for DER the quick walker does not read (lengths in more than 4 bytes).
    pub fn spki_der(&self) -> Option<&[u8]> {
        subject_and_spki(&self.der).map(|[_, spki]| spki.raw)
    }

    pub fn to_pem(&self) -> String {
        ::pem::encode_config(
            &::pem::Pem::new("CERTIFICATE", self.der.clone()),
            ::pem::EncodeConfig::new().set_line_ending(::pem::LineEnding::LF),
        )
    }
}

/// What a trust store needs to know of a certificate before using it: its subject, as
/// [`Certificate::subject_key`], and the SHA-256 of its SubjectPublicKeyInfo, as
/// [`Certificate::spki_sha256`]. Reads only the subject and key fields, a fraction of the cost
/// of [`Certificate::from_der`]; `None` if they cannot be found.
pub fn peek_subject_and_key(der: &[u8]) -> Option<(String, [u8; 32])> {
    let [subject, spki] = subject_and_spki(der)?;
    let (_, name) = X509Name::from_der(subject.raw).ok()?;
    Some((name_key(&name), Sha256::digest(spki.raw).into()))
}

/// The subject and SubjectPublicKeyInfo fields of a DER certificate, found by walking the
/// TBSCertificate: `[0] version OPTIONAL, serial, signature, issuer, validity, subject, spki`.
fn subject_and_spki(der: &[u8]) -> Option<[crate::asn1::Tlv<'_>; 2]> {
    use crate::asn1::{children, expect, SEQUENCE};
    let (cert, _) = expect(der, SEQUENCE).ok()?;
    let (tbs, _) = expect(cert.content, SEQUENCE).ok()?;
    let mut fields = children(tbs.content);
    let first = fields.next()?.ok()?;
    // Without the version, the first field is the serial: the subject is then the fourth
    // field after it, else the fifth.
    let skip = if first.tag == 0xa0 { 4 } else { 3 };
    let subject = fields.nth(skip)?.ok()?;
    let spki = fields.next()?.ok()?;
    Some([subject, spki])
}

/// The signed bytes (the whole TBSCertificate) and the signature of a DER certificate.
fn signed_parts(der: &[u8]) -> Option<(&[u8], &[u8])> {
    use crate::asn1::{children, expect, BIT_STRING, SEQUENCE};
    let (cert, _) = expect(der, SEQUENCE).ok()?;
    let mut parts = children(cert.content);
    let tbs = parts.next()?.ok()?;
    let _algorithm = parts.next()?.ok()?;
    let signature = parts.next()?.ok()?;
    match (signature.tag, signature.content.split_first()) {
        (BIT_STRING, Some((0, bits))) => Some((tbs.raw, bits)),
        _ => None,
    }
}

fn facts(der: &[u8], x: &X509Certificate<'_>) -> Certificate {
    let ext = extensions::read(x);
    let mut ca_issuers = ext.ca_issuers;
    let mut dns_names = ext.dns_names;
    let mut ip_addrs = ext.ip_addrs;
    let common_name = x
        .subject()
        .iter_common_name()
        .next()
        .and_then(|cn| cn.as_str().ok())
        .map(str::to_string);
    let spki = x.public_key();
    let sig_alg = sigalg::signature_algorithm(x);
    // RFC 5280 §4.1.2.3: the two must match; OpenSSL marks a certificate whose two differ
    // invalid.
    let sig_alg_consistent = x.signature_algorithm == x.tbs_certificate.signature;
    // Held for the whole run, a fleet of them: no spare capacity (the issuer's name is shared
    // instead, see `shared`).
    let mut subject = display_name(x.subject());
    subject.shrink_to_fit();
    let (issuer, issuer_key) = shared_name(x.issuer());
    ca_issuers.shrink_to_fit();
    dns_names.shrink_to_fit();
    ip_addrs.shrink_to_fit();
    Certificate {
        der: der.to_vec(),
        sha256: Sha256::digest(der).into(),
        subject,
        issuer,
        subject_key: name_key(x.subject()),
        issuer_key,
        serial: serial_text(x.raw_serial()),
        not_before: x.validity().not_before.timestamp(),
        not_after: x.validity().not_after.timestamp(),
        is_ca: ext.is_ca,
        is_v1: x.version() == x509_parser::x509::X509Version::V1,
        has_basic_constraints: ext.has_basic_constraints,
        path_len: ext.path_len,
        key_usage: ext.key_usage,
        eku: ext.eku,
        rare: ext.rare.with_subject_emails(x).boxed(),
        flaw: ext
            .flaw
            .or_else(|| (!sig_alg_consistent).then_some(Flaw::SignatureAlgorithmMismatch))
            // RFC 5280 §4.1.2.2: the serial is a positive integer; OpenSSL 3 marks a
            // certificate with a negative one invalid and never takes it as issued.
            .or_else(|| {
                (x.raw_serial().first().is_some_and(|b| b & 0x80 != 0))
                    .then_some(Flaw::NegativeSerial)
            }),
        ski: ext.ski,
        aki: ext.aki,
        ca_issuers,
        dns_names,
        ip_addrs,
        common_name,
        sig_alg,
        key: key_kind(x),
        spki_sha256: Sha256::digest(spki.raw).into(),
    }
}

/// One copy of a text that many certificates hold: a fleet's leaves name a handful of issuers
/// and AIA URLs. Each thread keeps a table of the texts it has seen, of bounded size (texts
/// past the bound are simply not shared).
fn shared(text: &str) -> Arc<str> {
    const MAX_SHARED: usize = 4096;
    thread_local! {
        static SEEN: RefCell<HashSet<Arc<str>>> = RefCell::new(HashSet::new());
    }
    SEEN.with(|seen| {
        let mut seen = seen.borrow_mut();
        if let Some(known) = seen.get(text) {
            return known.clone();
        }
        let new: Arc<str> = Arc::from(text);
        if seen.len() < MAX_SHARED {
            seen.insert(new.clone());
        }
        new
    })
}

/// An issuer's display name and matching key, made once per thread for each distinct encoding
/// of the name (a fleet's leaves name a handful of issuers), and shared. Bounded as [`shared`].
fn shared_name(name: &X509Name<'_>) -> (Arc<str>, Arc<str>) {
    const MAX_SHARED: usize = 4096;
    type Names = HashMap<Box<[u8]>, (Arc<str>, Arc<str>)>;
    thread_local! {
        static SEEN: RefCell<Names> = RefCell::new(HashMap::new());
    }
    SEEN.with(|seen| {
        let mut seen = seen.borrow_mut();
        if let Some(known) = seen.get(name.as_raw()) {
            return known.clone();
        }
        let new: (Arc<str>, Arc<str>) = (
            Arc::from(display_name(name).as_str()),
            Arc::from(name_key(name).as_str()),
        );
        if seen.len() < MAX_SHARED {
            seen.insert(name.as_raw().into(), new.clone());
        }
        new
    })
}

fn key_kind(x: &X509Certificate<'_>) -> KeyKind {
    let spki = x.public_key();
    let alg = &spki.algorithm.algorithm;
    if *alg == OID_PKCS1_RSAENCRYPTION {
        let bits = match spki.parsed() {
            Ok(PublicKey::RSA(rsa)) => rsa_bits(rsa.modulus),
            _ => 0,
        };
        KeyKind::Rsa { bits }
    } else if *alg == OID_KEY_TYPE_EC_PUBLIC_KEY {
        let curve = spki
            .algorithm
            .parameters
            .as_ref()
            .and_then(|p| p.as_oid().ok())
            .map(|oid| {
                if oid == OID_EC_P256 {
                    "P-256"
                } else if oid == OID_NIST_EC_P384 {
                    "P-384"
                } else if oid == OID_NIST_EC_P521 {
                    "P-521"
                } else if oid.as_bytes() == [0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x01] {
                    // prime192v1 (RFC 5480 §2.1.1.1): 80 bits of security, too weak at level 2.
                    "P-192"
                } else if oid.as_bytes() == [0x2b, 0x81, 0x04, 0x00, 0x21] {
                    "P-224"
                } else {
                    "unknown curve"
                }
            })
            .unwrap_or("unknown curve");
        KeyKind::Ec { curve }
    } else if *alg == OID_SIG_ED25519 {
        KeyKind::Ed25519
    } else {
        KeyKind::Other {
            oid: alg.to_id_string(),
        }
    }
}

fn rsa_bits(modulus: &[u8]) -> u32 {
    let m = strip_zeros(modulus);
    match m.first() {
        None => 0,
        Some(&b) => (m.len() as u32 - 1) * 8 + (8 - b.leading_zeros()),
    }
}

fn spki_key_id(spki: &SubjectPublicKeyInfo<'_>) -> Vec<u8> {
    match spki.parsed() {
        Ok(PublicKey::RSA(rsa)) => rsa_key_id(rsa.modulus, rsa.exponent),
        _ => raw_key_id(&spki.subject_public_key.data),
    }
}

/// Canonical id of an RSA public key: modulus and exponent without leading zeros.
pub fn rsa_key_id(modulus: &[u8], exponent: &[u8]) -> Vec<u8> {
    let (n, e) = (strip_zeros(modulus), strip_zeros(exponent));
    let mut id = b"rsa:".to_vec();
    id.extend_from_slice(&(n.len() as u32).to_be_bytes());
    id.extend_from_slice(n);
    id.extend_from_slice(e);
    id
}

/// Canonical id of an EC point or EdDSA key: the public key bytes themselves.
pub fn raw_key_id(public: &[u8]) -> Vec<u8> {
    let mut id = b"raw:".to_vec();
    id.extend_from_slice(public);
    id
}

fn strip_zeros(b: &[u8]) -> &[u8] {
    let start = b.iter().position(|&x| x != 0).unwrap_or(b.len());
    &b[start..]
}

fn ip_from_bytes(b: &[u8]) -> Option<IpAddr> {
    match b.len() {
        4 => <[u8; 4]>::try_from(b).ok().map(IpAddr::from),
        16 => <[u8; 16]>::try_from(b).ok().map(IpAddr::from),
        _ => None,
    }
}

/// Hands `verify` what checking `child`'s signature with `issuer`'s key reads from the two
/// DER blobs: the signed bytes (the whole TBSCertificate), the signature, and the issuer's
/// subjectPublicKey bits. Found by walking the DER, else (lengths in more than 4 bytes) by the
/// full parse, whose bytes live only as long as it does, hence the callback. `None` when
/// either certificate does not parse. The verification itself is `chain::link`'s.
pub fn with_signed_parts<R>(
    child: &Certificate,
    issuer: &Certificate,
    verify: impl FnOnce(&[u8], &[u8], &[u8]) -> R,
) -> Option<R> {
    fn key_bits(spki: crate::asn1::Tlv<'_>) -> Option<&[u8]> {
        crate::asn1::children(spki.content)
            .nth(1)
            .and_then(Result::ok)
            .and_then(|bits| match bits.content.split_first() {
                Some((0, key)) if bits.tag == crate::asn1::BIT_STRING => Some(key),
                _ => None,
            })
    }
    let quick = signed_parts(&child.der)
        .zip(subject_and_spki(&issuer.der).and_then(|[_, spki]| key_bits(spki)));
    if let Some(((signed, sig), bits)) = quick {
        return Some(verify(signed, sig, bits));
    }
    let (Ok((_, c)), Ok((_, i))) = (
        X509Certificate::from_der(&child.der),
        X509Certificate::from_der(&issuer.der),
    ) else {
        return None;
    };
    Some(verify(
        c.tbs_certificate.as_ref(),
        &c.signature_value.data,
        &i.public_key().subject_public_key.data,
    ))
}

/// A serial number as x509-parser's `raw_serial_as_string` writes it (`0a:1b:...`), without
/// a string for each byte.
fn serial_text(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity((3 * bytes.len()).saturating_sub(1));
    for (i, &b) in bytes.iter().enumerate() {
        if i > 0 {
            s.push(':');
        }
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    s
}

/// Lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 0xf)] as char);
    }
    s
}

fn short_error(s: &str) -> String {
    s.chars().take(120).collect()
}

/// Formats unix seconds as an RFC 3339 UTC timestamp.
pub fn format_time(t: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(t)
        .ok()
        .and_then(|d| {
            d.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| t.to_string())
}

/// Formats unix seconds as a calendar date (YYYY-MM-DD).
pub fn format_date(t: i64) -> String {
    let fmt = time::macros::format_description!("[year]-[month]-[day]");
    time::OffsetDateTime::from_unix_timestamp(t)
        .ok()
        .and_then(|d| d.format(&fmt).ok())
        .unwrap_or_else(|| t.to_string())
}

#[cfg(test)]
mod tests {
    //! The shortcuts taken for speed must give what the slow way gives: the five extensions
    //! read one by one, the public key id made on demand, the dotted attribute types, the
    //! shared issuer names.

    use super::*;
    use x509_parser::extensions::{GeneralName, ParsedExtension};

    /// What the crate's deep parse of the extensions says of the five that are read.
    type ExtensionFacts = (
        Option<Vec<u8>>,
        Option<Vec<u8>>,
        (bool, bool, Option<u32>, Option<bool>),
        Vec<String>,
        Vec<String>,
        Vec<IpAddr>,
    );

    fn deep_parse_facts(x: &X509Certificate<'_>) -> ExtensionFacts {
        let (mut ski, mut aki, mut is_ca) = (None, None, false);
        let (mut has_bc, mut path_len, mut cert_sign) = (false, None, None);
        let (mut aia, mut dns, mut ips) = (Vec::new(), Vec::new(), Vec::new());
        for ext in x.extensions() {
            match ext.parsed_extension() {
                ParsedExtension::SubjectKeyIdentifier(k) => ski = Some(k.0.to_vec()),
                ParsedExtension::AuthorityKeyIdentifier(a) => {
                    aki = a.key_identifier.as_ref().map(|k| k.0.to_vec())
                }
                ParsedExtension::BasicConstraints(bc) => {
                    is_ca = bc.ca;
                    has_bc = true;
                    path_len = bc.path_len_constraint;
                }
                ParsedExtension::KeyUsage(ku) => cert_sign = Some(ku.key_cert_sign()),
                ParsedExtension::AuthorityInfoAccess(a) => {
                    for desc in &a.accessdescs {
                        if desc.access_method.to_id_string() == "1.3.6.1.5.5.7.48.2" {
                            if let GeneralName::URI(uri) = desc.access_location {
                                aia.push(uri.trim().to_string());
                            }
                        }
                    }
                }
                ParsedExtension::SubjectAlternativeName(san) => {
                    for name in &san.general_names {
                        match name {
                            GeneralName::DNSName(d) => dns.push(d.to_string()),
                            GeneralName::IPAddress(b) => ips.extend(ip_from_bytes(b)),
                            _ => {}
                        }
                    }
                }
                _ => {}
            }
        }
        (
            ski,
            aki,
            (is_ca, has_bc, path_len, cert_sign),
            aia,
            dns,
            ips,
        )
    }

    fn facts_read(c: &Certificate) -> ExtensionFacts {
        (
            c.ski.clone(),
            c.aki.clone(),
            (
                c.is_ca,
                c.has_basic_constraints,
                c.path_len,
                c.key_cert_sign(),
            ),
            c.ca_issuers.iter().map(|u| u.to_string()).collect(),
            c.dns_names.clone(),
            c.ip_addrs.clone(),
        )
    }

    /// Every certificate within reach: the embedded roots, the test data and, when it is
    /// beside the repository, the shared real-world set (leaves, intermediates, roots).
    fn certificates_within_reach() -> Vec<Vec<u8>> {
        let mut ders: Vec<Vec<u8>> = webpki_root_certs::TLS_SERVER_ROOT_CERTS
            .iter()
            .map(|d| d.as_ref().to_vec())
            .collect();
        let here = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut todo = vec![
            here.join("testdata"),
            here.join("../shared/realworld/certs"),
            here.join("../shared/realworld/roots"),
            here.join("../shared/realworld/bundles"),
        ];
        while let Some(dir) = todo.pop() {
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for e in entries.flatten() {
                let path = e.path();
                if path.is_dir() {
                    todo.push(path);
                } else if let Ok(data) = std::fs::read(&path) {
                    for p in ::pem::parse_many(&data).unwrap_or_default() {
                        if p.tag() == "CERTIFICATE" {
                            ders.push(p.into_contents());
                        }
                    }
                }
            }
        }
        ders
    }

    #[test]
    fn extensions_read_one_by_one_give_what_the_deep_parse_gives() {
        let ders = certificates_within_reach();
        let mut compared = 0;
        for der in &ders {
            let deep = X509Certificate::from_der(der);
            let ours = Certificate::from_der(der);
            assert_eq!(deep.is_ok(), ours.is_ok(), "{}", hex(&Sha256::digest(der)));
            if let (Ok((_, x)), Ok(c)) = (deep, ours) {
                assert_eq!(deep_parse_facts(&x), facts_read(&c), "{}", c.subject);
                assert_eq!(c.serial, x.raw_serial_as_string(), "{}", c.subject);
                compared += 1;
            }
        }
        assert!(compared > 100, "only {compared} certificates");
        // Damaged copies (one byte changed) are refused, or read, alike.
        let mut rng = 0x2545_f491_4f6c_dd1d_u64;
        for der in ders.iter().take(200) {
            for _ in 0..100 {
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                let mut bad = der.clone();
                let at = (rng % bad.len() as u64) as usize;
                bad[at] ^= (rng >> 32) as u8 | 1;
                let deep = X509Certificate::from_der(&bad);
                let ours = Certificate::from_der(&bad);
                assert_eq!(deep.is_ok(), ours.is_ok(), "byte {at} of {}", hex(&bad));
                if let (Ok((_, x)), Ok(c)) = (deep, ours) {
                    assert_eq!(deep_parse_facts(&x), facts_read(&c), "byte {at}");
                }
            }
        }
    }

    #[test]
    fn signature_algorithms_are_known_by_their_oids() {
        let known = sigalg::known_signature_algorithms();
        assert_eq!(known.len(), sigalg::SIGNATURE_ALGORITHMS.len());
        for ((oid, alg), (dotted, want)) in known.iter().zip(&sigalg::SIGNATURE_ALGORITHMS) {
            assert_eq!(oid.to_id_string(), *dotted);
            assert_eq!(alg, want);
        }
    }

    #[test]
    fn a_signed_part_naming_another_algorithm_is_a_flaw() {
        let key = rcgen::KeyPair::generate().expect("key");
        let params = rcgen::CertificateParams::new(vec!["a.test".into()]).expect("params");
        let der = params.self_signed(&key).expect("sign").der().to_vec();
        assert_eq!(Certificate::from_der(&der).expect("parses").flaw, None);
        // ecdsa-with-SHA256; its first occurrence is the TBSCertificate's `signature` field.
        let sha256 = [0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02];
        let at = der
            .windows(sha256.len())
            .position(|w| w == sha256)
            .expect("algorithm");
        let mut odd = der.clone();
        odd[at + sha256.len() - 1] = 0x03; // ecdsa-with-SHA384
        let cert = Certificate::from_der(&odd).expect("still parses");
        assert_eq!(cert.flaw, Some(Flaw::SignatureAlgorithmMismatch));
        assert_eq!(
            cert.sig_alg,
            SigAlg::Ecdsa(Hash::Sha256),
            "the outer one names it"
        );
    }

    #[test]
    fn serials_are_written_as_the_parser_writes_them() {
        for bytes in [&[][..], &[0], &[0x0a], &[0x00, 0xff, 0x10], &[0xab; 20]] {
            assert_eq!(
                serial_text(bytes),
                x509_parser::utils::format_serial(bytes),
                "{bytes:02x?}"
            );
        }
    }

    #[test]
    fn shared_issuer_names_are_the_names_made_afresh() {
        for der in webpki_root_certs::TLS_SERVER_ROOT_CERTS.iter().take(40) {
            let (_, x) = X509Certificate::from_der(der.as_ref()).expect("parses");
            for _ in 0..2 {
                let (display, key) = shared_name(x.issuer());
                assert_eq!(*display, display_name(x.issuer()));
                assert_eq!(*key, name_key(x.issuer()));
            }
        }
    }

    fn full_parse_key_id(der: &[u8]) -> Vec<u8> {
        let (_, x) = X509Certificate::from_der(der).expect("parses");
        spki_key_id(x.public_key())
    }

    #[test]
    fn public_key_id_agrees_with_a_full_parse_for_every_embedded_root() {
        let mut checked = 0;
        for der in webpki_root_certs::TLS_SERVER_ROOT_CERTS {
            let cert = Certificate::from_der(der.as_ref()).expect("an embedded root parses");
            let id = cert.public_key_id();
            assert!(!id.is_empty());
            assert_eq!(id, full_parse_key_id(der.as_ref()));
            checked += 1;
        }
        assert!(checked > 100, "only {checked} embedded roots");
    }

    /// DER lengths in 5 bytes: x509-parser reads them, the quick walker does not, and the id
    /// must still come out (else the leaf's own key would be reported as a mismatch).
    #[test]
    fn public_key_id_of_a_certificate_the_quick_walker_cannot_read() {
        let der: &[u8] = webpki_root_certs::TLS_SERVER_ROOT_CERTS[0].as_ref();
        let [_, spki] = subject_and_spki(der).expect("walks");
        let at = spki.raw.as_ptr() as usize - der.as_ptr() as usize;
        let header = spki.raw.len() - spki.content.len();
        let long: Vec<u8> = [0x30, 0x85, 0]
            .into_iter()
            .chain((spki.content.len() as u32).to_be_bytes())
            .collect();
        let grow = long.len() - header;
        let mut odd = der[..at].to_vec();
        odd.extend_from_slice(&long);
        odd.extend_from_slice(spki.content);
        odd.extend_from_slice(&der[at + spki.raw.len()..]);
        // The certificate and TBSCertificate lengths (both 0x82 forms) grow by as much.
        for start in [0, 4] {
            assert_eq!(odd[start + 1], 0x82, "two-byte length at {start}");
            let len = u16::from_be_bytes([odd[start + 2], odd[start + 3]]) as usize + grow;
            odd[start + 2..start + 4].copy_from_slice(&(len as u16).to_be_bytes());
        }
        assert!(
            subject_and_spki(&odd).is_none(),
            "the quick walker reads it after all"
        );
        let cert = Certificate::from_der(&odd).expect("x509-parser reads it");
        assert_eq!(cert.public_key_id(), full_parse_key_id(der));
    }
}
