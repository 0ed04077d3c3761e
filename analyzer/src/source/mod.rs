//! Capture sources: classic pcap and pcapng readers, optionally gzip- or zstd-compressed.
//!
//! The format is always detected from the first bytes (compression magic, then capture
//! magic), never from the file name. Readers are written for this crate (not `pcap-file`)
//! so that every problem names the byte offset where it was found, per-interface
//! timestamp resolutions are honoured, odd timestamps are tolerated, and packets are
//! handed out as slices of one large read buffer (no allocation per packet).
//!
//! Damage policy: a problem that breaks the framing (a cut record, an impossible length,
//! a mismatched pcapng trailing length) ends the input with a warning; every complete
//! record before it has been returned. Problems local to one record (a bad timestamp, an
//! unknown pcapng block, a packet block naming an unknown interface) add a warning and
//! reading goes on. Only I/O failures and unreadable file headers are errors.
//!
//! Timestamp rules (documented here because they are choices):
//! - pcap: `ts = sec * 1e9 + frac` with `frac` scaled to nanoseconds as stored, even when
//!   it is out of range (>= 1e6 us or >= 1e9 ns); such records get an
//!   [`WarningKind::InvalidTimestamp`] warning. The header's `thiszone` is ignored (every
//!   writer in use sets it to 0).
//! - pcapng: the 64-bit count is scaled by the interface's `if_tsresol` (power of 10 or of
//!   2, rounded down to whole nanoseconds) and `if_tsoffset` seconds are added; a result
//!   below 0 or above `i64::MAX` ns (2262-04-11, the database's signed 64-bit integers) is
//!   clamped and warned about, so every output shows the same time.
//! - pcapng Simple Packet Blocks carry no time: they reuse the previous packet's time (0
//!   before any packet).
//! - `PacketRef::iface` is the global interface number of [`CaptureSource::interfaces`]
//!   (pcap: always 0; pcapng: IDBs of every section numbered in file order).

mod buf;
mod pcap;
mod pcapng;

use buf::StreamBuf;
use netrec_format::{Direction, InterfaceInfo, LinkType, PacketRef, Ts};
use std::fmt;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// First bytes of a netrec segment file. Sources refuse such files with
/// [`SourceError::IsSegment`] so the caller can route them to the segment reader.
pub const SEGMENT_MAGIC_PREFIX: &[u8] = &netrec_format::segment::MAGIC;

/// Largest captured length accepted for one packet (tcpdump's and Wireshark's maximum
/// snapshot length). A larger length in a record header means the framing is damaged.
pub const MAX_CAPTURED_LEN: u32 = 256 * 1024;

/// Warnings kept per kind; the total is always counted (see [`CaptureSource::warning_count`]).
const KEEP_PER_KIND: u32 = 20;

/// Container format of a capture, as detected from its magic number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CaptureFormat {
    Pcap,
    PcapNg,
}

/// Compression detected in front of the capture.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    Gzip,
    Zstd,
}

impl Compression {
    fn as_str(self) -> &'static str {
        match self {
            Compression::Gzip => "gzip",
            Compression::Zstd => "zstd",
        }
    }
}

impl fmt::Display for Compression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What kind of damage or oddity a [`SourceWarning`] reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum WarningKind {
    /// The input ends inside a record or block (header complete, body cut).
    TruncatedRecord,
    /// A record header gives an impossible captured length; the framing is lost.
    BadRecordLength,
    /// A timestamp out of range (sub-second field too large, or outside `u64` ns).
    InvalidTimestamp,
    /// A pcapng block of a type this reader does not know; skipped by its length.
    UnknownBlock,
    /// A malformed pcapng block (bad lengths, unknown interface, bad options).
    BadBlock,
    /// Bytes at the end of the input too few to form a record header.
    TrailingGarbage,
    /// The compressed stream is damaged or cut; the input ends where decoding failed.
    Decompress,
}

impl WarningKind {
    const COUNT: usize = 7;
    fn index(self) -> usize {
        match self {
            WarningKind::TruncatedRecord => 0,
            WarningKind::BadRecordLength => 1,
            WarningKind::InvalidTimestamp => 2,
            WarningKind::UnknownBlock => 3,
            WarningKind::BadBlock => 4,
            WarningKind::TrailingGarbage => 5,
            WarningKind::Decompress => 6,
        }
    }
}

/// A non-fatal problem found while reading, at a byte offset of the decompressed stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourceWarning {
    pub offset: u64,
    pub kind: WarningKind,
    pub message: String,
}

impl fmt::Display for SourceWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "byte {}: {}", self.offset, self.message)
    }
}

/// A capture that cannot be read at all (or an I/O failure while reading it).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SourceError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{}: file is empty", path.display())]
    Empty { path: PathBuf },
    #[error("{}: not a pcap or pcapng capture (first bytes {})", path.display(), hex::encode(magic))]
    NotACapture { path: PathBuf, magic: [u8; 4] },
    #[error("{}: this is a netrec segment, not a capture", path.display())]
    IsSegment { path: PathBuf },
    #[error("{}: byte {offset}: bad capture file header: {what}", path.display())]
    BadHeader { path: PathBuf, offset: u64, what: String },
    #[error("{}: {codec} decompression failed", path.display())]
    Decompress {
        path: PathBuf,
        codec: Compression,
        #[source]
        source: io::Error,
    },
}

/// Kept warnings (capped per kind) and the total count.
#[derive(Debug, Default)]
pub(crate) struct Warnings {
    kept: Vec<SourceWarning>,
    total: u64,
    per_kind: [u32; WarningKind::COUNT],
}

impl Warnings {
    /// Records a warning. `terminal` warnings (those that end the input) are always kept;
    /// the message is only built when the warning is kept.
    pub(crate) fn add(
        &mut self,
        offset: u64,
        kind: WarningKind,
        terminal: bool,
        message: impl FnOnce() -> String,
    ) {
        self.total += 1;
        let n = &mut self.per_kind[kind.index()];
        *n = n.saturating_add(1);
        if terminal || *n <= KEEP_PER_KIND {
            self.kept.push(SourceWarning { offset, kind, message: message() });
        }
    }
}

/// State the format parsers share with the source.
#[derive(Debug, Default)]
pub(crate) struct Ctx {
    pub(crate) warnings: Warnings,
    pub(crate) interfaces: Vec<InterfaceInfo>,
}

/// Where a parsed packet lives in the read buffer, plus its metadata.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Pkt {
    pub(crate) ts: Ts,
    pub(crate) iface: u32,
    pub(crate) direction: Direction,
    pub(crate) link_type: LinkType,
    pub(crate) wire_len: u32,
    /// Absolute index in the read buffer (see `StreamBuf::slice`).
    pub(crate) start: usize,
    pub(crate) len: usize,
}

/// One parser step.
#[derive(Debug)]
pub(crate) enum Step {
    Packet(Pkt),
    /// The next block holds a packet; nothing consumed (only with `stop_at_packet`).
    AtPacket,
    End,
}

#[derive(Debug)]
enum Parser {
    Pcap(pcap::PcapParser),
    PcapNg(pcapng::PcapNgParser),
}

/// Raw (file-side) byte counter and failure flag, shared with the reader inside the
/// decompressor so progress and error attribution work through it.
#[derive(Debug, Default)]
struct RawCounters {
    bytes: AtomicU64,
    failed: AtomicBool,
}

struct CountingReader {
    inner: Box<dyn Read + Send>,
    counters: Arc<RawCounters>,
}

impl Read for CountingReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        match self.inner.read(out) {
            Ok(n) => {
                self.counters.bytes.fetch_add(n as u64, Ordering::Relaxed);
                Ok(n)
            }
            Err(e) => {
                if e.kind() != io::ErrorKind::Interrupted {
                    self.counters.failed.store(true, Ordering::Relaxed);
                }
                Err(e)
            }
        }
    }
}

/// A pcap or pcapng capture being read packet by packet.
#[derive(Debug)]
pub struct CaptureSource {
    path: PathBuf,
    format: CaptureFormat,
    compression: Option<Compression>,
    buf: StreamBuf,
    parser: Parser,
    ctx: Ctx,
    raw: Arc<RawCounters>,
    packets: u64,
    done: bool,
}

/// Reads until `out` is full or the stream ends; returns the number of bytes read.
fn read_up_to(r: &mut dyn Read, out: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < out.len() {
        match r.read(&mut out[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

const PCAPNG_MAGIC: [u8; 4] = [0x0a, 0x0d, 0x0d, 0x0a];

/// (little-endian, nanosecond) for each classic pcap magic as it appears on disk.
fn pcap_magic(m: &[u8]) -> Option<(bool, bool)> {
    match m {
        [0xd4, 0xc3, 0xb2, 0xa1] => Some((true, false)),
        [0xa1, 0xb2, 0xc3, 0xd4] => Some((false, false)),
        [0x4d, 0x3c, 0xb2, 0xa1] => Some((true, true)),
        [0xa1, 0xb2, 0x3c, 0x4d] => Some((false, true)),
        _ => None,
    }
}

fn is_prefix_of_known_magic(head: &[u8]) -> bool {
    const MAGICS: [[u8; 4]; 5] = [
        [0xd4, 0xc3, 0xb2, 0xa1],
        [0xa1, 0xb2, 0xc3, 0xd4],
        [0x4d, 0x3c, 0xb2, 0xa1],
        [0xa1, 0xb2, 0x3c, 0x4d],
        PCAPNG_MAGIC,
    ];
    !head.is_empty() && MAGICS.iter().any(|m| m.starts_with(head))
}

impl CaptureSource {
    /// Opens a capture file, decompressing gzip or zstd transparently (detected by magic).
    pub fn open(path: &Path) -> Result<CaptureSource, SourceError> {
        let file = std::fs::File::open(path)
            .map_err(|source| SourceError::Io { path: path.to_path_buf(), source })?;
        CaptureSource::from_reader(path, Box::new(file))
    }

    /// Reads a capture from any byte stream; `name` is used in errors only.
    pub fn from_reader(name: &Path, r: Box<dyn Read + Send>) -> Result<CaptureSource, SourceError> {
        let path = name.to_path_buf();
        let raw = Arc::new(RawCounters::default());
        let mut counting = CountingReader { inner: r, counters: Arc::clone(&raw) };
        let mut head = [0u8; 16];
        let n = read_up_to(&mut counting, &mut head)
            .map_err(|source| SourceError::Io { path: path.clone(), source })?;
        let head = &head[..n];
        if n == 0 {
            return Err(SourceError::Empty { path });
        }
        if head.starts_with(SEGMENT_MAGIC_PREFIX) {
            return Err(SourceError::IsSegment { path });
        }
        let compression = match head {
            [0x1f, 0x8b, ..] => Some(Compression::Gzip),
            [0x28, 0xb5, 0x2f, 0xfd, ..] => Some(Compression::Zstd),
            _ => None,
        };
        let chained = io::Cursor::new(head.to_vec()).chain(counting);
        let stream: Box<dyn Read + Send> = match compression {
            None => Box::new(chained),
            Some(Compression::Gzip) => Box::new(flate2::read::MultiGzDecoder::new(chained)),
            Some(Compression::Zstd) => Box::new(zstd::Decoder::new(chained).map_err(|source| {
                SourceError::Decompress { path: path.clone(), codec: Compression::Zstd, source }
            })?),
        };
        let mut buf = StreamBuf::new(stream);
        let classify = |e: io::Error| classify_err(&path, compression, &raw, e);
        buf.fill(SEGMENT_MAGIC_PREFIX.len().max(4)).map_err(classify)?;
        let head = buf.avail();
        if head.is_empty() {
            return Err(SourceError::Empty { path });
        }
        if head.starts_with(SEGMENT_MAGIC_PREFIX) {
            return Err(SourceError::IsSegment { path });
        }
        let mut magic = [0u8; 4];
        let m = head.len().min(4);
        magic[..m].copy_from_slice(&head[..m]);
        let mut ctx = Ctx::default();
        let (format, parser) = if let Some((le, nanos)) = pcap_magic(head.get(..4).unwrap_or(&[])) {
            let p = pcap::PcapParser::start(&mut buf, &mut ctx, le, nanos)
                .map_err(|e| header_err(&path, compression, &raw, e))?;
            (CaptureFormat::Pcap, Parser::Pcap(p))
        } else if head.starts_with(&PCAPNG_MAGIC) {
            let p = pcapng::PcapNgParser::start(&mut buf, &mut ctx)
                .map_err(|e| header_err(&path, compression, &raw, e))?;
            (CaptureFormat::PcapNg, Parser::PcapNg(p))
        } else if head.len() < 4 && is_prefix_of_known_magic(head) {
            return Err(SourceError::BadHeader {
                path,
                offset: 0,
                what: format!("input ends after {} bytes, inside the magic number", head.len()),
            });
        } else {
            return Err(SourceError::NotACapture { path, magic });
        };
        let mut src =
            CaptureSource { path, format, compression, buf, parser, ctx, raw, packets: 0, done: false };
        // Read the pcapng blocks before the first packet (section and interface
        // descriptions) so `interfaces()` is useful right after `open`.
        if src.format == CaptureFormat::PcapNg {
            src.advance(true)?;
        }
        Ok(src)
    }

    pub fn format(&self) -> CaptureFormat {
        self.format
    }

    /// Compression found in front of the capture, if any.
    pub fn compression(&self) -> Option<Compression> {
        self.compression
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Next packet; `Ok(None)` at end of input. A damaged tail ends the input with a
    /// warning that names the byte offset (of the decompressed stream); everything before
    /// it was returned. Only a fatal error is `Err`.
    pub fn next_packet(&mut self) -> Result<Option<PacketRef<'_>>, SourceError> {
        match self.advance(false)? {
            Some(p) => {
                self.packets += 1;
                Ok(Some(PacketRef {
                    ts: p.ts,
                    iface: p.iface,
                    direction: p.direction,
                    link_type: p.link_type,
                    wire_len: p.wire_len,
                    data: self.buf.slice(p.start, p.len),
                }))
            }
            None => Ok(None),
        }
    }

    /// Runs the parser one step. `Ok(None)` means the input has ended (or, with
    /// `stop_at_packet`, that a packet block is next).
    fn advance(&mut self, stop_at_packet: bool) -> Result<Option<Pkt>, SourceError> {
        if self.done {
            return Ok(None);
        }
        let step = match &mut self.parser {
            Parser::Pcap(p) => p.next(&mut self.buf, &mut self.ctx),
            Parser::PcapNg(p) => p.next(&mut self.buf, &mut self.ctx, stop_at_packet),
        };
        match step {
            Ok(Step::Packet(p)) => Ok(Some(p)),
            Ok(Step::AtPacket) => Ok(None),
            Ok(Step::End) => {
                self.done = true;
                Ok(None)
            }
            Err(e) => {
                self.done = true;
                match classify_err(&self.path, self.compression, &self.raw, e) {
                    SourceError::Decompress { codec, source, .. } => {
                        // The decompressed bytes before the damage were good: keep what
                        // was read and report where the stream broke.
                        let offset = self.buf.offset();
                        self.ctx.warnings.add(offset, WarningKind::Decompress, true, || {
                            format!("{codec} stream damaged or cut ({source}); input ends here")
                        });
                        Ok(None)
                    }
                    other => Err(other),
                }
            }
        }
    }

    /// Warnings kept so far (at most a few of each kind, plus the one that ended the
    /// input); see [`CaptureSource::warning_count`] for the total.
    pub fn warnings(&self) -> &[SourceWarning] {
        &self.ctx.warnings.kept
    }

    /// Total number of warnings, kept or not.
    pub fn warning_count(&self) -> u64 {
        self.ctx.warnings.total
    }

    /// Interfaces seen so far: pcap has one (index 0); pcapng lists every IDB of every
    /// section, numbered globally in file order (an IDB after the first packet appears
    /// once it has been read).
    pub fn interfaces(&self) -> &[InterfaceInfo] {
        &self.ctx.interfaces
    }

    /// File-side bytes consumed so far (compressed bytes for compressed input), for
    /// progress display. Compressed input is read ahead, so this runs slightly early.
    pub fn bytes_consumed(&self) -> u64 {
        match self.compression {
            None => self.buf.offset(),
            Some(_) => self.raw.bytes.load(Ordering::Relaxed),
        }
    }

    /// Packets returned so far.
    pub fn packets(&self) -> u64 {
        self.packets
    }
}

/// An I/O error is a decompression error when the input was compressed and the raw
/// reader underneath did not fail.
fn classify_err(
    path: &Path,
    compression: Option<Compression>,
    raw: &RawCounters,
    source: io::Error,
) -> SourceError {
    match compression {
        Some(codec) if !raw.failed.load(Ordering::Relaxed) => {
            SourceError::Decompress { path: path.to_path_buf(), codec, source }
        }
        _ => SourceError::Io { path: path.to_path_buf(), source },
    }
}

/// Failure while reading a file header.
#[derive(Debug)]
pub(crate) enum HeaderFail {
    Io(io::Error),
    Bad { offset: u64, what: String },
}

fn header_err(
    path: &Path,
    compression: Option<Compression>,
    raw: &RawCounters,
    e: HeaderFail,
) -> SourceError {
    match e {
        HeaderFail::Io(e) => classify_err(path, compression, raw, e),
        HeaderFail::Bad { offset, what } => SourceError::BadHeader { path: path.to_path_buf(), offset, what },
    }
}

/// Byte-order aware field readers; out-of-range reads yield 0 (callers check lengths
/// first, so this only keeps the code panic-free by construction).
#[inline]
pub(crate) fn rd16(b: &[u8], off: usize, le: bool) -> u16 {
    match off.checked_add(2).and_then(|e| b.get(off..e)) {
        Some(&[x, y]) => {
            if le {
                u16::from_le_bytes([x, y])
            } else {
                u16::from_be_bytes([x, y])
            }
        }
        _ => 0,
    }
}

#[inline]
pub(crate) fn rd32(b: &[u8], off: usize, le: bool) -> u32 {
    match off.checked_add(4).and_then(|e| b.get(off..e)) {
        Some(&[a, b2, c, d]) => {
            if le {
                u32::from_le_bytes([a, b2, c, d])
            } else {
                u32::from_be_bytes([a, b2, c, d])
            }
        }
        _ => 0,
    }
}

#[inline]
pub(crate) fn rd64(b: &[u8], off: usize, le: bool) -> u64 {
    match off.checked_add(8).and_then(|e| b.get(off..e)).and_then(|s| <[u8; 8]>::try_from(s).ok()) {
        Some(a) => {
            if le {
                u64::from_le_bytes(a)
            } else {
                u64::from_be_bytes(a)
            }
        }
        None => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warnings_cap_per_kind_but_keep_terminal() {
        let mut w = Warnings::default();
        for i in 0..100 {
            w.add(i, WarningKind::InvalidTimestamp, false, || format!("ts {i}"));
        }
        w.add(500, WarningKind::TruncatedRecord, true, || "cut".into());
        assert_eq!(w.total, 101);
        assert_eq!(w.kept.len(), KEEP_PER_KIND as usize + 1);
        assert_eq!(w.kept.last().unwrap().to_string(), "byte 500: cut");
    }

    #[test]
    fn source_can_move_to_a_worker_thread() {
        fn is_send<T: Send>() {}
        is_send::<CaptureSource>();
        is_send::<SourceError>();
    }

    #[test]
    fn readers_are_bounds_safe() {
        assert_eq!(rd32(&[1, 2, 3], 0, true), 0);
        assert_eq!(rd16(&[1, 2], 0, false), 0x0102);
        assert_eq!(rd64(&[1, 0, 0, 0, 0, 0, 0, 0], 0, true), 1);
        assert_eq!(rd32(&[1, 2, 3, 4], usize::MAX - 1, true), 0);
    }
}
