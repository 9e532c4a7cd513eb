//! The delete workflow's unit tests: the list's items, its file, the
//! destination check and the cache forgetting deleted images.

use super::*;

fn unprotected() -> Protection<'static> {
    static NONE: std::sync::LazyLock<SharedContent> =
        std::sync::LazyLock::new(SharedContent::default);
    Protection {
        shared: &NONE,
        force: false,
    }
}

fn destination() -> Destination {
    Destination {
        registry: "mirror.example.com:5000".to_owned(),
        prefix: "team".to_owned(),
    }
}

fn configuration(images: &str) -> DeleteImageSetConfiguration {
    ferry_schemas::load_delete_configuration(&format!(
        "kind: DeleteImageSetConfiguration\napiVersion: mirror.openshift.io/v2alpha1\ndelete:\n  additionalImages:\n{images}"
    ))
    .map(|loaded| loaded.config)
    .unwrap_or_else(|problems| panic!("{problems:?}"))
}

fn digest(character: char) -> Digest {
    format!("sha256:{}", character.to_string().repeat(64))
        .parse()
        .unwrap()
}

#[test]
fn items_are_sorted_and_de_duplicated_by_destination() {
    let configuration = configuration(
        "  - name: quay.io/b/app:1.0\n  - name: quay.io/a/app:1.0\n  - name: docker://quay.io/b/app:1.0\n",
    );
    let generated = generate(
        &configuration,
        &destination(),
        &WorkspaceRecord::default(),
        false,
        &unprotected(),
    )
    .unwrap();
    let references: Vec<&str> = generated
        .list
        .items
        .iter()
        .map(|item| item.image_reference.as_str())
        .collect();
    assert_eq!(
        references,
        [
            "docker://mirror.example.com:5000/team/a/app:1.0",
            "docker://mirror.example.com:5000/team/b/app:1.0"
        ]
    );
    assert!(
        generated
            .list
            .items
            .iter()
            .all(|item| item.image_type == ItemType::Generic)
    );
    assert_eq!(generated.notices.len(), 3, "none was recorded");
}

#[test]
fn signature_tags_come_from_recorded_digests() {
    let configuration = configuration(
        "  - name: quay.io/a/signed:1.0\n  - name: quay.io/a/unsigned:1.0\n  - name: quay.io/a/pinned@sha256:cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc\n",
    );
    let record = |name: &str, top: char, signature: Option<char>| {
        (
            name.to_owned(),
            RecordedResolution {
                name: name.to_owned(),
                source: "quay.io/a".to_owned(),
                top: digest(top),
                signature: signature.map(digest),
                signature_checked: true,
            },
        )
    };
    let recorded = WorkspaceRecord {
        resolutions: [
            record("quay.io/a/signed:1.0", 'a', Some('f')),
            record("quay.io/a/unsigned:1.0", 'b', None),
        ]
        .into_iter()
        .collect(),
        tags_at_destination: [
            (("team/a/signed".to_owned(), "1.0".to_owned()), digest('a')),
            (
                ("team/a/signed".to_owned(), "stable".to_owned()),
                digest('a'),
            ),
            (("team/a/signed".to_owned(), "2.0".to_owned()), digest('d')),
        ]
        .into_iter()
        .collect(),
        releases: None,
        bundles: Vec::new(),
    };
    // Forced: signed:stable names the same manifest as signed:1.0.
    let generated = generate(
        &configuration,
        &destination(),
        &recorded,
        true,
        &Protection {
            force: true,
            ..unprotected()
        },
    )
    .unwrap();
    let warned = format!("{:?}", generated.notices);
    assert_eq!(generated.notices.len(), 3, "{warned}");
    assert!(
        !warned.contains("a/signed:1.0: this workspace"),
        "signed:1.0 is recorded at the destination: {warned}"
    );
    assert!(
        warned.contains("docker://mirror.example.com:5000/team/a/signed:1.0: listed with --force although this image set's team/a/signed:stable (the same manifest) stays"),
        "{warned}"
    );
    assert!(!warned.contains("signed:2.0"), "{warned}");
    let names: Vec<(&str, &str)> = generated
        .list
        .items
        .iter()
        .map(|item| (item.image_name.as_str(), item.image_reference.as_str()))
        .collect();
    let a = "a".repeat(64);
    let c = "c".repeat(64);
    assert_eq!(
        names,
        [
            (
                format!("quay.io/a/pinned@sha256:{c}").as_str(),
                format!("docker://mirror.example.com:5000/team/a/pinned:sha256-{c}").as_str()
            ),
            (
                format!("quay.io/a/pinned:sha256-{c}.sig").as_str(),
                format!("docker://mirror.example.com:5000/team/a/pinned:sha256-{c}.sig").as_str()
            ),
            (
                "quay.io/a/signed:1.0",
                "docker://mirror.example.com:5000/team/a/signed:1.0"
            ),
            (
                format!("quay.io/a/signed:sha256-{a}.sig").as_str(),
                format!("docker://mirror.example.com:5000/team/a/signed:sha256-{a}.sig").as_str()
            ),
            (
                "quay.io/a/unsigned:1.0",
                "docker://mirror.example.com:5000/team/a/unsigned:1.0"
            ),
        ]
    );
}

#[test]
fn the_file_reads_back_and_bad_files_are_refused_with_their_place() {
    let list = DeleteImageList::new(vec![DeleteItem {
        image_name: "quay.io/a/app:1.0".to_owned(),
        image_reference: "docker://mirror.example.com:5000/team/a/app:1.0".to_owned(),
        image_type: ItemType::Generic,
    }]);
    let text = list.to_yaml().unwrap();
    assert_eq!(
        text,
        "apiVersion: mirror.openshift.io/v2alpha1\nkind: DeleteImageList\nitems:\n- imageName: quay.io/a/app:1.0\n  imageReference: docker://mirror.example.com:5000/team/a/app:1.0\n  type: generic\n"
    );
    assert_eq!(DeleteImageList::parse("d.yaml", &text).unwrap(), list);
    let unknown_type = text.replace("type: generic", "type: sparkly");
    let error = DeleteImageList::parse("d.yaml", &unknown_type).unwrap_err();
    assert!(error.message.starts_with("d.yaml:6:"), "{}", error.message);
    let no_scheme = text.replace("imageReference: docker://", "imageReference: ");
    let error = DeleteImageList::parse("d.yaml", &no_scheme).unwrap_err();
    assert!(
        error.message.contains("does not start with docker://"),
        "{}",
        error.message
    );
    let other_kind = text.replace("kind: DeleteImageList", "kind: ImageSetConfiguration");
    assert!(DeleteImageList::parse("d.yaml", &other_kind).is_err());
}

#[test]
fn items_outside_the_destination_are_named() {
    let item = |reference: &str, image_type| DeleteItem {
        image_name: "quay.io/a/app:1.0".to_owned(),
        image_reference: reference.to_owned(),
        image_type,
    };
    let list = DeleteImageList::new(vec![
        item(
            "docker://mirror.example.com:5000/team/a/app:1.0",
            ItemType::Generic,
        ),
        item(
            "docker://mirror.example.com:5000/teamwork/a/app:1.0",
            ItemType::Generic,
        ),
        item(
            "docker://mirror.example.com:5000/team/openshift/release:4.16.0-x86_64-etcd",
            ItemType::OcpReleaseContent,
        ),
        item(
            "docker://mirror.example.com:5000/team/openshift/release:4.16.0-x86_64",
            ItemType::OcpRelease,
        ),
    ]);
    let problems = misplaced_items(&list, &destination());
    assert_eq!(problems.len(), 2, "{problems:?}");
    assert!(problems[0].contains("teamwork") && problems[0].contains("not below"));
    assert!(problems[1].contains("openshift/release-images"));
}

#[test]
fn the_cache_forgets_deleted_images_and_keeps_blobs_others_need() {
    let folder = tempfile::tempdir().unwrap();
    let mut cache = Cache::open(folder.path()).unwrap();
    let put = |cache: &Cache, bytes: &[u8]| {
        let digest = ferry_store::digest_of(ferry_schemas::DigestAlgorithm::Sha256, bytes);
        cache.blobs().write(&digest, None, bytes).unwrap();
        digest
    };
    let shared = put(&cache, b"shared layer");
    let own = put(&cache, b"layer only the deleted image has");
    let deleted = put(&cache, b"deleted manifest");
    let kept = put(&cache, b"kept manifest");
    let media_type = "application/vnd.oci.image.manifest.v1+json";
    cache
        .index_mut()
        .record_manifest(&deleted, media_type, 16, &[shared.clone(), own.clone()])
        .unwrap();
    cache
        .index_mut()
        .record_manifest(&kept, media_type, 13, std::slice::from_ref(&shared))
        .unwrap();
    cache
        .index()
        .record_resolution("quay.io/a/deleted:1.0", &deleted, 1)
        .unwrap();
    cache
        .index()
        .record_resolution("quay.io/a/kept:1.0", &kept, 1)
        .unwrap();
    let list = DeleteImageList::new(vec![DeleteItem {
        image_name: "quay.io/a/deleted:1.0".to_owned(),
        image_reference: "docker://mirror.example.com:5000/team/a/deleted:1.0".to_owned(),
        image_type: ItemType::Generic,
    }]);

    let preview = forget_in_cache(&list, folder.path(), true).unwrap();
    assert_eq!(preview.forgotten, ["quay.io/a/deleted:1.0"]);
    assert_eq!(preview.removed_blobs, 2);
    assert!(cache.blobs().contains(&own), "a dry run removes nothing");

    let report = forget_in_cache(&list, folder.path(), false).unwrap();
    assert_eq!(
        report.removed_blobs, 2,
        "the deleted manifest and its own layer"
    );
    assert!(!cache.blobs().contains(&own) && !cache.blobs().contains(&deleted));
    assert!(cache.blobs().contains(&shared) && cache.blobs().contains(&kept));
    assert_eq!(
        cache.index().resolution("quay.io/a/deleted:1.0").unwrap(),
        None
    );

    let again = forget_in_cache(&list, folder.path(), false).unwrap();
    assert!(again.forgotten.is_empty(), "nothing left to forget");
    let empty = tempfile::tempdir().unwrap();
    assert!(
        forget_in_cache(&list, empty.path(), false)
            .unwrap()
            .forgotten
            .is_empty()
    );
}

#[test]
fn delete_ids_are_file_name_parts() {
    assert!(check_delete_id("week-48_v1.2").is_ok());
    for bad in ["", "../x", "a/b", ".hidden", "a b"] {
        assert!(check_delete_id(bad).is_err(), "{bad}");
    }
}

fn recorded_bundle(
    package: &str,
    version: &str,
    channels: &[&str],
    related: &[&str],
) -> SelectedBundle {
    SelectedBundle {
        catalog: "quay.io/ops/catalog:v1".to_owned(),
        package: package.to_owned(),
        bundle: format!("{package}.v{version}"),
        channels: channels
            .iter()
            .map(|channel| (*channel).to_owned())
            .collect(),
        version: version.to_owned(),
        image: format!("quay.io/ops/{package}-bundle:v{version}"),
        related_images: related.iter().map(|image| (*image).to_owned()).collect(),
    }
}

fn operator_configuration(operators: &str) -> DeleteImageSetConfiguration {
    ferry_schemas::load_delete_configuration(&format!(
        "kind: DeleteImageSetConfiguration\napiVersion: mirror.openshift.io/v2alpha1\ndelete:\n  operators:\n{operators}"
    ))
    .map(|loaded| loaded.config)
    .unwrap_or_else(|problems| panic!("{problems:?}"))
}

fn operator_record() -> WorkspaceRecord {
    WorkspaceRecord {
        bundles: vec![
            recorded_bundle("foo", "1.0.0", &["stable"], &["quay.io/ops/foo:1.0.0"]),
            recorded_bundle(
                "foo",
                "2.0.0",
                &["stable", "fast"],
                &["quay.io/ops/foo:2.0.0", "quay.io/ops/shared:1"],
            ),
            recorded_bundle("bar", "1.0.0", &["stable"], &["quay.io/ops/shared:1"]),
        ],
        ..WorkspaceRecord::default()
    }
}

fn listed(generated: &Generated) -> Vec<(String, ItemType)> {
    generated
        .list
        .items
        .iter()
        .map(|item| {
            (
                item.image_reference
                    .trim_start_matches("docker://mirror.example.com:5000/team/")
                    .to_owned(),
                item.image_type,
            )
        })
        .collect()
}

#[test]
fn a_package_lists_its_recorded_bundles_and_leaves_the_catalog_and_shared_images() {
    let configuration = operator_configuration(
        "  - catalog: quay.io/ops/catalog:v1\n    packages:\n    - name: foo\n",
    );
    let generated = generate(
        &configuration,
        &destination(),
        &operator_record(),
        false,
        &unprotected(),
    )
    .unwrap();
    assert_eq!(
        listed(&generated),
        [
            ("ops/foo-bundle:v1.0.0".to_owned(), ItemType::OperatorBundle),
            ("ops/foo-bundle:v2.0.0".to_owned(), ItemType::OperatorBundle),
            ("ops/foo:1.0.0".to_owned(), ItemType::OperatorRelatedImage),
            ("ops/foo:2.0.0".to_owned(), ItemType::OperatorRelatedImage),
        ],
        "the catalog stays, and bar (staying) needs ops/shared:1"
    );
    assert_eq!(generated.kept.len(), 1);
    assert_eq!(
        generated.kept[0].reference,
        "docker://mirror.example.com:5000/team/ops/shared:1"
    );
    assert!(generated.kept[0].needed_by.contains("bar.v1.0.0"));
    // Forced, the shared image is listed too, with a warning.
    let forced = generate(
        &configuration,
        &destination(),
        &operator_record(),
        false,
        &Protection {
            force: true,
            ..unprotected()
        },
    )
    .unwrap();
    assert_eq!(listed(&forced).len(), 5);
    assert!(forced.kept.is_empty());
}

#[test]
fn versions_and_channels_narrow_what_was_recorded() {
    let generated = generate(
        &operator_configuration(
            "  - catalog: quay.io/ops/catalog:v1\n    packages:\n    - name: foo\n      channels:\n      - name: stable\n        maxVersion: 1.5.0\n",
        ),
        &destination(),
        &operator_record(),
        false,
        &unprotected(),
    )
    .unwrap();
    assert_eq!(
        listed(&generated),
        [
            ("ops/foo-bundle:v1.0.0".to_owned(), ItemType::OperatorBundle),
            ("ops/foo:1.0.0".to_owned(), ItemType::OperatorRelatedImage),
        ]
    );
}

#[test]
fn a_catalog_without_packages_lists_the_catalog_and_everything_in_it() {
    let generated = generate(
        &operator_configuration("  - catalog: quay.io/ops/catalog:v1\n"),
        &destination(),
        &operator_record(),
        false,
        &unprotected(),
    )
    .unwrap();
    let listed = listed(&generated);
    assert_eq!(listed.len(), 7, "{listed:?}");
    assert!(listed.contains(&("ops/catalog:v1".to_owned(), ItemType::OperatorCatalog)));
    assert!(listed.contains(&("ops/shared:1".to_owned(), ItemType::OperatorRelatedImage)));
    assert!(generated.kept.is_empty());
}

#[test]
fn a_catalog_the_workspace_never_mirrored_names_what_to_run_first() {
    let error = generate(
        &operator_configuration("  - catalog: quay.io/ops/other:v1\n"),
        &destination(),
        &operator_record(),
        false,
        &unprotected(),
    )
    .unwrap_err()
    .to_string();
    assert!(
        error.contains("catalog quay.io/ops/other:v1: this workspace has no record of mirroring it to docker://mirror.example.com:5000/team: run `ferry mirror` with this catalog"),
        "{error}"
    );
}

#[test]
fn a_manifest_an_unlisted_tag_names_is_left_out_with_its_signature() {
    let configuration =
        configuration("  - name: quay.io/a/signed:1.0\n  - name: quay.io/a/other:1.0\n");
    let recorded = WorkspaceRecord {
        resolutions: [(
            "quay.io/a/signed:1.0".to_owned(),
            RecordedResolution {
                name: "quay.io/a/signed:1.0".to_owned(),
                source: "quay.io/a".to_owned(),
                top: digest('a'),
                signature: Some(digest('f')),
                signature_checked: true,
            },
        )]
        .into_iter()
        .collect(),
        tags_at_destination: [
            (("team/a/signed".to_owned(), "1.0".to_owned()), digest('a')),
            (
                ("team/a/signed".to_owned(), "stable".to_owned()),
                digest('a'),
            ),
            (("team/a/other".to_owned(), "1.0".to_owned()), digest('b')),
        ]
        .into_iter()
        .collect(),
        ..WorkspaceRecord::default()
    };
    let generated = generate(
        &configuration,
        &destination(),
        &recorded,
        true,
        &unprotected(),
    )
    .unwrap();
    let references: Vec<&str> = generated
        .list
        .items
        .iter()
        .map(|item| item.image_reference.as_str())
        .collect();
    assert_eq!(
        references,
        ["docker://mirror.example.com:5000/team/a/other:1.0"],
        "signed:1.0 and its signature tag stay for signed:stable"
    );
    assert_eq!(generated.kept.len(), 1);
    assert_eq!(
        generated.kept[0].needed_by,
        "this image set's team/a/signed:stable (the same manifest)"
    );
    let warned = format!("{:?}", generated.notices);
    assert!(
        warned.contains("team/a/signed:1.0: left out, this image set's team/a/signed:stable (the same manifest) needs it (--force lists it anyway)"),
        "{warned}"
    );
    assert!(
        warned.contains(&format!(
            "team/a/signed:sha256-{}.sig: left out with the manifest it signs",
            "a".repeat(64)
        )),
        "{warned}"
    );
}

#[test]
fn catalogs_by_digest_and_from_oci_layouts_are_found_where_the_mirror_put_them() {
    let pinned = format!("quay.io/ops/catalog@sha256:{}", "c".repeat(64));
    let rebuilt_tag = format!("sha256-{}", "d".repeat(64));
    let bundle = |catalog: &str| SelectedBundle {
        catalog: catalog.to_owned(),
        ..recorded_bundle("foo", "1.0.0", &["stable"], &[])
    };
    let recorded = WorkspaceRecord {
        bundles: vec![bundle(&pinned), bundle("oci:///data/layouts/my-catalog")],
        tags_at_destination: [
            (
                ("team/ops/catalog".to_owned(), rebuilt_tag.clone()),
                digest('d'),
            ),
            (
                ("team/ops/catalog".to_owned(), "v1".to_owned()),
                digest('e'),
            ),
        ]
        .into_iter()
        .collect(),
        ..WorkspaceRecord::default()
    };
    let generated = generate(
        &operator_configuration(&format!(
            "  - catalog: {pinned}\n  - catalog: oci:///data/layouts/my-catalog\n    targetTag: v2\n"
        )),
        &destination(),
        &recorded,
        false,
        &Protection {
            force: true,
            ..unprotected()
        },
    )
    .unwrap();
    let catalogs: Vec<(String, String)> = generated
        .list
        .items
        .iter()
        .filter(|item| item.image_type == ItemType::OperatorCatalog)
        .map(|item| {
            (
                item.image_name.clone(),
                item.image_reference
                    .trim_start_matches("docker://mirror.example.com:5000/team/")
                    .to_owned(),
            )
        })
        .collect();
    assert_eq!(
        catalogs,
        [
            (
                "oci:///data/layouts/my-catalog".to_owned(),
                "my-catalog:v2".to_owned()
            ),
            (pinned.clone(), format!("ops/catalog:{rebuilt_tag}")),
        ],
        "the digest-only catalog by the rebuilt tag the workspace recorded, not v1"
    );
}

#[test]
fn a_list_naming_an_oci_layout_catalog_reads_back() {
    let list = DeleteImageList::new(vec![DeleteItem {
        image_name: "oci:///data/layouts/my-catalog".to_owned(),
        image_reference: "docker://mirror.example.com:5000/team/my-catalog:v2".to_owned(),
        image_type: ItemType::OperatorCatalog,
    }]);
    let text = list.to_yaml().unwrap();
    assert_eq!(DeleteImageList::parse("d.yaml", &text).unwrap(), list);
}
