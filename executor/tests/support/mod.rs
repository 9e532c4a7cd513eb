//! What the executor's end-to-end tests share.

use std::path::Path;
use std::process::Command;

/// Whether skopeo copies `reference` (over plain HTTP) into the folder
/// `into` (`dir:` layout); skopeo checks every digest it copies. Its error
/// is shown when it fails.
pub fn skopeo_copies(reference: &str, into: &Path) -> bool {
    let output = Command::new("skopeo")
        .args(["copy", "--src-tls-verify=false"])
        .arg(format!("docker://{reference}"))
        .arg(format!("dir:{}", into.display()))
        .output()
        .unwrap();
    if !output.status.success() {
        eprintln!("{}", String::from_utf8_lossy(&output.stderr));
    }
    output.status.success()
}
