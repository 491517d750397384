//! Render stage: certificate-derived text (names, URLs, serials, file names made from names)
//! made safe for the one place it leaves the program, one module per target language.
//!
//! A certificate's names are chosen by whoever made it, and a chain only has to end at a root
//! the operator accepts (a private CA given with `--roots` is enough), so every name is
//! attacker-controlled text. Each module says what its target treats as syntax and escapes it:
//!
//! * [`plain`]: the human, brief and Nagios reports and README.txt (read by people and by
//!   monitoring that splits lines);
//! * [`postfix`]: comment lines of the `main.cf` snippet;
//! * [`exim`]: comment lines of the Exim main-section, transport and Debian macro snippets;
//! * [`powershell`]: comments and string literals of `install-chain.ps1`;
//! * [`file_name`]: file and directory names made from certificate names.
//!
//! JSON needs nothing here: serde_json escapes every control character itself.
//!
//! Every escape this module writes is printable ASCII that contains no quote and does not end
//! in a backslash: `\n`, `\r`, `\t`, or `\u{HEX}` with the code point in upper-case hex.

pub mod exim;
pub mod file_name;
pub mod plain;
pub mod postfix;
pub mod powershell;

use std::borrow::Cow;

/// Whether `c` ends a line, or changes how the text around it is shown, on some target:
///
/// * C0 controls (U+0000..U+001F: CR and LF end lines in every configuration language here;
///   ESC starts terminal sequences), DEL (U+007F) and C1 controls (U+0080..U+009F: U+0085
///   NEXT LINE is a line end for Unicode text and whitespace for PowerShell, CharTraits.cs
///   `SpecialChars.NextLine`; U+009B is a one-byte CSI on some terminals);
/// * U+2028 LINE SEPARATOR and U+2029 PARAGRAPH SEPARATOR (Unicode line ends, UAX #14);
/// * the bidirectional formatting characters of UAX #9 §2: the embeddings, overrides and pop
///   U+202A..U+202E, the isolates U+2066..U+2069, and the marks U+200E, U+200F, U+061C, which
///   can make a line read in an order other than the one a parser sees ("Trojan Source",
///   CVE-2021-42574).
pub fn breaks_text(c: char) -> bool {
    matches!(
        c,
        '\u{0}'..='\u{1f}'
            | '\u{7f}'..='\u{9f}'
            | '\u{2028}'
            | '\u{2029}'
            | '\u{202a}'..='\u{202e}'
            | '\u{2066}'..='\u{2069}'
            | '\u{200e}'
            | '\u{200f}'
            | '\u{61c}'
    )
}

/// `s` with every character for which `escape` holds written as an escape (see the module
/// docs); borrowed when there is nothing to escape.
fn escape_where(s: &str, escape: impl Fn(char) -> bool) -> Cow<'_, str> {
    if !s.chars().any(&escape) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 16);
    for c in s.chars() {
        if !escape(c) {
            out.push(c);
            continue;
        }
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            _ => out.push_str(&format!("\\u{{{:X}}}", u32::from(c))),
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
pub(crate) mod tests {
    //! The dangerous classes every renderer is fed, and the escape format.

    use super::*;

    /// One sample of each class [`breaks_text`] names, plus the ends of each range.
    pub(crate) const BREAKING: &[char] = &[
        '\u{0}', '\u{7}', '\t', '\n', '\u{b}', '\u{c}', '\r', '\u{1b}', '\u{1f}', '\u{7f}',
        '\u{80}', '\u{85}', '\u{9b}', '\u{9f}', '\u{2028}', '\u{2029}', '\u{202a}', '\u{202b}',
        '\u{202c}', '\u{202d}', '\u{202e}', '\u{2066}', '\u{2067}', '\u{2068}', '\u{2069}',
        '\u{200e}', '\u{200f}', '\u{61c}',
    ];

    #[test]
    fn every_dangerous_class_is_caught_and_ordinary_text_is_not() {
        for &c in BREAKING {
            assert!(breaks_text(c), "{:?} must be escaped", c);
        }
        for c in [
            'a', ' ', '~', '\u{a0}', 'ő', 'ё', 'ς', '’', '\u{ff}', '\u{2027}', '\u{202f}',
        ] {
            assert!(!breaks_text(c), "{c:?} is ordinary text");
        }
    }

    #[test]
    fn escapes_are_printable_ascii_without_quotes_and_never_end_in_a_backslash() {
        for &c in BREAKING {
            let s = c.to_string();
            let e = escape_where(&s, breaks_text);
            assert!(e.starts_with('\\') && !e.ends_with('\\'), "{c:?} -> {e}");
            assert!(
                e.chars()
                    .all(|x| x.is_ascii_graphic() && x != '\'' && x != '"'),
                "{c:?} -> {e}"
            );
        }
        assert_eq!(
            escape_where("a\nb\u{202e}c", breaks_text),
            "a\\nb\\u{202E}c"
        );
        assert!(matches!(
            escape_where("CN=plain", breaks_text),
            Cow::Borrowed(_)
        ));
    }
}
