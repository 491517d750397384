//! Monitoring baseline (`probe --domain ... --baseline FILE`): what a run saw of each mail
//! domain, kept in a file, and what changed since. `snapshot.rs` is the recorded state (per MX
//! host: key, chain, issuer, root, expiry, DANE and MTA-STS verdicts); `file.rs` reads and
//! writes it; `diff.rs` turns old against new into findings (`baseline-*` codes).
//!
//! A run: read the file ([`file::read`], `None` the first time), build this run's
//! [`Snapshot`], report [`diff()`]'s changes with the probe's findings, then write
//! [`updated`] when the file was absent or `--update-baseline` is given ([`file::write`]).

pub mod diff;
pub mod file;
pub mod snapshot;
#[cfg(test)]
mod test_pki;

pub use diff::{diff, Change};
pub use file::FileError;
pub use snapshot::{
    CaState, DaneState, DaneVerdict, DomainState, Fingerprint, LeafState, MxState, Pin, RootState,
    Snapshot, StsVerdict, TlsState, TlsaSeen,
};

/// The baseline to write after a run: `old` with each domain probed in `new` replaced by what
/// was seen now. Domains not probed in this run are kept. An MX host the probe could not reach
/// this run (no certificate) keeps its recorded state, so that an outage does not erase what
/// the next run compares with.
pub fn updated(old: Option<&Snapshot>, new: &Snapshot) -> Snapshot {
    let mut out = old.cloned().unwrap_or_default();
    for (domain, now) in &new.domains {
        let mut state = now.clone();
        if let Some(was) = out.domains.get(domain) {
            for (host, mx) in state.mx.iter_mut() {
                if mx.tls.is_none() {
                    if let Some(recorded) = was.mx.get(host).filter(|r| r.tls.is_some()) {
                        *mx = recorded.clone();
                    }
                }
            }
        }
        out.domains.insert(domain.clone(), state);
    }
    out
}
