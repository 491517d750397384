//! The domain blocks of `probe --domain`: for the human report, the resolver and its DNSSEC
//! trust, each MX host with its addresses, DNSSEC status, DANE state and MTA-STS verdict, the
//! TLS-RPT record, the MTA-STS record and policy, and the domain's own findings; for `--brief`
//! and `--nagios`, one line per domain. Names from DNS are data: they go through
//! [`crate::render::plain`].

use std::io::{self, Write};

use super::human::{print_findings, status_style, style};
use crate::diagnose::{Severity, Status};
use crate::dns::Security;
use crate::domain::{DaneState, DomainResult, MailHosts, TlsRpt};
use crate::mtasts::judge::{MxVerdict, MxView, PolicyState, RecordState, View};
use crate::render::plain;

fn security(s: Option<Security>) -> &'static str {
    s.map_or("lookup failed", Security::as_str)
}

/// One domain's block.
pub(super) fn print_human(d: &DomainResult, out: &mut dyn Write) -> io::Result<()> {
    let verdict = match d.status {
        Status::Ok => "OK",
        Status::Repairable => "REPAIRABLE",
        Status::Broken => "BROKEN",
    };
    let (title, st) = (style::TITLE, status_style(d.status));
    writeln!(
        out,
        "{title}domain {}{title:#}  {st}[{verdict}]{st:#}",
        plain::line(&d.domain)
    )?;
    let trust = if d.dnssec_trusted {
        "its AD bit is trusted (loopback)"
    } else {
        "not on loopback: DNSSEC unknown, DANE not applied"
    };
    writeln!(out, "  resolver {}: {trust}", plain::line(&d.resolver))?;
    let hosts = match d.mail_hosts {
        MailHosts::Mx => "MX records",
        MailHosts::Implicit => "no MX: the domain's own address (RFC 5321 §5.1)",
        MailHosts::NullMx => "null MX (RFC 7505): the domain takes no mail",
        MailHosts::None => "no MX and no address: no mail host",
        MailHosts::LookupFailed => "the MX lookup failed",
    };
    writeln!(
        out,
        "  mail hosts: {hosts}; MX answer {}",
        security(d.mx_security)
    )?;
    for mx in &d.mx {
        let pref = mx.preference.map_or("-".to_string(), |p| p.to_string());
        let addrs: Vec<String> = mx.addresses.iter().map(|a| a.to_string()).collect();
        let addrs = if addrs.is_empty() {
            "no address".to_string()
        } else {
            addrs.join(", ")
        };
        writeln!(
            out,
            "    {pref:>5} {}  {} ({})",
            plain::line(&mx.host),
            addrs,
            security(mx.address_security)
        )?;
        for c in &mx.cnames {
            writeln!(out, "          via CNAME {}", plain::line(c))?;
        }
        let dane = match mx.dane.state {
            DaneState::Applies => "applies: the served chain is judged against these records",
            DaneState::NoTlsa => "not used: DNSSEC-secure, but no TLSA records",
            DaneState::Insecure => {
                "not used: an answer on the way is insecure; TLSA records ignored"
            }
            DaneState::DnssecUnknown => "not applied: DNSSEC unknown (resolver not on loopback)",
            DaneState::Bogus => "DNSSEC bogus: DANE senders defer the mail (4.7.324)",
            DaneState::NotChecked => "not checked",
        };
        let name = mx
            .dane
            .tlsa_name
            .as_deref()
            .map(|n| format!(" ({} {})", plain::line(n), security(mx.dane.tlsa_security)))
            .unwrap_or_default();
        writeln!(out, "          DANE{name}: {dane}")?;
        for r in &mx.dane.records {
            writeln!(out, "            TLSA {}", plain::line(r))?;
        }
        if let Some(v) = mx
            .mta_sts
            .as_ref()
            .filter(|v| v.verdict != MxVerdict::NoPolicy)
        {
            writeln!(out, "          MTA-STS: {}", sts_mx(v))?;
        }
    }
    match &d.tls_rpt {
        TlsRpt::Present { rua, .. } => {
            let rua: Vec<_> = rua.iter().map(|u| plain::line(u)).collect();
            writeln!(out, "  TLS-RPT: reports go to {}", rua.join(", "))?
        }
        TlsRpt::Missing => writeln!(out, "  TLS-RPT: none published")?,
        TlsRpt::Malformed { why, .. } => {
            writeln!(out, "  TLS-RPT: unusable: {}", plain::line(why))?
        }
        TlsRpt::Unknown { why } => writeln!(out, "  TLS-RPT: lookup failed: {}", plain::line(why))?,
    }
    if let Some(v) = &d.mta_sts {
        writeln!(out, "  MTA-STS: {}", sts_domain(v))?;
    }
    print_findings(&d.problems, out)
}

/// The record, the policy and its mode, on one line.
fn sts_domain(v: &View) -> String {
    if v.record == RecordState::Absent && v.policy == PolicyState::NotFetched {
        return "none published".into();
    }
    let record = match (v.record, &v.id) {
        (RecordState::Valid, Some(id)) => format!("record id={}", plain::line(id)),
        (RecordState::Valid, None) => "record valid".into(),
        (RecordState::Invalid, _) => "record unusable".into(),
        (RecordState::Absent, _) => "no record".into(),
    };
    let policy = match (v.policy, v.mode) {
        (PolicyState::Valid, Some(mode)) => {
            let mx: Vec<_> = v.mx_patterns.iter().map(|p| plain::line(p)).collect();
            format!(
                "policy mode {}, max_age {}, mx {}",
                mode.as_str(),
                v.max_age.unwrap_or_default(),
                mx.join(", ")
            )
        }
        (PolicyState::Valid, None) => {
            "a policy is served, but without a record no sender uses it".into()
        }
        (PolicyState::NotFetched, _) => "no policy fetched".into(),
        (PolicyState::Unavailable, _) => "the policy cannot be fetched".into(),
        (PolicyState::Invalid, _) => "the policy is invalid".into(),
    };
    let url = v
        .url
        .as_deref()
        .map(|u| format!(" ({})", plain::line(u)))
        .unwrap_or_default();
    format!("{record}; {policy}{url}")
}

/// One MX host's verdict.
fn sts_mx(v: &MxView) -> &'static str {
    match v.verdict {
        MxVerdict::Pass => "listed, certificate valid",
        MxVerdict::Fail if v.listed == Some(false) => {
            "NOT LISTED in the policy (4.4.8 in enforce mode)"
        }
        MxVerdict::Fail => "certificate fails MTA-STS validation (4.7.5 in enforce mode)",
        MxVerdict::NotChecked => "listed; no certificate to check",
        MxVerdict::Dane => "not used: DANE applies, and senders doing both use DANE",
        MxVerdict::NoPolicy => "no policy in force",
    }
}

/// The problem codes (warnings and errors) of a domain's own findings, comma-separated.
pub(super) fn codes(d: &DomainResult) -> String {
    let mut codes: Vec<&str> = d
        .problems
        .iter()
        .filter(|p| p.severity != Severity::Info)
        .map(|p| p.code.as_str())
        .collect();
    codes.dedup();
    if codes.is_empty() {
        "-".into()
    } else {
        codes.join(",")
    }
}
