//! The rustls/webpki receiver: the chosen chain verified by rustls-webpki as a rustls client
//! (or server, for a client certificate) verifies its peer, with the signature algorithms of
//! rustls's *ring* provider (`rustls::crypto::ring::default_provider()`), for the host name
//! when one is given; and the leaf's key checked against the same algorithms, since rustls
//! verifies the handshake signature with them.
//!
//! Signature arithmetic is not redone where the answer is already known ([`Memo`]): a
//! signature webpki verified once in this process, and a link of the chosen path whose exact
//! bytes chainfix verified with a key inside the provider's limits ([`vouched_links`]). webpki
//! still parses every certificate itself, selects the algorithm from the certificate's own
//! identifiers (refusing one its provider lacks before any arithmetic), builds the path and
//! applies its rules; only the verification of a (key, message, signature) triple already found
//! valid is skipped. Re-verifying every leaf's signature doubled the CPU time of a fleet scan
//! (bench/README.md).

use std::cell::RefCell;
use std::net::IpAddr;
use std::sync::{Mutex, OnceLock, PoisonError};
use std::time::Duration;

use rustc_hash::FxHashSet;
use rustls::pki_types::{
    AlgorithmIdentifier, CertificateDer, InvalidSignature, ServerName,
    SignatureVerificationAlgorithm, UnixTime,
};
use webpki::{EndEntityCert, Error, KeyUsage};

use super::{Reason, Verdict};
use crate::cert::{Certificate, KeyKind};
use crate::chain::Role;

/// Why webpki (or rustls) refuses a chain: webpki's `Error` variants that path validation
/// returns, by their webpki names, and the handshake key check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WebpkiError {
    BadDer,
    CaUsedAsEndEntity,
    CertDistrusted,
    CertExpired,
    CertNotValidForName,
    CertNotValidYet,
    EmptyEkuExtension,
    EndEntityUsedAsCa,
    ExtensionValueInvalid,
    InvalidCertValidity,
    InvalidNetworkMaskConstraint,
    InvalidSerialNumber,
    InvalidSignatureForPublicKey,
    MalformedDnsIdentifier,
    MalformedExtensions,
    MalformedNameConstraint,
    MaximumNameConstraintComparisonsExceeded,
    MaximumPathBuildCallsExceeded,
    MaximumPathDepthExceeded,
    MaximumSignatureChecksExceeded,
    NameConstraintViolation,
    PathLenConstraintViolated,
    RequiredEkuNotFound,
    SignatureAlgorithmMismatch,
    TrailingData,
    UnknownIssuer,
    UnsupportedCertVersion,
    UnsupportedCriticalExtension,
    UnsupportedNameType,
    UnsupportedSignatureAlgorithm,
    UnsupportedSignatureAlgorithmForPublicKey,
    /// The host is not a name rustls accepts (`ServerName::try_from`).
    InvalidServerName,
    /// The leaf's key is not one the provider verifies handshake signatures with (RSA
    /// 2048..8192 bits, ECDSA P-256/P-384, Ed25519): rustls fails the handshake.
    UnsupportedLeafKey,
    /// Any other webpki error.
    Other,
}

impl WebpkiError {
    pub fn as_str(self) -> &'static str {
        match self {
            WebpkiError::BadDer => "BadDer",
            WebpkiError::CaUsedAsEndEntity => "CaUsedAsEndEntity",
            WebpkiError::CertDistrusted => "CertDistrusted",
            WebpkiError::CertExpired => "CertExpired",
            WebpkiError::CertNotValidForName => "CertNotValidForName",
            WebpkiError::CertNotValidYet => "CertNotValidYet",
            WebpkiError::EmptyEkuExtension => "EmptyEkuExtension",
            WebpkiError::EndEntityUsedAsCa => "EndEntityUsedAsCa",
            WebpkiError::ExtensionValueInvalid => "ExtensionValueInvalid",
            WebpkiError::InvalidCertValidity => "InvalidCertValidity",
            WebpkiError::InvalidNetworkMaskConstraint => "InvalidNetworkMaskConstraint",
            WebpkiError::InvalidSerialNumber => "InvalidSerialNumber",
            WebpkiError::InvalidSignatureForPublicKey => "InvalidSignatureForPublicKey",
            WebpkiError::MalformedDnsIdentifier => "MalformedDnsIdentifier",
            WebpkiError::MalformedExtensions => "MalformedExtensions",
            WebpkiError::MalformedNameConstraint => "MalformedNameConstraint",
            WebpkiError::MaximumNameConstraintComparisonsExceeded => {
                "MaximumNameConstraintComparisonsExceeded"
            }
            WebpkiError::MaximumPathBuildCallsExceeded => "MaximumPathBuildCallsExceeded",
            WebpkiError::MaximumPathDepthExceeded => "MaximumPathDepthExceeded",
            WebpkiError::MaximumSignatureChecksExceeded => "MaximumSignatureChecksExceeded",
            WebpkiError::NameConstraintViolation => "NameConstraintViolation",
            WebpkiError::PathLenConstraintViolated => "PathLenConstraintViolated",
            WebpkiError::RequiredEkuNotFound => "RequiredEkuNotFound",
            WebpkiError::SignatureAlgorithmMismatch => "SignatureAlgorithmMismatch",
            WebpkiError::TrailingData => "TrailingData",
            WebpkiError::UnknownIssuer => "UnknownIssuer",
            WebpkiError::UnsupportedCertVersion => "UnsupportedCertVersion",
            WebpkiError::UnsupportedCriticalExtension => "UnsupportedCriticalExtension",
            WebpkiError::UnsupportedNameType => "UnsupportedNameType",
            WebpkiError::UnsupportedSignatureAlgorithm => "UnsupportedSignatureAlgorithm",
            WebpkiError::UnsupportedSignatureAlgorithmForPublicKey => {
                "UnsupportedSignatureAlgorithmForPublicKey"
            }
            WebpkiError::InvalidServerName => "InvalidServerName",
            WebpkiError::UnsupportedLeafKey => "UnsupportedLeafKey",
            WebpkiError::Other => "Other",
        }
    }

    #[allow(deprecated)] // the context-less variants older webpki returned, mapped the same
    fn of(e: &Error) -> WebpkiError {
        match e {
            Error::BadDer | Error::BadDerTime => WebpkiError::BadDer,
            Error::CaUsedAsEndEntity => WebpkiError::CaUsedAsEndEntity,
            Error::CertDistrusted => WebpkiError::CertDistrusted,
            Error::CertExpired { .. } => WebpkiError::CertExpired,
            Error::CertNotValidForName(_) => WebpkiError::CertNotValidForName,
            Error::CertNotValidYet { .. } => WebpkiError::CertNotValidYet,
            Error::EmptyEkuExtension => WebpkiError::EmptyEkuExtension,
            Error::EndEntityUsedAsCa => WebpkiError::EndEntityUsedAsCa,
            Error::ExtensionValueInvalid => WebpkiError::ExtensionValueInvalid,
            Error::InvalidCertValidity => WebpkiError::InvalidCertValidity,
            Error::InvalidNetworkMaskConstraint => WebpkiError::InvalidNetworkMaskConstraint,
            Error::InvalidSerialNumber => WebpkiError::InvalidSerialNumber,
            Error::InvalidSignatureForPublicKey => WebpkiError::InvalidSignatureForPublicKey,
            Error::MalformedDnsIdentifier => WebpkiError::MalformedDnsIdentifier,
            Error::MalformedExtensions => WebpkiError::MalformedExtensions,
            Error::MalformedNameConstraint => WebpkiError::MalformedNameConstraint,
            Error::MaximumNameConstraintComparisonsExceeded => {
                WebpkiError::MaximumNameConstraintComparisonsExceeded
            }
            Error::MaximumPathBuildCallsExceeded => WebpkiError::MaximumPathBuildCallsExceeded,
            Error::MaximumPathDepthExceeded => WebpkiError::MaximumPathDepthExceeded,
            Error::MaximumSignatureChecksExceeded => WebpkiError::MaximumSignatureChecksExceeded,
            Error::NameConstraintViolation => WebpkiError::NameConstraintViolation,
            Error::PathLenConstraintViolated => WebpkiError::PathLenConstraintViolated,
            Error::RequiredEkuNotFound | Error::RequiredEkuNotFoundContext(_) => {
                WebpkiError::RequiredEkuNotFound
            }
            Error::SignatureAlgorithmMismatch => WebpkiError::SignatureAlgorithmMismatch,
            Error::TrailingData(_) => WebpkiError::TrailingData,
            Error::UnknownIssuer => WebpkiError::UnknownIssuer,
            Error::UnsupportedCertVersion => WebpkiError::UnsupportedCertVersion,
            Error::UnsupportedCriticalExtension => WebpkiError::UnsupportedCriticalExtension,
            Error::UnsupportedNameType => WebpkiError::UnsupportedNameType,
            Error::UnsupportedSignatureAlgorithm
            | Error::UnsupportedSignatureAlgorithmContext(_) => {
                WebpkiError::UnsupportedSignatureAlgorithm
            }
            Error::UnsupportedSignatureAlgorithmForPublicKey
            | Error::UnsupportedSignatureAlgorithmForPublicKeyContext(_) => {
                WebpkiError::UnsupportedSignatureAlgorithmForPublicKey
            }
            _ => WebpkiError::Other,
        }
    }
}

/// The algorithms rustls's *ring* provider verifies certificate and handshake signatures with,
/// each behind [`Memo`].
fn algorithms() -> &'static [&'static dyn SignatureVerificationAlgorithm] {
    static ALGS: OnceLock<Vec<&'static dyn SignatureVerificationAlgorithm>> = OnceLock::new();
    ALGS.get_or_init(|| {
        let provider = rustls::crypto::ring::default_provider();
        provider
            .signature_verification_algorithms
            .all
            .iter()
            .map(|&inner| -> &'static dyn SignatureVerificationAlgorithm {
                // Leaked once per algorithm (fourteen), for the life of the process.
                Box::leak(Box::new(Memo { inner }))
            })
            .collect()
    })
}

/// Most verified signatures [`Memo`] remembers: each costs 32 bytes; twice the links of the
/// 100,000-certificate benchmark corpus (bench/README.md). Past it, signatures are verified
/// every time.
const MEMO_LIMIT: usize = 200_000;

/// One of the provider's algorithms, remembering the signatures it verified in this process,
/// keyed by SHA-256 over (algorithm, key, message, signature): a fleet's leaves share their
/// intermediates, and webpki verifies every link of every leaf's chain again. Sound: only a
/// verification of exactly the same key, message and signature is skipped, and only a success
/// is remembered.
#[derive(Debug)]
struct Memo {
    inner: &'static dyn SignatureVerificationAlgorithm,
}

/// SHA-256 over length-prefixed parts: a key no two different part lists share.
fn digest(parts: &[&[u8]]) -> [u8; 32] {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    for part in parts {
        ctx.update(&(part.len() as u64).to_be_bytes());
        ctx.update(part);
    }
    let mut key = [0; 32];
    key.copy_from_slice(ctx.finish().as_ref());
    key
}

/// One (subjectPublicKey bits, signed TBSCertificate, signature bits) triple, as webpki hands
/// them to [`SignatureVerificationAlgorithm::verify_signature`]. Kept as bytes and compared as
/// bytes: hashing each link twice per leaf cost more than the comparison.
#[derive(Debug, PartialEq, Eq)]
struct Link {
    public_key: Vec<u8>,
    message: Vec<u8>,
    signature: Vec<u8>,
}

impl Link {
    fn is(&self, public_key: &[u8], message: &[u8], signature: &[u8]) -> bool {
        // The signature first: it differs between any two links.
        self.signature == signature && self.public_key == public_key && self.message == message
    }
}

thread_local! {
    /// The links of the chain this thread is verifying that chainfix verified itself
    /// ([`vouched_links`]); set for the duration of one [`verify`] call.
    static VOUCHED: RefCell<Vec<Link>> = const { RefCell::new(Vec::new()) };
}

/// The links of `chain` (each certificate and the next, which signed it) whose verification
/// webpki need not redo: chainfix's path holds only links whose signature it verified, and
/// where the signer's key is within what the provider's algorithms accept (RSA of 2048 to 8192
/// bits, ECDSA P-256/P-384, Ed25519; ring checks the RSA modulus size inside the verification,
/// so an RSA key outside it is left to webpki, which refuses it: policy `rsa-key-size`), the
/// arithmetic gives the same answer on the same bytes. The algorithm itself is still chosen and
/// matched by webpki.
fn vouched_links(chain: &[&Certificate]) -> Vec<Link> {
    chain
        .windows(2)
        .filter(|pair| handshake_key_supported(&pair[1].key))
        .filter_map(|pair| {
            crate::cert::with_signed_parts(pair[0], pair[1], |signed, sig, key| Link {
                public_key: key.to_vec(),
                message: signed.to_vec(),
                signature: sig.to_vec(),
            })
        })
        .collect()
}

fn verified() -> &'static Mutex<FxHashSet<[u8; 32]>> {
    static VERIFIED: OnceLock<Mutex<FxHashSet<[u8; 32]>>> = OnceLock::new();
    VERIFIED.get_or_init(Mutex::default)
}

impl SignatureVerificationAlgorithm for Memo {
    fn verify_signature(
        &self,
        public_key: &[u8],
        message: &[u8],
        signature: &[u8],
    ) -> Result<(), InvalidSignature> {
        let vouched = VOUCHED.with(|v| {
            v.borrow()
                .iter()
                .any(|l| l.is(public_key, message, signature))
        });
        if vouched {
            return Ok(());
        }
        let key = digest(&[
            self.inner.signature_alg_id().as_ref(),
            public_key,
            message,
            signature,
        ]);
        let lock = || verified().lock().unwrap_or_else(PoisonError::into_inner);
        if lock().contains(&key) {
            return Ok(());
        }
        self.inner
            .verify_signature(public_key, message, signature)?;
        let mut done = lock();
        if done.len() < MEMO_LIMIT {
            done.insert(key);
        }
        Ok(())
    }

    fn public_key_alg_id(&self) -> AlgorithmIdentifier {
        self.inner.public_key_alg_id()
    }

    fn signature_alg_id(&self) -> AlgorithmIdentifier {
        self.inner.signature_alg_id()
    }

    fn fips(&self) -> bool {
        self.inner.fips()
    }
}

/// webpki's verdict on `chain` (leaf first; the last certificate is the trust anchor when
/// `anchored`, and then the only one), at `now`, for `role`, for `host` when given.
pub fn verify(
    chain: &[&Certificate],
    anchored: bool,
    now: i64,
    role: Role,
    host: Option<&str>,
) -> Verdict {
    VOUCHED.with(|v| *v.borrow_mut() = vouched_links(chain));
    let result = check(chain, anchored, now, role, host);
    VOUCHED.with(|v| v.borrow_mut().clear());
    match result {
        Ok(()) => Verdict::Accepted,
        Err(e) => Verdict::Rejected(Reason::Webpki(e)),
    }
}

fn check(
    chain: &[&Certificate],
    anchored: bool,
    now: i64,
    role: Role,
    host: Option<&str>,
) -> Result<(), WebpkiError> {
    let Some(leaf) = chain.first() else {
        return Err(WebpkiError::Other);
    };
    let ders: Vec<CertificateDer<'_>> = chain
        .iter()
        .map(|c| CertificateDer::from(c.der.as_slice()))
        .collect();
    // The trust anchor is the path's last certificate (the leaf itself when it is trusted);
    // the certificates between are what the peer sends.
    let (anchor_der, intermediates) = match ders.split_last() {
        Some((last, rest)) if anchored => (Some(last), rest.get(1..).unwrap_or_default()),
        _ => (None, &ders[1..]),
    };
    let anchors = match anchor_der {
        Some(der) => vec![webpki::anchor_from_trusted_cert(der).map_err(|e| WebpkiError::of(&e))?],
        None => Vec::new(),
    };
    let ee = EndEntityCert::try_from(&ders[0]).map_err(|e| WebpkiError::of(&e))?;
    let time = UnixTime::since_unix_epoch(Duration::from_secs(u64::try_from(now).unwrap_or(0)));
    let usage = match role {
        Role::Server => KeyUsage::server_auth(),
        Role::Client => KeyUsage::client_auth(),
    };
    ee.verify_for_usage(
        algorithms(),
        &anchors,
        intermediates,
        time,
        usage,
        None,
        None,
    )
    .map_err(|e| WebpkiError::of(&e))?;
    if let Some(host) = host {
        let name = match host
            .trim_matches(|c| c == '[' || c == ']')
            .parse::<IpAddr>()
        {
            Ok(ip) => ServerName::IpAddress(ip.into()),
            Err(_) => ServerName::try_from(host.trim_end_matches('.'))
                .map_err(|_| WebpkiError::InvalidServerName)?,
        };
        ee.verify_is_valid_for_subject_name(&name)
            .map_err(|e| WebpkiError::of(&e))?;
    }
    if !handshake_key_supported(&leaf.key) {
        return Err(WebpkiError::UnsupportedLeafKey);
    }
    Ok(())
}

/// Whether rustls's *ring* provider can verify a handshake signature by this key
/// (rustls/src/crypto/ring/mod.rs, `SUPPORTED_SIG_ALGS.mapping`): RSA of 2048 to 8192 bits,
/// ECDSA on P-256 or P-384, Ed25519.
fn handshake_key_supported(key: &KeyKind) -> bool {
    match key {
        KeyKind::Rsa { bits } => (2048..=8192).contains(bits),
        KeyKind::Ec { curve } => matches!(*curve, "P-256" | "P-384"),
        KeyKind::Ed25519 => true,
        KeyKind::Other { .. } => false,
    }
}

#[cfg(test)]
mod tests {
    use ring::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_ASN1_SIGNING};

    use super::algorithms;

    /// A remembered signature stands for exactly its key, message and signature: the same
    /// signature over another message is verified, and refused.
    #[test]
    fn a_remembered_signature_covers_only_its_own_message() {
        let pem = include_str!("../../testdata/keys/p256-a.pem");
        let der = ::pem::parse(pem).expect("PEM").into_contents();
        let rng = ring::rand::SystemRandom::new();
        let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &der, &rng)
            .expect("a P-256 PKCS#8 key");
        let sig = key.sign(&rng, b"to be signed").expect("signing");
        let public = key.public_key().as_ref();
        let alg = algorithms()
            .iter()
            .find(|a| {
                a.verify_signature(public, b"to be signed", sig.as_ref())
                    .is_ok()
            })
            .expect("ECDSA P-256 SHA-256 is among the provider's algorithms");
        assert!(alg
            .verify_signature(public, b"to be signed", sig.as_ref())
            .is_ok());
        assert!(alg
            .verify_signature(public, b"to be signeD", sig.as_ref())
            .is_err());
    }
}

#[cfg(test)]
mod vouching {
    use super::vouched_links;
    use crate::cert::Certificate;

    /// The bytes a vouched link holds are the triple a provider algorithm verifies (key bits,
    /// the whole TBSCertificate, signature bits), which is what webpki hands it: so a link
    /// chainfix verified is recognised when webpki asks about it.
    #[test]
    fn a_vouched_link_is_the_triple_the_provider_verifies() {
        let root_key = rcgen::KeyPair::generate().expect("key");
        let mut root_params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
        root_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let root = root_params.self_signed(&root_key).expect("root");
        let issuer = rcgen::Issuer::new(root_params, root_key);
        let leaf_key = rcgen::KeyPair::generate().expect("key");
        let leaf = rcgen::CertificateParams::new(vec!["mail.example.test".to_string()])
            .expect("params")
            .signed_by(&leaf_key, &issuer)
            .expect("leaf");
        let leaf = Certificate::from_der(leaf.der()).expect("leaf parses");
        let root = Certificate::from_der(root.der()).expect("root parses");
        let links = vouched_links(&[&leaf, &root]);
        assert_eq!(links.len(), 1);
        let l = &links[0];
        let alg = webpki::ring::ECDSA_P256_SHA256;
        assert!(alg
            .verify_signature(&l.public_key, &l.message, &l.signature)
            .is_ok());
        assert!(l.is(&l.public_key, &l.message, &l.signature));
        let mut other = l.message.clone();
        other[10] ^= 1;
        assert!(!l.is(&l.public_key, &other, &l.signature));
    }
}
