//! The tar dialect of segments: canonical headers (built with the `tar`
//! crate's `Header`), exact entry sizes, and a strict header reader.
//!
//! Every entry is a regular file with a GNU header: mode 0644, uid and gid
//! 0, empty user and group names, mtime 0, no device numbers. A path longer
//! than the 100-byte name field (only `blobs/sha512/<128 hex>`) is preceded
//! by a GNU long-name entry (`././@LongLink`, type `L`, the path plus a NUL).
//! The archive ends with two zero blocks and nothing after them (no padding
//! to a 10 KiB record).
//!
//! The reader is written here rather than taken from `tar::Archive`
//! because verification needs to refuse anything the writer would not have
//! produced (links, devices, PAX headers, other modes or owners, bytes after
//! the end) with a message naming the entry, and to know the exact offset
//! of each entry so the cheap structural pass can seek past contents
//! without reading them. It accepts only the canonical form: each header is
//! rebuilt from the path and size it claims and compared byte for byte.

use std::io::{Read, Seek, SeekFrom};

use tar::{EntryType, Header};

pub const BLOCK: u64 = 512;
/// Two zero blocks end an archive.
pub const END_OF_ARCHIVE: u64 = 2 * BLOCK;
/// Length of the name field of a tar header.
const NAME_FIELD: usize = 100;
/// The longest path the reader accepts (a GNU long name).
const MAX_PATH: u64 = 4096;
const LONG_NAME_MARKER: &str = "././@LongLink";

/// `size` rounded up to whole blocks.
pub fn padded(size: u64) -> u64 {
    size.div_ceil(BLOCK) * BLOCK
}

/// Bytes the header(s) of an entry with this path take.
pub fn header_len(path: &str) -> u64 {
    if path.len() <= NAME_FIELD {
        BLOCK
    } else {
        BLOCK + padded(path.len() as u64 + 1) + BLOCK
    }
}

/// Bytes a whole entry takes: header(s) and padded content.
pub fn entry_len(path: &str, size: u64) -> u64 {
    header_len(path) + padded(size)
}

fn base_header(size: u64, entry_type: EntryType) -> Header {
    let mut header = Header::new_gnu();
    header.set_mode(0o644);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(0);
    header.set_size(size);
    header.set_entry_type(entry_type);
    header
}

/// The canonical header block(s) for `path` holding `size` bytes: what the
/// writer emits and the reader expects.
pub fn canonical_header(path: &str, size: u64) -> Vec<u8> {
    {
        let mut bytes = Vec::with_capacity(header_len(path) as usize);
        let name = path.as_bytes();
        if name.len() > NAME_FIELD {
            let mut long = base_header(name.len() as u64 + 1, EntryType::GNULongName);
            long.as_old_mut().name[..LONG_NAME_MARKER.len()]
                .copy_from_slice(LONG_NAME_MARKER.as_bytes());
            long.set_cksum();
            bytes.extend_from_slice(long.as_bytes());
            bytes.extend_from_slice(name);
            bytes.resize(
                bytes.len() + (padded(name.len() as u64 + 1) as usize - name.len()),
                0,
            );
        }
        let mut header = base_header(size, EntryType::Regular);
        let field = name.len().min(NAME_FIELD);
        header.as_old_mut().name[..field].copy_from_slice(&name[..field]);
        header.set_cksum();
        bytes.extend_from_slice(header.as_bytes());
        bytes
    }
}

/// One entry found by the reader.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RawEntry {
    pub path: String,
    pub size: u64,
    /// Offset of the entry's first header block.
    pub header_offset: u64,
    /// Offset of its content.
    pub data_offset: u64,
}

/// Why the reader refused a header. `entry` is the path when known.
#[derive(Debug)]
pub struct HeaderProblem {
    pub entry: Option<String>,
    pub problem: String,
}

impl HeaderProblem {
    fn new(entry: Option<&str>, problem: impl Into<String>) -> Self {
        HeaderProblem {
            entry: entry.map(str::to_owned),
            problem: problem.into(),
        }
    }
}

/// Why reading a header failed.
#[derive(Debug)]
pub enum ReadProblem {
    Io(std::io::Error),
    Refused(HeaderProblem),
}

/// The outcome of reading at one offset.
pub enum NextHeader {
    Entry(RawEntry),
    /// The two end blocks, ending exactly at the end of the file.
    End,
}

const ALTERED: &str =
    "this segment was altered or not written by ferry: copy it again from the source";

/// Reads the header at `offset` of a file `file_len` bytes long.
pub fn read_header<R: Read + Seek>(
    reader: &mut R,
    offset: u64,
    file_len: u64,
) -> Result<NextHeader, ReadProblem> {
    let block = read_block(reader, offset, file_len)?;
    if block.iter().all(|byte| *byte == 0) {
        let second = read_block(reader, offset + BLOCK, file_len)?;
        if second.iter().any(|byte| *byte != 0) {
            return Err(ReadProblem::Refused(HeaderProblem::new(
                None,
                format!(
                    "the end-of-archive marker at byte {offset} is damaged; copy the segment again from the source"
                ),
            )));
        }
        if offset + END_OF_ARCHIVE != file_len {
            return Err(ReadProblem::Refused(HeaderProblem::new(
                None,
                format!(
                    "{} unexpected bytes after the end of the archive (byte {}); copy the segment again from the source",
                    file_len - offset - END_OF_ARCHIVE,
                    offset + END_OF_ARCHIVE
                ),
            )));
        }
        return Ok(NextHeader::End);
    }
    let header = Header::from_byte_slice(&block);
    check_checksum(header, offset, None)?;
    let (path, header_block, header_offset) = match header.entry_type() {
        EntryType::GNULongName => {
            let size = header.size().map_err(|_| {
                ReadProblem::Refused(HeaderProblem::new(
                    None,
                    format!("unreadable long-name header at byte {offset}"),
                ))
            })?;
            if size == 0 || size > MAX_PATH {
                return Err(ReadProblem::Refused(HeaderProblem::new(
                    None,
                    format!("long name of {size} bytes at byte {offset}; {ALTERED}"),
                )));
            }
            let name = read_exact_at(reader, offset + BLOCK, size, file_len)?;
            let end = name
                .iter()
                .position(|byte| *byte == 0)
                .unwrap_or(name.len());
            let path = decode_path(&name[..end], offset)?;
            let next = offset + BLOCK + padded(size);
            let block = read_block(reader, next, file_len)?;
            check_checksum(Header::from_byte_slice(&block), next, Some(&path))?;
            (path, block, offset)
        }
        _ => {
            let path = decode_path(&header.path_bytes(), offset)?;
            (path, block, offset)
        }
    };
    let header = Header::from_byte_slice(&header_block);
    check_entry_type(header, &path)?;
    check_path(&path)?;
    let size = header.size().map_err(|_| {
        ReadProblem::Refused(HeaderProblem::new(
            Some(&path),
            "the size field is unreadable; copy the segment again from the source",
        ))
    })?;
    let expected = canonical_header(&path, size);
    let data_offset = header_offset + expected.len() as u64;
    let actual = read_exact_at(reader, header_offset, expected.len() as u64, file_len)?;
    if actual != expected {
        return Err(ReadProblem::Refused(HeaderProblem::new(
            Some(&path),
            format!(
                "the tar header is not in ferry's canonical form (mode 0644, owner 0:0, mtime 0, GNU format); {ALTERED}"
            ),
        )));
    }
    if data_offset + padded(size) > file_len {
        return Err(ReadProblem::Refused(HeaderProblem::new(
            Some(&path),
            format!(
                "the segment is truncated: this entry needs {} bytes from byte {data_offset}, the file ends at byte {file_len}; copy it again from the source",
                padded(size)
            ),
        )));
    }
    Ok(NextHeader::Entry(RawEntry {
        path,
        size,
        header_offset,
        data_offset,
    }))
}

fn read_block<R: Read + Seek>(
    reader: &mut R,
    offset: u64,
    file_len: u64,
) -> Result<[u8; BLOCK as usize], ReadProblem> {
    let bytes = read_exact_at(reader, offset, BLOCK, file_len)?;
    let mut block = [0u8; BLOCK as usize];
    block.copy_from_slice(&bytes);
    Ok(block)
}

fn read_exact_at<R: Read + Seek>(
    reader: &mut R,
    offset: u64,
    length: u64,
    file_len: u64,
) -> Result<Vec<u8>, ReadProblem> {
    if offset + length > file_len {
        return Err(ReadProblem::Refused(HeaderProblem::new(
            None,
            format!(
                "the segment is truncated: it ends at byte {file_len}, inside a tar header or before the end-of-archive marker; copy it again from the source"
            ),
        )));
    }
    reader
        .seek(SeekFrom::Start(offset))
        .map_err(ReadProblem::Io)?;
    let mut bytes = vec![0; length as usize];
    reader.read_exact(&mut bytes).map_err(ReadProblem::Io)?;
    Ok(bytes)
}

fn check_checksum(header: &Header, offset: u64, path: Option<&str>) -> Result<(), ReadProblem> {
    let stored = header.cksum().ok();
    let computed: u32 = header
        .as_bytes()
        .iter()
        .enumerate()
        .map(|(index, byte)| {
            if (148..156).contains(&index) {
                u32::from(b' ')
            } else {
                u32::from(*byte)
            }
        })
        .sum();
    if stored != Some(computed) {
        return Err(ReadProblem::Refused(HeaderProblem::new(
            path,
            format!(
                "the tar header at byte {offset} fails its checksum (damaged); copy the segment again from the source"
            ),
        )));
    }
    Ok(())
}

fn decode_path(bytes: &[u8], offset: u64) -> Result<String, ReadProblem> {
    String::from_utf8(bytes.to_vec()).map_err(|_| {
        ReadProblem::Refused(HeaderProblem::new(
            None,
            format!("the entry at byte {offset} has a name that is not UTF-8; {ALTERED}"),
        ))
    })
}

fn check_entry_type(header: &Header, path: &str) -> Result<(), ReadProblem> {
    let entry_type = header.entry_type();
    if entry_type == EntryType::Regular {
        return Ok(());
    }
    let target = || {
        header
            .link_name_bytes()
            .map(|name| String::from_utf8_lossy(&name).into_owned())
            .unwrap_or_default()
    };
    let what = match entry_type {
        EntryType::Symlink => format!("a symbolic link to `{}`", target()),
        EntryType::Link => format!("a hard link to `{}`", target()),
        EntryType::Char => "a character device".to_owned(),
        EntryType::Block => "a block device".to_owned(),
        EntryType::Fifo => "a named pipe".to_owned(),
        EntryType::Directory => "a directory".to_owned(),
        EntryType::XHeader | EntryType::XGlobalHeader => "a PAX extended header".to_owned(),
        EntryType::GNULongName => "a second long-name header".to_owned(),
        EntryType::GNULongLink => "a long link name".to_owned(),
        other => format!("an entry of tar type {:?}", other.as_byte() as char),
    };
    Err(ReadProblem::Refused(HeaderProblem::new(
        Some(path),
        format!(
            "refused: {what} (ferry writes regular files only; anything else could write outside the target folder); this segment was altered or not written by ferry: copy it again from the source"
        ),
    )))
}

/// Refuses paths that could land outside the folder a segment is unpacked
/// into, or that are not in ferry's plain form.
fn check_path(path: &str) -> Result<(), ReadProblem> {
    let refuse = |problem: &str| {
        Err(ReadProblem::Refused(HeaderProblem::new(
            Some(path),
            problem.to_owned(),
        )))
    };
    if path.starts_with('/') || path.starts_with('\\') || path.as_bytes().get(1) == Some(&b':') {
        return refuse(
            "refused: an absolute path would write outside the target folder; this segment was altered or not written by ferry",
        );
    }
    if path.split(['/', '\\']).any(|part| part == "..") {
        return refuse(
            "refused: `..` would write outside the target folder; this segment was altered or not written by ferry",
        );
    }
    if path.is_empty()
        || path.contains('\\')
        || path.contains('\0')
        || path.split('/').any(|part| part.is_empty() || part == ".")
    {
        return refuse(
            "refused: the path is not in plain relative form; this segment was altered or not written by ferry",
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_match_the_headers_written() {
        let short = "blobs/sha256/".to_owned() + &"a".repeat(64);
        let long = "blobs/sha512/".to_owned() + &"b".repeat(128);
        assert_eq!(canonical_header(&short, 7).len() as u64, header_len(&short));
        assert_eq!(canonical_header(&long, 7).len() as u64, header_len(&long));
        assert_eq!(header_len(&long), 3 * BLOCK);
        assert_eq!(entry_len(&short, 0), BLOCK);
        assert_eq!(entry_len(&short, 1), 2 * BLOCK);
        assert_eq!(entry_len(&short, 512), 2 * BLOCK);
        assert_eq!(entry_len(&short, 513), 3 * BLOCK);
    }

    #[test]
    fn the_tar_crate_reads_canonical_entries_back() {
        let long = "blobs/sha512/".to_owned() + &"b".repeat(128);
        let mut archive = Vec::new();
        for (path, content) in [
            ("oci-layout", &b"abc"[..]),
            (long.as_str(), &b"0123456789"[..]),
        ] {
            archive.extend(canonical_header(path, content.len() as u64));
            archive.extend_from_slice(content);
            archive.resize(padded(archive.len() as u64) as usize, 0);
        }
        archive.resize(archive.len() + END_OF_ARCHIVE as usize, 0);
        let mut reader = tar::Archive::new(archive.as_slice());
        let found: Vec<(String, u32, u64, u64)> = reader
            .entries()
            .unwrap()
            .map(|entry| {
                let mut entry = entry.unwrap();
                let mut content = Vec::new();
                entry.read_to_end(&mut content).unwrap();
                let header = entry.header();
                (
                    entry.path().unwrap().to_string_lossy().into_owned(),
                    header.mode().unwrap(),
                    header.mtime().unwrap(),
                    content.len() as u64,
                )
            })
            .collect();
        assert_eq!(
            found,
            [
                ("oci-layout".to_owned(), 0o644, 0, 3),
                (long.clone(), 0o644, 0, 10)
            ]
        );
        let mut cursor = std::io::Cursor::new(&archive);
        let length = archive.len() as u64;
        let NextHeader::Entry(first) = read_header(&mut cursor, 0, length).ok().unwrap() else {
            panic!("an entry")
        };
        assert_eq!(
            (first.path.as_str(), first.size, first.data_offset),
            ("oci-layout", 3, 512)
        );
        let NextHeader::Entry(second) = read_header(&mut cursor, 1024, length).ok().unwrap() else {
            panic!("an entry")
        };
        assert_eq!(
            (second.path, second.size, second.data_offset),
            (long, 10, 1024 + 1536)
        );
        assert!(matches!(
            read_header(&mut cursor, 1024 + 1536 + 512, length),
            Ok(NextHeader::End)
        ));
    }
}
