//! `repair`: writes each leaf's repaired chain and the MTA configuration into `--out`, and
//! says exactly what was written, what could not be, and what an earlier run left behind.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::analyse::LeafCase;
use super::manifest::{self, Manifest};
use super::stale;
use super::{analyse_files, emit_report, read_password_file, AppError, Config, Entry};
use crate::cli::{EmitArg, RepairArgs};
use crate::diagnose::{CertRef, Code, Finding, Severity, Status};
use crate::emit::{self, EmitOptions, Material, Targets};
use crate::exit::Exit;
use crate::load;
use crate::pool::Pool;
use crate::report::{FileError, StaleFile, WrittenFile};
use crate::write;

pub(super) fn repair(config: &Config, args: &RepairArgs) -> Result<Exit, AppError> {
    let mut options = emit_options(args)?;
    if let Some(set) = &config.dane {
        options.tlsa_owner = set.host.clone().or_else(|| options.tlsa_owner.take());
        options.tlsa_port = set.port;
        options.tlsa_ttl = set.ttl;
    }
    let how = WriteMode {
        check: args.check,
        prune: args.prune,
        // Backups are named by the wall clock (when they were made), not by --at.
        backup_stamp: args.backup.then(|| {
            let fmt =
                time::macros::format_description!("[year][month][day]T[hour][minute][second]Z");
            time::OffsetDateTime::now_utc()
                .format(&fmt)
                .unwrap_or_else(|_| "backup".into())
        }),
    };
    // With the output directory inside the scanned one (`--out /etc/postfix/tls/chainfix`
    // for `/etc/postfix/tls`), the last run's output and backups are not read as inputs: a
    // renewed certificate would otherwise meet its predecessor there.
    let analysis = analyse_files(config, std::slice::from_ref(&args.out))?;
    let mut exit = analysis.exit_for_load();
    let cases = analysis.cases();
    let multiple = cases.len() > 1;
    let names = output_names(&analysis.pool, &cases);
    let mut results = Vec::new();
    let mut write_errors = Vec::new();
    for (case, name) in cases.iter().zip(names) {
        let mut result = case.result(&analysis.pool);
        if case.status == Status::Broken {
            exit = exit.merge(Exit::Findings);
        }
        // A DANE-TA record naming the root needs the root served (RFC 7672 §3.1.2).
        let serve_root = case.dane.as_ref().is_some_and(|d| d.view.serves_root);
        let material = match case.dane.as_ref().filter(|d| d.blocks_write) {
            Some(_) => Err(DANE_BREAK.to_string()),
            None => case.material(&analysis.pool, args.include_root || serve_root),
        };
        match material {
            Err(why) => {
                exit = exit.merge(Exit::Findings);
                result.not_written = Some(why);
                result.changed = Some(false);
            }
            Ok(mut material) => {
                let mut options = options.clone();
                if case.built.ca {
                    // A CA certificate is no server's: its chain bundle is all there is to write.
                    options.targets = Targets {
                        pem: true,
                        postfix: false,
                        exim: false,
                        iis: false,
                        dane: false,
                    };
                    options.key_path = None;
                    material.key = None;
                    result.bundle_only = Some(CA_BUNDLE_ONLY.into());
                } else if options.key_path.is_some() {
                    // Chain-only: the key stays where it is on the mail host.
                    material.key = None;
                } else if material.key.is_none() {
                    result.problems.push(key_not_found(&material, &options));
                }
                let (dir, leaf_options) = if multiple {
                    let mut o = options.clone();
                    o.install_dir = o.install_dir.join(&name);
                    (args.out.join(&name), o)
                } else {
                    (args.out.clone(), options.clone())
                };
                let written = write_outputs(&dir, &material, &leaf_options, &how);
                if written.errors.iter().any(|e| e.fatal) {
                    exit = exit.merge(Exit::Failure);
                }
                write_errors.extend(written.errors);
                result.changed = Some(
                    written.files.iter().any(|f| f.action.changed())
                        || written.stale.iter().any(|f| f.action != "kept"),
                );
                result.stale_files = Some(written.stale);
                result.files = Some(written.files);
                result.write_errors = Some(written.failures);
            }
        }
        results.push(result);
    }
    emit_report(
        config,
        &analysis,
        results.into_iter().map(|r| Entry::Result(Box::new(r))),
        write_errors,
        args.check,
    )?;
    Ok(exit)
}

/// Why `repair` wrote nothing for a chain that fails the TLSA records in force.
const DANE_BREAK: &str = "the chain would not match the TLSA records in force, and DANE senders \
would defer mail to this host (Exchange Online 4.7.323); publish the records listed under \
DANE (JSON: dane.publish) beside the old ones, wait twice their TTL (RFC 7671 §8.1), then run \
repair again with them in --tlsa/--tlsa-file, or give --accept-dane-break";
/// Why `repair` writes only the chain bundle for a CA subject.
const CA_BUNDLE_ONLY: &str = "the subject is a CA certificate (no end-entity certificate among \
the inputs): only the chain bundle (fullchain.pem, chain.pem, cert.pem) is written; no MTA \
configuration and no key file, since no server presents a CA certificate as its own";

/// No key is known for the leaf and none was named with `--key-path`: the chain is written,
/// the files that would name a key are not. A warning: the chain itself is repaired.
fn key_not_found(material: &Material<'_>, options: &EmitOptions) -> Finding {
    let t = options.targets;
    let mut skipped = vec!["privkey.pem"];
    if t.postfix {
        skipped.push("postfix/main.cf");
    }
    if t.exim {
        skipped.extend(["exim/*.conf", "exim/privkey.pem"]);
    }
    if t.iis && options.pfx_password.is_some() {
        skipped.push("iis/certificate.pfx");
    }
    Finding {
        code: Code::KeyNotFound,
        severity: Severity::Warning,
        cert: Some(CertRef::of(material.leaf)),
        message: format!(
            "No private key matching this certificate was found, so {} were not written (they \
             would name a key file that does not exist). The chain files were written. Give the \
             key with --key FILE, or its path on the mail host with --key-path PATH.",
            skipped.join(", ")
        ),
        receiver_view: None,
        url: None,
        detail: None,
        repairable: false,
    }
}

/// Validates the emit flags; `--install-dir` defaults to the absolute `--out` directory.
fn emit_options(args: &RepairArgs) -> Result<EmitOptions, AppError> {
    let outputs: Vec<Option<emit::Output>> = args
        .emit
        .iter()
        .map(|e| match e {
            EmitArg::Pem => Some(emit::Output::Pem),
            EmitArg::Postfix => Some(emit::Output::Postfix),
            EmitArg::Exim => Some(emit::Output::Exim),
            EmitArg::Iis => Some(emit::Output::Iis),
            EmitArg::Dane => Some(emit::Output::Dane),
            EmitArg::All => None,
        })
        .collect();
    let targets = Targets::of(&outputs);
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
    // Debian's group by default, set where it exists; a group named on purpose must exist, or
    // the key would end up unreadable by Exim without a word.
    let exim_group = match &args.exim_group {
        Some(group) if targets.exim && write::group_id(group).is_none() => {
            return Err(AppError(format!(
                "--exim-group {group}: no such group in /etc/group"
            )))
        }
        Some(group) => group.clone(),
        None => "Debian-exim".to_string(),
    };
    let key_path = match &args.key_path {
        Some(path) if !path.is_absolute() => {
            return Err(AppError(format!(
                "--key-path {}: must be an absolute path (it is written into MTA configuration)",
                path.display()
            )))
        }
        // A line break would end the setting and start another one in main.cf or Exim's file.
        Some(path) if path.to_string_lossy().chars().any(char::is_control) => {
            return Err(AppError(
                "--key-path: control characters (line breaks, tabs) cannot be written into MTA \
                 configuration"
                    .into(),
            ))
        }
        other => other.clone(),
    };
    Ok(EmitOptions {
        key_path,
        install_dir,
        targets,
        postfix_legacy: args.postfix_legacy,
        postfix_single_file: args.postfix_single_file,
        pfx_password,
        pfx_legacy: args.pfx_legacy,
        trust_private_root: args.trust_private_root,
        exim_group,
        tlsa_owner: args.chain.host.clone(),
        tlsa_port: 25,
        tlsa_ttl: None,
    })
}

/// What writing one leaf's directory did.
#[derive(Default)]
struct LeafWrite {
    /// Files written, planned (`--check`) or found up to date.
    files: Vec<WrittenFile>,
    /// Files that could not be written (fatal), for the leaf's `write_errors`.
    failures: Vec<FileError>,
    /// Everything for the JSON `errors` list: the failures and the notes.
    errors: Vec<FileError>,
    /// Files an earlier run wrote that this one does not, and what became of them.
    stale: Vec<StaleFile>,
}

/// Writes (or with `check`, plans) every file, then README.txt, which lists only the files
/// that are now in place, then deals with the files an earlier run left (`stale.rs`), then the
/// manifest of what is chainfix's in `dir`. Reports failures (and notes: a key that could not
/// be given to the MTA's group) on stderr.
fn write_outputs(
    dir: &Path,
    material: &Material<'_>,
    options: &EmitOptions,
    how: &WriteMode,
) -> LeafWrite {
    let mut out = LeafWrite::default();
    let files = emit::all_files(material, options);
    let mut writing: Vec<PathBuf> = files.iter().map(|f| f.rel.clone()).collect();
    writing.push(PathBuf::from(emit::readme::NAME));
    let previous = match manifest::read(dir) {
        Ok(previous) => previous,
        Err(why) => {
            let path = dir.join(manifest::NAME);
            let message = format!(
                "{why}; files of earlier runs cannot be told apart from others, so none is \
                 reported as stale, and the manifest is replaced"
            );
            super::say(&format!("{}: {message}", path.display()));
            out.errors.push(FileError {
                path: path.display().to_string(),
                message,
                fatal: false,
            });
            None
        }
    };
    let stale_items = previous
        .as_ref()
        .map(|p| {
            stale::plan(
                dir,
                p,
                &writing,
                &material.leaf.public_key_id(),
                how.prune,
                options.pfx_password.as_deref(),
            )
        })
        .unwrap_or_default();
    let going: Vec<&Path> = stale::going(&stale_items).collect();
    out.errors.extend(stale_keys(dir, material, &files, &going));

    let mut in_place = Vec::new();
    let mut not_written = Vec::new();
    for file in &files {
        match write_file(dir, file, how, &mut out) {
            Ok(()) => in_place.push(file),
            Err(why) => not_written.push((file.rel.clone(), why)),
        }
    }
    let left: Vec<PathBuf> = stale_items
        .iter()
        .filter(|i| i.keep.is_some())
        .map(|i| i.entry.path.clone())
        .collect();
    let readme = emit::readme::readme(material, options, &in_place, &not_written, &left);
    let mut written: Vec<&emit::OutputFile> = in_place.clone();
    if write_file(dir, &readme, how, &mut out).is_ok() {
        written.push(&readme);
    }

    let (stale_report, stale_errors) =
        stale::execute(dir, &stale_items, how.check, how.backup_stamp.as_deref());
    out.stale = stale_report;
    out.errors.extend(stale_errors.iter().cloned());
    out.failures.extend(stale_errors);

    // With --check the manifest is planned too, so that a dry run lists the same files as
    // the run it previews.
    if how.check || dir.is_dir() {
        let mut entries: Vec<manifest::Entry> = written
            .iter()
            .filter_map(|file| {
                manifest_hash(dir, file, how.check).map(|sha256| manifest::Entry {
                    path: file.rel.clone(),
                    sha256,
                })
            })
            .collect();
        entries.extend(stale::still_ours(&stale_items));
        // A file this run failed to write stays as the earlier run left it, and stays listed.
        if let Some(previous) = &previous {
            entries.extend(
                previous
                    .files
                    .iter()
                    .filter(|e| not_written.iter().any(|(rel, _)| *rel == e.path))
                    .cloned(),
            );
        }
        // Reported in `files` like every file chainfix writes (and kept by --backup).
        let record = emit::OutputFile::new(
            manifest::NAME,
            Manifest::new(entries).to_bytes(),
            write::FileMode::Public,
        );
        let _ = write_file(dir, &record, how, &mut out);
    }
    out
}

/// The SHA-256 the manifest records for `file`: of the bytes on disk after a real run; with
/// `check`, of the bytes the run would leave (the existing ones where a file whose bytes differ
/// on every run, the PFX, already holds the same content).
fn manifest_hash(dir: &Path, file: &emit::OutputFile, check: bool) -> Option<String> {
    let path = dir.join(&file.rel);
    if !check {
        return manifest::sha256_of(&path);
    }
    let kept = file
        .same_content
        .as_ref()
        .zip(std::fs::read(&path).ok())
        .filter(|(same, old)| same(old))
        .map(|(_, old)| old);
    Some(manifest::sha256_hex(
        kept.as_deref().unwrap_or(&file.contents),
    ))
}

/// Writes (or plans) one file into `dir`, recording the outcome in `out`; on failure, returns
/// the reason.
fn write_file(
    dir: &Path,
    file: &emit::OutputFile,
    how: &WriteMode,
    out: &mut LeafWrite,
) -> Result<(), String> {
    let path = dir.join(&file.rel);
    let mut mode = file.mode;
    let mut gid = file.group.as_deref().and_then(write::group_id);
    if let (Some(g), Some(name)) = (gid, &file.group) {
        if !write::may_give_to_group(g) {
            // Not root and not in the group: owner-only, and the step left to do said.
            mode = write::FileMode::Secret;
            gid = None;
            let message = format!(
                "owner-only (0600): this user may not give it to group {name}; as root, run \
                 chgrp {name} {p} && chmod 0640 {p}",
                p = path.display()
            );
            super::say(&format!("{}: {message}", path.display()));
            out.errors.push(FileError {
                path: path.display().to_string(),
                message,
                fatal: false,
            });
        }
    }
    let target = write::Target {
        contents: &file.contents,
        mode,
        gid,
        same_content: file.same_content.as_deref(),
    };
    let result = if how.check {
        plan_one(&path, &target).map(|action| (action, None))
    } else {
        write_one(&path, &target, how.backup_stamp.as_deref())
    };
    match result {
        Ok((action, backup)) => {
            out.files.push(WrittenFile {
                path: path.display().to_string(),
                action,
                mode: format!("{:04o}", mode.bits()),
                // Only key material is written with a mode other than 0644.
                secret: mode != write::FileMode::Public,
                backup: backup.map(|b| b.display().to_string()),
            });
            Ok(())
        }
        Err(e) => {
            let why = e.to_string();
            let message = format!("cannot write: {why}");
            super::say(&format!("{}: {message}", path.display()));
            let error = FileError {
                path: path.display().to_string(),
                message,
                fatal: true,
            };
            out.failures.push(error.clone());
            out.errors.push(error);
            Err(why)
        }
    }
}

/// What writing would do, including whether the directory it goes into can be made.
fn plan_one(path: &Path, target: &write::Target<'_>) -> std::io::Result<write::WriteOutcome> {
    if let Some(parent) = path.parent() {
        write::check_dirs(parent)?;
    }
    write::plan_target(path, target)
}

/// Key files in `dir` that this run does not write (no key is known for the leaf this time)
/// and that do not hold the leaf's key: left by an earlier run for an earlier certificate, they
/// would be deployed beside a chain they do not match. They are reported, not removed.
fn stale_keys(
    dir: &Path,
    material: &Material<'_>,
    files: &[emit::OutputFile],
    going: &[&Path],
) -> Vec<FileError> {
    const KEY_FILES: [&str; 3] = ["privkey.pem", emit::exim::KEY, emit::postfix::SINGLE_FILE];
    let mut stale = Vec::new();
    for rel in KEY_FILES {
        let path = dir.join(rel);
        if files.iter().any(|f| f.rel == Path::new(rel))
            || going.contains(&Path::new(rel))
            || std::fs::symlink_metadata(&path).is_err()
        {
            continue;
        }
        let leaf = material.leaf.public_key_id();
        let loaded = load::load_paths(std::slice::from_ref(&path), &load::NoPassword);
        if loaded
            .keys
            .iter()
            .any(|k| k.key.public_id.as_deref() == Some(leaf.as_slice()))
        {
            continue;
        }
        let message = "left by an earlier run: it does not hold this certificate's key, and no \
                       key was found to replace it; remove it (--prune does, for a file chainfix wrote), \
                       or give the key with --key"
            .to_string();
        super::say(&format!("{}: {message}", path.display()));
        stale.push(FileError {
            path: path.display().to_string(),
            message,
            fatal: true,
        });
    }
    stale
}

/// `--check`, `--prune` and `--backup` for one run.
struct WriteMode {
    check: bool,
    /// Remove (with `backup_stamp`: move aside) files an earlier run wrote and this one does not.
    prune: bool,
    /// UTC time of the run, when backups are kept.
    backup_stamp: Option<String>,
}

/// Creates the parent directory, then writes (keeping a backup of content about to change).
fn write_one(
    path: &Path,
    target: &write::Target<'_>,
    backup_stamp: Option<&str>,
) -> std::io::Result<(write::WriteOutcome, Option<PathBuf>)> {
    if let Some(parent) = path.parent() {
        write::create_dirs(parent)?;
    }
    write::write_keeping(path, target, backup_stamp)
}

/// One output subdirectory name per leaf (used when there are several): the leaf's name,
/// made file-name safe, with a fingerprint prefix added when two leaves share a name.
fn output_names(pool: &Pool, cases: &[LeafCase<'_>]) -> Vec<String> {
    let names: Vec<String> = cases
        .iter()
        .map(|c| emit::file_safe(&pool.cert(c.built.leaf).short_name()))
        .collect();
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for n in &names {
        *counts.entry(n).or_default() += 1;
    }
    cases
        .iter()
        .zip(&names)
        .map(|(c, n)| {
            if counts[n.as_str()] > 1 {
                let sha = pool.cert(c.built.leaf).sha256_hex();
                format!("{n}-{}", &sha[..8])
            } else {
                n.clone()
            }
        })
        .collect()
}
