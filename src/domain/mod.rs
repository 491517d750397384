//! Domain stage (`probe --domain`): a mail domain as a sending MTA sees it. `discover.rs` asks
//! DNS (through [`crate::dns`]) for the MX hosts in preference order, their addresses, their
//! TLSA records and whether DANE applies (RFC 7672 §2.2); `tlsrpt.rs` judges the TLS-RPT
//! record (RFC 8460 §3). The app layer then probes each address with [`crate::probe`] and
//! judges the served chains like any other; the results land in the structs here.
//!
//! What the other stages use: [`DomainResult`] is one domain, [`MxResult`] one MX host with its
//! addresses, DNSSEC status, TLSA records and DANE state, and [`AddressProbe`] what one
//! address served (the DER chain) and where its judged result is in the report. [`StsDns`] is
//! what DNS says for MTA-STS (the `_mta-sts` record, the policy host's addresses); the policy
//! itself is fetched and judged by [`crate::mtasts`], whose views land here (`mta_sts`).

pub mod discover;
pub mod tlsrpt;

use std::net::IpAddr;
use std::sync::Arc;

use serde::Serialize;

use crate::dane::{RecordSet, Tlsa};
use crate::diagnose::{Finding, Status};
use crate::dns::Security;

pub use discover::{discover, Discovery, HostPlan, StsDns};
pub use tlsrpt::TlsRpt;

/// Where the mail hosts came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum MailHosts {
    /// MX records.
    Mx,
    /// No MX: the domain itself, by its A/AAAA records (RFC 5321 §5.1).
    Implicit,
    /// A null MX (RFC 7505): the domain takes no mail.
    NullMx,
    /// Neither MX nor address: no mail host.
    None,
    /// The MX lookup failed.
    LookupFailed,
}

/// Whether DANE applies to an MX host, and why not when it does not (RFC 7672 §2.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum DaneState {
    /// MX, address and TLSA lookups all secure, and TLSA records found: senders authenticate
    /// the server with them.
    Applies,
    /// Everything secure, but no TLSA records: DANE is not used for this host.
    NoTlsa,
    /// The MX, address or TLSA answer is insecure (unsigned zone): TLSA records, if any, are
    /// ignored (RFC 7672 §2.2).
    Insecure,
    /// The resolver's AD bit is not trusted (not on loopback): DANE was not applied.
    DnssecUnknown,
    /// A lookup on the way failed validation: DANE senders defer the mail (4.7.324).
    Bogus,
    /// A lookup failed, or the host has no address to probe.
    NotChecked,
}

impl DaneState {
    pub fn as_str(self) -> &'static str {
        match self {
            DaneState::Applies => "applies",
            DaneState::NoTlsa => "no-tlsa",
            DaneState::Insecure => "insecure",
            DaneState::DnssecUnknown => "dnssec-unknown",
            DaneState::Bogus => "bogus",
            DaneState::NotChecked => "not-checked",
        }
    }
}

/// The TLSA side of one MX host.
#[derive(Debug, Clone, Serialize)]
pub struct DaneView {
    pub state: DaneState,
    /// The name the TLSA records were looked up at (`_25._tcp.HOST`), if they were.
    pub tlsa_name: Option<String>,
    /// The DNSSEC status of the TLSA answer.
    pub tlsa_security: Option<Security>,
    /// The records found, `USAGE SELECTOR MATCHING HEX` (also when they are ignored).
    pub records: Vec<String>,
}

/// One MX host.
#[derive(Debug, Clone, Serialize)]
pub struct MxResult {
    /// Lower case, without the final dot.
    pub host: String,
    /// `null` for the implicit MX (the domain itself).
    pub preference: Option<u16>,
    /// CNAMEs followed from the host name to its addresses.
    pub cnames: Vec<String>,
    pub addresses: Vec<IpAddr>,
    /// The DNSSEC status of the address lookup (`null`: it failed).
    pub address_security: Option<Security>,
    pub dane: DaneView,
    /// Indices into the report's `results`: one per address probed (or one carrying the
    /// failure when nothing could be probed).
    pub results: Vec<usize>,
    /// What each address served (not in JSON: the report's results hold the judged chains).
    #[serde(skip)]
    pub probes: Vec<AddressProbe>,
    /// The TLSA RRset the chains were judged against, when DANE applies.
    #[serde(skip)]
    pub tlsa: Option<Arc<RecordSet>>,
    /// The TLSA records found, also when they are ignored (for the baseline).
    #[serde(skip)]
    pub tlsa_seen: Vec<Tlsa>,
    /// What MTA-STS makes of this host (`null` when the domain was not assessed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mta_sts: Option<crate::mtasts::judge::MxView>,
}

/// What one address of an MX host served.
#[derive(Debug, Clone)]
pub struct AddressProbe {
    pub address: IpAddr,
    /// Index into the report's `results`.
    pub result: usize,
    /// The certificates served, DER, in the order sent (empty when the probe failed).
    pub served: Vec<Vec<u8>>,
}

/// One mail domain.
#[derive(Debug, Clone, Serialize)]
pub struct DomainResult {
    pub domain: String,
    /// The resolver asked, `ADDR:PORT`.
    pub resolver: String,
    /// Its AD bit is trusted (it is on a loopback address).
    pub dnssec_trusted: bool,
    pub mail_hosts: MailHosts,
    /// The DNSSEC status of the MX answer (`null`: it failed).
    pub mx_security: Option<Security>,
    pub mx: Vec<MxResult>,
    pub tls_rpt: TlsRpt,
    /// The MTA-STS record, policy and per-MX verdicts (RFC 8461).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mta_sts: Option<crate::mtasts::judge::View>,
    /// Findings about the domain itself (null MX, TLS-RPT, DNSSEC of the MX lookup, ...).
    /// Those about one MX host are in its results' `problems`.
    pub problems: Vec<Finding>,
    /// The worst of the domain's findings and of every result of its MX hosts.
    pub status: Status,
}
