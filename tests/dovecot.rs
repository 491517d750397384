//! `inspect --dovecot` / `repair --dovecot` against a real Dovecot 2.3 (Debian 12's) on
//! loopback: the configuration read through `doveconf`, the one line that sets a leaf-only
//! certificate rewritten (in an `!include`d file), `doveadm reload`, and the proof over IMAP
//! STARTTLS, IMAP with TLS at once and POP3 STLS, confirmed by `openssl s_client` trusting only
//! the test root. Also `probe --starttls imap|pop3` against the same server.

mod common;

use std::path::{Path, PathBuf};

use common::dovecot::{self, Dovecot};
use common::{mta, run, Chain, Output, TestEnv};
use serde_json::Value;

/// Inside the test PKI's validity (2024..2034).
const AT: &str = "2026-11-22T00:00:00Z";
/// Pinned time, offline, trusting only the test root (`root.pem`).
const TRUST: [&str; 6] = [
    "--at",
    AT,
    "--offline",
    "--no-default-roots",
    "--roots",
    "root.pem",
];

fn p(path: &Path) -> String {
    path.display().to_string()
}

/// The test root, the intermediate in `pool/` for chainfix, and the key, the leaf alone and
/// the full chain in `tls/`; the key's and the leaf's paths.
fn files(env: &TestEnv, chain: &Chain) -> (PathBuf, PathBuf) {
    mta::share_dir(env.dir.path());
    env.write("root.pem", &chain.root.pem);
    env.write("pool/int.pem", &chain.int.pem);
    env.write(
        "tls/full.pem",
        format!("{}{}", chain.leaf.pem, chain.int.pem),
    );
    let key = env.write("tls/key.pem", &chain.leaf.key_pem);
    let leaf = env.write("tls/leaf.pem", &chain.leaf.pem);
    (key, leaf)
}

/// `chainfix SUBCOMMAND --dovecot CONF --doveconf-bin ... TRUST --intermediates pool EXTRA`.
fn chainfix(env: &TestEnv, d: &Dovecot, sub: &str, extra: &[&str]) -> Output {
    run(env
        .cmd()
        .args([sub, "--dovecot", &p(&d.conf), "--doveconf-bin"])
        .arg(dovecot::DOVECONF_BIN)
        .args(TRUST)
        .args(["--intermediates", "pool"])
        .args(extra))
}

/// The certificates `openssl s_client` is sent at `port` (STARTTLS of `starttls`, or TLS at
/// once), asserting that it verifies them against the test root alone when `verify`.
fn served(env: &TestEnv, port: u16, starttls: Option<&str>, extra: &[&str]) -> (bool, usize) {
    let mut args = vec!["-showcerts"];
    args.extend(extra);
    let out = dovecot::s_client(port, starttls, &env.path("root.pem"), &args);
    let certs = mta::pem_certificates(&out.stdout);
    assert!(!certs.is_empty(), "{}\n{}", out.stdout, out.stderr);
    (
        out.stdout.contains("Verify return code: 0 (ok)"),
        certs.len(),
    )
}

/// What a verifying client (`-verify_return_error`, the test root alone) gets: the number of
/// certificates, after asserting the chain verifies.
fn verified(env: &TestEnv, port: u16, starttls: Option<&str>, extra: &[&str]) -> usize {
    let mut args = vec!["-verify_return_error"];
    args.extend(extra);
    let (ok, n) = served(env, port, starttls, &args);
    assert!(ok, "openssl does not verify what port {port} serves");
    n
}

fn slots(doc: &Value) -> Vec<Value> {
    doc["deployment"]["slots"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

#[test]
#[cfg_attr(
    not(have_dovecot),
    ignore = "needs Dovecot: .ci/setup-mtas.sh, as root"
)]
fn dovecot_leaf_only_is_repaired_in_its_include_reloaded_proven_on_143_993_110_995() {
    let chain = Chain::new(&[]);
    let env = TestEnv::new();
    let (key, leaf) = files(&env, &chain);
    let tls = format!(
        "# TLS of the test\nssl_cert = <{}\nssl_key = <{}\n",
        p(&leaf),
        p(&key)
    );
    let d = Dovecot::start(&env.path("dv"), &tls, Some("conf.d/10-ssl.conf"));
    let include = env.path("dv/conf.d/10-ssl.conf");
    let out = env.path("out");
    assert_eq!(served(&env, d.imap, Some("imap"), &[]), (false, 1));

    // Discovery: one slot, the leaf alone, named at its line in the included file.
    let inspect = chainfix(&env, &d, "inspect", &["--json"]);
    inspect.assert_status(1);
    let doc = inspect.json();
    assert_eq!(doc["deployment"]["mta"], "dovecot", "{doc:#}");
    let s = slots(&doc);
    assert_eq!(s.len(), 1, "{doc:#}");
    assert_eq!(s[0]["status"], "repairable", "{doc:#}");
    assert_eq!(
        s[0]["settings"][0],
        format!("{} line 2: ssl_cert", p(&include)),
        "{doc:#}"
    );
    let services = s[0]["services"].to_string();
    for l in [
        "imap on 127.0.0.1",
        "imaps on 127.0.0.1",
        "pop3 on 127.0.0.1",
        "pop3s on 127.0.0.1",
    ] {
        assert!(services.contains(l), "{services}");
    }

    // --check: the one line as a diff, nothing changed.
    let conf_before = std::fs::read(&d.conf).expect("conf");
    let include_before = std::fs::read_to_string(&include).expect("include");
    let check = chainfix(&env, &d, "repair", &["--out", &p(&out), "--check"]);
    check.assert_status(0);
    let new_chain = out.join("server-dovecot/fullchain.pem");
    assert!(
        check.stdout.contains(&format!("-ssl_cert = <{}", p(&leaf)))
            && check
                .stdout
                .contains(&format!("+ssl_cert = <{}", p(&new_chain))),
        "{}\n{}",
        check.stdout,
        check.stderr
    );
    assert!(!out.exists());
    assert_eq!(
        std::fs::read_to_string(&include).expect("include"),
        include_before
    );

    // Repair, reload, prove every listener.
    let fixed = chainfix(&env, &d, "repair", &["--out", &p(&out), "--reload"]);
    fixed.assert_status(0);
    assert!(
        fixed
            .stdout
            .contains("every listener proven to serve the new chain"),
        "{}\n{}",
        fixed.stdout,
        fixed.stderr
    );
    for port in [d.imap, d.imaps, d.pop3, d.pop3s] {
        assert!(
            fixed
                .stdout
                .contains(&format!("127.0.0.1:{port}: serves the new chain")),
            "{port}: {}",
            fixed.stdout
        );
    }
    // Only that line changed; the main file is untouched.
    assert_eq!(std::fs::read(&d.conf).expect("conf"), conf_before);
    assert_eq!(
        std::fs::read_to_string(&include).expect("include"),
        include_before.replace(
            &format!("ssl_cert = <{}", p(&leaf)),
            &format!("ssl_cert = <{}", p(&new_chain))
        )
    );
    // Dovecot itself names the new file, and an independent client verifies the whole chain
    // on IMAP STARTTLS, IMAP with TLS at once and POP3 STLS.
    let now = d.doveconf(&["-h", "ssl_cert"]);
    assert_eq!(now.stdout.trim(), format!("<{}", p(&new_chain)));
    for _ in 0..3 {
        assert_eq!(verified(&env, d.imap, Some("imap"), &[]), 2);
    }
    assert_eq!(verified(&env, d.imaps, None, &[]), 2);
    assert_eq!(verified(&env, d.pop3, Some("pop3"), &[]), 2);
    assert_eq!(verified(&env, d.pop3s, None, &[]), 2);

    // A second run changes nothing.
    let again = chainfix(&env, &d, "repair", &["--out", &p(&out), "--reload"]);
    again.assert_status(0);
    assert!(
        again.stdout.contains("Nothing to change."),
        "{}",
        again.stdout
    );
    assert_eq!(
        std::fs::read_to_string(&include).expect("include"),
        include_before.replace(
            &format!("ssl_cert = <{}", p(&leaf)),
            &format!("ssl_cert = <{}", p(&new_chain))
        )
    );
}

#[test]
#[cfg_attr(
    not(have_dovecot),
    ignore = "needs Dovecot: .ci/setup-mtas.sh, as root"
)]
fn dovecot_local_name_block_is_a_slot_of_its_own_repaired_and_proven_with_sni() {
    let chain = Chain::new(&[]);
    let env = TestEnv::new();
    let (key, leaf) = files(&env, &chain);
    let full = env.path("tls/full.pem");
    let name = "mail.example.test";
    let tls = format!(
        "ssl_cert = <{full}\nssl_key = <{key}\nlocal_name {name} {{\n  ssl_cert = <{leaf}\n  \
         ssl_key = <{key}\n}}\n",
        full = p(&full),
        key = p(&key),
        leaf = p(&leaf)
    );
    let d = Dovecot::start(&env.path("dv"), &tls, None);
    let sni = ["-servername", name];
    assert_eq!(served(&env, d.imap, Some("imap"), &sni), (false, 1));
    assert_eq!(verified(&env, d.imap, Some("imap"), &[]), 2);

    let inspect = chainfix(&env, &d, "inspect", &["--json"]);
    inspect.assert_status(1);
    let doc = inspect.json();
    let s = slots(&doc);
    assert_eq!(s.len(), 2, "{doc:#}");
    let global = s.iter().find(|s| s["sni"].is_null()).expect("global slot");
    let named = s
        .iter()
        .find(|s| s["sni"] == name)
        .expect("local_name slot");
    assert_eq!(global["status"], "ok", "{doc:#}");
    assert_eq!(named["status"], "repairable", "{doc:#}");
    assert!(
        named["settings"][0]
            .as_str()
            .is_some_and(|t| t.ends_with(&format!("local_name {name} {{ ssl_cert }}"))),
        "{doc:#}"
    );

    let out = env.path("out");
    let fixed = chainfix(&env, &d, "repair", &["--out", &p(&out), "--reload"]);
    fixed.assert_status(0);
    assert!(
        fixed.stdout.contains(&format!(
            "127.0.0.1:{} (SNI {name}): serves the new chain",
            d.imaps
        )),
        "{}\n{}",
        fixed.stdout,
        fixed.stderr
    );
    let new_chain = out.join(format!("server-sni-{name}/fullchain.pem"));
    let conf = std::fs::read_to_string(&d.conf).expect("conf");
    assert!(
        conf.contains(&format!("  ssl_cert = <{}\n", p(&new_chain)))
            && conf.contains(&format!("ssl_cert = <{}\n", p(&full))),
        "{conf}"
    );
    assert_eq!(verified(&env, d.imap, Some("imap"), &sni), 2);
    assert_eq!(verified(&env, d.imaps, None, &sni), 2);
}

#[test]
#[cfg_attr(
    not(have_dovecot),
    ignore = "needs Dovecot: .ci/setup-mtas.sh, as root"
)]
fn dovecot_repair_whose_proof_fails_is_undone_and_the_old_chain_is_served_again() {
    let chain = Chain::new(&[]);
    let env = TestEnv::new();
    let (key, leaf) = files(&env, &chain);
    // A listener of the same slot behind which Dovecot expects a HAProxy header from trusted
    // networks only (none are): it closes every connection, so it can never be proven.
    let proxied = mta::free_port();
    let tls = format!(
        "ssl_cert = <{}\nssl_key = <{}\nservice imap-login {{\n  inet_listener imapproxy {{\n    \
         port = {proxied}\n    haproxy = yes\n  }}\n}}\n",
        p(&leaf),
        p(&key)
    );
    let d = Dovecot::start(&env.path("dv"), &tls, None);
    let conf_before = std::fs::read(&d.conf).expect("conf");
    let out = env.path("out");
    let started = std::time::Instant::now();
    let failed = chainfix(
        &env,
        &d,
        "repair",
        &["--out", &p(&out), "--reload", "--reload-deadline", "5"],
    );
    failed.assert_status(2);
    assert!(started.elapsed().as_secs() < 60, "the deadline is kept");
    assert!(
        failed
            .stderr
            .contains(&format!("127.0.0.1:{proxied} did not serve the new chain"))
            && failed
                .stderr
                .contains("every change was undone and Dovecot reloaded"),
        "{}\n{}",
        failed.stdout,
        failed.stderr
    );
    assert!(failed.stdout.contains("NOT PROVEN"), "{}", failed.stdout);
    assert_eq!(std::fs::read(&d.conf).expect("conf"), conf_before);
    assert!(!out.join("server-dovecot/fullchain.pem").exists());
    for _ in 0..3 {
        assert_eq!(served(&env, d.imap, Some("imap"), &[]), (false, 1));
    }
}

#[test]
#[cfg_attr(
    not(have_dovecot),
    ignore = "needs Dovecot: .ci/setup-mtas.sh, as root"
)]
fn probe_speaks_imap_starttls_pop3_stls_and_implicit_tls_to_real_dovecot() {
    let chain = Chain::new(&[]);
    let env = TestEnv::new();
    let (key, _) = files(&env, &chain);
    let tls = format!(
        "ssl_cert = <{}\nssl_key = <{}\n",
        p(&env.path("tls/full.pem")),
        p(&key)
    );
    let d = Dovecot::start(&env.path("dv"), &tls, None);
    for (port, mode, starttls) in [
        (d.imap, "imap", true),
        (d.pop3, "pop3", true),
        (d.imaps, "none", false),
        (d.pop3s, "none", false),
    ] {
        let out = run(env
            .cmd()
            .args(["probe", &format!("127.0.0.1:{port}"), "--starttls", mode])
            .args(TRUST)
            .args(["--host", "mail.example.test", "--json"]));
        out.assert_status(0);
        let doc = out.json();
        let r = &doc["results"][0];
        assert_eq!(r["status"], "ok", "{doc:#}");
        assert_eq!(r["tls"]["starttls"], starttls, "{doc:#}");
        assert_eq!(r["presented"].as_array().map(Vec::len), Some(2), "{doc:#}");
    }
    // SMTP spoken to an IMAP server is a protocol error, not a hang.
    let out = run(env
        .cmd()
        .args([
            "probe",
            &format!("127.0.0.1:{}", d.imap),
            "--starttls",
            "smtp",
        ])
        .args(TRUST)
        .args(["--brief", "--timeout", "5"]));
    assert!(
        out.stdout.contains("smtp-protocol-error"),
        "{}\n{}",
        out.stdout,
        out.stderr
    );
}

#[test]
#[cfg_attr(
    not(have_dovecot),
    ignore = "needs Dovecot: .ci/setup-mtas.sh, as root"
)]
fn dovecot_certificate_named_through_a_variable_is_refused_and_nothing_changes() {
    let chain = Chain::new(&[]);
    let env = TestEnv::new();
    let (key, _) = files(&env, &chain);
    // doveconf shows `$ssl_client_ca_dir` unexpanded: which file Dovecot loads is not known.
    let tls = format!(
        "ssl_client_ca_dir = {}\nssl_cert = <$ssl_client_ca_dir/leaf.pem\nssl_key = <{}\n",
        p(&env.path("tls")),
        p(&key)
    );
    let d = Dovecot::configure(&env.path("dv"), &tls, None);
    let conf_before = std::fs::read(&d.conf).expect("conf");
    let out = env.path("out");
    let refused = chainfix(&env, &d, "repair", &["--out", &p(&out)]);
    refused.assert_status(2);
    assert!(
        refused
            .stderr
            .contains("ssl_cert: the value uses a $variable, which doveconf shows unexpanded"),
        "{}\n{}",
        refused.stdout,
        refused.stderr
    );
    assert_eq!(std::fs::read(&d.conf).expect("conf"), conf_before);
    assert!(!out.exists());
}

/// `chainfix SUBCOMMAND --dovecot CONF TRUST --intermediates pool EXTRA` run inside
/// `d`'s tree (Dovecot 2.4 in Debian 13's), with every path as Dovecot sees it.
fn chainfix_inside(env: &TestEnv, d: &Dovecot, sub: &str, extra: &[&str]) -> Output {
    let inner = |rel: &str| p(&d.release.inner(&env.path(rel)));
    let trust = [
        "--at",
        AT,
        "--offline",
        "--no-default-roots",
        "--roots",
        &inner("root.pem"),
    ];
    run(d
        .release
        .chainfix()
        .env("XDG_CACHE_HOME", inner("cache"))
        .args([sub, "--dovecot", &p(&d.conf_inner())])
        .args(trust)
        .args(["--intermediates", &inner("pool")])
        .args(extra))
}

#[test]
#[cfg_attr(
    not(have_dovecot24),
    ignore = "needs Dovecot 2.4: .ci/setup-dovecot24.sh, as root"
)]
fn dovecot24_flat_and_grouped_settings_are_repaired_in_their_own_spelling_reloaded_and_proven() {
    let release = dovecot::Release::dovecot24();
    let env = TestEnv {
        dir: release.test_dir(),
    };
    let chain = Chain::new(&[]);
    files(&env, &chain);
    let inner = |rel: &str| p(&release.inner(&env.path(rel)));
    let (leaf, key) = (inner("tls/leaf.pem"), inner("tls/key.pem"));
    let name = "mx.example.test";
    // As Debian 13's conf.d/10-ssl.conf spells them, and as doveconf prints them back.
    let tls = format!(
        "ssl_server_cert_file = {leaf}\nssl_server_key_file = {key}\n\
         local_name {name} {{\n  ssl_server {{\n    cert_file = {leaf}\n    \
         key_file = {key}\n  }}\n}}\n"
    );
    let d = Dovecot::start_release(
        release.clone(),
        &env.path("dv"),
        &tls,
        Some("conf.d/10-ssl.conf"),
    );
    let include = env.path("dv/conf.d/10-ssl.conf");
    let sni = ["-servername", name];
    assert_eq!(served(&env, d.imap, Some("imap"), &[]), (false, 1));
    assert_eq!(served(&env, d.imaps, None, &sni), (false, 1));

    // Discovery: both slots, each named at its line, whichever its spelling.
    let inspect = chainfix_inside(&env, &d, "inspect", &["--json"]);
    inspect.assert_status(1);
    let doc = inspect.json();
    let s = slots(&doc);
    assert_eq!(s.len(), 2, "{doc:#}");
    let include_inner = p(&release.inner(&include));
    assert_eq!(
        s[0]["settings"][0],
        format!("{include_inner} line 1: ssl_server_cert_file"),
        "{doc:#}"
    );
    assert_eq!(
        s[1]["settings"][0],
        format!("{include_inner} line 5: local_name {name} {{ ssl_server_cert_file }}"),
        "{doc:#}"
    );
    assert!(s.iter().all(|s| s["status"] == "repairable"), "{doc:#}");

    // Repair, reload with doveadm, prove every listener with and without the SNI name.
    let out = inner("out");
    let include_before = std::fs::read_to_string(&include).expect("include");
    let conf_before = std::fs::read(&d.conf).expect("conf");
    let fixed = chainfix_inside(&env, &d, "repair", &["--out", &out, "--reload"]);
    fixed.assert_status(0);
    assert!(
        fixed
            .stdout
            .contains("every listener proven to serve the new chain"),
        "{}\n{}",
        fixed.stdout,
        fixed.stderr
    );
    for port in [d.imap, d.imaps, d.pop3, d.pop3s] {
        for label in [format!("{port}"), format!("{port} (SNI {name})")] {
            assert!(
                fixed
                    .stdout
                    .contains(&format!("127.0.0.1:{label}: serves the new chain")),
                "{label}: {}",
                fixed.stdout
            );
        }
    }
    // Each line keeps its spelling; nothing else changes.
    let global = format!("{out}/server-dovecot/fullchain.pem");
    let named = format!("{out}/server-sni-{name}/fullchain.pem");
    let expected = include_before
        .replacen(
            &format!("ssl_server_cert_file = {leaf}"),
            &format!("ssl_server_cert_file = {global}"),
            1,
        )
        .replacen(
            &format!("    cert_file = {leaf}"),
            &format!("    cert_file = {named}"),
            1,
        );
    assert_ne!(expected, include_before);
    assert_eq!(
        std::fs::read_to_string(&include).expect("include"),
        expected
    );
    assert_eq!(std::fs::read(&d.conf).expect("conf"), conf_before);
    // An independent client, trusting the test root alone, verifies the whole chain.
    for _ in 0..3 {
        assert_eq!(verified(&env, d.imap, Some("imap"), &[]), 2);
    }
    assert_eq!(verified(&env, d.imaps, None, &[]), 2);
    assert_eq!(verified(&env, d.pop3, Some("pop3"), &sni), 2);
    assert_eq!(verified(&env, d.pop3s, None, &sni), 2);

    // A second run changes nothing.
    let again = chainfix_inside(&env, &d, "repair", &["--out", &out, "--reload"]);
    again.assert_status(0);
    assert!(
        again.stdout.contains("Nothing to change."),
        "{}",
        again.stdout
    );
    assert_eq!(
        std::fs::read_to_string(&include).expect("include"),
        expected
    );
}
