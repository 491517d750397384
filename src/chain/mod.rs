//! Chain stage: from a leaf to a trust anchor through the pool, fetching missing issuers on
//! the way. `build` finds candidate paths (RFC 4158 depth-first search with a budget),
//! `select` picks the best one and says why the others lost.

pub mod budget;
pub mod build;
pub mod select;

use std::collections::HashMap;

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
    done: HashMap<([u8; 32], [u8; 32]), SigCheck>,
}

impl SigCache {
    /// The cached result, or `None` when the check has not been done yet.
    pub fn get(&self, child: &Certificate, issuer: &Certificate) -> Option<&SigCheck> {
        self.done.get(&(issuer.sha256, child.sha256))
    }

    pub fn check(&mut self, child: &Certificate, issuer: &Certificate) -> SigCheck {
        self.done
            .entry((issuer.sha256, child.sha256))
            .or_insert_with(|| check_signature(child, issuer))
            .clone()
    }
}
