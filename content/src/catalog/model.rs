//! The file-based catalog model and its loader: files in (path and bytes),
//! packages, channels, bundles, deprecations and other objects out.
//!
//! Objects are read once. Each keeps the span of its JSON text in the file
//! it came from, so a bundle is copied into the filtered catalog byte for
//! byte and only the fields the filter needs are parsed (the large
//! `olm.bundle.object` values are skipped, never copied). JSON files are
//! streams of objects; YAML files are multi-document streams, converted to
//! JSON text once. Files load in parallel.

use std::borrow::Cow;

use rayon::prelude::*;
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::catalog::error::LoadError;

/// One file of a catalog's configs folder, as the caller read it.
#[derive(Clone, Debug)]
pub struct CatalogFile {
    /// The path inside the configs folder (`foo/catalog.json`), used in errors
    /// and for the load order.
    pub path: String,
    pub bytes: Vec<u8>,
}

impl CatalogFile {
    pub fn new(path: impl Into<String>, bytes: impl Into<Vec<u8>>) -> CatalogFile {
        CatalogFile {
            path: path.into(),
            bytes: bytes.into(),
        }
    }
}

/// Where an object's JSON text is: a file and a byte range in its JSON text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Span {
    text: usize,
    start: usize,
    end: usize,
}

/// A loaded file-based catalog. Objects appear in file path order, then in
/// the order of each file.
#[derive(Debug, Default)]
pub struct Catalog {
    texts: Vec<Text>,
    pub packages: Vec<Package>,
    pub channels: Vec<Channel>,
    pub bundles: Vec<Bundle>,
    pub deprecations: Vec<Deprecation>,
    pub others: Vec<Other>,
}

/// A file's JSON text: the file's own bytes for JSON, the converted
/// documents for YAML.
#[derive(Debug)]
struct Text {
    json: Vec<u8>,
}

/// An `olm.package` object.
#[derive(Clone, Debug)]
pub struct Package {
    pub name: String,
    pub default_channel: Option<String>,
    pub(crate) span: Span,
}

/// An `olm.channel` object.
#[derive(Clone, Debug)]
pub struct Channel {
    pub package: String,
    pub name: String,
    pub entries: Vec<ChannelEntry>,
    pub(crate) span: Span,
}

/// One entry of a channel: a bundle name and its upgrade edges.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ChannelEntry {
    pub name: String,
    pub replaces: Option<String>,
    pub skips: Vec<String>,
    pub skip_range: Option<String>,
}

/// An `olm.bundle` object: the fields the filter, the images and the
/// dependency check read. The rest stays in the catalog's text.
#[derive(Clone, Debug)]
pub struct Bundle {
    pub name: String,
    pub package: String,
    /// The bundle image (may be empty in hand-made catalogs).
    pub image: String,
    /// The `version` of the `olm.package` property, as written.
    pub version: Option<String>,
    pub related_images: Vec<String>,
    pub provided_apis: Vec<Api>,
    pub required_packages: Vec<PackageRequirement>,
    pub required_apis: Vec<Api>,
    pub(crate) span: Span,
}

/// A group, version and kind (`olm.gvk`, `olm.gvk.required`).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
pub struct Api {
    pub group: String,
    pub version: String,
    pub kind: String,
}

/// An `olm.package.required` property.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PackageRequirement {
    pub package: String,
    pub version_range: String,
}

/// An `olm.deprecations` object.
#[derive(Clone, Debug)]
pub struct Deprecation {
    pub package: String,
    /// The schema and name each entry's `reference` points to, in the
    /// object's order (the name is empty for a package reference; both are
    /// empty for an entry without a reference).
    pub entries: Vec<(String, String)>,
    pub(crate) span: Span,
}

/// An object of any other schema, kept as it is.
#[derive(Clone, Debug)]
pub struct Other {
    pub schema: String,
    pub package: Option<String>,
    pub name: Option<String>,
    pub(crate) span: Span,
}

impl Catalog {
    /// Loads a catalog from its files. Files ending in `.json` are JSON
    /// streams, `.yaml`/`.yml` YAML streams; other files (a README, an
    /// `.indexignore`) are not catalog content and are skipped. The result
    /// does not depend on the order of `files`.
    pub fn load(mut files: Vec<CatalogFile>) -> Result<Catalog, LoadError> {
        files.sort_by(|left, right| left.path.cmp(&right.path));
        let parsed: Vec<Result<Option<ParsedFile>, LoadError>> = files
            .into_par_iter()
            .map(|file| {
                let lower = file.path.to_ascii_lowercase();
                if lower.ends_with(".json") {
                    parse_json_file(file.path, file.bytes, None).map(Some)
                } else if lower.ends_with(".yaml") || lower.ends_with(".yml") {
                    let (json, documents) = yaml_to_json(&file.path, &file.bytes)?;
                    parse_json_file(file.path, json, Some(&documents)).map(Some)
                } else {
                    Ok(None)
                }
            })
            .collect();
        let mut catalog = Catalog::default();
        for file in parsed {
            let Some(file) = file? else { continue };
            let text = catalog.texts.len();
            let with_text = |span: Span| Span { text, ..span };
            catalog
                .packages
                .extend(file.packages.into_iter().map(|mut package| {
                    package.span = with_text(package.span);
                    package
                }));
            catalog
                .channels
                .extend(file.channels.into_iter().map(|mut channel| {
                    channel.span = with_text(channel.span);
                    channel
                }));
            catalog
                .bundles
                .extend(file.bundles.into_iter().map(|mut bundle| {
                    bundle.span = with_text(bundle.span);
                    bundle
                }));
            catalog
                .deprecations
                .extend(file.deprecations.into_iter().map(|mut deprecation| {
                    deprecation.span = with_text(deprecation.span);
                    deprecation
                }));
            catalog
                .others
                .extend(file.others.into_iter().map(|mut other| {
                    other.span = with_text(other.span);
                    other
                }));
            catalog.texts.push(file.text);
        }
        Ok(catalog)
    }

    /// The JSON text of an object, exactly as it was read (for YAML files:
    /// as converted).
    pub(crate) fn raw(&self, span: Span) -> &str {
        let bytes = &self.texts[span.text].json[span.start..span.end];
        // The loader checked that every object's text is UTF-8.
        std::str::from_utf8(bytes).unwrap_or_default()
    }

    /// Total bytes of JSON text held.
    pub fn text_size(&self) -> usize {
        self.texts.iter().map(|text| text.json.len()).sum()
    }

    pub fn package(&self, name: &str) -> Option<&Package> {
        self.packages.iter().find(|package| package.name == name)
    }

    pub fn bundle(&self, package: &str, name: &str) -> Option<&Bundle> {
        self.bundles
            .iter()
            .find(|bundle| bundle.package == package && bundle.name == name)
    }
}

struct ParsedFile {
    text: Text,
    packages: Vec<Package>,
    channels: Vec<Channel>,
    bundles: Vec<Bundle>,
    deprecations: Vec<Deprecation>,
    others: Vec<Other>,
}

/// The fields read from any object; unknown fields are skipped unread.
#[derive(Deserialize)]
struct RawObject<'a> {
    #[serde(borrow, default)]
    schema: Option<Cow<'a, str>>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    package: Option<String>,
    #[serde(default, rename = "defaultChannel")]
    default_channel: Option<String>,
    #[serde(default)]
    entries: Option<Vec<RawEntry>>,
    #[serde(default)]
    image: Option<String>,
    #[serde(borrow, default)]
    properties: Option<Vec<RawProperty<'a>>>,
    #[serde(default, rename = "relatedImages")]
    related_images: Option<Vec<RawRelatedImage>>,
}

#[derive(Deserialize)]
struct RawEntry {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    replaces: Option<String>,
    #[serde(default)]
    skips: Option<Vec<String>>,
    #[serde(default, rename = "skipRange")]
    skip_range: Option<String>,
    #[serde(default)]
    reference: Option<RawReference>,
}

#[derive(Deserialize)]
struct RawReference {
    #[serde(default)]
    schema: String,
    #[serde(default)]
    name: String,
}

#[derive(Deserialize)]
struct RawProperty<'a> {
    #[serde(borrow, rename = "type")]
    kind: Cow<'a, str>,
    #[serde(borrow, default)]
    value: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct RawRelatedImage {
    #[serde(default)]
    image: Option<String>,
}

#[derive(Deserialize)]
struct PackageProperty {
    version: String,
}

#[derive(Deserialize)]
struct PackageRequiredProperty {
    #[serde(rename = "packageName")]
    package_name: String,
    #[serde(default, rename = "versionRange")]
    version_range: String,
}

/// Parses a JSON stream. For a YAML file converted by [`yaml_to_json`],
/// `documents` gives the YAML document number of each line, so errors name
/// the document instead of a line of the converted text.
fn parse_json_file(
    path: String,
    json: Vec<u8>,
    documents: Option<&[usize]>,
) -> Result<ParsedFile, LoadError> {
    let in_source = |error: LoadError| match (documents, error.line) {
        (Some(documents), Some(line)) => LoadError {
            line: None,
            column: None,
            message: format!(
                "document {}: {}",
                documents.get(line - 1).copied().unwrap_or(line),
                error.message
            ),
            ..error
        },
        _ => error,
    };
    let mut file = ParsedFile {
        text: Text { json: Vec::new() },
        packages: Vec::new(),
        channels: Vec::new(),
        bundles: Vec::new(),
        deprecations: Vec::new(),
        others: Vec::new(),
    };
    {
        let mut stream = serde_json::Deserializer::from_slice(&json).into_iter::<RawObject>();
        let mut position = 0;
        while let Some(next) = stream.next() {
            let object = next.map_err(|error| in_source(LoadError::json(&path, &error)))?;
            let end = stream.byte_offset();
            let start = position
                + json[position..end]
                    .iter()
                    .take_while(|byte| byte.is_ascii_whitespace())
                    .count();
            position = end;
            if std::str::from_utf8(&json[start..end]).is_err() {
                return Err(LoadError::at(
                    &path,
                    &json,
                    start,
                    "the object is not UTF-8",
                ));
            }
            let span = Span {
                text: 0,
                start,
                end,
            };
            add_object(&mut file, object, span)
                .map_err(|message| in_source(LoadError::at(&path, &json, start, message)))?;
        }
    }
    file.text = Text { json };
    Ok(file)
}

fn add_object(file: &mut ParsedFile, object: RawObject, span: Span) -> Result<(), String> {
    let required = |field: Option<String>, what: &str, schema: &str| {
        field
            .filter(|value| !value.is_empty())
            .ok_or_else(|| format!("an `{schema}` object has no `{what}`"))
    };
    let Some(schema) = object.schema else {
        return Err("an object has no `schema` field".to_owned());
    };
    match schema.as_ref() {
        "olm.package" => file.packages.push(Package {
            name: required(object.name, "name", "olm.package")?,
            default_channel: object.default_channel.filter(|name| !name.is_empty()),
            span,
        }),
        "olm.channel" => {
            let package = required(object.package, "package", "olm.channel")?;
            let name = required(object.name, "name", "olm.channel")?;
            let mut entries = Vec::new();
            for entry in object.entries.unwrap_or_default() {
                let entry_name = entry.name.filter(|name| !name.is_empty()).ok_or_else(|| {
                    format!("channel {name:?} of package {package:?} has an entry with no name")
                })?;
                entries.push(ChannelEntry {
                    name: entry_name,
                    replaces: entry.replaces.filter(|name| !name.is_empty()),
                    skips: entry.skips.unwrap_or_default(),
                    skip_range: entry.skip_range.filter(|range| !range.is_empty()),
                });
            }
            file.channels.push(Channel {
                package,
                name,
                entries,
                span,
            });
        }
        "olm.bundle" => {
            let name = required(object.name, "name", "olm.bundle")?;
            let package = required(object.package, "package", "olm.bundle")?;
            let mut bundle = Bundle {
                name,
                package,
                image: object.image.unwrap_or_default(),
                version: None,
                related_images: object
                    .related_images
                    .unwrap_or_default()
                    .into_iter()
                    .filter_map(|related| related.image)
                    .collect(),
                provided_apis: Vec::new(),
                required_packages: Vec::new(),
                required_apis: Vec::new(),
                span,
            };
            for property in object.properties.unwrap_or_default() {
                read_property(&mut bundle, &property).map_err(|error| {
                    format!(
                        "bundle {:?}: property `{}`: {error}",
                        bundle.name, property.kind
                    )
                })?;
            }
            file.bundles.push(bundle);
        }
        "olm.deprecations" => {
            let package = required(object.package, "package", "olm.deprecations")?;
            let entries = object
                .entries
                .unwrap_or_default()
                .into_iter()
                .map(|entry| {
                    entry
                        .reference
                        .map(|reference| (reference.schema, reference.name))
                        .unwrap_or_default()
                })
                .collect();
            file.deprecations.push(Deprecation {
                package,
                entries,
                span,
            });
        }
        other => file.others.push(Other {
            schema: other.to_owned(),
            package: object.package.filter(|package| !package.is_empty()),
            name: object.name,
            span,
        }),
    }
    Ok(())
}

fn read_property(bundle: &mut Bundle, property: &RawProperty) -> Result<(), serde_json::Error> {
    let Some(value) = property.value else {
        return Ok(());
    };
    match property.kind.as_ref() {
        "olm.package" => {
            let package: PackageProperty = serde_json::from_str(value.get())?;
            // The first `olm.package` property names the bundle's version.
            if bundle.version.is_none() {
                bundle.version = Some(package.version);
            }
        }
        "olm.package.required" => {
            let required: PackageRequiredProperty = serde_json::from_str(value.get())?;
            bundle.required_packages.push(PackageRequirement {
                package: required.package_name,
                version_range: required.version_range,
            });
        }
        "olm.gvk" => bundle
            .provided_apis
            .push(serde_json::from_str(value.get())?),
        "olm.gvk.required" => bundle
            .required_apis
            .push(serde_json::from_str(value.get())?),
        _ => {}
    }
    Ok(())
}

/// Converts a YAML stream into a JSON stream, one line per document, and
/// the document number (from 1) of each line. Empty documents (a leading
/// `---`) are skipped.
fn yaml_to_json(path: &str, bytes: &[u8]) -> Result<(Vec<u8>, Vec<usize>), LoadError> {
    let mut json = Vec::with_capacity(bytes.len());
    let mut documents = Vec::new();
    for (number, document) in serde_yaml::Deserializer::from_slice(bytes).enumerate() {
        let value = serde_json::Value::deserialize(document)
            .map_err(|error| LoadError::yaml(path, number + 1, &error))?;
        if value.is_null() {
            continue;
        }
        serde_json::to_writer(&mut json, &value)
            .map_err(|error| LoadError::yaml_document(path, number + 1, error.to_string()))?;
        json.push(b'\n');
        documents.push(number + 1);
    }
    Ok((json, documents))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_streams_and_yaml_documents_load_alike() {
        let json = br#"{"schema":"olm.package","name":"foo","defaultChannel":"beta"}
        {"schema":"olm.channel","package":"foo","name":"beta","entries":[{"name":"foo.v1.0.0","replaces":"foo.v0.9.0","skips":["foo.v0.9.1"]}]}"#;
        let yaml = b"---\nschema: olm.bundle\nname: foo.v1.0.0\npackage: foo\nimage: example.com/foo:1\nproperties:\n- type: olm.package\n  value: {packageName: foo, version: 1.0.0}\n---\nschema: example.lifecycle\npackage: foo\n";
        let catalog = Catalog::load(vec![
            CatalogFile::new("foo/bundles.yaml", yaml.to_vec()),
            CatalogFile::new("foo/a.json", json.to_vec()),
            CatalogFile::new("README.md", b"not a catalog".to_vec()),
        ])
        .unwrap();
        assert_eq!(catalog.packages[0].default_channel.as_deref(), Some("beta"));
        assert_eq!(
            catalog.channels[0].entries[0],
            ChannelEntry {
                name: "foo.v1.0.0".to_owned(),
                replaces: Some("foo.v0.9.0".to_owned()),
                skips: vec!["foo.v0.9.1".to_owned()],
                skip_range: None,
            }
        );
        assert_eq!(catalog.bundles[0].version.as_deref(), Some("1.0.0"));
        assert_eq!(catalog.others[0].schema, "example.lifecycle");
        let raw: serde_json::Value =
            serde_json::from_str(catalog.raw(catalog.channels[0].span)).unwrap();
        assert_eq!(raw["entries"][0]["skips"][0], "foo.v0.9.1");
    }

    #[test]
    fn errors_name_the_file_and_line() {
        let bad_json = b"{\"schema\":\"olm.package\",\"name\":\"foo\"}\n{\"schema\": \"olm.channel\",\n \"name\": }\n";
        let error = Catalog::load(vec![CatalogFile::new(
            "foo/catalog.json",
            bad_json.to_vec(),
        )])
        .unwrap_err();
        assert_eq!(error.path, "foo/catalog.json");
        assert_eq!(error.line, Some(3));

        let no_schema = b"{\"schema\":\"olm.package\",\"name\":\"foo\"}\n\n{\"name\":\"bar\"}\n";
        let error =
            Catalog::load(vec![CatalogFile::new("bar.json", no_schema.to_vec())]).unwrap_err();
        assert_eq!((error.path.as_str(), error.line), ("bar.json", Some(3)));
        assert!(error.to_string().contains("no `schema`"), "{error}");

        let bad_yaml = b"schema: olm.package\nname: [unclosed\n";
        let error =
            Catalog::load(vec![CatalogFile::new("baz.yaml", bad_yaml.to_vec())]).unwrap_err();
        assert_eq!(error.path, "baz.yaml");
        assert!(error.line.is_some(), "{error}");

        let yaml_without_name =
            b"---\nschema: olm.package\nname: foo\n---\nschema: olm.channel\npackage: foo\n";
        let error = Catalog::load(vec![CatalogFile::new(
            "foo.yaml",
            yaml_without_name.to_vec(),
        )])
        .unwrap_err();
        assert_eq!((error.path.as_str(), error.line), ("foo.yaml", None));
        assert!(error.message.starts_with("document 2: "), "{error}");

        let bad_property = b"{\"schema\":\"olm.bundle\",\"name\":\"b\",\"package\":\"p\",\"properties\":[{\"type\":\"olm.package\",\"value\":{\"version\":1}}]}";
        let error =
            Catalog::load(vec![CatalogFile::new("p.json", bad_property.to_vec())]).unwrap_err();
        assert!(error.to_string().contains("bundle \"b\""), "{error}");
    }
}
