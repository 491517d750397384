//! PEM armour: finds every `-----BEGIN X-----` block in a file, tolerating CRLF, junk between
//! blocks and other block types, and decodes each block on its own so that one damaged block
//! does not hide the others (the `pem` crate parses a whole file or nothing).

/// One armoured block, decoded or not.
#[derive(Debug)]
pub struct Block {
    pub label: String,
    /// 1-based line of the BEGIN line, for error messages.
    pub line: usize,
    /// The decoded bytes, or why they could not be decoded.
    pub der: Result<Vec<u8>, String>,
    /// RFC 1421 `Proc-Type: 4,ENCRYPTED` header (legacy OpenSSL encrypted keys).
    pub encrypted: bool,
}

/// Whether the data contains PEM armour at all.
pub fn looks_like_pem(data: &[u8]) -> bool {
    memchr::memmem::find(data, b"-----BEGIN ").is_some()
}

/// The lines of `data`, as `data.split(|&b| b == b'\n')` gives them (the part after the last
/// newline included, even when empty), found with memchr.
fn lines(data: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = Some(data);
    std::iter::from_fn(move || {
        let text = rest?;
        match memchr::memchr(b'\n', text) {
            Some(end) => {
                rest = Some(&text[end + 1..]);
                Some(&text[..end])
            }
            None => {
                rest = None;
                Some(text)
            }
        }
    })
}

/// Splits `data` into PEM blocks. Lines outside blocks are ignored.
pub fn blocks(data: &[u8]) -> Vec<Block> {
    let mut out = Vec::new();
    let mut current: Option<(String, usize, usize)> = None; // label, line, byte start
    let mut offset = 0;
    for (i, raw_line) in lines(data).enumerate() {
        let start = offset;
        offset += raw_line.len() + 1;
        let line = trim(raw_line);
        // Windows editors start files with a UTF-8 byte order mark.
        let line = line.strip_prefix(b"\xef\xbb\xbf").unwrap_or(line);
        if let Some(label) = marker(line, b"-----BEGIN ") {
            if let Some((open, at, _)) = current.take() {
                out.push(truncated(open, at));
            }
            current = Some((label, i + 1, start));
        } else if let Some(label) = marker(line, b"-----END ") {
            match current.take() {
                Some((open, at, begin)) if open == label => {
                    let end = offset.min(data.len());
                    out.push(decode(open, at, &data[begin..end]));
                }
                Some((open, at, _)) => out.push(Block {
                    label: open.clone(),
                    line: at,
                    der: Err(format!("BEGIN {open} closed by END {label}")),
                    encrypted: false,
                }),
                None => {}
            }
        }
    }
    if let Some((open, at, _)) = current {
        out.push(truncated(open, at));
    }
    out
}

fn truncated(label: String, line: usize) -> Block {
    Block {
        label,
        line,
        der: Err("truncated: no END line".to_string()),
        encrypted: false,
    }
}

fn decode(label: String, line: usize, text: &[u8]) -> Block {
    if let Some(der) = decode_plain(text) {
        return Block {
            label,
            line,
            der: Ok(der),
            encrypted: false,
        };
    }
    match ::pem::parse(text) {
        Ok(p) => {
            let encrypted = p
                .headers()
                .get("Proc-Type")
                .is_some_and(|v| v.contains("ENCRYPTED"));
            Block {
                label,
                line,
                der: Ok(p.into_contents()),
                encrypted,
            }
        }
        Err(e) => Block {
            label,
            line,
            der: Err(format!("bad base64 or armour: {e}")),
            encrypted: false,
        },
    }
}

/// The fast path for the common block, BEGIN line, base64 lines, END line and nothing else:
/// each line decoded straight into the output. `None` for anything else (headers, a blank
/// line, lines not made of whole 4-character groups, padding before the last line, bad
/// base64), which the `pem` crate then parses, or explains.
fn decode_plain(text: &[u8]) -> Option<Vec<u8>> {
    use base64::Engine;
    let mut lines = lines(text).map(trim);
    // The BEGIN line.
    lines.next()?;
    // Never less than the decoded size: every 4 characters of the text give at most 3 bytes.
    let mut der = vec![0; text.len() / 4 * 3 + 3];
    let mut len = 0;
    let mut padded = false;
    while let Some(line) = lines.next() {
        if line.starts_with(b"-----END ") {
            // The END line that closed the block is its last line.
            if lines.any(|l| !l.is_empty()) {
                return None;
            }
            der.truncate(len);
            return Some(der);
        }
        // Lines of whole groups, padded only at the end, decode to the same bytes one by one
        // as joined together.
        if padded || line.is_empty() || line.len() % 4 != 0 {
            return None;
        }
        padded = line.ends_with(b"=");
        len += base64::engine::general_purpose::STANDARD
            .decode_slice(line, &mut der[len..])
            .ok()?;
    }
    None
}

fn trim(line: &[u8]) -> &[u8] {
    let end = line
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(0, |p| p + 1);
    let start = line
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(end);
    &line[start..end]
}

fn marker(line: &[u8], prefix: &[u8]) -> Option<String> {
    let rest = line.strip_prefix(prefix)?.strip_suffix(b"-----")?;
    let label = std::str::from_utf8(rest).ok()?;
    (!label.is_empty() && label.len() < 64).then(|| label.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const B64: &str = "MAMCAQE="; // SEQUENCE { INTEGER 1 }

    #[test]
    fn crlf_and_junk_between_blocks() {
        let text = format!(
            "junk\r\n-----BEGIN CERTIFICATE-----\r\n{B64}\r\n-----END CERTIFICATE-----\r\nmore junk\n\
             -----BEGIN PRIVATE KEY-----\n{B64}\n-----END PRIVATE KEY-----\n"
        );
        let b = blocks(text.as_bytes());
        assert_eq!(b.len(), 2);
        assert_eq!(b[0].label, "CERTIFICATE");
        assert_eq!(b[0].der.as_deref().ok(), Some(&[0x30, 3, 2, 1, 1][..]));
        assert_eq!(b[1].label, "PRIVATE KEY");
        assert_eq!(b[1].line, 6);
    }

    #[test]
    fn truncated_block_is_reported_and_others_kept() {
        let text = format!(
            "-----BEGIN CERTIFICATE-----\n{B64}\n-----END CERTIFICATE-----\n-----BEGIN CERTIFICATE-----\nMAMC"
        );
        let b = blocks(text.as_bytes());
        assert_eq!(b.len(), 2);
        assert!(b[0].der.is_ok());
        assert_eq!(
            b[1].der.as_ref().err().map(String::as_str),
            Some("truncated: no END line")
        );
    }

    /// The fast path decodes exactly what the `pem` crate decodes, and leaves blocks with
    /// headers (an encrypted key) to it.
    #[test]
    fn plain_blocks_decode_as_the_pem_crate_does() {
        let mut plain = 0;
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata");
        let mut todo = vec![dir];
        while let Some(d) = todo.pop() {
            for e in std::fs::read_dir(&d).expect("testdata") {
                let path = e.expect("entry").path();
                if path.is_dir() {
                    todo.push(path);
                    continue;
                }
                let data = std::fs::read(&path).expect("read");
                if !looks_like_pem(&data) {
                    continue;
                }
                for text in ::pem::parse_many(&data).unwrap_or_default() {
                    let armoured = ::pem::encode(&text);
                    let fast = decode_plain(armoured.as_bytes());
                    if let Some(der) = fast {
                        assert_eq!(der, text.contents(), "{}", path.display());
                        plain += 1;
                    }
                }
            }
        }
        assert!(plain > 10, "only {plain} plain blocks in testdata");
        let wrapped =
            format!("-----BEGIN CERTIFICATE-----\n  {B64}  \r\n-----END CERTIFICATE-----\n");
        assert_eq!(
            decode_plain(wrapped.as_bytes()).as_deref(),
            Some(&[0x30, 3, 2, 1, 1][..])
        );
        let headers = format!(
            "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\n\n{B64}\n-----END RSA PRIVATE KEY-----\n"
        );
        assert_eq!(decode_plain(headers.as_bytes()), None);
        // What the pem crate refuses goes to it, to be refused with its reason.
        for odd in [
            "-----BEGIN CERTIFICATE-----\nQUJD\n\nREVG\n-----END CERTIFICATE-----\n",
            "-----BEGIN CERTIFICATE-----\nQUJD\n-----END CERT\nREVG\n-----END CERTIFICATE-----\n",
            "-----BEGIN CERTIFICATE-----\nQUI=\nREVG\n-----END CERTIFICATE-----\n",
        ] {
            assert_eq!(decode_plain(odd.as_bytes()), None, "{odd}");
            assert!(::pem::parse(odd).is_err(), "{odd}");
        }
        // Wrapped at odd places: the slow way, to the same bytes.
        let odd = "-----BEGIN CERTIFICATE-----\nQUJ\nDREVG\n-----END CERTIFICATE-----\n";
        assert_eq!(decode_plain(odd.as_bytes()), None);
        assert_eq!(blocks(odd.as_bytes())[0].der.as_deref(), Ok(&b"ABCDEF"[..]));
        let b = blocks(headers.as_bytes());
        assert!(b[0].encrypted);
    }

    #[test]
    fn lines_are_split_as_the_slice_split_does() {
        for text in ["", "\n", "a", "a\n", "a\nb", "a\r\n\nb\n\n"] {
            let by_split: Vec<_> = text.as_bytes().split(|&b| b == b'\n').collect();
            assert_eq!(
                lines(text.as_bytes()).collect::<Vec<_>>(),
                by_split,
                "{text:?}"
            );
        }
    }

    #[test]
    fn bad_base64_is_an_error() {
        let b = blocks(b"-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n");
        assert!(b[0].der.is_err());
    }
}
