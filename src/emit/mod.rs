//! Emit stage: turns a repaired chain into files, one module per target behind [`Emitter`].
//! Emitters only compute bytes; `write.rs` puts them on disk (or, with `--check`, compares).
//!
//! Every target names files by where they will live on the mail host (`--install-dir`), not by
//! the directory chainfix writes into, so the snippets can be copied as they are.

pub mod bundle;
pub mod dane;
pub mod exim;
pub mod iis;
pub mod postfix;
pub mod readme;

use std::borrow::Cow;
use std::path::{Path, PathBuf};

use crate::cert::{format_date, Certificate};
use crate::diagnose::Finding;
use crate::load::PrivateKey;
use crate::write::FileMode;

/// What every emitter works from: the chain in issuing order, and the key if known.
pub struct Material<'a> {
    pub leaf: &'a Certificate,
    /// Intermediates in issuing order (leaf's issuer first), root excluded.
    pub intermediates: Vec<&'a Certificate>,
    pub root: Option<&'a Certificate>,
    /// The root is in the embedded public trust store (receivers already trust it).
    pub root_is_public: bool,
    pub key: Option<&'a PrivateKey>,
    /// `--include-root`: append the root to full chains.
    pub include_root: bool,
    /// What was wrong with the presented chain, for README.txt.
    pub problems: &'a [Finding],
}

impl Material<'_> {
    /// Leaf, intermediates, and the root when asked for: what a server should send.
    pub fn full_chain(&self) -> Vec<&Certificate> {
        let mut out = vec![self.leaf];
        out.extend(&self.intermediates);
        if self.include_root {
            out.extend(self.root);
        }
        out
    }

    /// One line describing the chain, leaf first, each name rendered for its target by
    /// `render` (one of the `crate::render` functions).
    pub fn chain_summary(&self, render: fn(&str) -> Cow<'_, str>) -> String {
        let mut names: Vec<String> = self
            .full_chain()
            .iter()
            .map(|c| render(&c.subject).into_owned())
            .collect();
        if let (Some(root), false) = (self.root, self.include_root) {
            names.push(format!("{} (root, not sent)", render(&root.subject)));
        }
        names.join(" <- ")
    }

    pub fn leaf_expiry(&self) -> String {
        format_date(self.leaf.not_after)
    }
}

/// The output targets of `--emit`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Targets {
    pub pem: bool,
    pub postfix: bool,
    pub exim: bool,
    pub iis: bool,
    /// `tlsa.zone`: the DANE TLSA records to publish.
    pub dane: bool,
}

impl Targets {
    pub const ALL: Targets = Targets {
        pem: true,
        postfix: true,
        exim: true,
        iis: true,
        dane: true,
    };

    /// The targets named (any subset, any order; `None` is "all"). Postfix and Exim read the
    /// PEM files, so asking for either implies `pem`.
    pub fn of(outputs: &[Option<Output>]) -> Targets {
        let mut t = Targets {
            pem: false,
            postfix: false,
            exim: false,
            iis: false,
            dane: false,
        };
        for o in outputs {
            match o {
                Some(Output::Pem) => t.pem = true,
                Some(Output::Postfix) => t.postfix = true,
                Some(Output::Exim) => t.exim = true,
                Some(Output::Iis) => t.iis = true,
                Some(Output::Dane) => t.dane = true,
                None => t = Targets::ALL,
            }
        }
        t.pem |= t.postfix || t.exim;
        t
    }
}

/// One `--emit` target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    Pem,
    Postfix,
    Exim,
    Iis,
    Dane,
}

/// Settings every target may need.
#[derive(Debug, Clone)]
pub struct EmitOptions {
    /// Where the output directory's files will live on the mail host.
    pub install_dir: PathBuf,
    pub targets: Targets,
    /// Postfix < 3.4: `smtpd_tls_cert_file`/`smtpd_tls_key_file` instead of `*_chain_files`.
    pub postfix_legacy: bool,
    /// Postfix >= 3.4: one file holding the key and the chain.
    pub postfix_single_file: bool,
    /// Password for the IIS `.pfx`; no `.pfx` without one.
    pub pfx_password: Option<String>,
    /// 3DES/SHA-1 `.pfx` for Windows Server 2016 and older.
    pub pfx_legacy: bool,
    /// Import a private root into the Trusted Root store (a receiver-side workaround).
    pub trust_private_root: bool,
    /// Group that must read the Exim key (Debian: `Debian-exim`).
    pub exim_group: String,
    /// `--key-path`: the key stays at this path on the mail host; no key file is written.
    pub key_path: Option<PathBuf>,
    /// The MX host of `tlsa.zone`'s owner name: the TLSA records' owner, else `--host`.
    pub tlsa_owner: Option<String>,
    /// The port of that owner name (`_25._tcp`).
    pub tlsa_port: u16,
    /// The TTL of the records in force, for the rollover steps.
    pub tlsa_ttl: Option<u32>,
}

impl EmitOptions {
    /// The path of an output file on the mail host.
    pub fn installed(&self, rel: &str) -> String {
        self.install_dir.join(rel).display().to_string()
    }

    /// The path on the mail host of the key a snippet names: `--key-path`, else the key file
    /// `rel` that this run writes. `None` when neither exists: a snippet naming a key that is
    /// not there would make the MTA fail (Postfix) or fail every TLS handshake (Exim).
    pub fn key_file(&self, m: &Material<'_>, rel: &str) -> Option<String> {
        match (&self.key_path, m.key) {
            (Some(path), _) => Some(path.display().to_string()),
            (None, Some(_)) => Some(self.installed(rel)),
            (None, None) => None,
        }
    }
}

/// Decides whether existing bytes already hold the wanted content.
pub type SameContent = Box<dyn Fn(&[u8]) -> bool>;

/// One file to write, relative to the output directory.
pub struct OutputFile {
    pub rel: PathBuf,
    pub contents: Vec<u8>,
    pub mode: FileMode,
    /// Group to own the file, if that group exists on this host.
    pub group: Option<String>,
    /// For files whose bytes differ on every run (PFX: random salts), decides whether existing
    /// bytes already hold the same content, so the file is not rewritten.
    pub same_content: Option<SameContent>,
}

impl OutputFile {
    pub fn new(rel: impl AsRef<Path>, contents: impl Into<Vec<u8>>, mode: FileMode) -> OutputFile {
        OutputFile {
            rel: rel.as_ref().to_path_buf(),
            contents: contents.into(),
            mode,
            group: None,
            same_content: None,
        }
    }
}

pub trait Emitter {
    fn name(&self) -> &'static str;
    fn files(&self, material: &Material<'_>, options: &EmitOptions) -> Vec<OutputFile>;
}

/// Every file for the chosen targets but README.txt, which is made once they are written
/// ([`readme::readme`]) and lists only the files in place.
pub fn all_files(material: &Material<'_>, options: &EmitOptions) -> Vec<OutputFile> {
    let t = options.targets;
    let emitters: [(&dyn Emitter, bool); 5] = [
        (&bundle::Bundle, t.pem),
        (&postfix::Postfix, t.postfix),
        (&exim::Exim, t.exim),
        (&iis::Iis, t.iis),
        (&dane::Dane, t.dane),
    ];
    emitters
        .iter()
        .filter(|(_, on)| *on)
        .flat_map(|(e, _)| e.files(material, options))
        .collect()
}

/// Concatenated PEM of `certs`, in order.
pub fn pem_chain(certs: &[&Certificate]) -> String {
    certs.iter().map(|c| c.to_pem()).collect()
}

/// A file-name-safe form of a certificate name (see [`crate::render::file_name`]).
pub use crate::render::file_name::safe as file_safe;
