//! `--nagios`: plugin output for Nagios and compatible monitors. The first line is the status
//! and a summary, every later line one target (Nagios Plugin Development Guidelines, "Plugin
//! Output": the first line is the service output, the rest long output), so nothing printed
//! may break a line: targets go through [`crate::render::plain`].

use std::io::{self, Write};

use super::{LeafResult, Report};
use crate::diagnose::{Finding, Severity};
use crate::exit::Nagios;
use crate::render::plain;

/// CRITICAL for any error, WARNING for any warning, else OK.
pub fn status(r: &LeafResult) -> Nagios {
    worst(&r.problems)
}

/// CRITICAL for any error among `problems`, WARNING for any warning, else OK.
pub fn worst(problems: &[Finding]) -> Nagios {
    let worst = problems.iter().map(|p| p.severity).min();
    match worst {
        Some(Severity::Error) => Nagios::Critical,
        Some(Severity::Warning) => Nagios::Warning,
        _ => Nagios::Ok,
    }
}

/// `CHAINFIX STATUS - summary`, then one line per target (Nagios long output).
pub fn print(report: &Report, overall: Nagios, out: &mut dyn Write) -> io::Result<()> {
    let mut bad: Vec<String> = report
        .domains
        .iter()
        .filter(|d| worst(&d.problems) != Nagios::Ok)
        .map(|d| {
            format!(
                "domain {} {}",
                plain::line(&d.domain),
                super::domain::codes(d)
            )
        })
        .collect();
    bad.extend(
        report
            .results
            .iter()
            .filter(|r| status(r) != Nagios::Ok)
            .map(|r| {
                let codes: Vec<&str> = r
                    .problems
                    .iter()
                    .filter(|p| p.severity != Severity::Info)
                    .map(|p| p.code.as_str())
                    .collect();
                format!("{} {}", plain::line(&r.file), codes.join(","))
            }),
    );
    let summary = if bad.is_empty() && !report.domains.is_empty() {
        format!(
            "{} domain(s), {} target(s): no problem",
            report.domains.len(),
            report.results.len()
        )
    } else if bad.is_empty() {
        format!(
            "{} target(s) serve a complete, valid chain",
            report.results.len()
        )
    } else {
        format!(
            "{} of {} target(s): {}",
            bad.len(),
            report.results.len(),
            bad.join("; ")
        )
    };
    writeln!(out, "CHAINFIX {} - {summary}", overall.label())?;
    for d in &report.domains {
        writeln!(
            out,
            "domain {}: {}",
            plain::line(&d.domain),
            worst(&d.problems).label()
        )?;
    }
    for r in &report.results {
        let expiry = r
            .leaf
            .as_ref()
            .map(|l| {
                format!(
                    ", leaf expires {}",
                    l.not_after.get(..10).unwrap_or(&l.not_after)
                )
            })
            .unwrap_or_default();
        writeln!(
            out,
            "{}: {}{expiry}",
            plain::line(&r.file),
            status(r).label()
        )?;
    }
    Ok(())
}
