//! Changing macro definitions in Debian's Exim macros file (`conf.d/main/000_localmacros` or
//! `exim4.conf.localmacros`), from which update-exim4.conf generates the configuration: each
//! macro is defined exactly once afterwards, because Exim rejects a macro defined twice
//! (spec 6.4 "Macros in the configuration file": a second definition must be written `==`).
//!
//! Syntax (spec 6.4): a definition is a line starting with an upper-case letter, the name
//! (letters, digits, underscores), optional white space, `=` (or `==`) and the value; a line
//! ending in `\` continues on the next (spec 6.2).

/// The macro of Debian's exim4-config templates that sets `option` in the main section
/// (`transport: None`) or in transport `transport`; `None` for an option no macro sets.
pub fn debian_macro(transport: Option<&str>, option: &str) -> Option<&'static str> {
    // conf.d/main/03_exim4-config_tlsoptions, conf.d/transport/30_exim4-config_remote_smtp*.
    match (transport, option) {
        (None, "tls_certificate") => Some("MAIN_TLS_CERTIFICATE"),
        (None, "tls_privatekey") => Some("MAIN_TLS_PRIVATEKEY"),
        (Some("remote_smtp"), "tls_certificate") => Some("REMOTE_SMTP_TLS_CERTIFICATE"),
        (Some("remote_smtp"), "tls_privatekey") => Some("REMOTE_SMTP_PRIVATEKEY"),
        (Some("remote_smtp_smarthost"), "tls_certificate") => {
            Some("REMOTE_SMTP_SMARTHOST_TLS_CERTIFICATE")
        }
        (Some("remote_smtp_smarthost"), "tls_privatekey") => {
            Some("REMOTE_SMTP_SMARTHOST_PRIVATEKEY")
        }
        _ => None,
    }
}

/// The macro that, when defined, names the server's certificate and key in one file and wins
/// over MAIN_TLS_CERTIFICATE/MAIN_TLS_PRIVATEKEY (03_exim4-config_tlsoptions: `.ifdef
/// MAIN_TLS_CERTKEY`). A repair writes the chain and the key apart, so it removes this one.
pub const MAIN_TLS_CERTKEY: &str = "MAIN_TLS_CERTKEY";

/// `text` with each `(name, Some(value))` defined once as `name = value` (its first definition
/// replaced in place, any later one removed; added at the end when there is none) and each
/// `(name, None)` not defined at all. Every other byte is kept.
pub fn set_macros(text: &str, macros: &[(&str, Option<&str>)]) -> String {
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let mut out = String::with_capacity(text.len());
    let mut done: Vec<&str> = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let mut last = i;
        while lines[last].trim_end().ends_with('\\') && last + 1 < lines.len() {
            last += 1;
        }
        let wanted = definition_name(lines[i])
            .and_then(|n| macros.iter().find(|(m, _)| *m == n).map(|m| (n, m.1)));
        match wanted {
            None => lines[i..=last].iter().for_each(|l| out.push_str(l)),
            Some((name, Some(value))) if !done.contains(&name) => {
                out.push_str(&format!("{name} = {value}\n"));
                done.push(name);
            }
            Some(_) => {}
        }
        i = last + 1;
    }
    for (name, value) in macros {
        if let (Some(value), false) = (value, done.contains(name)) {
            if !out.is_empty() && !out.ends_with('\n') {
                out.push('\n');
            }
            out.push_str(&format!("{name} = {value}\n"));
        }
    }
    out
}

/// The name a line defines, if it is a macro definition.
fn definition_name(line: &str) -> Option<&str> {
    if !line.starts_with(|c: char| c.is_ascii_uppercase()) {
        return None;
    }
    let end = line
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(line.len());
    line[end..]
        .trim_start()
        .starts_with('=')
        .then_some(&line[..end])
}

#[cfg(test)]
mod tests {
    use super::{debian_macro, set_macros};

    #[test]
    fn replaces_once_removes_duplicates_and_the_certkey() {
        let text = "# local\nMAIN_TLS_ENABLE = yes\nMAIN_TLS_CERTKEY = /etc/both.pem\n\
                    MAIN_TLS_CERTIFICATE=/old.pem\nMAIN_TLS_CERTIFICATE == /older.pem \\\n  more\n\
                    OTHER = 1\n";
        let new = set_macros(
            text,
            &[
                ("MAIN_TLS_CERTKEY", None),
                ("MAIN_TLS_CERTIFICATE", Some("/new/chain.pem")),
                ("MAIN_TLS_PRIVATEKEY", Some("/k.pem")),
            ],
        );
        assert_eq!(
            new,
            "# local\nMAIN_TLS_ENABLE = yes\nMAIN_TLS_CERTIFICATE = /new/chain.pem\nOTHER = 1\n\
             MAIN_TLS_PRIVATEKEY = /k.pem\n"
        );
        // Applying the same change again changes nothing.
        let again = set_macros(
            &new,
            &[
                ("MAIN_TLS_CERTKEY", None),
                ("MAIN_TLS_CERTIFICATE", Some("/new/chain.pem")),
                ("MAIN_TLS_PRIVATEKEY", Some("/k.pem")),
            ],
        );
        assert_eq!(again, new);
    }

    #[test]
    fn an_empty_file_or_one_without_a_final_newline() {
        assert_eq!(set_macros("", &[("A_B", Some("/x"))]), "A_B = /x\n");
        assert_eq!(
            set_macros("X = 1", &[("A_B", Some("/x"))]),
            "X = 1\nA_B = /x\n"
        );
        // Comments and lower-case options are not definitions.
        let text = "# MAIN_TLS_PRIVATEKEY = /a\ntls_privatekey = /b\n";
        assert_eq!(
            set_macros(text, &[("MAIN_TLS_PRIVATEKEY", None)]),
            text.to_string()
        );
    }

    #[test]
    fn the_templates_macros_for_each_slot() {
        assert_eq!(
            debian_macro(None, "tls_certificate"),
            Some("MAIN_TLS_CERTIFICATE")
        );
        assert_eq!(
            debian_macro(Some("remote_smtp"), "tls_privatekey"),
            Some("REMOTE_SMTP_PRIVATEKEY")
        );
        assert_eq!(debian_macro(Some("my_transport"), "tls_certificate"), None);
    }
}
