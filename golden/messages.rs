//! Messages a user acts on (issue 13, "Messages"), from the ferry binary:
//! a missing `--authfile` is refused before anything is done; a blob
//! missing at the source is reported against the source; a plain-HTTP
//! destination names `--dest-tls-verify=false`.

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

/// Mirror-to-mirror where the source has the manifest but answers 404 for
/// its blobs: the failure is reported against the source (its host and
/// repository), not against the destination the blob was going to.
#[test]
fn a_blob_missing_at_the_source_is_reported_against_the_source() {
    use ferry_testworld::proxy::{ErrorAnswer, FaultProxy, Faults};
    use ferry_testworld::registry::{Flavour, Registry, Storage};
    use ferry_testworld::world::World;

    let world = World::start().unwrap();
    let source = FaultProxy::start(world.registry().address()).unwrap();
    let destination = Registry::start(Flavour::PlainHttp, Storage::Empty).unwrap();
    let folder = tempfile::tempdir().unwrap();
    let config = folder.path().join("isc.yaml");
    std::fs::write(
        &config,
        format!(
            "kind: ImageSetConfiguration\napiVersion: mirror.openshift.io/v2alpha1\nmirror:\n  additionalImages:\n  - name: {}/quay.io/ferry-demo/hello:1.0\n",
            source.host()
        ),
    )
    .unwrap();
    std::fs::write(folder.path().join("registries.conf"), "").unwrap();
    source.arm(Faults {
        errors: vec![ErrorAnswer {
            method: "GET".to_owned(),
            path_contains: "/blobs/sha256:".to_owned(),
            status: 404,
            retry_after: None,
            times: 1000,
        }],
        ..Faults::default()
    });
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_ferry"))
        .arg("mirror")
        .arg("-c")
        .arg(&config)
        .arg("--workspace")
        .arg(format!("file://{}", folder.path().join("ws").display()))
        .arg("--registries-conf")
        .arg(folder.path().join("registries.conf"))
        .arg("--src-tls-verify=false")
        .arg("--dest-tls-verify=false")
        .arg("--retry-delay=10ms")
        .arg(format!("docker://{}/mirror", destination.host()))
        .env("REGISTRY_AUTH_FILE", folder.path().join("no-auth.json"))
        .output()
        .expect("ferry runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let all = format!("{stdout}{stderr}");
    assert_eq!(output.status.code(), Some(8), "{all}");
    let source_blob = format!("{}/quay.io/ferry-demo/hello@sha256:", source.host());
    assert!(
        all.contains(&source_blob) && all.contains("not found (HTTP 404)"),
        "{all}"
    );
    assert!(
        !all.contains(&format!(
            "{}/mirror/quay.io/ferry-demo/hello@sha256:",
            destination.host()
        )),
        "a source failure named the destination: {all}"
    );
    let logs = folder.path().join("ws/working-dir/logs");
    let errors: String = std::fs::read_dir(&logs)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.display().to_string().contains("mirroring_errors"))
        .map(|path| std::fs::read_to_string(path).unwrap())
        .collect();
    assert!(errors.contains(&source_blob), "{errors}");
    // The run log names the failed image and its error.
    let run_log: String = std::fs::read_dir(&logs)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.display().to_string().contains("/ferry-"))
        .map(|path| std::fs::read_to_string(path).unwrap())
        .collect();
    assert!(
        run_log.lines().any(|line| line.contains("image failed")
            && line.contains(&format!(
                "image={}/quay.io/ferry-demo/hello:1.0",
                source.host()
            ))
            && line.contains("not found (HTTP 404)")),
        "{run_log}"
    );
}

/// A destination that speaks plain HTTP, without `--dest-tls-verify=false`:
/// the run stops before pushing anything, says the registry answered plain
/// HTTP, and names the destination's flag.
#[test]
fn a_plain_http_destination_names_the_dest_tls_verify_flag() {
    use ferry_testworld::registry::{Flavour, Registry, Storage};
    use ferry_testworld::world::World;

    let world = World::start().unwrap();
    let destination = Registry::start(Flavour::PlainHttp, Storage::Empty).unwrap();
    let folder = tempfile::tempdir().unwrap();
    let config = folder.path().join("isc.yaml");
    std::fs::write(
        &config,
        format!(
            "kind: ImageSetConfiguration\napiVersion: mirror.openshift.io/v2alpha1\nmirror:\n  additionalImages:\n  - name: {}/quay.io/ferry-demo/hello:1.0\n",
            world.registry().host()
        ),
    )
    .unwrap();
    std::fs::write(folder.path().join("registries.conf"), "").unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_ferry"))
        .arg("mirror")
        .arg("-c")
        .arg(&config)
        .arg("--workspace")
        .arg(format!("file://{}", folder.path().join("ws").display()))
        .arg("--registries-conf")
        .arg(folder.path().join("registries.conf"))
        .arg("--src-tls-verify=false")
        .arg("--retry-times=1")
        .arg("--retry-delay=10ms")
        .arg(format!("docker://{}/mirror", destination.host()))
        .env("REGISTRY_AUTH_FILE", folder.path().join("no-auth.json"))
        .output()
        .expect("ferry runs");
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(output.status.code(), Some(1), "{all}");
    assert!(
        all.contains("the registry answered plain HTTP to an HTTPS request"),
        "{all}"
    );
    assert!(all.contains("use --dest-tls-verify=false,"), "{all}");
    assert!(all.contains(&destination.host()), "{all}");
}
