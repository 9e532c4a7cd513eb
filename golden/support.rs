//! Shared helpers of the golden tests: where the files are, and the
//! compare-or-bless step.

use std::path::{Path, PathBuf};

/// The workspace root (the root package's manifest folder).
pub fn workspace_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// `golden/<relative>`.
pub fn golden_path(relative: &str) -> PathBuf {
    workspace_root().join("golden").join(relative)
}

/// True when the committed files should be rewritten instead of compared.
pub fn blessing() -> bool {
    std::env::var_os("FERRY_BLESS").is_some()
}

/// Compares `actual` with the committed file at `path`, or rewrites the file
/// when blessing. Returns a description of the mismatch, if any.
pub fn compare_or_bless(path: &Path, actual: &str) -> Option<String> {
    if blessing() {
        std::fs::write(path, actual).expect("write golden file");
        return None;
    }
    let expected = std::fs::read_to_string(path).unwrap_or_default();
    if expected == actual {
        return None;
    }
    Some(format!(
        "{} differs from the current output:\n--- expected\n{expected}\n--- actual\n{actual}",
        path.display()
    ))
}
