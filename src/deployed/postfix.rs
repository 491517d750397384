//! Postfix discovery: the files smtpd (server role) and smtp (client role) load, read with
//! `postconf -x` (main.cf, `$name` expanded), `postconf -P -x` (master.cf `-o` overrides),
//! `postconf -M` (the services) and the source files of `tls_server_sni_maps`.
//!
//! Precedence (postconf(5), `smtpd_tls_chain_files`, Postfix 3.4 and later): a non-empty
//! `*_tls_chain_files` replaces `*_tls_cert_file`/`*_tls_key_file`, the `eccert`/`eckey` and
//! `dcert`/`dkey` pairs; otherwise each of those certificate parameters that is set loads one
//! certificate (and its chain, from the same file), with its key from the matching key
//! parameter, whose default is the certificate file itself. A master.cf `-o name=value`
//! replaces main.cf's value for that service only.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use super::command;
use super::{merge_slots, split_list, Deployment, DiscoverError, Mta, Place, Setting, Slot};
use crate::chain::Role;

/// The parameters read from main.cf. Client-role names are the server's with `smtp_` for
/// `smtpd_`.
const SERVER_PARAMS: [&str; 7] = [
    "smtpd_tls_chain_files",
    "smtpd_tls_cert_file",
    "smtpd_tls_key_file",
    "smtpd_tls_eccert_file",
    "smtpd_tls_eckey_file",
    "smtpd_tls_dcert_file",
    "smtpd_tls_dkey_file",
];

/// Other main.cf parameters discovery needs.
const OTHER_PARAMS: [&str; 5] = [
    "config_directory",
    "tls_server_sni_maps",
    "inet_interfaces",
    "smtpd_tls_wrappermode",
    "max_idle",
];

/// Most names read from one SNI table source. A table is written by hand, one line per
/// domain served; 10,000 is far beyond any real one and bounds the work (each name is judged
/// on its own).
pub const MAX_SNI_NAMES: usize = 10_000;

/// Most bytes read from one SNI table source (the same bound as a tool's output).
const MAX_SNI_SOURCE: u64 = command::OUTPUT_BUDGET as u64;

/// Table types whose source is a text file of `key value` lines at the table's path
/// (postmap(1)); `texthash` is read from that file directly.
const FILE_TABLES: [&str; 7] = ["hash", "btree", "lmdb", "cdb", "dbm", "sdbm", "texthash"];

/// One master.cf service: `name/type` and its command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Service {
    pub name: String,
    pub kind: String,
    pub command: String,
}

impl Service {
    pub fn id(&self) -> String {
        format!("{}/{}", self.name, self.kind)
    }

    /// The program the service runs (`smtpd`, `smtp`), without arguments or directory.
    fn program(&self) -> &str {
        let first = self.command.split_whitespace().next().unwrap_or_default();
        first.rsplit('/').next().unwrap_or(first)
    }
}

/// `postconf` with `-c DIR` when a directory is given.
struct Postconf<'a> {
    program: &'a Path,
    dir: Option<&'a Path>,
}

impl Postconf<'_> {
    fn run(&self, args: &[&str]) -> Result<String, DiscoverError> {
        let args: Vec<&OsStr> = args.iter().map(OsStr::new).collect();
        command::run_ok(self.program, self.dir.map(|d| ("-c", d)), &args)
    }
}

/// Reads the Postfix configuration in `dir` (or Postfix's default one).
pub fn discover(program: &Path, dir: Option<&Path>) -> Result<Deployment, DiscoverError> {
    let pc = Postconf { program, dir };
    let mut names: Vec<String> = OTHER_PARAMS.iter().map(|s| s.to_string()).collect();
    for p in SERVER_PARAMS {
        names.push(p.to_string());
        names.push(client_name(p));
    }
    let mut args = vec!["-x"];
    args.extend(names.iter().map(String::as_str));
    let main = parse_params(&pc.run(&args)?);
    let overrides = parse_overrides(&pc.run(&["-P", "-x"])?);
    let services = parse_master(&pc.run(&["-M"])?);
    let config = match dir {
        Some(d) => d.to_path_buf(),
        None => PathBuf::from(main.get("config_directory").cloned().unwrap_or_default()),
    };
    let mut notes = Vec::new();
    let mut slots = Vec::new();
    let value_for = |svc: &Service, name: &str| -> (String, Place) {
        match overrides.get(&(svc.id(), name.to_string())) {
            Some(v) => (v.clone(), Place::MasterCf { service: svc.id() }),
            None => (main.get(name).cloned().unwrap_or_default(), Place::MainCf),
        }
    };
    let listeners: Vec<super::Listener> = services
        .iter()
        .filter(|s| s.kind == "inet" && s.program() == "smtpd")
        .flat_map(|svc| {
            let interfaces = value_for(svc, "inet_interfaces").0;
            let implicit = value_for(svc, "smtpd_tls_wrappermode").0 == "yes";
            listeners_of(svc, &interfaces, implicit)
        })
        .collect();
    let max_idle = main.get("max_idle").and_then(|v| seconds(v));
    let mut servers: Vec<&Service> = services
        .iter()
        .filter(|s| s.kind == "inet" && s.program() == "smtpd")
        .collect();
    let main_only = Service {
        name: "main.cf".into(),
        kind: "-".into(),
        command: "smtpd".into(),
    };
    if servers.is_empty() {
        notes.push("master.cf defines no smtpd listener (inet service running smtpd)".into());
        servers.push(&main_only);
    }
    for svc in &servers {
        let found = slots_of(Role::Server, svc, &|n| value_for(svc, n));
        if found.is_empty() {
            notes.push(format!(
                "{}: no server certificate configured (smtpd offers no STARTTLS)",
                svc.id()
            ));
        }
        slots.extend(found);
        let (maps, place) = value_for(svc, "tls_server_sni_maps");
        // A table shared by several services gives the same slots for each: merged below.
        let mut table_notes = Vec::new();
        slots.extend(sni_slots(&maps, &place, svc, &mut table_notes));
        for n in table_notes {
            if !notes.contains(&n) {
                notes.push(n);
            }
        }
    }
    let clients: Vec<&Service> = services.iter().filter(|s| s.program() == "smtp").collect();
    let mut any_client = false;
    for svc in clients {
        let found = slots_of(Role::Client, svc, &|n| value_for(svc, &client_name(n)));
        any_client |= !found.is_empty();
        slots.extend(found);
    }
    if !any_client {
        notes.push(
            "no client certificate configured (smtp_tls_chain_files, smtp_tls_cert_file): \
             the smtp client presents none, which is usual"
                .into(),
        );
    }
    Ok(Deployment {
        mta: Mta::Postfix,
        config,
        slots: merge_slots(slots),
        notes,
        listeners,
        max_idle,
        // smtpd and smtp load their TLS files as root, before they drop privileges.
        reads_as: None,
    })
}

/// Where an inet service listens: its name is `[host:]port` (master(5)), the port a number or
/// a service name; without a host, every address of `inet_interfaces` (`all` and
/// `loopback-only` are probed on 127.0.0.1, which both include).
fn listeners_of(svc: &Service, interfaces: &str, implicit_tls: bool) -> Vec<super::Listener> {
    let (host, port) = match svc.name.rsplit_once(':') {
        Some((h, p)) => (Some(h.trim_start_matches('[').trim_end_matches(']')), p),
        None => (None, svc.name.as_str()),
    };
    let Some(port) = port_number(port) else {
        return Vec::new();
    };
    let hosts: Vec<String> = match host {
        Some(h) => vec![h.to_string()],
        None => split_list(interfaces)
            .into_iter()
            .map(|i| match i.as_str() {
                "all" | "loopback-only" => "127.0.0.1".to_string(),
                _ => i.trim_start_matches('[').trim_end_matches(']').to_string(),
            })
            .collect(),
    };
    let mut out: Vec<super::Listener> = Vec::new();
    for host in hosts {
        let l = super::Listener {
            service: svc.id(),
            host,
            port,
            starttls: if implicit_tls {
                crate::probe::StartTls::None
            } else {
                crate::probe::StartTls::Smtp
            },
        };
        if !out.contains(&l) {
            out.push(l);
        }
    }
    out
}

/// A port number, or the well-known SMTP service names (RFC 5321 25, RFC 6409 587, RFC 8314
/// 465) that master.cf uses.
fn port_number(s: &str) -> Option<u16> {
    match s {
        "smtp" => Some(25),
        "submission" => Some(587),
        "smtps" | "submissions" => Some(465),
        _ => s.parse().ok().filter(|&p| p != 0),
    }
}

/// A Postfix time value (`100s`, `5m`, `1h`, `1d`, `1w`; a bare number is seconds for
/// `max_idle`) in seconds.
fn seconds(v: &str) -> Option<u64> {
    let v = v.trim();
    let (num, unit) = match v.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => (&v[..i], &v[i..]),
        None => (v, "s"),
    };
    let n: u64 = num.parse().ok()?;
    let mul = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 604_800,
        _ => return None,
    };
    n.checked_mul(mul)
}

/// `smtpd_tls_cert_file` -> `smtp_tls_cert_file`.
fn client_name(server: &str) -> String {
    server.replacen("smtpd_", "smtp_", 1)
}

/// The slots of one service from its effective parameters (`value` takes the server name of
/// a parameter and gives its value and where it was set).
fn slots_of(role: Role, svc: &Service, value: &dyn Fn(&str) -> (String, Place)) -> Vec<Slot> {
    let shown = |server_name: &str| match role {
        Role::Server => server_name.to_string(),
        Role::Client => client_name(server_name),
    };
    let setting = |name: &str, place: Place| Setting {
        place,
        name: shown(name),
    };
    let (chain, place) = value("smtpd_tls_chain_files");
    let files = split_list(&chain);
    if !files.is_empty() {
        return vec![Slot {
            role,
            services: vec![svc.id()],
            sni: None,
            algorithm: None,
            files: files.into_iter().map(PathBuf::from).collect(),
            key: None,
            settings: vec![setting("smtpd_tls_chain_files", place)],
        }];
    }
    let mut slots = Vec::new();
    for (algorithm, cert_param, key_param) in [
        (None, "smtpd_tls_cert_file", "smtpd_tls_key_file"),
        (
            Some("ecdsa"),
            "smtpd_tls_eccert_file",
            "smtpd_tls_eckey_file",
        ),
        (Some("dsa"), "smtpd_tls_dcert_file", "smtpd_tls_dkey_file"),
    ] {
        let (cert, cert_place) = value(cert_param);
        let cert = cert.trim();
        if cert.is_empty() {
            continue;
        }
        let (key, key_place) = value(key_param);
        let key = key.trim();
        let mut settings = vec![setting(cert_param, cert_place)];
        // The key parameter defaults to the certificate file: the key is then in that file.
        let key = if key.is_empty() || key == cert {
            None
        } else {
            settings.push(setting(key_param, key_place));
            Some(PathBuf::from(key))
        };
        slots.push(Slot {
            role,
            services: vec![svc.id()],
            sni: None,
            algorithm,
            files: vec![PathBuf::from(cert)],
            key,
            settings,
        });
    }
    slots
}

/// The slots named in `tls_server_sni_maps` (value `maps`, set at `place`): one per name of
/// each table whose source file can be read. Tables that cannot be listed go into `notes`.
fn sni_slots(maps: &str, place: &Place, svc: &Service, notes: &mut Vec<String>) -> Vec<Slot> {
    let mut slots = Vec::new();
    for table in split_list(maps) {
        let Some((kind, name)) = table.split_once(':') else {
            notes.push(format!(
                "tls_server_sni_maps: {table}: not a type:name table"
            ));
            continue;
        };
        if !FILE_TABLES.contains(&kind) {
            notes.push(format!(
                "tls_server_sni_maps: {table}: a {kind} table cannot be listed; its names \
                 are not judged (probe each name with --servername)"
            ));
            continue;
        }
        let source = PathBuf::from(name);
        let entries = match read_table_source(&source) {
            Ok(e) => e,
            Err(e) => {
                notes.push(format!(
                    "tls_server_sni_maps: {}: {e}; its names are not judged",
                    source.display()
                ));
                continue;
            }
        };
        if entries.len() > MAX_SNI_NAMES {
            notes.push(format!(
                "tls_server_sni_maps: {}: more than {MAX_SNI_NAMES} names; only the first \
                 {MAX_SNI_NAMES} are judged",
                source.display()
            ));
        }
        for (line, key, value) in entries.into_iter().take(MAX_SNI_NAMES) {
            let files = split_list(&value);
            slots.push(Slot {
                role: Role::Server,
                services: vec![svc.id()],
                sni: Some(key.clone()),
                algorithm: None,
                files: files.into_iter().map(PathBuf::from).collect(),
                key: None,
                settings: vec![Setting {
                    place: Place::SniMap {
                        path: source.clone(),
                        line,
                        name: key,
                    },
                    name: match place {
                        Place::MasterCf { service } => {
                            format!("tls_server_sni_maps of {service}")
                        }
                        _ => "tls_server_sni_maps".into(),
                    },
                }],
            });
        }
    }
    slots
}

/// The `(line, key, value)` entries of a Postfix lookup table source (postmap(1), "INPUT FILE
/// FORMAT"): `key whitespace value`; blank lines and lines whose first non-blank is `#` are
/// ignored; a line starting with white space continues the previous one.
pub fn read_table_source(path: &Path) -> Result<Vec<(usize, String, String)>, String> {
    use std::io::Read;
    let file = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let mut text = String::new();
    file.take(MAX_SNI_SOURCE + 1)
        .read_to_string(&mut text)
        .map_err(|e| e.to_string())?;
    if text.len() as u64 > MAX_SNI_SOURCE {
        return Err(format!("larger than {MAX_SNI_SOURCE} bytes"));
    }
    Ok(parse_table_source(&text))
}

fn parse_table_source(text: &str) -> Vec<(usize, String, String)> {
    let mut entries: Vec<(usize, String, String)> = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        if line.starts_with(char::is_whitespace) {
            if let Some(last) = entries.last_mut() {
                last.2.push(' ');
                last.2.push_str(trimmed);
            }
            continue;
        }
        let (key, value) = trimmed
            .split_once(char::is_whitespace)
            .unwrap_or((trimmed, ""));
        entries.push((i + 1, key.to_string(), value.trim().to_string()));
    }
    entries
}

/// `name = value` lines of `postconf -x`.
fn parse_params(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| l.split_once(" ="))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect()
}

/// `service/type/name = value` lines of `postconf -P -x`, keyed by (`service/type`, name).
fn parse_overrides(text: &str) -> BTreeMap<(String, String), String> {
    let mut out = BTreeMap::new();
    for line in text.lines() {
        let Some((lhs, value)) = line.split_once(" =") else {
            continue;
        };
        let mut parts = lhs.trim().rsplitn(2, '/');
        let (Some(name), Some(service)) = (parts.next(), parts.next()) else {
            continue;
        };
        out.insert(
            (service.to_string(), name.to_string()),
            value.trim().to_string(),
        );
    }
    out
}

/// The services of `postconf -M`: `name type private unpriv chroot wakeup maxproc command...`.
fn parse_master(text: &str) -> Vec<Service> {
    text.lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let name = f.next()?.to_string();
            let kind = f.next()?.to_string();
            let command: Vec<&str> = f.skip(5).collect();
            if command.is_empty() {
                return None;
            }
            Some(Service {
                name,
                kind,
                command: command.join(" "),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_sources_skip_comments_and_join_continuation_lines() {
        let text = "# SNI\nmail.example.com /k.pem,\n   /c.pem\n\n  # x\nother.test /o.pem\n";
        let e = parse_table_source(text);
        assert_eq!(
            e,
            vec![
                (2, "mail.example.com".into(), "/k.pem, /c.pem".into()),
                (6, "other.test".into(), "/o.pem".into())
            ]
        );
    }

    #[test]
    fn overrides_split_at_the_last_slash() {
        let o = parse_overrides("submission/inet/smtpd_tls_cert_file = /a/b.pem\n");
        assert_eq!(
            o.get(&("submission/inet".into(), "smtpd_tls_cert_file".into())),
            Some(&"/a/b.pem".to_string())
        );
    }

    #[test]
    fn listeners_come_from_the_service_name_or_inet_interfaces() {
        let svc = |name: &str| Service {
            name: name.into(),
            kind: "inet".into(),
            command: "smtpd".into(),
        };
        let l = listeners_of(&svc("127.0.0.1:2525"), "all", false);
        assert_eq!((l[0].host.as_str(), l[0].port), ("127.0.0.1", 2525));
        let l = listeners_of(&svc("submission"), "192.0.2.1, [::1]", false);
        assert_eq!(l.len(), 2);
        assert_eq!(l[0].port, 587);
        assert_eq!(seconds("100s"), Some(100));
        assert_eq!(seconds("5m"), Some(300));
    }

    #[test]
    fn master_lines_give_the_command() {
        let s =
            parse_master("127.0.0.1:2525 inet n - n - - smtpd -o x=y\nrelay unix - - y - - smtp\n");
        assert_eq!(s[0].id(), "127.0.0.1:2525/inet");
        assert_eq!(s[0].program(), "smtpd");
        assert_eq!(s[1].program(), "smtp");
    }
}
