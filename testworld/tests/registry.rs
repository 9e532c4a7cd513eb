//! Registry processes in every flavour, serving published storage, checked
//! with skopeo; writable destinations; and no registry outliving its test
//! process, even one killed with SIGKILL.

mod common;

use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use ferry_testworld::content::Content;
use ferry_testworld::registry::{Flavour, Registry, Storage};
use ferry_testworld::storage;

use common::{sample_content, skopeo, skopeo_ok};

/// Sample content published into a temporary storage root.
fn published_sample() -> (Content, tempfile::TempDir) {
    let content = sample_content();
    let root = tempfile::tempdir().unwrap();
    storage::publish(&content, root.path()).unwrap();
    (content, root)
}

/// skopeo options reaching `registry`: TLS trust and credentials.
fn access_options(registry: &Registry) -> Vec<String> {
    let mut options = Vec::new();
    match registry.cert_dir() {
        Some(cert_dir) => options.push(format!("--cert-dir={}", cert_dir.display())),
        None => options.push("--tls-verify=false".to_owned()),
    }
    if let Some(credentials) = registry.credentials() {
        options.push(format!("--creds={}", credentials.joined()));
    }
    options
}

#[test]
fn every_flavour_serves_published_content_byte_identically() {
    let (content, root) = published_sample();
    for flavour in Flavour::ALL {
        let registry = Registry::start(flavour, Storage::Shared(root.path().into())).unwrap();
        assert!(registry.is_read_only());
        let options = access_options(&registry);
        for placement in &content.placements {
            let expected = &content.manifests[&placement.digest].bytes;
            let name = format!(
                "{}/{}/{}",
                registry.host(),
                placement.host,
                placement.repository
            );
            let mut references = vec![format!("{name}@{}", placement.digest)];
            references.extend(placement.tags.iter().map(|tag| format!("{name}:{tag}")));
            for reference in references {
                let mut args = vec!["inspect", "--raw"];
                args.extend(options.iter().map(String::as_str));
                let image = format!("docker://{reference}");
                args.push(&image);
                assert_eq!(&skopeo_ok(&args), expected, "{flavour:?} {reference}");
            }
        }
    }
}

#[test]
fn images_copy_whole_from_every_flavour() {
    let (content, root) = published_sample();
    let list = content
        .placements
        .iter()
        .find(|placement| placement.repository == "sample/multi")
        .unwrap();
    for flavour in Flavour::ALL {
        let registry = Registry::start(flavour, Storage::Shared(root.path().into())).unwrap();
        let target = tempfile::tempdir().unwrap();
        let mut args = vec!["copy".to_owned(), "--all".to_owned()];
        args.extend(
            access_options(&registry)
                .into_iter()
                .map(|option| option.replacen("--", "--src-", 1)),
        );
        args.push(format!(
            "docker://{}/quay.io/sample/multi@{}",
            registry.host(),
            list.digest
        ));
        args.push(format!("oci:{}", target.path().display()));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        skopeo_ok(&args);
        assert!(target.path().join("index.json").is_file(), "{flavour:?}");
    }
}

#[test]
fn tls_registry_is_refused_without_its_authority() {
    let (_content, root) = published_sample();
    let registry = Registry::start(Flavour::Tls, Storage::Shared(root.path().into())).unwrap();
    let output = skopeo(&[
        "inspect",
        "--raw",
        &format!("docker://{}/quay.io/sample/tools:1.0", registry.host()),
    ]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("certificate"), "{stderr}");
}

#[test]
fn auth_registry_refuses_a_wrong_password_and_no_credentials() {
    let (_content, root) = published_sample();
    let registry =
        Registry::start(Flavour::BasicAuthTls, Storage::Shared(root.path().into())).unwrap();
    let cert_dir = format!("--cert-dir={}", registry.cert_dir().unwrap().display());
    let image = format!("docker://{}/quay.io/sample/tools:1.0", registry.host());
    let user = &registry.credentials().unwrap().user;
    let wrong = skopeo(&[
        "inspect",
        "--raw",
        &cert_dir,
        &format!("--creds={user}:not-the-password"),
        &image,
    ]);
    assert!(!wrong.status.success());
    let stderr = String::from_utf8_lossy(&wrong.stderr);
    assert!(
        stderr.contains("unauthorized") || stderr.contains("authentication"),
        "{stderr}"
    );
    let anonymous = skopeo(&["inspect", "--raw", &cert_dir, "--no-creds", &image]);
    assert!(!anonymous.status.success());
    assert_eq!(registry.get("/v2/").unwrap().status, 200);
}

#[test]
fn empty_registry_accepts_pushes_and_deletes_and_shared_one_refuses_them() {
    let (content, root) = published_sample();
    let source = Registry::start(Flavour::PlainHttp, Storage::Shared(root.path().into())).unwrap();
    for flavour in Flavour::ALL {
        let destination = Registry::start(flavour, Storage::Empty).unwrap();
        assert!(!destination.is_read_only());
        let mut args = vec![
            "copy".to_owned(),
            "--all".to_owned(),
            "--preserve-digests".to_owned(),
            "--src-tls-verify=false".to_owned(),
        ];
        args.extend(
            access_options(&destination)
                .into_iter()
                .map(|option| option.replacen("--", "--dest-", 1)),
        );
        let list = content
            .placements
            .iter()
            .find(|placement| placement.repository == "sample/multi")
            .unwrap();
        args.push(format!(
            "docker://{}/quay.io/sample/multi:4.15.0",
            source.host()
        ));
        let pushed = format!("docker://{}/mirror/multi:4.15.0", destination.host());
        args.push(pushed.clone());
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        skopeo_ok(&args);
        let mut inspect = vec!["inspect".to_owned(), "--raw".to_owned()];
        inspect.extend(access_options(&destination));
        inspect.push(pushed.clone());
        let inspect: Vec<&str> = inspect.iter().map(String::as_str).collect();
        assert_eq!(skopeo_ok(&inspect), content.manifests[&list.digest].bytes);
        let mut delete = vec!["delete".to_owned()];
        delete.extend(access_options(&destination));
        delete.push(format!(
            "docker://{}/mirror/multi@{}",
            destination.host(),
            list.digest
        ));
        let delete: Vec<&str> = delete.iter().map(String::as_str).collect();
        skopeo_ok(&delete);
        assert!(!skopeo(&inspect).status.success(), "{flavour:?}: deleted");
    }
    let refused = skopeo(&[
        "copy",
        "--src-tls-verify=false",
        "--dest-tls-verify=false",
        &format!("docker://{}/quay.io/sample/tools:1.0", source.host()),
        &format!("docker://{}/quay.io/sample/copied:1.0", source.host()),
    ]);
    assert!(!refused.status.success(), "a shared registry is read-only");
}

#[test]
fn dropping_a_registry_stops_its_process() {
    let registry = Registry::start(Flavour::PlainHttp, Storage::Empty).unwrap();
    let address = registry.address();
    assert!(TcpStream::connect(address).is_ok());
    drop(registry);
    assert!(stops_answering(address, Duration::from_secs(5)));
}

fn stops_answering(address: SocketAddr, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if TcpStream::connect_timeout(&address, Duration::from_millis(200)).is_err() {
            return true;
        }
        thread::sleep(Duration::from_millis(50));
    }
    false
}

const CHILD_PORT_FILE: &str = "FERRY_TESTWORLD_CHILD_PORT_FILE";
const KILL_TEST: &str = "registry_dies_with_its_test_process_even_on_sigkill";

/// Re-invokes this test binary for this one test with `CHILD_PORT_FILE` set:
/// the child starts a registry, writes its port and sleeps; the parent
/// SIGKILLs it and checks the registry goes away.
#[test]
fn registry_dies_with_its_test_process_even_on_sigkill() {
    if let Some(port_file) = std::env::var_os(CHILD_PORT_FILE) {
        let registry = Registry::start(Flavour::PlainHttp, Storage::Empty).unwrap();
        let temporary = PathBuf::from(&port_file).with_extension("partial");
        std::fs::write(&temporary, registry.address().port().to_string()).unwrap();
        std::fs::rename(&temporary, &port_file).unwrap();
        thread::sleep(Duration::from_secs(120));
        return;
    }
    let directory = tempfile::tempdir().unwrap();
    let port_file = directory.path().join("port");
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", KILL_TEST, "--nocapture", "--test-threads=1"])
        .env(CHILD_PORT_FILE, &port_file)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let port: u16 = loop {
        if let Ok(text) = std::fs::read_to_string(&port_file) {
            break text.parse().unwrap();
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "the child test exited before starting its registry"
        );
        assert!(
            Instant::now() < deadline,
            "the child never started its registry"
        );
        thread::sleep(Duration::from_millis(20));
    };
    let address = SocketAddr::from(([127, 0, 0, 1], port));
    assert!(
        TcpStream::connect(address).is_ok(),
        "the child's registry answers"
    );
    child.kill().unwrap(); // SIGKILL: no destructor runs in the child.
    child.wait().unwrap();
    assert!(
        stops_answering(address, Duration::from_secs(5)),
        "the registry on port {port} outlived its killed test process"
    );
}
