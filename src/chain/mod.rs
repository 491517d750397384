//! Chain stage: from a leaf to a trust anchor through the pool. `build` searches one leaf's
//! candidate paths (RFC 4158 depth-first search with a budget), `link` verifies each link once
//! per run, `rounds` searches every leaf and fetches missing issuers between rounds, `select`
//! picks the best path and says why the others lost.

pub mod budget;
pub mod build;
pub mod link;
pub mod names;
pub mod rounds;
pub mod rules;
pub mod select;

pub use budget::{Budget, Limit};
pub use build::{search, Outcome, Path};
pub use link::{check_signature, Memo, SigCheck, Unsupported, MAX_RSA_BITS};
pub use rounds::{search_all, IssuerSource, NoFetch};
pub use rules::{Defect, Model, Role, Violation};
pub use select::{choose, Choice, Rejected};
