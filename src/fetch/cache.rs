//! The AIA download cache: one PEM file per URL under `$XDG_CACHE_HOME/chainfix/aia/`, named
//! by the SHA-256 of the URL. Entries never expire (CA certificates at a caIssuers URL are
//! stable); delete the directory to clear it. Cached certificates are candidates like any
//! other and are trusted no more than a fresh download.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use sha2::{Digest, Sha256};

use crate::cert::{hex, Certificate};
use crate::load::{self, NoPassword};
use crate::write::{write_atomic, FileMode};

const HEADER: &str = "# chainfix AIA cache entry\n# url: ";

#[derive(Debug, Clone)]
pub struct Cache {
    dir: PathBuf,
}

impl Cache {
    pub fn new(dir: PathBuf) -> Cache {
        Cache { dir }
    }

    /// `$XDG_CACHE_HOME/chainfix`, else `$HOME/.cache/chainfix`.
    pub fn default_dir() -> Option<PathBuf> {
        let base = std::env::var_os("XDG_CACHE_HOME")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
        Some(base.join("chainfix"))
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn entry_path(&self, url: &str) -> PathBuf {
        self.dir
            .join("aia")
            .join(format!("{}.pem", hex(&Sha256::digest(url.as_bytes()))))
    }

    /// The certificates cached for `url`.
    pub fn get(&self, url: &str) -> Option<Vec<Arc<Certificate>>> {
        read_entry(&self.entry_path(url)).map(|(_, certs)| certs)
    }

    /// Stores the certificates fetched from `url`.
    pub fn put(&self, url: &str, certs: &[Arc<Certificate>]) -> std::io::Result<()> {
        let printable: String = url.chars().filter(|c| !c.is_control()).collect();
        let mut text = format!("{HEADER}{printable}\n");
        for c in certs {
            text.push_str(&c.to_pem());
        }
        std::fs::create_dir_all(self.dir.join("aia"))?;
        write_atomic(&self.entry_path(url), text.as_bytes(), FileMode::Public).map(|_| ())
    }

    /// Forgets what was cached for `url` (an entry that no longer verifies the certificate
    /// that names it: only verified issuers are cached, so it is stale or was planted).
    pub fn remove(&self, url: &str) -> std::io::Result<()> {
        match std::fs::remove_file(self.entry_path(url)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    /// Every cached entry as (url, certificates), sorted by file name for determinism.
    pub fn entries(&self) -> Vec<(String, Vec<Arc<Certificate>>)> {
        let Ok(dir) = std::fs::read_dir(self.dir.join("aia")) else {
            return Vec::new();
        };
        let mut paths: Vec<PathBuf> = dir
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "pem"))
            .collect();
        paths.sort();
        paths.iter().filter_map(|p| read_entry(p)).collect()
    }
}

fn read_entry(path: &Path) -> Option<(String, Vec<Arc<Certificate>>)> {
    let bytes = std::fs::read(path).ok()?;
    let url = std::str::from_utf8(&bytes)
        .ok()
        .and_then(|t| t.strip_prefix(HEADER))
        .and_then(|t| t.lines().next())
        .unwrap_or_default()
        .to_string();
    let contents = load::parse_bytes(&bytes, path, &NoPassword).ok()?;
    (!contents.certs.is_empty()).then(|| (url, contents.certs.into_iter().map(Arc::new).collect()))
}
