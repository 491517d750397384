//! Dovecot discovery: the certificate files each listener, local address, protocol and SNI
//! name loads, read from `doveconf -c CONFIG -a -P` (every setting, defaults included, in
//! Dovecot's block syntax, with `-P` so `ssl_key` is shown rather than hidden; key *contents*
//! never pass through here, since the values are file references).
//!
//! Dovecot's rules (doc.dovecot.org, "SSL configuration"):
//! * 2.3 names the files with `ssl_cert = </path` and `ssl_key = </path` (the `<` reads the
//!   file; a value without it is the PEM text itself), and a second certificate (one key type
//!   each) with `ssl_alt_cert`/`ssl_alt_key`. 2.4 renamed them `ssl_server_cert_file`,
//!   `ssl_server_key_file` (and `ssl_server_alt_cert_file`/`ssl_server_alt_key_file`), plain
//!   paths (a `<` there is an error: 2.4 reads the file and takes its text as the name);
//!   whichever names doveconf reports are the ones used. 2.4's doveconf prints them grouped,
//!   `ssl_server { cert_file = /path }`, which means `ssl_server_cert_file = /path`; a
//!   configuration may use either spelling (Debian 13's `10-ssl.conf` uses the flat one).
//! * 2.4 prints `protocols` as a boolean list (`protocols { imap = yes }`) when the
//!   configuration builds it that way, prints an empty `listen` for its default (every IPv4
//!   and IPv6 address), and prints only the login listeners the configuration names, without
//!   their default port or `ssl`: Dovecot 2.4.1 still opens the built-in ones (imap 143,
//!   pop3 110 and submission 587 with STARTTLS; imaps 993, pop3s 995 and submissions 465 with
//!   TLS at once), and a named one without a port gets its built-in port, or none (checked
//!   against Debian 13's 2.4.1 with `ss -ltn`). 2.3 prints all of them with their ports.
//! * `local IP { }`, `protocol NAME { }` and `local_name NAME { }` (SNI) blocks override the
//!   global values; a block that sets none of them inherits. Each block that sets a certificate
//!   or key is a slot of its own.
//! * Listeners are the `inet_listener`s of `imap-login`, `pop3-login` and `submission-login`
//!   for the protocols in `protocols`; `ssl = yes` on a listener means TLS from the first byte
//!   (993, 995), otherwise STARTTLS of its protocol; `address` defaults to `listen`; port 0
//!   disables one. `ssl = no` globally means no TLS at all.
//! * Dovecot opens these files as root before dropping privileges: no other user must read
//!   them.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use super::command;
use super::{Deployment, DiscoverError, Listener, Mta, Place, Setting, Slot};
use crate::chain::Role;
use crate::probe::StartTls;

/// Deepest block nesting accepted in doveconf's output. Dovecot's own settings nest three
/// deep (`service` > `inet_listener`; `local` > `protocol` > a plugin block); 16 is far past
/// any real configuration.
pub const MAX_DEPTH: usize = 16;
/// Most lines of doveconf output read. A full 2.3 configuration prints about 1,100; the
/// output budget of [`command`] bounds the bytes, this the work per line.
pub const MAX_LINES: usize = 200_000;

/// Most filter blocks that set a certificate or key (each one is a slot, judged and maybe
/// probed). A host with a `local_name` per hosted domain has dozens; thousands would be a
/// generated configuration this tool should not walk slot by slot.
pub const MAX_FILTER_SLOTS: usize = 1000;

/// The filter block kinds whose settings apply to some connections only.
const FILTERS: [&str; 4] = ["local", "local_name", "protocol", "remote"];

/// The setting names of one Dovecot generation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Names {
    pub cert: &'static str,
    pub key: &'static str,
    pub alt_cert: &'static str,
    pub alt_key: &'static str,
    /// 2.3's values are `<FILE`; 2.4's are the path itself.
    pub angle: bool,
}

/// Dovecot 2.3 (Debian 12).
pub const NAMES_23: Names = Names {
    cert: "ssl_cert",
    key: "ssl_key",
    alt_cert: "ssl_alt_cert",
    alt_key: "ssl_alt_key",
    angle: true,
};

/// Dovecot 2.4 (Debian 13). doveconf prints these grouped (`ssl_server { cert_file = }`);
/// [`ungroup`] gives them back their flat names.
pub const NAMES_24: Names = Names {
    cert: "ssl_server_cert_file",
    key: "ssl_server_key_file",
    alt_cert: "ssl_server_alt_cert_file",
    alt_key: "ssl_server_alt_key_file",
    angle: false,
};

/// One `key = value` of doveconf's output and the blocks it sits in (outermost first).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub path: Vec<String>,
    pub key: String,
    pub value: String,
}

/// The settings group 2.4 writes as a block: `ssl_server { cert_file = X }` is
/// `ssl_server_cert_file = X`. Only the group holding the certificate settings is read so.
const SSL_SERVER_GROUP: &str = "ssl_server";

/// A setting written inside `blocks`, as Dovecot 2.4 reads it: inside an `ssl_server` group
/// block, the group's prefix joins the name and the group is not a block of its own.
pub fn ungroup<'a>(blocks: &'a [String], key: &str) -> (&'a [String], String) {
    match blocks.split_last() {
        Some((last, outer)) if last == SSL_SERVER_GROUP => {
            (outer, format!("{SSL_SERVER_GROUP}_{key}"))
        }
        _ => (blocks, key.to_string()),
    }
}

/// Parses doveconf's block output into entries. Comments and the version header are skipped;
/// a block header is a line ending in `{` (`service imap-login {`, `local_name mx {`).
pub fn parse(text: &str) -> Result<Vec<Entry>, DiscoverError> {
    let mut path: Vec<String> = Vec::new();
    let mut out = Vec::new();
    for (n, raw) in text.lines().enumerate() {
        if n >= MAX_LINES {
            return Err(DiscoverError::Config(format!(
                "doveconf printed more than {MAX_LINES} lines"
            )));
        }
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if line == "}" {
            if path.pop().is_none() {
                return Err(DiscoverError::Config(format!(
                    "doveconf output line {}: a }} closes no block",
                    n + 1
                )));
            }
            continue;
        }
        if let Some((key, value)) = line.split_once('=') {
            if !key.trim().contains(char::is_whitespace) {
                let (at, key) = ungroup(&path, key.trim());
                out.push(Entry {
                    path: at.to_vec(),
                    key,
                    value: unquote(value.trim()).to_string(),
                });
                continue;
            }
        }
        if let Some(header) = line.strip_suffix('{') {
            if path.len() >= MAX_DEPTH {
                return Err(DiscoverError::Config(format!(
                    "doveconf output nests blocks more than {MAX_DEPTH} deep"
                )));
            }
            path.push(block_header(header));
            continue;
        }
        // Anything else continues a multi-line value (2.3's inline PEM): not a setting.
    }
    Ok(out)
}

/// `local_name "mx.example.com"` -> `local_name mx.example.com`: words joined by one space,
/// quotes removed, so the configuration file's spelling and doveconf's compare equal.
pub fn block_header(header: &str) -> String {
    header
        .split_whitespace()
        .map(unquote)
        .collect::<Vec<_>>()
        .join(" ")
}

/// A value without the double quotes doveconf (or an admin) put around it.
pub fn unquote(v: &str) -> &str {
    v.strip_prefix('"')
        .and_then(|v| v.strip_suffix('"'))
        .unwrap_or(v)
}

/// What a certificate or key value holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Unset,
    /// 2.3's `<FILE`, 2.4's path.
    File(PathBuf),
    /// 2.3's inline PEM: not a file, and never quoted back (it may be a key).
    Inline,
}

/// The file a certificate or key value names.
pub fn file_of(value: &str, names: &Names) -> Value {
    let v = value.trim();
    if v.is_empty() {
        return Value::Unset;
    }
    if names.angle {
        match v.strip_prefix('<') {
            Some(p) => Value::File(PathBuf::from(unquote(p.trim()))),
            None => Value::Inline,
        }
    } else {
        Value::File(PathBuf::from(v))
    }
}

/// The Dovecot release line whose configuration is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Generation {
    V2_3,
    V2_4,
}

/// The settings of the whole configuration, searchable by block and name.
pub struct Settings {
    entries: Vec<Entry>,
    pub generation: Generation,
}

impl Settings {
    pub fn new(entries: Vec<Entry>) -> Settings {
        // 2.4 reports its own names (and none of 2.3's); anything else is read as 2.3.
        let generation = if entries.iter().any(|e| e.key == NAMES_24.cert) {
            Generation::V2_4
        } else {
            Generation::V2_3
        };
        Settings::of(entries, generation)
    }

    /// The settings of doveconf's whole output: the generation from its first line
    /// (`# 2.4.1-4 (7d8c0e5759): /etc/dovecot/dovecot.conf`), else from the names it uses.
    pub fn from_output(output: &str) -> Result<Settings, DiscoverError> {
        let entries = parse(output)?;
        Ok(match version_of(output) {
            Some((2, minor)) if minor >= 4 => Settings::of(entries, Generation::V2_4),
            Some((2, _)) => Settings::of(entries, Generation::V2_3),
            _ => Settings::new(entries),
        })
    }

    fn of(entries: Vec<Entry>, generation: Generation) -> Settings {
        Settings {
            entries,
            generation,
        }
    }

    /// The certificate settings' names in this generation.
    pub fn names(&self) -> Names {
        match self.generation {
            Generation::V2_3 => NAMES_23,
            Generation::V2_4 => NAMES_24,
        }
    }

    /// The value set in exactly the block `path` (`[]`: the top level). 2.4's `doveconf -a`
    /// prints a grouped setting twice, flat with its empty default and then in its group:
    /// a value beats the empty default whatever the order.
    pub fn get(&self, path: &[String], key: &str) -> Option<&str> {
        let mut found = self
            .entries
            .iter()
            .rev()
            .filter(|e| e.path == path && e.key == key);
        let last = found.next()?;
        if !last.value.is_empty() {
            return Some(&last.value);
        }
        Some(
            found
                .find(|e| !e.value.is_empty())
                .map_or(last.value.as_str(), |e| e.value.as_str()),
        )
    }

    fn global(&self, key: &str) -> String {
        self.get(&[], key).unwrap_or_default().to_string()
    }

    /// The value that applies in filter `path`: its own, else the nearest enclosing block's,
    /// else the global one; with the block that set it.
    pub fn effective(&self, path: &[String], key: &str) -> Option<(String, Vec<String>)> {
        (0..=path.len()).rev().find_map(|n| {
            self.get(&path[..n], key)
                .map(|v| (v.to_string(), path[..n].to_vec()))
        })
    }

    /// Every filter block (only `local`, `local_name`, `protocol`, `remote` along its path)
    /// that sets one of `keys`, in the order doveconf prints them; at most
    /// [`MAX_FILTER_SLOTS`].
    pub fn filters_setting(&self, keys: &[&str]) -> Result<Vec<Vec<String>>, DiscoverError> {
        let mut out: Vec<Vec<String>> = Vec::new();
        for e in &self.entries {
            if !e.path.is_empty()
                && e.path.iter().all(|b| FILTERS.contains(&kind(b)))
                && keys.contains(&e.key.as_str())
                && !out.contains(&e.path)
            {
                if out.len() >= MAX_FILTER_SLOTS {
                    return Err(DiscoverError::Config(format!(
                        "more than {MAX_FILTER_SLOTS} local, local_name and protocol blocks \
                         set a certificate or key"
                    )));
                }
                out.push(e.path.clone());
            }
        }
        Ok(out)
    }
}

/// `local_name mx` -> `local_name`.
fn kind(block: &str) -> &str {
    block.split_whitespace().next().unwrap_or_default()
}

/// `local_name mx` -> `mx`.
fn argument(block: &str) -> &str {
    block.split_once(' ').map(|(_, a)| a).unwrap_or_default()
}

/// The release doveconf names in its first line: `# 2.4.1-4 (7d8c0e5759): ...` -> (2, 4).
fn version_of(output: &str) -> Option<(u32, u32)> {
    let first = output.lines().next()?.strip_prefix("# ")?;
    let version = first.split_whitespace().next()?;
    let mut parts = version.split(['.', '-']);
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
}

/// The config file doveconf names in its first line:
/// `# 2.3.19.1 (9b53102964): /etc/dovecot/dovecot.conf`.
fn config_of(output: &str) -> Option<PathBuf> {
    let first = output.lines().next()?.strip_prefix("# ")?;
    let (_, path) = first.split_once("): ")?;
    Some(PathBuf::from(path.trim()))
}

/// One login listener, with the protocol it speaks (`imap`, `pop3`, `submission`).
struct Login {
    listener: Listener,
    protocol: String,
}

/// Reads the Dovecot configuration `config` (or doveconf's default one).
pub fn discover(doveconf: &Path, config: Option<&Path>) -> Result<Deployment, DiscoverError> {
    let output = command::run_ok(
        doveconf,
        config.map(|c| ("-c", c)),
        &[OsStr::new("-a"), OsStr::new("-P")],
    )?;
    let file = match config {
        Some(c) => c.to_path_buf(),
        None => config_of(&output).ok_or_else(|| DiscoverError::ToolFailed {
            program: format!("{} -a -P", doveconf.display()),
            message: "it did not name its configuration file".into(),
        })?,
    };
    let settings = Settings::from_output(&output)?;
    let mut deployment = deployment_of(&settings, &file)?;
    for slot in &mut deployment.slots {
        name_lines(&file, slot);
    }
    Ok(deployment)
}

/// Names the file and line that set each of the slot's settings, where the configuration
/// and its includes show one (doveconf tells values only); left as the configuration file
/// when not found (the repair then says why it cannot change it).
fn name_lines(config: &Path, slot: &mut Slot) {
    let values: Vec<Option<PathBuf>> = vec![slot.files.first().cloned(), slot.key.clone()];
    for (setting, value) in slot.settings.iter_mut().zip(values) {
        let (Place::Dovecot { file, line, filter }, Some(value)) = (&mut setting.place, value)
        else {
            continue;
        };
        if let Ok(at) = super::dovecot_edit::locate(config, filter, &setting.name, &value) {
            *file = at.file;
            *line = Some(at.line);
        }
    }
}

/// The slots and listeners of parsed settings (pure: unit-tested on 2.3 and 2.4 output).
pub fn deployment_of(settings: &Settings, file: &Path) -> Result<Deployment, DiscoverError> {
    let names = settings.names();
    let mut notes = Vec::new();
    if settings.global("ssl") == "no" {
        notes.push("ssl = no: Dovecot offers no TLS on any listener".into());
        return Ok(Deployment {
            mta: Mta::Dovecot,
            config: file.to_path_buf(),
            slots: Vec::new(),
            notes,
            listeners: Vec::new(),
            max_idle: None,
            reads_as: None,
        });
    }
    let logins = logins(settings);
    let listeners: Vec<Listener> = logins.iter().map(|l| l.listener.clone()).collect();

    let mut paths: Vec<Vec<String>> = vec![Vec::new()];
    paths.extend(settings.filters_setting(&[
        names.cert,
        names.key,
        names.alt_cert,
        names.alt_key,
    ])?);
    // Which slot each listener answers without SNI: the most specific matching block.
    let plain: Vec<&Vec<String>> = paths
        .iter()
        .filter(|p| !p.iter().any(|b| kind(b) == "local_name"))
        .collect();
    let home = |l: &Login| -> Vec<String> {
        plain
            .iter()
            .filter(|p| matches(p, l))
            .max_by_key(|p| p.len())
            .map(|p| p.to_vec())
            .unwrap_or_default()
    };
    let mut slots = Vec::new();
    for path in &paths {
        let mut services: Vec<String> = logins
            .iter()
            .filter(|l| {
                if path.iter().any(|b| kind(b) == "local_name") {
                    matches(path, l)
                } else {
                    home(l) == *path
                }
            })
            .map(|l| l.listener.service.clone())
            .collect();
        if services.is_empty() {
            // No listener answers with it (a `local` address Dovecot does not listen on, a
            // `remote` block): named after its block, and never probed.
            services.push(if path.is_empty() {
                "no listener".to_string()
            } else {
                path.join(" ")
            });
        }
        if path.iter().any(|b| kind(b) == "remote") {
            notes.push(format!(
                "{}: a remote block applies to some clients only; its certificate is judged \
                 but no listener is probed for it",
                path.join(" { ")
            ));
        }
        let sni = path
            .iter()
            .find(|b| kind(b) == "local_name")
            .map(|b| argument(b).to_string());
        for (cert, key, algorithm) in [
            (names.cert, names.key, None),
            (names.alt_cert, names.alt_key, Some("alt")),
        ] {
            if let Some(slot) = slot_of(settings, file, path, cert, key, &mut notes)? {
                slots.push(Slot {
                    services: services.clone(),
                    sni: sni.clone(),
                    algorithm,
                    ..slot
                });
            }
        }
    }
    if slots.is_empty() {
        notes.push(format!(
            "{} is not set: Dovecot has no certificate to offer",
            names.cert
        ));
    }
    Ok(Deployment {
        mta: Mta::Dovecot,
        config: file.to_path_buf(),
        slots: super::merge_slots(slots),
        notes,
        listeners,
        // Dovecot's login processes (service_count = 1, the default) serve one connection
        // each and read the configuration when they start.
        max_idle: None,
        reads_as: None,
    })
}

/// The slot of one certificate/key pair at filter `path`, when the block itself sets one of
/// them (the global slot: when a certificate is set at all).
fn slot_of(
    settings: &Settings,
    file: &Path,
    path: &[String],
    cert_name: &str,
    key_name: &str,
    notes: &mut Vec<String>,
) -> Result<Option<Slot>, DiscoverError> {
    let own = settings.get(path, cert_name).is_some() || settings.get(path, key_name).is_some();
    if !path.is_empty() && !own {
        return Ok(None);
    }
    let Some((cert_value, cert_at)) = settings.effective(path, cert_name) else {
        return Ok(None);
    };
    let where_ = |at: &[String], name: &str| Setting {
        place: Place::Dovecot {
            file: file.to_path_buf(),
            line: None,
            filter: at.to_vec(),
        },
        name: name.to_string(),
    };
    let inline = |at: &[String], name: &str| {
        format!(
            "{}: the value is the PEM text itself, not a <FILE: not judged",
            where_(at, name)
        )
    };
    // doveconf shows `$variables` in these values as written (`<$dir/cert.pem`), unexpanded:
    // which file Dovecot loads cannot be told, so nothing is judged or changed.
    let plain = |f: PathBuf, at: &[String], name: &str| {
        if f.to_string_lossy().contains('$') {
            return Err(DiscoverError::Config(format!(
                "{}: the value uses a $variable, which doveconf shows unexpanded; chainfix \
                 cannot tell which file Dovecot loads there: name the file directly",
                where_(at, name)
            )));
        }
        Ok(f)
    };
    let cert = match file_of(&cert_value, &settings.names()) {
        Value::File(c) => plain(c, &cert_at, cert_name)?,
        Value::Unset => return Ok(None),
        Value::Inline => {
            notes.push(inline(&cert_at, cert_name));
            return Ok(None);
        }
    };
    let mut settings_of = vec![where_(&cert_at, cert_name)];
    let key = match settings.effective(path, key_name) {
        Some((v, at)) => match file_of(&v, &settings.names()) {
            Value::File(k) => {
                let k = plain(k, &at, key_name)?;
                settings_of.push(where_(&at, key_name));
                Some(k)
            }
            Value::Unset => None,
            Value::Inline => {
                notes.push(inline(&at, key_name));
                return Ok(None);
            }
        },
        None => None,
    };
    Ok(Some(Slot {
        role: Role::Server,
        services: Vec::new(),
        sni: None,
        algorithm: None,
        files: vec![cert],
        key,
        settings: settings_of,
    }))
}

/// Whether the filter blocks of `path` all apply to connections at listener `l` (a
/// `local_name` block applies to any listener, with SNI; `remote` to none we can probe).
fn matches(path: &[String], l: &Login) -> bool {
    path.iter().all(|b| match kind(b) {
        "local" => {
            let a = argument(b);
            a == l.listener.host || a.strip_suffix("/32") == Some(&l.listener.host)
        }
        "protocol" => argument(b).split_whitespace().any(|p| p == l.protocol),
        "local_name" => true,
        _ => false,
    })
}

/// A built-in inet listener of a login service.
struct Builtin {
    name: &'static str,
    port: u16,
    /// TLS from the first byte (`ssl = yes`).
    implicit: bool,
}

/// The login service of one protocol.
struct LoginService {
    protocol: &'static str,
    service: &'static str,
    /// Its inet listeners as Dovecot 2.4.1 opens them when the configuration does not
    /// name them.
    builtin: [Builtin; 2],
}

const fn builtin(name: &'static str, port: u16, implicit: bool) -> Builtin {
    Builtin {
        name,
        port,
        implicit,
    }
}

const LOGINS: [LoginService; 3] = [
    LoginService {
        protocol: "imap",
        service: "service imap-login",
        builtin: [builtin("imap", 143, false), builtin("imaps", 993, true)],
    },
    LoginService {
        protocol: "pop3",
        service: "service pop3-login",
        builtin: [builtin("pop3", 110, false), builtin("pop3s", 995, true)],
    },
    LoginService {
        protocol: "submission",
        service: "service submission-login",
        builtin: [
            builtin("submission", 587, false),
            builtin("submissions", 465, true),
        ],
    },
];

/// The protocols Dovecot serves: 2.3's `protocols = imap pop3`, or 2.4's boolean list
/// (`protocols { imap = yes }`), which may also follow a string.
fn protocols(settings: &Settings) -> Vec<String> {
    let mut out: Vec<String> = settings
        .global("protocols")
        .split_whitespace()
        .map(str::to_string)
        .collect();
    for e in &settings.entries {
        if e.path.len() == 1 && e.path[0] == "protocols" {
            out.retain(|p| *p != e.key);
            if e.value == "yes" {
                out.push(e.key.clone());
            }
        }
    }
    out
}

/// The inet listeners of the login services of the protocols Dovecot serves.
fn logins(settings: &Settings) -> Vec<Login> {
    let v24 = settings.generation == Generation::V2_4;
    let protocols = protocols(settings);
    let listen = match settings.global("listen") {
        // 2.4 prints its default as empty; Dovecot then listens on every address.
        l if l.trim().is_empty() && v24 => "*, ::".to_string(),
        l => l,
    };
    let mut out = Vec::new();
    for LoginService {
        protocol,
        service: login,
        builtin,
    } in LOGINS
    {
        if !protocols.iter().any(|p| p == protocol) {
            continue;
        }
        let mut names: Vec<&str> = Vec::new();
        if v24 {
            names.extend(builtin.iter().map(|b| b.name));
        }
        for e in &settings.entries {
            if e.path.len() == 2 && e.path[0] == login && kind(&e.path[1]) == "inet_listener" {
                let n = argument(&e.path[1]);
                if !names.contains(&n) {
                    names.push(n);
                }
            }
        }
        for name in names {
            let at = vec![login.to_string(), format!("inet_listener {name}")];
            let value = |k: &str| settings.get(&at, k).unwrap_or_default().to_string();
            let default = builtin.iter().find(|b| v24 && b.name == name);
            let port = match value("port") {
                p if p.is_empty() => default.map_or(0, |b| b.port),
                p => match p.parse::<u16>() {
                    Ok(port) => port,
                    Err(_) => continue,
                },
            };
            if port == 0 {
                continue;
            }
            let implicit = match value("ssl").as_str() {
                "" => default.is_some_and(|b| b.implicit),
                v => v == "yes",
            };
            let starttls = if implicit {
                StartTls::None
            } else {
                match protocol {
                    "imap" => StartTls::Imap,
                    "pop3" => StartTls::Pop3,
                    _ => StartTls::Smtp,
                }
            };
            // 2.3 names a listener's own addresses `address`, 2.4 `listen`.
            let address = match (value("address"), value("listen")) {
                (a, _) if !a.is_empty() => a,
                (_, l) if !l.is_empty() => l,
                _ => listen.clone(),
            };
            let mut hosts: Vec<String> = Vec::new();
            for h in address
                .split(|c: char| c == ',' || c.is_whitespace())
                .filter(|h| !h.is_empty())
            {
                // `*` is every IPv4 address, `::` every IPv6 one: loopback is among them.
                let h = match h {
                    "*" | "0.0.0.0" => "127.0.0.1".to_string(),
                    "::" | "[::]" => "::1".to_string(),
                    h => h.trim_start_matches('[').trim_end_matches(']').to_string(),
                };
                if !hosts.contains(&h) {
                    hosts.push(h);
                }
            }
            for host in hosts {
                out.push(Login {
                    listener: Listener {
                        service: format!("{name} on {host}"),
                        host,
                        port,
                        starttls,
                    },
                    protocol: protocol.to_string(),
                });
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOVECOT_23: &str = "# 2.3.19.1 (9b53102964): /etc/dovecot/dovecot.conf\n\
# Pigeonhole version 0.5.19 (4eae2f79)\n\
listen = 127.0.0.1\n\
protocols = imap pop3\n\
service imap-login {\n\
  inet_listener imap {\n\
    address = \n\
    port = 143\n\
    ssl = no\n\
  }\n\
  inet_listener imaps {\n\
    address = \n\
    port = 993\n\
    ssl = yes\n\
  }\n\
}\n\
service pop3-login {\n\
  inet_listener pop3 {\n\
    port = 110\n\
    ssl = no\n\
  }\n\
  inet_listener pop3s {\n\
    port = 0\n\
    ssl = yes\n\
  }\n\
}\n\
service submission-login {\n\
  inet_listener submission {\n\
    port = 587\n\
  }\n\
}\n\
ssl = yes\n\
ssl_alt_cert = \n\
ssl_cert = </etc/ssl/mail/cert.pem\n\
ssl_key = </etc/ssl/mail/key.pem\n\
protocol pop3 {\n\
  ssl_cert = </etc/ssl/pop/cert.pem\n\
}\n\
local 127.0.0.2 {\n\
  ssl_cert = </etc/ssl/two/cert.pem\n\
  ssl_key = </etc/ssl/two/key.pem\n\
}\n\
local_name \"mx.example.com\" {\n\
  ssl_cert = </etc/ssl/mx/fullchain.pem\n\
  ssl_key = </etc/ssl/mx/key.pem\n\
}\n";

    fn deployment(text: &str) -> Deployment {
        let settings = Settings::new(parse(text).expect("parse"));
        deployment_of(&settings, Path::new("/etc/dovecot/dovecot.conf")).expect("deployment")
    }

    #[test]
    fn dovecot_23_global_protocol_local_and_local_name_blocks_are_each_a_slot() {
        let d = deployment(DOVECOT_23);
        assert_eq!(
            config_of(DOVECOT_23),
            Some("/etc/dovecot/dovecot.conf".into())
        );
        let files: Vec<(&str, Option<&str>, Vec<&str>)> = d
            .slots
            .iter()
            .map(|s| {
                (
                    s.files[0].to_str().unwrap_or_default(),
                    s.sni.as_deref(),
                    s.services.iter().map(String::as_str).collect(),
                )
            })
            .collect();
        assert_eq!(
            files,
            [
                (
                    "/etc/ssl/mail/cert.pem",
                    None,
                    vec!["imap on 127.0.0.1", "imaps on 127.0.0.1"]
                ),
                ("/etc/ssl/pop/cert.pem", None, vec!["pop3 on 127.0.0.1"]),
                ("/etc/ssl/two/cert.pem", None, vec!["local 127.0.0.2"]),
                (
                    "/etc/ssl/mx/fullchain.pem",
                    Some("mx.example.com"),
                    vec![
                        "imap on 127.0.0.1",
                        "imaps on 127.0.0.1",
                        "pop3 on 127.0.0.1"
                    ]
                ),
            ]
        );
        // The pop3 block inherits the global key, named where it is set.
        let pop = &d.slots[1];
        assert_eq!(pop.key, Some("/etc/ssl/mail/key.pem".into()));
        assert_eq!(
            pop.settings_label(),
            "/etc/dovecot/dovecot.conf: protocol pop3 { ssl_cert }; \
             /etc/dovecot/dovecot.conf: ssl_key"
        );
        // Listeners: 143 STARTTLS IMAP, 993 implicit, 110 STARTTLS POP3; 995 disabled
        // (port 0), submission not among the protocols.
        let l: Vec<(u16, StartTls)> = d.listeners.iter().map(|l| (l.port, l.starttls)).collect();
        assert_eq!(
            l,
            [
                (143, StartTls::Imap),
                (993, StartTls::None),
                (110, StartTls::Pop3)
            ]
        );
    }

    /// Lines of `doveconf -a -P` from Debian 13's Dovecot 2.4.1 with its packaged
    /// configuration (the rest of its 751 lines set nothing read here), in its order.
    const DOVECOT_24_DEBIAN: &str = "# 2.4.1-4 (7d8c0e5759): /etc/dovecot/dovecot.conf\n\
# Pigeonhole version 2.4.1-4 (0a86619f)\n\
listen = \n\
protocols {\n\
  imap = yes\n\
  pop3 = yes\n\
}\n\
ssl = yes\n\
ssl_server_alt_cert_file = \n\
ssl_server_alt_key_file = \n\
ssl_server_cert_file = \n\
ssl_server_key_file = \n\
service imap-login {\n\
  inet_listener imap {\n\
  }\n\
  inet_listener imaps {\n\
  }\n\
}\n\
service pop3-login {\n\
  inet_listener pop3 {\n\
  }\n\
  inet_listener pop3s {\n\
  }\n\
}\n\
service submission-login {\n\
  inet_listener submission {\n\
  }\n\
  inet_listener submissions {\n\
  }\n\
}\n\
ssl_server {\n\
  cert_file = /etc/dovecot/private/dovecot.pem\n\
  key_file = /etc/dovecot/private/dovecot.key\n\
}\n";

    fn from_output(text: &str) -> Deployment {
        let settings = Settings::from_output(text).expect("parse");
        deployment_of(&settings, Path::new("/etc/dovecot/dovecot.conf")).expect("deployment")
    }

    fn listeners(d: &Deployment) -> Vec<(&str, u16, StartTls)> {
        d.listeners
            .iter()
            .map(|l| (l.host.as_str(), l.port, l.starttls))
            .collect()
    }

    #[test]
    fn dovecot_24_debian_default_grouped_names_boolean_protocols_and_builtin_listeners() {
        let settings = Settings::from_output(DOVECOT_24_DEBIAN).expect("parse");
        assert_eq!(settings.generation, Generation::V2_4);
        // The group's value beats the flat empty default printed before it.
        assert_eq!(
            settings.get(&[], "ssl_server_cert_file"),
            Some("/etc/dovecot/private/dovecot.pem")
        );
        let d = from_output(DOVECOT_24_DEBIAN);
        assert_eq!(d.slots.len(), 1, "{:?}", d.slots);
        assert_eq!(
            d.slots[0].files,
            [PathBuf::from("/etc/dovecot/private/dovecot.pem")]
        );
        assert_eq!(
            d.slots[0].key,
            Some(PathBuf::from("/etc/dovecot/private/dovecot.key"))
        );
        assert_eq!(d.slots[0].settings[0].name, "ssl_server_cert_file");
        // An empty listen is every address; listeners named without a port get their
        // built-in one; submission is not among the protocols.
        use StartTls::{Imap, None as Tls, Pop3};
        assert_eq!(
            listeners(&d),
            [
                ("127.0.0.1", 143, Imap),
                ("::1", 143, Imap),
                ("127.0.0.1", 993, Tls),
                ("::1", 993, Tls),
                ("127.0.0.1", 110, Pop3),
                ("::1", 110, Pop3),
                ("127.0.0.1", 995, Tls),
                ("::1", 995, Tls),
            ]
        );
    }

    /// Lines of `doveconf -a -P` from Dovecot 2.4.1 for a configuration with a listener
    /// moved, one disabled, one without a port, and certificates in filter blocks written
    /// both flat and grouped (doveconf prints them all grouped).
    const DOVECOT_24_FILTERS: &str = "# 2.4.1-4 (7d8c0e5759): /srv/t/dovecot.conf\n\
listen = 127.0.0.1\n\
protocols = imap pop3 submission\n\
ssl = yes\n\
ssl_server_cert_file = \n\
ssl_server_key_file = \n\
service imap-login {\n\
  inet_listener imap {\n\
    port = 20143\n\
  }\n\
  inet_listener imaps {\n\
    port = 20993\n\
  }\n\
  inet_listener extra {\n\
  }\n\
}\n\
service pop3-login {\n\
  inet_listener pop3 {\n\
    port = 0\n\
  }\n\
}\n\
ssl_server {\n\
  cert_file = /srv/t/tls/leaf.pem\n\
  key_file = /srv/t/tls/key.pem\n\
}\n\
protocol pop3 {\n\
  ssl_server {\n\
    cert_file = /srv/t/tls/pop.pem\n\
  }\n\
}\n\
local 127.0.0.2 {\n\
  ssl_server {\n\
    cert_file = /srv/t/tls/two.pem\n\
    key_file = /srv/t/tls/two.key\n\
  }\n\
}\n\
local_name mx.example.com {\n\
  ssl_server {\n\
    cert_file = /srv/t/tls/mx.pem\n\
    key_file = /srv/t/tls/mx.key\n\
  }\n\
}\n";

    #[test]
    fn dovecot_24_filter_blocks_with_grouped_settings_are_slots_and_listeners_merge_defaults() {
        let d = from_output(DOVECOT_24_FILTERS);
        let files: Vec<(&str, Option<&str>, Option<&str>)> = d
            .slots
            .iter()
            .map(|s| {
                (
                    s.files[0].to_str().unwrap_or_default(),
                    s.key.as_deref().and_then(Path::to_str),
                    s.sni.as_deref(),
                )
            })
            .collect();
        assert_eq!(
            files,
            [
                ("/srv/t/tls/leaf.pem", Some("/srv/t/tls/key.pem"), None),
                ("/srv/t/tls/pop.pem", Some("/srv/t/tls/key.pem"), None),
                ("/srv/t/tls/two.pem", Some("/srv/t/tls/two.key"), None),
                (
                    "/srv/t/tls/mx.pem",
                    Some("/srv/t/tls/mx.key"),
                    Some("mx.example.com")
                ),
            ]
        );
        assert_eq!(
            d.slots[1].settings_label(),
            "/etc/dovecot/dovecot.conf: protocol pop3 { ssl_server_cert_file }; \
             /etc/dovecot/dovecot.conf: ssl_server_key_file"
        );
        // imaps keeps its built-in TLS at once on a new port; `extra` has no port and pop3
        // is disabled; pop3s and both submission listeners are built in (Dovecot 2.4.1
        // opened 995, 587 and 465 for this configuration).
        use StartTls::{Imap, None as Tls, Smtp};
        assert_eq!(
            listeners(&d),
            [
                ("127.0.0.1", 20143, Imap),
                ("127.0.0.1", 20993, Tls),
                ("127.0.0.1", 995, Tls),
                ("127.0.0.1", 587, Smtp),
                ("127.0.0.1", 465, Tls),
            ]
        );
    }

    #[test]
    fn dovecot_23_output_without_a_version_line_keeps_its_names() {
        // No header (as in the other unit tests): the names decide, and 2.3 adds no
        // built-in listeners doveconf did not print.
        let d = deployment("listen = *\nprotocols = imap\nssl_cert = </c\nssl_key = </k\n");
        assert_eq!(d.slots[0].settings[0].name, "ssl_cert");
        assert!(d.listeners.is_empty());
        assert_eq!(version_of(DOVECOT_23), Some((2, 3)));
    }

    #[test]
    fn inline_pem_and_ssl_no_are_notes_not_slots() {
        let d = deployment("ssl = yes\nssl_cert = -----BEGIN CERTIFICATE-----\nssl_key = </k\n");
        assert!(d.slots.is_empty());
        assert!(
            d.notes.iter().any(|n| n.contains("PEM text itself")),
            "{:?}",
            d.notes
        );
        let d = deployment("ssl = no\nssl_cert = </c\nssl_key = </k\n");
        assert!(d.slots.is_empty());
        assert!(d.notes[0].contains("ssl = no"));
    }

    #[test]
    fn a_variable_in_a_file_name_is_an_error_naming_the_setting() {
        let text = "ssl_client_ca_dir = /x\nssl_cert = <$ssl_client_ca_dir/c.pem\nssl_key = </k\n";
        let settings = Settings::new(parse(text).expect("parse"));
        let e = deployment_of(&settings, Path::new("/d.conf")).expect_err("a $variable");
        assert!(
            e.to_string()
                .contains("/d.conf: ssl_cert: the value uses a $variable"),
            "{e}"
        );
    }

    #[test]
    fn more_filter_blocks_than_the_budget_is_an_error() {
        let mut text = String::from("ssl_cert = </c\nssl_key = </k\n");
        for i in 0..=MAX_FILTER_SLOTS {
            text.push_str(&format!(
                "local_name n{i}.test {{\n  ssl_cert = </c{i}\n}}\n"
            ));
        }
        let settings = Settings::new(parse(&text).expect("parse"));
        let e = deployment_of(&settings, Path::new("/d.conf")).expect_err("budget");
        assert!(e.to_string().contains("more than 1000"), "{e}");
    }

    #[test]
    fn unbalanced_or_too_deep_output_is_an_error() {
        assert!(parse("}\n").is_err());
        assert!(parse(&"a {\n".repeat(MAX_DEPTH + 1)).is_err());
        assert!(parse("MIIBase64\nnot a setting\n")
            .expect("parse")
            .is_empty());
    }
}
