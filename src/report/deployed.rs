//! The report of `inspect --postfix`/`--exim`: the configuration read, then each slot (role,
//! listeners, SNI name, the setting naming its files) with the usual report of its leaf. JSON:
//! `{"schema":1,"deployment":{...,"slots":[{...,"results":[LeafResult...]}]},"errors":[]}`.

use std::io::{self, Write};

use serde::Serialize;

use super::LeafResult;
use crate::chain::Role;
use crate::deployed::{Deployment, Slot};
use crate::diagnose::Status;
use crate::render::plain;

/// One judged slot, as the report sees it.
pub struct SlotView<'a> {
    pub slot: &'a Slot,
    pub results: &'a [LeafResult],
    /// Problems with the slot's files, one line each, `error: ` or `note: ` first.
    pub problems: Vec<String>,
    pub advice: &'a [String],
    pub status: Status,
}

/// The human report.
pub fn print_human(
    deployment: &Deployment,
    slots: &[SlotView<'_>],
    out: &mut dyn Write,
) -> io::Result<()> {
    writeln!(
        out,
        "{} configuration {}: {} certificate slot(s)",
        deployment.mta.as_str(),
        plain::line(&deployment.config.display().to_string()),
        slots.len()
    )?;
    for n in &deployment.notes {
        writeln!(out, "  note: {}", plain::line(n))?;
    }
    for s in slots {
        writeln!(out)?;
        writeln!(
            out,
            "== {}  [{}]",
            plain::line(&s.slot.label()),
            status_word(s.status)
        )?;
        writeln!(
            out,
            "   named by: {}",
            plain::line(&s.slot.settings_label())
        )?;
        for f in &s.slot.files {
            writeln!(out, "   file: {}", plain::line(&f.display().to_string()))?;
        }
        if let Some(k) = &s.slot.key {
            writeln!(
                out,
                "   key file: {}",
                plain::line(&k.display().to_string())
            )?;
        }
        for p in &s.problems {
            writeln!(out, "   {}", plain::line(p))?;
        }
        for a in s.advice {
            writeln!(out, "   fix: {}", plain::line(a))?;
        }
        if !s.results.is_empty() {
            writeln!(out)?;
            super::print_human_results(s.results.iter(), false, out)?;
        }
    }
    Ok(())
}

fn status_word(s: Status) -> &'static str {
    match s {
        Status::Ok => "OK",
        Status::Repairable => "REPAIRABLE",
        Status::Broken => "BROKEN",
    }
}

#[derive(Serialize)]
struct Document<'a> {
    schema: u32,
    deployment: DeploymentJson<'a>,
    errors: Vec<super::FileError>,
}

#[derive(Serialize)]
struct DeploymentJson<'a> {
    mta: &'static str,
    config: String,
    notes: &'a [String],
    slots: Vec<SlotJson<'a>>,
}

#[derive(Serialize)]
struct SlotJson<'a> {
    role: &'static str,
    services: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    sni: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    algorithm: Option<&'static str>,
    files: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    key: Option<String>,
    /// Where each file is named: `main.cf: smtpd_tls_cert_file`.
    settings: Vec<String>,
    status: Status,
    problems: &'a [String],
    advice: &'a [String],
    results: &'a [LeafResult],
}

/// The JSON document.
pub fn print_json(
    deployment: &Deployment,
    slots: &[SlotView<'_>],
    out: &mut dyn Write,
) -> io::Result<()> {
    let doc = Document {
        schema: super::SCHEMA,
        deployment: DeploymentJson {
            mta: deployment.mta.as_str(),
            config: deployment.config.display().to_string(),
            notes: &deployment.notes,
            slots: slots
                .iter()
                .map(|s| SlotJson {
                    role: match s.slot.role {
                        Role::Server => "server",
                        Role::Client => "client",
                    },
                    services: &s.slot.services,
                    sni: s.slot.sni.as_deref(),
                    algorithm: s.slot.algorithm,
                    files: s
                        .slot
                        .files
                        .iter()
                        .map(|f| f.display().to_string())
                        .collect(),
                    key: s.slot.key.as_ref().map(|k| k.display().to_string()),
                    settings: s.slot.settings.iter().map(|x| x.to_string()).collect(),
                    status: s.status,
                    problems: &s.problems,
                    advice: s.advice,
                    results: s.results,
                })
                .collect(),
        },
        errors: Vec::new(),
    };
    serde_json::to_writer_pretty(&mut *out, &doc)?;
    writeln!(out)
}
