//! The `_mta-sts.<domain>` TXT record (RFC 8461 §3.1): which of the TXT strings a sender counts,
//! and the syntax of the one it uses (`v=STSv1; id=...`).
//!
//! RFC 8461 §3.1: records that do not begin with `v=STSv1;` are discarded; if the number left
//! is not one, or that one is syntactically invalid, the sender assumes the domain has no
//! available policy. Several strings of one record are concatenated without spaces: the caller
//! passes one `String` per TXT record, its strings already joined.

use std::fmt;

use super::quote;

/// Most TXT records looked at (a DNS response of 64 KiB holds no more useful ones).
pub const MAX_RECORDS: usize = 64;

/// A valid MTA-STS TXT record.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Record {
    /// The policy id: 1 to 32 letters and digits (§3.1 `sts-id`).
    pub id: String,
}

/// What the TXT strings at `_mta-sts.<domain>` say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordOutcome {
    /// No record begins with `v=STS` (any case): the domain publishes no MTA-STS record.
    Absent,
    /// Exactly one record begins with `v=STSv1;` and it is valid.
    Found(Record),
    /// Records meant for MTA-STS that a sender cannot use: the domain has no available policy.
    Invalid(RecordError),
}

/// Why the records give no usable MTA-STS record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordError {
    /// More than one record begins with `v=STSv1;` (§3.1: "the number of resulting records is
    /// not one").
    Several(usize),
    /// A record looks like MTA-STS (`v=STS...`, any case) but does not begin with the exact
    /// `v=STSv1;`, so senders discard it.
    NotStsV1(String),
    /// The one `v=STSv1;` record breaks the §3.1 grammar.
    Syntax { record: String, problem: Syntax },
    /// More TXT records than [`MAX_RECORDS`].
    TooMany(usize),
}

/// What is wrong with the grammar of a `v=STSv1;` record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Syntax {
    /// No `id=` field.
    MissingId,
    /// `id` is empty, longer than 32 characters or holds more than letters and digits.
    BadId,
    /// A field is not `name=value` with the §3.1 characters (`sts-extension`).
    BadField,
    /// Characters outside US-ASCII (§3.1: records MUST be US-ASCII).
    NotAscii,
}

impl Syntax {
    fn describe(self) -> &'static str {
        match self {
            Syntax::MissingId => "it has no id= field",
            Syntax::BadId => "its id is not 1 to 32 letters and digits",
            Syntax::BadField => {
                "a field is not name=value (no spaces, `=` or `;` in the value, a name of \
                 letters, digits, `_`, `-`, `.`)"
            }
            Syntax::NotAscii => "it is not US-ASCII",
        }
    }
}

impl fmt::Display for RecordError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecordError::Several(n) => write!(
                f,
                "{n} TXT records begin with v=STSv1; senders use MTA-STS only when exactly one \
                 does (RFC 8461 §3.1)"
            ),
            RecordError::NotStsV1(r) => write!(
                f,
                "the TXT record \"{}\" does not begin with `v=STSv1` and then `;` (case \
                 matters), so senders discard it (RFC 8461 §3.1)",
                quote(r)
            ),
            RecordError::Syntax { record, problem } => write!(
                f,
                "the TXT record \"{}\" is invalid: {} (RFC 8461 §3.1)",
                quote(record),
                problem.describe()
            ),
            RecordError::TooMany(n) => {
                write!(f, "{n} TXT records; chainfix reads at most {MAX_RECORDS}")
            }
        }
    }
}

/// Judges the TXT records at `_mta-sts.<domain>` (one string per record, its character-strings
/// joined without spaces).
pub fn parse(records: &[String]) -> RecordOutcome {
    if records.len() > MAX_RECORDS {
        return RecordOutcome::Invalid(RecordError::TooMany(records.len()));
    }
    let counted: Vec<&String> = records.iter().filter(|r| begins_sts_v1(r)).collect();
    match counted.as_slice() {
        [] => match records.iter().find(|r| looks_like_sts(r)) {
            Some(r) => RecordOutcome::Invalid(RecordError::NotStsV1(r.clone())),
            None => RecordOutcome::Absent,
        },
        [one] => match syntax(one) {
            Ok(record) => RecordOutcome::Found(record),
            Err(problem) => RecordOutcome::Invalid(RecordError::Syntax {
                record: (*one).clone(),
                problem,
            }),
        },
        several => RecordOutcome::Invalid(RecordError::Several(several.len())),
    }
}

/// §3.1: the records counted are those that begin with `v=STSv1;` (`sts-version` then
/// `sts-field-delim`, `*WSP ";" *WSP`, so spaces before the `;` are allowed).
fn begins_sts_v1(r: &str) -> bool {
    r.strip_prefix("v=STSv1")
        .is_some_and(|rest| rest.trim_start_matches([' ', '\t']).starts_with(';'))
}

/// A record someone meant for MTA-STS: it begins with `v=sts`, in any case.
fn looks_like_sts(r: &str) -> bool {
    r.trim_start()
        .get(..5)
        .is_some_and(|head| head.eq_ignore_ascii_case("v=sts"))
}

/// The §3.1 grammar:
///
/// ```text
/// sts-text-record = sts-version 1*(sts-field-delim sts-field) [sts-field-delim]
/// sts-field       = sts-id / sts-extension
/// sts-field-delim = *WSP ";" *WSP
/// sts-id          = %s"id=" 1*32(ALPHA / DIGIT)
/// sts-extension   = sts-ext-name "=" sts-ext-value
/// sts-ext-name    = (ALPHA / DIGIT) *31(ALPHA / DIGIT / "_" / "-" / ".")
/// sts-ext-value   = 1*(%x21-3A / %x3C / %x3E-7E)
/// ```
///
/// The first `id` counts; a later one is ignored (§3.1: "all entries except for the first
/// SHALL be ignored").
fn syntax(r: &str) -> Result<Record, Syntax> {
    if !r.is_ascii() {
        return Err(Syntax::NotAscii);
    }
    let rest = r.strip_prefix("v=STSv1").unwrap_or(r);
    let pieces: Vec<&str> = rest
        .split(';')
        .map(|f| f.trim_matches([' ', '\t']))
        .collect();
    let last = pieces.len() - 1;
    let mut id = None;
    // The first piece is what stood between `v=STSv1` and the first `;`: only spaces.
    for (i, &field) in pieces.iter().enumerate().skip(1) {
        if field.is_empty() {
            // Only the trailing delimiter may leave an empty field: `;;` is no `sts-field`.
            if i == last {
                continue;
            }
            return Err(Syntax::BadField);
        }
        let (name, value) = field.split_once('=').ok_or(Syntax::BadField)?;
        if name == "id" {
            let valid = !value.is_empty()
                && value.len() <= 32
                && value.bytes().all(|b| b.is_ascii_alphanumeric());
            if !valid {
                return Err(Syntax::BadId);
            }
            id.get_or_insert_with(|| value.to_string());
        } else if !extension_name(name) || !extension_value(value) {
            return Err(Syntax::BadField);
        }
    }
    id.map(|id| Record { id }).ok_or(Syntax::MissingId)
}

fn extension_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    bytes.next().is_some_and(|b| b.is_ascii_alphanumeric())
        && name.len() <= 32
        && bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

fn extension_value(value: &str) -> bool {
    !value.is_empty()
        && value
            .bytes()
            .all(|b| matches!(b, 0x21..=0x3a | 0x3c | 0x3e..=0x7e))
}

#[cfg(test)]
mod tests {
    //! RFC 8461 §3.1 record selection and grammar.

    use super::*;

    fn one(r: &str) -> RecordOutcome {
        parse(&[r.to_string()])
    }

    fn found(id: &str) -> RecordOutcome {
        RecordOutcome::Found(Record { id: id.into() })
    }

    #[test]
    fn the_rfc_example_and_its_variants_are_valid() {
        assert_eq!(
            one("v=STSv1; id=20160831085700Z;"),
            found("20160831085700Z")
        );
        assert_eq!(one("v=STSv1;id=abc"), found("abc"));
        assert_eq!(one("v=STSv1 ;\tid=abc ; ext_1=x.y/z;"), found("abc"));
        // A later id is ignored, the first one counts.
        assert_eq!(one("v=STSv1; id=first; id=second"), found("first"));
    }

    #[test]
    fn other_txt_records_are_ignored_and_none_is_absent() {
        let records = [
            "v=spf1 -all".to_string(),
            "google-site-verification=x".to_string(),
        ];
        assert_eq!(parse(&records), RecordOutcome::Absent);
        assert_eq!(parse(&[]), RecordOutcome::Absent);
        let mixed = [records[0].clone(), "v=STSv1; id=1".to_string()];
        assert_eq!(parse(&mixed), found("1"));
    }

    #[test]
    fn two_sts_records_mean_no_policy() {
        let two = ["v=STSv1; id=1".to_string(), "v=STSv1; id=2".to_string()];
        assert_eq!(parse(&two), RecordOutcome::Invalid(RecordError::Several(2)));
    }

    #[test]
    fn a_record_in_the_wrong_case_or_without_the_semicolon_is_discarded() {
        for r in ["v=stsv1; id=1", "V=STSv1; id=1", "v=STSv1", "v=STSv2; id=1"] {
            assert!(
                matches!(one(r), RecordOutcome::Invalid(RecordError::NotStsV1(_))),
                "{r}"
            );
        }
    }

    #[test]
    fn grammar_errors_are_named() {
        let cases = [
            ("v=STSv1;", Syntax::MissingId),
            ("v=STSv1; mode=enforce", Syntax::MissingId),
            ("v=STSv1; id=", Syntax::BadId),
            ("v=STSv1; id=a-b", Syntax::BadId),
            (
                "v=STSv1; id=012345678901234567890123456789012",
                Syntax::BadId,
            ),
            ("v=STSv1; id=1; junk", Syntax::BadField),
            ("v=STSv1; id=1;; x=y", Syntax::BadField),
            ("v=STSv1; id=1; _x=y", Syntax::BadField),
            ("v=STSv1; id=1; x=a b", Syntax::BadField),
            ("v=STSv1; id=1; é=1", Syntax::NotAscii),
        ];
        for (r, want) in cases {
            match one(r) {
                RecordOutcome::Invalid(RecordError::Syntax { problem, .. }) => {
                    assert_eq!(problem, want, "{r}")
                }
                other => panic!("{r}: {other:?}"),
            }
        }
    }

    #[test]
    fn messages_quote_the_record_escaped() {
        let e = RecordError::NotStsV1("v=sts\u{1b}[31m; id=1".into());
        let text = e.to_string();
        assert!(text.contains("\\u{1B}[31m"), "{text}");
        assert!(!text.contains('\u{1b}'));
    }
}
