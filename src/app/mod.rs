//! Application layer: validates the command line into a [`Config`], wires the stages
//! (load -> pool -> chain -> diagnose -> fetch -> emit/report) for each subcommand, and is the
//! only place that reads the clock, the environment, or the terminal. `analyse.rs` holds the
//! part every subcommand shares; `repair.rs` the writing subcommand; `probe.rs` the live-server
//! subcommand, with `domain.rs` for `probe --domain` (DNS, a job per MX address, per-domain
//! results), `sts.rs` for its MTA-STS policy fetch and verdicts, and `baseline.rs` for
//! `--baseline` (the recorded state, the changes, the file written after the report);
//! `judge.rs` the same stages as a library call, for the conformance suite.

mod analyse;
mod baseline;
use analyse::Analysis;
mod dane;
mod deployed;
mod deployed_reload;
mod deployed_repair;
mod deployed_repair_debian;
mod deployed_repair_dovecot;
mod deployed_repair_exim;
mod domain;
mod generate;
pub mod judge;
mod manifest;
mod probe;
mod progress;
mod repair;
mod stale;
mod sts;

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use rayon::prelude::*;

use crate::cli::{ChainArgs, Cli, Command, InputArgs};
use crate::diagnose::Status;
use crate::exit::Exit;
use crate::fetch::{AiaConfig, Cache, HttpLimits};
use crate::load::{self, PasswordSource};
use crate::report::{self, FileError, LeafResult};

/// A failure to do the work at all (as opposed to findings about certificates).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct AppError(pub String);

/// Validated settings shared by `inspect` and `repair`.
#[derive(Clone)]
pub struct Config {
    pub paths: Vec<PathBuf>,
    pub key: Option<PathBuf>,
    pub intermediates: Vec<PathBuf>,
    pub roots: Vec<PathBuf>,
    pub default_roots: bool,
    pub cache: Option<Cache>,
    pub aia: AiaConfig,
    pub http: HttpLimits,
    pub password: Option<String>,
    pub host: Option<String>,
    pub warn_days: i64,
    pub json: bool,
    /// Evaluation time, unix seconds.
    pub now: i64,
    /// The end of the connection the certificate is judged for.
    pub role: crate::chain::Role,
    /// `--tlsa`, `--tlsa-file`: the TLSA records in force (inspect, repair).
    pub dane: Option<std::sync::Arc<crate::dane::RecordSet>>,
    /// `--accept-dane-break` (repair).
    pub accept_dane_break: bool,
}

impl Config {
    /// `input` is `None` for subcommands without files (probe).
    fn from_args(input: Option<&InputArgs>, a: &ChainArgs) -> Result<Config, AppError> {
        let now = match &a.at {
            Some(s) => {
                time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
                    .map_err(|e| AppError(format!("--at {s}: not an RFC 3339 time ({e})")))?
                    .unix_timestamp()
            }
            None => time::OffsetDateTime::now_utc().unix_timestamp(),
        };
        let password = match input.map(|i| (&i.password_env, &i.password_file)) {
            Some((Some(var), _)) => Some(std::env::var(var).map_err(|_| {
                AppError(format!(
                    "--password-env {var}: that environment variable is not set"
                ))
            })?),
            Some((None, Some(file))) => Some(read_password_file(file, "--password-file")?),
            _ => None,
        };
        let cache_dir = a.cache_dir.clone().or_else(Cache::default_dir);
        Ok(Config {
            paths: input.map(|i| i.paths.clone()).unwrap_or_default(),
            key: input.and_then(|i| i.key.clone()),
            intermediates: a.intermediates.clone(),
            roots: a.roots.clone(),
            default_roots: !a.no_default_roots,
            cache: cache_dir.map(Cache::new),
            aia: AiaConfig {
                offline: a.offline,
                max_fetches: a.max_fetches,
                ..AiaConfig::default()
            },
            http: HttpLimits {
                timeout: Duration::from_secs(a.timeout.max(1)),
                ..HttpLimits::default()
            },
            password,
            host: a.host.clone(),
            warn_days: a.warn_days,
            role: match a.role {
                crate::cli::RoleArg::Server => crate::chain::Role::Server,
                crate::cli::RoleArg::Client => crate::chain::Role::Client,
            },
            json: a.json,
            now,
            dane: None,
            accept_dane_break: false,
        })
    }
}

fn read_password_file(file: &Path, flag: &str) -> Result<String, AppError> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| AppError(format!("{flag} {}: {e}", file.display())))?;
    Ok(text.lines().next().unwrap_or_default().to_string())
}

/// Passwords for PFX files: the configured one, else a prompt on a terminal. Files are read
/// on several threads; `prompting` keeps two prompts from sharing the terminal.
struct Passwords {
    configured: Option<String>,
    interactive: bool,
    prompting: std::sync::Mutex<()>,
}

impl PasswordSource for Passwords {
    fn configured(&self) -> Option<String> {
        self.configured.clone()
    }

    fn prompt(&self, path: &Path) -> Option<String> {
        if !self.interactive {
            return None;
        }
        let _turn = self.prompting.lock().unwrap_or_else(|e| e.into_inner());
        rpassword::prompt_password(format!("Password for {}: ", path.display())).ok()
    }
}

/// Runs the parsed command line and returns the exit status.
pub fn run(cli: Cli) -> Result<ExitCode, AppError> {
    match cli.command {
        Command::Inspect(args) => {
            let mut config = Config::from_args(Some(&args.input), &args.chain)?;
            config.dane = dane::records(&args.dane, config.host.as_deref())?;
            match deployed::Source::from_args(&args.deployed) {
                Some(source) => deployed::inspect(&config, &source).map(Exit::code),
                None => inspect(&config).map(Exit::code),
            }
        }
        Command::Repair(args) => {
            let mut config = Config::from_args(Some(&args.input), &args.chain)?;
            config.dane = dane::records(&args.dane, config.host.as_deref())?;
            config.accept_dane_break = args.accept_dane_break;
            if let Some(source) = deployed::Source::from_args(&args.deployed) {
                return deployed_repair::repair(&config, &args, &source).map(Exit::code);
            }
            if args.reload.reload {
                return Err(AppError(
                    "--reload needs --postfix, --exim or --dovecot (a server repaired in place)"
                        .into(),
                ));
            }
            repair::repair(&config, &args).map(Exit::code)
        }
        Command::Probe(args) => probe::probe(&args),
        Command::Generate(args) => generate::generate(&args.what).map(Exit::code),
    }
}

/// Loads the command-line inputs (one group) and the `--key` file. Directories in `skip_dirs`
/// are not entered below a named directory (repair's own output is not an input).
fn analyse_files(config: &Config, skip_dirs: &[PathBuf]) -> Result<Analysis, AppError> {
    let passwords = Passwords {
        configured: config.password.clone(),
        interactive: std::io::stdin().is_terminal() && std::io::stderr().is_terminal(),
        prompting: std::sync::Mutex::new(()),
    };
    let inputs = load::load_paths_with(
        &config.paths,
        skip_dirs,
        &passwords,
        &progress::FileBar::default(),
    );
    let mut problems = inputs.problems.clone();
    let explicit_keys = match &config.key {
        Some(path) => {
            let loaded = load::load_paths(std::slice::from_ref(path), &passwords);
            if loaded.keys.is_empty() {
                // Say why (missing, unreadable, encrypted, damaged), and stop: carrying on
                // without the key asked for could pair the leaf with another one.
                let why = loaded
                    .problems
                    .iter()
                    .map(|p| p.message.as_str())
                    .collect::<Vec<_>>()
                    .join("; ");
                return Err(AppError(format!(
                    "--key {}: {}",
                    path.display(),
                    if why.is_empty() {
                        "no private key found"
                    } else {
                        &why
                    }
                )));
            }
            problems.extend(loaded.problems);
            loaded.keys
        }
        None => Vec::new(),
    };
    Ok(analyse::analyse(
        config,
        std::slice::from_ref(&inputs),
        std::slice::from_ref(&config.host),
        &explicit_keys,
        problems,
    ))
}

fn inspect(config: &Config) -> Result<Exit, AppError> {
    let analysis = analyse_files(config, &[])?;
    let mut exit = analysis.exit_for_load();
    // Leaves are diagnosed, and their report entries made (and, for JSON, serialised), a chunk
    // at a time on all cores, as they are printed: memory does not grow with the findings.
    let n = analysis.len();
    let any_finding = AtomicBool::new(false);
    // Leaves below this were diagnosed for the report.
    let reported = AtomicUsize::new(0);
    let chunk = |start: usize| {
        let end = n.min(start + RESULT_CHUNK);
        reported.store(end, Ordering::Relaxed);
        (start..end)
            .into_par_iter()
            .map(|i| {
                let case = analysis.case(i);
                if case.status != Status::Ok {
                    any_finding.store(true, Ordering::Relaxed);
                }
                let result = case.result(&analysis.pool);
                if config.json {
                    Entry::Json(report::render_result(&result))
                } else {
                    Entry::Result(Box::new(result))
                }
            })
            .collect::<Vec<_>>()
    };
    // The next chunk is made while this one is written. The maker stops when the printing
    // does (its receiver is gone).
    let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<Entry>>(1);
    std::thread::scope(|scope| {
        scope.spawn(move || {
            for start in (0..n).step_by(RESULT_CHUNK) {
                if tx.send(chunk(start)).is_err() {
                    break;
                }
            }
        });
        emit_report(
            config,
            &analysis,
            rx.into_iter().flatten(),
            Vec::new(),
            false,
        )
    })?;
    // A reader that stops early (`| head`) ends the printing, not the audit: the exit status
    // still covers every leaf.
    let rest = reported.load(Ordering::Relaxed)..n;
    if !rest.is_empty()
        && rest
            .into_par_iter()
            .any(|i| analysis.case(i).status != Status::Ok)
    {
        any_finding.store(true, Ordering::Relaxed);
    }
    if any_finding.load(Ordering::Relaxed) {
        exit = exit.merge(Exit::Findings);
    }
    // The process ends next: freeing a fleet's certificates one allocation at a time would
    // only add time (half a second for 100,000).
    std::mem::forget(analysis);
    Ok(exit)
}

/// How many report entries `inspect` makes at once: enough to keep every core busy, few
/// enough that memory does not grow with the fleet.
const RESULT_CHUNK: usize = 256;

/// One leaf's report entry: the result, or (for `--json`) its JSON already rendered on
/// another thread.
enum Entry {
    Result(Box<LeafResult>),
    Json(std::io::Result<Vec<u8>>),
}

/// Prints the report of `results` (one per case of `analysis`, in order) with the file
/// problems; `more_errors` (files that could not be written) follow the input problems in the
/// JSON `errors` list.
fn emit_report(
    config: &Config,
    analysis: &Analysis,
    results: impl Iterator<Item = Entry>,
    more_errors: Vec<FileError>,
    check: bool,
) -> Result<(), AppError> {
    print_problems(analysis);
    let mut errors = file_errors(analysis);
    errors.extend(more_errors);
    if analysis.is_empty() && analysis.problems.is_empty() {
        let message = format!(
            "no leaf certificate among the inputs ({} certificates read)",
            analysis.input_certs
        );
        say(&message);
        errors.push(FileError {
            path: paths_label(&config.paths),
            message,
            fatal: true,
        });
    }
    finish_output(if config.json {
        // JSON has no colours: straight to stdout, buffered (a fleet's report is megabytes).
        let rendered = results.map(|entry| match entry {
            Entry::Json(json) => json,
            Entry::Result(result) => report::render_result(&result),
        });
        let mut out = std::io::BufWriter::with_capacity(1 << 16, std::io::stdout().lock());
        report::print_json_rendered(rendered, &errors, &mut out).and_then(|_| out.flush())
    } else {
        // anstream drops the colours when stdout is not a terminal or NO_COLOR is set; it
        // writes in small pieces, hence the buffer under it.
        let choice = anstream::AutoStream::choice(&std::io::stdout());
        let buffered: Box<dyn Write> = Box::new(std::io::BufWriter::with_capacity(
            1 << 16,
            std::io::stdout().lock(),
        ));
        let mut out = anstream::AutoStream::new(buffered, choice);
        // Entries are rendered as JSON only when --json is given.
        let results = results.filter_map(|entry| match entry {
            Entry::Result(result) => Some(*result),
            Entry::Json(_) => None,
        });
        report::print_human_results(results, check, &mut out).and_then(|_| out.flush())
    })
}

/// The inputs as one comma-separated label.
fn paths_label(paths: &[PathBuf]) -> String {
    let shown: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
    shown.join(", ")
}

/// File problems for the JSON `errors` list.
fn file_errors(analysis: &Analysis) -> Vec<FileError> {
    analysis
        .problems
        .iter()
        .map(|p| FileError {
            path: p.path.display().to_string(),
            message: p.message.clone(),
            fatal: p.fatal,
        })
        .collect()
}

/// File problems go to stderr, one line each, naming the file.
fn print_problems(analysis: &Analysis) {
    for p in &analysis.problems {
        say(&p.to_string());
    }
}

/// One message on stderr, one line, `chainfix: ` first. File names and tool output in it are
/// data: line ends, controls and bidirectional formatting are escaped, so a crafted file name
/// can neither rewrite the terminal nor forge a line of its own (a tool's multi-line output
/// shows its line ends as `\n`).
pub fn say(message: &str) {
    eprintln!("chainfix: {}", crate::render::plain::line(message));
}

/// A closed pipe (`| head`) is not an error; anything else writing stdout is.
fn finish_output(result: std::io::Result<()>) -> Result<(), AppError> {
    match result {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(AppError(format!("writing the report failed: {e}"))),
    }
}
