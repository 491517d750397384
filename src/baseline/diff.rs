//! Monitoring diff: the recorded baseline against what this run saw, as findings. Written for
//! an admin watching a partner's domain: routine renewals are information, what makes
//! senders defer or bounce mail is an error, and each message names the old and the new value
//! (fingerprints as 16 hex digits).
//!
//! The rules, per MX host present in both snapshots and reached this run:
//! - A new leaf with the same key is `baseline-renewed`; with a new key `baseline-key-changed`
//!   (info): a receiver checks the chain, not its history. A new issuing CA of the same name,
//!   or another of the intermediates a CA rotates between at random (Let's Encrypt R10-R14,
//!   E5-E9: the table in `dane/publish.rs`), under the same root, is part of the routine.
//! - A new key while a recorded DANE-EE record (`3 1 1`, `3 1 2`, `3 1 0`) pinned the old one,
//!   and no DANE match now, is `baseline-pinned-key-changed` (error): DANE-EE matches the
//!   server's key alone (RFC 7671 §5.1, RFC 7672 §3.1.1), so senders defer mail (4.7.323)
//!   until the records are updated. Likewise a `3 0 x` record and a new certificate
//!   (`baseline-pinned-certificate-changed`), and a `2 x x` record of the old issuing CA and a
//!   new one (`baseline-pinned-issuer-changed`, RFC 7672 §3.1.2).
//! - Another root is `baseline-root-changed` (error): senders without it cannot verify the
//!   chain. Another issuing CA by name, outside a known rotation, is `baseline-issuer-changed`
//!   (warning): partners that pin the issuer break.
//! - A DANE match lost to a mismatch or a bogus answer, and an MTA-STS verdict that now fails
//!   in `enforce` mode, are errors (`baseline-dane-lost`, `baseline-sts-lost`); DANE or
//!   MTA-STS protection that is merely gone, or a failure in `testing` mode, is a warning.
//! - An earlier expiry of the leaf is `baseline-expiry-earlier` (warning): an older or
//!   shorter-lived certificate was deployed.
//! - A new MX host is `baseline-mx-added` (warning: mail goes to a host never checked against
//!   the baseline); one gone is `baseline-mx-removed` (info).
//! - Nothing changed: one `baseline-unchanged` (info).
//!
//! An MX host the probe could not reach is not compared (the probe's findings say why).

use crate::dane::publish::RANDOM_ISSUERS;
use crate::diagnose::{
    baseline_change, CertRef, Code, Finding, Severity, DANE_NDR, DNSSEC_NDR, MTA_STS_CERT_NDR,
    MTA_STS_MX_NDR,
};

use super::snapshot::{
    CaState, DaneState, DaneVerdict, DomainState, Fingerprint, LeafState, MxState, Snapshot,
    StsVerdict, TlsState,
};

/// What Exchange Online says when an MX host fails the domain's MTA-STS policy in `enforce`
/// mode: which of the two depends on why (not listed, or the certificate), which the recorded
/// verdict does not keep.
fn sts_ndr(domain: &str) -> String {
    format!(
        "{} (host not in the policy), or {}",
        MTA_STS_MX_NDR.replace("<domain>", domain),
        MTA_STS_CERT_NDR
    )
}

/// One change, and the domain and MX host it is about (`mx` is `None` for the domain as a
/// whole), so that the caller can attach it to the result of that MX host.
#[derive(Debug, Clone)]
pub struct Change {
    pub domain: String,
    pub mx: Option<String>,
    pub finding: Finding,
}

/// Every change between `old` (the file) and `new` (this run), for the domains of `new`.
/// Domains recorded but not probed this run are not compared. Ordered by domain, then MX
/// host (the domain-wide change first), then severity, most severe first.
pub fn diff(old: &Snapshot, new: &Snapshot) -> Vec<Change> {
    let mut out = Vec::new();
    for (domain, now) in &new.domains {
        match old.domains.get(domain) {
            Some(was) => diff_domain(domain, was, now, &mut out),
            None => {
                let hosts: Vec<&str> = now.mx.keys().map(String::as_str).collect();
                out.push(change(
                    domain,
                    None,
                    Code::BaselineNew,
                    Severity::Info,
                    None,
                    format!(
                        "No baseline recorded for {domain} yet; this run saw {} MX host(s){}, \
                         recorded as the reference for later runs.",
                        hosts.len(),
                        if hosts.is_empty() {
                            String::new()
                        } else {
                            format!(" ({})", hosts.join(", "))
                        }
                    ),
                ))
            }
        }
    }
    out.sort_by(|a, b| {
        (&a.domain, &a.mx, a.finding.severity).cmp(&(&b.domain, &b.mx, b.finding.severity))
    });
    out
}

fn diff_domain(domain: &str, was: &DomainState, now: &DomainState, out: &mut Vec<Change>) {
    for (host, old) in &was.mx {
        if !now.mx.contains_key(host) {
            out.push(change(
                domain,
                Some(host),
                Code::BaselineMxRemoved,
                Severity::Info,
                old.tls.as_ref().map(leaf_ref),
                format!(
                    "{host} is no longer an MX host of {domain}; it served {}.",
                    old.tls
                        .as_ref()
                        .map_or_else(|| "no certificate".into(), |t| t.leaf.describe())
                ),
            ));
        }
    }
    for (host, new) in &now.mx {
        let Some(old) = was.mx.get(host) else {
            out.push(change(
                domain,
                Some(host),
                Code::BaselineMxAdded,
                Severity::Warning,
                new.tls.as_ref().map(leaf_ref),
                format!(
                    "{host} is a new MX host of {domain} (not in the baseline); it serves {}. \
                     Mail now goes to a host never checked against the baseline: check its \
                     findings, then update the baseline.",
                    new.tls
                        .as_ref()
                        .map_or_else(|| "no certificate".into(), |t| t.leaf.describe())
                ),
            ));
            continue;
        };
        diff_mx(&Ctx { domain, host }, old, new, out);
    }
}

struct Ctx<'a> {
    domain: &'a str,
    host: &'a str,
}

impl Ctx<'_> {
    fn push(
        &self,
        out: &mut Vec<Change>,
        code: Code,
        severity: Severity,
        cert: Option<CertRef>,
        message: String,
    ) {
        out.push(change(
            self.domain,
            Some(self.host),
            code,
            severity,
            cert,
            message,
        ));
    }

    /// [`Ctx::push`] with what receivers report.
    fn push_viewed(
        &self,
        out: &mut Vec<Change>,
        code: Code,
        severity: Severity,
        cert: Option<CertRef>,
        message: String,
        view: &str,
    ) {
        out.push(Change {
            domain: self.domain.to_string(),
            mx: Some(self.host.to_string()),
            finding: baseline_change(code, severity, cert, message, Some(view)),
        });
    }
}

fn diff_mx(ctx: &Ctx<'_>, was: &MxState, now: &MxState, out: &mut Vec<Change>) {
    let Some(new_tls) = &now.tls else {
        // Not reached this run: nothing to compare (the probe reports why).
        return;
    };
    let start = out.len();
    let pin_broken = match &was.tls {
        Some(old_tls) => certificates(ctx, was, now, old_tls, new_tls, out),
        None => {
            ctx.push(
                out,
                Code::BaselineNew,
                Severity::Info,
                Some(leaf_ref(new_tls)),
                format!(
                    "{} served no certificate when the baseline was recorded; it now serves {}.",
                    ctx.host,
                    new_tls.leaf.describe()
                ),
            );
            false
        }
    };
    dane(ctx, was, now, pin_broken, Some(leaf_ref(new_tls)), out);
    mta_sts(ctx, was.mta_sts, now.mta_sts, Some(leaf_ref(new_tls)), out);
    if out.len() == start {
        ctx.push(
            out,
            Code::BaselineUnchanged,
            Severity::Info,
            Some(leaf_ref(new_tls)),
            format!(
                "{} matches the baseline: {}, issued by {}.",
                ctx.host,
                new_tls.leaf.describe(),
                new_tls.issuer.subject
            ),
        );
    }
}

/// The certificate rules; returns whether a DANE pin was broken (which then explains a DANE
/// mismatch on its own).
fn certificates(
    ctx: &Ctx<'_>,
    was: &MxState,
    now: &MxState,
    old: &TlsState,
    new: &TlsState,
    out: &mut Vec<Change>,
) -> bool {
    let cert = || Some(leaf_ref(new));
    let key_changed = old.leaf.spki_sha256 != new.leaf.spki_sha256;
    let leaf_changed = old.leaf.sha256 != new.leaf.sha256 || key_changed;
    let issuer = issuer_change(&old.issuer, &new.issuer);
    let root_changed = old.root.as_ref().map(|r| r.sha256) != new.root.as_ref().map(|r| r.sha256);

    // A pin in the recorded records counts when DANE applied then (or could not be judged),
    // and breaks when this run shows no match: a match now means the records were updated.
    let pinned = matches!(was.dane.verdict, DaneVerdict::Match | DaneVerdict::Unknown);
    let unmatched = matches!(
        now.dane.verdict,
        DaneVerdict::Mismatch | DaneVerdict::Unknown
    );
    let mut pin_broken = false;
    if pinned && unmatched {
        let records = |pred: fn(&super::snapshot::TlsaSeen) -> bool| -> Vec<String> {
            was.dane
                .records
                .iter()
                .filter(|r| pred(r))
                .map(|r| r.short())
                .collect()
        };
        let key_pins = records(|r| r.pins_leaf_key());
        let cert_pins = records(|r| r.pins_leaf_certificate());
        let issuer_pins = records(|r| r.pins == super::snapshot::Pin::Issuer);
        let seen = now_dane(now.dane.verdict);
        if key_changed && !key_pins.is_empty() {
            pin_broken = true;
            ctx.push_viewed(
                out,
                Code::BaselinePinnedKeyChanged,
                Severity::Error,
                cert(),
                format!(
                    "{} has a new key {} (was {}), but the baseline's DANE-EE record(s) {} pin \
                     the old key, and {seen}. DANE-EE matches the server's key alone (RFC 7671 \
                     §5.1, RFC 7672 §3.1.1): until the TLSA records name the new key, DANE \
                     senders defer mail. Publish 3 1 1 {} (the new key).",
                    ctx.host,
                    new.leaf.spki_sha256.short(),
                    old.leaf.spki_sha256.short(),
                    key_pins.join(", "),
                    new.leaf.spki_sha256.hex()
                ),
                DANE_NDR,
            );
        } else if leaf_changed && !cert_pins.is_empty() {
            pin_broken = true;
            ctx.push_viewed(
                out,
                Code::BaselinePinnedCertificateChanged,
                Severity::Error,
                cert(),
                format!(
                    "{} serves a new certificate {}, but the baseline's DANE-EE record(s) {} \
                     pin the old certificate {} (selector 0: the whole certificate, which \
                     changes at every renewal, RFC 7671 §5.1), and {seen}. Until the TLSA \
                     records name the new certificate, DANE senders defer mail; prefer 3 1 1.",
                    ctx.host,
                    new.leaf.describe(),
                    cert_pins.join(", "),
                    old.leaf.describe()
                ),
                DANE_NDR,
            );
        }
        if issuer.changed && !issuer_pins.is_empty() {
            pin_broken = true;
            ctx.push_viewed(
                out,
                Code::BaselinePinnedIssuerChanged,
                Severity::Error,
                cert(),
                format!(
                    "{} was issued by {}, but the baseline's DANE-TA record(s) {} pin the old \
                     issuing CA {}, and {seen}. A DANE-TA anchor must be in the chain served \
                     (RFC 7672 §3.1.2): until the TLSA records name the new CA, DANE senders \
                     defer mail.{}",
                    ctx.host,
                    new.issuer.describe(),
                    issuer_pins.join(", "),
                    old.issuer.describe(),
                    issuer
                        .rotation
                        .map(|ca| format!(
                            " {ca} picks its issuing intermediate at random: publish a 2 1 1 \
                             record for each of them (chainfix repair writes them to \
                             tlsa.zone)."
                        ))
                        .unwrap_or_default()
                ),
                DANE_NDR,
            );
        }
    }

    match (&old.root, &new.root) {
        (Some(a), Some(b)) if root_changed => {
            ctx.push_viewed(
                out,
                Code::BaselineRootChanged,
                Severity::Error,
                cert(),
                format!(
                    "{} now chains to the root {}, was {}{}. Senders whose trust store lacks \
                     the new root cannot verify the chain.",
                    ctx.host,
                    b.describe(),
                    a.describe(),
                    issued_by(&issuer, old, new)
                ),
                crate::diagnose::UNTRUSTED_ROOT_NDR,
            );
        }
        (Some(a), None) => {
            ctx.push_viewed(
                out,
                Code::BaselineRootChanged,
                Severity::Error,
                cert(),
                format!(
                    "{} no longer chains to a trusted root (was {}); the chain now stops at \
                     {}.",
                    ctx.host,
                    a.describe(),
                    new.issuer.describe()
                ),
                crate::diagnose::UNTRUSTED_ROOT_NDR,
            );
        }
        (None, Some(b)) => {
            ctx.push(
                out,
                Code::BaselineRootChanged,
                Severity::Info,
                cert(),
                format!(
                    "{} now chains to the trusted root {} (the baseline reached none).",
                    ctx.host,
                    b.describe()
                ),
            );
        }
        _ => {}
    }

    if issuer.changed && !issuer.routine && !root_changed && !pin_broken {
        ctx.push(
            out,
            Code::BaselineIssuerChanged,
            Severity::Warning,
            cert(),
            format!(
                "{} is now issued by {} (was {}), under the same root. Mail flows when the \
                 chain is complete, but partners that pin the issuer (DANE-TA 2 x x records, \
                 certificate names pinned with their issuer such as Exchange's \
                 <I>issuer<S>subject) break.",
                ctx.host,
                new.issuer.describe(),
                old.issuer.describe()
            ),
        );
    }

    if leaf_changed && !pin_broken {
        let (code, what) = if key_changed {
            (
                Code::BaselineKeyChanged,
                format!(
                    "a new certificate with a new key {} (was {})",
                    new.leaf.spki_sha256.short(),
                    old.leaf.spki_sha256.short()
                ),
            )
        } else {
            (
                Code::BaselineRenewed,
                format!(
                    "a new certificate with the same key {}",
                    new.leaf.spki_sha256.short()
                ),
            )
        };
        let dane_note = if now.dane.verdict == DaneVerdict::Match {
            " The TLSA records match it."
        } else {
            ""
        };
        ctx.push(
            out,
            code,
            Severity::Info,
            cert(),
            format!(
                "{} serves {what}: {}, was {}{}.{dane_note}",
                ctx.host,
                new.leaf.describe(),
                old.leaf.describe(),
                issued_by(&issuer, old, new)
            ),
        );
    } else if !leaf_changed && old.served != new.served {
        let list = |f: &[Fingerprint]| -> String {
            f.iter()
                .map(Fingerprint::short)
                .collect::<Vec<_>>()
                .join(", ")
        };
        ctx.push(
            out,
            Code::BaselineChainChanged,
            Severity::Info,
            cert(),
            format!(
                "{} serves the same leaf with another chain: {} certificate(s) [{}] (was {} \
                 [{}]).",
                ctx.host,
                new.served.len(),
                list(&new.served),
                old.served.len(),
                list(&old.served)
            ),
        );
    }

    if leaf_changed && new.leaf.not_after < old.leaf.not_after {
        ctx.push(
            out,
            Code::BaselineExpiryEarlier,
            Severity::Warning,
            cert(),
            format!(
                "{} now serves a certificate that expires earlier than the recorded one: {} \
                 (was {}). An older or shorter-lived certificate was deployed (a restored \
                 backup, another node of a cluster?).",
                ctx.host,
                new.leaf.describe(),
                old.leaf.describe()
            ),
        );
    }
    pin_broken
}

/// How the issuing CA changed.
struct IssuerChange {
    changed: bool,
    /// Routine: the same name (a new intermediate of the same CA), or two intermediates of a
    /// CA that picks one at random at each renewal.
    routine: bool,
    /// The CA of such a rotation, when both issuers are in its table.
    rotation: Option<&'static str>,
}

/// Issuers compare by name, and by key when both keys are known (an issuer not found has no
/// key: finding it later is no change).
fn issuer_change(old: &CaState, new: &CaState) -> IssuerChange {
    let renamed = old.subject != new.subject;
    let rekeyed = matches!((old.spki_sha256, new.spki_sha256), (Some(a), Some(b)) if a != b);
    let rotation = rotation_ca(old).filter(|ca| rotation_ca(new) == Some(ca));
    IssuerChange {
        changed: renamed || rekeyed,
        routine: !renamed || rotation.is_some(),
        rotation,
    }
}

/// The CA whose rotating intermediates include `ca` (Let's Encrypt's R10-R14, E5-E9).
fn rotation_ca(ca: &CaState) -> Option<&'static str> {
    let key = ca.spki_sha256?.hex();
    RANDOM_ISSUERS
        .iter()
        .find(|i| i.spki_sha256 == key)
        .map(|i| i.ca)
}

/// `; issued by X` or `; issued by X, was Y (why that is routine)`.
fn issued_by(issuer: &IssuerChange, old: &TlsState, new: &TlsState) -> String {
    if !issuer.changed {
        return format!("; issued by {}", new.issuer.subject);
    }
    let why = match issuer.rotation {
        Some(ca) => format!(" ({ca} rotates its issuing intermediates at random: routine)"),
        None if issuer.routine => " (a new intermediate of the same name: routine)".into(),
        None => String::new(),
    };
    format!(
        "; issued by {}, was {}{why}",
        new.issuer.describe(),
        old.issuer.describe()
    )
}

/// The DANE verdict of this run, for the pin messages.
fn now_dane(v: DaneVerdict) -> &'static str {
    match v {
        DaneVerdict::Mismatch => "the TLSA records seen now match nothing served",
        _ => "this run could not check the TLSA records (DNSSEC unknown)",
    }
}

fn dane(
    ctx: &Ctx<'_>,
    was: &MxState,
    now: &MxState,
    pin_broken: bool,
    cert: Option<CertRef>,
    out: &mut Vec<Change>,
) {
    let (a, b) = (was.dane.verdict, now.dane.verdict);
    let records = |s: &super::snapshot::DaneState| -> String {
        if s.records.is_empty() {
            return "none".into();
        }
        let r: Vec<String> = s.records.iter().map(|r| r.short()).collect();
        r.join(", ")
    };
    let what = if a == b {
        format!(
            "The TLSA records of {} changed (DANE verdict still: {}): now {}; recorded: {}.",
            ctx.host,
            b.describe(),
            records(&now.dane),
            records(&was.dane)
        )
    } else {
        format!(
            "DANE for {}: now {}, was {}; TLSA records now: {}; recorded: {}.",
            ctx.host,
            b.describe(),
            a.describe(),
            records(&now.dane),
            records(&was.dane)
        )
    };
    match (a, b) {
        (DaneVerdict::Match, DaneVerdict::Mismatch | DaneVerdict::Unknown) if pin_broken => {}
        (DaneVerdict::Match, DaneVerdict::Mismatch | DaneVerdict::Bogus) => {
            ctx.push_viewed(
                out,
                Code::BaselineDaneLost,
                Severity::Error,
                cert,
                format!("{what} DANE senders defer mail to this host."),
                if b == DaneVerdict::Bogus {
                    DNSSEC_NDR
                } else {
                    DANE_NDR
                },
            );
        }
        (
            DaneVerdict::Match,
            DaneVerdict::NotApplicable | DaneVerdict::Insecure | DaneVerdict::NoUsableRecords,
        ) => {
            ctx.push(
                out,
                Code::BaselineDaneLost,
                Severity::Warning,
                cert,
                format!(
                    "{what} Mail still flows, but DANE senders no longer authenticate the \
                     server (RFC 7672 §2.2)."
                ),
            );
        }
        _ if a != b || !same_records(&was.dane, &now.dane) => {
            ctx.push(out, Code::BaselineDaneChanged, Severity::Info, cert, what);
        }
        _ => {}
    }
}

fn mta_sts(
    ctx: &Ctx<'_>,
    a: StsVerdict,
    b: StsVerdict,
    cert: Option<CertRef>,
    out: &mut Vec<Change>,
) {
    if a == b {
        return;
    }
    let what = format!(
        "MTA-STS for {}: now {}, was {}.",
        ctx.host,
        b.describe(),
        a.describe()
    );
    match (a, b) {
        (_, StsVerdict::EnforceFailed) => {
            ctx.push_viewed(
                out,
                Code::BaselineStsLost,
                Severity::Error,
                cert,
                format!("{what} Senders that apply MTA-STS do not deliver (RFC 8461 §5)."),
                &sts_ndr(ctx.domain),
            );
        }
        (StsVerdict::Valid, StsVerdict::TestingFailed) => {
            ctx.push(
                out,
                Code::BaselineStsLost,
                Severity::Warning,
                cert,
                format!(
                    "{what} In testing mode senders still deliver and report the failure \
                     (RFC 8461 §5); in enforce mode they would not."
                ),
            );
        }
        (StsVerdict::Valid, StsVerdict::None) => {
            ctx.push(
                out,
                Code::BaselineStsLost,
                Severity::Warning,
                cert,
                format!(
                    "{what} Mail still flows, but MTA-STS no longer protects it (senders keep a \
                     cached policy until its max_age, RFC 8461 §3.2; §8.3 says to publish mode none first)."
                ),
            );
        }
        _ => {
            ctx.push(out, Code::BaselineStsChanged, Severity::Info, cert, what);
        }
    }
}

/// The same TLSA RRset (what each record pins follows the chain, not the records).
fn same_records(a: &DaneState, b: &DaneState) -> bool {
    a.records.len() == b.records.len()
        && a.records
            .iter()
            .zip(&b.records)
            .all(|(x, y)| x.tlsa == y.tlsa)
}

fn leaf_ref(t: &TlsState) -> CertRef {
    leaf_cert_ref(&t.leaf)
}

fn leaf_cert_ref(l: &LeafState) -> CertRef {
    CertRef {
        subject: l.subject.clone(),
        sha256: l.sha256.hex(),
    }
}

fn change(
    domain: &str,
    mx: Option<&str>,
    code: Code,
    severity: Severity,
    cert: Option<CertRef>,
    message: String,
) -> Change {
    Change {
        domain: domain.to_string(),
        mx: mx.map(str::to_string),
        finding: baseline_change(code, severity, cert, message, None),
    }
}

#[cfg(test)]
mod tests {
    //! Every rule on real certificates (rcgen): what an admin monitoring a partner sees for
    //! routine renewals (information only) and for what makes senders defer mail (errors).

    use super::*;
    use crate::baseline::snapshot::{CaState, DaneState, Pin, RootState, TlsaSeen};
    use crate::baseline::test_pki::{intermediate, key, leaf, mx, root, snapshot, tls};
    use crate::cert::Certificate;
    use crate::dane::record::{Matching, Selector, Usage};
    use crate::dane::Tlsa;

    const D: &str = "example.com";
    const MX: &str = "mx.example.com";

    /// The codes and severities found, in order.
    fn codes(old: &Snapshot, new: &Snapshot) -> Vec<(&'static str, Severity)> {
        diff(old, new)
            .iter()
            .map(|c| (c.finding.code.as_str(), c.finding.severity))
            .collect()
    }

    fn one(old: MxState, new: MxState) -> Vec<Change> {
        diff(&snapshot(D, vec![(MX, old)]), &snapshot(D, vec![(MX, new)]))
    }

    fn only(changes: &[Change]) -> (&'static str, Severity, &str) {
        assert_eq!(changes.len(), 1, "{changes:#?}");
        let f = &changes[0].finding;
        (f.code.as_str(), f.severity, &f.message)
    }

    fn head(changes: &[Change]) -> (&'static str, Severity) {
        let (c, s, _) = only(changes);
        (c, s)
    }

    fn plain(t: TlsState) -> MxState {
        mx(Some(t), DaneState::none(), StsVerdict::None)
    }

    /// DANE state with these records judged against `path`.
    fn dane(verdict: DaneVerdict, records: &[&Tlsa], path: &[&Certificate]) -> DaneState {
        DaneState::new(
            verdict,
            records.iter().map(|t| TlsaSeen::judged(t, path)).collect(),
        )
    }

    fn ee(c: &Certificate, s: Selector, m: Matching) -> Tlsa {
        Tlsa::of(c, Usage::DaneEe, s, m)
    }

    #[test]
    fn nothing_changed_is_one_info() {
        let r = root("Root X1");
        let i = intermediate("R10", &r);
        let l = leaf(MX, &key(), &i, 2027, 3);
        let changes = one(plain(tls(&l, &i, &r)), plain(tls(&l, &i, &r)));
        let (code, sev, msg) = only(&changes);
        assert_eq!((code, sev), ("baseline-unchanged", Severity::Info));
        assert!(msg.contains("CN=R10"), "{msg}");
        assert_eq!(changes[0].mx.as_deref(), Some(MX));
    }

    #[test]
    fn a_renewal_with_the_same_key_is_information() {
        let r = root("Root X1");
        let i = intermediate("R10", &r);
        let k = key();
        let (old, new) = (leaf(MX, &k, &i, 2027, 3), leaf(MX, &k, &i, 2027, 6));
        let changes = one(plain(tls(&old, &i, &r)), plain(tls(&new, &i, &r)));
        let (code, sev, msg) = only(&changes);
        assert_eq!((code, sev), ("baseline-renewed", Severity::Info));
        // Both certificates named by fingerprint, old and new expiry.
        let (a, b) = (hex_short(&old), hex_short(&new));
        assert!(msg.contains(&a) && msg.contains(&b), "{msg}");
        assert!(
            msg.contains("2027-03-01") && msg.contains("2027-06-01"),
            "{msg}"
        );
    }

    fn hex_short(c: &Certificate) -> String {
        crate::cert::hex(&c.sha256[..8])
    }

    #[test]
    fn a_new_key_and_a_new_intermediate_of_the_same_name_and_root_is_routine() {
        let r = root("Root X1");
        let (i, i2) = (intermediate("R10", &r), intermediate("R10", &r));
        let old = leaf(MX, &key(), &i, 2027, 3);
        let new = leaf(MX, &key(), &i2, 2027, 6);
        let changes = one(plain(tls(&old, &i, &r)), plain(tls(&new, &i2, &r)));
        let (code, sev, msg) = only(&changes);
        assert_eq!((code, sev), ("baseline-key-changed", Severity::Info));
        assert!(msg.contains("same name"), "{msg}");
    }

    /// Let's Encrypt's rotation (R10 -> R11: another name, another key, same root), as the
    /// wiring records it from plain values: the issuers' real SPKI hashes from the table.
    #[test]
    fn lets_encrypt_rotating_intermediates_are_routine() {
        let r = root("ISRG Root X1");
        let i = intermediate("R10", &r);
        let old_leaf = leaf(MX, &key(), &i, 2027, 3);
        let new_leaf = leaf(MX, &key(), &i, 2027, 6);
        let le = |name: &str| CaState {
            subject: format!("CN={name}, O=Let's Encrypt, C=US"),
            spki_sha256: RANDOM_ISSUERS
                .iter()
                .find(|i| i.name == name)
                .and_then(|i| Fingerprint::from_hex(i.spki_sha256)),
        };
        let mut old = tls(&old_leaf, &i, &r);
        old.issuer = le("R10");
        let mut new = tls(&new_leaf, &i, &r);
        new.issuer = le("R11");
        let changes = one(plain(old.clone()), plain(new.clone()));
        let (code, sev, msg) = only(&changes);
        assert_eq!((code, sev), ("baseline-key-changed", Severity::Info));
        assert!(msg.contains("Let's Encrypt rotates"), "{msg}");
        assert!(msg.contains("CN=R10") && msg.contains("CN=R11"), "{msg}");

        // Another CA's intermediate of another name under the same root is a warning.
        new.issuer = CaState {
            subject: "CN=Other Issuing CA".into(),
            spki_sha256: Some(Fingerprint([7; 32])),
        };
        let got = codes(
            &snapshot(D, vec![(MX, plain(old))]),
            &snapshot(D, vec![(MX, plain(new))]),
        );
        assert_eq!(
            got,
            [
                ("baseline-issuer-changed", Severity::Warning),
                ("baseline-key-changed", Severity::Info)
            ]
        );
    }

    #[test]
    fn another_issuer_by_name_under_the_same_root_is_a_warning() {
        let r = root("Root X1");
        let (i, other) = (intermediate("R10", &r), intermediate("Other CA", &r));
        let k = key();
        let (old, new) = (leaf(MX, &k, &i, 2027, 3), leaf(MX, &k, &other, 2027, 6));
        let changes = one(plain(tls(&old, &i, &r)), plain(tls(&new, &other, &r)));
        let f = &changes[0].finding;
        assert_eq!(
            (f.code, f.severity),
            (Code::BaselineIssuerChanged, Severity::Warning)
        );
        assert!(
            f.message.contains("CN=Other CA") && f.message.contains("CN=R10"),
            "{}",
            f.message
        );
        assert_eq!(changes[1].finding.code, Code::BaselineRenewed);
    }

    /// The key pinned by `3 1 1`, `3 1 2` and `3 1 0` (RFC 7671 §5.1): a new key without a
    /// matching record now is an error, the records named; no second `dane-lost`.
    #[test]
    fn a_new_key_under_a_dane_ee_pin_is_an_error() {
        let r = root("Root X1");
        let i = intermediate("R10", &r);
        let old = leaf(MX, &key(), &i, 2027, 3);
        let new = leaf(MX, &key(), &i, 2027, 6);
        let old_path = [&old, &i.cert, &r.cert];
        for m in [Matching::Sha256, Matching::Sha512, Matching::Full] {
            let pin = ee(&old, Selector::Spki, m);
            let was = mx(
                Some(tls(&old, &i, &r)),
                dane(DaneVerdict::Match, &[&pin], &old_path),
                StsVerdict::None,
            );
            assert_eq!(was.dane.records[0].pins, Pin::Leaf);
            for now_verdict in [DaneVerdict::Mismatch, DaneVerdict::Unknown] {
                let now = mx(
                    Some(tls(&new, &i, &r)),
                    dane(now_verdict, &[&pin], &[&new, &i.cert, &r.cert]),
                    StsVerdict::None,
                );
                let changes = one(was.clone(), now);
                let (code, sev, msg) = only(&changes);
                assert_eq!(
                    (code, sev),
                    ("baseline-pinned-key-changed", Severity::Error),
                    "{m:?} {now_verdict:?}"
                );
                assert!(msg.contains("3 1 "), "{msg}");
                // The record to publish, whole.
                let publish = format!("3 1 1 {}", crate::cert::hex(&new.spki_sha256));
                assert!(msg.contains(&publish), "{msg}");
                assert!(
                    msg.contains(&crate::cert::hex(&old.spki_sha256[..8]))
                        && msg.contains(&crate::cert::hex(&new.spki_sha256[..8])),
                    "{msg}"
                );
                assert_eq!(changes[0].finding.receiver_view.as_deref(), Some(DANE_NDR));
            }
        }
    }

    #[test]
    fn a_key_change_the_records_followed_is_information() {
        let r = root("Root X1");
        let i = intermediate("R10", &r);
        let old = leaf(MX, &key(), &i, 2027, 3);
        let new = leaf(MX, &key(), &i, 2027, 6);
        let (old_pin, new_pin) = (
            ee(&old, Selector::Spki, Matching::Sha256),
            ee(&new, Selector::Spki, Matching::Sha256),
        );
        let was = mx(
            Some(tls(&old, &i, &r)),
            dane(DaneVerdict::Match, &[&old_pin], &[&old, &i.cert]),
            StsVerdict::None,
        );
        // The partner published the new key's record beside the old one (RFC 7671 §8.1).
        let now = mx(
            Some(tls(&new, &i, &r)),
            dane(DaneVerdict::Match, &[&old_pin, &new_pin], &[&new, &i.cert]),
            StsVerdict::None,
        );
        let got: Vec<_> = one(was, now)
            .iter()
            .map(|c| (c.finding.code, c.finding.severity))
            .collect();
        assert_eq!(
            got,
            [
                (Code::BaselineKeyChanged, Severity::Info),
                (Code::BaselineDaneChanged, Severity::Info)
            ]
        );
    }

    #[test]
    fn a_renewal_keeping_the_key_passes_a_key_pin_and_breaks_a_certificate_pin() {
        let r = root("Root X1");
        let i = intermediate("R10", &r);
        let k = key();
        let (old, new) = (leaf(MX, &k, &i, 2027, 3), leaf(MX, &k, &i, 2027, 6));
        let path = [&old, &i.cert, &r.cert];
        let key_pin = ee(&old, Selector::Spki, Matching::Sha256);
        let cert_pin = ee(&old, Selector::Cert, Matching::Sha256);
        let state = |t: &Certificate, v: DaneVerdict, recs: &[&Tlsa]| {
            mx(Some(tls(t, &i, &r)), dane(v, recs, &path), StsVerdict::None)
        };
        // 3 1 1 still matches the kept key: routine.
        let changes = one(
            state(&old, DaneVerdict::Match, &[&key_pin]),
            state(&new, DaneVerdict::Match, &[&key_pin]),
        );
        assert_eq!(only(&changes).0, "baseline-renewed");
        // 3 0 1 pins the old certificate: every renewal breaks it.
        let changes = one(
            state(&old, DaneVerdict::Match, &[&cert_pin]),
            state(&new, DaneVerdict::Mismatch, &[&cert_pin]),
        );
        let (code, sev, msg) = only(&changes);
        assert_eq!(
            (code, sev),
            ("baseline-pinned-certificate-changed", Severity::Error)
        );
        assert!(msg.contains("3 0 1"), "{msg}");
    }

    #[test]
    fn a_new_issuer_under_a_dane_ta_pin_is_an_error() {
        let r = root("ISRG Root X1");
        let (i, i2) = (intermediate("R10", &r), intermediate("R11", &r));
        let k = key();
        let (old, new) = (leaf(MX, &k, &i, 2027, 3), leaf(MX, &k, &i2, 2027, 6));
        let pin = Tlsa::of(&i.cert, Usage::DaneTa, Selector::Spki, Matching::Sha256);
        let was = mx(
            Some(tls(&old, &i, &r)),
            dane(DaneVerdict::Match, &[&pin], &[&old, &i.cert, &r.cert]),
            StsVerdict::Valid,
        );
        assert_eq!(was.dane.records[0].pins, Pin::Issuer);
        let now = mx(
            Some(tls(&new, &i2, &r)),
            dane(DaneVerdict::Mismatch, &[&pin], &[&new, &i2.cert, &r.cert]),
            StsVerdict::NotUsedDane,
        );
        let got: Vec<_> = one(was, now)
            .iter()
            .map(|c| (c.finding.code, c.finding.severity))
            .collect();
        assert_eq!(
            got,
            [
                (Code::BaselinePinnedIssuerChanged, Severity::Error),
                (Code::BaselineStsChanged, Severity::Info)
            ]
        );
    }

    #[test]
    fn another_root_is_an_error_and_so_is_losing_it() {
        let (r, r2) = (root("Root X1"), root("Root X2"));
        let (i, i2) = (intermediate("E5", &r), intermediate("E5", &r2));
        let k = key();
        let (old, new) = (leaf(MX, &k, &i, 2027, 3), leaf(MX, &k, &i2, 2027, 6));
        let changes = one(plain(tls(&old, &i, &r)), plain(tls(&new, &i2, &r2)));
        let f = &changes[0].finding;
        assert_eq!(
            (f.code, f.severity),
            (Code::BaselineRootChanged, Severity::Error)
        );
        assert!(
            f.message.contains("CN=Root X1") && f.message.contains("CN=Root X2"),
            "{}",
            f.message
        );
        assert_eq!(
            f.receiver_view.as_deref(),
            Some(crate::diagnose::UNTRUSTED_ROOT_NDR)
        );
        // The issuer change under the new root is not a second warning.
        assert!(!changes
            .iter()
            .any(|c| c.finding.code == Code::BaselineIssuerChanged));

        let trusted = tls(&old, &i, &r);
        let mut untrusted = trusted.clone();
        untrusted.root = None;
        let changes = one(plain(trusted.clone()), plain(untrusted.clone()));
        assert_eq!(head(&changes), ("baseline-root-changed", Severity::Error));
        let changes = one(plain(untrusted), plain(trusted));
        assert_eq!(head(&changes), ("baseline-root-changed", Severity::Info));
    }

    #[test]
    fn an_earlier_expiry_is_a_warning() {
        let r = root("Root X1");
        let i = intermediate("R10", &r);
        let k = key();
        let (old, new) = (leaf(MX, &k, &i, 2027, 6), leaf(MX, &k, &i, 2027, 3));
        let got = codes(
            &snapshot(D, vec![(MX, plain(tls(&old, &i, &r)))]),
            &snapshot(D, vec![(MX, plain(tls(&new, &i, &r)))]),
        );
        assert_eq!(
            got,
            [
                ("baseline-expiry-earlier", Severity::Warning),
                ("baseline-renewed", Severity::Info)
            ]
        );
    }

    #[test]
    fn another_chain_for_the_same_leaf_is_information() {
        let r = root("Root X1");
        let i = intermediate("R10", &r);
        let l = leaf(MX, &key(), &i, 2027, 3);
        let old = tls(&l, &i, &r);
        let new = TlsState::of_chain(&[&l], &[&l, &i.cert, &r.cert], true).expect("chain");
        let changes = one(plain(old), plain(new));
        let (code, sev, msg) = only(&changes);
        assert_eq!((code, sev), ("baseline-chain-changed", Severity::Info));
        assert!(msg.contains(&hex_short(&i.cert)), "{msg}");
    }

    #[test]
    fn dane_verdicts_lost_or_changed() {
        let r = root("Root X1");
        let i = intermediate("R10", &r);
        let l = leaf(MX, &key(), &i, 2027, 3);
        let path = [&l, &i.cert, &r.cert];
        let pin = ee(&l, Selector::Spki, Matching::Sha256);
        let state = |v: DaneVerdict, recs: &[&Tlsa]| {
            mx(
                Some(tls(&l, &i, &r)),
                dane(v, recs, &path),
                StsVerdict::None,
            )
        };
        let cases = [
            (
                DaneVerdict::Match,
                DaneVerdict::Mismatch,
                "baseline-dane-lost",
                Severity::Error,
                Some(DANE_NDR),
            ),
            (
                DaneVerdict::Match,
                DaneVerdict::Bogus,
                "baseline-dane-lost",
                Severity::Error,
                Some(DNSSEC_NDR),
            ),
            (
                DaneVerdict::Match,
                DaneVerdict::Insecure,
                "baseline-dane-lost",
                Severity::Warning,
                None,
            ),
            (
                DaneVerdict::Match,
                DaneVerdict::NoUsableRecords,
                "baseline-dane-lost",
                Severity::Warning,
                None,
            ),
            (
                DaneVerdict::Mismatch,
                DaneVerdict::Match,
                "baseline-dane-changed",
                Severity::Info,
                None,
            ),
            (
                DaneVerdict::Match,
                DaneVerdict::Unknown,
                "baseline-dane-changed",
                Severity::Info,
                None,
            ),
        ];
        for (a, b, code, sev, view) in cases {
            let changes = one(state(a, &[&pin]), state(b, &[&pin]));
            let (c, s, msg) = only(&changes);
            assert_eq!((c, s), (code, sev), "{a:?} -> {b:?}");
            assert!(
                msg.contains(a.describe()) && msg.contains(b.describe()),
                "{msg}"
            );
            assert_eq!(changes[0].finding.receiver_view.as_deref(), view);
        }
        // Records removed entirely (no TLSA now): protection gone, mail flows.
        let changes = one(
            state(DaneVerdict::Match, &[&pin]),
            state(DaneVerdict::NotApplicable, &[]),
        );
        assert_eq!(head(&changes), ("baseline-dane-lost", Severity::Warning));
        // Same verdict, another RRset: information naming both.
        let extra = Tlsa::of(&i.cert, Usage::DaneTa, Selector::Spki, Matching::Sha256);
        let changes = one(
            state(DaneVerdict::Match, &[&pin]),
            state(DaneVerdict::Match, &[&pin, &extra]),
        );
        let (c, _, msg) = only(&changes);
        assert_eq!(c, "baseline-dane-changed");
        assert!(msg.contains("2 1 1"), "{msg}");
    }

    #[test]
    fn mta_sts_lost_or_changed() {
        let r = root("Root X1");
        let i = intermediate("R10", &r);
        let l = leaf(MX, &key(), &i, 2027, 3);
        let state = |v| mx(Some(tls(&l, &i, &r)), DaneState::none(), v);
        use StsVerdict as S;
        let cases = [
            (
                S::Valid,
                S::EnforceFailed,
                "baseline-sts-lost",
                Severity::Error,
            ),
            (
                S::TestingFailed,
                S::EnforceFailed,
                "baseline-sts-lost",
                Severity::Error,
            ),
            (
                S::Valid,
                S::TestingFailed,
                "baseline-sts-lost",
                Severity::Warning,
            ),
            (S::Valid, S::None, "baseline-sts-lost", Severity::Warning),
            (S::None, S::Valid, "baseline-sts-changed", Severity::Info),
            (
                S::Valid,
                S::NotUsedDane,
                "baseline-sts-changed",
                Severity::Info,
            ),
        ];
        for (a, b, code, sev) in cases {
            let changes = one(state(a), state(b));
            let (c, s, msg) = only(&changes);
            assert_eq!((c, s), (code, sev), "{a:?} -> {b:?}");
            assert!(
                msg.contains(a.describe()) && msg.contains(b.describe()),
                "{msg}"
            );
        }
        let changes = one(state(S::Valid), state(S::EnforceFailed));
        let view = changes[0].finding.receiver_view.as_deref().expect("view");
        assert!(
            view.contains(&format!("4.4.8 MX hosts of {D} failed")) && view.contains("4.7.5"),
            "{view}"
        );
    }

    #[test]
    fn mx_hosts_added_removed_unreached_and_new_domains() {
        let r = root("Root X1");
        let i = intermediate("R10", &r);
        let (a, b) = (
            leaf("mx1.example.com", &key(), &i, 2027, 3),
            leaf("mx2.example.com", &key(), &i, 2027, 3),
        );
        let old = snapshot(
            D,
            vec![
                ("mx1.example.com", plain(tls(&a, &i, &r))),
                ("mx2.example.com", plain(tls(&b, &i, &r))),
            ],
        );
        let new = snapshot(
            D,
            vec![
                ("MX1.example.com.", plain(tls(&a, &i, &r))),
                ("mx3.example.com", plain(tls(&b, &i, &r))),
            ],
        );
        let got: Vec<_> = diff(&old, &new)
            .into_iter()
            .map(|c| (c.mx.unwrap_or_default(), c.finding.code, c.finding.severity))
            .collect();
        assert_eq!(
            got,
            [
                (
                    "mx1.example.com".to_string(),
                    Code::BaselineUnchanged,
                    Severity::Info
                ),
                (
                    "mx2.example.com".to_string(),
                    Code::BaselineMxRemoved,
                    Severity::Info
                ),
                (
                    "mx3.example.com".to_string(),
                    Code::BaselineMxAdded,
                    Severity::Warning
                ),
            ]
        );
        // An MX host not reached this run is not compared (the probe says why).
        let unreached = snapshot(
            D,
            vec![
                (
                    "mx1.example.com",
                    mx(None, DaneState::none(), StsVerdict::None),
                ),
                ("mx2.example.com", plain(tls(&b, &i, &r))),
            ],
        );
        assert_eq!(
            codes(&old, &unreached),
            [("baseline-unchanged", Severity::Info)]
        );
        // A domain never recorded: one domain-wide info; recorded domains not probed now are
        // not compared.
        let other = snapshot(
            "example.net",
            vec![("mx.example.net", plain(tls(&a, &i, &r)))],
        );
        let changes = diff(&old, &other);
        let (code, sev, msg) = only(&changes);
        assert_eq!((code, sev), ("baseline-new", Severity::Info));
        assert!(msg.contains("mx.example.net"), "{msg}");
        assert_eq!(changes[0].mx, None);
    }

    #[test]
    fn an_issuer_found_later_is_no_change() {
        let r = root("Root X1");
        let i = intermediate("R10", &r);
        let l = leaf(MX, &key(), &i, 2027, 3);
        let found = tls(&l, &i, &r);
        let mut missing = found.clone();
        missing.issuer.spki_sha256 = None;
        missing.root = None::<RootState>;
        let changes = one(plain(missing), plain(found));
        // Only the root reached now (information); no issuer change.
        assert_eq!(head(&changes), ("baseline-root-changed", Severity::Info));
    }
}
