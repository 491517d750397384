//! The Exim deployment instructions of README.txt, followed to the letter on Debian's own
//! `update-exim4.conf` (exim4-config, extracted by `.ci/setup-mtas.sh`) in both layouts:
//! the single configuration (Debian's default, which reads `exim4.conf.localmacros` and never
//! `conf.d/`) and the split one. `exim -bP` on the generated configuration must show
//! chainfix's chain and key, for the server and for the `remote_smtp` transport.
//!
//! `update-exim4.conf` tests for `/etc/exim4/exim4.conf.localmacros` by that absolute path, so
//! it runs in a private root (a mount namespace with `/usr` and `/dev` bound in, `chroot`):
//! this host's `/etc` is never touched. Needs root and the extracted packages (cfg
//! `have_exim4_config`, see build.rs); without them cargo counts it as ignored.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::mta;
use common::*;

const AT: &str = "2026-06-01T00:00:00Z";
const EXIM: &str = concat!(env!("CHAINFIX_EXIM_ROOT"), "/usr/sbin/exim4");
/// Where the files live on the (imagined) mail host.
const INSTALL: &str = "/etc/exim4/chainfix";

/// The `/etc/exim4/...` path README.txt names for `layout` ("Single configuration" or "Split
/// configuration"): the first such path in the lines from the one naming the layout up to
/// the next blank line or layout.
fn readme_target(readme: &str, layout: &str) -> PathBuf {
    let mut lines = readme
        .lines()
        .skip_while(|l| !l.contains(layout))
        .peekable();
    let first = lines
        .next()
        .unwrap_or_else(|| panic!("README.txt has no {layout:?} instruction:\n{readme}"));
    let block = std::iter::once(first).chain(lines.take_while(|l| {
        !l.trim().is_empty() && !l.contains("configuration (") && !l.contains("Then")
    }));
    for line in block {
        if let Some(at) = line.find("/etc/exim4/") {
            let path: String = line[at..]
                .chars()
                .take_while(|c| !c.is_whitespace() && *c != ',' && *c != ')')
                .collect();
            return PathBuf::from(path);
        }
    }
    panic!("README.txt names no /etc/exim4 file for {layout:?}:\n{readme}");
}

/// `exim -C CONFIG -bP ARGS` output.
fn exim_bp(config: &Path, args: &[&str]) -> String {
    let out = run(Command::new(EXIM)
        .arg("-C")
        .arg(config)
        .arg("-bP")
        .args(args));
    assert_eq!(out.status, 0, "exim -bP {args:?}: {}", out.stderr);
    out.stdout
}

#[test]
#[cfg_attr(
    not(have_exim4_config),
    ignore = "needs Exim and Debian's exim4-config: .ci/setup-mtas.sh, as root"
)]
fn readme_exim_steps_work_with_debian_update_exim4_conf_in_both_layouts() {
    let chain = Chain::new(&[]);
    let env = TestEnv::new();
    env.write("root.pem", &chain.root.pem);
    env.write("server/cert.pem", &chain.leaf.pem);
    env.write("server/privkey.pem", &chain.leaf.key_pem);
    env.write("pool/int.pem", &chain.int.pem);
    run(env
        .cmd()
        .args([
            "repair", "server", "--out", "out", "--at", AT, "--emit", "exim",
        ])
        .args(["--offline", "--no-default-roots", "--roots", "root.pem"])
        .args(["--intermediates", "pool", "--install-dir", INSTALL]))
    .assert_status(0);
    let readme = String::from_utf8(env.read("out/README.txt")).expect("utf-8");
    let macros = env.read("out/exim/debian-macros.conf");
    let snippet = String::from_utf8_lossy(&macros).into_owned();
    let chain_path = format!("{INSTALL}/fullchain.pem");
    let key_path = format!("{INSTALL}/exim/privkey.pem");

    for (layout, split) in [
        ("Single configuration", false),
        ("Split configuration", true),
    ] {
        let target = readme_target(&readme, layout);
        // The snippet's own comment gives the same file.
        assert!(
            snippet.contains(&*target.to_string_lossy()),
            "{layout}: README.txt says {}, the snippet's comment does not:\n{snippet}",
            target.display()
        );
        let root = env.path(if split { "root-split" } else { "root-single" });
        let config = mta::debian_exim4_conf(&root, split, &target, &macros);
        let main = exim_bp(&config, &["tls_certificate", "tls_privatekey"]);
        assert!(
            main.contains(&format!("tls_certificate = {chain_path}"))
                && main.contains(&format!("tls_privatekey = {key_path}")),
            "{layout}: following README.txt ({}), Exim does not serve chainfix's chain:\n{main}",
            target.display()
        );
        let transport = exim_bp(&config, &["transport", "remote_smtp"]);
        assert!(
            transport.contains(&format!("tls_certificate = {chain_path}"))
                && transport.contains(&format!("tls_privatekey = {key_path}")),
            "{layout}: the remote_smtp transport does not present chainfix's chain:\n{transport}"
        );
        println!(
            "{layout}: {} -> exim -bP: {}",
            target.display(),
            main.trim()
        );
    }

    // The control: in the single configuration a conf.d/ file is ignored (what the old
    // instructions said), so the test can tell a right file from a wrong one.
    let root = env.path("root-wrong");
    let config = mta::debian_exim4_conf(
        &root,
        false,
        Path::new("/etc/exim4/conf.d/main/00_chainfix_tls"),
        &macros,
    );
    let main = exim_bp(&config, &["tls_certificate"]);
    assert!(!main.contains(&chain_path), "{main}");
}
