//! Helpers shared by the test world's integration tests: a small sample
//! [`Content`], skopeo invocations, and running closures in parallel.

#![allow(dead_code)]

use std::path::Path;
use std::process::{Command, Output};
use std::sync::Mutex;
use std::thread;

use ferry_testworld::content::Content;

pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";

fn image(content: &mut Content, media_type: &str, name: &str, architecture: &str) -> String {
    let (config_type, layer_type) = if media_type == OCI_MANIFEST {
        (
            "application/vnd.oci.image.config.v1+json",
            "application/vnd.oci.image.layer.v1.tar+gzip",
        )
    } else {
        (
            "application/vnd.docker.container.image.v1+json",
            "application/vnd.docker.image.rootfs.diff.tar.gzip",
        )
    };
    let layer = format!("layer of {name} {architecture}").into_bytes();
    let layer_size = layer.len();
    let layer_digest = content.add_blob(layer);
    let config = format!(
        r#"{{"architecture":"{architecture}","os":"linux","config":{{}},"rootfs":{{"type":"layers","diff_ids":["{layer_digest}"]}}}}"#
    )
    .into_bytes();
    let config_size = config.len();
    let config_digest = content.add_blob(config);
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"{media_type}","config":{{"mediaType":"{config_type}","digest":"{config_digest}","size":{config_size}}},"layers":[{{"mediaType":"{layer_type}","digest":"{layer_digest}","size":{layer_size}}}]}}"#
    );
    content.add_manifest(media_type, manifest.into_bytes())
}

fn index(content: &mut Content, media_type: &str, children: &[(String, &str)]) -> String {
    let child_type = if media_type == OCI_INDEX {
        OCI_MANIFEST
    } else {
        DOCKER_MANIFEST
    };
    let entries: Vec<String> = children
        .iter()
        .map(|(digest, architecture)| {
            let size = content.manifests[digest].bytes.len();
            format!(
                r#"{{"mediaType":"{child_type}","digest":"{digest}","size":{size},"platform":{{"architecture":"{architecture}","os":"linux"}}}}"#
            )
        })
        .collect();
    let bytes = format!(
        r#"{{"schemaVersion":2,"mediaType":"{media_type}","manifests":[{}]}}"#,
        entries.join(",")
    );
    content.add_manifest(media_type, bytes.into_bytes())
}

/// A small world: a docker image, an OCI image, a docker manifest list and
/// an OCI index, on two hosts, with tags and a digest-only placement.
pub fn sample_content() -> Content {
    let mut content = Content::default();
    let docker = image(&mut content, DOCKER_MANIFEST, "tools", "amd64");
    content.place("quay.io", "sample/tools", &docker, &["1.0", "latest"]);
    let oci = image(&mut content, OCI_MANIFEST, "oci-tools", "amd64");
    content.place("registry.redhat.io", "sample/oci-tools", &oci, &["v1"]);
    content.place("registry.redhat.io", "sample/oci-tools", &docker, &[]);
    let docker_children = [
        (
            image(&mut content, DOCKER_MANIFEST, "multi", "amd64"),
            "amd64",
        ),
        (
            image(&mut content, DOCKER_MANIFEST, "multi", "arm64"),
            "arm64",
        ),
    ];
    let list = index(&mut content, DOCKER_LIST, &docker_children);
    content.place("quay.io", "sample/multi", &list, &["4.15.0"]);
    let oci_children = [
        (
            image(&mut content, OCI_MANIFEST, "oci-multi", "amd64"),
            "amd64",
        ),
        (
            image(&mut content, OCI_MANIFEST, "oci-multi", "s390x"),
            "s390x",
        ),
    ];
    let oci_index = index(&mut content, OCI_INDEX, &oci_children);
    content.place("quay.io", "sample/oci-multi", &oci_index, &["stable"]);
    content
}

/// Runs `skopeo args...`.
pub fn skopeo(args: &[&str]) -> Output {
    Command::new("skopeo")
        .args(args)
        .output()
        .expect("skopeo runs (is the skopeo package installed?)")
}

/// Runs `skopeo args...` and returns stdout, panicking with stderr on failure.
pub fn skopeo_ok(args: &[&str]) -> Vec<u8> {
    let output = skopeo(args);
    assert!(
        output.status.success(),
        "skopeo {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}

/// `skopeo --registries-conf conf inspect --raw docker://reference`.
pub fn inspect_raw(registries_conf: &Path, reference: &str) -> Vec<u8> {
    let conf = registries_conf.to_str().unwrap();
    skopeo_ok(&[
        "--registries-conf",
        conf,
        "inspect",
        "--raw",
        &format!("docker://{reference}"),
    ])
}

/// Runs `check` on every item with a few threads; collects failures.
pub fn parallel<T: Sync>(items: &[T], check: impl Fn(&T) -> Result<(), String> + Sync) {
    let failures = Mutex::new(Vec::new());
    let next = Mutex::new(0usize);
    thread::scope(|scope| {
        for _ in 0..4 {
            scope.spawn(|| {
                loop {
                    let index = {
                        let mut next = next.lock().unwrap();
                        let index = *next;
                        *next += 1;
                        index
                    };
                    let Some(item) = items.get(index) else { break };
                    if let Err(failure) = check(item) {
                        failures.lock().unwrap().push(failure);
                    }
                }
            });
        }
    });
    let failures = failures.into_inner().unwrap();
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
