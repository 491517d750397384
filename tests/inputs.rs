//! Input loading: PFX encodings and passwords, PEM robustness, DER and PKCS#7, directory walks, private keys, and keeping secrets out of output.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::*;
use serde_json::Value;

/// Evaluation time for every run (all test certificates are valid then).
const AT: &str = "2026-06-01T00:00:00Z";
/// The PFX password used throughout: spaces and punctuation, as real passwords have.
const PFX_PASSWORD: &str = "Tr0ub4dor&3 horse-staple!";
/// Generous limit for runs that must not hang (symlink loops, FIFOs).
const NO_HANG: Duration = Duration::from_secs(30);

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/// The test PKI with its root written to `trust/root.pem` (outside every scanned input).
fn pki(env: &TestEnv) -> Chain {
    let chain = Chain::new(&[]);
    env.write("trust/root.pem", &chain.root.pem);
    chain
}

/// `chainfix <sub>` pinned in time, offline, trusting only the generated root.
fn cf(env: &TestEnv, sub: &str) -> Command {
    let mut cmd = env.cmd();
    cmd.arg(sub)
        .args(["--at", AT, "--no-default-roots", "--offline", "--cache-dir"])
        .arg(env.path("cache"))
        .arg("--roots")
        .arg(env.path("trust/root.pem"));
    cmd
}

fn s(p: &Path) -> String {
    p.display().to_string()
}

fn results(v: &Value) -> Vec<Value> {
    v["results"]
        .as_array()
        .unwrap_or_else(|| panic!("no results array in {v:#}"))
        .clone()
}

fn errors(v: &Value) -> Vec<Value> {
    v["errors"]
        .as_array()
        .unwrap_or_else(|| panic!("no errors array in {v:#}"))
        .clone()
}

/// Asserts that the report's `errors` name `path`, fatal or not as `fatal` says, with a message
/// containing `says`.
fn assert_error(v: &Value, path: &Path, fatal: bool, says: &str) {
    assert!(
        errors(v).iter().any(|e| e["path"] == s(path)
            && e["fatal"] == fatal
            && e["message"].as_str().is_some_and(|m| m.contains(says))),
        "no error for {} ({says}): {v:#}",
        path.display()
    );
}

/// The single result for `subject` (e.g. "CN=mail.example.test"); panics if not exactly one.
fn result_for(v: &Value, subject: &str) -> Value {
    let found: Vec<Value> = results(v)
        .into_iter()
        .filter(|r| r["leaf"]["subject"] == subject)
        .collect();
    assert_eq!(
        found.len(),
        1,
        "expected exactly one result for {subject}:\n{v:#}"
    );
    found[0].clone()
}

fn codes(result: &Value) -> Vec<String> {
    result["problems"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|p| p["code"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn chain_subjects(result: &Value) -> Vec<String> {
    result["chain"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|c| c["subject"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

const LEAF: &str = "CN=mail.example.test";
const INT: &str = "CN=Chainfix Test Intermediate CA";
const ROOT: &str = "CN=Chainfix Test Root CA";

/// Asserts the leaf's chain was built completely: leaf, intermediate, root.
fn assert_full_chain(result: &Value) {
    assert_eq!(
        chain_subjects(result),
        vec![LEAF, INT, ROOT],
        "chain not complete:\n{result:#}"
    );
}

/// Asserts the public key of the private key file equals that of the certificate PEM.
fn assert_key_matches(env: &TestEnv, key: &Path, cert_pem: &str) {
    let cert = env.write("check/cert-for-key.pem", cert_pem);
    let from_key = env.openssl(&["pkey", "-in", &s(key), "-pubout"]);
    from_key.assert_status(0);
    let from_cert = env.openssl(&["x509", "-in", &s(&cert), "-noout", "-pubkey"]);
    from_cert.assert_status(0);
    assert!(from_key.stdout.contains("BEGIN PUBLIC KEY"), "{from_key:?}");
    assert_eq!(
        from_key.stdout,
        from_cert.stdout,
        "{} does not hold the certificate's key",
        key.display()
    );
}

fn mode_of(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o7777
}

/// Writes the leaf, its key and the intermediate under `pfxsrc/` and exports a PFX with
/// `openssl pkcs12 -export` plus `extra`; returns the PFX path.
fn make_pfx(env: &TestEnv, chain: &Chain, rel: &str, password: &str, extra: &[&str]) -> PathBuf {
    let leaf = env.write("pfxsrc/leaf.pem", &chain.leaf.pem);
    let key = env.write("pfxsrc/key.pem", &chain.leaf.key_pem);
    let int = env.write("pfxsrc/int.pem", &chain.int.pem);
    let out = env.path(rel);
    if let Some(parent) = out.parent() {
        std::fs::create_dir_all(parent).expect("creating PFX directory");
    }
    let passout = format!("pass:{password}");
    let mut args: Vec<String> = vec![
        "pkcs12".into(),
        "-export".into(),
        "-in".into(),
        s(&leaf),
        "-inkey".into(),
        s(&key),
        "-certfile".into(),
        s(&int),
        "-name".into(),
        "mail.example.test".into(),
        "-passout".into(),
        passout,
        "-out".into(),
        s(&out),
    ];
    args.extend(extra.iter().map(|a| a.to_string()));
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    env.openssl(&argv).assert_status(0);
    out
}

/// What `openssl pkcs12 -info` says about a PFX (to check the test made the encoding it meant).
fn pfx_info(env: &TestEnv, pfx: &Path, password: &str, legacy: bool) -> String {
    let passin = format!("pass:{password}");
    let mut args = vec!["pkcs12", "-in", pfx.to_str().expect("utf-8 path")];
    args.extend(["-info", "-noout", "-passin", &passin]);
    if legacy {
        args.push("-legacy");
    }
    let out = env.openssl(&args);
    out.assert_status(0);
    format!("{}{}", out.stdout, out.stderr)
}

/// Runs the whole PFX check for one encoding: password via env and via file, inspect and repair.
fn check_pfx(env: &TestEnv, chain: &Chain, pfx: &Path) {
    let pwfile = env.write("secrets/pfx-password.txt", format!("{PFX_PASSWORD}\n"));
    for (how, opts) in [
        (
            "env",
            vec!["--password-env".to_string(), "CHAINFIX_TEST_PFX_PW".into()],
        ),
        ("file", vec!["--password-file".to_string(), s(&pwfile)]),
    ] {
        // inspect --json
        let out = run(cf(env, "inspect")
            .args(&opts)
            .env("CHAINFIX_TEST_PFX_PW", PFX_PASSWORD)
            .arg("--json")
            .arg(pfx));
        out.assert_status(0);
        let v = out.json();
        assert!(errors(&v).is_empty(), "password via {how}: {v:#}");
        let r = result_for(&v, LEAF);
        assert_eq!(r["file"], s(pfx), "password via {how}");
        assert_eq!(
            r["key"],
            s(pfx),
            "password via {how}: the key in the PFX is not reported"
        );
        assert_eq!(r["status"], "ok", "password via {how}: {r:#}");
        assert_full_chain(&r);
        assert_eq!(r["chain"][1]["source"]["kind"], "input", "{r:#}");
        assert_eq!(r["chain"][1]["source"]["location"], s(pfx), "{r:#}");
        assert!(!codes(&r).contains(&"key-mismatch".to_string()), "{r:#}");

        // inspect, human report
        let out = run(cf(env, "inspect")
            .args(&opts)
            .env("CHAINFIX_TEST_PFX_PW", PFX_PASSWORD)
            .arg(pfx));
        out.assert_status(0);
        assert!(out.stdout.contains("mail.example.test"), "{}", out.stdout);
        assert!(
            out.stdout.contains(&format!("private key: {}", s(pfx))),
            "human report does not show the key:\n{}",
            out.stdout
        );

        // repair
        let dir = env.path(&format!("out-{how}"));
        let out = run(cf(env, "repair")
            .args(&opts)
            .env("CHAINFIX_TEST_PFX_PW", PFX_PASSWORD)
            .arg("--json")
            .arg("--out")
            .arg(&dir)
            .arg(pfx));
        out.assert_status(0);
        let v = out.json();
        let r = result_for(&v, LEAF);
        assert_eq!(r["key"], s(pfx));
        let privkey = dir.join("privkey.pem");
        assert!(privkey.is_file(), "privkey.pem not written: {v:#}");
        assert_eq!(mode_of(&privkey), 0o600, "privkey.pem mode");
        assert_key_matches(env, &privkey, &chain.leaf.pem);
        let full = std::fs::read_to_string(dir.join("fullchain.pem")).expect("fullchain.pem");
        assert_eq!(full, pem_bundle(&[&chain.leaf, &chain.int]));
    }
}

/// Long base64 lines of a PEM body (short final lines could match anything by chance).
fn secret_lines(pem: &str) -> Vec<String> {
    pem.lines()
        .map(str::trim)
        .filter(|l| !l.starts_with("-----") && !l.contains(':') && l.len() >= 20)
        .map(str::to_string)
        .collect()
}

fn assert_no_secrets(what: &str, out: &Output, lines: &[String], passwords: &[&str]) {
    for stream in [&out.stdout, &out.stderr] {
        for line in lines {
            assert!(
                !stream.contains(line.as_str()),
                "{what}: output contains private key material {line:?}:\n{stream}"
            );
        }
        for pw in passwords {
            assert!(
                !stream.contains(pw),
                "{what}: output contains the password {pw:?}:\n{stream}"
            );
        }
    }
}

/// A second leaf issued by the test intermediate, with pinned RSA key c.
fn other_leaf(chain: &Chain) -> Cert {
    issue(
        &Spec::leaf("other.example.test", Alg::Rsa2048(2)),
        &chain.int,
    )
}

/// Deterministic pseudo-random bytes (xorshift), for garbage files.
fn garbage(len: usize, seed: u64, first: u8) -> Vec<u8> {
    let mut x = seed | 1;
    let mut out = Vec::with_capacity(len);
    for _ in 0..len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.push((x >> 24) as u8);
    }
    out[0] = first;
    out
}

// ---------------------------------------------------------------------------------------------
// 1. PFX encodings
// ---------------------------------------------------------------------------------------------

#[test]
fn pfx_openssl3_default_aes256_pbes2_loads_with_env_or_file_password() {
    let env = TestEnv::new();
    let chain = pki(&env);
    let pfx = make_pfx(&env, &chain, "in/mail.pfx", PFX_PASSWORD, &[]);
    let info = pfx_info(&env, &pfx, PFX_PASSWORD, false);
    assert!(
        info.contains("AES-256-CBC"),
        "not the OpenSSL 3 default: {info}"
    );
    check_pfx(&env, &chain, &pfx);
}

#[test]
fn pfx_openssl_legacy_rc2_3des_sha1_mac_loads_with_env_or_file_password() {
    let env = TestEnv::new();
    let chain = pki(&env);
    let pfx = make_pfx(
        &env,
        &chain,
        "in/mail-legacy.p12",
        PFX_PASSWORD,
        &["-legacy"],
    );
    let info = pfx_info(&env, &pfx, PFX_PASSWORD, true);
    assert!(info.contains("RC2"), "not a -legacy PFX: {info}");
    assert!(info.contains("MAC: sha1"), "not a -legacy PFX: {info}");
    check_pfx(&env, &chain, &pfx);
}

#[test]
fn pfx_windows_style_3des_sha1_mac_loads_with_env_or_file_password() {
    let env = TestEnv::new();
    let chain = pki(&env);
    let pfx = make_pfx(
        &env,
        &chain,
        "in/mail-windows.pfx",
        PFX_PASSWORD,
        &[
            "-keypbe",
            "PBE-SHA1-3DES",
            "-certpbe",
            "PBE-SHA1-3DES",
            "-macalg",
            "sha1",
        ],
    );
    let info = pfx_info(&env, &pfx, PFX_PASSWORD, false);
    assert!(info.contains("3-KeyTripleDES"), "not 3DES: {info}");
    assert!(info.contains("MAC: sha1"), "not a SHA-1 MAC: {info}");
    check_pfx(&env, &chain, &pfx);
}

#[test]
fn pfx_found_by_scanning_a_directory_is_opened_with_the_password() {
    let env = TestEnv::new();
    let chain = pki(&env);
    let pfx = make_pfx(&env, &chain, "scan/sub/mail.pfx", PFX_PASSWORD, &[]);
    let out = run(cf(&env, "inspect")
        .args(["--password-env", "PFXPW", "--json"])
        .env("PFXPW", PFX_PASSWORD)
        .arg(env.path("scan")));
    out.assert_status(0);
    let v = out.json();
    let r = result_for(&v, LEAF);
    assert_eq!(r["file"], s(&pfx));
    assert_eq!(r["key"], s(&pfx));
    assert_full_chain(&r);
}

// ---------------------------------------------------------------------------------------------
// 2-3. PFX passwords
// ---------------------------------------------------------------------------------------------

#[test]
fn pfx_password_with_non_ascii_characters_works() {
    let env = TestEnv::new();
    let chain = pki(&env);
    let password = "Pässwörd-Grüße";
    for (rel, extra) in [
        ("in/uni.pfx", &[][..]),
        ("in/uni-legacy.pfx", &["-legacy"][..]),
    ] {
        let pfx = make_pfx(&env, &chain, rel, password, extra);
        let out = run(cf(&env, "inspect")
            .args(["--password-env", "PFXPW", "--json"])
            .env("PFXPW", password)
            .arg(&pfx));
        out.assert_status(0);
        assert_eq!(result_for(&out.json(), LEAF)["key"], s(&pfx), "{rel}");
    }
}

#[test]
fn pfx_password_file_written_on_windows_with_crlf_works() {
    let env = TestEnv::new();
    let chain = pki(&env);
    let pfx = make_pfx(&env, &chain, "in/mail.pfx", PFX_PASSWORD, &[]);
    let pwfile = env.write("pw.txt", format!("{PFX_PASSWORD}\r\n"));
    let out = run(cf(&env, "inspect")
        .arg("--json")
        .arg("--password-file")
        .arg(&pwfile)
        .arg(&pfx));
    out.assert_status(0);
    assert_eq!(result_for(&out.json(), LEAF)["key"], s(&pfx));
}

#[test]
fn pfx_without_mac_unencrypted_bags_or_without_key_load() {
    let env = TestEnv::new();
    let chain = pki(&env);
    let nomac = make_pfx(&env, &chain, "in/nomac.pfx", PFX_PASSWORD, &["-nomac"]);
    let plain = make_pfx(
        &env,
        &chain,
        "in/plain-bags.pfx",
        PFX_PASSWORD,
        &["-keypbe", "NONE", "-certpbe", "NONE"],
    );
    for pfx in [&nomac, &plain] {
        let out = run(cf(&env, "inspect")
            .args(["--password-env", "PFXPW", "--json"])
            .env("PFXPW", PFX_PASSWORD)
            .arg(pfx));
        out.assert_status(0);
        let r = result_for(&out.json(), LEAF);
        assert_eq!(r["key"], s(pfx));
        assert_full_chain(&r);
    }
    // Without a MAC a wrong password still has to be reported as such.
    let out = run(cf(&env, "inspect")
        .args(["--password-env", "PFXPW"])
        .env("PFXPW", "wrong")
        .arg(&nomac));
    out.assert_status(2);
    assert!(
        out.stderr.contains(&s(&nomac)) && out.stderr.contains("wrong password"),
        "{}",
        out.stderr
    );

    // Certificates only (exported with -nokeys): the chain is read, no key is claimed.
    let leaf = env.write("pfxsrc/chain.pem", pem_bundle(&[&chain.leaf, &chain.int]));
    let certs_only = env.path("in/certs-only.pfx");
    let passout = format!("pass:{PFX_PASSWORD}");
    env.openssl(&[
        "pkcs12",
        "-export",
        "-nokeys",
        "-in",
        &s(&leaf),
        "-passout",
        &passout,
        "-out",
        &s(&certs_only),
    ])
    .assert_status(0);
    let out = run(cf(&env, "inspect")
        .args(["--password-env", "PFXPW", "--json"])
        .env("PFXPW", PFX_PASSWORD)
        .arg(&certs_only));
    out.assert_status(0);
    let r = result_for(&out.json(), LEAF);
    assert!(r.get("key").is_none() || r["key"].is_null(), "{r:#}");
    assert_full_chain(&r);
}

#[test]
fn pfx_wrong_password_exits_2_naming_the_file_and_other_files_still_processed() {
    let env = TestEnv::new();
    let chain = pki(&env);
    let pfx = make_pfx(&env, &chain, "in/mail.pfx", PFX_PASSWORD, &[]);
    let other = other_leaf(&chain);
    let good = env.write("in/other-fullchain.pem", pem_bundle(&[&other, &chain.int]));

    let out = run(cf(&env, "inspect")
        .args(["--password-env", "PFXPW", "--json"])
        .env("PFXPW", "not the password")
        .arg(&pfx)
        .arg(&good));
    out.assert_status(2);
    let line = out
        .stderr
        .lines()
        .find(|l| l.contains(&s(&pfx)))
        .unwrap_or_else(|| panic!("stderr does not name {}:\n{}", pfx.display(), out.stderr));
    assert!(
        line.to_lowercase().contains("wrong password"),
        "stderr does not say the password is wrong:\n{}",
        out.stderr
    );
    let v = out.json();
    let errs = errors(&v);
    assert!(
        errs.iter()
            .any(|e| e["path"] == s(&pfx) && e["fatal"] == true),
        "JSON errors lack a fatal entry for the PFX: {v:#}"
    );
    let r = result_for(&v, "CN=other.example.test");
    assert_eq!(r["file"], s(&good));
    assert_eq!(chain_subjects(&r), vec!["CN=other.example.test", INT, ROOT]);
    assert!(
        results(&v).iter().all(|r| r["leaf"]["subject"] != LEAF),
        "a leaf from an unreadable PFX was reported: {v:#}"
    );

    // The same with the password from a file and the human report.
    let pwfile = env.write("wrong-pw.txt", "also wrong\n");
    let out = run(cf(&env, "inspect")
        .arg("--password-file")
        .arg(&pwfile)
        .arg(&pfx)
        .arg(&good));
    out.assert_status(2);
    assert!(out.stderr.contains(&s(&pfx)), "{}", out.stderr);
    assert!(
        out.stderr.to_lowercase().contains("wrong password"),
        "{}",
        out.stderr
    );
    assert!(out.stdout.contains("other.example.test"), "{}", out.stdout);
}

#[test]
fn pfx_with_empty_password_loads_without_password_options() {
    let env = TestEnv::new();
    let chain = pki(&env);
    let pfx = make_pfx(&env, &chain, "in/nopass.pfx", "", &[]);
    let out = run(cf(&env, "inspect").arg("--json").arg(&pfx));
    out.assert_status(0);
    let v = out.json();
    assert!(errors(&v).is_empty(), "{v:#}");
    let r = result_for(&v, LEAF);
    assert_eq!(r["key"], s(&pfx));
    assert_full_chain(&r);

    let dir = env.path("out");
    let out = run(cf(&env, "repair").arg("--out").arg(&dir).arg(&pfx));
    out.assert_status(0);
    let privkey = dir.join("privkey.pem");
    assert_eq!(mode_of(&privkey), 0o600);
    assert_key_matches(&env, &privkey, &chain.leaf.pem);
}

#[test]
fn pfx_with_empty_password_legacy_loads_without_password_options() {
    let env = TestEnv::new();
    let chain = pki(&env);
    let pfx = make_pfx(&env, &chain, "in/nopass-legacy.pfx", "", &["-legacy"]);
    let out = run(cf(&env, "inspect").arg("--json").arg(&pfx));
    out.assert_status(0);
    let r = result_for(&out.json(), LEAF);
    assert_eq!(r["key"], s(&pfx));
}

#[test]
fn pfx_password_protected_without_password_option_or_tty_exits_2_pointing_at_password_env() {
    let env = TestEnv::new();
    let chain = pki(&env);
    let pfx = make_pfx(&env, &chain, "in/mail.pfx", PFX_PASSWORD, &[]);
    // `run` gives the child a null stdin and piped stderr: no terminal to prompt on.
    let out = run(cf(&env, "inspect").arg(&pfx));
    out.assert_status(2);
    assert!(
        out.stderr.contains(&s(&pfx)),
        "stderr does not name the PFX:\n{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("--password-env"),
        "stderr does not mention --password-env:\n{}",
        out.stderr
    );
    assert!(
        !out.stderr.to_lowercase().contains("password for"),
        "chainfix tried to prompt without a terminal:\n{}",
        out.stderr
    );
}

// ---------------------------------------------------------------------------------------------
// 4. PEM robustness
// ---------------------------------------------------------------------------------------------

#[test]
fn pem_mixed_certs_and_keys_with_crlf_and_junk_between_blocks() {
    let env = TestEnv::new();
    let chain = pki(&env);
    let other = other_leaf(&chain);
    let text = format!(
        "Bag Attributes\n    friendlyName: mail\nsubject=CN = mail.example.test\n\n{}\
         some notes the admin left here\n{}{}\n\n# other site\n{}trailing junk, no newline at the end",
        chain.leaf.key_pem, chain.leaf.pem, other.pem, chain.int.pem
    );
    let text = format!("{text}\n{}", other.key_pem);
    let crlf = text.replace("\r\n", "\n").replace('\n', "\r\n");
    let bundle = env.write("in/everything.pem", crlf.as_bytes());

    let out = run(cf(&env, "inspect").arg("--json").arg(&bundle));
    assert_ne!(out.status, 2, "stderr:\n{}", out.stderr);
    let v = out.json();
    assert!(errors(&v).is_empty(), "{v:#}");
    assert_eq!(results(&v).len(), 2, "{v:#}");
    for subject in [LEAF, "CN=other.example.test"] {
        let r = result_for(&v, subject);
        assert_eq!(r["file"], s(&bundle));
        assert_eq!(r["key"], s(&bundle), "key for {subject} not found: {r:#}");
        assert_eq!(r["presented"].as_array().map(Vec::len), Some(3), "{r:#}");
        assert_eq!(chain_subjects(&r), vec![subject, INT, ROOT]);
        assert!(!codes(&r).contains(&"key-mismatch".to_string()), "{r:#}");
    }

    // repair writes both leaves with their own keys.
    let dir = env.path("out");
    let out = run(cf(&env, "repair").arg("--out").arg(&dir).arg(&bundle));
    out.assert_status(0);
    assert_key_matches(
        &env,
        &dir.join("mail.example.test/privkey.pem"),
        &chain.leaf.pem,
    );
    assert_key_matches(
        &env,
        &dir.join("other.example.test/privkey.pem"),
        &other.pem,
    );
}

#[test]
fn pem_saved_by_notepad_with_utf8_bom_and_crlf_is_read() {
    // Windows Notepad saves "UTF-8" text with a byte order mark (EF BB BF) and CRLF line ends.
    let env = TestEnv::new();
    let chain = pki(&env);
    let notepad = |text: &str| {
        let mut bytes = vec![0xef, 0xbb, 0xbf];
        bytes.extend(text.replace('\n', "\r\n").into_bytes());
        bytes
    };
    let full = env.write(
        "win/fullchain.pem",
        notepad(&pem_bundle(&[&chain.leaf, &chain.int])),
    );
    let key = env.write("win/private.key", notepad(&chain.leaf.key_pem));

    let out = run(cf(&env, "inspect").arg("--json").arg(&full));
    out.assert_status(0);
    let r = result_for(&out.json(), LEAF);
    assert_eq!(r["presented"].as_array().map(Vec::len), Some(2), "{r:#}");
    assert_full_chain(&r);

    let out = run(cf(&env, "inspect").arg("--json").arg(env.path("win")));
    out.assert_status(0);
    let r = result_for(&out.json(), LEAF);
    assert_eq!(
        r["key"],
        s(&key),
        "key saved with a BOM was not found: {r:#}"
    );
}

#[test]
fn pem_truncated_block_is_an_error_naming_the_file_and_earlier_blocks_are_used() {
    let env = TestEnv::new();
    let chain = pki(&env);
    let root = &chain.root.pem;
    let cut = &root[..root.len() / 2];
    let file = env.write(
        "in/fullchain.pem",
        format!("{}{}{cut}", chain.leaf.pem, chain.int.pem),
    );
    let out = run(cf(&env, "inspect").arg("--json").arg(&file));
    out.assert_status(2);
    let line = out
        .stderr
        .lines()
        .find(|l| l.contains(&s(&file)))
        .unwrap_or_else(|| panic!("stderr does not name the file:\n{}", out.stderr));
    assert!(line.contains("truncated"), "{}", out.stderr);
    let v = out.json();
    assert!(
        errors(&v)
            .iter()
            .any(|e| e["path"] == s(&file) && e["fatal"] == true),
        "{v:#}"
    );
    let r = result_for(&v, LEAF);
    assert_eq!(r["presented"].as_array().map(Vec::len), Some(2), "{r:#}");
    assert_full_chain(&r);
    assert_eq!(r["chain"][1]["source"]["location"], s(&file));
}

#[test]
fn pem_cut_in_the_middle_of_a_base64_line_is_reported_truncated() {
    let env = TestEnv::new();
    let chain = pki(&env);
    let int = &chain.int.pem;
    // Cut inside a line (not at a line end), as a failed copy leaves it.
    let mut at = int.len() / 2;
    while int.as_bytes()[at] == b'\n' || int.as_bytes()[at - 1] == b'\n' {
        at += 1;
    }
    let file = env.write(
        "in/fullchain.pem",
        format!("{}{}", chain.leaf.pem, &int[..at]),
    );
    let out = run(cf(&env, "inspect").arg(&file));
    out.assert_status(2);
    assert!(
        out.stderr
            .lines()
            .any(|l| l.contains(&s(&file)) && l.contains("truncated")),
        "{}",
        out.stderr
    );
    assert!(out.stdout.contains("mail.example.test"), "{}", out.stdout);
}

#[test]
fn garbage_binary_named_cert_pem_is_an_error_naming_it_and_other_files_still_processed() {
    let env = TestEnv::new();
    let chain = pki(&env);
    let good = env.write("in/fullchain.pem", pem_bundle(&[&chain.leaf, &chain.int]));
    for (i, first) in [0x30u8, 0x89].into_iter().enumerate() {
        let junk = env.write(
            &format!("junk{i}/cert.pem"),
            garbage(3000, 77 + i as u64, first),
        );
        // Named on the command line.
        let out = run(cf(&env, "inspect").arg("--json").arg(&junk).arg(&good));
        out.assert_status(2);
        assert!(
            out.stderr.contains(&format!("chainfix: {}", s(&junk))),
            "stderr does not name {}:\n{}",
            junk.display(),
            out.stderr
        );
        let v = out.json();
        assert!(errors(&v).iter().any(|e| e["path"] == s(&junk)), "{v:#}");
        assert_full_chain(&result_for(&v, LEAF));

        // Found in a scanned directory: a .pem file is expected to hold certificates.
        let out = run(cf(&env, "inspect")
            .arg("--json")
            .arg(env.path(&format!("junk{i}")))
            .arg(&good));
        out.assert_status(2);
        assert!(out.stderr.contains(&s(&junk)), "{}", out.stderr);
        assert_full_chain(&result_for(&out.json(), LEAF));
    }
}

#[test]
fn truncated_der_p7b_and_pfx_files_are_errors_naming_them() {
    let env = TestEnv::new();
    let chain = pki(&env);
    let other = other_leaf(&chain);
    let good = env.write("in/other.pem", pem_bundle(&[&other, &chain.int]));
    let pfx = make_pfx(&env, &chain, "src/mail.pfx", PFX_PASSWORD, &[]);
    let p7b = crl2pkcs7(&env, &chain, "src/chain.p7b", "DER");
    let half = |b: Vec<u8>| b[..b.len() / 2].to_vec();
    let cut_der = env.write("in/mail.der", half(chain.leaf.der.clone()));
    let cut_p7b = env.write("in/chain.p7b", half(std::fs::read(&p7b).expect("p7b")));
    let cut_pfx = env.write("in/mail.pfx", half(std::fs::read(&pfx).expect("pfx")));
    for bad in [&cut_der, &cut_p7b, &cut_pfx] {
        let out = run(cf(&env, "inspect")
            .args(["--password-env", "PFXPW", "--json"])
            .env("PFXPW", PFX_PASSWORD)
            .arg(bad)
            .arg(&good));
        out.assert_status(2);
        assert!(
            out.stderr.contains(&format!("chainfix: {}", s(bad))),
            "stderr does not name {}:\n{}",
            bad.display(),
            out.stderr
        );
        let v = out.json();
        assert!(
            errors(&v)
                .iter()
                .any(|e| e["path"] == s(bad) && e["fatal"] == true),
            "{v:#}"
        );
        result_for(&v, "CN=other.example.test");
    }
}

#[test]
fn unrelated_files_in_a_scanned_directory_are_skipped_quietly() {
    let env = TestEnv::new();
    let chain = pki(&env);
    env.write("etc/fullchain.pem", pem_bundle(&[&chain.leaf, &chain.int]));
    env.write("etc/notes.txt", garbage(4096, 5, 0x30));
    env.write("etc/blob.bin", garbage(4096, 9, 0x00));
    env.write(
        "etc/openssl.cnf",
        "[req]\ndistinguished_name = dn\n[dn]\nCN = mail.example.test\n",
    );
    env.write("etc/README", "These certificates are managed by certbot.\n");
    env.write(
        "etc/postfix/main.cf",
        "smtpd_tls_chain_files = /etc/ssl/mail/fullchain.pem\n",
    );
    env.write("etc/.hidden-state", [0u8, 1, 2, 3, 255]);
    env.write("etc/empty.txt", "");

    for json in [false, true] {
        let mut cmd = cf(&env, "inspect");
        if json {
            cmd.arg("--json");
        }
        let out = run(cmd.arg(env.path("etc")));
        out.assert_status(0);
        for name in [
            "notes.txt",
            "blob.bin",
            "openssl.cnf",
            "README",
            "main.cf",
            ".hidden-state",
            "empty.txt",
        ] {
            assert!(
                !out.stderr.contains(name) && !out.stdout.contains(name),
                "{name} was not skipped quietly:\n--- stdout ---\n{}\n--- stderr ---\n{}",
                out.stdout,
                out.stderr
            );
        }
        if json {
            let v = out.json();
            assert!(errors(&v).is_empty(), "{v:#}");
            assert_full_chain(&result_for(&v, LEAF));
        }
    }
}

#[test]
fn dh_parameters_pem_in_a_scanned_directory_is_skipped_quietly() {
    let env = TestEnv::new();
    let chain = pki(&env);
    env.write("etc/fullchain.pem", pem_bundle(&[&chain.leaf, &chain.int]));
    let dh = env.path("etc/dh2048.pem");
    env.openssl(&[
        "genpkey",
        "-genparam",
        "-algorithm",
        "DH",
        "-pkeyopt",
        "group:ffdhe2048",
        "-out",
        &s(&dh),
    ])
    .assert_status(0);
    let ec = env.path("etc/ecparams.pem");
    env.openssl(&["ecparam", "-name", "prime256v1", "-out", &s(&ec)])
        .assert_status(0);
    let dh_text = std::fs::read_to_string(&dh).expect("dh params");
    assert!(
        dh_text.contains("-----BEGIN DH PARAMETERS-----"),
        "{dh_text}"
    );

    let out = run(cf(&env, "inspect").arg("--json").arg(env.path("etc")));
    out.assert_status(0);
    assert!(
        !out.stderr.contains("dh2048") && !out.stderr.contains("ecparams"),
        "{}",
        out.stderr
    );
    let v = out.json();
    assert!(errors(&v).is_empty(), "{v:#}");
    assert_full_chain(&result_for(&v, LEAF));
}

#[test]
fn haproxy_style_combined_pem_with_dh_parameters_loads_cert_chain_and_key() {
    let env = TestEnv::new();
    let chain = pki(&env);
    let dh = env.path("dh.pem");
    env.openssl(&[
        "genpkey",
        "-genparam",
        "-algorithm",
        "DH",
        "-pkeyopt",
        "group:ffdhe2048",
        "-out",
        &s(&dh),
    ])
    .assert_status(0);
    let dh_text = std::fs::read_to_string(&dh).expect("dh params");
    let combined = env.write(
        "haproxy/mail.pem",
        format!(
            "{}{}{}{dh_text}",
            chain.leaf.pem, chain.int.pem, chain.leaf.key_pem
        ),
    );
    let out = run(cf(&env, "inspect").arg("--json").arg(&combined));
    out.assert_status(0);
    let v = out.json();
    assert!(errors(&v).is_empty(), "{v:#}");
    let r = result_for(&v, LEAF);
    assert_eq!(r["key"], s(&combined));
    assert_full_chain(&r);
}

// ---------------------------------------------------------------------------------------------
// 5. DER and PKCS#7
// ---------------------------------------------------------------------------------------------

#[test]
fn der_certificate_files_are_read() {
    let env = TestEnv::new();
    let chain = pki(&env);
    let leaf = env.write("in/mail.crt", &chain.leaf.der);
    let int = env.write("in/intermediate.cer", &chain.int.der);
    let out = run(cf(&env, "inspect").arg("--json").arg(&leaf).arg(&int));
    // The leaf's own file presents only the leaf: repairable, so inspect says 1.
    out.assert_status(1);
    let v = out.json();
    assert!(errors(&v).is_empty(), "{v:#}");
    let r = result_for(&v, LEAF);
    assert_eq!(r["file"], s(&leaf));
    assert_eq!(r["status"], "repairable", "{r:#}");
    assert!(
        codes(&r).contains(&"missing-intermediate".to_string()),
        "{r:#}"
    );
    assert_full_chain(&r);
    assert_eq!(r["chain"][1]["source"]["location"], s(&int));

    // A DER file found by scanning a directory, with an unusual extension.
    env.write("scan/leaf.der", &chain.leaf.der);
    env.write("scan/int.binary", &chain.int.der);
    let out = run(cf(&env, "inspect").arg("--json").arg(env.path("scan")));
    assert_ne!(out.status, 2, "{}", out.stderr);
    assert_full_chain(&result_for(&out.json(), LEAF));

    let dir = env.path("out");
    let out = run(cf(&env, "repair")
        .arg("--out")
        .arg(&dir)
        .arg(&leaf)
        .arg(&int));
    out.assert_status(0);
    let full = std::fs::read_to_string(dir.join("fullchain.pem")).expect("fullchain.pem");
    assert_eq!(full, pem_bundle(&[&chain.leaf, &chain.int]));
}

fn crl2pkcs7(env: &TestEnv, chain: &Chain, out_rel: &str, outform: &str) -> PathBuf {
    let src = env.write("p7src/chain.pem", pem_bundle(&[&chain.leaf, &chain.int]));
    let out = env.path(out_rel);
    if let Some(parent) = out.parent() {
        std::fs::create_dir_all(parent).expect("mkdir");
    }
    env.openssl(&[
        "crl2pkcs7",
        "-nocrl",
        "-certfile",
        &s(&src),
        "-outform",
        outform,
        "-out",
        &s(&out),
    ])
    .assert_status(0);
    out
}

#[test]
fn pkcs7_p7b_in_der_is_read() {
    let env = TestEnv::new();
    let chain = pki(&env);
    let p7b = crl2pkcs7(&env, &chain, "in/chain.p7b", "DER");
    assert_eq!(std::fs::read(&p7b).expect("p7b").first(), Some(&0x30));
    let out = run(cf(&env, "inspect").arg("--json").arg(&p7b));
    out.assert_status(0);
    let v = out.json();
    assert!(errors(&v).is_empty(), "{v:#}");
    let r = result_for(&v, LEAF);
    assert_eq!(r["file"], s(&p7b));
    assert_eq!(r["presented"].as_array().map(Vec::len), Some(2), "{r:#}");
    assert_eq!(r["status"], "ok", "{r:#}");
    assert_full_chain(&r);
}

#[test]
fn pkcs7_p7b_in_pem_is_read() {
    let env = TestEnv::new();
    let chain = pki(&env);
    let p7b = crl2pkcs7(&env, &chain, "in/chain-pem.p7b", "PEM");
    let text = std::fs::read_to_string(&p7b).expect("p7b");
    assert!(text.starts_with("-----BEGIN PKCS7-----"), "{text}");
    let out = run(cf(&env, "inspect").arg("--json").arg(&p7b));
    out.assert_status(0);
    let v = out.json();
    assert!(errors(&v).is_empty(), "{v:#}");
    let r = result_for(&v, LEAF);
    assert_eq!(r["presented"].as_array().map(Vec::len), Some(2), "{r:#}");
    assert_full_chain(&r);

    // Also when found by scanning a directory.
    let out = run(cf(&env, "inspect").arg("--json").arg(env.path("in")));
    out.assert_status(0);
    assert_full_chain(&result_for(&out.json(), LEAF));
}

#[test]
fn pkcs7_with_indefinite_length_ber_is_read() {
    let env = TestEnv::new();
    let chain = pki(&env);
    let leaf = env.write("p7src/leaf.pem", &chain.leaf.pem);
    let key = env.write("p7src/key.pem", &chain.leaf.key_pem);
    let int = env.write("p7src/int.pem", &chain.int.pem);
    let msg = env.write("p7src/msg.txt", "hello\n");
    let p7b = env.path("in/signed.p7b");
    std::fs::create_dir_all(env.path("in")).expect("mkdir");
    env.openssl(&[
        "cms",
        "-sign",
        "-stream",
        "-nodetach",
        "-in",
        &s(&msg),
        "-signer",
        &s(&leaf),
        "-inkey",
        &s(&key),
        "-certfile",
        &s(&int),
        "-outform",
        "DER",
        "-out",
        &s(&p7b),
    ])
    .assert_status(0);
    let bytes = std::fs::read(&p7b).expect("p7b");
    assert_eq!(
        &bytes[..2],
        &[0x30, 0x80],
        "openssl did not write indefinite-length BER"
    );

    let out = run(cf(&env, "inspect").arg("--json").arg(&p7b));
    assert_ne!(out.status, 2, "stderr:\n{}", out.stderr);
    let v = out.json();
    assert!(errors(&v).is_empty(), "{v:#}");
    let r = result_for(&v, LEAF);
    assert_eq!(r["presented"].as_array().map(Vec::len), Some(2), "{r:#}");
    assert_full_chain(&r);
}

// ---------------------------------------------------------------------------------------------
// 6. Directory recursion
// ---------------------------------------------------------------------------------------------

#[test]
fn nested_directories_are_scanned_recursively() {
    let env = TestEnv::new();
    let chain = pki(&env);
    let leaf = env.write("tree/a/b/c/d/mail.pem", &chain.leaf.pem);
    let key = env.write("tree/a/b/c/d/mail.key", &chain.leaf.key_pem);
    let int = env.write("tree/x/y/intermediate.pem", &chain.int.pem);
    let out = run(cf(&env, "inspect").arg("--json").arg(env.path("tree")));
    assert_ne!(out.status, 2, "{}", out.stderr);
    let v = out.json();
    assert!(errors(&v).is_empty(), "{v:#}");
    let r = result_for(&v, LEAF);
    assert_eq!(r["file"], s(&leaf));
    assert_eq!(r["key"], s(&key));
    assert_full_chain(&r);
    assert_eq!(r["chain"][1]["source"]["location"], s(&int));
}

#[test]
fn symlink_loop_does_not_hang_and_certs_are_found_once() {
    let env = TestEnv::new();
    let chain = pki(&env);
    let full = env.write("scan/fullchain.pem", pem_bundle(&[&chain.leaf, &chain.int]));
    std::fs::create_dir_all(env.path("scan/sub")).expect("mkdir");
    std::os::unix::fs::symlink("..", env.path("scan/sub/up")).expect("symlink");
    std::os::unix::fs::symlink(".", env.path("scan/self")).expect("symlink");

    let out = run_with_timeout(
        cf(&env, "inspect").arg("--json").arg(env.path("scan")),
        NO_HANG,
    );
    out.assert_status(0);
    let v = out.json();
    assert_eq!(results(&v).len(), 1, "{v:#}");
    let r = result_for(&v, LEAF);
    assert_eq!(r["file"], s(&full));
    assert_eq!(r["presented"].as_array().map(Vec::len), Some(2), "{r:#}");
    assert!(
        !codes(&r).contains(&"duplicate-certificate".to_string()),
        "{r:#}"
    );
    assert_full_chain(&r);
    assert!(
        errors(&v).iter().all(|e| e["fatal"] == false),
        "a symlink loop is not a fatal error: {v:#}"
    );

    let dir = env.path("out");
    let out = run_with_timeout(
        cf(&env, "repair")
            .arg("--out")
            .arg(&dir)
            .arg(env.path("scan")),
        NO_HANG,
    );
    out.assert_status(0);
    assert!(dir.join("fullchain.pem").is_file());
}

#[test]
fn links_between_levels_do_not_make_the_walk_exponential() {
    // Two links from each level to the next: 2^30 paths to the last level, one directory each.
    let env = TestEnv::new();
    let chain = pki(&env);
    const LEVELS: usize = 30;
    for i in 0..=LEVELS {
        std::fs::create_dir_all(env.path(&format!("scan/L{i}"))).expect("mkdir");
    }
    for i in 0..LEVELS {
        for name in ["a", "b"] {
            std::os::unix::fs::symlink(
                format!("../L{}", i + 1),
                env.path(&format!("scan/L{i}/{name}")),
            )
            .expect("symlink");
        }
    }
    let full = env.write(
        &format!("scan/L{LEVELS}/fullchain.pem"),
        pem_bundle(&[&chain.leaf, &chain.int]),
    );
    let out = run_with_timeout(
        cf(&env, "inspect").arg("--json").arg(env.path("scan/L0")),
        NO_HANG,
    );
    out.assert_status(0);
    let v = out.json();
    assert_eq!(results(&v).len(), 1, "{v:#}");
    let r = result_for(&v, LEAF);
    assert_eq!(
        r["file"],
        s(&env.path(
            "scan/L0/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/fullchain.pem"
        )),
        "first path in walk order: {r:#}"
    );
    assert!(full.is_file());
    assert_full_chain(&r);
}

#[test]
fn files_nested_past_the_depth_limit_are_an_error_naming_the_directory() {
    let env = TestEnv::new();
    let chain = pki(&env);
    env.write("scan/fullchain.pem", pem_bundle(&[&chain.leaf, &chain.int]));
    let deep = format!("scan/{}", vec!["d"; 70].join("/"));
    env.write(&format!("{deep}/other.pem"), &other_leaf(&chain).pem);
    let out = run(cf(&env, "inspect").arg("--json").arg(env.path("scan")));
    out.assert_status(2);
    let v = out.json();
    let limit = format!("scan/{}", vec!["d"; 64].join("/"));
    assert_error(&v, &env.path(&limit), true, "more than 64 directories deep");
    assert_full_chain(&result_for(&v, LEAF));
}

#[test]
fn unreadable_directory_is_a_fatal_error_and_the_rest_is_still_read() {
    let env = TestEnv::new();
    let chain = pki(&env);
    env.write("scan/fullchain.pem", pem_bundle(&[&chain.leaf, &chain.int]));
    env.write("scan/locked/other.pem", &other_leaf(&chain).pem);
    // Root reads any directory: run as nobody then, with the test tree open to it.
    let mut cmd = cf(&env, "inspect");
    cmd.arg("--json").arg(env.path("scan"));
    let mut cmd = unprivileged(&cmd, &env.path(""));
    std::fs::set_permissions(
        env.path("scan/locked"),
        std::fs::Permissions::from_mode(0o000),
    )
    .expect("chmod");
    let out = run(&mut cmd);
    std::fs::set_permissions(
        env.path("scan/locked"),
        std::fs::Permissions::from_mode(0o755),
    )
    .expect("chmod back");
    out.assert_status(2);
    let v = out.json();
    assert_error(&v, &env.path("scan/locked"), true, "Permission denied");
    assert_full_chain(&result_for(&v, LEAF));
}

#[test]
fn a_key_left_by_an_earlier_run_that_no_longer_matches_is_reported() {
    let env = TestEnv::new();
    let chain = pki(&env);
    env.write("in/fullchain.pem", pem_bundle(&[&chain.leaf, &chain.int]));
    env.write("in/privkey.pem", &chain.leaf.key_pem);
    let repair = || {
        run(cf(&env, "repair")
            .args(["--json", "--emit", "pem,exim", "--out"])
            .arg(env.path("out"))
            .arg(env.path("in")))
    };
    repair().assert_status(0);
    assert!(env.path("out/privkey.pem").is_file());

    // The key is gone from the inputs, the certificate unchanged: the old key still fits.
    std::fs::remove_file(env.path("in/privkey.pem")).expect("rm");
    repair().assert_status(0);

    // A renewed certificate under a new key, whose key was not found.
    let renewed = issue(
        &Spec::leaf("mail.example.test", Alg::Rsa2048(2)).serial(71),
        &chain.int,
    );
    env.write("in/fullchain.pem", pem_bundle(&[&renewed, &chain.int]));
    let out = repair();
    out.assert_status(2);
    let v = out.json();
    for rel in ["out/privkey.pem", "out/exim/privkey.pem"] {
        assert_error(&v, &env.path(rel), true, "earlier run");
        assert_eq!(
            env.read(rel),
            chain.leaf.key_pem.as_bytes(),
            "left as it was"
        );
    }
    assert_eq!(
        String::from_utf8_lossy(&env.read("out/fullchain.pem")),
        pem_bundle(&[&renewed, &chain.int])
    );
}

#[test]
fn an_exim_group_that_does_not_exist_is_an_error_not_an_unreadable_key() {
    let env = TestEnv::new();
    let chain = pki(&env);
    env.write("in/fullchain.pem", pem_bundle(&[&chain.leaf, &chain.int]));
    env.write("in/privkey.pem", &chain.leaf.key_pem);
    let out = run(cf(&env, "repair")
        .args(["--exim-group", "no-such-group-here", "--out"])
        .arg(env.path("out"))
        .arg(env.path("in")));
    out.assert_status(2);
    assert!(
        out.stderr.contains("--exim-group no-such-group-here"),
        "{}",
        out.stderr
    );
    assert!(!env.path("out").exists(), "nothing written");
    // Irrelevant when no Exim files are asked for.
    let out = run(cf(&env, "repair")
        .args([
            "--exim-group",
            "no-such-group-here",
            "--emit",
            "pem",
            "--out",
        ])
        .arg(env.path("out"))
        .arg(env.path("in")));
    out.assert_status(0);
}

#[test]
fn a_user_who_may_not_set_the_exim_group_gets_an_owner_only_key_and_a_note() {
    // Group root exists everywhere, and nobody is not in it.
    let env = TestEnv::new();
    let chain = pki(&env);
    env.write("in/fullchain.pem", pem_bundle(&[&chain.leaf, &chain.int]));
    env.write("in/privkey.pem", &chain.leaf.key_pem);
    let mut cmd = cf(&env, "repair");
    cmd.args([
        "--json",
        "--emit",
        "pem,exim",
        "--exim-group",
        "root",
        "--out",
    ])
    .arg(env.path("out"))
    .arg(env.path("in"));
    let mut cmd = unprivileged(&cmd, &env.path(""));
    for round in ["first", "second"] {
        let out = run(&mut cmd);
        out.assert_status(0);
        let v = out.json();
        let key = env.path("out/exim/privkey.pem");
        assert_error(&v, &key, false, "chgrp root");
        assert_eq!(mode_of(&key), 0o600, "{round}");
        let r = &results(&v)[0];
        let entry = r["files"]
            .as_array()
            .and_then(|f| f.iter().find(|f| f["path"] == s(&key)))
            .unwrap_or_else(|| panic!("{r:#}"));
        assert_eq!(entry["mode"], "0600", "{round}");
        if round == "second" {
            assert_eq!(r["changed"], false, "idempotent: {r:#}");
        }
    }
}

#[test]
fn output_directories_are_reachable_by_the_mta_whatever_the_umask() {
    let env = TestEnv::new();
    let chain = pki(&env);
    env.write("in/fullchain.pem", pem_bundle(&[&chain.leaf, &chain.int]));
    env.write("in/privkey.pem", &chain.leaf.key_pem);
    let out_dir = env.path("new/out");
    let cmd = {
        let mut c = cf(&env, "repair");
        c.arg("--out").arg(&out_dir).arg(env.path("in"));
        c
    };
    let mut sh = wrapped(&cmd, "sh", &["-c", "umask 077 && exec \"$0\" \"$@\""]);
    run(&mut sh).assert_status(0);
    for dir in ["new", "new/out", "new/out/exim", "new/out/postfix"] {
        assert_eq!(mode_of(&env.path(dir)), 0o755, "{dir}");
    }
    assert_eq!(mode_of(&out_dir.join("privkey.pem")), 0o600);
    assert_eq!(mode_of(&out_dir.join("exim/privkey.pem")), 0o640);
}

#[test]
fn repair_leaves_an_existing_output_it_cannot_read_alone_and_says_so() {
    let env = TestEnv::new();
    let chain = pki(&env);
    env.write("in/fullchain.pem", pem_bundle(&[&chain.leaf, &chain.int]));
    let old = env.write("out/fullchain.pem", "OLD CONTENT\n");
    let mut cmd = cf(&env, "repair");
    cmd.args(["--json", "--emit", "pem", "--backup", "--out"])
        .arg(env.path("out"))
        .arg(env.path("in"));
    let mut cmd = unprivileged(&cmd, &env.path(""));
    std::fs::set_permissions(&old, std::fs::Permissions::from_mode(0o000)).expect("chmod");
    let out = run(&mut cmd);
    std::fs::set_permissions(&old, std::fs::Permissions::from_mode(0o644)).expect("chmod back");
    out.assert_status(2);
    assert!(
        out.stderr.contains("fullchain.pem") && out.stderr.contains("cannot write"),
        "{}",
        out.stderr
    );
    // The JSON says so too, next to the files that were written.
    let v = out.json();
    assert_error(&v, &old, true, "cannot write: ");
    assert_eq!(env.read("out/fullchain.pem"), b"OLD CONTENT\n");
}

#[test]
fn repair_with_its_output_inside_the_scanned_directory_reads_only_the_inputs() {
    // The README's layout: /etc/postfix/tls holds the inputs, /etc/postfix/tls/chainfix the output.
    let env = TestEnv::new();
    let chain = pki(&env);
    env.write("tls/cert.pem", &chain.leaf.pem);
    env.write("tls/chain.pem", &chain.int.pem);
    let out_dir = env.path("tls/chainfix");
    let repair = |extra: &[&str]| {
        let out = run(cf(&env, "repair")
            .arg("--json")
            .arg("--emit")
            .arg("pem")
            .arg("--out")
            .arg(&out_dir)
            .args(extra)
            .arg(env.path("tls")));
        let v = out.json();
        (out, v)
    };
    let (out, _) = repair(&["--backup"]);
    out.assert_status(0);
    let (out, v) = repair(&["--backup"]);
    out.assert_status(0);
    assert_eq!(
        results(&v)[0]["changed"],
        false,
        "the second run changes nothing: {v:#}"
    );

    // A renewed certificate (another key, same name) replaces the old one in the output.
    let renewed = issue(
        &Spec::leaf("mail.example.test", Alg::Rsa2048(2)).serial(70),
        &chain.int,
    );
    env.write("tls/cert.pem", &renewed.pem);
    let (out, v) = repair(&["--backup"]);
    out.assert_status(0);
    assert_eq!(results(&v).len(), 1, "only the renewed leaf: {v:#}");
    let written = String::from_utf8_lossy(&env.read("tls/chainfix/fullchain.pem")).to_string();
    assert_eq!(written, pem_bundle(&[&renewed, &chain.int]));
}

#[test]
fn symlink_to_a_file_counts_once() {
    let env = TestEnv::new();
    let chain = pki(&env);
    env.write(
        "live/archive/fullchain1.pem",
        pem_bundle(&[&chain.leaf, &chain.int]),
    );
    env.write("live/archive/privkey1.pem", &chain.leaf.key_pem);
    std::fs::create_dir_all(env.path("live/current")).expect("mkdir");
    std::os::unix::fs::symlink(
        "../archive/fullchain1.pem",
        env.path("live/current/fullchain.pem"),
    )
    .expect("symlink");
    std::os::unix::fs::symlink(
        "../archive/privkey1.pem",
        env.path("live/current/privkey.pem"),
    )
    .expect("symlink");

    let out = run(cf(&env, "inspect").arg("--json").arg(env.path("live")));
    out.assert_status(0);
    let v = out.json();
    assert!(errors(&v).is_empty(), "{v:#}");
    assert_eq!(results(&v).len(), 1, "{v:#}");
    let r = result_for(&v, LEAF);
    assert_eq!(r["presented"].as_array().map(Vec::len), Some(2), "{r:#}");
    assert!(
        !codes(&r).contains(&"duplicate-certificate".to_string()),
        "{r:#}"
    );
    assert!(r["key"].is_string(), "{r:#}");
}

#[test]
fn hard_link_to_a_file_counts_once_under_the_first_path() {
    let env = TestEnv::new();
    let chain = pki(&env);
    let first = env.write("a/fullchain.pem", pem_bundle(&[&chain.leaf, &chain.int]));
    std::fs::create_dir_all(env.path("b")).expect("mkdir");
    std::fs::hard_link(&first, env.path("b/fullchain.pem")).expect("hard link");

    let out = run(cf(&env, "inspect")
        .arg("--json")
        .arg(env.path("a"))
        .arg(env.path("b")));
    out.assert_status(0);
    let v = out.json();
    assert_eq!(results(&v).len(), 1, "{v:#}");
    let r = result_for(&v, LEAF);
    assert!(
        !codes(&r).contains(&"duplicate-certificate".to_string()),
        "the file was read twice: {r:#}"
    );
    let file = r["file"].as_str().unwrap_or_default();
    assert!(file.ends_with("/a/fullchain.pem"), "{r:#}");
}

#[test]
fn unreadable_file_named_twice_is_one_error() {
    let env = TestEnv::new();
    pki(&env);
    let missing = env.path("nothing-here.pem");
    let out = run(cf(&env, "inspect")
        .arg("--json")
        .arg(&missing)
        .arg(&missing));
    out.assert_status(2);
    let v = out.json();
    assert_eq!(errors(&v).len(), 1, "{v:#}");
}

#[test]
fn file_named_and_also_inside_a_named_directory_counts_once() {
    let env = TestEnv::new();
    let chain = pki(&env);
    let full = env.write("ssl/fullchain.pem", pem_bundle(&[&chain.leaf, &chain.int]));
    let dir = env.path("ssl");
    for (order, args) in [
        ("file, then its directory", [&full, &dir]),
        ("directory, then a file in it", [&dir, &full]),
        ("the same file twice", [&full, &full]),
    ] {
        let out = run(cf(&env, "inspect").arg("--json").args(args));
        let v = out.json();
        assert_eq!(results(&v).len(), 1, "{order}: {v:#}");
        let r = result_for(&v, LEAF);
        assert_eq!(
            r["presented"].as_array().map(Vec::len),
            Some(2),
            "{order}: the file was read twice: {r:#}"
        );
        assert!(
            !codes(&r).contains(&"duplicate-certificate".to_string()),
            "{order}: the file was read twice: {r:#}"
        );
        out.assert_status(0);
    }
}

#[test]
fn nonexistent_path_on_command_line_exits_2_naming_it() {
    let env = TestEnv::new();
    let chain = pki(&env);
    let good = env.write("in/fullchain.pem", pem_bundle(&[&chain.leaf, &chain.int]));
    let missing = env.path("in/no-such-file.pem");
    let missing_dir = env.path("no-such-dir");
    let out = run(cf(&env, "inspect")
        .arg("--json")
        .arg(&missing)
        .arg(&missing_dir)
        .arg(&good));
    out.assert_status(2);
    for p in [&missing, &missing_dir] {
        assert!(
            out.stderr.contains(&format!("chainfix: {}", s(p))),
            "stderr does not name {}:\n{}",
            p.display(),
            out.stderr
        );
    }
    let v = out.json();
    let errs = errors(&v);
    for p in [&missing, &missing_dir] {
        assert!(
            errs.iter().any(|e| e["path"] == s(p) && e["fatal"] == true),
            "{v:#}"
        );
    }
    assert_full_chain(&result_for(&v, LEAF));
}

#[test]
fn fifo_inside_a_scanned_directory_is_skipped_without_hanging() {
    let env = TestEnv::new();
    let chain = pki(&env);
    env.write("scan/fullchain.pem", pem_bundle(&[&chain.leaf, &chain.int]));
    for name in ["pipe", "cert.pem"] {
        let fifo = env.path(&format!("scan/fifo/{name}"));
        std::fs::create_dir_all(env.path("scan/fifo")).expect("mkdir");
        let made = run(Command::new("mkfifo").arg(&fifo));
        made.assert_status(0);
    }
    let out = run_with_timeout(
        cf(&env, "inspect").arg("--json").arg(env.path("scan")),
        NO_HANG,
    );
    out.assert_status(0);
    let v = out.json();
    assert!(
        errors(&v).iter().all(|e| e["fatal"] == false),
        "a FIFO is not a fatal error: {v:#}"
    );
    assert_full_chain(&result_for(&v, LEAF));
}

#[test]
fn fifo_named_on_the_command_line_with_nothing_writing_is_an_error_not_a_hang() {
    let env = TestEnv::new();
    let chain = pki(&env);
    env.write("fullchain.pem", pem_bundle(&[&chain.leaf, &chain.int]));
    let fifo = env.path("fifo.pem");
    run(Command::new("mkfifo").arg(&fifo)).assert_status(0);
    let out = run_with_timeout(
        cf(&env, "inspect")
            .arg("--json")
            .arg(&fifo)
            .arg(env.path("fullchain.pem")),
        NO_HANG,
    );
    out.assert_status(2);
    let v = out.json();
    assert_error(&v, &fifo, true, "not a certificate");
    assert_full_chain(&result_for(&v, LEAF));
}

#[test]
fn a_pipe_named_on_the_command_line_is_read_even_when_its_writer_is_slow() {
    // `chainfix inspect <(command)`: bash names the pipe /dev/fd/N; the data comes later.
    let env = TestEnv::new();
    let chain = pki(&env);
    env.write("fullchain.pem", pem_bundle(&[&chain.leaf, &chain.int]));
    let mut cmd = cf(&env, "inspect");
    cmd.arg("--json");
    let script = format!(
        "exec \"$0\" \"$@\" <(sleep 0.5; cat '{}')",
        env.path("fullchain.pem").display()
    );
    let mut bash = wrapped(&cmd, "bash", &["-c", &script]);
    let out = run_with_timeout(&mut bash, NO_HANG);
    out.assert_status(0);
    assert_full_chain(&result_for(&out.json(), LEAF));
}

// ---------------------------------------------------------------------------------------------
// 7. Keys
// ---------------------------------------------------------------------------------------------

/// A leaf with an RSA key (pinned RSA key c), issued by the test intermediate.
fn rsa_leaf(chain: &Chain) -> Cert {
    issue(
        &Spec::leaf("mail.example.test", Alg::Rsa2048(2)),
        &chain.int,
    )
}

fn inspect_key_of(env: &TestEnv, dir: &Path) -> (Output, Value) {
    let out = run(cf(env, "inspect").arg("--json").arg(dir));
    let v = out.json();
    (out, v)
}

/// `inspect DIR` pairs the leaf with `key`, without a key-mismatch, and exits 0.
fn assert_key_is_the_leafs(env: &TestEnv, dir: &Path, key: &Path, what: &str) {
    let (out, v) = inspect_key_of(env, dir);
    let r = result_for(&v, LEAF);
    assert!(
        !codes(&r).contains(&"key-mismatch".to_string()),
        "{what}: the leaf's own key is reported as a mismatch: {r:#}"
    );
    assert_eq!(r["key"], s(key), "{what}: key not matched: {r:#}");
    out.assert_status(0);
}

#[test]
fn pkcs1_rsa_key_is_matched_to_its_leaf() {
    let env = TestEnv::new();
    let chain = pki(&env);
    let leaf = rsa_leaf(&chain);
    env.write("ssl/fullchain.pem", pem_bundle(&[&leaf, &chain.int]));
    let pkcs8 = env.write("src/key8.pem", &leaf.key_pem);
    let key = env.path("ssl/mail.key");
    env.openssl(&["rsa", "-in", &s(&pkcs8), "-traditional", "-out", &s(&key)])
        .assert_status(0);
    let text = std::fs::read_to_string(&key).expect("key");
    assert!(
        text.starts_with("-----BEGIN RSA PRIVATE KEY-----"),
        "{text}"
    );

    let (out, v) = inspect_key_of(&env, &env.path("ssl"));
    out.assert_status(0);
    let r = result_for(&v, LEAF);
    assert_eq!(r["key"], s(&key), "{r:#}");

    let dir = env.path("out");
    let out = run(cf(&env, "repair")
        .arg("--out")
        .arg(&dir)
        .arg(env.path("ssl")));
    out.assert_status(0);
    let privkey = dir.join("privkey.pem");
    assert_eq!(mode_of(&privkey), 0o600);
    assert_key_matches(&env, &privkey, &leaf.pem);
}

#[test]
fn pkcs8_key_is_matched_to_its_leaf() {
    let env = TestEnv::new();
    let chain = pki(&env);
    env.write("ssl/fullchain.pem", pem_bundle(&[&chain.leaf, &chain.int]));
    let key = env.write("ssl/privkey.pem", &chain.leaf.key_pem);
    // Another leaf with its own key in the same directory must not confuse matching.
    let other = other_leaf(&chain);
    env.write("ssl/other.pem", pem_bundle(&[&other, &chain.int]));
    let other_key = env.write("ssl/other.key", &other.key_pem);

    let (out, v) = inspect_key_of(&env, &env.path("ssl"));
    out.assert_status(0);
    assert_eq!(result_for(&v, LEAF)["key"], s(&key));
    assert_eq!(
        result_for(&v, "CN=other.example.test")["key"],
        s(&other_key)
    );
}

#[test]
fn sec1_ec_key_is_matched_to_its_leaf() {
    let env = TestEnv::new();
    let chain = pki(&env);
    env.write("ssl/fullchain.pem", pem_bundle(&[&chain.leaf, &chain.int]));
    let pkcs8 = env.write("src/key8.pem", &chain.leaf.key_pem);
    let key = env.path("ssl/mail.key");
    env.openssl(&["ec", "-in", &s(&pkcs8), "-out", &s(&key)])
        .assert_status(0);
    let text = std::fs::read_to_string(&key).expect("key");
    assert!(text.starts_with("-----BEGIN EC PRIVATE KEY-----"), "{text}");

    let (out, v) = inspect_key_of(&env, &env.path("ssl"));
    out.assert_status(0);
    assert_eq!(result_for(&v, LEAF)["key"], s(&key));

    let dir = env.path("out");
    let out = run(cf(&env, "repair")
        .arg("--out")
        .arg(&dir)
        .arg(env.path("ssl")));
    out.assert_status(0);
    let privkey = dir.join("privkey.pem");
    assert_eq!(mode_of(&privkey), 0o600);
    assert_key_matches(&env, &privkey, &chain.leaf.pem);
}

#[test]
fn sec1_key_after_ec_parameters_block_is_matched() {
    // `openssl ecparam -genkey` writes EC PARAMETERS before the EC PRIVATE KEY.
    let env = TestEnv::new();
    let chain = pki(&env);
    env.write("ssl/fullchain.pem", pem_bundle(&[&chain.leaf, &chain.int]));
    let pkcs8 = env.write("src/key8.pem", &chain.leaf.key_pem);
    let sec1 = env.openssl(&["ec", "-in", &s(&pkcs8)]);
    sec1.assert_status(0);
    let params = env.openssl(&["ecparam", "-name", "prime256v1"]);
    params.assert_status(0);
    let key = env.write("ssl/mail.key", format!("{}{}", params.stdout, sec1.stdout));

    let (out, v) = inspect_key_of(&env, &env.path("ssl"));
    out.assert_status(0);
    assert_eq!(result_for(&v, LEAF)["key"], s(&key));
}

#[test]
fn der_private_key_is_matched_to_its_leaf() {
    let env = TestEnv::new();
    let chain = pki(&env);
    env.write("ssl/fullchain.pem", pem_bundle(&[&chain.leaf, &chain.int]));
    let pkcs8 = env.write("src/key8.pem", &chain.leaf.key_pem);
    let key = env.path("ssl/mail.key.der");
    env.openssl(&[
        "pkey",
        "-in",
        &s(&pkcs8),
        "-outform",
        "DER",
        "-out",
        &s(&key),
    ])
    .assert_status(0);
    let (out, v) = inspect_key_of(&env, &env.path("ssl"));
    out.assert_status(0);
    assert_eq!(result_for(&v, LEAF)["key"], s(&key));
}

#[test]
fn ec_key_without_embedded_public_key_is_matched_not_reported_as_mismatch() {
    // `openssl ec -no_public`, and Java's PKCS#8 encoding of EC keys, leave out the optional
    // public key of ECPrivateKey (RFC 5915). The key still belongs to the leaf.
    let env = TestEnv::new();
    let chain = pki(&env);
    let pkcs8 = env.write("src/key8.pem", &chain.leaf.key_pem);
    let sec1_der = env.path("src/nopub.der");
    env.openssl(&[
        "ec",
        "-in",
        &s(&pkcs8),
        "-no_public",
        "-outform",
        "DER",
        "-out",
        &s(&sec1_der),
    ])
    .assert_status(0);
    let sec1_der = std::fs::read(&sec1_der).expect("sec1 der");
    let sec1_pem = ::pem::encode(&::pem::Pem::new("EC PRIVATE KEY", sec1_der.clone()));
    // PrivateKeyInfo { 0, { id-ecPublicKey, prime256v1 }, OCTET STRING ECPrivateKey }
    let mut alg = der_oid(&[1, 2, 840, 10045, 2, 1]);
    alg.extend(der_oid(&[1, 2, 840, 10045, 3, 1, 7]));
    let mut info = der_tlv(0x02, &[0]);
    info.extend(der_tlv(0x30, &alg));
    info.extend(der_tlv(0x04, &sec1_der));
    let java_pem = ::pem::encode(&::pem::Pem::new("PRIVATE KEY", der_tlv(0x30, &info)));

    for (name, text) in [("sec1", sec1_pem), ("java-pkcs8", java_pem)] {
        let dir = format!("ssl-{name}");
        env.write(
            &format!("{dir}/fullchain.pem"),
            pem_bundle(&[&chain.leaf, &chain.int]),
        );
        let key = env.write(&format!("{dir}/privkey.pem"), &text);
        // The test key is valid and is the leaf's key, as openssl sees it.
        assert_key_matches(&env, &key, &chain.leaf.pem);

        assert_key_is_the_leafs(&env, &env.path(&dir), &key, name);
    }
}

#[test]
fn a_self_signed_certificate_made_by_openssl_req_x509_with_its_key_is_a_self_signed_leaf() {
    // OpenSSL 3 marks `req -x509` certificates CA:TRUE unless told otherwise.
    let env = TestEnv::new();
    pki(&env);
    std::fs::create_dir_all(env.path("ssl")).expect("mkdir");
    env.openssl(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=mail.example.test",
        "-days",
        "3650",
        "-keyout",
        "ssl/privkey.pem",
        "-out",
        "ssl/cert.pem",
    ])
    .assert_status(0);
    let text = env.openssl(&["x509", "-in", "ssl/cert.pem", "-noout", "-text"]);
    assert!(text.stdout.contains("CA:TRUE"), "{}", text.stdout);
    // (Dated from the clock, the certificate may also be not yet valid at the tests' --at.)
    let out = run(cf(&env, "inspect").arg("--json").arg(env.path("ssl")));
    out.assert_status(1);
    let v = out.json();
    let r = result_for(&v, LEAF);
    assert!(codes(&r).contains(&"self-signed-leaf".to_string()), "{r:#}");
    assert_eq!(r["key"], s(&env.path("ssl/privkey.pem")), "{r:#}");

    // Without its key it is just a CA certificate, judged as one (issue 17): a root no one
    // trusts here.
    std::fs::remove_file(env.path("ssl/privkey.pem")).expect("rm");
    let out = run(cf(&env, "inspect").arg("--json").arg(env.path("ssl")));
    out.assert_status(1);
    let v = out.json();
    let r = result_for(&v, LEAF);
    assert_eq!(r["subject_kind"], "ca", "{r:#}");
    assert!(
        !codes(&r).contains(&"self-signed-leaf".to_string()),
        "{r:#}"
    );
    assert!(codes(&r).contains(&"untrusted-root".to_string()), "{r:#}");
}

#[test]
fn ec_key_with_a_compressed_public_point_is_matched() {
    // `openssl ec -conv_form compressed` stores the public point compressed; the certificate
    // holds it uncompressed. Same key all the same.
    let env = TestEnv::new();
    let chain = pki(&env);
    let pkcs8 = env.write("src/key8.pem", &chain.leaf.key_pem);
    env.write("ssl/fullchain.pem", pem_bundle(&[&chain.leaf, &chain.int]));
    let key = env.path("ssl/privkey.pem");
    env.openssl(&[
        "ec",
        "-in",
        &s(&pkcs8),
        "-conv_form",
        "compressed",
        "-out",
        &s(&key),
    ])
    .assert_status(0);
    let text = String::from_utf8_lossy(&env.read("ssl/privkey.pem")).to_string();
    let shown = env.openssl(&["ec", "-in", &s(&key), "-noout", "-text"]);
    assert!(
        ["pub:\n    02:", "pub:\n    03:"]
            .iter()
            .any(|p| shown.stdout.contains(p)),
        "the stored point is compressed: {}",
        shown.stdout
    );
    assert!(text.contains("EC PRIVATE KEY"));
    assert_key_is_the_leafs(&env, &env.path("ssl"), &key, "compressed point");
}

#[test]
fn unrelated_key_of_unsupported_type_in_scanned_directory_is_not_fatal() {
    // An X25519 or Ed448 key (e.g. for another service) next to the certificates is well-formed;
    // it is not a damaged file and must not turn the run into an operational failure.
    let env = TestEnv::new();
    let chain = pki(&env);
    env.write("ssl/fullchain.pem", pem_bundle(&[&chain.leaf, &chain.int]));
    let key = env.write("ssl/privkey.pem", &chain.leaf.key_pem);
    for alg in ["X25519", "ED448"] {
        let out = env.path(&format!("ssl/other-{alg}.key"));
        env.openssl(&["genpkey", "-algorithm", alg, "-out", &s(&out)])
            .assert_status(0);
    }
    let (out, v) = inspect_key_of(&env, &env.path("ssl"));
    assert!(
        errors(&v).iter().all(|e| e["fatal"] == false),
        "a well-formed key of another type is reported as a fatal error: {v:#}"
    );
    out.assert_status(0);
    let r = result_for(&v, LEAF);
    assert_eq!(r["key"], s(&key));
    assert!(!codes(&r).contains(&"key-mismatch".to_string()), "{r:#}");
}

#[test]
fn key_of_another_cert_in_the_same_directory_is_a_key_mismatch() {
    let env = TestEnv::new();
    let chain = pki(&env);
    env.write("ssl/fullchain.pem", pem_bundle(&[&chain.leaf, &chain.int]));
    // The key of some other certificate (not among the inputs), e.g. left over from a renewal.
    env.write("ssl/privkey.pem", key_pem(Alg::P256(1)));

    let (out, v) = inspect_key_of(&env, &env.path("ssl"));
    out.assert_status(1);
    let r = result_for(&v, LEAF);
    assert!(r.get("key").is_none() || r["key"].is_null(), "{r:#}");
    assert_eq!(r["status"], "broken", "{r:#}");
    let problems = r["problems"].as_array().cloned().unwrap_or_default();
    assert!(
        problems
            .iter()
            .any(|p| p["code"] == "key-mismatch" && p["severity"] == "error"),
        "no key-mismatch error: {r:#}"
    );

    let dir = env.path("out");
    let out = run(cf(&env, "repair")
        .arg("--out")
        .arg(&dir)
        .arg(env.path("ssl")));
    out.assert_status(1);
    assert!(
        !dir.join("privkey.pem").exists(),
        "a key that does not match the leaf was written"
    );

    // When that other certificate is among the inputs too, the key is reported for it and
    // never for the leaf it does not belong to.
    let other = other_leaf(&chain);
    env.write("both/fullchain.pem", pem_bundle(&[&chain.leaf, &chain.int]));
    env.write("both/other.pem", pem_bundle(&[&other, &chain.int]));
    let other_key = env.write("both/privkey.pem", &other.key_pem);
    let (out, v) = inspect_key_of(&env, &env.path("both"));
    assert_ne!(out.status, 2, "{}", out.stderr);
    assert_eq!(
        result_for(&v, "CN=other.example.test")["key"],
        s(&other_key)
    );
    let r = result_for(&v, LEAF);
    assert!(r.get("key").is_none() || r["key"].is_null(), "{r:#}");
}

#[test]
fn explicit_key_that_does_not_match_is_a_key_mismatch() {
    let env = TestEnv::new();
    let chain = pki(&env);
    let full = env.write("ssl/fullchain.pem", pem_bundle(&[&chain.leaf, &chain.int]));
    let other = env.write("elsewhere/other.pem", key_pem(Alg::Rsa2048(3)));

    let out = run(cf(&env, "inspect")
        .arg("--json")
        .arg("--key")
        .arg(&other)
        .arg(&full));
    out.assert_status(1);
    let v = out.json();
    let r = result_for(&v, LEAF);
    assert_eq!(r["status"], "broken", "{r:#}");
    assert!(codes(&r).contains(&"key-mismatch".to_string()), "{r:#}");
    assert!(r.get("key").is_none() || r["key"].is_null(), "{r:#}");

    let dir = env.path("out");
    let out = run(cf(&env, "repair")
        .arg("--out")
        .arg(&dir)
        .arg("--key")
        .arg(&other)
        .arg(&full));
    out.assert_status(1);
    assert!(!dir.join("privkey.pem").exists());

    // Not even when the right key lies beside the certificate: --key is what was asked for,
    // and repair must not write another key in its place.
    env.write("ssl/privkey.pem", &chain.leaf.key_pem);
    let out = run(cf(&env, "inspect")
        .arg("--json")
        .arg("--key")
        .arg(&other)
        .arg(env.path("ssl")));
    out.assert_status(1);
    let r = result_for(&out.json(), LEAF);
    assert!(codes(&r).contains(&"key-mismatch".to_string()), "{r:#}");
    let out = run(cf(&env, "repair")
        .arg("--out")
        .arg(&dir)
        .arg("--key")
        .arg(&other)
        .arg(env.path("ssl")));
    out.assert_status(1);
    assert!(!dir.join("privkey.pem").exists());

    // The right key with --key is used.
    let right = env.write("elsewhere/right.pem", &chain.leaf.key_pem);
    let out = run(cf(&env, "inspect")
        .arg("--json")
        .arg("--key")
        .arg(&right)
        .arg(&full));
    out.assert_status(0);
    assert_eq!(result_for(&out.json(), LEAF)["key"], s(&right));
}

#[test]
fn a_key_option_that_gives_no_key_says_why() {
    let env = TestEnv::new();
    let chain = pki(&env);
    let full = env.write("ssl/fullchain.pem", pem_bundle(&[&chain.leaf, &chain.int]));
    let pkcs8 = env.write("src/key8.pem", &chain.leaf.key_pem);
    let encrypted = env.path("src/encrypted.pem");
    env.openssl(&[
        "pkey",
        "-in",
        &s(&pkcs8),
        "-aes256",
        "-passout",
        "pass:secret",
        "-out",
        &s(&encrypted),
    ])
    .assert_status(0);
    for (key, why) in [
        (env.path("nothing-here.pem"), "No such file"),
        (encrypted, "decrypt it"),
    ] {
        let out = run(cf(&env, "inspect").arg("--key").arg(&key).arg(&full));
        out.assert_status(2);
        assert!(
            out.stderr.contains(&format!("--key {}", key.display())) && out.stderr.contains(why),
            "{}",
            out.stderr
        );
    }
}

#[test]
fn encrypted_pem_keys_are_skipped_with_a_note() {
    let env = TestEnv::new();
    let chain = pki(&env);
    let leaf = rsa_leaf(&chain);
    env.write("ssl/fullchain.pem", pem_bundle(&[&leaf, &chain.int]));
    let pkcs8 = env.write("src/key8.pem", &leaf.key_pem);
    let enc8 = env.path("ssl/key-pkcs8-encrypted.pem");
    env.openssl(&[
        "pkey",
        "-in",
        &s(&pkcs8),
        "-aes256",
        "-passout",
        "pass:key-passphrase",
        "-out",
        &s(&enc8),
    ])
    .assert_status(0);
    let enc1 = env.path("ssl/key-legacy-encrypted.pem");
    env.openssl(&[
        "rsa",
        "-in",
        &s(&pkcs8),
        "-traditional",
        "-aes256",
        "-passout",
        "pass:key-passphrase",
        "-out",
        &s(&enc1),
    ])
    .assert_status(0);
    assert!(std::fs::read_to_string(&enc8)
        .expect("enc8")
        .contains("BEGIN ENCRYPTED PRIVATE KEY"));
    assert!(std::fs::read_to_string(&enc1)
        .expect("enc1")
        .contains("Proc-Type: 4,ENCRYPTED"));

    let (out, v) = inspect_key_of(&env, &env.path("ssl"));
    out.assert_status(0);
    for key in [&enc8, &enc1] {
        assert!(
            out.stderr
                .lines()
                .any(|l| l.contains(&s(key)) && l.to_lowercase().contains("encrypted")),
            "no note about {}:\n{}",
            key.display(),
            out.stderr
        );
        assert!(
            errors(&v)
                .iter()
                .any(|e| e["path"] == s(key) && e["fatal"] == false),
            "{v:#}"
        );
    }
    let r = result_for(&v, LEAF);
    assert_full_chain(&r);
    assert!(!codes(&r).contains(&"key-mismatch".to_string()), "{r:#}");
}

// ---------------------------------------------------------------------------------------------
// 8. Secrets never reach the output
// ---------------------------------------------------------------------------------------------

#[test]
fn private_keys_and_passwords_never_appear_in_output() {
    let env = TestEnv::new();
    let chain = pki(&env);
    let rsa = issue(&Spec::leaf("rsa.example.test", Alg::Rsa2048(2)), &chain.int);
    let ec = issue(&Spec::leaf("ec.example.test", Alg::P256(2)), &chain.int);

    // Directory with PKCS#8, PKCS#1 and SEC1 keys.
    env.write("ssl/mail.pem", pem_bundle(&[&chain.leaf, &chain.int]));
    let k8 = env.write("ssl/mail.key", &chain.leaf.key_pem);
    env.write("ssl/rsa.pem", pem_bundle(&[&rsa, &chain.int]));
    let rsa8 = env.write("src/rsa8.pem", &rsa.key_pem);
    let k1 = env.path("ssl/rsa.key");
    env.openssl(&["rsa", "-in", &s(&rsa8), "-traditional", "-out", &s(&k1)])
        .assert_status(0);
    env.write("ssl/ec.pem", pem_bundle(&[&ec, &chain.int]));
    let ec8 = env.write("src/ec8.pem", &ec.key_pem);
    let ksec1 = env.path("ssl/ec.key");
    env.openssl(&["ec", "-in", &s(&ec8), "-out", &s(&ksec1)])
        .assert_status(0);
    let enc = env.path("ssl/encrypted.key");
    env.openssl(&[
        "pkey",
        "-in",
        &s(&ec8),
        "-aes256",
        "-passout",
        "pass:enc-key-passphrase",
        "-out",
        &s(&enc),
    ])
    .assert_status(0);

    let mut lines = Vec::new();
    for k in [&k8, &k1, &ksec1, &enc] {
        let text = std::fs::read_to_string(k).expect("key");
        lines.extend(secret_lines(&text));
    }
    lines.extend(secret_lines(&rsa.key_pem));
    lines.extend(secret_lines(&ec.key_pem));
    assert!(
        lines.len() > 40,
        "too few key lines collected: {}",
        lines.len()
    );

    let pfx = make_pfx(&env, &chain, "pfx/mail.pfx", PFX_PASSWORD, &[]);
    let pwfile = env.write("secrets/pw.txt", format!("{PFX_PASSWORD}\n"));
    // The key as stored inside the PFX (openssl may re-encode it).
    let passin = format!("pass:{PFX_PASSWORD}");
    let inner = env.openssl(&[
        "pkcs12",
        "-in",
        &s(&pfx),
        "-nocerts",
        "-nodes",
        "-passin",
        &passin,
    ]);
    inner.assert_status(0);
    lines.extend(secret_lines(&inner.stdout));
    let passwords = [PFX_PASSWORD, "enc-key-passphrase", "WrongButSecret-42"];

    let mut n = 0;
    let mut check = |what: &str, cmd: &mut Command| {
        let out = run(cmd);
        assert_no_secrets(what, &out, &lines, &passwords);
        n += 1;
        out
    };

    for json in [false, true] {
        let j: &[&str] = if json { &["--json"] } else { &[] };
        let out = check(
            "inspect dir",
            cf(&env, "inspect").args(j).arg(env.path("ssl")),
        );
        out.assert_status(0);
        let out = check(
            "repair dir",
            cf(&env, "repair")
                .args(j)
                .arg("--out")
                .arg(env.path(&format!("out-dir-{json}")))
                .arg(env.path("ssl")),
        );
        out.assert_status(0);
        check(
            "repair dir --check",
            cf(&env, "repair")
                .args(j)
                .arg("--check")
                .arg("--out")
                .arg(env.path(&format!("out-dir-{json}")))
                .arg(env.path("ssl")),
        );
        check(
            "inspect --key",
            cf(&env, "inspect")
                .args(j)
                .arg("--key")
                .arg(&k1)
                .arg(env.path("ssl/mail.pem")),
        );
        let out = check(
            "inspect pfx env",
            cf(&env, "inspect")
                .args(j)
                .args(["--password-env", "PFXPW"])
                .env("PFXPW", PFX_PASSWORD)
                .arg(&pfx),
        );
        out.assert_status(0);
        let out = check(
            "repair pfx env",
            cf(&env, "repair")
                .args(j)
                .args(["--password-env", "PFXPW"])
                .env("PFXPW", PFX_PASSWORD)
                .arg("--out")
                .arg(env.path(&format!("out-pfx-{json}")))
                .arg(&pfx),
        );
        out.assert_status(0);
        check(
            "repair pfx file",
            cf(&env, "repair")
                .args(j)
                .arg("--password-file")
                .arg(&pwfile)
                .arg("--out")
                .arg(env.path(&format!("out-pfx-file-{json}")))
                .arg(&pfx),
        );
        let out = check(
            "inspect pfx wrong password",
            cf(&env, "inspect")
                .args(j)
                .args(["--password-env", "PFXPW"])
                .env("PFXPW", "WrongButSecret-42")
                .arg(&pfx)
                .arg(env.path("ssl")),
        );
        out.assert_status(2);
    }

    // A damaged key (one corrupted base64 line): the error must not quote the key.
    let mut damaged: Vec<String> = rsa.key_pem.lines().map(str::to_string).collect();
    damaged[5] = damaged[5].replacen(|c: char| c.is_ascii_alphanumeric(), "!", 1);
    let damaged = env.write("bad/broken.key", damaged.join("\n") + "\n");
    env.write("bad/rsa.pem", pem_bundle(&[&rsa, &chain.int]));
    for json in [false, true] {
        let j: &[&str] = if json { &["--json"] } else { &[] };
        let out = check(
            "damaged key",
            cf(&env, "inspect").args(j).arg(env.path("bad")),
        );
        assert!(out.stderr.contains(&s(&damaged)), "{}", out.stderr);
    }
    assert_eq!(n, 18);

    // The written key files hold the keys checked for above (so the check is not vacuous).
    for out in [
        "out-pfx-true",
        "out-dir-true/mail.example.test",
        "out-dir-true/rsa.example.test",
        "out-dir-true/ec.example.test",
    ] {
        let written =
            std::fs::read_to_string(env.path(out).join("privkey.pem")).unwrap_or_default();
        let written = secret_lines(&written);
        assert!(
            !written.is_empty() && written.iter().all(|l| lines.contains(l)),
            "{out}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// 9. No leaf
// ---------------------------------------------------------------------------------------------

/// A CA certificate alone is no longer "no leaf": it is judged as the subject (issue 17,
/// tests/receivers.rs). Inputs without any certificate still are.
#[test]
fn no_certificate_at_all_exits_2_with_a_clear_message() {
    let env = TestEnv::new();
    pki(&env);
    let int = env.write("in/key.pem", key_pem(Alg::P256(0)));
    let out = run(cf(&env, "inspect").arg(&int));
    out.assert_status(2);
    assert!(
        out.stderr.to_lowercase().contains("no leaf certificate"),
        "{}",
        out.stderr
    );
    let out = run(cf(&env, "inspect").arg("--json").arg(&int));
    out.assert_status(2);
    assert!(results(&out.json()).is_empty());
    let errors = out.json()["errors"].clone();
    assert!(
        errors
            .as_array()
            .is_some_and(|e| e.iter().any(|x| x["fatal"] == true
                && x["message"]
                    .as_str()
                    .is_some_and(|m| m.contains("no leaf certificate")))),
        "the JSON says why too: {errors}"
    );
    assert!(
        out.stderr.to_lowercase().contains("no leaf certificate"),
        "{}",
        out.stderr
    );

    let dir = env.path("out");
    let out = run(cf(&env, "repair").arg("--out").arg(&dir).arg(&int));
    out.assert_status(2);
    assert!(
        out.stderr.to_lowercase().contains("no leaf certificate"),
        "{}",
        out.stderr
    );
    assert!(!dir.join("fullchain.pem").exists());
}

// ---------------------------------------------------------------------------------------------
// 10. Password prompt on a terminal (util-linux `script` supplies the pseudo-terminal)
// ---------------------------------------------------------------------------------------------

/// How long one pseudo-terminal session may take before it is killed and the test fails.
const TTY_LIMIT: Duration = Duration::from_secs(30);

/// Single-quotes `arg` for `sh -c`.
fn sh_quote(arg: &str) -> String {
    format!("'{}'", arg.replace('\'', r"'\''"))
}

/// A command run by `script -qec CMD /dev/null` in the test directory: it gets a pseudo-terminal
/// as stdin, stdout and stderr (ECHO on, as `script` leaves it when its own stdin is a pipe);
/// the test types into it through `script`'s stdin and reads everything it shows.
struct TtySession {
    child: std::process::Child,
    stdin: Option<std::process::ChildStdin>,
    output: std::sync::mpsc::Receiver<Vec<u8>>,
    transcript: Vec<u8>,
    eof: bool,
    deadline: std::time::Instant,
}

impl TtySession {
    fn start(env: &TestEnv, shell_cmd: &str) -> TtySession {
        use std::io::Read;
        use std::process::Stdio;
        let mut cmd = Command::new("script");
        cmd.args(["-qec", shell_cmd, "/dev/null"])
            .current_dir(env.path(""))
            .env("SHELL", "/bin/sh")
            .env("NO_COLOR", "1")
            .env("XDG_CACHE_HOME", env.path("cache"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        for var in [
            "HTTP_PROXY",
            "HTTPS_PROXY",
            "ALL_PROXY",
            "NO_PROXY",
            "http_proxy",
            "https_proxy",
            "all_proxy",
            "no_proxy",
        ] {
            cmd.env_remove(var);
        }
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start script: {e}"));
        let mut out = child.stdout.take().expect("script stdout is piped");
        let stdin = child.stdin.take();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            loop {
                match out.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        if tx.send(buf[..n].to_vec()).is_err() {
                            break;
                        }
                    }
                }
            }
        });
        TtySession {
            child,
            stdin,
            output: rx,
            transcript: Vec::new(),
            eof: false,
            deadline: std::time::Instant::now() + TTY_LIMIT,
        }
    }

    /// Everything the terminal showed so far.
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.transcript).into_owned()
    }

    /// Takes in output for up to `wait`; false once the terminal has closed.
    fn pump(&mut self, wait: Duration) -> bool {
        use std::sync::mpsc::RecvTimeoutError;
        match self.output.recv_timeout(wait) {
            Ok(bytes) => {
                self.transcript.extend(bytes);
                true
            }
            Err(RecvTimeoutError::Timeout) => true,
            Err(RecvTimeoutError::Disconnected) => {
                self.eof = true;
                false
            }
        }
    }

    fn check_deadline(&mut self, what: &str) {
        if std::time::Instant::now() >= self.deadline {
            let _ = self.child.kill();
            panic!(
                "timed out after {TTY_LIMIT:?} waiting for {what}; transcript:\n{}",
                self.text()
            );
        }
    }

    /// Reads output until `done` holds; panics (killing `script`) at the deadline.
    fn wait_until(&mut self, what: &str, mut done: impl FnMut(&str) -> bool) {
        loop {
            if done(&self.text()) {
                return;
            }
            self.check_deadline(what);
            if !self.pump(Duration::from_millis(20)) && !done(&self.text()) {
                panic!(
                    "the terminal closed before {what}; transcript:\n{}",
                    self.text()
                );
            }
        }
    }

    /// Waits until the terminal named in `tty_file` (written by `tty`) has ECHO switched off,
    /// as `stty -F` reports it.
    fn wait_for_echo_off(&mut self, env: &TestEnv, tty_file: &str) {
        let path = env.path(tty_file);
        let echo_off = || {
            let Ok(name) = std::fs::read_to_string(&path) else {
                return false;
            };
            let name = name.trim();
            if !name.starts_with("/dev/") {
                return false;
            }
            Command::new("stty")
                .args(["-F", name, "-a"])
                .output()
                .map(|out| {
                    String::from_utf8_lossy(&out.stdout)
                        .split_whitespace()
                        .any(|flag| flag == "-echo")
                })
                .unwrap_or(false)
        };
        self.wait_until("ECHO to be switched off on the terminal", |_| echo_off());
    }

    /// Types `line` and Enter.
    fn type_line(&mut self, line: &str) {
        use std::io::Write;
        let stdin = self.stdin.as_mut().expect("script stdin is open");
        stdin
            .write_all(format!("{line}\n").as_bytes())
            .and_then(|()| stdin.flush())
            .expect("typing into the terminal");
    }

    /// Reads until the terminal closes and returns (exit code of the command, transcript).
    fn finish(mut self) -> (i32, String) {
        while !self.eof {
            self.check_deadline("the command to finish");
            self.pump(Duration::from_millis(50));
        }
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("waiting for script") {
                break status;
            }
            self.check_deadline("script to exit");
            std::thread::sleep(Duration::from_millis(10));
        };
        self.stdin = None;
        (status.code().unwrap_or(-1), self.text())
    }
}

impl Drop for TtySession {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The shell command that records the terminal's name in `tty.txt` and then becomes
/// `chainfix <args> --at AT ... --roots trust/root.pem <pfx>` (the same options as `cf`).
fn chainfix_on_tty(env: &TestEnv, args: &[&str], pfx: &Path) -> String {
    let mut argv: Vec<String> = vec![env!("CARGO_BIN_EXE_chainfix").to_string()];
    argv.extend(args.iter().map(|a| a.to_string()));
    argv.extend(["--at", AT, "--no-default-roots", "--offline", "--cache-dir"].map(str::to_string));
    argv.push(s(&env.path("cache")));
    argv.push("--roots".into());
    argv.push(s(&env.path("trust/root.pem")));
    argv.push(s(pfx));
    let quoted: Vec<String> = argv.iter().map(|a| sh_quote(a)).collect();
    format!("tty > tty.txt && exec {}", quoted.join(" "))
}

/// Runs chainfix on a pseudo-terminal over `input`, waits for a password prompt that contains
/// `prompt`, types `typed` once echo is off (as a person would, so that a missing echo-off
/// shows up), and returns the exit code and the transcript.
fn type_password_at_prompt(
    env: &TestEnv,
    args: &[&str],
    input: &Path,
    prompt: &str,
    typed: &str,
) -> (i32, String) {
    let mut tty = TtySession::start(env, &chainfix_on_tty(env, args, input));
    tty.wait_until("the password prompt", |t| t.contains(prompt));
    tty.wait_for_echo_off(env, "tty.txt");
    tty.type_line(typed);
    tty.finish()
}

/// The JSON report inside a terminal transcript (CRLF line ends, after the prompt).
fn transcript_json(transcript: &str) -> Value {
    let text = transcript.replace("\r\n", "\n");
    let start = text
        .find("\n{")
        .map(|i| i + 1)
        .unwrap_or_else(|| panic!("no JSON report in the transcript:\n{transcript}"));
    let end = text.rfind('}').expect("JSON report ends with }") + 1;
    serde_json::from_str(&text[start..end])
        .unwrap_or_else(|e| panic!("the report is not JSON ({e}):\n{transcript}"))
}

#[test]
#[cfg_attr(not(have_script), ignore = "needs util-linux script")]
fn pfx_password_is_prompted_on_the_terminal_without_echo_and_opens_the_pfx() {
    let env = TestEnv::new();
    let chain = pki(&env);
    let pfx = make_pfx(&env, &chain, "in/mail.pfx", PFX_PASSWORD, &[]);

    // Control: on this pseudo-terminal typed input is echoed unless the program turns ECHO
    // off, so an echoed password would show in the transcript.
    let mut control = TtySession::start(&env, "exec head -n 1");
    control.type_line("echo-probe-7f3a");
    let (code, text) = control.finish();
    assert_eq!(code, 0, "{text}");
    assert_eq!(
        text.matches("echo-probe-7f3a").count(),
        2,
        "the control run should show the typed line twice (echo + head):\n{text:?}"
    );

    let prompt = format!("Password for {}: ", s(&pfx));
    let (code, transcript) =
        type_password_at_prompt(&env, &["inspect", "--json"], &pfx, &prompt, PFX_PASSWORD);
    assert_eq!(code, 0, "exit code; transcript:\n{transcript}");
    assert_eq!(
        transcript.matches("Password for").count(),
        1,
        "exactly one prompt:\n{transcript}"
    );
    assert!(
        !transcript.contains(PFX_PASSWORD) && !transcript.contains("Tr0ub4dor"),
        "the typed password was echoed or printed:\n{transcript}"
    );
    let v = transcript_json(&transcript);
    assert!(errors(&v).is_empty(), "{v:#}");
    let r = result_for(&v, LEAF);
    assert_eq!(r["file"], s(&pfx), "{r:#}");
    assert_eq!(
        r["key"],
        s(&pfx),
        "the key in the PFX is not reported: {r:#}"
    );
    assert_full_chain(&r);
    assert_eq!(r["status"], "ok", "{r:#}");
}

/// A PFX reached by two paths (here a link beside it) is one file: one prompt, one result.
#[test]
#[cfg_attr(not(have_script), ignore = "needs util-linux script")]
fn pfx_reached_by_two_paths_prompts_once() {
    let env = TestEnv::new();
    let chain = pki(&env);
    make_pfx(&env, &chain, "in/mail.pfx", PFX_PASSWORD, &[]);
    std::os::unix::fs::symlink("mail.pfx", env.path("in/current.pfx")).expect("symlink");
    let dir = env.path("in");
    let (code, transcript) = type_password_at_prompt(
        &env,
        &["inspect", "--json"],
        &dir,
        "Password for ",
        PFX_PASSWORD,
    );
    assert_eq!(code, 0, "exit code; transcript:\n{transcript}");
    assert_eq!(
        transcript.matches("Password for").count(),
        1,
        "one file, one prompt:\n{transcript}"
    );
    let v = transcript_json(&transcript);
    assert!(errors(&v).is_empty(), "{v:#}");
    assert_eq!(results(&v).len(), 1, "{v:#}");
    assert_eq!(
        result_for(&v, LEAF)["file"],
        s(&env.path("in/current.pfx")),
        "the first path in walk order is kept"
    );
}

#[test]
#[cfg_attr(not(have_script), ignore = "needs util-linux script")]
fn wrong_password_typed_at_the_terminal_prompt_exits_2_naming_the_pfx() {
    let env = TestEnv::new();
    let chain = pki(&env);
    let pfx = make_pfx(&env, &chain, "in/mail.pfx", PFX_PASSWORD, &[]);
    let typed = "not-the-password-41c9";
    let prompt = format!("Password for {}: ", s(&pfx));
    let (code, transcript) = type_password_at_prompt(&env, &["inspect"], &pfx, &prompt, typed);
    assert_eq!(code, 2, "exit code; transcript:\n{transcript}");
    let line = transcript
        .lines()
        .find(|l| l.contains("wrong password"))
        .unwrap_or_else(|| panic!("no 'wrong password' message:\n{transcript}"));
    assert!(line.contains(&s(&pfx)), "{line:?} does not name the PFX");
    assert!(
        !transcript.contains(typed),
        "the typed password was echoed or printed:\n{transcript}"
    );
}

// ---------------------------------------------------------------------------------------------
// 11. Key-derivation budget
// ---------------------------------------------------------------------------------------------

#[test]
fn pfx_asking_for_too_many_kdf_iterations_is_refused_quickly() {
    // 600,000 iterations for the key and again for the certificates: 1.2 million in all, over
    // the 1,000,000 budget. chainfix must refuse before deriving a single key.
    let env = TestEnv::new();
    let chain = pki(&env);
    let pfx = make_pfx(
        &env,
        &chain,
        "in/slow.pfx",
        PFX_PASSWORD,
        &["-iter", "600000"],
    );
    let started = std::time::Instant::now();
    let out = run(cf(&env, "inspect")
        .args(["--password-env", "PFXPW"])
        .env("PFXPW", PFX_PASSWORD)
        .arg(&pfx));
    out.assert_status(2);
    assert!(
        out.stderr.contains("key-derivation iterations"),
        "{}",
        out.stderr
    );
    assert!(
        started.elapsed() < std::time::Duration::from_secs(5),
        "refused without deriving keys: {:?}",
        started.elapsed()
    );
}
