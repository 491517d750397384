//! Entry point: parse arguments, run, map the result to an exit status. Nothing else.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = chainfix::cli::Cli::parse();
    match chainfix::app::run(cli) {
        Ok(code) => code,
        Err(e) => {
            chainfix::app::say(&e.to_string());
            chainfix::exit::Exit::Failure.code()
        }
    }
}
