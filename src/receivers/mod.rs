//! Second-opinion stage: the chosen chain judged again by an independent verifier
//! (rustls-webpki, as a rustls-based receiver runs it) beside chainfix's own model of an
//! OpenSSL 3 receiver, and every disagreement explained by one documented policy difference
//! ([`policy::Policy`]) or shown as unexplained, which is a bug of one of the two.
//!
//! Only end-entity subjects get a second opinion: webpki verifies end-entity certificates, and
//! a CA certificate given alone (`inspect intermediate.pem`) is judged by the model only.

pub mod policy;
pub mod rustls_webpki;

use serde::Serialize;

use crate::cert::Certificate;
use crate::chain::{Choice, Model, Path, Role, Violation};
use crate::diagnose::{Code, Finding, Severity};
use crate::pool::Pool;

pub use policy::Policy;
pub use rustls_webpki::WebpkiError;

/// A receiver whose verdict chainfix computes. Only these two: chainfix does not claim the
/// verdict of a verifier it does not run (GnuTLS, Schannel/Exchange, Go).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Receiver {
    /// chainfix's own receiver model (chain::rules): OpenSSL 3 at security level 2, as Postfix,
    /// Exim on RHEL and other MTAs linking OpenSSL verify a peer.
    #[serde(rename = "openssl3")]
    OpenSsl3,
    /// rustls-webpki 0.103 with the algorithms of rustls's *ring* provider.
    #[serde(rename = "rustls-webpki")]
    Webpki,
}

impl Receiver {
    /// The name the human report shows.
    pub fn name(self) -> &'static str {
        match self {
            Receiver::OpenSsl3 => "OpenSSL 3 (Postfix; Exim on RHEL)",
            Receiver::Webpki => "rustls/webpki",
        }
    }
}

/// Why a receiver refuses the chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    /// chainfix's model: the code of its first error finding about the chain.
    Model(Code),
    /// webpki's error (or the rustls check of the leaf's key).
    Webpki(WebpkiError),
}

impl Reason {
    pub fn as_str(&self) -> &'static str {
        match self {
            Reason::Model(code) => code.as_str(),
            Reason::Webpki(e) => e.as_str(),
        }
    }
}

/// One receiver's verdict on the chosen chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Accepted,
    Rejected(Reason),
}

impl Verdict {
    pub fn accepted(&self) -> bool {
        matches!(self, Verdict::Accepted)
    }
}

/// How the two verdicts relate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Agreement {
    Agree,
    /// A documented policy difference between the verifiers explains the difference.
    Explained(Policy),
    /// Nothing explains it: a bug in chainfix's model or in webpki.
    Unexplained,
}

/// Both receivers' verdicts on one chosen chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Opinion {
    pub openssl: Verdict,
    pub webpki: Verdict,
    pub agreement: Agreement,
}

impl Opinion {
    /// The verdicts side by side, in report order.
    pub fn verdicts(&self) -> [(Receiver, &Verdict); 2] {
        [
            (Receiver::OpenSsl3, &self.openssl),
            (Receiver::Webpki, &self.webpki),
        ]
    }
}

/// What the second opinion is asked about: the chain chainfix chose for an end-entity leaf.
pub struct Subject<'a> {
    pub pool: &'a Pool,
    pub path: &'a Path,
    /// What chainfix's model refuses in `path`.
    pub defects: &'a [Violation],
    /// chainfix's findings for the leaf: its verdict is read from them.
    pub findings: &'a [Finding],
    pub now: i64,
    pub role: Role,
    /// The host name (already checked by chainfix) or IP address the leaf must match.
    pub host: Option<&'a str>,
}

impl Subject<'_> {
    fn certs(&self) -> Vec<&Certificate> {
        self.path
            .ids
            .iter()
            .map(|&id| self.pool.cert(id).as_ref())
            .collect()
    }
}

/// The second opinion on `choice`, the chain chainfix chose for a leaf, with `findings` its
/// findings (its own verdict is read from them); a disagreement's finding is added to them.
/// Shared by `inspect`/`repair`/`probe` and `judge`.
pub fn consult(
    pool: &Pool,
    choice: &Choice,
    findings: &mut Vec<Finding>,
    model: Model,
    host: Option<&str>,
) -> Option<Opinion> {
    let leaf = pool.cert(*choice.best.ids.first()?);
    let ascii = host.and_then(crate::hostname::to_ascii);
    let opinion = second_opinion(&Subject {
        pool,
        path: &choice.best,
        defects: &choice.defects,
        findings,
        now: model.now,
        role: model.role,
        host: ascii.as_deref().or(host),
    });
    if let Some(f) = finding(&opinion, leaf) {
        findings.push(f);
        findings.sort_by_key(|f| f.severity);
    }
    Some(opinion)
}

/// Both verdicts on the chosen chain, and what explains a difference.
pub fn second_opinion(s: &Subject<'_>) -> Opinion {
    let openssl = openssl_verdict(s.findings);
    let certs = s.certs();
    let webpki = rustls_webpki::verify(&certs, s.path.anchored, s.now, s.role, s.host);
    let agreement = if openssl.accepted() == webpki.accepted() {
        Agreement::Agree
    } else {
        match policy::explain(s, &certs, &openssl, &webpki) {
            Some(p) => Agreement::Explained(p),
            None => Agreement::Unexplained,
        }
    };
    Opinion {
        openssl,
        webpki,
        agreement,
    }
}

/// chainfix's own verdict on the chosen chain: rejected for the first error finding that
/// serving this chain would not fix and that is about the chain (not the key, the probe or the
/// files on disk).
fn openssl_verdict(findings: &[Finding]) -> Verdict {
    let about_chain = |code: Code| {
        !matches!(
            code,
            Code::KeyMismatch
                | Code::KeyNotFound
                | Code::ServedDiffersFromDisk
                | Code::StarttlsNotSupported
                | Code::SmtpGreetingRejected
                | Code::SmtpProtocolError
                | Code::ConnectionFailed
                | Code::Timeout
                | Code::TlsHandshakeFailed
        )
    };
    findings
        .iter()
        .find(|f| f.severity == Severity::Error && !f.repairable && about_chain(f.code))
        .map_or(Verdict::Accepted, |f| {
            Verdict::Rejected(Reason::Model(f.code))
        })
}

/// The finding a disagreement makes (`receivers-disagree`), or none when they agree.
pub fn finding(opinion: &Opinion, leaf: &Certificate) -> Option<Finding> {
    let (severity, message) = match opinion.agreement {
        Agreement::Agree => return None,
        Agreement::Explained(p) => {
            let message = if opinion.openssl.accepted() {
                format!(
                    "OpenSSL 3 receivers (Postfix; Exim on RHEL) accept this chain, but rustls-based \
                     receivers reject it ({}): {}.",
                    opinion.webpki_reason(),
                    p.description()
                )
            } else {
                format!(
                    "rustls-based receivers accept this chain, which OpenSSL 3 receivers reject: {}.",
                    p.description()
                )
            };
            // A difference only matters to the senders it fails for; where OpenSSL refuses too,
            // the error finding already says so.
            let severity = if opinion.openssl.accepted() {
                Severity::Warning
            } else {
                Severity::Info
            };
            (severity, message)
        }
        Agreement::Unexplained => (
            Severity::Warning,
            format!(
                "OpenSSL 3 receivers {} this chain, rustls/webpki {} it{}, and no documented \
                 policy difference explains it: please report this as a chainfix bug.",
                if opinion.openssl.accepted() {
                    "accept"
                } else {
                    "reject"
                },
                if opinion.webpki.accepted() {
                    "accepts"
                } else {
                    "rejects"
                },
                match &opinion.webpki {
                    Verdict::Rejected(r) => format!(" ({})", r.as_str()),
                    Verdict::Accepted => String::new(),
                }
            ),
        ),
    };
    Some(crate::diagnose::receivers_disagree(leaf, severity, message))
}

impl Opinion {
    fn webpki_reason(&self) -> &'static str {
        match &self.webpki {
            Verdict::Rejected(r) => r.as_str(),
            Verdict::Accepted => "accepted",
        }
    }
}

#[cfg(test)]
mod tests {
    //! How a disagreement no policy explains is reported. None is known (every difference
    //! x509-limbo and the real-world certificates show is labelled), so the opinion is made by
    //! hand; `tests/limbo.rs` fails on any case that would produce one.

    use super::*;
    use crate::diagnose::{Code, Severity};

    fn leaf() -> Certificate {
        let key = rcgen::KeyPair::generate().expect("key");
        let params =
            rcgen::CertificateParams::new(vec!["mail.example.test".to_string()]).expect("params");
        let cert = params.self_signed(&key).expect("cert");
        Certificate::from_der(cert.der()).expect("parses")
    }

    #[test]
    fn an_unexplained_disagreement_is_a_warning_asking_for_a_report() {
        let opinion = Opinion {
            openssl: Verdict::Accepted,
            webpki: Verdict::Rejected(Reason::Webpki(WebpkiError::Other)),
            agreement: Agreement::Unexplained,
        };
        let f = finding(&opinion, &leaf()).expect("a disagreement is a finding");
        assert_eq!(f.code, Code::ReceiversDisagree);
        assert_eq!(f.severity, Severity::Warning);
        assert!(
            f.message
                .contains("no documented policy difference explains it")
                && f.message.contains("please report"),
            "{}",
            f.message
        );
    }

    #[test]
    fn agreeing_receivers_make_no_finding() {
        let opinion = Opinion {
            openssl: Verdict::Accepted,
            webpki: Verdict::Accepted,
            agreement: Agreement::Agree,
        };
        assert!(finding(&opinion, &leaf()).is_none());
    }
}
