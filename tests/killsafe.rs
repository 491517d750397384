//! Crash safety of `chainfix repair`: SIGKILL at random moments never leaves a partial or
//! unknown file at a final name (each output is absent, the old version or the new version),
//! no private key is ever readable by other users, leftovers of a killed run do not block the
//! next one, `--backup` keeps exactly the old version of each changed file (a chainfix without
//! `--backup` fails these tests), and the manifest never vouches for a file not in place.
//!
//! The kill points come from a fixed-seed PRNG (printed; override with
//! `CHAINFIX_KILLSAFE_SEED=<u64>`), so a failing schedule can be replayed.

mod common;

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::*;
use serde_json::Value;

/// Evaluation time inside the validity of every generated certificate.
const AT: &str = "2026-06-01T00:00:00Z";

/// Default seed of the kill schedule ("chainfix" in ASCII).
const DEFAULT_SEED: u64 = 0x6368_6169_6e66_6978;

/// Environment variable holding the PFX password of every run.
const PFX_VAR: &str = "CHAINFIX_KILLSAFE_PFX_PASSWORD";
const PFX_PASSWORD: &str = "kill-safe pfx password";

const PFX_REL: &str = "iis/certificate.pfx";

/// The record of what chainfix wrote; it must never vouch for a file that is not in place.
const MANIFEST_REL: &str = ".chainfix-manifest.json";

// ---------------------------------------------------------------------------------------------
// Deterministic PRNG (splitmix64)
// ---------------------------------------------------------------------------------------------

struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform duration in [0, max].
    fn duration(&mut self, max: Duration) -> Duration {
        max.mul_f64(self.unit())
    }
}

fn seed() -> u64 {
    let seed = std::env::var("CHAINFIX_KILLSAFE_SEED")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(DEFAULT_SEED);
    println!("kill schedule seed: {seed} (replay with CHAINFIX_KILLSAFE_SEED={seed})");
    seed
}

// ---------------------------------------------------------------------------------------------
// The two versions of the inputs
// ---------------------------------------------------------------------------------------------

/// A test directory with `root.pem` and two input directories: `old/` and `new/`, each a
/// presented full chain plus its key. Every run writes into `out/`.
struct Inputs {
    env: TestEnv,
    /// The certificates `certificate.pfx` must hold after a complete "new" run.
    new_pfx_certs: Vec<Vec<u8>>,
}

/// Old: leaf A (P-256 key a) under intermediate A. New: leaf B (P-256 key b) under
/// intermediate B. Both are valid chains to the same root, so every run succeeds and nearly
/// every output file changes between the two.
fn inputs_switching_everything() -> Inputs {
    let root = self_signed(&Spec::ca("Killsafe Root CA", Alg::Rsa2048(0)).serial(1));
    let int_a = issue(
        &Spec::ca("Killsafe Intermediate A", Alg::Rsa2048(1)).serial(2),
        &root,
    );
    let int_b = issue(
        &Spec::ca("Killsafe Intermediate B", Alg::Rsa2048(2)).serial(3),
        &root,
    );
    let leaf_a = issue(
        &Spec::leaf("mail-a.example.test", Alg::P256(0)).serial(4),
        &int_a,
    );
    let leaf_b = issue(
        &Spec::leaf("mail-b.example.test", Alg::P256(1)).serial(5),
        &int_b,
    );
    let env = TestEnv::new();
    env.write("root.pem", &root.pem);
    env.write("old/fullchain.pem", pem_bundle(&[&leaf_a, &int_a]));
    env.write("old/privkey.pem", &leaf_a.key_pem);
    env.write("new/fullchain.pem", pem_bundle(&[&leaf_b, &int_b]));
    env.write("new/privkey.pem", &leaf_b.key_pem);
    Inputs {
        env,
        new_pfx_certs: vec![leaf_b.der.clone(), int_b.der.clone()],
    }
}

/// Old: leaf A under the intermediate. New: leaf A re-issued (same name, new key and serial)
/// under the same intermediate, so the intermediate's files stay unchanged.
fn inputs_renewing_the_leaf() -> Inputs {
    let root = self_signed(&Spec::ca("Killsafe Root CA", Alg::Rsa2048(0)).serial(1));
    let int = issue(
        &Spec::ca("Killsafe Intermediate A", Alg::Rsa2048(1)).serial(2),
        &root,
    );
    let old_leaf = issue(
        &Spec::leaf("mail.example.test", Alg::P256(0)).serial(4),
        &int,
    );
    let new_leaf = issue(
        &Spec::leaf("mail.example.test", Alg::P256(2))
            .serial(6)
            .valid((2025, 1, 1), (2035, 1, 1)),
        &int,
    );
    let env = TestEnv::new();
    env.write("root.pem", &root.pem);
    env.write("old/fullchain.pem", pem_bundle(&[&old_leaf, &int]));
    env.write("old/privkey.pem", &old_leaf.key_pem);
    env.write("new/fullchain.pem", pem_bundle(&[&new_leaf, &int]));
    env.write("new/privkey.pem", &new_leaf.key_pem);
    Inputs {
        env,
        new_pfx_certs: vec![new_leaf.der.clone(), int.der.clone()],
    }
}

/// Makes `repair` write `iis/certificate.pfx` too.
const WITH_PFX: [&str; 2] = ["--pfx-password-env", PFX_VAR];

/// `chainfix repair <input> --out out --emit all --json ... <extra>` (the PFX password is in
/// the environment; `WITH_PFX` in `extra` asks for the .pfx).
fn repair_cmd(env: &TestEnv, input: &str, extra: &[&str]) -> Command {
    let mut cmd = env.cmd();
    cmd.env(PFX_VAR, PFX_PASSWORD)
        .arg("repair")
        .arg(input)
        .args(["--out", "out", "--emit", "all"])
        .args(["--json", "--at", AT, "--offline", "--no-default-roots"])
        .args(["--roots", "root.pem", "--cache-dir"])
        .arg(env.path("cache"))
        .args(extra);
    cmd
}

// ---------------------------------------------------------------------------------------------
// Snapshots of the output directory
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Debug, PartialEq, Eq)]
struct FileState {
    bytes: Vec<u8>,
    mode: u32,
}

/// Every regular file under `dir`, by path relative to it ("iis/leaf.cer").
type Snapshot = BTreeMap<String, FileState>;

fn walk(dir: &Path, rel: &str, out: &mut Vec<(String, PathBuf)>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let rel_name = if rel.is_empty() {
            name
        } else {
            format!("{rel}/{name}")
        };
        let path = entry.path();
        match entry.file_type() {
            Ok(t) if t.is_dir() => walk(&path, &rel_name, out),
            Ok(_) => out.push((rel_name, path)),
            Err(_) => {}
        }
    }
}

fn files_under(dir: &Path) -> Vec<(String, PathBuf)> {
    let mut out = Vec::new();
    walk(dir, "", &mut out);
    out
}

fn snapshot(dir: &Path) -> Snapshot {
    files_under(dir)
        .into_iter()
        .filter_map(|(rel, path)| {
            let meta = std::fs::symlink_metadata(&path).ok()?;
            let bytes = std::fs::read(&path).ok()?;
            Some((
                rel,
                FileState {
                    bytes,
                    mode: meta.permissions().mode() & 0o7777,
                },
            ))
        })
        .collect()
}

/// Replaces `dir` by exactly the files of `snap` (content and mode).
fn restore(dir: &Path, snap: &Snapshot) {
    if dir.exists() {
        std::fs::remove_dir_all(dir).unwrap_or_else(|e| panic!("removing {}: {e}", dir.display()));
    }
    for (rel, state) in snap {
        let path = dir.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("creating output subdirectory");
        }
        std::fs::write(&path, &state.bytes).expect("restoring an output file");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(state.mode))
            .expect("restoring a mode");
    }
}

/// `(directory part, file name)` of a relative path.
fn split_rel(rel: &str) -> (&str, &str) {
    match rel.rsplit_once('/') {
        Some((dir, name)) => (dir, name),
        None => ("", rel),
    }
}

fn join_rel(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_string()
    } else {
        format!("{dir}/{name}")
    }
}

/// For `.NAME.chainfix-tmp.*`, the output it is a temp file of (`dir/NAME`).
fn temp_file_target(rel: &str) -> Option<String> {
    let (dir, name) = split_rel(rel);
    let (base, _) = name.strip_prefix('.')?.split_once(".chainfix-tmp.")?;
    Some(join_rel(dir, base))
}

/// For `NAME.bak.STAMP`, (`dir/NAME`, STAMP).
fn backup_target(rel: &str) -> Option<(String, String)> {
    let (dir, name) = split_rel(rel);
    let (base, stamp) = name.rsplit_once(".bak.")?;
    Some((join_rel(dir, base), stamp.to_string()))
}

/// A UTC timestamp like 20261122T095300Z.
fn is_backup_stamp(stamp: &str) -> bool {
    let b = stamp.as_bytes();
    b.len() == 16
        && b[8] == b'T'
        && b[15] == b'Z'
        && b[..8].iter().chain(&b[9..15]).all(u8::is_ascii_digit)
}

/// Whether `bytes` is a PFX that opens with the password and holds exactly `certs` (checked
/// with the real openssl).
fn pfx_holds(env: &TestEnv, bytes: &[u8], certs: &[Vec<u8>]) -> bool {
    let scratch = tempfile::NamedTempFile::new_in(env.dir.path()).expect("scratch file");
    std::fs::write(scratch.path(), bytes).expect("writing scratch pfx");
    let out = run(Command::new("openssl")
        .env(PFX_VAR, PFX_PASSWORD)
        .args(["pkcs12", "-nokeys", "-passin"])
        .arg(format!("env:{PFX_VAR}"))
        .arg("-in")
        .arg(scratch.path()));
    if out.status != 0 {
        return false;
    }
    let Ok(blocks) = pem::parse_many(out.stdout.as_bytes()) else {
        return false;
    };
    let got: BTreeSet<Vec<u8>> = blocks
        .iter()
        .filter(|p| p.tag() == "CERTIFICATE")
        .map(|p| p.contents().to_vec())
        .collect();
    got == certs.iter().cloned().collect()
}

/// The output states a kill may leave: the old and the new version of every output file.
struct Versions<'a> {
    env: &'a TestEnv,
    old: Snapshot,
    new: Snapshot,
    new_pfx_certs: Vec<Vec<u8>>,
}

/// What one final-name file held after a kill.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Seen {
    Absent,
    Old,
    New,
}

impl Versions<'_> {
    fn outputs(&self) -> BTreeSet<&String> {
        self.old.keys().chain(self.new.keys()).collect()
    }

    fn is_new(&self, rel: &str, state: &FileState, now: &Snapshot) -> bool {
        let Some(new) = self.new.get(rel) else {
            return false;
        };
        if rel == MANIFEST_REL {
            // The new manifest lists the new files (the PFX's sha256 differs on every run)
            // and is written after them: every file it lists is in place with that sha256.
            return state.mode == new.mode
                && self.old.get(rel) != Some(state)
                && manifest_paths(&state.bytes) == manifest_paths(&new.bytes)
                && manifest_vouches_for(&state.bytes, now);
        }
        if rel == PFX_REL {
            // PFX bytes change on every write (fresh salts): any complete PFX with the new
            // certificates and the new mode is the new version.
            state.mode == new.mode
                && self.old.get(rel) != Some(state)
                && pfx_holds(self.env, &state.bytes, &self.new_pfx_certs)
        } else {
            new == state
        }
    }

    /// Checks the output directory after a kill; returns what each output held.
    fn check(&self, out: &Path, allow_backups: bool) -> Result<BTreeMap<String, Seen>, String> {
        let now = snapshot(out);
        let outputs = self.outputs();
        let mut seen = BTreeMap::new();
        for rel in &outputs {
            let s = match now.get(*rel) {
                None if !self.old.contains_key(*rel) => Seen::Absent,
                None => return Err(format!("{rel}: existed before, now missing")),
                Some(state) if self.old.get(*rel) == Some(state) => Seen::Old,
                Some(state) if self.is_new(rel, state, &now) => Seen::New,
                Some(state) => {
                    return Err(format!(
                        "{rel}: neither the old nor the new version (mode {:o}, {} bytes; old {:?} bytes, new {:?} bytes)",
                        state.mode,
                        state.bytes.len(),
                        self.old.get(*rel).map(|s| s.bytes.len()),
                        self.new.get(*rel).map(|s| s.bytes.len()),
                    ))
                }
            };
            seen.insert((*rel).clone(), s);
        }
        for (rel, state) in &now {
            if outputs.contains(rel) {
                continue;
            }
            if let Some(target) = temp_file_target(rel) {
                if outputs.contains(&target) {
                    if state.mode & 0o006 != 0 && contains_key(&state.bytes) {
                        return Err(format!(
                            "leftover {rel} holds a key and is mode {:o}",
                            state.mode
                        ));
                    }
                    continue; // a leftover temp file of a killed write: allowed
                }
            }
            if let Some((target, stamp)) = backup_target(rel) {
                if allow_backups && is_backup_stamp(&stamp) {
                    match self.old.get(&target) {
                        Some(old) if old == state => continue,
                        Some(old) => {
                            return Err(format!(
                                "backup {rel} is not the old {target} (mode {:o} vs {:o}, {} vs {} bytes)",
                                state.mode,
                                old.mode,
                                state.bytes.len(),
                                old.bytes.len()
                            ))
                        }
                        None => return Err(format!("backup {rel} of a file that did not exist")),
                    }
                }
            }
            return Err(format!(
                "unexpected file {rel} ({} bytes)",
                state.bytes.len()
            ));
        }
        Ok(seen)
    }
}

/// The paths a manifest lists (`None` if it is not one).
fn manifest_paths(bytes: &[u8]) -> Option<BTreeSet<String>> {
    let doc: Value = serde_json::from_slice(bytes).ok()?;
    doc["files"]
        .as_array()?
        .iter()
        .map(|f| f["path"].as_str().map(str::to_string))
        .collect()
}

/// Whether every file the manifest lists is in `now` with the sha256 it records.
fn manifest_vouches_for(bytes: &[u8], now: &Snapshot) -> bool {
    use sha2::{Digest, Sha256};
    let Ok(doc) = serde_json::from_slice::<Value>(bytes) else {
        return false;
    };
    let Some(files) = doc["files"].as_array() else {
        return false;
    };
    files.iter().all(|f| {
        let (Some(path), Some(sha)) = (f["path"].as_str(), f["sha256"].as_str()) else {
            return false;
        };
        now.get(path).is_some_and(|state| {
            let digest = Sha256::digest(&state.bytes);
            let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
            hex == sha
        })
    })
}

fn contains_key(bytes: &[u8]) -> bool {
    bytes.windows(11).any(|w| w == b"PRIVATE KEY")
}

// ---------------------------------------------------------------------------------------------
// Watching permissions while chainfix runs
// ---------------------------------------------------------------------------------------------

/// Polls a directory tree every millisecond: records any file holding key material (PEM
/// "PRIVATE KEY", or a .pfx) that is readable or writable by others, and signals the first
/// change it sees (a new name, such as a temp file, or a replaced file: the write phase).
struct Watcher {
    stop: Arc<AtomicBool>,
    violations: Arc<Mutex<Vec<String>>>,
    first_temp: Receiver<Instant>,
    handle: Option<JoinHandle<()>>,
}

impl Watcher {
    fn start(dir: PathBuf) -> Watcher {
        let stop = Arc::new(AtomicBool::new(false));
        let violations = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx): (Sender<Instant>, Receiver<Instant>) = mpsc::channel();
        let (stop2, violations2) = (Arc::clone(&stop), Arc::clone(&violations));
        // Inode of every file now, before chainfix starts: a new name or a replaced file
        // afterwards means the write phase has begun.
        let initial: BTreeMap<String, u64> = files_under(&dir)
            .into_iter()
            .filter_map(|(rel, path)| Some((rel, std::fs::symlink_metadata(&path).ok()?.ino())))
            .collect();
        let handle = thread::spawn(move || {
            let mut signalled = false;
            // (inode, size, mtime ns) of world-accessible files already found key-free.
            let mut clean: HashSet<(u64, u64, i64, i64)> = HashSet::new();
            loop {
                let last = stop2.load(Ordering::SeqCst);
                let mut inodes = BTreeMap::new();
                for (rel, path) in files_under(&dir) {
                    let Ok(meta) = std::fs::symlink_metadata(&path) else {
                        continue;
                    };
                    inodes.insert(rel.clone(), meta.ino());
                    let mode = meta.permissions().mode();
                    if mode & 0o006 == 0 {
                        continue;
                    }
                    let id = (meta.ino(), meta.size(), meta.mtime(), meta.mtime_nsec());
                    if clean.contains(&id) {
                        continue;
                    }
                    let Ok(bytes) = std::fs::read(&path) else {
                        continue;
                    };
                    if contains_key(&bytes) || rel.contains(".pfx") {
                        let mut v = violations2.lock().expect("violations lock");
                        v.push(format!(
                            "{rel} mode {:o} ({} bytes)",
                            mode & 0o7777,
                            bytes.len()
                        ));
                    } else if bytes.len() as u64 == meta.size() {
                        clean.insert(id);
                    }
                }
                if !signalled
                    && inodes
                        .iter()
                        .any(|(rel, ino)| initial.get(rel) != Some(ino))
                {
                    signalled = true;
                    let _ = tx.send(Instant::now());
                }
                if last {
                    break;
                }
                thread::sleep(Duration::from_millis(1));
            }
        });
        Watcher {
            stop,
            violations,
            first_temp: rx,
            handle: Some(handle),
        }
    }

    /// Stops watching (after one last full pass) and returns the violations seen.
    fn finish(mut self) -> Vec<String> {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(h) = self.handle.take() {
            h.join().expect("watcher thread");
        }
        let v = self.violations.lock().expect("violations lock");
        v.clone()
    }
}

// ---------------------------------------------------------------------------------------------
// Killing runs
// ---------------------------------------------------------------------------------------------

fn spawn_quiet(mut cmd: Command) -> Child {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("starting chainfix")
}

/// Timings of complete old -> new runs.
#[derive(Debug, Clone, Copy)]
struct Timing {
    /// Spawn to exit.
    total: Duration,
    /// Spawn to the first change in the output directory.
    first_write: Duration,
}

/// Sets up `out/` with the old version (with the .pfx when `pfx`), then runs the new one
/// (`extra`) to completion twice from the old state; returns the two snapshots and timings.
fn prepare(inputs: &Inputs, pfx: bool, extra: &[&str]) -> (Snapshot, Snapshot, Timing) {
    let env = &inputs.env;
    let out_dir = env.path("out");
    let old_args: &[&str] = if pfx { &WITH_PFX } else { &[] };
    run(&mut repair_cmd(env, "old", old_args)).assert_status(0);
    let old = snapshot(&out_dir);
    let mut new: Option<Snapshot> = None;
    let mut timings = Vec::new();
    for _ in 0..2 {
        restore(&out_dir, &old);
        let watcher = Watcher::start(out_dir.clone());
        let start = Instant::now();
        let out = run(&mut repair_cmd(env, "new", extra));
        let total = start.elapsed();
        let first_write = watcher
            .first_temp
            .try_recv()
            .map_or(total, |t| t.duration_since(start));
        let violations = watcher.finish();
        assert!(
            violations.is_empty(),
            "key readable by others: {violations:?}"
        );
        out.assert_status(0);
        timings.push(Timing { total, first_write });
        // Backups (if any) are not part of the new version.
        let snap: Snapshot = snapshot(&out_dir)
            .into_iter()
            .filter(|(rel, _)| backup_target(rel).is_none_or(|(_, s)| !is_backup_stamp(&s)))
            .collect();
        match &new {
            None => new = Some(snap),
            Some(first) => {
                // The new version must be reproducible (apart from the PFX's fresh salts).
                let strip = |s: &Snapshot| {
                    s.iter()
                        .filter(|(rel, _)| rel.as_str() != PFX_REL && rel.as_str() != MANIFEST_REL)
                        .map(|(r, st)| (r.clone(), st.clone()))
                        .collect::<Snapshot>()
                };
                assert_eq!(
                    strip(first),
                    strip(&snap),
                    "the new output is not reproducible"
                );
            }
        }
    }
    let new = new.expect("two runs");
    // The longer run and the earlier first write: the window covers both runs.
    let total = timings.iter().map(|t| t.total).max().expect("timings");
    let first_write = timings
        .iter()
        .map(|t| t.first_write)
        .min()
        .expect("timings");
    (old, new, Timing { total, first_write })
}

/// Tallies over a kill campaign.
#[derive(Debug, Default)]
struct Tally {
    iterations: usize,
    /// Kills that landed while chainfix was still running.
    killed_running: usize,
    /// States with some outputs old and some new (the kill landed inside the write phase).
    mixed: usize,
    all_old: usize,
    all_new: usize,
    recoveries: usize,
    leftover_temp_files: usize,
}

impl Tally {
    fn add(&mut self, other: &Tally) {
        self.iterations += other.iterations;
        self.killed_running += other.killed_running;
        self.mixed += other.mixed;
        self.all_old += other.all_old;
        self.all_new += other.all_new;
        self.recoveries += other.recoveries;
        self.leftover_temp_files += other.leftover_temp_files;
    }
}

/// How long a kill campaign may run before it is taken for hung.
const HANG_GUARD: Duration = Duration::from_secs(600);

struct Campaign {
    /// Whether the .pfx is written (it costs most of a debug build's run time).
    pfx: bool,
    /// Extra `repair` arguments of the killed runs (e.g. `--backup`).
    extra: Vec<String>,
    /// How many kills: the count the campaign must reach.
    iterations: usize,
    /// A hang guard only: a campaign still running after this long stops, and fails its
    /// count. It is never what ends a healthy campaign (wall-clock limits flake on a loaded
    /// two-core machine).
    budget: Duration,
    workers: usize,
    /// Every Nth iteration, the killed state is repaired by a complete run instead of restored.
    recover_every: usize,
}

/// One worker: kill, check, restore, repeat.
fn kill_worker(
    campaign: &Campaign,
    worker: usize,
    seed: u64,
    deadline: Instant,
    switch: fn() -> Inputs,
) -> Tally {
    let inputs = switch();
    let mut extra: Vec<&str> = campaign.extra.iter().map(String::as_str).collect();
    if campaign.pfx {
        extra.extend(WITH_PFX);
    }
    let (old, new, timing) = prepare(&inputs, campaign.pfx, &extra);
    let env = &inputs.env;
    let out_dir = env.path("out");
    let changed: Vec<&String> = new
        .iter()
        .filter(|(rel, st)| {
            rel.as_str() == PFX_REL || rel.as_str() == MANIFEST_REL || old.get(*rel) != Some(st)
        })
        .map(|(rel, _)| rel)
        .collect();
    println!(
        "worker {worker}: run takes {:?}, first write after {:?}; {} of {} outputs change: {:?}",
        timing.total,
        timing.first_write,
        changed.len(),
        new.len(),
        changed
    );
    let versions = Versions {
        env,
        old: old.clone(),
        new: new.clone(),
        new_pfx_certs: inputs.new_pfx_certs.clone(),
    };
    let write_window = timing.total.saturating_sub(timing.first_write) + Duration::from_millis(20);
    let mut rng = Rng(seed ^ (worker as u64).wrapping_mul(0xa076_1d64_78bd_642f));
    let mut tally = Tally::default();
    let per_worker = campaign.iterations.div_ceil(campaign.workers);
    restore(&out_dir, &old);
    for i in 0..per_worker {
        if Instant::now() >= deadline {
            break;
        }
        // A third of the kills anywhere in the run, the rest inside the write phase.
        let anywhere = rng.unit() < 1.0 / 3.0;
        let delay = if anywhere {
            rng.duration(timing.total.mul_f64(1.1))
        } else {
            rng.duration(write_window)
        };
        let watcher = Watcher::start(out_dir.clone());
        let start = Instant::now();
        let mut child = spawn_quiet(repair_cmd(env, "new", &extra));
        if !anywhere {
            let _ = watcher
                .first_temp
                .recv_timeout(timing.total.mul_f64(3.0) + Duration::from_secs(1));
        }
        let target = if anywhere {
            start + delay
        } else {
            Instant::now() + delay
        };
        while Instant::now() < target {
            if let Ok(Some(_)) = child.try_wait() {
                break;
            }
            thread::sleep(Duration::from_micros(200));
        }
        let was_running = matches!(child.try_wait(), Ok(None));
        let _ = child.kill(); // SIGKILL
        let status = child.wait().expect("waiting for the killed chainfix");
        let violations = watcher.finish();
        assert!(
            violations.is_empty(),
            "worker {worker} iteration {i} (delay {delay:?}, {}): a key file was accessible to others: {violations:?}",
            if anywhere { "from spawn" } else { "after the first write" }
        );
        if was_running {
            tally.killed_running += 1;
        } else {
            assert!(
                status.success(),
                "worker {worker} iteration {i}: chainfix ended with {status} before the kill"
            );
        }
        let seen = versions.check(&out_dir, true).unwrap_or_else(|e| {
            panic!(
                "worker {worker} iteration {i} (delay {delay:?} {}): {e}",
                if anywhere {
                    "from spawn"
                } else {
                    "after the first write"
                }
            )
        });
        let olds = seen.values().filter(|s| **s == Seen::Old).count();
        let news = seen.values().filter(|s| **s == Seen::New).count();
        if olds > 0 && news > 0 {
            tally.mixed += 1;
        }
        let unchanged = seen.len() - changed.len();
        if news == 0 {
            tally.all_old += 1;
        } else if olds <= unchanged {
            tally.all_new += 1;
        }
        tally.leftover_temp_files += files_under(&out_dir)
            .iter()
            .filter(|(rel, _)| temp_file_target(rel).is_some())
            .count();
        tally.iterations += 1;

        if campaign.recover_every > 0 && i % campaign.recover_every == campaign.recover_every - 1 {
            // Recovery: a complete run over the killed state reaches the new version.
            let watcher = Watcher::start(out_dir.clone());
            let out = run(&mut repair_cmd(env, "new", &extra));
            let violations = watcher.finish();
            assert!(violations.is_empty(), "{violations:?}");
            out.assert_status(0);
            let seen = versions.check(&out_dir, true).unwrap_or_else(|e| {
                panic!("worker {worker} iteration {i}: after a complete run over the killed state: {e}")
            });
            for (rel, s) in &seen {
                if new.contains_key(rel) {
                    let same =
                        old.get(rel) == new.get(rel) && rel != PFX_REL && rel != MANIFEST_REL;
                    assert!(
                        *s == Seen::New || (same && *s == Seen::Old),
                        "{rel} is {s:?} after a complete run"
                    );
                }
            }
            tally.recoveries += 1;
        }
        restore(&out_dir, &old);
    }
    tally
}

fn run_campaign(name: &str, campaign: &Campaign, switch: fn() -> Inputs) -> Tally {
    let seed = seed();
    let started = Instant::now();
    let deadline = started + campaign.budget;
    let tallies: Vec<Tally> = thread::scope(|s| {
        let handles: Vec<_> = (0..campaign.workers)
            .map(|w| s.spawn(move || kill_worker(campaign, w, seed, deadline, switch)))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
            .collect()
    });
    let mut total = Tally::default();
    for t in &tallies {
        total.add(t);
    }
    println!(
        "{name}: {} kills in {:.1} s (seed {seed}): {} while running, {} mixed old/new states, \
         {} all old, {} all new, {} complete recoveries, {} leftover temp files",
        total.iterations,
        started.elapsed().as_secs_f64(),
        total.killed_running,
        total.mixed,
        total.all_old,
        total.all_new,
        total.recoveries,
        total.leftover_temp_files
    );
    total
}

fn workers() -> usize {
    thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
        .clamp(2, 4)
}

// ---------------------------------------------------------------------------------------------
// The checks themselves
// ---------------------------------------------------------------------------------------------

#[test]
fn state_checker_and_permission_watcher_catch_what_they_must() {
    let inputs = inputs_switching_everything();
    let (old, new, _) = prepare(&inputs, false, &[]);
    let env = &inputs.env;
    let out_dir = env.path("out");
    let versions = Versions {
        env,
        old: old.clone(),
        new: new.clone(),
        new_pfx_certs: inputs.new_pfx_certs.clone(),
    };
    let put = |rel: &str, bytes: &[u8], mode: u32| {
        let path = out_dir.join(rel);
        std::fs::write(&path, bytes).expect("writing");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).expect("chmod");
    };
    restore(&out_dir, &old);
    assert!(versions.check(&out_dir, false).is_ok());
    restore(&out_dir, &new);
    assert!(versions.check(&out_dir, false).is_ok());

    let new_full = &new["fullchain.pem"].bytes;
    let old_full = &old["fullchain.pem"].bytes;
    restore(&out_dir, &old);
    put("fullchain.pem", &new_full[..new_full.len() / 2], 0o644);
    assert!(versions.check(&out_dir, false).is_err(), "a partial file");
    restore(&out_dir, &old);
    std::fs::remove_file(out_dir.join("cert.pem")).expect("rm");
    assert!(versions.check(&out_dir, false).is_err(), "a vanished file");
    restore(&out_dir, &old);
    put("privkey.pem", &new["privkey.pem"].bytes, 0o644);
    assert!(
        versions.check(&out_dir, false).is_err(),
        "new key, wrong mode"
    );
    restore(&out_dir, &old);
    put("stray.pem", old_full, 0o644);
    assert!(versions.check(&out_dir, false).is_err(), "an unknown file");
    restore(&out_dir, &old);
    put(".fullchain.pem.chainfix-tmp.1.0", &new_full[..10], 0o644);
    assert!(
        versions.check(&out_dir, false).is_ok(),
        "a leftover temp file"
    );
    restore(&out_dir, &old);
    put(
        ".privkey.pem.chainfix-tmp.1.0",
        &new["privkey.pem"].bytes,
        0o644,
    );
    assert!(
        versions.check(&out_dir, false).is_err(),
        "a world-readable key leftover"
    );
    restore(&out_dir, &old);
    put("fullchain.pem.bak.20260101T000000Z", old_full, 0o644);
    assert!(
        versions.check(&out_dir, false).is_err(),
        "backups not expected"
    );
    assert!(versions.check(&out_dir, true).is_ok(), "a complete backup");
    put("fullchain.pem.bak.20260101T000000Z", &old_full[..20], 0o644);
    assert!(versions.check(&out_dir, true).is_err(), "a partial backup");
    restore(&out_dir, &old);
    put(MANIFEST_REL, &new[MANIFEST_REL].bytes, 0o644);
    assert!(
        versions.check(&out_dir, false).is_err(),
        "a new manifest vouching for files still old"
    );

    restore(&out_dir, &old);
    let watcher = Watcher::start(out_dir.clone());
    // A world-readable key appears (complete, by rename) and goes again.
    let outside = env.write("exposed.pem", &new["privkey.pem"].bytes);
    std::fs::set_permissions(&outside, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let exposed = out_dir.join(".privkey.pem.chainfix-tmp.9.9");
    std::fs::rename(&outside, &exposed).expect("rename");
    let trigger = watcher.first_temp.recv_timeout(Duration::from_secs(10));
    assert!(trigger.is_ok(), "the watcher did not see the new file");
    let deadline = Instant::now() + Duration::from_secs(10);
    while watcher.violations.lock().expect("lock").is_empty() && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(5));
    }
    std::fs::remove_file(&exposed).expect("rm");
    let violations = watcher.finish();
    assert!(
        violations
            .iter()
            .all(|v| v.starts_with(".privkey.pem.chainfix-tmp.9.9 mode 644")),
        "{violations:?}"
    );
    assert!(!violations.is_empty(), "the exposed key was not reported");
}

// ---------------------------------------------------------------------------------------------
// B. SIGKILL at random moments
// ---------------------------------------------------------------------------------------------

#[test]
fn sigkill_at_random_points_leaves_every_output_old_or_new_and_keys_private() {
    // With the .pfx (as the brief asks): each debug-build run spends most of its time on
    // PKCS#12 encryption, so this campaign makes fewer kills than the one without.
    let campaign = Campaign {
        pfx: true,
        extra: Vec::new(),
        iterations: 25,
        budget: HANG_GUARD,
        workers: workers(),
        recover_every: 20,
    };
    let tally = run_campaign(
        "kill campaign (emit all, with pfx)",
        &campaign,
        inputs_switching_everything,
    );
    assert!(
        tally.iterations >= 25,
        "only {} kills before the hang guard",
        tally.iterations
    );
    assert!(
        tally.mixed > 0,
        "no kill landed inside the write phase: the schedule is not exercising anything"
    );
}

#[test]
fn sigkill_at_hundreds_of_points_without_pfx_leaves_every_output_old_or_new() {
    // The same without the .pfx: runs are ten times shorter, so hundreds of kill points fit.
    let campaign = Campaign {
        pfx: false,
        extra: Vec::new(),
        iterations: 100,
        budget: HANG_GUARD,
        workers: workers(),
        recover_every: 25,
    };
    let tally = run_campaign(
        "kill campaign (emit all, no pfx)",
        &campaign,
        inputs_switching_everything,
    );
    assert!(tally.iterations >= 100, "only {} kills", tally.iterations);
    assert!(tally.mixed > 0, "no kill landed inside the write phase");
}

#[test]
fn leftover_temp_files_from_a_killed_run_with_the_same_pid_do_not_block_the_next_run() {
    // A run killed mid-write leaves `.NAME.chainfix-tmp.PID.N` behind. Process ids repeat
    // (in a container chainfix may be PID 1 every time); the next run must still write, not
    // fail with "File exists". Leftovers are made for every output and the first 41 temp
    // counters so the test does not depend on the order files are written in.
    let inputs = inputs_switching_everything();
    let env = &inputs.env;
    run(&mut repair_cmd(env, "old", &WITH_PFX)).assert_status(0);
    let old = snapshot(&env.path("out"));
    let names: Vec<String> = old.keys().cloned().collect();
    // The shell creates the leftovers named with its own PID, then becomes chainfix (same PID).
    let mut script = String::from("set -e\n");
    for rel in &names {
        let (dir, name) = split_rel(rel);
        let dir = if dir.is_empty() {
            "out".to_string()
        } else {
            format!("out/{dir}")
        };
        script.push_str(&format!(
            "for n in $(seq 0 40); do printf 'partial' > \"{dir}/.{name}.chainfix-tmp.$$.$n\"; done\n"
        ));
    }
    script.push_str("exec \"$@\"\n");
    let chainfix = repair_cmd(env, "new", &WITH_PFX);
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg(&script)
        .arg("sh")
        .arg(chainfix.get_program())
        .args(chainfix.get_args())
        .current_dir(env.dir.path())
        .env("NO_COLOR", "1")
        .env(PFX_VAR, PFX_PASSWORD)
        .env("XDG_CACHE_HOME", env.path("cache"));
    let out = run(&mut cmd);
    assert_eq!(
        out.status, 0,
        "stale temp files of an earlier run with the same PID made the run fail:\n{}",
        out.stderr
    );
    let json = out.json();
    let files = json["results"][0]["files"].as_array().expect("files array");
    assert!(
        files.iter().all(|f| f["action"] != "unchanged"),
        "{files:#?}"
    );
}

// ---------------------------------------------------------------------------------------------
// C. --backup
// ---------------------------------------------------------------------------------------------

/// UTC `YYYYMMDDTHHMMSSZ` of a system time.
fn utc_stamp(t: SystemTime) -> String {
    let secs = t
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Days to civil date (H. Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// `--backup` is a promise of the interface: its absence fails these tests, never skips them.
fn assert_backup_offered() {
    let out = run(chainfix().args(["repair", "--help"]));
    assert!(
        out.stdout.contains("--backup"),
        "repair --help does not offer --backup:\n{}",
        out.stdout
    );
}

#[test]
fn backup_keeps_exactly_the_old_version_of_each_changed_file() {
    assert_backup_offered();
    let inputs = inputs_renewing_the_leaf();
    let env = &inputs.env;
    let out_dir = env.path("out");
    run(&mut repair_cmd(env, "old", &WITH_PFX)).assert_status(0);
    let old = snapshot(&out_dir);

    let before = SystemTime::now() - Duration::from_secs(1);
    let watcher = Watcher::start(out_dir.clone());
    let out = run(&mut repair_cmd(
        env,
        "new",
        &["--backup", WITH_PFX[0], WITH_PFX[1]],
    ));
    let violations = watcher.finish();
    let after = SystemTime::now() + Duration::from_secs(1);
    assert!(violations.is_empty(), "{violations:?}");
    out.assert_status(0);
    let json = out.json();
    let files = json["results"][0]["files"]
        .as_array()
        .expect("files array")
        .clone();
    let now = snapshot(&out_dir);

    let out_abs = std::fs::canonicalize(&out_dir).expect("canonical out");
    // files[].path is as chainfix saw it: relative to its working directory (the test dir).
    let rel_of = |p: &str| -> String {
        let p = env.dir.path().join(p);
        let p = std::fs::canonicalize(&p).unwrap_or(p);
        p.strip_prefix(&out_abs)
            .unwrap_or_else(|_| panic!("{} is outside {}", p.display(), out_abs.display()))
            .to_string_lossy()
            .into_owned()
    };

    // Backups on disk, by the file they belong to.
    let mut backups: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    for rel in now.keys() {
        if let Some((target, stamp)) = backup_target(rel) {
            backups
                .entry(target)
                .or_default()
                .push((rel.clone(), stamp));
        }
    }
    let mut stamps = BTreeSet::new();
    let mut changed = 0;
    for f in &files {
        let path = f["path"].as_str().expect("files[].path");
        let rel = rel_of(path);
        let action = f["action"].as_str().expect("files[].action");
        let on_disk = backups.remove(&rel).unwrap_or_default();
        match action {
            "updated" => {
                changed += 1;
                assert_eq!(
                    on_disk.len(),
                    1,
                    "{rel} changed: exactly one backup expected, found {on_disk:?}"
                );
                let (bak_rel, stamp) = &on_disk[0];
                assert!(is_backup_stamp(stamp), "{bak_rel}: stamp {stamp:?}");
                stamps.insert(stamp.clone());
                let old_state = old.get(&rel).expect("an updated file existed before");
                let bak = &now[bak_rel];
                assert_eq!(
                    bak.bytes, old_state.bytes,
                    "{bak_rel} must hold the old content of {rel}"
                );
                assert_eq!(
                    bak.mode, old_state.mode,
                    "{bak_rel} must keep the old mode {:o} (got {:o})",
                    old_state.mode, bak.mode
                );
                if rel.ends_with("privkey.pem") || rel == PFX_REL {
                    assert_eq!(bak.mode & 0o007, 0, "{bak_rel} mode {:o}", bak.mode);
                }
                assert_ne!(
                    now[&rel].bytes, old_state.bytes,
                    "{rel} reported updated but still old"
                );
                let reported = f["backup"]
                    .as_str()
                    .unwrap_or_else(|| panic!("files[] entry of {rel} has no \"backup\": {f:#}"));
                assert_eq!(rel_of(reported), *bak_rel, "{f:#}");
            }
            "unchanged" => {
                assert!(
                    on_disk.is_empty(),
                    "unchanged {rel} got a backup: {on_disk:?}"
                );
                assert!(
                    f.get("backup").is_none_or(Value::is_null),
                    "unchanged {rel} reports a backup: {f:#}"
                );
                assert_eq!(old.get(&rel), now.get(&rel), "{rel} reported unchanged");
            }
            other => panic!("{rel}: unexpected action {other} in {f:#}"),
        }
    }
    assert!(
        backups.is_empty(),
        "backups of files not in files[]: {backups:?}"
    );
    assert!(
        changed >= 5,
        "the renewal must change several files: {files:#?}"
    );
    assert!(
        files.iter().any(|f| f["action"] == "unchanged"),
        "the intermediate's files should be unchanged: {files:#?}"
    );
    assert_eq!(stamps.len(), 1, "one run, one timestamp: {stamps:?}");
    let stamp = stamps.into_iter().next().expect("one stamp");
    let (lo, hi) = (utc_stamp(before), utc_stamp(after));
    assert!(
        lo <= stamp && stamp <= hi,
        "backup stamp {stamp} is not the UTC time of the run ({lo}..{hi})"
    );
    println!("backup stamp {stamp} (run between {lo} and {hi})");

    // The same inputs again: nothing changes, so no new backup.
    let out = run(&mut repair_cmd(
        env,
        "new",
        &["--backup", WITH_PFX[0], WITH_PFX[1]],
    ));
    out.assert_status(0);
    let again = snapshot(&out_dir);
    let count = |s: &Snapshot| s.keys().filter(|r| backup_target(r).is_some()).count();
    assert_eq!(
        count(&again),
        count(&now),
        "a run that changes nothing made backups"
    );
}

#[test]
fn sigkill_during_a_backup_run_leaves_old_or_new_and_only_complete_backups() {
    assert_backup_offered();
    // Without the .pfx first (short runs, many kills), then with it.
    let campaign = Campaign {
        pfx: false,
        extra: vec!["--backup".into()],
        iterations: 40,
        budget: HANG_GUARD,
        workers: workers(),
        recover_every: 0,
    };
    let tally = run_campaign(
        "kill campaign (--backup, no pfx)",
        &campaign,
        inputs_renewing_the_leaf,
    );
    assert!(tally.iterations >= 40, "only {} kills", tally.iterations);
    assert!(tally.mixed > 0, "no kill landed inside the write phase");
    let campaign = Campaign {
        pfx: true,
        extra: vec!["--backup".into()],
        iterations: 8,
        budget: HANG_GUARD,
        workers: workers(),
        recover_every: 0,
    };
    let tally = run_campaign(
        "kill campaign (--backup, with pfx)",
        &campaign,
        inputs_renewing_the_leaf,
    );
    assert!(tally.iterations >= 8, "only {} kills", tally.iterations);
    assert!(tally.mixed > 0, "no kill landed inside the write phase");
}
