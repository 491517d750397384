//! Human output polish: colour and progress only on a terminal (pseudo-terminal via util-linux
//! `script`), never in pipes, and no colour when NO_COLOR is set.

mod common;

use std::process::Command;

use common::*;

/// Runs `chainfix ARGS` on a pseudo-terminal (util-linux `script`, cfg `have_script`); returns
/// everything the terminal showed.
fn on_tty(env: &TestEnv, args: &str, no_color: bool) -> String {
    let cmdline = format!("{} {args}", env!("CARGO_BIN_EXE_chainfix"));
    let mut cmd = Command::new("script");
    cmd.args(["-qec", &cmdline, "/dev/null"])
        .current_dir(env.path(""))
        .env("XDG_CACHE_HOME", env.path("cache"))
        .env_remove("NO_COLOR")
        .env_remove("CLICOLOR_FORCE");
    if no_color {
        cmd.env("NO_COLOR", "1");
    }
    run(&mut cmd).stdout
}

fn example(env: &TestEnv) {
    let chain = Chain::new(&[]);
    env.write("root.pem", &chain.root.pem);
    env.write("server/cert.pem", &chain.leaf.pem);
}

const ARGS: &str =
    "inspect server --roots root.pem --no-default-roots --offline --at 2026-06-01T00:00:00Z";

#[test]
#[cfg_attr(not(have_script), ignore = "needs util-linux script")]
fn colour_on_a_terminal_but_not_in_a_pipe_nor_with_no_color() {
    let env = TestEnv::new();
    example(&env);
    let tty = on_tty(&env, ARGS, false);
    assert!(
        tty.contains("\x1b[31m") || tty.contains("\x1b[1m"),
        "no colour on a tty: {tty:?}"
    );
    let plain = on_tty(&env, ARGS, true);
    assert!(!plain.contains('\x1b'), "NO_COLOR ignored: {plain:?}");
    let mut cmd = chainfix();
    cmd.current_dir(env.path(""))
        .env_remove("NO_COLOR")
        .args(ARGS.split(' '));
    let piped = run(&mut cmd);
    assert!(
        !piped.stdout.contains('\x1b'),
        "colour in a pipe: {:?}",
        piped.stdout
    );
    assert!(piped.stdout.contains("[BROKEN]"));
}

#[test]
#[cfg_attr(not(have_script), ignore = "needs util-linux script")]
fn progress_bar_for_large_scans_only_on_a_terminal() {
    let env = TestEnv::new();
    example(&env);
    for i in 0..1100 {
        env.write(&format!("server/junk/{i}.txt"), "not a certificate\n");
    }
    let tty = on_tty(&env, ARGS, true);
    assert!(tty.contains("files"), "no progress bar on a tty: {tty:?}");
    let mut cmd = chainfix();
    cmd.current_dir(env.path("")).args(ARGS.split(' '));
    let piped = run(&mut cmd);
    assert!(
        !piped.stderr.contains("files"),
        "progress in a pipe: {:?}",
        piped.stderr
    );
    // A small scan shows no bar even on a terminal.
    let env = TestEnv::new();
    example(&env);
    let small = on_tty(&env, ARGS, true);
    assert!(!small.contains("files"), "bar for a tiny scan: {small:?}");
}

/// A reader that stops early (`chainfix inspect fleet | head -1`) ends the printing, not the
/// audit: the exit status still reports a broken leaf that sorts after everything printed
/// (report entries are made 256 at a time, at most three chunks ahead of the printing, so the
/// last of 1,101 leaves is never reached by it).
#[test]
fn exit_status_covers_every_leaf_when_the_reader_stops_early() {
    let env = TestEnv::new();
    let ca = self_signed(&Spec::ca("Pipe Test CA", Alg::P256(0)));
    env.write("ca.pem", &ca.pem);
    for i in 0..1100 {
        let leaf = issue(
            &Spec::leaf(&format!("leaf{i:04}.example.test"), Alg::P256(1)),
            &ca,
        );
        env.write(&format!("fleet/leaf{i:04}.pem"), &leaf.pem);
    }
    let stray = self_signed(&Spec::leaf("zzz.example.test", Alg::P256(2)));
    env.write("fleet/zzz.pem", &stray.pem);
    let cache = env.path("cache");
    let args = |cmd: &mut Command| {
        cmd.current_dir(env.path(""))
            .args([
                "inspect",
                "fleet",
                "--json",
                "--roots",
                "ca.pem",
                "--no-default-roots",
            ])
            .args(["--offline", "--at", "2026-06-01T00:00:00Z", "--cache-dir"])
            .arg(&cache);
    };

    let mut whole = chainfix();
    args(&mut whole);
    let out = run(&mut whole);
    out.assert_status(1);
    let report = out.json();
    let results = report["results"].as_array().expect("results");
    assert_eq!(results.len(), 1101);
    let broken: Vec<&str> = results
        .iter()
        .filter(|r| r["status"] != "ok")
        .map(|r| r["file"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(broken, ["fleet/zzz.pem"]);

    // The same run with the reading end of stdout closed before anything is written.
    let mut cut = chainfix();
    args(&mut cut);
    let mut child = cut
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn chainfix");
    drop(child.stdout.take());
    let status = child.wait().expect("wait for chainfix");
    assert_eq!(
        status.code(),
        Some(1),
        "exit status with stdout closed early"
    );
}
