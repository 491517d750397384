//! Puts a repair plan in place on a Postfix installation, through Postfix's own tools:
//! `postconf -e` for main.cf, `postconf -P -e` for master.cf overrides, and for an SNI table
//! its source line rewritten and `postmap -F` (postconf(5), `tls_server_sni_maps`: "The
//! indexed SNI table must be created with postmap -F"). Also the snapshot that undoes it all.

use std::ffi::OsStr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use super::command;
use super::plan::Change;
use super::{DiscoverError, Place};
use crate::write::{self, FileMode};

/// Postfix's programs, found beside `postconf`.
pub struct PostfixTools {
    pub postconf: PathBuf,
    pub postmap: PathBuf,
    pub postfix: PathBuf,
}

impl PostfixTools {
    pub fn beside(postconf: &Path) -> PostfixTools {
        let sibling = |name: &str| match postconf.parent() {
            Some(dir) if postconf.is_absolute() => dir.join(name),
            _ => PathBuf::from(name),
        };
        PostfixTools {
            postconf: postconf.to_path_buf(),
            postmap: sibling("postmap"),
            postfix: sibling("postfix"),
        }
    }
}

fn run_ok(program: &Path, args: &[&OsStr]) -> Result<String, DiscoverError> {
    command::run_ok(program, None, args)
}

/// The files a set of changes edits under config directory `dir` (main.cf, master.cf, SNI
/// table sources and their indexed forms).
pub fn edited_files(dir: &Path, changes: &[Change]) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = Vec::new();
    let mut add = |p: PathBuf| {
        if !out.contains(&p) {
            out.push(p);
        }
    };
    for c in changes {
        match &c.setting.place {
            Place::MainCf => add(dir.join("main.cf")),
            Place::MasterCf { .. } => add(dir.join("master.cf")),
            Place::SniMap { path, .. } => {
                add(path.clone());
                // The indexed forms postmap writes (hash/btree: .db, lmdb: .lmdb, cdb: .cdb).
                for ext in ["db", "lmdb", "cdb"] {
                    let mut p = path.clone().into_os_string();
                    p.push(format!(".{ext}"));
                    add(PathBuf::from(p));
                }
            }
            Place::EximMain { .. } | Place::EximTransport { .. } | Place::Dovecot { .. } => {}
        }
    }
    out
}

/// Applies `changes` to the Postfix configuration in `dir`.
pub fn apply_postfix(
    tools: &PostfixTools,
    dir: &Path,
    changes: &[Change],
) -> Result<(), DiscoverError> {
    let c = [OsStr::new("-c"), dir.as_os_str()];
    for change in changes {
        match &change.setting.place {
            Place::MainCf => {
                let value = join(&change.new, ", ");
                let assignment = format!("{} = {value}", change.setting.name);
                run_ok(
                    &tools.postconf,
                    &[c[0], c[1], OsStr::new("-e"), OsStr::new(&assignment)],
                )?;
            }
            Place::MasterCf { service } => {
                // An -o value is one word in master.cf: the list is joined by commas alone.
                let value = join(&change.new, ",");
                let assignment = format!("{service}/{}={value}", change.setting.name);
                run_ok(
                    &tools.postconf,
                    &[
                        c[0],
                        c[1],
                        OsStr::new("-P"),
                        OsStr::new("-e"),
                        OsStr::new(&assignment),
                    ],
                )?;
            }
            Place::SniMap { path, line, name } => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| DiscoverError::Config(format!("{}: {e}", path.display())))?;
                let new = rewrite_table_line(&text, *line, name, &join(&change.new, ", "))
                    .ok_or_else(|| {
                        DiscoverError::Config(format!(
                            "{} line {line}: no longer the entry for {name}",
                            path.display()
                        ))
                    })?;
                let mode = std::fs::metadata(path)
                    .map(|m| m.permissions().mode() & 0o7777)
                    .unwrap_or(0o644);
                write::write_atomic(path, new.as_bytes(), FileMode::Exact(mode)).map_err(|e| {
                    DiscoverError::Config(format!("writing {}: {e}", path.display()))
                })?;
                let table = sni_table(dir, tools, path)?;
                run_ok(
                    &tools.postmap,
                    &[c[0], c[1], OsStr::new("-F"), OsStr::new(&table)],
                )?;
            }
            Place::EximMain { .. } | Place::EximTransport { .. } | Place::Dovecot { .. } => {
                return Err(DiscoverError::Config(
                    "an Exim setting cannot be changed with postconf".into(),
                ))
            }
        }
    }
    Ok(())
}

/// `type:path` of the SNI table whose source is `source`, from `tls_server_sni_maps`.
fn sni_table(dir: &Path, tools: &PostfixTools, source: &Path) -> Result<String, DiscoverError> {
    let out = run_ok(
        &tools.postconf,
        &[
            OsStr::new("-c"),
            dir.as_os_str(),
            OsStr::new("-xh"),
            OsStr::new("tls_server_sni_maps"),
        ],
    )?;
    let wanted = source.to_string_lossy();
    super::split_list(&out)
        .into_iter()
        .find(|t| t.split_once(':').is_some_and(|(_, p)| p == wanted))
        .ok_or_else(|| {
            DiscoverError::Config(format!(
                "tls_server_sni_maps no longer names {}",
                source.display()
            ))
        })
}

/// `text` with the entry at `line` (1-based, and its continuation lines) for `name` replaced by
/// `name value`; `None` when that line is not `name`'s entry.
pub fn rewrite_table_line(text: &str, line: usize, name: &str, value: &str) -> Option<String> {
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let at = line.checked_sub(1)?;
    let first = lines.get(at)?;
    if first.split_whitespace().next() != Some(name) || first.starts_with(char::is_whitespace) {
        return None;
    }
    let mut end = at + 1;
    while end < lines.len() {
        let l = lines[end];
        let continues = l.starts_with(char::is_whitespace)
            && !l.trim().is_empty()
            && !l.trim_start().starts_with('#');
        if !continues {
            break;
        }
        end += 1;
    }
    let mut out: String = lines[..at].concat();
    out.push_str(&format!("{name} {value}\n"));
    out.push_str(&lines[end..].concat());
    Some(out)
}

fn join(paths: &[PathBuf], sep: &str) -> String {
    let v: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
    v.join(sep)
}

/// A file's bytes and permission bits, or `None` when it did not exist.
type Saved = Option<(Vec<u8>, u32)>;

/// The previous state of files a repair changes, to put back on failure.
pub struct Snapshot {
    files: Vec<(PathBuf, Saved)>,
}

impl Snapshot {
    /// Reads each of `paths` (missing ones are recorded as missing).
    pub fn take(paths: &[PathBuf]) -> std::io::Result<Snapshot> {
        let mut files = Vec::new();
        for p in paths {
            let state = match std::fs::read(p) {
                Ok(bytes) => {
                    let mode = std::fs::metadata(p)?.permissions().mode() & 0o7777;
                    Some((bytes, mode))
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
                Err(e) => return Err(e),
            };
            files.push((p.clone(), state));
        }
        Ok(Snapshot { files })
    }

    /// Puts every file back as it was (removing those that did not exist); the first error
    /// is returned after every file has been tried.
    pub fn restore(&self) -> std::io::Result<()> {
        let mut first_err = None;
        for (path, state) in &self.files {
            let r = match state {
                Some((bytes, mode)) => {
                    write::write_atomic(path, bytes, FileMode::Exact(*mode)).map(|_| ())
                }
                None => match std::fs::remove_file(path) {
                    Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
                    _ => Ok(()),
                },
            };
            if let Err(e) = r {
                first_err.get_or_insert(e);
            }
        }
        first_err.map_or(Ok(()), Err)
    }
}

/// `postfix -c DIR check`: Postfix's own check of the configuration (it prints its messages
/// to a terminal or the mail log only, so the exit status is what counts here).
pub fn postfix_check(tools: &PostfixTools, dir: &Path) -> Result<(), DiscoverError> {
    run_ok(
        &tools.postfix,
        &[OsStr::new("-c"), dir.as_os_str(), OsStr::new("check")],
    )
    .map(|_| ())
}

/// `postfix -c DIR reload`: the master re-reads the configuration; new processes load the new
/// files, running ones finish first (postfix(1)).
pub fn postfix_reload(tools: &PostfixTools, dir: &Path) -> Result<(), DiscoverError> {
    run_ok(
        &tools.postfix,
        &[OsStr::new("-c"), dir.as_os_str(), OsStr::new("reload")],
    )
    .map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::rewrite_table_line;

    #[test]
    fn a_table_entry_with_continuation_lines_is_replaced_whole() {
        let text = "# x\nmx.test /a.pem,\n    /b.pem\nother /c.pem\n";
        assert_eq!(
            rewrite_table_line(text, 2, "mx.test", "/new.pem").as_deref(),
            Some("# x\nmx.test /new.pem\nother /c.pem\n")
        );
        assert_eq!(rewrite_table_line(text, 4, "mx.test", "/n.pem"), None);
    }
}
