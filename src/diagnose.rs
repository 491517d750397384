//! Diagnose stage: compares what a leaf's file presents with the chain that was built and
//! turns every problem into a [`Finding`]: a stable code, a severity, the certificate it is
//! about, one plain sentence, and where it applies what a receiving MTA reports.
//!
//! Findings are data: a missing intermediate is not an error of chainfix, it is the answer.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::cert::{format_date, Certificate, Flaw, Hash, KeyKind};
use crate::chain::rules::{self, Defect, Model, Role, Violation};
use crate::chain::{Budget, Choice, Limit, Outcome};
use crate::fetch::{AiaRecord, UrlOutcome};
use crate::hostname;
use crate::load::LocatedKey;
use crate::pool::{Id, Pool};

/// What Exchange Online says when the chain does not lead to a root it trusts.
pub const UNTRUSTED_ROOT_NDR: &str =
    "Exchange Online: 450 4.4.317 Cannot connect to remote server [Message=UntrustedRoot]; \
as a relay's client certificate: 550 5.7.64 TenantAttribution; Relay Access Denied";
const EXPIRED_NDR: &str = "Exchange Online: 4.7.322 certificate-expired";
pub(crate) const HOST_NDR: &str = "Exchange Online: 4.7.325 certificate-host-mismatch";
/// What Exchange Online says when the served chain matches none of the DANE TLSA records.
pub(crate) const DANE_NDR: &str = "Exchange Online: 4.7.323 tlsa-invalid";
const STARTTLS_NDR: &str = "Exchange Online: 4.7.321 starttls-not-supported \
(Destination mail server must support TLS to receive mail)";
/// No Exchange Online NDR documents a plain TLS negotiation failure (4.7.5 is "Remote
/// certificate failed MTA-STS validation", which this is not).
const TLS_FAILED_NDR: &str =
    "No documented Exchange Online NDR; senders that require TLS queue the mail and retry";
/// What Exchange Online says when a DNSSEC answer fails validation (DANE, RFC 7672 §2.1.1).
pub(crate) const DNSSEC_NDR: &str = "Exchange Online: 4.7.324 dnssec-invalid";
/// RFC 7505 §3: senders do not try a domain with a null MX; they bounce the mail at once.
const NULL_MX_NDR: &str =
    "Senders bounce the mail without trying: 556 5.1.10 Recipient address has null MX (RFC 7505)";
const UNREACHABLE_NDR: &str = "Senders queue the mail and retry (4.4.x), then bounce it";
/// What Exchange Online says when an MX host fails the domain's MTA-STS policy (RFC 8461 §4.1).
pub(crate) const MTA_STS_MX_NDR: &str =
    "Exchange Online: 4.4.8 MX hosts of <domain> failed MTA-STS validation";
/// What Exchange Online says when an MX's certificate fails MTA-STS validation (RFC 8461 §4.2).
pub(crate) const MTA_STS_CERT_NDR: &str =
    "Exchange Online: 4.7.5 Remote certificate failed MTA-STS validation";
const WEAK_SIG_NDR: &str =
    "TLS 1.2 and 1.3 receivers refuse MD5 and MD2 signatures (RFC 9155); the handshake fails";

/// Stable finding codes. The strings are part of the JSON schema; never rename one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Code {
    MissingIntermediate,
    WrongOrder,
    ExtraCertificate,
    DuplicateCertificate,
    RootIncluded,
    UntrustedRoot,
    SelfSignedLeaf,
    Expired,
    NotYetValid,
    ExpiresSoon,
    IntermediateOutlived,
    WeakSignature,
    WeakKey,
    KeyMismatch,
    NoAia,
    AiaFetchFailed,
    HostnameMismatch,
    SignatureUnverifiable,
    IssuerSignatureInvalid,
    CaConstraintViolated,
    WrongPurpose,
    NameConstraintViolated,
    UnknownCriticalExtension,
    MalformedCertificate,
    ChainLoop,
    DepthExceeded,
    SearchBudgetExceeded,
    StarttlsNotSupported,
    SmtpGreetingRejected,
    SmtpProtocolError,
    ConnectionFailed,
    Timeout,
    TlsHandshakeFailed,
    ServedDiffersFromDisk,
    KeyNotFound,
    DaneMismatch,
    DaneTaNotServed,
    DaneNameMismatch,
    DaneUnusableRecord,
    DaneFragileRecord,
    DaneRrsetTooLarge,
    DaneRootServed,
    /// chainfix's OpenSSL model and rustls/webpki disagree on the chosen chain (receivers/).
    ReceiversDisagree,
    /// The host name matches only the leaf's subject CN.
    HostnameCnOnly,
    HostnameNotChecked,
    /// MTA-STS (mtasts/): an MX host the policy does not list (4.4.8).
    MtaStsMxNotListed,
    /// MTA-STS: an MX whose certificate fails validation (4.7.5).
    MtaStsCertificateInvalid,
    /// MTA-STS: a TXT record, but no policy could be fetched.
    MtaStsPolicyUnavailable,
    /// MTA-STS: the fetched policy is invalid.
    MtaStsPolicyInvalid,
    /// MTA-STS: the `_mta-sts` TXT records give no usable record.
    MtaStsRecordInvalid,
    /// MTA-STS: a policy is served but no `_mta-sts` TXT record announces it.
    MtaStsRecordMissing,
    /// MTA-STS: DANE applies to the MX, so senders do not use MTA-STS for it.
    MtaStsSupersededByDane,
    // Monitoring: changes against the baseline file (src/baseline/diff.rs decides them).
    BaselineNew,
    BaselineUnchanged,
    BaselineRenewed,
    BaselineKeyChanged,
    BaselinePinnedKeyChanged,
    BaselinePinnedCertificateChanged,
    BaselinePinnedIssuerChanged,
    BaselineIssuerChanged,
    BaselineRootChanged,
    BaselineChainChanged,
    BaselineExpiryEarlier,
    BaselineDaneLost,
    BaselineDaneChanged,
    BaselineStsLost,
    BaselineStsChanged,
    BaselineMxAdded,
    BaselineMxRemoved,
    /// `probe --domain`: a DNSSEC answer failed validation (SERVFAIL answered with CD=1).
    DnssecBogus,
    /// `probe --domain`: the resolver is not on loopback; its AD bit is not trusted.
    DnssecUnknown,
    /// `probe --domain`: the domain publishes a null MX (RFC 7505): it takes no mail.
    NullMx,
    /// `probe --domain`: no MX; the domain's own address is the mail host (RFC 5321 §5.1).
    ImplicitMx,
    /// `probe --domain`: no MX and no address: no mail host at all.
    NoMailHost,
    /// `probe --domain`: an MX host has no address.
    MxNoAddress,
    /// `probe --domain`: a DNS lookup failed (detail: the reason code).
    DnsLookupFailed,
    /// `probe --domain`: TLSA records in an unsigned zone, which senders ignore.
    DaneTlsaInsecure,
    /// `probe --domain`: no TLS-RPT record (RFC 8460).
    TlsRptMissing,
    /// `probe --domain`: a TLS-RPT record senders cannot use.
    TlsRptMalformed,
    /// `probe --domain`: an MX address this machine has no route to was not probed.
    AddressNotProbed,
}

impl Code {
    pub fn as_str(self) -> &'static str {
        match self {
            Code::MissingIntermediate => "missing-intermediate",
            Code::WrongOrder => "wrong-order",
            Code::ExtraCertificate => "extra-certificate",
            Code::DuplicateCertificate => "duplicate-certificate",
            Code::RootIncluded => "root-included",
            Code::UntrustedRoot => "untrusted-root",
            Code::SelfSignedLeaf => "self-signed-leaf",
            Code::Expired => "expired",
            Code::NotYetValid => "not-yet-valid",
            Code::ExpiresSoon => "expires-soon",
            Code::IntermediateOutlived => "intermediate-outlived",
            Code::WeakSignature => "weak-signature",
            Code::WeakKey => "weak-key",
            Code::KeyMismatch => "key-mismatch",
            Code::NoAia => "no-aia",
            Code::AiaFetchFailed => "aia-fetch-failed",
            Code::HostnameMismatch => "hostname-mismatch",
            Code::SignatureUnverifiable => "signature-unverifiable",
            Code::IssuerSignatureInvalid => "issuer-signature-invalid",
            Code::CaConstraintViolated => "ca-constraint-violated",
            Code::WrongPurpose => "wrong-purpose",
            Code::NameConstraintViolated => "name-constraint-violated",
            Code::UnknownCriticalExtension => "unknown-critical-extension",
            Code::MalformedCertificate => "malformed-certificate",
            Code::ChainLoop => "chain-loop",
            Code::DepthExceeded => "depth-exceeded",
            Code::SearchBudgetExceeded => "search-budget-exceeded",
            Code::StarttlsNotSupported => "starttls-not-supported",
            Code::SmtpGreetingRejected => "smtp-greeting-rejected",
            Code::SmtpProtocolError => "smtp-protocol-error",
            Code::ConnectionFailed => "connection-failed",
            Code::Timeout => "timeout",
            Code::TlsHandshakeFailed => "tls-handshake-failed",
            Code::ServedDiffersFromDisk => "served-differs-from-disk",
            Code::KeyNotFound => "key-not-found",
            Code::DaneMismatch => "dane-mismatch",
            Code::DaneTaNotServed => "dane-ta-not-served",
            Code::DaneNameMismatch => "dane-name-mismatch",
            Code::DaneUnusableRecord => "dane-unusable-record",
            Code::DaneFragileRecord => "dane-fragile-record",
            Code::DaneRrsetTooLarge => "dane-rrset-too-large",
            Code::DaneRootServed => "dane-root-served",
            Code::ReceiversDisagree => "receivers-disagree",
            Code::HostnameCnOnly => "hostname-cn-only",
            Code::HostnameNotChecked => "hostname-not-checked",
            Code::MtaStsMxNotListed => "mta-sts-mx-not-listed",
            Code::MtaStsCertificateInvalid => "mta-sts-certificate-invalid",
            Code::MtaStsPolicyUnavailable => "mta-sts-policy-unavailable",
            Code::MtaStsPolicyInvalid => "mta-sts-policy-invalid",
            Code::MtaStsRecordInvalid => "mta-sts-record-invalid",
            Code::MtaStsRecordMissing => "mta-sts-record-missing",
            Code::MtaStsSupersededByDane => "mta-sts-superseded-by-dane",
            Code::BaselineNew => "baseline-new",
            Code::BaselineUnchanged => "baseline-unchanged",
            Code::BaselineRenewed => "baseline-renewed",
            Code::BaselineKeyChanged => "baseline-key-changed",
            Code::BaselinePinnedKeyChanged => "baseline-pinned-key-changed",
            Code::BaselinePinnedCertificateChanged => "baseline-pinned-certificate-changed",
            Code::BaselinePinnedIssuerChanged => "baseline-pinned-issuer-changed",
            Code::BaselineIssuerChanged => "baseline-issuer-changed",
            Code::BaselineRootChanged => "baseline-root-changed",
            Code::BaselineChainChanged => "baseline-chain-changed",
            Code::BaselineExpiryEarlier => "baseline-expiry-earlier",
            Code::BaselineDaneLost => "baseline-dane-lost",
            Code::BaselineDaneChanged => "baseline-dane-changed",
            Code::BaselineStsLost => "baseline-sts-lost",
            Code::BaselineStsChanged => "baseline-sts-changed",
            Code::BaselineMxAdded => "baseline-mx-added",
            Code::BaselineMxRemoved => "baseline-mx-removed",
            Code::DnssecBogus => "dnssec-bogus",
            Code::DnssecUnknown => "dnssec-unknown",
            Code::NullMx => "null-mx",
            Code::ImplicitMx => "implicit-mx",
            Code::NoMailHost => "no-mail-host",
            Code::MxNoAddress => "mx-no-address",
            Code::DnsLookupFailed => "dns-lookup-failed",
            Code::DaneTlsaInsecure => "dane-tlsa-insecure",
            Code::TlsRptMissing => "tls-rpt-missing",
            Code::TlsRptMalformed => "tls-rpt-malformed",
            Code::AddressNotProbed => "address-not-probed",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
    Info,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Info => "info",
        }
    }
}

/// The certificate a finding is about.
#[derive(Debug, Clone, Serialize)]
pub struct CertRef {
    pub subject: String,
    pub sha256: String,
}

impl CertRef {
    pub fn of(c: &Certificate) -> CertRef {
        CertRef {
            subject: c.subject.clone(),
            sha256: c.sha256_hex(),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    pub code: Code,
    pub severity: Severity,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cert: Option<CertRef>,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub receiver_view: Option<String>,
    /// For `aia-fetch-failed`: the failing URL and a stable reason code.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<&'static str>,
    /// Writing the built chain fixes this finding.
    pub repairable: bool,
}

impl Finding {
    fn new(code: Code, severity: Severity, cert: Option<&Certificate>, message: String) -> Finding {
        Finding {
            code,
            severity,
            cert: cert.map(CertRef::of),
            message,
            receiver_view: None,
            url: None,
            detail: None,
            repairable: false,
        }
    }

    fn receiver(mut self, view: &str) -> Finding {
        self.receiver_view = Some(view.to_string());
        self
    }

    fn repairable(mut self) -> Finding {
        self.repairable = true;
        self
    }
}

/// A finding about a mail domain (`probe --domain`): no certificate; the receiver view is
/// what a sender does about it, where that is known.
pub fn domain_finding(code: Code, severity: Severity, message: String) -> Finding {
    let view = match code {
        Code::DnssecBogus => Some(DNSSEC_NDR),
        Code::NullMx => Some(NULL_MX_NDR),
        Code::NoMailHost | Code::MxNoAddress | Code::DnsLookupFailed => Some(UNREACHABLE_NDR),
        _ => None,
    };
    let f = Finding::new(code, severity, None, message);
    match view {
        Some(v) => f.receiver(v),
        None => f,
    }
}

/// A probe that got no chain at all: the failure as a finding.
pub fn probe_failure(e: &crate::probe::ProbeError) -> Finding {
    use crate::probe::{MailboxError as M, ProbeError as P, SmtpError as S};
    let (code, view) = match e {
        P::Resolve(_) | P::Refused(_) | P::Connect { .. } => {
            (Code::ConnectionFailed, UNREACHABLE_NDR)
        }
        P::ConnectTimeout(_)
        | P::Smtp(S::Timeout(_))
        | P::Mailbox(M::Timeout(_))
        | P::Tls(crate::probe::TlsError::Timeout) => (Code::Timeout, UNREACHABLE_NDR),
        P::Smtp(S::NoStartTls | S::StartTlsRefused { .. })
        | P::Mailbox(M::NoStartTls { .. } | M::StartTlsRefused { .. }) => {
            (Code::StarttlsNotSupported, STARTTLS_NDR)
        }
        // The smtp-* codes name the session before TLS; IMAP and POP3 share them.
        P::Smtp(S::Greeting { .. } | S::EhloRefused { .. }) | P::Mailbox(M::Greeting { .. }) => {
            (Code::SmtpGreetingRejected, UNREACHABLE_NDR)
        }
        P::Smtp(S::Garbage(_) | S::Closed(_) | S::Io(_))
        | P::Mailbox(M::Garbage { .. } | M::Closed(_) | M::Io(_)) => {
            (Code::SmtpProtocolError, UNREACHABLE_NDR)
        }
        P::Tls(_) => (Code::TlsHandshakeFailed, TLS_FAILED_NDR),
    };
    let mut message = e.to_string();
    if let Some(first) = message.get(..1) {
        message = first.to_uppercase() + &message[1..];
    }
    message.push('.');
    Finding::new(code, Severity::Error, None, message).receiver(view)
}

/// The served chain is not what the files on disk hold.
pub fn served_differs(served_leaf: &Certificate, message: String) -> Finding {
    Finding::new(
        Code::ServedDiffersFromDisk,
        Severity::Error,
        Some(served_leaf),
        message,
    )
}

/// The two receivers disagree on the chosen chain (`receivers::finding` words it).
pub fn receivers_disagree(leaf: &Certificate, severity: Severity, message: String) -> Finding {
    Finding::new(Code::ReceiversDisagree, severity, Some(leaf), message)
}

/// A probe of an IP address without `--host`: the leaf was not checked against any name
/// (RFC 6125 matches DNS names; an MX host is a name, and senders check that name, not the
/// address they connected to).
pub fn hostname_not_checked(leaf: &Certificate, target: &str) -> Finding {
    Finding::new(
        Code::HostnameNotChecked,
        Severity::Info,
        Some(leaf),
        format!(
            "{target} is an IP address: no host-name check was made. Senders check the MX \
             host name; give it with --host NAME."
        ),
    )
}

/// A change against the monitoring baseline: [`crate::baseline::diff`] decides the code and
/// severity and words the message (naming the old and the new value); `cert` is the
/// certificate served now (the recorded one when the MX host is gone).
pub fn baseline_change(
    code: Code,
    severity: Severity,
    cert: Option<CertRef>,
    message: String,
    receiver_view: Option<&str>,
) -> Finding {
    let mut f = Finding::new(code, severity, None, message);
    f.cert = cert;
    f.receiver_view = receiver_view.map(str::to_string);
    f
}

/// Overall verdict for one leaf.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// No error findings.
    Ok,
    /// Every error is fixed by serving the chain chainfix built.
    Repairable,
    /// Errors remain that a new chain file cannot fix.
    Broken,
}

impl Status {
    pub fn of(findings: &[Finding]) -> Status {
        let errors = findings.iter().filter(|f| f.severity == Severity::Error);
        let mut any = false;
        for f in errors {
            any = true;
            if !f.repairable {
                return Status::Broken;
            }
        }
        if any {
            Status::Repairable
        } else {
            Status::Ok
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Repairable => "repairable",
            Status::Broken => "broken",
        }
    }
}

/// Whether the leaf's private key is known.
#[derive(Debug, Clone)]
pub enum KeyStatus {
    Matched(LocatedKey),
    /// Keys were given or found next to the leaf, but none matches it.
    Mismatch(Vec<PathBuf>),
    Unknown,
}

/// The private keys of a run, indexed once so that pairing each of many leaves with its key
/// costs a lookup, not a scan of every key (and every leaf).
pub struct KeyIndex {
    /// The `--key` keys, then the keys found among the inputs.
    keys: Vec<LocatedKey>,
    explicit: usize,
    /// Public key -> the first key (in `keys` order) with it.
    by_public_id: HashMap<Vec<u8>, usize>,
    /// Found keys with a known public half that belong to no leaf, by directory.
    orphans_by_dir: HashMap<PathBuf, Vec<PathBuf>>,
}

impl KeyIndex {
    pub fn new<'a>(
        explicit: &[LocatedKey],
        found: &[LocatedKey],
        leaves: impl Iterator<Item = &'a Certificate>,
    ) -> KeyIndex {
        let keys: Vec<LocatedKey> = explicit.iter().chain(found).cloned().collect();
        let mut by_public_id = HashMap::new();
        for (i, k) in keys.iter().enumerate() {
            if let Some(id) = &k.key.public_id {
                by_public_id.entry(id.clone()).or_insert(i);
            }
        }
        let mut orphans_by_dir: HashMap<PathBuf, Vec<PathBuf>> = HashMap::new();
        if !found.is_empty() {
            let leaf_ids: HashSet<Vec<u8>> = leaves.map(Certificate::public_key_id).collect();
            for k in found {
                // A key file always has a directory (`parent()` is only `None` for `/`).
                let Some(dir) = k.path.parent() else { continue };
                if k.key
                    .public_id
                    .as_ref()
                    .is_some_and(|id| !leaf_ids.contains(id))
                {
                    orphans_by_dir
                        .entry(dir.to_path_buf())
                        .or_default()
                        .push(k.path.clone());
                }
            }
        }
        KeyIndex {
            keys,
            explicit: explicit.len(),
            by_public_id,
            orphans_by_dir,
        }
    }

    /// Pairs a leaf with its private key by public key. A key passed with `--key`, or keys in
    /// the leaf's own directory that belong to no leaf at all, that do not match are a
    /// mismatch. A `--key` that does not match is a mismatch even when a key among the inputs
    /// does: the key asked for is not silently replaced by another.
    pub fn status(&self, leaf: &Certificate, leaf_path: &Path) -> KeyStatus {
        if !self.by_public_id.is_empty() {
            if let Some(&i) = self.by_public_id.get(&leaf.public_key_id()) {
                // `--key` keys come first, so a matching one is found before any input key.
                let explicit_known = self.keys[..self.explicit]
                    .iter()
                    .any(|k| k.key.public_id.is_some());
                if i < self.explicit || !explicit_known {
                    return KeyStatus::Matched(self.keys[i].clone());
                }
            }
        }
        // A key whose public half is unknown cannot be called a mismatch.
        let mut mismatched: Vec<PathBuf> = self.keys[..self.explicit]
            .iter()
            .filter(|k| k.key.public_id.is_some())
            .map(|k| k.path.clone())
            .collect();
        if let Some(near) = leaf_path.parent().and_then(|d| self.orphans_by_dir.get(d)) {
            mismatched.extend(near.iter().cloned());
        }
        mismatched.dedup();
        if mismatched.is_empty() {
            KeyStatus::Unknown
        } else {
            KeyStatus::Mismatch(mismatched)
        }
    }
}

/// Everything known about one leaf, for diagnosis.
pub struct Case<'a> {
    pub pool: &'a Pool,
    pub leaf: Id,
    /// The certificates in the leaf's file, in file order.
    pub presented: &'a [Id],
    pub outcome: &'a Outcome,
    pub choice: &'a Choice,
    pub aia: Option<&'a AiaRecord>,
    pub key: &'a KeyStatus,
    pub budget: &'a Budget,
    /// The receiver model: `now` and the role judged.
    pub model: Model,
    /// What the model refuses in the chosen path ([`rules::path_defects`]).
    pub defects: &'a [Violation],
    pub warn_days: i64,
    pub host: Option<&'a str>,
    /// The subject is a CA certificate given without any end-entity certificate: a lone
    /// self-signed one is an untrusted root, not a self-signed leaf.
    pub ca_subject: bool,
}

impl Case<'_> {
    fn cert(&self, id: Id) -> &Certificate {
        self.pool.cert(id)
    }

    /// The built chain split into (certificates to serve, the root if the path has one).
    fn parts(&self) -> (&[Id], Option<Id>) {
        let ids = &self.choice.best.ids;
        if self.choice.best.ends_at_root(self.pool) {
            (&ids[..ids.len() - 1], Some(self.choice.best.tip()))
        } else {
            (ids, None)
        }
    }
}

/// All findings for one leaf, most severe first.
pub fn diagnose(case: &Case<'_>) -> Vec<Finding> {
    let mut out = Vec::new();
    trust(case, &mut out);
    receiver_rules(case, &mut out);
    client_purpose(case, &mut out);
    presentation(case, &mut out);
    validity(case, &mut out);
    unverifiable(case, &mut out);
    fetching(case, &mut out);
    key_and_name(case, &mut out);
    out.sort_by_key(|f| f.severity);
    out
}

/// What the model receiver refuses in the chosen path ([`rules::path_defects`]), one finding
/// per defect. The search preferred any path without them, so none was found.
fn receiver_rules(case: &Case<'_>, out: &mut Vec<Finding>) {
    const NO_BETTER: &str =
        "receivers reject this chain, and no path without this problem was found";
    for v in case.defects {
        let c = case.cert(v.at);
        let role = if v.at == case.leaf {
            "The certificate"
        } else {
            "The CA certificate"
        };
        let finding = match &v.defect {
            Defect::NotCa | Defect::NoCertSign | Defect::PathLen { .. } => Finding::new(
                Code::CaConstraintViolated,
                Severity::Error,
                Some(c),
                format!(
                    "{}: {NO_BETTER}. The certificate must be issued from a proper CA \
                     certificate.",
                    rules::describe(v, case.pool)
                ),
            )
            .receiver(UNTRUSTED_ROOT_NDR),
            Defect::WrongPurpose => Finding::new(
                Code::WrongPurpose,
                Severity::Error,
                Some(c),
                format!(
                    "{}: {NO_BETTER} (OpenSSL: \"unsupported certificate purpose\"). Get a \
                     certificate issued for TLS server authentication.",
                    rules::describe(v, case.pool)
                ),
            )
            .receiver(UNTRUSTED_ROOT_NDR),
            Defect::NameConstraint { .. } => Finding::new(
                Code::NameConstraintViolated,
                Severity::Error,
                Some(c),
                format!(
                    "{}: {NO_BETTER} (RFC 5280 §4.2.1.10; OpenSSL: \"permitted subtree \
                     violation\" or \"excluded subtree violation\").",
                    rules::describe(v, case.pool)
                ),
            )
            .receiver(UNTRUSTED_ROOT_NDR),
            Defect::Flawed(flaw) => Finding::new(
                match flaw {
                    Flaw::UnknownCriticalExtension(_) => Code::UnknownCriticalExtension,
                    _ => Code::MalformedCertificate,
                },
                Severity::Error,
                Some(c),
                format!("{}: {NO_BETTER}.", rules::describe(v, case.pool)),
            )
            .receiver(UNTRUSTED_ROOT_NDR),
            Defect::Expired => Finding::new(
                Code::Expired,
                Severity::Error,
                Some(c),
                format!(
                    "{role} {} expired on {}.",
                    c.subject,
                    format_date(c.not_after)
                ),
            )
            .receiver(EXPIRED_NDR),
            Defect::NotYetValid => Finding::new(
                Code::NotYetValid,
                Severity::Error,
                Some(c),
                format!(
                    "{role} {} is not valid until {}.",
                    c.subject,
                    format_date(c.not_before)
                ),
            ),
            Defect::WeakSignature(Hash::Sha1) => Finding::new(
                Code::WeakSignature,
                Severity::Error,
                Some(c),
                format!(
                    "{} is signed with {}; receivers on OpenSSL 3 at security level 1 or above \
                     (the default of current Debian and RHEL) refuse SHA-1 signatures in a \
                     chain. Get a chain signed with SHA-256.",
                    c.subject, c.sig_alg
                ),
            )
            .receiver(UNTRUSTED_ROOT_NDR),
            Defect::WeakSignature(_) => Finding::new(
                Code::WeakSignature,
                Severity::Error,
                Some(c),
                format!(
                    "{} is signed with {}, which is broken.",
                    c.subject, c.sig_alg
                ),
            )
            .receiver(WEAK_SIG_NDR),
            Defect::WeakKey(key) => Finding::new(
                Code::WeakKey,
                Severity::Error,
                Some(c),
                match key {
                    KeyKind::Rsa { bits } => format!(
                        "{} has an RSA-{bits} key; 2048 bits is the minimum (OpenSSL 3 at \
                         security level 2: \"key too small\").",
                        c.subject
                    ),
                    _ => format!(
                        "{} has an {key} key, under the 112 bits of security receivers require \
                         (OpenSSL 3 at security level 2: \"key too small\").",
                        c.subject
                    ),
                },
            ),
        };
        out.push(finding);
    }
}

/// For a relay's client certificate, an extendedKeyUsage without clientAuth on the leaf or a
/// CA: a warning, not a defect, because which receivers check it varies. OpenSSL checks
/// purpose sslclient (`check_purpose_ssl_client`, crypto/x509/v3_purp.c) when a server asks
/// for and verifies client certificates (Postfix `smtpd_tls_ask_ccert`, Exim
/// `tls_verify_hosts`); public CAs issue serverAuth-only certificates (Let's Encrypt from 2026).
fn client_purpose(case: &Case<'_>, out: &mut Vec<Finding>) {
    if case.model.role != Role::Client {
        return;
    }
    for &id in &case.choice.best.ids {
        let c = case.cert(id);
        if c.eku.is_some_and(|eku| !eku.client_auth) {
            out.push(Finding::new(
                Code::WrongPurpose,
                Severity::Warning,
                Some(c),
                format!(
                    "{}'s extendedKeyUsage lacks clientAuth: receivers that verify client \
                     certificates with OpenSSL (Postfix with smtpd_tls_ask_ccert, Exim with \
                     tls_verify_hosts) refuse it as a relay's certificate (\"unsupported \
                     certificate purpose\"). For certificate-based relaying, get a certificate \
                     issued for TLS client authentication.",
                    c.subject
                ),
            ));
        }
    }
}

/// Does the chain reach a trust anchor, and if not, where does it stop?
fn trust(case: &Case<'_>, out: &mut Vec<Finding>) {
    let best = &case.choice.best;
    let leaf = case.cert(case.leaf);
    let tip = case.cert(best.tip());
    if best.anchored {
        return;
    }
    if best.ids.len() == 1 && leaf.is_self_issued() && !case.ca_subject {
        out.push(
            Finding::new(
                Code::SelfSignedLeaf,
                Severity::Error,
                Some(leaf),
                "The certificate is self-signed: no receiver can verify it. Get one from a public CA, \
                 or pass your private CA with --roots and make receivers trust it."
                    .into(),
            )
            .receiver(UNTRUSTED_ROOT_NDR),
        );
    } else if tip.is_self_issued() {
        out.push(
            Finding::new(
                Code::UntrustedRoot,
                Severity::Error,
                Some(tip),
                format!(
                    "The chain ends at {}, which is not a trusted root (a private or unknown CA). \
                     If it is your own CA, pass it with --roots; receivers must trust it too.",
                    tip.subject
                ),
            )
            .receiver(UNTRUSTED_ROOT_NDR),
        );
    } else {
        let impostors = case
            .outcome
            .rejected
            .iter()
            .filter(|(child, _)| *child == best.tip())
            .count();
        let message = if impostors > 0 {
            format!(
                "No issuer of {} verifies its signature: {impostors} certificate(s) named {} \
                 were found but their keys do not verify it (see issuer-signature-invalid). The \
                 certificate is damaged, or was signed by another key of that CA, which was not \
                 found in the inputs, --intermediates, the download cache, the trust store or \
                 over AIA.",
                tip.subject, tip.issuer
            )
        } else {
            let ruled_out = case.pool.named_but_ruled_out(tip);
            match ruled_out.first() {
                Some(&other) => format!(
                    "No issuer of {} that its authorityKeyIdentifier allows was found in the \
                     inputs, --intermediates, the download cache, the trust store or over AIA: \
                     {} certificate(s) named {} were found (sha256 {}...), but the \
                     authorityKeyIdentifier names another one (another key identifier, serial \
                     number or issuer: the CA was re-keyed or re-issued under the same name), \
                     and receivers do not take it as the issuer (OpenSSL's X509_check_akid). \
                     Serve the CA certificate the authorityKeyIdentifier names.",
                    tip.subject,
                    ruled_out.len(),
                    tip.issuer,
                    &crate::cert::hex(&case.cert(other).sha256)[..16],
                ),
                None => format!(
                    "The issuer of {} ({}) was not found in the inputs, --intermediates, the \
                     download cache, the trust store or over AIA.",
                    tip.subject, tip.issuer
                ),
            }
        };
        out.push(
            Finding::new(
                Code::MissingIntermediate,
                Severity::Error,
                Some(tip),
                message,
            )
            .receiver(UNTRUSTED_ROOT_NDR),
        );
    }
    if !case.outcome.loops.is_empty() {
        let (child, refused) = case.outcome.loops[0];
        out.push(Finding::new(
            Code::ChainLoop,
            Severity::Warning,
            Some(case.cert(refused)),
            format!(
                "A loop was cut: {} would issue {}, but it is already on the path.",
                case.cert(refused).subject,
                case.cert(child).subject
            ),
        ));
    }
    for limit in &case.outcome.limits {
        let code = match limit {
            Limit::Depth => Code::DepthExceeded,
            Limit::SignatureChecks | Limit::BuildCalls | Limit::Paths => Code::SearchBudgetExceeded,
        };
        out.push(Finding::new(
            code,
            Severity::Warning,
            None,
            format!("Path building stopped: {}.", limit.describe(case.budget)),
        ));
    }
}

/// Is the built chain what the file presents, in order, without extras?
fn presentation(case: &Case<'_>, out: &mut Vec<Finding>) {
    let (serve, root) = case.parts();
    let presented = case.presented;
    for &id in &serve[1..] {
        if !presented.contains(&id) {
            let c = case.cert(id);
            out.push(
                Finding::new(
                    Code::MissingIntermediate,
                    Severity::Error,
                    Some(c),
                    format!(
                        "The intermediate {} is not presented; receivers do not fetch missing \
                         intermediates.",
                        c.subject
                    ),
                )
                .receiver(UNTRUSTED_ROOT_NDR)
                .repairable(),
            );
        }
    }
    if presented.first().is_some_and(|&first| first != case.leaf) {
        out.push(
            Finding::new(
                Code::WrongOrder,
                Severity::Error,
                Some(case.cert(case.leaf)),
                "The leaf is not the first certificate in the file; servers send the file in \
                 order and receivers expect the leaf first (RFC 8446 §4.4.2)."
                    .into(),
            )
            .receiver(UNTRUSTED_ROOT_NDR)
            .repairable(),
        );
    } else {
        let mut order: Vec<usize> = presented
            .iter()
            .filter_map(|p| case.choice.best.ids.iter().position(|id| id == p))
            .collect();
        order.dedup(); // a duplicate in place is `duplicate-certificate`, not disorder
        if order.windows(2).any(|w| w[0] > w[1]) {
            out.push(
                Finding::new(
                    Code::WrongOrder,
                    Severity::Warning,
                    None,
                    "The intermediates are not in issuing order (each certificate followed by its \
                     issuer, RFC 5246 §7.4.2); strict TLS 1.2 receivers reject this."
                        .into(),
                )
                .repairable(),
            );
        }
    }
    let mut seen = Vec::new();
    for &id in presented {
        let c = case.cert(id);
        if seen.contains(&id) {
            out.push(
                Finding::new(
                    Code::DuplicateCertificate,
                    Severity::Warning,
                    Some(c),
                    format!("{} is presented more than once.", c.subject),
                )
                .repairable(),
            );
            continue;
        }
        seen.push(id);
        if Some(id) == root {
            out.push(Finding::new(
                Code::RootIncluded,
                Severity::Info,
                Some(c),
                format!(
                    "The root {} is presented; receivers use their own copy, so it only adds bytes.",
                    c.subject
                ),
            ));
        } else if !case.choice.best.ids.contains(&id) {
            out.push(
                Finding::new(
                    Code::ExtraCertificate,
                    Severity::Warning,
                    Some(c),
                    format!(
                        "{} is presented but is not part of the leaf's chain.",
                        c.subject
                    ),
                )
                .repairable(),
            );
        }
    }
}

fn validity(case: &Case<'_>, out: &mut Vec<Finding>) {
    let leaf = case.cert(case.leaf);
    let soon = case.warn_days.saturating_mul(86_400);
    for &id in &case.choice.best.ids {
        let c = case.cert(id);
        let role = if id == case.leaf {
            "The certificate"
        } else {
            "The CA certificate"
        };
        // Expired and not yet valid certificates are defects (`receiver_rules`).
        if c.valid_at(case.model.now) && c.not_after - case.model.now < soon {
            out.push(Finding::new(
                Code::ExpiresSoon,
                Severity::Warning,
                Some(c),
                format!(
                    "{role} {} expires on {}, within {} days.",
                    c.subject,
                    format_date(c.not_after),
                    case.warn_days
                ),
            ));
        }
        if id != case.leaf && c.not_after < leaf.not_after && c.not_after >= case.model.now {
            out.push(Finding::new(
                Code::IntermediateOutlived,
                Severity::Warning,
                Some(c),
                format!(
                    "{} expires on {}, before the leaf ({}); the chain breaks on that day.",
                    c.subject,
                    format_date(c.not_after),
                    format_date(leaf.not_after)
                ),
            ));
        }
    }
}

/// Candidate issuers whose signature cannot be verified where the chain stops: no link was
/// made to them, so the chain cannot be completed through them.
fn unverifiable(case: &Case<'_>, out: &mut Vec<Finding>) {
    let best = &case.choice.best;
    if best.anchored {
        return;
    }
    for (child, issuer, why) in &case.outcome.unverifiable {
        if *child != best.tip() {
            continue;
        }
        let entry = case.pool.get(*issuer);
        let mut f = Finding::new(
            Code::SignatureUnverifiable,
            Severity::Error,
            Some(&entry.cert),
            format!(
                "{} from {} could be the issuer of {}, but the signature cannot be checked: \
                 {why}. An unverified link is not used.",
                entry.cert.subject,
                entry.source,
                case.cert(*child).subject
            ),
        )
        .receiver(UNTRUSTED_ROOT_NDR);
        f.url = entry.source.location();
        out.push(f);
    }
}

/// Why the missing issuer could not be fetched, and which candidates were refused: every
/// certificate with the right name whose key does not verify the child's signature, fetched
/// or local (a damaged certificate, or one from another key of the same CA).
fn fetching(case: &Case<'_>, out: &mut Vec<Finding>) {
    for &(child, issuer) in &case.outcome.rejected {
        let entry = case.pool.get(issuer);
        let mut f = Finding::new(
            Code::IssuerSignatureInvalid,
            Severity::Warning,
            Some(&entry.cert),
            format!(
                "{} from {} does not verify the signature on {}; it was rejected.",
                entry.cert.subject,
                entry.source,
                case.cert(child).subject
            ),
        );
        f.url = entry.source.location();
        out.push(f);
    }
    let best = &case.choice.best;
    let tip = case.cert(best.tip());
    if best.anchored || tip.is_self_issued() {
        return;
    }
    if tip.ca_issuers.is_empty() {
        out.push(Finding::new(
            Code::NoAia,
            Severity::Warning,
            Some(tip),
            format!(
                "{} has no AIA caIssuers URL, so its issuer cannot be fetched; supply it with \
                 --intermediates.",
                tip.subject
            ),
        ));
        return;
    }
    let Some(aia) = case.aia else { return };
    for url in tip.ca_issuers.iter().take(aia.max_urls_per_cert()) {
        if let Some(UrlOutcome::Failed(e)) = aia.outcome(url) {
            let mut f = Finding::new(
                Code::AiaFetchFailed,
                Severity::Warning,
                Some(tip),
                format!(
                    "Fetching the issuer of {} from {url} failed: {e}.",
                    tip.subject
                ),
            );
            f.url = Some(url.to_string());
            f.detail = Some(e.code());
            out.push(f);
        }
    }
}

fn key_and_name(case: &Case<'_>, out: &mut Vec<Finding>) {
    let leaf = case.cert(case.leaf);
    if let KeyStatus::Mismatch(paths) = case.key {
        let list: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
        out.push(Finding::new(
            Code::KeyMismatch,
            Severity::Error,
            Some(leaf),
            format!(
                "The private key in {} does not belong to this certificate; the server cannot \
                 start TLS with this pair.",
                list.join(", ")
            ),
        ));
    }
    if let Some(host) = case.host {
        let matched = hostname::check(leaf, host);
        if matched == hostname::HostMatch::CommonName {
            out.push(Finding::new(
                Code::HostnameCnOnly,
                Severity::Warning,
                Some(leaf),
                format!(
                    "{host} matches only the certificate's subject CN: it has no DNS \
                     subjectAltName. OpenSSL 3 receivers (Postfix; Exim on RHEL) fall back to the \
                     CN and accept it; receivers that never read the CN reject it: rustls/webpki, \
                     Go's crypto/x509 (since Go 1.15) and Chrome (since Chrome 58); RFC 9525 \
                     drops the CN as an identifier. Get a certificate that names {host} in \
                     subjectAltName."
                ),
            ));
        }
        if matched == hostname::HostMatch::No {
            let names = if leaf.dns_names.is_empty() {
                leaf.common_name
                    .clone()
                    .unwrap_or_else(|| "no names".into())
            } else {
                leaf.dns_names.join(", ")
            };
            out.push(
                Finding::new(
                    Code::HostnameMismatch,
                    Severity::Error,
                    Some(leaf),
                    format!("The certificate is not valid for {host}; it names {names}."),
                )
                .receiver(HOST_NDR),
            );
        }
    }
}
