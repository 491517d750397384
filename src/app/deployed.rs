//! `inspect --postfix` / `--exim` / `--dovecot`: discover what the deployed server loads
//! ([`crate::deployed`]), then judge each slot on its own, as a group of its own files, so
//! that what one listener loads never hides what another does (certbot's `cert.pem` in one
//! slot is a leaf alone even when `fullchain.pem` sits beside it).

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::sync::Arc;

use super::{analyse, finish_output, AppError, Config, Passwords};
use crate::cli::DeployedArgs;
use crate::deployed::{self, certbot, command, Deployment, Slot};
use crate::diagnose::{Code, Status};
use crate::exit::Exit;
use crate::load::{self, FileProblem};
use crate::report::{self, LeafResult};

/// Which deployed server to read, validated from the command line.
pub enum Source {
    Postfix {
        postconf: PathBuf,
        dir: Option<PathBuf>,
    },
    Exim {
        exim: PathBuf,
        config: Option<PathBuf>,
    },
    Dovecot {
        doveconf: PathBuf,
        config: Option<PathBuf>,
    },
}

impl Source {
    /// `None` when none of `--postfix`, `--exim`, `--dovecot` was given.
    pub fn from_args(a: &DeployedArgs) -> Option<Source> {
        if let Some(config) = &a.dovecot {
            return Some(Source::Dovecot {
                doveconf: a
                    .doveconf_bin
                    .clone()
                    .unwrap_or_else(|| command::find_program(&["/usr/bin/doveconf", "doveconf"])),
                // doveadm reload and the edits resolve includes from it: made absolute.
                config: config.as_ref().map(|c| {
                    std::env::current_dir()
                        .map(|d| d.join(c))
                        .unwrap_or_else(|_| c.clone())
                }),
            });
        }
        if let Some(dir) = &a.postfix {
            return Some(Source::Postfix {
                postconf: a
                    .postconf_bin
                    .clone()
                    .unwrap_or_else(|| command::find_program(&["/usr/sbin/postconf", "postconf"])),
                dir: dir.clone(),
            });
        }
        a.exim.as_ref().map(|config| Source::Exim {
            exim: a.exim_bin.clone().unwrap_or_else(|| {
                command::find_program(&["/usr/sbin/exim4", "/usr/sbin/exim", "exim"])
            }),
            config: config.clone(),
        })
    }

    pub fn discover(&self) -> Result<Deployment, AppError> {
        let found = match self {
            Source::Postfix { postconf, dir } => {
                deployed::postfix::discover(postconf, dir.as_deref())
            }
            Source::Exim { exim, config } => deployed::exim::discover(exim, config.as_deref()),
            Source::Dovecot { doveconf, config } => {
                deployed::dovecot::discover(doveconf, config.as_deref())
            }
        };
        found.map_err(|e| AppError(format!("reading the mail server's configuration: {e}")))
    }
}

/// One slot judged: its report entries and what else is known about its files.
pub struct SlotReport {
    pub slot: Slot,
    pub results: Vec<LeafResult>,
    /// Problems reading the slot's files (missing, unreadable, no certificate).
    pub problems: Vec<FileProblem>,
    /// Advice tied to the files' owner (certbot keeps a full chain beside `cert.pem`).
    pub advice: Vec<String>,
    pub status: Status,
    /// For a slot that is not fine: what a repair works from, or why it cannot.
    pub fix: Option<Result<FixFacts, String>>,
}

/// What repairing a slot needs to know, gathered while its analysis is at hand.
pub struct FixFacts {
    /// Leaf and intermediates, as the server must send them (PEM).
    pub chain_pem: String,
    /// SHA-256 of each certificate of `chain_pem`, in order.
    pub chain_sha256: Vec<[u8; 32]>,
    /// The matching private key (PEM): written only into a 0600 file, never printed.
    pub key_pem: String,
    /// The file the leaf was read from.
    pub leaf_file: PathBuf,
    /// The file the matching key was read from.
    pub key_file: PathBuf,
    /// The slot's files that hold a private key.
    pub key_files: Vec<PathBuf>,
    /// The full-chain file a renewal tool keeps that holds exactly `chain_pem`'s certificates.
    pub owner_full_chain: Option<PathBuf>,
}

/// Judges every slot of `deployment`.
pub fn judge(config: &Config, deployment: &Deployment) -> Vec<SlotReport> {
    let passwords = Passwords {
        configured: config.password.clone(),
        interactive: std::io::stdin().is_terminal() && std::io::stderr().is_terminal(),
        prompting: std::sync::Mutex::new(()),
    };
    deployment
        .slots
        .iter()
        .map(|slot| {
            let mut judged = judge_slot(config, slot, &passwords);
            if let Some(user) = &deployment.reads_as {
                judged.problems.extend(unreadable_by(user, slot));
                if judged.problems.iter().any(|p| p.fatal) {
                    judged.status = Status::Broken;
                }
            }
            judged
        })
        .collect()
}

/// The slot's files that `user` (the server's own user) cannot read, as problems; a check
/// that cannot be made is a note.
fn unreadable_by(user: &str, slot: &Slot) -> Vec<FileProblem> {
    use crate::deployed::access::{readable_by, Access};
    let mut out = Vec::new();
    for file in slot.files.iter().chain(slot.key.iter()) {
        match readable_by(user, file) {
            Access::Readable => {}
            Access::NotReadable => out.push(FileProblem {
                path: file.clone(),
                message: format!(
                    "the server's user {user} cannot read it: the server reads its TLS files \
                     as {user} when a client starts TLS, so every STARTTLS fails (give the \
                     file group {user}'s group and mode 0640, and let {user} through every \
                     directory above it)"
                ),
                fatal: true,
            }),
            Access::Unknown(why) => {
                out.push(FileProblem {
                    path: file.clone(),
                    message: format!("whether {user} can read it was not checked: {why}"),
                    fatal: false,
                });
                break;
            }
        }
    }
    out
}

fn judge_slot(config: &Config, slot: &Slot, passwords: &Passwords) -> SlotReport {
    let mut group = load::load_paths(&slot.files, passwords);
    // Where each certificate was read from, before the paths are made one below.
    let origin: Vec<([u8; 32], PathBuf)> = group
        .certs
        .iter()
        .map(|c| (c.cert.sha256, c.path.to_path_buf()))
        .collect();
    let key_files: Vec<PathBuf> = group.keys.iter().map(|k| k.path.clone()).collect();
    // The server sends the certificates of all its chain files in order, as one chain
    // (postconf(5), smtpd_tls_chain_files): judged as one presented list, under the name of
    // the first file holding a certificate.
    if let Some(first) = group.certs.first().map(|c| c.path.clone()) {
        for c in &mut group.certs {
            c.path = Arc::clone(&first);
        }
    }
    let mut problems = std::mem::take(&mut group.problems);
    let mut keys = Vec::new();
    if let Some(key) = &slot.key {
        let loaded = load::load_paths(std::slice::from_ref(key), passwords);
        if loaded.keys.is_empty() {
            problems.push(FileProblem {
                path: key.clone(),
                message: match loaded.problems.first() {
                    Some(p) => format!("the key file the server loads: {}", p.message),
                    None => "the key file the server loads holds no private key".into(),
                },
                fatal: true,
            });
        }
        keys = loaded.keys;
    } else if group.keys.is_empty() && !group.certs.is_empty() {
        // No key file is set (Exim without tls_privatekey; Postfix's key settings default to
        // the certificate file) and the certificate files hold none: the server has no key to
        // go with its certificate, and STARTTLS fails (Exim: "cert/key setup"; Postfix logs
        // that it cannot load the key and offers no STARTTLS). An error of the slot, not the
        // warning key-not-found it is for a bundle of files.
        problems.push(FileProblem {
            path: slot.files.first().cloned().unwrap_or_default(),
            message: "the server loads no private key for this certificate: no key file is \
                      set, and the certificate files hold none"
                .into(),
            fatal: true,
        });
    }
    // The chain a renewal tool keeps beside a leaf-only file (certbot's fullchain.pem) is a
    // source of intermediates for this slot, as --intermediates would be.
    let mut config = config.clone();
    config
        .intermediates
        .extend(owners_chains(slot).into_iter().filter(|f| f.exists()));
    let config = &config;
    let analysis = analyse::analyse(
        config,
        std::slice::from_ref(&group),
        std::slice::from_ref(&config.host),
        &keys,
        Vec::new(),
    );
    if analysis.is_empty() && problems.is_empty() {
        problems.push(FileProblem {
            path: slot.files.first().cloned().unwrap_or_default(),
            message: "no leaf certificate in the files the server loads".into(),
            fatal: true,
        });
    }
    let mut results = Vec::new();
    let mut status = if problems.iter().any(|p| p.fatal) {
        Status::Broken
    } else {
        Status::Ok
    };
    let mut advice = Vec::new();
    let cases = analysis.cases();
    let fix = (status != Status::Ok || cases.iter().any(|c| c.status != Status::Ok))
        .then(|| fix_facts(&analysis, &cases, &origin, key_files.clone(), slot));
    for case in cases {
        status = worse(status, case.status);
        let incomplete = case
            .problems
            .iter()
            .any(|f| f.code == Code::MissingIntermediate);
        if incomplete {
            advice.extend(full_chain_advice(slot));
        }
        results.push(case.result(&analysis.pool));
    }
    SlotReport {
        slot: slot.clone(),
        results,
        problems,
        advice,
        status,
        fix,
    }
}

/// The facts a repair of the slot works from, or why it cannot be repaired.
fn fix_facts(
    analysis: &analyse::Analysis,
    cases: &[analyse::LeafCase<'_>],
    origin: &[([u8; 32], PathBuf)],
    key_files: Vec<PathBuf>,
    slot: &Slot,
) -> Result<FixFacts, String> {
    let [case] = cases else {
        return Err(match cases.len() {
            0 => "no leaf certificate in the files the server loads".into(),
            n => format!("{n} leaf certificates in one slot; repair each file instead"),
        });
    };
    if case.status == Status::Broken {
        return Err("errors remain that a new chain cannot fix".into());
    }
    let material = case.material(&analysis.pool, false)?;
    let key = match &case.key {
        crate::diagnose::KeyStatus::Matched(k) => k,
        _ => {
            return Err(
                "no private key that matches the leaf: pointing the server at this chain \
                 would break TLS (key-mismatch or key-not-found)"
                    .into(),
            )
        }
    };
    let certs = material.full_chain();
    let chain_sha256: Vec<[u8; 32]> = certs.iter().map(|c| c.sha256).collect();
    let leaf_sha = chain_sha256.first().copied().unwrap_or_default();
    let leaf_file = origin
        .iter()
        .find(|(sha, _)| *sha == leaf_sha)
        .map(|(_, p)| p.clone())
        .ok_or("the leaf's file is not known")?;
    let owner_full_chain = owners_chains(slot)
        .into_iter()
        .find(|f| holds_exactly(f, &chain_sha256));
    Ok(FixFacts {
        chain_pem: crate::emit::pem_chain(&certs),
        chain_sha256,
        key_pem: key.key.to_pem(),
        leaf_file,
        key_file: key.path.clone(),
        key_files,
        owner_full_chain,
    })
}

/// Whether `file` holds exactly the certificates `chain` (in order) and nothing else.
fn holds_exactly(file: &std::path::Path, chain: &[[u8; 32]]) -> bool {
    let loaded = load::load_paths(&[file.to_path_buf()], &load::NoPassword);
    loaded.problems.is_empty()
        && loaded.keys.is_empty()
        && loaded
            .certs
            .iter()
            .map(|c| c.cert.sha256)
            .eq(chain.iter().copied())
}

/// The full-chain files the owners of the slot's files keep.
fn owners_chains(slot: &Slot) -> Vec<PathBuf> {
    slot.files
        .iter()
        .filter_map(|f| certbot::owner(f)?.full_chain())
        .filter(|full| !slot.files.contains(full))
        .collect()
}

/// When a slot names a leaf-only file of a tool that keeps the full chain beside it: name
/// that file instead (it is renewed with the leaf; a copy would go stale).
fn full_chain_advice(slot: &Slot) -> Option<String> {
    let file = slot
        .files
        .iter()
        .find(|f| f.file_name().and_then(|n| n.to_str()) != Some("privkey.pem"))?;
    let owner = certbot::owner(file)?;
    let full = owner.full_chain()?;
    (full != *file && full.exists()).then(|| {
        format!(
            "{} is {}'s leaf-only file; {} beside it holds the leaf and its chain and is \
             renewed with it: point {} at it",
            file.display(),
            owner.tool(),
            full.display(),
            slot.settings
                .first()
                .map(|s| s.to_string())
                .unwrap_or_default()
        )
    })
}

/// `inspect --postfix` / `--exim` / `--dovecot`.
pub fn inspect(config: &Config, source: &Source) -> Result<Exit, AppError> {
    let deployment = source.discover()?;
    let slots = judge(config, &deployment);
    print(config, &deployment, &slots)?;
    let mut exit = Exit::Ok;
    for s in &slots {
        if s.problems.iter().any(|p| p.fatal) {
            exit = exit.merge(Exit::Findings);
        }
        if s.status != Status::Ok {
            exit = exit.merge(Exit::Findings);
        }
    }
    if slots.is_empty() {
        super::say(&format!(
            "{} {}: no certificate configured",
            deployment.mta.as_str(),
            deployment.config.display()
        ));
        exit = exit.merge(Exit::Findings);
    }
    Ok(exit)
}

fn print(config: &Config, deployment: &Deployment, slots: &[SlotReport]) -> Result<(), AppError> {
    for s in slots {
        for p in &s.problems {
            super::say(&p.to_string());
        }
    }
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let written = if config.json {
        report::deployed::print_json(deployment, &views(slots), &mut out)
    } else {
        let choice = anstream::AutoStream::choice(&std::io::stdout());
        let mut out = anstream::AutoStream::new(Box::new(out) as Box<dyn Write>, choice);
        report::deployed::print_human(deployment, &views(slots), &mut out).and_then(|_| out.flush())
    };
    finish_output(written.and_then(|_| std::io::stdout().flush()))
}

/// The report's view of each judged slot.
fn views(slots: &[SlotReport]) -> Vec<report::deployed::SlotView<'_>> {
    slots
        .iter()
        .map(|s| report::deployed::SlotView {
            slot: &s.slot,
            results: &s.results,
            problems: s
                .problems
                .iter()
                .map(|p| {
                    let kind = if p.fatal { "error" } else { "note" };
                    format!("{kind}: {}: {}", load::path_text(&p.path), p.message)
                })
                .collect(),
            advice: &s.advice,
            status: s.status,
        })
        .collect()
}

/// The more serious of two verdicts: broken, then repairable, then ok.
fn worse(a: Status, b: Status) -> Status {
    let rank = |s: Status| match s {
        Status::Ok => 0,
        Status::Repairable => 1,
        Status::Broken => 2,
    };
    if rank(b) > rank(a) {
        b
    } else {
        a
    }
}
