//! Flow table throughput: 1M synthetic packets over 50k flows (70% TCP connections with
//! handshake and data both ways, 20% UDP, 10% ICMP echo), expire once per packet-second.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use netrec_format::decode::{Decoded, IcmpInfo, NetLayer, TcpInfo, Transport, UdpInfo, tcp_flags as tf};
use netrec_format::{Direction, LinkType, PacketRef, Ts};
use netrec_rules::flow::{FlowConfig, FlowTable};
use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

const PACKETS: usize = 1_000_000;
const FLOWS: u32 = 50_000;

struct Pkt {
    ts: Ts,
    wire_len: u32,
    dec: Decoded,
}

fn net(src: IpAddr, dst: IpAddr, proto: u8, l4: u32) -> NetLayer {
    NetLayer {
        src,
        dst,
        proto,
        ttl: 64,
        header_len: 20,
        total_len: 20 + l4,
        frag: None,
        dont_fragment: true,
        tos: 0,
        offset: 14,
    }
}

/// `train`: packets come in trains of one flow (mean length 4), as TCP windows and
/// request/response exchanges do on real links; otherwise every packet picks a flow at
/// random (no locality at all: the worst case for caches).
fn mix(train: bool) -> Vec<Pkt> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut rnd = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let server = IpAddr::V4(Ipv4Addr::new(192, 168, 0, 1));
    let mut seq = vec![0u32; FLOWS as usize];
    let mut cur = 0u32;
    (0..PACKETS)
        .map(|i| {
            let r = rnd();
            // Skewed popularity: half the packets go to 10% of the flows.
            if !train || r >> 60 < 4 {
                cur = if r & 1 == 0 { (r >> 8) as u32 % (FLOWS / 10) } else { (r >> 8) as u32 % FLOWS };
            }
            let f = cur;
            let client = IpAddr::V4(Ipv4Addr::from(0x0a00_0000 | f));
            let ts = Ts(1_700_000_000_000_000_000 + i as u64 * 20_000); // 50k packets/s
            let back = r >> 40 & 1 == 1;
            let (s, d) = if back { (server, client) } else { (client, server) };
            let (n, transport, payload) = match f % 10 {
                0..=6 => {
                    let k = &mut seq[f as usize];
                    let (flags, from_server, len) = match *k {
                        0 => (tf::SYN, false, 0),
                        1 => (tf::SYN | tf::ACK, true, 0),
                        2 => (tf::ACK, false, 0),
                        _ => (tf::PSH | tf::ACK, back, (r >> 20) as u32 % 1400),
                    };
                    let (s, d) = if from_server { (server, client) } else { (client, server) };
                    let t = TcpInfo {
                        src_port: if from_server { 443 } else { 40000 },
                        dst_port: if from_server { 40000 } else { 443 },
                        seq: 1000 + *k * 1400,
                        ack: 1,
                        flags,
                        window: 65535,
                        header_len: 20,
                        ..TcpInfo::default()
                    };
                    *k += 1;
                    (net(s, d, 6, 20 + len), Transport::Tcp(t), len)
                }
                7 | 8 => {
                    let (sp, dp) = if back { (53, 5353) } else { (5353, 53) };
                    let u = UdpInfo { src_port: sp, dst_port: dp, length: 8 + 60 };
                    (net(s, d, 17, 68), Transport::Udp(u), 60)
                }
                _ => {
                    let i =
                        IcmpInfo { icmp_type: if back { 0 } else { 8 }, code: 0, ident: f as u16, seq: 1 };
                    (net(s, d, 1, 64), Transport::Icmp(i), 56)
                }
            };
            let dec = Decoded { net: Some(n), transport, payload_len: payload, ..Decoded::default() };
            Pkt { ts, wire_len: 14 + n.total_len, dec }
        })
        .collect()
}

fn run(pkts: &[Pkt]) -> u64 {
    let mut t = FlowTable::new(FlowConfig::default());
    let mut emitted = 0u64;
    let mut next_expire = pkts.first().map_or(0, |p| p.ts.0);
    for p in pkts {
        let pr = PacketRef {
            ts: p.ts,
            iface: 0,
            direction: Direction::Unknown,
            link_type: LinkType::ETHERNET,
            wire_len: p.wire_len,
            data: &[],
        };
        black_box(t.update(&pr, &p.dec));
        if p.ts.0 >= next_expire {
            t.expire(p.ts, &mut |_| emitted += 1);
            next_expire = p.ts.0 + 1_000_000_000;
        }
    }
    t.finish(&mut |_| emitted += 1);
    emitted
}

/// This thread's CPU time (user + system) from /proc, in 10 ms ticks (USER_HZ = 100).
/// On a shared, overloaded machine wall time says little about the code; CPU time does.
fn thread_cpu() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").ok()?;
    // Fields after the ")" that closes the command name: state is field 3, utime 14, stime 15.
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split(' ').collect();
    let ticks = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    Some(Duration::from_millis(ticks * 10))
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("flow_table");
    g.throughput(Throughput::Elements(PACKETS as u64));
    g.sample_size(10);
    for (name, train) in [("random", false), ("trains", true)] {
        let pkts = mix(train);
        g.bench_function(format!("1M_packets_50k_flows_{name}"), |b| b.iter(|| run(black_box(&pkts))));
        if thread_cpu().is_some() {
            g.bench_function(format!("1M_packets_50k_flows_{name}_cpu_time"), |b| {
                b.iter_custom(|iters| {
                    let start = thread_cpu().unwrap_or_default();
                    for _ in 0..iters {
                        black_box(run(black_box(&pkts)));
                    }
                    thread_cpu().unwrap_or_default().saturating_sub(start)
                })
            });
        }
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
