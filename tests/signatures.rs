//! Every signature algorithm real chains carry is verified, never assumed: for each
//! algorithm, a signature made by the real `openssl` verifies with the issuer's key, and is
//! refused with another key of the same type, with a key of another type, and after one byte
//! of the signed part changes. What chainfix cannot verify is reported as such, never as a
//! link (issue: receiver-grade verdicts).

mod common;

use chainfix::cert::Certificate;
use chainfix::chain::{check_signature, SigCheck, Unsupported};
use common::TestEnv;

/// The pinned key at `testdata/keys/NAME.pem`.
fn key(name: &str) -> String {
    format!("{}/testdata/keys/{name}.pem", env!("CARGO_MANIFEST_DIR"))
}

fn parse(pem: &[u8]) -> Certificate {
    let block = ::pem::parse(pem).expect("PEM");
    Certificate::from_der(block.contents()).expect("certificate")
}

/// A self-signed issuer with `issuer_key`, and a child it signed with `digest` and
/// `sigopts`, both made by openssl. Returns (issuer, child).
fn signed(
    env: &TestEnv,
    issuer_key: &str,
    child_key: &str,
    digest: Option<&str>,
    sigopts: &[&str],
) -> (Certificate, Certificate) {
    let digest: Vec<String> = digest.map(|d| format!("-{d}")).into_iter().collect();
    let digest: Vec<&str> = digest.iter().map(String::as_str).collect();
    let sigopt: Vec<&str> = sigopts.iter().flat_map(|o| ["-sigopt", o]).collect();
    let mut args = vec![
        "req",
        "-x509",
        "-new",
        "-key",
        issuer_key,
        "-subj",
        "/CN=Matrix Issuer",
        "-days",
        "3650",
        "-out",
        "issuer.pem",
    ];
    args.extend(&digest);
    args.extend(&sigopt);
    let out = env.openssl(&args);
    assert_eq!(out.status, 0, "{}", out.stderr);
    let out = env.openssl(&[
        "req",
        "-new",
        "-key",
        child_key,
        "-subj",
        "/CN=matrix child",
        "-out",
        "child.csr",
    ]);
    assert_eq!(out.status, 0, "{}", out.stderr);
    let mut args = vec![
        "x509",
        "-req",
        "-in",
        "child.csr",
        "-CA",
        "issuer.pem",
        "-CAkey",
        issuer_key,
        "-set_serial",
        "2",
        "-days",
        "365",
        "-out",
        "child.pem",
    ];
    args.extend(&digest);
    args.extend(&sigopt);
    let out = env.openssl(&args);
    assert_eq!(out.status, 0, "{}", out.stderr);
    (
        parse(&env.read("issuer.pem")),
        parse(&env.read("child.pem")),
    )
}

/// The same child with one byte of its serial number changed (the signature no longer
/// covers what the certificate says).
fn tampered(child: &Certificate) -> Certificate {
    let mut der = child.der.clone();
    // The serial (2) is the first INTEGER of the TBSCertificate: `02 01 02`.
    let at = der
        .windows(3)
        .position(|w| w == [0x02, 0x01, 0x02])
        .expect("serial 2");
    der[at + 2] = 3;
    Certificate::from_der(&der).expect("still a certificate")
}

struct Case {
    issuer: &'static str,
    /// Another key of the same type, which must not verify.
    other: &'static str,
    /// A key of another type, which must not verify either.
    foreign: &'static str,
    digest: Option<&'static str>,
    sigopts: &'static [&'static str],
    /// How chainfix names the algorithm.
    shown: &'static str,
}

const PSS: &str = "rsa_padding_mode:pss";

const CASES: &[Case] = &[
    // RSA PKCS#1 v1.5: ring (SHA-1, SHA-2 at 2048 bits), the rsa crate (MD5, SHA-224).
    Case {
        issuer: "rsa2048-a",
        other: "rsa2048-b",
        foreign: "p256-a",
        digest: Some("sha256"),
        sigopts: &[],
        shown: "sha256WithRSAEncryption",
    },
    Case {
        issuer: "rsa2048-a",
        other: "rsa2048-b",
        foreign: "p256-a",
        digest: Some("sha384"),
        sigopts: &[],
        shown: "sha384WithRSAEncryption",
    },
    Case {
        issuer: "rsa2048-a",
        other: "rsa2048-b",
        foreign: "p256-a",
        digest: Some("sha512"),
        sigopts: &[],
        shown: "sha512WithRSAEncryption",
    },
    Case {
        issuer: "rsa2048-a",
        other: "rsa2048-b",
        foreign: "p256-a",
        digest: Some("sha1"),
        sigopts: &[],
        shown: "sha1WithRSAEncryption",
    },
    Case {
        issuer: "rsa2048-a",
        other: "rsa2048-b",
        foreign: "p256-a",
        digest: Some("sha224"),
        sigopts: &[],
        shown: "sha224WithRSAEncryption",
    },
    Case {
        issuer: "rsa2048-a",
        other: "rsa2048-b",
        foreign: "p256-a",
        digest: Some("md5"),
        sigopts: &[],
        shown: "md5WithRSAEncryption",
    },
    // Small keys: ring's legacy verifier (1024 bits), the rsa crate below that and for
    // SHA-384, which ring verifies only from 2048 bits.
    Case {
        issuer: "rsa1024",
        other: "rsa2048-b",
        foreign: "p256-a",
        digest: Some("sha256"),
        sigopts: &[],
        shown: "sha256WithRSAEncryption",
    },
    Case {
        issuer: "rsa1024",
        other: "rsa2048-b",
        foreign: "p256-a",
        digest: Some("sha384"),
        sigopts: &[],
        shown: "sha384WithRSAEncryption",
    },
    Case {
        issuer: "rsa768",
        other: "rsa1024",
        foreign: "p256-a",
        digest: Some("sha256"),
        sigopts: &[],
        shown: "sha256WithRSAEncryption",
    },
    // RSA-PSS: ring for the RFC 8446 profile (salt = hash length), the rsa crate for any
    // other salt, OpenSSL's default (the maximum) included.
    Case {
        issuer: "rsa2048-a",
        other: "rsa2048-b",
        foreign: "p256-a",
        digest: Some("sha256"),
        sigopts: &[PSS, "rsa_pss_saltlen:digest"],
        shown: "rsassa-pss (SHA-256, salt 32)",
    },
    Case {
        issuer: "rsa2048-a",
        other: "rsa2048-b",
        foreign: "p256-a",
        digest: Some("sha256"),
        sigopts: &[PSS],
        shown: "rsassa-pss (SHA-256, salt 222)",
    },
    Case {
        issuer: "rsa2048-a",
        other: "rsa2048-b",
        foreign: "p256-a",
        digest: Some("sha384"),
        sigopts: &[PSS, "rsa_pss_saltlen:0"],
        shown: "rsassa-pss (SHA-384, salt 0)",
    },
    Case {
        issuer: "rsa2048-a",
        other: "rsa2048-b",
        foreign: "p256-a",
        digest: Some("sha512"),
        sigopts: &[PSS, "rsa_pss_saltlen:max"],
        shown: "rsassa-pss (SHA-512, salt 190)",
    },
    Case {
        issuer: "rsa2048-a",
        other: "rsa2048-b",
        foreign: "p256-a",
        digest: Some("sha1"),
        sigopts: &[PSS, "rsa_pss_saltlen:20"],
        shown: "rsassa-pss (SHA-1, salt 20)",
    },
    // ECDSA: ring on P-256/P-384 with SHA-256/SHA-384, the RustCrypto curves otherwise.
    Case {
        issuer: "p256-a",
        other: "p256-b",
        foreign: "rsa2048-a",
        digest: Some("sha256"),
        sigopts: &[],
        shown: "ecdsa-with-SHA256",
    },
    Case {
        issuer: "p256-a",
        other: "p256-b",
        foreign: "rsa2048-a",
        digest: Some("sha1"),
        sigopts: &[],
        shown: "ecdsa-with-SHA1",
    },
    Case {
        issuer: "p256-a",
        other: "p256-b",
        foreign: "rsa2048-a",
        digest: Some("sha224"),
        sigopts: &[],
        shown: "ecdsa-with-SHA224",
    },
    Case {
        issuer: "p256-a",
        other: "p256-b",
        foreign: "rsa2048-a",
        digest: Some("sha512"),
        sigopts: &[],
        shown: "ecdsa-with-SHA512",
    },
    Case {
        issuer: "p384-a",
        other: "p256-b",
        foreign: "rsa2048-a",
        digest: Some("sha384"),
        sigopts: &[],
        shown: "ecdsa-with-SHA384",
    },
    Case {
        issuer: "p384-a",
        other: "p256-b",
        foreign: "rsa2048-a",
        digest: Some("sha512"),
        sigopts: &[],
        shown: "ecdsa-with-SHA512",
    },
    Case {
        issuer: "p384-a",
        other: "p256-b",
        foreign: "rsa2048-a",
        digest: Some("sha1"),
        sigopts: &[],
        shown: "ecdsa-with-SHA1",
    },
    Case {
        issuer: "p521-a",
        other: "p521-b",
        foreign: "rsa2048-a",
        digest: Some("sha512"),
        sigopts: &[],
        shown: "ecdsa-with-SHA512",
    },
    Case {
        issuer: "p521-a",
        other: "p521-b",
        foreign: "rsa2048-a",
        digest: Some("sha256"),
        sigopts: &[],
        shown: "ecdsa-with-SHA256",
    },
    Case {
        issuer: "ed25519-a",
        other: "ed25519-b",
        foreign: "p256-a",
        digest: None,
        sigopts: &[],
        shown: "Ed25519",
    },
];

#[test]
fn every_algorithm_real_chains_carry_is_verified_and_forgeries_are_refused() {
    for case in CASES {
        let env = TestEnv::new();
        let what = format!("{} {:?} {:?}", case.issuer, case.digest, case.sigopts);
        let (issuer, child) = signed(
            &env,
            &key(case.issuer),
            &key("p256-c"),
            case.digest,
            case.sigopts,
        );
        assert_eq!(child.sig_alg.to_string(), case.shown, "{what}");
        assert_eq!(check_signature(&child, &issuer), SigCheck::Valid, "{what}");
        assert_eq!(
            check_signature(&tampered(&child), &issuer),
            SigCheck::Invalid,
            "tampered: {what}"
        );
        for wrong in [case.other, case.foreign] {
            let env = TestEnv::new();
            let (impostor, _) = signed(&env, &key(wrong), &key("p256-c"), None, &[]);
            assert_eq!(
                check_signature(&child, &impostor),
                SigCheck::Invalid,
                "{what} checked with {wrong}"
            );
        }
    }
}

#[test]
fn rsa_pss_whose_mask_uses_another_hash_is_verified_as_openssl_does() {
    let env = TestEnv::new();
    let (issuer, child) = signed(
        &env,
        &key("rsa2048-a"),
        &key("p256-c"),
        Some("sha256"),
        &[PSS, "rsa_mgf1_md:sha1"],
    );
    assert_eq!(check_signature(&child, &issuer), SigCheck::Valid);
    assert_eq!(
        check_signature(&tampered(&child), &issuer),
        SigCheck::Invalid
    );
}

#[test]
fn ed448_is_unverifiable_never_a_link() {
    let env = TestEnv::new();
    let out = env.openssl(&["genpkey", "-algorithm", "ED448", "-out", "ed448.pem"]);
    assert_eq!(out.status, 0, "{}", out.stderr);
    let (issuer, child) = signed(&env, "ed448.pem", &key("p256-c"), None, &[]);
    assert!(
        matches!(
            check_signature(&child, &issuer),
            SigCheck::Unverifiable(Unsupported::Algorithm(_))
        ),
        "{:?}",
        check_signature(&child, &issuer)
    );
}
