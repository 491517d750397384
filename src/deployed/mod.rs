//! Discovery: what a deployed mail server loads. Reads Postfix's, Exim's and Dovecot's
//! configuration through their own tools (`postconf`, `exim -bP`/`-be`, `doveconf`), never by
//! parsing their files ourselves where the tool can answer (Dovecot's includes are read only
//! to find the line to edit), and turns it into [`Slot`]s: one per role, listener
//! and SNI name, each the certificate files and key the server loads there and the setting
//! that names them. Each slot is then judged on its own (load -> pool -> chain -> diagnose),
//! so a certbot `cert.pem` named by the configuration is judged as what it is, a leaf alone.
//!
//! * [`command`] runs the tools (no shell, a deadline, an output budget).
//! * [`postfix`] reads `postconf -x`, `postconf -P -x`, `postconf -M` and SNI map sources.
//! * [`exim`] reads `exim -bP` for the main section and smtp transports, expanding with `-be`.
//! * [`dovecot`] reads `doveconf -a -P` (2.3's `ssl_cert = <FILE` and 2.4's
//!   `ssl_server_cert_file`), its `local`, `local_name` and `protocol` blocks and listeners.
//! * [`certbot`] recognises files another tool owns (certbot's `live/`, acme.sh, snakeoil).

pub mod access;
pub mod apply;
pub mod certbot;
pub mod command;
pub mod diff;
pub mod dovecot;
pub mod dovecot_edit;
pub mod exim;
pub mod exim_edit;
pub mod exim_macros;
pub mod plan;
pub mod postfix;
pub mod proof;

use std::fmt;
use std::path::PathBuf;

use crate::chain::Role;

/// The mail server a deployment belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mta {
    Postfix,
    Exim,
    Dovecot,
}

impl Mta {
    pub fn as_str(self) -> &'static str {
        match self {
            Mta::Postfix => "postfix",
            Mta::Exim => "exim",
            Mta::Dovecot => "dovecot",
        }
    }
}

/// Where a setting lives, so the report can name the line an admin would edit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Place {
    /// Postfix `main.cf` (`postconf -e`).
    MainCf,
    /// Postfix `master.cf`, an `-o` override of service `service/type` (`postconf -P -e`).
    MasterCf { service: String },
    /// A Postfix `tls_server_sni_maps` source file: the line for one name.
    SniMap {
        path: PathBuf,
        line: usize,
        name: String,
    },
    /// Exim's main configuration section.
    EximMain { file: PathBuf },
    /// An Exim smtp transport.
    EximTransport { file: PathBuf, transport: String },
    /// A Dovecot setting, at the top level or inside the filter blocks `filter`
    /// (`local_name mx.example.com`, `local 192.0.2.1`, `protocol imap`; outermost first), on
    /// `line` of `file` (the configuration or one of its `!include`s) when that line was found.
    Dovecot {
        file: PathBuf,
        line: Option<usize>,
        filter: Vec<String>,
    },
}

/// One setting that names a file of a slot: where, and which parameter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting {
    pub place: Place,
    /// The parameter (`smtpd_tls_chain_files`, `tls_certificate`, ...).
    pub name: String,
}

impl fmt::Display for Setting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.place {
            Place::MainCf => write!(f, "main.cf: {}", self.name),
            Place::MasterCf { service } => write!(f, "master.cf {service}: -o {}", self.name),
            Place::SniMap { path, line, name } => {
                write!(f, "{} line {line}: {name} ({})", path.display(), self.name)
            }
            Place::EximMain { file } => write!(f, "{}: {}", file.display(), self.name),
            Place::Dovecot { file, line, filter } => {
                write!(f, "{}", file.display())?;
                if let Some(n) = line {
                    write!(f, " line {n}")?;
                }
                if filter.is_empty() {
                    write!(f, ": {}", self.name)
                } else {
                    write!(f, ": {} {{ {} }}", filter.join(" { "), self.name)
                }
            }
            Place::EximTransport { file, transport } => {
                write!(
                    f,
                    "{}: transport {transport}: {}",
                    file.display(),
                    self.name
                )
            }
        }
    }
}

/// What the server loads for one role, listener set and SNI name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slot {
    pub role: Role,
    /// The listeners (server: `smtp/inet`, `submission/inet`, Exim's ports) or client
    /// services (`smtp/unix`, transport `remote_smtp`) that use these files.
    pub services: Vec<String>,
    /// The SNI name this slot answers, when it comes from an SNI table.
    pub sni: Option<String>,
    /// `rsa`, `ecdsa` or `dsa` for Postfix's legacy per-algorithm parameters; `alt` for
    /// Dovecot's `ssl_alt_cert`.
    pub algorithm: Option<&'static str>,
    /// The files holding the certificates (and, for `*_tls_chain_files`, the keys), in the
    /// order the server reads them.
    pub files: Vec<PathBuf>,
    /// The private key's file when it is named apart from the certificates.
    pub key: Option<PathBuf>,
    /// The settings naming these files.
    pub settings: Vec<Setting>,
}

impl Slot {
    /// "server smtp/inet, submission/inet" / "client smtp/unix" / "server SNI mail.example.com".
    pub fn label(&self) -> String {
        let role = match self.role {
            Role::Server => "server",
            Role::Client => "client",
        };
        let mut s = format!("{role} {}", self.services.join(", "));
        if let Some(name) = &self.sni {
            s.push_str(&format!(", SNI {name}"));
        }
        if let Some(a) = self.algorithm {
            s.push_str(&format!(" ({a} certificate)"));
        }
        s
    }

    /// The settings as one line: "main.cf: smtpd_tls_cert_file; main.cf: smtpd_tls_key_file".
    pub fn settings_label(&self) -> String {
        let v: Vec<String> = self.settings.iter().map(|s| s.to_string()).collect();
        v.join("; ")
    }
}

/// A deployed server's TLS configuration: its slots, and notes on what was not a slot.
#[derive(Debug, Clone)]
pub struct Deployment {
    pub mta: Mta,
    /// The configuration read: Postfix's config directory, Exim's configuration file.
    pub config: PathBuf,
    pub slots: Vec<Slot>,
    /// Things an admin should know that are not certificate findings ("no client
    /// certificate configured", an SNI map type whose source cannot be read).
    pub notes: Vec<String>,
    /// Where each server-role service listens (to probe after a reload).
    pub listeners: Vec<Listener>,
    /// How long an idle server process may keep serving what it loaded before a reload
    /// (Postfix's `max_idle`), in seconds; `None` when unknown.
    pub max_idle: Option<u64>,
    /// The user the server reads its TLS files as, when that is not root (Exim's
    /// `exim_user`); see [`access`].
    pub reads_as: Option<String>,
}

/// One address a server-role service listens on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listener {
    /// The service (`smtp/inet`, `127.0.0.1:2525/inet`).
    pub service: String,
    pub host: String,
    pub port: u16,
    /// How TLS starts there: STARTTLS of the listener's protocol, or `None` for TLS from the
    /// first byte (Postfix `smtpd_tls_wrappermode = yes`, Exim's `tls_on_connect_ports`,
    /// Dovecot's `ssl = yes` listeners).
    pub starttls: crate::probe::StartTls,
}

/// A failure to read the configuration at all.
#[derive(Debug, thiserror::Error)]
pub enum DiscoverError {
    #[error(transparent)]
    Tool(#[from] command::ToolError),
    #[error("{program} failed: {message}")]
    ToolFailed { program: String, message: String },
    #[error("{0}")]
    Config(String),
}

/// Splits a Postfix file list (`smtpd_tls_chain_files`, an SNI map value): separated by
/// commas and white space (postconf(5): "Specify a list of pathnames separated by comma or
/// whitespace").
pub fn split_list(value: &str) -> Vec<String> {
    value
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// Groups slots that load the same files for the same role and SNI name into one, listing
/// all their services (most services inherit main.cf).
pub fn merge_slots(slots: Vec<Slot>) -> Vec<Slot> {
    let mut out: Vec<Slot> = Vec::new();
    for s in slots {
        match out.iter_mut().find(|o| {
            o.role == s.role
                && o.sni == s.sni
                && o.algorithm == s.algorithm
                && o.files == s.files
                && o.key == s.key
                && o.settings == s.settings
        }) {
            Some(o) => {
                for svc in s.services {
                    if !o.services.contains(&svc) {
                        o.services.push(svc);
                    }
                }
            }
            None => out.push(s),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postfix_lists_split_on_commas_and_white_space() {
        assert_eq!(
            split_list(" /a/key.pem, /a/cert.pem\t/a/chain.pem ,"),
            ["/a/key.pem", "/a/cert.pem", "/a/chain.pem"]
        );
    }
}
