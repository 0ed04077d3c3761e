//! `SegmentReader`: iterates decoded blocks with a recovery mode (SPEC.md §6).

use super::error::SegmentError;
use super::header::*;
use super::records::*;
use crate::model::*;
use sha2::{Digest, Sha256};
use std::fmt;
use std::io::{self, Read, Seek, SeekFrom};

/// What the reader does when it meets damage.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Recovery {
    /// Any damage, a missing trailer or bytes after it is an error.
    #[default]
    Strict,
    /// A file cut inside a block, or ending without a trailer, ends reading with a warning
    /// (every complete block before the cut is returned). Other damage is an error.
    TornTail,
    /// Like `TornTail`, and a corrupt block is skipped with a warning: by its length when its
    /// header is intact and a block header follows, otherwise by scanning for the next valid
    /// block header.
    SkipCorrupt,
}

/// A non-fatal finding of a recovering read. `offset` is from the start of the file.
#[derive(Debug)]
pub struct ReadWarning {
    pub offset: u64,
    /// Index of the block concerned (the next block index for a missing trailer).
    pub block: u32,
    pub kind: WarningKind,
}

#[derive(Debug)]
#[non_exhaustive]
pub enum WarningKind {
    /// The file ends inside a block: the open block of an unclean shutdown.
    Truncated,
    /// The file ends at a block boundary without a trailer: unclean shutdown.
    MissingTrailer,
    /// A corrupt block was skipped; reading resumed at `resumed_at` (None: at end of file).
    Skipped { error: SegmentError, resumed_at: Option<u64> },
    /// A block of a type this reader does not know, without the critical bit, was skipped.
    UnknownOptionalBlock { block_type: u16 },
    /// Bytes follow the trailer.
    TrailingData,
    /// SkipCorrupt only: the file header is damaged (`error`); none of its fields is used, blocks
    /// are read from the first valid block header after the magic (`resumed_at`; None: none
    /// follows) and each packet block's coding is told by its columns (SPEC.md §7.4).
    HeaderDamaged { error: SegmentError, resumed_at: Option<u64> },
}

impl fmt::Display for ReadWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (o, b) = (self.offset, self.block);
        match &self.kind {
            WarningKind::Truncated => write!(f, "offset {o}: block {b} is truncated (unclean shutdown)"),
            WarningKind::MissingTrailer => {
                write!(f, "offset {o}: no trailer after {b} blocks (unclean shutdown)")
            }
            WarningKind::Skipped { error, resumed_at } => match resumed_at {
                Some(r) => {
                    write!(f, "offset {o}: skipped corrupt block {b} ({error}); resumed at offset {r}")
                }
                None => write!(f, "offset {o}: skipped corrupt block {b} ({error}); nothing valid follows"),
            },
            WarningKind::UnknownOptionalBlock { block_type } => {
                write!(f, "offset {o}: skipped unknown optional block type {block_type:#06x} (block {b})")
            }
            WarningKind::TrailingData => write!(f, "offset {o}: unexpected bytes after the trailer"),
            WarningKind::HeaderDamaged { error, resumed_at } => {
                write!(f, "offset {o}: file header is damaged ({error}); its fields are not used, ")?;
                match resumed_at {
                    Some(r) => write!(f, "blocks read from offset {r}"),
                    None => write!(f, "and no valid block follows it"),
                }
            }
        }
    }
}

/// Trailer layout that appends [`TrailerExt`] (SPEC.md §5.3).
pub const TRAILER_LAYOUT_EXT: u8 = 2;
/// `TrailerExt::flags` bit: the trailer was written by recovery, not by the segment's writer.
pub const TRAILER_FLAG_RECOVERED: u8 = 1;

/// Fields appended to the trailer by layout 2: how the file was closed. A layout-1 trailer
/// (or one whose appended fields are missing) reads as the default: closed by its writer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TrailerExt {
    /// Bit 0: [`TRAILER_FLAG_RECOVERED`]; other bits are reserved (0).
    pub flags: u8,
    /// Length of the `.partial` file before recovery cut it after its last complete block.
    pub original_len: u64,
}

impl TrailerExt {
    pub fn recovered(&self) -> bool {
        self.flags & TRAILER_FLAG_RECOVERED != 0
    }
    /// Appends the layout-2 fields (after `Trailer::encode`).
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.push(self.flags);
        out.extend_from_slice(&self.original_len.to_le_bytes());
    }
    /// The appended fields of a trailer payload `raw` whose known part decoded as `t`.
    fn decode_after(t: &Trailer, raw: &[u8]) -> TrailerExt {
        let mut known = Vec::new();
        t.encode(&mut known);
        let rest = raw.get(known.len()..).unwrap_or_default();
        match (rest.first(), rest.get(1..9)) {
            (Some(&flags), Some(len)) => {
                let mut b = [0u8; 8];
                b.copy_from_slice(len);
                TrailerExt { flags, original_len: u64::from_le_bytes(b) }
            }
            _ => TrailerExt::default(),
        }
    }
}

/// Decoded records of one block.
#[derive(Clone, Debug, PartialEq)]
pub enum BlockBody {
    Meta(Vec<SegmentMeta>),
    Packets(PacketBlock),
    Flows(Vec<FlowRecord>),
    Alerts(Vec<Alert>),
    Loss(Vec<LossRecord>),
    Trailer(Trailer),
}

/// One record of any type, for JSON output: `{"type":"packet",...}` (the model's serde
/// field names, plus the `type` tag).
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Record {
    Meta(SegmentMeta),
    Packet(PacketRecord),
    Flow(FlowRecord),
    Alert(Alert),
    Loss(LossRecord),
}

impl BlockBody {
    /// Number of records (index entries for the trailer).
    pub fn len(&self) -> usize {
        match self {
            BlockBody::Meta(v) => v.len(),
            BlockBody::Packets(p) => p.len(),
            BlockBody::Flows(v) => v.len(),
            BlockBody::Alerts(v) => v.len(),
            BlockBody::Loss(v) => v.len(),
            BlockBody::Trailer(t) => t.index.len(),
        }
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// The records of a data block in order (none for the trailer).
    pub fn into_records(self) -> Vec<Record> {
        match self {
            BlockBody::Meta(v) => v.into_iter().map(Record::Meta).collect(),
            BlockBody::Packets(p) => p.to_records().into_iter().map(Record::Packet).collect(),
            BlockBody::Flows(v) => v.into_iter().map(Record::Flow).collect(),
            BlockBody::Alerts(v) => v.into_iter().map(Record::Alert).collect(),
            BlockBody::Loss(v) => v.into_iter().map(Record::Loss).collect(),
            BlockBody::Trailer(_) => Vec::new(),
        }
    }
}

/// One decoded block with its position.
#[derive(Clone, Debug, PartialEq)]
pub struct DecodedBlock {
    /// Index of the block in the file (0-based, every block counted, skipped ones included).
    pub index: u32,
    /// Offset of the block header from the start of the file.
    pub offset: u64,
    pub header: BlockHeader,
    pub body: BlockBody,
}

type SkipFn<R> = fn(&mut R, u64) -> io::Result<u64>;

fn skip_by_read<R: Read>(r: &mut R, n: u64) -> io::Result<u64> {
    io::copy(&mut r.by_ref().take(n), &mut io::sink())
}

fn skip_by_seek<R: Read + Seek>(r: &mut R, n: u64) -> io::Result<u64> {
    let off = i64::try_from(n).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "skip too large"))?;
    r.seek(SeekFrom::Current(off))?;
    Ok(n)
}

const READ_CHUNK: usize = 64 * 1024;

/// Reads a segment block by block.
pub struct SegmentReader<R> {
    r: R,
    skip: SkipFn<R>,
    /// Look-ahead: `buf[pos..]` is read from `r` but not consumed; `offset` is its file offset.
    buf: Vec<u8>,
    pos: usize,
    offset: u64,
    eof: bool,
    header: SegmentHeader,
    mode: Recovery,
    range: Option<(u64, u64)>,
    skip_data: bool,
    next_index: u32,
    warnings: Vec<ReadWarning>,
    trailer: Option<(u64, Trailer)>,
    trailer_ext: TrailerExt,
    done: bool,
    hasher: Option<Sha256>,
    content_sha256: Option<[u8; 32]>,
    seen: Vec<(u64, BlockHeader)>,
    decompressor: Option<zstd::bulk::Decompressor<'static>>,
    raw: Vec<u8>,
    /// The file header was damaged and salvaged (SkipCorrupt): packet codings are inferred.
    header_damaged: bool,
}

impl<R> fmt::Debug for SegmentReader<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SegmentReader")
            .field("header", &self.header)
            .field("offset", &self.offset)
            .field("mode", &self.mode)
            .finish_non_exhaustive()
    }
}

impl<R: Read> SegmentReader<R> {
    /// Reads and checks the file header. Skipped blocks are read and discarded.
    pub fn new(r: R, mode: Recovery) -> Result<Self, SegmentError> {
        Self::with_skip(r, mode, skip_by_read::<R>, false)
    }

    /// Like `new`, and every consumed byte is hashed (for `verify_file`).
    pub(crate) fn new_hashing(r: R) -> Result<Self, SegmentError> {
        Self::with_skip(r, Recovery::Strict, skip_by_read::<R>, true)
    }

    fn with_skip(r: R, mode: Recovery, skip: SkipFn<R>, hash: bool) -> Result<Self, SegmentError> {
        let mut s = SegmentReader {
            r,
            skip,
            buf: Vec::with_capacity(READ_CHUNK),
            pos: 0,
            offset: 0,
            eof: false,
            header: SegmentHeader::new(0, [0; 32], 0),
            mode,
            range: None,
            skip_data: false,
            next_index: 0,
            warnings: Vec::new(),
            trailer: None,
            trailer_ext: TrailerExt::default(),
            done: false,
            hasher: hash.then(Sha256::new),
            content_sha256: None,
            seen: Vec::new(),
            decompressor: None,
            raw: Vec::new(),
            header_damaged: false,
        };
        s.read_file_header()?;
        Ok(s)
    }

    fn read_file_header(&mut self) -> Result<(), SegmentError> {
        match self.read_checked_header() {
            Err(e) if self.mode == Recovery::SkipCorrupt && self.header_is_damaged(&e)? => {
                self.salvage_header(e)
            }
            r => r,
        }
    }

    /// Whether a header fault is damage to salvage (SkipCorrupt): a file that was a segment,
    /// not a foreign file nor a header its writer meant (see `SegmentHeader::is_damaged`).
    fn header_is_damaged(&mut self, e: &SegmentError) -> io::Result<bool> {
        let fault = matches!(
            e,
            SegmentError::BadMagic { .. }
                | SegmentError::NewerMajor { .. }
                | SegmentError::BadHeaderLength { .. }
                | SegmentError::HeaderCrc { .. }
                | SegmentError::UnknownIncompatibleFlags { .. }
                | SegmentError::Truncated { .. }
        );
        if !fault || self.offset != 0 {
            return Ok(false);
        }
        // `fill` only reads ahead: on failure nothing of the header was consumed. A short file
        // is judged by what it has (`is_damaged` wants at least the v1.0 header).
        self.fill(MAX_FILE_HEADER_LEN as usize)?;
        Ok(SegmentHeader::is_damaged(&self.buf[self.pos..]))
    }

    /// Reads on past a damaged file header: from the first valid block header after the magic
    /// (a damaged header length cannot be trusted to say where block 0 starts).
    fn salvage_header(&mut self, error: SegmentError) -> Result<(), SegmentError> {
        let mut b = [0u8; FILE_HEADER_LEN as usize];
        b.copy_from_slice(&self.buf[self.pos..self.pos + FILE_HEADER_LEN as usize]);
        self.header = SegmentHeader::salvaged(&b);
        self.header_damaged = true;
        // `resync` steps one byte, then scans: from offset MAGIC.len().
        self.consume(MAGIC.len() - 1);
        let resumed_at = self.resync()?;
        self.warnings.push(ReadWarning {
            offset: 0,
            block: 0,
            kind: WarningKind::HeaderDamaged { error, resumed_at },
        });
        Ok(())
    }

    fn read_checked_header(&mut self) -> Result<(), SegmentError> {
        let have16 = self.fill(16)?;
        let avail = &self.buf[self.pos..];
        if !have16 {
            // Too short: name it "not a segment" unless it starts like one.
            let n = avail.len().min(8);
            if avail[..n] != MAGIC[..n] || n == 0 {
                let mut found = [0u8; 8];
                found[..n].copy_from_slice(&avail[..n]);
                return Err(SegmentError::BadMagic { found });
            }
            return Err(SegmentError::Truncated { offset: 0, block: 0, what: "file header" });
        }
        let mut p = [0u8; 16];
        p.copy_from_slice(&avail[..16]);
        let len = SegmentHeader::check_prefix(&p)? as usize;
        if !self.fill(len)? {
            return Err(SegmentError::Truncated { offset: 0, block: 0, what: "file header" });
        }
        self.header = SegmentHeader::decode(&self.buf[self.pos..self.pos + len])?;
        self.consume(len);
        Ok(())
    }

    /// Only blocks whose [min, max] time overlaps [from, to] (inclusive) are decoded; others
    /// are skipped by their header without reading the payload's checksum. Metadata and the
    /// trailer are always returned. Records inside a returned block are not filtered.
    pub fn with_time_range(mut self, from: Ts, to: Ts) -> Self {
        self.range = Some((from.0, to.0));
        self
    }

    /// Skips every data block (packets, flows, alerts, loss) by its header: only metadata
    /// and the trailer are decoded. For listings; see [`Self::block_headers`].
    pub fn skip_data(mut self) -> Self {
        self.skip_data = true;
        self
    }

    /// Offset and header of every block passed so far (decoded or skipped), trailer excluded.
    pub fn block_headers(&self) -> &[(u64, BlockHeader)] {
        &self.seen
    }

    pub fn header(&self) -> &SegmentHeader {
        &self.header
    }
    /// True when the file header was damaged and read past (SkipCorrupt): `header()` then holds
    /// its fields as found, for reporting only.
    pub fn header_damaged(&self) -> bool {
        self.header_damaged
    }
    pub fn warnings(&self) -> &[ReadWarning] {
        &self.warnings
    }
    pub fn take_warnings(&mut self) -> Vec<ReadWarning> {
        std::mem::take(&mut self.warnings)
    }
    /// The trailer and its offset, once read.
    pub fn trailer(&self) -> Option<(u64, &Trailer)> {
        self.trailer.as_ref().map(|(o, t)| (*o, t))
    }
    /// The trailer's appended fields (default until a trailer of layout 2 is read).
    pub fn trailer_ext(&self) -> TrailerExt {
        self.trailer_ext
    }
    /// Offset of the next unread byte.
    pub fn offset(&self) -> u64 {
        self.offset
    }
    pub(crate) fn content_sha256(&self) -> Option<[u8; 32]> {
        self.content_sha256
    }

    /// Consumes the rest of the input into the hash and returns the SHA-256 of every byte.
    pub(crate) fn finish_hash(mut self) -> io::Result<([u8; 32], u64)> {
        loop {
            let n = self.buf.len() - self.pos;
            self.consume(n);
            if self.eof {
                break;
            }
            self.fill(1)?;
            if self.buf.len() == self.pos {
                break;
            }
        }
        let h = self.hasher.take().unwrap_or_default();
        Ok((h.finalize().into(), self.offset))
    }

    /// Ensures `n` unconsumed bytes are buffered; false at end of input.
    fn fill(&mut self, n: usize) -> io::Result<bool> {
        if self.buf.len() - self.pos >= n {
            return Ok(true);
        }
        if self.pos > 0 {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        if self.buf.len() < n && !self.eof {
            // read_to_end on a Take fills spare capacity without zeroing it first and retries
            // on EINTR; a short result means end of input.
            let want = (n - self.buf.len()).max(READ_CHUNK) as u64;
            let got = self.r.by_ref().take(want).read_to_end(&mut self.buf)?;
            if (got as u64) < want {
                self.eof = true;
            }
        }
        Ok(self.buf.len() >= n)
    }

    fn consume(&mut self, n: usize) {
        let n = n.min(self.buf.len() - self.pos);
        if let Some(h) = self.hasher.as_mut() {
            h.update(&self.buf[self.pos..self.pos + n]);
        }
        self.pos += n;
        self.offset += n as u64;
    }

    /// Skips `n` payload bytes without looking at them; false if the input ends first.
    fn skip_payload(&mut self, n: u64) -> io::Result<bool> {
        let buffered = (self.buf.len() - self.pos) as u64;
        if n <= buffered || self.hasher.is_some() {
            // Hashing needs every byte: read through.
            let mut left = n;
            while left > 0 {
                let chunk = left.min(READ_CHUNK as u64) as usize;
                if !self.fill(chunk)? {
                    let rest = self.buf.len() - self.pos;
                    self.consume(rest);
                    return Ok(false);
                }
                self.consume(chunk);
                left -= chunk as u64;
            }
            return Ok(true);
        }
        self.consume(buffered as usize);
        self.buf.clear();
        self.pos = 0;
        let want = n - buffered;
        let got = (self.skip)(&mut self.r, want)?;
        self.offset += got;
        Ok(got == want)
    }

    /// Handles damage found at `offset`: an error in Strict/TornTail, a warning and a skip in
    /// SkipCorrupt (`by_len`: the header is intact, skip its payload; else scan for a sync).
    fn damaged(&mut self, err: SegmentError, by_len: Option<u64>) -> Result<(), SegmentError> {
        if self.mode != Recovery::SkipCorrupt {
            self.done = true;
            return Err(err);
        }
        let offset = err.offset().unwrap_or(self.offset);
        let block = err.block().unwrap_or(self.next_index);
        let resumed = match by_len {
            Some(n) => self.skip_payload(n)?.then_some(self.offset),
            None => self.resync()?,
        };
        self.next_index = self.next_index.max(block + 1);
        self.warnings.push(ReadWarning {
            offset,
            block,
            kind: WarningKind::Skipped { error: err, resumed_at: resumed },
        });
        Ok(())
    }

    /// From a bad block header at the current position, advances to the next offset holding
    /// a valid block header. Returns its offset, or None at end of input.
    fn resync(&mut self) -> io::Result<Option<u64>> {
        self.consume(1);
        loop {
            let avail = &self.buf[self.pos..];
            if let Some(i) = avail.windows(SYNC.len()).position(|w| w == SYNC) {
                self.consume(i);
                if !self.fill(BLOCK_HEADER_LEN)? {
                    return Ok(None);
                }
                let mut hb = [0u8; BLOCK_HEADER_LEN];
                hb.copy_from_slice(&self.buf[self.pos..self.pos + BLOCK_HEADER_LEN]);
                if BlockHeader::decode(&hb).is_ok() {
                    return Ok(Some(self.offset));
                }
                self.consume(1);
            } else {
                // Keep a possible partial marker at the end of the buffer.
                let keep = avail.len().min(SYNC.len() - 1);
                self.consume(avail.len() - keep);
                if !self.fill(keep + 1)? {
                    let rest = self.buf.len() - self.pos;
                    self.consume(rest);
                    return Ok(None);
                }
            }
        }
    }

    /// Whether a valid block header starts `len` bytes after the current position, or the
    /// input ends before a whole header could (a torn or trailer-less end is judged there).
    fn block_header_follows(&mut self, len: usize) -> io::Result<bool> {
        if !self.fill(len + BLOCK_HEADER_LEN)? {
            return Ok(true);
        }
        let at = self.pos + len;
        let mut hb = [0u8; BLOCK_HEADER_LEN];
        hb.copy_from_slice(&self.buf[at..at + BLOCK_HEADER_LEN]);
        Ok(BlockHeader::decode(&hb).is_ok())
    }

    fn warn_end(&mut self, offset: u64, block: u32, kind: WarningKind) {
        self.warnings.push(ReadWarning { offset, block, kind });
        self.done = true;
    }

    /// The next decoded block, `None` at the end.
    pub fn next_block(&mut self) -> Result<Option<DecodedBlock>, SegmentError> {
        loop {
            if self.done {
                return Ok(None);
            }
            let start = self.offset;
            let index = self.next_index;
            if !self.fill(BLOCK_HEADER_LEN)? {
                if self.buf.len() == self.pos {
                    // End of input at a block boundary, without a trailer.
                    if self.mode == Recovery::Strict {
                        self.done = true;
                        return Err(SegmentError::MissingTrailer { offset: start, blocks: index });
                    }
                    self.warn_end(start, index, WarningKind::MissingTrailer);
                } else {
                    if self.mode == Recovery::Strict {
                        self.done = true;
                        return Err(SegmentError::Truncated {
                            offset: start,
                            block: index,
                            what: "block header",
                        });
                    }
                    self.warn_end(start, index, WarningKind::Truncated);
                }
                return Ok(None);
            }
            let mut hb = [0u8; BLOCK_HEADER_LEN];
            hb.copy_from_slice(&self.buf[self.pos..self.pos + BLOCK_HEADER_LEN]);
            let h = match BlockHeader::decode(&hb) {
                Ok(h) => h,
                Err(BlockHeaderFault::Sync) => {
                    self.damaged(SegmentError::BadSync { offset: start, block: index }, None)?;
                    continue;
                }
                Err(BlockHeaderFault::Crc { expected, actual }) => {
                    let e = SegmentError::BlockHeaderCrc { offset: start, block: index, expected, actual };
                    self.damaged(e, None)?;
                    continue;
                }
            };
            let len = u64::from(h.stored_len.max(h.raw_len));
            if len > u64::from(MAX_PAYLOAD_LEN) {
                let e = SegmentError::BlockTooLarge {
                    offset: start,
                    block: index,
                    len,
                    limit: MAX_PAYLOAD_LEN.into(),
                };
                self.damaged(e, None)?;
                continue;
            }
            let bt = BlockType::from_u16(h.block_type);
            if bt.is_none() && h.block_type & CRITICAL != 0 {
                // Not damage: this reader cannot interpret the file. Fail in every mode.
                self.done = true;
                return Err(SegmentError::UnknownCriticalBlock {
                    offset: start,
                    block: index,
                    block_type: h.block_type,
                });
            }
            if bt == Some(BlockType::Trailer) {
                self.content_sha256 = self.hasher.clone().map(|h| h.finalize().into());
            }
            self.consume(BLOCK_HEADER_LEN);
            self.next_index += 1;
            let stored_len = u64::from(h.stored_len);
            if bt != Some(BlockType::Trailer) {
                // The trailer indexes every block, unknown optional ones included.
                self.seen.push((start, h));
            }
            let Some(bt) = bt else {
                if !self.skip_payload(stored_len)? {
                    return self.truncated_payload(start, index).map(|()| None);
                }
                self.warnings.push(ReadWarning {
                    offset: start,
                    block: index,
                    kind: WarningKind::UnknownOptionalBlock { block_type: h.block_type },
                });
                continue;
            };
            let out_of_range = self.range.is_some_and(|(from, to)| h.max_ts < from || h.min_ts > to);
            if bt.is_timed() && (self.skip_data || out_of_range) {
                if !self.skip_payload(stored_len)? {
                    return self.truncated_payload(start, index).map(|()| None);
                }
                continue;
            }
            if !self.fill(h.stored_len as usize)? {
                return self.truncated_payload(start, index).map(|()| None);
            }
            match self.decode_payload(&h, bt, start, index) {
                Ok(body) => {
                    self.consume(h.stored_len as usize);
                    if let BlockBody::Trailer(t) = &body {
                        self.trailer = Some((start, t.clone()));
                        self.done = true;
                        if self.fill(1)? {
                            let at = self.offset;
                            if self.mode == Recovery::Strict {
                                return Err(SegmentError::TrailingData { offset: at });
                            }
                            self.warnings.push(ReadWarning {
                                offset: at,
                                block: self.next_index,
                                kind: WarningKind::TrailingData,
                            });
                        }
                    }
                    return Ok(Some(DecodedBlock { index, offset: start, header: h, body }));
                }
                Err(e) => {
                    // The header's CRC held, but its length can still lie (a header rewritten
                    // with a fresh CRC): skip by it only when a block header, or the end of
                    // the file, follows; otherwise scan the claimed payload for the next block.
                    let trusted = self.block_header_follows(h.stored_len as usize)?;
                    self.damaged(e, trusted.then_some(stored_len))?;
                }
            }
        }
    }

    fn truncated_payload(&mut self, start: u64, index: u32) -> Result<(), SegmentError> {
        if self.mode == Recovery::Strict {
            self.done = true;
            return Err(SegmentError::Truncated { offset: start, block: index, what: "block payload" });
        }
        self.warn_end(start, index, WarningKind::Truncated);
        Ok(())
    }

    fn decode_payload(
        &mut self,
        h: &BlockHeader,
        bt: BlockType,
        offset: u64,
        block: u32,
    ) -> Result<BlockBody, SegmentError> {
        let stored = &self.buf[self.pos..self.pos + h.stored_len as usize];
        let actual = crc32c::crc32c(stored);
        if actual != h.payload_crc {
            return Err(SegmentError::PayloadCrc { offset, block, expected: h.payload_crc, actual });
        }
        let raw: &[u8] =
            match h.codec {
                CODEC_NONE => {
                    if h.stored_len != h.raw_len {
                        return Err(SegmentError::RawLength {
                            offset,
                            block,
                            expected: h.raw_len.into(),
                            actual: h.stored_len.into(),
                        });
                    }
                    stored
                }
                CODEC_ZSTD => {
                    let d = match self.decompressor.as_mut() {
                        Some(d) => d,
                        None => self.decompressor.insert(zstd::bulk::Decompressor::new()?),
                    };
                    self.raw.clear();
                    self.raw.reserve_exact(h.raw_len as usize);
                    d.decompress_to_buffer(stored, &mut self.raw)
                        .map_err(|source| SegmentError::Decompress { offset, block, source })?;
                    if self.raw.len() != h.raw_len as usize {
                        return Err(SegmentError::RawLength {
                            offset,
                            block,
                            expected: h.raw_len.into(),
                            actual: self.raw.len() as u64,
                        });
                    }
                    &self.raw
                }
                codec => return Err(SegmentError::UnknownCodec { offset, block, codec }),
            };
        if h.layout == 0 {
            return Err(SegmentError::BadRecord { offset, block, what: "record layout version 0" });
        }
        let bad = |what| SegmentError::BadRecord { offset, block, what };
        let mut ext = None;
        let body = match bt {
            BlockType::Meta => BlockBody::Meta(decode_rows(raw, h.count).map_err(bad)?),
            BlockType::Packets => {
                let coding = if self.header_damaged {
                    infer_packet_coding(raw).ok_or(bad("packet block columns fit no known coding"))?
                } else {
                    self.header.packet_coding()
                };
                BlockBody::Packets(decode_packets(raw, h.count, coding).map_err(bad)?)
            }
            BlockType::Flows => BlockBody::Flows(decode_rows(raw, h.count).map_err(bad)?),
            BlockType::Alerts => BlockBody::Alerts(decode_rows(raw, h.count).map_err(bad)?),
            BlockType::Loss => BlockBody::Loss(decode_rows(raw, h.count).map_err(bad)?),
            BlockType::Trailer => {
                let t = Trailer::decode(raw).map_err(bad)?;
                if h.layout >= TRAILER_LAYOUT_EXT {
                    ext = Some(TrailerExt::decode_after(&t, raw));
                }
                BlockBody::Trailer(t)
            }
        };
        if let Some(ext) = ext {
            self.trailer_ext = ext;
        }
        Ok(body)
    }
}

impl<R: Read + Seek> SegmentReader<R> {
    /// Like `new`, but blocks outside a time range are skipped with `seek` instead of reads.
    pub fn new_seekable(r: R, mode: Recovery) -> Result<Self, SegmentError> {
        Self::with_skip(r, mode, skip_by_seek::<R>, false)
    }
}

impl<R: Read> Iterator for SegmentReader<R> {
    type Item = Result<DecodedBlock, SegmentError>;
    fn next(&mut self) -> Option<Self::Item> {
        self.next_block().transpose()
    }
}
