//! Criterion micro-benchmarks for the hot stages of a directory scan: parsing one file,
//! looking up candidate issuers in a large pool, verifying one link, and building one chain.
//!
//! Run with `cargo bench --bench pipeline` (add `-- parse` etc. to pick some). The PKI is
//! made in memory with rcgen: a P-256 and an RSA-2048 intermediate under one root, and
//! leaves of both kinds; the pool is filled with 10,000 leaves the way a fleet scan fills it.

use std::hint::black_box;
use std::path::Path;
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};

use chainfix::cert::Certificate;
use chainfix::chain::{self, check_signature, Budget, Memo};
use chainfix::load::{self, NoPassword};
use chainfix::pool::{Pool, Source};

const RSA_KEY: &str = include_str!("../testdata/keys/rsa2048-a.pem");

struct Pki {
    root: Vec<u8>,
    /// (intermediate DER, leaves it issued, DER)
    branches: Vec<(Vec<u8>, Vec<Vec<u8>>)>,
}

fn ca_params(cn: &str) -> CertificateParams {
    let mut p = CertificateParams::new(Vec::<String>::new()).expect("params");
    p.distinguished_name.push(DnType::CommonName, cn);
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.not_before = rcgen::date_time_ymd(2020, 1, 1);
    p.not_after = rcgen::date_time_ymd(2045, 1, 1);
    p
}

/// One root, a P-256 and an RSA-2048 intermediate, `leaves` leaves under each.
fn pki(leaves: usize) -> Pki {
    let root_key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("key");
    let root_params = ca_params("Bench Root");
    let root = root_params.self_signed(&root_key).expect("root");
    let root_issuer = Issuer::new(root_params, root_key);
    let leaf_key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("key");
    let int_keys = [
        KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("key"),
        KeyPair::from_pem(RSA_KEY).expect("pinned RSA key"),
    ];
    let mut branches = Vec::new();
    for (i, key) in int_keys.into_iter().enumerate() {
        let params = ca_params(&format!("Bench Intermediate {i}"));
        let int = params.signed_by(&key, &root_issuer).expect("intermediate");
        let issuer = Issuer::new(params, key);
        let issued = (0..leaves)
            .map(|n| {
                let name = format!("leaf{i}-{n}.example.test");
                let mut p = CertificateParams::new(vec![name.clone()]).expect("params");
                p.distinguished_name.push(DnType::CommonName, name);
                p.not_before = rcgen::date_time_ymd(2025, 1, 1);
                p.not_after = rcgen::date_time_ymd(2035, 1, 1);
                p.use_authority_key_identifier_extension = true;
                p.signed_by(&leaf_key, &issuer)
                    .expect("leaf")
                    .der()
                    .to_vec()
            })
            .collect();
        branches.push((int.der().to_vec(), issued));
    }
    Pki {
        root: root.der().to_vec(),
        branches,
    }
}

fn parsed(der: &[u8]) -> Arc<Certificate> {
    Arc::new(Certificate::from_der(der).expect("parses"))
}

fn pool_of(pki: &Pki) -> Pool {
    let mut pool = Pool::new();
    for (int, leaves) in &pki.branches {
        pool.add(parsed(int), Source::MozillaRoots);
        for leaf in leaves {
            pool.add(parsed(leaf), Source::MozillaRoots);
        }
    }
    pool.add_anchor(parsed(&pki.root), Source::MozillaRoots);
    pool
}

fn parse(c: &mut Criterion) {
    let pki = pki(1);
    let (rsa_int, rsa_leaves) = &pki.branches[1];
    let leaf = &rsa_leaves[0];
    c.bench_function("parse/der_certificate", |b| {
        b.iter(|| Certificate::from_der(black_box(leaf)))
    });
    let pem = pem::encode_many(&[
        pem::Pem::new("CERTIFICATE", leaf.clone()),
        pem::Pem::new("CERTIFICATE", rsa_int.clone()),
    ]);
    c.bench_function("parse/pem_fullchain_file", |b| {
        b.iter(|| load::parse_bytes(black_box(pem.as_bytes()), Path::new("x.pem"), &NoPassword))
    });
}

fn lookup(c: &mut Criterion) {
    let pki = pki(5_000);
    let pool = pool_of(&pki);
    let leaf = parsed(&pki.branches[0].1[1234]);
    c.bench_function("pool/issuers_of_in_10k", |b| {
        b.iter(|| pool.issuers_of(black_box(&leaf)))
    });
}

fn verify(c: &mut Criterion) {
    let pki = pki(1);
    for (name, (int, leaves)) in ["p256", "rsa2048"].iter().zip(&pki.branches) {
        let (int, leaf) = (parsed(int), parsed(&leaves[0]));
        c.bench_function(&format!("verify/{name}_link"), |b| {
            b.iter(|| check_signature(black_box(&leaf), black_box(&int)))
        });
    }
}

fn build(c: &mut Criterion) {
    let pki = pki(100);
    let budget = Budget::default();
    let model = chainfix::chain::Model {
        now: 1_780_000_000,
        role: chainfix::chain::Role::Server,
    };
    // Cold: every link verified; warm: the CA links and this leaf already checked.
    c.bench_function("chain/build_cold", |b| {
        b.iter_batched(
            || (pool_of(&pki), Memo::default()),
            |(mut pool, memo)| {
                let leaf = pool.add(parsed(&pki.branches[1].1[7]), Source::MozillaRoots);
                chain::search(leaf, &pool, &memo, &budget, &model)
            },
            BatchSize::LargeInput,
        )
    });
    let mut pool = pool_of(&pki);
    let memo = Memo::default();
    let leaf = pool.add(parsed(&pki.branches[1].1[7]), Source::MozillaRoots);
    chain::search(leaf, &pool, &memo, &budget, &model);
    c.bench_function("chain/build_warm", |b| {
        b.iter(|| chain::search(leaf, &pool, &memo, &budget, &model))
    });
    c.bench_function("chain/build_and_choose_warm", |b| {
        b.iter(|| {
            let out = chain::search(leaf, &pool, &memo, &budget, &model);
            chain::choose(&out, &pool, &model, &[])
        })
    });
}

criterion_group!(benches, parse, lookup, verify, build);
criterion_main!(benches);
