//! DNS stage for `probe --domain`: a small stub client that asks one recursive resolver the
//! questions a sending MTA asks (MX, A, AAAA, TLSA, TXT, following CNAMEs), with DO=1, and says
//! for each answer whether DNSSEC made it secure.
//!
//! chainfix does not validate DNSSEC itself. Like Postfix (`smtp_dns_support_level = dnssec`
//! trusts the AD bit of the resolver in resolv.conf, which "should be a local validating
//! resolver") and Exim (`dns_dnssec_ok`), it trusts the AD bit (RFC 4035 §3.2.3) only from a
//! resolver on a loopback address; from any other the status is [`Security::Unknown`]. A
//! SERVFAIL that the same question with CD=1 (RFC 4035 §3.2.2) answers is a validation
//! failure, [`Security::Bogus`], not a dead resolver.
//!
//! `transport.rs` moves the bytes (UDP, TCP on truncation); hickory-proto encodes and decodes
//! the messages. Every lookup of one domain shares a [`Budget`]: queries, CNAME hops, records
//! per answer and total time.

pub mod transport;

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{Name, RData, RecordType};
use serde::Serialize;

/// Most queries for one domain. A domain with the most MX hosts chainfix probes
/// ([`MAX_MX_HOSTS`]) costs 1 (MX) + 2 (TLS-RPT, with a CNAME hop) + per host A, AAAA, TLSA
/// and a CD=1 retry or CNAME hop each: 83. The rest is room for CNAME chains.
pub const MAX_QUERIES: usize = 128;

/// Most CNAMEs followed from one name. RFC 1034 §3.6.2 forbids chains only in spirit;
/// resolvers cut them (BIND follows at most 16 hops, Unbound 11, `MAX_RESTART_COUNT`);
/// a mail domain needs one or two.
pub const MAX_CNAME_CHAIN: usize = 8;

/// Most records in one answer section. An RRset a sender uses is small (a few MX hosts, a
/// few addresses, 2-4 TLSA records); 256 is far beyond that and keeps a hostile answer cheap.
pub const MAX_ANSWER_RECORDS: usize = 256;

/// Most time all lookups of one domain may take together.
pub const MAX_TOTAL_TIME: Duration = Duration::from_secs(60);

/// Most MX hosts of one domain looked up and probed, in preference order. Postfix tries at
/// most 5 addresses (`smtp_mx_address_limit`); chainfix looks at every host a sender could
/// reach, up to this many.
pub const MAX_MX_HOSTS: usize = 10;

/// What DNSSEC says about an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Security {
    /// The loopback resolver set AD: every RRset on the way was validated.
    Secure,
    /// The loopback resolver answered without AD: an unsigned zone (or one below an
    /// unsigned delegation).
    Insecure,
    /// The resolver is not on a loopback address: its AD bit is not trusted.
    Unknown,
    /// Validation failed: SERVFAIL, and the same question with CD=1 was answered.
    Bogus,
}

impl Security {
    pub fn as_str(self) -> &'static str {
        match self {
            Security::Secure => "secure",
            Security::Insecure => "insecure",
            Security::Unknown => "unknown",
            Security::Bogus => "bogus",
        }
    }

    /// The weaker of two: an answer built from several is only as secure as its weakest.
    pub fn and(self, other: Security) -> Security {
        self.max(other)
    }
}

/// Why a lookup gave no answer at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DnsError {
    #[error("no answer from the resolver in time")]
    Timeout,
    #[error("the resolver refused the connection")]
    Refused,
    #[error("the resolver failed (SERVFAIL, also with CD=1) for {0}")]
    ServFail(String),
    #[error("the resolver answered {rcode} for {name}")]
    Rcode { name: String, rcode: String },
    #[error("unreadable answer: {0}")]
    Garbled(String),
    #[error("{0:?} is not a DNS name")]
    BadName(String),
    #[error("more than {MAX_QUERIES} DNS queries for one domain")]
    TooManyQueries,
    #[error("more than {MAX_CNAME_CHAIN} CNAMEs from {0}")]
    CnameChain(String),
    #[error("more than {MAX_ANSWER_RECORDS} records in the answer for {0}")]
    TooManyRecords(String),
    #[error("the DNS lookups of this domain took longer than {} seconds", MAX_TOTAL_TIME.as_secs())]
    TotalTime,
    #[error("network error talking to the resolver: {0}")]
    Io(String),
    #[error("no resolver: {0}")]
    NoResolver(String),
}

impl DnsError {
    /// A stable reason code (JSON `detail`).
    pub fn code(&self) -> &'static str {
        match self {
            DnsError::Timeout => "timeout",
            DnsError::Refused => "refused",
            DnsError::ServFail(_) => "servfail",
            DnsError::Rcode { .. } => "rcode",
            DnsError::Garbled(_) => "garbled",
            DnsError::BadName(_) => "bad-name",
            DnsError::TooManyQueries => "too-many-queries",
            DnsError::CnameChain(_) => "cname-chain",
            DnsError::TooManyRecords(_) => "too-many-records",
            DnsError::TotalTime => "total-time",
            DnsError::Io(_) => "io",
            DnsError::NoResolver(_) => "no-resolver",
        }
    }
}

/// The resolver asked, and whether its AD bit is believed.
#[derive(Debug, Clone)]
pub struct Resolver {
    pub server: SocketAddr,
    /// The server is on a loopback address (127.0.0.0/8, ::1).
    pub trusts_ad: bool,
    /// Each query, UDP and TCP together.
    pub query_timeout: Duration,
}

impl Resolver {
    pub fn new(server: SocketAddr, query_timeout: Duration) -> Resolver {
        Resolver {
            server,
            trusts_ad: server.ip().is_loopback(),
            query_timeout,
        }
    }

    /// The first `nameserver` of `resolv_conf` (the text of /etc/resolv.conf), port 53.
    pub fn from_resolv_conf(
        resolv_conf: &str,
        query_timeout: Duration,
    ) -> Result<Resolver, DnsError> {
        let ip = resolv_conf
            .lines()
            .filter_map(|l| {
                let mut words = l.split_whitespace();
                (words.next() == Some("nameserver"))
                    .then(|| words.next())
                    .flatten()
            })
            .find_map(|w| w.parse::<IpAddr>().ok())
            .ok_or_else(|| {
                DnsError::NoResolver("no usable nameserver line in /etc/resolv.conf".into())
            })?;
        Ok(Resolver::new(SocketAddr::new(ip, 53), query_timeout))
    }

    /// A budget for the lookups of one domain, starting now.
    pub fn session(&self) -> Session<'_> {
        Session {
            resolver: self,
            budget: Budget {
                queries: 0,
                deadline: Instant::now() + MAX_TOTAL_TIME,
            },
        }
    }
}

/// What is left for one domain's lookups.
#[derive(Debug, Clone)]
pub struct Budget {
    pub queries: usize,
    pub deadline: Instant,
}

/// The lookups of one domain.
pub struct Session<'a> {
    resolver: &'a Resolver,
    budget: Budget,
}

/// An MX record (RFC 1035 §3.3.9).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Mx {
    pub preference: u16,
    /// Lower case, without the final dot; empty for the root (a null MX, RFC 7505).
    pub exchange: String,
}

/// A TLSA record's fields (RFC 6698 §2.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsaData {
    pub usage: u8,
    pub selector: u8,
    pub matching: u8,
    pub data: Vec<u8>,
}

/// The records of one type at one name, after CNAMEs.
#[derive(Debug, Clone)]
pub struct Answer<T> {
    pub records: Vec<T>,
    /// The name does not exist (NXDOMAIN).
    pub nxdomain: bool,
    /// The weakest security of every response used.
    pub security: Security,
    /// The CNAMEs followed, in order (targets, lower case, no final dot).
    pub cnames: Vec<String>,
    /// The smallest TTL of the records.
    pub ttl: Option<u32>,
}

impl<T> Answer<T> {
    /// The name the records were found at: the last CNAME target, else the name asked.
    pub fn canonical<'a>(&'a self, asked: &'a str) -> &'a str {
        self.cnames.last().map(String::as_str).unwrap_or(asked)
    }
}

impl Session<'_> {
    pub fn resolver(&self) -> &Resolver {
        self.resolver
    }

    pub fn mx(&mut self, name: &str) -> Result<Answer<Mx>, DnsError> {
        self.lookup(name, RecordType::MX, |r| match r {
            RData::MX(mx) => Some(Mx {
                preference: mx.preference(),
                exchange: plain_name(mx.exchange()),
            }),
            _ => None,
        })
    }

    /// A and AAAA together: IPv4 addresses first, each in the order given.
    pub fn addresses(&mut self, name: &str) -> Result<Answer<IpAddr>, DnsError> {
        let v4 = self.lookup(name, RecordType::A, |r| match r {
            RData::A(a) => Some(IpAddr::V4(a.0)),
            _ => None,
        })?;
        let v6 = self.lookup(name, RecordType::AAAA, |r| match r {
            RData::AAAA(a) => Some(IpAddr::V6(a.0)),
            _ => None,
        })?;
        let mut records = v4.records;
        records.extend(v6.records);
        Ok(Answer {
            records,
            nxdomain: v4.nxdomain && v6.nxdomain,
            security: v4.security.and(v6.security),
            cnames: if v4.cnames.len() >= v6.cnames.len() {
                v4.cnames
            } else {
                v6.cnames
            },
            ttl: [v4.ttl, v6.ttl].into_iter().flatten().min(),
        })
    }

    pub fn tlsa(&mut self, name: &str) -> Result<Answer<TlsaData>, DnsError> {
        self.lookup(name, RecordType::TLSA, |r| match r {
            RData::TLSA(t) => Some(TlsaData {
                usage: t.cert_usage().into(),
                selector: t.selector().into(),
                matching: t.matching().into(),
                data: t.cert_data().to_vec(),
            }),
            _ => None,
        })
    }

    /// TXT records, each one's strings joined (RFC 7208 §3.3, RFC 8460 §3).
    pub fn txt(&mut self, name: &str) -> Result<Answer<Vec<u8>>, DnsError> {
        self.lookup(name, RecordType::TXT, |r| match r {
            RData::TXT(t) => Some(t.iter().flat_map(|s| s.iter().copied()).collect()),
            _ => None,
        })
    }

    /// The records of `rtype` at `name`, following CNAMEs in the answer and, when the resolver
    /// left a chain unfinished, by asking again.
    fn lookup<T>(
        &mut self,
        name: &str,
        rtype: RecordType,
        pick: impl Fn(&RData) -> Option<T>,
    ) -> Result<Answer<T>, DnsError> {
        let mut current = parse_name(name)?;
        let mut answer = Answer {
            records: Vec::new(),
            nxdomain: false,
            security: Security::Secure,
            cnames: Vec::new(),
            ttl: None,
        };
        loop {
            let (message, security) = self.exchange(&current, rtype)?;
            answer.security = answer.security.and(security);
            // Walk the CNAMEs the answer holds from `current` on.
            let mut followed = false;
            loop {
                let next = message.answers().iter().find_map(|r| match r.data() {
                    RData::CNAME(c) if same_name(r.name(), &current) => Some(c.0.clone()),
                    _ => None,
                });
                let Some(target) = next else { break };
                if answer.cnames.len() >= MAX_CNAME_CHAIN {
                    return Err(DnsError::CnameChain(name.to_string()));
                }
                answer.cnames.push(plain_name(&target));
                current = target;
                followed = true;
            }
            let mut found = false;
            for r in message.answers() {
                if r.record_type() != rtype || !same_name(r.name(), &current) {
                    continue;
                }
                if let Some(v) = pick(r.data()) {
                    answer.records.push(v);
                    answer.ttl = Some(answer.ttl.map_or(r.ttl(), |t| t.min(r.ttl())));
                    found = true;
                }
            }
            answer.nxdomain = message.response_code() == ResponseCode::NXDomain;
            // The chain ends at `current` with its records here, or with none to be had (the
            // name exists without this type, or NXDOMAIN). A chain the resolver left at a
            // CNAME target it did not follow is asked again from there, once per hop.
            if found || answer.nxdomain || !followed {
                return Ok(answer);
            }
        }
    }

    /// One question, with the CD=1 retry after a SERVFAIL.
    fn exchange(
        &mut self,
        name: &Name,
        rtype: RecordType,
    ) -> Result<(Message, Security), DnsError> {
        let first = self.send(name, rtype, false)?;
        match first.response_code() {
            ResponseCode::NoError | ResponseCode::NXDomain => {
                let security = match (self.resolver.trusts_ad, first.authentic_data()) {
                    (false, _) => Security::Unknown,
                    (true, true) => Security::Secure,
                    (true, false) => Security::Insecure,
                };
                Ok((first, security))
            }
            ResponseCode::ServFail => {
                // RFC 4035 §3.2.2: with CD set the resolver returns what it got without
                // validating; an answer now means validation failed before.
                let second = self.send(name, rtype, true)?;
                match second.response_code() {
                    ResponseCode::NoError | ResponseCode::NXDomain => Ok((second, Security::Bogus)),
                    ResponseCode::ServFail => Err(DnsError::ServFail(plain_name(name))),
                    other => Err(DnsError::Rcode {
                        name: plain_name(name),
                        rcode: other.to_string(),
                    }),
                }
            }
            other => Err(DnsError::Rcode {
                name: plain_name(name),
                rcode: other.to_string(),
            }),
        }
    }

    /// Sends one query (RD=1, DO=1, CD as given) and returns the checked reply.
    fn send(&mut self, name: &Name, rtype: RecordType, cd: bool) -> Result<Message, DnsError> {
        if self.budget.queries >= MAX_QUERIES {
            return Err(DnsError::TooManyQueries);
        }
        let now = Instant::now();
        if now >= self.budget.deadline {
            return Err(DnsError::TotalTime);
        }
        self.budget.queries += 1;
        let deadline = (now + self.resolver.query_timeout).min(self.budget.deadline);
        let id = random_id();
        let mut query = Message::new();
        query
            .set_id(id)
            .set_message_type(MessageType::Query)
            .set_op_code(OpCode::Query)
            .set_recursion_desired(true)
            .set_checking_disabled(cd)
            .add_query(Query::query(name.clone(), rtype));
        let mut edns = Edns::new();
        edns.set_max_payload(transport::UDP_PAYLOAD);
        edns.set_dnssec_ok(true);
        query.set_edns(edns);
        let wire = query
            .to_vec()
            .map_err(|e| DnsError::Garbled(format!("cannot encode the query: {e}")))?;
        let mut reply = parse_reply(&transport::udp(self.resolver.server, &wire, id, deadline)?)?;
        if reply.truncated() {
            reply = parse_reply(&transport::tcp(self.resolver.server, &wire, deadline)?)?;
        }
        check_reply(&reply, id, name, rtype)?;
        Ok(reply)
    }
}

fn parse_reply(bytes: &[u8]) -> Result<Message, DnsError> {
    Message::from_vec(bytes).map_err(|e| DnsError::Garbled(e.to_string()))
}

/// The reply must answer the query sent (RFC 5452 §4.3: id and question) and stay within the
/// record budget.
fn check_reply(reply: &Message, id: u16, name: &Name, rtype: RecordType) -> Result<(), DnsError> {
    if reply.id() != id || reply.message_type() != MessageType::Response {
        return Err(DnsError::Garbled("a reply to another query".into()));
    }
    match reply.queries() {
        [q] if same_name(q.name(), name) && q.query_type() == rtype => {}
        _ => return Err(DnsError::Garbled("the reply asks another question".into())),
    }
    if reply.answers().len() > MAX_ANSWER_RECORDS {
        return Err(DnsError::TooManyRecords(plain_name(name)));
    }
    Ok(())
}

fn random_id() -> u16 {
    let mut b = [0u8; 2];
    // RFC 5452 §9.2: unpredictable ids. A failing system RNG leaves 0, still answered.
    let _ = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b);
    u16::from_be_bytes(b)
}

/// `name` as an absolute DNS name.
fn parse_name(name: &str) -> Result<Name, DnsError> {
    let trimmed = name.trim_end_matches('.');
    if trimmed.is_empty() || trimmed.len() > 253 {
        return Err(DnsError::BadName(name.to_string()));
    }
    let mut n = Name::from_ascii(trimmed).map_err(|_| DnsError::BadName(name.to_string()))?;
    n.set_fqdn(true);
    Ok(n)
}

/// Lower case, without the final dot (the root is the empty string).
pub fn plain_name(n: &Name) -> String {
    n.to_ascii().trim_end_matches('.').to_ascii_lowercase()
}

fn same_name(a: &Name, b: &Name) -> bool {
    plain_name(a) == plain_name(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_nameserver_line_is_the_resolver_and_only_loopback_is_trusted() {
        let t = Duration::from_secs(1);
        let r = Resolver::from_resolv_conf(
            "# x\nsearch a\nnameserver 127.0.0.53\nnameserver 8.8.8.8\n",
            t,
        )
        .expect("resolver");
        assert_eq!(r.server, "127.0.0.53:53".parse().expect("addr"));
        assert!(r.trusts_ad);
        let remote = Resolver::from_resolv_conf("nameserver 192.0.2.1\n", t).expect("resolver");
        assert!(!remote.trusts_ad);
        assert!(Resolver::new("[::1]:5353".parse().expect("addr"), t).trusts_ad);
        assert_eq!(
            Resolver::from_resolv_conf("search x\n", t).map(|_| ()),
            Err(DnsError::NoResolver(
                "no usable nameserver line in /etc/resolv.conf".into()
            ))
        );
    }

    #[test]
    fn security_combines_to_the_weakest() {
        use Security::*;
        assert_eq!(Secure.and(Insecure), Insecure);
        assert_eq!(Insecure.and(Bogus), Bogus);
        assert_eq!(Unknown.and(Secure), Unknown);
        assert_eq!(Secure.and(Secure), Secure);
    }

    #[test]
    fn names_must_be_dns_names() {
        assert!(parse_name("").is_err());
        assert!(parse_name(".").is_err());
        assert!(parse_name(&"a".repeat(300)).is_err());
        assert_eq!(
            plain_name(&parse_name("MX.Example.COM.").expect("name")),
            "mx.example.com"
        );
    }

    #[test]
    fn a_silent_resolver_is_a_timeout_not_a_hang() {
        // A UDP socket that never answers.
        let silent = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
        let resolver = Resolver::new(
            silent.local_addr().expect("addr"),
            Duration::from_millis(200),
        );
        let started = Instant::now();
        let got = resolver.session().mx("example.test");
        assert_eq!(got.map(|a| a.records), Err(DnsError::Timeout));
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn the_query_budget_is_enforced() {
        let silent = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
        let resolver = Resolver::new(silent.local_addr().expect("addr"), Duration::from_millis(1));
        let mut session = resolver.session();
        session.budget.queries = MAX_QUERIES;
        assert_eq!(
            session.mx("example.test").map(|_| ()),
            Err(DnsError::TooManyQueries)
        );
    }
}
