//! One leaf against the TLSA records in force: the verdict for the chain its file presents and
//! for the chain `repair` would write, the findings they make (Exchange Online 4.7.323
//! `tlsa-invalid`, 4.7.325 for a DANE-TA name mismatch), whether the root must be served for a
//! DANE-TA record that names it, and whether `repair` must refuse to write.

use serde::Serialize;

use super::judge::{self, Served, SetVerdict, Verdict};
use super::publish::{self, Suggestion};
use super::record::{Matching, Selector, Tlsa, Usage};
use super::{HostFrom, RecordSet};
use crate::cert::Certificate;
use crate::diagnose::{CertRef, Code, Finding, Severity, DANE_NDR, HOST_NDR};

/// What the report shows of DANE for one leaf (JSON `dane`).
#[derive(Debug, Clone, Serialize)]
pub struct View {
    /// The TLSA base domain the DANE-TA name checks used (`null`: none were made).
    pub host: Option<String>,
    pub host_from: HostFrom,
    pub port: u16,
    pub records: Vec<RecordView>,
    /// The verdict for the chain the leaf's file presents.
    pub presented: SetVerdict,
    /// The verdict for the chain `repair` writes (or would write).
    pub written: SetVerdict,
    /// `repair` serves the root because a DANE-TA record names it (RFC 7672 §3.1.2).
    pub serves_root: bool,
    /// The records to publish for the written chain (`tlsa.zone`).
    pub publish: Vec<Suggestion>,
}

#[derive(Debug, Clone, Serialize)]
pub struct RecordView {
    /// `FILE:LINE` or `--tlsa #N`.
    pub origin: String,
    /// `USAGE SELECTOR MATCHING HEX`.
    pub record: String,
    pub presented: Verdict,
    pub written: Verdict,
}

/// The DANE outcome of one leaf.
#[derive(Debug, Clone)]
pub struct Assessment {
    pub view: View,
    pub findings: Vec<Finding>,
    /// `repair` must write nothing: the chain it would write fails the records in force and
    /// `--accept-dane-break` was not given.
    pub blocks_write: bool,
}

/// The chains of one leaf: what its file presents (in file order, leaf first) and chainfix's
/// chosen path (leaf first; `ends_at_root` when its last certificate is a root, not served by
/// default).
pub struct Chains<'a> {
    pub presented: Vec<&'a Certificate>,
    pub path: Vec<&'a Certificate>,
    pub ends_at_root: bool,
}

/// Judges both chains of a leaf against `set` at `now`. `accept_break` is
/// `--accept-dane-break`: failures become warnings and nothing is blocked.
pub fn assess(set: &RecordSet, chains: &Chains<'_>, now: i64, accept_break: bool) -> Assessment {
    let tlsas: Vec<&Tlsa> = set.records.iter().map(|r| &r.tlsa).collect();
    let host = set.host.as_deref();
    let leaf = chains.path[0];

    let unserved: Vec<&Certificate> = chains
        .path
        .iter()
        .filter(|c| !chains.presented.iter().any(|p| p.sha256 == c.sha256))
        .copied()
        .collect();
    let presented = Served {
        certs: chains.presented.clone(),
        unserved,
        host,
        now,
    };
    let (p_verdicts, p_set) = judge::judge(&tlsas, &presented);

    // The written chain: the path without its root, unless a usable DANE-TA record names the
    // root, which then must be served (RFC 7672 §3.1.2). A `2 1 0` record holds the whole key,
    // which is anchor enough without the certificate (OpenSSL accepts it unserved).
    let root = chains
        .ends_at_root
        .then(|| chains.path[chains.path.len() - 1]);
    let root_record = root.and_then(|r| {
        set.records.iter().find(|rec| {
            let t = &rec.tlsa;
            t.unusable().is_none()
                && t.usage == Usage::DaneTa
                && !(t.selector == Selector::Spki && t.matching == Matching::Full)
                && t.matches(r)
        })
    });
    let mut written_certs = chains.path.clone();
    if root.is_some() && root_record.is_none() {
        written_certs.pop();
    }
    let written = Served {
        unserved: chains
            .path
            .iter()
            .filter(|c| !written_certs.iter().any(|w| w.sha256 == c.sha256))
            .copied()
            .collect(),
        certs: written_certs,
        host,
        now,
    };
    let (w_verdicts, w_set) = judge::judge(&tlsas, &written);

    let mut findings = Vec::new();
    let severity = if accept_break {
        Severity::Warning
    } else {
        Severity::Error
    };
    let accepted = if accept_break {
        " Accepted with --accept-dane-break: publish the records of tlsa.zone and wait twice \
         their TTL before deploying (RFC 7671 §8.1), or DANE senders defer your mail."
    } else {
        ""
    };
    if p_set == SetVerdict::Failed {
        let (code, what) = failure(&p_verdicts);
        let fix = match w_set {
            SetVerdict::Authenticated => " The chain chainfix writes matches: repair fixes this.",
            _ => {
                " Nor does the chain chainfix would write; publish the records listed under \
                 DANE (repair writes them to tlsa.zone) beside the old ones, then wait twice \
                 the TTL (RFC 7671 §8.1)."
            }
        };
        let mut f = finding(
            code,
            severity,
            leaf,
            format!(
                "The served chain does not match the TLSA records in force: {what}.{fix}{accepted}"
            ),
        );
        f.repairable = w_set == SetVerdict::Authenticated;
        findings.push(f);
    } else if w_set == SetVerdict::Failed {
        let (code, what) = failure(&w_verdicts);
        findings.push(finding(
            code,
            severity,
            leaf,
            format!(
                "The served chain matches the TLSA records in force, but the chain chainfix \
                 would write does not: {what}. repair writes nothing unless \
                 --accept-dane-break is given.{accepted}"
            ),
        ));
    }
    unusable(set, &p_verdicts, p_set, leaf, &mut findings);
    let fragile: Vec<String> = set
        .records
        .iter()
        .filter(|r| r.tlsa.unusable().is_none() && r.tlsa.selector == Selector::Cert)
        .map(|r| format!("{} ({})", r.origin, short(&r.tlsa)))
        .collect();
    if !fragile.is_empty() {
        findings.push(finding(
            Code::DaneFragileRecord,
            Severity::Warning,
            leaf,
            format!(
                "{}: selector 0 matches the whole certificate, which changes with every \
                 re-issue (a renewal, a cross-signed copy) even when the key stays; publish \
                 selector 1 (x 1 1) records instead (RFC 7671 §5.1, §5.2).",
                fragile.join(", ")
            ),
        ));
    }
    if set.records.len() > publish::MAX_RRSET {
        findings.push(finding(
            Code::DaneRrsetTooLarge,
            Severity::Warning,
            leaf,
            format!(
                "{} TLSA records for one host: some senders process no more than about {} \
                 (Microsoft's, by V. Dukhovni's DANE survey); keep the RRset small.",
                set.records.len(),
                publish::MAX_RRSET
            ),
        ));
    }
    if let (Some(root), Some(rec)) = (root, root_record) {
        findings.push(finding(
            Code::DaneRootServed,
            Severity::Info,
            root,
            format!(
                "The root {} is served (fullchain.pem, chain.pem): the DANE-TA record {} ({}) \
                 names it, and a DANE-TA trust anchor must be in the chain the server sends \
                 (RFC 7672 §3.1.2).",
                root.subject,
                rec.origin,
                short(&rec.tlsa)
            ),
        ));
    }

    let issuer = written
        .certs
        .get(1)
        .copied()
        .filter(|c| c.sha256 != leaf.sha256);
    let view = View {
        host: set.host.clone(),
        host_from: set.host_from,
        port: set.port,
        records: set
            .records
            .iter()
            .zip(p_verdicts.into_iter().zip(w_verdicts))
            .map(|(r, (presented, written))| RecordView {
                origin: r.origin.clone(),
                record: r.tlsa.rdata(),
                presented,
                written,
            })
            .collect(),
        presented: p_set,
        written: w_set,
        serves_root: root_record.is_some(),
        publish: publish::recommend(leaf, issuer),
    };
    Assessment {
        view,
        findings,
        blocks_write: w_set == SetVerdict::Failed && !accept_break,
    }
}

/// The code and description of a failed set: the most specific verdict wins.
fn failure(verdicts: &[Verdict]) -> (Code, String) {
    if verdicts.contains(&Verdict::NameMismatch) {
        return (
            Code::DaneNameMismatch,
            "a DANE-TA record matches a served CA, but the certificate does not carry the MX \
             host name (RFC 7672 §3.2.2)"
                .into(),
        );
    }
    if let Some(Verdict::AnchorNotServed { subject }) = verdicts
        .iter()
        .find(|v| matches!(v, Verdict::AnchorNotServed { .. }))
    {
        return (
            Code::DaneTaNotServed,
            format!(
                "a DANE-TA record names {}, which the server does not send; a DANE-TA trust \
                 anchor must be in the served chain (RFC 7672 §3.1.2)",
                subject
            ),
        );
    }
    if let Some(Verdict::Expired { subject }) = verdicts
        .iter()
        .find(|v| matches!(v, Verdict::Expired { .. }))
    {
        return (
            Code::DaneMismatch,
            format!(
                "a DANE-TA record matches a served CA, but {} is outside its validity period",
                subject
            ),
        );
    }
    (
        Code::DaneMismatch,
        "no usable record matches the server's certificate or key (3 x x) or a CA it sends \
         (2 x x)"
            .into(),
    )
}

/// The unusable records, and what a set of only those means.
fn unusable(
    set: &RecordSet,
    verdicts: &[Verdict],
    p_set: SetVerdict,
    leaf: &Certificate,
    out: &mut Vec<Finding>,
) {
    let listed: Vec<String> = set
        .records
        .iter()
        .zip(verdicts)
        .filter_map(|(r, v)| match v {
            Verdict::Unusable { why } => Some(format!("{} ({}): {why}", r.origin, short(&r.tlsa))),
            _ => None,
        })
        .collect();
    if listed.is_empty() {
        return;
    }
    let all = if p_set == SetVerdict::NoUsableRecords {
        " No record is usable: DANE senders still insist on TLS but do not authenticate the \
         server (Postfix at level \"dane\" falls back to \"encrypt\"; at \"dane-only\" it \
         makes no connection at all), so DANE protects nothing. Publish 3 1 1 and 2 1 1 \
         records (tlsa.zone)."
    } else {
        " Senders ignore them."
    };
    out.push(finding(
        Code::DaneUnusableRecord,
        Severity::Warning,
        leaf,
        format!("{}.{all}", listed.join("; ")),
    ));
}

/// `3 1 1 0123abcd…`: a record shortened for a message.
fn short(t: &Tlsa) -> String {
    let rdata = t.rdata();
    match rdata.get(..22) {
        Some(head) if rdata.len() > 24 => format!("{head}…"),
        _ => rdata,
    }
}

fn finding(code: Code, severity: Severity, cert: &Certificate, message: String) -> Finding {
    let receiver_view = match code {
        Code::DaneMismatch | Code::DaneTaNotServed => Some(DANE_NDR.to_string()),
        Code::DaneNameMismatch => Some(HOST_NDR.to_string()),
        _ => None,
    };
    Finding {
        code,
        severity,
        cert: Some(CertRef::of(cert)),
        message,
        receiver_view,
        url: None,
        detail: None,
        repairable: false,
    }
}
