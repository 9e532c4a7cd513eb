//! `ferry demo`: ferry's main job on its built-in demo world.
//!
//! It starts the test world (real registries on 127.0.0.1 seeded with an
//! OpenShift-shaped universe), loads `demo/imageset-config.yaml`, resolves
//! every additional image through the world's registries.conf with ferry's
//! registry client, and then stops where ferry stops today: planning and
//! mirroring are not built yet, so it says so and exits 1.

use std::process::ExitCode;

use ferry_registry::{ClientOptions, CredentialStore, RegistriesConf, RegistryClient};
use ferry_schemas::{ImageSource, load_image_set_configuration, render};
use ferry_testworld::world::{World, require_program};

use crate::exit_status;

const CONFIG_NAME: &str = "demo/imageset-config.yaml";
const CONFIG_TEXT: &str = include_str!("../../demo/imageset-config.yaml");

/// Arguments of `ferry demo`.
#[derive(Debug, clap::Args)]
pub struct Args {}

pub fn run(_args: &Args) -> ExitCode {
    if let Err(error) = require_program("docker-registry", "docker-registry") {
        eprintln!("error: {error}");
        eprintln!("hint: run `bash .ci/install` first");
        return exit_status::ERROR.into();
    }
    eprintln!(
        "ferry demo: starting the test world (real docker-registry processes on 127.0.0.1)..."
    );
    let world = match World::start() {
        Ok(world) => world,
        Err(error) => {
            eprintln!("error: the test world did not start: {error}");
            return exit_status::ERROR.into();
        }
    };
    let content = world.content();
    let blob_bytes: usize = content.blobs.values().map(Vec::len).sum();
    println!("test world");
    println!(
        "  registry:         {} (read-only, plain HTTP)",
        world.registry().address()
    );
    println!("  registries.conf:  {}", world.registries_conf().display());
    println!("  update graph:     {}", world.graph_url());
    println!(
        "  content:          {} tagged or pinned images, {} manifests, {} blobs ({:.1} MiB)",
        content.placements.len(),
        content.manifests.len(),
        content.blobs.len(),
        blob_bytes as f64 / (1024.0 * 1024.0)
    );

    let loaded = match load_image_set_configuration(CONFIG_TEXT) {
        Ok(loaded) => loaded,
        Err(problems) => {
            eprint!("{}", render(CONFIG_NAME, CONFIG_TEXT, &problems));
            return exit_status::ERROR.into();
        }
    };
    println!();
    println!("configuration {CONFIG_NAME}: valid");
    let mirror = &loaded.config.mirror;
    // Resolve every additional image for real: through the world's
    // registries.conf to the loopback registry, with ferry's client.
    let registries = match RegistriesConf::load(Some(world.registries_conf()), &[]) {
        Ok(registries) => registries,
        Err(error) => {
            eprintln!("error: {error}");
            return exit_status::ERROR.into();
        }
    };
    let client = RegistryClient::new(ClientOptions {
        credentials: CredentialStore::from_files(Vec::new()),
        insecure_hosts: vec![world.registry().host()],
        ..ClientOptions::default()
    });
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return exit_status::ERROR.into();
        }
    };
    let mut resolved = 0;
    for image in &mirror.additional_images {
        let ImageSource::Registry(reference) = &image.name else {
            continue;
        };
        let outcome = match registries.pull_sources(reference) {
            Ok(sources) => runtime.block_on(async {
                let mut last = String::from("no source");
                for source in &sources {
                    match client.get_manifest(&source.reference).await {
                        Ok(manifest) => return Ok((source.reference.clone(), manifest)),
                        Err(error) => last = error.to_string(),
                    }
                }
                Err(last)
            }),
            Err(error) => Err(error.to_string()),
        };
        match outcome {
            Ok((source, manifest)) => {
                resolved += 1;
                println!("  additional image  {reference}");
                println!(
                    "      resolved to   {} ({}, {} bytes) via {}",
                    manifest.digest,
                    manifest.media_type,
                    manifest.bytes.len(),
                    source.registry()
                );
            }
            Err(error) => println!("  additional image  {reference}: NOT RESOLVED: {error}"),
        }
    }
    for operator in &mirror.operators {
        println!("  operator catalog  {}", operator.catalog);
    }
    if let Some(platform) = &mirror.platform {
        for channel in &platform.channels {
            println!("  release channel   {}", channel.name);
        }
    }
    let refusals = loaded.refusals();
    if !refusals.is_empty() {
        eprint!("{}", render(CONFIG_NAME, CONFIG_TEXT, &loaded.warnings()));
    }
    println!();
    println!(
        "{resolved} of {} additional images resolved through registries.conf.",
        mirror.additional_images.len()
    );
    eprintln!(
        "error: mirroring is not built yet: the planner and executor (issue 4) and the disk \
         workflows (issue 5) come next. Nothing was mirrored."
    );
    drop(world);
    exit_status::ERROR.into()
}
