//! Receivers side by side (issue 17): every leaf's chosen chain is judged by chainfix's
//! OpenSSL 3 model and by rustls-webpki; a difference is labelled with the documented policy
//! behind it, or shown as unexplained. Also the host name rules that go with it (IDNA, a match
//! only the CN gives) and a CA certificate given without any end-entity certificate.

mod common;

use std::path::PathBuf;
use std::process::Command;

use common::*;
use serde_json::Value;

/// Evaluation time for the rcgen PKI (every certificate of `common::Chain` is valid then).
const AT: &str = "2026-06-01T00:00:00Z";

/// The pinned key at `testdata/keys/NAME.pem`.
fn key(name: &str) -> String {
    format!("{}/testdata/keys/{name}.pem", env!("CARGO_MANIFEST_DIR"))
}

/// `chainfix <sub>` offline, trusting only `trust/root.pem`; pinned to `at` when given (the
/// certificates openssl makes are valid from today, so their runs read the clock).
fn cf(env: &TestEnv, sub: &str, at: Option<&str>) -> Command {
    let mut cmd = env.cmd();
    cmd.arg(sub)
        .args(["--no-default-roots", "--offline", "--cache-dir"])
        .arg(env.path("cache"))
        .arg("--roots")
        .arg(env.path("trust/root.pem"));
    if let Some(at) = at {
        cmd.args(["--at", at]);
    }
    cmd
}

fn only_result(out: &Output) -> Value {
    let json = out.json();
    let results = json["results"].as_array().expect("a results array").clone();
    assert_eq!(results.len(), 1, "{json:#}");
    results[0].clone()
}

/// (receiver, verdict, reason) of each entry of `receivers`.
fn verdicts(result: &Value) -> Vec<(String, String, Option<String>)> {
    result["receivers"]
        .as_array()
        .unwrap_or_else(|| panic!("no receivers array in {result:#}"))
        .iter()
        .map(|r| {
            (
                r["receiver"].as_str().unwrap_or_default().to_string(),
                r["verdict"].as_str().unwrap_or_default().to_string(),
                r["reason"].as_str().map(str::to_string),
            )
        })
        .collect()
}

fn codes(result: &Value) -> Vec<String> {
    result["problems"]
        .as_array()
        .expect("a problems array")
        .iter()
        .map(|p| p["code"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// With openssl: `trust/root.pem`, self-signed with `root_key`, and `leaf.pem`, signed by it
/// with `digest`, for mail.example.test, with `leaf_ext` (an openssl extension section).
fn openssl_pki(env: &TestEnv, root_key: &str, digest: &str, leaf_ext: &str) -> PathBuf {
    let root_key = key(root_key);
    let digest = format!("-{digest}");
    std::fs::create_dir_all(env.path("trust")).expect("mkdir trust");
    let out = env.openssl(&[
        "req",
        "-x509",
        "-new",
        "-key",
        &root_key,
        "-subj",
        "/CN=Receivers Test Root",
        "-days",
        "3650",
        &digest,
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
        "-out",
        "trust/root.pem",
    ]);
    assert_eq!(out.status, 0, "{}", out.stderr);
    let out = env.openssl(&[
        "req",
        "-new",
        "-key",
        &key("p256-a"),
        "-subj",
        "/CN=mail.example.test",
        "-out",
        "leaf.csr",
    ]);
    assert_eq!(out.status, 0, "{}", out.stderr);
    env.write("leaf.ext", leaf_ext);
    let out = env.openssl(&[
        "x509",
        "-req",
        "-in",
        "leaf.csr",
        "-CA",
        "trust/root.pem",
        "-CAkey",
        &root_key,
        "-set_serial",
        "7",
        "-days",
        "365",
        &digest,
        "-extfile",
        "leaf.ext",
        "-out",
        "leaf.pem",
    ]);
    assert_eq!(out.status, 0, "{}", out.stderr);
    env.path("leaf.pem")
}

const SERVER_LEAF: &str = "basicConstraints=critical,CA:FALSE\n\
keyUsage=critical,digitalSignature\n\
extendedKeyUsage=serverAuth\n\
subjectAltName=DNS:mail.example.test\n";

#[test]
fn both_receivers_accept_a_sound_chain() {
    let env = TestEnv::new();
    let chain = Chain::new(&[]);
    env.write("trust/root.pem", &chain.root.pem);
    let file = env.write("in/fullchain.pem", pem_bundle(&[&chain.leaf, &chain.int]));
    let out = run(cf(&env, "inspect", Some(AT))
        .args(["--json", "--host", "mail.example.test"])
        .arg(&file));
    out.assert_status(0);
    let r = only_result(&out);
    assert_eq!(r["subject_kind"], "end-entity");
    assert_eq!(
        verdicts(&r),
        vec![
            ("openssl3".into(), "accepted".into(), None),
            ("rustls-webpki".into(), "accepted".into(), None)
        ]
    );
    assert!(r.get("receivers_disagreement").is_none(), "{r:#}");
    assert!(!codes(&r).contains(&"receivers-disagree".to_string()));

    let out = run(cf(&env, "inspect", Some(AT))
        .args(["--host", "mail.example.test"])
        .arg(&file));
    out.assert_status(0);
    assert!(
        out.stdout.contains(
            "receivers: OpenSSL 3 (Postfix; Exim on RHEL): accepted — rustls/webpki: accepted"
        ),
        "{}",
        out.stdout
    );
}

/// A P-521 root: OpenSSL 3 verifies its ECDSA signature, webpki with the ring provider does
/// not. Postfix accepts; a rustls-based receiver refuses, for a documented reason.
#[test]
#[cfg_attr(not(have_openssl), ignore = "needs the openssl command")]
fn only_openssl_accepts_a_p521_issuer_and_the_policy_says_why() {
    let env = TestEnv::new();
    let leaf = openssl_pki(&env, "p521-a", "sha512", SERVER_LEAF);
    let out = run(cf(&env, "inspect", None)
        .args(["--json", "--host", "mail.example.test"])
        .arg(&leaf));
    // A warning, not an error: the chain is what Postfix accepts.
    out.assert_status(0);
    let r = only_result(&out);
    let v = verdicts(&r);
    assert_eq!(v[0], ("openssl3".into(), "accepted".into(), None), "{r:#}");
    assert_eq!(v[1].0, "rustls-webpki");
    assert_eq!(v[1].1, "rejected", "{r:#}");
    assert_eq!(
        v[1].2.as_deref(),
        Some("UnsupportedSignatureAlgorithm"),
        "{r:#}"
    );
    assert_eq!(r["receivers_disagreement"]["policy"], "p521", "{r:#}");
    assert!(codes(&r).contains(&"receivers-disagree".to_string()));

    let out = run(cf(&env, "inspect", None)
        .args(["--host", "mail.example.test"])
        .arg(&leaf));
    assert!(
        out.stdout.contains(
            "receivers: OpenSSL 3 (Postfix; Exim on RHEL): accepted — rustls/webpki: rejected: \
             UnsupportedSignatureAlgorithm"
        ) && out
            .stdout
            .contains("policy p521: webpki with the ring provider does not verify P-521"),
        "{}",
        out.stdout
    );
}

/// SHA-1 is refused by both: OpenSSL 3 at security level 2 (chainfix's model) as well as
/// webpki, so a SHA-1 link is an error and no disagreement.
#[test]
#[cfg_attr(not(have_openssl), ignore = "needs the openssl command")]
fn a_sha1_link_is_refused_by_both_receivers() {
    let env = TestEnv::new();
    let leaf = openssl_pki(&env, "rsa2048-a", "sha1", SERVER_LEAF);
    let out = run(cf(&env, "inspect", None).arg("--json").arg(&leaf));
    out.assert_status(1);
    let r = only_result(&out);
    let v = verdicts(&r);
    assert_eq!(
        v[0],
        (
            "openssl3".into(),
            "rejected".into(),
            Some("weak-signature".into())
        )
    );
    assert_eq!(v[1].1, "rejected", "{r:#}");
    assert!(r.get("receivers_disagreement").is_none(), "{r:#}");
}

/// A leaf whose extendedKeyUsage is Microsoft Server Gated Crypto alone: OpenSSL's TLS server
/// purpose accepts SGC (`XKU_SGC`), webpki requires serverAuth: a documented difference,
/// labelled `sgc-eku`, a warning for the senders it fails for.
#[test]
#[cfg_attr(not(have_openssl), ignore = "needs the openssl command")]
fn a_server_gated_crypto_leaf_is_a_labelled_disagreement() {
    let env = TestEnv::new();
    let ext = "basicConstraints=critical,CA:FALSE\n\
               keyUsage=critical,digitalSignature\n\
               extendedKeyUsage=1.3.6.1.4.1.311.10.3.3\n\
               subjectAltName=DNS:mail.example.test\n";
    let leaf = openssl_pki(&env, "p256-b", "sha256", ext);
    let out = run(cf(&env, "inspect", None).arg("--json").arg(&leaf));
    out.assert_status(0);
    let r = only_result(&out);
    let v = verdicts(&r);
    assert_eq!(v[0].1, "accepted", "{r:#}");
    assert_eq!(v[1].2.as_deref(), Some("RequiredEkuNotFound"), "{r:#}");
    assert_eq!(r["receivers_disagreement"]["policy"], "sgc-eku", "{r:#}");
    let finding = r["problems"]
        .as_array()
        .expect("problems")
        .iter()
        .find(|p| p["code"] == "receivers-disagree")
        .unwrap_or_else(|| panic!("no receivers-disagree finding: {r:#}"))
        .clone();
    assert_eq!(finding["severity"], "warning");
    assert!(
        finding["message"]
            .as_str()
            .is_some_and(|m| m.contains("Server Gated Crypto")),
        "{finding:#}"
    );
    let out = run(cf(&env, "inspect", None).arg(&leaf));
    assert!(out.stdout.contains("policy sgc-eku: "), "{}", out.stdout);
}

/// `--host bücher.example` against a SAN `xn--bcher-kva.example`: the host is mapped to
/// A-labels (UTS 46) before matching, by chainfix and for webpki.
#[test]
fn a_unicode_host_matches_its_a_label_san() {
    let env = TestEnv::new();
    let chain = Chain::new(&[]);
    env.write("trust/root.pem", &chain.root.pem);
    let leaf = issue(
        &Spec::leaf("xn--bcher-kva.example", Alg::P256(1)),
        &chain.int,
    );
    let file = env.write("in/fullchain.pem", pem_bundle(&[&leaf, &chain.int]));
    let out = run(cf(&env, "inspect", Some(AT))
        .args(["--json", "--host", "Bücher.example"])
        .arg(&file));
    out.assert_status(0);
    let r = only_result(&out);
    assert!(codes(&r).is_empty(), "{r:#}");
    assert!(verdicts(&r).iter().all(|v| v.1 == "accepted"), "{r:#}");

    let out = run(cf(&env, "inspect", Some(AT))
        .args(["--json", "--host", "bucher.example"])
        .arg(&file));
    out.assert_status(1);
    assert!(codes(&only_result(&out)).contains(&"hostname-mismatch".to_string()));
}

/// No subjectAltName: the host matches only the CN. OpenSSL (and so Postfix) accepts; the
/// report warns, naming the receivers that ignore the CN, and webpki's refusal is labelled.
#[test]
fn a_match_only_the_cn_gives_is_a_warning() {
    let env = TestEnv::new();
    let chain = Chain::new(&[]);
    env.write("trust/root.pem", &chain.root.pem);
    let leaf = issue(
        &Spec::leaf("mail.example.test", Alg::P256(1)).dns(&[]),
        &chain.int,
    );
    let file = env.write("in/fullchain.pem", pem_bundle(&[&leaf, &chain.int]));
    let out = run(cf(&env, "inspect", Some(AT))
        .args(["--json", "--host", "mail.example.test"])
        .arg(&file));
    out.assert_status(0);
    let r = only_result(&out);
    let cn_only = r["problems"]
        .as_array()
        .expect("problems")
        .iter()
        .find(|p| p["code"] == "hostname-cn-only")
        .unwrap_or_else(|| panic!("no hostname-cn-only: {r:#}"))
        .clone();
    assert_eq!(cn_only["severity"], "warning");
    let message = cn_only["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("rustls/webpki") && message.contains("Go"),
        "{message}"
    );
    assert!(!codes(&r).contains(&"hostname-mismatch".to_string()));
    let v = verdicts(&r);
    assert_eq!(v[0].1, "accepted");
    assert_eq!(v[1].2.as_deref(), Some("CertNotValidForName"), "{r:#}");
    assert_eq!(
        r["receivers_disagreement"]["policy"], "cn-fallback",
        "{r:#}"
    );
}

/// A lone intermediate, and a lone root, given to `inspect` and `repair`: the CA certificate
/// is the subject, its path is judged as a CA's, and `repair` writes only the chain bundle.
#[test]
fn a_ca_certificate_alone_is_judged_and_bundled() {
    let env = TestEnv::new();
    let chain = Chain::new(&[]);
    env.write("trust/root.pem", &chain.root.pem);
    let int = env.write("in/intermediate.pem", &chain.int.pem);
    let root = env.write("in/root.pem", &chain.root.pem);
    for (input, chain_len) in [(&int, 2), (&root, 1)] {
        let out = run(cf(&env, "inspect", Some(AT)).arg("--json").arg(input));
        out.assert_status(0);
        let r = only_result(&out);
        assert_eq!(r["subject_kind"], "ca", "{r:#}");
        assert_eq!(r["status"], "ok", "{r:#}");
        assert_eq!(
            r["chain"].as_array().map(Vec::len),
            Some(chain_len),
            "{r:#}"
        );
        assert!(r.get("receivers").is_none(), "{r:#}");

        let out = run(cf(&env, "inspect", Some(AT)).arg(input));
        out.assert_status(0);
        assert!(out.stdout.contains("a CA certificate"), "{}", out.stdout);
        // Named the subject, not a leaf.
        assert!(
            out.stdout.contains("\n  subject: ") && out.stdout.contains("(subject, a CA)"),
            "{}",
            out.stdout
        );
        assert!(!out.stdout.contains("\n  leaf: "), "{}", out.stdout);

        let dir = env.path(&format!("out-{chain_len}"));
        let out = run(cf(&env, "repair", Some(AT))
            .arg("--json")
            .arg("--out")
            .arg(&dir)
            .arg(input));
        out.assert_status(0);
        let r = only_result(&out);
        assert!(
            r["bundle_only"]
                .as_str()
                .is_some_and(|m| m.contains("only the chain bundle")),
            "{r:#}"
        );
        assert!(!codes(&r).contains(&"key-not-found".to_string()), "{r:#}");
        let mut written: Vec<String> = std::fs::read_dir(&dir)
            .expect("the output directory")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .filter(|n| !n.starts_with('.'))
            .collect();
        written.sort();
        assert_eq!(
            written,
            ["README.txt", "cert.pem", "chain.pem", "fullchain.pem"],
            "no MTA snippets, no key files"
        );
        let full = std::fs::read_to_string(dir.join("fullchain.pem")).expect("fullchain.pem");
        assert!(full.starts_with(&*std::fs::read_to_string(input).expect("input")));

        let dir = env.path(&format!("human-{chain_len}"));
        let out = run(cf(&env, "repair", Some(AT))
            .arg("--out")
            .arg(&dir)
            .arg(input));
        out.assert_status(0);
        assert!(
            out.stdout.contains("only the chain bundle:"),
            "{}",
            out.stdout
        );
    }
}

/// The policy table is one table: every entry of `src/receivers/policy.rs` is a row of the
/// README's table, under its code.
#[test]
fn every_policy_is_documented_in_the_readme() {
    let readme = std::fs::read_to_string(repo_path("README.md")).expect("README.md");
    for p in chainfix::receivers::Policy::ALL {
        let row = format!("| `{}` |", p.as_str());
        assert!(readme.contains(&row), "README.md has no row {row}");
        assert!(!p.description().is_empty() && !p.citation().is_empty());
    }
}
