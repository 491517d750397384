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
pub fn open(der: &[u8], path: &Path, pw: &dyn PasswordSource) -> Result<Pkcs12Archive, PfxError> {
    let work = kdf_iterations(der, 0, &mut MAX_SCAN_ELEMENTS.clone());
    if work > MAX_KDF_ITERATIONS {
        return Err(PfxError::TooExpensive(work));
    }
    if let Some(password) = pw.configured() {
        return decode(der, &password);
    }
    match decode(der, "") {
        Err(PfxError::WrongPassword) => match pw.prompt(path) {
            Some(password) => decode(der, &password),
            None => Err(PfxError::PasswordRequired),
        },
        other => other,
    }
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

/// Sums the iteration counts in the file's visible KDF parameters: every INTEGER that directly
/// follows an OCTET STRING salt in a SEQUENCE (pkcs-12PbeParams, PBKDF2-params, MacData),
/// looking into OCTET STRINGs that wrap DER (the authenticated safe and its bags).
fn kdf_iterations(data: &[u8], depth: usize, budget: &mut usize) -> u64 {
    if depth > asn1::MAX_NESTING {
        return 0;
    }
    let mut total: u64 = 0;
    let mut after_salt = false;
    for child in asn1::children(data) {
        let Ok(t) = child else { break };
        if *budget == 0 {
            break;
        }
        *budget -= 1;
        if after_salt && t.tag == INTEGER {
            total = total.saturating_add(integer_value(t.content));
        }
        after_salt = t.tag == OCTET_STRING;
        let nested = match t.tag {
            OCTET_STRING => t.content.first() == Some(&SEQUENCE),
            tag => tag & 0x20 != 0,
        };
        if nested {
            total = total.saturating_add(kdf_iterations(t.content, depth + 1, budget));
        }
    }
    total
}

fn integer_value(content: &[u8]) -> u64 {
    if content.len() > 8 {
        return u64::MAX;
    }
    content
        .iter()
        .fold(0u64, |acc, &b| (acc << 8) | u64::from(b))
}
