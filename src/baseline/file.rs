//! The baseline file (`--baseline FILE`): JSON, `"format": "chainfix-baseline/1"`, keys
//! sorted, written atomically with [`crate::write`] (temp file, fsync, rename) and not
//! rewritten when unchanged. Reading refuses, naming the file, anything that is not a
//! complete baseline of this format within the budgets below.

use std::io::Read;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::snapshot::{normalize_name, DomainState, Snapshot};
use crate::write::{write_atomic, FileMode, WriteOutcome};

/// The format and version this chainfix reads and writes. A reader refuses any other: a
/// later version may change what a field means. Fields may be added within a version.
pub const FORMAT: &str = "chainfix-baseline/1";

/// Most bytes read from a baseline file. One MX host takes about 1.5 kB (a few
/// fingerprints, names and records); 16 MiB holds thousands of monitored domains.
pub const MAX_FILE_BYTES: u64 = 16 << 20;
/// Most domains in one file: one run probes each, so more is no monitoring job for one check.
pub const MAX_DOMAINS: usize = 10_000;
/// Most MX hosts per domain: far above what a sender tries (Postfix `smtp_mx_address_limit`,
/// default 5; RFC 5321 §5.1 lets it stop after some).
pub const MAX_MX: usize = 100;
/// Most certificates in a served chain: what the probe accepts (`probe/tls.rs`, 64).
pub const MAX_CHAIN: usize = 64;
/// Most TLSA records per MX host: more than some senders process is 12 (`dane/publish.rs`);
/// 256 leaves room for what a partner publishes by mistake.
pub const MAX_TLSA: usize = 256;

/// Why a baseline file cannot be used. Every message names the file.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error("cannot read the baseline {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("the baseline {path} is larger than {} MiB: not a chainfix baseline", MAX_FILE_BYTES >> 20)]
    TooLarge { path: String },
    #[error(
        "the baseline {path} is truncated ({detail}); restore it, or delete it to record a new one"
    )]
    Truncated { path: String, detail: String },
    #[error(
        "the baseline {path} is not JSON ({detail}); restore it, or delete it to record a new one"
    )]
    NotJson { path: String, detail: String },
    #[error("{path} is not a chainfix baseline (no \"format\": \"{FORMAT}\")")]
    NotBaseline { path: String },
    #[error("the baseline {path} has format {found:?}; this chainfix reads {FORMAT:?}")]
    WrongFormat { path: String, found: String },
    #[error("the baseline {path} holds more than {max} {what}")]
    Budget {
        path: String,
        max: usize,
        what: &'static str,
    },
    #[error("the baseline {path} is damaged: {detail}")]
    Invalid { path: String, detail: String },
}

/// The document as written.
#[derive(Serialize)]
struct DocOut<'a> {
    format: &'static str,
    domains: &'a std::collections::BTreeMap<String, DomainState>,
}

/// The document as read (the format was checked before).
#[derive(Deserialize)]
struct DocIn {
    domains: std::collections::BTreeMap<String, DomainState>,
}

/// The file's bytes for `snapshot`: pretty JSON ending in a newline, the same bytes for the
/// same state (sorted maps, records sorted by [`super::snapshot::DaneState::new`]).
pub fn to_bytes(snapshot: &Snapshot) -> serde_json::Result<Vec<u8>> {
    let doc = DocOut {
        format: FORMAT,
        domains: &snapshot.domains,
    };
    let mut bytes = serde_json::to_vec_pretty(&doc)?;
    bytes.push(b'\n');
    Ok(bytes)
}

/// Writes `snapshot` to `path` atomically (mode 0644: fingerprints and names, nothing
/// secret); an unchanged file is left alone.
pub fn write(path: &Path, snapshot: &Snapshot) -> std::io::Result<WriteOutcome> {
    let bytes = to_bytes(snapshot).map_err(std::io::Error::other)?;
    write_atomic(path, &bytes, FileMode::Public)
}

/// Reads the baseline at `path`; `Ok(None)` when there is no file yet (the first run
/// creates it).
pub fn read(path: &Path) -> Result<Option<Snapshot>, FileError> {
    let name = path.display().to_string();
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(FileError::Io { path: name, source }),
    };
    let mut bytes = Vec::new();
    file.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|source| FileError::Io {
            path: name.clone(),
            source,
        })?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(FileError::TooLarge { path: name });
    }
    parse(&bytes, &name).map(Some)
}

/// Parses a baseline's bytes; `name` is the file, for the messages.
pub fn parse(bytes: &[u8], name: &str) -> Result<Snapshot, FileError> {
    let path = || name.to_string();
    // First as plain JSON: tells a truncated file from garbage, and checks the format and the
    // budgets before anything is built from the content.
    let value: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| {
        let detail = e.to_string();
        if e.is_eof() {
            FileError::Truncated {
                path: path(),
                detail,
            }
        } else {
            FileError::NotJson {
                path: path(),
                detail,
            }
        }
    })?;
    match value.get("format") {
        Some(serde_json::Value::String(f)) if f == FORMAT => {}
        Some(serde_json::Value::String(f)) => {
            return Err(FileError::WrongFormat {
                path: path(),
                found: f.clone(),
            })
        }
        _ => return Err(FileError::NotBaseline { path: path() }),
    }
    check_budgets(&value, name)?;
    let doc: DocIn = serde_json::from_slice(bytes).map_err(|e| FileError::Invalid {
        path: path(),
        detail: e.to_string(),
    })?;
    for (domain, state) in &doc.domains {
        check_name(domain, "domain", name)?;
        for host in state.mx.keys() {
            check_name(host, "MX host", name)?;
        }
    }
    Ok(Snapshot {
        domains: doc.domains,
    })
}

/// The counts the budgets limit, on the parsed JSON (the file size bounds it).
fn check_budgets(value: &serde_json::Value, name: &str) -> Result<(), FileError> {
    let over = |max: usize, what: &'static str| FileError::Budget {
        path: name.to_string(),
        max,
        what,
    };
    let Some(domains) = value.get("domains").and_then(|d| d.as_object()) else {
        return Ok(()); // the typed parse names what is missing
    };
    if domains.len() > MAX_DOMAINS {
        return Err(over(MAX_DOMAINS, "domains"));
    }
    for d in domains.values() {
        let Some(mx) = d.get("mx").and_then(|m| m.as_object()) else {
            continue;
        };
        if mx.len() > MAX_MX {
            return Err(over(MAX_MX, "MX hosts in one domain"));
        }
        for m in mx.values() {
            let len = |v: Option<&serde_json::Value>| v.and_then(|v| v.as_array()).map(Vec::len);
            if len(m.pointer("/tls/served")).unwrap_or(0) > MAX_CHAIN {
                return Err(over(MAX_CHAIN, "certificates in one served chain"));
            }
            if len(m.pointer("/dane/records")).unwrap_or(0) > MAX_TLSA {
                return Err(over(MAX_TLSA, "TLSA records for one MX host"));
            }
        }
    }
    Ok(())
}

/// Names are keyed as [`normalize_name`] makes them; another spelling would never match.
fn check_name(n: &str, what: &str, file: &str) -> Result<(), FileError> {
    if n.is_empty() || normalize_name(n) != n {
        return Err(FileError::Invalid {
            path: file.to_string(),
            detail: format!("{what} {n:?} is not a lower-case name without a final dot"),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    //! The file round-trips byte for byte, is not rewritten when unchanged, and every way a
    //! file can be unusable is an error naming it.

    use super::*;
    use crate::baseline::snapshot::{DaneState, DaneVerdict, StsVerdict, TlsaSeen};
    use crate::baseline::test_pki::{intermediate, key, leaf, mx, root, snapshot, tls};
    use crate::dane::record::{Matching, Selector, Usage};
    use crate::dane::Tlsa;

    fn sample() -> Snapshot {
        let r = root("Root X1");
        let i = intermediate("R10", &r);
        let l = leaf("mx1.example.com", &key(), &i, 2027, 3);
        let path = [&l, &i.cert, &r.cert];
        let records: Vec<TlsaSeen> = [
            Tlsa::of(&l, Usage::DaneEe, Selector::Spki, Matching::Sha256),
            Tlsa::of(&i.cert, Usage::DaneTa, Selector::Spki, Matching::Sha256),
            Tlsa::of(&l, Usage::DaneEe, Selector::Spki, Matching::Full),
        ]
        .iter()
        .map(|t| TlsaSeen::judged(t, &path))
        .collect();
        let mut reversed = records.clone();
        reversed.reverse();
        let mut s = snapshot(
            "Example.com.",
            vec![
                (
                    "mx1.example.com",
                    mx(
                        Some(tls(&l, &i, &r)),
                        DaneState::new(DaneVerdict::Match, records),
                        StsVerdict::NotUsedDane,
                    ),
                ),
                (
                    "mx2.example.com",
                    mx(None, DaneState::none(), StsVerdict::Valid),
                ),
            ],
        );
        // The same RRset in another order is recorded the same way.
        let again = snapshot(
            "example.net",
            vec![(
                "mx.example.net",
                mx(
                    Some(tls(&l, &i, &r)),
                    DaneState::new(DaneVerdict::Match, reversed),
                    StsVerdict::None,
                ),
            )],
        );
        s.domains.extend(again.domains);
        s
    }

    #[test]
    fn round_trip_is_exact_and_an_unchanged_file_is_not_rewritten() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("baseline.json");
        assert!(read(&path).expect("absent is fine").is_none());
        let s = sample();
        assert_eq!(write(&path, &s).expect("write"), WriteOutcome::Created);
        let text = std::fs::read_to_string(&path).expect("read");
        assert!(
            text.starts_with(
                "{\n  \"format\": \"chainfix-baseline/1\",\n  \"domains\": {\n    \"example.com\""
            ),
            "{text}"
        );
        assert!(
            text.contains("\"not_after\": \"2027-03-01T00:00:00Z\""),
            "{text}"
        );
        assert!(text.contains("\"pins\": \"issuer\""), "{text}");
        let back = read(&path).expect("read").expect("present");
        assert_eq!(back, s);
        let (a, b) = (&back.domains["example.com"], &back.domains["example.net"]);
        assert_eq!(
            a.mx["mx1.example.com"].dane.records,
            b.mx["mx.example.net"].dane.records
        );
        assert_eq!(write(&path, &back).expect("write"), WriteOutcome::Unchanged);
        assert_eq!(std::fs::read_to_string(&path).expect("read"), text);
    }

    fn err(bytes: &[u8]) -> String {
        match parse(bytes, "/var/lib/chainfix/partners.json") {
            Ok(s) => panic!("accepted: {s:?}"),
            Err(e) => {
                let m = e.to_string();
                assert!(m.contains("/var/lib/chainfix/partners.json"), "{m}");
                m
            }
        }
    }

    #[test]
    fn unusable_files_are_errors_naming_the_file() {
        let good = to_bytes(&sample()).expect("serializes");
        let text = String::from_utf8(good.clone()).expect("utf-8");
        assert!(err(&good[..good.len() / 2]).contains("is truncated"));
        assert!(err(b"").contains("is truncated"));
        assert!(err(b"\x00garbage").contains("is not JSON"));
        assert!(err(b"[1, 2]").contains("is not a chainfix baseline"));
        assert!(err(br#"{"domains": {}}"#).contains("is not a chainfix baseline"));
        let m = err(text
            .replace("chainfix-baseline/1", "chainfix-baseline/2")
            .as_bytes());
        assert!(
            m.contains("\"chainfix-baseline/2\"") && m.contains("reads \"chainfix-baseline/1\""),
            "{m}"
        );
        // Valid JSON, damaged content: the field's problem and where it is.
        let spki = text
            .split("\"spki_sha256\": \"")
            .nth(1)
            .and_then(|t| t.get(..64))
            .expect("a fingerprint");
        let m = err(text.replacen(spki, "nothex", 1).as_bytes());
        assert!(
            m.contains("is damaged") && m.contains("\"nothex\" is not a SHA-256"),
            "{m}"
        );
        let m = err(text.replacen("\"3 1 1 ", "\"3 1 1 zz", 1).as_bytes());
        assert!(m.contains("is damaged"), "{m}");
        let m = err(text
            .replacen("\"2027-03-01T00:00:00Z\"", "\"March\"", 1)
            .as_bytes());
        assert!(m.contains("RFC 3339"), "{m}");
        let m = err(text
            .replacen("\"mx1.example.com\"", "\"MX1.example.com.\"", 1)
            .as_bytes());
        assert!(m.contains("lower-case"), "{m}");
        let m = err(text.replacen("\"match\"", "\"maybe\"", 1).as_bytes());
        assert!(m.contains("is damaged") && m.contains("maybe"), "{m}");
        assert!(err(br#"{"format": "chainfix-baseline/1"}"#).contains("missing field `domains`"));
    }

    #[test]
    fn budgets_are_enforced() {
        let domain = |mx: usize| {
            let hosts: Vec<String> = (0..mx)
                .map(|n| format!("\"mx{n}.example.com\": {{\"tls\": null, \"dane\": {{\"verdict\": \"not-applicable\", \"records\": []}}, \"mta_sts\": \"none\"}}"))
                .collect();
            format!("{{\"mx\": {{{}}}}}", hosts.join(","))
        };
        let doc = |domains: Vec<String>| {
            format!(
                "{{\"format\": \"{FORMAT}\", \"domains\": {{{}}}}}",
                domains.join(",")
            )
        };
        let ok = doc(vec![format!("\"example.com\": {}", domain(MAX_MX))]);
        assert_eq!(
            parse(ok.as_bytes(), "f").expect("at the limit").domains["example.com"]
                .mx
                .len(),
            MAX_MX
        );
        let m = err(doc(vec![format!("\"example.com\": {}", domain(MAX_MX + 1))]).as_bytes());
        assert!(m.contains("more than 100 MX hosts"), "{m}");
        let many: Vec<String> = (0..=MAX_DOMAINS)
            .map(|n| format!("\"d{n}.example\": {{\"mx\": {{}}}}"))
            .collect();
        assert!(err(doc(many).as_bytes()).contains("more than 10000 domains"));
        let served = vec!["\"00\""; MAX_CHAIN + 1].join(",");
        let chain = format!(
            "{{\"format\": \"{FORMAT}\", \"domains\": {{\"example.com\": {{\"mx\": {{\"mx.example.com\": {{\"tls\": {{\"served\": [{served}]}}}}}}}}}}}}"
        );
        assert!(err(chain.as_bytes()).contains("more than 64 certificates"));
        let records = vec!["{}"; MAX_TLSA + 1].join(",");
        let tlsa = format!(
            "{{\"format\": \"{FORMAT}\", \"domains\": {{\"example.com\": {{\"mx\": {{\"mx.example.com\": {{\"dane\": {{\"records\": [{records}]}}}}}}}}}}}}"
        );
        assert!(err(tlsa.as_bytes()).contains("more than 256 TLSA records"));

        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("huge.json");
        let f = std::fs::File::create(&path).expect("create");
        f.set_len(MAX_FILE_BYTES + 1).expect("sparse file");
        let m = read(&path).expect_err("too large").to_string();
        assert!(
            m.contains("huge.json") && m.contains("larger than 16 MiB"),
            "{m}"
        );
    }
}
