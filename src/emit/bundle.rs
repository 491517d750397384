//! The plain PEM bundle every MTA can use: `fullchain.pem` (leaf, then intermediates in issuing
//! order, then the root only with `--include-root`), `chain.pem` (intermediates only),
//! `cert.pem` (the leaf) and `privkey.pem` (0600, only when the key is known).

use std::path::PathBuf;

use super::{pem_chain, Emitter, Material, OutputFile};
use crate::write::FileMode;

pub struct Bundle;

impl Emitter for Bundle {
    fn name(&self) -> &'static str {
        "pem"
    }

    fn files(&self, m: &Material<'_>) -> Vec<OutputFile> {
        let public = |name: &str, text: String| OutputFile {
            rel: PathBuf::from(name),
            contents: text.into_bytes(),
            mode: FileMode::Public,
        };
        let mut chain = m.intermediates.clone();
        if m.include_root {
            chain.extend(m.root);
        }
        let mut files = vec![
            public("fullchain.pem", pem_chain(&m.full_chain())),
            public("chain.pem", pem_chain(&chain)),
            public("cert.pem", pem_chain(&[m.leaf])),
        ];
        if let Some(key) = m.key {
            files.push(OutputFile {
                rel: PathBuf::from("privkey.pem"),
                contents: key.to_pem().into_bytes(),
                mode: FileMode::Secret,
            });
        }
        files
    }
}
