//! Name constraints (RFC 5280 §4.2.1.10, §6.1.3 (b)-(c)): does a certificate's subject and
//! subjectAltName fall inside the subtrees a CA above it permits, and outside those it
//! excludes? Matching follows OpenSSL's `NAME_CONSTRAINTS_check` and
//! `NAME_CONSTRAINTS_check_CN` (crypto/x509/v3_ncons.c), the model receiver.

use std::net::IpAddr;

use crate::cert::{Certificate, NameConstraints, Subtree};

/// Most (name, subtree) comparisons one check may make: OpenSSL refuses a certificate whose
/// name count times constraint count exceeds 2^20 (`NAME_CONSTRAINTS_check`,
/// crypto/x509/v3_ncons.c), so that a crafted certificate cannot make it spend unbounded time.
pub const MAX_NAME_CHECKS: usize = 1 << 20;

/// Why a certificate breaks a CA's name constraints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NameViolation {
    /// The name is outside every permitted subtree of its form.
    NotPermitted(String),
    /// The name is inside an excluded subtree.
    Excluded(String),
    /// The CA constrains a name form receivers do not evaluate, and the certificate has a
    /// name of that form (OpenSSL: "unsupported name constraint type").
    Unsupported(&'static str),
    /// A subtree that does not decode (OpenSSL: "unsupported or invalid name syntax").
    Damaged,
    /// More names times subtrees than [`MAX_NAME_CHECKS`].
    TooMany,
}

impl std::fmt::Display for NameViolation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NameViolation::NotPermitted(name) => {
                write!(f, "{name} is outside the names it permits")
            }
            NameViolation::Excluded(name) => write!(f, "{name} is among the names it excludes"),
            NameViolation::Unsupported(form) => {
                write!(
                    f,
                    "it constrains {form} names, which receivers cannot check"
                )
            }
            NameViolation::Damaged => f.write_str("its name constraints are damaged"),
            NameViolation::TooMany => write!(
                f,
                "checking them would take more than {MAX_NAME_CHECKS} comparisons"
            ),
        }
    }
}

/// One name of a certificate, in the form matching compares.
enum Name<'a> {
    Dns(&'a str),
    Email(&'a str),
    Uri(&'a str),
    Ip(IpAddr),
    Dir(&'a str),
    Other(&'static str),
}

impl Name<'_> {
    fn text(&self) -> String {
        match self {
            Name::Dns(s) | Name::Email(s) | Name::Uri(s) => s.to_string(),
            Name::Ip(ip) => ip.to_string(),
            Name::Dir(_) => "the subject name".into(),
            Name::Other(form) => format!("an {form} name"),
        }
    }
}

/// Checks `cert` against `nc`. `leaf`: `cert` is the end-entity certificate, whose CN is
/// checked as a DNS name when it has no DNS subjectAltName (`NAME_CONSTRAINTS_check_CN`).
pub fn check(cert: &Certificate, nc: &NameConstraints, leaf: bool) -> Result<(), NameViolation> {
    let names = names_of(cert, leaf);
    let subtrees = nc.permitted.len() + nc.excluded.len();
    if names.len().saturating_mul(subtrees) > MAX_NAME_CHECKS {
        return Err(NameViolation::TooMany);
    }
    for name in &names {
        check_one(name, nc)?;
    }
    Ok(())
}

fn names_of(cert: &Certificate, leaf: bool) -> Vec<Name<'_>> {
    let mut names: Vec<Name<'_>> = Vec::new();
    // The subject as a directory name, unless it is empty (RFC 5280 §4.2.1.10).
    if !cert.subject_key.is_empty() {
        names.push(Name::Dir(&cert.subject_key));
    }
    names.extend(cert.dns_names.iter().map(|d| Name::Dns(d)));
    names.extend(cert.ip_addrs.iter().map(|ip| Name::Ip(*ip)));
    if let Some(rare) = &cert.rare {
        names.extend(rare.emails.iter().map(|e| Name::Email(e)));
        names.extend(rare.subject_emails.iter().map(|e| Name::Email(e)));
        names.extend(rare.uris.iter().map(|u| Name::Uri(u)));
        names.extend(rare.dir_names.iter().map(|d| Name::Dir(d)));
        names.extend(rare.other_names.iter().map(|f| Name::Other(f)));
    }
    if leaf && cert.dns_names.is_empty() {
        if let Some(cn) = cert.common_name.as_deref().filter(|cn| looks_like_host(cn)) {
            names.push(Name::Dns(cn));
        }
    }
    names
}

/// OpenSSL's `cn2dnsid`: a CN is taken for a DNS name when it has a dot, is made of letters,
/// digits, hyphens and dots, and no label starts or ends with a hyphen or is empty.
fn looks_like_host(cn: &str) -> bool {
    cn.contains('.')
        && cn.split('.').all(|label| {
            !label.is_empty()
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

/// RFC 5280 §6.1.3 (b)-(c): a name must match a permitted subtree of its own form when there
/// are any, and no excluded subtree of its form.
fn check_one(name: &Name<'_>, nc: &NameConstraints) -> Result<(), NameViolation> {
    let mut constrained = false;
    let mut permitted = false;
    for tree in &nc.permitted {
        match matches(name, tree)? {
            None => {}
            Some(hit) => {
                constrained = true;
                permitted |= hit;
            }
        }
    }
    if constrained && !permitted {
        return Err(NameViolation::NotPermitted(name.text()));
    }
    for tree in &nc.excluded {
        if matches(name, tree)? == Some(true) {
            return Err(NameViolation::Excluded(name.text()));
        }
    }
    Ok(())
}

/// `None` when `tree` is of another form than `name`; else whether `name` is inside it.
fn matches(name: &Name<'_>, tree: &Subtree) -> Result<Option<bool>, NameViolation> {
    Ok(Some(match (name, tree) {
        (Name::Dns(n), Subtree::Dns(base)) => dns_within(n, base),
        (Name::Email(n), Subtree::Email(base)) => email_within(n, base),
        (Name::Uri(n), Subtree::Uri(base)) => match uri_host(n) {
            Some(host) => host_within(&host, base),
            // A URI without a host cannot be inside a host subtree (OpenSSL refuses it).
            None => false,
        },
        (Name::Ip(ip), Subtree::Ip { addr, mask }) => ip_within(*ip, addr, mask),
        (Name::Dir(n), Subtree::Dir(base)) => dir_within(n, base),
        (Name::Other(form), Subtree::Unsupported(tree_form)) if form == tree_form => {
            return Err(NameViolation::Unsupported(form))
        }
        (_, Subtree::Damaged) => return Err(NameViolation::Damaged),
        _ => return Ok(None),
    }))
}

/// RFC 5280 §4.2.1.10: "any DNS name that can be constructed by simply adding zero or more
/// labels to the left-hand side of the name satisfies the name constraint". A subtree
/// starting with "." (common in practice, and OpenSSL's reading) takes subdomains only.
fn dns_within(name: &str, base: &str) -> bool {
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    let base = base.trim_end_matches('.');
    if base.is_empty() {
        return true;
    }
    if let Some(domain) = base.strip_prefix('.') {
        return name.len() > domain.len() + 1 && name.ends_with(base) && !domain.is_empty();
    }
    name == base
        || (name.len() > base.len()
            && name.ends_with(base)
            && name.as_bytes()[name.len() - base.len() - 1] == b'.')
}

/// RFC 5280 §4.2.1.10 for rfc822Name: a subtree with "@" is one mailbox; one starting with
/// "." is every host below that domain; otherwise every mailbox on that host. Local parts
/// compare exactly, hosts case-insensitively.
fn email_within(name: &str, base: &str) -> bool {
    let Some((local, host)) = name.rsplit_once('@') else {
        return false;
    };
    if let Some((base_local, base_host)) = base.rsplit_once('@') {
        return local == base_local && host.eq_ignore_ascii_case(base_host);
    }
    host_within(host, base)
}

/// A host against a host subtree: ".example.com" takes hosts below it, "example.com" that
/// host only (RFC 5280 §4.2.1.10 for rfc822Name and URI).
fn host_within(host: &str, base: &str) -> bool {
    let host = host.to_ascii_lowercase();
    let base = base.to_ascii_lowercase();
    if base.starts_with('.') {
        host.len() > base.len() && host.ends_with(&base)
    } else {
        host == base
    }
}

/// The host of a URI (RFC 3986 §3.2.2), without user info or port; `None` without one.
fn uri_host(uri: &str) -> Option<String> {
    let (_, rest) = uri.split_once("://")?;
    let authority = rest.split(['/', '?', '#']).next()?;
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = if let Some(v6) = host_port.strip_prefix('[') {
        v6.split(']').next()?
    } else {
        host_port.split(':').next()?
    };
    (!host.is_empty()).then(|| host.to_string())
}

fn ip_within(ip: IpAddr, addr: &[u8], mask: &[u8]) -> bool {
    let bytes: Vec<u8> = match ip {
        IpAddr::V4(v4) => v4.octets().to_vec(),
        IpAddr::V6(v6) => v6.octets().to_vec(),
    };
    bytes.len() == addr.len()
        && bytes
            .iter()
            .zip(addr)
            .zip(mask)
            .all(|((b, a), m)| b & m == a & m)
}

/// RFC 5280 §7.1: a directory-name subtree holds every name whose leading RDNs equal it.
fn dir_within(name: &str, base: &str) -> bool {
    name == base
        || base.is_empty()
        || (name.starts_with(base) && name.as_bytes().get(base.len()) == Some(&b'/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dns_subtrees_take_labels_added_on_the_left() {
        assert!(dns_within("example.com", "example.com"));
        assert!(dns_within("mail.example.com", "example.com"));
        assert!(dns_within("MAIL.Example.com", "example.com"));
        assert!(!dns_within("badexample.com", "example.com"));
        assert!(!dns_within("example.com.evil", "example.com"));
        assert!(dns_within("mail.example.com", ".example.com"));
        assert!(!dns_within("example.com", ".example.com"));
        assert!(dns_within("anything.test", ""));
    }

    #[test]
    fn email_subtrees_are_mailboxes_hosts_or_domains() {
        assert!(email_within("a@example.com", "a@example.com"));
        assert!(!email_within("b@example.com", "a@example.com"));
        assert!(email_within("b@example.com", "example.com"));
        assert!(!email_within("b@sub.example.com", "example.com"));
        assert!(email_within("b@sub.example.com", ".example.com"));
        assert!(!email_within("b@example.com", ".example.com"));
    }

    #[test]
    fn uri_hosts_are_read_past_user_info_and_port() {
        assert_eq!(
            uri_host("https://u@mail.example.com:8443/x").as_deref(),
            Some("mail.example.com")
        );
        assert_eq!(uri_host("ldap://[::1]/").as_deref(), Some("::1"));
        assert_eq!(uri_host("urn:example"), None);
    }

    #[test]
    fn ip_subtrees_compare_under_the_mask() {
        let ip: IpAddr = "192.0.2.77".parse().expect("ip");
        assert!(ip_within(ip, &[192, 0, 2, 0], &[255, 255, 255, 0]));
        assert!(!ip_within(ip, &[192, 0, 3, 0], &[255, 255, 255, 0]));
        assert!(!ip_within(
            "::1".parse().expect("ip"),
            &[192, 0, 2, 0],
            &[255, 255, 255, 0]
        ));
    }

    #[test]
    fn directory_subtrees_match_whole_leading_rdns() {
        assert!(dir_within("/2.5.4.6=ch/2.5.4.10=admin", "/2.5.4.6=ch"));
        assert!(!dir_within("/2.5.4.6=chx", "/2.5.4.6=ch"));
    }

    fn cert_with_dns_names(n: usize) -> Certificate {
        let names: Vec<String> = (0..n).map(|i| format!("h{i}.example.com")).collect();
        let key = rcgen::KeyPair::generate().expect("key");
        let params = rcgen::CertificateParams::new(names).expect("params");
        let der = params.self_signed(&key).expect("sign").der().to_vec();
        Certificate::from_der(&der).expect("parse")
    }

    #[test]
    fn a_check_past_the_comparison_budget_is_refused_not_run() {
        let cert = cert_with_dns_names(1100);
        let nc = NameConstraints {
            permitted: (0..1000)
                .map(|i| Subtree::Dns(format!("d{i}.test")))
                .collect(),
            excluded: Vec::new(),
        };
        // 1,101 names (the subject too) times 1,000 subtrees is past 2^20.
        assert_eq!(check(&cert, &nc, true), Err(NameViolation::TooMany));
        let small = NameConstraints {
            permitted: vec![Subtree::Dns("example.com".into())],
            excluded: Vec::new(),
        };
        assert_eq!(check(&cert, &small, true), Ok(()));
    }

    #[test]
    fn excluded_subtrees_win_over_permitted_ones() {
        let cert = cert_with_dns_names(1);
        let nc = NameConstraints {
            permitted: vec![Subtree::Dns("example.com".into())],
            excluded: vec![Subtree::Dns("h0.example.com".into())],
        };
        assert_eq!(
            check(&cert, &nc, true),
            Err(NameViolation::Excluded("h0.example.com".into()))
        );
    }

    #[test]
    fn cn_is_a_host_name_only_when_it_looks_like_one() {
        assert!(looks_like_host("mail.example.com"));
        assert!(!looks_like_host("Example Mail Server"));
        assert!(!looks_like_host("localhost"));
        assert!(!looks_like_host("a..b"));
    }
}
