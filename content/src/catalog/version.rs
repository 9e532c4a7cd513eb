//! Versions and version ranges: the bundle version of an `olm.package`
//! property, the `minVersion`/`maxVersion` range of oc-mirror's filter, and
//! the `versionRange` of an `olm.package.required` property.

use std::cmp::Ordering;
use std::fmt;

/// A bundle's version as written in its `olm.package` property (strict
/// semver). Ordered by semver precedence: build metadata is ignored, as
/// oc-mirror's Masterminds semver does (`1.42.0-5+0.1687199951.p` equals
/// `1.42.0-5`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BundleVersion {
    version: semver::Version,
}

impl BundleVersion {
    /// Strict parsing (three numbers, no leading `v`), as operator-registry
    /// reads the `olm.package` property.
    pub fn parse(text: &str) -> Result<Self, semver::Error> {
        semver::Version::parse(text).map(|version| BundleVersion { version })
    }

    pub fn semver(&self) -> &semver::Version {
        &self.version
    }

    /// Precedence order: major, minor, patch, pre-release; build metadata
    /// ignored.
    pub fn precedence(&self, other: &BundleVersion) -> Ordering {
        precedence(&self.version, &other.version)
    }
}

impl fmt::Display for BundleVersion {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.version.fmt(formatter)
    }
}

fn precedence(left: &semver::Version, right: &semver::Version) -> Ordering {
    (left.major, left.minor, left.patch, &left.pre).cmp(&(
        right.major,
        right.minor,
        right.patch,
        &right.pre,
    ))
}

/// The filter's version range: `>=minVersion` and/or `<=maxVersion`.
///
/// Checked as oc-mirror checks its Masterminds constraint: a bundle whose
/// version has a pre-release part (`1.34.1-5`) matches a bound only when that
/// bound has a pre-release part too, so `minVersion: 1.30.0` does not count
/// `1.34.1-5` as in range.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FilterRange {
    pub min: Option<semver::Version>,
    pub max: Option<semver::Version>,
}

impl FilterRange {
    /// The range of a configuration entry, or `None` when it sets neither bound.
    pub fn new(
        min: Option<&ferry_schemas::config::Version>,
        max: Option<&ferry_schemas::config::Version>,
    ) -> Option<FilterRange> {
        if min.is_none() && max.is_none() {
            return None;
        }
        Some(FilterRange {
            min: min.map(|version| version.semver().clone()),
            max: max.map(|version| version.semver().clone()),
        })
    }

    pub fn contains(&self, version: &BundleVersion) -> bool {
        let version = version.semver();
        let bound_allows = |bound: &semver::Version, wanted: fn(Ordering) -> bool| {
            if !version.pre.is_empty() && bound.pre.is_empty() {
                return false;
            }
            wanted(precedence(version, bound))
        };
        self.min
            .as_ref()
            .is_none_or(|min| bound_allows(min, Ordering::is_ge))
            && self
                .max
                .as_ref()
                .is_none_or(|max| bound_allows(max, Ordering::is_le))
    }

    /// The single version this range pins, when `minVersion` equals
    /// `maxVersion` (oc-mirror then keeps exactly that bundle).
    pub fn pinned(&self) -> Option<&semver::Version> {
        match (&self.min, &self.max) {
            (Some(min), Some(max)) if min == max => Some(min),
            _ => None,
        }
    }
}

impl fmt::Display for FilterRange {
    /// The constraint text oc-mirror builds: `>=1.0.0 <=2.0.0`.
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.min, &self.max) {
            (Some(min), Some(max)) => write!(formatter, ">={min} <={max}"),
            (Some(min), None) => write!(formatter, ">={min}"),
            (None, Some(max)) => write!(formatter, "<={max}"),
            (None, None) => Ok(()),
        }
    }
}

/// The `versionRange` of an `olm.package.required` property, in the syntax
/// OLM reads (blang semver ranges): comparators separated by spaces must all
/// hold, alternatives are separated by `||`; `>=1.0.0 <2.0.0 || 3.0.0`.
///
/// Written here because the `semver` crate reads Cargo's requirement syntax
/// (commas, caret by default), which gives other answers for the same text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DependencyRange {
    alternatives: Vec<Vec<(Comparison, semver::Version)>>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Comparison {
    Equal,
    NotEqual,
    Greater,
    GreaterOrEqual,
    Less,
    LessOrEqual,
}

impl DependencyRange {
    pub fn parse(text: &str) -> Result<DependencyRange, String> {
        let mut alternatives = Vec::new();
        for alternative in text.split("||") {
            let mut comparators = Vec::new();
            let mut parts = alternative.split_whitespace().peekable();
            while let Some(part) = parts.next() {
                let (comparison, rest) = split_operator(part);
                // An operator written apart from its version: `>= 1.0.0`.
                let version_text = if rest.is_empty() {
                    parts
                        .next()
                        .ok_or_else(|| format!("`{part}` has no version after it"))?
                } else {
                    rest
                };
                let version = version_text
                    .parse::<ferry_schemas::config::Version>()
                    .map_err(|error| format!("`{version_text}` is not a version: {error}"))?;
                comparators.push((comparison, version.semver().clone()));
            }
            if comparators.is_empty() {
                return Err(format!("`{text}` has an empty alternative"));
            }
            alternatives.push(comparators);
        }
        Ok(DependencyRange { alternatives })
    }

    pub fn contains(&self, version: &BundleVersion) -> bool {
        self.alternatives.iter().any(|comparators| {
            comparators.iter().all(|(comparison, bound)| {
                let order = precedence(version.semver(), bound);
                match comparison {
                    Comparison::Equal => order.is_eq(),
                    Comparison::NotEqual => order.is_ne(),
                    Comparison::Greater => order.is_gt(),
                    Comparison::GreaterOrEqual => order.is_ge(),
                    Comparison::Less => order.is_lt(),
                    Comparison::LessOrEqual => order.is_le(),
                }
            })
        })
    }
}

fn split_operator(part: &str) -> (Comparison, &str) {
    for (operator, comparison) in [
        (">=", Comparison::GreaterOrEqual),
        ("<=", Comparison::LessOrEqual),
        ("!=", Comparison::NotEqual),
        ("==", Comparison::Equal),
        (">", Comparison::Greater),
        ("<", Comparison::Less),
        ("=", Comparison::Equal),
        ("!", Comparison::NotEqual),
    ] {
        if let Some(rest) = part.strip_prefix(operator) {
            return (comparison, rest);
        }
    }
    (Comparison::Equal, part)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn version(text: &str) -> BundleVersion {
        BundleVersion::parse(text).unwrap()
    }

    fn range(min: Option<&str>, max: Option<&str>) -> FilterRange {
        let parse = |text: &str| text.parse::<ferry_schemas::config::Version>().unwrap();
        FilterRange::new(min.map(parse).as_ref(), max.map(parse).as_ref()).unwrap()
    }

    #[test]
    fn build_metadata_does_not_change_precedence() {
        assert_eq!(
            version("1.42.0-5+0.1687199951.p").precedence(&version("1.42.0-5")),
            Ordering::Equal
        );
        assert_eq!(
            version("0.18.1").precedence(&version("0.18.1+0.1675929565.p")),
            Ordering::Equal
        );
        assert_eq!(
            version("1.0.0-1").precedence(&version("1.0.0")),
            Ordering::Less
        );
    }

    #[test]
    fn pre_releases_match_only_bounds_with_pre_releases() {
        let release_bounds = range(Some("1.30.0"), Some("1.60.0"));
        assert!(release_bounds.contains(&version("1.30.2")));
        assert!(!release_bounds.contains(&version("1.34.1-5")));
        let pre_release_bounds = range(Some("1.34.1-1"), None);
        assert!(pre_release_bounds.contains(&version("1.34.1-5")));
        assert!(!pre_release_bounds.contains(&version("1.34.1-0")));
        assert!(range(None, Some("0.3.1")).contains(&version("0.3.1+build")));
    }

    #[test]
    fn pinned_only_when_both_bounds_are_equal() {
        assert!(range(Some("0.3.1"), Some("v0.3.1")).pinned().is_some());
        assert!(range(Some("0.3.1"), None).pinned().is_none());
        assert_eq!(
            range(Some("0.2"), Some("0.3.1")).to_string(),
            ">=0.2.0 <=0.3.1"
        );
    }

    #[test]
    fn dependency_ranges_read_olm_syntax() {
        let below = DependencyRange::parse("<0.2.0").unwrap();
        assert!(below.contains(&version("0.1.0")));
        assert!(!below.contains(&version("0.2.0")));
        let window = DependencyRange::parse(">= 1.0.0 <2.0.0 || 3.0.0").unwrap();
        assert!(window.contains(&version("1.5.0")));
        assert!(!window.contains(&version("2.0.0")));
        assert!(window.contains(&version("3.0.0")));
        assert!(DependencyRange::parse(">=").is_err());
        assert!(DependencyRange::parse("<banana").is_err());
    }
}
