//! Load stage: command-line paths -> certificates, private keys and per-file errors.
//!
//! Every file is sniffed by content, not by name: PEM (any mix of blocks), DER certificate,
//! PKCS#7 (DER or PEM) and PKCS#12. A file that is none of these is skipped quietly when it
//! was found by walking a directory; a damaged file, or a file named on the command line that
//! holds nothing usable, is an error that names the file. Other files are still processed.

pub mod key;
pub mod pem;
pub mod pkcs12;
pub mod pkcs7;
pub mod walk;

use std::collections::{HashMap, HashSet};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use rayon::prelude::*;

use crate::cert::Certificate;
pub use key::{KeyFormat, PrivateKey};
pub use pkcs12::{NoPassword, PasswordSource};

/// Largest file read (the CCADB all-certificates bundle is ~15 MiB of PEM).
pub const MAX_FILE_BYTES: u64 = 64 * 1024 * 1024;
/// Most certificates taken from one PKCS#7 file.
pub const MAX_PKCS7_CERTS: usize = 20_000;

/// A certificate and where it was found: the file and its position in that file.
#[derive(Debug, Clone)]
pub struct Located {
    pub cert: Arc<Certificate>,
    /// Shared by every certificate of the file (and by the pool's record of where each came
    /// from): a fleet has one path per file, not several copies per certificate.
    pub path: Arc<Path>,
    pub index: usize,
}

#[derive(Debug, Clone)]
pub struct LocatedKey {
    pub key: PrivateKey,
    pub path: PathBuf,
}

/// A problem with one file. `fatal` problems make the run's exit status say so; the others
/// (an encrypted key we cannot use, a symlink loop) are notes.
#[derive(Debug, Clone)]
pub struct FileProblem {
    pub path: PathBuf,
    pub message: String,
    pub fatal: bool,
}

impl std::fmt::Display for FileProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.path.display(), self.message)
    }
}

#[derive(Debug, Default)]
pub struct Loaded {
    pub certs: Vec<Located>,
    pub keys: Vec<LocatedKey>,
    pub problems: Vec<FileProblem>,
    pub files_read: usize,
}

/// What one file held.
#[derive(Debug, Default)]
pub struct Contents {
    pub certs: Vec<Certificate>,
    pub keys: Vec<PrivateKey>,
    /// Damaged parts; the rest of the file was still used.
    pub damaged: Vec<String>,
    /// Usable-but-skipped parts (encrypted keys).
    pub notes: Vec<String>,
}

impl Contents {
    fn is_empty(&self) -> bool {
        self.certs.is_empty() && self.keys.is_empty()
    }
}

/// Loads every path (files and directories, recursively).
pub fn load_paths(paths: &[PathBuf], pw: &dyn PasswordSource) -> Loaded {
    load_paths_with(paths, &[], pw, &NoProgress)
}

/// Told how many files a load will read, and each time one is done (a progress bar seam).
/// Files are read on several threads, so `advance` may be called from any of them. `start` comes
/// when the walk is over and the total is known: files may have been done (`advance`d) before.
pub trait Progress: Sync {
    fn start(&self, _total: usize) {}
    fn advance(&self) {}
    fn finish(&self) {}
}

pub struct NoProgress;

impl Progress for NoProgress {}

/// [`load_paths`], reporting progress. When directories are named, one thread walks them while
/// the others read and parse the files it finds (rayon), so that a large tree's walk is not a
/// phase of its own; named files alone are read without that machinery. The result is in
/// path-expansion order (command-line order, each directory sorted by file name), whatever the
/// number of threads. Directories in `skip_dirs` are not entered when met inside a named
/// directory (repair's output directory: its files are not inputs).
pub fn load_paths_with(
    paths: &[PathBuf],
    skip_dirs: &[PathBuf],
    pw: &dyn PasswordSource,
    progress: &dyn Progress,
) -> Loaded {
    // Found files go to the readers in batches (a hand-over per file would wake a thread per
    // file), growing from 1 to 64 files so that a small directory is still spread over every
    // core; enough are queued to keep every reader busy, and the walk waits beyond that.
    const BATCH: usize = 64;
    const QUEUE: usize = 64;
    let asked = Mutex::new(HashMap::new());
    let read = |(i, file, explicit): (usize, PathBuf, bool)| {
        let mut one = Loaded::default();
        let id = load_file(&file, explicit, pw, &asked, &mut one);
        progress.advance();
        (i, id, one)
    };
    let (walk_problems, mut per_file) = if paths.iter().any(|p| p.is_dir()) {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<(usize, PathBuf, bool)>>(QUEUE);
        std::thread::scope(|scope| {
            let walker = scope.spawn(move || {
                let mut size = 1;
                let mut batch = Vec::with_capacity(size);
                // The receiver only goes away if a reader panicked; the walk just ends then.
                let problems = expand_all(paths, skip_dirs, progress, &mut |found| {
                    batch.push(found);
                    if batch.len() == size {
                        size = (size * 2).min(BATCH);
                        let _ = tx.send(std::mem::replace(&mut batch, Vec::with_capacity(size)));
                    }
                });
                let _ = tx.send(batch);
                problems
            });
            let per_file: Vec<(usize, walk::FileId, Loaded)> = rx
                .into_iter()
                .par_bridge()
                .flat_map_iter(|batch| batch.into_iter().map(read))
                .collect();
            match walker.join() {
                Ok(problems) => (problems, per_file),
                Err(panic) => std::panic::resume_unwind(panic),
            }
        })
    } else {
        let mut files = Vec::new();
        let problems = expand_all(paths, skip_dirs, progress, &mut |found| files.push(found));
        (problems, files.into_par_iter().map(read).collect())
    };
    progress.finish();
    per_file.sort_unstable_by_key(|(i, _, _)| *i);
    let mut loaded = Loaded {
        problems: walk_problems,
        ..Loaded::default()
    };
    loaded
        .certs
        .reserve_exact(per_file.iter().map(|(_, _, one)| one.certs.len()).sum());
    // A file reached by two paths (named twice, named and inside a named directory, through
    // two links) counts once, under the first of them.
    let mut seen = HashSet::with_capacity(per_file.len());
    for (_, id, one) in per_file {
        if !seen.insert(id) {
            continue;
        }
        loaded.certs.extend(one.certs);
        loaded.keys.extend(one.keys);
        loaded.problems.extend(one.problems);
        loaded.files_read += one.files_read;
    }
    loaded
}

/// Expands `paths` into the files to read, numbered in order, handing each to `found` (with
/// whether it was named on the command line), then tells `progress` the total. Returns the
/// walk's problems. The same file may be found twice; the caller keeps the first.
fn expand_all(
    paths: &[PathBuf],
    skip_dirs: &[PathBuf],
    progress: &dyn Progress,
    found: &mut dyn FnMut((usize, PathBuf, bool)),
) -> Vec<FileProblem> {
    let mut problems = Vec::new();
    let mut walks = walk::Walks::skipping(skip_dirs);
    let mut n = 0;
    for path in paths {
        if !path.is_dir() {
            found((n, path.clone(), true));
            n += 1;
            continue;
        }
        let walk_problems = walk::expand(path, &mut walks, &mut |f| {
            found((n, f, false));
            n += 1;
        });
        problems.extend(
            walk_problems
                .into_iter()
                .map(|(path, message, fatal)| FileProblem {
                    path,
                    message,
                    fatal,
                }),
        );
    }
    progress.start(n);
    problems
}

/// The password typed for each file so far, by identity (see [`AskOnce`]).
type Asked = Mutex<HashMap<walk::FileId, Option<String>>>;

/// Prompts at most once for a file: a file reached by two paths is read twice (the second
/// copy is dropped afterwards), and its second reading gets the first's answer.
struct AskOnce<'a> {
    inner: &'a dyn PasswordSource,
    id: &'a walk::FileId,
    asked: &'a Asked,
}

impl PasswordSource for AskOnce<'_> {
    fn configured(&self) -> Option<String> {
        self.inner.configured()
    }

    fn prompt(&self, path: &Path) -> Option<String> {
        // Held while the user types: the other readers wait for their turn to prompt anyway.
        let mut asked = self.asked.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(answer) = asked.get(self.id) {
            return answer.clone();
        }
        let answer = self.inner.prompt(path);
        // `FileId` is a copy on Unix, a path elsewhere.
        #[allow(clippy::clone_on_copy)]
        asked.insert(self.id.clone(), answer.clone());
        answer
    }
}

/// Reads and parses one file into `loaded`; returns the file's identity.
fn load_file(
    path: &Path,
    explicit: bool,
    pw: &dyn PasswordSource,
    asked: &Asked,
    loaded: &mut Loaded,
) -> walk::FileId {
    let problem = |message: String, fatal: bool| FileProblem {
        path: path.to_path_buf(),
        message,
        fatal,
    };
    let (id, bytes) = read_bounded(path);
    let bytes = match bytes {
        Ok(b) => b,
        Err(message) => {
            loaded.problems.push(problem(message, true));
            return id;
        }
    };
    loaded.files_read += 1;
    let pw = AskOnce {
        inner: pw,
        id: &id,
        asked,
    };
    let contents = match parse_bytes(&bytes, path, &pw) {
        Ok(c) => c,
        Err(message) => {
            if explicit || has_certificate_extension(path) || message != NOT_RECOGNISED {
                loaded.problems.push(problem(message, true));
            }
            return id;
        }
    };
    for d in &contents.damaged {
        loaded.problems.push(problem(d.clone(), true));
    }
    for n in &contents.notes {
        loaded.problems.push(problem(n.clone(), false));
    }
    if explicit && contents.is_empty() && contents.damaged.is_empty() {
        loaded
            .problems
            .push(problem("no certificate or private key found".into(), true));
    }
    let shared: Arc<Path> = Arc::from(path);
    for (index, cert) in contents.certs.into_iter().enumerate() {
        loaded.certs.push(Located {
            cert: Arc::new(cert),
            path: shared.clone(),
            index,
        });
    }
    for key in contents.keys {
        loaded.keys.push(LocatedKey {
            key,
            path: path.to_path_buf(),
        });
    }
    id
}

/// A whole file, bounded, and its identity. One `fstat` of the open file gives both the
/// identity and the length.
fn read_bounded(path: &Path) -> (walk::FileId, Result<Vec<u8>, String>) {
    let too_big = || format!("larger than {MAX_FILE_BYTES} bytes, not read");
    let file = match open_without_waiting(path) {
        Ok(f) => f,
        Err(e) => return (walk::file_id(path, None), Err(format!("cannot read: {e}"))),
    };
    let meta = file.metadata().ok();
    let id = walk::file_id(path, meta.as_ref());
    let limit = match &meta {
        Some(m) if m.len() > MAX_FILE_BYTES => return (id, Err(too_big())),
        // A regular file is read up to the length it had when opened: one read, with no
        // second one to find the end (`take` answers that without asking the kernel). What is
        // appended meanwhile is not read, as if the file had been read a moment earlier.
        Some(m) if m.is_file() && m.len() > 0 => m.len(),
        // Devices, pipes and files that report no length (procfs) are read to their end,
        // bounded all the same.
        _ => MAX_FILE_BYTES + 1,
    };
    let capacity = meta.as_ref().map_or(0, |m| m.len()).min(limit);
    let mut bytes = Vec::with_capacity(usize::try_from(capacity).unwrap_or(0));
    let read = if meta.as_ref().is_some_and(|m| m.is_file()) {
        file.take(limit).read_to_end(&mut bytes).map(drop)
    } else {
        read_stream(file, limit, &mut bytes)
    };
    if let Err(e) = read {
        return (id, Err(format!("cannot read: {e}")));
    }
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return (id, Err(too_big()));
    }
    (id, Ok(bytes))
}

/// How long a pipe or device named on the command line may take to deliver its content.
pub const STREAM_READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// Opens `path` for reading without waiting for anything: opening a FIFO that no program
/// writes to would otherwise block forever. Reads from a regular file are unaffected.
fn open_without_waiting(path: &Path) -> std::io::Result<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::custom_flags(&mut options, libc::O_NONBLOCK);
    options.open(path)
}

/// Reads a pipe or device opened by [`open_without_waiting`] to its end (at most `limit`
/// bytes), waiting for data that is slow to come for [`STREAM_READ_TIMEOUT`] at most. A FIFO
/// with no writer reads as empty.
fn read_stream(mut file: std::fs::File, limit: u64, out: &mut Vec<u8>) -> std::io::Result<()> {
    use std::io::ErrorKind;
    let deadline = std::time::Instant::now() + STREAM_READ_TIMEOUT;
    let mut chunk = vec![0u8; 64 * 1024];
    while (out.len() as u64) < limit {
        match file.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => out.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                if std::time::Instant::now() >= deadline {
                    return Err(std::io::Error::new(
                        ErrorKind::TimedOut,
                        format!(
                            "no end of data after {} seconds",
                            STREAM_READ_TIMEOUT.as_secs()
                        ),
                    ));
                }
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// A path as reports show it: as is when it is UTF-8 (nearly always, and then only copied),
/// else with replacement characters, as `Path::display` writes it.
pub fn path_text(path: &Path) -> String {
    path.to_str()
        .map_or_else(|| path.display().to_string(), str::to_string)
}

const NOT_RECOGNISED: &str = "not a certificate, key, PKCS#7 or PKCS#12 file";

fn has_certificate_extension(path: &Path) -> bool {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    matches!(
        ext.as_deref(),
        Some("pem" | "crt" | "cer" | "der" | "p7b" | "p7c" | "pfx" | "p12" | "key")
    )
}

/// Sniffs and parses one file's bytes. `Err` means nothing in it could be used.
pub fn parse_bytes(bytes: &[u8], path: &Path, pw: &dyn PasswordSource) -> Result<Contents, String> {
    if pem::looks_like_pem(bytes) {
        return Ok(parse_pem(bytes));
    }
    if bytes.first() != Some(&crate::asn1::SEQUENCE) {
        return Err(NOT_RECOGNISED.into());
    }
    let mut contents = Contents::default();
    if pkcs7::looks_like_pkcs7(bytes) {
        add_pkcs7(bytes, &mut contents);
    } else if pkcs12::looks_like_pfx(bytes) {
        let archive = pkcs12::open(bytes, path, pw).map_err(|e| e.to_string())?;
        for bag in archive.certs {
            match Certificate::from_der(bag.cert.as_der()) {
                Ok(c) => contents.certs.push(c),
                Err(e) => contents.damaged.push(format!("PFX certificate: {e}")),
            }
        }
        for bag in archive.keys {
            match PrivateKey::from_der(bag.key.as_der(), KeyFormat::Pkcs8) {
                Ok(k) => contents.keys.push(k),
                Err(e) => contents.notes.push(format!("PFX key skipped: {e}")),
            }
        }
    } else if let Ok(cert) = Certificate::from_der(bytes) {
        contents.certs.push(cert);
    } else if let Some(key) = PrivateKey::from_unlabelled_der(bytes) {
        contents.keys.push(key);
    } else {
        return Err(NOT_RECOGNISED.into());
    }
    Ok(contents)
}

fn parse_pem(bytes: &[u8]) -> Contents {
    let mut contents = Contents::default();
    for block in pem::blocks(bytes) {
        // Named only when something is said about the block.
        let at = || format!("PEM block {} at line {}", block.label, block.line);
        let der = match block.der {
            Ok(der) => der,
            Err(e) if is_interesting_label(&block.label) => {
                contents.damaged.push(format!("{}: {e}", at()));
                continue;
            }
            Err(_) => continue,
        };
        match block.label.as_str() {
            "CERTIFICATE" | "X509 CERTIFICATE" | "TRUSTED CERTIFICATE" => {
                // OpenSSL's TRUSTED CERTIFICATE appends trust settings after the certificate.
                let first = crate::asn1::read(&der).map(|(t, _)| t.raw).unwrap_or(&der);
                match Certificate::from_der(first) {
                    Ok(c) => contents.certs.push(c),
                    Err(e) => contents.damaged.push(format!("{}: {e}", at())),
                }
            }
            "PKCS7" | "CMS" => add_pkcs7(&der, &mut contents),
            "RSA PRIVATE KEY" | "EC PRIVATE KEY" | "PRIVATE KEY" if block.encrypted => {
                contents.notes.push(format!(
                    "{}: encrypted key skipped; decrypt it to use it",
                    at()
                ))
            }
            "RSA PRIVATE KEY" | "EC PRIVATE KEY" | "PRIVATE KEY" => {
                let format = match block.label.as_str() {
                    "RSA PRIVATE KEY" => KeyFormat::Pkcs1,
                    "EC PRIVATE KEY" => KeyFormat::Sec1,
                    _ => KeyFormat::Pkcs8,
                };
                match PrivateKey::from_der(&der, format) {
                    Ok(k) => contents.keys.push(k),
                    Err(e @ key::KeyError::Unsupported) => {
                        contents.notes.push(format!("{}: {e}, skipped", at()))
                    }
                    Err(e) => contents.damaged.push(format!("{}: {e}", at())),
                }
            }
            "ENCRYPTED PRIVATE KEY" => contents.notes.push(format!(
                "{}: encrypted key skipped; decrypt it to use it",
                at()
            )),
            _ => {}
        }
    }
    contents
}

fn is_interesting_label(label: &str) -> bool {
    label.contains("CERTIFICATE") || label.contains("PRIVATE KEY") || label == "PKCS7"
}

fn add_pkcs7(der: &[u8], contents: &mut Contents) {
    match pkcs7::certificates(der, MAX_PKCS7_CERTS) {
        Ok(certs) => {
            for raw in certs {
                match Certificate::from_der(raw) {
                    Ok(c) => contents.certs.push(c),
                    Err(e) => contents.damaged.push(format!("PKCS#7 certificate: {e}")),
                }
            }
        }
        Err(e) => contents.damaged.push(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    //! A path is shown as `Path::display` shows it, with or without the UTF-8 shortcut.

    use super::*;

    #[test]
    fn path_text_is_what_display_writes() {
        let mut paths = vec![PathBuf::from("/etc/ssl/mail.pem"), PathBuf::from("é/ü.crt")];
        #[cfg(unix)]
        {
            use std::os::unix::ffi::OsStrExt;
            paths.push(Path::new(std::ffi::OsStr::from_bytes(b"bad\xffname.pem")).to_path_buf());
        }
        for path in paths {
            assert_eq!(path_text(&path), path.display().to_string());
        }
    }
}
