//! `probe --domain` against real servers on 127.0.0.1: knot serving a DNSSEC-signed test zone
//! (signed at run time), unbound validating it with the zone's key as trust anchor, and a real
//! Postfix serving the chain. Every MX host of every test domain is 127.0.0.1; the host name
//! (SNI, host-name check, TLSA name) is what differs.

mod common;

use chainfix::cert::Certificate;
use chainfix::dane::record::{Matching, Selector, Usage};
use chainfix::dane::Tlsa;
use common::dns::{DnsLab, Zone};
use common::mta::{self, Postfix};
use common::{issue, run, self_signed, Alg, Output, Spec, TestEnv};
use serde_json::Value;

/// Certificates are judged at this time (they are valid 2024..2034); DNSSEC signatures are
/// checked by unbound with the real clock.
const AT: &str = "2027-06-01T00:00:00Z";

/// A TLSA record that matches nothing served.
const WRONG_TLSA: &str = "3 1 1 00000000000000000000000000000000000000000000000000000000000000ff";

struct Lab {
    env: TestEnv,
    dns: DnsLab,
    postfix: Postfix,
}

/// The test PKI (root, intermediate, a leaf for `*.chainfix.test` and
/// `*.insecure.chainfix.test`), Postfix serving leaf + intermediate, and the zones:
///
/// - `chainfix.test.` (signed, the trust anchor):
///   `match` (MX with a matching `3 1 1`, TLS-RPT), `mismatch` (MX with a wrong `3 1 1`),
///   `bogus` (MX whose TLSA record is altered after signing), `nullmx` (`MX 0 .`), `amx` (no MX,
///   an A record and a matching TLSA), `badrpt` (a TLS-RPT record without rua), `alias` (MX
///   host a CNAME of `mx-match`), `tcname` (the TLSA name a CNAME of `mx-match`'s), `big` (31
///   TLSA records: too many for a UDP answer);
/// - `insecure.chainfix.test.` (unsigned, delegated without DS): MX with a wrong `3 1 1`.
fn lab() -> Lab {
    let env = TestEnv::new();
    mta::share_dir(env.dir.path());
    let root = self_signed(&Spec::ca("Domain Test Root", Alg::P256(0)));
    let int = issue(&Spec::ca("Domain Test Intermediate", Alg::P256(1)), &root);
    let leaf = issue(
        &Spec::leaf("mx.chainfix.test", Alg::P256(2))
            .dns(&["*.chainfix.test", "*.insecure.chainfix.test"]),
        &int,
    );
    env.write("root.pem", &root.pem);
    let key = env.write("leaf.key", &leaf.key_pem);
    let full = env.write("full.pem", format!("{}{}", leaf.pem, int.pem));
    let postfix = Postfix::start(
        &env.path("postfix"),
        &[],
        &mta::postfix_tls_files(&key, &full),
    );
    let cert = Certificate::from_der(&leaf.der).expect("leaf parses");
    let good = Tlsa::of(&cert, Usage::DaneEe, Selector::Spki, Matching::Sha256).rdata();
    let lines = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    // 30 more records of 64 bytes each: the RRset outgrows a 1232-byte UDP answer.
    let big: Vec<String> = (0..30)
        .map(|i| {
            format!(
                "_25._tcp.mx-big IN TLSA 3 1 2 {}",
                format!("{i:02x}").repeat(64)
            )
        })
        .collect();
    let mut anchor = Zone {
        origin: "chainfix.test.".into(),
        records: lines(&[
            "match IN MX 10 mx-match",
            "mx-match IN A 127.0.0.1",
            &format!("_25._tcp.mx-match IN TLSA {good}"),
            "_smtp._tls.match IN TXT \"v=TLSRPTv1; rua=mailto:tlsrpt@chainfix.test\"",
            "mismatch IN MX 10 mx-mismatch",
            "mx-mismatch IN A 127.0.0.1",
            &format!("_25._tcp.mx-mismatch IN TLSA {WRONG_TLSA}"),
            "bogus IN MX 10 mx-bogus",
            "mx-bogus IN A 127.0.0.1",
            &format!("_25._tcp.mx-bogus IN TLSA {good}"),
            "nullmx IN MX 0 .",
            "amx IN A 127.0.0.1",
            &format!("_25._tcp.amx IN TLSA {good}"),
            "badrpt IN MX 10 mx-match",
            "_smtp._tls.badrpt IN TXT \"v=TLSRPTv1; ruf=mailto:x@chainfix.test\"",
            "alias IN MX 10 mx-alias",
            "mx-alias IN CNAME mx-match",
            "tcname IN MX 10 mx-tc",
            "mx-tc IN A 127.0.0.1",
            "_25._tcp.mx-tc IN CNAME _25._tcp.mx-match",
            "big IN MX 10 mx-big",
            "mx-big IN A 127.0.0.1",
            &format!("_25._tcp.mx-big IN TLSA {good}"),
            "insecure IN NS ns.insecure",
            "ns.insecure IN A 127.0.0.1",
        ]),
        signed: true,
        tamper: vec![("_25._tcp.mx-bogus".into(), "TLSA".into(), WRONG_TLSA.into())],
    };
    anchor.records.extend(big);
    // Budgets: a chain of 10 CNAMEs, an MX host with 300 addresses, 12 MX hosts.
    anchor.records.push("cnames IN MX 10 c0".into());
    for i in 0..10 {
        anchor.records.push(format!("c{i} IN CNAME c{}", i + 1));
    }
    anchor.records.push("c10 IN A 127.0.0.1".into());
    anchor.records.push("many IN MX 10 mx-many".into());
    for i in 0..300 {
        anchor.records.push(format!(
            "mx-many IN A 127.0.{}.{}",
            1 + i / 250,
            1 + i % 250
        ));
    }
    for i in 0..12 {
        anchor.records.push(format!("manymx IN MX {i} mx-m{i}"));
        anchor.records.push(format!("mx-m{i} IN A 127.0.0.1"));
    }
    let insecure = Zone {
        origin: "insecure.chainfix.test.".into(),
        records: lines(&[
            "@ IN MX 10 mx",
            "mx IN A 127.0.0.1",
            &format!("_25._tcp.mx IN TLSA {WRONG_TLSA}"),
        ]),
        signed: false,
        tamper: Vec::new(),
    };
    let dns = DnsLab::start(&env.path("dns"), &[anchor, insecure]);
    Lab { env, dns, postfix }
}

impl Lab {
    /// `chainfix probe --domain DOMAIN --dns-server unbound --smtp-port postfix` with the test
    /// root trusted, offline, at [`AT`], plus `extra`.
    fn probe(&self, domain: &str, extra: &[&str]) -> Output {
        run(self
            .env
            .cmd()
            .arg("probe")
            .args(["--domain", domain])
            .args(["--dns-server", &self.dns.resolver()])
            .args(["--smtp-port", &self.postfix.port.to_string()])
            .args(["--offline", "--no-default-roots", "--roots"])
            .arg(self.env.path("root.pem"))
            .args([
                "--at",
                AT,
                "--helo",
                "client.chainfix.test",
                "--timeout",
                "10",
            ])
            .args(extra))
    }

    fn json(&self, domain: &str) -> (i32, Value) {
        let out = self.probe(domain, &["--json"]);
        let v: Value = serde_json::from_str(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "not JSON ({e}): {}\n{}\n{}\n{}",
                out.stdout,
                out.stderr,
                self.dns.logs(),
                self.postfix.log()
            )
        });
        (out.status, v)
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

#[test]
#[cfg_attr(
    not(all(have_dns_servers, have_postfix)),
    ignore = "needs knot, ldnsutils, unbound (.ci/setup-dns.sh) and Postfix (.ci/setup-mtas.sh), as root"
)]
fn a_matching_tlsa_record_in_a_signed_zone_authenticates_the_mx() {
    let lab = lab();
    let (status, v) = lab.json("match.chainfix.test");
    let d = &v["domains"][0];
    assert_eq!(d["mail_hosts"], "mx", "{v:#}");
    assert_eq!(d["mx_security"], "secure", "{v:#}\n{}", lab.dns.logs());
    assert_eq!(d["dnssec_trusted"], true);
    let mx = &d["mx"][0];
    assert_eq!(mx["host"], "mx-match.chainfix.test");
    assert_eq!(mx["preference"], 10);
    assert_eq!(mx["addresses"][0], "127.0.0.1");
    assert_eq!(mx["address_security"], "secure");
    assert_eq!(mx["dane"]["state"], "applies", "{v:#}");
    assert_eq!(mx["dane"]["tlsa_security"], "secure");
    let r = &v["results"][mx["results"][0].as_u64().expect("index") as usize];
    assert_eq!(r["dane"]["presented"], "authenticated", "{v:#}");
    assert_eq!(r["status"], "ok", "{v:#}\n{}", lab.postfix.log());
    assert_eq!(
        r["target"],
        format!("mx-match.chainfix.test[127.0.0.1]:{}", lab.postfix.port)
    );
    // TLS-RPT present: reported, no finding.
    assert_eq!(d["tls_rpt"]["state"], "present", "{v:#}");
    assert_eq!(d["tls_rpt"]["rua"][0], "mailto:tlsrpt@chainfix.test");
    assert!(!codes(&d["problems"]).contains(&"tls-rpt-missing".into()));
    assert_eq!(d["status"], "ok");
    assert_eq!(status, 0, "{v:#}");
}

#[test]
#[cfg_attr(
    not(all(have_dns_servers, have_postfix)),
    ignore = "needs knot, ldnsutils, unbound (.ci/setup-dns.sh) and Postfix (.ci/setup-mtas.sh), as root"
)]
fn a_tlsa_mismatch_is_dane_mismatch_4_7_323_and_tls_rpt_missing_is_info() {
    let lab = lab();
    let (status, v) = lab.json("mismatch.chainfix.test");
    let d = &v["domains"][0];
    assert_eq!(d["mx"][0]["dane"]["state"], "applies", "{v:#}");
    let r = &v["results"][0];
    assert_eq!(r["dane"]["presented"], "failed", "{v:#}");
    let f = finding(&r["problems"], "dane-mismatch");
    assert_eq!(f["severity"], "error");
    assert!(
        f["receiver_view"]
            .as_str()
            .expect("view")
            .contains("4.7.323"),
        "{f:#}"
    );
    let rpt = finding(&d["problems"], "tls-rpt-missing");
    assert_eq!(rpt["severity"], "info");
    assert_eq!(d["tls_rpt"]["state"], "missing");
    assert_eq!(status, 1, "{v:#}");
    // --nagios covers the domain: CRITICAL, naming the code.
    let nagios = lab.probe("mismatch.chainfix.test", &["--nagios"]);
    assert_eq!(nagios.status, 2, "{}", nagios.stdout);
    assert!(
        nagios.stdout.starts_with("CHAINFIX CRITICAL"),
        "{}",
        nagios.stdout
    );
    assert!(nagios.stdout.contains("dane-mismatch"), "{}", nagios.stdout);
}

#[test]
#[cfg_attr(
    not(all(have_dns_servers, have_postfix)),
    ignore = "needs knot, ldnsutils, unbound (.ci/setup-dns.sh) and Postfix (.ci/setup-mtas.sh), as root"
)]
fn a_tampered_tlsa_signature_is_dnssec_bogus_4_7_324() {
    let lab = lab();
    let (status, v) = lab.json("bogus.chainfix.test");
    let mx = &v["domains"][0]["mx"][0];
    assert_eq!(mx["dane"]["state"], "bogus", "{v:#}\n{}", lab.dns.logs());
    assert_eq!(mx["dane"]["tlsa_security"], "bogus");
    let r = &v["results"][0];
    let f = finding(&r["problems"], "dnssec-bogus");
    assert_eq!(f["severity"], "error");
    assert!(
        f["receiver_view"]
            .as_str()
            .expect("view")
            .contains("4.7.324"),
        "{f:#}"
    );
    // The chain is not judged against records that failed validation.
    assert!(r["dane"].is_null(), "{r:#}");
    assert_eq!(status, 1);
    // unbound really found the signature broken.
    assert!(
        lab.dns.logs().contains("validation failure"),
        "{}",
        lab.dns.logs()
    );
    // --brief: the domain line, then the MX address with the code.
    let brief = lab.probe("bogus.chainfix.test", &["--brief"]);
    assert_eq!(brief.status, 1, "{}", brief.stdout);
    assert!(
        brief.stdout.contains("domain bogus.chainfix.test"),
        "{}",
        brief.stdout
    );
    assert!(brief.stdout.contains("dnssec-bogus"), "{}", brief.stdout);
}

#[test]
#[cfg_attr(
    not(all(have_dns_servers, have_postfix)),
    ignore = "needs knot, ldnsutils, unbound (.ci/setup-dns.sh) and Postfix (.ci/setup-mtas.sh), as root"
)]
fn tlsa_records_in_an_insecure_zone_are_ignored() {
    let lab = lab();
    let (status, v) = lab.json("insecure.chainfix.test");
    let d = &v["domains"][0];
    assert_eq!(d["mx_security"], "insecure", "{v:#}\n{}", lab.dns.logs());
    let mx = &d["mx"][0];
    assert_eq!(mx["host"], "mx.insecure.chainfix.test");
    assert_eq!(mx["dane"]["state"], "insecure", "{v:#}");
    assert_eq!(mx["dane"]["records"][0], WRONG_TLSA);
    let r = &v["results"][0];
    assert!(
        r["dane"].is_null(),
        "the wrong record was not applied: {r:#}"
    );
    assert_eq!(
        finding(&r["problems"], "dane-tlsa-insecure")["severity"],
        "info"
    );
    assert_eq!(r["status"], "ok", "{v:#}");
    assert_eq!(status, 0, "{v:#}");
    // The human report says so.
    let human = lab.probe("insecure.chainfix.test", &[]);
    assert!(
        human.stdout.contains("TLSA records ignored"),
        "{}",
        human.stdout
    );
    // The domain's block comes first, then its MX address.
    let block = human
        .stdout
        .find("domain insecure.chainfix.test")
        .expect("domain block");
    let mx = human
        .stdout
        .find("mx.insecure.chainfix.test[127.0.0.1]")
        .expect("MX result");
    assert!(block < mx, "{}", human.stdout);
}

#[test]
#[cfg_attr(
    not(all(have_dns_servers, have_postfix)),
    ignore = "needs knot, ldnsutils, unbound (.ci/setup-dns.sh) and Postfix (.ci/setup-mtas.sh), as root"
)]
fn a_null_mx_domain_takes_no_mail() {
    let lab = lab();
    let (status, v) = lab.json("nullmx.chainfix.test");
    let d = &v["domains"][0];
    assert_eq!(d["mail_hosts"], "null-mx", "{v:#}");
    let f = finding(&d["problems"], "null-mx");
    assert_eq!(f["severity"], "error");
    assert!(f["receiver_view"]
        .as_str()
        .expect("view")
        .contains("5.1.10"));
    assert_eq!(d["mx"].as_array().expect("mx").len(), 0);
    assert_eq!(
        v["results"].as_array().expect("results").len(),
        0,
        "nothing probed"
    );
    assert_eq!(status, 1);
}

#[test]
#[cfg_attr(
    not(all(have_dns_servers, have_postfix)),
    ignore = "needs knot, ldnsutils, unbound (.ci/setup-dns.sh) and Postfix (.ci/setup-mtas.sh), as root"
)]
fn no_mx_falls_back_to_the_domain_address_with_its_own_tlsa() {
    let lab = lab();
    let (status, v) = lab.json("amx.chainfix.test");
    let d = &v["domains"][0];
    assert_eq!(d["mail_hosts"], "implicit", "{v:#}");
    assert_eq!(finding(&d["problems"], "implicit-mx")["severity"], "info");
    let mx = &d["mx"][0];
    assert_eq!(mx["host"], "amx.chainfix.test");
    assert!(mx["preference"].is_null());
    assert_eq!(mx["dane"]["state"], "applies", "{v:#}");
    let r = &v["results"][0];
    assert_eq!(
        r["target"],
        format!("amx.chainfix.test[127.0.0.1]:{}", lab.postfix.port)
    );
    assert_eq!(r["dane"]["presented"], "authenticated", "{v:#}");
    assert_eq!(status, 0, "{v:#}");
}

#[test]
#[cfg_attr(
    not(all(have_dns_servers, have_postfix)),
    ignore = "needs knot, ldnsutils, unbound (.ci/setup-dns.sh) and Postfix (.ci/setup-mtas.sh), as root"
)]
fn a_tls_rpt_record_without_rua_is_malformed() {
    let lab = lab();
    let (status, v) = lab.json("badrpt.chainfix.test");
    let d = &v["domains"][0];
    assert_eq!(d["tls_rpt"]["state"], "malformed", "{v:#}");
    assert_eq!(
        finding(&d["problems"], "tls-rpt-malformed")["severity"],
        "warning"
    );
    // A warning only: the MX itself is fine.
    assert_eq!(status, 0, "{v:#}");
}

#[test]
#[cfg_attr(
    not(all(have_dns_servers, have_postfix)),
    ignore = "needs knot, ldnsutils, unbound (.ci/setup-dns.sh) and Postfix (.ci/setup-mtas.sh), as root"
)]
fn secure_cnames_of_the_mx_host_and_of_the_tlsa_name_are_followed() {
    let lab = lab();
    // RFC 7672 §2.2.2: the MX host is a secure CNAME: the expanded name's TLSA records apply.
    let (status, v) = lab.json("alias.chainfix.test");
    let mx = &v["domains"][0]["mx"][0];
    assert_eq!(mx["host"], "mx-alias.chainfix.test", "{v:#}");
    assert_eq!(mx["cnames"][0], "mx-match.chainfix.test", "{v:#}");
    assert_eq!(mx["dane"]["state"], "applies", "{v:#}");
    assert_eq!(mx["dane"]["tlsa_name"], "_25._tcp.mx-match.chainfix.test");
    assert_eq!(
        v["results"][0]["dane"]["presented"], "authenticated",
        "{v:#}"
    );
    assert_eq!(status, 0, "{v:#}");
    // The TLSA name itself is a CNAME: the records are read through it.
    let (status, v) = lab.json("tcname.chainfix.test");
    let mx = &v["domains"][0]["mx"][0];
    assert_eq!(mx["dane"]["state"], "applies", "{v:#}");
    assert_eq!(mx["dane"]["tlsa_name"], "_25._tcp.mx-tc.chainfix.test");
    assert_eq!(
        v["results"][0]["dane"]["presented"], "authenticated",
        "{v:#}"
    );
    assert_eq!(status, 0, "{v:#}");
}

#[test]
#[cfg_attr(
    not(all(have_dns_servers, have_postfix)),
    ignore = "needs knot, ldnsutils, unbound (.ci/setup-dns.sh) and Postfix (.ci/setup-mtas.sh), as root"
)]
fn a_tlsa_rrset_too_large_for_udp_is_read_over_tcp() {
    let lab = lab();
    let (status, v) = lab.json("big.chainfix.test");
    let mx = &v["domains"][0]["mx"][0];
    assert_eq!(mx["dane"]["state"], "applies", "{v:#}");
    assert_eq!(mx["dane"]["records"].as_array().expect("records").len(), 31);
    let r = &v["results"][0];
    assert_eq!(r["dane"]["presented"], "authenticated", "{v:#}");
    // So many records are a warning of their own, not an error.
    assert_eq!(
        finding(&r["problems"], "dane-rrset-too-large")["severity"],
        "warning"
    );
    assert_eq!(status, 0, "{v:#}");
}

/// Needs no server: a resolver that never answers.
#[test]
fn a_silent_resolver_is_dns_lookup_failed_not_a_hang() {
    let env = TestEnv::new();
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
    let started = std::time::Instant::now();
    let out = run(env
        .cmd()
        .args([
            "probe",
            "--domain",
            "example.test",
            "--json",
            "--timeout",
            "1",
        ])
        .arg("--dns-server")
        .arg(silent.local_addr().expect("addr").to_string()));
    assert_eq!(out.status, 1, "{}{}", out.stdout, out.stderr);
    let v: Value = serde_json::from_str(&out.stdout).expect("JSON");
    let d = &v["domains"][0];
    assert_eq!(d["mail_hosts"], "lookup-failed", "{v:#}");
    let f = finding(&d["problems"], "dns-lookup-failed");
    assert_eq!(f["detail"], "timeout", "{f:#}");
    assert!(started.elapsed() < std::time::Duration::from_secs(30));
}

#[test]
fn a_bad_domain_or_resolver_is_a_usage_error() {
    let env = TestEnv::new();
    let out = run(env.cmd().args(["probe", "--domain", "not a domain"]));
    assert_eq!(out.status, 2, "{}", out.stderr);
    assert!(out.stderr.contains("not a domain name"), "{}", out.stderr);
    let nagios = run(env
        .cmd()
        .args(["probe", "--domain", "example.test", "--nagios"])
        .args(["--dns-server", "localhost"]));
    assert_eq!(nagios.status, 3, "{}", nagios.stdout);
    assert!(
        nagios.stdout.starts_with("CHAINFIX UNKNOWN"),
        "{}",
        nagios.stdout
    );
}

#[test]
#[cfg_attr(
    not(all(have_dns_servers, have_postfix)),
    ignore = "needs knot, ldnsutils, unbound (.ci/setup-dns.sh) and Postfix (.ci/setup-mtas.sh), as root"
)]
fn dns_budgets_cut_long_cname_chains_huge_answers_and_too_many_mx_hosts() {
    let lab = lab();
    // 10 CNAMEs from the MX host: more than 8 are not followed.
    let (status, v) = lab.json("cnames.chainfix.test");
    let r = &v["results"][0];
    let f = finding(&r["problems"], "dns-lookup-failed");
    assert_eq!(f["detail"], "cname-chain", "{v:#}\n{}", lab.dns.logs());
    assert_eq!(status, 1);
    // 300 A records in one answer: more than 256 are refused.
    let (status, v) = lab.json("many.chainfix.test");
    let f = finding(&v["results"][0]["problems"], "dns-lookup-failed");
    assert_eq!(f["detail"], "too-many-records", "{v:#}");
    assert_eq!(status, 1);
    // 12 MX hosts: the first 10 by preference are checked, and the report says so.
    let (status, v) = lab.json("manymx.chainfix.test");
    let d = &v["domains"][0];
    let hosts: Vec<&str> = d["mx"]
        .as_array()
        .expect("mx")
        .iter()
        .map(|m| m["host"].as_str().expect("host"))
        .collect();
    assert_eq!(hosts.len(), 10, "{v:#}");
    assert_eq!(hosts[0], "mx-m0.chainfix.test");
    assert_eq!(hosts[9], "mx-m9.chainfix.test");
    assert_eq!(
        finding(&d["problems"], "dns-lookup-failed")["severity"],
        "warning"
    );
    assert_eq!(status, 0, "{v:#}");
}
