//! `ferry demo`: ferry's main job on its built-in demo world.
//!
//! It starts the test world (real registries on 127.0.0.1 seeded with an
//! OpenShift-shaped universe) and two empty registries (a connected mirror
//! and a disconnected enclave), then runs ferry's own commands as a user
//! would, printing each command line first: the releases a fuller image
//! set selects (`ferry list releases -c`, from the world's update graph),
//! plan and mirror-to-mirror, the no-op rerun, one release mirrored with
//! its signature verified and its IDMS and signature ConfigMap checked
//! (`release`), mirror-to-disk, `ferry verify`, and — with every source
//! registry stopped — disk-to-mirror into the enclave (the delivered
//! operator catalog filtered and rebuilt there). At the end skopeo (when
//! installed) checks that the enclave holds every additional image byte for
//! byte, and the CatalogSource written for the catalog is shown. It exits 0
//! only when every step did what it should.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use ferry_schemas::{ImageSource, load_image_set_configuration, render};
use ferry_testworld::registry::{Flavour, Registry, Storage};
use ferry_testworld::world::{World, require_program};

use crate::exit_status;

mod release;

const CONFIG_NAME: &str = "demo/imageset-config.yaml";
const CONFIG_TEXT: &str = include_str!("../../demo/imageset-config.yaml");
/// The fuller image set (releases and operators), listed but not mirrored.
const FULL_CONFIG_TEXT: &str = include_str!("../../demo/full-imageset-config.yaml");

/// Arguments of `ferry demo`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Keep the demo's files (workspace, deliveries, cache) in this folder
    /// instead of a temporary one that is removed at the end.
    #[arg(long)]
    dir: Option<PathBuf>,
}

fn fail(message: impl std::fmt::Display) -> ExitCode {
    eprintln!("error: {message}");
    exit_status::ERROR.into()
}

/// Runs this ferry binary with `arguments` and the cache `folder/<cache>`,
/// showing the command line and its output; returns its exit code.
fn ferry(folder: &Path, cache: &str, arguments: &[String]) -> Result<i32, String> {
    ferry_with(folder, cache, arguments, &[])
}

/// [`ferry`] with environment variables, shown before the command.
fn ferry_with(
    folder: &Path,
    cache: &str,
    arguments: &[String],
    environment: &[(&str, String)],
) -> Result<i32, String> {
    let hide = |text: &str| text.replace(&folder.display().to_string(), "$DEMO");
    let shown: Vec<String> = environment
        .iter()
        .map(|(name, value)| format!("{name}={}", hide(value)))
        .chain(std::iter::once("ferry".to_owned()))
        .chain(arguments.iter().map(|argument| hide(argument)))
        .collect();
    println!("\n$ {}", shown.join(" "));
    let program = std::env::current_exe().map_err(|error| error.to_string())?;
    let status = Command::new(program)
        .args(arguments)
        .envs(environment.iter().map(|(name, value)| (name, value)))
        .env("FERRY_CACHE_DIR", folder.join(cache))
        // The demo needs no credentials; never read the user's.
        .env("REGISTRY_AUTH_FILE", folder.join("no-credentials.json"))
        .status()
        .map_err(|error| format!("cannot run ferry: {error}"))?;
    Ok(status.code().unwrap_or(1))
}

fn expect(
    folder: &Path,
    cache: &str,
    arguments: &[String],
    wanted: i32,
    step: &str,
) -> Result<(), String> {
    let code = ferry(folder, cache, arguments)?;
    if code == wanted {
        Ok(())
    } else {
        Err(format!("{step}: ferry exited {code}, expected {wanted}"))
    }
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|item| (*item).to_owned()).collect()
}

/// The raw manifest of `reference` by skopeo, if it can read it.
fn skopeo_raw(arguments: &[&str]) -> Option<Vec<u8>> {
    let output = Command::new("skopeo").args(arguments).output().ok()?;
    output.status.success().then_some(output.stdout)
}

pub fn run(arguments: &Args) -> ExitCode {
    if let Err(error) = require_program("docker-registry", "docker-registry") {
        eprintln!("error: {error}");
        eprintln!("hint: run `bash .ci/install` first");
        return exit_status::ERROR.into();
    }
    let loaded = match load_image_set_configuration(CONFIG_TEXT) {
        Ok(loaded) => loaded,
        Err(problems) => {
            eprint!("{}", render(CONFIG_NAME, CONFIG_TEXT, &problems));
            return exit_status::ERROR.into();
        }
    };
    let temporary;
    let folder = match &arguments.dir {
        Some(folder) => folder.clone(),
        None => match tempfile::Builder::new().prefix("ferry-demo-").tempdir() {
            Ok(folder) => {
                temporary = folder;
                temporary.path().to_path_buf()
            }
            Err(error) => return fail(format!("cannot create a temporary folder: {error}")),
        },
    };
    if let Err(error) = std::fs::create_dir_all(&folder)
        .and_then(|()| std::fs::write(folder.join("imageset-config.yaml"), CONFIG_TEXT))
        .and_then(|()| std::fs::write(folder.join("full-imageset-config.yaml"), FULL_CONFIG_TEXT))
        .and_then(|()| std::fs::write(folder.join(release::CONFIG_FILE), release::CONFIG_TEXT))
    {
        return fail(format!("cannot write into {}: {error}", folder.display()));
    }
    println!(
        "ferry demo: starting the test world (real docker-registry processes on 127.0.0.1)..."
    );
    let world = match World::start() {
        Ok(world) => world,
        Err(error) => return fail(format!("the test world did not start: {error}")),
    };
    let registries = |flavour| Registry::start(flavour, Storage::Empty);
    let (mirror, enclave) = match (
        registries(Flavour::PlainHttp),
        registries(Flavour::PlainHttp),
    ) {
        (Ok(mirror), Ok(enclave)) => (mirror, enclave),
        (Err(error), _) | (_, Err(error)) => {
            return fail(format!("an empty registry did not start: {error}"));
        }
    };
    let content = world.content();
    let blob_bytes: usize = content.blobs.values().map(Vec::len).sum();
    println!(
        "  source registry   {} (serves quay.io/... and registry.redhat.io/... through {})",
        world.registry().address(),
        world.registries_conf().display()
    );
    println!(
        "  world content     {} tagged or pinned images, {} manifests, {} blobs ({:.1} MiB)",
        content.placements.len(),
        content.manifests.len(),
        content.blobs.len(),
        blob_bytes as f64 / (1024.0 * 1024.0)
    );
    println!("  connected mirror  {} (empty)", mirror.host());
    println!(
        "  enclave registry  {} (empty, disconnected side)",
        enclave.host()
    );
    println!("  files             {} ($DEMO below)", folder.display());
    println!("\n{CONFIG_NAME}:\n{CONFIG_TEXT}");

    let config = folder.join("imageset-config.yaml").display().to_string();
    let registries_conf = world.registries_conf().display().to_string();
    let workspace = format!("file://{}", folder.join("workspace").display());
    let disk = format!("file://{}", folder.join("disk").display());
    let mirror_destination = format!("docker://{}/demo", mirror.host());
    let enclave_destination = format!("docker://{}/demo", enclave.host());
    let source_flags = ["-c", &config, "--registries-conf", &registries_conf];
    let to_mirror = |command: &str, extra: &[&str]| {
        let mut arguments = strings(&[command]);
        arguments.extend(strings(&source_flags));
        arguments.extend(strings(&[
            "--workspace",
            &workspace,
            "--dest-tls-verify=false",
        ]));
        arguments.extend(strings(extra));
        arguments.push(mirror_destination.clone());
        arguments
    };
    let to_disk = |command: &str| {
        let mut arguments = strings(&[command]);
        arguments.extend(strings(&source_flags));
        arguments.push(disk.clone());
        arguments
    };

    // `list releases` asks the world's update service.
    let graph_url = world.graph_url();
    let steps = || -> Result<(), String> {
        println!(
            "\n== 0. what the fuller image set selects (releases from the world's update graph)"
        );
        let full_config = folder
            .join("full-imageset-config.yaml")
            .display()
            .to_string();
        let code = {
            let shown = format!(
                "UPDATE_URL_OVERRIDE={graph_url} ferry list releases -c $DEMO/full-imageset-config.yaml"
            );
            println!("\n$ {shown}");
            let program = std::env::current_exe().map_err(|error| error.to_string())?;
            Command::new(program)
                .args(["list", "releases", "-c", &full_config])
                .env("UPDATE_URL_OVERRIDE", &graph_url)
                .env("REGISTRY_AUTH_FILE", folder.join("no-credentials.json"))
                .status()
                .map_err(|error| format!("cannot run ferry: {error}"))?
                .code()
                .unwrap_or(1)
        };
        if code != 0 {
            return Err(format!("list releases: ferry exited {code}, expected 0"));
        }
        println!("\n== 1. mirror to mirror: plan, apply, and the rerun that has nothing to do");
        expect(
            &folder,
            "cache",
            &to_mirror("plan", &["--detailed-exitcode"]),
            2,
            "plan",
        )?;
        expect(&folder, "cache", &to_mirror("mirror", &[]), 0, "mirror")?;
        expect(
            &folder,
            "cache",
            &to_mirror("plan", &["--detailed-exitcode"]),
            0,
            "no-op plan",
        )?;

        release::mirror_release(&folder, &world, &mirror_destination)?;

        println!("\n== 3. mirror to disk: the first delivery, verified before it travels");
        expect(&folder, "cache", &to_disk("mirror"), 0, "mirror to disk")?;
        expect(&folder, "cache", &strings(&["verify", &disk]), 0, "verify")?;
        Ok(())
    };
    if let Err(message) = steps() {
        return fail(message);
    }

    // Remember what the sources serve, then stop them: the enclave sees
    // only the delivery.
    let expected: Vec<(String, Option<Vec<u8>>)> = loaded
        .config
        .mirror
        .additional_images
        .iter()
        .filter_map(|image| match &image.name {
            ImageSource::Registry(reference) => Some(reference.to_string()),
            _ => None,
        })
        .map(|name| {
            let raw = skopeo_raw(&[
                "--registries-conf",
                &registries_conf,
                "inspect",
                "--raw",
                &format!("docker://{name}"),
            ]);
            (name, raw)
        })
        .collect();
    drop(world);
    println!("\n== 4. disk to mirror, with every source registry stopped and a cache of its own");
    let mut arguments = strings(&["mirror", "-c", &config, "--from", &disk]);
    arguments.extend(strings(&["--dest-tls-verify=false", &enclave_destination]));
    if let Err(message) = expect(&folder, "enclave-cache", &arguments, 0, "disk to mirror") {
        return fail(message);
    }

    println!("\n== 5. the enclave registry, checked with skopeo");
    let mut checked = 0;
    for (name, raw) in &expected {
        let Some(raw) = raw else {
            println!("  {name}: skopeo is not installed or could not read the source; not checked");
            continue;
        };
        let path = name.split_once('/').map_or(name.as_str(), |(_, path)| path);
        let reference = format!("docker://{}/demo/{path}", enclave.host());
        match skopeo_raw(&["inspect", "--raw", "--tls-verify=false", &reference]) {
            Some(actual) if actual == *raw => {
                checked += 1;
                println!("  {reference}: byte-identical to {name}");
            }
            _ => return fail(format!("{reference} does not hold {name} byte for byte")),
        }
    }
    println!("\n== 6. the operator catalog: filtered, rebuilt, and its CatalogSource");
    let resources = folder.join("disk/working-dir/cluster-resources");
    let catalog_source = resources.join("cs-test-catalog-latest.yaml");
    match std::fs::read_to_string(&catalog_source) {
        Ok(text) => println!(
            "$DEMO/disk/working-dir/cluster-resources/cs-test-catalog-latest.yaml:\n{text}"
        ),
        Err(error) => {
            return fail(format!(
                "no CatalogSource for the catalog: {}: {error}",
                catalog_source.display()
            ));
        }
    }
    println!(
        "\nferry demo: done. {checked} of {} images checked in the enclave; cluster resources in {}",
        expected.len(),
        folder.join("disk/working-dir/cluster-resources").display()
    );
    ExitCode::SUCCESS
}
