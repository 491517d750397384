//! Limits on path building. Each limit has its own [`Limit`] variant, reported as a finding
//! when hit, and its own test.

/// Bounds for one leaf's path search.
#[derive(Debug, Clone)]
pub struct Budget {
    /// Most certificates in a path, leaf and anchor included. The issue sets 8; real chains have
    /// at most 4 or 5, and rustls-webpki allows 6 sub-CAs (`MAX_SUB_CA_COUNT`).
    pub max_depth: usize,
    /// Most distinct links (child, candidate issuer) one search checks. rustls-webpki uses 100
    /// signatures per verification (`Budget::signatures`). A link counts whether or not
    /// another leaf's search verified it already (the memo saves the work, not the budget),
    /// so that a leaf's outcome does not depend on the other leaves; the lenient search after
    /// a strict one counts only the links the strict one did not ask for.
    pub max_signature_checks: usize,
    /// Most recursive extension steps per leaf; cuts combinatorial blow-up from many
    /// cross-signs long before the time it would take. rustls-webpki allows 200,000
    /// `build_chain_calls`; our graph is smaller because loops are refused, so 10,000 is ample.
    pub max_build_calls: usize,
    /// Most complete paths collected for selection.
    pub max_paths: usize,
}

impl Default for Budget {
    fn default() -> Budget {
        Budget {
            max_depth: 8,
            max_signature_checks: 100,
            max_build_calls: 10_000,
            max_paths: 32,
        }
    }
}

/// A budget that was exhausted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Limit {
    Depth,
    SignatureChecks,
    BuildCalls,
    Paths,
}

impl Limit {
    pub fn describe(self, budget: &Budget) -> String {
        match self {
            Limit::Depth => format!(
                "the path grew past {} certificates and was cut there",
                budget.max_depth
            ),
            Limit::SignatureChecks => format!(
                "more than {} signature checks were needed; the search stopped",
                budget.max_signature_checks
            ),
            Limit::BuildCalls => format!(
                "the path search took more than {} steps and stopped",
                budget.max_build_calls
            ),
            Limit::Paths => format!(
                "more than {} complete paths exist; the search kept the first {} it found \
                 (newest issuers first) and chose among them",
                budget.max_paths, budget.max_paths
            ),
        }
    }
}
