//! `repair --dovecot [CONFIG]`: repair a Dovecot configuration in place. Each repaired slot's
//! certificate setting (`ssl_cert = <FILE` in 2.3, `ssl_server_cert_file` in 2.4) is changed
//! on the one line that sets it, found in the configuration or one of its `!include`s
//! ([`crate::deployed::dovecot_edit`]; every other byte kept). `doveconf -n` must accept the
//! configuration before and after; every slot is then judged again. `--reload` runs
//! `doveadm -c CONFIG reload` and proves each listener (IMAP and POP3 STARTTLS, implicit TLS
//! on the `ssl = yes` ones) as for the MTAs; any failure puts every changed and written file
//! back (and reloads again).

use std::ffi::OsStr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use super::deployed::Source;
use super::deployed_reload;
use super::deployed_repair::{
    judge_and_decide, print, proof_plan, repairs_of, undone, verify, write_files, SlotRepair,
    Verdict,
};
use super::deployed_repair_debian::Edit;
use super::{AppError, Config};
use crate::cli::RepairArgs;
use crate::deployed::apply::Snapshot;
use crate::deployed::diff::{self, FileDiff};
use crate::deployed::dovecot_edit::{self, Located};
use crate::deployed::{command, Place};
use crate::exit::Exit;
use crate::report::repair_in_place::Stage;

/// How long the proof may take by default. Dovecot's login processes (`service_count = 1`,
/// the default) serve one connection each and those started after the reload read the new
/// configuration; with `service_count = 0` a process from before the reload may still answer,
/// which the proof's N-in-a-row rule and this deadline are there to catch.
const DEFAULT_DEADLINE: u64 = 30;

pub(super) fn repair(
    config: &Config,
    args: &RepairArgs,
    source: &Source,
) -> Result<Exit, AppError> {
    let Source::Dovecot { doveconf, .. } = source else {
        return Err(AppError("repair in place needs a deployed server".into()));
    };
    let (deployment, slots, verdicts) = judge_and_decide(config, args, source)?;
    let file = deployment.config.clone();
    let repairs = repairs_of(&verdicts);
    let exit = if verdicts.iter().any(|v| matches!(v, Verdict::Cannot(_))) {
        Exit::Findings
    } else {
        Exit::Ok
    };
    let edits = edits(&file, &repairs)?;
    let diffs: Vec<FileDiff> = edits
        .iter()
        .map(|e| FileDiff {
            file: e.file.clone(),
            diff: diff::unified(&e.file.display().to_string(), &e.old, &e.new),
        })
        .filter(|d| !d.diff.is_empty())
        .collect();
    if repairs.is_empty() || args.check {
        print(
            config,
            &slots,
            &verdicts,
            &diffs,
            Stage::Previewed { check: args.check },
            &[],
        )?;
        return Ok(exit);
    }

    doveconf_check(doveconf, &file).map_err(|e| {
        AppError(format!(
            "doveconf -n fails before any change ({e}); nothing was changed"
        ))
    })?;
    let mut touched: Vec<PathBuf> = edits.iter().map(|e| e.file.clone()).collect();
    touched.extend(
        repairs
            .iter()
            .filter_map(|r| r.plan.write.as_ref())
            .map(|w| w.path().to_path_buf()),
    );
    let snapshot = Snapshot::take(&touched).map_err(|e| {
        AppError(format!(
            "reading the files to change: {e}; nothing was changed"
        ))
    })?;
    let installed = write_files(&repairs)
        .and_then(|()| install(&edits))
        .and_then(|()| {
            doveconf_check(doveconf, &file)
                .map_err(|e| format!("doveconf -n rejects the changed configuration ({e})"))
        })
        .and_then(|()| verify(config, source, &repairs));
    if let Err(why) = installed {
        return Err(AppError(format!("{why}; {}", undone(snapshot.restore()))));
    }
    if !args.reload.reload {
        print(config, &slots, &verdicts, &diffs, Stage::Applied, &[])?;
        return Ok(exit);
    }

    let (expects, rule) = proof_plan(config, args, &deployment, &repairs, DEFAULT_DEADLINE);
    let doveadm = beside(doveconf, "doveadm");
    let reload = || doveadm_reload(&doveadm, &file);
    let reloader = deployed_reload::Reloader {
        mta: "Dovecot",
        reload: &reload,
        // The master re-reads its configuration and restarts the config process on SIGHUP:
        // give it a moment before the first connection.
        settle: std::time::Duration::from_millis(500),
    };
    deployed_reload::reload_and_prove(&reloader, &expects, rule, &snapshot, |proofs| {
        print(config, &slots, &verdicts, &diffs, Stage::Reloaded, proofs)
    })?;
    Ok(exit)
}

/// Each file to change, as it is and with every repaired slot's line rewritten. Two slots
/// that would set one line to different values are refused.
fn edits(config: &Path, repairs: &[&SlotRepair]) -> Result<Vec<Edit>, AppError> {
    let mut lines: Vec<(Located, String)> = Vec::new();
    for change in repairs.iter().flat_map(|r| &r.plan.changes) {
        let Place::Dovecot { filter, .. } = &change.setting.place else {
            return Err(AppError("not a Dovecot setting".into()));
        };
        let (Some(old), [new]) = (change.old.first(), change.new.as_slice()) else {
            return Err(AppError(format!(
                "{}: one file was expected; nothing was changed",
                change.setting
            )));
        };
        let at = dovecot_edit::locate(config, filter, &change.setting.name, old)
            .map_err(|e| AppError(format!("{e}; nothing was changed")))?;
        // 2.3 reads `<FILE`; 2.4 takes the path as it is. Keep the form the line had.
        let angle = at.value.starts_with('<');
        let value = dovecot_edit::value_for(new, angle);
        match lines
            .iter()
            .find(|(l, _)| l.file == at.file && l.line == at.line)
        {
            Some((_, v)) if *v != value => {
                return Err(AppError(format!(
                    "{} line {}: two slots would set it to different files; repair them by \
                     hand; nothing was changed",
                    at.file.display(),
                    at.line
                )))
            }
            Some(_) => {}
            None => lines.push((at, value)),
        }
    }
    let mut edits: Vec<Edit> = Vec::new();
    for (at, value) in lines {
        let index = match edits.iter().position(|e| e.file == at.file) {
            Some(i) => i,
            None => {
                let old = std::fs::read_to_string(&at.file)
                    .map_err(|e| AppError(format!("{}: {e}", at.file.display())))?;
                edits.push(Edit {
                    file: at.file.clone(),
                    new: old.clone(),
                    old,
                });
                edits.len() - 1
            }
        };
        let e = &mut edits[index];
        // The name as the line spells it (2.4: `cert_file` inside `ssl_server { }`).
        e.new = dovecot_edit::set_line(&e.new, at.line, &at.key, &value).ok_or_else(|| {
            AppError(format!(
                "{} has no line {}; nothing was changed",
                at.file.display(),
                at.line
            ))
        })?;
    }
    Ok(edits)
}

/// Writes each changed file atomically, keeping its mode.
fn install(edits: &[Edit]) -> Result<(), String> {
    for e in edits {
        let mode = std::fs::metadata(&e.file)
            .map(|m| m.permissions().mode() & 0o7777)
            .unwrap_or(0o644);
        crate::write::write_atomic(
            &e.file,
            e.new.as_bytes(),
            crate::write::FileMode::Exact(mode),
        )
        .map_err(|err| format!("writing {}: {err}", e.file.display()))?;
    }
    Ok(())
}

/// `doveadm` (or another of Dovecot's programs) in `doveconf`'s directory, else on `PATH`.
fn beside(doveconf: &Path, name: &str) -> PathBuf {
    match doveconf.parent() {
        Some(dir) if doveconf.is_absolute() => dir.join(name),
        _ => PathBuf::from(name),
    }
}

/// `doveconf -c FILE -n`: Dovecot's own parse of the configuration (it fails on a syntax
/// error, an unknown setting, or a `<FILE` it cannot read).
fn doveconf_check(doveconf: &Path, file: &Path) -> Result<(), String> {
    let out = command::run(
        doveconf,
        &[OsStr::new("-c"), file.as_os_str(), OsStr::new("-n")],
    )
    .map_err(|e| e.to_string())?;
    if out.success {
        Ok(())
    } else {
        Err(out.stderr.trim().to_string())
    }
}

/// `doveadm -c FILE reload`: the master (found by the configuration's `base_dir`) re-reads
/// its configuration, as SIGHUP does; no systemd needed.
fn doveadm_reload(doveadm: &Path, file: &Path) -> Result<(), String> {
    let out = command::run(
        doveadm,
        &[OsStr::new("-c"), file.as_os_str(), OsStr::new("reload")],
    )
    .map_err(|e| e.to_string())?;
    if out.success {
        Ok(())
    } else {
        Err(format!(
            "doveadm reload: {}{}",
            out.stderr.trim(),
            out.stdout.trim()
        ))
    }
}
