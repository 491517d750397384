//! Benchmark corpus (examples/gen-corpus.rs): byte-for-byte determinism, counts that add up,
//! and chainfix reporting exactly the faults the generator planted, no more and no fewer.
//!
//! The generator binary is the one cargo builds for examples (`target/<profile>/examples/`):
//! a plain `cargo test` builds it; `cargo test --test corpus` alone does not, so run
//! `cargo build --example gen-corpus` first in that case.

mod common;
use common::*;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;

use serde_json::Value;

/// Certificates in the shared corpus. The smallest sizes leave no room for good full-chain
/// files (every spare certificate goes to the broken full-chain kinds); 2000 gives a few,
/// 95 broken leaves (13-14 of each kind) and 2 damaged files.
const N: usize = 2000;
const SEED: u64 = 7;
/// Roots and intermediates, outside the tree.
const CA_CERTS: usize = 55;
const RUN_LIMIT: Duration = Duration::from_secs(240);

/// The gen-corpus example next to this test binary (target/<profile>/deps/corpus-HASH).
fn gen_corpus_exe() -> PathBuf {
    let exe = std::env::current_exe().expect("path of the running test binary");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .unwrap_or_else(|| panic!("{} is not in target/<profile>/deps/", exe.display()));
    let bin = profile_dir
        .join("examples")
        .join(format!("gen-corpus{}", std::env::consts::EXE_SUFFIX));
    let built = std::fs::metadata(&bin).and_then(|m| m.modified());
    let built = built.unwrap_or_else(|e| {
        panic!(
            "{} is missing ({e}): build it with `cargo build --example gen-corpus` (a plain \
             `cargo test` builds it; `cargo test --test corpus` alone does not)",
            bin.display()
        )
    });
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/gen-corpus.rs");
    if let Ok(edited) = std::fs::metadata(&source).and_then(|m| m.modified()) {
        assert!(
            edited <= built,
            "{} is older than {}: rebuild it with `cargo build --example gen-corpus`",
            bin.display(),
            source.display()
        );
    }
    bin
}

/// Runs the generator into `out` (which must be empty); panics unless it succeeds.
fn generate(n: usize, seed: u64, out: &Path) {
    let mut cmd = std::process::Command::new(gen_corpus_exe());
    cmd.arg("--certs")
        .arg(n.to_string())
        .arg("--seed")
        .arg(seed.to_string())
        .arg("--out")
        .arg(out);
    run_with_timeout(&mut cmd, RUN_LIMIT).assert_status(0);
}

/// One corpus (N, SEED) shared by the tests that run at the same time; generating one costs
/// ~36 RSA key generations, so the tests do not each make their own. It is deleted when the
/// last test holding it is done.
fn shared_corpus() -> Arc<tempfile::TempDir> {
    static SHARED: Mutex<Weak<tempfile::TempDir>> = Mutex::new(Weak::new());
    let mut slot = SHARED.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(dir) = slot.upgrade() {
        return dir;
    }
    let dir = Arc::new(tempfile::tempdir().expect("temporary directory"));
    generate(N, SEED, dir.path());
    *slot = Arc::downgrade(&dir);
    dir
}

fn manifest(dir: &Path) -> Value {
    let text = std::fs::read_to_string(dir.join("manifest.json")).expect("reading manifest.json");
    serde_json::from_str(&text).expect("manifest.json is JSON")
}

fn count(v: &Value, key: &str) -> usize {
    let n = v[key]
        .as_u64()
        .unwrap_or_else(|| panic!("manifest {key} is not a number: {}", v[key]));
    usize::try_from(n).expect("count fits usize")
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap_or_else(|| panic!("not an array: {v}"))
        .iter()
        .map(|s| s.as_str().expect("string").to_string())
        .collect()
}

/// manifest.broken as file -> (kind, codes).
fn broken(m: &Value) -> BTreeMap<String, (String, Vec<String>)> {
    let list = m["broken"].as_array().expect("manifest broken is an array");
    let files: Vec<&str> = list
        .iter()
        .map(|b| b["file"].as_str().expect("file"))
        .collect();
    let mut sorted = files.clone();
    sorted.sort_unstable();
    assert_eq!(files, sorted, "manifest broken is sorted by file");
    list.iter()
        .map(|b| {
            let file = b["file"].as_str().expect("broken file").to_string();
            let kind = b["kind"].as_str().expect("broken kind").to_string();
            (file, (kind, strings(&b["codes"])))
        })
        .collect()
}

/// Every regular file under `dir`, as `/`-separated paths relative to `dir`, sorted.
fn files_under(dir: &Path) -> Vec<String> {
    fn walk(base: &Path, dir: &Path, out: &mut Vec<String>) {
        let entries =
            std::fs::read_dir(dir).unwrap_or_else(|e| panic!("listing {}: {e}", dir.display()));
        for entry in entries {
            let path = entry.expect("directory entry").path();
            if path.is_dir() {
                walk(base, &path, out);
            } else {
                let rel = path.strip_prefix(base).expect("path under the base");
                let parts: Vec<String> = rel
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy().into_owned())
                    .collect();
                out.push(parts.join("/"));
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

/// Certificates in one file: PEM CERTIFICATE blocks, or 1 for a DER file.
fn certs_in(path: &Path) -> usize {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    if bytes.starts_with(b"-----BEGIN ") {
        String::from_utf8_lossy(&bytes)
            .lines()
            .filter(|l| *l == "-----BEGIN CERTIFICATE-----")
            .count()
    } else {
        assert_eq!(bytes.first(), Some(&0x30), "{} is DER", path.display());
        1
    }
}

#[test]
fn same_seed_same_bytes() {
    let first = shared_corpus();
    let again = tempfile::tempdir().expect("temporary directory");
    generate(N, SEED, again.path());
    let a = files_under(first.path());
    let b = files_under(again.path());
    assert_eq!(a, b, "the same files are written");
    assert!(
        a.len() > N / 2,
        "the corpus has its leaf files: {}",
        a.len()
    );
    for rel in &a {
        let x = std::fs::read(first.path().join(rel)).expect("reading first copy");
        let y = std::fs::read(again.path().join(rel)).expect("reading second copy");
        assert!(x == y, "{rel} differs between two runs with seed {SEED}");
    }

    // roots.pem depends on the seed alone; the smallest corpus is enough to see it change.
    let other = tempfile::tempdir().expect("temporary directory");
    generate(200, SEED + 1, other.path());
    let roots = |dir: &Path| std::fs::read(dir.join("roots.pem")).expect("reading roots.pem");
    assert_ne!(
        roots(first.path()),
        roots(other.path()),
        "seeds {SEED} and {} give different roots",
        SEED + 1
    );
}

#[test]
fn manifest_counts_add_up() {
    let corpus = shared_corpus();
    let dir = corpus.path();
    let m = manifest(dir);
    let damaged: BTreeSet<String> = strings(&m["damaged"]).into_iter().collect();
    let leaf_files: Vec<String> = std::fs::read_to_string(dir.join("leaves.txt"))
        .expect("reading leaves.txt")
        .lines()
        .map(str::to_string)
        .collect();

    assert_eq!(certs_in(&dir.join("roots.pem")), 5);
    assert_eq!(certs_in(&dir.join("intermediates.pem")), 50);
    let tree: Vec<String> = files_under(dir)
        .into_iter()
        .filter(|f| f.starts_with("tree/"))
        .collect();
    let mut in_tree = 0;
    let mut leaves = Vec::new();
    for rel in &tree {
        if damaged.contains(rel) {
            continue;
        }
        in_tree += certs_in(&dir.join(rel));
        leaves.push(rel.clone());
    }

    assert_eq!(count(&m, "seed"), SEED as usize);
    assert_eq!(count(&m, "certs"), N, "exactly the requested certificates");
    assert_eq!(count(&m, "certs"), CA_CERTS + in_tree);
    assert_eq!(count(&m, "files"), tree.len());
    assert_eq!(count(&m, "leaves"), leaves.len(), "one leaf per file");
    assert_eq!(
        leaf_files, leaves,
        "leaves.txt lists every leaf file, sorted"
    );
    assert_eq!(
        count(&m, "intermediate_copies"),
        in_tree - leaves.len(),
        "the other certificates in the tree"
    );
    assert_eq!(
        count(&m, "leaves"),
        1900,
        "L = min(round(0.95 N), N - 55), budget permitting"
    );

    let broken = broken(&m);
    let mut per_kind: BTreeMap<&str, usize> = BTreeMap::new();
    for (file, (kind, codes)) in &broken {
        assert!(leaves.contains(file), "broken {file} is a leaf file");
        assert!(!codes.is_empty(), "{file} names its findings");
        *per_kind.entry(kind.as_str()).or_default() += 1;
    }
    let kinds = [
        "missing-intermediate",
        "expired",
        "bad-signature",
        "self-signed-leaf",
        "wrong-order",
        "untrusted-root",
        "not-yet-valid",
    ];
    assert_eq!(
        per_kind.keys().copied().collect::<BTreeSet<_>>(),
        kinds.into_iter().collect(),
        "every kind, nothing else"
    );
    let (lo, hi) = (per_kind.values().min(), per_kind.values().max());
    assert!(
        hi.zip(lo).is_some_and(|(h, l)| h - l <= 1),
        "round robin: {per_kind:?}"
    );
    assert_eq!(
        broken.len(),
        leaves.len() / 20,
        "5% of the leaves are broken"
    );

    assert_eq!(damaged.len(), 2, "max(2, L/1000) damaged files");
    assert!(damaged.iter().any(|f| f.ends_with(".pem")));
    assert!(damaged.iter().any(|f| f.ends_with(".der")));
    let listed: Vec<String> = strings(&m["damaged"]);
    assert!(listed.windows(2).all(|w| w[0] < w[1]), "damaged is sorted");
}

/// Finding codes of a result, and whether it has any error-severity finding.
fn codes(result: &Value) -> Vec<(String, String, bool)> {
    result["problems"]
        .as_array()
        .expect("problems is an array")
        .iter()
        .map(|p| {
            (
                p["code"].as_str().expect("code").to_string(),
                p["severity"].as_str().expect("severity").to_string(),
                p["repairable"].as_bool().expect("repairable"),
            )
        })
        .collect()
}

#[test]
fn inspect_reports_exactly_the_planted_faults() {
    let corpus = shared_corpus();
    let dir = corpus.path();
    let m = manifest(dir);
    let broken = broken(&m);
    let damaged: BTreeSet<String> = strings(&m["damaged"]).into_iter().collect();
    let cache = tempfile::tempdir().expect("temporary cache directory");
    let out = run_with_timeout(
        chainfix()
            .arg("inspect")
            .arg(dir.join("tree"))
            .arg("--intermediates")
            .arg(dir.join("intermediates.pem"))
            .arg("--roots")
            .arg(dir.join("roots.pem"))
            .args([
                "--no-default-roots",
                "--offline",
                "--json",
                "--at",
                "2026-06-01T00:00:00Z",
                "--cache-dir",
            ])
            .arg(cache.path()),
        RUN_LIMIT,
    );
    // Damaged input files are an operational failure (2), which outranks the findings (1);
    // every other file is still reported.
    out.assert_status(2);
    let json = out.json();
    assert_eq!(json["schema"], 1);
    let prefix = format!("{}/", dir.display());
    let rel = |p: &str| -> String {
        p.strip_prefix(&prefix)
            .unwrap_or_else(|| panic!("{p} is not under {prefix}"))
            .to_string()
    };

    let errors = json["errors"].as_array().expect("errors is an array");
    let error_files: BTreeSet<String> = errors
        .iter()
        .map(|e| rel(e["path"].as_str().expect("error path")))
        .collect();
    assert_eq!(
        error_files, damaged,
        "errors name exactly the damaged files"
    );
    assert_eq!(errors.len(), damaged.len(), "one error per damaged file");
    for e in errors {
        assert_eq!(e["fatal"], true, "a damaged file is fatal: {e}");
        let line = format!("chainfix: {}: ", e["path"].as_str().expect("path"));
        assert!(
            out.stderr.contains(&line),
            "stderr names {line}\n{}",
            out.stderr
        );
    }

    let results = json["results"].as_array().expect("results is an array");
    assert_eq!(results.len(), count(&m, "leaves"), "one result per leaf");
    let files: Vec<String> = results
        .iter()
        .map(|r| rel(r["file"].as_str().expect("result file")))
        .collect();
    assert!(
        files.windows(2).all(|w| w[0] < w[1]),
        "results are sorted by file, each file once"
    );
    let listed: Vec<String> = std::fs::read_to_string(dir.join("leaves.txt"))
        .expect("reading leaves.txt")
        .lines()
        .map(str::to_string)
        .collect();
    assert_eq!(files, listed, "a result for every leaf file");

    // Every certificate in the tree is presented by the one leaf of its file.
    let presented: usize = results
        .iter()
        .map(|r| r["presented"].as_array().expect("presented").len())
        .sum();
    assert_eq!(
        presented,
        count(&m, "certs") - CA_CERTS,
        "chainfix saw every certificate in the tree"
    );

    let mut ok = 0;
    let mut leaf_only = 0;
    for (r, file) in results.iter().zip(&files) {
        let status = r["status"].as_str().expect("status");
        let found = codes(r);
        let shown = || format!("{file}: status {status}, findings {found:?}");
        if let Some((kind, expected)) = broken.get(file) {
            assert_ne!(status, "ok", "{} ({kind})", shown());
            // Each planted fault's codes are reported (issuer-signature-invalid is a warning
            // that explains the missing-intermediate error); the status says an error remains.
            for code in expected {
                assert!(
                    found.iter().any(|(c, _, _)| c == code),
                    "{} ({kind}) lacks {code}",
                    shown()
                );
            }
            assert!(
                found.iter().any(|(_, sev, _)| sev == "error"),
                "{} ({kind}) has no error finding",
                shown()
            );
            // Serving the built chain fixes the order; nothing fixes the other kinds.
            let want = if kind == "wrong-order" {
                "repairable"
            } else {
                "broken"
            };
            assert_eq!(status, want, "{} ({kind})", shown());
            continue;
        }
        let chain = r["chain"].as_array().expect("chain");
        assert_eq!(chain.len(), 3, "{}: leaf, intermediate, root", shown());
        assert_eq!(chain[2]["role"], "root", "{}", shown());
        match r["presented"].as_array().map(Vec::len) {
            // A leaf served without its intermediate: the intermediate is in the pool, so the
            // one finding is a repairable missing-intermediate.
            Some(1) => {
                leaf_only += 1;
                assert_eq!(status, "repairable", "{}", shown());
                assert_eq!(
                    found,
                    vec![(
                        "missing-intermediate".to_string(),
                        "error".to_string(),
                        true
                    )],
                    "{}",
                    shown()
                );
            }
            Some(2) => {
                ok += 1;
                assert_eq!(status, "ok", "{}", shown());
                assert!(found.is_empty(), "{}", shown());
            }
            other => panic!("{}: presents {other:?} certificates", shown()),
        }
    }
    assert!(ok > 0, "the corpus has good full-chain files");
    assert!(leaf_only > 0, "the corpus has good leaf-only files");
}
