//! The refresh step after a mirror: the default plan asks each source one
//! HEAD per tag and reads no manifest whose tree is recorded (a
//! digest-pinned image asks nothing), finds a moved tag, and
//! `--trust-state` plans from the state alone, with every source stopped.

use std::path::Path;
use std::process::{Command, Output};

use ferry_testworld::proxy::FaultProxy;
use ferry_testworld::registry::{Flavour, Registry, Storage};
use ferry_testworld::world::World;

struct Setup<'a> {
    folder: &'a Path,
    registries_conf: String,
    destination: String,
}

impl Setup<'_> {
    fn ferry(&self, command: &str, config: &str, workspace: &str, extra: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_ferry"))
            .arg(command)
            .args(["-c", &self.folder.join(config).display().to_string()])
            .args([
                "--workspace",
                &format!("file://{}", self.folder.join(workspace).display()),
            ])
            .args(["--registries-conf", &self.registries_conf])
            .args(["--dest-tls-verify=false", "--src-tls-verify=false"])
            .args(extra)
            .arg(&self.destination)
            .env("REGISTRY_AUTH_FILE", self.folder.join("no-auth.json"))
            .output()
            .unwrap()
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn config(images: &[String]) -> String {
    let mut text = String::from(
        "kind: ImageSetConfiguration\napiVersion: mirror.openshift.io/v2alpha1\nmirror:\n  additionalImages:\n",
    );
    for image in images {
        text.push_str(&format!("  - name: {image}\n"));
    }
    text
}

#[test]
fn default_plans_head_each_tag_and_trust_state_needs_no_source() {
    let world = World::start().unwrap();
    let source = Registry::start(Flavour::PlainHttp, Storage::Empty).unwrap();
    let destination = Registry::start(Flavour::PlainHttp, Storage::Empty).unwrap();
    let folder = tempfile::tempdir().unwrap();

    // A writable source, filled from the world by ferry itself.
    std::fs::write(
        folder.path().join("fill.yaml"),
        config(&[
            "quay.io/ferry-demo/hello:1.0".to_owned(),
            "quay.io/ferry-demo/hello-oci:1.0".to_owned(),
            "quay.io/ferry-demo/signed:1.0".to_owned(),
            "registry.redhat.io/ubi9/ubi-minimal:9.4".to_owned(),
        ]),
    )
    .unwrap();
    let fill = Setup {
        folder: folder.path(),
        registries_conf: world.registries_conf().display().to_string(),
        destination: format!("docker://{}/src", source.host()),
    };
    let filled = fill.ferry("mirror", "fill.yaml", "fill", &[]);
    assert!(filled.status.success(), "{}", text(&filled.stderr));

    // Mirror from that source, through a proxy that sees every request.
    let proxy = FaultProxy::start(source.address()).unwrap();
    let pinned_bytes = Command::new("skopeo")
        .args(["inspect", "--raw", "--tls-verify=false"])
        .arg(format!(
            "docker://{}/src/ferry-demo/hello-oci:1.0",
            source.host()
        ))
        .output()
        .unwrap();
    assert!(pinned_bytes.status.success());
    let pinned = ferry_registry::client::sha256_of(&pinned_bytes.stdout);
    let host = proxy.host();
    std::fs::write(
        folder.path().join("isc.yaml"),
        config(&[
            format!("{host}/src/ferry-demo/hello:1.0"),
            format!("{host}/src/ferry-demo/signed:1.0"),
            format!("{host}/src/ubi9/ubi-minimal:9.4"),
            format!("{host}/src/ferry-demo/hello-oci@{pinned}"),
        ]),
    )
    .unwrap();
    let empty_conf = folder.path().join("empty-registries.conf");
    std::fs::write(&empty_conf, "").unwrap();
    let setup = Setup {
        folder: folder.path(),
        registries_conf: empty_conf.display().to_string(),
        destination: format!("docker://{}/mirror", destination.host()),
    };
    let mirrored = setup.ferry("mirror", "isc.yaml", "ws", &[]);
    assert!(mirrored.status.success(), "{}", text(&mirrored.stderr));

    // The default no-op rerun: HEADs only, one per tag (images and
    // signature tags), none for the pinned image's own digest.
    proxy.clear();
    let noop = setup.ferry("plan", "isc.yaml", "ws", &["--detailed-exitcode"]);
    assert_eq!(noop.status.code(), Some(0), "{}", text(&noop.stdout));
    let manifest_requests: Vec<_> = proxy
        .records()
        .into_iter()
        .filter(|record| record.path.contains("/manifests/"))
        .collect();
    assert!(
        manifest_requests
            .iter()
            .all(|record| record.method == "HEAD"),
        "{manifest_requests:#?}"
    );
    assert!(
        !manifest_requests
            .iter()
            .any(|record| record.path.ends_with(&format!("/manifests/{pinned}"))),
        "{manifest_requests:#?}"
    );
    // hello, signed, ubi-minimal: the tag; each of the four: its signature tag.
    assert_eq!(manifest_requests.len(), 3 + 4, "{manifest_requests:#?}");
    assert!(proxy.records().iter().all(|record| !record.is_blob_get()));

    // A plan saved now goes stale when the tag moves.
    let saved = folder.path().join("before.plan.json");
    let planned = setup.ferry(
        "plan",
        "isc.yaml",
        "ws",
        &["--out", &saved.display().to_string()],
    );
    assert!(planned.status.success(), "{}", text(&planned.stderr));

    // Move a source tag: the default plan finds it; --trust-state trusts
    // the record and does not look.
    let moved = Command::new("skopeo")
        .args(["copy", "--src-tls-verify=false", "--dest-tls-verify=false"])
        .arg(format!(
            "docker://{}/src/ferry-demo/hello-oci:1.0",
            source.host()
        ))
        .arg(format!(
            "docker://{}/src/ferry-demo/hello:1.0",
            source.host()
        ))
        .output()
        .unwrap();
    assert!(moved.status.success(), "{}", text(&moved.stderr));
    let trusted = setup.ferry(
        "plan",
        "isc.yaml",
        "ws",
        &["--trust-state", "--detailed-exitcode"],
    );
    assert_eq!(trusted.status.code(), Some(0), "{}", text(&trusted.stdout));
    let refreshed = setup.ferry("plan", "isc.yaml", "ws", &["--detailed-exitcode"]);
    assert_eq!(
        refreshed.status.code(),
        Some(2),
        "{}",
        text(&refreshed.stdout)
    );
    let plan_text = text(&refreshed.stdout);
    assert!(
        plan_text.contains(&format!("~ {host}/src/ferry-demo/hello:1.0"))
            && plan_text.contains("tag moved from"),
        "{plan_text}"
    );
    let stale = Command::new(env!("CARGO_BIN_EXE_ferry"))
        .arg("apply")
        .arg(&saved)
        .args(["--registries-conf", &setup.registries_conf])
        .args(["--dest-tls-verify=false", "--src-tls-verify=false"])
        .env("REGISTRY_AUTH_FILE", folder.path().join("no-auth.json"))
        .output()
        .unwrap();
    assert_eq!(stale.status.code(), Some(1));
    let message = text(&stale.stderr);
    assert!(
        message.contains(&format!(
            "the plan is stale: {host}/src/ferry-demo/hello:1.0 now points to"
        )),
        "{message}"
    );
    let applied = setup.ferry("mirror", "isc.yaml", "ws", &[]);
    assert!(applied.status.success(), "{}", text(&applied.stderr));

    // Every source stopped: --trust-state still plans, and has nothing to
    // do; the default plan cannot reach the sources.
    drop(proxy);
    drop(source);
    let offline = setup.ferry(
        "plan",
        "isc.yaml",
        "ws",
        &["--trust-state", "--detailed-exitcode"],
    );
    let offline_text = text(&offline.stdout);
    assert_eq!(
        offline.status.code(),
        Some(0),
        "{offline_text}{}",
        text(&offline.stderr)
    );
    assert!(offline_text.contains("Nothing to do"), "{offline_text}");
    assert!(
        offline_text.starts_with("Plan: 5 images"),
        "four images and one signature: {offline_text}"
    );
    let online = setup.ferry(
        "plan",
        "isc.yaml",
        "ws",
        &["--detailed-exitcode", "--retry-times", "0"],
    );
    assert_eq!(online.status.code(), Some(1), "{}", text(&online.stdout));
}
