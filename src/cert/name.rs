//! Distinguished names as text: the display form reports show, and the matching key chains
//! are built on. Both are unambiguous, so that a value crafted to look like more of the
//! name can neither pass for it on screen nor match it.
//!
//! * Display: the attributes in the certificate's order, `TYPE=value`, RDNs joined by `, `
//!   and the attributes of a multi-valued RDN by ` + ` (x509-parser's layout, which reports
//!   have always used), with each value escaped as RFC 4514 §2.4 says: `"`, `+`, `,`, `;`,
//!   `<`, `>` and `\` by a backslash, a leading `#` or space and a trailing space too, and
//!   control characters as `\XX`. So `CN=evil\, O=Bank` is one attribute, never two. A value
//!   that is not a string (or not valid text) is `#` and the hex of its content; a type
//!   without a short name is written dotted (§2.3).
//! * Key: RFC 5280 §7.1's comparison as OpenSSL's canonical encoding makes it
//!   (`x509_name_canon`, `asn1_string_canon` in crypto/x509/x_name.c): attribute type, and
//!   for the string types it canonicalises the value as UTF-8 with white space trimmed and
//!   collapsed and ASCII letters lower-cased; other values compare as type and bytes. RDNs are
//!   introduced by `/` and a multi-valued RDN's attributes joined by `+`; a `/`, `+`, `\` or
//!   `#` inside a value is escaped with `\`, so a CN of `a/2.5.4.10=b` cannot match the two
//!   RDNs `CN=a`, `O=b` (OpenSSL's comparison keeps them apart, so chainfix's must too).
//!   The attributes of a multi-valued RDN are sorted, as the canonical encoding of a SET is,
//!   so their order does not matter.

use x509_parser::der_parser::asn1_rs::Tag;
use x509_parser::der_parser::oid::Oid;
use x509_parser::objects::{oid2abbrev, oid_registry};
use x509_parser::x509::{AttributeTypeAndValue, X509Name};

/// The display form of `name` (see the module documentation); `(empty name)` for none.
pub fn display_name(name: &X509Name<'_>) -> String {
    let mut out = String::new();
    for (i, rdn) in name.iter_rdn().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        for (j, attr) in rdn.iter().enumerate() {
            if j > 0 {
                out.push_str(" + ");
            }
            push_type(&mut out, attr.attr_type());
            out.push('=');
            match text(attr) {
                Some(value) => push_escaped(&mut out, &value),
                None => {
                    out.push('#');
                    out.push_str(&super::hex(attr.attr_value().data));
                }
            }
        }
    }
    if out.is_empty() {
        out.push_str("(empty name)");
    }
    out
}

/// The type's short name (`CN`, `O`, ...) as x509-parser names it, else its dotted form.
fn push_type(out: &mut String, oid: &Oid<'_>) {
    match oid2abbrev(oid, oid_registry()) {
        Ok(abbrev) => out.push_str(abbrev),
        Err(_) => push_oid(out, oid),
    }
}

/// The value of a string attribute as text: the one-byte string types read as UTF-8 (as
/// x509-parser does), BMPString as UTF-16 and UniversalString as UTF-32, both big-endian.
/// `None` for another type or bytes that are not text in it.
fn text(attr: &AttributeTypeAndValue<'_>) -> Option<String> {
    let value = attr.attr_value();
    let data = value.data;
    match value.tag() {
        Tag::NumericString
        | Tag::VisibleString
        | Tag::PrintableString
        | Tag::GeneralString
        | Tag::GraphicString
        | Tag::T61String
        | Tag::VideotexString
        | Tag::Utf8String
        | Tag::Ia5String => std::str::from_utf8(data).ok().map(str::to_string),
        Tag::BmpString => utf16_be(data),
        Tag::UniversalString => utf32_be(data),
        _ => None,
    }
}

/// Appends `value` escaped as RFC 4514 §2.4 says, control characters as `\XX`.
fn push_escaped(out: &mut String, value: &str) {
    let last = value.chars().count().saturating_sub(1);
    for (i, c) in value.chars().enumerate() {
        match c {
            '"' | '+' | ',' | ';' | '<' | '>' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            '#' if i == 0 => out.push_str("\\#"),
            ' ' if i == 0 || i == last => out.push_str("\\ "),
            c if c.is_control() => {
                let mut buf = [0u8; 4];
                for b in c.encode_utf8(&mut buf).bytes() {
                    out.push('\\');
                    out.push_str(&super::hex(&[b]).to_ascii_uppercase());
                }
            }
            c => out.push(c),
        }
    }
}

/// The matching key of `name` (see the module documentation).
pub fn name_key(name: &X509Name<'_>) -> String {
    let mut key = String::new();
    for rdn in name.iter_rdn() {
        key.push('/');
        let mut attrs = rdn.iter();
        match (attrs.next(), attrs.next()) {
            (Some(attr), None) => push_attribute(&mut key, attr),
            (None, _) => {}
            // A multi-valued RDN is a SET: OpenSSL's canonical encoding sorts its members,
            // so their order does not matter; sorting their keys gives the same equality.
            _ => {
                let mut parts: Vec<String> = rdn
                    .iter()
                    .map(|attr| {
                        let mut part = String::new();
                        push_attribute(&mut part, attr);
                        part
                    })
                    .collect();
                parts.sort_unstable();
                key.push_str(&parts.join("+"));
            }
        }
    }
    key.shrink_to_fit();
    key
}

/// One attribute of a key: its type, `=`, and its value folded (or its type and bytes).
fn push_attribute(key: &mut String, attr: &AttributeTypeAndValue<'_>) {
    push_oid(key, attr.attr_type());
    key.push('=');
    let value = attr.attr_value();
    match canonical_text(value.tag(), value.data) {
        Some(text) => push_folded(key, &text),
        // Compared as the type and the bytes, as OpenSSL compares them.
        None => {
            use std::fmt::Write;
            // Writing to a String cannot fail.
            let _ = write!(key, "#{}:", value.tag().0);
            key.push_str(&super::hex(value.data));
        }
    }
}

/// The text OpenSSL's canonical name encoding (`asn1_string_canon`) compares for a value of
/// type `tag`: the string types it canonicalises (UTF8String, BMPString, UniversalString,
/// PrintableString, T61String, IA5String, VisibleString) converted to UTF-8 as
/// `ASN1_STRING_to_UTF8` does (the one-byte types as Latin-1); `None` for the other types and
/// for bytes that are not text in their type, which compare as they are.
fn canonical_text(tag: Tag, data: &[u8]) -> Option<std::borrow::Cow<'_, str>> {
    use std::borrow::Cow;
    match tag {
        _ if data.is_ascii()
            && matches!(
                tag,
                Tag::Utf8String
                    | Tag::PrintableString
                    | Tag::Ia5String
                    | Tag::VisibleString
                    | Tag::T61String
            ) =>
        {
            std::str::from_utf8(data).ok().map(Cow::Borrowed)
        }
        Tag::Utf8String => std::str::from_utf8(data).ok().map(Cow::Borrowed),
        Tag::PrintableString | Tag::Ia5String | Tag::VisibleString | Tag::T61String => {
            Some(Cow::Owned(data.iter().map(|&b| char::from(b)).collect()))
        }
        Tag::BmpString => utf16_be(data).map(Cow::Owned),
        Tag::UniversalString => utf32_be(data).map(Cow::Owned),
        _ => None,
    }
}

/// BMPString content (UTF-16, big-endian) as text; `None` if it is not.
fn utf16_be(data: &[u8]) -> Option<String> {
    if data.len() % 2 != 0 {
        return None;
    }
    let units = data
        .chunks_exact(2)
        .map(|c| u16::from_be_bytes([c[0], c[1]]));
    char::decode_utf16(units)
        .collect::<Result<String, _>>()
        .ok()
}

/// UniversalString content (UTF-32, big-endian) as text; `None` if it is not.
fn utf32_be(data: &[u8]) -> Option<String> {
    if data.len() % 4 != 0 {
        return None;
    }
    data.chunks_exact(4)
        .map(|c| char::from_u32(u32::from_be_bytes([c[0], c[1], c[2], c[3]])))
        .collect()
}

/// Appends `text` folded as `asn1_string_canon` folds it: leading and trailing white space
/// dropped, each inner run made one space, ASCII letters lower-cased (other letters keep their
/// case: OpenSSL does not fold them). White space is ASCII's (`ossl_isspace`: space, tab, LF,
/// VT, FF, CR).
fn push_folded(key: &mut String, text: &str) {
    let mut started = false;
    let mut space = false;
    for c in text.chars() {
        if matches!(c, ' ' | '\t' | '\n' | '\x0b' | '\x0c' | '\r') {
            space = started;
            continue;
        }
        if space {
            key.push(' ');
            space = false;
        }
        started = true;
        push_key_char(key, c.to_ascii_lowercase());
    }
}

/// One character of a key's value: the key's own separators escaped.
fn push_key_char(key: &mut String, c: char) {
    if matches!(c, '/' | '+' | '\\' | '#') {
        key.push('\\');
    }
    key.push(c);
}

/// Appends an OID in dotted form. The X.520 attribute types (2.5.4.n, nearly every name's)
/// are written without building a string for each.
fn push_oid(out: &mut String, oid: &Oid<'_>) {
    use std::fmt::Write;
    match oid.as_bytes() {
        // Writing to a String cannot fail.
        [0x55, 0x04, n] if *n < 0x80 => drop(write!(out, "2.5.4.{n}")),
        _ => out.push_str(&oid.to_id_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use x509_parser::prelude::{FromDer, X509Certificate};

    /// One attribute: OID bytes, string tag, value bytes.
    type Atv<'a> = (&'a [u8], u8, &'a [u8]);

    /// DER of a Name: each inner list one RDN.
    fn name_der(rdns: &[&[Atv<'_>]]) -> Vec<u8> {
        fn tlv(tag: u8, body: &[u8]) -> Vec<u8> {
            assert!(body.len() < 128, "short form only");
            let mut out = vec![tag, body.len() as u8];
            out.extend_from_slice(body);
            out
        }
        let mut seq = Vec::new();
        for rdn in rdns {
            let mut set = Vec::new();
            for (oid, tag, value) in rdn.iter() {
                let mut atv = tlv(0x06, oid);
                atv.extend(tlv(*tag, value));
                set.extend(tlv(0x30, &atv));
            }
            seq.extend(tlv(0x31, &set));
        }
        tlv(0x30, &seq)
    }

    const CN: &[u8] = &[0x55, 0x04, 0x03];
    const O: &[u8] = &[0x55, 0x04, 0x0a];
    const UTF8: u8 = 0x0c;

    fn parsed(der: &[u8]) -> X509Name<'_> {
        X509Name::from_der(der).expect("a name").1
    }

    #[test]
    fn a_value_that_looks_like_more_attributes_is_escaped_and_keyed_apart() {
        let crafted = name_der(&[&[(CN, UTF8, b"evil, O=Bank")]]);
        let two = name_der(&[&[(CN, UTF8, b"evil")], &[(O, UTF8, b"Bank")]]);
        let multi = name_der(&[&[(CN, UTF8, b"evil"), (O, UTF8, b"Bank")]]);
        assert_eq!(display_name(&parsed(&crafted)), "CN=evil\\, O=Bank");
        assert_eq!(display_name(&parsed(&two)), "CN=evil, O=Bank");
        assert_eq!(display_name(&parsed(&multi)), "CN=evil + O=Bank");
        let keyed = name_der(&[&[(CN, UTF8, b"a/2.5.4.10=b")]]);
        let apart = name_der(&[&[(CN, UTF8, b"a")], &[(O, UTF8, b"b")]]);
        let plus = name_der(&[&[(CN, UTF8, b"a+2.5.4.10=b")]]);
        let together = name_der(&[&[(CN, UTF8, b"a"), (O, UTF8, b"b")]]);
        assert_ne!(name_key(&parsed(&keyed)), name_key(&parsed(&apart)));
        assert_ne!(name_key(&parsed(&plus)), name_key(&parsed(&together)));
        assert_eq!(name_key(&parsed(&apart)), "/2.5.4.3=a/2.5.4.10=b");
    }

    #[test]
    fn keys_compare_as_openssl_canonical_encoding_compares() {
        let key = |der: Vec<u8>| name_key(&parsed(&der));
        let utf8 = key(name_der(&[&[(CN, UTF8, b"example ca")]]));
        // PrintableString, case and white space: the same name.
        assert_eq!(key(name_der(&[&[(CN, 0x13, b"  Example \t CA ")]])), utf8);
        // BMPString "ABC" and UTF8String "abc"; T61String's Latin-1 0xE9 and UTF-8 "é".
        assert_eq!(
            key(name_der(&[&[(CN, 0x1e, b"\x00A\x00B\x00C")]])),
            key(name_der(&[&[(CN, UTF8, b"abc")]]))
        );
        assert_eq!(
            key(name_der(&[&[(CN, 0x14, b"\xe9")]])),
            key(name_der(&[&[(CN, UTF8, "é".as_bytes())]]))
        );
        // OpenSSL folds ASCII letters only, and ASCII white space only.
        assert_ne!(
            key(name_der(&[&[(CN, UTF8, "É".as_bytes())]])),
            key(name_der(&[&[(CN, UTF8, "é".as_bytes())]]))
        );
        assert_ne!(
            key(name_der(&[&[(CN, UTF8, "a\u{a0}b".as_bytes())]])),
            key(name_der(&[&[(CN, UTF8, b"a b")]]))
        );
        // A multi-valued RDN is a set: its order does not matter, its members do.
        assert_eq!(
            key(name_der(&[&[(CN, UTF8, b"a"), (O, UTF8, b"b")]])),
            key(name_der(&[&[(O, UTF8, b"B"), (CN, UTF8, b"a")]]))
        );
        assert_ne!(
            key(name_der(&[&[(CN, UTF8, b"a"), (O, UTF8, b"b")]])),
            key(name_der(&[&[(CN, UTF8, b"a"), (O, UTF8, b"c")]]))
        );
        // A value of another type compares as type and bytes, never as some text.
        let octets = key(name_der(&[&[(CN, 0x04, b"ab")]]));
        assert_eq!(octets, "/2.5.4.3=#4:6162");
        assert_ne!(octets, key(name_der(&[&[(CN, UTF8, b"#4:6162")]])));
    }

    #[test]
    fn edges_controls_and_non_strings_are_shown_unambiguously() {
        let edges = name_der(&[&[(CN, UTF8, b"#x ")], &[(O, UTF8, b" a\x1bb\"")]]);
        assert_eq!(display_name(&parsed(&edges)), "CN=\\#x\\ , O=\\ a\\1Bb\\\"");
        // An OCTET STRING value, and a UTF8String that is not UTF-8: hex, never text.
        let octets = name_der(&[&[(CN, 0x04, b"ab")], &[(O, UTF8, b"\xff")]]);
        assert_eq!(display_name(&parsed(&octets)), "CN=#6162, O=#ff");
        // BMPString and UniversalString are decoded.
        let wide = name_der(&[&[(CN, 0x1e, b"\x00h\x00i")], &[(O, 0x1c, b"\x00\x00\x00o")]]);
        assert_eq!(display_name(&parsed(&wide)), "CN=hi, O=o");
        assert_eq!(display_name(&parsed(&name_der(&[]))), "(empty name)");
    }

    #[test]
    fn attribute_types_are_written_as_the_oid_crate_writes_them() {
        for n in 0..=255u8 {
            for bytes in [
                vec![0x55, 0x04, n],
                vec![0x55, 0x04, n, 0x01],
                vec![0x2a, n],
            ] {
                let oid = Oid::new(std::borrow::Cow::Borrowed(&bytes));
                let mut written = String::new();
                push_oid(&mut written, &oid);
                assert_eq!(written, oid.to_id_string(), "{bytes:02x?}");
            }
        }
    }

    #[test]
    fn plain_names_read_as_x509_parser_shows_them() {
        let mut checked = 0;
        for der in webpki_root_certs::TLS_SERVER_ROOT_CERTS.iter() {
            let (_, x) = X509Certificate::from_der(der.as_ref()).expect("parses");
            let plain = x.subject().iter_attributes().all(|a| {
                text(a).is_some_and(|v| {
                    !v.contains(['"', '+', ',', ';', '<', '>', '\\'])
                        && !v.starts_with(['#', ' '])
                        && !v.ends_with(' ')
                        && !v.contains(char::is_control)
                })
            });
            if plain {
                // x509-parser writes a type it has no short name for as `OID(2.5.4.97)`;
                // RFC 4514 §2.3 and chainfix write it dotted.
                let theirs = x.subject().to_string();
                let theirs = theirs.replace("OID(", "").replace(")=", "=");
                assert_eq!(display_name(x.subject()), theirs);
                checked += 1;
            }
        }
        assert!(checked > 50, "only {checked} plain names");
    }
}
