//! `ferry validate -c FILE...`: checks configuration files offline.

use std::path::PathBuf;
use std::process::ExitCode;

/// Arguments of `ferry validate`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// ImageSetConfiguration or DeleteImageSetConfiguration files to check.
    #[arg(short = 'c', long = "config", required = true, num_args = 1..)]
    pub configs: Vec<PathBuf>,
}

pub fn run(_args: &Args) -> ExitCode {
    crate::not_built::report("validate", "Foundation")
}
