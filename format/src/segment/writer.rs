//! `SegmentWriter`: buffers records per type, closes blocks by size and age, writes the
//! trailer. Pure: writes only to the `Write` it is given, never reads a clock.

use super::error::SegmentError;
use super::header::*;
use super::records::*;
use crate::model::*;
use sha2::{Digest, Sha256};
use std::io::Write;

/// File header values chosen by the caller.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SegmentHeaderInfo {
    pub seq: u64,
    /// SHA-256 of the entire previous segment file; zeros for the first of a chain.
    pub prev_sha256: [u8; 32],
    /// Creation time (ns since the epoch), as given by the caller.
    pub created_ns: u64,
}

/// Block closing policy and compression.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WriterConfig {
    /// A block is closed once its raw (uncompressed) payload reaches this size. Clamped to
    /// [`MAX_PAYLOAD_LEN`].
    pub max_block_bytes: usize,
    /// `tick(now)` closes blocks opened at least this long ago (0: never by age).
    pub max_block_age_ns: u64,
    /// zstd level; 0 stores blocks uncompressed.
    pub zstd_level: i32,
    /// Code packet blocks against earlier packets of their flow: with [`SegmentWriter::new`],
    /// true writes the newest coding, [`PacketCoding::FieldCoded`] (SPEC.md §5.2.2, a v1.2
    /// file); false writes v1.0 files that every 1.x reader reads. To write a v1.1
    /// (header-delta) file, use [`SegmentWriter::with_packet_coding`].
    pub header_delta: bool,
}

impl Default for WriterConfig {
    fn default() -> Self {
        WriterConfig {
            // 4 MiB of headers: ~75k packets, which keeps most flows' references inside a block
            // (bench/results: -10% bytes against 1 MiB); the age limit still bounds latency.
            max_block_bytes: 4 << 20,
            max_block_age_ns: 1_000_000_000,
            zstd_level: 3,
            header_delta: true,
        }
    }
}

/// Records per type.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct RecordCounts {
    pub meta: u64,
    pub packets: u64,
    pub flows: u64,
    pub alerts: u64,
    pub loss: u64,
}

impl RecordCounts {
    pub fn add(&mut self, block_type: u16, n: u64) {
        match BlockType::from_u16(block_type) {
            Some(BlockType::Meta) => self.meta += n,
            Some(BlockType::Packets) => self.packets += n,
            Some(BlockType::Flows) => self.flows += n,
            Some(BlockType::Alerts) => self.alerts += n,
            Some(BlockType::Loss) => self.loss += n,
            Some(BlockType::Trailer) | None => {}
        }
    }
}

/// What `finish` reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SegmentSummary {
    pub seq: u64,
    /// Data blocks written (the trailer not included).
    pub blocks: u32,
    pub counts: RecordCounts,
    /// Total file size.
    pub bytes: u64,
    /// Sum of raw (uncompressed) payload sizes of the data blocks.
    pub raw_bytes: u64,
    pub min_ts: Option<Ts>,
    pub max_ts: Option<Ts>,
    /// SHA-256 of the entire file (the next segment's `prev_sha256`).
    pub sha256: [u8; 32],
}

#[derive(Debug, Default)]
struct RowBuf {
    buf: Vec<u8>,
    count: u32,
    min: u64,
    max: u64,
    opened_at: u64,
}

#[derive(Debug)]
struct TimeSpan {
    min: u64,
    max: u64,
    opened_at: u64,
}

/// Writes one segment. Each call that completes blocks returns how many it wrote, so the
/// file layer can fsync after each one.
pub struct SegmentWriter<W: Write> {
    w: W,
    cfg: WriterConfig,
    seq: u64,
    prev_sha256: [u8; 32],
    hasher: Sha256,
    offset: u64,
    now: u64,
    packets: PacketColumns,
    pk_span: TimeSpan,
    flows: RowBuf,
    alerts: RowBuf,
    loss: RowBuf,
    scratch: Vec<u8>,
    payload: Vec<u8>,
    stored: Vec<u8>,
    compressor: Option<zstd::bulk::Compressor<'static>>,
    index: Vec<IndexEntry>,
    counts: RecordCounts,
    raw_bytes: u64,
    finished: bool,
}

impl<W: Write> std::fmt::Debug for SegmentWriter<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SegmentWriter")
            .field("seq", &self.seq)
            .field("offset", &self.offset)
            .field("blocks", &self.index.len())
            .finish_non_exhaustive()
    }
}

impl<W: Write> SegmentWriter<W> {
    /// Writes the file header. Packet blocks are coded as `cfg.header_delta` says.
    pub fn new(w: W, info: SegmentHeaderInfo, cfg: WriterConfig) -> Result<Self, SegmentError> {
        let coding = if cfg.header_delta { PacketCoding::FieldCoded } else { PacketCoding::Plain };
        Self::with_packet_coding(w, info, cfg, coding)
    }

    /// Writes the file header; packet blocks are coded with `coding` (`cfg.header_delta` is
    /// ignored). The file's minor version is the lowest that has the coding: 1.0 for
    /// [`PacketCoding::Plain`], 1.1 for [`PacketCoding::HeaderDelta`], 1.2 for field coding.
    pub fn with_packet_coding(
        mut w: W,
        info: SegmentHeaderInfo,
        mut cfg: WriterConfig,
        coding: PacketCoding,
    ) -> Result<Self, SegmentError> {
        cfg.max_block_bytes = cfg.max_block_bytes.clamp(1, MAX_PAYLOAD_LEN as usize);
        let mut header = SegmentHeader::new(info.seq, info.prev_sha256, info.created_ns);
        match coding {
            PacketCoding::Plain => {}
            PacketCoding::HeaderDelta => header = header.with_header_delta(),
            PacketCoding::FieldCoded => header = header.with_field_coding(),
        }
        let header = header.encode();
        w.write_all(&header)?;
        let mut hasher = Sha256::new();
        hasher.update(header);
        let compressor =
            if cfg.zstd_level != 0 { Some(zstd::bulk::Compressor::new(cfg.zstd_level)?) } else { None };
        Ok(SegmentWriter {
            w,
            cfg,
            seq: info.seq,
            prev_sha256: info.prev_sha256,
            hasher,
            offset: header.len() as u64,
            now: info.created_ns,
            packets: PacketColumns::new(coding),
            pk_span: TimeSpan { min: u64::MAX, max: 0, opened_at: 0 },
            flows: RowBuf::default(),
            alerts: RowBuf::default(),
            loss: RowBuf::default(),
            scratch: Vec::new(),
            payload: Vec::new(),
            stored: Vec::new(),
            compressor,
            index: Vec::new(),
            counts: RecordCounts::default(),
            raw_bytes: 0,
            finished: false,
        })
    }

    /// Bytes written so far.
    pub fn bytes_written(&self) -> u64 {
        self.offset
    }
    /// Blocks completed so far (trailer included once written).
    pub fn blocks(&self) -> &[IndexEntry] {
        &self.index
    }
    pub fn get_ref(&self) -> &W {
        &self.w
    }
    pub fn get_mut(&mut self) -> &mut W {
        &mut self.w
    }
    pub fn into_inner(self) -> W {
        self.w
    }

    fn check_open(&self) -> Result<(), SegmentError> {
        if self.finished { Err(SegmentError::Finished) } else { Ok(()) }
    }

    /// Writes a metadata block (one record) immediately.
    pub fn write_meta(&mut self, meta: &SegmentMeta) -> Result<usize, SegmentError> {
        self.check_open()?;
        self.payload.clear();
        put_row(&mut self.payload, &mut self.scratch, meta);
        if self.payload.len() > MAX_PAYLOAD_LEN as usize {
            return Err(SegmentError::RecordTooLarge {
                len: self.payload.len() as u64,
                limit: u64::from(MAX_PAYLOAD_LEN),
            });
        }
        self.emit(BlockType::Meta, 1, 0, 0)?;
        Ok(1)
    }

    /// Buffers one packet header record.
    pub fn push_packet(&mut self, p: &PacketRef<'_>) -> Result<usize, SegmentError> {
        self.check_open()?;
        let bound = PacketColumns::record_bound(p);
        if bound > MAX_PAYLOAD_LEN as usize - 128 {
            return Err(SegmentError::RecordTooLarge {
                len: bound as u64,
                limit: u64::from(MAX_PAYLOAD_LEN),
            });
        }
        let mut done = 0;
        if self.packets.count > 0 && self.packets.raw_len() + bound > MAX_PAYLOAD_LEN as usize {
            done += self.flush_packets()?;
        }
        if self.packets.count == 0 {
            self.pk_span = TimeSpan { min: u64::MAX, max: 0, opened_at: self.now };
        }
        self.packets.push(p);
        self.pk_span.min = self.pk_span.min.min(p.ts.0);
        self.pk_span.max = self.pk_span.max.max(p.ts.0);
        if self.packets.raw_len() >= self.cfg.max_block_bytes || self.packets.count == u32::MAX {
            done += self.flush_packets()?;
        }
        Ok(done)
    }

    pub fn push_flow(&mut self, f: &FlowRecord) -> Result<usize, SegmentError> {
        self.push_row(f)
    }
    pub fn push_alert(&mut self, a: &Alert) -> Result<usize, SegmentError> {
        self.push_row(a)
    }
    pub fn push_loss(&mut self, l: &LossRecord) -> Result<usize, SegmentError> {
        self.push_row(l)
    }

    fn row_buf(&mut self, t: BlockType) -> &mut RowBuf {
        match t {
            BlockType::Flows => &mut self.flows,
            BlockType::Alerts => &mut self.alerts,
            _ => &mut self.loss,
        }
    }

    fn push_row<T: Row>(&mut self, r: &T) -> Result<usize, SegmentError> {
        self.check_open()?;
        self.scratch.clear();
        r.encode_body(&mut self.scratch);
        let len = self.scratch.len() + 10;
        if len > MAX_PAYLOAD_LEN as usize {
            return Err(SegmentError::RecordTooLarge { len: len as u64, limit: u64::from(MAX_PAYLOAD_LEN) });
        }
        let mut done = 0;
        let (lo, hi) = r.time_range();
        let b = self.row_buf(T::BLOCK);
        if b.count > 0 && b.buf.len() + len > MAX_PAYLOAD_LEN as usize {
            done += self.flush_rows(T::BLOCK)?;
        }
        let now = self.now;
        let max_bytes = self.cfg.max_block_bytes;
        let scratch = std::mem::take(&mut self.scratch);
        let b = self.row_buf(T::BLOCK);
        if b.count == 0 {
            b.min = u64::MAX;
            b.max = 0;
            b.opened_at = now;
        }
        super::wire::put_bytes(&mut b.buf, &scratch);
        b.count += 1;
        b.min = b.min.min(lo);
        b.max = b.max.max(hi);
        let full = b.buf.len() >= max_bytes || b.count == u32::MAX;
        self.scratch = scratch;
        if full {
            done += self.flush_rows(T::BLOCK)?;
        }
        Ok(done)
    }

    /// Tells the writer the current time: closes blocks opened at least `max_block_age_ns`
    /// before `now`. A block's age counts from the last `tick` (or creation) before its first
    /// record.
    pub fn tick(&mut self, now: Ts) -> Result<usize, SegmentError> {
        self.check_open()?;
        self.now = self.now.max(now.0);
        let age = self.cfg.max_block_age_ns;
        if age == 0 {
            return Ok(0);
        }
        let mut done = 0;
        if self.packets.count > 0 && self.now.saturating_sub(self.pk_span.opened_at) >= age {
            done += self.flush_packets()?;
        }
        for t in [BlockType::Flows, BlockType::Alerts, BlockType::Loss] {
            let now = self.now;
            let b = self.row_buf(t);
            if b.count > 0 && now.saturating_sub(b.opened_at) >= age {
                done += self.flush_rows(t)?;
            }
        }
        Ok(done)
    }

    /// Closes every open block (packets, flows, alerts, loss, in that order).
    pub fn flush(&mut self) -> Result<usize, SegmentError> {
        self.check_open()?;
        let mut done = self.flush_packets()?;
        for t in [BlockType::Flows, BlockType::Alerts, BlockType::Loss] {
            done += self.flush_rows(t)?;
        }
        self.w.flush()?;
        Ok(done)
    }

    /// Closes open blocks, writes the trailer and returns the summary. The writer accepts no
    /// more records afterwards.
    pub fn finish(&mut self) -> Result<SegmentSummary, SegmentError> {
        self.flush()?;
        let content_sha256: [u8; 32] = self.hasher.clone().finalize().into();
        let trailer = Trailer {
            index: self.index.clone(),
            totals: Trailer::totals_of(&self.index),
            prev_sha256: self.prev_sha256,
            content_sha256,
        };
        let timed =
            self.index.iter().filter(|e| BlockType::from_u16(e.block_type).is_some_and(BlockType::is_timed));
        let (min, max) = timed.fold((u64::MAX, 0), |(lo, hi), e| (lo.min(e.min_ts), hi.max(e.max_ts)));
        let blocks = self.index.len() as u32;
        self.payload.clear();
        trailer.encode(&mut self.payload);
        let (tmin, tmax) = if min <= max { (min, max) } else { (0, 0) };
        self.emit(BlockType::Trailer, blocks, tmin, tmax)?;
        self.w.flush()?;
        self.finished = true;
        let sha256: [u8; 32] = self.hasher.clone().finalize().into();
        Ok(SegmentSummary {
            seq: self.seq,
            blocks,
            counts: self.counts,
            bytes: self.offset,
            raw_bytes: self.raw_bytes,
            min_ts: (min <= max).then_some(Ts(min)),
            max_ts: (min <= max).then_some(Ts(max)),
            sha256,
        })
    }

    fn flush_packets(&mut self) -> Result<usize, SegmentError> {
        if self.packets.count == 0 {
            return Ok(0);
        }
        let n = self.packets.count;
        self.payload.clear();
        self.packets.take_into(&mut self.payload);
        self.emit(BlockType::Packets, n, self.pk_span.min, self.pk_span.max)?;
        Ok(1)
    }

    fn flush_rows(&mut self, t: BlockType) -> Result<usize, SegmentError> {
        let b = self.row_buf(t);
        if b.count == 0 {
            return Ok(0);
        }
        let (n, min, max) = (b.count, b.min, b.max);
        let mut buf = std::mem::take(&mut b.buf);
        b.count = 0;
        std::mem::swap(&mut self.payload, &mut buf);
        let r = self.emit(t, n, min, max);
        // Keep both allocations.
        std::mem::swap(&mut self.payload, &mut buf);
        buf.clear();
        self.row_buf(t).buf = buf;
        r.map(|()| 1)
    }

    /// Writes `self.payload` as one block.
    fn emit(&mut self, t: BlockType, count: u32, min_ts: u64, max_ts: u64) -> Result<(), SegmentError> {
        let raw_len = self.payload.len();
        if raw_len > MAX_PAYLOAD_LEN as usize {
            return Err(SegmentError::RecordTooLarge {
                len: raw_len as u64,
                limit: u64::from(MAX_PAYLOAD_LEN),
            });
        }
        let mut codec = CODEC_NONE;
        if let (Some(c), true) = (self.compressor.as_mut(), t != BlockType::Trailer) {
            self.stored.clear();
            self.stored.reserve(zstd::zstd_safe::compress_bound(raw_len));
            c.compress_to_buffer(&self.payload[..], &mut self.stored)?;
            // Incompressible payloads are stored raw: never larger than the input.
            if self.stored.len() < raw_len {
                codec = CODEC_ZSTD;
            }
        }
        let stored: &[u8] = if codec == CODEC_ZSTD { &self.stored } else { &self.payload };
        let h = BlockHeader {
            block_type: t as u16,
            codec,
            layout: LAYOUT_V1,
            stored_len: stored.len() as u32,
            raw_len: raw_len as u32,
            count,
            min_ts,
            max_ts,
            payload_crc: crc32c::crc32c(stored),
        };
        let hb = h.encode();
        self.w.write_all(&hb)?;
        self.w.write_all(stored)?;
        self.hasher.update(hb);
        self.hasher.update(stored);
        if t != BlockType::Trailer {
            self.index.push(IndexEntry { offset: self.offset, block_type: t as u16, count, min_ts, max_ts });
            self.counts.add(t as u16, u64::from(count));
            self.raw_bytes += raw_len as u64;
        }
        self.offset += (hb.len() + stored.len()) as u64;
        Ok(())
    }
}
