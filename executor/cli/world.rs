//! `ferry world up|down`: the demo world for humans (`ferry demo` lives in
//! `demo.rs`; it is the lead's).

use std::process::ExitCode;

/// Arguments of `ferry world`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, hide = true)]
    rest: Vec<String>,
}

pub fn run(_args: &Args) -> ExitCode {
    crate::not_built::report("world", "Foundation")
}
