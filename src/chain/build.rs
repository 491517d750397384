//! Path building: a depth-first search from the leaf towards a trust anchor (RFC 4158 §2-3).
//!
//! At each certificate the pool's candidate issuers are tried in order; a candidate is kept
//! only if its key verifies the child's signature (a signature that cannot be verified is no
//! link), and, in a strict search, only if receivers accept it there ([`rules`]): a path they
//! refuse is pruned where it goes wrong, and the search backtracks to the next candidate. When
//! no candidate is usable, the [`IssuerSource`] is asked (AIA). A (subject, key) pair already
//! on the path is refused, which cuts every loop (RFC 4158 §5.2). Every step is charged to a
//! [`Budget`].
//!
//! [`build`] searches strictly first; only when that finds no complete path does it search
//! again keeping refused issuers, so that the report can name what is wrong with the best
//! path there is.

use crate::cert::{Certificate, SigCheck, Unsupported};
use crate::pool::{Id, Pool};

use super::rules::{self, Model, Violation};
use super::{Budget, IssuerSource, Limit, SigCache};

/// A candidate path: `ids[0]` is the leaf, each certificate's signature verified with the key
/// of the next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Path {
    pub ids: Vec<Id>,
    /// The last certificate is a trust anchor.
    pub anchored: bool,
}

impl Path {
    pub fn tip(&self) -> Id {
        self.ids[self.ids.len() - 1]
    }

    /// The path ends at a root: a trust anchor, or a self-signed CA above the leaf. A path
    /// that does not ends at a missing issuer.
    pub fn ends_at_root(&self, pool: &Pool) -> bool {
        self.ids.len() > 1 && (self.anchored || pool.cert(self.tip()).is_self_issued())
    }
}

/// Everything the search learned about one leaf.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    /// Paths that end at a trust anchor.
    pub complete: Vec<Path>,
    /// Paths that could not be extended (missing issuer, untrusted root, loop, budget).
    pub partial: Vec<Path>,
    /// (child, refused issuer): the issuer's subject and key were already on the path.
    pub loops: Vec<(Id, Id)>,
    /// (child, candidate): same name, but its key does not verify the child's signature.
    pub rejected: Vec<(Id, Id)>,
    /// (child, candidate, why): same name, but the signature cannot be verified, so the
    /// candidate is no link.
    pub unverifiable: Vec<(Id, Id, Unsupported)>,
    /// Paths the strict search cut where they went wrong (ending at a verified issuer
    /// receivers refuse there), with the first defect found, so that the report can say why
    /// they lost.
    pub pruned: Vec<(Path, Violation)>,
    pub limits: Vec<Limit>,
}

/// What a search reads, and may change: the pool (issuers loaded or fetched) and the
/// signature cache.
enum World<'a> {
    /// The search proper: it loads, fetches and verifies as it needs.
    Live {
        pool: &'a mut Pool,
        fetch: &'a mut dyn IssuerSource,
        sigs: &'a mut SigCache,
    },
    /// A search that changes nothing, so that many can run at once: it gives up as soon as it
    /// would have to load, fetch or verify.
    Frozen { pool: &'a Pool, sigs: &'a SigCache },
}

/// Why a search ended early.
enum Stop {
    Limit(Limit),
    /// A frozen search needed to change something.
    Frozen,
}

impl From<Limit> for Stop {
    fn from(limit: Limit) -> Stop {
        Stop::Limit(limit)
    }
}

impl World<'_> {
    fn pool(&self) -> &Pool {
        match self {
            World::Live { pool, .. } => pool,
            World::Frozen { pool, .. } => pool,
        }
    }

    fn load_issuers_of(&mut self, cert: &Certificate) -> Result<(), Stop> {
        match self {
            World::Live { pool, .. } => {
                pool.load_issuers_of(cert);
                Ok(())
            }
            World::Frozen { pool, .. } if pool.has_pending_issuers(cert) => Err(Stop::Frozen),
            World::Frozen { .. } => Ok(()),
        }
    }

    fn fetch_issuers(&mut self, cert: &Certificate) -> Result<Vec<Id>, Stop> {
        match self {
            World::Live { pool, fetch, .. } => Ok(fetch.fetch_issuers(cert, pool)),
            World::Frozen { .. } => Err(Stop::Frozen),
        }
    }

    fn cached(&self, child: Id, issuer: Id) -> Option<&SigCheck> {
        match self {
            World::Live { sigs, .. } => sigs.get(child, issuer),
            World::Frozen { sigs, .. } => sigs.get(child, issuer),
        }
    }

    fn verify(&mut self, child: Id, issuer: Id) -> Result<SigCheck, Stop> {
        match self {
            World::Live { pool, sigs, .. } => Ok(sigs.check(pool, child, issuer)),
            World::Frozen { .. } => Err(Stop::Frozen),
        }
    }
}

struct Search<'a> {
    world: World<'a>,
    budget: &'a Budget,
    model: &'a Model,
    /// Prune issuers receivers refuse.
    strict: bool,
    calls: usize,
    checks: usize,
    out: Outcome,
}

/// Finds the paths from `leaf` to trust anchors that receivers accept under `model`; when
/// there are none, the paths there are, defects and all.
pub fn build(
    leaf: Id,
    pool: &mut Pool,
    fetch: &mut dyn IssuerSource,
    budget: &Budget,
    sigs: &mut SigCache,
    model: &Model,
) -> Outcome {
    // A live search never needs to stop for being frozen.
    let strict = search(
        World::Live {
            pool: &mut *pool,
            fetch: &mut *fetch,
            sigs: &mut *sigs,
        },
        leaf,
        budget,
        model,
        true,
    )
    .unwrap_or_default();
    // A strict search cut short by its budget is not run again: the budget is per leaf.
    if !strict.complete.is_empty() || !strict.limits.is_empty() {
        return strict;
    }
    let lenient = search(
        World::Live { pool, fetch, sigs },
        leaf,
        budget,
        model,
        false,
    )
    .unwrap_or_default();
    lenient.with_pruned(strict.pruned)
}

/// [`build`] without changing the pool or the cache, so that leaves can be searched in
/// parallel: `None` if the search would have had to load a lazy root, fetch, or verify a
/// signature not in `sigs`. Otherwise its outcome is the one [`build`] gives on the same pool
/// with a cache holding at least `sigs` (every check it makes is found there, and counts for
/// nothing against the budget in either).
pub fn build_frozen(
    leaf: Id,
    pool: &Pool,
    budget: &Budget,
    sigs: &SigCache,
    model: &Model,
) -> Option<Outcome> {
    let strict = search(World::Frozen { pool, sigs }, leaf, budget, model, true)?;
    if !strict.complete.is_empty() || !strict.limits.is_empty() {
        return Some(strict);
    }
    let lenient = search(World::Frozen { pool, sigs }, leaf, budget, model, false)?;
    Some(lenient.with_pruned(strict.pruned))
}

fn search<'a>(
    world: World<'a>,
    leaf: Id,
    budget: &'a Budget,
    model: &'a Model,
    strict: bool,
) -> Option<Outcome> {
    let mut search = Search {
        world,
        budget,
        model,
        strict,
        calls: 0,
        checks: 0,
        out: Outcome::default(),
    };
    let mut path = Path {
        ids: vec![leaf],
        anchored: false,
    };
    match search.extend(&mut path) {
        Ok(()) => {}
        Err(Stop::Frozen) => return None,
        Err(Stop::Limit(limit)) => {
            search.out.limits.push(limit);
            if search.out.complete.is_empty() && search.out.partial.is_empty() {
                search.out.partial.push(path);
            }
        }
    }
    let mut out = search.out;
    out.shrink_to_fit();
    Some(out)
}

impl Outcome {
    /// This outcome, with what a strict search pruned.
    fn with_pruned(mut self, pruned: Vec<(Path, Violation)>) -> Outcome {
        self.pruned = pruned;
        self.pruned.shrink_to_fit();
        self
    }

    /// Drops spare capacity: outcomes are kept for every leaf of a fleet.
    fn shrink_to_fit(&mut self) {
        for path in self.complete.iter_mut().chain(&mut self.partial) {
            path.ids.shrink_to_fit();
        }
        for (path, _) in &mut self.pruned {
            path.ids.shrink_to_fit();
        }
        self.unverifiable.shrink_to_fit();
        self.pruned.shrink_to_fit();
        self.complete.shrink_to_fit();
        self.partial.shrink_to_fit();
        self.loops.shrink_to_fit();
        self.rejected.shrink_to_fit();
        self.limits.shrink_to_fit();
    }
}

/// A verified issuer of a path's tip, judged there.
struct Candidate {
    id: Id,
    on_path: bool,
    /// What receivers refuse in this issuer there (strict searches only).
    defects: Vec<Violation>,
    /// Not on the path, and (in a strict search) without defects.
    usable: bool,
}

impl Search<'_> {
    fn extend(&mut self, path: &mut Path) -> Result<(), Stop> {
        self.calls += 1;
        if self.calls > self.budget.max_build_calls {
            return Err(Limit::BuildCalls.into());
        }
        if self.out.complete.len() >= self.budget.max_paths {
            if !self.out.limits.contains(&Limit::Paths) {
                self.out.limits.push(Limit::Paths);
            }
            return Ok(());
        }
        let tip = path.tip();
        let tip_cert = self.world.pool().cert(tip).clone();
        if self.world.pool().is_anchor(&tip_cert) {
            let mut done = path.clone();
            done.anchored = true;
            self.out.complete.push(done);
            return Ok(());
        }
        if tip_cert.is_self_issued() && self.self_signed(tip)? {
            self.out.partial.push(path.clone()); // an untrusted root: nothing above it
            return Ok(());
        }
        if path.ids.len() >= self.budget.max_depth {
            if !self.out.limits.contains(&Limit::Depth) {
                self.out.limits.push(Limit::Depth);
            }
            self.out.partial.push(path.clone());
            return Ok(());
        }
        self.world.load_issuers_of(&tip_cert)?;
        let found = self.world.pool().issuers_of(&tip_cert);
        let verified = self.accepted(tip, found)?;
        let mut candidates = self.usable(path, verified);
        if !candidates.iter().any(|c| c.usable) {
            let fetched = self.world.fetch_issuers(&tip_cert)?;
            let fetched = self.accepted(tip, fetched)?;
            let new: Vec<Id> = fetched
                .into_iter()
                .filter(|id| candidates.iter().all(|c| c.id != *id))
                .collect();
            candidates.extend(self.usable(path, new));
        }
        // Issuers that expire last first: should the path cap be reached, the paths kept are
        // those through current certificates, not through a pile of expired copies.
        candidates.sort_by_key(|c| std::cmp::Reverse(self.world.pool().cert(c.id).not_after));
        let mut extended = false;
        for cand in candidates {
            if cand.on_path {
                self.out.loops.push((tip, cand.id));
                continue;
            }
            if self.strict {
                if let Some(first) = cand.defects.into_iter().next() {
                    self.prune(path, cand.id, first);
                    continue;
                }
            }
            extended = true;
            path.ids.push(cand.id);
            let result = self.extend(path);
            path.ids.pop();
            result?;
        }
        if !extended {
            self.out.partial.push(path.clone());
        }
        Ok(())
    }

    /// Records `path` extended by `cand` as cut, at most [`Budget::max_paths`] of them.
    fn prune(&mut self, path: &Path, cand: Id, why: Violation) {
        if self.out.pruned.len() >= self.budget.max_paths {
            return;
        }
        let mut ids = path.ids.clone();
        ids.push(cand);
        let anchored = self.world.pool().is_anchor(self.world.pool().cert(cand));
        self.out.pruned.push((Path { ids, anchored }, why));
    }

    /// Judges verified candidates as issuers of `path`'s tip: on the path already (a loop),
    /// and the defects receivers would find there.
    fn usable(&self, path: &Path, ids: Vec<Id>) -> Vec<Candidate> {
        let pool = self.world.pool();
        ids.into_iter()
            .map(|id| {
                let cand = pool.cert(id);
                let on_path = path.ids.iter().any(|&p| {
                    let c = pool.cert(p);
                    c.subject_key == cand.subject_key && c.spki_sha256 == cand.spki_sha256
                });
                // Only a strict search prunes on defects; a lenient one has no use for them.
                let defects = if on_path || !self.strict {
                    Vec::new()
                } else {
                    rules::issuer_defects(pool, &path.ids, id, self.model)
                };
                let usable = !on_path && (!self.strict || defects.is_empty());
                Candidate {
                    id,
                    on_path,
                    defects,
                    usable,
                }
            })
            .collect()
    }

    /// Checks candidate issuers of `child`; returns those whose key verifies its signature.
    fn accepted(&mut self, child: Id, candidates: Vec<Id>) -> Result<Vec<Id>, Stop> {
        let mut out: Vec<Id> = Vec::new();
        for id in candidates {
            if out.contains(&id) {
                continue;
            }
            match self.check(child, id)? {
                SigCheck::Valid => out.push(id),
                SigCheck::Unverifiable(why) => {
                    if !self
                        .out
                        .unverifiable
                        .iter()
                        .any(|(c, i, _)| (*c, *i) == (child, id))
                    {
                        self.out.unverifiable.push((child, id, why));
                    }
                }
                SigCheck::Invalid => {
                    if !self.out.rejected.contains(&(child, id)) {
                        self.out.rejected.push((child, id));
                    }
                }
            }
        }
        Ok(out)
    }

    fn self_signed(&mut self, id: Id) -> Result<bool, Stop> {
        Ok(!matches!(self.check(id, id)?, SigCheck::Invalid))
    }

    fn check(&mut self, child: Id, issuer: Id) -> Result<SigCheck, Stop> {
        if let Some(done) = self.world.cached(child, issuer) {
            return Ok(done.clone());
        }
        // A frozen search stops before counting: a live one might find this check done.
        if matches!(self.world, World::Frozen { .. }) {
            return Err(Stop::Frozen);
        }
        self.checks += 1;
        if self.checks > self.budget.max_signature_checks {
            return Err(Limit::SignatureChecks.into());
        }
        self.world.verify(child, issuer)
    }
}

#[cfg(test)]
mod tests {
    //! Path-search limits and loop cutting, on small rcgen PKIs built in memory.

    use std::sync::Arc;

    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};

    use super::*;
    use crate::cert::Certificate;
    use crate::chain::{Budget, Limit, NoFetch, SigCache};
    use crate::pool::{Pool, Source};

    /// Inside rcgen's default validity (1975 to 4096).
    const MODEL: Model = Model {
        now: 1_800_000_000,
        role: crate::chain::Role::Server,
    };

    struct Ca {
        params: CertificateParams,
        key: KeyPair,
        der: Vec<u8>,
    }

    fn params(cn: &str, ca: bool) -> CertificateParams {
        let mut p = CertificateParams::new(Vec::<String>::new()).expect("params");
        p.distinguished_name.push(rcgen::DnType::CommonName, cn);
        p.is_ca = if ca {
            IsCa::Ca(BasicConstraints::Unconstrained)
        } else {
            IsCa::ExplicitNoCa
        };
        p
    }

    fn root(cn: &str) -> Ca {
        let key = KeyPair::generate().expect("key");
        let params = params(cn, true);
        let der = params.self_signed(&key).expect("sign").der().to_vec();
        Ca { params, key, der }
    }

    fn issued(cn: &str, ca: bool, by: &Ca) -> Ca {
        let key = KeyPair::generate().expect("key");
        issued_with(cn, ca, by, key)
    }

    fn issued_with(cn: &str, ca: bool, by: &Ca, key: KeyPair) -> Ca {
        let params = params(cn, ca);
        let issuer = Issuer::from_params(&by.params, &by.key);
        let der = params
            .signed_by(&key, &issuer)
            .expect("sign")
            .der()
            .to_vec();
        Ca { params, key, der }
    }

    fn cert(c: &Ca) -> Arc<Certificate> {
        Arc::new(Certificate::from_der(&c.der).expect("parse"))
    }

    fn input(pool: &mut Pool, c: &Ca) -> Id {
        pool.add(
            cert(c),
            Source::Input {
                path: std::path::Path::new("in.pem").into(),
                index: 0,
            },
        )
    }

    /// root -> a -> b -> c -> leaf, all in the pool, root trusted.
    fn long_chain(pool: &mut Pool) -> Id {
        let r = root("Root");
        let a = issued("A", true, &r);
        let b = issued("B", true, &a);
        let c = issued("C", true, &b);
        let leaf = issued("leaf", false, &c);
        pool.add_anchor(cert(&r), Source::MozillaRoots);
        for ca in [&a, &b, &c] {
            input(pool, ca);
        }
        input(pool, &leaf)
    }

    fn run(pool: &mut Pool, leaf: Id, budget: &Budget) -> Outcome {
        build(
            leaf,
            pool,
            &mut NoFetch,
            budget,
            &mut SigCache::default(),
            &MODEL,
        )
    }

    #[test]
    fn each_ca_link_is_verified_once_per_run_not_once_per_leaf() {
        // root -> a -> b, and 40 leaves under b: 40 leaf links + b->a + a->root.
        let r = root("Root");
        let a = issued("A", true, &r);
        let b = issued("B", true, &a);
        let mut pool = Pool::new();
        pool.add_anchor(cert(&r), Source::MozillaRoots);
        input(&mut pool, &a);
        input(&mut pool, &b);
        let leaves: Vec<Id> = (0..40)
            .map(|i| input(&mut pool, &issued(&format!("leaf {i}"), false, &b)))
            .collect();
        let mut sigs = SigCache::default();
        sigs.verify_candidates(&pool, &leaves, Budget::default().max_signature_checks);
        assert_eq!(
            sigs.len(),
            40,
            "the parallel pass checks each leaf's own link"
        );
        for &leaf in &leaves {
            let out = build(
                leaf,
                &mut pool,
                &mut NoFetch,
                &Budget::default(),
                &mut sigs,
                &MODEL,
            );
            assert_eq!(out.complete.len(), 1);
            assert_eq!(out.complete[0].ids.len(), 4);
        }
        assert_eq!(
            sigs.len(),
            42,
            "b->a and a->root were checked once for 40 leaves"
        );
    }

    #[test]
    fn a_frozen_search_gives_up_rather_than_verify_and_agrees_once_the_links_are_checked() {
        let mut pool = Pool::new();
        let leaf = long_chain(&mut pool);
        let budget = Budget::default();
        let mut sigs = SigCache::default();
        assert_eq!(
            build_frozen(leaf, &pool, &budget, &sigs, &MODEL),
            None,
            "nothing checked"
        );
        sigs.verify_candidates(&pool, &[leaf], budget.max_signature_checks);
        assert_eq!(
            build_frozen(leaf, &pool, &budget, &sigs, &MODEL),
            None,
            "links above unchecked"
        );
        sigs.verify_upwards(&mut pool, &[leaf], &budget);
        let checked = sigs.len();
        let frozen = build_frozen(leaf, &pool, &budget, &sigs, &MODEL).expect("every link checked");
        let live = build(leaf, &mut pool, &mut NoFetch, &budget, &mut sigs, &MODEL);
        assert_eq!(frozen, live);
        assert_eq!(frozen.complete[0].ids.len(), 5);
        assert_eq!(
            sigs.len(),
            checked,
            "the live search found every check done"
        );
    }

    #[test]
    fn a_frozen_search_gives_up_where_a_live_one_would_fetch_or_parse_a_root() {
        let r = root("Root");
        let a = issued("A", true, &r);
        let leaf_cert = issued("leaf", false, &a);
        let budget = Budget::default();

        // A is not in the pool: a live search would ask the issuer source.
        let mut pool = Pool::new();
        let leaf = input(&mut pool, &leaf_cert);
        let sigs = SigCache::default();
        assert_eq!(build_frozen(leaf, &pool, &budget, &sigs, &MODEL), None);

        // The root is in the lazy store: a live search would parse it when it reaches A.
        let mut pool = Pool::new();
        let root_der: &'static [u8] = Box::leak(r.der.clone().into_boxed_slice());
        pool.add_lazy_anchors([root_der], Source::MozillaRoots);
        input(&mut pool, &a);
        let leaf = input(&mut pool, &leaf_cert);
        let mut sigs = SigCache::default();
        sigs.verify_candidates(&pool, &[leaf], budget.max_signature_checks);
        assert_eq!(build_frozen(leaf, &pool, &budget, &sigs, &MODEL), None);
        let before = pool.generation();
        sigs.verify_upwards(&mut pool, &[leaf], &budget);
        assert_ne!(
            pool.generation(),
            before,
            "the root was parsed ahead of the search"
        );
        let frozen =
            build_frozen(leaf, &pool, &budget, &sigs, &MODEL).expect("root parsed, links checked");
        assert_eq!(frozen.complete.len(), 1);
        assert_eq!(
            frozen,
            build(leaf, &mut pool, &mut NoFetch, &budget, &mut sigs, &MODEL)
        );
    }

    #[test]
    fn links_above_the_leaves_are_checked_within_the_leaves_own_budget() {
        // Ten CAs named "CA" under ten roots named "Upper", no key ids to tell them apart:
        // every CA is a candidate for the leaf, every root for every CA.
        let uppers: Vec<Ca> = (0..10).map(|_| root("Upper")).collect();
        let cas: Vec<Ca> = uppers.iter().map(|u| issued("CA", true, u)).collect();
        let leaf_ca = issued("leaf", false, &cas[0]);
        let mut pool = Pool::new();
        for ca in uppers.iter().chain(&cas) {
            input(&mut pool, ca);
        }
        let leaf = input(&mut pool, &leaf_ca);
        let budget = Budget {
            max_signature_checks: 3,
            ..Budget::default()
        };
        let mut sigs = SigCache::default();
        sigs.verify_candidates(&pool, &[leaf], budget.max_signature_checks);
        let before = sigs.len();
        sigs.verify_upwards(&mut pool, &[leaf], &budget);
        assert!(
            sigs.len() - before <= 3,
            "{} checks ahead for one leaf with a budget of 3",
            sigs.len() - before
        );
    }

    #[test]
    fn complete_path_within_default_budget() {
        let mut pool = Pool::new();
        let leaf = long_chain(&mut pool);
        let out = run(&mut pool, leaf, &Budget::default());
        assert_eq!(out.complete.len(), 1);
        assert_eq!(out.complete[0].ids.len(), 5);
        assert!(out.limits.is_empty());
    }

    #[test]
    fn depth_limit_cuts_the_path() {
        let mut pool = Pool::new();
        let leaf = long_chain(&mut pool);
        let budget = Budget {
            max_depth: 3,
            ..Budget::default()
        };
        let out = run(&mut pool, leaf, &budget);
        assert!(out.complete.is_empty());
        assert_eq!(out.limits, vec![Limit::Depth]);
        assert_eq!(out.partial[0].ids.len(), 3);
    }

    #[test]
    fn signature_check_budget_stops_the_search() {
        let mut pool = Pool::new();
        let leaf = long_chain(&mut pool);
        let budget = Budget {
            max_signature_checks: 2,
            ..Budget::default()
        };
        let out = run(&mut pool, leaf, &budget);
        assert!(out.complete.is_empty());
        assert_eq!(out.limits, vec![Limit::SignatureChecks]);
    }

    #[test]
    fn build_call_budget_stops_the_search() {
        let mut pool = Pool::new();
        let leaf = long_chain(&mut pool);
        let budget = Budget {
            max_build_calls: 2,
            ..Budget::default()
        };
        let out = run(&mut pool, leaf, &budget);
        assert!(out.complete.is_empty());
        assert_eq!(out.limits, vec![Limit::BuildCalls]);
    }

    #[test]
    fn the_path_cap_is_reported_and_the_newest_issuers_are_tried_first() {
        // leaf <- A, where A exists as 3 copies (same name and key) under the root: the oldest
        // copy first in the pool.
        let r = root("Root");
        let a_key = KeyPair::generate().expect("key");
        let leaf_cert = {
            let a = issued_with(
                "A",
                true,
                &r,
                KeyPair::from_pem(&a_key.serialize_pem()).expect("key"),
            );
            issued("leaf", false, &a)
        };
        let mut pool = Pool::new();
        pool.add_anchor(cert(&r), Source::MozillaRoots);
        let mut copies = Vec::new();
        for year in [2030, 2031, 2032] {
            let mut params = params("A", true);
            params.not_after = rcgen::date_time_ymd(year, 1, 1);
            let issuer = Issuer::from_params(&r.params, &r.key);
            let der = params
                .signed_by(&a_key, &issuer)
                .expect("sign")
                .der()
                .to_vec();
            copies.push(input(
                &mut pool,
                &Ca {
                    params,
                    key: KeyPair::from_pem(&a_key.serialize_pem()).expect("key"),
                    der,
                },
            ));
        }
        let leaf = input(&mut pool, &leaf_cert);
        let budget = Budget {
            max_paths: 2,
            ..Budget::default()
        };
        let out = run(&mut pool, leaf, &budget);
        assert_eq!(out.limits, vec![Limit::Paths]);
        let kept: Vec<Id> = out.complete.iter().map(|p| p.ids[1]).collect();
        assert_eq!(kept, vec![copies[2], copies[1]], "latest expiry first");
        let all = run(&mut pool, leaf, &Budget::default());
        assert!(all.limits.is_empty());
        assert_eq!(all.complete.len(), 3);
    }

    #[test]
    fn cached_signature_checks_are_free() {
        let mut pool = Pool::new();
        let leaf = long_chain(&mut pool);
        let mut sigs = SigCache::default();
        let budget = Budget::default();
        build(leaf, &mut pool, &mut NoFetch, &budget, &mut sigs, &MODEL);
        let tight = Budget {
            max_signature_checks: 0,
            ..Budget::default()
        };
        let again = build(leaf, &mut pool, &mut NoFetch, &tight, &mut sigs, &MODEL);
        assert_eq!(again.complete.len(), 1, "a second leaf reuses every check");
    }

    #[test]
    fn mutual_cross_signs_are_cut_as_a_loop() {
        // Y is signed by X's key and X's key is re-certified by Y: X -> Y -> X, none trusted.
        let x = root("X");
        let y = issued("Y", true, &x);
        let x_by_y = issued_with("X", true, &y, x.key);
        let leaf = issued("leaf", false, &y);
        let mut pool = Pool::new();
        input(&mut pool, &y);
        input(&mut pool, &x_by_y);
        let leaf = input(&mut pool, &leaf);
        let out = run(&mut pool, leaf, &Budget::default());
        assert!(out.complete.is_empty());
        assert!(!out.loops.is_empty(), "the cycle Y -> X -> Y was refused");
    }
}
