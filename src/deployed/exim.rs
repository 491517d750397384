//! Exim discovery: the files the daemon (server role) and each smtp transport (client role)
//! load, read with `exim -bP` (options after macro substitution, so Debian's split and single
//! configurations and a hand-written one look alike) and expanded with `exim -be` (Debian's
//! defaults are `${if exists{...}}` expressions).
//!
//! Exim's rules (spec, chapter 42 "Encrypted SMTP connections using TLS/SSL"): an unset
//! `tls_privatekey` means the key is in the `tls_certificate` file; both may be lists (one
//! certificate per key type, 4.92 and later), paired in order.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use super::command;
use super::{merge_slots, Deployment, DiscoverError, Mta, Place, Setting, Slot};
use crate::chain::Role;

/// Most smtp transports inspected. A configuration defines a handful; the bound keeps a
/// generated one with thousands from running `exim -bP` for each.
pub const MAX_TRANSPORTS: usize = 256;

struct Exim<'a> {
    program: &'a Path,
    config: Option<&'a Path>,
}

impl Exim<'_> {
    fn run(&self, args: &[&str]) -> Result<String, DiscoverError> {
        let args: Vec<&OsStr> = args.iter().map(OsStr::new).collect();
        command::run_ok(self.program, self.config.map(|c| ("-C", c)), &args)
    }

    /// `-bP NAMES`: the `name = value` lines (`no_name`/`name` booleans are left out).
    fn options(&self, args: &[&str]) -> Result<Vec<(String, String)>, DiscoverError> {
        let mut all = vec!["-bP"];
        all.extend(args);
        Ok(self
            .run(&all)?
            .lines()
            .filter_map(|l| l.split_once(" ="))
            .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
            .collect())
    }

    /// A value with `$` in it expanded by Exim itself (`-be`); others as they are.
    fn expand(&self, value: &str) -> Result<String, DiscoverError> {
        if !value.contains('$') {
            return Ok(value.to_string());
        }
        Ok(self
            .run(&["-be", value])?
            .trim_end_matches('\n')
            .to_string())
    }
}

/// The configuration file Exim reads by default: `exim -bV` says "Configuration file is X".
fn default_config(program: &Path) -> Result<PathBuf, DiscoverError> {
    let out = command::run(program, &[OsStr::new("-bV")])?;
    let text = format!("{}\n{}", out.stdout, out.stderr);
    text.lines()
        .find_map(|l| l.trim().strip_prefix("Configuration file is "))
        .map(|p| PathBuf::from(p.trim()))
        .ok_or_else(|| DiscoverError::ToolFailed {
            program: format!("{} -bV", program.display()),
            message: "it did not name its configuration file".into(),
        })
}

/// Debian's generated configuration (update-exim4.conf writes a warning header naming its
/// sources): where the macros that name the TLS files live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DebianSource {
    /// `true` for the split layout (conf.d/), `false` for the single one.
    pub split: bool,
    /// The file holding local macro definitions the installation reads.
    pub macros: PathBuf,
}

/// Whether `text` is a configuration update-exim4.conf generated, and from what.
pub fn debian_source(text: &str) -> Option<DebianSource> {
    let header: Vec<&str> = text.lines().take(400).collect();
    if !header
        .iter()
        .any(|l| l.starts_with("# This file was generated dynamically from"))
    {
        return None;
    }
    for l in &header {
        if let Some(rest) = l.strip_prefix("# split config files in the ") {
            let confd = rest.trim_end_matches(" directory.").trim_end_matches('/');
            return Some(DebianSource {
                split: true,
                macros: Path::new(confd).join("main/000_localmacros"),
            });
        }
        if let Some(rest) = l.strip_prefix("# non-split config (") {
            let macros = rest.split_whitespace().next().unwrap_or_default();
            return Some(DebianSource {
                split: false,
                macros: PathBuf::from(macros),
            });
        }
    }
    None
}

/// Reads the Exim configuration `config` (or Exim's default one).
pub fn discover(program: &Path, config: Option<&Path>) -> Result<Deployment, DiscoverError> {
    let file = match config {
        Some(c) => c.to_path_buf(),
        None => default_config(program)?,
    };
    let exim = Exim {
        program,
        config: Some(&file),
    };
    let main = exim.options(&[
        "tls_certificate",
        "tls_privatekey",
        "daemon_smtp_ports",
        "tls_on_connect_ports",
        "exim_user",
        "local_interfaces",
    ])?;
    let get = |n: &str| {
        main.iter()
            .find(|(k, _)| k == n)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let mut notes = Vec::new();
    if let Some(d) = std::fs::read_to_string(&file)
        .ok()
        .as_deref()
        .and_then(debian_source)
    {
        notes.push(format!(
            "Debian's generated configuration ({} layout): its TLS files are named by the \
             macros MAIN_TLS_CERTKEY (which wins), MAIN_TLS_CERTIFICATE and \
             MAIN_TLS_PRIVATEKEY (server) and REMOTE_SMTP_TLS_CERTIFICATE and \
             REMOTE_SMTP_PRIVATEKEY (remote_smtp) in {}; change them there and run \
             update-exim4.conf",
            if d.split { "split" } else { "single" },
            d.macros.display()
        ));
    }
    let mut slots = Vec::new();
    let mut ports: Vec<String> = list(&get("daemon_smtp_ports"));
    for p in list(&get("tls_on_connect_ports")) {
        if !ports.contains(&p) {
            ports.push(p);
        }
    }
    let implicit = list(&get("tls_on_connect_ports"));
    let mut interfaces: Vec<String> = list(&get("local_interfaces"))
        .into_iter()
        // `0.0.0.0` and `::0` listen everywhere, loopback included.
        .map(|i| match i.as_str() {
            "0.0.0.0" | "::0" | "::" => "127.0.0.1".to_string(),
            _ => i,
        })
        .collect();
    if interfaces.is_empty() {
        interfaces.push("127.0.0.1".into());
    }
    let mut listeners = Vec::new();
    for port in if ports.is_empty() {
        vec!["25".to_string()]
    } else {
        ports.clone()
    } {
        let Ok(number) = port.parse::<u16>() else {
            continue;
        };
        for host in &interfaces {
            listeners.push(super::Listener {
                service: format!("port {port}"),
                host: host.clone(),
                port: number,
                starttls: if implicit.contains(&port) {
                    crate::probe::StartTls::None
                } else {
                    crate::probe::StartTls::Smtp
                },
            });
        }
    }
    let services: Vec<String> = if ports.is_empty() {
        vec!["port 25".into()]
    } else {
        ports.iter().map(|p| format!("port {p}")).collect()
    };
    let place = Place::EximMain { file: file.clone() };
    let found = slots_of(
        &exim,
        Role::Server,
        &services,
        &get("tls_certificate"),
        &get("tls_privatekey"),
        &place,
    )?;
    if found.is_empty() {
        notes.push("tls_certificate is not set: the daemon offers no STARTTLS".into());
    }
    slots.extend(found);

    let transports: Vec<String> = exim
        .run(&["-bP", "transport_list"])?
        .split(|c: char| c.is_whitespace() || c == ':')
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    if transports.len() > MAX_TRANSPORTS {
        notes.push(format!(
            "more than {MAX_TRANSPORTS} transports; only the first {MAX_TRANSPORTS} are read"
        ));
    }
    let mut any_client = false;
    for t in transports.iter().take(MAX_TRANSPORTS) {
        let opts = exim.options(&["transport", t])?;
        let get = |n: &str| {
            opts.iter()
                .find(|(k, _)| k == n)
                .map(|(_, v)| v.clone())
                .unwrap_or_default()
        };
        if get("driver") != "smtp" {
            continue;
        }
        let place = Place::EximTransport {
            file: file.clone(),
            transport: t.clone(),
        };
        let found = slots_of(
            &exim,
            Role::Client,
            &[format!("transport {t}")],
            &get("tls_certificate"),
            &get("tls_privatekey"),
            &place,
        )?;
        any_client |= !found.is_empty();
        slots.extend(found);
    }
    if !any_client {
        notes.push(
            "no smtp transport sets tls_certificate: Exim presents no client certificate, \
             which is usual"
                .into(),
        );
    }
    Ok(Deployment {
        mta: Mta::Exim,
        config: file,
        slots: merge_slots(slots),
        notes,
        listeners,
        max_idle: None,
        reads_as: Some(get("exim_user")).filter(|u| !u.is_empty()),
    })
}

/// The slots of one `tls_certificate`/`tls_privatekey` pair (raw, unexpanded values).
fn slots_of(
    exim: &Exim<'_>,
    role: Role,
    services: &[String],
    cert: &str,
    key: &str,
    place: &Place,
) -> Result<Vec<Slot>, DiscoverError> {
    let certs = list(&exim.expand(cert)?);
    let keys = list(&exim.expand(key)?);
    let mut slots = Vec::new();
    for (i, c) in certs.iter().enumerate() {
        let mut settings = vec![Setting {
            place: place.clone(),
            name: "tls_certificate".into(),
        }];
        let key = keys.get(i).filter(|k| *k != c).map(|k| {
            settings.push(Setting {
                place: place.clone(),
                name: "tls_privatekey".into(),
            });
            PathBuf::from(k)
        });
        slots.push(Slot {
            role,
            services: services.to_vec(),
            sni: None,
            algorithm: None,
            files: vec![PathBuf::from(c)],
            key,
            settings,
        });
    }
    Ok(slots)
}

/// An Exim list (spec 6.21 "Lists"): colon-separated, `::` for a colon, `<X` at the start to
/// use X as separator instead; items trimmed, empty ones dropped.
fn list(value: &str) -> Vec<String> {
    let v = value.trim();
    let (sep, body) = match v.strip_prefix('<') {
        Some(rest) => {
            let mut chars = rest.chars();
            match chars.next() {
                Some(c) if !c.is_whitespace() && !c.is_alphanumeric() => (c, chars.as_str()),
                _ => (':', v),
            }
        }
        None => (':', v),
    };
    let doubled: String = [sep, sep].iter().collect();
    body.replace(&doubled, "\u{0}")
        .split(sep)
        .map(|s| s.replace('\u{0}', &sep.to_string()).trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::{debian_source, list, DebianSource};
    use std::path::PathBuf;

    #[test]
    fn debian_headers_name_the_macros_file_of_each_layout() {
        let single = "#########\n# This file was generated dynamically from\n# non-split config \
                      (/etc/exim4/exim4.conf.localmacros\n# and /etc/exim4/exim4.conf.template).\n";
        assert_eq!(
            debian_source(single),
            Some(DebianSource {
                split: false,
                macros: PathBuf::from("/etc/exim4/exim4.conf.localmacros")
            })
        );
        let split = "# This file was generated dynamically from\n# split config files in the \
                     /etc/exim4/conf.d/ directory.\n";
        assert_eq!(
            debian_source(split).map(|d| d.macros),
            Some(PathBuf::from("/etc/exim4/conf.d/main/000_localmacros"))
        );
        assert_eq!(debian_source("tls_certificate = /x\n"), None);
    }

    #[test]
    fn exim_lists_split_on_colons_or_the_separator_given() {
        assert_eq!(list("25 : 587"), ["25", "587"]);
        assert_eq!(
            list("<; /a/rsa.pem ; /a/ec.pem"),
            ["/a/rsa.pem", "/a/ec.pem"]
        );
        assert_eq!(list("/a::b.pem"), ["/a:b.pem"]);
        assert!(list("").is_empty());
    }
}
