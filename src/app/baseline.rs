//! `probe --domain --baseline FILE`: reads the recorded state before probing, turns what the
//! run saw of each domain into a [`Snapshot`] (per MX host: the chain of its first address
//! that served one, the DANE and MTA-STS verdicts), adds the changes ([`baseline::plan`]) to
//! the results before the statuses are judged, and writes the file after the report.

use std::path::Path;

use super::analyse::Analysis;
use super::domain::{add_problems, rejudge};
use super::AppError;
use crate::baseline::{
    self, file, DaneState, DaneVerdict, DomainState, MxState, Snapshot, StsVerdict, TlsState,
    TlsaSeen,
};
use crate::cert::Certificate;
use crate::domain::{self, DomainResult, MailHosts, MxResult};
use crate::mtasts::judge::MxVerdict;
use crate::mtasts::Mode;
use crate::report::LeafResult;

/// The recorded state: `None` without `--baseline` or when the file does not exist yet. A file
/// that cannot be used stops the run (exit 2; `--nagios` UNKNOWN), naming it.
pub(super) fn read(path: Option<&Path>) -> Result<Option<Snapshot>, AppError> {
    match path {
        Some(p) => file::read(p).map_err(|e| AppError(e.to_string())),
        None => Ok(None),
    }
}

/// This run's state of every domain whose MX lookup succeeded, and for each MX host (by domain and MX index) the result
/// its state was taken from, where the changes about it go.
pub(super) struct Seen {
    pub snapshot: Snapshot,
    source: Vec<Vec<Option<usize>>>,
}

/// What the run saw. `group_of[i]` is the analysis group of result `i`.
pub(super) fn seen(
    domains: &[DomainResult],
    analysis: &Analysis,
    group_of: &[usize],
    results: &[LeafResult],
) -> Seen {
    let mut snapshot = Snapshot::default();
    let mut source = Vec::new();
    for d in domains {
        // Without an MX answer nothing is known: not compared, and the recorded state stays
        // (recording "no MX host" would erase it, or report every host as new next time).
        if d.mail_hosts == MailHosts::LookupFailed {
            source.push(Vec::new());
            continue;
        }
        let mut state = DomainState::default();
        let mut sources = Vec::new();
        let mode = d.mta_sts.as_ref().and_then(|v| v.mode);
        for mx in &d.mx {
            let (tls, path, from) = chain_of(mx, analysis, group_of);
            let dane = dane_state(mx, path.as_deref(), from.map(|i| &results[i]));
            let mta_sts = sts_verdict(mx, mode);
            state.insert(&mx.host, MxState { tls, dane, mta_sts });
            sources.push(from.or_else(|| mx.results.first().copied()));
        }
        snapshot.insert(&d.domain, state);
        source.push(sources);
    }
    Seen { snapshot, source }
}

/// The chain of the first address of `mx` that served a leaf: its state, chainfix's path (leaf
/// first) and the result it belongs to.
fn chain_of<'a>(
    mx: &MxResult,
    analysis: &'a Analysis,
    group_of: &[usize],
) -> (
    Option<TlsState>,
    Option<Vec<&'a Certificate>>,
    Option<usize>,
) {
    for p in &mx.probes {
        let Some(c) = analysis.first_case_of(group_of[p.result]) else {
            continue;
        };
        let pool = &analysis.pool;
        let served: Vec<&Certificate> = c
            .built
            .presented
            .iter()
            .map(|&id| pool.cert(id).as_ref())
            .collect();
        let path: Vec<&Certificate> = c
            .choice
            .best
            .ids
            .iter()
            .map(|&id| pool.cert(id).as_ref())
            .collect();
        if let Some(tls) = TlsState::of_chain(&served, &path, c.choice.best.anchored) {
            return (Some(tls), Some(path), Some(p.result));
        }
    }
    (None, None, None)
}

/// The DANE outcome for the host (RFC 7672 §2.2) with the TLSA records seen and what each
/// pins in the chain recorded.
fn dane_state(
    mx: &MxResult,
    path: Option<&[&Certificate]>,
    result: Option<&LeafResult>,
) -> DaneState {
    let records: Vec<TlsaSeen> = mx
        .tlsa_seen
        .iter()
        .map(|t| TlsaSeen::judged(t, path.unwrap_or(&[])))
        .collect();
    let verdict = match mx.dane.state {
        domain::DaneState::Applies => match result.and_then(|r| r.dane.as_ref()) {
            Some(view) => DaneVerdict::of_set(view.presented),
            // No chain to judge: the records are in force, the verdict unknown.
            None => DaneVerdict::Unknown,
        },
        domain::DaneState::Insecure if !records.is_empty() => DaneVerdict::Insecure,
        domain::DaneState::Bogus => DaneVerdict::Bogus,
        domain::DaneState::DnssecUnknown => DaneVerdict::Unknown,
        domain::DaneState::Insecure | domain::DaneState::NoTlsa | domain::DaneState::NotChecked => {
            return DaneState::none()
        }
    };
    DaneState::new(verdict, records)
}

/// What MTA-STS made of the host: a failure counts by the policy's mode (RFC 8461 §5); mode
/// `none`, or no policy, is none.
fn sts_verdict(mx: &MxResult, mode: Option<Mode>) -> StsVerdict {
    match (mx.mta_sts.as_ref().map(|v| v.verdict), mode) {
        (Some(MxVerdict::Dane), _) => StsVerdict::NotUsedDane,
        (Some(MxVerdict::Pass), Some(Mode::Enforce | Mode::Testing)) => StsVerdict::Valid,
        (Some(MxVerdict::Fail), Some(Mode::Enforce)) => StsVerdict::EnforceFailed,
        (Some(MxVerdict::Fail), Some(Mode::Testing)) => StsVerdict::TestingFailed,
        _ => StsVerdict::None,
    }
}

/// Compares with the recorded state and adds each change to the result of the MX host it is
/// about (the domain's own findings when the host has no result, or is gone), then judges
/// the statuses again. Returns the state to write after the report, if any.
pub(super) fn report_changes(
    recorded: Option<&Snapshot>,
    seen: &Seen,
    update: bool,
    domains: &mut [DomainResult],
    results: &mut [LeafResult],
) -> Option<Snapshot> {
    let plan = baseline::plan(recorded, &seen.snapshot, update);
    for change in plan.changes {
        let Some(k) = domains
            .iter()
            .position(|d| baseline::snapshot::normalize_name(&d.domain) == change.domain)
        else {
            continue;
        };
        let host = change.mx.as_deref();
        let target = host.and_then(|h| {
            domains[k]
                .mx
                .iter()
                .position(|m| baseline::snapshot::normalize_name(&m.host) == h)
                .and_then(|m| seen.source.get(k)?.get(m).copied().flatten())
        });
        match target {
            Some(i) => add_problems(&mut results[i], &[change.finding]),
            None => domains[k].problems.push(change.finding),
        }
    }
    for d in domains.iter_mut() {
        d.problems.sort_by_key(|f| f.severity);
        rejudge(d, results);
    }
    plan.write
}

/// Writes the state after the report (atomic; an unchanged file is left alone).
pub(super) fn write(path: &Path, state: &Snapshot) -> Result<(), AppError> {
    file::write(path, state)
        .map(|_| ())
        .map_err(|e| AppError(format!("cannot write the baseline {}: {e}", path.display())))
}

#[cfg(test)]
mod tests {
    //! How the domain stage's states and MTA-STS's verdicts are recorded.

    use super::*;
    use crate::domain::DaneView;
    use crate::mtasts::judge::MxView;

    fn mx(
        state: domain::DaneState,
        tlsa: Vec<crate::dane::Tlsa>,
        sts: Option<MxVerdict>,
    ) -> MxResult {
        MxResult {
            host: "mx.example.com".into(),
            preference: Some(10),
            cnames: Vec::new(),
            addresses: Vec::new(),
            address_security: None,
            dane: DaneView {
                state,
                tlsa_name: None,
                tlsa_security: None,
                records: Vec::new(),
            },
            results: Vec::new(),
            probes: Vec::new(),
            tlsa: None,
            tlsa_seen: tlsa,
            mta_sts: sts.map(|verdict| MxView {
                host: "mx.example.com".into(),
                verdict,
                listed: None,
                certificate_valid: None,
                dane: false,
            }),
        }
    }

    #[test]
    fn sts_failures_are_recorded_by_mode() {
        use MxVerdict::*;
        let v = |verdict, mode| sts_verdict(&mx(domain::DaneState::NoTlsa, vec![], verdict), mode);
        assert_eq!(v(Some(Pass), Some(Mode::Enforce)), StsVerdict::Valid);
        assert_eq!(
            v(Some(Fail), Some(Mode::Enforce)),
            StsVerdict::EnforceFailed
        );
        assert_eq!(
            v(Some(Fail), Some(Mode::Testing)),
            StsVerdict::TestingFailed
        );
        assert_eq!(v(Some(Fail), Some(Mode::None)), StsVerdict::None);
        assert_eq!(v(Some(Dane), Some(Mode::Enforce)), StsVerdict::NotUsedDane);
        assert_eq!(v(Some(NotChecked), Some(Mode::Enforce)), StsVerdict::None);
        assert_eq!(v(Some(NoPolicy), None), StsVerdict::None);
        assert_eq!(v(None, None), StsVerdict::None);
    }

    #[test]
    fn ignored_tlsa_records_are_recorded_with_why() {
        use domain::DaneState as S;
        let tlsa = crate::dane::Tlsa::from_fields(3, 1, 1, vec![0; 32]);
        let d = |state, records: Vec<crate::dane::Tlsa>| {
            dane_state(&mx(state, records, None), None, None)
        };
        assert_eq!(
            d(S::Insecure, vec![tlsa.clone()]).verdict,
            DaneVerdict::Insecure
        );
        assert_eq!(d(S::Insecure, vec![]), DaneState::none());
        assert_eq!(d(S::NoTlsa, vec![]), DaneState::none());
        assert_eq!(d(S::Bogus, vec![tlsa.clone()]).verdict, DaneVerdict::Bogus);
        let unknown = d(S::DnssecUnknown, vec![tlsa.clone()]);
        assert_eq!(unknown.verdict, DaneVerdict::Unknown);
        assert_eq!(unknown.records[0].tlsa, tlsa);
        // DANE applies, but no chain was judged this run.
        assert_eq!(d(S::Applies, vec![tlsa]).verdict, DaneVerdict::Unknown);
    }
}
