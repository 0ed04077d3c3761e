//! Segment write/read throughput (records/s) and bytes per packet-header record on a
//! realistic synthetic mix: Ethernet + IPv4/IPv6 TCP/UDP/ICMP, 5000 flows, snaplen 128,
//! increasing time with jitter. Run: `cargo bench -p netrec-format --bench segment`.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use netrec_format::segment::sample::PacketGen;
use netrec_format::segment::{
    BlockBody, Recovery, SegmentHeaderInfo, SegmentReader, SegmentWriter, WriterConfig,
};
use netrec_format::*;
use std::hint::black_box;

const N: usize = 200_000;

struct Corpus {
    metas: Vec<(Ts, u32, Direction, u32, usize, usize)>,
    data: Vec<u8>,
}

impl Corpus {
    fn new() -> Self {
        let mut g = PacketGen::new(0x5eed, 5000, Ts(1_700_000_000_000_000_000), 128);
        let mut c = Corpus { metas: Vec::with_capacity(N), data: Vec::with_capacity(N * 128) };
        for _ in 0..N {
            let p = g.next_packet();
            let start = c.data.len();
            c.data.extend_from_slice(p.data);
            c.metas.push((p.ts, p.iface, p.direction, p.wire_len, start, c.data.len()));
        }
        c
    }
    fn packets(&self) -> impl Iterator<Item = PacketRef<'_>> {
        self.metas.iter().map(|&(ts, iface, direction, wire_len, s, e)| PacketRef {
            ts,
            iface,
            direction,
            link_type: LinkType::ETHERNET,
            wire_len,
            data: &self.data[s..e],
        })
    }
}

fn write(c: &Corpus, cfg: WriterConfig) -> Vec<u8> {
    let info = SegmentHeaderInfo { seq: 1, prev_sha256: [0; 32], created_ns: 0 };
    let mut w = SegmentWriter::new(Vec::with_capacity(N * 64), info, cfg).unwrap();
    for p in c.packets() {
        w.push_packet(&p).unwrap();
    }
    w.finish().unwrap();
    w.into_inner()
}

fn read(bytes: &[u8]) -> usize {
    let mut n = 0;
    for b in SegmentReader::new(bytes, Recovery::Strict).unwrap() {
        if let BlockBody::Packets(p) = b.unwrap().body {
            for r in p.iter() {
                n += black_box(r.data.len()) & 1 | 1;
            }
        }
    }
    n
}

fn bench(cr: &mut Criterion) {
    let c = Corpus::new();
    let cfg = WriterConfig::default();
    let bytes = write(&c, cfg);
    let captured = c.data.len();
    let none = write(&c, WriterConfig { zstd_level: 0, ..cfg });
    println!(
        "segment: {N} packet records, {captured} captured bytes ({:.1}/record), file {} bytes: {:.2} bytes/record, compression ratio {:.2} (zstd level {}, {} KiB blocks)",
        captured as f64 / N as f64,
        bytes.len(),
        bytes.len() as f64 / N as f64,
        none.len() as f64 / bytes.len() as f64,
        cfg.zstd_level,
        cfg.max_block_bytes / 1024
    );
    println!(
        "segment: uncompressed columnar encoding: {:.2} bytes/record ({:.2} bytes/record of metadata beyond the captured bytes)",
        none.len() as f64 / N as f64,
        (none.len() - captured) as f64 / N as f64
    );
    assert_eq!(read(&bytes), N);

    let mut g = cr.benchmark_group("segment");
    g.throughput(Throughput::Elements(N as u64));
    g.sample_size(10);
    g.bench_function("write_packets_zstd3", |b| b.iter(|| black_box(write(&c, cfg).len())));
    let fast = WriterConfig { zstd_level: 1, ..cfg };
    g.bench_function("write_packets_zstd1", |b| b.iter(|| black_box(write(&c, fast).len())));
    g.bench_function("read_packets_zstd3", |b| b.iter(|| black_box(read(&bytes))));
    g.bench_function("verify_file", |b| b.iter(|| black_box(verify_file_ok(&bytes))));
    g.finish();
}

fn verify_file_ok(bytes: &[u8]) -> bool {
    netrec_format::segment::verify_file(bytes).is_intact()
}

criterion_group!(benches, bench);
criterion_main!(benches);
