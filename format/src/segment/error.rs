//! Errors of the segment codec. Every variant that concerns file content carries the byte
//! offset (from the start of the file) of the structure that is damaged; the caller adds the
//! path.

use std::io;

/// Why a segment could not be written, read or verified.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SegmentError {
    #[error("not a netrec segment: bad magic {found:02x?}")]
    BadMagic { found: [u8; 8] },
    #[error("segment format major version {found} is newer than the supported {supported}")]
    NewerMajor { found: u16, supported: u16 },
    #[error("segment uses unknown incompatible features (flags {flags:#010x})")]
    UnknownIncompatibleFlags { flags: u32 },
    #[error("file header length {len} is invalid (must be {min}..={max})")]
    BadHeaderLength { len: u32, min: u32, max: u32 },
    #[error("file header CRC mismatch: stored {expected:#010x}, computed {actual:#010x}")]
    HeaderCrc { expected: u32, actual: u32 },
    #[error("no block sync marker at offset {offset} (block {block})")]
    BadSync { offset: u64, block: u32 },
    #[error(
        "block header CRC mismatch at offset {offset} (block {block}): stored {expected:#010x}, computed {actual:#010x}"
    )]
    BlockHeaderCrc { offset: u64, block: u32, expected: u32, actual: u32 },
    #[error(
        "payload CRC mismatch in block {block} at offset {offset}: stored {expected:#010x}, computed {actual:#010x}"
    )]
    PayloadCrc { offset: u64, block: u32, expected: u32, actual: u32 },
    #[error("file truncated at offset {offset} while reading {what} (block {block})")]
    Truncated { offset: u64, block: u32, what: &'static str },
    #[error("unknown critical block type {block_type:#06x} at offset {offset} (block {block})")]
    UnknownCriticalBlock { offset: u64, block: u32, block_type: u16 },
    #[error("unknown codec {codec} in block {block} at offset {offset}")]
    UnknownCodec { offset: u64, block: u32, codec: u8 },
    #[error("block {block} at offset {offset} is too large: {len} bytes (limit {limit})")]
    BlockTooLarge { offset: u64, block: u32, len: u64, limit: u64 },
    #[error("a single record of {len} bytes exceeds the block limit of {limit} bytes")]
    RecordTooLarge { len: u64, limit: u64 },
    #[error("cannot decompress block {block} at offset {offset}")]
    Decompress {
        offset: u64,
        block: u32,
        #[source]
        source: io::Error,
    },
    #[error("raw length mismatch in block {block} at offset {offset}: header says {expected}, got {actual}")]
    RawLength { offset: u64, block: u32, expected: u64, actual: u64 },
    #[error("bad record in block {block} at offset {offset}: {what}")]
    BadRecord { offset: u64, block: u32, what: &'static str },
    #[error("segment has no trailer (unclean shutdown): data ends at offset {offset} after {blocks} blocks")]
    MissingTrailer { offset: u64, blocks: u32 },
    #[error("unexpected bytes after the trailer at offset {offset}")]
    TrailingData { offset: u64 },
    #[error("trailer at offset {offset} disagrees with the file: {what}")]
    TrailerMismatch { offset: u64, what: &'static str },
    #[error(
        "content SHA-256 mismatch (trailer at offset {offset}): trailer says {expected}, file hashes to {actual}"
    )]
    ContentHash { offset: u64, expected: String, actual: String },
    #[error("writer already finished")]
    Finished,
    #[error("I/O error")]
    Io(#[source] io::Error),
}

impl From<io::Error> for SegmentError {
    fn from(e: io::Error) -> Self {
        SegmentError::Io(e)
    }
}

impl SegmentError {
    /// Byte offset of the damage, when the error concerns file content.
    pub fn offset(&self) -> Option<u64> {
        use SegmentError::*;
        match self {
            BadMagic { .. }
            | NewerMajor { .. }
            | UnknownIncompatibleFlags { .. }
            | BadHeaderLength { .. }
            | HeaderCrc { .. } => Some(0),
            BadSync { offset, .. }
            | BlockHeaderCrc { offset, .. }
            | PayloadCrc { offset, .. }
            | Truncated { offset, .. }
            | UnknownCriticalBlock { offset, .. }
            | UnknownCodec { offset, .. }
            | BlockTooLarge { offset, .. }
            | Decompress { offset, .. }
            | RawLength { offset, .. }
            | BadRecord { offset, .. }
            | MissingTrailer { offset, .. }
            | TrailingData { offset }
            | TrailerMismatch { offset, .. }
            | ContentHash { offset, .. } => Some(*offset),
            RecordTooLarge { .. } | Finished | Io(_) => None,
        }
    }

    /// Index of the damaged block, when known.
    pub fn block(&self) -> Option<u32> {
        use SegmentError::*;
        match self {
            BadSync { block, .. }
            | BlockHeaderCrc { block, .. }
            | PayloadCrc { block, .. }
            | Truncated { block, .. }
            | UnknownCriticalBlock { block, .. }
            | UnknownCodec { block, .. }
            | BlockTooLarge { block, .. }
            | Decompress { block, .. }
            | RawLength { block, .. }
            | BadRecord { block, .. } => Some(*block),
            _ => None,
        }
    }
}
