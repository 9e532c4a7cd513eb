//! What `ferry apply PLANFILE` needs to run a saved plan exactly, and the
//! pure check that a saved plan still matches what planning gives now.
//!
//! A plan document (`ferry plan --format json`, `ferry plan --out FILE`)
//! carries an [`ApplyInputs`] section: the configuration by content, the
//! destination and the folders as absolute paths, and every option that
//! shapes the run. `apply` plans again from exactly these inputs, from any
//! folder, and refuses the plan when [`staleness`] finds a difference,
//! naming which one.

use ferry_schemas::Digest;
use serde::{Deserialize, Serialize};

use crate::ActionKey;

/// The configuration a plan was made from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct SavedConfiguration {
    /// Where it was read (absolute), for messages.
    pub path: String,
    /// Its text: `apply` plans from this, not from the file.
    pub text: String,
}

/// Every option that shapes a run, as the plan was made with it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct RunSettings {
    pub source_tls_verify: bool,
    pub destination_tls_verify: bool,
    /// `--registries-conf` (absolute), if one was named.
    pub registries_conf: Option<String>,
    /// `--authfile` (absolute), if one was named.
    pub authfile: Option<String>,
    /// The cache folder (absolute), if one was named.
    pub cache_dir: Option<String>,
    pub parallel_images: u32,
    pub parallel_layers: u32,
    pub retry_times: u32,
    /// Fixed delay between retries in milliseconds (0: exponential backoff).
    pub retry_delay_milliseconds: u64,
    pub max_nested_paths: usize,
    pub remove_signatures: bool,
    /// `--ignore-release-signature` (absent in plans made before it was
    /// recorded: verify).
    #[serde(default)]
    pub ignore_release_signature: bool,
    pub trust_state: bool,
    pub verify: bool,
    /// Mirror-to-disk: `--since` (seconds since the epoch).
    pub since: Option<i64>,
    pub strict_archive: bool,
    pub max_segment_bytes: Option<u64>,
}

/// An image of a saved plan with the top digest it resolved to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct PlannedImage {
    pub name: String,
    // Written as the digest's text (`sha256:<hex>`, the bytes plan files
    // always held); a plan file whose text is not a digest is refused
    // naming it.
    #[serde(deserialize_with = "top_digest")]
    pub top: Digest,
}

/// Reads a planned image's top digest, saying which text is not one.
fn top_digest<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Digest, D::Error> {
    let text = String::deserialize(deserializer)?;
    text.parse().map_err(|cause| {
        serde::de::Error::custom(format!(
            "the top digest `{text}` of a planned image is not a digest: {cause}"
        ))
    })
}

/// What `ferry apply PLANFILE` runs the plan from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ApplyInputs {
    pub configuration: SavedConfiguration,
    /// `docker://REGISTRY[/PREFIX]` or `file://DIR` (absolute).
    pub destination: String,
    /// Mirror-to-mirror: `file://DIR` (absolute).
    pub workspace: Option<String>,
    /// Disk-to-mirror: `file://DIR` (absolute).
    pub from: Option<String>,
    pub settings: RunSettings,
    /// blake3 of what the workspace state recorded when the plan was made.
    pub state_fingerprint: String,
    pub images: Vec<PlannedImage>,
    /// The keys of the planned actions that must match at apply.
    pub action_keys: Vec<ActionKey>,
}

/// Why a saved plan no longer applies.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Stale {
    /// The workspace state changed since the plan was made.
    State,
    /// An image now resolves to another top manifest.
    ImageMoved {
        name: String,
        now: Digest,
        expected: Digest,
    },
    /// An image no longer resolves.
    ImageGone { name: String },
    /// The actions planning gives now differ.
    Actions,
}

/// What planning gives now, to compare with a saved plan.
pub struct Current<'a> {
    pub state_fingerprint: &'a str,
    /// (name, top digest) of each image resolved now.
    pub images: &'a [PlannedImage],
    pub action_keys: &'a [ActionKey],
}

/// Why `saved` is stale, checked in this order: the state it was made
/// against changed, an image resolves elsewhere now (or not at all), or the
/// actions differ. `None`: the plan still applies exactly.
pub fn staleness(saved: &ApplyInputs, current: &Current<'_>) -> Option<Stale> {
    if current.state_fingerprint != saved.state_fingerprint {
        return Some(Stale::State);
    }
    for image in &saved.images {
        match current
            .images
            .iter()
            .find(|resolved| resolved.name == image.name)
        {
            Some(resolved) if resolved.top != image.top => {
                return Some(Stale::ImageMoved {
                    name: image.name.clone(),
                    now: resolved.top.clone(),
                    expected: image.top.clone(),
                });
            }
            None => {
                return Some(Stale::ImageGone {
                    name: image.name.clone(),
                });
            }
            Some(_) => {}
        }
    }
    (current.action_keys != saved.action_keys).then_some(Stale::Actions)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inputs() -> ApplyInputs {
        ApplyInputs {
            configuration: SavedConfiguration {
                path: "/srv/isc.yaml".to_owned(),
                text: "kind: ImageSetConfiguration\n".to_owned(),
            },
            destination: "docker://mirror.local/ns".to_owned(),
            workspace: Some("file:///srv/workspace".to_owned()),
            from: None,
            settings: RunSettings {
                source_tls_verify: true,
                destination_tls_verify: false,
                registries_conf: None,
                authfile: None,
                cache_dir: None,
                parallel_images: 4,
                parallel_layers: 5,
                retry_times: 5,
                retry_delay_milliseconds: 0,
                max_nested_paths: 0,
                remove_signatures: false,
                ignore_release_signature: true,
                trust_state: false,
                verify: false,
                since: None,
                strict_archive: false,
                max_segment_bytes: None,
            },
            state_fingerprint: "f1".to_owned(),
            images: vec![PlannedImage {
                name: "quay.io/a/b:1".to_owned(),
                top: digest("aa"),
            }],
            action_keys: vec![
                ActionKey::from_bytes([1; 32]),
                ActionKey::from_bytes([2; 32]),
            ],
        }
    }

    fn digest(byte: &str) -> Digest {
        format!("sha256:{}", byte.repeat(32)).parse().unwrap()
    }

    #[test]
    fn a_plan_that_still_matches_applies_and_each_difference_is_named_in_order() {
        let saved = inputs();
        let same_images = saved.images.clone();
        let current = |fingerprint, images, keys| Current {
            state_fingerprint: fingerprint,
            images,
            action_keys: keys,
        };
        assert_eq!(
            staleness(&saved, &current("f1", &same_images, &saved.action_keys)),
            None
        );
        assert_eq!(
            staleness(&saved, &current("f2", &[], &[])),
            Some(Stale::State),
            "the state is checked first"
        );
        let moved = [PlannedImage {
            name: "quay.io/a/b:1".to_owned(),
            top: digest("bb"),
        }];
        assert_eq!(
            staleness(&saved, &current("f1", &moved, &saved.action_keys)),
            Some(Stale::ImageMoved {
                name: "quay.io/a/b:1".to_owned(),
                now: digest("bb"),
                expected: digest("aa"),
            })
        );
        assert_eq!(
            staleness(&saved, &current("f1", &[], &saved.action_keys)),
            Some(Stale::ImageGone {
                name: "quay.io/a/b:1".to_owned()
            })
        );
        assert_eq!(
            staleness(
                &saved,
                &current("f1", &same_images, &[ActionKey::from_bytes([1; 32])])
            ),
            Some(Stale::Actions)
        );
    }

    #[test]
    fn apply_inputs_read_back_as_they_were_written() {
        let saved = inputs();
        let text = serde_json::to_string(&saved).unwrap();
        let read: ApplyInputs = serde_json::from_str(&text).unwrap();
        assert_eq!(read, saved);
        // A plan written before `ignore_release_signature` was recorded
        // verifies the signatures.
        let older = text.replace("\"ignore_release_signature\":true,", "");
        assert_ne!(older, text);
        let read: ApplyInputs = serde_json::from_str(&older).unwrap();
        assert!(!read.settings.ignore_release_signature);
    }

    #[test]
    fn keys_are_written_as_hex_and_a_key_that_is_not_one_is_refused() {
        let mut json = serde_json::to_value(inputs()).unwrap();
        assert_eq!(json["action_keys"][0], "01".repeat(32));
        json["action_keys"][0] = "k1".into();
        let error = serde_json::from_value::<ApplyInputs>(json).unwrap_err();
        assert!(
            error.to_string().contains("is not an action key"),
            "{error}"
        );
    }

    #[test]
    fn a_top_digest_is_written_as_its_text_and_one_that_is_not_a_digest_is_refused_naming_it() {
        let mut json = serde_json::to_value(inputs()).unwrap();
        assert_eq!(
            json["images"][0]["top"],
            format!("sha256:{}", "aa".repeat(32))
        );
        json["images"][0]["top"] = "sha256:zz".into();
        let error = serde_json::from_value::<ApplyInputs>(json.clone()).unwrap_err();
        assert!(
            error.to_string().contains(
                "the top digest `sha256:zz` of a planned image is not a digest: a sha256 digest has 64 hex digits, this one has 2"
            ),
            "{error}"
        );
        json["images"][0]["top"] = "latest".into();
        let error = serde_json::from_value::<ApplyInputs>(json.clone()).unwrap_err();
        assert!(
            error
                .to_string()
                .contains("the top digest `latest` of a planned image is not a digest"),
            "{error}"
        );
        json["images"][0]["top"] = 7.into();
        assert!(serde_json::from_value::<ApplyInputs>(json).is_err());
    }
}
