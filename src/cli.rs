//! Command-line definition (clap derive types only). Parsing into a validated configuration
//! happens in `app.rs`; nothing here has behaviour.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "chainfix",
    version,
    about = "Find, verify and repair the TLS certificate chain a mail server presents",
    after_help = crate::exit::help()
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

// Parsed once per run: the size of the largest variant does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Show each leaf's presented chain, the chain chainfix builds, and what is wrong.
    ///
    /// Reads certificate files, directories, PKCS#7 and PFX files (or, with --postfix, --exim
    /// or --dovecot, exactly the files a deployed mail server loads), finds each leaf and its
    /// key,
    /// builds the chain to a trusted root (following AIA caIssuers URLs unless --offline),
    /// verifies every link's signature, and reports each problem as a finding with a stable
    /// code. The verdict follows OpenSSL 3 at security level 2, as Postfix on Debian and RHEL
    /// uses it; rustls/webpki's verdict is shown beside it where the two differ. Nothing is
    /// written.
    #[command(after_help = crate::exit::help())]
    Inspect(InspectArgs),
    /// Build the full chain and write it, with configuration for Postfix, Exim and IIS.
    ///
    /// Does what inspect does, then writes the chain in order (leaf first, no root) with
    /// snippets for Postfix, Exim and IIS SMTP/Exchange into --out, atomically, leaving
    /// unchanged files alone. A chain the receiver model refuses, or one with a link whose
    /// signature was not verified, is never written. With --postfix, --exim or --dovecot the
    /// deployed server is repaired in place through its own tools, checked, and with --reload reloaded
    /// and proven live; any failure undoes every change.
    #[command(after_help = crate::exit::help())]
    Repair(RepairArgs),
    /// Connect to live mail servers (STARTTLS or implicit TLS) and judge the chain they serve.
    ///
    /// Each target is reached over SMTP (EHLO, STARTTLS), IMAP or POP3 STARTTLS, or TLS at once
    /// (ports 465, 993, 995), and the chain it presents is captured as sent, then judged as
    /// inspect judges files. --domain probes a mail domain as a sending MTA does: its MX hosts,
    /// DNSSEC, DANE, MTA-STS and TLS-RPT, with --baseline reporting what changed since the last
    /// run. --compare checks that the server sends what is on disk; --nagios makes it a
    /// monitoring plugin.
    #[command(after_help = crate::exit::probe_help())]
    Probe(ProbeArgs),
    /// Print the man page or shell completions (generated from this very command line).
    Generate(GenerateArgs),
}

#[derive(Debug, Args)]
pub struct GenerateArgs {
    #[command(subcommand)]
    pub what: Generate,
}

#[derive(Debug, Subcommand)]
pub enum Generate {
    /// The man page, chainfix(1), in roff. With --out-dir, also one page per subcommand.
    Man {
        /// Write chainfix.1 and chainfix-SUBCOMMAND.1 into this directory instead of stdout.
        #[arg(long, value_name = "DIR")]
        out_dir: Option<PathBuf>,
    },
    /// A completion script for SHELL (bash, zsh, fish, elvish, powershell).
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

#[derive(Debug, Args)]
pub struct InspectArgs {
    #[command(flatten)]
    pub input: InputArgs,
    #[command(flatten)]
    pub deployed: DeployedArgs,
    #[command(flatten)]
    pub chain: ChainArgs,
    #[command(flatten)]
    pub dane: DaneArgs,
}

#[derive(Debug, Args)]
pub struct RepairArgs {
    #[command(flatten)]
    pub input: InputArgs,
    #[command(flatten)]
    pub deployed: DeployedArgs,
    #[command(flatten)]
    pub reload: ReloadArgs,
    #[command(flatten)]
    pub chain: ChainArgs,
    #[command(flatten)]
    pub dane: DaneArgs,

    /// Write the chain even when it would not match the TLSA records given with --tlsa or
    /// --tlsa-file (DANE senders would defer mail until the new records are published).
    #[arg(long)]
    pub accept_dane_break: bool,

    /// Directory to write the repaired files into (created if missing).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,

    /// Append the root certificate to fullchain.pem and chain.pem.
    #[arg(long)]
    pub include_root: bool,

    /// Write nothing; report what would change.
    #[arg(long)]
    pub check: bool,

    /// Keep the previous version of each file that changes as NAME.bak.TIMESTAMP (UTC).
    #[arg(long)]
    pub backup: bool,

    /// Remove the files an earlier run wrote into --out that this run no longer writes
    /// (listed in .chainfix-manifest.json, unedited, not the current key); with --backup,
    /// move them aside as NAME.bak.TIMESTAMP instead. Without it they are only reported.
    #[arg(long)]
    pub prune: bool,

    /// Output targets, comma-separated. Postfix and Exim read the PEM files, so they imply pem.
    #[arg(
        long,
        value_name = "LIST",
        value_enum,
        value_delimiter = ',',
        default_value = "all"
    )]
    pub emit: Vec<EmitArg>,

    /// Where the files will live on the mail host; snippets name files by these paths
    /// [default: the --out directory]
    #[arg(long, value_name = "PATH")]
    pub install_dir: Option<PathBuf>,

    /// Where the leaf's private key lives on the mail host, for a chain-only repair: no key
    /// file is written and the Postfix and Exim snippets name this path (absolute). Without it,
    /// and with no key found, those snippets are not written (finding key-not-found).
    #[arg(long, value_name = "PATH", conflicts_with = "postfix_single_file")]
    pub key_path: Option<PathBuf>,

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

    /// Group that must read the Exim key [default: Debian-exim, where that group exists]. A
    /// group given here must exist.
    #[arg(long, value_name = "GROUP")]
    pub exim_group: Option<String>,
}

/// The DANE TLSA records in force for the MX host (offline: nothing is looked up in DNS).
#[derive(Debug, Args)]
pub struct DaneArgs {
    /// A TLSA record in force: a zone-file line ("_25._tcp.mx.example.com. IN TLSA 3 1 1
    /// HEX") or its data ("3 1 1 HEX"). Repeatable; all records form one RRset.
    #[arg(long, value_name = "RECORD")]
    pub tlsa: Vec<String>,

    /// TLSA records in force, as zone-file lines, from this file (repeatable).
    #[arg(long, value_name = "FILE")]
    pub tlsa_file: Vec<PathBuf>,
}

/// What to inspect: files, directories, keys.
#[derive(Debug, Args)]
pub struct InputArgs {
    /// Certificate files and directories: PEM, DER, PKCS#7 (.p7b/.p7c), PKCS#12 (.pfx/.p12),
    /// private keys. Directories are scanned recursively.
    #[arg(required_unless_present_any = ["postfix", "exim", "dovecot"], value_name = "PATH")]
    pub paths: Vec<PathBuf>,

    /// The leaf's private key, if it is not among the inputs.
    #[arg(long, value_name = "FILE")]
    pub key: Option<PathBuf>,

    /// Read the PFX password from this environment variable.
    #[arg(long, value_name = "VAR", conflicts_with = "password_file")]
    pub password_env: Option<String>,

    /// Read the PFX password from the first line of this file.
    #[arg(long, value_name = "FILE")]
    pub password_file: Option<PathBuf>,
}

/// A deployed mail server whose own configuration names the files (instead of PATHs).
#[derive(Debug, Args)]
pub struct DeployedArgs {
    /// Judge the files a deployed Postfix loads, read with postconf from CONFIG_DIR
    /// [default: Postfix's own configuration directory]
    #[arg(
        long,
        value_name = "CONFIG_DIR",
        num_args = 0..=1,
        conflicts_with_all = ["paths", "exim", "dovecot"]
    )]
    pub postfix: Option<Option<PathBuf>>,

    /// Judge the files a deployed Exim loads, read with exim -bP from CONFIG [default: the
    /// file Exim reads, as exim -bV says]
    #[arg(
        long,
        value_name = "CONFIG",
        num_args = 0..=1,
        conflicts_with_all = ["paths", "dovecot"]
    )]
    pub exim: Option<Option<PathBuf>>,

    /// Judge the files a deployed Dovecot loads, read with doveconf -a -P from CONFIG [default:
    /// the file doveconf reads, /etc/dovecot/dovecot.conf]
    #[arg(long, value_name = "CONFIG", num_args = 0..=1, conflicts_with = "paths")]
    pub dovecot: Option<Option<PathBuf>>,

    /// Dovecot's doveconf [default: /usr/bin/doveconf, or doveconf on PATH]; doveadm is
    /// looked for beside it
    #[arg(long, value_name = "PATH", env = "CHAINFIX_DOVECONF_BIN")]
    pub doveconf_bin: Option<PathBuf>,

    /// The Exim binary [default: /usr/sbin/exim4, /usr/sbin/exim, or exim on PATH]
    #[arg(long, value_name = "PATH", env = "CHAINFIX_EXIM_BIN")]
    pub exim_bin: Option<PathBuf>,

    /// Postfix's postconf [default: /usr/sbin/postconf, or postconf on PATH]
    #[arg(long, value_name = "PATH", env = "CHAINFIX_POSTCONF_BIN")]
    pub postconf_bin: Option<PathBuf>,
}

/// After an in-place repair: reload the server and prove it serves the new chain.
#[derive(Debug, Args)]
pub struct ReloadArgs {
    /// After repair --postfix, --exim or --dovecot changed something: reload the server
    /// (postfix -c DIR reload; SIGHUP to Exim's daemon; doveadm -c FILE reload), then probe
    /// every listener of each repaired slot until it serves the new chain; if one does not by
    /// the deadline, undo every change, reload again and exit 2.
    #[arg(long)]
    pub reload: bool,

    /// Seconds the proof may take [default: Postfix's max_idle, after which no process
    /// started before the reload is left; 30 for Exim and Dovecot]
    #[arg(long, value_name = "SECS", requires = "reload")]
    pub reload_deadline: Option<u64>,

    /// Consecutive connections to each listener that must serve the new chain.
    #[arg(long, value_name = "N", default_value_t = 3, requires = "reload")]
    pub reload_proof: u32,
}

/// How chains are built and judged: shared by every subcommand.
#[derive(Debug, Args)]
pub struct ChainArgs {
    /// Extra intermediate certificates to build chains from (file or directory; repeatable).
    #[arg(long, value_name = "PATH")]
    pub intermediates: Vec<PathBuf>,

    /// Extra trust anchors, e.g. a private CA (file or directory; repeatable).
    #[arg(long, value_name = "PATH")]
    pub roots: Vec<PathBuf>,

    /// Do not trust the embedded Mozilla root store.
    #[arg(long)]
    pub no_default_roots: bool,

    /// Never fetch over AIA; only inputs, pools and the download cache.
    #[arg(long)]
    pub offline: bool,

    /// AIA download cache [default: $XDG_CACHE_HOME/chainfix]
    #[arg(long, value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,

    /// Seconds allowed for each AIA request (and, for probe, each connection), start to end.
    #[arg(long, value_name = "SECS", default_value_t = 10)]
    pub timeout: u64,

    /// Most AIA HTTP requests in one run.
    #[arg(long, value_name = "N", default_value_t = 64)]
    pub max_fetches: usize,

    /// Check that the leaf is valid for this host name (RFC 6125, wildcards included).
    /// probe: default the probed host.
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

    /// Judge the certificate for this end of a connection: a server receiving mail (purpose
    /// serverAuth), or a relay's client certificate (a missing clientAuth is then a warning).
    #[arg(long, value_enum, value_name = "ROLE", default_value_t = RoleArg::Server)]
    pub role: RoleArg,
}

/// `--role` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum RoleArg {
    /// A mail server (Postfix smtpd_tls_chain_files): what connecting MTAs check.
    Server,
    /// A relay's client certificate (Postfix smtp_tls_chain_files, Exim's smtp transport).
    Client,
}

/// `--emit` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum EmitArg {
    /// fullchain.pem, chain.pem, cert.pem, privkey.pem.
    Pem,
    /// postfix/main.cf (implies pem).
    Postfix,
    /// exim/ snippets (implies pem).
    Exim,
    /// iis/: the .pfx (with a password) and the PowerShell import script.
    Iis,
    /// tlsa.zone: the DANE TLSA records to publish.
    Dane,
    /// Every target.
    All,
}

/// `--starttls` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum StartTlsArg {
    /// EHLO and STARTTLS first (the default for every port but 110, 143, 465, 993, 995).
    Smtp,
    /// IMAP CAPABILITY and STARTTLS first (the default for port 143).
    Imap,
    /// POP3 CAPA and STLS first (the default for port 110).
    Pop3,
    /// TLS right away (the default for ports 465, 993 and 995).
    None,
}

#[derive(Debug, Args)]
pub struct ProbeArgs {
    /// Servers to probe, HOST[:PORT] (port 25 by default; 465 means implicit TLS).
    #[arg(value_name = "TARGET")]
    pub targets: Vec<String>,

    /// A mail domain to probe as a sending MTA does (repeatable): its MX hosts in preference
    /// order (none: the domain's own address; a null MX: no mail), each address over
    /// STARTTLS, DNSSEC, DANE (TLSA at _25._tcp.MX) and the TLS-RPT record.
    #[arg(long, value_name = "DOMAIN")]
    pub domain: Vec<String>,

    /// The DNS resolver for --domain [default: the first nameserver in /etc/resolv.conf].
    /// DNSSEC (and so DANE) is trusted only from a resolver on a loopback address.
    #[arg(long, value_name = "ADDR:PORT", requires = "domain")]
    pub dns_server: Option<String>,

    /// The port probed on each MX host instead of 25 (a testing hook).
    #[arg(long, value_name = "N", requires = "domain")]
    pub smtp_port: Option<u16>,

    /// The port the MTA-STS policy of each --domain is fetched from instead of 443 (a testing
    /// hook).
    #[arg(long, value_name = "N", requires = "domain")]
    pub sts_port: Option<u16>,

    /// PEM roots trusted for the MTA-STS policy host besides Mozilla's (a testing hook).
    #[arg(long, value_name = "FILE", requires = "domain")]
    pub sts_roots: Option<PathBuf>,

    /// Monitoring baseline for --domain: report what changed since the state recorded in FILE
    /// (created when absent; domains it does not hold yet are added).
    #[arg(long, value_name = "FILE", requires = "domain")]
    pub baseline: Option<PathBuf>,

    /// Rewrite the --baseline file with what this run saw (accept the changes reported).
    #[arg(long, requires = "baseline")]
    pub update_baseline: bool,

    /// Read more targets from this file, one per line (# starts a comment).
    #[arg(long, value_name = "FILE")]
    pub targets_file: Option<PathBuf>,

    /// How to start TLS, overriding the choice by port.
    #[arg(long, value_enum, value_name = "MODE")]
    pub starttls: Option<StartTlsArg>,

    /// Server name to send as SNI [default: the target host]
    #[arg(long, value_name = "NAME")]
    pub servername: Option<String>,

    /// Name to send in EHLO [default: this machine's host name]
    #[arg(long, value_name = "NAME")]
    pub helo: Option<String>,

    /// Probe this many targets at a time.
    #[arg(long, value_name = "N", default_value_t = 16)]
    pub concurrency: usize,

    /// Compare what is served with these files or directories on disk
    /// (served-differs-from-disk). Give targets before this option.
    #[arg(long, value_name = "PATH", num_args = 1..)]
    pub compare: Vec<PathBuf>,

    /// One line per target: target, status, leaf, expiry, problem codes.
    #[arg(long, conflicts_with_all = ["json", "nagios"])]
    pub brief: bool,

    /// Nagios plugin output and exit codes: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.
    #[arg(long, conflicts_with = "json")]
    pub nagios: bool,

    #[command(flatten)]
    pub chain: ChainArgs,
}
