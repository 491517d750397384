//! `README.txt` in the output directory: in plain words, what was wrong, what was written, and
//! the exact steps to deploy it on each target that was emitted. Certificate names and finding
//! messages go through [`crate::render::plain`], so each stays on its line.

use std::path::PathBuf;

use super::{exim, iis, postfix, EmitOptions, Material, OutputFile};
use crate::diagnose::{Code, Severity};
use crate::render::plain;
use crate::write::FileMode;

/// The file's name in the output directory.
pub const NAME: &str = "README.txt";

/// README.txt for the files now in place (`written`), naming those that could not be written
/// (`not_written`, with the reason) and those an earlier run left (`stale`), so that nobody
/// deploys the directory as if it were whole, or as if every file in it were current.
pub fn readme(
    m: &Material<'_>,
    o: &EmitOptions,
    written: &[&OutputFile],
    not_written: &[(PathBuf, String)],
    stale: &[PathBuf],
) -> OutputFile {
    let mut s = format!(
        "chainfix repaired the certificate chain of {}\n\
         (expires {}).\n\nChain to serve, in this order:\n",
        plain::line(&m.leaf.subject),
        m.leaf_expiry()
    );
    for (i, c) in m.full_chain().iter().enumerate() {
        s.push_str(&format!("  {}. {}\n", i + 1, plain::line(&c.subject)));
    }
    if let (Some(root), false) = (m.root, m.include_root) {
        s.push_str(&format!(
            "  (root, not sent: receivers use their own copy) {}\n",
            plain::line(&root.subject)
        ));
    }
    s.push_str("\nWhat was wrong with what was presented:\n");
    let notable: Vec<_> = m
        .problems
        .iter()
        .filter(|p| p.severity != Severity::Info)
        // How the chain was found is not what was wrong with it.
        .filter(|p| !matches!(p.code, Code::AiaFetchFailed | Code::IssuerSignatureInvalid))
        .collect();
    if notable.is_empty() {
        s.push_str("  Nothing: the presented chain was already complete and in order.\n");
    }
    for p in notable {
        s.push_str(&format!(
            "  - {} [{}]: {}\n",
            p.severity.as_str(),
            p.code.as_str(),
            plain::line(&p.message)
        ));
        if p.repairable {
            s.push_str("    Fixed by the files below.\n");
        } else if p.severity == Severity::Error {
            s.push_str("    NOT fixed by these files: it needs action of its own.\n");
        }
    }
    s.push_str(&format!(
        "\nFiles written (install them under {}):\n",
        o.install_dir.display()
    ));
    for f in written {
        s.push_str(&format!("  {:<34} {}\n", f.rel.display(), describe(f)));
    }
    if !not_written.is_empty() {
        s.push_str(
            "\nNOT written (chainfix could not write them; this directory is incomplete, do\n\
             not deploy it until a run writes them):\n",
        );
        for (rel, why) in not_written {
            s.push_str(&format!(
                "  {:<34} {}\n",
                plain::line(&rel.display().to_string()),
                plain::line(why)
            ));
        }
    }
    if !stale.is_empty() {
        s.push_str(
            "\nLeft by an earlier run of chainfix, NOT part of this repair (do not deploy them;\n\
             run chainfix again with --prune to remove them):\n",
        );
        for rel in stale {
            s.push_str(&format!("  {}\n", plain::line(&rel.display().to_string())));
        }
    }
    s.push_str(&steps(m, o));
    OutputFile::new(PathBuf::from(NAME), s, FileMode::Public)
}

fn describe(f: &OutputFile) -> &'static str {
    let name = f.rel.to_string_lossy();
    match name.as_ref() {
        "fullchain.pem" => "leaf + intermediates, in order: what the server must send",
        "chain.pem" => "intermediates only",
        "cert.pem" => "the leaf only",
        "privkey.pem" => "private key (mode 0600; keep it secret)",
        "postfix/main.cf" => "lines to merge into Postfix main.cf",
        postfix::SINGLE_FILE => "key followed by the chain, for Postfix (0600)",
        "exim/main.conf" => "Exim main-section options (server role)",
        "exim/transport.conf" => "Exim smtp transport options (client role)",
        "exim/debian-macros.conf" => "the same as Debian exim4 macros",
        exim::KEY => "private key readable by the Exim group (0640)",
        "iis/chain.p7b" => "leaf + intermediates as PKCS#7",
        "iis/leaf.cer" => "the leaf, DER",
        "iis/root.cer" => "the private root (--trust-private-root)",
        iis::PFX => "key + leaf + intermediates for Windows (0600)",
        iis::SCRIPT => "PowerShell script that installs the chain on Windows",
        super::dane::NAME => "DANE TLSA records to publish for this chain, with the rollover steps",
        _ if name.starts_with("iis/intermediate-") => "an intermediate CA, DER",
        _ => "",
    }
}

fn steps(m: &Material<'_>, o: &EmitOptions) -> String {
    let t = o.targets;
    let mut s = String::from("\nHow to deploy:\n");
    let dir = o.install_dir.display();
    s.push_str(&format!(
        "\n  Copy this directory to {dir} on the mail server, keeping file modes\n\
         \x20 (for example: rsync -a, or scp -p).\n"
    ));
    match (&o.key_path, m.key) {
        (Some(path), _) => s.push_str(&format!(
            "\n  The private key stays where it is, at {} on the mail server\n\
             \x20 (--key-path); chainfix wrote no key file.\n",
            plain::line(&path.display().to_string())
        )),
        (None, None) => s.push_str(
            "\n  [key-not-found] No private key matching the certificate was found, so no key\n\
             \x20 file and no Postfix or Exim configuration were written (they would name a key\n\
             \x20 that does not exist). Run chainfix again with --key FILE, or with\n\
             \x20 --key-path PATH naming where the key is on the mail server.\n",
        ),
        (None, Some(_)) => {}
    }
    let key_known = o.key_path.is_some() || m.key.is_some();
    if t.postfix && key_known {
        s.push_str(
            "\n  Postfix:\n\
             \x20   1. Merge postfix/main.cf into /etc/postfix/main.cf (it sets both the server\n\
             \x20      and the client certificate).\n\
             \x20   2. As root: postfix check && postfix reload\n\
             \x20   3. Check what is served:\n\
             \x20      openssl s_client -starttls smtp -connect HOST:25 -showcerts </dev/null\n",
        );
    }
    if t.exim && key_known {
        s.push_str(&format!(
            "\n  Exim:\n\
             \x20   1. Make the key readable by Exim: chgrp {} {key}; chmod 0640 {key}\n\
             \x20   2. Debian: see dc_use_split_config in /etc/exim4/update-exim4.conf.conf.\n\
             \x20      Single configuration ('false', the default): put the lines of\n\
             \x20      exim/debian-macros.conf into /etc/exim4/exim4.conf.localmacros\n\
             \x20      (replacing any MAIN_TLS_* or REMOTE_SMTP_* lines already there).\n\
             \x20      Split configuration ('true'): save exim/debian-macros.conf as\n\
             \x20      /etc/exim4/conf.d/main/00_chainfix_tls\n\
             \x20      Then, as root: update-exim4.conf && systemctl reload exim4\n\
             \x20      Other systems: put exim/main.conf in the main section and the options in\n\
             \x20      exim/transport.conf into the remote_smtp transport, then exim -bV.\n",
            o.exim_group,
            key = plain::line(&o.key_file(m, exim::KEY).unwrap_or_default())
        ));
    }
    if t.iis {
        s.push_str(
            "\n  Windows (IIS SMTP, Exchange):\n\
             \x20   1. Copy the iis folder to the server.\n\
             \x20   2. In an elevated PowerShell: .\\install-chain.ps1 (add -RestartServices to\n\
             \x20      restart Exchange's transport or IIS SMTP at the end).\n\
             \x20      It imports the intermediates into LocalMachine\\CA and the .pfx (if any)\n\
             \x20      into LocalMachine\\My, checks that the key is there too, and has Windows\n\
             \x20      build the chain: a root this machine does not trust (a private CA) is a\n\
             \x20      warning, a missing intermediate an error; revocation is checked apart.\n\
             \x20   3. Exchange: Enable-ExchangeCertificate -Thumbprint <thumbprint> -Services SMTP,\n\
             \x20      then Restart-Service MSExchangeTransport.\n\
             \x20      IIS SMTP uses the certificate whose subject name matches the SMTP virtual\n\
             \x20      server's fully-qualified domain name (Properties, Delivery, Advanced);\n\
             \x20      then Restart-Service SMTPSVC.\n",
        );
        if o.pfx_password.is_none() || m.key.is_none() {
            s.push_str(
                "      No .pfx was written: it needs the private key and --pfx-password-env or\n\
                 \x20     --pfx-password-file.\n",
            );
        }
    }
    if t.pem && !t.postfix && !t.exim {
        let key = o
            .key_file(m, "privkey.pem")
            .unwrap_or_else(|| "the certificate's private key (not written)".into());
        s.push_str(&format!(
            "\n  Point your server at {} (certificate chain) and {} (key).\n",
            o.installed("fullchain.pem"),
            plain::line(&key)
        ));
    }
    s
}
