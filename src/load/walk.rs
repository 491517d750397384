//! Directory expansion: recursive, sorted by path, following symbolic links safely (walkdir
//! detects link cycles), visiting each real file once and only regular files (a FIFO would
//! block a read forever).

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use walkdir::WalkDir;

/// Deepest directory nesting followed (a budget against pathological trees).
pub const MAX_DIR_DEPTH: usize = 64;

/// Expands one command-line path into regular files. Problems (unreadable directories, link
/// loops) come back as (path, message) pairs; the walk carries on past them.
pub fn expand(path: &Path, seen: &mut HashSet<PathBuf>) -> (Vec<PathBuf>, Vec<(PathBuf, String)>) {
    let mut files = Vec::new();
    let mut problems = Vec::new();
    let walker = WalkDir::new(path)
        .follow_links(true)
        .max_depth(MAX_DIR_DEPTH)
        .sort_by_file_name();
    for entry in walker {
        match entry {
            Ok(e) if e.file_type().is_file() => {
                let real =
                    std::fs::canonicalize(e.path()).unwrap_or_else(|_| e.path().to_path_buf());
                if seen.insert(real) {
                    files.push(e.into_path());
                }
            }
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
    (files, problems)
}
