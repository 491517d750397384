//! Runs a mail server's own tools (`postconf`, `exim -bP`, ...) for discovery: no shell, every
//! path an argument of its own, a deadline and a budget on what is read back.

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// How long one tool may run. `postconf` and `exim -bP` read a few files and answer in
/// milliseconds; a tool still running after this is stuck (a lookup table on a dead server,
/// a terminal prompt), and the discovery reports it rather than hanging.
pub const TOOL_TIMEOUT: Duration = Duration::from_secs(30);

/// Most bytes read from a tool's stdout (and, separately, stderr). `postconf -x` of a full
/// installation prints about 60 KiB (1,000 parameters); 4 MiB leaves room for large master.cf
/// files and map sources while bounding memory if a tool runs away.
pub const OUTPUT_BUDGET: usize = 4 << 20;

/// What a tool printed and how it ended.
#[derive(Debug)]
pub struct ToolOutput {
    pub success: bool,
    pub stdout: String,
    pub stderr: String,
}

/// Why a tool could not be run to the end.
#[derive(Debug, thiserror::Error)]
pub enum ToolError {
    #[error("{program}: cannot run it: {source}")]
    Spawn {
        program: String,
        source: std::io::Error,
    },
    #[error("{program}: still running after {} seconds; stopped", .timeout.as_secs())]
    Timeout { program: String, timeout: Duration },
    #[error("{program}: printed more than {budget} bytes; stopped")]
    TooMuchOutput { program: String, budget: usize },
}

/// Runs `program [FLAG CONFIG] args...` (`postconf -c DIR`, `exim -C FILE`) as [`run`] does, and
/// returns its stdout, or a `ToolFailed` error with what it printed when it exits non-zero.
pub fn run_ok(
    program: &Path,
    config: Option<(&str, &Path)>,
    args: &[&std::ffi::OsStr],
) -> Result<String, super::DiscoverError> {
    let mut all: Vec<&std::ffi::OsStr> = Vec::with_capacity(args.len() + 2);
    if let Some((flag, path)) = config {
        all.push(std::ffi::OsStr::new(flag));
        all.push(path.as_os_str());
    }
    all.extend_from_slice(args);
    let out = run(program, &all)?;
    if !out.success {
        let shown: Vec<String> = all
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        return Err(super::DiscoverError::ToolFailed {
            program: format!("{} {}", program.display(), shown.join(" ")),
            message: format!("{}{}", out.stderr.trim(), out.stdout.trim()),
        });
    }
    Ok(out.stdout)
}

/// Runs `program args...` with stdin closed, waiting at most `TOOL_TIMEOUT`.
pub fn run(program: &Path, args: &[&std::ffi::OsStr]) -> Result<ToolOutput, ToolError> {
    run_limited(program, args, TOOL_TIMEOUT, OUTPUT_BUDGET)
}

/// `run` with an explicit deadline and output budget.
pub fn run_limited(
    program: &Path,
    args: &[&std::ffi::OsStr],
    timeout: Duration,
    budget: usize,
) -> Result<ToolOutput, ToolError> {
    let name = program.display().to_string();
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|source| ToolError::Spawn {
            program: name.clone(),
            source,
        })?;
    let read_all = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            let mut over = false;
            if let Some(p) = pipe {
                // One byte more than the budget tells "exactly the budget" from "more".
                let mut limited = p.take(budget as u64 + 1);
                let _ = limited.read_to_end(&mut buf);
                if buf.len() > budget {
                    over = true;
                    buf.truncate(budget);
                    // The pipe closes here: a tool still writing gets SIGPIPE and ends.
                }
            }
            (buf, over)
        })
    };
    let out = read_all(
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let err = read_all(
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let start = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if start.elapsed() < timeout => std::thread::sleep(Duration::from_millis(10)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
        }
    };
    let (stdout, over_out) = out.join().unwrap_or_default();
    let (stderr, over_err) = err.join().unwrap_or_default();
    let Some(status) = status else {
        return Err(ToolError::Timeout {
            program: name,
            timeout,
        });
    };
    if over_out || over_err {
        return Err(ToolError::TooMuchOutput {
            program: name,
            budget,
        });
    }
    Ok(ToolOutput {
        success: status.success(),
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
    })
}

/// The first of `candidates` that exists as a file, else the first name (to be found on
/// `PATH` when run).
pub fn find_program(candidates: &[&str]) -> std::path::PathBuf {
    for c in candidates {
        let p = Path::new(c);
        if p.is_absolute() && p.is_file() {
            return p.to_path_buf();
        }
    }
    std::path::PathBuf::from(candidates.first().copied().unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tool_that_runs_past_the_deadline_is_stopped() {
        let e = run_limited(
            Path::new("sleep"),
            &["5".as_ref()],
            Duration::from_millis(200),
            1024,
        )
        .expect_err("sleep 5 must time out");
        assert!(matches!(e, ToolError::Timeout { .. }), "{e}");
    }

    #[test]
    fn a_tool_that_prints_past_the_budget_is_stopped() {
        let e = run_limited(Path::new("yes"), &[], Duration::from_secs(10), 4096)
            .expect_err("yes must exceed the budget");
        assert!(matches!(e, ToolError::TooMuchOutput { .. }), "{e}");
    }
}
