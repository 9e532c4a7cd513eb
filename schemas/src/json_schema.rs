//! The JSON Schemas of both configuration kinds, generated from the types.
//! The files are committed under `schemas/` for editors; a test fails when
//! they no longer match the types (`FERRY_BLESS=1` rewrites them).

use crate::config::{DeleteImageSetConfiguration, ImageSetConfiguration};

/// File name and pretty JSON text of each committed schema.
pub fn schema_files() -> Vec<(&'static str, String)> {
    let settings = schemars::r#gen::SchemaSettings::draft07();
    let image_set = settings
        .clone()
        .into_generator()
        .into_root_schema_for::<ImageSetConfiguration>();
    let delete = settings
        .into_generator()
        .into_root_schema_for::<DeleteImageSetConfiguration>();
    let render = |schema: &schemars::schema::RootSchema| {
        let mut text = serde_json::to_string_pretty(schema).expect("a schema is plain JSON");
        text.push('\n');
        text
    };
    vec![
        ("image-set-configuration.schema.json", render(&image_set)),
        (
            "delete-image-set-configuration.schema.json",
            render(&delete),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn committed_schemas_are_current() {
        let folder = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let bless = std::env::var_os("FERRY_BLESS").is_some();
        for (name, text) in schema_files() {
            let path = folder.join(name);
            if bless {
                std::fs::write(&path, &text).unwrap();
                continue;
            }
            let committed = std::fs::read_to_string(&path).unwrap_or_default();
            assert!(
                committed == text,
                "{name} is stale; regenerate with `FERRY_BLESS=1 cargo test -p ferry-schemas`"
            );
        }
    }

    #[test]
    fn schemas_use_canonical_names_and_forbid_unknown_fields() {
        let files = schema_files();
        let image_set = &files[0].1;
        assert!(image_set.contains("\"additionalImages\""));
        assert!(image_set.contains("\"kubeVirtContainer\""));
        assert!(image_set.contains("\"additionalProperties\": false"));
        assert!(files[1].1.contains("\"delete\""));
    }
}
