//! The compression of the metadata files a delivery carries
//! (`plan.json.gz`, `inputs.json.gz`, format version 2): gzip with fixed
//! header fields, so that the same bytes in give the same bytes out, and a
//! bounded reader.
//!
//! The header has no file name, no comment, no extra field, mtime 0 and the
//! operating system byte 255 ("unknown"); the level is fixed. flate2 is
//! already in the workspace (layers are gzip), pure Rust through
//! miniz_oxide, and its output for a given input depends only on its
//! version, which Cargo.lock pins: a ferry build writes the same delivery
//! twice byte for byte. Readers never compare compressed bytes with what
//! they would write, only with the digest in the segment table, so another
//! ferry's compressor reads the same.

use std::io::{Read, Write};

use flate2::{Compression, GzBuilder, bufread::GzDecoder};

/// The gzip "unknown" operating system.
const UNKNOWN_OPERATING_SYSTEM: u8 = 255;
/// zlib's default level: metadata is small, and a plan of many images is
/// compressed once per delivery.
const LEVEL: u32 = 6;

/// `bytes` as a single-member gzip file with fixed header fields.
pub fn compress(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = GzBuilder::new()
        .mtime(0)
        .operating_system(UNKNOWN_OPERATING_SYSTEM)
        .write(Vec::new(), Compression::new(LEVEL));
    encoder
        .write_all(bytes)
        .and_then(|()| encoder.finish())
        .expect("compressing into memory cannot fail")
}

/// The content of a gzip file of at most `limit` bytes once decompressed;
/// the problem in words otherwise (not gzip, damaged, larger than `limit`,
/// bytes after the end).
pub fn decompress(compressed: &[u8], limit: u64) -> Result<Vec<u8>, String> {
    let mut decoder = GzDecoder::new(compressed);
    let mut bytes = Vec::new();
    (&mut decoder)
        .take(limit.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|error| format!("it is not a whole gzip file ({error})"))?;
    if bytes.len() as u64 > limit {
        return Err(format!(
            "it decompresses to more than {limit} bytes, more than any metadata file ferry writes"
        ));
    }
    if !decoder.into_inner().is_empty() {
        return Err("bytes follow the end of its gzip stream".to_owned());
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compression_is_reproducible_and_round_trips() {
        let text = br#"{"version":2,"plan":{"actions":[]}}"#.repeat(100);
        let once = compress(&text);
        assert_eq!(once, compress(&text));
        assert!(once.len() < text.len() / 10, "{} bytes", once.len());
        // Fixed header: magic, deflate, no flags, mtime 0, level flags, OS.
        assert_eq!(&once[..4], &[0x1f, 0x8b, 8, 0]);
        assert_eq!(&once[4..8], &[0, 0, 0, 0]);
        assert_eq!(once[9], UNKNOWN_OPERATING_SYSTEM);
        assert_eq!(decompress(&once, 1 << 20).unwrap(), text);
    }

    #[test]
    fn damaged_oversized_or_trailing_input_is_refused() {
        let text = vec![b'a'; 10_000];
        let compressed = compress(&text);
        let error = decompress(&compressed, 9_999).unwrap_err();
        assert!(error.contains("more than 9999 bytes"), "{error}");
        let error = decompress(&compressed[..compressed.len() - 4], 1 << 20).unwrap_err();
        assert!(error.contains("not a whole gzip file"), "{error}");
        let mut trailing = compressed.clone();
        trailing.push(0);
        let error = decompress(&trailing, 1 << 20).unwrap_err();
        assert!(error.contains("bytes follow"), "{error}");
        assert!(decompress(b"plain text", 1 << 20).is_err());
    }
}
