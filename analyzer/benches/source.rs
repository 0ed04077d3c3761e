//! Capture reading speed: a synthetic 200k-packet pcap written with `PcapWriter` into a
//! temp file, read back with `CaptureSource` (plain and zstd-compressed).

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use netrec_analyzer::capwrite::PcapWriter;
use netrec_analyzer::source::CaptureSource;
use netrec_format::{Direction, LinkType, PacketRef, Ts};
use std::hint::black_box;
use std::io::BufWriter;
use std::path::Path;

const PACKETS: u64 = 200_000;
/// A traffic-like size mix (ACKs, DNS, MTU-sized data).
const SIZES: [usize; 8] = [60, 66, 1514, 74, 590, 1514, 120, 60];

fn write_capture(path: &Path) -> u64 {
    let frame: Vec<u8> = (0..1514u32).map(|i| i as u8).collect();
    let file = std::fs::File::create(path).unwrap();
    let mut w = PcapWriter::new(BufWriter::new(file), LinkType::ETHERNET, 65535).unwrap();
    for i in 0..PACKETS {
        let len = SIZES[i as usize % SIZES.len()];
        let p = PacketRef {
            ts: Ts(1_700_000_000_000_000_000 + i * 10_000),
            iface: 0,
            direction: Direction::Unknown,
            link_type: LinkType::ETHERNET,
            wire_len: len as u32,
            data: &frame[..len],
        };
        w.write_packet(&p).unwrap();
    }
    w.into_inner().unwrap();
    std::fs::metadata(path).unwrap().len()
}

fn read_all(path: &Path) -> u64 {
    let mut src = CaptureSource::open(path).unwrap();
    let mut bytes = 0u64;
    while let Some(p) = src.next_packet().unwrap() {
        bytes += black_box(p.data).len() as u64 + black_box(p.ts.0) % 2;
    }
    assert_eq!(src.packets(), PACKETS);
    bytes
}

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let plain = dir.path().join("bench.pcap");
    let size = write_capture(&plain);
    let zst = dir.path().join("bench.pcap.zst");
    let raw = std::fs::read(&plain).unwrap();
    std::fs::write(&zst, zstd::encode_all(&raw[..], 3).unwrap()).unwrap();
    drop(raw);

    let mut g = c.benchmark_group("source");
    g.sample_size(10);
    g.throughput(Throughput::Elements(PACKETS));
    g.bench_function("pcap_200k_packets", |b| b.iter(|| read_all(&plain)));
    g.throughput(Throughput::Bytes(size));
    g.bench_function("pcap_200k_bytes", |b| b.iter(|| read_all(&plain)));
    g.throughput(Throughput::Elements(PACKETS));
    g.bench_function("pcap_zstd_200k_packets", |b| b.iter(|| read_all(&zst)));
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
