//! `xtask seg-bench`: what a capture costs in segments. Bytes per packet-header record and per
//! flow record, segment write and read rates, next to `zstd -3` over the first 64 bytes of each
//! packet (the issue #8 yardstick: a generic compressor on the same headers). All figures come
//! from one process on one input, so their ratios hold on any machine.

use anyhow::Context as _;
use netrec_analyzer::pipeline::Input;
use netrec_format::decode::decode;
use netrec_format::segment::{
    BlockBody, PacketCoding, Recovery, SegmentHeaderInfo, SegmentReader, SegmentWriter, WriterConfig,
};
use netrec_format::{PacketRecord, PacketRef};
use netrec_rules::{Engine, Limits, RuleSet, VecSink};
use std::path::Path;
use std::time::Instant;

pub struct Report {
    pub packets: u64,
    pub flows: u64,
    pub snaplen: usize,
    pub captured_bytes: u64,
    /// Field coding (format 1.2), default writer settings.
    pub segment_bytes: u64,
    /// The same with 1 MiB blocks (the default before 1.2).
    pub segment_1m_bytes: u64,
    /// The same records with header-delta coding (format 1.1).
    pub delta_segment_bytes: u64,
    /// The same records without header-delta coding (segment format 1.0).
    pub plain_segment_bytes: u64,
    pub flow_segment_bytes: u64,
    pub zstd3_first64: u64,
    pub zstd3_snaplen: u64,
    pub write_secs: f64,
    pub read_secs: f64,
    /// Write and read times of the 1.1 file, for comparison.
    pub delta_write_secs: f64,
    pub delta_read_secs: f64,
}

fn write_segment(
    records: &[PacketRecord],
    coding: PacketCoding,
    block: Option<usize>,
) -> anyhow::Result<Vec<u8>> {
    let info = SegmentHeaderInfo { seq: 1, prev_sha256: [0; 32], created_ns: 0 };
    let d = WriterConfig::default();
    let cfg = WriterConfig { max_block_bytes: block.unwrap_or(d.max_block_bytes), ..d };
    let mut w = SegmentWriter::with_packet_coding(Vec::with_capacity(records.len() * 48), info, cfg, coding)?;
    for r in records {
        w.push_packet(&r.as_ref())?;
    }
    w.finish()?;
    Ok(w.into_inner())
}

pub fn run(pcap: &Path, snaplen: usize, dump: Option<&Path>) -> anyhow::Result<Report> {
    let mut input = Input::open(pcap).with_context(|| format!("opening {}", pcap.display()))?;
    let mut records = Vec::new();
    let mut first64 = Vec::new();
    let mut snapped = Vec::new();
    let mut engine = Engine::new(RuleSet::default_pack(), Limits::default());
    let mut sink = VecSink::default();
    while let Some(p) = input.next_packet().with_context(|| format!("reading {}", pcap.display()))? {
        // snaplen 0: headers only (L2-L4, cut where the decoder says the payload starts).
        let cap = if snaplen == 0 {
            let d = decode(p.link_type, p.data, p.wire_len);
            (d.payload_offset as usize).clamp(1, p.data.len().max(1)).min(p.data.len())
        } else {
            p.data.len().min(snaplen)
        };
        first64.extend_from_slice(&p.data[..p.data.len().min(64)]);
        snapped.extend_from_slice(&p.data[..cap]);
        let rec = PacketRecord {
            ts: p.ts,
            iface: p.iface,
            direction: p.direction,
            link_type: p.link_type,
            wire_len: p.wire_len,
            data: p.data[..cap].to_vec(),
        };
        let r: PacketRef<'_> = rec.as_ref();
        engine.process(&r, &decode(r.link_type, r.data, r.wire_len), &mut sink);
        records.push(rec);
    }
    engine.finish(&mut sink);
    if let Some(path) = dump {
        let info = SegmentHeaderInfo { seq: 1, prev_sha256: [0; 32], created_ns: 0 };
        let cfg = WriterConfig { zstd_level: 0, header_delta: false, ..WriterConfig::default() };
        let mut w = SegmentWriter::new(Vec::new(), info, cfg)?;
        for r in &records {
            w.push_packet(&r.as_ref())?;
        }
        w.finish()?;
        std::fs::write(path, w.into_inner()).with_context(|| format!("writing {}", path.display()))?;
    }

    let t = Instant::now();
    let seg = write_segment(&records, PacketCoding::FieldCoded, None)?;
    let write_secs = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let delta = write_segment(&records, PacketCoding::HeaderDelta, None)?;
    let delta_write_secs = t.elapsed().as_secs_f64();
    let plain = write_segment(&records, PacketCoding::Plain, None)?;
    let seg_1m = write_segment(&records, PacketCoding::FieldCoded, Some(1 << 20))?;

    let read = |seg: &[u8], verify: bool| -> anyhow::Result<f64> {
        let t = Instant::now();
        let mut n = 0usize;
        for b in SegmentReader::new(seg, Recovery::Strict)? {
            if let BlockBody::Packets(p) = b?.body {
                // Lossless: every record reads back as written (checked outside the timing).
                if verify {
                    for (i, r) in p.iter().enumerate() {
                        let w = &records[n + i];
                        let same = (r.ts, r.iface, r.direction, r.link_type, r.wire_len, r.data)
                            == (w.ts, w.iface, w.direction, w.link_type, w.wire_len, &w.data[..]);
                        anyhow::ensure!(same, "record {} differs after the round trip", n + i);
                    }
                }
                n += p.len();
            }
        }
        anyhow::ensure!(n == records.len(), "read back {n} of {} records", records.len());
        Ok(t.elapsed().as_secs_f64())
    };
    read(&seg, true)?;
    read(&seg_1m, true)?;
    let read_secs = read(&seg, false)?;
    let delta_read_secs = read(&delta, false)?;

    let info = SegmentHeaderInfo { seq: 1, prev_sha256: [0; 32], created_ns: 0 };
    let mut fw = SegmentWriter::new(Vec::new(), info, WriterConfig::default())?;
    for f in &sink.flows {
        fw.push_flow(f)?;
    }
    fw.finish()?;
    let empty = {
        let mut e = SegmentWriter::new(Vec::new(), info, WriterConfig::default())?;
        e.finish()?;
        e.into_inner().len() as u64
    };
    let flow_segment_bytes = (fw.into_inner().len() as u64).saturating_sub(empty);

    Ok(Report {
        packets: records.len() as u64,
        flows: sink.flows.len() as u64,
        snaplen,
        captured_bytes: snapped.len() as u64,
        segment_bytes: (seg.len() as u64).saturating_sub(empty),
        segment_1m_bytes: (seg_1m.len() as u64).saturating_sub(empty),
        delta_segment_bytes: (delta.len() as u64).saturating_sub(empty),
        plain_segment_bytes: (plain.len() as u64).saturating_sub(empty),
        flow_segment_bytes,
        zstd3_first64: zstd::bulk::compress(&first64, 3)?.len() as u64,
        zstd3_snaplen: zstd::bulk::compress(&snapped, 3)?.len() as u64,
        write_secs,
        read_secs,
        delta_write_secs,
        delta_read_secs,
    })
}

impl Report {
    pub fn markdown_row(&self, name: &str) -> String {
        let per = |b: u64| b as f64 / self.packets.max(1) as f64;
        let rate = |secs: f64| self.packets as f64 / secs / 1e6;
        format!(
            "| {name} | {} | {} | {:.1} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {:.3} | {:.3} | {:.2} | {:.2} / {:.2} | {:.2} / {:.2} |",
            self.packets,
            self.snaplen,
            per(self.captured_bytes),
            per(self.plain_segment_bytes),
            per(self.delta_segment_bytes),
            per(self.segment_1m_bytes),
            per(self.segment_bytes),
            per(self.zstd3_first64),
            per(self.zstd3_snaplen),
            self.segment_bytes as f64 / self.zstd3_first64.max(1) as f64,
            self.segment_bytes as f64 / self.zstd3_snaplen.max(1) as f64,
            self.flow_segment_bytes as f64 / self.flows.max(1) as f64,
            rate(self.write_secs),
            rate(self.read_secs),
            rate(self.delta_write_secs),
            rate(self.delta_read_secs),
        )
    }
}

pub const MARKDOWN_HEADER: &str = "| capture | packets | snaplen | captured B/pkt | 1.0 B/pkt | 1.1 (header delta) B/pkt | 1.2 (field coding), 1 MiB blocks B/pkt | 1.2, default 4 MiB blocks B/pkt | zstd-3 first 64 B, B/pkt | zstd-3 snaplen B/pkt | 1.2 / zstd-3(64) | 1.2 / zstd-3(snaplen) | B/flow record | 1.2 write / read M rec/s | 1.1 write / read M rec/s |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|";
