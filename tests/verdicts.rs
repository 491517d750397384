//! Acceptance tests: chainfix's verdict on a chain must be the one an OpenSSL 3 receiver at
//! security level 2 (Postfix's smtp client checking a server) reaches on the same chain.
//!
//! Every fixture is made at test time by the real `openssl` command from pinned keys
//! (`testdata/keys/`, see `testdata/README.md`), with fixed serials and validity dates, and
//! every test first runs `openssl verify` on it the way such a receiver checks a server
//! (`-purpose sslserver -auth_level 2`, only the test root trusted, at `AT`): that proves the
//! fixture is what its name says, independently of chainfix. Then chainfix runs with `--roots`
//! and `--offline` (or against a loopback AIA server, for the AIA case) with `--at AT`, and the
//! test asserts what a sysadmin sees: exit status, JSON status and finding codes, the chain
//! built, and the files `repair` writes.
//!
//! OpenSSL facts these fixtures rest on (OpenSSL 3.0): `-sigopt rsa_padding_mode:pss` alone
//! signs with the maximal salt (222 bytes for RSA-2048 with SHA-256), the same as
//! `rsa_pss_saltlen:max`; plain `openssl verify` accepts SHA-1 signatures, and only
//! `-auth_level 1` or higher (what TLS applies at security level 1+) refuses them (error 68);
//! `openssl verify` takes the first matching issuer among `-untrusted` and does not backtrack,
//! so for twin issuers its verdict on "both offered" depends on their order.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{repo_path, run, self_signed, Alg, HttpServer, Output, Reply, Spec, TestEnv};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// Inside every fixture's validity.
const AT: &str = "2026-06-01T00:00:00Z";
/// `AT` as unix seconds, for `openssl verify -attime`.
const AT_EPOCH: &str = "1780272000";
/// The leaf's name in every fixture but the name-constraint ones.
const MAIL: &str = "mail.example.test";

// ---------------------------------------------------------------------------------------------
// Fixtures made with the real openssl
// ---------------------------------------------------------------------------------------------

/// A pinned private key in `testdata/keys/`, by algorithm and letter.
#[derive(Clone, Copy, Debug)]
enum Key {
    /// `rsa2048-X.pem`.
    Rsa(char),
    /// `p256-X.pem`.
    P256(char),
    /// `p521-X.pem`.
    P521(char),
    /// `ed25519-X.pem`.
    Ed25519(char),
}

impl Key {
    fn path(self) -> String {
        let name = match self {
            Key::Rsa(c) => format!("rsa2048-{c}"),
            Key::P256(c) => format!("p256-{c}"),
            Key::P521(c) => format!("p521-{c}"),
            Key::Ed25519(c) => format!("ed25519-{c}"),
        };
        path_str(&repo_path(&format!("testdata/keys/{name}.pem")))
    }
}

fn path_str(path: &Path) -> String {
    path.to_str().expect("UTF-8 path").to_string()
}

/// A CA profile: basicConstraints CA:TRUE and keyUsage keyCertSign, both critical.
const CA: &str = "basicConstraints = critical, CA:TRUE\n\
                  keyUsage = critical, keyCertSign, cRLSign\n\
                  subjectKeyIdentifier = hash\n";

/// A v3 CA certificate without basicConstraints: only keyUsage says it may sign certificates.
const CA_WITHOUT_BASIC_CONSTRAINTS: &str = "keyUsage = critical, keyCertSign, cRLSign\n\
                                            subjectKeyIdentifier = hash\n";

/// A private extension no receiver knows, marked critical (RFC 5280 §4.2: must be rejected).
const UNKNOWN_CRITICAL: &str = "1.3.6.1.4.1.99999.1 = critical, ASN1:NULL\n";

/// A leaf profile for DNS name `dns` with extendedKeyUsage `eku` (e.g. "serverAuth, clientAuth").
fn leaf_ext(dns: &str, eku: &str) -> String {
    format!(
        "basicConstraints = critical, CA:FALSE\n\
         keyUsage = critical, digitalSignature\n\
         extendedKeyUsage = {eku}\n\
         subjectKeyIdentifier = hash\n\
         subjectAltName = DNS:{dns}\n"
    )
}

/// The usual server leaf for `MAIL`.
fn server_leaf() -> String {
    leaf_ext(MAIL, "serverAuth, clientAuth")
}

/// `-sigopt` arguments for RSASSA-PSS with SHA-256 and OpenSSL's default salt length (which is
/// the maximum: checked by `assert_pss_max_salt`).
const PSS: &[&str] = &["-sha256", "-sigopt", "rsa_padding_mode:pss"];

/// What to make: subject CN and key, issuer, extensions, signature.
struct Make<'a> {
    cn: &'a str,
    key: Key,
    serial: u32,
    /// Extension config lines (`name = value`); an authorityKeyIdentifier (keyid:always) is
    /// added for an issued certificate.
    ext: String,
    /// None: self-signed.
    issuer: Option<&'a Made>,
    /// Signs with this key, under the issuer's name and key identifier, instead of the
    /// issuer's own key: a forgery.
    forger: Option<Key>,
    /// Digest and `-sigopt` arguments for `openssl x509`; none for Ed25519.
    sign: &'a [&'a str],
    /// Leaf validity (2024-01-01..2034-01-01) rather than CA validity (2020-01-01..2045-01-01).
    leaf: bool,
    /// The authorityKeyIdentifier also names the issuer's issuer and serial
    /// (`issuer:always`), as Windows AD CS writes it.
    aki_issuer_serial: bool,
}

impl<'a> Make<'a> {
    /// A CA certificate (CA profile, self-signed, SHA-256 unless changed).
    fn ca(cn: &'a str, key: Key, serial: u32) -> Make<'a> {
        Make {
            cn,
            key,
            serial,
            ext: CA.to_string(),
            issuer: None,
            forger: None,
            sign: &["-sha256"],
            leaf: false,
            aki_issuer_serial: false,
        }
    }

    /// A server leaf for `MAIL` issued by `issuer`.
    fn leaf(key: Key, serial: u32, issuer: &'a Made) -> Make<'a> {
        Make {
            cn: MAIL,
            key,
            serial,
            ext: server_leaf(),
            issuer: Some(issuer),
            forger: None,
            sign: &["-sha256"],
            leaf: true,
            aki_issuer_serial: false,
        }
    }

    fn by(mut self, issuer: &'a Made) -> Make<'a> {
        self.issuer = Some(issuer);
        self
    }

    fn ext(mut self, ext: &str) -> Make<'a> {
        self.ext = ext.to_string();
        self
    }

    fn sign(mut self, sign: &'a [&'a str]) -> Make<'a> {
        self.sign = sign;
        self
    }

    fn aki_issuer_serial(mut self) -> Make<'a> {
        self.aki_issuer_serial = true;
        self
    }

    fn forged_with(mut self, key: Key) -> Make<'a> {
        self.forger = Some(key);
        self
    }
}

/// A certificate written into the test directory.
#[derive(Clone, Debug)]
struct Made {
    /// File name in the test directory.
    file: String,
    pem: String,
    der: Vec<u8>,
    /// The subject key.
    key: Key,
}

impl Made {
    fn sha256(&self) -> String {
        sha256_hex(&self.der)
    }
}

fn sha256_hex(der: &[u8]) -> String {
    Sha256::digest(der)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Makes `m` into `file` (in `env`) with `openssl x509`. rcgen makes a to-be-signed
/// certificate carrying only the subject and the pinned dates; openssl puts the subject key in
/// (a self-signature, which `x509 -CA` checks), then signs with `-preserve_dates`, a fixed
/// serial and exactly the extensions of `m.ext`. A forgery is signed through a copy of the
/// issuer's certificate re-signed with the forger's key (`x509 -key` keeps the subject and
/// subjectKeyIdentifier), so it names the real issuer and carries its key id.
fn make(env: &TestEnv, file: &str, m: &Make<'_>) -> Made {
    ensure_openssl_3();
    let stem = file.trim_end_matches(".pem");
    let tbs = format!("{stem}.tbs.pem");
    let cnf = format!("{stem}.cnf");
    let (not_before, not_after) = if m.leaf {
        ((2024, 1, 1), (2034, 1, 1))
    } else {
        ((2020, 1, 1), (2045, 1, 1))
    };
    let spec = Spec::ca(m.cn, Alg::Rsa2048(0)).valid(not_before, not_after);
    env.write(&tbs, self_signed(&spec).pem);
    let subject_key = m.key.path();
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

    let serial = m.serial.to_string();
    let mut ext = m.ext.clone();
    let mut args: Vec<String> = ["x509", "-in", &tbs, "-preserve_dates", "-set_serial"]
        .map(str::to_string)
        .to_vec();
    args.push(serial);
    match m.issuer {
        None => args.extend(["-key".to_string(), subject_key]),
        Some(issuer) => {
            ext.push_str(if m.aki_issuer_serial {
                "authorityKeyIdentifier = keyid:always, issuer:always\n"
            } else {
                "authorityKeyIdentifier = keyid:always\n"
            });
            let (ca, ca_key) = match m.forger {
                None => (issuer.file.clone(), issuer.key.path()),
                Some(forger) => {
                    let fake = format!("{stem}.fake-issuer.pem");
                    env.openssl(&[
                        "x509",
                        "-in",
                        &issuer.file,
                        "-key",
                        &forger.path(),
                        "-preserve_dates",
                        "-out",
                        &fake,
                    ])
                    .assert_status(0);
                    (fake, forger.path())
                }
            };
            args.extend(["-CA".to_string(), ca, "-CAkey".to_string(), ca_key]);
        }
    }
    env.write(&cnf, format!("[ext]\n{ext}"));
    args.extend(
        [
            "-clrext",
            "-extfile",
            &cnf,
            "-extensions",
            "ext",
            "-out",
            file,
        ]
        .map(str::to_string),
    );
    args.extend(m.sign.iter().map(|a| a.to_string()));
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    env.openssl(&argv).assert_status(0);
    let pem = String::from_utf8(env.read(file)).expect("PEM is UTF-8");
    let der = ::pem::parse(&pem)
        .expect("openssl wrote PEM")
        .contents()
        .to_vec();
    Made {
        file: file.to_string(),
        pem,
        der,
        key: m.key,
    }
}

/// Fails the test, with the fix, unless `openssl` on the PATH is OpenSSL 3: these tests are
/// about what OpenSSL 3 receivers accept, and the suite needs openssl anyway (README, Tests).
fn ensure_openssl_3() {
    let version = Command::new("openssl").arg("version").output();
    let text = match version {
        Ok(out) if out.status.success() => String::from_utf8_lossy(&out.stdout).into_owned(),
        other => panic!(
            "the verdict tests need OpenSSL 3 as `openssl` on the PATH (Debian: apt-get install \
             openssl): {other:?}"
        ),
    };
    assert!(
        text.starts_with("OpenSSL 3."),
        "the verdict tests need OpenSSL 3, found {text}"
    );
}

/// `openssl x509 -text` of a certificate file.
fn text_of(env: &TestEnv, file: &str) -> String {
    let out = env.openssl(&["x509", "-in", file, "-noout", "-text"]);
    out.assert_status(0);
    out.stdout
}

/// The subjectKeyIdentifier of a certificate file as openssl prints it (`AB:CD:...`), which
/// is also how an extension config sets it.
fn ski_of(env: &TestEnv, file: &str) -> String {
    let out = env.openssl(&[
        "x509",
        "-in",
        file,
        "-noout",
        "-ext",
        "subjectKeyIdentifier",
    ]);
    out.assert_status(0);
    out.stdout
        .lines()
        .nth(1)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| panic!("{file} has no subjectKeyIdentifier: {}", out.stdout))
        .to_string()
}

/// Asserts that `file` is signed with RSASSA-PSS, SHA-256 and the maximal salt for RSA-2048
/// (256 - 32 - 2 = 222 = 0xDE bytes).
fn assert_pss_max_salt(env: &TestEnv, file: &str) {
    let text = text_of(env, file);
    assert!(text.contains("Signature Algorithm: rsassaPss"), "{text}");
    assert!(text.contains("Hash Algorithm: sha256"), "{text}");
    assert!(text.contains("Salt Length: 0xDE"), "{text}");
}

/// Writes the PEMs of `certs`, concatenated, to `file`.
fn bundle(env: &TestEnv, file: &str, certs: &[&Made]) {
    let pem: String = certs.iter().map(|c| c.pem.as_str()).collect();
    env.write(file, pem);
}

// ---------------------------------------------------------------------------------------------
// The receiver: openssl verify as Postfix's smtp client checks a server at security level 2
// ---------------------------------------------------------------------------------------------

/// `openssl verify` of the first certificate of `target` with `root` the only trust anchor,
/// `untrusted` (a file, if any) as what the server sends besides the leaf, purpose sslserver,
/// auth_level 2, at `AT`.
fn receiver(env: &TestEnv, root: &str, untrusted: Option<&str>, target: &str) -> Output {
    let mut args = vec![
        "verify",
        "-no-CApath",
        "-no-CAstore",
        "-attime",
        AT_EPOCH,
        "-purpose",
        "sslserver",
        "-auth_level",
        "2",
        "-CAfile",
        root,
    ];
    if let Some(file) = untrusted {
        args.extend(["-untrusted", file]);
    }
    args.push(target);
    env.openssl(&args)
}

/// Asserts the receiver accepts `leaf` sent with `rest`.
fn assert_receiver_accepts(env: &TestEnv, root: &Made, leaf: &Made, rest: &[&Made]) {
    bundle(env, "sent-rest.pem", rest);
    let out = receiver(env, &root.file, Some("sent-rest.pem"), &leaf.file);
    assert_eq!(
        out.status, 0,
        "openssl rejects the genuine chain:\n{}{}",
        out.stdout, out.stderr
    );
}

/// Asserts the receiver rejects `leaf` sent with `rest`, saying `why` (e.g. "error 47").
fn assert_receiver_rejects(env: &TestEnv, root: &Made, leaf: &Made, rest: &[&Made], why: &str) {
    bundle(env, "sent-rest.pem", rest);
    let out = receiver(env, &root.file, Some("sent-rest.pem"), &leaf.file);
    let said = format!("{}{}", out.stdout, out.stderr);
    assert_ne!(out.status, 0, "openssl accepts the chain:\n{said}");
    assert!(
        said.contains(why),
        "openssl rejects, but not with {why:?}:\n{said}"
    );
}

/// Asserts the receiver accepts the `fullchain.pem` that `repair` wrote into `out`.
fn assert_receiver_accepts_written(env: &TestEnv, root: &Made, out: &str) {
    let fullchain = format!("{out}/fullchain.pem");
    let verdict = receiver(env, &root.file, Some(&fullchain), &fullchain);
    assert_eq!(
        verdict.status, 0,
        "openssl rejects the written chain:\n{}{}",
        verdict.stdout, verdict.stderr
    );
}

// ---------------------------------------------------------------------------------------------
// Running chainfix and reading its report
// ---------------------------------------------------------------------------------------------

/// `chainfix <sub> --json --no-default-roots --at AT ARGS` in the test directory, with
/// `XDG_CACHE_HOME` in it (so the AIA cache is `cache/chainfix/aia/`).
fn chainfix(env: &TestEnv, sub: &str, args: &[&str]) -> Output {
    let mut cmd = env.cmd();
    cmd.arg(sub)
        .args(["--json", "--no-default-roots", "--at", AT])
        .args(args);
    run(&mut cmd)
}

/// `chainfix inspect --offline ...`.
fn inspect(env: &TestEnv, args: &[&str]) -> Output {
    let mut all = vec!["--offline"];
    all.extend(args);
    chainfix(env, "inspect", &all)
}

/// `chainfix repair --offline --out OUT ...`.
fn repair(env: &TestEnv, out: &str, args: &[&str]) -> Output {
    let mut all = vec!["--offline", "--out", out];
    all.extend(args);
    chainfix(env, "repair", &all)
}

/// The only result of a report.
fn only_result(out: &Output) -> Value {
    let json = out.json();
    let results = json["results"].as_array().expect("results is an array");
    assert_eq!(
        results.len(),
        1,
        "expected one result\n--- stdout ---\n{}\n--- stderr ---\n{}",
        out.stdout,
        out.stderr
    );
    results[0].clone()
}

fn problems(r: &Value) -> Vec<Value> {
    r["problems"].as_array().expect("problems array").clone()
}

/// code/severity of every finding, for messages.
fn summary(r: &Value) -> Vec<String> {
    problems(r)
        .iter()
        .map(|p| {
            format!(
                "{}/{}",
                p["code"].as_str().unwrap_or("?"),
                p["severity"].as_str().unwrap_or("?")
            )
        })
        .collect()
}

/// The first finding with `code` and severity error; panics showing the report if none.
fn expect_error(r: &Value, code: &str) -> Value {
    problems(r)
        .into_iter()
        .find(|p| p["code"] == code && p["severity"] == "error")
        .unwrap_or_else(|| panic!("no {code} error; findings {:?}\n{r:#}", summary(r)))
}

fn assert_no_finding(r: &Value, code: &str) {
    assert!(
        problems(r).iter().all(|p| p["code"] != code),
        "unexpected {code}; findings {:?}\n{r:#}",
        summary(r)
    );
}

fn assert_no_errors(r: &Value) {
    assert!(
        problems(r).iter().all(|p| p["severity"] != "error"),
        "unexpected error findings {:?}\n{r:#}",
        summary(r)
    );
}

/// sha256 of every certificate of the built chain, leaf first.
fn chain_sha256(r: &Value) -> Vec<String> {
    r["chain"]
        .as_array()
        .expect("chain array")
        .iter()
        .map(|c| c["sha256"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// Asserts `inspect` found `leaf` broken, with exit status 1 and an error finding `code`.
fn assert_broken_with(out: &Output, code: &str) -> Value {
    let r = only_result(out);
    expect_error(&r, code);
    assert_eq!(r["status"], "broken", "findings {:?}\n{r:#}", summary(&r));
    out.assert_status(1);
    r
}

/// Asserts a presented chain is `ok` (exit 0, no error finding, no signature-unverifiable)
/// and built as `expected`, ending at the root given with --roots.
fn assert_ok_chain(out: &Output, expected: &[&Made]) {
    let r = only_result(out);
    assert_no_errors(&r);
    assert_no_finding(&r, "signature-unverifiable");
    assert_eq!(
        chain_sha256(&r),
        expected.iter().map(|c| c.sha256()).collect::<Vec<_>>(),
        "{r:#}"
    );
    assert_eq!(
        r["chain"][expected.len() - 1]["source"]["kind"],
        "roots",
        "{r:#}"
    );
    let links: Vec<&Value> = r["chain"]
        .as_array()
        .expect("chain array")
        .iter()
        .filter_map(|c| c.get("signature"))
        .collect();
    assert!(
        links.iter().all(|s| *s == "verified"),
        "every link must be verified: {r:#}"
    );
    assert_eq!(r["status"], "ok", "{r:#}");
    out.assert_status(0);
}

/// Asserts the report neither built nor accepted `impostor`, and says why: the impostor
/// rejected by name (`issuer-signature-invalid`), or the leaf's issuer missing.
fn assert_impostor_refused(out: &Output, leaf: &Made, impostor: &Made) {
    let r = only_result(out);
    assert!(
        !chain_sha256(&r).contains(&impostor.sha256()),
        "the impostor is in the built chain: {r:#}"
    );
    assert!(
        r["status"] != "ok" && r["status"] != "repairable",
        "status {} with an impostor as the only issuer: {r:#}",
        r["status"]
    );
    assert_eq!(r["status"], "broken", "{r:#}");
    let named = problems(&r).iter().any(|p| {
        (p["code"] == "issuer-signature-invalid" && p["cert"]["sha256"] == impostor.sha256())
            || (p["code"] == "missing-intermediate" && p["cert"]["sha256"] == leaf.sha256())
    });
    assert!(
        named,
        "neither issuer-signature-invalid on the impostor nor missing-intermediate on the \
         leaf; findings {:?}\n{r:#}",
        summary(&r)
    );
    out.assert_status(1);
}

/// Every certificate (DER) in the PEM files under `dir`, recursively (none if it is absent).
fn certs_under(dir: &Path) -> Vec<Vec<u8>> {
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return found;
    };
    for entry in entries {
        let path: PathBuf = entry.expect("cache entry").path();
        if path.is_dir() {
            found.extend(certs_under(&path));
        } else if let Ok(bytes) = std::fs::read(&path) {
            if let Ok(blocks) = ::pem::parse_many(&bytes) {
                found.extend(blocks.into_iter().map(|b| b.contents().to_vec()));
            }
            found.push(bytes);
        }
    }
    found
}

// ---------------------------------------------------------------------------------------------
// 1-2. Impostor issuers: a name and key id are not a signature
// ---------------------------------------------------------------------------------------------

/// An impostor of the leaf's issuer served over AIA: same subject and subjectKeyIdentifier as
/// the real intermediate, another RSA key, naming the real root as issuer but signed by a key
/// that is not the root's. Every signature involved is RSA-PSS with the maximal salt, which
/// today's verifier cannot check, so it chained the impostor on names and key ids alone,
/// called the leaf repairable and wrote (and cached) the forgery.
#[test]
fn aia_impostor_behind_rsa_pss_max_salt_signatures_is_not_chained_written_or_cached() {
    let env = TestEnv::new();
    let server = HttpServer::start(vec![]);
    let url = server.url("/verdict-int.crt");
    let root = make(
        &env,
        "root.pem",
        &Make::ca("Verdict Root", Key::Rsa('a'), 1001),
    );
    let int = make(
        &env,
        "int.pem",
        &Make::ca("Verdict Intermediate", Key::Rsa('b'), 1002)
            .by(&root)
            .sign(PSS),
    );
    let leaf = make(
        &env,
        "leaf.pem",
        &Make::leaf(Key::Rsa('c'), 1003, &int)
            .ext(&format!(
                "{}authorityInfoAccess = caIssuers;URI:{url}\n",
                server_leaf()
            ))
            .sign(PSS),
    );
    let impostor_ext = CA.replace(
        "subjectKeyIdentifier = hash",
        &format!("subjectKeyIdentifier = {}", ski_of(&env, "int.pem")),
    );
    let impostor = make(
        &env,
        "impostor.pem",
        &Make::ca("Verdict Intermediate", Key::Rsa('d'), 1004)
            .ext(&impostor_ext)
            .by(&root)
            .forged_with(Key::Rsa('d'))
            .sign(PSS),
    );
    server.set("/verdict-int.crt", Reply::Body(impostor.der.clone()));

    // The fixture: PSS with the maximal salt everywhere; the impostor carries the real
    // intermediate's name and key id and the real root's name and key id.
    for file in ["int.pem", "leaf.pem", "impostor.pem"] {
        assert_pss_max_salt(&env, file);
    }
    assert_eq!(ski_of(&env, "impostor.pem"), ski_of(&env, "int.pem"));
    let impostor_text = text_of(&env, "impostor.pem");
    assert!(impostor_text.contains("Issuer: CN = Verdict Root"));
    assert!(impostor_text.contains(&ski_of(&env, "root.pem")));
    assert_receiver_accepts(&env, &root, &leaf, &[&int]);
    assert_receiver_rejects(&env, &root, &leaf, &[&impostor], "signature failure");

    let out = chainfix(&env, "inspect", &["leaf.pem", "--roots", "root.pem"]);
    assert!(
        server.hits("/verdict-int.crt") >= 1,
        "the impostor was never fetched: {}",
        out.stdout
    );
    assert_impostor_refused(&out, &leaf, &impostor);
    let cache = env.path("cache");
    assert!(
        !certs_under(&cache).contains(&impostor.der),
        "inspect cached the impostor under {}",
        cache.display()
    );

    let out = chainfix(
        &env,
        "repair",
        &["leaf.pem", "--roots", "root.pem", "--out", "out"],
    );
    assert_ne!(out.status, 0, "repair succeeded: {}", out.stdout);
    assert!(
        !env.path("out/fullchain.pem").exists(),
        "repair wrote fullchain.pem: {}",
        String::from_utf8_lossy(&env.read("out/fullchain.pem"))
    );
    assert!(
        !certs_under(&cache).contains(&impostor.der),
        "repair cached the impostor under {}",
        cache.display()
    );
}

/// A download-cache entry that no longer verifies the certificate naming its URL (planted, or
/// left by a version that cached unverified links) is refused and dropped, not trusted.
#[test]
fn cached_issuer_that_does_not_verify_is_dropped_from_the_cache() {
    let env = TestEnv::new();
    let server = HttpServer::start(vec![]);
    let url = server.url("/cached-int.crt");
    let root = make(
        &env,
        "root.pem",
        &Make::ca("Cache Root", Key::Rsa('a'), 1101),
    );
    let int = make(
        &env,
        "int.pem",
        &Make::ca("Cache Intermediate", Key::Rsa('b'), 1102).by(&root),
    );
    let leaf = make(
        &env,
        "leaf.pem",
        &Make::leaf(Key::Rsa('c'), 1103, &int).ext(&format!(
            "{}authorityInfoAccess = caIssuers;URI:{url}\n",
            server_leaf()
        )),
    );
    let impostor_ext = CA.replace(
        "subjectKeyIdentifier = hash",
        &format!("subjectKeyIdentifier = {}", ski_of(&env, "int.pem")),
    );
    let impostor = make(
        &env,
        "impostor.pem",
        &Make::ca("Cache Intermediate", Key::Rsa('d'), 1104)
            .ext(&impostor_ext)
            .by(&root),
    );
    server.set("/cached-int.crt", Reply::Body(int.der.clone()));
    let out = chainfix(&env, "inspect", &["leaf.pem", "--roots", "root.pem"]);
    assert_eq!(only_result(&out)["status"], "repairable", "{}", out.stdout);
    // The genuine intermediate was cached; replace it with the impostor, header kept.
    let aia = env.path("cache/chainfix/aia");
    let entries: Vec<PathBuf> = std::fs::read_dir(&aia)
        .expect("cache directory")
        .map(|e| e.expect("entry").path())
        .collect();
    assert_eq!(entries.len(), 1, "{entries:?}");
    let text = String::from_utf8(std::fs::read(&entries[0]).expect("entry")).expect("UTF-8");
    let header: String = text
        .lines()
        .take_while(|l| !l.starts_with("-----"))
        .map(|l| format!("{l}\n"))
        .collect();
    let impostor_pem = String::from_utf8(env.read("impostor.pem")).expect("PEM");
    std::fs::write(&entries[0], format!("{header}{impostor_pem}")).expect("plant");

    let out = inspect(&env, &["leaf.pem", "--roots", "root.pem"]);
    assert_impostor_refused(&out, &leaf, &impostor);
    assert!(
        !certs_under(&aia).contains(&impostor.der),
        "the planted entry is still in the cache"
    );
    assert_eq!(
        server.hits("/cached-int.crt"),
        1,
        "--offline must not fetch"
    );
}

/// The leaf is signed with ECDSA P-256 by an EC intermediate; the pool holds only an
/// impostor with the same name and key id but an RSA key (genuinely signed by the root). An
/// RSA key cannot verify an ECDSA signature: there is no issuer.
#[test]
fn rsa_keyed_impostor_is_not_accepted_as_issuer_of_an_ecdsa_signed_leaf() {
    let env = TestEnv::new();
    let root = make(
        &env,
        "root.pem",
        &Make::ca("Curve Root", Key::Rsa('a'), 1011),
    );
    let int = make(
        &env,
        "int.pem",
        &Make::ca("Curve Intermediate", Key::P256('b'), 1012).by(&root),
    );
    let leaf = make(&env, "leaf.pem", &Make::leaf(Key::P256('c'), 1013, &int));
    let impostor_ext = CA.replace(
        "subjectKeyIdentifier = hash",
        &format!("subjectKeyIdentifier = {}", ski_of(&env, "int.pem")),
    );
    let impostor = make(
        &env,
        "pool.pem",
        &Make::ca("Curve Intermediate", Key::Rsa('d'), 1014)
            .ext(&impostor_ext)
            .by(&root),
    );
    assert!(text_of(&env, "leaf.pem").contains("Signature Algorithm: ecdsa-with-SHA256"));
    assert!(text_of(&env, "pool.pem").contains("rsaEncryption"));
    assert_eq!(ski_of(&env, "pool.pem"), ski_of(&env, "int.pem"));
    assert_receiver_accepts(&env, &root, &leaf, &[&int]);
    // OpenSSL 3 does not even take an RSA key as a candidate issuer of an ECDSA signature
    // (its issuer check compares the key type with the signature algorithm): error 20.
    assert_receiver_rejects(&env, &root, &leaf, &[&impostor], "error 20");

    let args = [
        "leaf.pem",
        "--intermediates",
        "pool.pem",
        "--roots",
        "root.pem",
    ];
    assert_impostor_refused(&inspect(&env, &args), &leaf, &impostor);
    let out = repair(&env, "out", &args);
    assert_ne!(out.status, 0, "repair succeeded: {}", out.stdout);
    assert!(!env.path("out/fullchain.pem").exists());
}

// ---------------------------------------------------------------------------------------------
// 3. Genuine chains in algorithms OpenSSL 3 verifies: ok, every link verified
// ---------------------------------------------------------------------------------------------

#[test]
fn rsa_pss_with_maximal_salt_on_every_link_is_verified_and_ok() {
    let env = TestEnv::new();
    let root = make(
        &env,
        "root.pem",
        &Make::ca("PSS Max Root", Key::Rsa('a'), 1021).sign(PSS),
    );
    let int = make(
        &env,
        "int.pem",
        &Make::ca("PSS Max Intermediate", Key::Rsa('b'), 1022)
            .by(&root)
            .sign(PSS),
    );
    let leaf = make(
        &env,
        "leaf.pem",
        &Make::leaf(Key::Rsa('c'), 1023, &int).sign(PSS),
    );
    for file in ["root.pem", "int.pem", "leaf.pem"] {
        assert_pss_max_salt(&env, file);
    }
    assert_receiver_accepts(&env, &root, &leaf, &[&int]);

    bundle(&env, "fullchain.pem", &[&leaf, &int]);
    let out = inspect(&env, &["fullchain.pem", "--roots", "root.pem"]);
    assert_ok_chain(&out, &[&leaf, &int, &root]);
}

#[test]
fn p521_ecdsa_sha512_chain_is_verified_and_ok() {
    let env = TestEnv::new();
    let sha512: &[&str] = &["-sha512"];
    let root = make(
        &env,
        "root.pem",
        &Make::ca("P-521 Root", Key::P521('a'), 1031).sign(sha512),
    );
    let int = make(
        &env,
        "int.pem",
        &Make::ca("P-521 Intermediate", Key::P521('b'), 1032)
            .by(&root)
            .sign(sha512),
    );
    let leaf = make(
        &env,
        "leaf.pem",
        &Make::leaf(Key::P256('a'), 1033, &int).sign(sha512),
    );
    for file in ["root.pem", "int.pem"] {
        let text = text_of(&env, file);
        assert!(text.contains("NIST CURVE: P-521"), "{text}");
    }
    for file in ["root.pem", "int.pem", "leaf.pem"] {
        let text = text_of(&env, file);
        assert!(
            text.contains("Signature Algorithm: ecdsa-with-SHA512"),
            "{text}"
        );
    }
    assert_receiver_accepts(&env, &root, &leaf, &[&int]);

    bundle(&env, "fullchain.pem", &[&leaf, &int]);
    let out = inspect(&env, &["fullchain.pem", "--roots", "root.pem"]);
    assert_ok_chain(&out, &[&leaf, &int, &root]);
}

#[test]
fn ed25519_chain_is_verified_and_ok() {
    let env = TestEnv::new();
    let root = make(
        &env,
        "root.pem",
        &Make::ca("Ed25519 Root", Key::Ed25519('a'), 1041).sign(&[]),
    );
    let int = make(
        &env,
        "int.pem",
        &Make::ca("Ed25519 Intermediate", Key::Ed25519('b'), 1042)
            .by(&root)
            .sign(&[]),
    );
    let leaf = make(
        &env,
        "leaf.pem",
        &Make::leaf(Key::Ed25519('c'), 1043, &int).sign(&[]),
    );
    for file in ["root.pem", "int.pem", "leaf.pem"] {
        let text = text_of(&env, file);
        assert!(text.contains("Signature Algorithm: ED25519"), "{text}");
        assert!(text.contains("Public Key Algorithm: ED25519"), "{text}");
    }
    assert_receiver_accepts(&env, &root, &leaf, &[&int]);

    bundle(&env, "fullchain.pem", &[&leaf, &int]);
    let out = inspect(&env, &["fullchain.pem", "--roots", "root.pem"]);
    assert_ok_chain(&out, &[&leaf, &int, &root]);
}

// ---------------------------------------------------------------------------------------------
// 4. Extended key usage: the server role needs serverAuth on the leaf and every CA that
//    restricts its EKU
// ---------------------------------------------------------------------------------------------

/// root (RSA a) -> "Purpose Intermediate" (RSA b, `int_ext`) -> leaf (RSA c, `leaf_ext`).
fn purpose_pki(env: &TestEnv, int_ext: &str, leaf_ext: &str) -> (Made, Made, Made) {
    let root = make(
        env,
        "root.pem",
        &Make::ca("Purpose Root", Key::Rsa('a'), 1051),
    );
    let int = make(
        env,
        "int.pem",
        &Make::ca("Purpose Intermediate", Key::Rsa('b'), 1052)
            .ext(int_ext)
            .by(&root),
    );
    let leaf = make(
        env,
        "leaf.pem",
        &Make::leaf(Key::Rsa('c'), 1053, &int).ext(leaf_ext),
    );
    bundle(env, "fullchain.pem", &[&leaf, &int]);
    (root, int, leaf)
}

#[test]
fn client_auth_only_leaf_is_wrong_purpose_for_the_server_role() {
    let env = TestEnv::new();
    let (root, int, leaf) = purpose_pki(&env, CA, &leaf_ext(MAIL, "clientAuth"));
    assert_receiver_rejects(
        &env,
        &root,
        &leaf,
        &[&int],
        "unsuitable certificate purpose",
    );

    let out = inspect(&env, &["fullchain.pem", "--roots", "root.pem"]);
    assert_broken_with(&out, "wrong-purpose");
}

#[test]
fn server_auth_only_leaf_is_a_warning_not_an_error_for_the_client_role() {
    let env = TestEnv::new();
    purpose_pki(&env, CA, &leaf_ext(MAIL, "serverAuth"));
    let out = inspect(
        &env,
        &["fullchain.pem", "--roots", "root.pem", "--role", "client"],
    );
    out.assert_status(0);
    let r = only_result(&out);
    assert_eq!(r["status"], "ok", "{:?}", summary(&r));
    let warned: Vec<Value> = problems(&r)
        .into_iter()
        .filter(|p| p["code"] == "wrong-purpose")
        .collect();
    assert_eq!(warned.len(), 1, "{:?}", summary(&r));
    assert_eq!(warned[0]["severity"], "warning");
    assert!(
        warned[0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("clientAuth")),
        "{}",
        warned[0]
    );

    // A clientAuth-only leaf is fine for the client role, and still wrong for the server role.
    let env = TestEnv::new();
    purpose_pki(&env, CA, &leaf_ext(MAIL, "clientAuth"));
    let out = inspect(
        &env,
        &["fullchain.pem", "--roots", "root.pem", "--role", "client"],
    );
    out.assert_status(0);
    assert_no_finding(&only_result(&out), "wrong-purpose");
}

#[test]
fn email_protection_only_intermediate_is_wrong_purpose_for_the_server_role() {
    let env = TestEnv::new();
    let int_ext = format!("{CA}extendedKeyUsage = emailProtection\n");
    let (root, int, leaf) = purpose_pki(&env, &int_ext, &server_leaf());
    assert_receiver_rejects(
        &env,
        &root,
        &leaf,
        &[&int],
        "unsuitable certificate purpose",
    );

    let out = inspect(&env, &["fullchain.pem", "--roots", "root.pem"]);
    assert_broken_with(&out, "wrong-purpose");
}

// ---------------------------------------------------------------------------------------------
// 5. Name constraints (RFC 5280 §4.2.1.10)
// ---------------------------------------------------------------------------------------------

/// root -> intermediate permitted only DNS:allowed.test (critical) -> leaf for `dns`.
fn name_constrained_pki(env: &TestEnv, dns: &str) -> (Made, Made, Made) {
    let root = make(
        env,
        "root.pem",
        &Make::ca("Constraining Root", Key::Rsa('a'), 1061),
    );
    let int = make(
        env,
        "int.pem",
        &Make::ca("Constrained Intermediate", Key::Rsa('b'), 1062)
            .ext(&format!(
                "{CA}nameConstraints = critical, permitted;DNS:allowed.test\n"
            ))
            .by(&root),
    );
    let mut leaf = Make::leaf(Key::Rsa('c'), 1063, &int).ext(&leaf_ext(dns, "serverAuth"));
    leaf.cn = dns;
    let leaf = make(env, "leaf.pem", &leaf);
    bundle(env, "fullchain.pem", &[&leaf, &int]);
    (root, int, leaf)
}

#[test]
fn leaf_outside_the_permitted_dns_subtree_is_name_constraint_violated() {
    let env = TestEnv::new();
    let (root, int, leaf) = name_constrained_pki(&env, "mail.other.test");
    assert_receiver_rejects(&env, &root, &leaf, &[&int], "error 47");

    let out = inspect(&env, &["fullchain.pem", "--roots", "root.pem"]);
    assert_broken_with(&out, "name-constraint-violated");
}

#[test]
fn leaf_inside_the_permitted_dns_subtree_is_ok() {
    let env = TestEnv::new();
    let (root, int, leaf) = name_constrained_pki(&env, "mail.allowed.test");
    assert_receiver_accepts(&env, &root, &leaf, &[&int]);

    let out = inspect(&env, &["fullchain.pem", "--roots", "root.pem"]);
    assert_ok_chain(&out, &[&leaf, &int, &root]);
}

// ---------------------------------------------------------------------------------------------
// 6. Unknown critical extensions (RFC 5280 §4.2)
// ---------------------------------------------------------------------------------------------

#[test]
fn unknown_critical_extension_on_the_intermediate_breaks_the_chain() {
    let env = TestEnv::new();
    let (root, int, leaf) = purpose_pki(&env, &format!("{CA}{UNKNOWN_CRITICAL}"), &server_leaf());
    assert_receiver_rejects(&env, &root, &leaf, &[&int], "unhandled critical extension");

    let out = inspect(&env, &["fullchain.pem", "--roots", "root.pem"]);
    assert_broken_with(&out, "unknown-critical-extension");
}

#[test]
fn unknown_critical_extension_on_the_leaf_breaks_the_chain() {
    let env = TestEnv::new();
    let (root, int, leaf) = purpose_pki(&env, CA, &format!("{}{UNKNOWN_CRITICAL}", server_leaf()));
    assert_receiver_rejects(&env, &root, &leaf, &[&int], "unhandled critical extension");

    let out = inspect(&env, &["fullchain.pem", "--roots", "root.pem"]);
    assert_broken_with(&out, "unknown-critical-extension");
}

// ---------------------------------------------------------------------------------------------
// 7-8. Twin issuers (same subject, same key): the one a receiver accepts is built
// ---------------------------------------------------------------------------------------------

/// root (RSA a); "Twin CA" (RSA b) twice, `good` (CA profile, SHA-256) and `bad` (`bad_ext`,
/// signed with `bad_sign`); the leaf (RSA c) issued under the good one, which both verify.
/// The bad twin's serial is the first from 1073 up that makes its fingerprint sort below the
/// good one's (the fixtures are deterministic, so it is the same on every run): a tie broken
/// by fingerprints alone picks the bad twin.
fn twins(env: &TestEnv, bad_ext: &str, bad_sign: &'static [&'static str]) -> [Made; 4] {
    let root = make(env, "root.pem", &Make::ca("Twin Root", Key::Rsa('a'), 1071));
    let good = make(
        env,
        "good.pem",
        &Make::ca("Twin CA", Key::Rsa('b'), 1072).by(&root),
    );
    let bad = (1073..1089)
        .map(|serial| {
            make(
                env,
                "bad.pem",
                &Make::ca("Twin CA", Key::Rsa('b'), serial)
                    .ext(bad_ext)
                    .by(&root)
                    .sign(bad_sign),
            )
        })
        .find(|bad| bad.sha256() < good.sha256())
        .expect("a serial that sorts the bad twin first");
    let leaf = make(env, "leaf.pem", &Make::leaf(Key::Rsa('c'), 1090, &good));
    assert_eq!(ski_of(env, "good.pem"), ski_of(env, "bad.pem"));
    [root, good, bad, leaf]
}

/// With both twins in `--intermediates`, in either order: the good one is built and written,
/// and the written chain is one the receiver accepts.
fn assert_good_twin_wins(env: &TestEnv, root: &Made, good: &Made, bad: &Made, leaf: &Made) {
    for (name, pool) in [("bad-first", [bad, good]), ("good-first", [good, bad])] {
        let pool_file = format!("{name}.pem");
        bundle(env, &pool_file, &pool);
        let args = [
            "leaf.pem",
            "--intermediates",
            pool_file.as_str(),
            "--roots",
            "root.pem",
        ];
        let out = inspect(env, &args);
        let r = only_result(&out);
        assert_eq!(
            chain_sha256(&r),
            vec![leaf.sha256(), good.sha256(), root.sha256()],
            "{name}: the good twin must be built; findings {:?}\n{r:#}",
            summary(&r)
        );
        assert_eq!(r["status"], "repairable", "{name}: {r:#}");

        let out_dir = format!("out-{name}");
        let out = repair(env, &out_dir, &args);
        out.assert_status(0);
        assert_eq!(
            String::from_utf8(env.read(&format!("{out_dir}/fullchain.pem"))).expect("UTF-8"),
            format!("{}{}", leaf.pem, good.pem),
            "{name}"
        );
        assert_receiver_accepts_written(env, root, &out_dir);
    }
}

#[test]
fn server_auth_intermediate_is_built_over_its_email_protection_twin() {
    let env = TestEnv::new();
    let [root, good, bad, leaf] = twins(
        &env,
        &format!("{CA}extendedKeyUsage = emailProtection\n"),
        &["-sha256"],
    );
    assert_receiver_rejects(
        &env,
        &root,
        &leaf,
        &[&bad],
        "unsuitable certificate purpose",
    );
    assert_receiver_accepts(&env, &root, &leaf, &[&good]);
    assert_good_twin_wins(&env, &root, &good, &bad, &leaf);
}

#[test]
fn ca_intermediate_is_built_over_its_twin_without_basic_constraints() {
    let env = TestEnv::new();
    let [root, good, bad, leaf] = twins(&env, CA_WITHOUT_BASIC_CONSTRAINTS, &["-sha256"]);
    assert_receiver_rejects(&env, &root, &leaf, &[&bad], "invalid CA certificate");
    assert_receiver_accepts(&env, &root, &leaf, &[&good]);
    assert_good_twin_wins(&env, &root, &good, &bad, &leaf);
}

#[test]
fn plain_intermediate_is_built_over_its_twin_with_an_unknown_critical_extension() {
    let env = TestEnv::new();
    let [root, good, bad, leaf] = twins(&env, &format!("{CA}{UNKNOWN_CRITICAL}"), &["-sha256"]);
    assert_receiver_rejects(&env, &root, &leaf, &[&bad], "unhandled critical extension");
    assert_receiver_accepts(&env, &root, &leaf, &[&good]);
    assert_good_twin_wins(&env, &root, &good, &bad, &leaf);
}

/// Plain `openssl verify` (no purpose, auth_level unset) accepts the SHA-1 link: only an
/// auth_level of 1 or more, as TLS applies at security level 1+, refuses it (error 68).
fn assert_plain_openssl_verify_accepts_sha1(env: &TestEnv, root: &Made, leaf: &Made) {
    let plain = env.openssl(&[
        "verify",
        "-no-CApath",
        "-no-CAstore",
        "-attime",
        AT_EPOCH,
        "-CAfile",
        &root.file,
        "-untrusted",
        "bad.pem",
        &leaf.file,
    ]);
    assert_eq!(plain.status, 0, "plain openssl verify: {}", plain.stderr);
}

#[test]
fn sha256_reissue_is_built_over_its_sha1_twin() {
    let env = TestEnv::new();
    let [root, good, bad, leaf] = twins(&env, CA, &["-sha1"]);
    assert!(text_of(&env, "bad.pem").contains("Signature Algorithm: sha1WithRSAEncryption"));
    assert_receiver_rejects(&env, &root, &leaf, &[&bad], "error 68");
    assert_receiver_accepts(&env, &root, &leaf, &[&good]);
    assert_good_twin_wins(&env, &root, &good, &bad, &leaf);
}

/// A CA certificate re-issued with the same name and key but a new serial, and a leaf whose
/// authorityKeyIdentifier names the issuer by its issuer and serial too: OpenSSL's
/// `X509_check_akid` refuses the twin the leaf does not name (it is never a candidate, so the
/// receiver finds no issuer), although the name, key id and signature all match.
#[test]
fn intermediate_the_leaf_names_by_serial_is_built_over_its_reissued_twin() {
    let env = TestEnv::new();
    let [root, good, bad, _] = twins(&env, CA, &["-sha256"]);
    let leaf = make(
        &env,
        "leaf.pem",
        &Make::leaf(Key::Rsa('c'), 1091, &good).aki_issuer_serial(),
    );
    assert!(
        text_of(&env, "leaf.pem").contains("serial:04:30"),
        "the leaf's AKI names serial 1072:\n{}",
        text_of(&env, "leaf.pem")
    );
    assert_receiver_rejects(
        &env,
        &root,
        &leaf,
        &[&bad],
        "unable to get local issuer certificate",
    );
    assert_receiver_accepts(&env, &root, &leaf, &[&good]);
    assert_good_twin_wins(&env, &root, &good, &bad, &leaf);

    // Served with the twin alone: not fine, and nothing written.
    bundle(&env, "served.pem", &[&leaf, &bad]);
    let out = inspect(&env, &["served.pem", "--roots", "root.pem"]);
    let r = only_result(&out);
    assert_ne!(r["status"], "ok", "{r:#}");
    assert!(!chain_sha256(&r).contains(&bad.sha256()), "{r:#}");
    // The report says why the CA served is not the issuer, and which it is.
    let missing = expect_error(&r, "missing-intermediate");
    let message = missing["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("authorityKeyIdentifier names another one")
            && message.contains(&bad.sha256()[..16]),
        "{message}"
    );
    let out = repair(&env, "out-served", &["served.pem", "--roots", "root.pem"]);
    assert_ne!(out.status, 0, "{}", out.stdout);
    assert!(!env.path("out-served/fullchain.pem").exists());
}

/// The same CA certificate (name, key, serial) issued by two roots, and a leaf whose
/// authorityKeyIdentifier names its issuer's issuer: served with the copy under the other
/// root, and trusting that root only, OpenSSL finds no issuer (`X509_check_akid` compares the
/// AKI's directoryName with the candidate's issuer), and chainfix does not call it fine.
#[test]
fn intermediate_under_another_root_than_the_leaf_names_is_not_its_issuer() {
    let env = TestEnv::new();
    let root = make(
        &env,
        "root.pem",
        &Make::ca("Twin Root", Key::Rsa('a'), 1071),
    );
    let other = make(
        &env,
        "other-root.pem",
        &Make::ca("Other Root", Key::Rsa('d'), 1095),
    );
    let int = make(
        &env,
        "int.pem",
        &Make::ca("Twin CA", Key::Rsa('b'), 1072).by(&root),
    );
    let cross = make(
        &env,
        "cross.pem",
        &Make::ca("Twin CA", Key::Rsa('b'), 1072).by(&other),
    );
    let leaf = make(
        &env,
        "leaf.pem",
        &Make::leaf(Key::Rsa('c'), 1096, &int).aki_issuer_serial(),
    );
    assert!(
        text_of(&env, "leaf.pem").contains("DirName:/CN=Twin Root"),
        "{}",
        text_of(&env, "leaf.pem")
    );
    assert_receiver_accepts(&env, &root, &leaf, &[&int]);
    assert_receiver_rejects(
        &env,
        &other,
        &leaf,
        &[&cross],
        "unable to get local issuer certificate",
    );

    bundle(&env, "served.pem", &[&leaf, &cross]);
    let out = inspect(&env, &["served.pem", "--roots", "other-root.pem"]);
    let r = only_result(&out);
    assert_ne!(r["status"], "ok", "{r:#}");
    assert!(!chain_sha256(&r).contains(&cross.sha256()), "{r:#}");
    let out = inspect(
        &env,
        &[
            "served.pem",
            "--roots",
            "root.pem",
            "--intermediates",
            "int.pem",
        ],
    );
    let r = only_result(&out);
    assert_eq!(
        chain_sha256(&r),
        vec![leaf.sha256(), int.sha256(), root.sha256()],
        "{r:#}"
    );
}

/// An intermediate that requires an explicit policy (policyConstraints requireExplicitPolicy 0,
/// critical) over a leaf with no certificatePolicies: OpenSSL checks policies only when asked
/// (`X509_V_FLAG_POLICY_CHECK`, `openssl verify -policy_check`), which Postfix and Exim do not
/// do, so receivers accept the chain, and chainfix calls it ok.
#[test]
fn policy_constraints_are_not_applied_as_openssl_does_not_apply_them_by_default() {
    let env = TestEnv::new();
    let root = make(
        &env,
        "root.pem",
        &Make::ca("Policy Root", Key::Rsa('a'), 1101),
    );
    let int = make(
        &env,
        "int.pem",
        &Make::ca("Policy CA", Key::Rsa('b'), 1102)
            .ext(&format!(
                "{CA}policyConstraints = critical, requireExplicitPolicy:0\n\
                 inhibitAnyPolicy = critical, 0\n"
            ))
            .by(&root),
    );
    let leaf = make(&env, "leaf.pem", &Make::leaf(Key::Rsa('c'), 1103, &int));
    assert_receiver_accepts(&env, &root, &leaf, &[&int]);
    // Asked to, OpenSSL refuses it: the fixture does carry the constraint.
    bundle(&env, "sent-rest.pem", &[&int]);
    let strict = env.openssl(&[
        "verify",
        "-no-CApath",
        "-no-CAstore",
        "-attime",
        AT_EPOCH,
        "-policy_check",
        "-CAfile",
        "root.pem",
        "-untrusted",
        "sent-rest.pem",
        "leaf.pem",
    ]);
    assert!(
        strict.stdout.contains("no explicit policy")
            || strict.stderr.contains("no explicit policy"),
        "{}{}",
        strict.stdout,
        strict.stderr
    );

    bundle(&env, "fullchain.pem", &[&leaf, &int]);
    let out = inspect(&env, &["fullchain.pem", "--roots", "root.pem"]);
    assert_ok_chain(&out, &[&leaf, &int, &root]);
}

#[test]
fn sha1_signed_intermediate_alone_is_a_weak_signature_error_and_broken() {
    let env = TestEnv::new();
    let [root, _good, bad, leaf] = twins(&env, CA, &["-sha1"]);
    assert_receiver_rejects(&env, &root, &leaf, &[&bad], "error 68");
    assert_plain_openssl_verify_accepts_sha1(&env, &root, &leaf);

    let out = inspect(
        &env,
        &[
            "leaf.pem",
            "--intermediates",
            "bad.pem",
            "--roots",
            "root.pem",
        ],
    );
    let r = assert_broken_with(&out, "weak-signature");
    let weak = expect_error(&r, "weak-signature");
    assert_eq!(weak["cert"]["sha256"], bad.sha256(), "{weak}");
}

// ---------------------------------------------------------------------------------------------
// 9. basicConstraints (RFC 5280 §4.2.1.9, as OpenSSL 3 applies it)
// ---------------------------------------------------------------------------------------------

#[test]
fn intermediate_without_basic_constraints_is_ca_constraint_violated() {
    let env = TestEnv::new();
    let (root, int, leaf) = purpose_pki(&env, CA_WITHOUT_BASIC_CONSTRAINTS, &server_leaf());
    let text = text_of(&env, "int.pem");
    assert!(text.contains("Version: 3"), "{text}");
    assert!(!text.contains("Basic Constraints"), "{text}");
    assert!(text.contains("Certificate Sign"), "{text}");
    assert_receiver_rejects(&env, &root, &leaf, &[&int], "invalid CA certificate");

    let out = inspect(&env, &["fullchain.pem", "--roots", "root.pem"]);
    assert_broken_with(&out, "ca-constraint-violated");
}
