//! Which TLSA records to publish for a chain: `3 1 1` of the server's key (DANE-EE, SPKI,
//! SHA-256: survives a renewal that keeps the key), and `2 1 1` of the issuing CA's key
//! (DANE-TA: survives a renewal with a new key from the same issuer). RFC 7671 §5.1 and
//! §5.2 recommend selector 1 over 0 because a re-issued certificate (a cross-sign, a new
//! validity period) keeps its key but not its DER.
//!
//! A CA that picks its issuing intermediate at random at each renewal breaks a `2 1 1` of
//! one intermediate sooner or later. For those CAs ([`RANDOM_ISSUERS`]), every intermediate
//! of the same key type that the CA may issue from is listed.

use serde::Serialize;

use super::record::{Matching, Selector, Tlsa, Usage};
use crate::cert::{hex, Certificate, KeyKind};

/// One intermediate of a CA that picks its issuer at random.
pub struct Issuer {
    pub ca: &'static str,
    pub name: &'static str,
    /// The key type of the subscriber certificates it signs (its own key type).
    pub ecdsa: bool,
    /// SHA-256 of its SubjectPublicKeyInfo: the data of its `2 1 1` record. Cross-signed
    /// copies (E5 by ISRG Root X1 and by X2) share it.
    pub spki_sha256: &'static str,
}

/// Let's Encrypt's 2024 generation of intermediates, all signed 2024-03-13, valid to
/// 2027-03-12. Source: the CA's published hierarchy, <https://letsencrypt.org/certificates/>
/// ("Chains of Trust", the version last updated 2026-01-08): subscriber certificates with an
/// RSA key come from one of the RSA intermediates, those with an ECDSA key from one of the
/// ECDSA ones, picked at random. The hashes were computed from the certificates in CCADB
/// (`ccadb-all-certificate-pems`, crt.sh CCADB data 64b3f6e) with `openssl x509 -pubkey |
/// openssl pkey -pubin -outform DER | sha256sum`. Both the intermediates in active rotation
/// and those held in reserve are listed: the CA moves between them without notice, which is
/// the breakage this table exists to avoid. The Gen Y intermediates (YE1-YE3, YR1-YR3, signed
/// 2025-09-03 by Root YE/YR, roots not yet in the trust stores as of that page) are not
/// listed: no subscriber certificate came from them then.
pub const RANDOM_ISSUERS: &[Issuer] = &[
    le(
        "R10",
        false,
        "2bbad93ab5c79279ec121507f272cbe0c6647a3aae52e22f388afab426b4adba",
    ),
    le(
        "R11",
        false,
        "6ddac18698f7f1f7e1c69b9bce420d974ac6f94ca8b2c761701623f99c767dc7",
    ),
    le(
        "R12",
        false,
        "919c0df7a787b597ed056ace654b1de9c0387acf349f73734a4fd7b58cf612a4",
    ),
    le(
        "R13",
        false,
        "025490860b498ab73c6a12f27a49ad5fe230fafe3ac8f6112c9b7d0aad46941d",
    ),
    le(
        "R14",
        false,
        "f1647a5ee3efac54c892e930584fe47979b7acd1c76c1271bca1c5076d869888",
    ),
    le(
        "E5",
        true,
        "3586d4ecf070578cbd27aedce20b964e48bc149faeb9dad72f46b857869172b8",
    ),
    le(
        "E6",
        true,
        "d016e1fe311948aca64f2de44ce86c9a51ca041df6103bb52a88eb3f761f57d7",
    ),
    le(
        "E7",
        true,
        "cbbc559b44d524d6a132bdac672744da3407f12aae5d5f722c5f6c7913871c75",
    ),
    le(
        "E8",
        true,
        "885bf0572252c6741dc9a52f5044487fef2a93b811cdedfad7624cc283b7cdd5",
    ),
    le(
        "E9",
        true,
        "f1440a9b76e1e41e53a4cb461329bf6337b419726be513e42e19f1c691c5d4b2",
    ),
];

const fn le(name: &'static str, ecdsa: bool, spki_sha256: &'static str) -> Issuer {
    Issuer {
        ca: "Let's Encrypt",
        name,
        ecdsa,
        spki_sha256,
    }
}

/// More records than this in one RRset is more than some senders process: V. Dukhovni's DANE
/// survey notes (https://stats.dnssec-tools.org/) report Microsoft's outbound DANE handling
/// about 12 TLSA records per MX host.
pub const MAX_RRSET: usize = 12;

/// A record to publish, and why (plain ASCII, no certificate text).
#[derive(Debug, Clone, Serialize)]
pub struct Suggestion {
    #[serde(skip)]
    pub tlsa: Tlsa,
    /// `3 1 1 HEX`.
    pub record: String,
    pub why: String,
}

/// The records to publish for a chain whose leaf is `leaf` and whose issuing CA (the
/// certificate directly above the leaf) is `issuer`.
pub fn recommend(leaf: &Certificate, issuer: Option<&Certificate>) -> Vec<Suggestion> {
    let mut out = vec![suggest(
        Tlsa::of(leaf, Usage::DaneEe, Selector::Spki, Matching::Sha256),
        "DANE-EE of the server's key: stays valid across renewals that keep the key".into(),
    )];
    let Some(issuer) = issuer else {
        return out;
    };
    let issuer_hash = hex(&issuer.spki_sha256);
    if let Some(known) = RANDOM_ISSUERS.iter().find(|i| i.spki_sha256 == issuer_hash) {
        let ecdsa = matches!(issuer.key, KeyKind::Ec { .. });
        for i in RANDOM_ISSUERS
            .iter()
            .filter(|i| i.ca == known.ca && i.ecdsa == ecdsa)
        {
            out.push(Suggestion {
                tlsa: Tlsa {
                    usage: Usage::DaneTa,
                    selector: Selector::Spki,
                    matching: Matching::Sha256,
                    data: from_table_hex(i.spki_sha256),
                },
                record: format!("2 1 1 {}", i.spki_sha256),
                why: if i.spki_sha256 == issuer_hash {
                    format!(
                        "DANE-TA of {} {} (the current issuer): {} picks the issuing \
                         intermediate at random at each renewal, so every one of its {} \
                         intermediates is listed",
                        i.ca,
                        i.name,
                        i.ca,
                        if ecdsa { "ECDSA" } else { "RSA" },
                    )
                } else {
                    format!(
                        "DANE-TA of {} {}, which may issue the next renewal",
                        i.ca, i.name
                    )
                },
            });
        }
    } else {
        out.push(suggest(
            Tlsa::of(issuer, Usage::DaneTa, Selector::Spki, Matching::Sha256),
            "DANE-TA of the issuing CA's key: stays valid across renewals with a new key from \
             the same intermediate (optional; the 3 1 1 record alone is enough)"
                .into(),
        ));
    }
    out
}

fn suggest(tlsa: Tlsa, why: String) -> Suggestion {
    Suggestion {
        record: tlsa.rdata(),
        tlsa,
        why,
    }
}

/// The table's lower-case hex as bytes (checked by a unit test).
fn from_table_hex(h: &str) -> Vec<u8> {
    (0..h.len() / 2)
        .filter_map(|i| u8::from_str_radix(h.get(2 * i..2 * i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    //! The table is well-formed: 32-byte hashes, one per intermediate.

    use super::*;

    #[test]
    fn the_table_holds_sha256_hashes() {
        for i in RANDOM_ISSUERS {
            assert_eq!(from_table_hex(i.spki_sha256).len(), 32, "{}", i.name);
            assert_eq!(hex(&from_table_hex(i.spki_sha256)), i.spki_sha256);
        }
        let mut names: Vec<_> = RANDOM_ISSUERS.iter().map(|i| i.name).collect();
        names.dedup();
        assert_eq!(names.len(), RANDOM_ISSUERS.len());
    }
}
