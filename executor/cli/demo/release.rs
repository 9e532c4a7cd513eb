//! `ferry demo`'s release step: one release of the test world
//! (`demo/release-imageset-config.yaml`: its payload and component images)
//! mirrored into the connected mirror with its signature verified, as for a
//! real OpenShift release, then the cluster resources written for it (the
//! IDMS and the release signature ConfigMap) shown and checked.
//!
//! The world's payloads are signed with a key made for the demo, the
//! signatures served on 127.0.0.1 and the public key exported: ferry is
//! pointed at them with `OCP_SIGNATURE_URL` and
//! `OCP_SIGNATURE_VERIFICATION_PK`, and at the world's update service with
//! `UPDATE_URL_OVERRIDE`, as an enclave user would point it at their own.

use std::path::Path;

use ferry_schemas::Digest;
use ferry_testworld::release_signatures::{ReleaseSigner, SignatureServer};
use ferry_testworld::releases::{RELEASE_HOST, RELEASE_REPOSITORY};
use ferry_testworld::world::World;

use super::{ferry_with, skopeo_raw, strings};

pub const CONFIG_FILE: &str = "release-imageset-config.yaml";
pub const CONFIG_TEXT: &str = include_str!("../../../demo/release-imageset-config.yaml");
/// The release `CONFIG_TEXT` selects (its channel, architecture and
/// version), and its tag at the mirror.
const CHANNEL: &str = "stable-4.16";
const ARCHITECTURE: &str = "amd64";
const VERSION: &str = "4.16.2";
const RELEASE_TAG: &str = "4.16.2-x86_64";
/// Lines of the shown files longer than this (base64 signatures) are cut.
const SHOWN_LINE: usize = 100;

/// Mirrors the release into `mirror_destination` (`docker://HOST/PREFIX`)
/// and checks what was written; an error says which check failed.
pub fn mirror_release(
    folder: &Path,
    world: &World,
    mirror_destination: &str,
) -> Result<(), String> {
    println!(
        "\n== 2. a release: mirror to mirror, its signature verified, its IDMS and signature ConfigMap"
    );
    println!("\n{CONFIG_FILE}:\n{CONFIG_TEXT}");
    let payload = payload_digest(world)?;
    let signer = ReleaseSigner::generate();
    let server = SignatureServer::start(signer.sign_graphs(world.graphs()))
        .map_err(|error| format!("the signature server did not start: {error}"))?;
    let key_file = folder.join("release-signing-key.asc");
    std::fs::write(&key_file, signer.public_keyring_armored())
        .map_err(|error| format!("cannot write {}: {error}", key_file.display()))?;
    println!(
        "  signatures        {} (every payload of the world, signed with a key made for this demo: $DEMO/release-signing-key.asc)",
        server.base_url()
    );

    let workspace = folder.join("release-workspace");
    let arguments = strings(&[
        "mirror",
        "-c",
        &folder.join(CONFIG_FILE).display().to_string(),
        "--registries-conf",
        &world.registries_conf().display().to_string(),
        "--workspace",
        &format!("file://{}", workspace.display()),
        "--dest-tls-verify=false",
        mirror_destination,
    ]);
    let environment = [
        ("UPDATE_URL_OVERRIDE", world.graph_url()),
        ("OCP_SIGNATURE_URL", server.base_url()),
        (
            "OCP_SIGNATURE_VERIFICATION_PK",
            key_file.display().to_string(),
        ),
    ];
    let code = ferry_with(folder, "cache", &arguments, &environment)?;
    if code != 0 {
        return Err(format!("mirror a release: ferry exited {code}, expected 0"));
    }

    let mirror = mirror_destination
        .strip_prefix("docker://")
        .unwrap_or(mirror_destination);
    let resources = workspace.join("working-dir/cluster-resources");
    let idms = show(folder, &resources.join("idms-oc-mirror.yaml"))?;
    let mirrored = format!(
        "    - {mirror}/openshift/release-images\n    source: {RELEASE_HOST}/{RELEASE_REPOSITORY}\n"
    );
    if !idms.contains("kind: ImageDigestMirrorSet") || !idms.contains(&mirrored) {
        return Err(format!(
            "the IDMS does not mirror {RELEASE_HOST}/{RELEASE_REPOSITORY} to {mirror}/openshift/release-images"
        ));
    }
    let config_map = show(folder, &resources.join("signature-configmap.yaml"))?;
    let key = format!("sha256-{}-1", payload.hex());
    if !config_map.contains("kind: ConfigMap") || !config_map.contains(&key) {
        return Err(format!(
            "the signature ConfigMap has no signature {key} for the payload {payload}"
        ));
    }
    // The payload at the mirror, by its tag: the very manifest the
    // signature names.
    let reference = format!("docker://{mirror}/openshift/release-images:{RELEASE_TAG}");
    match skopeo_raw(&["inspect", "--raw", "--tls-verify=false", &reference]) {
        Some(raw) if Digest::sha256_of(&raw) == payload => {
            println!("  {reference}: the signed payload {payload}");
        }
        Some(raw) => {
            return Err(format!(
                "{reference} is {}, the signed payload is {payload}",
                Digest::sha256_of(&raw)
            ));
        }
        None => {
            println!("  {reference}: skopeo is not installed or could not read it; not checked")
        }
    }
    Ok(())
}

/// The payload of the demo's release in the world's update graph.
fn payload_digest(world: &World) -> Result<Digest, String> {
    let missing = || format!("the world's graph {CHANNEL}/{ARCHITECTURE} has no release {VERSION}");
    let graph = world
        .graphs()
        .get(&(CHANNEL.to_owned(), ARCHITECTURE.to_owned()))
        .ok_or_else(missing)?;
    let graph: serde_json::Value =
        serde_json::from_str(graph).map_err(|error| error.to_string())?;
    graph["nodes"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|node| node["version"] == VERSION)
        .and_then(|node| node["payload"].as_str())
        .and_then(|payload| payload.rsplit_once('@'))
        .and_then(|(_, digest)| digest.parse().ok())
        .ok_or_else(missing)
}

/// Prints a file the run wrote (long lines cut) and returns its text.
fn show(folder: &Path, path: &Path) -> Result<String, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|error| format!("ferry did not write {}: {error}", path.display()))?;
    let shown = path
        .display()
        .to_string()
        .replace(&folder.display().to_string(), "$DEMO");
    println!("\n{shown}:");
    for line in text.lines() {
        if line.chars().count() > SHOWN_LINE {
            let cut: String = line.chars().take(SHOWN_LINE).collect();
            println!("{cut}... ({} characters)", line.chars().count());
        } else {
            println!("{line}");
        }
    }
    Ok(text)
}
