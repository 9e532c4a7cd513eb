//! `ferry validate -c FILE...`: checks configuration files without touching
//! the network, for CI lint steps. Both kinds are accepted (chosen by each
//! file's `kind`). Problems are rendered with file, line, column and a
//! snippet; fields ferry does not act on yet are warnings. Exit 0 when every
//! file is valid, 1 otherwise.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use ferry_schemas::{AnyConfiguration, load_any_configuration, render};

use crate::exit_status;

/// Arguments of `ferry validate`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// ImageSetConfiguration or DeleteImageSetConfiguration files to check.
    #[arg(short = 'c', long = "config", required = true, num_args = 1..)]
    pub configs: Vec<PathBuf>,
}

pub fn run(args: &Args) -> ExitCode {
    let mut all_valid = true;
    let mut stdout = std::io::stdout().lock();
    let mut stderr = std::io::stderr().lock();
    for path in &args.configs {
        let name = path.display().to_string();
        let text = match ferry_schemas::read_configuration_file(path) {
            Ok(text) => text,
            Err(error) => {
                let _ = writeln!(stderr, "error: cannot read {name}: {error}");
                all_valid = false;
                continue;
            }
        };
        match load_any_configuration(&text) {
            Ok(loaded) => {
                let warnings = loaded.warnings();
                if !warnings.is_empty() {
                    let _ = write!(stderr, "{}", render(&name, &text, &warnings));
                }
                let kind = match loaded.config {
                    AnyConfiguration::ImageSet(_) => "ImageSetConfiguration",
                    AnyConfiguration::Delete(_) => "DeleteImageSetConfiguration",
                };
                let note = match warnings.len() {
                    0 => String::new(),
                    1 => ", 1 warning".to_owned(),
                    count => format!(", {count} warnings"),
                };
                let _ = writeln!(stdout, "{name}: valid ({kind}{note})");
            }
            Err(problems) => {
                all_valid = false;
                let _ = write!(stderr, "{}", render(&name, &text, &problems));
                let count = problems.len();
                let plural = if count == 1 { "problem" } else { "problems" };
                let _ = writeln!(stdout, "{name}: invalid ({count} {plural})");
            }
        }
    }
    if all_valid {
        ExitCode::SUCCESS
    } else {
        exit_status::ERROR.into()
    }
}
