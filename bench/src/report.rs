//! What the benchmarks print: aligned tables and one `goals:` line per goal,
//! saying `met` or `goal missed` (a missed goal is printed like any other,
//! never left out).

use std::fmt::Write as _;

/// A table: the first column left-aligned, the others right-aligned.
pub fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers
        .iter()
        .map(|header| header.chars().count())
        .collect();
    for row in rows {
        for (column, cell) in row.iter().enumerate() {
            if column < widths.len() {
                widths[column] = widths[column].max(cell.chars().count());
            } else {
                widths.push(cell.chars().count());
            }
        }
    }
    let mut text = String::new();
    let header_row: Vec<String> = headers.iter().map(|header| (*header).to_owned()).collect();
    for row in std::iter::once(&header_row).chain(rows) {
        let mut line = String::new();
        for (column, cell) in row.iter().enumerate() {
            let width = widths[column];
            if column == 0 {
                let _ = write!(line, "{cell:<width$}");
            } else {
                let _ = write!(line, "  {cell:>width$}");
            }
        }
        text.push_str(line.trim_end());
        text.push('\n');
    }
    text
}

/// One goal and whether the run met it.
#[derive(Clone, Debug, PartialEq)]
pub struct Goal {
    pub description: String,
    /// What was measured, e.g. `4.2x`.
    pub measured: String,
    pub met: bool,
}

impl Goal {
    pub fn new(description: impl Into<String>, measured: impl Into<String>, met: bool) -> Goal {
        Goal {
            description: description.into(),
            measured: measured.into(),
            met,
        }
    }

    /// `goals: <description> (measured <what>): met | goal missed`.
    pub fn line(&self) -> String {
        format!(
            "goals: {} (measured {}): {}",
            self.description,
            self.measured,
            if self.met { "met" } else { "goal missed" }
        )
    }
}

/// Seconds with two decimals.
pub fn seconds(value: f64) -> String {
    format!("{value:.2}")
}

/// `a / b` as `N.NNx` (how many times `a` is `b`).
pub fn times(numerator: f64, denominator: f64) -> String {
    if denominator > 0.0 {
        format!("{:.2}x", numerator / denominator)
    } else {
        "n/a".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align_their_columns() {
        let text = table(
            &["tool", "seconds"],
            &[
                vec!["ferry".to_owned(), "1.50".to_owned()],
                vec!["skopeo sync".to_owned(), "12.25".to_owned()],
            ],
        );
        assert_eq!(
            text,
            "tool         seconds\nferry           1.50\nskopeo sync    12.25\n"
        );
    }

    #[test]
    fn goal_lines_say_met_or_missed() {
        assert_eq!(
            Goal::new("at least 3x faster", "4.00x", true).line(),
            "goals: at least 3x faster (measured 4.00x): met"
        );
        assert_eq!(
            Goal::new("under 1 s", "2.10 s", false).line(),
            "goals: under 1 s (measured 2.10 s): goal missed"
        );
        assert_eq!(times(3.0, 0.0), "n/a");
        assert_eq!(times(10.0, 4.0), "2.50x");
    }
}
