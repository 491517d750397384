//! AIA fetching end to end: chainfix against a scripted loopback HTTP server (and proxy),
//! checking what a sysadmin sees: the chain written or reported, finding codes and details,
//! the exit status, and how many requests reached the server.

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

/// Evaluation time inside the validity of every generated certificate.
const AT: &str = "2026-06-01T00:00:00Z";

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/// `chainfix <sub> --json --at AT --no-default-roots --roots root.pem --cache-dir <env>/cache`,
/// run inside the test directory; `extra` comes last.
fn chainfix_cmd(env: &TestEnv, sub: &str, extra: &[&str]) -> Command {
    let mut cmd = env.cmd();
    cmd.arg(sub)
        .args([
            "--json",
            "--at",
            AT,
            "--no-default-roots",
            "--roots",
            "root.pem",
        ])
        .arg("--cache-dir")
        .arg(env.path("cache"))
        .args(extra);
    cmd
}

fn inspect(env: &TestEnv, extra: &[&str]) -> Output {
    run(&mut chainfix_cmd(env, "inspect", extra))
}

fn repair(env: &TestEnv, extra: &[&str]) -> Output {
    run(&mut chainfix_cmd(env, "repair", extra))
}

/// The only result of a one-leaf run.
fn only_result(json: &Value) -> &Value {
    let results = json["results"].as_array().expect("results array");
    assert_eq!(results.len(), 1, "expected exactly one result: {json:#}");
    &results[0]
}

fn as_str(v: &Value) -> &str {
    v.as_str().unwrap_or("")
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

/// The single problem with this code; panics (showing the result) if there is not exactly one.
fn problem<'a>(result: &'a Value, code: &str) -> &'a Value {
    let found = problems(result, code);
    assert_eq!(
        found.len(),
        1,
        "expected exactly one {code} problem: {:#}",
        result["problems"]
    );
    found[0]
}

fn problem_codes(result: &Value) -> Vec<String> {
    result["problems"]
        .as_array()
        .expect("problems array")
        .iter()
        .map(|p| as_str(&p["code"]).to_string())
        .collect()
}

fn chain_field(result: &Value, field: &str) -> Vec<String> {
    result["chain"]
        .as_array()
        .expect("chain array")
        .iter()
        .map(|c| as_str(&c[field]).to_string())
        .collect()
}

fn chain_subjects(result: &Value) -> Vec<String> {
    chain_field(result, "subject")
}

fn chain_roles(result: &Value) -> Vec<String> {
    chain_field(result, "role")
}

fn chain_sha256(result: &Value) -> Vec<String> {
    chain_field(result, "sha256")
}

fn chain_source_kinds(result: &Value) -> Vec<String> {
    result["chain"]
        .as_array()
        .expect("chain array")
        .iter()
        .map(|c| as_str(&c["source"]["kind"]).to_string())
        .collect()
}

fn subject(cert: &Cert) -> String {
    format!("CN={}", cert.spec.cn)
}

fn sha256_hex(der: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(der)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The certificates (DER) in a PEM file, in order.
fn pem_certs(bytes: &[u8]) -> Vec<Vec<u8>> {
    pem::parse_many(bytes)
        .expect("PEM file parses")
        .into_iter()
        .filter(|p| p.tag() == "CERTIFICATE")
        .map(|p| p.contents().to_vec())
        .collect()
}

/// Asserts that one aia-fetch-failed warning for `url` has this detail; returns it.
fn assert_fetch_failed<'a>(result: &'a Value, url: &str, detail: &str) -> &'a Value {
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
    p
}

/// The "missing issuer, nothing could be found" error on a broken chain.
/// (A chain that did get part-way may also carry repairable missing-intermediate errors for
/// the intermediates that were found but not presented.)
fn assert_missing_not_repairable(result: &Value) {
    let unfixable: Vec<&Value> = problems(result, "missing-intermediate")
        .into_iter()
        .filter(|p| p["repairable"] == false)
        .collect();
    assert_eq!(
        unfixable.len(),
        1,
        "expected one unrepairable missing-intermediate: {:#}",
        result["problems"]
    );
    assert_eq!(unfixable[0]["severity"], "error", "{:#}", unfixable[0]);
    assert_eq!(result["status"], "broken", "{result:#}");
}

/// A leaf-only cert.pem and root.pem in a fresh directory for a `Chain` whose leaf AIA is `urls`.
fn leaf_only_env(urls: &[&str]) -> (TestEnv, Chain) {
    let env = TestEnv::new();
    let chain = Chain::new(urls);
    env.write("cert.pem", &chain.leaf.pem);
    env.write("root.pem", &chain.root.pem);
    (env, chain)
}

/// A broken-AIA run: leaf AIA points at `reply`; returns (result JSON, output, elapsed).
fn run_with_reply(reply: Reply, extra: &[&str]) -> (Value, Output, Duration, HttpServer, String) {
    let server = HttpServer::start(vec![("/int.crt", reply)]);
    let url = server.url("/int.crt");
    let (env, _chain) = leaf_only_env(&[&url]);
    let mut args = vec!["cert.pem"];
    args.extend_from_slice(extra);
    let start = Instant::now();
    let out = inspect(&env, &args);
    let elapsed = start.elapsed();
    let json = out.json();
    (json, out, elapsed, server, url)
}

/// root -> int1 -> int2 -> leaf; the leaf's AIA names int2, int2's AIA names int1; the server
/// serves both (DER).
struct Deep {
    root: Cert,
    int1: Cert,
    int2: Cert,
    leaf: Cert,
    int1_url: String,
    int2_url: String,
}

fn deep_chain(server: &HttpServer) -> Deep {
    let root = self_signed(&Spec::ca("Deep Root CA", Alg::Rsa2048(0)).serial(10));
    let int1 = issue(
        &Spec::ca("Deep Intermediate One", Alg::Rsa2048(1)).serial(11),
        &root,
    );
    let int1_url = server.url("/int1.crt");
    let int2 = issue(
        &Spec::ca("Deep Intermediate Two", Alg::Rsa2048(2))
            .serial(12)
            .aia(&int1_url),
        &int1,
    );
    let int2_url = server.url("/int2.crt");
    let leaf = issue(
        &Spec::leaf("mail.example.test", Alg::P256(0))
            .serial(13)
            .aia(&int2_url),
        &int2,
    );
    server.set("/int1.crt", Reply::Body(int1.der.clone()));
    server.set("/int2.crt", Reply::Body(int2.der.clone()));
    Deep {
        root,
        int1,
        int2,
        leaf,
        int1_url,
        int2_url,
    }
}

// ---------------------------------------------------------------------------------------------
// 1. The basic case: leaf only, intermediate over AIA
// ---------------------------------------------------------------------------------------------

#[test]
fn leaf_only_is_repairable_with_intermediate_from_aia() {
    let server = HttpServer::start(vec![]);
    let url = server.url("/int.crt");
    let (env, chain) = leaf_only_env(&[&url]);
    server.set("/int.crt", Reply::Body(chain.int.der.clone()));

    let out = inspect(&env, &["cert.pem"]);
    out.assert_status(1); // inspect: a repairable error is still an error
    let json = out.json();
    let result = only_result(&json);
    assert_eq!(result["status"], "repairable", "{result:#}");
    assert_eq!(
        chain_subjects(result),
        vec![
            subject(&chain.leaf),
            subject(&chain.int),
            subject(&chain.root)
        ]
    );
    assert_eq!(chain_roles(result), vec!["leaf", "intermediate", "root"]);
    assert_eq!(chain_source_kinds(result), vec!["input", "aia", "roots"]);
    assert_eq!(result["chain"][1]["source"]["location"], url.as_str());
    assert_eq!(result["chain"][0]["signature"], "verified");
    assert_eq!(result["chain"][1]["signature"], "verified");
    let missing = problem(result, "missing-intermediate");
    assert_eq!(missing["severity"], "error");
    assert_eq!(missing["repairable"], true, "{missing:#}");
    assert_eq!(missing["cert"]["subject"], subject(&chain.int).as_str());
    assert!(
        problems(result, "aia-fetch-failed").is_empty(),
        "{result:#}"
    );
    assert_eq!(server.hits("/int.crt"), 1);
}

#[test]
fn repair_writes_fullchain_fetched_over_aia_that_openssl_verifies() {
    let server = HttpServer::start(vec![]);
    let url = server.url("/int.crt");
    let (env, chain) = leaf_only_env(&[&url]);
    server.set("/int.crt", Reply::Body(chain.int.der.clone()));

    let out = repair(&env, &["cert.pem", "--out", "out"]);
    out.assert_status(0);
    let json = out.json();
    let result = only_result(&json);
    assert_eq!(result["status"], "repairable", "{result:#}");
    assert!(
        result.get("not_written").is_none_or(Value::is_null),
        "{result:#}"
    );
    assert_eq!(result["changed"], true);

    assert_eq!(
        pem_certs(&env.read("out/fullchain.pem")),
        vec![chain.leaf.der.clone(), chain.int.der.clone()],
        "fullchain.pem must be leaf + intermediate (no root without --include-root)"
    );
    assert_eq!(
        pem_certs(&env.read("out/chain.pem")),
        vec![chain.int.der.clone()]
    );
    assert_eq!(
        pem_certs(&env.read("out/cert.pem")),
        vec![chain.leaf.der.clone()]
    );

    let verify = env.openssl(&[
        "verify",
        "-CAfile",
        "root.pem",
        "-untrusted",
        "out/chain.pem",
        "out/cert.pem",
    ]);
    verify.assert_status(0);
    assert!(
        verify.stdout.contains("out/cert.pem: OK"),
        "{}",
        verify.stdout
    );
    let verify = env.openssl(&[
        "verify",
        "-CAfile",
        "root.pem",
        "-untrusted",
        "out/fullchain.pem",
        "out/cert.pem",
    ]);
    verify.assert_status(0);
    assert!(
        verify.stdout.contains("out/cert.pem: OK"),
        "{}",
        verify.stdout
    );
    assert_eq!(server.hits("/int.crt"), 1);
}

// ---------------------------------------------------------------------------------------------
// 2. Two missing levels
// ---------------------------------------------------------------------------------------------

#[test]
fn two_missing_levels_are_both_fetched_in_issuing_order() {
    let server = HttpServer::start(vec![]);
    let deep = deep_chain(&server);
    let env = TestEnv::new();
    env.write("cert.pem", &deep.leaf.pem);
    env.write("root.pem", &deep.root.pem);

    let out = inspect(&env, &["cert.pem"]);
    out.assert_status(1);
    let json = out.json();
    let result = only_result(&json);
    assert_eq!(result["status"], "repairable", "{result:#}");
    assert_eq!(
        chain_subjects(result),
        vec![
            subject(&deep.leaf),
            subject(&deep.int2),
            subject(&deep.int1),
            subject(&deep.root)
        ]
    );
    assert_eq!(
        chain_source_kinds(result),
        vec!["input", "aia", "aia", "roots"]
    );
    assert_eq!(
        result["chain"][1]["source"]["location"],
        deep.int2_url.as_str()
    );
    assert_eq!(
        result["chain"][2]["source"]["location"],
        deep.int1_url.as_str()
    );
    assert_eq!(server.hits("/int2.crt"), 1);
    assert_eq!(server.hits("/int1.crt"), 1);

    let out = repair(&env, &["cert.pem", "--out", "out"]);
    out.assert_status(0);
    assert_eq!(
        pem_certs(&env.read("out/fullchain.pem")),
        vec![
            deep.leaf.der.clone(),
            deep.int2.der.clone(),
            deep.int1.der.clone()
        ]
    );
    let verify = env.openssl(&[
        "verify",
        "-CAfile",
        "root.pem",
        "-untrusted",
        "out/chain.pem",
        "out/cert.pem",
    ]);
    verify.assert_status(0);
}

// ---------------------------------------------------------------------------------------------
// 3./4. Response formats
// ---------------------------------------------------------------------------------------------

#[test]
fn pkcs7_response_with_unrelated_cert_first_is_used() {
    let server = HttpServer::start(vec![]);
    let url = server.url("/int.p7c");
    let (env, chain) = leaf_only_env(&[&url]);
    let other_root = self_signed(&Spec::ca("Unrelated Root CA", Alg::Rsa2048(3)).serial(77));
    let other = issue(
        &Spec::ca("Unrelated Intermediate CA", Alg::Rsa2048(2)).serial(78),
        &other_root,
    );
    // The wanted certificate last, as SET OF order is not meaningful.
    server.set(
        "/int.p7c",
        Reply::Typed(
            "application/pkcs7-mime".into(),
            pkcs7_certs_only(&[&other.der, &chain.int.der]),
        ),
    );

    let out = inspect(&env, &["cert.pem"]);
    out.assert_status(1);
    let json = out.json();
    let result = only_result(&json);
    assert_eq!(result["status"], "repairable", "{result:#}");
    assert_eq!(
        chain_sha256(result),
        vec![
            sha256_hex(&chain.leaf.der),
            sha256_hex(&chain.int.der),
            sha256_hex(&chain.root.der)
        ]
    );
    assert_eq!(chain_source_kinds(result), vec!["input", "aia", "roots"]);
    assert!(
        problems(result, "aia-fetch-failed").is_empty(),
        "{result:#}"
    );
    assert_eq!(server.hits("/int.p7c"), 1);

    let out = repair(&env, &["cert.pem", "--out", "out"]);
    out.assert_status(0);
    assert_eq!(
        pem_certs(&env.read("out/fullchain.pem")),
        vec![chain.leaf.der.clone(), chain.int.der.clone()],
        "the unrelated certificate from the .p7c must not be written"
    );
}

#[test]
fn pem_response_is_used() {
    let server = HttpServer::start(vec![]);
    let url = server.url("/int.pem");
    let (env, chain) = leaf_only_env(&[&url]);
    server.set(
        "/int.pem",
        Reply::Typed(
            "application/x-pem-file".into(),
            chain.int.pem.clone().into(),
        ),
    );

    let out = inspect(&env, &["cert.pem"]);
    out.assert_status(1);
    let json = out.json();
    let result = only_result(&json);
    assert_eq!(result["status"], "repairable", "{result:#}");
    assert_eq!(
        chain_subjects(result),
        vec![
            subject(&chain.leaf),
            subject(&chain.int),
            subject(&chain.root)
        ]
    );
    assert_eq!(chain_source_kinds(result), vec!["input", "aia", "roots"]);
    assert_eq!(server.hits("/int.pem"), 1);
}

#[test]
fn pem_response_of_exactly_one_mib_is_accepted() {
    // The limit is 1 MiB: a body of exactly 1 MiB is within it.
    let server = HttpServer::start(vec![]);
    let url = server.url("/int.pem");
    let (env, chain) = leaf_only_env(&[&url]);
    let limit = 1024 * 1024;
    let mut body = String::from("Intermediate certificate, padded by the CA's web server:\n");
    let pad = limit - body.len() - chain.int.pem.len();
    body.push_str(&"#".repeat(pad - 1));
    body.push('\n');
    body.push_str(&chain.int.pem);
    assert_eq!(body.len(), limit);
    server.set("/int.pem", Reply::Body(body.into_bytes()));

    let out = inspect(&env, &["cert.pem"]);
    let json = out.json();
    let result = only_result(&json);
    assert!(
        problems(result, "aia-fetch-failed").is_empty(),
        "{result:#}"
    );
    assert_eq!(result["status"], "repairable", "{result:#}");
    assert_eq!(chain_source_kinds(result), vec!["input", "aia", "roots"]);
}

// ---------------------------------------------------------------------------------------------
// 5.-7., 14. Failures of the AIA server
// ---------------------------------------------------------------------------------------------

#[test]
fn http_404_is_reported_and_nothing_is_written() {
    let server = HttpServer::start(vec![("/int.crt", Reply::Status(404))]);
    let url = server.url("/int.crt");
    let (env, chain) = leaf_only_env(&[&url]);

    let out = inspect(&env, &["cert.pem"]);
    out.assert_status(1);
    let json = out.json();
    let result = only_result(&json);
    assert_fetch_failed(result, &url, "http-status");
    assert_missing_not_repairable(result);
    assert_eq!(chain_subjects(result), vec![subject(&chain.leaf)]);
    assert_eq!(server.hits("/int.crt"), 1);

    let out = repair(&env, &["cert.pem", "--out", "out"]);
    out.assert_status(1);
    let json = out.json();
    let result = only_result(&json);
    assert!(
        result["not_written"]
            .as_str()
            .is_some_and(|s| !s.is_empty()),
        "not_written must say why: {result:#}"
    );
    assert!(
        !env.path("out/fullchain.pem").exists(),
        "no fullchain.pem may be written"
    );
    assert!(
        !env.path("out/chain.pem").exists(),
        "no chain.pem may be written"
    );
}

#[test]
fn trickling_response_times_out() {
    let server = HttpServer::start(vec![]);
    let url = server.url("/int.crt");
    let (env, chain) = leaf_only_env(&[&url]);
    server.set(
        "/int.crt",
        Reply::Trickle(chain.int.der.clone(), Duration::from_millis(100)),
    );
    let start = Instant::now();
    let out = inspect(&env, &["cert.pem", "--timeout", "2"]);
    let elapsed = start.elapsed();
    out.assert_status(1);
    let json = out.json();
    let result = only_result(&json);
    assert_fetch_failed(result, &url, "timeout");
    assert_missing_not_repairable(result);
    assert!(
        elapsed < Duration::from_secs(6),
        "a 2 s timeout must end the run well before 10 s; took {elapsed:?}"
    );
}

#[test]
fn hanging_server_times_out() {
    let (json, out, elapsed, _server, url) = run_with_reply(Reply::Hang, &["--timeout", "1"]);
    out.assert_status(1);
    let result = only_result(&json);
    assert_fetch_failed(result, &url, "timeout");
    assert_missing_not_repairable(result);
    assert!(elapsed < Duration::from_secs(6), "took {elapsed:?}");
}

#[test]
fn endless_response_is_cut_at_one_mib() {
    let (json, out, elapsed, _server, url) = run_with_reply(Reply::Endless, &["--timeout", "2"]);
    out.assert_status(1);
    let result = only_result(&json);
    assert_fetch_failed(result, &url, "response-too-large");
    assert_missing_not_repairable(result);
    assert!(elapsed < Duration::from_secs(6), "took {elapsed:?}");
}

#[test]
fn body_one_byte_over_one_mib_is_too_large() {
    let (json, out, _, server, url) = run_with_reply(
        Reply::Body(vec![b'A'; 1024 * 1024 + 1]),
        &["--timeout", "5"],
    );
    out.assert_status(1);
    let result = only_result(&json);
    assert_fetch_failed(result, &url, "response-too-large");
    assert_missing_not_repairable(result);
    assert_eq!(server.hits("/int.crt"), 1);
}

#[test]
fn lying_ten_gigabyte_content_length_is_refused_quickly() {
    let (json, out, elapsed, _server, url) =
        run_with_reply(Reply::LyingLength(10_000_000_000), &["--timeout", "5"]);
    out.assert_status(1);
    let result = only_result(&json);
    assert_fetch_failed(result, &url, "response-too-large");
    assert_missing_not_repairable(result);
    assert!(
        elapsed < Duration::from_secs(4),
        "a declared 10 GB body must be refused at once; took {elapsed:?}"
    );
}

#[test]
fn html_error_page_with_status_200_is_not_a_certificate() {
    let page = b"<!DOCTYPE html><html><head><title>Error</title></head>\
                 <body><h1>Something went wrong</h1></body></html>\n"
        .to_vec();
    let (json, out, _, _server, url) =
        run_with_reply(Reply::Typed("text/html; charset=utf-8".into(), page), &[]);
    out.assert_status(1);
    let result = only_result(&json);
    assert_fetch_failed(result, &url, "not-a-certificate");
    assert_missing_not_repairable(result);
}

// ---------------------------------------------------------------------------------------------
// 8. A fetched certificate that does not sign the child
// ---------------------------------------------------------------------------------------------

#[test]
fn fetched_impostor_with_right_name_but_wrong_key_is_rejected() {
    let server = HttpServer::start(vec![]);
    let url = server.url("/int.crt");
    let (env, chain) = leaf_only_env(&[&url]);
    // Same subject as the real intermediate, different key, validly signed by the root.
    let impostor = issue(
        &Spec::ca("Chainfix Test Intermediate CA", Alg::Rsa2048(2)).serial(2),
        &chain.root,
    );
    server.set("/int.crt", Reply::Body(impostor.der.clone()));

    let out = inspect(&env, &["cert.pem"]);
    out.assert_status(1);
    let json = out.json();
    let result = only_result(&json);
    let bad = problem(result, "issuer-signature-invalid");
    assert_eq!(bad["severity"], "warning", "{bad:#}");
    assert_eq!(bad["cert"]["sha256"], sha256_hex(&impostor.der).as_str());
    assert_eq!(bad["url"], url.as_str(), "{bad:#}");
    assert_missing_not_repairable(result);
    assert!(
        !chain_sha256(result).contains(&sha256_hex(&impostor.der)),
        "the impostor must not be in the chain: {result:#}"
    );
    assert_eq!(chain_subjects(result), vec![subject(&chain.leaf)]);

    let out = repair(&env, &["cert.pem", "--out", "out"]);
    out.assert_status(1);
    assert!(!env.path("out/fullchain.pem").exists());
}

// ---------------------------------------------------------------------------------------------
// 9. AIA loops
// ---------------------------------------------------------------------------------------------

#[test]
fn aia_loop_between_two_cross_signed_cas_ends_quickly() {
    let server = HttpServer::start(vec![]);
    let a_url = server.url("/a.crt");
    let b_url = server.url("/b.crt");
    let a_spec = Spec::ca("Loop CA A", Alg::Rsa2048(1)).serial(21);
    let b_spec = Spec::ca("Loop CA B", Alg::Rsa2048(2)).serial(22);
    // A's name and key, to sign B with.
    let a_signer = self_signed(&a_spec);
    let b = issue(&b_spec.clone().aia(&a_url), &a_signer); // B issued by A; B's AIA -> A
    let a = issue(&a_spec.clone().aia(&b_url), &b); // A issued by B; A's AIA -> B
    let leaf = issue(
        &Spec::leaf("mail.example.test", Alg::P256(0))
            .serial(23)
            .aia(&a_url),
        &a,
    );
    server.set("/a.crt", Reply::Body(a.der.clone()));
    server.set("/b.crt", Reply::Body(b.der.clone()));
    let unrelated_root = self_signed(&Spec::ca("Chainfix Test Root CA", Alg::Rsa2048(0)).serial(1));

    let env = TestEnv::new();
    env.write("cert.pem", &leaf.pem);
    env.write("root.pem", &unrelated_root.pem);
    let start = Instant::now();
    let out = inspect(&env, &["cert.pem", "--timeout", "2"]);
    let elapsed = start.elapsed();
    out.assert_status(1);
    let json = out.json();
    let result = only_result(&json);
    assert!(elapsed < Duration::from_secs(5), "took {elapsed:?}");
    assert_ne!(result["status"], "ok", "{result:#}");
    let codes = problem_codes(result);
    assert!(
        codes.iter().any(|c| c == "chain-loop"),
        "the loop must be reported: {codes:?}"
    );
    assert!(
        codes
            .iter()
            .any(|c| c == "missing-intermediate" || c == "untrusted-root"),
        "the chain must be reported as not reaching a root: {codes:?}"
    );
    assert_eq!(result["status"], "broken", "{result:#}");
    assert!(
        server.hits("/a.crt") <= 1,
        "A fetched {} times",
        server.hits("/a.crt")
    );
    assert!(
        server.hits("/b.crt") <= 1,
        "B fetched {} times",
        server.hits("/b.crt")
    );

    let out = repair(&env, &["cert.pem", "--out", "out", "--timeout", "2"]);
    out.assert_status(1);
    assert!(!env.path("out/fullchain.pem").exists());
}

// ---------------------------------------------------------------------------------------------
// 10. --offline
// ---------------------------------------------------------------------------------------------

#[test]
fn offline_with_empty_cache_sends_no_request() {
    let server = HttpServer::start(vec![]);
    let url = server.url("/int.crt");
    let (env, chain) = leaf_only_env(&[&url]);
    server.set("/int.crt", Reply::Body(chain.int.der.clone()));

    let out = inspect(&env, &["cert.pem", "--offline"]);
    out.assert_status(1);
    let json = out.json();
    let result = only_result(&json);
    assert_fetch_failed(result, &url, "offline");
    assert_missing_not_repairable(result);
    assert_eq!(
        server.total_hits(),
        0,
        "--offline must not reach the server"
    );
}

#[test]
fn offline_uses_a_warm_cache() {
    let server = HttpServer::start(vec![]);
    let url = server.url("/int.crt");
    let (env, chain) = leaf_only_env(&[&url]);
    server.set("/int.crt", Reply::Body(chain.int.der.clone()));

    inspect(&env, &["cert.pem"]).assert_status(1);
    assert_eq!(server.total_hits(), 1);

    let out = repair(&env, &["cert.pem", "--out", "out", "--offline"]);
    out.assert_status(0);
    let json = out.json();
    let result = only_result(&json);
    assert_eq!(chain_source_kinds(result), vec!["input", "cache", "roots"]);
    assert_eq!(
        server.total_hits(),
        1,
        "--offline must not reach the server"
    );
    assert_eq!(
        pem_certs(&env.read("out/fullchain.pem")),
        vec![chain.leaf.der.clone(), chain.int.der.clone()]
    );
}

// ---------------------------------------------------------------------------------------------
// 11. Deduplication and the download cache
// ---------------------------------------------------------------------------------------------

#[test]
fn three_leaves_sharing_an_aia_url_cause_one_request_then_zero_with_warm_cache() {
    let server = HttpServer::start(vec![]);
    let url = server.url("/int.crt");
    let chain = Chain::new(&[&url]);
    server.set("/int.crt", Reply::Body(chain.int.der.clone()));
    let env = TestEnv::new();
    env.write("root.pem", &chain.root.pem);
    let names = ["mx1.example.test", "mx2.example.test", "mx3.example.test"];
    let leaves: Vec<Cert> = names
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let leaf = issue(
                &Spec::leaf(name, Alg::P256(i + 1))
                    .serial(100 + i as u64)
                    .aia(&url),
                &chain.int,
            );
            env.write(&format!("certs/{name}.pem"), &leaf.pem);
            leaf
        })
        .collect();

    let out = inspect(&env, &["certs"]);
    out.assert_status(1);
    let json = out.json();
    let results = json["results"].as_array().expect("results");
    assert_eq!(results.len(), 3, "{json:#}");
    for result in results {
        assert_eq!(result["status"], "repairable", "{result:#}");
        assert_eq!(chain_source_kinds(result)[1], "aia", "{result:#}");
    }
    assert_eq!(
        server.hits("/int.crt"),
        1,
        "one request per distinct URL per run"
    );
    assert_eq!(server.total_hits(), 1);
    let entry = env.path(&format!("cache/aia/{}.pem", sha256_hex(url.as_bytes())));
    assert!(entry.is_file(), "cache entry {} missing", entry.display());
    assert_eq!(
        pem_certs(&std::fs::read(&entry).expect("reading cache entry")),
        vec![chain.int.der.clone()]
    );

    // Second run, same cache: no request at all, and the chains are still repaired.
    let out = repair(&env, &["certs", "--out", "out"]);
    out.assert_status(0);
    assert_eq!(
        server.total_hits(),
        1,
        "a warm cache must make zero requests"
    );
    let json = out.json();
    let results = json["results"].as_array().expect("results");
    assert_eq!(results.len(), 3, "{json:#}");
    for result in results {
        assert_eq!(result["status"], "repairable", "{result:#}");
        assert_eq!(
            chain_source_kinds(result),
            vec!["input", "cache", "roots"],
            "{result:#}"
        );
        assert_eq!(result["chain"][1]["source"]["location"], url.as_str());
    }
    for (name, leaf) in names.iter().zip(&leaves) {
        assert_eq!(
            pem_certs(&env.read(&format!("out/{name}/fullchain.pem"))),
            vec![leaf.der.clone(), chain.int.der.clone()],
            "{name}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// 12. Redirects
// ---------------------------------------------------------------------------------------------

/// Routes /r0 -> /r1 -> ... -> /r{n-1} -> /int.crt: `n` redirects in all.
fn redirect_chain(server: &HttpServer, n: usize) -> String {
    for i in 0..n {
        let next = if i + 1 == n {
            server.url("/int.crt")
        } else {
            server.url(&format!("/r{}", i + 1))
        };
        server.set(&format!("/r{i}"), Reply::Redirect(next));
    }
    server.url("/r0")
}

#[test]
fn two_redirects_are_followed() {
    let server = HttpServer::start(vec![]);
    let start_url = redirect_chain(&server, 2);
    let (env, chain) = leaf_only_env(&[&start_url]);
    server.set("/int.crt", Reply::Body(chain.int.der.clone()));

    let out = inspect(&env, &["cert.pem"]);
    let json = out.json();
    let result = only_result(&json);
    assert_eq!(result["status"], "repairable", "{result:#}");
    assert_eq!(chain_source_kinds(result), vec!["input", "aia", "roots"]);
    assert_eq!(server.hits("/int.crt"), 1);
}

#[test]
fn five_redirects_are_still_followed() {
    let server = HttpServer::start(vec![]);
    let start_url = redirect_chain(&server, 5);
    let (env, chain) = leaf_only_env(&[&start_url]);
    server.set("/int.crt", Reply::Body(chain.int.der.clone()));

    let out = inspect(&env, &["cert.pem"]);
    let json = out.json();
    let result = only_result(&json);
    assert!(
        problems(result, "aia-fetch-failed").is_empty(),
        "{result:#}"
    );
    assert_eq!(result["status"], "repairable", "{result:#}");
    assert_eq!(server.hits("/int.crt"), 1);
}

#[test]
fn six_redirects_are_too_many() {
    let server = HttpServer::start(vec![]);
    let start_url = redirect_chain(&server, 6);
    let (env, chain) = leaf_only_env(&[&start_url]);
    server.set("/int.crt", Reply::Body(chain.int.der.clone()));

    let out = inspect(&env, &["cert.pem"]);
    out.assert_status(1);
    let json = out.json();
    let result = only_result(&json);
    assert_fetch_failed(result, &start_url, "too-many-redirects");
    assert_missing_not_repairable(result);
    assert_eq!(
        server.hits("/int.crt"),
        0,
        "the 6th redirect must not be followed"
    );
}

#[test]
fn redirect_to_ftp_url_is_refused() {
    let (json, out, _, _server, url) = run_with_reply(
        Reply::Redirect("ftp://ftp.example.test/int.crt".into()),
        &["--timeout", "2"],
    );
    out.assert_status(1);
    let result = only_result(&json);
    assert_fetch_failed(result, &url, "redirect-refused");
    assert_missing_not_repairable(result);
}

#[test]
fn redirect_to_file_url_is_refused() {
    let (json, out, _, _server, url) =
        run_with_reply(Reply::Redirect("file:///etc/passwd".into()), &[]);
    out.assert_status(1);
    let result = only_result(&json);
    assert_fetch_failed(result, &url, "redirect-refused");
    assert_missing_not_repairable(result);
}

// ---------------------------------------------------------------------------------------------
// 13. Unsupported schemes
// ---------------------------------------------------------------------------------------------

const LDAP_URL: &str =
    "ldap://directory.example.test/cn=Chainfix%20Test%20Intermediate%20CA?cACertificate?base";

#[test]
fn ldap_aia_url_is_reported_as_unsupported() {
    let (env, chain) = leaf_only_env(&[LDAP_URL]);
    let out = inspect(&env, &["cert.pem"]);
    out.assert_status(1);
    let json = out.json();
    let result = only_result(&json);
    assert_fetch_failed(result, LDAP_URL, "unsupported-scheme");
    assert_missing_not_repairable(result);
    assert_eq!(chain_subjects(result), vec![subject(&chain.leaf)]);
}

#[test]
fn ldap_url_then_http_url_uses_the_http_one() {
    let server = HttpServer::start(vec![]);
    let url = server.url("/int.crt");
    let (env, chain) = leaf_only_env(&[LDAP_URL, &url]);
    server.set("/int.crt", Reply::Body(chain.int.der.clone()));

    let out = repair(&env, &["cert.pem", "--out", "out"]);
    out.assert_status(0);
    let json = out.json();
    let result = only_result(&json);
    assert_eq!(result["status"], "repairable", "{result:#}");
    assert_eq!(chain_source_kinds(result), vec!["input", "aia", "roots"]);
    assert_eq!(result["chain"][1]["source"]["location"], url.as_str());
    assert_eq!(server.hits("/int.crt"), 1);
    assert_eq!(
        pem_certs(&env.read("out/fullchain.pem")),
        vec![chain.leaf.der.clone(), chain.int.der.clone()]
    );
}

// ---------------------------------------------------------------------------------------------
// 15. --max-fetches
// ---------------------------------------------------------------------------------------------

#[test]
fn fetch_budget_of_one_stops_the_second_url() {
    let server = HttpServer::start(vec![]);
    let deep = deep_chain(&server);
    let env = TestEnv::new();
    env.write("cert.pem", &deep.leaf.pem);
    env.write("root.pem", &deep.root.pem);

    let out = inspect(&env, &["cert.pem", "--max-fetches", "1"]);
    out.assert_status(1);
    let json = out.json();
    let result = only_result(&json);
    assert_fetch_failed(result, &deep.int1_url, "fetch-budget");
    assert_missing_not_repairable(result);
    assert_eq!(
        chain_subjects(result),
        vec![subject(&deep.leaf), subject(&deep.int2)],
        "the first fetch is kept"
    );
    assert_eq!(server.hits("/int2.crt"), 1);
    assert_eq!(
        server.hits("/int1.crt"),
        0,
        "the budget must stop the request"
    );
}

// ---------------------------------------------------------------------------------------------
// 16. HTTP_PROXY / NO_PROXY
// ---------------------------------------------------------------------------------------------

const PROXIED_URL: &str = "http://aia.example.invalid/int.crt";

#[test]
fn http_proxy_is_used_for_aia() {
    let (env, chain) = leaf_only_env(&[PROXIED_URL]);
    let proxy = start_proxy(HashMap::from([(
        PROXIED_URL.to_string(),
        chain.int.der.clone(),
    )]));
    let mut cmd = chainfix_cmd(
        &env,
        "repair",
        &["cert.pem", "--out", "out", "--timeout", "2"],
    );
    cmd.env("HTTP_PROXY", proxy.url(""));
    let out = run(&mut cmd);
    out.assert_status(0);
    let json = out.json();
    let result = only_result(&json);
    assert_eq!(result["status"], "repairable", "{result:#}");
    assert_eq!(chain_source_kinds(result), vec!["input", "aia", "roots"]);
    assert_eq!(result["chain"][1]["source"]["location"], PROXIED_URL);
    assert_eq!(proxy.hits(PROXIED_URL), 1);
    assert_eq!(proxy.total_hits(), 1);
    assert_eq!(
        pem_certs(&env.read("out/fullchain.pem")),
        vec![chain.leaf.der.clone(), chain.int.der.clone()]
    );
}

#[test]
fn no_proxy_bypasses_the_proxy() {
    let (env, chain) = leaf_only_env(&[PROXIED_URL]);
    let proxy = start_proxy(HashMap::from([(
        PROXIED_URL.to_string(),
        chain.int.der.clone(),
    )]));
    let mut cmd = chainfix_cmd(&env, "inspect", &["cert.pem", "--timeout", "2"]);
    cmd.env("HTTP_PROXY", proxy.url(""))
        .env("NO_PROXY", "aia.example.invalid");
    let out = run(&mut cmd);
    out.assert_status(1);
    let json = out.json();
    let result = only_result(&json);
    assert_fetch_failed(result, PROXIED_URL, "transport");
    assert_missing_not_repairable(result);
    assert_eq!(proxy.total_hits(), 0, "NO_PROXY must bypass the proxy");
}

// ---------------------------------------------------------------------------------------------
// 17. Real certificates against a mirror of their real AIA URLs
// ---------------------------------------------------------------------------------------------

/// `../shared/realworld` with its AIA mirror (tests reading it carry cfg `have_realworld`).
fn realworld() -> PathBuf {
    shared_path("realworld")
}

/// URL -> served bytes, from aia/url-map.tsv.
fn realworld_proxy_map(rw: &Path) -> HashMap<String, Vec<u8>> {
    let tsv = std::fs::read_to_string(rw.join("aia/url-map.tsv")).expect("reading url-map.tsv");
    let mut map = HashMap::new();
    for line in tsv.lines().skip(1) {
        let cols: Vec<&str> = line.split('\t').collect();
        if cols.len() < 2 {
            continue;
        }
        let bytes = std::fs::read(rw.join(cols[1]))
            .unwrap_or_else(|e| panic!("reading mirrored {}: {e}", cols[1]));
        map.insert(cols[0].to_string(), bytes);
    }
    map
}

/// Runs inspect on one real leaf through a proxy serving the mirror; returns (result, proxy).
fn realworld_inspect(rw: &Path, leaf: &str, at: &str, legacy: bool) -> (Value, Output, HttpServer) {
    let env = TestEnv::new();
    let proxy = start_proxy(realworld_proxy_map(rw));
    let mut cmd = env.cmd();
    cmd.args([
        "inspect",
        "--json",
        "--at",
        at,
        "--no-default-roots",
        "--timeout",
        "5",
    ])
    .arg("--cache-dir")
    .arg(env.path("cache"))
    .arg("--roots")
    .arg(rw.join("roots/mozilla-certifi-2026.10.18-cacert.pem"));
    if legacy {
        cmd.arg("--roots")
            .arg(rw.join("roots/legacy-anchors-used.pem"));
    }
    cmd.arg(rw.join(leaf)).env("HTTP_PROXY", proxy.url(""));
    let out = run(&mut cmd);
    let json = out.json();
    let result = only_result(&json).clone();
    (result, out, proxy)
}

fn assert_reaches_root(result: &Value) {
    let chain = result["chain"].as_array().expect("chain");
    assert!(
        chain.len() >= 3,
        "expected leaf, intermediate(s), root: {result:#}"
    );
    assert_eq!(
        chain_roles(result).last().map(String::as_str),
        Some("root"),
        "{result:#}"
    );
    for item in &chain[..chain.len() - 1] {
        assert_eq!(item["signature"], "verified", "{item:#}");
    }
    let status = as_str(&result["status"]);
    assert!(
        status == "ok" || status == "repairable",
        "status {status}: {:#}",
        result["problems"]
    );
}

#[test]
#[cfg_attr(
    not(have_realworld),
    ignore = "needs ../shared/realworld (or CHAINFIX_SHARED_DIR)"
)]
fn realworld_leaves_are_completed_from_mirrored_aia() {
    let rw = realworld();
    // (leaf file, a time inside its validity, its caIssuers URL, expected chain subjects' CNs)
    let cases = [
        (
            "certs/leaf_www.akamai.com_a6d2d6cc.pem",
            "2024-06-01T00:00:00Z",
            "http://cacerts.digicert.com/DigiCertTLSRSASHA2562020CA1-1.crt",
            [
                "www.akamai.com",
                "DigiCert TLS RSA SHA256 2020 CA1",
                "DigiCert Global Root CA",
            ],
        ),
        (
            "certs/leaf_python.org_1320847b.pem",
            "2025-06-01T00:00:00Z",
            "http://r10.i.lencr.org/",
            ["python.org", "R10", "ISRG Root X1"],
        ),
        (
            "certs/leaf_s3.amazonaws.com_7ebf4263.pem",
            "2026-01-15T00:00:00Z",
            "http://crt.r2m04.amazontrust.com/r2m04.cer",
            [
                "s3.amazonaws.com",
                "Amazon RSA 2048 M04",
                "Amazon Root CA 1",
            ],
        ),
    ];
    for (leaf, at, url, cns) in cases {
        let (result, out, proxy) = realworld_inspect(&rw, leaf, at, true);
        assert_ne!(out.status, 2, "{leaf}: {}", out.stderr);
        assert_reaches_root(&result);
        let subjects = chain_subjects(&result);
        assert_eq!(subjects.len(), cns.len(), "{leaf}: {subjects:?}");
        for (s, cn) in subjects.iter().zip(cns) {
            assert!(s.contains(&format!("CN={cn}")), "{leaf}: {s} is not {cn}");
        }
        assert_eq!(
            result["chain"][1]["source"]["kind"], "aia",
            "{leaf}: {result:#}"
        );
        assert_eq!(result["chain"][1]["source"]["location"], url, "{leaf}");
        assert_eq!(result["status"], "repairable", "{leaf}: {result:#}");
        assert_eq!(proxy.hits(url), 1, "{leaf}");
        assert_eq!(
            proxy.total_hits(),
            1,
            "{leaf}: only the missing intermediate is fetched"
        );
    }
}

#[test]
#[cfg_attr(
    not(have_realworld),
    ignore = "needs ../shared/realworld (or CHAINFIX_SHARED_DIR)"
)]
fn realworld_lets_encrypt_x3_chains_to_dst_root_without_fetching_the_p7c() {
    // The trust store holds DST Root CA X3, so its .p7c AIA URL is not needed.
    let rw = realworld();
    let leaf = "certs/leaf_cryptography.io_046c677d.pem";
    let (result, out, proxy) = realworld_inspect(&rw, leaf, "2018-11-01T00:00:00Z", true);
    assert_ne!(out.status, 2, "{}", out.stderr);
    assert_reaches_root(&result);
    let subjects = chain_subjects(&result);
    assert!(
        subjects[1].contains("CN=Let's Encrypt Authority X3"),
        "{subjects:?}"
    );
    assert!(subjects[2].contains("CN=DST Root CA X3"), "{subjects:?}");
    assert_eq!(result["chain"][2]["source"]["kind"], "roots");
    assert_eq!(proxy.hits("http://cert.int-x3.letsencrypt.org/"), 1);
    assert_eq!(
        proxy.hits("http://apps.identrust.com/roots/dstrootcax3.p7c"),
        0,
        "the root is in the trust store: no fetch"
    );
}

#[test]
#[cfg_attr(
    not(have_realworld),
    ignore = "needs ../shared/realworld (or CHAINFIX_SHARED_DIR)"
)]
fn realworld_p7c_response_yields_dst_root_ca_x3() {
    // With only the 2026 Mozilla store, DST Root CA X3 is no longer trusted: chainfix must
    // fetch it from IdenTrust's real .p7c and report it as an untrusted root.
    let rw = realworld();
    let p7c = "http://apps.identrust.com/roots/dstrootcax3.p7c";
    let leaf = "certs/leaf_cryptography.io_046c677d.pem";
    let (result, out, proxy) = realworld_inspect(&rw, leaf, "2018-11-01T00:00:00Z", false);
    out.assert_status(1);
    let chain = result["chain"].as_array().expect("chain");
    assert_eq!(
        chain_roles(&result),
        vec!["leaf", "intermediate", "root"],
        "{result:#}"
    );
    assert!(
        as_str(&chain[2]["subject"]).contains("CN=DST Root CA X3"),
        "{result:#}"
    );
    assert_eq!(chain[2]["source"]["kind"], "aia");
    assert_eq!(chain[2]["source"]["location"], p7c);
    assert_eq!(chain[0]["signature"], "verified");
    assert_eq!(chain[1]["signature"], "verified");
    let untrusted = problem(&result, "untrusted-root");
    assert_eq!(untrusted["severity"], "error");
    assert!(
        as_str(&untrusted["cert"]["subject"]).contains("CN=DST Root CA X3"),
        "{untrusted:#}"
    );
    assert_eq!(result["status"], "broken", "{result:#}");
    assert_eq!(proxy.hits(p7c), 1);
}

// ---------------------------------------------------------------------------------------------
// More cache, transport and response-limit behaviour
// ---------------------------------------------------------------------------------------------

#[test]
fn failed_fetch_is_not_cached_and_is_retried_next_run() {
    let server = HttpServer::start(vec![("/int.crt", Reply::Status(503))]);
    let url = server.url("/int.crt");
    let (env, chain) = leaf_only_env(&[&url]);

    let out = inspect(&env, &["cert.pem"]);
    out.assert_status(1);
    assert_fetch_failed(only_result(&out.json()), &url, "http-status");
    assert_eq!(server.hits("/int.crt"), 1);

    // The CA's server recovers: the next run must ask again, not replay the failure.
    server.set("/int.crt", Reply::Body(chain.int.der.clone()));
    let out = repair(&env, &["cert.pem", "--out", "out"]);
    out.assert_status(0);
    let json = out.json();
    let result = only_result(&json);
    assert_eq!(chain_source_kinds(result), vec!["input", "aia", "roots"]);
    assert_eq!(server.hits("/int.crt"), 2);
    assert!(env.path("out/fullchain.pem").is_file());
}

#[test]
fn default_cache_under_xdg_cache_home_makes_second_run_free() {
    let server = HttpServer::start(vec![]);
    let url = server.url("/int.crt");
    let (env, chain) = leaf_only_env(&[&url]);
    server.set("/int.crt", Reply::Body(chain.int.der.clone()));
    // No --cache-dir: TestEnv::cmd sets XDG_CACHE_HOME=<dir>/cache.
    let mut first = env.cmd();
    first.args([
        "inspect",
        "--json",
        "--at",
        AT,
        "--no-default-roots",
        "--roots",
        "root.pem",
    ]);
    first.arg("cert.pem");
    run(&mut first).assert_status(1);
    assert_eq!(server.total_hits(), 1);
    let entry = env.path(&format!(
        "cache/chainfix/aia/{}.pem",
        sha256_hex(url.as_bytes())
    ));
    assert!(entry.is_file(), "cache entry {} missing", entry.display());

    let mut second = env.cmd();
    second.args([
        "inspect",
        "--json",
        "--at",
        AT,
        "--no-default-roots",
        "--roots",
        "root.pem",
    ]);
    second.arg("cert.pem");
    let out = run(&mut second);
    out.assert_status(1);
    let json = out.json();
    let result = only_result(&json);
    assert_eq!(result["status"], "repairable", "{result:#}");
    assert_eq!(chain_source_kinds(result), vec!["input", "cache", "roots"]);
    assert_eq!(
        server.total_hits(),
        1,
        "a warm cache must make zero requests"
    );
}

#[test]
fn redirect_loop_is_too_many_redirects() {
    let server = HttpServer::start(vec![]);
    let a = server.url("/loop-a");
    let b = server.url("/loop-b");
    server.set("/loop-a", Reply::Redirect(b.clone()));
    server.set("/loop-b", Reply::Redirect(a.clone()));
    let (env, _chain) = leaf_only_env(&[&a]);
    let start = Instant::now();
    let out = inspect(&env, &["cert.pem", "--timeout", "2"]);
    out.assert_status(1);
    let json = out.json();
    let result = only_result(&json);
    assert_fetch_failed(result, &a, "too-many-redirects");
    assert_missing_not_repairable(result);
    assert!(server.total_hits() <= 6, "{} requests", server.total_hits());
    assert!(start.elapsed() < Duration::from_secs(5));
}

#[test]
fn connection_refused_is_a_transport_failure() {
    // A loopback port with nothing listening.
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("addr").port()
    };
    let url = format!("http://127.0.0.1:{port}/int.crt");
    let (env, _chain) = leaf_only_env(&[&url]);
    let out = inspect(&env, &["cert.pem", "--timeout", "2"]);
    out.assert_status(1);
    let json = out.json();
    let result = only_result(&json);
    assert_fetch_failed(result, &url, "transport");
    assert_missing_not_repairable(result);
}

#[test]
fn pkcs7_with_hundreds_of_certificates_is_refused() {
    let server = HttpServer::start(vec![]);
    let url = server.url("/many.p7c");
    let (env, chain) = leaf_only_env(&[&url]);
    let junk_root = self_signed(&Spec::ca("Junk Root CA", Alg::Rsa2048(3)).serial(500));
    let mut certs: Vec<Vec<u8>> = (0..200u64)
        .map(|i| {
            issue(
                &Spec::ca(&format!("Junk CA {i}"), Alg::P256((i % 4) as usize)).serial(1000 + i),
                &junk_root,
            )
            .der
        })
        .collect();
    certs.push(chain.int.der.clone());
    let refs: Vec<&[u8]> = certs.iter().map(Vec::as_slice).collect();
    let body = pkcs7_certs_only(&refs);
    assert!(body.len() < 1024 * 1024);
    server.set("/many.p7c", Reply::Body(body));

    let out = inspect(&env, &["cert.pem"]);
    out.assert_status(1);
    let json = out.json();
    let result = only_result(&json);
    assert_fetch_failed(result, &url, "too-many-certificates");
    assert_missing_not_repairable(result);
}

#[test]
fn rejected_impostor_is_not_replayed_from_the_cache() {
    // Run 1: the AIA server serves a certificate with the right name but the wrong key; it is
    // rejected. The CA fixes its server. Run 2 (same cache) must not keep replaying the
    // rejected certificate from the cache forever: it must find the real intermediate.
    let server = HttpServer::start(vec![]);
    let url = server.url("/int.crt");
    let (env, chain) = leaf_only_env(&[&url]);
    let impostor = issue(
        &Spec::ca("Chainfix Test Intermediate CA", Alg::Rsa2048(2)).serial(2),
        &chain.root,
    );
    server.set("/int.crt", Reply::Body(impostor.der.clone()));
    let out = inspect(&env, &["cert.pem"]);
    out.assert_status(1);
    problem(only_result(&out.json()), "issuer-signature-invalid");

    server.set("/int.crt", Reply::Body(chain.int.der.clone()));
    let out = repair(&env, &["cert.pem", "--out", "out"]);
    let json = out.json();
    let result = only_result(&json);
    assert_eq!(
        chain_sha256(result),
        vec![
            sha256_hex(&chain.leaf.der),
            sha256_hex(&chain.int.der),
            sha256_hex(&chain.root.der)
        ],
        "the real intermediate must be found once the server is fixed: {result:#}"
    );
    assert_eq!(result["status"], "repairable", "{result:#}");
    out.assert_status(0);
    assert_eq!(server.hits("/int.crt"), 2);
}

// ---------------------------------------------------------------------------------------------
// Searches that change the pool
// ---------------------------------------------------------------------------------------------

/// Leaves are searched in rounds, and what a round fetches joins the pool for every leaf.
/// Here the first leaf's search leaves its intermediate open, whose AIA URL serves a
/// cross-signed copy of the second leaf's issuer: the second leaf, complete without it, must
/// be searched again and see it as a candidate, as a search of that leaf alone among the same
/// certificates would.
#[test]
fn a_certificate_fetched_for_one_leaf_is_a_candidate_for_the_other_leaves() {
    let server = HttpServer::start(vec![]);
    let url = server.url("/other.crt");
    let root = self_signed(&Spec::ca("Test Root", Alg::Rsa2048(0)));
    let other_root = self_signed(&Spec::ca("Other Root", Alg::Rsa2048(1)));
    let shared = issue(&Spec::ca("Shared CA", Alg::Rsa2048(2)), &root);
    let cross = issue(&Spec::ca("Shared CA", Alg::Rsa2048(2)), &other_root);
    let missing = issue(&Spec::ca("Missing CA", Alg::Rsa2048(3)), &root);
    let int1 = issue(&Spec::ca("Int One", Alg::P256(0)).aia(&url), &missing);
    let first = issue(&Spec::leaf("a.example.test", Alg::P256(1)), &int1);
    let second = issue(&Spec::leaf("b.example.test", Alg::P256(2)), &shared);
    server.set("/other.crt", Reply::Body(cross.der.clone()));

    let env = TestEnv::new();
    env.write("root.pem", pem_bundle(&[&root, &other_root]));
    env.write("in/a/fullchain.pem", pem_bundle(&[&first, &int1]));
    env.write("in/b/fullchain.pem", pem_bundle(&[&second, &shared]));
    let out = inspect(&env, &["in"]);
    let v = out.json();
    assert_eq!(server.hits("/other.crt"), 1, "{v:#}");
    let results = v["results"].as_array().expect("results");
    assert_eq!(results.len(), 2, "{v:#}");
    // Two equivalent paths: through the input's Shared CA to Test Root, and through the
    // fetched cross-sign to Other Root (both trusted). One is chosen, the other listed.
    let second_result = &results[1];
    let mut tops: Vec<String> = second_result["alternatives"]
        .as_array()
        .expect("alternatives")
        .iter()
        .filter_map(|a| a["chain"].as_array()?.last()?.as_str().map(str::to_string))
        .collect();
    let chosen = chain_subjects(second_result);
    let chosen_top = chosen.last().map_or("", |s| s.trim_start_matches("CN="));
    tops.push(chosen_top.to_string());
    tops.sort();
    assert_eq!(
        tops,
        ["Other Root", "Test Root"],
        "the fetched cross-sign was not tried for the second leaf: {second_result:#}"
    );
}
