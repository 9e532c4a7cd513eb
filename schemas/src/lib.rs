//! ferry's configuration model: the `ImageSetConfiguration` and
//! `DeleteImageSetConfiguration` kinds of `mirror.openshift.io/v2alpha1`,
//! image references and digests, loaded with exact diagnostics.
//!
//! Reading a file is the caller's job; this crate takes its text:
//!
//! ```
//! let text = "kind: ImageSetConfiguration\napiVersion: mirror.openshift.io/v2alpha1\nmirror:\n  additionalImages:\n  - name: registry.redhat.io/ubi9/ubi:latest\n";
//! let loaded = ferry_schemas::load_image_set_configuration(text).expect("valid");
//! assert_eq!(loaded.config.mirror.additional_images.len(), 1);
//! ```
//!
//! On failure the problems come back as data ([`Problem`]); [`render`] turns
//! them into miette's report with file, line, column and snippets.
//!
//! Modules: `yaml` (text to a tree with positions), `decode` (tree to types,
//! every rule), `config` (the types), `reference` and `digest` (grammars),
//! `features` (fields ferry does not act on yet), `diagnostic` (problems and
//! their rendering), `json_schema` (the committed JSON Schema files).

pub mod config;
mod decode;
pub mod diagnostic;
pub mod digest;
pub mod features;
pub mod json_schema;
pub mod reference;
pub mod yaml;

pub use config::{DeleteImageSetConfiguration, ImageSetConfiguration};
pub use decode::Kind;
pub use diagnostic::{Problem, Severity, Span, render};
pub use digest::{Digest, DigestAlgorithm, DigestHasher};
pub use features::{Feature, FeatureUse};
pub use reference::{ImageReference, ImageSource};

/// Reads a configuration file's text, refusing one larger than
/// [`yaml::MAXIMUM_DOCUMENT_BYTES`] without reading it whole: a huge or
/// endless file (`/dev/zero`) never fills memory.
pub fn read_configuration_file(path: &std::path::Path) -> std::io::Result<String> {
    use std::io::Read as _;
    let mut bytes = Vec::new();
    std::fs::File::open(path)?
        .take(yaml::MAXIMUM_DOCUMENT_BYTES as u64 + 1)
        .read_to_end(&mut bytes)?;
    if bytes.len() > yaml::MAXIMUM_DOCUMENT_BYTES {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!(
                "the file is larger than {} MiB, more than a configuration may be",
                yaml::MAXIMUM_DOCUMENT_BYTES / (1024 * 1024)
            ),
        ));
    }
    String::from_utf8(bytes)
        .map_err(|error| std::io::Error::new(std::io::ErrorKind::InvalidData, error))
}

/// A configuration that loaded without errors.
#[derive(Clone, Debug)]
pub struct Loaded<T> {
    pub config: T,
    /// Where the configuration uses features ferry does not act on yet.
    pub unsupported: Vec<FeatureUse>,
}

impl<T> Loaded<T> {
    /// Warnings for `ferry validate`: the configuration is valid, but these
    /// parts are not acted on yet.
    pub fn warnings(&self) -> Vec<Problem> {
        self.unsupported.iter().map(FeatureUse::warning).collect()
    }

    /// Errors for a command that would act on the configuration: each
    /// unsupported part, "not supported yet".
    pub fn refusals(&self) -> Vec<Problem> {
        self.unsupported.iter().map(FeatureUse::refusal).collect()
    }
}

/// Either kind of configuration.
#[derive(Clone, Debug)]
pub enum AnyConfiguration {
    ImageSet(ImageSetConfiguration),
    Delete(DeleteImageSetConfiguration),
}

impl AnyConfiguration {
    pub fn kind(&self) -> Kind {
        match self {
            AnyConfiguration::ImageSet(_) => Kind::ImageSet,
            AnyConfiguration::Delete(_) => Kind::Delete,
        }
    }
}

fn load_with<T>(
    text: &str,
    decode: impl FnOnce(&mut decode::Decoder<'_>, &yaml::Node) -> Option<T>,
) -> Result<Loaded<T>, Vec<Problem>> {
    let (root, mut problems) = yaml::parse(text).map_err(|problem| vec![problem])?;
    let mut decoder = decode::Decoder::new(text);
    let config = decode(&mut decoder, &root);
    problems.append(&mut decoder.problems);
    problems.sort_by_key(|problem| problem.span.offset);
    match config {
        Some(config) if problems.is_empty() => Ok(Loaded {
            config,
            unsupported: decoder.features,
        }),
        _ => Err(problems),
    }
}

/// Loads an `ImageSetConfiguration` from its text.
pub fn load_image_set_configuration(
    text: &str,
) -> Result<Loaded<ImageSetConfiguration>, Vec<Problem>> {
    load_with(text, |decoder, root| decoder.image_set(root))
}

/// Loads a `DeleteImageSetConfiguration` from its text.
pub fn load_delete_configuration(
    text: &str,
) -> Result<Loaded<DeleteImageSetConfiguration>, Vec<Problem>> {
    load_with(text, |decoder, root| decoder.delete_set(root))
}

/// Loads either kind, chosen by the file's `kind`.
pub fn load_any_configuration(text: &str) -> Result<Loaded<AnyConfiguration>, Vec<Problem>> {
    let delete = yaml::parse(text).ok().is_some_and(|(root, _)| match &root.value {
        yaml::Value::Mapping(entries) => entries.iter().any(|(key, value)| {
            matches!(&key.value, yaml::Value::Scalar { text, .. } if text.eq_ignore_ascii_case("kind"))
                && matches!(&value.value, yaml::Value::Scalar { text, .. } if text == "DeleteImageSetConfiguration")
        }),
        _ => false,
    });
    if delete {
        load_delete_configuration(text).map(|loaded| Loaded {
            config: AnyConfiguration::Delete(loaded.config),
            unsupported: loaded.unsupported,
        })
    } else {
        load_image_set_configuration(text).map(|loaded| Loaded {
            config: AnyConfiguration::ImageSet(loaded.config),
            unsupported: loaded.unsupported,
        })
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn endless_files_are_refused_without_reading_them_whole() {
        let error = super::read_configuration_file(std::path::Path::new("/dev/zero")).unwrap_err();
        assert!(error.to_string().contains("larger than 8 MiB"), "{error}");
        let folder = tempfile::tempdir().unwrap();
        let path = folder.path().join("isc.yaml");
        std::fs::write(&path, "kind: ImageSetConfiguration\n").unwrap();
        assert_eq!(
            super::read_configuration_file(&path).unwrap(),
            "kind: ImageSetConfiguration\n"
        );
    }
}
