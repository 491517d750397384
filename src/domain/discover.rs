//! What DNS says about a mail domain, asked as a sending MTA asks: the MX hosts in preference
//! order (RFC 5321 §5.1; none: the domain itself; a null MX: no mail, RFC 7505), each host's
//! addresses, its TLSA records at `_25._tcp.HOST` and whether DANE applies (RFC 7672 §2.2:
//! the MX, address and TLSA answers all secure), the TLS-RPT record (RFC 8460 §3), and for
//! MTA-STS the `_mta-sts` record and the policy host's addresses (RFC 8461 §3.1, §3.3).

use std::net::IpAddr;
use std::sync::Arc;

use super::tlsrpt::{self, TlsRpt};
use super::{DaneState, DaneView, MailHosts};
use crate::dane::{RecordSet, Tlsa};
use crate::diagnose::{domain_finding, Code, Finding, Severity};
use crate::dns::{self, DnsError, Security, Session};
use crate::mtasts::{self, RecordOutcome};

/// The SMTP port whose TLSA records senders look up (RFC 7672 §2.2.3: `_25._tcp`), also when
/// `--smtp-port` probes another port.
pub const TLSA_PORT: u16 = 25;

/// Everything DNS said about one domain, before any server is probed.
#[derive(Debug, Clone)]
pub struct Discovery {
    pub domain: String,
    pub mail_hosts: MailHosts,
    pub mx_security: Option<Security>,
    pub hosts: Vec<HostPlan>,
    pub tls_rpt: TlsRpt,
    pub sts: StsDns,
    /// Findings about the domain itself.
    pub problems: Vec<Finding>,
}

/// What DNS says for MTA-STS (RFC 8461 §3.1, §3.3): the `_mta-sts.<domain>` TXT record and the
/// addresses of the policy host `mta-sts.<domain>`, asked in the domain's session (its budget).
#[derive(Debug, Clone)]
pub struct StsDns {
    pub record: RecordOutcome,
    /// The TXT lookup failed: senders have no record (and fetch nothing).
    pub lookup_failed: bool,
    /// The addresses of `mta-sts.<domain>` (empty: none, or the lookup failed).
    pub policy_addrs: Vec<IpAddr>,
}

impl StsDns {
    /// Whether a sender (or chainfix, to notice a policy nobody announces) fetches the policy:
    /// a record, or at least an address for the policy host.
    pub fn fetch_wanted(&self) -> bool {
        !self.lookup_failed
            && (matches!(self.record, RecordOutcome::Found(_)) || !self.policy_addrs.is_empty())
    }
}

/// One MX host to probe.
#[derive(Debug, Clone)]
pub struct HostPlan {
    pub host: String,
    pub preference: Option<u16>,
    pub cnames: Vec<String>,
    pub addresses: Vec<IpAddr>,
    pub address_security: Option<Security>,
    pub dane: DaneView,
    /// The TLSA RRset to judge the served chains against, when DANE applies.
    pub tlsa: Option<Arc<RecordSet>>,
    /// The TLSA records found, also when they are ignored.
    pub tlsa_seen: Vec<Tlsa>,
    /// Findings about this host (each of its probed addresses carries them).
    pub problems: Vec<Finding>,
}

/// Asks DNS about `domain` (lower case, no final dot).
pub fn discover(s: &mut Session<'_>, domain: &str) -> Discovery {
    let mut problems = Vec::new();
    let trusted = s.resolver().trusts_ad;
    if !trusted {
        problems.push(domain_finding(
            Code::DnssecUnknown,
            Severity::Info,
            format!(
                "The resolver {} is not on a loopback address, so its AD bit is not trusted \
                 (as Postfix and Exim do): DNSSEC is unknown and DANE was not applied. Run a \
                 validating resolver on this host and give it with --dns-server 127.0.0.1:53.",
                s.resolver().server
            ),
        ));
    }
    let (mail_hosts, mx_security, hosts) = match s.mx(domain) {
        Err(e) => {
            problems.push(lookup_failed(
                &format!("the MX records of {domain}"),
                &e,
                Severity::Error,
            ));
            (MailHosts::LookupFailed, None, Vec::new())
        }
        Ok(answer) => {
            if answer.security == Security::Bogus {
                problems.push(bogus(&format!("the MX records of {domain}")));
            }
            let hosts = mx_hosts(domain, &answer.records, answer.nxdomain, &mut problems);
            let kind = match (&hosts, answer.records.is_empty()) {
                (Some(_), false) => MailHosts::Mx,
                (Some(_), true) => MailHosts::Implicit,
                (None, false) => MailHosts::NullMx,
                (None, true) => MailHosts::None,
            };
            let plans = hosts
                .unwrap_or_default()
                .into_iter()
                .map(|(host, pref)| plan_host(s, &host, pref, answer.security, trusted))
                .collect();
            (kind, Some(answer.security), plans)
        }
    };
    let mut hosts: Vec<HostPlan> = hosts;
    // No MX and no address: the domain has no mail host (RFC 5321 §5.1).
    if mail_hosts == MailHosts::Implicit && hosts.iter().all(|h| h.addresses.is_empty()) {
        let failed = hosts.iter().any(|h| h.address_security.is_none());
        if !failed {
            hosts.clear();
            problems.push(domain_finding(
                Code::NoMailHost,
                Severity::Error,
                format!(
                    "{domain} has neither MX records nor an address (A/AAAA): mail to it \
                     cannot be delivered (RFC 5321 §5.1)."
                ),
            ));
        }
    }
    let mail_hosts = if mail_hosts == MailHosts::Implicit && hosts.is_empty() {
        MailHosts::None
    } else {
        mail_hosts
    };
    let tls_rpt = tls_rpt(s, domain, &mut problems);
    let sts = sts_dns(s, domain, &mut problems);
    Discovery {
        domain: domain.to_string(),
        mail_hosts,
        mx_security,
        hosts,
        tls_rpt,
        sts,
        problems,
    }
}

/// The hosts to probe, in preference order, or `None` for a null MX. No MX records: the
/// domain itself (RFC 5321 §5.1), unless the domain does not exist.
fn mx_hosts(
    domain: &str,
    records: &[dns::Mx],
    nxdomain: bool,
    problems: &mut Vec<Finding>,
) -> Option<Vec<(String, Option<u16>)>> {
    // RFC 7505 §3: a null MX is a single MX with the root as exchange. One among others is
    // still a null MX in intent; senders treat the domain as taking no mail.
    if records.iter().any(|mx| mx.exchange.is_empty()) {
        let extra = if records.len() > 1 {
            " It is published beside other MX records, which RFC 7505 §3 forbids."
        } else {
            ""
        };
        problems.push(domain_finding(
            Code::NullMx,
            Severity::Error,
            format!(
                "{domain} publishes a null MX (\"0 .\", RFC 7505): it takes no mail, and \
                 senders bounce mail to it without trying.{extra}"
            ),
        ));
        return None;
    }
    if records.is_empty() {
        if nxdomain {
            return Some(Vec::new());
        }
        problems.push(domain_finding(
            Code::ImplicitMx,
            Severity::Info,
            format!(
                "{domain} has no MX records: senders deliver to the domain's own address \
                 (A/AAAA, RFC 5321 §5.1)."
            ),
        ));
        return Some(vec![(domain.to_string(), None)]);
    }
    // RFC 5321 §5.1: lowest preference first; equal preferences in any order (senders
    // shuffle them); chainfix sorts them by name so that runs compare.
    let mut sorted: Vec<&dns::Mx> = records.iter().collect();
    sorted.sort_by(|a, b| (a.preference, &a.exchange).cmp(&(b.preference, &b.exchange)));
    sorted.dedup_by(|a, b| a.exchange == b.exchange);
    if sorted.len() > dns::MAX_MX_HOSTS {
        problems.push(domain_finding(
            Code::DnsLookupFailed,
            Severity::Warning,
            format!(
                "{domain} has {} MX hosts: only the first {} by preference were checked.",
                sorted.len(),
                dns::MAX_MX_HOSTS
            ),
        ));
        sorted.truncate(dns::MAX_MX_HOSTS);
    }
    Some(
        sorted
            .into_iter()
            .map(|mx| (mx.exchange.clone(), Some(mx.preference)))
            .collect(),
    )
}

/// One host's addresses and TLSA records, and whether DANE applies to it.
fn plan_host(
    s: &mut Session<'_>,
    host: &str,
    preference: Option<u16>,
    mx_security: Security,
    trusted: bool,
) -> HostPlan {
    let mut plan = HostPlan {
        host: host.to_string(),
        preference,
        cnames: Vec::new(),
        addresses: Vec::new(),
        address_security: None,
        dane: DaneView {
            state: DaneState::NotChecked,
            tlsa_name: None,
            tlsa_security: None,
            records: Vec::new(),
        },
        tlsa: None,
        tlsa_seen: Vec::new(),
        problems: Vec::new(),
    };
    let answer = match s.addresses(host) {
        Ok(a) => a,
        Err(e) => {
            plan.problems.push(lookup_failed(
                &format!("the addresses of {host}"),
                &e,
                Severity::Error,
            ));
            return plan;
        }
    };
    plan.address_security = Some(answer.security);
    plan.cnames = answer.cnames.clone();
    plan.addresses = answer.records.clone();
    if answer.security == Security::Bogus {
        plan.problems
            .push(bogus(&format!("the addresses of {host}")));
        plan.dane.state = DaneState::Bogus;
    }
    if answer.records.is_empty() {
        if preference.is_some() {
            plan.problems.push(domain_finding(
                Code::MxNoAddress,
                Severity::Error,
                format!("The MX host {host} has no address (A/AAAA): senders cannot reach it."),
            ));
        }
        return plan;
    }
    if plan.dane.state == DaneState::Bogus {
        return plan;
    }
    // RFC 7672 §2.2.2: for a secure CNAME, the TLSA records of the expanded name first, then
    // those of the original name.
    let mut bases = Vec::new();
    if answer.security == Security::Secure && !answer.cnames.is_empty() {
        bases.push(answer.canonical(host).to_string());
    }
    bases.push(host.to_string());
    for base in &bases {
        let name = format!("_{TLSA_PORT}._tcp.{base}");
        let tlsa = match s.tlsa(&name) {
            Ok(t) => t,
            Err(e) => {
                plan.problems.push(lookup_failed(
                    &format!("the TLSA records at {name}"),
                    &e,
                    Severity::Error,
                ));
                plan.dane.tlsa_name = Some(name);
                return plan;
            }
        };
        plan.dane.tlsa_name = Some(name.clone());
        plan.dane.tlsa_security = Some(tlsa.security);
        let tlsas: Vec<Tlsa> = tlsa
            .records
            .iter()
            .map(|t| Tlsa::from_fields(t.usage, t.selector, t.matching, t.data.clone()))
            .collect();
        plan.dane.records = tlsas.iter().map(Tlsa::rdata).collect();
        plan.tlsa_seen = tlsas.clone();
        let path = mx_security.and(answer.security);
        plan.dane.state = if tlsa.security == Security::Bogus {
            // RFC 7672 §2.2: a bogus TLSA answer means the server cannot be authenticated;
            // DANE senders defer the mail.
            plan.problems
                .push(bogus(&format!("the TLSA records at {name}")));
            DaneState::Bogus
        } else if !trusted {
            DaneState::DnssecUnknown
        } else if path == Security::Bogus {
            DaneState::Bogus
        } else if path != Security::Secure || tlsa.security != Security::Secure {
            if !tlsas.is_empty() {
                plan.problems.push(domain_finding(
                    Code::DaneTlsaInsecure,
                    Severity::Info,
                    format!(
                        "{name} has TLSA records, but the {} answer is not DNSSEC-secure: \
                         senders ignore them (RFC 7672 §2.2) and DANE does not protect {host}.",
                        if path != Security::Secure {
                            "MX or address"
                        } else {
                            "TLSA"
                        }
                    ),
                ));
            }
            DaneState::Insecure
        } else if tlsas.is_empty() {
            DaneState::NoTlsa
        } else {
            plan.tlsa = Some(Arc::new(RecordSet::from_dns(
                base, TLSA_PORT, tlsas, tlsa.ttl,
            )));
            DaneState::Applies
        };
        // A secure "no records" at the expanded name: try the original name next.
        if plan.dane.state != DaneState::NoTlsa {
            break;
        }
    }
    plan
}

/// The MTA-STS record of `domain` and the addresses of its policy host. A TXT lookup that
/// fails (or fails DNSSEC validation, which a validating sender sees as SERVFAIL) leaves the
/// sender without a record, so without a policy (RFC 8461 §3.1): a warning, nothing fetched.
fn sts_dns(s: &mut Session<'_>, domain: &str, problems: &mut Vec<Finding>) -> StsDns {
    let name = format!("_mta-sts.{domain}");
    let mut out = StsDns {
        record: RecordOutcome::Absent,
        lookup_failed: false,
        policy_addrs: Vec::new(),
    };
    match s.txt(&name) {
        Ok(answer) if answer.security != Security::Bogus => {
            let txts: Vec<String> = answer
                .records
                .iter()
                .map(|t| String::from_utf8_lossy(t).into_owned())
                .collect();
            out.record = mtasts::record::parse(&txts);
        }
        Ok(_) => {
            out.lookup_failed = true;
            problems.push(domain_finding(
                Code::DnsLookupFailed,
                Severity::Warning,
                format!(
                    "The TXT records at {name} failed DNSSEC validation: validating senders \
                     get no MTA-STS record, so no policy (RFC 8461 §3.1)."
                ),
            ));
            return out;
        }
        Err(e) => {
            out.lookup_failed = true;
            problems.push(lookup_failed(
                &format!("the TXT records at {name} (MTA-STS)"),
                &e,
                Severity::Warning,
            ));
            return out;
        }
    }
    if let Some(host) = mtasts::fetch::policy_host(domain) {
        if let Ok(answer) = s.addresses(&host) {
            out.policy_addrs = answer.records;
        }
    }
    out
}

/// The TLS-RPT record of `domain` (RFC 8460 §3).
fn tls_rpt(s: &mut Session<'_>, domain: &str, problems: &mut Vec<Finding>) -> TlsRpt {
    let name = format!("_smtp._tls.{domain}");
    let verdict = match s.txt(&name) {
        Ok(answer) => tlsrpt::judge(&answer.records),
        Err(e) => {
            problems.push(lookup_failed(
                &format!("the TXT records at {name}"),
                &e,
                Severity::Warning,
            ));
            return TlsRpt::Unknown { why: e.to_string() };
        }
    };
    match &verdict {
        TlsRpt::Missing => problems.push(domain_finding(
            Code::TlsRptMissing,
            Severity::Info,
            format!(
                "{domain} publishes no TLS-RPT record ({name} TXT \"v=TLSRPTv1; rua=...\", \
                 RFC 8460 §3): senders have nowhere to report failed TLS deliveries."
            ),
        )),
        TlsRpt::Malformed { why, .. } => problems.push(domain_finding(
            Code::TlsRptMalformed,
            Severity::Warning,
            format!("The TLS-RPT record at {name} is unusable: {why}."),
        )),
        TlsRpt::Present { .. } | TlsRpt::Unknown { .. } => {}
    }
    verdict
}

fn bogus(what: &str) -> Finding {
    domain_finding(
        Code::DnssecBogus,
        Severity::Error,
        format!(
            "DNSSEC validation failed for {what}: the resolver answered SERVFAIL and only \
             answered with checking disabled (CD=1). DANE senders defer the mail; the zone's \
             signatures or DS records need fixing."
        ),
    )
}

fn lookup_failed(what: &str, e: &DnsError, severity: Severity) -> Finding {
    let mut f = domain_finding(
        Code::DnsLookupFailed,
        severity,
        format!("Cannot look up {what}: {e}."),
    );
    f.detail = Some(e.code());
    f
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mx(pref: u16, host: &str) -> dns::Mx {
        dns::Mx {
            preference: pref,
            exchange: host.into(),
        }
    }

    #[test]
    fn mx_hosts_come_in_preference_order_with_ties_by_name() {
        let mut p = Vec::new();
        let got = mx_hosts(
            "example.test",
            &[
                mx(20, "c.example.test"),
                mx(10, "b.example.test"),
                mx(10, "a.example.test"),
            ],
            false,
            &mut p,
        )
        .expect("hosts");
        let names: Vec<&str> = got.iter().map(|(h, _)| h.as_str()).collect();
        assert_eq!(
            names,
            ["a.example.test", "b.example.test", "c.example.test"]
        );
        assert!(p.is_empty());
    }

    #[test]
    fn a_null_mx_takes_no_mail_and_no_mx_means_the_domain_itself() {
        let mut p = Vec::new();
        assert!(mx_hosts("example.test", &[mx(0, "")], false, &mut p).is_none());
        assert_eq!(p[0].code, Code::NullMx);
        let mut p = Vec::new();
        let implicit = mx_hosts("example.test", &[], false, &mut p).expect("hosts");
        assert_eq!(implicit, vec![("example.test".to_string(), None)]);
        assert_eq!(p[0].code, Code::ImplicitMx);
        let mut p = Vec::new();
        assert_eq!(
            mx_hosts("example.test", &[], true, &mut p),
            Some(Vec::new())
        );
    }
}
