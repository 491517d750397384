//! JSON output: the whole report as one document, or results rendered one by one (on any
//! thread) and streamed in order, byte for byte the same document.

use std::io::{self, Write};

use serde::Serialize;

use super::{FileError, LeafResult, Report, SCHEMA};

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

#[cfg(test)]
mod tests {
    //! The streamed JSON writer must print exactly what serde_json prints for the whole report.

    use super::*;
    use crate::diagnose::{Code, Finding, Severity, Status};
    use crate::report::CertView;

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
            write_errors: None,
            stale_files: None,
            dane: None,
            subject_kind: None,
            receivers: Vec::new(),
            receivers_disagreement: None,
            bundle_only: None,
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
                domains: Vec::new(),
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
