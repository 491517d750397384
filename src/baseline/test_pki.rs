//! Tests only: small rcgen PKIs for the baseline's tests (roots, intermediates, leaves whose
//! key a renewal keeps or replaces), parsed into chainfix's own certificates, and the snapshot
//! of one domain built from them the way the probe's wiring builds it.

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};

use super::snapshot::{DaneState, DomainState, MxState, Snapshot, StsVerdict, TlsState};
use crate::cert::Certificate;

pub struct Ca {
    params: CertificateParams,
    key: KeyPair,
    pub cert: Certificate,
}

pub fn key() -> KeyPair {
    KeyPair::generate().expect("key")
}

fn ca_params(cn: &str) -> CertificateParams {
    let mut p = CertificateParams::new(Vec::<String>::new()).expect("params");
    p.distinguished_name.push(DnType::CommonName, cn);
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p
}

pub fn root(cn: &str) -> Ca {
    let key = key();
    let params = ca_params(cn);
    let der = params.self_signed(&key).expect("sign").der().to_vec();
    Ca {
        params,
        key,
        cert: Certificate::from_der(&der).expect("parse"),
    }
}

/// An intermediate named `cn` under `by`, with a fresh key.
pub fn intermediate(cn: &str, by: &Ca) -> Ca {
    let key = key();
    let params = ca_params(cn);
    let der = params
        .signed_by(&key, &Issuer::from_params(&by.params, &by.key))
        .expect("sign")
        .der()
        .to_vec();
    Ca {
        params,
        key,
        cert: Certificate::from_der(&der).expect("parse"),
    }
}

/// A leaf for `host` with `key`, issued by `by`, expiring on `year`-`month`-01.
pub fn leaf(host: &str, key: &KeyPair, by: &Ca, year: i32, month: u8) -> Certificate {
    let mut p = CertificateParams::new(vec![host.to_string()]).expect("params");
    p.distinguished_name.push(DnType::CommonName, host);
    p.is_ca = IsCa::ExplicitNoCa;
    p.not_before = rcgen::date_time_ymd(2025, 1, 1);
    p.not_after = rcgen::date_time_ymd(year, month, 1);
    let der = p
        .signed_by(key, &Issuer::from_params(&by.params, &by.key))
        .expect("sign")
        .der()
        .to_vec();
    Certificate::from_der(&der).expect("parse")
}

/// The leaf and intermediate served, the chain built to `root` (trusted).
pub fn tls(leaf: &Certificate, int: &Ca, root: &Ca) -> TlsState {
    TlsState::of_chain(&[leaf, &int.cert], &[leaf, &int.cert, &root.cert], true).expect("a chain")
}

pub fn mx(tls: Option<TlsState>, dane: DaneState, sts: StsVerdict) -> MxState {
    MxState {
        tls,
        dane,
        mta_sts: sts,
    }
}

/// One domain with these MX hosts.
pub fn snapshot(domain: &str, hosts: Vec<(&str, MxState)>) -> Snapshot {
    let mut d = DomainState::default();
    for (h, m) in hosts {
        d.insert(h, m);
    }
    let mut s = Snapshot::default();
    s.insert(domain, d);
    s
}
