//! Subcommands that are not built yet. They accept any arguments, say plainly
//! that they are not built and what will build them, and exit 1, so no
//! script mistakes them for a success.

use std::process::ExitCode;

use crate::exit_status;

/// Any arguments: the command does not read them yet.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, hide = true)]
    rest: Vec<String>,
}

/// Prints that `command` is not built yet (`planned`: what will build it)
/// and returns exit status 1.
pub fn report(command: &str, planned: &str) -> ExitCode {
    eprintln!("error: `ferry {command}` is not built yet ({planned}); nothing was done");
    exit_status::ERROR.into()
}
