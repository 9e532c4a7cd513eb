//! Signature tags found through the source repository's tag list: with
//! several requested images in one repository, the repository is listed
//! once and only a signature tag the list names is asked for; the images
//! and signatures resolved are those one HEAD per image finds.

use std::time::Duration;

use ferry_executor::resolve::{Request, ResolveOptions, resolve};
use ferry_registry::{ClientOptions, CredentialStore, RegistriesConf, RegistryClient};
use ferry_testworld::proxy::FaultProxy;
use ferry_testworld::world::World;

const SIGNED_TOP: &str = "sha256:d635812d4c415c51a22f416be754e768ef01f4c4e4918cd612199df79fea0415";
const SIGNATURE_TAG: &str =
    "sha256-d635812d4c415c51a22f416be754e768ef01f4c4e4918cd612199df79fea0415.sig";

fn request(proxy: &str, name: &str) -> Request {
    Request {
        name: name.to_owned(),
        origin: format!("{proxy}/{name}").parse().unwrap(),
        destination_repository: "mirror/ferry-demo/repository".to_owned(),
        destination_tag: "1.0".to_owned(),
        category: ferry_executor::workflow::Category::Additional,
    }
}

/// Resolves `names` through a fresh proxy; returns the resolved image
/// names (with the proxy host left out) and the proxy's request lines.
async fn resolve_through_proxy(world: &World, names: &[&str]) -> (Vec<String>, Vec<String>) {
    let proxy = FaultProxy::start(world.registry().address()).unwrap();
    let client = RegistryClient::new(ClientOptions {
        credentials: CredentialStore::from_files(Vec::new()),
        certificate_folders: Vec::new(),
        insecure_hosts: vec![proxy.host()],
        retry_times: 1,
        retry_delay: Some(Duration::from_millis(10)),
        ..ClientOptions::default()
    });
    let requests: Vec<Request> = names
        .iter()
        .map(|name| request(&proxy.host(), name))
        .collect();
    let resolution = resolve(
        &client,
        &RegistriesConf::default(),
        &requests,
        &ResolveOptions::default(),
    )
    .await;
    assert!(resolution.failures.is_empty(), "{:?}", resolution.failures);
    let host = format!("{}/", proxy.host());
    let images = resolution
        .images
        .iter()
        .map(|image| format!("{} {}", image.name.replace(&host, ""), image.top))
        .collect();
    let requests = proxy
        .records()
        .iter()
        .map(|record| format!("{} {} {}", record.method, record.path, record.status))
        .collect();
    (images, requests)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shared_repository_is_listed_once_and_signatures_are_still_found() {
    let world = World::start().unwrap();
    let pinned = format!("quay.io/ferry-demo/signed@{SIGNED_TOP}");

    // One image of the repository: one HEAD for its signature tag.
    let (alone, alone_requests) =
        resolve_through_proxy(&world, &["quay.io/ferry-demo/signed:1.0"]).await;
    assert_eq!(
        alone,
        [
            format!("quay.io/ferry-demo/signed:1.0 {SIGNED_TOP}"),
            format!(
                "quay.io/ferry-demo/signed:{SIGNATURE_TAG} sha256:69c1631fc4bcf485320e0d2d03185bea8084c23c78f3811529cd6cfcd3041f1c"
            ),
        ]
    );
    assert!(
        !alone_requests
            .iter()
            .any(|line| line.contains("/tags/list")),
        "{alone_requests:#?}"
    );

    // Two images of the repository: listed once, the signature read for both.
    let (shared, shared_requests) =
        resolve_through_proxy(&world, &["quay.io/ferry-demo/signed:1.0", &pinned]).await;
    let signature = alone[1].split_once(' ').unwrap().1;
    assert_eq!(
        shared,
        [
            alone[0].clone(),
            alone[1].clone(),
            format!("{pinned} {SIGNED_TOP}"),
            format!("quay.io/ferry-demo/signed:{SIGNATURE_TAG} {signature}"),
        ]
    );
    let lists = shared_requests
        .iter()
        .filter(|line| line.starts_with("GET /v2/quay.io/ferry-demo/signed/tags/list 200"))
        .count();
    assert_eq!(lists, 1, "{shared_requests:#?}");

    // Two unsigned images of one repository: listed once, no HEAD for a
    // signature tag the list does not name.
    let (unsigned, unsigned_requests) = resolve_through_proxy(
        &world,
        &[
            "quay.io/ferry-demo/hello:1.0",
            "quay.io/ferry-demo/hello:1.0",
        ],
    )
    .await;
    assert_eq!(unsigned.len(), 2, "{unsigned:?}");
    assert!(
        unsigned.iter().all(|line| !line.contains(".sig")),
        "{unsigned:?}"
    );
    assert_eq!(
        unsigned_requests
            .iter()
            .filter(|line| line.contains("/tags/list"))
            .count(),
        1,
        "{unsigned_requests:#?}"
    );
    assert!(
        !unsigned_requests.iter().any(|line| line.contains(".sig")),
        "{unsigned_requests:#?}"
    );
}
