//! Detector throughput on synthetic packet contexts (all default-pack rules, no flow table).

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use netrec_format::decode::{Decoded, NetLayer, TcpInfo, Transport, UdpInfo};
use netrec_format::{Direction, LinkType, PacketRef, Ts};
use netrec_rules::{DetectorSet, PacketCtx, RuleSet, VecSink};
use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};

fn packets(n: u32) -> Vec<Decoded> {
    (0..n)
        .map(|i| {
            let src = IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + (i % 5000)));
            let dst = IpAddr::V4(Ipv4Addr::from(0xc000_0200 + (i % 64)));
            let net = NetLayer {
                src,
                dst,
                proto: 6,
                ttl: 64,
                header_len: 20,
                total_len: 60,
                frag: None,
                dont_fragment: false,
                tos: 0,
                offset: 14,
            };
            let transport = if i % 4 == 0 {
                Transport::Udp(UdpInfo { src_port: 5000, dst_port: 443, length: 8 })
            } else {
                Transport::Tcp(TcpInfo {
                    src_port: 40000 + (i % 1000) as u16,
                    dst_port: 443,
                    flags: if i % 3 == 0 { 0x02 } else { 0x10 },
                    ..Default::default()
                })
            };
            Decoded { net: Some(net), transport, ..Default::default() }
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let decs = packets(100_000);
    let rules = RuleSet::default_pack();
    let mut g = c.benchmark_group("detectors");
    g.throughput(Throughput::Elements(decs.len() as u64));
    g.sample_size(10);
    g.bench_function("default_pack_100k", |b| {
        b.iter(|| {
            let mut set = DetectorSet::new(&rules, 100_000);
            let mut sink = VecSink::default();
            for (i, d) in decs.iter().enumerate() {
                let ts = Ts(1_000_000_000_000 + i as u64 * 10_000);
                let pkt = PacketRef {
                    ts,
                    iface: 0,
                    direction: Direction::Ingress,
                    link_type: LinkType::ETHERNET,
                    wire_len: 74,
                    data: &[],
                };
                set.on_packet(&PacketCtx { ts, pkt: &pkt, dec: d, flow: None }, &mut sink);
            }
            set.finish(&mut sink);
            black_box(sink.alerts.len())
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
