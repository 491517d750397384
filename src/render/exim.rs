//! Exim configuration: certificate text goes only into comment lines of the main-section,
//! transport and Debian macro snippets. Exim specification, chapter 6 "The Exim run time
//! configuration file", section "Configuration file format": lines starting with `#` (after
//! leading white space) are comments; "any non-comment line can be continued by ending it with
//! a backslash", so a comment that ends in a backslash does not join the line below it (checked
//! with `exim -bP`); macro definitions and the `.include`/`.ifdef` directives take effect only
//! at the start of a line. A line end is therefore the only way out of a comment, and every
//! line end and control is escaped ([`super::breaks_text`]).

use std::borrow::Cow;

/// `s` for the inside of a `# ...` comment line.
pub fn comment(s: &str) -> Cow<'_, str> {
    super::escape_where(s, super::breaks_text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::tests::BREAKING;

    #[test]
    fn a_comment_cannot_start_an_option_a_macro_or_a_directive() {
        for &c in BREAKING {
            for attack in [
                format!("x{c}tls_certificate = /tmp/evil.pem"),
                format!("x{c}.include /etc/shadow"),
                format!("x{c}MAIN_TLS_ENABLE = no"),
            ] {
                let line = format!("# Chain served: {}", comment(&attack));
                assert_eq!(line.lines().count(), 1, "{c:?}: {line}");
            }
        }
    }
}
