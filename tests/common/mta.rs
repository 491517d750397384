//! Real Postfix and Exim on loopback: private instances for end-to-end tests (std only).
//!
//! `.ci/setup-mtas.sh` installs Postfix with apt and extracts Debian's exim4-daemon-light into
//! `/opt/chainfix-test/exim` (the two packages conflict, so Exim is never installed). Every
//! instance here has its own configuration, queue/spool, data and log directories under a
//! directory the test gives it, listens only on 127.0.0.1 at a port picked for it, and is
//! stopped when dropped (also when the test panics). Both MTAs must run as root.
//!
//! A test that starts Postfix carries `#[cfg_attr(not(have_postfix), ignore = ...)]`, one that
//! starts Exim `not(have_exim)`: build.rs sets those cfgs when the programs are here and the
//! tests run as root, so elsewhere `cargo test` counts such tests as ignored (and with
//! `CHAINFIX_REQUIRE_MTA=1` the build fails instead).
//!
//! The MTAs drop privileges (`postfix`, `Debian-exim`): every directory above their files must
//! be traversable by those users. `share_dir` makes a test directory 0755 (a `TempDir` is 0700).

use std::collections::HashSet;
use std::fs::{self, File};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::{run, run_with_timeout, Output};

/// The extracted exim4-daemon-light package (see `.ci/setup-mtas.sh`): `/opt/chainfix-test/exim`
/// unless `CHAINFIX_EXIM_ROOT` said otherwise when build.rs probed for it.
pub const EXIM_ROOT: &str = env!("CHAINFIX_EXIM_ROOT");
/// The Exim binary inside it.
pub const EXIM_BIN: &str = concat!(env!("CHAINFIX_EXIM_ROOT"), "/usr/sbin/exim4");
/// Postfix's control command.
pub const POSTFIX_BIN: &str = "/usr/sbin/postfix";
/// Postfix's configuration utility.
pub const POSTCONF_BIN: &str = "/usr/sbin/postconf";
/// Postfix's sendmail (message injection).
pub const SENDMAIL_BIN: &str = "/usr/sbin/sendmail";
/// The master.cf every Postfix instance starts from.
pub const MASTER_CF_PROTO: &str = "/etc/postfix/master.cf.proto";
/// How long an MTA may take to start listening.
pub const START_TIMEOUT: Duration = Duration::from_secs(20);
/// How long to wait for a message to show up in a log.
pub const MAIL_TIMEOUT: Duration = Duration::from_secs(20);
/// The extracted exim4-config package (Debian's configuration templates, update-exim4.conf).
pub const EXIM4_CONFIG: &str = "/opt/chainfix-test/exim4-config";
/// The user Debian's Exim runs as.
pub const EXIM_USER: &str = "Debian-exim";

/// Makes `dir` 0755 so the MTAs' unprivileged users can reach what is below it.
pub fn share_dir(dir: &Path) {
    fs::set_permissions(dir, fs::Permissions::from_mode(0o755))
        .unwrap_or_else(|e| panic!("chmod 0755 {}: {e}", dir.display()));
}

/// Panics unless every existing ancestor of `dir` lets other users through (mode o+x): the
/// MTAs' unprivileged processes must reach their files.
fn assert_traversable(dir: &Path) {
    for ancestor in dir.ancestors().skip(1) {
        let Ok(meta) = fs::metadata(ancestor) else {
            continue;
        };
        assert!(
            meta.permissions().mode() & 0o001 != 0,
            "{} is mode {:o}: the postfix and {EXIM_USER} users cannot reach {} below it; \
             call mta::share_dir on the test directory first",
            ancestor.display(),
            meta.permissions().mode() & 0o7777,
            dir.display()
        );
    }
}

/// Creates `dir` (and parents) with mode 0755.
fn make_dir(dir: &Path) {
    fs::create_dir_all(dir).unwrap_or_else(|e| panic!("creating {}: {e}", dir.display()));
    share_dir(dir);
}

fn write_file(path: &Path, text: &str) {
    fs::write(path, text).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
}

fn read_lossy(path: &Path) -> String {
    fs::read(path)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default()
}

/// The last `n` lines of `text`.
pub fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

fn path_str(p: &Path) -> &str {
    p.to_str()
        .unwrap_or_else(|| panic!("path is not UTF-8: {}", p.display()))
}

/// A short tag unique within this test process, to tell instances apart in banners and logs.
fn unique_tag() -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    format!(
        "{}x{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::SeqCst)
    )
}

/// A free port on 127.0.0.1 below the kernel's ephemeral range (so outgoing connections never
/// take it), never handed out twice by this process. Postfix listens with SO_REUSEPORT, so two
/// instances on one port would silently share connections: hence the bookkeeping, the bind
/// check, and the banner check in `wait_for_banner`.
pub fn free_port() -> u16 {
    static GIVEN: Mutex<Option<HashSet<u16>>> = Mutex::new(None);
    let mut given = GIVEN.lock().expect("port registry lock");
    let given = given.get_or_insert_with(HashSet::new);
    let seed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0)
        ^ std::process::id().wrapping_mul(2_654_435_761);
    // 20000..32000: under Linux's default ephemeral range (32768..60999).
    let span = 12_000u32;
    for i in 0..span {
        let port = 20_000 + ((seed.wrapping_add(i.wrapping_mul(7_919))) % span) as u16;
        if given.contains(&port) {
            continue;
        }
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            given.insert(port);
            return port;
        }
    }
    panic!("no free port on 127.0.0.1 in 20000..32000");
}

/// Connects to 127.0.0.1:`port` until the SMTP greeting contains `token`, or panics after
/// `START_TIMEOUT` with `diagnostics()` (the MTA's log tail).
fn wait_for_banner(port: u16, token: &str, what: &str, diagnostics: &dyn Fn() -> String) {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let deadline = Instant::now() + START_TIMEOUT;
    let mut last = String::from("no connection yet");
    while Instant::now() < deadline {
        match TcpStream::connect_timeout(&addr, Duration::from_secs(2)) {
            Ok(mut stream) => {
                let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
                let mut buf = [0u8; 512];
                let mut got = Vec::new();
                while !got.contains(&b'\n') {
                    match stream.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => got.extend_from_slice(&buf[..n]),
                    }
                }
                let banner = String::from_utf8_lossy(&got).into_owned();
                let _ = stream.write_all(b"QUIT\r\n");
                if banner.contains(token) {
                    return;
                }
                last = format!("greeting {banner:?} lacks {token:?} (another server on the port?)");
            }
            Err(e) => last = format!("connect: {e}"),
        }
        thread::sleep(Duration::from_millis(100));
    }
    panic!(
        "{what} did not start listening on 127.0.0.1:{port} within {START_TIMEOUT:?} ({last})\n{}",
        diagnostics()
    );
}

/// Runs `cmd` with stdout and stderr going to `capture` (a file: a daemon that keeps them open
/// cannot block us) and stdin from `input`; kills it after `limit`. Returns (exit code, output).
fn run_detached(cmd: &mut Command, capture: &Path, input: &[u8], limit: Duration) -> (i32, String) {
    let out = File::create(capture).unwrap_or_else(|e| panic!("{}: {e}", capture.display()));
    let err = out
        .try_clone()
        .unwrap_or_else(|e| panic!("{}: {e}", capture.display()));
    cmd.stdin(Stdio::piped()).stdout(out).stderr(err);
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(input)
            .unwrap_or_else(|e| panic!("writing to {cmd:?}: {e}"));
    }
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().expect("waiting for child") {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "{cmd:?} did not finish within {limit:?}; output so far:\n{}",
                read_lossy(capture)
            );
        }
        thread::sleep(Duration::from_millis(20));
    };
    (status.code().unwrap_or(-1), read_lossy(capture))
}

/// Polls `read()` until `found` accepts it or `timeout` passes; returns the last text read and
/// whether it was accepted.
pub fn poll_text(
    timeout: Duration,
    read: impl Fn() -> String,
    found: impl Fn(&str) -> bool,
) -> (bool, String) {
    let deadline = Instant::now() + timeout;
    loop {
        let text = read();
        if found(&text) {
            return (true, text);
        }
        if Instant::now() >= deadline {
            return (false, text);
        }
        thread::sleep(Duration::from_millis(100));
    }
}

// ---------------------------------------------------------------------------------------------
// Postfix
// ---------------------------------------------------------------------------------------------

/// Runs Debian's `update-exim4.conf` (from the extracted exim4-config, [`EXIM4_CONFIG`]) in a
/// private root under `root` (a mount namespace and `chroot`: this host's `/etc` is never
/// touched), with `update-exim4.conf.conf` for `split`, the macros file at
/// `target` (an `/etc/exim4/...` path inside the private root); returns the generated
/// configuration's path on this host.
pub fn debian_exim4_conf(root: &Path, split: bool, target: &Path, macros: &[u8]) -> PathBuf {
    let etc = root.join("etc");
    std::fs::create_dir_all(root.join("out")).expect("out");
    for d in ["usr", "dev", "tmp", "upd", "etc"] {
        std::fs::create_dir_all(root.join(d)).expect("dir");
    }
    std::fs::set_permissions(
        root.join("tmp"),
        std::os::unix::fs::PermissionsExt::from_mode(0o1777),
    )
    .expect("chmod tmp");
    for l in ["bin", "lib", "lib64", "sbin"] {
        let _ = std::os::unix::fs::symlink(format!("usr/{l}"), root.join(l));
    }
    let copy = run(Command::new("cp")
        .arg("-a")
        .arg(Path::new(EXIM4_CONFIG).join("etc/exim4"))
        .arg(&etc));
    assert_eq!(copy.status, 0, "{}", copy.stderr);
    for f in ["passwd", "group"] {
        std::fs::copy(Path::new("/etc").join(f), etc.join(f)).expect("copy passwd/group");
    }
    // The templates say `exim_path = /usr/sbin/exim4` (the binary the daemon re-executes on
    // SIGHUP); this host's Exim is elsewhere, as an admin's own build might be.
    for t in [
        "exim4/exim4.conf.template",
        "exim4/conf.d/main/01_exim4-config_listmacrosdefs",
    ] {
        let file = etc.join(t);
        let text = std::fs::read_to_string(&file).expect("exim4-config template");
        let text = text.replace(
            "exim_path = /usr/sbin/exim4",
            &format!("exim_path = {EXIM_BIN}"),
        );
        std::fs::write(&file, text).expect("exim4-config template");
    }
    std::fs::copy(
        Path::new(EXIM4_CONFIG).join("usr/sbin/update-exim4.conf"),
        root.join("upd/update-exim4.conf"),
    )
    .expect("copy update-exim4.conf");
    std::fs::write(etc.join("mailname"), "mail.example.test\n").expect("mailname");
    std::fs::write(
        etc.join("exim4/update-exim4.conf.conf"),
        format!(
            "dc_eximconfig_configtype='internet'\ndc_other_hostnames='mail.example.test'\n\
             dc_local_interfaces='127.0.0.1 ; ::1'\ndc_readhost=''\ndc_relay_domains=''\n\
             dc_minimaldns='false'\ndc_relay_nets=''\ndc_smarthost=''\nCFILEMODE='644'\n\
             dc_use_split_config='{split}'\ndc_hide_mailname=''\ndc_mailname_in_oh='true'\n\
             dc_localdelivery='mail_spool'\n"
        ),
    )
    .expect("update-exim4.conf.conf");
    let inside = root.join(target.strip_prefix("/").expect("absolute"));
    std::fs::create_dir_all(inside.parent().expect("parent")).expect("target dir");
    // Both instructions (a new file, or lines added to localmacros) come to the same bytes here.
    std::fs::write(&inside, macros).expect("placing the macros");
    let script = format!(
        "mount --bind /usr {r}/usr && mount --bind /dev {r}/dev && \
         chroot {r} /bin/sh /upd/update-exim4.conf -d /etc/exim4 -o /out/exim4.conf",
        r = root.display()
    );
    let out = run(Command::new("unshare").args(["-m", "sh", "-c", &script]));
    assert_eq!(
        out.status, 0,
        "update-exim4.conf failed:\n{}\n{}",
        out.stdout, out.stderr
    );
    root.join("out/exim4.conf")
}

/// The TLS lines of a Postfix main.cf naming a key and a certificate file for both roles, as a
/// hand-made configuration would (for a "before the repair" state).
pub fn postfix_tls_files(key: &Path, cert: &Path) -> String {
    let (key, cert) = (key.display(), cert.display());
    format!("smtpd_tls_chain_files = {key}, {cert}\nsmtp_tls_chain_files = {key}, {cert}\n")
}

/// The verbatim contents of `OUT/postfix/main.cf` as chainfix wrote it.
pub fn postfix_tls_from(out: &Path) -> String {
    let file = out.join("postfix/main.cf");
    fs::read_to_string(&file).unwrap_or_else(|e| panic!("reading {}: {e}", file.display()))
}

/// A private Postfix: `BASE/etc` (main.cf, master.cf), `BASE/spool`, `BASE/data`,
/// `BASE/postfix.log`; smtpd on 127.0.0.1:`port`, no chroot. Stopped on drop.
pub struct Postfix {
    /// The instance's own directory.
    pub base: PathBuf,
    /// Its configuration directory (`postfix -c`).
    pub conf: PathBuf,
    /// The port its smtpd listens on.
    pub port: u16,
    tag: String,
    running: bool,
}

impl Postfix {
    /// Writes the configuration of a new instance in `base` without starting it. main.cf is
    /// the base settings, with `settings` replacing or adding parameters, followed by `tls`
    /// verbatim (e.g. chainfix's `postfix/main.cf`).
    pub fn configure(base: &Path, settings: &[(&str, &str)], tls: &str) -> Postfix {
        assert_traversable(base);
        let conf = base.join("etc");
        for dir in [base.to_path_buf(), conf.clone(), base.join("spool")] {
            make_dir(&dir);
        }
        let data = base.join("data");
        make_dir(&data);
        // data_directory must belong to mail_owner.
        let out = run(Command::new("chown").arg("postfix:postfix").arg(&data));
        assert_eq!(
            out.status,
            0,
            "chown postfix {}: {}",
            data.display(),
            out.stderr
        );
        let pf = Postfix {
            base: base.to_path_buf(),
            conf,
            port: free_port(),
            tag: unique_tag(),
            running: false,
        };
        pf.write_main_cf(settings, tls);
        pf.write_master_cf();
        pf
    }

    /// `configure` and `start`.
    pub fn start(base: &Path, settings: &[(&str, &str)], tls: &str) -> Postfix {
        let mut pf = Postfix::configure(base, settings, tls);
        pf.start_now();
        pf
    }

    /// Starts an instance made by `configure` (and perhaps changed since, e.g. by chainfix).
    pub fn start_configured(&mut self) {
        self.start_now();
    }

    /// The main.cf this instance is given.
    fn main_cf(&self, settings: &[(&str, &str)], tls: &str) -> String {
        let base = path_str(&self.base);
        let mut params: Vec<(String, String)> = [
            ("compatibility_level", "3.6".to_string()),
            ("queue_directory", format!("{base}/spool")),
            ("data_directory", format!("{base}/data")),
            ("mail_owner", "postfix".to_string()),
            ("setgid_group", "postdrop".to_string()),
            ("myhostname", format!("postfix-{}.test", self.tag)),
            ("mydomain", "test".to_string()),
            ("myorigin", "$myhostname".to_string()),
            ("mydestination", String::new()),
            ("inet_interfaces", "127.0.0.1".to_string()),
            ("inet_protocols", "ipv4".to_string()),
            ("mynetworks", "127.0.0.0/8".to_string()),
            (
                "maillog_file_prefixes",
                format!("/var, /dev/stdout, {base}"),
            ),
            ("maillog_file", format!("{base}/postfix.log")),
            ("syslog_name", format!("postfix-{}", self.tag)),
            (
                "smtpd_banner",
                format!("$myhostname ESMTP chainfix-test-{}", self.tag),
            ),
            ("smtpd_tls_security_level", "may".to_string()),
            ("smtpd_tls_loglevel", "1".to_string()),
            ("smtp_tls_loglevel", "1".to_string()),
            ("smtpd_relay_restrictions", "reject".to_string()),
            ("alias_maps", String::new()),
            ("alias_database", String::new()),
            ("biff", "no".to_string()),
            // Nothing ever leaves loopback: no DNS, and mail without a relayhost is dropped.
            ("smtp_dns_support_level", "disabled".to_string()),
            ("default_transport", "discard".to_string()),
            ("notify_classes", String::new()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        for (name, value) in settings {
            match params.iter_mut().find(|(k, _)| k == name) {
                Some(entry) => entry.1 = value.to_string(),
                None => params.push((name.to_string(), value.to_string())),
            }
        }
        let mut text = String::from("# Test instance written by tests/common/mta.rs\n");
        for (k, v) in &params {
            text.push_str(&format!("{k} = {v}\n"));
        }
        text.push_str("\n# ---- TLS settings under test (verbatim) ----\n");
        text.push_str(tls);
        if !tls.ends_with('\n') {
            text.push('\n');
        }
        text
    }

    fn write_main_cf(&self, settings: &[(&str, &str)], tls: &str) {
        write_file(&self.conf.join("main.cf"), &self.main_cf(settings, tls));
    }

    fn write_master_cf(&self) {
        let master = self.conf.join("master.cf");
        fs::copy(MASTER_CF_PROTO, &master)
            .unwrap_or_else(|e| panic!("copying {MASTER_CF_PROTO}: {e}"));
        let conf = path_str(&self.conf);
        let port = self.port;
        for args in [
            vec!["-M#", "smtp/inet"],
            vec![
                "-Me",
                &format!("127.0.0.1:{port}/inet = 127.0.0.1:{port} inet n - n - - smtpd"),
            ],
            vec![
                "-Me",
                "postlog/unix-dgram = postlog unix-dgram n - n - 1 postlogd",
            ],
            vec!["-F", "*/*/chroot = n"],
        ] {
            let out = run(Command::new(POSTCONF_BIN).arg("-c").arg(conf).args(&args));
            assert_eq!(
                out.status, 0,
                "postconf {args:?} failed: {}{}",
                out.stdout, out.stderr
            );
        }
    }

    /// `postfix -c CONF check` (exit code and what it printed, through a pseudo-terminal since
    /// Postfix prints its messages only to a terminal), plus the log lines it added.
    pub fn check(&self) -> Output {
        let before = self.log().len();
        let out = self.postfix_on_tty("check");
        let log = self.log();
        Output {
            stderr: format!("{}{}", out.stderr, log.get(before..).unwrap_or_default()),
            ..out
        }
    }

    /// Runs `postfix -c CONF ACTION` under `script` (a pseudo-terminal), output captured.
    fn postfix_on_tty(&self, action: &str) -> Output {
        let capture = self.base.join(format!("postfix-{action}.out"));
        let command = format!("{POSTFIX_BIN} -c '{}' {action}", path_str(&self.conf));
        let (status, text) = run_detached(
            Command::new("script").args(["-qec", &command, "/dev/null"]),
            &capture,
            b"",
            Duration::from_secs(60),
        );
        Output {
            status,
            stdout: text.clone(),
            stderr: String::new(),
            stdout_bytes: text.into_bytes(),
        }
    }

    fn start_now(&mut self) {
        let out = self.postfix_on_tty("start");
        if out.status != 0 {
            panic!(
                "postfix -c {} start failed (exit {}):\n{}\n--- postfix.log (tail) ---\n{}",
                self.conf.display(),
                out.status,
                out.stdout,
                tail(&self.log(), 30)
            );
        }
        self.running = true;
        let token = format!("chainfix-test-{}", self.tag);
        wait_for_banner(self.port, &token, "postfix", &|| {
            format!("--- postfix.log (tail) ---\n{}", tail(&self.log(), 30))
        });
    }

    /// Stops the instance, rewrites main.cf from `settings` and `tls`, and starts it again on
    /// the same port (a restart rather than a reload, so no old smtpd process can answer).
    pub fn restart(&mut self, settings: &[(&str, &str)], tls: &str) {
        self.stop();
        self.write_main_cf(settings, tls);
        self.start_now();
    }

    /// `postfix -c CONF stop` (waits for the master to exit); `abort` if that fails.
    pub fn stop(&mut self) {
        if !self.running {
            return;
        }
        self.running = false;
        let conf = path_str(&self.conf).to_string();
        let out = run_with_timeout(
            Command::new(POSTFIX_BIN).args(["-c", &conf, "stop"]),
            Duration::from_secs(30),
        );
        if out.status != 0 {
            let _ = run_with_timeout(
                Command::new(POSTFIX_BIN).args(["-c", &conf, "abort"]),
                Duration::from_secs(30),
            );
        }
    }

    /// The instance's log so far.
    pub fn log(&self) -> String {
        read_lossy(&self.base.join("postfix.log"))
    }

    /// Waits until the log contains a line containing every one of `needles`; returns that
    /// line, or None after `MAIL_TIMEOUT`.
    pub fn wait_log_line(&self, needles: &[&str]) -> Option<String> {
        wait_line(|| self.log(), needles)
    }

    /// Injects a message with `sendmail -C CONF -f FROM TO`; panics if sendmail fails.
    pub fn sendmail(&self, from: &str, to: &str, message: &str) {
        let capture = self.base.join("sendmail.out");
        let (status, text) = run_detached(
            Command::new(SENDMAIL_BIN)
                .arg("-C")
                .arg(&self.conf)
                .args(["-f", from, to]),
            &capture,
            message.as_bytes(),
            Duration::from_secs(30),
        );
        assert_eq!(
            status,
            0,
            "sendmail -C {} failed: {text}",
            self.conf.display()
        );
    }

    /// `postconf -c CONF -h NAME`: the value Postfix takes for a parameter.
    pub fn param(&self, name: &str) -> String {
        let out = run(Command::new(POSTCONF_BIN)
            .arg("-c")
            .arg(&self.conf)
            .args(["-h", name]));
        assert_eq!(out.status, 0, "postconf -h {name}: {}", out.stderr);
        out.stdout.trim_end().to_string()
    }
}

impl Drop for Postfix {
    fn drop(&mut self) {
        self.stop();
    }
}

fn wait_line(read: impl Fn() -> String, needles: &[&str]) -> Option<String> {
    let matching = |text: &str| {
        text.lines()
            .find(|l| needles.iter().all(|n| l.contains(n)))
            .map(str::to_string)
    };
    let (found, text) = poll_text(MAIL_TIMEOUT, &read, |t| matching(t).is_some());
    if found {
        matching(&text)
    } else {
        None
    }
}

// ---------------------------------------------------------------------------------------------
// Exim
// ---------------------------------------------------------------------------------------------

/// What an Exim instance is given on top of the base settings.
#[derive(Clone, Debug, Default)]
pub struct EximConfig {
    /// Main-section lines after the base settings, e.g. `.include OUT/exim/main.conf`.
    pub main: String,
    /// The body of the RCPT ACL; empty: deny every recipient.
    pub rcpt_acl: String,
    /// Send every message to 127.0.0.1:PORT through `remote_smtp` (client role). Without it
    /// received messages are only queued (`queue_only`), never delivered.
    pub relay_to: Option<u16>,
    /// Options of the `remote_smtp` transport, e.g. `.include OUT/exim/transport.conf`.
    pub transport: String,
}

/// The main-section TLS lines naming a key and a certificate file (a "before" state).
pub fn exim_tls_files(key: &Path, cert: &Path) -> String {
    format!(
        "tls_certificate = {}\ntls_privatekey = {}\n",
        cert.display(),
        key.display()
    )
}

/// A private Exim (the extracted binary run with `-C`): `BASE/exim.conf`, `BASE/spool`,
/// `BASE/log/{main,reject,panic}log`. A daemon (`-bd`) on 127.0.0.1:`port` once started;
/// killed on drop.
pub struct Exim {
    /// The instance's own directory.
    pub base: PathBuf,
    /// Its configuration file (`exim -C`).
    pub conf: PathBuf,
    /// The port its daemon listens on.
    pub port: u16,
    tag: String,
    pid: Option<u32>,
}

impl Exim {
    /// Writes the configuration of a new instance in `base`; no daemon is started (enough for
    /// `-bV`, `-bP` and sending with `send`).
    pub fn configure(base: &Path, config: &EximConfig) -> Exim {
        let exim = Exim::prepare(base);
        exim.write_conf(config);
        exim
    }

    /// A new instance's directories, port and tag, for a configuration made elsewhere (by
    /// Debian's update-exim4.conf from [`Exim::debian_options`]); `start_from` starts it.
    pub fn prepare(base: &Path) -> Exim {
        assert_traversable(base);
        make_dir(base);
        for dir in ["spool", "log"] {
            let path = base.join(dir);
            make_dir(&path);
            let out = run(Command::new("chown")
                .arg(format!("{EXIM_USER}:{EXIM_USER}"))
                .arg(&path));
            assert_eq!(out.status, 0, "chown {}: {}", path.display(), out.stderr);
        }
        Exim {
            base: base.to_path_buf(),
            conf: base.join("exim.conf"),
            port: free_port(),
            tag: unique_tag(),
            pid: None,
        }
    }

    /// Main-section lines for Debian's local macros file that make the generated
    /// configuration this instance's: its spool, log and pid file, port, 127.0.0.1 only, and
    /// the banner `start_from` waits for.
    pub fn debian_options(&self) -> String {
        let base = path_str(&self.base);
        format!(
            "SPOOLDIR = {base}/spool\nMAIN_LOCAL_INTERFACES = <; 127.0.0.1\n\
             log_file_path = {base}/log/%slog\npid_file_path = {base}/exim.pid\n\
             daemon_smtp_ports = {port}\n\
             smtp_banner = $primary_hostname ESMTP chainfix-test-{tag}\n",
            port = self.port,
            tag = self.tag
        )
    }

    /// Checks `conf` with `-bV` and starts the daemon on it.
    pub fn start_from(&mut self, conf: &Path) {
        self.conf = conf.to_path_buf();
        self.start_now();
    }

    /// `configure`, check the configuration with `-bV`, and start the daemon.
    pub fn start(base: &Path, config: &EximConfig) -> Exim {
        let mut exim = Exim::configure(base, config);
        exim.start_now();
        exim
    }

    fn conf_text(&self, c: &EximConfig) -> String {
        let base = path_str(&self.base);
        let mut t = format!(
            "# Test instance written by tests/common/mta.rs\n\
             primary_hostname = exim-{tag}.test\n\
             qualify_domain = exim-{tag}.test\n\
             exim_path = {EXIM_BIN}\n\
             keep_environment =\n\
             exim_user = {EXIM_USER}\n\
             exim_group = {EXIM_USER}\n\
             spool_directory = {base}/spool\n\
             log_file_path = {base}/log/%slog\n\
             pid_file_path = {base}/exim.pid\n\
             daemon_smtp_ports = {port}\n\
             local_interfaces = <; 127.0.0.1\n\
             smtp_banner = $primary_hostname ESMTP chainfix-test-{tag}\n\
             host_lookup =\n\
             rfc1413_hosts =\n\
             rfc1413_query_timeout = 0s\n\
             tls_advertise_hosts = *\n\
             log_selector = +tls_peerdn +tls_cipher +tls_certificate_verified +received_recipients\n\
             acl_smtp_rcpt = acl_rcpt\n",
            tag = self.tag,
            port = self.port,
        );
        if c.relay_to.is_none() {
            t.push_str("queue_only = true\n");
        }
        t.push_str("\n# ---- main-section settings under test ----\n");
        t.push_str(&c.main);
        t.push_str("\n\nbegin acl\n\nacl_rcpt:\n");
        t.push_str(&c.rcpt_acl);
        t.push_str("\n  deny message = relay not permitted (test instance)\n");
        t.push_str("\nbegin routers\n\n");
        match c.relay_to {
            Some(port) => t.push_str(&format!(
                "relay_loopback:\n  driver = manualroute\n  route_list = * 127.0.0.1::{port}\n  \
                 transport = remote_smtp\n  self = send\n  no_more\n"
            )),
            None => t.push_str("drop_all:\n  driver = redirect\n  data = :blackhole:\n"),
        }
        t.push_str(
            "\nbegin transports\n\nremote_smtp:\n  driver = smtp\n  allow_localhost\n  \
             hosts_require_tls = *\n  hosts_try_dane =\n",
        );
        t.push_str("# ---- transport settings under test ----\n");
        t.push_str(&c.transport);
        t.push_str("\n\nbegin retry\n\n*  *  F,1d,1m\n");
        t
    }

    fn write_conf(&self, config: &EximConfig) {
        write_file(&self.conf, &self.conf_text(config));
    }

    /// `exim -C CONF ARGS` (as root), output captured.
    pub fn exim(&self, args: &[&str]) -> Output {
        run_with_timeout(
            Command::new(EXIM_BIN).arg("-C").arg(&self.conf).args(args),
            Duration::from_secs(60),
        )
    }

    /// `exim -C CONF -bV`: the configuration check.
    pub fn check(&self) -> Output {
        self.exim(&["-bV"])
    }

    fn start_now(&mut self) {
        let check = self.check();
        if check.status != 0 {
            panic!(
                "exim -C {} -bV rejects the configuration (exit {}):\n{}{}\n--- exim.conf ---\n{}",
                self.conf.display(),
                check.status,
                check.stdout,
                check.stderr,
                read_lossy(&self.conf)
            );
        }
        let pid_file = self.base.join("exim.pid");
        let _ = fs::remove_file(&pid_file);
        let capture = self.base.join("exim-bd.out");
        let (status, text) = run_detached(
            Command::new(EXIM_BIN).arg("-C").arg(&self.conf).arg("-bd"),
            &capture,
            b"",
            Duration::from_secs(30),
        );
        if status != 0 {
            panic!(
                "exim -C {} -bd failed (exit {status}):\n{text}\n{}",
                self.conf.display(),
                self.diagnostics()
            );
        }
        let (found, pid) = poll_text(
            START_TIMEOUT,
            || read_lossy(&pid_file),
            |t| t.trim().parse::<u32>().is_ok(),
        );
        if !found {
            panic!(
                "exim wrote no pid file {} within {START_TIMEOUT:?}\n{text}\n{}",
                pid_file.display(),
                self.diagnostics()
            );
        }
        self.pid = pid.trim().parse().ok();
        let token = format!("chainfix-test-{}", self.tag);
        wait_for_banner(self.port, &token, "exim", &|| self.diagnostics());
    }

    /// Kills the daemon, rewrites the configuration and starts it again on the same port.
    pub fn restart(&mut self, config: &EximConfig) {
        self.stop();
        self.write_conf(config);
        self.start_now();
    }

    /// Sends SIGTERM to the daemon (by its pid) and waits for it to go; SIGKILL after 10 s.
    pub fn stop(&mut self) {
        let Some(pid) = self.pid.take() else {
            return;
        };
        let proc_dir = PathBuf::from(format!("/proc/{pid}"));
        let alive = || {
            // A zombie has exited already; only a live process has a non-"Z" state.
            fs::read_to_string(proc_dir.join("stat"))
                .map(|s| {
                    s.rsplit(')')
                        .next()
                        .map(|rest| !rest.trim_start().starts_with('Z'))
                        .unwrap_or(false)
                })
                .unwrap_or(false)
        };
        let _ = run(Command::new("kill").args(["-TERM", &pid.to_string()]));
        let deadline = Instant::now() + Duration::from_secs(10);
        while alive() && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(50));
        }
        if alive() {
            let _ = run(Command::new("kill").args(["-KILL", &pid.to_string()]));
        }
    }

    /// `exim -C CONF -odi -f FROM TO` with `message` on stdin: receive and deliver at once
    /// (client role). Returns the exit code and what Exim printed.
    pub fn send(&self, from: &str, to: &str, message: &str) -> (i32, String) {
        let capture = self.base.join("send.out");
        run_detached(
            Command::new(EXIM_BIN)
                .arg("-C")
                .arg(&self.conf)
                .args(["-odi", "-f", from, to]),
            &capture,
            message.as_bytes(),
            Duration::from_secs(60),
        )
    }

    /// The main log so far.
    pub fn mainlog(&self) -> String {
        read_lossy(&self.base.join("log/mainlog"))
    }

    /// The reject log so far.
    pub fn rejectlog(&self) -> String {
        read_lossy(&self.base.join("log/rejectlog"))
    }

    /// The panic log so far.
    pub fn paniclog(&self) -> String {
        read_lossy(&self.base.join("log/paniclog"))
    }

    /// Waits until the main log has a line containing every one of `needles`.
    pub fn wait_log_line(&self, needles: &[&str]) -> Option<String> {
        wait_line(|| self.mainlog(), needles)
    }

    /// Log tails for failure messages.
    pub fn diagnostics(&self) -> String {
        format!(
            "--- exim mainlog (tail) ---\n{}\n--- exim paniclog (tail) ---\n{}",
            tail(&self.mainlog(), 30),
            tail(&self.paniclog(), 30)
        )
    }
}

impl Drop for Exim {
    fn drop(&mut self) {
        self.stop();
    }
}

// ---------------------------------------------------------------------------------------------
// openssl s_client
// ---------------------------------------------------------------------------------------------

/// `openssl s_client -starttls smtp -connect 127.0.0.1:PORT -CAfile ROOT EXTRA...` with stdin
/// closed (it quits after the handshake), limited to 30 s.
pub fn s_client(port: u16, ca_file: &Path, extra: &[&str]) -> Output {
    run_with_timeout(
        Command::new("openssl")
            .args(["s_client", "-starttls", "smtp", "-connect"])
            .arg(format!("127.0.0.1:{port}"))
            .arg("-CAfile")
            .arg(ca_file)
            .args(extra),
        Duration::from_secs(30),
    )
}

/// The certificates (PEM blocks, whitespace removed from the base64) in `text`, in order:
/// what `s_client -showcerts` shows the server sent.
pub fn pem_certificates(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        let line = line.trim();
        if line == "-----BEGIN CERTIFICATE-----" {
            current = Some(String::new());
        } else if line == "-----END CERTIFICATE-----" {
            if let Some(body) = current.take() {
                out.push(body);
            }
        } else if let Some(body) = current.as_mut() {
            body.extend(line.chars().filter(|c| !c.is_whitespace()));
        }
    }
    out
}
