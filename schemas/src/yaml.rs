//! YAML text to a tree of nodes that remember where they came from.
//!
//! serde_yaml reports positions only for syntax errors, but ferry points every
//! problem (an unknown key, a duplicate package, `minVersion` above
//! `maxVersion`) at its own place in the file. So the text is parsed with
//! yaml-rust2's event parser, whose events carry markers, into [`Node`]s with
//! byte spans. Duplicate keys are found here, because a map type would lose
//! them. Only the first document of a stream is read; a second one is an
//! error, since oc-mirror reads exactly one configuration per file.
//!
//! Hostile files are refused before they cost memory: a text larger than
//! [`MAXIMUM_DOCUMENT_BYTES`], control characters (a NUL byte would end the
//! parser's input early and hide everything after it), nesting deeper than
//! [`MAXIMUM_NESTING`], and aliases that together copy more than
//! [`MAXIMUM_ALIASED_NODES`] nodes (a "billion laughs" file of a few hundred
//! bytes expands to billions of nodes otherwise).

use std::collections::HashMap;

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};

use crate::diagnostic::{Problem, Span};

/// The largest configuration text read. oc-mirror's own examples are a few
/// KiB; the largest real ones (every package of several catalogs spelled
/// out) stay well under one MiB.
pub const MAXIMUM_DOCUMENT_BYTES: usize = 8 * 1024 * 1024;

/// The most nodes that aliases may copy in one file, counted over every
/// alias (an alias of a list of ten scalars copies eleven nodes).
pub const MAXIMUM_ALIASED_NODES: usize = 100_000;

/// The deepest nesting of lists and mappings. A configuration needs about
/// eight levels; deeper trees only cost stack when they are walked.
pub const MAXIMUM_NESTING: usize = 128;

/// A YAML value with its place in the source.
#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    pub value: Value,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// A scalar; `quoted` is true for single- or double-quoted ones (so
    /// `"true"` stays a string and `"null"` is not null).
    Scalar {
        text: String,
        quoted: bool,
    },
    Sequence(Vec<Node>),
    /// Keys in file order.
    Mapping(Vec<(Node, Node)>),
}

impl Node {
    /// True for `~`, `null`, `Null`, `NULL` and an empty plain value.
    pub fn is_null(&self) -> bool {
        matches!(&self.value, Value::Scalar { text, quoted: false }
            if matches!(text.as_str(), "" | "~" | "null" | "Null" | "NULL"))
    }

    /// What kind of value this is, for error messages.
    pub fn kind_name(&self) -> &'static str {
        match &self.value {
            _ if self.is_null() => "null",
            Value::Scalar { .. } => "a scalar",
            Value::Sequence(_) => "a list",
            Value::Mapping(_) => "a mapping",
        }
    }
}

/// Parses `text` into its first document's root node. Problems other than a
/// syntax error (duplicate keys, extra documents) are returned beside the
/// tree, so the caller can report them together with its own.
pub fn parse(text: &str) -> Result<(Node, Vec<Problem>), Problem> {
    check_size(text)?;
    check_characters(text)?;
    let positions = Positions::new(text);
    let mut builder = TreeBuilder {
        text,
        positions: &positions,
        stack: Vec::new(),
        anchors: HashMap::new(),
        aliased_nodes: 0,
        refused: None,
        root: None,
        documents: 0,
        extra_document: None,
        problems: Vec::new(),
    };
    let mut parser = Parser::new_from_str(text);
    let loaded = parser.load(&mut builder, true);
    if let Some(refusal) = builder.refused {
        return Err(refusal);
    }
    if let Err(error) = loaded {
        let offset = positions.byte_offset(error.marker().index());
        return Err(Problem::error(
            format!("YAML syntax error: {}", error.info()),
            Span::new(offset, 0),
            "here",
        )
        .with_help("check the indentation and quoting around this place"));
    }
    let mut problems = builder.problems;
    if let Some(span) = builder.extra_document {
        problems.push(
            Problem::error(
                "a configuration file holds one YAML document",
                span,
                "a second document starts here",
            )
            .with_help("put each configuration in its own file"),
        );
    }
    match builder.root {
        Some(root) => Ok((root, problems)),
        None => Err(Problem::error(
            "the file is empty",
            Span::new(0, 0),
            "no YAML document here",
        )
        .with_help(
            "a configuration starts with `kind: ImageSetConfiguration` and `apiVersion: mirror.openshift.io/v2alpha1`",
        )),
    }
}

/// Refuses a text above [`MAXIMUM_DOCUMENT_BYTES`], before any parsing.
fn check_size(text: &str) -> Result<(), Problem> {
    if text.len() <= MAXIMUM_DOCUMENT_BYTES {
        return Ok(());
    }
    let mut limit = MAXIMUM_DOCUMENT_BYTES;
    while !text.is_char_boundary(limit) {
        limit -= 1;
    }
    Err(Problem::error(
        format!(
            "the file is {} bytes, more than a configuration may be ({MAXIMUM_DOCUMENT_BYTES} bytes)",
            text.len()
        ),
        Span::new(limit, 0),
        "the limit is reached here",
    )
    .with_help("an ImageSetConfiguration is a few KiB; check that this is the file you meant"))
}

/// Whether YAML forbids `character` in a file: control characters other
/// than tab, line feed, carriage return and next line (YAML 1.2, "printable
/// characters"). yaml-rust2 takes a NUL byte as the end of the input, so
/// without this check everything after one would be silently ignored.
fn is_forbidden_control(character: char) -> bool {
    character.is_control() && !matches!(character, '\t' | '\n' | '\r' | '\u{85}')
}

/// Refuses a text holding a control character, pointing at the first one.
fn check_characters(text: &str) -> Result<(), Problem> {
    let mut forbidden = text
        .char_indices()
        .filter(|(_, character)| is_forbidden_control(*character));
    let Some((offset, character)) = forbidden.next() else {
        return Ok(());
    };
    let more = forbidden.count();
    let name = match character {
        '\0' => "a NUL byte (U+0000)".to_owned(),
        other => format!("the control character U+{:04X}", u32::from(other)),
    };
    let elsewhere = match more {
        0 => String::new(),
        1 => " (and 1 more control character later in the file)".to_owned(),
        count => format!(" (and {count} more control characters later in the file)"),
    };
    Err(Problem::error(
        format!("the file holds {name}{elsewhere}"),
        Span::new(offset, character.len_utf8()),
        "control character",
    )
    .with_help(
        "a configuration is text: remove the character (the file may be binary, truncated or corrupted)",
    ))
}

/// Converts the parser's character indexes to byte offsets.
struct Positions {
    /// Byte offset of each character, only for non-ASCII text.
    character_offsets: Option<Vec<usize>>,
    length: usize,
}

impl Positions {
    fn new(text: &str) -> Self {
        let character_offsets =
            (!text.is_ascii()).then(|| text.char_indices().map(|(offset, _)| offset).collect());
        Positions {
            character_offsets,
            length: text.len(),
        }
    }

    fn byte_offset(&self, character_index: usize) -> usize {
        match &self.character_offsets {
            None => character_index.min(self.length),
            Some(offsets) => offsets.get(character_index).copied().unwrap_or(self.length),
        }
    }
}

enum Open {
    Sequence {
        start: usize,
        anchor: usize,
        items: Vec<Node>,
    },
    Mapping {
        start: usize,
        anchor: usize,
        entries: Vec<(Node, Node)>,
        pending_key: Option<Node>,
    },
}

struct TreeBuilder<'a> {
    text: &'a str,
    positions: &'a Positions,
    stack: Vec<Open>,
    /// Each anchored node, with its number of nodes.
    anchors: HashMap<usize, (Node, usize)>,
    /// Nodes copied by aliases so far.
    aliased_nodes: usize,
    /// Why the file was refused while it was being read (an alias that
    /// copies too much, too deep a nesting); later events are ignored.
    refused: Option<Problem>,
    root: Option<Node>,
    documents: usize,
    extra_document: Option<Span>,
    problems: Vec<Problem>,
}

impl TreeBuilder<'_> {
    fn scalar_span(&self, start: usize, text: &str, style: TScalarStyle) -> Span {
        let rest = &self.text[start..];
        let line_end = rest.find('\n').unwrap_or(rest.len());
        let length = match style {
            TScalarStyle::Plain => text.len(),
            TScalarStyle::SingleQuoted | TScalarStyle::DoubleQuoted => {
                // Find the closing quote on the same line; escapes make the
                // value's length an unreliable guide.
                let quote = if matches!(style, TScalarStyle::SingleQuoted) {
                    '\''
                } else {
                    '"'
                };
                rest[1..line_end]
                    .rfind(quote)
                    .map_or(line_end, |closing| closing + 2)
            }
            TScalarStyle::Literal | TScalarStyle::Folded => line_end,
        };
        Span::new(start, length.min(line_end))
    }

    fn finish(&mut self, node: Node, anchor: usize) {
        if anchor != 0 {
            let count = node_count(&node);
            self.anchors.insert(anchor, (node.clone(), count));
        }
        match self.stack.last_mut() {
            Some(Open::Sequence { items, .. }) => items.push(node),
            Some(Open::Mapping {
                entries,
                pending_key,
                ..
            }) => match pending_key.take() {
                None => *pending_key = Some(node),
                Some(key) => entries.push((key, node)),
            },
            None => {
                if self.root.is_none() {
                    self.root = Some(node);
                }
            }
        }
    }

    fn check_duplicate_keys(&mut self, entries: &[(Node, Node)]) {
        let mut seen: HashMap<&str, &Node> = HashMap::new();
        for (key, _) in entries {
            if let Value::Scalar { text, .. } = &key.value {
                if let Some(first) = seen.get(text.as_str()) {
                    let line = line_of(self.text, first.span.offset);
                    self.problems.push(
                        Problem::error(
                            format!("duplicate key `{text}`"),
                            key.span,
                            "this key is already set",
                        )
                        .with_help(format!(
                            "`{text}` is first set on line {line}; keep one of them"
                        )),
                    );
                } else {
                    seen.insert(text, key);
                }
            }
        }
    }
}

/// The number of nodes in a tree: itself and everything below it.
fn node_count(node: &Node) -> usize {
    1 + match &node.value {
        Value::Scalar { .. } => 0,
        Value::Sequence(items) => items.iter().map(node_count).sum(),
        Value::Mapping(entries) => entries
            .iter()
            .map(|(key, value)| node_count(key) + node_count(value))
            .sum(),
    }
}

/// The span of an alias (`*name`) starting at `start`.
fn alias_span(text: &str, start: usize) -> Span {
    let rest = &text[start.min(text.len())..];
    let length = rest
        .char_indices()
        .skip(1)
        .find(|(_, character)| character.is_whitespace() || ",[]{}".contains(*character))
        .map_or(rest.len(), |(offset, _)| offset);
    Span::new(start, length.max(1))
}

/// 1-based line number of a byte offset.
pub fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

impl MarkedEventReceiver for TreeBuilder<'_> {
    fn on_event(&mut self, event: Event, mark: Marker) {
        if self.refused.is_some() {
            return;
        }
        let start = self.positions.byte_offset(mark.index());
        if matches!(event, Event::SequenceStart(..) | Event::MappingStart(..))
            && self.documents <= 1
            && self.stack.len() >= MAXIMUM_NESTING
        {
            self.refused = Some(
                Problem::error(
                    format!("lists and mappings nest more than {MAXIMUM_NESTING} levels deep"),
                    Span::new(start, 1),
                    "too deep",
                )
                .with_help(
                    "a configuration nests about eight levels; check the brackets and indentation",
                ),
            );
            return;
        }
        match event {
            Event::DocumentStart => {
                self.documents += 1;
                if self.documents == 2 && self.extra_document.is_none() {
                    self.extra_document = Some(Span::new(start, 3));
                }
            }
            Event::Scalar(text, style, anchor, _tag) => {
                if self.documents > 1 {
                    return;
                }
                let span = self.scalar_span(start, &text, style);
                let quoted = matches!(
                    style,
                    TScalarStyle::SingleQuoted | TScalarStyle::DoubleQuoted
                );
                self.finish(
                    Node {
                        value: Value::Scalar { text, quoted },
                        span,
                    },
                    anchor,
                );
            }
            Event::Alias(anchor) => {
                if self.documents > 1 {
                    return;
                }
                let span = alias_span(self.text, start);
                let node = match self.anchors.get(&anchor) {
                    Some((_, count)) if self.aliased_nodes + count > MAXIMUM_ALIASED_NODES => {
                        let name = &self.text[span.range()];
                        self.refused = Some(
                            Problem::error(
                                format!(
                                    "aliases expand too far: with `{name}` ({count} values) they would copy {} values, more than the {MAXIMUM_ALIASED_NODES} a configuration may",
                                    self.aliased_nodes + count
                                ),
                                span,
                                "expands too far",
                            )
                            .with_help(
                                "aliases that repeat other aliases grow exponentially (a \"billion laughs\" file); write the values out, or alias smaller parts",
                            ),
                        );
                        return;
                    }
                    Some((target, count)) => {
                        self.aliased_nodes += count;
                        Node {
                            value: target.value.clone(),
                            span,
                        }
                    }
                    None => Node {
                        value: Value::Scalar {
                            text: String::new(),
                            quoted: false,
                        },
                        span,
                    },
                };
                self.finish(node, 0);
            }
            Event::SequenceStart(anchor, _) => {
                if self.documents <= 1 {
                    self.stack.push(Open::Sequence {
                        start,
                        anchor,
                        items: Vec::new(),
                    });
                }
            }
            Event::MappingStart(anchor, _) => {
                if self.documents <= 1 {
                    self.stack.push(Open::Mapping {
                        start,
                        anchor,
                        entries: Vec::new(),
                        pending_key: None,
                    });
                }
            }
            Event::SequenceEnd => {
                if self.documents > 1 {
                    return;
                }
                if let Some(Open::Sequence {
                    start,
                    anchor,
                    items,
                }) = self.stack.pop()
                {
                    let node = Node {
                        value: Value::Sequence(items),
                        span: Span::new(start, 1),
                    };
                    self.finish(node, anchor);
                }
            }
            Event::MappingEnd => {
                if self.documents > 1 {
                    return;
                }
                if let Some(Open::Mapping {
                    start,
                    anchor,
                    entries,
                    ..
                }) = self.stack.pop()
                {
                    self.check_duplicate_keys(&entries);
                    let node = Node {
                        value: Value::Mapping(entries),
                        span: Span::new(start, 1),
                    };
                    self.finish(node, anchor);
                }
            }
            Event::Nothing | Event::StreamStart | Event::StreamEnd | Event::DocumentEnd => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mapping(node: &Node) -> &[(Node, Node)] {
        match &node.value {
            Value::Mapping(entries) => entries,
            other => panic!("expected a mapping, got {other:?}"),
        }
    }

    #[test]
    fn spans_point_at_keys_and_values() {
        let text =
            "kind: ImageSetConfiguration\nmirror:\n  additionalImages:\n  - name: quay.io/a/b:1\n";
        let (root, problems) = parse(text).unwrap();
        assert!(problems.is_empty());
        let entries = mapping(&root);
        let (key, value) = &entries[0];
        assert_eq!(&text[key.span.range()], "kind");
        assert_eq!(&text[value.span.range()], "ImageSetConfiguration");
    }

    #[test]
    fn spans_are_bytes_for_non_ascii_text() {
        let text = "# Überblick — ändern\nkind: \"Größe\"\n";
        let (root, _) = parse(text).unwrap();
        let (key, value) = &mapping(&root)[0];
        assert_eq!(&text[key.span.range()], "kind");
        assert_eq!(&text[value.span.range()], "\"Größe\"");
    }

    #[test]
    fn duplicate_keys_are_problems() {
        let text = "kind: a\nmirror: {}\nmirror: {}\n";
        let (_, problems) = parse(text).unwrap();
        assert_eq!(problems.len(), 1);
        assert!(problems[0].message.contains("duplicate key `mirror`"));
        assert_eq!(&text[problems[0].span.range()], "mirror");
        assert_eq!(line_of(text, problems[0].span.offset), 3);
    }

    #[test]
    fn syntax_errors_have_a_position() {
        let error = parse("kind: [unclosed\n").unwrap_err();
        assert!(error.message.starts_with("YAML syntax error"));
    }

    #[test]
    fn second_documents_are_problems() {
        let (_, problems) = parse("kind: a\n---\nkind: b\n").unwrap();
        assert_eq!(problems.len(), 1);
        assert!(problems[0].message.contains("one YAML document"));
    }

    #[test]
    fn quoted_scalars_are_marked() {
        let (root, _) = parse("a: \"true\"\nb: true\n").unwrap();
        let entries = mapping(&root);
        assert!(matches!(
            &entries[0].1.value,
            Value::Scalar { quoted: true, .. }
        ));
        assert!(matches!(
            &entries[1].1.value,
            Value::Scalar { quoted: false, .. }
        ));
    }

    /// The nine-level "billion laughs" file of issue 14 (471 bytes): every
    /// level is a list of nine aliases of the level before.
    fn alias_bomb() -> String {
        let mut text = String::from("a: &a [x,x,x,x,x,x,x,x,x]\n");
        let names = ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i'];
        for pair in names.windows(2) {
            let aliases = vec![format!("*{}", pair[0]); 9].join(",");
            text.push_str(&format!("{}: &{} [{aliases}]\n", pair[1], pair[1]));
        }
        text
    }

    #[test]
    fn an_alias_bomb_is_refused_at_its_alias_without_expanding() {
        let text = alias_bomb();
        let started = std::time::Instant::now();
        let error = parse(&text).unwrap_err();
        assert!(
            started.elapsed() < std::time::Duration::from_secs(2),
            "took {:?}",
            started.elapsed()
        );
        assert!(error.message.contains("alias"), "{}", error.message);
        // An alias of level a copies 10 nodes, of b 91, c 820, d 7381, e
        // 66430: levels b to e copy 74718 in all, and the first alias of
        // level f (`*e`) would pass the budget.
        assert_eq!(&text[error.span.range()], "*e");
        assert_eq!(Some(error.span.offset), text.find("*e"));
        assert_eq!(line_of(&text, error.span.offset), 6);
    }

    #[test]
    fn ordinary_aliases_are_expanded() {
        let text = "base: &base [quay.io/a/b:1, quay.io/a/c:2]\nfirst: *base\nsecond: *base\n";
        let (root, problems) = parse(text).unwrap();
        assert!(problems.is_empty());
        let entries = mapping(&root);
        assert_eq!(entries[1].1.value, entries[0].1.value);
        assert_eq!(&text[entries[2].1.span.range()], "*base");
    }

    #[test]
    fn a_nul_byte_is_refused_with_its_position() {
        let text = "kind: ImageSetConfiguration\nmirror:\0\n  additionalImages: [x]\n";
        let error = parse(text).unwrap_err();
        assert!(error.message.contains("NUL"), "{}", error.message);
        assert_eq!(error.line_and_column(text), (2, 8));
        assert_eq!(error.span.length, 1);
    }

    #[test]
    fn control_characters_other_than_tab_and_line_ends_are_refused() {
        assert!(parse("a: 1\r\nb: \"x\ty\"\n").is_ok());
        let error = parse("a: 1\nb: x\u{1b}y\u{7}\n").unwrap_err();
        assert!(error.message.contains("U+001B"), "{}", error.message);
        assert!(error.message.contains("1 more"), "{}", error.message);
        assert_eq!(error.line_and_column("a: 1\nb: x\u{1b}y\u{7}\n"), (2, 5));
    }

    #[test]
    fn oversized_files_are_refused_before_parsing() {
        let text = format!("a: [{}]\n", "x,".repeat(MAXIMUM_DOCUMENT_BYTES / 2));
        let error = parse(&text).unwrap_err();
        assert!(error.message.contains("more than a configuration may be"));
        assert_eq!(error.span.offset, MAXIMUM_DOCUMENT_BYTES);
    }

    #[test]
    fn deep_nesting_is_refused() {
        let depth = MAXIMUM_NESTING + 10;
        let text = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
        let error = parse(&text).unwrap_err();
        assert!(error.message.contains("nest"), "{}", error.message);
        assert_eq!(error.span.offset, MAXIMUM_NESTING);
        let shallow = format!("{}{}", "[".repeat(20), "]".repeat(20));
        assert!(parse(&shallow).is_ok());
    }
}
