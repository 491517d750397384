//! `repair --postfix`: repair a deployed Postfix in place. Each slot that is not fine gets its
//! chain written into a directory chainfix owns (`--out DIR/SLOT/`), or is pointed at the full
//! chain its renewal tool already keeps, and its setting is changed through Postfix's own
//! tools. Before anything changes: the key matches the chain (a slot without a matching key is
//! not touched), and `postfix check` passes; after: `postfix check` again and every slot judged
//! again from the configuration as Postfix now reads it. A failure there puts every file back.
//! `--check` shows each change as a unified diff and changes nothing.

use std::path::{Path, PathBuf};

use super::deployed::{self, SlotReport, Source};
use super::deployed_reload;
use super::{AppError, Config};
use crate::cli::RepairArgs;
use crate::deployed::apply::{self, PostfixTools, Snapshot};
use crate::deployed::diff::{self, FileDiff};
use crate::deployed::plan::{self, Change, NewFile, Plan};
use crate::deployed::proof::{self, Expect, Proof, ProofRule};
use crate::deployed::Place;
use crate::diagnose::Status;
use crate::exit::Exit;
use crate::report::repair_in_place::{Action, SlotLine, Stage};
use crate::write::{self, FileMode};

/// One slot's repair, with the bytes of the file it writes.
pub(super) struct SlotRepair {
    pub label: String,
    pub slot: crate::deployed::Slot,
    /// SHA-256 of each certificate the slot must serve after the repair.
    pub expected: Vec<[u8; 32]>,
    pub plan: Plan,
    /// The contents of `plan.write` (a key file's bytes are never printed).
    pub contents: Option<Vec<u8>>,
}

/// What the run decided for each slot.
pub(super) enum Verdict {
    Fine,
    Repair(Box<SlotRepair>),
    Cannot(String),
}

/// `repair --postfix`.
pub fn repair(config: &Config, args: &RepairArgs, source: &Source) -> Result<Exit, AppError> {
    let postconf = match source {
        Source::Postfix { postconf, .. } => postconf,
        Source::Exim { .. } => return super::deployed_repair_exim::repair(config, args, source),
        Source::Dovecot { .. } => {
            return super::deployed_repair_dovecot::repair(config, args, source)
        }
    };
    let tools = PostfixTools::beside(postconf);
    let (deployment, slots, verdicts) = judge_and_decide(config, args, source)?;
    let dir = deployment.config.clone();
    let repairs = repairs_of(&verdicts);
    let changes: Vec<Change> = repairs
        .iter()
        .flat_map(|r| r.plan.changes.iter().cloned())
        .collect();
    let cannot = verdicts.iter().any(|v| matches!(v, Verdict::Cannot(_)));

    // The diffs, from a scratch copy of main.cf and master.cf changed by postconf itself.
    let diffs = preview(&tools, &dir, &changes)?;
    let exit = if cannot { Exit::Findings } else { Exit::Ok };
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

    // Before anything changes: Postfix's own check of the configuration as it is.
    apply::postfix_check(&tools, &dir).map_err(|e| {
        AppError(format!(
            "postfix check fails before any change ({e}); nothing was changed"
        ))
    })?;
    let mut touched = apply::edited_files(&dir, &changes);
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
    let result = put_in_place(&tools, &dir, &repairs, &changes)
        .and_then(|()| apply::postfix_check(&tools, &dir).map_err(|e| e.to_string()))
        .and_then(|()| verify(config, source, &repairs));
    if let Err(why) = result {
        return Err(AppError(format!("{why}; {}", undone(snapshot.restore()))));
    }
    if !args.reload.reload {
        print(config, &slots, &verdicts, &diffs, Stage::Applied, &[])?;
        return Ok(exit);
    }

    // Reload, and prove every listener of each repaired slot serves the new chain.
    let default_deadline = deployment.max_idle.unwrap_or(DEFAULT_MAX_IDLE);
    let (expects, rule) = proof_plan(config, args, &deployment, &repairs, default_deadline);
    let reload = || apply::postfix_reload(&tools, &dir).map_err(|e| e.to_string());
    let reloader = deployed_reload::Reloader {
        mta: "Postfix",
        reload: &reload,
        settle: std::time::Duration::ZERO,
    };
    deployed_reload::reload_and_prove(&reloader, &expects, rule, &snapshot, |proofs| {
        print(config, &slots, &verdicts, &diffs, Stage::Reloaded, proofs)
    })?;
    Ok(exit)
}

/// Postfix's default `max_idle` (postconf(5)), when the configuration does not say.
const DEFAULT_MAX_IDLE: u64 = 100;

/// The deployment as discovered, each slot judged, and what to do about each (shared by every
/// in-place repair).
pub(super) fn judge_and_decide(
    config: &Config,
    args: &RepairArgs,
    source: &Source,
) -> Result<(crate::deployed::Deployment, Vec<SlotReport>, Vec<Verdict>), AppError> {
    let deployment = source.discover()?;
    let slots = deployed::judge(config, &deployment);
    let out_dir = absolute(&args.out)?;
    let verdicts = slots.iter().map(|s| decide(s, &out_dir)).collect();
    Ok((deployment, slots, verdicts))
}

/// The slots to repair, in order.
pub(super) fn repairs_of(verdicts: &[Verdict]) -> Vec<&SlotRepair> {
    verdicts
        .iter()
        .filter_map(|v| match v {
            Verdict::Repair(r) => Some(&**r),
            _ => None,
        })
        .collect()
}

/// What the proof after a reload asks for: every listener of each repaired slot serving its
/// new chain, `--reload-proof` times in a row, within `--reload-deadline` (else
/// `default_deadline` seconds).
pub(super) fn proof_plan(
    config: &Config,
    args: &RepairArgs,
    deployment: &crate::deployed::Deployment,
    repairs: &[&SlotRepair],
    default_deadline: u64,
) -> (Vec<Expect>, ProofRule) {
    let repaired: Vec<(crate::deployed::Slot, Vec<[u8; 32]>)> = repairs
        .iter()
        .map(|r| (r.slot.clone(), r.expected.clone()))
        .collect();
    let rule = ProofRule {
        consecutive: args.reload.reload_proof.max(1),
        deadline: std::time::Duration::from_secs(
            args.reload.reload_deadline.unwrap_or(default_deadline),
        ),
        timeout: config.http.timeout,
    };
    (proof::expectations(deployment, &repaired), rule)
}

pub(super) fn undone(restored: std::io::Result<()>) -> String {
    match restored {
        Ok(()) => "every change was undone".into(),
        Err(e) => format!("undoing the changes failed: {e}"),
    }
}

/// The repair of one judged slot.
pub(super) fn decide(s: &SlotReport, out_dir: &Path) -> Verdict {
    match &s.fix {
        None => Verdict::Fine,
        Some(Err(why)) => Verdict::Cannot(why.clone()),
        Some(Ok(f)) => {
            let dir = out_dir.join(slot_dir_name(&s.slot));
            let facts = plan::Facts {
                leaf_file: &f.leaf_file,
                key_file: &f.key_file,
                key_files: &f.key_files,
                owner_full_chain: f.owner_full_chain.as_deref(),
            };
            let plan = plan::plan(&s.slot, &facts, &dir);
            let contents = plan.write.as_ref().map(|w| match w {
                NewFile::Chain(_) => f.chain_pem.clone().into_bytes(),
                NewFile::KeyAndChain(_) => format!("{}{}", f.key_pem, f.chain_pem).into_bytes(),
            });
            Verdict::Repair(Box::new(SlotRepair {
                label: s.slot.label(),
                slot: s.slot.clone(),
                expected: f.chain_sha256.clone(),
                plan,
                contents,
            }))
        }
    }
}

/// `server-smtp-inet`, `server-sni-mx.example.com`, `client-smtp-unix`, `server-dovecot`,
/// `server-dovecot-alt`: the slot's directory
/// under `--out`.
fn slot_dir_name(slot: &crate::deployed::Slot) -> String {
    let role = match slot.role {
        crate::chain::Role::Server => "server",
        crate::chain::Role::Client => "client",
    };
    let what = match (&slot.sni, slot.settings.first().map(|s| &s.place)) {
        (Some(name), _) => format!("sni-{name}"),
        // Dovecot: named after the block that sets the certificate (`dovecot`,
        // `local 192.0.2.1`, `protocol imap`), not a listener that may come and go.
        (None, Some(Place::Dovecot { filter, .. })) if filter.is_empty() => "dovecot".into(),
        (None, Some(Place::Dovecot { filter, .. })) => filter.join("-").replace(' ', "-"),
        (None, _) => slot.services.first().cloned().unwrap_or_default(),
    };
    let alg = slot.algorithm.map(|a| format!("-{a}")).unwrap_or_default();
    crate::emit::file_safe(&format!("{role}-{what}{alg}"))
}

pub(super) fn absolute(p: &Path) -> Result<PathBuf, AppError> {
    if p.is_absolute() {
        return Ok(p.to_path_buf());
    }
    std::env::current_dir()
        .map(|d| d.join(p))
        .map_err(|e| AppError(format!("--out {}: {e}", p.display())))
}

/// Writes the new files, then changes the settings.
fn put_in_place(
    tools: &PostfixTools,
    dir: &Path,
    repairs: &[&SlotRepair],
    changes: &[Change],
) -> Result<(), String> {
    write_files(repairs)?;
    apply::apply_postfix(tools, dir, changes).map_err(|e| e.to_string())
}

/// Writes each repair's new file into chainfix's directory (the chain 0644, a key 0600).
pub(super) fn write_files(repairs: &[&SlotRepair]) -> Result<(), String> {
    for r in repairs {
        let (Some(w), Some(bytes)) = (&r.plan.write, &r.contents) else {
            continue;
        };
        let path = w.path();
        if let Some(parent) = path.parent() {
            write::create_dirs(parent)
                .map_err(|e| format!("creating {}: {e}", parent.display()))?;
        }
        let mode = match w {
            NewFile::Chain(_) => FileMode::Public,
            NewFile::KeyAndChain(_) => FileMode::Secret,
        };
        write::write_atomic(path, bytes, mode)
            .map_err(|e| format!("writing {}: {e}", path.display()))?;
    }
    Ok(())
}

/// Every repaired slot judged again from the configuration as Postfix now reads it.
pub(super) fn verify(
    config: &Config,
    source: &Source,
    repairs: &[&SlotRepair],
) -> Result<(), String> {
    let now = source.discover().map_err(|e| e.0)?;
    let judged = deployed::judge(config, &now);
    for r in repairs {
        let new_files: Vec<&PathBuf> = r.plan.changes.iter().flat_map(|c| &c.new).collect();
        let slot = judged
            .iter()
            .find(|s| s.slot.files.iter().any(|f| new_files.contains(&f)));
        match slot {
            Some(s) if s.status == Status::Ok => {}
            Some(s) => {
                return Err(format!(
                    "after the change, {} is still not fine ({:?})",
                    s.slot.label(),
                    s.status
                ))
            }
            None => {
                return Err(format!(
                    "after the change, Postfix does not load the repaired files for {}",
                    r.label
                ))
            }
        }
    }
    Ok(())
}

/// The diffs the changes make: main.cf and master.cf changed by `postconf` in a scratch copy
/// of the configuration directory, SNI table sources rewritten in memory.
fn preview(
    tools: &PostfixTools,
    dir: &Path,
    changes: &[Change],
) -> Result<Vec<FileDiff>, AppError> {
    let mut diffs = Vec::new();
    let cf: Vec<Change> = changes
        .iter()
        .filter(|c| matches!(c.setting.place, Place::MainCf | Place::MasterCf { .. }))
        .cloned()
        .collect();
    if !cf.is_empty() {
        let scratch = Scratch::new()?;
        for name in ["main.cf", "master.cf"] {
            std::fs::copy(dir.join(name), scratch.0.join(name))
                .map_err(|e| AppError(format!("{}: {e}", dir.join(name).display())))?;
        }
        apply::apply_postfix(tools, &scratch.0, &cf).map_err(|e| {
            AppError(format!(
                "postconf refused the change: {e}; nothing was changed"
            ))
        })?;
        for name in ["main.cf", "master.cf"] {
            let old = std::fs::read_to_string(dir.join(name)).unwrap_or_default();
            let new = std::fs::read_to_string(scratch.0.join(name)).unwrap_or_default();
            let d = diff::unified(&dir.join(name).display().to_string(), &old, &new);
            if !d.is_empty() {
                diffs.push(FileDiff {
                    file: dir.join(name),
                    diff: d,
                });
            }
        }
    }
    for c in changes {
        if let Place::SniMap { path, line, name } = &c.setting.place {
            let old = std::fs::read_to_string(path)
                .map_err(|e| AppError(format!("{}: {e}", path.display())))?;
            let value: Vec<String> = c.new.iter().map(|p| p.display().to_string()).collect();
            let new = apply::rewrite_table_line(&old, *line, name, &value.join(", "))
                .unwrap_or_else(|| old.clone());
            diffs.push(FileDiff {
                file: path.clone(),
                diff: diff::unified(&path.display().to_string(), &old, &new),
            });
        }
    }
    Ok(diffs)
}

/// A private scratch directory (0700), removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Result<Scratch, AppError> {
        use std::os::unix::fs::DirBuilderExt;
        let base = std::env::temp_dir();
        for i in 0..100u32 {
            let p = base.join(format!("chainfix-preview-{}-{i}", std::process::id()));
            match std::fs::DirBuilder::new().mode(0o700).create(&p) {
                Ok(()) => return Ok(Scratch(p)),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(AppError(format!("{}: {e}", p.display()))),
            }
        }
        Err(AppError("no scratch directory could be made".into()))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The report: the slots as judged before, then what was (or, with --check, would be) done.
pub(super) fn print(
    config: &Config,
    slots: &[SlotReport],
    verdicts: &[Verdict],
    diffs: &[FileDiff],
    stage: Stage,
    proofs: &[Proof],
) -> Result<(), AppError> {
    let lines: Vec<SlotLine<'_>> = slots
        .iter()
        .zip(verdicts)
        .map(|(s, v)| SlotLine {
            slot: &s.slot,
            status: s.status,
            action: match v {
                Verdict::Fine => Action::Fine,
                Verdict::Cannot(why) => Action::Cannot(why),
                Verdict::Repair(r) => Action::Repair(&r.plan),
            },
        })
        .collect();
    let stdout = std::io::stdout();
    crate::report::repair_in_place::print(
        config.json,
        &lines,
        diffs,
        stage,
        proofs,
        &mut stdout.lock(),
    )
    .map_err(|e| AppError(format!("writing the report failed: {e}")))
}
