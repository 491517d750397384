//! The receiver model: what an OpenSSL 3 receiver at security level 2 (the default of Debian
//! 12 and RHEL 9, as Postfix uses it) refuses in a certification path, rule by rule.
//!
//! The path search applies these rules as it goes ([`issuer_defects`] for each issuer it
//! adds), so a path receivers refuse is pruned there and the search backtracks to another
//! candidate; when no acceptable path exists, a second search keeps the refused ones so that
//! the report can say what is wrong ([`path_defects`]). Each rule names where it comes from.
//! It is not `openssl verify -x509_strict`, which is stricter than any MTA: the strict RFC
//! 5280 profile checks (pathLen on a non-CA, a CA without keyUsage, ...) are not applied.

use crate::cert::{Certificate, Flaw, Hash, KeyKind};
use crate::pool::{Id, Pool};

use super::names::{self, NameViolation};

/// Which end of a TLS connection presents the certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Role {
    /// A server receiving mail (Postfix `smtpd_tls_chain_files`): the purpose is serverAuth.
    #[default]
    Server,
    /// A relay's client certificate (Postfix `smtp_tls_chain_files`, Exchange connectors).
    Client,
}

/// What the model needs besides the path: the time and the role judged.
#[derive(Debug, Clone, Copy)]
pub struct Model {
    pub now: i64,
    pub role: Role,
}

/// The smallest RSA key security level 2 accepts: 112 bits of security (OpenSSL's
/// `minbits_table`, crypto/x509/x509_vfy.c; RSA-2048 gives 112).
pub const MIN_RSA_BITS: u32 = 2048;

/// One reason a receiver refuses a path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Defect {
    /// An issuer that is not a CA (RFC 5280 §6.1.4 (k)): an intermediate without
    /// basicConstraints cA, or a trust anchor that fails OpenSSL's `check_ca` ([`acts_as_ca`]).
    NotCa,
    /// An issuer whose keyUsage lacks keyCertSign (RFC 5280 §6.1.4 (n)).
    NoCertSign,
    /// More CAs below an issuer than its pathLenConstraint allows (RFC 5280 §6.1.4 (l)-(m)).
    PathLen {
        limit: u32,
        below: u32,
    },
    /// extendedKeyUsage without serverAuth for the server role, or a leaf keyUsage that does
    /// not allow TLS (OpenSSL `check_purpose_ssl_server`, crypto/x509/v3_purp.c; it checks
    /// every certificate of the path, the trust anchor included).
    WrongPurpose,
    /// A certificate outside the name constraints of the CA `by` (RFC 5280 §6.1.3 (b)).
    NameConstraint {
        by: Id,
        why: NameViolation,
    },
    /// A certificate receivers refuse whatever its chain.
    Flawed(Flaw),
    /// Outside its validity period at `now` (RFC 5280 §6.1.3 (a)(2)); every certificate,
    /// the trust anchor included, as OpenSSL checks it.
    Expired,
    NotYetValid,
    /// A signature with MD2, MD5 or SHA-1 below the trust anchor: security level 1 and up
    /// refuse them (`check_sig_level`, crypto/x509/x509_vfy.c; RFC 9155).
    WeakSignature(Hash),
    /// A key under 112 bits of security on any certificate: RSA under 2048 bits, P-192
    /// (`check_key_level`; OpenSSL: "EE key too small", "CA key too small").
    WeakKey(KeyKind),
}

/// One defect of one certificate of a path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub at: Id,
    pub defect: Defect,
}

/// The defects of the leaf itself: every path from it has them.
pub fn leaf_defects(pool: &Pool, leaf: Id, model: &Model) -> Vec<Violation> {
    let c = pool.cert(leaf);
    let mut out = Vec::new();
    let mut push = |defect| out.push(Violation { at: leaf, defect });
    if let Some(flaw) = &c.flaw {
        push(Defect::Flawed(flaw.clone()));
    }
    if let Some(d) = validity(c, model.now) {
        push(d);
    }
    if !leaf_purpose_ok(c, model.role) {
        push(Defect::WrongPurpose);
    }
    if let Some(d) = weak_key(c) {
        push(d);
    }
    // The leaf's own signature matters unless the leaf is itself trusted.
    if !pool.is_anchor(c) && c.sig_alg.hash().is_weak() {
        push(Defect::WeakSignature(c.sig_alg.hash()));
    }
    out
}

/// The defects `cand` brings as the issuer of `below` (the path so far, leaf first): as a CA
/// (constraints, purpose, key, validity, flaws, its own signature unless it is trusted or
/// self-issued) and as the source of name constraints over every certificate below it.
pub fn issuer_defects(pool: &Pool, below: &[Id], cand: Id, model: &Model) -> Vec<Violation> {
    let c = pool.cert(cand);
    let mut out = Vec::new();
    let mut push = |defect| out.push(Violation { at: cand, defect });
    if let Some(flaw) = &c.flaw {
        push(Defect::Flawed(flaw.clone()));
    } else if c.subject_key.is_empty() {
        push(Defect::Flawed(Flaw::EmptyIssuerName));
    }
    if !acts_as_ca(c, pool.is_anchor(c)) {
        push(Defect::NotCa);
    } else if c.key_cert_sign() == Some(false) {
        push(Defect::NoCertSign);
    }
    if let Some(limit) = c.path_len {
        // CAs between `cand` and the leaf; self-issued ones do not count (§6.1.4 (l)).
        let cas_below = below[1..]
            .iter()
            .filter(|&&id| !pool.cert(id).is_self_issued())
            .count() as u32;
        if cas_below > limit {
            push(Defect::PathLen {
                limit,
                below: cas_below,
            });
        }
    }
    if !ca_purpose_ok(c, model.role) {
        push(Defect::WrongPurpose);
    }
    if let Some(d) = weak_key(c) {
        push(d);
    }
    if let Some(d) = validity(c, model.now) {
        push(d);
    }
    if !pool.is_anchor(c) && !c.is_self_issued() && c.sig_alg.hash().is_weak() {
        push(Defect::WeakSignature(c.sig_alg.hash()));
    }
    if let Some(nc) = c.name_constraints() {
        // RFC 5280 §6.1.3 (b): self-issued intermediates are not checked; the leaf always is.
        for (i, &id) in below.iter().enumerate() {
            let child = pool.cert(id);
            if i > 0 && child.is_self_issued() {
                continue;
            }
            if let Err(why) = names::check(child, nc, i == 0) {
                out.push(Violation {
                    at: id,
                    defect: Defect::NameConstraint { by: cand, why },
                });
                break;
            }
        }
    }
    out
}

/// Every defect of `ids` (leaf first, each certificate issued by the next).
pub fn path_defects(pool: &Pool, ids: &[Id], model: &Model) -> Vec<Violation> {
    let mut out = leaf_defects(pool, ids[0], model);
    for k in 1..ids.len() {
        out.extend(issuer_defects(pool, &ids[..k], ids[k], model));
    }
    out
}

/// Whether a defect of `v` applies when the path's first certificate is a CA certificate judged
/// as the subject of its own path (`inspect intermediate.pem`): the TLS keyUsage a leaf needs
/// (`KU_TLS`) does not; a CA's keyUsage is keyCertSign. Its extendedKeyUsage still must allow
/// the role, as OpenSSL checks it on every CA of a path.
pub fn applies_to_ca_subject(v: &Violation, pool: &Pool, model: &Model) -> bool {
    match v.defect {
        // An issuer's WrongPurpose is its extendedKeyUsage already.
        Defect::WrongPurpose => !ca_purpose_ok(pool.cert(v.at), model.role),
        _ => true,
    }
}

/// An intermediate must say cA in basicConstraints: OpenSSL 3.0 refuses one without the
/// extension ("invalid CA certificate", error 79, with or without `-x509_strict`). A trust
/// anchor is held to OpenSSL's `check_ca` (crypto/x509/v3_purp.c): without basicConstraints, a
/// version 1 self-signed root or a certificate with a keyUsage extension counts as a CA.
fn acts_as_ca(c: &Certificate, anchor: bool) -> bool {
    if c.has_basic_constraints {
        c.is_ca
    } else {
        anchor && (c.key_usage.is_some() || (c.is_self_issued() && c.is_v1))
    }
}

fn validity(c: &Certificate, now: i64) -> Option<Defect> {
    if c.not_after < now {
        Some(Defect::Expired)
    } else if c.not_before > now {
        Some(Defect::NotYetValid)
    } else {
        None
    }
}

fn weak_key(c: &Certificate) -> Option<Defect> {
    match c.key {
        KeyKind::Rsa { bits } if bits < MIN_RSA_BITS => Some(Defect::WeakKey(c.key.clone())),
        KeyKind::Ec { curve: "P-192" } => Some(Defect::WeakKey(c.key.clone())),
        _ => None,
    }
}

/// A certificate's extendedKeyUsage must include serverAuth (or Server Gated Crypto) for the
/// server role: OpenSSL's `xku_reject`, for the leaf and every CA above it alike;
/// anyExtendedKeyUsage alone does not do. For the client role a missing clientAuth is only
/// a warning (public CAs issue serverAuth-only certificates; see `diagnose`), not a defect.
fn ca_purpose_ok(c: &Certificate, role: Role) -> bool {
    match (&c.eku, role) {
        (Some(eku), Role::Server) => eku.server_auth || eku.sgc,
        (None, _) | (_, Role::Client) => true,
    }
}

/// The leaf's extendedKeyUsage as for a CA, and its keyUsage must allow the TLS key exchange:
/// digitalSignature, keyEncipherment or keyAgreement (`KU_TLS`, crypto/x509/v3_purp.c).
fn leaf_purpose_ok(c: &Certificate, role: Role) -> bool {
    use crate::cert::{KU_DIGITAL_SIGNATURE, KU_KEY_AGREEMENT, KU_KEY_ENCIPHERMENT};
    let ku_ok = c
        .key_usage
        .is_none_or(|ku| ku & (KU_DIGITAL_SIGNATURE | KU_KEY_ENCIPHERMENT | KU_KEY_AGREEMENT) != 0);
    ku_ok && ca_purpose_ok(c, role)
}

/// One sentence saying what is wrong, naming the certificates.
pub fn describe(v: &Violation, pool: &Pool) -> String {
    let c = pool.cert(v.at);
    let subject = &c.subject;
    match &v.defect {
        Defect::NotCa => format!(
            "{subject} is not a CA certificate (basicConstraints), yet it issued a certificate \
             of the chain"
        ),
        Defect::NoCertSign => {
            format!("{subject} may not sign certificates (its keyUsage lacks keyCertSign)")
        }
        Defect::PathLen { limit, below } => format!(
            "{subject} allows {limit} intermediate CA(s) below it (pathLenConstraint); this path \
             has {below}"
        ),
        Defect::WrongPurpose => match &c.eku {
            Some(eku) if !(eku.server_auth || eku.sgc) => {
                format!("{subject} is not for TLS servers: its extendedKeyUsage lacks serverAuth")
            }
            _ => format!(
                "{subject} is not for TLS: its keyUsage allows neither digitalSignature nor \
                 keyEncipherment"
            ),
        },
        Defect::NameConstraint { by, why } => format!(
            "{subject} breaks the name constraints of {}: {why}",
            pool.cert(*by).subject
        ),
        Defect::Flawed(flaw) => format!("receivers refuse {subject}: {flaw}"),
        Defect::Expired => format!(
            "{subject} expired on {}",
            crate::cert::format_date(c.not_after)
        ),
        Defect::NotYetValid => format!(
            "{subject} is not valid until {}",
            crate::cert::format_date(c.not_before)
        ),
        Defect::WeakSignature(_) => format!(
            "{subject} is signed with {}, which receivers refuse",
            c.sig_alg
        ),
        Defect::WeakKey(key) => format!(
            "{subject} has an {key} key; receivers require 112 bits of security (RSA-{MIN_RSA_BITS}, \
             P-224 or stronger)"
        ),
    }
}
