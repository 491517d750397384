//! Honest outcomes of `repair`: a run that could not write what it meant to write never reads
//! as a success (exit status, stdout, JSON, README.txt and the files on disk all agree).

mod common;

use std::path::Path;

use common::*;
use serde_json::Value;

/// Evaluation time inside the validity of every generated certificate.
const AT: &str = "2026-06-01T00:00:00Z";

/// `root.pem`, `server/cert.pem` (the leaf alone) and `server/privkey.pem` (its key, unless
/// `with_key` is false), `pool/int.pem` (the intermediate).
fn leaf_without_intermediate(with_key: bool) -> (TestEnv, Chain) {
    let chain = Chain::new(&[]);
    let env = TestEnv::new();
    env.write("root.pem", &chain.root.pem);
    env.write("server/cert.pem", &chain.leaf.pem);
    if with_key {
        env.write("server/privkey.pem", &chain.leaf.key_pem);
    }
    env.write("pool/int.pem", &chain.int.pem);
    (env, chain)
}

/// `chainfix repair server --out OUT` against the test PKI, offline, with `extra`.
fn repair(env: &TestEnv, out: &str, extra: &[&str]) -> Output {
    run(env
        .cmd()
        .args(["repair", "server", "--out", out, "--at", AT])
        .args(["--offline", "--no-default-roots", "--roots", "root.pem"])
        .args(["--intermediates", "pool"])
        .args(extra))
}

/// Every file below `dir`, relative, sorted.
fn listing(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let rel = p.strip_prefix(dir).expect("below dir");
                out.push(rel.to_string_lossy().into_owned());
            }
        }
    }
    out.sort();
    out
}

// ---------------------------------------------------------------------------------------------
// 1. A run that could not write
// ---------------------------------------------------------------------------------------------

#[test]
fn out_naming_an_existing_file_fails_and_says_not_a_directory() {
    let (env, _) = leaf_without_intermediate(true);
    env.write("outfile", b"an admin's file\n");

    let human = repair(&env, "outfile", &[]);
    human.assert_status(2);
    assert!(
        !human.stdout.contains("no error remains") && !human.stdout.contains("nothing changed"),
        "a run that wrote nothing reads as a success:\n{}",
        human.stdout
    );
    assert!(
        human.stdout.contains("INCOMPLETE") && human.stdout.contains("do not deploy"),
        "{}",
        human.stdout
    );
    assert!(
        human
            .stdout
            .contains("outfile/fullchain.pem: outfile is not a directory"),
        "the failing path and the real reason: {}",
        human.stdout
    );
    assert!(!human.stderr.contains("os error 17"), "{}", human.stderr);
    assert_eq!(
        env.read("outfile"),
        b"an admin's file\n",
        "the file is untouched"
    );

    let json = repair(&env, "outfile", &["--json"]);
    json.assert_status(2);
    let doc = json.json();
    let result = &doc["results"][0];
    let failures = result["write_errors"].as_array().expect("write_errors");
    assert!(
        failures.iter().any(|f| f["path"] == "outfile/fullchain.pem"
            && f["message"] == "cannot write: outfile is not a directory"
            && f["fatal"] == true),
        "{failures:#?}"
    );
    assert!(
        failures.iter().any(|f| f["path"] == "outfile/README.txt"),
        "{failures:#?}"
    );
    assert_eq!(result["files"], Value::Array(Vec::new()), "{result:#}");
    assert_eq!(result["changed"], false);
    let errors = doc["errors"].as_array().expect("errors");
    assert!(
        errors
            .iter()
            .any(|e| e["path"] == "outfile/fullchain.pem" && e["fatal"] == true),
        "{errors:#?}"
    );
}

#[test]
fn a_target_directory_that_is_a_file_is_reported_and_left_out_of_readme() {
    let (env, _) = leaf_without_intermediate(true);
    env.write("out/iis", b"not a directory\n");

    let out = repair(&env, "out", &["--json"]);
    out.assert_status(2);
    let doc = out.json();
    let result = &doc["results"][0];
    let failed: Vec<&str> = result["write_errors"]
        .as_array()
        .expect("write_errors")
        .iter()
        .map(|f| f["path"].as_str().expect("path"))
        .collect();
    assert!(
        failed.contains(&"out/iis/leaf.cer") && failed.iter().all(|p| p.starts_with("out/iis/")),
        "{failed:?}"
    );
    for f in result["write_errors"].as_array().expect("write_errors") {
        assert_eq!(f["message"], "cannot write: out/iis is not a directory");
    }
    // What was written is on disk, README.txt lists exactly that, and names what is missing.
    let on_disk = listing(&env.path("out"));
    assert!(
        on_disk.contains(&"fullchain.pem".to_string()),
        "{on_disk:?}"
    );
    let readme = String::from_utf8(env.read("out/README.txt")).expect("utf-8");
    let (listed, missing) = readme
        .split_once("NOT written")
        .expect("README.txt names the files that were not written");
    let files_section = listed.split_once("Files written").expect("files section").1;
    for line in files_section.lines().skip(1) {
        let Some(rel) = line.split_whitespace().next() else {
            continue;
        };
        assert!(
            env.path("out").join(rel).is_file(),
            "README.txt lists {rel}, which does not exist:\n{readme}"
        );
    }
    assert!(!files_section.contains("iis/leaf.cer"), "{readme}");
    assert!(missing.contains("iis/leaf.cer"), "{readme}");

    let human = repair(&env, "out", &[]);
    human.assert_status(2);
    assert!(
        !human.stdout.contains("no error remains"),
        "{}",
        human.stdout
    );
    assert!(
        !human.stdout.contains("nothing changed"),
        "{}",
        human.stdout
    );
    assert!(
        human
            .stdout
            .contains("out/iis/leaf.cer: out/iis is not a directory"),
        "{}",
        human.stdout
    );
}

// ---------------------------------------------------------------------------------------------
// 2. No key
// ---------------------------------------------------------------------------------------------

/// The value of every setting line (not a comment) of the snippets under `out` that names a
/// key: Postfix `*_chain_files`/`*_key_file`, Exim `*privatekey*` options and macros.
fn key_settings(out: &Path) -> Vec<(String, String)> {
    let mut found = Vec::new();
    for rel in listing(out) {
        if !(rel.ends_with(".cf") || rel.ends_with(".conf")) {
            continue;
        }
        let text = std::fs::read_to_string(out.join(&rel)).expect("snippet is text");
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let Some((name, value)) = line.split_once('=') else {
                continue;
            };
            let name = name.trim().to_ascii_lowercase();
            if name.contains("privatekey") || name.contains("key_file") {
                found.push((rel.clone(), value.trim().to_string()));
            } else if name.ends_with("chain_files") {
                let first = value.split(',').next().unwrap_or_default().trim();
                found.push((rel.clone(), first.to_string()));
            }
        }
    }
    found
}

#[test]
fn without_a_key_the_chain_is_written_and_no_snippet_names_a_missing_key() {
    let (env, _) = leaf_without_intermediate(false);
    let out = repair(&env, "out", &["--json"]);
    out.assert_status(0);
    let doc = out.json();
    let result = &doc["results"][0];
    let finding = result["problems"]
        .as_array()
        .expect("problems")
        .iter()
        .find(|p| p["code"] == "key-not-found")
        .unwrap_or_else(|| panic!("no key-not-found finding: {result:#}"));
    assert_eq!(finding["severity"], "warning");
    let message = finding["message"].as_str().expect("message");
    assert!(
        message.contains("--key FILE") && message.contains("--key-path PATH"),
        "{message}"
    );
    assert!(message.contains("postfix/main.cf"), "{message}");

    let on_disk = listing(&env.path("out"));
    for rel in [
        "fullchain.pem",
        "chain.pem",
        "cert.pem",
        "iis/leaf.cer",
        "README.txt",
    ] {
        assert!(
            on_disk.contains(&rel.to_string()),
            "{rel} missing: {on_disk:?}"
        );
    }
    for rel in [
        "privkey.pem",
        "postfix/main.cf",
        "exim/main.conf",
        "exim/privkey.pem",
    ] {
        assert!(
            !on_disk.contains(&rel.to_string()),
            "{rel} written: {on_disk:?}"
        );
    }
    assert!(
        key_settings(&env.path("out")).is_empty(),
        "a snippet names a key: {:?}",
        key_settings(&env.path("out"))
    );
    let readme = String::from_utf8(env.read("out/README.txt")).expect("utf-8");
    assert!(readme.contains("[key-not-found]"), "{readme}");
    assert!(
        !readme.contains("Merge postfix/main.cf"),
        "README.txt tells to deploy a file that was not written:\n{readme}"
    );

    let human = repair(&env, "human", &[]);
    human.assert_status(0);
    assert!(
        human.stdout.contains("warning key-not-found"),
        "{}",
        human.stdout
    );
}

#[test]
fn key_path_makes_a_chain_only_repair_whose_snippets_name_that_path() {
    let (env, _) = leaf_without_intermediate(true);
    let key = "/etc/ssl/private/mail.example.test.key";
    let out = repair(&env, "out", &["--json", "--key-path", key]);
    out.assert_status(0);
    let doc = out.json();
    let result = &doc["results"][0];
    assert!(
        result["problems"]
            .as_array()
            .expect("problems")
            .iter()
            .all(|p| p["code"] != "key-not-found"),
        "{result:#}"
    );
    assert!(
        result["files"]
            .as_array()
            .expect("files")
            .iter()
            .all(|f| f["secret"] == false),
        "a key file was written with --key-path: {result:#}"
    );
    let on_disk = listing(&env.path("out"));
    assert!(
        on_disk.contains(&"postfix/main.cf".to_string()),
        "{on_disk:?}"
    );
    assert!(on_disk.contains(&"exim/debian-macros.conf".to_string()));
    assert!(
        !on_disk.iter().any(|f| f.ends_with("privkey.pem")),
        "{on_disk:?}"
    );
    let settings = key_settings(&env.path("out"));
    assert!(settings.len() >= 6, "{settings:?}");
    for (rel, value) in &settings {
        assert_eq!(value, key, "{rel} names another key");
    }

    // With the key known and written, every key a snippet names exists in the output.
    let out = repair(&env, "with-key", &["--json"]);
    out.assert_status(0);
    let settings = key_settings(&env.path("with-key"));
    assert!(settings.len() >= 6, "{settings:?}");
    for (rel, value) in &settings {
        assert!(
            Path::new(value).is_file(),
            "{rel} names {value}, which does not exist"
        );
    }

    let relative = repair(&env, "rel", &["--key-path", "mail.key"]);
    relative.assert_status(2);
    assert!(relative.stderr.contains("absolute"), "{}", relative.stderr);
}

// ---------------------------------------------------------------------------------------------
// 3. Files an earlier run left
// ---------------------------------------------------------------------------------------------

fn stale_of(doc: &Value) -> Vec<(String, String, String)> {
    doc["results"][0]["stale_files"]
        .as_array()
        .expect("stale_files")
        .iter()
        .map(|f| {
            (
                f["path"].as_str().expect("path").to_string(),
                f["action"].as_str().expect("action").to_string(),
                f["reason"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

#[test]
fn files_an_earlier_run_wrote_are_reported_and_pruned_only_when_asked() {
    let (env, _) = leaf_without_intermediate(true);
    repair(&env, "out", &[]).assert_status(0);
    let manifest: Value =
        serde_json::from_slice(&env.read("out/.chainfix-manifest.json")).expect("manifest");
    let listed: Vec<&str> = manifest["files"]
        .as_array()
        .expect("files")
        .iter()
        .map(|f| f["path"].as_str().expect("path"))
        .collect();
    assert!(listed.contains(&"iis/leaf.cer") && listed.contains(&"README.txt"));
    env.write("out/iis/notes.txt", b"the admin's own file\n");
    env.write("out/exim/main.conf", b"# edited by the admin\n");

    // A narrower --emit: everything else is reported, nothing removed.
    let narrow = repair(&env, "out", &["--emit", "pem", "--json"]);
    narrow.assert_status(0);
    let stale = stale_of(&narrow.json());
    let fate = |rel: &str| {
        stale
            .iter()
            .find(|(p, _, _)| p == &format!("out/{rel}"))
            .map(|(_, a, r)| (a.clone(), r.clone()))
    };
    assert_eq!(
        fate("iis/leaf.cer"),
        Some(("kept".into(), "no-prune".into()))
    );
    assert_eq!(
        fate("exim/main.conf"),
        Some(("kept".into(), "modified".into()))
    );
    assert_eq!(
        fate("exim/privkey.pem"),
        Some(("kept".into(), "current-key".into()))
    );
    assert_eq!(fate("iis/notes.txt"), None, "not chainfix's: {stale:?}");
    assert!(env.path("out/iis/leaf.cer").is_file());
    let readme = String::from_utf8(env.read("out/README.txt")).expect("utf-8");
    assert!(
        readme.contains("NOT part of this repair") && readme.contains("iis/leaf.cer"),
        "{readme}"
    );
    let human = repair(&env, "out", &["--emit", "pem"]);
    human.assert_status(0);
    assert!(
        human.stdout.contains("left by an earlier run")
            && human
                .stdout
                .contains("out/iis/leaf.cer  (kept: do not deploy it; --prune removes it)"),
        "{}",
        human.stdout
    );

    // --check --prune says what would go and removes nothing.
    let check = repair(
        &env,
        "out",
        &["--emit", "pem", "--prune", "--check", "--json"],
    );
    check.assert_status(0);
    assert!(stale_of(&check.json()).contains(&(
        "out/iis/leaf.cer".into(),
        "removed".into(),
        String::new()
    )));
    assert!(env.path("out/iis/leaf.cer").is_file());

    // --prune removes chainfix's unedited files only; the key of this leaf stays.
    let prune = repair(&env, "out", &["--emit", "pem", "--prune", "--json"]);
    prune.assert_status(0);
    let doc = prune.json();
    assert_eq!(doc["results"][0]["changed"], true);
    let stale = stale_of(&doc);
    assert!(stale.contains(&("out/iis/leaf.cer".into(), "removed".into(), String::new())));
    assert!(!env.path("out/iis/leaf.cer").exists());
    assert!(!env.path("out/postfix/main.cf").exists());
    assert!(
        env.path("out/exim/privkey.pem").is_file(),
        "the current key was removed"
    );
    assert_eq!(env.read("out/exim/main.conf"), b"# edited by the admin\n");
    assert_eq!(env.read("out/iis/notes.txt"), b"the admin's own file\n");
    let manifest: Value =
        serde_json::from_slice(&env.read("out/.chainfix-manifest.json")).expect("manifest");
    let listed: Vec<&str> = manifest["files"]
        .as_array()
        .expect("files")
        .iter()
        .map(|f| f["path"].as_str().expect("path"))
        .collect();
    assert!(
        !listed.contains(&"exim/main.conf"),
        "an edited file is not chainfix's: {listed:?}"
    );
    assert!(!listed.contains(&"iis/leaf.cer"), "{listed:?}");
}

#[test]
fn after_a_renewal_prune_with_backup_moves_the_old_intermediate_aside() {
    let old = Chain::new(&[]);
    let root = old.root.clone();
    let int_b = issue(
        &Spec::ca("Chainfix Second Intermediate CA", Alg::Rsa2048(2)).serial(7),
        &root,
    );
    let new_leaf = issue(
        &Spec::leaf("mail.example.test", Alg::P256(1)).serial(8),
        &int_b,
    );
    let env = TestEnv::new();
    env.write("root.pem", &root.pem);
    env.write("server/cert.pem", pem_bundle(&[&old.leaf, &old.int]));
    env.write("server/privkey.pem", &old.leaf.key_pem);
    env.write("pool/int.pem", &old.int.pem);
    repair(&env, "out", &[]).assert_status(0);
    let old_int = "iis/intermediate-1-Chainfix_Test_Intermediate_CA.cer";
    assert!(env.path("out").join(old_int).is_file());

    env.write("server/cert.pem", pem_bundle(&[&new_leaf, &int_b]));
    env.write("server/privkey.pem", &new_leaf.key_pem);
    let out = repair(&env, "out", &["--prune", "--backup", "--json"]);
    out.assert_status(0);
    let doc = out.json();
    let entry = doc["results"][0]["stale_files"]
        .as_array()
        .expect("stale_files")
        .iter()
        .find(|f| f["path"] == format!("out/{old_int}"))
        .unwrap_or_else(|| panic!("old intermediate not reported: {doc:#}"))
        .clone();
    assert_eq!(entry["action"], "moved");
    let backup = entry["backup"].as_str().expect("backup");
    assert_eq!(
        std::fs::read(env.path(backup)).expect("backup"),
        old.int.der
    );
    assert!(!env.path("out").join(old_int).exists());
}
