//! Chain stage: from a leaf to a trust anchor through the pool, fetching missing issuers on
//! the way. `build` finds candidate paths (RFC 4158 depth-first search with a budget),
//! `select` picks the best one and says why the others lost.

pub mod budget;
pub mod build;
pub mod select;

use rayon::prelude::*;
use rustc_hash::FxHashMap;

use crate::cert::{check_signature, Certificate, SigCheck};
use crate::pool::{Id, Pool};

pub use budget::{Budget, Limit};
pub use build::{build, Link, Outcome, Path};
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

/// Signature checks already done in this run, keyed by (issuer, child) fingerprints, so each
/// CA link is verified once per run, not once per leaf.
#[derive(Debug, Default)]
pub struct SigCache {
    /// Fx-hashed: the keys are SHA-256 digests, which nobody can make collide.
    done: FxHashMap<LinkKey, SigCheck>,
}

/// (issuer, child) SHA-256 fingerprints.
type LinkKey = ([u8; 32], [u8; 32]);

impl SigCache {
    /// The cached result, or `None` when the check has not been done yet.
    pub fn get(&self, child: &Certificate, issuer: &Certificate) -> Option<&SigCheck> {
        self.done.get(&(issuer.sha256, child.sha256))
    }

    /// Verifies, in parallel, each of `children` against its candidate issuers in `pool`
    /// (at most `per_child` of them, the path search's own signature budget), so that the
    /// searches that follow find the results here. The pool does not change meanwhile, so the
    /// outcome is the one the searches would have computed one by one.
    pub fn verify_candidates(&mut self, pool: &Pool, children: &[Id], per_child: usize) {
        // (issuer, child, result): ids, not the 64-byte keys, while a fleet's results are
        // gathered.
        let done: Vec<(Id, Id, SigCheck)> = children
            .par_iter()
            .flat_map_iter(|&child| {
                pool.issuers_of(pool.cert(child))
                    .into_iter()
                    .take(per_child)
                    .map(move |issuer| {
                        let check = check_signature(pool.cert(child), pool.cert(issuer));
                        (issuer, child, check)
                    })
            })
            .collect();
        self.done.reserve(done.len());
        for (issuer, child, check) in done {
            self.done
                .insert((pool.cert(issuer).sha256, pool.cert(child).sha256), check);
        }
    }

    /// How many (issuer, child) pairs have been checked in this run.
    pub fn len(&self) -> usize {
        self.done.len()
    }

    pub fn is_empty(&self) -> bool {
        self.done.is_empty()
    }

    pub fn check(&mut self, child: &Certificate, issuer: &Certificate) -> SigCheck {
        self.done
            .entry((issuer.sha256, child.sha256))
            .or_insert_with(|| check_signature(child, issuer))
            .clone()
    }
}
