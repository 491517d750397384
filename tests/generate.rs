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
