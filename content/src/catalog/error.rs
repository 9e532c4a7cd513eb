//! The errors of loading and filtering a catalog. Each names what it is
//! about: the file (and line) for loading; package, channel and bundles for
//! the filter.

use std::fmt;

/// A catalog file that could not be read as a file-based catalog.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct LoadError {
    pub path: String,
    pub line: Option<usize>,
    pub column: Option<usize>,
    pub message: String,
}

impl fmt::Display for LoadError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "catalog file {}", self.path)?;
        if let Some(line) = self.line {
            write!(formatter, ":{line}")?;
            if let Some(column) = self.column {
                write!(formatter, ":{column}")?;
            }
        }
        write!(formatter, ": {}", self.message)
    }
}

impl LoadError {
    pub(crate) fn json(path: &str, error: &serde_json::Error) -> LoadError {
        LoadError {
            path: path.to_owned(),
            line: Some(error.line()),
            column: Some(error.column()),
            message: format!("invalid JSON: {error}"),
        }
    }

    /// An error about the object that starts at byte `start` of `text`.
    pub(crate) fn at(
        path: &str,
        text: &[u8],
        start: usize,
        message: impl Into<String>,
    ) -> LoadError {
        let before = &text[..start.min(text.len())];
        let line = before.iter().filter(|&&byte| byte == b'\n').count() + 1;
        let column = before
            .iter()
            .rev()
            .take_while(|&&byte| byte != b'\n')
            .count()
            + 1;
        LoadError {
            path: path.to_owned(),
            line: Some(line),
            column: Some(column),
            message: message.into(),
        }
    }

    pub(crate) fn yaml(path: &str, document: usize, error: &serde_yaml::Error) -> LoadError {
        let location = error.location();
        LoadError {
            path: path.to_owned(),
            line: location.as_ref().map(|location| location.line()),
            column: location.as_ref().map(|location| location.column()),
            message: format!("invalid YAML in document {document}: {error}"),
        }
    }

    pub(crate) fn yaml_document(path: &str, document: usize, message: String) -> LoadError {
        LoadError {
            path: path.to_owned(),
            line: None,
            column: None,
            message: format!("document {document}: {message}"),
        }
    }
}

/// Why a catalog cannot be filtered by a `mirror.operators` entry. Each
/// names the package, and the channel and bundles where there are ones.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FilterError {
    #[error(
        "package {package:?} specifies a version range, while its channel {channel:?} equally specifies one: package and channel version ranges are exclusive"
    )]
    RangesOnBothLevels { package: String, channel: String },
    #[error("package {package:?}: full: true cannot be mixed with a version range")]
    FullWithRange { package: String },
    #[error("package {package:?}: full: true cannot be mixed with filtering by bundle selection")]
    FullWithBundles { package: String },
    #[error(
        "package {package:?}: filtering by version range cannot be mixed with filtering by bundle selection"
    )]
    BundlesWithRange { package: String },
    #[error("package {package:?}: bundle {bundle:?} is not in the catalog")]
    BundleNotFound { package: String, bundle: String },
    #[error("package {package:?}: bundle {bundle:?} has no olm.package property")]
    BundleWithoutVersion { package: String, bundle: String },
    #[error(
        "package {package:?}: bundle {bundle:?} has version {version:?}, which is not semver: {reason}"
    )]
    InvalidBundleVersion {
        package: String,
        bundle: String,
        version: String,
        reason: String,
    },
    #[error(
        "invalid default channel configuration for package {package:?}: specified default channel override {channel:?} does not exist in the filtered output"
    )]
    DefaultChannelOverrideMissing { package: String, channel: String },
    #[error(
        "invalid default channel configuration for package {package:?}: the default channel {channel:?} was filtered out, a new default channel must be configured for this package"
    )]
    DefaultChannelFilteredOut { package: String, channel: String },
    #[error(
        "package {package:?} channel {channel:?} unable to filter head of channel: multiple channel heads found: [{}]",
        heads.join(" ")
    )]
    MultipleHeads {
        package: String,
        channel: String,
        heads: Vec<String>,
        /// The configuration that gives this channel one head, when one can
        /// be computed.
        fix: Option<Box<crate::catalog::fix::HeadsFix>>,
    },
    #[error("package {package:?} channel {channel:?}: {reason}")]
    InvalidChannel {
        package: String,
        channel: String,
        reason: crate::catalog::graph::GraphError,
    },
    #[error(
        "package {package:?} channel {channel:?}: filtering on the selected bundles [{}] leads to an invalid channel: {reason}",
        bundles.join(" ")
    )]
    SelectedBundlesBreakChannel {
        package: String,
        channel: String,
        bundles: Vec<String>,
        reason: crate::catalog::graph::GraphError,
    },
    /// `selection` says what emptied it: `version range ">=2.0.0"` or
    /// `bundles [a b]`.
    #[error(
        "package {package:?} channel {channel:?} has {selection} that results in an empty channel"
    )]
    EmptyChannel {
        package: String,
        channel: String,
        selection: String,
    },
    #[error(
        "package {package:?} channel {channel:?}: error finding specific bundle: specific version {version} not found in bundles"
    )]
    VersionNotFound {
        package: String,
        channel: String,
        version: String,
    },
}
