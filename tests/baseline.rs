//! The monitoring baseline on Let's Encrypt's real renewals of letsencrypt.org (from
//! `../shared/realworld`): the April 2025 certificate (issued by E5) replaced by the August
//! 2025 one (E6, a new key). Recorded in a file, read back and compared, as `probe --domain
//! --baseline FILE` does; the DANE verdicts come from chainfix's own judge. A routine
//! renewal is information; the same renewal under a `3 1 1` pin of the old key, or a
//! `2 1 1` pin of E5 alone, is an error.

mod common;

use chainfix::baseline::{
    self, file, DaneState, DaneVerdict, DomainState, MxState, Snapshot, StsVerdict, TlsState,
    TlsaSeen,
};
use chainfix::cert::Certificate;
use chainfix::dane::judge::{judge, Served};
use chainfix::dane::record::{Matching, Selector, Usage};
use chainfix::dane::Tlsa;
use chainfix::diagnose::{Code, Severity};

const DOMAIN: &str = "letsencrypt.org";
/// The host the certificates name (the test treats it as the MX host: DANE-TA checks the name).
const MX: &str = "letsencrypt.org";

fn cert(rel: &str) -> Certificate {
    let path = common::shared_path("realworld").join(rel);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let pem = pem::parse(text).expect("PEM");
    Certificate::from_der(pem.contents()).expect("certificate")
}

/// What a run saw: the served leaf and intermediate, the chain to ISRG Root X1 (E5 and E6 as served, cross-signed by X1), and the
/// TLSA records (judged by chainfix at `now`) as if DNSSEC-secure.
fn seen(
    leaf: &Certificate,
    int: &Certificate,
    root: &Certificate,
    records: &[Tlsa],
    now: i64,
) -> Snapshot {
    let path = [leaf, int, root];
    let tls = TlsState::of_chain(&[leaf, int], &path, true).expect("chain");
    let dane = if records.is_empty() {
        DaneState::none()
    } else {
        let refs: Vec<&Tlsa> = records.iter().collect();
        let (_, set) = judge(
            &refs,
            &Served {
                certs: vec![leaf, int],
                unserved: vec![root],
                host: Some(MX),
                now,
            },
        );
        DaneState::new(
            DaneVerdict::of_set(set),
            records.iter().map(|t| TlsaSeen::judged(t, &path)).collect(),
        )
    };
    let mut domain = DomainState::default();
    domain.insert(
        MX,
        MxState {
            tls: Some(tls),
            dane,
            mta_sts: StsVerdict::None,
        },
    );
    let mut s = Snapshot::default();
    s.insert(DOMAIN, domain);
    s
}

/// Records `old` in a file, reads it back and compares `new` with it.
fn compare(old: &Snapshot, new: &Snapshot) -> Vec<(Code, Severity, String)> {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("partners.json");
    assert!(file::read(&path).expect("no file yet").is_none());
    file::write(&path, old).expect("write");
    let recorded = file::read(&path).expect("read").expect("written");
    assert_eq!(&recorded, old);
    baseline::diff(&recorded, new)
        .into_iter()
        .map(|c| (c.finding.code, c.finding.severity, c.finding.message))
        .collect()
}

#[test]
#[cfg_attr(
    not(have_realworld),
    ignore = "needs ../shared/realworld (or CHAINFIX_SHARED_DIR)"
)]
fn a_lets_encrypt_renewal_is_routine_unless_the_old_key_or_issuer_is_pinned() {
    let root = cert("certs/root_ISRG_Root_X1_96bcec06.pem");
    let (leaf_apr, e5) = (
        cert("certs/leaf_letsencrypt.org_11400413.pem"),
        cert("certs/ca_E5_5dfdb3cf.pem"),
    );
    let (leaf_aug, e6) = (
        cert("certs/leaf_letsencrypt.org_8589023b.pem"),
        cert("certs/ca_E6_76e9e288.pem"),
    );
    assert_eq!(&*e5.issuer, root.subject.as_str());
    assert_eq!(&*e6.issuer, root.subject.as_str());
    assert_ne!(leaf_apr.spki_sha256, leaf_aug.spki_sha256, "a new key");
    // 2025-05-01 and 2025-09-01: inside each leaf's validity.
    let (may, sep) = (1_746_057_600, 1_756_684_800);

    // Routine: new key, E5 -> E6 (Let's Encrypt's rotation), same root, no TLSA records.
    let got = compare(
        &seen(&leaf_apr, &e5, &root, &[], may),
        &seen(&leaf_aug, &e6, &root, &[], sep),
    );
    assert_eq!(got.len(), 1, "{got:#?}");
    let (code, severity, message) = &got[0];
    assert_eq!(
        (*code, *severity),
        (Code::BaselineKeyChanged, Severity::Info)
    );
    assert!(message.contains("Let's Encrypt rotates"), "{message}");
    assert!(
        message.contains("CN=E5") && message.contains("CN=E6"),
        "{message}"
    );

    // The same renewal while the partner's 3 1 1 still names the April key: DANE senders
    // defer mail; one error, naming the record.
    let pin = Tlsa::of(&leaf_apr, Usage::DaneEe, Selector::Spki, Matching::Sha256);
    let old = seen(&leaf_apr, &e5, &root, std::slice::from_ref(&pin), may);
    assert_eq!(old.domains[DOMAIN].mx[MX].dane.verdict, DaneVerdict::Match);
    let new = seen(&leaf_aug, &e6, &root, std::slice::from_ref(&pin), sep);
    assert_eq!(
        new.domains[DOMAIN].mx[MX].dane.verdict,
        DaneVerdict::Mismatch
    );
    let got = compare(&old, &new);
    assert_eq!(got.len(), 1, "{got:#?}");
    let (code, severity, message) = &got[0];
    assert_eq!(
        (*code, *severity),
        (Code::BaselinePinnedKeyChanged, Severity::Error)
    );
    assert!(message.contains(&pin.rdata()[..22]), "{message}");

    // A 2 1 1 of E5 alone: the next renewal came from E6, and the pin breaks.
    let ta = Tlsa::of(&e5, Usage::DaneTa, Selector::Spki, Matching::Sha256);
    let got = compare(
        &seen(&leaf_apr, &e5, &root, std::slice::from_ref(&ta), may),
        &seen(&leaf_aug, &e6, &root, std::slice::from_ref(&ta), sep),
    );
    assert_eq!(got.len(), 1, "{got:#?}");
    let (code, severity, message) = &got[0];
    assert_eq!(
        (*code, *severity),
        (Code::BaselinePinnedIssuerChanged, Severity::Error)
    );
    assert!(message.contains("at random"), "{message}");

    // The records chainfix publishes (3 1 1 and every E5-E9 as 2 1 1) survive it: the new
    // chain matches, and the key change is information again.
    let records: Vec<Tlsa> = chainfix::dane::publish::recommend(&leaf_apr, Some(&e5))
        .into_iter()
        .map(|s| s.tlsa)
        .collect();
    let got = compare(
        &seen(&leaf_apr, &e5, &root, &records, may),
        &seen(&leaf_aug, &e6, &root, &records, sep),
    );
    assert_eq!(got.len(), 1, "{got:#?}");
    assert_eq!(
        (got[0].0, got[0].1),
        (Code::BaselineKeyChanged, Severity::Info)
    );
}
