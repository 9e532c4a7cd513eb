//! Problems found in a configuration file, and how they are shown.
//!
//! A [`Problem`] is plain data: a message, a byte span, a label for the span
//! and a help line. [`render`] turns a file's problems into text with miette's
//! graphical handler: file, line and column, a snippet with the span
//! underlined and labelled, and the help line. The theme and width are fixed
//! (no colour, ASCII-safe unicode off only when asked) so the golden files in
//! `golden/diagnostics/` are stable across terminals.

use std::fmt;
use std::ops::Range;

use miette::{GraphicalReportHandler, GraphicalTheme, LabeledSpan, NamedSource, SourceSpan};

/// A byte range in the source text.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Span {
    pub offset: usize,
    pub length: usize,
}

impl Span {
    pub fn new(offset: usize, length: usize) -> Self {
        Span { offset, length }
    }

    pub fn range(&self) -> Range<usize> {
        self.offset..self.offset + self.length
    }
}

/// How bad a problem is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    /// The configuration is valid, but something in it deserves attention
    /// (for example a field ferry does not act on yet).
    Warning,
    /// The configuration is rejected.
    Error,
}

/// One problem at one place in a configuration file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    pub severity: Severity,
    pub message: String,
    pub span: Span,
    pub label: String,
    pub help: Option<String>,
}

impl Problem {
    pub fn error(message: impl Into<String>, span: Span, label: impl Into<String>) -> Self {
        Problem {
            severity: Severity::Error,
            message: message.into(),
            span,
            label: label.into(),
            help: None,
        }
    }

    pub fn warning(message: impl Into<String>, span: Span, label: impl Into<String>) -> Self {
        Problem {
            severity: Severity::Warning,
            ..Problem::error(message, span, label)
        }
    }

    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    /// 1-based line and column (in characters) of the problem in `text`.
    pub fn line_and_column(&self, text: &str) -> (usize, usize) {
        let before = &text[..self.span.offset.min(text.len())];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |newline| newline + 1);
        let column = before[line_start..].chars().count() + 1;
        (line, column)
    }
}

/// A problem bound to its source, in the shape miette renders.
struct Rendered<'a> {
    problem: &'a Problem,
    source: &'a NamedSource<String>,
}

impl fmt::Debug for Rendered<'_> {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.problem.message)
    }
}

impl fmt::Display for Rendered<'_> {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.problem.message)
    }
}

impl std::error::Error for Rendered<'_> {}

impl miette::Diagnostic for Rendered<'_> {
    fn severity(&self) -> Option<miette::Severity> {
        Some(match self.problem.severity {
            Severity::Warning => miette::Severity::Warning,
            Severity::Error => miette::Severity::Error,
        })
    }

    fn help<'b>(&'b self) -> Option<Box<dyn fmt::Display + 'b>> {
        self.problem
            .help
            .as_ref()
            .map(|help| Box::new(help) as Box<dyn fmt::Display>)
    }

    fn source_code(&self) -> Option<&dyn miette::SourceCode> {
        Some(self.source)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        let span = SourceSpan::new(self.problem.span.offset.into(), self.problem.span.length);
        Some(Box::new(std::iter::once(LabeledSpan::new_with_span(
            Some(self.problem.label.clone()),
            span,
        ))))
    }
}

/// Renders every problem of one file, in order, each with its snippet.
/// `file_name` is shown as given (pass a relative path for stable output).
pub fn render(file_name: &str, text: &str, problems: &[Problem]) -> String {
    let source = NamedSource::new(file_name, text.to_owned()).with_language("yaml");
    let handler = GraphicalReportHandler::new_themed(GraphicalTheme::unicode_nocolor())
        .with_width(100)
        .with_links(false);
    let mut output = String::new();
    for problem in problems {
        let rendered = Rendered {
            problem,
            source: &source,
        };
        if handler.render_report(&mut output, &rendered).is_err() {
            // Rendering into a String cannot fail for I/O reasons; keep a
            // plain line so the problem is never lost.
            let (line, column) = problem.line_and_column(text);
            output.push_str(&format!(
                "{file_name}:{line}:{column}: {}\n",
                problem.message
            ));
        }
    }
    output
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_file_line_column_label_and_help() {
        let text = "kind: ImageSetConfiguration\nmirrors: {}\n";
        let problem = Problem::error("unknown field `mirrors`", Span::new(28, 7), "not a field")
            .with_help("did you mean `mirror`?");
        let output = render("isc.yaml", text, &[problem]);
        assert!(output.contains("unknown field `mirrors`"), "{output}");
        assert!(output.contains("isc.yaml:2:1"), "{output}");
        assert!(output.contains("not a field"), "{output}");
        assert!(output.contains("did you mean `mirror`?"), "{output}");
    }

    #[test]
    fn columns_count_characters() {
        let text = "a: \"é\"\nbb: x\n";
        let problem = Problem::error("x", Span::new(text.find("x").unwrap(), 1), "x");
        assert_eq!(problem.line_and_column(text), (2, 5));
    }
}
