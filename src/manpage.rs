//! The man pages: chainfix(1) and one page per subcommand. NAME, DESCRIPTION, OPTIONS and
//! SUBCOMMANDS come from the clap definition (clap_mangen), so they cannot drift from the real
//! options; the SYNOPSIS is written here so that every option shows its value name; EXIT
//! STATUS, FILES, FINDINGS, ENVIRONMENT, EXAMPLES and SEE ALSO are the sections clap cannot
//! know, made from the tables the code itself uses (exit statuses, finding codes).

use clap::{Arg, ArgAction, Command};
use roff::{bold, italic, roman, Inline, Roff};

use crate::diagnose::Code;
use crate::exit;

/// One page: its file name (`chainfix-repair.1`) and its roff source.
pub struct Page {
    pub file: String,
    pub roff: String,
}

/// chainfix.1 and chainfix-SUBCOMMAND.1 for each subcommand.
pub fn pages(top: Command) -> Vec<Page> {
    let mut top = top.disable_help_subcommand(true);
    top.build();
    let mut out = vec![render(&top, None)];
    for sub in top.get_subcommands() {
        let name = format!("chainfix-{}", sub.get_name());
        let sub = sub
            .clone()
            .name(name.clone())
            .bin_name(name)
            .version(env!("CARGO_PKG_VERSION"));
        out.push(render(&sub, Some(sub_kind(sub.get_name()))));
    }
    out
}

/// Which subcommand a page is about.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Inspect,
    Repair,
    Probe,
    Generate,
}

fn sub_kind(name: &str) -> Kind {
    match name.trim_start_matches("chainfix-") {
        "inspect" => Kind::Inspect,
        "repair" => Kind::Repair,
        "probe" => Kind::Probe,
        _ => Kind::Generate,
    }
}

fn render(cmd: &Command, kind: Option<Kind>) -> Page {
    let man = clap_mangen::Man::new(cmd.clone());
    let mut text = String::new();
    append(&mut text, &piece(|w| man.render_title(w)));
    // No hyphenation: option names and file names must stay whole.
    text.push_str(".nh\n");
    append(&mut text, &piece(|w| man.render_name_section(w)));
    let mut own = Roff::new();
    synopsis(&mut own, cmd);
    append(&mut text, &own.render());
    append(&mut text, &piece(|w| man.render_description_section(w)));
    append(&mut text, &piece(|w| man.render_options_section(w)));
    if cmd.has_subcommands() {
        append(&mut text, &piece(|w| man.render_subcommands_section(w)));
    }
    let mut own = Roff::new();
    exit_status(&mut own, kind);
    if kind == Some(Kind::Repair) {
        files(&mut own);
    }
    if matches!(kind, Some(Kind::Inspect | Kind::Repair | Kind::Probe)) {
        findings(&mut own);
    }
    environment(&mut own, kind);
    examples(&mut own, kind);
    see_also(&mut own, cmd.get_name());
    append(&mut text, &own.render());
    append(&mut text, &piece(|w| man.render_version_section(w)));
    Page {
        file: format!("{}.1", cmd.get_name()),
        roff: text,
    }
}

/// One section clap_mangen renders (into memory, which cannot fail).
fn piece(f: impl Fn(&mut dyn std::io::Write) -> std::io::Result<()>) -> String {
    let mut bytes = Vec::new();
    let _ = f(&mut bytes);
    String::from_utf8_lossy(&bytes).into_owned()
}

/// Appends a rendered piece, without the apostrophe preamble roff puts at the top of each
/// document after the first.
fn append(text: &mut String, piece: &str) {
    if text.is_empty() {
        text.push_str(piece);
        return;
    }
    for line in piece.lines() {
        if line.starts_with(".ie \\n(.g .ds Aq") || line.starts_with(".el .ds Aq") {
            continue;
        }
        text.push_str(line);
        text.push('\n');
    }
}

/// `chainfix-repair [--key FILE] [--out DIR] ... [PATH]...`: every visible option with its
/// value name, required ones without brackets, repeatable ones with `...`.
fn synopsis(roff: &mut Roff, cmd: &Command) {
    roff.control("SH", ["SYNOPSIS"]);
    let mut line: Vec<Inline> = vec![bold(cmd.get_name()), roman(" ")];
    let visible = |a: &&Arg| !a.is_hide_set() && a.get_id() != "help" && a.get_id() != "version";
    for arg in cmd.get_arguments().filter(visible) {
        // Positionals come last; every option here has a long name.
        let Some(long) = arg.get_long() else {
            continue;
        };
        let takes = arg.get_action().takes_values();
        let required = arg.is_required_set();
        if !required {
            line.push(roman("["));
        }
        line.push(bold(format!("--{long}")));
        if takes {
            // `--postfix [CONFIG_DIR]`: a value that may be left out.
            let optional = arg.get_num_args().is_some_and(|n| n.min_values() == 0);
            line.push(roman(if optional { " [" } else { " " }));
            line.push(italic(value_name(arg)));
            if optional {
                line.push(roman("]"));
            }
        }
        if !required {
            line.push(roman("]"));
        }
        if matches!(arg.get_action(), ArgAction::Append) {
            line.push(roman("..."));
        }
        line.push(roman(" "));
    }
    for arg in cmd.get_positionals().filter(|a| !a.is_hide_set()) {
        line.push(roman("["));
        line.push(italic(value_name(arg)));
        line.push(roman("]"));
        if matches!(arg.get_action(), ArgAction::Append) {
            line.push(roman("..."));
        }
        line.push(roman(" "));
    }
    if cmd.has_subcommands() {
        line.push(italic("COMMAND"));
        line.push(roman(" ..."));
    }
    roff.text(line);
}

fn value_name(arg: &Arg) -> String {
    match arg.get_value_names() {
        Some(names) if !names.is_empty() => names
            .iter()
            .map(|n| n.as_str().to_string())
            .collect::<Vec<_>>()
            .join(" "),
        _ => arg.get_id().as_str().to_uppercase(),
    }
}

/// `.TP` entries: a bold tag, then its text.
fn entries(roff: &mut Roff, items: &[(String, String)]) {
    for (tag, text) in items {
        roff.control("TP", []);
        roff.text([bold(tag.as_str())]);
        roff.text([roman(text.as_str())]);
    }
}

fn statuses(table: &[exit::Status]) -> Vec<(String, String)> {
    table
        .iter()
        .map(|(code, text)| (code.to_string(), text.to_string()))
        .collect()
}

fn exit_status(roff: &mut Roff, kind: Option<Kind>) {
    roff.control("SH", ["EXIT STATUS"]);
    match kind {
        Some(Kind::Probe) => {
            entries(roff, &statuses(exit::PROBE_STATUSES));
            roff.control("PP", []);
            roff.text([roman("With "), bold("--nagios"), roman(":")]);
            entries(roff, &statuses(exit::NAGIOS_STATUSES));
        }
        Some(Kind::Generate) => {
            entries(
                roff,
                &statuses(&[
                    (0, "the page or script was written"),
                    (2, "it could not be written"),
                ]),
            );
        }
        Some(Kind::Inspect | Kind::Repair) => entries(roff, &statuses(exit::STATUSES)),
        None => {
            roff.text([roman("inspect and repair (probe: see chainfix-probe(1)):")]);
            entries(roff, &statuses(exit::STATUSES));
        }
    }
    roff.control("PP", []);
    roff.text([roman(exit::PARSER_STATUS)]);
}

/// What `repair` writes into `--out` (README "What repair writes").
const FILES: &[(&str, &str)] = &[
    (
        "fullchain.pem",
        "the leaf, then the intermediates in issuing order (the root only with --include-root); 0644",
    ),
    ("chain.pem", "the intermediates only"),
    ("cert.pem", "the leaf"),
    (
        "privkey.pem",
        "the private key, 0600, only when it is known and matches the leaf",
    ),
    (
        "postfix/main.cf",
        "lines to merge into Postfix's main.cf, server and client role",
    ),
    (
        "postfix/key-and-chain.pem",
        "with --postfix-single-file: the key, then the chain (0600)",
    ),
    (
        "exim/main.conf, exim/transport.conf, exim/debian-macros.conf",
        "Exim main-section options (server role), smtp transport options (client role), and \
         the same as Debian exim4 macros",
    ),
    (
        "exim/privkey.pem",
        "the key, 0640 with group Debian-exim where that group exists, else 0600",
    ),
    (
        "iis/leaf.cer, iis/intermediate-N-NAME.cer, iis/chain.p7b",
        "the leaf and each intermediate (DER), and all of them as PKCS#7",
    ),
    (
        "iis/certificate.pfx",
        "key, leaf and intermediates (0600), only with a PFX password",
    ),
    (
        "iis/install-chain.ps1",
        "installs the chain on Windows (Exchange or IIS SMTP)",
    ),
    ("tlsa.zone", "the DANE TLSA records to publish for the written chain"),
    (
        "README.txt",
        "in plain words: what was wrong, what was written, how to deploy it",
    ),
    (
        ".chainfix-manifest.json",
        "the files chainfix wrote into the directory, with their SHA-256",
    ),
    (
        "NAME.bak.TIMESTAMP",
        "with --backup: the previous version of each file that changed",
    ),
    (
        "SLOT/fullchain.pem, SLOT/key-and-chain.pem",
        "with --postfix or --exim: each repaired slot's chain (0644), or its key and chain \
         (0600) where the key must travel with it",
    ),
];

fn files(roff: &mut Roff) {
    roff.control("SH", ["FILES"]);
    roff.text([roman(
        "Inside the --out directory (with several leaves, one directory per leaf). Writes are \
         atomic (temporary file, fsync, rename); a file whose content, mode and group are \
         already right is not rewritten.",
    )]);
    let items: Vec<(String, String)> = FILES
        .iter()
        .map(|(f, t)| (f.to_string(), t.to_string()))
        .collect();
    entries(roff, &items);
}

fn findings(roff: &mut Roff) {
    roff.control("SH", ["FINDINGS"]);
    roff.text([roman(
        "Each finding has a stable code (the JSON field code). Where a receiver's bounce is \
         documented, it follows the meaning (Exchange Online's codes).",
    )]);
    let items: Vec<(String, String)> = Code::ALL
        .iter()
        .map(|c| {
            let text = match c.ndr() {
                Some(ndr) => format!("{}. Receivers: {ndr}.", c.summary()),
                None => format!("{}.", c.summary()),
            };
            (c.as_str().to_string(), text)
        })
        .collect();
    entries(roff, &items);
}

fn environment(roff: &mut Roff, kind: Option<Kind>) {
    if kind == Some(Kind::Generate) {
        return;
    }
    roff.control("SH", ["ENVIRONMENT"]);
    let mut items = vec![
        (
            "HTTP_PROXY, HTTPS_PROXY, ALL_PROXY, NO_PROXY",
            "proxies for AIA requests, as curl reads them (lower-case forms too)",
        ),
        (
            "XDG_CACHE_HOME, HOME",
            "the AIA download cache is $XDG_CACHE_HOME/chainfix/aia/ (default \
             ~/.cache/chainfix/aia/) unless --cache-dir names another",
        ),
        (
            "NO_COLOR",
            "no colours in the human report (there are none either when stdout is not a \
             terminal)",
        ),
    ];
    if kind != Some(Kind::Probe) {
        items.push((
            "CHAINFIX_POSTCONF_BIN, CHAINFIX_EXIM_BIN, CHAINFIX_DOVECONF_BIN",
            "the postconf, exim and doveconf binaries for --postfix, --exim and --dovecot (as \
             --postconf-bin, --exim-bin and --doveconf-bin)",
        ));
    }
    if kind == Some(Kind::Repair) {
        items.push((
            "the variable named by --pfx-password-env",
            "the password of the IIS .pfx",
        ));
    }
    let items: Vec<(String, String)> = items
        .into_iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
    entries(roff, &items);
}

fn examples(roff: &mut Roff, kind: Option<Kind>) {
    let list: &[(&str, &str)] = match kind {
        None => &[
            (
                "chainfix inspect /etc/ssl/mail",
                "judge the certificates in a directory",
            ),
            (
                "chainfix repair /etc/ssl/mail --out /etc/chainfix",
                "write the full chain and configuration for Postfix, Exim and IIS",
            ),
            (
                "chainfix probe mx.example.com",
                "judge what a live server sends",
            ),
        ],
        Some(Kind::Inspect) => &[
            (
                "chainfix inspect /etc/ssl/mail",
                "every leaf in a directory, with its chain",
            ),
            (
                "chainfix inspect --postfix",
                "exactly the files the local Postfix loads, per listener and SNI name",
            ),
            (
                "chainfix inspect --json cert.pem | jq .results",
                "the stable JSON report",
            ),
            (
                "chainfix inspect --host mx.example.com --tlsa-file tlsa.txt cert.pem",
                "with the host name and the DANE TLSA records in force",
            ),
        ],
        Some(Kind::Repair) => &[
            (
                "chainfix repair /etc/ssl/mail --out /etc/chainfix --check",
                "show what would be written; write nothing",
            ),
            (
                "chainfix repair server.pfx --password-file pw --out fixed --emit iis",
                "a PFX in, the files for IIS SMTP and Exchange out",
            ),
            (
                "chainfix repair --postfix --out /etc/chainfix --reload",
                "repair the deployed Postfix in place, reload it, prove it live",
            ),
            (
                "chainfix repair --dovecot --out /etc/chainfix --reload",
                "the same for Dovecot (IMAP, POP3), proven over STARTTLS and implicit TLS",
            ),
        ],
        Some(Kind::Probe) => &[
            ("chainfix probe mx.example.com", "STARTTLS on port 25"),
            (
                "chainfix probe smtp.example.com:465 --host smtp.example.com",
                "implicit TLS, checked against a name",
            ),
            (
                "chainfix probe --nagios mx1.example.com mx2.example.com",
                "as a Nagios/Icinga plugin",
            ),
            (
                "chainfix probe --domain example.com",
                "the domain as a sending MTA sees it: MX hosts, DNSSEC, DANE, MTA-STS, TLS-RPT",
            ),
            (
                "chainfix probe --nagios --domain partner.example --baseline partner.json",
                "alert when a partner's key, chain, root, DANE or MTA-STS verdict changes",
            ),
            (
                "chainfix probe imap.example.com:143",
                "IMAP STARTTLS (110: POP3 STLS; 993 and 995: TLS at once)",
            ),
            (
                "chainfix probe 127.0.0.1 --compare /etc/chainfix",
                "does the server send what is on disk?",
            ),
        ],
        Some(Kind::Generate) => &[
            (
                "chainfix generate man --out-dir /usr/local/share/man/man1",
                "install the man pages",
            ),
            (
                "chainfix generate completions bash > /etc/bash_completion.d/chainfix",
                "install bash completion",
            ),
        ],
    };
    roff.control("SH", ["EXAMPLES"]);
    for (command, what) in list {
        roff.control("TP", []);
        roff.text([bold(*command)]);
        roff.text([roman(*what)]);
    }
}

fn see_also(roff: &mut Roff, name: &str) {
    roff.control("SH", ["SEE ALSO"]);
    let pages = [
        "chainfix(1)",
        "chainfix-inspect(1)",
        "chainfix-repair(1)",
        "chainfix-probe(1)",
        "chainfix-generate(1)",
        "postconf(5)",
        "openssl-verify(1)",
    ];
    let me = format!("{name}(1)");
    let list: Vec<&str> = pages.iter().copied().filter(|p| *p != me).collect();
    roff.text([roman(list.join(", "))]);
    roff.control("PP", []);
    roff.text([roman(
        "The README (/usr/share/doc/chainfix/README.md) explains every rule with its RFC \
         section or the OpenSSL behaviour behind it.",
    )]);
}
