//! DANE TLSA, offline (`--tlsa`, `--tlsa-file`, `--accept-dane-break`, `tlsa.zone`): chainfix's
//! verdict for the presented chain and the chain `repair` writes, the stop before a repair that
//! would break the records in force, and the records it writes to publish.
//!
//! Record data is computed here with the `openssl` command, not with chainfix's code. Real
//! chains come from `../shared/realworld` (Let's Encrypt E5-E8 leaves, E5 cross-signed by ISRG
//! Root X1 and X2). The last tests start a real Postfix serving the written chain and check
//! that `openssl s_client -dane_tlsa_rrdata` agrees with chainfix on every record set used.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::{issue, run, run_with_timeout, self_signed, Alg, Cert, Output, Spec, TestEnv};
use serde_json::Value;

/// Inside every generated certificate's validity, close to the real date (Postfix and openssl
/// use the real clock).
const AT: &str = "2026-11-22T00:00:00Z";
const HOST: &str = "mail.example.test";

// ---------------------------------------------------------------------------------------------
// A PKI with a cross-signed intermediate and a second leaf key
// ---------------------------------------------------------------------------------------------

struct Pki {
    root: Cert,
    /// The intermediate, issued by `root`.
    int: Cert,
    /// The same intermediate (subject, key) re-issued by another root: a cross-sign.
    int_cross: Cert,
    /// mail.example.test, key P-256 a, issued by `int`.
    leaf: Cert,
    /// The renewal with a new key (P-256 b), same name and issuer.
    leaf_new_key: Cert,
}

impl Pki {
    fn new() -> Pki {
        let root = self_signed(&Spec::ca("DANE Test Root", Alg::Rsa2048(0)).serial(1));
        let other_root = self_signed(&Spec::ca("DANE Other Root", Alg::Rsa2048(2)).serial(9));
        let int_spec = Spec::ca("DANE Test Issuing CA", Alg::Rsa2048(1)).serial(2);
        let int = issue(&int_spec, &root);
        let int_cross = issue(&int_spec.clone().serial(7), &other_root);
        let leaf = issue(&Spec::leaf(HOST, Alg::P256(0)).serial(3), &int);
        let leaf_new_key = issue(&Spec::leaf(HOST, Alg::P256(1)).serial(4), &int);
        Pki {
            root,
            int,
            int_cross,
            leaf,
            leaf_new_key,
        }
    }

    /// root.pem, int.pem, int-cross.pem, served.pem (leaf + int), leaf.pem, leaf.key,
    /// new/leaf.pem + new/leaf.key (the new key, leaf only).
    fn write(&self, env: &TestEnv) {
        env.write("root.pem", &self.root.pem);
        env.write("int.pem", &self.int.pem);
        env.write("int-cross.pem", &self.int_cross.pem);
        env.write("leaf.pem", &self.leaf.pem);
        env.write("served.pem", format!("{}{}", self.leaf.pem, self.int.pem));
        env.write("leaf.key", &self.leaf.key_pem);
        env.write("new/leaf.pem", &self.leaf_new_key.pem);
        env.write("new/leaf.key", &self.leaf_new_key.key_pem);
    }
}

/// The certificate association data of `usage selector matching` for `pem`, hex, computed
/// with the openssl command (RFC 6698 §2.1: selector 0 the certificate DER, 1 the SPKI DER).
fn data(env: &TestEnv, pem: &str, selector: u8, matching: u8) -> String {
    let cert = env.write("sel/cert.pem", pem);
    let cert = cert.to_str().expect("UTF-8 path");
    let selected = env.path("sel/selected.der");
    let selected = selected.to_str().expect("UTF-8 path");
    if selector == 1 {
        let key = env.path("sel/pub.pem");
        let key = key.to_str().expect("UTF-8 path");
        env.openssl(&["x509", "-in", cert, "-noout", "-pubkey", "-out", key])
            .assert_status(0);
        env.openssl(&[
            "pkey", "-pubin", "-in", key, "-outform", "DER", "-out", selected,
        ])
        .assert_status(0);
    } else {
        env.openssl(&["x509", "-in", cert, "-outform", "DER", "-out", selected])
            .assert_status(0);
    }
    let hash = match matching {
        1 => "-sha256",
        2 => "-sha512",
        _ => {
            let bytes = std::fs::read(selected).expect("selected bytes");
            return bytes.iter().map(|b| format!("{b:02x}")).collect();
        }
    };
    let out = env.openssl(&["dgst", hash, "-r", selected]);
    out.assert_status(0);
    out.stdout
        .split_whitespace()
        .next()
        .expect("digest")
        .to_string()
}

fn record(env: &TestEnv, usage: u8, pem: &str, selector: u8, matching: u8) -> String {
    format!(
        "{usage} {selector} {matching} {}",
        data(env, pem, selector, matching)
    )
}

/// `chainfix inspect FILES --roots root.pem --no-default-roots --offline --at AT --json EXTRA`.
fn inspect(env: &TestEnv, files: &[&str], extra: &[&str]) -> Output {
    run(env
        .cmd()
        .arg("inspect")
        .args(files)
        .args(["--roots", "root.pem", "--no-default-roots", "--offline"])
        .args(["--at", AT, "--json"])
        .args(extra))
}

/// `chainfix repair FILES ... --out OUT --emit pem,postfix,dane EXTRA`.
fn repair(env: &TestEnv, files: &[&str], out: &Path, extra: &[&str]) -> Output {
    run(env
        .cmd()
        .arg("repair")
        .args(files)
        .args(["--intermediates", "int.pem"])
        .args(["--roots", "root.pem", "--no-default-roots", "--offline"])
        .args(["--at", AT, "--json", "--emit", "pem,postfix,dane"])
        .arg("--out")
        .arg(out)
        .args(extra))
}

/// `--tlsa R` for each record.
fn tlsa_args(records: &[String]) -> Vec<String> {
    records
        .iter()
        .flat_map(|r| ["--tlsa".to_string(), r.clone()])
        .collect()
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

fn result(report: &Value) -> &Value {
    let results = report["results"].as_array().expect("results");
    assert_eq!(results.len(), 1, "one leaf: {report:#}");
    &results[0]
}

fn codes(report: &Value) -> Vec<(String, String)> {
    result(report)["problems"]
        .as_array()
        .expect("problems")
        .iter()
        .map(|p| {
            (
                p["code"].as_str().expect("code").to_string(),
                p["severity"].as_str().expect("severity").to_string(),
            )
        })
        .collect()
}

fn has(report: &Value, code: &str, severity: &str) -> bool {
    codes(report)
        .iter()
        .any(|(c, s)| c == code && s == severity)
}

fn problem<'a>(report: &'a Value, code: &str) -> &'a Value {
    result(report)["problems"]
        .as_array()
        .expect("problems")
        .iter()
        .find(|p| p["code"] == code)
        .unwrap_or_else(|| panic!("no {code} in {report:#}"))
}

/// The `dane` object of the single result.
fn dane(report: &Value) -> &Value {
    &result(report)["dane"]
}

fn verdicts(report: &Value, which: &str) -> Vec<String> {
    dane(report)["records"]
        .as_array()
        .expect("records")
        .iter()
        .map(|r| r[which]["verdict"].as_str().expect("verdict").to_string())
        .collect()
}

fn pem_count(path: &Path) -> usize {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .matches("-----BEGIN CERTIFICATE-----")
        .count()
}

// ---------------------------------------------------------------------------------------------
// Matching and mismatching records
// ---------------------------------------------------------------------------------------------

#[test]
fn a_3_1_1_of_the_server_key_matches_and_another_key_does_not() {
    let env = TestEnv::new();
    let pki = Pki::new();
    pki.write(&env);
    let good = record(&env, 3, &pki.leaf.pem, 1, 1);
    let out = inspect(&env, &["served.pem"], &["--tlsa", &good]);
    out.assert_status(0);
    let report = out.json();
    assert_eq!(dane(&report)["presented"], "authenticated", "{report:#}");
    assert_eq!(verdicts(&report, "presented"), ["match"]);
    assert!(!codes(&report).iter().any(|(c, _)| c.starts_with("dane-")));

    // SHA-512 and the full key (matching types 2 and 0) match too.
    for m in [2, 0] {
        let r = record(&env, 3, &pki.leaf.pem, 1, m);
        let out = inspect(&env, &["served.pem"], &["--tlsa", &r]);
        out.assert_status(0);
        assert_eq!(dane(&out.json())["presented"], "authenticated");
    }

    let other = record(&env, 3, &pki.leaf_new_key.pem, 1, 1);
    let out = inspect(&env, &["served.pem"], &["--tlsa", &other]);
    out.assert_status(1);
    let report = out.json();
    assert_eq!(dane(&report)["presented"], "failed");
    assert!(has(&report, "dane-mismatch", "error"), "{report:#}");
    let p = problem(&report, "dane-mismatch");
    assert!(
        p["receiver_view"]
            .as_str()
            .expect("present")
            .contains("4.7.323"),
        "{p:#}"
    );
}

#[test]
fn a_2_1_1_of_the_served_issuer_matches_and_checks_the_mx_host_name() {
    let env = TestEnv::new();
    let pki = Pki::new();
    pki.write(&env);
    let int = record(&env, 2, &pki.int.pem, 1, 1);
    // The owner names the host: the leaf is for mail.example.test.
    let line = format!("_25._tcp.{HOST}. 3600 IN TLSA {int}");
    let out = inspect(&env, &["served.pem"], &["--tlsa", &line]);
    out.assert_status(0);
    let report = out.json();
    assert_eq!(dane(&report)["presented"], "authenticated");
    assert_eq!(dane(&report)["host"], HOST);
    assert_eq!(
        dane(&report)["records"][0]["presented"]["name_checked"],
        true
    );

    // The same record for another MX host: the DANE-TA name check fails (4.7.325).
    let line = format!("_25._tcp.mx.other.test. 3600 IN TLSA {int}");
    let out = inspect(&env, &["served.pem"], &["--tlsa", &line]);
    out.assert_status(1);
    let report = out.json();
    assert_eq!(verdicts(&report, "presented"), ["name-mismatch"]);
    let p = problem(&report, "dane-name-mismatch");
    assert!(p["receiver_view"]
        .as_str()
        .expect("present")
        .contains("4.7.325"));

    // A 2 1 1 of a CA that is not in the chain at all.
    let stranger = record(&env, 2, &pki.leaf_new_key.pem, 1, 1);
    let out = inspect(&env, &["served.pem"], &["--tlsa", &stranger]);
    out.assert_status(1);
    assert!(has(&out.json(), "dane-mismatch", "error"));
}

#[test]
fn a_2_0_1_record_breaks_when_the_intermediate_is_cross_signed_and_2_1_1_survives() {
    let env = TestEnv::new();
    let pki = Pki::new();
    pki.write(&env);
    // Records made for the cross-signed copy; the server sends the copy issued by the root.
    let full = record(&env, 2, &pki.int_cross.pem, 0, 1);
    let key = record(&env, 2, &pki.int_cross.pem, 1, 1);
    let out = inspect(&env, &["served.pem"], &["--tlsa", &full]);
    out.assert_status(1);
    let report = out.json();
    assert!(has(&report, "dane-mismatch", "error"), "{report:#}");
    assert!(has(&report, "dane-fragile-record", "warning"), "{report:#}");

    let out = inspect(&env, &["served.pem"], &["--tlsa", &full, "--tlsa", &key]);
    out.assert_status(0);
    let report = out.json();
    assert_eq!(verdicts(&report, "presented"), ["mismatch", "match"]);
    assert!(has(&report, "dane-fragile-record", "warning"));
}

#[test]
fn unusable_pkix_records_are_warned_about_and_give_no_protection() {
    let env = TestEnv::new();
    let pki = Pki::new();
    pki.write(&env);
    let pkix_ta = record(&env, 0, &pki.int.pem, 1, 1);
    let pkix_ee = record(&env, 1, &pki.leaf.pem, 1, 1);
    let out = inspect(
        &env,
        &["served.pem"],
        &["--tlsa", &pkix_ta, "--tlsa", &pkix_ee],
    );
    // Mail still flows (TLS without authentication): a warning, not an error.
    out.assert_status(0);
    let report = out.json();
    assert_eq!(dane(&report)["presented"], "no-usable-records");
    assert_eq!(verdicts(&report, "presented"), ["unusable", "unusable"]);
    let p = problem(&report, "dane-unusable-record");
    assert_eq!(p["severity"], "warning");
    assert!(p["message"]
        .as_str()
        .expect("present")
        .contains("protects nothing"));

    // Beside a usable matching record they are only ignored.
    let good = record(&env, 3, &pki.leaf.pem, 1, 1);
    let out = inspect(
        &env,
        &["served.pem"],
        &["--tlsa", &pkix_ee, "--tlsa", &good],
    );
    out.assert_status(0);
    let report = out.json();
    assert_eq!(dane(&report)["presented"], "authenticated");
    assert!(has(&report, "dane-unusable-record", "warning"));
}

#[test]
fn an_rrset_above_twelve_records_is_warned_about() {
    let env = TestEnv::new();
    let pki = Pki::new();
    pki.write(&env);
    let good = record(&env, 3, &pki.leaf.pem, 1, 1);
    // 12 records are fine; a 13th is more than some senders process.
    let mut text = String::new();
    for i in 0..12 {
        text.push_str(&format!("_25._tcp.{HOST}. IN TLSA 3 1 1 {i:064x}\n"));
    }
    env.write(
        "twelve.txt",
        format!("{text}_25._tcp.{HOST}. IN TLSA {good}\n"),
    );
    let out = inspect(&env, &["served.pem"], &["--tlsa-file", "twelve.txt"]);
    out.assert_status(0);
    let report = out.json();
    assert!(
        has(&report, "dane-rrset-too-large", "warning"),
        "{report:#}"
    );
    env.write("one.txt", format!("_25._tcp.{HOST}. IN TLSA {good}\n"));
    let out = inspect(&env, &["served.pem"], &["--tlsa-file", "one.txt"]);
    assert!(!has(&out.json(), "dane-rrset-too-large", "warning"));
}

#[test]
fn dane_ee_ignores_the_expiry_of_the_leaf() {
    let env = TestEnv::new();
    let pki = Pki::new();
    pki.write(&env);
    let good = record(&env, 3, &pki.leaf.pem, 1, 1);
    let out = run(env
        .cmd()
        .args(["inspect", "served.pem", "--roots", "root.pem"])
        .args(["--no-default-roots", "--offline", "--json"])
        .args(["--at", "2035-01-01T00:00:00Z", "--tlsa", &good]));
    out.assert_status(1);
    let report = out.json();
    assert!(has(&report, "expired", "error"));
    // RFC 7672 §3.1.1: a DANE-EE sender does not check dates.
    assert_eq!(dane(&report)["presented"], "authenticated", "{report:#}");
}

// ---------------------------------------------------------------------------------------------
// DANE-TA naming the root
// ---------------------------------------------------------------------------------------------

#[test]
fn a_dane_ta_root_that_is_not_served_is_served_by_repair() {
    let env = TestEnv::new();
    let pki = Pki::new();
    pki.write(&env);
    let root = record(&env, 2, &pki.root.pem, 1, 1);
    let out = inspect(&env, &["served.pem"], &["--tlsa", &root]);
    out.assert_status(1);
    let report = out.json();
    assert_eq!(verdicts(&report, "presented"), ["anchor-not-served"]);
    assert_eq!(verdicts(&report, "written"), ["match"]);
    let p = problem(&report, "dane-ta-not-served");
    assert_eq!(p["repairable"], true, "{p:#}");
    assert!(p["receiver_view"]
        .as_str()
        .expect("present")
        .contains("4.7.323"));
    assert_eq!(result(&report)["status"], "repairable");

    let out_dir = env.path("out");
    let out = repair(
        &env,
        &["leaf.pem", "leaf.key"],
        &out_dir,
        &["--tlsa", &root],
    );
    out.assert_status(0);
    let report = out.json();
    assert_eq!(dane(&report)["serves_root"], true);
    assert!(has(&report, "dane-root-served", "info"), "{report:#}");
    assert_eq!(pem_count(&out_dir.join("fullchain.pem")), 3);
    assert_eq!(pem_count(&out_dir.join("chain.pem")), 2);

    // A 2 1 0 record (the root's whole key) is an anchor without the root being sent.
    let key = record(&env, 2, &pki.root.pem, 1, 0);
    let out = inspect(&env, &["served.pem"], &["--tlsa", &key]);
    out.assert_status(0);
    assert_eq!(verdicts(&out.json(), "presented"), ["match"]);
    let key_dir = env.path("key");
    let out = repair(&env, &["leaf.pem", "leaf.key"], &key_dir, &["--tlsa", &key]);
    out.assert_status(0);
    assert_eq!(dane(&out.json())["serves_root"], false);
    assert_eq!(pem_count(&key_dir.join("fullchain.pem")), 2);

    // Without a DANE-TA record for it, the root stays out.
    let plain_dir = env.path("plain");
    repair(&env, &["leaf.pem", "leaf.key"], &plain_dir, &[]).assert_status(0);
    assert_eq!(pem_count(&plain_dir.join("fullchain.pem")), 2);
}

// ---------------------------------------------------------------------------------------------
// Stopping a repair that would break the records in force
// ---------------------------------------------------------------------------------------------

#[test]
fn a_key_rollover_is_refused_before_writing_then_accepted_with_the_option() {
    let env = TestEnv::new();
    let pki = Pki::new();
    pki.write(&env);
    let old = record(&env, 3, &pki.leaf.pem, 1, 1);
    let new = record(&env, 3, &pki.leaf_new_key.pem, 1, 1);
    let out_dir = env.path("out");
    let files = ["new/leaf.pem", "new/leaf.key"];

    let refused = repair(&env, &files, &out_dir, &["--tlsa", &old]);
    refused.assert_status(1);
    assert!(!out_dir.join("fullchain.pem").exists(), "nothing written");
    assert!(!out_dir.join("tlsa.zone").exists(), "nothing written");
    let report = refused.json();
    let why = result(&report)["not_written"]
        .as_str()
        .expect("not_written");
    assert!(why.contains("TLSA"), "{why}");
    assert!(has(&report, "dane-mismatch", "error"));
    // The records to publish for the new key are in the report.
    let publish: Vec<&str> = dane(&report)["publish"]
        .as_array()
        .expect("present")
        .iter()
        .map(|p| p["record"].as_str().expect("present"))
        .collect();
    assert!(publish.contains(&new.as_str()), "{publish:?}");

    // --check gives the same verdict and writes nothing either.
    let check = repair(&env, &files, &out_dir, &["--tlsa", &old, "--check"]);
    check.assert_status(1);
    assert!(!out_dir.exists() || !out_dir.join("fullchain.pem").exists());

    // Old and new records published side by side (RFC 7671 §8.1): written.
    let both = repair(
        &env,
        &files,
        &out_dir,
        &["--tlsa", &old, "--tlsa", &new, "--check"],
    );
    both.assert_status(0);

    // The break accepted explicitly: written, with a warning.
    let accepted = repair(
        &env,
        &files,
        &out_dir,
        &["--tlsa", &old, "--accept-dane-break"],
    );
    accepted.assert_status(0);
    let report = accepted.json();
    assert!(has(&report, "dane-mismatch", "warning"), "{report:#}");
    assert!(out_dir.join("fullchain.pem").exists());
    assert!(out_dir.join("tlsa.zone").exists());
}

#[test]
fn a_repair_that_drops_the_pinned_intermediate_is_refused() {
    // The leaf's file sends the cross-signed intermediate and a 2 0 1 pins it; chainfix's chain
    // (to the trusted root) uses the other copy, which the record does not match.
    let env = TestEnv::new();
    let pki = Pki::new();
    pki.write(&env);
    env.write(
        "served-cross.pem",
        format!("{}{}", pki.leaf.pem, pki.int_cross.pem),
    );
    let pin = record(&env, 2, &pki.int_cross.pem, 0, 1);
    let out_dir = env.path("out");
    let out = repair(
        &env,
        &["served-cross.pem", "leaf.key"],
        &out_dir,
        &["--tlsa", &pin],
    );
    out.assert_status(1);
    let report = out.json();
    assert_eq!(dane(&report)["presented"], "authenticated", "{report:#}");
    assert_eq!(dane(&report)["written"], "failed");
    assert!(!out_dir.join("fullchain.pem").exists());
}

// ---------------------------------------------------------------------------------------------
// The records written to publish
// ---------------------------------------------------------------------------------------------

#[test]
fn the_written_fragment_parses_back_and_matches_the_written_chain() {
    let env = TestEnv::new();
    let pki = Pki::new();
    pki.write(&env);
    let out_dir = env.path("out");
    repair(&env, &["leaf.pem", "leaf.key"], &out_dir, &["--host", HOST]).assert_status(0);
    let zone = std::fs::read_to_string(out_dir.join("tlsa.zone")).expect("tlsa.zone");
    // Owner, the two records, the rollover steps, the warnings.
    let leaf = record(&env, 3, &pki.leaf.pem, 1, 1);
    let int = record(&env, 2, &pki.int.pem, 1, 1);
    assert!(
        zone.contains(&format!("_25._tcp.{HOST}. IN TLSA {leaf}\n")),
        "{zone}"
    );
    assert!(
        zone.contains(&format!("_25._tcp.{HOST}. IN TLSA {int}\n")),
        "{zone}"
    );
    for needle in [
        "RFC 7671 §8.1",
        "BESIDE",
        "twice the TTL",
        "x 0 x",
        "12 records",
    ] {
        assert!(zone.contains(needle), "{needle}: {zone}");
    }

    let zone_path = out_dir.join("tlsa.zone");
    let zone_arg = zone_path.to_str().expect("present");
    let fullchain = out_dir.join("fullchain.pem");
    let out = inspect(
        &env,
        &[fullchain.to_str().expect("present")],
        &["--tlsa-file", zone_arg],
    );
    out.assert_status(0);
    let report = out.json();
    assert_eq!(dane(&report)["presented"], "authenticated");
    assert_eq!(dane(&report)["host"], HOST);
    assert_eq!(verdicts(&report, "presented"), ["match", "match"]);
}

#[test]
fn a_tlsa_file_over_one_mebibyte_is_refused() {
    let env = TestEnv::new();
    let pki = Pki::new();
    pki.write(&env);
    let good = record(&env, 3, &pki.leaf.pem, 1, 1);
    let line = format!("; {}\n", "x".repeat(1000));
    env.write(
        "huge.txt",
        format!("{}3 1 1 {}\n", line.repeat(1100), &good[6..]),
    );
    let out = inspect(&env, &["served.pem"], &["--tlsa-file", "huge.txt"]);
    out.assert_status(2);
    assert!(
        out.stderr.contains("larger than 1048576 bytes"),
        "{}",
        out.stderr
    );
}

#[test]
fn bad_tlsa_lines_are_errors_naming_the_line() {
    let env = TestEnv::new();
    let pki = Pki::new();
    pki.write(&env);
    let good = record(&env, 3, &pki.leaf.pem, 1, 1);
    env.write(
        "tlsa.txt",
        format!("; records in force\n_25._tcp.{HOST}. IN TLSA {good}\n_25._tcp.{HOST}. IN TLSA 3 1 1 abc\n"),
    );
    let out = inspect(&env, &["served.pem"], &["--tlsa-file", "tlsa.txt"]);
    out.assert_status(2);
    assert!(out.stderr.contains("tlsa.txt:3"), "{}", out.stderr);
    let out = inspect(&env, &["served.pem"], &["--tlsa", "3 1 one 00"]);
    out.assert_status(2);
    assert!(out.stderr.contains("--tlsa #1"), "{}", out.stderr);
}

// ---------------------------------------------------------------------------------------------
// Real chains: Let's Encrypt picks E5..E9 at random
// ---------------------------------------------------------------------------------------------

fn realworld(rel: &str) -> PathBuf {
    common::shared_path("realworld").join(rel)
}

/// `inspect` of a real leaf served with its issuer (one file, in that order), at `at`, with
/// the embedded Mozilla roots.
fn inspect_real(env: &TestEnv, files: &[PathBuf], at: &str, extra: &[&str]) -> Output {
    let served: String = files
        .iter()
        .map(|f| std::fs::read_to_string(f).unwrap_or_else(|e| panic!("{}: {e}", f.display())))
        .collect();
    let path = env.write("real/served.pem", served);
    run(env
        .cmd()
        .arg("inspect")
        .arg(path)
        .args(["--offline", "--at", at, "--json"])
        .args(extra))
}

#[test]
#[cfg_attr(
    not(have_realworld),
    ignore = "needs ../shared/realworld (or CHAINFIX_SHARED_DIR)"
)]
fn lets_encrypt_records_written_for_one_renewal_match_the_next_ones() {
    let env = TestEnv::new();
    // (leaf, its issuer as served, a time inside the leaf's validity)
    let renewals = [
        (
            "certs/leaf_letsencrypt.org_11400413.pem",
            "certs/ca_E5_5dfdb3cf.pem",
            "2025-05-01T00:00:00Z",
        ),
        (
            "certs/leaf_letsencrypt.org_8589023b.pem",
            "certs/ca_E6_76e9e288.pem",
            "2025-09-01T00:00:00Z",
        ),
        (
            "certs/leaf_letsencrypt.org_56e92842.pem",
            "certs/ca_E7_aeb1fd74.pem",
            "2026-02-01T00:00:00Z",
        ),
        (
            "certs/leaf_letsencrypt.org_5f952102.pem",
            "certs/ca_E8_83624fd3.pem",
            "2026-04-01T00:00:00Z",
        ),
    ];
    let (leaf, int, at) = renewals[0];
    let out_dir = env.path("out");
    let out = run(env
        .cmd()
        .arg("repair")
        .args([realworld(leaf), realworld(int)])
        .args(["--offline", "--at", at, "--json", "--emit", "dane"])
        .args([
            "--host",
            "letsencrypt.org",
            "--key-path",
            "/etc/ssl/private/k.pem",
        ])
        .arg("--out")
        .arg(&out_dir));
    out.assert_status(0);
    let zone = std::fs::read_to_string(out_dir.join("tlsa.zone")).expect("tlsa.zone");
    // Every ECDSA intermediate (E5..E9) listed as 2 1 1, and the server key as 3 1 1.
    let records: Vec<&str> = zone
        .lines()
        .filter(|l| !l.starts_with(';') && l.contains(" TLSA "))
        .collect();
    assert_eq!(records.len(), 6, "{zone}");
    for n in 5..=9 {
        let pem = std::fs::read_to_string(realworld(&format!(
            "certs/{}",
            std::fs::read_dir(realworld("certs"))
                .expect("present")
                .filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .find(|f| f.starts_with(&format!("ca_E{n}_")))
                .expect("E intermediate")
        )))
        .expect("present");
        let r = record(&env, 2, &pem, 1, 1);
        assert!(zone.contains(&format!(" IN TLSA {r}")), "E{n}: {zone}");
    }
    assert!(zone.contains("at random"), "{zone}");

    // Each later renewal came from another intermediate, with a new key: the fragment written
    // for the first still matches (through its 2 1 1 records).
    let zone_arg = out_dir.join("tlsa.zone");
    for (leaf, int, at) in &renewals[1..] {
        let out = inspect_real(
            &env,
            &[realworld(leaf), realworld(int)],
            at,
            &["--tlsa-file", zone_arg.to_str().expect("present")],
        );
        out.assert_status(0);
        let report = out.json();
        assert_eq!(
            dane(&report)["presented"],
            "authenticated",
            "{leaf}: {report:#}"
        );
    }
    // A 2 1 1 of E5 alone (one pinned issuer) breaks at the next renewal.
    let e5 = std::fs::read_to_string(realworld("certs/ca_E5_5dfdb3cf.pem")).expect("present");
    let pinned = record(&env, 2, &e5, 1, 1);
    let (leaf, int, at) = renewals[1];
    let out = inspect_real(
        &env,
        &[realworld(leaf), realworld(int)],
        at,
        &["--tlsa", &pinned],
    );
    out.assert_status(1);
    assert!(has(&out.json(), "dane-mismatch", "error"));
}

#[test]
#[cfg_attr(
    not(have_realworld),
    ignore = "needs ../shared/realworld (or CHAINFIX_SHARED_DIR)"
)]
fn lets_encrypt_e5_cross_signed_copies_break_2_0_1_but_not_2_1_1() {
    let env = TestEnv::new();
    let leaf = realworld("certs/leaf_letsencrypt.org_11400413.pem");
    let by_x1 = realworld("certs/ca_E5_5dfdb3cf.pem");
    let by_x2 = std::fs::read_to_string(realworld("certs/ca_E5_e788d14b.pem")).expect("present");
    let full = record(&env, 2, &by_x2, 0, 1);
    let key = record(&env, 2, &by_x2, 1, 1);
    let at = "2025-05-01T00:00:00Z";
    let out = inspect_real(&env, &[leaf.clone(), by_x1.clone()], at, &["--tlsa", &full]);
    out.assert_status(1);
    let report = out.json();
    assert!(has(&report, "dane-mismatch", "error"));
    assert!(has(&report, "dane-fragile-record", "warning"));
    let out = inspect_real(&env, &[leaf, by_x1], at, &["--tlsa", &key]);
    out.assert_status(0);
    assert_eq!(dane(&out.json())["presented"], "authenticated");
}

// ---------------------------------------------------------------------------------------------
// openssl s_client against a real Postfix serving the written chain agrees with chainfix
// ---------------------------------------------------------------------------------------------

/// Whether `openssl s_client` authenticates the server on `port` with these TLSA records for
/// `domain` (DANE-EE name checks off, as RFC 7672 §3.1.1 and Postfix have it).
fn openssl_dane_ok(port: u16, domain: &str, records: &[String]) -> (bool, String) {
    let mut cmd = Command::new("openssl");
    cmd.args(["s_client", "-starttls", "smtp", "-connect"])
        .arg(format!("127.0.0.1:{port}"))
        .args(["-dane_tlsa_domain", domain, "-dane_ee_no_namechecks"])
        .args(["-verify_return_error", "-brief"]);
    for r in records {
        cmd.args(["-dane_tlsa_rrdata", r]);
    }
    let out = run_with_timeout(&mut cmd, Duration::from_secs(30));
    let all = format!("{}{}", out.stdout, out.stderr);
    let ok = out.status == 0 && all.contains("Verification: OK");
    (ok, all)
}

/// chainfix's verdict for `fullchain` against the records (owner: `domain`).
fn chainfix_dane_ok(env: &TestEnv, fullchain: &Path, domain: &str, records: &[String]) -> bool {
    let lines: Vec<String> = records
        .iter()
        .map(|r| format!("_25._tcp.{domain}. IN TLSA {r}"))
        .collect();
    let out = inspect(
        env,
        &[fullchain.to_str().expect("present")],
        &strs(&tlsa_args(&lines)),
    );
    let report = out.json();
    dane(&report)["presented"] == "authenticated"
}

#[test]
#[cfg_attr(
    not(have_postfix),
    ignore = "needs Postfix: .ci/setup-mtas.sh, as root"
)]
fn openssl_against_postfix_agrees_with_chainfix_on_every_record_set() {
    use common::mta::{self, Postfix};
    let env = TestEnv::new();
    mta::share_dir(env.dir.path());
    let pki = Pki::new();
    pki.write(&env);
    let leaf_311 = record(&env, 3, &pki.leaf.pem, 1, 1);
    let leaf_301 = record(&env, 3, &pki.leaf.pem, 0, 1);
    let new_311 = record(&env, 3, &pki.leaf_new_key.pem, 1, 1);
    let int_211 = record(&env, 2, &pki.int.pem, 1, 1);
    let int_cross_201 = record(&env, 2, &pki.int_cross.pem, 0, 1);
    let int_cross_211 = record(&env, 2, &pki.int_cross.pem, 1, 1);
    let root_211 = record(&env, 2, &pki.root.pem, 1, 1);
    // The root's full key: usable as a trust anchor without the root being sent.
    let root_210 = record(&env, 2, &pki.root.pem, 1, 0);
    let pkix_ta = record(&env, 0, &pki.int.pem, 1, 1);
    let pkix_ee = record(&env, 1, &pki.leaf.pem, 1, 1);
    let stranger = record(&env, 2, &pki.leaf_new_key.pem, 1, 1);

    // (the repair's files, its extra options, then the record sets judged on what it wrote:
    // (domain, records, expected verdict))
    type Sets = Vec<(&'static str, Vec<String>, bool)>;
    let cases: Vec<(&str, Vec<&str>, Vec<String>, Sets)> = vec![
        (
            "plain",
            vec!["leaf.pem", "leaf.key"],
            vec![],
            vec![
                (HOST, vec![leaf_311.clone()], true),
                (HOST, vec![leaf_301.clone()], true),
                (HOST, vec![new_311.clone()], false),
                (HOST, vec![int_211.clone()], true),
                ("mx.other.test", vec![int_211.clone()], false),
                (HOST, vec![int_cross_201.clone()], false),
                (HOST, vec![int_cross_211.clone()], true),
                (HOST, vec![root_211.clone()], false),
                (HOST, vec![root_210.clone()], true),
                (HOST, vec![pkix_ta.clone(), pkix_ee.clone()], false),
                (HOST, vec![stranger.clone()], false),
                (HOST, vec![stranger.clone(), leaf_311.clone()], true),
            ],
        ),
        (
            "root-served",
            vec!["leaf.pem", "leaf.key"],
            vec!["--tlsa".into(), root_211.clone()],
            vec![(HOST, vec![root_211.clone()], true)],
        ),
        (
            "new-key",
            vec!["new/leaf.pem", "new/leaf.key"],
            vec![
                "--tlsa".into(),
                leaf_311.clone(),
                "--accept-dane-break".into(),
            ],
            vec![
                (HOST, vec![leaf_311.clone()], false),
                (HOST, vec![new_311.clone()], true),
                (HOST, vec![leaf_311.clone(), new_311.clone()], true),
            ],
        ),
    ];
    for (name, files, extra, sets) in cases {
        let out_dir = env.path(&format!("out-{name}"));
        repair(&env, &files, &out_dir, &strs(&extra)).assert_status(0);
        let mut pf = Postfix::start(
            &env.path(&format!("postfix-{name}")),
            &[],
            &mta::postfix_tls_from(&out_dir),
        );
        let fullchain = out_dir.join("fullchain.pem");
        for (domain, records, expected) in sets {
            let (ossl, transcript) = openssl_dane_ok(pf.port, domain, &records);
            let ours = chainfix_dane_ok(&env, &fullchain, domain, &records);
            assert_eq!(
                (ours, ossl),
                (expected, expected),
                "{name}: {records:?} for {domain}: chainfix {ours}, openssl {ossl}\n{transcript}\n--- postfix.log ---\n{}",
                mta::tail(&pf.log(), 20)
            );
        }
        pf.stop();
    }
}
