//! `inspect --postfix` / `inspect --exim`: chainfix reads what a deployed server loads through
//! the server's own tools (real `postconf`, real `exim -bP`/`-be`) and judges each slot (role,
//! listener, SNI name) on its own, naming the setting that points at its files.
//!
//! Discovery does not start the servers: `postconf -c DIR` and `exim -C FILE` read a
//! configuration without a running instance. The Postfix configurations are made by
//! tests/common/mta.rs (as the tests that start Postfix make them) and changed with
//! `postconf -e`/`-Me`/`-P -e`, as an admin would.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::mta::{self, Postfix};
use common::{run, Chain, Output, TestEnv};
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

/// certbot's layout: `live/NAME/*.pem` links into `archive/NAME/*1.pem`.
fn certbot_layout(env: &TestEnv, chain: &Chain) -> PathBuf {
    let archive = env.path("letsencrypt/archive/mail.example.test");
    let live = env.path("letsencrypt/live/mail.example.test");
    std::fs::create_dir_all(&archive).expect("archive");
    std::fs::create_dir_all(&live).expect("live");
    let files = [
        ("cert", chain.leaf.pem.clone()),
        ("chain", chain.int.pem.clone()),
        ("fullchain", format!("{}{}", chain.leaf.pem, chain.int.pem)),
        ("privkey", chain.leaf.key_pem.clone()),
    ];
    for (name, text) in files {
        std::fs::write(archive.join(format!("{name}1.pem")), text).expect("archive file");
        std::os::unix::fs::symlink(
            format!("../../archive/mail.example.test/{name}1.pem"),
            live.join(format!("{name}.pem")),
        )
        .expect("live link");
    }
    live
}

/// `chainfix inspect ARGS --json` trusting only the test root, offline.
fn inspect_json(env: &TestEnv, args: &[&str]) -> (Output, Value) {
    let out = run(env
        .cmd()
        .arg("inspect")
        .args(args)
        .args(["--json", "--at", AT, "--offline", "--no-default-roots"])
        .args(["--roots", "root.pem"]));
    let doc: Value = serde_json::from_str(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}):\n{}\n--- stderr ---\n{}",
            out.stdout, out.stderr
        )
    });
    (out, doc)
}

fn slots(doc: &Value) -> Vec<Value> {
    doc["deployment"]["slots"]
        .as_array()
        .cloned()
        .unwrap_or_else(|| panic!("no slots: {doc:#}"))
}

/// The slot whose settings mention `setting` (e.g. "master.cf submission/inet").
fn slot_named(doc: &Value, setting: &str) -> Value {
    slots(doc)
        .into_iter()
        .find(|s| {
            s["settings"].as_array().is_some_and(|a| {
                a.iter()
                    .any(|x| x.as_str().is_some_and(|x| x.contains(setting)))
            })
        })
        .unwrap_or_else(|| panic!("no slot named by {setting:?}: {doc:#}"))
}

/// The finding codes of a slot's leaf.
fn codes(slot: &Value) -> Vec<String> {
    slot["results"][0]["problems"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|p| p["code"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn postconf(pf: &Postfix, args: &[&str]) {
    let out = run(Command::new(mta::POSTCONF_BIN)
        .arg("-c")
        .arg(&pf.conf)
        .args(args));
    assert_eq!(out.status, 0, "postconf {args:?}: {}", out.stderr);
}

fn p(path: &Path) -> String {
    path.display().to_string()
}

#[test]
#[cfg_attr(
    not(have_postfix),
    ignore = "needs Postfix: .ci/setup-mtas.sh, as root"
)]
fn postfix_naming_certbots_cert_pem_is_reported_as_missing_intermediate_at_its_main_cf_line() {
    let chain = Chain::new(&[]);
    let env = TestEnv::new();
    mta::share_dir(env.dir.path());
    env.write("root.pem", &chain.root.pem);
    let live = certbot_layout(&env, &chain);
    let tls = format!(
        "smtpd_tls_cert_file = {}\nsmtpd_tls_key_file = {}\n",
        p(&live.join("cert.pem")),
        p(&live.join("privkey.pem"))
    );
    let pf = Postfix::configure(&env.path("pf"), &[], &tls);

    // The blind spot: given the directory, fullchain.pem is found and called fine.
    let (out, _) = inspect_json(&env, &[&p(&live)]);
    out.assert_status(0);

    let (out, doc) = inspect_json(&env, &["--postfix", &p(&pf.conf)]);
    out.assert_status(1);
    assert_eq!(doc["deployment"]["mta"], "postfix", "{doc:#}");
    let slot = slot_named(&doc, "main.cf: smtpd_tls_cert_file");
    assert_eq!(slot["role"], "server");
    assert_eq!(slot["files"][0], p(&live.join("cert.pem")), "{slot:#}");
    assert!(
        codes(&slot).contains(&"missing-intermediate".to_string()),
        "{slot:#}"
    );
    let advice = slot["advice"].to_string();
    assert!(advice.contains("fullchain.pem"), "{slot:#}");
    let receivers = slot["results"][0]["problems"].to_string();
    assert!(receivers.contains("4.4.317"), "{receivers}");

    // The human report names the slot and the config line.
    let human = run(env
        .cmd()
        .args([
            "inspect",
            "--postfix",
            &p(&pf.conf),
            "--at",
            AT,
            "--offline",
        ])
        .args(["--no-default-roots", "--roots", "root.pem"]));
    human.assert_status(1);
    assert!(
        human
            .stdout
            .contains("named by: main.cf: smtpd_tls_cert_file")
            && human.stdout.contains("missing-intermediate"),
        "{}",
        human.stdout
    );
}

#[test]
#[cfg_attr(
    not(have_postfix),
    ignore = "needs Postfix: .ci/setup-mtas.sh, as root"
)]
fn postfix_slots_per_listener_sni_name_and_client_role_each_name_their_setting() {
    let chain = Chain::new(&[]);
    let env = TestEnv::new();
    mta::share_dir(env.dir.path());
    env.write("root.pem", &chain.root.pem);
    let key = env.write("tls/key.pem", &chain.leaf.key_pem);
    let full = env.write(
        "tls/fullchain.pem",
        format!("{}{}", chain.leaf.pem, chain.int.pem),
    );
    let leaf_only = env.write("tls/leaf-only.pem", &chain.leaf.pem);
    let sni_leaf = env.write("tls/sni-leaf.pem", &chain.leaf.pem);
    let client = env.write(
        "tls/client.pem",
        format!("{}{}", chain.leaf.pem, chain.int.pem),
    );
    let tls = format!(
        "smtpd_tls_chain_files = {k}, {f}\n\
         smtp_tls_chain_files = {k}, {c}\n",
        k = p(&key),
        f = p(&full),
        c = p(&client)
    );
    let pf = Postfix::configure(&env.path("pf"), &[], &tls);
    let sni = env.write(
        "pf/etc/sni",
        format!(
            "# SNI names\nmail.example.test {k},\n    {s}\n",
            k = p(&key),
            s = p(&sni_leaf)
        ),
    );
    postconf(
        &pf,
        &["-e", &format!("tls_server_sni_maps = hash:{}", p(&sni))],
    );
    postconf(
        &pf,
        &["-Me", "submission/inet = submission inet n - n - - smtpd"],
    );
    // A legacy parameter does not override smtpd_tls_chain_files (postconf(5)); only the
    // chain_files override does.
    postconf(
        &pf,
        &[
            "-P",
            "-e",
            &format!("submission/inet/smtpd_tls_cert_file={}", p(&full)),
            &format!(
                "submission/inet/smtpd_tls_chain_files={},{}",
                p(&key),
                p(&leaf_only)
            ),
        ],
    );

    let (out, doc) = inspect_json(&env, &["--postfix", &p(&pf.conf)]);
    out.assert_status(1);

    let main = slot_named(&doc, "main.cf: smtpd_tls_chain_files");
    assert_eq!(main["role"], "server");
    assert_eq!(main["status"], "ok", "{main:#}");
    assert_eq!(main["files"], serde_json::json!([p(&key), p(&full)]));
    let port_listener = format!("127.0.0.1:{}/inet", pf.port);
    assert!(
        main["services"].to_string().contains(&port_listener),
        "{main:#}"
    );

    let sub = slot_named(&doc, "master.cf submission/inet: -o smtpd_tls_chain_files");
    assert_eq!(sub["services"], serde_json::json!(["submission/inet"]));
    assert_eq!(sub["files"], serde_json::json!([p(&key), p(&leaf_only)]));
    assert!(
        codes(&sub).contains(&"missing-intermediate".into()),
        "{sub:#}"
    );

    let named = slot_named(&doc, &format!("{} line 2: mail.example.test", p(&sni)));
    assert_eq!(named["sni"], "mail.example.test");
    assert_eq!(named["files"], serde_json::json!([p(&key), p(&sni_leaf)]));
    assert!(
        codes(&named).contains(&"missing-intermediate".into()),
        "{named:#}"
    );

    let client_slot = slot_named(&doc, "main.cf: smtp_tls_chain_files");
    assert_eq!(client_slot["role"], "client");
    assert_eq!(client_slot["status"], "ok", "{client_slot:#}");
    assert!(
        client_slot["services"].to_string().contains("smtp/unix"),
        "{client_slot:#}"
    );
}

#[test]
#[cfg_attr(
    not(have_postfix),
    ignore = "needs Postfix: .ci/setup-mtas.sh, as root"
)]
fn postfix_key_that_does_not_match_the_slots_certificate_is_a_key_mismatch() {
    let chain = Chain::new(&[]);
    let env = TestEnv::new();
    mta::share_dir(env.dir.path());
    env.write("root.pem", &chain.root.pem);
    let full = env.write(
        "tls/fullchain.pem",
        format!("{}{}", chain.leaf.pem, chain.int.pem),
    );
    // The intermediate's key: a real key, not the leaf's.
    let other = env.write("tls/other.key", &chain.int.key_pem);
    let tls = format!(
        "smtpd_tls_cert_file = {}\nsmtpd_tls_key_file = {}\n",
        p(&full),
        p(&other)
    );
    let pf = Postfix::configure(&env.path("pf"), &[], &tls);
    let (out, doc) = inspect_json(&env, &["--postfix", &p(&pf.conf)]);
    out.assert_status(1);
    let slot = slot_named(&doc, "main.cf: smtpd_tls_key_file");
    assert_eq!(slot["key"], p(&other));
    assert!(codes(&slot).contains(&"key-mismatch".into()), "{slot:#}");
}

#[test]
#[cfg_attr(not(have_exim), ignore = "needs Exim: .ci/setup-mtas.sh, as root")]
fn exim_hand_written_config_server_and_transport_slots_with_expanded_values() {
    let chain = Chain::new(&[]);
    let env = TestEnv::new();
    mta::share_dir(env.dir.path());
    env.write("root.pem", &chain.root.pem);
    let key = env.write("tls/key.pem", &chain.leaf.key_pem);
    let leaf_only = env.write("tls/cert.pem", &chain.leaf.pem);
    let full = env.write(
        "tls/fullchain.pem",
        format!("{}{}", chain.leaf.pem, chain.int.pem),
    );
    // Debian's style: the key through an ${if exists...} expression.
    let config = env.write(
        "exim.conf",
        format!(
            "daemon_smtp_ports = 25 : 587\n\
             tls_certificate = {c}\n\
             tls_privatekey = ${{if exists{{{k}}}{{{k}}}{{/nonexistent/key.pem}}}}\n\
             begin transports\n\
             remote_smtp:\n  driver = smtp\n  tls_certificate = {f}\n  tls_privatekey = {k}\n\
             local_delivery:\n  driver = appendfile\n  file = /dev/null\n",
            c = p(&leaf_only),
            k = p(&key),
            f = p(&full)
        ),
    );
    let (out, doc) = inspect_json(&env, &["--exim", &p(&config), "--exim-bin", mta::EXIM_BIN]);
    out.assert_status(1);
    assert_eq!(doc["deployment"]["mta"], "exim");
    let server = slot_named(&doc, &format!("{}: tls_certificate", p(&config)));
    assert_eq!(server["role"], "server");
    assert_eq!(
        server["services"],
        serde_json::json!(["port 25", "port 587"])
    );
    assert_eq!(
        server["key"],
        p(&key),
        "the expression is expanded: {server:#}"
    );
    assert!(
        codes(&server).contains(&"missing-intermediate".into()),
        "{server:#}"
    );
    let client = slot_named(&doc, "transport remote_smtp: tls_certificate");
    assert_eq!(client["role"], "client");
    assert_eq!(client["status"], "ok", "{client:#}");
}

/// A certificate file named without any key (Exim's `tls_privatekey` unset means the key is in
/// the certificate file): the server has no key, STARTTLS fails, so the slot is broken, not
/// merely warned about.
#[test]
#[cfg_attr(not(have_exim), ignore = "needs Exim: .ci/setup-mtas.sh, as root")]
fn exim_slot_whose_files_hold_no_key_is_broken() {
    let chain = Chain::new(&[]);
    let env = TestEnv::new();
    mta::share_dir(env.dir.path());
    env.write("root.pem", &chain.root.pem);
    let full = env.write(
        "tls/fullchain.pem",
        format!("{}{}", chain.leaf.pem, chain.int.pem),
    );
    let config = env.write(
        "exim.conf",
        format!("daemon_smtp_ports = 25\ntls_certificate = {}\n", p(&full)),
    );
    let (out, doc) = inspect_json(&env, &["--exim", &p(&config), "--exim-bin", mta::EXIM_BIN]);
    out.assert_status(1);
    let server = slot_named(&doc, &format!("{}: tls_certificate", p(&config)));
    assert_eq!(server["status"], "broken", "{server:#}");
    assert!(
        server
            .to_string()
            .contains("the server loads no private key"),
        "{server:#}"
    );
}

#[test]
fn postfix_and_paths_cannot_be_given_together() {
    let env = TestEnv::new();
    let out = run(env
        .cmd()
        .args(["inspect", "some.pem", "--postfix", "/etc/postfix"]));
    out.assert_status(2);
    let out = run(env.cmd().args(["inspect"]));
    out.assert_status(2);
    for other in [["--dovecot", "--exim"], ["--dovecot", "--postfix"]] {
        run(env.cmd().args(["inspect"]).args(other)).assert_status(2);
    }
    run(env.cmd().args(["inspect", "some.pem", "--dovecot"])).assert_status(2);
    // --reload is for a server repaired in place.
    env.write("server/cert.pem", Chain::new(&[]).leaf.pem);
    let out = run(env
        .cmd()
        .args(["repair", "server", "--out", "out", "--reload", "--offline"]));
    out.assert_status(2);
    assert!(
        out.stderr
            .contains("--reload needs --postfix, --exim or --dovecot"),
        "{}",
        out.stderr
    );
    assert!(!env.path("out").exists(), "nothing written");
}

/// Debian's exim4-config in the `split` or single layout with `macros` in the file each
/// layout reads (conf.d/main/000_localmacros, exim4.conf.localmacros); the generated
/// configuration's path.
fn debian_exim(env: &TestEnv, split: bool, macros: &str) -> PathBuf {
    let target = if split {
        "/etc/exim4/conf.d/main/000_localmacros"
    } else {
        "/etc/exim4/exim4.conf.localmacros"
    };
    let root = env.path(if split { "root-split" } else { "root-single" });
    mta::debian_exim4_conf(&root, split, Path::new(target), macros.as_bytes())
}

#[test]
#[cfg_attr(
    not(have_exim4_config),
    ignore = "needs Exim and Debian's exim4-config: .ci/setup-mtas.sh, as root"
)]
fn exim_debian_layouts_main_tls_certkey_takes_precedence_is_judged_and_repaired() {
    let chain = Chain::new(&[]);
    let env = TestEnv::new();
    mta::share_dir(env.dir.path());
    env.write("root.pem", &chain.root.pem);
    // Key and leaf in one file, no intermediate: what MAIN_TLS_CERTKEY names.
    let certkey = env.write(
        "tls/certkey.pem",
        format!("{}{}", chain.leaf.key_pem, chain.leaf.pem),
    );
    let full = env.write(
        "tls/fullchain.pem",
        format!("{}{}", chain.leaf.pem, chain.int.pem),
    );
    let key = env.write("tls/key.pem", &chain.leaf.key_pem);
    let macros = format!(
        "MAIN_TLS_ENABLE = yes\nMAIN_TLS_CERTKEY = {}\nMAIN_TLS_CERTIFICATE = {}\n\
         MAIN_TLS_PRIVATEKEY = {}\n",
        p(&certkey),
        p(&full),
        p(&key)
    );
    for split in [false, true] {
        let config = debian_exim(&env, split, &macros);
        let (out, doc) = inspect_json(&env, &["--exim", &p(&config), "--exim-bin", mta::EXIM_BIN]);
        out.assert_status(1);
        let server = slot_named(&doc, "tls_certificate");
        assert_eq!(server["role"], "server", "split={split}: {doc:#}");
        assert_eq!(
            server["files"],
            serde_json::json!([p(&certkey)]),
            "split={split}: MAIN_TLS_CERTKEY wins over MAIN_TLS_CERTIFICATE: {server:#}"
        );
        assert!(
            server["key"].is_null(),
            "the key is in the same file: {server:#}"
        );
        assert!(
            codes(&server).contains(&"missing-intermediate".into()),
            "split={split}: {server:#}"
        );
        assert!(
            !codes(&server).contains(&"key-mismatch".into()),
            "split={split}: {server:#}"
        );
        // The note names where the macros live in this layout.
        let notes = doc["deployment"]["notes"].to_string();
        let macros = if split {
            "/etc/exim4/conf.d/main/000_localmacros"
        } else {
            "/etc/exim4/exim4.conf.localmacros"
        };
        assert!(
            notes.contains(macros) && notes.contains("update-exim4.conf"),
            "split={split}: {notes}"
        );
        // The repair changes the macro that wins (the key stays in the same file, now with
        // the intermediate) in the macros file, never the generated file.
        let before = std::fs::read(&config).expect("generated config");
        let root = env.path(if split { "root-split" } else { "root-single" });
        env.write("pool/int.pem", &chain.int.pem);
        let (c, o) = (p(&config), p(&env.path("out")));
        let check = chainfix_on_debian(
            &env,
            &root,
            &["repair", "--exim", &c, "--out", &o, "--check"],
        );
        check.assert_status(0);
        // MAIN_TLS_CERTKEY goes; the pair names the new chain and the key where it is.
        for line in [
            format!("-MAIN_TLS_CERTKEY = {}", p(&certkey)),
            format!("+MAIN_TLS_CERTIFICATE = {o}"),
            format!("+MAIN_TLS_PRIVATEKEY = {}", p(&certkey)),
        ] {
            assert!(
                check.stdout.contains(&line) && check.stdout.contains(macros),
                "split={split}: no {line:?} in\n{}\n{}",
                check.stdout,
                check.stderr
            );
        }
        assert_eq!(std::fs::read(&config).expect("generated config"), before);
        let fixed = chainfix_on_debian(&env, &root, &["repair", "--exim", &c, "--out", &o]);
        fixed.assert_status(0);
        let bp = run(Command::new(mta::EXIM_BIN).arg("-C").arg(&config).args([
            "-bP",
            "tls_certificate",
            "tls_privatekey",
        ]))
        .stdout;
        assert!(
            bp.contains(&format!("tls_certificate = {o}"))
                && bp.contains(&format!("tls_privatekey = {}", p(&certkey))),
            "split={split}: {bp}"
        );
    }
}

/// `chainfix repair --postfix CONF --out OUT` (plus `extra`) trusting only the test root.
fn repair_postfix(env: &TestEnv, pf: &Postfix, extra: &[&str]) -> Output {
    run(env
        .cmd()
        .args(["repair", "--postfix", &p(&pf.conf), "--out"])
        .arg(env.path("out"))
        .args(TRUST)
        .args(extra))
}

fn postconf_value(pf: &Postfix, name: &str) -> String {
    let out = run(Command::new(mta::POSTCONF_BIN)
        .arg("-c")
        .arg(&pf.conf)
        .args(["-h", name]));
    out.stdout.trim().to_string()
}

/// The certificates a listener serves, as an independent client sees them: `openssl
/// s_client -verify_return_error` trusting only the test root; panics unless it verifies.
fn served_by(port: u16, env: &TestEnv, extra: &[&str]) -> Vec<String> {
    let mut args = vec!["-showcerts", "-verify_return_error"];
    args.extend(extra);
    let out = mta::s_client(port, &env.path("root.pem"), &args);
    let certs = mta::pem_certificates(&out.stdout);
    assert!(
        out.stdout.contains("Verify return code: 0 (ok)"),
        "openssl does not verify what port {port} serves:\n{}\n{}",
        out.stdout,
        out.stderr
    );
    certs
}

/// Every file under `dir` with its bytes, and each link with its target.
fn tree(dir: &Path) -> Vec<(PathBuf, String)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("read_dir").flatten() {
            let path = e.path();
            let meta = std::fs::symlink_metadata(&path).expect("meta");
            if meta.file_type().is_symlink() {
                let t = std::fs::read_link(&path).expect("link");
                out.push((path, format!("-> {}", t.display())));
            } else if meta.is_dir() {
                stack.push(path);
            } else {
                let bytes = std::fs::read(&path).expect("read");
                out.push((path, String::from_utf8_lossy(&bytes).into_owned()));
            }
        }
    }
    out.sort();
    out
}

#[test]
#[cfg_attr(
    not(have_postfix),
    ignore = "needs Postfix: .ci/setup-mtas.sh, as root"
)]
fn postfix_repair_points_main_cf_at_certbots_fullchain_and_never_touches_certbots_files() {
    let chain = Chain::new(&[]);
    let env = TestEnv::new();
    mta::share_dir(env.dir.path());
    env.write("root.pem", &chain.root.pem);
    let live = certbot_layout(&env, &chain);
    let tls = format!(
        "smtpd_tls_cert_file = {}\nsmtpd_tls_key_file = {}\n",
        p(&live.join("cert.pem")),
        p(&live.join("privkey.pem"))
    );
    let mut pf = Postfix::configure(&env.path("pf"), &[], &tls);
    let certbot_before = tree(&env.path("letsencrypt"));
    let main_cf = pf.conf.join("main.cf");
    let main_before = std::fs::read_to_string(&main_cf).expect("main.cf");

    // --check: the change as a diff, nothing changed.
    let check = repair_postfix(&env, &pf, &["--check"]);
    check.assert_status(0);
    let full = p(&live.join("fullchain.pem"));
    assert!(
        check.stdout.contains(&format!(
            "-smtpd_tls_cert_file = {}",
            p(&live.join("cert.pem"))
        )) && check
            .stdout
            .contains(&format!("+smtpd_tls_cert_file = {full}")),
        "{}",
        check.stdout
    );
    assert_eq!(
        std::fs::read_to_string(&main_cf).expect("main.cf"),
        main_before
    );

    let fixed = repair_postfix(&env, &pf, &[]);
    fixed.assert_status(0);
    assert_eq!(postconf_value(&pf, "smtpd_tls_cert_file"), full);
    assert_eq!(
        postconf_value(&pf, "smtpd_tls_key_file"),
        p(&live.join("privkey.pem"))
    );
    assert!(
        !env.path("out").exists() || tree(&env.path("out")).is_empty(),
        "certbot keeps the full chain: nothing is copied"
    );
    assert_eq!(
        tree(&env.path("letsencrypt")),
        certbot_before,
        "certbot's files changed"
    );

    // A second run changes nothing.
    let main_after = std::fs::read_to_string(&main_cf).expect("main.cf");
    let again = repair_postfix(&env, &pf, &[]);
    again.assert_status(0);
    assert!(
        again.stdout.contains("Nothing to change."),
        "{}",
        again.stdout
    );
    assert_eq!(
        std::fs::read_to_string(&main_cf).expect("main.cf"),
        main_after
    );

    // Real Postfix serves the full chain; openssl verifies it.
    pf.start_configured();
    let served = served_by(pf.port, &env, &[]);
    assert_eq!(served.len(), 2, "leaf and intermediate");
}

#[test]
#[cfg_attr(
    not(have_postfix),
    ignore = "needs Postfix: .ci/setup-mtas.sh, as root"
)]
fn postfix_repair_in_place_fixes_main_cf_a_master_cf_override_an_sni_name_and_the_client() {
    let chain = Chain::new(&[]);
    let env = TestEnv::new();
    mta::share_dir(env.dir.path());
    env.write("root.pem", &chain.root.pem);
    let key = env.write("tls/key.pem", &chain.leaf.key_pem);
    let leaf = env.write("tls/leaf.pem", &chain.leaf.pem);
    let leaf2 = env.write("tls/leaf2.pem", &chain.leaf.pem);
    let sni_leaf = env.write("tls/sni-leaf.pem", &chain.leaf.pem);
    // The intermediate is known to chainfix only through --intermediates.
    env.write("pool/int.pem", &chain.int.pem);
    let tls = format!(
        "smtpd_tls_chain_files = {k}, {l}\nsmtp_tls_chain_files = {k}, {l}\n",
        k = p(&key),
        l = p(&leaf)
    );
    let mut pf = Postfix::configure(&env.path("pf"), &[], &tls);
    let port2 = mta::free_port();
    postconf(
        &pf,
        &[
            "-Me",
            &format!("127.0.0.1:{port2}/inet = 127.0.0.1:{port2} inet n - n - - smtpd"),
        ],
    );
    postconf(
        &pf,
        &[
            "-P",
            "-e",
            &format!(
                "127.0.0.1:{port2}/inet/smtpd_tls_chain_files={},{}",
                p(&key),
                p(&leaf2)
            ),
        ],
    );
    let sni = env.write(
        "pf/etc/sni",
        format!("mail.example.test {}, {}\n", p(&key), p(&sni_leaf)),
    );
    postconf(
        &pf,
        &["-e", &format!("tls_server_sni_maps = hash:{}", p(&sni))],
    );
    let built = run(Command::new("/usr/sbin/postmap")
        .arg("-c")
        .arg(&pf.conf)
        .args(["-F", &format!("hash:{}", p(&sni))]));
    assert_eq!(built.status, 0, "postmap: {}", built.stderr);

    let fixed = repair_postfix(&env, &pf, &["--intermediates", "pool"]);
    fixed.assert_status(0);
    let out = env.path("out");
    // Each slot's chain in a directory of its own; the key stays where it is.
    let written: Vec<PathBuf> = tree(&out).into_iter().map(|(p, _)| p).collect();
    assert_eq!(
        written.len(),
        4,
        "{written:?}\n{}\n{}",
        fixed.stdout,
        fixed.stderr
    );
    for f in &written {
        assert!(f.ends_with("fullchain.pem"), "{f:?}");
        let text = std::fs::read_to_string(f).expect("read");
        assert_eq!(mta::pem_certificates(&text).len(), 2, "{f:?}");
    }
    let main_chain = postconf_value(&pf, "smtpd_tls_chain_files");
    assert!(
        main_chain.starts_with(&p(&key)) && main_chain.contains(&p(&out)),
        "{main_chain}"
    );
    let client_chain = postconf_value(&pf, "smtp_tls_chain_files");
    assert!(client_chain.contains(&p(&out)), "{client_chain}");
    let sni_text = std::fs::read_to_string(&sni).expect("sni");
    assert!(sni_text.contains(&p(&out)), "{sni_text}");

    // Everything judged from the configuration is now fine; a second run changes nothing.
    let (after, _) = inspect_json(&env, &["--postfix", &p(&pf.conf)]);
    after.assert_status(0);
    let again = repair_postfix(&env, &pf, &["--intermediates", "pool"]);
    again.assert_status(0);
    assert!(
        again.stdout.contains("Nothing to change."),
        "{}",
        again.stdout
    );

    // Real Postfix serves the full chain on each listener and for the SNI name.
    pf.start_configured();
    assert_eq!(served_by(pf.port, &env, &[]).len(), 2);
    assert_eq!(served_by(port2, &env, &[]).len(), 2);
    assert_eq!(
        served_by(pf.port, &env, &["-servername", "mail.example.test"]).len(),
        2
    );
}

/// A running Postfix serving a leaf-only chain (`smtpd_tls_chain_files = KEY, LEAF`) on its
/// port, with `settings` added; the intermediate is in `pool/` for chainfix.
fn leaf_only_postfix(env: &TestEnv, chain: &Chain, settings: &[(&str, &str)]) -> Postfix {
    mta::share_dir(env.dir.path());
    env.write("root.pem", &chain.root.pem);
    env.write("pool/int.pem", &chain.int.pem);
    let key = env.write("tls/key.pem", &chain.leaf.key_pem);
    let leaf = env.write("tls/leaf.pem", &chain.leaf.pem);
    let tls = format!("smtpd_tls_chain_files = {}, {}\n", p(&key), p(&leaf));
    Postfix::start(&env.path("pf"), settings, &tls)
}

/// How many certificates `port` serves (openssl, no verification asked).
fn served_count(port: u16, env: &TestEnv) -> usize {
    let out = mta::s_client(port, &env.path("root.pem"), &["-showcerts"]);
    mta::pem_certificates(&out.stdout).len()
}

#[test]
#[cfg_attr(
    not(have_postfix),
    ignore = "needs Postfix: .ci/setup-mtas.sh, as root"
)]
fn postfix_repair_reload_proves_every_connection_serves_the_new_chain() {
    let chain = Chain::new(&[]);
    let env = TestEnv::new();
    let pf = leaf_only_postfix(&env, &chain, &[]);
    // An smtpd process that served the old chain is left idle: after the reload it may answer
    // again with the old chain until it exits.
    assert_eq!(
        served_count(pf.port, &env),
        1,
        "leaf only before the repair"
    );
    let out = repair_postfix(
        &env,
        &pf,
        &[
            "--intermediates",
            "pool",
            "--reload",
            "--reload-deadline",
            "120",
        ],
    );
    out.assert_status(0);
    println!("{}", out.stdout);
    assert!(
        out.stdout
            .contains(&format!("127.0.0.1:{}: serves the new chain", pf.port)),
        "{}",
        out.stdout
    );
    // An independent client agrees, several times in a row.
    for _ in 0..3 {
        assert_eq!(served_by(pf.port, &env, &[]).len(), 2);
    }
}

#[test]
#[cfg_attr(
    not(have_postfix),
    ignore = "needs Postfix: .ci/setup-mtas.sh, as root"
)]
fn postfix_repair_whose_proof_fails_is_undone_and_the_old_chain_is_served_again() {
    let chain = Chain::new(&[]);
    let env = TestEnv::new();
    let pf = leaf_only_postfix(&env, &chain, &[]);
    // A second listener of the same slot that offers no STARTTLS: it can never serve the new
    // chain, so the proof fails there.
    let port2 = mta::free_port();
    postconf(
        &pf,
        &[
            "-Me",
            &format!("127.0.0.1:{port2}/inet = 127.0.0.1:{port2} inet n - n - - smtpd"),
        ],
    );
    postconf(
        &pf,
        &[
            "-P",
            "-e",
            &format!("127.0.0.1:{port2}/inet/smtpd_tls_security_level=none"),
        ],
    );
    let reload = run(Command::new(mta::POSTFIX_BIN)
        .arg("-c")
        .arg(&pf.conf)
        .arg("reload"));
    assert_eq!(reload.status, 0, "{}", reload.stderr);
    let main_before = std::fs::read(pf.conf.join("main.cf")).expect("main.cf");
    let started = std::time::Instant::now();
    let out = repair_postfix(
        &env,
        &pf,
        &[
            "--intermediates",
            "pool",
            "--reload",
            "--reload-deadline",
            "5",
        ],
    );
    out.assert_status(2);
    assert!(started.elapsed().as_secs() < 60, "the deadline is kept");
    assert!(
        out.stderr
            .contains(&format!("127.0.0.1:{port2} did not serve the new chain"))
            && out
                .stderr
                .contains("every change was undone and Postfix reloaded"),
        "{}\n{}",
        out.stdout,
        out.stderr
    );
    assert!(out.stdout.contains("NOT PROVEN"), "{}", out.stdout);
    assert_eq!(
        std::fs::read(pf.conf.join("main.cf")).expect("main.cf"),
        main_before,
        "main.cf is as it was"
    );
    // The server serves what it served before: the leaf alone (old processes included).
    for _ in 0..3 {
        assert_eq!(served_count(pf.port, &env), 1);
    }
}

#[test]
#[cfg_attr(not(have_exim), ignore = "needs Exim: .ci/setup-mtas.sh, as root")]
fn exim_key_its_user_cannot_read_is_an_error_and_real_exim_indeed_fails_starttls() {
    use std::os::unix::fs::PermissionsExt;
    let chain = Chain::new(&[]);
    let env = TestEnv::new();
    mta::share_dir(env.dir.path());
    env.write("root.pem", &chain.root.pem);
    let key = env.write("tls/key.pem", &chain.leaf.key_pem);
    let full = env.write(
        "tls/fullchain.pem",
        format!("{}{}", chain.leaf.pem, chain.int.pem),
    );
    mta::share_dir(&env.path("tls"));
    // Root's alone: what `openssl req -keyout` or a careless copy leaves.
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    let ex = mta::Exim::start(
        &env.path("ex"),
        &mta::EximConfig {
            main: mta::exim_tls_files(&key, &full),
            rcpt_acl: String::new(),
            relay_to: None,
            transport: String::new(),
        },
    );
    let (out, doc) = inspect_json(&env, &["--exim", &p(&ex.conf), "--exim-bin", mta::EXIM_BIN]);
    out.assert_status(1);
    let server = slot_named(&doc, "tls_certificate");
    assert_eq!(server["status"], "broken", "{server:#}");
    let problems = server["problems"].to_string();
    assert!(
        problems.contains(&p(&key)) && problems.contains("Debian-exim cannot read it"),
        "{server:#}"
    );
    // The real daemon agrees: no certificate is served.
    let served = mta::s_client(ex.port, &env.path("root.pem"), &["-showcerts"]);
    assert!(
        mta::pem_certificates(&served.stdout).is_empty(),
        "{}",
        served.stdout
    );

    // Group Debian-exim, 0640: chainfix and Exim both see it fixed.
    let chgrp = run(Command::new("chgrp").arg(mta::EXIM_USER).arg(&key));
    assert_eq!(chgrp.status, 0, "{}", chgrp.stderr);
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o640)).expect("chmod");
    let (out, doc) = inspect_json(&env, &["--exim", &p(&ex.conf), "--exim-bin", mta::EXIM_BIN]);
    out.assert_status(0);
    assert_eq!(
        slot_named(&doc, "tls_certificate")["status"],
        "ok",
        "{doc:#}"
    );
    assert_eq!(served_by(ex.port, &env, &[]).len(), 2);
}

/// A repair that failed with `why` and put everything back: exit 2.
fn assert_undone(out: &Output, why: &str) {
    out.assert_status(2);
    assert!(
        out.stderr.contains(why) && out.stderr.contains("every change was undone"),
        "{}\n{}",
        out.stdout,
        out.stderr
    );
}

/// A running Exim (hand-written configuration) serving a leaf-only chain, its `remote_smtp`
/// transport presenting the same leaf-only file; the intermediate is in `pool/` for chainfix.
/// The test root, the intermediate in `pool/` for chainfix, and the key and the leaf alone in
/// `tls/` (a directory Exim's user may read); the key's and the leaf's paths.
fn leaf_only_files(env: &TestEnv, chain: &Chain) -> (PathBuf, PathBuf) {
    mta::share_dir(env.dir.path());
    env.write("root.pem", &chain.root.pem);
    env.write("pool/int.pem", &chain.int.pem);
    let key = env.write("tls/key.pem", &chain.leaf.key_pem);
    let leaf = env.write("tls/leaf.pem", &chain.leaf.pem);
    mta::share_dir(&env.path("tls"));
    (key, leaf)
}

fn leaf_only_exim(env: &TestEnv, chain: &Chain) -> mta::Exim {
    let (key, leaf) = leaf_only_files(env, chain);
    mta::Exim::start(
        &env.path("ex"),
        &mta::EximConfig {
            main: mta::exim_tls_files(&key, &leaf),
            rcpt_acl: String::new(),
            relay_to: None,
            transport: format!(
                "  tls_certificate = {}\n  tls_privatekey = {}\n",
                p(&leaf),
                p(&key)
            ),
        },
    )
}

fn repair_exim(env: &TestEnv, ex: &mta::Exim, out: &Path, extra: &[&str]) -> Output {
    run(env
        .cmd()
        .args([
            "repair",
            "--exim",
            &p(&ex.conf),
            "--exim-bin",
            mta::EXIM_BIN,
            "--out",
        ])
        .arg(out)
        .args(TRUST)
        .args(["--intermediates", "pool"])
        .args(extra))
}

#[test]
#[cfg_attr(not(have_exim), ignore = "needs Exim: .ci/setup-mtas.sh, as root")]
fn exim_hand_written_config_is_repaired_in_place_reloaded_and_proven_then_left_alone() {
    let chain = Chain::new(&[]);
    let env = TestEnv::new();
    let ex = leaf_only_exim(&env, &chain);
    let out = env.path("out");
    assert_eq!(
        served_count(ex.port, &env),
        1,
        "leaf only before the repair"
    );
    let conf_before = std::fs::read_to_string(&ex.conf).expect("conf");

    let check = repair_exim(&env, &ex, &out, &["--check"]);
    check.assert_status(0);
    assert!(
        check.stdout.contains(&format!(
            "-tls_certificate = {}",
            p(&env.path("tls/leaf.pem"))
        )) && check.stdout.contains("+  tls_certificate = "),
        "{}",
        check.stdout
    );
    assert_eq!(
        std::fs::read_to_string(&ex.conf).expect("conf"),
        conf_before
    );

    let fixed = repair_exim(&env, &ex, &out, &["--reload"]);
    fixed.assert_status(0);
    // The server's listener is proven; the transport's client certificate cannot be probed.
    assert!(
        fixed.stdout.contains(
            "every listener proven to serve the new chain. The client role is not probed"
        ),
        "{}",
        fixed.stdout
    );
    assert!(
        fixed
            .stdout
            .contains(&format!("127.0.0.1:{}: serves the new chain", ex.port)),
        "{}\n{}",
        fixed.stdout,
        fixed.stderr
    );
    // Exim itself reads the new files, for the daemon and for the transport.
    let main = ex.exim(&["-bP", "tls_certificate"]).stdout;
    let transport = ex.exim(&["-bP", "transport", "remote_smtp"]).stdout;
    assert!(main.contains(&p(&out)), "{main}");
    assert!(
        transport.contains(&format!("tls_certificate = {}", p(&out))),
        "{transport}"
    );
    for _ in 0..3 {
        assert_eq!(served_by(ex.port, &env, &[]).len(), 2);
    }

    let conf_after = std::fs::read_to_string(&ex.conf).expect("conf");
    let again = repair_exim(&env, &ex, &out, &["--reload"]);
    again.assert_status(0);
    assert!(
        again.stdout.contains("Nothing to change."),
        "{}",
        again.stdout
    );
    assert_eq!(std::fs::read_to_string(&ex.conf).expect("conf"), conf_after);
}

#[test]
#[cfg_attr(not(have_exim), ignore = "needs Exim: .ci/setup-mtas.sh, as root")]
fn exim_repair_whose_files_debian_exim_could_not_read_changes_nothing() {
    use std::os::unix::fs::PermissionsExt;
    let chain = Chain::new(&[]);
    let env = TestEnv::new();
    let ex = leaf_only_exim(&env, &chain);
    // chainfix's directory below one only root may enter: Exim could not read the new chain.
    let private = env.path("private");
    std::fs::create_dir(&private).expect("mkdir");
    std::fs::set_permissions(&private, std::fs::Permissions::from_mode(0o700)).expect("chmod");
    let conf_before = std::fs::read(&ex.conf).expect("conf");
    let out = repair_exim(&env, &ex, &private.join("out"), &["--reload"]);
    assert_undone(&out, "Debian-exim cannot read");
    assert_eq!(
        std::fs::read(&ex.conf).expect("conf"),
        conf_before,
        "the configuration is as it was"
    );
    let left: Vec<PathBuf> = tree(&private).into_iter().map(|(p, _)| p).collect();
    assert!(
        left.is_empty(),
        "the written chains are removed again: {left:?}"
    );
    // The daemon still serves what it served before.
    assert_eq!(served_count(ex.port, &env), 1);
}

/// `chainfix ARGS` as on a Debian host whose `/etc/exim4` is `root`'s: in a private mount
/// namespace, `/etc` is this host's under an overlay (whatever is written there stays in the
/// test's directory: this host's `/etc` is never changed) with `root`'s `etc/exim4` and
/// `mailname` laid over it, and Debian's `update-exim4.conf` on `PATH`.
fn chainfix_on_debian(env: &TestEnv, root: &Path, args: &[&str]) -> Output {
    chainfix_on_debian_with(env, root, Path::new(mta::EXIM4_CONFIG), args)
}

/// `chainfix_on_debian` with `usr/sbin/update-exim4.conf` looked for under `exim4_config`.
fn chainfix_on_debian_with(
    env: &TestEnv,
    root: &Path,
    exim4_config: &Path,
    args: &[&str],
) -> Output {
    let (upper, work) = (env.path("overlay/upper"), env.path("overlay/work"));
    for d in [&upper, &work] {
        std::fs::create_dir_all(d).expect("overlay dirs");
    }
    let script = format!(
        "mount -t overlay overlay -o lowerdir=/etc,upperdir={u},workdir={w} /etc && \
         mkdir -p /etc/exim4 && mount --bind {r}/etc/exim4 /etc/exim4 && \
         cp {r}/etc/mailname /etc/mailname && PATH={c}/usr/sbin:$PATH exec \"$@\"",
        u = p(&upper),
        w = p(&work),
        r = p(root),
        c = p(exim4_config)
    );
    let chainfix = env.cmd();
    let out = run(Command::new("unshare")
        .args(["-m", "sh", "-c", &script, "sh"])
        .arg(chainfix.get_program())
        .args(args)
        .args(["--exim-bin", mta::EXIM_BIN, "--intermediates", "pool"])
        .args(TRUST)
        .env("NO_COLOR", "1")
        .env("XDG_CACHE_HOME", env.path("cache"))
        .current_dir(env.dir.path()));
    // The overlay's work directory is root's only: leave nothing the temp dir cannot remove.
    let _ = std::fs::remove_dir_all(env.path("overlay"));
    out
}

#[test]
#[cfg_attr(
    not(have_exim4_config),
    ignore = "needs Exim and Debian's exim4-config: .ci/setup-mtas.sh, as root"
)]
fn exim_debian_layouts_are_repaired_in_their_macros_file_regenerated_and_left_alone() {
    for split in [true, false] {
        let chain = Chain::new(&[]);
        let env = TestEnv::new();
        let (key, leaf) = leaf_only_files(&env, &chain);
        let mut ex = mta::Exim::prepare(&env.path("ex"));
        // Leaf only; the lines that make the generated configuration this instance's.
        let macros_text = format!(
            "MAIN_TLS_ENABLE = yes\nMAIN_TLS_CERTIFICATE = {}\nMAIN_TLS_PRIVATEKEY = {}\n{}",
            p(&leaf),
            p(&key),
            ex.debian_options()
        );
        let config = debian_exim(&env, split, &macros_text);
        let root = env.path(if split { "root-split" } else { "root-single" });
        let macros = root.join(if split {
            "etc/exim4/conf.d/main/000_localmacros"
        } else {
            "etc/exim4/exim4.conf.localmacros"
        });
        ex.start_from(&config);
        assert_eq!(served_count(ex.port, &env), 1, "split={split}: leaf only");
        let out = env.path("out");
        let repair = |extra: &[&str]| {
            let mut args = vec!["repair", "--exim"];
            let (c, o) = (p(&config), p(&out));
            args.extend([c.as_str(), "--out", o.as_str()]);
            args.extend(extra);
            chainfix_on_debian(&env, &root, &args)
        };
        let (conf_before, macros_before) = (
            std::fs::read(&config).expect("config"),
            std::fs::read_to_string(&macros).expect("macros"),
        );

        let check = repair(&["--check"]);
        check.assert_status(0);
        assert!(
            check
                .stdout
                .contains(&format!("-MAIN_TLS_CERTIFICATE = {}", p(&leaf)))
                && check
                    .stdout
                    .contains(&format!("+MAIN_TLS_CERTIFICATE = {}", p(&out))),
            "split={split}: {}\n{}",
            check.stdout,
            check.stderr
        );
        assert_eq!(std::fs::read(&config).expect("config"), conf_before);
        assert_eq!(
            std::fs::read_to_string(&macros).expect("macros"),
            macros_before
        );
        assert!(!out.exists(), "--check writes nothing");

        // Reloaded (SIGHUP to the daemon, which re-executes itself on the regenerated
        // configuration) and proven on three connections in a row.
        let fixed = repair(&["--reload", "--reload-deadline", "60"]);
        fixed.assert_status(0);
        assert!(
            fixed
                .stdout
                .contains("every listener proven to serve the new chain"),
            "split={split}: {}",
            fixed.stdout
        );
        let now = std::fs::read_to_string(&macros).expect("macros");
        let defs: Vec<&str> = now
            .lines()
            .filter(|l| l.starts_with("MAIN_TLS_CERTIFICATE"))
            .collect();
        assert!(
            defs.len() == 1 && defs[0].contains(&p(&out)),
            "split={split}: defined once, naming the new chain:\n{now}"
        );
        // The regenerated configuration names the new chain, and the running Exim serves it
        // whole to an independent client.
        let bp = ex.exim(&["-bP", "tls_certificate"]).stdout;
        assert!(bp.contains(&p(&out)), "split={split}: {bp}");
        assert_eq!(served_by(ex.port, &env, &[]).len(), 2, "split={split}");

        let (conf_after, macros_after) = (
            std::fs::read(&config).expect("config"),
            std::fs::read_to_string(&macros).expect("macros"),
        );
        let again = repair(&[]);
        again.assert_status(0);
        assert!(
            again.stdout.contains("Nothing to change."),
            "split={split}: {}",
            again.stdout
        );
        assert_eq!(std::fs::read(&config).expect("config"), conf_after);
        assert_eq!(
            std::fs::read_to_string(&macros).expect("macros"),
            macros_after
        );
        ex.stop();
    }
}

#[test]
#[cfg_attr(
    not(have_exim4_config),
    ignore = "needs Exim and Debian's exim4-config: .ci/setup-mtas.sh, as root"
)]
fn exim_debian_split_macros_in_a_file_of_their_own_are_changed_there_and_undone_on_failure() {
    let chain = Chain::new(&[]);
    let env = TestEnv::new();
    let (key, leaf) = leaf_only_files(&env, &chain);
    let ex = mta::Exim::prepare(&env.path("ex"));
    let root = env.path("root-split");
    let own = root.join("etc/exim4/conf.d/main/00_local_tls");
    let text = format!(
        "MAIN_TLS_ENABLE = yes\nMAIN_TLS_CERTIFICATE = {}\nMAIN_TLS_PRIVATEKEY = {}\n{}",
        p(&leaf),
        p(&key),
        ex.debian_options()
    );
    let config = mta::debian_exim4_conf(
        &root,
        true,
        Path::new("/etc/exim4/conf.d/main/00_local_tls"),
        text.as_bytes(),
    );
    let localmacros = root.join("etc/exim4/conf.d/main/000_localmacros");
    let out = env.path("out");
    let (c, o) = (p(&config), p(&out));
    let args = ["repair", "--exim", c.as_str(), "--out", o.as_str()];
    let before = std::fs::read(&config).expect("config");

    // No update-exim4.conf to run: the macros already written are put back.
    let failed = chainfix_on_debian_with(&env, &root, &env.path("nowhere"), &args);
    assert_undone(&failed, "update-exim4.conf");
    assert_eq!(std::fs::read_to_string(&own).expect("own file"), text);
    assert!(!localmacros.exists(), "no second file defining the macros");
    assert_eq!(std::fs::read(&config).expect("config"), before);
    let left: Vec<PathBuf> = match out.exists() {
        true => tree(&out).into_iter().map(|(p, _)| p).collect(),
        false => Vec::new(),
    };
    assert!(
        left.is_empty(),
        "the written chain is removed again: {left:?}"
    );

    let fixed = chainfix_on_debian(&env, &root, &args);
    fixed.assert_status(0);
    let now = std::fs::read_to_string(&own).expect("own file");
    assert!(
        now.contains(&format!("MAIN_TLS_CERTIFICATE = {o}")),
        "changed where it is defined:\n{now}"
    );
    assert!(!localmacros.exists(), "no second file defining the macros");
    let bp = run(Command::new(mta::EXIM_BIN)
        .arg("-C")
        .arg(&config)
        .args(["-bP", "tls_certificate"]))
    .stdout;
    assert!(bp.contains(&o), "{bp}");
}

/// The receiving end of the client-role test: asks every client for a certificate, trusts
/// only the test root (`smtpd_tls_CAfile`), relays for loopback, logs each TLS session.
fn receiving_postfix(env: &TestEnv, chain: &Chain) -> Postfix {
    let key = env.write("rx-tls/key.pem", &chain.leaf.key_pem);
    let full = env.write(
        "rx-tls/full.pem",
        format!("{}{}", chain.leaf.pem, chain.int.pem),
    );
    let root = p(&env.path("root.pem"));
    Postfix::start(
        &env.path("rx"),
        &[
            ("smtpd_tls_ask_ccert", "yes"),
            ("smtpd_tls_CAfile", &root),
            ("smtpd_relay_restrictions", "permit_mynetworks, reject"),
        ],
        &format!("smtpd_tls_chain_files = {}, {}\n", p(&key), p(&full)),
    )
}

#[test]
#[cfg_attr(
    not(have_postfix),
    ignore = "needs Postfix: .ci/setup-mtas.sh, as root"
)]
fn postfix_client_certificate_repaired_in_place_is_trusted_by_the_receiver_after_reload() {
    // An on-premises relay presenting its client certificate without the intermediate: the
    // 550 5.7.64 TenantAttribution case. A second, real Postfix stands in for the receiver and
    // says in its log whether it could verify the client's chain (Postfix 3.x smtpd with
    // smtpd_tls_ask_ccert: "Untrusted TLS connection established from ..." when the chain does
    // not verify against smtpd_tls_CAfile, "Trusted ..." when it does).
    let chain = Chain::new(&[]);
    let env = TestEnv::new();
    mta::share_dir(env.dir.path());
    env.write("root.pem", &chain.root.pem);
    env.write("pool/int.pem", &chain.int.pem);
    let receiver = receiving_postfix(&env, &chain);
    let key = env.write("tls/key.pem", &chain.leaf.key_pem);
    let leaf = env.write("tls/leaf.pem", &chain.leaf.pem);
    let full = env.write(
        "tls/full.pem",
        format!("{}{}", chain.leaf.pem, chain.int.pem),
    );
    let relay = format!("[127.0.0.1]:{}", receiver.port);
    // The sender's server role is already right; only its client role lacks the intermediate.
    let sender = Postfix::start(
        &env.path("tx"),
        &[
            ("relayhost", &relay),
            ("default_transport", "smtp"),
            ("smtp_tls_security_level", "encrypt"),
        ],
        &format!(
            "smtpd_tls_chain_files = {k}, {f}\nsmtp_tls_chain_files = {k}, {l}\n",
            k = p(&key),
            f = p(&full),
            l = p(&leaf)
        ),
    );
    sender.sendmail(
        "relay@example.test",
        "someone@example.net",
        "Subject: before\n\nbefore the repair\n",
    );
    let before = receiver
        .wait_log_line(&["TLS connection established from"])
        .unwrap_or_else(|| panic!("no TLS session at the receiver:\n{}", receiver.log()));
    assert!(before.contains("Untrusted TLS connection"), "{before}");

    let (inspected, doc) = inspect_json(&env, &["--postfix", &p(&sender.conf)]);
    assert_ne!(inspected.status, 0, "{}", inspected.stdout);
    let client = slot_named(&doc, "smtp_tls_chain_files");
    assert!(
        codes(&client).contains(&"missing-intermediate".to_string()),
        "{client}"
    );

    let fixed = repair_postfix(&env, &sender, &["--intermediates", "pool", "--reload"]);
    fixed.assert_status(0);
    // Nothing connects to a client slot, so no listener is probed, and the report says so.
    assert!(
        fixed
            .stdout
            .contains("Changed and reloaded. The client role is not probed"),
        "{}",
        fixed.stdout
    );
    let client_chain = postconf_value(&sender, "smtp_tls_chain_files");
    assert!(
        client_chain.starts_with(&p(&key)) && client_chain.contains(&p(&env.path("out"))),
        "{client_chain}"
    );
    // The repaired client role is proven at the receiver, by the receiver.
    sender.sendmail(
        "relay@example.test",
        "someone@example.net",
        "Subject: after\n\nafter the repair\n",
    );
    let after = receiver
        .wait_log_line(&["Trusted TLS connection established from"])
        .unwrap_or_else(|| panic!("the receiver never trusted the client:\n{}", receiver.log()));
    println!("receiver: {after}");

    let again = repair_postfix(&env, &sender, &["--intermediates", "pool", "--reload"]);
    again.assert_status(0);
    assert!(
        again.stdout.contains("Nothing to change."),
        "{}",
        again.stdout
    );
}

#[test]
#[cfg_attr(
    not(have_postfix),
    ignore = "needs Postfix: .ci/setup-mtas.sh, as root"
)]
fn postfix_rsa_and_ecdsa_certificates_side_by_side_are_both_repaired_and_served_whole() {
    // smtpd_tls_cert_file/key_file (RSA) beside smtpd_tls_eccert_file/eckey_file (ECDSA), each
    // naming a leaf alone: two slots. OpenSSL picks the certificate by the client's
    // signature_algorithms, so each is checked with a client that accepts only its kind.
    let chain = Chain::new(&[]);
    let env = TestEnv::new();
    mta::share_dir(env.dir.path());
    env.write("root.pem", &chain.root.pem);
    env.write("pool/int.pem", &chain.int.pem);
    let rsa = common::issue(
        &common::Spec::leaf("mail.example.test", common::Alg::Rsa2048(2)).serial(31),
        &chain.int,
    );
    let tls = format!(
        "smtpd_tls_cert_file = {}\nsmtpd_tls_key_file = {}\n\
         smtpd_tls_eccert_file = {}\nsmtpd_tls_eckey_file = {}\n",
        p(&env.write("tls/rsa.pem", &rsa.pem)),
        p(&env.write("tls/rsa.key", &rsa.key_pem)),
        p(&env.write("tls/ec.pem", &chain.leaf.pem)),
        p(&env.write("tls/ec.key", &chain.leaf.key_pem)),
    );
    let mut pf = Postfix::configure(&env.path("pf"), &[], &tls);
    let (inspected, doc) = inspect_json(&env, &["--postfix", &p(&pf.conf)]);
    assert_ne!(inspected.status, 0, "{}", inspected.stdout);
    for setting in ["smtpd_tls_cert_file", "smtpd_tls_eccert_file"] {
        let slot = slot_named(&doc, setting);
        assert!(
            codes(&slot).contains(&"missing-intermediate".to_string()),
            "{setting}: {slot}"
        );
    }

    let fixed = repair_postfix(&env, &pf, &["--intermediates", "pool"]);
    fixed.assert_status(0);
    for setting in ["smtpd_tls_cert_file", "smtpd_tls_eccert_file"] {
        let value = postconf_value(&pf, setting);
        assert!(value.contains(&p(&env.path("out"))), "{setting} = {value}");
    }
    let again = repair_postfix(&env, &pf, &["--intermediates", "pool"]);
    assert!(
        again.stdout.contains("Nothing to change."),
        "{}",
        again.stdout
    );

    pf.start_configured();
    let rsa_served = served_by(
        pf.port,
        &env,
        &["-sigalgs", "rsa_pss_rsae_sha256:RSA+SHA256"],
    );
    let ec_served = served_by(pf.port, &env, &["-sigalgs", "ECDSA+SHA256"]);
    assert_eq!(rsa_served.len(), 2, "the RSA leaf and the intermediate");
    assert_eq!(ec_served.len(), 2, "the ECDSA leaf and the intermediate");
    assert_ne!(rsa_served[0], ec_served[0], "two different leaves");
}
