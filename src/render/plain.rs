//! Plain text read by people and by line-splitting tools: the human, brief and Nagios reports
//! on stdout and README.txt. A certificate's text must stay on the one line it is printed on
//! and show as what it is, so line ends, controls and bidirectional formatting are escaped
//! ([`super::breaks_text`]). Nagios plugin output is line-based: the first line is the status,
//! every later line long output (Nagios Plugin Development Guidelines, "Plugin Output").

use std::borrow::Cow;

/// `s` for one line of a report or README.txt.
pub fn line(s: &str) -> Cow<'_, str> {
    super::escape_where(s, super::breaks_text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::tests::BREAKING;

    #[test]
    fn report_text_stays_on_one_line_with_no_control_left() {
        for &c in BREAKING {
            let name = format!("CN=a{c}FORGED: all chains OK");
            let shown = line(&name);
            assert_eq!(shown.lines().count(), 1, "{c:?}: {shown}");
            assert!(!shown.chars().any(crate::render::breaks_text), "{shown}");
            assert!(shown.contains("FORGED: all chains OK"), "{shown}");
        }
        assert_eq!(line("CN=O’Neill ő"), "CN=O’Neill ő");
    }
}
