//! The `org.opencontainers.image.ref.name` of each image in `index.json`:
//! a name skopeo (containers/image) accepts after `oci-archive:PATH:`.
//!
//! containers/image splits `oci-archive:PATH:REF` at the first `:` after
//! the transport, so PATH cannot hold a colon and REF may. REF is then
//! checked against the OCI annotation grammar
//! (`oci/internal/oci_util.go`, `ValidateImageName`):
//!
//! ```text
//! ref       := component ("/" component)*
//! component := alnum+ (separator alnum+)*
//! alnum     := [A-Za-z0-9]
//! separator := one of - . _ : @ +   or exactly "--"
//! ```
//!
//! So ordinary names pass unchanged, tags and digests included:
//! `quay.io/ferry-demo/app:1.0`, `localhost:5000/a/b:v1` and
//! `quay.io/x/y@sha256:<hex>` are all valid refs. What the grammar refuses
//! and image names allow is a run of separators (`a__b`, `a---b`, `a-.b`);
//! such a run becomes its first character, or `-` when that is not a
//! separator. When that makes two images share a ref, the later one (by
//! name) gets `-` and 12 hex digits of the sha256 of its full name
//! appended.

use std::collections::{BTreeMap, BTreeSet};

const SEPARATORS: &[char] = &['-', '.', '_', ':', '@', '+'];

/// Whether skopeo accepts `name` as the ref part of `oci-archive:PATH:name`.
pub fn is_valid_ref_name(name: &str) -> bool {
    !name.is_empty() && name.split('/').all(is_valid_component)
}

fn is_valid_component(component: &str) -> bool {
    let mut chars = component.chars().peekable();
    // alnum+ (separator alnum+)*
    let mut expect_alnum = true;
    while let Some(character) = chars.next() {
        if character.is_ascii_alphanumeric() {
            expect_alnum = false;
            continue;
        }
        if expect_alnum || !SEPARATORS.contains(&character) {
            return false;
        }
        if character == '-' && chars.peek() == Some(&'-') {
            chars.next();
        }
        expect_alnum = true;
    }
    !expect_alnum
}

/// The ref name of one image, before collisions are resolved.
pub fn oci_ref_name(name: &str) -> String {
    if is_valid_ref_name(name) {
        return name.to_owned();
    }
    let components: Vec<String> = name
        .split('/')
        .map(sanitize_component)
        .filter(|component| !component.is_empty())
        .collect();
    if components.is_empty() {
        "image".to_owned()
    } else {
        components.join("/")
    }
}

fn sanitize_component(component: &str) -> String {
    let mut output = String::new();
    let mut run = String::new();
    for character in component.chars() {
        if character.is_ascii_alphanumeric() {
            if !run.is_empty() {
                if !output.is_empty() {
                    output.push_str(&collapse_run(&run));
                }
                run.clear();
            }
            output.push(character);
        } else {
            run.push(character);
        }
    }
    output
}

/// A run of non-alphanumeric characters between two alphanumerics, made
/// into one separator the grammar accepts.
fn collapse_run(run: &str) -> String {
    if run == "--" {
        return run.to_owned();
    }
    match run.chars().next() {
        Some(first) if SEPARATORS.contains(&first) => first.to_string(),
        _ => "-".to_owned(),
    }
}

/// The ref name of every image (by full name), unique across the set.
pub fn oci_ref_names<'a>(names: impl IntoIterator<Item = &'a str>) -> BTreeMap<String, String> {
    let names: BTreeSet<&str> = names.into_iter().collect();
    let mut taken: BTreeSet<String> = BTreeSet::new();
    let mut result = BTreeMap::new();
    // Names that are valid as they are keep them; they cannot collide with
    // each other, so they claim their refs first.
    for name in names.iter().filter(|name| is_valid_ref_name(name)) {
        taken.insert((*name).to_owned());
        result.insert((*name).to_owned(), (*name).to_owned());
    }
    for name in names.iter().filter(|name| !is_valid_ref_name(name)) {
        let mut candidate = oci_ref_name(name);
        if taken.contains(&candidate) {
            let hash = ferry_schemas::Digest::sha256_of(name.as_bytes())
                .hex()
                .to_owned();
            candidate = format!("{candidate}-{}", &hash[..12]);
        }
        taken.insert(candidate.clone());
        result.insert((*name).to_owned(), candidate);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_names_tags_and_digests_pass_unchanged() {
        let digest = format!("sha256:{}", "ab".repeat(32));
        for name in [
            "quay.io/ferry-demo/app:1.0".to_owned(),
            "localhost:5000/a/b:v1".to_owned(),
            format!("quay.io/x/y@{digest}"),
            format!("quay.io/x/y:tag@{digest}"),
            "registry.redhat.io/ubi9/ubi-minimal:9.4-1194".to_owned(),
            "a--b/c_d:v1.0+build".to_owned(),
        ] {
            assert!(is_valid_ref_name(&name), "{name}");
            assert_eq!(oci_ref_name(&name), name);
        }
    }

    #[test]
    fn separator_runs_the_grammar_refuses_are_collapsed() {
        for (name, expected) in [
            ("quay.io/a__b/c:1", "quay.io/a_b/c:1"),
            ("quay.io/a---b/c:1", "quay.io/a-b/c:1"),
            ("quay.io/a/b:_tag", "quay.io/a/b:tag"),
            ("quay.io/a/b:v1.-x", "quay.io/a/b:v1.x"),
            ("quay.io//a", "quay.io/a"),
            ("-a-", "a"),
            ("x y", "x-y"),
            ("///", "image"),
        ] {
            assert!(!is_valid_ref_name(name), "{name}");
            let mapped = oci_ref_name(name);
            assert_eq!(mapped, expected, "{name}");
            assert!(is_valid_ref_name(&mapped), "{mapped}");
        }
    }

    #[test]
    fn collisions_get_a_hash_of_the_full_name() {
        let refs = oci_ref_names(["quay.io/a_b:1", "quay.io/a__b:1", "quay.io/a___b:1"]);
        assert_eq!(refs["quay.io/a_b:1"], "quay.io/a_b:1");
        let others = [&refs["quay.io/a__b:1"], &refs["quay.io/a___b:1"]];
        assert_ne!(others[0], others[1]);
        for other in others {
            assert!(other.starts_with("quay.io/a_b:1-"), "{other}");
            assert!(is_valid_ref_name(other), "{other}");
        }
    }
}
