//! Host name checks against a leaf (RFC 6125 §6.4): DNS names from subjectAltName, the
//! subject CN only when the certificate has no DNS names, and a wildcard only as the whole
//! left-most label, matching exactly one label (§6.4.3). IP addresses match iPAddress SANs.

use std::net::IpAddr;

use crate::cert::Certificate;

/// Whether `host` is one of the names the certificate is valid for.
pub fn matches(cert: &Certificate, host: &str) -> bool {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    if let Ok(ip) = host
        .trim_matches(|c| c == '[' || c == ']')
        .parse::<IpAddr>()
    {
        return cert.ip_addrs.contains(&ip);
    }
    let names: Vec<&String> = if cert.dns_names.is_empty() {
        cert.common_name.iter().collect()
    } else {
        cert.dns_names.iter().collect()
    };
    names.iter().any(|pattern| name_matches(pattern, &host))
}

fn name_matches(pattern: &str, host: &str) -> bool {
    let pattern = pattern.trim_end_matches('.').to_ascii_lowercase();
    match pattern.strip_prefix("*.") {
        Some(suffix) => {
            // The wildcard must cover exactly one non-empty label, and never a public suffix
            // alone ("*.com"): require at least two labels after it.
            suffix.contains('.')
                && host
                    .split_once('.')
                    .is_some_and(|(first, rest)| !first.is_empty() && rest == suffix)
        }
        None => pattern == host,
    }
}

#[cfg(test)]
mod tests {
    use super::name_matches;

    #[test]
    fn rfc6125_wildcards() {
        assert!(name_matches("*.example.com", "mail.example.com"));
        assert!(name_matches("*.Example.com.", "MAIL.example.com"));
        assert!(!name_matches("*.example.com", "a.b.example.com"));
        assert!(!name_matches("*.example.com", "example.com"));
        assert!(!name_matches("*.com", "example.com"));
        assert!(!name_matches("m*.example.com", "mail.example.com"));
        assert!(name_matches("mail.example.com", "mail.example.com"));
        assert!(!name_matches("mail.example.com", "smtp.example.com"));
    }
}
