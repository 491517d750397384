//! `probe --domain` with MTA-STS and a monitoring baseline, end to end against real servers on
//! 127.0.0.1: knot serving a DNSSEC-signed test zone and unbound validating it (tests/common/
//! dns.rs), nginx serving each domain's policy at `mta-sts.<domain>` with a certificate from the
//! test CA (tests/common/https.rs; `--sts-roots` trusts it), and a real Postfix serving the MX
//! chain (restarted with a renewed chain for the baseline). The library-level cases of the
//! policy fetch (name mismatch, expiry at `--at`, HTML or 404, a silent host, a policy without
//! a record, an invalid policy) are in tests/mtasts.rs.

mod common;

use std::path::Path;

use chainfix::cert::Certificate;
use chainfix::dane::record::{Matching, Selector, Usage};
use chainfix::dane::Tlsa;
use common::dns::{DnsLab, Zone};
use common::https::Nginx;
use common::mta::{self, Postfix};
use common::{issue, run, self_signed, Alg, Cert, Output, Spec, TestEnv};
use serde_json::Value;

/// Certificates are judged at this time (valid 2024..2034); DNSSEC signatures with the real
/// clock (unbound).
const AT: &str = "2027-06-01T00:00:00Z";

/// The policy domains of the test zone, each with `_mta-sts` and `mta-sts` records.
const STS_DOMAINS: [&str; 7] = [
    "enforce",
    "notlisted",
    "testing",
    "badcert",
    "redirect",
    "oversized",
    "dane",
];

struct Lab {
    env: TestEnv,
    dns: DnsLab,
    postfix: Postfix,
    nginx: Nginx,
    int: Cert,
}

fn policy(mode: &str, mx: &str) -> String {
    format!("version: STSv1\r\nmode: {mode}\r\nmx: {mx}\r\nmax_age: 86400\r\n")
}

/// The test PKI (root, intermediate, the MX leaf for `*.chainfix.test` on key P256(2)),
/// Postfix serving leaf + intermediate, nginx serving the policies (one document root per
/// policy host, `$host`), and the zone `chainfix.test.` (signed, the trust anchor):
///
/// - `enforce`: MX `mx-ok` (named by the leaf), policy `enforce` listing `*.chainfix.test`;
/// - `notlisted` / `testing`: MX `mx-ok`, policy `enforce` / `testing` listing another host;
/// - `badcert`: MX `mx.bad` (the leaf's wildcard does not cover it), listed, `enforce`;
/// - `redirect`: the policy URL answers 301; `oversized`: a 70 KiB policy;
/// - `dane`: MX `mx-dane` with a matching `3 1 1` (DANE applies), policy `enforce` not listing it.
fn lab() -> Lab {
    let env = TestEnv::new();
    mta::share_dir(env.dir.path());
    let root = self_signed(&Spec::ca("STS Test Root", Alg::P256(0)));
    let int = issue(&Spec::ca("STS Test Intermediate", Alg::P256(1)), &root);
    let leaf = mx_leaf(&int, Alg::P256(2), 10, (2034, 1, 1));
    env.write("root.pem", &root.pem);
    let postfix = Postfix::start(&env.path("postfix"), &[], &serve(&env, &leaf, &int, "a"));
    // The policy host: one certificate naming every mta-sts.<domain>.
    let hosts: Vec<String> = STS_DOMAINS
        .iter()
        .map(|d| format!("mta-sts.{d}.chainfix.test"))
        .collect();
    let names: Vec<&str> = hosts.iter().map(String::as_str).collect();
    let web = issue(
        &Spec::leaf(names[0], Alg::P256(3)).dns(&names).serial(99),
        &int,
    );
    let dir = env.path("nginx");
    let site = |d: &str, body: &str| {
        Nginx::www(
            &dir,
            &format!("mta-sts.{d}.chainfix.test/.well-known/mta-sts.txt"),
            body,
        )
    };
    site("enforce", &policy("enforce", "*.chainfix.test"));
    site("notlisted", &policy("enforce", "mail.elsewhere.test"));
    site("testing", &policy("testing", "mail.elsewhere.test"));
    site("badcert", &policy("enforce", "*.bad.chainfix.test"));
    site("dane", &policy("enforce", "mail.elsewhere.test"));
    let mut big = policy("enforce", "*.chainfix.test");
    while big.len() <= 70 * 1024 {
        big.push_str("x-padding: 0123456789abcdef0123456789abcdef0123456789abcdef\r\n");
    }
    site("oversized", &big);
    let body = format!(
        "location = /.well-known/mta-sts.txt {{\n\
           if ($host = mta-sts.redirect.chainfix.test) {{\n\
             return 301 https://mta-sts.enforce.chainfix.test/.well-known/mta-sts.txt;\n\
           }}\n\
           root {}/www/$host;\n\
         }}",
        dir.display()
    );
    let nginx = Nginx::start(
        &dir,
        &format!("{}{}", web.pem, int.pem),
        &web.key_pem,
        &body,
    );
    let cert = Certificate::from_der(&leaf.der).expect("leaf parses");
    let pin = Tlsa::of(&cert, Usage::DaneEe, Selector::Spki, Matching::Sha256).rdata();
    let mut records = vec![
        "mx-ok IN A 127.0.0.1".to_string(),
        "mx.bad IN A 127.0.0.1".to_string(),
        "mx-dane IN A 127.0.0.1".to_string(),
        format!("_25._tcp.mx-dane IN TLSA {pin}"),
    ];
    for d in STS_DOMAINS {
        let mx = match d {
            "badcert" => "mx.bad",
            "dane" => "mx-dane",
            _ => "mx-ok",
        };
        records.push(format!("{d} IN MX 10 {mx}"));
        records.push(format!("_mta-sts.{d} IN TXT \"v=STSv1; id=20261202\""));
        records.push(format!("mta-sts.{d} IN A 127.0.0.1"));
    }
    let zone = Zone {
        origin: "chainfix.test.".into(),
        records,
        signed: true,
        tamper: Vec::new(),
    };
    let dns = DnsLab::start(&env.path("dns"), &[zone]);
    Lab {
        env,
        dns,
        postfix,
        nginx,
        int,
    }
}

/// An MX leaf for `*.chainfix.test` issued by `int`.
fn mx_leaf(int: &Cert, alg: Alg, serial: u64, not_after: (i32, u8, u8)) -> Cert {
    issue(
        &Spec::leaf("mx.chainfix.test", alg)
            .dns(&["*.chainfix.test"])
            .serial(serial)
            .valid((2024, 1, 1), not_after),
        int,
    )
}

/// Postfix's TLS settings for `leaf` + `int`, written under `tag`.
fn serve(env: &TestEnv, leaf: &Cert, int: &Cert, tag: &str) -> String {
    let key = env.write(&format!("mx-{tag}.key"), &leaf.key_pem);
    let full = env.write(&format!("mx-{tag}.pem"), format!("{}{}", leaf.pem, int.pem));
    mta::postfix_tls_files(&key, &full)
}

impl Lab {
    /// `chainfix probe --domain DOMAIN...` against the lab, the test root trusted for the MX
    /// chains, at [`AT`], plus `extra`; `sts_roots`: trust the test root for the policy host.
    fn probe_with(&self, domains: &[&str], sts_roots: bool, extra: &[&str]) -> Output {
        let mut cmd = self.env.cmd();
        cmd.arg("probe");
        for d in domains {
            cmd.args(["--domain", d]);
        }
        cmd.args(["--dns-server", &self.dns.resolver()])
            .args(["--smtp-port", &self.postfix.port.to_string()])
            .args(["--sts-port", &self.nginx.port.to_string()])
            .args(["--offline", "--no-default-roots", "--roots"])
            .arg(self.env.path("root.pem"))
            .args(["--at", AT, "--helo", "client.chainfix.test"])
            .args(["--timeout", "10"]);
        if sts_roots {
            cmd.arg("--sts-roots").arg(self.env.path("root.pem"));
        }
        run(cmd.args(extra))
    }

    fn probe(&self, domain: &str, extra: &[&str]) -> Output {
        self.probe_with(&[domain], true, extra)
    }

    fn json(&self, domain: &str) -> (i32, Value) {
        let out = self.probe(domain, &["--json"]);
        (out.status, self.parse(&out))
    }

    fn parse(&self, out: &Output) -> Value {
        serde_json::from_str(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "not JSON ({e}): {}\n{}\n{}\n{}\n{}",
                out.stdout,
                out.stderr,
                self.dns.logs(),
                self.nginx.logs(),
                self.postfix.log()
            )
        })
    }
}

fn codes(problems: &Value) -> Vec<String> {
    problems
        .as_array()
        .expect("problems")
        .iter()
        .map(|p| p["code"].as_str().expect("code").to_string())
        .collect()
}

fn finding<'a>(problems: &'a Value, code: &str) -> &'a Value {
    problems
        .as_array()
        .expect("problems")
        .iter()
        .find(|p| p["code"] == code)
        .unwrap_or_else(|| panic!("no {code} in {problems:#}"))
}

/// The first result of the domain's first MX host.
fn mx_result(v: &Value) -> &Value {
    let i = v["domains"][0]["mx"][0]["results"][0]
        .as_u64()
        .expect("result index");
    &v["results"][i as usize]
}

#[test]
#[cfg_attr(
    not(all(have_dns_servers, have_postfix, have_nginx)),
    ignore = "needs knot, ldnsutils, unbound (.ci/setup-dns.sh), Postfix (.ci/setup-mtas.sh) and nginx (.ci/setup-https.sh), as root"
)]
fn mta_sts_policies_are_fetched_and_each_mx_is_judged_as_senders_judge_it() {
    let lab = lab();

    // enforce, the MX listed and its chain valid: OK.
    let (status, v) = lab.json("enforce.chainfix.test");
    let d = &v["domains"][0];
    let sts = &d["mta_sts"];
    assert_eq!(sts["record"], "valid", "{v:#}\n{}", lab.nginx.logs());
    assert_eq!(sts["id"], "20261202");
    assert_eq!(sts["policy"], "valid", "{v:#}\n{}", lab.nginx.logs());
    assert_eq!(sts["mode"], "enforce");
    assert_eq!(sts["mx_patterns"][0], "*.chainfix.test");
    assert_eq!(
        sts["url"],
        format!(
            "https://mta-sts.enforce.chainfix.test:{}/.well-known/mta-sts.txt",
            lab.nginx.port
        )
    );
    assert_eq!(d["mx"][0]["mta_sts"]["verdict"], "pass", "{v:#}");
    assert_eq!(d["mx"][0]["mta_sts"]["listed"], true);
    assert_eq!(mx_result(&v)["status"], "ok", "{v:#}");
    assert_eq!(d["status"], "ok", "{v:#}");
    assert_eq!(status, 0, "{v:#}");
    let nagios = lab.probe("enforce.chainfix.test", &["--nagios"]);
    assert_eq!(nagios.status, 0, "{}", nagios.stdout);
    assert!(
        nagios.stdout.starts_with("CHAINFIX OK"),
        "{}",
        nagios.stdout
    );

    // enforce, the MX not listed: error 4.4.8, exit 1, CRITICAL.
    let (status, v) = lab.json("notlisted.chainfix.test");
    let f = finding(&mx_result(&v)["problems"], "mta-sts-mx-not-listed");
    assert_eq!(f["severity"], "error", "{f:#}");
    assert_eq!(
        f["receiver_view"],
        "Exchange Online: 4.4.8 MX hosts of notlisted.chainfix.test failed MTA-STS validation"
    );
    assert_eq!(v["domains"][0]["mx"][0]["mta_sts"]["verdict"], "fail");
    assert_eq!(v["domains"][0]["status"], "broken", "{v:#}");
    assert_eq!(status, 1, "{v:#}");
    let nagios = lab.probe("notlisted.chainfix.test", &["--nagios"]);
    assert_eq!(nagios.status, 2, "{}", nagios.stdout);
    assert!(
        nagios.stdout.starts_with("CHAINFIX CRITICAL")
            && nagios.stdout.contains("mta-sts-mx-not-listed"),
        "{}",
        nagios.stdout
    );
    let human = lab.probe("notlisted.chainfix.test", &[]);
    assert!(
        human
            .stdout
            .contains("MTA-STS: record id=20261202; policy mode enforce")
            && human.stdout.contains("MTA-STS: NOT LISTED in the policy"),
        "{}",
        human.stdout
    );
    let brief = lab.probe("notlisted.chainfix.test", &["--brief"]);
    assert_eq!(brief.status, 1, "{}", brief.stdout);
    assert!(
        brief.stdout.contains("mta-sts-mx-not-listed"),
        "{}",
        brief.stdout
    );

    // testing, the MX not listed: a warning, mail still flows: exit 0, WARNING.
    let (status, v) = lab.json("testing.chainfix.test");
    let f = finding(&mx_result(&v)["problems"], "mta-sts-mx-not-listed");
    assert_eq!(f["severity"], "warning", "{f:#}");
    assert!(f["receiver_view"].is_null(), "{f:#}");
    assert_eq!(status, 0, "{v:#}");
    let nagios = lab.probe("testing.chainfix.test", &["--nagios"]);
    assert_eq!(nagios.status, 1, "{}", nagios.stdout);
    assert!(
        nagios.stdout.starts_with("CHAINFIX WARNING"),
        "{}",
        nagios.stdout
    );

    // enforce, listed, but the chain does not name the MX host: 4.7.5.
    let (status, v) = lab.json("badcert.chainfix.test");
    let r = mx_result(&v);
    assert!(
        codes(&r["problems"]).contains(&"hostname-mismatch".into()),
        "{r:#}"
    );
    let f = finding(&r["problems"], "mta-sts-certificate-invalid");
    assert_eq!(f["severity"], "error");
    assert!(
        f["message"]
            .as_str()
            .expect("message")
            .contains("hostname-mismatch"),
        "{f:#}"
    );
    assert_eq!(
        f["receiver_view"],
        "Exchange Online: 4.7.5 Remote certificate failed MTA-STS validation"
    );
    assert_eq!(v["domains"][0]["mx"][0]["mta_sts"]["listed"], true);
    assert_eq!(
        v["domains"][0]["mx"][0]["mta_sts"]["certificate_valid"],
        false
    );
    assert_eq!(status, 1);

    // The policy host's certificate from a CA nobody trusts (no --sts-roots): no policy.
    let out = lab.probe_with(&["enforce.chainfix.test"], false, &["--json"]);
    let v = lab.parse(&out);
    let f = finding(&v["domains"][0]["problems"], "mta-sts-policy-unavailable");
    assert_eq!(f["detail"], "certificate-untrusted", "{f:#}");
    assert_eq!(f["severity"], "warning");
    assert_eq!(v["domains"][0]["mta_sts"]["policy"], "unavailable");
    assert_eq!(v["domains"][0]["mx"][0]["mta_sts"]["verdict"], "no-policy");
    assert_eq!(out.status, 0, "{v:#}");

    // A redirect is not followed; a policy over 64 KiB is refused.
    for (domain, detail) in [("redirect", "redirect"), ("oversized", "too-large")] {
        let (status, v) = lab.json(&format!("{domain}.chainfix.test"));
        let f = finding(&v["domains"][0]["problems"], "mta-sts-policy-unavailable");
        assert_eq!(f["detail"], detail, "{f:#}\n{}", lab.nginx.logs());
        assert_eq!(status, 0, "{v:#}");
    }

    // DANE applies: senders doing both use DANE for the MX, though the policy does not list it.
    let (status, v) = lab.json("dane.chainfix.test");
    let mx = &v["domains"][0]["mx"][0];
    assert_eq!(mx["dane"]["state"], "applies", "{v:#}\n{}", lab.dns.logs());
    assert_eq!(mx["mta_sts"]["verdict"], "dane", "{v:#}");
    let r = mx_result(&v);
    let f = finding(&r["problems"], "mta-sts-superseded-by-dane");
    assert_eq!(f["severity"], "info");
    assert!(
        f["message"]
            .as_str()
            .expect("message")
            .contains("would reject it"),
        "{f:#}"
    );
    assert!(
        !codes(&r["problems"]).contains(&"mta-sts-mx-not-listed".into()),
        "{r:#}"
    );
    assert_eq!(status, 0, "{v:#}");
}

fn baseline_codes(v: &Value) -> Vec<String> {
    let mut out = Vec::new();
    for d in v["domains"].as_array().expect("domains") {
        out.extend(codes(&d["problems"]));
    }
    for r in v["results"].as_array().expect("results") {
        out.extend(codes(&r["problems"]));
    }
    out.retain(|c| c.starts_with("baseline-"));
    out
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
#[cfg_attr(
    not(all(have_dns_servers, have_postfix, have_nginx)),
    ignore = "needs knot, ldnsutils, unbound (.ci/setup-dns.sh), Postfix (.ci/setup-mtas.sh) and nginx (.ci/setup-https.sh), as root"
)]
fn a_baseline_records_the_domains_and_reports_renewals_and_pinned_key_changes() {
    let mut lab = lab();
    let file = lab.env.path("state/partner.json");
    let b = file.to_str().expect("path").to_string();
    let domains = ["enforce.chainfix.test", "dane.chainfix.test"];
    let probe = |lab: &Lab, extra: &[&str]| {
        let mut args = vec!["--baseline", b.as_str()];
        args.extend_from_slice(extra);
        lab.probe_with(&domains, true, &args)
    };
    std::fs::create_dir_all(file.parent().expect("dir")).expect("state dir");

    // First run: the file is created, each domain is baseline-new.
    let out = probe(&lab, &["--json"]);
    let v = lab.parse(&out);
    assert_eq!(
        baseline_codes(&v),
        ["baseline-new", "baseline-new"],
        "{v:#}"
    );
    assert_eq!(out.status, 0, "{v:#}");
    let first = read(&file);
    assert!(
        first.contains("\"format\": \"chainfix-baseline/1\""),
        "{first}"
    );
    let state: Value = serde_json::from_str(&first).expect("baseline JSON");
    let mx = |s: &Value, d: &str, h: &str| s["domains"][d]["mx"][h].clone();
    assert_eq!(
        mx(&state, "enforce.chainfix.test", "mx-ok.chainfix.test")["mta_sts"],
        "valid"
    );
    let dane = mx(&state, "dane.chainfix.test", "mx-dane.chainfix.test");
    assert_eq!(dane["mta_sts"], "not-used-dane", "{first}");
    assert_eq!(dane["dane"]["verdict"], "match", "{first}");
    assert_eq!(dane["dane"]["records"][0]["pins"], "leaf", "{first}");

    // A routine renewal: new leaf, same key, same CA: information, exit 0, file untouched.
    let renewed = mx_leaf(&lab.int, Alg::P256(2), 11, (2034, 6, 1));
    let tls = serve(&lab.env, &renewed, &lab.int, "renewed");
    lab.postfix.restart(&[], &tls);
    let out = probe(&lab, &["--json"]);
    let v = lab.parse(&out);
    assert_eq!(
        baseline_codes(&v),
        ["baseline-renewed", "baseline-renewed"],
        "{v:#}\n{}",
        lab.postfix.log()
    );
    assert_eq!(out.status, 0, "{v:#}");
    assert_eq!(
        read(&file),
        first,
        "a change is not recorded until accepted"
    );

    // A new key while a 3 1 1 record pins the old one: error, exit 1, CRITICAL.
    let rekeyed = mx_leaf(&lab.int, Alg::P256(3), 12, (2034, 6, 1));
    let tls = serve(&lab.env, &rekeyed, &lab.int, "rekeyed");
    lab.postfix.restart(&[], &tls);
    let out = probe(&lab, &["--json"]);
    let v = lab.parse(&out);
    let r = &v["results"][v["domains"][1]["mx"][0]["results"][0].as_u64().expect("i") as usize];
    let f = finding(&r["problems"], "baseline-pinned-key-changed");
    assert_eq!(f["severity"], "error", "{f:#}");
    assert!(
        f["message"].as_str().expect("message").contains("3 1 1"),
        "{f:#}"
    );
    assert!(
        codes(&r["problems"]).contains(&"dane-mismatch".into()),
        "{r:#}"
    );
    // The unpinned domain: a new key is information.
    let r0 = &v["results"][v["domains"][0]["mx"][0]["results"][0].as_u64().expect("i") as usize];
    assert!(
        codes(&r0["problems"]).contains(&"baseline-key-changed".into()),
        "{r0:#}"
    );
    assert_eq!(out.status, 1, "{v:#}");
    let nagios = probe(&lab, &["--nagios"]);
    assert_eq!(nagios.status, 2, "{}", nagios.stdout);
    assert!(
        nagios.stdout.contains("baseline-pinned-key-changed"),
        "{}",
        nagios.stdout
    );

    // --update-baseline accepts it: reported once more, then recorded.
    let out = probe(&lab, &["--json", "--update-baseline"]);
    assert_eq!(out.status, 1, "{}", out.stdout);
    assert_ne!(read(&file), first);
    let out = probe(&lab, &["--json"]);
    let v = lab.parse(&out);
    assert_eq!(
        baseline_codes(&v),
        ["baseline-unchanged", "baseline-unchanged"],
        "{v:#}"
    );

    // A corrupt file stops the run, naming it: exit 2, --nagios UNKNOWN.
    std::fs::write(
        &file,
        "{\"format\": \"chainfix-baseline/1\", \"domains\": {",
    )
    .expect("corrupt");
    let out = probe(&lab, &[]);
    assert_eq!(out.status, 2, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stderr.contains(&b) && out.stderr.contains("truncated"),
        "{}",
        out.stderr
    );
    let nagios = probe(&lab, &["--nagios"]);
    assert_eq!(nagios.status, 3, "{}", nagios.stdout);
    assert!(
        nagios.stdout.starts_with("CHAINFIX UNKNOWN") && nagios.stdout.contains(&b),
        "{}",
        nagios.stdout
    );
}

/// Needs no server: a resolver that never answers. The domain's MX lookup fails, so nothing is
/// recorded for it, but the file is still created; where it cannot be, the run fails after the
/// report (exit 2), and with `--nagios` the check is UNKNOWN, alone.
#[test]
fn a_baseline_that_cannot_be_written_is_exit_2_and_nagios_unknown() {
    let env = TestEnv::new();
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
    let resolver = silent.local_addr().expect("addr").to_string();
    let probe = |file: &Path, extra: &[&str]| {
        run(env
            .cmd()
            .args(["probe", "--domain", "example.test", "--timeout", "1"])
            .args(["--dns-server", &resolver, "--baseline"])
            .arg(file)
            .args(extra))
    };
    let ok = env.path("b.json");
    let out = probe(&ok, &["--json"]);
    assert_eq!(out.status, 1, "{}{}", out.stdout, out.stderr);
    let state: Value = serde_json::from_str(&read(&ok)).expect("baseline JSON");
    assert_eq!(state["domains"], serde_json::json!({}), "{state:#}");
    let missing = env.path("no-such-dir/b.json");
    let out = probe(&missing, &[]);
    assert_eq!(out.status, 2, "{}{}", out.stdout, out.stderr);
    assert!(out.stdout.contains("domain example.test"), "{}", out.stdout);
    assert!(
        out.stderr.contains("cannot write the baseline") && out.stderr.contains("no-such-dir"),
        "{}",
        out.stderr
    );
    let nagios = probe(&missing, &["--nagios"]);
    assert_eq!(nagios.status, 3, "{}", nagios.stdout);
    assert!(
        nagios
            .stdout
            .starts_with("CHAINFIX UNKNOWN - cannot write the baseline"),
        "{}",
        nagios.stdout
    );
    assert_eq!(nagios.stdout.lines().count(), 1, "{}", nagios.stdout);
}

/// Needs no server: the option rules, and an unusable `--sts-roots` (before any lookup).
#[test]
fn baseline_options_need_their_companions() {
    let env = TestEnv::new();
    let out = run(env
        .cmd()
        .args(["probe", "mx.example.test", "--baseline", "b.json"]));
    assert_eq!(out.status, 2, "{}", out.stderr);
    assert!(out.stderr.contains("--domain"), "{}", out.stderr);
    let out = run(env
        .cmd()
        .args(["probe", "--domain", "example.test", "--update-baseline"]));
    assert_eq!(out.status, 2, "{}", out.stderr);
    assert!(out.stderr.contains("--baseline"), "{}", out.stderr);
    let out = run(env.cmd().args([
        "probe",
        "--domain",
        "example.test",
        "--sts-roots",
        "none.pem",
    ]));
    assert_eq!(out.status, 2, "{}", out.stderr);
    assert!(out.stderr.contains("--sts-roots"), "{}", out.stderr);
}
