//! `ferry registries-conf --from DIR [-o FILE] [--insecure]`: a
//! repository-scoped `registries.conf` written from the ImageDigestMirrorSet
//! and ImageTagMirrorSet a run left in `working-dir/cluster-resources/`
//! (built by `workflow::registries_conf`, which says why it is shaped as
//! it is). This file reads the mirror set files, renders their problems
//! with the file, line and a snippet (nothing is written then), reads the
//! text back with ferry's own parser, and writes or prints it.

use std::path::PathBuf;
use std::process::ExitCode;

use ferry_executor::workflow::registries_conf::{
    DIGEST_FILE, MirrorTable, TAG_FILE, cluster_resources_folder, host_level_tables,
    read_mirror_sets, registries_conf,
};
use ferry_registry::RegistriesConf;
use ferry_schemas::render;

use crate::common::{error, write_file};

/// Arguments of `ferry registries-conf`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The cluster resources to read: `WS/working-dir/cluster-resources`
    /// (a workspace or disk folder `WS`, or `file://WS`, works too).
    #[arg(long)]
    from: String,
    /// Write the file here instead of to stdout.
    #[arg(short = 'o', long = "output")]
    output: Option<PathBuf>,
    /// Mark every mirror `insecure = true` (a registry on plain HTTP or with
    /// a certificate the system does not trust).
    #[arg(long)]
    insecure: bool,
}

/// One mirror set file read.
struct ReadFile {
    name: String,
    text: String,
}

/// `ferry registries-conf`.
pub fn run(arguments: &Args) -> ExitCode {
    let folder = match cluster_resources_folder(&arguments.from) {
        Ok(folder) => folder,
        Err(message) => return error(message),
    };
    let mut files = Vec::new();
    for name in [DIGEST_FILE, TAG_FILE] {
        let path = folder.join(name);
        match std::fs::read_to_string(&path) {
            Ok(text) => files.push(ReadFile {
                name: path.display().to_string(),
                text,
            }),
            Err(cause) if cause.kind() == std::io::ErrorKind::NotFound => {}
            Err(cause) => return error(format!("cannot read {}: {cause}", path.display())),
        }
    }
    let mut table = MirrorTable::new();
    let mut failed = false;
    for file in &files {
        if let Err(problems) = read_mirror_sets(&file.text, &mut table) {
            eprint!("{}", render(&file.name, &file.text, &problems));
            failed = true;
        }
    }
    if failed {
        return error("the mirror sets above cannot be used; nothing was written");
    }
    if table.is_empty() {
        return error(format!(
            "{} lists no mirrors: run disk-to-mirror (or mirror-to-mirror) first, or name the folder it wrote",
            folder.display()
        ));
    }
    let read: Vec<&str> = files.iter().map(|file| file.name.as_str()).collect();
    let text = registries_conf(&table, arguments.insecure, &read);
    // Read back with ferry's own parser: what ferry writes, ferry reads.
    let check_path = arguments
        .output
        .clone()
        .unwrap_or_else(|| PathBuf::from("registries.conf"));
    if let Err(cause) = RegistriesConf::parse(&check_path, &text) {
        return error(format!(
            "internal error: the file written does not read back: {cause}"
        ));
    }
    let hosts = host_level_tables(&table).len();
    match &arguments.output {
        Some(path) => {
            if let Err(code) = write_file(path, &text) {
                return code;
            }
            println!(
                "{}: registries.conf written from {} ({} mirrored sources, {} host-level tables)",
                path.display(),
                folder.display(),
                table.len(),
                hosts
            );
        }
        None => print!("{text}"),
    }
    ExitCode::SUCCESS
}
