//! Finds the line of a Dovecot configuration that sets a value, and rewrites that one line.
//! `doveconf` tells values, not where they are set: the line is looked for in the
//! configuration file and every file it `!include`s or `!include_try`s, in the order Dovecot
//! reads them (an include's files in sorted order, as glob(3) gives them), inside the same
//! filter blocks; the last such line wins, as in Dovecot. Every other byte is kept. 2.4's
//! two spellings of a setting (`ssl_server_cert_file = X`, and `cert_file = X` inside an
//! `ssl_server { }` group) are the same setting; the line keeps the spelling it had.
//!
//! Refused, so that an edit never lands where Dovecot does not read it: a value written with
//! `$variables`, a line whose value is not the one doveconf reported (set some other way), an
//! `!include_try` of a file that exists but cannot be read (what it sets is unknown).

use std::path::{Path, PathBuf};

use super::dovecot::{block_header, ungroup, unquote};

/// Most configuration files read (the main file and its includes). Debian's layout has 20.
pub const MAX_FILES: usize = 256;
/// Deepest `!include` nesting followed. Dovecot's example configuration includes one level
/// deep; 8 levels leaves room while stopping an include loop early.
pub const MAX_INCLUDE_DEPTH: usize = 8;
/// Largest configuration file read (Debian's biggest conf.d file is about 8 KiB).
pub const MAX_FILE_BYTES: u64 = 4 << 20;
/// Deepest block nesting followed inside the files.
pub const MAX_BLOCK_DEPTH: usize = 16;

/// Why the defining line cannot be edited.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EditError {
    #[error("{0}")]
    Read(String),
    #[error(
        "no line of {config} or its includes sets {name}{at}: doveconf reports it, so it is \
         Dovecot's built-in default or comes from elsewhere; set it in the configuration first"
    )]
    NotFound {
        config: String,
        name: String,
        at: String,
    },
    #[error(
        "{file} line {line} sets {name} through a $variable; chainfix does not rewrite what \
         it cannot expand: change it yourself"
    )]
    Variable {
        file: String,
        line: usize,
        name: String,
    },
    #[error(
        "{file} line {line} sets {name} to another value than doveconf reports: it is set \
         some other way; change it yourself"
    )]
    Mismatch {
        file: String,
        line: usize,
        name: String,
    },
    #[error(
        "{file}: an !include_try names it but it cannot be read ({why}): what it sets is \
         unknown, so no line is changed"
    )]
    UnknownInclude { file: String, why: String },
    #[error("{0}")]
    Budget(String),
}

/// The line that sets a value: its file, its 1-based number, the setting's name and the
/// value as written there (`cert_file` inside 2.4's `ssl_server { }` group).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Located {
    pub file: PathBuf,
    pub line: usize,
    pub key: String,
    pub value: String,
}

struct Walk<'a> {
    filter: &'a [String],
    name: &'a str,
    files: usize,
    found: Option<Located>,
}

/// The line of `config` (or an included file) that sets `name` inside the blocks `filter`,
/// checked against `expected` (the file doveconf reported, without 2.3's `<`).
pub fn locate(
    config: &Path,
    filter: &[String],
    name: &str,
    expected: &Path,
) -> Result<Located, EditError> {
    let mut walk = Walk {
        filter,
        name,
        files: 0,
        found: None,
    };
    let mut blocks = Vec::new();
    walk_file(&mut walk, config, &mut blocks, 0, false)?;
    let Some(found) = walk.found else {
        return Err(EditError::NotFound {
            config: config.display().to_string(),
            name: name.to_string(),
            at: if filter.is_empty() {
                String::new()
            } else {
                format!(" inside {}", filter.join(" { "))
            },
        });
    };
    let shown = found.file.display().to_string();
    if found.value.contains('$') {
        return Err(EditError::Variable {
            file: shown,
            line: found.line,
            name: name.to_string(),
        });
    }
    let written = unquote(found.value.trim_start_matches('<').trim());
    if Path::new(written) != expected {
        return Err(EditError::Mismatch {
            file: shown,
            line: found.line,
            name: name.to_string(),
        });
    }
    Ok(found)
}

fn walk_file(
    walk: &mut Walk<'_>,
    file: &Path,
    blocks: &mut Vec<String>,
    depth: usize,
    optional: bool,
) -> Result<(), EditError> {
    walk.files += 1;
    if walk.files > MAX_FILES {
        return Err(EditError::Budget(format!(
            "more than {MAX_FILES} configuration files; nothing was changed"
        )));
    }
    let text = match read(file) {
        Ok(t) => t,
        Err(e) if optional && e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) if optional => {
            return Err(EditError::UnknownInclude {
                file: file.display().to_string(),
                why: e.to_string(),
            })
        }
        Err(e) => return Err(EditError::Read(format!("{}: {e}", file.display()))),
    };
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some((directive, pattern)) = include_of(line) {
            if depth >= MAX_INCLUDE_DEPTH {
                return Err(EditError::Budget(format!(
                    "{} line {}: includes nest more than {MAX_INCLUDE_DEPTH} deep",
                    file.display(),
                    i + 1
                )));
            }
            let optional = directive == "!include_try";
            for f in expand(file, pattern, optional)? {
                walk_file(walk, &f, blocks, depth + 1, optional)?;
            }
            continue;
        }
        if line == "}" {
            blocks.pop();
            continue;
        }
        if let Some((key, value)) = line.split_once('=') {
            let key = key.trim();
            if !key.contains(char::is_whitespace) {
                let (at, name) = ungroup(blocks, key);
                if name == walk.name && at == walk.filter {
                    walk.found = Some(Located {
                        file: file.to_path_buf(),
                        line: i + 1,
                        key: key.to_string(),
                        value: value.trim().to_string(),
                    });
                }
                continue;
            }
        }
        if let Some(header) = line.strip_suffix('{') {
            if blocks.len() >= MAX_BLOCK_DEPTH {
                return Err(EditError::Budget(format!(
                    "{} line {}: blocks nest more than {MAX_BLOCK_DEPTH} deep",
                    file.display(),
                    i + 1
                )));
            }
            blocks.push(block_header(header));
        }
    }
    Ok(())
}

fn read(file: &Path) -> std::io::Result<String> {
    let meta = std::fs::metadata(file)?;
    if meta.len() > MAX_FILE_BYTES {
        return Err(std::io::Error::other(format!(
            "larger than {MAX_FILE_BYTES} bytes"
        )));
    }
    let bytes = std::fs::read(file)?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// `!include conf.d/*.conf` -> (`!include`, `conf.d/*.conf`).
fn include_of(line: &str) -> Option<(&str, &str)> {
    let (directive, rest) = line.split_once(char::is_whitespace)?;
    matches!(directive, "!include" | "!include_try").then(|| (directive, unquote(rest.trim())))
}

/// The files an include pattern names, relative to the including file's directory; `*` and
/// `?` in the last component are matched against the directory's entries, sorted.
fn expand(from: &Path, pattern: &str, optional: bool) -> Result<Vec<PathBuf>, EditError> {
    let base = from.parent().unwrap_or(Path::new("/"));
    let full = if Path::new(pattern).is_absolute() {
        PathBuf::from(pattern)
    } else {
        base.join(pattern)
    };
    let name = full
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default()
        .to_string();
    if !name.contains(['*', '?']) {
        return Ok(vec![full]);
    }
    let dir = full.parent().unwrap_or(Path::new("/"));
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if optional && e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) if optional => {
            return Err(EditError::UnknownInclude {
                file: dir.display().to_string(),
                why: e.to_string(),
            })
        }
        Err(e) => return Err(EditError::Read(format!("{}: {e}", dir.display()))),
    };
    let mut out = Vec::new();
    for entry in entries.flatten().take(MAX_FILES + 1) {
        let n = entry.file_name();
        let Some(n) = n.to_str() else { continue };
        if wildcard(&name, n) && !n.starts_with('.') {
            out.push(dir.join(n));
        }
    }
    if out.len() > MAX_FILES {
        return Err(EditError::Budget(format!(
            "{}: more than {MAX_FILES} files match {pattern}",
            dir.display()
        )));
    }
    out.sort();
    Ok(out)
}

/// glob(3)'s `*` and `?` on one name.
fn wildcard(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    // Iterative matching with one backtrack point: linear in practice, no recursion.
    let (mut i, mut j, mut star, mut mark) = (0usize, 0usize, None, 0usize);
    while j < n.len() {
        if i < p.len() && (p[i] == '?' || p[i] == n[j]) {
            i += 1;
            j += 1;
        } else if i < p.len() && p[i] == '*' {
            star = Some(i);
            mark = j;
            i += 1;
        } else if let Some(s) = star {
            i = s + 1;
            mark += 1;
            j = mark;
        } else {
            return false;
        }
    }
    p[i..].iter().all(|&c| c == '*')
}

/// `text` with its 1-based line `line` set to `name = value`, keeping the line's indentation
/// and ending and every other byte.
pub fn set_line(text: &str, line: usize, name: &str, value: &str) -> Option<String> {
    let mut out = String::with_capacity(text.len() + value.len());
    let mut found = false;
    for (i, l) in text.split_inclusive('\n').enumerate() {
        if i + 1 != line {
            out.push_str(l);
            continue;
        }
        let body = l.trim_end_matches(['\r', '\n']);
        let ending = &l[body.len()..];
        let indent = &body[..body.len() - body.trim_start().len()];
        out.push_str(&format!("{indent}{name} = {value}{ending}"));
        found = true;
    }
    found.then_some(out)
}

/// The value to write for file `path`: 2.3's `<PATH`, 2.4's `PATH`; quoted when it holds
/// white space or a `#`.
pub fn value_for(path: &Path, angle: bool) -> String {
    let p = path.display().to_string();
    let p = if p.contains(|c: char| c.is_whitespace() || c == '#' || c == '"') {
        format!("\"{}\"", p.replace('"', "\\\""))
    } else {
        p
    };
    if angle {
        format!("<{p}")
    } else {
        p
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let p = dir.join(name);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).expect("mkdir");
        }
        std::fs::write(&p, text).expect("write");
        p
    }

    #[test]
    fn the_last_line_in_include_order_inside_the_same_block_is_found() {
        let d = tempfile::tempdir().expect("tempdir");
        let main = write(
            d.path(),
            "dovecot.conf",
            "ssl_cert = </old.pem\n!include conf.d/*.conf\n!include_try missing.conf\n",
        );
        write(d.path(), "conf.d/10-ssl.conf", "ssl_cert = </a.pem\n");
        write(
            d.path(),
            "conf.d/20-names.conf",
            "local_name \"mx.test\" {\n  ssl_cert = </mx.pem\n}\n",
        );
        let at = locate(&main, &[], "ssl_cert", Path::new("/a.pem")).expect("global");
        assert_eq!((at.file.ends_with("10-ssl.conf"), at.line), (true, 1));
        let mx = locate(
            &main,
            &["local_name mx.test".into()],
            "ssl_cert",
            Path::new("/mx.pem"),
        )
        .expect("local_name");
        assert_eq!((mx.file.ends_with("20-names.conf"), mx.line), (true, 2));
    }

    #[test]
    fn dovecot_24_grouped_and_flat_spellings_are_one_setting_and_keep_their_spelling() {
        let d = tempfile::tempdir().expect("tempdir");
        let main = write(
            d.path(),
            "dovecot.conf",
            "ssl_server_cert_file = /old.pem\n\
             ssl_server {\n  cert_file = /a.pem\n  key_file = /a.key\n}\n\
             local_name mx.test {\n  ssl_server_cert_file = /mx.pem\n}\n",
        );
        let at = locate(&main, &[], "ssl_server_cert_file", Path::new("/a.pem")).expect("group");
        assert_eq!((at.line, at.key.as_str()), (3, "cert_file"));
        let mx = locate(
            &main,
            &["local_name mx.test".into()],
            "ssl_server_cert_file",
            Path::new("/mx.pem"),
        )
        .expect("flat in a filter");
        assert_eq!((mx.line, mx.key.as_str()), (7, "ssl_server_cert_file"));
        let text = std::fs::read_to_string(&main).expect("read");
        let new = set_line(&text, at.line, &at.key, "/new.pem").expect("line 3");
        assert!(new.contains("ssl_server {\n  cert_file = /new.pem\n  key_file"));
    }

    #[test]
    fn variables_other_values_and_unreadable_include_try_are_refused() {
        let d = tempfile::tempdir().expect("tempdir");
        let main = write(d.path(), "a.conf", "dir = /x\nssl_cert = <$dir/c.pem\n");
        assert!(matches!(
            locate(&main, &[], "ssl_cert", Path::new("/x/c.pem")),
            Err(EditError::Variable { line: 2, .. })
        ));
        let main = write(d.path(), "b.conf", "ssl_cert = </c.pem\n");
        assert!(matches!(
            locate(&main, &[], "ssl_cert", Path::new("/other.pem")),
            Err(EditError::Mismatch { .. })
        ));
        assert!(matches!(
            locate(&main, &[], "ssl_key", Path::new("/k.pem")),
            Err(EditError::NotFound { .. })
        ));
        // A directory where a file is expected cannot be read: what it sets is unknown.
        std::fs::create_dir(d.path().join("secret.conf")).expect("mkdir");
        let main = write(
            d.path(),
            "c.conf",
            "ssl_cert = </c.pem\n!include_try secret.conf\n",
        );
        assert!(matches!(
            locate(&main, &[], "ssl_cert", Path::new("/c.pem")),
            Err(EditError::UnknownInclude { .. })
        ));
    }

    #[test]
    fn an_include_loop_stops_at_the_depth_budget() {
        let d = tempfile::tempdir().expect("tempdir");
        let main = write(d.path(), "loop.conf", "!include loop.conf\n");
        assert!(matches!(
            locate(&main, &[], "ssl_cert", Path::new("/c.pem")),
            Err(EditError::Budget(_))
        ));
    }

    #[test]
    fn one_line_is_rewritten_and_every_other_byte_kept() {
        let text = "# ssl\r\nssl = yes\r\n  ssl_cert = </old.pem\r\nssl_key = </k.pem";
        let new = set_line(text, 3, "ssl_cert", &value_for(Path::new("/n w.pem"), true));
        assert_eq!(
            new.as_deref(),
            Some("# ssl\r\nssl = yes\r\n  ssl_cert = <\"/n w.pem\"\r\nssl_key = </k.pem")
        );
        assert_eq!(set_line(text, 9, "x", "y"), None);
        assert_eq!(value_for(Path::new("/a.pem"), false), "/a.pem");
        assert!(wildcard("*.conf", "10-ssl.conf") && !wildcard("*.conf", "10-ssl.conf.bak"));
    }
}
