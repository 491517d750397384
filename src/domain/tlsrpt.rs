//! TLS-RPT (RFC 8460 §3): the `_smtp._tls.<domain>` TXT record that tells senders where to
//! report TLS failures. Present (with its `rua` URIs), missing, or malformed.

use serde::Serialize;

/// What the TXT records at `_smtp._tls.<domain>` say.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "state")]
pub enum TlsRpt {
    /// One `v=TLSRPTv1` record with a usable `rua`.
    Present { record: String, rua: Vec<String> },
    /// No `v=TLSRPTv1` record.
    Missing,
    /// Senders cannot use what is published: why.
    Malformed { record: Option<String>, why: String },
    /// The lookup failed.
    Unknown { why: String },
}

/// Most bytes of a TLS-RPT record kept for the report.
const MAX_RECORD_BYTES: usize = 2048;

/// Judges the TXT records (each one's strings already joined) at `_smtp._tls.<domain>`.
pub fn judge(txts: &[Vec<u8>]) -> TlsRpt {
    // RFC 8460 §3: records that do not begin with "v=TLSRPTv1;" are discarded; if the number
    // left is not one, senders assume the domain does not implement TLS-RPT.
    let ours: Vec<String> = txts
        .iter()
        .map(|t| String::from_utf8_lossy(&t[..t.len().min(MAX_RECORD_BYTES)]).into_owned())
        .filter(|t| {
            let head = t.trim_start();
            head.get(..10)
                .is_some_and(|v| v.eq_ignore_ascii_case("v=TLSRPTv1"))
        })
        .collect();
    match ours.as_slice() {
        [] => TlsRpt::Missing,
        [one] => parse(one),
        many => TlsRpt::Malformed {
            record: None,
            why: format!(
                "{} v=TLSRPTv1 records: senders use none of them (RFC 8460 §3 allows one)",
                many.len()
            ),
        },
    }
}

/// `v=TLSRPTv1; rua=mailto:a@example.com,https://r.example.com/x` (RFC 8460 §3).
fn parse(record: &str) -> TlsRpt {
    let bad = |why: String| TlsRpt::Malformed {
        record: Some(record.to_string()),
        why,
    };
    let mut fields = record.split(';').map(str::trim).filter(|f| !f.is_empty());
    match fields.next() {
        Some("v=TLSRPTv1") => {}
        _ => return bad("the record must start with exactly \"v=TLSRPTv1;\"".into()),
    }
    let mut rua: Option<Vec<String>> = None;
    for field in fields {
        let Some((key, value)) = field.split_once('=') else {
            return bad(format!("{field:?} is not NAME=VALUE"));
        };
        if key.trim().eq_ignore_ascii_case("rua") {
            if rua.is_some() {
                return bad("rua is given twice".into());
            }
            let uris: Vec<String> = value.split(',').map(|u| u.trim().to_string()).collect();
            // RFC 8460 §3: "mailto:" or "https:" URIs.
            if let Some(wrong) = uris.iter().find(|u| {
                let lower = u.to_ascii_lowercase();
                !(lower.starts_with("mailto:") && u.len() > 7
                    || lower.starts_with("https://") && u.len() > 8)
            }) {
                return bad(format!(
                    "rua {wrong:?} is neither a mailto: nor an https: URI"
                ));
            }
            rua = Some(uris);
        }
        // Other fields are extensions (RFC 8460 §3, ext-name), ignored by senders.
    }
    match rua {
        Some(rua) => TlsRpt::Present {
            record: record.to_string(),
            rua,
        },
        None => bad("no rua= field: senders have nowhere to report".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn txt(s: &str) -> Vec<u8> {
        s.as_bytes().to_vec()
    }

    #[test]
    fn one_record_with_rua_is_present() {
        assert_eq!(
            judge(&[
                txt("v=spf1 -all"),
                txt("v=TLSRPTv1; rua=mailto:tls@example.com,https://r.example.com/v1")
            ]),
            TlsRpt::Present {
                record: "v=TLSRPTv1; rua=mailto:tls@example.com,https://r.example.com/v1".into(),
                rua: vec![
                    "mailto:tls@example.com".into(),
                    "https://r.example.com/v1".into()
                ],
            }
        );
    }

    #[test]
    fn missing_duplicate_and_broken_records() {
        assert_eq!(judge(&[]), TlsRpt::Missing);
        assert_eq!(judge(&[txt("hello")]), TlsRpt::Missing);
        let two = judge(&[
            txt("v=TLSRPTv1; rua=mailto:a@example.com"),
            txt("v=TLSRPTv1; rua=mailto:b@example.com"),
        ]);
        assert!(matches!(two, TlsRpt::Malformed { record: None, .. }));
        for broken in [
            "v=TLSRPTv1;",
            "v=TLSRPTv1; rua=http://r.example.com/",
            "v=TLSRPTv1; rua=mailto:",
            "v=TLSRPTv1; rua",
            "v=TLSRPTv1x; rua=mailto:a@example.com",
        ] {
            assert!(
                matches!(
                    judge(&[txt(broken)]),
                    TlsRpt::Malformed { .. } | TlsRpt::Missing
                ),
                "{broken}"
            );
        }
        assert!(matches!(
            judge(&[txt(
                "v=TLSRPTv1; rua=mailto:a@example.com; rua=mailto:b@example.com"
            )]),
            TlsRpt::Malformed { .. }
        ));
    }
}
