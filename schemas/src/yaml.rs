//! YAML text to a tree of nodes that remember where they came from.
//!
//! serde_yaml reports positions only for syntax errors, but ferry points every
//! problem (an unknown key, a duplicate package, `minVersion` above
//! `maxVersion`) at its own place in the file. So the text is parsed with
//! yaml-rust2's event parser, whose events carry markers, into [`Node`]s with
//! byte spans. Duplicate keys are found here, because a map type would lose
//! them. Only the first document of a stream is read; a second one is an
//! error, since oc-mirror reads exactly one configuration per file.

use std::collections::HashMap;

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};

use crate::diagnostic::{Problem, Span};

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
    let positions = Positions::new(text);
    let mut builder = TreeBuilder {
        text,
        positions: &positions,
        stack: Vec::new(),
        anchors: HashMap::new(),
        root: None,
        documents: 0,
        extra_document: None,
        problems: Vec::new(),
    };
    let mut parser = Parser::new_from_str(text);
    if let Err(error) = parser.load(&mut builder, true) {
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
    anchors: HashMap<usize, Node>,
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
            self.anchors.insert(anchor, node.clone());
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

/// 1-based line number of a byte offset.
pub fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

impl MarkedEventReceiver for TreeBuilder<'_> {
    fn on_event(&mut self, event: Event, mark: Marker) {
        let start = self.positions.byte_offset(mark.index());
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
                let node = match self.anchors.get(&anchor) {
                    Some(target) => Node {
                        value: target.value.clone(),
                        span: Span::new(start, 1),
                    },
                    None => Node {
                        value: Value::Scalar {
                            text: String::new(),
                            quoted: false,
                        },
                        span: Span::new(start, 1),
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
}
