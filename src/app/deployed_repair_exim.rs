//! `repair --exim FILE`: repair an Exim configuration in place. In a hand-written FILE the
//! option lines naming each repaired slot's files are rewritten ([`crate::deployed::exim_edit`];
//! an option set by a macro or an `.include` is refused); for Debian's generated FILE the macros
//! it is made from are changed and update-exim4.conf run ([`super::deployed_repair_debian`]).
//! Every file a repaired slot will load must be readable by Exim's own user (it reads them as
//! that user), and the new configuration must pass `exim -C NEW -bV`; then FILE is replaced
//! atomically and every slot judged again. `--reload` sends SIGHUP to the daemon (it
//! re-executes itself and reads the configuration anew) and proves the listeners as for
//! Postfix; any failure puts every changed and written file back (and signals the daemon again).

use std::ffi::OsStr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use super::deployed::Source;
use super::deployed_reload;
use super::deployed_repair::{
    judge_and_decide, print, proof_plan, repairs_of, undone, verify, write_files, SlotRepair,
    Verdict,
};
use super::deployed_repair_debian::{self, Edit};
use super::{AppError, Config};
use crate::cli::RepairArgs;
use crate::deployed::access::{readable_by, Access};
use crate::deployed::apply::Snapshot;
use crate::deployed::diff::FileDiff;
use crate::deployed::exim::DebianSource;
use crate::deployed::{command, diff, exim_edit, Place};
use crate::exit::Exit;
use crate::report::repair_in_place::Stage;

/// How long the proof may take by default: Exim forks a process per connection that reads the
/// files anew, so only connections already open when the daemon re-executes can serve the old
/// chain; 30 s covers a slow re-exec.
const DEFAULT_DEADLINE: u64 = 30;

pub(super) fn repair(
    config: &Config,
    args: &RepairArgs,
    source: &Source,
) -> Result<Exit, AppError> {
    let Source::Exim { exim, .. } = source else {
        return Err(AppError("repair in place needs --postfix or --exim".into()));
    };
    let (deployment, slots, verdicts) = judge_and_decide(config, args, source)?;
    let file = deployment.config.clone();
    let repairs = repairs_of(&verdicts);
    let exit = if verdicts.iter().any(|v| matches!(v, Verdict::Cannot(_))) {
        Exit::Findings
    } else {
        Exit::Ok
    };

    let old =
        std::fs::read_to_string(&file).map_err(|e| AppError(format!("{}: {e}", file.display())))?;
    // update-exim4.conf overwrites its output: the macros it is made from are what to change.
    let debian = crate::deployed::exim::debian_source(&old);
    let edits = match &debian {
        Some(d) => deployed_repair_debian::edits(d, &repairs)?,
        None => vec![hand_written(&file, &old, &repairs)?],
    };
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

    // The new configuration is made beside the old one and checked by Exim before it
    // replaces it; every file touched is put back on any failure.
    let candidate = sibling(&file, ".chainfix-new");
    let mut touched = vec![file.clone()];
    touched.extend(edits.iter().map(|e| e.file.clone()).filter(|f| *f != file));
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
        .and_then(|()| readable_by_server(&deployment, &repairs))
        .and_then(|()| install(exim, &file, &candidate, debian.as_ref(), &edits))
        .and_then(|()| verify(config, source, &repairs));
    if let Err(why) = installed {
        let _ = std::fs::remove_file(&candidate);
        return Err(AppError(format!("{why}; {}", undone(snapshot.restore()))));
    }
    if !args.reload.reload {
        print(config, &slots, &verdicts, &diffs, Stage::Applied, &[])?;
        return Ok(exit);
    }

    let (expects, rule) = proof_plan(config, args, &deployment, &repairs, DEFAULT_DEADLINE);
    let hup = || signal_daemon(exim, &file);
    let reloader = deployed_reload::Reloader {
        mta: "Exim",
        reload: &hup,
        // The daemon re-executes itself on SIGHUP: give it a moment to listen again.
        settle: std::time::Duration::from_millis(500),
    };
    deployed_reload::reload_and_prove(&reloader, &expects, rule, &snapshot, |proofs| {
        print(config, &slots, &verdicts, &diffs, Stage::Reloaded, proofs)
    })?;
    Ok(exit)
}

/// `PATH` with `suffix` added to its file name.
fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_os_string();
    s.push(suffix);
    PathBuf::from(s)
}

/// The hand-written FILE with each repaired slot's option lines rewritten.
fn hand_written(file: &Path, old: &str, repairs: &[&SlotRepair]) -> Result<Edit, AppError> {
    let mut new = old.to_string();
    for change in repairs.iter().flat_map(|r| &r.plan.changes) {
        let transport = match &change.setting.place {
            Place::EximMain { .. } => None,
            Place::EximTransport { transport, .. } => Some(transport.as_str()),
            _ => return Err(AppError("not an Exim setting".into())),
        };
        let value: Vec<String> = change.new.iter().map(|p| p.display().to_string()).collect();
        let after = (change.setting.name == "tls_privatekey").then_some("tls_certificate");
        new = exim_edit::set_option(
            &new,
            transport,
            &change.setting.name,
            &value.join(" : "),
            after,
        )
        .map_err(|e| AppError(format!("{}: {e}; nothing was changed", file.display())))?;
    }
    Ok(Edit {
        file: file.to_path_buf(),
        old: old.to_string(),
        new,
    })
}

/// Makes the new configuration as CANDIDATE (the hand-written text, or Debian's macros
/// written and update-exim4.conf run), has Exim check it, and moves it over FILE.
fn install(
    exim: &Path,
    file: &Path,
    candidate: &Path,
    debian: Option<&DebianSource>,
    edits: &[Edit],
) -> Result<(), String> {
    for e in edits {
        let target = if debian.is_some() { &e.file } else { candidate };
        let mode = std::fs::metadata(&e.file)
            .map(|m| m.permissions().mode() & 0o7777)
            .unwrap_or(0o644);
        crate::write::write_atomic(
            target,
            e.new.as_bytes(),
            crate::write::FileMode::Exact(mode),
        )
        .map_err(|err| format!("writing {}: {err}", target.display()))?;
    }
    if let Some(d) = debian {
        deployed_repair_debian::regenerate(d, candidate)?;
    }
    exim_check(exim, candidate)
        .map_err(|e| format!("exim -bV rejects the changed configuration ({e})"))?;
    std::fs::rename(candidate, file).map_err(|e| format!("replacing {}: {e}", file.display()))
}

/// `exim -C FILE -bV`: Exim's own check of a configuration.
fn exim_check(exim: &Path, file: &Path) -> Result<(), String> {
    let out = command::run(
        exim,
        &[OsStr::new("-C"), file.as_os_str(), OsStr::new("-bV")],
    )
    .map_err(|e| e.to_string())?;
    if out.success {
        Ok(())
    } else {
        Err(format!("{}{}", out.stderr.trim(), out.stdout.trim()))
    }
}

/// Every file a repaired slot will load, readable by the user Exim reads them as.
fn readable_by_server(
    deployment: &crate::deployed::Deployment,
    repairs: &[&SlotRepair],
) -> Result<(), String> {
    let Some(user) = &deployment.reads_as else {
        return Ok(());
    };
    for r in repairs {
        let files = r
            .plan
            .changes
            .iter()
            .flat_map(|c| &c.new)
            .chain(r.slot.key.iter());
        for f in files {
            if readable_by(user, f) == Access::NotReadable {
                return Err(format!(
                    "{user} cannot read {}: Exim would fail every STARTTLS",
                    f.display()
                ));
            }
        }
    }
    Ok(())
}

/// SIGHUP to the daemon whose pid is in the configuration's `pid_file_path`: the daemon
/// re-executes itself and reads its configuration anew (Exim spec, option `-bd`).
fn signal_daemon(exim: &Path, file: &Path) -> Result<(), String> {
    let out = command::run(
        exim,
        &[
            OsStr::new("-C"),
            file.as_os_str(),
            OsStr::new("-bP"),
            OsStr::new("pid_file_path"),
            OsStr::new("spool_directory"),
        ],
    )
    .map_err(|e| e.to_string())?;
    let value = |name: &str| {
        out.stdout
            .lines()
            .filter_map(|l| l.split_once('='))
            .find(|(k, _)| k.trim() == name)
            .map(|(_, v)| v.trim().to_string())
            .filter(|v| !v.is_empty())
    };
    // Exim's spec, "pid_file_path": unset, the daemon writes exim-daemon.pid in the spool
    // directory.
    let pid_file = value("pid_file_path")
        .or_else(|| value("spool_directory").map(|d| format!("{d}/exim-daemon.pid")))
        .ok_or("neither pid_file_path nor spool_directory is set; reload Exim yourself")?;
    let pid = std::fs::read_to_string(&pid_file)
        .map_err(|e| format!("{pid_file}: {e}"))?
        .trim()
        .parse::<u32>()
        .map_err(|_| format!("{pid_file} holds no process id"))?;
    let kill = command::find_program(&["/usr/bin/kill", "/bin/kill", "kill"]);
    let pid = pid.to_string();
    let sent =
        command::run(&kill, &[OsStr::new("-HUP"), OsStr::new(&pid)]).map_err(|e| e.to_string())?;
    if sent.success {
        Ok(())
    } else {
        Err(format!("kill -HUP {pid}: {}", sent.stderr.trim()))
    }
}
