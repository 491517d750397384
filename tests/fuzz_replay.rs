//! Fuzz replay: every fuzz corpus and regression input runs through its target's code on stable and must neither panic nor hang.
//!
//! Inputs: every file in `fuzz/corpus/<target>/` and `testdata/fuzz/<target>/`, no libFuzzer.
//!
//! The code per target is not copied here: `fuzz/src/lib.rs` is included as a module, the very
//! file the libFuzzer wrappers in `fuzz/fuzz_targets/` call, so the two stay in sync by
//! construction. Change what a target does there, never here. `testdata/fuzz/<target>/` holds
//! the minimised inputs of past findings (see `testdata/README.md`, section `fuzz/`);
//! `fuzz/corpus/<target>/` is the minimised coverage corpus (see `fuzz/README.md`).
//!
//! Each input runs on its own thread: a panic is recorded with the file that caused it, and an
//! input still running after [`PER_INPUT_LIMIT`] fails the test instead of hanging it. The
//! slowest inputs are printed (`cargo test --test fuzz_replay -- --nocapture` shows them).

#[path = "../fuzz/src/lib.rs"]
mod harness;

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Longest one input may take (in the unoptimised test profile).
const PER_INPUT_LIMIT: Duration = Duration::from_secs(5);

/// Regression inputs of findings that are not fixed yet, as `target/file name`: they are
/// skipped (and listed as skipped), so the suite stays green until the fix lands. Remove an
/// entry together with its fix; an input that must always pass is never listed here.
const KNOWN_UNFIXED: &[&str] = &[];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The input files for `target`, sorted, from both directories (missing ones are empty).
fn inputs(target: &str) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for dir in [
        root().join("fuzz/corpus").join(target),
        root().join("testdata/fuzz").join(target),
    ] {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries {
            let path = entry.expect("read a corpus directory entry").path();
            if path.is_file() {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

enum Verdict {
    Ok(Duration),
    Panicked(String),
    TimedOut,
}

/// Runs `run(data)` on its own thread, waiting at most [`PER_INPUT_LIMIT`].
fn run_one(run: harness::Target, data: Vec<u8>) -> Verdict {
    let (tx, rx) = mpsc::channel();
    let started = Instant::now();
    let handle = std::thread::Builder::new()
        .name("fuzz-replay".into())
        .stack_size(16 * 1024 * 1024)
        .spawn(move || {
            let result = std::panic::catch_unwind(|| run(&data));
            let _ = tx.send(result.map_err(|e| panic_message(e.as_ref())));
        })
        .expect("spawn a replay thread");
    match rx.recv_timeout(PER_INPUT_LIMIT) {
        Ok(Ok(())) => {
            let _ = handle.join();
            Verdict::Ok(started.elapsed())
        }
        Ok(Err(message)) => {
            let _ = handle.join();
            Verdict::Panicked(message)
        }
        // The thread is left running; the test fails and the process ends with it.
        Err(_) => Verdict::TimedOut,
    }
}

fn panic_message(e: &(dyn std::any::Any + Send)) -> String {
    e.downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| e.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(non-string panic payload)".into())
}

fn display(path: &Path) -> String {
    path.strip_prefix(root())
        .unwrap_or(path)
        .display()
        .to_string()
}

fn replay(target: &str) {
    let run = harness::TARGETS
        .iter()
        .find(|(name, _)| *name == target)
        .map(|(_, run)| *run)
        .expect("a target of fuzz/src/lib.rs");
    let files = inputs(target);
    assert!(
        !files.is_empty(),
        "no inputs for fuzz target {target} in fuzz/corpus/{target}/"
    );
    let started = Instant::now();
    let mut timings = Vec::new();
    let mut failures = Vec::new();
    for path in &files {
        let data = std::fs::read(path).expect("read a corpus file");
        let name = format!(
            "{target}/{}",
            path.file_name()
                .map_or_else(String::new, |n| n.to_string_lossy().into_owned())
        );
        if KNOWN_UNFIXED.contains(&name.as_str()) {
            // Not run: a known time-out would keep a core busy for the rest of the suite.
            println!("skipped, known and not fixed yet: {}", display(path));
            continue;
        }
        match run_one(run, data) {
            Verdict::Ok(took) => timings.push((took, path.clone())),
            Verdict::Panicked(message) => {
                failures.push(format!("{}: panicked: {message}", display(path)))
            }
            Verdict::TimedOut => failures.push(format!(
                "{}: still running after {PER_INPUT_LIMIT:?}",
                display(path)
            )),
        }
    }
    timings.sort_by_key(|t| std::cmp::Reverse(t.0));
    println!(
        "{target}: {} inputs in {:.2?}; slowest:",
        files.len(),
        started.elapsed()
    );
    for (took, path) in timings.iter().take(3) {
        println!("  {took:>10.2?}  {}", display(path));
    }
    assert!(
        failures.is_empty(),
        "{} of {} inputs of fuzz target {target} failed:\n{}",
        failures.len(),
        files.len(),
        failures.join("\n")
    );
}

#[test]
fn replay_load() {
    replay("load");
}

#[test]
fn replay_aia_response() {
    replay("aia_response");
}

#[test]
fn replay_chain() {
    replay("chain");
}

/// A directory for a target this test does not know would be skipped silently.
#[test]
fn every_corpus_directory_is_a_replayed_target() {
    for base in ["fuzz/corpus", "testdata/fuzz"] {
        let Ok(entries) = std::fs::read_dir(root().join(base)) else {
            continue;
        };
        for entry in entries {
            let path = entry.expect("read a directory entry").path();
            if !path.is_dir() {
                continue;
            }
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            assert!(
                harness::TARGETS.iter().any(|(t, _)| *t == name),
                "{base}/{name}/ is not a fuzz target of fuzz/src/lib.rs"
            );
        }
    }
    for (target, _) in harness::TARGETS {
        assert!(
            root()
                .join("fuzz/fuzz_targets")
                .join(format!("{target}.rs"))
                .is_file(),
            "fuzz/fuzz_targets/{target}.rs is missing"
        );
    }
}

/// The seed format of the `chain` target round-trips (a sanity check on the shared harness).
#[test]
fn chain_input_builder_matches_the_target() {
    let input = harness::chain_input(0x3ff, 1, 0, "mail.example.test", harness::FIXTURES);
    harness::chain(&input);
    assert!(input.starts_with(&[0xff, 0x03, 0x01, 0x00, 0x00]));
}
