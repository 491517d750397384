//! The HTTP/1.1 exchange of the policy fetch over an established TLS stream: one GET with
//! `Connection: close`, and the response read under budgets (header bytes and lines, body
//! size). Only a 200 is a policy (RFC 8461 §3.3), and only with a `text/plain` body (§3.2:
//! senders SHOULD check the media type; chainfix does); a 3xx is refused, never followed.

use std::io::{self, Read, Write};

use super::fetch::FetchError;

/// The policy's path on the policy host (RFC 8461 §3.2).
pub const POLICY_PATH: &str = "/.well-known/mta-sts.txt";
/// Largest policy body accepted: RFC 8461 §3.3 suggests a maximum policy size of 64 kilobytes.
pub const MAX_BODY: usize = 64 * 1024;
/// Most bytes of status line and header fields. RFC 9112 sets no limit; 16 KiB is twice the
/// largest header nginx and Apache accept by default (8 KiB), room for any honest response.
pub const MAX_HEADER_BYTES: usize = 16 * 1024;
/// Most header fields (Apache's `LimitRequestFields` default, 100).
pub const MAX_HEADER_LINES: usize = 100;
/// Most chunks of a chunked body: enough for 64 KiB in 64-byte chunks.
const MAX_CHUNKS: usize = 1024;

/// The request, HTTP/1.1 (RFC 9112 §3): the Host field names the policy host (and the port,
/// when not 443).
pub fn request(host: &str) -> String {
    format!(
        "GET {POLICY_PATH} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: chainfix/{}\r\n\
         Accept: text/plain\r\nConnection: close\r\n\r\n",
        env!("CARGO_PKG_VERSION")
    )
}

/// Sends the request and returns the policy body, or why there is none.
pub fn exchange<S: Read + Write>(stream: &mut S, host: &str) -> Result<Vec<u8>, FetchError> {
    stream
        .write_all(request(host).as_bytes())
        .and_then(|()| stream.flush())
        .map_err(FetchError::from_io)?;
    let mut reader = Reader::new(stream);
    let head = reader.head()?;
    if (300..400).contains(&head.status) {
        return Err(FetchError::Redirect {
            status: head.status,
            location: head.field("location").map(str::to_string),
        });
    }
    if head.status != 200 {
        return Err(FetchError::Status {
            status: head.status,
            reason: head.reason.clone(),
        });
    }
    // RFC 8461 §3.2: "senders SHOULD validate that the media type is "text/plain"".
    let content_type = head.field("content-type");
    let media = content_type.map(|v| v.split(';').next().unwrap_or("").trim());
    if !media.is_some_and(|m| m.eq_ignore_ascii_case("text/plain")) {
        return Err(FetchError::ContentType(content_type.map(str::to_string)));
    }
    let chunked = head
        .field("transfer-encoding")
        .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
    if chunked {
        reader.chunked()
    } else if let Some(len) = head.field("content-length") {
        let len: u64 = len
            .trim()
            .parse()
            .map_err(|_| FetchError::Malformed("a Content-Length that is no number"))?;
        if len > MAX_BODY as u64 {
            return Err(FetchError::TooLarge(MAX_BODY));
        }
        reader.exact(len as usize)
    } else {
        reader.until_close()
    }
}

/// The status line and header fields.
struct Head {
    status: u16,
    reason: String,
    fields: Vec<(String, String)>,
}

impl Head {
    /// The first field named `name` (lower case).
    fn field(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Buffered reading of the response with its byte budgets.
struct Reader<'a, S> {
    stream: &'a mut S,
    buf: Vec<u8>,
    /// Read position in `buf`.
    pos: usize,
    eof: bool,
}

impl<'a, S: Read> Reader<'a, S> {
    fn new(stream: &'a mut S) -> Self {
        Reader {
            stream,
            buf: Vec::with_capacity(4096),
            pos: 0,
            eof: false,
        }
    }

    /// Reads more into `buf`; false at the end of the stream. A TLS stream closed without
    /// close_notify ends the body only where the length is known (RFC 8446 §6.1: a truncation
    /// is otherwise undetectable), so the callers treat it as truncation.
    fn fill(&mut self) -> Result<bool, FetchError> {
        if self.eof {
            return Ok(false);
        }
        let mut chunk = [0u8; 8192];
        loop {
            match self.stream.read(&mut chunk) {
                Ok(0) => {
                    self.eof = true;
                    return Ok(false);
                }
                Ok(n) => {
                    self.buf.extend_from_slice(&chunk[..n]);
                    return Ok(true);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                    self.eof = true;
                    return Err(FetchError::Truncated);
                }
                Err(e) => return Err(FetchError::from_io(e)),
            }
        }
    }

    /// One line (without CRLF or LF) of at most `budget` bytes counted from `start`.
    fn line(&mut self, start: usize, budget: usize) -> Result<String, FetchError> {
        loop {
            if let Some(at) = self.buf[self.pos..].iter().position(|&b| b == b'\n') {
                let end = self.pos + at;
                let line = &self.buf[self.pos..end];
                let line = line.strip_suffix(b"\r").unwrap_or(line);
                let text = String::from_utf8_lossy(line).into_owned();
                self.pos = end + 1;
                return Ok(text);
            }
            if self.buf.len() - start > budget {
                return Err(FetchError::HeadersTooLarge);
            }
            if !self.fill()? {
                return Err(FetchError::Truncated);
            }
        }
    }

    fn head(&mut self) -> Result<Head, FetchError> {
        let status_line = self.line(0, MAX_HEADER_BYTES)?;
        let mut parts = status_line.splitn(3, ' ');
        let version = parts.next().unwrap_or("");
        if !version.starts_with("HTTP/1.") {
            return Err(FetchError::Malformed("no HTTP/1.x status line"));
        }
        let status: u16 = parts
            .next()
            .filter(|s| s.len() == 3)
            .and_then(|s| s.parse().ok())
            .ok_or(FetchError::Malformed("a status code that is not 3 digits"))?;
        let reason = parts.next().unwrap_or("").to_string();
        let mut fields = Vec::new();
        loop {
            let line = self.line(0, MAX_HEADER_BYTES)?;
            if line.is_empty() {
                break;
            }
            if fields.len() == MAX_HEADER_LINES {
                return Err(FetchError::HeadersTooLarge);
            }
            let (name, value) = line
                .split_once(':')
                .ok_or(FetchError::Malformed("a header line without a colon"))?;
            fields.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
        }
        // From here on `buf[pos..]` is body.
        self.buf.drain(..self.pos);
        self.pos = 0;
        Ok(Head {
            status,
            reason,
            fields,
        })
    }

    /// A body of `len` bytes (Content-Length).
    fn exact(&mut self, len: usize) -> Result<Vec<u8>, FetchError> {
        while self.buf.len() < len {
            if !self.fill()? {
                return Err(FetchError::Truncated);
            }
        }
        self.buf.truncate(len);
        Ok(std::mem::take(&mut self.buf))
    }

    /// A body delimited by the end of the connection (RFC 9112 §6.3, rule 8).
    fn until_close(&mut self) -> Result<Vec<u8>, FetchError> {
        loop {
            if self.buf.len() > MAX_BODY {
                return Err(FetchError::TooLarge(MAX_BODY));
            }
            if !self.fill()? {
                return Ok(std::mem::take(&mut self.buf));
            }
        }
    }

    /// A chunked body (RFC 9112 §7.1); trailer fields are read and dropped.
    fn chunked(&mut self) -> Result<Vec<u8>, FetchError> {
        let mut body = Vec::new();
        for _ in 0..MAX_CHUNKS {
            let start = self.pos;
            let size_line = self.line(start, 1024)?;
            let hex = size_line.split(';').next().unwrap_or("").trim();
            let size = usize::from_str_radix(hex, 16)
                .map_err(|_| FetchError::Malformed("a chunk size that is no hex number"))?;
            if size == 0 {
                for _ in 0..MAX_HEADER_LINES {
                    if self.line(self.pos, MAX_HEADER_BYTES)?.is_empty() {
                        return Ok(body);
                    }
                }
                return Err(FetchError::HeadersTooLarge);
            }
            if size > MAX_BODY - body.len() {
                return Err(FetchError::TooLarge(MAX_BODY));
            }
            while self.buf.len() - self.pos < size + 2 {
                if !self.fill()? {
                    return Err(FetchError::Truncated);
                }
            }
            body.extend_from_slice(&self.buf[self.pos..self.pos + size]);
            if &self.buf[self.pos + size..self.pos + size + 2] != b"\r\n" {
                return Err(FetchError::Malformed("a chunk not followed by CRLF"));
            }
            self.pos += size + 2;
        }
        Err(FetchError::Malformed("more than 1024 chunks"))
    }
}

#[cfg(test)]
mod tests {
    //! Response handling over in-memory streams; tests/mtasts.rs runs it against nginx.

    use super::*;

    /// A stream that yields `input` in `step`-byte reads and swallows writes.
    struct Canned {
        input: Vec<u8>,
        at: usize,
        step: usize,
        written: Vec<u8>,
    }

    impl Read for Canned {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = self.step.min(buf.len()).min(self.input.len() - self.at);
            buf[..n].copy_from_slice(&self.input[self.at..self.at + n]);
            self.at += n;
            Ok(n)
        }
    }

    impl Write for Canned {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.written.extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn get(response: &[u8]) -> Result<Vec<u8>, FetchError> {
        let mut s = Canned {
            input: response.to_vec(),
            at: 0,
            step: 7,
            written: Vec::new(),
        };
        let out = exchange(&mut s, "mta-sts.example.com");
        let req = String::from_utf8(s.written).expect("ascii");
        assert!(req.starts_with("GET /.well-known/mta-sts.txt HTTP/1.1\r\n"));
        assert!(req.contains("\r\nHost: mta-sts.example.com\r\n"));
        out
    }

    const POLICY: &[u8] = b"version: STSv1\r\nmode: testing\r\n";

    #[test]
    fn content_length_chunked_and_close_delimited_bodies() {
        let mut r = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\n\
                      Content-Length: 31\r\n\r\n"
            .to_vec();
        r.extend_from_slice(POLICY);
        r.extend_from_slice(b"garbage after the body");
        assert_eq!(get(&r).expect("ok"), POLICY);
        let chunked = b"HTTP/1.1 200 OK\nContent-Type: TEXT/PLAIN\nTransfer-Encoding: chunked\n\n\
                        10\r\nversion: STSv1\r\n\r\nf;x=y\r\nmode: testing\r\n\r\n0\r\nT: v\r\n\r\n";
        assert_eq!(get(chunked).expect("ok"), POLICY);
        let mut close = b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\n".to_vec();
        close.extend_from_slice(POLICY);
        assert_eq!(get(&close).expect("ok"), POLICY);
    }

    #[test]
    fn redirects_statuses_and_media_types_are_refused() {
        let r = get(b"HTTP/1.1 301 Moved\r\nLocation: https://x.example/\r\n\r\n");
        assert!(
            matches!(&r, Err(FetchError::Redirect { status: 301, location: Some(l) }) if l == "https://x.example/"),
            "{r:?}"
        );
        let r = get(b"HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\n\r\n");
        assert!(
            matches!(r, Err(FetchError::Status { status: 404, .. })),
            "{r:?}"
        );
        let r = get(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n\r\nx");
        assert!(matches!(r, Err(FetchError::ContentType(Some(_)))), "{r:?}");
        let r = get(b"HTTP/1.1 200 OK\r\n\r\nx");
        assert!(matches!(r, Err(FetchError::ContentType(None))), "{r:?}");
    }

    #[test]
    fn every_budget_is_enforced() {
        let big = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n",
            MAX_BODY + 1
        );
        assert!(matches!(get(big.as_bytes()), Err(FetchError::TooLarge(_))));
        let mut endless = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n".to_vec();
        endless.resize(endless.len() + MAX_BODY + 10, b'a');
        assert!(matches!(get(&endless), Err(FetchError::TooLarge(_))));
        let mut fields = b"HTTP/1.1 200 OK\r\n".to_vec();
        for i in 0..=MAX_HEADER_LINES {
            fields.extend_from_slice(format!("X-{i}: y\r\n").as_bytes());
        }
        fields.extend_from_slice(b"\r\n");
        assert!(matches!(get(&fields), Err(FetchError::HeadersTooLarge)));
        let mut long = b"HTTP/1.1 200 OK\r\nX: ".to_vec();
        long.resize(long.len() + MAX_HEADER_BYTES + 1, b'a');
        assert!(matches!(get(&long), Err(FetchError::HeadersTooLarge)));
        let mut chunks = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\
                           Transfer-Encoding: chunked\r\n\r\n"
            .to_vec();
        for _ in 0..=MAX_CHUNKS {
            chunks.extend_from_slice(b"1\r\na\r\n");
        }
        assert!(matches!(get(&chunks), Err(FetchError::Malformed(_))));
    }

    #[test]
    fn truncated_and_garbled_responses_are_errors() {
        let r = get(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 99\r\n\r\nab");
        assert!(matches!(r, Err(FetchError::Truncated)), "{r:?}");
        assert!(matches!(get(b"HTTP/1.1 200"), Err(FetchError::Truncated)));
        assert!(matches!(
            get(b"SSH-2.0-OpenSSH\r\n\r\n"),
            Err(FetchError::Malformed(_))
        ));
        assert!(matches!(
            get(b"HTTP/1.1 2000 OK\r\n\r\n"),
            Err(FetchError::Malformed(_))
        ));
    }
}
