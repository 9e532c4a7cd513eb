//! The test world's gzip encoder: the same bytes on every machine and in
//! every build, whatever else the build links.
//!
//! Every digest of the world's gzip layers is committed in goldens (the
//! world's references, the catalog mapping, plans, deliveries), so the
//! compressed bytes must never change. flate2 cannot promise that: its
//! backend is chosen by Cargo features, which Cargo unifies over the whole
//! build, so one dependency that turns on another backend (rPGP turns on
//! `zlib-rs`) changes the bytes of every stream flate2 writes, here too.
//! So the deflate stream is made by `miniz_oxide` directly (the crate behind
//! flate2's default backend, which made every committed digest), and the
//! gzip wrapper around it is written here by hand: it is 18 bytes of fixed
//! layout (RFC 1952), and no well-kept crate writes it around a caller's
//! deflate stream. The output is byte for byte what
//! `flate2::GzBuilder::new().mtime(0)` wrote with its default backend: the
//! tests below hold the digests of flate2's output for inputs of every kind,
//! recorded by comparing the two byte for byte while flate2 had that backend
//! (commit "Test world gzip no longer depends on flate2's backend").

/// gzip's magic bytes, then the compression method (8: deflate).
const MAGIC_AND_METHOD: [u8; 3] = [0x1f, 0x8b, 8];
/// The operating-system byte: 255, "unknown", as flate2 writes it.
const OPERATING_SYSTEM_UNKNOWN: u8 = 255;

/// The compression levels the world uses. Only these two: their output is
/// proven identical to flate2's whatever way the input is fed; miniz_oxide's
/// fastest level (1) is not, its blocks depend on the caller's buffer sizes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    /// Level 0: stored blocks, no compression work (the benchmarks' layers).
    Stored,
    /// Level 6, zlib's default (the world's layers).
    Default,
}

impl Level {
    fn number(self) -> u8 {
        match self {
            Level::Stored => 0,
            Level::Default => 6,
        }
    }

    /// The header's XFL byte as flate2 sets it: 4 ("fastest") for level 1
    /// and below, stored included; 0 for the levels between 1 and 9.
    fn extra_flags(self) -> u8 {
        match self {
            Level::Stored => 4,
            Level::Default => 0,
        }
    }
}

/// The gzip stream of `bytes` at `level`, with a fixed header: no name, no
/// comment, no extra field, mtime 0.
pub fn gzip(bytes: &[u8], level: Level) -> Vec<u8> {
    let deflated = miniz_oxide::deflate::compress_to_vec(bytes, level.number());
    let mut stream = Vec::with_capacity(deflated.len() + 18);
    stream.extend_from_slice(&MAGIC_AND_METHOD);
    // Flags: none of name, comment, extra field, header CRC.
    stream.push(0);
    // Modification time: 0, "not available".
    stream.extend_from_slice(&0u32.to_le_bytes());
    stream.push(level.extra_flags());
    stream.push(OPERATING_SYSTEM_UNKNOWN);
    stream.extend_from_slice(&deflated);
    stream.extend_from_slice(&crc32fast::hash(bytes).to_le_bytes());
    // ISIZE: the input's length modulo 2^32 (RFC 1952), so the cast is meant.
    stream.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
    stream
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;
    use crate::content::sha256_digest;
    use crate::image_builder::{LayerFiles, Random};

    fn random(size: usize, seed: u64) -> Vec<u8> {
        let mut bytes = vec![0; size];
        Random::new(seed).fill(&mut bytes);
        bytes
    }

    /// Inputs of every kind the world compresses: empty, tiny, text that
    /// compresses well, random bytes larger than flate2's 32 KiB buffer and
    /// than deflate's window, and tar layers of several files.
    fn inputs() -> Vec<Vec<u8>> {
        let text: Vec<u8> = (0..20_000)
            .flat_map(|line| format!("line {line}: the quick brown fox\n").into_bytes())
            .collect();
        let mut mixed = random(70_000, 3);
        mixed.extend_from_slice(&text);
        mixed.extend(random(5_000, 4));
        vec![
            Vec::new(),
            b"hello".to_vec(),
            vec![0; 1 << 20],
            text,
            random(100_000, 1),
            random(3 << 20, 2),
            mixed,
            LayerFiles::new()
                .file("etc/os-release", "ID=world\n")
                .random_file("usr/bin/tool", 300_000, "tool")
                .file("usr/share/doc/README", "x".repeat(50_000))
                .tar(),
        ]
    }

    /// The digests of what `flate2::GzBuilder::new().mtime(0)` wrote for
    /// [`inputs`] with its default backend (flate2 1.1.11 on miniz_oxide
    /// 0.9.1), at level 0 and level 6: recorded by comparing this encoder
    /// with flate2 byte for byte while flate2 still had that backend.
    const FLATE2_DIGESTS: [(&str, &str); 8] = [
        (
            "sha256:81da0491c5af5635831f6a3febb5d9bfd66987ba3ecc42e58dc3d80938c25705",
            "sha256:ac73670af3abed54ac6fb4695131f4099be9fbe39d6076c5d0264a6bbdae9d83",
        ),
        (
            "sha256:1a3a1d5372fa205f79cd45cd36b05777ad880e3e1bc36154c886e0c429fc78eb",
            "sha256:2f69971adca9c6460ded512ce00fd7fda319816bbdd9251ffe1a103f44225f4e",
        ),
        (
            "sha256:13b9e7cb1ffc1ec72462e2e3602d9356048dbb954d1d1b8c1643a5636781b3ac",
            "sha256:fdb3f946159427c0be609e4e42b55489c20ff861d62e990d50bbea85064a52ae",
        ),
        (
            "sha256:deabfc30fae8905fd0ef612debbe859c76fdd59c6a94e180aca55330eb6b4515",
            "sha256:fa596438a98e3035a1297335c6c459df98e7ba9d507384e257c5e518d42a0e6f",
        ),
        (
            "sha256:4febab2d6a36dd6b058b99c2120d44c7c31f1aae4e6047f7e81257a6d350199b",
            "sha256:b2d55aa560a2f6030f064ba2a4df05bb9ef40fddc261dcc25c945859dda16e4e",
        ),
        (
            "sha256:604196f56e3222fb79200704c70c3a31e60c8e6ae007d947289eeb63c9fb20a8",
            "sha256:2c229df951c72d5be9089dc44c6f41d8d9970fdd3a11d89a53178f81de67fbf5",
        ),
        (
            "sha256:5b95e5aa6c89509e485a2ba755f72aa9fdd74c43bca50df6ec19ac63e1e02916",
            "sha256:92c8464d7c14be6c91ec682bc98028c03192b5121248bd146079f7b09367b75e",
        ),
        (
            "sha256:3e675a8e6538af9f9cc8abbbc38b2b55d045ac0790bbf15a8b6417cfed1aea2f",
            "sha256:e3dca1b4b4a025b9916cef52b1a98c1ab1744b35b542c9fd4d6ac6e5f6a93475",
        ),
    ];

    #[test]
    fn the_output_is_what_flate2_wrote_with_its_default_backend() {
        let mut differences = Vec::new();
        for (index, (input, (stored, default))) in inputs().iter().zip(FLATE2_DIGESTS).enumerate() {
            for (level, expected) in [(Level::Stored, stored), (Level::Default, default)] {
                let actual = sha256_digest(&gzip(input, level));
                if actual != expected {
                    differences.push(format!(
                        "input {index} ({} bytes) at {level:?}: {actual}, flate2 wrote {expected}",
                        input.len()
                    ));
                }
            }
        }
        assert!(differences.is_empty(), "{differences:#?}");
    }

    #[test]
    fn the_output_decompresses_to_the_input() {
        for input in inputs() {
            for level in [Level::Stored, Level::Default] {
                let mut output = Vec::new();
                flate2::read::GzDecoder::new(gzip(&input, level).as_slice())
                    .read_to_end(&mut output)
                    .unwrap();
                assert!(output == input, "{} bytes at {level:?}", input.len());
            }
        }
    }
}
