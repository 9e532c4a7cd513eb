//! Every reference the standard test world publishes, with its digest:
//! `host/repo:tag digest` for each tag and `host/repo@digest` for each
//! manifest (children of indexes too), sorted, in
//! `golden/world/references.txt`. It changes whenever the world's content
//! does; bless and review the diff.

use crate::support::{blessing, compare_or_bless, golden_path};

#[test]
fn world_references_match_the_golden_list() {
    let lines = ferry_testworld::world::standard_reference_lines()
        .expect("the standard world publishes consistently");
    let mut actual = lines.join("\n");
    actual.push('\n');
    let path = golden_path("world/references.txt");
    if blessing() {
        std::fs::create_dir_all(path.parent().expect("golden/world")).expect("create golden/world");
    }
    if let Some(mismatch) = compare_or_bless(&path, &actual) {
        panic!("{mismatch}\n(run with FERRY_BLESS=1 to accept the new list)");
    }
}
