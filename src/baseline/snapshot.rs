//! The baseline snapshot: what one run saw of each monitored mail domain, per MX host: the
//! leaf's key and certificate, the chain served, the issuing CA, the root, the expiry, and the
//! DANE and MTA-STS verdicts. Built from plain values (fingerprints, verdicts) or from
//! chainfix's own [`Certificate`]s, so every hash is computed one way (`cert/`).
//!
//! Names are kept lower case without a final dot, in sorted maps: the same state always
//! serializes to the same bytes (`file.rs`), so an unchanged baseline is not rewritten.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::cert::{format_date, format_time, hex, Certificate};
use crate::dane::judge::SetVerdict;
use crate::dane::record::{parse_text, Selector, Usage};
use crate::dane::Tlsa;

/// A SHA-256 fingerprint (of a certificate's DER, or of a SubjectPublicKeyInfo), written as
/// 64 lower-case hex digits.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Fingerprint(pub [u8; 32]);

impl Fingerprint {
    /// From 64 hex digits (either case).
    pub fn from_hex(s: &str) -> Option<Fingerprint> {
        if s.len() != 64 || !s.is_ascii() {
            return None;
        }
        let mut out = [0u8; 32];
        for (i, b) in out.iter_mut().enumerate() {
            *b = u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok()?;
        }
        Some(Fingerprint(out))
    }

    pub fn hex(&self) -> String {
        hex(&self.0)
    }

    /// The first 16 hex digits, as messages name a certificate or key.
    pub fn short(&self) -> String {
        hex(&self.0[..8])
    }
}

impl From<[u8; 32]> for Fingerprint {
    fn from(b: [u8; 32]) -> Fingerprint {
        Fingerprint(b)
    }
}

impl TryFrom<String> for Fingerprint {
    type Error = String;
    fn try_from(s: String) -> Result<Fingerprint, String> {
        Fingerprint::from_hex(&s)
            .ok_or_else(|| format!("{s:?} is not a SHA-256 fingerprint (64 hex digits)"))
    }
}

impl From<Fingerprint> for String {
    fn from(f: Fingerprint) -> String {
        f.hex()
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.short())
    }
}

/// Everything recorded: monitored domain -> its state.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    pub domains: BTreeMap<String, DomainState>,
}

/// One mail domain: MX host -> what was seen there.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DomainState {
    pub mx: BTreeMap<String, MxState>,
}

/// One MX host of a domain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MxState {
    /// The chain the host served; `None` when the probe got no certificate (the probe's own
    /// findings say why).
    pub tls: Option<TlsState>,
    pub dane: DaneState,
    pub mta_sts: StsVerdict,
}

/// The certificates one MX host served.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TlsState {
    pub leaf: LeafState,
    /// SHA-256 of each certificate served, leaf first, in the order sent.
    pub served: Vec<Fingerprint>,
    /// The CA that issued the leaf: the certificate above it on the chain chainfix built.
    pub issuer: CaState,
    /// The trust anchor the chain was built to; `None` when it reached none.
    pub root: Option<RootState>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeafState {
    /// SHA-256 of the SubjectPublicKeyInfo: the key, what a `3 1 1` record pins.
    pub spki_sha256: Fingerprint,
    /// SHA-256 of the certificate.
    pub sha256: Fingerprint,
    pub subject: String,
    /// notAfter, unix seconds (RFC 3339 in the file).
    #[serde(with = "rfc3339")]
    pub not_after: i64,
}

/// The issuing CA.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaState {
    /// Its subject (the leaf's issuer name).
    pub subject: String,
    /// SHA-256 of its SubjectPublicKeyInfo; `None` when the issuer was not found.
    pub spki_sha256: Option<Fingerprint>,
}

/// The root a chain was built to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RootState {
    pub sha256: Fingerprint,
    pub subject: String,
}

/// The DANE outcome for one MX host (RFC 7672 §2.2) and the TLSA records seen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DaneState {
    pub verdict: DaneVerdict,
    /// Sorted by presentation form, without repeats.
    pub records: Vec<TlsaSeen>,
}

/// What a sender made of the TLSA records of one MX host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DaneVerdict {
    /// No TLSA records: DANE is not used for this host.
    NotApplicable,
    /// DNSSEC could not be judged this run (a resolver chainfix does not trust for the AD
    /// bit): DANE was not applied.
    Unknown,
    /// TLSA records exist but are not DNSSEC-secure: senders ignore them (RFC 7672 §2.2).
    Insecure,
    /// Only unusable records (RFC 7672 §3.1.3): senders encrypt without authenticating.
    NoUsableRecords,
    /// A usable record matches the served chain.
    Match,
    /// Usable records, none matching (Exchange Online 4.7.323).
    Mismatch,
    /// The DNSSEC answers failed validation (Exchange Online 4.7.324).
    Bogus,
}

impl DaneVerdict {
    /// The verdict of a secure RRset judged by [`crate::dane::judge::judge`].
    pub fn of_set(set: SetVerdict) -> DaneVerdict {
        match set {
            SetVerdict::Authenticated => DaneVerdict::Match,
            SetVerdict::Failed => DaneVerdict::Mismatch,
            SetVerdict::NoUsableRecords => DaneVerdict::NoUsableRecords,
        }
    }

    pub fn describe(self) -> &'static str {
        match self {
            DaneVerdict::NotApplicable => "no TLSA records",
            DaneVerdict::Unknown => "not checked (DNSSEC unknown)",
            DaneVerdict::Insecure => "TLSA records not DNSSEC-signed (ignored)",
            DaneVerdict::NoUsableRecords => "no usable TLSA record",
            DaneVerdict::Match => "match",
            DaneVerdict::Mismatch => "mismatch",
            DaneVerdict::Bogus => "DNSSEC bogus",
        }
    }
}

/// What the MTA-STS policy (RFC 8461) made of one MX host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StsVerdict {
    /// No policy (no `_mta-sts` record, or mode `none`).
    None,
    /// DANE applies to the host, so senders that implement both use DANE for it, not
    /// MTA-STS (RFC 8461 §2: MTA-STS never overrides a failing DANE check).
    NotUsedDane,
    /// Listed in the policy, and the certificate is valid for it.
    Valid,
    /// Fails the policy in mode `testing`: mail still flows (RFC 8461 §5).
    TestingFailed,
    /// Fails the policy in mode `enforce`: senders do not deliver (Exchange Online 4.4.8,
    /// 4.7.5).
    EnforceFailed,
}

impl StsVerdict {
    pub fn describe(self) -> &'static str {
        match self {
            StsVerdict::None => "no policy",
            StsVerdict::NotUsedDane => "not used (DANE applies)",
            StsVerdict::Valid => "listed and valid",
            StsVerdict::TestingFailed => "failed in testing mode",
            StsVerdict::EnforceFailed => "failed in enforce mode",
        }
    }
}

/// A TLSA record seen for the host, and which certificate of the chain its data selected
/// when recorded: what it pins.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "TlsaSeenText", into = "TlsaSeenText")]
pub struct TlsaSeen {
    pub tlsa: Tlsa,
    pub pins: Pin,
}

/// What a recorded TLSA record's data matched (data only: names and dates are the judge's).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Pin {
    /// Nothing in the chain.
    None,
    /// A DANE-EE record (usage 3) matching the leaf: its key (`3 1 x`) or the certificate
    /// itself (`3 0 x`).
    Leaf,
    /// A DANE-TA record (usage 2) matching the issuing CA.
    Issuer,
    /// A DANE-TA record matching a CA higher up (the root or a higher intermediate).
    Chain,
}

impl TlsaSeen {
    /// What `tlsa` pins in `path`, chainfix's chain, leaf first (served or not): usage 3
    /// the leaf only, usage 2 a CA (RFC 7672 §3.1.1, §3.1.2). Matched with
    /// [`Tlsa::matches`], the one matching code path.
    pub fn judged(tlsa: &Tlsa, path: &[&Certificate]) -> TlsaSeen {
        let pins = match tlsa.usage {
            Usage::DaneEe if path.first().is_some_and(|l| tlsa.matches(l)) => Pin::Leaf,
            Usage::DaneTa => match path.iter().skip(1).position(|c| tlsa.matches(c)) {
                Some(0) => Pin::Issuer,
                Some(_) => Pin::Chain,
                None => Pin::None,
            },
            _ => Pin::None,
        };
        TlsaSeen {
            tlsa: tlsa.clone(),
            pins,
        }
    }

    /// A DANE-EE record that pinned the leaf's key (`3 1 x`, RFC 7671 §5.1).
    pub fn pins_leaf_key(&self) -> bool {
        self.pins == Pin::Leaf && self.tlsa.selector == Selector::Spki
    }

    /// A DANE-EE record that pinned the whole leaf certificate (`3 0 x`).
    pub fn pins_leaf_certificate(&self) -> bool {
        self.pins == Pin::Leaf && self.tlsa.selector == Selector::Cert
    }

    /// `3 1 1 0123456789abcdef` with the data cut to 16 hex digits, for messages.
    pub fn short(&self) -> String {
        let rdata = self.tlsa.rdata();
        match rdata.rsplit_once(' ') {
            Some((params, data)) if data.len() > 16 => {
                format!("{params} {}", data.get(..16).unwrap_or(data))
            }
            _ => rdata,
        }
    }
}

/// A recorded TLSA record in the file: `{"record": "3 1 1 HEX", "pins": "leaf"}`.
#[derive(Serialize, Deserialize)]
struct TlsaSeenText {
    record: String,
    pins: Pin,
}

impl TryFrom<TlsaSeenText> for TlsaSeen {
    type Error = String;
    fn try_from(t: TlsaSeenText) -> Result<TlsaSeen, String> {
        let mut out = Vec::new();
        if t.record.contains(['\n', '\r', ';', '(', ')']) {
            return Err(format!("{:?} is not one TLSA record", t.record));
        }
        parse_text(&t.record, "TLSA record", false, &mut out)?;
        match out.pop() {
            Some(r) if out.is_empty() && r.owner.is_none() => Ok(TlsaSeen {
                tlsa: r.tlsa,
                pins: t.pins,
            }),
            _ => Err(format!(
                "{:?} is not one TLSA record (USAGE SELECTOR MATCHING HEX)",
                t.record
            )),
        }
    }
}

impl From<TlsaSeen> for TlsaSeenText {
    fn from(t: TlsaSeen) -> TlsaSeenText {
        TlsaSeenText {
            record: t.tlsa.rdata(),
            pins: t.pins,
        }
    }
}

impl DaneState {
    /// The records sorted by presentation form, repeats dropped, so that the same RRset is
    /// recorded the same way whatever order DNS gave it in.
    pub fn new(verdict: DaneVerdict, mut records: Vec<TlsaSeen>) -> DaneState {
        records.sort_by_cached_key(|r| r.tlsa.rdata());
        records.dedup_by(|a, b| a.tlsa == b.tlsa);
        DaneState { verdict, records }
    }

    /// No TLSA records.
    pub fn none() -> DaneState {
        DaneState::new(DaneVerdict::NotApplicable, Vec::new())
    }
}

impl LeafState {
    pub fn of(leaf: &Certificate) -> LeafState {
        LeafState {
            spki_sha256: Fingerprint(leaf.spki_sha256),
            sha256: Fingerprint(leaf.sha256),
            subject: leaf.subject.clone(),
            not_after: leaf.not_after,
        }
    }

    /// `CN=mx.example.com [sha256 0123456789abcdef, expires 2027-01-31]`.
    pub fn describe(&self) -> String {
        format!(
            "{} [sha256 {}, expires {}]",
            self.subject,
            self.sha256.short(),
            format_date(self.not_after)
        )
    }
}

impl CaState {
    pub fn of(ca: &Certificate) -> CaState {
        CaState {
            subject: ca.subject.clone(),
            spki_sha256: Some(Fingerprint(ca.spki_sha256)),
        }
    }

    /// `C=US, O=Let's Encrypt, CN=R11 [key 0123456789abcdef]`.
    pub fn describe(&self) -> String {
        match &self.spki_sha256 {
            Some(k) => format!("{} [key {}]", self.subject, k.short()),
            None => format!("{} [not found]", self.subject),
        }
    }
}

impl RootState {
    pub fn of(root: &Certificate) -> RootState {
        RootState {
            sha256: Fingerprint(root.sha256),
            subject: root.subject.clone(),
        }
    }

    pub fn describe(&self) -> String {
        format!("{} [sha256 {}]", self.subject, self.sha256.short())
    }
}

impl TlsState {
    /// From a probe's chain: `served` is what the server sent, in the order sent (a leaf
    /// sent out of place is recorded where it was); `path` is the chain chainfix built, from
    /// the leaf (its first certificate) up, ending at the root when `anchored`. `None` without
    /// a leaf.
    pub fn of_chain(
        served: &[&Certificate],
        path: &[&Certificate],
        anchored: bool,
    ) -> Option<TlsState> {
        let leaf = *path.first()?;
        let issuer = match path.get(1) {
            Some(ca) => CaState::of(ca),
            // A self-signed leaf is its own issuer; else the issuer was not found.
            None if leaf.is_self_issued() => CaState::of(leaf),
            None => CaState {
                subject: leaf.issuer.to_string(),
                spki_sha256: None,
            },
        };
        let root = if anchored {
            path.last().map(|r| RootState::of(r))
        } else {
            None
        };
        Some(TlsState {
            leaf: LeafState::of(leaf),
            served: served.iter().map(|c| Fingerprint(c.sha256)).collect(),
            issuer,
            root,
        })
    }
}

impl Snapshot {
    /// Records `state` for `domain` (any case, final dot or not), replacing what was there.
    pub fn insert(&mut self, domain: &str, state: DomainState) {
        self.domains.insert(normalize_name(domain), state);
    }

    pub fn get(&self, domain: &str) -> Option<&DomainState> {
        self.domains.get(&normalize_name(domain))
    }
}

impl DomainState {
    /// Records `state` for MX host `host` (any case, final dot or not).
    pub fn insert(&mut self, host: &str, state: MxState) {
        self.mx.insert(normalize_name(host), state);
    }
}

/// A DNS name as the baseline keys it: lower case, no final dot (RFC 4343: names compare
/// case-insensitively).
pub fn normalize_name(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

/// `not_after` as an RFC 3339 UTC timestamp in the file.
mod rfc3339 {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(t: &i64, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::format_time(*t))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
        let text = String::deserialize(d)?;
        time::OffsetDateTime::parse(&text, &time::format_description::well_known::Rfc3339)
            .map(|t| t.unix_timestamp())
            .map_err(|_| {
                serde::de::Error::custom(format!(
                    "{text:?} is not an RFC 3339 time (2027-01-31T12:00:00Z)"
                ))
            })
    }
}

#[cfg(test)]
mod tests {
    //! The snapshot of a chain records the leaf chainfix found, wherever the server sent it,
    //! and what each TLSA record pins.

    use super::*;
    use crate::baseline::test_pki::{intermediate, key, leaf, root};
    use crate::dane::record::Matching;

    #[test]
    fn the_leaf_the_issuer_and_the_root_come_from_the_built_chain() {
        let r = root("Root X1");
        let i = intermediate("R10", &r);
        let l = leaf("mx.example.com", &key(), &i, 2027, 3);
        // Sent out of order: the leaf is still the leaf; the order sent is kept.
        let t = TlsState::of_chain(&[&i.cert, &l], &[&l, &i.cert, &r.cert], true).expect("chain");
        assert_eq!(t.leaf, LeafState::of(&l));
        assert_eq!(
            t.served,
            [Fingerprint(i.cert.sha256), Fingerprint(l.sha256)]
        );
        assert_eq!(t.issuer, CaState::of(&i.cert));
        assert_eq!(t.root, Some(RootState::of(&r.cert)));
        // The issuer not found: its name from the leaf, no key, no root.
        let t = TlsState::of_chain(&[&l], &[&l], false).expect("chain");
        assert_eq!(t.issuer.subject, "CN=R10");
        assert_eq!((t.issuer.spki_sha256, t.root), (None, None));
        assert!(TlsState::of_chain(&[&l], &[], false).is_none());
    }

    #[test]
    fn records_pin_what_their_usage_can_match() {
        let r = root("Root X1");
        let i = intermediate("R10", &r);
        let l = leaf("mx.example.com", &key(), &i, 2027, 3);
        let path = [&l, &i.cert, &r.cert];
        let pin = |c: &Certificate, u: Usage| {
            TlsaSeen::judged(&Tlsa::of(c, u, Selector::Spki, Matching::Sha256), &path).pins
        };
        assert_eq!(pin(&l, Usage::DaneEe), Pin::Leaf);
        assert_eq!(pin(&i.cert, Usage::DaneTa), Pin::Issuer);
        assert_eq!(pin(&r.cert, Usage::DaneTa), Pin::Chain);
        // DANE-EE never matches a CA, DANE-TA never the leaf (RFC 7672 §3.1).
        assert_eq!(pin(&i.cert, Usage::DaneEe), Pin::None);
        assert_eq!(pin(&l, Usage::DaneTa), Pin::None);
        assert_eq!(pin(&l, Usage::PkixEe), Pin::None);
        let full = TlsaSeen::judged(
            &Tlsa::of(&l, Usage::DaneEe, Selector::Spki, Matching::Full),
            &path,
        );
        assert!(full.pins_leaf_key() && full.short().len() == "3 1 0 ".len() + 16);
    }

    #[test]
    fn fingerprints_and_names() {
        let h = "00112233445566778899AABBCCDDEEFF00112233445566778899aabbccddeeff";
        let f = Fingerprint::from_hex(h).expect("hex");
        assert_eq!(f.hex(), h.to_ascii_lowercase());
        assert_eq!(f.short(), "0011223344556677");
        assert!(Fingerprint::from_hex(&h[..62]).is_none());
        assert!(Fingerprint::from_hex(&h.replace('0', "g")).is_none());
        assert!(Fingerprint::from_hex(&format!("é{}", &h[2..])).is_none());
        assert_eq!(normalize_name("MX.Example.COM."), "mx.example.com");
    }
}
