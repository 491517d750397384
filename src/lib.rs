//! chainfix repairs the TLS certificate chains that mail servers present.
//!
//! The pipeline, one module per stage:
//!
//! ```text
//! paths -> load -> pool -> chain (build, select) -> diagnose -> emit / report
//!                    ^          |
//!                    +- fetch <-+   (AIA caIssuers, only when an issuer is missing)
//! ```
//!
//! * [`deployed`] reads what a deployed Postfix, Exim or Dovecot loads (through `postconf`,
//!   `exim -bP`, `doveconf`) into slots (role x listener x SNI name -> files), each then loaded as one group.
//! * [`load`] turns files and directories into certificates and keys, with per-file errors.
//! * [`pool`] indexes every candidate issuer and knows the trust anchors.
//! * [`chain`] searches paths from each leaf to an anchor under a budget, verifying each link
//!   once per run, and picks the best; between rounds of searches it has the open tips'
//!   issuers fetched.
//! * [`fetch`] follows AIA URLs when the pool has no usable issuer; nothing fetched is trusted
//!   until its signature over the child verifies.
//! * [`diagnose`] turns the difference between what is presented and what was built into
//!   findings with stable codes.
//! * [`dane`] judges the presented and the repaired chain against TLSA records the user
//!   gives (RFC 7672), and chooses the records to publish.
//! * [`emit`] produces the repaired files; [`write`] puts them on disk atomically.
//! * [`report`] prints human or JSON output; [`render`] makes certificate text safe for each
//!   place it is written (reports, Postfix, Exim, PowerShell, file names).
//! * [`receivers`] judges the chosen chain a second time with rustls-webpki and names the
//!   documented policy behind any difference from chainfix's OpenSSL 3 model.
//! * [`mtasts`] reads a domain's MTA-STS record, fetches its policy over HTTPS and judges each
//!   MX host as a sending MTA does (RFC 8461).
//! * [`baseline`] records what a domain probe saw (per MX host: key, chain, root, DANE and
//!   MTA-STS verdicts) in a file, and reports what changed since as findings.
//! * [`probe`] captures the chain a live server presents (SMTP STARTTLS, IMAP STARTTLS, POP3
//!   STLS or implicit TLS), which then goes through the same stages as files.
//! * [`manpage`] renders the man pages; the finding codes' one-line meanings and bounces come
//!   from the catalogue (`src/catalogue.rs`).
//! * [`dns`] and [`domain`] (`probe --domain`): a DNS stub client that trusts DNSSEC only from
//!   a loopback resolver, and a mail domain as a sender sees it (MX hosts, addresses, TLSA
//!   records and whether DANE applies, TLS-RPT); each address is then probed as a target.
//!
//! Time is a parameter: the core takes `now`; only [`app`] reads the clock.

pub mod app;
pub mod asn1;
pub mod baseline;
mod catalogue;
pub mod cert;
pub mod chain;
pub mod cli;
pub mod dane;
pub mod deployed;
pub mod diagnose;
pub mod dns;
pub mod domain;
pub mod emit;
pub mod exit;
pub mod fetch;
pub mod hostname;
pub mod load;
pub mod manpage;
pub mod mtasts;
pub mod pool;
pub mod probe;
pub mod receivers;
pub mod render;
pub mod report;
pub mod write;
