//! TLSA records (RFC 6698 §2) as the user gives them: zone-file lines
//! (`_25._tcp.mx.example.com. 3600 IN TLSA 3 1 1 …`) from a file or the command line, or the
//! bare RDATA (`3 1 1 …`). A line that is not a TLSA record is an error naming the line.
//!
//! Zone-file syntax handled (RFC 1035 §5.1): `;` comments, blank lines, parentheses spanning
//! lines, a line starting with white space keeping the previous owner, `@`, `$ORIGIN` and
//! `$TTL`. Anything else (`$INCLUDE`, `$GENERATE`, the RFC 3597 `\#` form, another type) is
//! refused with the line named, never guessed at.

use sha2::{Digest, Sha256, Sha512};

use crate::cert::{hex, Certificate};

/// Most bytes read from one `--tlsa-file`: a zone fragment of TLSA records is a few kB; a
/// whole signed zone file is not what this option takes.
pub const MAX_FILE_BYTES: u64 = 1 << 20;

/// Most TLSA records in one set. A DNS message is at most 65,535 bytes (RFC 1035 §4.2.2, the
/// TCP length field) and the smallest TLSA record on the wire is 16 bytes (2-byte compressed
/// owner, 10 bytes of type, class, TTL and length, 3 parameter bytes, 1 data byte): no RRset
/// a resolver can deliver holds more than 4,096.
pub const MAX_RECORDS: usize = 4096;

/// Certificate usage (RFC 6698 §2.1.1, names from RFC 7218).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Usage {
    /// 0 PKIX-TA: unusable for SMTP (RFC 7672 §3.1.3).
    PkixTa,
    /// 1 PKIX-EE: unusable for SMTP (RFC 7672 §3.1.3).
    PkixEe,
    /// 2 DANE-TA: a trust anchor in the served chain (RFC 7672 §3.1.2).
    DaneTa,
    /// 3 DANE-EE: the server's own certificate or key (RFC 7672 §3.1.1).
    DaneEe,
    Other(u8),
}

/// Selector (RFC 6698 §2.1.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Selector {
    /// 0: the whole certificate, DER.
    Cert,
    /// 1: the SubjectPublicKeyInfo, DER.
    Spki,
    Other(u8),
}

/// Matching type (RFC 6698 §2.1.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Matching {
    /// 0: the selected bytes themselves.
    Full,
    /// 1: their SHA-256.
    Sha256,
    /// 2: their SHA-512.
    Sha512,
    Other(u8),
}

impl Usage {
    fn from_number(n: u8) -> Usage {
        match n {
            0 => Usage::PkixTa,
            1 => Usage::PkixEe,
            2 => Usage::DaneTa,
            3 => Usage::DaneEe,
            n => Usage::Other(n),
        }
    }

    pub fn number(self) -> u8 {
        match self {
            Usage::PkixTa => 0,
            Usage::PkixEe => 1,
            Usage::DaneTa => 2,
            Usage::DaneEe => 3,
            Usage::Other(n) => n,
        }
    }
}

impl Selector {
    fn from_number(n: u8) -> Selector {
        match n {
            0 => Selector::Cert,
            1 => Selector::Spki,
            n => Selector::Other(n),
        }
    }

    pub fn number(self) -> u8 {
        match self {
            Selector::Cert => 0,
            Selector::Spki => 1,
            Selector::Other(n) => n,
        }
    }
}

impl Matching {
    fn from_number(n: u8) -> Matching {
        match n {
            0 => Matching::Full,
            1 => Matching::Sha256,
            2 => Matching::Sha512,
            n => Matching::Other(n),
        }
    }

    pub fn number(self) -> u8 {
        match self {
            Matching::Full => 0,
            Matching::Sha256 => 1,
            Matching::Sha512 => 2,
            Matching::Other(n) => n,
        }
    }
}

/// One TLSA RDATA.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tlsa {
    pub usage: Usage,
    pub selector: Selector,
    pub matching: Matching,
    pub data: Vec<u8>,
}

/// Why a record cannot authenticate an SMTP server; a sender ignores it (RFC 7672 §2.2:
/// "unusable" records).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unusable {
    /// Usages 0 and 1 rely on the sender's CA list, which SMTP senders do not have
    /// (RFC 7672 §3.1.3).
    PkixUsage,
    UnknownUsage,
    UnknownSelector,
    UnknownMatching,
}

impl Unusable {
    pub fn why(self) -> &'static str {
        match self {
            Unusable::PkixUsage => {
                "usages 0 (PKIX-TA) and 1 (PKIX-EE) are unusable for SMTP (RFC 7672 §3.1.3)"
            }
            Unusable::UnknownUsage => "unknown certificate usage (RFC 6698 §2.1.1)",
            Unusable::UnknownSelector => "unknown selector (RFC 6698 §2.1.2)",
            Unusable::UnknownMatching => "unknown matching type (RFC 6698 §2.1.3)",
        }
    }
}

impl Tlsa {
    /// `3 1 1 <hex>`, the presentation form (RFC 6698 §2.2), lower-case hex.
    pub fn rdata(&self) -> String {
        format!(
            "{} {} {} {}",
            self.usage.number(),
            self.selector.number(),
            self.matching.number(),
            hex(&self.data)
        )
    }

    /// `None` when an SMTP sender can use the record, else why not.
    pub fn unusable(&self) -> Option<Unusable> {
        match (self.usage, self.selector, self.matching) {
            (Usage::PkixTa | Usage::PkixEe, _, _) => Some(Unusable::PkixUsage),
            (Usage::Other(_), _, _) => Some(Unusable::UnknownUsage),
            (_, Selector::Other(_), _) => Some(Unusable::UnknownSelector),
            (_, _, Matching::Other(_)) => Some(Unusable::UnknownMatching),
            _ => None,
        }
    }

    /// A record from its wire fields (a TLSA answer, RFC 6698 §2.1).
    pub fn from_fields(usage: u8, selector: u8, matching: u8, data: Vec<u8>) -> Tlsa {
        Tlsa {
            usage: Usage::from_number(usage),
            selector: Selector::from_number(selector),
            matching: Matching::from_number(matching),
            data,
        }
    }

    /// The record for `cert` with these parameters.
    pub fn of(cert: &Certificate, usage: Usage, selector: Selector, matching: Matching) -> Tlsa {
        Tlsa {
            usage,
            selector,
            matching,
            data: digest(selected(cert, selector).unwrap_or_default(), matching),
        }
    }

    /// Whether the record's data is what its selector and matching type make of `cert`
    /// (RFC 6698 §2.1.2, §2.1.3). The usage is not considered here.
    pub fn matches(&self, cert: &Certificate) -> bool {
        if matches!(self.matching, Matching::Other(_)) {
            return false;
        }
        match selected(cert, self.selector) {
            Some(bytes) => digest(bytes, self.matching) == self.data,
            None => false,
        }
    }
}

/// The bytes selector `s` picks from `cert`.
fn selected(cert: &Certificate, s: Selector) -> Option<&[u8]> {
    match s {
        Selector::Cert => Some(&cert.der),
        Selector::Spki => cert.spki_der(),
        Selector::Other(_) => None,
    }
}

fn digest(bytes: &[u8], m: Matching) -> Vec<u8> {
    match m {
        Matching::Full | Matching::Other(_) => bytes.to_vec(),
        Matching::Sha256 => Sha256::digest(bytes).to_vec(),
        Matching::Sha512 => Sha512::digest(bytes).to_vec(),
    }
}

/// A record with where it came from.
#[derive(Debug, Clone)]
pub struct Record {
    pub tlsa: Tlsa,
    /// The owner name, lower case, absolute names without the final dot; `None` for bare
    /// RDATA.
    pub owner: Option<Owner>,
    pub ttl: Option<u32>,
    /// Where it was read: `FILE:LINE` or `--tlsa N`.
    pub origin: String,
}

/// An owner name as written (after `$ORIGIN`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    pub name: String,
    /// Ends with a dot (or was completed by `$ORIGIN`).
    pub absolute: bool,
}

/// Parses the records of `text`, read from `label` (a file name, or `--tlsa #N`), into `out`.
/// Errors name the line: `LABEL:LINE`, or just `LABEL` for a one-line `--tlsa` value
/// (`numbered` false).
pub fn parse_text(
    text: &str,
    label: &str,
    numbered: bool,
    out: &mut Vec<Record>,
) -> Result<(), String> {
    let numbered = numbered || text.lines().nth(1).is_some();
    let mut state = ZoneState::default();
    // A logical line: its first physical line's number, whether it started with white space,
    // and its text so far (parentheses let one record span lines, RFC 1035 §5.1).
    let mut pending: Option<(usize, bool, String)> = None;
    let mut depth = 0usize;
    for (i, raw) in text.lines().enumerate() {
        let n = i + 1;
        let line = raw.split(';').next().unwrap_or_default();
        for c in line.chars() {
            match c {
                '(' => depth += 1,
                ')' => {
                    depth = depth
                        .checked_sub(1)
                        .ok_or_else(|| format!("{label}:{n}: ')' without '('"))?
                }
                _ => {}
            }
        }
        let cleaned = line.replace(['(', ')'], " ");
        let entry = pending.get_or_insert_with(|| {
            (
                n,
                line.starts_with([' ', '\t']),
                String::with_capacity(line.len()),
            )
        });
        entry.2.push(' ');
        entry.2.push_str(&cleaned);
        if depth == 0 {
            if let Some((start, indented, text)) = pending.take() {
                let at = if numbered {
                    format!("{label}:{start}")
                } else {
                    label.to_string()
                };
                state
                    .line(&text, indented, &at, out)
                    .map_err(|why| format!("{at}: {why}"))?;
                if out.len() > MAX_RECORDS {
                    return Err(format!(
                        "{at}: more than {MAX_RECORDS} TLSA records (no DNS response holds more)"
                    ));
                }
            }
        }
    }
    if let Some((start, _, _)) = pending {
        return Err(format!("{label}:{start}: '(' is never closed"));
    }
    Ok(())
}

/// `$ORIGIN`, `$TTL` and the last owner, as a zone file carries them from line to line.
#[derive(Default)]
struct ZoneState {
    origin: Option<String>,
    default_ttl: Option<u32>,
    last_owner: Option<Owner>,
}

impl ZoneState {
    fn line(
        &mut self,
        text: &str,
        indented: bool,
        at: &str,
        out: &mut Vec<Record>,
    ) -> Result<(), String> {
        let tokens: Vec<&str> = text.split_whitespace().collect();
        let Some(first) = tokens.first() else {
            return Ok(());
        };
        if first.starts_with('$') {
            return self.directive(&tokens);
        }
        let Some(type_at) = tokens.iter().position(|t| t.eq_ignore_ascii_case("TLSA")) else {
            // Bare RDATA: "3 1 1 HEX".
            if first.bytes().all(|b| b.is_ascii_digit()) && tokens.len() >= 4 {
                out.push(Record {
                    tlsa: rdata(&tokens)?,
                    owner: None,
                    ttl: self.default_ttl,
                    origin: at.to_string(),
                });
                return Ok(());
            }
            return Err(
                "not a TLSA record (expected \"[OWNER] [TTL] [IN] TLSA USAGE SELECTOR \
                        MATCHING HEX\" or \"USAGE SELECTOR MATCHING HEX\")"
                    .into(),
            );
        };
        let mut head = &tokens[..type_at];
        let mut owner = if indented {
            self.last_owner.clone()
        } else {
            None
        };
        if let Some(name) = head
            .first()
            .filter(|t| !indented && !is_ttl(t) && !is_class(t))
        {
            owner = Some(self.owner(name)?);
            head = &head[1..];
        }
        let mut ttl = self.default_ttl;
        for t in head {
            if is_ttl(t) {
                ttl = Some(t.parse().map_err(|_| format!("TTL {t} is too large"))?);
            } else if t.eq_ignore_ascii_case("IN") {
            } else if is_class(t) {
                return Err(format!("class {t}: TLSA records are class IN"));
            } else {
                return Err(format!("unexpected {t:?} before TLSA"));
            }
        }
        self.last_owner.clone_from(&owner);
        out.push(Record {
            tlsa: rdata(&tokens[type_at + 1..])?,
            owner,
            ttl,
            origin: at.to_string(),
        });
        Ok(())
    }

    fn directive(&mut self, tokens: &[&str]) -> Result<(), String> {
        let value = tokens.get(1);
        match (tokens[0].to_ascii_uppercase().as_str(), value) {
            ("$ORIGIN", Some(name)) if name.ends_with('.') => {
                self.origin = Some(lower_name(name));
                Ok(())
            }
            ("$ORIGIN", _) => Err("$ORIGIN needs an absolute name (ending in a dot)".into()),
            ("$TTL", Some(ttl)) if is_ttl(ttl) => {
                self.default_ttl = Some(
                    ttl.parse()
                        .map_err(|_| format!("$TTL {ttl} is too large"))?,
                );
                Ok(())
            }
            ("$TTL", _) => Err("$TTL needs a number of seconds".into()),
            (other, _) => Err(format!(
                "{other} is not supported here (only $ORIGIN and $TTL)"
            )),
        }
    }

    /// An owner as written, completed by `$ORIGIN` when relative (RFC 1035 §5.1).
    fn owner(&self, name: &str) -> Result<Owner, String> {
        if name.contains('\\') {
            return Err(format!(
                "owner {name:?}: escapes in names are not supported"
            ));
        }
        let owner = match (name, &self.origin) {
            ("@", Some(origin)) => Owner {
                name: origin.clone(),
                absolute: true,
            },
            ("@", None) => return Err("@ without $ORIGIN".into()),
            (n, _) if n.ends_with('.') => Owner {
                name: lower_name(n),
                absolute: true,
            },
            (n, Some(origin)) => Owner {
                name: format!("{}.{origin}", n.to_ascii_lowercase()),
                absolute: true,
            },
            (n, None) => Owner {
                name: n.to_ascii_lowercase(),
                absolute: false,
            },
        };
        Ok(owner)
    }
}

fn lower_name(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

fn is_ttl(t: &str) -> bool {
    !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit())
}

fn is_class(t: &str) -> bool {
    ["IN", "CH", "HS", "CS", "ANY"]
        .iter()
        .any(|c| t.eq_ignore_ascii_case(c))
}

/// `USAGE SELECTOR MATCHING HEX...` (RFC 6698 §2.2: the hex may be split by white space and
/// is case-insensitive).
fn rdata(tokens: &[&str]) -> Result<Tlsa, String> {
    if tokens.first() == Some(&"\\#") {
        return Err(
            "the generic \\# form (RFC 3597) is not supported; write USAGE SELECTOR \
                    MATCHING HEX"
                .into(),
        );
    }
    let [u, s, m, rest @ ..] = tokens else {
        return Err("a TLSA record needs USAGE SELECTOR MATCHING HEX".into());
    };
    let number = |t: &str, what: &str| {
        t.parse::<u8>()
            .map_err(|_| format!("{what} {t:?} is not a number from 0 to 255"))
    };
    let tlsa = Tlsa {
        usage: Usage::from_number(number(u, "usage")?),
        selector: Selector::from_number(number(s, "selector")?),
        matching: Matching::from_number(number(m, "matching type")?),
        data: from_hex(&rest.concat())?,
    };
    let want = match tlsa.matching {
        Matching::Sha256 => Some(32),
        Matching::Sha512 => Some(64),
        _ => None,
    };
    if let Some(want) = want.filter(|&w| w != tlsa.data.len()) {
        return Err(format!(
            "matching type {} needs {want} bytes of data, not {}",
            tlsa.matching.number(),
            tlsa.data.len()
        ));
    }
    Ok(tlsa)
}

fn from_hex(text: &str) -> Result<Vec<u8>, String> {
    if text.is_empty() {
        return Err("no certificate association data".into());
    }
    if text.len() % 2 != 0 {
        return Err("the hex data has an odd number of digits".into());
    }
    let digit = |b: u8| match b {
        b'0'..=b'9' => Ok(b - b'0'),
        b'a'..=b'f' => Ok(b - b'a' + 10),
        b'A'..=b'F' => Ok(b - b'A' + 10),
        _ => Err(format!("{:?} is not a hex digit", char::from(b))),
    };
    text.as_bytes()
        .chunks(2)
        .map(|pair| Ok(digit(pair[0])? << 4 | digit(pair[1])?))
        .collect()
}

#[cfg(test)]
mod tests {
    //! Zone lines in their usual spellings parse to the same record; bad lines name the line.

    use super::*;

    const HEX: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    fn parse(text: &str) -> Result<Vec<Record>, String> {
        let mut out = Vec::new();
        parse_text(text, "t", true, &mut out).map(|()| out)
    }

    #[test]
    fn spellings_of_one_record_agree() {
        let upper = HEX.to_ascii_uppercase();
        let split = format!("{} {}", &HEX[..20], &HEX[20..]);
        for text in [
            format!("_25._tcp.mx.example.com. 3600 IN TLSA 3 1 1 {HEX}"),
            format!("_25._tcp.mx.example.com. IN 3600 tlsa 3 1 1 {upper}"),
            format!("3 1 1 {split}"),
            format!(
                "$ORIGIN example.com.\n_25._tcp.mx TLSA 3 1 1 ( {}\n {} ) ; c",
                &HEX[..10],
                &HEX[10..]
            ),
        ] {
            let r = parse(&text).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(r.len(), 1, "{text}");
            assert_eq!(r[0].tlsa.rdata(), format!("3 1 1 {HEX}"), "{text}");
        }
        let r = parse(&format!(
            "$ORIGIN example.com.\n_25._tcp.mx 300 TLSA 3 1 1 {HEX}"
        ))
        .expect("parses");
        assert_eq!(
            r[0].owner.as_ref().expect("parses").name,
            "_25._tcp.mx.example.com"
        );
        assert_eq!(r[0].ttl, Some(300));
    }

    #[test]
    fn bad_lines_are_named() {
        for (text, line) in [
            ("; comment\n\nmx A 192.0.2.1", ":3:"),
            (&*format!("3 1 1 {HEX}\n3 1 1 abcd"), ":2:"),
            (&*format!("x TLSA 3 1 1 {HEX}zz"), ":1:"),
            ("$INCLUDE other", ":1:"),
            (&*format!("x TLSA 3 1 1 ( {HEX}"), ":1:"),
            ("x CH TLSA 3 1 1 00", ":1:"),
            ("x TLSA 300 1 1 00", ":1:"),
        ] {
            let e = parse(text).expect_err(text);
            assert!(e.starts_with("t") && e.contains(line), "{text}: {e}");
        }
    }

    #[test]
    fn the_record_budget_is_enforced() {
        let text = format!("3 1 1 {HEX}\n").repeat(MAX_RECORDS + 1);
        let e = parse(&text).expect_err("too many records");
        assert!(e.contains("more than 4096"), "{e}");
    }
}
