//! Where releases go at a destination (notes §4.5): the payload at
//! `<destination>/openshift/release-images:<release tag>`, each component at
//! `<destination>/openshift/release:<release tag>-<component name>`, the
//! graph-data image at `<destination>/openshift/graph-image:latest`. The
//! release tag is the tag of the payload's signature identity (e.g.
//! `4.18.1-x86_64`), or the digest's hex when it has no tag.

use ferry_schemas::ImageReference;
use ferry_schemas::reference::ReferenceError;

/// Repository of release payloads below the destination.
pub const RELEASE_IMAGES_REPOSITORY: &str = "openshift/release-images";
/// Repository of release components below the destination.
pub const RELEASE_REPOSITORY: &str = "openshift/release";
/// Repository of the graph-data image below the destination.
pub const GRAPH_IMAGE_REPOSITORY: &str = "openshift/graph-image";

/// The release tag of a payload named by `identity`: its tag, else the
/// hex of its digest; `None` when it has neither.
pub fn release_tag(identity: &ImageReference) -> Option<String> {
    identity
        .tag()
        .map(str::to_owned)
        .or_else(|| identity.digest().map(|digest| digest.hex().to_owned()))
}

fn at(destination: &str, repository: &str, tag: &str) -> Result<ImageReference, ReferenceError> {
    let destination = destination.strip_prefix("docker://").unwrap_or(destination);
    let destination = destination.trim_end_matches('/');
    format!("{destination}/{repository}:{tag}").parse()
}

/// `<destination>/openshift/release-images:<release tag>`.
pub fn payload_destination(
    destination: &str,
    release_tag: &str,
) -> Result<ImageReference, ReferenceError> {
    at(destination, RELEASE_IMAGES_REPOSITORY, release_tag)
}

/// `<destination>/openshift/release:<release tag>-<component>`.
pub fn component_destination(
    destination: &str,
    release_tag: &str,
    component: &str,
) -> Result<ImageReference, ReferenceError> {
    at(
        destination,
        RELEASE_REPOSITORY,
        &format!("{release_tag}-{component}"),
    )
}

/// The KubeVirt container disk: a component named `kube-virt-container`,
/// with the stream architecture (`-x86_64`, `-s390x`) appended when the
/// configuration mirrors more than one architecture.
pub fn kube_virt_destination(
    destination: &str,
    release_tag: &str,
    architecture_suffix: Option<&str>,
) -> Result<ImageReference, ReferenceError> {
    let component = match architecture_suffix {
        Some(suffix) => format!("{}-{suffix}", crate::release::payload::KUBE_VIRT_CONTAINER),
        None => crate::release::payload::KUBE_VIRT_CONTAINER.to_owned(),
    };
    component_destination(destination, release_tag, &component)
}

/// `<destination>/openshift/graph-image:latest`.
pub fn graph_image_destination(destination: &str) -> Result<ImageReference, ReferenceError> {
    at(destination, GRAPH_IMAGE_REPOSITORY, "latest")
}
