//! Private keys (PKCS#1 RSA, PKCS#8, SEC1 EC): parsed only far enough to learn the public key,
//! so a key can be matched to its leaf. Key bytes never reach `Debug`, `Display` or a log.

use crate::asn1::{self, Asn1Error, BIT_STRING, INTEGER, OCTET_STRING, OID, SEQUENCE};
use crate::cert::{raw_key_id, rsa_key_id};

const RSA_ENCRYPTION: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
const EC_PUBLIC_KEY: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
const ED25519: &[u8] = &[0x2b, 0x65, 0x70];
const P256: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
const P384: &[u8] = &[0x2b, 0x81, 0x04, 0x00, 0x22];

/// The on-disk encoding a key came in; it is written back the same way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyFormat {
    /// `RSA PRIVATE KEY` (RFC 8017 Appendix A.1.2).
    Pkcs1,
    /// `PRIVATE KEY` (RFC 5208 / RFC 5958).
    Pkcs8,
    /// `EC PRIVATE KEY` (RFC 5915).
    Sec1,
}

impl KeyFormat {
    pub fn pem_label(self) -> &'static str {
        match self {
            KeyFormat::Pkcs1 => "RSA PRIVATE KEY",
            KeyFormat::Pkcs8 => "PRIVATE KEY",
            KeyFormat::Sec1 => "EC PRIVATE KEY",
        }
    }
}

/// A private key. Its bytes are reachable only through [`PrivateKey::to_pem`] and
/// [`PrivateKey::pkcs8_der`], for writing key files.
#[derive(Clone)]
pub struct PrivateKey {
    der: Vec<u8>,
    pub format: KeyFormat,
    /// Canonical public key id (see [`crate::cert::rsa_key_id`]), when it can be derived.
    pub public_id: Option<Vec<u8>>,
    pub algorithm: &'static str,
}

impl std::fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "PrivateKey({}, {:?}, <redacted>)",
            self.algorithm, self.format
        )
    }
}

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("damaged private key: {0}")]
    Asn1(#[from] Asn1Error),
    #[error("unsupported private key type")]
    Unsupported,
}

impl PrivateKey {
    pub fn from_der(der: &[u8], format: KeyFormat) -> Result<PrivateKey, KeyError> {
        let (public_id, algorithm) = match format {
            KeyFormat::Pkcs1 => (Some(rsa_public(der)?), "RSA"),
            KeyFormat::Sec1 => (ec_public(der, None)?, "EC"),
            KeyFormat::Pkcs8 => pkcs8_public(der)?,
        };
        Ok(PrivateKey {
            der: der.to_vec(),
            format,
            public_id,
            algorithm,
        })
    }

    /// Tries PKCS#8, then PKCS#1, then SEC1: for DER key files, which carry no label.
    pub fn from_unlabelled_der(der: &[u8]) -> Option<PrivateKey> {
        [KeyFormat::Pkcs8, KeyFormat::Pkcs1, KeyFormat::Sec1]
            .into_iter()
            .find_map(|f| PrivateKey::from_der(der, f).ok())
    }

    pub fn to_pem(&self) -> String {
        ::pem::encode_config(
            &::pem::Pem::new(self.format.pem_label(), self.der.clone()),
            ::pem::EncodeConfig::new().set_line_ending(::pem::LineEnding::LF),
        )
    }

    /// The key as PKCS#8 DER (wrapping PKCS#1 / SEC1 keys), for PFX writers.
    pub fn pkcs8_der(&self) -> Vec<u8> {
        match self.format {
            KeyFormat::Pkcs8 => self.der.clone(),
            KeyFormat::Pkcs1 => wrap_pkcs8(RSA_ENCRYPTION, &[0x05, 0x00], &self.der),
            KeyFormat::Sec1 => {
                let curve = sec1_curve(&self.der).unwrap_or_default();
                wrap_pkcs8(EC_PUBLIC_KEY, &curve, &self.der)
            }
        }
    }
}

/// PrivateKeyInfo { version 0, AlgorithmIdentifier { oid, params }, OCTET STRING inner }.
fn wrap_pkcs8(alg_oid: &[u8], params: &[u8], inner: &[u8]) -> Vec<u8> {
    let mut alg = asn1::encode(OID, alg_oid);
    alg.extend_from_slice(params);
    let mut body = asn1::encode(INTEGER, &[0]);
    body.extend(asn1::encode(SEQUENCE, &alg));
    body.extend(asn1::encode(OCTET_STRING, inner));
    asn1::encode(SEQUENCE, &body)
}

/// RSAPrivateKey ::= SEQUENCE { version, modulus, publicExponent, ... }
fn rsa_public(der: &[u8]) -> Result<Vec<u8>, KeyError> {
    let (seq, _) = asn1::expect(der, SEQUENCE)?;
    let mut f = asn1::children(seq.content);
    let mut int = || -> Result<&[u8], KeyError> {
        let t = f.next().ok_or(KeyError::Unsupported)??;
        if t.tag != INTEGER {
            return Err(KeyError::Unsupported);
        }
        Ok(t.content)
    };
    let _version = int()?;
    let n = int()?;
    let e = int()?;
    Ok(rsa_key_id(n, e))
}

/// ECPrivateKey ::= SEQUENCE { version 1, privateKey OCTET STRING, [0] params, [1] publicKey }
///
/// For P-256 and P-384 the public point is derived from the private scalar, uncompressed (as
/// certificates carry it): the stored public key is optional (`openssl ec -no_public`, Java's
/// PKCS#8) and may be compressed (`openssl ec -conv_form compressed`). On other curves the
/// stored point is used as it is. `curve` is the curve OID from an enclosing PKCS#8
/// AlgorithmIdentifier, if any.
fn ec_public(der: &[u8], curve: Option<&[u8]>) -> Result<Option<Vec<u8>>, KeyError> {
    let (seq, _) = asn1::expect(der, SEQUENCE)?;
    let mut f = asn1::children(seq.content);
    let version = f.next().ok_or(KeyError::Unsupported)??;
    let private = f.next().ok_or(KeyError::Unsupported)??;
    if version.tag != INTEGER || private.tag != OCTET_STRING {
        return Err(KeyError::Unsupported);
    }
    let mut curve = curve.map(<[u8]>::to_vec);
    let mut stored = None;
    for field in f {
        let field = field?;
        if field.tag == 0xa0 {
            let (oid, _) = asn1::expect(field.content, OID)?;
            curve = Some(oid.content.to_vec());
        }
        if field.tag == 0xa1 {
            let (bits, _) = asn1::expect(field.content, BIT_STRING)?;
            if let Some((_unused, point)) = bits.content.split_first() {
                stored = Some(point.to_vec());
            }
        }
    }
    Ok(curve
        .and_then(|c| point_from_scalar(&c, private.content))
        .or(stored)
        .map(|p| raw_key_id(&p)))
}

/// The uncompressed public point (SEC 1 §2.3.3) for a private scalar.
fn point_from_scalar(curve: &[u8], scalar: &[u8]) -> Option<Vec<u8>> {
    use p256::elliptic_curve::sec1::ToEncodedPoint;
    match curve {
        P256 => {
            let sk = p256::SecretKey::from_slice(scalar).ok()?;
            Some(sk.public_key().to_encoded_point(false).as_bytes().to_vec())
        }
        P384 => {
            let sk = p384::SecretKey::from_slice(scalar).ok()?;
            Some(sk.public_key().to_encoded_point(false).as_bytes().to_vec())
        }
        _ => None,
    }
}

fn sec1_curve(der: &[u8]) -> Option<Vec<u8>> {
    let (seq, _) = asn1::expect(der, SEQUENCE).ok()?;
    asn1::children(seq.content)
        .filter_map(Result::ok)
        .find(|t| t.tag == 0xa0)
        .map(|t| t.content.to_vec())
}

/// PrivateKeyInfo / OneAsymmetricKey (RFC 5958 §2).
fn pkcs8_public(der: &[u8]) -> Result<(Option<Vec<u8>>, &'static str), KeyError> {
    let (seq, _) = asn1::expect(der, SEQUENCE)?;
    let mut f = asn1::children(seq.content);
    let version = f.next().ok_or(KeyError::Unsupported)??;
    let alg = f.next().ok_or(KeyError::Unsupported)??;
    let private = f.next().ok_or(KeyError::Unsupported)??;
    if version.tag != INTEGER || alg.tag != SEQUENCE || private.tag != OCTET_STRING {
        return Err(KeyError::Unsupported);
    }
    let (oid, _) = asn1::expect(alg.content, OID)?;
    match oid.content {
        RSA_ENCRYPTION => Ok((Some(rsa_public(private.content)?), "RSA")),
        EC_PUBLIC_KEY => {
            let curve = asn1::read(rest_of_alg(alg.content)?)
                .ok()
                .map(|(t, _)| t.content);
            Ok((ec_public(private.content, curve)?, "EC"))
        }
        ED25519 => Ok((ed25519_public(private.content, f)?, "Ed25519")),
        _ => Err(KeyError::Unsupported),
    }
}

/// The parameters after the OID inside an AlgorithmIdentifier.
fn rest_of_alg(alg: &[u8]) -> Result<&[u8], KeyError> {
    let (_, rest) = asn1::read(alg)?;
    Ok(rest)
}

fn ed25519_public(private: &[u8], rest: asn1::Children<'_>) -> Result<Option<Vec<u8>>, KeyError> {
    // v2 keys carry the public key as [1] IMPLICIT BIT STRING.
    for field in rest {
        let field = field?;
        if field.tag == 0x81 {
            if let Some((_unused, public)) = field.content.split_first() {
                return Ok(Some(raw_key_id(public)));
            }
        }
    }
    let (seed, _) = asn1::expect(private, OCTET_STRING)?;
    let pair = ring::signature::Ed25519KeyPair::from_seed_unchecked(seed.content)
        .map_err(|_| KeyError::Unsupported)?;
    use ring::signature::KeyPair;
    Ok(Some(raw_key_id(pair.public_key().as_ref())))
}
