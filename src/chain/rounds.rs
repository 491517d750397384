//! The path searches of a run, with AIA fetching as an outer loop. Every leaf is searched
//! against the pool as it is, on all cores ([`search`](super::search)); the caIssuers URLs of
//! the open tips (certificates left without a usable issuer) are resolved together, through an
//! [`IssuerSource`]; what arrives joins the pool, and the leaves whose searches it could change
//! are searched again; until nothing new arrives. The pool changes only between rounds, so a
//! leaf's outcome is the one a search of that leaf alone would find in the final pool, and the
//! order of tips (leaf order) and of URLs (the source's, sorted) keeps every run the same.

use std::sync::Arc;

use rayon::prelude::*;
use rustc_hash::FxHashSet;

use crate::cert::Certificate;
use crate::pool::{Id, Pool, Source};

use super::build::{self, Outcome};
use super::{Budget, Memo, Model};

/// Supplies more candidate issuers for the open tips of a round: the seam behind which AIA
/// fetching lives, so path building is tested without a network.
pub trait IssuerSource {
    /// Resolves the caIssuers URLs of `tips` not tried yet in this run, and returns the
    /// certificates they brought, each with where it came from, in an order that does not
    /// depend on when responses arrive.
    fn fetch_round(&mut self, tips: &[&Certificate]) -> Vec<(Arc<Certificate>, Source)>;
}

/// An [`IssuerSource`] that never finds anything.
pub struct NoFetch;

impl IssuerSource for NoFetch {
    fn fetch_round(&mut self, _: &[&Certificate]) -> Vec<(Arc<Certificate>, Source)> {
        Vec::new()
    }
}

/// Searches every leaf, fetching between rounds; the outcomes come back in leaf order. At most
/// [`Budget::max_depth`] fetch rounds: one per level of missing issuers, as deep as a path may
/// grow (the per-run fetch budget of the source bounds them further).
pub fn search_all(
    leaves: &[Id],
    pool: &mut Pool,
    fetch: &mut dyn IssuerSource,
    budget: &Budget,
    model: &Model,
) -> Vec<Outcome> {
    let memo = Memo::default();
    let mut outcomes: Vec<Outcome> = Vec::new();
    let mut todo: Vec<usize> = (0..leaves.len()).collect();
    for round in 0..=budget.max_depth {
        let pool_now: &Pool = pool;
        let searched: Vec<(Outcome, Vec<Id>)> = todo
            .par_iter()
            .map(|&i| build::search_open(leaves[i], pool_now, &memo, budget, model))
            .collect();
        // Open tips in leaf order, each once.
        let mut tips: Vec<Id> = Vec::new();
        let mut seen: FxHashSet<Id> = FxHashSet::default();
        if round == 0 {
            outcomes.reserve_exact(searched.len());
        }
        for (&i, (outcome, open)) in todo.iter().zip(searched) {
            tips.extend(open.into_iter().filter(|&id| seen.insert(id)));
            if round == 0 {
                outcomes.push(outcome);
            } else {
                outcomes[i] = outcome;
            }
        }
        if tips.is_empty() || round == budget.max_depth {
            break;
        }
        let tips: Vec<Arc<Certificate>> = tips.iter().map(|&id| pool.cert(id).clone()).collect();
        let tips: Vec<&Certificate> = tips.iter().map(AsRef::as_ref).collect();
        // The names of the certificates new to the pool: only a search that looked up the
        // issuers of a certificate naming one of them can find something else now.
        let mut named: FxHashSet<String> = FxHashSet::default();
        for (cert, source) in fetch.fetch_round(&tips) {
            let fresh = pool.len();
            let subject = cert.subject_key.clone();
            if pool.add(cert, source) == fresh {
                named.insert(subject);
            }
        }
        if named.is_empty() {
            break;
        }
        let pool_now: &Pool = pool;
        todo = (0..leaves.len())
            .into_par_iter()
            .filter(|&i| looked_up(&outcomes[i], pool_now, &named))
            .collect();
    }
    outcomes
}

/// Whether the search that gave `outcome` may have looked up the issuers of a certificate
/// whose issuer is named in `named`. Every certificate whose issuers a search looks up is in
/// one of the paths or pairs it records, except when a budget cut it short.
fn looked_up(outcome: &Outcome, pool: &Pool, named: &FxHashSet<String>) -> bool {
    let paths = outcome.complete.iter().chain(&outcome.partial);
    let paths = paths.chain(outcome.pruned.iter().map(|(p, _)| p));
    let children = outcome
        .loops
        .iter()
        .chain(&outcome.rejected)
        .map(|&(c, _)| c);
    let children = children.chain(outcome.unverifiable.iter().map(|&(c, _, _)| c));
    !outcome.limits.is_empty()
        || paths
            .flat_map(|p| p.ids.iter().copied())
            .chain(children)
            .any(|id| named.contains(&*pool.cert(id).issuer_key))
}
