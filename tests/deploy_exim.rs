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

use common::*;

const AT: &str = "2026-06-01T00:00:00Z";
const EXIM: &str = concat!(env!("CHAINFIX_EXIM_ROOT"), "/usr/sbin/exim4");
const EXIM_CONFIG: &str = "/opt/chainfix-test/exim4-config";
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

/// Debian's `update-exim4.conf` with `update-exim4.conf.conf` for `split`, the macros file at
/// `target` (an `/etc/exim4/...` path inside the private root); returns the generated
/// configuration's path on this host.
fn update_exim4_conf(root: &Path, split: bool, target: &Path, macros: &[u8]) -> PathBuf {
    let etc = root.join("etc");
    std::fs::create_dir_all(root.join("out")).expect("out");
    for d in ["usr", "dev", "tmp", "upd", "etc"] {
        std::fs::create_dir_all(root.join(d)).expect("dir");
    }
    std::fs::set_permissions(
        root.join("tmp"),
        std::os::unix::fs::PermissionsExt::from_mode(0o1777),
    )
    .expect("chmod tmp");
    for l in ["bin", "lib", "lib64", "sbin"] {
        let _ = std::os::unix::fs::symlink(format!("usr/{l}"), root.join(l));
    }
    let copy = run(Command::new("cp")
        .arg("-a")
        .arg(Path::new(EXIM_CONFIG).join("etc/exim4"))
        .arg(&etc));
    assert_eq!(copy.status, 0, "{}", copy.stderr);
    for f in ["passwd", "group"] {
        std::fs::copy(Path::new("/etc").join(f), etc.join(f)).expect("copy passwd/group");
    }
    std::fs::copy(
        Path::new(EXIM_CONFIG).join("usr/sbin/update-exim4.conf"),
        root.join("upd/update-exim4.conf"),
    )
    .expect("copy update-exim4.conf");
    std::fs::write(etc.join("mailname"), "mail.example.test\n").expect("mailname");
    std::fs::write(
        etc.join("exim4/update-exim4.conf.conf"),
        format!(
            "dc_eximconfig_configtype='internet'\ndc_other_hostnames='mail.example.test'\n\
             dc_local_interfaces='127.0.0.1 ; ::1'\ndc_readhost=''\ndc_relay_domains=''\n\
             dc_minimaldns='false'\ndc_relay_nets=''\ndc_smarthost=''\nCFILEMODE='644'\n\
             dc_use_split_config='{split}'\ndc_hide_mailname=''\ndc_mailname_in_oh='true'\n\
             dc_localdelivery='mail_spool'\n"
        ),
    )
    .expect("update-exim4.conf.conf");
    let inside = root.join(target.strip_prefix("/").expect("absolute"));
    std::fs::create_dir_all(inside.parent().expect("parent")).expect("target dir");
    // Both instructions (a new file, or lines added to localmacros) come to the same bytes here.
    std::fs::write(&inside, macros).expect("placing the macros");
    let script = format!(
        "mount --bind /usr {r}/usr && mount --bind /dev {r}/dev && \
         chroot {r} /bin/sh /upd/update-exim4.conf -d /etc/exim4 -o /out/exim4.conf",
        r = root.display()
    );
    let out = run(Command::new("unshare").args(["-m", "sh", "-c", &script]));
    assert_eq!(
        out.status, 0,
        "update-exim4.conf failed:\n{}\n{}",
        out.stdout, out.stderr
    );
    root.join("out/exim4.conf")
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
        let config = update_exim4_conf(&root, split, &target, &macros);
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
    let config = update_exim4_conf(
        &root,
        false,
        Path::new("/etc/exim4/conf.d/main/00_chainfix_tls"),
        &macros,
    );
    let main = exim_bp(&config, &["tls_certificate"]);
    assert!(!main.contains(&chain_path), "{main}");
}
