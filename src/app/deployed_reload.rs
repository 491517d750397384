//! `repair --postfix --reload`: reload the server, then prove it serves the new chain.
//!
//! A reload is not proof: after `postfix reload`, smtpd processes started before it keep
//! serving the chain they loaded until they exit (postfix(1): "running processes terminate at
//! their earliest convenience"; an idle one at the latest after `max_idle`), so one connection
//! may get the new chain and the next the old one. The proof therefore asks each listener for
//! the chain until [`ProofRule::consecutive`] connections in a row serve exactly the new one
//! (compared by SHA-256 of every certificate, so two certificates with one name and one expiry
//! date are still told apart), or the deadline passes. Three in a row is the default: one
//! success can come from a lucky process, and each connection an old process answers makes it
//! exit afterwards, so a run of three new answers leaves little room for an old process still
//! waiting; the deadline defaults to `max_idle`, after which none can be left.

use std::time::{Duration, Instant};

use crate::deployed::proof::{Expect, Proof, ProofRule};
use crate::probe::{self, ProbeOptions, Target};

/// Probes every expectation until it is proven or the deadline (shared by all) passes.
pub fn prove(expects: &[Expect], rule: ProofRule) -> Vec<Proof> {
    let end = Instant::now() + rule.deadline;
    expects.iter().map(|e| prove_one(e, rule, end)).collect()
}

/// Pause between connections to one listener: long enough not to hammer it, short enough
/// that a proof of three takes about a second.
const PAUSE: Duration = Duration::from_millis(250);

fn prove_one(e: &Expect, rule: ProofRule, end: Instant) -> Proof {
    let target = Target {
        host: e.listener.host.clone(),
        port: e.listener.port,
    };
    let options = ProbeOptions {
        starttls: Some(e.listener.starttls),
        servername: e.servername.clone(),
        helo: probe::local_hostname(),
        timeout: rule.timeout,
    };
    let mut proof = Proof {
        target: target.label(),
        servername: e.servername.clone(),
        slot: e.slot.clone(),
        proven: false,
        connections: 0,
        served: Vec::new(),
        expected: e.chain.clone(),
        error: None,
    };
    let mut run = 0;
    loop {
        proof.connections += 1;
        match probe::probe(&target, &options) {
            Ok(served) => {
                proof.error = None;
                proof.served = served
                    .captured
                    .certs
                    .iter()
                    .map(|der| sha256(der))
                    .collect();
                if proof.served == e.chain {
                    run += 1;
                } else {
                    run = 0;
                }
            }
            Err(err) => {
                run = 0;
                proof.served.clear();
                proof.error = Some(err.to_string());
            }
        }
        if run >= rule.consecutive.max(1) {
            proof.proven = true;
            return proof;
        }
        if Instant::now() + PAUSE >= end {
            return proof;
        }
        std::thread::sleep(PAUSE);
    }
}

fn sha256(der: &[u8]) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(der).into()
}

/// What [`reload_and_prove`] needs of one MTA: its name, how to reload it, and how long its
/// daemon takes to listen again after a reload.
pub struct Reloader<'a> {
    pub mta: &'static str,
    pub reload: &'a dyn Fn() -> Result<(), String>,
    /// Exim's daemon re-executes itself on SIGHUP; Postfix's master keeps its sockets.
    pub settle: Duration,
}

/// Reloads the server, proves every listener of the repaired slots serves the new chain
/// (`show` prints the proofs), and when the reload or the proof fails restores `snapshot`,
/// reloads again and says what happened. The one sequence behind `repair --postfix --reload`
/// and `repair --exim --reload`.
pub fn reload_and_prove(
    r: &Reloader<'_>,
    expects: &[Expect],
    rule: ProofRule,
    snapshot: &crate::deployed::apply::Snapshot,
    show: impl FnOnce(&[Proof]) -> Result<(), super::AppError>,
) -> Result<(), super::AppError> {
    let undone = super::deployed_repair::undone;
    if let Err(e) = (r.reload)() {
        return Err(super::AppError(format!(
            "reloading {} failed ({e}); {}",
            r.mta,
            undone(snapshot.restore())
        )));
    }
    std::thread::sleep(r.settle);
    let proofs = prove(expects, rule);
    show(&proofs)?;
    if let Some(failed) = proofs.iter().find(|p| !p.proven) {
        let restored = snapshot.restore();
        let reloaded = (r.reload)();
        return Err(super::AppError(format!(
            "{} did not serve the new chain on {} consecutive connections within {} s; {}{}",
            failed.target,
            rule.consecutive,
            rule.deadline.as_secs(),
            undone(restored),
            match reloaded {
                Ok(()) => format!(" and {} reloaded", r.mta),
                Err(e) => format!(", but reloading {} failed: {e}", r.mta),
            }
        )));
    }
    Ok(())
}
