//! MTA-STS (RFC 8461) for `probe --domain`: the `_mta-sts` TXT record, the policy fetched over
//! HTTPS, and the verdict a sending MTA reaches for each MX host. The caller does the DNS and
//! SMTP work; this module reads what it found, fetches the policy, and makes findings.
//!
//! # Using it
//!
//! ```text
//! 1. TXT _mta-sts.<domain>  ->  record::parse(&txts)            -> RecordOutcome
//!    (caller's DNS; one String per TXT record, its character-strings joined without spaces)
//! 2. A/AAAA mta-sts.<domain> -> fetch::fetch(&fetch::Request {..}) -> Result<Fetched, FetchError>
//!    (caller's DNS gives `addrs`; fetch when the record is Found, and also when it is Absent
//!     but the host has addresses, to notice a policy nobody announces)
//! 3. per MX: judge::Certificate::from_findings(&findings of the probed chain), DANE yes/no
//! 4. judge::assess(&judge::Input {..})                           -> Assessment
//! ```
//!
//! * [`fetch::Request`]: `domain`, `addrs` (of `mta-sts.<domain>`, tried in order, at most
//!   [`fetch::MAX_ADDRS`]), `port` (443 or `--sts-port`), `extra_roots` (DER, `--sts-roots`,
//!   trusted beside Mozilla's roots that chainfix embeds), `deadline` (an `Instant` for the
//!   whole fetch; [`fetch::SUGGESTED_TIMEOUT`] is RFC 8461's one minute), `now` (Unix seconds,
//!   the time certificates are judged at; `--at` pins it). The body is at most 64 KiB, only a
//!   200 `text/plain` counts, redirects are refused, the certificate is validated as the Web
//!   PKI does (rustls/webpki). [`FetchError`]'s `Display` names what was wrong, with the
//!   server's text escaped; `code()` is a stable detail code.
//! * [`judge::Mx`]: `host` (the MX name), `certificate` ([`judge::Certificate`]: `Valid`,
//!   `Invalid(codes)`, or `NotChecked` when no chain was captured), `dane` (true when DANE
//!   applies to this MX: then senders that implement both use DANE for it, RFC 8461 §2).
//!   [`judge::Certificate::from_findings`] derives the certificate verdict from chainfix's
//!   findings for the chain the MX served, analysed with the MX host as `--host` against the
//!   roots senders trust (Mozilla's, plus `--roots`).
//! * [`judge::Assessment`]: `findings` about the domain (record and policy problems), `mx`
//!   (per MX, in input order: an [`judge::MxView`] and that MX's findings), and `view`
//!   ([`judge::View`], serializable for the JSON report: record and policy state, mode,
//!   max_age, patterns, and each MX's verdict).
//!
//! # Findings
//!
//! | code | severity | when |
//! |---|---|---|
//! | `mta-sts-mx-not-listed` | by mode | no `mx` pattern matches the MX host (4.4.8 in enforce) |
//! | `mta-sts-certificate-invalid` | by mode | the MX's chain fails validation (4.7.5 in enforce) |
//! | `mta-sts-policy-unavailable` | warning | a valid record, but the fetch failed (`detail`: why) |
//! | `mta-sts-policy-invalid` | warning | the policy breaks §3.2 (`detail`: which rule) |
//! | `mta-sts-record-invalid` | warning | several `v=STSv1` records, or a malformed one |
//! | `mta-sts-record-missing` | warning | a policy is served, but no TXT record announces it |
//! | `mta-sts-superseded-by-dane` | info | DANE applies to the MX; MTA-STS is not used for it |
//!
//! "By mode": `enforce` error (senders do not deliver), `testing` warning (they deliver and
//! report), `none` info. Without a valid record and a valid policy no policy is in force and no
//! MX is judged (RFC 8461 §3.1, §3.3: senders then deliver as if the domain had none).

pub mod fetch;
pub mod http;
pub mod judge;
pub mod policy;
pub mod record;

pub use fetch::{fetch, FetchError, Fetched, Request};
pub use judge::{assess, Assessment, Certificate, Input, Mx};
pub use policy::{Mode, Policy, PolicyError};
pub use record::{RecordError, RecordOutcome};

/// Longest server-supplied text quoted in a message.
const QUOTE_LEN: usize = 120;

/// Server-supplied text (a TXT record, a policy line, an HTTP header, a certificate name) for
/// one line of a message: shortened, and escaped for the terminal ([`crate::render::plain`]).
pub(crate) fn quote(s: &str) -> String {
    let short: String = s.chars().take(QUOTE_LEN).collect();
    let more = if short.len() < s.len() { "…" } else { "" };
    format!("{}{more}", crate::render::plain::line(&short))
}
