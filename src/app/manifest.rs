//! `.chainfix-manifest.json`: what `repair` wrote into an output directory (each file's path
//! and sha256). The next run tells its own earlier files from the admin's by it: a file it
//! listed, still with those bytes, is chainfix's; anything else (a file it never wrote, or
//! one edited since) is not, and is never touched. Written atomically after the files it
//! lists, so it never vouches for a file that is not in place.

use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Component, Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The manifest's name in each output directory.
pub const NAME: &str = ".chainfix-manifest.json";

/// Version of the manifest layout.
const SCHEMA: u32 = 1;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    pub schema: u32,
    pub files: Vec<Entry>,
}

/// One file chainfix wrote, relative to the output directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub path: PathBuf,
    pub sha256: String,
}

impl Manifest {
    pub fn new(mut files: Vec<Entry>) -> Manifest {
        files.sort_by(|a, b| a.path.cmp(&b.path));
        files.dedup_by(|a, b| a.path == b.path);
        Manifest {
            schema: SCHEMA,
            files,
        }
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = serde_json::to_vec_pretty(self).unwrap_or_default();
        out.push(b'\n');
        out
    }
}

/// The manifest in `dir`: `Ok(None)` when there is none, an error when it cannot be read or is
/// not one chainfix wrote. Entries that would leave `dir` (absolute, `..`) are refused.
pub fn read(dir: &Path) -> Result<Option<Manifest>, String> {
    let path = dir.join(NAME);
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        // ENOTDIR: `dir` is not a directory (that failure is reported by the writes).
        Err(e) if e.raw_os_error() == Some(libc::ENOTDIR) => return Ok(None),
        Err(e) => return Err(e.to_string()),
    };
    let manifest: Manifest =
        serde_json::from_slice(&bytes).map_err(|e| format!("not a chainfix manifest ({e})"))?;
    if manifest.schema != SCHEMA {
        return Err(format!(
            "manifest schema {} is not {SCHEMA}",
            manifest.schema
        ));
    }
    if let Some(bad) = manifest.files.iter().find(|e| !stays_inside(&e.path)) {
        return Err(format!(
            "names {}, outside the output directory",
            bad.path.display()
        ));
    }
    Ok(Some(manifest))
}

/// A relative path of plain names only.
fn stays_inside(path: &Path) -> bool {
    path.components().all(|c| matches!(c, Component::Normal(_)))
        && path.components().next().is_some()
}

/// sha256 (hex) of the regular file at `path`, not following a link; `None` when there is no
/// regular file there or it cannot be read.
pub fn sha256_of(path: &Path) -> Option<String> {
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .ok()?;
    if !file.metadata().ok()?.is_file() {
        return None;
    }
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes).ok()?;
    Some(sha256_hex(&bytes))
}

/// The SHA-256 of `bytes` as the manifest writes it.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_outside_the_directory_are_refused() {
        let dir = tempfile::tempdir().expect("temp dir");
        for bad in ["/etc/passwd", "../x", "a/../../b", ""] {
            let m = Manifest::new(vec![Entry {
                path: bad.into(),
                sha256: "00".into(),
            }]);
            std::fs::write(dir.path().join(NAME), m.to_bytes()).expect("write");
            assert!(read(dir.path()).is_err(), "{bad:?} accepted");
        }
        let good = Manifest::new(vec![Entry {
            path: "iis/leaf.cer".into(),
            sha256: "00".into(),
        }]);
        std::fs::write(dir.path().join(NAME), good.to_bytes()).expect("write");
        assert_eq!(
            read(dir.path()).expect("readable").expect("present").files,
            good.files
        );
    }
}
