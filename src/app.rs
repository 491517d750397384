//! Application layer: validates the command line into a [`Config`], wires the stages
//! (load -> pool -> chain -> diagnose -> fetch -> emit/report) for each subcommand, and is the
//! only place that reads the clock, the environment, or the terminal.

use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::cert::Certificate;
use crate::chain::{self, Budget, Choice, Link, SigCache};
use crate::cli::{Cli, Command, CommonArgs, RepairArgs};
use crate::diagnose::{self, Case, Finding, KeyStatus, Status};
use crate::emit::{self, EmitOptions, Material, Targets};
use crate::exit::Exit;
use crate::fetch::{Aia, AiaConfig, Cache, Fetcher, HttpLimits, LazyHttpFetcher};
use crate::load::{self, Located, LocatedKey, PasswordSource};
use crate::pool::{Id, Pool, Source};
use crate::report::{
    self, Alternative, CertView, ChainItem, FileError, LeafResult, Report, WrittenFile,
};
use crate::write;

/// A failure to do the work at all (as opposed to findings about certificates).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct AppError(pub String);

/// Validated settings shared by `inspect` and `repair`.
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
}

impl Config {
    fn from_args(a: &CommonArgs) -> Result<Config, AppError> {
        let now = match &a.at {
            Some(s) => {
                time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
                    .map_err(|e| AppError(format!("--at {s}: not an RFC 3339 time ({e})")))?
                    .unix_timestamp()
            }
            None => time::OffsetDateTime::now_utc().unix_timestamp(),
        };
        let password = match (&a.password_env, &a.password_file) {
            (Some(var), _) => Some(std::env::var(var).map_err(|_| {
                AppError(format!(
                    "--password-env {var}: that environment variable is not set"
                ))
            })?),
            (None, Some(file)) => Some(read_password_file(file, "--password-file")?),
            (None, None) => None,
        };
        let cache_dir = a.cache_dir.clone().or_else(Cache::default_dir);
        Ok(Config {
            paths: a.paths.clone(),
            key: a.key.clone(),
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
            json: a.json,
            now,
        })
    }
}

fn read_password_file(file: &Path, flag: &str) -> Result<String, AppError> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| AppError(format!("{flag} {}: {e}", file.display())))?;
    Ok(text.lines().next().unwrap_or_default().to_string())
}

/// Passwords for PFX files: the configured one, else a prompt on a terminal.
struct Passwords {
    configured: Option<String>,
    interactive: bool,
}

impl PasswordSource for Passwords {
    fn configured(&self) -> Option<String> {
        self.configured.clone()
    }

    fn prompt(&self, path: &Path) -> Option<String> {
        if !self.interactive {
            return None;
        }
        rpassword::prompt_password(format!("Password for {}: ", path.display())).ok()
    }
}

/// Runs the parsed command line and returns the exit status.
pub fn run(cli: Cli) -> Result<Exit, AppError> {
    match cli.command {
        Command::Inspect(args) => inspect(&Config::from_args(&args.common)?),
        Command::Repair(args) => repair(&Config::from_args(&args.common)?, &args),
    }
}

fn inspect(config: &Config) -> Result<Exit, AppError> {
    let analysis = analyse(config)?;
    let mut exit = analysis.exit_for_load();
    let mut results = Vec::new();
    for case in &analysis.cases {
        if case.status != Status::Ok {
            exit = exit.merge(Exit::Findings);
        }
        results.push(case.result.clone());
    }
    emit_report(config, &analysis, results, false)?;
    Ok(exit)
}

fn repair(config: &Config, args: &RepairArgs) -> Result<Exit, AppError> {
    let options = emit_options(args)?;
    let analysis = analyse(config)?;
    let mut exit = analysis.exit_for_load();
    let multiple = analysis.cases.len() > 1;
    let names = output_names(&analysis);
    let mut results = Vec::new();
    for (case, name) in analysis.cases.iter().zip(names) {
        let mut result = case.result.clone();
        if case.status == Status::Broken {
            exit = exit.merge(Exit::Findings);
        }
        match case.material(&analysis.pool, args.include_root) {
            Err(why) => {
                exit = exit.merge(Exit::Findings);
                result.not_written = Some(why);
                result.changed = Some(false);
            }
            Ok(material) => {
                let (dir, leaf_options) = if multiple {
                    let mut o = options.clone();
                    o.install_dir = o.install_dir.join(&name);
                    (args.out.join(&name), o)
                } else {
                    (args.out.clone(), options.clone())
                };
                let (files, failed) = write_outputs(&dir, &material, &leaf_options, args.check);
                if failed {
                    exit = exit.merge(Exit::Failure);
                }
                result.changed = Some(files.iter().any(|f| f.action.changed()));
                result.files = Some(files);
            }
        }
        results.push(result);
    }
    emit_report(config, &analysis, results, args.check)?;
    Ok(exit)
}

/// Validates the emit flags; `--install-dir` defaults to the absolute `--out` directory.
fn emit_options(args: &RepairArgs) -> Result<EmitOptions, AppError> {
    let targets = Targets::parse(&args.emit).map_err(|e| AppError(format!("--emit: {e}")))?;
    let pfx_password = match (&args.pfx_password_env, &args.pfx_password_file) {
        (Some(var), _) => Some(std::env::var(var).map_err(|_| {
            AppError(format!(
                "--pfx-password-env {var}: that environment variable is not set"
            ))
        })?),
        (None, Some(file)) => Some(read_password_file(file, "--pfx-password-file")?),
        (None, None) => None,
    };
    let install_dir = match &args.install_dir {
        // MTAs resolve relative paths from their own working directories (Postfix: the queue
        // directory), so a relative path in a snippet would point at the wrong file.
        Some(dir) if !dir.is_absolute() => {
            return Err(AppError(format!(
                "--install-dir {}: must be an absolute path (it is written into MTA configuration)",
                dir.display()
            )))
        }
        Some(dir) => dir.clone(),
        None => std::path::absolute(&args.out)
            .map_err(|e| AppError(format!("--out {}: {e}", args.out.display())))?,
    };
    Ok(EmitOptions {
        install_dir,
        targets,
        postfix_legacy: args.postfix_legacy,
        postfix_single_file: args.postfix_single_file,
        pfx_password,
        pfx_legacy: args.pfx_legacy,
        trust_private_root: args.trust_private_root,
        exim_group: args.exim_group.clone(),
    })
}

/// Writes (or with `check`, plans) every file; reports failures on stderr.
fn write_outputs(
    dir: &Path,
    material: &Material<'_>,
    options: &EmitOptions,
    check: bool,
) -> (Vec<WrittenFile>, bool) {
    let mut out = Vec::new();
    let mut failed = false;
    for file in emit::all_files(material, options) {
        let path = dir.join(&file.rel);
        if !check {
            if let Some(parent) = path.parent() {
                if let Err(e) = std::fs::create_dir_all(parent) {
                    eprintln!(
                        "chainfix: {}: cannot create directory: {e}",
                        parent.display()
                    );
                    failed = true;
                    continue;
                }
            }
        }
        let target = write::Target {
            contents: &file.contents,
            mode: file.mode,
            gid: file.group.as_deref().and_then(write::group_id),
            same_content: file.same_content.as_deref(),
        };
        let result = if check {
            Ok(write::plan_target(&path, &target))
        } else {
            write::write_target(&path, &target)
        };
        match result {
            Ok(action) => out.push(WrittenFile {
                path: path.display().to_string(),
                action,
                mode: format!("{:04o}", file.mode.bits()),
            }),
            Err(e) => {
                eprintln!("chainfix: {}: cannot write: {e}", path.display());
                failed = true;
            }
        }
    }
    (out, failed)
}

/// One output subdirectory name per leaf (used when there are several): the leaf's name,
/// made file-name safe, with a fingerprint prefix added when two leaves share a name.
fn output_names(analysis: &Analysis) -> Vec<String> {
    let names: Vec<String> = analysis
        .cases
        .iter()
        .map(|c| emit::file_safe(&analysis.pool.cert(c.leaf).short_name()))
        .collect();
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for n in &names {
        *counts.entry(n).or_default() += 1;
    }
    analysis
        .cases
        .iter()
        .zip(&names)
        .map(|(c, n)| {
            if counts[n.as_str()] > 1 {
                let sha = analysis.pool.cert(c.leaf).sha256_hex();
                format!("{n}-{}", &sha[..8])
            } else {
                n.clone()
            }
        })
        .collect()
}

fn emit_report(
    config: &Config,
    analysis: &Analysis,
    results: Vec<LeafResult>,
    check: bool,
) -> Result<(), AppError> {
    for p in &analysis.problems {
        eprintln!("chainfix: {p}");
    }
    if analysis.cases.is_empty() && analysis.problems.is_empty() {
        eprintln!(
            "chainfix: no leaf certificate among the inputs ({} certificates read)",
            analysis.input_certs
        );
    }
    let report = Report {
        schema: report::SCHEMA,
        results,
        errors: analysis
            .problems
            .iter()
            .map(|p| FileError {
                path: p.path.display().to_string(),
                message: p.message.clone(),
                fatal: p.fatal,
            })
            .collect(),
    };
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let printed = if config.json {
        report::print_json(&report, &mut out)
    } else {
        report::print_human(&report, check, &mut out)
    };
    match printed.and_then(|_| out.flush()) {
        Ok(()) => Ok(()),
        // A closed pipe (`| head`) is not an error.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(AppError(format!("writing the report failed: {e}"))),
    }
}

/// The analysed inputs: the pool and one case per leaf.
struct Analysis {
    pool: Pool,
    cases: Vec<LeafCase>,
    problems: Vec<load::FileProblem>,
    input_certs: usize,
}

impl Analysis {
    fn exit_for_load(&self) -> Exit {
        let failed = self.problems.iter().any(|p| p.fatal) || self.cases.is_empty();
        if failed {
            Exit::Failure
        } else {
            Exit::Ok
        }
    }
}

struct LeafCase {
    leaf: Id,
    choice: Choice,
    key: KeyStatus,
    status: Status,
    result: LeafResult,
}

impl LeafCase {
    /// The chain to write, or why none can be written.
    fn material<'a>(&'a self, pool: &'a Pool, include_root: bool) -> Result<Material<'a>, String> {
        let root_is_public = |c: &Certificate| {
            webpki_root_certs::TLS_SERVER_ROOT_CERTS
                .iter()
                .any(|d| d.as_ref() == c.der.as_slice())
        };
        let best = &self.choice.best;
        let certs: Vec<&Certificate> = best.ids.iter().map(|&id| pool.cert(id).as_ref()).collect();
        let last = certs[certs.len() - 1];
        let has_root = best.ends_at_root(pool);
        if !has_root && !best.anchored {
            return Err(if certs.len() == 1 && last.is_self_issued() {
                "the certificate is self-signed; there is no chain to write".into()
            } else {
                "the chain is incomplete (an issuer is missing); writing it would deploy a broken chain"
                    .into()
            });
        }
        let (intermediates, root) = if has_root {
            (certs[1..certs.len() - 1].to_vec(), Some(last))
        } else {
            (certs[1..].to_vec(), None)
        };
        Ok(Material {
            leaf: certs[0],
            intermediates,
            root,
            root_is_public: root.is_some_and(root_is_public),
            key: match &self.key {
                KeyStatus::Matched(k) => Some(&k.key),
                _ => None,
            },
            include_root,
            problems: &self.result.problems,
        })
    }
}

fn analyse(config: &Config) -> Result<Analysis, AppError> {
    let passwords = Passwords {
        configured: config.password.clone(),
        interactive: std::io::stdin().is_terminal() && std::io::stderr().is_terminal(),
    };
    let inputs = load::load_paths(&config.paths, &passwords);
    let mut problems = inputs.problems.clone();

    let explicit_keys = match &config.key {
        Some(path) => {
            let loaded = load::load_paths(std::slice::from_ref(path), &passwords);
            problems.extend(loaded.problems);
            if loaded.keys.is_empty() {
                return Err(AppError(format!(
                    "--key {}: no private key found",
                    path.display()
                )));
            }
            loaded.keys
        }
        None => Vec::new(),
    };

    let mut pool = Pool::new();
    for c in &inputs.certs {
        pool.add(
            c.cert.clone(),
            Source::Input {
                path: c.path.clone(),
                index: c.index,
            },
        );
    }
    let extra = load::load_paths(&config.intermediates, &load::NoPassword);
    problems.extend(extra.problems);
    for c in extra.certs {
        pool.add(c.cert, Source::Intermediates { path: c.path });
    }
    if let Some(cache) = &config.cache {
        for (url, certs) in cache.entries() {
            for c in certs {
                pool.add(c, Source::Cache { url: url.clone() });
            }
        }
    }
    let roots = load::load_paths(&config.roots, &load::NoPassword);
    problems.extend(roots.problems);
    for c in roots.certs {
        pool.add_anchor(c.cert, Source::Roots { path: c.path });
    }
    if config.default_roots {
        for der in webpki_root_certs::TLS_SERVER_ROOT_CERTS {
            if let Ok(c) = Certificate::from_der(der.as_ref()) {
                pool.add_anchor(Arc::new(c), Source::MozillaRoots);
            }
        }
    }

    let leaves = find_leaves(&inputs.certs);
    let all_leaves: Vec<&Certificate> = leaves.iter().map(|l| l.cert.as_ref()).collect();

    let fetcher = LazyHttpFetcher::new(config.http.clone());
    let fetcher_ref: Option<&dyn Fetcher> = if config.aia.offline {
        None
    } else {
        Some(&fetcher)
    };
    let mut aia = Aia::new(fetcher_ref, config.cache.as_ref(), config.aia.clone());
    let budget = Budget::default();
    let mut sigs = SigCache::default();

    let mut built = Vec::new();
    for located in &leaves {
        let leaf = pool.add(
            located.cert.clone(),
            Source::Input {
                path: located.path.clone(),
                index: located.index,
            },
        );
        let outcome = chain::build(leaf, &mut pool, &mut aia, &budget, &mut sigs);
        built.push((located, leaf, outcome));
    }

    let mut by_file: HashMap<&Path, Vec<&Located>> = HashMap::new();
    for c in &inputs.certs {
        by_file.entry(c.path.as_path()).or_default().push(c);
    }
    let mut cases = Vec::new();
    for (located, leaf, outcome) in built {
        let Some(choice) = chain::choose(&outcome, &pool, config.now) else {
            continue;
        };
        let presented: Vec<Id> = by_file
            .get(located.path.as_path())
            .map(|certs| {
                certs
                    .iter()
                    .filter_map(|c| pool.find(&c.cert.sha256))
                    .collect()
            })
            .unwrap_or_default();
        let key = diagnose::key_status(
            &located.cert,
            &located.path,
            &explicit_keys,
            &inputs.keys,
            &all_leaves,
        );
        let case = Case {
            pool: &pool,
            leaf,
            presented: &presented,
            outcome: &outcome,
            choice: &choice,
            aia: Some(&aia),
            key: &key,
            budget: &budget,
            now: config.now,
            warn_days: config.warn_days,
            host: config.host.as_deref(),
        };
        let problems = diagnose::diagnose(&case);
        let status = Status::of(&problems);
        let result = leaf_result(&pool, located, &presented, &choice, &key, problems, status);
        cases.push(LeafCase {
            leaf,
            choice,
            key,
            status,
            result,
        });
    }
    Ok(Analysis {
        pool,
        cases,
        problems,
        input_certs: inputs.certs.len(),
    })
}

/// Leaves: input certificates that are not CAs and that no other input names as its issuer.
/// A leaf found in several files is reported once, for the file presenting the most
/// certificates (usually the full-chain file the server is configured with).
fn find_leaves(certs: &[Located]) -> Vec<Located> {
    // Issuer name -> fingerprints of the input certificates that name it.
    let mut issued: HashMap<&str, Vec<[u8; 32]>> = HashMap::new();
    for c in certs {
        issued
            .entry(c.cert.issuer_key.as_str())
            .or_default()
            .push(c.cert.sha256);
    }
    let named_as_issuer = |c: &Certificate| {
        issued
            .get(c.subject_key.as_str())
            .is_some_and(|children| children.iter().any(|sha| *sha != c.sha256))
    };
    let mut per_file: HashMap<&Path, usize> = HashMap::new();
    for c in certs {
        *per_file.entry(&c.path).or_default() += 1;
    }
    let mut best: Vec<&Located> = Vec::new();
    let mut slot_of: HashMap<[u8; 32], usize> = HashMap::new();
    for c in certs {
        if c.cert.is_ca || named_as_issuer(&c.cert) {
            continue;
        }
        match slot_of.get(&c.cert.sha256) {
            Some(&i) => {
                if per_file[c.path.as_path()] > per_file[best[i].path.as_path()] {
                    best[i] = c;
                }
            }
            None => {
                slot_of.insert(c.cert.sha256, best.len());
                best.push(c);
            }
        }
    }
    best.into_iter().cloned().collect()
}

#[allow(clippy::too_many_arguments)]
fn leaf_result(
    pool: &Pool,
    located: &Located,
    presented: &[Id],
    choice: &Choice,
    key: &KeyStatus,
    problems: Vec<Finding>,
    status: Status,
) -> LeafResult {
    let best = &choice.best;
    let n = best.ids.len();
    let ends_at_root = best.ends_at_root(pool);
    let chain = best
        .ids
        .iter()
        .enumerate()
        .map(|(i, &id)| {
            let role = if i == 0 {
                "leaf"
            } else if i == n - 1 && ends_at_root {
                "root"
            } else {
                "intermediate"
            };
            let signature = best.links.get(i).map(|l| match l {
                Link::Verified => "verified",
                Link::Unverifiable(_) => "unverifiable",
            });
            ChainItem::of(pool.get(id), role, signature)
        })
        .collect();
    let alternatives = choice
        .rejected
        .iter()
        .map(|r| Alternative {
            chain: r
                .path
                .ids
                .iter()
                .map(|&id| pool.cert(id).short_name())
                .collect(),
            reason: r.reason.clone(),
        })
        .collect();
    LeafResult {
        file: located.path.display().to_string(),
        leaf: CertView::of(&located.cert),
        status,
        presented: presented
            .iter()
            .map(|&id| CertView::of(pool.cert(id)))
            .collect(),
        chain,
        problems,
        alternatives,
        key: match key {
            KeyStatus::Matched(LocatedKey { path, .. }) => Some(path.display().to_string()),
            _ => None,
        },
        changed: None,
        files: None,
        not_written: None,
    }
}
