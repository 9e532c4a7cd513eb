//! The disk workflows end to end against the test world: mirror-to-disk,
//! then disk-to-mirror into a fresh registry with every source registry
//! stopped, checked with skopeo; an added image makes a delivery of only
//! its new blobs; reproducible archives; tampered, truncated and
//! out-of-chain deliveries refused before anything is pushed; `ferry plan
//! --from` verifies the deliveries and leaves the cache as it was.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::SystemTime;

use ferry_testworld::registry::{Flavour, Registry, Storage};
use ferry_testworld::world::World;
use sha2::Digest as _;

use crate::support::{compare_or_bless, golden_path};

const UBI: &str = "  - name: registry.redhat.io/ubi9/ubi:latest\n";
const HELLO: &str = "  - name: quay.io/ferry-demo/hello:1.0\n";
const SIGNED: &str = "  - name: quay.io/ferry-demo/signed:1.0\n";

/// A temporary folder for configurations, deliveries and caches.
struct Site {
    folder: tempfile::TempDir,
}

impl Site {
    fn new() -> Self {
        Site {
            folder: tempfile::tempdir().unwrap(),
        }
    }

    fn path(&self, relative: &str) -> PathBuf {
        self.folder.path().join(relative)
    }

    fn config(&self, name: &str, images: &str) -> String {
        let path = self.path(name);
        std::fs::write(
            &path,
            format!("kind: ImageSetConfiguration\napiVersion: mirror.openshift.io/v2alpha1\nmirror:\n  additionalImages:\n{images}"),
        )
        .unwrap();
        path.display().to_string()
    }

    /// A registries.conf that blocks the public hosts the configurations
    /// name, for commands that must be refused before any network access:
    /// were they not, they still reach no address outside the machine.
    fn blocking_registries_conf(&self) -> String {
        let path = self.path("blocked-registries.conf");
        std::fs::write(
            &path,
            "[[registry]]\nlocation = \"quay.io\"\nblocked = true\n\n[[registry]]\nlocation = \"registry.redhat.io\"\nblocked = true\n",
        )
        .unwrap();
        path.display().to_string()
    }

    /// Runs ferry with `arguments`, the cache in `cache` and no credentials.
    fn ferry(&self, cache: &str, arguments: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_ferry"))
            .args(arguments)
            .env("FERRY_CACHE_DIR", self.path(cache))
            .env("REGISTRY_AUTH_FILE", self.path("no-auth.json"))
            .env("SOURCE_DATE_EPOCH", "1764028800")
            .output()
            .unwrap()
    }

    /// `ferry <command> -c CONFIG --registries-conf WORLD file://DIR`.
    fn mirror_to_disk(
        &self,
        world: &World,
        command: &str,
        config: &str,
        folder: &str,
        extra: &[&str],
    ) -> Output {
        let registries = world.registries_conf().display().to_string();
        let target = format!("file://{}", self.path(folder).display());
        let mut arguments = vec![command, "-c", config, "--registries-conf", &registries];
        arguments.extend_from_slice(extra);
        arguments.push(&target);
        self.ferry("cache", &arguments)
    }

    /// `ferry mirror -c CONFIG --from file://DIR docker://DESTINATION/mirror`.
    fn disk_to_mirror(
        &self,
        config: &str,
        folder: &str,
        destination: &Registry,
        cache: &str,
    ) -> Output {
        self.run_disk_to_mirror("mirror", config, folder, destination, cache, &[])
    }

    /// `ferry <command> -c CONFIG --from file://DIR [EXTRA]
    /// docker://DESTINATION/mirror`.
    fn run_disk_to_mirror(
        &self,
        command: &str,
        config: &str,
        folder: &str,
        destination: &Registry,
        cache: &str,
        extra: &[&str],
    ) -> Output {
        let from = format!("file://{}", self.path(folder).display());
        let target = format!("docker://{}/mirror", destination.host());
        let mut arguments = vec![
            command,
            "-c",
            config,
            "--from",
            &from,
            "--dest-tls-verify=false",
        ];
        arguments.extend_from_slice(extra);
        arguments.push(&target);
        self.ferry(cache, &arguments)
    }
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn skopeo_raw(arguments: &[&str]) -> Option<Vec<u8>> {
    let output = Command::new("skopeo").args(arguments).output().unwrap();
    output.status.success().then_some(output.stdout)
}

/// The source manifests of `images` (name → raw bytes), read through the
/// world's registries.conf.
fn source_manifests(world: &World, images: &[&str]) -> Vec<(String, Vec<u8>)> {
    let registries = world.registries_conf().display().to_string();
    images
        .iter()
        .map(|image| {
            let raw = skopeo_raw(&[
                "--registries-conf",
                &registries,
                "inspect",
                "--raw",
                &format!("docker://{image}"),
            ])
            .unwrap_or_else(|| panic!("skopeo reads {image} at the source"));
            ((*image).to_owned(), raw)
        })
        .collect()
}

/// The mirror holds each image byte for byte, and skopeo can copy it.
fn assert_mirrored(destination: &Registry, expected: &[(String, Vec<u8>)]) {
    for (image, raw) in expected {
        let path = image.split_once('/').unwrap().1;
        let reference = format!("docker://{}/mirror/{path}", destination.host());
        let actual = skopeo_raw(&["inspect", "--raw", "--tls-verify=false", &reference]);
        assert_eq!(actual.as_ref(), Some(raw), "{reference}");
    }
    let (image, _) = &expected[0];
    let copy = tempfile::tempdir().unwrap();
    let path = image.split_once('/').unwrap().1;
    let status = Command::new("skopeo")
        .args(["copy", "--all", "--src-tls-verify=false"])
        .arg(format!("docker://{}/mirror/{path}", destination.host()))
        .arg(format!("dir:{}", copy.path().display()))
        .output()
        .unwrap();
    assert!(status.status.success(), "{}", text(&status));
}

fn segments(folder: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(folder)
        .unwrap()
        .filter_map(|entry| {
            let name = entry.unwrap().file_name().to_string_lossy().to_string();
            ferry_archive::segment_number(&name).map(|_| name)
        })
        .collect();
    names.sort();
    names
}

/// Blob digests a segment carries (`blobs/sha256/<hex>` entries).
fn blobs_in(segment: &Path) -> BTreeSet<String> {
    let mut archive = tar::Archive::new(std::fs::File::open(segment).unwrap());
    archive
        .entries()
        .unwrap()
        .filter_map(|entry| {
            let path = entry.unwrap().path().unwrap().to_string_lossy().to_string();
            path.strip_prefix("blobs/sha256/").map(str::to_owned)
        })
        .collect()
}

fn sha256_file(path: &Path) -> String {
    hex::encode(sha2::Sha256::digest(std::fs::read(path).unwrap()))
}

/// Every file and folder under `folder` with its modification time and,
/// for a file, its bytes' hash (empty when `folder` does not exist).
fn snapshot(folder: &Path) -> BTreeMap<PathBuf, (Option<String>, SystemTime)> {
    let mut found = BTreeMap::new();
    let mut pending = vec![folder.to_path_buf()];
    while let Some(current) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&current) else {
            continue;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            let metadata = std::fs::symlink_metadata(&path).unwrap();
            let hash = metadata.is_file().then(|| sha256_file(&path));
            if metadata.is_dir() {
                pending.push(path.clone());
            }
            found.insert(path, (hash, metadata.modified().unwrap()));
        }
    }
    found
}

/// How many blobs (and manifests) a cache folder holds.
fn cached_blobs(cache: &Path) -> usize {
    std::fs::read_dir(cache.join("blobs/sha256")).map_or(0, Iterator::count)
}

#[test]
fn deliveries_cross_the_gap_incrementally_with_sources_stopped() {
    let site = Site::new();
    let first = site.config("first.yaml", &format!("{UBI}{HELLO}"));
    let destination = Registry::start(Flavour::PlainHttp, Storage::Empty).unwrap();

    // Connected side, first delivery.
    let world = World::start().unwrap();
    let expected_first = source_manifests(
        &world,
        &[
            "registry.redhat.io/ubi9/ubi:latest",
            "quay.io/ferry-demo/hello:1.0",
        ],
    );
    let plan = site.mirror_to_disk(&world, "plan", &first, "disk", &["--detailed-exitcode"]);
    assert_eq!(plan.status.code(), Some(2), "{}", text(&plan));
    let plan_text = String::from_utf8_lossy(&plan.stdout).to_string();
    if let Some(mismatch) = compare_or_bless(&golden_path("disk/01-first-plan.txt"), &plan_text) {
        panic!("{mismatch}");
    }
    // The JSON plan (checked against schemas/plan.schema.json by the
    // plan_schema test) says what the delivery holds.
    let json = site.mirror_to_disk(&world, "plan", &first, "disk", &["--format", "json"]);
    // The plan's `apply` section names the configuration, the folder, the
    // cache, the credentials and registries.conf by absolute path.
    let json_text = String::from_utf8_lossy(&json.stdout)
        .replace(&world.registry().host(), "[SOURCE]")
        .replace(
            &world.registries_conf().display().to_string(),
            "[REGISTRIES_CONF]",
        )
        .replace(&site.folder.path().display().to_string(), "[TEMP]");
    let document: serde_json::Value = serde_json::from_str(&json_text).unwrap();
    assert_eq!(
        document["delivery"]["segments"][0]["file"],
        "mirror_000001.tar"
    );
    if let Some(mismatch) = compare_or_bless(&golden_path("plans/05-disk-first.json"), &json_text) {
        panic!("{mismatch}");
    }
    let mirrored = site.mirror_to_disk(&world, "mirror", &first, "disk", &[]);
    assert!(mirrored.status.success(), "{}", text(&mirrored));
    assert!(
        String::from_utf8_lossy(&mirrored.stdout).contains("✓ 2 / 2 additional images delivered"),
        "the summary counts the delivered images per category: {}",
        text(&mirrored)
    );
    assert_eq!(segments(&site.path("disk")), ["mirror_000001.tar"]);
    let noop = site.mirror_to_disk(&world, "plan", &first, "disk", &["--detailed-exitcode"]);
    assert_eq!(noop.status.code(), Some(0), "{}", text(&noop));
    assert!(
        text(&noop).contains("Nothing to deliver"),
        "{}",
        text(&noop)
    );
    let verified = site.ferry(
        "cache",
        &["verify", &format!("file://{}", site.path("disk").display())],
    );
    assert!(verified.status.success(), "{}", text(&verified));
    drop(world);

    // Disconnected side: every source registry is stopped.
    let applied = site.disk_to_mirror(&first, "disk", &destination, "enclave-cache");
    assert!(applied.status.success(), "{}", text(&applied));
    assert_mirrored(&destination, &expected_first);
    let resources = site.path("disk/working-dir/cluster-resources/itms-oc-mirror.yaml");
    let itms = std::fs::read_to_string(&resources).unwrap();
    assert!(itms.contains("source: registry.redhat.io/ubi9\n"), "{itms}");
    let again = site.disk_to_mirror(&first, "disk", &destination, "enclave-cache");
    assert!(again.status.success(), "{}", text(&again));
    assert!(text(&again).contains("Nothing to do"), "{}", text(&again));

    // Connected side again: one image added; the new delivery carries only
    // blobs the first one did not.
    let world = World::start().unwrap();
    let expected_second = source_manifests(&world, &["quay.io/ferry-demo/signed:1.0"]);
    let second = site.config("second.yaml", &format!("{UBI}{HELLO}{SIGNED}"));
    let mirrored = site.mirror_to_disk(&world, "mirror", &second, "disk", &[]);
    assert!(mirrored.status.success(), "{}", text(&mirrored));
    assert_eq!(
        segments(&site.path("disk")),
        ["mirror_000001.tar", "mirror_000002.tar"]
    );
    let shipped_first = blobs_in(&site.path("disk/mirror_000001.tar"));
    let shipped_second = blobs_in(&site.path("disk/mirror_000002.tar"));
    assert!(!shipped_second.is_empty());
    assert!(
        shipped_first.is_disjoint(&shipped_second),
        "the second delivery repeats blobs: {:?}",
        shipped_first
            .intersection(&shipped_second)
            .collect::<Vec<_>>()
    );
    // --since a day before everything: the whole image set again.
    let since = site.mirror_to_disk(&world, "plan", &second, "disk", &["--since", "2000-01-01"]);
    assert!(
        text(&since).contains("Shipped before: 0 blobs"),
        "{}",
        text(&since)
    );
    drop(world);

    // A folder holding only the second delivery, for a destination that
    // never got the first: refused before anything is pushed, naming it.
    std::fs::create_dir_all(site.path("only-second")).unwrap();
    std::fs::copy(
        site.path("disk/mirror_000002.tar"),
        site.path("only-second/mirror_000002.tar"),
    )
    .unwrap();
    let fresh = Registry::start(Flavour::PlainHttp, Storage::Empty).unwrap();
    let refused = site.disk_to_mirror(&second, "only-second", &fresh, "fresh-cache");
    assert_eq!(refused.status.code(), Some(1), "{}", text(&refused));
    assert!(text(&refused).contains("delivery 1"), "{}", text(&refused));
    assert!(
        skopeo_raw(&[
            "inspect",
            "--raw",
            "--tls-verify=false",
            &format!("docker://{}/mirror/ferry-demo/signed:1.0", fresh.host()),
        ])
        .is_none(),
        "nothing was pushed"
    );

    // The second delivery completes the mirror, even on a disconnected
    // side whose cache was wiped and that no longer keeps the first
    // delivery's segment: the images the first delivery brought are read
    // back from the destination.
    std::fs::rename(
        site.path("disk/mirror_000001.tar"),
        site.path("mirror_000001.tar.carried-before"),
    )
    .unwrap();
    // Planning that reads them back too, and keeps them in memory.
    let planned = site.run_disk_to_mirror(
        "plan",
        &second,
        "disk",
        &destination,
        "wiped-enclave-cache",
        &[],
    );
    assert!(planned.status.success(), "{}", text(&planned));
    assert!(
        text(&planned).contains("read from the destination (kept in memory, not stored)"),
        "{}",
        text(&planned)
    );
    assert!(
        !site.path("wiped-enclave-cache").exists(),
        "a plan creates no cache"
    );
    let applied = site.disk_to_mirror(&second, "disk", &destination, "wiped-enclave-cache");
    assert!(applied.status.success(), "{}", text(&applied));
    assert!(
        text(&applied).contains("read from the destination"),
        "{}",
        text(&applied)
    );
    assert!(
        text(&applied).contains(&*String::from_utf8_lossy(&planned.stdout)),
        "the run carries out the plan: {}",
        text(&applied)
    );
    assert_mirrored(&destination, &expected_first);
    assert_mirrored(&destination, &expected_second);
}

#[test]
fn planning_from_deliveries_verifies_them_and_changes_no_cache() {
    let site = Site::new();
    let config = site.config("isc.yaml", &format!("{UBI}{HELLO}{SIGNED}"));
    let world = World::start().unwrap();
    let expected = source_manifests(
        &world,
        &[
            "registry.redhat.io/ubi9/ubi:latest",
            "quay.io/ferry-demo/hello:1.0",
            "quay.io/ferry-demo/signed:1.0",
        ],
    );
    let mirrored = site.mirror_to_disk(&world, "mirror", &config, "disk", &[]);
    assert!(mirrored.status.success(), "{}", text(&mirrored));
    drop(world);

    // Every output format, a saved plan and the detailed exit code, with a
    // cache folder that does not exist yet: the deliveries are verified,
    // and no cache folder appears.
    let destination = Registry::start(Flavour::PlainHttp, Storage::Empty).unwrap();
    let plan = |destination: &Registry, cache: &str, extra: &[&str]| {
        site.run_disk_to_mirror("plan", &config, "disk", destination, cache, extra)
    };
    let plan_file = site.path("from.plan.json").display().to_string();
    let planned = plan(
        &destination,
        "enclave-cache",
        &["--detailed-exitcode", "--out", &plan_file],
    );
    assert_eq!(planned.status.code(), Some(2), "{}", text(&planned));
    assert!(
        text(&planned).contains("verified deliveries 1: nothing imported"),
        "{}",
        text(&planned)
    );
    let json = plan(&destination, "enclave-cache", &["--format", "json"]);
    assert!(json.status.success(), "{}", text(&json));
    let markdown = plan(&destination, "enclave-cache", &["--format", "markdown"]);
    assert!(markdown.status.success(), "{}", text(&markdown));
    assert!(
        !site.path("enclave-cache").exists(),
        "the plans created {:?}",
        snapshot(&site.path("enclave-cache"))
    );

    // `ferry mirror --from` then imports and carries out exactly that plan.
    let document: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    let planned_keys: BTreeSet<ferry_planner::ActionKey> = document["plan"]["actions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|action| ferry_planner::ActionKey::from_hex(action["key"].as_str().unwrap()).unwrap())
        .collect();
    assert!(!planned_keys.is_empty());
    let applied = site.disk_to_mirror(&config, "disk", &destination, "enclave-cache");
    assert!(applied.status.success(), "{}", text(&applied));
    assert!(
        text(&applied).contains(&*String::from_utf8_lossy(&planned.stdout)),
        "the run's plan is the one shown: {}",
        text(&applied)
    );
    assert!(
        text(&applied).contains(&format!(
            "Done: {} actions completed, 0 failed, 0 skipped",
            planned_keys.len()
        )),
        "{}",
        text(&applied)
    );
    let state = ferry_store::WorkspaceState::open(site.path("disk/working-dir/state.db")).unwrap();
    let done = state
        .history(&format!("{}/mirror", destination.host()))
        .unwrap()
        .done;
    assert!(
        planned_keys.is_subset(&done),
        "planned but not carried out: {:?}",
        planned_keys.difference(&done).collect::<Vec<_>>()
    );
    assert!(
        cached_blobs(&site.path("enclave-cache")) > 0,
        "mirror imports"
    );
    assert_mirrored(&destination, &expected);

    // A cache that exists is left exactly as it was by a plan for another
    // registry.
    let second = Registry::start(Flavour::PlainHttp, Storage::Empty).unwrap();
    let before = snapshot(&site.path("enclave-cache"));
    let replanned = plan(&second, "enclave-cache", &["--detailed-exitcode"]);
    assert_eq!(replanned.status.code(), Some(2), "{}", text(&replanned));
    assert_eq!(snapshot(&site.path("enclave-cache")), before);

    // A saved plan imports when it is applied, not when it is made.
    let second_file = site.path("second.plan.json").display().to_string();
    let saved = plan(&second, "apply-cache", &["--out", &second_file]);
    assert!(saved.status.success(), "{}", text(&saved));
    assert!(!site.path("apply-cache").exists());
    let applied = site.ferry(
        "apply-cache",
        &["apply", &second_file, "--dest-tls-verify=false"],
    );
    assert!(applied.status.success(), "{}", text(&applied));
    assert!(cached_blobs(&site.path("apply-cache")) > 0, "apply imports");
    assert_mirrored(&second, &expected);
}

#[test]
fn archives_are_reproducible_and_tampering_is_refused() {
    let site = Site::new();
    let config = site.config("isc.yaml", &format!("{UBI}{HELLO}{SIGNED}"));
    let world = World::start().unwrap();

    // Builds under different caches (cold or warm), temporary folders,
    // umasks and parallelism, and a rewrite after a crash, give the same
    // bytes.
    let command = |folder: &str, cache: &str, umask: &str, parallel: &str| {
        let registries = world.registries_conf().display().to_string();
        let mut command = Command::new("sh");
        command
            .arg("-c")
            .arg(format!("umask {umask}; exec \"$0\" \"$@\""))
            .arg(env!("CARGO_BIN_EXE_ferry"))
            .args(["mirror", "-c", &config, "--registries-conf", &registries])
            .args([
                "--parallel-images",
                parallel,
                "--max-segment-bytes",
                "60000",
            ])
            .arg(format!("file://{}", site.path(folder).display()))
            .env("FERRY_CACHE_DIR", site.path(cache))
            .env("TMPDIR", site.path(&format!("{folder}-tmp")))
            .env("REGISTRY_AUTH_FILE", site.path("no-auth.json"));
        command
    };
    let build = |folder: &str, cache: &str, umask: &str, parallel: &str| {
        let output = command(folder, cache, umask, parallel).output().unwrap();
        assert!(output.status.success(), "{}", text(&output));
        segments(&site.path(folder))
            .iter()
            .map(|name| (name.clone(), sha256_file(&site.path(folder).join(name))))
            .collect::<Vec<_>>()
    };
    for folder in ["one", "two", "three", "four"] {
        std::fs::create_dir_all(site.path(&format!("{folder}-tmp"))).unwrap();
    }
    let one = build("one", "cache-one", "022", "1");
    let two = build("two", "cache-two", "077", "8");
    assert!(
        one.len() > 1,
        "a small segment size gives several segments: {one:?}"
    );
    assert_eq!(one, two);
    // A warm cache (every blob already there) gives the same bytes as the
    // cold ones did.
    let three = build("three", "cache-one", "022", "4");
    assert_eq!(three, one, "a warm cache changed the delivery");
    // A run killed once its first blobs are in the cache, then run again:
    // the rewrite is the same delivery.
    let mut killed = command("four", "cache-four", "022", "1")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let fetched = site.path("cache-four/blobs/sha256");
    let started = std::time::Instant::now();
    while killed.try_wait().unwrap().is_none()
        && std::fs::read_dir(&fetched).map_or(0, |entries| entries.count()) == 0
        && started.elapsed() < std::time::Duration::from_secs(30)
    {
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    let _ = killed.kill();
    let _ = killed.wait();
    let four = build("four", "cache-four", "022", "1");
    assert_eq!(four, one, "the rewrite after a crash changed the delivery");
    drop(world);

    // The multi-segment delivery goes to a registry.
    let destination = Registry::start(Flavour::PlainHttp, Storage::Empty).unwrap();
    let applied = site.disk_to_mirror(&config, "one", &destination, "enclave-cache");
    assert!(applied.status.success(), "{}", text(&applied));

    // A flipped byte in a blob: `ferry verify` and disk-to-mirror refuse it.
    let tampered = site.path("tampered");
    std::fs::create_dir_all(&tampered).unwrap();
    for name in segments(&site.path("two")) {
        std::fs::copy(site.path("two").join(&name), tampered.join(&name)).unwrap();
    }
    let victim = tampered.join(&segments(&tampered)[0]);
    let mut bytes = std::fs::read(&victim).unwrap();
    let position = find_blob_content(&victim);
    bytes[position] ^= 0x01;
    std::fs::write(&victim, bytes).unwrap();
    let verify = site.ferry(
        "cache",
        &["verify", &format!("file://{}", tampered.display())],
    );
    assert_eq!(verify.status.code(), Some(1), "{}", text(&verify));
    assert!(text(&verify).contains("mirror_"), "{}", text(&verify));
    let fresh = Registry::start(Flavour::PlainHttp, Storage::Empty).unwrap();
    let refused = site.disk_to_mirror(&config, "tampered", &fresh, "tampered-cache");
    assert_eq!(refused.status.code(), Some(1), "{}", text(&refused));
    assert!(
        text(&refused).contains("nothing was pushed"),
        "{}",
        text(&refused)
    );

    // A truncated segment likewise.
    let truncated = site.path("truncated");
    std::fs::create_dir_all(&truncated).unwrap();
    for name in segments(&site.path("two")) {
        std::fs::copy(site.path("two").join(&name), truncated.join(&name)).unwrap();
    }
    let last = truncated.join(segments(&truncated).last().unwrap());
    let length = std::fs::metadata(&last).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&last)
        .unwrap()
        .set_len(length / 2)
        .unwrap();
    let verify = site.ferry(
        "cache",
        &["verify", &format!("file://{}", truncated.display())],
    );
    assert_eq!(verify.status.code(), Some(1), "{}", text(&verify));
}

/// The offset of the first byte of the first blob's content in a segment.
fn find_blob_content(segment: &Path) -> usize {
    let mut archive = tar::Archive::new(std::fs::File::open(segment).unwrap());
    for entry in archive.entries().unwrap() {
        let entry = entry.unwrap();
        let path = entry.path().unwrap().to_string_lossy().to_string();
        if path.starts_with("blobs/sha256/") && entry.size() > 0 {
            return entry.raw_file_position() as usize;
        }
    }
    panic!("no blob in {}", segment.display());
}

#[test]
fn dry_run_lists_mapping_and_what_the_cache_lacks() {
    let site = Site::new();
    let config = site.config("isc.yaml", &format!("{UBI}{HELLO}"));
    let world = World::start().unwrap();
    let dry = site.mirror_to_disk(&world, "mirror", &config, "disk", &["--dry-run"]);
    assert!(dry.status.success(), "{}", text(&dry));
    let folder = site.path("disk/working-dir/dry-run");
    let mapping = std::fs::read_to_string(folder.join("mapping.txt")).unwrap();
    let missing = std::fs::read_to_string(folder.join("missing.txt")).unwrap();
    assert_eq!(mapping.lines().count(), 2, "{mapping}");
    assert_eq!(missing, mapping, "an empty cache lacks every image");
    assert!(
        mapping
            .lines()
            .all(|line| line.starts_with("docker://") && line.contains("=file://"))
    );
    assert!(
        segments(&site.path("disk")).is_empty(),
        "a dry run writes no delivery"
    );
    assert!(
        !site.path("cache/blobs/sha256").exists()
            || std::fs::read_dir(site.path("cache/blobs/sha256"))
                .unwrap()
                .next()
                .is_none()
    );

    // After a real run the cache holds everything.
    assert!(
        site.mirror_to_disk(&world, "mirror", &config, "disk", &[])
            .status
            .success()
    );
    assert!(
        site.mirror_to_disk(&world, "mirror", &config, "disk", &["--dry-run"])
            .status
            .success()
    );
    let missing = std::fs::read_to_string(folder.join("missing.txt")).unwrap();
    assert_eq!(missing, "");
}

#[test]
fn saved_disk_plans_apply_exactly_and_stale_ones_are_refused() {
    let site = Site::new();
    let world = World::start().unwrap();
    let config = site.config("isc.yaml", &format!("{UBI}{HELLO}"));
    let plan_file = site.path("delivery.plan.json").display().to_string();
    let planned = site.mirror_to_disk(
        &world,
        "plan",
        &config,
        "disk",
        &["--out", &plan_file, "--format", "json"],
    );
    assert!(planned.status.success(), "{}", text(&planned));
    // One format: what --format json prints is what --out saved, a version
    // 2 plan document naming the folder it writes to.
    let saved = std::fs::read_to_string(&plan_file).unwrap();
    assert_eq!(String::from_utf8_lossy(&planned.stdout), saved);
    let document: serde_json::Value = serde_json::from_str(&saved).unwrap();
    assert_eq!(document["version"], 2);
    assert_eq!(
        document["apply"]["destination"],
        format!("file://{}", site.path("disk").display())
    );
    let apply = |file: &str| {
        let registries = world.registries_conf().display().to_string();
        site.ferry("cache", &["apply", file, "--registries-conf", &registries])
    };
    let applied = apply(&plan_file);
    assert!(applied.status.success(), "{}", text(&applied));
    assert_eq!(segments(&site.path("disk")), ["mirror_000001.tar"]);

    // A plan made before another delivery was written is stale.
    let added = site.config("isc.yaml", &format!("{UBI}{HELLO}{SIGNED}"));
    let second_file = site.path("second.plan.json").display().to_string();
    let planned = site.mirror_to_disk(&world, "plan", &added, "disk", &["--out", &second_file]);
    assert!(planned.status.success(), "{}", text(&planned));
    let mirrored = site.mirror_to_disk(&world, "mirror", &added, "disk", &[]);
    assert!(mirrored.status.success(), "{}", text(&mirrored));
    let stale = apply(&second_file);
    assert_eq!(stale.status.code(), Some(1), "{}", text(&stale));
    assert!(
        text(&stale).contains("deliveries changed"),
        "{}",
        text(&stale)
    );
    assert_eq!(
        segments(&site.path("disk")).len(),
        2,
        "nothing more was written"
    );
}

#[test]
fn a_failing_image_is_left_out_whole_and_named() {
    let site = Site::new();
    let world = World::start().unwrap();
    let missing = "  - name: quay.io/ferry-demo/no-such-image:1.0\n";
    let config = site.config("isc.yaml", &format!("{HELLO}{missing}"));
    let mirrored = site.mirror_to_disk(&world, "mirror", &config, "disk", &[]);
    assert_eq!(mirrored.status.code(), Some(8), "{}", text(&mirrored));
    assert!(text(&mirrored).contains("quay.io/ferry-demo/no-such-image:1.0"));
    let logs: Vec<String> = std::fs::read_dir(site.path("disk/working-dir/logs"))
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().to_string())
        .filter(|name| name.starts_with("mirroring_errors_"))
        .collect();
    assert_eq!(logs.len(), 1, "{logs:?}");
    let log = std::fs::read_to_string(site.path("disk/working-dir/logs").join(&logs[0])).unwrap();
    // Lines as oc-mirror writes them, so scripts that read its errors
    // files keep working.
    assert!(
        log.starts_with(
            "error mirroring image quay.io/ferry-demo/no-such-image:1.0 error: not resolved: "
        ),
        "{log}"
    );
    // The other image was delivered, and the run says so once (the plan
    // it prints first does not state the delivery again).
    assert_eq!(segments(&site.path("disk")), ["mirror_000001.tar"]);
    assert_eq!(
        text(&mirrored).matches("Delivery 1 (the first)").count(),
        1,
        "{}",
        text(&mirrored)
    );
    assert!(text(&mirrored).starts_with("Plan: 1 image for the next delivery"));
    assert!(
        text(&mirrored).contains("Pack: 3 blobs, 1 manifest, 1 image record ("),
        "{}",
        text(&mirrored)
    );
    let verified = site.ferry(
        "cache",
        &["verify", &format!("file://{}", site.path("disk").display())],
    );
    assert!(
        text(&verified).contains("(3 blobs, 1 manifest, 1 image, ")
            && text(&verified).contains(": 1 delivery verified: "),
        "{}",
        text(&verified)
    );
    drop(world);

    // On the disconnected side, an image the configuration names that no
    // delivery carries is named, and the rest lands.
    let destination = Registry::start(Flavour::PlainHttp, Storage::Empty).unwrap();
    let applied = site.disk_to_mirror(&config, "disk", &destination, "enclave-cache");
    assert_eq!(applied.status.code(), Some(8), "{}", text(&applied));
    assert!(
        text(&applied).contains(
            "error mirroring image quay.io/ferry-demo/no-such-image:1.0 error: not resolved: no delivery carries this image"
        ),
        "{}",
        text(&applied)
    );
    assert!(
        skopeo_raw(&[
            "inspect",
            "--raw",
            "--tls-verify=false",
            &format!(
                "docker://{}/mirror/ferry-demo/hello:1.0",
                destination.host()
            ),
        ])
        .is_some()
    );
}

#[test]
fn a_blob_only_a_wiped_cache_had_is_named_with_what_to_do() {
    // The second delivery's image shares a layer with the first's, so the
    // layer travelled only in the first delivery; the disconnected side
    // then lost its cache and the first segment, and the layer must now go
    // into a repository that never had it.
    let site = Site::new();
    let first = site.config("first.yaml", HELLO);
    let second = site.config("second.yaml", SIGNED);
    let destination = Registry::start(Flavour::PlainHttp, Storage::Empty).unwrap();
    let world = World::start().unwrap();
    let mirrored = site.mirror_to_disk(&world, "mirror", &first, "disk", &[]);
    assert!(mirrored.status.success(), "{}", text(&mirrored));
    let applied = site.disk_to_mirror(&first, "disk", &destination, "enclave-cache");
    assert!(applied.status.success(), "{}", text(&applied));
    let mirrored = site.mirror_to_disk(&world, "mirror", &second, "disk", &[]);
    assert!(mirrored.status.success(), "{}", text(&mirrored));
    drop(world);

    std::fs::remove_file(site.path("disk/mirror_000001.tar")).unwrap();
    let applied = site.disk_to_mirror(&second, "disk", &destination, "wiped-enclave-cache");
    let output = text(&applied);
    if applied.status.success() {
        // Nothing needed the lost layer: the test world's images changed.
        panic!("the signed image shares no layer with hello any more:\n{output}");
    }
    assert_eq!(applied.status.code(), Some(8), "{output}");
    assert!(
        output.contains("is not in the cache") && output.contains("bring the delivery again"),
        "{output}"
    );
}

/// Removes the workspace state (and SQLite's side files), or leaves it as
/// an empty file, as a crash or a user cleaning `working-dir` does.
fn lose_state(folder: &Path, empty: bool) {
    let state = folder.join("working-dir/state.db");
    for side in ["state.db-wal", "state.db-shm"] {
        let _ = std::fs::remove_file(folder.join("working-dir").join(side));
    }
    if empty {
        std::fs::write(&state, b"").unwrap();
    } else {
        std::fs::remove_file(&state).unwrap();
    }
}

fn hashes(folder: &Path) -> Vec<(String, String)> {
    segments(folder)
        .into_iter()
        .map(|name| {
            let hash = sha256_file(&folder.join(&name));
            (name, hash)
        })
        .collect()
}

/// Defect 1 of issue 14: a lost or empty workspace state made the next
/// mirror-to-disk delete every finished segment as "left by an interrupted
/// run" and reuse its numbers. The record is now rebuilt from the segments
/// (which describe themselves), `ferry plan` says so, and only a delivery
/// an interrupted run of this workspace was publishing is removed.
#[test]
fn a_lost_workspace_state_is_rebuilt_from_the_segments_and_none_is_deleted() {
    let site = Site::new();
    let first = site.config("first.yaml", HELLO);
    let second = site.config("second.yaml", &format!("{HELLO}{SIGNED}"));
    let third = site.config("third.yaml", &format!("{HELLO}{SIGNED}{UBI}"));
    let world = World::start().unwrap();
    let disk = site.path("disk");
    let mirrored = site.mirror_to_disk(&world, "mirror", &first, "disk", &[]);
    assert!(mirrored.status.success(), "{}", text(&mirrored));
    let delivered = hashes(&disk);
    assert_eq!(delivered.len(), 1, "{delivered:?}");

    // The state is deleted: the plan warns and counts the delivery; the
    // mirror keeps the segment and writes delivery 2 after it, with only
    // what delivery 1 did not carry.
    lose_state(&disk, false);
    let plan = site.mirror_to_disk(&world, "plan", &second, "disk", &[]);
    assert!(plan.status.success(), "{}", text(&plan));
    assert!(
        text(&plan).contains("does not record delivery 1 (mirror_000001.tar)"),
        "{}",
        text(&plan)
    );
    assert!(
        text(&plan).contains("Delivery 2 (after delivery 1)"),
        "{}",
        text(&plan)
    );
    assert_eq!(hashes(&disk), delivered, "a plan changes no segment");
    let mirrored = site.mirror_to_disk(&world, "mirror", &second, "disk", &[]);
    let output = text(&mirrored);
    assert!(mirrored.status.success(), "{output}");
    assert!(
        output.contains("rebuilt the record of delivery 1 (mirror_000001.tar)"),
        "{output}"
    );
    assert!(!output.contains("removed"), "{output}");
    let now = hashes(&disk);
    assert_eq!(now[0], delivered[0], "delivery 1 is untouched");
    assert_eq!(segments(&disk), ["mirror_000001.tar", "mirror_000002.tar"]);
    let carried_first = blobs_in(&disk.join("mirror_000001.tar"));
    let carried_second = blobs_in(&disk.join("mirror_000002.tar"));
    assert!(
        carried_first.is_disjoint(&carried_second),
        "delivery 2 carries nothing delivery 1 did"
    );
    let verified = site.ferry("cache", &["verify", &format!("file://{}", disk.display())]);
    assert!(verified.status.success(), "{}", text(&verified));
    assert!(
        text(&verified).contains("2 deliveries verified"),
        "{}",
        text(&verified)
    );

    // An empty state file (a crash): nothing new, nothing removed.
    lose_state(&disk, true);
    let again = site.mirror_to_disk(&world, "mirror", &second, "disk", &[]);
    assert!(again.status.success(), "{}", text(&again));
    assert!(
        text(&again).contains("Nothing to deliver"),
        "{}",
        text(&again)
    );
    assert_eq!(hashes(&disk), now);

    // Segments copied into a fresh folder continue the chain there.
    let copied = site.path("copied");
    std::fs::create_dir_all(&copied).unwrap();
    for (name, _) in &now {
        std::fs::copy(disk.join(name), copied.join(name)).unwrap();
    }
    let mirrored = site.mirror_to_disk(&world, "mirror", &third, "copied", &[]);
    assert!(mirrored.status.success(), "{}", text(&mirrored));
    assert_eq!(
        segments(&copied),
        [
            "mirror_000001.tar",
            "mirror_000002.tar",
            "mirror_000003.tar"
        ]
    );
    assert_eq!(hashes(&copied)[..2], now[..]);
}

/// A run killed while it published a multi-segment delivery leaves some of
/// its segments under their final names; the workspace state's note of the
/// delivery being written lets the rerun remove them (and only them) and
/// write the delivery again, byte for byte.
#[test]
fn segments_of_an_interrupted_publish_are_removed_and_written_again() {
    let site = Site::new();
    let config = site.config("isc.yaml", &format!("{UBI}{HELLO}{SIGNED}"));
    let world = World::start().unwrap();
    let small = ["--max-segment-bytes", "60000"];
    let disk = site.path("disk");
    let mirrored = site.mirror_to_disk(&world, "mirror", &config, "disk", &small);
    assert!(mirrored.status.success(), "{}", text(&mirrored));
    let clean = hashes(&disk);
    assert!(clean.len() > 1, "{clean:?}");

    // As a kill after the first segments were renamed leaves it: the last
    // segment unpublished, no record, the note of the delivery.
    std::fs::remove_file(disk.join(&clean.last().unwrap().0)).unwrap();
    lose_state(&disk, false);
    let published = segments(&disk);

    // Without the note, ferry cannot tell whose they are: it refuses and
    // removes nothing.
    let refused = site.mirror_to_disk(&world, "mirror", &config, "disk", &small);
    let output = text(&refused);
    assert_eq!(refused.status.code(), Some(1), "{output}");
    assert!(
        output.contains(&format!("{} belong to delivery 1", published.join(", "))),
        "{output}"
    );
    assert!(
        output.contains("move these files out of the folder"),
        "{output}"
    );
    assert_eq!(segments(&disk), published);

    lose_state(&disk, false);
    let state = ferry_store::WorkspaceState::open(disk.join("working-dir/state.db")).unwrap();
    state.begin_delivery(1, 1, clean.len() as u32).unwrap();
    drop(state);
    let rerun = site.mirror_to_disk(&world, "mirror", &config, "disk", &small);
    let output = text(&rerun);
    assert!(rerun.status.success(), "{output}");
    assert!(output.contains("removed mirror_000001.tar"), "{output}");
    assert_eq!(hashes(&disk), clean);
}

/// One run per workspace and delivery folder: while another process holds
/// a workspace, `mirror` (every workflow) is refused at once naming it,
/// and `plan` reads but says so.
#[test]
fn a_busy_workspace_is_refused_at_once_and_a_plan_says_so() {
    let site = Site::new();
    let config = site.config("isc.yaml", HELLO);
    let world = World::start().unwrap();
    let disk = site.path("disk");
    let held = ferry_store::RunLock::acquire(
        &disk.join("working-dir"),
        "2026-12-02 04:00:00 UTC",
        "ferry mirror",
    )
    .unwrap();
    let busy = format!(
        "workspace {} in use by pid {} since 2026-12-02 04:00:00 UTC",
        disk.join("working-dir").display(),
        std::process::id()
    );

    let refused = site.mirror_to_disk(&world, "mirror", &config, "disk", &[]);
    assert_eq!(refused.status.code(), Some(1), "{}", text(&refused));
    assert!(text(&refused).contains(&busy), "{}", text(&refused));
    assert!(segments(&disk).is_empty());
    let plan = site.mirror_to_disk(&world, "plan", &config, "disk", &[]);
    assert!(plan.status.success(), "{}", text(&plan));
    assert!(
        text(&plan).contains(&format!("warning: {busy}")),
        "{}",
        text(&plan)
    );
    // Disk-to-mirror from the same folder, and mirror-to-mirror with it as
    // the workspace: refused before anything is asked of a registry.
    let from = format!("file://{}", disk.display());
    let workspace = format!("file://{}", disk.display());
    let blocked = site.blocking_registries_conf();
    for arguments in [
        ["--from", from.as_str()],
        ["--workspace", workspace.as_str()],
    ] {
        let output = site.ferry(
            "cache",
            &[
                "mirror",
                "-c",
                &config,
                "--registries-conf",
                &blocked,
                arguments[0],
                arguments[1],
                "docker://127.0.0.1:9/mirror",
            ],
        );
        assert_eq!(output.status.code(), Some(1), "{}", text(&output));
        assert!(text(&output).contains(&busy), "{}", text(&output));
    }

    // Released, the workspace is free again.
    drop(held);
    let mirrored = site.mirror_to_disk(&world, "mirror", &config, "disk", &[]);
    assert!(mirrored.status.success(), "{}", text(&mirrored));
}

/// `file:///` is no delivery folder: ferry would write `/working-dir`.
#[test]
fn the_filesystem_root_is_refused_as_a_delivery_folder() {
    let site = Site::new();
    let config = site.config("isc.yaml", HELLO);
    let blocked = site.blocking_registries_conf();
    for arguments in [
        vec!["mirror", "--dry-run", "file:///"],
        vec!["plan", "file:///"],
        vec![
            "mirror",
            "--from",
            "file:///",
            "docker://127.0.0.1:9/mirror",
        ],
    ] {
        let mut arguments = arguments;
        arguments.splice(1..1, ["-c", &config, "--registries-conf", &blocked]);
        let output = site.ferry("cache", &arguments);
        assert_eq!(output.status.code(), Some(1), "{}", text(&output));
        assert!(
            text(&output).contains("names the filesystem root"),
            "{}",
            text(&output)
        );
    }
    assert!(!Path::new("/working-dir").exists());
}

/// Disk-to-mirror with a corrupt blob in its cache: the run names the
/// cache and the blob, and the rerun uses the delivery's good copy instead
/// of failing the same way every time.
#[test]
fn a_corrupt_cached_blob_is_named_and_the_delivery_copy_used_again() {
    let site = Site::new();
    let config = site.config("isc.yaml", HELLO);
    let world = World::start().unwrap();
    let expected = source_manifests(&world, &["quay.io/ferry-demo/hello:1.0"]);
    let mirrored = site.mirror_to_disk(&world, "mirror", &config, "disk", &[]);
    assert!(mirrored.status.success(), "{}", text(&mirrored));
    drop(world);
    let first = Registry::start(Flavour::PlainHttp, Storage::Empty).unwrap();
    let applied = site.disk_to_mirror(&config, "disk", &first, "enclave-cache");
    assert!(applied.status.success(), "{}", text(&applied));

    // Flip one byte of the image's layer in the cache, keeping its size.
    let manifest: serde_json::Value = serde_json::from_slice(&expected[0].1).unwrap();
    let digest = manifest["layers"][0]["digest"]
        .as_str()
        .expect("hello is a single-manifest image with a layer")
        .to_owned();
    let layer = site.path(&format!(
        "enclave-cache/blobs/sha256/{}",
        digest.trim_start_matches("sha256:")
    ));
    let mut bytes = std::fs::read(&layer).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    std::fs::write(&layer, bytes).unwrap();

    let second = Registry::start(Flavour::PlainHttp, Storage::Empty).unwrap();
    let failed = site.disk_to_mirror(&config, "disk", &second, "enclave-cache");
    let output = text(&failed);
    assert_eq!(failed.status.code(), Some(8), "{output}");
    assert!(
        output.contains(&format!(
            "the copy of blob {digest} in the cache {} is corrupt",
            site.path("enclave-cache").display()
        )),
        "{output}"
    );
    assert!(
        output.contains("in the folder, and its good copy is imported again"),
        "{output}"
    );
    // Caught while the cached file streamed out, naming it, before the
    // registry could refuse the upload.
    assert!(
        output.contains(&format!("the cached blob {} hashes to", layer.display())),
        "{output}"
    );
    assert!(!output.contains("DIGEST_INVALID"), "{output}");
    let again = site.disk_to_mirror(&config, "disk", &second, "enclave-cache");
    assert!(again.status.success(), "{}", text(&again));
    assert_mirrored(&second, &expected);
    // $FERRY_CACHE_DIR names the cache itself (--cache-dir a base folder).
    let verified = site.ferry("enclave-cache", &["cache", "verify"]);
    assert!(verified.status.success(), "{}", text(&verified));
}

/// Temporary files a killed run left in the cache's `tmp/` are counted by
/// `ferry cache verify` and `ferry cache prune --dry-run`, and removed by
/// the next run.
#[test]
fn temporary_files_of_killed_runs_are_counted_and_cleaned() {
    let site = Site::new();
    let config = site.config("isc.yaml", HELLO);
    let world = World::start().unwrap();
    let cache = site.path("cache");
    std::fs::create_dir_all(cache.join("tmp")).unwrap();
    let leftover = cache.join("tmp/0123abcd-killed");
    std::fs::write(&leftover, b"half a blob").unwrap();

    // `site.ferry("cache", ...)` names the cache with $FERRY_CACHE_DIR.
    let verify = site.ferry("cache", &["cache", "verify"]);
    assert!(verify.status.success(), "{}", text(&verify));
    assert!(
        text(&verify).contains("1 temporary files left by interrupted runs"),
        "{}",
        text(&verify)
    );
    let prune = site.ferry("cache", &["cache", "prune", "--dry-run"]);
    assert!(prune.status.success(), "{}", text(&prune));
    assert!(
        text(&prune).contains("1 temporary files of interrupted runs would be cleaned"),
        "{}",
        text(&prune)
    );
    assert!(leftover.is_file(), "counting removes nothing");

    let mirrored = site.mirror_to_disk(&world, "mirror", &config, "disk", &[]);
    assert!(mirrored.status.success(), "{}", text(&mirrored));
    assert!(
        text(&mirrored).contains("removed 1 temporary files that interrupted runs left"),
        "{}",
        text(&mirrored)
    );
    assert!(!leftover.exists());
    assert_eq!(std::fs::read_dir(cache.join("tmp")).unwrap().count(), 0);
}

/// When no image of the image set could be read, mirror-to-disk says so,
/// not that everything was shipped in an earlier delivery.
#[test]
fn nothing_resolved_is_not_called_shipped_before() {
    let site = Site::new();
    let config = site.config(
        "isc.yaml",
        "  - name: quay.io/ferry-demo/no-such-image:1.0\n",
    );
    let world = World::start().unwrap();
    for command in ["plan", "mirror"] {
        let output = site.mirror_to_disk(&world, command, &config, "disk", &[]);
        let said = text(&output);
        assert!(!output.status.success(), "{said}");
        assert!(!said.contains("shipped in an earlier delivery"), "{said}");
        assert!(
            said.contains("no image of the image set could be read from its source (1 failed)"),
            "{said}"
        );
    }
}

#[test]
fn a_version_1_plan_file_is_refused_with_what_to_do() {
    // The format mirror-to-disk saved before plans became one document.
    let site = Site::new();
    let config = site.config("isc.yaml", HELLO);
    let plan_file = site.path("old.plan.json");
    std::fs::write(
        &plan_file,
        serde_json::json!({
            "version": 1,
            "config": config,
            "config_text": std::fs::read_to_string(&config).unwrap(),
            "destination": format!("file://{}", site.path("disk").display()),
            "workspace": "",
            "from": "",
            "state_fingerprint": "",
            "images": [],
            "action_keys": [],
            "plan": {}
        })
        .to_string(),
    )
    .unwrap();
    let applied = site.ferry("cache", &["apply", &plan_file.display().to_string()]);
    assert_eq!(applied.status.code(), Some(1), "{}", text(&applied));
    assert!(
        text(&applied).contains("is a version 1 plan")
            && text(&applied).contains("run `ferry plan` again"),
        "{}",
        text(&applied)
    );
    assert!(!site.path("disk").exists(), "nothing was written");
}

#[test]
fn a_plan_file_whose_top_digest_is_not_a_digest_is_refused_naming_it() {
    let site = Site::new();
    let config = site.config("isc.yaml", HELLO);
    let world = World::start().unwrap();
    let plan_file = site.path("edited.plan.json");
    let plan_argument = plan_file.display().to_string();
    let planned = site.mirror_to_disk(&world, "plan", &config, "disk", &["--out", &plan_argument]);
    assert!(planned.status.success(), "{}", text(&planned));
    // Someone edits the saved plan's image to name a tag.
    let mut document: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&plan_file).unwrap()).unwrap();
    let top = &mut document["apply"]["images"][0]["top"];
    assert!(
        top.as_str()
            .is_some_and(|digest| digest.starts_with("sha256:")),
        "{document}"
    );
    *top = "sha256:latest".into();
    std::fs::write(&plan_file, document.to_string()).unwrap();
    let applied = site.ferry("cache", &["apply", &plan_argument]);
    assert_eq!(applied.status.code(), Some(1), "{}", text(&applied));
    assert!(
        text(&applied).contains(&format!(
            "error: {plan_argument} is not a ferry plan: the top digest `sha256:latest` of a planned image is not a digest: a sha256 digest has 64 hex digits, this one has 6"
        )),
        "{}",
        text(&applied)
    );
    assert!(
        segments(&site.path("disk")).is_empty(),
        "no delivery was written"
    );
}

#[test]
fn trust_state_plans_the_next_delivery_with_every_source_stopped() {
    let site = Site::new();
    let config = site.config("isc.yaml", HELLO);
    let world = World::start().unwrap();
    let mirrored = site.mirror_to_disk(&world, "mirror", &config, "disk", &[]);
    assert!(mirrored.status.success(), "{}", text(&mirrored));
    // The world's registries.conf outlives the world: its sources now
    // answer nothing.
    let registries = site.path("world-registries.conf");
    std::fs::copy(world.registries_conf(), &registries).unwrap();
    drop(world);
    let target = format!("file://{}", site.path("disk").display());
    let plan = |extra: &[&str]| {
        let mut arguments = vec!["plan", "-c", &config, "--registries-conf"];
        let registries = registries.display().to_string();
        arguments.push(&registries);
        arguments.extend_from_slice(extra);
        arguments.push(&target);
        site.ferry("cache", &arguments)
    };
    // The default plan asks the sources, and cannot.
    let asked = plan(&["--detailed-exitcode", "--retry-times", "0"]);
    assert_eq!(asked.status.code(), Some(1), "{}", text(&asked));
    // --trust-state reuses what the mirror run resolved.
    let trusted = plan(&["--trust-state", "--detailed-exitcode"]);
    assert_eq!(trusted.status.code(), Some(0), "{}", text(&trusted));
    assert!(
        text(&trusted).contains("Nothing to deliver: every blob, manifest and image of the image set was shipped in an earlier delivery."),
        "{}",
        text(&trusted)
    );
}

#[test]
fn verify_re_hashes_the_cached_blobs_a_delivery_packs_and_fetches_a_corrupt_one_again() {
    let site = Site::new();
    let config = site.config("isc.yaml", HELLO);
    let world = World::start().unwrap();
    let expected = source_manifests(&world, &["quay.io/ferry-demo/hello:1.0"]);
    // A first workspace fills the cache the second one shares.
    let mirrored = site.mirror_to_disk(&world, "mirror", &config, "first", &[]);
    assert!(mirrored.status.success(), "{}", text(&mirrored));
    let manifest: serde_json::Value = serde_json::from_slice(&expected[0].1).unwrap();
    let digest = manifest["layers"][0]["digest"]
        .as_str()
        .expect("hello is a single-manifest image with a layer")
        .to_owned();
    let hex = digest.trim_start_matches("sha256:").to_owned();
    let layer = site.path(&format!("cache/blobs/sha256/{hex}"));
    let mut bytes = std::fs::read(&layer).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    std::fs::write(&layer, &bytes).unwrap();
    let fetches = |output: &Output| -> u64 {
        let document: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
        // Zero counts are left out of the document.
        document["plan"]["totals"]["blobs_to_fetch"]
            .as_u64()
            .unwrap_or(0)
    };

    let trusting = site.mirror_to_disk(&world, "plan", &config, "second", &["--format", "json"]);
    assert!(trusting.status.success(), "{}", text(&trusting));
    assert_eq!(
        fetches(&trusting),
        0,
        "without --verify the cache is trusted"
    );
    let verified = site.mirror_to_disk(
        &world,
        "plan",
        &config,
        "second",
        &["--verify", "--format", "json"],
    );
    assert!(verified.status.success(), "{}", text(&verified));
    assert_eq!(fetches(&verified), 1, "{}", text(&verified));
    assert!(
        text(&verified).contains(&format!("the copy of blob {digest} in the cache")),
        "{}",
        text(&verified)
    );
    assert_eq!(
        std::fs::read(&layer).unwrap(),
        bytes,
        "a plan changes no cache"
    );

    let repaired = site.mirror_to_disk(&world, "mirror", &config, "second", &["--verify"]);
    assert!(repaired.status.success(), "{}", text(&repaired));
    let cached = std::fs::read(&layer).unwrap();
    assert_eq!(hex::encode(sha2::Sha256::digest(&cached)), hex);
    let checked = site.ferry(
        "cache",
        &[
            "verify",
            &format!("file://{}", site.path("second").display()),
        ],
    );
    assert!(checked.status.success(), "{}", text(&checked));
}
