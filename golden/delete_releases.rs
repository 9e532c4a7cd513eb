//! Deleting one of two mirrored z-streams that share most components by
//! digest (the test world's 4.16.1 and 4.16.2): the components 4.16.2
//! still names are left out of the delete list and the delete plan (a
//! `keep` line each), 4.16.1's own components and its payload answer 404
//! after the delete, and every 4.16.2 component still pulls by digest
//! with skopeo.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Command, Output};

use ferry_testworld::registry::{Flavour, Registry, Storage};
use ferry_testworld::world::World;

use crate::releases::{Signing, sign_world};
use crate::support::{
    ferry, sha256, skopeo_raw_bytes, skopeo_tags, succeeded, text, write_image_set,
};

struct Releases<'a> {
    world: &'a World,
    folder: &'a Path,
    mirror: String,
    signing: Signing,
}

impl Releases<'_> {
    /// `ferry SUBCOMMAND ARGUMENTS... docker://MIRROR` with the world's
    /// signatures and update service, checked to exit 0.
    fn ferry(&self, subcommand: &str, arguments: &[&str]) -> Output {
        let mut command = ferry(self.folder, subcommand);
        self.signing.environment(&mut command);
        succeeded(
            command
                .args(arguments)
                .arg(format!("docker://{}", self.mirror))
                .env("UPDATE_URL_OVERRIDE", self.world.graph_url()),
        )
    }

    fn workspace(&self) -> String {
        format!("file://{}", self.folder.join("workspace").display())
    }

    /// Tag → digest of every component tag of `version` at the mirror.
    fn components(&self, version: &str) -> BTreeMap<String, String> {
        let repository = format!("{}/openshift/release", self.mirror);
        skopeo_tags(&format!("docker://{repository}"))
            .into_iter()
            .filter(|tag| tag.starts_with(&format!("{version}-x86_64-")))
            .map(|tag| {
                let digest = digest_at(&format!("{repository}:{tag}"))
                    .unwrap_or_else(|| panic!("{tag} is served"));
                (tag, digest)
            })
            .collect()
    }
}

/// The digest of the manifest the registry serves at `reference`, if any.
fn digest_at(reference: &str) -> Option<String> {
    skopeo_raw_bytes(reference).map(|bytes| sha256(&bytes))
}

/// Whether skopeo copies `reference` (every manifest and blob).
fn pulls(reference: &str) -> bool {
    let folder = tempfile::tempdir().unwrap();
    Command::new("skopeo")
        .args(["copy", "--all", "--src-tls-verify=false"])
        .arg(format!("docker://{reference}"))
        .arg(format!("dir:{}", folder.path().display()))
        .output()
        .unwrap()
        .status
        .success()
}

#[test]
fn deleting_one_z_stream_leaves_the_components_the_other_still_names() {
    let world = World::start().unwrap();
    let destination = Registry::start(Flavour::PlainHttp, Storage::Empty).unwrap();
    let folder = tempfile::tempdir().unwrap();
    let releases = Releases {
        world: &world,
        folder: folder.path(),
        mirror: format!("{}/mirror", destination.host()),
        signing: sign_world(&world, folder.path(), |_, _| {}),
    };
    let two = write_image_set(
        folder.path(),
        "two.yaml",
        "  platform:\n    channels:\n    - name: stable-4.16\n      minVersion: 4.16.1\n      maxVersion: 4.16.2\n",
    );
    let registries_conf = world.registries_conf().display().to_string();
    let workspace = releases.workspace();
    releases.ferry(
        "mirror",
        &[
            "-c",
            &two,
            "--workspace",
            &workspace,
            "--registries-conf",
            &registries_conf,
            "--dest-tls-verify=false",
        ],
    );
    let older = releases.components("4.16.1");
    let newer = releases.components("4.16.2");
    let newer_digests: BTreeSet<&String> = newer.values().collect();
    let shared: BTreeSet<&String> = older
        .iter()
        .filter(|(_, digest)| newer_digests.contains(digest))
        .map(|(tag, _)| tag)
        .collect();
    let own: BTreeSet<&String> = older.keys().filter(|tag| !shared.contains(tag)).collect();
    assert!(
        !shared.is_empty() && !own.is_empty(),
        "the world's z-streams share some components and not others: {older:?} {newer:?}"
    );

    let disc = folder.path().join("delete.yaml").display().to_string();
    std::fs::write(
        &disc,
        "kind: DeleteImageSetConfiguration\napiVersion: mirror.openshift.io/v2alpha1\ndelete:\n  platform:\n    channels:\n    - name: stable-4.16\n      minVersion: 4.16.1\n      maxVersion: 4.16.1\n",
    )
    .unwrap();
    // The plan keeps each shared component, naming 4.16.2's tag.
    let planned = releases.ferry(
        "plan",
        &[
            "--delete",
            "-c",
            &disc,
            "--workspace",
            &workspace,
            "--dest-tls-verify=false",
        ],
    );
    let plan = text(&planned.stdout);
    for tag in &shared {
        let newer_tag = tag.replacen("4.16.1", "4.16.2", 1);
        assert!(
            plan.contains(&format!(
                "  keep docker://{}/openshift/release:{tag}: this image set's mirror/openshift/release:{newer_tag} (the same manifest) needs it (--force deletes it)",
                releases.mirror
            )),
            "{tag}: {plan}"
        );
    }
    for tag in &own {
        assert!(
            plan.contains(&format!("listed as mirror/openshift/release:{tag}")),
            "{tag}: {plan}"
        );
    }

    // The two steps delete 4.16.1's own content only.
    releases.ferry(
        "delete",
        &["--generate", "-c", &disc, "--workspace", &workspace],
    );
    let list = folder
        .path()
        .join("workspace/working-dir/delete/delete-images.yaml");
    let listed = std::fs::read_to_string(&list).unwrap();
    for tag in &shared {
        assert!(!listed.contains(&format!(":{tag}\n")), "{tag}: {listed}");
    }
    releases.ferry(
        "delete",
        &[
            "--delete-yaml-file",
            &list.display().to_string(),
            "--dest-tls-verify=false",
        ],
    );
    let repository = format!("{}/openshift/release", releases.mirror);
    for tag in &own {
        assert_eq!(
            digest_at(&format!("{repository}:{tag}")),
            None,
            "{tag} is deleted"
        );
    }
    assert_eq!(
        digest_at(&format!(
            "{}/openshift/release-images:4.16.1-x86_64",
            releases.mirror
        )),
        None,
        "4.16.1's payload is deleted"
    );
    for (tag, digest) in &newer {
        assert!(
            pulls(&format!("{repository}@{digest}")),
            "4.16.2's {tag} ({digest}) still pulls by digest"
        );
    }
    assert!(pulls(&format!(
        "{}/openshift/release-images:4.16.2-x86_64",
        releases.mirror
    )));
}
