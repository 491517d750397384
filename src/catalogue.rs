//! The catalogue of finding codes: every code, one line on what it means, and the bounce a
//! receiver gives for it. The man pages list it; the match is exhaustive, so a new code cannot
//! go undocumented.

use crate::diagnose::Code;

impl Code {
    /// Every code, in the order the man pages list them.
    pub const ALL: &'static [Code] = &[
        Code::MissingIntermediate,
        Code::WrongOrder,
        Code::ExtraCertificate,
        Code::DuplicateCertificate,
        Code::RootIncluded,
        Code::UntrustedRoot,
        Code::SelfSignedLeaf,
        Code::Expired,
        Code::NotYetValid,
        Code::ExpiresSoon,
        Code::IntermediateOutlived,
        Code::WeakSignature,
        Code::WeakKey,
        Code::KeyMismatch,
        Code::NoAia,
        Code::AiaFetchFailed,
        Code::HostnameMismatch,
        Code::SignatureUnverifiable,
        Code::IssuerSignatureInvalid,
        Code::CaConstraintViolated,
        Code::WrongPurpose,
        Code::NameConstraintViolated,
        Code::UnknownCriticalExtension,
        Code::MalformedCertificate,
        Code::ChainLoop,
        Code::DepthExceeded,
        Code::SearchBudgetExceeded,
        Code::StarttlsNotSupported,
        Code::SmtpGreetingRejected,
        Code::SmtpProtocolError,
        Code::ConnectionFailed,
        Code::Timeout,
        Code::TlsHandshakeFailed,
        Code::ServedDiffersFromDisk,
        Code::KeyNotFound,
        Code::DaneMismatch,
        Code::DaneTaNotServed,
        Code::DaneNameMismatch,
        Code::DaneUnusableRecord,
        Code::DaneFragileRecord,
        Code::DaneRrsetTooLarge,
        Code::DaneRootServed,
        Code::ReceiversDisagree,
        Code::HostnameCnOnly,
        Code::HostnameNotChecked,
        Code::MtaStsMxNotListed,
        Code::MtaStsCertificateInvalid,
        Code::MtaStsPolicyUnavailable,
        Code::MtaStsPolicyInvalid,
        Code::MtaStsRecordInvalid,
        Code::MtaStsRecordMissing,
        Code::MtaStsSupersededByDane,
        Code::BaselineNew,
        Code::BaselineUnchanged,
        Code::BaselineRenewed,
        Code::BaselineKeyChanged,
        Code::BaselinePinnedKeyChanged,
        Code::BaselinePinnedCertificateChanged,
        Code::BaselinePinnedIssuerChanged,
        Code::BaselineIssuerChanged,
        Code::BaselineRootChanged,
        Code::BaselineChainChanged,
        Code::BaselineExpiryEarlier,
        Code::BaselineDaneLost,
        Code::BaselineDaneChanged,
        Code::BaselineStsLost,
        Code::BaselineStsChanged,
        Code::BaselineMxAdded,
        Code::BaselineMxRemoved,
        Code::DnssecBogus,
        Code::DnssecUnknown,
        Code::NullMx,
        Code::ImplicitMx,
        Code::NoMailHost,
        Code::MxNoAddress,
        Code::DnsLookupFailed,
        Code::DaneTlsaInsecure,
        Code::TlsRptMissing,
        Code::TlsRptMalformed,
        Code::AddressNotProbed,
    ];

    /// One line on what the code means.
    pub fn summary(self) -> &'static str {
        match self {
            Code::MissingIntermediate => {
                "an intermediate is not presented, or the issuer could not be found anywhere"
            }
            Code::WrongOrder => "the leaf is not first, or intermediates are not in issuing order",
            Code::ExtraCertificate => "a presented certificate is not part of the chain",
            Code::DuplicateCertificate => "a certificate is presented twice",
            Code::RootIncluded => "the root is presented; receivers use their own copy",
            Code::UntrustedRoot => "the chain ends at a root that is not a trust anchor",
            Code::SelfSignedLeaf => "the leaf is self-signed",
            Code::Expired => "a certificate in the chain has expired",
            Code::NotYetValid => "a certificate is not valid yet",
            Code::ExpiresSoon => "a certificate expires within --warn-days",
            Code::IntermediateOutlived => "an intermediate expires before the leaf",
            Code::WeakSignature => "an MD2, MD5 or SHA-1 signature below the trust anchor",
            Code::WeakKey => "an RSA key under 2048 bits",
            Code::KeyMismatch => "the private key given or found is not the leaf's",
            Code::NoAia => "the chain stops at a certificate without an AIA caIssuers URL",
            Code::AiaFetchFailed => "an AIA URL gave nothing (the detail says why)",
            Code::HostnameMismatch => "--host is not among the leaf's names",
            Code::SignatureUnverifiable => {
                "a candidate issuer's signature cannot be verified (Ed448, DSA, unknown)"
            }
            Code::IssuerSignatureInvalid => {
                "a certificate with the issuer's name does not verify the child's signature"
            }
            Code::CaConstraintViolated => {
                "an issuer is not a CA, may not sign certificates, or exceeds its path length"
            }
            Code::WrongPurpose => "an extendedKeyUsage or keyUsage does not allow this TLS role",
            Code::NameConstraintViolated => "a certificate is outside a CA's name constraints",
            Code::UnknownCriticalExtension => "a critical extension receivers do not know",
            Code::MalformedCertificate => {
                "a repeated or damaged extension, or two signature algorithms"
            }
            Code::ChainLoop => "a loop was cut while the chain stayed incomplete",
            Code::DepthExceeded => "the path grew past 8 certificates",
            Code::SearchBudgetExceeded => "the path search hit its signature, step or path budget",
            Code::StarttlsNotSupported => "EHLO does not offer STARTTLS, or STARTTLS is refused",
            Code::SmtpGreetingRejected => "a 4xx/5xx greeting, or EHLO refused",
            Code::SmtpProtocolError => "the server does not speak SMTP, or hangs up",
            Code::ConnectionFailed => "the name does not resolve, or the connection is refused",
            Code::Timeout => "no complete answer within --timeout",
            Code::TlsHandshakeFailed => "the TLS handshake fails, or no leaf certificate is sent",
            Code::ServedDiffersFromDisk => {
                "with --compare: the server sends other certificates than the files hold"
            }
            Code::KeyNotFound => "repair: no private key matching the leaf; only the chain written",
            Code::DaneMismatch => "no usable TLSA record matches the chain",
            Code::DaneTaNotServed => {
                "a DANE-TA record names a certificate the server does not send"
            }
            Code::DaneNameMismatch => "a DANE-TA record matches, but the leaf lacks the MX name",
            Code::DaneUnusableRecord => "a TLSA record of usage 0 or 1, or of an unknown type",
            Code::DaneFragileRecord => "a selector 0 record: it changes at every re-issue",
            Code::DaneRrsetTooLarge => "more TLSA records than some senders process",
            Code::DaneRootServed => "repair serves the root because a DANE-TA record names it",
            Code::ReceiversDisagree => "rustls/webpki's verdict differs from the OpenSSL 3 model",
            Code::HostnameCnOnly => "--host matches only the subject CN, not a subjectAltName",
            Code::HostnameNotChecked => "probe of an IP address without --host: no name checked",
            Code::MtaStsMxNotListed => "an MX host is not listed in the domain's MTA-STS policy",
            Code::MtaStsCertificateInvalid => {
                "an MX serves a chain MTA-STS refuses (no public root, or not its name)"
            }
            Code::MtaStsPolicyUnavailable => "the MTA-STS policy could not be fetched over HTTPS",
            Code::MtaStsPolicyInvalid => "the MTA-STS policy text is not a valid STSv1 policy",
            Code::MtaStsRecordInvalid => {
                "the _mta-sts TXT record is malformed, or there are several"
            }
            Code::MtaStsRecordMissing => "a policy is served, but no _mta-sts record announces it",
            Code::MtaStsSupersededByDane => "DANE applies to this MX, so senders skip MTA-STS",
            Code::BaselineNew => "no recorded state yet for this domain or MX host",
            Code::BaselineUnchanged => "the MX host serves what the baseline recorded",
            Code::BaselineRenewed => {
                "a routine renewal: new leaf, same key (and the same CA and root)"
            }
            Code::BaselineKeyChanged => "a new leaf key, and no DANE record pinned the old one",
            Code::BaselinePinnedKeyChanged => {
                "a new leaf key while a recorded DANE-EE record pins the old one"
            }
            Code::BaselinePinnedCertificateChanged => {
                "a new leaf while a recorded 3 0 x record pins the old one"
            }
            Code::BaselinePinnedIssuerChanged => {
                "a new issuing CA while a recorded DANE-TA record pins the old one"
            }
            Code::BaselineIssuerChanged => {
                "the issuing CA changed under the same root, outside a known rotation"
            }
            Code::BaselineRootChanged => {
                "the chain leads to another root, or to no trusted root any more"
            }
            Code::BaselineChainChanged => {
                "the chain sent changed (intermediates) under the same root"
            }
            Code::BaselineExpiryEarlier => {
                "the certificate now served expires before the recorded one"
            }
            Code::BaselineDaneLost => {
                "a DANE match became a mismatch or bogus, or the records went away"
            }
            Code::BaselineDaneChanged => {
                "the TLSA records or their verdict changed, still matching"
            }
            Code::BaselineStsLost => "the MX host now fails MTA-STS (error in enforce mode)",
            Code::BaselineStsChanged => "the MTA-STS verdict changed without a failure",
            Code::BaselineMxAdded => "an MX host the baseline does not know now receives mail",
            Code::BaselineMxRemoved => "an MX host of the baseline is gone from DNS",
            Code::DnssecBogus => "an MX, address or TLSA answer failed DNSSEC validation",
            Code::DnssecUnknown => {
                "the resolver is not on loopback: AD bit not trusted, DANE not applied"
            }
            Code::NullMx => "the domain publishes a null MX (RFC 7505): it takes no mail",
            Code::ImplicitMx => "no MX records: the domain's own address is the mail host",
            Code::NoMailHost => "neither MX records nor an address: mail cannot be delivered",
            Code::MxNoAddress => "an MX host has no A/AAAA record",
            Code::DnsLookupFailed => "a DNS lookup failed (the detail says why)",
            Code::DaneTlsaInsecure => "TLSA records where an answer is not DNSSEC-secure: ignored",
            Code::TlsRptMissing => "no TLS-RPT (_smtp._tls) record",
            Code::TlsRptMalformed => "a TLS-RPT record senders cannot use",
            Code::AddressNotProbed => "an MX address this machine has no route to was not probed",
        }
    }

    /// What a receiver reports for it, where one is documented (Exchange Online's codes).
    pub fn ndr(self) -> Option<&'static str> {
        Some(match self {
            Code::MissingIntermediate
            | Code::WrongOrder
            | Code::UntrustedRoot
            | Code::SelfSignedLeaf
            | Code::CaConstraintViolated
            | Code::WrongPurpose
            | Code::NameConstraintViolated
            | Code::UnknownCriticalExtension
            | Code::IssuerSignatureInvalid => {
                "450 4.4.317 [Message=UntrustedRoot]; relay: 550 5.7.64"
            }
            Code::Expired => "4.7.322 certificate-expired",
            Code::HostnameMismatch | Code::DaneNameMismatch => "4.7.325 certificate-host-mismatch",
            Code::DaneMismatch | Code::DaneTaNotServed => "4.7.323 tlsa-invalid",
            Code::StarttlsNotSupported => "4.7.321 starttls-not-supported",
            Code::MtaStsMxNotListed => "4.4.8 MX hosts failed MTA-STS validation (enforce mode)",
            Code::MtaStsCertificateInvalid => {
                "4.7.5 Remote certificate failed MTA-STS validation (enforce mode)"
            }
            Code::BaselinePinnedKeyChanged => "4.7.323 tlsa-invalid",
            Code::BaselinePinnedCertificateChanged => "4.7.323 tlsa-invalid",
            Code::BaselinePinnedIssuerChanged => "4.7.323 tlsa-invalid",
            Code::BaselineRootChanged => "450 4.4.317 [Message=UntrustedRoot]; relay: 550 5.7.64",
            Code::BaselineDaneLost => "4.7.323 tlsa-invalid; bogus: 4.7.324 dnssec-invalid",
            Code::BaselineStsLost => "4.7.5 or 4.4.8 (MTA-STS, enforce mode)",
            Code::DnssecBogus => "4.7.324 dnssec-invalid",
            Code::NullMx => "556 5.1.10 (senders bounce at once)",
            _ => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::Code;

    #[test]
    fn every_code_is_listed_once_with_a_summary_that_fits_a_man_page_line() {
        let mut seen = std::collections::BTreeSet::new();
        for c in Code::ALL {
            assert!(seen.insert(c.as_str()), "{} listed twice", c.as_str());
            assert!(
                c.summary().len() <= 80,
                "{}: summary too long for one line",
                c.as_str()
            );
        }
        // Every variant of the enum is in ALL: count the variants in its definition.
        let source = include_str!("diagnose.rs");
        let start = source.find("pub enum Code {").expect("enum Code");
        let body = &source[start..];
        let body = &body[..body.find("\n}").expect("end of enum Code")];
        let variants = body
            .lines()
            .skip(1)
            .map(str::trim)
            .filter(|l| !l.starts_with("//") && !l.starts_with('#') && l.ends_with(','))
            .count();
        assert_eq!(
            variants,
            Code::ALL.len(),
            "a Code variant is missing from Code::ALL"
        );
    }
}
