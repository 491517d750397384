//! Certificate extensions: the facts path validation reads from them (RFC 5280 §4.2), and
//! the flaws that make receivers refuse a certificate whatever its chain.
//!
//! Each extension is parsed with the parser x509-parser's deep parse would use; a damaged one
//! is a [`Flaw`], as OpenSSL marks a certificate whose basicConstraints, keyUsage,
//! extendedKeyUsage, subjectAltName, nameConstraints or key identifiers do not decode
//! `EXFLAG_INVALID` (`x509v3_cache_extensions`, crypto/x509/v3_purp.c) and refuses it.

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;

use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::{
    AuthorityInfoAccess, AuthorityKeyIdentifier, BasicConstraints, ExtendedKeyUsage, GeneralName,
    KeyIdentifier, KeyUsage, NameConstraints as ParsedConstraints, SubjectAlternativeName,
};
use x509_parser::oid_registry::{
    OID_PKIX_ACCESS_DESCRIPTOR_CA_ISSUERS, OID_PKIX_AUTHORITY_INFO_ACCESS,
    OID_X509_EXT_AUTHORITY_KEY_IDENTIFIER, OID_X509_EXT_BASIC_CONSTRAINTS,
    OID_X509_EXT_EXTENDED_KEY_USAGE, OID_X509_EXT_KEY_USAGE, OID_X509_EXT_NAME_CONSTRAINTS,
    OID_X509_EXT_SUBJECT_ALT_NAME, OID_X509_EXT_SUBJECT_KEY_IDENTIFIER,
};
use x509_parser::prelude::FromDer;

use super::{ip_from_bytes, name_key, shared};

/// keyUsage bits as RFC 5280 §4.2.1.3 numbers them, in the value x509-parser gives.
pub const KU_DIGITAL_SIGNATURE: u16 = 1 << 0;
pub const KU_KEY_ENCIPHERMENT: u16 = 1 << 2;
pub const KU_KEY_AGREEMENT: u16 = 1 << 4;
pub const KU_KEY_CERT_SIGN: u16 = 1 << 5;

/// The purposes an extendedKeyUsage extension lists (RFC 5280 §4.2.1.12).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Eku {
    pub server_auth: bool,
    pub client_auth: bool,
    pub email_protection: bool,
    pub any: bool,
    /// Netscape or Microsoft Server Gated Crypto, which OpenSSL accepts for a TLS server
    /// (`XKU_SGC`, crypto/x509/v3_purp.c).
    pub sgc: bool,
}

/// What makes receivers refuse a certificate whatever its chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Flaw {
    /// A critical extension outside the set OpenSSL handles (`X509_supported_extension`,
    /// crypto/x509/v3_purp.c): RFC 5280 §4.2 says a verifier must then reject the certificate.
    UnknownCriticalExtension(Box<str>),
    /// The same extension twice (RFC 5280 §4.2: "MUST NOT include more than one instance").
    DuplicateExtension(Box<str>),
    /// An extension path validation reads does not decode.
    DamagedExtension(&'static str),
    /// The TBSCertificate's `signature` field differs from the outer signatureAlgorithm
    /// (RFC 5280 §4.1.1.2).
    SignatureAlgorithmMismatch,
    /// A negative serial number (RFC 5280 §4.1.2.2).
    NegativeSerial,
    /// A CA certificate with an empty subject (RFC 5280 §4.1.2.6: a CA's subject MUST be a
    /// non-empty name); OpenSSL cannot find it as anyone's issuer.
    EmptyIssuerName,
}

impl fmt::Display for Flaw {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Flaw::UnknownCriticalExtension(oid) => {
                write!(
                    f,
                    "it has a critical extension receivers do not know ({oid})"
                )
            }
            Flaw::DuplicateExtension(oid) => write!(f, "it repeats the extension {oid}"),
            Flaw::DamagedExtension(name) => write!(f, "its {name} extension is damaged"),
            Flaw::SignatureAlgorithmMismatch => {
                f.write_str("its signed part names another signature algorithm than its signature")
            }
            Flaw::NegativeSerial => f.write_str("its serial number is negative"),
            Flaw::EmptyIssuerName => f.write_str("it issues certificates under an empty name"),
        }
    }
}

/// One name-constraint subtree (RFC 5280 §4.2.1.10), in the form matching compares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subtree {
    /// A DNS name or domain, lower-cased.
    Dns(String),
    /// A mailbox, a host, or a domain starting with ".".
    Email(String),
    /// The host part a URI must have, or a domain starting with ".".
    Uri(String),
    /// An address and mask of equal length (4 or 16 bytes).
    Ip { addr: Vec<u8>, mask: Vec<u8> },
    /// A directory name, as [`name_key`] writes it.
    Dir(String),
    /// A form OpenSSL does not evaluate (otherName, x400Address, ...): a certificate with a
    /// name of that form under such a constraint is refused.
    Unsupported(&'static str),
    /// A subtree that does not decode (an IP constraint of the wrong length, ...).
    Damaged,
}

/// nameConstraints (RFC 5280 §4.2.1.10).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NameConstraints {
    pub permitted: Vec<Subtree>,
    pub excluded: Vec<Subtree>,
}

/// Names and constraints few certificates carry.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Rare {
    /// rfc822Name entries of the subjectAltName.
    pub emails: Vec<String>,
    /// uniformResourceIdentifier entries.
    pub uris: Vec<String>,
    /// directoryName entries, as [`name_key`] writes them.
    pub dir_names: Vec<String>,
    /// Forms of subjectAltName entries matching does not read (otherName, ...).
    pub other_names: Vec<&'static str>,
    /// emailAddress attributes of the subject (RFC 5280 §4.2.1.10 applies rfc822Name
    /// constraints to them).
    pub subject_emails: Vec<String>,
    pub name_constraints: Option<NameConstraints>,
    /// The authorityKeyIdentifier's authorityCertSerialNumber: the issuer's serial, leading
    /// zero bytes removed (the integer's value).
    pub aki_serial: Option<Vec<u8>>,
    /// The first directoryName of the authorityKeyIdentifier's authorityCertIssuer: the
    /// issuer's own issuer, as [`name_key`] writes it.
    pub aki_issuer: Option<String>,
}

impl Rare {
    pub(super) fn with_subject_emails(mut self, x: &X509Certificate<'_>) -> Rare {
        self.subject_emails = x
            .subject()
            .iter_email()
            .filter_map(|e| e.as_str().ok())
            .map(str::to_string)
            .collect();
        self
    }

    pub(super) fn boxed(self) -> Option<Box<Rare>> {
        (self != Rare::default()).then(|| Box::new(self))
    }
}

/// Everything read from the extensions.
#[derive(Default)]
pub(super) struct Extensions {
    pub ski: Option<Vec<u8>>,
    pub aki: Option<Vec<u8>>,
    pub ca_issuers: Vec<Arc<str>>,
    pub dns_names: Vec<String>,
    pub ip_addrs: Vec<IpAddr>,
    pub is_ca: bool,
    pub has_basic_constraints: bool,
    pub path_len: Option<u32>,
    pub key_usage: Option<u16>,
    pub eku: Option<Eku>,
    pub rare: Rare,
    pub flaw: Option<Flaw>,
}

/// The extensions OpenSSL 3 handles when critical (`supported_nids`,
/// crypto/x509/v3_purp.c), by DER OID content.
const SUPPORTED_CRITICAL: [&[u8]; 15] = [
    &[0x60, 0x86, 0x48, 0x01, 0x86, 0xf8, 0x42, 0x01, 0x01], // netscape-cert-type
    &[0x55, 0x1d, 0x0f],                                     // keyUsage
    &[0x55, 0x1d, 0x11],                                     // subjectAltName
    &[0x55, 0x1d, 0x13],                                     // basicConstraints
    &[0x55, 0x1d, 0x20],                                     // certificatePolicies
    &[0x55, 0x1d, 0x1f],                                     // cRLDistributionPoints
    &[0x55, 0x1d, 0x25],                                     // extendedKeyUsage
    &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x01, 0x07],       // sbgp-ipAddrBlock
    &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x01, 0x08],       // sbgp-autonomousSysNum
    &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x30, 0x01, 0x05], // id-pkix-OCSP-noCheck
    &[0x55, 0x1d, 0x24],                                     // policyConstraints
    &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x01, 0x0e],       // proxyCertInfo
    &[0x55, 0x1d, 0x1e],                                     // nameConstraints
    &[0x55, 0x1d, 0x21],                                     // policyMappings
    &[0x55, 0x1d, 0x36],                                     // inhibitAnyPolicy
];

/// Netscape and Microsoft Server Gated Crypto purposes.
const NS_SGC: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x86, 0xf8, 0x42, 0x04, 0x01];
const MS_SGC: &[u8] = &[0x2b, 0x06, 0x01, 0x04, 0x01, 0x82, 0x37, 0x0a, 0x03, 0x03];

/// Reads the extensions of `x`. A damaged extension is skipped for its facts (as the crate's
/// deep parse leaves it as a parse error) and recorded as the certificate's flaw.
pub(super) fn read(x: &X509Certificate<'_>) -> Extensions {
    let mut out = Extensions::default();
    let mut seen: Vec<&[u8]> = Vec::new();
    let flaw = |out: &mut Extensions, f: Flaw| {
        out.flaw.get_or_insert(f);
    };
    for ext in x.extensions() {
        let (oid, value) = (&ext.oid, ext.value);
        if seen.contains(&oid.as_bytes()) {
            flaw(
                &mut out,
                Flaw::DuplicateExtension(oid.to_id_string().into()),
            );
        }
        seen.push(oid.as_bytes());
        if ext.critical && !SUPPORTED_CRITICAL.contains(&oid.as_bytes()) {
            flaw(
                &mut out,
                Flaw::UnknownCriticalExtension(oid.to_id_string().into()),
            );
        }
        if *oid == OID_X509_EXT_SUBJECT_KEY_IDENTIFIER {
            match KeyIdentifier::from_der(value) {
                Ok((_, k)) => out.ski = Some(k.0.to_vec()),
                Err(_) => flaw(&mut out, Flaw::DamagedExtension("subjectKeyIdentifier")),
            }
        } else if *oid == OID_X509_EXT_AUTHORITY_KEY_IDENTIFIER {
            match AuthorityKeyIdentifier::from_der(value) {
                Ok((_, a)) => {
                    out.aki = a.key_identifier.as_ref().map(|k| k.0.to_vec());
                    out.rare.aki_serial = a.authority_cert_serial.map(|s| {
                        let first = s.iter().position(|&b| b != 0).unwrap_or(s.len());
                        s[first..].to_vec()
                    });
                    // OpenSSL's X509_check_akid reads the first directoryName only.
                    out.rare.aki_issuer = a.authority_cert_issuer.as_ref().and_then(|names| {
                        names.iter().find_map(|n| match n {
                            GeneralName::DirectoryName(d) => Some(name_key(d)),
                            _ => None,
                        })
                    });
                }
                Err(_) => flaw(&mut out, Flaw::DamagedExtension("authorityKeyIdentifier")),
            }
        } else if *oid == OID_X509_EXT_BASIC_CONSTRAINTS {
            match BasicConstraints::from_der(value) {
                Ok((_, bc)) => {
                    out.is_ca = bc.ca;
                    out.has_basic_constraints = true;
                    out.path_len = bc.path_len_constraint;
                }
                Err(_) => flaw(&mut out, Flaw::DamagedExtension("basicConstraints")),
            }
        } else if *oid == OID_X509_EXT_KEY_USAGE {
            match KeyUsage::from_der(value) {
                Ok((_, ku)) => out.key_usage = Some(ku.flags),
                Err(_) => flaw(&mut out, Flaw::DamagedExtension("keyUsage")),
            }
        } else if *oid == OID_X509_EXT_EXTENDED_KEY_USAGE {
            match ExtendedKeyUsage::from_der(value) {
                Ok((_, e)) => {
                    out.eku = Some(Eku {
                        server_auth: e.server_auth,
                        client_auth: e.client_auth,
                        email_protection: e.email_protection,
                        any: e.any,
                        sgc: e
                            .other
                            .iter()
                            .any(|o| o.as_bytes() == NS_SGC || o.as_bytes() == MS_SGC),
                    })
                }
                Err(_) => flaw(&mut out, Flaw::DamagedExtension("extendedKeyUsage")),
            }
        } else if *oid == OID_X509_EXT_NAME_CONSTRAINTS {
            match ParsedConstraints::from_der(value) {
                Ok((_, nc)) => out.rare.name_constraints = Some(constraints(&nc)),
                Err(_) => flaw(&mut out, Flaw::DamagedExtension("nameConstraints")),
            }
        } else if *oid == OID_PKIX_AUTHORITY_INFO_ACCESS {
            let Ok((_, aia)) = AuthorityInfoAccess::from_der(value) else {
                continue;
            };
            for desc in &aia.accessdescs {
                if desc.access_method == OID_PKIX_ACCESS_DESCRIPTOR_CA_ISSUERS {
                    if let GeneralName::URI(uri) = desc.access_location {
                        out.ca_issuers.push(shared(uri.trim()));
                    }
                }
            }
        } else if *oid == OID_X509_EXT_SUBJECT_ALT_NAME {
            let Ok((_, san)) = SubjectAlternativeName::from_der(value) else {
                flaw(&mut out, Flaw::DamagedExtension("subjectAltName"));
                continue;
            };
            for name in &san.general_names {
                match name {
                    GeneralName::DNSName(d) => out.dns_names.push(d.to_string()),
                    GeneralName::IPAddress(b) => match ip_from_bytes(b) {
                        Some(ip) => out.ip_addrs.push(ip),
                        None => flaw(&mut out, Flaw::DamagedExtension("subjectAltName")),
                    },
                    GeneralName::RFC822Name(m) => out.rare.emails.push(m.to_string()),
                    GeneralName::URI(u) => out.rare.uris.push(u.to_string()),
                    GeneralName::DirectoryName(n) => out.rare.dir_names.push(name_key(n)),
                    GeneralName::Invalid(..) => {
                        flaw(&mut out, Flaw::DamagedExtension("subjectAltName"))
                    }
                    other => out.rare.other_names.push(form(other)),
                }
            }
        }
    }
    out
}

/// The name of a GeneralName's form, for the forms matching does not read.
fn form(name: &GeneralName<'_>) -> &'static str {
    match name {
        GeneralName::OtherName(..) => "otherName",
        GeneralName::X400Address(_) => "x400Address",
        GeneralName::EDIPartyName(_) => "ediPartyName",
        GeneralName::RegisteredID(_) => "registeredID",
        GeneralName::RFC822Name(_) => "rfc822Name",
        GeneralName::DNSName(_) => "dNSName",
        GeneralName::DirectoryName(_) => "directoryName",
        GeneralName::URI(_) => "uniformResourceIdentifier",
        GeneralName::IPAddress(_) => "iPAddress",
        GeneralName::Invalid(..) => "invalid",
    }
}

fn constraints(nc: &ParsedConstraints<'_>) -> NameConstraints {
    let subtrees = |list: &Option<Vec<x509_parser::extensions::GeneralSubtree<'_>>>| {
        list.iter()
            .flatten()
            .map(|t| subtree(&t.base))
            .collect::<Vec<_>>()
    };
    NameConstraints {
        permitted: subtrees(&nc.permitted_subtrees),
        excluded: subtrees(&nc.excluded_subtrees),
    }
}

fn subtree(base: &GeneralName<'_>) -> Subtree {
    match base {
        GeneralName::DNSName(d) => Subtree::Dns(d.to_ascii_lowercase()),
        GeneralName::RFC822Name(m) => Subtree::Email(m.to_string()),
        GeneralName::URI(u) => Subtree::Uri(u.to_ascii_lowercase()),
        GeneralName::DirectoryName(n) => Subtree::Dir(name_key(n)),
        GeneralName::IPAddress(b) if b.len() == 8 || b.len() == 32 => {
            let (addr, mask) = b.split_at(b.len() / 2);
            Subtree::Ip {
                addr: addr.to_vec(),
                mask: mask.to_vec(),
            }
        }
        GeneralName::IPAddress(_) | GeneralName::Invalid(..) => Subtree::Damaged,
        other => Subtree::Unsupported(form(other)),
    }
}
