//! The publish stage: every file a run leaves for people and clusters, for
//! every mode, written in one place.
//!
//! - Cluster resources (`working-dir/cluster-resources/`): users apply the
//!   whole folder with `oc apply -f`, so a file ferry wrote earlier whose
//!   content left the image set is removed. A file is ferry's when it
//!   carries the `createdBy: ferry` annotation; any other file in the
//!   folder is the user's and is never touched. The release signature
//!   ConfigMap (`signature-configmap.{json,yaml}`) has its own writer, fed
//!   the verified signatures (`crate::release_signature`), and so has the
//!   UpdateService (`updateService.yaml`, written while the graph image is
//!   in the image set).
//! - The errors file of a run with failed images.
//! - The files of a dry run (the folder is emptied first, so no file of an
//!   earlier dry run is left to mislead), and their `mapping.txt` lines:
//!   oc-mirror's `SOURCE=DESTINATION`, both sides with their transport
//!   prefix. An image in a delivery is `file://DIR:REF`, REF being its
//!   name in the delivery's `index.json` (`org.opencontainers.image.ref.name`).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use ferry_content::release::signature_config_map::{
    Annotations, JSON_FILE_NAME, PayloadSignature, YAML_FILE_NAME, signature_config_map,
};

use crate::cluster_resources::{
    MirroredImage, UPDATE_SERVICE_FILE, catalog_resources, generate, rfc3339, update_service,
};
use crate::release_signature::ReleaseSignature;
use crate::workflow::error::{Result, WorkflowError};
use crate::workflow::workspace::Workspace;

/// The annotation every cluster resource ferry writes carries.
const OWNER_MARK: &str = "createdBy: ferry";

/// What publishing changed on disk.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Published {
    pub written: Vec<PathBuf>,
    /// Files of ours whose content left the image set.
    pub removed: Vec<PathBuf>,
}

/// Writes `text` to `path` whole ([`crate::atomic_file`]): an interrupted
/// run leaves the old file or the new one, never half of one.
fn write(path: &Path, text: &str) -> Result<()> {
    crate::atomic_file::write(path, text.as_bytes()).map_err(|cause| {
        WorkflowError::environment(format!("cannot write {}: {cause}", path.display()))
    })
}

/// `createdAt` of cluster resources: `SOURCE_DATE_EPOCH` when set (for
/// reproducible output), else now.
pub fn creation_time() -> i64 {
    std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|text| text.trim().parse::<i64>().ok())
        .unwrap_or_else(|| time::OffsetDateTime::now_utc().unix_timestamp())
}

/// A catalog present at the destination: `registry`, `repository`, `tag`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MirroredCatalog {
    pub registry: String,
    pub repository: String,
    pub tag: String,
    /// The checked `targetCatalogSourceTemplate` text, if any.
    pub template: Option<String>,
}

/// Writes the cluster resources for `images` (the image set present at the
/// destination, catalogs left out) and the CatalogSource and ClusterCatalog
/// of each of `catalogs`, and removes ferry's files that no longer apply.
pub fn cluster_resources(
    workspace: &Workspace,
    images: &[MirroredImage],
    catalogs: &[MirroredCatalog],
    repository_scope: bool,
    created_at: i64,
) -> Result<Published> {
    let resources = generate(images, repository_scope, created_at);
    let folder = workspace.cluster_resources();
    let mut published = Published::default();
    let mut current = BTreeSet::new();
    for (name, content) in [
        ("idms-oc-mirror.yaml", &resources.image_digest_mirror_sets),
        ("itms-oc-mirror.yaml", &resources.image_tag_mirror_sets),
    ] {
        if let Some(text) = content {
            let path = folder.join(name);
            write(&path, text)?;
            current.insert(name.to_owned());
            published.written.push(path);
        }
    }
    for catalog in catalogs {
        for (name, text) in catalog_resources(
            &catalog.registry,
            &catalog.repository,
            &catalog.tag,
            catalog.template.as_deref(),
            created_at,
        ) {
            let path = folder.join(&name);
            write(&path, &text)?;
            if current.insert(name) {
                published.written.push(path);
            }
        }
    }
    let Ok(entries) = std::fs::read_dir(&folder) else {
        return Ok(published);
    };
    let mut stale: Vec<PathBuf> = entries
        .flatten()
        .filter(|entry| !current.contains(&*entry.file_name().to_string_lossy()))
        // The signature ConfigMap and the UpdateService have their own
        // writers below.
        .filter(|entry| {
            ![JSON_FILE_NAME, YAML_FILE_NAME, UPDATE_SERVICE_FILE]
                .contains(&&*entry.file_name().to_string_lossy())
        })
        .map(|entry| entry.path())
        .filter(|path| path.is_file())
        .filter(|path| std::fs::read_to_string(path).is_ok_and(|text| text.contains(OWNER_MARK)))
        .collect();
    stale.sort();
    for path in stale {
        std::fs::remove_file(&path).map_err(|cause| {
            WorkflowError::environment(format!("cannot remove {}: {cause}", path.display()))
        })?;
        published.removed.push(path);
    }
    Ok(published)
}

/// Writes the release signature ConfigMap (notes §4.4) of `signatures`
/// (the image set's release payloads, in any order: entries are sorted by
/// release tag, then digest, one per digest) to
/// `cluster-resources/signature-configmap.json` and `.yaml`; with no
/// signature, removes those two files when they are ferry's.
pub fn signature_config_map_files(
    workspace: &Workspace,
    signatures: &[ReleaseSignature],
    created_at: i64,
) -> Result<Published> {
    let folder = workspace.cluster_resources();
    let mut published = Published::default();
    let mut entries: Vec<&ReleaseSignature> = signatures.iter().collect();
    entries.sort_by(|a, b| {
        (&a.release_tag, a.digest.to_string()).cmp(&(&b.release_tag, b.digest.to_string()))
    });
    entries.dedup_by(|a, b| a.digest == b.digest);
    if entries.is_empty() {
        for name in [JSON_FILE_NAME, YAML_FILE_NAME] {
            let path = folder.join(name);
            let ours = std::fs::read_to_string(&path).is_ok_and(|text| {
                text.contains(OWNER_MARK) || text.contains("\"createdBy\": \"ferry\"")
            });
            if ours {
                std::fs::remove_file(&path).map_err(|cause| {
                    WorkflowError::environment(format!("cannot remove {}: {cause}", path.display()))
                })?;
                published.removed.push(path);
            }
        }
        return Ok(published);
    }
    let payloads: Vec<PayloadSignature> = entries
        .iter()
        .map(|signature| PayloadSignature {
            digest: signature.digest.clone(),
            signature: signature.bytes.clone(),
        })
        .collect();
    let annotations = Annotations {
        created_at: rfc3339(created_at),
        ferry_version: env!("CARGO_PKG_VERSION").to_owned(),
    };
    let texts = signature_config_map(&payloads, &annotations).map_err(|error| {
        WorkflowError::internal(format!("release signature ConfigMap: {error}"))
    })?;
    for (name, text) in [(JSON_FILE_NAME, &texts.json), (YAML_FILE_NAME, &texts.yaml)] {
        let path = folder.join(name);
        write(&path, text)?;
        published.written.push(path);
    }
    Ok(published)
}

/// The UpdateService at the destination: the release images' repository
/// and the graph image (`registry/repository`, `registry/repository:tag`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MirroredUpdateService {
    pub releases: String,
    pub graph_data_image: String,
}

/// Writes `cluster-resources/updateService.yaml` for `service` (notes
/// §4.3); with none (the graph image left the image set, or failed),
/// removes the file when it is ferry's.
pub fn update_service_file(
    workspace: &Workspace,
    service: Option<&MirroredUpdateService>,
    created_at: i64,
) -> Result<Published> {
    let path = workspace.cluster_resources().join(UPDATE_SERVICE_FILE);
    let mut published = Published::default();
    match service {
        Some(service) => {
            write(
                &path,
                &update_service(&service.releases, &service.graph_data_image, created_at),
            )?;
            published.written.push(path);
        }
        None => {
            if std::fs::read_to_string(&path).is_ok_and(|text| text.contains(OWNER_MARK)) {
                std::fs::remove_file(&path).map_err(|cause| {
                    WorkflowError::environment(format!("cannot remove {}: {cause}", path.display()))
                })?;
                published.removed.push(path);
            }
        }
    }
    Ok(published)
}

/// One line of the errors file, as oc-mirror writes them (scripts parse
/// `error mirroring image <origin> error: <reason>`).
pub fn error_line(origin: &str, reason: &str) -> String {
    format!("error mirroring image {origin} error: {reason}\n")
}

/// An image as `mapping.txt` names it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MappedImage {
    /// Where it is read, transport included, naming its top manifest:
    /// `docker://quay.io/a/b@sha256:…` or `file://DIR:REF`.
    pub source: String,
    /// The source repository for the images of a manifest list
    /// (`docker://quay.io/a/b`), `None` where they have no name of their
    /// own (in a delivery).
    pub source_repository: Option<String>,
    /// Where it goes, transport included: `docker://host/repo:tag` or
    /// `file://DIR:REF`.
    pub destination: String,
    /// The destination repository for the images of a manifest list.
    pub destination_repository: Option<String>,
    /// The images of its top manifest when that is a manifest list.
    pub children: Vec<ferry_schemas::Digest>,
}

/// The `file://DIR:REF` name of the image configured as `name` in the
/// deliveries in `folder`.
pub fn delivery_name(folder: &Path, name: &str) -> String {
    format!(
        "file://{}:{}",
        folder.display(),
        ferry_archive::oci_ref_name(name)
    )
}

/// `docker://host/repository` of the image as the configuration names it
/// (oc-mirror's mapping names origins; registries.conf decides where they
/// are pulled from), its source location when the name does not parse.
pub fn origin_repository(image: &ferry_planner::ResolvedImage) -> String {
    match image.name.parse::<ferry_schemas::ImageReference>() {
        Ok(reference) => format!("docker://{}", reference.name()),
        Err(_) => format!("docker://{}", image.source),
    }
}

/// The images of `image`'s top manifest when it is a manifest list.
pub fn top_children(image: &ferry_planner::ResolvedImage) -> Vec<ferry_schemas::Digest> {
    image
        .manifests
        .iter()
        .find(|manifest| manifest.digest == image.top)
        .map(|manifest| manifest.children.clone())
        .unwrap_or_default()
}

/// oc-mirror's `mapping.txt`: `SOURCE=DESTINATION`, one line per image;
/// with `manifest_lists` (`--dry-run-manifest-lists`) also one line per
/// image of each manifest list, `SOURCE@DIGEST=DESTINATION@DIGEST`.
pub fn mapping(images: &[MappedImage], manifest_lists: bool) -> String {
    let mut text = String::new();
    for image in images {
        text.push_str(&format!("{}={}\n", image.source, image.destination));
        if !manifest_lists {
            continue;
        }
        if let (Some(source), Some(destination)) =
            (&image.source_repository, &image.destination_repository)
        {
            for child in &image.children {
                text.push_str(&format!("{source}@{child}={destination}@{child}\n"));
            }
        }
    }
    text
}

/// Writes the errors file of a run (`lines`: one failed image a line) and
/// returns its path.
pub fn errors_file(workspace: &Workspace, timestamp: &str, lines: &str) -> Result<PathBuf> {
    let first = workspace.errors_file(timestamp);
    if let Some(parent) = first.parent() {
        std::fs::create_dir_all(parent).map_err(|cause| {
            WorkflowError::environment(format!("cannot create {}: {cause}", parent.display()))
        })?;
    }
    // Two runs that fail in the same second each keep their own file: the
    // name is claimed by creating it (`-2`, `-3`… when taken), then filled.
    for number in 1..=1000 {
        let path = if number == 1 {
            first.clone()
        } else {
            first.with_file_name(format!("mirroring_errors_{timestamp}-{number}.txt"))
        };
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
        {
            Ok(_) => {
                write(&path, lines)?;
                return Ok(path);
            }
            Err(cause) if cause.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(cause) => {
                return Err(WorkflowError::environment(format!(
                    "cannot write {}: {cause}",
                    path.display()
                )));
            }
        }
    }
    Err(WorkflowError::environment(format!(
        "cannot name an errors file beside {}: a thousand runs failed in the same second",
        first.display()
    )))
}

/// Empties `working-dir/dry-run/` and writes `files` (name, content) into
/// it; returns their paths.
pub fn dry_run_files(workspace: &Workspace, files: &[(&str, &str)]) -> Result<Vec<PathBuf>> {
    let folder = workspace.dry_run();
    match std::fs::remove_dir_all(&folder) {
        Ok(()) => {}
        Err(cause) if cause.kind() == std::io::ErrorKind::NotFound => {}
        Err(cause) => {
            return Err(WorkflowError::environment(format!(
                "cannot empty {}: {cause}",
                folder.display()
            )));
        }
    }
    files
        .iter()
        .map(|(name, text)| {
            let path = folder.join(name);
            write(&path, text).map(|()| path)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workflow::Category;

    fn image(origin: &str, destination: &str) -> MirroredImage {
        MirroredImage {
            origin: origin.parse().unwrap(),
            destination: destination.to_owned(),
            category: Category::Additional,
        }
    }

    #[test]
    fn files_of_ours_that_left_the_image_set_are_removed_and_the_users_are_kept() {
        let folder = tempfile::tempdir().unwrap();
        let workspace = Workspace::in_folder(folder.path());
        let hex = "ab".repeat(32);
        let both = [
            image("quay.io/a/b:1", "mirror.local/a/b"),
            image(&format!("quay.io/a/c@sha256:{hex}"), "mirror.local/a/c"),
        ];
        let first = cluster_resources(&workspace, &both, &[], false, 0).unwrap();
        assert_eq!(first.written.len(), 2);
        let users = workspace.cluster_resources().join("my-notes.yaml");
        std::fs::write(&users, "kind: ConfigMap\n").unwrap();
        let ours_from_before = workspace.cluster_resources().join("cs-old-catalog.yaml");
        std::fs::write(
            &ours_from_before,
            "metadata:\n  annotations:\n    createdBy: ferry\n",
        )
        .unwrap();
        // The digest-pinned image leaves the set: the IDMS has nothing left.
        let second = cluster_resources(&workspace, &both[..1], &[], false, 0).unwrap();
        assert_eq!(
            second.written,
            [workspace.cluster_resources().join("itms-oc-mirror.yaml")]
        );
        assert_eq!(
            second.removed,
            [
                ours_from_before.clone(),
                workspace.cluster_resources().join("idms-oc-mirror.yaml"),
            ]
        );
        assert!(users.is_file(), "a file ferry did not write is kept");
        assert!(!ours_from_before.exists());
    }

    #[test]
    fn runs_failing_in_the_same_second_keep_their_own_errors_file() {
        let folder = tempfile::tempdir().unwrap();
        let workspace = Workspace::in_folder(folder.path());
        let first = errors_file(&workspace, "20261202_101500", "a: failed\n").unwrap();
        let second = errors_file(&workspace, "20261202_101500", "b: failed\n").unwrap();
        assert_ne!(first, second);
        assert!(second.ends_with("logs/mirroring_errors_20261202_101500-2.txt"));
        assert_eq!(std::fs::read_to_string(first).unwrap(), "a: failed\n");
        assert_eq!(std::fs::read_to_string(second).unwrap(), "b: failed\n");
    }

    #[test]
    fn the_signature_config_map_is_left_to_its_own_writer() {
        let folder = tempfile::tempdir().unwrap();
        let workspace = Workspace::in_folder(folder.path());
        let resources = workspace.cluster_resources();
        std::fs::create_dir_all(&resources).unwrap();
        let yaml = resources.join(YAML_FILE_NAME);
        std::fs::write(&yaml, "metadata:\n  annotations:\n    createdBy: ferry\n").unwrap();
        let published = cluster_resources(
            &workspace,
            &[image("quay.io/a/b:1", "mirror.local/a/b")],
            &[],
            false,
            0,
        )
        .unwrap();
        assert!(published.removed.is_empty(), "{published:?}");
        assert!(yaml.exists());
    }

    #[test]
    fn the_update_service_is_written_while_the_graph_image_is_in_the_set_then_removed() {
        let folder = tempfile::tempdir().unwrap();
        let workspace = Workspace::in_folder(folder.path());
        let service = MirroredUpdateService {
            releases: "mirror.local/ns/openshift/release-images".to_owned(),
            graph_data_image: "mirror.local/ns/openshift/graph-image:latest".to_owned(),
        };
        let path = workspace.cluster_resources().join(UPDATE_SERVICE_FILE);
        let written = update_service_file(&workspace, Some(&service), 0).unwrap();
        assert_eq!(written.written, std::slice::from_ref(&path));
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.contains("  graphDataImage: mirror.local/ns/openshift/graph-image:latest\n"),
            "{text}"
        );
        // The other writer leaves it alone.
        let published = cluster_resources(
            &workspace,
            &[image("quay.io/a/b:1", "mirror.local/a/b")],
            &[],
            false,
            0,
        )
        .unwrap();
        assert!(published.removed.is_empty(), "{published:?}");
        // graph leaves the image set: the file goes.
        let removed = update_service_file(&workspace, None, 0).unwrap();
        assert_eq!(removed.removed, std::slice::from_ref(&path));
        assert!(!path.exists());
        // A user's file of that name is never removed.
        std::fs::write(&path, "kind: UpdateService\n").unwrap();
        assert!(
            update_service_file(&workspace, None, 0)
                .unwrap()
                .removed
                .is_empty()
        );
        assert!(path.exists());
    }

    #[test]
    fn mapping_lines_keep_transports_and_list_manifest_list_images_on_request() {
        let child =
            ferry_schemas::Digest::new(ferry_schemas::DigestAlgorithm::Sha256, &"cd".repeat(32))
                .unwrap();
        let images = [
            MappedImage {
                source: "docker://quay.io/a/list@sha256:aa".to_owned(),
                source_repository: Some("docker://quay.io/a/list".to_owned()),
                destination: "docker://mirror.local/a/list:1".to_owned(),
                destination_repository: Some("docker://mirror.local/a/list".to_owned()),
                children: vec![child.clone()],
            },
            MappedImage {
                source: delivery_name(Path::new("/data/disk"), "quay.io/a/one:2"),
                source_repository: None,
                destination: "docker://mirror.local/a/one:2".to_owned(),
                destination_repository: None,
                children: Vec::new(),
            },
        ];
        assert_eq!(
            mapping(&images, false),
            "docker://quay.io/a/list@sha256:aa=docker://mirror.local/a/list:1\n\
             file:///data/disk:quay.io/a/one:2=docker://mirror.local/a/one:2\n"
        );
        assert_eq!(
            mapping(&images, true),
            format!(
                "docker://quay.io/a/list@sha256:aa=docker://mirror.local/a/list:1\n\
                 docker://quay.io/a/list@{child}=docker://mirror.local/a/list@{child}\n\
                 file:///data/disk:quay.io/a/one:2=docker://mirror.local/a/one:2\n"
            )
        );
    }

    #[test]
    fn error_lines_read_as_oc_mirror_writes_them() {
        assert_eq!(
            error_line("quay.io/a/b:1", "not found (HTTP 404)"),
            "error mirroring image quay.io/a/b:1 error: not found (HTTP 404)\n"
        );
    }

    #[test]
    fn a_dry_run_leaves_no_file_of_an_earlier_one() {
        let folder = tempfile::tempdir().unwrap();
        let workspace = Workspace::in_folder(folder.path());
        dry_run_files(
            &workspace,
            &[("mapping.txt", "a\n"), ("missing.txt", "b\n")],
        )
        .unwrap();
        let written = dry_run_files(&workspace, &[("mapping.txt", "c\n")]).unwrap();
        assert_eq!(written, [workspace.dry_run().join("mapping.txt")]);
        assert!(!workspace.dry_run().join("missing.txt").exists());
        assert_eq!(
            std::fs::read_to_string(workspace.dry_run().join("mapping.txt")).unwrap(),
            "c\n"
        );
    }
}
