//! Output files: atomic (temp file in the same directory, fsync, rename, fsync the directory)
//! and idempotent (identical content with the right mode is left alone, mtime and all).
//! Every temp file is created 0600 and gets its group and final mode before the first byte is
//! written, so no moment exists where a key is readable by anyone it should not be.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
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

/// See [`Target::same_content`].
pub type SameContentRef<'a> = &'a dyn Fn(&[u8]) -> bool;

/// One file's desired state.
pub struct Target<'a> {
    pub contents: &'a [u8],
    pub mode: FileMode,
    /// Group owner to set (a group id from [`group_id`]).
    pub gid: Option<u32>,
    /// Decides whether different existing bytes already hold the same content (PFX files,
    /// whose bytes change on every write); `None` compares bytes.
    pub same_content: Option<SameContentRef<'a>>,
}

impl<'a> Target<'a> {
    pub fn new(contents: &'a [u8], mode: FileMode) -> Target<'a> {
        Target {
            contents,
            mode,
            gid: None,
            same_content: None,
        }
    }
}

/// What writing `contents` to `path` with `mode` would do, without doing it.
pub fn plan(path: &Path, contents: &[u8], mode: FileMode) -> std::io::Result<WriteOutcome> {
    plan_target(path, &Target::new(contents, mode))
}

/// What writing `target` to `path` would do, without doing it. Only a missing file is
/// `Created`: an existing one that cannot be read is an error, not something to overwrite
/// unseen. A symbolic link (or anything but a regular file) is replaced, never followed: its
/// target, wherever it is, is neither rewritten nor re-permissioned.
pub fn plan_target(path: &Path, target: &Target<'_>) -> std::io::Result<WriteOutcome> {
    let meta = match fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(WriteOutcome::Created),
        Err(e) => return Err(e),
    };
    if !meta.file_type().is_file() {
        return Ok(WriteOutcome::Updated);
    }
    let existing = open_no_follow(path).and_then(|mut f| {
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut f, &mut bytes).map(|_| bytes)
    })?;
    let same =
        existing == target.contents || target.same_content.is_some_and(|same| same(&existing));
    if !same {
        return Ok(WriteOutcome::Updated);
    }
    let mode_ok = meta.permissions().mode() & 0o7777 == target.mode.bits();
    let group_ok = target.gid.is_none_or(|g| meta.gid() == g);
    Ok(if mode_ok && group_ok {
        WriteOutcome::Unchanged
    } else {
        WriteOutcome::ModeFixed
    })
}

/// Opens an existing regular file for reading, refusing to follow a symbolic link put there
/// in the meantime.
fn open_no_follow(path: &Path) -> std::io::Result<fs::File> {
    OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
}

/// Writes `contents` to `path` atomically unless it already holds exactly that.
pub fn write_atomic(path: &Path, contents: &[u8], mode: FileMode) -> std::io::Result<WriteOutcome> {
    write_target(path, &Target::new(contents, mode))
}

/// Brings `path` to the state `target` describes, atomically and only if needed.
pub fn write_target(path: &Path, target: &Target<'_>) -> std::io::Result<WriteOutcome> {
    write_keeping(path, target, None).map(|(outcome, _)| outcome)
}

/// [`write_target`], first keeping content that is about to change as `NAME.bak.STAMP` when
/// `backup_stamp` is given. A kept key is narrowed to the key's own mode, so an old key that
/// was world-readable does not stay so in its backup.
pub fn write_keeping(
    path: &Path,
    target: &Target<'_>,
    backup_stamp: Option<&str>,
) -> std::io::Result<(WriteOutcome, Option<PathBuf>)> {
    let outcome = plan_target(path, target)?;
    let mut backup = None;
    match outcome {
        WriteOutcome::Unchanged => {}
        WriteOutcome::ModeFixed => {
            // Through the open file, so that a link put in its place is not followed.
            let file = open_no_follow(path)?;
            if let Some(gid) = target.gid {
                std::os::unix::fs::fchown(&file, None, Some(gid))?;
            }
            file.set_permissions(fs::Permissions::from_mode(target.mode.bits()))?;
        }
        WriteOutcome::Created | WriteOutcome::Updated => {
            if let (WriteOutcome::Updated, Some(stamp)) = (outcome, backup_stamp) {
                let kept = keep_backup(path, stamp)?;
                if target.mode != FileMode::Public {
                    fs::set_permissions(&kept, fs::Permissions::from_mode(target.mode.bits()))?;
                }
                backup = Some(kept);
            }
            replace(path, target)?;
        }
    }
    Ok((outcome, backup))
}

fn replace(path: &Path, target: &Target<'_>) -> std::io::Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let (mut file, tmp) = create_temp(path)?;
    let bits = target.mode.bits();
    let result = (|| {
        // Created owner-only; group and final mode are set before any content is written.
        if let Some(gid) = target.gid {
            std::os::unix::fs::fchown(&file, None, Some(gid))?;
        }
        file.set_permissions(fs::Permissions::from_mode(bits))?;
        file.write_all(target.contents)?;
        file.sync_all()?;
        fs::rename(&tmp, path)?;
        fs::File::open(dir)?.sync_all()
    })();
    if result.is_err() {
        // Only ever remove the temp file this call created.
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Most names tried for a temp file before giving up (each collision is a leftover of a
/// killed run that happened to have the same process id).
const TEMP_ATTEMPTS: u32 = 1000;

/// Creates a new owner-only temp file beside `path`, skipping names that already exist.
fn create_temp(path: &Path) -> std::io::Result<(fs::File, PathBuf)> {
    let mut last = None;
    for _ in 0..TEMP_ATTEMPTS {
        let tmp = temp_name(path);
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
        {
            Ok(file) => return Ok((file, tmp)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| std::io::Error::other("no free temp file name")))
}

/// Keeps the current content of `path` as `NAME.bak.STAMP` (`.1`, `.2`, ... if that exists)
/// before it is replaced. A hard link: instant, atomic, and the same bytes and mode (a key's
/// backup stays 0600); a copy where links are impossible, and of the content a symbolic link
/// leads to (a link to the link would keep nothing).
pub fn keep_backup(path: &Path, stamp: &str) -> std::io::Result<PathBuf> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut backup = path.with_file_name(format!("{name}.bak.{stamp}"));
    let mut n = 0;
    while fs::symlink_metadata(&backup).is_ok() {
        n += 1;
        backup = path.with_file_name(format!("{name}.bak.{stamp}.{n}"));
    }
    let is_link = fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink());
    if is_link || fs::hard_link(path, &backup).is_err() {
        copy_new(path, &backup)?;
    }
    Ok(backup)
}

/// Copies the content at `from`, and its permission bits, to the new file `to`. The copy is
/// owner-only until the content is in.
fn copy_new(from: &Path, to: &Path) -> std::io::Result<()> {
    let mut source = fs::File::open(from)?;
    let mut copy = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(to)?;
    std::io::copy(&mut source, &mut copy)?;
    copy.set_permissions(source.metadata()?.permissions())?;
    copy.sync_all()
}

/// Mode of the directories [`create_dirs`] makes: others may pass through and list them (the
/// MTA reads its files as its own user; keys are protected by their own mode).
pub const DIR_MODE: u32 = 0o755;

/// Creates `dir` and any missing parents with mode [`DIR_MODE`] whatever the umask (under a
/// umask of 077 they would be 0700, and an MTA that dropped privileges could not reach its key
/// or chain). Directories that already exist are left as they are.
pub fn create_dirs(dir: &Path) -> std::io::Result<()> {
    if dir.as_os_str().is_empty() || dir.is_dir() {
        return Ok(());
    }
    not_a_directory(dir)?;
    if let Some(parent) = dir.parent() {
        create_dirs(parent)?;
    }
    match fs::DirBuilder::new().mode(DIR_MODE).create(dir) {
        Ok(()) => fs::set_permissions(dir, fs::Permissions::from_mode(DIR_MODE)),
        // Made meanwhile by someone else: theirs, left alone.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && dir.is_dir() => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => not_a_directory(dir).and(Err(e)),
        Err(e) => Err(e),
    }
}

/// Whether [`create_dirs`] could make `dir`: every part of it that exists is a directory (or
/// a link to one). For `--check`, which creates nothing.
pub fn check_dirs(dir: &Path) -> std::io::Result<()> {
    for part in dir.ancestors() {
        if part.as_os_str().is_empty() || part.is_dir() {
            return Ok(());
        }
        not_a_directory(part)?;
    }
    Ok(())
}

/// An error naming `path` when something other than a directory is there ("File exists" from
/// mkdir(2) says neither which path nor why).
fn not_a_directory(path: &Path) -> std::io::Result<()> {
    match fs::metadata(path) {
        Ok(m) if !m.is_dir() => Err(std::io::Error::other(format!(
            "{} is not a directory",
            path.display()
        ))),
        _ => Ok(()),
    }
}

/// Whether this process may give a file it owns to group `gid`: as root, or as a member of
/// that group (chown(2)). Read from /proc/self/status; where that cannot be read, assumed.
pub fn may_give_to_group(gid: u32) -> bool {
    let Ok(status) = fs::read_to_string("/proc/self/status") else {
        return true;
    };
    let ids = |key: &str| -> Vec<u32> {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .map(|rest| {
                rest.split_whitespace()
                    .filter_map(|n| n.parse().ok())
                    .collect()
            })
            .unwrap_or_default()
    };
    // "Uid:" and "Gid:" list real, effective, saved and filesystem ids.
    let euid = ids("Uid:").get(1).copied();
    let egid = ids("Gid:").get(1).copied();
    euid == Some(0) || egid == Some(gid) || ids("Groups:").contains(&gid)
}

/// The id of a local group, from /etc/group.
pub fn group_id(name: &str) -> Option<u32> {
    let text = fs::read_to_string("/etc/group").ok()?;
    text.lines().find_map(|line| {
        let mut f = line.split(':');
        (f.next()? == name).then_some(())?;
        f.nth(1)?.parse().ok()
    })
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
    fn backup_keeps_old_bytes_and_mode_under_a_fresh_name() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("privkey.pem");
        write_atomic(&p, b"old", FileMode::Secret).expect("write");
        let b1 = keep_backup(&p, "20261122T095300Z").expect("backup");
        let b2 = keep_backup(&p, "20261122T095300Z").expect("backup");
        assert_eq!(
            b1.file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .as_deref(),
            Some("privkey.pem.bak.20261122T095300Z")
        );
        assert_ne!(
            b1, b2,
            "a second backup in the same second gets its own name"
        );
        write_atomic(&p, b"new", FileMode::Secret).expect("write");
        assert_eq!(fs::read(&b1).ok().as_deref(), Some(&b"old"[..]));
        let mode = fs::metadata(&b1)
            .map(|m| m.permissions().mode() & 0o777)
            .ok();
        assert_eq!(mode, Some(0o600));
    }

    #[test]
    fn a_symbolic_link_in_the_way_is_replaced_and_its_target_left_alone() {
        let dir = tempfile::tempdir().expect("tempdir");
        let elsewhere = dir.path().join("elsewhere.key");
        fs::write(&elsewhere, b"k1").expect("write");
        fs::set_permissions(&elsewhere, fs::Permissions::from_mode(0o644)).expect("chmod");
        let p = dir.path().join("privkey.pem");
        std::os::unix::fs::symlink(&elsewhere, &p).expect("symlink");
        // Same content, other mode: not "mode fixed" through the link, but replaced.
        let (outcome, backup) = write_keeping(
            &p,
            &Target::new(b"k1", FileMode::Secret),
            Some("20261122T000000Z"),
        )
        .expect("write");
        assert_eq!(outcome, WriteOutcome::Updated);
        let meta = fs::symlink_metadata(&p).expect("stat");
        assert!(meta.file_type().is_file(), "the link became a file");
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        let target = fs::metadata(&elsewhere).expect("stat");
        assert_eq!(
            target.permissions().mode() & 0o777,
            0o644,
            "target untouched"
        );
        assert_eq!(fs::read(&elsewhere).ok().as_deref(), Some(&b"k1"[..]));
        // The backup holds the content, not a link to the link.
        let backup = backup.expect("a backup");
        let kept = fs::symlink_metadata(&backup).expect("stat");
        assert!(kept.file_type().is_file());
        assert_eq!(kept.permissions().mode() & 0o777, 0o600);
        assert_eq!(fs::read(&backup).ok().as_deref(), Some(&b"k1"[..]));
    }

    #[test]
    fn an_existing_file_that_cannot_be_read_is_an_error_not_a_new_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        // A directory where a file should be cannot be read as one either.
        let p = dir.path().join("fullchain.pem");
        fs::create_dir(&p).expect("mkdir");
        assert!(plan(&p, b"x", FileMode::Public).is_ok_and(|o| o == WriteOutcome::Updated));
        assert!(write_atomic(&p, b"x", FileMode::Public).is_err());
        assert!(p.is_dir(), "left as it was");
        // A file with no read permission: only checkable when not root.
        let q = dir.path().join("privkey.pem");
        fs::write(&q, b"old").expect("write");
        fs::set_permissions(&q, fs::Permissions::from_mode(0o000)).expect("chmod");
        if fs::read(&q).is_err() {
            assert!(plan(&q, b"new", FileMode::Secret).is_err());
            assert!(write_keeping(&q, &Target::new(b"new", FileMode::Secret), None).is_err());
        }
    }

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
