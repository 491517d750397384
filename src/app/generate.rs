//! `chainfix generate`: the man pages (src/manpage.rs) and shell completions (clap_complete),
//! rendered from the clap definition itself, so they can never drift from the real options.

use std::io::Write;
use std::path::Path;

use clap::CommandFactory;

use super::AppError;
use crate::cli::{Cli, Generate};
use crate::exit::Exit;

pub(super) fn generate(what: &Generate) -> Result<Exit, AppError> {
    // Rendered into memory first: clap_complete panics on a write error such as `| head`.
    let mut bytes = Vec::new();
    match what {
        Generate::Man { out_dir: Some(dir) } => return write_pages(dir).map(|_| Exit::Ok),
        Generate::Man { out_dir: None } => {
            let top = crate::manpage::pages(Cli::command()).swap_remove(0);
            bytes = top.roff.into_bytes();
        }
        Generate::Completions { shell } => {
            clap_complete::generate(*shell, &mut Cli::command(), "chainfix", &mut bytes)
        }
    }
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    super::finish_output(out.write_all(&bytes).and_then(|_| out.flush()))?;
    Ok(Exit::Ok)
}

/// chainfix.1 plus chainfix-SUBCOMMAND.1 for each subcommand.
fn write_pages(dir: &Path) -> Result<(), AppError> {
    let fail = |e: std::io::Error| AppError(format!("{}: {e}", dir.display()));
    std::fs::create_dir_all(dir).map_err(fail)?;
    for page in crate::manpage::pages(Cli::command()) {
        crate::write::write_atomic(
            &dir.join(&page.file),
            page.roff.as_bytes(),
            crate::write::FileMode::Public,
        )
        .map_err(fail)?;
    }
    Ok(())
}
