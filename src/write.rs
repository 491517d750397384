//! Output files: atomic (temp file in the same directory, fsync, rename, fsync the directory)
//! and idempotent (identical content with the right mode is left alone, mtime and all).
//! Private keys are created 0600 from the first byte: the temp file is opened with that mode,
//! so no moment exists where the key is world-readable.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Permission classes for written files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileMode {
    /// 0644: certificates, configuration.
    Public,
    /// 0600: private keys.
    Secret,
    /// An explicit mode (e.g. 0640 for a key an MTA group must read).
    Exact(u32),
}

impl FileMode {
    pub fn bits(self) -> u32 {
        match self {
            FileMode::Public => 0o644,
            FileMode::Secret => 0o600,
            FileMode::Exact(m) => m,
        }
    }
}

/// What a write did (or, with `--check`, would do).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum WriteOutcome {
    Created,
    Updated,
    /// Same content; only the permissions were corrected.
    ModeFixed,
    Unchanged,
}

impl WriteOutcome {
    pub fn changed(self) -> bool {
        self != WriteOutcome::Unchanged
    }
}

/// What writing `contents` to `path` with `mode` would do, without doing it.
pub fn plan(path: &Path, contents: &[u8], mode: FileMode) -> WriteOutcome {
    match fs::read(path) {
        Err(_) => WriteOutcome::Created,
        Ok(existing) if existing != contents => WriteOutcome::Updated,
        Ok(_) => {
            let current = fs::metadata(path).map(|m| m.permissions().mode() & 0o7777);
            if current.ok() == Some(mode.bits()) {
                WriteOutcome::Unchanged
            } else {
                WriteOutcome::ModeFixed
            }
        }
    }
}

/// Writes `contents` to `path` atomically unless it already holds exactly that.
pub fn write_atomic(path: &Path, contents: &[u8], mode: FileMode) -> std::io::Result<WriteOutcome> {
    let outcome = plan(path, contents, mode);
    match outcome {
        WriteOutcome::Unchanged => {}
        WriteOutcome::ModeFixed => {
            fs::set_permissions(path, fs::Permissions::from_mode(mode.bits()))?;
        }
        WriteOutcome::Created | WriteOutcome::Updated => replace(path, contents, mode)?,
    }
    Ok(outcome)
}

fn replace(path: &Path, contents: &[u8], mode: FileMode) -> std::io::Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let tmp = temp_name(path);
    let result = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode.bits())
            .open(&tmp)?;
        // The umask may have narrowed the mode; set it exactly (never wider than asked).
        file.set_permissions(fs::Permissions::from_mode(mode.bits()))?;
        file.write_all(contents)?;
        file.sync_all()?;
        drop(file);
        fs::rename(&tmp, path)?;
        fs::File::open(dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

fn temp_name(path: &Path) -> PathBuf {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    path.with_file_name(format!(".{name}.chainfix-tmp.{}.{n}", std::process::id()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unchanged_file_keeps_mtime_and_secret_mode_is_exact() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("privkey.pem");
        assert_eq!(
            write_atomic(&p, b"k1", FileMode::Secret).ok(),
            Some(WriteOutcome::Created)
        );
        let mode = fs::metadata(&p)
            .map(|m| m.permissions().mode() & 0o777)
            .ok();
        assert_eq!(mode, Some(0o600));
        let before = fs::metadata(&p).and_then(|m| m.modified()).ok();
        std::thread::sleep(std::time::Duration::from_millis(20));
        assert_eq!(
            write_atomic(&p, b"k1", FileMode::Secret).ok(),
            Some(WriteOutcome::Unchanged)
        );
        assert_eq!(fs::metadata(&p).and_then(|m| m.modified()).ok(), before);
        assert_eq!(
            write_atomic(&p, b"k2", FileMode::Secret).ok(),
            Some(WriteOutcome::Updated)
        );
        assert_eq!(fs::read(&p).ok().as_deref(), Some(&b"k2"[..]));
        fs::set_permissions(&p, fs::Permissions::from_mode(0o644)).expect("chmod");
        assert_eq!(
            write_atomic(&p, b"k2", FileMode::Secret).ok(),
            Some(WriteOutcome::ModeFixed)
        );
        let leftovers = fs::read_dir(dir.path()).map(|d| d.count()).unwrap_or(0);
        assert_eq!(leftovers, 1, "no temp files left behind");
    }
}
