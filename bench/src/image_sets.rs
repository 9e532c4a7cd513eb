//! The generated image sets the benchmarks mirror: deterministic content
//! built with the test world's image builder (same seeds, same bytes, same
//! digests on every machine), published once into the world cache and
//! served read-only by a loopback `docker-registry`.
//!
//! Every layer is random (incompressible) data in a tar, wrapped in gzip
//! *stored* blocks: a valid `tar+gzip` blob that costs nothing to build.
//! Layers must be gzip: skopeo compresses uncompressed layers on the way to
//! a registry, which would change their digests and make the copies
//! differ from the source.

use std::collections::BTreeMap;

use ferry_testworld::content::{Content, sha256_digest};
use ferry_testworld::error::{Context, Result};
use ferry_testworld::gzip::{Level, gzip};
use ferry_testworld::image_builder::{
    Descriptor, Format, Layer, LayerFiles, OCI_LAYER_GZIP, add_image,
};
use ferry_testworld::world::{PublishedStorage, cache_root, published_storage};

/// The public host every benchmark image is published under (reached
/// through a generated `registries.conf`, as in the test world).
pub const HOST: &str = "quay.io";

const MEBIBYTE: usize = 1024 * 1024;

/// One tagged image of a set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SetImage {
    /// Repository path below the host, e.g. `ferry-bench-large/app-07`.
    pub repository: String,
    pub tag: String,
    /// Digest of the image's manifest.
    pub digest: String,
}

impl SetImage {
    /// The public reference a configuration names: `quay.io/<repository>:<tag>`.
    pub fn public_reference(&self) -> String {
        format!("{HOST}/{}:{}", self.repository, self.tag)
    }

    /// The repository's name inside the source registry: `quay.io/<repository>`.
    pub fn source_repository(&self) -> String {
        format!("{HOST}/{}", self.repository)
    }
}

/// A generated set of images and the content behind it.
#[derive(Debug)]
pub struct ImageSet {
    /// Short name, for output.
    pub name: String,
    /// The namespace every repository of the set lives in (`ferry-bench-large`).
    pub namespace: String,
    pub content: Content,
    pub images: Vec<SetImage>,
    /// Bytes of every distinct blob (layers and configs).
    pub unique_blob_bytes: u64,
}

impl ImageSet {
    /// Publishes the set into the world cache (built once; later runs find
    /// it), then drops the blob bytes this process no longer needs. The
    /// manifests stay: they are what the destinations are checked against.
    pub fn publish(&mut self) -> Result<PublishedStorage> {
        let storage = published_storage(&self.content, &cache_root())
            .context(|| format!("publishing the {} image set", self.name))?;
        self.content.blobs = BTreeMap::new();
        Ok(storage)
    }

    /// The exact manifest bytes of an image.
    pub fn manifest_bytes(&self, image: &SetImage) -> Option<&[u8]> {
        self.content
            .manifests
            .get(&image.digest)
            .map(|manifest| manifest.bytes.as_slice())
    }

    /// Source repository (`quay.io/<repository>`) → its tags, in order.
    pub fn tags_by_repository(&self) -> BTreeMap<String, Vec<String>> {
        let mut repositories: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for image in &self.images {
            repositories
                .entry(image.source_repository())
                .or_default()
                .push(image.tag.clone());
        }
        repositories
    }

    /// About `count` images spread evenly over the set, first and last
    /// included (all of them when the set is smaller).
    pub fn sample(&self, count: usize) -> Vec<&SetImage> {
        let total = self.images.len();
        if count == 0 || total == 0 {
            return Vec::new();
        }
        if count >= total {
            return self.images.iter().collect();
        }
        let step = (total - 1) as f64 / (count.max(2) - 1) as f64;
        let mut indices: Vec<usize> = (0..count.max(2))
            .map(|position| ((position as f64 * step).round() as usize).min(total - 1))
            .collect();
        indices.dedup();
        indices
            .into_iter()
            .map(|index| &self.images[index])
            .collect()
    }
}

/// Adds a layer whose blob is `files` as a tar wrapped in gzip stored
/// blocks (no compression work; see the module docs).
pub fn add_stored_gzip_layer(content: &mut Content, files: &LayerFiles) -> Layer {
    let tar = files.tar();
    let diff_id = sha256_digest(&tar);
    let blob = gzip(&tar, Level::Stored);
    let size = blob.len() as u64;
    let digest = content.add_blob(blob);
    Layer {
        descriptor: Descriptor {
            media_type: OCI_LAYER_GZIP.to_owned(),
            digest,
            size,
        },
        diff_id,
    }
}

/// A layer of one random file of `bytes` bytes, seeded by `seed_name`.
pub fn random_layer(content: &mut Content, path: &str, bytes: usize, seed_name: &str) -> Layer {
    add_stored_gzip_layer(
        content,
        &LayerFiles::new().random_file(path, bytes, seed_name),
    )
}

fn finish(name: &str, namespace: &str, content: Content, images: Vec<SetImage>) -> ImageSet {
    let unique_blob_bytes = content.blobs.values().map(|blob| blob.len() as u64).sum();
    ImageSet {
        name: name.to_owned(),
        namespace: namespace.to_owned(),
        content,
        images,
        unique_blob_bytes,
    }
}

/// One image with a single layer of `layer_mebibytes` MiB, at
/// `quay.io/ferry-bench/big:1.0` (the transfer benchmark).
pub fn single_large_layer(layer_mebibytes: usize) -> ImageSet {
    let mut content = Content::default();
    let layer = random_layer(
        &mut content,
        "data/big.bin",
        layer_mebibytes * MEBIBYTE,
        "ferry-bench transfer layer",
    );
    let image = add_image(
        &mut content,
        Format::Oci,
        "amd64",
        &[("app", "big")],
        &[layer],
    );
    let image = SetImage {
        repository: "ferry-bench/big".to_owned(),
        tag: "1.0".to_owned(),
        digest: image.manifest.digest,
    };
    content.place(HOST, &image.repository, &image.digest, &[&image.tag]);
    finish("transfer", "ferry-bench", content, vec![image])
}

/// The large set: 60 images in 20 repositories (3 tags each). Every image
/// has the shared 40 MiB base layer 0, one of the shared 40 MiB base layers
/// 1 and 2 (alternating), and its own 3 MiB layer: 120 MiB of shared and
/// 180 MiB of own layers.
pub fn large() -> ImageSet {
    const NAMESPACE: &str = "ferry-bench-large";
    const REPOSITORIES: usize = 20;
    const TAGS: usize = 3;
    let mut content = Content::default();
    let bases: Vec<Layer> = (0..3)
        .map(|base| {
            random_layer(
                &mut content,
                &format!("base/{base}.bin"),
                40 * MEBIBYTE,
                &format!("ferry-bench large base {base}"),
            )
        })
        .collect();
    let mut images = Vec::new();
    for repository_index in 0..REPOSITORIES {
        let repository = format!("{NAMESPACE}/app-{repository_index:02}");
        for tag_index in 0..TAGS {
            let number = repository_index * TAGS + tag_index;
            let tag = format!("1.{tag_index}");
            let own = random_layer(
                &mut content,
                &format!("app/{number}.bin"),
                3 * MEBIBYTE,
                &format!("ferry-bench large image {number}"),
            );
            let runtime = bases[1 + number % 2].clone();
            let image = add_image(
                &mut content,
                Format::Oci,
                "amd64",
                &[("app", &repository), ("version", &tag)],
                &[bases[0].clone(), runtime, own],
            );
            content.place(HOST, &repository, &image.manifest.digest, &[&tag]);
            images.push(SetImage {
                repository: repository.clone(),
                tag,
                digest: image.manifest.digest,
            });
        }
    }
    finish("large", NAMESPACE, content, images)
}

/// `count` small images (a few KiB each: a shared 4 KiB base layer, an own
/// 2 KiB layer, a config) in repositories of `tags_per_repository` tags,
/// under `namespace`; `name` is for output.
pub fn small(name: &str, namespace: &str, count: usize, tags_per_repository: usize) -> ImageSet {
    let tags_per_repository = tags_per_repository.max(1);
    let mut content = Content::default();
    let base = random_layer(
        &mut content,
        "base/os.bin",
        4 * 1024,
        &format!("{namespace} base"),
    );
    let width = (count.div_ceil(tags_per_repository))
        .to_string()
        .len()
        .max(3);
    let mut images = Vec::with_capacity(count);
    for number in 0..count {
        let repository = format!("{namespace}/app-{:0width$}", number / tags_per_repository);
        let tag = format!("v{}", number % tags_per_repository);
        let own = random_layer(
            &mut content,
            &format!("app/{number}.bin"),
            2 * 1024,
            &format!("{namespace} image {number}"),
        );
        let image = add_image(
            &mut content,
            Format::Oci,
            "amd64",
            &[("app", &repository), ("version", &tag)],
            &[base.clone(), own],
        );
        content.place(HOST, &repository, &image.manifest.digest, &[&tag]);
        images.push(SetImage {
            repository,
            tag,
            digest: image.manifest.digest,
        });
    }
    finish(name, namespace, content, images)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_sets_are_deterministic_and_distinct() {
        let first = small("test", "ferry-bench-test", 25, 10);
        let again = small("test", "ferry-bench-test", 25, 10);
        assert_eq!(first.images, again.images);
        assert_eq!(first.images.len(), 25);
        let digests: std::collections::BTreeSet<&str> = first
            .images
            .iter()
            .map(|image| image.digest.as_str())
            .collect();
        assert_eq!(digests.len(), 25, "every image has its own manifest");
        assert_eq!(first.tags_by_repository().len(), 3);
        assert_eq!(
            first.images[24].public_reference(),
            "quay.io/ferry-bench-test/app-002:v4"
        );
        first.content.check_consistency().unwrap();
    }

    #[test]
    fn stored_gzip_layers_decompress_to_their_tar() {
        let mut content = Content::default();
        let files = LayerFiles::new().random_file("a.bin", 100_000, "seed");
        let layer = add_stored_gzip_layer(&mut content, &files);
        let blob = &content.blobs[&layer.descriptor.digest];
        let tar = ferry_testworld::content::gunzip(blob).unwrap();
        assert_eq!(sha256_digest(&tar), layer.diff_id);
        assert_eq!(blob.len() as u64, layer.descriptor.size);
    }

    #[test]
    fn samples_spread_over_the_set() {
        let set = small("sample", "ferry-bench-sample", 100, 10);
        let sample = set.sample(5);
        let numbers: Vec<&str> = sample
            .iter()
            .map(|image| image.repository.as_str())
            .collect();
        assert_eq!(sample.len(), 5);
        assert_eq!(sample[0], &set.images[0]);
        assert_eq!(sample[4], &set.images[99]);
        assert_eq!(numbers[2], "ferry-bench-sample/app-005");
        assert_eq!(set.sample(1000).len(), 100);
    }
}
