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
use crate::diagnose::{baseline_change, CertRef, Code, Finding, Severity, DANE_NDR};

use super::snapshot::{
    CaState, DaneVerdict, DomainState, Fingerprint, LeafState, MxState, Snapshot, StsVerdict,
    TlsState,
};

/// What Exchange Online says when the DNSSEC answers for the TLSA records are bogus.
const DNSSEC_NDR: &str = "Exchange Online: 4.7.324 dnssec-invalid";
/// What Exchange Online says when an MX host fails the domain's MTA-STS policy in `enforce`
/// mode (which one depends on why: not listed, or the certificate).
const STS_NDR: &str = "Exchange Online: 4.4.8 MX hosts failed MTA-STS validation (host not \
in the policy), or 4.7.5 Remote certificate failed MTA-STS validation";

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
                        "No baseline recorded for {domain} yet; this run saw {} MX host(s){}. \
                         Later runs compare with this state once it is written.",
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
                     senders defer mail. Publish a 3 1 1 record of the new key.",
                    ctx.host,
                    new.leaf.spki_sha256.short(),
                    old.leaf.spki_sha256.short(),
                    key_pins.join(", ")
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
                    "{} now chains to the root {} (was {}){}. Senders whose trust store lacks \
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
                "{} serves {what}: {} (was {}){}.{dane_note}",
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

/// `, issued by X` or `, issued by X (was Y: ...)`.
fn issued_by(issuer: &IssuerChange, old: &TlsState, new: &TlsState) -> String {
    if !issuer.changed {
        return format!(", issued by {}", new.issuer.subject);
    }
    let why = match issuer.rotation {
        Some(ca) => format!("; {ca} rotates its issuing intermediates at random, routine"),
        None if issuer.routine => "; a new intermediate of the same name".into(),
        None => String::new(),
    };
    format!(
        ", issued by {} (was {}{why})",
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
    let what = format!(
        "DANE for {} is now {} (was {}); TLSA records now: {}; recorded: {}.",
        ctx.host,
        b.describe(),
        a.describe(),
        records(&now.dane),
        records(&was.dane)
    );
    match (a, b) {
        (DaneVerdict::Match, DaneVerdict::Mismatch) if pin_broken => {}
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
        _ if a != b || was.dane.records != now.dane.records => {
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
        "MTA-STS for {} is now: {} (was: {}).",
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
                STS_NDR,
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
