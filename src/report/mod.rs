//! Report stage: the per-leaf results as a human report (stdout, readable at a glance), one
//! line per target (`--brief`), Nagios plugin output, or one JSON document
//! (`{"schema":1,"results":[...]}`). Field names and finding codes are a stable interface; add
//! fields, never rename or remove them.
//!
//! The JSON document holds certificate text as it is (serde_json escapes it); every text
//! format writes it through [`crate::render::plain`], so a name cannot start a line of its own.

mod brief;
mod dane;
pub mod deployed;
mod domain;
mod human;
mod json;
pub mod nagios;
pub mod repair_in_place;

pub use brief::print_brief;
pub use human::{print_human, print_human_results};
pub use json::{print_json, print_json_rendered, render_result};

use std::fmt;

use serde::Serialize;

use crate::cert::{format_time, Certificate};
use crate::diagnose::{Finding, Status};
use crate::pool::{Entry, Source};
use crate::receivers::{Agreement, Opinion, Policy, Receiver, Verdict};
use crate::write::WriteOutcome;

/// Version of the JSON layout.
pub const SCHEMA: u32 = 1;

#[derive(Debug, Serialize)]
pub struct Report {
    pub schema: u32,
    pub results: Vec<LeafResult>,
    /// Files that could not be used (unreadable, damaged, wrong password).
    pub errors: Vec<FileError>,
    /// `probe --domain`: each mail domain, its MX hosts (with indices into `results`),
    /// DNSSEC, DANE and TLS-RPT.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub domains: Vec<crate::domain::DomainResult>,
}

#[derive(Debug, Clone, Serialize)]
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
    /// How this certificate's signature was checked against the next one: always
    /// `verified` (an unverifiable signature is no link), absent for the last certificate.
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

/// One receiver's verdict on the chosen chain.
#[derive(Debug, Clone, Serialize)]
pub struct ReceiverView {
    /// `openssl3` (chainfix's model) or `rustls-webpki`.
    pub receiver: Receiver,
    /// The name the human report shows. Not in JSON, which names the receiver by its code
    /// (a fleet's report would repeat it for every leaf).
    #[serde(skip)]
    pub name: &'static str,
    /// `accepted` or `rejected`.
    pub verdict: &'static str,
    /// Why it rejects: a chainfix finding code for `openssl3`, webpki's error name for
    /// `rustls-webpki`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<&'static str>,
}

impl ReceiverView {
    /// Both verdicts of `opinion`, in report order.
    pub fn list(opinion: &Opinion) -> Vec<ReceiverView> {
        opinion
            .verdicts()
            .into_iter()
            .map(|(receiver, verdict)| ReceiverView {
                receiver,
                name: receiver.name(),
                verdict: if verdict.accepted() {
                    "accepted"
                } else {
                    "rejected"
                },
                reason: match verdict {
                    Verdict::Accepted => None,
                    Verdict::Rejected(r) => Some(r.as_str()),
                },
            })
            .collect()
    }
}

/// Why the receivers disagree.
#[derive(Debug, Clone, Serialize)]
pub struct DisagreementView {
    /// The documented policy (`p521`, `cn-fallback`, ...), or `null`: nothing explains the
    /// difference, which is a bug of chainfix's model or of webpki.
    pub policy: Option<Policy>,
    pub description: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub citation: Option<&'static str>,
}

impl DisagreementView {
    pub fn of(opinion: &Opinion) -> Option<DisagreementView> {
        match opinion.agreement {
            Agreement::Agree => None,
            Agreement::Explained(p) => Some(DisagreementView {
                policy: Some(p),
                description: p.description(),
                citation: Some(p.citation()),
            }),
            Agreement::Unexplained => Some(DisagreementView {
                policy: None,
                description: "no documented policy difference explains it; please report it",
                citation: None,
            }),
        }
    }
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
    /// `end-entity`, or `ca` for a CA certificate given without any end-entity certificate
    /// (its own path is built and judged as a CA's; `repair` writes only the chain bundle).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject_kind: Option<&'static str>,
    /// Each receiver's verdict on the chosen chain, side by side (absent for a CA subject and
    /// a probe that got no chain).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub receivers: Vec<ReceiverView>,
    /// When the receivers disagree: the documented policy behind it, or `policy: null`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub receivers_disagreement: Option<DisagreementView>,
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
    /// repair only, for a CA subject: why only the chain bundle (fullchain.pem, chain.pem,
    /// cert.pem) was written, and no MTA configuration or key file.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bundle_only: Option<String>,
    /// repair only: why nothing was written for this leaf.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_written: Option<String>,
    /// repair only: the files that could not be written, each with the reason (empty when
    /// every file is in place). Each is also in the document's `errors`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub write_errors: Option<Vec<FileError>>,
    /// repair only: files an earlier run wrote here that this run did not write, and what
    /// became of each.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stale_files: Option<Vec<StaleFile>>,
    /// With `--tlsa`/`--tlsa-file`: the verdict of each TLSA record for the presented chain
    /// and for the chain repair writes, and the records to publish.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dane: Option<crate::dane::assess::View>,
}

/// A file an earlier `repair` wrote that this run does not write.
#[derive(Debug, Clone, Serialize)]
pub struct StaleFile {
    pub path: String,
    /// `kept`, `removed`, or `moved` (to `backup`; with --check, what would be done).
    pub action: &'static str,
    /// Why a file is kept: `no-prune` (--prune not given), `modified` (edited since chainfix
    /// wrote it: no longer chainfix's), `current-key` (holds this certificate's key),
    /// `unreadable-key` (holds a key chainfix cannot read), `cannot-remove`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backup: Option<String>,
}

#[cfg(test)]
mod tests {
    //! A source shown from its view reads as the source itself.

    use super::*;

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
}
