//! Human output polish: colour and progress only on a terminal (pseudo-terminal via util-linux
//! `script`), never in pipes, and no colour when NO_COLOR is set.

mod common;

use std::process::Command;

use common::*;

/// Runs `chainfix ARGS` on a pseudo-terminal; returns everything the terminal showed.
fn on_tty(env: &TestEnv, args: &str, no_color: bool) -> Option<String> {
    if Command::new("script").arg("--version").output().is_err() {
        eprintln!("skipping: util-linux `script` is not installed");
        return None;
    }
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
    Some(run(&mut cmd).stdout)
}

fn example(env: &TestEnv) {
    let chain = Chain::new(&[]);
    env.write("root.pem", &chain.root.pem);
    env.write("server/cert.pem", &chain.leaf.pem);
}

const ARGS: &str =
    "inspect server --roots root.pem --no-default-roots --offline --at 2026-06-01T00:00:00Z";

#[test]
fn colour_on_a_terminal_but_not_in_a_pipe_nor_with_no_color() {
    let env = TestEnv::new();
    example(&env);
    let Some(tty) = on_tty(&env, ARGS, false) else {
        return;
    };
    assert!(
        tty.contains("\x1b[31m") || tty.contains("\x1b[1m"),
        "no colour on a tty: {tty:?}"
    );
    let Some(plain) = on_tty(&env, ARGS, true) else {
        return;
    };
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
fn progress_bar_for_large_scans_only_on_a_terminal() {
    let env = TestEnv::new();
    example(&env);
    for i in 0..1100 {
        env.write(&format!("server/junk/{i}.txt"), "not a certificate\n");
    }
    let Some(tty) = on_tty(&env, ARGS, true) else {
        return;
    };
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
    let Some(small) = on_tty(&env, ARGS, true) else {
        return;
    };
    assert!(!small.contains("files"), "bar for a tiny scan: {small:?}");
}
