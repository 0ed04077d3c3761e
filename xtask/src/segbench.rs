//! `xtask seg-bench`: what a capture costs in segments. Bytes per packet-header record and per
//! flow record, segment write and read rates, next to `zstd -3` over the first 64 bytes of each
//! packet (the issue #8 yardstick: a generic compressor on the same headers). All figures come
//! from one process on one input, so their ratios hold on any machine.

use anyhow::Context as _;
use netrec_analyzer::pipeline::Input;
use netrec_format::decode::decode;
use netrec_format::segment::{
    BlockBody, Recovery, SegmentHeaderInfo, SegmentReader, SegmentWriter, WriterConfig,
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
    pub segment_bytes: u64,
    /// The same records without header-delta coding (segment format 1.0).
    pub plain_segment_bytes: u64,
    pub flow_segment_bytes: u64,
    pub zstd3_first64: u64,
    pub zstd3_snaplen: u64,
    pub write_secs: f64,
    pub read_secs: f64,
}

fn write_segment(records: &[PacketRecord], header_delta: bool) -> anyhow::Result<Vec<u8>> {
    let info = SegmentHeaderInfo { seq: 1, prev_sha256: [0; 32], created_ns: 0 };
    let cfg = WriterConfig { header_delta, ..WriterConfig::default() };
    let mut w = SegmentWriter::new(Vec::with_capacity(records.len() * 48), info, cfg)?;
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
    let seg = write_segment(&records, true)?;
    let write_secs = t.elapsed().as_secs_f64();
    let plain = write_segment(&records, false)?;

    let t = Instant::now();
    let mut n = 0u64;
    for b in SegmentReader::new(&seg[..], Recovery::Strict)? {
        if let BlockBody::Packets(p) = b?.body {
            n += p.len() as u64;
        }
    }
    let read_secs = t.elapsed().as_secs_f64();
    anyhow::ensure!(n == records.len() as u64, "read back {n} of {} records", records.len());

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
        plain_segment_bytes: (plain.len() as u64).saturating_sub(empty),
        flow_segment_bytes,
        zstd3_first64: zstd::bulk::compress(&first64, 3)?.len() as u64,
        zstd3_snaplen: zstd::bulk::compress(&snapped, 3)?.len() as u64,
        write_secs,
        read_secs,
    })
}

impl Report {
    pub fn markdown_row(&self, name: &str) -> String {
        let per = |b: u64, n: u64| b as f64 / n.max(1) as f64;
        format!(
            "| {name} | {} | {} | {:.1} | {:.2} | {:.2} | {:.2} | {:.2} | {:.3} | {:.3} | {:.2} | {:.2} | {:.2} |",
            self.packets,
            self.snaplen,
            per(self.captured_bytes, self.packets),
            per(self.plain_segment_bytes, self.packets),
            per(self.segment_bytes, self.packets),
            per(self.zstd3_first64, self.packets),
            per(self.zstd3_snaplen, self.packets),
            self.segment_bytes as f64 / self.zstd3_first64.max(1) as f64,
            self.segment_bytes as f64 / self.zstd3_snaplen.max(1) as f64,
            per(self.flow_segment_bytes, self.flows),
            self.packets as f64 / self.write_secs / 1e6,
            self.packets as f64 / self.read_secs / 1e6,
        )
    }
}

pub const MARKDOWN_HEADER: &str = "| capture | packets | snaplen | captured B/pkt | segment 1.0 B/pkt | segment 1.1 (header-delta) B/pkt | zstd-3 first 64 B, B/pkt | zstd-3 snaplen B/pkt | 1.1 / zstd-3(64) | 1.1 / zstd-3(snaplen) | B/flow record | write M rec/s | read M rec/s |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|";
