//! End-to-end tests of the Ansible collection `chainfix.mail` (packaging/ansible/ansible_collections/chainfix/mail).
//!
//! Each test writes a playbook for localhost (`connection: local`, no facts) that runs the
//! `chainfix.mail.chainfix` module with the chainfix binary built by cargo, offline, with the test
//! PKI's intermediate and root only (`no_default_roots`) and the time pinned with `--at` through
//! `extra_args`. After each module task the playbook saves the registered result as JSON, so the
//! tests check both what `ansible-playbook` prints (PLAY RECAP, diffs, failures) and what the
//! module returns. Ansible runs with its configuration, home and temporary directories inside the
//! test's own directory and without proxy variables; nothing leaves loopback.
//!
//! The deployed-mode tests (`mta:`) give the module a real Postfix or Exim from
//! tests/common/mta.rs, serving a leaf without its intermediate on 127.0.0.1, and a handler that
//! reloads that instance; an independent `openssl s_client` then checks what it serves. They
//! also need `have_postfix` or `have_exim`.
//!
//! Without `ansible-playbook` and `ansible-doc` on PATH (`pip install 'ansible-core==2.17.*'`)
//! when build.rs probed, `cargo test` lists these tests as ignored (cfg `have_ansible`); with
//! `CHAINFIX_REQUIRE_ANSIBLE=1` the build fails instead.

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use common::dovecot::{self, Dovecot};
use common::mta::{self, Postfix};
use common::{
    issue, pem_bundle, repo_path, run, self_signed, Alg, Chain, Output, Spec, TestEnv, PROXY_VARS,
};
use serde_json::{json, Value};

/// The time chainfix judges validity at: inside the test PKI's validity (2024..2034).
const AT: &str = "2030-06-01T00:00:00Z";
/// `AT` as seconds since the epoch, for `openssl verify -attime`.
const AT_EPOCH: &str = "1906502400";
/// After the test leaf's notAfter (2034-01-01).
const AT_EXPIRED: &str = "2040-01-01T00:00:00Z";
/// The handler every test playbook notifies.
const HANDLER: &str = "Reload MTA";
const PFX_PASSWORD: &str = "pfx-password-never-logged-4711";

// ---------------------------------------------------------------------------------------------
// Harness
// ---------------------------------------------------------------------------------------------

/// Counts from the PLAY RECAP line for localhost.
#[derive(Debug, Default, PartialEq, Eq)]
struct Recap {
    ok: u32,
    changed: u32,
    failed: u32,
    ignored: u32,
}

fn recap(out: &Output) -> Recap {
    let line = out
        .stdout
        .lines()
        .find(|l| l.starts_with("localhost") && l.contains("changed="))
        .unwrap_or_else(|| panic!("no PLAY RECAP line\n{}", show(out)));
    let counts: BTreeMap<&str, u32> = line
        .split_whitespace()
        .filter_map(|t| t.split_once('='))
        .map(|(k, v)| (k, v.parse().expect("a count in PLAY RECAP")))
        .collect();
    let get = |k: &str| counts.get(k).copied().unwrap_or_default();
    Recap {
        ok: get("ok"),
        changed: get("changed"),
        failed: get("failed"),
        ignored: get("ignored"),
    }
}

fn show(out: &Output) -> String {
    format!(
        "--- exit {} ---\n--- stdout ---\n{}\n--- stderr ---\n{}",
        out.status, out.stdout, out.stderr
    )
}

/// The test PKI in a temporary directory: `server/` holds the leaf alone and its key,
/// `pool/` the intermediate, `root.pem` the root.
struct Fixture {
    env: TestEnv,
    chain: Chain,
}

impl Fixture {
    fn new() -> Fixture {
        let env = TestEnv::new();
        let chain = Chain::new(&[]);
        env.write("server/cert.pem", &chain.leaf.pem);
        env.write("server/privkey.pem", &chain.leaf.key_pem);
        env.write("pool/intermediate.pem", &chain.int.pem);
        env.write("root.pem", &chain.root.pem);
        env.write("ansible.cfg", "");
        Fixture { env, chain }
    }

    /// Absolute path of `rel` in the test directory, as a string for the playbook.
    fn p(&self, rel: &str) -> String {
        self.env
            .path(rel)
            .to_str()
            .expect("temporary paths are UTF-8")
            .to_string()
    }

    /// Module arguments that repair `server/` into `dest`.
    fn args(&self, dest: &str) -> Value {
        json!({
            "binary": env!("CARGO_BIN_EXE_chainfix"),
            "src": [self.p("server")],
            "dest": self.p(dest),
            "intermediates": [self.p("pool")],
            "roots": [self.p("root.pem")],
            "no_default_roots": true,
            "offline": true,
            "cache_dir": self.p("cache"),
            "extra_args": ["--at", AT],
        })
    }

    /// Writes `name`.yml: one chainfix task per step (notifying the handler; failures ignored
    /// when `expect_failure`), each followed by a task saving its result to `<result>.json`.
    /// The handler only prints a message.
    fn playbook(&self, name: &str, steps: &[(&str, Value)], expect_failure: bool) -> PathBuf {
        let handler = json!({"ansible.builtin.debug": {"msg": "reloading the MTA"}});
        self.playbook_with_handler(name, steps, expect_failure, handler)
    }

    /// Module arguments that repair the deployed `mta` whose configuration is `config` in
    /// place, with chainfix's own directory `dest`; the same trust as `args`.
    fn deployed_args(&self, mta: &str, config: &Path, dest: &str) -> Value {
        json!({
            "binary": env!("CARGO_BIN_EXE_chainfix"),
            "mta": mta,
            "config": config,
            "dest": self.p(dest),
            "intermediates": [self.p("pool")],
            "roots": [self.p("root.pem")],
            "no_default_roots": true,
            "offline": true,
            "cache_dir": self.p("cache"),
            "extra_args": ["--at", AT],
        })
    }

    /// `playbook` with `handler` (a task, named [`HANDLER`] here) as the handler.
    fn playbook_with_handler(
        &self,
        name: &str,
        steps: &[(&str, Value)],
        expect_failure: bool,
        mut handler: Value,
    ) -> PathBuf {
        handler["name"] = json!(HANDLER);
        let mut tasks = Vec::new();
        for (i, (result, args)) in steps.iter().enumerate() {
            let var = format!("chainfix_result_{i}");
            tasks.push(json!({
                "name": format!("chainfix {result}"),
                "chainfix.mail.chainfix": args,
                "register": var,
                "notify": HANDLER,
                "ignore_errors": expect_failure,
            }));
            tasks.push(json!({
                "name": format!("save {result}"),
                "ansible.builtin.copy": {
                    "content": format!("{{{{ {var} | to_nice_json }}}}"),
                    "dest": self.p(&format!("{result}.json")),
                },
                "changed_when": false,
                "check_mode": false,
                "diff": false,
            }));
        }
        let play = json!([{
            "name": name,
            "hosts": "localhost",
            "connection": "local",
            "gather_facts": false,
            "vars": {"ansible_python_interpreter": "{{ ansible_playbook_python }}"},
            "tasks": tasks,
            "handlers": [handler],
        }]);
        // JSON is YAML, and needs no quoting rules.
        self.env.write(
            &format!("{name}.yml"),
            serde_json::to_string_pretty(&play).expect("playbook JSON"),
        )
    }

    /// An Ansible command isolated in the test directory.
    fn ansible(&self, program: &str) -> Command {
        let mut cmd = Command::new(program);
        for var in PROXY_VARS {
            cmd.env_remove(var);
        }
        cmd.env("ANSIBLE_CONFIG", self.env.path("ansible.cfg"))
            .env("ANSIBLE_COLLECTIONS_PATH", repo_path("packaging/ansible"))
            .env("ANSIBLE_HOME", self.env.path("ansible-home"))
            .env("ANSIBLE_LOCAL_TEMP", self.env.path("ansible-tmp/local"))
            .env("ANSIBLE_REMOTE_TMP", self.env.path("ansible-tmp/remote"))
            .env("ANSIBLE_NOCOLOR", "1")
            .env("ANSIBLE_FORCE_COLOR", "0")
            .env("ANSIBLE_RETRY_FILES_ENABLED", "0")
            .env("ANSIBLE_STDOUT_CALLBACK", "default")
            .env("ANSIBLE_LOCALHOST_WARNING", "0")
            .env("ANSIBLE_INVENTORY_UNPARSED_WARNING", "0")
            .env("NO_COLOR", "1")
            .current_dir(self.env.dir.path());
        cmd
    }

    /// `ansible-playbook -i localhost, EXTRA... PLAYBOOK`.
    fn play(&self, playbook: &Path, extra: &[&str]) -> Output {
        run(self
            .ansible("ansible-playbook")
            .args(["-i", "localhost,"])
            .args(extra)
            .arg(playbook))
    }

    /// The result saved by the playbook under `name`.
    fn result(&self, name: &str) -> Value {
        let text = String::from_utf8(self.env.read(&format!("{name}.json"))).expect("UTF-8");
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name}.json: {e}\n{text}"))
    }

    fn text(&self, rel: &str) -> String {
        String::from_utf8(self.env.read(rel)).expect("UTF-8")
    }

    /// `openssl verify` of OUT/cert.pem with OUT/chain.pem as untrusted and the root as the only CA.
    fn assert_verifies(&self, out: &str) {
        let o = self.env.openssl(&[
            "verify",
            "-attime",
            AT_EPOCH,
            "-CAfile",
            "root.pem",
            "-untrusted",
            &format!("{out}/chain.pem"),
            &format!("{out}/cert.pem"),
        ]);
        assert_eq!(o.status, 0, "openssl verify failed\n{}", show(&o));
        assert!(o.stdout.contains(": OK"), "{}", show(&o));
    }

    /// The base64 lines of the leaf's private key, none of which may ever be printed.
    fn key_lines(&self) -> Vec<String> {
        self.chain
            .leaf
            .key_pem
            .lines()
            .filter(|l| !l.starts_with("-----") && l.len() > 16)
            .map(str::to_string)
            .collect()
    }
}

fn mode_of(path: &Path) -> u32 {
    fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o7777
}

/// `files` of a module result as path -> action.
fn actions(result: &Value) -> BTreeMap<String, String> {
    result["files"]
        .as_array()
        .unwrap_or_else(|| panic!("no files in {result:#}"))
        .iter()
        .map(|f| {
            (
                f["path"].as_str().expect("path").to_string(),
                f["action"].as_str().expect("action").to_string(),
            )
        })
        .collect()
}

fn handler_ran(out: &Output) -> bool {
    out.stdout.contains(&format!("RUNNING HANDLER [{HANDLER}]"))
}

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

#[test]
#[cfg_attr(
    not(have_ansible),
    ignore = "needs ansible-playbook on PATH: pip install 'ansible-core==2.17.*'"
)]
fn first_run_repairs_the_chain_and_second_run_changes_nothing() {
    let fx = Fixture::new();
    let pb = fx.playbook("repair", &[("repair", fx.args("out"))], false);

    let first = fx.play(&pb, &[]);
    assert_eq!(first.status, 0, "{}", show(&first));
    assert_eq!(
        recap(&first),
        Recap {
            ok: 3,
            changed: 1,
            failed: 0,
            ignored: 0
        },
        "{}",
        show(&first)
    );
    assert!(
        handler_ran(&first),
        "the handler must run after a change\n{}",
        show(&first)
    );
    assert_eq!(
        fx.text("out/fullchain.pem"),
        pem_bundle(&[&fx.chain.leaf, &fx.chain.int]),
        "fullchain.pem is the leaf then the intermediate"
    );
    assert_eq!(fx.text("out/chain.pem"), fx.chain.int.pem);
    fx.assert_verifies("out");
    assert_eq!(mode_of(&fx.env.path("out/privkey.pem")), 0o600);

    let r = fx.result("repair");
    assert_eq!(r["changed"], json!(true));
    assert_eq!(r["status"], json!("repairable"), "{r:#}");
    let roles: Vec<&str> = r["chain"]
        .as_array()
        .expect("chain")
        .iter()
        .map(|c| c["role"].as_str().expect("role"))
        .collect();
    assert_eq!(roles, ["leaf", "intermediate", "root"], "{r:#}");
    assert_eq!(r["chain"][0]["subject"], json!("CN=mail.example.test"));
    for key in ["sha256", "not_after"] {
        assert!(
            r["chain"][0][key].is_string(),
            "chain[0].{key} missing: {r:#}"
        );
    }
    assert!(
        r["problems"]
            .as_array()
            .expect("problems")
            .iter()
            .any(|p| p["code"] == "missing-intermediate"),
        "{r:#}"
    );
    let fullchain = fx.p("out/fullchain.pem");
    assert_eq!(actions(&r)[&fullchain], "created", "{r:#}");
    assert_eq!(r["backup_files"], json!([]));

    let second = fx.play(&pb, &[]);
    assert_eq!(second.status, 0, "{}", show(&second));
    assert_eq!(recap(&second).changed, 0, "{}", show(&second));
    assert!(
        !handler_ran(&second),
        "nothing changed, no reload\n{}",
        show(&second)
    );
    let r = fx.result("repair");
    assert_eq!(r["changed"], json!(false), "{r:#}");
    assert!(
        actions(&r).values().all(|a| a == "unchanged"),
        "second run must leave every file alone: {r:#}"
    );
    fx.assert_verifies("out");
}

#[test]
#[cfg_attr(
    not(have_ansible),
    ignore = "needs ansible-playbook on PATH: pip install 'ansible-core==2.17.*'"
)]
fn dest_inside_src_is_idempotent_and_a_renewal_is_deployed() {
    // The README's layout: the output directory inside the scanned one, with backups.
    let fx = Fixture::new();
    let mut args = fx.args("server/chainfix");
    args["backup"] = json!(true);
    let pb = fx.playbook("inside", &[("inside", args)], false);
    let first = fx.play(&pb, &[]);
    assert_eq!(first.status, 0, "{}", show(&first));
    assert_eq!(recap(&first).changed, 1, "{}", show(&first));
    let second = fx.play(&pb, &[]);
    assert_eq!(second.status, 0, "{}", show(&second));
    assert_eq!(recap(&second).changed, 0, "{}", show(&second));
    assert!(!handler_ran(&second), "{}", show(&second));

    // Renewed under a new key, both in place: the new chain lands where the MTA reads it.
    let renewed = issue(
        &Spec::leaf("mail.example.test", Alg::Rsa2048(2)).serial(77),
        &fx.chain.int,
    );
    fx.env.write("server/cert.pem", &renewed.pem);
    fx.env.write("server/privkey.pem", &renewed.key_pem);
    let third = fx.play(&pb, &[]);
    assert_eq!(third.status, 0, "{}", show(&third));
    assert_eq!(recap(&third).changed, 1, "{}", show(&third));
    assert_eq!(
        fx.text("server/chainfix/fullchain.pem"),
        pem_bundle(&[&renewed, &fx.chain.int])
    );
}

#[test]
#[cfg_attr(
    not(have_ansible),
    ignore = "needs ansible-playbook on PATH: pip install 'ansible-core==2.17.*'"
)]
fn mode_applies_to_non_key_files_idempotently_and_backup_keeps_old_files() {
    let fx = Fixture::new();
    let mut args = fx.args("out");
    args["mode"] = json!("0664");
    args["backup"] = json!(true);
    let pb = fx.playbook("mode", &[("mode", args.clone())], false);

    let first = fx.play(&pb, &[]);
    assert_eq!(first.status, 0, "{}", show(&first));
    assert_eq!(recap(&first).changed, 1, "{}", show(&first));
    for rel in [
        "fullchain.pem",
        "chain.pem",
        "cert.pem",
        "postfix/main.cf",
        "README.txt",
    ] {
        assert_eq!(mode_of(&fx.env.path(&format!("out/{rel}"))), 0o664, "{rel}");
    }
    // Never loosened: the key files keep chainfix's modes.
    assert_eq!(mode_of(&fx.env.path("out/privkey.pem")), 0o600);
    assert_eq!(mode_of(&fx.env.path("out/exim/privkey.pem")), 0o640);
    assert_eq!(
        fx.result("mode")["backup_files"],
        json!([]),
        "nothing existed to back up"
    );

    // chainfix resets 0664 to its own 0644 and the module sets 0664 again: not a change.
    let second = fx.play(&pb, &[]);
    assert_eq!(second.status, 0, "{}", show(&second));
    assert_eq!(recap(&second).changed, 0, "{}", show(&second));
    assert!(!handler_ran(&second), "{}", show(&second));
    let r = fx.result("mode");
    assert!(actions(&r).values().all(|a| a == "unchanged"), "{r:#}");
    assert_eq!(mode_of(&fx.env.path("out/fullchain.pem")), 0o664);

    // Check mode agrees.
    let check = fx.play(&pb, &["--check"]);
    assert_eq!(recap(&check).changed, 0, "{}", show(&check));

    // A content change: the files chainfix replaces are backed up first, with their mode.
    let old_fullchain = fx.text("out/fullchain.pem");
    args["include_root"] = json!(true);
    let pb = fx.playbook("mode-root", &[("mode-root", args)], false);
    let third = fx.play(&pb, &[]);
    assert_eq!(third.status, 0, "{}", show(&third));
    assert_eq!(recap(&third).changed, 1, "{}", show(&third));
    assert!(handler_ran(&third), "{}", show(&third));
    assert_eq!(
        fx.text("out/fullchain.pem"),
        pem_bundle(&[&fx.chain.leaf, &fx.chain.int, &fx.chain.root])
    );
    let r = fx.result("mode-root");
    let acts = actions(&r);
    let backups: Vec<&str> = r["backup_files"]
        .as_array()
        .expect("backup_files")
        .iter()
        .map(|b| b.as_str().expect("path"))
        .collect();
    let fullchain = fx.p("out/fullchain.pem");
    assert_eq!(acts[&fullchain], "updated", "{r:#}");
    let fullchain_backup = backups
        .iter()
        .find(|b| b.starts_with(&format!("{fullchain}.")) && b.ends_with('~'))
        .unwrap_or_else(|| panic!("no backup of fullchain.pem: {r:#}"));
    assert_eq!(
        fs::read_to_string(fullchain_backup).expect("backup"),
        old_fullchain
    );
    assert_eq!(mode_of(Path::new(fullchain_backup)), 0o664);
    for b in &backups {
        let original = b.rsplitn(3, '.').nth(2).expect("NAME.PID.DATE~");
        assert_eq!(
            acts.get(original).map(String::as_str),
            Some("updated"),
            "{b}: {r:#}"
        );
    }
    assert!(
        !backups.iter().any(|b| b.contains("privkey")),
        "the key did not change, so it has no backup: {r:#}"
    );
}

#[test]
#[cfg_attr(
    not(have_ansible),
    ignore = "needs ansible-playbook on PATH: pip install 'ansible-core==2.17.*'"
)]
fn check_mode_reports_changes_and_writes_nothing() {
    let fx = Fixture::new();
    let pb = fx.playbook("check", &[("check", fx.args("out"))], false);

    let check = fx.play(&pb, &["--check"]);
    assert_eq!(check.status, 0, "{}", show(&check));
    assert_eq!(recap(&check).changed, 1, "{}", show(&check));
    assert!(
        !fx.env.path("out").exists(),
        "check mode must write nothing"
    );
    let r = fx.result("check");
    assert_eq!(r["changed"], json!(true));
    let acts = actions(&r);
    assert!(acts.contains_key(&fx.p("out/fullchain.pem")), "{r:#}");
    assert!(acts.values().all(|a| a == "created"), "{r:#}");

    // After a real run, check mode finds nothing to do.
    let real = fx.play(&pb, &[]);
    assert_eq!(recap(&real).changed, 1, "{}", show(&real));
    let again = fx.play(&pb, &["--check"]);
    assert_eq!(recap(&again).changed, 0, "{}", show(&again));
}

#[test]
#[cfg_attr(
    not(have_ansible),
    ignore = "needs ansible-playbook on PATH: pip install 'ansible-core==2.17.*'"
)]
fn diff_shows_the_new_files_but_never_key_material() {
    let fx = Fixture::new();
    let mut args = fx.args("out");
    args["postfix_single_file"] = json!(true);
    args["pfx_password"] = json!(PFX_PASSWORD);
    let pb = fx.playbook("diff", &[("diff", args)], false);

    let out = fx.play(&pb, &["--diff"]);
    assert_eq!(out.status, 0, "{}", show(&out));
    assert_eq!(recap(&out).changed, 1, "{}", show(&out));
    let r = fx.result("diff");
    let printed = format!("{}\n{}\n{r}", out.stdout, out.stderr);

    // The diff shows the certificates and the snippets naming the real paths.
    let fullchain = fx.p("out/fullchain.pem");
    assert!(
        out.stdout.contains(&format!("+++ after: {fullchain}")),
        "{}",
        show(&out)
    );
    let leaf_line = fx.chain.leaf.pem.lines().nth(1).expect("a base64 line");
    assert!(
        out.stdout.contains(&format!("+{leaf_line}")),
        "{}",
        show(&out)
    );
    assert!(
        out.stdout.contains(&format!(
            "+smtpd_tls_chain_files = {}",
            fx.p("out/postfix/key-and-chain.pem")
        )),
        "{}",
        show(&out)
    );
    // Key files show a placeholder: privkey.pem, exim/privkey.pem, the single-file Postfix
    // bundle and the PFX.
    let diffs = r["diff"]
        .as_array()
        .unwrap_or_else(|| panic!("no diff: {r:#}"));
    let after_of = |rel: &str| -> String {
        let path = fx.p(&format!("out/{rel}"));
        diffs
            .iter()
            .find(|d| d["after_header"] == json!(path))
            .unwrap_or_else(|| panic!("no diff for {rel}: {r:#}"))["after"]
            .as_str()
            .expect("after text")
            .to_string()
    };
    for rel in [
        "privkey.pem",
        "exim/privkey.pem",
        "postfix/key-and-chain.pem",
        "iis/certificate.pfx",
    ] {
        assert_eq!(after_of(rel), "(private key changed)\n", "{rel}");
    }
    assert_eq!(after_of("iis/leaf.cer"), "(binary file changed)\n");
    // The "after" text was made with --install-dir = dest: identical to what was written.
    for rel in [
        "postfix/main.cf",
        "exim/main.conf",
        "README.txt",
        "fullchain.pem",
    ] {
        assert_eq!(after_of(rel), fx.text(&format!("out/{rel}")), "{rel}");
    }
    assert!(
        !printed.contains("PRIVATE KEY"),
        "key material printed\n{printed}"
    );
    for line in fx.key_lines() {
        assert!(
            !printed.contains(&line),
            "key material printed: {line}\n{printed}"
        );
    }
    assert!(
        !printed.contains(PFX_PASSWORD),
        "the PFX password was printed\n{printed}"
    );
    let cmd = r["cmd"].to_string();
    assert!(cmd.contains("--pfx-password-env"), "{cmd}");
    assert!(!cmd.contains(PFX_PASSWORD), "{cmd}");
    // The password reached chainfix through the environment.
    let pfx = fx.env.openssl(&[
        "pkcs12",
        "-noout",
        "-in",
        "out/iis/certificate.pfx",
        "-passin",
        &format!("pass:{PFX_PASSWORD}"),
    ]);
    assert_eq!(pfx.status, 0, "{}", show(&pfx));
    assert_eq!(mode_of(&fx.env.path("out/iis/certificate.pfx")), 0o600);
    assert!(
        !fx.env.path("ansible-tmp/remote").exists()
            || fs::read_dir(fx.env.path("ansible-tmp/remote"))
                .expect("remote tmp")
                .next()
                .is_none(),
        "the temporary copy for the diff (with keys) must be gone"
    );

    // Nothing changes, nothing to show.
    let again = fx.play(&pb, &["--diff"]);
    assert_eq!(recap(&again).changed, 0, "{}", show(&again));
    assert!(!again.stdout.contains("+++ after"), "{}", show(&again));
}

#[test]
#[cfg_attr(
    not(have_ansible),
    ignore = "needs ansible-playbook on PATH: pip install 'ansible-core==2.17.*'"
)]
fn broken_inputs_fail_with_the_finding_sentence() {
    let fx = Fixture::new();
    let selfsigned = self_signed(&Spec::leaf("selfsigned.example.test", Alg::P256(1)));
    fx.env.write("selfsigned/cert.pem", &selfsigned.pem);
    fx.env.write("selfsigned/privkey.pem", &selfsigned.key_pem);

    let mut self_signed_args = fx.args("selfsigned-out");
    self_signed_args["src"] = json!([fx.p("selfsigned")]);
    self_signed_args["roots"] = json!([]);
    self_signed_args["intermediates"] = json!([]);
    let mut expired_args = fx.args("expired-out");
    expired_args["extra_args"] = json!(["--at", AT_EXPIRED]);
    let mut missing_args = fx.args("missing-out");
    missing_args["src"] = json!([fx.p("does-not-exist")]);
    // The leaf expires between the module's dry run and its real run: a wrapper passes
    // `--check` runs through and moves `--at` past the leaf's notAfter for the others.
    let wrapper = fx.env.write(
        "expiring-chainfix",
        format!(
            "#!/usr/bin/env bash\nif [[ \" $* \" == *\" --check \"* ]]; then exec {bin:?} \"$@\"; fi\nexec {bin:?} \"${{@/#{AT}/{AT_EXPIRED}}}\"\n",
            bin = env!("CARGO_BIN_EXE_chainfix"),
        ),
    );
    fs::set_permissions(&wrapper, fs::Permissions::from_mode(0o755)).expect("chmod wrapper");
    let mut raced_args = fx.args("raced-out");
    raced_args["binary"] = json!(fx.p("expiring-chainfix"));

    let pb = fx.playbook(
        "broken",
        &[
            ("selfsigned", self_signed_args),
            ("expired", expired_args),
            ("missing", missing_args),
            ("raced", raced_args),
        ],
        true,
    );
    let out = fx.play(&pb, &[]);
    assert_eq!(
        out.status,
        0,
        "failures are ignored in this playbook\n{}",
        show(&out)
    );
    assert_eq!(
        recap(&out),
        Recap {
            ok: 8,
            changed: 0,
            failed: 0,
            ignored: 4
        },
        "{}",
        show(&out)
    );
    assert!(
        !handler_ran(&out),
        "a failed task notifies nothing, even when it changed files\n{}",
        show(&out)
    );
    for dir in ["selfsigned-out", "expired-out", "missing-out", "raced-out"] {
        assert!(!fx.env.path(dir).exists(), "{dir} must not be written");
    }

    // A self-signed leaf, no roots: chainfix writes nothing (exit 1).
    let r = fx.result("selfsigned");
    assert_eq!(r["failed"], json!(true), "{r:#}");
    assert_eq!(r["changed"], json!(false), "{r:#}");
    assert_eq!(r["status"], json!("broken"), "{r:#}");
    let msg = r["msg"].as_str().expect("msg");
    assert!(msg.starts_with("The certificate is self-signed"), "{r:#}");
    let finding = r["problems"]
        .as_array()
        .expect("problems")
        .iter()
        .find(|p| p["code"] == "self-signed-leaf")
        .unwrap_or_else(|| panic!("no self-signed-leaf finding: {r:#}"));
    assert_eq!(
        finding["message"],
        json!(msg),
        "msg is the finding's sentence"
    );
    assert!(
        out.stdout.contains(msg),
        "the sentence is printed\n{}",
        show(&out)
    );

    // An expired leaf: the chain is complete and chainfix would write it, but an error finding
    // remains, so the module fails before writing; the sentence is the expiry, not the
    // (repairable) missing intermediate.
    let r = fx.result("expired");
    assert_eq!(r["failed"], json!(true), "{r:#}");
    let msg = r["msg"].as_str().expect("msg");
    let expired = r["problems"]
        .as_array()
        .expect("problems")
        .iter()
        .find(|p| p["code"] == "expired")
        .unwrap_or_else(|| panic!("no expired finding: {r:#}"));
    assert_eq!(expired["message"], json!(msg), "{r:#}");
    assert!(msg.contains("expired"), "{r:#}");
    assert_eq!(r["changed"], json!(false), "{r:#}");
    assert!(r.get("files").is_none(), "nothing was written: {r:#}");

    // An operational failure (exit 2): the stderr line.
    let r = fx.result("missing");
    assert_eq!(r["failed"], json!(true), "{r:#}");
    assert_eq!(r["rc"], json!(2), "{r:#}");
    let msg = r["msg"].as_str().expect("msg");
    assert!(
        msg.contains("does-not-exist") && msg.contains("cannot read"),
        "{r:#}"
    );

    // The dry run passed; by the real run the leaf has expired, so chainfix refuses to write
    // a chain receivers reject and exits 1: the task fails with the expiry sentence and
    // changed nothing.
    let r = fx.result("raced");
    assert_eq!(r["failed"], json!(true), "{r:#}");
    assert_eq!(r["changed"], json!(false), "{r:#}");
    assert_eq!(r["rc"], json!(1), "{r:#}");
    assert!(r["msg"].as_str().expect("msg").contains("expired"), "{r:#}");
    assert!(!fx.env.path("raced-out/fullchain.pem").exists());
}

#[test]
#[cfg_attr(
    not(have_ansible),
    ignore = "needs ansible-playbook on PATH: pip install 'ansible-core==2.17.*'"
)]
fn ansible_doc_renders_the_module() {
    let fx = Fixture::new();
    let text = run(fx.ansible("ansible-doc").arg("chainfix.mail.chainfix"));
    assert_eq!(text.status, 0, "{}", show(&text));
    for word in [
        "chainfix.mail.chainfix",
        "src",
        "dest",
        "pfx_password",
        "install_dir",
        "no_default_roots",
        "extra_args",
        "private key",
        "EXAMPLES",
        "RETURN VALUES",
    ] {
        assert!(
            text.stdout.contains(word),
            "ansible-doc lacks {word}\n{}",
            show(&text)
        );
    }

    let json_doc = run(fx
        .ansible("ansible-doc")
        .args(["--json", "chainfix.mail.chainfix"]));
    assert_eq!(json_doc.status, 0, "{}", show(&json_doc));
    let doc = &json_doc.json()["chainfix.mail.chainfix"];
    let options = doc["doc"]["options"].as_object().expect("options");
    for option in [
        "src",
        "dest",
        "binary",
        "key",
        "emit",
        "install_dir",
        "include_root",
        "roots",
        "intermediates",
        "offline",
        "host",
        "warn_days",
        "pfx_password",
        "owner",
        "group",
        "mode",
        "backup",
        "no_default_roots",
        "extra_args",
        "mta",
        "config",
    ] {
        assert!(options.contains_key(option), "option {option} undocumented");
    }
    assert_eq!(
        options["mta"]["choices"],
        json!(["postfix", "exim", "dovecot"])
    );
    assert_eq!(
        options["emit"]["choices"],
        json!(["pem", "postfix", "exim", "iis", "dane", "all"])
    );
    // The deployed mode's handlers are shown, one reload command per server.
    let examples = doc["examples"].as_str().expect("examples");
    for handler in ["postfix reload", "systemctl reload exim4", "doveadm reload"] {
        assert!(examples.contains(handler), "EXAMPLES lack {handler}");
    }
    let returns = doc["return"].as_object().expect("return values");
    for value in [
        "changed",
        "chain",
        "problems",
        "files",
        "status",
        "backup_files",
        "diff",
        "slots",
        "mta",
    ] {
        assert!(
            returns.contains_key(value),
            "return value {value} undocumented"
        );
    }
    assert_eq!(
        doc["doc"]["attributes"]["check_mode"]["support"],
        json!("full")
    );
}

#[test]
#[cfg_attr(
    not(have_ansible),
    ignore = "needs ansible-playbook on PATH: pip install 'ansible-core==2.17.*'"
)]
fn example_playbook_passes_syntax_check() {
    let fx = Fixture::new();
    let example =
        repo_path("packaging/ansible/ansible_collections/chainfix/mail/examples/mail-servers.yml");
    let out = run(fx
        .ansible("ansible-playbook")
        .args(["-i", "localhost,", "--syntax-check"])
        .arg(&example));
    assert_eq!(out.status, 0, "{}", show(&out));
    let text = fs::read_to_string(&example).expect("example playbook");
    for needle in [
        "handlers:",
        "notify: Reload Postfix",
        "notify: Reload Exim",
        "chainfix.mail.chainfix:",
    ] {
        assert!(text.contains(needle), "the example lacks {needle}");
    }

    // The deployed mode's example: each server's task notifies the handler that reloads it.
    let example = repo_path(
        "packaging/ansible/ansible_collections/chainfix/mail/examples/deployed-servers.yml",
    );
    let out = run(fx
        .ansible("ansible-playbook")
        .args(["-i", "localhost,", "--syntax-check"])
        .arg(&example));
    assert_eq!(out.status, 0, "{}", show(&out));
    let text = fs::read_to_string(&example).expect("example playbook");
    for needle in [
        "mta: postfix",
        "mta: exim",
        "mta: dovecot",
        "notify: Reload Postfix",
        "ansible.builtin.command: postfix reload",
        "ansible.builtin.command: systemctl reload exim4",
        "ansible.builtin.command: doveadm reload",
    ] {
        assert!(text.contains(needle), "deployed-servers.yml lacks {needle}");
    }
}

// ---------------------------------------------------------------------------------------------
// Deployed mode: `mta:` repairs a real server's configuration in place
// ---------------------------------------------------------------------------------------------

/// A running Postfix serving the fixture's leaf alone (`smtpd_tls_chain_files = KEY, LEAF`, the
/// files in `server/`). Its idle smtpd processes exit after 5 s (`max_idle`), so one that
/// served the old chain before a reload does not linger for Postfix's default 100 s.
fn leaf_only_postfix(fx: &Fixture) -> Postfix {
    mta::share_dir(fx.env.dir.path());
    let tls = format!(
        "smtpd_tls_chain_files = {}, {}\n",
        fx.p("server/privkey.pem"),
        fx.p("server/cert.pem")
    );
    Postfix::start(&fx.env.path("pf"), &[("max_idle", "5s")], &tls)
}

/// The handler an admin writes for this instance: `postfix -c CONF reload`.
fn postfix_reload_handler(pf: &Postfix) -> Value {
    json!({
        "ansible.builtin.command": {"argv": [mta::POSTFIX_BIN, "-c", pf.conf, "reload"]},
        "changed_when": true,
    })
}

/// How many times the Postfix master has logged a reload (`reload -- version ...`).
fn postfix_reloads(pf: &Postfix) -> usize {
    pf.log().matches("reload -- version").count()
}

/// The certificates (whitespace-free base64) 127.0.0.1:`port` serves after STARTTLS of
/// `starttls` (`smtp`, `imap`), and whether `openssl s_client -verify_return_error` trusting
/// only the test root verified them.
fn served(fx: &Fixture, port: u16, starttls: &str) -> (Vec<String>, bool, String) {
    let out = dovecot::s_client(
        port,
        Some(starttls),
        &fx.env.path("root.pem"),
        &["-showcerts", "-verify_return_error"],
    );
    let ok = out.status == 0 && out.stdout.contains("Verify return code: 0 (ok)");
    (
        mta::pem_certificates(&out.stdout),
        ok,
        format!("{}\n{}", out.stdout, out.stderr),
    )
}

/// The base64 body of a PEM certificate without whitespace, as `pem_certificates` gives it.
fn pem_body(pem: &str) -> String {
    mta::pem_certificates(pem).concat()
}

/// Waits until three connections in a row to `port` serve the leaf and the intermediate and an
/// independent client verifies them; panics after 60 s (an smtpd process started before the
/// reload may answer until it has been idle for `max_idle`).
fn wait_until_full_chain_served(fx: &Fixture, port: u16, starttls: &str) {
    let want = vec![pem_body(&fx.chain.leaf.pem), pem_body(&fx.chain.int.pem)];
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut in_a_row = 0;
    while in_a_row < 3 {
        let (certs, verified, text) = served(fx, port, starttls);
        if verified && certs == want {
            in_a_row += 1;
            continue;
        }
        in_a_row = 0;
        assert!(
            Instant::now() < deadline,
            "port {port} does not serve the verified full chain 60 s after the handler ran:\n{text}"
        );
        thread::sleep(Duration::from_millis(250));
    }
}

#[test]
#[cfg_attr(
    any(not(have_ansible), not(have_postfix)),
    ignore = "needs ansible-playbook on PATH and Postfix (.ci/setup-mtas.sh, as root)"
)]
fn deployed_postfix_is_repaired_once_its_handler_reloads_it_and_a_second_run_changes_nothing() {
    let fx = Fixture::new();
    let pf = leaf_only_postfix(&fx);
    let main_cf = pf.conf.join("main.cf");
    let before = fs::read(&main_cf).expect("main.cf");
    let (certs, _, text) = served(&fx, pf.port, "smtp");
    assert_eq!(certs.len(), 1, "the leaf alone before the repair\n{text}");
    let pb = fx.playbook_with_handler(
        "deployed",
        &[(
            "deployed",
            fx.deployed_args("postfix", &pf.conf, "chainfix"),
        )],
        false,
        postfix_reload_handler(&pf),
    );

    // Check mode: would change, changes nothing; the diff is main.cf's, without key material.
    let check = fx.play(&pb, &["--check", "--diff"]);
    assert_eq!(check.status, 0, "{}", show(&check));
    assert_eq!(recap(&check).changed, 1, "{}", show(&check));
    let r = fx.result("deployed");
    assert_eq!(r["changed"], json!(true), "{r:#}");
    assert_eq!(r["status"], json!("repairable"), "{r:#}");
    assert_eq!(r["slots"][0]["action"], json!("would-repair"), "{r:#}");
    assert_eq!(
        fs::read(&main_cf).expect("main.cf"),
        before,
        "check mode edited main.cf"
    );
    assert!(
        !fx.env.path("chainfix").exists(),
        "check mode wrote into dest"
    );
    assert_eq!(postfix_reloads(&pf), 0, "check mode reloaded Postfix");
    let old_line = format!(
        "-smtpd_tls_chain_files = {}, {}",
        fx.p("server/privkey.pem"),
        fx.p("server/cert.pem")
    );
    let new_line = format!(
        "+smtpd_tls_chain_files = {}, {}/",
        fx.p("server/privkey.pem"),
        fx.p("chainfix")
    );
    for needle in [
        format!("--- {}", main_cf.display()),
        old_line.clone(),
        new_line.clone(),
    ] {
        assert!(
            check.stdout.contains(&needle),
            "no {needle:?}\n{}",
            show(&check)
        );
    }
    let printed = format!("{}\n{}\n{r}", check.stdout, check.stderr);
    assert!(!printed.contains("PRIVATE KEY"), "{printed}");
    for line in fx.key_lines() {
        assert!(!printed.contains(&line), "key material printed\n{printed}");
    }

    // The real run: main.cf names the chain in dest, and the handler reloads Postfix.
    let first = fx.play(&pb, &[]);
    assert_eq!(first.status, 0, "{}", show(&first));
    assert!(handler_ran(&first), "{}", show(&first));
    assert_eq!(
        recap(&first),
        Recap {
            ok: 3,
            changed: 2,
            failed: 0,
            ignored: 0
        },
        "the repair and the handler changed something\n{}",
        show(&first)
    );
    let r = fx.result("deployed");
    assert_eq!(r["changed"], json!(true), "{r:#}");
    assert_eq!(r["mta"], json!("postfix"), "{r:#}");
    let slot = &r["slots"][0];
    assert_eq!(slot["action"], json!("repaired"), "{r:#}");
    let written = slot["written"].as_str().expect("written").to_string();
    assert!(written.starts_with(&fx.p("chainfix/")), "{r:#}");
    assert_eq!(
        fs::read_to_string(&written).expect("written chain"),
        pem_bundle(&[&fx.chain.leaf, &fx.chain.int])
    );
    assert_eq!(
        pf.param("smtpd_tls_chain_files"),
        format!("{}, {written}", fx.p("server/privkey.pem"))
    );
    let (reloaded, log) = mta::poll_text(
        Duration::from_secs(20),
        || pf.log(),
        |l| l.matches("reload -- version").count() == 1,
    );
    assert!(
        reloaded,
        "the handler's reload is not in Postfix's log\n{}",
        mta::tail(&log, 30)
    );
    wait_until_full_chain_served(&fx, pf.port, "smtp");
    let after = fs::read(&main_cf).expect("main.cf");

    // Second run: nothing to change, no reload.
    let second = fx.play(&pb, &["--diff"]);
    assert_eq!(second.status, 0, "{}", show(&second));
    assert_eq!(recap(&second).changed, 0, "{}", show(&second));
    assert!(
        !handler_ran(&second),
        "nothing changed, no reload\n{}",
        show(&second)
    );
    assert!(
        !second.stdout.contains("+smtpd_tls_chain_files"),
        "{}",
        show(&second)
    );
    let r = fx.result("deployed");
    assert_eq!(r["changed"], json!(false), "{r:#}");
    assert_eq!(r["status"], json!("ok"), "{r:#}");
    assert_eq!(r["slots"][0]["action"], json!("none"), "{r:#}");
    assert_eq!(fs::read(&main_cf).expect("main.cf"), after);
    assert_eq!(postfix_reloads(&pf), 1, "{}", mta::tail(&pf.log(), 30));
    // Check mode agrees.
    let check = fx.play(&pb, &["--check"]);
    assert_eq!(recap(&check).changed, 0, "{}", show(&check));
}

#[test]
#[cfg_attr(
    any(not(have_ansible), not(have_postfix)),
    ignore = "needs ansible-playbook on PATH and Postfix (.ci/setup-mtas.sh, as root)"
)]
fn deployed_diff_shows_the_main_cf_change_but_never_the_key_chainfix_copies() {
    // The key in the leaf's own file: chainfix copies key and chain into dest (0600), and the
    // diff must show main.cf's change without ever showing that file. postconf and `postfix
    // check` read a configuration without a running Postfix.
    let fx = Fixture::new();
    mta::share_dir(fx.env.dir.path());
    let key_and_leaf = fx.env.write(
        "tls/key-and-leaf.pem",
        format!("{}{}", fx.chain.leaf.key_pem, fx.chain.leaf.pem),
    );
    let pf = Postfix::configure(
        &fx.env.path("pf"),
        &[],
        &format!("smtpd_tls_chain_files = {}\n", key_and_leaf.display()),
    );
    let pb = fx.playbook(
        "diff",
        &[("diff", fx.deployed_args("postfix", &pf.conf, "chainfix"))],
        false,
    );

    let out = fx.play(&pb, &["--diff"]);
    assert_eq!(out.status, 0, "{}", show(&out));
    assert_eq!(recap(&out).changed, 1, "{}", show(&out));
    assert!(handler_ran(&out), "{}", show(&out));
    let r = fx.result("diff");
    let written = r["slots"][0]["written"]
        .as_str()
        .unwrap_or_else(|| panic!("nothing written: {r:#}"))
        .to_string();
    assert!(
        written.starts_with(&fx.p("chainfix/")) && written.ends_with("/key-and-chain.pem"),
        "{r:#}"
    );
    assert_eq!(mode_of(Path::new(&written)), 0o600);
    assert_eq!(pf.param("smtpd_tls_chain_files"), written);
    for needle in [
        format!("-smtpd_tls_chain_files = {}", key_and_leaf.display()),
        format!("+smtpd_tls_chain_files = {written}"),
    ] {
        assert!(
            out.stdout.contains(&needle),
            "no {needle:?}\n{}",
            show(&out)
        );
    }
    let diffs = r["diff"]
        .as_array()
        .unwrap_or_else(|| panic!("no diff: {r:#}"));
    assert_eq!(diffs.len(), 1, "main.cf only: {r:#}");
    let printed = format!("{}\n{}\n{r}", out.stdout, out.stderr);
    assert!(!printed.contains("PRIVATE KEY"), "{printed}");
    for line in fx.key_lines() {
        assert!(
            !printed.contains(&line),
            "key material printed: {line}\n{printed}"
        );
    }
    // What chainfix copied does hold the key, first, as postconf(5) requires.
    let copied = fs::read_to_string(&written).expect("key-and-chain.pem");
    assert!(
        copied.starts_with(&fx.chain.leaf.key_pem),
        "the key comes first"
    );

    let again = fx.play(&pb, &["--diff"]);
    assert_eq!(again.status, 0, "{}", show(&again));
    assert_eq!(recap(&again).changed, 0, "{}", show(&again));
    assert!(
        !again.stdout.contains("smtpd_tls_chain_files ="),
        "{}",
        show(&again)
    );
}

#[test]
#[cfg_attr(
    any(not(have_ansible), not(have_postfix)),
    ignore = "needs ansible-playbook on PATH and Postfix (.ci/setup-mtas.sh, as root)"
)]
fn deployed_mode_failures_change_nothing_and_notify_nothing() {
    let fx = Fixture::new();
    mta::share_dir(fx.env.dir.path());
    // The key of another certificate beside the leaf: the slot cannot be repaired.
    let other = issue(
        &Spec::leaf("mail.example.test", Alg::Rsa2048(2)).serial(78),
        &fx.chain.int,
    );
    let wrong_key = fx.env.write("tls/other-key.pem", &other.key_pem);
    let pf = Postfix::configure(
        &fx.env.path("pf"),
        &[],
        &format!(
            "smtpd_tls_chain_files = {}, {}\n",
            wrong_key.display(),
            fx.p("server/cert.pem")
        ),
    );
    let main_cf = pf.conf.join("main.cf");
    let before = fs::read(&main_cf).expect("main.cf");

    let args = fx.deployed_args("postfix", &pf.conf, "chainfix");
    let mut with_src = args.clone();
    with_src["src"] = json!([fx.p("server")]);
    let mut with_emit = args.clone();
    with_emit["emit"] = json!(["postfix"]);
    let mut with_reload = args.clone();
    with_reload["extra_args"] = json!(["--at", AT, "--reload"]);
    let mut no_config = args.clone();
    no_config["config"] = json!(fx.p("no-such-dir"));
    let pb = fx.playbook(
        "failures",
        &[
            ("mismatch", args),
            ("with_src", with_src),
            ("with_emit", with_emit),
            ("with_reload", with_reload),
            ("no_config", no_config),
        ],
        true,
    );
    let out = fx.play(&pb, &[]);
    assert_eq!(out.status, 0, "failures are ignored\n{}", show(&out));
    let rc = recap(&out);
    assert_eq!(
        (rc.failed, rc.ignored, rc.changed),
        (0, 5, 0),
        "{}",
        show(&out)
    );
    assert!(!handler_ran(&out), "{}", show(&out));
    assert_eq!(fs::read(&main_cf).expect("main.cf"), before);
    assert!(!fx.env.path("chainfix").exists());

    // The dry run said the slot cannot be repaired (exit 1): the task fails before any change.
    let r = fx.result("mismatch");
    assert_eq!(
        (&r["failed"], &r["changed"], &r["rc"]),
        (&json!(true), &json!(false), &json!(1)),
        "{r:#}"
    );
    let msg = r["msg"].as_str().expect("msg");
    assert!(
        msg.contains("main.cf: smtpd_tls_chain_files")
            && msg.contains("not repaired")
            && msg.contains("no private key that matches the leaf"),
        "{r:#}"
    );
    assert_eq!(r["slots"][0]["action"], json!("cannot"), "{r:#}");

    let msg = |name: &str| fx.result(name)["msg"].as_str().expect("msg").to_string();
    assert!(
        msg("with_src").contains("mutually exclusive: src|mta"),
        "{}",
        msg("with_src")
    );
    assert!(
        msg("with_emit").starts_with("emit does not apply with mta"),
        "{}",
        msg("with_emit")
    );
    assert!(
        msg("with_reload").contains("the module never reloads"),
        "{}",
        msg("with_reload")
    );
    let r = fx.result("no_config");
    assert_eq!(r["rc"], json!(2), "{r:#}");
    assert!(msg("no_config").contains("no-such-dir"), "{r:#}");
}

/// A running Exim (hand-written configuration) serving the fixture's leaf alone, its
/// `remote_smtp` transport presenting the same leaf-only file.
fn leaf_only_exim(fx: &Fixture) -> mta::Exim {
    mta::share_dir(fx.env.dir.path());
    mta::share_dir(&fx.env.path("server"));
    let (key, leaf) = (
        fx.env.path("server/privkey.pem"),
        fx.env.path("server/cert.pem"),
    );
    mta::Exim::start(
        &fx.env.path("ex"),
        &mta::EximConfig {
            main: mta::exim_tls_files(&key, &leaf),
            rcpt_acl: String::new(),
            relay_to: None,
            transport: format!(
                "  tls_certificate = {}\n  tls_privatekey = {}\n",
                leaf.display(),
                key.display()
            ),
        },
    )
}

/// A deployed server for [`deployed_round_trip`]: its `mta:` and `config:`, the file the
/// repair edits, the module's `extra_args`, the playbook's handler, the server's log and the
/// line it logs for each reload, the lines check mode's diff must show, and where and how it
/// serves TLS.
struct DeployedServer<'a> {
    mta: &'a str,
    config: &'a Path,
    edited: PathBuf,
    extra_args: Value,
    handler: Value,
    log: &'a dyn Fn() -> String,
    reload_line: &'a str,
    diff: Vec<String>,
    port: u16,
    starttls: &'a str,
}

/// Check mode reports a change, shows `diff` without key material and changes nothing; the
/// first run changes the file and notifies the handler, which reloads the server once, after
/// which an independent client gets the verified full chain; the second run changes nothing
/// and notifies nothing.
fn deployed_round_trip(fx: &Fixture, server: &DeployedServer<'_>) {
    let reloads = || (server.log)().matches(server.reload_line).count();
    let before = fs::read(&server.edited).expect("the edited file");
    let (certs, _, text) = served(fx, server.port, server.starttls);
    assert_eq!(certs.len(), 1, "the leaf alone before the repair\n{text}");
    let mut args = fx.deployed_args(server.mta, server.config, "chainfix");
    args["extra_args"] = server.extra_args.clone();
    let pb = fx.playbook_with_handler(
        server.mta,
        &[(server.mta, args)],
        false,
        server.handler.clone(),
    );

    let check = fx.play(&pb, &["--check", "--diff"]);
    assert_eq!(check.status, 0, "{}", show(&check));
    assert_eq!(fx.result(server.mta)["changed"], json!(true));
    assert_eq!(
        fs::read(&server.edited).expect("the edited file"),
        before,
        "check mode edited it"
    );
    assert!(
        !fx.env.path("chainfix").exists(),
        "check mode wrote into dest"
    );
    assert_eq!(reloads(), 0);
    for needle in &server.diff {
        assert!(
            check.stdout.contains(needle),
            "no {needle:?}\n{}",
            show(&check)
        );
    }
    let printed = format!("{}\n{}", check.stdout, check.stderr);
    assert!(!printed.contains("PRIVATE KEY"), "{printed}");

    let first = fx.play(&pb, &[]);
    assert_eq!(first.status, 0, "{}", show(&first));
    assert!(handler_ran(&first), "{}", show(&first));
    assert_eq!(recap(&first).changed, 2, "{}", show(&first));
    assert_eq!(fx.result(server.mta)["changed"], json!(true));
    let (reloaded, log) = mta::poll_text(
        Duration::from_secs(20),
        || (server.log)(),
        |l| l.matches(server.reload_line).count() == 1,
    );
    assert!(
        reloaded,
        "no {:?} in the server's log\n{}",
        server.reload_line,
        mta::tail(&log, 30)
    );
    wait_until_full_chain_served(fx, server.port, server.starttls);
    let after = fs::read(&server.edited).expect("the edited file");

    let second = fx.play(&pb, &[]);
    assert_eq!(second.status, 0, "{}", show(&second));
    assert_eq!(recap(&second).changed, 0, "{}", show(&second));
    assert!(!handler_ran(&second), "{}", show(&second));
    assert_eq!(fx.result(server.mta)["changed"], json!(false));
    assert_eq!(fs::read(&server.edited).expect("the edited file"), after);
    assert_eq!(reloads(), 1);
}

#[test]
#[cfg_attr(
    any(not(have_ansible), not(have_exim)),
    ignore = "needs ansible-playbook on PATH and Exim (.ci/setup-mtas.sh, as root)"
)]
fn deployed_exim_is_repaired_once_its_handler_signals_it_and_a_second_run_changes_nothing() {
    let fx = Fixture::new();
    let ex = leaf_only_exim(&fx);
    // Without systemd: SIGHUP makes the daemon re-execute itself and read its configuration
    // anew (what `systemctl reload exim4` does on Debian).
    let pid = fs::read_to_string(ex.base.join("exim.pid")).expect("exim.pid");
    deployed_round_trip(
        &fx,
        &DeployedServer {
            mta: "exim",
            config: &ex.conf,
            edited: ex.conf.clone(),
            extra_args: json!(["--at", AT, "--exim-bin", mta::EXIM_BIN]),
            handler: json!({
                "ansible.builtin.command": {"argv": ["kill", "-HUP", pid.trim()]},
                "changed_when": true,
            }),
            log: &|| ex.mainlog(),
            reload_line: "SIGHUP received",
            // Both option lines, the main section's and the transport's, in one diff.
            diff: vec![
                format!("-tls_certificate = {}", fx.p("server/cert.pem")),
                format!("-  tls_certificate = {}", fx.p("server/cert.pem")),
                format!("+tls_certificate = {}/", fx.p("chainfix")),
                format!("+  tls_certificate = {}/", fx.p("chainfix")),
            ],
            port: ex.port,
            starttls: "smtp",
        },
    );
    let main = ex.exim(&["-bP", "tls_certificate"]).stdout;
    assert!(main.contains(&fx.p("chainfix/")), "{main}");
}

/// A running Dovecot 2.3 serving the fixture's leaf alone, named in an included file as
/// Debian's `conf.d/10-ssl.conf` does.
fn leaf_only_dovecot(fx: &Fixture) -> Dovecot {
    mta::share_dir(fx.env.dir.path());
    let tls = format!(
        "ssl_cert = <{}\nssl_key = <{}\n",
        fx.p("server/cert.pem"),
        fx.p("server/privkey.pem")
    );
    Dovecot::start(&fx.env.path("dv"), &tls, Some("conf.d/10-ssl.conf"))
}

#[test]
#[cfg_attr(
    any(not(have_ansible), not(have_dovecot)),
    ignore = "needs ansible-playbook on PATH and Dovecot (.ci/setup-mtas.sh, as root)"
)]
fn deployed_dovecot_is_repaired_once_its_handler_reloads_it_and_a_second_run_changes_nothing() {
    let fx = Fixture::new();
    let d = leaf_only_dovecot(&fx);
    deployed_round_trip(
        &fx,
        &DeployedServer {
            mta: "dovecot",
            config: &d.conf,
            // The one line, in the included file that sets it.
            edited: fx.env.path("dv/conf.d/10-ssl.conf"),
            extra_args: json!(["--at", AT, "--doveconf-bin", dovecot::DOVECONF_BIN]),
            handler: json!({
                "ansible.builtin.command": {
                    "argv": [dovecot::DOVEADM_BIN, "-c", d.conf, "reload"],
                },
                "changed_when": true,
            }),
            log: &|| d.log(),
            reload_line: "SIGHUP received",
            diff: vec![
                format!("-ssl_cert = <{}", fx.p("server/cert.pem")),
                format!("+ssl_cert = <{}/", fx.p("chainfix")),
            ],
            port: d.imap,
            starttls: "imap",
        },
    );
    let now = d.doveconf(&["-h", "ssl_cert"]).stdout;
    assert!(now.contains(&fx.p("chainfix/")), "{now}");
}
