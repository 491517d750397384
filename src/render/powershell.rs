//! PowerShell (`install-chain.ps1`): certificate names never reach code. The script names
//! certificates by thumbprint and by file name (ASCII, made by chainfix: [`super::file_name`]),
//! passed as single-quoted literals; names appear only in `#` comments. The file is UTF-8
//! with a byte order mark ([`BOM`]): without one, Windows PowerShell 5.1 reads a script in the
//! ANSI code page, where the UTF-8 bytes of letters such as ő, ё or ς read as the quote marks
//! below.
//!
//! What PowerShell's tokenizer treats as syntax, from PowerShell's own source
//! (PowerShell/PowerShell, src/System.Management.Automation/engine/parser/CharTraits.cs,
//! `SpecialChars` and `CharExtensions`):
//! * `IsSingleQuote`: `'` U+2018 U+2019 U+201A U+201B ([`SINGLE_QUOTES`]); any of them ends a
//!   single-quoted string, and two in a row stand for the second one;
//! * `IsDoubleQuote`: `"` U+201C U+201D U+201E ([`DOUBLE_QUOTES`]);
//! * `IsDash`: `-` U+2013 U+2014 U+2015: a parameter or operator may start with any of them;
//!   irrelevant here, since no name is ever code;
//! * the `Newline` trait: LF (0x0A) and CR (0x0D), each on its own, end a line and so a `#`
//!   comment; U+0085 NEXT LINE is whitespace (`IsWhitespace`).
//!
//! Comments escape line ends and controls ([`super::breaks_text`]) and every quote character,
//! so a comment stays one comment even if the file is read with the wrong encoding.

use std::borrow::Cow;

/// UTF-8 byte order mark, written first so that every PowerShell version reads the file as
/// UTF-8.
pub const BOM: &str = "\u{feff}";

/// `CharExtensions.IsSingleQuote`: `'`, `SpecialChars.QuoteSingleLeft` (U+2018),
/// `QuoteSingleRight` (U+2019), `QuoteSingleBase` (U+201A), `QuoteReversed` (U+201B).
pub const SINGLE_QUOTES: [char; 5] = ['\'', '\u{2018}', '\u{2019}', '\u{201a}', '\u{201b}'];

/// `CharExtensions.IsDoubleQuote`: `"`, `SpecialChars.QuoteDoubleLeft` (U+201C),
/// `QuoteDoubleRight` (U+201D), `QuoteLowDoubleLeft` (U+201E).
pub const DOUBLE_QUOTES: [char; 4] = ['"', '\u{201c}', '\u{201d}', '\u{201e}'];

/// Any character PowerShell's tokenizer takes for a quote.
pub fn is_quote(c: char) -> bool {
    SINGLE_QUOTES.contains(&c) || DOUBLE_QUOTES.contains(&c)
}

/// `s` for the inside of a `# ...` comment line.
pub fn comment(s: &str) -> Cow<'_, str> {
    super::escape_where(s, |c| super::breaks_text(c) || is_quote(c))
}

/// `s` as a single-quoted string literal holding exactly `s`: the tokenizer reads two
/// single-quote characters in a row as the second one (`ScanStringLiteral`), so each is
/// doubled. Used for file names and thumbprints, which chainfix makes ASCII.
pub fn literal(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('\'');
    for c in s.chars() {
        if SINGLE_QUOTES.contains(&c) {
            out.push(c);
        }
        out.push(c);
    }
    out.push('\'');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::tests::BREAKING;

    /// PowerShell's line ends (CharTraits.cs: the `Newline` trait is on 0x0A and 0x0D only).
    fn ps_lines(s: &str) -> Vec<&str> {
        s.split(['\n', '\r']).collect()
    }

    #[test]
    fn a_comment_holds_no_quote_and_no_line_end_of_any_kind() {
        let all: Vec<char> = BREAKING
            .iter()
            .chain(&SINGLE_QUOTES)
            .chain(&DOUBLE_QUOTES)
            .copied()
            .collect();
        for c in all {
            let line = format!(
                "# CA: {}",
                comment(&format!("O{c}Neill{c}; Remove-Item C:\\"))
            );
            assert_eq!(ps_lines(&line).len(), 1, "{c:?}: {line}");
            assert!(!line
                .chars()
                .any(|x| is_quote(x) || crate::render::breaks_text(x)));
        }
        assert_eq!(comment("O’Neill"), "O\\u{2019}Neill");
        assert_eq!(comment("Őrség ёлка ς"), "Őrség ёлка ς");
    }

    /// A minimal single-quoted string scanner after PowerShell's `ScanStringLiteral`: the
    /// literal ends at a single-quote character not followed by another.
    fn scan_single_quoted(s: &str) -> (String, &str) {
        let mut chars = s.char_indices();
        assert!(matches!(chars.next(), Some((_, c)) if SINGLE_QUOTES.contains(&c)));
        let mut value = String::new();
        let mut rest = s.char_indices().skip(1).peekable();
        while let Some((i, c)) = rest.next() {
            if SINGLE_QUOTES.contains(&c) {
                match rest.peek() {
                    Some(&(_, n)) if SINGLE_QUOTES.contains(&n) => {
                        value.push(n);
                        rest.next();
                    }
                    _ => return (value, &s[i + c.len_utf8()..]),
                }
            } else {
                value.push(c);
            }
        }
        panic!("unterminated literal {s:?}");
    }

    #[test]
    fn a_literal_holds_exactly_its_text_whatever_quotes_it_contains() {
        for &q in SINGLE_QUOTES.iter().chain(&DOUBLE_QUOTES) {
            for text in [
                format!("O{q}Neill"),
                format!("{q}; Remove-Item -Recurse C:\\; {q}"),
                format!("{q}{q}{q}"),
                "intermediate-1-MTA_Test.cer".to_string(),
            ] {
                let lit = literal(&text);
                let (value, rest) = scan_single_quoted(&lit);
                assert_eq!(value, text, "{lit}");
                assert!(rest.is_empty(), "{lit} ends early, leaving {rest:?}");
            }
        }
    }
}
