//! `chainfix probe`: live servers in, the same analysis as `inspect` out. Targets are probed
//! concurrently (bounded by `--concurrency`); results keep the order the targets were given.
//! Each served chain is its own input group, checked against the probed host name unless
//! `--host` says otherwise, and optionally compared with files on disk (`--compare`).

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::analyse::{self, Analysis};
use super::{print_problems, AppError, Config};
use crate::cert::{format_date, Certificate};
use crate::cli::{ProbeArgs, StartTlsArg};
use crate::diagnose::{self, Finding, Status};
use crate::exit::{Exit, Nagios};
use crate::load::{self, Loaded, Located};
use crate::probe::{self, ProbeError, ProbeOptions, Served, StartTls, Target};
use crate::report::{self, CertView, LeafResult, Report, TlsView};

/// Most targets in one run (a budget on `--targets-file`).
const MAX_TARGETS: usize = 10_000;

/// Runs the probe; with `--nagios` every failure to run becomes UNKNOWN (3) on stdout.
pub(super) fn probe(args: &ProbeArgs) -> Result<ExitCode, AppError> {
    let outcome = Config::from_args(None, &args.chain).and_then(|config| run(&config, args));
    match outcome {
        Ok(code) => Ok(code),
        Err(e) if args.nagios => {
            println!("CHAINFIX UNKNOWN - {e}");
            Ok(Nagios::Unknown.code())
        }
        Err(e) => Err(e),
    }
}

/// One probe: a server to connect to, with what to send and check.
pub(super) struct Job {
    pub target: Target,
    /// How the target is named in the report.
    pub label: String,
    /// SNI, in place of `--servername` (`--domain`: the MX host name).
    pub sni: Option<String>,
    /// The name the leaf must carry (`--host`, the target host, or the MX host name).
    pub check_name: Option<String>,
    /// The TLSA records in force for this server (`--domain`, where DANE applies).
    pub dane: Option<Arc<crate::dane::RecordSet>>,
    /// `--domain`: the domain and MX host (indices) this address belongs to.
    pub mx: Option<(usize, usize)>,
    pub address: Option<std::net::IpAddr>,
}

fn run(config: &Config, args: &ProbeArgs) -> Result<ExitCode, AppError> {
    let targets = targets(args)?;
    for (flag, value) in [("--helo", &args.helo), ("--servername", &args.servername)] {
        if let Some(v) = value {
            check_name(flag, v)?;
        }
    }
    let disk = match args.compare.is_empty() {
        true => None,
        false => Some(load_compare(&args.compare)?),
    };
    let options = ProbeOptions {
        starttls: args.starttls.map(|s| match s {
            StartTlsArg::Smtp => StartTls::Smtp,
            StartTlsArg::Imap => StartTls::Imap,
            StartTlsArg::Pop3 => StartTls::Pop3,
            StartTlsArg::None => StartTls::None,
        }),
        servername: args.servername.clone(),
        helo: args.helo.clone().unwrap_or_else(probe::local_hostname),
        timeout: Duration::from_secs(args.chain.timeout.max(1)),
    };
    // Before any probe: an unusable baseline or --sts-roots file stops the run (exit 2).
    let recorded = super::baseline::read(args.baseline.as_deref())?;
    let sts_roots = super::sts::extra_roots(args.sts_roots.as_deref())?;
    let mut discoveries = super::domain::discover_all(args, options.timeout)?;
    let sts_port = args.sts_port.unwrap_or(443);
    let fetches = super::sts::fetch_all(
        &discoveries,
        sts_port,
        &sts_roots,
        options.timeout,
        config.now,
    );
    let sts_records: Vec<_> = discoveries.iter().map(|d| d.sts.record.clone()).collect();
    let smtp_port = args.smtp_port.unwrap_or(25);
    let mut jobs: Vec<Job> = targets
        .into_iter()
        .map(|target| Job {
            label: target.label(),
            check_name: config
                .host
                .clone()
                .or_else(|| (!target.is_ip()).then(|| target.host.clone())),
            target,
            sni: None,
            dane: None,
            mx: None,
            address: None,
        })
        .collect();
    // Results keep the job order: plain targets, then each domain's addresses.
    jobs.extend(super::domain::jobs(&mut discoveries, smtp_port));
    let outcomes = probe_all(&jobs, &options, args.concurrency.max(1));

    let mut groups = Vec::new();
    let mut hosts = Vec::new();
    let mut group_of = Vec::new();
    let mut parse_failures: Vec<Option<Finding>> = Vec::new();
    for (job, outcome) in jobs.iter().zip(&outcomes) {
        let (group, bad) = match outcome {
            Ok(served) => served_group(&job.label, served),
            Err(_) => (Loaded::default(), None),
        };
        group_of.push(groups.len());
        groups.push(group);
        parse_failures.push(bad);
        hosts.push(job.check_name.clone());
    }
    let mut analysis = analyse::analyse(config, &groups, &hosts, &[], Vec::new());
    analysis.set_group_dane(super::domain::group_dane(&jobs));
    // A server presents its leaf: one that sends only CA certificates has none to judge.
    analysis.drop_ca_subjects();

    let mut results = Vec::new();
    for (i, (job, outcome)) in jobs.iter().zip(&outcomes).enumerate() {
        let target = &job.target;
        let mut result = match outcome {
            Err(e) => failed_result(target, diagnose::probe_failure(e)),
            Ok(_) => match served_result(&analysis, group_of[i]) {
                Some(r) => r,
                None => {
                    let mut r = failed_result(target, no_leaf_finding(parse_failures[i].take()));
                    // Show what was sent instead of a leaf.
                    r.presented = groups[group_of[i]]
                        .certs
                        .iter()
                        .map(|c| CertView::of(&c.cert))
                        .collect();
                    r
                }
            },
        };
        result.target = Some(job.label.clone());
        result.file = job.label.clone();
        if let Ok(served) = outcome {
            result.tls = Some(TlsView {
                version: served.captured.version.clone(),
                cipher: served.captured.cipher.clone(),
                method: served.captured.method.as_str(),
                starttls: served.starttls,
            });
            if let (None, true, Some(leaf)) = (
                &job.check_name,
                target.is_ip(),
                first_leaf(&analysis, group_of[i]),
            ) {
                result
                    .problems
                    .push(diagnose::hostname_not_checked(leaf, &target.label()));
            }
            if let (Some(disk), Some(leaf)) = (&disk, first_leaf(&analysis, group_of[i])) {
                if let Some(f) = compare(&analysis, group_of[i], leaf, disk) {
                    result.problems.insert(0, f);
                    result.status = Status::of(&result.problems);
                }
            }
        }
        results.push(result);
    }
    let mut domains = if discoveries.is_empty() {
        Vec::new()
    } else {
        let (resolver, trusted) = super::domain::resolver_label(args, options.timeout);
        super::domain::assemble(
            discoveries,
            &jobs,
            &outcomes,
            &mut results,
            &resolver,
            trusted,
            smtp_port,
        )
    };
    super::sts::apply(&mut domains, &sts_records, &fetches, &mut results, sts_port);
    // The changes join the findings before any status is computed; the file is written after
    // the report (with --nagios before it: a failure to write is then UNKNOWN, alone).
    let to_write = match &args.baseline {
        Some(path) => {
            let seen = super::baseline::seen(&domains, &analysis, &group_of, &results);
            super::baseline::report_changes(
                recorded.as_ref(),
                &seen,
                args.update_baseline,
                &mut domains,
                &mut results,
            )
            .map(|state| (path, state))
        }
        None => None,
    };
    if let (true, Some((path, state))) = (args.nagios, &to_write) {
        super::baseline::write(path, state)?;
    }
    let code = print(config, args, &analysis, results, domains)?;
    if let (false, Some((path, state))) = (args.nagios, &to_write) {
        super::baseline::write(path, state)?;
    }
    Ok(code)
}

/// A name sent on the wire must be one token: no spaces, no line breaks (which would let a
/// value smuggle SMTP commands such as MAIL FROM into the session).
fn check_name(flag: &str, value: &str) -> Result<(), AppError> {
    let ok = !value.is_empty()
        && value.len() <= 255
        && value.chars().all(|c| c.is_ascii_graphic() || !c.is_ascii());
    if ok {
        Ok(())
    } else {
        Err(AppError(format!(
            "{flag} {value:?}: must be a single host name, without spaces or control characters"
        )))
    }
}

/// Targets from the command line, then `--targets-file`; duplicates kept (each is a probe).
fn targets(args: &ProbeArgs) -> Result<Vec<Target>, AppError> {
    let mut raw: Vec<(String, String)> = args
        .targets
        .iter()
        .map(|t| (t.clone(), format!("target {t:?}")))
        .collect();
    if let Some(file) = &args.targets_file {
        let text = std::fs::read_to_string(file)
            .map_err(|e| AppError(format!("--targets-file {}: {e}", file.display())))?;
        for (n, line) in text.lines().enumerate() {
            let line = line.split('#').next().unwrap_or_default().trim();
            if !line.is_empty() {
                raw.push((
                    line.to_string(),
                    format!("{} line {}", file.display(), n + 1),
                ));
            }
        }
    }
    if raw.is_empty() && args.domain.is_empty() {
        return Err(AppError(
            "no targets: give HOST[:PORT], --targets-file or --domain".into(),
        ));
    }
    if raw.len() > MAX_TARGETS {
        return Err(AppError(format!("more than {MAX_TARGETS} targets")));
    }
    raw.iter()
        .map(|(t, at)| Target::parse(t).map_err(|e| AppError(format!("{at}: {e}"))))
        .collect()
}

/// Probes every job with at most `concurrency` at a time; results in job order.
fn probe_all(
    jobs: &[Job],
    options: &ProbeOptions,
    concurrency: usize,
) -> Vec<Result<Served, ProbeError>> {
    let next = AtomicUsize::new(0);
    let slots: Vec<Mutex<Option<Result<Served, ProbeError>>>> =
        jobs.iter().map(|_| Mutex::new(None)).collect();
    std::thread::scope(|scope| {
        for _ in 0..concurrency.min(jobs.len()) {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(job) = jobs.get(i) else { break };
                let outcome = match &job.sni {
                    Some(sni) => {
                        let mut opts = options.clone();
                        opts.servername = Some(sni.clone());
                        probe::probe(&job.target, &opts)
                    }
                    None => probe::probe(&job.target, options),
                };
                if let Ok(mut slot) = slots[i].lock() {
                    *slot = Some(outcome);
                }
            });
        }
    });
    slots
        .into_iter()
        .zip(jobs)
        .map(|(slot, j)| {
            slot.into_inner()
                .ok()
                .flatten()
                .unwrap_or_else(|| Err(ProbeError::Resolve(j.target.host.clone())))
        })
        .collect()
}

/// The served certificates as an input group named after the target. A certificate that does
/// not parse comes back as a finding.
fn served_group(label: &str, served: &Served) -> (Loaded, Option<Finding>) {
    let mut loaded = Loaded::default();
    let mut bad = None;
    for (index, der) in served.captured.certs.iter().enumerate() {
        match Certificate::from_der(der) {
            Ok(cert) => loaded.certs.push(Located {
                cert: Arc::new(cert),
                path: PathBuf::from(label).into(),
                index,
            }),
            Err(e) => {
                bad = Some(diagnose::probe_failure(&ProbeError::Tls(
                    probe::TlsError::Handshake(format!("certificate {index} sent: {e}")),
                )))
            }
        }
    }
    (loaded, bad)
}

fn served_result(analysis: &Analysis, group: usize) -> Option<LeafResult> {
    analysis
        .first_case_of(group)
        .map(|c| c.result(&analysis.pool))
}

fn first_leaf(analysis: &Analysis, group: usize) -> Option<&Certificate> {
    analysis
        .first_leaf_of(group)
        .map(|b| analysis.pool.cert(b.leaf).as_ref())
}

fn no_leaf_finding(parse_failure: Option<Finding>) -> Finding {
    parse_failure.unwrap_or_else(|| {
        diagnose::probe_failure(&ProbeError::Tls(probe::TlsError::Handshake(
            "the server sent no end-entity (leaf) certificate".into(),
        )))
    })
}

pub(super) fn failed_result(target: &Target, finding: Finding) -> LeafResult {
    let problems = vec![finding];
    LeafResult {
        target: Some(target.label()),
        file: target.label(),
        leaf: None,
        tls: None,
        status: Status::of(&problems),
        presented: Vec::new(),
        chain: Vec::new(),
        problems,
        alternatives: Vec::new(),
        key: None,
        changed: None,
        files: None,
        not_written: None,
        write_errors: None,
        stale_files: None,
        dane: None,
        subject_kind: None,
        receivers: Vec::new(),
        receivers_disagreement: None,
        bundle_only: None,
    }
}

/// The files given with `--compare`: their certificates, grouped by file, in file order.
struct Disk {
    files: Vec<(PathBuf, Vec<Arc<Certificate>>)>,
}

fn load_compare(paths: &[PathBuf]) -> Result<Disk, AppError> {
    let loaded = load::load_paths(paths, &load::NoPassword);
    if let Some(p) = loaded.problems.iter().find(|p| p.fatal) {
        return Err(AppError(format!("--compare {p}")));
    }
    let mut files: Vec<(PathBuf, Vec<Arc<Certificate>>)> = Vec::new();
    for c in loaded.certs {
        match files.iter_mut().find(|(p, _)| **p == *c.path) {
            Some((_, certs)) => certs.push(c.cert),
            None => files.push((c.path.to_path_buf(), vec![c.cert])),
        }
    }
    if files.is_empty() {
        return Err(AppError(
            "--compare: no certificate found in the files given".into(),
        ));
    }
    Ok(Disk { files })
}

/// `served-differs-from-disk` when the server's leaf or chain is not what the disk holds.
fn compare(analysis: &Analysis, group: usize, leaf: &Certificate, disk: &Disk) -> Option<Finding> {
    let served: Vec<[u8; 32]> = analysis
        .first_leaf_of(group)?
        .presented
        .iter()
        .map(|&id| analysis.pool.cert(id).sha256)
        .collect();
    let fingerprints =
        |certs: &[Arc<Certificate>]| -> Vec<[u8; 32]> { certs.iter().map(|c| c.sha256).collect() };
    // Any file holding exactly what is served (e.g. fullchain.pem beside cert.pem) matches.
    if disk
        .files
        .iter()
        .any(|(_, certs)| fingerprints(certs) == served)
    {
        return None;
    }
    // Else a file holding the served leaf with other certificates around it.
    if let Some((path, certs)) = disk
        .files
        .iter()
        .find(|(_, certs)| certs.iter().any(|c| c.sha256 == leaf.sha256))
    {
        let on_disk = fingerprints(certs);
        // Fingerprints tell the two apart when names and dates are the same.
        let listed = |chain: &[[u8; 32]]| -> String {
            let v: Vec<String> = chain.iter().map(|s| crate::cert::hex(s)).collect();
            v.join(", ")
        };
        return Some(diagnose::served_differs(
            leaf,
            format!(
                "The server sends {} certificate(s) (sha256 {}) but {} holds {} for the same \
                 leaf (sha256 {}): the MTA was not reloaded since the file changed, or it reads \
                 another file.",
                served.len(),
                listed(&served),
                path.display(),
                on_disk.len(),
                listed(&on_disk)
            ),
        ));
    }
    let disk_leaf = disk
        .files
        .iter()
        .flat_map(|(p, certs)| certs.iter().map(move |c| (p, c)))
        .find(|(_, c)| !c.is_ca)?;
    Some(diagnose::served_differs(
        leaf,
        format!(
            "The server presents {} (expires {}, sha256 {}), but {} holds {} (expires {}, \
             sha256 {}): the MTA was not reloaded since the certificate changed, or it reads \
             another file.",
            leaf.subject,
            format_date(leaf.not_after),
            leaf.sha256_hex(),
            disk_leaf.0.display(),
            disk_leaf.1.subject,
            format_date(disk_leaf.1.not_after),
            disk_leaf.1.sha256_hex()
        ),
    ))
}

fn print(
    config: &Config,
    args: &ProbeArgs,
    analysis: &Analysis,
    results: Vec<LeafResult>,
    domains: Vec<crate::domain::DomainResult>,
) -> Result<ExitCode, AppError> {
    print_problems(analysis);
    // An unreadable --roots or --intermediates file means the judgement may be wrong.
    let failed_to_load = analysis.problems.iter().any(|p| p.fatal);
    let statuses = results
        .iter()
        .map(|r| r.status)
        .chain(domains.iter().map(|d| d.status));
    let mut exit = statuses.fold(Exit::Ok, |e, s| {
        e.merge(if s == Status::Ok {
            Exit::Ok
        } else {
            Exit::Findings
        })
    });
    let mut nagios = results
        .iter()
        .map(report::nagios::status)
        .chain(domains.iter().map(|d| report::nagios::worst(&d.problems)))
        .max()
        .unwrap_or(Nagios::Unknown);
    if failed_to_load {
        exit = exit.merge(Exit::Failure);
        nagios = Nagios::Unknown;
    }
    let report = Report {
        schema: report::SCHEMA,
        results,
        errors: super::file_errors(analysis),
        domains,
    };
    // anstream drops the colours when stdout is not a terminal or NO_COLOR is set.
    let mut out = anstream::stdout().lock();
    let printed = if args.nagios {
        report::nagios::print(&report, nagios, &mut out)
    } else if args.brief {
        report::print_brief(&report, &mut out)
    } else if config.json {
        report::print_json(&report, &mut out)
    } else {
        report::print_human(&report, false, &mut out)
    };
    super::finish_output(printed.and_then(|_| out.flush()))?;
    Ok(if args.nagios {
        nagios.code()
    } else {
        exit.code()
    })
}
