//! MTA-STS (RFC 8461) against a real nginx on loopback: the policy fetched over HTTPS with a
//! test CA's certificate, then judged for MX hosts as `probe --domain` judges them. Each test
//! checks what a user sees: the finding codes, their severities, the NDR text and the detail
//! code that says why no policy was fetched.
//!
//! The policy host's address and port come from the test (the caller's DNS gives them in
//! `probe --domain`); its certificate's root is passed as `--sts-roots` would pass it.

mod common;

use std::net::{IpAddr, TcpListener};
use std::time::{Duration, Instant};

use chainfix::diagnose::{Code, Finding, Severity};
use chainfix::mtasts::judge::{MxVerdict, PolicyState, RecordState};
use chainfix::mtasts::{self, record, Assessment, Certificate, FetchError, Fetched, Input, Mx};
use common::https::Nginx;
use common::{issue, self_signed, Alg, Cert, Spec, TestEnv};

const DOMAIN: &str = "example.test";
const POLICY_HOST: &str = "mta-sts.example.test";
const POLICY_PATH: &str = ".well-known/mta-sts.txt";
/// 2027-01-15: inside the test certificates' 2024..2034 validity.
const NOW: i64 = 1_800_000_000;
const RECORD: &str = "v=STSv1; id=20261202T0000";
const LOCALHOST: [IpAddr; 1] = [IpAddr::V4(std::net::Ipv4Addr::LOCALHOST)];

/// A private test CA and a certificate it issued for `name`.
fn pki(name: &str) -> (Cert, Cert) {
    let root = self_signed(&Spec::ca("Chainfix MTA-STS Test Root", Alg::Rsa2048(0)).serial(1));
    let leaf = issue(&Spec::leaf(name, Alg::P256(1)).serial(2), &root);
    (root, leaf)
}

/// A policy in `mode` listing `*.example.test` and `mx.partner.test`, CRLF line ends.
fn policy(mode: &str) -> String {
    format!(
        "version: STSv1\r\nmode: {mode}\r\nmx: *.example.test\r\nmx: mx.partner.test\r\n\
         max_age: 604800\r\n"
    )
}

/// nginx serving a certificate for `cert_name` with `server_body`; the test CA's root.
struct Site {
    _env: TestEnv,
    nginx: Nginx,
    root: Cert,
}

fn serve(cert_name: &str, policy_body: Option<&str>, server_body: &str) -> Site {
    let env = TestEnv::new();
    let dir = env.path("nginx");
    let (root, leaf) = pki(cert_name);
    if let Some(body) = policy_body {
        Nginx::www(&dir, POLICY_PATH, body);
    }
    let nginx = Nginx::start(&dir, &leaf.pem, &leaf.key_pem, server_body);
    Site {
        _env: env,
        nginx,
        root,
    }
}

impl Site {
    /// The fetch, trusting the test CA (`--sts-roots`) when `trust_root`.
    fn fetch(&self, trust_root: bool) -> Result<Fetched, FetchError> {
        let roots = if trust_root {
            vec![self.root.der.clone()]
        } else {
            Vec::new()
        };
        mtasts::fetch(&mtasts::Request {
            domain: DOMAIN,
            addrs: &LOCALHOST,
            port: self.nginx.port,
            extra_roots: &roots,
            deadline: Instant::now() + Duration::from_secs(20),
            now: NOW,
        })
    }
}

/// What `probe --domain` judges: the TXT records, the fetch, the MX hosts.
fn judge(txt: &[&str], fetch: &Result<Fetched, FetchError>, mxs: &[Mx<'_>]) -> Assessment {
    let txt: Vec<String> = txt.iter().map(|s| s.to_string()).collect();
    let record = record::parse(&txt);
    mtasts::assess(&Input {
        domain: DOMAIN,
        port: 443,
        record: &record,
        fetch: Some(fetch),
        mxs,
    })
}

fn mx(host: &str, certificate: Certificate) -> Mx<'_> {
    Mx {
        host,
        certificate,
        dane: false,
    }
}

/// Every finding, the domain's then each MX's, as (code, severity).
fn codes(a: &Assessment) -> Vec<(Code, Severity)> {
    all(a).iter().map(|f| (f.code, f.severity)).collect()
}

fn all(a: &Assessment) -> Vec<&Finding> {
    a.findings
        .iter()
        .chain(a.mx.iter().flat_map(|m| &m.findings))
        .collect()
}

/// The one domain finding a failed fetch gives, with its detail code.
fn unavailable(a: &Assessment) -> (&Finding, &'static str) {
    assert_eq!(
        codes(a),
        [(Code::MtaStsPolicyUnavailable, Severity::Warning)],
        "{:#?}",
        a.findings
    );
    let f = &a.findings[0];
    (f, f.detail.unwrap_or("none"))
}

const STATIC: &str = "location / { }";

#[test]
#[cfg_attr(not(have_nginx), ignore = "needs nginx (.ci/setup-https.sh)")]
fn an_enforce_policy_is_fetched_and_a_failing_certificate_is_a_4_7_5_error() {
    let site = serve(POLICY_HOST, Some(&policy("enforce")), STATIC);
    let fetched = site.fetch(true);
    let got = fetched
        .as_ref()
        .unwrap_or_else(|e| panic!("{e}\n{}", site.nginx.logs()));
    assert_eq!(got.body, policy("enforce").as_bytes());
    assert_eq!(
        got.url,
        format!(
            "https://mta-sts.example.test:{}/.well-known/mta-sts.txt",
            site.nginx.port
        )
    );

    let mxs = [
        mx("mx1.example.test.", Certificate::Valid),
        mx("MX.Partner.Test", Certificate::Valid),
        mx(
            "mx2.example.test",
            Certificate::Invalid(vec![Code::UntrustedRoot]),
        ),
    ];
    let a = judge(&["v=spf1 -all", RECORD], &fetched, &mxs);
    assert_eq!(
        codes(&a),
        [(Code::MtaStsCertificateInvalid, Severity::Error)]
    );
    let verdicts: Vec<MxVerdict> = a.mx.iter().map(|m| m.view.verdict).collect();
    assert_eq!(
        verdicts,
        [MxVerdict::Pass, MxVerdict::Pass, MxVerdict::Fail]
    );
    let f = &a.mx[2].findings[0];
    assert_eq!(
        f.receiver_view.as_deref(),
        Some("Exchange Online: 4.7.5 Remote certificate failed MTA-STS validation")
    );
    assert!(f.message.contains("mx2.example.test") && f.message.contains("untrusted-root"));
    assert_eq!(a.view.record, RecordState::Valid);
    assert_eq!(a.view.id.as_deref(), Some("20261202T0000"));
    assert_eq!(a.view.policy, PolicyState::Valid);
    assert_eq!(a.view.max_age, Some(604_800));
}

#[test]
#[cfg_attr(not(have_nginx), ignore = "needs nginx (.ci/setup-https.sh)")]
fn an_mx_the_enforce_policy_does_not_list_is_a_4_4_8_error() {
    let site = serve(POLICY_HOST, Some(&policy("enforce")), STATIC);
    let fetched = site.fetch(true);
    // `*.example.test` matches one label only.
    let mxs = [
        mx("mx.elsewhere.test", Certificate::Valid),
        mx("a.b.example.test", Certificate::Valid),
    ];
    let a = judge(&[RECORD], &fetched, &mxs);
    assert_eq!(
        codes(&a),
        [
            (Code::MtaStsMxNotListed, Severity::Error),
            (Code::MtaStsMxNotListed, Severity::Error)
        ],
        "{:?}",
        fetched.err()
    );
    let f = &a.mx[0].findings[0];
    assert_eq!(
        f.receiver_view.as_deref(),
        Some("Exchange Online: 4.4.8 MX hosts of example.test failed MTA-STS validation")
    );
    assert!(
        f.message.contains("*.example.test, mx.partner.test"),
        "{}",
        f.message
    );
}

#[test]
#[cfg_attr(not(have_nginx), ignore = "needs nginx (.ci/setup-https.sh)")]
fn a_testing_policy_makes_failures_warnings_and_mail_still_flows() {
    let site = serve(POLICY_HOST, Some(&policy("testing")), STATIC);
    let fetched = site.fetch(true);
    let mxs = [mx(
        "mx.elsewhere.test",
        Certificate::Invalid(vec![Code::Expired, Code::HostnameMismatch]),
    )];
    let a = judge(&[RECORD], &fetched, &mxs);
    assert_eq!(
        codes(&a),
        [
            (Code::MtaStsMxNotListed, Severity::Warning),
            (Code::MtaStsCertificateInvalid, Severity::Warning)
        ],
        "{:?}",
        fetched.err()
    );
    for f in all(&a) {
        assert_eq!(f.receiver_view, None, "testing mode bounces nothing");
        assert!(f.message.contains("testing mode"), "{}", f.message);
    }
    assert_eq!(a.view.mode, Some(mtasts::Mode::Testing));
}

#[test]
#[cfg_attr(not(have_nginx), ignore = "needs nginx (.ci/setup-https.sh)")]
fn a_policy_host_with_an_untrusted_certificate_leaves_no_policy() {
    let site = serve(POLICY_HOST, Some(&policy("enforce")), STATIC);
    // Without --sts-roots the test CA is no trusted root.
    let fetched = site.fetch(false);
    let mxs = [mx("mx.elsewhere.test", Certificate::Valid)];
    let a = judge(&[RECORD], &fetched, &mxs);
    let (f, detail) = unavailable(&a);
    assert_eq!(detail, "certificate-untrusted", "{}", f.message);
    assert!(f.message.contains("mta-sts.example.test"), "{}", f.message);
    assert_eq!(
        f.url.as_deref(),
        Some("https://mta-sts.example.test/.well-known/mta-sts.txt")
    );
    // No policy in force: the unlisted MX is not judged.
    assert_eq!(a.mx[0].view.verdict, MxVerdict::NoPolicy);
    assert_eq!(a.view.policy, PolicyState::Unavailable);
}

#[test]
#[cfg_attr(not(have_nginx), ignore = "needs nginx (.ci/setup-https.sh)")]
fn a_policy_host_certificate_for_another_name_is_refused() {
    let site = serve("mta-sts.other.test", Some(&policy("enforce")), STATIC);
    let fetched = site.fetch(true);
    let a = judge(&[RECORD], &fetched, &[]);
    let (f, detail) = unavailable(&a);
    assert_eq!(detail, "certificate-name-mismatch", "{}", f.message);
    assert!(
        f.message.contains("not valid for mta-sts.example.test")
            && f.message.contains("mta-sts.other.test"),
        "{}",
        f.message
    );
}

/// `now` is a parameter (`--at`): the same certificate is valid in 2027 and expired in 2035.
#[test]
#[cfg_attr(not(have_nginx), ignore = "needs nginx (.ci/setup-https.sh)")]
fn the_policy_host_certificate_is_judged_at_the_time_given() {
    let site = serve(POLICY_HOST, Some(&policy("enforce")), STATIC);
    let at = |now: i64| {
        mtasts::fetch(&mtasts::Request {
            domain: DOMAIN,
            addrs: &LOCALHOST,
            port: site.nginx.port,
            extra_roots: std::slice::from_ref(&site.root.der),
            deadline: Instant::now() + Duration::from_secs(20),
            now,
        })
    };
    assert!(at(NOW).is_ok(), "{:?}", at(NOW).err());
    // 2035-01-01, after the leaf's notAfter (2034-01-01).
    let a = judge(&[RECORD], &at(2_051_222_400), &[]);
    let (f, detail) = unavailable(&a);
    assert_eq!(detail, "certificate-expired", "{}", f.message);
}

#[test]
#[cfg_attr(not(have_nginx), ignore = "needs nginx (.ci/setup-https.sh)")]
fn a_redirect_is_not_followed() {
    let site = serve(
        POLICY_HOST,
        None,
        "location = /.well-known/mta-sts.txt { \
           return 301 https://policies.elsewhere.test/mta-sts.txt; }",
    );
    let fetched = site.fetch(true);
    let a = judge(&[RECORD], &fetched, &[]);
    let (f, detail) = unavailable(&a);
    assert_eq!(detail, "redirect", "{}", f.message);
    assert!(
        f.message.contains("HTTP 301")
            && f.message
                .contains("https://policies.elsewhere.test/mta-sts.txt"),
        "{}",
        f.message
    );
}

#[test]
#[cfg_attr(not(have_nginx), ignore = "needs nginx (.ci/setup-https.sh)")]
fn an_oversized_policy_is_refused_and_one_under_64_kib_is_read() {
    let padded = |size: usize| {
        let mut body = policy("enforce");
        while body.len() < size {
            body.push_str("x-padding: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n");
        }
        body
    };
    let site = serve(POLICY_HOST, Some(&padded(70 * 1024)), STATIC);
    let a = judge(&[RECORD], &site.fetch(true), &[]);
    let (f, detail) = unavailable(&a);
    assert_eq!(detail, "too-large", "{}", f.message);
    assert!(f.message.contains("64 KiB"), "{}", f.message);

    let under = padded(60 * 1024);
    Nginx::www(&site._env.path("nginx"), POLICY_PATH, &under);
    let fetched = site.fetch(true);
    assert_eq!(fetched.map(|f| f.body.len()), Ok(under.len()));
}

#[test]
#[cfg_attr(not(have_nginx), ignore = "needs nginx (.ci/setup-https.sh)")]
fn a_policy_served_as_html_or_missing_is_refused() {
    let site = serve(
        POLICY_HOST,
        Some(&policy("enforce")),
        "location = /.well-known/mta-sts.txt { types { } default_type text/html; }",
    );
    let a = judge(&[RECORD], &site.fetch(true), &[]);
    let (f, detail) = unavailable(&a);
    assert_eq!(detail, "content-type", "{}", f.message);
    assert!(f.message.contains("\"text/html\""), "{}", f.message);

    let empty = serve(POLICY_HOST, None, STATIC);
    let a = judge(&[RECORD], &empty.fetch(true), &[]);
    let (f, detail) = unavailable(&a);
    assert_eq!(detail, "http-status", "{}", f.message);
    assert!(f.message.contains("HTTP 404"), "{}", f.message);
}

#[test]
#[cfg_attr(not(have_nginx), ignore = "needs nginx (.ci/setup-https.sh)")]
fn a_policy_without_a_txt_record_and_an_invalid_policy_are_reported() {
    let site = serve(POLICY_HOST, Some(&policy("enforce")), STATIC);
    let mxs = [mx("mx.elsewhere.test", Certificate::Valid)];
    // Senders look for the TXT record first: without it the policy is never used.
    let a = judge(&["v=spf1 -all"], &site.fetch(true), &mxs);
    assert_eq!(codes(&a), [(Code::MtaStsRecordMissing, Severity::Warning)]);
    assert_eq!(a.view.record, RecordState::Absent);
    // Two records: none is used.
    let a = judge(&[RECORD, "v=STSv1; id=2"], &site.fetch(true), &mxs);
    assert_eq!(codes(&a), [(Code::MtaStsRecordInvalid, Severity::Warning)]);
    // A policy in enforce mode with no mx line is invalid.
    let broken = "version: STSv1\nmode: enforce\nmax_age: 86400\n";
    Nginx::www(&site._env.path("nginx"), POLICY_PATH, broken);
    let a = judge(&[RECORD], &site.fetch(true), &mxs);
    assert_eq!(codes(&a), [(Code::MtaStsPolicyInvalid, Severity::Warning)]);
    assert_eq!(a.findings[0].detail, Some("missing-mx"));
}

/// A server that accepts the connection and never answers: the fetch ends at its deadline.
#[test]
fn a_silent_policy_host_is_cut_off_at_the_deadline() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let started = Instant::now();
    let fetched = mtasts::fetch(&mtasts::Request {
        domain: DOMAIN,
        addrs: &LOCALHOST,
        port,
        extra_roots: &[],
        deadline: started + Duration::from_millis(700),
        now: NOW,
    });
    let elapsed = started.elapsed();
    drop(listener);
    let a = judge(&[RECORD], &fetched, &[]);
    let (f, detail) = unavailable(&a);
    assert_eq!(detail, "timeout", "{}", f.message);
    assert!(f.message.contains("TLS handshake"), "{}", f.message);
    assert!(elapsed < Duration::from_secs(5), "{elapsed:?}");
}
