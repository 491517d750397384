//! Directory expansion: recursive, sorted by path, following symbolic links safely (walkdir
//! detects link cycles), yielding only regular files (a FIFO would block a read forever). The
//! walk stats nothing itself: a file reached twice (two links, a hard link) is recognised by
//! its [`FileId`] once it is open, see `load::load_paths_with`.

use std::path::{Path, PathBuf};

use walkdir::WalkDir;

/// What makes two paths the same file: device and inode on Unix (one `stat`, where
/// resolving the real path costs a `readlink` per component), the real path elsewhere.
#[cfg(unix)]
pub type FileId = (u64, u64);
#[cfg(not(unix))]
pub type FileId = PathBuf;

/// The identity of the file at `path`; `meta` if the caller already has its (followed)
/// metadata. A file that cannot be looked up is identified by its path as given.
#[cfg(unix)]
pub fn file_id(path: &Path, meta: Option<&std::fs::Metadata>) -> FileId {
    use std::hash::{Hash, Hasher};
    use std::os::unix::fs::MetadataExt;
    match meta {
        Some(m) => (m.dev(), m.ino()),
        None => match std::fs::metadata(path) {
            Ok(m) => file_id(path, Some(&m)),
            Err(_) => {
                // No such file to stat: the hash of the path, under a device number no file has.
                let mut h = std::collections::hash_map::DefaultHasher::new();
                path.hash(&mut h);
                (u64::MAX, h.finish())
            }
        },
    }
}

#[cfg(not(unix))]
pub fn file_id(path: &Path, _meta: Option<&std::fs::Metadata>) -> FileId {
    std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf())
}

/// Deepest directory nesting followed (a budget against pathological trees).
pub const MAX_DIR_DEPTH: usize = 64;

/// Expands one command-line path into regular files, handing each to `on_file` as it is found
/// (in sorted order), so that reading can start before the walk ends. Problems (unreadable
/// directories, link loops) come back as (path, message) pairs; the walk carries on past them.
pub fn expand(path: &Path, on_file: &mut dyn FnMut(PathBuf)) -> Vec<(PathBuf, String)> {
    let mut problems = Vec::new();
    let walker = WalkDir::new(path)
        .follow_links(true)
        .max_depth(MAX_DIR_DEPTH)
        .sort_by_file_name();
    for entry in walker {
        match entry {
            Ok(e) if e.file_type().is_file() => on_file(e.into_path()),
            Ok(_) => {}
            Err(err) => {
                let at = err.path().unwrap_or(path).to_path_buf();
                let msg = if err.loop_ancestor().is_some() {
                    "symbolic link loop, not followed".to_string()
                } else {
                    err.io_error()
                        .map(|io| io.to_string())
                        .unwrap_or_else(|| err.to_string())
                };
                problems.push((at, msg));
            }
        }
    }
    problems
}
