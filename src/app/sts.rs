//! `probe --domain`, MTA-STS (RFC 8461): fetches each domain's policy (the record and the
//! policy host's addresses come from the domain's DNS session, [`crate::domain::StsDns`]),
//! then judges every MX host with [`crate::mtasts::assess`] from the chains the probes judged,
//! and adds the findings to the domain and to the MX hosts' results.

use std::path::Path;
use std::time::{Duration, Instant};

use super::domain::{add_problems, rejudge};
use super::AppError;
use crate::diagnose::{Code, Finding};
use crate::domain::{DaneState, Discovery, DomainResult};
use crate::load;
use crate::mtasts::{self, Certificate, FetchError, Fetched, Input, Mx};
use crate::report::LeafResult;

/// One domain's policy fetch: `None` when none was attempted.
pub(super) type Fetch = Option<Result<Fetched, FetchError>>;

/// The certificates of `--sts-roots` (PEM or DER), as DER. An unreadable file, or one without
/// a certificate, stops the run (exit 2), naming it.
pub(super) fn extra_roots(file: Option<&Path>) -> Result<Vec<Vec<u8>>, AppError> {
    let Some(file) = file else {
        return Ok(Vec::new());
    };
    let loaded = load::load_paths(&[file.to_path_buf()], &load::NoPassword);
    if let Some(p) = loaded.problems.iter().find(|p| p.fatal) {
        return Err(AppError(format!("--sts-roots {p}")));
    }
    if loaded.certs.is_empty() {
        return Err(AppError(format!(
            "--sts-roots {}: no certificate in it",
            file.display()
        )));
    }
    Ok(loaded.certs.iter().map(|c| c.cert.der.clone()).collect())
}

/// Fetches the policy of each domain, in order, where a sender would (a record), or where the
/// policy host has an address (to notice a policy nobody announces). Each fetch has its own
/// deadline: `--timeout`, at most RFC 8461 §3.3's suggested minute.
pub(super) fn fetch_all(
    discoveries: &[Discovery],
    port: u16,
    extra_roots: &[Vec<u8>],
    timeout: Duration,
    now: i64,
) -> Vec<Fetch> {
    discoveries
        .iter()
        .map(|d| {
            d.sts.fetch_wanted().then(|| {
                mtasts::fetch(&mtasts::Request {
                    domain: &d.domain,
                    addrs: &d.sts.policy_addrs,
                    port,
                    extra_roots,
                    deadline: Instant::now() + timeout.min(mtasts::fetch::SUGGESTED_TIMEOUT),
                    now,
                })
            })
        })
        .collect()
}

/// Judges each domain's MX hosts against its policy: the domain's findings (record, policy)
/// join its own, each MX host's join its results (per address: the chain each one served),
/// and the statuses are judged again. `records` are the domains' MTA-STS records, in order.
pub(super) fn apply(
    domains: &mut [DomainResult],
    records: &[mtasts::RecordOutcome],
    fetches: &[Fetch],
    results: &mut [LeafResult],
    port: u16,
) {
    for ((d, record), fetch) in domains.iter_mut().zip(records).zip(fetches) {
        // Each address's chain, judged once: (its result, the MX host's index, the verdict).
        let verdicts: Vec<(usize, usize, Certificate)> =
            d.mx.iter()
                .enumerate()
                .flat_map(|(k, m)| m.probes.iter().map(move |p| (k, p)))
                .map(|(k, p)| {
                    let v = address_verdict(&results[p.result], !p.served.is_empty());
                    (p.result, k, v)
                })
                .collect();
        let mx = |k: usize, certificate: Certificate| Mx {
            host: &d.mx[k].host,
            certificate,
            dane: d.mx[k].dane.state == DaneState::Applies,
        };
        // Per MX host, for the view: its addresses' verdicts combined.
        let hosts: Vec<Mx<'_>> = (0..d.mx.len())
            .map(|k| {
                let of_host = verdicts.iter().filter(|v| v.1 == k).map(|v| v.2.clone());
                mx(k, combined(of_host))
            })
            .collect();
        // Per address, for the findings: each result says what its own chain did.
        let addresses: Vec<Mx<'_>> = verdicts.iter().map(|v| mx(v.1, v.2.clone())).collect();
        let input = |mxs| Input {
            domain: &d.domain,
            port,
            record,
            fetch: fetch.as_ref(),
            mxs,
        };
        let by_host = mtasts::assess(&input(&hosts));
        let by_address = mtasts::assess(&input(&addresses));
        for (v, outcome) in verdicts.iter().zip(&by_address.mx) {
            add_problems(&mut results[v.0], &outcome.findings);
        }
        for (k, m) in d.mx.iter_mut().enumerate() {
            // A host with nothing probed (no address): its result carries the host's verdict.
            if m.probes.is_empty() {
                for &i in &m.results {
                    add_problems(&mut results[i], &by_host.mx[k].findings);
                }
            }
            m.mta_sts = Some(by_host.mx[k].view.clone());
        }
        d.problems.extend(by_host.findings);
        d.mta_sts = Some(by_host.view);
        rejudge(d, results);
    }
}

/// What MTA-STS makes of the chain one address served (RFC 8461 §4.2): judged from the
/// findings on that chain, which was analysed with the MX host as the name to carry. The
/// findings an MX host's DNS gave its results (DNSSEC, lookups) are not about the chain.
fn address_verdict(result: &LeafResult, captured: bool) -> Certificate {
    if !captured {
        return Certificate::NotChecked;
    }
    let chain: Vec<Finding> = result
        .problems
        .iter()
        .filter(|f| !from_dns(f.code))
        .cloned()
        .collect();
    Certificate::from_findings(&chain)
}

/// Codes the domain stage gives an MX host's results (`domain/discover.rs`).
fn from_dns(code: Code) -> bool {
    matches!(
        code,
        Code::DnssecBogus
            | Code::DnssecUnknown
            | Code::DnsLookupFailed
            | Code::MxNoAddress
            | Code::AddressNotProbed
            | Code::DaneTlsaInsecure
    )
}

/// An MX host's verdict from its addresses': invalid when any address's chain is (a sender may
/// reach that one), valid when some were checked and none failed.
fn combined(verdicts: impl Iterator<Item = Certificate>) -> Certificate {
    let mut out = Certificate::NotChecked;
    for v in verdicts {
        out = match (out, v) {
            (Certificate::Invalid(mut a), Certificate::Invalid(b)) => {
                a.extend(b);
                a.sort();
                a.dedup();
                Certificate::Invalid(a)
            }
            (Certificate::Invalid(a), _) | (_, Certificate::Invalid(a)) => Certificate::Invalid(a),
            (Certificate::Valid, _) | (_, Certificate::Valid) => Certificate::Valid,
            (Certificate::NotChecked, Certificate::NotChecked) => Certificate::NotChecked,
        };
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_failing_address_fails_the_host() {
        use Certificate::*;
        let all = |v: Vec<Certificate>| combined(v.into_iter());
        assert_eq!(all(vec![]), NotChecked);
        assert_eq!(all(vec![NotChecked, Valid]), Valid);
        assert_eq!(
            all(vec![Valid, Invalid(vec![Code::UntrustedRoot]), NotChecked]),
            Invalid(vec![Code::UntrustedRoot])
        );
        let mut both = vec![Code::HostnameMismatch, Code::UntrustedRoot];
        both.sort();
        assert_eq!(
            all(vec![
                Invalid(vec![Code::UntrustedRoot]),
                Invalid(vec![Code::HostnameMismatch, Code::UntrustedRoot])
            ]),
            Invalid(both)
        );
    }
}
