//! DNS transport: one query to one resolver over UDP, and over TCP when the UDP answer is
//! truncated (RFC 1035 §4.2.1, RFC 7766 §5), each bounded by one deadline. Blocking std
//! sockets: a domain probe asks a handful of questions, one after another.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::time::Instant;

use super::DnsError;

/// The EDNS payload size advertised and read over UDP: 1232 bytes, the DNS Flag Day 2020
/// value, which fits an IPv6 minimum MTU without fragmentation.
pub const UDP_PAYLOAD: u16 = 1232;

/// Largest DNS message: the TCP length field is 16 bits (RFC 1035 §4.2.2).
const MAX_TCP_MESSAGE: usize = 65_535;

/// Most UDP datagrams read while waiting for the answer to one query: replies with another
/// id or from another address are dropped (RFC 5452 §9.1), but not forever.
const MAX_STRAY_DATAGRAMS: usize = 16;

/// Sends `query` (wire format, id `id`) over UDP and returns the reply's bytes.
pub fn udp(
    server: SocketAddr,
    query: &[u8],
    id: u16,
    deadline: Instant,
) -> Result<Vec<u8>, DnsError> {
    let local: SocketAddr = if server.is_ipv4() {
        SocketAddr::from(([0, 0, 0, 0], 0))
    } else {
        SocketAddr::from(([0u16; 8], 0))
    };
    let socket = UdpSocket::bind(local).map_err(|e| DnsError::Io(e.to_string()))?;
    socket
        .connect(server)
        .map_err(|e| DnsError::Io(e.to_string()))?;
    socket.send(query).map_err(|e| io_error(&e))?;
    let mut buf = vec![0u8; usize::from(UDP_PAYLOAD).max(512) * 4];
    for _ in 0..MAX_STRAY_DATAGRAMS {
        socket
            .set_read_timeout(Some(remaining(deadline)?))
            .map_err(|e| DnsError::Io(e.to_string()))?;
        let n = socket.recv(&mut buf).map_err(|e| io_error(&e))?;
        // The id must be the query's (RFC 5452 §4.3); the connected socket already drops
        // datagrams from other addresses.
        if n >= 2 && u16::from_be_bytes([buf[0], buf[1]]) == id {
            return Ok(buf[..n].to_vec());
        }
    }
    Err(DnsError::Garbled(
        "too many replies that do not answer the query".into(),
    ))
}

/// Sends `query` over TCP with its two-byte length prefix (RFC 1035 §4.2.2) and returns the
/// reply's bytes.
pub fn tcp(server: SocketAddr, query: &[u8], deadline: Instant) -> Result<Vec<u8>, DnsError> {
    let mut stream =
        TcpStream::connect_timeout(&server, remaining(deadline)?).map_err(|e| io_error(&e))?;
    let len = u16::try_from(query.len())
        .map_err(|_| DnsError::Garbled("query larger than a DNS message".into()))?;
    let mut framed = len.to_be_bytes().to_vec();
    framed.extend_from_slice(query);
    stream
        .set_write_timeout(Some(remaining(deadline)?))
        .map_err(|e| DnsError::Io(e.to_string()))?;
    stream.write_all(&framed).map_err(|e| io_error(&e))?;
    let mut prefix = [0u8; 2];
    read_exact(&mut stream, &mut prefix, deadline)?;
    let n = usize::from(u16::from_be_bytes(prefix)).min(MAX_TCP_MESSAGE);
    let mut body = vec![0u8; n];
    read_exact(&mut stream, &mut body, deadline)?;
    Ok(body)
}

fn read_exact(stream: &mut TcpStream, buf: &mut [u8], deadline: Instant) -> Result<(), DnsError> {
    let mut filled = 0;
    while filled < buf.len() {
        stream
            .set_read_timeout(Some(remaining(deadline)?))
            .map_err(|e| DnsError::Io(e.to_string()))?;
        match stream.read(&mut buf[filled..]) {
            Ok(0) => {
                return Err(DnsError::Garbled(
                    "the resolver closed the connection".into(),
                ))
            }
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(io_error(&e)),
        }
    }
    Ok(())
}

fn remaining(deadline: Instant) -> Result<std::time::Duration, DnsError> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        Err(DnsError::Timeout)
    } else {
        Ok(left)
    }
}

fn io_error(e: &std::io::Error) -> DnsError {
    match e.kind() {
        std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock => DnsError::Timeout,
        std::io::ErrorKind::ConnectionRefused => DnsError::Refused,
        _ => DnsError::Io(e.to_string()),
    }
}
