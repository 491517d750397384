//! The shared part of every subcommand: pool the inputs, pools and anchors, find the leaves of
//! each group of inputs, build and choose their chains (fetching over AIA), and diagnose them.
//! A group is what one subject presents: all files of `inspect`/`repair`, or the chain one
//! probed server sent, so that leaves are found, and de-duplicated, per group.

use std::collections::{HashMap, HashSet};
use std::ops::Range;
use std::sync::Arc;

use rayon::prelude::*;
use rustc_hash::FxHashMap;

use super::Config;
use crate::cert::Certificate;
use crate::chain::{self, Budget, Choice, Model, Role};
use crate::diagnose::{self, Case, Finding, KeyIndex, KeyStatus, Status};
use crate::emit::Material;
use crate::exit::Exit;
use crate::fetch::{Aia, AiaRecord, Fetcher, LazyHttpFetcher};
use crate::load::{self, FileProblem, Loaded, Located, LocatedKey};
use crate::pool::{Entry, Id, Pool, Source};
use crate::receivers::Opinion;
use crate::report::{Alternative, CertView, ChainItem, DisagreementView, LeafResult, ReceiverView};

/// The analysed inputs: the pool, and each leaf's chains built. Each leaf's chain is chosen and
/// diagnosed when its case is asked for ([`Analysis::case`]), so that a scan of a whole fleet
/// never holds every leaf's findings at once.
pub(super) struct Analysis {
    pub pool: Pool,
    leaves: Vec<Built>,
    /// Keys found among the inputs, and the one given with `--key`.
    keys: KeyIndex,
    aia: AiaRecord,
    budget: Budget,
    /// Per group: the host name the leaf must match (`probe`).
    hosts: Vec<Option<String>>,
    now: i64,
    role: Role,
    warn_days: i64,
    /// `--tlsa`, `--tlsa-file` and `--accept-dane-break`.
    dane: Option<Arc<crate::dane::RecordSet>>,
    /// Per group: the TLSA records in force for that server (`probe --domain`), in place of
    /// `dane`.
    group_dane: Vec<Option<Arc<crate::dane::RecordSet>>>,
    accept_dane_break: bool,
    pub problems: Vec<FileProblem>,
    pub input_certs: usize,
}

/// One leaf with its chains built; not yet chosen between nor diagnosed.
pub(super) struct Built {
    /// Index of the input group the leaf came from.
    pub group: usize,
    pub leaf: Id,
    /// The leaf as found: its file and position.
    pub located: Located,
    /// What the leaf's file (or server) presents, in order.
    pub presented: Vec<Id>,
    /// The subject is a CA certificate: the inputs held no end-entity certificate
    /// ([`find_leaves`]). Its path is judged as a CA's: no TLS keyUsage, no host name, no
    /// second opinion (webpki verifies end entities), and `repair` writes only the chain bundle.
    pub ca: bool,
    outcome: chain::Outcome,
}

impl Analysis {
    pub fn exit_for_load(&self) -> Exit {
        let failed = self.problems.iter().any(|p| p.fatal) || self.leaves.is_empty();
        if failed {
            Exit::Failure
        } else {
            Exit::Ok
        }
    }

    /// The receiver model the chains are judged by: `--role`, at `now`.
    fn model(&self) -> Model {
        Model {
            now: self.now,
            role: self.role,
        }
    }

    /// How many leaves (cases) there are.
    pub fn len(&self) -> usize {
        self.leaves.len()
    }

    pub fn is_empty(&self) -> bool {
        self.leaves.is_empty()
    }

    /// Leaf `i`, diagnosed.
    pub fn case(&self, i: usize) -> LeafCase<'_> {
        let built = &self.leaves[i];
        let cert = &built.located.cert;
        // Chosen again rather than kept: cheap, and a fleet's choices add up.
        let mut choice = chain::choose(&built.outcome, &self.pool, &self.model(), &built.presented)
            .expect("every built leaf has a path");
        if built.ca {
            let model = self.model();
            choice
                .defects
                .retain(|v| chain::rules::applies_to_ca_subject(v, &self.pool, &model));
        }
        // A CA subject names no host.
        let host = if built.ca {
            None
        } else {
            self.hosts.get(built.group).and_then(Option::as_deref)
        };
        let key = self.keys.status(cert, &built.located.path);
        let case = Case {
            pool: &self.pool,
            leaf: built.leaf,
            presented: &built.presented,
            outcome: &built.outcome,
            choice: &choice,
            aia: Some(&self.aia),
            key: &key,
            budget: &self.budget,
            model: self.model(),
            defects: &choice.defects,
            warn_days: self.warn_days,
            host,
            ca_subject: built.ca,
        };
        let mut problems = diagnose::diagnose(&case);
        let receivers = if built.ca {
            None
        } else {
            crate::receivers::consult(&self.pool, &choice, &mut problems, self.model(), host)
        };
        // TLSA records name the server's chain; a CA subject is no server's.
        let set = self
            .group_dane
            .get(built.group)
            .and_then(Option::as_ref)
            .or(self.dane.as_ref());
        let dane = set.filter(|_| !built.ca).map(|set| {
            super::dane::assess(
                set,
                &self.pool,
                built,
                &choice,
                self.now,
                self.accept_dane_break,
            )
        });
        if let Some(a) = &dane {
            problems.extend(a.findings.iter().cloned());
            problems.sort_by_key(|f| f.severity);
        }
        let status = Status::of(&problems);
        LeafCase {
            built,
            choice,
            key,
            problems,
            status,
            dane,
            receivers,
        }
    }

    /// Every leaf, diagnosed on all cores, in leaf order.
    pub fn cases(&self) -> Vec<LeafCase<'_>> {
        (0..self.len())
            .into_par_iter()
            .map(|i| self.case(i))
            .collect()
    }

    /// The first leaf of input group `group`, diagnosed.
    pub fn first_case_of(&self, group: usize) -> Option<LeafCase<'_>> {
        let i = self.leaves.iter().position(|b| b.group == group)?;
        Some(self.case(i))
    }

    /// Forgets the CA subjects ([`Built::ca`]): for `probe`, where a group is what one server
    /// presented and a CA certificate in leaf position is no leaf at all.
    pub fn drop_ca_subjects(&mut self) {
        self.leaves.retain(|b| !b.ca);
    }

    /// The TLSA records in force for each group's server (`probe --domain`: each MX host's
    /// own RRset, where DANE applies).
    pub fn set_group_dane(&mut self, sets: Vec<Option<Arc<crate::dane::RecordSet>>>) {
        self.group_dane = sets;
    }

    /// The first leaf of input group `group`, not diagnosed.
    pub fn first_leaf_of(&self, group: usize) -> Option<&Built> {
        self.leaves.iter().find(|b| b.group == group)
    }
}

/// One leaf, diagnosed. Its report entry ([`LeafCase::result`]) is made when it is printed.
pub(super) struct LeafCase<'a> {
    pub built: &'a Built,
    pub choice: Choice,
    pub key: KeyStatus,
    pub problems: Vec<Finding>,
    pub status: Status,
    /// The DANE verdicts, when TLSA records were given.
    pub dane: Option<crate::dane::Assessment>,
    /// Both receivers' verdicts on the chosen chain (`receivers`).
    pub receivers: Option<Opinion>,
}

impl<'a> LeafCase<'a> {
    /// The leaf's entry in the report.
    pub fn result(&self, pool: &Pool) -> LeafResult {
        let b = self.built;
        let mut result = leaf_result(
            pool,
            &b.located,
            &b.presented,
            &self.choice,
            &self.key,
            self.problems.clone(),
            self.status,
        );
        result.dane = self.dane.as_ref().map(|a| a.view.clone());
        result.subject_kind = Some(if b.ca { "ca" } else { "end-entity" });
        if let Some(opinion) = &self.receivers {
            result.receivers = ReceiverView::list(opinion);
            result.receivers_disagreement = DisagreementView::of(opinion);
        }
        result
    }

    /// The chain to write, or why none can be written.
    pub fn material<'b>(
        &'b self,
        pool: &'b Pool,
        include_root: bool,
    ) -> Result<Material<'b>, String> {
        let root_is_public = |c: &Certificate| {
            webpki_root_certs::TLS_SERVER_ROOT_CERTS
                .iter()
                .any(|d| d.as_ref() == c.der.as_slice())
        };
        let best = &self.choice.best;
        let certs: Vec<&Certificate> = best.ids.iter().map(|&id| pool.cert(id).as_ref()).collect();
        let last = certs[certs.len() - 1];
        let has_root = best.ends_at_root(pool);
        if !has_root && !best.anchored {
            return Err(if certs.len() == 1 && last.is_self_issued() {
                "the certificate is self-signed; there is no chain to write".into()
            } else {
                "the chain is incomplete (an issuer is missing); writing it would deploy a broken chain"
                    .into()
            });
        }
        // A chain the model receiver refuses is never written as a fix.
        if let Some(first) = self.choice.defects.first() {
            return Err(format!(
                "{}; writing the chain would deploy one that receivers reject",
                chain::rules::describe(first, pool)
            ));
        }
        let (intermediates, root) = if has_root {
            (certs[1..certs.len() - 1].to_vec(), Some(last))
        } else {
            (certs[1..].to_vec(), None)
        };
        Ok(Material {
            leaf: certs[0],
            intermediates,
            root,
            root_is_public: root.is_some_and(root_is_public),
            key: match &self.key {
                KeyStatus::Matched(k) => Some(&k.key),
                _ => None,
            },
            include_root,
            problems: &self.problems,
        })
    }
}

/// Analyses every group against one shared pool and AIA resolver.
pub(super) fn analyse(
    config: &Config,
    groups: &[Loaded],
    hosts: &[Option<String>],
    explicit_keys: &[LocatedKey],
    mut problems: Vec<FileProblem>,
) -> Analysis {
    let inputs: Vec<&Located> = groups.iter().flat_map(|g| &g.certs).collect();
    let found_keys: Vec<LocatedKey> = groups.iter().flat_map(|g| g.keys.clone()).collect();
    let extra = load::load_paths(&config.intermediates, &load::NoPassword);
    let roots = load::load_paths(&config.roots, &load::NoPassword);
    let mut pool = Pool::new();
    // Room for everything at once: a pool grown by doubling can hold twice what it needs.
    pool.reserve(inputs.len() + extra.certs.len() + roots.certs.len());
    for c in &inputs {
        pool.add(
            c.cert.clone(),
            Source::Input {
                path: c.path.clone(),
                index: c.index,
            },
        );
    }
    problems.extend(extra.problems);
    for c in extra.certs {
        pool.add(c.cert, Source::Intermediates { path: c.path });
    }
    if let Some(cache) = &config.cache {
        for (url, certs) in cache.entries() {
            for c in certs {
                pool.add(c, Source::Cache { url: url.clone() });
            }
        }
    }
    problems.extend(roots.problems);
    for c in roots.certs {
        pool.add_anchor(c.cert, Source::Roots { path: c.path });
    }
    if config.default_roots {
        pool.add_lazy_anchors(
            webpki_root_certs::TLS_SERVER_ROOT_CERTS
                .iter()
                .map(|der| -> &'static [u8] { der.as_ref() }),
            Source::MozillaRoots,
        );
    }

    // Each group's certificates come file by file: the files are runs of the same path.
    let files: Vec<Vec<Range<usize>>> = groups.iter().map(|g| file_runs(&g.certs)).collect();
    // The public keys of every private key given or found: a self-signed CA certificate whose
    // key is among them is the server's own (`openssl req -x509` marks CA:TRUE by default).
    let key_ids: HashSet<&[u8]> = explicit_keys
        .iter()
        .chain(&found_keys)
        .filter_map(|k| k.key.public_id.as_deref())
        .collect();
    // (group, the leaf's file in that group, the leaf, whether it is a CA subject).
    let leaves: Vec<(usize, &Range<usize>, &Located, bool)> = groups
        .iter()
        .zip(&files)
        .enumerate()
        .flat_map(|(g, (group, files))| {
            find_leaves(&group.certs, files, &key_ids)
                .into_iter()
                .map(move |(file, i, ca)| (g, file, &group.certs[i], ca))
        })
        .collect();

    let fetcher = LazyHttpFetcher::new(config.http.clone());
    let fetcher_ref: Option<&dyn Fetcher> = if config.aia.offline {
        None
    } else {
        Some(&fetcher)
    };
    // The spinner appears with the first request, if any.
    let spinner = std::sync::OnceLock::new();
    let show_url = |url: &str| {
        if let Some(s) = spinner.get_or_init(super::progress::fetch_spinner) {
            s.set_message(url.to_string());
        }
    };
    let mut aia =
        Aia::new(fetcher_ref, config.cache.as_ref(), config.aia.clone()).observe(&show_url);
    let budget = Budget::default();
    let model = Model {
        now: config.now,
        role: config.role,
    };
    let leaf_ids: Vec<Id> = leaves
        .iter()
        .map(|(_, _, located, _)| {
            pool.add(
                located.cert.clone(),
                Source::Input {
                    path: located.path.clone(),
                    index: located.index,
                },
            )
        })
        .collect();
    let outcomes = chain::search_all(&leaf_ids, &mut pool, &mut aia, &budget, &model);
    let mut built: Vec<Built> = leaves
        .into_par_iter()
        .zip(leaf_ids)
        .zip(outcomes)
        .map(|(((group, file, located, ca), leaf), outcome)| Built {
            group,
            leaf,
            located: located.clone(),
            // What the leaf's file (or probed server) presents.
            presented: groups[group].certs[file.clone()]
                .iter()
                .filter_map(|c| pool.find(&c.cert.sha256))
                .collect(),
            ca,
            outcome,
        })
        .collect();
    // A leaf without any path has nothing to choose from (see `chain::choose`).
    built.retain(|b| !(b.outcome.complete.is_empty() && b.outcome.partial.is_empty()));
    if let Some(Some(s)) = spinner.get() {
        s.finish_and_clear();
    }
    let keys = KeyIndex::new(
        explicit_keys,
        &found_keys,
        built.iter().map(|b| b.located.cert.as_ref()),
    );
    Analysis {
        pool,
        leaves: built,
        keys,
        aia: aia.finish(),
        budget,
        hosts: hosts.to_vec(),
        now: config.now,
        role: config.role,
        warn_days: config.warn_days,
        dane: config.dane.clone(),
        group_dane: Vec::new(),
        accept_dane_break: config.accept_dane_break,
        problems,
        input_certs: inputs.len(),
    }
}

/// Leaves: input certificates that are not CAs and that no other input names as its issuer.
/// A leaf found in several files is reported once, for the file presenting the most
/// certificates (usually the full-chain file the server is configured with).
///
/// Naming by subject alone is not enough: a self-signed certificate names itself (a snakeoil
/// certificate for the server's own name must not hide the real one), and an authority key
/// identifier that differs from the candidate's subject key identifier names another key.
///
/// A self-signed CA certificate that no other input names as issuer is a leaf too when its
/// private key is among `key_ids` (the public ids of the keys given or found): that is what
/// `openssl req -x509` makes for a server, and it is reported as `self-signed-leaf` rather than
/// leaving "no leaf certificate found".
///
/// When the inputs hold no leaf at all (`inspect intermediate.pem`, `inspect root.pem`), the
/// lowest CA certificates are the subjects instead (`true` in the result): those no other
/// input names as issuer, each of them when there are several.
fn find_leaves<'a>(
    certs: &[Located],
    files: &'a [Range<usize>],
    key_ids: &HashSet<&[u8]>,
) -> Vec<(&'a Range<usize>, usize, bool)> {
    let leaves = find_subjects(certs, files, key_ids, false);
    if !leaves.is_empty() {
        return leaves;
    }
    find_subjects(certs, files, key_ids, true)
}

/// The leaves of [`find_leaves`], or with `ca`, the CA certificates no input names as issuer.
fn find_subjects<'a>(
    certs: &[Located],
    files: &'a [Range<usize>],
    key_ids: &HashSet<&[u8]>,
    ca: bool,
) -> Vec<(&'a Range<usize>, usize, bool)> {
    // Issuer name -> the authority key identifiers of the certificates that name it (`None`:
    // one without), self-issued certificates left out.
    let mut issued: HashMap<&str, HashSet<Option<&[u8]>>> = HashMap::new();
    for c in certs.iter().map(|c| &c.cert) {
        if !c.is_self_issued() {
            issued
                .entry(&*c.issuer_key)
                .or_default()
                .insert(c.aki.as_deref());
        }
    }
    let named_as_issuer = |c: &Certificate| {
        issued.get(c.subject_key.as_str()).is_some_and(|akis| {
            akis.contains(&None)
                || match c.ski.as_deref() {
                    Some(ski) => akis.contains(&Some(ski)),
                    None => !akis.is_empty(),
                }
        })
    };
    // (file, index) of each leaf, in order.
    let mut best: Vec<(&Range<usize>, usize, bool)> = Vec::new();
    let mut slot_of: FxHashMap<&[u8; 32], usize> = FxHashMap::default();
    for file in files {
        for i in file.clone() {
            let c = &certs[i].cert;
            if named_as_issuer(c) {
                continue;
            }
            let servers_own = || {
                c.is_self_issued()
                    && !key_ids.is_empty()
                    && key_ids.contains(c.public_key_id().as_slice())
            };
            // A leaf is not a CA (unless it is the server's own self-signed certificate); a
            // CA subject is.
            let is_leaf = !c.is_ca || servers_own();
            if is_leaf == ca {
                continue;
            }
            match slot_of.get(&c.sha256) {
                Some(&slot) => {
                    if file.len() > best[slot].0.len() {
                        best[slot] = (file, i, ca);
                    }
                }
                None => {
                    slot_of.insert(&c.sha256, best.len());
                    best.push((file, i, ca));
                }
            }
        }
    }
    best
}

/// The files of a group's certificates: each run of certificates with the same path. A file is
/// read once, so its certificates are contiguous; so are a probed server's.
fn file_runs(certs: &[Located]) -> Vec<Range<usize>> {
    let mut runs: Vec<Range<usize>> = Vec::new();
    for (i, c) in certs.iter().enumerate() {
        match runs.last_mut() {
            // One `Arc` per file read; a probed server's certificates may each have their own.
            Some(run)
                if Arc::ptr_eq(&certs[run.start].path, &c.path)
                    || certs[run.start].path.as_os_str() == c.path.as_os_str() =>
            {
                run.end = i + 1
            }
            _ => runs.push(i..i + 1),
        }
    }
    runs
}

#[allow(clippy::too_many_arguments)]
fn leaf_result(
    pool: &Pool,
    located: &Located,
    presented: &[Id],
    choice: &Choice,
    key: &KeyStatus,
    problems: Vec<Finding>,
    status: Status,
) -> LeafResult {
    let best = &choice.best;
    let n = best.ids.len();
    let ends_at_root = best.ends_at_root(pool);
    let chain = best
        .ids
        .iter()
        .enumerate()
        .map(|(i, &id)| {
            let role = if i == 0 {
                "leaf"
            } else if i == n - 1 && ends_at_root {
                "root"
            } else {
                "intermediate"
            };
            // Every link of a path is verified; the last certificate has none above it.
            let signature = (i + 1 < n).then_some("verified");
            if i == 0 {
                // The same leaf may sit in several files or servers; show this one's.
                let own = Entry {
                    cert: located.cert.clone(),
                    source: Source::Input {
                        path: located.path.clone(),
                        index: located.index,
                    },
                    in_trust_store: false,
                };
                ChainItem::of(&own, role, signature)
            } else {
                ChainItem::of(pool.get(id), role, signature)
            }
        })
        .collect();
    let alternatives = choice
        .rejected
        .iter()
        .map(|r| Alternative {
            chain: r
                .path
                .ids
                .iter()
                .map(|&id| pool.cert(id).short_name())
                .collect(),
            reason: r.reason.clone(),
        })
        .collect();
    LeafResult {
        file: load::path_text(&located.path),
        target: None,
        leaf: Some(CertView::of(&located.cert)),
        tls: None,
        status,
        presented: presented
            .iter()
            .map(|&id| CertView::of(pool.cert(id)))
            .collect(),
        chain,
        problems,
        alternatives,
        key: match key {
            KeyStatus::Matched(LocatedKey { path, .. }) => Some(path.display().to_string()),
            _ => None,
        },
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
