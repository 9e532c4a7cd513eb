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

use crate::delete::text;
use crate::releases::{Signing, sign_world};

struct Releases<'a> {
    world: &'a World,
    folder: &'a Path,
    mirror: String,
    signing: Signing,
}

impl Releases<'_> {
    fn ferry(&self, arguments: &[&str]) -> Output {
        let mut command = Command::new(env!("CARGO_BIN_EXE_ferry"));
        self.signing.environment(&mut command);
        command
            .args(arguments)
            .env("UPDATE_URL_OVERRIDE", self.world.graph_url())
            .env("REGISTRY_AUTH_FILE", self.folder.join("no-auth.json"))
            .env("FERRY_CACHE_DIR", self.folder.join("cache"))
            .output()
            .unwrap()
    }

    fn workspace(&self) -> String {
        format!("file://{}", self.folder.join("workspace").display())
    }

    fn write(&self, name: &str, text: &str) -> String {
        let path = self.folder.join(name);
        std::fs::write(&path, text).unwrap();
        path.display().to_string()
    }

    /// Tag → digest of every component tag of `version` at the mirror.
    fn components(&self, version: &str) -> BTreeMap<String, String> {
        let repository = format!("docker://{}/openshift/release", self.mirror);
        let output = skopeo(&["list-tags", "--tls-verify=false", &repository]);
        assert!(output.status.success(), "{}", text(&output.stderr));
        let listed: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
        listed["Tags"]
            .as_array()
            .unwrap()
            .iter()
            .map(|tag| tag.as_str().unwrap().to_owned())
            .filter(|tag| tag.starts_with(&format!("{version}-x86_64-")))
            .map(|tag| {
                let digest = digest_at(&format!("{repository}:{tag}"))
                    .unwrap_or_else(|| panic!("{tag} is served"));
                (tag, digest)
            })
            .collect()
    }
}

fn skopeo(arguments: &[&str]) -> Output {
    Command::new("skopeo").args(arguments).output().unwrap()
}

/// The digest skopeo reads at `reference`, if it is served.
fn digest_at(reference: &str) -> Option<String> {
    let output = skopeo(&[
        "inspect",
        "--tls-verify=false",
        "--format",
        "{{.Digest}}",
        reference,
    ]);
    output
        .status
        .success()
        .then(|| text(&output.stdout).trim().to_owned())
}

/// Whether skopeo copies `reference` (every manifest and blob).
fn pulls(reference: &str) -> bool {
    let folder = tempfile::tempdir().unwrap();
    skopeo(&[
        "copy",
        "--all",
        "--src-tls-verify=false",
        reference,
        &format!("dir:{}", folder.path().display()),
    ])
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
    let two = releases.write(
        "two.yaml",
        "kind: ImageSetConfiguration\napiVersion: mirror.openshift.io/v2alpha1\nmirror:\n  platform:\n    channels:\n    - name: stable-4.16\n      minVersion: 4.16.1\n      maxVersion: 4.16.2\n",
    );
    let registries_conf = world.registries_conf().display().to_string();
    let destination_argument = format!("docker://{}", releases.mirror);
    let mirrored = releases.ferry(&[
        "mirror",
        "-c",
        &two,
        "--workspace",
        &releases.workspace(),
        "--registries-conf",
        &registries_conf,
        "--dest-tls-verify=false",
        &destination_argument,
    ]);
    assert!(mirrored.status.success(), "{}", text(&mirrored.stderr));
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

    let disc = releases.write(
        "delete.yaml",
        "kind: DeleteImageSetConfiguration\napiVersion: mirror.openshift.io/v2alpha1\ndelete:\n  platform:\n    channels:\n    - name: stable-4.16\n      minVersion: 4.16.1\n      maxVersion: 4.16.1\n",
    );
    // The plan keeps each shared component, naming 4.16.2's tag.
    let planned = releases.ferry(&[
        "plan",
        "--delete",
        "-c",
        &disc,
        "--workspace",
        &releases.workspace(),
        "--dest-tls-verify=false",
        &destination_argument,
    ]);
    let plan = text(&planned.stdout);
    assert!(planned.status.success(), "{}", text(&planned.stderr));
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
    let generated = releases.ferry(&[
        "delete",
        "--generate",
        "-c",
        &disc,
        "--workspace",
        &releases.workspace(),
        &destination_argument,
    ]);
    assert!(generated.status.success(), "{}", text(&generated.stderr));
    let list = folder
        .path()
        .join("workspace/working-dir/delete/delete-images.yaml");
    let listed = std::fs::read_to_string(&list).unwrap();
    for tag in &shared {
        assert!(!listed.contains(&format!(":{tag}\n")), "{tag}: {listed}");
    }
    let deleted = releases.ferry(&[
        "delete",
        "--delete-yaml-file",
        &list.display().to_string(),
        "--dest-tls-verify=false",
        &destination_argument,
    ]);
    assert!(deleted.status.success(), "{}", text(&deleted.stderr));
    let repository = format!("docker://{}/openshift/release", releases.mirror);
    for tag in &own {
        assert_eq!(
            digest_at(&format!("{repository}:{tag}")),
            None,
            "{tag} is deleted"
        );
    }
    assert_eq!(
        digest_at(&format!(
            "docker://{}/openshift/release-images:4.16.1-x86_64",
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
        "docker://{}/openshift/release-images:4.16.2-x86_64",
        releases.mirror
    )));
}
