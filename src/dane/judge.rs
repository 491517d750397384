//! Matches one served chain against a TLSA RRset the way an SMTP sender does (RFC 7672 §3,
//! as OpenSSL's DANE support and Postfix apply it), and gives a verdict per record and one
//! for the set.
//!
//! - DANE-EE (3 x x) matches the leaf only; the sender checks neither its names nor its dates
//!   (RFC 7672 §3.1.1).
//! - DANE-TA (2 x x) matches a CA certificate the server sends (RFC 7672 §3.1.2: the trust
//!   anchor must be in the served chain, except a full public key, `2 1 0`, which needs only
//!   the certificate it signed to be served). The served certificates must then chain from the
//!   leaf up to it (signatures verified), every certificate on that path, the anchor too, must
//!   be within its dates (OpenSSL checks the anchor's too), and the leaf must carry the TLSA
//!   base domain among its names (RFC 7672 §3.2.2, RFC 6125 rules).
//! - Usages 0 and 1, and unknown parameters, are unusable (RFC 7672 §3.1.3, §2.2).
//!
//! The RRset authenticates the server when any usable record matches (RFC 6698 §2.1).

use serde::Serialize;

use super::record::{Matching, Selector, Tlsa, Unusable, Usage};
use crate::cert::Certificate;
use crate::chain::{check_signature, SigCheck};
use crate::hostname;

/// The chain a sender sees, and what it is judged against.
pub struct Served<'a> {
    /// What the server sends, leaf first, in the order sent.
    pub certs: Vec<&'a Certificate>,
    /// Certificates of chainfix's chosen path that are not sent (usually the root), lowest
    /// first: a DANE-TA record naming one is "anchor not served".
    pub unserved: Vec<&'a Certificate>,
    /// The TLSA base domain, for DANE-TA name checks.
    pub host: Option<&'a str>,
    pub now: i64,
}

/// One record's verdict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "verdict")]
pub enum Verdict {
    /// The record authenticates the server. `depth` is the matched certificate's position on
    /// the verified path (0: the leaf). `name_checked` is false for DANE-TA without a host.
    Match { depth: usize, name_checked: bool },
    /// No served certificate matches.
    Mismatch,
    /// Never considered by a sender.
    Unusable { why: &'static str },
    /// DANE-TA: matches a certificate of the chain that the server does not send.
    AnchorNotServed { subject: String },
    /// DANE-TA: the anchor is served, but the leaf does not carry the host name.
    NameMismatch,
    /// DANE-TA: the anchor is served, but a certificate from the leaf to it is out of date.
    Expired { subject: String },
}

impl Verdict {
    pub fn is_match(&self) -> bool {
        matches!(self, Verdict::Match { .. })
    }
}

/// The RRset's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SetVerdict {
    /// A usable record matches: senders deliver.
    Authenticated,
    /// Usable records, none matching: DANE senders defer the mail (Exchange Online 4.7.323).
    Failed,
    /// Only unusable records: senders use TLS without authenticating the server (postconf(5),
    /// smtp_tls_security_level = dane: "If TLSA records are found, but none are usable, the
    /// effective security level is encrypt"; dane-only makes no connection); DANE protects
    /// nothing.
    NoUsableRecords,
}

/// The verdict of each record (in order) and of the set.
pub fn judge(records: &[&Tlsa], served: &Served<'_>) -> (Vec<Verdict>, SetVerdict) {
    let path = verified_path(&served.certs);
    let verdicts: Vec<Verdict> = records.iter().map(|t| record(t, served, &path)).collect();
    let set = if verdicts.iter().any(Verdict::is_match) {
        SetVerdict::Authenticated
    } else if verdicts
        .iter()
        .all(|v| matches!(v, Verdict::Unusable { .. }))
    {
        SetVerdict::NoUsableRecords
    } else {
        SetVerdict::Failed
    };
    (verdicts, set)
}

fn record(t: &Tlsa, served: &Served<'_>, path: &[&Certificate]) -> Verdict {
    if let Some(why) = t.unusable() {
        return Verdict::Unusable { why: why.why() };
    }
    let Some(leaf) = served.certs.first() else {
        return Verdict::Mismatch;
    };
    match t.usage {
        Usage::DaneEe => {
            if t.matches(leaf) {
                Verdict::Match {
                    depth: 0,
                    name_checked: false,
                }
            } else {
                Verdict::Mismatch
            }
        }
        Usage::DaneTa => dane_ta(t, served, path),
        // Unusable usages returned above.
        Usage::PkixTa | Usage::PkixEe | Usage::Other(_) => Verdict::Unusable {
            why: Unusable::PkixUsage.why(),
        },
    }
}

fn dane_ta(t: &Tlsa, served: &Served<'_>, path: &[&Certificate]) -> Verdict {
    // The anchor: a CA certificate above the leaf on the path the served certificates make.
    let mut anchor = path
        .iter()
        .enumerate()
        .skip(1)
        .find(|(_, c)| t.matches(c))
        .map(|(depth, _)| depth);
    // `2 1 0`: the full key is the anchor; it need only have signed the top of that path.
    if anchor.is_none() && t.selector == Selector::Spki && t.matching == Matching::Full {
        if let Some(top) = path.last() {
            if served
                .unserved
                .iter()
                .any(|c| t.matches(c) && matches!(check_signature(top, c), SigCheck::Valid))
            {
                anchor = Some(path.len());
            }
        }
    }
    let Some(depth) = anchor else {
        return match served.unserved.iter().find(|c| t.matches(c)) {
            Some(c) => Verdict::AnchorNotServed {
                subject: c.subject.clone(),
            },
            None => Verdict::Mismatch,
        };
    };
    if let Some(old) = path
        .iter()
        .take(depth + 1)
        .find(|c| !c.valid_at(served.now))
    {
        return Verdict::Expired {
            subject: old.subject.clone(),
        };
    }
    match served.host {
        Some(host) if !hostname::matches(path[0], host) => Verdict::NameMismatch,
        Some(_) => Verdict::Match {
            depth,
            name_checked: true,
        },
        None => Verdict::Match {
            depth,
            name_checked: false,
        },
    }
}

/// The path the served certificates make from the leaf upwards: each next one a served
/// certificate whose key verifies the signature of the one below (RFC 5280 §6.1), the first
/// such in the order sent. At most one step per served certificate.
fn verified_path<'a>(certs: &[&'a Certificate]) -> Vec<&'a Certificate> {
    let Some(&leaf) = certs.first() else {
        return Vec::new();
    };
    let mut path = vec![leaf];
    let mut used = vec![false; certs.len()];
    used[0] = true;
    for _ in 1..certs.len() {
        let Some(&below) = path.last() else { break };
        if below.is_self_issued() && path.len() > 1 {
            break;
        }
        let next = certs.iter().enumerate().find(|&(i, c)| {
            !used[i]
                && c.subject_key == *below.issuer_key
                && matches!(check_signature(below, c), SigCheck::Valid)
        });
        match next {
            Some((i, c)) => {
                used[i] = true;
                path.push(c);
            }
            None => break,
        }
    }
    path
}
