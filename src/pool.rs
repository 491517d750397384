//! Pool stage: every candidate issuer, indexed by normalised subject, with where it came from
//! and whether it is a trust anchor.
//!
//! Candidates come from four places (inputs, `--intermediates`, the AIA download cache, trust
//! anchors) plus whatever AIA fetches add during chain building. A certificate seen twice is
//! stored once, keeping the first source. A trust anchor is a (subject, public key) pair (RFC
//! 5280 §6.1.1(d)), so a cross-signed copy of a root carries the root's trust.
//!
//! The embedded root store is added lazily: each root is read for its subject and key only,
//! and parsed the first time it is a candidate issuer ([`Pool::issuers_of`]), so a run whose
//! chains end elsewhere never parses it. That needs no `&mut`: the pool does not change while
//! the path searches read it, and grows only between their rounds (AIA fetches).

use std::hash::{BuildHasher, RandomState};
use std::path::Path;
use std::sync::{Arc, OnceLock};

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

/// A certificate of the pool, or an embedded trust anchor not needed yet.
#[derive(Debug)]
enum Slot {
    Parsed(Entry),
    Lazy(Box<LazyAnchor>),
}

/// A trust anchor known by its subject; parsed the first time it is a candidate issuer.
#[derive(Debug)]
struct LazyAnchor {
    der: &'static [u8],
    source: Source,
    subject_key: String,
    /// `None`: the DER does not parse, and the anchor is never a candidate.
    entry: OnceLock<Option<Entry>>,
}

impl LazyAnchor {
    fn entry(&self) -> Option<&Entry> {
        self.entry
            .get_or_init(|| {
                let cert = Certificate::from_der(self.der).ok()?;
                Some(Entry {
                    cert: Arc::new(cert),
                    source: self.source.clone(),
                    in_trust_store: true,
                })
            })
            .as_ref()
    }
}

#[derive(Debug, Default)]
pub struct Pool {
    entries: Vec<Slot>,
    /// Subject key (hashed with a per-run secret key, so that crafted names cannot collide on
    /// purpose) -> the certificates with it. Lookups compare the names themselves.
    by_subject: FxHashMap<u64, Vec<Id>>,
    names: RandomState,
    /// Fx-hashed: the keys are SHA-256 digests, which nobody can make collide.
    by_sha: FxHashMap<[u8; 32], Id>,
    /// Trust anchors: SubjectPublicKeyInfo hash -> subject keys trusted with that key.
    anchors: FxHashMap<[u8; 32], Vec<String>>,
    /// How many entries are [`Slot::Lazy`].
    lazy: usize,
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

    /// Adds a certificate; returns its id (the existing one if already present, an embedded
    /// anchor with the same DER included).
    pub fn add(&mut self, cert: Arc<Certificate>, source: Source) -> Id {
        if let Some(&id) = self.by_sha.get(&cert.sha256) {
            return id;
        }
        let subject = self.names.hash_one(&cert.subject_key);
        if let Some(id) = self.lazy_twin(subject, &cert.der) {
            self.by_sha.insert(cert.sha256, id);
            let lazy = match &self.entries[id] {
                Slot::Lazy(lazy) => lazy.source.clone(),
                Slot::Parsed(_) => source.clone(),
            };
            self.entries[id] = Slot::Parsed(Entry {
                cert,
                source: trusted_source(source, lazy),
                in_trust_store: true,
            });
            self.lazy -= 1;
            return id;
        }
        let id = self.entries.len();
        self.by_sha.insert(cert.sha256, id);
        // Most subjects are one certificate's: room for one id, not the default four.
        self.by_subject
            .entry(subject)
            .or_insert_with(|| Vec::with_capacity(1))
            .push(id);
        self.entries.push(Slot::Parsed(Entry {
            cert,
            source,
            in_trust_store: false,
        }));
        id
    }

    /// The embedded anchor not parsed into the pool yet whose DER is `der`, if any.
    fn lazy_twin(&self, subject: u64, der: &[u8]) -> Option<Id> {
        if self.lazy == 0 {
            return None;
        }
        self.by_subject
            .get(&subject)?
            .iter()
            .copied()
            .find(|&id| matches!(&self.entries[id], Slot::Lazy(lazy) if lazy.der == der))
    }

    /// Adds a trust anchor: its (subject, key) becomes trusted wherever it appears.
    pub fn add_anchor(&mut self, cert: Arc<Certificate>, source: Source) -> Id {
        self.trust(&cert.subject_key, cert.spki_sha256);
        let id = self.add(cert, source.clone());
        if let Slot::Parsed(entry) = &mut self.entries[id] {
            entry.in_trust_store = true;
            entry.source = trusted_source(entry.source.clone(), source);
        }
        id
    }

    fn trust(&mut self, subject_key: &str, spki_sha256: [u8; 32]) {
        let subjects = self.anchors.entry(spki_sha256).or_default();
        if !subjects.iter().any(|s| s == subject_key) {
            subjects.push(subject_key.to_string());
        }
    }

    /// Adds trust anchors without parsing them yet: their (subject, key) is trusted at once,
    /// each certificate is parsed the first time [`Pool::issuers_of`] finds it a candidate. A
    /// DER whose subject and key cannot be read is skipped.
    pub fn add_lazy_anchors(
        &mut self,
        ders: impl IntoIterator<Item = &'static [u8]>,
        source: Source,
    ) {
        for der in ders {
            let Some((subject_key, spki_sha256)) = crate::cert::peek_subject_and_key(der) else {
                continue;
            };
            self.trust(&subject_key, spki_sha256);
            let subject = self.names.hash_one(&subject_key);
            let ids = self.by_subject.entry(subject).or_default();
            // Already in the pool (a `--roots` file holding a public root): trusted as one.
            let twin = ids.iter().copied().find(|&id| match &self.entries[id] {
                Slot::Parsed(e) => e.cert.der == der,
                Slot::Lazy(lazy) => lazy.der == der,
            });
            if let Some(id) = twin {
                if let Slot::Parsed(entry) = &mut self.entries[id] {
                    entry.in_trust_store = true;
                    entry.source = trusted_source(entry.source.clone(), source.clone());
                }
                continue;
            }
            ids.push(self.entries.len());
            self.entries.push(Slot::Lazy(Box::new(LazyAnchor {
                der,
                source: source.clone(),
                subject_key,
                entry: OnceLock::new(),
            })));
            self.lazy += 1;
        }
    }

    /// Entry `id`, parsed if it was a lazy anchor. Every id the pool hands out is one of a
    /// certificate that parses.
    pub fn get(&self, id: Id) -> &Entry {
        self.parsed(id)
            .expect("the pool hands out ids of parsed certificates only")
    }

    pub fn cert(&self, id: Id) -> &Arc<Certificate> {
        &self.get(id).cert
    }

    /// Entry `id`, parsing a lazy anchor now; `None` if it does not parse.
    fn parsed(&self, id: Id) -> Option<&Entry> {
        match &self.entries[id] {
            Slot::Parsed(entry) => Some(entry),
            Slot::Lazy(lazy) => lazy.entry(),
        }
    }

    /// The subject key of entry `id`, without parsing a lazy anchor.
    fn subject_key(&self, id: Id) -> &str {
        match &self.entries[id] {
            Slot::Parsed(entry) => &entry.cert.subject_key,
            Slot::Lazy(lazy) => &lazy.subject_key,
        }
    }

    /// How many ids the pool has handed out or may hand out: lazy anchors included, parsed
    /// or not. A certificate added anew gets id `len()`.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The id of the certificate with this SHA-256 added to the pool (an embedded anchor
    /// only if added again as a certificate).
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

    /// Candidate issuers of `child`, lazy anchors parsed as needed: same name as its issuer,
    /// minus those whose subject key id contradicts its authority key id, or whose serial or
    /// issuer name contradicts the authority key identifier's (RFC 5280 §4.2.1.1; RFC 4158
    /// §3.5.12; OpenSSL's `X509_check_akid` refuses all three). Ordered so that
    /// a matching key id and a trust anchor come first, then by id for determinism.
    pub fn issuers_of(&self, child: &Certificate) -> Vec<Id> {
        let mut out: Vec<Id> = self.candidates(child).collect();
        out.sort_by_key(|&id| {
            let c = self.cert(id);
            let key_match = child.aki.is_some() && child.aki == c.ski;
            (!key_match, !self.is_anchor(c), id)
        });
        out
    }

    /// The certificates named as `child`'s issuer that came from one of its own AIA caIssuers
    /// URLs (fetched in this run or cached before), whatever their key ids say: what a fetch
    /// for `child` brought, so that one whose key does not verify it is reported, not ignored.
    pub fn fetched_issuers_of(&self, child: &Certificate) -> Vec<Id> {
        let ids = self
            .by_subject
            .get(&self.names.hash_one(&child.issuer_key))
            .map_or(&[][..], Vec::as_slice);
        ids.iter()
            .copied()
            .filter(|&id| match &self.entries[id] {
                Slot::Parsed(Entry {
                    cert,
                    source: Source::Aia { url } | Source::Cache { url },
                    ..
                }) => {
                    *cert.subject_key == *child.issuer_key
                        && child.ca_issuers.iter().any(|u| **u == **url)
                }
                _ => false,
            })
            .collect()
    }

    /// The certificates that bear `child`'s issuer name but that its authorityKeyIdentifier
    /// rules out as its issuer (another key id, serial number or issuer name): a CA re-keyed
    /// or re-issued under the same name. Not candidates; named in the report.
    pub fn named_but_ruled_out(&self, child: &Certificate) -> Vec<Id> {
        let ids = self
            .by_subject
            .get(&self.names.hash_one(&child.issuer_key))
            .map_or(&[][..], Vec::as_slice);
        let candidates: Vec<Id> = self.candidates(child).collect();
        ids.iter()
            .copied()
            .filter(|&id| self.subject_key(id) == &*child.issuer_key)
            .filter(|id| !candidates.contains(id))
            .filter(|&id| {
                self.parsed(id)
                    .is_some_and(|e| e.cert.sha256 != child.sha256 || child.is_self_issued())
            })
            .collect()
    }

    /// The candidate issuers of `child`, unordered: see [`Pool::issuers_of`].
    fn candidates<'a>(&'a self, child: &'a Certificate) -> impl Iterator<Item = Id> + 'a {
        let ids = self
            .by_subject
            .get(&self.names.hash_one(&child.issuer_key))
            .map_or(&[][..], Vec::as_slice);
        ids.iter()
            .copied()
            .filter(|&id| self.subject_key(id) == &*child.issuer_key)
            .filter(|&id| {
                self.parsed(id).is_some_and(|e| {
                    let c = &e.cert;
                    (c.sha256 != child.sha256 || child.is_self_issued())
                        && match (&child.aki, &c.ski) {
                            (Some(aki), Some(ski)) => aki == ski,
                            _ => true,
                        }
                        && !child.akid_names_another_issuer(c)
                })
            })
    }
}

/// The source of a trust anchor also found elsewhere: a root also found in a pool or the cache
/// is reported as coming from the trust store, which is why it ends the chain; one presented
/// in an input keeps that source.
fn trusted_source(found: Source, store: Source) -> Source {
    if matches!(found, Source::Input { .. }) {
        found
    } else {
        store
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
    fn a_lazy_root_is_trusted_at_once_and_parsed_only_when_it_is_a_candidate() {
        let mut pool = Pool::new();
        pool.add_lazy_anchors(mozilla(), Source::MozillaRoots);
        let parsed = |pool: &Pool| {
            pool.entries
                .iter()
                .filter(|s| match s {
                    Slot::Parsed(_) => true,
                    Slot::Lazy(lazy) => lazy.entry.get().is_some(),
                })
                .count()
        };
        assert_eq!(parsed(&pool), 0, "nothing parsed yet");
        let roots: Vec<Certificate> = mozilla()
            .map(|der| Certificate::from_der(der).expect("parses"))
            .collect();
        // A self-signed root is its own issuer by name: asking for its issuers parses it (and
        // any other root with the same name), and nothing else, through a shared pool.
        let root = &roots[0];
        assert!(pool.is_anchor(root));
        let found = pool.issuers_of(root);
        let same_name = roots
            .iter()
            .filter(|r| r.subject_key == root.subject_key)
            .count();
        assert_eq!(parsed(&pool), same_name);
        assert!(found.iter().any(|&id| pool.cert(id).sha256 == root.sha256));
        assert!(found.iter().all(|&id| pool.get(id).in_trust_store));
        assert_eq!(pool.get(found[0]).source, Source::MozillaRoots);
        assert_eq!(pool.issuers_of(root), found, "asking twice finds the same");
        assert_eq!(parsed(&pool), same_name);
        // The same root in an input is the same entry, trusted, shown as the input.
        let input = Source::Input {
            path: Path::new("in.pem").into(),
            index: 0,
        };
        let id = pool.add(Arc::new(roots[1].clone()), input.clone());
        assert!(pool.issuers_of(&roots[1]).contains(&id));
        assert!(pool.get(id).in_trust_store);
        assert_eq!(pool.get(id).source, input);
        assert_eq!(pool.find(&roots[1].sha256), Some(id));
    }
}
