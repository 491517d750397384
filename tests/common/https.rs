//! A real nginx on loopback serving HTTPS, for the MTA-STS policy fetch (std only).
//!
//! `.ci/setup-https.sh` installs nginx. Each [`Nginx`] is a private instance: its own
//! configuration, pid file, logs and temporary directories under a directory the test gives
//! it, one `server` on 127.0.0.1 at a port picked for it, run in the foreground as one process
//! (`daemon off; master_process off;`), and stopped when dropped (also when the test panics).
//! A test that starts one carries `#[cfg_attr(not(have_nginx), ignore = ...)]`.

use std::fs;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use super::mta::{free_port, tail, START_TIMEOUT};

/// The nginx binary `.ci/setup-https.sh` installs (Debian's nginx package).
pub const NGINX_BIN: &str = "/usr/sbin/nginx";

/// A running nginx; stopped when dropped.
pub struct Nginx {
    child: Child,
    pub port: u16,
    dir: PathBuf,
}

impl Nginx {
    /// Starts nginx in `dir` (created) serving TLS with `chain_pem` (leaf first) and `key_pem`,
    /// its `server` block holding `server_body` (locations, `root`, `types`...). The site's
    /// document root is `dir/www`: put files there with [`Nginx::www`] before or after starting.
    pub fn start(dir: &Path, chain_pem: &str, key_pem: &str, server_body: &str) -> Nginx {
        for sub in ["www", "logs", "tmp"] {
            fs::create_dir_all(dir.join(sub))
                .unwrap_or_else(|e| panic!("creating {}: {e}", dir.display()));
        }
        let chain = dir.join("chain.pem");
        let key = dir.join("key.pem");
        fs::write(&chain, chain_pem).expect("writing chain.pem");
        fs::write(&key, key_pem).expect("writing key.pem");
        let port = free_port();
        let d = dir.display();
        // As root nginx would switch to `nobody`, which cannot read a 0700 temporary
        // directory; one process running as whoever started it needs no switch.
        let user = if super::is_root() {
            "user root root;\n"
        } else {
            ""
        };
        let conf = format!(
            "{user}daemon off;\nmaster_process off;\nworker_processes 1;\n\
             pid {d}/nginx.pid;\nerror_log {d}/logs/error.log info;\n\
             events {{ worker_connections 64; }}\n\
             http {{\n\
               access_log {d}/logs/access.log;\n\
               client_body_temp_path {d}/tmp/body;\n\
               proxy_temp_path {d}/tmp/proxy;\n\
               fastcgi_temp_path {d}/tmp/fastcgi;\n\
               uwsgi_temp_path {d}/tmp/uwsgi;\n\
               scgi_temp_path {d}/tmp/scgi;\n\
               types {{ text/plain txt; text/html html; }}\n\
               default_type application/octet-stream;\n\
               server {{\n\
                 listen 127.0.0.1:{port} ssl;\n\
                 ssl_certificate {chain};\n\
                 ssl_certificate_key {key};\n\
                 root {d}/www;\n\
                 {server_body}\n\
               }}\n\
             }}\n",
            chain = chain.display(),
            key = key.display(),
        );
        let conf_path = dir.join("nginx.conf");
        fs::write(&conf_path, conf).expect("writing nginx.conf");
        let stderr = fs::File::create(dir.join("logs/stderr.log")).expect("stderr log");
        let child = Command::new(NGINX_BIN)
            .arg("-p")
            .arg(dir)
            .arg("-c")
            .arg(&conf_path)
            .arg("-e")
            .arg(dir.join("logs/startup.log"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {NGINX_BIN}: {e}"));
        let mut nginx = Nginx {
            child,
            port,
            dir: dir.to_path_buf(),
        };
        nginx.wait_listening();
        nginx
    }

    /// Writes `rel` under the document root.
    pub fn www(dir: &Path, rel: &str, bytes: impl AsRef<[u8]>) {
        let path = dir.join("www").join(rel);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).expect("creating www subdirectory");
        }
        fs::write(&path, bytes).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
    }

    /// The tail of nginx's logs, for failure messages.
    pub fn logs(&self) -> String {
        ["logs/stderr.log", "logs/startup.log", "logs/error.log"]
            .iter()
            .map(|rel| {
                let text = fs::read_to_string(self.dir.join(rel)).unwrap_or_default();
                format!("--- {rel}\n{}", tail(&text, 20))
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    fn wait_listening(&mut self) {
        let addr = SocketAddr::from(([127, 0, 0, 1], self.port));
        let deadline = Instant::now() + START_TIMEOUT;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("nginx exited at start ({status})\n{}", self.logs());
            }
            if TcpStream::connect_timeout(&addr, Duration::from_millis(500)).is_ok() {
                return;
            }
            thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "nginx did not listen on {addr} within {START_TIMEOUT:?}\n{}",
            self.logs()
        );
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
