//! The MTA-STS policy text (RFC 8461 §3.2): `version`, `mode`, `max_age` and `mx` lines, and the
//! `mx` patterns matched against MX host names (§4.1).
//!
//! Lines end in LF or CRLF; each is `name: value` (`sts-policy-field-delim = ":" *WSP`), with
//! trailing white space allowed. Names are case-sensitive (`%s"version"`). Unknown names that
//! fit `sts-policy-ext-name` are ignored; of a repeated field other than `mx` the first counts
//! (§3.2: "all entries except for the first SHALL be ignored"). Blank lines, which the grammar
//! has no place for, are skipped, as common senders skip them. The body is at most 64 KiB
//! (the fetch's limit), which bounds every loop here.

use std::fmt;

use serde::Serialize;

use super::quote;

/// The largest `max_age` (§3.2: "maximum value of 31557600", one year of 365.25 days).
pub const MAX_AGE_LIMIT: u64 = 31_557_600;

/// What senders do when an MX fails the policy (§5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Senders must not deliver to an MX that fails (§5: "enforce").
    Enforce,
    /// Senders deliver anyway and report the failure over TLS-RPT (§5: "testing").
    Testing,
    /// Senders treat the domain as having no active policy (§5: "none").
    None,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Enforce => "enforce",
            Mode::Testing => "testing",
            Mode::None => "none",
        }
    }
}

/// A valid policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Policy {
    pub mode: Mode,
    /// Seconds senders may cache the policy.
    pub max_age: u64,
    /// The `mx` patterns, lower-cased, in policy order.
    pub mx: Vec<Pattern>,
}

/// One `mx` pattern: a host name, or `*.` and a domain (§3.2 `sts-policy-mx-value`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Pattern(String);

impl Pattern {
    /// The pattern as written, lower-cased, without a trailing dot.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether the MX host `host` matches (§4.1: "identical to the rules given in RFC 6125,
    /// with restriction that the wildcard character "*" may only be used to match the entire
    /// left-most label"; `*.example.com` matches `mail.example.com` but neither `example.com`
    /// nor `foo.bar.example.com`). Case-insensitive; a trailing dot on either side is ignored.
    pub fn matches(&self, host: &str) -> bool {
        let host = host.strip_suffix('.').unwrap_or(host);
        match self.0.strip_prefix("*.") {
            Some(parent) => host.split_once('.').is_some_and(|(label, rest)| {
                !label.is_empty() && rest.eq_ignore_ascii_case(parent)
            }),
            None => host.eq_ignore_ascii_case(&self.0),
        }
    }
}

impl Policy {
    /// The first pattern that `host` matches, if any.
    pub fn listed(&self, host: &str) -> Option<&Pattern> {
        self.mx.iter().find(|p| p.matches(host))
    }
}

/// Why a fetched policy is invalid; senders then have no policy for the domain (§3.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PolicyError {
    /// The body is not UTF-8 (§3.2 `sts-policy-vchar` is UTF-8).
    NotUtf8,
    /// A line is not `name: value` (line number from 1, the line).
    BadLine(usize, String),
    MissingVersion,
    /// `version` is not `STSv1`.
    BadVersion(String),
    MissingMode,
    /// `mode` is not `enforce`, `testing` or `none`.
    BadMode(String),
    MissingMaxAge,
    /// `max_age` is not 1 to 10 digits.
    BadMaxAge(String),
    /// `max_age` is over [`MAX_AGE_LIMIT`].
    MaxAgeTooLarge(u64),
    /// An `mx` value is not `["*."] Domain`.
    BadMx(String),
    /// `enforce` or `testing` without any `mx` line: no MX could ever pass.
    MissingMx(Mode),
}

impl PolicyError {
    /// Stable detail code (JSON `detail` of `mta-sts-policy-invalid`).
    pub fn code(&self) -> &'static str {
        match self {
            PolicyError::NotUtf8 => "not-utf8",
            PolicyError::BadLine(..) => "bad-line",
            PolicyError::MissingVersion => "missing-version",
            PolicyError::BadVersion(_) => "bad-version",
            PolicyError::MissingMode => "missing-mode",
            PolicyError::BadMode(_) => "bad-mode",
            PolicyError::MissingMaxAge => "missing-max-age",
            PolicyError::BadMaxAge(_) => "bad-max-age",
            PolicyError::MaxAgeTooLarge(_) => "max-age-too-large",
            PolicyError::BadMx(_) => "bad-mx",
            PolicyError::MissingMx(_) => "missing-mx",
        }
    }
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PolicyError::NotUtf8 => write!(f, "the policy is not UTF-8 text"),
            PolicyError::BadLine(n, line) => {
                write!(f, "line {n} (\"{}\") is not `name: value`", quote(line))
            }
            PolicyError::MissingVersion => write!(f, "it has no `version: STSv1` line"),
            PolicyError::BadVersion(v) => {
                write!(f, "its version is \"{}\", not STSv1", quote(v))
            }
            PolicyError::MissingMode => write!(f, "it has no `mode` line"),
            PolicyError::BadMode(m) => write!(
                f,
                "its mode is \"{}\", not enforce, testing or none (lower case)",
                quote(m)
            ),
            PolicyError::MissingMaxAge => write!(f, "it has no `max_age` line"),
            PolicyError::BadMaxAge(v) => write!(
                f,
                "its max_age \"{}\" is not a number of seconds (1 to 10 digits)",
                quote(v)
            ),
            PolicyError::MaxAgeTooLarge(n) => write!(
                f,
                "its max_age {n} is over the maximum of {MAX_AGE_LIMIT} seconds (one year)"
            ),
            PolicyError::BadMx(v) => write!(
                f,
                "the mx pattern \"{}\" is not a host name or `*.` and a domain",
                quote(v)
            ),
            PolicyError::MissingMx(mode) => write!(
                f,
                "it is in {} mode but lists no mx pattern, so no MX host can pass",
                mode.as_str()
            ),
        }
    }
}

/// Parses a policy body (§3.2).
pub fn parse(body: &[u8]) -> Result<Policy, PolicyError> {
    let text = std::str::from_utf8(body).map_err(|_| PolicyError::NotUtf8)?;
    let (mut version, mut mode, mut max_age) = (None, None, None);
    let mut mx = Vec::new();
    // `split('\n')` then a trailing CR removed: LF or CRLF (`sts-policy-term`).
    for (i, raw) in text.split('\n').enumerate() {
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        let line = line.trim_end_matches([' ', '\t']);
        if line.is_empty() {
            continue;
        }
        let Some((name, value)) = line.split_once(':') else {
            return Err(PolicyError::BadLine(i + 1, line.to_string()));
        };
        let value = value.trim_start_matches([' ', '\t']);
        match name {
            "version" => {
                version.get_or_insert(value);
            }
            "mode" => {
                mode.get_or_insert(value);
            }
            "max_age" => {
                max_age.get_or_insert(value);
            }
            "mx" => mx.push(pattern(value)?),
            _ if extension_name(name) => {}
            _ => return Err(PolicyError::BadLine(i + 1, line.to_string())),
        }
    }
    match version {
        None => return Err(PolicyError::MissingVersion),
        Some("STSv1") => {}
        Some(other) => return Err(PolicyError::BadVersion(other.to_string())),
    }
    let mode = match mode {
        None => return Err(PolicyError::MissingMode),
        Some("enforce") => Mode::Enforce,
        Some("testing") => Mode::Testing,
        Some("none") => Mode::None,
        Some(other) => return Err(PolicyError::BadMode(other.to_string())),
    };
    let max_age = match max_age {
        None => return Err(PolicyError::MissingMaxAge),
        Some(v) => parse_max_age(v)?,
    };
    if mx.is_empty() && mode != Mode::None {
        return Err(PolicyError::MissingMx(mode));
    }
    Ok(Policy { mode, max_age, mx })
}

/// `sts-policy-max-age-value = 1*10(DIGIT)`, at most [`MAX_AGE_LIMIT`].
fn parse_max_age(v: &str) -> Result<u64, PolicyError> {
    if v.is_empty() || v.len() > 10 || !v.bytes().all(|b| b.is_ascii_digit()) {
        return Err(PolicyError::BadMaxAge(v.to_string()));
    }
    let n: u64 = v
        .parse()
        .map_err(|_| PolicyError::BadMaxAge(v.to_string()))?;
    if n > MAX_AGE_LIMIT {
        return Err(PolicyError::MaxAgeTooLarge(n));
    }
    Ok(n)
}

/// `sts-policy-mx-value = ["*."] Domain`, Domain as in RFC 5321 §4.1.2: labels of letters,
/// digits and hyphens, neither starting nor ending with a hyphen. A trailing dot is tolerated.
fn pattern(v: &str) -> Result<Pattern, PolicyError> {
    let bad = || PolicyError::BadMx(v.to_string());
    let name = v.strip_suffix('.').unwrap_or(v);
    let domain = name.strip_prefix("*.").unwrap_or(name);
    if domain.is_empty() || domain.len() > 253 {
        return Err(bad());
    }
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    };
    if !domain.split('.').all(label_ok) {
        return Err(bad());
    }
    Ok(Pattern(name.to_ascii_lowercase()))
}

/// `sts-policy-ext-name = (ALPHA / DIGIT) *31(ALPHA / DIGIT / "_" / "-" / ".")`.
fn extension_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    bytes.next().is_some_and(|b| b.is_ascii_alphanumeric())
        && name.len() <= 32
        && bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

#[cfg(test)]
mod tests {
    //! RFC 8461 §3.2 policy grammar and §4.1 MX matching.

    use super::*;

    const EXAMPLE: &str = "version: STSv1\nmode: enforce\nmx: mail.example.com\n\
                           mx: *.example.net\nmx: backupmx.example.com\nmax_age: 604800\n";

    #[test]
    fn the_rfc_example_parses_with_lf_or_crlf() {
        let p = parse(EXAMPLE.as_bytes()).expect("valid");
        assert_eq!(p.mode, Mode::Enforce);
        assert_eq!(p.max_age, 604_800);
        let mx: Vec<&str> = p.mx.iter().map(Pattern::as_str).collect();
        assert_eq!(
            mx,
            ["mail.example.com", "*.example.net", "backupmx.example.com"]
        );
        let crlf = EXAMPLE.replace('\n', "\r\n");
        assert_eq!(parse(crlf.as_bytes()), Ok(p));
    }

    #[test]
    fn unknown_keys_are_ignored_and_the_first_of_a_repeated_field_counts() {
        let text = "version: STSv1\nmode: testing\nmode: enforce\nx-note: any text here\n\
                    mx: MX.Example.COM.\nmax_age:86400   \n";
        let p = parse(text.as_bytes()).expect("valid");
        assert_eq!(p.mode, Mode::Testing);
        assert_eq!(p.max_age, 86_400);
        assert_eq!(p.mx[0].as_str(), "mx.example.com");
    }

    #[test]
    fn mode_none_needs_no_mx_but_enforce_and_testing_do() {
        let none = "version: STSv1\nmode: none\nmax_age: 86400\n";
        assert_eq!(parse(none.as_bytes()).map(|p| p.mode), Ok(Mode::None));
        for mode in [Mode::Enforce, Mode::Testing] {
            let text = format!("version: STSv1\nmode: {}\nmax_age: 86400\n", mode.as_str());
            assert_eq!(parse(text.as_bytes()), Err(PolicyError::MissingMx(mode)));
        }
    }

    #[test]
    fn every_invalid_field_is_named() {
        let base = |replace: &str, with: &str| EXAMPLE.replace(replace, with);
        let cases = [
            (base("version: STSv1\n", ""), "missing-version"),
            (base("STSv1", "STSv2"), "bad-version"),
            (base("mode: enforce\n", ""), "missing-mode"),
            (base("enforce", "Enforce"), "bad-mode"),
            (base("max_age: 604800\n", ""), "missing-max-age"),
            (base("604800", "-1"), "bad-max-age"),
            (base("604800", "12345678901"), "bad-max-age"),
            (base("604800", "31557601"), "max-age-too-large"),
            (base("mail.example.com", "mail*.example.com"), "bad-mx"),
            (base("mail.example.com", "foo.*.example.com"), "bad-mx"),
            (base("mail.example.com", "-mail.example.com"), "bad-mx"),
            (base("mail.example.com", "*"), "bad-mx"),
            (base("mode: enforce", "mode enforce"), "bad-line"),
            (base("mode: enforce", "bad key: x"), "bad-line"),
        ];
        for (text, code) in cases {
            let got = parse(text.as_bytes()).expect_err(&text);
            assert_eq!(got.code(), code, "{text}: {got}");
        }
        assert_eq!(parse(b"\xff\xfe"), Err(PolicyError::NotUtf8));
        let at_limit = base("604800", "31557600");
        assert_eq!(
            parse(at_limit.as_bytes()).map(|p| p.max_age),
            Ok(31_557_600)
        );
    }

    #[test]
    fn a_wildcard_matches_exactly_one_leftmost_label() {
        let p = pattern("*.example.com").expect("valid");
        assert!(p.matches("mail.example.com"));
        assert!(p.matches("MAIL.Example.Com."));
        assert!(!p.matches("example.com"));
        assert!(!p.matches("foo.bar.example.com"));
        assert!(!p.matches(".example.com"));
        assert!(!p.matches("mail.example.com.evil"));
        let exact = pattern("mx1.example.com.").expect("valid");
        assert!(exact.matches("mx1.example.com"));
        assert!(exact.matches("MX1.EXAMPLE.COM."));
        assert!(!exact.matches("mx2.example.com"));
        assert!(!exact.matches("a.mx1.example.com"));
    }

    #[test]
    fn messages_escape_what_the_server_wrote() {
        let e = parse(b"version: STSv1\nmode: \x1b[2Jenforce\nmx: a.b\nmax_age: 1\n")
            .expect_err("bad mode");
        let text = e.to_string();
        assert!(
            !text.contains('\u{1b}') && text.contains("\\u{1B}"),
            "{text}"
        );
    }
}
