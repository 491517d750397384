//! Path building: a depth-first search from the leaf towards a trust anchor (RFC 4158 §2-3),
//! a pure function of the pool, which it does not change.
//!
//! At each certificate the pool's candidate issuers are tried in order; a candidate is kept
//! only if its key verifies the child's signature (a signature that cannot be verified is no
//! link, see [`link`](super::link)), and, in a strict search, only if receivers accept it there
//! ([`rules`]): a path they refuse is pruned where it goes wrong, and the search backtracks to
//! the next candidate. A certificate left without a usable issuer is an *open tip*: the search
//! records it, and the rounds around it ([`search_all`](super::search_all)) fetch its AIA
//! caIssuers URLs and search again. A (subject, key) pair already on the path is refused, which
//! cuts every loop (RFC 4158 §5.2). Every step is charged to a [`Budget`].
//!
//! [`search`] searches strictly first; only when that finds no complete path does it search
//! again keeping refused issuers, so that the report can name what is wrong with the best
//! path there is.

use crate::pool::{Id, Pool};

use super::link::{Memo, SigCheck, Unsupported};
use super::rules::{self, Model, Violation};
use super::{Budget, Limit};

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

struct Search<'a> {
    pool: &'a Pool,
    memo: &'a Memo,
    budget: &'a Budget,
    model: &'a Model,
    /// Prune issuers receivers refuse.
    strict: bool,
    calls: usize,
    /// The (child, issuer) links this leaf's searches asked for. Each is charged to the budget
    /// once, whether or not another leaf's search had it verified already, so that a leaf's
    /// outcome does not depend on the other leaves of the run nor on their order.
    asked: Vec<(Id, Id)>,
    /// Links charged to this search.
    checks: usize,
    out: Outcome,
    /// Certificates left without a usable issuer that name caIssuers URLs, in the order met.
    open: Vec<Id>,
}

/// Finds the paths from `leaf` to trust anchors that receivers accept under `model`; when
/// there are none, the paths there are, defects and all.
pub fn search(leaf: Id, pool: &Pool, memo: &Memo, budget: &Budget, model: &Model) -> Outcome {
    search_open(leaf, pool, memo, budget, model).0
}

/// [`search`], with its open tips: the certificates where a path stopped for want of a usable
/// issuer and whose AIA caIssuers URLs might bring one.
pub(super) fn search_open(
    leaf: Id,
    pool: &Pool,
    memo: &Memo,
    budget: &Budget,
    model: &Model,
) -> (Outcome, Vec<Id>) {
    let mut search = Search {
        pool,
        memo,
        budget,
        model,
        strict: true,
        calls: 0,
        asked: Vec::new(),
        checks: 0,
        out: Outcome::default(),
        open: Vec::new(),
    };
    let strict = search.run(leaf);
    // A strict search cut short by its budget is not run again: the budget is per leaf.
    if !strict.complete.is_empty() || !strict.limits.is_empty() {
        return (strict, search.open);
    }
    // The links the strict search asked for cost the lenient one nothing more.
    search.strict = false;
    search.calls = 0;
    search.checks = 0;
    let lenient = search.run(leaf).with_pruned(strict.pruned);
    (lenient, search.open)
}

impl Search<'_> {
    /// One search from `leaf`, strict or not; the links asked for and the open tips carry
    /// over to the next.
    fn run(&mut self, leaf: Id) -> Outcome {
        let mut path = Path {
            ids: vec![leaf],
            anchored: false,
        };
        if let Err(limit) = self.extend(&mut path) {
            self.out.limits.push(limit);
            if self.out.complete.is_empty() && self.out.partial.is_empty() {
                self.out.partial.push(path);
            }
        }
        let mut out = std::mem::take(&mut self.out);
        out.shrink_to_fit();
        out
    }
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
    fn extend(&mut self, path: &mut Path) -> Result<(), Limit> {
        self.calls += 1;
        if self.calls > self.budget.max_build_calls {
            return Err(Limit::BuildCalls);
        }
        if self.out.complete.len() >= self.budget.max_paths {
            if !self.out.limits.contains(&Limit::Paths) {
                self.out.limits.push(Limit::Paths);
            }
            return Ok(());
        }
        let tip = path.tip();
        let pool = self.pool;
        let tip_cert = pool.cert(tip);
        if pool.is_anchor(tip_cert) {
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
        let verified = self.accepted(tip, pool.issuers_of(tip_cert))?;
        let mut candidates = self.usable(path, verified);
        if !candidates.iter().any(|c| c.usable) && !tip_cert.ca_issuers.is_empty() {
            // What the tip's own AIA URLs brought, whatever its key ids say, is checked: an
            // impostor there is reported rather than ignored.
            let fetched = self.accepted(tip, pool.fetched_issuers_of(tip_cert))?;
            let new: Vec<Id> = fetched
                .into_iter()
                .filter(|id| candidates.iter().all(|c| c.id != *id))
                .collect();
            candidates.extend(self.usable(path, new));
            // Still nothing usable: the tip is open, for the next round to fetch its URLs.
            if !candidates.iter().any(|c| c.usable) && !self.open.contains(&tip) {
                self.open.push(tip);
            }
        }
        // Issuers that expire last first: should the path cap be reached, the paths kept are
        // those through current certificates, not through a pile of expired copies.
        candidates.sort_by_key(|c| std::cmp::Reverse(pool.cert(c.id).not_after));
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
        let anchored = self.pool.is_anchor(self.pool.cert(cand));
        self.out.pruned.push((Path { ids, anchored }, why));
    }

    /// Judges verified candidates as issuers of `path`'s tip: on the path already (a loop),
    /// and the defects receivers would find there.
    fn usable(&self, path: &Path, ids: Vec<Id>) -> Vec<Candidate> {
        let pool = self.pool;
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
    fn accepted(&mut self, child: Id, candidates: Vec<Id>) -> Result<Vec<Id>, Limit> {
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

    fn self_signed(&mut self, id: Id) -> Result<bool, Limit> {
        Ok(!matches!(self.check(id, id)?, SigCheck::Invalid))
    }

    /// Whether `issuer`'s key verifies `child`'s signature, from the memo or verified now; a
    /// link new to this leaf is charged to its budget.
    fn check(&mut self, child: Id, issuer: Id) -> Result<SigCheck, Limit> {
        if !self.asked.contains(&(child, issuer)) {
            self.checks += 1;
            if self.checks > self.budget.max_signature_checks {
                return Err(Limit::SignatureChecks);
            }
            self.asked.push((child, issuer));
        }
        Ok(self.memo.check(self.pool, child, issuer))
    }
}

#[cfg(test)]
mod tests {
    //! Path-search limits and loop cutting, on small rcgen PKIs built in memory.

    use std::sync::Arc;

    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};

    use rayon::prelude::*;

    use super::*;
    use crate::cert::Certificate;
    use crate::chain::{search_all, Budget, IssuerSource, Limit, Memo};
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
        search(leaf, pool, &Memo::default(), budget, &MODEL)
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
        let memo = Memo::default();
        let outcomes: Vec<Outcome> = leaves
            .par_iter()
            .map(|&leaf| search(leaf, &pool, &memo, &Budget::default(), &MODEL))
            .collect();
        for out in &outcomes {
            assert_eq!(out.complete.len(), 1);
            assert_eq!(out.complete[0].ids.len(), 4);
        }
        assert_eq!(
            memo.len(),
            42,
            "b->a and a->root were checked once for 40 leaves searched at once"
        );
    }

    /// Hands out `certs` for the first round that asks, counting the rounds.
    struct Once {
        certs: Vec<Arc<Certificate>>,
        rounds: Vec<usize>,
    }

    impl IssuerSource for Once {
        fn fetch_round(&mut self, tips: &[&Certificate]) -> Vec<(Arc<Certificate>, Source)> {
            self.rounds.push(tips.len());
            let url = "http://ca.test/a.der".to_string();
            std::mem::take(&mut self.certs)
                .into_iter()
                .map(|c| (c, Source::Aia { url: url.clone() }))
                .collect()
        }
    }

    /// `ca` with an AIA extension naming one caIssuers URL (RFC 5280 §4.2.2.1).
    fn with_aia(cn: &str, by: &Ca) -> Ca {
        let url = b"http://ca.test/a.der";
        let oid = [0x06, 0x08, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x30, 0x02];
        let mut ad = oid.to_vec();
        ad.push(0x86);
        ad.push(url.len() as u8);
        ad.extend_from_slice(url);
        let mut aia = vec![0x30, ad.len() as u8 + 2, 0x30, ad.len() as u8];
        aia.extend(ad);
        let mut params = params(cn, false);
        params
            .custom_extensions
            .push(rcgen::CustomExtension::from_oid_content(
                &[1, 3, 6, 1, 5, 5, 7, 1, 1],
                aia,
            ));
        let key = KeyPair::generate().expect("key");
        let issuer = Issuer::from_params(&by.params, &by.key);
        let der = params
            .signed_by(&key, &issuer)
            .expect("sign")
            .der()
            .to_vec();
        Ca { params, key, der }
    }

    #[test]
    fn a_missing_issuer_is_an_open_tip_fetched_between_rounds() {
        let r = root("Root");
        let a = issued("A", true, &r);
        let mut pool = Pool::new();
        pool.add_anchor(cert(&r), Source::MozillaRoots);
        let leaves: Vec<Id> = (0..3)
            .map(|i| input(&mut pool, &with_aia(&format!("leaf {i}"), &a)))
            .collect();
        let (alone, open) = search_open(
            leaves[0],
            &pool,
            &Memo::default(),
            &Budget::default(),
            &MODEL,
        );
        assert!(alone.complete.is_empty());
        assert_eq!(open, vec![leaves[0]], "the leaf names where its issuer is");

        let mut source = Once {
            certs: vec![cert(&a)],
            rounds: Vec::new(),
        };
        let outcomes = search_all(&leaves, &mut pool, &mut source, &Budget::default(), &MODEL);
        assert_eq!(source.rounds, vec![3], "one round for the three open tips");
        for (out, &leaf) in outcomes.iter().zip(&leaves) {
            assert_eq!(out.complete.len(), 1);
            assert_eq!(out.complete[0].ids.len(), 3);
            assert_eq!(
                *out,
                search(leaf, &pool, &Memo::default(), &Budget::default(), &MODEL),
                "what a search of the leaf alone finds in the final pool"
            );
        }
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
    fn a_link_verified_for_another_leaf_costs_no_work_but_counts_to_the_budget() {
        let mut pool = Pool::new();
        let leaf = long_chain(&mut pool);
        let memo = Memo::default();
        search(leaf, &pool, &memo, &Budget::default(), &MODEL);
        let verified = memo.len();
        let tight = Budget {
            max_signature_checks: 2,
            ..Budget::default()
        };
        let again = search(leaf, &pool, &memo, &tight, &MODEL);
        assert_eq!(memo.len(), verified, "every link was found in the memo");
        assert_eq!(
            again,
            search(leaf, &pool, &Memo::default(), &tight, &MODEL),
            "the outcome does not depend on what other leaves had verified"
        );
        assert_eq!(again.limits, vec![Limit::SignatureChecks]);
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
