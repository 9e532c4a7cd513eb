//! From a YAML tree to typed configuration, with every loading and
//! validation rule, each problem pointing at its own key or value.
//!
//! The decoder is written by hand, one small function per type, instead of
//! deriving serde's `Deserialize`: serde stops at the first error and knows no
//! positions, while a configuration with three problems must show three
//! snippets. Keys are matched case-insensitively (Go's `encoding/json`, which
//! oc-mirror decodes with, does that and configurations in the wild rely on
//! it); unknown keys are errors with a suggestion. Rules come from oc-mirror
//! (notes §2.1, §2.4); the ones ferry adds are marked "stricter than
//! oc-mirror" in their comments.

use std::collections::HashMap;
use std::str::FromStr;

use crate::config::{
    AdditionalImage, Architecture, BlockedImage, BundleSelector, ChannelType, Delete,
    DeleteImageSetConfiguration, Helm, HelmChart, HelmLocalChart, HelmRepository,
    ImageSetConfiguration, Mirror, Operator, Package, PackageChannel, Platform, PlatformSelector,
    ReleaseChannel, Sample, Version,
};
use crate::diagnostic::{Problem, Span};
use crate::features::{Feature, FeatureUse};
use crate::reference::{
    ImageReference, ImageSource, NAME_MAXIMUM_LENGTH, is_valid_repository_path, is_valid_tag,
};
use crate::yaml::{Node, Value, line_of};

/// The two configuration kinds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    ImageSet,
    Delete,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::ImageSet => "ImageSetConfiguration",
            Kind::Delete => "DeleteImageSetConfiguration",
        }
    }

    fn stanza(self) -> &'static str {
        match self {
            Kind::ImageSet => "mirror",
            Kind::Delete => "delete",
        }
    }
}

/// The fields of one mapping, matched to their canonical names.
struct Fields<'n> {
    span: Span,
    entries: Vec<(&'static str, &'n Node, &'n Node)>,
}

impl<'n> Fields<'n> {
    fn value(&self, name: &str) -> Option<&'n Node> {
        self.entries
            .iter()
            .find(|(field, _, _)| *field == name)
            .map(|(_, _, value)| *value)
    }

    fn key(&self, name: &str) -> Option<&'n Node> {
        self.entries
            .iter()
            .find(|(field, _, _)| *field == name)
            .map(|(_, key, _)| *key)
    }

    /// The value, unless it is absent or null.
    fn present(&self, name: &str) -> Option<&'n Node> {
        self.value(name).filter(|node| !node.is_null())
    }
}

/// Decodes one file, collecting problems and the features it uses.
pub(crate) struct Decoder<'t> {
    text: &'t str,
    pub(crate) problems: Vec<Problem>,
    pub(crate) features: Vec<FeatureUse>,
}

impl<'t> Decoder<'t> {
    pub(crate) fn new(text: &'t str) -> Self {
        Decoder {
            text,
            problems: Vec::new(),
            features: Vec::new(),
        }
    }

    fn error(&mut self, problem: Problem) {
        self.problems.push(problem);
    }

    fn uses(&mut self, feature: Feature, span: Span) {
        self.features.push(FeatureUse { feature, span });
    }

    fn first_line_note(&self, span: Span) -> String {
        format!("first on line {}", line_of(self.text, span.offset))
    }

    // ----- generic shapes -------------------------------------------------

    fn mapping<'n>(
        &mut self,
        node: &'n Node,
        what: &str,
        known: &[&'static str],
    ) -> Option<Fields<'n>> {
        let entries = match &node.value {
            _ if node.is_null() => {
                return Some(Fields {
                    span: node.span,
                    entries: Vec::new(),
                });
            }
            Value::Mapping(entries) => entries,
            _ => {
                self.error(
                    Problem::error(
                        format!("`{what}` must be a mapping, found {}", node.kind_name()),
                        node.span,
                        "expected `key: value` entries here",
                    )
                    .with_help(format!("the fields of `{what}` are: {}", known.join(", "))),
                );
                return None;
            }
        };
        // Point at the first key: a block mapping's own marker sits after
        // it, which reads badly in a snippet.
        let span = entries.first().map_or(node.span, |(key, _)| key.span);
        let mut fields = Fields {
            span,
            entries: Vec::new(),
        };
        let mut seen: HashMap<&'static str, Span> = HashMap::new();
        for (key, value) in entries {
            let Value::Scalar { text: name, .. } = &key.value else {
                self.error(Problem::error(
                    format!("a key in `{what}` must be a plain name"),
                    key.span,
                    "not a name",
                ));
                continue;
            };
            let Some(canonical) = known
                .iter()
                .find(|field| field.eq_ignore_ascii_case(name))
                .copied()
            else {
                let help = match closest(name, known) {
                    Some(suggestion) => format!("did you mean `{suggestion}`?"),
                    None => format!("the fields of `{what}` are: {}", known.join(", ")),
                };
                self.error(
                    Problem::error(
                        format!("unknown field `{name}` in `{what}`"),
                        key.span,
                        "unknown field",
                    )
                    .with_help(help),
                );
                continue;
            };
            if let Some(first) = seen.get(canonical) {
                // Exact duplicates are already reported by the YAML layer.
                let exact = fields
                    .key(canonical)
                    .is_some_and(|first_key| scalar_text(first_key) == Some(name.as_str()));
                if !exact {
                    let note = self.first_line_note(*first);
                    self.error(
                        Problem::error(
                            format!("`{name}` sets `{canonical}` a second time"),
                            key.span,
                            "same field, different case",
                        )
                        .with_help(format!(
                            "keys are matched without regard to case; `{canonical}` is {note}"
                        )),
                    );
                }
                continue;
            }
            seen.insert(canonical, key.span);
            fields.entries.push((canonical, key, value));
        }
        Some(fields)
    }

    fn list<'n>(&mut self, node: Option<&'n Node>, what: &str) -> &'n [Node] {
        match node {
            None => &[],
            Some(node) if node.is_null() => &[],
            Some(Node {
                value: Value::Sequence(items),
                ..
            }) => items,
            Some(node) => {
                self.error(
                    Problem::error(
                        format!("`{what}` must be a list, found {}", node.kind_name()),
                        node.span,
                        "expected a list here",
                    )
                    .with_help("write list items on their own lines, each starting with `- `"),
                );
                &[]
            }
        }
    }

    fn string(&mut self, node: &Node, what: &str) -> Option<String> {
        match &node.value {
            _ if node.is_null() => {
                self.error(Problem::error(
                    format!("`{what}` must not be empty"),
                    node.span,
                    "empty value",
                ));
                None
            }
            Value::Scalar { text, .. } => Some(text.clone()),
            _ => {
                self.error(Problem::error(
                    format!("`{what}` must be a string, found {}", node.kind_name()),
                    node.span,
                    "expected a string here",
                ));
                None
            }
        }
    }

    fn optional_string(&mut self, fields: &Fields<'_>, name: &str, what: &str) -> Option<String> {
        let node = fields.present(name)?;
        self.string(node, what)
    }

    fn required_string(&mut self, fields: &Fields<'_>, name: &str, what: &str) -> Option<String> {
        match fields.present(name) {
            Some(node) => self.string(node, what),
            None => {
                self.error(
                    Problem::error(
                        format!("`{what}` is required"),
                        fields.key(name).map_or(fields.span, |key| key.span),
                        format!("`{name}` is missing here"),
                    )
                    .with_help(format!("add `{name}: ...`")),
                );
                None
            }
        }
    }

    fn boolean(&mut self, fields: &Fields<'_>, name: &str, what: &str) -> bool {
        let Some(node) = fields.present(name) else {
            return false;
        };
        match &node.value {
            Value::Scalar {
                text,
                quoted: false,
            } if text.eq_ignore_ascii_case("true") => true,
            Value::Scalar {
                text,
                quoted: false,
            } if text.eq_ignore_ascii_case("false") => false,
            _ => {
                self.error(
                    Problem::error(
                        format!("`{what}` must be `true` or `false`"),
                        node.span,
                        "not a boolean",
                    )
                    .with_help("write `true` or `false` without quotes"),
                );
                false
            }
        }
    }

    fn version(&mut self, fields: &Fields<'_>, name: &str, what: &str) -> Option<Version> {
        let node = fields.present(name)?;
        let text = self.string(node, what)?;
        match Version::from_str(&text) {
            Ok(version) => Some(version),
            Err(_) => {
                self.error(
                    Problem::error(
                        format!("`{what}` \"{text}\" must respect semantic versioning notation"),
                        node.span,
                        "not a semantic version",
                    )
                    .with_help("write a version such as `4.16.1` (`4.16` means `4.16.0`)"),
                );
                None
            }
        }
    }

    /// Checks `min <= max`; stricter than oc-mirror, which fails at run time.
    fn check_range(
        &mut self,
        fields: &Fields<'_>,
        minimum: Option<&Version>,
        maximum: Option<&Version>,
        what: &str,
    ) {
        if let (Some(minimum), Some(maximum)) = (minimum, maximum)
            && minimum > maximum
            && let Some(node) = fields.value("minVersion")
        {
            let maximum_line = fields
                .value("maxVersion")
                .map_or(0, |max| line_of(self.text, max.span.offset));
            self.error(
                Problem::error(
                    format!("{what}: minVersion {minimum} is greater than maxVersion {maximum}"),
                    node.span,
                    "greater than maxVersion",
                )
                .with_help(format!(
                    "swap the two versions, or lower minVersion to at most {maximum} (maxVersion is on line {maximum_line})"
                )),
            );
        }
    }

    fn reference(&mut self, node: &Node, what: &str) -> Option<ImageReference> {
        let text = self.string(node, what)?;
        match ImageReference::from_str(&text) {
            Ok(reference) => Some(reference),
            Err(error) => {
                self.error(
                    Problem::error(
                        format!("invalid `{what}`: {error}"),
                        node.span,
                        "invalid image reference",
                    )
                    .with_help(error.help()),
                );
                None
            }
        }
    }

    fn source(&mut self, node: &Node, what: &str) -> Option<ImageSource> {
        let text = self.string(node, what)?;
        match ImageSource::from_str(&text) {
            Ok(source) => Some(source),
            Err(error) => {
                self.error(
                    Problem::error(
                        format!("invalid `{what}`: {error}"),
                        node.span,
                        "invalid image reference",
                    )
                    .with_help(error.help()),
                );
                None
            }
        }
    }

    fn repository_path(&mut self, fields: &Fields<'_>, name: &str, what: &str) -> Option<String> {
        let node = fields.present(name)?;
        let text = self.string(node, what)?;
        if is_valid_repository_path(&text) && text.len() > NAME_MAXIMUM_LENGTH {
            // Stricter than oc-mirror: a registry refuses the push later.
            self.error(
                Problem::error(
                    format!(
                        "`{what}` is {} characters long, more than a repository name may be ({NAME_MAXIMUM_LENGTH})",
                        text.len()
                    ),
                    node.span,
                    "too long",
                )
                .with_help("registries refuse a repository name (host and path) longer than 255 characters"),
            );
            None
        } else if is_valid_repository_path(&text) {
            Some(text)
        } else {
            self.error(
                Problem::error(
                    format!("invalid target path component \"{text}\" in `{what}`: should not contain a tag or digest"),
                    node.span,
                    "not a repository path",
                )
                .with_help(
                    "write one or more path components separated by `/`, each of lower-case letters and digits joined by `.`, `_`, `__` or `-` (put a tag in targetTag)",
                ),
            );
            None
        }
    }

    fn tag(&mut self, fields: &Fields<'_>, name: &str, what: &str) -> Option<String> {
        let node = fields.present(name)?;
        let text = self.string(node, what)?;
        if is_valid_tag(&text) {
            Some(text)
        } else {
            self.error(
                Problem::error(format!("invalid tag \"{text}\" in `{what}`"), node.span, "not a tag")
                    .with_help("a tag has up to 128 letters, digits, `_`, `.` and `-`, and does not start with `.` or `-`"),
            );
            None
        }
    }

    // ----- the kinds ------------------------------------------------------

    /// Decodes the root of an `ImageSetConfiguration`.
    pub(crate) fn image_set(&mut self, root: &Node) -> Option<ImageSetConfiguration> {
        let fields = self.root(
            root,
            Kind::ImageSet,
            &["kind", "apiVersion", "archiveSize", "mirror", "delete"],
        )?;
        let api_version = self.api_version(&fields);
        let archive_size = fields
            .present("archiveSize")
            .and_then(|node| match &node.value {
                Value::Scalar {
                    text,
                    quoted: false,
                } => match text.parse::<u64>() {
                    Ok(size) => Some(size),
                    Err(_) => {
                        self.error(
                            Problem::error(
                                "`archiveSize` must be a whole number of GiB",
                                node.span,
                                "not a whole number",
                            )
                            .with_help("e.g. `archiveSize: 4` for segments of at most 4 GiB"),
                        );
                        None
                    }
                },
                _ => {
                    self.error(Problem::error(
                        "`archiveSize` must be a whole number of GiB",
                        node.span,
                        "not a whole number",
                    ));
                    None
                }
            });
        let mirror = match fields.value("mirror") {
            Some(node) => self.mirror(node),
            None => None,
        };
        Some(ImageSetConfiguration {
            kind: Kind::ImageSet.name().to_owned(),
            api_version,
            archive_size,
            mirror: mirror.unwrap_or_default(),
        })
    }

    /// Decodes the root of a `DeleteImageSetConfiguration`.
    pub(crate) fn delete_set(&mut self, root: &Node) -> Option<DeleteImageSetConfiguration> {
        let fields = self.root(
            root,
            Kind::Delete,
            &["kind", "apiVersion", "delete", "mirror"],
        )?;
        let api_version = self.api_version(&fields);
        let delete = match fields.value("delete") {
            Some(node) => self.delete(node),
            None => None,
        };
        Some(DeleteImageSetConfiguration {
            kind: Kind::Delete.name().to_owned(),
            api_version,
            delete: delete.unwrap_or_default(),
        })
    }

    fn api_version(&mut self, fields: &Fields<'_>) -> String {
        // Not validated, as with oc-mirror (notes §2.1 rule 5).
        fields
            .present("apiVersion")
            .and_then(|node| scalar_text(node).map(str::to_owned))
            .unwrap_or_else(|| crate::config::API_VERSION.to_owned())
    }

    fn root<'n>(
        &mut self,
        root: &'n Node,
        kind: Kind,
        known: &[&'static str],
    ) -> Option<Fields<'n>> {
        if !matches!(root.value, Value::Mapping(_)) {
            self.error(
                Problem::error(
                    format!(
                        "a configuration must be a mapping, found {}",
                        root.kind_name()
                    ),
                    root.span,
                    "expected `kind:`, `apiVersion:` and more here",
                )
                .with_help(format!("start the file with `kind: {}`", kind.name())),
            );
            return None;
        }
        let fields = self.mapping(root, kind.name(), known)?;
        match fields.value("kind") {
            None => {
                self.error(
                    Problem::error(
                        "configuration missing `kind`",
                        Span::new(0, 0),
                        "no `kind` in this file",
                    )
                    .with_help(format!("add `kind: {}` at the top", kind.name())),
                );
                return None;
            }
            Some(node) => {
                let text = scalar_text(node).unwrap_or_default();
                if text != kind.name() {
                    let help = match text {
                        "ImageSetConfiguration" | "DeleteImageSetConfiguration" => format!(
                            "this command reads a {}; a {text} is for another command",
                            kind.name()
                        ),
                        _ => "the kinds are `ImageSetConfiguration` and `DeleteImageSetConfiguration`".to_owned(),
                    };
                    self.error(
                        Problem::error(
                            format!("cannot parse \"{text}\" as \"{}\"", kind.name()),
                            node.span,
                            "wrong kind",
                        )
                        .with_help(help),
                    );
                    return None;
                }
            }
        }
        let stanza = kind.stanza();
        let other = match kind {
            Kind::ImageSet => "delete",
            Kind::Delete => "mirror",
        };
        if let Some(key) = fields.key(other) {
            self.error(
                Problem::error(
                    format!("{other}: is not allowed in {}", kind.name()),
                    key.span,
                    "not allowed here",
                )
                .with_help(format!(
                    "a {} lists what to handle under `{stanza}:`",
                    kind.name()
                )),
            );
        }
        if fields.value(stanza).is_none() {
            let kind_span = fields.key("kind").map_or(fields.span, |key| key.span);
            self.error(
                Problem::error(
                    format!("configuration missing the `{stanza}` stanza"),
                    kind_span,
                    format!("this {} has no `{stanza}:`", kind.name()),
                )
                .with_help(format!(
                    "add `{stanza}:` with what to {stanza}, e.g. `additionalImages:`"
                )),
            );
        }
        Some(fields)
    }

    fn mirror(&mut self, node: &Node) -> Option<Mirror> {
        let fields = self.mapping(
            node,
            "mirror",
            &[
                "platform",
                "operators",
                "additionalImages",
                "helm",
                "blockedImages",
                "samples",
            ],
        )?;
        let mut mirror = Mirror {
            platform: fields
                .present("platform")
                .and_then(|node| self.platform(node)),
            operators: self.operators(fields.value("operators")),
            additional_images: self.additional_images(fields.value("additionalImages")),
            helm: fields.present("helm").and_then(|node| self.helm(node)),
            blocked_images: Vec::new(),
            samples: self.samples(fields.value("samples")),
        };
        for item in self.list(fields.value("blockedImages"), "blockedImages") {
            if let Some(blocked) = self.blocked_image(item) {
                mirror.blocked_images.push(blocked);
            }
        }
        // `platform` and `operators` are mirrored (issues 11 and 10); the
        // other stanzas are not yet.
        self.stanza_features(&fields);
        Some(mirror)
    }

    fn delete(&mut self, node: &Node) -> Option<Delete> {
        let fields = self.mapping(
            node,
            "delete",
            &[
                "platform",
                "operators",
                "additionalImages",
                "helm",
                "samples",
            ],
        )?;
        let delete = Delete {
            platform: fields
                .present("platform")
                .and_then(|node| self.platform(node)),
            operators: self.operators(fields.value("operators")),
            additional_images: self.additional_images(fields.value("additionalImages")),
            helm: fields.present("helm").and_then(|node| self.helm(node)),
            samples: self.samples(fields.value("samples")),
        };
        self.stanza_features(&fields);
        Some(delete)
    }

    /// Marks the stanzas ferry does not act on yet.
    fn stanza_features(&mut self, fields: &Fields<'_>) {
        for (name, feature) in [("helm", Feature::Helm), ("samples", Feature::Samples)] {
            if let (Some(key), Some(_)) = (fields.key(name), fields.present(name)) {
                self.uses(feature, key.span);
            }
        }
    }

    fn platform(&mut self, node: &Node) -> Option<Platform> {
        let fields = self.mapping(
            node,
            "platform",
            &[
                "graph",
                "channels",
                "architectures",
                "platforms",
                "release",
                "kubeVirtContainer",
            ],
        )?;
        let mut platform = Platform {
            graph: self.boolean(&fields, "graph", "platform.graph"),
            kube_virt_container: self.boolean(
                &fields,
                "kubeVirtContainer",
                "platform.kubeVirtContainer",
            ),
            release: fields
                .present("release")
                .and_then(|node| self.reference(node, "platform.release")),
            ..Platform::default()
        };
        let mut names: HashMap<String, Span> = HashMap::new();
        for item in self.list(fields.value("channels"), "platform.channels") {
            let Some(channel) = self.release_channel(item) else {
                continue;
            };
            let name_node = channel_name_node(item);
            if let Some(first) = names.get(&channel.name) {
                let note = self.first_line_note(*first);
                self.error(
                    Problem::error(
                        format!(
                            "release channel \"{}\": duplicate found in configuration",
                            channel.name
                        ),
                        name_node.map_or(item.span, |n| n.span),
                        "duplicate channel",
                    )
                    .with_help(format!("this channel is {note}; merge the two entries")),
                );
            } else {
                names.insert(
                    channel.name.clone(),
                    name_node.map_or(item.span, |n| n.span),
                );
            }
            platform.channels.push(channel);
        }
        for item in self.list(fields.value("architectures"), "platform.architectures") {
            let Some(text) = self.string(item, "platform.architectures") else {
                continue;
            };
            match Architecture::ALL.iter().find(|a| a.name() == text) {
                Some(architecture) => platform.architectures.push(*architecture),
                None => self.error(
                    Problem::error(
                        format!("unknown architecture \"{text}\""),
                        item.span,
                        "not an architecture",
                    )
                    .with_help("the architectures are amd64, arm64, ppc64le, s390x and multi"),
                ),
            }
        }
        platform.platforms =
            self.platform_selectors(fields.value("platforms"), "platform.platforms");
        if !platform.platforms.is_empty() {
            self.uses(
                Feature::PlatformFiltering,
                fields.key("platforms").map_or(fields.span, |k| k.span),
            );
            if !platform.architectures.is_empty()
                && let Some(key) = fields.key("platforms")
            {
                self.error(
                    Problem::error(
                        "platform.platforms and platform.architectures cannot be used together",
                        key.span,
                        "platforms set here",
                    )
                    .with_help(
                        "use platform.platforms for sparse manifest filtering, or platform.architectures (deprecated), not both",
                    ),
                );
            }
        }
        Some(platform)
    }

    fn release_channel(&mut self, node: &Node) -> Option<ReleaseChannel> {
        let fields = self.mapping(
            node,
            "platform.channels[]",
            &[
                "name",
                "type",
                "minVersion",
                "maxVersion",
                "shortestPath",
                "full",
            ],
        )?;
        let name = self.required_string(&fields, "name", "platform.channels[].name");
        let channel_type = match fields.present("type") {
            None => ChannelType::Ocp,
            Some(node) => match scalar_text(node) {
                Some("ocp") => ChannelType::Ocp,
                Some("okd") => {
                    self.uses(Feature::OkdChannels, node.span);
                    ChannelType::Okd
                }
                // Stricter than oc-mirror, which silently reads any other
                // value as ocp.
                _ => {
                    self.error(
                        Problem::error(
                            "a release channel's `type` must be `ocp` or `okd`",
                            node.span,
                            "unknown type",
                        )
                        .with_help("leave `type` out for OpenShift (ocp)"),
                    );
                    ChannelType::Ocp
                }
            },
        };
        let what = format!("release channel \"{}\"", name.as_deref().unwrap_or("?"));
        let min_version = self.version(&fields, "minVersion", "minVersion");
        let max_version = self.version(&fields, "maxVersion", "maxVersion");
        self.check_range(&fields, min_version.as_ref(), max_version.as_ref(), &what);
        let full = self.boolean(&fields, "full", "full");
        if full {
            self.full_with_range(&fields, &what);
        }
        Some(ReleaseChannel {
            name: name?,
            channel_type,
            min_version,
            max_version,
            shortest_path: self.boolean(&fields, "shortestPath", "shortestPath"),
            full,
        })
    }

    /// `full: true` with a version range: oc-mirror fails at run time
    /// ("Full: true cannot be mixed with versionRange"); ferry at load time.
    fn full_with_range(&mut self, fields: &Fields<'_>, what: &str) {
        for bound in ["minVersion", "maxVersion"] {
            if let Some(key) = fields
                .key(bound)
                .filter(|_| fields.present(bound).is_some())
            {
                self.error(
                    Problem::error(
                        format!("{what}: `full: true` cannot be mixed with a version range"),
                        key.span,
                        format!("{bound} set together with full"),
                    )
                    .with_help("remove `full: true` to mirror the range, or remove the range to mirror everything"),
                );
                return;
            }
        }
    }

    fn operators(&mut self, node: Option<&Node>) -> Vec<Operator> {
        let mut operators = Vec::new();
        let mut unique: HashMap<String, Span> = HashMap::new();
        for item in self.list(node, "operators") {
            let Some((operator, catalog_span)) = self.operator(item) else {
                continue;
            };
            let name = operator.unique_name();
            if let Some(first) = unique.get(&name) {
                let note = self.first_line_note(*first);
                self.error(
                    Problem::error(
                        format!("catalog \"{name}\": duplicate found in configuration"),
                        catalog_span,
                        "duplicate catalog",
                    )
                    .with_help(format!(
                        "this catalog is {note}; merge the packages into one entry, or give one a different targetCatalog or targetTag"
                    )),
                );
            } else {
                unique.insert(name, catalog_span);
            }
            operators.push(operator);
        }
        operators
    }

    fn operator(&mut self, node: &Node) -> Option<(Operator, Span)> {
        let fields = self.mapping(
            node,
            "operators[]",
            &[
                "catalog",
                "targetCatalog",
                "targetTag",
                "full",
                "skipDependencies",
                "targetCatalogSourceTemplate",
                "platforms",
                "packages",
            ],
        )?;
        let catalog_node = fields.present("catalog");
        let catalog = match catalog_node {
            Some(node) => self.source(node, "catalog"),
            None => {
                self.required_string(&fields, "catalog", "operators[].catalog");
                None
            }
        };
        let target_catalog = self.repository_path(&fields, "targetCatalog", "targetCatalog");
        let target_tag = self.tag(&fields, "targetTag", "targetTag");
        let full = self.boolean(&fields, "full", "full");
        let skip_dependencies = self.boolean(&fields, "skipDependencies", "skipDependencies");
        if skip_dependencies {
            self.uses(
                Feature::SkipDependencies,
                fields
                    .key("skipDependencies")
                    .map_or(fields.span, |k| k.span),
            );
        }
        let target_catalog_source_template = self.optional_string(
            &fields,
            "targetCatalogSourceTemplate",
            "targetCatalogSourceTemplate",
        );
        let platforms = self.platform_selectors(fields.value("platforms"), "operators[].platforms");
        if !platforms.is_empty() {
            self.uses(
                Feature::PlatformFiltering,
                fields.key("platforms").map_or(fields.span, |k| k.span),
            );
        }
        let catalog_name = catalog
            .as_ref()
            .map_or_else(|| "?".to_owned(), ToString::to_string);
        let catalog_name = catalog_name
            .strip_prefix("docker://")
            .unwrap_or(&catalog_name)
            .to_owned();
        let packages = self.packages(fields.value("packages"), &catalog_name, full);
        let span = catalog_node.map_or(fields.span, |node| node.span);
        Some((
            Operator {
                catalog: catalog?,
                target_catalog,
                target_tag,
                full,
                skip_dependencies,
                target_catalog_source_template,
                platforms,
                packages,
            },
            span,
        ))
    }

    fn packages(&mut self, node: Option<&Node>, catalog: &str, full: bool) -> Vec<Package> {
        let mut packages = Vec::new();
        let mut names: HashMap<String, Span> = HashMap::new();
        for item in self.list(node, "packages") {
            let Some(package) = self.package(item, catalog, full) else {
                continue;
            };
            let name_span = channel_name_node(item).map_or(item.span, |n| n.span);
            if let Some(first) = names.get(&package.name) {
                let note = self.first_line_note(*first);
                self.error(
                    Problem::error(
                        format!(
                            "catalog \"{catalog}\": duplicate package entry \"{}\"",
                            package.name
                        ),
                        name_span,
                        "duplicate package",
                    )
                    .with_help(format!("this package is {note}; merge the two entries")),
                );
            } else {
                names.insert(package.name.clone(), name_span);
            }
            packages.push(package);
        }
        packages
    }

    fn package(&mut self, node: &Node, catalog: &str, full: bool) -> Option<Package> {
        let fields = self.mapping(
            node,
            "packages[]",
            &[
                "name",
                "defaultChannel",
                "minVersion",
                "maxVersion",
                "channels",
                "bundles",
            ],
        )?;
        let name = self.required_string(&fields, "name", "packages[].name");
        let what = format!(
            "catalog \"{catalog}\": operator \"{}\"",
            name.as_deref().unwrap_or("?")
        );
        let min_version = self.version(&fields, "minVersion", "minVersion");
        let max_version = self.version(&fields, "maxVersion", "maxVersion");
        self.check_range(&fields, min_version.as_ref(), max_version.as_ref(), &what);
        let package_range = min_version.is_some() || max_version.is_some();
        if full && package_range {
            self.full_with_range(&fields, &what);
        }
        let mut channels = Vec::new();
        let mut channel_names: HashMap<String, Span> = HashMap::new();
        for item in self.list(fields.value("channels"), "channels") {
            let Some(channel_fields) =
                self.mapping(item, "channels[]", &["name", "minVersion", "maxVersion"])
            else {
                continue;
            };
            let channel_name = self.required_string(&channel_fields, "name", "channels[].name");
            let channel_what = format!(
                "{what}: channel \"{}\"",
                channel_name.as_deref().unwrap_or("?")
            );
            let channel_min = self.version(&channel_fields, "minVersion", "minVersion");
            let channel_max = self.version(&channel_fields, "maxVersion", "maxVersion");
            self.check_range(
                &channel_fields,
                channel_min.as_ref(),
                channel_max.as_ref(),
                &channel_what,
            );
            let channel_range = channel_min.is_some() || channel_max.is_some();
            if channel_range && package_range {
                let key = channel_fields
                    .key("minVersion")
                    .or_else(|| channel_fields.key("maxVersion"))
                    .map_or(item.span, |key| key.span);
                self.error(
                    Problem::error(
                        format!("{what}: mixing both filtering by minVersion/maxVersion and filtering by channel minVersion/maxVersion is not allowed"),
                        key,
                        "channel range",
                    )
                    .with_help("keep either the package's minVersion/maxVersion or the channels' ranges"),
                );
            } else if channel_range && full {
                self.full_with_range(&channel_fields, &channel_what);
            }
            let Some(channel_name) = channel_name else {
                continue;
            };
            let name_span = channel_fields.value("name").map_or(item.span, |n| n.span);
            if let Some(first) = channel_names.get(&channel_name) {
                let note = self.first_line_note(*first);
                self.error(
                    Problem::error(
                        format!("{what}: duplicate channel entry \"{channel_name}\""),
                        name_span,
                        "duplicate channel",
                    )
                    .with_help(format!("this channel is {note}; merge the two entries")),
                );
            } else {
                channel_names.insert(channel_name.clone(), name_span);
            }
            channels.push(PackageChannel {
                name: channel_name,
                min_version: channel_min,
                max_version: channel_max,
            });
        }
        let mut bundles = Vec::new();
        for item in self.list(fields.value("bundles"), "bundles") {
            let Some(bundle_fields) = self.mapping(item, "bundles[]", &["name"]) else {
                continue;
            };
            if let Some(bundle_name) =
                self.required_string(&bundle_fields, "name", "bundles[].name")
            {
                bundles.push(BundleSelector { name: bundle_name });
            }
        }
        Some(Package {
            name: name?,
            default_channel: self.optional_string(&fields, "defaultChannel", "defaultChannel"),
            min_version,
            max_version,
            channels,
            bundles,
        })
    }

    fn additional_images(&mut self, node: Option<&Node>) -> Vec<AdditionalImage> {
        let mut images = Vec::new();
        for item in self.list(node, "additionalImages") {
            let Some(fields) = self.mapping(
                item,
                "additionalImages[]",
                &["name", "targetRepo", "targetTag", "platforms"],
            ) else {
                continue;
            };
            let name = match fields.present("name") {
                Some(node) => self.source(node, "additionalImages[].name"),
                None => {
                    self.required_string(&fields, "name", "additionalImages[].name");
                    None
                }
            };
            let target_repo = self.repository_path(&fields, "targetRepo", "targetRepo");
            let target_tag = self.tag(&fields, "targetTag", "targetTag");
            let platforms =
                self.platform_selectors(fields.value("platforms"), "additionalImages[].platforms");
            if !platforms.is_empty() {
                self.uses(
                    Feature::PlatformFiltering,
                    fields.key("platforms").map_or(fields.span, |k| k.span),
                );
            }
            if let Some(ImageSource::OciLayout { .. }) = &name
                && let Some(node) = fields.present("name")
            {
                self.uses(Feature::OciAdditionalImage, node.span);
            }
            if let Some(name) = name {
                images.push(AdditionalImage {
                    name,
                    target_repo,
                    target_tag,
                    platforms,
                });
            }
        }
        images
    }

    fn blocked_image(&mut self, node: &Node) -> Option<BlockedImage> {
        let fields = self.mapping(node, "blockedImages[]", &["name"])?;
        let pattern = self.required_string(&fields, "name", "blockedImages[].name")?;
        if let Err(error) = regex::Regex::new(&pattern) {
            let detail = error.to_string();
            let last_line = detail
                .lines()
                .last()
                .unwrap_or("invalid pattern")
                .trim()
                .to_owned();
            self.error(
                Problem::error(
                    format!("blocked image \"{pattern}\": invalid regular expression"),
                    fields.value("name").map_or(node.span, |n| n.span),
                    last_line,
                )
                .with_help("blockedImages names are regular expressions; escape `.`, `[` and other special characters with `\\`"),
            );
            return None;
        }
        Some(BlockedImage { name: pattern })
    }

    fn samples(&mut self, node: Option<&Node>) -> Vec<Sample> {
        let mut samples = Vec::new();
        for item in self.list(node, "samples") {
            let Some(fields) = self.mapping(item, "samples[]", &["name"]) else {
                continue;
            };
            if let Some(name) = self.required_string(&fields, "name", "samples[].name") {
                samples.push(Sample { name });
            }
        }
        samples
    }

    fn platform_selectors(&mut self, node: Option<&Node>, what: &str) -> Vec<PlatformSelector> {
        let mut selectors = Vec::new();
        for item in self.list(node, what) {
            let Some(fields) = self.mapping(item, what, &["os", "architecture"]) else {
                continue;
            };
            let os = self.required_string(&fields, "os", "os");
            let architecture = self.required_string(&fields, "architecture", "architecture");
            if let (Some(os), Some(architecture)) = (os, architecture) {
                selectors.push(PlatformSelector { os, architecture });
            }
        }
        selectors
    }

    fn helm(&mut self, node: &Node) -> Option<Helm> {
        let fields = self.mapping(node, "helm", &["repositories", "local"])?;
        let mut helm = Helm::default();
        for item in self.list(fields.value("repositories"), "helm.repositories") {
            let Some(repository) =
                self.mapping(item, "helm.repositories[]", &["name", "url", "charts"])
            else {
                continue;
            };
            let name = self.required_string(&repository, "name", "helm.repositories[].name");
            let url = self.required_string(&repository, "url", "helm.repositories[].url");
            let mut charts = Vec::new();
            for chart_node in self.list(repository.value("charts"), "charts") {
                let Some(chart) = self.mapping(
                    chart_node,
                    "charts[]",
                    &["name", "version", "imagePaths", "platforms"],
                ) else {
                    continue;
                };
                let chart_name = self.required_string(&chart, "name", "charts[].name");
                let version = self.optional_string(&chart, "version", "charts[].version");
                let image_paths = self.strings(chart.value("imagePaths"), "imagePaths");
                let platforms =
                    self.platform_selectors(chart.value("platforms"), "charts[].platforms");
                if let Some(chart_name) = chart_name {
                    charts.push(HelmChart {
                        name: chart_name,
                        version,
                        image_paths,
                        platforms,
                    });
                }
            }
            if let (Some(name), Some(url)) = (name, url) {
                helm.repositories.push(HelmRepository { name, url, charts });
            }
        }
        for item in self.list(fields.value("local"), "helm.local") {
            let Some(local) = self.mapping(
                item,
                "helm.local[]",
                &["name", "path", "imagePaths", "platforms"],
            ) else {
                continue;
            };
            let name = self.required_string(&local, "name", "helm.local[].name");
            let path = self.required_string(&local, "path", "helm.local[].path");
            let image_paths = self.strings(local.value("imagePaths"), "imagePaths");
            let platforms =
                self.platform_selectors(local.value("platforms"), "helm.local[].platforms");
            if let (Some(name), Some(path)) = (name, path) {
                helm.local.push(HelmLocalChart {
                    name,
                    path,
                    image_paths,
                    platforms,
                });
            }
        }
        Some(helm)
    }

    fn strings(&mut self, node: Option<&Node>, what: &str) -> Vec<String> {
        let mut strings = Vec::new();
        for item in self.list(node, what) {
            if let Some(text) = self.string(item, what) {
                strings.push(text);
            }
        }
        strings
    }
}

fn scalar_text(node: &Node) -> Option<&str> {
    match &node.value {
        Value::Scalar { text, .. } => Some(text),
        _ => None,
    }
}

/// The `name:` value node of a list item, matched case-insensitively.
fn channel_name_node(item: &Node) -> Option<&Node> {
    match &item.value {
        Value::Mapping(entries) => entries
            .iter()
            .find(|(key, _)| scalar_text(key).is_some_and(|k| k.eq_ignore_ascii_case("name")))
            .map(|(_, value)| value),
        _ => None,
    }
}

/// The known name closest to `name`, if any is close enough to suggest.
fn closest(name: &str, known: &[&'static str]) -> Option<&'static str> {
    let lowered = name.to_ascii_lowercase();
    known
        .iter()
        .map(|field| {
            (
                strsim::jaro_winkler(&lowered, &field.to_ascii_lowercase()),
                *field,
            )
        })
        .filter(|(score, _)| *score >= 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, field)| field)
}
