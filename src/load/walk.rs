//! Directory expansion: recursive, sorted by path, following symbolic links safely (walkdir
//! detects link cycles; a directory reached twice is walked once), yielding only regular files
//! (a FIFO would block a read forever). The walk stats each directory, not each file: a file
//! reached twice (two links, a hard link) is recognised by its [`FileId`] once it is open, see
//! `load::load_paths_with`.

use std::collections::HashSet;
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

/// Most directory entries one run walks (a budget against pathological trees).
pub const MAX_WALK_ENTRIES: usize = 2_000_000;

/// What the walks of one run share: the directories already walked (a directory reached again,
/// through a link or a second named path, is not walked again, so links between levels cannot
/// make the walk exponential), the directories not to enter, and the entry budget.
#[derive(Default)]
pub struct Walks {
    walked: HashSet<FileId>,
    skip: HashSet<FileId>,
    entries: usize,
}

impl Walks {
    /// Walks that do not enter `skip_dirs` (those that exist) below a named directory.
    pub fn skipping(skip_dirs: &[PathBuf]) -> Walks {
        let skip = skip_dirs
            .iter()
            .filter_map(|d| std::fs::metadata(d).ok().map(|m| file_id(d, Some(&m))))
            .collect();
        Walks {
            skip,
            ..Walks::default()
        }
    }
}

/// A problem met while walking: the path, what happened, and whether files may have been
/// missed because of it (an unreadable directory, a budget reached) rather than a note (a link
/// loop, a dangling link).
pub type WalkProblem = (PathBuf, String, bool);

/// Expands one command-line path into regular files, handing each to `on_file` as it is found
/// (in sorted order), so that reading can start before the walk ends. Problems come back as
/// [`WalkProblem`]s; the walk carries on past them, within the budgets.
pub fn expand(
    path: &Path,
    walks: &mut Walks,
    on_file: &mut dyn FnMut(PathBuf),
) -> Vec<WalkProblem> {
    let mut problems: Vec<WalkProblem> = Vec::new();
    let Walks {
        walked,
        skip,
        entries,
    } = walks;
    let walker = WalkDir::new(path)
        .follow_links(true)
        .max_depth(MAX_DIR_DEPTH + 1)
        .sort_by_file_name()
        .into_iter()
        .filter_entry(|e| {
            if !e.file_type().is_dir() {
                return true;
            }
            // One stat per directory: the identity that tells a directory reached again.
            match e.metadata() {
                Ok(m) => {
                    let id = file_id(e.path(), Some(&m));
                    (e.depth() == 0 || !skip.contains(&id)) && walked.insert(id)
                }
                Err(_) => true,
            }
        });
    for entry in walker {
        *entries += 1;
        if *entries > MAX_WALK_ENTRIES {
            problems.push((
                path.to_path_buf(),
                format!("more than {MAX_WALK_ENTRIES} directory entries; the rest was not read"),
                true,
            ));
            break;
        }
        match entry {
            Ok(e) if e.depth() > MAX_DIR_DEPTH => {
                let parent = e.path().parent().unwrap_or(path).to_path_buf();
                if problems.last().is_none_or(|(p, ..)| *p != parent) {
                    problems.push((
                        parent,
                        format!("nested more than {MAX_DIR_DEPTH} directories deep; not read"),
                        true,
                    ));
                }
            }
            Ok(e) if e.file_type().is_file() => on_file(e.into_path()),
            Ok(_) => {}
            Err(err) => {
                let at = err.path().unwrap_or(path).to_path_buf();
                let problem = if err.loop_ancestor().is_some() {
                    (at, "symbolic link loop, not followed".to_string(), false)
                } else {
                    // A dangling link is a note; a directory that cannot be read hides files.
                    let fatal = err
                        .io_error()
                        .is_none_or(|io| io.kind() != std::io::ErrorKind::NotFound);
                    let message = err
                        .io_error()
                        .map(|io| io.to_string())
                        .unwrap_or_else(|| err.to_string());
                    (at, message, fatal)
                };
                problems.push(problem);
            }
        }
    }
    problems
}
