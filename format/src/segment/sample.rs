//! Deterministic synthetic records for tests, fixtures and benchmarks: a seeded PRNG and a
//! generator of realistic Ethernet/IPv4/IPv6 TCP/UDP/ICMP header records.

use crate::model::*;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// SplitMix64: tiny, seeded, identical on every platform.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
}

#[derive(Clone, Copy, Debug)]
struct SynthFlow {
    v6: bool,
    proto: u8,
    src: [u8; 16],
    dst: [u8; 16],
    sport: u16,
    dport: u16,
    seq: u32,
}

/// Generates packet header records: many flows, increasing time with jitter, snaplen-cut
/// frames whose headers are valid Ethernet + IPv4/IPv6 + TCP/UDP/ICMP.
#[derive(Debug)]
pub struct PacketGen {
    rng: Rng,
    flows: Vec<SynthFlow>,
    ts: u64,
    snaplen: usize,
    buf: Vec<u8>,
}

impl PacketGen {
    pub fn new(seed: u64, n_flows: usize, start: Ts, snaplen: usize) -> Self {
        let mut rng = Rng::new(seed);
        let flows = (0..n_flows.max(1))
            .map(|_| {
                let v6 = rng.below(4) == 0;
                let proto = match rng.below(20) {
                    0 => {
                        if v6 {
                            ipproto::ICMPV6
                        } else {
                            ipproto::ICMP
                        }
                    }
                    1..=6 => ipproto::UDP,
                    _ => ipproto::TCP,
                };
                let mut src = [0u8; 16];
                let mut dst = [0u8; 16];
                if v6 {
                    src[..8].copy_from_slice(&[0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 0]);
                    dst[..8].copy_from_slice(&[0x20, 0x01, 0x0d, 0xb8, 0, 2, 0, 0]);
                    src[8..].copy_from_slice(&rng.next_u64().to_be_bytes());
                    dst[14..].copy_from_slice(&(rng.below(64) as u16).to_be_bytes());
                } else {
                    src[..4].copy_from_slice(&[10, 0, rng.below(4) as u8, rng.below(254) as u8 + 1]);
                    dst[..4].copy_from_slice(&[192, 0, 2, rng.below(32) as u8 + 1]);
                }
                let dport = [80u16, 443, 53, 22, 8080, 123][rng.below(6) as usize];
                SynthFlow {
                    v6,
                    proto,
                    src,
                    dst,
                    sport: 1024 + rng.below(60000) as u16,
                    dport,
                    seq: rng.next_u64() as u32,
                }
            })
            .collect();
        PacketGen { rng, flows, ts: start.0, snaplen, buf: Vec::with_capacity(2048) }
    }

    /// The next packet (borrowing the generator's buffer).
    pub fn next_packet(&mut self) -> PacketRef<'_> {
        // Mostly increasing time: 1..20 us gaps; 1 in 50 steps back a little (multi-CPU skew).
        let gap = 1_000 + self.rng.below(19_000);
        self.ts = if self.rng.below(50) == 0 { self.ts.saturating_sub(gap / 2) } else { self.ts + gap };
        // Skewed flow choice: a few heavy flows and a long tail.
        let n = self.flows.len() as u64;
        let i = if self.rng.below(2) == 0 { self.rng.below(n.min(8)) } else { self.rng.below(n) } as usize;
        let reverse = self.rng.below(3) == 0;
        let payload = match self.rng.below(4) {
            0 => 0,
            1 => 1448,
            _ => self.rng.below(600) as usize,
        };
        let f = &mut self.flows[i];
        f.seq = f.seq.wrapping_add(payload as u32);
        let f = *f;
        let (src, dst, sport, dport) =
            if reverse { (f.dst, f.src, f.dport, f.sport) } else { (f.src, f.dst, f.sport, f.dport) };
        let b = &mut self.buf;
        b.clear();
        b.extend_from_slice(&[0x02, 0, 0, 0, 0, if reverse { 1 } else { 2 }]);
        b.extend_from_slice(&[0x02, 0, 0, 0, 0, if reverse { 2 } else { 1 }]);
        let l4_len = match f.proto {
            ipproto::TCP => 20,
            ipproto::UDP => 8,
            _ => 8,
        } + payload;
        if f.v6 {
            b.extend_from_slice(&[0x86, 0xdd, 0x60, 0, 0, 0]);
            b.extend_from_slice(&(l4_len as u16).to_be_bytes());
            b.extend_from_slice(&[f.proto, 64]);
            b.extend_from_slice(&src);
            b.extend_from_slice(&dst);
        } else {
            b.extend_from_slice(&[0x08, 0x00, 0x45, 0]);
            b.extend_from_slice(&((20 + l4_len) as u16).to_be_bytes());
            b.extend_from_slice(&(self.rng.next_u64() as u16).to_be_bytes());
            b.extend_from_slice(&[0x40, 0, 64, f.proto, 0, 0]);
            b.extend_from_slice(&src[..4]);
            b.extend_from_slice(&dst[..4]);
        }
        match f.proto {
            ipproto::TCP => {
                b.extend_from_slice(&sport.to_be_bytes());
                b.extend_from_slice(&dport.to_be_bytes());
                b.extend_from_slice(&f.seq.to_be_bytes());
                b.extend_from_slice(&f.seq.wrapping_mul(7).to_be_bytes());
                b.extend_from_slice(&[0x50, if payload > 0 { 0x18 } else { 0x10 }, 0xff, 0xff, 0, 0, 0, 0]);
            }
            ipproto::UDP => {
                b.extend_from_slice(&sport.to_be_bytes());
                b.extend_from_slice(&dport.to_be_bytes());
                b.extend_from_slice(&(l4_len as u16).to_be_bytes());
                b.extend_from_slice(&[0, 0]);
            }
            _ => {
                let ty = if f.v6 { 128 } else { 8 };
                b.extend_from_slice(&[ty, 0, 0, 0]);
                b.extend_from_slice(&sport.to_be_bytes());
                b.extend_from_slice(&(f.seq as u16).to_be_bytes());
            }
        }
        let wire_len = b.len() + payload;
        // Payload bytes: text-like for realism (compresses somewhat, not trivially).
        while b.len() < wire_len.min(self.snaplen) {
            let c = b"GET /index.html HTTP/1.1\r\nHost: example\r\n"[self.rng.below(41) as usize];
            b.push(c);
        }
        b.truncate(self.snaplen);
        PacketRef {
            ts: Ts(self.ts),
            iface: 1 + (i as u32 % 2),
            direction: if reverse { Direction::Ingress } else { Direction::Egress },
            link_type: LinkType::ETHERNET,
            wire_len: wire_len as u32,
            data: &self.buf,
        }
    }
}

/// A small fixed set of records of every type (IPv4 and IPv6, tunnels, unicode strings).
pub fn golden_records() -> (SegmentMeta, Vec<PacketRecord>, Vec<FlowRecord>, Vec<Alert>, Vec<LossRecord>) {
    let v4 = |a, b, c, d| IpAddr::V4(Ipv4Addr::new(a, b, c, d));
    let v6 = |s: &str| IpAddr::V6(s.parse::<Ipv6Addr>().unwrap_or(Ipv6Addr::LOCALHOST));
    let meta = SegmentMeta {
        host: "sensor-1.example".into(),
        interfaces: vec![
            InterfaceInfo { index: 2, name: "eth0".into(), link_type: LinkType::ETHERNET },
            InterfaceInfo { index: 7, name: "wg0 ☃".into(), link_type: LinkType::RAW },
        ],
        snaplen: 128,
        clock_base_ns: 1_700_000_000_000_000_000,
        netrec_version: "0.1.0".into(),
        ruleset_digest: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08".into(),
        ..SegmentMeta::default()
    };
    let t0 = 1_700_000_000_000_000_000u64;
    let mut pg = PacketGen::new(7, 6, Ts(t0), 128);
    let mut packets: Vec<PacketRecord> = (0..12)
        .map(|_| {
            let p = pg.next_packet();
            PacketRecord {
                ts: p.ts,
                iface: p.iface,
                direction: p.direction,
                link_type: p.link_type,
                wire_len: p.wire_len,
                data: p.data.to_vec(),
            }
        })
        .collect();
    // An empty capture and a raw-IP link type.
    packets.push(PacketRecord {
        ts: Ts(t0 + 500_000),
        iface: 7,
        direction: Direction::Unknown,
        link_type: LinkType::RAW,
        wire_len: 60,
        data: vec![],
    });
    let flows = vec![
        FlowRecord {
            key: FlowKey {
                proto: u16::from(ipproto::TCP),
                src_ip: v4(10, 0, 0, 1),
                src_port: 51000,
                dst_ip: v4(192, 0, 2, 10),
                dst_port: 443,
                vlan: 0,
                tunnel_id: 0,
            },
            first_ts: Ts(t0),
            last_ts: Ts(t0 + 2_000_000_000),
            fwd: DirStats {
                packets: 10,
                bytes: 1500,
                payload_bytes: 900,
                tcp_flags: 0x1b,
                ..Default::default()
            },
            rev: DirStats {
                packets: 8,
                bytes: 9000,
                payload_bytes: 8000,
                tcp_flags: 0x1b,
                retransmissions: 1,
                out_of_order: 2,
                zero_window: 0,
            },
            tcp_state: TcpState::Closed,
            rtt_server_ns: Some(1_200_000),
            rtt_client_ns: Some(300_000),
            end: FlowEnd::TcpClose,
            tunnel: None,
            anomalies: 0,
        },
        FlowRecord {
            key: FlowKey {
                proto: u16::from(ipproto::UDP),
                src_ip: v6("2001:db8::1"),
                src_port: 5353,
                dst_ip: v6("ff02::fb"),
                dst_port: 5353,
                vlan: 100,
                tunnel_id: 42,
            },
            first_ts: Ts(t0 + 1_000),
            last_ts: Ts(t0 + 1_000),
            fwd: DirStats { packets: 1, bytes: 120, payload_bytes: 60, ..Default::default() },
            rev: DirStats::default(),
            tcp_state: TcpState::None,
            rtt_server_ns: None,
            rtt_client_ns: None,
            end: FlowEnd::IdleTimeout,
            tunnel: Some(Tunnel {
                kind: TunnelKind::Vxlan,
                id: 42,
                outer_src: v4(198, 51, 100, 1),
                outer_dst: v6("2001:db8:ffff::2"),
            }),
            anomalies: 3,
        },
    ];
    let alerts = vec![Alert {
        id: 1,
        rule_id: "scan.tcp_syn".into(),
        class: "port-scan".into(),
        severity: Severity::High,
        attack_id: "T1046".into(),
        first_ts: Ts(t0 + 10),
        last_ts: Ts(t0 + 900_000_000),
        src: vec![v4(10, 0, 0, 66)],
        src_count: 1,
        dst: vec![v4(192, 0, 2, 1), v6("2001:db8::2")],
        dst_count: 17,
        dst_ports: vec![22, 80, 443],
        count: 250,
        stats: vec![("distinct_ports".into(), 250.0), ("syn_ratio".into(), 0.96875)],
        message: "SYN scan: 250 ports in 0.9 s — naïve scanner".into(),
    }];
    let loss = vec![
        LossRecord {
            ts: Ts(t0 + 1_000_000_000),
            iface: 0,
            kernel_packets: 1000,
            kernel_bytes: 640_000,
            ring_drops: 3,
            map_full: 0,
            busy: 1,
            writer_drops: 0,
        },
        LossRecord { ts: Ts(t0 + 2_000_000_000), iface: 2, ..Default::default() },
    ];
    (meta, packets, flows, alerts, loss)
}
