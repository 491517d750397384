//! Hostile AIA servers in one place: each attack (slow, endless or huge bodies, redirect games,
//! junk, certificate floods, URL floods, impostors, issuer loops) must end the run with a clear
//! finding and exit status, a bounded number of requests, and bounded memory (peak RSS of the
//! chainfix process under 100 MB, measured with GNU time). Durations are printed, not asserted
//! (a loaded CI machine makes any wall-clock limit flaky); a 60 s guard catches a hang.

mod common;

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

/// Evaluation time inside the validity of every generated certificate.
const AT: &str = "2026-06-01T00:00:00Z";

/// `--timeout` of every run, in seconds.
const TIMEOUT_SECS: u64 = 2;

/// How long one run may take before it counts as hung: far beyond any `--timeout` here, so it
/// only catches a run that would never end (a trickled intermediate would take ~15 minutes).
const HANG_GUARD: Duration = Duration::from_secs(60);

/// Peak resident memory allowed for one chainfix run: 100 MB, in KiB as GNU time reports it.
const MAX_PEAK_RSS_KIB: u64 = 100 * 1000 * 1000 / 1024;

/// GNU time, which reports the peak RSS of its child (`%M`, KiB).
const GNU_TIME: &str = "/usr/bin/time";

// ---------------------------------------------------------------------------------------------
// Running chainfix under GNU time
// ---------------------------------------------------------------------------------------------

/// One measured `chainfix inspect` run.
struct Measured {
    out: Output,
    elapsed: Duration,
    /// Peak RSS in KiB; None when GNU time is not installed.
    peak_rss_kib: Option<u64>,
}

impl Measured {
    fn json(&self) -> Value {
        self.out.json()
    }
}

/// `chainfix inspect --json --no-default-roots --roots root.pem --cache-dir <env>/cache
/// --at AT --timeout 2 <extra>` inside the test directory, under `/usr/bin/time -f %M` when
/// that exists.
fn inspect_measured(env: &TestEnv, extra: &[&str]) -> Measured {
    let rss_file = env.path("peak-rss.txt");
    let _ = std::fs::remove_file(&rss_file);
    let have_time = Path::new(GNU_TIME).is_file();
    let mut cmd = if have_time {
        let mut cmd = Command::new(GNU_TIME);
        cmd.arg("-f")
            .arg("%M")
            .arg("-o")
            .arg(&rss_file)
            .arg(env!("CARGO_BIN_EXE_chainfix"));
        cmd
    } else {
        println!("note: {GNU_TIME} is missing (Debian package `time`): peak memory is not checked");
        Command::new(env!("CARGO_BIN_EXE_chainfix"))
    };
    for var in PROXY_VARS {
        cmd.env_remove(var);
    }
    cmd.env("NO_COLOR", "1")
        .env("XDG_CACHE_HOME", env.path("xdg-cache"))
        .current_dir(env.dir.path())
        .args([
            "inspect",
            "--json",
            "--no-default-roots",
            "--roots",
            "root.pem",
        ])
        .arg("--cache-dir")
        .arg(env.path("cache"))
        .args(["--at", AT, "--timeout", &TIMEOUT_SECS.to_string()])
        .args(extra);
    let start = Instant::now();
    let out = run_with_timeout(&mut cmd, HANG_GUARD);
    let elapsed = start.elapsed();
    let peak_rss_kib = have_time.then(|| {
        let text = std::fs::read_to_string(&rss_file)
            .unwrap_or_else(|e| panic!("GNU time wrote no {}: {e}", rss_file.display()));
        // The last line is %M; GNU time may put "Command exited with non-zero status" first.
        text.lines()
            .rev()
            .find_map(|l| l.trim().parse::<u64>().ok())
            .unwrap_or_else(|| panic!("no peak RSS in GNU time output {text:?}"))
    });
    Measured {
        out,
        elapsed,
        peak_rss_kib,
    }
}

/// Prints the measurements and asserts the memory bound. Time is not asserted: wall-clock limits
/// flake on a loaded machine. Each test pins what a hang or an unbounded read would change
/// instead (the finding's code, request and connection counts), and `HANG_GUARD` ends a run
/// that never finishes.
fn assert_bounded(case: &str, m: &Measured) {
    match m.peak_rss_kib {
        Some(kib) => println!(
            "{case}: exit {}, {:.2} s, peak RSS {kib} KiB ({:.1} MB)",
            m.out.status,
            m.elapsed.as_secs_f64(),
            kib as f64 * 1024.0 / 1e6
        ),
        None => println!(
            "{case}: exit {}, {:.2} s, peak RSS not measured",
            m.out.status,
            m.elapsed.as_secs_f64()
        ),
    }
    if let Some(kib) = m.peak_rss_kib {
        assert!(
            kib < MAX_PEAK_RSS_KIB,
            "{case}: peak RSS {kib} KiB is over 100 MB"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// JSON helpers
// ---------------------------------------------------------------------------------------------

/// The only result of a one-leaf run.
fn only_result(json: &Value) -> &Value {
    let results = json["results"].as_array().expect("results array");
    assert_eq!(results.len(), 1, "expected exactly one result: {json:#}");
    &results[0]
}

/// Every problem with this code.
fn problems<'a>(result: &'a Value, code: &str) -> Vec<&'a Value> {
    result["problems"]
        .as_array()
        .expect("problems array")
        .iter()
        .filter(|p| p["code"] == code)
        .collect()
}

fn problem_codes(result: &Value) -> Vec<String> {
    result["problems"]
        .as_array()
        .expect("problems array")
        .iter()
        .map(|p| p["code"].as_str().unwrap_or("").to_string())
        .collect()
}

fn chain_sha256(result: &Value) -> Vec<String> {
    result["chain"]
        .as_array()
        .expect("chain array")
        .iter()
        .map(|c| c["sha256"].as_str().unwrap_or("").to_string())
        .collect()
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Asserts exactly one aia-fetch-failed warning for `url`, with this detail.
fn assert_fetch_failed(result: &Value, url: &str, detail: &str) {
    let found: Vec<&Value> = problems(result, "aia-fetch-failed")
        .into_iter()
        .filter(|p| p["url"] == url)
        .collect();
    assert_eq!(
        found.len(),
        1,
        "expected one aia-fetch-failed for {url}: {:#}",
        result["problems"]
    );
    let p = found[0];
    assert_eq!(p["detail"], detail, "wrong detail: {p:#}");
    assert_eq!(p["severity"], "warning", "{p:#}");
}

/// The leaf is reported alone and broken: the issuer was found nowhere (one unrepairable
/// missing-intermediate error).
fn assert_leaf_alone_and_broken(result: &Value, leaf: &Cert) {
    assert_eq!(result["status"], "broken", "{result:#}");
    assert_eq!(
        chain_sha256(result),
        vec![sha256_hex(&leaf.der)],
        "nothing may be chained to the leaf: {result:#}"
    );
    let unfixable: Vec<&Value> = problems(result, "missing-intermediate")
        .into_iter()
        .filter(|p| p["repairable"] == false && p["severity"] == "error")
        .collect();
    assert_eq!(
        unfixable.len(),
        1,
        "expected one unrepairable missing-intermediate error: {:#}",
        result["problems"]
    );
}

/// A directory with root.pem and a leaf-only cert.pem of a `Chain` whose leaf AIA is `urls`.
fn leaf_only_env(urls: &[&str]) -> (TestEnv, Chain) {
    let env = TestEnv::new();
    let chain = Chain::new(urls);
    env.write("cert.pem", &chain.leaf.pem);
    env.write("root.pem", &chain.root.pem);
    (env, chain)
}

/// The usual shape: the leaf's only AIA URL answers with `reply`; returns the measured run,
/// the chain, the server (for hit counts) and the URL.
fn hostile_reply(reply: Reply) -> (Measured, Chain, HttpServer, String) {
    let server = HttpServer::start(vec![("/int.crt", reply)]);
    let url = server.url("/int.crt");
    let (env, chain) = leaf_only_env(&[&url]);
    let m = inspect_measured(&env, &["cert.pem"]);
    (m, chain, server, url)
}

/// A raw loopback server that answers every connection with `response` and then keeps the
/// connection open for `hold` (or until the client goes); counts connections.
fn raw_server(response: Vec<u8>, hold: Duration) -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("binding 127.0.0.1:0");
    let addr = listener.local_addr().expect("listener address");
    let count = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&count);
    thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut stream) = conn else { continue };
            seen.fetch_add(1, Ordering::SeqCst);
            let response = response.clone();
            thread::spawn(move || {
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buf) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                if stream.write_all(&response).is_err() {
                    return;
                }
                let _ = stream.flush();
                // Hold the connection: wait for the client to close it (read returns 0).
                let _ = stream.set_read_timeout(Some(hold));
                let _ = stream.read(&mut buf);
            });
        }
    });
    (format!("http://{addr}/int.crt"), count)
}

// ---------------------------------------------------------------------------------------------
// 1. A body trickling one byte per second
// ---------------------------------------------------------------------------------------------

#[test]
fn trickling_body_one_byte_per_second_times_out_after_the_timeout() {
    let server = HttpServer::start(vec![]);
    let url = server.url("/int.crt");
    let (env, chain) = leaf_only_env(&[&url]);
    // The real intermediate, but at one byte per second it would take ~15 minutes.
    server.set(
        "/int.crt",
        Reply::Trickle(chain.int.der.clone(), Duration::from_secs(1)),
    );
    let m = inspect_measured(&env, &["cert.pem"]);
    assert_bounded("1 trickle", &m);
    m.out.assert_status(1);
    let json = m.json();
    let result = only_result(&json);
    assert_fetch_failed(result, &url, "timeout");
    assert_leaf_alone_and_broken(result, &chain.leaf);
    assert!(
        m.elapsed >= Duration::from_millis(TIMEOUT_SECS * 1000 * 3 / 4),
        "a {TIMEOUT_SECS} s timeout cannot end the fetch after {:?}",
        m.elapsed
    );
    assert_eq!(server.hits("/int.crt"), 1);
}

// ---------------------------------------------------------------------------------------------
// 2. An endless body
// ---------------------------------------------------------------------------------------------

#[test]
fn endless_body_is_cut_at_one_mib() {
    let (m, chain, server, url) = hostile_reply(Reply::Endless);
    assert_bounded("2 endless", &m);
    m.out.assert_status(1);
    let json = m.json();
    let result = only_result(&json);
    assert_fetch_failed(result, &url, "response-too-large");
    assert_leaf_alone_and_broken(result, &chain.leaf);
    assert_eq!(server.hits("/int.crt"), 1);
}

// ---------------------------------------------------------------------------------------------
// 3. A 10 GB Content-Length
// ---------------------------------------------------------------------------------------------

#[test]
fn ten_gigabyte_content_length_is_refused_at_once() {
    // The harness's lying server: declares 10 GB, sends 8 bytes, hangs up.
    let (m, chain, server, url) = hostile_reply(Reply::LyingLength(10_000_000_000));
    assert_bounded("3 10 GB length (closes)", &m);
    m.out.assert_status(1);
    let json = m.json();
    let result = only_result(&json);
    assert_fetch_failed(result, &url, "response-too-large");
    assert_leaf_alone_and_broken(result, &chain.leaf);
    assert_eq!(server.hits("/int.crt"), 1);
}

#[test]
fn ten_gigabyte_content_length_on_an_open_connection_is_refused_without_waiting() {
    // Declares 10 GB, sends 8 bytes and keeps the connection open: only a Content-Length
    // check ends this before --timeout (reading would wait, then report a timeout).
    let response = b"HTTP/1.1 200 OK\r\nContent-Type: application/pkix-cert\r\n\
                     Content-Length: 10000000000\r\n\r\npartial!"
        .to_vec();
    let (url, connections) = raw_server(response, Duration::from_secs(30));
    let (env, chain) = leaf_only_env(&[&url]);
    let m = inspect_measured(&env, &["cert.pem"]);
    assert_bounded("3 10 GB length (held open)", &m);
    m.out.assert_status(1);
    let json = m.json();
    let result = only_result(&json);
    assert_fetch_failed(result, &url, "response-too-large");
    assert_leaf_alone_and_broken(result, &chain.leaf);
    assert_eq!(connections.load(Ordering::SeqCst), 1);
}

// ---------------------------------------------------------------------------------------------
// 4. A redirect loop
// ---------------------------------------------------------------------------------------------

#[test]
fn redirect_loop_a_to_b_to_a_is_too_many_redirects() {
    let server = HttpServer::start(vec![]);
    let a = server.url("/loop-a");
    let b = server.url("/loop-b");
    server.set("/loop-a", Reply::Redirect(b));
    server.set("/loop-b", Reply::Redirect(a.clone()));
    let (env, chain) = leaf_only_env(&[&a]);
    let m = inspect_measured(&env, &["cert.pem"]);
    assert_bounded("4 redirect loop", &m);
    m.out.assert_status(1);
    let json = m.json();
    let result = only_result(&json);
    assert_fetch_failed(result, &a, "too-many-redirects");
    assert_leaf_alone_and_broken(result, &chain.leaf);
    // The first request plus at most 5 redirects followed.
    assert!(
        server.total_hits() <= 6,
        "{} requests for a loop",
        server.total_hits()
    );
    assert!(
        server.hits("/loop-b") >= 1,
        "the first redirect is followed"
    );
}

// ---------------------------------------------------------------------------------------------
// 5. Redirects to file:// and ftp://
// ---------------------------------------------------------------------------------------------

#[test]
fn redirect_to_file_etc_passwd_is_refused_and_never_read() {
    let (m, chain, server, url) = hostile_reply(Reply::Redirect("file:///etc/passwd".into()));
    assert_bounded("5 redirect to file:///etc/passwd", &m);
    m.out.assert_status(1);
    let json = m.json();
    let result = only_result(&json);
    assert_fetch_failed(result, &url, "redirect-refused");
    assert_leaf_alone_and_broken(result, &chain.leaf);
    assert_eq!(
        server.total_hits(),
        1,
        "only the AIA URL itself is requested"
    );
    for text in [&m.out.stdout, &m.out.stderr] {
        assert!(
            !text.contains("root:x:0:0") && !text.contains("/bin/sh"),
            "contents of /etc/passwd leaked into the output:\n{text}"
        );
    }
}

#[test]
fn redirect_to_file_url_of_the_real_intermediate_is_refused_and_not_used() {
    // If chainfix followed the redirect at all, this file would complete the chain.
    let server = HttpServer::start(vec![]);
    let url = server.url("/int.crt");
    let (env, chain) = leaf_only_env(&[&url]);
    let int_path = env.write("int.der", &chain.int.der);
    server.set(
        "/int.crt",
        Reply::Redirect(format!("file://{}", int_path.display())),
    );
    let m = inspect_measured(&env, &["cert.pem"]);
    assert_bounded("5 redirect to file:// intermediate", &m);
    m.out.assert_status(1);
    let json = m.json();
    let result = only_result(&json);
    assert_fetch_failed(result, &url, "redirect-refused");
    assert_leaf_alone_and_broken(result, &chain.leaf);
    assert_eq!(server.total_hits(), 1);
}

#[test]
fn redirect_to_ftp_is_refused_and_the_ftp_server_is_never_contacted() {
    let ftp = TcpListener::bind("127.0.0.1:0").expect("binding 127.0.0.1:0");
    ftp.set_nonblocking(true).expect("non-blocking listener");
    let ftp_url = format!(
        "ftp://{}/int.crt",
        ftp.local_addr().expect("listener address")
    );
    let (m, chain, server, url) = hostile_reply(Reply::Redirect(ftp_url));
    assert_bounded("5 redirect to ftp://", &m);
    m.out.assert_status(1);
    let json = m.json();
    let result = only_result(&json);
    assert_fetch_failed(result, &url, "redirect-refused");
    assert_leaf_alone_and_broken(result, &chain.leaf);
    assert_eq!(server.total_hits(), 1);
    match ftp.accept() {
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
        Err(e) => panic!("accept on the ftp listener failed: {e}"),
        Ok((_, peer)) => panic!("chainfix connected to the ftp:// target (from {peer})"),
    }
}

// ---------------------------------------------------------------------------------------------
// 6. An HTML error page with status 200
// ---------------------------------------------------------------------------------------------

#[test]
fn html_error_page_with_status_200_is_not_a_certificate() {
    let page = b"<!DOCTYPE html>\n<html><head><title>503 Service Unavailable</title></head>\n\
                 <body><h1>Service Unavailable</h1><p>Please try again later.</p></body></html>\n"
        .to_vec();
    let (m, chain, server, url) =
        hostile_reply(Reply::Typed("text/html; charset=utf-8".into(), page));
    assert_bounded("6 HTML page", &m);
    m.out.assert_status(1);
    let json = m.json();
    let result = only_result(&json);
    assert_fetch_failed(result, &url, "not-a-certificate");
    assert_leaf_alone_and_broken(result, &chain.leaf);
    assert_eq!(server.hits("/int.crt"), 1);
}

// ---------------------------------------------------------------------------------------------
// 7. A PKCS#7 with 10,000 certificates
// ---------------------------------------------------------------------------------------------

/// A 104-byte self-issued v1 certificate: empty names, Ed25519 algorithm and key (the key
/// bytes carry `n`, so all differ), validity 2020..2045, an empty signature. It parses, but
/// nothing verifies with it.
fn tiny_cert(n: u32) -> Vec<u8> {
    let ed25519 = der_tlv(0x30, &der_oid(&[1, 3, 101, 112]));
    let mut key = [0u8; 33]; // BIT STRING: 0 unused bits, then 32 key bytes
    key[1..5].copy_from_slice(&n.to_be_bytes());
    let spki = der_tlv(0x30, &[ed25519.clone(), der_tlv(0x03, &key)].concat());
    let validity = der_tlv(
        0x30,
        &[
            der_tlv(0x17, b"200101000000Z"),
            der_tlv(0x17, b"450101000000Z"),
        ]
        .concat(),
    );
    let empty_name = der_tlv(0x30, &[]);
    let tbs = der_tlv(
        0x30,
        &[
            der_tlv(0x02, &[1]),
            ed25519.clone(),
            empty_name.clone(),
            validity,
            empty_name,
            spki,
        ]
        .concat(),
    );
    der_tlv(0x30, &[tbs, ed25519, der_tlv(0x03, &[0])].concat())
}

#[test]
fn pkcs7_with_ten_thousand_copies_of_a_certificate_is_too_large() {
    // 10,000 copies of the real intermediate: about 9 MB, over the 1 MiB cap.
    let server = HttpServer::start(vec![]);
    let url = server.url("/many.p7c");
    let (env, chain) = leaf_only_env(&[&url]);
    let copies: Vec<&[u8]> = vec![chain.int.der.as_slice(); 10_000];
    let body = pkcs7_certs_only(&copies);
    assert!(body.len() > 1024 * 1024, "{} bytes", body.len());
    server.set("/many.p7c", Reply::Body(body));
    let m = inspect_measured(&env, &["cert.pem"]);
    assert_bounded("7 PKCS#7 10,000 copies (9 MB)", &m);
    m.out.assert_status(1);
    let json = m.json();
    let result = only_result(&json);
    assert_fetch_failed(result, &url, "response-too-large");
    assert_leaf_alone_and_broken(result, &chain.leaf);
    assert_eq!(server.hits("/many.p7c"), 1);
}

#[test]
fn pkcs7_with_ten_thousand_tiny_certificates_under_one_mib_is_too_many_certificates() {
    // 10,000 distinct tiny certificates plus the real intermediate, all under 1 MiB: the
    // response is refused as a whole (at most 64 certificates per response).
    let server = HttpServer::start(vec![]);
    let url = server.url("/many.p7c");
    let (env, chain) = leaf_only_env(&[&url]);
    let mut certs: Vec<Vec<u8>> = (0..10_000u32).map(tiny_cert).collect();
    assert_eq!(certs[0].len(), 104);
    certs.push(chain.int.der.clone());
    let refs: Vec<&[u8]> = certs.iter().map(Vec::as_slice).collect();
    let body = pkcs7_certs_only(&refs);
    assert!(body.len() < 1024 * 1024, "{} bytes", body.len());
    server.set("/many.p7c", Reply::Body(body));
    let m = inspect_measured(&env, &["cert.pem"]);
    assert_bounded("7 PKCS#7 10,001 tiny certs (<1 MiB)", &m);
    m.out.assert_status(1);
    let json = m.json();
    let result = only_result(&json);
    assert_fetch_failed(result, &url, "too-many-certificates");
    assert_leaf_alone_and_broken(result, &chain.leaf);
    assert_eq!(server.hits("/many.p7c"), 1);
}

// ---------------------------------------------------------------------------------------------
// 8. A certificate with 1,000 AIA URLs
// ---------------------------------------------------------------------------------------------

#[test]
fn thousand_aia_urls_cause_at_most_eight_requests() {
    let server = HttpServer::start(vec![]);
    let paths: Vec<String> = (0..1000).map(|i| format!("/u{i}.crt")).collect();
    for path in &paths {
        server.set(path, Reply::Status(404));
    }
    let urls: Vec<String> = paths.iter().map(|p| server.url(p)).collect();
    let url_refs: Vec<&str> = urls.iter().map(String::as_str).collect();
    let (env, chain) = leaf_only_env(&url_refs);
    let m = inspect_measured(&env, &["cert.pem"]);
    assert_bounded("8 1,000 AIA URLs", &m);
    m.out.assert_status(1);
    let json = m.json();
    let result = only_result(&json);
    assert_leaf_alone_and_broken(result, &chain.leaf);

    let total = server.total_hits();
    println!("8 1,000 AIA URLs: {total} requests");
    assert!(
        (1..=8).contains(&total),
        "{total} requests: the per-certificate cap is 8 URLs"
    );
    let tried: BTreeSet<String> = urls
        .iter()
        .zip(&paths)
        .filter(|(_, p)| {
            let hits = server.hits(p);
            assert!(hits <= 1, "{p} requested {hits} times");
            hits == 1
        })
        .map(|(u, _)| u.clone())
        .collect();
    assert_eq!(tried.len(), total);
    let failed = problems(result, "aia-fetch-failed");
    let reported: BTreeSet<String> = failed
        .iter()
        .map(|p| p["url"].as_str().unwrap_or("").to_string())
        .collect();
    assert_eq!(
        reported, tried,
        "one aia-fetch-failed per URL tried, none for URLs never tried"
    );
    assert_eq!(failed.len(), tried.len(), "{failed:#?}");
    for p in failed {
        assert_eq!(p["detail"], "http-status", "{p:#}");
    }
}

// ---------------------------------------------------------------------------------------------
// 9. An issuer with the right name and the wrong key
// ---------------------------------------------------------------------------------------------

#[test]
fn impostor_issuer_is_rejected_not_chained_and_not_cached() {
    let server = HttpServer::start(vec![]);
    let url = server.url("/int.crt");
    let (env, chain) = leaf_only_env(&[&url]);
    // Same subject as the real intermediate, another key; validly signed by the trusted root.
    let impostor = issue(
        &Spec::ca("Chainfix Test Intermediate CA", Alg::Rsa2048(2)).serial(2),
        &chain.root,
    );
    server.set("/int.crt", Reply::Body(impostor.der.clone()));
    let cache_entry = env.path(&format!("cache/aia/{}.pem", sha256_hex(url.as_bytes())));

    for run in 1..=2 {
        let m = inspect_measured(&env, &["cert.pem"]);
        assert_bounded(&format!("9 impostor (run {run})"), &m);
        m.out.assert_status(1);
        let json = m.json();
        let result = only_result(&json);
        let bad = problems(result, "issuer-signature-invalid");
        assert_eq!(bad.len(), 1, "run {run}: {:#}", result["problems"]);
        assert_eq!(bad[0]["severity"], "warning", "{:#}", bad[0]);
        assert_eq!(bad[0]["cert"]["sha256"], sha256_hex(&impostor.der).as_str());
        assert_eq!(bad[0]["url"], url.as_str(), "{:#}", bad[0]);
        assert_leaf_alone_and_broken(result, &chain.leaf);
        assert!(
            !chain_sha256(result).contains(&sha256_hex(&impostor.der)),
            "the impostor must not be chained"
        );
        assert!(
            !cache_entry.exists(),
            "run {run}: the rejected response was cached at {}",
            cache_entry.display()
        );
        assert_eq!(
            server.hits("/int.crt"),
            run,
            "run {run}: a rejected response is not cached, so every run fetches again"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// 10. Three CAs issuing each other in a loop
// ---------------------------------------------------------------------------------------------

#[test]
fn issuer_loop_through_three_cas_ends_quickly_fetching_each_url_once() {
    let server = HttpServer::start(vec![]);
    let (a_url, b_url, c_url) = (
        server.url("/a.crt"),
        server.url("/b.crt"),
        server.url("/c.crt"),
    );
    let a_spec = Spec::ca("Loop CA A", Alg::Rsa2048(1)).serial(31);
    let b_spec = Spec::ca("Loop CA B", Alg::Rsa2048(2)).serial(32);
    let c_spec = Spec::ca("Loop CA C", Alg::Rsa2048(3)).serial(33);
    // Name-and-key stand-ins to sign with.
    let (a_signer, b_signer, c_signer) = (
        self_signed(&a_spec),
        self_signed(&b_spec),
        self_signed(&c_spec),
    );
    let a = issue(&a_spec.clone().aia(&b_url), &b_signer); // A issued by B
    let b = issue(&b_spec.clone().aia(&c_url), &c_signer); // B issued by C
    let c = issue(&c_spec.clone().aia(&a_url), &a_signer); // C issued by A
    let leaf = issue(
        &Spec::leaf("mail.example.test", Alg::P256(0))
            .serial(34)
            .aia(&a_url),
        &a_signer,
    );
    server.set("/a.crt", Reply::Body(a.der.clone()));
    server.set("/b.crt", Reply::Body(b.der.clone()));
    server.set("/c.crt", Reply::Body(c.der.clone()));
    // No trust anchor on the loop: root.pem is an unrelated root.
    let unrelated = self_signed(&Spec::ca("Chainfix Test Root CA", Alg::Rsa2048(0)).serial(1));
    let env = TestEnv::new();
    env.write("cert.pem", &leaf.pem);
    env.write("root.pem", &unrelated.pem);

    let m = inspect_measured(&env, &["cert.pem"]);
    assert_bounded("10 three-CA loop", &m);
    m.out.assert_status(1);
    let json = m.json();
    let result = only_result(&json);
    assert_eq!(result["status"], "broken", "{result:#}");
    let codes = problem_codes(result);
    assert!(
        codes.iter().any(|c| c == "chain-loop"),
        "the loop that left the chain incomplete must be reported: {codes:?}"
    );
    assert!(
        codes
            .iter()
            .any(|c| c == "missing-intermediate" || c == "untrusted-root"),
        "the chain must be reported as not reaching a trust anchor: {codes:?}"
    );
    for path in ["/a.crt", "/b.crt", "/c.crt"] {
        assert!(
            server.hits(path) <= 1,
            "{path} fetched {} times",
            server.hits(path)
        );
    }
    assert_eq!(
        server.hits("/a.crt"),
        1,
        "the leaf's issuer A is fetched once"
    );
    println!(
        "10 three-CA loop: {} requests, findings {codes:?}",
        server.total_hits()
    );
    assert!(server.total_hits() <= 3, "{} requests", server.total_hits());
    // Nothing on the loop is trusted: no chain may end at a root.
    let roles: Vec<&str> = result["chain"]
        .as_array()
        .expect("chain array")
        .iter()
        .map(|c| c["role"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(roles.first(), Some(&"leaf"), "{roles:?}");
    assert!(
        result["chain"]
            .as_array()
            .expect("chain array")
            .iter()
            .all(|c| !matches!(
                c["source"]["kind"].as_str(),
                Some("roots" | "mozilla-roots")
            )),
        "the loop must not reach a trust anchor: {result:#}"
    );
}
