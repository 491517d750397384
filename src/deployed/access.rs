//! Whether the user a mail server reads its TLS files as can read them, asked of the system
//! itself: `runuser -u USER -- test -r FILE` (util-linux), so that modes, groups, ACLs and every
//! directory on the way count exactly as they will for the server.
//!
//! Exim reads `tls_certificate` and `tls_privatekey` after it has dropped privileges to its
//! `exim_user` (Debian-exim), when a client starts TLS: a key readable by root alone makes
//! every STARTTLS fail ("cert/key setup: ... Error while reading file" in its main log).
//! Postfix's smtpd and smtp load theirs as root before dropping privileges, so for Postfix
//! there is nothing to ask.

use std::ffi::OsStr;
use std::path::Path;

use super::command;

/// The answer for one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Access {
    Readable,
    NotReadable,
    /// The question could not be asked (not root, no `runuser`, no such user).
    Unknown(String),
}

/// Asks whether `user` can read `path`.
pub fn readable_by(user: &str, path: &Path) -> Access {
    let ask = |args: &[&OsStr]| {
        let mut all: Vec<&OsStr> = vec![OsStr::new("-u"), OsStr::new(user), OsStr::new("--")];
        all.extend(args);
        command::run(Path::new(RUNUSER), &all)
    };
    // runuser itself must work (root, the user exists) before its answer means anything.
    match ask(&[OsStr::new("test"), OsStr::new("-e"), OsStr::new("/")]) {
        Ok(out) if out.success => {}
        Ok(out) => return Access::Unknown(format!("runuser -u {user}: {}", out.stderr.trim())),
        Err(e) => return Access::Unknown(e.to_string()),
    }
    match ask(&[OsStr::new("test"), OsStr::new("-r"), path.as_os_str()]) {
        Ok(out) if out.success => Access::Readable,
        Ok(_) => Access::NotReadable,
        Err(e) => Access::Unknown(e.to_string()),
    }
}

/// util-linux's runuser (root only; it asks for no password).
const RUNUSER: &str = "/usr/sbin/runuser";
