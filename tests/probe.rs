//! End-to-end tests of `chainfix probe` on loopback: real Postfix and Exim, openssl s_server (implicit TLS) and scripted fake SMTP servers.
//!
//! Every server here listens on 127.0.0.1 only. The MTAs (tests/common/mta.rs) and
//! `openssl s_server` run with the real clock, so `--at` is pinned close to today and inside
//! the test PKI's validity. The fake SMTP servers are std `TcpListener`s, one thread per
//! connection, that record every line the probe sends.
//!
//! Without Postfix or the extracted Exim (`.ci/setup-mtas.sh`) `cargo test` lists the MTA
//! tests as ignored (cfgs `have_postfix`, `have_exim` from build.rs); with
//! `CHAINFIX_REQUIRE_MTA=1` the build fails instead. The other tests need only openssl.

mod common;

use std::fmt::Write as _;
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use common::mta::{self, Exim, EximConfig, Postfix};
use common::{key_pem, run, Alg, Output, TestEnv};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// Close to the real date the servers run at, inside every validity window of the PKI.
const AT: &str = "2026-11-22T00:00:00Z";
/// The EHLO name every probe here sends.
const HELO: &str = "probe-client.chainfix.test";
/// The name the leaf certificates are issued for.
const HOST: &str = "mail.example.test";

// ---------------------------------------------------------------------------------------------
// PKI
// ---------------------------------------------------------------------------------------------

/// One certificate and its pinned key.
struct TestCert {
    der: Vec<u8>,
    pem: String,
    key_pem: &'static str,
    params: CertificateParams,
}

impl TestCert {
    /// RSA-2048 pinned key `key` (testdata/keys), signed by `issuer` (self-signed if None).
    /// CAs get keyCertSign, cRLSign and digitalSignature, as most public intermediates do
    /// (the wrong-order tests make the MTAs serve the intermediate as their own certificate,
    /// and GnuTLS finds no usable cipher suite for a certificate without digitalSignature);
    /// leaves get a dNSName for their CN and serverAuth.
    fn new(
        cn: &str,
        key: usize,
        serial: u64,
        valid: ((i32, u8, u8), (i32, u8, u8)),
        ca: bool,
        issuer: Option<&TestCert>,
    ) -> TestCert {
        let names = if ca { vec![] } else { vec![cn.to_string()] };
        let mut params = CertificateParams::new(names).expect("valid dNSName");
        params.distinguished_name = rcgen::DistinguishedName::new();
        params.distinguished_name.push(DnType::CommonName, cn);
        let ((y, m, d), (y2, m2, d2)) = valid;
        params.not_before = rcgen::date_time_ymd(y, m, d);
        params.not_after = rcgen::date_time_ymd(y2, m2, d2);
        params.serial_number = Some(serial.into());
        if ca {
            params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
            params.key_usages = vec![
                KeyUsagePurpose::DigitalSignature,
                KeyUsagePurpose::KeyCertSign,
                KeyUsagePurpose::CrlSign,
            ];
        } else {
            params.is_ca = IsCa::ExplicitNoCa;
            params.key_usages = vec![
                KeyUsagePurpose::DigitalSignature,
                KeyUsagePurpose::KeyEncipherment,
            ];
            params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        }
        let key_pem = key_pem(Alg::Rsa2048(key));
        let subject_key = KeyPair::from_pkcs8_pem_and_sign_algo(key_pem, &rcgen::PKCS_RSA_SHA256)
            .expect("pinned RSA key");
        let cert = match issuer {
            None => params.self_signed(&subject_key).expect("self-signing"),
            Some(issuer) => {
                params.use_authority_key_identifier_extension = true;
                let issuer_key =
                    KeyPair::from_pkcs8_pem_and_sign_algo(issuer.key_pem, &rcgen::PKCS_RSA_SHA256)
                        .expect("pinned RSA key");
                let issuer = Issuer::from_params(&issuer.params, &issuer_key);
                params
                    .signed_by(&subject_key, &issuer)
                    .expect("rcgen signing")
            }
        };
        TestCert {
            der: cert.der().to_vec(),
            pem: cert.pem(),
            key_pem,
            params,
        }
    }

    /// Lower-case hex SHA-256 of the DER, as chainfix reports it.
    fn sha256(&self) -> String {
        Sha256::digest(&self.der)
            .iter()
            .fold(String::new(), |mut s, b| {
                let _ = write!(s, "{b:02x}");
                s
            })
    }
}

/// RSA throughout (the legacy suites need RSA key exchange): a root, an intermediate, the
/// served leaf for `HOST`, an expired leaf and a renewed leaf (another key, later expiry).
struct Pki {
    root: TestCert,
    int: TestCert,
    leaf: TestCert,
    expired: TestCert,
    renewed: TestCert,
}

impl Pki {
    fn new() -> Pki {
        let ca_validity = ((2020, 1, 1), (2045, 1, 1));
        let root = TestCert::new("Probe Test Root", 0, 601, ca_validity, true, None);
        let int = TestCert::new(
            "Probe Test Intermediate",
            1,
            602,
            ca_validity,
            true,
            Some(&root),
        );
        let leaf_cert =
            |key, serial, valid| TestCert::new(HOST, key, serial, valid, false, Some(&int));
        let leaf = leaf_cert(2, 603, ((2024, 1, 1), (2034, 1, 1)));
        let expired = leaf_cert(2, 604, ((2024, 1, 1), (2025, 1, 1)));
        let renewed = leaf_cert(3, 605, ((2026, 11, 1), (2035, 2, 1)));
        Pki {
            root,
            int,
            leaf,
            expired,
            renewed,
        }
    }

    /// root.pem, int.pem, int.key, leaf.pem (the leaf alone), leaf.key, full.pem (leaf, int),
    /// wrong.pem (int, leaf), expired.pem (expired leaf, int).
    fn write(&self, env: &TestEnv) {
        let bundle = |certs: &[&TestCert]| -> String { certs.iter().map(|c| &*c.pem).collect() };
        env.write("root.pem", &self.root.pem);
        env.write("int.pem", &self.int.pem);
        env.write("int.key", self.int.key_pem);
        env.write("leaf.pem", &self.leaf.pem);
        env.write("leaf.key", self.leaf.key_pem);
        env.write("full.pem", bundle(&[&self.leaf, &self.int]));
        env.write("wrong.pem", bundle(&[&self.int, &self.leaf]));
        env.write("expired.pem", bundle(&[&self.expired, &self.int]));
    }
}

/// A test directory with the PKI written into it, traversable by the MTAs' users.
fn pki_env() -> (Pki, TestEnv) {
    let pki = Pki::new();
    let env = TestEnv::new();
    mta::share_dir(env.dir.path());
    pki.write(&env);
    (pki, env)
}

// ---------------------------------------------------------------------------------------------
// Running chainfix probe
// ---------------------------------------------------------------------------------------------

/// `chainfix probe --offline --no-default-roots --roots root.pem --cache-dir DIR --at AT ARGS`
/// in the test directory (no `--helo`).
fn probe_cmd_without_helo(env: &TestEnv, args: &[&str]) -> Command {
    let mut cmd = env.cmd();
    cmd.arg("probe")
        .args(["--offline", "--no-default-roots", "--roots"])
        .arg(env.path("root.pem"))
        .arg("--cache-dir")
        .arg(env.path("cache"))
        .args(["--at", AT])
        .args(args);
    cmd
}

/// `probe_cmd_without_helo` plus `--helo HELO`.
fn probe_cmd(env: &TestEnv, args: &[&str]) -> Command {
    let mut cmd = probe_cmd_without_helo(env, &["--helo", HELO]);
    cmd.args(args);
    cmd
}

fn probe(env: &TestEnv, args: &[&str]) -> Output {
    run(&mut probe_cmd(env, args))
}

/// `probe` with `--json`; returns the output and the parsed report.
fn probe_json(env: &TestEnv, args: &[&str]) -> (Output, Value) {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    let out = probe(env, &all);
    let json = out.json();
    (out, json)
}

/// `probe_json` for the targets in `args`, asserting the exit code; returns the results.
fn probe_results(env: &TestEnv, args: &[&str], status: i32) -> Vec<Value> {
    let (out, json) = probe_json(env, args);
    out.assert_status(status);
    results(&json).clone()
}

fn results(report: &Value) -> &Vec<Value> {
    report["results"]
        .as_array()
        .unwrap_or_else(|| panic!("no results array:\n{report:#}"))
}

/// The finding codes of a result, in report order.
fn codes(result: &Value) -> Vec<String> {
    result["problems"]
        .as_array()
        .unwrap_or_else(|| panic!("no problems array:\n{result:#}"))
        .iter()
        .map(|p| p["code"].as_str().expect("problem code").to_string())
        .collect()
}

/// The finding with this code; panics showing the result if there is none.
fn finding<'a>(result: &'a Value, code: &str) -> &'a Value {
    result["problems"]
        .as_array()
        .and_then(|ps| ps.iter().find(|p| p["code"] == code))
        .unwrap_or_else(|| panic!("no {code} finding:\n{result:#}"))
}

fn message(finding: &Value) -> &str {
    finding["message"].as_str().expect("finding message")
}

/// The SHA-256 fingerprints of the `presented` certificates, in the order served.
fn presented(result: &Value) -> Vec<String> {
    result["presented"]
        .as_array()
        .unwrap_or_else(|| panic!("no presented array:\n{result:#}"))
        .iter()
        .map(|c| c["sha256"].as_str().expect("sha256").to_string())
        .collect()
}

fn has_errors(result: &Value) -> bool {
    result["problems"]
        .as_array()
        .expect("problems")
        .iter()
        .any(|p| p["severity"] == "error")
}

/// Asserts the shape of a result for a target that gave no chain: leaf null, empty chain and
/// presented, status broken, exactly one finding, `code`, an error.
fn assert_no_chain(result: &Value, code: &str) {
    assert!(result["leaf"].is_null(), "leaf must be null:\n{result:#}");
    assert_eq!(result["chain"], Value::Array(vec![]), "{result:#}");
    assert_eq!(result["presented"], Value::Array(vec![]), "{result:#}");
    assert_eq!(result["status"], "broken", "{result:#}");
    assert_eq!(codes(result), vec![code.to_string()], "{result:#}");
    assert_eq!(finding(result, code)["severity"], "error", "{result:#}");
}

// ---------------------------------------------------------------------------------------------
// Real MTAs
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Copy, Debug)]
enum Mta {
    Postfix,
    Exim,
}

/// A running MTA (stopped on drop) serving a key file and a certificate file.
enum Server {
    Postfix(Postfix),
    Exim(Exim),
}

impl Server {
    /// Starts `mta` in `env/name`, serving `env/key` and `env/cert` as its own.
    fn start(mta: Mta, env: &TestEnv, name: &str, key: &str, cert: &str) -> Server {
        let (key, cert) = (env.path(key), env.path(cert));
        match mta {
            Mta::Postfix => Server::Postfix(Postfix::start(
                &env.path(name),
                &[],
                &mta::postfix_tls_files(&key, &cert),
            )),
            Mta::Exim => Server::Exim(Exim::start(
                &env.path(name),
                &EximConfig {
                    main: mta::exim_tls_files(&key, &cert),
                    ..EximConfig::default()
                },
            )),
        }
    }

    fn port(&self) -> u16 {
        match self {
            Server::Postfix(pf) => pf.port,
            Server::Exim(exim) => exim.port,
        }
    }

    fn target(&self) -> String {
        format!("127.0.0.1:{}", self.port())
    }

    fn log(&self) -> String {
        match self {
            Server::Postfix(pf) => format!("--- postfix.log ---\n{}", mta::tail(&pf.log(), 30)),
            Server::Exim(exim) => exim.diagnostics(),
        }
    }
}

/// Probes an MTA by its IP address with `extra` (and `--host HOST` unless `extra` has a
/// `--host`), asserting the exit code; returns the single result.
fn probe_server(env: &TestEnv, server: &Server, extra: &[&str], status: i32) -> Value {
    let target = server.target();
    let mut args = vec!["--json", target.as_str()];
    if !extra.contains(&"--host") {
        args.extend_from_slice(&["--host", HOST]);
    }
    args.extend_from_slice(extra);
    let out = probe(env, &args);
    assert_eq!(
        out.status,
        status,
        "unexpected exit code\n--- stdout ---\n{}\n--- stderr ---\n{}\n{}",
        out.stdout,
        out.stderr,
        server.log()
    );
    let json = out.json();
    let results = results(&json);
    assert_eq!(results.len(), 1, "one target, one result:\n{json:#}");
    assert_eq!(results[0]["target"], target, "{json:#}");
    results[0].clone()
}

/// The chain came over STARTTLS through rustls, with a version and cipher named.
fn assert_rustls_over_starttls(result: &Value) {
    let tls = &result["tls"];
    assert_eq!(tls["method"], "rustls", "{result:#}");
    assert_eq!(tls["starttls"], true, "{result:#}");
    assert!(
        tls["version"] == "TLSv1.3" || tls["version"] == "TLSv1.2",
        "{result:#}"
    );
    assert!(
        tls["cipher"]
            .as_str()
            .is_some_and(|c| c.starts_with("TLS_")),
        "{result:#}"
    );
}

/// (a) the full chain is ok; (e) the same server is a hostname-mismatch for `--host
/// other.example.test`, and when probed by a name the certificate does not carry.
fn full_chain_is_ok_and_other_names_mismatch(mta: Mta) {
    let (pki, env) = pki_env();
    let server = Server::start(mta, &env, "mta", "leaf.key", "full.pem");

    let ok = probe_server(&env, &server, &[], 0);
    assert_eq!(ok["status"], "ok", "{ok:#}\n{}", server.log());
    assert_eq!(ok["file"], server.target(), "{ok:#}");
    assert_eq!(ok["leaf"]["sha256"], pki.leaf.sha256(), "{ok:#}");
    assert_eq!(
        presented(&ok),
        vec![pki.leaf.sha256(), pki.int.sha256()],
        "{ok:#}"
    );
    let chain: Vec<(&str, &str)> = ok["chain"]
        .as_array()
        .expect("chain")
        .iter()
        .map(|c| {
            (
                c["role"].as_str().expect("role"),
                c["sha256"].as_str().expect("sha256"),
            )
        })
        .collect();
    let expected = [
        ("leaf", pki.leaf.sha256()),
        ("intermediate", pki.int.sha256()),
        ("root", pki.root.sha256()),
    ];
    assert_eq!(
        chain,
        expected
            .iter()
            .map(|(r, s)| (*r, s.as_str()))
            .collect::<Vec<_>>(),
        "{ok:#}"
    );
    assert!(!has_errors(&ok), "{ok:#}");
    assert_rustls_over_starttls(&ok);

    let other = probe_server(&env, &server, &["--host", "other.example.test"], 1);
    let mismatch = finding(&other, "hostname-mismatch");
    assert_eq!(mismatch["severity"], "error", "{other:#}");
    assert!(
        message(mismatch).contains("other.example.test") && message(mismatch).contains(HOST),
        "the message names the host checked and the names in the certificate:\n{other:#}"
    );
    assert_eq!(other["status"], "broken", "{other:#}");

    // Without --host the probed name is what is checked, and "localhost" is not in the leaf.
    let by_name = format!("localhost:{}", server.port());
    let results = probe_results(&env, &[&by_name], 1);
    assert_eq!(results.len(), 1, "{results:#?}");
    let result = &results[0];
    assert_eq!(result["target"], by_name, "{result:#}");
    assert!(
        message(finding(result, "hostname-mismatch")).contains("localhost"),
        "{result:#}"
    );
    assert_eq!(
        presented(result),
        vec![pki.leaf.sha256(), pki.int.sha256()],
        "{result:#}"
    );
}

/// (b) the leaf alone: missing-intermediate, repairable with `--intermediates int.pem`
/// (the chain is then built through it), not repairable without.
fn leaf_only_is_missing_intermediate(mta: Mta) {
    let (pki, env) = pki_env();
    let server = Server::start(mta, &env, "mta", "leaf.key", "leaf.pem");

    let with = probe_server(&env, &server, &["--intermediates", "int.pem"], 1);
    assert_eq!(presented(&with), vec![pki.leaf.sha256()], "{with:#}");
    let missing = finding(&with, "missing-intermediate");
    assert_eq!(missing["severity"], "error", "{with:#}");
    assert_eq!(missing["repairable"], true, "{with:#}");
    assert_eq!(with["status"], "repairable", "{with:#}");
    let chain: Vec<&str> = with["chain"]
        .as_array()
        .expect("chain")
        .iter()
        .map(|c| c["sha256"].as_str().expect("sha256"))
        .collect();
    assert_eq!(
        chain,
        [pki.leaf.sha256(), pki.int.sha256(), pki.root.sha256()],
        "{with:#}"
    );
    assert_rustls_over_starttls(&with);

    let without = probe_server(&env, &server, &[], 1);
    let missing = finding(&without, "missing-intermediate");
    assert_eq!(missing["severity"], "error", "{without:#}");
    assert_eq!(missing["repairable"], false, "{without:#}");
    assert_eq!(without["status"], "broken", "{without:#}");
}

/// (c) a certificate file with the intermediate before the leaf, served with the leaf's key.
/// OpenSSL (Postfix) and GnuTLS (Exim) take the first certificate of the file as the
/// server's own and insist that the key belongs to it, so the MTA cannot start TLS and
/// refuses STARTTLS with 454: the probe must say so, quoting the refusal.
fn wrong_order_file_with_the_leaf_key_refuses_starttls(mta: Mta) {
    let (_, env) = pki_env();
    let server = Server::start(mta, &env, "mta", "leaf.key", "wrong.pem");
    let result = probe_server(&env, &server, &[], 1);
    assert_no_chain(&result, "starttls-not-supported");
    let refused = finding(&result, "starttls-not-supported");
    assert!(
        message(refused).contains("454"),
        "the server's refusal is quoted:\n{result:#}\n{}",
        server.log()
    );
    assert!(
        refused["receiver_view"]
            .as_str()
            .is_some_and(|v| v.contains("4.7.321")),
        "{result:#}"
    );
}

/// (d) an expired leaf (2024-01-01..2025-01-01) with its intermediate.
fn expired_leaf_is_expired(mta: Mta) {
    let (pki, env) = pki_env();
    let server = Server::start(mta, &env, "mta", "leaf.key", "expired.pem");

    let result = probe_server(&env, &server, &[], 1);
    assert_eq!(
        presented(&result),
        vec![pki.expired.sha256(), pki.int.sha256()],
        "{result:#}"
    );
    let expired = finding(&result, "expired");
    assert_eq!(expired["severity"], "error", "{result:#}");
    assert_eq!(
        expired["cert"]["sha256"],
        pki.expired.sha256(),
        "{result:#}"
    );
    assert_eq!(result["status"], "broken", "{result:#}");
    assert!(
        result["leaf"]["not_after"]
            .as_str()
            .is_some_and(|t| t.starts_with("2025-01-01")),
        "{result:#}"
    );
}

#[test]
#[cfg_attr(
    not(have_postfix),
    ignore = "needs Postfix: .ci/setup-mtas.sh, as root"
)]
fn postfix_full_chain_is_ok_and_other_names_mismatch() {
    full_chain_is_ok_and_other_names_mismatch(Mta::Postfix);
}

#[test]
#[cfg_attr(not(have_exim), ignore = "needs Exim: .ci/setup-mtas.sh, as root")]
fn exim_full_chain_is_ok_and_other_names_mismatch() {
    full_chain_is_ok_and_other_names_mismatch(Mta::Exim);
}

#[test]
#[cfg_attr(
    not(have_postfix),
    ignore = "needs Postfix: .ci/setup-mtas.sh, as root"
)]
fn postfix_leaf_only_is_missing_intermediate() {
    leaf_only_is_missing_intermediate(Mta::Postfix);
}

#[test]
#[cfg_attr(not(have_exim), ignore = "needs Exim: .ci/setup-mtas.sh, as root")]
fn exim_leaf_only_is_missing_intermediate() {
    leaf_only_is_missing_intermediate(Mta::Exim);
}

#[test]
#[cfg_attr(
    not(have_postfix),
    ignore = "needs Postfix: .ci/setup-mtas.sh, as root"
)]
fn postfix_refuses_starttls_for_a_wrong_order_file_with_the_leaf_key() {
    wrong_order_file_with_the_leaf_key_refuses_starttls(Mta::Postfix);
}

#[test]
#[cfg_attr(not(have_exim), ignore = "needs Exim: .ci/setup-mtas.sh, as root")]
fn exim_refuses_starttls_for_a_wrong_order_file_with_the_leaf_key() {
    wrong_order_file_with_the_leaf_key_refuses_starttls(Mta::Exim);
}

/// (c) on the wire: Postfix given the file "intermediate, leaf" with the key of its first
/// certificate sends exactly that order, and the probe reports wrong-order (an error: the
/// leaf is not first) with the chain captured as sent.
#[test]
#[cfg_attr(
    not(have_postfix),
    ignore = "needs Postfix: .ci/setup-mtas.sh, as root"
)]
fn postfix_sending_the_intermediate_first_is_wrong_order() {
    let (pki, env) = pki_env();
    let server = Server::start(Mta::Postfix, &env, "mta", "int.key", "wrong.pem");
    let result = probe_server(&env, &server, &[], 1);
    assert_eq!(
        presented(&result),
        vec![pki.int.sha256(), pki.leaf.sha256()],
        "the chain is captured exactly as sent:\n{result:#}\n{}",
        server.log()
    );
    assert_eq!(result["leaf"]["sha256"], pki.leaf.sha256(), "{result:#}");
    assert_eq!(
        finding(&result, "wrong-order")["severity"],
        "error",
        "{result:#}"
    );
    assert_eq!(result["status"], "repairable", "{result:#}");
}

/// GnuTLS cannot be made to send "intermediate, leaf": given that file with the
/// intermediate's key, Exim sends the intermediate alone (it drops the certificate that does
/// not certify the one before it). There is no leaf, so the finding is tls-handshake-failed,
/// but the report must still show what the server presented: that is what the admin has to
/// see to fix it.
#[test]
#[cfg_attr(not(have_exim), ignore = "needs Exim: .ci/setup-mtas.sh, as root")]
fn exim_sending_only_a_ca_certificate_shows_what_it_presented() {
    let (pki, env) = pki_env();
    let server = Server::start(Mta::Exim, &env, "mta", "int.key", "wrong.pem");
    let result = probe_server(&env, &server, &[], 1);
    assert!(result["leaf"].is_null(), "{result:#}");
    assert_eq!(result["status"], "broken", "{result:#}");
    assert_eq!(
        finding(&result, "tls-handshake-failed")["severity"],
        "error",
        "{result:#}"
    );
    assert_eq!(result["tls"]["starttls"], true, "{result:#}");
    assert_eq!(
        presented(&result),
        vec![pki.int.sha256()],
        "the certificate the server did send belongs in `presented`:\n{result:#}\n{}",
        server.log()
    );
}

#[test]
#[cfg_attr(
    not(have_postfix),
    ignore = "needs Postfix: .ci/setup-mtas.sh, as root"
)]
fn postfix_expired_leaf_is_expired() {
    expired_leaf_is_expired(Mta::Postfix);
}

#[test]
#[cfg_attr(not(have_exim), ignore = "needs Exim: .ci/setup-mtas.sh, as root")]
fn exim_expired_leaf_is_expired() {
    expired_leaf_is_expired(Mta::Exim);
}

/// Postfix speaking only TLS 1.2 with AES128-SHA and AES256-SHA (CBC, RSA key exchange):
/// rustls cannot talk to it, the hand-built legacy ClientHello must still get the chain.
#[test]
#[cfg_attr(
    not(have_postfix),
    ignore = "needs Postfix: .ci/setup-mtas.sh, as root"
)]
fn postfix_with_only_tls12_rsa_cbc_suites_is_read_with_the_legacy_hello() {
    let (pki, env) = pki_env();
    let legacy = "AES128-SHA:AES256-SHA";
    let pf = Postfix::start(
        &env.path("postfix"),
        &[
            ("smtpd_tls_protocols", ">=TLSv1.2,<=TLSv1.2"),
            ("smtpd_tls_mandatory_protocols", ">=TLSv1.2,<=TLSv1.2"),
            ("smtpd_tls_ciphers", "medium"),
            ("smtpd_tls_mandatory_ciphers", "medium"),
            ("tls_medium_cipherlist", legacy),
            ("tls_high_cipherlist", legacy),
        ],
        &mta::postfix_tls_files(&env.path("leaf.key"), &env.path("full.pem")),
    );
    let server = Server::Postfix(pf);
    let result = probe_server(&env, &server, &[], 0);
    let tls = &result["tls"];
    assert_eq!(
        tls["method"],
        "legacy-hello",
        "{result:#}\n{}",
        server.log()
    );
    assert_eq!(tls["version"], "TLSv1.2", "{result:#}");
    assert_eq!(tls["starttls"], true, "{result:#}");
    let cipher = tls["cipher"].as_str().expect("cipher");
    assert!(
        cipher.contains("CBC") && cipher.contains("AES"),
        "{result:#}"
    );
    assert_eq!(
        presented(&result),
        vec![pki.leaf.sha256(), pki.int.sha256()],
        "{result:#}"
    );
    assert_eq!(result["status"], "ok", "{result:#}");
    // The Postfix really is legacy-only: it refused the first (rustls) handshake. postlogd
    // writes the log asynchronously, so give the line a moment to arrive.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !server.log().contains("no shared cipher") && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        server.log().contains("no shared cipher"),
        "{}",
        server.log()
    );
}

/// `--compare` catches a Postfix that was not restarted after the files changed: before the
/// restart it still sends the leaf alone while the disk holds leaf + intermediate; after it,
/// nothing differs; a renewed certificate on disk that is not yet served differs again, and
/// the finding names both certificates.
#[test]
#[cfg_attr(
    not(have_postfix),
    ignore = "needs Postfix: .ci/setup-mtas.sh, as root"
)]
fn compare_catches_a_postfix_that_was_not_reloaded() {
    let (pki, env) = pki_env();
    let key = env.path("leaf.key");
    let mut pf = Postfix::start(
        &env.path("postfix"),
        &[],
        &mta::postfix_tls_files(&key, &env.path("leaf.pem")),
    );
    let fullchain = env.write(
        "chainfix/fullchain.pem",
        format!("{}{}", pki.leaf.pem, pki.int.pem),
    );
    let fullchain_arg = fullchain.to_str().expect("UTF-8 path").to_string();
    let target = format!("127.0.0.1:{}", pf.port);
    let log = |pf: &Postfix| format!("--- postfix.log ---\n{}", mta::tail(&pf.log(), 30));

    let before = probe_results(
        &env,
        &[&target, "--host", HOST, "--compare", &fullchain_arg],
        1,
    );
    let result = &before[0];
    assert_eq!(presented(result), vec![pki.leaf.sha256()], "{result:#}");
    let differs = finding(result, "served-differs-from-disk");
    assert_eq!(differs["severity"], "error", "{result:#}");
    assert_eq!(differs["cert"]["sha256"], pki.leaf.sha256(), "{result:#}");
    assert!(
        message(differs).contains(&fullchain_arg),
        "the finding names the file it compared with:\n{result:#}"
    );
    assert!(
        message(differs).contains(&pki.int.sha256()),
        "the finding lists the disk's chain by fingerprint:\n{result:#}"
    );
    assert!(codes(result).contains(&"missing-intermediate".to_string()));

    pf.restart(&[], &mta::postfix_tls_files(&key, &fullchain));
    let after = probe_results(
        &env,
        &[&target, "--host", HOST, "--compare", &fullchain_arg],
        0,
    );
    let result = &after[0];
    assert_eq!(
        presented(result),
        vec![pki.leaf.sha256(), pki.int.sha256()],
        "{result:#}\n{}",
        log(&pf)
    );
    assert!(
        !codes(result).contains(&"served-differs-from-disk".to_string()),
        "{result:#}"
    );
    assert_eq!(result["status"], "ok", "{result:#}");

    // A renewal lands on disk (new key, new leaf); the server still has the old one loaded.
    env.write(
        "chainfix/fullchain.pem",
        format!("{}{}", pki.renewed.pem, pki.int.pem),
    );
    let renewed = probe_results(
        &env,
        &[&target, "--host", HOST, "--compare", &fullchain_arg],
        1,
    );
    let result = &renewed[0];
    let differs = finding(result, "served-differs-from-disk");
    assert_eq!(differs["severity"], "error", "{result:#}");
    assert_eq!(differs["cert"]["sha256"], pki.leaf.sha256(), "{result:#}");
    let text = message(differs);
    assert!(
        text.contains("2034-01-01") && text.contains("2035-02-01") && text.contains(&fullchain_arg),
        "the finding names the served leaf and the leaf on disk (both CN={HOST}, told apart by \
         their expiry) and the file:\n{result:#}"
    );
    assert!(
        text.contains(&pki.leaf.sha256()) && text.contains(&pki.renewed.sha256()),
        "the finding names both certificates by fingerprint:\n{result:#}"
    );
    assert_eq!(result["status"], "broken", "{result:#}");
}

// ---------------------------------------------------------------------------------------------
// Fake SMTP servers
// ---------------------------------------------------------------------------------------------

/// What a fake SMTP server does with each connection.
#[derive(Clone, Debug)]
enum Script {
    /// Greets after the delay; EHLO answered without STARTTLS.
    NoStartTls(Duration),
    /// Greets with this line; EHLO refused with 503.
    Greeting(&'static str),
    /// Sends these bytes first, then reads until the client goes.
    Banner(&'static [u8]),
    /// Closes the connection at once.
    HangUp,
    /// Accepts and never sends a byte.
    Silent,
    /// A greeting continuation line ("220-") every 300 ms, never the last line.
    Trickle,
    /// Offers STARTTLS and answers it with this line; after a 220 it then stays silent.
    StartTls(&'static str),
}

/// How many connections are open at once (counted from accept until QUIT or close).
#[derive(Default)]
struct Gauge {
    now: AtomicUsize,
    max: AtomicUsize,
}

impl Gauge {
    fn enter(&self) {
        let now = self.now.fetch_add(1, Ordering::SeqCst) + 1;
        self.max.fetch_max(now, Ordering::SeqCst);
    }

    fn leave(&self) {
        self.now.fetch_sub(1, Ordering::SeqCst);
    }

    fn max(&self) -> usize {
        self.max.load(Ordering::SeqCst)
    }

    fn reset_max(&self) {
        self.max
            .store(self.now.load(Ordering::SeqCst), Ordering::SeqCst);
    }
}

/// A scripted SMTP server on 127.0.0.1 (ephemeral port) recording the lines it receives.
/// Its threads are detached and end with the test process.
struct Fake {
    addr: SocketAddr,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Fake {
    fn start(script: Script) -> Fake {
        Fake::start_counted(script, Arc::new(Gauge::default()))
    }

    fn start_counted(script: Script, gauge: Arc<Gauge>) -> Fake {
        let listener = TcpListener::bind("127.0.0.1:0").expect("binding 127.0.0.1:0");
        Fake::serve_on(listener, script, gauge)
    }

    fn serve_on(listener: TcpListener, script: Script, gauge: Arc<Gauge>) -> Fake {
        let addr = listener.local_addr().expect("listener address");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let shared = Arc::clone(&lines);
        thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (script, lines, gauge) =
                    (script.clone(), Arc::clone(&shared), Arc::clone(&gauge));
                thread::spawn(move || serve(stream, &script, &lines, &gauge));
            }
        });
        Fake { addr, lines }
    }

    fn target(&self) -> String {
        self.addr.to_string()
    }

    /// The lines received so far, over all connections.
    fn lines(&self) -> Vec<String> {
        self.lines.lock().expect("lines lock").clone()
    }

    /// Waits (at most 5 s) until a received line starts with `prefix`; returns all lines.
    fn wait_for(&self, prefix: &str) -> Vec<String> {
        let (_, text) = mta::poll_text(
            Duration::from_secs(5),
            || self.lines().join("\n"),
            |t| t.lines().any(|l| l.starts_with(prefix)),
        );
        text.lines().map(str::to_string).collect()
    }
}

/// Leaves the gauge once, at QUIT or when the connection ends.
struct Visit<'a> {
    gauge: &'a Gauge,
    left: bool,
}

impl Visit<'_> {
    fn leave(&mut self) {
        if !self.left {
            self.left = true;
            self.gauge.leave();
        }
    }
}

impl Drop for Visit<'_> {
    fn drop(&mut self) {
        self.leave();
    }
}

/// Reads and discards until the client goes (or 60 s pass).
fn drain(stream: &mut TcpStream) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(60)));
    let mut buf = [0u8; 1024];
    while matches!(stream.read(&mut buf), Ok(n) if n > 0) {}
}

fn serve(mut stream: TcpStream, script: &Script, lines: &Mutex<Vec<String>>, gauge: &Gauge) {
    gauge.enter();
    let mut visit = Visit { gauge, left: false };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(60)));
    let ehlo_plain =
        "250-fake.test greets you\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n250 8BITMIME\r\n";
    let ehlo_tls = "250-fake.test greets you\r\n250-PIPELINING\r\n250-STARTTLS\r\n250 8BITMIME\r\n";
    let (ehlo, starttls) = match script {
        Script::NoStartTls(delay) => {
            thread::sleep(*delay);
            let _ = stream.write_all(b"220 fake.test ESMTP ready\r\n");
            (ehlo_plain.to_string(), None)
        }
        Script::Greeting(line) => {
            let _ = stream.write_all(format!("{line}\r\n").as_bytes());
            ("503 5.5.1 go away\r\n".to_string(), None)
        }
        Script::Banner(bytes) => {
            let _ = stream.write_all(bytes);
            drain(&mut stream);
            return;
        }
        Script::HangUp => return,
        Script::Silent => {
            drain(&mut stream);
            return;
        }
        Script::Trickle => {
            let deadline = Instant::now() + Duration::from_secs(60);
            while Instant::now() < deadline
                && stream
                    .write_all(b"220-fake.test still warming up\r\n")
                    .is_ok()
            {
                thread::sleep(Duration::from_millis(300));
            }
            return;
        }
        Script::StartTls(reply) => {
            let _ = stream.write_all(b"220 fake.test ESMTP ready\r\n");
            (ehlo_tls.to_string(), Some(*reply))
        }
    };
    let Ok(read_half) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(read_half);
    loop {
        let mut line = String::new();
        if !matches!(reader.read_line(&mut line), Ok(n) if n > 0) {
            return;
        }
        let line = line.trim_end().to_string();
        lines.lock().expect("lines lock").push(line.clone());
        let verb = line
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .to_ascii_uppercase();
        let reply = match verb.as_str() {
            "EHLO" => ehlo.clone(),
            "QUIT" => {
                visit.leave();
                let _ = stream.write_all(b"221 2.0.0 bye\r\n");
                return;
            }
            "STARTTLS" => match starttls {
                Some(reply) if reply.starts_with("220") => {
                    let _ = stream.write_all(format!("{reply}\r\n").as_bytes());
                    drain(&mut stream);
                    return;
                }
                Some(reply) => format!("{reply}\r\n"),
                None => "502 5.5.1 command not recognized\r\n".to_string(),
            },
            "MAIL" | "RCPT" | "RSET" | "NOOP" | "HELO" => "250 2.0.0 ok\r\n".to_string(),
            _ => "502 5.5.2 command not recognized\r\n".to_string(),
        };
        if stream.write_all(reply.as_bytes()).is_err() {
            return;
        }
    }
}

/// Asserts the probe said EHLO with `helo`, asked nothing that looks like a delivery, and
/// ended the session with QUIT.
fn assert_polite_session(fake: &Fake, helo: &str) {
    let lines = fake.wait_for("QUIT");
    assert_eq!(
        lines.first().map(String::as_str),
        Some(format!("EHLO {helo}").as_str()),
        "{lines:?}"
    );
    assert!(lines.iter().any(|l| l == "QUIT"), "{lines:?}");
    for verb in ["MAIL", "RCPT", "DATA", "VRFY", "EXPN"] {
        assert!(
            !lines
                .iter()
                .any(|l| l.to_ascii_uppercase().starts_with(verb)),
            "the probe must never send {verb}: {lines:?}"
        );
    }
}

/// A loopback port nothing listens on (bound, then released).
fn closed_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("binding 127.0.0.1:0");
    listener.local_addr().expect("listener address").port()
}

#[test]
fn server_without_starttls_is_starttls_not_supported_and_gets_quit_never_mail_from() {
    let (_, env) = pki_env();
    let fake = Fake::start(Script::NoStartTls(Duration::ZERO));
    let results = probe_results(&env, &[&fake.target(), "--host", HOST], 1);
    let result = &results[0];
    assert_eq!(result["target"], fake.target(), "{result:#}");
    assert_no_chain(result, "starttls-not-supported");
    let f = finding(result, "starttls-not-supported");
    assert!(
        f["receiver_view"]
            .as_str()
            .is_some_and(|v| v.contains("4.7.321")),
        "{result:#}"
    );
    assert_eq!(f["repairable"], false, "{result:#}");
    assert_polite_session(&fake, HELO);
}

#[test]
fn ehlo_defaults_to_this_machines_host_name() {
    let (_, env) = pki_env();
    let fake = Fake::start(Script::NoStartTls(Duration::ZERO));
    let out = run(&mut probe_cmd_without_helo(
        &env,
        &["--json", &fake.target()],
    ));
    out.assert_status(1);
    let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .expect("reading the host name");
    assert_polite_session(&fake, &hostname);
}

#[test]
fn refused_starttls_is_starttls_not_supported() {
    let (_, env) = pki_env();
    let fake = Fake::start(Script::StartTls(
        "454 4.7.0 TLS not available due to local problem",
    ));
    let results = probe_results(&env, &[&fake.target()], 1);
    let result = &results[0];
    assert_no_chain(result, "starttls-not-supported");
    assert!(
        message(finding(result, "starttls-not-supported")).contains("454"),
        "{result:#}"
    );
    let lines = fake.wait_for("QUIT");
    assert_eq!(
        lines,
        [format!("EHLO {HELO}"), "STARTTLS".into(), "QUIT".into()]
    );
}

#[test]
fn rejecting_greeting_is_smtp_greeting_rejected_and_gets_quit() {
    let (_, env) = pki_env();
    let fake = Fake::start(Script::Greeting("554 5.7.1 no"));
    let results = probe_results(&env, &[&fake.target()], 1);
    let result = &results[0];
    assert_no_chain(result, "smtp-greeting-rejected");
    assert!(
        message(finding(result, "smtp-greeting-rejected")).contains("554 5.7.1 no"),
        "the greeting is quoted:\n{result:#}"
    );
    // RFC 5321 §3.1: after a 554 greeting the client says QUIT, nothing else.
    assert_eq!(fake.wait_for("QUIT"), ["QUIT"]);
}

#[test]
fn garbage_banners_and_hang_ups_are_smtp_protocol_errors() {
    let (_, env) = pki_env();
    let binary = Fake::start(Script::Banner(b"\x00\x01\xfe\xff\x16\x03\x01garbage\r\n"));
    let ssh = Fake::start(Script::Banner(
        b"SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n",
    ));
    let hang_up = Fake::start(Script::HangUp);
    let results = probe_results(
        &env,
        &[
            &binary.target(),
            &ssh.target(),
            &hang_up.target(),
            "--timeout",
            "5",
        ],
        1,
    );
    assert_eq!(results.len(), 3, "{results:#?}");
    for (result, fake) in results.iter().zip([&binary, &ssh, &hang_up]) {
        assert_eq!(result["target"], fake.target(), "{result:#}");
        assert_no_chain(result, "smtp-protocol-error");
    }
    assert!(
        message(finding(&results[1], "smtp-protocol-error")).contains("SSH-2.0"),
        "what the server sent is quoted:\n{:#}",
        results[1]
    );
}

/// A banner that is not SMTP is recognisable from its first bytes: the probe must not wait
/// for a line end (here: never sent) until the timeout.
#[test]
fn binary_banner_without_line_end_is_a_protocol_error_not_a_timeout() {
    let (_, env) = pki_env();
    // A MySQL-style binary handshake: length, sequence number, protocol version 9, ...
    let fake = Fake::start(Script::Banner(
        b"\x4a\x00\x00\x00\x098.0.36\x00\x01\x02\x03\xff",
    ));
    let started = Instant::now();
    let results = probe_results(&env, &[&fake.target(), "--timeout", "5"], 1);
    assert_no_chain(&results[0], "smtp-protocol-error");
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "took {:?}",
        started.elapsed()
    );
}

#[test]
fn silent_trickling_and_stalled_tls_servers_time_out_within_the_timeout() {
    let (_, env) = pki_env();
    let silent = Fake::start(Script::Silent);
    let trickle = Fake::start(Script::Trickle);
    let stalled_tls = Fake::start(Script::StartTls("220 2.0.0 Ready to start TLS"));
    let started = Instant::now();
    let results = probe_results(
        &env,
        &[
            &silent.target(),
            &trickle.target(),
            &stalled_tls.target(),
            "--timeout",
            "2",
        ],
        1,
    );
    let elapsed = started.elapsed();
    assert_eq!(results.len(), 3, "{results:#?}");
    for (result, fake) in results.iter().zip([&silent, &trickle, &stalled_tls]) {
        assert_eq!(result["target"], fake.target(), "{result:#}");
        assert_no_chain(result, "timeout");
    }
    assert!(
        elapsed < Duration::from_secs(10),
        "--timeout 2 must bound every connection: took {elapsed:?}"
    );
    // The stalled server got as far as STARTTLS, and the probe had used the --helo name.
    let lines = stalled_tls.lines();
    assert_eq!(lines, [format!("EHLO {HELO}"), "STARTTLS".into()]);
}

#[test]
fn closed_port_is_connection_failed() {
    let (_, env) = pki_env();
    let target = format!("127.0.0.1:{}", closed_port());
    let started = Instant::now();
    let results = probe_results(&env, &[&target], 1);
    assert_eq!(results[0]["target"], target);
    assert_no_chain(&results[0], "connection-failed");
    assert!(started.elapsed() < Duration::from_secs(5));
}

// ---------------------------------------------------------------------------------------------
// Many targets
// ---------------------------------------------------------------------------------------------

/// 50 fake servers greeting after 1.5 s (even) or 0.1 s (odd), none offering STARTTLS, from
/// a targets file with comments, blank lines and CRLF line ends. With --concurrency 16 the run
/// takes a fraction of the ~40 s a serial run would, never has more than 16 connections open,
/// and reports in the order given; with --concurrency 1 the same targets give equal results,
/// one connection at a time.
#[test]
fn concurrency_bounds_parallel_probes_and_keeps_the_given_order() {
    let (_, env) = pki_env();
    let gauge = Arc::new(Gauge::default());
    let fakes: Vec<Fake> = (0..50)
        .map(|i| {
            let delay = Duration::from_millis(if i % 2 == 0 { 1500 } else { 100 });
            Fake::start_counted(Script::NoStartTls(delay), Arc::clone(&gauge))
        })
        .collect();
    let mut file = String::from("# partner MX hosts\r\n\r\n");
    for (i, fake) in fakes.iter().enumerate() {
        if i % 10 == 0 {
            file.push_str(&format!("# group {}\r\n", i / 10));
        }
        file.push_str(&format!("  {}   # partner {i}\r\n", fake.target()));
    }
    env.write("targets.txt", file);

    let started = Instant::now();
    let results = probe_results(
        &env,
        &["--targets-file", "targets.txt", "--concurrency", "16"],
        1,
    );
    let elapsed = started.elapsed();
    assert_eq!(results.len(), 50);
    for (result, fake) in results.iter().zip(&fakes) {
        assert_eq!(
            result["target"],
            fake.target(),
            "results keep the given order"
        );
        assert_no_chain(result, "starttls-not-supported");
    }
    assert!(
        elapsed < Duration::from_secs(20),
        "50 targets at 16 at a time took {elapsed:?}"
    );
    assert!(
        gauge.max() <= 16,
        "{} connections were open at once",
        gauge.max()
    );
    assert!(gauge.max() > 1, "the probes did not overlap at all");
    for fake in &fakes {
        assert_polite_session(fake, HELO);
    }

    // Serially: two slow and two fast targets, given on the command line.
    gauge.reset_max();
    let subset = [0, 1, 2, 3];
    let mut args: Vec<String> = subset.iter().map(|&i| fakes[i].target()).collect();
    args.extend(["--concurrency".into(), "1".into()]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let started = Instant::now();
    let serial = probe_results(&env, &args, 1);
    let elapsed = started.elapsed();
    let expected: Vec<&Value> = subset.iter().map(|&i| &results[i]).collect();
    assert_eq!(serial.iter().collect::<Vec<_>>(), expected);
    assert_eq!(
        gauge.max(),
        1,
        "--concurrency 1 opened connections in parallel"
    );
    assert!(
        elapsed >= Duration::from_millis(3200),
        "four targets greeting after 1.5+0.1+1.5+0.1 s took only {elapsed:?} one at a time"
    );
}

// ---------------------------------------------------------------------------------------------
// Implicit TLS (openssl s_server)
// ---------------------------------------------------------------------------------------------

/// `openssl s_server` on 127.0.0.1:PORT (implicit TLS), killed on drop. Its stdin is kept
/// open and its stdout drained.
struct TlsServer {
    child: Child,
    _stdin: ChildStdin,
    port: u16,
}

impl TlsServer {
    /// Starts it with `args` (paths relative to the test directory) and waits for ACCEPT.
    fn try_start(env: &TestEnv, port: u16, args: &[&str]) -> Result<TlsServer, String> {
        let errors = env.path(&format!("s_server-{port}.err"));
        let mut child = Command::new("openssl")
            .arg("s_server")
            .arg("-accept")
            .arg(format!("127.0.0.1:{port}"))
            .args(["-no-CAfile", "-no-CApath", "-no-CAstore"])
            .args(args)
            .current_dir(env.dir.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(File::create(&errors).expect("s_server error log"))
            .spawn()
            .map_err(|e| format!("cannot start openssl s_server: {e}"))?;
        let stdin = child.stdin.take().expect("piped stdin");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if line.trim() == "ACCEPT" {
                    let _ = tx.send(());
                }
            }
        });
        let mut server = TlsServer {
            child,
            _stdin: stdin,
            port,
        };
        match rx.recv_timeout(Duration::from_secs(15)) {
            Ok(()) => Ok(server),
            Err(_) => {
                let _ = server.child.kill();
                let _ = server.child.wait();
                Err(format!(
                    "s_server on port {port} never said ACCEPT: {}",
                    std::fs::read_to_string(&errors).unwrap_or_default()
                ))
            }
        }
    }

    fn start(env: &TestEnv, args: &[&str]) -> TlsServer {
        TlsServer::try_start(env, mta::free_port(), args).unwrap_or_else(|e| panic!("{e}"))
    }

    fn target(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

impl Drop for TlsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const FULL_CHAIN: &[&str] = &[
    "-cert",
    "leaf.pem",
    "-key",
    "leaf.key",
    "-cert_chain",
    "int.pem",
];
const LEAF_ONLY: &[&str] = &["-cert", "leaf.pem", "-key", "leaf.key"];

#[test]
fn implicit_tls_server_is_probed_with_starttls_none() {
    let (pki, env) = pki_env();
    let server = TlsServer::start(&env, FULL_CHAIN);
    let results = probe_results(
        &env,
        &[&server.target(), "--starttls", "none", "--host", HOST],
        0,
    );
    let result = &results[0];
    assert_eq!(result["status"], "ok", "{result:#}");
    assert_eq!(
        presented(result),
        vec![pki.leaf.sha256(), pki.int.sha256()],
        "{result:#}"
    );
    assert_eq!(result["tls"]["starttls"], false, "{result:#}");
    assert_eq!(result["tls"]["method"], "rustls", "{result:#}");
    assert_eq!(result["tls"]["version"], "TLSv1.3", "{result:#}");

    // Without --starttls none a port other than 465 means SMTP first: the TLS server never
    // greets, so the probe times out waiting for the greeting.
    let results = probe_results(&env, &[&server.target(), "--timeout", "2"], 1);
    assert_no_chain(&results[0], "timeout");
}

/// An IP address names no host: without --host the report says no host-name check was made
/// (an info finding, which changes neither the status nor the exit code); with --host it is
/// checked and not mentioned.
#[test]
fn probing_an_ip_address_without_host_says_no_host_name_check_was_made() {
    let (_pki, env) = pki_env();
    let server = TlsServer::start(&env, FULL_CHAIN);
    let results = probe_results(&env, &[&server.target(), "--starttls", "none"], 0);
    let result = &results[0];
    assert_eq!(result["status"], "ok", "{result:#}");
    let note = finding(result, "hostname-not-checked");
    assert_eq!(note["severity"], "info", "{result:#}");
    assert!(
        message(note).contains("no host-name check was made") && message(note).contains("--host"),
        "{result:#}"
    );
    let results = probe_results(
        &env,
        &[&server.target(), "--starttls", "none", "--host", HOST],
        0,
    );
    assert!(
        !codes(&results[0]).contains(&"hostname-not-checked".to_string()),
        "{:#}",
        results[0]
    );
}

#[test]
#[cfg_attr(not(have_privileged_ports), ignore = "needs to bind port 465 (root)")]
fn port_465_means_implicit_tls() {
    let (pki, env) = pki_env();
    let server = TlsServer::try_start(&env, 465, FULL_CHAIN)
        .unwrap_or_else(|e| panic!("cannot listen on 127.0.0.1:465: {e}"));
    let results = probe_results(&env, &["127.0.0.1:465", "--host", HOST], 0);
    let result = &results[0];
    assert_eq!(result["target"], "127.0.0.1:465", "{result:#}");
    assert_eq!(result["tls"]["starttls"], false, "{result:#}");
    assert_eq!(
        presented(result),
        vec![pki.leaf.sha256(), pki.int.sha256()],
        "{result:#}"
    );
    drop(server);
}

/// `--servername` is sent as SNI: s_server answers that name with the valid leaf and
/// everything else (an IP target sends no SNI) with the expired one.
#[test]
fn servername_sets_sni() {
    let (pki, env) = pki_env();
    let server = TlsServer::start(
        &env,
        &[
            "-cert",
            "expired.pem",
            "-key",
            "leaf.key",
            "-servername",
            HOST,
            "-cert2",
            "leaf.pem",
            "-key2",
            "leaf.key",
        ],
    );
    let base = [server.target(), "--starttls".into(), "none".into()];
    let base: Vec<&str> = base.iter().map(String::as_str).collect();
    let without = probe_results(&env, &base, 1);
    assert_eq!(presented(&without[0])[0], pki.expired.sha256());
    let mut args = base.clone();
    args.extend(["--servername", HOST]);
    let with = probe_results(&env, &args, 1);
    assert_eq!(presented(&with[0])[0], pki.leaf.sha256(), "{:#}", with[0]);
}

// ---------------------------------------------------------------------------------------------
// Output modes and exit codes
// ---------------------------------------------------------------------------------------------

#[test]
fn brief_prints_a_header_and_one_line_per_target_in_order() {
    let (_, env) = pki_env();
    let full = TlsServer::start(&env, FULL_CHAIN);
    let leaf_only = TlsServer::start(&env, LEAF_ONLY);
    let closed = format!("127.0.0.1:{}", closed_port());
    let out = probe(
        &env,
        &[
            &full.target(),
            &leaf_only.target(),
            &closed,
            "--starttls",
            "none",
            "--host",
            HOST,
            "--intermediates",
            "int.pem",
            "--brief",
        ],
    );
    out.assert_status(1);
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(
        lines.len(),
        4,
        "a header and three targets:\n{}",
        out.stdout
    );
    assert!(lines[0].starts_with("TARGET"), "{}", out.stdout);
    let words = |line: &str| -> Vec<String> { line.split_whitespace().map(String::from).collect() };
    assert_eq!(
        words(lines[1]),
        [
            full.target().as_str(),
            "ok",
            "2034-01-01",
            "CN=mail.example.test",
            "-"
        ],
        "{}",
        out.stdout
    );
    assert_eq!(
        words(lines[2]),
        [
            leaf_only.target().as_str(),
            "repairable",
            "2034-01-01",
            "CN=mail.example.test",
            "missing-intermediate"
        ],
        "{}",
        out.stdout
    );
    assert_eq!(
        words(lines[3]),
        [closed.as_str(), "broken", "-", "-", "connection-failed"],
        "{}",
        out.stdout
    );
}

/// The first line of Nagios output and the exit code.
fn nagios(env: &TestEnv, args: &[&str]) -> (String, i32, Output) {
    let mut all = vec!["--nagios"];
    all.extend_from_slice(args);
    let out = probe(env, &all);
    let first = out.stdout.lines().next().unwrap_or_default().to_string();
    (first, out.status, out)
}

#[test]
fn nagios_reports_ok_warning_and_critical_by_the_worst_target() {
    let (_, env) = pki_env();
    let full = TlsServer::start(&env, FULL_CHAIN);
    let leaf_only = TlsServer::start(&env, LEAF_ONLY);
    let closed = format!("127.0.0.1:{}", closed_port());
    let tls = ["--starttls", "none", "--host", HOST];
    let with = |targets: &[&str], extra: &[&str]| -> Vec<String> {
        targets
            .iter()
            .chain(&tls)
            .chain(extra)
            .map(|s| s.to_string())
            .collect()
    };
    let run_nagios = |args: Vec<String>| {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        nagios(&env, &args)
    };

    let (line, status, out) = run_nagios(with(&[&full.target()], &[]));
    assert!(line.starts_with("CHAINFIX OK - "), "{}", out.stdout);
    assert_eq!(status, 0, "{}{}", out.stdout, out.stderr);

    let (line, status, out) = run_nagios(with(&[&full.target()], &["--warn-days", "5000"]));
    assert!(line.starts_with("CHAINFIX WARNING - "), "{}", out.stdout);
    assert!(line.contains("expires-soon"), "{}", out.stdout);
    assert_eq!(status, 1, "{}{}", out.stdout, out.stderr);

    let (line, status, out) = run_nagios(with(&[&full.target(), &leaf_only.target()], &[]));
    assert!(line.starts_with("CHAINFIX CRITICAL - "), "{}", out.stdout);
    assert!(line.contains("missing-intermediate"), "{}", out.stdout);
    assert!(line.contains(&leaf_only.target()), "{}", out.stdout);
    assert_eq!(status, 2, "{}{}", out.stdout, out.stderr);

    let (line, status, out) =
        run_nagios(with(&[&full.target(), &closed], &["--warn-days", "5000"]));
    assert!(line.starts_with("CHAINFIX CRITICAL - "), "{}", out.stdout);
    assert!(line.contains("connection-failed"), "{}", out.stdout);
    assert_eq!(status, 2, "{}{}", out.stdout, out.stderr);
}

#[test]
fn unreadable_targets_file_is_unknown_for_nagios_and_exit_2_otherwise() {
    let (_, env) = pki_env();
    let missing = env.path("no-such-targets.txt");
    let missing = missing.to_str().expect("UTF-8 path");

    let (line, status, out) = nagios(&env, &["--targets-file", missing]);
    assert!(line.starts_with("CHAINFIX UNKNOWN - "), "{}", out.stdout);
    assert_eq!(status, 3, "{}{}", out.stdout, out.stderr);

    let out = probe(&env, &["--targets-file", missing]);
    out.assert_status(2);
    assert!(out.stderr.contains("no-such-targets.txt"), "{}", out.stderr);
}

#[test]
fn invalid_target_is_a_usage_error() {
    let (_, env) = pki_env();
    let out = probe(&env, &["smtp://x"]);
    out.assert_status(2);
    assert!(out.stderr.contains("smtp://x"), "{}", out.stderr);
    assert!(out.stdout.is_empty(), "{}", out.stdout);

    let (line, status, out) = nagios(&env, &["smtp://x"]);
    assert!(line.starts_with("CHAINFIX UNKNOWN - "), "{}", out.stdout);
    assert_eq!(status, 3, "{}{}", out.stdout, out.stderr);

    let file = env.write("targets.txt", "127.0.0.1:25\nsmtp://x\n");
    let out = probe(&env, &["--targets-file", file.to_str().expect("UTF-8")]);
    out.assert_status(2);
    assert!(out.stderr.contains("line 2"), "{}", out.stderr);
}

/// Nagios treats exit 2 as CRITICAL, so once the arguments have parsed, a plugin run that
/// cannot probe must say UNKNOWN (3), as the probe help promises ("3 UNKNOWN: the probe
/// itself could not run (bad usage, unreadable files)"): a bad --at value, no targets.
#[test]
fn nagios_usage_errors_after_parsing_are_unknown() {
    let (_, env) = pki_env();
    let mut wrong = Vec::new();
    for args in [vec!["127.0.0.1:25", "--at", "yesterday"], vec![]] {
        let out = run(env.cmd().args(["probe", "--nagios"]).args(&args));
        let line = out.stdout.lines().next().unwrap_or_default();
        if !(line.starts_with("CHAINFIX UNKNOWN - ") && out.status == 3) {
            wrong.push(format!(
                "{args:?}: exit {}, stdout {:?}, stderr {:?}",
                out.status, out.stdout, out.stderr
            ));
        }
    }
    assert!(wrong.is_empty(), "not UNKNOWN/3:\n{}", wrong.join("\n"));
}

/// README: "Usage errors caught by the argument parser exit 2 in every mode."
#[test]
fn argument_parser_errors_exit_2_even_with_nagios() {
    let (_, env) = pki_env();
    for args in [
        vec!["127.0.0.1:25", "--concurrency", "many"],
        vec!["127.0.0.1:25", "--no-such-option"],
        vec!["127.0.0.1:25", "--json", "--brief"],
    ] {
        let out = run(env.cmd().args(["probe", "--nagios"]).args(&args));
        assert_eq!(out.status, 2, "{args:?}: {}{}", out.stdout, out.stderr);
        assert!(!out.stderr.is_empty(), "{args:?}: says why");
    }
}

// ---------------------------------------------------------------------------------------------
// Several targets, --compare and failures around the probe
// ---------------------------------------------------------------------------------------------

#[test]
#[cfg_attr(not(have_ipv6_loopback), ignore = "needs an IPv6 loopback")]
fn ipv6_loopback_target_in_brackets() {
    let (_, env) = pki_env();
    let listener = TcpListener::bind("[::1]:0").expect("binding [::1]:0");
    let fake = Fake::serve_on(
        listener,
        Script::NoStartTls(Duration::ZERO),
        Arc::new(Gauge::default()),
    );
    let target = format!("[::1]:{}", fake.addr.port());
    let results = probe_results(&env, &[&target], 1);
    assert_eq!(results[0]["target"], target, "{:#}", results[0]);
    assert_no_chain(&results[0], "starttls-not-supported");
    assert_polite_session(&fake, HELO);
}

/// A target given twice is probed twice and reported twice, each time with what that
/// connection presented (two certificates, not four, and no duplicate-certificate).
#[test]
fn the_same_target_twice_gives_two_equal_results() {
    let (pki, env) = pki_env();
    let server = TlsServer::start(&env, FULL_CHAIN);
    let target = server.target();
    let results = probe_results(
        &env,
        &[&target, &target, "--starttls", "none", "--host", HOST],
        0,
    );
    assert_eq!(results.len(), 2, "{results:#?}");
    for result in &results {
        assert_eq!(result["target"], target, "{result:#}");
        assert_eq!(
            presented(result),
            vec![pki.leaf.sha256(), pki.int.sha256()],
            "{result:#}"
        );
        assert!(
            !codes(result).contains(&"duplicate-certificate".to_string()),
            "{result:#}"
        );
        assert_eq!(result["status"], "ok", "{result:#}");
    }
    assert_eq!(results[0], results[1]);
}

/// Two MX hosts with the same certificate, one serving the full chain and one the leaf
/// alone: each is judged on what it sent.
#[test]
fn two_servers_sharing_a_leaf_are_judged_on_what_each_sent() {
    let (pki, env) = pki_env();
    let full = TlsServer::start(&env, FULL_CHAIN);
    let leaf_only = TlsServer::start(&env, LEAF_ONLY);
    let results = probe_results(
        &env,
        &[
            &full.target(),
            &leaf_only.target(),
            "--starttls",
            "none",
            "--host",
            HOST,
        ],
        1,
    );
    assert_eq!(results.len(), 2, "{results:#?}");
    assert_eq!(results[0]["target"], full.target());
    assert_eq!(results[0]["status"], "ok", "{:#}", results[0]);
    assert_eq!(
        presented(&results[0]),
        vec![pki.leaf.sha256(), pki.int.sha256()]
    );
    assert_eq!(results[1]["target"], leaf_only.target());
    assert_eq!(presented(&results[1]), vec![pki.leaf.sha256()]);
    assert_eq!(
        finding(&results[1], "missing-intermediate")["severity"],
        "error",
        "{:#}",
        results[1]
    );
}

/// `--compare` with what `chainfix repair` wrote: cert.pem holds the leaf alone,
/// fullchain.pem leaf and intermediate. A server sending the full chain matches
/// fullchain.pem, whichever way the files are given (or the whole output directory).
#[test]
fn compare_matches_when_any_given_file_holds_exactly_the_served_chain() {
    let (_, env) = pki_env();
    let server = TlsServer::start(&env, FULL_CHAIN);
    let mut repair = env.cmd();
    repair.args([
        "repair",
        "leaf.pem",
        "leaf.key",
        "--intermediates",
        "int.pem",
        "--roots",
        "root.pem",
        "--no-default-roots",
        "--offline",
        "--at",
        AT,
        "--out",
        "out",
    ]);
    run(&mut repair).assert_status(0);
    let target = server.target();
    let mut wrong = Vec::new();
    for compare in [
        vec!["out/fullchain.pem"],
        vec!["out/fullchain.pem", "out/cert.pem"],
        vec!["out/cert.pem", "out/fullchain.pem"],
        vec!["out"],
    ] {
        let mut args = vec![
            "--json",
            target.as_str(),
            "--starttls",
            "none",
            "--host",
            HOST,
            "--compare",
        ];
        args.extend(&compare);
        let out = probe(&env, &args);
        let differs = out.stdout.contains("served-differs-from-disk");
        if out.status != 0 || differs {
            wrong.push(format!(
                "--compare {compare:?}: exit {}\n{}{}",
                out.status, out.stdout, out.stderr
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn unreadable_compare_file_is_exit_2_and_unknown_for_nagios() {
    let (_, env) = pki_env();
    let server = TlsServer::start(&env, FULL_CHAIN);
    let target = server.target();
    let args = [
        target.as_str(),
        "--starttls",
        "none",
        "--host",
        HOST,
        "--compare",
        "missing.pem",
    ];
    let out = probe(&env, &args);
    out.assert_status(2);
    assert!(out.stderr.contains("missing.pem"), "{}", out.stderr);
    let (line, status, out) = nagios(&env, &args);
    assert!(line.starts_with("CHAINFIX UNKNOWN - "), "{}", out.stdout);
    assert_eq!(status, 3, "{}{}", out.stdout, out.stderr);
}

/// A mistyped `--roots` must not quietly turn into untrusted-root findings on every target:
/// as with `inspect`, an unreadable input is an operational failure (exit 2, listed under
/// "errors"), and UNKNOWN for Nagios.
#[test]
fn unreadable_roots_file_is_an_operational_failure() {
    let (_, env) = pki_env();
    let server = TlsServer::start(&env, FULL_CHAIN);
    let target = server.target();
    let args = [
        target.as_str(),
        "--starttls",
        "none",
        "--host",
        HOST,
        "--roots",
        "missing-root.pem",
    ];
    let (out, json) = probe_json(&env, &args);
    let errors = json["errors"].as_array().cloned().unwrap_or_default();
    let listed = errors.iter().any(|e| {
        e["path"]
            .as_str()
            .is_some_and(|p| p.contains("missing-root.pem"))
    });
    let (line, status, nagios_out) = nagios(&env, &args);
    assert!(
        out.status == 2 && listed && line.starts_with("CHAINFIX UNKNOWN - ") && status == 3,
        "expected exit 2 with the file under errors, and UNKNOWN/3 with --nagios; got exit {} \
         errors {errors:?}\n--- stderr ---\n{}\n--- nagios (exit {status}) ---\n{}",
        out.status,
        out.stderr,
        nagios_out.stdout
    );
}

/// A server that demands a client certificate (a relay doing mutual TLS) still presents its
/// own chain first; the probe has no certificate to give but must report what it saw.
#[test]
fn server_demanding_a_client_certificate_still_has_its_chain_read() {
    let (pki, env) = pki_env();
    let mut args = FULL_CHAIN.to_vec();
    args.extend(["-Verify", "1", "-CAfile", "root.pem"]);
    let server = TlsServer::start(&env, &args);
    let results = probe_results(
        &env,
        &[&server.target(), "--starttls", "none", "--host", HOST],
        0,
    );
    assert_eq!(
        presented(&results[0]),
        vec![pki.leaf.sha256(), pki.int.sha256()],
        "{:#}",
        results[0]
    );
    assert_eq!(results[0]["status"], "ok", "{:#}", results[0]);
}

/// `--helo` goes into the SMTP dialogue verbatim: a value with a line break would let the
/// probe send commands of its own (here MAIL FROM, which the probe promises never to send).
/// It must be refused as bad usage before any connection is made.
#[test]
fn helo_with_a_line_break_is_refused() {
    let (_, env) = pki_env();
    let fake = Fake::start(Script::NoStartTls(Duration::ZERO));
    let out = run(&mut probe_cmd_without_helo(
        &env,
        &[
            &fake.target(),
            "--helo",
            "probe.example\r\nMAIL FROM:<probe@example.test>",
        ],
    ));
    thread::sleep(Duration::from_millis(300));
    let lines = fake.lines();
    assert!(
        !lines
            .iter()
            .any(|l| l.to_ascii_uppercase().starts_with("MAIL")),
        "the probe sent MAIL FROM: {lines:?}"
    );
    assert_eq!(
        out.status, 2,
        "expected a usage error; stdout {} stderr {}; the server received {lines:?}",
        out.stdout, out.stderr
    );
}
