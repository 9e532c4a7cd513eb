//! registries.conf against containers/image's own fixtures (read from
//! `../shared/fixtures/containers+image/pkg/sysregistriesv2/testdata`).

use std::path::PathBuf;

use ferry_registry::RegistriesConf;
use ferry_registry::registries_conf::PullError;
use ferry_schemas::ImageReference;

const DIGEST: &str = "sha256:0000000000000000000000000000000000000000000000000000000000000001";

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/fixtures/containers+image/pkg/sysregistriesv2/testdata")
        .join(name)
}

fn load(name: &str) -> RegistriesConf {
    let path = fixture(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    RegistriesConf::parse(&path, &text).unwrap_or_else(|e| panic!("{e}"))
}

fn sources(configuration: &RegistriesConf, reference: &str) -> Vec<String> {
    let reference: ImageReference = reference.parse().unwrap();
    configuration
        .pull_sources(&reference)
        .unwrap()
        .iter()
        .map(ToString::to_string)
        .collect()
}

#[test]
fn valid_fixtures_parse() {
    for name in [
        "pull-sources-from-reference.conf",
        "mirrors.conf",
        "unmarshal.conf",
        "find-registry.conf",
        "unqualified-search.conf",
        "aliases.conf",
        "v1-compatibility.conf",
    ] {
        load(name);
    }
}

#[test]
fn invalid_fixtures_are_refused_with_a_reason() {
    for (name, expected) in [
        ("invalid-prefix.conf", "scheme"),
        (
            "invalid-config-level-mirror.conf",
            "pull-from-mirror is a setting of a [[registry.mirror]]",
        ),
        (
            "invalid-value-mirror.conf",
            "unsupported pull-from-mirror value `notvalid`",
        ),
        ("invalid-conflict-mirror.conf", "mirror-by-digest-only"),
        ("missing-mirror-location.conf", "has no location"),
        ("blocked-conflicts.conf", "conflicting `blocked`"),
        ("insecure-conflicts.conf", "conflicting `insecure`"),
    ] {
        let path = fixture(name);
        let text = std::fs::read_to_string(&path).unwrap();
        let error = RegistriesConf::parse(&path, &text).expect_err(name);
        let message = error.to_string();
        assert!(message.contains(expected), "{name}: {message}");
        assert!(
            message.contains(name),
            "the error names the file: {message}"
        );
    }
}

#[test]
fn mirrors_come_first_and_follow_pull_from_mirror() {
    let conf = load("pull-sources-from-reference.conf");
    let by_digest = |name: &str| format!("{name}@{DIGEST}");
    assert_eq!(
        sources(&conf, "registry-a.com/foo/image:latest"),
        [
            "mirror-1.registry-a.com/image:latest (mirror)",
            "mirror-2.registry-a.com/image:latest (mirror, insecure)",
            "registry-a.com/bar/image:latest (primary)",
        ]
    );
    // mirror-by-digest-only: tags go to the primary only.
    assert_eq!(
        sources(&conf, "registry-b.com/foo/image:latest"),
        ["registry-b.com/bar/image:latest (primary)"]
    );
    assert_eq!(
        sources(&conf, &by_digest("registry-b.com/foo/image")).len(),
        3
    );
    // Per-mirror digest-only.
    assert_eq!(sources(&conf, "registry-b.com/baz/image:latest").len(), 1);
    assert_eq!(
        sources(&conf, &by_digest("registry-b.com/baz/image")).len(),
        3
    );
    // One mirror for everything, one digest-only.
    assert_eq!(
        sources(&conf, "registry-c.com/baz/image:latest"),
        [
            "mirror-1.registry-c.com/image:latest (mirror)",
            "registry-c.com/bar/image:latest (primary)",
        ]
    );
    // Tag-only mirrors are skipped for digests.
    assert_eq!(
        sources(&conf, &by_digest("registry-e.com/baz/image")),
        [format!("registry-e.com/bar/image@{DIGEST} (primary)")]
    );
    assert_eq!(sources(&conf, "registry-e.com/baz/image:latest").len(), 3);
    // Digest-only, tag-only, default and explicit `all`, in order.
    assert_eq!(
        sources(&conf, "registry-g.com/baz/image:latest"),
        [
            "mirror-2.registry-g.com/image:latest (mirror)",
            "mirror-3.registry-g.com/image:latest (mirror)",
            "mirror-4.registry-g.com/image:latest (mirror)",
            "registry-g.com/bar/image:latest (primary)",
        ]
    );
    assert_eq!(
        sources(&conf, &by_digest("registry-g.com/baz/image")),
        [
            format!("mirror-1.registry-g.com/image@{DIGEST} (mirror)"),
            format!("mirror-3.registry-g.com/image@{DIGEST} (mirror)"),
            format!("mirror-4.registry-g.com/image@{DIGEST} (mirror)"),
            format!("registry-g.com/bar/image@{DIGEST} (primary)"),
        ]
    );
    // No table: the reference as it is.
    assert_eq!(sources(&conf, "quay.io/a/b:1"), ["quay.io/a/b:1 (primary)"]);
}

#[test]
fn longest_prefix_and_wildcards_choose_the_table() {
    let conf = load("find-registry.conf");
    let location = |name: &str| conf.find(name).map(|registry| registry.location.clone());
    assert_eq!(
        location("simple-prefix.com/foo/bar:latest").as_deref(),
        Some("registry.com:5000")
    );
    assert_eq!(
        location("complex-prefix.com:4000/with/path/and/beyond:tag").as_deref(),
        Some("another-registry.com:5000")
    );
    assert_eq!(
        location("no-prefix.com/foo:tag").as_deref(),
        Some("no-prefix.com")
    );
    assert_eq!(
        location("empty-prefix.com/foo:tag").as_deref(),
        Some("empty-prefix.com")
    );
    assert_eq!(
        location("sub.so.simple-prefix.com/foo").as_deref(),
        Some("subdomain-prefix.com")
    );
    assert_eq!(
        location("not.so.simple-prefix.com/foo").as_deref(),
        Some("subdomain-prefix.com")
    );
    assert_eq!(
        location("not.quite.simple-prefix.com/foo").as_deref(),
        Some("subdomain-prefix-2.com")
    );
    assert_eq!(
        location("foo.bar.example.com:5000/a").as_deref(),
        Some("subdomain-prefix-5.com")
    );
    // A prefix matches only at a boundary.
    assert_eq!(
        location("simple-prefix.community/foo"),
        location("x.community/foo")
    );
    // `*.docker.io` does not match docker.io itself.
    assert_ne!(
        location("docker.io/library/foo").as_deref(),
        Some("subdomain-prefix-2.com")
    );
}

#[test]
fn blocked_registries_refuse_every_pull() {
    let conf = load("mirrors.conf");
    let reference: ImageReference = "blocked.registry.com/image:latest".parse().unwrap();
    let error = conf.pull_sources(&reference).unwrap_err();
    assert!(matches!(error, PullError::Blocked { .. }));
    assert!(error.to_string().contains("mirrors.conf"), "{error}");
}

#[test]
fn version_1_tables_are_read() {
    let conf = load("v1-compatibility.conf");
    assert_eq!(
        conf.unqualified_search_registries(),
        ["registry-a.com", "registry-c.com", "registry-d.com"]
    );
    assert!(conf.find("registry-b.com/x").unwrap().blocked);
    assert!(conf.is_insecure("registry-e.com"));
}

#[test]
fn drop_ins_override_in_name_order() {
    let folder = tempfile::tempdir().unwrap();
    let main = folder.path().join("registries.conf");
    std::fs::write(
        &main,
        "unqualified-search-registries = [\"a.com\"]\n[[registry]]\nprefix = \"quay.io\"\nlocation = \"one.example.com/quay\"\n",
    )
    .unwrap();
    let drop_ins = folder.path().join("registries.conf.d");
    std::fs::create_dir(&drop_ins).unwrap();
    std::fs::write(
        drop_ins.join("10-first.conf"),
        "[[registry]]\nprefix = \"quay.io\"\nlocation = \"two.example.com/quay\"\n",
    )
    .unwrap();
    std::fs::write(
        drop_ins.join("20-second.conf"),
        "unqualified-search-registries = [\"b.com\"]\n[[registry]]\nlocation = \"registry.redhat.io\"\nblocked = true\n",
    )
    .unwrap();
    std::fs::write(drop_ins.join("ignored.txt"), "not toml").unwrap();
    let conf = RegistriesConf::load(Some(&main), &[drop_ins]).unwrap();
    assert_eq!(
        conf.find("quay.io/x").unwrap().location,
        "two.example.com/quay"
    );
    assert_eq!(conf.unqualified_search_registries(), ["b.com"]);
    assert!(conf.find("registry.redhat.io/x").unwrap().blocked);
    assert_eq!(conf.files().len(), 3);
}

#[test]
fn a_named_file_that_is_missing_is_an_error_naming_it() {
    let folder = tempfile::tempdir().unwrap();
    let missing = folder.path().join("enclave-registries.conf");
    let error = RegistriesConf::load_named(&missing).unwrap_err();
    assert_eq!(error.path, missing);
    assert!(
        error.to_string().contains("enclave-registries.conf"),
        "{error}"
    );
    assert!(error.message.contains("does not exist"), "{error}");
    // A folder is no file either.
    let error = RegistriesConf::load_named(folder.path()).unwrap_err();
    assert!(error.message.contains("folder"), "{error}");
    // A default path may be absent, as in containers/image.
    let empty = RegistriesConf::load(Some(&missing), &[]).unwrap();
    assert!(empty.registries().is_empty());
    // A named file that exists is read.
    std::fs::write(
        &missing,
        "[[registry]]\nprefix = \"quay.io\"\nlocation = \"127.0.0.1:5000/quay\"\n",
    )
    .unwrap();
    let named = RegistriesConf::load_named(&missing).unwrap();
    assert_eq!(named.registries().len(), 1);
    assert_eq!(named.files(), [missing]);
}
