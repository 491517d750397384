//! Command-line definition (clap derive types only). Parsing into a validated configuration
//! happens in `app.rs`; nothing here has behaviour.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::exit::EXIT_CODES_HELP;

#[derive(Debug, Parser)]
#[command(
    name = "chainfix",
    version,
    about = "Find, verify and repair the TLS certificate chain a mail server presents",
    after_help = EXIT_CODES_HELP
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Show each leaf's presented chain, the chain chainfix builds, and what is wrong.
    #[command(after_help = EXIT_CODES_HELP)]
    Inspect(InspectArgs),
    /// Build the full chain and write it, with configuration for Postfix, Exim and IIS.
    #[command(after_help = EXIT_CODES_HELP)]
    Repair(RepairArgs),
}

#[derive(Debug, Args)]
pub struct InspectArgs {
    #[command(flatten)]
    pub common: CommonArgs,
}

#[derive(Debug, Args)]
pub struct RepairArgs {
    #[command(flatten)]
    pub common: CommonArgs,

    /// Directory to write the repaired files into (created if missing).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,

    /// Append the root certificate to fullchain.pem and chain.pem.
    #[arg(long)]
    pub include_root: bool,

    /// Write nothing; report what would change.
    #[arg(long)]
    pub check: bool,

    /// Output targets, comma-separated: pem, postfix, exim, iis, or all. Postfix and Exim
    /// read the PEM files, so they imply pem.
    #[arg(long, value_name = "LIST", default_value = "all")]
    pub emit: String,

    /// Where the files will live on the mail host; snippets name files by these paths
    /// [default: the --out directory]
    #[arg(long, value_name = "PATH")]
    pub install_dir: Option<PathBuf>,

    /// Postfix older than 3.4: emit smtpd_tls_cert_file/smtpd_tls_key_file (and smtp_*)
    /// instead of *_tls_chain_files.
    #[arg(long)]
    pub postfix_legacy: bool,

    /// Postfix: write the key and the chain into one file (postfix/key-and-chain.pem).
    #[arg(long, conflicts_with = "postfix_legacy")]
    pub postfix_single_file: bool,

    /// Password for the IIS .pfx, from this environment variable (no .pfx without one).
    #[arg(long, value_name = "VAR", conflicts_with = "pfx_password_file")]
    pub pfx_password_env: Option<String>,

    /// Password for the IIS .pfx, from the first line of this file.
    #[arg(long, value_name = "FILE")]
    pub pfx_password_file: Option<PathBuf>,

    /// Write the .pfx with 3DES and a SHA-1 MAC, which Windows Server 2016 and older need.
    #[arg(long)]
    pub pfx_legacy: bool,

    /// Let install-chain.ps1 import a private root into Trusted Root (a receiver-side
    /// workaround; receivers of your mail must still trust it themselves).
    #[arg(long)]
    pub trust_private_root: bool,

    /// Group that must read the Exim key.
    #[arg(long, value_name = "GROUP", default_value = "Debian-exim")]
    pub exim_group: String,
}

#[derive(Debug, Args)]
pub struct CommonArgs {
    /// Certificate files and directories: PEM, DER, PKCS#7 (.p7b/.p7c), PKCS#12 (.pfx/.p12),
    /// private keys. Directories are scanned recursively.
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,

    /// The leaf's private key, if it is not among the inputs.
    #[arg(long, value_name = "FILE")]
    pub key: Option<PathBuf>,

    /// Extra intermediate certificates to build chains from (file or directory; repeatable).
    #[arg(long, value_name = "PATH")]
    pub intermediates: Vec<PathBuf>,

    /// Extra trust anchors, e.g. a private CA (file or directory; repeatable).
    #[arg(long, value_name = "PATH")]
    pub roots: Vec<PathBuf>,

    /// Do not trust the embedded Mozilla root store.
    #[arg(long)]
    pub no_default_roots: bool,

    /// Never use the network; only inputs, pools and the download cache.
    #[arg(long)]
    pub offline: bool,

    /// AIA download cache [default: $XDG_CACHE_HOME/chainfix]
    #[arg(long, value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,

    /// Seconds allowed for each AIA request, connect to last byte.
    #[arg(long, value_name = "SECS", default_value_t = 10)]
    pub timeout: u64,

    /// Most AIA HTTP requests in one run.
    #[arg(long, value_name = "N", default_value_t = 64)]
    pub max_fetches: usize,

    /// Read the PFX password from this environment variable.
    #[arg(long, value_name = "VAR", conflicts_with = "password_file")]
    pub password_env: Option<String>,

    /// Read the PFX password from the first line of this file.
    #[arg(long, value_name = "FILE")]
    pub password_file: Option<PathBuf>,

    /// Check that the leaf is valid for this host name (RFC 6125, wildcards included).
    #[arg(long, value_name = "NAME")]
    pub host: Option<String>,

    /// Warn about certificates expiring within this many days.
    #[arg(long, value_name = "DAYS", default_value_t = 30)]
    pub warn_days: i64,

    /// Print one JSON document instead of the human report.
    #[arg(long)]
    pub json: bool,

    /// Evaluate validity at this RFC 3339 time instead of now (for reproducible runs).
    #[arg(long, value_name = "RFC3339", hide = true)]
    pub at: Option<String>,
}
