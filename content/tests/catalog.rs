//! The catalog filter on real file-based catalogs (shared/fixtures §6):
//! oc-mirror's expectation table (notes §6.2) as far as these catalogs
//! allow, its integration cases on test-catalog-latest, operator-registry's
//! heads-only golden, and the errors.

use std::path::{Path, PathBuf};

use ferry_content::catalog::{self, Catalog, CatalogFile, FilterError};
use ferry_schemas::config;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/fixtures")
}

/// Every file under `dir`, with paths relative to it.
fn load_dir(dir: &Path) -> Catalog {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(folder) = pending.pop() {
        for entry in std::fs::read_dir(&folder).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
            } else {
                let relative = path
                    .strip_prefix(dir)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned();
                files.push(CatalogFile::new(relative, std::fs::read(&path).unwrap()));
            }
        }
    }
    Catalog::load(files).unwrap()
}

fn load_file(path: &str) -> Catalog {
    let path = fixtures().join(path);
    let name = path.file_name().unwrap().to_string_lossy().into_owned();
    Catalog::load(vec![CatalogFile::new(name, std::fs::read(&path).unwrap())]).unwrap()
}

fn test_catalog_latest() -> Catalog {
    load_dir(&fixtures().join(
        "openshift+oc-mirror/tests/integration/image-builders/operator/catalogs/test-catalog-latest",
    ))
}

fn jaeger() -> Catalog {
    load_file("openshift+oc-mirror/tests/unit/testdata/configs/jaeger-product/catalog.json")
}

const INDEX_DECLCFGS: &str =
    "operator-framework+operator-registry/alpha/action/testdata/index-declcfgs";

/// The `mirror.operators` entry of an ImageSetConfiguration whose operator
/// fields (below `catalog:`) are `fields`, loaded the way `ferry` loads it.
fn operator(fields: &str) -> config::Operator {
    let mut text = String::from(
        "kind: ImageSetConfiguration\napiVersion: mirror.openshift.io/v2alpha1\nmirror:\n  operators:\n  - catalog: registry.example.com/catalog:latest\n",
    );
    for line in fields.lines() {
        text.push_str("    ");
        text.push_str(line);
        text.push('\n');
    }
    let loaded = ferry_schemas::load_image_set_configuration(&text)
        .unwrap_or_else(|problems| panic!("{text}\n{problems:?}"));
    loaded.config.mirror.operators.into_iter().next().unwrap()
}

fn kept(catalog: &Catalog, fields: &str) -> Result<Vec<String>, FilterError> {
    catalog::filter(catalog, &operator(fields)).map(|filtered| {
        filtered
            .bundles
            .into_iter()
            .map(|bundle| bundle.name)
            .collect()
    })
}

enum Expected {
    Bundles(&'static [&'static str]),
    /// The error's message contains each of these.
    Error(&'static [&'static str]),
}

fn check(catalog: &Catalog, rows: &[(&str, &str, Expected)]) {
    for (name, fields, expected) in rows {
        let result = kept(catalog, fields);
        match expected {
            Expected::Bundles(bundles) => assert_eq!(
                result.as_ref().map_err(ToString::to_string),
                Ok(&bundles.iter().map(|b| (*b).to_owned()).collect::<Vec<_>>()),
                "row {name:?}"
            ),
            Expected::Error(parts) => {
                let message = match &result {
                    Err(error) => error.to_string(),
                    Ok(bundles) => panic!("row {name:?}: expected an error, kept {bundles:?}"),
                };
                for part in *parts {
                    assert!(
                        message.contains(part),
                        "row {name:?}: {message:?} lacks {part:?}"
                    );
                }
            }
        }
    }
}

#[test]
fn jaeger_rows_of_the_expectation_table() {
    use Expected::*;
    check(
        &jaeger(),
        &[
            (
                "no packages: every channel head",
                "",
                Bundles(&["jaeger-operator.v1.51.0-1"]),
            ),
            (
                "full, no packages: every bundle",
                "full: true",
                Bundles(&[
                    "jaeger-operator.v1.30.2",
                    "jaeger-operator.v1.34.1-5",
                    "jaeger-operator.v1.42.0-5",
                    "jaeger-operator.v1.42.0-5-0.1687199951.p",
                    "jaeger-operator.v1.47.1-5",
                    "jaeger-operator.v1.51.0-1",
                ]),
            ),
            (
                "listed package, no range: its head",
                "packages:\n- name: jaeger-product",
                Bundles(&["jaeger-operator.v1.51.0-1"]),
            ),
            (
                // Pre-release bundles are outside a range of release bounds
                // (Masterminds), so only v1.30.2 counts, and the new head is
                // the lowest chain node with the most in-range bundles: itself.
                "min 1.30.0: release bounds skip pre-release bundles",
                "packages:\n- name: jaeger-product\n  minVersion: 1.30.0",
                Bundles(&["jaeger-operator.v1.30.2"]),
            ),
            (
                "min 1.42.0-0: pre-release bound, head down to the in-range skip",
                "packages:\n- name: jaeger-product\n  minVersion: 1.42.0-0",
                Bundles(&[
                    "jaeger-operator.v1.42.0-5",
                    "jaeger-operator.v1.42.0-5-0.1687199951.p",
                    "jaeger-operator.v1.47.1-5",
                    "jaeger-operator.v1.51.0-1",
                ]),
            ),
            (
                "pinned pre-release with build metadata",
                "packages:\n- name: jaeger-product\n  channels:\n  - name: stable\n    minVersion: 1.42.0-5\n    maxVersion: 1.42.0-5",
                Bundles(&["jaeger-operator.v1.42.0-5"]),
            ),
            (
                "version not found",
                "packages:\n- name: jaeger-product\n  minVersion: 77.77.77\n  maxVersion: 77.77.77",
                Error(&[
                    "jaeger-product",
                    "stable",
                    "specific version 77.77.77 not found in bundles",
                ]),
            ),
            (
                "package not in the catalog: nothing",
                "packages:\n- name: not-there",
                Bundles(&[]),
            ),
        ],
    );
}

#[test]
fn test_catalog_latest_rows() {
    use Expected::*;
    check(
        &test_catalog_latest(),
        &[
            (
                "no packages: head of every channel",
                "",
                Bundles(&["bar.v1.0.0", "baz.v1.1.0", "foo.v0.3.1"]),
            ),
            (
                "integration: foo beta 0.2.0..0.3.1",
                "packages:\n- name: foo\n  channels:\n  - name: beta\n    minVersion: 0.2.0\n    maxVersion: 0.3.1",
                Bundles(&["foo.v0.2.0", "foo.v0.3.0", "foo.v0.3.1"]),
            ),
            (
                "integration: min == max gives that one bundle",
                "packages:\n- name: foo\n  channels:\n  - name: beta\n    minVersion: 0.3.1\n    maxVersion: 0.3.1",
                Bundles(&["foo.v0.3.1"]),
            ),
            (
                "min 0.3.0: head and its in-range skip",
                "packages:\n- name: foo\n  minVersion: 0.3.0",
                Bundles(&["foo.v0.3.0", "foo.v0.3.1"]),
            ),
            (
                "max 0.2.0: new head is the lowest node with the most in-range bundles",
                "packages:\n- name: foo\n  maxVersion: 0.2.0",
                Bundles(&["foo.v0.1.0", "foo.v0.2.0"]),
            ),
            (
                "full with a package: every bundle of its channels",
                "full: true\npackages:\n- name: baz",
                Bundles(&["baz.v1.0.0", "baz.v1.0.1", "baz.v1.1.0"]),
            ),
            (
                "listed channel that is not the default, default set to it",
                "packages:\n- name: bar\n  defaultChannel: alpha\n  channels:\n  - name: alpha",
                Bundles(&["bar.v1.0.0"]),
            ),
            (
                "bundles: exactly the named ones, no heads added",
                "packages:\n- name: foo\n  bundles:\n  - name: foo.v0.2.0",
                Bundles(&["foo.v0.2.0"]),
            ),
            (
                "bundles: two that link in the channel",
                "packages:\n- name: bar\n  defaultChannel: alpha\n  channels:\n  - name: alpha\n  bundles:\n  - name: bar.v0.1.0\n  - name: bar.v0.2.0",
                Bundles(&["bar.v0.1.0", "bar.v0.2.0"]),
            ),
            (
                "bundles that empty the default channel",
                "packages:\n- name: bar\n  bundles:\n  - name: bar.v0.1.0",
                Error(&["bar", "\"stable\"", "bundles [bar.v0.1.0]", "empty channel"]),
            ),
            (
                "bundles: a name not in the catalog",
                "packages:\n- name: foo\n  bundles:\n  - name: foo.v9.9.9",
                Error(&["foo", "foo.v9.9.9", "not in the catalog"]),
            ),
            (
                "bundles: two heads in one channel",
                "packages:\n- name: foo\n  bundles:\n  - name: foo.v0.1.0\n  - name: foo.v0.3.1",
                Error(&[
                    "foo",
                    "beta",
                    "foo.v0.1.0",
                    "foo.v0.3.1",
                    "multiple channel heads",
                ]),
            ),
            (
                "default channel filtered out",
                "packages:\n- name: bar\n  channels:\n  - name: alpha",
                Error(&["bar", "the default channel \"stable\" was filtered out"]),
            ),
            (
                "default channel override not kept",
                "packages:\n- name: bar\n  defaultChannel: beta\n  channels:\n  - name: alpha",
                Error(&["bar", "override \"beta\" does not exist"]),
            ),
            (
                "range that empties the default channel",
                "packages:\n- name: bar\n  minVersion: 2.0.0",
                Error(&["bar", "\"stable\"", ">=2.0.0", "empty channel"]),
            ),
        ],
    );
}

#[test]
fn min_greater_than_max_fails_in_the_filter_too() {
    // The configuration loader rejects this; the filter, called with such
    // an entry anyway, fails as oc-mirror's run does.
    let mut entry = operator("packages:\n- name: foo");
    entry.packages[0].min_version = Some("0.3.1".parse().unwrap());
    entry.packages[0].max_version = Some("0.2.0".parse().unwrap());
    let error = catalog::filter(&test_catalog_latest(), &entry).unwrap_err();
    assert!(
        matches!(&error, FilterError::EmptyChannel { package, channel, .. } if package == "foo" && channel == "beta"),
        "{error}"
    );
}

#[test]
fn configuration_combinations_oc_mirror_rejects() {
    let catalog = test_catalog_latest();
    let mut both =
        operator("packages:\n- name: foo\n  channels:\n  - name: beta\n    minVersion: 0.2.0");
    both.packages[0].max_version = Some("0.3.0".parse().unwrap());
    assert_eq!(
        catalog::filter(&catalog, &both),
        Err(FilterError::RangesOnBothLevels {
            package: "foo".to_owned(),
            channel: "beta".to_owned()
        })
    );
    let mut bundles_and_range =
        operator("packages:\n- name: foo\n  bundles:\n  - name: foo.v0.3.1");
    bundles_and_range.packages[0].min_version = Some("0.2.0".parse().unwrap());
    assert_eq!(
        catalog::filter(&catalog, &bundles_and_range),
        Err(FilterError::BundlesWithRange {
            package: "foo".to_owned()
        })
    );
}

#[test]
fn heads_only_matches_operator_registry_golden() {
    let latest = load_file(&format!("{INDEX_DECLCFGS}/latest/index.yaml"));
    let expected = load_file(&format!("{INDEX_DECLCFGS}/exp-latest/index.yaml"));
    let filtered = catalog::filter(&latest, &operator("")).unwrap();
    let written = filtered.to_json(&latest);
    let reloaded = Catalog::load(vec![CatalogFile::new("catalog.json", written.clone())]).unwrap();

    let packages = |catalog: &Catalog| {
        let mut packages: Vec<(String, Option<String>)> = catalog
            .packages
            .iter()
            .map(|p| (p.name.clone(), p.default_channel.clone()))
            .collect();
        packages.sort();
        packages
    };
    let channels = |catalog: &Catalog| {
        let mut channels: Vec<_> = catalog
            .channels
            .iter()
            .map(|c| (c.package.clone(), c.name.clone(), c.entries.clone()))
            .collect();
        channels.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
        channels
    };
    let bundles = |catalog: &Catalog| {
        let mut bundles: Vec<_> = catalog
            .bundles
            .iter()
            .map(|b| {
                (
                    b.package.clone(),
                    b.name.clone(),
                    b.image.clone(),
                    b.related_images.clone(),
                )
            })
            .collect();
        bundles.sort();
        bundles
    };
    assert_eq!(packages(&reloaded), packages(&expected));
    assert_eq!(channels(&reloaded), channels(&expected));
    assert_eq!(bundles(&reloaded), bundles(&expected));
    // The bundles' whole objects, not only the parsed fields.
    let values = |bytes: &[u8]| -> Vec<serde_json::Value> {
        serde_json::Deserializer::from_slice(bytes)
            .into_iter::<serde_json::Value>()
            .map(Result::unwrap)
            .filter(|value| value["schema"] == "olm.bundle")
            .collect()
    };
    let expected_yaml =
        std::fs::read(fixtures().join(format!("{INDEX_DECLCFGS}/exp-latest/index.yaml"))).unwrap();
    let mut expected_values: Vec<serde_json::Value> =
        serde_yaml::Deserializer::from_slice(&expected_yaml)
            .map(|document| serde::Deserialize::deserialize(document).unwrap())
            .filter(|value: &serde_json::Value| value["schema"] == "olm.bundle")
            .collect();
    expected_values.sort_by_key(|value| value["name"].as_str().unwrap().to_owned());
    assert_eq!(values(&written), expected_values);
    // Same input, same bytes.
    assert_eq!(
        catalog::filter(&latest, &operator(""))
            .unwrap()
            .to_json(&latest),
        written
    );
}

#[test]
fn written_catalog_is_byte_identical_whatever_the_file_order() {
    let dir = fixtures().join(
        "openshift+oc-mirror/tests/integration/image-builders/operator/catalogs/test-catalog-latest",
    );
    let forward = load_dir(&dir);
    let mut files = Vec::new();
    for package in ["foo", "bar", "baz"] {
        for name in ["operator.yaml", "channels.yaml", "bundles.yaml"] {
            let path = format!("{package}/{name}");
            files.push(CatalogFile::new(
                path.clone(),
                std::fs::read(dir.join(&path)).unwrap(),
            ));
        }
    }
    files.reverse();
    let reversed = Catalog::load(files).unwrap();
    let entry =
        operator("packages:\n- name: foo\n  channels:\n  - name: beta\n    minVersion: 0.2.0");
    let one = catalog::filter(&forward, &entry).unwrap();
    let two = catalog::filter(&reversed, &entry).unwrap();
    assert_eq!(one.to_json(&forward), two.to_json(&reversed));
    // The filtered channel lost its foo.v0.1.0 entry and kept the others
    // with their edges.
    let reloaded = Catalog::load(vec![CatalogFile::new("c.json", one.to_json(&forward))]).unwrap();
    let names: Vec<&str> = reloaded.channels[0]
        .entries
        .iter()
        .map(|e| e.name.as_str())
        .collect();
    assert_eq!(names, ["foo.v0.2.0", "foo.v0.3.0", "foo.v0.3.1"]);
    assert_eq!(
        reloaded.channels[0].entries[1].replaces.as_deref(),
        Some("foo.v0.2.0")
    );
}

#[test]
fn test_operator_catalog_channels_without_bundles() {
    // oc-mirror's 3scale excerpt has channels but no bundle objects: heads
    // are found from the channel graphs, and no bundle is kept.
    let catalog = load_file("openshift+oc-mirror/tests/unit/testdata/test-operator-catalog.json");
    let filtered = catalog::filter(&catalog, &operator("")).unwrap();
    let channels: Vec<(&str, Vec<String>)> = filtered.packages[0]
        .channels
        .iter()
        .map(|channel| (channel.name.as_str(), channel.entries.clone()))
        .collect();
    assert_eq!(channels.len(), catalog.channels.len());
    for (_, entries) in &channels {
        assert_eq!(entries.len(), 1);
    }
    assert!(filtered.bundles.is_empty());
    assert!(
        filtered
            .warnings
            .iter()
            .any(|w| w.contains("has no olm.bundle object"))
    );
    let threescale_211 = channels
        .iter()
        .find(|(name, _)| *name == "threescale-2.11")
        .unwrap();
    assert_eq!(threescale_211.1, ["3scale-operator.v0.8.4-0.1655690146.p"]);
    // Notes §6.2: channels threescale-2.11 and threescale-mas keep these two.
    let threescale_mas = channels
        .iter()
        .find(|(name, _)| *name == "threescale-mas")
        .unwrap();
    assert_eq!(threescale_mas.1, ["3scale-operator.v0.11.0-mas"]);
}

/// A small catalog written for the error cases: package `multi` whose
/// `stable` channel has the given entries (name, replaces), and a `fast`
/// channel with one valid head.
fn multi_catalog(stable: &[(&str, Option<&str>)]) -> Catalog {
    let mut text = String::from(
        "{\"schema\":\"olm.package\",\"name\":\"multi\",\"defaultChannel\":\"stable\"}\n",
    );
    let entries: Vec<serde_json::Value> = stable
        .iter()
        .map(|(name, replaces)| match replaces {
            Some(replaces) => serde_json::json!({"name": name, "replaces": replaces}),
            None => serde_json::json!({"name": name}),
        })
        .collect();
    text.push_str(
        &serde_json::json!({"schema": "olm.channel", "package": "multi", "name": "stable", "entries": entries})
            .to_string(),
    );
    text.push_str("\n{\"schema\":\"olm.channel\",\"package\":\"multi\",\"name\":\"fast\",\"entries\":[{\"name\":\"multi.v1.0.0\"}]}\n");
    let mut names: Vec<&str> = stable.iter().map(|(name, _)| *name).collect();
    names.push("multi.v1.0.0");
    names.sort_unstable();
    names.dedup();
    for name in names {
        let version = name.trim_start_matches("multi.v");
        text.push_str(
            &serde_json::json!({
                "schema": "olm.bundle", "name": name, "package": "multi",
                "image": format!("registry.example.com/multi/bundle:{version}"),
                "properties": [{"type": "olm.package", "value": {"packageName": "multi", "version": version}}],
            })
            .to_string(),
        );
        text.push('\n');
    }
    Catalog::load(vec![CatalogFile::new(
        "multi/catalog.json",
        text.into_bytes(),
    )])
    .unwrap()
}

#[test]
fn multiple_heads_come_with_the_lines_that_fix_them() {
    let catalog = multi_catalog(&[
        ("multi.v1.0.0", None),
        ("multi.v1.1.0", Some("multi.v1.0.0")),
        ("multi.v2.0.0", None),
    ]);
    let error = catalog::filter(&catalog, &operator("")).unwrap_err();
    let FilterError::MultipleHeads {
        package,
        channel,
        heads,
        fix,
    } = &error
    else {
        panic!("{error}");
    };
    assert_eq!((package.as_str(), channel.as_str()), ("multi", "stable"));
    assert_eq!(heads, &["multi.v1.1.0", "multi.v2.0.0"]);
    assert!(
        error
            .to_string()
            .contains("multiple channel heads found: [multi.v1.1.0 multi.v2.0.0]")
    );
    let fix = fix.as_ref().expect("a fix");
    assert_eq!(
        (fix.bundle.as_str(), fix.version.as_str()),
        ("multi.v2.0.0", "2.0.0")
    );
    assert_eq!(
        fix.yaml,
        "- name: multi\n  channels:\n  - name: fast\n  - name: stable\n    minVersion: 2.0.0\n    maxVersion: 2.0.0\n"
    );
    // Writing the lines into the configuration gives one head.
    let fixed = operator(&format!("packages:\n{}", fix.yaml));
    let filtered = catalog::filter(&catalog, &fixed).unwrap();
    let kept: Vec<&str> = filtered.bundles.iter().map(|b| b.name.as_str()).collect();
    assert_eq!(kept, ["multi.v1.0.0", "multi.v2.0.0"]);

    // A range does not help: oc-mirror checks the whole channel first.
    let ranged = operator("packages:\n- name: multi\n  minVersion: 1.1.0");
    assert!(matches!(
        catalog::filter(&catalog, &ranged),
        Err(FilterError::MultipleHeads { .. })
    ));
}

#[test]
fn broken_channel_graphs_name_package_channel_and_bundles() {
    let cycle = multi_catalog(&[
        ("multi.v3.0.0", Some("multi.v1.0.0")),
        ("multi.v1.0.0", Some("multi.v2.0.0")),
        ("multi.v2.0.0", Some("multi.v1.0.0")),
    ]);
    let message = catalog::filter(&cycle, &operator(""))
        .unwrap_err()
        .to_string();
    for part in [
        "\"multi\"",
        "\"stable\"",
        "cycle",
        "multi.v1.0.0 multi.v2.0.0",
    ] {
        assert!(message.contains(part), "{message}");
    }
    let no_head = multi_catalog(&[
        ("multi.v1.0.0", Some("multi.v2.0.0")),
        ("multi.v2.0.0", Some("multi.v1.0.0")),
    ]);
    let message = catalog::filter(&no_head, &operator(""))
        .unwrap_err()
        .to_string();
    assert!(
        message.contains("\"stable\": no channel heads found"),
        "{message}"
    );
    // A non-default channel a range empties is left out, with a warning.
    let fine = multi_catalog(&[
        ("multi.v1.0.0", None),
        ("multi.v2.0.0", Some("multi.v1.0.0")),
    ]);
    let filtered = catalog::filter(
        &fine,
        &operator("packages:\n- name: multi\n  minVersion: 2.0.0"),
    )
    .unwrap();
    let channels: Vec<&str> = filtered.packages[0]
        .channels
        .iter()
        .map(|c| c.name.as_str())
        .collect();
    assert_eq!(channels, ["stable"]);
    assert!(
        filtered.warnings.iter().any(|w| w.contains("\"fast\"")),
        "{:?}",
        filtered.warnings
    );
}

#[test]
fn images_of_kept_bundles() {
    let catalog = load_file(
        "openshift+oc-mirror/tests/unit/testdata/working-dir-fake/hold-operator/redhat-operator-index/v4.14/configs/node-observability-operator/catalog.json",
    );
    let filtered = catalog::filter(&catalog, &operator("")).unwrap();
    let images = catalog::bundle_images(&catalog, &filtered).unwrap();
    let bundle = &catalog.bundles[0];
    assert_eq!(filtered.bundles.len(), 1);
    assert!(images[0].is_bundle_image);
    assert_eq!(images[0].reference.to_string(), bundle.image);
    // The bundle image also appears among the related images: listed once.
    let mut expected: Vec<String> = vec![bundle.image.clone()];
    for related in &bundle.related_images {
        if !expected.contains(related) {
            expected.push(related.clone());
        }
    }
    let listed: Vec<String> = images
        .iter()
        .map(|image| image.reference.to_string())
        .collect();
    assert_eq!(listed, expected);
    assert!(
        images
            .iter()
            .all(|image| image.bundle == bundle.name && image.package == bundle.package)
    );

    // A related image with neither tag nor digest fails, naming the bundle.
    let invalid = load_dir(&fixtures().join(
        "openshift+oc-mirror/tests/integration/image-builders/operator/catalogs/test-catalog-invalid-images",
    ));
    let filtered = catalog::filter(
        &invalid,
        &operator("packages:\n- name: foo\n  channels:\n  - name: beta"),
    )
    .unwrap();
    let error = catalog::bundle_images(&invalid, &filtered).unwrap_err();
    assert_eq!(error.package, "foo");
    assert_eq!(error.bundle, "foo.v0.9.9-invalid-related-image");
    assert_eq!(error.image, "registry.example.com/foo/operand-missing-tag");
}

#[test]
fn missing_dependencies_come_with_lines_that_add_them() {
    let catalog = load_file(&format!("{INDEX_DECLCFGS}/latest/index.yaml"));
    let filtered = catalog::filter(&catalog, &operator("packages:\n- name: foo")).unwrap();
    let missing = catalog::missing_dependencies(&catalog, &filtered);
    // foo.v0.3.1 requires bar <0.2.0 and the API test.bar/v1alpha1 Bar.
    let requirements: Vec<&catalog::Requirement> = missing.iter().map(|m| &m.requirement).collect();
    assert_eq!(
        requirements,
        [
            &catalog::Requirement::Package {
                package: "bar".to_owned(),
                version_range: "<0.2.0".to_owned()
            },
            &catalog::Requirement::Api(catalog::Api {
                group: "test.bar".to_owned(),
                version: "v1alpha1".to_owned(),
                kind: "Bar".to_owned()
            }),
        ]
    );
    assert!(missing.iter().all(|m| m.bundle == "foo.v0.3.1"));
    assert_eq!(
        missing[0].suggestion.as_deref(),
        Some(
            "- name: bar\n  defaultChannel: alpha\n  channels:\n  - name: alpha\n    minVersion: 0.1.0\n    maxVersion: 0.1.0\n"
        )
    );
    // With the suggested lines added, nothing is missing.
    let fixed = operator(&format!(
        "packages:\n- name: foo\n{}",
        missing[0].suggestion.as_ref().unwrap()
    ));
    let filtered = catalog::filter(&catalog, &fixed).unwrap();
    assert_eq!(catalog::missing_dependencies(&catalog, &filtered), []);

    // Heads of the whole catalog: bar.v1.0.0 provides the API but not a
    // version below 0.2.0.
    let heads = catalog::filter(&catalog, &operator("")).unwrap();
    let missing = catalog::missing_dependencies(&catalog, &heads);
    assert_eq!(missing.len(), 1);
    assert!(
        missing[0]
            .to_string()
            .contains("requires package \"bar\" <0.2.0"),
        "{}",
        missing[0]
    );
}

#[test]
fn listing_packages_channels_versions_and_bundles() {
    use catalog::listing;
    let jaeger = jaeger();
    assert_eq!(
        listing::packages(&jaeger),
        [listing::PackageRow {
            name: "jaeger-product".to_owned(),
            default_channel: "stable".to_owned()
        }]
    );
    let channels = listing::channels(&jaeger, "jaeger-product");
    assert_eq!(channels.len(), 1);
    assert_eq!(channels[0].head.as_deref(), Ok("jaeger-operator.v1.51.0-1"));
    assert_eq!(
        listing::versions(&jaeger, "jaeger-product", "stable"),
        [
            "1.30.2",
            "1.34.1-5",
            "1.42.0-5",
            "1.42.0-5+0.1687199951.p",
            "1.47.1-5",
            "1.51.0-1"
        ]
    );

    let latest = test_catalog_latest();
    let filtered = catalog::filter(&latest, &operator("")).unwrap();
    let rows = listing::bundle_rows("oci:///tmp/catalog", &latest, &filtered);
    let json = serde_json::to_value(&rows).unwrap();
    assert_eq!(
        json[2],
        serde_json::json!({
            "catalog": "oci:///tmp/catalog",
            "package": "foo",
            "bundle": "foo.v0.3.1",
            "version": "0.3.1",
            "channels": ["beta"],
            "image": "quay.io/oc-mirror/oc-mirror-dev:foo-bundle-v0.3.1",
        })
    );
    assert_eq!(rows.len(), 3);
    let multi = multi_catalog(&[("multi.v1.0.0", None), ("multi.v2.0.0", None)]);
    let channels = listing::channels(&multi, "multi");
    assert_eq!(channels[0].head.as_deref(), Ok("multi.v1.0.0"));
    assert!(
        channels[1]
            .head
            .as_ref()
            .unwrap_err()
            .to_string()
            .contains("multiple channel heads")
    );
}
