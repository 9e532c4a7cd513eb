//! `ferry registries-conf`'s stage (the command line reads the files and
//! prints): a repository-scoped `registries.conf` (containers-registries.conf(5),
//! version 2) written from the ImageDigestMirrorSet and ImageTagMirrorSet a
//! disk-to-mirror or mirror-to-mirror run left in
//! `working-dir/cluster-resources/`, so that tools on the mirror's side
//! (ferry's mirror-to-disk for an enclave, skopeo, podman) find every image
//! at the mirror while asking for its public name.
//!
//! The host-level example of the product documentation cannot find
//! releases: they live under `openshift/release-images` and
//! `openshift/release` after disk-to-mirror, not under their public paths.
//! The mirror sets name exactly where each source went, so:
//! - one `[[registry]]` table per source of the mirror sets (its own
//!   `location`, so a name the mirror lacks is still asked of its source),
//!   with each mirror as a `[[registry.mirror]]`; a source only the IDMS
//!   names is mirrored by digest only (`mirror-by-digest-only`: its mirror's
//!   tags may name other things), one the ITMS names serves tags and
//!   digests alike (disk-to-mirror keeps digests, so a tag mirror holds the
//!   same digests);
//! - for each source host, a host-level table pointing at the destination
//!   the mirror sets show (`<destination>/<path>`, as disk-to-mirror names
//!   every image but releases), for what the mirror sets leave out: operator
//!   catalogs (they go in CatalogSources, not in the mirror sets). The
//!   longer prefixes above win over it.
//!
//! Bad input (unreadable YAML, another kind, a source or mirror that is
//! not `host[:port][/path]`) comes back as problems with their spans, for
//! the file, line and a snippet.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use ferry_schemas::{Problem, Span};

/// The two files disk-to-mirror and mirror-to-mirror write.
pub const DIGEST_FILE: &str = "idms-oc-mirror.yaml";
pub const TAG_FILE: &str = "itms-oc-mirror.yaml";

/// How a source's mirrors may be used.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Pulls {
    /// Named by the IDMS only.
    DigestsOnly,
    /// Named by an ITMS (tags), perhaps by the IDMS too.
    TagsAndDigests,
}

/// `source` → mirror → how it may be used.
pub type MirrorTable = BTreeMap<String, BTreeMap<String, Pulls>>;

/// The folder holding the mirror sets: `from` itself, or its
/// `working-dir/cluster-resources`.
pub fn cluster_resources_folder(from: &str) -> Result<PathBuf, String> {
    let folder = PathBuf::from(from.strip_prefix("file://").unwrap_or(from));
    let holds_mirror_sets =
        |folder: &Path| folder.join(DIGEST_FILE).is_file() || folder.join(TAG_FILE).is_file();
    if holds_mirror_sets(&folder) {
        return Ok(folder);
    }
    let nested = folder.join("working-dir").join("cluster-resources");
    if holds_mirror_sets(&nested) {
        return Ok(nested);
    }
    if !folder.is_dir() {
        return Err(format!("{} is not a folder", folder.display()));
    }
    Err(format!(
        "{} holds neither {DIGEST_FILE} nor {TAG_FILE} (nor does its working-dir/cluster-resources): name the cluster-resources folder a disk-to-mirror or mirror-to-mirror run wrote",
        folder.display()
    ))
}

/// The byte offset of each YAML document of `text` (split at `---` lines).
fn documents(text: &str) -> Vec<(usize, &str)> {
    let mut starts = vec![0];
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        let bare = line.trim_end();
        if offset > 0 && (bare == "---" || bare.starts_with("--- ")) {
            starts.push(offset);
        }
        offset += line.len();
    }
    starts.push(text.len());
    starts
        .windows(2)
        .map(|pair| (pair[0], &text[pair[0]..pair[1]]))
        .collect()
}

/// The span of `needle` in `document` (at `start` in the file), else the
/// document's first line.
fn span_of(document: &str, start: usize, needle: &str) -> Span {
    match (!needle.is_empty())
        .then(|| document.find(needle))
        .flatten()
    {
        Some(at) => Span::new(start + at, needle.len()),
        None => Span::new(start, document.find('\n').unwrap_or(document.len())),
    }
}

/// Why `name` cannot be a `source` or `mirror` of a mirror set (a registry
/// scope: `host[:port][/path]`, no tag or digest), if it cannot.
fn scope_problem(name: &str) -> Option<&'static str> {
    if name.is_empty() {
        return Some("is empty");
    }
    if name.contains("://") {
        return Some("has a transport (`docker://`): a mirror set names `host[:port][/path]`");
    }
    if name.contains('@') {
        return Some("has a digest: a mirror set names repositories, not images");
    }
    if name
        .chars()
        .any(|character| character.is_whitespace() || "\"\\'".contains(character))
    {
        return Some("has spaces or quotes");
    }
    if name.ends_with('/') || name.starts_with('/') || name.contains("//") {
        return Some("has an empty path component");
    }
    let path = name.split_once('/').map_or("", |(_, path)| path);
    if path.contains(':') {
        return Some("has a tag: a mirror set names repositories, not images");
    }
    if path.chars().any(|character| character.is_ascii_uppercase()) {
        return Some("has upper-case letters in its path (repository names are lower case)");
    }
    None
}

/// Adds the mirrors of every ImageDigestMirrorSet and ImageTagMirrorSet
/// in `text` to `table`; the problems found, if any.
pub fn read_mirror_sets(text: &str, table: &mut MirrorTable) -> Result<(), Vec<Problem>> {
    let mut problems = Vec::new();
    for (start, document) in documents(text) {
        let value: serde_yaml::Value = match serde_yaml::from_str(document) {
            Ok(value) => value,
            Err(cause) => {
                // The snippet shows where; serde's own line numbers count
                // from the document, not the file.
                let at = cause.location().map_or(0, |location| location.index());
                let message = cause.to_string();
                let message = message.split(" at line ").next().unwrap_or_default();
                problems.push(Problem::error(
                    format!("not YAML: {message}"),
                    Span::new(start + at.min(document.len().saturating_sub(1)), 1),
                    "here",
                ));
                continue;
            }
        };
        if value.is_null() {
            continue;
        }
        let kind = value["kind"].as_str().unwrap_or_default();
        let (field, pulls) = match kind {
            "ImageDigestMirrorSet" => ("imageDigestMirrors", Pulls::DigestsOnly),
            "ImageTagMirrorSet" => ("imageTagMirrors", Pulls::TagsAndDigests),
            _ => {
                problems.push(
                    Problem::error(
                        format!(
                            "not a mirror set: kind is {}",
                            if kind.is_empty() { "missing" } else { kind }
                        ),
                        span_of(document, start, if kind.is_empty() { "" } else { kind }),
                        "expected ImageDigestMirrorSet or ImageTagMirrorSet",
                    )
                    .with_help(format!(
                        "name the cluster-resources folder holding {DIGEST_FILE} and {TAG_FILE}"
                    )),
                );
                continue;
            }
        };
        let Some(entries) = value["spec"][field].as_sequence() else {
            problems.push(Problem::error(
                format!("{kind} without spec.{field}"),
                span_of(document, start, kind),
                format!("spec.{field} (a list) expected in this object"),
            ));
            continue;
        };
        for entry in entries {
            let source = entry["source"].as_str();
            let mirrors: Option<Vec<&str>> = entry["mirrors"]
                .as_sequence()
                .map(|mirrors| mirrors.iter().filter_map(|m| m.as_str()).collect());
            let (Some(source), Some(mirrors)) = (source, mirrors) else {
                problems.push(Problem::error(
                    format!(
                        "an entry of spec.{field} needs `source` (text) and `mirrors` (a list)"
                    ),
                    span_of(document, start, source.unwrap_or(field)),
                    "this entry",
                ));
                continue;
            };
            let mut good = true;
            for (role, name) in
                std::iter::once(("source", source)).chain(mirrors.iter().map(|m| ("mirror", *m)))
            {
                if let Some(why) = scope_problem(name) {
                    problems.push(
                        Problem::error(
                            format!("{role} `{name}` {why}"),
                            span_of(document, start, name),
                            format!("this {role}"),
                        )
                        .with_help("a source or mirror is `host[:port][/path]`"),
                    );
                    good = false;
                }
            }
            if mirrors.is_empty() {
                problems.push(Problem::error(
                    format!("source `{source}` lists no mirrors"),
                    span_of(document, start, source),
                    "this source",
                ));
                good = false;
            }
            if good {
                let known = table.entry(source.to_owned()).or_default();
                for mirror in mirrors {
                    let current = known.entry(mirror.to_owned()).or_insert(pulls);
                    *current = (*current).max(pulls);
                }
            }
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems)
    }
}

/// Host → the destinations (`registry[/prefix]`) the mirror sets show for
/// it: every mirror that ends with its source's path names one. Hosts that
/// have a table of their own are left out.
pub fn host_level_tables(table: &MirrorTable) -> BTreeMap<String, BTreeSet<String>> {
    let mut hosts: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (source, mirrors) in table {
        let Some((host, path)) = source.split_once('/') else {
            continue;
        };
        if host.starts_with("*.") || table.contains_key(host) {
            continue;
        }
        for mirror in mirrors.keys() {
            if let Some(destination) = mirror.strip_suffix(&format!("/{path}")) {
                hosts
                    .entry(host.to_owned())
                    .or_default()
                    .insert(destination.to_owned());
            }
        }
    }
    hosts
}

/// A TOML basic string.
fn quoted(text: &str) -> String {
    // The names are checked above to need no escapes beyond JSON's, which
    // TOML's basic strings share.
    serde_json::Value::String(text.to_owned()).to_string()
}

fn mirror_lines(text: &mut String, location: &str, insecure: bool, pull: Option<&str>) {
    let _ = writeln!(text, "\n[[registry.mirror]]");
    let _ = writeln!(text, "location = {}", quoted(location));
    if insecure {
        let _ = writeln!(text, "insecure = true");
    }
    if let Some(pull) = pull {
        let _ = writeln!(text, "pull-from-mirror = {}", quoted(pull));
    }
}

/// The `registries.conf` text for `table`; `read` names the files it came
/// from (in the header).
pub fn registries_conf(table: &MirrorTable, insecure: bool, read: &[&str]) -> String {
    let mut text = String::from(
        "# registries.conf (containers-registries.conf(5), version 2) written by\n\
         # `ferry registries-conf` from:\n",
    );
    for name in read {
        let _ = writeln!(text, "#   {name}");
    }
    text.push_str(
        "# Each public name below is pulled from its mirror first, then from the name\n\
         # itself. Pass it with --registries-conf FILE (ferry, skopeo, podman).\n",
    );
    for (source, mirrors) in table {
        let digests_only = mirrors.values().all(|pulls| *pulls == Pulls::DigestsOnly);
        let mixed = !digests_only && mirrors.values().any(|pulls| *pulls == Pulls::DigestsOnly);
        let _ = writeln!(text, "\n[[registry]]");
        let _ = writeln!(text, "prefix = {}", quoted(source));
        // A wildcard prefix (`*.example.com`) keeps each name as it is.
        if !source.starts_with("*.") {
            let _ = writeln!(text, "location = {}", quoted(source));
        }
        if digests_only {
            let _ = writeln!(text, "mirror-by-digest-only = true");
        }
        for (mirror, pulls) in mirrors {
            let pull = (mixed && *pulls == Pulls::DigestsOnly).then_some("digest-only");
            mirror_lines(&mut text, mirror, insecure, pull);
        }
    }
    let hosts = host_level_tables(table);
    if !hosts.is_empty() {
        text.push_str(
            "\n# The rest of each host, where disk-to-mirror puts every image but releases\n\
             # (<destination>/<path>): operator catalogs, which the mirror sets leave out.\n",
        );
    }
    for (host, destinations) in hosts {
        let _ = writeln!(text, "\n[[registry]]");
        let _ = writeln!(text, "prefix = {}", quoted(&host));
        let _ = writeln!(text, "location = {}", quoted(&host));
        for destination in destinations {
            mirror_lines(&mut text, &destination, insecure, None);
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferry_registry::{PullFromMirror, RegistriesConf};

    const IDMS: &str = "---\napiVersion: config.openshift.io/v1\nkind: ImageDigestMirrorSet\nmetadata:\n  name: idms-release-0\nspec:\n  imageDigestMirrors:\n  - mirrors:\n    - ent.example:5000/openshift/release\n    source: quay.io/openshift-release-dev/ocp-v4.0-art-dev\n  - mirrors:\n    - ent.example:5000/openshift/release-images\n    source: quay.io/openshift-release-dev/ocp-release\n---\napiVersion: config.openshift.io/v1\nkind: ImageDigestMirrorSet\nmetadata:\n  name: idms-operator-0\nspec:\n  imageDigestMirrors:\n  - mirrors:\n    - ent.example:5000/rhosdt\n    source: registry.redhat.io/rhosdt\n";
    const ITMS: &str = "---\napiVersion: config.openshift.io/v1\nkind: ImageTagMirrorSet\nmetadata:\n  name: itms-generic-0\nspec:\n  imageTagMirrors:\n  - mirrors:\n    - ent.example:5000/ferry-demo\n    source: quay.io/ferry-demo\n";

    fn table_of(texts: &[&str]) -> MirrorTable {
        let mut table = MirrorTable::new();
        for text in texts {
            read_mirror_sets(text, &mut table).unwrap();
        }
        table
    }

    fn pulls(conf: &RegistriesConf, name: &str) -> Vec<String> {
        conf.pull_sources(&name.parse().unwrap())
            .unwrap()
            .iter()
            .map(|source| source.reference.to_string())
            .collect()
    }

    #[test]
    fn releases_resolve_to_their_renamed_repositories_and_the_rest_to_the_destination() {
        let table = table_of(&[IDMS, ITMS]);
        let text = registries_conf(&table, true, &["idms", "itms"]);
        let conf = RegistriesConf::parse(Path::new("r.conf"), &text).unwrap();
        let digest = format!("sha256:{}", "a".repeat(64));
        assert_eq!(
            pulls(
                &conf,
                &format!("quay.io/openshift-release-dev/ocp-release@{digest}")
            ),
            [
                format!("ent.example:5000/openshift/release-images@{digest}"),
                format!("quay.io/openshift-release-dev/ocp-release@{digest}"),
            ]
        );
        assert_eq!(
            pulls(
                &conf,
                &format!("quay.io/openshift-release-dev/ocp-v4.0-art-dev@{digest}")
            )[0],
            format!("ent.example:5000/openshift/release@{digest}")
        );
        // A release by tag: the IDMS mirror is not asked (its tags differ).
        assert_eq!(
            pulls(
                &conf,
                "quay.io/openshift-release-dev/ocp-release:4.16.2-x86_64"
            ),
            ["quay.io/openshift-release-dev/ocp-release:4.16.2-x86_64"]
        );
        // An ITMS source: tags and digests from the mirror.
        assert_eq!(
            pulls(&conf, "quay.io/ferry-demo/hello:1.0")[0],
            "ent.example:5000/ferry-demo/hello:1.0"
        );
        // A catalog the mirror sets leave out: the host-level table.
        assert_eq!(
            pulls(
                &conf,
                "registry.redhat.io/redhat/redhat-operator-index:v4.16"
            ),
            [
                "ent.example:5000/redhat/redhat-operator-index:v4.16",
                "registry.redhat.io/redhat/redhat-operator-index:v4.16"
            ]
        );
        assert!(conf.is_insecure("ent.example:5000"));
        // Both hosts got a host-level table pointing at the one destination.
        assert_eq!(
            host_level_tables(&table),
            BTreeMap::from([
                (
                    "quay.io".to_owned(),
                    BTreeSet::from(["ent.example:5000".to_owned()])
                ),
                (
                    "registry.redhat.io".to_owned(),
                    BTreeSet::from(["ent.example:5000".to_owned()])
                ),
            ])
        );
    }

    #[test]
    fn a_source_in_both_files_serves_tags_and_only_the_digest_mirror_is_restricted() {
        let both = "---\nkind: ImageTagMirrorSet\nspec:\n  imageTagMirrors:\n  - mirrors:\n    - tags.example/ns\n    source: quay.io/ns\n---\nkind: ImageDigestMirrorSet\nspec:\n  imageDigestMirrors:\n  - mirrors:\n    - digests.example/ns\n    - tags.example/ns\n    source: quay.io/ns\n";
        let table = table_of(&[both]);
        let text = registries_conf(&table, false, &[]);
        let conf = RegistriesConf::parse(Path::new("r.conf"), &text).unwrap();
        let registry = conf.find("quay.io/ns/app:1").unwrap();
        assert!(!registry.mirror_by_digest_only);
        let modes: Vec<(&str, PullFromMirror)> = registry
            .mirrors
            .iter()
            .map(|mirror| (mirror.location.as_str(), mirror.pull_from_mirror))
            .collect();
        assert_eq!(
            modes,
            [
                ("digests.example/ns", PullFromMirror::DigestOnly),
                ("tags.example/ns", PullFromMirror::All)
            ]
        );
        assert!(!text.contains("insecure"));
    }

    #[test]
    fn bad_mirror_sets_are_refused_with_the_place_named() {
        let cases = [
            ("kind: ConfigMap\n", "not a mirror set: kind is ConfigMap"),
            (
                "kind: ImageDigestMirrorSet\nspec: {}\n",
                "without spec.imageDigestMirrors",
            ),
            (
                "kind: ImageTagMirrorSet\nspec:\n  imageTagMirrors:\n  - source: quay.io/ns\n",
                "needs `source` (text) and `mirrors` (a list)",
            ),
            (
                "kind: ImageTagMirrorSet\nspec:\n  imageTagMirrors:\n  - source: quay.io/ns/app:1.0\n    mirrors: [m.example/ns]\n",
                "source `quay.io/ns/app:1.0` has a tag",
            ),
            (
                "kind: ImageTagMirrorSet\nspec:\n  imageTagMirrors:\n  - source: quay.io/ns\n    mirrors: [\"docker://m.example/ns\"]\n",
                "has a transport",
            ),
            (
                "kind: ImageTagMirrorSet\nspec:\n  imageTagMirrors:\n  - source: quay.io/ns\n    mirrors: []\n",
                "lists no mirrors",
            ),
            ("kind: [unclosed\n", "not YAML"),
        ];
        for (text, expected) in cases {
            let problems = read_mirror_sets(text, &mut MirrorTable::new()).unwrap_err();
            assert!(
                problems
                    .iter()
                    .any(|problem| problem.message.contains(expected)),
                "{text}: {problems:?}"
            );
            assert!(
                problems
                    .iter()
                    .all(|problem| problem.span.offset <= text.len())
            );
        }
        // The span points at the offending value in its own document.
        let text = "---\nkind: ImageDigestMirrorSet\nspec:\n  imageDigestMirrors: []\n---\nkind: ImageTagMirrorSet\nspec:\n  imageTagMirrors:\n  - source: quay.io/NS/app\n    mirrors: [m.example/ns]\n";
        let problems = read_mirror_sets(text, &mut MirrorTable::new()).unwrap_err();
        assert_eq!(problems.len(), 1);
        assert_eq!(
            &text[problems[0].span.range()],
            "quay.io/NS/app",
            "{problems:?}"
        );
    }

    #[test]
    fn a_wildcard_source_keeps_each_name_and_gets_no_host_level_table() {
        let text = "kind: ImageTagMirrorSet\nspec:\n  imageTagMirrors:\n  - source: \"*.example.com\"\n    mirrors: [m.example/all]\n";
        let table = table_of(&[text]);
        assert!(host_level_tables(&table).is_empty());
        let written = registries_conf(&table, false, &[]);
        assert!(
            !written.contains("location = \"*.example.com\""),
            "{written}"
        );
        let conf = RegistriesConf::parse(Path::new("r.conf"), &written).unwrap();
        assert_eq!(
            pulls(&conf, "registry.example.com/team/app:1.0"),
            [
                "m.example/all/team/app:1.0",
                "registry.example.com/team/app:1.0"
            ]
        );
    }

    #[test]
    fn documents_split_at_separator_lines_only() {
        let text = "---\na: 1\n---\nb: '---'\n--- \nc: 3\n";
        let found: Vec<&str> = documents(text).into_iter().map(|(_, doc)| doc).collect();
        assert_eq!(found, ["---\na: 1\n", "---\nb: '---'\n", "--- \nc: 3\n"]);
    }
}
