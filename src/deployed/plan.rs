//! What repairing one slot in place changes: the files chainfix writes into its own directory
//! and the settings to point at them. Pure: no file or tool is touched here ([`super::apply`]
//! does that).
//!
//! Rules:
//! * A file a renewal tool owns is never rewritten; when the tool keeps the full chain beside
//!   the leaf-only file (certbot's `fullchain.pem`), the setting is pointed at it.
//! * Otherwise the chain (leaf and intermediates, no root) goes to `OUT/SLOT/fullchain.pem`
//!   (0644); only when the key sits in the leaf's own file and the server reads key and chain
//!   from one list (`*_tls_chain_files`, an SNI table) is a key copy written, as
//!   `OUT/SLOT/key-and-chain.pem` (0600), key first as postconf(5) requires.
//! * A key that lived in the old certificate file (Postfix's `*_tls_key_file` defaults to the
//!   certificate file; Exim's unset `tls_privatekey` means the same) is named explicitly, so the
//!   server keeps reading it from where it is.

use std::path::{Path, PathBuf};

use super::{Place, Setting, Slot};

/// What a repair knows of a slot (gathered by the app layer from the slot's analysis).
pub struct Facts<'a> {
    pub leaf_file: &'a Path,
    /// The file the matching key was read from.
    pub key_file: &'a Path,
    /// The slot's files holding a private key.
    pub key_files: &'a [PathBuf],
    /// A renewal tool's full-chain file holding exactly the repaired chain.
    pub owner_full_chain: Option<&'a Path>,
}

/// A file to write into chainfix's directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NewFile {
    /// Leaf and intermediates, 0644.
    Chain(PathBuf),
    /// The key, then leaf and intermediates, 0600.
    KeyAndChain(PathBuf),
}

impl NewFile {
    pub fn path(&self) -> &Path {
        match self {
            NewFile::Chain(p) | NewFile::KeyAndChain(p) => p,
        }
    }
}

/// One setting's new value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub setting: Setting,
    /// The files it named (for the report).
    pub old: Vec<PathBuf>,
    pub new: Vec<PathBuf>,
}

/// A slot's repair.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub write: Option<NewFile>,
    pub changes: Vec<Change>,
}

/// The repair of `slot`, writing into `dir` (chainfix's directory for this slot).
pub fn plan(slot: &Slot, facts: &Facts<'_>, dir: &Path) -> Plan {
    let Some(first) = slot.settings.first() else {
        return Plan {
            write: None,
            changes: Vec::new(),
        };
    };
    let list_form =
        first.name.ends_with("_tls_chain_files") || matches!(first.place, Place::SniMap { .. });
    let key_with_leaf = facts.key_file == facts.leaf_file;
    let (target, write) = match facts.owner_full_chain {
        // A full chain alone serves a list form only when the key is in a file of its own.
        Some(full) if !(list_form && key_with_leaf) => (full.to_path_buf(), None),
        _ if list_form && key_with_leaf => {
            let p = dir.join("key-and-chain.pem");
            (p.clone(), Some(NewFile::KeyAndChain(p)))
        }
        _ => {
            let p = dir.join("fullchain.pem");
            (p.clone(), Some(NewFile::Chain(p)))
        }
    };
    let mut changes = Vec::new();
    if list_form {
        // The leaf's file becomes the target; other key files stay (each key directly followed
        // by its chain); files that held only certificates go.
        let new: Vec<PathBuf> = slot
            .files
            .iter()
            .filter_map(|f| {
                if f == facts.leaf_file {
                    Some(target.clone())
                } else if facts.key_files.contains(f) {
                    Some(f.clone())
                } else {
                    None
                }
            })
            .collect();
        changes.push(Change {
            setting: first.clone(),
            old: slot.files.clone(),
            new,
        });
    } else {
        changes.push(Change {
            setting: first.clone(),
            old: slot.files.clone(),
            new: vec![target],
        });
        if slot.key.is_none() && key_with_leaf {
            changes.push(Change {
                setting: Setting {
                    place: first.place.clone(),
                    name: key_param(&first.name),
                },
                old: Vec::new(),
                new: vec![facts.key_file.to_path_buf()],
            });
        }
    }
    Plan { write, changes }
}

/// The key parameter paired with a certificate parameter: `smtpd_tls_cert_file` ->
/// `smtpd_tls_key_file`, `eccert` -> `eckey`, `dcert` -> `dkey`, Exim's `tls_certificate` ->
/// `tls_privatekey`.
pub fn key_param(cert_param: &str) -> String {
    match cert_param {
        "tls_certificate" => return "tls_privatekey".into(),
        // Dovecot 2.3 and 2.4 (the files are always named apart there, so this is for
        // completeness).
        "ssl_cert" | "ssl_alt_cert" | "ssl_server_cert_file" | "ssl_server_alt_cert_file" => {
            return cert_param.replace("cert", "key")
        }
        _ => {}
    }
    cert_param
        .replace("_tls_cert_file", "_tls_key_file")
        .replace("_tls_eccert_file", "_tls_eckey_file")
        .replace("_tls_dcert_file", "_tls_dkey_file")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chain::Role;

    fn slot(name: &str, files: &[&str], key: Option<&str>) -> Slot {
        Slot {
            role: Role::Server,
            services: vec!["smtp/inet".into()],
            sni: None,
            algorithm: None,
            files: files.iter().map(PathBuf::from).collect(),
            key: key.map(PathBuf::from),
            settings: vec![Setting {
                place: Place::MainCf,
                name: name.into(),
            }],
        }
    }

    #[test]
    fn certbot_cert_pem_is_pointed_at_fullchain_and_nothing_is_written() {
        let s = slot(
            "smtpd_tls_cert_file",
            &["/le/live/mx/cert.pem"],
            Some("/le/live/mx/privkey.pem"),
        );
        let full = PathBuf::from("/le/live/mx/fullchain.pem");
        let p = plan(
            &s,
            &Facts {
                leaf_file: Path::new("/le/live/mx/cert.pem"),
                key_file: Path::new("/le/live/mx/privkey.pem"),
                key_files: &[],
                owner_full_chain: Some(&full),
            },
            Path::new("/out/server"),
        );
        assert_eq!(p.write, None);
        assert_eq!(p.changes.len(), 1);
        assert_eq!(p.changes[0].new, vec![full]);
    }

    #[test]
    fn chain_files_keep_key_files_and_drop_certificate_only_files() {
        let s = slot(
            "smtpd_tls_chain_files",
            &["/t/key.pem", "/t/cert.pem", "/t/old-chain.pem"],
            None,
        );
        let keys = [PathBuf::from("/t/key.pem")];
        let p = plan(
            &s,
            &Facts {
                leaf_file: Path::new("/t/cert.pem"),
                key_file: Path::new("/t/key.pem"),
                key_files: &keys,
                owner_full_chain: None,
            },
            Path::new("/out/s"),
        );
        assert_eq!(p.write, Some(NewFile::Chain("/out/s/fullchain.pem".into())));
        assert_eq!(
            p.changes[0].new,
            vec![PathBuf::from("/t/key.pem"), "/out/s/fullchain.pem".into()]
        );
    }

    #[test]
    fn a_key_in_the_legacy_certificate_file_is_named_explicitly() {
        let s = slot("smtpd_tls_cert_file", &["/t/both.pem"], None);
        let p = plan(
            &s,
            &Facts {
                leaf_file: Path::new("/t/both.pem"),
                key_file: Path::new("/t/both.pem"),
                key_files: &[PathBuf::from("/t/both.pem")],
                owner_full_chain: None,
            },
            Path::new("/out/s"),
        );
        assert_eq!(p.changes.len(), 2);
        assert_eq!(p.changes[1].setting.name, "smtpd_tls_key_file");
        assert_eq!(p.changes[1].new, vec![PathBuf::from("/t/both.pem")]);
    }

    #[test]
    fn a_key_in_the_leaf_file_of_a_list_is_copied_with_the_chain() {
        let s = slot("smtpd_tls_chain_files", &["/t/both.pem"], None);
        let p = plan(
            &s,
            &Facts {
                leaf_file: Path::new("/t/both.pem"),
                key_file: Path::new("/t/both.pem"),
                key_files: &[PathBuf::from("/t/both.pem")],
                owner_full_chain: None,
            },
            Path::new("/out/s"),
        );
        assert_eq!(
            p.write,
            Some(NewFile::KeyAndChain("/out/s/key-and-chain.pem".into()))
        );
        assert_eq!(
            p.changes[0].new,
            vec![PathBuf::from("/out/s/key-and-chain.pem")]
        );
    }
}
