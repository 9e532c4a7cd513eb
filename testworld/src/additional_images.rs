//! Additional images of the standard world: every manifest shape a mirror
//! meets (Docker schema2, OCI, Docker manifest list, OCI index) and a
//! cosign-style signature tag.

use serde_json::json;

use crate::content::Content;
use crate::image_builder::{Format, LayerFiles, add_artifact, add_image, add_index, add_layer};

/// Adds the additional images to `content`.
pub fn add_additional_images(content: &mut Content) {
    // A base layer per architecture, shared by every image below.
    let base = |content: &mut Content, architecture: &str, format: Format| {
        let files = LayerFiles::new()
            .file(
                "etc/os-release",
                format!("NAME=\"Ferry Linux\"\nARCH={architecture}\n"),
            )
            .random_file(
                "usr/lib/base.bin",
                24 * 1024,
                &format!("base-{architecture}"),
            );
        add_layer(content, &files, format, true)
    };

    // registry.redhat.io/ubi9/ubi:latest: a Docker manifest list over two
    // Docker schema2 images (also at registry.access.redhat.com).
    let mut ubi = Vec::new();
    for architecture in ["amd64", "arm64"] {
        let base_layer = base(content, architecture, Format::Docker);
        let own =
            LayerFiles::new().random_file("usr/bin/ubi", 8 * 1024, &format!("ubi-{architecture}"));
        let own_layer = add_layer(content, &own, Format::Docker, true);
        ubi.push(add_image(
            content,
            Format::Docker,
            architecture,
            &[("name", "ubi9"), ("version", "9.4")],
            &[base_layer, own_layer],
        ));
    }
    let ubi_list = add_index(content, Format::Docker, &ubi);
    content.place(
        "registry.redhat.io",
        "ubi9/ubi",
        &ubi_list.digest,
        &["latest", "9.4"],
    );
    // The same list where oc-mirror takes the graph image's base from
    // (registry.access.redhat.com/ubi9/ubi:latest, notes §5.5).
    content.place(
        "registry.access.redhat.com",
        "ubi9/ubi",
        &ubi_list.digest,
        &["latest"],
    );

    // registry.redhat.io/ubi9/ubi-minimal:9.4: an OCI index over two OCI images.
    let mut minimal = Vec::new();
    for architecture in ["amd64", "arm64"] {
        let base_layer = base(content, architecture, Format::Oci);
        let own = LayerFiles::new().random_file(
            "usr/bin/microdnf",
            6 * 1024,
            &format!("minimal-{architecture}"),
        );
        let own_layer = add_layer(content, &own, Format::Oci, true);
        minimal.push(add_image(
            content,
            Format::Oci,
            architecture,
            &[("name", "ubi9-minimal")],
            &[base_layer, own_layer],
        ));
    }
    let minimal_index = add_index(content, Format::Oci, &minimal);
    content.place(
        "registry.redhat.io",
        "ubi9/ubi-minimal",
        &minimal_index.digest,
        &["9.4"],
    );

    // quay.io/ferry-demo/hello:1.0: one Docker schema2 image.
    let base_layer = base(content, "amd64", Format::Docker);
    let hello_layer = add_layer(
        content,
        &LayerFiles::new().file("hello.txt", "hello from the ferry test world\n"),
        Format::Docker,
        true,
    );
    let hello = add_image(
        content,
        Format::Docker,
        "amd64",
        &[("app", "hello")],
        &[base_layer, hello_layer],
    );
    content.place(
        "quay.io",
        "ferry-demo/hello",
        &hello.manifest.digest,
        &["1.0", "latest"],
    );

    // quay.io/ferry-demo/hello-oci:1.0: one OCI image, uncompressed layer.
    let base_layer = base(content, "amd64", Format::Oci);
    let plain = add_layer(
        content,
        &LayerFiles::new().file("hello.txt", "hello, OCI\n"),
        Format::Oci,
        false,
    );
    let hello_oci = add_image(
        content,
        Format::Oci,
        "amd64",
        &[("app", "hello-oci")],
        &[base_layer, plain],
    );
    content.place(
        "quay.io",
        "ferry-demo/hello-oci",
        &hello_oci.manifest.digest,
        &["1.0"],
    );

    // quay.io/ferry-demo/signed:1.0 and its cosign signature tag.
    let base_layer = base(content, "amd64", Format::Oci);
    let signed_layer = add_layer(
        content,
        &LayerFiles::new().file("signed.txt", "this image carries a signature\n"),
        Format::Oci,
        true,
    );
    let signed = add_image(
        content,
        Format::Oci,
        "amd64",
        &[("app", "signed")],
        &[base_layer, signed_layer],
    );
    content.place(
        "quay.io",
        "ferry-demo/signed",
        &signed.manifest.digest,
        &["1.0"],
    );
    let payload = json!({
        "critical": {
            "identity": {"docker-reference": "quay.io/ferry-demo/signed"},
            "image": {"docker-manifest-digest": signed.manifest.digest},
            "type": "cosign container image signature"
        },
        "optional": null
    });
    let signature = add_artifact(
        content,
        (
            "application/vnd.oci.image.config.v1+json",
            br#"{"architecture":"","os":"","rootfs":{"type":"layers","diff_ids":[]},"config":{}}"#
                .to_vec(),
        ),
        &[(
            "application/vnd.dev.cosign.simplesigning.v1+json",
            serde_json::to_vec(&payload).expect("JSON into memory"),
            json!({"dev.cosignproject.cosign/signature": "MEUCIQDferrytestworldsignatureAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=="}),
        )],
    );
    let signature_tag = format!("{}.sig", signed.manifest.digest.replacen(':', "-", 1));
    content.place(
        "quay.io",
        "ferry-demo/signed",
        &signature.digest,
        &[&signature_tag],
    );

    // quay.io/ferry-demo/pinned: reachable by digest only (no tag).
    let base_layer = base(content, "amd64", Format::Oci);
    let pinned_layer = add_layer(
        content,
        &LayerFiles::new().file("pinned.txt", "pinned\n"),
        Format::Oci,
        true,
    );
    let pinned = add_image(
        content,
        Format::Oci,
        "amd64",
        &[("app", "pinned")],
        &[base_layer, pinned_layer],
    );
    content.place("quay.io", "ferry-demo/pinned", &pinned.manifest.digest, &[]);
}
