//! `ferry world up|down` and `ferry demo`: the demo world for humans.

use std::process::ExitCode;

/// Arguments of `ferry world`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, hide = true)]
    rest: Vec<String>,
}

/// Arguments of `ferry demo`.
#[derive(Debug, clap::Args)]
pub struct DemoArgs {}

pub fn run(_args: &Args) -> ExitCode {
    crate::not_built::report("world", "Foundation")
}

pub fn demo(_args: &DemoArgs) -> ExitCode {
    crate::not_built::report("demo", "Foundation")
}
