//! File and directory names made from certificate names (IIS intermediate `.cer` files, one
//! output directory per leaf): ASCII letters, digits, `.`, `-` and `_` only, so no path
//! separator, no `..` component, no leading dot, no control, nothing a shell or PowerShell
//! quotes; at most [`MAX_LEN`] bytes.

/// Longest name part made from a certificate name. Linux and Windows allow 255 bytes per
/// component (NAME_MAX; NTFS 255 UTF-16 units); chainfix adds prefixes and suffixes such as
/// `intermediate-12-` and `-0123abcd.cer`, and nobody reads a longer name anyway.
pub const MAX_LEN: usize = 64;

/// A file-name-safe form of a certificate name.
pub fn safe(name: &str) -> String {
    let s: String = name
        .replace('*', "wildcard")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .take(MAX_LEN)
        .collect();
    let s = s.trim_matches('.');
    if s.is_empty() {
        "cert".into()
    } else {
        s.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_stay_ascii_short_and_inside_their_directory() {
        for name in [
            "../../etc/cron.d/x",
            "..\\..\\Windows\\System32",
            "a/b",
            "O’Neill CA",
            "ő\nё\rς\u{202e}",
            "..",
            ".",
            "",
            "C:evil",
            &"x".repeat(1000),
        ] {
            let s = safe(name);
            assert!(!s.is_empty() && s.len() <= MAX_LEN, "{name:?} -> {s:?}");
            assert!(
                s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c)),
                "{name:?} -> {s:?}"
            );
            assert!(!s.starts_with('.') && s != "..", "{name:?} -> {s:?}");
        }
        assert_eq!(safe("*.example.test"), "wildcard.example.test");
        assert_eq!(
            safe("MTA Test RSA Intermediate"),
            "MTA_Test_RSA_Intermediate"
        );
    }
}
