//! The plain PEM bundle every MTA can use: `fullchain.pem` (leaf, then intermediates in issuing
//! order, then the root only with `--include-root`), `chain.pem` (intermediates only),
//! `cert.pem` (the leaf) and `privkey.pem` (0600, only when the key is known).

use super::{pem_chain, EmitOptions, Emitter, Material, OutputFile};
use crate::write::FileMode;

pub struct Bundle;

impl Emitter for Bundle {
    fn name(&self) -> &'static str {
        "pem"
    }

    fn files(&self, m: &Material<'_>, _: &EmitOptions) -> Vec<OutputFile> {
        let mut chain = m.intermediates.clone();
        if m.include_root {
            chain.extend(m.root);
        }
        let mut files = vec![
            OutputFile::new(
                "fullchain.pem",
                pem_chain(&m.full_chain()),
                FileMode::Public,
            ),
            OutputFile::new("chain.pem", pem_chain(&chain), FileMode::Public),
            OutputFile::new("cert.pem", pem_chain(&[m.leaf]), FileMode::Public),
        ];
        if let Some(key) = m.key {
            files.push(OutputFile::new(
                "privkey.pem",
                key.to_pem(),
                FileMode::Secret,
            ));
        }
        files
    }
}
