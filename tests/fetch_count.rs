//! AIA at scale: how many requests a run makes and how many at once, counted by a loopback
//! server (issue 6: one request per missing intermediate, concurrent but bounded fetches, none
//! with a warm cache).

mod common;
use common::*;

use std::time::Duration;

const AT: &str = "2026-06-01T00:00:00Z";

/// `MAX_CONCURRENT_FETCHES` in src/fetch/mod.rs.
const MAX_CONCURRENT_FETCHES: usize = 6;

/// `inspect DIR --json` against the test root only, with the cache inside the test's env.
fn inspect(env: &TestEnv, dir: &str, root: &Cert) -> Output {
    let roots = env.write("root.pem", &root.pem);
    run(env
        .cmd()
        .arg("inspect")
        .arg(env.path(dir))
        .arg("--roots")
        .arg(roots)
        .args(["--no-default-roots", "--json", "--at", AT]))
}

/// Source kinds of each result's chain, as `leaf file -> [kind, ...]`.
fn chain_sources(out: &Output) -> Vec<(String, Vec<String>)> {
    let json = out.json();
    json["results"]
        .as_array()
        .expect("results array")
        .iter()
        .map(|r| {
            let kinds = r["chain"]
                .as_array()
                .expect("chain array")
                .iter()
                .map(|c| c["source"]["kind"].as_str().unwrap_or("?").to_string())
                .collect();
            (r["file"].as_str().unwrap_or("?").to_string(), kinds)
        })
        .collect()
}

#[test]
fn a_thousand_leaves_missing_one_intermediate_cost_one_request_and_none_with_a_warm_cache() {
    let server = HttpServer::start(vec![]);
    let root = self_signed(&Spec::ca("Fleet Root", Alg::P256(0)).serial(1));
    let int = issue(
        &Spec::ca("Fleet Intermediate", Alg::P256(1)).serial(2),
        &root,
    );
    server.set("/int.der", Reply::Body(int.der.clone()));
    let url = server.url("/int.der");
    let env = TestEnv::new();
    for i in 0..1000 {
        let spec = Spec::leaf(&format!("mx{i:04}.example.test"), Alg::P256(2))
            .serial(1000 + i)
            .aia(&url);
        env.write(
            &format!("fleet/{:02}/mx{i:04}.pem", i % 10),
            issue(&spec, &int).pem,
        );
    }

    let cold = inspect(&env, "fleet", &root);
    cold.assert_status(1); // every leaf lacks its intermediate: repairable, so an error
    assert_eq!(server.hits("/int.der"), 1, "one request for 1,000 leaves");
    assert_eq!(server.total_hits(), 1);
    let sources = chain_sources(&cold);
    assert_eq!(sources.len(), 1000);
    for (file, kinds) in &sources {
        assert_eq!(kinds, &["input", "aia", "roots"], "{file}");
    }
    let files: Vec<&String> = sources.iter().map(|(f, _)| f).collect();
    let mut sorted = files.clone();
    sorted.sort();
    assert_eq!(files, sorted, "results are sorted by path");

    let warm = inspect(&env, "fleet", &root);
    warm.assert_status(1);
    assert_eq!(server.total_hits(), 1, "the second run made no request");
    for (file, kinds) in chain_sources(&warm) {
        assert_eq!(kinds, ["input", "cache", "roots"], "{file}");
    }
}

#[test]
fn distinct_urls_are_fetched_concurrently_but_never_more_than_the_bound() {
    let server = HttpServer::start(vec![]);
    let root = self_signed(&Spec::ca("Many CAs Root", Alg::P256(0)).serial(1));
    let env = TestEnv::new();
    let cas = 3 * MAX_CONCURRENT_FETCHES;
    for i in 0..cas {
        let int = issue(
            &Spec::ca(&format!("Issuing CA {i:02}"), Alg::P256(1)).serial(100 + i as u64),
            &root,
        );
        let path = format!("/ca{i:02}.der");
        // Long enough that requests started together are still open when the next starts.
        server.set(
            &path,
            Reply::Delayed(Duration::from_millis(400), int.der.clone()),
        );
        let spec = Spec::leaf(&format!("host{i:02}.example.test"), Alg::P256(2))
            .serial(1000 + i as u64)
            .aia(&server.url(&path));
        env.write(&format!("hosts/host{i:02}.pem"), issue(&spec, &int).pem);
    }

    let out = inspect(&env, "hosts", &root);
    out.assert_status(1);
    for i in 0..cas {
        assert_eq!(
            server.hits(&format!("/ca{i:02}.der")),
            1,
            "CA {i} fetched once"
        );
    }
    let peak = server.peak_in_flight();
    assert!(
        (2..=MAX_CONCURRENT_FETCHES).contains(&peak),
        "{peak} requests were in flight at once; expected between 2 and {MAX_CONCURRENT_FETCHES}"
    );
    for (file, kinds) in chain_sources(&out) {
        assert_eq!(kinds, ["input", "aia", "roots"], "{file}");
    }
}

#[test]
fn an_intermediate_fetched_for_a_leaf_brings_its_own_missing_issuer_in_the_next_wave() {
    // leaf -> int2 (AIA) -> int1 (AIA) -> root: two waves, each URL once.
    let server = HttpServer::start(vec![]);
    let root = self_signed(&Spec::ca("Wave Root", Alg::P256(0)).serial(1));
    let int1 = issue(
        &Spec::ca("Wave Policy CA", Alg::P256(1))
            .serial(2)
            .aia(&server.url("/unused-root.der")),
        &root,
    );
    let int2 = issue(
        &Spec::ca("Wave Issuing CA", Alg::P256(2))
            .serial(3)
            .aia(&server.url("/int1.der")),
        &int1,
    );
    server.set("/int1.der", Reply::Body(int1.der.clone()));
    server.set("/int2.der", Reply::Body(int2.der.clone()));
    let env = TestEnv::new();
    for i in 0..20u64 {
        let spec = Spec::leaf(&format!("w{i}.example.test"), Alg::P256(3))
            .serial(100 + i)
            .aia(&server.url("/int2.der"));
        env.write(&format!("waves/w{i:02}.pem"), issue(&spec, &int2).pem);
    }
    let out = inspect(&env, "waves", &root);
    out.assert_status(1);
    assert_eq!(server.hits("/int2.der"), 1);
    assert_eq!(server.hits("/int1.der"), 1);
    assert_eq!(
        server.hits("/unused-root.der"),
        0,
        "the root was already trusted"
    );
    for (file, kinds) in chain_sources(&out) {
        assert_eq!(kinds, ["input", "aia", "aia", "roots"], "{file}");
    }
}
