//! Path selection: of several paths (cross-signs, re-issued intermediates, an expired
//! cross-signed root as with DST Root CA X3), pick one deterministically and say why each
//! other path lost. The order of preference is:
//! 1. ends at a trust anchor;
//! 2. fewest defects receivers refuse ([`super::rules`]: CA constraints, purpose, name
//!    constraints, flaws, validity at `now`, weak signatures and keys; only paths from the
//!    lenient search have any);
//! 3. fewest certificates the server does not present (a working presented chain is kept,
//!    even when the pool holds another copy of an intermediate);
//! 4. no intermediate expires before the leaf;
//! 5. strongest signature algorithms and keys;
//! 6. shortest;
//! 7. ends at the trust store's own certificate rather than a cross-signed copy with the
//!    same subject and key (which is trusted too, RFC 5280 §6.1.1, but is not the root);
//! 8. (tie) lowest fingerprints, so the choice never depends on input order.
//!
//! Paths the strict search cut ([`Outcome::pruned`]) are listed among the losers with the
//! defect that cut them.

use crate::cert::{Certificate, Hash, KeyKind};
use crate::pool::{Id, Pool};

use super::rules::{self, Model, Violation};
use super::{Outcome, Path};

#[derive(Debug, Clone)]
pub struct Rejected {
    pub path: Path,
    pub reason: String,
}

#[derive(Debug, Clone)]
pub struct Choice {
    pub best: Path,
    /// What the receiver model refuses in `best` ([`rules::path_defects`]).
    pub defects: Vec<Violation>,
    pub rejected: Vec<Rejected>,
}

/// Picks the best path; `None` only if the outcome holds no path at all. `presented` are the
/// certificates the leaf's file (or server) presents.
pub fn choose(outcome: &Outcome, pool: &Pool, model: &Model, presented: &[Id]) -> Option<Choice> {
    let mut paths: Vec<&Path> = outcome.complete.iter().collect();
    if paths.is_empty() {
        paths = outcome.partial.iter().collect();
    }
    paths.dedup();
    let mut scored: Vec<(Score, &Path)> = paths
        .into_iter()
        .map(|p| (Score::of(p, pool, model, presented), p))
        .collect();
    scored.sort_by(|a, b| a.0.key.cmp(&b.0.key));
    let mut iter = scored.into_iter();
    let (best_score, best) = iter.next()?;
    let mut rejected: Vec<Rejected> = iter
        .filter(|(_, p)| *p != best)
        .map(|(score, p)| Rejected {
            path: p.clone(),
            reason: score.why_worse_than(&best_score, pool),
        })
        .collect();
    // The paths the search cut where receivers would refuse them.
    for (path, why) in &outcome.pruned {
        if *path != *best && rejected.iter().all(|r| r.path != *path) {
            rejected.push(Rejected {
                path: path.clone(),
                reason: rules::describe(why, pool),
            });
        }
    }
    Some(Choice {
        best: best.clone(),
        defects: best_score.defects,
        rejected,
    })
}

struct Score {
    key: Key,
    defects: Vec<Violation>,
    outlived: Vec<String>,
}

/// Lower is better, compared field by field in the order of the module docs.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Key {
    not_anchored: bool,
    /// A partial path that ends at a self-signed root beats one that ends at a missing issuer.
    open_ended: bool,
    defects: usize,
    unpresented: usize,
    outlived: usize,
    weakness: Weakness,
    len: usize,
    anchor_is_copy: bool,
    fingerprints: Vec<[u8; 32]>,
}

/// Lower is stronger.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Weakness {
    /// Inverse rank of the weakest hash below the anchor.
    hash: std::cmp::Reverse<Hash>,
    /// Smallest RSA key below the anchor, negated so that bigger is better.
    rsa_bits: std::cmp::Reverse<u32>,
}

impl Score {
    fn of(path: &Path, pool: &Pool, model: &Model, presented: &[Id]) -> Score {
        let certs: Vec<&Certificate> = path.ids.iter().map(|&id| pool.cert(id).as_ref()).collect();
        let leaf = certs[0];
        let below_anchor = if path.anchored {
            &certs[..certs.len() - 1]
        } else {
            &certs[..]
        };
        let outlived: Vec<String> = certs[1..]
            .iter()
            .filter(|c| c.not_after < leaf.not_after)
            .map(|c| format!("{} expires before the leaf", c.subject))
            .collect();
        let weakness = Weakness {
            hash: std::cmp::Reverse(
                below_anchor
                    .iter()
                    .map(|c| c.sig_alg.hash())
                    .min()
                    .unwrap_or(Hash::Intrinsic),
            ),
            rsa_bits: std::cmp::Reverse(
                certs
                    .iter()
                    .filter_map(|c| match c.key {
                        KeyKind::Rsa { bits } => Some(bits),
                        _ => None,
                    })
                    .min()
                    .unwrap_or(u32::MAX),
            ),
        };
        let defects = rules::path_defects(pool, &path.ids, model);
        Score {
            key: Key {
                not_anchored: !path.anchored,
                open_ended: !path.ends_at_root(pool),
                defects: defects.len(),
                // What would be served: the certificates above the leaf, below the anchor.
                unpresented: path.ids[1..]
                    .iter()
                    .take(
                        path.ids
                            .len()
                            .saturating_sub(1 + usize::from(path.anchored)),
                    )
                    .filter(|id| !presented.contains(id))
                    .count(),
                outlived: outlived.len(),
                weakness,
                len: certs.len(),
                anchor_is_copy: path.anchored && !pool.get(path.tip()).in_trust_store,
                fingerprints: certs.iter().map(|c| c.sha256).collect(),
            },
            defects,
            outlived,
        }
    }

    fn why_worse_than(&self, best: &Score, pool: &Pool) -> String {
        let (me, them) = (&self.key, &best.key);
        if me.not_anchored != them.not_anchored {
            return "does not end at a trusted root".into();
        }
        if me.open_ended != them.open_ended {
            return "ends at a missing issuer".into();
        }
        if me.defects != them.defects {
            if let Some(first) = self.defects.first() {
                return rules::describe(first, pool);
            }
        }
        if me.unpresented != them.unpresented {
            return format!(
                "uses {} certificate(s) the server does not present, where the presented chain works",
                me.unpresented
            );
        }
        if me.outlived != them.outlived {
            if let Some(first) = self.outlived.first() {
                return first.clone();
            }
        }
        if me.weakness != them.weakness {
            return "uses weaker signature algorithms or keys".into();
        }
        if me.len != them.len {
            return format!("longer ({} certificates instead of {})", me.len, them.len);
        }
        if me.anchor_is_copy != them.anchor_is_copy {
            return "ends at a cross-signed copy of the root instead of the root itself".into();
        }
        "equivalent; the path with the lower fingerprints was chosen".into()
    }
}
