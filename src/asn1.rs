//! A minimal, bounds-checked DER/BER TLV reader for the few container formats the loaders
//! unwrap themselves (PKCS#7 certs-only, PKCS#8/PKCS#1/SEC1 keys, PKCS#12 sniffing).
//!
//! Certificates themselves are never decoded here; we only find their exact bytes, so a
//! certificate pulled out of a PKCS#7 is byte-identical (same fingerprint) to the one served
//! alone. BER indefinite lengths are accepted because some signers emit them (the `cms` crate
//! refuses them, see `../shared/notes/crates.md`). Nesting is capped by [`MAX_NESTING`].

/// Deepest nesting followed when skipping indefinite-length content. Real PKCS#7 needs < 10.
pub const MAX_NESTING: usize = 32;

pub const SEQUENCE: u8 = 0x30;
pub const SET: u8 = 0x31;
pub const INTEGER: u8 = 0x02;
pub const OCTET_STRING: u8 = 0x04;
pub const BIT_STRING: u8 = 0x03;
pub const OID: u8 = 0x06;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Asn1Error {
    #[error("truncated ASN.1 data")]
    Truncated,
    #[error("unsupported ASN.1 length")]
    BadLength,
    #[error("ASN.1 nested too deeply")]
    TooDeep,
    #[error("unexpected ASN.1 tag {0:#04x}")]
    UnexpectedTag(u8),
}

/// One tag-length-value element.
#[derive(Debug, Clone, Copy)]
pub struct Tlv<'a> {
    pub tag: u8,
    /// The value bytes (for indefinite lengths: without the end-of-contents octets).
    pub content: &'a [u8],
    /// The whole element including header (and end-of-contents octets).
    pub raw: &'a [u8],
}

/// Reads one element from the front of `input`; returns it and the bytes after it.
pub fn read(input: &[u8]) -> Result<(Tlv<'_>, &[u8]), Asn1Error> {
    read_nested(input, 0)
}

/// Reads one element and checks its tag.
pub fn expect(input: &[u8], tag: u8) -> Result<(Tlv<'_>, &[u8]), Asn1Error> {
    let (tlv, rest) = read(input)?;
    if tlv.tag != tag {
        return Err(Asn1Error::UnexpectedTag(tlv.tag));
    }
    Ok((tlv, rest))
}

fn read_nested(input: &[u8], depth: usize) -> Result<(Tlv<'_>, &[u8]), Asn1Error> {
    if depth > MAX_NESTING {
        return Err(Asn1Error::TooDeep);
    }
    let (&tag, after_tag) = input.split_first().ok_or(Asn1Error::Truncated)?;
    if tag & 0x1f == 0x1f {
        // High tag numbers never occur in the structures we read.
        return Err(Asn1Error::UnexpectedTag(tag));
    }
    let (&first, after_len) = after_tag.split_first().ok_or(Asn1Error::Truncated)?;
    if first == 0x80 {
        if tag & 0x20 == 0 {
            return Err(Asn1Error::BadLength);
        }
        let mut rest = after_len;
        loop {
            if rest.starts_with(&[0, 0]) {
                let content_len = after_len.len() - rest.len();
                let total = input.len() - rest.len() + 2;
                return Ok((
                    Tlv {
                        tag,
                        content: &after_len[..content_len],
                        raw: &input[..total],
                    },
                    &rest[2..],
                ));
            }
            let (_, next) = read_nested(rest, depth + 1)?;
            rest = next;
        }
    }
    let (len, body) = if first < 0x80 {
        (first as usize, after_len)
    } else {
        let n = (first & 0x7f) as usize;
        if n == 0 || n > 4 || after_len.len() < n {
            return Err(if after_len.len() < n {
                Asn1Error::Truncated
            } else {
                Asn1Error::BadLength
            });
        }
        let len = after_len[..n]
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | b as usize);
        (len, &after_len[n..])
    };
    if body.len() < len {
        return Err(Asn1Error::Truncated);
    }
    let header = input.len() - body.len();
    Ok((
        Tlv {
            tag,
            content: &body[..len],
            raw: &input[..header + len],
        },
        &body[len..],
    ))
}

/// Encodes one DER element (definite length).
pub fn encode(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|&&b| b == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
    out.extend_from_slice(content);
    out
}

/// Iterates over the elements inside a constructed value.
pub fn children(content: &[u8]) -> Children<'_> {
    Children { rest: content }
}

pub struct Children<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for Children<'a> {
    type Item = Result<Tlv<'a>, Asn1Error>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        match read(self.rest) {
            Ok((tlv, rest)) => {
                self.rest = rest;
                Some(Ok(tlv))
            }
            Err(e) => {
                self.rest = &[];
                Some(Err(e))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn definite_short_and_long() {
        let (t, rest) = read(&[0x30, 0x02, 0x05, 0x00, 0xff]).expect("short");
        assert_eq!(
            (t.tag, t.content, rest),
            (0x30, &[5u8, 0][..], &[0xffu8][..])
        );
        let mut long = vec![0x04, 0x81, 0x80];
        long.extend(std::iter::repeat_n(7u8, 0x80));
        let (t, rest) = read(&long).expect("long");
        assert_eq!((t.content.len(), rest.len()), (0x80, 0));
    }

    #[test]
    fn indefinite_length_is_followed() {
        let data = [0x30, 0x80, 0x02, 0x01, 0x05, 0x00, 0x00, 0x01];
        let (t, rest) = read(&data).expect("indefinite");
        assert_eq!(t.content, &[0x02, 0x01, 0x05]);
        assert_eq!(t.raw.len(), 7);
        assert_eq!(rest, &[0x01]);
    }

    #[test]
    fn truncated_and_oversized_lengths_are_errors() {
        assert_eq!(read(&[0x30, 0x05, 0x00]).err(), Some(Asn1Error::Truncated));
        assert_eq!(read(&[0x30]).err(), Some(Asn1Error::Truncated));
        assert_eq!(
            read(&[0x30, 0x85, 1, 1, 1, 1, 1]).err(),
            Some(Asn1Error::BadLength)
        );
        assert_eq!(
            read(&[0x30, 0x80, 0x30, 0x80]).err(),
            Some(Asn1Error::Truncated)
        );
    }

    #[test]
    fn encode_round_trips() {
        for len in [0usize, 5, 127, 128, 255, 256, 70_000] {
            let content = vec![7u8; len];
            let der = encode(OCTET_STRING, &content);
            let (t, rest) = read(&der).expect("read back");
            assert_eq!((t.tag, t.content.len(), rest.len()), (OCTET_STRING, len, 0));
        }
    }

    #[test]
    fn nesting_is_capped() {
        let mut deep = Vec::new();
        for _ in 0..100 {
            deep.extend_from_slice(&[0x30, 0x80]);
        }
        assert_eq!(read(&deep).err(), Some(Asn1Error::TooDeep));
    }
}
