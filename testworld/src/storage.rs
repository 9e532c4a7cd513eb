//! Publishing a [`Content`] straight into distribution's filesystem storage
//! layout, without a running registry (fast and deterministic):
//!
//! ```text
//! <root>/docker/registry/v2/blobs/sha256/<hex[0..2]>/<hex>/data           every blob and manifest
//! <root>/docker/registry/v2/repositories/<repo>/_layers/sha256/<hex>/link  configs and layers the repo's manifests use
//!     .../_manifests/revisions/sha256/<hex>/link                          every manifest of the repo, children of indexes too
//!     .../_manifests/tags/<tag>/current/link
//!     .../_manifests/tags/<tag>/index/sha256/<hex>/link
//! ```
//!
//! Each link file holds `sha256:<hex>`. Repository names are
//! `<host>/<repository>` (e.g. `quay.io/openshift-release-dev/ocp-release`),
//! so one registry serves every public host; a `registries.conf` maps
//! `quay.io` to `127.0.0.1:PORT/quay.io`.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

use crate::content::{Content, Placement};
use crate::error::{Context, Error, Result};

/// Counts of what [`publish`] wrote.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PublishSummary {
    pub blobs: usize,
    pub manifests: usize,
    pub repositories: usize,
    pub tags: usize,
}

/// What one repository holds once published.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RepositoryContents {
    /// Every manifest digest (top manifests and children of indexes).
    pub manifests: BTreeSet<String>,
    /// Every blob digest the manifests reference (configs and layers).
    pub blobs: BTreeSet<String>,
    /// Tag → manifest digest.
    pub tags: BTreeMap<String, String>,
}

/// The storage name of a placement's repository: `<host>/<repository>`.
pub fn repository_name(placement: &Placement) -> String {
    format!("{}/{}", placement.host, placement.repository)
}

/// Works out every repository's manifests, blobs and tags, checking that
/// every digest a manifest references is in the content and that no tag is
/// placed twice with different digests.
pub fn plan_repositories(content: &Content) -> Result<BTreeMap<String, RepositoryContents>> {
    let mut repositories: BTreeMap<String, RepositoryContents> = BTreeMap::new();
    for placement in &content.placements {
        let name = repository_name(placement);
        let repository = repositories.entry(name.clone()).or_default();
        collect_manifest(content, &placement.digest, repository, 0)
            .context(|| format!("placing {} at {name}", placement.digest))?;
        for tag in &placement.tags {
            match repository.tags.get(tag) {
                Some(existing) if existing != &placement.digest => {
                    return Err(Error::new(format!(
                        "tag {name}:{tag} is placed twice: {existing} and {}",
                        placement.digest
                    )));
                }
                _ => {
                    repository
                        .tags
                        .insert(tag.clone(), placement.digest.clone());
                }
            }
        }
    }
    Ok(repositories)
}

fn collect_manifest(
    content: &Content,
    digest: &str,
    repository: &mut RepositoryContents,
    depth: usize,
) -> Result<()> {
    if depth > 8 {
        return Err(Error::new(format!("manifest {digest} nests too deep")));
    }
    if !repository.manifests.insert(digest.to_owned()) {
        return Ok(());
    }
    let manifest = content
        .manifests
        .get(digest)
        .ok_or_else(|| Error::new(format!("manifest {digest} is not in the content")))?;
    let references = manifest_references(&manifest.bytes)
        .context(|| format!("reading manifest {digest} ({})", manifest.media_type))?;
    for child in references.manifests {
        collect_manifest(content, &child, repository, depth + 1)
            .context(|| format!("child of index {digest}"))?;
    }
    for blob in references.blobs {
        if !content.blobs.contains_key(&blob) {
            return Err(Error::new(format!(
                "blob {blob} referenced by manifest {digest} is not in the content"
            )));
        }
        repository.blobs.insert(blob);
    }
    Ok(())
}

/// Digests a manifest refers to.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ManifestReferences {
    /// Children of an index or manifest list.
    pub manifests: Vec<String>,
    /// Config and layers of an image manifest.
    pub blobs: Vec<String>,
}

/// The children (index/list) or config and layers (image) of a manifest.
pub fn manifest_references(bytes: &[u8]) -> Result<ManifestReferences> {
    let value: serde_json::Value =
        serde_json::from_slice(bytes).context(|| "parsing manifest JSON".to_owned())?;
    let digest_of = |descriptor: &serde_json::Value| -> Result<String> {
        descriptor
            .get("digest")
            .and_then(|digest| digest.as_str())
            .map(str::to_owned)
            .ok_or_else(|| Error::new("descriptor without a digest"))
    };
    let mut references = ManifestReferences::default();
    if let Some(children) = value.get("manifests").and_then(|m| m.as_array()) {
        for child in children {
            references.manifests.push(digest_of(child)?);
        }
    }
    if let Some(config) = value.get("config") {
        references.blobs.push(digest_of(config)?);
    }
    if let Some(layers) = value.get("layers").and_then(|l| l.as_array()) {
        for layer in layers {
            references.blobs.push(digest_of(layer)?);
        }
    }
    Ok(references)
}

/// Writes `content` into the storage layout under `root` (created if
/// missing). Blobs and manifests go to the blob store once each; each
/// repository gets links for what its placements reach.
pub fn publish(content: &Content, root: &Path) -> Result<PublishSummary> {
    let repositories = plan_repositories(content)?;
    let v2 = root.join("docker/registry/v2");
    let mut written_blobs = BTreeSet::new();
    for (digest, bytes) in &content.blobs {
        write_blob(&v2, digest, bytes)?;
        written_blobs.insert(digest.as_str());
    }
    for (digest, manifest) in &content.manifests {
        if !written_blobs.contains(digest.as_str()) {
            write_blob(&v2, digest, &manifest.bytes)?;
        }
    }
    let mut summary = PublishSummary {
        blobs: content.blobs.len(),
        manifests: content.manifests.len(),
        repositories: repositories.len(),
        tags: 0,
    };
    for (name, repository) in &repositories {
        let base = v2.join("repositories").join(name);
        for blob in &repository.blobs {
            write_link(&base.join("_layers").join(digest_path(blob)?), blob)?;
        }
        for manifest in &repository.manifests {
            write_link(
                &base
                    .join("_manifests/revisions")
                    .join(digest_path(manifest)?),
                manifest,
            )?;
        }
        for (tag, digest) in &repository.tags {
            let tag_directory = base.join("_manifests/tags").join(tag);
            write_link(&tag_directory.join("current"), digest)?;
            write_link(
                &tag_directory.join("index").join(digest_path(digest)?),
                digest,
            )?;
            summary.tags += 1;
        }
    }
    Ok(summary)
}

/// `sha256/<hex>` for `sha256:<hex>`.
fn digest_path(digest: &str) -> Result<PathBuf> {
    let hex = digest_hex(digest)?;
    Ok(Path::new("sha256").join(hex))
}

fn digest_hex(digest: &str) -> Result<&str> {
    let hex = digest
        .strip_prefix("sha256:")
        .ok_or_else(|| Error::new(format!("digest {digest} is not sha256")))?;
    if hex.len() != 64 || !hex.bytes().all(|byte| byte.is_ascii_hexdigit()) {
        return Err(Error::new(format!("digest {digest} is malformed")));
    }
    Ok(hex)
}

/// Where distribution keeps a blob's bytes.
pub fn blob_data_path(root: &Path, digest: &str) -> Result<PathBuf> {
    let hex = digest_hex(digest)?;
    Ok(root
        .join("docker/registry/v2/blobs/sha256")
        .join(&hex[..2])
        .join(hex)
        .join("data"))
}

fn write_blob(v2: &Path, digest: &str, bytes: &[u8]) -> Result<()> {
    let hex = digest_hex(digest)?;
    let directory = v2.join("blobs/sha256").join(&hex[..2]).join(hex);
    fs::create_dir_all(&directory)
        .context(|| format!("creating blob directory {}", directory.display()))?;
    let path = directory.join("data");
    fs::write(&path, bytes).context(|| format!("writing blob {}", path.display()))
}

/// Writes `<directory>/link` holding `digest`.
fn write_link(directory: &Path, digest: &str) -> Result<()> {
    fs::create_dir_all(directory)
        .context(|| format!("creating link directory {}", directory.display()))?;
    let path = directory.join("link");
    fs::write(&path, digest).context(|| format!("writing link {}", path.display()))
}

/// Every published reference, sorted: `host/repo:tag digest` for each tag
/// and `host/repo@digest` for each manifest (children of indexes too).
pub fn reference_lines(content: &Content) -> Result<Vec<String>> {
    let repositories = plan_repositories(content)?;
    let mut lines = Vec::new();
    for (name, repository) in &repositories {
        for (tag, digest) in &repository.tags {
            lines.push(format!("{name}:{tag} {digest}"));
        }
        for digest in &repository.manifests {
            lines.push(format!("{name}@{digest}"));
        }
    }
    lines.sort();
    Ok(lines)
}

#[cfg(test)]
mod tests {
    use super::*;

    const IMAGE: &str = "application/vnd.oci.image.manifest.v1+json";
    const INDEX: &str = "application/vnd.oci.image.index.v1+json";

    fn image(content: &mut Content, name: &str) -> String {
        let config = content.add_blob(format!("config {name}").into_bytes());
        let layer = content.add_blob(format!("layer {name}").into_bytes());
        let manifest = format!(
            r#"{{"schemaVersion":2,"mediaType":"{IMAGE}","config":{{"digest":"{config}","size":1}},"layers":[{{"digest":"{layer}","size":1}}]}}"#
        );
        content.add_manifest(IMAGE, manifest.into_bytes())
    }

    fn read(path: PathBuf) -> String {
        fs::read_to_string(&path).unwrap_or_else(|error| panic!("{}: {error}", path.display()))
    }

    #[test]
    fn links_blobs_revisions_and_tags_per_repository() {
        let mut content = Content::default();
        let child = image(&mut content, "a");
        let index = content.add_manifest(
            INDEX,
            format!(
                r#"{{"schemaVersion":2,"mediaType":"{INDEX}","manifests":[{{"digest":"{child}","size":1}}]}}"#
            )
            .into_bytes(),
        );
        content.place("quay.io", "org/app", &index, &["v1"]);
        let root = tempfile::tempdir().unwrap();
        let summary = publish(&content, root.path()).unwrap();
        assert_eq!(summary.repositories, 1);
        assert_eq!(summary.tags, 1);
        let repository = root
            .path()
            .join("docker/registry/v2/repositories/quay.io/org/app");
        let hex = |digest: &str| digest.trim_start_matches("sha256:").to_owned();
        for manifest in [&index, &child] {
            let link = repository
                .join("_manifests/revisions/sha256")
                .join(hex(manifest))
                .join("link");
            assert_eq!(&read(link), manifest);
            assert!(blob_data_path(root.path(), manifest).unwrap().is_file());
        }
        for blob in content.blobs.keys() {
            let link = repository
                .join("_layers/sha256")
                .join(hex(blob))
                .join("link");
            assert_eq!(&read(link), blob);
            assert_eq!(
                fs::read(blob_data_path(root.path(), blob).unwrap()).unwrap(),
                content.blobs[blob]
            );
        }
        let tag = repository.join("_manifests/tags/v1");
        assert_eq!(read(tag.join("current/link")), index);
        assert_eq!(
            read(tag.join("index/sha256").join(hex(&index)).join("link")),
            index
        );
        assert_eq!(
            reference_lines(&content).unwrap(),
            [
                format!("quay.io/org/app:v1 {index}"),
                format!("quay.io/org/app@{child}"),
                format!("quay.io/org/app@{index}"),
            ]
            .into_iter()
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect::<Vec<_>>()
        );
    }

    #[test]
    fn a_missing_blob_or_a_tag_placed_twice_is_refused() {
        let mut content = Content::default();
        let first = image(&mut content, "a");
        let second = image(&mut content, "b");
        content.place("quay.io", "org/app", &first, &["v1"]);
        content.place("quay.io", "org/app", &second, &["v1"]);
        let error = plan_repositories(&content).unwrap_err();
        assert!(error.message().contains("placed twice"), "{error}");

        let mut content = Content::default();
        let digest = image(&mut content, "a");
        content.blobs.clear();
        content.place("quay.io", "org/app", &digest, &[]);
        let error = plan_repositories(&content).unwrap_err();
        assert!(error.message().contains("is not in the content"), "{error}");
    }
}
