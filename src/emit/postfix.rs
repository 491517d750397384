//! Postfix: `postfix/main.cf`, a snippet to merge into main.cf, giving the full chain to both
//! roles: the server (`smtpd_`, what MTAs connecting to us see, e.g. Exchange Online before it
//! delivers to us) and the client (`smtp_`, what we present when relaying, e.g. to an EOP
//! certificate-based connector).
//!
//! Postfix >= 3.4 takes `*_tls_chain_files = KEY, FULLCHAIN` (or one file holding the key
//! followed by the chain, with `--postfix-single-file`); `--postfix-legacy` gives the
//! `*_tls_cert_file` / `*_tls_key_file` pair that older releases need, with the full chain in
//! the certificate file.
//!
//! Certificate names appear only in comment lines, through [`crate::render::postfix`].

use super::{pem_chain, EmitOptions, Emitter, Material, OutputFile};
use crate::render::postfix as render;
use crate::write::FileMode;

pub struct Postfix;

/// The combined key + chain file for `--postfix-single-file`.
pub const SINGLE_FILE: &str = "postfix/key-and-chain.pem";

impl Emitter for Postfix {
    fn name(&self) -> &'static str {
        "postfix"
    }

    fn files(&self, m: &Material<'_>, o: &EmitOptions) -> Vec<OutputFile> {
        // No key, no snippet: main.cf naming a missing key stops smtpd (key-not-found says so).
        let Some(key) = o.key_file(m, "privkey.pem") else {
            return Vec::new();
        };
        let chain = o.installed("fullchain.pem");
        let mut files = Vec::new();
        let mut text = format!(
            "# chainfix: Postfix TLS settings for {leaf}\n\
             # Leaf: {leaf}, expires {expiry}\n\
             # Chain served: {summary}\n\
             # Merge these lines into main.cf (or set each with `postconf -e`), then run:\n\
             #   postfix check && postfix reload\n",
            leaf = render::comment(&m.leaf.subject),
            expiry = m.leaf_expiry(),
            summary = m.chain_summary(render::comment),
        );
        if o.key_path.is_some() {
            text.push_str(&format!(
                "# The key stays where it is ({}); chainfix did not write it.\n",
                render::comment(&key)
            ));
        }
        // `*_tls_chain_files` is a list split on whitespace and commas, with no quoting: a
        // path containing either must go into the one-path-per-setting legacy form.
        let splits = |p: &str| p.contains(|c: char| c.is_whitespace() || c == ',');
        let legacy = o.postfix_legacy || splits(&key) || splits(&chain);
        if legacy && !o.postfix_legacy {
            text.push_str(
                "# The install path contains a space or comma, which *_tls_chain_files cannot\n\
                 # hold, so the separate certificate and key settings are used.\n",
            );
        }
        let single = o.postfix_single_file && !legacy && m.key.is_some();
        if let (true, Some(k)) = (single, m.key) {
            let mut combined = k.to_pem();
            combined.push_str(&pem_chain(&m.full_chain()));
            files.push(OutputFile::new(SINGLE_FILE, combined, FileMode::Secret));
        }
        for (role, prefix, why) in [
            (
                "Server role",
                "smtpd",
                "what MTAs connecting to this server see (Exchange Online checks it before delivering)",
            ),
            (
                "Client role",
                "smtp",
                "what this server presents when it relays (EOP certificate-based connectors check it)",
            ),
        ] {
            text.push_str(&format!("\n# {role}: {why}.\n"));
            if legacy {
                text.push_str(&format!(
                    "{prefix}_tls_cert_file = {chain}\n{prefix}_tls_key_file = {key}\n"
                ));
            } else if single {
                text.push_str(&format!(
                    "{prefix}_tls_chain_files = {}\n",
                    o.installed(SINGLE_FILE)
                ));
            } else {
                text.push_str(&format!("{prefix}_tls_chain_files = {key}, {chain}\n"));
            }
        }
        files.push(OutputFile::new("postfix/main.cf", text, FileMode::Public));
        files
    }
}
