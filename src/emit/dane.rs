//! `tlsa.zone`: the DANE TLSA records to publish for the written chain, as a zone-file
//! fragment (RFC 1035 §5.1 syntax), with the rollover steps of RFC 7671 §8.1 as comments.
//! Which records: [`crate::dane::publish::recommend`]. No certificate text is written: the
//! owner name is a checked host name, every comment is chainfix's own ASCII.

use super::{EmitOptions, Emitter, Material, OutputFile};
use crate::dane::publish::{self, MAX_RRSET};
use crate::write::FileMode;

pub const NAME: &str = "tlsa.zone";

pub struct Dane;

impl Emitter for Dane {
    fn name(&self) -> &'static str {
        "dane"
    }

    fn files(&self, m: &Material<'_>, o: &EmitOptions) -> Vec<OutputFile> {
        vec![OutputFile::new(NAME, zone(m, o), FileMode::Public)]
    }
}

/// The fragment's text.
pub fn zone(m: &Material<'_>, o: &EmitOptions) -> String {
    let records = publish::recommend(m.leaf, m.intermediates.first().copied());
    let given = o.tlsa_owner.as_deref().filter(|h| is_host_name(h));
    let from_cert = || {
        m.leaf
            .dns_names
            .iter()
            .map(|n| n.trim_end_matches('.').to_ascii_lowercase())
            .find(|n| is_host_name(n))
    };
    let (owner, owner_note) = match (given, from_cert()) {
        (Some(h), _) => (
            format!("_{}._tcp.{}.", o.tlsa_port, h.to_ascii_lowercase()),
            "the MX host of the records in force (or --host)",
        ),
        (None, Some(h)) => (
            format!("_{}._tcp.{h}.", o.tlsa_port),
            "the certificate's first DNS name: check that it is the MX host name (give --host)",
        ),
        (None, None) => (
            format!("_{}._tcp", o.tlsa_port),
            "RELATIVE: no MX host known (give --host); complete it with the MX host name",
        ),
    };
    let ttl = o.tlsa_ttl.map(|t| format!(" {t}")).unwrap_or_default();
    let wait = match o.tlsa_ttl {
        Some(t) => format!("twice the TTL ({} seconds)", u64::from(t) * 2),
        None => "twice the TTL of the records in force".to_string(),
    };
    let mut z = String::new();
    z.push_str(
        "; TLSA records (DANE, RFC 7672) for the chain in fullchain.pem, written by chainfix.\n",
    );
    z.push_str("; Publish them in the DNSSEC-signed zone of the MX host.\n");
    z.push_str(&format!("; Owner name: {owner_note}.\n;\n"));
    for r in &records {
        z.push_str(&format!("; {}: {}.\n", &r.record[..5], r.why));
    }
    z.push_str(
        ";\n; Rollover (RFC 7671 §8.1), so that no sender ever sees a chain the records do not match:\n",
    );
    z.push_str(";   1. publish these records BESIDE the ones in force (remove nothing yet);\n");
    z.push_str(&format!(
        ";   2. wait {wait}, until every resolver cache holds the new set;\n"
    ));
    z.push_str(";   3. deploy the new chain (fullchain.pem) and reload the MTA;\n");
    z.push_str(";   4. remove the old records that no longer match the deployed chain.\n");
    z.push_str(
        "; Avoid selector 0 (x 0 x) records: they hash the whole certificate, which changes with\n\
         ; every re-issue (renewal, cross-sign) even when the key stays (RFC 7671 §5.1, §5.2).\n",
    );
    z.push_str(&format!(
        "; Keep the RRset small: some senders process no more than about {MAX_RRSET} records per host.\n"
    ));
    if records.len() > MAX_RRSET {
        z.push_str(&format!(
            "; WARNING: {} records below, more than {MAX_RRSET}.\n",
            records.len()
        ));
    }
    for r in &records {
        z.push_str(&format!("{owner}{ttl} IN TLSA {}\n", r.record));
    }
    z
}

/// A host name safe to write as a zone-file owner: LDH labels (RFC 1123 §2.1), no wildcard,
/// no escapes, at most 253 characters.
fn is_host_name(name: &str) -> bool {
    name.len() <= 253
        && name.contains('.')
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}
