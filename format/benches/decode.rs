//! Decoder throughput: ns per frame on a typical Ethernet/IPv4/TCP frame and on a mix of
//! every link type and tunnel (`cargo bench -p netrec-format --bench decode`).

#[path = "../tests/decode_builder.rs"]
mod builder;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use netrec_format::LinkType;
use netrec_format::decode::decode;
use std::hint::black_box;

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("decode");
    let tcp = builder::eth(
        0x0800,
        &builder::ipv4(
            [10, 0, 0, 1],
            [10, 0, 0, 2],
            6,
            &builder::tcp(40000, 443, 0x10, 1, 2, &[1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2], &[0; 1200]),
        ),
    );
    g.throughput(Throughput::Elements(1));
    g.bench_function("eth_ipv4_tcp", |b| {
        b.iter(|| decode(black_box(LinkType::ETHERNET), black_box(&tcp), black_box(1266)))
    });
    let corpus = builder::corpus();
    g.throughput(Throughput::Elements(corpus.len() as u64));
    g.bench_function("mix", |b| {
        b.iter(|| {
            for (lt, f) in &corpus {
                black_box(decode(black_box(*lt), black_box(f), f.len() as u32));
            }
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
