//! The human report: one block per result, coloured for a terminal. Every text that comes
//! from a certificate, a finding or a path goes through [`crate::render::plain`].

use std::io::{self, Write};

use super::{FileError, LeafResult, Report, StaleFile, WrittenFile};
use crate::diagnose::{Finding, Severity, Status};
use crate::render::plain;
use crate::write::WriteOutcome;

/// Prints the human report.
pub fn print_human(report: &Report, check: bool, out: &mut dyn Write) -> io::Result<()> {
    if report.domains.is_empty() {
        return print_human_results(&report.results, check, out);
    }
    // `probe --domain`: the plain targets first, then each domain's block followed by the
    // results of its MX addresses.
    let of_domains: std::collections::HashSet<usize> = report
        .domains
        .iter()
        .flat_map(|d| d.mx.iter().flat_map(|m| m.results.iter().copied()))
        .collect();
    let mut first = true;
    let mut gap = |out: &mut dyn Write| -> io::Result<()> {
        if !std::mem::take(&mut first) {
            writeln!(out)?;
        }
        Ok(())
    };
    for (i, r) in report.results.iter().enumerate() {
        if !of_domains.contains(&i) {
            gap(out)?;
            print_result(r, check, out)?;
        }
    }
    for d in &report.domains {
        gap(out)?;
        super::domain::print_human(d, out)?;
        for &i in d.mx.iter().flat_map(|m| &m.results) {
            if let Some(r) = report.results.get(i) {
                writeln!(out)?;
                print_result(r, check, out)?;
            }
        }
    }
    Ok(())
}

/// The human report of `results`, one block each, as they come.
pub fn print_human_results<R: std::borrow::Borrow<LeafResult>>(
    results: impl IntoIterator<Item = R>,
    check: bool,
    out: &mut dyn Write,
) -> io::Result<()> {
    let mut any = false;
    for r in results {
        if any {
            writeln!(out)?;
        }
        print_result(r.borrow(), check, out)?;
        any = true;
    }
    if !any {
        writeln!(out, "No leaf certificate found.")?;
    }
    Ok(())
}

/// Colours for the human report. Written as ANSI sequences; the caller's stream (anstream)
/// strips them when stdout is not a terminal or `NO_COLOR` is set.
pub(super) mod style {
    use anstyle::{AnsiColor, Style};
    pub const OK: Style = AnsiColor::Green.on_default().bold();
    pub const WARN: Style = AnsiColor::Yellow.on_default().bold();
    pub const BAD: Style = AnsiColor::Red.on_default().bold();
    pub const DIM: Style = Style::new().dimmed();
    pub const TITLE: Style = Style::new().bold();
}

pub(super) fn status_style(status: Status) -> anstyle::Style {
    match status {
        Status::Ok => style::OK,
        Status::Repairable => style::WARN,
        Status::Broken => style::BAD,
    }
}

fn print_result(r: &LeafResult, check: bool, out: &mut dyn Write) -> io::Result<()> {
    let verdict = match r.status {
        Status::Ok => "OK",
        Status::Repairable => "REPAIRABLE",
        Status::Broken => "BROKEN",
    };
    let (title, st) = (style::TITLE, status_style(r.status));
    writeln!(
        out,
        "{title}{}{title:#}  {st}[{verdict}]{st:#}",
        plain::line(&r.file)
    )?;
    if let Some(tls) = &r.tls {
        let how = if tls.starttls {
            "STARTTLS"
        } else {
            "implicit TLS"
        };
        writeln!(
            out,
            "  served over {how}, {} {}",
            plain::line(&tls.version),
            plain::line(&tls.cipher)
        )?;
    }
    // A CA certificate judged on its own is the subject, not a leaf (JSON keeps `leaf` and the
    // role `leaf`, with `subject_kind: "ca"`).
    let ca_subject = r.subject_kind == Some("ca");
    if let Some(leaf) = &r.leaf {
        let label = if ca_subject { "subject" } else { "leaf" };
        writeln!(out, "  {label}: {}", plain::line(&leaf.subject))?;
        if ca_subject {
            writeln!(
                out,
                "  a CA certificate: no end-entity certificate among the inputs, so its own path \
                 is judged, as a CA's"
            )?;
        }
    }
    if r.leaf.is_some() {
        let order = if r.target.is_some() {
            "as served"
        } else {
            "file order"
        };
        writeln!(out, "  presented ({order}):")?;
        for (i, c) in r.presented.iter().enumerate() {
            writeln!(out, "    {i}  {}", plain::line(&c.subject))?;
        }
        writeln!(out, "  chain built:")?;
    }
    for (i, c) in r.chain.iter().enumerate() {
        let not_after = c.not_after.get(..10).unwrap_or(&c.not_after);
        let role = if i == 0 && ca_subject {
            "subject, a CA"
        } else {
            c.role
        };
        writeln!(out, "    {i}  {}  ({role})", plain::line(&c.subject))?;
        writeln!(
            out,
            "       expires {not_after}  sha256 {}  from {}",
            c.sha256.get(..16).unwrap_or(&c.sha256),
            plain::line(&c.source.to_string())
        )?;
    }
    if !r.alternatives.is_empty() {
        writeln!(out, "  other paths, not chosen:")?;
        for alt in &r.alternatives {
            let chain: Vec<_> = alt.chain.iter().map(|n| plain::line(n)).collect();
            writeln!(
                out,
                "    {}: {}",
                chain.join(" <- "),
                plain::line(&alt.reason)
            )?;
        }
    }
    if !r.receivers.is_empty() {
        print_receivers(r, out)?;
    }
    if let Some(k) = &r.key {
        writeln!(out, "  private key: {}", plain::line(k))?;
    }
    print_findings(&r.problems, out)?;
    if let Some(d) = &r.dane {
        super::dane::print(d, out)?;
    }
    if let Some(why) = &r.bundle_only {
        writeln!(out, "  only the chain bundle: {}", plain::line(why))?;
    }
    if let Some(why) = &r.not_written {
        writeln!(out, "  nothing written: {}", plain::line(why))?;
    }
    if let Some(files) = &r.files {
        let failures = r.write_errors.as_deref().unwrap_or_default();
        let remaining: Vec<&str> = r
            .problems
            .iter()
            .filter(|p| p.severity == Severity::Error && !p.repairable)
            .map(|p| p.code.as_str())
            .collect();
        if !failures.is_empty() {
            print_failures(failures, check, out)?;
        } else if remaining.is_empty() {
            writeln!(out, "  after repair: no error remains")?;
        }
        if !remaining.is_empty() {
            writeln!(out, "  after repair, still wrong: {}", remaining.join(", "))?;
        }
        let verb = if check { "would write" } else { "wrote" };
        let changed: Vec<&WrittenFile> = files.iter().filter(|f| f.action.changed()).collect();
        let stale = r.stale_files.as_deref().unwrap_or_default();
        let pruned = stale.iter().any(|f| f.action != "kept");
        if changed.is_empty() && failures.is_empty() && !pruned {
            writeln!(out, "  files: all up to date, nothing changed")?;
        } else if changed.is_empty() {
            writeln!(out, "  {verb}: no file")?;
        } else {
            writeln!(out, "  {verb}:")?;
            for f in changed {
                let action = match f.action {
                    WriteOutcome::Created => "new",
                    WriteOutcome::Updated => "updated",
                    WriteOutcome::ModeFixed => "mode fixed",
                    WriteOutcome::Unchanged => "unchanged",
                };
                let path = plain::line(&f.path);
                match &f.backup {
                    Some(b) => writeln!(
                        out,
                        "    {path}  ({action}, {}, previous kept as {})",
                        f.mode,
                        plain::line(b)
                    )?,
                    None => writeln!(out, "    {path}  ({action}, {})", f.mode)?,
                }
            }
        }
    }
    if let Some(stale) = &r.stale_files {
        print_stale(stale, check, out)?;
    }
    Ok(())
}

/// `problems:` and one line per finding (with what receivers say), or `problems: none`.
pub(super) fn print_findings(problems: &[Finding], out: &mut dyn Write) -> io::Result<()> {
    if problems.is_empty() {
        return writeln!(out, "  problems: none");
    }
    writeln!(out, "  problems:")?;
    for p in problems {
        let (sev, st) = match p.severity {
            Severity::Error => ("error  ", style::BAD),
            Severity::Warning => ("warning", style::WARN),
            Severity::Info => ("info   ", style::DIM),
        };
        writeln!(
            out,
            "    {st}{sev}{st:#} {}: {}",
            p.code.as_str(),
            plain::line(&p.message)
        )?;
        if let Some(view) = &p.receiver_view {
            let dim = style::DIM;
            let view = plain::line(view);
            writeln!(out, "            {dim}receivers: {view}{dim:#}")?;
        }
    }
    Ok(())
}

/// The receivers' verdicts side by side, and what explains a difference:
/// `receivers: OpenSSL 3 (Postfix; Exim on RHEL): accepted — rustls/webpki: rejected: ...`.
fn print_receivers(r: &LeafResult, out: &mut dyn Write) -> io::Result<()> {
    let verdicts: Vec<String> = r
        .receivers
        .iter()
        .map(|v| match v.reason {
            Some(reason) => format!("{}: {}: {reason}", v.name, v.verdict),
            None => format!("{}: {}", v.name, v.verdict),
        })
        .collect();
    writeln!(out, "  receivers: {}", verdicts.join(" — "))?;
    if let Some(d) = &r.receivers_disagreement {
        let (label, st) = match d.policy {
            Some(p) => (format!("policy {}", p.as_str()), style::DIM),
            None => ("unexplained".to_string(), style::WARN),
        };
        writeln!(out, "    {st}{label}{st:#}: {}", d.description)?;
    }
    Ok(())
}

/// Files `repair` could not write: the repair is not done, whatever else the report says.
fn print_failures(failures: &[FileError], check: bool, out: &mut dyn Write) -> io::Result<()> {
    let bad = style::BAD;
    let (n, files) = match failures.len() {
        1 => (1, "file"),
        n => (n, "files"),
    };
    let what = if check {
        "could not be written"
    } else {
        "NOT written"
    };
    writeln!(
        out,
        "  {bad}after repair: INCOMPLETE{bad:#}: {n} {files} {what}; do not deploy this directory"
    )?;
    for f in failures {
        let message = f
            .message
            .strip_prefix("cannot write: ")
            .unwrap_or(&f.message);
        writeln!(
            out,
            "    {}: {}",
            plain::line(&f.path),
            plain::line(message)
        )?;
    }
    Ok(())
}

/// Files an earlier run wrote that this one did not: each with its fate, so that nobody deploys
/// the folder thinking every file in it is current.
fn print_stale(stale: &[StaleFile], check: bool, out: &mut dyn Write) -> io::Result<()> {
    if stale.is_empty() {
        return Ok(());
    }
    let warn = style::WARN;
    writeln!(
        out,
        "  {warn}left by an earlier run{warn:#} (not written by this one; not part of this repair):"
    )?;
    for f in stale {
        let fate = match (f.action, f.reason) {
            ("removed", _) if check => "would be removed".to_string(),
            ("removed", _) => "removed".to_string(),
            ("moved", _) => {
                let to = f.backup.as_deref().unwrap_or_default();
                let verb = if check { "would be moved" } else { "moved" };
                format!("{verb} to {}", plain::line(to))
            }
            (_, Some("modified")) => {
                "kept: edited since chainfix wrote it, so it is yours and never touched".into()
            }
            (_, Some("current-key")) => "kept: it holds this certificate's key".into(),
            (_, Some("unreadable-key")) => {
                "kept: it holds a key chainfix cannot read (may be this certificate's)".into()
            }
            (_, Some("cannot-remove")) => "kept: could not be removed (see above)".into(),
            _ => "kept: do not deploy it; --prune removes it".into(),
        };
        writeln!(out, "    {}  ({fate})", plain::line(&f.path))?;
    }
    Ok(())
}
