//! Synthetic captures built byte by byte here (independently of `capwrite`), so the
//! reader is checked against the file formats rather than against our own writer.

use netrec_analyzer::capwrite::{PcapNgWriter, PcapWriter};
use netrec_analyzer::source::{CaptureFormat, CaptureSource, Compression, SourceError, WarningKind};
use netrec_format::{Direction, LinkType, PacketRecord, PacketRef, Ts};
use std::io::{Cursor, Write};
use std::path::Path;

fn src_from(bytes: &[u8]) -> Result<CaptureSource, SourceError> {
    CaptureSource::from_reader(Path::new("mem.cap"), Box::new(Cursor::new(bytes.to_vec())))
}

/// Reads every packet into owned records.
fn read_all(src: &mut CaptureSource) -> Vec<PacketRecord> {
    let mut out = Vec::new();
    while let Some(p) = src.next_packet().unwrap() {
        out.push(PacketRecord {
            ts: p.ts,
            iface: p.iface,
            direction: p.direction,
            link_type: p.link_type,
            wire_len: p.wire_len,
            data: p.data.to_vec(),
        });
    }
    out
}

fn payload(seed: usize, len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 + seed * 7) as u8).collect()
}

// ---------------------------------------------------------------- classic pcap builder

struct Pcap {
    le: bool,
    bytes: Vec<u8>,
    /// (start, end) of each record.
    records: Vec<(usize, usize)>,
}

impl Pcap {
    fn new(le: bool, nanos: bool, link: u32) -> Pcap {
        let mut p = Pcap { le, bytes: Vec::new(), records: Vec::new() };
        p.u32(if nanos { 0xa1b2_3c4d } else { 0xa1b2_c3d4 });
        p.u16(2);
        p.u16(4);
        p.u32(0);
        p.u32(0);
        p.u32(65535);
        p.u32(link);
        p
    }
    fn u16(&mut self, v: u16) {
        self.bytes.extend(if self.le { v.to_le_bytes() } else { v.to_be_bytes() });
    }
    fn u32(&mut self, v: u32) {
        self.bytes.extend(if self.le { v.to_le_bytes() } else { v.to_be_bytes() });
    }
    fn record(&mut self, sec: u32, frac: u32, data: &[u8], orig: u32) {
        let start = self.bytes.len();
        self.u32(sec);
        self.u32(frac);
        self.u32(data.len() as u32);
        self.u32(orig);
        self.bytes.extend_from_slice(data);
        self.records.push((start, self.bytes.len()));
    }
}

#[test]
fn pcap_every_magic_and_byte_order() {
    for le in [true, false] {
        for nanos in [false, true] {
            // FCS bits (F flag + length) in the upper link-type bits must be masked off.
            let mut p = Pcap::new(le, nanos, 0x1400_0000 | 113);
            let unit = if nanos { 1 } else { 1000 };
            p.record(1_418_145_369, 924_505, &payload(1, 60), 60);
            p.record(1_418_145_370, 52_027, &payload(2, 20), 1514); // snapped
            p.record(1_418_145_370, 52_115, &payload(3, 80), 40); // incl > orig
            let mut src = src_from(&p.bytes).unwrap();
            assert_eq!(src.format(), CaptureFormat::Pcap);
            assert_eq!(src.interfaces().len(), 1);
            assert_eq!(src.interfaces()[0].link_type, LinkType::LINUX_SLL);
            let got = read_all(&mut src);
            assert_eq!(got.len(), 3, "le={le} nanos={nanos}");
            assert_eq!(got[0].ts, Ts(1_418_145_369_000_000_000 + 924_505 * unit));
            assert_eq!(got[1].ts, Ts(1_418_145_370_000_000_000 + 52_027 * unit));
            assert_eq!(got[0].data, payload(1, 60));
            assert_eq!(got[1].data, payload(2, 20));
            assert_eq!((got[0].wire_len, got[1].wire_len, got[2].wire_len), (60, 1514, 80));
            assert!(got.iter().all(|r| r.link_type == LinkType::LINUX_SLL && r.iface == 0));
            assert!(got.iter().all(|r| r.direction == Direction::Unknown));
            assert_eq!(src.warning_count(), 0);
        }
    }
}

#[test]
fn pcap_invalid_subsecond_is_kept_and_warned() {
    let mut p = Pcap::new(true, false, 1);
    p.record(10, 999_999, &[1], 1);
    p.record(10, 1_000_000, &[2], 1);
    p.record(10, 4_000_000, &[3], 1);
    let mut src = src_from(&p.bytes).unwrap();
    let got = read_all(&mut src);
    let ts: Vec<u64> = got.iter().map(|r| r.ts.0).collect();
    assert_eq!(ts, [10_999_999_000, 11_000_000_000, 14_000_000_000]);
    assert_eq!(src.warning_count(), 2);
    let w = &src.warnings()[0];
    assert_eq!((w.kind, w.offset), (WarningKind::InvalidTimestamp, p.records[1].0 as u64));
    assert!(w.to_string().starts_with(&format!("byte {}: ", p.records[1].0)), "{w}");
}

#[test]
fn pcap_impossible_length_ends_input() {
    let mut p = Pcap::new(true, false, 1);
    p.record(1, 0, &payload(1, 100), 100);
    let bad = p.bytes.len();
    p.u32(2);
    p.u32(0);
    p.u32(300_000); // > 256 KiB and > snaplen
    p.u32(300_000);
    p.bytes.extend(payload(2, 400));
    let mut src = src_from(&p.bytes).unwrap();
    assert_eq!(read_all(&mut src).len(), 1);
    assert_eq!(src.warning_count(), 1);
    assert_eq!(src.warnings()[0].kind, WarningKind::BadRecordLength);
    assert_eq!(src.warnings()[0].offset, bad as u64);
    // Stays ended.
    assert!(src.next_packet().unwrap().is_none());
}

#[test]
fn big_records_across_buffer_refills() {
    // 256 KiB records interleaved with small ones: many compactions of the 1 MiB buffer.
    let mut p = Pcap::new(true, true, 1);
    let mut want = Vec::new();
    for i in 0..24 {
        let len = if i % 3 == 0 { 262_144 } else { 100 + i * 1000 };
        let d = payload(i, len);
        p.record(i as u32, 0, &d, len as u32);
        want.push(d);
    }
    let mut src = src_from(&p.bytes).unwrap();
    let got = read_all(&mut src);
    assert_eq!(got.len(), want.len());
    for (g, w) in got.iter().zip(&want) {
        assert!(g.data == *w);
    }
    assert_eq!(src.warning_count(), 0);
    assert_eq!(src.bytes_consumed(), p.bytes.len() as u64);
}

// ---------------------------------------------------------------------- pcapng builder

struct Ng {
    le: bool,
    bytes: Vec<u8>,
    /// (start, end, kind) of each block.
    blocks: Vec<(usize, usize, &'static str)>,
}

fn pad4(v: &mut Vec<u8>) {
    while !v.len().is_multiple_of(4) {
        v.push(0);
    }
}

impl Ng {
    fn new() -> Ng {
        Ng { le: true, bytes: Vec::new(), blocks: Vec::new() }
    }
    fn e16(&self, v: u16) -> [u8; 2] {
        if self.le { v.to_le_bytes() } else { v.to_be_bytes() }
    }
    fn e32(&self, v: u32) -> [u8; 4] {
        if self.le { v.to_le_bytes() } else { v.to_be_bytes() }
    }
    fn opts(&self, opts: &[(u16, Vec<u8>)]) -> Vec<u8> {
        let mut o = Vec::new();
        for (code, val) in opts {
            o.extend(self.e16(*code));
            o.extend(self.e16(val.len() as u16));
            o.extend(val);
            pad4(&mut o);
        }
        if !opts.is_empty() {
            o.extend([0; 4]);
        }
        o
    }
    fn block(&mut self, btype: u32, body: &[u8], kind: &'static str) {
        let start = self.bytes.len();
        let total = (12 + body.len()) as u32;
        let e = self.e32(btype);
        self.bytes.extend(e);
        self.bytes.extend(self.e32(total));
        self.bytes.extend_from_slice(body);
        self.bytes.extend(self.e32(total));
        self.blocks.push((start, self.bytes.len(), kind));
    }
    fn shb(&mut self, le: bool) {
        self.le = le;
        let mut b = Vec::new();
        b.extend(self.e32(0x1A2B_3C4D));
        b.extend(self.e16(1));
        b.extend(self.e16(0));
        b.extend((-1i64).to_le_bytes());
        b.extend(self.opts(&[(4, b"synthetic".to_vec())]));
        self.block(0x0A0D_0D0A, &b, "shb");
    }
    fn idb(&mut self, link: u16, snaplen: u32, name: &str, tsresol: Option<u8>, tsoffset: Option<i64>) {
        let mut b = Vec::new();
        b.extend(self.e16(link));
        b.extend(self.e16(0));
        b.extend(self.e32(snaplen));
        let mut o = vec![(2u16, name.as_bytes().to_vec())];
        if let Some(r) = tsresol {
            o.push((9, vec![r]));
        }
        if let Some(off) = tsoffset {
            o.push((14, if self.le { off.to_le_bytes() } else { off.to_be_bytes() }.to_vec()));
        }
        b.extend(self.opts(&o));
        self.block(1, &b, "idb");
    }
    fn epb(&mut self, iface: u32, ts: u64, data: &[u8], orig: u32, flags: Option<u32>) {
        let mut b = Vec::new();
        b.extend(self.e32(iface));
        b.extend(self.e32((ts >> 32) as u32));
        b.extend(self.e32(ts as u32));
        b.extend(self.e32(data.len() as u32));
        b.extend(self.e32(orig));
        b.extend_from_slice(data);
        pad4(&mut b);
        let mut o = vec![(1u16, b"a comment".to_vec())];
        if let Some(f) = flags {
            o.push((2, self.e32(f).to_vec()));
        }
        b.extend(self.opts(&o));
        self.block(6, &b, "packet");
    }
    fn opb(&mut self, iface: u16, ts: u64, data: &[u8], flags: u32) {
        let mut b = Vec::new();
        b.extend(self.e16(iface));
        b.extend(self.e16(0));
        b.extend(self.e32((ts >> 32) as u32));
        b.extend(self.e32(ts as u32));
        b.extend(self.e32(data.len() as u32));
        b.extend(self.e32(data.len() as u32));
        b.extend_from_slice(data);
        pad4(&mut b);
        b.extend(self.opts(&[(2, self.e32(flags).to_vec())]));
        self.block(2, &b, "packet");
    }
    fn spb(&mut self, data: &[u8], orig: u32) {
        let mut b = Vec::new();
        b.extend(self.e32(orig));
        b.extend_from_slice(data);
        pad4(&mut b);
        self.block(3, &b, "packet");
    }
}

/// Two sections (little- then big-endian), three interfaces with if_tsresol 10^-6,
/// 10^-9 (+ if_tsoffset) and 2^-20, different link types, EPB/SPB/OPB, and NRB, ISB,
/// custom and unknown blocks to skip.
fn multi_section() -> Ng {
    let mut ng = Ng::new();
    ng.shb(true);
    ng.idb(1, 0, "eth0", None, None); // default resolution: microseconds
    ng.idb(101, 65535, "tun0", Some(9), Some(100));
    ng.epb(0, 1_600_000_000_123_456, &payload(1, 60), 60, None);
    ng.block(4, &[0, 0, 0, 0], "skip"); // NRB with just the end record
    ng.epb(1, 5_000_000_007, &payload(2, 41), 1500, Some(1)); // inbound
    ng.block(0x0000_7777, &[1, 2, 3, 4, 5, 6, 7, 8], "unknown");
    ng.spb(&payload(3, 30), 30); // iface 0, previous packet's time
    ng.block(0x0000_0BAD, &[0xde, 0xad, 0xbe, 0xef], "skip"); // custom block
    ng.opb(1, 6_000_000_000, &payload(4, 20), 2); // outbound
    ng.shb(false);
    ng.idb(113, 0, "sll0", Some(0x80 | 20), None);
    // 1.5 s in 2^-20 units, plus 10 whole seconds.
    ng.epb(0, (10 << 20) + (3 << 19), &payload(5, 33), 33, Some(2));
    ng.block(5, &[0; 12], "skip"); // ISB
    ng
}

#[test]
fn pcapng_sections_interfaces_resolutions_and_block_types() {
    let ng = multi_section();
    let mut src = src_from(&ng.bytes).unwrap();
    assert_eq!(src.format(), CaptureFormat::PcapNg);
    // IDBs before the first packet are known at open.
    assert_eq!(src.interfaces().len(), 2);
    let got = read_all(&mut src);
    let ifs = src.interfaces();
    assert_eq!(ifs.len(), 3);
    let names: Vec<(u32, &str, u32)> =
        ifs.iter().map(|i| (i.index, i.name.as_str(), i.link_type.0)).collect();
    assert_eq!(names, [(0, "eth0", 1), (1, "tun0", 101), (2, "sll0", 113)]);
    let summary: Vec<(u64, u32, Direction, u32, u32)> =
        got.iter().map(|r| (r.ts.0, r.iface, r.direction, r.link_type.0, r.wire_len)).collect();
    assert_eq!(
        summary,
        [
            (1_600_000_000_123_456_000, 0, Direction::Unknown, 1, 60),
            (105_000_000_007, 1, Direction::Ingress, 101, 1500),
            (105_000_000_007, 0, Direction::Unknown, 1, 30), // SPB reuses previous time
            (106_000_000_000, 1, Direction::Egress, 101, 20),
            (11_500_000_000, 2, Direction::Egress, 113, 33),
        ]
    );
    for (i, r) in got.iter().enumerate() {
        assert_eq!(r.data, payload(i + 1, r.data.len()));
    }
    assert_eq!(got[1].data.len(), 41);
    // Only the unknown block is worth a warning; NRB/ISB/custom are skipped silently.
    assert_eq!(src.warning_count(), 1, "{:?}", src.warnings());
    let unknown = ng.blocks.iter().find(|b| b.2 == "unknown").unwrap();
    assert_eq!(src.warnings()[0].kind, WarningKind::UnknownBlock);
    assert_eq!(src.warnings()[0].offset, unknown.0 as u64);
}

#[test]
fn pcapng_damage_inside_blocks() {
    // A packet block naming an unknown interface is skipped; reading goes on.
    let mut ng = Ng::new();
    ng.shb(true);
    ng.idb(1, 0, "eth0", None, None);
    ng.epb(7, 1, &[1, 2, 3], 3, None);
    ng.epb(0, 2, &[4, 5], 2, None);
    let mut src = src_from(&ng.bytes).unwrap();
    let got = read_all(&mut src);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].data, [4, 5]);
    assert_eq!(src.warnings()[0].kind, WarningKind::BadBlock);
    assert_eq!(src.warnings()[0].offset, ng.blocks[2].0 as u64);

    // A trailing length that does not match ends the input at that block.
    let mut ng = Ng::new();
    ng.shb(true);
    ng.idb(1, 0, "eth0", None, None);
    ng.epb(0, 1, &[1, 2, 3], 3, None);
    ng.epb(0, 2, &[4, 5], 2, None);
    ng.epb(0, 3, &[6], 1, None);
    let (s, e, _) = ng.blocks[3];
    ng.bytes[e - 4] ^= 0x40;
    let mut src = src_from(&ng.bytes).unwrap();
    assert_eq!(read_all(&mut src).len(), 1);
    assert_eq!(src.warning_count(), 1);
    assert_eq!((src.warnings()[0].kind, src.warnings()[0].offset), (WarningKind::BadBlock, s as u64));
}

#[test]
fn big_pcapng_packet_block() {
    let mut ng = Ng::new();
    ng.shb(true);
    ng.idb(1, 0, "eth0", Some(9), None);
    for i in 0..8 {
        ng.epb(0, i, &payload(i as usize, 262_144 - i as usize), 262_144, None);
    }
    let mut src = src_from(&ng.bytes).unwrap();
    let got = read_all(&mut src);
    assert_eq!(got.len(), 8);
    for (i, r) in got.iter().enumerate() {
        assert!(r.data == payload(i, 262_144 - i));
    }
    assert_eq!(src.warning_count(), 0);
}

// ----------------------------------------------------------- truncation at every byte

/// Cuts `bytes` at every position and checks: no panic; exactly the records that end at
/// or before the cut; at a record boundary no new warning, else one terminal warning at
/// the start of the cut record. `records` = (start, end, is_packet); `header_end` = end
/// of the file header (cuts before it fail to open).
fn check_every_cut(
    bytes: &[u8],
    records: &[(usize, usize, bool)],
    header_end: usize,
    base_warnings: &dyn Fn(usize) -> u64,
) {
    for cut in 0..=bytes.len() {
        let res = src_from(&bytes[..cut]);
        if cut == 0 {
            assert!(matches!(res, Err(SourceError::Empty { .. })), "cut 0");
            continue;
        }
        if cut < header_end {
            match res {
                Err(SourceError::BadHeader { offset, .. }) => assert!(offset < header_end as u64),
                other => panic!("cut {cut}: expected BadHeader, got {other:?}"),
            }
            continue;
        }
        let mut src = res.unwrap_or_else(|e| panic!("cut {cut}: {e}"));
        let got = read_all(&mut src);
        let complete: Vec<_> = records.iter().filter(|r| r.1 <= cut && r.2).collect();
        assert_eq!(got.len(), complete.len(), "cut {cut}");
        for (g, r) in got.iter().zip(&complete) {
            // The packet's bytes are inside its record.
            let data = &bytes[r.0..r.1];
            assert!(data.windows(g.data.len().max(1)).any(|w| g.data.is_empty() || w == &g.data[..]));
        }
        let at_boundary = cut == header_end || records.iter().any(|r| r.1 == cut);
        let base = base_warnings(cut);
        if at_boundary {
            assert_eq!(src.warning_count(), base, "cut {cut}: {:?}", src.warnings());
        } else {
            assert_eq!(src.warning_count(), base + 1, "cut {cut}: {:?}", src.warnings());
            let cut_rec = records.iter().find(|r| r.0 < cut && cut < r.1).unwrap();
            let w = src.warnings().last().unwrap();
            assert!(matches!(w.kind, WarningKind::TruncatedRecord | WarningKind::TrailingGarbage), "{w:?}");
            assert_eq!(w.offset, cut_rec.0 as u64, "cut {cut}: {w}");
            assert!(w.to_string().starts_with(&format!("byte {}: ", cut_rec.0)));
        }
    }
}

#[test]
fn pcap_cut_at_every_byte() {
    let mut p = Pcap::new(false, true, 1);
    for i in 0..5 {
        p.record(i, i * 1000, &payload(i as usize, (i as usize * 37) % 90), 90);
    }
    let recs: Vec<_> = p.records.iter().map(|&(s, e)| (s, e, true)).collect();
    check_every_cut(&p.bytes, &recs, 24, &|_| 0);
}

#[test]
fn pcapng_cut_at_every_byte() {
    let ng = multi_section();
    let shb_end = ng.blocks[0].1;
    let recs: Vec<_> = ng.blocks[1..].iter().map(|&(s, e, k)| (s, e, k == "packet")).collect();
    let unknown_end = ng.blocks.iter().find(|b| b.2 == "unknown").unwrap().1;
    check_every_cut(&ng.bytes, &recs, shb_end, &|cut| u64::from(cut >= unknown_end));
}

// ---------------------------------------------------------------------- compression

fn sample_pcap() -> Pcap {
    let mut p = Pcap::new(true, false, 1);
    for i in 0..50 {
        p.record(1000 + i, i * 10, &payload(i as usize, 64 + i as usize), 1000);
    }
    p
}

#[test]
fn gzip_and_zstd_are_sniffed_not_named() {
    let p = sample_pcap();
    let plain = read_all(&mut src_from(&p.bytes).unwrap());
    assert_eq!(plain.len(), 50);

    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&p.bytes).unwrap();
    let gz = gz.finish().unwrap();
    let zst = zstd::encode_all(&p.bytes[..], 3).unwrap();
    // Two gzip members (as `cat a.gz b.gz` makes) decode as one stream.
    let (a, b) = p.bytes.split_at(1000);
    let mut multi = Vec::new();
    for part in [a, b] {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(part).unwrap();
        multi.extend(e.finish().unwrap());
    }

    let dir = tempfile::tempdir().unwrap();
    for (name, bytes, codec) in [
        ("looks-plain.pcap", &gz, Compression::Gzip),
        ("capture.zst.gz", &zst, Compression::Zstd),
        ("multi.pcapng", &multi, Compression::Gzip),
    ] {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        let mut src = CaptureSource::open(&path).unwrap();
        assert_eq!(src.format(), CaptureFormat::Pcap, "{name}");
        assert_eq!(src.compression(), Some(codec), "{name}");
        assert_eq!(read_all(&mut src), plain, "{name}");
        assert_eq!(src.warning_count(), 0, "{name}");
        assert_eq!(src.bytes_consumed(), bytes.len() as u64, "{name}");
    }

    // pcapng inside zstd too.
    let ng = multi_section();
    let zst = zstd::encode_all(&ng.bytes[..], 1).unwrap();
    let mut src = src_from(&zst).unwrap();
    assert_eq!(src.format(), CaptureFormat::PcapNg);
    assert_eq!(read_all(&mut src).len(), 5);
}

/// Incompressible-looking bytes (xorshift), so compressed streams span many blocks.
fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

#[test]
fn cut_compressed_stream_keeps_the_good_part() {
    let mut p = Pcap::new(true, false, 1);
    for i in 0..3000 {
        p.record(i, 0, &noise(i as u64, 400), 400);
    }
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&p.bytes).unwrap();
    let gz = gz.finish().unwrap();
    let zst = zstd::encode_all(&p.bytes[..], 3).unwrap();
    for (name, bytes) in [("gz", gz), ("zst", zst)] {
        let cut = &bytes[..bytes.len() * 2 / 3];
        let mut src = src_from(cut).unwrap();
        let got = read_all(&mut src);
        assert!(got.len() > 1000 && got.len() < 3000, "{name}: {}", got.len());
        assert_eq!(src.warning_count(), 1, "{name}");
        let w = &src.warnings()[0];
        assert!(matches!(w.kind, WarningKind::Decompress | WarningKind::TruncatedRecord), "{name}: {w:?}");
        // The warning names the first record not returned; all returned are intact.
        assert_eq!(w.offset, p.records[got.len()].0 as u64, "{name}: {w}");
        for (i, r) in got.iter().enumerate() {
            assert!(r.data == noise(i as u64, 400), "{name}");
        }
    }
    // Garbage after a gzip magic: a decompression error before any data is fatal.
    let err = src_from(&[0x1f, 0x8b, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 0]).unwrap_err();
    assert!(matches!(err, SourceError::Decompress { codec: Compression::Gzip, .. }), "{err:?}");
}

// ------------------------------------------------------------------ not a capture

#[test]
fn empty_text_and_segment_inputs() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.pcap");
    std::fs::write(&empty, b"").unwrap();
    match CaptureSource::open(&empty) {
        Err(SourceError::Empty { path }) => assert_eq!(path, empty),
        other => panic!("{other:?}"),
    }

    let text = dir.path().join("notes.pcap");
    std::fs::write(&text, b"hello, these are my notes\n").unwrap();
    let err = CaptureSource::open(&text).unwrap_err();
    assert!(matches!(err, SourceError::NotACapture { magic: [b'h', b'e', b'l', b'l'], .. }), "{err:?}");
    assert!(err.to_string().contains(&*text.to_string_lossy()), "{err}");
    assert!(err.to_string().contains("68656c6c"), "{err}");

    let seg = dir.path().join("seg.pcap");
    std::fs::write(&seg, b"\x89NRS\r\n\x1a\n\x01\x00rest of a segment").unwrap();
    assert!(matches!(CaptureSource::open(&seg), Err(SourceError::IsSegment { .. })));

    let missing = dir.path().join("missing.pcap");
    let err = CaptureSource::open(&missing).unwrap_err();
    assert!(matches!(err, SourceError::Io { .. }));
    assert!(err.to_string().contains("missing.pcap"));

    // Unsupported pcap version and pcapng byte-order magic name their offsets.
    let mut p = Pcap::new(true, false, 1);
    p.bytes[4] = 3;
    assert!(matches!(src_from(&p.bytes), Err(SourceError::BadHeader { offset: 4, .. })));
    let mut ng = Ng::new();
    ng.shb(true);
    ng.bytes[8] = 0;
    assert!(matches!(src_from(&ng.bytes), Err(SourceError::BadHeader { offset: 8, .. })));
}

// -------------------------------------------------------------------------- writers

fn sample_packets() -> Vec<PacketRecord> {
    (0..20u32)
        .map(|i| PacketRecord {
            ts: Ts(1_700_000_000_000_000_000 + i as u64 * 1_000_000_007),
            iface: 0,
            direction: [Direction::Unknown, Direction::Ingress, Direction::Egress][i as usize % 3],
            link_type: LinkType::ETHERNET,
            wire_len: 100 + i * 50,
            data: payload(i as usize, 100 + i as usize * 50),
        })
        .collect()
}

#[test]
fn pcap_writer_round_trip() {
    let pkts = sample_packets();
    let mut w = PcapWriter::new(Vec::new(), LinkType::ETHERNET, 500).unwrap();
    for p in &pkts {
        w.write_packet(&p.as_ref()).unwrap();
    }
    let bytes = w.into_inner().unwrap();
    // Nanosecond magic, little-endian.
    assert_eq!(&bytes[..4], &[0x4d, 0x3c, 0xb2, 0xa1]);
    let mut src = src_from(&bytes).unwrap();
    let got = read_all(&mut src);
    assert_eq!(got.len(), pkts.len());
    for (g, p) in got.iter().zip(&pkts) {
        assert_eq!(g.ts, p.ts);
        assert_eq!(g.wire_len, p.wire_len);
        assert_eq!(g.data, p.data[..p.data.len().min(500)]);
        assert_eq!(g.direction, Direction::Unknown); // pcap has no direction
    }
    assert_eq!(src.warning_count(), 0);
    // Seconds past 2106 do not fit.
    let mut w = PcapWriter::new(Vec::new(), LinkType::ETHERNET, 0).unwrap();
    let far = PacketRef { ts: Ts(u64::MAX), ..pkts[0].as_ref() };
    assert!(w.write_packet(&far).is_err());
}

#[test]
fn pcapng_writer_round_trip() {
    let pkts = sample_packets();
    let mut w = PcapNgWriter::new(Vec::new()).unwrap();
    assert_eq!(w.add_interface(LinkType::ETHERNET, 0, "eth0").unwrap(), 0);
    assert_eq!(w.add_interface(LinkType::RAW, 300, "").unwrap(), 1);
    for (i, p) in pkts.iter().enumerate() {
        let comment = if i % 2 == 0 { Some("alert: port scan") } else { None };
        w.write_packet(i as u32 % 2, &p.as_ref(), comment).unwrap();
    }
    assert!(w.write_packet(2, &pkts[0].as_ref(), None).is_err());
    let bytes = w.into_inner().unwrap();
    let mut src = src_from(&bytes).unwrap();
    assert_eq!(src.format(), CaptureFormat::PcapNg);
    let got = read_all(&mut src);
    assert_eq!(src.warning_count(), 0, "{:?}", src.warnings());
    let ifs: Vec<(&str, LinkType)> =
        src.interfaces().iter().map(|i| (i.name.as_str(), i.link_type)).collect();
    assert_eq!(ifs, [("eth0", LinkType::ETHERNET), ("", LinkType::RAW)]);
    assert_eq!(got.len(), pkts.len());
    for (i, (g, p)) in got.iter().zip(&pkts).enumerate() {
        assert_eq!((g.ts, g.direction, g.wire_len, g.iface), (p.ts, p.direction, p.wire_len, i as u32 % 2));
        let snap = if i % 2 == 1 { 300 } else { usize::MAX };
        assert_eq!(g.data, p.data[..p.data.len().min(snap)]);
        assert_eq!(g.link_type, if i % 2 == 0 { LinkType::ETHERNET } else { LinkType::RAW });
    }
    // The comment is stored as an opt_comment option, verbatim.
    let needle = b"alert: port scan";
    assert_eq!(bytes.windows(needle.len()).filter(|w| w == needle).count(), 10);
}

// ---------------------------------------------------------------- property: no panic

mod props {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn arbitrary_records_never_panic(tail in proptest::collection::vec(any::<u8>(), 0..600), ng in any::<bool>()) {
            let mut bytes = if ng {
                let mut n = Ng::new();
                n.shb(true);
                n.idb(1, 0, "x", Some(9), None);
                n.bytes
            } else {
                Pcap::new(true, false, 1).bytes
            };
            bytes.extend(tail);
            if let Ok(mut src) = src_from(&bytes) {
                let mut n = 0;
                while let Ok(Some(_)) = src.next_packet() {
                    n += 1;
                }
                prop_assert!(n <= bytes.len());
            }
        }

        #[test]
        fn mutated_capture_never_panics(flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8)) {
            let mut bytes = multi_section().bytes;
            for (at, v) in flips {
                let i = at % bytes.len();
                bytes[i] = v;
            }
            if let Ok(mut src) = src_from(&bytes) {
                while let Ok(Some(p)) = src.next_packet() {
                    prop_assert!(p.data.len() <= bytes.len());
                }
            }
        }
    }
}
