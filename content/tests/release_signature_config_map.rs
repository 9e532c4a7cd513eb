//! The release signature ConfigMap: both texts parse to the same ConfigMap
//! whose `binaryData` holds each signature file's bytes.

use std::path::PathBuf;

use base64::Engine;
use ferry_content::release::signature_config_map::{
    Annotations, PayloadSignature, SignatureConfigMapError, signature_config_map,
};
use serde_json::Value;

fn fixture(path: &str) -> Vec<u8> {
    let full = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/fixtures/openshift+oc-mirror")
        .join(path);
    std::fs::read(&full).unwrap_or_else(|error| panic!("reading {}: {error}", full.display()))
}

fn signatures() -> Vec<PayloadSignature> {
    vec![
        PayloadSignature {
            digest: "sha256:0da6316466d60a3a4535d5fed3589feb0391989982fba59d47d4c729912d6363"
                .parse()
                .unwrap(),
            signature: fixture("internal/e2e/signatures/signature-1"),
        },
        PayloadSignature {
            digest: "sha256:f81792339c8b5934191d18a53b18bc1d584e01a9f37d59c0aa6905b00200aa1b"
                .parse()
                .unwrap(),
            signature: fixture(
                "tests/integration/keys/v0.0.1-sha256-f81792339c8b5934191d18a53b18bc1d584e01a9f37d59c0aa6905b00200aa1b",
            ),
        },
    ]
}

fn annotations() -> Annotations {
    Annotations {
        created_at: "2026-12-02T07:00:00Z".to_owned(),
        ferry_version: "0.1.0".to_owned(),
    }
}

#[test]
fn the_json_and_yaml_texts_are_the_same_config_map_of_the_signatures() {
    let signatures = signatures();
    let texts = signature_config_map(&signatures, &annotations()).expect("two signatures");
    let from_json: Value = serde_json::from_str(&texts.json).expect("valid JSON");
    let from_yaml: Value = serde_yaml::from_str(&texts.yaml).expect("valid YAML");
    assert_eq!(from_json, from_yaml);

    assert_eq!(from_json["apiVersion"], "v1");
    assert_eq!(from_json["kind"], "ConfigMap");
    assert_eq!(from_json["metadata"]["name"], "mirrored-release-signatures");
    assert_eq!(
        from_json["metadata"]["namespace"],
        "openshift-config-managed"
    );
    assert_eq!(
        from_json["metadata"]["labels"]["release.openshift.io/verification-signatures"],
        ""
    );
    assert_eq!(
        from_json["metadata"]["annotations"],
        serde_json::json!({
            "createdAt": "2026-12-02T07:00:00Z",
            "createdBy": "ferry",
            "ferry_version": "0.1.0",
        })
    );
    // The publish stage recognises ferry's files by this line.
    assert!(texts.yaml.contains("createdBy: ferry"), "{}", texts.yaml);
    let binary_data = from_json["binaryData"]
        .as_object()
        .expect("binaryData is a map");
    let keys: Vec<&String> = binary_data.keys().collect();
    assert_eq!(
        keys,
        [
            "sha256-0da6316466d60a3a4535d5fed3589feb0391989982fba59d47d4c729912d6363-1",
            "sha256-f81792339c8b5934191d18a53b18bc1d584e01a9f37d59c0aa6905b00200aa1b-2",
        ]
    );
    for (value, entry) in binary_data.values().zip(&signatures) {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(value.as_str().expect("a base64 string"))
            .expect("valid base64");
        assert_eq!(decoded, entry.signature);
    }
    assert!(texts.json.ends_with("}\n"));
}

#[test]
fn no_signature_is_an_error_not_an_empty_config_map() {
    assert_eq!(
        signature_config_map(&[], &annotations()),
        Err(SignatureConfigMapError::Empty)
    );
}
