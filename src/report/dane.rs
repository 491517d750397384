//! The DANE block of the human report: each TLSA record's verdict for the presented chain and
//! for the chain repair writes, and the records to publish.

use std::io::{self, Write};

use crate::dane::assess::View;
use crate::dane::judge::{SetVerdict, Verdict};
use crate::dane::HostFrom;
use crate::render::plain;

pub(super) fn print(d: &View, out: &mut dyn Write) -> io::Result<()> {
    let host = match (&d.host, d.host_from) {
        (Some(h), HostFrom::RecordOwner) => format!("{} (from the records' owner)", plain::line(h)),
        (Some(h), HostFrom::Dns) => format!("{} (looked up in DNS)", plain::line(h)),
        (Some(h), _) => format!("{} (from --host)", plain::line(h)),
        (None, _) => "unknown: no DANE-TA name check was made (give --host)".into(),
    };
    writeln!(out, "  DANE (TLSA _{}._tcp, host {host}):", d.port)?;
    writeln!(
        out,
        "    presented chain: {}; chain repair writes: {}{}",
        set(d.presented),
        set(d.written),
        if d.serves_root {
            " (serves the root: a DANE-TA record names it)"
        } else {
            ""
        }
    )?;
    for r in &d.records {
        writeln!(out, "    {}  {}", plain::line(&r.origin), short(&r.record))?;
        writeln!(
            out,
            "       presented: {}; written: {}",
            verdict(&r.presented),
            verdict(&r.written)
        )?;
    }
    writeln!(
        out,
        "    records to publish for the written chain (tlsa.zone):"
    )?;
    for p in &d.publish {
        writeln!(out, "      {}", p.record)?;
    }
    Ok(())
}

fn set(v: SetVerdict) -> &'static str {
    match v {
        SetVerdict::Authenticated => "matches",
        SetVerdict::Failed => "DOES NOT MATCH (4.7.323)",
        SetVerdict::NoUsableRecords => "no usable record (TLS without authentication)",
    }
}

fn verdict(v: &Verdict) -> String {
    match v {
        Verdict::Match {
            depth: 0,
            name_checked: _,
        } => "match (the server's certificate)".into(),
        Verdict::Match {
            depth,
            name_checked: true,
        } => format!("match (CA at depth {depth}, name checked)"),
        Verdict::Match { depth, .. } => {
            format!("match (CA at depth {depth}, no host: name not checked)")
        }
        Verdict::Mismatch => "no match".into(),
        Verdict::Unusable { why } => format!("unusable: {why}"),
        Verdict::AnchorNotServed { subject } => {
            format!("names {}, which is not served", plain::line(subject))
        }
        Verdict::NameMismatch => "anchor served, but the host is not among the leaf's names".into(),
        Verdict::Expired { subject } => {
            format!("anchor served, but {} is out of date", plain::line(subject))
        }
    }
}

/// The record with its data shortened to 16 hex digits.
fn short(record: &str) -> String {
    match record.get(..22) {
        Some(head) if record.len() > 24 => format!("{head}…"),
        _ => record.to_string(),
    }
}
