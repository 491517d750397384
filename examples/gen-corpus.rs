//! Benchmark-corpus generator: writes a deterministic tree of certificates for chainfix to audit.
//!
//! ```text
//! cargo run --release --example gen-corpus -- --certs N --out DIR [--seed S]
//! ```
//!
//! The same `N` and seed always give byte-identical files: every key comes from a ChaCha20
//! stream derived from (seed, purpose, index), RSA signatures are PKCS#1 v1.5 (deterministic)
//! and ECDSA signatures use RFC 6979 nonces. Serial numbers and validity dates are fixed, and
//! leaves are signed in parallel (rayon) without any effect on the output.
//!
//! Layout of `DIR` (which must be missing or empty):
//!
//! - `roots.pem`: 5 self-signed roots, "Corpus Root 0".."Corpus Root 4" (0-2 RSA-2048, 3-4 P-256),
//!   valid 2020-01-01..2045-01-01.
//! - `intermediates.pem`: 50 intermediates, "Corpus Intermediate 00".."49"; intermediate `k` is
//!   issued by root `k % 5` and has an RSA-2048 key for even `k`, P-256 for odd `k`.
//! - `tree/<aa>/<bb>/`: the leaves, in two directory levels sized so that a directory holds at
//!   most about 100 files. Leaf `i` is `leafNNNNNN.pem|.der|.crt` ("leaf{i:06}"), CN and SAN
//!   dNSName `leafNNNNNN.example.test`, serverAuth, AKI, and a caIssuers URL
//!   `http://ca.example.test/int-NN.der` naming its issuer, intermediate `(7 i + 3) % 50`. Leaf
//!   keys: P-256 (one per leaf) when `(i / 2)` is even, else one of 8 shared RSA-2048 keys. Good
//!   leaves are valid 2025-01-01..2035-01-01.
//!   File formats by `i % 20`: 0-11 PEM leaf only (60%), 12-16 DER leaf only (25%, `.der` and
//!   `.crt`), 17-19 full chain (15%: PEM leaf then its intermediate) while the certificate
//!   budget lasts; a full-chain slot beyond the budget becomes a PEM leaf-only file, and the
//!   budget is spread evenly over the slots.
//! - `manifest.json`, `leaves.txt`: see below.
//!
//! Certificate count: `N` counts every certificate written (roots, intermediates and every
//! certificate in every tree file). Leaves `L = min(round(0.95 N), N - 55)`, lowered further
//! when needed so that the remaining `N - 55 - L` certificates cover the extra certificates of
//! the broken full-chain files below; what is left goes to good full-chain files. So the
//! corpus holds exactly `N` certificates. `N < 200` is refused.
//!
//! Broken leaves: leaf `i` is broken when `i % 20 == (7 (i / 20)) % 20` (one in every 20,
//! spread over all positions and formats); the b-th broken leaf gets kind `b % 7`:
//!
//! 0. `missing-intermediate`: issued by "Corpus Orphan Intermediate J" (issued by root J, in
//!    roots.pem), which appears nowhere in the corpus. Finding: `missing-intermediate`.
//! 1. `expired`: valid 2019-01-01..2021-01-01. Finding: `expired`.
//! 2. `bad-signature`: a normal leaf whose last signature byte is flipped. chainfix rejects
//!    the intermediate (its key does not verify the signature): `issuer-signature-invalid`,
//!    and `missing-intermediate` because no other issuer is found.
//! 3. `self-signed-leaf`: a self-signed non-CA leaf. Finding: `self-signed-leaf`.
//! 4. `wrong-order`: full-chain PEM with the intermediate before the leaf. `wrong-order`.
//! 5. `untrusted-root`: issued by "Corpus Untrusted Intermediate", issued by "Corpus
//!    Untrusted Root" (not in roots.pem); the file is PEM leaf + intermediate + root.
//!    Finding: `untrusted-root`.
//! 6. `not-yet-valid`: valid 2040-01-01..2044-01-01. Finding: `not-yet-valid`.
//!
//! Broken kinds 0-3 and 6 are leaf-only files (PEM, DER or CRT by `i % 20`).
//!
//! Damaged files (not leaves; chainfix lists them in JSON `errors`): `max(2, round(L / 1000))`
//! files `damagedNNNNNN.pem` (a PEM certificate cut off in the middle of its base64, for
//! even NNNNNN) and `damagedNNNNNN.der` (garbage bytes, for odd NNNNNN), spread over the tree.
//!
//! `manifest.json` (paths relative to `DIR`, `/`-separated, sorted):
//!
//! ```json
//! {"seed": 1, "certs": N, "leaves": L, "files": leaf files + damaged files,
//!  "intermediate_copies": non-leaf certificates inside tree files (= certs - 55 - leaves),
//!  "broken": [{"file": "tree/03/17/leaf000123.pem", "kind": "expired", "codes": ["expired"]}],
//!  "damaged": ["tree/00/04/damaged000000.pem"]}
//! ```
//!
//! `leaves.txt`: every leaf-bearing file path relative to `DIR`, one per line, sorted, for an
//! openssl baseline, run in `DIR`: `xargs -a leaves.txt openssl verify -attime 1780272000
//! -CAfile roots.pem -untrusted intermediates.pem` (xargs because 95,000 paths exceed the
//! argument-list limit; -attime is 2026-06-01, the time the tests pin).

use std::error::Error;
use std::path::{Path, PathBuf};
use std::time::Instant;

use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;
use rayon::prelude::*;
use rcgen::{
    BasicConstraints, CertificateParams, CustomExtension, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, Issuer, KeyUsagePurpose, PublicKeyData, SignatureAlgorithm,
    SigningKey,
};

type BoxError = Box<dyn Error + Send + Sync>;
type Result<T> = std::result::Result<T, BoxError>;

const ROOTS: usize = 5;
const INTERMEDIATES: usize = 50;
const ORPHANS: usize = 5;
const RSA_LEAF_KEYS: usize = 8;
/// Roots and intermediates: the certificates outside the tree.
const CA_CERTS: usize = ROOTS + INTERMEDIATES;
const MIN_CERTS: usize = 200;

/// Purposes for which ChaCha20 streams are derived (the high bits of the stream number).
const STREAM_ROOT_KEY: u64 = 1;
const STREAM_INT_KEY: u64 = 2;
const STREAM_ORPHAN_KEY: u64 = 3;
const STREAM_UNTRUSTED_KEY: u64 = 4;
const STREAM_RSA_LEAF_KEY: u64 = 5;
const STREAM_LEAF_KEY: u64 = 6;
const STREAM_DAMAGED: u64 = 7;

/// id-pe-authorityInfoAccess.
const OID_AIA: &[u64] = &[1, 3, 6, 1, 5, 5, 7, 1, 1];

fn main() {
    if let Err(e) = run() {
        eprintln!("gen-corpus: {e}");
        std::process::exit(2);
    }
}

struct Args {
    certs: usize,
    out: PathBuf,
    seed: u64,
}

const USAGE: &str = "usage: gen-corpus --certs N --out DIR [--seed S]";

fn parse_args() -> Result<Args> {
    let mut certs = None;
    let mut out = None;
    let mut seed = 1u64;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| {
            args.next()
                .ok_or_else(|| format!("{name} needs a value\n{USAGE}"))
        };
        match arg.as_str() {
            "--certs" => {
                let v = value("--certs")?;
                certs = Some(
                    v.parse::<usize>()
                        .map_err(|e| format!("--certs {v}: {e}"))?,
                );
            }
            "--out" => out = Some(PathBuf::from(value("--out")?)),
            "--seed" => {
                let v = value("--seed")?;
                seed = v.parse::<u64>().map_err(|e| format!("--seed {v}: {e}"))?;
            }
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other:?}\n{USAGE}").into()),
        }
    }
    let certs = certs.ok_or_else(|| format!("--certs is required\n{USAGE}"))?;
    let out = out.ok_or_else(|| format!("--out is required\n{USAGE}"))?;
    if certs < MIN_CERTS {
        return Err(format!(
            "--certs {certs}: at least {MIN_CERTS} are needed (55 CA certificates plus enough \
             leaves for one of each broken kind)"
        )
        .into());
    }
    Ok(Args { certs, out, seed })
}

fn run() -> Result<()> {
    let args = parse_args()?;
    let started = Instant::now();
    if args.out.exists() && std::fs::read_dir(&args.out)?.next().is_some() {
        return Err(format!(
            "{} is not empty; remove it or choose another --out",
            args.out.display()
        )
        .into());
    }
    let plan = Plan::new(args.certs);
    let pki = Pki::new(args.seed)?;
    let keys_done = started.elapsed();

    let dir = &args.out;
    std::fs::create_dir_all(dir)?;
    let roots: String = pki.roots.iter().map(|c| pem(&c.der)).collect();
    std::fs::write(dir.join("roots.pem"), roots)?;
    let ints: String = pki.ints.iter().map(|c| pem(&c.der)).collect();
    std::fs::write(dir.join("intermediates.pem"), ints)?;
    for d in 0..plan.dirs {
        std::fs::create_dir_all(dir.join(plan.dir_name(d)))?;
    }

    let written: Vec<Written> = plan
        .leaves
        .par_iter()
        .map(|leaf| write_leaf(dir, &plan, &pki, args.seed, leaf))
        .collect::<Result<Vec<_>>>()?;
    let mut damaged = Vec::new();
    for j in 0..plan.damaged {
        damaged.push(write_damaged(dir, &plan, &pki, args.seed, j)?);
    }

    let tree_certs: usize = written.iter().map(|w| w.certs).sum();
    let certs = CA_CERTS + tree_certs;
    let mut broken: Vec<BrokenEntry> = written
        .iter()
        .filter_map(|w| {
            w.kind.map(|k| BrokenEntry {
                file: w.file.clone(),
                kind: k.name(),
                codes: k.codes().to_vec(),
            })
        })
        .collect();
    broken.sort_by(|a, b| a.file.cmp(&b.file));
    damaged.sort();
    let mut leaf_files: Vec<&str> = written.iter().map(|w| w.file.as_str()).collect();
    leaf_files.sort_unstable();
    let manifest = Manifest {
        seed: args.seed,
        certs,
        leaves: written.len(),
        files: written.len() + damaged.len(),
        intermediate_copies: tree_certs - written.len(),
        broken,
        damaged,
    };
    let mut json = serde_json::to_string_pretty(&manifest)?;
    json.push('\n');
    std::fs::write(dir.join("manifest.json"), json)?;
    let mut list = leaf_files.join("\n");
    list.push('\n');
    std::fs::write(dir.join("leaves.txt"), list)?;

    eprintln!(
        "gen-corpus: {} certificates ({CA_CERTS} CAs, {} leaves, {} copies in chain files) in {} \
         tree files ({} broken, {} damaged) under {}; keys {:.1} s, total {:.1} s",
        manifest.certs,
        manifest.leaves,
        manifest.intermediate_copies,
        manifest.files,
        manifest.broken.len(),
        manifest.damaged.len(),
        dir.display(),
        keys_done.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
    if manifest.certs != args.certs {
        eprintln!(
            "gen-corpus: note: {} certificates requested, {} written",
            args.certs, manifest.certs
        );
    }
    Ok(())
}

#[derive(serde::Serialize)]
struct Manifest {
    seed: u64,
    certs: usize,
    leaves: usize,
    files: usize,
    intermediate_copies: usize,
    broken: Vec<BrokenEntry>,
    damaged: Vec<String>,
}

#[derive(serde::Serialize)]
struct BrokenEntry {
    file: String,
    kind: &'static str,
    codes: Vec<&'static str>,
}

// ---------------------------------------------------------------------------------------------
// The plan: which leaf goes where, in which format, broken how. Cheap and sequential.
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    MissingIntermediate,
    Expired,
    BadSignature,
    SelfSignedLeaf,
    WrongOrder,
    UntrustedRoot,
    NotYetValid,
}

const KINDS: [Kind; 7] = [
    Kind::MissingIntermediate,
    Kind::Expired,
    Kind::BadSignature,
    Kind::SelfSignedLeaf,
    Kind::WrongOrder,
    Kind::UntrustedRoot,
    Kind::NotYetValid,
];

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::MissingIntermediate => "missing-intermediate",
            Kind::Expired => "expired",
            Kind::BadSignature => "bad-signature",
            Kind::SelfSignedLeaf => "self-signed-leaf",
            Kind::WrongOrder => "wrong-order",
            Kind::UntrustedRoot => "untrusted-root",
            Kind::NotYetValid => "not-yet-valid",
        }
    }

    /// The chainfix finding codes the file must produce.
    fn codes(self) -> &'static [&'static str] {
        match self {
            Kind::MissingIntermediate => &["missing-intermediate"],
            Kind::BadSignature => &["missing-intermediate", "issuer-signature-invalid"],
            Kind::Expired => &["expired"],
            Kind::SelfSignedLeaf => &["self-signed-leaf"],
            Kind::WrongOrder => &["wrong-order"],
            Kind::UntrustedRoot => &["untrusted-root"],
            Kind::NotYetValid => &["not-yet-valid"],
        }
    }

    /// Certificates in the file besides the leaf.
    fn extra_certs(self) -> usize {
        match self {
            Kind::WrongOrder => 1,
            Kind::UntrustedRoot => 2,
            _ => 0,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Format {
    Pem,
    Der,
    Crt,
    /// PEM leaf, then its intermediate.
    FullChain,
}

#[derive(Clone, Copy, Debug)]
struct LeafPlan {
    index: usize,
    dir: usize,
    format: Format,
    broken: Option<Kind>,
    /// Ordinal among the broken leaves of the same kind.
    nth_of_kind: usize,
}

struct Plan {
    leaves: Vec<LeafPlan>,
    damaged: usize,
    dirs: usize,
    /// Directories per level.
    fan: usize,
    /// Digits in a directory name.
    dir_width: usize,
    /// Digits in a leaf file number.
    name_width: usize,
}

fn is_broken(i: usize) -> bool {
    i % 20 == (7 * (i / 20)) % 20
}

/// Extra certificates that the broken full-chain files among `leaves` leaves need.
fn broken_extras(leaves: usize) -> usize {
    (0..leaves)
        .filter(|&i| is_broken(i))
        .enumerate()
        .map(|(b, _)| KINDS[b % KINDS.len()].extra_certs())
        .sum()
}

fn slot_format(i: usize) -> Format {
    match i % 20 {
        0..=11 => Format::Pem,
        12 | 14 | 16 => Format::Der,
        13 | 15 => Format::Crt,
        _ => Format::FullChain,
    }
}

impl Plan {
    fn new(n: usize) -> Plan {
        let mut leaves = ((n as f64) * 0.95).round() as usize;
        leaves = leaves.min(n - CA_CERTS);
        while n - CA_CERTS - leaves < broken_extras(leaves) {
            leaves -= 1;
        }
        let copies = n - CA_CERTS - leaves;
        let good_full = copies - broken_extras(leaves);
        let candidates = (0..leaves)
            .filter(|&i| !is_broken(i) && slot_format(i) == Format::FullChain)
            .count();

        let damaged = ((leaves + 500) / 1000).max(2);
        let files = leaves + damaged;
        let per_dir = files.div_ceil(100);
        let mut fan = 1;
        while fan * fan < per_dir {
            fan += 1;
        }
        let dirs = fan * fan;
        let dir_width = (fan - 1).max(1).to_string().len().max(2);
        let name_width = (leaves.max(damaged) - 1).to_string().len().max(6);

        let mut plans = Vec::with_capacity(leaves);
        let mut broken_seen = 0;
        let mut per_kind = [0usize; 7];
        let mut candidate = 0;
        for i in 0..leaves {
            let dir = i * dirs / leaves;
            let mut format = slot_format(i);
            let mut broken = None;
            let mut nth_of_kind = 0;
            if is_broken(i) {
                let k = broken_seen % KINDS.len();
                broken_seen += 1;
                broken = Some(KINDS[k]);
                nth_of_kind = per_kind[k];
                per_kind[k] += 1;
                format = match KINDS[k] {
                    Kind::WrongOrder | Kind::UntrustedRoot => Format::FullChain,
                    _ if format == Format::FullChain => Format::Pem,
                    _ => format,
                };
            } else if format == Format::FullChain {
                // Spread `good_full` full-chain files evenly over the `candidates` slots.
                let take =
                    (candidate + 1) * good_full / candidates > candidate * good_full / candidates;
                candidate += 1;
                if !take {
                    format = Format::Pem;
                }
            }
            plans.push(LeafPlan {
                index: i,
                dir,
                format,
                broken,
                nth_of_kind,
            });
        }
        Plan {
            leaves: plans,
            damaged,
            dirs,
            fan,
            dir_width,
            name_width,
        }
    }

    fn dir_name(&self, d: usize) -> String {
        let w = self.dir_width;
        format!("tree/{:0w$}/{:0w$}", d / self.fan, d % self.fan)
    }

    fn damaged_dir(&self, j: usize) -> usize {
        (2 * j + 1) * self.dirs / (2 * self.damaged)
    }
}

// ---------------------------------------------------------------------------------------------
// Keys and signers
// ---------------------------------------------------------------------------------------------

/// A private key that rcgen can use as subject key and as issuer key, signing deterministically.
enum Key {
    /// ring key pair (PKCS#1 v1.5 SHA-256) and its RSAPublicKey DER.
    Rsa {
        pair: ring::rsa::KeyPair,
        public: Vec<u8>,
    },
    /// P-256 key (RFC 6979 nonces) and its uncompressed SEC1 point.
    P256 {
        key: p256::ecdsa::SigningKey,
        public: Vec<u8>,
    },
}

fn rng_for(seed: u64, purpose: u64, index: usize) -> ChaCha20Rng {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    rng.set_stream((purpose << 48) | index as u64);
    rng
}

impl Key {
    fn rsa(seed: u64, purpose: u64, index: usize) -> Result<Key> {
        use rsa::pkcs8::EncodePrivateKey;
        let mut rng = rng_for(seed, purpose, index);
        let key = rsa::RsaPrivateKey::new(&mut rng, 2048)?;
        let pkcs8 = key.to_pkcs8_der()?;
        let pair = ring::rsa::KeyPair::from_pkcs8(pkcs8.as_bytes())
            .map_err(|e| format!("ring refused a generated RSA key: {e}"))?;
        let public = ring::signature::KeyPair::public_key(&pair)
            .as_ref()
            .to_vec();
        Ok(Key::Rsa { pair, public })
    }

    fn p256(seed: u64, purpose: u64, index: usize) -> Key {
        let mut rng = rng_for(seed, purpose, index);
        loop {
            let mut bytes = [0u8; 32];
            rng.fill_bytes(&mut bytes);
            // Zero or >= the group order is invalid (probability ~2^-32): draw again.
            if let Ok(key) = p256::ecdsa::SigningKey::from_slice(&bytes) {
                let public = key
                    .verifying_key()
                    .to_encoded_point(false)
                    .as_bytes()
                    .to_vec();
                return Key::P256 { key, public };
            }
        }
    }

    fn is_rsa(&self) -> bool {
        matches!(self, Key::Rsa { .. })
    }
}

impl PublicKeyData for Key {
    fn der_bytes(&self) -> &[u8] {
        match self {
            Key::Rsa { public, .. } | Key::P256 { public, .. } => public,
        }
    }

    fn algorithm(&self) -> &'static SignatureAlgorithm {
        match self {
            Key::Rsa { .. } => &rcgen::PKCS_RSA_SHA256,
            Key::P256 { .. } => &rcgen::PKCS_ECDSA_P256_SHA256,
        }
    }
}

impl SigningKey for Key {
    fn sign(&self, msg: &[u8]) -> std::result::Result<Vec<u8>, rcgen::Error> {
        match self {
            Key::Rsa { pair, .. } => {
                let mut sig = vec![0u8; pair.public().modulus_len()];
                // PKCS#1 v1.5 padding does not use the random source.
                pair.sign(
                    &ring::signature::RSA_PKCS1_SHA256,
                    &ring::rand::SystemRandom::new(),
                    msg,
                    &mut sig,
                )
                .map_err(|_| rcgen::Error::RingUnspecified)?;
                Ok(sig)
            }
            Key::P256 { key, .. } => {
                use p256::ecdsa::signature::Signer;
                let sig: p256::ecdsa::Signature = key.sign(msg);
                Ok(sig.to_der().as_bytes().to_vec())
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The CA hierarchy
// ---------------------------------------------------------------------------------------------

struct Ca {
    params: CertificateParams,
    key: Key,
    der: Vec<u8>,
}

struct Pki {
    roots: Vec<Ca>,
    ints: Vec<Ca>,
    orphans: Vec<Ca>,
    untrusted_root: Ca,
    untrusted_int: Ca,
    rsa_leaf_keys: Vec<Key>,
}

fn name(cn: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, cn);
    dn
}

fn ca_params(cn: &str, serial: u64, issued: bool) -> CertificateParams {
    let mut p = CertificateParams::default();
    p.distinguished_name = name(cn);
    p.not_before = rcgen::date_time_ymd(2020, 1, 1);
    p.not_after = rcgen::date_time_ymd(2045, 1, 1);
    p.serial_number = Some(serial.into());
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    p.use_authority_key_identifier_extension = issued;
    p
}

fn root(cn: &str, serial: u64, key: Key) -> Result<Ca> {
    let params = ca_params(cn, serial, false);
    let der = params.self_signed(&key)?.der().to_vec();
    Ok(Ca { params, key, der })
}

fn issued_ca(cn: &str, serial: u64, key: Key, by: &Ca) -> Result<Ca> {
    let params = ca_params(cn, serial, true);
    let issuer = Issuer::from_params(&by.params, &by.key);
    let der = params.signed_by(&key, &issuer)?.der().to_vec();
    Ok(Ca { params, key, der })
}

/// What RSA key generation is needed for, generated in parallel.
#[derive(Clone, Copy)]
enum RsaJob {
    Root(usize),
    Int(usize),
    Leaf(usize),
}

impl Pki {
    fn new(seed: u64) -> Result<Pki> {
        let mut jobs: Vec<RsaJob> = (0..3).map(RsaJob::Root).collect();
        jobs.extend((0..INTERMEDIATES).step_by(2).map(RsaJob::Int));
        jobs.extend((0..RSA_LEAF_KEYS).map(RsaJob::Leaf));
        let mut rsa: Vec<(RsaJob, Key)> = jobs
            .par_iter()
            .map(|&job| {
                let key = match job {
                    RsaJob::Root(i) => Key::rsa(seed, STREAM_ROOT_KEY, i),
                    RsaJob::Int(i) => Key::rsa(seed, STREAM_INT_KEY, i),
                    RsaJob::Leaf(i) => Key::rsa(seed, STREAM_RSA_LEAF_KEY, i),
                }?;
                Ok((job, key))
            })
            .collect::<Result<Vec<_>>>()?;
        let mut take = |want: fn(RsaJob) -> Option<usize>, i: usize| -> Result<Key> {
            let at = rsa
                .iter()
                .position(|(job, _)| want(*job) == Some(i))
                .ok_or("RSA key missing")?;
            Ok(rsa.swap_remove(at).1)
        };
        let mut roots = Vec::new();
        for r in 0..ROOTS {
            let key = if r < 3 {
                take(
                    |j| {
                        if let RsaJob::Root(i) = j {
                            Some(i)
                        } else {
                            None
                        }
                    },
                    r,
                )?
            } else {
                Key::p256(seed, STREAM_ROOT_KEY, r)
            };
            roots.push(root(&format!("Corpus Root {r}"), 0x1000 + r as u64, key)?);
        }
        let mut ints = Vec::new();
        for k in 0..INTERMEDIATES {
            let key = if k % 2 == 0 {
                take(
                    |j| {
                        if let RsaJob::Int(i) = j {
                            Some(i)
                        } else {
                            None
                        }
                    },
                    k,
                )?
            } else {
                Key::p256(seed, STREAM_INT_KEY, k)
            };
            let cn = format!("Corpus Intermediate {k:02}");
            ints.push(issued_ca(&cn, 0x2000 + k as u64, key, &roots[k % ROOTS])?);
        }
        let mut orphans = Vec::new();
        for j in 0..ORPHANS {
            let key = Key::p256(seed, STREAM_ORPHAN_KEY, j);
            let cn = format!("Corpus Orphan Intermediate {j}");
            orphans.push(issued_ca(&cn, 0x3000 + j as u64, key, &roots[j % ROOTS])?);
        }
        let untrusted_root = root(
            "Corpus Untrusted Root",
            0x4000,
            Key::p256(seed, STREAM_UNTRUSTED_KEY, 0),
        )?;
        let untrusted_int = issued_ca(
            "Corpus Untrusted Intermediate",
            0x4001,
            Key::p256(seed, STREAM_UNTRUSTED_KEY, 1),
            &untrusted_root,
        )?;
        let mut rsa_leaf_keys = Vec::new();
        for i in 0..RSA_LEAF_KEYS {
            rsa_leaf_keys.push(take(
                |j| {
                    if let RsaJob::Leaf(i) = j {
                        Some(i)
                    } else {
                        None
                    }
                },
                i,
            )?);
        }
        Ok(Pki {
            roots,
            ints,
            orphans,
            untrusted_root,
            untrusted_int,
            rsa_leaf_keys,
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Leaves and damaged files
// ---------------------------------------------------------------------------------------------

/// An AuthorityInfoAccess extension with one caIssuers URL.
fn aia_extension(url: &str) -> CustomExtension {
    use chainfix::asn1::{encode, OID, SEQUENCE};
    // caIssuers, 1.3.6.1.5.5.7.48.2 (RFC 5280 §4.2.2.1), then the URI as [6] IA5String.
    let mut desc = encode(OID, &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x30, 0x02]);
    desc.extend(encode(0x86, url.as_bytes()));
    CustomExtension::from_oid_content(OID_AIA, encode(SEQUENCE, &encode(SEQUENCE, &desc)))
}

fn pem(der: &[u8]) -> String {
    pem::encode_config(
        &pem::Pem::new("CERTIFICATE", der),
        pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF),
    )
}

/// What writing one leaf file produced.
struct Written {
    file: String,
    certs: usize,
    kind: Option<Kind>,
}

fn write_leaf(dir: &Path, plan: &Plan, pki: &Pki, seed: u64, leaf: &LeafPlan) -> Result<Written> {
    let i = leaf.index;
    let w = plan.name_width;
    let cn = format!("leaf{i:0w$}.example.test");
    let own_p256;
    let key: &Key = if (i / 2) % 2 == 0 {
        own_p256 = Key::p256(seed, STREAM_LEAF_KEY, i);
        &own_p256
    } else {
        &pki.rsa_leaf_keys[(i / 4) % RSA_LEAF_KEYS]
    };
    let int_index = (7 * i + 3) % INTERMEDIATES;
    let (issuer, url) = match leaf.broken {
        Some(Kind::MissingIntermediate) => {
            let j = leaf.nth_of_kind % ORPHANS;
            (
                &pki.orphans[j],
                format!("http://ca.example.test/orphan-{j}.der"),
            )
        }
        Some(Kind::UntrustedRoot) => (
            &pki.untrusted_int,
            "http://ca.example.test/untrusted-int.der".to_string(),
        ),
        _ => (
            &pki.ints[int_index],
            format!("http://ca.example.test/int-{int_index:02}.der"),
        ),
    };

    let mut params = CertificateParams::new(vec![cn.clone()])?;
    params.distinguished_name = name(&cn);
    let (from, to) = match leaf.broken {
        Some(Kind::Expired) => ((2019, 1, 1), (2021, 1, 1)),
        Some(Kind::NotYetValid) => ((2040, 1, 1), (2044, 1, 1)),
        _ => ((2025, 1, 1), (2035, 1, 1)),
    };
    params.not_before = rcgen::date_time_ymd(from.0, from.1, from.2);
    params.not_after = rcgen::date_time_ymd(to.0, to.1, to.2);
    params.serial_number = Some((0x10_0000 + i as u64).into());
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    if key.is_rsa() {
        params.key_usages.push(KeyUsagePurpose::KeyEncipherment);
    }
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];

    let der = if leaf.broken == Some(Kind::SelfSignedLeaf) {
        params.self_signed(key)?.der().to_vec()
    } else {
        params.use_authority_key_identifier_extension = true;
        params.custom_extensions.push(aia_extension(&url));
        let issuer = Issuer::from_params(&issuer.params, &issuer.key);
        let mut der = params.signed_by(key, &issuer)?.der().to_vec();
        if leaf.broken == Some(Kind::BadSignature) {
            let last = der.len() - 1;
            der[last] ^= 0x01;
        }
        der
    };

    let (ext, bytes, certs): (&str, Vec<u8>, usize) = match (leaf.format, leaf.broken) {
        (Format::FullChain, Some(Kind::WrongOrder)) => {
            ("pem", (pem(&issuer.der) + &pem(&der)).into_bytes(), 2)
        }
        (Format::FullChain, Some(Kind::UntrustedRoot)) => (
            "pem",
            (pem(&der) + &pem(&pki.untrusted_int.der) + &pem(&pki.untrusted_root.der)).into_bytes(),
            3,
        ),
        (Format::FullChain, _) => ("pem", (pem(&der) + &pem(&issuer.der)).into_bytes(), 2),
        (Format::Pem, _) => ("pem", pem(&der).into_bytes(), 1),
        (Format::Der, _) => ("der", der, 1),
        (Format::Crt, _) => ("crt", der, 1),
    };
    let file = format!("{}/leaf{i:0w$}.{ext}", plan.dir_name(leaf.dir));
    std::fs::write(dir.join(&file), bytes).map_err(|e| format!("writing {file}: {e}"))?;
    Ok(Written {
        file,
        certs,
        kind: leaf.broken,
    })
}

/// Damaged file `j`: even `j` a PEM certificate cut in the middle of its base64, odd `j`
/// garbage bytes named `.der`. Returns its path relative to the output directory.
fn write_damaged(dir: &Path, plan: &Plan, pki: &Pki, seed: u64, j: usize) -> Result<String> {
    let w = plan.name_width;
    let base = format!("{}/damaged{j:0w$}", plan.dir_name(plan.damaged_dir(j)));
    let (file, bytes) = if j % 2 == 0 {
        let text = pem(&pki.ints[j % INTERMEDIATES].der);
        // About half way: well past the BEGIN line, well before the END line.
        let cut = text.len() / 2;
        (format!("{base}.pem"), text.as_bytes()[..cut].to_vec())
    } else {
        let mut rng = rng_for(seed, STREAM_DAMAGED, j);
        let mut bytes = vec![0u8; 300];
        rng.fill_bytes(&mut bytes);
        // Starts like a DER SEQUENCE claiming 1024 bytes, so it is sniffed as DER and fails.
        bytes[..4].copy_from_slice(&[0x30, 0x82, 0x04, 0x00]);
        (format!("{base}.der"), bytes)
    };
    std::fs::write(dir.join(&file), bytes).map_err(|e| format!("writing {file}: {e}"))?;
    Ok(file)
}
