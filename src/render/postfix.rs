//! Postfix `main.cf`: certificate text goes only into comment lines. postconf(5), "Syntax":
//! "lines whose first non-whitespace character is a `#' are ignored" and "a logical line
//! starts with non-whitespace text. A line that starts with whitespace continues a logical
//! line"; `#` starts a comment only at the start of a line. So the only way out of a comment
//! is a line end: after one, text at the start of a line is a new parameter, and indented text
//! continues the parameter above the comment (the operator's own last line, when the snippet
//! is appended). Every line end and control is escaped ([`super::breaks_text`]).

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
    fn a_comment_cannot_start_a_parameter_or_continue_one() {
        for &c in BREAKING {
            for attack in [
                format!("x{c}smtpd_banner = INJECTED"),
                format!("x{c}  INJECTED continuation"),
            ] {
                let line = format!("# Leaf: {}\n", comment(&attack));
                assert_eq!(line.lines().count(), 1, "{c:?}: {line}");
                assert!(line.lines().all(|l| l.starts_with('#')), "{line}");
            }
        }
    }
}
