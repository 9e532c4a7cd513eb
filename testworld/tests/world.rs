//! The standard world, served: every placement, every reference named
//! inside release payloads and catalogs, and every update-graph payload
//! resolve through the generated `registries.conf` with skopeo; the cache is
//! built once by concurrent builders and fast.

mod common;

use std::collections::BTreeSet;
use std::fs;
use std::io::Read;
use std::path::Path;
use std::sync::Barrier;
use std::thread;
use std::time::Instant;

use ferry_testworld::content::Content;
use ferry_testworld::http::{self, Transport};
use ferry_testworld::registry::Flavour;
use ferry_testworld::world::{self, World};

use common::{inspect_raw, parallel, sample_content, skopeo, skopeo_ok};

fn conf(world: &World) -> &str {
    world.registries_conf().to_str().unwrap()
}

#[test]
fn every_placement_resolves_byte_identically_through_registries_conf() {
    let world = World::start().unwrap();
    let content = world.content();
    assert!(
        !content.placements.is_empty(),
        "the standard world is empty"
    );
    let mut checks: BTreeSet<(String, String)> = BTreeSet::new();
    for placement in &content.placements {
        let name = format!("{}/{}", placement.host, placement.repository);
        checks.insert((
            format!("{name}@{}", placement.digest),
            placement.digest.clone(),
        ));
        for tag in &placement.tags {
            checks.insert((format!("{name}:{tag}"), placement.digest.clone()));
        }
    }
    let checks: Vec<_> = checks.into_iter().collect();
    eprintln!("checking {} references of placements", checks.len());
    parallel(&checks, |(reference, digest)| {
        let raw = inspect_raw(world.registries_conf(), reference);
        if raw == content.manifests[digest].bytes {
            Ok(())
        } else {
            Err(format!("{reference}: bytes differ from {digest}"))
        }
    });
}

#[test]
fn every_published_reference_line_resolves() {
    let world = World::start().unwrap();
    let lines = world::standard_reference_lines().unwrap();
    // Child manifests of indexes, by digest: the lines `host/repo@digest`
    // that no placement names directly.
    let placed: BTreeSet<&str> = world
        .content()
        .placements
        .iter()
        .map(|placement| placement.digest.as_str())
        .collect();
    let children: Vec<(String, String)> = lines
        .iter()
        .filter(|line| !line.contains(' '))
        .filter_map(|line| line.split_once('@'))
        .filter(|(_, digest)| !placed.contains(digest))
        .map(|(name, digest)| (format!("{name}@{digest}"), digest.to_owned()))
        .collect();
    parallel(&children, |(reference, digest)| {
        let raw = inspect_raw(world.registries_conf(), reference);
        if raw == world.content().manifests[digest].bytes {
            Ok(())
        } else {
            Err(format!("{reference}: bytes differ"))
        }
    });
}

/// Image manifests (by reference) whose layers hold a release payload's
/// `image-references` or a catalog's `configs/`.
fn payload_and_catalog_images(content: &Content) -> Vec<String> {
    let mut images = BTreeSet::new();
    for placement in &content.placements {
        let name = format!("{}/{}", placement.host, placement.repository);
        let mut digests = vec![placement.digest.clone()];
        while let Some(digest) = digests.pop() {
            let manifest = &content.manifests[&digest];
            let value: serde_json::Value = serde_json::from_slice(&manifest.bytes).unwrap();
            if let Some(children) = value["manifests"].as_array() {
                digests.extend(
                    children
                        .iter()
                        .map(|c| c["digest"].as_str().unwrap().to_owned()),
                );
                continue;
            }
            let Some(config_digest) = value["config"]["digest"].as_str() else {
                continue;
            };
            let config: serde_json::Value =
                serde_json::from_slice(&content.blobs[config_digest]).unwrap_or_default();
            let labels = &config["config"]["Labels"];
            let is_catalog = labels
                .get("operators.operatorframework.io.index.configs.v1")
                .is_some();
            let is_payload = placement.repository.ends_with("ocp-release");
            if is_catalog || is_payload {
                images.insert(format!("{name}@{digest}"));
            }
        }
    }
    images.into_iter().collect()
}

/// Pulls `reference` with skopeo into a `dir:` layout and returns the files
/// of its layers as (path, bytes).
fn pull_files(registries_conf: &Path, reference: &str) -> Vec<(String, Vec<u8>)> {
    let directory = tempfile::tempdir().unwrap();
    skopeo_ok(&[
        "--registries-conf",
        registries_conf.to_str().unwrap(),
        "copy",
        "--quiet",
        &format!("docker://{reference}"),
        &format!("dir:{}", directory.path().display()),
    ]);
    let manifest: serde_json::Value =
        serde_json::from_slice(&fs::read(directory.path().join("manifest.json")).unwrap()).unwrap();
    let mut files = Vec::new();
    for layer in manifest["layers"].as_array().unwrap() {
        let digest = layer["digest"].as_str().unwrap();
        let bytes = fs::read(directory.path().join(digest.trim_start_matches("sha256:"))).unwrap();
        let tar_bytes = if bytes.starts_with(&[0x1f, 0x8b]) {
            let mut output = Vec::new();
            flate2::read::GzDecoder::new(bytes.as_slice())
                .read_to_end(&mut output)
                .unwrap();
            output
        } else {
            bytes
        };
        let mut archive = tar::Archive::new(tar_bytes.as_slice());
        for entry in archive.entries().unwrap() {
            let mut entry = entry.unwrap();
            if entry.header().entry_type().is_file() {
                let path = entry.path().unwrap().to_string_lossy().into_owned();
                let mut data = Vec::new();
                entry.read_to_end(&mut data).unwrap();
                files.push((path.trim_start_matches("./").to_owned(), data));
            }
        }
    }
    files
}

/// Image references named by payload `image-references` and catalog
/// `configs/**/catalog.json|index.yaml|catalog.yaml` files.
fn named_references(files: &[(String, Vec<u8>)]) -> Vec<String> {
    let mut references = Vec::new();
    let from_object = |references: &mut Vec<String>, object: &serde_json::Value| {
        if object["schema"] == "olm.bundle"
            && let Some(image) = object["image"].as_str()
        {
            references.push(image.to_owned());
        }
        for related in object["relatedImages"].as_array().into_iter().flatten() {
            if let Some(image) = related["image"].as_str() {
                references.push(image.to_owned());
            }
        }
    };
    for (path, data) in files {
        if path.ends_with("release-manifests/image-references") {
            let stream: serde_json::Value = serde_json::from_slice(data).unwrap();
            for tag in stream["spec"]["tags"].as_array().unwrap() {
                let name = tag["from"]["name"].as_str().unwrap().to_owned();
                references.push(name);
            }
        } else if path.starts_with("configs/") && path.ends_with(".json") {
            for object in
                serde_json::Deserializer::from_slice(data).into_iter::<serde_json::Value>()
            {
                from_object(&mut references, &object.unwrap());
            }
        } else if path.starts_with("configs/") && path.ends_with(".yaml") {
            let text = String::from_utf8_lossy(data);
            for document in serde_yaml::Deserializer::from_str(&text) {
                let value: serde_json::Value = serde::Deserialize::deserialize(document).unwrap();
                from_object(&mut references, &value);
            }
        }
    }
    references
}

#[test]
fn references_inside_payloads_and_catalogs_resolve() {
    let world = World::start().unwrap();
    let images = payload_and_catalog_images(world.content());
    assert!(
        images.iter().any(|image| image.contains("ocp-release")),
        "no release payload found: {images:?}"
    );
    assert!(images.len() >= 2, "no catalog found: {images:?}");
    let named = std::sync::Mutex::new(BTreeSet::new());
    parallel(&images, |image| {
        let files = pull_files(world.registries_conf(), image);
        let references = named_references(&files);
        if references.is_empty() {
            return Err(format!("{image} names no image"));
        }
        named.lock().unwrap().extend(references);
        Ok(())
    });
    let named: Vec<String> = named.into_inner().unwrap().into_iter().collect();
    eprintln!(
        "{} payload and catalog images name {} distinct references",
        images.len(),
        named.len()
    );
    parallel(&named, |reference| {
        let output = skopeo(&[
            "--registries-conf",
            conf(&world),
            "inspect",
            "--raw",
            &format!("docker://{reference}"),
        ]);
        if output.status.success() {
            Ok(())
        } else {
            Err(format!(
                "{reference}: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            ))
        }
    });
}

#[test]
fn graph_server_answers_every_channel_and_its_payloads_resolve() {
    let world = World::start().unwrap();
    let graphs = world.graphs();
    assert!(!graphs.is_empty(), "the standard world has no graphs");
    let address = world.graph_server().address();
    assert!(world.graph_url().starts_with("http://127.0.0.1:"));
    let mut payloads = BTreeSet::new();
    for ((channel, arch), body) in graphs {
        for path in [
            "/graph",
            "/api/upgrades_info/v1/graph",
            "/api/upgrades_info/graph",
        ] {
            let response = http::get(
                address,
                &format!("{path}?channel={channel}&arch={arch}"),
                Transport::Plain,
                None,
            )
            .unwrap();
            assert_eq!(response.status, 200, "{channel} {arch} {path}");
            assert_eq!(response.header("content-type"), Some("application/json"));
            assert_eq!(&response.text(), body);
        }
        let graph: serde_json::Value = serde_json::from_str(body).unwrap();
        for node in graph["nodes"].as_array().unwrap() {
            payloads.insert(node["payload"].as_str().unwrap().to_owned());
        }
    }
    let unknown = http::get(
        address,
        "/graph?channel=nope-9.99&arch=amd64",
        Transport::Plain,
        None,
    )
    .unwrap();
    assert_eq!(unknown.status, 404);
    let error: serde_json::Value = serde_json::from_slice(&unknown.body).unwrap();
    assert!(
        error["kind"].is_string() && error["value"].is_string(),
        "{error}"
    );
    let missing = http::get(address, "/graph?arch=amd64", Transport::Plain, None).unwrap();
    assert_eq!(missing.status, 400);
    let payloads: Vec<String> = payloads.into_iter().collect();
    assert!(!payloads.is_empty());
    parallel(&payloads, |payload| {
        let digest = payload.split_once('@').map(|(_, digest)| digest).unwrap();
        let raw = inspect_raw(world.registries_conf(), payload);
        if raw == world.content().manifests[digest].bytes {
            Ok(())
        } else {
            Err(format!("{payload}: bytes differ"))
        }
    });
}

#[test]
fn every_flavour_serves_the_world_and_a_wrong_password_fails() {
    let world = World::start().unwrap();
    let placement = world
        .content()
        .placements
        .iter()
        .find(|placement| placement.repository.ends_with("ocp-release"))
        .unwrap();
    let expected = &world.content().manifests[&placement.digest].bytes;
    let path = format!(
        "{}/{}@{}",
        placement.host, placement.repository, placement.digest
    );
    let plain = world.registry();
    assert_eq!(
        &skopeo_ok(&[
            "inspect",
            "--raw",
            "--tls-verify=false",
            &format!("docker://{}/{path}", plain.host())
        ]),
        expected
    );
    let tls = world.start_registry(Flavour::Tls).unwrap();
    let cert_dir = format!("--cert-dir={}", tls.cert_dir().unwrap().display());
    assert_eq!(
        &skopeo_ok(&[
            "inspect",
            "--raw",
            &cert_dir,
            &format!("docker://{}/{path}", tls.host())
        ]),
        expected
    );
    let auth = world.start_registry(Flavour::BasicAuthTls).unwrap();
    let cert_dir = format!("--cert-dir={}", auth.cert_dir().unwrap().display());
    let image = format!("docker://{}/{path}", auth.host());
    let credentials = auth.credentials().unwrap();
    assert_eq!(
        &skopeo_ok(&[
            "inspect",
            "--raw",
            &cert_dir,
            &format!("--creds={}", credentials.joined()),
            &image
        ]),
        expected
    );
    let wrong = skopeo(&[
        "inspect",
        "--raw",
        &cert_dir,
        &format!("--creds={}:wrong", credentials.user),
        &image,
    ]);
    assert!(!wrong.status.success());
}

#[test]
fn descriptor_and_registries_conf_describe_the_running_world() {
    let world = World::start().unwrap();
    let descriptor = world::WorldDescriptor::read(world.descriptor_path()).unwrap();
    assert_eq!(&descriptor, world.descriptor());
    assert_eq!(descriptor.graph_url, world.graph_url());
    assert_eq!(
        descriptor.registries["plain"].address,
        world.registry().host()
    );
    let text = fs::read_to_string(world.registries_conf()).unwrap();
    for placement in &world.content().placements {
        assert!(
            text.contains(&format!(
                "prefix = \"{host}\"\nlocation = \"{}/{host}\"",
                world.registry().host(),
                host = placement.host
            )),
            "{} is not remapped",
            placement.host
        );
    }
    assert!(!text.contains("location = \"quay.io"), "{text}");
}

#[test]
fn concurrent_builders_build_a_world_once() {
    let content = sample_content();
    let cache = tempfile::tempdir().unwrap();
    let barrier = Barrier::new(4);
    let results: Vec<_> = thread::scope(|scope| {
        let handles: Vec<_> = (0..4)
            .map(|_| {
                scope.spawn(|| {
                    barrier.wait();
                    world::published_storage(&content, cache.path()).unwrap()
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|handle| handle.join().unwrap())
            .collect()
    });
    assert_eq!(results.iter().filter(|result| result.built_now).count(), 1);
    assert!(results.iter().all(|result| result.root == results[0].root));
    let leftovers: Vec<_> = fs::read_dir(cache.path())
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with(".build"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn standard_world_builds_cold_within_30_seconds() {
    let cache = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let standard = ferry_testworld::standard::standard_world();
    let generated = started.elapsed();
    let cold = world::published_storage(&standard.content, cache.path()).unwrap();
    let total = started.elapsed();
    let warm = world::published_storage(&standard.content, cache.path()).unwrap();
    println!(
        "standard world: generated in {generated:?}, published cold in {:?} (total {total:?}), found warm in {:?}",
        cold.elapsed, warm.elapsed
    );
    assert!(cold.built_now && !warm.built_now);
    let starting = Instant::now();
    let world = World::start().unwrap();
    println!(
        "World::start (storage cached): {:?}, serving {} placements",
        starting.elapsed(),
        world.content().placements.len()
    );
    assert!(
        total.as_secs() < 30,
        "the standard world took {total:?} to build"
    );
}
