//! Conformance: the x509-limbo suite (C2SP x509-limbo + Netflix BetterTLS) asked of chainfix
//! through `app::judge`, the same stages `inspect` runs. Every SERVER testcase is one question
//! (leaf = peer_certificate, pool = untrusted_intermediates, anchors = trusted_certs only, at
//! validation_time, for expected_peer_name); chainfix's answer (status ok or repairable =
//! valid) is compared with limbo's expected_result.
//!
//! Cases outside chainfix's receiver model are excluded in `tests/limbo-exclusions.txt`, each
//! with its reason; an excluded id that chainfix now gets right fails the test too, so the file
//! only ever lists real disagreements. The suite is read from
//! `../shared/conformance/x509-limbo/limbo.json.gz` (or under `CHAINFIX_SHARED_DIR`) and never
//! copied into the project; without it `cargo test` lists the suite's test as ignored.
//!
//! Every case's answer is written to `target/tmp/limbo-results.tsv`, the disagreements to
//! `target/tmp/limbo-disagreements.tsv`.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::io::Read;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Instant;

use chainfix::app::judge::{judge, Host, JudgeError, Judgement, Question};
use chainfix::cert::Certificate;
use chainfix::chain::Role;
use chainfix::diagnose::{Code, Severity, Status};
use chainfix::receivers::{Agreement, Verdict};
use rayon::prelude::*;
use serde::Deserialize;

/// Disagreements shown in the failure message; the rest are in the file it names.
const SHOWN: usize = 50;

#[derive(Deserialize)]
struct Limbo {
    testcases: Vec<Testcase>,
}

#[derive(Deserialize)]
struct Testcase {
    id: String,
    #[serde(default)]
    features: Option<Vec<String>>,
    description: String,
    validation_kind: String,
    trusted_certs: Vec<String>,
    untrusted_intermediates: Vec<String>,
    peer_certificate: String,
    validation_time: Option<String>,
    expected_result: String,
    expected_peer_name: Option<PeerName>,
    #[serde(default)]
    extended_key_usage: Option<Vec<String>>,
}

#[derive(Deserialize)]
struct PeerName {
    kind: String,
    value: String,
}

/// chainfix's answer to one testcase.
struct Answer {
    expected_valid: bool,
    valid: bool,
    /// `ok` / `repairable` / `broken`, or why there is no judgement.
    status: String,
    /// The codes of the error findings (`*` marks one serving the chain fixes).
    errors: Vec<String>,
    /// What the harness could not ask as limbo asks it.
    notes: Vec<String>,
    /// rustls/webpki's verdict on the chosen path (`None`: no path, no opinion), and the
    /// policy that explains a difference from chainfix's (`unexplained`, a bug, when none).
    webpki: Option<(bool, String)>,
}

impl Answer {
    fn agrees(&self) -> bool {
        self.valid == self.expected_valid
    }

    fn got(&self) -> &'static str {
        if self.valid {
            "valid"
        } else {
            "invalid"
        }
    }
}

fn repo_path(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

/// The suite from `../shared` (the test reading it carries cfg `have_limbo`, set by build.rs
/// when the file is there; `CHAINFIX_REQUIRE_SHARED=1` makes a missing suite a build failure).
fn limbo() -> Vec<Testcase> {
    let path = common::shared_path("conformance/x509-limbo/limbo.json.gz");
    let mut json = Vec::new();
    flate2::read::GzDecoder::new(std::fs::File::open(&path).expect("open limbo.json.gz"))
        .read_to_end(&mut json)
        .expect("gunzip limbo.json.gz");
    let limbo: Limbo = serde_json::from_slice(&json).expect("limbo.json parses");
    limbo.testcases
}

/// One excluded feature class or testcase id, with its reason.
struct Exclusions {
    features: BTreeMap<String, String>,
    ids: BTreeMap<String, String>,
}

/// Reads `tests/limbo-exclusions.txt`: `feature NAME REASON` or `id NAME REASON` per line,
/// `#` comments and blank lines ignored.
fn exclusions() -> Exclusions {
    let path = repo_path("tests/limbo-exclusions.txt");
    let text = std::fs::read_to_string(&path).expect("tests/limbo-exclusions.txt");
    let mut out = Exclusions {
        features: BTreeMap::new(),
        ids: BTreeMap::new(),
    };
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        // `ids PREFIX N1,N2,... REASON`: the ids PREFIX+N1, PREFIX+N2, ... for one reason.
        let (kind, rest) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
        let (names, reason): (Vec<String>, &str) = if kind == "ids" {
            let mut fields = rest.trim().splitn(3, char::is_whitespace);
            let (prefix, list, reason) = (
                fields.next().unwrap_or_default(),
                fields.next().unwrap_or_default(),
                fields.next().unwrap_or_default().trim(),
            );
            let names = list
                .split(',')
                .filter(|n| !n.is_empty())
                .map(|n| format!("{prefix}{n}"))
                .collect();
            (names, reason)
        } else {
            let (name, reason) = rest
                .trim()
                .split_once(char::is_whitespace)
                .unwrap_or((rest, ""));
            (vec![name.trim().to_string()], reason.trim())
        };
        assert!(
            names.iter().all(|n| !n.is_empty()) && !names.is_empty() && !reason.is_empty(),
            "{}:{}: want `feature|id NAME REASON` or `ids PREFIX N1,N2,... REASON`",
            path.display(),
            n + 1
        );
        let table = match kind {
            "feature" => &mut out.features,
            "id" | "ids" => &mut out.ids,
            _ => panic!(
                "{}:{}: `{kind}` is not feature, id or ids",
                path.display(),
                n + 1
            ),
        };
        for name in names {
            assert!(
                table.insert(name.clone(), reason.to_string()).is_none(),
                "{}:{}: {name} is listed twice",
                path.display(),
                n + 1
            );
        }
    }
    out
}

fn der_of(pem_text: &str) -> Result<Vec<u8>, String> {
    pem::parse(pem_text)
        .map(|p| p.into_contents())
        .map_err(|e| format!("PEM: {e}"))
}

/// The testcase's time, or (when limbo leaves it open) the latest notBefore + 1 s, which must
/// not pass the earliest notAfter of the certificates that parse.
fn validation_time(tc: &Testcase, ders: &[&Vec<u8>], notes: &mut Vec<String>) -> i64 {
    if let Some(t) = &tc.validation_time {
        return time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339)
            .unwrap_or_else(|e| panic!("{}: validation_time {t}: {e}", tc.id))
            .unix_timestamp();
    }
    let certs: Vec<Certificate> = ders
        .iter()
        .filter_map(|d| Certificate::from_der(d).ok())
        .collect();
    let at = certs.iter().map(|c| c.not_before).max().unwrap_or(0) + 1;
    if certs.iter().any(|c| c.not_after < at) {
        notes.push("no time lies inside every certificate's validity".into());
    }
    at
}

fn ask(tc: &Testcase) -> Answer {
    let expected_valid = match tc.expected_result.as_str() {
        "SUCCESS" => true,
        "FAILURE" => false,
        other => panic!("{}: expected_result {other}", tc.id),
    };
    let mut notes = Vec::new();
    let pool_ders = |pems: &[String], what: &str, notes: &mut Vec<String>| -> Vec<Vec<u8>> {
        pems.iter()
            .filter_map(|p| {
                der_of(p)
                    .map_err(|e| notes.push(format!("{what} left out: {e}")))
                    .ok()
            })
            .collect()
    };
    let intermediates = pool_ders(&tc.untrusted_intermediates, "an intermediate", &mut notes);
    let roots = pool_ders(&tc.trusted_certs, "a trusted cert", &mut notes);
    let leaf = match der_of(&tc.peer_certificate) {
        Ok(der) => der,
        Err(e) => return unparsable(expected_valid, format!("leaf {e}"), notes),
    };
    let all: Vec<&Vec<u8>> = std::iter::once(&leaf)
        .chain(&intermediates)
        .chain(&roots)
        .collect();
    let now = validation_time(tc, &all, &mut notes);
    let host = match &tc.expected_peer_name {
        None => None,
        Some(PeerName { kind, value }) if kind == "DNS" => Some(Host::Dns(value)),
        Some(PeerName { kind, value }) if kind == "IP" => match value.parse::<IpAddr>() {
            Ok(ip) => Some(Host::Ip(ip)),
            Err(_) => {
                notes.push(format!("IP {value} does not parse; not checked"));
                None
            }
        },
        Some(PeerName { kind, value }) => {
            notes.push(format!("{kind} name {value} not checked"));
            None
        }
    };
    // A question asking for clientAuth alone is about a client certificate.
    let role = match tc.extended_key_usage.as_deref() {
        Some(eku)
            if eku.iter().any(|e| e == "clientAuth") && !eku.iter().any(|e| e == "serverAuth") =>
        {
            notes.push("client role".into());
            Role::Client
        }
        _ => Role::Server,
    };
    let question = Question {
        leaf: &leaf,
        intermediates: &intermediates,
        roots: &roots,
        now,
        host,
        role,
    };
    match judge(&question) {
        Ok(j) => judged(expected_valid, &j, notes),
        Err(JudgeError::Leaf(e)) => unparsable(expected_valid, e.to_string(), notes),
        Err(e) => panic!("{}: {e}", tc.id),
    }
}

fn judged(expected_valid: bool, j: &Judgement, mut notes: Vec<String>) -> Answer {
    notes.extend(j.ignored.iter().cloned());
    let mut errors: Vec<String> = Vec::new();
    for f in j.findings.iter().filter(|f| f.severity == Severity::Error) {
        let code = format!("{}{}", f.code.as_str(), if f.repairable { "*" } else { "" });
        if !errors.contains(&code) {
            errors.push(code);
        }
    }
    let webpki = j.receivers.as_ref().map(|o| {
        let label = match o.agreement {
            Agreement::Agree => String::new(),
            Agreement::Explained(p) => p.as_str().to_string(),
            Agreement::Unexplained => format!(
                "unexplained ({})",
                match &o.webpki {
                    Verdict::Accepted => "accepted",
                    Verdict::Rejected(r) => r.as_str(),
                }
            ),
        };
        (o.webpki.accepted(), label)
    });
    Answer {
        expected_valid,
        valid: j.is_valid(),
        status: j.status.as_str().into(),
        errors,
        notes,
        webpki,
    }
}

/// A leaf that is not a certificate: invalid, as a receiver that cannot read it says.
fn unparsable(expected_valid: bool, why: String, mut notes: Vec<String>) -> Answer {
    notes.push(why);
    Answer {
        expected_valid,
        valid: false,
        status: "unparsable-leaf".into(),
        errors: Vec::new(),
        notes,
        webpki: None,
    }
}

/// `bettertls::nameconstraints`, `rfc5280::nc`, `pathlen`: the first two parts of a
/// three-part id, the first of a two-part one.
fn category(id: &str) -> &str {
    let parts: Vec<&str> = id.split("::").collect();
    if parts.len() >= 3 {
        &id[..parts[0].len() + 2 + parts[1].len()]
    } else {
        parts[0]
    }
}

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or_default()
}

#[test]
#[cfg_attr(
    not(have_limbo),
    ignore = "needs ../shared/conformance/x509-limbo (or CHAINFIX_SHARED_DIR)"
)]
fn limbo_server_cases_agree_with_the_expected_results() {
    let started = Instant::now();
    let testcases = limbo();
    let excluded = exclusions();
    let read = started.elapsed();
    let cases: Vec<&Testcase> = testcases
        .iter()
        .filter(|tc| tc.validation_kind == "SERVER")
        .collect();
    let answers: Vec<Answer> = cases.par_iter().map(|tc| ask(tc)).collect();
    let elapsed = started.elapsed();

    let features = |tc: &Testcase| tc.features.clone().unwrap_or_default();
    let excluded_by = |tc: &Testcase| -> Option<String> {
        if let Some(reason) = excluded.ids.get(&tc.id) {
            return Some(format!("id: {reason}"));
        }
        features(tc)
            .iter()
            .find_map(|f| excluded.features.get(f).map(|r| format!("{f}: {r}")))
    };

    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let results_path = dir.join("limbo-results.tsv");
    let list_path = dir.join("limbo-disagreements.tsv");
    let mut results =
        String::from("id\texpected\tchainfix\tstatus\terrors\tfeatures\texcluded\tnotes\n");
    let mut list = String::from("id\texpected\tchainfix\terrors\tdescription\n");
    let mut agree = 0;
    let (mut valid_not_failure, mut invalid_not_success) = (0, 0);
    let mut by_category: BTreeMap<String, [usize; 2]> = BTreeMap::new();
    let mut by_feature: BTreeMap<String, [usize; 2]> = BTreeMap::new();
    let mut shown = Vec::new();
    let mut excluded_count = 0;
    let mut stale: Vec<&str> = Vec::new();
    let ids: BTreeSet<&str> = cases.iter().map(|tc| tc.id.as_str()).collect();
    let unknown: Vec<&String> = excluded
        .ids
        .keys()
        .filter(|id| !ids.contains(id.as_str()))
        .collect();
    // The second opinion: every case where rustls/webpki's verdict on the chosen path differs
    // from chainfix's must be explained by a documented policy (src/receivers/policy.rs).
    let mut by_policy: BTreeMap<String, usize> = BTreeMap::new();
    let mut unexplained: Vec<String> = Vec::new();
    for (tc, a) in cases.iter().zip(&answers) {
        let Some((webpki_valid, label)) = &a.webpki else {
            continue;
        };
        if *webpki_valid == a.valid {
            continue;
        }
        if label.starts_with("unexplained") {
            unexplained.push(format!(
                "{} | chainfix {} | webpki {} | {} | {}",
                tc.id,
                a.got(),
                if *webpki_valid { "valid" } else { "invalid" },
                if a.errors.is_empty() {
                    a.status.clone()
                } else {
                    a.errors.join(",")
                },
                label
            ));
        } else {
            *by_policy.entry(label.clone()).or_default() += 1;
        }
    }
    for (tc, a) in cases.iter().zip(&answers) {
        let exclusion = excluded_by(tc);
        writeln!(
            results,
            "{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}",
            tc.id,
            tc.expected_result,
            a.got(),
            a.status,
            a.errors.join(","),
            features(tc).join(","),
            exclusion.as_deref().unwrap_or(""),
            a.notes.join("; ")
        )
        .expect("write to a String");
        if a.agrees() {
            agree += 1;
            if excluded.ids.contains_key(&tc.id) {
                stale.push(&tc.id);
            }
            continue;
        }
        if exclusion.is_some() {
            excluded_count += 1;
            continue;
        }
        let side = usize::from(!a.valid);
        if a.valid {
            valid_not_failure += 1;
        } else {
            invalid_not_success += 1;
        }
        by_category.entry(category(&tc.id).into()).or_default()[side] += 1;
        let tags = features(tc);
        if tags.is_empty() {
            by_feature.entry("(no feature tag)".into()).or_default()[side] += 1;
        }
        for f in tags {
            by_feature.entry(f).or_default()[side] += 1;
        }
        let line = format!(
            "{}\t{}\t{}\t{}\t{}",
            tc.id,
            tc.expected_result,
            a.got(),
            if a.errors.is_empty() {
                a.status.clone()
            } else {
                a.errors.join(",")
            },
            first_line(&tc.description)
        );
        list.push_str(&line);
        list.push('\n');
        shown.push(line);
    }
    std::fs::create_dir_all(&dir).expect("create target/tmp");
    std::fs::write(&results_path, &results).expect("write limbo-results.tsv");
    std::fs::write(&list_path, &list).expect("write limbo-disagreements.tsv");

    let n = cases.len();
    let mut report = format!(
        "x509-limbo: {n} SERVER testcases read in {:.1} s, judged in {:.1} s; chainfix agrees on {agree} ({:.1}%); \
         {excluded_count} disagreements excluded (tests/limbo-exclusions.txt); {} not excluded: \
         {valid_not_failure} say valid where FAILURE is expected, {invalid_not_success} say \
         invalid where SUCCESS is expected.\n",
        read.as_secs_f64(),
        (elapsed - read).as_secs_f64(),
        100.0 * agree as f64 / n as f64,
        valid_not_failure + invalid_not_success,
    );
    let table = |title: &str, rows: &BTreeMap<String, [usize; 2]>, report: &mut String| {
        let mut rows: Vec<(&String, &[usize; 2])> = rows.iter().collect();
        rows.sort_by_key(|(name, [v, i])| (std::cmp::Reverse(v + i), name.as_str()));
        writeln!(
            report,
            "\nBy {title} (valid/FAILURE expected, invalid/SUCCESS expected):"
        )
        .expect("write to a String");
        for (name, [v, i]) in rows {
            writeln!(report, "  {name:<48} {v:>6} {i:>6}").expect("write to a String");
        }
    };
    table("id prefix", &by_category, &mut report);
    table("feature tag", &by_feature, &mut report);
    if !unknown.is_empty() || !stale.is_empty() {
        writeln!(
            report,
            "\nStale exclusions (remove them from tests/limbo-exclusions.txt):"
        )
        .expect("write to a String");
        for id in &unknown {
            writeln!(report, "  {id}: no such SERVER testcase").expect("write to a String");
        }
        for id in &stale {
            writeln!(report, "  {id}: chainfix now agrees with limbo").expect("write to a String");
        }
    }
    if !shown.is_empty() {
        writeln!(
            report,
            "\nFirst {} of {} disagreements (id, expected, chainfix, error codes (* = repairable), \
             description); all in {}:",
            shown.len().min(SHOWN),
            shown.len(),
            list_path.display()
        )
        .expect("write to a String");
        for line in shown.iter().take(SHOWN) {
            writeln!(report, "  {}", line.replace('\t', " | ")).expect("write to a String");
        }
    }
    writeln!(report, "\nEvery case's answer: {}", results_path.display())
        .expect("write to a String");
    eprintln!("{report}");
    let notes: BTreeMap<&str, usize> =
        answers
            .iter()
            .flat_map(|a| &a.notes)
            .fold(BTreeMap::new(), |mut m, note| {
                *m.entry(note.split(':').next().unwrap_or_default())
                    .or_default() += 1;
                m
            });
    eprintln!("harness notes (kind: cases): {notes:?}");
    eprintln!(
        "rustls/webpki differs from chainfix on {} cases for a documented policy: {by_policy:?}",
        by_policy.values().sum::<usize>()
    );
    assert!(
        unexplained.is_empty(),
        "rustls/webpki and chainfix disagree on {} testcases that no documented policy \
         (src/receivers/policy.rs) explains:\n  {}",
        unexplained.len(),
        unexplained.join("\n  ")
    );
    assert!(
        shown.is_empty() && stale.is_empty() && unknown.is_empty(),
        "chainfix disagrees with x509-limbo on {} testcases, and {} exclusions are stale \
         (summary above; every disagreement in {})",
        shown.len(),
        stale.len() + unknown.len(),
        list_path.display()
    );
}

/// 2025-06-01, inside the validity of every certificate of `common::Chain`.
const IN_VALIDITY: i64 = 1_748_736_000;

#[test]
fn judge_answers_as_inspect_does_for_a_generated_chain() {
    let pki = common::Chain::new(&[]);
    let intermediates = vec![pki.int.der.clone()];
    let roots = vec![pki.root.der.clone()];
    let question = Question {
        leaf: &pki.leaf.der,
        intermediates: &intermediates,
        roots: &roots,
        now: IN_VALIDITY,
        host: Some(Host::Dns("mail.example.test")),
        role: Role::Server,
    };
    let j = judge(&question).expect("the leaf parses");
    // The intermediate comes from the pool, not from the peer: repairable, so valid.
    assert_eq!(j.status, Status::Repairable, "{:?}", j.findings);
    assert!(j.is_valid());
    let sha = |der: &[u8]| {
        Certificate::from_der(der)
            .expect("a generated certificate parses")
            .sha256
    };
    assert_eq!(
        j.chain,
        vec![sha(&pki.leaf.der), sha(&pki.int.der), sha(&pki.root.der)]
    );

    let other_host = judge(&Question {
        host: Some(Host::Dns("smtp.example.test")),
        ..question.clone()
    })
    .expect("the leaf parses");
    assert!(!other_host.is_valid());
    assert!(other_host
        .findings
        .iter()
        .any(|f| f.code == Code::HostnameMismatch));

    // Only the given roots are anchors: without them, nothing is trusted.
    let no_roots = judge(&Question {
        roots: &[],
        ..question.clone()
    })
    .expect("the leaf parses");
    assert_eq!(no_roots.status, Status::Broken, "{:?}", no_roots.findings);
}

#[test]
fn judge_refuses_a_leaf_that_is_not_a_certificate() {
    let question = Question {
        leaf: b"not DER",
        intermediates: &[],
        roots: &[],
        now: IN_VALIDITY,
        host: None,
        role: Role::Server,
    };
    assert!(matches!(judge(&question), Err(JudgeError::Leaf(_))));
}
