//! `ferry world up|down`: the demo world for humans (`ferry demo` lives in
//! `demo.rs`; it is the lead's). The work is done by
//! `ferry_testworld::background`; this module parses arguments and prints.

use std::path::PathBuf;
use std::process::{Command, ExitCode};

use ferry_testworld::background::{self, UpOutcome};

use crate::exit_status;

/// Arguments of `ferry world`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    action: Action,
}

#[derive(Debug, clap::Subcommand)]
enum Action {
    /// Start the world in the background: three read-only registries on
    /// 127.0.0.1 (plain HTTP, TLS, TLS with basic auth) serving every public
    /// host of the demo content, and the update-graph server. Prints where
    /// they are and returns. The registries' storage is built once in
    /// $FERRY_WORLD_CACHE, else $XDG_CACHE_HOME/ferry/world, else
    /// ~/.cache/ferry/world.
    Up(DirectoryArgs),
    /// Stop the world started by `ferry world up`.
    Down(DirectoryArgs),
    /// Serve the update graph in the foreground (started by `up`).
    #[command(hide = true)]
    ServeGraph(DirectoryArgs),
}

#[derive(Debug, clap::Args)]
struct DirectoryArgs {
    /// Where the world keeps its descriptor (world.json), registries.conf,
    /// certificates, pid files and logs [default: $FERRY_WORLD_DIR, else
    /// <temp dir>/ferry-world]
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
}

impl DirectoryArgs {
    fn directory(&self) -> PathBuf {
        self.dir
            .clone()
            .unwrap_or_else(background::default_directory)
    }
}

pub fn run(args: &Args) -> ExitCode {
    match &args.action {
        Action::Up(directory) => up(&directory.directory()),
        Action::Down(directory) => down(&directory.directory()),
        Action::ServeGraph(directory) => match background::serve_graph(&directory.directory()) {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => fail("the graph server stopped", &error),
        },
    }
}

fn up(directory: &std::path::Path) -> ExitCode {
    let program = match std::env::current_exe() {
        Ok(program) => program,
        Err(error) => {
            return fail(
                "cannot find the ferry binary to run the graph server",
                &error,
            );
        }
    };
    // The world's storage goes to the user's cache folder, not into the
    // source checkout this binary was built from.
    ferry_testworld::world::use_cache_root(ferry_testworld::world::program_cache_root(|name| {
        std::env::var_os(name)
    }));
    let mut graph_server = Command::new(program);
    graph_server
        .args(["world", "serve-graph", "--dir"])
        .arg(directory);
    match background::up(directory, graph_server) {
        Ok(UpOutcome::Started(descriptor)) => {
            println!("the world is up ({}):", directory.display());
            print!("{}", background::describe(&descriptor, directory));
            println!(
                "\nstop it with: ferry world down --dir {}",
                directory.display()
            );
            ExitCode::SUCCESS
        }
        Ok(UpOutcome::AlreadyUp(descriptor)) => {
            println!("the world is already up ({}):", directory.display());
            print!("{}", background::describe(&descriptor, directory));
            ExitCode::SUCCESS
        }
        Err(error) => fail("could not start the world", &error),
    }
}

fn down(directory: &std::path::Path) -> ExitCode {
    match background::down(directory) {
        Ok(stopped) if stopped.is_empty() => {
            println!(
                "the world is not up in {}: nothing to stop",
                directory.display()
            );
            ExitCode::SUCCESS
        }
        Ok(stopped) => {
            for process in stopped {
                println!("stopped {process}");
            }
            ExitCode::SUCCESS
        }
        Err(error) => fail("could not stop the world", &error),
    }
}

fn fail(what: &str, error: &dyn std::fmt::Display) -> ExitCode {
    eprintln!("error: {what}: {error}");
    exit_status::ERROR.into()
}
