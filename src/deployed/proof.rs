//! What proving a reload means, as data: the listeners a repair must be served on, the rule
//! (how many connections in a row, by when), and what each listener was seen to serve. The
//! connections themselves are made by the app (`repair --reload`); the report shows the result.

use std::time::Duration;

use super::{Deployment, Listener, Slot};

/// How much proof is asked for.
#[derive(Debug, Clone, Copy)]
pub struct ProofRule {
    pub consecutive: u32,
    pub deadline: Duration,
    /// Each connection's own limit.
    pub timeout: Duration,
}

/// One listener (and SNI name) that must serve `chain`.
pub struct Expect {
    pub listener: Listener,
    pub servername: Option<String>,
    /// SHA-256 of each certificate the listener must send, in order (leaf first).
    pub chain: Vec<[u8; 32]>,
    pub slot: String,
}

/// What the proof saw at one listener.
pub struct Proof {
    pub target: String,
    pub servername: Option<String>,
    pub slot: String,
    pub proven: bool,
    /// Connections made.
    pub connections: u32,
    /// The chain served last (SHA-256 of each certificate), empty when none was.
    pub served: Vec<[u8; 32]>,
    pub expected: Vec<[u8; 32]>,
    /// The last connection's failure, if it failed.
    pub error: Option<String>,
}

/// The listeners each repaired server slot is served on. A client slot has none: nothing
/// connects to it, so it is judged from its files alone.
pub fn expectations(deployment: &Deployment, repaired: &[(Slot, Vec<[u8; 32]>)]) -> Vec<Expect> {
    let mut out = Vec::new();
    for (slot, chain) in repaired {
        if slot.role != crate::chain::Role::Server {
            continue;
        }
        for l in deployment
            .listeners
            .iter()
            .filter(|l| slot.services.contains(&l.service))
        {
            out.push(Expect {
                listener: l.clone(),
                servername: slot.sni.clone(),
                chain: chain.clone(),
                slot: slot.label(),
            });
        }
    }
    out
}
