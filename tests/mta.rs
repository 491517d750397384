//! End-to-end tests of the MTA configuration `chainfix repair` emits, against real Postfix and Exim on loopback, plus the IIS outputs.
//!
//! Every MTA test starts its own private instances (tests/common/mta.rs) on free loopback
//! ports and feeds them only what chainfix wrote: Postfix gets the verbatim contents of
//! `OUT/postfix/main.cf`, Exim `.include`s `OUT/exim/main.conf` (server role) or
//! `OUT/exim/transport.conf` (inside its smtp transport, client role). chainfix is run with
//! `--install-dir` = the real output directory so the paths in the snippets are real. Peers
//! are `openssl s_client` (server role) and the other MTA (client role), trusting only the
//! test root. The MTAs and openssl use the real clock, so `--at` is pinned close to today and
//! well inside the PKI's validity (2024..2034).
//!
//! Without Postfix or the extracted Exim (`.ci/setup-mtas.sh`) `cargo test` lists the MTA
//! tests as ignored (cfgs `have_postfix`, `have_exim` from build.rs); with
//! `CHAINFIX_REQUIRE_MTA=1` the build fails instead. The PFX and install-chain.ps1 tests only need openssl.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::mta::{self, Exim, EximConfig, Postfix};
use common::{issue, repo_path, run, self_signed, Alg, Cert, Output, Spec, TestEnv};
use serde_json::Value;

/// Close to the real date the MTAs and openssl check against, inside every validity window.
const AT: &str = "2026-11-22T00:00:00Z";
/// The environment variable the PFX password is passed in.
const PFX_VAR: &str = "CHAINFIX_TEST_PFX_PASSWORD";
const PFX_PASSWORD: &str = "correct horse battery staple";

// ---------------------------------------------------------------------------------------------
// PKI and chainfix
// ---------------------------------------------------------------------------------------------

/// A root, the intermediates in issuing order (the leaf's issuer first) and a leaf.
struct Pki {
    root: Cert,
    ints: Vec<Cert>,
    leaf: Cert,
}

impl Pki {
    /// RSA-2048 everywhere: root (key a), intermediate (key b), leaf (key c).
    fn rsa() -> Pki {
        let root = self_signed(&Spec::ca("MTA Test RSA Root", Alg::Rsa2048(0)).serial(101));
        let int = issue(
            &Spec::ca("MTA Test RSA Intermediate", Alg::Rsa2048(1)).serial(102),
            &root,
        );
        let leaf = issue(
            &Spec::leaf("mail.example.test", Alg::Rsa2048(2)).serial(103),
            &int,
        );
        Pki {
            root,
            ints: vec![int],
            leaf,
        }
    }

    /// ECDSA P-256 everywhere: root (key b), intermediate (key c), leaf (key a).
    fn ecdsa() -> Pki {
        let root = self_signed(&Spec::ca("MTA Test ECDSA Root", Alg::P256(1)).serial(201));
        let int = issue(
            &Spec::ca("MTA Test ECDSA Intermediate", Alg::P256(2)).serial(202),
            &root,
        );
        let leaf = issue(
            &Spec::leaf("mail.example.test", Alg::P256(0)).serial(203),
            &int,
        );
        Pki {
            root,
            ints: vec![int],
            leaf,
        }
    }

    /// Root -> policy CA -> issuing CA -> leaf (RSA CAs, P-256 leaf).
    fn two_intermediates() -> Pki {
        let root = self_signed(&Spec::ca("MTA Test Deep Root", Alg::Rsa2048(0)).serial(301));
        let policy = issue(
            &Spec::ca("MTA Test Policy CA", Alg::Rsa2048(1)).serial(302),
            &root,
        );
        let issuing = issue(
            &Spec::ca("MTA Test Issuing CA", Alg::Rsa2048(3)).serial(303),
            &policy,
        );
        let leaf = issue(
            &Spec::leaf("mail.example.test", Alg::P256(0)).serial(304),
            &issuing,
        );
        Pki {
            root,
            ints: vec![issuing, policy],
            leaf,
        }
    }

    /// Writes root.pem, int.pem (intermediates root-side first, so chainfix has to order
    /// them), leaf.pem (the leaf alone, as a CA portal hands it out) and leaf.key.
    fn write(&self, env: &TestEnv) {
        env.write("root.pem", &self.root.pem);
        let ints: String = self.ints.iter().rev().map(|c| c.pem.as_str()).collect();
        env.write("int.pem", ints);
        env.write("leaf.pem", &self.leaf.pem);
        env.write("leaf.key", &self.leaf.key_pem);
    }

    /// The chain a server must send: leaf, then the intermediates in issuing order.
    fn served(&self) -> Vec<String> {
        std::iter::once(&self.leaf)
            .chain(&self.ints)
            .map(|c| b64(&c.pem))
            .collect()
    }
}

/// The base64 body of a single PEM block, whitespace removed (as `mta::pem_certificates`).
fn b64(pem: &str) -> String {
    let blocks = mta::pem_certificates(pem);
    assert_eq!(blocks.len(), 1, "expected one PEM certificate:\n{pem}");
    blocks.into_iter().next().expect("one block")
}

/// A test directory the MTAs' users can traverse, with the PKI's files written into it.
fn shared_env(pki: &Pki) -> TestEnv {
    let env = TestEnv::new();
    mta::share_dir(env.dir.path());
    pki.write(&env);
    env
}

/// `chainfix repair leaf.pem leaf.key --intermediates int.pem --roots root.pem
/// --no-default-roots --offline --at AT --json --out OUT --install-dir OUT EXTRA...` with the
/// PFX password in `PFX_VAR` (`--install-dir OUT` only when EXTRA has no `--install-dir`).
/// Returns the raw output.
fn repair_output(env: &TestEnv, out: &Path, extra: &[&str]) -> Output {
    let mut cmd = env.cmd();
    cmd.args([
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
        "--json",
        "--cache-dir",
    ])
    .arg(env.path("cache"))
    .arg("--out")
    .arg(out);
    if !extra.contains(&"--install-dir") {
        cmd.arg("--install-dir").arg(out);
    }
    cmd.args(extra).env(PFX_VAR, PFX_PASSWORD);
    run(&mut cmd)
}

/// `repair_output`, asserting exit 0; returns the JSON report.
fn repair(env: &TestEnv, out: &Path, extra: &[&str]) -> Value {
    let output = repair_output(env, out, extra);
    output.assert_status(0);
    output.json()
}

/// The `files` of the single result: path -> action.
fn file_actions(report: &Value) -> BTreeMap<String, String> {
    let results = report["results"].as_array().expect("results array");
    assert_eq!(results.len(), 1, "one leaf, one result: {report:#}");
    results[0]["files"]
        .as_array()
        .expect("files array")
        .iter()
        .map(|f| {
            (
                f["path"].as_str().expect("file path").to_string(),
                f["action"].as_str().expect("file action").to_string(),
            )
        })
        .collect()
}

fn path_str(p: &Path) -> &str {
    p.to_str().expect("UTF-8 path")
}

// ---------------------------------------------------------------------------------------------
// What openssl s_client sees
// ---------------------------------------------------------------------------------------------

/// The certificates in the "Certificate chain" section of `s_client -showcerts` output.
fn served_chain(out: &Output) -> Vec<String> {
    let start = out
        .stdout
        .find("Certificate chain")
        .unwrap_or_else(|| panic!("no certificate chain in s_client output:\n{}", out.stdout));
    // The section ends at a line that is exactly "---" (PEM lines start with "-----").
    let section: Vec<&str> = out.stdout[start..]
        .lines()
        .take_while(|l| l.trim_end() != "---")
        .collect();
    mta::pem_certificates(&section.join("\n"))
}

/// The served chain as subjects, for readable failures.
fn describe(chain: &[String], pki: &Pki) -> Vec<String> {
    let all: Vec<&Cert> = std::iter::once(&pki.leaf)
        .chain(&pki.ints)
        .chain(std::iter::once(&pki.root))
        .collect();
    chain
        .iter()
        .map(|b| {
            all.iter().find(|c| b64(&c.pem) == *b).map_or_else(
                || "<unknown certificate>".to_string(),
                |c| c.spec.cn.clone(),
            )
        })
        .collect()
}

/// Asserts what a verifying SMTP client sees when only the leaf is served: verification fails
/// with error 20 and the server sends the leaf alone.
fn assert_leaf_only_fails(port: u16, env: &TestEnv, pki: &Pki, log: &dyn Fn() -> String) {
    let root = env.path("root.pem");
    let strict = mta::s_client(port, &root, &["-verify_return_error"]);
    let all = format!("{}{}", strict.stdout, strict.stderr);
    assert_ne!(
        strict.status,
        0,
        "s_client -verify_return_error must fail against a leaf-only server:\n{all}\n{}",
        log()
    );
    assert!(
        all.contains("verify error:num=20:unable to get local issuer certificate"),
        "expected verify error 20:\n{all}\n{}",
        log()
    );
    let shown = mta::s_client(port, &root, &["-showcerts"]);
    let chain = served_chain(&shown);
    assert_eq!(
        chain,
        vec![b64(&pki.leaf.pem)],
        "before the repair the server sends the leaf only, got {:?}",
        describe(&chain, pki)
    );
    // Without -verify_return_error openssl sums this up as 21 ("unable to verify the first
    // certificate"; 20 in older releases): either way not 0.
    assert!(
        shown.stdout.contains("Verify return code: 21")
            || shown.stdout.contains("Verify return code: 20"),
        "{}",
        shown.stdout
    );
}

/// Asserts that a client trusting only the root verifies the server, which sends exactly the
/// leaf and then the intermediates in issuing order.
fn assert_full_chain_verifies(port: u16, env: &TestEnv, pki: &Pki, log: &dyn Fn() -> String) {
    let root = env.path("root.pem");
    let strict = mta::s_client(port, &root, &["-verify_return_error", "-showcerts"]);
    assert_eq!(
        strict.status,
        0,
        "s_client -verify_return_error must succeed after the repair:\n{}{}\n{}",
        strict.stdout,
        strict.stderr,
        log()
    );
    assert!(
        strict.stdout.contains("Verify return code: 0 (ok)"),
        "{}\n{}",
        strict.stdout,
        log()
    );
    let chain = served_chain(&strict);
    assert_eq!(
        chain,
        pki.served(),
        "served chain must be leaf then intermediates in order (no root), got {:?}",
        describe(&chain, pki)
    );
}

// ---------------------------------------------------------------------------------------------
// 1. Server role: openssl s_client against Postfix and Exim, before and after the repair
// ---------------------------------------------------------------------------------------------

fn postfix_server_role(pki: &Pki) {
    let env = shared_env(pki);
    let (key, leaf) = (env.path("leaf.key"), env.path("leaf.pem"));
    let mut pf = Postfix::start(
        &env.path("postfix"),
        &[],
        &mta::postfix_tls_files(&key, &leaf),
    );
    let log = || format!("--- postfix.log ---\n{}", mta::tail(&pf.log(), 30));
    assert_leaf_only_fails(pf.port, &env, pki, &log);

    let out = env.path("out");
    repair(&env, &out, &[]);
    pf.restart(&[], &mta::postfix_tls_from(&out));
    assert_eq!(
        pf.param("smtpd_tls_chain_files"),
        format!(
            "{}, {}",
            out.join("privkey.pem").display(),
            out.join("fullchain.pem").display()
        )
    );
    let log = || format!("--- postfix.log ---\n{}", mta::tail(&pf.log(), 30));
    assert_full_chain_verifies(pf.port, &env, pki, &log);
}

fn exim_server_role(pki: &Pki) {
    let env = shared_env(pki);
    let (key, leaf) = (env.path("leaf.key"), env.path("leaf.pem"));
    let mut exim = Exim::start(
        &env.path("exim"),
        &EximConfig {
            main: mta::exim_tls_files(&key, &leaf),
            ..EximConfig::default()
        },
    );
    assert_leaf_only_fails(exim.port, &env, pki, &|| exim.diagnostics());

    let out = env.path("out");
    repair(&env, &out, &[]);
    exim.restart(&EximConfig {
        main: format!(".include {}\n", out.join("exim/main.conf").display()),
        ..EximConfig::default()
    });
    assert_full_chain_verifies(exim.port, &env, pki, &|| exim.diagnostics());
}

#[test]
#[cfg_attr(
    not(have_postfix),
    ignore = "needs Postfix: .ci/setup-mtas.sh, as root"
)]
fn postfix_serves_full_rsa_chain_after_repair() {
    postfix_server_role(&Pki::rsa());
}

#[test]
#[cfg_attr(
    not(have_postfix),
    ignore = "needs Postfix: .ci/setup-mtas.sh, as root"
)]
fn postfix_serves_full_ecdsa_chain_after_repair() {
    postfix_server_role(&Pki::ecdsa());
}

#[test]
#[cfg_attr(
    not(have_postfix),
    ignore = "needs Postfix: .ci/setup-mtas.sh, as root"
)]
fn postfix_serves_two_intermediates_in_issuing_order_after_repair() {
    postfix_server_role(&Pki::two_intermediates());
}

#[test]
#[cfg_attr(not(have_exim), ignore = "needs Exim: .ci/setup-mtas.sh, as root")]
fn exim_serves_full_rsa_chain_after_repair() {
    exim_server_role(&Pki::rsa());
}

#[test]
#[cfg_attr(not(have_exim), ignore = "needs Exim: .ci/setup-mtas.sh, as root")]
fn exim_serves_full_ecdsa_chain_after_repair() {
    exim_server_role(&Pki::ecdsa());
}

#[test]
#[cfg_attr(not(have_exim), ignore = "needs Exim: .ci/setup-mtas.sh, as root")]
fn exim_serves_two_intermediates_in_issuing_order_after_repair() {
    exim_server_role(&Pki::two_intermediates());
}

// ---------------------------------------------------------------------------------------------
// 2. The emitted snippets pass the MTAs' own configuration checks
// ---------------------------------------------------------------------------------------------

/// Postfix messages that mean the configuration is not clean.
fn postfix_complaints(text: &str) -> Vec<&str> {
    text.lines()
        .filter(|l| l.contains("warning:") || l.contains("fatal:") || l.contains("error:"))
        .collect()
}

#[test]
#[cfg_attr(
    not(have_postfix),
    ignore = "needs Postfix: .ci/setup-mtas.sh, as root"
)]
fn postfix_check_accepts_emitted_main_cf_in_every_style_and_each_serves_the_chain() {
    let pki = Pki::two_intermediates();
    let env = shared_env(&pki);
    let styles: [(&str, &[&str]); 3] = [
        ("chain-files", &[]),
        ("legacy", &["--postfix-legacy"]),
        ("single-file", &["--postfix-single-file"]),
    ];
    for (style, flags) in styles {
        let out = env.path(&format!("out-{style}"));
        repair(&env, &out, flags);
        let snippet = mta::postfix_tls_from(&out);
        let key = out.join("privkey.pem").display().to_string();
        let chain = out.join("fullchain.pem").display().to_string();
        let single = out.join("postfix/key-and-chain.pem").display().to_string();
        let expected: Vec<(&str, String)> = match style {
            "legacy" => vec![
                ("smtpd_tls_cert_file", chain.clone()),
                ("smtpd_tls_key_file", key.clone()),
                ("smtp_tls_cert_file", chain.clone()),
                ("smtp_tls_key_file", key.clone()),
                ("smtpd_tls_chain_files", String::new()),
            ],
            "single-file" => vec![
                ("smtpd_tls_chain_files", single.clone()),
                ("smtp_tls_chain_files", single.clone()),
            ],
            _ => vec![
                ("smtpd_tls_chain_files", format!("{key}, {chain}")),
                ("smtp_tls_chain_files", format!("{key}, {chain}")),
            ],
        };
        if style == "single-file" {
            let combined = fs::read_to_string(&single).expect("key-and-chain.pem");
            let key_at = combined.find("PRIVATE KEY-----").expect("key in the file");
            let cert_at = combined.find("-----BEGIN CERTIFICATE").expect("certs");
            assert!(key_at < cert_at, "key must come first:\n{combined}");
            assert_eq!(mta::pem_certificates(&combined), pki.served());
            let mode = fs::metadata(&single).expect("stat").permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{single} holds the key: mode 0600");
        }

        let mut pf = Postfix::configure(&env.path(&format!("postfix-{style}")), &[], &snippet);
        let check = pf.check();
        assert_eq!(
            check.status, 0,
            "postfix check rejects the {style} snippet:\n{}{}\n--- snippet ---\n{snippet}",
            check.stdout, check.stderr
        );
        let check_text = format!("{}{}", check.stdout, check.stderr);
        let complaints = postfix_complaints(&check_text);
        assert!(
            complaints.is_empty(),
            "postfix check complains about the {style} snippet: {complaints:#?}"
        );
        let postconf = run(Command::new(mta::POSTCONF_BIN)
            .arg("-c")
            .arg(&pf.conf)
            .arg("-n"));
        assert_eq!(postconf.status, 0, "{}", postconf.stderr);
        assert!(
            postfix_complaints(&postconf.stderr).is_empty(),
            "postconf -n complains about the {style} snippet:\n{}",
            postconf.stderr
        );
        for (param, value) in &expected {
            assert_eq!(
                &pf.param(param),
                value,
                "{style}: Postfix's value of {param}"
            );
        }

        // The configuration that checks clean also serves the whole chain.
        pf.restart(&[], &snippet);
        let log = || format!("--- postfix.log ---\n{}", mta::tail(&pf.log(), 30));
        assert_full_chain_verifies(pf.port, &env, &pki, &log);
    }
}

#[test]
#[cfg_attr(not(have_exim), ignore = "needs Exim: .ci/setup-mtas.sh, as root")]
fn exim_bv_accepts_emitted_main_conf_transport_conf_and_debian_macros() {
    let pki = Pki::ecdsa();
    let env = shared_env(&pki);
    let out = env.path("out");
    repair(&env, &out, &[]);
    let chain = out.join("fullchain.pem").display().to_string();
    let key = out.join("exim/privkey.pem").display().to_string();

    let exim = Exim::configure(
        &env.path("exim"),
        &EximConfig {
            main: format!(".include {}\n", out.join("exim/main.conf").display()),
            relay_to: Some(mta::free_port()),
            transport: format!(".include {}\n", out.join("exim/transport.conf").display()),
            ..EximConfig::default()
        },
    );
    let check = exim.check();
    assert_eq!(
        check.status, 0,
        "exim -bV rejects the emitted snippets:\n{}{}",
        check.stdout, check.stderr
    );
    let main = exim.exim(&["-bP", "tls_certificate", "tls_privatekey"]);
    assert_eq!(main.status, 0, "{}", main.stderr);
    assert_eq!(
        main.stdout,
        format!("tls_certificate = {chain}\ntls_privatekey = {key}\n")
    );
    let transport = exim.exim(&["-bP", "transport", "remote_smtp"]);
    assert_eq!(transport.status, 0, "{}", transport.stderr);
    assert!(
        transport
            .stdout
            .lines()
            .any(|l| l == format!("tls_certificate = {chain}")),
        "remote_smtp must present the full chain:\n{}",
        transport.stdout
    );
    assert!(
        transport
            .stdout
            .lines()
            .any(|l| l == format!("tls_privatekey = {key}")),
        "remote_smtp must use Exim's copy of the key:\n{}",
        transport.stdout
    );

    // Exim's copy of the key: readable by the Exim group, by no one else.
    let meta = fs::metadata(&key).expect("stat exim/privkey.pem");
    assert_eq!(meta.permissions().mode() & 0o777, 0o640, "{key}");
    let group = fs::read_to_string("/etc/group").expect("/etc/group");
    let exim_gid = group
        .lines()
        .find(|l| l.starts_with("Debian-exim:"))
        .and_then(|l| l.split(':').nth(2))
        .and_then(|g| g.parse::<u32>().ok())
        .expect("Debian-exim group");
    assert_eq!(meta.gid(), exim_gid, "{key} must be group Debian-exim");

    // The Debian macros, used the way Debian's exim4.conf.template uses them.
    let macros = Exim::configure(
        &env.path("exim-macros"),
        &EximConfig {
            main: format!(
                ".include {}\n\
                 .ifdef MAIN_TLS_ENABLE\n\
                 tls_certificate = MAIN_TLS_CERTIFICATE\n\
                 tls_privatekey = MAIN_TLS_PRIVATEKEY\n\
                 .endif\n",
                out.join("exim/debian-macros.conf").display()
            ),
            relay_to: Some(mta::free_port()),
            transport: "tls_certificate = REMOTE_SMTP_TLS_CERTIFICATE\n\
                        tls_privatekey = REMOTE_SMTP_PRIVATEKEY\n"
                .to_string(),
            ..EximConfig::default()
        },
    );
    let check = macros.check();
    assert_eq!(
        check.status, 0,
        "exim -bV rejects debian-macros.conf:\n{}{}",
        check.stdout, check.stderr
    );
    let main = macros.exim(&["-bP", "tls_certificate", "tls_privatekey"]);
    assert_eq!(
        main.stdout,
        format!("tls_certificate = {chain}\ntls_privatekey = {key}\n")
    );
}

/// Postfix splits `*_tls_chain_files` on whitespace and commas and has no quoting for it, so
/// an install directory with a space needs the `*_tls_cert_file`/`*_tls_key_file` pair (single
/// paths, spaces allowed) or a refusal; a snippet that Postfix silently splits breaks STARTTLS.
#[test]
#[cfg_attr(
    not(have_postfix),
    ignore = "needs Postfix: .ci/setup-mtas.sh, as root"
)]
fn postfix_snippet_still_serves_the_chain_when_the_install_dir_has_a_space() {
    let pki = Pki::rsa();
    let env = shared_env(&pki);
    let out = env.path("mail certs");
    let output = repair_output(&env, &out, &[]);
    if output.status == 2 {
        // Refusing such a directory, with a reason, is acceptable too.
        assert!(
            output.stderr.contains("install"),
            "a refusal must say why: {}",
            output.stderr
        );
        return;
    }
    output.assert_status(0);
    let pf = Postfix::start(&env.path("postfix"), &[], &mta::postfix_tls_from(&out));
    let log = || {
        format!(
            "--- snippet ---\n{}\n--- postfix.log ---\n{}",
            mta::postfix_tls_from(&out),
            mta::tail(&pf.log(), 30)
        )
    };
    assert_full_chain_verifies(pf.port, &env, &pki, &log);
}

#[test]
#[cfg_attr(not(have_exim), ignore = "needs Exim: .ci/setup-mtas.sh, as root")]
fn exim_snippet_still_serves_the_chain_when_the_install_dir_has_a_space() {
    let pki = Pki::ecdsa();
    let env = shared_env(&pki);
    let out = env.path("mail certs");
    repair(&env, &out, &[]);
    let exim = Exim::start(
        &env.path("exim"),
        &EximConfig {
            main: format!(".include {}\n", out.join("exim/main.conf").display()),
            ..EximConfig::default()
        },
    );
    assert_full_chain_verifies(exim.port, &env, &pki, &|| exim.diagnostics());
}

/// `--install-dir` names where the files live on the mail host; a relative path names nothing
/// there (Postfix daemons resolve it inside their queue directory, and STARTTLS silently
/// breaks), so it must be refused as a usage error.
#[test]
fn relative_install_dir_is_refused() {
    let pki = Pki::rsa();
    let env = TestEnv::new();
    pki.write(&env);
    let out = env.path("out");
    let output = repair_output(&env, &out, &["--install-dir", "etc/mail/certs"]);
    let written = fs::read_to_string(out.join("postfix/main.cf")).unwrap_or_default();
    assert_eq!(
        output.status, 2,
        "a relative --install-dir must be a usage error (exit 2); chainfix exited {} and wrote:\n{written}\n--- stderr ---\n{}",
        output.status, output.stderr
    );
    assert!(
        output.stderr.contains("install-dir"),
        "the error must name --install-dir: {}",
        output.stderr
    );
}

// ---------------------------------------------------------------------------------------------
// 3. Client role: one MTA relays to the other, which requires a verified client certificate
// ---------------------------------------------------------------------------------------------

fn message(subject: &str) -> String {
    format!(
        "From: sender@example.org\nTo: someone@example.net\nSubject: {subject}\n\nchainfix client-role test\n"
    )
}

#[test]
#[cfg_attr(
    not(all(have_postfix, have_exim)),
    ignore = "needs Postfix and Exim: .ci/setup-mtas.sh, as root"
)]
fn postfix_relays_to_exim_requiring_client_certs_only_with_the_repaired_chain() {
    let pki = Pki::rsa();
    let env = shared_env(&pki);
    let out = env.path("out");
    repair(&env, &out, &[]);
    let root = env.path("root.pem");

    // Exim accepts only clients whose certificate verifies against the root alone.
    let exim = Exim::start(
        &env.path("exim"),
        &EximConfig {
            main: format!(
                ".include {}\ntls_verify_hosts = *\ntls_verify_certificates = {}\n",
                out.join("exim/main.conf").display(),
                root.display()
            ),
            rcpt_acl: "  accept verify = certificate\n".to_string(),
            ..EximConfig::default()
        },
    );
    let relayhost = format!("[127.0.0.1]:{}", exim.port);
    let client_settings = [
        ("relayhost", relayhost.as_str()),
        ("default_transport", "smtp"),
        ("smtp_tls_security_level", "encrypt"),
    ];
    let repaired = Postfix::start(
        &env.path("postfix-repaired"),
        &client_settings,
        &mta::postfix_tls_from(&out),
    );
    let leaf_only = Postfix::start(
        &env.path("postfix-leaf-only"),
        &client_settings,
        &mta::postfix_tls_files(&env.path("leaf.key"), &env.path("leaf.pem")),
    );

    repaired.sendmail(
        "sender@example.org",
        "repaired@example.net",
        &message("repaired"),
    );
    leaf_only.sendmail(
        "sender@example.org",
        "leafonly@example.net",
        &message("leaf only"),
    );

    let sent = repaired.wait_log_line(&["to=<repaired@example.net>", "status=sent"]);
    assert!(
        sent.is_some(),
        "Postfix with the repaired chain did not get its message accepted\n--- postfix.log ---\n{}\n{}",
        mta::tail(&repaired.log(), 30),
        exim.diagnostics()
    );
    let received = exim
        .wait_log_line(&["<=", "for repaired@example.net"])
        .unwrap_or_else(|| panic!("Exim did not log the message\n{}", exim.diagnostics()));
    assert!(
        received.contains("CV=yes"),
        "Exim must have verified the client certificate: {received}"
    );
    assert!(
        received.contains("DN=\"CN=mail.example.test\""),
        "client certificate subject: {received}"
    );

    let deferred = leaf_only.wait_log_line(&["to=<leafonly@example.net>", "status=deferred"]);
    assert!(
        deferred.is_some(),
        "Postfix presenting only the leaf must be refused\n--- postfix.log ---\n{}\n{}",
        mta::tail(&leaf_only.log(), 30),
        exim.diagnostics()
    );
    let log = exim.mainlog();
    assert!(
        !log.lines()
            .any(|l| l.contains("<=") && l.contains("leafonly@example.net")),
        "Exim accepted mail from a client presenting only the leaf:\n{log}"
    );
    assert!(
        log.lines()
            .any(|l| l.contains("TLS error") && l.contains("certificate verification failed")),
        "Exim must log the failed client-certificate handshake:\n{log}"
    );
}

#[test]
#[cfg_attr(
    not(all(have_postfix, have_exim)),
    ignore = "needs Postfix and Exim: .ci/setup-mtas.sh, as root"
)]
fn exim_relays_to_postfix_requiring_client_certs_only_with_the_repaired_chain() {
    let pki = Pki::ecdsa();
    let env = shared_env(&pki);
    let out = env.path("out");
    repair(&env, &out, &[]);
    let root = env.path("root.pem");
    let root = path_str(&root);

    // Postfix relays only for clients whose certificate verifies against the root alone.
    let pf = Postfix::start(
        &env.path("postfix"),
        &[
            ("smtpd_tls_security_level", "encrypt"),
            ("smtpd_tls_ask_ccert", "yes"),
            ("smtpd_tls_req_ccert", "yes"),
            ("smtpd_tls_CAfile", root),
            (
                "smtpd_relay_restrictions",
                "permit_tls_all_clientcerts, reject",
            ),
        ],
        &mta::postfix_tls_from(&out),
    );
    let repaired = Exim::configure(
        &env.path("exim-repaired"),
        &EximConfig {
            relay_to: Some(pf.port),
            transport: format!(".include {}\n", out.join("exim/transport.conf").display()),
            ..EximConfig::default()
        },
    );
    let leaf_only = Exim::configure(
        &env.path("exim-leaf-only"),
        &EximConfig {
            relay_to: Some(pf.port),
            transport: mta::exim_tls_files(&env.path("leaf.key"), &env.path("leaf.pem")),
            ..EximConfig::default()
        },
    );

    let (status, said) = repaired.send("<>", "repaired@example.net", &message("repaired"));
    let delivered = repaired.wait_log_line(&["=> repaired@example.net", "C=\"250"]);
    assert!(
        delivered.is_some(),
        "Exim with the repaired chain did not deliver (exit {status}, {said})\n{}\n--- postfix.log ---\n{}",
        repaired.diagnostics(),
        mta::tail(&pf.log(), 30)
    );
    let accepted = pf.wait_log_line(&["to=<repaired@example.net>", "status=sent"]);
    assert!(
        accepted.is_some(),
        "Postfix did not take the message\n--- postfix.log ---\n{}",
        mta::tail(&pf.log(), 30)
    );
    assert!(
        pf.log()
            .contains("Trusted TLS connection established from localhost[127.0.0.1]"),
        "Postfix must have verified the client certificate:\n{}",
        mta::tail(&pf.log(), 30)
    );

    // -odi: the delivery attempt is over (and logged) when exim returns.
    let (status, said) = leaf_only.send("<>", "leafonly@example.net", &message("leaf only"));
    let log = leaf_only.mainlog();
    let failed = log.lines().find(|l| {
        (l.contains(" == leafonly@example.net") || l.contains(" ** leafonly@example.net"))
            && !l.contains("C=\"250")
    });
    assert!(
        failed.is_some() && !log.contains("=> leafonly@example.net"),
        "Exim presenting only the leaf must be refused (exit {status}, {said})\n{}\n--- postfix.log ---\n{}",
        leaf_only.diagnostics(),
        mta::tail(&pf.log(), 30)
    );
    let log = pf.log();
    assert!(
        !log.contains("to=<leafonly@example.net>"),
        "Postfix accepted mail from a client presenting only the leaf:\n{log}"
    );
}

// ---------------------------------------------------------------------------------------------
// 4. The .pfx for IIS/Exchange
// ---------------------------------------------------------------------------------------------

/// One PEM block of `openssl pkcs12 -nodes` output with the bag attributes printed before it.
struct Bag {
    kind: String,
    attributes: Vec<String>,
    body: String,
}

fn pfx_bags(stdout: &str) -> Vec<Bag> {
    let mut bags = Vec::new();
    let mut attributes = Vec::new();
    let mut current: Option<(String, String)> = None;
    for line in stdout.lines() {
        if let Some(kind) = line
            .strip_prefix("-----BEGIN ")
            .and_then(|l| l.strip_suffix("-----"))
        {
            current = Some((kind.to_string(), String::new()));
        } else if line.starts_with("-----END ") {
            if let Some((kind, body)) = current.take() {
                bags.push(Bag {
                    kind,
                    attributes: std::mem::take(&mut attributes),
                    body,
                });
            }
        } else if let Some((_, body)) = current.as_mut() {
            body.push_str(line.trim());
        } else {
            attributes.push(line.trim().to_string());
        }
    }
    bags
}

fn local_key_id(bag: &Bag) -> Option<String> {
    bag.attributes
        .iter()
        .find_map(|a| a.strip_prefix("localKeyID:").map(|v| v.trim().to_string()))
}

/// `openssl pkcs12 -info -nodes` on OUT/iis/certificate.pfx, asserting it opens.
fn pfx_info(env: &TestEnv, out: &Path) -> Output {
    let pfx = out.join("iis/certificate.pfx");
    let o = run(Command::new("openssl")
        .args(["pkcs12", "-info", "-nodes", "-passin"])
        .arg(format!("env:{PFX_VAR}"))
        .arg("-in")
        .arg(&pfx)
        .env(PFX_VAR, PFX_PASSWORD)
        .current_dir(env.dir.path()));
    assert_eq!(
        o.status,
        0,
        "openssl cannot open {}:\n{}",
        pfx.display(),
        o.stderr
    );
    o
}

/// The SubjectPublicKeyInfo PEM of a private key file, through openssl.
fn public_key_of(env: &TestEnv, key_file: &str) -> String {
    let o = env.openssl(&["pkey", "-in", key_file, "-pubout"]);
    o.assert_status(0);
    o.stdout
}

fn assert_pfx_holds_key_and_chain(env: &TestEnv, out: &Path, pki: &Pki) -> Output {
    let info = pfx_info(env, out);
    let bags = pfx_bags(&info.stdout);
    let certs: Vec<&Bag> = bags.iter().filter(|b| b.kind == "CERTIFICATE").collect();
    let keys: Vec<&Bag> = bags
        .iter()
        .filter(|b| b.kind.ends_with("PRIVATE KEY"))
        .collect();
    let cert_bodies: Vec<String> = certs.iter().map(|b| b.body.clone()).collect();
    assert_eq!(
        cert_bodies,
        pki.served(),
        "the pfx must hold the leaf then the intermediates, in order, without the root; got {:?}",
        describe(&cert_bodies, pki)
    );
    assert_eq!(keys.len(), 1, "exactly one key:\n{}", info.stdout);
    env.write(
        "pfx-key.pem",
        format!(
            "-----BEGIN {kind}-----\n{body}\n-----END {kind}-----\n",
            kind = keys[0].kind,
            body = keys[0].body
        ),
    );
    assert_eq!(
        public_key_of(env, "pfx-key.pem"),
        public_key_of(env, "leaf.key"),
        "the pfx key must be the leaf's"
    );
    // Windows pairs the key with its certificate through localKeyID.
    let key_id = local_key_id(keys[0]);
    assert!(
        key_id.is_some(),
        "the key bag has no localKeyID:\n{}",
        info.stdout
    );
    assert_eq!(
        local_key_id(certs[0]),
        key_id,
        "the leaf's bag must carry the key's localKeyID:\n{}",
        info.stdout
    );
    for int in &certs[1..] {
        assert_ne!(
            local_key_id(int),
            key_id,
            "an intermediate must not claim the key:\n{}",
            info.stdout
        );
    }
    info
}

#[test]
fn pfx_opens_with_openssl_and_holds_the_key_and_the_chain_leaf_first() {
    let pki = Pki::two_intermediates();
    let env = TestEnv::new();
    pki.write(&env);
    let out = env.path("out");
    repair(&env, &out, &["--pfx-password-env", PFX_VAR]);
    let info = assert_pfx_holds_key_and_chain(&env, &out, &pki);
    // Modern default: PBES2/AES-256 with an HMAC-SHA256 MAC; nothing from the legacy suites.
    assert!(info.stderr.contains("MAC: sha256"), "{}", info.stderr);
    assert!(info.stderr.contains("AES-256-CBC"), "{}", info.stderr);
    assert!(
        !info.stderr.contains("TripleDES") && !info.stderr.contains("RC2"),
        "{}",
        info.stderr
    );
    let mode = fs::metadata(out.join("iis/certificate.pfx"))
        .expect("stat pfx")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "the pfx holds the key: mode 0600");
}

#[test]
fn legacy_pfx_uses_3des_and_a_sha1_mac() {
    let pki = Pki::rsa();
    let env = TestEnv::new();
    pki.write(&env);
    let out = env.path("out");
    repair(&env, &out, &["--pfx-password-env", PFX_VAR, "--pfx-legacy"]);
    let info = assert_pfx_holds_key_and_chain(&env, &out, &pki);
    assert!(info.stderr.contains("MAC: sha1,"), "{}", info.stderr);
    let encryption: Vec<&str> = info
        .stderr
        .lines()
        .filter(|l| l.starts_with("PKCS7 Encrypted data:") || l.starts_with("Shrouded Keybag:"))
        .collect();
    assert!(
        encryption.iter().any(|l| l.starts_with("Shrouded Keybag:")),
        "no shrouded key bag:\n{}",
        info.stderr
    );
    assert!(
        encryption
            .iter()
            .any(|l| l.starts_with("PKCS7 Encrypted data:")),
        "certificates must be encrypted too (as Windows exports them):\n{}",
        info.stderr
    );
    for line in &encryption {
        assert!(
            line.contains("pbeWithSHA1And3-KeyTripleDES-CBC"),
            "every bag must use 3DES for old Windows: {line}\n{}",
            info.stderr
        );
    }
}

#[test]
fn second_identical_repair_leaves_the_pfx_unchanged() {
    let pki = Pki::ecdsa();
    let env = TestEnv::new();
    pki.write(&env);
    let out = env.path("out");
    let pfx = out.join("iis/certificate.pfx");
    let pfx_key = path_str(&pfx).to_string();
    for flags in [
        &["--pfx-password-env", PFX_VAR][..],
        &["--pfx-password-env", PFX_VAR, "--pfx-legacy"][..],
    ] {
        let first = repair(&env, &out, flags);
        let before = fs::read(&pfx).expect("pfx written");
        let second = repair(&env, &out, flags);
        assert_eq!(
            file_actions(&second).get(&pfx_key).map(String::as_str),
            Some("unchanged"),
            "{flags:?}: first run {:?}, second run {:#}",
            file_actions(&first).get(&pfx_key),
            second
        );
        assert_eq!(
            fs::read(&pfx).expect("pfx"),
            before,
            "{flags:?}: pfx bytes rewritten"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// 5. install-chain.ps1
// ---------------------------------------------------------------------------------------------

/// Cmdlets present on Windows Server 2012 R2 (PowerShell 4.0, PKI module; the rest are in
/// Microsoft.PowerShell.Management and .Utility since PowerShell 2.0).
const PS4_CMDLETS: [&str; 16] = [
    "Import-Certificate",
    "Import-PfxCertificate",
    "Test-Path",
    "Join-Path",
    "Split-Path",
    "Read-Host",
    "Write-Host",
    "Write-Warning",
    "Write-Error",
    "Out-Null",
    "New-Object",
    "Get-Item",
    "Get-Service",
    "Restart-Service",
    "ForEach-Object",
    "Where-Object",
];

/// The script split into code (outside strings and comments) and the text of its string
/// literals. A small PowerShell lexer: `#` and `<# #>` comments, '...' ('' escapes) and
/// "..." (backtick escapes) strings.
fn split_powershell(script: &str) -> (String, String) {
    let chars: Vec<char> = script.chars().collect();
    let (mut code, mut strings) = (String::new(), String::new());
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '<' && chars.get(i + 1) == Some(&'#') {
            while i < chars.len() && !(chars[i] == '#' && chars.get(i + 1) == Some(&'>')) {
                i += 1;
            }
            i += 2;
            code.push(' ');
        } else if c == '#' {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '\'' {
            i += 1;
            while i < chars.len() {
                if chars[i] == '\'' {
                    if chars.get(i + 1) == Some(&'\'') {
                        strings.push('\'');
                        i += 2;
                        continue;
                    }
                    break;
                }
                strings.push(chars[i]);
                i += 1;
            }
            i += 1;
            strings.push('\n');
            code.push_str(" '' ");
        } else if c == '"' {
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                if chars[i] == '`' {
                    i += 1;
                }
                if let Some(&ch) = chars.get(i) {
                    strings.push(ch);
                }
                i += 1;
            }
            i += 1;
            strings.push('\n');
            code.push_str(" \"\" ");
        } else {
            code.push(c);
            i += 1;
        }
    }
    (code, strings)
}

/// Every `Verb-Noun` word in `code` (not parameters such as `-FilePath`, not variables).
fn verb_noun_words(code: &str) -> BTreeSet<String> {
    let mut words = BTreeSet::new();
    let chars: Vec<char> = code.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let starts_word = chars[i].is_ascii_alphabetic()
            && (i == 0
                || !(chars[i - 1].is_ascii_alphanumeric() || "-$_.:\\".contains(chars[i - 1])));
        if !starts_word {
            i += 1;
            continue;
        }
        let start = i;
        while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '-') {
            i += 1;
        }
        let word: String = chars[start..i].iter().collect();
        let parts: Vec<&str> = word.split('-').collect();
        if parts.len() == 2 && parts.iter().all(|p| !p.is_empty()) {
            words.insert(word);
        }
    }
    words
}

fn check_install_script(script: &str) {
    let (code, strings) = split_powershell(script);
    let defined: BTreeSet<String> = code
        .lines()
        .filter_map(|l| l.trim().strip_prefix("function "))
        .filter_map(|rest| rest.split(['(', ' ', '{']).next())
        .map(str::to_string)
        .collect();
    for word in verb_noun_words(&code) {
        assert!(
            PS4_CMDLETS.contains(&word.as_str()) || defined.contains(&word),
            "install-chain.ps1 calls {word}, which is not a PowerShell 4.0 cmdlet on the allowlist \
             {PS4_CMDLETS:?} nor a function the script defines ({defined:?}):\n{script}"
        );
    }
    assert!(
        !code.contains("Enable-ExchangeCertificate"),
        "Enable-ExchangeCertificate needs the Exchange Management Shell: it may only be printed:\n{script}"
    );
    assert!(
        strings.contains("Enable-ExchangeCertificate -Thumbprint"),
        "the script must print the Exchange command:\n{script}"
    );
    assert!(
        script.starts_with("\u{feff}#Requires -Version 4.0\n"),
        "the script must start with a UTF-8 byte order mark (Windows PowerShell 5.1 reads a \
         file without one in the ANSI code page) and declare PowerShell 4.0:\n{script}"
    );
}

#[test]
fn powershell_checker_finds_commands_only_outside_strings_and_comments() {
    let sample = "# Remove-Item in a comment\n<# Stop-Computer\n in a block #>\n\
                  Get-ChildItem -Path 'Cert:\\LocalMachine\\CA' | Out-Null\n\
                  Write-Host \"  Enable-ExchangeCertificate -Services SMTP `\"quoted`\"\"\n\
                  Write-Host 'it''s Set-Content in a string'\n\
                  $x = Join-Path $here 'a.cer' # trailing Remove-Item\n";
    let (code, strings) = split_powershell(sample);
    let words: Vec<String> = verb_noun_words(&code).into_iter().collect();
    assert_eq!(
        words,
        ["Get-ChildItem", "Join-Path", "Out-Null", "Write-Host"],
        "code seen: {code}"
    );
    assert!(strings.contains("Enable-ExchangeCertificate -Services SMTP \"quoted\""));
    assert!(strings.contains("it's Set-Content in a string"));
}

#[test]
fn install_script_matches_snapshot() {
    let pki = Pki::rsa();
    let env = TestEnv::new();
    pki.write(&env);
    let out = env.path("out");
    repair(&env, &out, &["--pfx-password-env", PFX_VAR]);
    let script = fs::read_to_string(out.join("iis/install-chain.ps1")).expect("install-chain.ps1");
    let snapshot = repo_path("testdata/snapshots/install-chain.ps1");
    if std::env::var("UPDATE_SNAPSHOTS").as_deref() == Ok("1") {
        fs::create_dir_all(snapshot.parent().expect("snapshot dir")).expect("mkdir snapshots");
        fs::write(&snapshot, &script).expect("writing snapshot");
        eprintln!("updated {}", snapshot.display());
        return;
    }
    let expected = fs::read_to_string(&snapshot).unwrap_or_else(|e| {
        panic!(
            "snapshot {} is missing ({e}); create it with UPDATE_SNAPSHOTS=1 cargo test --test mta install_script_matches_snapshot",
            snapshot.display()
        )
    });
    if script != expected {
        let first_diff = script
            .lines()
            .zip(expected.lines())
            .position(|(a, b)| a != b)
            .unwrap_or_else(|| script.lines().count().min(expected.lines().count()));
        panic!(
            "install-chain.ps1 differs from {} at line {}:\n  got:      {:?}\n  expected: {:?}\n\
             (UPDATE_SNAPSHOTS=1 rewrites the snapshot after a deliberate change)\n--- got ---\n{script}",
            snapshot.display(),
            first_diff + 1,
            script.lines().nth(first_diff),
            expected.lines().nth(first_diff)
        );
    }
}

#[test]
fn install_script_uses_only_powershell_4_cmdlets_in_every_variant() {
    let pki = Pki::two_intermediates();
    let env = TestEnv::new();
    pki.write(&env);
    let variants: [&[&str]; 3] = [
        &[],
        &["--pfx-password-env", PFX_VAR],
        &["--pfx-password-env", PFX_VAR, "--trust-private-root"],
    ];
    for (i, flags) in variants.iter().enumerate() {
        let out = env.path(&format!("out-{i}"));
        repair(&env, &out, flags);
        let script =
            fs::read_to_string(out.join("iis/install-chain.ps1")).expect("install-chain.ps1");
        check_install_script(&script);
        // Every file the script names is next to it.
        for name in script.split('\'').filter(|s| {
            (s.ends_with(".cer") || s.ends_with(".pfx")) && !s.contains(char::is_whitespace)
        }) {
            assert!(
                out.join("iis").join(name).is_file(),
                "{flags:?}: the script uses {name}, which was not written"
            );
        }
    }
}

/// The statements of `script` between `start` (a line beginning with it) and the next line
/// at the same indentation that begins with `}`: one `if`/`else` block.
fn block<'a>(script: &'a str, start: &str) -> &'a str {
    let at = script
        .find(&format!("\n{start}"))
        .unwrap_or_else(|| panic!("no line starts with {start:?}:\n{script}"));
    let rest = &script[at + 1..];
    let end = rest.find("\n}").map_or(rest.len(), |e| e + 2);
    &rest[..end]
}

#[test]
fn install_script_tells_a_missing_key_an_untrusted_root_and_revocation_apart_and_restarts_on_request(
) {
    // PowerShell cannot run here; these are the script's decisions as a Windows admin reading
    // it would check them, made on its code (outside strings and comments).
    let pki = Pki::two_intermediates();
    let env = TestEnv::new();
    pki.write(&env);
    for (i, flags) in [&[][..], &["--pfx-password-env", PFX_VAR][..]]
        .iter()
        .enumerate()
    {
        let out = env.path(&format!("out-{i}"));
        repair(&env, &out, flags);
        let script =
            fs::read_to_string(out.join("iis/install-chain.ps1")).expect("install-chain.ps1");
        let (code, _) = split_powershell(&script);
        // param() must be the first statement, or PowerShell rejects the script.
        let first = code
            .lines()
            .map(|l| l.trim_matches(|c: char| c.is_whitespace() || c == '\u{feff}'))
            .find(|l| !l.is_empty())
            .expect("code");
        assert_eq!(first, "param([switch]$RestartServices)", "{script}");

        // "Already installed" is said only where the key was checked: right after the
        // condition that tests HasPrivateKey (its `if`, or the `else` that follows its
        // `elseif (-not ...HasPrivateKey)`).
        let claims: Vec<usize> = script
            .match_indices("its private key are already")
            .map(|(at, _)| at)
            .collect();
        assert!(!claims.is_empty(), "{script}");
        for at in claims {
            let before = &script[..at];
            let condition = &before[before.rfind("if (").expect("a condition")..];
            assert!(
                condition.contains("HasPrivateKey"),
                "{flags:?}: claims the key without checking HasPrivateKey:\n{script}"
            );
        }
        assert!(code.contains("$keyReady = [bool]($leafInStore -and $leafInStore.HasPrivateKey)"));
        let last_exit = block(&script, "if (-not $keyReady)");
        assert!(last_exit.contains("exit 1"), "{last_exit}");
        if flags.is_empty() {
            let no_key = block(&script, "} elseif (-not $leafInStore.HasPrivateKey)");
            assert!(no_key.contains("Write-Warning") && no_key.contains("without its private key"));
        } else {
            assert!(code.contains("Import-PfxCertificate"));
        }

        // The chain is built without revocation first: an untrusted private root is a
        // warning that names the receivers, a missing intermediate an error; revocation is
        // checked on its own and a failure to check it is a warning.
        assert!(
            !code.contains("certutil"),
            "certutil -verify blames revocation for everything"
        );
        assert!(script.contains("$chain.ChainPolicy.RevocationMode = 'NoCheck'"));
        let untrusted = block(&script, "} elseif ($problems -contains 'UntrustedRoot')");
        assert!(
            untrusted.contains("Write-Warning") && !untrusted.contains("$failed = $true"),
            "{untrusted}"
        );
        let partial = block(&script, "if ($problems -contains 'PartialChain')");
        assert!(partial.contains("$failed = $true"), "{partial}");
        assert!(script.contains("$online.ChainPolicy.RevocationMode = 'Online'"));
        assert!(script.contains("'RevocationStatusUnknown'") && script.contains("'Revoked'"));
        let root_tp = thumbprint_of(&{
            let p = env.path(&format!("root-{i}.der"));
            fs::write(&p, &pki.root.der).expect("root der");
            p
        });
        assert!(
            script.contains(&format!("$rootThumbprint = '{root_tp}'")),
            "{script}"
        );

        // The services: Exchange's transport and IIS SMTP, restarted only on request.
        for service in [
            "'MSExchangeTransport'",
            "'MSExchangeFrontEndTransport'",
            "'SMTPSVC'",
        ] {
            assert!(script.contains(service), "{service}");
        }
        let restart = block(&script, "    if ($RestartServices)");
        assert!(restart.contains("Restart-Service -Name $name"), "{restart}");
        assert!(script.contains("whose subject name matches the fully-qualified domain name"));
        let failed = block(&script, "if ($failed)");
        assert!(failed.contains("exit 1") && !failed.contains("Restart-Service"));
    }
}

/// SHA-1 thumbprint of a DER file as Windows shows it (upper-case hex, no colons).
fn thumbprint_of(der_file: &Path) -> String {
    let o = run(Command::new("openssl")
        .args([
            "x509",
            "-inform",
            "DER",
            "-noout",
            "-fingerprint",
            "-sha1",
            "-in",
        ])
        .arg(der_file));
    o.assert_status(0);
    o.stdout
        .trim()
        .rsplit('=')
        .next()
        .expect("fingerprint")
        .replace(':', "")
        .to_uppercase()
}

#[test]
fn iis_files_hold_the_chain_in_order_and_the_script_names_their_thumbprints() {
    let pki = Pki::two_intermediates();
    let env = TestEnv::new();
    pki.write(&env);
    let out = env.path("out");
    repair(&env, &out, &["--pfx-password-env", PFX_VAR]);
    let iis = out.join("iis");
    let script = fs::read_to_string(iis.join("install-chain.ps1")).expect("install-chain.ps1");

    // One .cer per intermediate, leaf's issuer first, each installed under its own thumbprint.
    let installs: Vec<(String, String)> = script
        .lines()
        .filter_map(|l| l.strip_prefix("Install-Cert "))
        .map(|rest| {
            let quoted: Vec<&str> = rest.split('\'').skip(1).step_by(2).collect();
            (quoted[0].to_string(), quoted[1].to_string())
        })
        .collect();
    assert_eq!(installs.len(), pki.ints.len(), "{script}");
    for ((file, thumbprint), int) in installs.iter().zip(&pki.ints) {
        let der = fs::read(iis.join(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert!(der == int.der, "{file} must be {} (DER)", int.spec.cn);
        assert_eq!(thumbprint, &thumbprint_of(&iis.join(file)), "{file}");
    }
    let leaf_der = fs::read(iis.join("leaf.cer")).expect("leaf.cer");
    assert!(leaf_der == pki.leaf.der, "leaf.cer must be the leaf (DER)");
    let leaf_tp = thumbprint_of(&iis.join("leaf.cer"));
    assert!(
        script.contains(&format!("$leafThumbprint = '{leaf_tp}'")),
        "the script must name the leaf's thumbprint {leaf_tp}:\n{script}"
    );

    // chain.p7b: leaf then intermediates, no root.
    let p7b = run(Command::new("openssl")
        .args(["pkcs7", "-inform", "DER", "-print_certs", "-in"])
        .arg(iis.join("chain.p7b")));
    p7b.assert_status(0);
    let certs = mta::pem_certificates(&p7b.stdout);
    assert_eq!(
        certs,
        pki.served(),
        "chain.p7b order: {:?}",
        describe(&certs, &pki)
    );
}

// ---------------------------------------------------------------------------------------------
// 6. Idempotency across every target
// ---------------------------------------------------------------------------------------------

/// Every regular file under `dir`: path -> (mtime, mode, gid, bytes).
fn snapshot_dir(dir: &Path) -> BTreeMap<PathBuf, (SystemTime, u32, u32, Vec<u8>)> {
    let mut files = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in fs::read_dir(&d).unwrap_or_else(|e| panic!("{}: {e}", d.display())) {
            let path = entry.expect("dir entry").path();
            let meta = fs::symlink_metadata(&path).expect("stat");
            if meta.is_dir() {
                stack.push(path);
            } else {
                let bytes = fs::read(&path).expect("read");
                files.insert(
                    path,
                    (
                        meta.modified().expect("mtime"),
                        meta.mode() & 0o7777,
                        meta.gid(),
                        bytes,
                    ),
                );
            }
        }
    }
    files
}

#[test]
fn second_identical_repair_changes_nothing_in_any_target() {
    let pki = Pki::two_intermediates();
    let env = TestEnv::new();
    pki.write(&env);
    let variants: [&[&str]; 3] = [
        &["--pfx-password-env", PFX_VAR],
        &[
            "--pfx-password-env",
            PFX_VAR,
            "--pfx-legacy",
            "--postfix-single-file",
        ],
        &[
            "--pfx-password-env",
            PFX_VAR,
            "--postfix-legacy",
            "--trust-private-root",
        ],
    ];
    for (i, flags) in variants.iter().enumerate() {
        let out = env.path(&format!("out-{i}"));
        let first = repair(&env, &out, flags);
        let created = file_actions(&first);
        assert!(
            created.values().all(|a| a == "created"),
            "{flags:?}: first run must create every file: {created:#?}"
        );
        for must in [
            "README.txt",
            "postfix/main.cf",
            "exim/main.conf",
            "exim/transport.conf",
            "exim/debian-macros.conf",
            "exim/privkey.pem",
            "iis/certificate.pfx",
            "iis/install-chain.ps1",
            "iis/chain.p7b",
            "iis/leaf.cer",
        ] {
            let p = path_str(&out.join(must)).to_string();
            assert!(
                created.contains_key(&p),
                "{flags:?}: {p} not reported: {created:#?}"
            );
        }
        // Back-date every file so any rewrite shows, whatever the filesystem's time granularity.
        let old = UNIX_EPOCH + Duration::from_secs(1_500_000_000);
        for path in snapshot_dir(&out).keys() {
            fs::File::open(path)
                .and_then(|f| f.set_modified(old))
                .unwrap_or_else(|e| panic!("set mtime of {}: {e}", path.display()));
        }
        let before = snapshot_dir(&out);
        assert_eq!(
            before.len(),
            created.len(),
            "{flags:?}: files on disk vs reported: {:#?} vs {created:#?}",
            before.keys().collect::<Vec<_>>()
        );

        let second = repair(&env, &out, flags);
        let actions = file_actions(&second);
        assert_eq!(
            actions.keys().collect::<Vec<_>>(),
            created.keys().collect::<Vec<_>>(),
            "{flags:?}: same files reported"
        );
        let touched: Vec<(&String, &String)> =
            actions.iter().filter(|(_, a)| *a != "unchanged").collect();
        assert!(
            touched.is_empty(),
            "{flags:?}: a second identical run must leave every file unchanged: {touched:#?}"
        );
        assert_eq!(
            second["results"][0]["changed"],
            Value::Bool(false),
            "{flags:?}: {second:#}"
        );
        let after = snapshot_dir(&out);
        for (path, (mtime, mode, gid, bytes)) in &before {
            let (mtime2, mode2, gid2, bytes2) = after
                .get(path)
                .unwrap_or_else(|| panic!("{} vanished", path.display()));
            assert_eq!(mtime2, mtime, "{flags:?}: {} was rewritten", path.display());
            assert_eq!(mode2, mode, "{flags:?}: mode of {}", path.display());
            assert_eq!(gid2, gid, "{flags:?}: group of {}", path.display());
            assert!(bytes2 == bytes, "{flags:?}: {} changed", path.display());
        }
        assert_eq!(after.len(), before.len(), "{flags:?}: files added");
    }
}
