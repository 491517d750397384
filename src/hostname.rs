//! Host name checks against a leaf (RFC 6125 §6.4), as OpenSSL's `X509_check_host` makes
//! them: DNS names from subjectAltName, the subject CN only when the certificate has no DNS
//! names (and then the match is [`HostMatch::CommonName`], which receivers that never read the
//! CN refuse), and a wildcard only as the whole left-most label, matching exactly one label
//! (§6.4.3). A host given in Unicode (U-labels) is mapped to A-labels first (UTS 46, the
//! `idna` crate), since certificates carry A-labels (RFC 5280 §7.2). IP addresses match
//! iPAddress SANs only.

use std::net::IpAddr;

use crate::cert::Certificate;

/// How a host matched the certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostMatch {
    /// A subjectAltName (dNSName or iPAddress) matches.
    San,
    /// Only the subject CN matches: the certificate has no DNS subjectAltName, and OpenSSL
    /// (`X509_check_host` without `X509_CHECK_FLAG_NEVER_CHECK_SUBJECT`) falls back to the CN.
    CommonName,
    No,
}

/// The host as certificates spell it: an IP address as given, a DNS name lower-cased, without
/// a trailing dot, its U-labels mapped to A-labels (`bücher.example` -> `xn--bcher-kva.example`).
/// `None` for a name UTS 46 refuses, which no certificate name can match.
pub fn to_ascii(host: &str) -> Option<String> {
    let host = host.trim_end_matches('.');
    let bare = host.trim_matches(|c| c == '[' || c == ']');
    if bare.parse::<IpAddr>().is_ok() {
        return Some(bare.to_string());
    }
    if host.is_ascii() {
        return Some(host.to_ascii_lowercase());
    }
    idna::domain_to_ascii(host).ok()
}

/// Whether `host` is one of the names the certificate is valid for.
pub fn matches(cert: &Certificate, host: &str) -> bool {
    check(cert, host) != HostMatch::No
}

/// How `host` matches the certificate, if at all.
pub fn check(cert: &Certificate, host: &str) -> HostMatch {
    let Some(host) = to_ascii(host) else {
        return HostMatch::No;
    };
    if let Ok(ip) = host.parse::<IpAddr>() {
        return if cert.ip_addrs.contains(&ip) {
            HostMatch::San
        } else {
            HostMatch::No
        };
    }
    if cert.dns_names.is_empty() {
        match &cert.common_name {
            Some(cn) if name_matches(cn, &host) => HostMatch::CommonName,
            _ => HostMatch::No,
        }
    } else if cert.dns_names.iter().any(|p| name_matches(p, &host)) {
        HostMatch::San
    } else {
        HostMatch::No
    }
}

/// `host` is A-labels, lower case. SAN patterns are A-labels already (RFC 5280 §4.2.1.6:
/// IA5String); they are compared case-insensitively (RFC 6125 §6.4.1).
fn name_matches(pattern: &str, host: &str) -> bool {
    let pattern = pattern.trim_end_matches('.').to_ascii_lowercase();
    match pattern.strip_prefix("*.") {
        Some(suffix) => {
            // The wildcard must cover exactly one non-empty label. There is no public suffix
            // list here: only a wildcard over a single label ("*.com") is refused, as OpenSSL
            // refuses it (`valid_star`, crypto/x509/v3_utl.c); "*.co.uk" matches.
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
    use super::{name_matches, to_ascii};

    #[test]
    fn rfc6125_wildcards() {
        assert!(name_matches("*.example.com", "mail.example.com"));
        assert!(name_matches("*.Example.com.", "mail.example.com"));
        assert!(!name_matches("*.example.com", "a.b.example.com"));
        assert!(!name_matches("*.example.com", "example.com"));
        assert!(!name_matches("*.com", "example.com"));
        assert!(!name_matches("m*.example.com", "mail.example.com"));
        assert!(name_matches("mail.example.com", "mail.example.com"));
        assert!(!name_matches("mail.example.com", "smtp.example.com"));
        // No public suffix list: a wildcard over two labels matches.
        assert!(name_matches("*.co.uk", "example.co.uk"));
    }

    #[test]
    fn unicode_hosts_become_a_labels() {
        assert_eq!(
            to_ascii("bücher.example").as_deref(),
            Some("xn--bcher-kva.example")
        );
        assert_eq!(
            to_ascii("BÜCHER.Example.").as_deref(),
            Some("xn--bcher-kva.example")
        );
        assert_eq!(to_ascii("MAIL.example").as_deref(), Some("mail.example"));
        assert_eq!(to_ascii("[::1]").as_deref(), Some("::1"));
    }
}
