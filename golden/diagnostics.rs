//! The bad-configuration corpus: every `golden/diagnostics/*.yaml` is
//! rejected, and its rendered diagnostic equals the committed `.txt` beside it.

use ferry_schemas::{Severity, load_any_configuration, render};

use crate::support::{compare_or_bless, golden_path};

#[test]
fn every_bad_configuration_renders_its_golden_diagnostic() {
    let folder = golden_path("diagnostics");
    let mut cases: Vec<_> = std::fs::read_dir(&folder)
        .expect("golden/diagnostics exists")
        .map(|entry| entry.expect("readable entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "yaml"))
        .collect();
    cases.sort();
    assert!(
        cases.len() >= 30,
        "the corpus holds {} cases, want at least 30",
        cases.len()
    );

    let mut failures = Vec::new();
    for case in &cases {
        let text = std::fs::read_to_string(case).expect("readable case");
        let name = format!(
            "golden/diagnostics/{}",
            case.file_name().expect("file name").to_string_lossy()
        );
        let problems = match load_any_configuration(&text) {
            Ok(_) => {
                failures.push(format!(
                    "{name} was accepted; every case here must be rejected"
                ));
                continue;
            }
            Err(problems) => problems,
        };
        assert!(problems.iter().all(|p| p.severity == Severity::Error));
        let rendered = render(&name, &text, &problems);
        if let Some(mismatch) = compare_or_bless(&case.with_extension("txt"), &rendered) {
            failures.push(mismatch);
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn three_problems_give_three_snippets() {
    let path = golden_path("diagnostics/30-three-problems.yaml");
    let text = std::fs::read_to_string(&path).expect("case exists");
    let problems = load_any_configuration(&text).expect_err("rejected");
    assert_eq!(problems.len(), 3, "{problems:#?}");
    let rendered = render("30-three-problems.yaml", &text, &problems);
    assert_eq!(
        rendered.matches("╭─[30-three-problems.yaml:").count(),
        3,
        "{rendered}"
    );
}
