//! Real DNS servers on 127.0.0.1 for `probe --domain` tests: knot (knotd) serving test zones,
//! the anchor zone signed at run time with a key made at run time (ldns-keygen,
//! ldns-signzone), and unbound validating with that key as its trust anchor. Both run in the
//! foreground as children of the test and are killed when the [`DnsLab`] is dropped.
//!
//! DNSSEC signatures carry real dates and unbound checks them with the real clock, so zones
//! are signed valid from an hour ago to two days ahead, whatever `--at` the test gives
//! chainfix for certificates.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::mta::free_port;
use super::run;

/// One zone: its origin (absolute, e.g. `chainfix.test.`) and its records as zone-file lines
/// (relative owners allowed; SOA and NS are added).
pub struct Zone {
    pub origin: String,
    pub records: Vec<String>,
    /// Sign it (the first signed zone is the trust anchor; others stay unsigned: insecure).
    pub signed: bool,
    /// After signing: records whose data is replaced, (owner, type, new data): their
    /// signatures no longer verify (bogus).
    pub tamper: Vec<(String, String, String)>,
}

/// knotd and unbound, running.
pub struct DnsLab {
    pub dir: PathBuf,
    /// unbound's port on 127.0.0.1: give `--dns-server 127.0.0.1:PORT`.
    pub resolver_port: u16,
    pub auth_port: u16,
    knot: Child,
    unbound: Child,
}

impl DnsLab {
    /// Writes, signs and serves `zones` (the first must be signed: it is the trust anchor)
    /// under `dir`, and starts the validating resolver.
    pub fn start(dir: &Path, zones: &[Zone]) -> DnsLab {
        std::fs::create_dir_all(dir.join("knot")).expect("knot dir");
        let anchor = zones.first().expect("zones");
        assert!(
            anchor.signed,
            "the first zone is the trust anchor and must be signed"
        );
        let mut ds = String::new();
        let mut files = Vec::new();
        for zone in zones {
            let name = zone.origin.trim_end_matches('.');
            let text = zone_text(zone);
            let plain = dir.join(format!("{name}.zone"));
            std::fs::write(&plain, text).expect("zone file");
            if !zone.signed {
                files.push((zone.origin.clone(), plain));
                continue;
            }
            let keygen = run(Command::new("ldns-keygen")
                .args(["-a", "ECDSAP256SHA256", "-k", &zone.origin])
                .current_dir(dir));
            assert_eq!(keygen.status, 0, "ldns-keygen: {}", keygen.stderr);
            let key = keygen.stdout.trim().to_string();
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .expect("clock")
                .as_secs();
            let signed = dir.join(format!("{name}.signed"));
            let sign = run(Command::new("ldns-signzone")
                .args(["-i", &(now - 3600).to_string()])
                .args(["-e", &(now + 2 * 86_400).to_string()])
                .arg("-f")
                .arg(&signed)
                .arg(&plain)
                .arg(&key)
                .current_dir(dir));
            assert_eq!(sign.status, 0, "ldns-signzone: {}", sign.stderr);
            if !zone.tamper.is_empty() {
                tamper(&signed, &zone.origin, &zone.tamper);
            }
            if ds.is_empty() {
                let line = std::fs::read_to_string(dir.join(format!("{key}.ds"))).expect("DS file");
                // "chainfix.test.	IN	DS	tag alg digest-type digest": the class goes.
                let f: Vec<&str> = line.split_whitespace().collect();
                ds = format!("{} DS {}", f[0], f[3..].join(" "));
            }
            files.push((zone.origin.clone(), signed));
        }
        let auth_port = free_port();
        let resolver_port = free_port();
        let knot_conf = dir.join("knot.conf");
        let mut conf = format!(
            "server:\n    listen: 127.0.0.1@{auth_port}\n    rundir: {k}\n    pidfile: {k}/knot.pid\n\
             database:\n    storage: {k}\n\
             log:\n  - target: stderr\n    any: info\n\
             template:\n  - id: default\n    zonefile-sync: -1\n    zonefile-load: whole\n    \
             journal-content: none\n    semantic-checks: off\n\
             zone:\n",
            k = dir.join("knot").display()
        );
        for (origin, file) in &files {
            conf.push_str(&format!(
                "  - domain: {origin}\n    file: {}\n",
                file.display()
            ));
        }
        std::fs::write(&knot_conf, conf).expect("knot.conf");
        let knot = Command::new("knotd")
            .arg("-c")
            .arg(&knot_conf)
            .stdout(Stdio::null())
            .stderr(file(dir, "knot.log"))
            .spawn()
            .expect("starting knotd");
        // Every zone is a stub on knot's port: a referral's glue would send unbound to port 53.
        let stubs: String = zones
            .iter()
            .map(|z| {
                format!(
                    "stub-zone:\n    name: \"{}\"\n    stub-addr: 127.0.0.1@{auth_port}\n",
                    z.origin
                )
            })
            .collect();
        let unbound_conf = dir.join("unbound.conf");
        std::fs::write(
            &unbound_conf,
            format!(
                "server:\n    interface: 127.0.0.1\n    port: {resolver_port}\n    \
                 do-daemonize: no\n    chroot: \"\"\n    username: \"\"\n    \
                 directory: \"{d}\"\n    pidfile: \"\"\n    use-syslog: no\n    \
                 logfile: \"\"\n    verbosity: 1\n    val-log-level: 2\n    do-ip6: no\n    \
                 do-not-query-localhost: no\n    module-config: \"validator iterator\"\n    \
                 trust-anchor: \"{ds}\"\n    local-zone: \"test.\" nodefault\n{stubs}",
                d = dir.display(),
            ),
        )
        .expect("unbound.conf");
        let unbound = Command::new("unbound")
            .args(["-d", "-c"])
            .arg(&unbound_conf)
            .stdout(Stdio::null())
            .stderr(file(dir, "unbound.log"))
            .spawn()
            .expect("starting unbound");
        let lab = DnsLab {
            dir: dir.to_path_buf(),
            resolver_port,
            auth_port,
            knot,
            unbound,
        };
        lab.wait_listening(auth_port, "knot.log");
        lab.wait_listening(resolver_port, "unbound.log");
        lab
    }

    /// `127.0.0.1:PORT` of the resolver.
    pub fn resolver(&self) -> String {
        format!("127.0.0.1:{}", self.resolver_port)
    }

    /// Both servers' logs, for assertion messages.
    pub fn logs(&self) -> String {
        let read = |f: &str| std::fs::read_to_string(self.dir.join(f)).unwrap_or_default();
        format!(
            "--- knot.log\n{}\n--- unbound.log\n{}",
            read("knot.log"),
            read("unbound.log")
        )
    }

    fn wait_listening(&self, port: u16, log: &str) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "nothing listens on 127.0.0.1:{port} ({log}):\n{}",
            self.logs()
        );
    }
}

impl Drop for DnsLab {
    fn drop(&mut self) {
        for child in [&mut self.knot, &mut self.unbound] {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn file(dir: &Path, name: &str) -> std::fs::File {
    std::fs::File::create(dir.join(name)).expect("log file")
}

/// The zone file: `$ORIGIN`, `$TTL`, SOA and NS at the apex (ns.ORIGIN at 127.0.0.1), then
/// the records.
fn zone_text(zone: &Zone) -> String {
    let o = &zone.origin;
    let mut text = format!(
        "$ORIGIN {o}\n$TTL 300\n@ IN SOA ns.{o} admin.{o} 1 3600 600 86400 300\n\
         @ IN NS ns.{o}\nns IN A 127.0.0.1\n"
    );
    for r in &zone.records {
        text.push_str(r);
        text.push('\n');
    }
    text
}

/// Replaces the data of the signed records (owner, type) with `data`, leaving their RRSIGs.
fn tamper(signed: &Path, origin: &str, changes: &[(String, String, String)]) {
    let text = std::fs::read_to_string(signed).expect("signed zone");
    let mut hits = 0;
    let out: Vec<String> = text
        .lines()
        .map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            for (owner, rtype, data) in changes {
                let absolute = format!("{owner}.{origin}");
                if f.len() > 4 && f[0] == absolute && f[3] == rtype {
                    hits += 1;
                    return format!("{} {} {} {} {data}", f[0], f[1], f[2], f[3]);
                }
            }
            line.to_string()
        })
        .collect();
    assert!(hits > 0, "nothing to tamper with in {}", signed.display());
    std::fs::write(signed, out.join("\n") + "\n").expect("tampered zone");
}
