//! The report of `repair --postfix`/`--exim`: each slot as judged, what was (or, with `--check`,
//! would be) done to it, the configuration diffs, what every listener served after a reload,
//! and one closing sentence that says exactly how far the run got. JSON:
//! `{"schema":1,"repair":{"changed","check","reloaded","slots","diffs","proof"},"errors":[]}`.

use std::io::{self, Write};

use serde_json::json;

use crate::chain::Role;
use crate::deployed::diff::FileDiff;
use crate::deployed::plan::{NewFile, Plan};
use crate::deployed::proof::Proof;
use crate::deployed::Slot;
use crate::diagnose::Status;
use crate::render::plain;

/// What the run decided for one slot.
pub enum Action<'a> {
    /// Nothing to change.
    Fine,
    /// Not repairable; why (may quote certificate names).
    Cannot(&'a str),
    Repair(&'a Plan),
}

/// One judged slot and its action.
pub struct SlotLine<'a> {
    pub slot: &'a Slot,
    pub status: Status,
    pub action: Action<'a>,
}

/// How far the run got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// `--check`, or nothing needed changing: nothing was changed.
    Previewed { check: bool },
    /// The files and settings were changed and checked; the server was not reloaded.
    Applied,
    /// Changed, then the server was reloaded and its listeners probed (`proofs`).
    Reloaded,
}

impl Stage {
    fn changed(self) -> bool {
        !matches!(self, Stage::Previewed { .. })
    }
}

/// The whole report, in `json` or for people.
pub fn print(
    json: bool,
    slots: &[SlotLine<'_>],
    diffs: &[FileDiff],
    stage: Stage,
    proofs: &[Proof],
    out: &mut dyn Write,
) -> io::Result<()> {
    if json {
        let text = serde_json::to_string_pretty(&document(slots, diffs, stage, proofs))
            .map_err(io::Error::other)?;
        return writeln!(out, "{text}");
    }
    out.write_all(human(slots, diffs, stage, proofs).as_bytes())
}

fn document(
    slots: &[SlotLine<'_>],
    diffs: &[FileDiff],
    stage: Stage,
    proofs: &[Proof],
) -> serde_json::Value {
    let changed = stage.changed();
    let hex =
        |chain: &[[u8; 32]]| -> Vec<String> { chain.iter().map(|s| crate::cert::hex(s)).collect() };
    let describe = |a: &Action<'_>| -> serde_json::Value {
        match a {
            Action::Fine => json!({"action": "none"}),
            Action::Cannot(why) => json!({"action": "cannot", "reason": why}),
            Action::Repair(plan) => json!({
                "action": if changed { "repaired" } else { "would-repair" },
                "written": plan.write.as_ref().map(|w| w.path().display().to_string()),
                "changes": plan.changes.iter().map(|c| json!({
                    "setting": c.setting.to_string(),
                    "old": c.old.iter().map(|p| p.display().to_string()).collect::<Vec<_>>(),
                    "new": c.new.iter().map(|p| p.display().to_string()).collect::<Vec<_>>(),
                })).collect::<Vec<_>>(),
            }),
        }
    };
    json!({
        "schema": super::SCHEMA,
        "repair": {
            "changed": changed,
            "check": matches!(stage, Stage::Previewed { check: true }),
            "reloaded": stage == Stage::Reloaded,
            "slots": slots.iter().map(|s| {
                let mut d = describe(&s.action);
                d["slot"] = json!(s.slot.label());
                d["status"] = json!(s.status);
                d["settings"] = json!(s.slot.settings_label());
                d
            }).collect::<Vec<_>>(),
            "diffs": diffs.iter().map(|d| json!({
                "file": d.file.display().to_string(), "diff": d.diff
            })).collect::<Vec<_>>(),
            "proof": proofs.iter().map(|p| json!({
                "target": p.target,
                "servername": p.servername,
                "slot": p.slot,
                "proven": p.proven,
                "connections": p.connections,
                "served_sha256": hex(&p.served),
                "expected_sha256": hex(&p.expected),
                "error": p.error,
            })).collect::<Vec<_>>(),
        },
        "errors": [],
    })
}

/// Sixteen hex digits of each certificate's SHA-256, leaf first.
fn short(chain: &[[u8; 32]]) -> String {
    if chain.is_empty() {
        return "nothing".into();
    }
    let v: Vec<String> = chain
        .iter()
        .map(|s| crate::cert::hex(s)[..16].to_string())
        .collect();
    v.join(" <- ")
}

fn human(slots: &[SlotLine<'_>], diffs: &[FileDiff], stage: Stage, proofs: &[Proof]) -> String {
    let mut out = String::new();
    let verb = if stage.changed() { "" } else { "would " };
    for s in slots {
        out.push_str(&format!(
            "== {}  [{}]\n   named by: {}\n",
            plain::line(&s.slot.label()),
            match s.status {
                Status::Ok => "OK",
                Status::Repairable => "REPAIRABLE",
                Status::Broken => "BROKEN",
            },
            plain::line(&s.slot.settings_label())
        ));
        match &s.action {
            Action::Fine => out.push_str("   nothing to change\n"),
            // `why` may quote certificate names; paths come from the configuration.
            Action::Cannot(why) => {
                out.push_str(&format!("   not repaired: {}\n", plain::line(why)))
            }
            Action::Repair(plan) => {
                if let Some(w) = &plan.write {
                    let what = match w {
                        NewFile::Chain(_) => "the chain, 0644",
                        NewFile::KeyAndChain(_) => "the key and the chain, 0600",
                    };
                    out.push_str(&format!(
                        "   {verb}write {} ({what})\n",
                        plain::line(&w.path().display().to_string())
                    ));
                }
                for c in &plan.changes {
                    let new: Vec<String> = c.new.iter().map(|p| p.display().to_string()).collect();
                    out.push_str(&format!(
                        "   {verb}set {} = {}\n",
                        plain::line(&c.setting.to_string()),
                        plain::line(&new.join(", "))
                    ));
                }
            }
        }
    }
    for d in diffs {
        out.push('\n');
        // Configuration lines as they are, each made safe for the terminal.
        for l in d.diff.lines() {
            out.push_str(&plain::line(l));
            out.push('\n');
        }
    }
    if !proofs.is_empty() {
        out.push_str("\nAfter the reload:\n");
    }
    for p in proofs {
        let sni = p
            .servername
            .as_deref()
            .map(|n| format!(" (SNI {})", plain::line(n)))
            .unwrap_or_default();
        if p.proven {
            out.push_str(&format!(
                "   {}{sni}: serves the new chain ({} connections): sha256 {}\n",
                p.target,
                p.connections,
                short(&p.served)
            ));
        } else {
            out.push_str(&format!(
                "   {}{sni}: NOT PROVEN after {} connections: served {}, expected {}{}\n",
                p.target,
                p.connections,
                short(&p.served),
                short(&p.expected),
                p.error
                    .as_deref()
                    .map(|e| format!(" ({})", plain::line(e)))
                    .unwrap_or_default()
            ));
        }
    }
    out.push('\n');
    out.push_str(&closing(slots, stage, proofs));
    out.push('\n');
    out
}

/// The last sentence: how far the run got, never more than it did.
fn closing(slots: &[SlotLine<'_>], stage: Stage, proofs: &[Proof]) -> String {
    let repaired = |role: Role| {
        slots
            .iter()
            .any(|s| s.slot.role == role && matches!(s.action, Action::Repair(_)))
    };
    if !repaired(Role::Server) && !repaired(Role::Client) {
        return "Nothing to change.".into();
    }
    // Nothing connects to a client slot, so no probe can see it: the next delivery presents
    // the new chain (each Postfix smtp(8) or Exim transport process reads its files anew).
    let client = if repaired(Role::Client) {
        " The client role is not probed (nothing connects to it): the next delivery \
         presents the new chain; a receiver that asks for client certificates shows it in its \
         log."
    } else {
        ""
    };
    match stage {
        Stage::Previewed { .. } => "--check: nothing was changed.".into(),
        Stage::Applied => format!(
            "Changed; the server's configuration check passes and every repaired slot now \
             loads a complete chain. Reload the server (or use repair --reload) to serve it.{client}"
        ),
        Stage::Reloaded if proofs.iter().any(|p| !p.proven) => {
            "The proof failed: every change is being undone (see the error that follows).".into()
        }
        Stage::Reloaded if proofs.is_empty() => format!("Changed and reloaded.{client}"),
        Stage::Reloaded => format!(
            "Changed and reloaded; every listener proven to serve the new chain.{client}"
        ),
    }
}
