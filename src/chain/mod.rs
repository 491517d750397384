//! Chain stage: from a leaf to a trust anchor through the pool, fetching missing issuers on
//! the way. `build` finds candidate paths (RFC 4158 depth-first search with a budget),
//! `select` picks the best one and says why the others lost.

pub mod budget;
pub mod build;
pub mod names;
pub mod rules;
pub mod select;

use rayon::prelude::*;
use rustc_hash::FxHashMap;

use crate::cert::{check_signature, Certificate, SigCheck};
use crate::pool::{Id, Pool};

pub use budget::{Budget, Limit};
pub use build::{build, build_frozen, Outcome, Path};
pub use rules::{Defect, Model, Role, Violation};
pub use select::{choose, Choice, Rejected};

/// Supplies more candidate issuers when the pool has none: the seam behind which AIA fetching
/// lives, so path building is tested without a network.
pub trait IssuerSource {
    /// Finds issuers of `child`, adds them to `pool`, and returns their ids.
    fn fetch_issuers(&mut self, child: &Certificate, pool: &mut Pool) -> Vec<Id>;
}

/// An [`IssuerSource`] that never finds anything (`--offline` with an empty cache).
pub struct NoFetch;

impl IssuerSource for NoFetch {
    fn fetch_issuers(&mut self, _: &Certificate, _: &mut Pool) -> Vec<Id> {
        Vec::new()
    }
}

/// Most signature checks [`SigCache::verify_upwards`] makes ahead of the path searches (a fleet
/// has tens of CA links; a hostile tree may offer many more).
pub const MAX_CA_LINK_CHECKS: usize = 10_000;

/// Signature checks already done in this run, keyed by (issuer, child), so each CA link is
/// verified once per run, not once per leaf. Keyed by pool ids: a cache serves one pool (the
/// pool gives a certificate added twice the same id).
#[derive(Debug, Default)]
pub struct SigCache {
    /// Fx-hashed: the keys are pool indices, which the inputs do not choose.
    done: FxHashMap<(Id, Id), SigCheck>,
}

impl SigCache {
    /// The cached result, or `None` when the check has not been done yet.
    pub fn get(&self, child: Id, issuer: Id) -> Option<&SigCheck> {
        self.done.get(&(issuer, child))
    }

    /// Verifies, in parallel, each of `children` against its candidate issuers in `pool`
    /// (at most `per_child` of them, the path search's own signature budget), so that the
    /// searches that follow find the results here. The pool does not change meanwhile, so the
    /// outcome is the one the searches would have computed one by one. Returns the issuers
    /// checked, child by child, in candidate order.
    pub fn verify_candidates(&mut self, pool: &Pool, children: &[Id], per_child: usize) -> Vec<Id> {
        let done: Vec<((Id, Id), SigCheck)> = children
            .par_iter()
            .flat_map_iter(|&child| {
                pool.issuers_of(pool.cert(child))
                    .into_iter()
                    .take(per_child)
                    .map(move |issuer| {
                        let check = check_signature(pool.cert(child), pool.cert(issuer));
                        ((issuer, child), check)
                    })
            })
            .collect();
        let issuers = done.iter().map(|&((issuer, _), _)| issuer).collect();
        self.done.reserve(done.len());
        self.done.extend(done);
        issuers
    }

    /// Verifies `children` against their candidate issuers, as [`SigCache::verify_candidates`]
    /// does, then the links above them: those issuers against their own candidates, level by
    /// level up to the depth budget, so that the path searches find every check done and can
    /// run in parallel ([`build_frozen`]). The lazy roots each level above may reach are parsed
    /// first (the pool changes only there). Above the children it makes no more checks than
    /// their searches could make themselves (the signature budget each), and at most
    /// [`MAX_CA_LINK_CHECKS`]; the links it leaves are verified by the searches that reach
    /// them.
    pub fn verify_upwards(&mut self, pool: &mut Pool, children: &[Id], budget: &Budget) {
        let per_child = budget.max_signature_checks;
        let mut allowance = children
            .len()
            .saturating_mul(per_child)
            .min(MAX_CA_LINK_CHECKS);
        // Fx-hashed: pool ids, which the inputs do not choose.
        let mut seen: rustc_hash::FxHashSet<Id> = children.iter().copied().collect();
        let mut found = self.verify_candidates(pool, children, per_child);
        for _ in 1..budget.max_depth {
            // The issuers just checked against, not seen yet, in order, each once.
            let mut next: Vec<Id> = found.into_iter().filter(|&id| seen.insert(id)).collect();
            next.truncate(allowance);
            for &id in &next {
                let cert = pool.cert(id).clone();
                pool.load_issuers_of(&cert);
            }
            // Taken in order while their checks fit in what is left.
            let mut fit = 0;
            for &id in &next {
                let checks = pool.issuers_of(pool.cert(id)).len().min(per_child);
                if checks > allowance {
                    break;
                }
                allowance -= checks;
                fit += 1;
            }
            next.truncate(fit);
            if next.is_empty() {
                return;
            }
            found = self.verify_candidates(pool, &next, per_child);
        }
    }

    /// How many (issuer, child) pairs have been checked in this run.
    pub fn len(&self) -> usize {
        self.done.len()
    }

    pub fn is_empty(&self) -> bool {
        self.done.is_empty()
    }

    /// The result of checking `child`'s signature with `issuer`'s key, both in `pool`:
    /// computed the first time it is asked for.
    pub fn check(&mut self, pool: &Pool, child: Id, issuer: Id) -> SigCheck {
        self.done
            .entry((issuer, child))
            .or_insert_with(|| check_signature(pool.cert(child), pool.cert(issuer)))
            .clone()
    }
}
