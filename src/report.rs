//! Report stage: the per-leaf results as a human report (stdout, readable at a glance) or as
//! one JSON document (`{"schema":1,"results":[...]}`). Field names and finding codes are a
//! stable interface; add fields, never rename or remove them.

use std::fmt;
use std::io::{self, Write};

use serde::Serialize;

use crate::cert::{format_time, Certificate};
use crate::diagnose::{Finding, Severity, Status};
use crate::pool::{Entry, Source};
use crate::write::WriteOutcome;

/// Version of the JSON layout.
pub const SCHEMA: u32 = 1;

#[derive(Debug, Serialize)]
pub struct Report {
    pub schema: u32,
    pub results: Vec<LeafResult>,
    /// Files that could not be used (unreadable, damaged, wrong password).
    pub errors: Vec<FileError>,
}

#[derive(Debug, Serialize)]
pub struct FileError {
    pub path: String,
    pub message: String,
    /// `false` for notes that do not affect the exit status (e.g. an encrypted key skipped).
    pub fatal: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct CertView {
    pub subject: String,
    pub issuer: String,
    pub sha256: String,
    pub serial: String,
    pub not_before: String,
    pub not_after: String,
}

impl CertView {
    pub fn of(c: &Certificate) -> CertView {
        CertView {
            subject: c.subject.clone(),
            issuer: c.issuer.to_string(),
            sha256: c.sha256_hex(),
            serial: c.serial.clone(),
            not_before: format_time(c.not_before),
            not_after: format_time(c.not_after),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct SourceView {
    /// `input`, `intermediates`, `cache`, `aia`, `mozilla-roots` or `roots`.
    pub kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
}

impl SourceView {
    pub fn of(s: &Source) -> SourceView {
        SourceView {
            kind: s.kind(),
            location: s.location(),
        }
    }
}

/// The source as the human report says it, made from the view when it is printed (the JSON
/// report does not need it).
impl fmt::Display for SourceView {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let at = self.location.as_deref().unwrap_or_default();
        match self.kind {
            "intermediates" => write!(f, "--intermediates {at}"),
            "cache" => write!(f, "AIA cache ({at})"),
            "aia" => write!(f, "AIA {at}"),
            "mozilla-roots" => write!(f, "trust store (Mozilla)"),
            "roots" => write!(f, "trust store ({at})"),
            _ => write!(f, "{at}"),
        }
    }
}

/// One certificate of the built chain.
#[derive(Debug, Clone, Serialize)]
pub struct ChainItem {
    pub subject: String,
    pub issuer: String,
    pub sha256: String,
    pub not_after: String,
    /// `leaf`, `intermediate` or `root`.
    pub role: &'static str,
    pub source: SourceView,
    /// How this certificate's signature was checked against the next one: `verified`,
    /// `unverifiable`, or absent for the last certificate.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signature: Option<&'static str>,
}

impl ChainItem {
    pub fn of(entry: &Entry, role: &'static str, signature: Option<&'static str>) -> ChainItem {
        ChainItem {
            subject: entry.cert.subject.clone(),
            issuer: entry.cert.issuer.to_string(),
            sha256: entry.cert.sha256_hex(),
            not_after: format_time(entry.cert.not_after),
            role,
            source: SourceView::of(&entry.source),
            signature,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Alternative {
    /// Subjects along the rejected path, leaf first.
    pub chain: Vec<String>,
    pub reason: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct WrittenFile {
    pub path: String,
    /// `created`, `updated`, `mode-fixed` or `unchanged`.
    pub action: WriteOutcome,
    pub mode: String,
    /// The file holds a private key (written owner-only or group-only, never shown in diffs).
    pub secret: bool,
    /// With `--backup`: where the previous version was kept.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backup: Option<String>,
}

/// How a probed server's chain was captured.
#[derive(Debug, Clone, Serialize)]
pub struct TlsView {
    /// `TLSv1.3`, `TLSv1.2`, ...
    pub version: String,
    pub cipher: String,
    /// `rustls`, or `legacy-hello` for servers that only speak legacy TLS.
    pub method: &'static str,
    /// TLS was started with STARTTLS (else implicit TLS).
    pub starttls: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct LeafResult {
    /// probe only: the target, `host:port`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// The file the leaf was found in (probe: the target).
    pub file: String,
    /// `null` only for a probe that got no certificate.
    pub leaf: Option<CertView>,
    /// probe only: how the chain was captured.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsView>,
    pub status: Status,
    /// The certificates of the leaf's file, in file order.
    pub presented: Vec<CertView>,
    /// The chain built, leaf first, ending at the root when one was reached.
    pub chain: Vec<ChainItem>,
    pub problems: Vec<Finding>,
    /// Other paths found and why they were not chosen.
    pub alternatives: Vec<Alternative>,
    /// Where the matching private key was found.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// repair only: whether any file changed (or would change, with --check).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub changed: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub files: Option<Vec<WrittenFile>>,
    /// repair only: why nothing was written for this leaf.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_written: Option<String>,
}

/// Prints the JSON document.
pub fn print_json(report: &Report, out: &mut dyn Write) -> io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, report)?;
    writeln!(out)
}

/// One result as pretty JSON, indented for its place in the `results` array, so that results
/// can be serialised on any thread and written in order by [`print_json_rendered`].
pub fn render_result(r: &LeafResult) -> io::Result<Vec<u8>> {
    to_vec_indented(r, 2)
}

/// The JSON document of `results` (each from [`render_result`], in order) and `errors`: byte
/// for byte what [`print_json`] prints for the same report, without holding every result.
pub fn print_json_rendered(
    results: impl Iterator<Item = io::Result<Vec<u8>>>,
    errors: &[FileError],
    out: &mut dyn Write,
) -> io::Result<()> {
    // serde_json's PrettyFormatter: two spaces per level, `[]` for an empty array.
    write!(out, "{{\n  \"schema\": {SCHEMA},\n  \"results\": [")?;
    let mut any = false;
    for r in results {
        out.write_all(if any { b",\n    " } else { b"\n    " })?;
        out.write_all(&r?)?;
        any = true;
    }
    out.write_all(if any { b"\n  ]" } else { b"]" })?;
    out.write_all(b",\n  \"errors\": ")?;
    out.write_all(&to_vec_indented(errors, 1)?)?;
    out.write_all(b"\n}\n")
}

/// `value` as pretty JSON (serde_json's `PrettyFormatter`: two spaces per level) that starts
/// `level` levels deep, so that it can be pasted into an enclosing document as is.
fn to_vec_indented<T: Serialize + ?Sized>(value: &T, level: usize) -> io::Result<Vec<u8>> {
    let mut out = Vec::with_capacity(4096);
    let mut ser = serde_json::Serializer::with_formatter(&mut out, Nested::at(level));
    value.serialize(&mut ser)?;
    Ok(out)
}

/// serde_json's `PrettyFormatter`, starting at an indent level other than zero.
struct Nested {
    level: usize,
    has_value: bool,
}

impl Nested {
    fn at(level: usize) -> Nested {
        Nested {
            level,
            has_value: false,
        }
    }

    fn newline<W: ?Sized + Write>(&self, w: &mut W, comma: bool) -> io::Result<()> {
        const SPACES: &[u8] = &[b' '; 64];
        w.write_all(if comma { b",\n" } else { b"\n" })?;
        let mut n = self.level * 2;
        while n > 0 {
            let k = n.min(SPACES.len());
            w.write_all(&SPACES[..k])?;
            n -= k;
        }
        Ok(())
    }

    fn open<W: ?Sized + Write>(&mut self, w: &mut W, bracket: &[u8]) -> io::Result<()> {
        self.level += 1;
        self.has_value = false;
        w.write_all(bracket)
    }

    fn close<W: ?Sized + Write>(&mut self, w: &mut W, bracket: &[u8]) -> io::Result<()> {
        self.level -= 1;
        if self.has_value {
            self.newline(w, false)?;
        }
        w.write_all(bracket)
    }
}

impl serde_json::ser::Formatter for Nested {
    fn begin_array<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.open(w, b"[")
    }
    fn end_array<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.close(w, b"]")
    }
    fn begin_array_value<W: ?Sized + Write>(&mut self, w: &mut W, first: bool) -> io::Result<()> {
        self.newline(w, !first)
    }
    fn end_array_value<W: ?Sized + Write>(&mut self, _w: &mut W) -> io::Result<()> {
        self.has_value = true;
        Ok(())
    }
    fn begin_object<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.open(w, b"{")
    }
    fn end_object<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.close(w, b"}")
    }
    fn begin_object_key<W: ?Sized + Write>(&mut self, w: &mut W, first: bool) -> io::Result<()> {
        self.newline(w, !first)
    }
    fn begin_object_value<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        w.write_all(b": ")
    }
    fn end_object_value<W: ?Sized + Write>(&mut self, _w: &mut W) -> io::Result<()> {
        self.has_value = true;
        Ok(())
    }
}

/// One line per result: target, status, leaf expiry, leaf, problem codes.
pub fn print_brief(report: &Report, out: &mut dyn Write) -> io::Result<()> {
    let width = report
        .results
        .iter()
        .map(|r| r.file.len())
        .max()
        .unwrap_or(6)
        .max(6);
    writeln!(
        out,
        "{:<width$}  {:<10}  {:<10}  {:<30}  PROBLEMS",
        "TARGET", "STATUS", "EXPIRES", "LEAF"
    )?;
    for r in &report.results {
        let (expires, leaf) = match &r.leaf {
            Some(l) => (
                l.not_after.get(..10).unwrap_or(&l.not_after).to_string(),
                l.subject.clone(),
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
            r.file,
            r.status.as_str(),
            expires,
            leaf
        )?;
    }
    Ok(())
}

/// Prints the human report.
pub fn print_human(report: &Report, check: bool, out: &mut dyn Write) -> io::Result<()> {
    print_human_results(&report.results, check, out)
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
mod style {
    use anstyle::{AnsiColor, Style};
    pub const OK: Style = AnsiColor::Green.on_default().bold();
    pub const WARN: Style = AnsiColor::Yellow.on_default().bold();
    pub const BAD: Style = AnsiColor::Red.on_default().bold();
    pub const DIM: Style = Style::new().dimmed();
    pub const TITLE: Style = Style::new().bold();
}

fn status_style(status: Status) -> anstyle::Style {
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
    writeln!(out, "{title}{}{title:#}  {st}[{verdict}]{st:#}", r.file)?;
    if let Some(tls) = &r.tls {
        let how = if tls.starttls {
            "STARTTLS"
        } else {
            "implicit TLS"
        };
        writeln!(out, "  served over {how}, {} {}", tls.version, tls.cipher)?;
    }
    if let Some(leaf) = &r.leaf {
        writeln!(out, "  leaf: {}", leaf.subject)?;
    }
    if r.leaf.is_some() {
        let order = if r.target.is_some() {
            "as served"
        } else {
            "file order"
        };
        writeln!(out, "  presented ({order}):")?;
        for (i, c) in r.presented.iter().enumerate() {
            writeln!(out, "    {i}  {}", c.subject)?;
        }
        writeln!(out, "  chain built:")?;
    }
    for (i, c) in r.chain.iter().enumerate() {
        let not_after = c.not_after.get(..10).unwrap_or(&c.not_after);
        writeln!(out, "    {i}  {}  ({})", c.subject, c.role)?;
        writeln!(
            out,
            "       expires {not_after}  sha256 {}  from {}",
            &c.sha256[..16],
            c.source
        )?;
        if c.signature == Some("unverifiable") {
            writeln!(
                out,
                "       signature not verifiable; linked by name and key id"
            )?;
        }
    }
    if !r.alternatives.is_empty() {
        writeln!(out, "  other paths, not chosen:")?;
        for alt in &r.alternatives {
            writeln!(out, "    {}: {}", alt.chain.join(" <- "), alt.reason)?;
        }
    }
    if let Some(k) = &r.key {
        writeln!(out, "  private key: {k}")?;
    }
    if r.problems.is_empty() {
        writeln!(out, "  problems: none")?;
    } else {
        writeln!(out, "  problems:")?;
        for p in &r.problems {
            let (sev, st) = match p.severity {
                Severity::Error => ("error  ", style::BAD),
                Severity::Warning => ("warning", style::WARN),
                Severity::Info => ("info   ", style::DIM),
            };
            writeln!(
                out,
                "    {st}{sev}{st:#} {}: {}",
                p.code.as_str(),
                p.message
            )?;
            if let Some(view) = &p.receiver_view {
                let dim = style::DIM;
                writeln!(out, "            {dim}receivers: {view}{dim:#}")?;
            }
        }
    }
    if let Some(why) = &r.not_written {
        writeln!(out, "  nothing written: {why}")?;
    }
    if let Some(files) = &r.files {
        let remaining: Vec<&str> = r
            .problems
            .iter()
            .filter(|p| p.severity == Severity::Error && !p.repairable)
            .map(|p| p.code.as_str())
            .collect();
        if remaining.is_empty() {
            writeln!(out, "  after repair: no error remains")?;
        } else {
            writeln!(out, "  after repair, still wrong: {}", remaining.join(", "))?;
        }
        let verb = if check { "would write" } else { "wrote" };
        let changed: Vec<&WrittenFile> = files.iter().filter(|f| f.action.changed()).collect();
        if changed.is_empty() {
            writeln!(out, "  files: all up to date, nothing changed")?;
        } else {
            writeln!(out, "  {verb}:")?;
            for f in changed {
                let action = match f.action {
                    WriteOutcome::Created => "new",
                    WriteOutcome::Updated => "updated",
                    WriteOutcome::ModeFixed => "mode fixed",
                    WriteOutcome::Unchanged => "unchanged",
                };
                match &f.backup {
                    Some(b) => writeln!(
                        out,
                        "    {}  ({action}, {}, previous kept as {b})",
                        f.path, f.mode
                    )?,
                    None => writeln!(out, "    {}  ({action}, {})", f.path, f.mode)?,
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    //! The streamed JSON writer must print exactly what serde_json prints for the whole report;
    //! a source shown from its view reads as the source itself.

    use super::*;
    use crate::diagnose::{Code, Severity};

    #[test]
    fn a_source_view_is_shown_as_its_source() {
        let path: std::sync::Arc<std::path::Path> = std::path::Path::new("/etc/ssl/a.pem").into();
        let url = "http://ca.example.test/int.der".to_string();
        for source in [
            Source::Input {
                path: path.clone(),
                index: 2,
            },
            Source::Intermediates { path: path.clone() },
            Source::Cache { url: url.clone() },
            Source::Aia { url },
            Source::MozillaRoots,
            Source::Roots { path },
        ] {
            assert_eq!(SourceView::of(&source).to_string(), source.to_string());
        }
    }

    fn result(n: usize) -> LeafResult {
        let view = CertView {
            subject: format!("CN=leaf{n}.example.test"),
            issuer: "CN=Int \"quoted\"\nand a line break".into(),
            sha256: "ab".repeat(32),
            serial: "01".into(),
            not_before: "2025-01-01T00:00:00Z".into(),
            not_after: "2035-01-01T00:00:00Z".into(),
        };
        LeafResult {
            target: None,
            file: format!("tree/{n}.pem"),
            leaf: Some(view.clone()),
            tls: None,
            status: Status::Repairable,
            presented: vec![view],
            chain: Vec::new(),
            problems: vec![Finding {
                code: Code::MissingIntermediate,
                severity: Severity::Error,
                cert: None,
                message: "message with\nline break".into(),
                receiver_view: Some("450 4.4.317".into()),
                url: None,
                detail: None,
                repairable: true,
            }],
            alternatives: Vec::new(),
            key: None,
            changed: None,
            files: None,
            not_written: None,
        }
    }

    fn error() -> FileError {
        FileError {
            path: "bad.pem".into(),
            message: "not a certificate".into(),
            fatal: true,
        }
    }

    #[test]
    fn rendered_json_is_byte_for_byte_the_serde_document() {
        for (n, errors) in [
            (0, vec![]),
            (0, vec![error()]),
            (1, vec![]),
            (3, vec![error(), error()]),
        ] {
            let results: Vec<LeafResult> = (0..n).map(result).collect();
            let rendered: Vec<io::Result<Vec<u8>>> = results.iter().map(render_result).collect();
            let mut streamed = Vec::new();
            print_json_rendered(rendered.into_iter(), &errors, &mut streamed)
                .expect("writes to a Vec");
            let mut whole = Vec::new();
            let report = Report {
                schema: SCHEMA,
                results,
                errors,
            };
            print_json(&report, &mut whole).expect("writes to a Vec");
            assert_eq!(
                String::from_utf8_lossy(&streamed),
                String::from_utf8_lossy(&whole),
                "{n} results, {} errors",
                report.errors.len()
            );
        }
    }
}
