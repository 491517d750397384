//! Real Dovecot on loopback: a private instance for end-to-end tests (std only).
//!
//! `.ci/setup-mtas.sh` installs Debian's dovecot-imapd and dovecot-pop3d (Dovecot 2.3). Each
//! instance has its own configuration, `base_dir` (sockets, `master.pid`), `state_dir` and log
//! under a directory the test gives it, listens only on 127.0.0.1 at ports picked for it (IMAP
//! and POP3, each with STARTTLS and with TLS at once), needs no authentication (a
//! passdb that denies everyone), and is stopped when dropped. It runs as root, its processes as
//! the package's users `dovecot` and `dovenull`: tests carry
//! `#[cfg_attr(not(have_dovecot), ignore = ...)]`.
//!
//! Dovecot 2.4 (Debian 13's) runs the same way from the Debian 13 tree `.ci/setup-dovecot24.sh`
//! makes, through chroot(8) ([`Release::Chroot`]): its configuration, files and the chainfix
//! under test live inside that tree, and its listeners are on the same loopback. Those tests
//! carry `#[cfg_attr(not(have_dovecot24), ignore = ...)]`.

use std::fs;
use std::io::Read;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use super::mta::{free_port, poll_text, share_dir, tail, START_TIMEOUT};
use super::{run, run_with_timeout, Output};

/// The master process.
pub const DOVECOT_BIN: &str = "/usr/sbin/dovecot";
/// The configuration tool chainfix reads the configuration with.
pub const DOVECONF_BIN: &str = "/usr/bin/doveconf";
/// The administration tool (`reload`, `stop`).
pub const DOVEADM_BIN: &str = "/usr/bin/doveadm";

/// Where a Dovecot's programs run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Release {
    /// This host's (Debian 12's Dovecot 2.3).
    Host,
    /// Inside this Debian 13 tree (Dovecot 2.4), through chroot(8).
    Chroot(PathBuf),
}

impl Release {
    /// Debian 13's Dovecot 2.4 in the tree build.rs found (`CHAINFIX_DOVECOT24_ROOT`).
    pub fn dovecot24() -> Release {
        Release::Chroot(PathBuf::from(env!("CHAINFIX_DOVECOT24_ROOT")))
    }

    /// A command running `program` (an absolute path as the release sees it).
    pub fn command(&self, program: &str) -> Command {
        match self {
            Release::Host => Command::new(program),
            Release::Chroot(root) => {
                let mut cmd = Command::new("chroot");
                cmd.arg(root).arg(program);
                cmd
            }
        }
    }

    /// `path`, a path on this host, as the release's programs see it.
    pub fn inner(&self, path: &Path) -> PathBuf {
        match self {
            Release::Host => path.to_path_buf(),
            Release::Chroot(root) => {
                let rel = path
                    .strip_prefix(root)
                    .unwrap_or_else(|_| panic!("{} is outside {}", path.display(), root.display()));
                Path::new("/").join(rel)
            }
        }
    }

    /// Where a test's directory goes: anywhere on the host, or under the tree's `/tmp`.
    pub fn test_dir(&self) -> tempfile::TempDir {
        match self {
            Release::Host => tempfile::tempdir(),
            Release::Chroot(root) => tempfile::tempdir_in(root.join("tmp")),
        }
        .expect("creating the test directory")
    }

    /// The chainfix under test, run as the release sees it: inside a tree, a copy made once
    /// per test process at `/usr/local/bin/chainfix-under-test` (renamed into place, so a
    /// copy running in another process is not disturbed).
    pub fn chainfix(&self) -> Command {
        let Release::Chroot(root) = self else {
            return Command::new(env!("CARGO_BIN_EXE_chainfix"));
        };
        static COPIED: std::sync::Once = std::sync::Once::new();
        let inside = "/usr/local/bin/chainfix-under-test";
        COPIED.call_once(|| {
            let target = root.join(&inside[1..]);
            let partial = target.with_extension(format!("partial-{}", std::process::id()));
            fs::copy(env!("CARGO_BIN_EXE_chainfix"), &partial)
                .unwrap_or_else(|e| panic!("{}: {e}", partial.display()));
            fs::rename(&partial, &target).unwrap_or_else(|e| panic!("{}: {e}", target.display()));
        });
        self.command(inside)
    }
}

/// A running private Dovecot.
pub struct Dovecot {
    pub release: Release,
    pub base: PathBuf,
    /// Its configuration file (`dovecot -c`, `doveconf -c`).
    pub conf: PathBuf,
    /// IMAP with STARTTLS (a port-143 listener).
    pub imap: u16,
    /// IMAP with TLS at once (a port-993 listener, `ssl = yes`).
    pub imaps: u16,
    /// POP3 with STARTTLS (a port-110 listener).
    pub pop3: u16,
    /// POP3 with TLS at once (a port-995 listener, `ssl = yes`).
    pub pop3s: u16,
    tag: String,
    pid: Option<u32>,
}

impl Dovecot {
    /// Writes the configuration of a new instance in `base`: its directories and listeners,
    /// then `tls` (the `ssl_cert`/`ssl_key` lines and blocks under test) as written, or an
    /// `!include` of it when `tls_file` names a file relative to `base`.
    pub fn configure(base: &Path, tls: &str, tls_file: Option<&str>) -> Dovecot {
        Dovecot::configure_release(Release::Host, base, tls, tls_file)
    }

    /// `configure` for `release` (`base` on this host, inside the release's tree); 2.4's
    /// configuration adds the version lines it requires and names its passdb by driver.
    pub fn configure_release(
        release: Release,
        base: &Path,
        tls: &str,
        tls_file: Option<&str>,
    ) -> Dovecot {
        fs::create_dir_all(base).unwrap_or_else(|e| panic!("{}: {e}", base.display()));
        share_dir(base);
        let (versions, passdb) = match release {
            Release::Host => (
                "",
                "passdb {\n  driver = static\n  args = password=\n  deny = yes\n}\n",
            ),
            Release::Chroot(_) => (
                "dovecot_config_version = 2.4.0\ndovecot_storage_version = 2.4.0\n",
                "passdb static {\n  password = x\n  deny = yes\n}\n",
            ),
        };
        let inner = release.inner(base);
        let d = Dovecot {
            release,
            base: base.to_path_buf(),
            conf: base.join("dovecot.conf"),
            imap: free_port(),
            imaps: free_port(),
            pop3: free_port(),
            pop3s: free_port(),
            tag: format!("chainfix-test-{}x{}", std::process::id(), free_port()),
            pid: None,
        };
        let b = inner.display();
        let mut text = format!(
            "# Test instance written by tests/common/dovecot.rs\n\
             {versions}\
             base_dir = {b}/run\n\
             state_dir = {b}/state\n\
             log_path = {b}/dovecot.log\n\
             protocols = imap pop3\n\
             listen = 127.0.0.1\n\
             ssl = yes\n\
             default_internal_user = dovecot\n\
             default_login_user = dovenull\n\
             login_greeting = {tag}\n\
             {passdb}\
             service imap-login {{\n\
             \x20 inet_listener imap {{\n    port = {imap}\n  }}\n\
             \x20 inet_listener imaps {{\n    port = {imaps}\n    ssl = yes\n  }}\n\
             }}\n\
             service pop3-login {{\n\
             \x20 inet_listener pop3 {{\n    port = {pop3}\n  }}\n\
             \x20 inet_listener pop3s {{\n    port = {pop3s}\n    ssl = yes\n  }}\n\
             }}\n",
            tag = d.tag,
            imap = d.imap,
            imaps = d.imaps,
            pop3 = d.pop3,
            pop3s = d.pop3s,
        );
        match tls_file {
            Some(rel) => {
                let path = base.join(rel);
                if let Some(parent) = path.parent() {
                    fs::create_dir_all(parent).unwrap_or_else(|e| panic!("{e}"));
                }
                fs::write(&path, tls).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                text.push_str(&format!("!include {rel}\n"));
            }
            None => text.push_str(tls),
        }
        fs::write(&d.conf, text).unwrap_or_else(|e| panic!("{}: {e}", d.conf.display()));
        d
    }

    /// `configure`, check with `doveconf -n`, start, and wait for the IMAP greeting.
    pub fn start(base: &Path, tls: &str, tls_file: Option<&str>) -> Dovecot {
        Dovecot::start_release(Release::Host, base, tls, tls_file)
    }

    /// `start` for `release`.
    pub fn start_release(
        release: Release,
        base: &Path,
        tls: &str,
        tls_file: Option<&str>,
    ) -> Dovecot {
        let mut d = Dovecot::configure_release(release, base, tls, tls_file);
        d.start_now();
        d
    }

    /// Appends `text` to the configuration (before the start, or followed by a reload).
    pub fn append(&self, text: &str) {
        let mut conf = fs::read_to_string(&self.conf).expect("dovecot.conf");
        conf.push_str(text);
        fs::write(&self.conf, conf).expect("dovecot.conf");
    }

    /// The configuration file as Dovecot sees it (inside its tree).
    pub fn conf_inner(&self) -> PathBuf {
        self.release.inner(&self.conf)
    }

    /// `doveconf -c CONF ARGS`.
    pub fn doveconf(&self, args: &[&str]) -> Output {
        run(self
            .release
            .command(DOVECONF_BIN)
            .arg("-c")
            .arg(self.conf_inner())
            .args(args))
    }

    /// `doveadm -c CONF reload`.
    pub fn reload(&self) {
        let out = run(self
            .release
            .command(DOVEADM_BIN)
            .arg("-c")
            .arg(self.conf_inner())
            .arg("reload"));
        assert_eq!(out.status, 0, "doveadm reload: {}", out.stderr);
        thread::sleep(Duration::from_millis(500));
    }

    pub fn start_now(&mut self) {
        let check = self.doveconf(&["-n"]);
        assert_eq!(
            check.status,
            0,
            "doveconf -n rejects the configuration:\n{}\n--- dovecot.conf ---\n{}",
            check.stderr,
            fs::read_to_string(&self.conf).unwrap_or_default()
        );
        // The master forks into the background and keeps its inherited stdout and stderr:
        // they go to a file, or a reader would wait for their end for as long as it runs.
        let capture = self.base.join("dovecot-start.out");
        let file = fs::File::create(&capture).expect("capture file");
        let mut child = self
            .release
            .command(DOVECOT_BIN)
            .arg("-c")
            .arg(self.conf_inner())
            .stdin(Stdio::null())
            .stdout(file.try_clone().expect("capture file"))
            .stderr(file)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {DOVECOT_BIN}: {e}"));
        let deadline = Instant::now() + Duration::from_secs(30);
        let status = loop {
            if let Some(status) = child.try_wait().expect("waiting for dovecot") {
                break status;
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                panic!("dovecot -c {} did not return", self.conf.display());
            }
            thread::sleep(Duration::from_millis(20));
        };
        assert!(
            status.success(),
            "dovecot -c {} failed: {}\n{}",
            self.conf.display(),
            fs::read_to_string(&capture).unwrap_or_default(),
            self.diagnostics()
        );
        let pid_file = self.base.join("run/master.pid");
        let (found, pid) = poll_text(
            START_TIMEOUT,
            || fs::read_to_string(&pid_file).unwrap_or_default(),
            |t| t.trim().parse::<u32>().is_ok(),
        );
        assert!(found, "no {}\n{}", pid_file.display(), self.diagnostics());
        self.pid = pid.trim().parse().ok();
        self.wait_for_greeting();
    }

    /// Connects to the IMAP port until the greeting names this instance.
    fn wait_for_greeting(&self) {
        let addr = SocketAddr::from(([127, 0, 0, 1], self.imap));
        let deadline = Instant::now() + START_TIMEOUT;
        let mut last = String::from("no connection yet");
        while Instant::now() < deadline {
            if let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_secs(2)) {
                let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
                let mut buf = [0u8; 512];
                let n = s.read(&mut buf).unwrap_or(0);
                last = String::from_utf8_lossy(&buf[..n]).into_owned();
                if last.contains(&self.tag) {
                    return;
                }
            }
            thread::sleep(Duration::from_millis(100));
        }
        panic!(
            "dovecot did not greet on 127.0.0.1:{} within {START_TIMEOUT:?} ({last:?})\n{}",
            self.imap,
            self.diagnostics()
        );
    }

    /// SIGTERM to the master, and waits for it to go (SIGKILL after 10 s).
    pub fn stop(&mut self) {
        let Some(pid) = self.pid.take() else {
            return;
        };
        let alive = || {
            fs::read_to_string(format!("/proc/{pid}/stat"))
                .map(|s| {
                    s.rsplit(')')
                        .next()
                        .is_some_and(|r| !r.trim_start().starts_with('Z'))
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

    /// The log so far.
    pub fn log(&self) -> String {
        fs::read(self.base.join("dovecot.log"))
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    }

    pub fn diagnostics(&self) -> String {
        format!("--- dovecot.log (tail) ---\n{}", tail(&self.log(), 30))
    }
}

impl Drop for Dovecot {
    fn drop(&mut self) {
        self.stop();
    }
}

/// `openssl s_client [-starttls PROTO] -connect 127.0.0.1:PORT -CAfile CA EXTRA...` with stdin
/// closed, limited to 30 s.
pub fn s_client(port: u16, starttls: Option<&str>, ca_file: &Path, extra: &[&str]) -> Output {
    let mut cmd = Command::new("openssl");
    cmd.arg("s_client");
    if let Some(p) = starttls {
        cmd.args(["-starttls", p]);
    }
    run_with_timeout(
        cmd.arg("-connect")
            .arg(format!("127.0.0.1:{port}"))
            .arg("-CAfile")
            .arg(ca_file)
            .args(extra),
        Duration::from_secs(30),
    )
}
