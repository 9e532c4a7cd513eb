//! Where an action reads what it moves: a source registry's repository, or
//! ferry's content cache (images ferry built itself, and in disk-to-mirror
//! everything the deliveries brought). One run may mix both: a rebuilt
//! catalog's new layer comes from the cache while its base layers come from
//! the original catalog's repository.
//!
//! A source is never hashed into an action's key: the same blob read from
//! elsewhere is the same work at the destination.

use std::fmt;

use serde::Serialize;

/// Where bytes come from.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Source {
    /// `registry/repository` of a source registry.
    Registry(String),
    /// ferry's content cache.
    Cache,
}

impl Source {
    /// The (registry, repository) of a registry source.
    pub fn registry_repository(&self) -> Option<(&str, &str)> {
        match self {
            Source::Registry(name) => name.split_once('/'),
            Source::Cache => None,
        }
    }
}

impl fmt::Display for Source {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Registry(name) => formatter.write_str(name),
            Source::Cache => formatter.write_str("cache"),
        }
    }
}

impl Serialize for Source {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl schemars::JsonSchema for Source {
    fn schema_name() -> String {
        "Source".to_owned()
    }

    fn json_schema(_: &mut schemars::r#gen::SchemaGenerator) -> schemars::schema::Schema {
        schemars::schema::SchemaObject {
            instance_type: Some(schemars::schema::InstanceType::String.into()),
            metadata: Some(Box::new(schemars::schema::Metadata {
                description: Some(
                    "Where the bytes are read: `registry/repository` of a source, or `cache` (ferry's content cache)".to_owned(),
                ),
                ..Default::default()
            })),
            ..Default::default()
        }
        .into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_read_as_their_repository_or_the_cache() {
        let registry = Source::Registry("quay.io/team/app".to_owned());
        assert_eq!(registry.to_string(), "quay.io/team/app");
        assert_eq!(
            registry.registry_repository(),
            Some(("quay.io", "team/app"))
        );
        assert_eq!(Source::Cache.to_string(), "cache");
        assert_eq!(Source::Cache.registry_repository(), None);
        assert_eq!(
            serde_json::to_string(&[registry, Source::Cache]).unwrap(),
            r#"["quay.io/team/app","cache"]"#
        );
    }
}
