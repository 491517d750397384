//! Exim: `exim/main.conf` (main-section options, server role), `exim/transport.conf` (the
//! options for the `remote_smtp` transport, client role), `exim/debian-macros.conf` (the same
//! through the macros of Debian's split configuration), and `exim/privkey.pem`.
//!
//! Exim reads its key as the Exim user (Debian: `Debian-exim`) once it has dropped privileges,
//! so its copy of the key is written 0640 and group-owned by that group where it exists.
//!
//! Certificate names appear only in comment lines, through [`crate::render::exim`].

use super::{EmitOptions, Emitter, Material, OutputFile};
use crate::render::exim as render;
use crate::write::FileMode;

pub struct Exim;

pub const KEY: &str = "exim/privkey.pem";

impl Emitter for Exim {
    fn name(&self) -> &'static str {
        "exim"
    }

    fn files(&self, m: &Material<'_>, o: &EmitOptions) -> Vec<OutputFile> {
        let chain = o.installed("fullchain.pem");
        // No key, no snippets: Exim would fail every STARTTLS on a missing key file.
        let Some(key) = o.key_file(m, KEY) else {
            return Vec::new();
        };
        let header = format!(
            "# chainfix: Exim TLS settings for {leaf}\n\
             # Leaf: {leaf}, expires {expiry}\n\
             # Chain served: {summary}\n\
             # The key must be readable by the Exim user: chgrp {group} {key}; chmod 0640 {key}\n",
            leaf = render::comment(&m.leaf.subject),
            expiry = m.leaf_expiry(),
            summary = m.chain_summary(render::comment),
            group = o.exim_group,
        );
        let missing_key = if o.key_path.is_some() {
            format!(
                "# The key stays where it is ({}); chainfix did not write it.\n",
                render::comment(&key)
            )
        } else {
            String::new()
        };
        let main = format!(
            "{header}{missing_key}# Main section (server role), then check with `exim -bV`:\n\
             tls_certificate = {chain}\n\
             tls_privatekey = {key}\n"
        );
        let transport = format!(
            "{header}{missing_key}# Client role: add the two options to the smtp transport that relays\n\
             # (remote_smtp, or remote_smtp_smarthost), for example:\n\
             #\n\
             # remote_smtp:\n\
             #   driver = smtp\n\
             tls_certificate = {chain}\n\
             tls_privatekey = {key}\n"
        );
        let macros = format!(
            "{header}{missing_key}# Debian: the file depends on dc_use_split_config in /etc/exim4/update-exim4.conf.conf.\n\
             # Single configuration (dc_use_split_config='false', the default): put these lines into\n\
             #   /etc/exim4/exim4.conf.localmacros (replacing any MAIN_TLS_* or REMOTE_SMTP_* lines there);\n\
             #   update-exim4.conf never reads conf.d/ in this layout.\n\
             # Split configuration (dc_use_split_config='true'): save this file as\n\
             #   /etc/exim4/conf.d/main/00_chainfix_tls\n\
             # Then, as root: update-exim4.conf && systemctl reload exim4\n\
             MAIN_TLS_ENABLE = yes\n\
             MAIN_TLS_CERTIFICATE = {chain}\n\
             MAIN_TLS_PRIVATEKEY = {key}\n\
             REMOTE_SMTP_TLS_CERTIFICATE = {chain}\n\
             REMOTE_SMTP_PRIVATEKEY = {key}\n\
             REMOTE_SMTP_SMARTHOST_TLS_CERTIFICATE = {chain}\n\
             REMOTE_SMTP_SMARTHOST_PRIVATEKEY = {key}\n"
        );
        let mut files = vec![
            OutputFile::new("exim/main.conf", main, FileMode::Public),
            OutputFile::new("exim/transport.conf", transport, FileMode::Public),
            OutputFile::new("exim/debian-macros.conf", macros, FileMode::Public),
        ];
        if let Some(k) = m.key {
            let mut f = OutputFile::new(KEY, k.to_pem(), FileMode::Exact(0o640));
            f.group = Some(o.exim_group.clone());
            files.push(f);
        }
        files
    }
}
