//! Pool stage: every candidate issuer, indexed by normalised subject, with where it came from
//! and whether it is a trust anchor.
//!
//! Candidates come from four places (inputs, `--intermediates`, the AIA download cache, trust
//! anchors) plus whatever AIA fetches add during chain building. A certificate seen twice is
//! stored once, keeping the first source. A trust anchor is a (subject, public key) pair (RFC
//! 5280 §6.1.1(d)), so a cross-signed copy of a root carries the root's trust.
//!
//! The embedded root store is added lazily: each root is read for its subject and key only,
//! and parsed into the pool the first time a certificate names it as its issuer
//! ([`Pool::load_issuers_of`]), so a run whose chains end elsewhere never parses it.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::path::Path;
use std::sync::Arc;

use rustc_hash::FxHashMap;

use crate::cert::Certificate;

/// Where a certificate came from, for the report and for trust decisions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// An input file, at this position.
    Input { path: Arc<Path>, index: usize },
    /// An `--intermediates` file.
    Intermediates { path: Arc<Path> },
    /// The AIA download cache, fetched earlier from this URL.
    Cache { url: String },
    /// Fetched in this run from this AIA URL.
    Aia { url: String },
    /// The embedded Mozilla root store.
    MozillaRoots,
    /// A `--roots` file.
    Roots { path: Arc<Path> },
}

impl Source {
    /// Stable machine-readable kind, used in JSON.
    pub fn kind(&self) -> &'static str {
        match self {
            Source::Input { .. } => "input",
            Source::Intermediates { .. } => "intermediates",
            Source::Cache { .. } => "cache",
            Source::Aia { .. } => "aia",
            Source::MozillaRoots => "mozilla-roots",
            Source::Roots { .. } => "roots",
        }
    }

    /// The path or URL, if any.
    pub fn location(&self) -> Option<String> {
        match self {
            Source::Input { path, .. }
            | Source::Intermediates { path }
            | Source::Roots { path } => Some(crate::load::path_text(path)),
            Source::Cache { url } | Source::Aia { url } => Some(url.clone()),
            Source::MozillaRoots => None,
        }
    }

    pub fn is_fetched(&self) -> bool {
        matches!(self, Source::Aia { .. } | Source::Cache { .. })
    }
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::Input { path, .. } => write!(f, "{}", path.display()),
            Source::Intermediates { path } => write!(f, "--intermediates {}", path.display()),
            Source::Cache { url } => write!(f, "AIA cache ({url})"),
            Source::Aia { url } => write!(f, "AIA {url}"),
            Source::MozillaRoots => write!(f, "trust store (Mozilla)"),
            Source::Roots { path } => write!(f, "trust store ({})", path.display()),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Entry {
    pub cert: Arc<Certificate>,
    /// Where the certificate was first found.
    pub source: Source,
    /// This very certificate (not only its subject and key) is in a trust store, whatever
    /// source it was first seen in.
    pub in_trust_store: bool,
}

/// Index into the pool.
pub type Id = usize;

#[derive(Debug, Default)]
pub struct Pool {
    entries: Vec<Entry>,
    /// Subject key (hashed with a per-run secret key, so that crafted names cannot collide on
    /// purpose) -> the certificates with it. Lookups compare the names themselves.
    by_subject: FxHashMap<u64, Vec<Id>>,
    names: RandomState,
    /// Fx-hashed: the keys are SHA-256 digests, which nobody can make collide.
    by_sha: FxHashMap<[u8; 32], Id>,
    /// Trust anchors: SubjectPublicKeyInfo hash -> subject keys trusted with that key.
    anchors: FxHashMap<[u8; 32], Vec<String>>,
    /// Trust anchors not parsed yet, by subject key.
    unparsed: HashMap<String, Vec<(&'static [u8], Source)>>,
    /// See [`Pool::generation`].
    changes: u64,
}

impl Pool {
    pub fn new() -> Pool {
        Pool::default()
    }

    /// Makes room for `n` more certificates.
    pub fn reserve(&mut self, n: usize) {
        self.entries.reserve(n);
        self.by_sha.reserve(n);
        self.by_subject.reserve(n);
    }

    /// How many times the pool has changed (a certificate or an anchor added, lazy anchors
    /// added or parsed): what was found in it is still true while this stays the same.
    pub fn generation(&self) -> u64 {
        self.changes
    }

    /// Adds a certificate; returns its id (the existing one if already present).
    pub fn add(&mut self, cert: Arc<Certificate>, source: Source) -> Id {
        if let Some(&id) = self.by_sha.get(&cert.sha256) {
            return id;
        }
        self.changes += 1;
        let id = self.entries.len();
        self.by_sha.insert(cert.sha256, id);
        // Most subjects are one certificate's: room for one id, not the default four.
        self.by_subject
            .entry(self.names.hash_one(&cert.subject_key))
            .or_insert_with(|| Vec::with_capacity(1))
            .push(id);
        self.entries.push(Entry {
            cert,
            source,
            in_trust_store: false,
        });
        id
    }

    /// Adds a trust anchor: its (subject, key) becomes trusted wherever it appears.
    pub fn add_anchor(&mut self, cert: Arc<Certificate>, source: Source) -> Id {
        self.changes += 1;
        let subjects = self.anchors.entry(cert.spki_sha256).or_default();
        if !subjects.contains(&cert.subject_key) {
            subjects.push(cert.subject_key.clone());
        }
        let id = self.add(cert, source.clone());
        let entry = &mut self.entries[id];
        entry.in_trust_store = true;
        // A root also found in a pool or the cache is reported as coming from the trust
        // store, which is why it ends the chain; one presented in an input keeps that source.
        if !matches!(entry.source, Source::Input { .. }) {
            entry.source = source;
        }
        id
    }

    /// Adds trust anchors without parsing them yet: their (subject, key) is trusted at once,
    /// the certificates themselves join the pool when [`Pool::load_issuers_of`] asks for
    /// their name. A DER whose subject and key cannot be read is skipped.
    pub fn add_lazy_anchors(
        &mut self,
        ders: impl IntoIterator<Item = &'static [u8]>,
        source: Source,
    ) {
        self.changes += 1;
        for der in ders {
            let Some((subject_key, spki_sha256)) = crate::cert::peek_subject_and_key(der) else {
                continue;
            };
            let subjects = self.anchors.entry(spki_sha256).or_default();
            if !subjects.contains(&subject_key) {
                subjects.push(subject_key.clone());
            }
            self.unparsed
                .entry(subject_key)
                .or_default()
                .push((der, source.clone()));
        }
    }

    /// Whether [`Pool::load_issuers_of`] would add anything for `child`.
    pub fn has_pending_issuers(&self, child: &Certificate) -> bool {
        !self.unparsed.is_empty() && self.unparsed.contains_key(&*child.issuer_key)
    }

    /// Parses into the pool the lazily added anchors that could have issued `child` (same
    /// name as its issuer). Call before [`Pool::issuers_of`]; a no-op once done for a name.
    pub fn load_issuers_of(&mut self, child: &Certificate) {
        // Without a lazy store (or once it is all parsed), nothing to hash a name for.
        if self.unparsed.is_empty() {
            return;
        }
        let Some(pending) = self.unparsed.remove(&*child.issuer_key) else {
            return;
        };
        for (der, source) in pending {
            if let Ok(cert) = Certificate::from_der(der) {
                self.add_anchor(Arc::new(cert), source);
            }
        }
    }

    pub fn get(&self, id: Id) -> &Entry {
        &self.entries[id]
    }

    pub fn cert(&self, id: Id) -> &Arc<Certificate> {
        &self.entries[id].cert
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn find(&self, sha256: &[u8; 32]) -> Option<Id> {
        self.by_sha.get(sha256).copied()
    }

    /// Whether this certificate's (subject, key) is a trust anchor.
    pub fn is_anchor(&self, cert: &Certificate) -> bool {
        self.anchors
            .get(&cert.spki_sha256)
            .is_some_and(|subjects| subjects.contains(&cert.subject_key))
    }

    pub fn has_anchors(&self) -> bool {
        !self.anchors.is_empty()
    }

    /// Candidate issuers of `child` among the certificates parsed so far (see
    /// [`Pool::load_issuers_of`]): same name as its issuer, minus those whose subject key id
    /// contradicts its authority key id (RFC 5280 §4.2.1.1; RFC 4158 §3.5.12). Ordered so that
    /// a matching key id and a trust anchor come first, then by id for determinism.
    pub fn issuers_of(&self, child: &Certificate) -> Vec<Id> {
        let mut out: Vec<Id> = self.candidates(child).collect();
        out.sort_by_key(|&id| {
            let c = &self.entries[id].cert;
            let key_match = child.aki.is_some() && child.aki == c.ski;
            (!key_match, !self.is_anchor(c), id)
        });
        out
    }

    /// Whether `child` has any candidate issuer ([`Pool::issuers_of`] is not empty), without
    /// gathering and ordering them.
    pub fn has_issuers_of(&self, child: &Certificate) -> bool {
        self.candidates(child).next().is_some()
    }

    /// The candidate issuers of `child`, unordered: see [`Pool::issuers_of`].
    fn candidates<'a>(&'a self, child: &'a Certificate) -> impl Iterator<Item = Id> + 'a {
        let ids = self
            .by_subject
            .get(&self.names.hash_one(&child.issuer_key))
            .map_or(&[][..], Vec::as_slice);
        ids.iter()
            .copied()
            .filter(|&id| *self.entries[id].cert.subject_key == *child.issuer_key)
            .filter(|&id| {
                let c = &self.entries[id].cert;
                c.sha256 != child.sha256 || child.is_self_issued()
            })
            .filter(|&id| match (&child.aki, &self.entries[id].cert.ski) {
                (Some(aki), Some(ski)) => aki == ski,
                _ => true,
            })
    }
}

#[cfg(test)]
mod tests {
    //! The lazily added root store must behave as if it had been parsed up front.

    use super::*;

    fn mozilla() -> impl Iterator<Item = &'static [u8]> {
        webpki_root_certs::TLS_SERVER_ROOT_CERTS
            .iter()
            .map(|der| -> &'static [u8] { der.as_ref() })
    }

    #[test]
    fn peeked_subject_and_key_agree_with_a_full_parse_for_every_embedded_root() {
        let mut checked = 0;
        for der in mozilla() {
            let cert = Certificate::from_der(der).expect("an embedded root parses");
            let peeked = crate::cert::peek_subject_and_key(der).expect("an embedded root peeks");
            assert_eq!(peeked, (cert.subject_key.clone(), cert.spki_sha256));
            checked += 1;
        }
        assert!(checked > 100, "only {checked} embedded roots");
    }

    #[test]
    fn a_lazy_root_is_trusted_at_once_and_parsed_only_when_its_name_is_asked_for() {
        let mut pool = Pool::new();
        pool.add_lazy_anchors(mozilla(), Source::MozillaRoots);
        assert!(pool.is_empty(), "nothing parsed yet");
        let roots: Vec<Certificate> = mozilla()
            .map(|der| Certificate::from_der(der).expect("parses"))
            .collect();
        // A self-signed root is its own issuer by name: asking for its issuers loads it (and
        // any other root with the same name), and nothing else.
        let root = &roots[0];
        assert!(pool.is_anchor(root));
        assert!(pool.issuers_of(root).is_empty());
        pool.load_issuers_of(root);
        let same_name = roots
            .iter()
            .filter(|r| r.subject_key == root.subject_key)
            .count();
        assert_eq!(pool.len(), same_name);
        let found = pool.issuers_of(root);
        assert!(found.iter().any(|&id| pool.cert(id).sha256 == root.sha256));
        assert!(found.iter().all(|&id| pool.get(id).in_trust_store));
        assert_eq!(pool.get(found[0]).source, Source::MozillaRoots);
        pool.load_issuers_of(root);
        assert_eq!(pool.len(), same_name, "loading twice adds nothing");
    }
}
