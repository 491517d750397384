//! Build probe for the test suite: finds the programs and data the tests need and sets cfgs.
//!
//! Nothing here affects the chainfix binary. Each `have_*` cfg (declared in Cargo.toml's
//! `unexpected_cfgs` lint) is set when its program or data is usable on this machine; a test
//! that needs one carries `#[cfg_attr(not(have_exim), ignore = "needs Exim ...")]`, so
//! `cargo test` counts it as ignored, with the reason, instead of passing without running.
//!
//! `CHAINFIX_REQUIRE_MTA=1`, `CHAINFIX_REQUIRE_ANSIBLE=1` and `CHAINFIX_REQUIRE_SHARED=1`
//! (set by `.ci/run`) turn a missing requirement into a build failure, so CI cannot go green
//! with tests ignored. Overrides: `CHAINFIX_EXIM_ROOT` (where Exim was extracted, default
//! `/opt/chainfix-test/exim`), `CHAINFIX_DOVECOT24_ROOT` (the Debian 13 tree holding Dovecot
//! 2.4, default `/opt/chainfix-test/dovecot24`) and `CHAINFIX_SHARED_DIR` (default `../shared`
//! beside the crate).
//!
//! The probe reruns when one of those variables or `PATH` changes, or when a probed file (or
//! the directory a missing one would appear in) changes; after installing into a directory that
//! did not exist before, `touch build.rs`.

use std::env;
use std::fs;
use std::path::{Path, PathBuf};

/// Where `.ci/setup-mtas.sh` extracts Debian's exim4-daemon-light.
const DEFAULT_EXIM_ROOT: &str = "/opt/chainfix-test/exim";
/// The user Debian's Exim binary has compiled in.
const EXIM_USER: &str = "Debian-exim";
/// What tests/common/mta.rs runs for Postfix.
const POSTFIX_FILES: [&str; 4] = [
    "/usr/sbin/postfix",
    "/usr/sbin/postconf",
    "/usr/sbin/sendmail",
    "/etc/postfix/master.cf.proto",
];

/// The nginx tests/common/https.rs runs (installed by `.ci/setup-https.sh`).
const NGINX_BIN: &str = "/usr/sbin/nginx";
/// What tests/common/dovecot.rs runs (Debian's dovecot-core, with dovecot-imapd and
/// dovecot-pop3d for the protocols).
const DOVECOT_FILES: [&str; 5] = [
    "/usr/sbin/dovecot",
    "/usr/bin/doveconf",
    "/usr/bin/doveadm",
    "/usr/lib/dovecot/imap-login",
    "/usr/lib/dovecot/pop3-login",
];
/// The users Debian's Dovecot runs its processes as (`default_internal_user`,
/// `default_login_user`).
const DOVECOT_USERS: [&str; 2] = ["dovecot", "dovenull"];

/// Where `.ci/setup-dovecot24.sh` puts Debian 13's tree with Dovecot 2.4.
const DEFAULT_DOVECOT24_ROOT: &str = "/opt/chainfix-test/dovecot24";

/// Where `.ci/setup-mtas.sh` extracts Debian's exim4-config.
const EXIM4_CONFIG_ROOT: &str = "/opt/chainfix-test/exim4-config";

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    for var in [
        "CHAINFIX_REQUIRE_MTA",
        "CHAINFIX_REQUIRE_ANSIBLE",
        "CHAINFIX_REQUIRE_SHARED",
        "CHAINFIX_EXIM_ROOT",
        "CHAINFIX_DOVECOT24_ROOT",
        "CHAINFIX_SHARED_DIR",
        "PATH",
    ] {
        println!("cargo:rerun-if-env-changed={var}");
    }

    let root = is_root();
    let exim_root = env::var_os("CHAINFIX_EXIM_ROOT")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_EXIM_ROOT));
    let shared = shared_dir();
    println!("cargo:rustc-env=CHAINFIX_EXIM_ROOT={}", exim_root.display());
    let dovecot24_root = env::var_os("CHAINFIX_DOVECOT24_ROOT")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_DOVECOT24_ROOT));
    println!(
        "cargo:rustc-env=CHAINFIX_DOVECOT24_ROOT={}",
        dovecot24_root.display()
    );
    println!("cargo:rustc-env=CHAINFIX_SHARED_DIR={}", shared.display());

    let mut missing: Vec<String> = Vec::new();

    let mut postfix = missing_files(&POSTFIX_FILES.map(PathBuf::from));
    if !root {
        postfix.push("root (Postfix is started as root)".into());
    }
    let mut exim = missing_files(&[exim_root.join("usr/sbin/exim4")]);
    if !user_exists(EXIM_USER) {
        exim.push(format!("the user {EXIM_USER}"));
    }
    if !root {
        exim.push("root (Exim is started as root)".into());
    }
    // Debian's exim4-config (update-exim4.conf), extracted beside Exim.
    let mut exim4_config =
        missing_files(&[PathBuf::from(EXIM4_CONFIG_ROOT).join("usr/sbin/update-exim4.conf")]);
    exim4_config.extend(exim.iter().cloned());
    let mut dovecot = missing_files(&DOVECOT_FILES.map(PathBuf::from));
    for user in DOVECOT_USERS {
        if !user_exists(user) {
            dovecot.push(format!("the user {user}"));
        }
    }
    if !root {
        dovecot.push("root (Dovecot is started as root)".into());
    }
    // tests/dovecot24.rs runs the same programs inside that tree, through chroot(8).
    let mut dovecot24 = missing_files(&DOVECOT_FILES.map(|f| dovecot24_root.join(&f[1..])));
    dovecot24.extend(missing_programs(&["chroot"]));
    if !root {
        dovecot24.push("root (chroot and Dovecot need it)".into());
    }
    let ansible = missing_programs(&["ansible-playbook", "ansible-doc"]);
    let realworld = missing_files(&[
        shared.join("realworld/MANIFEST.tsv"),
        shared.join("realworld/aia/url-map.tsv"),
    ]);
    let limbo = missing_files(&[shared.join("conformance/x509-limbo/limbo.json.gz")]);
    let mut script = missing_programs(&["script"]);
    if script.is_empty() && !is_util_linux_script() {
        script.push("util-linux's script (another `script` is on PATH)".into());
    }
    let openssl = missing_programs(&["openssl"]);
    let nginx = missing_files(&[PathBuf::from(NGINX_BIN)]);
    // tests/domain.rs: knot serves the test zones, ldns signs them, unbound validates
    // (.ci/setup-dns.sh).
    let dns_servers = missing_programs(&["knotd", "ldns-keygen", "ldns-signzone", "unbound"]);

    let require_mta = required("CHAINFIX_REQUIRE_MTA");
    let require_ansible = required("CHAINFIX_REQUIRE_ANSIBLE");
    let require_shared = required("CHAINFIX_REQUIRE_SHARED");
    for (cfg, what, lacking, required) in [
        ("have_postfix", "Postfix", &postfix, require_mta),
        ("have_exim", "Exim", &exim, require_mta),
        ("have_dovecot", "Dovecot", &dovecot, require_mta),
        ("have_dovecot24", "Dovecot 2.4", &dovecot24, require_mta),
        (
            "have_exim4_config",
            "Debian's exim4-config",
            &exim4_config,
            require_mta,
        ),
        ("have_ansible", "Ansible", &ansible, require_ansible),
        (
            "have_realworld",
            "../shared/realworld",
            &realworld,
            require_shared,
        ),
        ("have_limbo", "x509-limbo", &limbo, require_shared),
        ("have_script", "util-linux script", &script, false),
        ("have_openssl", "openssl", &openssl, false),
        ("have_nginx", "nginx", &nginx, require_mta),
        (
            "have_dns_servers",
            "knot, ldnsutils and unbound",
            &dns_servers,
            require_mta,
        ),
    ] {
        if lacking.is_empty() {
            println!("cargo:rustc-cfg={cfg}");
        } else if required {
            missing.push(format!("{what}: missing {}", lacking.join(", ")));
        }
    }
    if ipv6_loopback() {
        println!("cargo:rustc-cfg=have_ipv6_loopback");
    }
    if root || unprivileged_port_start().is_some_and(|start| start <= 465) {
        println!("cargo:rustc-cfg=have_privileged_ports");
    }

    if !missing.is_empty() {
        eprintln!(
            "chainfix build.rs: CHAINFIX_REQUIRE_* is set but the tests cannot run:\n  {}\n\
             Postfix, Exim and Dovecot: .ci/setup-mtas.sh (as root); Dovecot 2.4: \
             .ci/setup-dovecot24.sh (as root); nginx: .ci/setup-https.sh; \
             knot, ldnsutils and unbound: .ci/setup-dns.sh (as root); Ansible: pip install \
             'ansible-core==2.17.*' and put it on PATH; shared data: ../shared or \
             CHAINFIX_SHARED_DIR.",
            missing.join("\n  ")
        );
        std::process::exit(1);
    }
}

/// `CHAINFIX_SHARED_DIR`, or `../shared` beside the crate, made absolute.
fn shared_dir() -> PathBuf {
    let manifest = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    let dir = match env::var_os("CHAINFIX_SHARED_DIR") {
        Some(dir) => manifest.join(dir),
        None => manifest.join("../shared"),
    };
    fs::canonicalize(&dir).unwrap_or(dir)
}

/// Whether `var` is set to 1.
fn required(var: &str) -> bool {
    env::var(var).is_ok_and(|v| v == "1")
}

/// The paths that do not exist; each is watched (or, when missing, the directory it would
/// appear in, if that exists: cargo treats a missing watched file as always changed).
fn missing_files(paths: &[PathBuf]) -> Vec<String> {
    let mut missing = Vec::new();
    for path in paths {
        if path.exists() {
            watch(path);
        } else {
            if let Some(parent) = path.parent().filter(|p| p.is_dir()) {
                watch(parent);
            }
            missing.push(path.display().to_string());
        }
    }
    missing
}

/// The programs not found as executable files on `PATH`.
fn missing_programs(names: &[&str]) -> Vec<String> {
    let dirs: Vec<PathBuf> = env::var_os("PATH")
        .map(|p| env::split_paths(&p).filter(|d| d.is_absolute()).collect())
        .unwrap_or_default();
    let mut missing = Vec::new();
    for name in names {
        match dirs.iter().map(|d| d.join(name)).find(|p| is_executable(p)) {
            Some(found) => watch(&found),
            None => missing.push(format!("{name} on PATH")),
        }
    }
    missing
}

/// Whether `script --version` names util-linux (the tests use its `-q -e -c`).
fn is_util_linux_script() -> bool {
    std::process::Command::new("script")
        .arg("--version")
        .output()
        .is_ok_and(|out| String::from_utf8_lossy(&out.stdout).contains("util-linux"))
}

fn watch(path: &Path) {
    println!("cargo:rerun-if-changed={}", path.display());
}

#[cfg(unix)]
fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(not(unix))]
fn is_executable(path: &Path) -> bool {
    path.is_file()
}

/// Whether the effective uid is 0 (Linux: the second field of `Uid:` in /proc/self/status).
fn is_root() -> bool {
    fs::read_to_string("/proc/self/status").is_ok_and(|s| {
        s.lines()
            .find(|l| l.starts_with("Uid:"))
            .and_then(|l| l.split_whitespace().nth(2))
            == Some("0")
    })
}

fn user_exists(name: &str) -> bool {
    watch(Path::new("/etc/passwd"));
    fs::read_to_string("/etc/passwd")
        .is_ok_and(|s| s.lines().any(|l| l.split(':').next() == Some(name)))
}

/// Whether a socket can be bound on `::1` (containers often have no IPv6 loopback).
fn ipv6_loopback() -> bool {
    std::net::TcpListener::bind("[::1]:0").is_ok()
}

/// The lowest port an unprivileged process may bind (Linux), if the kernel says.
fn unprivileged_port_start() -> Option<u16> {
    fs::read_to_string("/proc/sys/net/ipv4/ip_unprivileged_port_start")
        .ok()?
        .trim()
        .parse()
        .ok()
}
