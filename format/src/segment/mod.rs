//! The segment file format (normative description: `format/SPEC.md`).
//!
//! - [`SegmentWriter`] encodes records into blocks and writes the trailer.
//! - [`SegmentReader`] decodes blocks with a [`Recovery`] mode and optional time range.
//! - [`verify_file`] / [`verify_chain`] check integrity and the hash chain.
//! - [`SegmentName`] builds and parses file names.

mod error;
mod fcode;
pub mod hdelta;
pub mod header;
pub mod name;
mod reader;
mod records;
pub mod sample;
mod verify;
mod wire;
mod writer;

pub use error::SegmentError;
pub use header::{BlockHeader, BlockType, MAGIC, MAJOR, MAX_PAYLOAD_LEN, MINOR, SegmentHeader};
pub use name::SegmentName;
pub use reader::{
    BlockBody, DecodedBlock, ReadWarning, Record, Recovery, SegmentReader, TRAILER_FLAG_RECOVERED,
    TRAILER_LAYOUT_EXT, TrailerExt, WarningKind,
};
pub use records::{IndexEntry, LAYOUT_V1, PacketBlock, PacketCoding, PacketMeta, Trailer, TypeTotals};
pub use verify::{
    ChainBreak, ChainProblem, ChainReport, Damage, TimeGap, VerifyReport, verify_chain, verify_file,
};
pub use writer::{RecordCounts, SegmentHeaderInfo, SegmentSummary, SegmentWriter, WriterConfig};
