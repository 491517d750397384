//! The man page and completions come from the binary itself: they render, and they name every
//! subcommand and every option the real `--help` shows, so they cannot go out of date.

mod common;

use common::*;

fn stdout_of(args: &[&str]) -> String {
    let out = run(chainfix().args(args));
    out.assert_status(0);
    out.stdout
}

/// The long options `chainfix SUB --help` lists.
fn long_options(sub: &str) -> Vec<String> {
    stdout_of(&[sub, "--help"])
        .split_whitespace()
        .filter(|w| w.starts_with("--") && w.len() > 2)
        .map(|w| {
            w.trim_end_matches([',', '.'])
                .split('=')
                .next()
                .unwrap_or(w)
                .to_string()
        })
        .collect()
}

#[test]
fn man_page_names_every_subcommand_and_option() {
    let env = TestEnv::new();
    let out = run(chainfix()
        .args(["generate", "man", "--out-dir"])
        .arg(env.path("man")));
    out.assert_status(0);
    let top = String::from_utf8_lossy(&env.read("man/chainfix.1")).into_owned();
    assert!(
        top.starts_with(".ie") || top.contains(".TH"),
        "roff: {}",
        &top[..80.min(top.len())]
    );
    for sub in ["inspect", "repair", "probe", "generate"] {
        assert!(top.contains(sub), "chainfix.1 lacks {sub}");
        let page =
            String::from_utf8_lossy(&env.read(&format!("man/chainfix-{sub}.1"))).into_owned();
        for opt in long_options(sub) {
            // roff escapes '-' as '\-'.
            let escaped = opt.replace('-', "\\-");
            assert!(
                page.contains(&opt) || page.contains(&escaped),
                "chainfix-{sub}.1 lacks {opt}"
            );
        }
    }
    assert_eq!(
        stdout_of(&["generate", "man"]),
        top,
        "stdout and --out-dir agree"
    );
}

#[test]
fn completions_cover_subcommands_and_options_for_each_shell() {
    for shell in ["bash", "zsh", "fish"] {
        let script = stdout_of(&["generate", "completions", shell]);
        for word in ["inspect", "repair", "probe", "install-dir", "targets-file"] {
            assert!(script.contains(word), "{shell} completion lacks {word}");
        }
    }
    let out = run(chainfix().args(["generate", "completions", "tcsh"]));
    out.assert_status(2);
}

#[test]
fn bash_completion_completes_a_subcommand() {
    let env = TestEnv::new();
    env.write(
        "chainfix.bash",
        stdout_of(&["generate", "completions", "bash"]),
    );
    let script = format!(
        "source {}; COMP_WORDS=(chainfix rep); COMP_CWORD=1; _chainfix chainfix rep chainfix; \
         printf '%s\\n' \"${{COMPREPLY[@]}}\"",
        env.path("chainfix.bash").display()
    );
    let out = run(std::process::Command::new("bash").args(["-c", &script]));
    out.assert_status(0);
    assert!(out.stdout.lines().any(|l| l == "repair"), "{}", out.stdout);
}

/// The `.SH` headings of a roff page, in order.
fn headings(page: &str) -> Vec<String> {
    page.lines()
        .filter_map(|l| l.strip_prefix(".SH "))
        .map(|h| h.trim_matches('"').to_string())
        .collect()
}

#[test]
fn each_man_page_has_the_sections_an_admin_reads_alone() {
    let env = TestEnv::new();
    run(chainfix()
        .args(["generate", "man", "--out-dir"])
        .arg(env.path("man")))
    .assert_status(0);
    let page =
        |name: &str| String::from_utf8_lossy(&env.read(&format!("man/{name}.1"))).into_owned();
    let common = [
        "NAME",
        "SYNOPSIS",
        "DESCRIPTION",
        "OPTIONS",
        "EXIT STATUS",
        "EXAMPLES",
        "SEE ALSO",
    ];
    for (name, extra) in [
        ("chainfix", &["SUBCOMMANDS", "ENVIRONMENT"][..]),
        ("chainfix-inspect", &["FINDINGS", "ENVIRONMENT"][..]),
        ("chainfix-repair", &["FILES", "FINDINGS", "ENVIRONMENT"][..]),
        ("chainfix-probe", &["FINDINGS", "ENVIRONMENT"][..]),
        ("chainfix-generate", &[][..]),
    ] {
        let text = page(name);
        let found = headings(&text);
        for h in common.iter().chain(extra) {
            assert!(
                found.iter().any(|f| f == h),
                "{name}.1 lacks {h}: {found:?}"
            );
        }
        // The exit statuses are a section of their own, not clap's "EXTRA" epilogue.
        assert!(!found.iter().any(|f| f == "EXTRA"), "{name}.1: {found:?}");
    }
    // Value names in the synopsis, optional values in brackets.
    let repair = page("chainfix-repair");
    let synopsis = &repair[repair.find(".SH SYNOPSIS").expect("synopsis")..];
    let synopsis = &synopsis[..synopsis.find(".SH DESCRIPTION").expect("description")];
    for shown in [
        "\\fB\\-\\-out\\fR \\fIDIR\\fR",
        "\\-\\-postfix\\fR [\\fICONFIG_DIR\\fR]",
        "\\fIPATH\\fR",
    ] {
        assert!(synopsis.contains(shown), "{shown} not in {synopsis}");
    }
    // Every finding code a JSON report can carry is listed, with the NDR where there is one.
    for code in chainfix::diagnose::Code::ALL {
        let escaped = code.as_str().replace('-', "\\-");
        assert!(
            repair.contains(&escaped),
            "FINDINGS lacks {}",
            code.as_str()
        );
    }
    assert!(repair.contains("4.7.322"), "the NDRs are listed");
    // The files repair writes, the environment it reads.
    for word in [
        "fullchain.pem",
        "privkey.pem",
        "install\\-chain.ps1",
        "tlsa.zone",
        "NO_COLOR",
        "HTTPS_PROXY",
        "XDG_CACHE_HOME",
        "CHAINFIX_DOVECONF_BIN",
    ] {
        assert!(repair.contains(word), "chainfix-repair.1 lacks {word}");
    }
    // The Nagios statuses are on probe's page.
    assert!(page("chainfix-probe").contains("UNKNOWN"));
}

#[test]
fn bash_completion_offers_the_emit_values() {
    let env = TestEnv::new();
    env.write(
        "chainfix.bash",
        stdout_of(&["generate", "completions", "bash"]),
    );
    let script = format!(
        "source {}; COMP_WORDS=(chainfix repair --emit ''); COMP_CWORD=3; \
         _chainfix chainfix '' --emit; printf '%s\\n' \"${{COMPREPLY[@]}}\"",
        env.path("chainfix.bash").display()
    );
    let out = run(std::process::Command::new("bash").args(["-c", &script]));
    out.assert_status(0);
    let offered: Vec<&str> = out.stdout.lines().collect();
    for value in ["pem", "postfix", "exim", "iis", "dane", "all"] {
        assert!(offered.contains(&value), "{value} not offered: {offered:?}");
    }
}
