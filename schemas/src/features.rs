//! Fields the schema knows but ferry does not act on yet.
//!
//! ferry never ignores a field silently: `ferry validate` warns about each of
//! these where it is used, and a command that would act on the configuration
//! refuses it with "not supported yet" (see [`crate::Loaded::refusals`]).
//! When a feature is built, its entry leaves [`Feature`].

use crate::diagnostic::{Problem, Span};

/// A configuration feature ferry does not implement yet.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Feature {
    /// `helm:`.
    Helm,
    /// `samples:` (accepted by oc-mirror, not implemented by it either).
    Samples,
    /// `platforms:` sparse manifest filtering.
    PlatformFiltering,
    /// A release channel of `type: okd` (OKD's own update service).
    OkdChannels,
    /// `skipDependencies` (oc-mirror v2 ignores it too).
    SkipDependencies,
    /// An `additionalImages` entry read from an OCI layout on disk (`oci://`).
    OciAdditionalImage,
}

impl Feature {
    /// What the feature is, for messages.
    pub fn description(self) -> &'static str {
        match self {
            Feature::Helm => "helm chart mirroring (`helm`)",
            Feature::Samples => "`samples`",
            Feature::PlatformFiltering => "platform filtering (`platforms`)",
            Feature::OkdChannels => "OKD release channels (`type: okd`)",
            Feature::SkipDependencies => "`skipDependencies`",
            Feature::OciAdditionalImage => {
                "additional images from an OCI layout on disk (`oci://`)"
            }
        }
    }
}

/// Where a configuration uses a feature.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FeatureUse {
    pub feature: Feature,
    pub span: Span,
}

impl FeatureUse {
    pub(crate) fn warning(&self) -> Problem {
        Problem::warning(
            format!("{} is not supported by ferry yet", self.feature.description()),
            self.span,
            "not acted on yet",
        )
        .with_help("the configuration is valid; commands that would act on this part refuse to run until it is built")
    }

    pub(crate) fn refusal(&self) -> Problem {
        Problem::error(
            format!("{} is not supported yet", self.feature.description()),
            self.span,
            "not supported yet",
        )
        .with_help("remove this part from the configuration to mirror the rest; nothing was done")
    }
}
