//! Probe stage, SMTP: just enough of RFC 5321 and RFC 3207 to reach STARTTLS. Read the
//! greeting, EHLO, STARTTLS; on any failure, QUIT politely. Never MAIL FROM: a probe must not
//! look like a delivery attempt.
//!
//! Replies are read a byte at a time so nothing past the `220` to STARTTLS is consumed before
//! the TLS handshake starts. Every reply is bounded (line length, line count).

use std::io::{Read, Write};

/// Longest reply line accepted (RFC 5321 §4.5.3.1.5 allows 512 octets; servers exceed it).
const MAX_LINE: usize = 4096;
/// Most lines in one multi-line reply (an EHLO reply has one per extension).
const MAX_LINES: usize = 100;

/// One SMTP reply: the code and the text of each line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub code: u16,
    pub lines: Vec<String>,
}

impl Reply {
    pub fn text(&self) -> String {
        self.lines.join(" / ")
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SmtpError {
    #[error("the server greeted with {code} {text}")]
    Greeting { code: u16, text: String },
    #[error("the server does not speak SMTP; it sent {0:?}")]
    Garbage(String),
    #[error("the server does not offer STARTTLS")]
    NoStartTls,
    #[error("the server refused EHLO with {code} {text}")]
    EhloRefused { code: u16, text: String },
    #[error("the server refused STARTTLS with {code} {text}")]
    StartTlsRefused { code: u16, text: String },
    #[error("timed out waiting for the server's {0}")]
    Timeout(&'static str),
    #[error("the server closed the connection before its {0}")]
    Closed(&'static str),
    #[error("{0}")]
    Io(String),
}

/// Reads the greeting, says EHLO, and asks for STARTTLS. On success the stream is ready for
/// the TLS handshake; returns the EHLO extension lines. On failure it has said QUIT already.
pub fn starttls<S: Read + Write>(stream: &mut S, helo: &str) -> Result<Vec<String>, SmtpError> {
    let result = negotiate(stream, helo);
    if matches!(
        result,
        Err(SmtpError::NoStartTls
            | SmtpError::EhloRefused { .. }
            | SmtpError::StartTlsRefused { .. }
            | SmtpError::Greeting { .. })
    ) {
        quit(stream);
    }
    result
}

fn negotiate<S: Read + Write>(stream: &mut S, helo: &str) -> Result<Vec<String>, SmtpError> {
    let greeting = read_reply(stream, "greeting")?;
    if greeting.code != 220 {
        return Err(SmtpError::Greeting {
            code: greeting.code,
            text: greeting.text(),
        });
    }
    send(stream, &format!("EHLO {helo}\r\n"))?;
    let ehlo = read_reply(stream, "EHLO reply")?;
    if ehlo.code != 250 {
        return Err(SmtpError::EhloRefused {
            code: ehlo.code,
            text: ehlo.text(),
        });
    }
    // The first line is the server's name; the rest are extensions.
    let extensions: Vec<String> = ehlo.lines.iter().skip(1).cloned().collect();
    let offers = extensions.iter().any(|l| {
        l.split_whitespace()
            .next()
            .is_some_and(|k| k.eq_ignore_ascii_case("STARTTLS"))
    });
    if !offers {
        return Err(SmtpError::NoStartTls);
    }
    send(stream, "STARTTLS\r\n")?;
    let reply = read_reply(stream, "STARTTLS reply")?;
    if reply.code != 220 {
        return Err(SmtpError::StartTlsRefused {
            code: reply.code,
            text: reply.text(),
        });
    }
    Ok(extensions)
}

/// Says QUIT and waits briefly for the answer; errors are ignored (the session is ending).
pub fn quit<S: Read + Write>(stream: &mut S) {
    if send(stream, "QUIT\r\n").is_ok() {
        let _ = read_reply(stream, "QUIT reply");
    }
}

fn send<S: Write>(stream: &mut S, line: &str) -> Result<(), SmtpError> {
    stream
        .write_all(line.as_bytes())
        .and_then(|_| stream.flush())
        .map_err(|e| io_error(e, "reply"))
}

/// Reads one (possibly multi-line) reply: `250-a`, `250-b`, `250 c`.
pub fn read_reply<R: Read>(r: &mut R, what: &'static str) -> Result<Reply, SmtpError> {
    let mut lines = Vec::new();
    loop {
        let line = read_line(r, what)?;
        let (code, last, text) = parse_line(&line)?;
        lines.push(text.to_string());
        if last {
            return Ok(Reply { code, lines });
        }
        if lines.len() >= MAX_LINES {
            return Err(SmtpError::Garbage(format!(
                "more than {MAX_LINES} reply lines"
            )));
        }
    }
}

/// `NNN text` (last line) or `NNN-text` (more follow).
fn parse_line(line: &str) -> Result<(u16, bool, &str), SmtpError> {
    let bytes = line.as_bytes();
    let digits = bytes.len() >= 3 && bytes[..3].iter().all(u8::is_ascii_digit);
    let sep = bytes.get(3).copied();
    if !digits || !matches!(sep, None | Some(b' ') | Some(b'-')) {
        return Err(SmtpError::Garbage(printable(line)));
    }
    let code = line[..3]
        .parse()
        .map_err(|_| SmtpError::Garbage(printable(line)))?;
    let text = line.get(4..).unwrap_or("");
    Ok((code, sep != Some(b'-'), text))
}

fn read_line<R: Read>(r: &mut R, what: &'static str) -> Result<String, SmtpError> {
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    loop {
        match r.read(&mut byte) {
            Ok(0) if line.is_empty() => return Err(SmtpError::Closed(what)),
            Ok(0) => break,
            Ok(_) if byte[0] == b'\n' => break,
            Ok(_) => {
                line.push(byte[0]);
                // A reply starts with three digits and a space or dash (RFC 5321 §4.2): say
                // so at the first wrong byte rather than wait for a line end that may never come.
                if !reply_prefix_ok(&line) {
                    // Quote what the server sent: one more read takes what has already
                    // arrived (a banner comes in one segment) without waiting for a line end.
                    let mut more = [0u8; 59];
                    if let Ok(n) = r.read(&mut more) {
                        line.extend_from_slice(&more[..n]);
                    }
                    let shown = line.split(|&b| b == b'\n').next().unwrap_or_default();
                    return Err(SmtpError::Garbage(printable(&String::from_utf8_lossy(
                        shown,
                    ))));
                }
                if line.len() > MAX_LINE {
                    return Err(SmtpError::Garbage(printable(&String::from_utf8_lossy(
                        &line,
                    ))));
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(io_error(e, what)),
        }
    }
    if line.last() == Some(&b'\r') {
        line.pop();
    }
    Ok(String::from_utf8_lossy(&line).into_owned())
}

/// Whether `line` (so far) can still be the start of `NNN `, `NNN-` or `NNN\r`.
fn reply_prefix_ok(line: &[u8]) -> bool {
    line.iter().enumerate().take(4).all(|(i, &b)| match i {
        0..=2 => b.is_ascii_digit(),
        _ => matches!(b, b' ' | b'-' | b'\r'),
    })
}

fn io_error(e: std::io::Error, what: &'static str) -> SmtpError {
    match e.kind() {
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => SmtpError::Timeout(what),
        std::io::ErrorKind::UnexpectedEof
        | std::io::ErrorKind::ConnectionReset
        | std::io::ErrorKind::ConnectionAborted
        | std::io::ErrorKind::BrokenPipe => SmtpError::Closed(what),
        _ => SmtpError::Io(e.to_string()),
    }
}

/// At most 60 characters, control characters escaped: safe to print whatever a server sent.
fn printable(s: &str) -> String {
    s.chars()
        .take(60)
        .flat_map(|c| {
            if c.is_control() {
                c.escape_default().collect::<Vec<_>>()
            } else {
                vec![c]
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A scripted peer: reads come from `input`, writes are recorded.
    struct Peer {
        input: std::io::Cursor<Vec<u8>>,
        sent: Vec<u8>,
    }

    impl Peer {
        fn new(script: &str) -> Peer {
            Peer {
                input: std::io::Cursor::new(script.as_bytes().to_vec()),
                sent: Vec::new(),
            }
        }
        fn sent(&self) -> String {
            String::from_utf8_lossy(&self.sent).into_owned()
        }
    }

    impl Read for Peer {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            self.input.read(buf)
        }
    }

    impl Write for Peer {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.sent.extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn starttls_offered_and_accepted_without_mail_from() {
        let mut p = Peer::new(
            "220 mx ESMTP\r\n250-mx\r\n250-PIPELINING\r\n250-STARTTLS\r\n250 8BITMIME\r\n220 2.0.0 Ready\r\n",
        );
        let ext = starttls(&mut p, "probe.example").expect("starttls");
        assert!(ext.contains(&"STARTTLS".to_string()));
        assert_eq!(p.sent(), "EHLO probe.example\r\nSTARTTLS\r\n");
        assert!(!p.sent().contains("MAIL FROM"));
    }

    #[test]
    fn no_starttls_is_reported_and_quit_is_sent() {
        let mut p = Peer::new("220 mx ESMTP\r\n250-mx\r\n250 SIZE 1000\r\n221 bye\r\n");
        assert_eq!(starttls(&mut p, "h"), Err(SmtpError::NoStartTls));
        assert!(p.sent().ends_with("QUIT\r\n"));
    }

    #[test]
    fn rejecting_greeting_is_reported_with_its_code() {
        let mut p = Peer::new("554 5.7.1 go away\r\n221 bye\r\n");
        assert_eq!(
            starttls(&mut p, "h"),
            Err(SmtpError::Greeting {
                code: 554,
                text: "5.7.1 go away".into()
            })
        );
    }

    #[test]
    fn garbage_banner_is_reported_printably() {
        let mut p = Peer::new("\x16\x03\x01\x00binary\r\n");
        match starttls(&mut p, "h") {
            Err(SmtpError::Garbage(s)) => assert!(s.contains("\\u{16}"), "{s}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn closed_connection_and_overlong_lines_are_errors() {
        let mut p = Peer::new("");
        assert_eq!(starttls(&mut p, "h"), Err(SmtpError::Closed("greeting")));
        let long = format!("220 {}\r\n", "x".repeat(MAX_LINE + 10));
        let mut p = Peer::new(&long);
        assert!(matches!(starttls(&mut p, "h"), Err(SmtpError::Garbage(_))));
    }

    #[test]
    fn starttls_refused() {
        let mut p = Peer::new(
            "220 mx\r\n250-mx\r\n250 STARTTLS\r\n454 4.7.0 TLS not available\r\n221 bye\r\n",
        );
        assert!(matches!(
            starttls(&mut p, "h"),
            Err(SmtpError::StartTlsRefused { code: 454, .. })
        ));
    }
}
