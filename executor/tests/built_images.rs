//! A built image and a copied image in one mirror-to-mirror run: the built
//! image's blobs are read from the cache, the copied one's from its source
//! registry, and both arrive whole (checked with skopeo, which verifies
//! every digest it copies).

mod support;

use support::skopeo_copies;

use std::process::Command;
use std::time::Duration;

use ferry_executor::run::NoProgress;
use ferry_executor::workflow::built::{BuiltBlob, BuiltImage, store_blob};
use ferry_executor::workflow::to_registry::{execute, from_registries, plan};
use ferry_executor::workflow::{
    Category, CollectContext, PlanOptions, TransferOptions, Workspace, collect,
};
use ferry_planner::{Destination, Source};
use ferry_store::BlobStore;
use ferry_testworld::registry::{Flavour, Registry, Storage};
use ferry_testworld::world::World;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_built_image_and_a_copied_image_mirror_in_one_run() {
    let world = World::start().unwrap();
    let destination_registry = Registry::start(Flavour::PlainHttp, Storage::Empty).unwrap();
    let folder = tempfile::tempdir().unwrap();
    let cache = BlobStore::open(folder.path().join("cache")).unwrap();

    let configuration = ferry_schemas::load_image_set_configuration(
        "kind: ImageSetConfiguration\napiVersion: mirror.openshift.io/v2alpha1\nmirror:\n  additionalImages:\n  - name: quay.io/ferry-demo/hello:1.0\n",
    )
    .unwrap()
    .config;
    let mut image_set = collect(
        &configuration,
        &CollectContext {
            prefix: "mirror".to_owned(),
            ..CollectContext::default()
        },
    )
    .unwrap();

    // A built image: a config and a layer ferry made (in the cache), on
    // top of a base layer that only the copied image's source repository
    // holds (the way a rebuilt catalog keeps its original layers).
    let hello = image_set.images[0].clone();
    let copied_layer = {
        let output = Command::new("skopeo")
            .args(["inspect", "--raw", "--tls-verify=false"])
            .arg(format!(
                "--registries-conf={}",
                world.registries_conf().display()
            ))
            .arg(format!("docker://{}", hello.origin))
            .output()
            .unwrap();
        assert!(output.status.success());
        let manifest: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
        let layer = &manifest["layers"][0];
        BuiltBlob {
            digest: layer["digest"].as_str().unwrap().parse().unwrap(),
            size: layer["size"].as_u64().unwrap(),
            media_type: layer["mediaType"].as_str().unwrap().to_owned(),
            source: Source::Registry(format!(
                "{}/quay.io/ferry-demo/hello",
                world.registry().host()
            )),
        }
    };
    let config = store_blob(
        &cache,
        br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#,
        "application/vnd.oci.image.config.v1+json",
    )
    .unwrap();
    let new_layer = store_blob(
        &cache,
        b"not a real tar: registries store blobs as bytes",
        "application/vnd.oci.image.layer.v1.tar",
    )
    .unwrap();
    let built = BuiltImage::new(
        "ferry.local/built/catalog:v1",
        "mirror/built/catalog",
        "v1",
        Category::Operator,
        config,
        vec![copied_layer.clone(), new_layer.clone()],
    )
    .unwrap();
    image_set.built.push(built.clone());
    image_set.cache = Some(cache.clone());

    let transfer = TransferOptions {
        source_tls_verify: true,
        destination_tls_verify: false,
        authfile: Some(folder.path().join("no-auth.json")),
        registries_conf: Some(world.registries_conf().to_path_buf()),
        parallel_images: 4,
        parallel_layers: 5,
        retry_times: 2,
        retry_delay: None,
        header_timeout: Duration::from_secs(30),
        stall_timeout: Duration::from_secs(60),
    };
    let planning = PlanOptions::default();
    let destination = Destination {
        registry: destination_registry.host(),
        prefix: "mirror".to_owned(),
    };
    let workspace = Workspace::in_folder(folder.path().join("workspace"));
    let sourced = from_registries(&workspace, &destination, &image_set, &transfer, &planning)
        .await
        .unwrap();
    let mut planned = plan(sourced, destination.clone(), &planning).await.unwrap();
    let built_actions: Vec<String> = planned
        .plan
        .actions
        .iter()
        .filter(|planned| planned.action.describe().contains("built/catalog"))
        .map(|planned| format!("{:?}", planned.action))
        .collect();
    assert!(
        built_actions
            .iter()
            .any(|action| action.contains("source: Cache")
                && action.contains(new_layer.digest.to_string().trim_start_matches("sha256:"))),
        "the new layer is read from the cache: {built_actions:#?}"
    );
    let executed = execute(&mut planned, &transfer, &NoProgress).await.unwrap();
    assert!(executed.failed.is_empty(), "{:?}", executed.failed);
    assert_eq!(executed.exit_bits(), 0);

    let host = destination_registry.host();
    let copies = folder.path().join("copies");
    std::fs::create_dir_all(&copies).unwrap();
    assert!(skopeo_copies(
        &format!("{host}/mirror/built/catalog:v1"),
        &copies.join("built")
    ));
    assert!(skopeo_copies(
        &format!("{host}/mirror/ferry-demo/hello:1.0"),
        &copies.join("hello")
    ));
    let pushed = std::fs::read(copies.join("built/manifest.json")).unwrap();
    assert_eq!(
        pushed,
        built.manifest.bytes.to_vec(),
        "the built manifest's exact bytes"
    );
    let layer_file = copies
        .join("built")
        .join(new_layer.digest.to_string().trim_start_matches("sha256:"));
    assert_eq!(
        std::fs::read(layer_file).unwrap(),
        b"not a real tar: registries store blobs as bytes"
    );

    // A rerun plans nothing: the built image's actions were recorded too.
    let sourced = from_registries(&workspace, &destination, &image_set, &transfer, &planning)
        .await
        .unwrap();
    let again = plan(sourced, destination, &planning).await.unwrap();
    assert!(again.plan.is_empty(), "{:#?}", again.plan.actions);
}
