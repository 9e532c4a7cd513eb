//! A built image and a copied image through mirror-to-disk and back: the
//! delivery packs the built image's new blobs from the cache it was built
//! into and fetches its base layer from its registry source; disk-to-mirror,
//! with every source stopped and a cache of its own, pushes both from the
//! delivery alone (checked with skopeo, which verifies every digest it
//! copies, and the built manifest's exact bytes).

mod support;

use support::skopeo_copies;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use ferry_executor::run::NoProgress;
use ferry_executor::workflow::built::{BuiltBlob, BuiltImage, store_blob};
use ferry_executor::workflow::from_deliveries::{Deliveries, from_deliveries};
use ferry_executor::workflow::to_disk::{prepare_image_set, write_delivery};
use ferry_executor::workflow::to_registry::{execute, plan};
use ferry_executor::workflow::{
    Category, CollectContext, DiskOptions, ErrorKind, ImageSet, PlanOptions, TransferOptions,
    collect,
};
use ferry_planner::{Action, Destination, Source};
use ferry_schemas::ImageSetConfiguration;
use ferry_store::BlobStore;
use ferry_testworld::registry::{Flavour, Registry, Storage};
use ferry_testworld::world::World;

const CONFIGURATION: &str = "kind: ImageSetConfiguration\napiVersion: mirror.openshift.io/v2alpha1\nmirror:\n  additionalImages:\n  - name: quay.io/ferry-demo/hello:1.0\n";
const NEW_LAYER: &[u8] = b"a layer ferry made, carried by the delivery";

fn configuration() -> ImageSetConfiguration {
    ferry_schemas::load_image_set_configuration(CONFIGURATION)
        .unwrap()
        .config
}

fn image_set(prefix: &str) -> ImageSet {
    collect(
        &configuration(),
        &CollectContext {
            prefix: prefix.to_owned(),
            ..CollectContext::default()
        },
    )
    .unwrap()
}

fn transfer(world: &World, folder: &Path) -> TransferOptions {
    TransferOptions {
        source_tls_verify: true,
        destination_tls_verify: false,
        authfile: Some(folder.join("no-auth.json")),
        registries_conf: Some(world.registries_conf().to_path_buf()),
        parallel_images: 4,
        parallel_layers: 5,
        retry_times: 1,
        retry_delay: None,
        header_timeout: Duration::from_secs(30),
        stall_timeout: Duration::from_secs(60),
    }
}

/// The copied image's first layer, as a base layer read from its source
/// repository in `world`.
fn base_layer(world: &World) -> BuiltBlob {
    let output = Command::new("skopeo")
        .args(["inspect", "--raw", "--tls-verify=false"])
        .arg(format!(
            "--registries-conf={}",
            world.registries_conf().display()
        ))
        .arg("docker://quay.io/ferry-demo/hello:1.0")
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
}

/// A built image over a config and a layer stored in `cache` and `base`.
fn build(cache: &BlobStore, base: BuiltBlob, destination_repository: &str) -> BuiltImage {
    let config = store_blob(
        cache,
        br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#,
        "application/vnd.oci.image.config.v1+json",
    )
    .unwrap();
    let new_layer = store_blob(cache, NEW_LAYER, "application/vnd.oci.image.layer.v1.tar").unwrap();
    BuiltImage::new(
        "ferry.local/built/catalog:v1",
        destination_repository,
        "v1",
        Category::Operator,
        config,
        vec![base, new_layer],
    )
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_built_image_and_a_copied_image_go_to_disk_and_back_without_their_sources() {
    let world = World::start().unwrap();
    let folder = tempfile::tempdir().unwrap();
    let deliveries = folder.path().join("deliveries");
    let connected_cache = folder.path().join("connected-cache");
    let blobs = BlobStore::open(&connected_cache).unwrap();
    let base = base_layer(&world);
    let built = build(&blobs, base.clone(), "built/catalog");
    let new_layer = built.layers[1].clone();
    let mut connected = image_set("");
    connected.built.push(built.clone());
    connected.cache = Some(blobs);

    // Mirror-to-disk.
    let transfer_options = transfer(&world, folder.path());
    let planning = PlanOptions::default();
    let disk_options = DiskOptions {
        cache: connected_cache.clone(),
        since: None,
        strict_archive: false,
        max_segment_bytes: None,
    };
    let mut prepared = prepare_image_set(
        &deliveries,
        &configuration(),
        CONFIGURATION,
        connected,
        &transfer_options,
        &planning,
        &disk_options,
        true,
    )
    .await
    .unwrap();
    let fetched: Vec<_> = prepared
        .plan
        .actions
        .iter()
        .filter_map(|planned| match &planned.action {
            Action::FetchBlob { digest, .. } => Some(digest.clone()),
            _ => None,
        })
        .collect();
    assert!(
        fetched.contains(&base.digest),
        "the base layer is fetched: {fetched:?}"
    );
    assert!(
        !fetched.contains(&new_layer.digest)
            && !fetched.contains(&built.config.as_ref().unwrap().digest),
        "the built blobs are in the cache already: {fetched:?}"
    );
    let delivered = write_delivery(&mut prepared, &transfer_options)
        .await
        .unwrap();
    assert!(delivered.failed.is_empty(), "{:?}", delivered.failed);
    assert!(delivered.layout.is_some(), "a delivery was written");
    drop(prepared);

    // The sources stop: disk-to-mirror has the delivery alone, and a cache
    // of its own.
    drop(world);
    let destination_registry = Registry::start(Flavour::PlainHttp, Storage::Empty).unwrap();
    let destination = Destination {
        registry: destination_registry.host(),
        prefix: "mirror".to_owned(),
    };
    // The disconnected side's image set: the same images, placed under the
    // destination prefix.
    let mut disconnected = image_set("mirror");
    let mut built_here = built.clone();
    built_here.destination_repository = "mirror/built/catalog".to_owned();
    disconnected.built.push(built_here);
    let offline = TransferOptions {
        registries_conf: None,
        ..transfer_options.clone()
    };
    let sourced = from_deliveries(
        &deliveries,
        &destination,
        &mut disconnected,
        None,
        &offline,
        &planning,
        &folder.path().join("disconnected-cache"),
        Deliveries::Import,
    )
    .await
    .unwrap()
    .sourced;
    assert!(
        sourced.resolution.failures.is_empty(),
        "{:?}",
        sourced.resolution.failures
    );
    let resolved_built = sourced
        .resolution
        .images
        .iter()
        .find(|image| image.name == built.name)
        .expect("the built image is resolved from the delivery");
    assert_eq!(resolved_built.top, built.manifest.digest);
    assert_eq!(resolved_built.blob_source(&base.digest), &Source::Cache);
    let mut planned = plan(sourced, destination.clone(), &planning).await.unwrap();
    let executed = execute(&mut planned, &offline, &NoProgress).await.unwrap();
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
    assert_eq!(
        std::fs::read(copies.join("built/manifest.json")).unwrap(),
        built.manifest.bytes.to_vec(),
        "the built manifest's exact bytes"
    );
    assert_eq!(
        std::fs::read(copies.join("built").join(new_layer.digest.hex())).unwrap(),
        NEW_LAYER
    );
    assert!(
        copies.join("built").join(base.digest.hex()).is_file(),
        "the base layer arrived with the built image"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn built_images_whose_blobs_are_in_another_cache_are_refused() {
    let world = World::start().unwrap();
    let folder = tempfile::tempdir().unwrap();
    let elsewhere = BlobStore::open(folder.path().join("elsewhere")).unwrap();
    let mut set = image_set("");
    set.built
        .push(build(&elsewhere, base_layer(&world), "built/catalog"));
    set.cache = Some(elsewhere);
    let refused = prepare_image_set(
        &folder.path().join("deliveries"),
        &configuration(),
        CONFIGURATION,
        set,
        &transfer(&world, folder.path()),
        &PlanOptions::default(),
        &DiskOptions {
            cache: folder.path().join("cache"),
            since: None,
            strict_archive: false,
            max_segment_bytes: None,
        },
        false,
    )
    .await
    .err()
    .expect("refused");
    assert_eq!(refused.kind, ErrorKind::Internal, "{refused:?}");
    assert!(
        refused.to_string().contains("elsewhere"),
        "names the folder: {refused}"
    );
}
