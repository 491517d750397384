//! Monitoring baseline (`probe --domain ... --baseline FILE`): what a run saw of each mail
//! domain, kept in a file, and what changed since. `snapshot.rs` is the recorded state (per MX
//! host: key, chain, issuer, root, expiry, DANE and MTA-STS verdicts); `file.rs` reads and
//! writes it; `diff.rs` turns old against new into findings (`baseline-*` codes).
//!
//! A run: read the file ([`file::read`], `None` the first time), build this run's
//! [`Snapshot`], [`plan`] the run (the changes to report with the probe's findings, and the
//! state to write), report, then write it ([`file::write`]).

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

/// What one monitoring run reports and records.
#[derive(Debug)]
pub struct Plan {
    /// The changes against the recorded state, for the report.
    pub changes: Vec<Change>,
    /// The state to write after reporting; `None` when the file stays as it is.
    pub write: Option<Snapshot>,
}

/// Compares this run (`seen`) with the file's state (`recorded`, `None` when there is no file
/// yet) and decides what to write: with `update` (`--update-baseline`), [`updated`]; else only
/// the domains the file does not hold yet are added (the first run creates the file), and a
/// change stays reported until it is accepted.
pub fn plan(recorded: Option<&Snapshot>, seen: &Snapshot, update: bool) -> Plan {
    let empty = Snapshot::default();
    let changes = diff(recorded.unwrap_or(&empty), seen);
    let next = if update {
        updated(recorded, seen)
    } else {
        let mut next = recorded.cloned().unwrap_or_default();
        for (domain, state) in &seen.domains {
            next.domains
                .entry(domain.clone())
                .or_insert_with(|| state.clone());
        }
        next
    };
    let write = (recorded != Some(&next)).then_some(next);
    Plan { changes, write }
}

#[cfg(test)]
mod tests {
    //! What a run writes: the first run records, `--update-baseline` replaces what was probed
    //! (an unreached host keeps its record), otherwise only unknown domains are added.

    use super::*;
    use test_pki::{intermediate, key, leaf, mx, root, snapshot, tls};

    const D: &str = "example.com";

    fn plain(t: TlsState) -> MxState {
        mx(Some(t), DaneState::none(), StsVerdict::None)
    }

    #[test]
    fn the_update_keeps_unreached_hosts_and_unprobed_domains() {
        let r = root("Root X1");
        let i = intermediate("R10", &r);
        let (a, b) = (
            leaf("mx1.example.com", &key(), &i, 2027, 3),
            leaf("mx2.example.com", &key(), &i, 2027, 3),
        );
        let mut old = snapshot(
            D,
            vec![
                ("mx1.example.com", plain(tls(&a, &i, &r))),
                ("mx2.example.com", plain(tls(&b, &i, &r))),
            ],
        );
        old.insert(
            "example.net",
            snapshot("x", vec![("mx.example.net", plain(tls(&a, &i, &r)))])
                .domains
                .remove("x")
                .expect("domain"),
        );
        // mx1 unreached, mx2 gone from the MX set.
        let new = snapshot(
            D,
            vec![(
                "mx1.example.com",
                mx(None, DaneState::none(), StsVerdict::None),
            )],
        );
        let up = updated(Some(&old), &new);
        let d = up.get(D).expect("domain");
        assert_eq!(d.mx.keys().collect::<Vec<_>>(), ["mx1.example.com"]);
        assert_eq!(
            d.mx["mx1.example.com"],
            old.domains[D].mx["mx1.example.com"]
        );
        assert!(up.get("example.net").is_some());
        // A first run records what it saw.
        assert_eq!(updated(None, &new), new);
    }

    #[test]
    fn a_run_writes_the_first_state_and_accepted_changes_only() {
        let r = root("Root X1");
        let i = intermediate("R10", &r);
        let (a, b) = (
            leaf("mx.example.com", &key(), &i, 2027, 3),
            leaf("mx.example.com", &key(), &i, 2027, 6),
        );
        let first = snapshot(D, vec![("mx.example.com", plain(tls(&a, &i, &r)))]);
        let p = plan(None, &first, false);
        assert_eq!(p.write.as_ref(), Some(&first));
        assert_eq!(p.changes.len(), 1);
        assert_eq!(
            p.changes[0].finding.code,
            crate::diagnose::Code::BaselineNew
        );
        // Unchanged: nothing to write, with or without --update-baseline.
        assert!(plan(Some(&first), &first, false).write.is_none());
        assert!(plan(Some(&first), &first, true).write.is_none());
        // A renewal: reported; written only when accepted.
        let renewed = snapshot(D, vec![("mx.example.com", plain(tls(&b, &i, &r)))]);
        let p = plan(Some(&first), &renewed, false);
        assert_eq!(
            p.changes[0].finding.code,
            crate::diagnose::Code::BaselineKeyChanged
        );
        assert!(p.write.is_none());
        assert_eq!(
            plan(Some(&first), &renewed, true).write,
            Some(renewed.clone())
        );
        // Another domain probed with the same file: added without --update-baseline.
        let other = snapshot(
            "example.net",
            vec![("mx.example.net", plain(tls(&a, &i, &r)))],
        );
        let written = plan(Some(&first), &other, false).write.expect("added");
        assert_eq!(written.domains.len(), 2);
        assert_eq!(written.get(D), first.get(D));
    }
}
