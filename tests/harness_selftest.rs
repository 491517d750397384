//! Self-test of the shared harness in tests/common: its PKI against real openssl, PKCS#7, HTTP server and proxy.

mod common;

use std::collections::HashMap;
use std::io::{ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::Command;
use std::time::{Duration, Instant};

use common::{
    issue, pem_bundle, pkcs7_certs_only, run, self_signed, start_proxy, Alg, Chain, HttpServer,
    Reply, Spec, TestEnv,
};

/// Sends a raw HTTP/1.1 request for `target` and reads the whole response (until the server
/// closes). Returns (status code, head, body).
fn raw_get(server: &HttpServer, target: &str) -> (u16, String, Vec<u8>) {
    let mut stream = TcpStream::connect(server.addr()).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("set timeout");
    write!(
        stream,
        "GET {target} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
        server.addr()
    )
    .expect("send request");
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).expect("read response");
    split_response(&raw)
}

fn split_response(raw: &[u8]) -> (u16, String, Vec<u8>) {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("response has a complete head");
    let head = String::from_utf8_lossy(&raw[..end]).into_owned();
    let code = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .expect("status code");
    (code, head, raw[end + 4..].to_vec())
}

fn text_of(env: &TestEnv, file: &str) -> String {
    let out = env.openssl(&["x509", "-in", file, "-noout", "-text"]);
    out.assert_status(0);
    out.stdout
}

#[test]
fn chain_verifies_with_openssl() {
    let env = TestEnv::new();
    let chain = Chain::new(&["http://ca.example.test/int.crt"]);
    env.write("root.pem", &chain.root.pem);
    env.write("int.pem", &chain.int.pem);
    env.write("leaf.pem", &chain.leaf.pem);
    let out = env.openssl(&[
        "verify",
        "-purpose",
        "sslserver",
        "-CAfile",
        "root.pem",
        "-untrusted",
        "int.pem",
        "leaf.pem",
    ]);
    out.assert_status(0);
    assert!(out.stdout.contains("leaf.pem: OK"), "{}", out.stdout);

    // Without the intermediate the chain must not verify.
    let out = env.openssl(&["verify", "-CAfile", "root.pem", "leaf.pem"]);
    assert_ne!(out.status, 0, "{}", out.stdout);
}

#[test]
fn extensions_show_in_openssl_text() {
    let env = TestEnv::new();
    let chain = Chain::new(&[
        "http://ca.example.test/int.crt",
        "http://backup.example.test/int.p7c",
    ]);
    env.write("root.pem", &chain.root.pem);
    env.write("int.pem", &chain.int.pem);
    env.write("leaf.pem", &chain.leaf.pem);

    let leaf = text_of(&env, "leaf.pem");
    for want in [
        "Authority Information Access",
        "CA Issuers - URI:http://ca.example.test/int.crt",
        "CA Issuers - URI:http://backup.example.test/int.p7c",
        "DNS:mail.example.test",
        "CA:FALSE",
        "TLS Web Server Authentication, TLS Web Client Authentication",
        "Digital Signature",
        "X509v3 Authority Key Identifier",
        "X509v3 Subject Key Identifier",
        "Serial Number: 3 (0x3)",
        "Not Before: Jan  1 00:00:00 2024 GMT",
        "Not After : Jan  1 00:00:00 2034 GMT",
        "Issuer: CN = Chainfix Test Intermediate CA",
        "Subject: CN = mail.example.test",
        "id-ecPublicKey",
        "Public-Key: (256 bit)",
    ] {
        assert!(leaf.contains(want), "leaf text lacks {want:?}:\n{leaf}");
    }

    let int = text_of(&env, "int.pem");
    for want in [
        "CA:TRUE",
        "Certificate Sign, CRL Sign",
        "X509v3 Subject Key Identifier",
        "X509v3 Authority Key Identifier",
        "Serial Number: 2 (0x2)",
        "sha256WithRSAEncryption",
        "Public-Key: (2048 bit)",
    ] {
        assert!(
            int.contains(want),
            "intermediate text lacks {want:?}:\n{int}"
        );
    }
    assert!(!int.contains("Authority Information Access"), "{int}");

    let root = text_of(&env, "root.pem");
    assert!(root.contains("CA:TRUE"), "{root}");
    assert!(
        !root.contains("Authority Key Identifier"),
        "self-signed root gets no AKI:\n{root}"
    );

    // The intermediate's AKI is the root's SKI.
    let ski = |text: &str| -> String {
        let mut lines = text.lines();
        lines
            .by_ref()
            .find(|l| l.contains("Subject Key Identifier"))
            .expect("SKI present");
        lines.next().expect("SKI value").trim().to_string()
    };
    let root_ski = ski(&root);
    assert!(
        int.contains(&root_ski),
        "int AKI should be {root_ski}:\n{int}"
    );
}

#[test]
fn rsa_signed_certs_are_deterministic() {
    let a = Chain::new(&[]);
    let b = Chain::new(&[]);
    assert_eq!(a.root.der, b.root.der);
    assert_eq!(a.int.der, b.int.der);
    assert_eq!(
        a.leaf.der, b.leaf.der,
        "leaf is signed by an RSA intermediate"
    );
    assert!(a.root.pem.starts_with("-----BEGIN CERTIFICATE-----\n"));
    assert!(a.root.pem.ends_with("-----END CERTIFICATE-----\n"));
    assert!(a.leaf.key_pem.starts_with("-----BEGIN PRIVATE KEY-----"));
}

#[test]
fn cross_signed_pair_verifies_from_either_root() {
    let env = TestEnv::new();
    let chain = Chain::new(&[]);
    let other_root = self_signed(&Spec::ca("Chainfix Other Root", Alg::Rsa2048(2)).serial(10));
    let cross = issue(&chain.int.spec, &other_root);
    assert_ne!(cross.der, chain.int.der);

    env.write("root.pem", &chain.root.pem);
    env.write("other.pem", &other_root.pem);
    env.write("int.pem", &chain.int.pem);
    env.write("cross.pem", &cross.pem);
    env.write("leaf.pem", &chain.leaf.pem);
    for (ca, untrusted) in [("root.pem", "int.pem"), ("other.pem", "cross.pem")] {
        let out = env.openssl(&["verify", "-CAfile", ca, "-untrusted", untrusted, "leaf.pem"]);
        out.assert_status(0);
    }
    // Same subject, same key, different issuer.
    let facts = |file: &str| {
        env.openssl(&["x509", "-in", file, "-noout", "-subject", "-pubkey"])
            .assert_status(0)
            .stdout
            .clone()
    };
    assert_eq!(facts("int.pem"), facts("cross.pem"));
    let issuer = |file: &str| {
        env.openssl(&["x509", "-in", file, "-noout", "-issuer"])
            .assert_status(0)
            .stdout
            .clone()
    };
    assert_ne!(issuer("int.pem"), issuer("cross.pem"));
    assert!(issuer("cross.pem").contains("Chainfix Other Root"));
}

#[test]
fn rsa1024_and_p256_issuers_work() {
    let env = TestEnv::new();
    let weak_root = self_signed(&Spec::ca("Weak Root", Alg::Rsa1024).serial(20));
    let ec_int = issue(
        &Spec::ca("EC Intermediate", Alg::P256(1)).serial(21),
        &weak_root,
    );
    let leaf = issue(
        &Spec::leaf("weak.example.test", Alg::Rsa2048(3)).serial(22),
        &ec_int,
    );
    let weak_leaf = issue(
        &Spec::leaf("weaker.example.test", Alg::Rsa1024).serial(23),
        &ec_int,
    );
    env.write("root.pem", &weak_root.pem);
    env.write("int.pem", &ec_int.pem);
    env.write("leaf.pem", &leaf.pem);
    env.write("weak_leaf.pem", &weak_leaf.pem);
    for file in ["leaf.pem", "weak_leaf.pem"] {
        env.openssl(&[
            "verify",
            "-auth_level",
            "0",
            "-CAfile",
            "root.pem",
            "-untrusted",
            "int.pem",
            file,
        ])
        .assert_status(0);
    }
    assert!(text_of(&env, "root.pem").contains("Public-Key: (1024 bit)"));
    assert!(text_of(&env, "weak_leaf.pem").contains("Public-Key: (1024 bit)"));
    let leaf_text = text_of(&env, "leaf.pem");
    assert!(leaf_text.contains("Key Encipherment"), "{leaf_text}");
    assert!(leaf_text.contains("ecdsa-with-SHA256"), "{leaf_text}");
    // RSA-1024 signatures (via openssl) are deterministic too.
    assert_eq!(
        weak_root.der,
        self_signed(&Spec::ca("Weak Root", Alg::Rsa1024).serial(20)).der
    );
}

#[test]
fn pkcs7_matches_openssl_crl2pkcs7() {
    let env = TestEnv::new();
    let chain = Chain::new(&[]);
    env.write("bundle.pem", pem_bundle(&[&chain.int, &chain.root]));
    let ours = pkcs7_certs_only(&[&chain.int.der, &chain.root.der]);
    env.write("ours.p7c", &ours);

    let out = env.openssl(&["pkcs7", "-inform", "DER", "-in", "ours.p7c", "-print_certs"]);
    out.assert_status(0);
    assert!(
        out.stdout
            .contains("subject=CN = Chainfix Test Intermediate CA"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("subject=CN = Chainfix Test Root CA"),
        "{}",
        out.stdout
    );

    env.openssl(&[
        "crl2pkcs7",
        "-nocrl",
        "-certfile",
        "bundle.pem",
        "-outform",
        "DER",
        "-out",
        "theirs.p7c",
    ])
    .assert_status(0);
    assert_eq!(
        ours,
        env.read("theirs.p7c"),
        "same bytes as openssl crl2pkcs7"
    );

    // The order given is kept, as openssl keeps it.
    let reversed = pkcs7_certs_only(&[&chain.root.der, &chain.int.der]);
    assert_ne!(ours, reversed);
    env.write("reversed.p7c", &reversed);
    env.openssl(&[
        "pkcs7",
        "-inform",
        "DER",
        "-in",
        "reversed.p7c",
        "-print_certs",
    ])
    .assert_status(0);
    // An empty bundle still parses.
    env.write("empty.p7c", pkcs7_certs_only(&[]));
    env.openssl(&["pkcs7", "-inform", "DER", "-in", "empty.p7c", "-noout"])
        .assert_status(0);
    env.openssl(&[
        "crl2pkcs7",
        "-nocrl",
        "-outform",
        "DER",
        "-out",
        "empty_theirs.p7c",
    ])
    .assert_status(0);
    assert_eq!(env.read("empty.p7c"), env.read("empty_theirs.p7c"));
}

#[test]
fn http_body_status_redirect_404_and_hits() {
    let server = HttpServer::start(vec![
        ("/int.crt", Reply::Body(b"DER!".to_vec())),
        (
            "/int.p7c",
            Reply::Typed("application/pkcs7-mime".into(), b"P7".to_vec()),
        ),
        ("/gone", Reply::Status(503)),
        ("/moved", Reply::Redirect("/int.crt".into())),
    ]);
    assert!(server.url("/int.crt").starts_with("http://127.0.0.1:"));

    let (code, head, body) = raw_get(&server, "/int.crt");
    assert_eq!((code, body.as_slice()), (200, b"DER!".as_slice()));
    assert!(head.contains("Content-Length: 4"), "{head}");

    let (code, head, body) = raw_get(&server, "/int.p7c?x=1");
    assert_eq!((code, body.as_slice()), (200, b"P7".as_slice()));
    assert!(
        head.contains("Content-Type: application/pkcs7-mime"),
        "{head}"
    );

    assert_eq!(raw_get(&server, "/gone").0, 503);
    assert_eq!(raw_get(&server, "/nothing-here").0, 404);

    let (code, head, _) = raw_get(&server, "/moved");
    assert_eq!(code, 302);
    assert!(head.contains("Location: /int.crt"), "{head}");

    // Absolute-form requests to the plain server are routed by path.
    let target = server.url("/int.crt");
    assert_eq!(raw_get(&server, &target).0, 200);

    assert_eq!(server.hits("/int.crt"), 2);
    assert_eq!(server.hits("/int.p7c?x=1"), 1);
    assert_eq!(server.hits("/nothing-here"), 1);
    assert_eq!(server.hits("/never"), 0);
    assert_eq!(server.total_hits(), 6);

    server.set("/gone", Reply::Body(b"back".to_vec()));
    assert_eq!(raw_get(&server, "/gone").2, b"back");
}

#[test]
fn http_trickle_is_slow_but_complete() {
    let server = HttpServer::start(vec![(
        "/slow",
        Reply::Trickle(b"abcde".to_vec(), Duration::from_millis(60)),
    )]);
    let start = Instant::now();
    let (code, _, body) = raw_get(&server, "/slow");
    assert_eq!((code, body.as_slice()), (200, b"abcde".as_slice()));
    assert!(start.elapsed() >= Duration::from_millis(250));
}

#[test]
fn http_endless_streams_until_client_goes() {
    let server = HttpServer::start(vec![
        ("/big", Reply::Endless),
        ("/ok", Reply::Body(b"ok".to_vec())),
    ]);
    let mut stream = TcpStream::connect(server.addr()).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("set timeout");
    stream
        .write_all(b"GET /big HTTP/1.1\r\nHost: x\r\n\r\n")
        .expect("send");
    let mut got = 0usize;
    let mut buf = [0u8; 65536];
    while got < 4 * 1024 * 1024 {
        let n = stream.read(&mut buf).expect("endless read");
        assert!(n > 0, "endless reply ended after {got} bytes");
        got += n;
    }
    drop(stream);
    // The server carries on.
    assert_eq!(raw_get(&server, "/ok").2, b"ok");
}

#[test]
fn http_lying_length_closes_early() {
    let server = HttpServer::start(vec![("/liar", Reply::LyingLength(100_000))]);
    let (code, head, body) = raw_get(&server, "/liar");
    assert_eq!(code, 200);
    assert!(head.contains("Content-Length: 100000"), "{head}");
    assert_eq!(body, b"partial!");
}

#[test]
fn http_hang_does_not_block_other_connections() {
    let server = HttpServer::start(vec![
        ("/hang", Reply::Hang),
        ("/ok", Reply::Body(b"ok".to_vec())),
    ]);
    let mut hung = TcpStream::connect(server.addr()).expect("connect");
    hung.set_read_timeout(Some(Duration::from_millis(300)))
        .expect("set timeout");
    hung.write_all(b"GET /hang HTTP/1.1\r\nHost: x\r\n\r\n")
        .expect("send");
    // While it hangs, another request is served.
    assert_eq!(raw_get(&server, "/ok").2, b"ok");
    let mut buf = [0u8; 16];
    let err = hung.read(&mut buf).expect_err("hang must not answer");
    assert!(
        matches!(err.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut),
        "{err:?}"
    );
    assert_eq!(server.hits("/hang"), 1);
}

#[test]
fn drop_stops_accepting() {
    let server = HttpServer::start(vec![("/hang", Reply::Hang)]);
    let addr = server.addr();
    // A hanging connection must not keep the drop waiting.
    let mut hung = TcpStream::connect(addr).expect("connect");
    hung.write_all(b"GET /hang HTTP/1.1\r\n\r\n").expect("send");
    let start = Instant::now();
    drop(server);
    assert!(start.elapsed() < Duration::from_secs(5));
    // The listening socket is closed: the port can be bound again. (Connecting to it instead
    // is racy: Linux may pick the same port as the source of that very connect and complete
    // a TCP self-connection, and CI saw that happen.)
    TcpListener::bind(addr).expect("the port is free again after the drop");
}

#[test]
fn proxy_answers_absolute_form() {
    let mut map = HashMap::new();
    map.insert(
        "http://ca.example.test/int.crt".to_string(),
        b"INT".to_vec(),
    );
    let proxy = start_proxy(map);
    let (code, _, body) = raw_get(&proxy, "http://ca.example.test/int.crt");
    assert_eq!((code, body.as_slice()), (200, b"INT".as_slice()));
    assert_eq!(raw_get(&proxy, "http://ca.example.test/other.crt").0, 404);
    assert_eq!(raw_get(&proxy, "/int.crt").0, 404);
    assert_eq!(proxy.hits("http://ca.example.test/int.crt"), 1);
    assert_eq!(proxy.hits("http://ca.example.test/other.crt"), 1);
    assert_eq!(proxy.total_hits(), 3);
    assert_eq!(proxy.url(""), format!("http://{}", proxy.addr()));
}

#[test]
fn commands_run_and_capture() {
    let env = TestEnv::new();
    let path = env.write("sub/dir/file.bin", b"\x00\x01");
    assert!(path.ends_with("sub/dir/file.bin"));
    assert_eq!(env.read("sub/dir/file.bin"), b"\x00\x01");

    let out = run(Command::new("sh").args(["-c", "printf '{\"a\": 1}'; echo oops >&2; exit 3"]));
    assert_eq!(out.status, 3);
    assert_eq!(out.json()["a"], 1);
    assert_eq!(out.stderr, "oops\n");

    // The binary target builds and starts.
    let out = run(env.cmd().arg("--help"));
    out.assert_status(0);
}
