//! `chainfix generate`: the man page and shell completions, rendered from the clap definition
//! itself (clap_mangen, clap_complete), so they can never drift from the real options.

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
        Generate::Man { out_dir: None } => clap_mangen::Man::new(Cli::command())
            .render(&mut bytes)
            .map_err(|e| AppError(format!("rendering the man page failed: {e}")))?,
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
    let cmd = Cli::command();
    let mut pages = vec![("chainfix.1".to_string(), cmd.clone())];
    for sub in cmd.get_subcommands() {
        let name = format!("chainfix-{}", sub.get_name());
        pages.push((format!("{name}.1"), sub.clone().name(name)));
    }
    for (file, page) in pages {
        let mut bytes = Vec::new();
        clap_mangen::Man::new(page)
            .render(&mut bytes)
            .map_err(fail)?;
        crate::write::write_atomic(&dir.join(file), &bytes, crate::write::FileMode::Public)
            .map_err(fail)?;
    }
    Ok(())
}
