//! The `archc` command line. Exit codes: 0 fine, 1 the input has errors, 2 bad usage.

mod cli;
mod commands;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    match commands::run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(code) => ExitCode::from(code.as_u8()),
    }
}
