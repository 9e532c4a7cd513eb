//! Golden tests: outputs people read (diagnostics, plans, references lists)
//! compared with committed files.
