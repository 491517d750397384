//! PKCS#7 / CMS "certs-only" SignedData (RFC 5652 §5.1), as `.p7b`/`.p7c` files and AIA
//! endpoints serve it: we only pull the exact certificate bytes out of the `certificates` set.
//! The set is a SET OF, so its order means nothing; chain building orders it.

use crate::asn1::{self, Asn1Error, INTEGER, OID, SEQUENCE, SET};

/// DER of OID 1.2.840.113549.1.7.2 (signedData).
const SIGNED_DATA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x02];

#[derive(Debug, thiserror::Error)]
pub enum Pkcs7Error {
    #[error("not a PKCS#7 SignedData structure")]
    NotSignedData,
    #[error("damaged PKCS#7: {0}")]
    Asn1(#[from] Asn1Error),
    #[error("PKCS#7 holds more than {0} certificates")]
    TooMany(usize),
}

/// Whether `der` starts like a ContentInfo carrying signedData.
pub fn looks_like_pkcs7(der: &[u8]) -> bool {
    content_info(der).is_ok()
}

fn content_info(der: &[u8]) -> Result<&[u8], Pkcs7Error> {
    let (ci, _) = asn1::expect(der, SEQUENCE)?;
    let mut parts = asn1::children(ci.content);
    let oid = parts.next().ok_or(Pkcs7Error::NotSignedData)??;
    if oid.tag != OID || oid.content != SIGNED_DATA {
        return Err(Pkcs7Error::NotSignedData);
    }
    let explicit = parts.next().ok_or(Pkcs7Error::NotSignedData)??;
    if explicit.tag != 0xa0 {
        return Err(Pkcs7Error::NotSignedData);
    }
    Ok(explicit.content)
}

/// The raw DER of every certificate in the SignedData, at most `limit` of them.
pub fn certificates(der: &[u8], limit: usize) -> Result<Vec<&[u8]>, Pkcs7Error> {
    let inner = content_info(der)?;
    let (signed, _) = asn1::expect(inner, SEQUENCE)?;
    let mut fields = asn1::children(signed.content);
    let version = fields.next().ok_or(Pkcs7Error::NotSignedData)??;
    if version.tag != INTEGER {
        return Err(Pkcs7Error::NotSignedData);
    }
    let digests = fields.next().ok_or(Pkcs7Error::NotSignedData)??;
    if digests.tag != SET {
        return Err(Pkcs7Error::NotSignedData);
    }
    let _encap = fields.next().ok_or(Pkcs7Error::NotSignedData)??;
    let mut out = Vec::new();
    for field in fields {
        let field = field?;
        if field.tag != 0xa0 {
            continue; // [1] crls, signerInfos
        }
        for choice in asn1::children(field.content) {
            let choice = choice?;
            if choice.tag == SEQUENCE {
                if out.len() == limit {
                    return Err(Pkcs7Error::TooMany(limit));
                }
                out.push(choice.raw);
            }
        }
    }
    Ok(out)
}
