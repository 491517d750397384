//! `--brief`: a header, then one line per result (target, status, leaf expiry, leaf, problem
//! codes), the leaf's name through [`crate::render::plain`].

use std::io::{self, Write};

use super::Report;
use crate::diagnose::Severity;
use crate::render::plain;

/// One line per result: target, status, leaf expiry, leaf, problem codes.
pub fn print_brief(report: &Report, out: &mut dyn Write) -> io::Result<()> {
    let width = report
        .results
        .iter()
        .map(|r| plain::line(&r.file).chars().count())
        .chain(
            report
                .domains
                .iter()
                .map(|d| plain::line(&d.domain).chars().count() + 7),
        )
        .max()
        .unwrap_or(6)
        .max(6);
    writeln!(
        out,
        "{:<width$}  {:<10}  {:<10}  {:<30}  PROBLEMS",
        "TARGET", "STATUS", "EXPIRES", "LEAF"
    )?;
    // `probe --domain`: the domain's own findings, then its results below.
    for d in &report.domains {
        writeln!(
            out,
            "{:<width$}  {:<10}  {:<10}  {:<30}  {}",
            format!("domain {}", plain::line(&d.domain)),
            d.status.as_str(),
            "-",
            "-",
            super::domain::codes(d)
        )?;
    }
    for r in &report.results {
        let (expires, leaf) = match &r.leaf {
            Some(l) => (
                l.not_after.get(..10).unwrap_or(&l.not_after).to_string(),
                plain::line(&l.subject).into_owned(),
            ),
            None => ("-".into(), "-".into()),
        };
        let mut codes: Vec<&str> = r
            .problems
            .iter()
            .filter(|p| p.severity != Severity::Info)
            .map(|p| p.code.as_str())
            .collect();
        codes.dedup();
        let codes = if codes.is_empty() {
            "-".to_string()
        } else {
            codes.join(",")
        };
        writeln!(
            out,
            "{:<width$}  {:<10}  {:<10}  {:<30}  {codes}",
            plain::line(&r.file),
            r.status.as_str(),
            expires,
            leaf
        )?;
    }
    Ok(())
}
