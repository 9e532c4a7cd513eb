//! Deterministic image building blocks: tar layers, image configs and the
//! four manifest kinds (OCI manifest and index, Docker schema2 manifest and
//! manifest list), with exact sizes and digests. Same input, same bytes.

use serde_json::{Value, json};

use crate::content::{Content, sha256_digest};

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar";
pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
pub const DOCKER_LAYER: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";

/// A small, fast, seeded pseudo-random generator (splitmix64), so generated
/// bytes are the same on every machine.
pub struct Random {
    state: u64,
}

impl Random {
    pub fn new(seed: u64) -> Self {
        Random { state: seed }
    }

    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    pub fn fill(&mut self, buffer: &mut [u8]) {
        for chunk in buffer.chunks_mut(8) {
            let bytes = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&bytes[..chunk.len()]);
        }
    }
}

/// Turns a name into a seed (FNV-1a), so each file's bytes depend on its name.
pub fn seed_of(name: &str) -> u64 {
    name.bytes().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Files of a layer: path → contents. Sorted on write.
#[derive(Clone, Debug, Default)]
pub struct LayerFiles {
    files: Vec<(String, Vec<u8>)>,
}

impl LayerFiles {
    pub fn new() -> Self {
        LayerFiles::default()
    }

    pub fn file(mut self, path: &str, contents: impl Into<Vec<u8>>) -> Self {
        self.files.push((path.to_owned(), contents.into()));
        self
    }

    /// A file of `size` pseudo-random bytes seeded by `seed_name`.
    pub fn random_file(self, path: &str, size: usize, seed_name: &str) -> Self {
        let mut bytes = vec![0; size];
        Random::new(seed_of(seed_name)).fill(&mut bytes);
        self.file(path, bytes)
    }

    /// The uncompressed tar: sorted entries, mtime 0, uid/gid 0, mode 0644,
    /// parent directories included.
    pub fn tar(&self) -> Vec<u8> {
        let mut files = self.files.clone();
        files.sort_by(|a, b| a.0.cmp(&b.0));
        let mut directories: Vec<String> = Vec::new();
        for (path, _) in &files {
            let mut prefix = String::new();
            let parts: Vec<&str> = path.split('/').collect();
            for part in &parts[..parts.len() - 1] {
                prefix.push_str(part);
                prefix.push('/');
                if !directories.contains(&prefix) {
                    directories.push(prefix.clone());
                }
            }
        }
        directories.sort();
        let mut builder = tar::Builder::new(Vec::new());
        builder.mode(tar::HeaderMode::Deterministic);
        for directory in &directories {
            let mut header = tar::Header::new_ustar();
            header.set_entry_type(tar::EntryType::Directory);
            header.set_mode(0o755);
            header.set_mtime(0);
            header.set_uid(0);
            header.set_gid(0);
            header.set_size(0);
            builder
                .append_data(&mut header, directory, std::io::empty())
                .expect("tar into memory");
        }
        for (path, contents) in &files {
            let mut header = tar::Header::new_ustar();
            header.set_entry_type(tar::EntryType::Regular);
            header.set_mode(0o644);
            header.set_mtime(0);
            header.set_uid(0);
            header.set_gid(0);
            header.set_size(contents.len() as u64);
            builder
                .append_data(&mut header, path, contents.as_slice())
                .expect("tar into memory");
        }
        builder.into_inner().expect("tar into memory")
    }
}

/// gzip at level 6 with a fixed header (no name, mtime 0): the same bytes
/// in every build (see `crate::gzip`).
pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    crate::gzip::gzip(bytes, crate::gzip::Level::Default)
}

/// A descriptor as manifests carry it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Descriptor {
    pub media_type: String,
    pub digest: String,
    pub size: u64,
}

impl Descriptor {
    fn json(&self) -> Value {
        json!({"mediaType": self.media_type, "digest": self.digest, "size": self.size})
    }
}

/// The manifest format family of an image.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Oci,
    Docker,
}

/// A layer added to content: its descriptor and the digest of its
/// uncompressed tar (the config's diff_id).
#[derive(Clone, Debug)]
pub struct Layer {
    pub descriptor: Descriptor,
    pub diff_id: String,
}

/// Adds a layer (gzip-compressed when `compressed`) to `content`.
pub fn add_layer(
    content: &mut Content,
    files: &LayerFiles,
    format: Format,
    compressed: bool,
) -> Layer {
    let tar = files.tar();
    let diff_id = sha256_digest(&tar);
    let (bytes, media_type) = match (format, compressed) {
        (Format::Oci, false) => (tar, OCI_LAYER),
        (Format::Oci, true) => (gzip(&tar), OCI_LAYER_GZIP),
        (Format::Docker, _) => (gzip(&tar), DOCKER_LAYER),
    };
    let size = bytes.len() as u64;
    let digest = content.add_blob(bytes);
    Layer {
        descriptor: Descriptor {
            media_type: media_type.to_owned(),
            digest,
            size,
        },
        diff_id,
    }
}

/// An image for one platform: its manifest's descriptor.
#[derive(Clone, Debug)]
pub struct Image {
    pub manifest: Descriptor,
    pub architecture: String,
    pub os: String,
}

/// Builds a config and manifest over `layers` and adds them to `content`.
pub fn add_image(
    content: &mut Content,
    format: Format,
    architecture: &str,
    labels: &[(&str, &str)],
    layers: &[Layer],
) -> Image {
    let label_map: serde_json::Map<String, Value> = labels
        .iter()
        .map(|(key, value)| ((*key).to_owned(), Value::String((*value).to_owned())))
        .collect();
    let config = json!({
        "architecture": architecture,
        "os": "linux",
        "config": {"Labels": label_map, "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]},
        "rootfs": {"type": "layers", "diff_ids": layers.iter().map(|l| l.diff_id.clone()).collect::<Vec<_>>()},
        "history": layers.iter().map(|_| json!({"created_by": "ferry test world"})).collect::<Vec<_>>(),
    });
    let config_bytes = serde_json::to_vec(&config).expect("JSON into memory");
    let config_size = config_bytes.len() as u64;
    let config_digest = content.add_blob(config_bytes);
    let (manifest_type, config_type) = match format {
        Format::Oci => (OCI_MANIFEST, OCI_CONFIG),
        Format::Docker => (DOCKER_MANIFEST, DOCKER_CONFIG),
    };
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": manifest_type,
        "config": {"mediaType": config_type, "digest": config_digest, "size": config_size},
        "layers": layers.iter().map(|l| l.descriptor.json()).collect::<Vec<_>>(),
    });
    let bytes = serde_json::to_vec_pretty(&manifest).expect("JSON into memory");
    let size = bytes.len() as u64;
    let digest = content.add_manifest(manifest_type, bytes);
    Image {
        manifest: Descriptor {
            media_type: manifest_type.to_owned(),
            digest,
            size,
        },
        architecture: architecture.to_owned(),
        os: "linux".to_owned(),
    }
}

/// Builds an OCI index or Docker manifest list over `images`.
pub fn add_index(content: &mut Content, format: Format, images: &[Image]) -> Descriptor {
    let media_type = match format {
        Format::Oci => OCI_INDEX,
        Format::Docker => DOCKER_LIST,
    };
    let manifests: Vec<Value> = images
        .iter()
        .map(|image| {
            let mut entry = image.manifest.json();
            entry["platform"] = json!({"architecture": image.architecture, "os": image.os});
            entry
        })
        .collect();
    let index = json!({"schemaVersion": 2, "mediaType": media_type, "manifests": manifests});
    let bytes = serde_json::to_vec_pretty(&index).expect("JSON into memory");
    let size = bytes.len() as u64;
    let digest = content.add_manifest(media_type, bytes);
    Descriptor {
        media_type: media_type.to_owned(),
        digest,
        size,
    }
}

/// Adds an OCI manifest with arbitrary config and layer descriptors (for
/// artifacts such as cosign signatures).
pub fn add_artifact(
    content: &mut Content,
    config: (&str, Vec<u8>),
    layers: &[(&str, Vec<u8>, Value)],
) -> Descriptor {
    let config_size = config.1.len() as u64;
    let config_digest = content.add_blob(config.1);
    let layer_json: Vec<Value> = layers
        .iter()
        .map(|(media_type, bytes, annotations)| {
            let size = bytes.len() as u64;
            let digest = content.add_blob(bytes.clone());
            json!({"mediaType": media_type, "digest": digest, "size": size, "annotations": annotations})
        })
        .collect();
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": config.0, "digest": config_digest, "size": config_size},
        "layers": layer_json,
    });
    let bytes = serde_json::to_vec_pretty(&manifest).expect("JSON into memory");
    let size = bytes.len() as u64;
    let digest = content.add_manifest(OCI_MANIFEST, bytes);
    Descriptor {
        media_type: OCI_MANIFEST.to_owned(),
        digest,
        size,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tar_is_deterministic_and_sorted() {
        let a = LayerFiles::new().file("b/x", "1").file("a/y", "2").tar();
        let b = LayerFiles::new().file("a/y", "2").file("b/x", "1").tar();
        assert_eq!(a, b);
        let mut archive = tar::Archive::new(a.as_slice());
        let names: Vec<String> = archive
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["a/", "b/", "a/y", "b/x"]);
    }

    #[test]
    fn gzip_is_deterministic() {
        assert_eq!(gzip(b"hello"), gzip(b"hello"));
    }

    #[test]
    fn random_is_seeded() {
        let mut a = [0u8; 32];
        let mut b = [0u8; 32];
        Random::new(7).fill(&mut a);
        Random::new(7).fill(&mut b);
        assert_eq!(a, b);
        Random::new(8).fill(&mut b);
        assert_ne!(a, b);
    }
}
