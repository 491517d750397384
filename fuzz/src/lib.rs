//! The code each fuzz target runs on one input, shared by the libFuzzer targets in
//! `fuzz/fuzz_targets/` and by the stable replay test `tests/fuzz_replay.rs`, which includes
//! this very file with `#[path = "../fuzz/src/lib.rs"] mod harness;`. One source, so the two
//! can never drift apart: change a target here, never in the `fuzz_targets/*.rs` wrappers.
//!
//! Besides not panicking inside chainfix, each target asserts documented properties (write /
//! read round trips in `load`, path invariants in `chain`), so a broken property is a crash.
//!
//! Keep this file to `std` and `chainfix` only (no libfuzzer-sys, no arbitrary) and free of
//! `unwrap()` (the main crate denies `clippy::unwrap_used` in its tests too).

use std::path::Path;
use std::sync::Arc;

use chainfix::cert::{self, Certificate};
use chainfix::chain::{self, Budget, Memo};
use chainfix::load::{self, KeyFormat, NoPassword, PrivateKey};
use chainfix::pool::{Pool, Source};

/// What a target does with one input.
pub type Target = fn(&[u8]);

/// The fuzz targets, by the name of their directory under `fuzz/corpus/` and
/// `testdata/fuzz/`, with the function that runs one input.
pub const TARGETS: &[(&str, Target)] = &[
    ("load", load),
    ("aia_response", aia_response),
    ("chain", chain),
];

/// Target `load`: content sniffing and every parser the loader uses.
pub fn load(data: &[u8]) {
    if let Ok(contents) = load::parse_bytes(data, Path::new("fuzz"), &NoPassword) {
        for c in &contents.certs {
            touch_cert(c);
        }
        for k in &contents.keys {
            touch_key(k);
        }
    }
    for block in load::pem::blocks(data) {
        if let Ok(der) = &block.der {
            let _ = Certificate::from_der(der);
            let _ = load::pkcs7::certificates(der, 64);
            if let Some(k) = PrivateKey::from_unlabelled_der(der) {
                touch_key(&k);
            }
        }
    }
    let _ = load::pkcs7::looks_like_pkcs7(data);
    let _ = load::pkcs12::looks_like_pfx(data);
    let _ = load::pkcs7::certificates(data, 64);
    if let Some(k) = PrivateKey::from_unlabelled_der(data) {
        touch_key(&k);
    }
    for format in [KeyFormat::Pkcs1, KeyFormat::Pkcs8, KeyFormat::Sec1] {
        if let Ok(k) = PrivateKey::from_der(data, format) {
            touch_key(&k);
        }
    }
    walk_asn1(data, 0);
    if let Ok(c) = Certificate::from_der(data) {
        touch_cert(&c);
    }
}

/// Target `aia_response`: what an AIA caIssuers URL served.
pub fn aia_response(data: &[u8]) {
    if let Ok(certs) = chainfix::fetch::parse_response(data) {
        for c in &certs {
            touch_cert(c);
        }
    }
}

/// Separates the pieces of a `chain` input.
pub const CHAIN_SEPARATOR: &[u8] = b"\n--8<--\n";
/// Most fuzzed certificates taken from one `chain` input.
pub const CHAIN_MAX_CERTS: usize = 48;
/// Most leaves whose paths are built per `chain` input.
pub const CHAIN_MAX_LEAVES: usize = 12;

/// Valid certificates mixed into `chain` inputs (see `fuzz/fixtures/make.sh`), so that path
/// building gets past "no issuer" with real signatures, cross-signs, a 1024-bit root, and
/// MD5 / RSA-PSS links the verifier cannot check.
pub const FIXTURES: &[&[u8]] = &[
    include_bytes!("../fixtures/p256-root.der"),
    include_bytes!("../fixtures/p256-inter.der"),
    include_bytes!("../fixtures/p256-leaf.der"),
    include_bytes!("../fixtures/rsa-root.der"),
    include_bytes!("../fixtures/weak-root.der"),
    include_bytes!("../fixtures/rsa-inter.der"),
    include_bytes!("../fixtures/rsa-inter-cross.der"),
    include_bytes!("../fixtures/rsa-leaf.der"),
    include_bytes!("../fixtures/md5-leaf.der"),
    include_bytes!("../fixtures/pss-leaf.der"),
];

/// Evaluation times: inside the fixtures' validity, the epoch, and the extremes.
const NOWS: [i64; 4] = [1_900_000_000, 0, i64::MIN, i64::MAX];

/// Target `chain`: path building and selection over an arbitrary certificate set.
///
/// Input layout: `[fixtures: u16 LE][anchors: u16 LE][flags: u8]` then pieces joined by
/// [`CHAIN_SEPARATOR`]: the first piece is a host name, the others DER certificates.
/// Bit `i` of `fixtures` adds fixture `i`; bit `i` of `anchors` makes fixture `i` a trust
/// anchor (it is added even when its `fixtures` bit is clear). `flags`: bits 0-1 pick `now`
/// from [`NOWS`]; bit 2 makes every fuzzed certificate an anchor, bit 3 the even-numbered
/// ones; bit 4 adds fixtures after the fuzzed certificates instead of before; bit 5 shrinks
/// the budget (depth 3, 5 signature checks, 20 build calls, 2 paths).
pub fn chain(data: &[u8]) {
    let Some((head, rest)) = data.split_first_chunk::<5>() else {
        return;
    };
    let fixture_bits = u16::from_le_bytes([head[0], head[1]]);
    let anchor_bits = u16::from_le_bytes([head[2], head[3]]);
    let flags = head[4];
    let now = NOWS[usize::from(flags & 3)];
    let mut pieces = split(rest, CHAIN_SEPARATOR);
    let host = String::from_utf8_lossy(pieces.next().unwrap_or_default()).into_owned();

    let mut fuzzed = Vec::new();
    for piece in pieces.take(CHAIN_MAX_CERTS) {
        if let Ok(c) = Certificate::from_der(piece) {
            fuzzed.push(Arc::new(c));
        }
    }

    let mut pool = Pool::new();
    let add_fixtures = |pool: &mut Pool| {
        for (i, der) in FIXTURES.iter().enumerate() {
            let (wanted, anchor) = ((fixture_bits >> i) & 1 == 1, (anchor_bits >> i) & 1 == 1);
            if !(wanted || anchor) {
                continue;
            }
            let Ok(c) = Certificate::from_der(der) else {
                continue;
            };
            let source = Source::Input {
                path: std::path::Path::new("fixture").into(),
                index: i,
            };
            if anchor {
                pool.add_anchor(Arc::new(c), Source::MozillaRoots);
            } else {
                pool.add(Arc::new(c), source);
            }
        }
    };
    if flags & 0x10 == 0 {
        add_fixtures(&mut pool);
    }
    for (i, c) in fuzzed.iter().enumerate() {
        let anchor = flags & 0x04 != 0 || (flags & 0x08 != 0 && i % 2 == 0);
        let source = Source::Input {
            path: std::path::Path::new("fuzz").into(),
            index: i,
        };
        if anchor {
            pool.add_anchor(c.clone(), source);
        } else {
            pool.add(c.clone(), source);
        }
    }
    if flags & 0x10 != 0 {
        add_fixtures(&mut pool);
    }

    let budget = if flags & 0x20 != 0 {
        Budget {
            max_depth: 3,
            max_signature_checks: 5,
            max_build_calls: 20,
            max_paths: 2,
        }
    } else {
        Budget::default()
    };
    let memo = Memo::default();
    let leaves: Vec<usize> = (0..pool.len())
        .filter(|&id| !pool.cert(id).is_ca)
        .take(CHAIN_MAX_LEAVES)
        .collect();
    let model = chain::Model {
        now,
        role: chain::Role::Server,
    };
    for leaf in leaves {
        let outcome = chain::search(leaf, &pool, &memo, &budget, &model);
        check_paths(&outcome, leaf, &pool, &budget);
        let choice = chain::choose(&outcome, &pool, &model, &[leaf]);
        assert_eq!(
            choice.is_some(),
            !(outcome.complete.is_empty() && outcome.partial.is_empty()),
            "choose returns a path exactly when build found one"
        );
        if let Some(choice) = &choice {
            assert!(
                outcome.complete.is_empty() || choice.best.anchored,
                "a partial path was chosen over a complete one"
            );
            let _ = choice.best.ends_at_root(&pool);
            for r in &choice.rejected {
                let _ = r.reason.len();
            }
        }
        for limit in &outcome.limits {
            let _ = limit.describe(&budget);
        }
        let _ = chainfix::hostname::matches(pool.cert(leaf), &host);
    }
    for c in &fuzzed {
        let _ = chainfix::hostname::matches(c, &host);
        let _ = cert::format_time(c.not_after);
        let _ = cert::format_date(c.not_before);
    }
}

/// What the chain module documents about every path `build` returns.
fn check_paths(outcome: &chain::Outcome, leaf: usize, pool: &Pool, budget: &Budget) {
    for (complete, paths) in [(true, &outcome.complete), (false, &outcome.partial)] {
        for p in paths {
            assert!(p.ids.first() == Some(&leaf), "a path starts at its leaf");
            assert!(
                p.ids.len() <= budget.max_depth,
                "path longer than the budget"
            );
            assert_eq!(
                p.anchored, complete,
                "complete paths and only they are anchored"
            );
            if complete {
                assert!(
                    pool.is_anchor(pool.cert(p.tip())),
                    "a complete path ends at an anchor"
                );
            }
            for (i, pair) in p.ids.windows(2).enumerate() {
                let (child, issuer) = (pool.cert(pair[0]), pool.cert(pair[1]));
                assert_eq!(
                    &*child.issuer_key,
                    issuer.subject_key.as_str(),
                    "link {i} chains by name"
                );
            }
            for (i, &a) in p.ids.iter().enumerate() {
                for &b in &p.ids[i + 1..] {
                    let (a, b) = (pool.cert(a), pool.cert(b));
                    assert!(
                        a.subject_key != b.subject_key || a.spki_sha256 != b.spki_sha256,
                        "a (subject, key) pair repeats on a path (a loop)"
                    );
                }
            }
        }
    }
}

/// Splits `data` at every `sep` (like `str::split`, for bytes).
fn split<'a>(data: &'a [u8], sep: &'a [u8]) -> impl Iterator<Item = &'a [u8]> + 'a {
    let mut rest = Some(data);
    std::iter::from_fn(move || {
        let r = rest?;
        match r.windows(sep.len()).position(|w| w == sep) {
            Some(at) => {
                rest = Some(&r[at + sep.len()..]);
                Some(&r[..at])
            }
            None => {
                rest = None;
                Some(r)
            }
        }
    })
}

/// Builds a `chain` input (the inverse of the parsing in [`chain`]); used to make seeds.
pub fn chain_input(fixtures: u16, anchors: u16, flags: u8, host: &str, certs: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&fixtures.to_le_bytes());
    out.extend_from_slice(&anchors.to_le_bytes());
    out.push(flags);
    out.extend_from_slice(host.as_bytes());
    for c in certs {
        out.extend_from_slice(CHAIN_SEPARATOR);
        out.extend_from_slice(c);
    }
    out
}

/// Every accessor a later stage uses on a parsed certificate.
fn touch_cert(c: &Certificate) {
    let _ = (
        c.sha256_hex(),
        c.short_name(),
        c.to_pem(),
        c.key.to_string(),
    );
    let _ = (
        c.is_self_issued(),
        c.valid_at(0),
        c.sig_alg.hash().is_weak(),
    );
    let _ = (
        cert::format_time(c.not_before),
        cert::format_date(c.not_after),
    );
    let _ = chainfix::hostname::matches(c, "mail.example.test");
}

/// A key chainfix writes (`to_pem`, or `pkcs8_der` into a PFX) must load back with the same
/// public key id, or it would no longer match its certificate.
fn touch_key(k: &PrivateKey) {
    let _ = format!("{k:?}");
    let pem = k.to_pem();
    let back = load::parse_bytes(pem.as_bytes(), Path::new("fuzz.key"), &NoPassword)
        .expect("a key written with to_pem loads back");
    assert!(
        back.keys.len() == 1
            && back.keys[0].public_id == k.public_id
            && back.keys[0].format == k.format,
        "to_pem round trip changed the {} key ({:?})",
        k.algorithm,
        k.format
    );
    let pkcs8 = PrivateKey::from_der(&k.pkcs8_der(), KeyFormat::Pkcs8);
    assert!(
        pkcs8.as_ref().is_ok_and(|p| p.public_id == k.public_id),
        "pkcs8_der of a {} key ({:?}) does not load back with the same public key: {:?}",
        k.algorithm,
        k.format,
        pkcs8.map(|p| p.public_id.is_some())
    );
}

/// Walks the whole TLV tree with the crate's own reader (bounded by its nesting cap).
fn walk_asn1(data: &[u8], depth: usize) {
    if depth > chainfix::asn1::MAX_NESTING {
        return;
    }
    let mut rest = data;
    while let Ok((tlv, next)) = chainfix::asn1::read(rest) {
        if tlv.tag & 0x20 != 0 {
            for child in chainfix::asn1::children(tlv.content).flatten() {
                walk_asn1(child.raw, depth + 1);
            }
        }
        if next.len() >= rest.len() {
            break;
        }
        rest = next;
    }
}
