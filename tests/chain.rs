//! Offline integration tests of chain building, path selection, diagnosis and repair output.
//!
//! Every test runs the real binary with `--offline --no-default-roots --at <pinned time>` on a
//! generated PKI (or on the real certificates in `../shared/realworld`) and asserts what a
//! sysadmin sees: the chain in the JSON report, finding codes and severities, the status, the
//! exit code and the files written.

mod common;

use std::collections::BTreeSet;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::SystemTime;

use common::{
    issue, key_pem, pem_bundle, run, self_signed, Alg, Cert, Chain, Output, Spec, TestEnv,
};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// Inside every default validity window of the harness PKI.
const AT: &str = "2026-06-01T00:00:00Z";

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/// `chainfix <sub> --json --offline --no-default-roots` in the test directory (no `--at`).
fn chainfix_cmd(env: &TestEnv, sub: &str) -> Command {
    let mut cmd = env.cmd();
    cmd.arg(sub)
        .args(["--json", "--offline", "--no-default-roots"])
        .arg("--cache-dir")
        .arg(env.path("cache"));
    cmd
}

/// `chainfix inspect ARGS --at at` and its output.
fn inspect_at(env: &TestEnv, at: &str, args: &[&str]) -> Output {
    let mut cmd = chainfix_cmd(env, "inspect");
    cmd.args(["--at", at]).args(args);
    run(&mut cmd)
}

/// `chainfix inspect ARGS --at AT`.
fn inspect(env: &TestEnv, args: &[&str]) -> Output {
    inspect_at(env, AT, args)
}

/// `chainfix repair ARGS --out OUT --at AT`.
fn repair(env: &TestEnv, out: &str, args: &[&str]) -> Output {
    let mut cmd = chainfix_cmd(env, "repair");
    cmd.args(["--at", AT, "--out", out]).args(args);
    run(&mut cmd)
}

/// The only result of a report; panics unless there is exactly one.
fn only_result(out: &Output) -> Value {
    let json = out.json();
    let results = json["results"].as_array().expect("results is an array");
    assert_eq!(
        results.len(),
        1,
        "expected exactly one result\n--- stdout ---\n{}\n--- stderr ---\n{}",
        out.stdout,
        out.stderr
    );
    results[0].clone()
}

fn s(v: &Value) -> String {
    v.as_str().unwrap_or_default().to_string()
}

/// Subjects of the built chain, leaf first.
fn chain_subjects(r: &Value) -> Vec<String> {
    r["chain"]
        .as_array()
        .expect("chain is an array")
        .iter()
        .map(|c| s(&c["subject"]))
        .collect()
}

/// Subjects of the presented certificates, in file order.
fn presented_subjects(r: &Value) -> Vec<String> {
    r["presented"]
        .as_array()
        .expect("presented is an array")
        .iter()
        .map(|c| s(&c["subject"]))
        .collect()
}

fn problems(r: &Value) -> Vec<Value> {
    r["problems"]
        .as_array()
        .expect("problems is an array")
        .clone()
}

/// Findings with this code.
fn findings(r: &Value, code: &str) -> Vec<Value> {
    problems(r)
        .into_iter()
        .filter(|p| p["code"] == code)
        .collect()
}

/// (code, severity) of every finding, for messages.
fn summary(r: &Value) -> Vec<String> {
    problems(r)
        .iter()
        .map(|p| format!("{}/{}", s(&p["code"]), s(&p["severity"])))
        .collect()
}

/// Asserts that a finding with `code` and `severity` exists; returns the first such.
fn expect_finding(r: &Value, code: &str, severity: &str) -> Value {
    findings(r, code)
        .into_iter()
        .find(|p| p["severity"] == severity)
        .unwrap_or_else(|| {
            panic!(
                "no {code} finding with severity {severity}; findings: {:?}\n{}",
                summary(r),
                serde_json::to_string_pretty(r).unwrap_or_default()
            )
        })
}

fn assert_no_finding(r: &Value, code: &str) {
    assert!(
        findings(r, code).is_empty(),
        "unexpected {code} finding; findings: {:?}\n{}",
        summary(r),
        serde_json::to_string_pretty(&r["problems"]).unwrap_or_default()
    );
}

fn assert_no_errors(r: &Value) {
    let errors: Vec<String> = problems(r)
        .iter()
        .filter(|p| p["severity"] == "error")
        .map(|p| format!("{}: {}", s(&p["code"]), s(&p["message"])))
        .collect();
    assert!(errors.is_empty(), "unexpected error findings: {errors:?}");
}

fn cn(name: &str) -> String {
    format!("CN={name}")
}

fn sha256_hex(der: &[u8]) -> String {
    Sha256::digest(der)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The file entry named `name` of a repair result.
fn file_entry(r: &Value, name: &str) -> Option<Value> {
    r["files"].as_array().and_then(|files| {
        files
            .iter()
            .find(|f| Path::new(&s(&f["path"])).file_name() == Some(name.as_ref()))
            .cloned()
    })
}

fn mode_of(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("stat {}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o7777
}

fn mtime_of(path: &Path) -> SystemTime {
    std::fs::metadata(path)
        .and_then(|m| m.modified())
        .unwrap_or_else(|e| panic!("mtime of {}: {e}", path.display()))
}

fn read_string(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// The standard three-level PKI written out: root.pem, int.pem, leaf.pem (leaf + int).
fn standard_env() -> (TestEnv, Chain) {
    let env = TestEnv::new();
    let chain = Chain::new(&[]);
    env.write("root.pem", &chain.root.pem);
    env.write("int.pem", &chain.int.pem);
    env.write("leaf.pem", pem_bundle(&[&chain.leaf, &chain.int]));
    (env, chain)
}

/// Issues `spec` from `issuer` with the real openssl, signing with `digest` (sha1, md5):
/// rcgen makes a self-signed certificate with the spec's dates and extensions (rcgen cannot
/// sign with MD5 or SHA-1), and `openssl x509 -CA -preserve_dates` re-signs it, setting the
/// issuer, a fixed serial and an authority key identifier from `ext.cnf`. Returns the PEM.
fn issue_with_openssl(
    env: &TestEnv,
    name: &str,
    spec: &Spec,
    issuer_pem: &str,
    issuer_alg: Alg,
    digest: &str,
    serial: u32,
) -> String {
    let tbs = format!("{name}.tbs.pem");
    let ca = format!("{name}.ca.pem");
    let ca_key = format!("{name}.ca.key");
    let out = format!("{name}.pem");
    env.write(&tbs, &self_signed(spec).pem);
    env.write(&ca, issuer_pem);
    env.write(&ca_key, key_pem(issuer_alg));
    let section = if spec.is_ca { "v3_ca" } else { "v3_leaf" };
    env.write(
        "ext.cnf",
        "[v3_ca]\n\
         basicConstraints = critical, CA:TRUE\n\
         keyUsage = critical, keyCertSign, cRLSign\n\
         subjectKeyIdentifier = hash\n\
         authorityKeyIdentifier = keyid:always\n\
         [v3_leaf]\n\
         basicConstraints = critical, CA:FALSE\n\
         keyUsage = critical, digitalSignature\n\
         extendedKeyUsage = serverAuth, clientAuth\n\
         subjectKeyIdentifier = hash\n\
         authorityKeyIdentifier = keyid:always\n",
    );
    let serial = serial.to_string();
    env.openssl(&[
        "x509",
        "-in",
        &tbs,
        "-CA",
        &ca,
        "-CAkey",
        &ca_key,
        "-preserve_dates",
        "-set_serial",
        &serial,
        &format!("-{digest}"),
        "-extfile",
        "ext.cnf",
        "-extensions",
        section,
        "-out",
        &out,
    ])
    .assert_status(0);
    let text = env.openssl(&["x509", "-in", &out, "-noout", "-text"]);
    text.assert_status(0);
    assert!(
        text.stdout
            .contains(&format!("Signature Algorithm: {digest}WithRSAEncryption")),
        "openssl did not sign {name} with {digest}:\n{}",
        text.stdout
    );
    assert!(
        !text.stdout.contains("Authority Information Access"),
        "{name} must have no AIA:\n{}",
        text.stdout
    );
    String::from_utf8(env.read(&out)).expect("PEM is UTF-8")
}

// ---------------------------------------------------------------------------------------------
// 1. Complete chains
// ---------------------------------------------------------------------------------------------

#[test]
fn complete_chain_in_order_is_ok_with_exit_0() {
    let (env, chain) = standard_env();
    let out = inspect(&env, &["leaf.pem", "--roots", "root.pem"]);
    out.assert_status(0);
    let r = only_result(&out);
    assert_eq!(r["status"], "ok");
    assert_no_errors(&r);
    assert_eq!(
        chain_subjects(&r),
        vec![
            cn("mail.example.test"),
            cn("Chainfix Test Intermediate CA"),
            cn("Chainfix Test Root CA")
        ]
    );
    let roles: Vec<String> = r["chain"]
        .as_array()
        .expect("chain")
        .iter()
        .map(|c| s(&c["role"]))
        .collect();
    assert_eq!(roles, vec!["leaf", "intermediate", "root"]);
    let kinds: Vec<String> = r["chain"]
        .as_array()
        .expect("chain")
        .iter()
        .map(|c| s(&c["source"]["kind"]))
        .collect();
    assert_eq!(kinds, vec!["input", "input", "roots"]);
    assert_eq!(r["chain"][0]["signature"], "verified");
    assert_eq!(r["chain"][1]["signature"], "verified");
    assert_eq!(r["chain"][2]["sha256"], sha256_hex(&chain.root.der));
    assert_eq!(r["leaf"]["sha256"], sha256_hex(&chain.leaf.der));
    assert_eq!(
        presented_subjects(&r),
        vec![cn("mail.example.test"), cn("Chainfix Test Intermediate CA")]
    );
    assert_no_finding(&r, "wrong-order");
    assert_no_finding(&r, "root-included");
}

#[test]
fn presented_root_is_root_included_info_and_still_ok() {
    let (env, chain) = standard_env();
    env.write(
        "full.pem",
        pem_bundle(&[&chain.leaf, &chain.int, &chain.root]),
    );
    let out = inspect(&env, &["full.pem", "--roots", "root.pem"]);
    out.assert_status(0);
    let r = only_result(&out);
    assert_eq!(r["status"], "ok");
    assert_no_errors(&r);
    let f = expect_finding(&r, "root-included", "info");
    assert_eq!(f["cert"]["subject"], cn("Chainfix Test Root CA"));
    assert_no_finding(&r, "extra-certificate");
    assert_no_finding(&r, "wrong-order");
    assert_eq!(chain_subjects(&r).len(), 3);
}

// ---------------------------------------------------------------------------------------------
// 2-4. Presentation problems and their repair
// ---------------------------------------------------------------------------------------------

#[test]
fn intermediate_before_leaf_is_wrong_order_error_and_repair_puts_leaf_first() {
    let (env, chain) = standard_env();
    env.write("swapped.pem", pem_bundle(&[&chain.int, &chain.leaf]));
    let out = inspect(&env, &["swapped.pem", "--roots", "root.pem"]);
    out.assert_status(1);
    let r = only_result(&out);
    assert_eq!(r["status"], "repairable");
    let f = expect_finding(&r, "wrong-order", "error");
    assert_eq!(f["repairable"], true);
    assert_eq!(
        presented_subjects(&r),
        vec![cn("Chainfix Test Intermediate CA"), cn("mail.example.test")]
    );
    assert_eq!(
        chain_subjects(&r)[..2],
        [cn("mail.example.test"), cn("Chainfix Test Intermediate CA")]
    );

    let out = repair(&env, "out", &["swapped.pem", "--roots", "root.pem"]);
    out.assert_status(0);
    let r = only_result(&out);
    assert_eq!(r["changed"], true);
    assert!(r.get("not_written").is_none(), "{r}");
    let full = env.read("out/fullchain.pem");
    assert_eq!(
        String::from_utf8_lossy(&full),
        pem_bundle(&[&chain.leaf, &chain.int]),
        "fullchain.pem must be the leaf then the intermediate, byte for byte"
    );
    assert_eq!(env.read("out/cert.pem"), chain.leaf.pem.as_bytes());
    assert_eq!(env.read("out/chain.pem"), chain.int.pem.as_bytes());
    let root = env.path("root.pem").display().to_string();
    let verify = env.openssl(&[
        "verify",
        "-CAfile",
        &root,
        "-untrusted",
        "out/chain.pem",
        "out/cert.pem",
    ]);
    verify.assert_status(0);
    assert!(
        verify.stdout.contains("out/cert.pem: OK"),
        "{}",
        verify.stdout
    );
    // The written full chain is what a server sends: openssl must accept it as leaf + untrusted.
    let verify = env.openssl(&[
        "verify",
        "-CAfile",
        &root,
        "-untrusted",
        "out/fullchain.pem",
        "out/fullchain.pem",
    ]);
    verify.assert_status(0);
}

/// root <- top <- bottom <- leaf, presented as leaf, top, bottom.
fn two_level_intermediates() -> (TestEnv, Cert, Cert, Cert, Cert) {
    let env = TestEnv::new();
    let root = self_signed(&Spec::ca("Order Root", Alg::Rsa2048(0)).serial(1));
    let top = issue(&Spec::ca("Order Top CA", Alg::Rsa2048(1)).serial(2), &root);
    let bottom = issue(
        &Spec::ca("Order Bottom CA", Alg::Rsa2048(2)).serial(3),
        &top,
    );
    let leaf = issue(
        &Spec::leaf("mail.example.test", Alg::P256(0)).serial(4),
        &bottom,
    );
    env.write("root.pem", &root.pem);
    (env, root, top, bottom, leaf)
}

#[test]
fn intermediates_out_of_issuing_order_is_wrong_order_warning_and_repair_fixes_it() {
    let (env, _root, top, bottom, leaf) = two_level_intermediates();
    env.write("leaf.pem", pem_bundle(&[&leaf, &top, &bottom]));
    let out = inspect(&env, &["leaf.pem", "--roots", "root.pem"]);
    let r = only_result(&out);
    let f = expect_finding(&r, "wrong-order", "warning");
    assert_eq!(f["repairable"], true);
    assert_no_errors(&r);
    assert_eq!(r["status"], "ok");
    out.assert_status(0);
    assert_eq!(
        chain_subjects(&r),
        vec![
            cn("mail.example.test"),
            cn("Order Bottom CA"),
            cn("Order Top CA"),
            cn("Order Root")
        ]
    );

    let out = repair(&env, "out", &["leaf.pem", "--roots", "root.pem"]);
    out.assert_status(0);
    assert_eq!(
        String::from_utf8_lossy(&env.read("out/fullchain.pem")),
        pem_bundle(&[&leaf, &bottom, &top])
    );
    assert_eq!(
        String::from_utf8_lossy(&env.read("out/chain.pem")),
        pem_bundle(&[&bottom, &top])
    );
    // The repaired file is in order: inspecting it reports no wrong-order.
    let out = inspect(&env, &["out/fullchain.pem", "--roots", "root.pem"]);
    out.assert_status(0);
    assert_no_finding(&only_result(&out), "wrong-order");
}

#[test]
fn extra_and_duplicate_certificates_are_warnings_and_left_out_of_fullchain() {
    let (env, chain) = standard_env();
    let other_root = self_signed(&Spec::ca("Unrelated Root", Alg::Rsa2048(3)).serial(40));
    let unrelated = issue(
        &Spec::ca("Unrelated Intermediate CA", Alg::Rsa2048(2)).serial(41),
        &other_root,
    );
    env.write(
        "messy.pem",
        pem_bundle(&[&chain.leaf, &chain.int, &unrelated, &chain.int]),
    );
    let out = inspect(&env, &["messy.pem", "--roots", "root.pem"]);
    let r = only_result(&out);
    assert_eq!(
        presented_subjects(&r),
        vec![
            cn("mail.example.test"),
            cn("Chainfix Test Intermediate CA"),
            cn("Unrelated Intermediate CA"),
            cn("Chainfix Test Intermediate CA")
        ]
    );
    let extra = expect_finding(&r, "extra-certificate", "warning");
    assert_eq!(extra["cert"]["subject"], cn("Unrelated Intermediate CA"));
    assert_eq!(
        findings(&r, "extra-certificate").len(),
        1,
        "{:?}",
        summary(&r)
    );
    let dup = expect_finding(&r, "duplicate-certificate", "warning");
    assert_eq!(dup["cert"]["subject"], cn("Chainfix Test Intermediate CA"));
    assert_no_errors(&r);
    assert_eq!(r["status"], "ok");
    out.assert_status(0);
    assert_eq!(
        chain_subjects(&r),
        vec![
            cn("mail.example.test"),
            cn("Chainfix Test Intermediate CA"),
            cn("Chainfix Test Root CA")
        ]
    );

    let out = repair(&env, "out", &["messy.pem", "--roots", "root.pem"]);
    out.assert_status(0);
    assert_eq!(
        String::from_utf8_lossy(&env.read("out/fullchain.pem")),
        pem_bundle(&[&chain.leaf, &chain.int]),
        "fullchain.pem must hold neither the unrelated nor the duplicate certificate"
    );
    assert_eq!(env.read("out/chain.pem"), chain.int.pem.as_bytes());
}

#[test]
fn duplicate_intermediate_in_place_is_not_reported_as_wrong_order() {
    // leaf, int, int: correctly ordered, one copy too many. The duplicate is the problem; the
    // order is not, and a sysadmin told "wrong order" would go looking for the wrong fix.
    let (env, chain) = standard_env();
    env.write(
        "dup.pem",
        pem_bundle(&[&chain.leaf, &chain.int, &chain.int]),
    );
    let out = inspect(&env, &["dup.pem", "--roots", "root.pem"]);
    out.assert_status(0);
    let r = only_result(&out);
    expect_finding(&r, "duplicate-certificate", "warning");
    assert_no_finding(&r, "wrong-order");
}

// ---------------------------------------------------------------------------------------------
// 5. Cross-signed intermediates and roots
// ---------------------------------------------------------------------------------------------

/// Root A (valid) and root B, intermediate I by A and I' (same subject and key) by B, leaf by
/// that key. All signers are RSA, so the certificates are identical on every run.
struct CrossPki {
    root_a: Cert,
    root_b: Cert,
    int_a: Cert,
    int_b: Cert,
    leaf: Cert,
}

fn cross_pki(
    root_b_valid: ((i32, u8, u8), (i32, u8, u8)),
    int_b_valid: ((i32, u8, u8), (i32, u8, u8)),
) -> CrossPki {
    let root_a = self_signed(&Spec::ca("Root A", Alg::Rsa2048(0)).serial(10));
    let root_b = self_signed(
        &Spec::ca("Root B", Alg::Rsa2048(1))
            .serial(11)
            .valid(root_b_valid.0, root_b_valid.1),
    );
    let int_spec = Spec::ca("Cross Intermediate", Alg::Rsa2048(2));
    let int_a = issue(&int_spec.clone().serial(12), &root_a);
    let int_b = issue(
        &int_spec.serial(13).valid(int_b_valid.0, int_b_valid.1),
        &root_b,
    );
    let leaf = issue(
        &Spec::leaf("mail.example.test", Alg::P256(0)).serial(14),
        &int_a,
    );
    CrossPki {
        root_a,
        root_b,
        int_a,
        int_b,
        leaf,
    }
}

fn assert_cross_choice(r: &Value, pki: &CrossPki) {
    assert_eq!(
        chain_subjects(r),
        vec![
            cn("mail.example.test"),
            cn("Cross Intermediate"),
            cn("Root A")
        ],
        "the valid path through root A must be chosen"
    );
    assert_eq!(r["chain"][1]["sha256"], sha256_hex(&pki.int_a.der));
    assert_eq!(r["chain"][2]["sha256"], sha256_hex(&pki.root_a.der));
    // The path through root B is cut where it goes wrong: at the expired cross-certificate,
    // or at root B itself.
    let alternatives = r["alternatives"].as_array().expect("alternatives");
    let via_b = alternatives
        .iter()
        .find(|a| s(&a["reason"]).to_lowercase().contains("expired"))
        .unwrap_or_else(|| panic!("no expired alternative: {alternatives:?}"));
    let full = serde_json::json!(["mail.example.test", "Cross Intermediate", "Root B"]);
    let cut = via_b["chain"].as_array().expect("chain");
    assert!(
        cut.len() >= 2 && full.as_array().is_some_and(|f| f.starts_with(cut)),
        "{via_b}"
    );
    let reason = s(&via_b["reason"]);
    assert!(
        reason.to_lowercase().contains("expired"),
        "the reason must say what expired: {reason}"
    );
}

#[test]
fn cross_signed_intermediate_prefers_valid_root_over_expired_root() {
    // Root B expired; I' (by B) is valid.
    let pki = cross_pki(((2000, 1, 1), (2021, 1, 1)), ((2020, 1, 1), (2045, 1, 1)));
    let env = TestEnv::new();
    env.write("roots.pem", pem_bundle(&[&pki.root_a, &pki.root_b]));
    env.write("int_a.pem", &pki.int_a.pem);
    env.write("int_b.pem", &pki.int_b.pem);

    // I' presented, I only in --intermediates: the built chain must switch to I.
    env.write("leaf_b.pem", pem_bundle(&[&pki.leaf, &pki.int_b]));
    let out = inspect(
        &env,
        &[
            "leaf_b.pem",
            "--intermediates",
            "int_a.pem",
            "--roots",
            "roots.pem",
        ],
    );
    let r = only_result(&out);
    assert_cross_choice(&r, &pki);
    assert!(
        reason_mentions(&r, "Root B"),
        "the alternative's reason should name the expired root: {}",
        r["alternatives"]
    );
    let missing = expect_finding(&r, "missing-intermediate", "error");
    assert_eq!(missing["repairable"], true);
    assert_eq!(r["chain"][1]["source"]["kind"], "intermediates");
    assert_eq!(r["status"], "repairable");
    out.assert_status(1);
    let out = repair(
        &env,
        "out",
        &[
            "leaf_b.pem",
            "--intermediates",
            "int_a.pem",
            "--roots",
            "roots.pem",
        ],
    );
    out.assert_status(0);
    assert_eq!(
        String::from_utf8_lossy(&env.read("out/fullchain.pem")),
        pem_bundle(&[&pki.leaf, &pki.int_a])
    );

    // I presented, I' in --intermediates: nothing to fix.
    env.write("leaf_a.pem", pem_bundle(&[&pki.leaf, &pki.int_a]));
    let out = inspect(
        &env,
        &[
            "leaf_a.pem",
            "--intermediates",
            "int_b.pem",
            "--roots",
            "roots.pem",
        ],
    );
    let r = only_result(&out);
    assert_cross_choice(&r, &pki);
    assert_eq!(r["chain"][1]["source"]["kind"], "input");
    assert_no_errors(&r);
    assert_eq!(r["status"], "ok");
    out.assert_status(0);
}

fn reason_mentions(r: &Value, what: &str) -> bool {
    r["alternatives"]
        .as_array()
        .is_some_and(|alts| alts.iter().any(|a| s(&a["reason"]).contains(what)))
}

#[test]
fn cross_signed_intermediate_prefers_valid_path_over_expired_cross_certificate() {
    // Root B is valid, but I' (by B) expired.
    let pki = cross_pki(((2020, 1, 1), (2045, 1, 1)), ((2020, 1, 1), (2025, 1, 1)));
    let env = TestEnv::new();
    env.write("roots.pem", pem_bundle(&[&pki.root_a, &pki.root_b]));
    env.write("int_a.pem", &pki.int_a.pem);
    env.write("int_b.pem", &pki.int_b.pem);

    env.write("leaf_b.pem", pem_bundle(&[&pki.leaf, &pki.int_b]));
    let out = inspect(
        &env,
        &[
            "leaf_b.pem",
            "--intermediates",
            "int_a.pem",
            "--roots",
            "roots.pem",
        ],
    );
    let r = only_result(&out);
    assert_cross_choice(&r, &pki);
    assert_no_finding(&r, "expired");
    assert_eq!(r["status"], "repairable");
    out.assert_status(1);

    env.write("leaf_a.pem", pem_bundle(&[&pki.leaf, &pki.int_a]));
    let out = inspect(
        &env,
        &[
            "leaf_a.pem",
            "--intermediates",
            "int_b.pem",
            "--roots",
            "roots.pem",
        ],
    );
    let r = only_result(&out);
    assert_cross_choice(&r, &pki);
    assert_no_finding(&r, "expired");
    assert_eq!(r["status"], "ok");
    out.assert_status(0);
}

#[test]
fn dst_like_cross_signed_root_chain_ends_at_self_signed_new_root() {
    // Like ISRG Root X1 cross-signed by DST Root CA X3: OLD expired, R1x (R1 by OLD) still
    // valid, leaf <- INT <- R1. Both R1 (self-signed) and OLD are trusted. The chain must end
    // at the self-signed R1 from the trust store, whatever the fingerprints. The cross-sign is
    // tried with several serials so that its fingerprint sorts both below and above R1's.
    let old = self_signed(
        &Spec::ca("Old Root X3", Alg::Rsa2048(2))
            .serial(30)
            .valid((2000, 9, 30), (2021, 9, 30)),
    );
    let r1 = self_signed(&Spec::ca("New Root R1", Alg::Rsa2048(0)).serial(31));
    let int = issue(&Spec::ca("New Int R3", Alg::Rsa2048(1)).serial(32), &r1);
    let leaf = issue(
        &Spec::leaf("mail.example.test", Alg::P256(0))
            .serial(33)
            .valid((2022, 1, 1), (2023, 6, 1)),
        &int,
    );
    let r1_sha = sha256_hex(&r1.der);
    let crosses: Vec<(u64, Cert)> = (40..46u64)
        .map(|serial| {
            let spec = Spec::ca("New Root R1", Alg::Rsa2048(0))
                .serial(serial)
                .valid((2021, 1, 20), (2024, 9, 30));
            (serial, issue(&spec, &old))
        })
        .collect();
    assert!(
        crosses.iter().any(|(_, x)| sha256_hex(&x.der) < r1_sha)
            && crosses.iter().any(|(_, x)| sha256_hex(&x.der) > r1_sha),
        "the serials should cover both fingerprint orders"
    );
    let mut wrong = Vec::new();
    for (serial, r1x) in &crosses {
        let env = TestEnv::new();
        env.write("r1.pem", &r1.pem);
        env.write("old.pem", &old.pem);
        env.write("r1x.pem", &r1x.pem);
        // The Let's Encrypt 2021-2024 default chain: leaf, INT, R1 cross-signed by OLD.
        env.write("served.pem", pem_bundle(&[&leaf, &int, r1x]));
        env.write("leaf.pem", pem_bundle(&[&leaf, &int]));
        let placements = [
            vec!["served.pem", "--roots", "r1.pem", "--roots", "old.pem"],
            vec![
                "leaf.pem",
                "--intermediates",
                "r1x.pem",
                "--roots",
                "r1.pem",
                "--roots",
                "old.pem",
            ],
        ];
        for args in placements {
            let out = inspect_at(&env, "2023-01-01T00:00:00Z", &args);
            let r = only_result(&out);
            assert_eq!(
                chain_subjects(&r),
                vec![cn("mail.example.test"), cn("New Int R3"), cn("New Root R1")],
                "{args:?}"
            );
            let last = &r["chain"][2];
            if last["sha256"] != r1_sha.as_str() {
                let below = if sha256_hex(&r1x.der) < r1_sha {
                    "below"
                } else {
                    "above"
                };
                wrong.push(format!(
                    "cross-sign serial {serial} (fingerprint {below} R1's), {}: chain ends at \
                     {} issued by {} from {}",
                    args[0], last["subject"], last["issuer"], last["source"]["kind"]
                ));
                continue;
            }
            assert_eq!(last["issuer"], cn("New Root R1"));
            assert_eq!(last["role"], "root");
            assert_eq!(last["source"]["kind"], "roots");
            assert_no_errors(&r);
            assert_eq!(r["status"], "ok", "{args:?}");
            out.assert_status(0);
        }
    }
    assert!(
        wrong.is_empty(),
        "the chain must end at the self-signed R1 from --roots, not at R1 cross-signed by the \
         expired old root:\n{}",
        wrong.join("\n")
    );
}

// ---------------------------------------------------------------------------------------------
// 6-7. Trust
// ---------------------------------------------------------------------------------------------

#[test]
fn chain_to_unknown_root_is_untrusted_root_broken_but_still_written() {
    let (env, chain) = standard_env();
    let other = self_signed(&Spec::ca("Some Other Root", Alg::Rsa2048(3)).serial(50));
    env.write("other.pem", &other.pem);
    let args = [
        "leaf.pem",
        "--intermediates",
        "root.pem",
        "--roots",
        "other.pem",
    ];
    let out = inspect(&env, &args);
    out.assert_status(1);
    let r = only_result(&out);
    let f = expect_finding(&r, "untrusted-root", "error");
    assert_eq!(f["cert"]["subject"], cn("Chainfix Test Root CA"));
    assert_eq!(f["repairable"], false);
    assert_eq!(r["status"], "broken");
    assert_eq!(
        chain_subjects(&r),
        vec![
            cn("mail.example.test"),
            cn("Chainfix Test Intermediate CA"),
            cn("Chainfix Test Root CA")
        ]
    );
    assert_eq!(r["chain"][2]["role"], "root");

    let out = repair(&env, "out", &args);
    out.assert_status(1);
    let r = only_result(&out);
    assert!(r.get("not_written").is_none(), "{r}");
    assert_eq!(
        String::from_utf8_lossy(&env.read("out/fullchain.pem")),
        pem_bundle(&[&chain.leaf, &chain.int])
    );

    // Trusting the root makes the same input fine.
    let out = inspect(&env, &["leaf.pem", "--roots", "root.pem"]);
    out.assert_status(0);
    let r = only_result(&out);
    assert_eq!(r["status"], "ok");
    assert_no_finding(&r, "untrusted-root");
}

#[test]
fn self_signed_leaf_is_error_and_nothing_is_written() {
    let env = TestEnv::new();
    let leaf = self_signed(&Spec::leaf("mail.example.test", Alg::P256(1)).serial(60));
    let root = self_signed(&Spec::ca("Unrelated Root", Alg::Rsa2048(0)).serial(61));
    env.write("self.pem", &leaf.pem);
    env.write("root.pem", &root.pem);
    let out = inspect(&env, &["self.pem", "--roots", "root.pem"]);
    out.assert_status(1);
    let r = only_result(&out);
    let f = expect_finding(&r, "self-signed-leaf", "error");
    assert_eq!(f["cert"]["subject"], cn("mail.example.test"));
    assert_eq!(r["status"], "broken");
    assert_eq!(chain_subjects(&r), vec![cn("mail.example.test")]);

    let out = repair(&env, "out", &["self.pem", "--roots", "root.pem"]);
    out.assert_status(1);
    let r = only_result(&out);
    assert!(
        r["not_written"].as_str().is_some_and(|w| !w.is_empty()),
        "not_written must say why: {r}"
    );
    assert!(!env.path("out/fullchain.pem").exists());
    assert!(!env.path("out/cert.pem").exists());
}

#[test]
fn a_self_signed_certificate_for_the_same_name_does_not_hide_the_real_leaf() {
    // Debian's snakeoil certificate carries the host's own name, next to the real one.
    let (env, chain) = standard_env();
    let snakeoil = self_signed(&Spec::leaf("mail.example.test", Alg::P256(2)).serial(62));
    env.write("snakeoil.pem", &snakeoil.pem);
    let out = inspect(&env, &["leaf.pem", "snakeoil.pem", "--roots", "root.pem"]);
    out.assert_status(1);
    let results = out.json()["results"].as_array().expect("results").clone();
    let by_file = |name: &str| {
        results
            .iter()
            .find(|r| r["file"].as_str().is_some_and(|f| f.ends_with(name)))
            .unwrap_or_else(|| panic!("no result for {name}: {results:?}"))
    };
    assert_eq!(results.len(), 2, "{results:?}");
    let real = by_file("leaf.pem");
    assert_eq!(real["status"], "ok", "{real}");
    assert_eq!(real["leaf"]["sha256"], sha256_hex(&chain.leaf.der));
    let fake = by_file("snakeoil.pem");
    expect_finding(fake, "self-signed-leaf", "error");
}

/// `openssl verify` of `leaf` against `root` with `untrusted` intermediates, at the tests' time.
fn openssl_verifies(env: &TestEnv, leaf: &Cert, untrusted: &[&Cert], root: &Cert) -> bool {
    env.write("v-leaf.pem", &leaf.pem);
    env.write("v-untrusted.pem", pem_bundle(untrusted));
    env.write("v-root.pem", &root.pem);
    env.openssl(&[
        "verify",
        "-no-CApath",
        "-no-CAstore",
        "-attime",
        "1780272000", // 2026-06-01
        "-CAfile",
        "v-root.pem",
        "-untrusted",
        "v-untrusted.pem",
        "v-leaf.pem",
    ])
    .status
        == 0
}

#[test]
fn an_issuer_that_is_not_a_ca_breaks_the_chain_and_nothing_is_written() {
    let env = TestEnv::new();
    let root = self_signed(&Spec::ca("Constraint Root", Alg::Rsa2048(0)).serial(80));
    // A leaf-type certificate (CA:FALSE, no keyCertSign) used to sign a server certificate.
    let not_ca = issue(
        &Spec::leaf("Not A CA", Alg::Rsa2048(1)).serial(81).dns(&[]),
        &root,
    );
    let leaf = issue(
        &Spec::leaf("mail.example.test", Alg::P256(0)).serial(82),
        &not_ca,
    );
    assert!(!openssl_verifies(&env, &leaf, &[&not_ca], &root));
    env.write("fullchain.pem", pem_bundle(&[&leaf, &not_ca]));
    env.write("root.pem", &root.pem);
    let args = ["fullchain.pem", "--roots", "root.pem"];
    let out = inspect(&env, &args);
    out.assert_status(1);
    let r = only_result(&out);
    assert_eq!(r["status"], "broken", "{r}");
    let f = expect_finding(&r, "ca-constraint-violated", "error");
    assert_eq!(f["cert"]["subject"], cn("Not A CA"));
    assert!(
        f["message"]
            .as_str()
            .is_some_and(|m| m.contains("not a CA")),
        "{f}"
    );
    let out = repair(&env, "out", &args);
    out.assert_status(1);
    let r = only_result(&out);
    assert!(
        r["not_written"]
            .as_str()
            .is_some_and(|w| w.contains("not a CA")),
        "{r}"
    );
    assert!(!env.path("out/fullchain.pem").exists());
}

#[test]
fn a_proper_ca_is_preferred_to_a_copy_of_it_that_may_not_issue() {
    let env = TestEnv::new();
    let root = self_signed(&Spec::ca("Constraint Root", Alg::Rsa2048(0)).serial(85));
    // Same name and key twice: once as a CA, once (by mistake) as CA:FALSE.
    let good = issue(&Spec::ca("Issuing CA", Alg::Rsa2048(1)).serial(86), &root);
    let mut bad_spec = Spec::ca("Issuing CA", Alg::Rsa2048(1)).serial(87);
    bad_spec.is_ca = false;
    let bad = issue(&bad_spec, &root);
    let leaf = issue(
        &Spec::leaf("mail.example.test", Alg::P256(0)).serial(88),
        &good,
    );
    env.write("leaf.pem", &leaf.pem);
    env.write("pool.pem", pem_bundle(&[&bad, &good]));
    env.write("root.pem", &root.pem);
    let out = inspect(
        &env,
        &[
            "leaf.pem",
            "--intermediates",
            "pool.pem",
            "--roots",
            "root.pem",
        ],
    );
    let r = only_result(&out);
    assert_no_finding(&r, "ca-constraint-violated");
    assert_eq!(r["chain"][1]["sha256"], sha256_hex(&good.der), "{r}");
    let lost = r["alternatives"].as_array().expect("alternatives");
    assert!(
        lost.iter()
            .any(|a| a["reason"].as_str().is_some_and(|m| m.contains("not a CA"))),
        "{r}"
    );
}

#[test]
fn a_working_presented_chain_is_kept_when_the_pool_holds_another_copy_of_its_intermediate() {
    let env = TestEnv::new();
    let root = self_signed(&Spec::ca("Copy Root", Alg::Rsa2048(0)).serial(95));
    // The same intermediate (name and key) issued twice, as CAs re-issue them.
    let copies = [
        issue(&Spec::ca("Issuing CA", Alg::Rsa2048(1)).serial(96), &root),
        issue(&Spec::ca("Issuing CA", Alg::Rsa2048(1)).serial(97), &root),
    ];
    let leaf = issue(
        &Spec::leaf("mail.example.test", Alg::P256(0)).serial(98),
        &copies[0],
    );
    env.write("root.pem", &root.pem);
    // Whichever copy the server presents, with the other one in the pool.
    for (served, other) in [(&copies[0], &copies[1]), (&copies[1], &copies[0])] {
        env.write("fullchain.pem", pem_bundle(&[&leaf, served]));
        env.write("pool.pem", &other.pem);
        let out = inspect(
            &env,
            &[
                "fullchain.pem",
                "--intermediates",
                "pool.pem",
                "--roots",
                "root.pem",
            ],
        );
        out.assert_status(0);
        let r = only_result(&out);
        assert_eq!(r["status"], "ok", "{r}");
        assert_eq!(r["chain"][1]["sha256"], sha256_hex(&served.der), "{r}");
        assert_no_finding(&r, "missing-intermediate");
        assert_no_finding(&r, "extra-certificate");
    }
}

#[test]
fn a_path_longer_than_a_ca_allows_is_reported() {
    let env = TestEnv::new();
    let root = self_signed(&Spec::ca("Constraint Root", Alg::Rsa2048(0)).serial(90));
    let top = issue(
        &Spec::ca("Top CA", Alg::Rsa2048(1)).path_len(0).serial(91),
        &root,
    );
    let sub = issue(&Spec::ca("Sub CA", Alg::Rsa2048(2)).serial(92), &top);
    let leaf = issue(
        &Spec::leaf("mail.example.test", Alg::P256(0)).serial(93),
        &sub,
    );
    assert!(!openssl_verifies(&env, &leaf, &[&sub, &top], &root));
    env.write("fullchain.pem", pem_bundle(&[&leaf, &sub, &top]));
    env.write("root.pem", &root.pem);
    let out = inspect(&env, &["fullchain.pem", "--roots", "root.pem"]);
    out.assert_status(1);
    let r = only_result(&out);
    let f = expect_finding(&r, "ca-constraint-violated", "error");
    assert_eq!(f["cert"]["subject"], cn("Top CA"));
    assert!(
        f["message"]
            .as_str()
            .is_some_and(|m| m.contains("pathLenConstraint")),
        "{f}"
    );
    // Within the limit: fine, as openssl says.
    let top1 = issue(
        &Spec::ca("Top CA", Alg::Rsa2048(1)).path_len(1).serial(94),
        &root,
    );
    assert!(openssl_verifies(&env, &leaf, &[&sub, &top1], &root));
    env.write("fullchain.pem", pem_bundle(&[&leaf, &sub, &top1]));
    let out = inspect(&env, &["fullchain.pem", "--roots", "root.pem"]);
    out.assert_status(0);
    assert_no_finding(&only_result(&out), "ca-constraint-violated");
}

// ---------------------------------------------------------------------------------------------
// 8. Validity
// ---------------------------------------------------------------------------------------------

#[test]
fn expired_leaf_is_error_with_exchange_4_7_322() {
    let (env, _chain) = standard_env();
    let out = inspect_at(
        &env,
        "2035-01-01T00:00:00Z",
        &["leaf.pem", "--roots", "root.pem"],
    );
    out.assert_status(1);
    let r = only_result(&out);
    let f = expect_finding(&r, "expired", "error");
    assert_eq!(f["cert"]["subject"], cn("mail.example.test"));
    assert!(
        s(&f["receiver_view"]).contains("4.7.322"),
        "receiver_view: {}",
        f["receiver_view"]
    );
    assert_eq!(r["status"], "broken");
}

#[test]
fn leaf_before_not_before_is_not_yet_valid_error() {
    let (env, _chain) = standard_env();
    let out = inspect_at(
        &env,
        "2023-06-01T00:00:00Z",
        &["leaf.pem", "--roots", "root.pem"],
    );
    out.assert_status(1);
    let r = only_result(&out);
    let f = expect_finding(&r, "not-yet-valid", "error");
    assert_eq!(f["cert"]["subject"], cn("mail.example.test"));
    assert_no_finding(&r, "expired");
    assert_eq!(r["status"], "broken");
}

#[test]
fn expires_soon_follows_warn_days() {
    // The leaf expires 2034-01-01; at 2033-12-01 that is 31 days away.
    let (env, _chain) = standard_env();
    let at = "2033-12-01T00:00:00Z";
    let out = inspect_at(
        &env,
        at,
        &["leaf.pem", "--roots", "root.pem", "--warn-days", "60"],
    );
    out.assert_status(0);
    let r = only_result(&out);
    let f = expect_finding(&r, "expires-soon", "warning");
    assert_eq!(f["cert"]["subject"], cn("mail.example.test"));
    assert_eq!(r["status"], "ok");

    let out = inspect_at(
        &env,
        at,
        &["leaf.pem", "--roots", "root.pem", "--warn-days", "10"],
    );
    out.assert_status(0);
    assert_no_finding(&only_result(&out), "expires-soon");

    // Default 30 days: 31 days left is not "soon".
    let out = inspect_at(&env, at, &["leaf.pem", "--roots", "root.pem"]);
    out.assert_status(0);
    assert_no_finding(&only_result(&out), "expires-soon");
}

#[test]
fn intermediate_expiring_before_leaf_is_outlived_warning() {
    let env = TestEnv::new();
    let root = self_signed(&Spec::ca("Outlive Root", Alg::Rsa2048(0)).serial(70));
    let int = issue(
        &Spec::ca("Short Intermediate", Alg::Rsa2048(1))
            .serial(71)
            .valid((2020, 1, 1), (2030, 1, 1)),
        &root,
    );
    let leaf = issue(
        &Spec::leaf("mail.example.test", Alg::P256(0)).serial(72),
        &int,
    );
    env.write("root.pem", &root.pem);
    env.write("leaf.pem", pem_bundle(&[&leaf, &int]));
    let out = inspect(&env, &["leaf.pem", "--roots", "root.pem"]);
    out.assert_status(0);
    let r = only_result(&out);
    let f = expect_finding(&r, "intermediate-outlived", "warning");
    assert_eq!(f["cert"]["subject"], cn("Short Intermediate"));
    assert_eq!(r["status"], "ok");
}

// ---------------------------------------------------------------------------------------------
// 9. Weak keys and signatures
// ---------------------------------------------------------------------------------------------

/// Inspects root <- an intermediate `name` with an RSA key `alg` <- leaf; exit 1, the result.
fn weak_rsa_intermediate(alg: Alg, name: &str) -> Value {
    let env = TestEnv::new();
    let root = self_signed(&Spec::ca("Weak Key Root", Alg::Rsa2048(0)).serial(80));
    let int = issue(&Spec::ca(name, alg).serial(81), &root);
    let leaf = issue(
        &Spec::leaf("mail.example.test", Alg::P256(0)).serial(82),
        &int,
    );
    env.write("root.pem", &root.pem);
    env.write("leaf.pem", pem_bundle(&[&leaf, &int]));
    let out = inspect(&env, &["leaf.pem", "--roots", "root.pem"]);
    out.assert_status(1);
    let r = only_result(&out);
    let f = expect_finding(&r, "weak-key", "error");
    assert_eq!(f["cert"]["subject"], cn(name));
    assert_eq!(findings(&r, "weak-key").len(), 1, "{:?}", summary(&r));
    assert_eq!(r["status"], "broken");
    assert_eq!(chain_subjects(&r).len(), 3, "{r}");
    assert_eq!(r["chain"][1]["signature"], "verified");
    r
}

#[test]
fn rsa_1024_intermediate_is_weak_key_error() {
    let r = weak_rsa_intermediate(Alg::Rsa1024, "RSA1024 Intermediate");
    // A weak but genuine signature is still verified, not dropped.
    assert_eq!(r["chain"][0]["signature"], "verified");
}

#[test]
fn rsa_768_intermediate_is_verified_and_weak_not_forged() {
    // ring checks RSA keys of 1024 bits and up; the rsa crate verifies a smaller one, which is
    // weak, not a bad signature.
    let r = weak_rsa_intermediate(Alg::Rsa768, "RSA768 Intermediate");
    assert_no_finding(&r, "missing-intermediate");
    assert_no_finding(&r, "issuer-signature-invalid");
    assert_no_finding(&r, "signature-unverifiable");
    assert_eq!(r["chain"][0]["signature"], "verified");
}

/// root (rcgen, SHA-256) <- int (re-signed by openssl with `digest`) <- leaf (likewise).
fn weak_digest_chain(env: &TestEnv, digest: &str) {
    let root = self_signed(&Spec::ca("Digest Root", Alg::Rsa2048(0)).serial(90));
    let int_spec = Spec::ca(
        &format!("{} Intermediate", digest.to_uppercase()),
        Alg::Rsa2048(1),
    )
    .serial(91);
    let leaf_spec = Spec::leaf("mail.example.test", Alg::Rsa2048(2)).serial(92);
    let int_pem = issue_with_openssl(env, "int", &int_spec, &root.pem, root.spec.alg, digest, 191);
    let leaf_pem = issue_with_openssl(
        env,
        "leaf1",
        &leaf_spec,
        &int_pem,
        int_spec.alg,
        digest,
        192,
    );
    env.write("root.pem", &root.pem);
    env.write("leaf.pem", format!("{leaf_pem}{int_pem}"));
    // The real openssl builds the same chain (at security level 0, which allows weak digests).
    let verify = env.openssl(&[
        "verify",
        "-auth_level",
        "0",
        "-attime",
        "1780272000", // 2026-06-01
        "-CAfile",
        "root.pem",
        "-untrusted",
        "int.pem",
        "leaf1.pem",
    ]);
    if digest == "sha1" {
        verify.assert_status(0);
    }
}

#[test]
fn sha1_signed_intermediate_and_leaf_are_weak_signature_errors() {
    let env = TestEnv::new();
    weak_digest_chain(&env, "sha1");
    let out = inspect(&env, &["leaf.pem", "--roots", "root.pem"]);
    let r = only_result(&out);
    let weak = findings(&r, "weak-signature");
    let subjects: BTreeSet<String> = weak.iter().map(|f| s(&f["cert"]["subject"])).collect();
    assert_eq!(
        subjects,
        BTreeSet::from([cn("mail.example.test"), cn("SHA1 Intermediate")]),
        "{:?}",
        summary(&r)
    );
    // OpenSSL 3 at security level 1 and up refuses SHA-1 below the trust anchor.
    assert!(
        weak.iter().all(|f| f["severity"] == "error"),
        "SHA-1 is an error: {weak:?}"
    );
    assert_eq!(
        chain_subjects(&r),
        vec![
            cn("mail.example.test"),
            cn("SHA1 Intermediate"),
            cn("Digest Root")
        ]
    );
    assert_eq!(r["chain"][0]["signature"], "verified");
    assert_eq!(r["chain"][1]["signature"], "verified");
    assert_eq!(r["status"], "broken");
    out.assert_status(1);
}

#[test]
fn md5_signed_links_are_verified_and_weak_signature_errors() {
    let env = TestEnv::new();
    weak_digest_chain(&env, "md5");
    let out = inspect(&env, &["leaf.pem", "--roots", "root.pem"]);
    out.assert_status(1);
    let r = only_result(&out);
    let weak = findings(&r, "weak-signature");
    let subjects: BTreeSet<String> = weak.iter().map(|f| s(&f["cert"]["subject"])).collect();
    assert_eq!(
        subjects,
        BTreeSet::from([cn("mail.example.test"), cn("MD5 Intermediate")]),
        "{:?}",
        summary(&r)
    );
    assert!(
        weak.iter().all(|f| f["severity"] == "error"),
        "MD5 is an error: {weak:?}"
    );
    // The MD5 signatures are verified (genuine, not forged), then refused as weak.
    assert_eq!(
        chain_subjects(&r),
        vec![
            cn("mail.example.test"),
            cn("MD5 Intermediate"),
            cn("Digest Root")
        ]
    );
    assert_eq!(r["chain"][0]["signature"], "verified");
    assert_eq!(r["chain"][1]["signature"], "verified");
    assert_eq!(r["chain"][2]["role"], "root");
    assert_no_finding(&r, "signature-unverifiable");
    assert_no_finding(&r, "missing-intermediate");
    assert_eq!(r["status"], "broken");
}

// ---------------------------------------------------------------------------------------------
// 10. Host names
// ---------------------------------------------------------------------------------------------

#[test]
fn host_matching_a_san_is_fine_and_mismatch_is_error_4_7_325() {
    let env = TestEnv::new();
    let chain = Chain::new(&[]);
    let leaf = issue(
        &Spec::leaf("mail.example.test", Alg::P256(1))
            .serial(100)
            .dns(&["mail.example.test", "smtp.example.test"]),
        &chain.int,
    );
    env.write("root.pem", &chain.root.pem);
    env.write("leaf.pem", pem_bundle(&[&leaf, &chain.int]));
    for host in [
        "mail.example.test",
        "smtp.example.test",
        "SMTP.Example.Test",
    ] {
        let out = inspect(&env, &["leaf.pem", "--roots", "root.pem", "--host", host]);
        out.assert_status(0);
        assert_no_finding(&only_result(&out), "hostname-mismatch");
    }
    let out = inspect(
        &env,
        &[
            "leaf.pem",
            "--roots",
            "root.pem",
            "--host",
            "mx.example.test",
        ],
    );
    out.assert_status(1);
    let r = only_result(&out);
    let f = expect_finding(&r, "hostname-mismatch", "error");
    assert!(
        s(&f["receiver_view"]).contains("4.7.325"),
        "receiver_view: {}",
        f["receiver_view"]
    );
    assert!(
        s(&f["message"]).contains("mx.example.test"),
        "{}",
        f["message"]
    );
    assert_eq!(r["status"], "broken");
}

#[test]
fn wildcard_san_matches_exactly_one_label() {
    let env = TestEnv::new();
    let chain = Chain::new(&[]);
    let leaf = issue(
        &Spec::leaf("*.example.test", Alg::P256(2)).serial(101),
        &chain.int,
    );
    env.write("root.pem", &chain.root.pem);
    env.write("leaf.pem", pem_bundle(&[&leaf, &chain.int]));
    let out = inspect(
        &env,
        &[
            "leaf.pem",
            "--roots",
            "root.pem",
            "--host",
            "mail.example.test",
        ],
    );
    out.assert_status(0);
    assert_no_finding(&only_result(&out), "hostname-mismatch");

    for host in ["a.b.example.test", "example.test"] {
        let out = inspect(&env, &["leaf.pem", "--roots", "root.pem", "--host", host]);
        out.assert_status(1);
        let r = only_result(&out);
        let f = expect_finding(&r, "hostname-mismatch", "error");
        assert!(s(&f["receiver_view"]).contains("4.7.325"), "{host}: {f}");
    }
}

// ---------------------------------------------------------------------------------------------
// 11. Depth budget
// ---------------------------------------------------------------------------------------------

/// root <- int 1 <- ... <- int n <- leaf; returns (root, intermediates top-down, leaf).
fn deep_chain(n: usize) -> (Cert, Vec<Cert>, Cert) {
    let root = self_signed(&Spec::ca("Deep Root", Alg::Rsa2048(0)).serial(200));
    let mut ints: Vec<Cert> = Vec::new();
    for i in 1..=n {
        let spec = Spec::ca(&format!("Deep Int {i}"), Alg::Rsa2048(i % 4)).serial(200 + i as u64);
        let issuer = ints.last().unwrap_or(&root).clone();
        ints.push(issue(&spec, &issuer));
    }
    let leaf = issue(
        &Spec::leaf("mail.example.test", Alg::P256(0)).serial(300),
        ints.last().unwrap_or(&root),
    );
    (root, ints, leaf)
}

fn deep_env(n: usize) -> (TestEnv, Vec<Cert>, Cert) {
    let env = TestEnv::new();
    let (root, ints, leaf) = deep_chain(n);
    let mut presented: Vec<&Cert> = vec![&leaf];
    presented.extend(ints.iter().rev());
    env.write("root.pem", &root.pem);
    env.write("leaf.pem", pem_bundle(&presented));
    (env, ints, leaf)
}

#[test]
fn ten_intermediates_exceed_the_depth_budget() {
    let (env, _ints, _leaf) = deep_env(10);
    let out = inspect(&env, &["leaf.pem", "--roots", "root.pem"]);
    out.assert_status(1);
    let r = only_result(&out);
    expect_finding(&r, "depth-exceeded", "warning");
    assert_eq!(r["status"], "broken");
    assert!(
        chain_subjects(&r).len() <= 8,
        "the path budget is 8 certificates: {:?}",
        chain_subjects(&r)
    );
    // The chain is cut, so repair must not deploy it.
    let out = repair(&env, "out", &["leaf.pem", "--roots", "root.pem"]);
    out.assert_status(1);
    assert!(!env.path("out/fullchain.pem").exists());
}

#[test]
fn five_intermediates_fit_the_depth_budget() {
    let (env, _ints, _leaf) = deep_env(5);
    let out = inspect(&env, &["leaf.pem", "--roots", "root.pem"]);
    out.assert_status(0);
    let r = only_result(&out);
    assert_no_finding(&r, "depth-exceeded");
    assert_eq!(r["status"], "ok");
    let mut expected = vec![cn("mail.example.test")];
    expected.extend((1..=5).rev().map(|i| cn(&format!("Deep Int {i}"))));
    expected.push(cn("Deep Root"));
    assert_eq!(chain_subjects(&r), expected);
}

// ---------------------------------------------------------------------------------------------
// 12. Repair output files
// ---------------------------------------------------------------------------------------------

#[test]
fn include_root_appends_root_to_fullchain_and_chain_and_cert_is_leaf_only() {
    let (env, chain) = standard_env();
    let out = repair(
        &env,
        "out",
        &["leaf.pem", "--roots", "root.pem", "--include-root"],
    );
    out.assert_status(0);
    assert_eq!(
        String::from_utf8_lossy(&env.read("out/fullchain.pem")),
        pem_bundle(&[&chain.leaf, &chain.int, &chain.root])
    );
    assert_eq!(
        String::from_utf8_lossy(&env.read("out/chain.pem")),
        pem_bundle(&[&chain.int, &chain.root])
    );
    assert_eq!(env.read("out/cert.pem"), chain.leaf.pem.as_bytes());
    assert!(!env.path("out/privkey.pem").exists(), "no key was given");
    let r = only_result(&out);
    assert!(file_entry(&r, "privkey.pem").is_none());
    for name in ["fullchain.pem", "chain.pem", "cert.pem"] {
        let f = file_entry(&r, name).unwrap_or_else(|| panic!("{name} not reported: {r}"));
        assert_eq!(f["action"], "created");
        assert_eq!(f["mode"], "0644");
        assert_eq!(mode_of(&env.path(&format!("out/{name}"))), 0o644);
    }

    // Without --include-root the root stays out.
    let out = repair(&env, "out2", &["leaf.pem", "--roots", "root.pem"]);
    out.assert_status(0);
    assert_eq!(
        String::from_utf8_lossy(&env.read("out2/fullchain.pem")),
        pem_bundle(&[&chain.leaf, &chain.int])
    );
    assert_eq!(env.read("out2/chain.pem"), chain.int.pem.as_bytes());
}

#[test]
fn privkey_is_written_0600_only_when_the_key_is_known() {
    let (env, chain) = standard_env();
    env.write("leaf.key", &chain.leaf.key_pem);

    // Key among the inputs.
    let out = repair(
        &env,
        "out",
        &["leaf.pem", "leaf.key", "--roots", "root.pem"],
    );
    out.assert_status(0);
    let r = only_result(&out);
    let f = file_entry(&r, "privkey.pem").unwrap_or_else(|| panic!("privkey.pem: {r}"));
    assert_eq!(f["mode"], "0600");
    assert_eq!(f["secret"], true, "key files are marked secret: {f}");
    let full = file_entry(&r, "fullchain.pem").unwrap_or_else(|| panic!("fullchain.pem: {r}"));
    assert_eq!(full["secret"], false, "{full}");
    assert_eq!(mode_of(&env.path("out/privkey.pem")), 0o600);
    assert!(read_string(&env.path("out/privkey.pem")).contains("PRIVATE KEY"));
    let key_pub = env.openssl(&["pkey", "-in", "out/privkey.pem", "-pubout"]);
    key_pub.assert_status(0);
    let cert_pub = env.openssl(&["x509", "-in", "out/cert.pem", "-noout", "-pubkey"]);
    cert_pub.assert_status(0);
    assert_eq!(
        key_pub.stdout, cert_pub.stdout,
        "privkey.pem belongs to cert.pem"
    );

    // Key via --key.
    let out = repair(
        &env,
        "out2",
        &["leaf.pem", "--key", "leaf.key", "--roots", "root.pem"],
    );
    out.assert_status(0);
    assert_eq!(mode_of(&env.path("out2/privkey.pem")), 0o600);

    // No key: no privkey.pem.
    let out = repair(&env, "out3", &["leaf.pem", "--roots", "root.pem"]);
    out.assert_status(0);
    assert!(!env.path("out3/privkey.pem").exists());
    assert!(file_entry(&only_result(&out), "privkey.pem").is_none());
}

#[test]
fn second_identical_repair_changes_nothing_and_keeps_mtimes() {
    let (env, chain) = standard_env();
    env.write("leaf.key", &chain.leaf.key_pem);
    let args = ["leaf.pem", "leaf.key", "--roots", "root.pem"];
    let out = repair(&env, "out", &args);
    out.assert_status(0);
    assert_eq!(only_result(&out)["changed"], true);
    let names = ["fullchain.pem", "chain.pem", "cert.pem", "privkey.pem"];
    let before: Vec<SystemTime> = names
        .iter()
        .map(|n| mtime_of(&env.path(&format!("out/{n}"))))
        .collect();
    std::thread::sleep(std::time::Duration::from_millis(50));

    let out = repair(&env, "out", &args);
    out.assert_status(0);
    let r = only_result(&out);
    assert_eq!(r["changed"], false);
    let files = r["files"].as_array().expect("files");
    for n in names {
        assert!(
            files.iter().any(|f| f["path"] == format!("out/{n}")),
            "{n} missing from {files:?}"
        );
    }
    for f in files {
        assert_eq!(f["action"], "unchanged", "{f}");
    }
    let after: Vec<SystemTime> = names
        .iter()
        .map(|n| mtime_of(&env.path(&format!("out/{n}"))))
        .collect();
    assert_eq!(before, after, "unchanged files must not be rewritten");
}

#[test]
fn check_writes_nothing_but_reports_changes() {
    let (env, _chain) = standard_env();
    let out = repair(&env, "out", &["leaf.pem", "--roots", "root.pem", "--check"]);
    out.assert_status(0);
    let r = only_result(&out);
    assert_eq!(r["changed"], true);
    let files = r["files"].as_array().expect("files");
    assert!(!files.is_empty());
    for f in files {
        assert_eq!(f["action"], "created", "{f}");
    }
    let out_dir = env.path("out");
    let empty = !out_dir.exists()
        || std::fs::read_dir(&out_dir)
            .map(|mut d| d.next().is_none())
            .unwrap_or(false);
    assert!(
        empty,
        "--check must not write anything into {}",
        out_dir.display()
    );
}

#[test]
fn hand_edited_fullchain_is_updated_on_rerun() {
    let (env, chain) = standard_env();
    let args = ["leaf.pem", "--roots", "root.pem"];
    repair(&env, "out", &args).assert_status(0);
    env.write("out/fullchain.pem", &chain.leaf.pem); // someone dropped the intermediate
    let out = repair(&env, "out", &args);
    out.assert_status(0);
    let r = only_result(&out);
    assert_eq!(r["changed"], true);
    assert_eq!(
        file_entry(&r, "fullchain.pem").expect("fullchain.pem")["action"],
        "updated"
    );
    assert_eq!(
        file_entry(&r, "cert.pem").expect("cert.pem")["action"],
        "unchanged"
    );
    assert_eq!(
        file_entry(&r, "chain.pem").expect("chain.pem")["action"],
        "unchanged"
    );
    assert_eq!(
        String::from_utf8_lossy(&env.read("out/fullchain.pem")),
        pem_bundle(&[&chain.leaf, &chain.int])
    );
}

#[test]
fn several_leaves_get_one_subdirectory_each_named_after_the_cn() {
    let env = TestEnv::new();
    let chain = Chain::new(&[]);
    let smtp = issue(
        &Spec::leaf("smtp.example.test", Alg::P256(1)).serial(400),
        &chain.int,
    );
    env.write("root.pem", &chain.root.pem);
    env.write("certs/mail.pem", pem_bundle(&[&chain.leaf, &chain.int]));
    env.write("certs/smtp.pem", pem_bundle(&[&smtp, &chain.int]));
    let out = repair(&env, "out", &["certs", "--roots", "root.pem"]);
    out.assert_status(0);
    assert_eq!(out.json()["results"].as_array().map(Vec::len), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&env.read("out/mail.example.test/fullchain.pem")),
        pem_bundle(&[&chain.leaf, &chain.int])
    );
    assert_eq!(
        String::from_utf8_lossy(&env.read("out/smtp.example.test/fullchain.pem")),
        pem_bundle(&[&smtp, &chain.int])
    );
    assert!(!env.path("out/fullchain.pem").exists());
}

// ---------------------------------------------------------------------------------------------
// 13. Exit codes
// ---------------------------------------------------------------------------------------------

#[test]
fn exit_codes_usage_garbage_time_broken_ok_and_repairable() {
    let (env, chain) = standard_env();
    // No paths: usage error.
    let out = run(env.cmd().args(["inspect", "--offline", "--at", AT]));
    out.assert_status(2);
    // An unparseable --at.
    let out = run(env.cmd().args([
        "inspect",
        "leaf.pem",
        "--offline",
        "--no-default-roots",
        "--roots",
        "root.pem",
        "--at",
        "garbage",
    ]));
    out.assert_status(2);
    assert!(out.stderr.contains("garbage"), "{}", out.stderr);
    // Broken: the leaf alone, no issuer anywhere.
    env.write("alone.pem", &chain.leaf.pem);
    inspect(&env, &["alone.pem", "--roots", "root.pem"]).assert_status(1);
    // OK.
    inspect(&env, &["leaf.pem", "--roots", "root.pem"]).assert_status(0);
    // Repairable: inspect still says 1, repair says 0.
    env.write("bare.pem", &chain.leaf.pem);
    let args = [
        "bare.pem",
        "--intermediates",
        "int.pem",
        "--roots",
        "root.pem",
    ];
    let out = inspect(&env, &args);
    out.assert_status(1);
    assert_eq!(only_result(&out)["status"], "repairable");
    repair(&env, "out", &args).assert_status(0);
    // The human report of the same broken input exits the same way.
    let out = run(env.cmd().args([
        "inspect",
        "alone.pem",
        "--offline",
        "--no-default-roots",
        "--roots",
        "root.pem",
        "--at",
        AT,
    ]));
    out.assert_status(1);
}

// ---------------------------------------------------------------------------------------------
// 14. JSON schema
// ---------------------------------------------------------------------------------------------

fn keys(v: &Value) -> BTreeSet<String> {
    v.as_object()
        .unwrap_or_else(|| panic!("not an object: {v}"))
        .keys()
        .cloned()
        .collect()
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

#[test]
fn json_report_has_the_documented_keys() {
    let (env, chain) = standard_env();
    env.write("bare.pem", &chain.leaf.pem);
    let out = inspect(
        &env,
        &[
            "bare.pem",
            "--intermediates",
            "int.pem",
            "--roots",
            "root.pem",
        ],
    );
    let json = out.json();
    assert_eq!(keys(&json), set(&["schema", "results", "errors"]));
    assert_eq!(json["schema"], 1);
    assert_eq!(json["errors"], serde_json::json!([]));
    let r = only_result(&out);
    assert_eq!(
        keys(&r),
        set(&[
            "file",
            "leaf",
            "status",
            "presented",
            "chain",
            "problems",
            "alternatives",
            "subject_kind",
            "receivers"
        ])
    );
    assert_eq!(
        keys(&r["leaf"]),
        set(&[
            "subject",
            "issuer",
            "sha256",
            "serial",
            "not_before",
            "not_after"
        ])
    );
    let problems = problems(&r);
    assert!(!problems.is_empty());
    let allowed = set(&[
        "code",
        "severity",
        "cert",
        "message",
        "receiver_view",
        "url",
        "detail",
        "repairable",
    ]);
    for p in &problems {
        let k = keys(p);
        for required in ["code", "severity", "message", "repairable"] {
            assert!(k.contains(required), "problem without {required}: {p}");
        }
        assert!(k.is_subset(&allowed), "unexpected problem keys: {p}");
        assert!(p["repairable"].is_boolean());
        assert!(["error", "warning", "info"].contains(&s(&p["severity"]).as_str()));
    }
    for item in r["chain"].as_array().expect("chain") {
        let k = keys(item);
        for required in ["subject", "issuer", "sha256", "not_after", "role", "source"] {
            assert!(
                k.contains(required),
                "chain item without {required}: {item}"
            );
        }
    }

    // Repair adds changed and files.
    let out = repair(
        &env,
        "out",
        &[
            "bare.pem",
            "--intermediates",
            "int.pem",
            "--roots",
            "root.pem",
        ],
    );
    let r = only_result(&out);
    let k = keys(&r);
    assert!(k.contains("changed") && k.contains("files"), "{k:?}");
    for f in r["files"].as_array().expect("files") {
        assert_eq!(keys(f), set(&["path", "action", "mode", "secret"]));
    }
}

// ---------------------------------------------------------------------------------------------
// 15. Real-world certificates (offline)
// ---------------------------------------------------------------------------------------------

/// `../shared/realworld` (tests reading it carry cfg `have_realworld`).
fn realworld() -> PathBuf {
    common::shared_path("realworld")
}

fn rw(dir: &Path, rel: &str) -> String {
    let p = dir.join(rel);
    assert!(
        p.exists(),
        "{} is missing from the real-world data",
        p.display()
    );
    p.display().to_string()
}

/// MANIFEST.tsv rows as column-name -> value maps.
fn manifest(dir: &Path) -> Vec<std::collections::HashMap<String, String>> {
    let text = read_string(&dir.join("MANIFEST.tsv"));
    let mut lines = text.lines();
    let header: Vec<String> = lines
        .next()
        .unwrap_or_default()
        .split('\t')
        .map(str::to_string)
        .collect();
    lines
        .map(|l| {
            header
                .iter()
                .cloned()
                .zip(l.split('\t').map(str::to_string))
                .collect()
        })
        .collect()
}

/// Inspects a real leaf with the Mozilla and legacy anchors (no default roots), offline.
fn inspect_realworld(env: &TestEnv, dir: &Path, at: &str, args: &[String]) -> Output {
    let mut cmd = chainfix_cmd(env, "inspect");
    cmd.args(["--at", at])
        .arg("--roots")
        .arg(rw(dir, "roots/mozilla-certifi-2026.10.18-cacert.pem"))
        .arg("--roots")
        .arg(rw(dir, "roots/legacy-anchors-used.pem"))
        .args(args);
    run(&mut cmd)
}

/// The chain reaches a trust-store root (self-signed) and every link's signature verified.
fn assert_reaches_trusted_root(r: &Value, what: &str) {
    let chain = r["chain"].as_array().expect("chain");
    assert!(chain.len() >= 2, "{what}: no chain built: {r}");
    let last = &chain[chain.len() - 1];
    assert_eq!(
        last["role"], "root",
        "{what}: chain does not end at a root: {r}"
    );
    assert_eq!(
        last["source"]["kind"], "roots",
        "{what}: the root must be the trust-store anchor: {last}"
    );
    assert_eq!(
        last["subject"], last["issuer"],
        "{what}: the chain must end at the self-signed root, not at a cross-signed copy: {last}"
    );
    for (i, c) in chain[..chain.len() - 1].iter().enumerate() {
        assert_eq!(
            c["signature"], "verified",
            "{what}: link {i} not verified: {c}"
        );
    }
    assert_no_finding(r, "untrusted-root");
    assert_no_finding(r, "signature-unverifiable");
    // The root's own signature never counts as weak.
    let root_sha = s(&last["sha256"]);
    for f in findings(r, "weak-signature") {
        assert_ne!(
            s(&f["cert"]["sha256"]),
            root_sha,
            "{what}: the root's self-signature was reported as weak: {f}"
        );
    }
}

#[test]
#[cfg_attr(
    not(have_realworld),
    ignore = "needs ../shared/realworld (or CHAINFIX_SHARED_DIR)"
)]
fn realworld_leaves_chain_to_their_roots_with_verified_links() {
    let dir = realworld();
    let rows = manifest(&dir);
    // (leaf file, time inside its validity, expected root sha256 prefix)
    let cases = [
        (
            "certs/leaf_python.org_fe57addc.pem",
            "2024-06-15T00:00:00Z",
            "96bcec06",
        ),
        (
            "certs/leaf_github.com_3111500c.pem",
            "2019-06-01T00:00:00Z",
            "7431e5f4",
        ),
        (
            "certs/leaf_aws.amazon.com_24c33861.pem",
            "2026-01-01T00:00:00Z",
            "8ecde688",
        ),
        (
            "certs/leaf_wildcard.google.com_07c39765.pem",
            "2024-01-15T00:00:00Z",
            "d947432a",
        ),
        (
            "certs/leaf_cloudflare.com_2bff1b53.pem",
            "2024-06-01T00:00:00Z",
            "16af57a9",
        ),
    ];
    let env = TestEnv::new();
    for (leaf, at, root_prefix) in cases {
        let row = rows
            .iter()
            .find(|r| r.get("file").map(String::as_str) == Some(leaf))
            .unwrap_or_else(|| panic!("{leaf} not in MANIFEST.tsv"));
        // The issuer files the manifest lists as verified by openssl (first one only: the
        // others may be cross-signs of the same intermediate).
        let issuer = row["issuer_files_verified"]
            .split(';')
            .next()
            .and_then(|f| f.split('[').next())
            .unwrap_or_default()
            .to_string();
        assert!(
            !issuer.is_empty(),
            "{leaf}: no verified issuer in the manifest"
        );
        let out = inspect_realworld(
            &env,
            &dir,
            at,
            &[rw(&dir, leaf), "--intermediates".into(), rw(&dir, &issuer)],
        );
        let r = only_result(&out);
        assert_reaches_trusted_root(&r, leaf);
        let chain = r["chain"].as_array().expect("chain");
        assert_eq!(chain.len(), 3, "{leaf}: {:?}", chain_subjects(&r));
        assert_eq!(chain[0]["sha256"], row["sha256"], "{leaf}");
        assert!(
            s(&chain[2]["sha256"]).starts_with(root_prefix),
            "{leaf}: expected root {root_prefix}…, got {}",
            chain[2]["sha256"]
        );
        // The intermediate was not presented: repairable, exit 1.
        let missing = expect_finding(&r, "missing-intermediate", "error");
        assert_eq!(missing["repairable"], true, "{leaf}");
        assert_eq!(r["status"], "repairable", "{leaf}: {:?}", summary(&r));
        out.assert_status(1);
    }
}

#[test]
#[cfg_attr(
    not(have_realworld),
    ignore = "needs ../shared/realworld (or CHAINFIX_SHARED_DIR)"
)]
fn realworld_cfssl_bundle_supplies_the_intermediate() {
    let dir = realworld();
    let env = TestEnv::new();
    let out = inspect_realworld(
        &env,
        &dir,
        "2019-06-01T00:00:00Z",
        &[
            rw(&dir, "certs/leaf_github.com_3111500c.pem"),
            "--intermediates".into(),
            rw(&dir, "bundles/cfssl_trust-int-bundle_2026.5.1.crt"),
        ],
    );
    let r = only_result(&out);
    assert_reaches_trusted_root(&r, "github.com via cfssl bundle");
    assert!(s(&r["chain"][1]["sha256"]).starts_with("403e062a"), "{r}");
    assert_eq!(r["chain"][1]["source"]["kind"], "intermediates");
    assert!(s(&r["chain"][2]["sha256"]).starts_with("7431e5f4"), "{r}");
    assert_eq!(r["status"], "repairable");
}

#[test]
#[cfg_attr(
    not(have_realworld),
    ignore = "needs ../shared/realworld (or CHAINFIX_SHARED_DIR)"
)]
fn realworld_gts_root_r1_cross_signed_by_globalsign_in_bundle_still_ends_at_self_signed_root() {
    // The cfssl bundle carries GTS Root R1 cross-signed by GlobalSign Root CA; the trust store
    // has the self-signed GTS Root R1. The chain must end at the self-signed anchor.
    let dir = realworld();
    let env = TestEnv::new();
    let out = inspect_realworld(
        &env,
        &dir,
        "2024-01-15T00:00:00Z",
        &[
            rw(&dir, "certs/leaf_wildcard.google.com_07c39765.pem"),
            "--intermediates".into(),
            rw(&dir, "bundles/cfssl_trust-int-bundle_2026.5.1.crt"),
        ],
    );
    let r = only_result(&out);
    assert_reaches_trusted_root(&r, "*.google.com via cfssl bundle");
    assert_eq!(
        chain_subjects(&r).len(),
        3,
        "leaf, GTS CA 1C3, GTS Root R1: {:?}",
        chain_subjects(&r)
    );
    assert!(
        s(&r["chain"][2]["sha256"]).starts_with("d947432a"),
        "expected the self-signed GTS Root R1 (d947432a…): {}",
        r["chain"][2]
    );
}

#[test]
#[cfg_attr(
    not(have_realworld),
    ignore = "needs ../shared/realworld (or CHAINFIX_SHARED_DIR)"
)]
fn realworld_isrg_root_x1_cross_signed_by_expired_dst_root_ca_x3() {
    let dir = realworld();
    let rows = manifest(&dir);
    let cross = "certs/ca_ISRG_Root_X1_6d99fb26.pem";
    let cross_row = rows
        .iter()
        .find(|r| r.get("file").map(String::as_str) == Some(cross));
    let cross_row =
        cross_row.expect("MANIFEST.tsv lists ISRG Root X1 cross-signed by DST Root CA X3");
    assert_eq!(cross_row["issuer_cn"], "DST Root CA X3");
    let env = TestEnv::new();
    let leaf = read_string(&dir.join("certs/leaf_python.org_fe57addc.pem"));
    let r3 = read_string(&dir.join("certs/ca_R3_67add116.pem"));
    let x1_cross = read_string(&dir.join(cross));
    // The Let's Encrypt default chain of 2021-2024: leaf, R3, ISRG Root X1 (by DST).
    env.write("served.pem", format!("{leaf}{r3}{x1_cross}"));
    env.write("plain.pem", format!("{leaf}{r3}"));
    let r3_by_dst = rw(&dir, "certs/ca_R3_730c1bdc.pem");
    let at = "2024-06-15T00:00:00Z";
    for (what, args) in [
        (
            "served with the cross-sign",
            vec![
                env.path("served.pem").display().to_string(),
                "--intermediates".into(),
                r3_by_dst.clone(),
            ],
        ),
        (
            "cross-sign in --intermediates",
            vec![
                env.path("plain.pem").display().to_string(),
                "--intermediates".into(),
                rw(&dir, cross),
                "--intermediates".into(),
                r3_by_dst.clone(),
            ],
        ),
    ] {
        let out = inspect_realworld(&env, &dir, at, &args);
        let r = only_result(&out);
        assert_reaches_trusted_root(&r, what);
        let chain = r["chain"].as_array().expect("chain");
        assert_eq!(chain.len(), 3, "{what}: {:?}", chain_subjects(&r));
        assert!(
            s(&chain[1]["sha256"]).starts_with("67add116"),
            "{what}: {}",
            chain[1]
        );
        assert!(
            s(&chain[2]["sha256"]).starts_with("96bcec06"),
            "{what}: the chain must end at the self-signed ISRG Root X1 (96bcec06…), not at \
             the copy cross-signed by the expired DST Root CA X3: {}",
            chain[2]
        );
        // The path through R3 signed by DST Root CA X3 was cut there: that R3 expired.
        let alts = r["alternatives"].as_array().expect("alternatives");
        assert!(
            alts.iter().any(|a| {
                a["chain"]
                    .as_array()
                    .is_some_and(|c| c.last().is_some_and(|n| n == "R3"))
                    && s(&a["reason"]).contains("R3 expired")
            }),
            "{what}: no expired R3 (by DST Root CA X3) alternative: {alts:?}"
        );
        assert_no_errors(&r);
        assert_eq!(r["status"], "ok", "{what}: {:?}", summary(&r));
        out.assert_status(0);
    }
}

#[test]
#[cfg_attr(
    not(have_realworld),
    ignore = "needs ../shared/realworld (or CHAINFIX_SHARED_DIR)"
)]
fn realworld_md2_signed_root_is_not_a_weak_signature() {
    // www.google.com (2009) <- Thawte SGC CA <- VeriSign Class 3 PCA, a v1 root self-signed
    // with MD2. The root's own signature is never checked or counted.
    let dir = realworld();
    let rows = manifest(&dir);
    let root_file = "certs/root_Class_3_Public_Primary_Certification_Authority_68725862.pem";
    let Some(root_row) = rows
        .iter()
        .find(|r| r.get("file").map(String::as_str) == Some(root_file))
    else {
        panic!("MANIFEST.tsv lists no {root_file} (the MD2-signed root)");
    };
    assert_eq!(root_row["sig_alg"], "md2WithRSAEncryption");
    let env = TestEnv::new();
    let out = inspect_realworld(
        &env,
        &dir,
        "2010-06-01T00:00:00Z",
        &[
            rw(&dir, "certs/leaf_www.google.com_f641c36c.pem"),
            "--intermediates".into(),
            rw(&dir, "certs/ca_Thawte_SGC_CA_1085a6f4.pem"),
        ],
    );
    let r = only_result(&out);
    assert_reaches_trusted_root(&r, "Thawte SGC chain");
    let chain = r["chain"].as_array().expect("chain");
    assert_eq!(chain.len(), 3);
    assert!(s(&chain[1]["sha256"]).starts_with("1085a6f4"));
    assert!(s(&chain[2]["sha256"]).starts_with("68725862"));
    // SHA-1 below the root is refused on the leaf and the intermediate (security level 1 and
    // up); the root's MD2 self-signature is not.
    let weak: BTreeSet<String> = findings(&r, "weak-signature")
        .iter()
        .map(|f| {
            assert_eq!(f["severity"], "error", "{f}");
            s(&f["cert"]["sha256"])[..8].to_string()
        })
        .collect();
    assert_eq!(weak, set(&["f641c36c", "1085a6f4"]));
}

// ---------------------------------------------------------------------------------------------
// 13. Signature algorithms the verifier cannot check (P-521, RSA-PSS with a long salt), and a
//     forged RSA-PSS signature under a trusted root's name
// ---------------------------------------------------------------------------------------------

/// One openssl signing run for `sign_with_openssl`.
struct OpensslSign<'a> {
    /// File name stem for the files written into the test directory.
    name: &'a str,
    /// The issuer's certificate PEM; None self-signs with `issuer_key` (the subject key becomes
    /// that key's public key).
    issuer_pem: Option<&'a str>,
    /// The issuer's private key PEM (any algorithm openssl knows, e.g. a P-521 key).
    issuer_key: &'a str,
    /// Replaces the subject public key, e.g. with a P-521 key, when set.
    subject_key: Option<&'a str>,
    /// Digest and signature options, e.g. `["-sha512"]` or
    /// `["-sha256", "-sigopt", "rsa_padding_mode:pss", "-sigopt", "rsa_pss_saltlen:max"]`.
    sign_args: &'a [&'a str],
    serial: u32,
}

/// Makes a certificate for `spec` with the real openssl, like `issue_with_openssl` (rcgen makes
/// the to-be-signed certificate with the spec's pinned dates, `openssl x509 -preserve_dates`
/// signs it), but with any issuer key, subject key and signature options. Extensions are
/// replaced by a CA or leaf profile (SKI from the subject key; AKI copied from the issuer's
/// SKI; for a leaf also the spec's dNSNames). Returns the PEM.
fn sign_with_openssl(env: &TestEnv, spec: &Spec, how: &OpensslSign<'_>) -> String {
    let name = how.name;
    let tbs = format!("{name}.tbs.pem");
    let issuer_key = format!("{name}.issuer.key");
    let cnf = format!("{name}.cnf");
    let out = format!("{name}.pem");
    env.write(&tbs, &self_signed(spec).pem);
    env.write(&issuer_key, how.issuer_key);
    let mut ext = if spec.is_ca {
        "basicConstraints = critical, CA:TRUE\n\
         keyUsage = critical, keyCertSign, cRLSign\n\
         subjectKeyIdentifier = hash\n"
            .to_string()
    } else {
        "basicConstraints = critical, CA:FALSE\n\
         keyUsage = critical, digitalSignature\n\
         extendedKeyUsage = serverAuth, clientAuth\n\
         subjectKeyIdentifier = hash\n"
            .to_string()
    };
    if how.issuer_pem.is_some() {
        ext.push_str("authorityKeyIdentifier = keyid:always\n");
    }
    if !spec.dns.is_empty() {
        let names: Vec<String> = spec.dns.iter().map(|d| format!("DNS:{d}")).collect();
        ext.push_str(&format!("subjectAltName = {}\n", names.join(", ")));
    }
    env.write(&cnf, format!("[ext]\n{ext}"));
    if let Some(key) = how.subject_key {
        // Self-sign the to-be-signed certificate with the subject key first: `openssl x509
        // -CA` checks the input's self-signature, so `-force_pubkey` alone is refused.
        let subject_key = format!("{name}.subject.key");
        env.write(&subject_key, key);
        env.openssl(&[
            "x509",
            "-in",
            &tbs,
            "-key",
            &subject_key,
            "-preserve_dates",
            "-out",
            &tbs,
        ])
        .assert_status(0);
    }
    let serial = how.serial.to_string();
    let mut args: Vec<String> = vec!["x509".into(), "-in".into(), tbs];
    match how.issuer_pem {
        Some(pem) => {
            let ca = format!("{name}.issuer.pem");
            env.write(&ca, pem);
            args.extend(["-CA".into(), ca, "-CAkey".into(), issuer_key]);
        }
        None => args.extend(["-key".into(), issuer_key]),
    }
    args.extend(
        [
            "-preserve_dates",
            "-set_serial",
            &serial,
            "-clrext",
            "-extfile",
            &cnf,
            "-extensions",
            "ext",
            "-out",
            &out,
        ]
        .map(str::to_string),
    );
    args.extend(how.sign_args.iter().map(|a| a.to_string()));
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    env.openssl(&argv).assert_status(0);
    String::from_utf8(env.read(&out)).expect("PEM is UTF-8")
}

/// `openssl x509 -text` of a PEM written to `rel`.
fn openssl_text(env: &TestEnv, rel: &str, pem: &str) -> String {
    env.write(rel, pem);
    let text = env.openssl(&["x509", "-in", rel, "-noout", "-text"]);
    text.assert_status(0);
    text.stdout
}

/// `openssl verify` at 2026-06-01 (AT) with `root` trusted and `untrusted` as
/// the intermediates bundle (files in the test directory).
fn openssl_verify(env: &TestEnv, root: &str, untrusted: Option<&str>, cert: &str) -> Output {
    let mut args = vec!["verify", "-attime", "1780272000", "-CAfile", root];
    if let Some(bundle) = untrusted {
        args.extend(["-untrusted", bundle]);
    }
    args.push(cert);
    env.openssl(&args)
}

/// A fresh P-521 private key (PKCS#8 PEM) from `openssl genpkey`.
fn p521_key(env: &TestEnv, rel: &str) -> String {
    env.openssl(&[
        "genpkey",
        "-algorithm",
        "EC",
        "-pkeyopt",
        "ec_paramgen_curve:P-521",
        "-pkeyopt",
        "ec_param_enc:named_curve",
        "-out",
        rel,
    ])
    .assert_status(0);
    String::from_utf8(env.read(rel)).expect("PEM is UTF-8")
}

/// The chain's `signature` fields, leaf first (the root has none: null).
fn chain_signatures(r: &Value) -> Vec<Value> {
    r["chain"]
        .as_array()
        .expect("chain is an array")
        .iter()
        .map(|c| c["signature"].clone())
        .collect()
}

/// Asserts the built chain ends at the root given with --roots.
fn assert_ends_at_given_root(r: &Value, root_subject: &str) {
    let chain = r["chain"].as_array().expect("chain is an array");
    let last = chain.last().expect("chain is not empty");
    assert_eq!(last["subject"], root_subject, "{r:#}");
    assert_eq!(last["role"], "root", "{r:#}");
    assert_eq!(last["source"]["kind"], "roots", "{r:#}");
    assert_no_finding(r, "missing-intermediate");
    assert_no_finding(r, "untrusted-root");
}

#[test]
fn p521_root_signing_intermediate_with_ecdsa_sha512_is_verified() {
    let env = TestEnv::new();
    let root_key = p521_key(&env, "p521-root.key");
    let root_spec = Spec::ca("P-521 Root", Alg::P256(0)).serial(130);
    let root_pem = sign_with_openssl(
        &env,
        &root_spec,
        &OpensslSign {
            name: "root",
            issuer_pem: None,
            issuer_key: &root_key,
            subject_key: None,
            sign_args: &["-sha512"],
            serial: 130,
        },
    );
    let int_spec = Spec::ca("P-521 Issued Intermediate", Alg::Rsa2048(1)).serial(131);
    let int_pem = sign_with_openssl(
        &env,
        &int_spec,
        &OpensslSign {
            name: "int",
            issuer_pem: Some(&root_pem),
            issuer_key: &root_key,
            subject_key: None,
            sign_args: &["-sha512"],
            serial: 131,
        },
    );
    let leaf_spec = Spec::leaf("mail.example.test", Alg::Rsa2048(2)).serial(132);
    let leaf_pem = sign_with_openssl(
        &env,
        &leaf_spec,
        &OpensslSign {
            name: "leaf1",
            issuer_pem: Some(&int_pem),
            issuer_key: key_pem(Alg::Rsa2048(1)),
            subject_key: None,
            sign_args: &["-sha256"],
            serial: 132,
        },
    );
    // The fixture is what it claims: a P-521 root, an ecdsa-with-SHA512 link, and a chain the
    // real openssl accepts.
    let root_text = openssl_text(&env, "root.pem", &root_pem);
    assert!(root_text.contains("NIST CURVE: P-521"), "{root_text}");
    let int_text = openssl_text(&env, "int.pem", &int_pem);
    assert!(
        int_text.contains("Signature Algorithm: ecdsa-with-SHA512"),
        "{int_text}"
    );
    assert!(int_text.contains("Not Before: Jan  1 00:00:00 2020 GMT"));
    openssl_verify(&env, "root.pem", Some("int.pem"), "leaf1.pem").assert_status(0);

    env.write("leaf.pem", format!("{leaf_pem}{int_pem}"));
    let out = inspect(&env, &["leaf.pem", "--roots", "root.pem"]);
    let r = only_result(&out);
    assert_eq!(
        chain_subjects(&r),
        vec![
            cn("mail.example.test"),
            cn("P-521 Issued Intermediate"),
            cn("P-521 Root")
        ],
        "{r:#}"
    );
    assert_eq!(
        chain_signatures(&r)[..2],
        [Value::from("verified"), Value::from("verified")],
        "{r:#}"
    );
    assert_ends_at_given_root(&r, &cn("P-521 Root"));
    assert_no_finding(&r, "signature-unverifiable");
    assert_no_finding(&r, "weak-signature");
    assert_no_errors(&r);
    assert_eq!(r["status"], "ok", "{r:#}");
    out.assert_status(0);
}

#[test]
fn p521_intermediate_signing_leaf_with_ecdsa_sha512_is_verified() {
    let env = TestEnv::new();
    let int_key = p521_key(&env, "p521-int.key");
    let root = self_signed(&Spec::ca("RSA Root Over P-521", Alg::Rsa2048(0)).serial(133));
    // The intermediate carries the P-521 key; the RSA root signs it with SHA-256 (verifiable).
    let int_spec = Spec::ca("P-521 Intermediate", Alg::P256(1)).serial(134);
    let int_pem = sign_with_openssl(
        &env,
        &int_spec,
        &OpensslSign {
            name: "int",
            issuer_pem: Some(&root.pem),
            issuer_key: &root.key_pem,
            subject_key: Some(&int_key),
            sign_args: &["-sha256"],
            serial: 134,
        },
    );
    let leaf_spec = Spec::leaf("mail.example.test", Alg::P256(2)).serial(135);
    let leaf_pem = sign_with_openssl(
        &env,
        &leaf_spec,
        &OpensslSign {
            name: "leaf1",
            issuer_pem: Some(&int_pem),
            issuer_key: &int_key,
            subject_key: None,
            sign_args: &["-sha512"],
            serial: 135,
        },
    );
    let int_text = openssl_text(&env, "int.pem", &int_pem);
    assert!(int_text.contains("NIST CURVE: P-521"), "{int_text}");
    let leaf_text = openssl_text(&env, "leaf1.pem", &leaf_pem);
    assert!(
        leaf_text.contains("Signature Algorithm: ecdsa-with-SHA512"),
        "{leaf_text}"
    );
    env.write("root.pem", &root.pem);
    openssl_verify(&env, "root.pem", Some("int.pem"), "leaf1.pem").assert_status(0);

    env.write("leaf.pem", format!("{leaf_pem}{int_pem}"));
    let out = inspect(&env, &["leaf.pem", "--roots", "root.pem"]);
    let r = only_result(&out);
    assert_eq!(
        chain_subjects(&r),
        vec![
            cn("mail.example.test"),
            cn("P-521 Intermediate"),
            cn("RSA Root Over P-521")
        ],
        "{r:#}"
    );
    assert_eq!(
        chain_signatures(&r)[..2],
        [Value::from("verified"), Value::from("verified")],
        "{r:#}"
    );
    assert_ends_at_given_root(&r, &cn("RSA Root Over P-521"));
    assert_no_finding(&r, "signature-unverifiable");
    assert_no_errors(&r);
    assert_eq!(r["status"], "ok", "{r:#}");
    out.assert_status(0);

    // Repair writes the chain although one link rests on names and key ids only.
    let out = repair(&env, "out", &["leaf.pem", "--roots", "root.pem"]);
    out.assert_status(0);
    assert_eq!(
        read_string(&env.path("out/fullchain.pem")),
        format!("{leaf_pem}{int_pem}")
    );
}

/// "PSS Root" (rcgen, RSA key a, self-signed with sha256WithRSAEncryption).
fn pss_root() -> Cert {
    self_signed(&Spec::ca("PSS Root", Alg::Rsa2048(0)).serial(140))
}

/// The RSA-PSS fixture, written into `env`: root.pem ("PSS Root"); int.pem ("PSS
/// Intermediate", RSA key b) signed with RSASSA-PSS/SHA-256 and `rsa_pss_saltlen:saltlen` by
/// `signer_key` under the issuer certificate `issuer_pem` (the root, or an impostor for a
/// forgery); leaf1.pem (mail.example.test, RSA key c) signed by the intermediate with
/// sha256WithRSAEncryption; leaf.pem = leaf + intermediate. Returns `openssl x509 -text` of
/// the intermediate.
fn pss_chain(env: &TestEnv, saltlen: &str, issuer_pem: &str, signer_key: &str) -> String {
    let salt = format!("rsa_pss_saltlen:{saltlen}");
    pss_chain_with(env, &[&salt], issuer_pem, signer_key)
}

/// `pss_chain` with any further `-sigopt` values (`rsa_pss_saltlen:..`, `rsa_mgf1_md:..`).
fn pss_chain_with(env: &TestEnv, sigopts: &[&str], issuer_pem: &str, signer_key: &str) -> String {
    let int_spec = Spec::ca("PSS Intermediate", Alg::Rsa2048(1)).serial(141);
    let mut sign_args = vec!["-sha256", "-sigopt", "rsa_padding_mode:pss"];
    for opt in sigopts {
        sign_args.extend(["-sigopt", opt]);
    }
    let int_pem = sign_with_openssl(
        env,
        &int_spec,
        &OpensslSign {
            name: "int",
            issuer_pem: Some(issuer_pem),
            issuer_key: signer_key,
            subject_key: None,
            sign_args: &sign_args,
            serial: 141,
        },
    );
    let leaf_spec = Spec::leaf("mail.example.test", Alg::Rsa2048(2)).serial(142);
    let leaf_pem = sign_with_openssl(
        env,
        &leaf_spec,
        &OpensslSign {
            name: "leaf1",
            issuer_pem: Some(&int_pem),
            issuer_key: key_pem(Alg::Rsa2048(1)),
            subject_key: None,
            sign_args: &["-sha256"],
            serial: 142,
        },
    );
    env.write("root.pem", &pss_root().pem);
    env.write("leaf.pem", format!("{leaf_pem}{int_pem}"));
    let text = openssl_text(env, "int.pem", &int_pem);
    assert!(text.contains("Signature Algorithm: rsassaPss"), "{text}");
    assert!(text.contains("Hash Algorithm: sha256"), "{text}");
    assert!(text.contains("Issuer: CN = PSS Root"), "{text}");
    text
}

/// `openssl x509 -ext authorityKeyIdentifier` of a certificate file in `env`.
fn openssl_aki(env: &TestEnv, rel: &str) -> String {
    let out = env.openssl(&[
        "x509",
        "-in",
        rel,
        "-noout",
        "-ext",
        "authorityKeyIdentifier",
    ]);
    out.assert_status(0);
    assert!(
        out.stdout.contains("Authority Key Identifier"),
        "{rel}: {}",
        out.stdout
    );
    out.stdout
}

/// Inspects the PSS fixture and asserts leaf -> PSS Intermediate -> PSS Root with these link
/// signatures and no error; returns the result.
fn assert_pss_chain_ok(env: &TestEnv, int_link: &str) -> Value {
    let out = inspect(env, &["leaf.pem", "--roots", "root.pem"]);
    let r = only_result(&out);
    assert_eq!(
        chain_subjects(&r),
        vec![
            cn("mail.example.test"),
            cn("PSS Intermediate"),
            cn("PSS Root")
        ],
        "{r:#}"
    );
    assert_eq!(
        chain_signatures(&r)[..2],
        [Value::from("verified"), Value::from(int_link)],
        "{r:#}"
    );
    assert_ends_at_given_root(&r, &cn("PSS Root"));
    assert_no_finding(&r, "weak-signature");
    assert_no_errors(&r);
    assert_eq!(r["status"], "ok", "{r:#}");
    out.assert_status(0);
    r
}

#[test]
fn rsa_pss_with_maximum_salt_length_is_verified() {
    let env = TestEnv::new();
    let root = pss_root();
    let text = pss_chain(&env, "max", &root.pem, &root.key_pem);
    // 2048-bit modulus, SHA-256: the maximum salt is 256 - 32 - 2 = 222 bytes.
    assert!(text.contains("Salt Length: 0xDE"), "{text}");
    openssl_verify(&env, "root.pem", Some("int.pem"), "leaf1.pem").assert_status(0);

    let r = assert_pss_chain_ok(&env, "verified");
    assert_no_finding(&r, "signature-unverifiable");
}

#[test]
fn rsa_pss_with_digest_length_salt_is_verified_without_warning() {
    let env = TestEnv::new();
    let root = pss_root();
    let text = pss_chain(&env, "32", &root.pem, &root.key_pem);
    assert!(text.contains("Salt Length: 0x20"), "{text}");
    openssl_verify(&env, "root.pem", Some("int.pem"), "leaf1.pem").assert_status(0);

    let r = assert_pss_chain_ok(&env, "verified");
    assert_no_finding(&r, "signature-unverifiable");
}

#[test]
fn forged_rsa_pss_signature_under_the_trusted_root_name_is_not_chained() {
    // The genuine intermediate, for its authority key id.
    let genuine = TestEnv::new();
    let root = pss_root();
    pss_chain(&genuine, "32", &root.pem, &root.key_pem);
    let genuine_aki = openssl_aki(&genuine, "int.pem");

    // An impostor CA: the real root re-signed with another key (RSA key d). `-key` without
    // extension options keeps the root's subject and its subjectKeyIdentifier, so what the
    // impostor issues names "PSS Root" and carries the real root's key id in its AKI: only
    // the signature tells the forgery apart.
    let env = TestEnv::new();
    env.write("genuine-root.pem", &root.pem);
    env.write("impostor.key", key_pem(Alg::Rsa2048(3)));
    env.openssl(&[
        "x509",
        "-in",
        "genuine-root.pem",
        "-key",
        "impostor.key",
        "-preserve_dates",
        "-out",
        "impostor.pem",
    ])
    .assert_status(0);
    let impostor = String::from_utf8(env.read("impostor.pem")).expect("PEM is UTF-8");
    let text = pss_chain(&env, "32", &impostor, key_pem(Alg::Rsa2048(3)));
    assert!(text.contains("Salt Length: 0x20"), "{text}");
    assert_eq!(
        openssl_aki(&env, "int.pem"),
        genuine_aki,
        "the forgery must carry the real root's key id"
    );
    // The real openssl rejects the forged link.
    let verify = openssl_verify(&env, "root.pem", None, "int.pem");
    assert_ne!(verify.status, 0, "openssl accepted the forgery: {verify:?}");

    let out = inspect(&env, &["leaf.pem", "--roots", "root.pem"]);
    out.assert_status(1);
    let r = only_result(&out);
    assert_eq!(
        chain_subjects(&r),
        vec![cn("mail.example.test"), cn("PSS Intermediate")],
        "the forged intermediate must not be chained to the root:\n{r:#}"
    );
    assert_eq!(chain_signatures(&r)[0], "verified", "{r:#}");
    assert!(
        r["chain"]
            .as_array()
            .expect("chain")
            .iter()
            .all(|c| c["role"] != "root"),
        "{r:#}"
    );
    let missing = expect_finding(&r, "missing-intermediate", "error");
    assert_eq!(
        missing["cert"]["subject"],
        cn("PSS Intermediate"),
        "{missing}"
    );
    assert_eq!(missing["repairable"], false, "{missing}");
    assert_no_finding(&r, "signature-unverifiable");
    assert_eq!(r["status"], "broken", "{r:#}");

    // Nothing is written for a chain that does not reach its root.
    let out = repair(&env, "out", &["leaf.pem", "--roots", "root.pem"]);
    out.assert_status(1);
    assert!(!env.path("out/fullchain.pem").exists());
}

/// ring's RSA-PSS verifiers use MGF1 with the message digest; a genuine signature whose MGF1
/// digest differs (SHA-256 message, MGF1-SHA1, salt 32) is verified as OpenSSL verifies it,
/// not rejected as a forgery.
#[test]
fn rsa_pss_with_mgf1_sha1_under_sha256_is_verified() {
    let env = TestEnv::new();
    let root = pss_root();
    let text = pss_chain_with(
        &env,
        &["rsa_pss_saltlen:32", "rsa_mgf1_md:sha1"],
        &root.pem,
        &root.key_pem,
    );
    assert!(text.contains("Mask Algorithm: mgf1 with sha1"), "{text}");
    assert!(text.contains("Salt Length: 0x20"), "{text}");
    // Genuine: the real openssl accepts it.
    openssl_verify(&env, "root.pem", Some("int.pem"), "leaf1.pem").assert_status(0);

    let r = assert_pss_chain_ok(&env, "verified");
    assert_no_finding(&r, "signature-unverifiable");
}

// ---------------------------------------------------------------------------------------------
// 14. The embedded Mozilla root store
// ---------------------------------------------------------------------------------------------

#[test]
#[cfg_attr(
    not(have_realworld),
    ignore = "needs ../shared/realworld (or CHAINFIX_SHARED_DIR)"
)]
fn embedded_mozilla_roots_are_the_default_trust_anchors() {
    // letsencrypt.org (E5, 2025) chains to ISRG Root X1, which the embedded store holds.
    let dir = realworld();
    let env = TestEnv::new();
    let leaf = rw(&dir, "certs/leaf_letsencrypt.org_11400413.pem");
    let e5 = rw(&dir, "certs/ca_E5_5dfdb3cf.pem");
    let mut cmd = env.cmd();
    cmd.args([
        "inspect",
        "--json",
        "--offline",
        "--at",
        "2025-05-01T00:00:00Z",
    ])
    .arg("--cache-dir")
    .arg(env.path("cache"))
    .args([leaf.as_str(), "--intermediates", e5.as_str()]);
    let out = run(&mut cmd);
    let r = only_result(&out);
    let chain = r["chain"].as_array().expect("chain");
    assert_eq!(chain.len(), 3, "{r}");
    assert_eq!(chain[2]["role"], "root", "{r}");
    assert_eq!(chain[2]["source"]["kind"], "mozilla-roots", "{r}");
    assert!(s(&chain[2]["subject"]).contains("ISRG Root X1"), "{r}");
    assert_eq!(r["status"], "repairable", "{r}");

    // The same run without the embedded store cannot reach a trusted root.
    let out = inspect_at(
        &env,
        "2025-05-01T00:00:00Z",
        &[leaf.as_str(), "--intermediates", e5.as_str()],
    );
    out.assert_status(1);
    let r = only_result(&out);
    assert_eq!(r["status"], "broken", "{r}");
    assert!(
        r["chain"]
            .as_array()
            .expect("chain")
            .iter()
            .all(|c| c["source"]["kind"] != "mozilla-roots"),
        "{r}"
    );
}

#[test]
#[cfg_attr(
    not(have_realworld),
    ignore = "needs ../shared/realworld (or CHAINFIX_SHARED_DIR)"
)]
fn realworld_name_constrained_swiss_government_ca_is_refused_not_written() {
    // www.schweizerfilmpreis.ch (2017) was issued by Swiss Government Public Trust Standard CA
    // 02, whose nameConstraints do not permit that name. With the CCADB intermediate bundle as
    // the pool, chainfix once wrote this chain; OpenSSL 3 refuses it (error 47, permitted
    // subtree violation).
    let dir = realworld();
    let env = TestEnv::new();
    let gz = std::fs::File::open(
        dir.join("bundles/ccadb-all-certificate-pems_crtsh-ccadb_data-64b3f6e.pem.gz"),
    )
    .expect("CCADB bundle");
    let mut pool = Vec::new();
    std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(gz), &mut pool).expect("gunzip");
    let pool = env.write("ccadb.pem", pool).display().to_string();
    let leaf = rw(&dir, "certs/leaf_www.schweizerfilmpreis.ch_d570517b.pem");
    let at = "2018-06-01T00:00:00Z";
    let verify = env.openssl(&[
        "verify",
        "-purpose",
        "sslserver",
        "-auth_level",
        "2",
        "-no-CApath",
        "-no-CAstore",
        "-CAfile",
        &rw(&dir, "roots/mozilla-certifi-2026.10.18-cacert.pem"),
        "-untrusted",
        &pool,
        "-attime",
        "1527811200", // 2018-06-01
        &leaf,
    ]);
    assert!(
        verify.stdout.contains("error 47") || verify.stderr.contains("error 47"),
        "openssl must refuse it for the name constraint: {verify:?}"
    );

    let args = [leaf.clone(), "--intermediates".into(), pool.clone()];
    let out = inspect_realworld(&env, &dir, at, &args);
    out.assert_status(1);
    let r = only_result(&out);
    let nc = expect_finding(&r, "name-constraint-violated", "error");
    assert!(
        s(&nc["cert"]["subject"]).contains("www.schweizerfilmpreis.ch"),
        "{nc}"
    );
    assert!(
        s(&nc["message"]).contains("Swiss Government Public Trust Standard CA 02"),
        "{nc}"
    );
    assert_eq!(r["status"], "broken", "{:?}", summary(&r));

    let mut cmd = chainfix_cmd(&env, "repair");
    cmd.args(["--at", at, "--out", "out"])
        .arg("--roots")
        .arg(rw(&dir, "roots/mozilla-certifi-2026.10.18-cacert.pem"))
        .args(&args);
    let out = run(&mut cmd);
    out.assert_status(1);
    assert!(
        !env.path("out/fullchain.pem").exists(),
        "the refused chain was written"
    );
}
