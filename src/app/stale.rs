//! Files an earlier `repair` wrote into an output directory that this run no longer writes (a
//! narrower `--emit`, a renewed chain with other intermediates): found through the manifest,
//! always reported, removed only with `--prune` (moved aside as `NAME.bak.STAMP` with
//! `--prune --backup`). Never touched: files chainfix did not write, files edited since it
//! wrote them (their sha256 differs from the manifest's), and a key that belongs to the
//! current leaf.

use std::path::{Path, PathBuf};

use super::manifest::{self, Entry, Manifest};
use crate::load::{self, PasswordSource};
use crate::report::{FileError, StaleFile};
use crate::write;

/// Why a stale file stays where it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keep {
    /// Reported only: `--prune` was not given.
    NoPrune,
    /// Edited since chainfix wrote it: the admin's now, and no longer in the manifest.
    Modified,
    /// Holds the current leaf's private key.
    CurrentKey,
    /// Holds a key chainfix cannot read (a PFX without its password): it may be the current one.
    UncheckableKey,
}

impl Keep {
    fn code(self) -> &'static str {
        match self {
            Keep::NoPrune => "no-prune",
            Keep::Modified => "modified",
            Keep::CurrentKey => "current-key",
            Keep::UncheckableKey => "unreadable-key",
        }
    }
}

/// One stale file and what becomes of it.
#[derive(Debug, Clone)]
pub struct Item {
    pub entry: Entry,
    /// `None`: removed (or moved aside).
    pub keep: Option<Keep>,
}

/// The stale files of `previous` (entries this run does not write) that still exist, each with
/// its fate. `leaf_key` is the current leaf's public key id.
pub fn plan(
    dir: &Path,
    previous: &Manifest,
    writing: &[PathBuf],
    leaf_key: &[u8],
    prune: bool,
    pfx_password: Option<&str>,
) -> Vec<Item> {
    previous
        .files
        .iter()
        .filter(|e| !writing.contains(&e.path))
        .filter_map(|e| {
            let path = dir.join(&e.path);
            let now = manifest::sha256_of(&path)?;
            let keep = if now != e.sha256 {
                Some(Keep::Modified)
            } else {
                match key_check(&path, leaf_key, pfx_password) {
                    KeyCheck::Current => Some(Keep::CurrentKey),
                    KeyCheck::Unreadable => Some(Keep::UncheckableKey),
                    KeyCheck::NotCurrent if prune => None,
                    KeyCheck::NotCurrent => Some(Keep::NoPrune),
                }
            };
            Some(Item {
                entry: e.clone(),
                keep,
            })
        })
        .collect()
}

enum KeyCheck {
    /// Holds the current leaf's key.
    Current,
    /// Holds key material chainfix cannot read.
    Unreadable,
    /// Holds no key, or only other keys.
    NotCurrent,
}

/// Whether the file at `path` holds the current leaf's key.
fn key_check(path: &Path, leaf_key: &[u8], pfx_password: Option<&str>) -> KeyCheck {
    let pfx = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("pfx") || e.eq_ignore_ascii_case("p12"));
    let pem_key = std::fs::read(path)
        .map(|b| b.windows(11).any(|w| w == b"PRIVATE KEY"))
        .unwrap_or(true);
    if !pfx && !pem_key {
        return KeyCheck::NotCurrent;
    }
    let password = FixedPassword(pfx_password.map(str::to_string));
    let loaded = load::load_paths(&[path.to_path_buf()], &password);
    if loaded
        .keys
        .iter()
        .any(|k| k.key.public_id.as_deref() == Some(leaf_key))
    {
        KeyCheck::Current
    } else if loaded.keys.is_empty() || loaded.keys.iter().any(|k| k.key.public_id.is_none()) {
        KeyCheck::Unreadable
    } else {
        KeyCheck::NotCurrent
    }
}

/// The `--pfx-password` of the run, never a prompt.
struct FixedPassword(Option<String>);

impl PasswordSource for FixedPassword {
    fn configured(&self) -> Option<String> {
        self.0.clone()
    }
    fn prompt(&self, _: &Path) -> Option<String> {
        None
    }
}

/// Carries out `items` (unless `check`): removes the files to go, or with `backup_stamp` moves
/// them aside. Returns the report entries and the failures.
pub fn execute(
    dir: &Path,
    items: &[Item],
    check: bool,
    backup_stamp: Option<&str>,
) -> (Vec<StaleFile>, Vec<FileError>) {
    let mut report = Vec::new();
    let mut errors = Vec::new();
    for item in items {
        let path = dir.join(&item.entry.path);
        let shown = path.display().to_string();
        let mut entry = StaleFile {
            path: shown.clone(),
            action: "kept",
            reason: item.keep.map(Keep::code),
            backup: None,
        };
        if item.keep.is_none() {
            match remove(&path, check, backup_stamp) {
                Ok(backup) => {
                    entry.action = if backup_stamp.is_some() {
                        "moved"
                    } else {
                        "removed"
                    };
                    entry.backup = backup.map(|b| b.display().to_string());
                }
                Err(e) => {
                    let message = format!("cannot remove this stale file: {e}");
                    super::say(&format!("{shown}: {message}"));
                    entry.reason = Some("cannot-remove");
                    errors.push(FileError {
                        path: shown,
                        message,
                        fatal: true,
                    });
                }
            }
        }
        report.push(entry);
    }
    (report, errors)
}

/// Removes `path`, first keeping it as `NAME.bak.STAMP` when `backup_stamp` is given (a hard
/// link, so the content is never absent from both names). With `check`, only names the backup.
fn remove(
    path: &Path,
    check: bool,
    backup_stamp: Option<&str>,
) -> std::io::Result<Option<PathBuf>> {
    if check {
        return Ok(backup_stamp.map(|s| {
            let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
            path.with_file_name(format!("{}.bak.{s}", name.unwrap_or_default()))
        }));
    }
    let backup = match backup_stamp {
        Some(stamp) => Some(write::keep_backup(path, stamp)?),
        None => None,
    };
    std::fs::remove_file(path)?;
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(backup)
}

/// The entries still chainfix's after this run: stale files kept unedited (a later run may
/// prune them). Edited ones are the admin's now and leave the manifest.
pub fn still_ours(items: &[Item]) -> Vec<Entry> {
    items
        .iter()
        .filter(|i| i.keep.is_some() && i.keep != Some(Keep::Modified))
        .map(|i| i.entry.clone())
        .collect()
}

/// Paths that will be gone after this run (so that no other check reports them as left over).
pub fn going(items: &[Item]) -> impl Iterator<Item = &Path> {
    items
        .iter()
        .filter(|i| i.keep.is_none())
        .map(|i| i.entry.path.as_path())
}
