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

/// Peak resident memory of this process (Linux `VmHWM`), in KiB. nextest
/// runs each test in a process of its own, so the peak is this test's.
fn peak_resident_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
}

#[test]
fn the_alias_bomb_is_refused_fast_without_growing_memory() {
    let path = golden_path("diagnostics/39-alias-bomb.yaml");
    let text = std::fs::read_to_string(&path).expect("case exists");
    let before = peak_resident_kib().expect("Linux /proc/self/status");
    let started = std::time::Instant::now();
    let problems = load_any_configuration(&text).expect_err("rejected");
    let elapsed = started.elapsed();
    let grown = peak_resident_kib().expect("Linux /proc/self/status") - before;
    assert_eq!(problems.len(), 1, "{problems:#?}");
    assert!(problems[0].message.contains("alias"), "{problems:#?}");
    assert!(
        elapsed < std::time::Duration::from_secs(2),
        "took {elapsed:?}"
    );
    // Expanded, the file is 9^9 (387 million) scalars: tens of GiB.
    assert!(grown < 64 * 1024, "peak memory grew by {grown} KiB");
}

#[test]
fn text_after_a_nul_byte_is_not_ignored() {
    let path = golden_path("diagnostics/40-nul-byte.yaml");
    let text = std::fs::read_to_string(&path).expect("case exists");
    let problems = load_any_configuration(&text).expect_err("rejected");
    assert_eq!(problems.len(), 1, "{problems:#?}");
    assert!(problems[0].message.contains("NUL"), "{problems:#?}");
    assert_eq!(problems[0].line_and_column(&text), (5, 45));
}

/// `--registries-conf` naming a missing file stops the run before it does
/// anything (issue 14, defect 5): ignoring it would pull from the public
/// hosts the file was meant to redirect away from.
#[test]
fn a_missing_registries_conf_named_on_the_command_line_is_an_error() {
    let folder = tempfile::tempdir().expect("temporary folder");
    let config = folder.path().join("isc.yaml");
    std::fs::write(
        &config,
        "kind: ImageSetConfiguration\napiVersion: mirror.openshift.io/v2alpha1\nmirror:\n  additionalImages:\n  - name: 127.0.0.1:1/team/app:1.0\n",
    )
    .expect("write the configuration");
    let missing = folder.path().join("enclave-registries.conf");
    let workspace = folder.path().join("workspace");
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_ferry"))
        .arg("plan")
        .arg("-c")
        .arg(&config)
        .arg("--registries-conf")
        .arg(&missing)
        .arg("--workspace")
        .arg(format!("file://{}", workspace.display()))
        .arg("--dest-tls-verify=false")
        .arg("docker://127.0.0.1:1/mirror")
        .output()
        .expect("ferry runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&missing.display().to_string()) && stderr.contains("does not exist"),
        "{stderr}"
    );
    assert!(!workspace.exists(), "the run went on: {stderr}");
}

/// An endless configuration (`/dev/zero`) is refused after 8 MiB instead of
/// being read until memory runs out.
#[test]
fn an_endless_configuration_file_is_refused_without_reading_it_whole() {
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(["validate", "-c", "/dev/zero"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("ferry runs");
    let started = std::time::Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("waiting for ferry") {
            break status;
        }
        if started.elapsed() > std::time::Duration::from_secs(30) {
            // Our own child, by its handle.
            let _ = child.kill();
            let _ = child.wait();
            panic!("ferry validate -c /dev/zero still ran after 30 s");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().expect("piped"), &mut stderr)
        .expect("stderr");
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("/dev/zero") && stderr.contains("larger than 8 MiB"),
        "{stderr}"
    );
}
