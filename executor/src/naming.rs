//! Where an image goes at the destination, following oc-mirror's naming
//! (notes §4.5), so existing runbooks, IDMS and ITMS keep working:
//! `<destination>/<path of the origin>:<tag>`; a digest-only origin gets
//! the tag `sha256-<hex>`; `targetRepo` / `targetTag` replace path and tag;
//! `--max-nested-paths N` keeps N-1 path components and joins the rest
//! with `-`.

use ferry_schemas::ImageReference;

/// Repository path (below the destination registry) and tag.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DestinationName {
    pub repository: String,
    pub tag: String,
}

/// The destination of an additional image.
pub fn additional_image_destination(
    origin: &ImageReference,
    prefix: &str,
    target_repository: Option<&str>,
    target_tag: Option<&str>,
    max_nested_paths: usize,
) -> DestinationName {
    let path = target_repository.unwrap_or(origin.repository());
    let repository = if prefix.is_empty() {
        path.to_owned()
    } else {
        format!("{prefix}/{path}")
    };
    let tag = match (target_tag, origin.tag(), origin.digest()) {
        (Some(tag), _, _) => tag.to_owned(),
        (None, Some(tag), _) => tag.to_owned(),
        (None, None, Some(digest)) => format!("{}-{}", digest.algorithm().name(), digest.hex()),
        (None, None, None) => "latest".to_owned(),
    };
    // A tag has at most 128 characters.
    let tag: String = tag.chars().take(128).collect();
    DestinationName {
        repository: flatten(&repository, max_nested_paths),
        tag,
    }
}

/// `--max-nested-paths`: keep `maximum - 1` components, join the rest.
pub fn flatten(repository: &str, maximum: usize) -> String {
    let components: Vec<&str> = repository.split('/').collect();
    if maximum == 0 || components.len() <= maximum {
        return repository.to_owned();
    }
    let keep = maximum - 1;
    let mut parts: Vec<String> = components[..keep].iter().map(|c| (*c).to_owned()).collect();
    parts.push(components[keep..].join("-"));
    parts.join("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reference(text: &str) -> ImageReference {
        text.parse().unwrap()
    }

    #[test]
    fn follows_oc_mirror() {
        let name = additional_image_destination(
            &reference("registry.redhat.io/ubi9/ubi:latest"),
            "mirror",
            None,
            None,
            0,
        );
        assert_eq!(name.repository, "mirror/ubi9/ubi");
        assert_eq!(name.tag, "latest");
        let hex = "ab".repeat(32);
        let pinned = additional_image_destination(
            &reference(&format!("quay.io/a/b@sha256:{hex}")),
            "",
            None,
            None,
            0,
        );
        assert_eq!(pinned.tag, format!("sha256-{hex}"));
        assert_eq!(pinned.repository, "a/b");
        let both = additional_image_destination(
            &reference(&format!("quay.io/a/b:v1@sha256:{hex}")),
            "",
            None,
            None,
            0,
        );
        assert_eq!(
            both.tag, "v1",
            "tag and digest: pulled by digest, pushed with the tag"
        );
        let targeted = additional_image_destination(
            &reference("quay.io/a/b:v1"),
            "ns",
            Some("team/app"),
            Some("stable"),
            0,
        );
        assert_eq!(
            (targeted.repository.as_str(), targeted.tag.as_str()),
            ("ns/team/app", "stable")
        );
    }

    #[test]
    fn max_nested_paths_joins_the_rest() {
        assert_eq!(
            flatten("mynamespace/cockroachdb/cockroach-helm-operator", 2),
            "mynamespace/cockroachdb-cockroach-helm-operator"
        );
        assert_eq!(flatten("a/b", 2), "a/b");
        assert_eq!(flatten("a/b/c/d", 0), "a/b/c/d");
    }
}
