//! The release signature ConfigMap (notes §4.4): the signatures of the
//! mirrored release payloads, in the form the cluster-version-operator reads
//! them from `openshift-config-managed`, written as
//! `cluster-resources/signature-configmap.json` and `.yaml`. This module
//! builds both texts; writing them belongs to the executor.

use base64::Engine;
use ferry_schemas::Digest;
use serde_json::{Map, Value, json};

/// The ConfigMap's name.
pub const CONFIG_MAP_NAME: &str = "mirrored-release-signatures";
/// The namespace the cluster-version-operator reads signatures from.
pub const CONFIG_MAP_NAMESPACE: &str = "openshift-config-managed";
/// The label that marks a ConfigMap as holding release signatures.
pub const SIGNATURES_LABEL: &str = "release.openshift.io/verification-signatures";
/// The file names under `cluster-resources/`.
pub const JSON_FILE_NAME: &str = "signature-configmap.json";
pub const YAML_FILE_NAME: &str = "signature-configmap.yaml";

/// One payload's signature file, as fetched (the bytes are kept as they are).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PayloadSignature {
    pub digest: Digest,
    pub signature: Vec<u8>,
}

/// The ConfigMap's two texts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignatureConfigMap {
    pub json: String,
    pub yaml: String,
}

/// Why the ConfigMap cannot be written.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SignatureConfigMapError {
    #[error("no release signature to write")]
    Empty,
    #[error("release signature ConfigMap: {0}")]
    Serialize(String),
}

/// The annotations of the ConfigMap: who made it and when, as on every
/// cluster resource ferry writes (`createdBy: ferry` marks the file as
/// ferry's, so a later run may replace or remove it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Annotations {
    /// RFC 3339, UTC.
    pub created_at: String,
    /// ferry's version.
    pub ferry_version: String,
}

/// Builds the ConfigMap from the signatures, in the order given. Each
/// signature is a `binaryData` entry `sha256-<hex>-<n>` holding its bytes in
/// base64, `n` counting 1, 2, ... across the entries as oc-mirror does.
pub fn signature_config_map(
    signatures: &[PayloadSignature],
    annotations: &Annotations,
) -> Result<SignatureConfigMap, SignatureConfigMapError> {
    if signatures.is_empty() {
        return Err(SignatureConfigMapError::Empty);
    }
    let mut binary_data = Map::new();
    for (index, entry) in signatures.iter().enumerate() {
        let key = format!(
            "{}-{}-{}",
            entry.digest.algorithm().name(),
            entry.digest.hex(),
            index + 1
        );
        let value = base64::engine::general_purpose::STANDARD.encode(&entry.signature);
        binary_data.insert(key, Value::String(value));
    }
    let document = json!({
        "kind": "ConfigMap",
        "apiVersion": "v1",
        "metadata": {
            "name": CONFIG_MAP_NAME,
            "namespace": CONFIG_MAP_NAMESPACE,
            "labels": { SIGNATURES_LABEL: "" },
            "annotations": {
                "createdAt": annotations.created_at,
                "createdBy": "ferry",
                "ferry_version": annotations.ferry_version,
            },
        },
        "binaryData": binary_data,
    });
    let serialize =
        |error: &dyn std::fmt::Display| SignatureConfigMapError::Serialize(error.to_string());
    let json = serde_json::to_string_pretty(&document).map_err(|error| serialize(&error))? + "\n";
    let yaml = serde_yaml::to_string(&document).map_err(|error| serialize(&error))?;
    Ok(SignatureConfigMap { json, yaml })
}
