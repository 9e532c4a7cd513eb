//! Disk benchmark (issue 5): the sync benchmark's `large` set (60 images in
//! 20 repositories sharing three 40 MiB base layers, each with its own
//! 3 MiB layer) carried across an air gap by ferry and by skopeo, in the
//! same run, on 127.0.0.1:
//!
//! 1. mirror-to-disk: `ferry mirror -c isc.yaml file://DIR` (release
//!    binary, fresh cache and folder) against `skopeo sync --src yaml
//!    --dest dir` into a folder; archive bytes (the `mirror_NNNNNN.tar`
//!    segments) against the distinct blob bytes, and skopeo's folder, which
//!    stores every image's blobs again, shared layers included;
//! 2. disk-to-mirror with the source registry stopped: `ferry mirror --from
//!    file://DIR` (fresh cache, only the segment files carried into a new
//!    folder) against `skopeo sync --src dir --dest docker` of skopeo's
//!    folder, each into a fresh registry; `ferry verify` of the delivery is
//!    timed as well;
//! 3. a second delivery after adding three images (two new tags, one new
//!    repository, all on the shared bases) and retagging one: its size
//!    against the new distinct blob bytes, and skopeo's folder of the same
//!    additions; both tools then complete their mirrors from it;
//! 4. every image at ferry's destination (and a sample at skopeo's) is
//!    checked with `skopeo inspect --raw` against the source's manifest
//!    bytes; a difference stops the benchmark.
//!
//! Every timed run is under GNU time for its peak resident memory. Goals:
//! each delivery within 1% + 64 KiB of the distinct blob bytes it carries
//! (manifests and metadata count as overhead), and ferry's peak memory at
//! most 100 MiB in every run (issue 3's cap: no blob is held in memory).

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use ferry_bench::image_sets::{self, HOST, ImageSet, SetImage};
use ferry_bench::measure::{Logs, Run};
use ferry_bench::report::{self, Goal};
use ferry_bench::tools::{self, FerryJob};
use ferry_testworld::content::Content;
use ferry_testworld::error::{Context, Error, Result};
use ferry_testworld::image_builder::{Descriptor, Format, Layer, add_image};

const KIBIBYTE: u64 = 1024;
const MEBIBYTE: u64 = 1024 * 1024;
/// Archive bytes may exceed the distinct blob bytes by this share...
const OVERHEAD_SHARE: f64 = 0.01;
/// ...plus this many bytes.
const OVERHEAD_BYTES: u64 = 64 * KIBIBYTE;
/// ferry's peak resident memory cap (issue 3).
const MEMORY_CAP_MEBIBYTES: f64 = 100.0;
/// Images checked at skopeo's destination (it is the reference, not under test).
const SKOPEO_SAMPLE: usize = 10;
/// Size of each added image's own layer (as the set's own layers).
const ADDED_LAYER_BYTES: usize = 3 * 1024 * 1024;

fn main() -> ExitCode {
    if std::env::args().len() > 1 {
        eprintln!("usage: disk (no arguments)");
        return ExitCode::from(2);
    }
    ferry_bench::finish(run())
}

/// The ferry command lines of the disk workflows, each with its own cache
/// and no credentials.
struct Ferry {
    binary: PathBuf,
    folder: PathBuf,
}

impl Ferry {
    fn command(&self, cache: &str) -> Command {
        let mut command = Command::new(&self.binary);
        command
            .env("FERRY_CACHE_DIR", self.folder.join(cache))
            .env("REGISTRY_AUTH_FILE", self.folder.join("no-auth.json"));
        command
    }

    /// `ferry mirror -c CONFIG --registries-conf FILE file://DELIVERIES`,
    /// with the connected side's cache.
    fn mirror_to_disk(&self, job: &FerryJob, deliveries: &Path) -> Command {
        let mut command = self.command("connected-cache");
        command
            .arg("mirror")
            .arg("-c")
            .arg(job.config())
            .arg("--registries-conf")
            .arg(job.registries_conf())
            .arg(file_url(deliveries));
        command
    }

    /// `ferry mirror -c CONFIG --from file://DELIVERIES docker://DESTINATION`,
    /// with the disconnected side's cache.
    fn disk_to_mirror(&self, job: &FerryJob, deliveries: &Path, destination: &str) -> Command {
        let mut command = self.command("disconnected-cache");
        command
            .arg("mirror")
            .arg("-c")
            .arg(job.config())
            .arg("--from")
            .arg(file_url(deliveries))
            .arg("--dest-tls-verify=false")
            .arg(format!("docker://{destination}"));
        command
    }

    /// `ferry verify file://DELIVERIES`.
    fn verify(&self, deliveries: &Path) -> Command {
        let mut command = self.command("verify-cache");
        command.arg("verify").arg(file_url(deliveries));
        command
    }
}

fn file_url(folder: &Path) -> String {
    format!("file://{}", folder.display())
}

/// `skopeo sync --src yaml --dest dir YAML FOLDER`: one folder per image
/// (`FOLDER/<repository's last component>:<tag>`), each with all its blobs.
fn skopeo_sync_to_dir(yaml: &Path, folder: &Path) -> Command {
    let mut command = Command::new("skopeo");
    command
        .args(["sync", "--src", "yaml", "--dest", "dir"])
        .arg(yaml)
        .arg(folder);
    command
}

/// `skopeo sync --src dir --dest docker FOLDER DESTINATION`: every image
/// folder under FOLDER to `DESTINATION/<folder name>`.
fn skopeo_sync_from_dir(folder: &Path, destination: &str) -> Command {
    let mut command = Command::new("skopeo");
    command
        .args([
            "sync",
            "--src",
            "dir",
            "--dest",
            "docker",
            "--dest-tls-verify=false",
        ])
        .arg(folder)
        .arg(destination);
    command
}

/// The delivery segments (`mirror_NNNNNN.tar`) in `folder`, in order.
fn segments(folder: &Path) -> Result<Vec<PathBuf>> {
    let mut found = Vec::new();
    for entry in fs::read_dir(folder).context(|| format!("listing {}", folder.display()))? {
        let entry = entry.context(|| format!("listing {}", folder.display()))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with("mirror_") && name.ends_with(".tar") {
            found.push(entry.path());
        }
    }
    found.sort();
    Ok(found)
}

fn file_bytes(paths: &[PathBuf]) -> Result<u64> {
    let mut total = 0;
    for path in paths {
        total += fs::metadata(path)
            .context(|| format!("reading {}", path.display()))?
            .len();
    }
    Ok(total)
}

/// Bytes of every file under `root`.
fn folder_bytes(root: &Path) -> Result<u64> {
    let mut total = 0;
    let mut folders = vec![root.to_path_buf()];
    while let Some(folder) = folders.pop() {
        for entry in fs::read_dir(&folder).context(|| format!("listing {}", folder.display()))? {
            let entry = entry.context(|| format!("listing {}", folder.display()))?;
            let metadata = entry
                .metadata()
                .context(|| format!("reading {}", entry.path().display()))?;
            if metadata.is_dir() {
                folders.push(entry.path());
            } else {
                total += metadata.len();
            }
        }
    }
    Ok(total)
}

/// Carries segment files into the disconnected side's folder (hard links:
/// the same bytes, without spending the benchmark's time on a copy).
fn carry(segments: &[PathBuf], into: &Path) -> Result<()> {
    fs::create_dir_all(into).context(|| format!("creating {}", into.display()))?;
    for segment in segments {
        let name = segment
            .file_name()
            .ok_or_else(|| Error::new(format!("{} has no file name", segment.display())))?;
        let target = into.join(name);
        if fs::hard_link(segment, &target).is_err() {
            fs::copy(segment, &target)
                .context(|| format!("copying {} to {}", segment.display(), target.display()))?;
        }
    }
    Ok(())
}

/// Layer `index` of `image` as the image builder describes it (descriptor
/// from the manifest, diff ID from the config), to build on it again.
fn layer_of(content: &Content, image: &SetImage, index: usize) -> Result<Layer> {
    let manifest = content
        .manifests
        .get(&image.digest)
        .ok_or_else(|| Error::new(format!("{} is not in the set", image.digest)))?;
    let manifest: serde_json::Value = serde_json::from_slice(&manifest.bytes)
        .context(|| format!("reading the manifest of {}", image.public_reference()))?;
    let descriptor = &manifest["layers"][index];
    let config_digest = manifest["config"]["digest"].as_str().unwrap_or_default();
    let config = content
        .blobs
        .get(config_digest)
        .ok_or_else(|| Error::new(format!("the config of {} is missing", image.digest)))?;
    let config: serde_json::Value = serde_json::from_slice(config)
        .context(|| format!("reading the config of {}", image.public_reference()))?;
    let text = |value: &serde_json::Value| value.as_str().map(str::to_owned);
    match (
        text(&descriptor["mediaType"]),
        text(&descriptor["digest"]),
        descriptor["size"].as_u64(),
        text(&config["rootfs"]["diff_ids"][index]),
    ) {
        (Some(media_type), Some(digest), Some(size), Some(diff_id)) => Ok(Layer {
            descriptor: Descriptor {
                media_type,
                digest,
                size,
            },
            diff_id,
        }),
        _ => Err(Error::new(format!(
            "layer {index} of {} is not fully described",
            image.public_reference()
        ))),
    }
}

fn find_image<'a>(set: &'a ImageSet, repository: &str, tag: &str) -> Result<&'a SetImage> {
    set.images
        .iter()
        .find(|image| image.repository == repository && image.tag == tag)
        .ok_or_else(|| Error::new(format!("{repository}:{tag} is not in the large set")))
}

/// The large set plus the second delivery's additions: new tags in two
/// repositories and a new repository, each on the set's shared base
/// layers with its own 3 MiB layer, and a new tag on an image already
/// shipped. Returns the grown set and the added images.
fn with_additions(mut set: ImageSet) -> Result<(ImageSet, Vec<SetImage>)> {
    let namespace = set.namespace.clone();
    let repository = |number: usize| format!("{namespace}/app-{number:02}");
    // Image 1.0 of app-00 stands on bases 0 and 1, image 1.1 on 0 and 2.
    let first = find_image(&set, &repository(0), "1.0")?.clone();
    let second = find_image(&set, &repository(0), "1.1")?.clone();
    let base = layer_of(&set.content, &first, 0)?;
    let runtimes = [
        layer_of(&set.content, &first, 1)?,
        layer_of(&set.content, &second, 1)?,
    ];
    let mut added = Vec::new();
    for (number, (repository, tag)) in [
        (repository(0), "1.3"),
        (repository(1), "1.3"),
        (repository(20), "1.0"),
    ]
    .into_iter()
    .enumerate()
    {
        let own = image_sets::random_layer(
            &mut set.content,
            &format!("app/added-{number}.bin"),
            ADDED_LAYER_BYTES,
            &format!("ferry-bench disk added image {number}"),
        );
        let image = add_image(
            &mut set.content,
            Format::Oci,
            "amd64",
            &[("app", &repository), ("version", tag)],
            &[base.clone(), runtimes[number % 2].clone(), own],
        );
        set.content
            .place(HOST, &repository, &image.manifest.digest, &[tag]);
        added.push(SetImage {
            repository,
            tag: tag.to_owned(),
            digest: image.manifest.digest,
        });
    }
    let retagged = find_image(&set, &repository(2), "1.2")?.clone();
    set.content
        .place(HOST, &retagged.repository, &retagged.digest, &["latest"]);
    added.push(SetImage {
        tag: "latest".to_owned(),
        ..retagged
    });
    set.images.extend(added.iter().cloned());
    set.unique_blob_bytes = set
        .content
        .blobs
        .values()
        .map(|blob| blob.len() as u64)
        .sum();
    set.name = format!("{}+{}", set.name, added.len());
    Ok((set, added))
}

/// One step both tools ran.
struct Step {
    what: String,
    /// Distinct blob bytes the step moves (for MiB/s).
    bytes: u64,
    ferry: Run,
    skopeo: Option<Run>,
}

/// One folder of carried content and what it holds.
struct Size {
    what: String,
    /// Which of ferry's deliveries it is (`None`: skopeo's folder).
    delivery: Option<u32>,
    bytes: u64,
    /// Distinct blob bytes it carries.
    unique: u64,
}

fn run() -> Result<()> {
    ferry_bench::preflight()?;
    let machine = ferry_bench::machine_note();
    let temporary = tempfile::Builder::new()
        .prefix("ferry-bench-disk-")
        .tempdir()
        .context(|| "creating a temporary folder".to_owned())?;
    let folder = temporary.path();
    let logs = Logs::new(&folder.join("logs"))?;
    let ferry = Ferry {
        binary: tools::ferry_binary()?,
        folder: folder.to_path_buf(),
    };

    let mut set = image_sets::large();
    let images = set.images.len();
    let repositories = set.tags_by_repository().len();
    let unique = set.unique_blob_bytes;
    let first_blobs: BTreeSet<String> = set.content.blobs.keys().cloned().collect();
    let source = ferry_bench::serve(&mut set)?;
    let ferry_destination = ferry_bench::destination()?;
    let skopeo_destination = ferry_bench::destination()?;
    // skopeo sync puts each image folder at DESTINATION/<folder name>
    // (`app-NN:TAG`): with the namespace as destination, names match ferry's.
    let skopeo_target = format!("{}/{}", skopeo_destination.host(), set.namespace);
    let job = FerryJob::new(
        ferry.binary.clone(),
        &folder.join("first"),
        &set,
        &source.host(),
        &ferry_destination.host(),
    )?;
    let yaml = folder.join("first/skopeo-sync.yaml");
    fs::write(&yaml, tools::skopeo_sync_yaml(&set, &source.host()))
        .context(|| format!("writing {}", yaml.display()))?;
    let deliveries = folder.join("connected/deliveries");
    let carried = folder.join("disconnected/deliveries");
    let skopeo_folder = folder.join("connected/skopeo-dir");
    let mut steps = Vec::new();
    let mut sizes = Vec::new();

    eprintln!("disk: ferry mirror-to-disk ({images} images)...");
    let ferry_to_disk = logs.run_with_peak(
        "ferry-mirror-to-disk-1",
        &ferry.mirror_to_disk(&job, &deliveries),
    )?;
    eprintln!("disk: skopeo sync --dest dir ({images} images)...");
    let skopeo_to_disk = logs.run_with_peak(
        "skopeo-sync-to-dir-1",
        &skopeo_sync_to_dir(&yaml, &skopeo_folder),
    )?;
    let first_segments = segments(&deliveries)?;
    sizes.push(Size {
        what: format!(
            "ferry delivery 1 ({} segment{})",
            first_segments.len(),
            if first_segments.len() == 1 { "" } else { "s" }
        ),
        delivery: Some(1),
        bytes: file_bytes(&first_segments)?,
        unique,
    });
    sizes.push(Size {
        what: "skopeo sync --dest dir folder".to_owned(),
        delivery: None,
        bytes: folder_bytes(&skopeo_folder)?,
        unique,
    });
    steps.push(Step {
        what: format!("mirror-to-disk ({images} images)"),
        bytes: unique,
        ferry: ferry_to_disk,
        skopeo: Some(skopeo_to_disk),
    });
    eprintln!("disk: ferry verify of delivery 1...");
    let verified = logs.run_with_peak("ferry-verify-1", &ferry.verify(&deliveries))?;

    // The disconnected side: no source, only the segment files.
    drop(source);
    carry(&first_segments, &carried)?;
    eprintln!("disk: ferry disk-to-mirror (source stopped)...");
    let ferry_to_mirror = logs.run_with_peak(
        "ferry-disk-to-mirror-1",
        &ferry.disk_to_mirror(&job, &carried, &ferry_destination.host()),
    )?;
    eprintln!("disk: skopeo sync --src dir (source stopped)...");
    let skopeo_to_mirror = logs.run_with_peak(
        "skopeo-sync-from-dir-1",
        &skopeo_sync_from_dir(&skopeo_folder, &skopeo_target),
    )?;
    steps.push(Step {
        what: "disk-to-mirror (source stopped)".to_owned(),
        bytes: unique,
        ferry: ferry_to_mirror,
        skopeo: Some(skopeo_to_mirror),
    });
    steps.push(Step {
        what: "ferry verify of delivery 1".to_owned(),
        bytes: unique,
        ferry: verified,
        skopeo: None,
    });
    eprintln!("disk: checking every image at ferry's destination...");
    let checked_first = tools::verify_destination(
        "ferry disk-to-mirror",
        &set,
        &ferry_destination.host(),
        &set.images.iter().collect::<Vec<_>>(),
    )?;
    tools::verify_destination(
        "skopeo sync --src dir",
        &set,
        &skopeo_destination.host(),
        &set.sample(SKOPEO_SAMPLE),
    )?;

    // Second delivery: the source gains three images and a tag.
    eprintln!("disk: adding images for the second delivery...");
    let (mut grown, added) = with_additions(image_sets::large())?;
    let new_unique: u64 = grown
        .content
        .blobs
        .iter()
        .filter(|(digest, _)| !first_blobs.contains(*digest))
        .map(|(_, blob)| blob.len() as u64)
        .sum();
    let source = ferry_bench::serve(&mut grown)?;
    let second_job = FerryJob::new(
        ferry.binary.clone(),
        &folder.join("second"),
        &grown,
        &source.host(),
        &ferry_destination.host(),
    )?;
    let added_set = ImageSet {
        name: "added".to_owned(),
        namespace: grown.namespace.clone(),
        content: Content::default(),
        images: added.clone(),
        unique_blob_bytes: new_unique,
    };
    let added_yaml = folder.join("second/skopeo-sync.yaml");
    fs::write(
        &added_yaml,
        tools::skopeo_sync_yaml(&added_set, &source.host()),
    )
    .context(|| format!("writing {}", added_yaml.display()))?;
    let skopeo_added_folder = folder.join("connected/skopeo-dir-added");
    let what = format!("delivery 2: {} images added, 1 retagged", added.len() - 1);
    eprintln!("disk: ferry mirror-to-disk, second delivery...");
    let ferry_to_disk = logs.run_with_peak(
        "ferry-mirror-to-disk-2",
        &ferry.mirror_to_disk(&second_job, &deliveries),
    )?;
    eprintln!("disk: skopeo sync --dest dir of the added images...");
    let skopeo_to_disk = logs.run_with_peak(
        "skopeo-sync-to-dir-2",
        &skopeo_sync_to_dir(&added_yaml, &skopeo_added_folder),
    )?;
    let second_segments: Vec<PathBuf> = segments(&deliveries)?
        .into_iter()
        .filter(|segment| !first_segments.contains(segment))
        .collect();
    sizes.push(Size {
        what: format!(
            "ferry delivery 2 ({} segment{})",
            second_segments.len(),
            if second_segments.len() == 1 { "" } else { "s" }
        ),
        delivery: Some(2),
        bytes: file_bytes(&second_segments)?,
        unique: new_unique,
    });
    sizes.push(Size {
        what: "skopeo sync --dest dir of the additions".to_owned(),
        delivery: None,
        bytes: folder_bytes(&skopeo_added_folder)?,
        unique: new_unique,
    });
    steps.push(Step {
        what: format!("{what}: mirror-to-disk"),
        bytes: new_unique,
        ferry: ferry_to_disk,
        skopeo: Some(skopeo_to_disk),
    });
    drop(source);
    carry(&second_segments, &carried)?;
    eprintln!("disk: ferry disk-to-mirror, second delivery (source stopped)...");
    let ferry_to_mirror = logs.run_with_peak(
        "ferry-disk-to-mirror-2",
        &ferry.disk_to_mirror(&second_job, &carried, &ferry_destination.host()),
    )?;
    eprintln!("disk: skopeo sync --src dir of the additions...");
    let skopeo_to_mirror = logs.run_with_peak(
        "skopeo-sync-from-dir-2",
        &skopeo_sync_from_dir(&skopeo_added_folder, &skopeo_target),
    )?;
    steps.push(Step {
        what: format!("{what}: disk-to-mirror"),
        bytes: new_unique,
        ferry: ferry_to_mirror,
        skopeo: Some(skopeo_to_mirror),
    });
    eprintln!("disk: checking every image at ferry's destination again...");
    let checked = tools::verify_destination(
        "ferry disk-to-mirror (second delivery)",
        &grown,
        &ferry_destination.host(),
        &grown.images.iter().collect::<Vec<_>>(),
    )?;
    tools::verify_destination(
        "skopeo sync --src dir (additions)",
        &grown,
        &skopeo_destination.host(),
        &added.iter().collect::<Vec<_>>(),
    )?;

    println!(
        "disk large: {images} images in {repositories} repositories, {:.1} MiB of distinct blobs, then {} more images and a retag ({:.1} MiB of new distinct blobs); registries on 127.0.0.1, ferry's release binary with fresh caches, source registry stopped for disk-to-mirror",
        mebibytes(unique),
        added.len() - 1,
        mebibytes(new_unique)
    );
    println!("{machine}");
    print_report(&steps, &sizes);
    println!(
        "checked: every image byte for byte at ferry's destination with skopeo inspect --raw ({checked_first} after delivery 1, {checked} after delivery 2); skopeo's destination sampled"
    );
    print_goals(&steps, &sizes);
    Ok(())
}

fn mebibytes(bytes: u64) -> f64 {
    bytes as f64 / MEBIBYTE as f64
}

/// How far `bytes` exceeds `unique`: `+N.N KiB`, or MiB when large.
fn excess(bytes: u64, unique: u64) -> String {
    let over = bytes as f64 - unique as f64;
    if over.abs() < (10 * MEBIBYTE) as f64 {
        format!("{:+.1} KiB", over / KIBIBYTE as f64)
    } else {
        format!("{:+.1} MiB", over / MEBIBYTE as f64)
    }
}

fn allowed_bytes(unique: u64) -> f64 {
    unique as f64 * (1.0 + OVERHEAD_SHARE) + OVERHEAD_BYTES as f64
}

fn print_report(steps: &[Step], sizes: &[Size]) {
    let rate = |bytes: u64, run: &Run| format!("{:.1}", mebibytes(bytes) / run.seconds);
    let peak = |run: &Run| format!("{:.1}", run.peak_mebibytes());
    let dash = || "-".to_owned();
    let rows: Vec<Vec<String>> = steps
        .iter()
        .map(|step| {
            let ferry = &step.ferry;
            match &step.skopeo {
                Some(skopeo) => vec![
                    step.what.clone(),
                    report::seconds(ferry.seconds),
                    report::seconds(skopeo.seconds),
                    report::times(skopeo.seconds, ferry.seconds),
                    rate(step.bytes, ferry),
                    rate(step.bytes, skopeo),
                    peak(ferry),
                    peak(skopeo),
                ],
                None => vec![
                    step.what.clone(),
                    report::seconds(ferry.seconds),
                    dash(),
                    dash(),
                    rate(step.bytes, ferry),
                    dash(),
                    peak(ferry),
                    dash(),
                ],
            }
        })
        .collect();
    print!(
        "{}",
        report::table(
            &[
                "step",
                "ferry s",
                "skopeo s",
                "skopeo/ferry",
                "ferry MiB/s",
                "skopeo MiB/s",
                "ferry peak MiB",
                "skopeo peak MiB",
            ],
            &rows,
        )
    );
    println!(
        "(MiB/s: distinct blob MiB of the step / seconds; skopeo runs skopeo sync --src yaml --dest dir, then skopeo sync --src dir --dest docker)"
    );
    let rows: Vec<Vec<String>> = sizes
        .iter()
        .map(|size| {
            vec![
                size.what.clone(),
                size.bytes.to_string(),
                format!("{:.1}", mebibytes(size.bytes)),
                size.unique.to_string(),
                format!("{:.4}", size.bytes as f64 / size.unique as f64),
                excess(size.bytes, size.unique),
            ]
        })
        .collect();
    print!(
        "{}",
        report::table(
            &[
                "carried",
                "bytes",
                "MiB",
                "distinct blob bytes",
                "bytes/distinct",
                "over distinct",
            ],
            &rows,
        )
    );
}

fn print_goals(steps: &[Step], sizes: &[Size]) {
    for size in sizes {
        let Some(delivery) = size.delivery else {
            continue;
        };
        let allowed = allowed_bytes(size.unique);
        println!(
            "{}",
            Goal::new(
                format!(
                    "delivery {delivery}: archive bytes within 1% + 64 KiB of the distinct blob bytes it carries"
                ),
                format!(
                    "{} bytes for {} distinct, {:.4}x, {}; allowed up to {:.0}",
                    size.bytes,
                    size.unique,
                    size.bytes as f64 / size.unique as f64,
                    excess(size.bytes, size.unique),
                    allowed
                ),
                size.bytes as f64 <= allowed
            )
            .line()
        );
    }
    let highest = steps
        .iter()
        .map(|step| step.ferry.peak_mebibytes())
        .fold(0.0, f64::max);
    println!(
        "{}",
        Goal::new(
            format!(
                "ferry's peak memory at most {MEMORY_CAP_MEBIBYTES:.0} MiB in every disk run (issue 3's cap)"
            ),
            format!("highest {highest:.1} MiB"),
            highest <= MEMORY_CAP_MEBIBYTES
        )
        .line()
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layers_read_back_rebuild_the_same_image() {
        let set = image_sets::small("layers", "ferry-bench-layers", 2, 2);
        let image = &set.images[1];
        let layers = vec![
            layer_of(&set.content, image, 0).unwrap(),
            layer_of(&set.content, image, 1).unwrap(),
        ];
        let mut content = set.content.clone();
        let rebuilt = add_image(
            &mut content,
            Format::Oci,
            "amd64",
            &[("app", &image.repository), ("version", &image.tag)],
            &layers,
        );
        assert_eq!(rebuilt.manifest.digest, image.digest);
        assert!(layer_of(&set.content, image, 2).is_err());
    }

    #[test]
    fn only_segment_files_count_as_archive_bytes() {
        let folder = tempfile::tempdir().unwrap();
        fs::write(folder.path().join("mirror_000002.tar"), [0u8; 300]).unwrap();
        fs::write(folder.path().join("mirror_000001.tar"), [0u8; 200]).unwrap();
        fs::create_dir_all(folder.path().join("working-dir")).unwrap();
        fs::write(folder.path().join("working-dir/state.db"), [0u8; 50]).unwrap();
        let found = segments(folder.path()).unwrap();
        let names: Vec<String> = found
            .iter()
            .map(|path| path.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["mirror_000001.tar", "mirror_000002.tar"]);
        assert_eq!(file_bytes(&found).unwrap(), 500);
        assert_eq!(folder_bytes(folder.path()).unwrap(), 550);
        let carried = folder.path().join("carried");
        carry(&found, &carried).unwrap();
        assert_eq!(folder_bytes(&carried).unwrap(), 500);
    }

    #[test]
    fn the_allowance_is_one_percent_and_sixty_four_kibibytes() {
        assert_eq!(
            allowed_bytes(100 * MEBIBYTE),
            101.0 * MEBIBYTE as f64 + 65536.0
        );
        assert_eq!(excess(1024 + 2048, 1024), "+2.0 KiB");
        assert_eq!(excess(30 * MEBIBYTE, 10 * MEBIBYTE), "+20.0 MiB");
    }
}
