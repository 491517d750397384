//! PKCS#12 / PFX files from Windows, OpenSSL 3 (AES/PBES2) and OpenSSL `-legacy` (RC2/3DES),
//! read with p12-keystore's archive API, which keeps every bag (the keystore API drops keys
//! and CA certificates it cannot link, see `../shared/notes/crates.md`).

use std::path::Path;

use p12_keystore::error::Error as P12Error;
use p12_keystore::Pkcs12Archive;

use crate::asn1::{self, INTEGER, OCTET_STRING, SEQUENCE};

/// Most key-derivation iterations one PFX may ask for, summed over its MAC and every encrypted
/// bag. Real files ask for thousands (OpenSSL 2048 each, Windows 2000, Java up to 100,000 per
/// bag); a hostile file can repeat million-iteration bags to burn minutes of CPU per password.
pub const MAX_KDF_ITERATIONS: u64 = 1_000_000;

/// Most memory one scrypt key derivation may ask for (128 * N * r bytes): OpenSSL's own default
/// cap (`SCRYPT_MAX_MEM`, 32 MiB). p12-keystore allows 1 GiB, and p up to 16 on top.
pub const MAX_SCRYPT_MEMORY: u64 = 32 * 1024 * 1024;

/// What one scrypt work unit (one of N * r * p) costs, in PBKDF2-HMAC-SHA256 iterations, for
/// the shared [`MAX_KDF_ITERATIONS`] budget: measured here as about 0.24 µs against 0.1 µs.
const SCRYPT_UNIT_COST: u64 = 2;

/// id-scrypt, 1.3.6.1.4.1.11591.4.11 (RFC 7914 §7), as the content of its OID.
const SCRYPT_OID: &[u8] = &[0x2b, 0x06, 0x01, 0x04, 0x01, 0xda, 0x47, 0x04, 0x0b];

/// Most ASN.1 elements visited while counting them.
const MAX_SCAN_ELEMENTS: usize = 100_000;

/// Where PFX passwords come from. The app layer implements it over `--password-env`,
/// `--password-file` and a TTY prompt; tests implement it directly.
pub trait PasswordSource: Sync {
    /// The password the user configured, if any.
    fn configured(&self) -> Option<String>;
    /// Asks the user for the password of `path`, when a terminal is available.
    fn prompt(&self, path: &Path) -> Option<String>;
}

/// No password configured and no terminal: only unprotected PFX files can be read.
pub struct NoPassword;

impl PasswordSource for NoPassword {
    fn configured(&self) -> Option<String> {
        None
    }
    fn prompt(&self, _: &Path) -> Option<String> {
        None
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PfxError {
    #[error("wrong password for the PFX file (its integrity check or decryption fails)")]
    WrongPassword,
    #[error("PFX file is password-protected: pass --password-env VAR or --password-file FILE")]
    PasswordRequired,
    #[error("damaged or unsupported PFX file: {0}")]
    Damaged(String),
    #[error(
        "PFX file asks for {0} key-derivation iterations, more than the limit of {MAX_KDF_ITERATIONS}"
    )]
    TooExpensive(u64),
    #[error(
        "PFX file asks for an scrypt key derivation needing {0} MiB of memory, more than the limit of {limit} MiB",
        limit = MAX_SCRYPT_MEMORY >> 20
    )]
    TooMuchMemory(u64),
}

/// PFX ::= SEQUENCE { version INTEGER (v3), authSafe ContentInfo, macData OPTIONAL }
pub fn looks_like_pfx(der: &[u8]) -> bool {
    let Ok((pfx, _)) = asn1::expect(der, SEQUENCE) else {
        return false;
    };
    let mut f = asn1::children(pfx.content);
    matches!(f.next(), Some(Ok(v)) if v.tag == INTEGER && v.content == [3])
        && matches!(f.next(), Some(Ok(ci)) if ci.tag == SEQUENCE)
}

/// Decrypts a PFX: the configured password, else the empty password, else a prompt.
///
/// Before any key derivation, the work the file asks for is added up and refused above the
/// budgets: first what its visible parameters ask for, then, for each password tried, what the
/// key bags inside its encrypted safes ask for (found by decrypting those safes, whose own
/// derivation is within the first budget). p12-keystore derives every bag it finds, so a
/// file could otherwise hide any number of million-iteration bags behind one cheap layer.
pub fn open(der: &[u8], path: &Path, pw: &dyn PasswordSource) -> Result<Pkcs12Archive, PfxError> {
    let mut visible = KdfCost::default();
    kdf_cost(der, 0, &mut MAX_SCAN_ELEMENTS.clone(), &mut visible);
    visible.check()?;
    let attempt = |password: &str| {
        let mut cost = visible.clone();
        hidden_cost(der, password, &mut cost);
        cost.check()?;
        decode(der, password)
    };
    if let Some(password) = pw.configured() {
        return attempt(&password);
    }
    match attempt("") {
        Err(PfxError::WrongPassword) => match pw.prompt(path) {
            Some(password) => attempt(&password),
            None => Err(PfxError::PasswordRequired),
        },
        other => other,
    }
}

/// The `[0] EXPLICIT` wrapper of a ContentInfo's content.
const EXPLICIT_0: u8 = 0xa0;

/// OIDs (content bytes) of what `hidden_cost` decrypts: PKCS#7 encryptedData, PBES2 (RFC 8018),
/// and the two PKCS#12 PBEs p12-keystore supports (RFC 7292 Appendix C).
const OID_ENCRYPTED_DATA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x06];
const OID_PBES2: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x05, 0x0d];
const OID_PBE_SHA1_3DES: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x0c, 0x01, 0x03];
const OID_PBE_SHA1_RC2_40: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x0c, 0x01, 0x06];

/// Adds to `cost` each encrypted safe's own derivation once more (this scan pays for it, and
/// p12-keystore repeats it), then what the key bags inside ask for. Stops as soon as the budget
/// is spent. The bags of a safe that does not decrypt with `password` add nothing:
/// p12-keystore will not get inside it either.
fn hidden_cost(der: &[u8], password: &str, cost: &mut KdfCost) {
    for safe in encrypted_safes(der) {
        let Some((alg, ciphertext)) = encrypted_content(safe) else {
            continue;
        };
        // Charged before decrypting, so that this scan never pays for a derivation the
        // budget refuses (a fuzz finding: a safe the visible scan did not reach).
        let mut own = KdfCost::default();
        kdf_cost(alg.raw, 0, &mut MAX_SCAN_ELEMENTS.clone(), &mut own);
        cost.add(&own);
        if cost.check().is_err() {
            return;
        }
        let Some(plain) = decrypt_safe(alg, ciphertext, password) else {
            continue;
        };
        // A wrong password can still leave valid padding (1 in 256): what comes out must be
        // one SafeContents SEQUENCE, as p12-keystore would require.
        if !matches!(asn1::expect(&plain, SEQUENCE), Ok((_, rest)) if rest.is_empty()) {
            continue;
        }
        kdf_cost(&plain, 0, &mut MAX_SCAN_ELEMENTS.clone(), cost);
    }
}

/// The EncryptedData contents of the authenticated safe:
/// PFX { version, authSafe ContentInfo { data, [0] OCTET STRING AuthenticatedSafe }, mac },
/// AuthenticatedSafe ::= SEQUENCE OF ContentInfo { contentType, [0] content }.
fn encrypted_safes(der: &[u8]) -> Vec<&[u8]> {
    fn inner(tlv: &[u8], tag: u8) -> Option<&[u8]> {
        asn1::expect(tlv, tag).ok().map(|(t, _)| t.content)
    }
    let Some(pfx) = inner(der, SEQUENCE) else {
        return Vec::new();
    };
    let auth_safe = asn1::children(pfx)
        .nth(1)
        .and_then(Result::ok)
        .and_then(|ci| asn1::children(ci.content).nth(1).and_then(Result::ok))
        .filter(|explicit| explicit.tag == EXPLICIT_0)
        .and_then(|explicit| inner(explicit.content, OCTET_STRING))
        .and_then(|octets| inner(octets, SEQUENCE));
    let Some(auth_safe) = auth_safe else {
        return Vec::new();
    };
    asn1::children(auth_safe)
        .map_while(Result::ok)
        .filter_map(|ci| {
            let mut parts = asn1::children(ci.content);
            let kind = parts.next()?.ok()?;
            let content = parts.next()?.ok()?;
            (kind.tag == asn1::OID
                && kind.content == OID_ENCRYPTED_DATA
                && content.tag == EXPLICIT_0)
                .then_some(content.content)
        })
        .collect()
}

/// EncryptedData ::= SEQUENCE { version, EncryptedContentInfo { contentType,
/// contentEncryptionAlgorithm, [0] IMPLICIT encryptedContent } }: the algorithm and the bytes.
fn encrypted_content(explicit: &[u8]) -> Option<(asn1::Tlv<'_>, &[u8])> {
    let (data, _) = asn1::expect(explicit, SEQUENCE).ok()?;
    let info = asn1::children(data.content).nth(1)?.ok()?;
    let mut parts = asn1::children(info.content);
    let _content_type = parts.next()?.ok()?;
    let alg = parts.next()?.ok()?;
    let content = parts.next()?.ok()?;
    (content.tag == 0x80).then_some((alg, content.content))
}

/// Decrypts one safe as p12-keystore would; `None` if the algorithm is not one it supports
/// or `password` does not fit.
fn decrypt_safe(alg: asn1::Tlv<'_>, ciphertext: &[u8], password: &str) -> Option<Vec<u8>> {
    use pkcs5::der::Decode;
    let mut parts = asn1::children(alg.content);
    let oid = parts.next()?.ok()?;
    let params = parts.next()?.ok()?;
    match oid.content {
        OID_PBES2 => pkcs5::pbes2::Parameters::from_der(params.raw)
            .ok()?
            .decrypt(password, ciphertext)
            .ok(),
        OID_PBE_SHA1_3DES | OID_PBE_SHA1_RC2_40 => {
            let mut fields = asn1::children(params.content);
            let salt = fields.next()?.ok()?;
            let iterations = fields.next()?.ok()?;
            let iterations = i32::try_from(integer_value(iterations.content)).ok()?;
            if oid.content == OID_PBE_SHA1_3DES {
                pbe_sha1_cbc::<des::TdesEde3>(ciphertext, password, salt.content, iterations, 24)
            } else {
                pbe_sha1_cbc::<rc2::Rc2>(ciphertext, password, salt.content, iterations, 5)
            }
        }
        _ => None,
    }
}

/// PKCS#12 PBE (RFC 7292 Appendix B.2 key derivation with SHA-1, then CBC), as p12-keystore's
/// own `Pbes1` decrypts.
fn pbe_sha1_cbc<C>(
    ciphertext: &[u8],
    password: &str,
    salt: &[u8],
    iterations: i32,
    key_len: usize,
) -> Option<Vec<u8>>
where
    C: cbc::cipher::KeyInit + cbc::cipher::BlockCipherDecrypt,
{
    use cbc::cipher::{block_padding::Pkcs7, BlockModeDecrypt, KeyIvInit};
    use pkcs12::kdf::{derive_key_utf8, Pkcs12KeyType};
    let key = derive_key_utf8::<sha1::Sha1>(
        password,
        salt,
        Pkcs12KeyType::EncryptionKey,
        iterations,
        key_len,
    )
    .ok()?;
    let iv =
        derive_key_utf8::<sha1::Sha1>(password, salt, Pkcs12KeyType::Iv, iterations, 8).ok()?;
    cbc::Decryptor::<C>::new_from_slices(&key, &iv)
        .ok()?
        .decrypt_padded_vec::<Pkcs7>(ciphertext)
        .ok()
}

fn decode(der: &[u8], password: &str) -> Result<Pkcs12Archive, PfxError> {
    let has_mac = has_mac(der);
    Pkcs12Archive::from_pkcs12(der, password).map_err(|e| match e {
        P12Error::MacError(_) => PfxError::WrongPassword,
        P12Error::UnpadError | P12Error::Pkcs5Error(_) => PfxError::WrongPassword,
        // Files written with `-nomac` have no integrity check: a wrong password shows up as
        // a failure to decrypt or to parse what was "decrypted" (valid padding by chance).
        _ if !has_mac => PfxError::WrongPassword,
        other => PfxError::Damaged(other.to_string()),
    })
}

/// Whether the PFX carries macData (its integrity check), the third field of the PFX.
fn has_mac(der: &[u8]) -> bool {
    asn1::expect(der, SEQUENCE).is_ok_and(|(pfx, _)| asn1::children(pfx.content).count() >= 3)
}

/// The key-derivation work a PFX asks for.
#[derive(Debug, Default, Clone)]
struct KdfCost {
    /// PBKDF2 / PKCS#12-KDF iterations, plus scrypt's N * r * p in the same units.
    iterations: u64,
    /// The largest memory one scrypt derivation needs, 128 * N * r bytes.
    scrypt_memory: u64,
}

impl KdfCost {
    fn add(&mut self, other: &KdfCost) {
        self.iterations = self.iterations.saturating_add(other.iterations);
        self.scrypt_memory = self.scrypt_memory.max(other.scrypt_memory);
    }

    /// Refuses work over [`MAX_SCRYPT_MEMORY`] or [`MAX_KDF_ITERATIONS`].
    fn check(&self) -> Result<(), PfxError> {
        if self.scrypt_memory > MAX_SCRYPT_MEMORY {
            return Err(PfxError::TooMuchMemory(self.scrypt_memory >> 20));
        }
        if self.iterations > MAX_KDF_ITERATIONS {
            return Err(PfxError::TooExpensive(self.iterations));
        }
        Ok(())
    }
}

/// Adds up the key-derivation work in the file's visible KDF parameters: every INTEGER that
/// directly follows an OCTET STRING salt in a SEQUENCE (pkcs-12PbeParams, PBKDF2-params,
/// MacData), and for scrypt (the SEQUENCE after its OID: salt, N, r, p; RFC 7914 §7) N * r * p
/// and its memory. Looks into OCTET STRINGs that wrap DER (the authenticated safe and its
/// bags); what is encrypted cannot be seen.
fn kdf_cost(data: &[u8], depth: usize, budget: &mut usize, cost: &mut KdfCost) {
    if depth > asn1::MAX_NESTING {
        return;
    }
    let mut after_salt = false;
    let mut after_scrypt_oid = false;
    for child in asn1::children(data) {
        let Ok(t) = child else { break };
        if *budget == 0 {
            break;
        }
        *budget -= 1;
        if after_scrypt_oid && t.tag == SEQUENCE {
            add_scrypt(t.content, cost);
            after_scrypt_oid = false;
            after_salt = false;
            continue;
        }
        if after_salt && t.tag == INTEGER {
            cost.iterations = cost.iterations.saturating_add(integer_value(t.content));
        }
        after_salt = t.tag == OCTET_STRING;
        after_scrypt_oid = t.tag == asn1::OID && t.content == SCRYPT_OID;
        let nested = match t.tag {
            OCTET_STRING => t.content.first() == Some(&SEQUENCE),
            tag => tag & 0x20 != 0,
        };
        if nested {
            kdf_cost(t.content, depth + 1, budget, cost);
        }
    }
}

/// scrypt-params ::= SEQUENCE { salt OCTET STRING, costParameter (N), blockSize (r),
/// parallelizationParameter (p), keyLength OPTIONAL }. Parameters that cannot be read count
/// as unaffordable.
fn add_scrypt(params: &[u8], cost: &mut KdfCost) {
    let fields: Vec<u64> = asn1::children(params)
        .skip(1)
        .take(3)
        .map(|f| match f {
            Ok(t) if t.tag == INTEGER => integer_value(t.content),
            _ => u64::MAX,
        })
        .collect();
    let (n, r, p) = match fields[..] {
        [n, r, p] => (n, r, p),
        _ => (u64::MAX, u64::MAX, u64::MAX),
    };
    let memory = 128u64.saturating_mul(n).saturating_mul(r);
    cost.scrypt_memory = cost.scrypt_memory.max(memory);
    let work = n
        .saturating_mul(r)
        .saturating_mul(p)
        .saturating_mul(SCRYPT_UNIT_COST);
    cost.iterations = cost.iterations.saturating_add(work);
}

fn integer_value(content: &[u8]) -> u64 {
    if content.len() > 8 {
        return u64::MAX;
    }
    content
        .iter()
        .fold(0u64, |acc, &b| (acc << 8) | u64::from(b))
}

#[cfg(test)]
mod tests {
    //! The scrypt part of the key-derivation pre-scan, on hand-built parameters. The PBKDF2
    //! part and whole files are covered by tests/inputs.rs and the fuzz regression inputs.

    use super::*;
    use crate::asn1::{encode, OID};

    /// AlgorithmIdentifier { id-scrypt, scrypt-params { salt, N, r, p } }, as in PBES2.
    fn scrypt_alg(n: u32, r: u32, p: u32) -> Vec<u8> {
        let int = |v: u32| {
            let bytes = v.to_be_bytes();
            let skip = bytes.iter().take_while(|&&b| b == 0).count().min(3);
            let mut content = bytes[skip..].to_vec();
            if content[0] & 0x80 != 0 {
                content.insert(0, 0);
            }
            encode(INTEGER, &content)
        };
        let params = [encode(OCTET_STRING, b"saltsalt"), int(n), int(r), int(p)].concat();
        encode(
            SEQUENCE,
            &[encode(OID, SCRYPT_OID), encode(SEQUENCE, &params)].concat(),
        )
    }

    fn cost_of(der: &[u8]) -> KdfCost {
        let mut cost = KdfCost::default();
        kdf_cost(der, 0, &mut MAX_SCAN_ELEMENTS.clone(), &mut cost);
        cost
    }

    #[test]
    fn scrypt_counts_n_times_r_times_p_and_its_memory() {
        // OpenSSL's default for scrypt (N=16384, r=8, p=1): 16 MiB, affordable.
        let usual = cost_of(&encode(SEQUENCE, &scrypt_alg(16384, 8, 1)));
        assert_eq!(usual.scrypt_memory, 16 << 20);
        assert_eq!(usual.iterations, 16384 * 8 * SCRYPT_UNIT_COST);
        assert!(usual.iterations <= MAX_KDF_ITERATIONS);
        // The same with p = 16: within the memory cap, over the work budget.
        let parallel = cost_of(&encode(SEQUENCE, &scrypt_alg(16384, 8, 16)));
        assert_eq!(parallel.scrypt_memory, 16 << 20);
        assert!(parallel.iterations > MAX_KDF_ITERATIONS);
        // r = 8192 with a small N: 1 GiB of memory.
        let wide = cost_of(&encode(SEQUENCE, &scrypt_alg(1024, 8192, 1)));
        assert_eq!(wide.scrypt_memory, 1 << 30);
    }

    #[test]
    fn unreadable_scrypt_parameters_count_as_unaffordable() {
        let broken = encode(
            SEQUENCE,
            &[
                encode(OID, SCRYPT_OID),
                encode(SEQUENCE, &encode(OCTET_STRING, b"salt")),
            ]
            .concat(),
        );
        let cost = cost_of(&encode(SEQUENCE, &broken));
        assert_eq!(cost.iterations, u64::MAX);
        assert_eq!(cost.scrypt_memory, u64::MAX);
    }
}

#[cfg(test)]
mod hidden_tests {
    //! The encrypted-safe decryption of the pre-scan, on files from the real `openssl pkcs12`
    //! in each certificate-safe encryption p12-keystore reads.

    use super::*;

    fn export(extra: &[&str]) -> Vec<u8> {
        let dir = tempfile::tempdir().expect("temp dir");
        let out = dir.path().join("x.p12");
        let root = env!("CARGO_MANIFEST_DIR");
        let status = std::process::Command::new("openssl")
            .args(["pkcs12", "-export", "-passout", "pass:pw", "-iter", "3000"])
            .args(["-in", &format!("{root}/testdata/example/server/cert.pem")])
            .args([
                "-inkey",
                &format!("{root}/testdata/example/server/privkey.pem"),
            ])
            .arg("-out")
            .arg(&out)
            .args(extra)
            .status()
            .expect("run openssl");
        assert!(status.success(), "openssl pkcs12 -export {extra:?}");
        std::fs::read(out).expect("read the PFX")
    }

    #[test]
    fn each_supported_safe_encryption_is_decrypted_with_the_right_password_only() {
        for extra in [
            &[][..],
            &["-certpbe", "PBE-SHA1-3DES", "-keypbe", "PBE-SHA1-3DES"][..],
            &["-legacy"][..],
        ] {
            let der = export(extra);
            let safes = encrypted_safes(&der);
            assert_eq!(safes.len(), 1, "{extra:?}: one encrypted safe");
            let (alg, ciphertext) = encrypted_content(safes[0]).expect("an EncryptedData");
            let safe_contents = |password: &str| {
                decrypt_safe(alg, ciphertext, password).is_some_and(|plain| {
                    matches!(asn1::expect(&plain, SEQUENCE), Ok((_, rest)) if rest.is_empty())
                })
            };
            assert!(safe_contents("pw"), "{extra:?}: decrypts with the password");
            assert!(
                !safe_contents("not the password"),
                "{extra:?}: not without it"
            );
            // The safe's own 3,000 iterations again; the certificate bag inside has none.
            let mut cost = KdfCost::default();
            hidden_cost(&der, "pw", &mut cost);
            assert_eq!(cost.iterations, 3000, "{extra:?}");
        }
    }
}
