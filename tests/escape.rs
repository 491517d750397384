//! Certificate text can never become configuration, code or forged report lines: certificates
//! whose names hold line breaks, controls, bidi overrides and PowerShell's quote characters go
//! through `chainfix repair` and `chainfix probe`, and the real programs read the results.
//!
//! * Postfix: the `main.cf` snippet merged both ways README.txt allows (appended, and line by
//!   line with `postconf -e`) changes exactly the two `*_tls_chain_files` parameters.
//! * Exim: the main-section, transport and Debian macro snippets pass `exim -bV` and set only
//!   the TLS options.
//! * PowerShell: `install-chain.ps1` keeps names out of code, in comments that hold none of
//!   PowerShell's quote or line-end characters, and starts with a UTF-8 BOM.
//! * probe: a served certificate with a line break in its subject gives one line per item in
//!   the human, `--brief` and `--nagios` output.
//!
//! Without Postfix or the extracted Exim (`.ci/setup-mtas.sh`) `cargo test` lists the MTA
//! tests as ignored (cfgs `have_postfix`, `have_exim` from build.rs); with
//! `CHAINFIX_REQUIRE_MTA=1` the build fails instead. The others need only openssl.

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use common::mta::{self, Exim, EximConfig, Postfix, POSTCONF_BIN};
use common::{issue, run, self_signed, Alg, Cert, Output, Spec, TestEnv};

/// Close to the real date the servers run at, inside every validity window of the PKI.
const AT: &str = "2026-11-22T00:00:00Z";
/// The DNS name the leaves are issued for (subjectAltName; the CN is the hostile part).
const HOST: &str = "mail.example.test";

/// PowerShell's single quotes: CharExtensions.IsSingleQuote in PowerShell's tokenizer
/// (PowerShell/PowerShell, src/System.Management.Automation/engine/parser/CharTraits.cs):
/// `'`, QuoteSingleLeft, QuoteSingleRight, QuoteSingleBase, QuoteReversed.
const PS_SINGLE_QUOTES: [char; 5] = ['\'', '\u{2018}', '\u{2019}', '\u{201a}', '\u{201b}'];
/// CharExtensions.IsDoubleQuote: `"`, QuoteDoubleLeft, QuoteDoubleRight, QuoteLowDoubleLeft.
const PS_DOUBLE_QUOTES: [char; 4] = ['"', '\u{201c}', '\u{201d}', '\u{201e}'];
/// CharExtensions.IsDash (en dash, em dash, horizontal bar): a name in code could start a
/// parameter with them.
const PS_DASHES: [char; 3] = ['\u{2013}', '\u{2014}', '\u{2015}'];
/// The CharTraits table's `Newline` characters: each ends a `#` comment on its own.
const PS_NEWLINES: [char; 2] = ['\n', '\r'];

/// Every character the issue names as dangerous: C0 and C1 controls (samples and range ends),
/// DEL, U+2028/U+2029, the bidi embeddings/overrides and isolates.
const BREAKING: &str = "\u{0}\u{7}\t\u{b}\u{c}\u{1b}\u{1f}\u{7f}\u{80}\u{85}\u{9b}\u{9f}\
                        \u{2028}\u{2029}\u{202a}\u{202b}\u{202c}\u{202d}\u{202e}\
                        \u{2066}\u{2067}\u{2068}\u{2069}";

/// The leaf's CN: a Postfix parameter after a line break, an indented continuation after CR LF,
/// every quote and dash PowerShell knows, and every breaking character.
fn leaf_cn() -> String {
    format!(
        "{HOST}\nsmtpd_banner = INJECTED-LEAF\r\n  INJECTED-CONTINUATION {}{}{} {BREAKING} \u{1b}[2J ő ё ς",
        String::from_iter(PS_SINGLE_QUOTES),
        String::from_iter(PS_DOUBLE_QUOTES),
        String::from_iter(PS_DASHES),
    )
}

/// The intermediate's CN: a typographic apostrophe, a parameter, an Exim option after a tab,
/// an Exim directive after a bare CR, and PowerShell code after a closing quote.
const INT_CN: &str = "O\u{2019}Neill CA\nmyhostname = injected.example\n\
                      \ttls_certificate = /evil/x.pem\r.include /etc/shadow\n\
                      ’; Remove-Item -Recurse C:\\ #";
/// The root's CN (shown as "root, not sent"): a parameter after LF, an Exim macro after CR.
const ROOT_CN: &str =
    "Escape Test Root\nsmtp_tls_security_level = none\rMAIN_TLS_PRIVATEKEY = /evil/x.pem\\";

/// Text that must never start a line (after leading whitespace) of any output.
const MARKERS: [&str; 8] = [
    "smtpd_banner",
    "INJECTED",
    "myhostname",
    "tls_certificate = /evil",
    ".include /etc",
    "smtp_tls_security_level",
    "MAIN_TLS_PRIVATEKEY = /evil",
    "Remove-Item",
];

/// Root -> intermediate -> leaf with the hostile names (RSA, pinned keys).
struct HostilePki {
    root: Cert,
    int: Cert,
    leaf: Cert,
}

impl HostilePki {
    fn new() -> HostilePki {
        let root = self_signed(&Spec::ca(ROOT_CN, Alg::Rsa2048(0)).serial(1501));
        let int = issue(&Spec::ca(INT_CN, Alg::Rsa2048(1)).serial(1502), &root);
        let leaf = issue(
            &Spec::leaf(&leaf_cn(), Alg::Rsa2048(2))
                .dns(&[HOST])
                .serial(1503),
            &int,
        );
        HostilePki { root, int, leaf }
    }

    /// root.pem, int.pem, leaf.pem, leaf.key in a directory the MTAs' users can read.
    fn env(&self) -> TestEnv {
        let env = TestEnv::new();
        mta::share_dir(env.dir.path());
        env.write("root.pem", &self.root.pem);
        env.write("int.pem", &self.int.pem);
        env.write("leaf.pem", &self.leaf.pem);
        env.write("leaf.key", &self.leaf.key_pem);
        env
    }
}

/// `chainfix repair` of the leaf with every target and a PFX, `--install-dir` = `out`.
fn repair(env: &TestEnv, out: &Path) -> Output {
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
        "--pfx-password-env",
        "CHAINFIX_TEST_PFX_PASSWORD",
        "--cache-dir",
    ])
    .arg(env.path("cache"))
    .arg("--out")
    .arg(out)
    .arg("--install-dir")
    .arg(out)
    .env("CHAINFIX_TEST_PFX_PASSWORD", "escape test");
    let output = run(&mut cmd);
    output.assert_status(0);
    output
}

/// Panics if a line of `text` (leading whitespace ignored) starts with a marker.
fn assert_no_line_starts_with_a_marker(what: &str, text: &str) {
    for line in text.split(['\n', '\r']) {
        let line = line.trim_start();
        for marker in MARKERS {
            assert!(
                !line.starts_with(marker),
                "{what}: a certificate name started the line {line:?}:\n{text}"
            );
        }
    }
}

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

// ---------------------------------------------------------------------------------------------
// Postfix
// ---------------------------------------------------------------------------------------------

/// `postconf -c CONF -n`: the parameters set in main.cf, by name. Panics on any warning (a
/// line Postfix could not read).
fn postconf_n(conf: &Path) -> BTreeMap<String, String> {
    let out = run(Command::new(POSTCONF_BIN).arg("-c").arg(conf).arg("-n"));
    out.assert_status(0);
    assert!(
        out.stderr.is_empty(),
        "postconf -n complains about main.cf:\n{}\n--- main.cf ---\n{}",
        out.stderr,
        read(&conf.join("main.cf"))
    );
    out.stdout
        .lines()
        .map(|l| {
            let (k, v) = l
                .split_once(" = ")
                .unwrap_or((l.trim_end_matches(" ="), ""));
            (k.to_string(), v.to_string())
        })
        .collect()
}

/// The parameters that differ between two `postconf -n` maps, with their new values.
fn changed(before: &BTreeMap<String, String>, after: &BTreeMap<String, String>) -> Vec<String> {
    let mut keys: Vec<&String> = before.keys().chain(after.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter(|k| before.get(*k) != after.get(*k))
        .map(|k| {
            format!(
                "{k} = {}",
                after.get(k).map(String::as_str).unwrap_or("<unset>")
            )
        })
        .collect()
}

#[test]
#[cfg_attr(
    not(have_postfix),
    ignore = "needs Postfix: .ci/setup-mtas.sh, as root"
)]
fn postfix_main_cf_with_hostile_names_changes_only_the_chain_files_both_ways_of_merging() {
    let pki = HostilePki::new();
    let env = pki.env();
    let out = env.path("out");
    repair(&env, &out);
    let snippet = mta::postfix_tls_from(&out);
    let files = format!(
        "{}, {}",
        out.join("privkey.pem").display(),
        out.join("fullchain.pem").display()
    );
    let intended = vec![
        format!("smtp_tls_chain_files = {files}"),
        format!("smtpd_tls_chain_files = {files}"),
    ];

    // Appended to main.cf as it is.
    let appended = Postfix::configure(&env.path("pf-append"), &[], "");
    let before = postconf_n(&appended.conf);
    let main_cf = appended.conf.join("main.cf");
    let mut text = read(&main_cf);
    text.push_str(&snippet);
    fs::write(&main_cf, text).expect("appending to main.cf");
    assert_eq!(
        changed(&before, &postconf_n(&appended.conf)),
        intended,
        "appending postfix/main.cf changed other parameters:\n{snippet}"
    );
    let check = appended.check();
    assert_eq!(
        check.status, 0,
        "postfix check:\n{}{}",
        check.stdout, check.stderr
    );

    // Each setting line given to `postconf -e`, as README.txt allows.
    let edited = Postfix::configure(&env.path("pf-edit"), &[], "");
    let before = postconf_n(&edited.conf);
    for line in snippet.lines() {
        if line.trim().is_empty() || line.trim_start().starts_with('#') {
            continue;
        }
        let set = run(Command::new(POSTCONF_BIN)
            .arg("-c")
            .arg(&edited.conf)
            .arg("-e")
            .arg(line));
        assert_eq!(set.status, 0, "postconf -e {line:?}: {}", set.stderr);
    }
    assert_eq!(
        changed(&before, &postconf_n(&edited.conf)),
        intended,
        "postconf -e with the lines of postfix/main.cf changed other parameters:\n{snippet}"
    );
    assert_no_line_starts_with_a_marker("postfix/main.cf", &snippet);
}

// ---------------------------------------------------------------------------------------------
// Exim
// ---------------------------------------------------------------------------------------------

/// Panics unless `exim -bV` accepts the instance's configuration.
fn assert_exim_accepts(exim: &Exim, what: &str, snippet: &Path) {
    let check = exim.check();
    assert_eq!(
        check.status,
        0,
        "exim -bV rejects {what}:\n{}{}\n--- {} ---\n{}",
        check.stdout,
        check.stderr,
        snippet.display(),
        read(snippet)
    );
}

#[test]
#[cfg_attr(not(have_exim), ignore = "needs Exim: .ci/setup-mtas.sh, as root")]
fn exim_snippets_with_hostile_names_pass_exim_bv_and_set_only_the_tls_options() {
    let pki = HostilePki::new();
    let env = pki.env();
    let out = env.path("out");
    repair(&env, &out);
    let chain = out.join("fullchain.pem").display().to_string();
    let key = out.join("exim/privkey.pem").display().to_string();
    let main_conf = out.join("exim/main.conf");
    let transport_conf = out.join("exim/transport.conf");
    let macros_conf = out.join("exim/debian-macros.conf");

    let exim = Exim::configure(
        &env.path("exim"),
        &EximConfig {
            main: format!(".include {}\n", main_conf.display()),
            relay_to: Some(mta::free_port()),
            transport: format!(".include {}\n", transport_conf.display()),
            ..EximConfig::default()
        },
    );
    assert_exim_accepts(&exim, "main.conf or transport.conf", &main_conf);
    let main = exim.exim(&[
        "-bP",
        "tls_certificate",
        "tls_privatekey",
        "primary_hostname",
    ]);
    assert_eq!(main.status, 0, "{}", main.stderr);
    assert_eq!(
        main.stdout.lines().take(2).collect::<Vec<_>>(),
        [
            format!("tls_certificate = {chain}"),
            format!("tls_privatekey = {key}")
        ],
        "{}",
        main.stdout
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
                macros_conf.display()
            ),
            relay_to: Some(mta::free_port()),
            transport: "tls_certificate = REMOTE_SMTP_TLS_CERTIFICATE\n\
                        tls_privatekey = REMOTE_SMTP_PRIVATEKEY\n"
                .to_string(),
            ..EximConfig::default()
        },
    );
    assert_exim_accepts(&macros, "debian-macros.conf", &macros_conf);
    let main = macros.exim(&["-bP", "tls_certificate", "tls_privatekey"]);
    assert_eq!(
        main.stdout,
        format!("tls_certificate = {chain}\ntls_privatekey = {key}\n")
    );
    for file in [&main_conf, &transport_conf, &macros_conf] {
        assert_no_line_starts_with_a_marker(&file.display().to_string(), &read(file));
    }
}

// ---------------------------------------------------------------------------------------------
// PowerShell, README.txt and file names
// ---------------------------------------------------------------------------------------------

#[test]
fn install_script_keeps_hostile_names_in_comments_without_quotes_or_line_ends() {
    let pki = HostilePki::new();
    let env = pki.env();
    let out = env.path("out");
    repair(&env, &out);
    let bytes = env.read("out/iis/install-chain.ps1");
    assert!(
        bytes.starts_with(b"\xef\xbb\xbf#Requires -Version 4.0\n"),
        "install-chain.ps1 must start with a UTF-8 BOM, or Windows PowerShell 5.1 reads it in \
         the ANSI code page"
    );
    let script = String::from_utf8(bytes).expect("UTF-8 script");
    let script = script.trim_start_matches('\u{feff}');

    // PowerShell ends a line at CR as well as LF: a bare CR would end a comment early.
    let ps_lines: Vec<&str> = script.split(PS_NEWLINES).collect();
    let lf_lines: Vec<&str> = script.split('\n').collect();
    assert_eq!(ps_lines, lf_lines, "a CR in install-chain.ps1:\n{script}");

    // File names made from the names: ASCII, no separators, inside iis/.
    let names: Vec<String> = fs::read_dir(out.join("iis"))
        .expect("iis directory")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    let int_file = names
        .iter()
        .find(|n| n.starts_with("intermediate-1-"))
        .unwrap_or_else(|| panic!("no intermediate file in {names:?}"));
    assert!(
        int_file
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c)),
        "{int_file:?}"
    );
    assert!(
        script.contains(&format!("Install-Cert '{int_file}' ")),
        "{script}"
    );

    for line in &ps_lines {
        let trimmed = line.trim_start();
        if trimmed.starts_with('#') {
            let bad: Vec<char> = line
                .chars()
                .filter(|c| {
                    PS_SINGLE_QUOTES[1..].contains(c)
                        || PS_DOUBLE_QUOTES[1..].contains(c)
                        || BREAKING.contains(*c)
                })
                .collect();
            assert!(
                bad.is_empty(),
                "a comment holds {bad:?}, which PowerShell or a terminal treats specially: \
                 {line:?}"
            );
        } else {
            // Code: ASCII only (no typographic quotes or dashes), and nothing from a name.
            assert!(
                line.is_ascii(),
                "a name reached PowerShell code: {line:?}\n{script}"
            );
            // The intermediate's file name is made from its name (and checked above).
            let code = line.replace(&format!("'{int_file}'"), "''");
            for marker in ["Neill", "INJECTED", "Escape Test Root", "Remove-Item"] {
                assert!(
                    !code.contains(marker),
                    "a name reached PowerShell code: {line:?}"
                );
            }
        }
    }
    // The names are still there for a reader, in comments (the line break already written
    // `\0A` by the name's own RFC 4514 escaping, the quote by the comment's).
    assert!(
        script.contains("# CN=O\\u{2019}Neill CA\\0Amyhostname"),
        "the intermediate's name, escaped, must be in a comment:\n{script}"
    );
    assert_no_line_starts_with_a_marker("install-chain.ps1", script);

    let readme = read(&out.join("README.txt"));
    assert_no_line_starts_with_a_marker("README.txt", &readme);
    assert!(
        !readme.chars().any(|c| BREAKING.contains(c) && c != '\t'),
        "README.txt holds a control or bidi character:\n{readme}"
    );
}

// ---------------------------------------------------------------------------------------------
// probe
// ---------------------------------------------------------------------------------------------

/// `openssl s_server` (implicit TLS) on a free loopback port serving `cert` + `chain` with
/// `key`; killed on drop.
struct TlsServer {
    child: Child,
    port: u16,
}

impl TlsServer {
    fn start(env: &TestEnv, cert: &str, key: &str, chain: &str) -> TlsServer {
        let port = mta::free_port();
        let mut child = Command::new("openssl")
            .arg("s_server")
            .arg("-accept")
            .arg(format!("127.0.0.1:{port}"))
            .args(["-no-CAfile", "-no-CApath", "-no-CAstore"])
            .args(["-cert", cert, "-key", key, "-cert_chain", chain])
            .current_dir(env.dir.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting openssl s_server");
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
        let server = TlsServer { child, port };
        rx.recv_timeout(Duration::from_secs(15))
            .expect("s_server never said ACCEPT");
        server
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

/// `chainfix probe TARGET --starttls none --host HOST` trusting `root.pem`, with `mode`
/// (`[]`, `--brief` or `--nagios`).
fn probe(env: &TestEnv, target: &str, mode: &[&str]) -> Output {
    let mut cmd = env.cmd();
    cmd.args(["probe", target, "--starttls", "none", "--host", HOST])
        .args(["--offline", "--no-default-roots", "--roots", "root.pem"])
        .args(["--helo", "probe-client.chainfix.test", "--at", AT])
        .arg("--cache-dir")
        .arg(env.path("cache"))
        .args(mode);
    run(&mut cmd)
}

#[test]
fn probe_output_has_one_line_per_item_when_the_served_subject_has_line_breaks() {
    // The same chain twice: plain names, and names that try to forge report lines.
    let plain_root = self_signed(&Spec::ca("Plain Root", Alg::Rsa2048(0)).serial(1601));
    let plain_int = issue(
        &Spec::ca("Plain CA", Alg::Rsa2048(1)).serial(1602),
        &plain_root,
    );
    let plain_leaf = issue(&Spec::leaf(HOST, Alg::Rsa2048(2)).serial(1603), &plain_int);
    let pki = HostilePki::new();
    let env = pki.env();
    env.write("plain-root.pem", &plain_root.pem);
    env.write("plain-int.pem", &plain_int.pem);
    env.write("plain-leaf.pem", &plain_leaf.pem);
    // Both roots trusted; both servers send leaf and intermediate.
    env.write("root.pem", format!("{}{}", pki.root.pem, plain_root.pem));
    let hostile = TlsServer::start(&env, "leaf.pem", "leaf.key", "int.pem");
    let plain = TlsServer::start(&env, "plain-leaf.pem", "leaf.key", "plain-int.pem");

    for mode in [&[][..], &["--brief"][..], &["--nagios"][..]] {
        let got = probe(&env, &hostile.target(), mode);
        let want = probe(&env, &plain.target(), mode);
        assert_eq!(
            got.status, want.status,
            "{mode:?}: exit codes differ\n--- hostile ---\n{}{}\n--- plain ---\n{}{}",
            got.stdout, got.stderr, want.stdout, want.stderr
        );
        let lines = |o: &Output| o.stdout.split(['\n', '\r']).count();
        assert_eq!(
            lines(&got),
            lines(&want),
            "{mode:?}: a served name added lines to the report\n--- hostile ---\n{}\n--- plain \
             ---\n{}",
            got.stdout,
            want.stdout
        );
        assert_no_line_starts_with_a_marker(&format!("probe {mode:?}"), &got.stdout);
        assert!(
            !got.stdout
                .chars()
                .any(|c| BREAKING.contains(c) && c != '\t'),
            "{mode:?}: a control or bidi character reached the report:\n{}",
            got.stdout
        );
    }
    let brief = probe(&env, &hostile.target(), &["--brief"]);
    assert_eq!(
        brief.stdout.lines().count(),
        2,
        "header and one target:\n{}",
        brief.stdout
    );
    assert!(
        brief.stdout.contains("INJECTED-LEAF"),
        "the leaf's name is shown, escaped:\n{}",
        brief.stdout
    );
}

#[test]
fn a_file_name_crafted_for_the_terminal_reaches_stderr_escaped() {
    // A damaged file whose name holds an escape sequence (clear screen, cursor home) and a
    // line end: the error names the file, the terminal is left alone, and no second line is
    // forged.
    let env = TestEnv::new();
    let name = "in/x\u{1b}[2J\u{1b}[H\nchainfix: all chains OK.pem";
    env.write(name, "-----BEGIN CERTIFICATE-----\nnot base64 at all\n");
    let out = run(env.cmd().args(["inspect", "--offline"]).arg(env.path("in")));
    assert_ne!(out.status, 0, "{}", out.stderr);
    assert!(!out.stderr.contains('\u{1b}'), "{:?}", out.stderr);
    assert!(
        out.stderr.contains("x\\u{1B}[2J"),
        "the name is shown, escaped: {:?}",
        out.stderr
    );
    assert!(
        !out.stderr
            .lines()
            .any(|l| l.starts_with("chainfix: all chains OK")),
        "a forged line: {:?}",
        out.stderr
    );
}
