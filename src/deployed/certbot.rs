//! Files another tool owns and renews: certbot's `live/NAME/` links (into `archive/`),
//! acme.sh's per-domain directory, the snakeoil certificate of Debian's ssl-cert package.
//! chainfix judges them like any file but never rewrites them; where the tool already keeps
//! a full chain beside a leaf-only file (certbot's `fullchain.pem` next to `cert.pem`), the
//! configuration should name that file instead.

use std::path::{Path, PathBuf};

/// Who owns a file the configuration names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Owner {
    /// certbot: `.../live/NAME/{cert,chain,fullchain,privkey}.pem`.
    Certbot { live: PathBuf },
    /// acme.sh: `~/.acme.sh/NAME[_ecc]/` (`NAME.cer` leaf, `fullchain.cer`).
    AcmeSh { dir: PathBuf },
    /// Debian's ssl-cert package: `ssl-cert-snakeoil.pem`.
    Snakeoil,
}

impl Owner {
    pub fn tool(&self) -> &'static str {
        match self {
            Owner::Certbot { .. } => "certbot",
            Owner::AcmeSh { .. } => "acme.sh",
            Owner::Snakeoil => "ssl-cert (snakeoil)",
        }
    }

    /// The file the tool keeps with the leaf and its chain, when it keeps one.
    pub fn full_chain(&self) -> Option<PathBuf> {
        match self {
            Owner::Certbot { live } => Some(live.join("fullchain.pem")),
            Owner::AcmeSh { dir } => Some(dir.join("fullchain.cer")),
            Owner::Snakeoil => None,
        }
    }
}

/// The tool that owns `path`, judged by its place (the path as configured, links not
/// followed: certbot's renewals replace the targets in `archive/`, the `live/` names stay).
pub fn owner(path: &Path) -> Option<Owner> {
    let name = path.file_name()?.to_str()?;
    if name.starts_with("ssl-cert-snakeoil") {
        return Some(Owner::Snakeoil);
    }
    let dir = path.parent()?;
    let above = dir.parent()?;
    if above.file_name().and_then(|n| n.to_str()) == Some("live")
        && ["cert.pem", "chain.pem", "fullchain.pem", "privkey.pem"].contains(&name)
    {
        return Some(Owner::Certbot {
            live: dir.to_path_buf(),
        });
    }
    if path
        .ancestors()
        .any(|a| a.file_name().and_then(|n| n.to_str()) == Some(".acme.sh"))
    {
        return Some(Owner::AcmeSh {
            dir: dir.to_path_buf(),
        });
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn certbot_live_files_are_certbots_and_name_fullchain() {
        let o = owner(Path::new("/etc/letsencrypt/live/mx.example.com/cert.pem"));
        assert_eq!(
            o.as_ref().and_then(Owner::full_chain),
            Some(PathBuf::from(
                "/etc/letsencrypt/live/mx.example.com/fullchain.pem"
            ))
        );
        assert_eq!(owner(Path::new("/etc/ssl/mx/cert.pem")), None);
        assert_eq!(
            owner(Path::new("/etc/ssl/certs/ssl-cert-snakeoil.pem")),
            Some(Owner::Snakeoil)
        );
    }
}
