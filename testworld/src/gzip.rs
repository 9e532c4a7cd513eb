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
//! `flate2::GzBuilder::new().mtime(0)` wrote with its default backend
//! (checked by the tests below while flate2 had that backend, and by known
//! digests since).

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
    use std::io::{Read, Write};

    use super::*;
    use crate::image_builder::{LayerFiles, Random};

    /// What flate2 writes with the backend it is built with: the reference
    /// only while that backend is its default one (miniz_oxide).
    fn flate2_gzip(bytes: &[u8], level: u32) -> Vec<u8> {
        let mut encoder = flate2::GzBuilder::new()
            .mtime(0)
            .write(Vec::new(), flate2::Compression::new(level));
        encoder.write_all(bytes).unwrap();
        encoder.finish().unwrap()
    }

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

    #[test]
    fn the_output_is_what_flate2_wrote_with_its_default_backend() {
        let mut differences = Vec::new();
        for (index, input) in inputs().iter().enumerate() {
            for (level, number) in [(Level::Stored, 0), (Level::Default, 6)] {
                if gzip(input, level) != flate2_gzip(input, number) {
                    differences.push(format!(
                        "input {index} ({} bytes) at {level:?}",
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
