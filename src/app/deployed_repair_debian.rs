//! `repair --exim` on Debian's generated configuration: update-exim4.conf makes it from the
//! exim4-config templates and the local macros, and overwrites it when run, so the macros
//! that name the TLS files are changed where the installation reads them (split layout: the
//! local files of `conf.d/main/`, `000_localmacros` by default; single layout:
//! `exim4.conf.localmacros`) and the configuration is generated anew with
//! `update-exim4.conf -d CONFDIR -o FILE`. Each macro ends up defined once: Exim rejects a
//! macro defined twice (spec 6.4), and the templates define the defaults with `.ifndef`.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use super::deployed_repair::SlotRepair;
use super::AppError;
use crate::deployed::exim::DebianSource;
use crate::deployed::exim_macros::{debian_macro, set_macros, MAIN_TLS_CERTKEY};
use crate::deployed::{command, Place};

/// How many entries of `conf.d/main/` are looked at (the package ships four).
const MAX_PARTS: usize = 1000;

/// One macros file as it is and as the repair leaves it.
pub(super) struct Edit {
    pub file: PathBuf,
    pub old: String,
    pub new: String,
}

/// The macros each repaired slot needs: `Some(path)` to define, `None` to remove.
fn wanted(repairs: &[&SlotRepair]) -> Result<Vec<(&'static str, Option<String>)>, AppError> {
    let mut macros: Vec<(&'static str, Option<String>)> = Vec::new();
    for r in repairs {
        for change in &r.plan.changes {
            let transport = match &change.setting.place {
                Place::EximMain { .. } => None,
                Place::EximTransport { transport, .. } => Some(transport.as_str()),
                _ => return Err(AppError("not an Exim setting".into())),
            };
            let value: Vec<String> = change.new.iter().map(|p| p.display().to_string()).collect();
            let value = value.join(" : ");
            let name = change.setting.name.as_str();
            if transport.is_none() && name == "tls_certificate" {
                // MAIN_TLS_CERTKEY (key and certificate in one file) wins over the pair
                // (03_exim4-config_tlsoptions). The repair writes the chain alone and names
                // the key where it is (a key that was in the certificate's file is named by
                // tls_privatekey, [`crate::deployed::plan`]): the pair, and no MAIN_TLS_CERTKEY.
                macros.push((MAIN_TLS_CERTKEY, None));
            }
            let Some(macro_name) = debian_macro(transport, name) else {
                return Err(AppError(format!(
                    "{} is set in transport {} by no macro of Debian's templates; nothing was \
                     changed",
                    name,
                    transport.unwrap_or_default()
                )));
            };
            macros.push((macro_name, Some(value)));
        }
    }
    Ok(macros)
}

/// The local files `conf.d/main/` contributes, in the order update-exim4.conf reads them
/// (its run-parts emulation: names of letters, digits, `_` and `-`, byte order, `NAME.rul`
/// read instead of `NAME`); the package's own `NN_exim4-config_*` files are not local.
fn split_parts(main: &Path) -> Result<Vec<PathBuf>, AppError> {
    let entries =
        std::fs::read_dir(main).map_err(|e| AppError(format!("{}: {e}", main.display())))?;
    let mut names: Vec<String> = Vec::new();
    for entry in entries.take(MAX_PARTS) {
        let name = entry
            .map_err(|e| AppError(format!("{}: {e}", main.display())))?
            .file_name()
            .to_string_lossy()
            .into_owned();
        let local = !name.contains("exim4-config")
            && !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        if local && main.join(&name).is_file() {
            names.push(name);
        }
    }
    names.sort();
    Ok(names
        .iter()
        .map(|n| {
            let rul = main.join(format!("{n}.rul"));
            if rul.is_file() {
                rul
            } else {
                main.join(n)
            }
        })
        .collect())
}

/// The changes to the macros files: a macro is replaced in the first file defining it and
/// removed from the others; one defined nowhere is added to `d.macros`.
pub(super) fn edits(d: &DebianSource, repairs: &[&SlotRepair]) -> Result<Vec<Edit>, AppError> {
    let macros = wanted(repairs)?;
    let mut files = match (d.split, d.macros.parent()) {
        (true, Some(main)) => split_parts(main)?,
        _ => Vec::new(),
    };
    if !files.contains(&d.macros) {
        files.push(d.macros.clone());
    }
    let mut texts = Vec::new();
    for f in &files {
        match std::fs::read_to_string(f) {
            Ok(t) => texts.push(t),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => texts.push(String::new()),
            Err(e) => return Err(AppError(format!("{}: {e}", f.display()))),
        }
    }
    let defined_in = |name: &str| {
        texts
            .iter()
            .position(|t| set_macros(t, &[(name, None)]) != *t)
    };
    let home: Vec<usize> = macros
        .iter()
        .map(|(name, _)| {
            defined_in(name)
                .unwrap_or_else(|| files.iter().position(|f| *f == d.macros).unwrap_or(0))
        })
        .collect();
    let mut out = Vec::new();
    for (i, (file, old)) in files.iter().zip(&texts).enumerate() {
        let here: Vec<(&str, Option<&str>)> = macros
            .iter()
            .zip(&home)
            .map(|((name, value), h)| (*name, value.as_deref().filter(|_| *h == i)))
            .collect();
        let new = set_macros(old, &here);
        if new != *old {
            out.push(Edit {
                file: file.clone(),
                old: old.clone(),
                new,
            });
        }
    }
    Ok(out)
}

/// The directory update-exim4.conf reads (`-d`): the one holding `conf.d/` or
/// `exim4.conf.localmacros`.
fn confdir(d: &DebianSource) -> Option<&Path> {
    let up = if d.split { 3 } else { 1 };
    d.macros.ancestors().nth(up)
}

/// `update-exim4.conf -d CONFDIR -o OUTPUT`: the configuration generated from the macros as
/// they now are.
pub(super) fn regenerate(d: &DebianSource, output: &Path) -> Result<(), String> {
    let dir = confdir(d).ok_or_else(|| format!("{}: no directory", d.macros.display()))?;
    // Debian installs it in /usr/sbin; elsewhere it is looked for on PATH.
    let program = command::find_program(&["update-exim4.conf", "/usr/sbin/update-exim4.conf"]);
    command::run_ok(
        &program,
        None,
        &[
            OsStr::new("-d"),
            dir.as_os_str(),
            OsStr::new("-o"),
            output.as_os_str(),
        ],
    )
    .map(|_| ())
    .map_err(|e| format!("update-exim4.conf: {e}"))
}

#[cfg(test)]
mod tests {
    use super::confdir;
    use crate::deployed::exim::DebianSource;
    use std::path::{Path, PathBuf};

    #[test]
    fn confdir_of_each_layout() {
        let split = DebianSource {
            split: true,
            macros: PathBuf::from("/etc/exim4/conf.d/main/000_localmacros"),
        };
        let single = DebianSource {
            split: false,
            macros: PathBuf::from("/etc/exim4/exim4.conf.localmacros"),
        };
        assert_eq!(confdir(&split), Some(Path::new("/etc/exim4")));
        assert_eq!(confdir(&single), Some(Path::new("/etc/exim4")));
    }
}
