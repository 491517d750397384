//! The documented policy differences between chainfix's OpenSSL 3 model and rustls/webpki:
//! one table ([`Policy`], with [`Policy::description`] and [`Policy::citation`]), and
//! [`explain`], which finds the one a disagreement comes from by examining the chain (a
//! SHA-1 signature on a link, a P-521 issuer key, a keyUsage webpki does not read), never the
//! wording of an error. A disagreement no entry explains is a bug; `tests/limbo.rs` fails on it.

use serde::Serialize;

use super::{Reason, Subject, Verdict, WebpkiError};
use crate::cert::{Certificate, Hash, KeyKind, NameConstraints, SigAlg, Subtree};
use crate::chain::{Defect, Role};

/// One documented reason for the two receivers to disagree. Paths cited are in the
/// rustls-webpki 0.103 and rustls 0.23 sources.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Policy {
    /// A SHA-1 signature on a link.
    Sha1Signature,
    /// A SHA-224 signature on a link.
    Sha224Signature,
    /// An ECDSA signature over SHA-512 on a link.
    EcdsaSha512,
    /// A P-521 key signing a link, or as the leaf's key.
    P521,
    /// An RSA key outside 2048..8192 bits signing a link, or as the leaf's key.
    RsaKeySize,
    /// An RSA-PSS signature whose salt is not the hash length (or whose MGF1 hash differs).
    PssSaltNotHashLength,
    /// DSA, Ed448, or another key or signature algorithm rustls's ring provider lacks.
    AlgorithmNotInProvider,
    /// The host matches only the subject CN, or OpenSSL refuses the CN under name constraints.
    CnFallback,
    /// A keyUsage that does not allow TLS (leaf) or certificate signing (CA).
    KeyUsageIgnored,
    /// A defect of the trust anchor's own certificate (validity, purpose, CA flag).
    AnchorNotChecked,
    /// A critical extension OpenSSL knows and webpki does not.
    CriticalExtension,
    /// A certificate below the anchor that is not version 3.
    CertVersion,
    /// A serial number webpki refuses (longer than 20 octets).
    SerialNumber,
    /// A certificate on webpki's built-in distrust list.
    Distrusted,
    /// More intermediates than webpki follows.
    PathDepth,
    /// A leaf that says cA=TRUE in basicConstraints.
    CaAsEndEntity,
    /// A self-issued intermediate (key rollover) on the path.
    SelfIssuedNotExempt,
    /// A directoryName or URI name constraint on the path.
    UnsupportedNameConstraint,
    /// A wildcard DNS name under an excluded DNS subtree below its domain.
    WildcardExcludedSubtree,
    /// A DNS subjectAltName that is not a valid host name, under DNS name constraints.
    MalformedDnsName,
    /// An extendedKeyUsage with Server Gated Crypto but not serverAuth.
    SgcEku,
}

impl Policy {
    /// What differs, in one clause the report prints.
    pub fn description(self) -> &'static str {
        match self {
            Policy::Sha1Signature => {
                "webpki with the ring provider verifies no SHA-1 signature; OpenSSL 3 does below \
                 security level 1"
            }
            Policy::Sha224Signature => {
                "webpki with the ring provider verifies no SHA-224 signature; OpenSSL 3 at \
                 security level 2 does (112 bits)"
            }
            Policy::EcdsaSha512 => {
                "webpki with the ring provider verifies ECDSA only over SHA-256 and SHA-384, not \
                 SHA-512; OpenSSL 3 verifies it"
            }
            Policy::P521 => {
                "webpki with the ring provider does not verify P-521 signatures, and rustls \
                 cannot use a P-521 leaf key; OpenSSL 3 does both"
            }
            Policy::RsaKeySize => {
                "webpki and rustls with the ring provider use RSA keys of 2048 to 8192 bits only; \
                 OpenSSL 3 accepts larger ones"
            }
            Policy::PssSaltNotHashLength => {
                "webpki verifies RSA-PSS only with a salt as long as the hash and MGF1 over the \
                 same hash; OpenSSL 3 accepts other parameters"
            }
            Policy::AlgorithmNotInProvider => {
                "the key or signature algorithm (DSA, Ed448, ...) is not among rustls's ring \
                 provider's; OpenSSL 3 verifies it"
            }
            Policy::CnFallback => {
                "webpki never reads the subject CN; OpenSSL 3 matches the host against the CN, \
                 and checks the CN against DNS name constraints, when the leaf has no DNS \
                 subjectAltName"
            }
            Policy::KeyUsageIgnored => {
                "webpki does not read keyUsage; OpenSSL 3 requires keyCertSign on a CA and \
                 digitalSignature, keyEncipherment or keyAgreement on the leaf"
            }
            Policy::AnchorNotChecked => {
                "webpki takes only the trust anchor's name, key and name constraints; OpenSSL 3 \
                 also checks the anchor's validity period, purpose and CA flag"
            }
            Policy::CriticalExtension => {
                "webpki refuses critical extensions other than keyUsage, subjectAltName, \
                 basicConstraints, nameConstraints, cRLDistributionPoints and extKeyUsage; \
                 OpenSSL 3 knows more (certificate policies, policy constraints, ...)"
            }
            Policy::CertVersion => {
                "webpki accepts only version 3 certificates below the trust anchor; OpenSSL 3 \
                 accepts version 1"
            }
            Policy::SerialNumber => {
                "webpki refuses a serial number longer than 20 octets (RFC 5280 §4.1.2.2); \
                 OpenSSL 3 accepts it"
            }
            Policy::Distrusted => {
                "webpki distrusts these CA keys whatever the trust store says; OpenSSL 3 \
                 follows the trust store"
            }
            Policy::PathDepth => {
                "webpki follows at most 6 intermediates; OpenSSL 3 follows up to 100"
            }
            Policy::CaAsEndEntity => {
                "webpki refuses a leaf with cA=TRUE; OpenSSL 3's TLS purpose accepts one without \
                 keyCertSign"
            }
            Policy::SelfIssuedNotExempt => {
                "webpki counts self-issued intermediates against pathLenConstraint and applies \
                 name constraints to them; RFC 5280 §6.1.4(l) and §6.1.3(b) exempt them, as \
                 OpenSSL 3 does"
            }
            Policy::UnsupportedNameConstraint => {
                "webpki does not implement directoryName or URI name constraints and refuses \
                 every certificate under one; OpenSSL 3 evaluates them"
            }
            Policy::WildcardExcludedSubtree => {
                "webpki refuses a wildcard name that could expand into an excluded subtree \
                 (CVE-2025-61727); OpenSSL 3 compares the name as written"
            }
            Policy::MalformedDnsName => {
                "webpki refuses a subjectAltName that is not a valid DNS name when checking name \
                 constraints; OpenSSL 3 compares it as a string"
            }
            Policy::SgcEku => {
                "OpenSSL 3's TLS server purpose accepts Netscape or Microsoft Server Gated Crypto \
                 in extendedKeyUsage in place of serverAuth; webpki requires serverAuth"
            }
        }
    }

    /// Where the difference is documented.
    pub fn citation(self) -> &'static str {
        match self {
            Policy::Sha1Signature
            | Policy::Sha224Signature
            | Policy::EcdsaSha512
            | Policy::P521
            | Policy::RsaKeySize
            | Policy::PssSaltNotHashLength
            | Policy::AlgorithmNotInProvider => {
                "rustls src/crypto/ring/mod.rs SUPPORTED_SIG_ALGS; webpki src/ring_algs.rs"
            }
            Policy::CnFallback => {
                "webpki src/end_entity.rs verify_is_valid_for_subject_name, \
                 src/subject_name/mod.rs (SAN only); OpenSSL X509_check_host, \
                 NAME_CONSTRAINTS_check_CN"
            }
            Policy::KeyUsageIgnored => {
                "webpki src/verify_cert.rs check_issuer_independent_properties (\"we ignore the \
                 KeyUsage extension\"); OpenSSL crypto/x509/v3_purp.c check_ssl_ca, KU_TLS"
            }
            Policy::AnchorNotChecked => {
                "webpki src/trust_anchor.rs anchor_from_trusted_cert (RFC 5280 §6.1.1(d)); \
                 OpenSSL crypto/x509/x509_vfy.c check_chain_purpose, check_cert_time"
            }
            Policy::CriticalExtension => "webpki src/cert.rs remember_cert_extension",
            Policy::CertVersion => "webpki src/cert.rs Cert::from_der (version3)",
            Policy::SerialNumber => "webpki src/cert.rs Cert::from_der (certificate_serial_number)",
            Policy::Distrusted => "webpki src/verify_cert.rs DISTRUSTED_SPKIS",
            Policy::PathDepth => "webpki src/verify_cert.rs MAX_SUB_CA_COUNT",
            Policy::CaAsEndEntity => {
                "webpki src/verify_cert.rs check_basic_constraints (CaUsedAsEndEntity)"
            }
            Policy::SelfIssuedNotExempt => {
                "webpki src/verify_cert.rs build_chain_inner (sub_ca_count counts every issuer), \
                 src/subject_name/mod.rs check_name_constraints"
            }
            Policy::UnsupportedNameConstraint => {
                "webpki src/subject_name/mod.rs check_presented_id_conforms_to_constraints \
                 (rustls/webpki#19)"
            }
            Policy::WildcardExcludedSubtree => {
                "webpki src/subject_name/dns_name.rs presented_id_matches_reference_id"
            }
            Policy::MalformedDnsName => "webpki src/subject_name/dns_name.rs is_valid_dns_id",
            Policy::SgcEku => {
                "OpenSSL crypto/x509/v3_purp.c check_purpose_ssl_server (XKU_SSL_SERVER | \
                 XKU_SGC); webpki src/verify_cert.rs KeyPurposeId (serverAuth only)"
            }
        }
    }

    /// Every entry, in table order (the README table lists them so).
    pub const ALL: [Policy; 21] = [
        Policy::Sha1Signature,
        Policy::Sha224Signature,
        Policy::EcdsaSha512,
        Policy::P521,
        Policy::RsaKeySize,
        Policy::PssSaltNotHashLength,
        Policy::AlgorithmNotInProvider,
        Policy::CnFallback,
        Policy::KeyUsageIgnored,
        Policy::AnchorNotChecked,
        Policy::CriticalExtension,
        Policy::CertVersion,
        Policy::SerialNumber,
        Policy::Distrusted,
        Policy::PathDepth,
        Policy::CaAsEndEntity,
        Policy::SelfIssuedNotExempt,
        Policy::UnsupportedNameConstraint,
        Policy::WildcardExcludedSubtree,
        Policy::MalformedDnsName,
        Policy::SgcEku,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Policy::Sha1Signature => "sha1-signature",
            Policy::Sha224Signature => "sha224-signature",
            Policy::EcdsaSha512 => "ecdsa-sha512",
            Policy::P521 => "p521",
            Policy::RsaKeySize => "rsa-key-size",
            Policy::PssSaltNotHashLength => "pss-salt-not-hash-length",
            Policy::AlgorithmNotInProvider => "algorithm-not-in-provider",
            Policy::CnFallback => "cn-fallback",
            Policy::KeyUsageIgnored => "key-usage-ignored",
            Policy::AnchorNotChecked => "anchor-not-checked",
            Policy::CriticalExtension => "critical-extension",
            Policy::CertVersion => "cert-version",
            Policy::SerialNumber => "serial-number",
            Policy::Distrusted => "distrusted",
            Policy::PathDepth => "path-depth",
            Policy::CaAsEndEntity => "ca-as-end-entity",
            Policy::SelfIssuedNotExempt => "self-issued-not-exempt",
            Policy::UnsupportedNameConstraint => "unsupported-name-constraint",
            Policy::WildcardExcludedSubtree => "wildcard-excluded-subtree",
            Policy::MalformedDnsName => "malformed-dns-name",
            Policy::SgcEku => "sgc-eku",
        }
    }
}

/// The policy behind a disagreement between `openssl` and `webpki` on `certs` (the chosen
/// path, leaf first), or `None` when no entry explains it.
pub fn explain(
    s: &Subject<'_>,
    certs: &[&Certificate],
    openssl: &Verdict,
    webpki: &Verdict,
) -> Option<Policy> {
    match (openssl, webpki) {
        (Verdict::Accepted, Verdict::Rejected(Reason::Webpki(e))) => webpki_refuses(s, certs, *e),
        (Verdict::Rejected(_), Verdict::Accepted) => openssl_refuses(s),
        _ => None,
    }
}

/// Why webpki refuses what OpenSSL accepts: first what the chain's algorithms are, then what
/// webpki's parse of it said.
fn webpki_refuses(s: &Subject<'_>, certs: &[&Certificate], e: WebpkiError) -> Option<Policy> {
    // The links webpki verifies: each certificate below the anchor, by the one above it.
    let links = certs.windows(2).map(|w| (w[0], w[1]));
    for (child, issuer) in links {
        if let Some(p) = link_policy(&child.sig_alg, &issuer.key) {
            return Some(p);
        }
    }
    if let Some(leaf) = certs.first() {
        if let Some(p) = key_policy(&leaf.key) {
            return Some(p);
        }
    }
    if let Some(p) = structure_policy(certs, s.path.anchored) {
        return Some(p);
    }
    match e {
        WebpkiError::CertNotValidForName if s.host.is_some() => {
            // OpenSSL falls back to the CN only when there is no DNS subjectAltName.
            let leaf = certs.first()?;
            (leaf.dns_names.is_empty() && leaf.common_name.is_some()).then_some(Policy::CnFallback)
        }
        WebpkiError::RequiredEkuNotFound
            if s.role == Role::Server
                && certs
                    .iter()
                    .any(|c| c.eku.as_ref().is_some_and(|e| e.sgc && !e.server_auth)) =>
        {
            Some(Policy::SgcEku)
        }
        WebpkiError::UnsupportedCriticalExtension => Some(Policy::CriticalExtension),
        WebpkiError::UnsupportedCertVersion => Some(Policy::CertVersion),
        WebpkiError::InvalidSerialNumber => Some(Policy::SerialNumber),
        WebpkiError::CertDistrusted => Some(Policy::Distrusted),
        WebpkiError::MaximumPathDepthExceeded if certs.len() > 2 + 6 => Some(Policy::PathDepth),
        _ => None,
    }
}

/// The policies that come from the path's structure and names: a CA leaf, a self-issued
/// intermediate, name constraints webpki does not evaluate as OpenSSL does.
fn structure_policy(certs: &[&Certificate], anchored: bool) -> Option<Policy> {
    let leaf = certs.first()?;
    if leaf.has_basic_constraints && leaf.is_ca {
        return Some(Policy::CaAsEndEntity);
    }
    // The certificates between the leaf and the anchor (or the end of the path).
    let end = if anchored {
        certs.len() - 1
    } else {
        certs.len()
    };
    let middle = certs.get(1..end).unwrap_or_default();
    if middle.iter().any(|c| c.is_self_issued()) {
        return Some(Policy::SelfIssuedNotExempt);
    }
    let constraints: Vec<&NameConstraints> = certs[1..]
        .iter()
        .filter_map(|c| c.name_constraints())
        .collect();
    let subtrees = || {
        constraints
            .iter()
            .flat_map(|nc| nc.permitted.iter().chain(&nc.excluded))
    };
    if subtrees().any(|t| matches!(t, Subtree::Dir(_) | Subtree::Uri(_))) {
        return Some(Policy::UnsupportedNameConstraint);
    }
    let excluded_dns = constraints
        .iter()
        .flat_map(|nc| &nc.excluded)
        .any(|t| matches!(t, Subtree::Dns(_)));
    if excluded_dns && leaf.dns_names.iter().any(|n| n.starts_with("*.")) {
        return Some(Policy::WildcardExcludedSubtree);
    }
    let dns_constraints = subtrees().any(|t| matches!(t, Subtree::Dns(_)));
    let malformed = |n: &String| {
        let n = n.strip_prefix("*.").unwrap_or(n);
        rustls::pki_types::DnsName::try_from(n).is_err()
    };
    if dns_constraints && leaf.dns_names.iter().any(malformed) {
        return Some(Policy::MalformedDnsName);
    }
    None
}

/// The policy a link's signature algorithm, or its issuer's key, falls under.
fn link_policy(sig: &SigAlg, issuer_key: &KeyKind) -> Option<Policy> {
    if sig.hash() == Hash::Sha1 {
        return Some(Policy::Sha1Signature);
    }
    if sig.hash() == Hash::Sha224 {
        return Some(Policy::Sha224Signature);
    }
    if let Some(p) = key_policy(issuer_key) {
        return Some(p);
    }
    match sig {
        SigAlg::Ecdsa(Hash::Sha512) => Some(Policy::EcdsaSha512),
        SigAlg::RsaPss(pss) => {
            let hash_len = match pss.hash {
                Hash::Sha256 => 32,
                Hash::Sha384 => 48,
                Hash::Sha512 => 64,
                _ => return Some(Policy::AlgorithmNotInProvider),
            };
            (pss.salt != hash_len || pss.mask_hash != pss.hash)
                .then_some(Policy::PssSaltNotHashLength)
        }
        SigAlg::Dsa(_) | SigAlg::Ed448 | SigAlg::Unknown(_) | SigAlg::BadPss => {
            Some(Policy::AlgorithmNotInProvider)
        }
        _ => None,
    }
}

/// The policy a key (an issuer's, or the leaf's for the handshake) falls under.
fn key_policy(key: &KeyKind) -> Option<Policy> {
    match key {
        KeyKind::Ec { curve: "P-521" } => Some(Policy::P521),
        KeyKind::Rsa { bits } if !(2048..=8192).contains(bits) => Some(Policy::RsaKeySize),
        KeyKind::Ec { curve } if !matches!(*curve, "P-256" | "P-384") => {
            Some(Policy::AlgorithmNotInProvider)
        }
        KeyKind::Other { .. } => Some(Policy::AlgorithmNotInProvider),
        _ => None,
    }
}

/// Why OpenSSL refuses what webpki accepts: every defect the model found must be one webpki
/// does not check; the first one's policy names the difference.
fn openssl_refuses(s: &Subject<'_>) -> Option<Policy> {
    use crate::cert::{KU_DIGITAL_SIGNATURE, KU_KEY_AGREEMENT, KU_KEY_ENCIPHERMENT};
    if s.defects.is_empty() {
        return None;
    }
    let leaf = s.path.ids.first()?;
    let anchor = s.path.anchored.then(|| s.path.tip());
    let mut first = None;
    for v in s.defects {
        let c = s.pool.cert(v.at);
        let policy = match &v.defect {
            _ if Some(v.at) == anchor && anchor != Some(*leaf) => Policy::AnchorNotChecked,
            Defect::NoCertSign => Policy::KeyUsageIgnored,
            Defect::WrongPurpose if v.at == *leaf => {
                let ku_allows_tls = c.key_usage.is_none_or(|ku| {
                    ku & (KU_DIGITAL_SIGNATURE | KU_KEY_ENCIPHERMENT | KU_KEY_AGREEMENT) != 0
                });
                // The extendedKeyUsage webpki checks too; only the keyUsage is ignored.
                let eku_ok = match (&c.eku, s.role) {
                    (Some(eku), Role::Server) => eku.server_auth,
                    (Some(eku), Role::Client) => eku.client_auth,
                    (None, _) => true,
                };
                if ku_allows_tls || !eku_ok {
                    return None;
                }
                Policy::KeyUsageIgnored
            }
            Defect::NameConstraint { .. } if v.at == *leaf && c.dns_names.is_empty() => {
                Policy::CnFallback
            }
            _ => return None,
        };
        first.get_or_insert(policy);
    }
    first
}
