//! Answers one path-validation question in-process, as the conformance suite asks it: a leaf,
//! untrusted intermediates, the only trust anchors, a time and a host name go through the
//! stages `inspect` uses (pool -> chain::search with no fetching -> chain::choose -> diagnose)
//! and come back as a [`Status`] with its findings. `tests/limbo.rs` runs x509-limbo through it.
//!
//! Nothing here decides validity itself: a path is valid when diagnose finds no error that
//! serving the built chain would not fix ([`Judgement::is_valid`]), so the suite measures the
//! receiver rules where they live.

use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;

use crate::cert::Certificate;
use crate::chain::{self, Budget, Memo, Model, Role};
use crate::diagnose::{self, Case, Finding, KeyStatus, Status};
use crate::pool::{Pool, Source};
use crate::receivers::Opinion;

/// The name the leaf must be valid for (RFC 6125 §6: a DNS name, or an IP address).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Host<'a> {
    Dns(&'a str),
    Ip(IpAddr),
}

/// One path-validation question.
#[derive(Debug, Clone)]
pub struct Question<'a> {
    /// The end-entity certificate, DER.
    pub leaf: &'a [u8],
    /// Candidate issuers, DER, not trusted: they become links only where a signature verifies.
    pub intermediates: &'a [Vec<u8>],
    /// The only trust anchors (no embedded root store), DER.
    pub roots: &'a [Vec<u8>],
    /// Evaluation time, unix seconds.
    pub now: i64,
    pub host: Option<Host<'a>>,
    /// Which end of the connection presents the leaf (the purpose its EKU must allow).
    pub role: Role,
}

/// The answer: the verdict `inspect` would give, and why.
#[derive(Debug, Clone)]
pub struct Judgement {
    pub status: Status,
    /// Every finding, most severe first.
    pub findings: Vec<Finding>,
    /// SHA-256 of each certificate on the chosen path, leaf first.
    pub chain: Vec<[u8; 32]>,
    /// Intermediates and roots that are not certificates, left out (as `inspect` leaves out an
    /// unreadable file), one message each.
    pub ignored: Vec<String>,
    /// Both receivers' verdicts on the chosen path ([`crate::receivers`]).
    pub receivers: Option<Opinion>,
}

impl Judgement {
    /// A path to an anchor whose only errors are ones serving the built chain fixes (a missing
    /// intermediate, the order): what a receiver given that chain accepts.
    pub fn is_valid(&self) -> bool {
        matches!(self.status, Status::Ok | Status::Repairable)
    }
}

/// Why no judgement could be made.
#[derive(Debug, thiserror::Error)]
pub enum JudgeError {
    /// The leaf does not parse: a receiver rejects it before any path is built.
    #[error("the leaf: {0}")]
    Leaf(#[from] crate::cert::ParseError),
    /// Path building produced no path at all, not even the leaf alone.
    #[error("no path was built from the leaf")]
    NoPath,
}

/// Answers `q` with the stages `inspect` runs, offline: AIA is not followed, and only
/// `q.roots` are trusted.
pub fn judge(q: &Question<'_>) -> Result<Judgement, JudgeError> {
    let leaf = Arc::new(Certificate::from_der(q.leaf)?);
    let mut ignored = Vec::new();
    let mut pool = Pool::new();
    // As in `analyse`: the input first, then the intermediates, then the anchors.
    let leaf_id = pool.add(
        leaf.clone(),
        Source::Input {
            path: label("leaf"),
            index: 0,
        },
    );
    for (i, der) in q.intermediates.iter().enumerate() {
        let path = label(&format!("intermediates[{i}]"));
        match Certificate::from_der(der) {
            Ok(c) => {
                pool.add(Arc::new(c), Source::Intermediates { path });
            }
            Err(e) => ignored.push(format!("{}: {e}", path.display())),
        }
    }
    for (i, der) in q.roots.iter().enumerate() {
        let path = label(&format!("roots[{i}]"));
        match Certificate::from_der(der) {
            Ok(c) => {
                pool.add_anchor(Arc::new(c), Source::Roots { path });
            }
            Err(e) => ignored.push(format!("{}: {e}", path.display())),
        }
    }

    let budget = Budget::default();
    let model = Model {
        now: q.now,
        role: q.role,
    };
    let outcome = chain::search(leaf_id, &pool, &Memo::default(), &budget, &model);
    // The peer sends the leaf; the intermediates are a pool, as `--intermediates` is.
    let presented = [leaf_id];
    let choice = chain::choose(&outcome, &pool, &model, &presented).ok_or(JudgeError::NoPath)?;
    let ip_text;
    let host = match q.host {
        Some(Host::Dns(name)) => Some(name),
        Some(Host::Ip(ip)) => {
            ip_text = ip.to_string();
            Some(ip_text.as_str())
        }
        None => None,
    };
    let case = Case {
        pool: &pool,
        leaf: leaf_id,
        presented: &presented,
        outcome: &outcome,
        choice: &choice,
        aia: None,
        key: &KeyStatus::Unknown,
        budget: &budget,
        model,
        defects: &choice.defects,
        // Expiry warnings are not a validity question.
        warn_days: 0,
        host,
        // The question's leaf is what a peer presents, whatever it is.
        ca_subject: false,
    };
    let mut findings = diagnose::diagnose(&case);
    let receivers = crate::receivers::consult(&pool, &choice, &mut findings, model, host);
    Ok(Judgement {
        status: Status::of(&findings),
        chain: choice
            .best
            .ids
            .iter()
            .map(|&id| pool.cert(id).sha256)
            .collect(),
        findings,
        ignored,
        receivers,
    })
}

/// Where a certificate of the question came from, for findings that name a source.
fn label(name: &str) -> Arc<Path> {
    Arc::from(Path::new(name))
}
