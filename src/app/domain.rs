//! `probe --domain`: asks DNS about each domain ([`crate::domain::discover`]), turns every
//! address of every MX host into a probe job (SNI and host-name check: the MX host name; TLSA
//! records: the host's, where DANE applies), and after the probes gathers the judged results
//! back into one [`DomainResult`] per domain.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use super::probe::{failed_result, Job};
use super::AppError;
use crate::cli::ProbeArgs;
use crate::diagnose::{domain_finding, Code, Finding, Severity, Status};
use crate::dns::Resolver;
use crate::domain::{self, AddressProbe, Discovery, DomainResult, MxResult};
use crate::probe::{ProbeError, Served, Target};
use crate::report::LeafResult;

/// The resolver `--dns-server` names, else the first of /etc/resolv.conf.
fn resolver(args: &ProbeArgs, timeout: Duration) -> Result<Resolver, AppError> {
    match &args.dns_server {
        Some(s) => {
            let addr: SocketAddr = s.parse().map_err(|_| {
                AppError(format!(
                    "--dns-server {s:?}: not ADDR:PORT (e.g. 127.0.0.1:53 or [::1]:53)"
                ))
            })?;
            Ok(Resolver::new(addr, timeout))
        }
        None => {
            let text = std::fs::read_to_string("/etc/resolv.conf")
                .map_err(|e| AppError(format!("/etc/resolv.conf: {e} (give --dns-server)")))?;
            Resolver::from_resolv_conf(&text, timeout)
                .map_err(|e| AppError(format!("{e} (give --dns-server)")))
        }
    }
}

/// A domain as given: lower case, no final dot; a host name's letters, digits, `-`, `_` and
/// dots (IDNs in their A-label form).
fn domain_name(raw: &str) -> Result<String, AppError> {
    let d = raw.trim().trim_end_matches('.').to_ascii_lowercase();
    let ok = !d.is_empty()
        && d.len() <= 253
        && d.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        });
    if ok {
        Ok(d)
    } else {
        Err(AppError(format!(
            "--domain {raw:?}: not a domain name (give IDNs in their xn-- form)"
        )))
    }
}

/// Asks DNS about every `--domain`, in order; each domain has its own budget.
pub(super) fn discover_all(
    args: &ProbeArgs,
    timeout: Duration,
) -> Result<Vec<Discovery>, AppError> {
    if args.domain.is_empty() {
        return Ok(Vec::new());
    }
    let names: Vec<String> = args
        .domain
        .iter()
        .map(|d| domain_name(d))
        .collect::<Result<_, _>>()?;
    let resolver = resolver(args, timeout)?;
    Ok(names
        .iter()
        .map(|d| domain::discover(&mut resolver.session(), d))
        .collect())
}

/// One job per address of every MX host, in domain, preference and address order. `port` is
/// `--smtp-port` (default 25). An address this host has no route to (IPv6 on an IPv4-only
/// host) is not probed: a sender there would not use it either (Postfix `inet_protocols`);
/// the host gets an info finding saying so.
pub(super) fn jobs(discoveries: &mut [Discovery], port: u16) -> Vec<Job> {
    let mut jobs = Vec::new();
    for (d, disc) in discoveries.iter_mut().enumerate() {
        for (h, host) in disc.hosts.iter_mut().enumerate() {
            let mut unrouted = Vec::new();
            for &address in &host.addresses {
                if !routable(address, port) {
                    unrouted.push(address.to_string());
                    continue;
                }
                let target = Target {
                    host: address.to_string(),
                    port,
                };
                let label = match address {
                    IpAddr::V4(a) => format!("{}[{a}]:{port}", host.host),
                    IpAddr::V6(a) => format!("{}[{a}]:{port}", host.host),
                };
                jobs.push(Job {
                    target,
                    label,
                    sni: Some(host.host.clone()),
                    check_name: Some(host.host.clone()),
                    dane: host.tlsa.clone(),
                    mx: Some((d, h)),
                    address: Some(address),
                });
            }
            if !unrouted.is_empty() {
                host.problems.push(domain_finding(
                    Code::AddressNotProbed,
                    Severity::Info,
                    format!(
                        "{} of {} not probed: this machine has no route to {}.",
                        unrouted.join(", "),
                        host.host,
                        if unrouted.len() == 1 { "it" } else { "them" }
                    ),
                ));
            }
        }
    }
    jobs
}

/// Whether the kernel has a route to `address` (a UDP "connect" sends nothing).
fn routable(address: IpAddr, port: u16) -> bool {
    let local: SocketAddr = match address {
        IpAddr::V4(_) => SocketAddr::from(([0, 0, 0, 0], 0)),
        IpAddr::V6(_) => SocketAddr::from(([0u16; 8], 0)),
    };
    std::net::UdpSocket::bind(local)
        .and_then(|s| s.connect(SocketAddr::new(address, port)))
        .is_ok()
}

/// Gathers the judged results into domains. Each MX host's own findings join the results of
/// its addresses; a host with no address to probe gets one result carrying its findings,
/// appended to `results`.
#[allow(clippy::too_many_arguments)]
pub(super) fn assemble(
    discoveries: Vec<Discovery>,
    jobs: &[Job],
    outcomes: &[Result<Served, ProbeError>],
    results: &mut Vec<LeafResult>,
    resolver: &str,
    trusted: bool,
    port: u16,
) -> Vec<DomainResult> {
    let mut domains = Vec::new();
    for (d, disc) in discoveries.into_iter().enumerate() {
        let mut mx = Vec::new();
        for (h, host) in disc.hosts.into_iter().enumerate() {
            let mut indices = Vec::new();
            let mut probes = Vec::new();
            for (i, job) in jobs.iter().enumerate() {
                if job.mx != Some((d, h)) {
                    continue;
                }
                add_problems(&mut results[i], &host.problems);
                indices.push(i);
                let Some(address) = job.address else { continue };
                probes.push(AddressProbe {
                    address,
                    result: i,
                    served: outcomes
                        .get(i)
                        .and_then(|o| o.as_ref().ok())
                        .map(|s| s.captured.certs.clone())
                        .unwrap_or_default(),
                });
            }
            if indices.is_empty() && !host.problems.is_empty() {
                let target = Target {
                    host: host.host.clone(),
                    port,
                };
                let mut r = failed_result(&target, host.problems[0].clone());
                add_problems(&mut r, &host.problems[1..]);
                indices.push(results.len());
                results.push(r);
            }
            mx.push(MxResult {
                host: host.host,
                preference: host.preference,
                cnames: host.cnames,
                addresses: host.addresses,
                address_security: host.address_security,
                dane: host.dane,
                results: indices,
                probes,
                tlsa: host.tlsa,
                tlsa_seen: host.tlsa_seen,
                mta_sts: None,
            });
        }
        let mut d = DomainResult {
            domain: disc.domain,
            resolver: resolver.to_string(),
            dnssec_trusted: trusted,
            mail_hosts: disc.mail_hosts,
            mx_security: disc.mx_security,
            mx,
            tls_rpt: disc.tls_rpt,
            mta_sts: None,
            status: Status::Ok,
            problems: disc.problems,
        };
        rejudge(&mut d, results);
        domains.push(d);
    }
    domains
}

/// The domain's status: the worst of its own findings and of every result of its MX hosts.
/// Called again whenever findings are added (MTA-STS, baseline changes).
pub(super) fn rejudge(d: &mut DomainResult, results: &[LeafResult]) {
    let mut all: Vec<Finding> = d.problems.clone();
    for m in &d.mx {
        for &i in &m.results {
            all.extend(results[i].problems.iter().cloned());
        }
    }
    d.status = Status::of(&all);
}

/// Adds findings to one result of an MX host, most severe first, and re-judges it.
pub(super) fn add_problems(result: &mut LeafResult, extra: &[Finding]) {
    if extra.is_empty() {
        return;
    }
    result.problems.extend(extra.iter().cloned());
    result.problems.sort_by_key(|f| f.severity);
    result.status = Status::of(&result.problems);
}

/// The resolver's address and whether its AD bit is trusted, for the report.
pub(super) fn resolver_label(args: &ProbeArgs, timeout: Duration) -> (String, bool) {
    match resolver(args, timeout) {
        Ok(r) => (r.server.to_string(), r.trusts_ad),
        Err(_) => (String::new(), false),
    }
}

/// The TLSA RRset of each job's server, by group (one group per job).
pub(super) fn group_dane(jobs: &[Job]) -> Vec<Option<Arc<crate::dane::RecordSet>>> {
    jobs.iter().map(|j| j.dane.clone()).collect()
}
