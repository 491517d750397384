//! Signature algorithms: which one a certificate names (RFC 5280 §4.1.1.2), read from its
//! outer `signatureAlgorithm`, RSA-PSS from its parameters (RFC 4055 §3.1). Whether an
//! issuer's key verifies the signature is the chain stage's business (`chain::link`).

use std::fmt;

use x509_parser::certificate::X509Certificate;
use x509_parser::der_parser::oid::Oid;
use x509_parser::signature_algorithm::SignatureAlgorithm;

/// The hash inside a signature algorithm, ordered from weakest to strongest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Hash {
    Md2,
    Md5,
    Sha1,
    Unknown,
    Sha224,
    Sha256,
    Sha384,
    Sha512,
    /// Ed25519 / Ed448 carry their own hash.
    Intrinsic,
}

impl Hash {
    /// MD2, MD5 and SHA-1 are broken for certificate signatures (RFC 6151, RFC 9155).
    pub fn is_weak(self) -> bool {
        matches!(self, Hash::Md2 | Hash::Md5 | Hash::Sha1)
    }

    fn name(self) -> &'static str {
        match self {
            Hash::Md2 => "MD2",
            Hash::Md5 => "MD5",
            Hash::Sha1 => "SHA-1",
            Hash::Unknown => "an unknown hash",
            Hash::Sha224 => "SHA-224",
            Hash::Sha256 => "SHA-256",
            Hash::Sha384 => "SHA-384",
            Hash::Sha512 => "SHA-512",
            Hash::Intrinsic => "its own hash",
        }
    }

    /// The hash named by a hash-algorithm OID (RFC 3279, RFC 5754), as RSA-PSS parameters
    /// give it.
    fn from_oid(oid: &Oid<'_>) -> Hash {
        match oid.as_bytes() {
            [0x2b, 0x0e, 0x03, 0x02, 0x1a] => Hash::Sha1,
            [0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, n] => match n {
                1 => Hash::Sha256,
                2 => Hash::Sha384,
                3 => Hash::Sha512,
                4 => Hash::Sha224,
                _ => Hash::Unknown,
            },
            _ => Hash::Unknown,
        }
    }
}

/// RSA-PSS parameters (RFC 4055 §3.1), with their defaults filled in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Pss {
    pub hash: Hash,
    /// The hash MGF1 uses; `Unknown` for any mask generation function but MGF1.
    pub mask_hash: Hash,
    pub salt: u32,
    /// RFC 4055 allows only trailerField 1.
    pub trailer_ok: bool,
}

/// A certificate's signature algorithm (RFC 5280 §4.1.1.2), as the outer
/// `signatureAlgorithm` names it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum SigAlg {
    /// RSASSA-PKCS1-v1_5 (RFC 8017 §8.2) with this hash.
    RsaPkcs1(Hash),
    RsaPss(Pss),
    Ecdsa(Hash),
    Ed25519,
    Ed448,
    Dsa(Hash),
    /// Parameters of RSA-PSS that do not parse.
    BadPss,
    /// An algorithm chainfix does not know, by dotted OID.
    Unknown(Box<str>),
}

impl SigAlg {
    /// The hash the signature is made over.
    pub fn hash(&self) -> Hash {
        match self {
            SigAlg::RsaPkcs1(h) | SigAlg::Ecdsa(h) | SigAlg::Dsa(h) => *h,
            SigAlg::RsaPss(p) => p.hash,
            SigAlg::Ed25519 | SigAlg::Ed448 => Hash::Intrinsic,
            SigAlg::BadPss | SigAlg::Unknown(_) => Hash::Unknown,
        }
    }
}

impl fmt::Display for SigAlg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hash = |h: Hash| match h {
            Hash::Md2 => "md2",
            Hash::Md5 => "md5",
            Hash::Sha1 => "sha1",
            Hash::Sha224 => "sha224",
            Hash::Sha256 => "sha256",
            Hash::Sha384 => "sha384",
            Hash::Sha512 => "sha512",
            Hash::Unknown | Hash::Intrinsic => "unknown",
        };
        match self {
            SigAlg::RsaPkcs1(h) => write!(f, "{}WithRSAEncryption", hash(*h)),
            SigAlg::RsaPss(p) => write!(f, "rsassa-pss ({}, salt {})", p.hash.name(), p.salt),
            SigAlg::Ecdsa(h) => write!(f, "ecdsa-with-{}", hash(*h).to_uppercase()),
            SigAlg::Ed25519 => f.write_str("Ed25519"),
            SigAlg::Ed448 => f.write_str("Ed448"),
            SigAlg::Dsa(h) => write!(f, "dsa-with-{}", hash(*h).to_uppercase()),
            SigAlg::BadPss => f.write_str("rsassa-pss (unreadable parameters)"),
            SigAlg::Unknown(oid) => write!(f, "signature algorithm {oid}"),
        }
    }
}

/// The signature algorithms chainfix knows by OID (RFC 3279, RFC 4055, RFC 5758, RFC 8410).
/// RSA-PSS is read from its parameters.
pub(super) const SIGNATURE_ALGORITHMS: [(&str, SigAlg); 19] = [
    ("1.2.840.113549.1.1.2", SigAlg::RsaPkcs1(Hash::Md2)),
    ("1.2.840.113549.1.1.4", SigAlg::RsaPkcs1(Hash::Md5)),
    ("1.2.840.113549.1.1.5", SigAlg::RsaPkcs1(Hash::Sha1)),
    // sha1WithRSASignature from OIW, still seen in old roots.
    ("1.3.14.3.2.29", SigAlg::RsaPkcs1(Hash::Sha1)),
    ("1.2.840.113549.1.1.14", SigAlg::RsaPkcs1(Hash::Sha224)),
    ("1.2.840.113549.1.1.11", SigAlg::RsaPkcs1(Hash::Sha256)),
    ("1.2.840.113549.1.1.12", SigAlg::RsaPkcs1(Hash::Sha384)),
    ("1.2.840.113549.1.1.13", SigAlg::RsaPkcs1(Hash::Sha512)),
    ("1.2.840.10045.4.1", SigAlg::Ecdsa(Hash::Sha1)),
    ("1.2.840.10045.4.3.1", SigAlg::Ecdsa(Hash::Sha224)),
    ("1.2.840.10045.4.3.2", SigAlg::Ecdsa(Hash::Sha256)),
    ("1.2.840.10045.4.3.3", SigAlg::Ecdsa(Hash::Sha384)),
    ("1.2.840.10045.4.3.4", SigAlg::Ecdsa(Hash::Sha512)),
    ("1.3.101.112", SigAlg::Ed25519),
    ("1.3.101.113", SigAlg::Ed448),
    ("1.2.840.10040.4.3", SigAlg::Dsa(Hash::Sha1)),
    ("2.16.840.1.101.3.4.3.1", SigAlg::Dsa(Hash::Sha224)),
    ("2.16.840.1.101.3.4.3.2", SigAlg::Dsa(Hash::Sha256)),
    // Placeholder for RSA-PSS, whose parameters decide; see `RSASSA_PSS`.
    ("1.2.840.113549.1.1.10", SigAlg::BadPss),
];

type OwnedOid = Oid<'static>;

/// [`SIGNATURE_ALGORITHMS`] with their OIDs parsed once, so that each certificate's
/// algorithm is found by comparing bytes.
pub(super) fn known_signature_algorithms() -> &'static [(OwnedOid, SigAlg)] {
    static KNOWN: std::sync::LazyLock<Vec<(OwnedOid, SigAlg)>> = std::sync::LazyLock::new(|| {
        SIGNATURE_ALGORITHMS
            .iter()
            .map(|(dotted, alg)| {
                (
                    dotted.parse::<OwnedOid>().expect("a valid dotted OID"),
                    alg.clone(),
                )
            })
            .collect()
    });
    &KNOWN
}

/// The algorithm the outer `signatureAlgorithm` of `x` names.
pub(super) fn signature_algorithm(x: &X509Certificate<'_>) -> SigAlg {
    let oid = &x.signature_algorithm.algorithm;
    match known_signature_algorithms().iter().find(|(k, _)| k == oid) {
        Some((_, SigAlg::BadPss)) => pss_parameters(x),
        Some((_, alg)) => alg.clone(),
        None => SigAlg::Unknown(oid.to_id_string().into()),
    }
}

fn pss_parameters(x: &X509Certificate<'_>) -> SigAlg {
    let Ok(SignatureAlgorithm::RSASSA_PSS(p)) =
        SignatureAlgorithm::try_from(&x.signature_algorithm)
    else {
        return SigAlg::BadPss;
    };
    const MGF1: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x08];
    let mask_hash = match p.mask_gen_algorithm() {
        Ok(m) if m.mgf.as_bytes() == MGF1 => Hash::from_oid(&m.hash),
        _ => Hash::Unknown,
    };
    SigAlg::RsaPss(Pss {
        hash: Hash::from_oid(p.hash_algorithm_oid()),
        mask_hash,
        salt: p.salt_length(),
        trailer_ok: p.trailer_field() == 1,
    })
}
