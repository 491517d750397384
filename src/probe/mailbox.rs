//! Probe stage, IMAP and POP3: just enough of each protocol to reach STARTTLS on a mailbox
//! server (Dovecot, Courier, Exchange's IMAP4/POP3 services). IMAP: the greeting, `CAPABILITY`,
//! `STARTTLS` (RFC 3501 §6.2.1, "a001 STARTTLS" answered by a tagged OK, then the handshake).
//! POP3: the `+OK` greeting, `CAPA` (RFC 2449 §5), `STLS` (RFC 2595 §4). Never a login: a probe
//! must not look like an authentication attempt.
//!
//! As for SMTP, lines are read a byte at a time so nothing past the answer to STARTTLS/STLS
//! is consumed before the handshake, and every answer is bounded (line length, line count).

use std::io::{Read, Write};

/// Longest line accepted. RFC 2449 §4 caps POP3 responses at 512 octets and RFC 7162 §4
/// asks IMAP servers to accept 8,192-octet commands; a greeting or capability line longer
/// than 4 KiB is not a mailbox server talking.
const MAX_LINE: usize = 4096;
/// Most lines in one answer (IMAP untagged lines before the tagged one, the lines of a POP3
/// `CAPA` list). Dovecot sends two to a CAPABILITY and about ten to CAPA.
const MAX_LINES: usize = 100;

/// The two mailbox protocols.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Imap,
    Pop3,
}

impl Protocol {
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Imap => "IMAP",
            Protocol::Pop3 => "POP3",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MailboxError {
    #[error("the {} server greeted with {text}", .protocol.as_str())]
    Greeting { protocol: Protocol, text: String },
    #[error("the server does not speak {}; it sent {text:?}", .protocol.as_str())]
    Garbage { protocol: Protocol, text: String },
    #[error("the {} server does not offer STARTTLS", .protocol.as_str())]
    NoStartTls { protocol: Protocol },
    #[error("the {} server refused STARTTLS with {text}", .protocol.as_str())]
    StartTlsRefused { protocol: Protocol, text: String },
    #[error("timed out waiting for the server's {0}")]
    Timeout(&'static str),
    #[error("the server closed the connection before its {0}")]
    Closed(&'static str),
    #[error("{0}")]
    Io(String),
}

/// Reads the greeting and starts TLS with the protocol's command. On success the stream is
/// ready for the handshake; on a refusal the session has been ended politely.
pub fn starttls<S: Read + Write>(stream: &mut S, protocol: Protocol) -> Result<(), MailboxError> {
    let result = match protocol {
        Protocol::Imap => imap(stream),
        Protocol::Pop3 => pop3(stream),
    };
    if matches!(
        result,
        Err(MailboxError::NoStartTls { .. } | MailboxError::StartTlsRefused { .. })
    ) {
        let bye = match protocol {
            Protocol::Imap => "a003 LOGOUT\r\n",
            Protocol::Pop3 => "QUIT\r\n",
        };
        let _ = send(stream, bye);
    }
    result
}

/// RFC 3501: `* OK` greeting (`* PREAUTH` is already past the state where STARTTLS is allowed,
/// §6.2.1; `* BYE` is a refusal), `a001 CAPABILITY`, `a002 STARTTLS`.
fn imap<S: Read + Write>(stream: &mut S) -> Result<(), MailboxError> {
    let p = Protocol::Imap;
    let greeting = read_line(stream, "greeting")?;
    let status = greeting.split_whitespace().take(2).collect::<Vec<_>>();
    match status.as_slice() {
        ["*", s] if s.eq_ignore_ascii_case("OK") => {}
        ["*", s] if s.eq_ignore_ascii_case("PREAUTH") || s.eq_ignore_ascii_case("BYE") => {
            return Err(MailboxError::Greeting {
                protocol: p,
                text: printable(&greeting),
            })
        }
        _ => {
            return Err(MailboxError::Garbage {
                protocol: p,
                text: printable(&greeting),
            })
        }
    }
    send(stream, "a001 CAPABILITY\r\n")?;
    let (untagged, done) = imap_answer(stream, "a001", "CAPABILITY reply")?;
    let offers = tagged_ok(&done)
        && untagged.iter().any(|l| {
            let mut words = l.split_whitespace();
            words.next() == Some("*")
                && words
                    .next()
                    .is_some_and(|w| w.eq_ignore_ascii_case("CAPABILITY"))
                && words.any(|w| w.eq_ignore_ascii_case("STARTTLS"))
        });
    if !offers {
        return Err(MailboxError::NoStartTls { protocol: p });
    }
    send(stream, "a002 STARTTLS\r\n")?;
    let (_, done) = imap_answer(stream, "a002", "STARTTLS reply")?;
    if !tagged_ok(&done) {
        return Err(MailboxError::StartTlsRefused {
            protocol: p,
            text: printable(&done),
        });
    }
    Ok(())
}

/// The untagged lines and the tagged completion line of one IMAP command.
fn imap_answer<R: Read>(
    r: &mut R,
    tag: &str,
    what: &'static str,
) -> Result<(Vec<String>, String), MailboxError> {
    let mut untagged = Vec::new();
    loop {
        let line = read_line(r, what)?;
        if line.split_whitespace().next() == Some(tag) {
            return Ok((untagged, line));
        }
        if !line.starts_with('*') {
            return Err(MailboxError::Garbage {
                protocol: Protocol::Imap,
                text: printable(&line),
            });
        }
        untagged.push(line);
        if untagged.len() >= MAX_LINES {
            return Err(MailboxError::Garbage {
                protocol: Protocol::Imap,
                text: format!("more than {MAX_LINES} lines before the tagged reply"),
            });
        }
    }
}

fn tagged_ok(line: &str) -> bool {
    line.split_whitespace()
        .nth(1)
        .is_some_and(|s| s.eq_ignore_ascii_case("OK"))
}

/// RFC 1939 / 2449 / 2595: `+OK` greeting, `CAPA` (a multi-line list ended by `.`; a server
/// without CAPA answers `-ERR`, and STLS is then tried anyway), `STLS`.
fn pop3<S: Read + Write>(stream: &mut S) -> Result<(), MailboxError> {
    let p = Protocol::Pop3;
    let greeting = read_line(stream, "greeting")?;
    if !greeting.starts_with("+OK") {
        return Err(if greeting.starts_with("-ERR") {
            MailboxError::Greeting {
                protocol: p,
                text: printable(&greeting),
            }
        } else {
            MailboxError::Garbage {
                protocol: p,
                text: printable(&greeting),
            }
        });
    }
    send(stream, "CAPA\r\n")?;
    let capa = read_line(stream, "CAPA reply")?;
    if capa.starts_with("+OK") {
        let mut stls = false;
        let mut lines = 0;
        loop {
            let line = read_line(stream, "CAPA list")?;
            if line == "." {
                break;
            }
            stls |= line
                .split_whitespace()
                .next()
                .is_some_and(|w| w.eq_ignore_ascii_case("STLS"));
            lines += 1;
            if lines >= MAX_LINES {
                return Err(MailboxError::Garbage {
                    protocol: p,
                    text: format!("more than {MAX_LINES} CAPA lines"),
                });
            }
        }
        if !stls {
            return Err(MailboxError::NoStartTls { protocol: p });
        }
    }
    send(stream, "STLS\r\n")?;
    let reply = read_line(stream, "STLS reply")?;
    if !reply.starts_with("+OK") {
        return Err(MailboxError::StartTlsRefused {
            protocol: p,
            text: printable(&reply),
        });
    }
    Ok(())
}

fn send<S: Write>(stream: &mut S, line: &str) -> Result<(), MailboxError> {
    stream
        .write_all(line.as_bytes())
        .and_then(|_| stream.flush())
        .map_err(|e| io_error(e, "reply"))
}

/// One line, CRLF or LF ended, at most `MAX_LINE` bytes.
fn read_line<R: Read>(r: &mut R, what: &'static str) -> Result<String, MailboxError> {
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    loop {
        match r.read(&mut byte) {
            Ok(0) if line.is_empty() => return Err(MailboxError::Closed(what)),
            Ok(0) => break,
            Ok(_) if byte[0] == b'\n' => break,
            Ok(_) => {
                line.push(byte[0]);
                if line.len() > MAX_LINE {
                    return Err(MailboxError::Io(format!(
                        "a line longer than {MAX_LINE} bytes in the server's {what}"
                    )));
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

fn io_error(e: std::io::Error, what: &'static str) -> MailboxError {
    match e.kind() {
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => {
            MailboxError::Timeout(what)
        }
        std::io::ErrorKind::UnexpectedEof
        | std::io::ErrorKind::ConnectionReset
        | std::io::ErrorKind::ConnectionAborted
        | std::io::ErrorKind::BrokenPipe => MailboxError::Closed(what),
        _ => MailboxError::Io(e.to_string()),
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
        fn unread(&self) -> usize {
            self.input.get_ref().len() - self.input.position() as usize
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
    fn imap_starttls_as_dovecot_answers_it_and_nothing_past_the_ok_is_read() {
        let mut p = Peer::new(
            "* OK [CAPABILITY IMAP4rev1 SASL-IR STARTTLS LOGINDISABLED] Dovecot ready.\r\n\
             * CAPABILITY IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE STARTTLS\r\n\
             a001 OK Pre-login capabilities listed, post-login capabilities have more.\r\n\
             a002 OK Begin TLS negotiation now.\r\n\x16\x03\x03",
        );
        starttls(&mut p, Protocol::Imap).expect("starttls");
        assert_eq!(p.sent(), "a001 CAPABILITY\r\na002 STARTTLS\r\n");
        assert_eq!(p.unread(), 3, "the handshake's first bytes are left alone");
    }

    #[test]
    fn imap_without_starttls_or_refusing_it_or_preauth_is_reported() {
        let mut p = Peer::new("* OK hi\r\n* CAPABILITY IMAP4rev1\r\na001 OK done\r\n");
        assert_eq!(
            starttls(&mut p, Protocol::Imap),
            Err(MailboxError::NoStartTls {
                protocol: Protocol::Imap
            })
        );
        assert!(p.sent().ends_with("a003 LOGOUT\r\n"));
        let mut p = Peer::new(
            "* OK hi\r\n* CAPABILITY IMAP4rev1 STARTTLS\r\na001 OK done\r\na002 BAD no\r\n",
        );
        assert!(matches!(
            starttls(&mut p, Protocol::Imap),
            Err(MailboxError::StartTlsRefused { .. })
        ));
        let mut p = Peer::new("* PREAUTH welcome\r\n");
        assert!(matches!(
            starttls(&mut p, Protocol::Imap),
            Err(MailboxError::Greeting { .. })
        ));
        let mut p = Peer::new("220 mx ESMTP\r\n");
        assert!(matches!(
            starttls(&mut p, Protocol::Imap),
            Err(MailboxError::Garbage { .. })
        ));
    }

    #[test]
    fn imap_untagged_lines_and_line_length_are_bounded() {
        let flood = format!("* OK hi\r\n{}", "* x\r\n".repeat(MAX_LINES + 5));
        let mut p = Peer::new(&flood);
        assert!(matches!(
            starttls(&mut p, Protocol::Imap),
            Err(MailboxError::Garbage { .. })
        ));
        let long = format!("* OK {}\r\n", "x".repeat(MAX_LINE + 10));
        let mut p = Peer::new(&long);
        assert!(matches!(
            starttls(&mut p, Protocol::Imap),
            Err(MailboxError::Io(_))
        ));
    }

    #[test]
    fn pop3_stls_as_dovecot_answers_it() {
        let mut p = Peer::new(
            "+OK Dovecot ready.\r\n+OK\r\nCAPA\r\nTOP\r\nUIDL\r\nSTLS\r\nSASL\r\n.\r\n\
             +OK Begin TLS negotiation now.\r\n",
        );
        starttls(&mut p, Protocol::Pop3).expect("stls");
        assert_eq!(p.sent(), "CAPA\r\nSTLS\r\n");
    }

    #[test]
    fn pop3_without_stls_a_bad_greeting_and_a_closed_connection_are_reported() {
        let mut p = Peer::new("+OK hi\r\n+OK\r\nTOP\r\n.\r\n");
        assert_eq!(
            starttls(&mut p, Protocol::Pop3),
            Err(MailboxError::NoStartTls {
                protocol: Protocol::Pop3
            })
        );
        assert!(p.sent().ends_with("QUIT\r\n"));
        // No CAPA (RFC 2449 is optional): STLS is tried anyway.
        let mut p = Peer::new("+OK hi\r\n-ERR unknown\r\n-ERR no TLS\r\n");
        assert!(matches!(
            starttls(&mut p, Protocol::Pop3),
            Err(MailboxError::StartTlsRefused { .. })
        ));
        let mut p = Peer::new("-ERR busy\r\n");
        assert!(matches!(
            starttls(&mut p, Protocol::Pop3),
            Err(MailboxError::Greeting { .. })
        ));
        let mut p = Peer::new("");
        assert_eq!(
            starttls(&mut p, Protocol::Pop3),
            Err(MailboxError::Closed("greeting"))
        );
    }
}
