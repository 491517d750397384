//! Judging a domain's MTA-STS as a sender applies it: the record and the policy (RFC 8461
//! §3), then each MX host (§4.1 listed, §4.2 certificate), and what the policy mode makes of a
//! failure (§5): `enforce` errors (Exchange Online 4.4.8 and 4.7.5), `testing` warnings (mail
//! still flows, a TLS-RPT report is sent), `none` information. An MX that DANE applies to is
//! not judged by MTA-STS (§2: a passing MTA-STS check never overrides a failing DANE one;
//! senders doing both use DANE for it: common practice, not a rule of the RFC).

use serde::Serialize;

use super::fetch::{policy_url, FetchError, Fetched};
use super::policy::{self, Mode, Policy, PolicyError};
use super::record::{Record, RecordError, RecordOutcome};
use crate::diagnose::{Code, Finding, Severity, MTA_STS_CERT_NDR, MTA_STS_MX_NDR};

/// One MX host as the caller probed it.
#[derive(Debug, Clone)]
pub struct Mx<'a> {
    /// The MX host name (from DNS; a trailing dot is ignored).
    pub host: &'a str,
    pub certificate: Certificate,
    /// DANE applies: the MX, address and TLSA lookups were secure and the TLSA RRset has usable
    /// records (RFC 7672 §2.2). Then MTA-STS is not used for this MX.
    pub dane: bool,
}

/// What chainfix's analysis of the chain an MX served says, as MTA-STS needs it (RFC 8461
/// §4.2: the chain leads to a trusted root, nothing is expired, and a DNS subjectAltName
/// names the MX host; the subject CN does not count).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Certificate {
    /// The served chain verifies to a trusted root and a subjectAltName names the MX host.
    Valid,
    /// It does not; the findings that say why.
    Invalid(Vec<Code>),
    /// No chain was captured (unreachable, no STARTTLS, handshake failed): the probe's own
    /// findings say why; MTA-STS adds nothing.
    NotChecked,
}

impl Certificate {
    /// The verdict from the findings of a probed chain analysed with `--host` the MX host and
    /// the trust anchors senders use (Mozilla's, plus any `--roots`): invalid when any error
    /// other than a DANE one is found, or when the host matches only the subject CN
    /// (`hostname-cn-only`: RFC 8461 §4.2 asks for a subjectAltName DNS-ID).
    pub fn from_findings(findings: &[Finding]) -> Certificate {
        let mut codes: Vec<Code> = findings
            .iter()
            .filter(|f| {
                (f.severity == Severity::Error && !is_dane(f.code))
                    || matches!(f.code, Code::HostnameCnOnly | Code::HostnameNotChecked)
            })
            .map(|f| f.code)
            .collect();
        codes.sort();
        codes.dedup();
        if codes.is_empty() {
            Certificate::Valid
        } else {
            Certificate::Invalid(codes)
        }
    }
}

fn is_dane(code: Code) -> bool {
    matches!(
        code,
        Code::DaneMismatch
            | Code::DaneTaNotServed
            | Code::DaneNameMismatch
            | Code::DaneUnusableRecord
            | Code::DaneFragileRecord
            | Code::DaneRrsetTooLarge
            | Code::DaneRootServed
    )
}

/// What the caller found for the domain.
#[derive(Debug, Clone)]
pub struct Input<'a> {
    /// The mail domain (the policy domain).
    pub domain: &'a str,
    /// The HTTPS port the policy was fetched from (443, or `--sts-port`), for its URL.
    pub port: u16,
    /// [`super::record::parse`] of the `_mta-sts.<domain>` TXT records.
    pub record: &'a RecordOutcome,
    /// The policy fetch; `None` when it was not attempted (no TXT record and no address for
    /// `mta-sts.<domain>`).
    pub fetch: Option<&'a Result<Fetched, FetchError>>,
    /// The MX hosts, in preference order.
    pub mxs: &'a [Mx<'a>],
}

/// The MTA-STS outcome of a domain.
#[derive(Debug, Clone)]
pub struct Assessment {
    /// For the report (JSON `mta_sts`).
    pub view: View,
    /// About the domain: record and policy problems.
    pub findings: Vec<Finding>,
    /// Per MX, in input order.
    pub mx: Vec<MxOutcome>,
}

/// What the report shows of MTA-STS for a domain.
#[derive(Debug, Clone, Serialize)]
pub struct View {
    pub record: RecordState,
    /// The policy id of the TXT record, when valid.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub policy: PolicyState,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// The policy, when one is in force for senders (valid record and valid policy).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mode: Option<Mode>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_age: Option<u64>,
    pub mx_patterns: Vec<String>,
    pub mx: Vec<MxView>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RecordState {
    Absent,
    Valid,
    Invalid,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum PolicyState {
    /// No fetch was made.
    NotFetched,
    /// Fetched and valid.
    Valid,
    /// The fetch failed.
    Unavailable,
    /// Fetched, but invalid.
    Invalid,
}

/// One MX's MTA-STS result.
#[derive(Debug, Clone)]
pub struct MxOutcome {
    pub view: MxView,
    pub findings: Vec<Finding>,
}

#[derive(Debug, Clone, Serialize)]
pub struct MxView {
    pub host: String,
    pub verdict: MxVerdict,
    /// Whether an `mx` pattern matches the host (`null` without a policy in force).
    pub listed: Option<bool>,
    /// Whether the certificate passes (`null`: no policy, or no chain captured).
    pub certificate_valid: Option<bool>,
    pub dane: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum MxVerdict {
    /// The policy is in force and the MX passes it.
    Pass,
    /// The policy is in force (any mode) and the MX fails it.
    Fail,
    /// Listed, but no chain was captured to check.
    NotChecked,
    /// DANE applies; senders do not use MTA-STS for this MX.
    Dane,
    /// No policy is in force for senders.
    NoPolicy,
}

/// Judges the domain.
pub fn assess(input: &Input<'_>) -> Assessment {
    let mut findings = Vec::new();
    let domain = input.domain.trim_end_matches('.');
    let url = policy_url(domain, input.port);
    let parsed: Option<Result<Policy, PolicyError>> = input.fetch.and_then(|f| match f {
        Ok(fetched) => Some(policy::parse(&fetched.body)),
        Err(_) => None,
    });
    let policy_state = match (input.fetch, &parsed) {
        (None, _) => PolicyState::NotFetched,
        (Some(Err(_)), _) => PolicyState::Unavailable,
        (Some(Ok(_)), Some(Ok(_))) => PolicyState::Valid,
        (Some(Ok(_)), _) => PolicyState::Invalid,
    };
    let (record_state, id) = match input.record {
        RecordOutcome::Absent => (RecordState::Absent, None),
        RecordOutcome::Found(Record { id }) => (RecordState::Valid, Some(id.clone())),
        RecordOutcome::Invalid(_) => (RecordState::Invalid, None),
    };

    match input.record {
        RecordOutcome::Invalid(e) => findings.push(record_invalid(domain, e, policy_state)),
        RecordOutcome::Absent => {
            if policy_state == PolicyState::Valid || policy_state == PolicyState::Invalid {
                findings.push(record_missing(domain, &url));
            }
        }
        RecordOutcome::Found(_) => match (input.fetch, &parsed) {
            (None, _) => findings.push(unavailable(domain, None, &url)),
            (Some(Err(e)), _) => findings.push(unavailable(domain, Some(e), &url)),
            (Some(Ok(_)), Some(Err(e))) => findings.push(invalid_policy(domain, e, &url)),
            _ => {}
        },
    }

    // A policy is in force only with a valid record and a valid policy (§3.1, §3.3).
    let in_force = match (input.record, &parsed) {
        (RecordOutcome::Found(_), Some(Ok(p))) => Some(p),
        _ => None,
    };
    let mx = input
        .mxs
        .iter()
        .map(|m| judge_mx(domain, m, in_force))
        .collect::<Vec<_>>();
    let view = View {
        record: record_state,
        id,
        policy: policy_state,
        url: (input.fetch.is_some() || record_state == RecordState::Valid).then_some(url),
        mode: in_force.map(|p| p.mode),
        max_age: in_force.map(|p| p.max_age),
        mx_patterns: in_force
            .map(|p| p.mx.iter().map(|x| x.as_str().to_string()).collect())
            .unwrap_or_default(),
        mx: mx.iter().map(|o| o.view.clone()).collect(),
    };
    Assessment { view, findings, mx }
}

fn judge_mx(domain: &str, mx: &Mx<'_>, policy: Option<&Policy>) -> MxOutcome {
    let host = mx.host.trim_end_matches('.').to_ascii_lowercase();
    let mut view = MxView {
        host: host.clone(),
        verdict: MxVerdict::NoPolicy,
        listed: None,
        certificate_valid: None,
        dane: mx.dane,
    };
    let mut findings = Vec::new();
    let Some(policy) = policy else {
        return MxOutcome { view, findings };
    };
    // Mode none with no patterns lists nothing and enforces nothing: nothing to judge.
    let listed = (policy.mode != Mode::None || !policy.mx.is_empty())
        .then(|| policy.listed(&host).is_some());
    let certificate = match &mx.certificate {
        Certificate::Valid => Some(Ok(())),
        Certificate::Invalid(codes) => Some(Err(codes.as_slice())),
        Certificate::NotChecked => None,
    };
    view.listed = listed;
    view.certificate_valid = certificate.map(|c| c.is_ok());
    let fails = listed == Some(false) || matches!(certificate, Some(Err(_)));

    if mx.dane {
        view.verdict = MxVerdict::Dane;
        let would = if fails {
            "the policy would reject it if DANE were dropped"
        } else {
            "the policy would also accept it"
        };
        findings.push(finding(
            Code::MtaStsSupersededByDane,
            Severity::Info,
            format!(
                "{host}: DANE applies (secure TLSA records), so senders that implement both \
                 authenticate it with DANE, not with {domain}'s MTA-STS policy (RFC 8461 §2 \
                 forbids a passing MTA-STS check to override a failing DANE one); {would}."
            ),
            None,
        ));
        return MxOutcome { view, findings };
    }

    let severity = match policy.mode {
        Mode::Enforce => Severity::Error,
        Mode::Testing => Severity::Warning,
        Mode::None => Severity::Info,
    };
    let consequence = match policy.mode {
        Mode::Enforce => "senders that apply MTA-STS do not deliver to it (enforce mode)",
        Mode::Testing => {
            "senders still deliver (testing mode) and report the failure over TLS-RPT; in \
             enforce mode they would not"
        }
        Mode::None => {
            "senders ignore the policy (mode none); in enforce mode they would not \
                       deliver to it"
        }
    };
    if listed == Some(false) {
        let patterns: Vec<&str> = policy.mx.iter().map(|p| p.as_str()).collect();
        let mut f = finding(
            Code::MtaStsMxNotListed,
            severity,
            format!(
                "The MX host {host} matches no mx pattern of {domain}'s MTA-STS policy ({}): \
                 {consequence}. Add it to the policy, or publish MX records the policy lists \
                 (RFC 8461 §4.1).",
                patterns.join(", ")
            ),
            None,
        );
        if policy.mode == Mode::Enforce {
            f.receiver_view = Some(MTA_STS_MX_NDR.replace("<domain>", domain));
        }
        findings.push(f);
    }
    if let Some(Err(codes)) = certificate {
        let why: Vec<&str> = codes.iter().map(|c| c.as_str()).collect();
        let mut f = finding(
            Code::MtaStsCertificateInvalid,
            severity,
            format!(
                "The certificate {host} serves fails MTA-STS validation ({}): it must chain to \
                 a trusted public root, be within its dates and name {host} in a \
                 subjectAltName (RFC 8461 §4.2); {consequence}.",
                why.join(", ")
            ),
            None,
        );
        if policy.mode == Mode::Enforce {
            f.receiver_view = Some(MTA_STS_CERT_NDR.to_string());
        }
        findings.push(f);
    }
    view.verdict = if fails {
        MxVerdict::Fail
    } else if certificate.is_none() {
        MxVerdict::NotChecked
    } else {
        MxVerdict::Pass
    };
    MxOutcome { view, findings }
}

const NO_POLICY: &str = "senders treat the domain as having no MTA-STS policy (one they \
                         cached earlier stays in force until its max_age runs out)";

fn record_invalid(domain: &str, e: &RecordError, policy: PolicyState) -> Finding {
    let served = if matches!(policy, PolicyState::Valid | PolicyState::Invalid) {
        " The policy is served, but no sender fetches it."
    } else {
        ""
    };
    finding(
        Code::MtaStsRecordInvalid,
        Severity::Warning,
        format!("_mta-sts.{domain}: {e}: {NO_POLICY}.{served}"),
        None,
    )
}

fn record_missing(domain: &str, url: &str) -> Finding {
    let mut f = finding(
        Code::MtaStsRecordMissing,
        Severity::Warning,
        format!(
            "An MTA-STS policy is served, but _mta-sts.{domain} has no TXT record announcing \
             it: senders look for the record first and never fetch the policy (RFC 8461 §3.1). \
             Publish `v=STSv1; id=...`."
        ),
        None,
    );
    f.url = Some(url.to_string());
    f
}

fn unavailable(domain: &str, e: Option<&FetchError>, url: &str) -> Finding {
    let why = match e {
        Some(e) => e.to_string(),
        None => format!("mta-sts.{domain} has no address"),
    };
    let mut f = finding(
        Code::MtaStsPolicyUnavailable,
        Severity::Warning,
        format!(
            "_mta-sts.{domain} announces an MTA-STS policy, but it cannot be fetched: {why}. \
             Until it can, {NO_POLICY} (RFC 8461 §3.3)."
        ),
        Some(url),
    );
    f.detail = Some(e.map_or("no-address", FetchError::code));
    f
}

fn invalid_policy(domain: &str, e: &PolicyError, url: &str) -> Finding {
    let mut f = finding(
        Code::MtaStsPolicyInvalid,
        Severity::Warning,
        format!("{domain}'s MTA-STS policy is invalid: {e}; {NO_POLICY} (RFC 8461 §3.3)."),
        Some(url),
    );
    f.detail = Some(e.code());
    f
}

fn finding(code: Code, severity: Severity, message: String, url: Option<&str>) -> Finding {
    Finding {
        code,
        severity,
        cert: None,
        message,
        receiver_view: None,
        url: url.map(str::to_string),
        detail: None,
        repairable: false,
    }
}

#[cfg(test)]
mod tests {
    //! Every state of record, policy and MX, and the severity each mode gives a failure.

    use std::net::SocketAddr;

    use super::*;

    fn fetched(body: &str) -> Result<Fetched, FetchError> {
        Ok(Fetched {
            url: "https://mta-sts.example.com/.well-known/mta-sts.txt".into(),
            addr: SocketAddr::from(([127, 0, 0, 1], 443)),
            body: body.as_bytes().to_vec(),
        })
    }

    fn policy(mode: &str) -> Result<Fetched, FetchError> {
        fetched(&format!(
            "version: STSv1\nmode: {mode}\nmx: *.example.com\nmax_age: 86400\n"
        ))
    }

    fn found() -> RecordOutcome {
        RecordOutcome::Found(Record { id: "1".into() })
    }

    fn mx(host: &str, certificate: Certificate) -> Mx<'_> {
        Mx {
            host,
            certificate,
            dane: false,
        }
    }

    fn run(
        record: &RecordOutcome,
        fetch: Option<&Result<Fetched, FetchError>>,
        mxs: &[Mx<'_>],
    ) -> Assessment {
        assess(&Input {
            domain: "example.com",
            port: 443,
            record,
            fetch,
            mxs,
        })
    }

    fn codes(findings: &[Finding]) -> Vec<(Code, Severity)> {
        findings.iter().map(|f| (f.code, f.severity)).collect()
    }

    #[test]
    fn a_listed_mx_with_a_valid_certificate_passes() {
        let p = policy("enforce");
        let a = run(
            &found(),
            Some(&p),
            &[mx("mx1.example.com.", Certificate::Valid)],
        );
        assert!(a.findings.is_empty());
        assert!(a.mx[0].findings.is_empty());
        assert_eq!(a.mx[0].view.verdict, MxVerdict::Pass);
        assert_eq!(a.view.mode, Some(Mode::Enforce));
        assert_eq!(a.view.mx_patterns, ["*.example.com"]);
    }

    #[test]
    fn failures_are_errors_in_enforce_warnings_in_testing_info_in_none() {
        let bad = || Certificate::Invalid(vec![Code::UntrustedRoot]);
        for (mode, severity) in [
            ("enforce", Severity::Error),
            ("testing", Severity::Warning),
            ("none", Severity::Info),
        ] {
            let p = policy(mode);
            let mxs = [
                mx("mail.other.net", Certificate::Valid),
                mx("mx.example.com", bad()),
            ];
            let a = run(&found(), Some(&p), &mxs);
            assert_eq!(
                codes(&a.mx[0].findings),
                [(Code::MtaStsMxNotListed, severity)],
                "{mode}"
            );
            assert_eq!(
                codes(&a.mx[1].findings),
                [(Code::MtaStsCertificateInvalid, severity)],
                "{mode}"
            );
            assert_eq!(a.mx[1].view.verdict, MxVerdict::Fail);
            let ndr = a.mx[0].findings[0].receiver_view.as_deref();
            if mode == "enforce" {
                assert_eq!(
                    ndr,
                    Some(
                        "Exchange Online: 4.4.8 MX hosts of example.com failed MTA-STS validation"
                    )
                );
                assert!(a.mx[1].findings[0]
                    .receiver_view
                    .as_deref()
                    .is_some_and(|v| v.contains("4.7.5 Remote certificate failed MTA-STS")));
                assert!(a.mx[1].findings[0].message.contains("untrusted-root"));
            } else {
                assert_eq!(ndr, None, "{mode}: mail still flows");
            }
        }
    }

    #[test]
    fn dane_takes_the_mx_out_of_mta_sts() {
        let p = policy("enforce");
        let mxs = [Mx {
            host: "elsewhere.net",
            certificate: Certificate::Invalid(vec![Code::UntrustedRoot]),
            dane: true,
        }];
        let a = run(&found(), Some(&p), &mxs);
        assert_eq!(
            codes(&a.mx[0].findings),
            [(Code::MtaStsSupersededByDane, Severity::Info)]
        );
        assert_eq!(a.mx[0].view.verdict, MxVerdict::Dane);
        assert!(a.mx[0].findings[0].message.contains("would reject it"));
    }

    #[test]
    fn record_and_policy_problems_are_domain_findings_and_leave_no_policy() {
        let m = [mx("mx.elsewhere.net", Certificate::Valid)];
        // A record without a fetchable policy.
        let err = Err(FetchError::TooLarge(65_536));
        let a = run(&found(), Some(&err), &m);
        assert_eq!(
            codes(&a.findings),
            [(Code::MtaStsPolicyUnavailable, Severity::Warning)]
        );
        assert_eq!(a.findings[0].detail, Some("too-large"));
        assert_eq!(a.mx[0].view.verdict, MxVerdict::NoPolicy);
        assert!(a.mx[0].findings.is_empty());
        let a = run(&found(), None, &m);
        assert_eq!(a.findings[0].detail, Some("no-address"));
        // An invalid policy.
        let broken = fetched("version: STSv1\nmode: enforce\nmax_age: 1\n");
        let a = run(&found(), Some(&broken), &m);
        assert_eq!(
            codes(&a.findings),
            [(Code::MtaStsPolicyInvalid, Severity::Warning)]
        );
        assert_eq!(a.findings[0].detail, Some("missing-mx"));
        assert_eq!(a.view.policy, PolicyState::Invalid);
        // A policy without a record.
        let p = policy("enforce");
        let a = run(&RecordOutcome::Absent, Some(&p), &m);
        assert_eq!(
            codes(&a.findings),
            [(Code::MtaStsRecordMissing, Severity::Warning)]
        );
        assert!(a.mx[0].findings.is_empty());
        // Two records.
        let two = RecordOutcome::Invalid(RecordError::Several(2));
        let a = run(&two, Some(&p), &m);
        assert_eq!(
            codes(&a.findings),
            [(Code::MtaStsRecordInvalid, Severity::Warning)]
        );
        assert!(a.findings[0].message.contains("no sender fetches it"));
        // Nothing at all: no finding.
        let none = Err(FetchError::NoAddress);
        let a = run(&RecordOutcome::Absent, Some(&none), &m);
        assert!(a.findings.is_empty());
        assert_eq!(a.view.record, RecordState::Absent);
    }

    #[test]
    fn the_view_serializes_with_stable_names() {
        let p = policy("testing");
        let mxs = [
            mx("mx.example.com", Certificate::NotChecked),
            mx("other.net", Certificate::Valid),
        ];
        let a = run(&found(), Some(&p), &mxs);
        let json = serde_json::to_value(&a.view).expect("serializes");
        assert_eq!(
            json,
            serde_json::json!({
                "record": "valid",
                "id": "1",
                "policy": "valid",
                "url": "https://mta-sts.example.com/.well-known/mta-sts.txt",
                "mode": "testing",
                "max_age": 86400,
                "mx_patterns": ["*.example.com"],
                "mx": [
                    {"host": "mx.example.com", "verdict": "not-checked", "listed": true,
                     "certificate_valid": null, "dane": false},
                    {"host": "other.net", "verdict": "fail", "listed": false,
                     "certificate_valid": true, "dane": false}
                ]
            })
        );
    }

    #[test]
    fn the_certificate_verdict_from_chainfix_findings() {
        let f = |code, severity| Finding {
            code,
            severity,
            cert: None,
            message: String::new(),
            receiver_view: None,
            url: None,
            detail: None,
            repairable: false,
        };
        assert_eq!(
            Certificate::from_findings(&[f(Code::ExpiresSoon, Severity::Warning)]),
            Certificate::Valid
        );
        assert_eq!(
            Certificate::from_findings(&[
                f(Code::DaneMismatch, Severity::Error),
                f(Code::HostnameCnOnly, Severity::Warning),
                f(Code::MissingIntermediate, Severity::Error),
            ]),
            Certificate::Invalid(vec![Code::MissingIntermediate, Code::HostnameCnOnly])
        );
    }
}
