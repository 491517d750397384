//! DANE stage (RFC 6698, RFC 7671, RFC 7672 for SMTP), offline: the TLSA records in force come
//! from the user (`--tlsa`, `--tlsa-file`), never from DNS. `record.rs` reads them; `judge.rs`
//! matches a chain against them, record by record; `assess.rs` judges the presented chain and
//! the chain `repair` would write and turns the verdicts into findings (4.7.323, 4.7.325);
//! `publish.rs` chooses the records to publish for a chain (`tlsa.zone`, `emit/dane.rs`).

pub mod assess;
pub mod judge;
pub mod publish;
pub mod record;

pub use assess::{assess, Assessment};
pub use record::{Record, Tlsa};

/// The TLSA records in force for one MX host: one RRset.
#[derive(Debug, Clone)]
pub struct RecordSet {
    pub records: Vec<Record>,
    /// The TLSA base domain (RFC 7672 §2.2.3) from the records' owner `_PORT._tcp.HOST`, when
    /// the owner is absolute; else `--host`.
    pub host: Option<String>,
    /// Where `host` came from.
    pub host_from: HostFrom,
    /// The port of the owner name (`_25`), 25 when no owner is given.
    pub port: u16,
    /// The RRset's TTL, when any line gave one (the smallest).
    pub ttl: Option<u32>,
}

/// Where the name checked for DANE-TA (RFC 7672 §3.2.2) came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum HostFrom {
    /// The records' owner name `_PORT._tcp.HOST.`.
    RecordOwner,
    /// `--host`.
    HostOption,
    /// Neither: DANE-TA name checks cannot be made.
    Unknown,
    /// `probe --domain`: the TLSA base domain the records were looked up at.
    Dns,
}

impl RecordSet {
    /// The set from `--tlsa` values and `--tlsa-file` texts (label, text). All records must
    /// have one owner: they are one RRset. `host` is `--host`.
    pub fn parse(
        values: &[String],
        files: &[(String, String)],
        host: Option<&str>,
    ) -> Result<RecordSet, String> {
        let mut records = Vec::new();
        for (i, value) in values.iter().enumerate() {
            record::parse_text(value, &format!("--tlsa #{}", i + 1), false, &mut records)?;
        }
        for (label, text) in files {
            record::parse_text(text, label, true, &mut records)?;
        }
        if records.is_empty() {
            return Err("no TLSA record given (only comments and blank lines)".into());
        }
        if records.len() > record::MAX_RECORDS {
            return Err(format!(
                "more than {} TLSA records (no DNS response holds more)",
                record::MAX_RECORDS
            ));
        }
        let mut owners: Vec<&record::Owner> =
            records.iter().filter_map(|r| r.owner.as_ref()).collect();
        owners.dedup();
        owners.sort_by(|a, b| a.name.cmp(&b.name));
        owners.dedup();
        if owners.len() > 1 {
            let names: Vec<&str> = owners.iter().map(|o| o.name.as_str()).collect();
            return Err(format!(
                "TLSA records for more than one name ({}): give the RRset of one MX host",
                names.join(", ")
            ));
        }
        let (mut port, mut owner_host) = (25, None);
        if let Some(owner) = owners.first() {
            let (p, rest) = split_owner(&owner.name).ok_or_else(|| {
                format!(
                    "owner {:?} is not a TLSA name for TCP (_PORT._tcp.HOST, RFC 6698 §3)",
                    owner.name
                )
            })?;
            port = p;
            if owner.absolute {
                owner_host = Some(rest.to_string());
            }
        }
        let (host, host_from) = match (owner_host, host) {
            (Some(h), _) => (Some(h), HostFrom::RecordOwner),
            (None, Some(h)) => (
                Some(h.trim_end_matches('.').to_ascii_lowercase()),
                HostFrom::HostOption,
            ),
            (None, None) => (None, HostFrom::Unknown),
        };
        let ttl = records.iter().filter_map(|r| r.ttl).min();
        Ok(RecordSet {
            records,
            host,
            host_from,
            port,
            ttl,
        })
    }
}

impl RecordSet {
    /// The RRset a DNS answer gave for `_PORT._tcp.HOST` (`probe --domain`): `host` is the
    /// TLSA base domain (RFC 7672 §2.2.3), the owner's name without its prefix.
    pub fn from_dns(host: &str, port: u16, tlsas: Vec<Tlsa>, ttl: Option<u32>) -> RecordSet {
        let owner = format!("_{port}._tcp.{host}");
        let records = tlsas
            .into_iter()
            .take(record::MAX_RECORDS)
            .enumerate()
            .map(|(i, tlsa)| Record {
                tlsa,
                owner: Some(record::Owner {
                    name: owner.clone(),
                    absolute: true,
                }),
                ttl,
                origin: format!("DNS {owner} #{}", i + 1),
            })
            .collect();
        RecordSet {
            records,
            host: Some(host.to_string()),
            host_from: HostFrom::Dns,
            port,
            ttl,
        }
    }
}

/// `_25._tcp.mx.example.com` -> (25, `mx.example.com`).
fn split_owner(owner: &str) -> Option<(u16, &str)> {
    let rest = owner.strip_prefix('_')?;
    let (port, rest) = rest.split_once('.')?;
    let host = rest.strip_prefix("_tcp.")?;
    if host.is_empty() {
        return None;
    }
    Some((port.parse().ok()?, host))
}

#[cfg(test)]
mod tests {
    //! One RRset per run; its owner gives the host name for DANE-TA name checks.

    use super::*;

    const HEX: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn the_owner_names_the_host_and_port() {
        let set = RecordSet::parse(
            &[format!("_587._tcp.MX.Example.com. 300 IN TLSA 3 1 1 {HEX}")],
            &[],
            Some("other.example"),
        )
        .expect("parses");
        assert_eq!(set.host.as_deref(), Some("mx.example.com"));
        assert_eq!(set.host_from, HostFrom::RecordOwner);
        assert_eq!((set.port, set.ttl), (587, Some(300)));
        let bare =
            RecordSet::parse(&[format!("3 1 1 {HEX}")], &[], Some("mx.example.")).expect("parses");
        assert_eq!(bare.host.as_deref(), Some("mx.example"));
        assert_eq!(bare.host_from, HostFrom::HostOption);
    }

    #[test]
    fn two_owners_or_a_non_tlsa_owner_are_refused() {
        let two = [
            format!("_25._tcp.a.example. TLSA 3 1 1 {HEX}"),
            format!("_25._tcp.b.example. TLSA 3 1 1 {HEX}"),
        ];
        assert!(RecordSet::parse(&two, &[], None).is_err());
        let bad = [format!("mx.example. TLSA 3 1 1 {HEX}")];
        assert!(RecordSet::parse(&bad, &[], None).is_err());
    }
}
