//! Changing one option of a hand-written Exim configuration file: the option's line in the
//! main section (before the first `begin`) or in one transport's block is replaced, keeping
//! every other byte. Only options written literally in the file are changed; one that comes
//! from a macro or an `.include` is refused (change it where it is defined; Debian's
//! generated configuration is made from macros and is never edited).
//!
//! Exim's syntax (spec 6 "The Exim run time configuration file"): `name = value`, a line ending
//! in `\` continues on the next; `begin NAME` starts a section; in the transports section a
//! line `NAME:` starts a transport.

/// `text` with option `name` set to `value` in the main section (`transport: None`) or in the
/// block of transport `transport`. An option not written there is added after `after` (the
/// option it goes with, e.g. `tls_certificate` for `tls_privatekey`) when that one is.
pub fn set_option(
    text: &str,
    transport: Option<&str>,
    name: &str,
    value: &str,
    after: Option<&str>,
) -> Result<String, String> {
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let (start, end) = block(&lines, transport).ok_or_else(|| match transport {
        Some(t) => format!("no transport {t} in the transports section"),
        None => "no main section".to_string(),
    })?;
    let find = |option: &str| -> Option<(usize, usize)> {
        let mut i = start;
        while i < end {
            let first = i;
            let mut last = i;
            while lines[last].trim_end().ends_with('\\') && last + 1 < end {
                last += 1;
            }
            if option_name(lines[first]) == Some(option) {
                return Some((first, last + 1));
            }
            i = last + 1;
        }
        None
    };
    let indent = if transport.is_some() { "  " } else { "" };
    let line = format!("{indent}{name} = {value}\n");
    if let Some((a, b)) = find(name) {
        return Ok([lines[..a].concat(), line, lines[b..].concat()].concat());
    }
    let anchor = after.and_then(find).ok_or_else(|| {
        format!(
            "{name} is not written in the {} (a macro or an .include sets it): change it there",
            transport.map_or("main section".to_string(), |t| format!("transport {t}"))
        )
    })?;
    Ok([lines[..anchor.1].concat(), line, lines[anchor.1..].concat()].concat())
}

/// The option a line sets (`name = ...`), if it is an option line.
fn option_name(line: &str) -> Option<&str> {
    let t = line.trim_start();
    if t.starts_with('#') || t.starts_with('.') {
        return None;
    }
    let (lhs, _) = t.split_once('=')?;
    let lhs = lhs.trim();
    (!lhs.is_empty() && lhs.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')).then_some(lhs)
}

/// `begin NAME`: the section a line starts, if it does.
fn section(line: &str) -> Option<&str> {
    let mut w = line.split_whitespace();
    (w.next() == Some("begin")).then(|| w.next()).flatten()
}

/// The line range of the main section, or of transport `name`'s block.
fn block(lines: &[&str], transport: Option<&str>) -> Option<(usize, usize)> {
    let first_section = lines
        .iter()
        .position(|l| section(l).is_some())
        .unwrap_or(lines.len());
    let Some(name) = transport else {
        return Some((0, first_section));
    };
    let start_of = lines
        .iter()
        .position(|l| section(l) == Some("transports"))?
        + 1;
    let end_of = lines[start_of..]
        .iter()
        .position(|l| section(l).is_some())
        .map_or(lines.len(), |i| start_of + i);
    let is_header = |l: &str| {
        !l.starts_with(char::is_whitespace)
            && l.trim_end().ends_with(':')
            && !l.trim_start().starts_with('#')
    };
    let header = (start_of..end_of)
        .find(|&i| is_header(lines[i]) && lines[i].trim().trim_end_matches(':').trim() == name)?;
    let end = (header + 1..end_of)
        .find(|&i| is_header(lines[i]))
        .unwrap_or(end_of);
    Some((header + 1, end))
}

#[cfg(test)]
mod tests {
    use super::set_option;

    const CONF: &str = "primary_hostname = mx.test\ntls_certificate = /old/cert.pem\n\
                        begin transports\nremote_smtp:\n  driver = smtp\n  tls_certificate = /c.pem\n\
                        local:\n  driver = appendfile\n";

    #[test]
    fn the_main_option_line_is_replaced_and_nothing_else() {
        let new = set_option(CONF, None, "tls_certificate", "/new/full.pem", None).expect("set");
        assert_eq!(
            new,
            CONF.replace(
                "tls_certificate = /old/cert.pem",
                "tls_certificate = /new/full.pem"
            )
        );
    }

    #[test]
    fn a_missing_key_option_goes_after_its_certificate() {
        let new = set_option(
            CONF,
            None,
            "tls_privatekey",
            "/old/cert.pem",
            Some("tls_certificate"),
        )
        .expect("set");
        assert!(new.contains(
            "tls_certificate = /old/cert.pem\ntls_privatekey = /old/cert.pem\nbegin transports"
        ));
    }

    #[test]
    fn a_transport_option_changes_in_that_transport_only() {
        let new =
            set_option(CONF, Some("remote_smtp"), "tls_certificate", "/n.pem", None).expect("set");
        assert!(new.contains("remote_smtp:\n  driver = smtp\n  tls_certificate = /n.pem\n"));
        assert!(new.contains("tls_certificate = /old/cert.pem\n"));
    }

    #[test]
    fn an_option_set_elsewhere_is_refused() {
        let text = "MAIN_TLS = /x.pem\ntls_privatekey = /k.pem\n.include /etc/tls.conf\n";
        assert!(set_option(text, None, "tls_certificate", "/n.pem", None).is_err());
    }

    #[test]
    fn continuation_lines_go_with_their_option() {
        let text = "tls_certificate = ${if exists{/a}\\\n  {/a}{/b}}\nqualify_domain = x\n";
        let new = set_option(text, None, "tls_certificate", "/n.pem", None).expect("set");
        assert_eq!(new, "tls_certificate = /n.pem\nqualify_domain = x\n");
    }
}
