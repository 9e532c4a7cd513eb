//! Messages a user acts on (issue 13, "Messages"), from the ferry binary:
//! a missing `--authfile` is refused before anything is done.

/// `--authfile` naming a missing file stops the run before it does
/// anything: reading it as empty would pull anonymously and fail later
/// with an authentication error that hides the typo.
#[test]
fn a_missing_authfile_is_an_error_naming_it() {
    let folder = tempfile::tempdir().expect("temporary folder");
    let config = folder.path().join("isc.yaml");
    std::fs::write(
        &config,
        "kind: ImageSetConfiguration\napiVersion: mirror.openshift.io/v2alpha1\nmirror:\n  additionalImages:\n  - name: 127.0.0.1:1/team/app:1.0\n",
    )
    .expect("write the configuration");
    let missing = folder.path().join("auth-typo.json");
    for command in ["plan", "mirror"] {
        let workspace = folder.path().join(format!("workspace-{command}"));
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_ferry"))
            .arg(command)
            .arg("-c")
            .arg(&config)
            .arg("--authfile")
            .arg(&missing)
            .arg("--workspace")
            .arg(format!("file://{}", workspace.display()))
            .arg("--dest-tls-verify=false")
            .arg("docker://127.0.0.1:1/mirror")
            .output()
            .expect("ferry runs");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{command}: {stderr}");
        assert!(
            stderr.contains(&format!(
                "the auth file {} named by --authfile does not exist",
                missing.display()
            )),
            "{command}: {stderr}"
        );
        assert!(!workspace.exists(), "{command}: the run went on: {stderr}");
    }
}

/// `$REGISTRY_AUTH_FILE` naming a missing file is read as empty, as
/// containers/image reads every auth file it does not find (the test
/// harness relies on it to keep the user's credentials out): the run gets
/// past the credentials and fails on the unreachable destination instead.
#[test]
fn a_missing_registry_auth_file_variable_is_read_as_empty() {
    let folder = tempfile::tempdir().expect("temporary folder");
    let config = folder.path().join("isc.yaml");
    std::fs::write(
        &config,
        "kind: ImageSetConfiguration\napiVersion: mirror.openshift.io/v2alpha1\nmirror:\n  additionalImages:\n  - name: 127.0.0.1:1/team/app:1.0\n",
    )
    .expect("write the configuration");
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_ferry"))
        .arg("plan")
        .arg("-c")
        .arg(&config)
        .arg("--workspace")
        .arg(format!(
            "file://{}",
            folder.path().join("workspace").display()
        ))
        .arg("--dest-tls-verify=false")
        .arg("--src-tls-verify=false")
        .arg("--retry-times=0")
        .arg("docker://127.0.0.1:1/mirror")
        .env("REGISTRY_AUTH_FILE", folder.path().join("absent.json"))
        .output()
        .expect("ferry runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("auth file"), "{stderr}");
    assert!(!output.status.success(), "{stderr}");
}
