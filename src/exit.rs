//! Exit statuses. They are part of the interface (scripts and Ansible branch on them), so the
//! numbers never change; `merge` keeps the most serious one seen in a run.

use std::process::ExitCode;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Exit {
    /// 0: every chain is fine (inspect), or every output is complete and written (repair).
    Ok = 0,
    /// 1: error findings remain that chainfix cannot fix (or, for inspect, any error finding).
    Findings = 1,
    /// 2: operational failure: bad usage, unreadable input, nothing parseable, write failed.
    Failure = 2,
}

impl Exit {
    pub fn merge(self, other: Exit) -> Exit {
        self.max(other)
    }

    pub fn code(self) -> ExitCode {
        ExitCode::from(self as u8)
    }
}

/// One exit status and what it means.
pub type Status = (u8, &'static str);

/// `inspect` and `repair`.
pub const STATUSES: &[Status] = &[
    (
        0,
        "success: inspect found no error; repair wrote (or, with --check, would write) a \
         complete chain for every leaf and no error finding remains (a chain-only repair too: \
         with --key-path, or without a key, warning key-not-found)",
    ),
    (
        1,
        "error findings remain (inspect: any error finding; repair: a chain that cannot be \
         completed, an expired or mismatched certificate, a wrong key, a chain that would not \
         match the TLSA records given (nothing written; --accept-dane-break writes it), ...)",
    ),
    (
        2,
        "operational failure: bad usage, an unreadable or damaged input file, a wrong PFX \
         password, no certificate found, or an output file that could not be written; with \
         --postfix or --exim, a configuration that cannot be read or changed, or a reload \
         whose proof failed (every change undone)",
    ),
];

/// `probe`.
pub const PROBE_STATUSES: &[Status] = &[
    (0, "every target served a chain with no error finding"),
    (
        1,
        "error findings remain, including a target that could not be reached or has no \
         STARTTLS; with --domain also the domain's own (null-mx, dnssec-bogus, no-mail-host, \
         ...)",
    ),
    (
        2,
        "operational failure: bad usage, an unreadable --targets-file, --compare, --roots or \
         --intermediates file, a bad --domain or --dns-server, no resolver in \
         /etc/resolv.conf",
    ),
];

/// `probe --nagios` (plugin conventions; the worst target wins).
pub const NAGIOS_STATUSES: &[Status] = &[
    (0, "OK"),
    (1, "WARNING: warnings only (e.g. expires-soon)"),
    (2, "CRITICAL: an error finding or an unreachable target"),
    (
        3,
        "UNKNOWN: the probe could not run or judge (a bad value, an unreadable file)",
    ),
];

/// Said of every command: clap's own rejection of malformed arguments.
pub const PARSER_STATUS: &str = "Malformed arguments rejected by the parser exit 2 in every mode.";

/// The `--help` epilogue for `inspect` and `repair`.
pub fn help() -> String {
    format!("Exit status:\n{}", table(STATUSES))
}

/// The `--help` epilogue for `probe`.
pub fn probe_help() -> String {
    format!(
        "Exit status:\n{}With --nagios (plugin conventions; worst target wins):\n{}{PARSER_STATUS}",
        table(PROBE_STATUSES),
        table(NAGIOS_STATUSES)
    )
}

/// `  N  text`, wrapped at 88 columns with a hanging indent.
fn table(statuses: &[Status]) -> String {
    let mut out = String::new();
    for (code, text) in statuses {
        let mut line = format!("  {code} ");
        for word in text.split_whitespace() {
            if line.len() + 1 + word.len() > 88 {
                out.push_str(&line);
                out.push('\n');
                line = "    ".to_string();
            }
            line.push(' ');
            line.push_str(word);
        }
        out.push_str(&line);
        out.push('\n');
    }
    out
}

/// Nagios plugin statuses (Nagios Plugin Development Guidelines, "Plugin Return Codes").
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Nagios {
    Ok = 0,
    Warning = 1,
    Critical = 2,
    Unknown = 3,
}

impl Nagios {
    pub fn label(self) -> &'static str {
        match self {
            Nagios::Ok => "OK",
            Nagios::Warning => "WARNING",
            Nagios::Critical => "CRITICAL",
            Nagios::Unknown => "UNKNOWN",
        }
    }

    pub fn code(self) -> ExitCode {
        ExitCode::from(self as u8)
    }
}

#[cfg(test)]
mod tests {
    use super::Exit;

    #[test]
    fn merge_keeps_the_most_serious() {
        assert_eq!(Exit::Ok.merge(Exit::Findings), Exit::Findings);
        assert_eq!(Exit::Failure.merge(Exit::Findings), Exit::Failure);
        assert_eq!(Exit::Findings.merge(Exit::Ok), Exit::Findings);
        assert_eq!(Exit::Ok.merge(Exit::Ok), Exit::Ok);
    }
}
