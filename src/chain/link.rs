//! Link checking: whether a candidate issuer's key verifies a child's signature, each
//! (issuer, child) pair at most once per run ([`Memo`]). A link between two certificates
//! counts only when this module says [`SigCheck::Valid`].
//!
//! Receivers verify every algorithm real chains carry, including broken ones (OpenSSL 3 checks
//! an MD5 signature, then refuses it at security level 1 and up), so a link must be verified
//! before it is judged: "weak but genuine" and "forged" are different findings.
//!
//! - ring verifies the common cases: RSA PKCS#1 v1.5 with SHA-1/SHA-2 and a 1024 to 8192-bit
//!   key, RSA-PSS with the salt as long as the hash, ECDSA on P-256/P-384 with
//!   SHA-256/SHA-384, Ed25519.
//! - The RustCrypto crates verify what ring refuses: MD2, MD5 and SHA-224, RSA keys outside
//!   ring's sizes, ECDSA on P-521 or with SHA-1/SHA-224/SHA-512. RSA-PSS past ring's profile
//!   (any salt length, an MGF1 hash other than the message hash, as OpenSSL allows) is checked
//!   by EMSA-PSS-VERIFY (RFC 8017 §9.1.2), written out here over the `rsa` crate's arithmetic.
//! - What neither verifies (Ed448, DSA, unknown algorithms and curves, RSA-PSS with a mask but
//!   MGF1) is [`SigCheck::Unverifiable`]: not a link.

use std::fmt;
use std::hash::BuildHasher;
use std::sync::{Mutex, MutexGuard};

use rustc_hash::{FxBuildHasher, FxHashMap};

use crate::cert::{self, Certificate, Hash, KeyKind, SigAlg};
use crate::pool::{Id, Pool};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SigCheck {
    /// The issuer's key verifies the child's signature.
    Valid,
    /// The signature does not verify, or the key cannot have made it (an RSA key under an
    /// ECDSA signature): this candidate did not issue the child.
    Invalid,
    /// Neither ring nor the RustCrypto verifiers check this: the candidate is not a link.
    Unverifiable(Unsupported),
}

/// Why a signature could not be checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unsupported {
    Algorithm(SigAlg),
    /// An issuer key of a type or curve no verifier here knows.
    Key(KeyKind),
    /// RSA keys past this many bits are not verified (a bound on the work one link may cost).
    RsaTooLarge(u32),
    /// RSA-PSS whose mask generation is not MGF1 with a known hash, or whose trailer field is
    /// not 1.
    PssParameters,
}

impl fmt::Display for Unsupported {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Unsupported::Algorithm(alg) => write!(f, "{alg} cannot be verified here"),
            Unsupported::Key(key) => write!(f, "the issuer's {key} key cannot be used here"),
            Unsupported::RsaTooLarge(bits) => write!(
                f,
                "the issuer's RSA-{bits} key is larger than the {MAX_RSA_BITS} bits verified here"
            ),
            Unsupported::PssParameters => f.write_str(
                "its RSA-PSS parameters (mask generation or trailer field) cannot be verified here",
            ),
        }
    }
}

/// Largest RSA modulus verified: OpenSSL verifies up to 16,384 bits
/// (`OPENSSL_RSA_MAX_MODULUS_BITS`); each doubling of the modulus costs four times the work.
pub const MAX_RSA_BITS: u32 = 16_384;

/// The issuer's public key as the verifiers take it.
struct IssuerKey<'a> {
    pub kind: &'a KeyKind,
    /// The subjectPublicKey BIT STRING's content: RSAPublicKey DER, an EC point, or the raw
    /// Ed25519 key.
    pub bits: &'a [u8],
}

/// Checks `signature` over `signed` (the DER TBSCertificate) made with `alg` by `key`.
fn verify(alg: &SigAlg, signed: &[u8], signature: &[u8], key: &IssuerKey<'_>) -> SigCheck {
    let ok = |verified: bool| {
        if verified {
            SigCheck::Valid
        } else {
            SigCheck::Invalid
        }
    };
    match (alg, key.kind) {
        (SigAlg::RsaPkcs1(hash), KeyKind::Rsa { bits }) => {
            if *bits > MAX_RSA_BITS {
                return SigCheck::Unverifiable(Unsupported::RsaTooLarge(*bits));
            }
            match rsa::pkcs1(*hash, *bits, key.bits, signed, signature) {
                Some(verified) => ok(verified),
                None => SigCheck::Unverifiable(Unsupported::Algorithm(alg.clone())),
            }
        }
        (SigAlg::RsaPss(pss), KeyKind::Rsa { bits }) => {
            if *bits > MAX_RSA_BITS {
                return SigCheck::Unverifiable(Unsupported::RsaTooLarge(*bits));
            }
            if pss.mask_hash == Hash::Unknown || !pss.trailer_ok {
                return SigCheck::Unverifiable(Unsupported::PssParameters);
            }
            match rsa::pss(pss, *bits, key.bits, signed, signature) {
                Some(verified) => ok(verified),
                None => SigCheck::Unverifiable(Unsupported::Algorithm(alg.clone())),
            }
        }
        (SigAlg::Ecdsa(hash), KeyKind::Ec { curve }) => {
            match ecdsa::verify(curve, *hash, key.bits, signed, signature) {
                Some(verified) => ok(verified),
                None if ecdsa::knows(curve) => {
                    SigCheck::Unverifiable(Unsupported::Algorithm(alg.clone()))
                }
                None => SigCheck::Unverifiable(Unsupported::Key(key.kind.clone())),
            }
        }
        (SigAlg::Ed25519, KeyKind::Ed25519) => ok(ring::signature::UnparsedPublicKey::new(
            &ring::signature::ED25519,
            key.bits,
        )
        .verify(signed, signature)
        .is_ok()),
        (SigAlg::Ed448 | SigAlg::Dsa(_) | SigAlg::BadPss | SigAlg::Unknown(_), _) => {
            SigCheck::Unverifiable(Unsupported::Algorithm(alg.clone()))
        }
        (_, KeyKind::Other { .. }) => SigCheck::Unverifiable(Unsupported::Key(key.kind.clone())),
        // The key cannot have made this signature (RFC 5280 §4.1.1.2: the algorithm names the
        // key type as well as the hash).
        _ => SigCheck::Invalid,
    }
}

/// Checks `child`'s signature with `issuer`'s public key.
pub fn check_signature(child: &Certificate, issuer: &Certificate) -> SigCheck {
    cert::with_signed_parts(child, issuer, |signed, sig, bits| {
        let key = IssuerKey {
            kind: &issuer.key,
            bits,
        };
        verify(&child.sig_alg, signed, sig, &key)
    })
    .unwrap_or(SigCheck::Invalid)
}

/// Shards of the [`Memo`]: enough that a search rarely waits for a shard another thread is
/// verifying a link in.
const SHARDS: usize = 128;

/// The signature checks made in this run, keyed by (issuer, child) pool ids, shared by the
/// path searches running at once: each link is verified once per run, by the first search
/// that needs it, holding the link's shard meanwhile (a search needing the same link waits
/// for the result instead of verifying it again). Keyed by pool ids: a memo serves one pool
/// (the pool gives a certificate added twice the same id, and never reuses an id).
pub struct Memo {
    /// Fx-hashed: pool indices, which the inputs do not choose.
    shards: Vec<Mutex<FxHashMap<(Id, Id), SigCheck>>>,
}

impl Default for Memo {
    fn default() -> Memo {
        Memo {
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
        }
    }
}

impl Memo {
    /// The result of checking `child`'s signature with `issuer`'s key, both in `pool`:
    /// computed the first time it is asked for.
    pub fn check(&self, pool: &Pool, child: Id, issuer: Id) -> SigCheck {
        let key = (issuer, child);
        let shard = FxBuildHasher.hash_one(key) as usize % SHARDS;
        lock(&self.shards[shard])
            .entry(key)
            .or_insert_with(|| check_signature(pool.cert(child), pool.cert(issuer)))
            .clone()
    }

    /// How many (issuer, child) pairs have been checked in this run.
    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| lock(s).len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A shard poisoned by a panic still holds only finished checks.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The digest of `data` with `hash`; `None` for a hash chainfix does not compute.
fn digest(hash: Hash, data: &[u8]) -> Option<Vec<u8>> {
    use sha2::Digest;
    Some(match hash {
        Hash::Md2 => md2::Md2::digest(data).to_vec(),
        Hash::Md5 => md5::Md5::digest(data).to_vec(),
        Hash::Sha1 => sha1_10::Sha1::digest(data).to_vec(),
        Hash::Sha224 => sha2::Sha224::digest(data).to_vec(),
        Hash::Sha256 => sha2::Sha256::digest(data).to_vec(),
        Hash::Sha384 => sha2::Sha384::digest(data).to_vec(),
        Hash::Sha512 => sha2::Sha512::digest(data).to_vec(),
        Hash::Unknown | Hash::Intrinsic => return None,
    })
}

mod rsa {
    //! RSA signatures: ring where it applies, the `rsa` crate elsewhere.

    use ::rsa::traits::SignatureScheme;
    use ::rsa::{BigUint, Pkcs1v15Sign, RsaPublicKey};
    use ring::signature as rs;

    use super::{digest, MAX_RSA_BITS};
    use crate::cert::{Hash, Pss};

    /// `Some(verified)`, or `None` for a hash the verifiers do not know.
    pub fn pkcs1(hash: Hash, bits: u32, key: &[u8], signed: &[u8], sig: &[u8]) -> Option<bool> {
        // ring's RSA verifiers take 2048 to 8192-bit keys, and 1024 to 8192 bits for the
        // "legacy" SHA-1, SHA-256 and SHA-512 ones.
        let ring_alg: Option<&dyn rs::VerificationAlgorithm> = match (hash, bits) {
            (Hash::Sha256, 2048..=8192) => Some(&rs::RSA_PKCS1_2048_8192_SHA256),
            (Hash::Sha384, 2048..=8192) => Some(&rs::RSA_PKCS1_2048_8192_SHA384),
            (Hash::Sha512, 2048..=8192) => Some(&rs::RSA_PKCS1_2048_8192_SHA512),
            (Hash::Sha1, 1024..=8192) => Some(&rs::RSA_PKCS1_1024_8192_SHA1_FOR_LEGACY_USE_ONLY),
            (Hash::Sha256, 1024..=2047) => {
                Some(&rs::RSA_PKCS1_1024_8192_SHA256_FOR_LEGACY_USE_ONLY)
            }
            (Hash::Sha512, 1024..=2047) => {
                Some(&rs::RSA_PKCS1_1024_8192_SHA512_FOR_LEGACY_USE_ONLY)
            }
            _ => None,
        };
        if let Some(alg) = ring_alg {
            return Some(
                rs::UnparsedPublicKey::new(alg, key)
                    .verify(signed, sig)
                    .is_ok(),
            );
        }
        let prefix = digest_info_prefix(hash)?;
        let hashed = digest(hash, signed)?;
        let scheme = Pkcs1v15Sign {
            hash_len: Some(hashed.len()),
            prefix: prefix.into(),
        };
        Some(public_key(key).is_some_and(|k| scheme.verify(&k, &hashed, sig).is_ok()))
    }

    /// `Some(verified)`, or `None` for a hash the verifiers do not know.
    pub fn pss(pss: &Pss, bits: u32, key: &[u8], signed: &[u8], sig: &[u8]) -> Option<bool> {
        hash_len(pss.mask_hash)?;
        let h_len = hash_len(pss.hash)?;
        // ring: the RFC 8446 §4.2.3 profile only (salt as long as the hash, SHA-2, MGF1 with
        // the same hash).
        if pss.salt as usize == h_len && pss.mask_hash == pss.hash && (2048..=8192).contains(&bits)
        {
            let alg: Option<&dyn rs::VerificationAlgorithm> = match pss.hash {
                Hash::Sha256 => Some(&rs::RSA_PSS_2048_8192_SHA256),
                Hash::Sha384 => Some(&rs::RSA_PSS_2048_8192_SHA384),
                Hash::Sha512 => Some(&rs::RSA_PSS_2048_8192_SHA512),
                _ => None,
            };
            if let Some(alg) = alg {
                return Some(
                    rs::UnparsedPublicKey::new(alg, key)
                        .verify(signed, sig)
                        .is_ok(),
                );
            }
        }
        let Some(k) = public_key(key) else {
            return Some(false);
        };
        Some(emsa_pss_verify(pss, &k, signed, sig).unwrap_or(false))
    }

    fn hash_len(hash: Hash) -> Option<usize> {
        Some(match hash {
            Hash::Sha1 => 20,
            Hash::Sha224 => 28,
            Hash::Sha256 => 32,
            Hash::Sha384 => 48,
            Hash::Sha512 => 64,
            _ => return None,
        })
    }

    /// RSASSA-PSS-VERIFY (RFC 8017 §8.1.2) with EMSA-PSS-VERIFY (§9.1.2), for any salt length
    /// and any MGF1 hash, as OpenSSL verifies them. `None` where the RFC says "inconsistent".
    fn emsa_pss_verify(pss: &Pss, key: &RsaPublicKey, signed: &[u8], sig: &[u8]) -> Option<bool> {
        use ::rsa::traits::PublicKeyParts;
        let h_len = hash_len(pss.hash)?;
        let s_len = usize::try_from(pss.salt).ok()?;
        // §8.1.2 step 1: the signature is exactly as long as the modulus.
        let k = key.size();
        if sig.len() != k {
            return None;
        }
        let s = BigUint::from_bytes_be(sig);
        if &s >= key.n() {
            return None;
        }
        let m = ::rsa::hazmat::rsa_encrypt(key, &s).ok()?;
        let em_bits = key.n().bits() - 1;
        let em_len = em_bits.div_ceil(8);
        let m = m.to_bytes_be();
        if m.len() > em_len {
            return None;
        }
        let mut em = vec![0u8; em_len - m.len()];
        em.extend_from_slice(&m);
        // §9.1.2 steps 3-6.
        if em_len < h_len + s_len + 2 || em[em_len - 1] != 0xbc {
            return None;
        }
        let (masked_db, rest) = em.split_at(em_len - h_len - 1);
        let h = &rest[..h_len];
        let top_bits = 8 * em_len - em_bits;
        let top_mask = 0xffu8.checked_shr(top_bits as u32).unwrap_or(0);
        if masked_db[0] & !top_mask != 0 {
            return None;
        }
        // Steps 7-9: unmask.
        let db_mask = mgf1(pss.mask_hash, h, masked_db.len())?;
        let mut db: Vec<u8> = masked_db.iter().zip(&db_mask).map(|(a, b)| a ^ b).collect();
        db[0] &= top_mask;
        // Step 10: zeros, then 0x01, then the salt.
        let zeros = em_len - h_len - s_len - 2;
        if db[..zeros].iter().any(|&b| b != 0) || db[zeros] != 0x01 {
            return None;
        }
        let salt = &db[db.len() - s_len..];
        // Steps 12-14.
        let mut m_prime = vec![0u8; 8];
        m_prime.extend_from_slice(&digest(pss.hash, signed)?);
        m_prime.extend_from_slice(salt);
        Some(digest(pss.hash, &m_prime)? == h)
    }

    /// MGF1 (RFC 8017 §B.2.1).
    fn mgf1(hash: Hash, seed: &[u8], len: usize) -> Option<Vec<u8>> {
        let mut out = Vec::with_capacity(len + 64);
        let mut counter = 0u32;
        while out.len() < len {
            let mut block = seed.to_vec();
            block.extend_from_slice(&counter.to_be_bytes());
            out.extend_from_slice(&digest(hash, &block)?);
            counter += 1;
        }
        out.truncate(len);
        Some(out)
    }

    /// RSAPublicKey (RFC 8017 §A.1.1) DER into a key the `rsa` crate takes.
    fn public_key(der: &[u8]) -> Option<RsaPublicKey> {
        use crate::asn1::{children, expect, INTEGER, SEQUENCE};
        let (seq, rest) = expect(der, SEQUENCE).ok()?;
        if !rest.is_empty() {
            return None;
        }
        let mut fields = children(seq.content);
        let n = fields.next()?.ok()?;
        let e = fields.next()?.ok()?;
        if n.tag != INTEGER || e.tag != INTEGER || fields.next().is_some() {
            return None;
        }
        RsaPublicKey::new_with_max_size(
            BigUint::from_bytes_be(n.content),
            BigUint::from_bytes_be(e.content),
            MAX_RSA_BITS as usize,
        )
        .ok()
    }

    /// The DER DigestInfo prefix for `hash` (RFC 8017 §9.2, note 1).
    fn digest_info_prefix(hash: Hash) -> Option<&'static [u8]> {
        Some(match hash {
            Hash::Md2 => &[
                0x30, 0x20, 0x30, 0x0c, 0x06, 0x08, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x02, 0x02,
                0x05, 0x00, 0x04, 0x10,
            ],
            Hash::Md5 => &[
                0x30, 0x20, 0x30, 0x0c, 0x06, 0x08, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x02, 0x05,
                0x05, 0x00, 0x04, 0x10,
            ],
            Hash::Sha1 => &[
                0x30, 0x21, 0x30, 0x09, 0x06, 0x05, 0x2b, 0x0e, 0x03, 0x02, 0x1a, 0x05, 0x00, 0x04,
                0x14,
            ],
            Hash::Sha224 => &[
                0x30, 0x2d, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
                0x04, 0x05, 0x00, 0x04, 0x1c,
            ],
            Hash::Sha256 => &[
                0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
                0x01, 0x05, 0x00, 0x04, 0x20,
            ],
            Hash::Sha384 => &[
                0x30, 0x41, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
                0x02, 0x05, 0x00, 0x04, 0x30,
            ],
            Hash::Sha512 => &[
                0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
                0x03, 0x05, 0x00, 0x04, 0x40,
            ],
            Hash::Unknown | Hash::Intrinsic => return None,
        })
    }
}

mod ecdsa {
    //! ECDSA signatures (RFC 5758 §3.2, SEC 1 §4.1.4): ring for P-256/P-384 with
    //! SHA-256/SHA-384, the RustCrypto curves for the rest.

    use ::ecdsa::hazmat::VerifyPrimitive;
    use ::ecdsa::{Signature, SignatureSize};
    use elliptic_curve::generic_array::ArrayLength;
    use elliptic_curve::sec1::{EncodedPoint, FromEncodedPoint, ModulusSize};
    use elliptic_curve::{AffinePoint, CurveArithmetic, FieldBytes, FieldBytesSize, PrimeCurve};
    use ring::signature as rs;

    use super::digest;
    use crate::cert::Hash;

    /// Curves this module verifies on.
    pub fn knows(curve: &str) -> bool {
        matches!(curve, "P-256" | "P-384" | "P-521")
    }

    /// `Some(verified)`, or `None` for a curve or hash the verifiers do not know.
    pub fn verify(
        curve: &str,
        hash: Hash,
        point: &[u8],
        signed: &[u8],
        sig: &[u8],
    ) -> Option<bool> {
        let ring_alg: Option<&dyn rs::VerificationAlgorithm> = match (curve, hash) {
            ("P-256", Hash::Sha256) => Some(&rs::ECDSA_P256_SHA256_ASN1),
            ("P-256", Hash::Sha384) => Some(&rs::ECDSA_P256_SHA384_ASN1),
            ("P-384", Hash::Sha256) => Some(&rs::ECDSA_P384_SHA256_ASN1),
            ("P-384", Hash::Sha384) => Some(&rs::ECDSA_P384_SHA384_ASN1),
            _ => None,
        };
        if let Some(alg) = ring_alg {
            return Some(
                rs::UnparsedPublicKey::new(alg, point)
                    .verify(signed, sig)
                    .is_ok(),
            );
        }
        if !knows(curve) {
            return None;
        }
        let z = digest(hash, signed)?;
        let Some((r, s)) = der_signature(sig) else {
            return Some(false);
        };
        Some(match curve {
            "P-256" => verify_on::<p256::NistP256>(point, &z, r, s),
            "P-384" => verify_on::<p384::NistP384>(point, &z, r, s),
            _ => verify_on::<p521::NistP521>(point, &z, r, s),
        })
    }

    fn verify_on<C>(point: &[u8], z: &[u8], r: &[u8], s: &[u8]) -> bool
    where
        C: PrimeCurve + CurveArithmetic,
        AffinePoint<C>: FromEncodedPoint<C> + VerifyPrimitive<C>,
        FieldBytesSize<C>: ModulusSize,
        SignatureSize<C>: ArrayLength<u8>,
    {
        let Ok(encoded) = EncodedPoint::<C>::from_bytes(point) else {
            return false;
        };
        let Some(q): Option<AffinePoint<C>> = AffinePoint::<C>::from_encoded_point(&encoded).into()
        else {
            return false;
        };
        let (Some(r), Some(s)) = (field_bytes::<C>(r), field_bytes::<C>(s)) else {
            return false;
        };
        // Zero and out-of-range scalars are refused here.
        let Ok(sig) = Signature::<C>::from_scalars(r, s) else {
            return false;
        };
        // SEC 1 §4.1.4 step 5: the hash's leftmost bits, as many as the order has. The three
        // curves' orders fill whole bytes (P-521's 521 bits exceed every hash here), so a
        // longer hash is cut to the field size and a shorter one is taken whole.
        let mut e = FieldBytes::<C>::default();
        let n = e.len();
        if z.len() >= n {
            e.copy_from_slice(&z[..n]);
        } else {
            e[n - z.len()..].copy_from_slice(z);
        }
        q.verify_prehashed(&e, &sig).is_ok()
    }

    /// An unsigned big-endian integer left-padded to the field size.
    fn field_bytes<C: PrimeCurve>(int: &[u8]) -> Option<FieldBytes<C>> {
        let mut out = FieldBytes::<C>::default();
        let n = out.len();
        if int.len() > n {
            return None;
        }
        out[n - int.len()..].copy_from_slice(int);
        Some(out)
    }

    /// The r and s of a DER Ecdsa-Sig-Value (RFC 5480 §2.2.3), as unsigned big-endian bytes.
    /// Only strict DER is accepted (OpenSSL re-encodes the signature and refuses it when the
    /// bytes differ): minimal positive INTEGERs and nothing after them.
    fn der_signature(sig: &[u8]) -> Option<(&[u8], &[u8])> {
        use crate::asn1::{children, expect, INTEGER, SEQUENCE};
        let (seq, rest) = expect(sig, SEQUENCE).ok()?;
        if !rest.is_empty() || seq.raw.len() != minimal_len(seq.content.len()) {
            return None;
        }
        let mut ints = children(seq.content);
        let r = ints.next()?.ok()?;
        let s = ints.next()?.ok()?;
        if ints.next().is_some() {
            return None;
        }
        fn unsigned(t: crate::asn1::Tlv<'_>) -> Option<&[u8]> {
            if t.tag != INTEGER || t.raw.len() != minimal_len(t.content.len()) {
                return None;
            }
            match t.content {
                [] => None,
                [b, ..] if b & 0x80 != 0 => None,
                [0, next, ..] if next & 0x80 == 0 => None,
                [0, rest @ ..] => Some(rest),
                all => Some(all),
            }
        }
        Some((unsigned(r)?, unsigned(s)?))
    }

    /// The length of a DER element with `content` bytes (definite, minimal length octets).
    fn minimal_len(content: usize) -> usize {
        let header = match content {
            0..=0x7f => 2,
            0x80..=0xff => 3,
            0x100..=0xffff => 4,
            _ => 5,
        };
        header + content
    }
}
