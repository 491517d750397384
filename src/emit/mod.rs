//! Emit stage: turns a repaired chain into files, one module per target behind [`Emitter`].
//! Emitters only compute bytes; `write.rs` puts them on disk (or, with `--check`, compares).

pub mod bundle;

use std::path::PathBuf;

use crate::cert::Certificate;
use crate::load::PrivateKey;
use crate::write::FileMode;

/// What every emitter works from: the chain in issuing order, and the key if known.
pub struct Material<'a> {
    pub leaf: &'a Certificate,
    /// Intermediates in issuing order (leaf's issuer first), root excluded.
    pub intermediates: Vec<&'a Certificate>,
    pub root: Option<&'a Certificate>,
    pub key: Option<&'a PrivateKey>,
    /// `--include-root`: append the root to full chains.
    pub include_root: bool,
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
}

/// One file to write, relative to the output directory.
#[derive(Debug, Clone)]
pub struct OutputFile {
    pub rel: PathBuf,
    pub contents: Vec<u8>,
    pub mode: FileMode,
}

pub trait Emitter {
    fn name(&self) -> &'static str;
    fn files(&self, material: &Material<'_>) -> Vec<OutputFile>;
}

/// Concatenated PEM of `certs`, in order.
pub fn pem_chain(certs: &[&Certificate]) -> String {
    certs.iter().map(|c| c.to_pem()).collect()
}
