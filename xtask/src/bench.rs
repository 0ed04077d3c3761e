//! Streamed benchmark captures (constant memory): a realistic mix of concurrent flows, or a
//! spoofed SYN flood with a distinct source per packet.

use crate::dns::{self, RData};
use crate::frame::{self, IpHdr, L4, Payload, tcpf};
use crate::pcap::PcapWriter;
use crate::rng::Rng;
use crate::sim::{GW_MAC, Host, T0, TcpConn, US, l2};
use std::io::{self, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Mix,
    SynFlood,
}

impl std::str::FromStr for Kind {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> anyhow::Result<Kind> {
        match s {
            "mix" => Ok(Kind::Mix),
            "synflood" => Ok(Kind::SynFlood),
            other => anyhow::bail!("unknown --kind {other:?} (expected mix or synflood)"),
        }
    }
}

pub const BENCH_SEED: u64 = 0x6265_6e63_6820_2026;

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Stats {
    pub packets: u64,
    /// Sum of original (wire) frame lengths.
    pub wire_bytes: u64,
}

/// Write `packets` packets of the given kind to `w`.
pub fn generate<W: Write>(w: W, kind: Kind, packets: u64, snaplen: u32, seed: u64) -> io::Result<(W, Stats)> {
    let mut pw = PcapWriter::new(w, snaplen)?;
    let mut rng = Rng::derive(seed, if kind == Kind::Mix { "bench-mix" } else { "bench-synflood" });
    let stats = match kind {
        Kind::Mix => mix(&mut pw, &mut rng, packets)?,
        Kind::SynFlood => synflood(&mut pw, &mut rng, packets)?,
    };
    Ok((pw.into_inner(), stats))
}

fn synflood<W: Write>(pw: &mut PcapWriter<W>, rng: &mut Rng, packets: u64) -> io::Result<Stats> {
    let target = Host::local(IpAddr::V4(Ipv4Addr::new(10, 77, 0, 10)));
    let mut buf = Vec::with_capacity(128);
    let mut st = Stats::default();
    // Affine bijection over 10.0.0.0/8 (skipping 10.77/16): distinct sources up to ~16.6M packets.
    let start = rng.next_u32() & 0x00ff_ffff;
    let stride = rng.next_u32() | 1;
    let mut k: u32 = 0;
    let mut t = T0;
    while st.packets < packets {
        let x = start.wrapping_add(k.wrapping_mul(stride)) & 0x00ff_ffff;
        k = k.wrapping_add(1);
        if (x >> 16) & 0xff == 77 {
            continue;
        }
        let src = IpAddr::V4(Ipv4Addr::from(0x0a00_0000 | x));
        let ip = IpHdr { df: false, ..IpHdr::new(src, target.ip, rng.range(40, 250) as u8, rng.u16()) };
        let l4 = L4::Tcp {
            sport: rng.range(1024, 65535) as u16,
            dport: 80,
            seq: rng.next_u32(),
            ack: 0,
            flags: tcpf::SYN,
            window: 512,
            options: &[],
            payload: Payload::Empty,
        };
        let link = frame::L2 { src: GW_MAC, dst: target.mac, vlan: None };
        frame::build(&mut buf, &link, &ip, &l4);
        t += 2 * US + rng.below(4 * US);
        pw.write_frame(t, &buf)?;
        st.packets += 1;
        st.wire_bytes += buf.len() as u64;
    }
    Ok(st)
}

/// One concurrent activity in the mix; each `step` emits exactly one frame.
enum Flow {
    Tcp { c: Box<TcpConn>, phase: u8, req: usize, resp: usize, unacked: u8 },
    Dns { client: Host, server: Host, cport: u16, id: u16, name: u32, qtype: u16, answered: bool },
    Ping { a: Host, b: Host, id: u16, seq: u16, left: u16, reply_next: bool },
}

const SERVER_NETS: [[u8; 3]; 3] = [[192, 0, 2], [198, 51, 100], [203, 0, 113]];

fn client(rng: &mut Rng, v6: bool) -> Host {
    if v6 {
        let mut o = [0u8; 16];
        o[..8].copy_from_slice(&[0x20, 0x01, 0x0d, 0xb8, 0x00, 0x77, 0x00, 0x04]);
        o[8..].copy_from_slice(&rng.next_u64().to_be_bytes());
        Host::local(IpAddr::V6(Ipv6Addr::from(o)))
    } else {
        Host::local(IpAddr::V4(Ipv4Addr::new(10, 77, rng.range(4, 250) as u8, rng.range(1, 254) as u8)))
    }
}

fn server(rng: &mut Rng, v6: bool) -> Host {
    if v6 {
        let mut o = [0u8; 16];
        o[..6].copy_from_slice(&[0x20, 0x01, 0x0d, 0xb8, 0x01, 0x00]);
        o[14..].copy_from_slice(&(rng.below(4096) as u16).to_be_bytes());
        Host::remote(IpAddr::V6(Ipv6Addr::from(o)), 54)
    } else {
        let n = rng.pick(&SERVER_NETS);
        // Never 203.0.113.66, the blocklisted address of the fixtures.
        let last = rng.range(1, 254) as u8;
        let last = if *n == [203, 0, 113] && last == 66 { 67 } else { last };
        Host::remote(IpAddr::V4(Ipv4Addr::new(n[0], n[1], n[2], last)), rng.range(48, 58) as u8)
    }
}

impl Flow {
    fn spawn(rng: &mut Rng) -> Flow {
        let v6 = rng.chance(0.10);
        let r = rng.below(100);
        if r < 70 {
            let c = client(rng, v6);
            let s = server(rng, v6);
            // Encrypted services only: random payload bytes on port 80 would be "malformed HTTP".
            let port = *rng.pick(&[443u16, 443, 443, 993, 8443, 22]);
            let cport = rng.range(32768, 60999) as u16;
            let conn = TcpConn::new(rng, c, cport, s, port, 0);
            // Response size classes: small objects, pages, large downloads.
            let resp = match rng.below(40) {
                0..=21 => rng.range(300, 6_000),
                22..=38 => rng.range(6_000, 40_000),
                _ => rng.range(40_000, 400_000),
            } as usize;
            Flow::Tcp { c: Box::new(conn), phase: 0, req: rng.range(200, 1_200) as usize, resp, unacked: 0 }
        } else if r < 94 {
            Flow::Dns {
                client: client(rng, v6),
                // The resolver answers on both families (2001:db8:77:2::53 for IPv6 clients).
                server: Host::local(if v6 {
                    IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0x77, 2, 0, 0, 0, 0x53))
                } else {
                    IpAddr::V4(Ipv4Addr::new(10, 77, 2, 53))
                }),
                cport: rng.range(32768, 60999) as u16,
                id: rng.u16(),
                name: rng.below(5_000) as u32,
                qtype: if rng.chance(0.3) { dns::QTYPE_AAAA } else { dns::QTYPE_A },
                answered: false,
            }
        } else {
            let a = client(rng, v6);
            let b = server(rng, v6);
            Flow::Ping { a, b, id: rng.u16(), seq: 0, left: 4, reply_next: false }
        }
    }

    /// Emit the next frame; returns true when the flow is finished.
    fn step(&mut self, rng: &mut Rng, buf: &mut Vec<u8>, scratch: &mut Vec<u8>) -> bool {
        match self {
            Flow::Tcp { c, phase, req, resp, unacked } => {
                let c = &mut **c;
                match *phase {
                    0 => c.frame(buf, true, tcpf::SYN, Payload::Empty),
                    1 => c.frame(buf, false, tcpf::SYN | tcpf::ACK, Payload::Empty),
                    2 => c.frame(buf, true, tcpf::ACK, Payload::Empty),
                    3 => {
                        let len = (*req).min(c.mss);
                        *req -= len;
                        let fl = if *req == 0 { tcpf::ACK | tcpf::PSH } else { tcpf::ACK };
                        c.frame(buf, true, fl, Payload::Random { len, seed: rng.next_u64() });
                        if *req > 0 {
                            return false;
                        }
                    }
                    4 => {
                        // Response with delayed ACKs every second segment.
                        if *unacked >= 2 || (*resp == 0 && *unacked > 0) {
                            *unacked = 0;
                            c.frame(buf, true, tcpf::ACK, Payload::Empty);
                        } else {
                            let len = (*resp).min(c.mss);
                            *resp -= len;
                            *unacked += 1;
                            let fl = if *resp == 0 { tcpf::ACK | tcpf::PSH } else { tcpf::ACK };
                            c.frame(buf, false, fl, Payload::Random { len, seed: rng.next_u64() });
                        }
                        if *resp > 0 || *unacked > 0 {
                            return false;
                        }
                    }
                    5 => c.frame(buf, true, tcpf::FIN | tcpf::ACK, Payload::Empty),
                    6 => c.frame(buf, false, tcpf::FIN | tcpf::ACK, Payload::Empty),
                    _ => {
                        c.frame(buf, true, tcpf::ACK, Payload::Empty);
                        return true;
                    }
                }
                *phase += 1;
                false
            }
            Flow::Dns { client, server, cport, id, name, qtype, answered } => {
                let mut nm = [0u8; 32];
                let len = {
                    let mut cur = io::Cursor::new(&mut nm[..]);
                    let _ = write!(cur, "host{name}.example.com");
                    cur.position() as usize
                };
                let name = std::str::from_utf8(&nm[..len]).unwrap_or("example.com");
                let (from, to, sp, dp) = if *answered {
                    let o = crate::rng::fnv1a(name.as_bytes()).to_be_bytes();
                    let ans = if *qtype == dns::QTYPE_AAAA {
                        let mut a6 = [0u8; 16];
                        a6[..8].copy_from_slice(&[0x20, 0x01, 0x0d, 0xb8, 0x01, 0, 0, 0]);
                        a6[8..].copy_from_slice(&o);
                        RData::Aaaa(a6)
                    } else {
                        RData::A([203, 0, 113, o[0] % 60 + 1])
                    };
                    dns::response(scratch, *id, name, *qtype, 0, &[(300, ans)], false);
                    (&*server, &*client, 53, *cport)
                } else {
                    dns::query(scratch, *id, name, *qtype, false);
                    (&*client, &*server, *cport, 53)
                };
                let ip = IpHdr::new(from.ip, to.ip, from.ttl, rng.u16());
                frame::build(
                    buf,
                    &l2(from, to),
                    &ip,
                    &L4::Udp { sport: sp, dport: dp, payload: Payload::Bytes(scratch) },
                );
                let done = *answered;
                *answered = true;
                done
            }
            Flow::Ping { a, b, id, seq, left, reply_next } => {
                let (from, to, ty) = if *reply_next { (&*b, &*a, 0u8) } else { (&*a, &*b, 8u8) };
                let v6 = a.ip.is_ipv6();
                let mut rest = [0u8; 4];
                rest[..2].copy_from_slice(&id.to_be_bytes());
                rest[2..].copy_from_slice(&seq.to_be_bytes());
                let payload = Payload::Random { len: 56, seed: *id as u64 ^ *seq as u64 };
                let l4 = if v6 {
                    L4::Icmp6 { ty: if ty == 8 { 128 } else { 129 }, code: 0, rest, payload }
                } else {
                    L4::Icmp { ty, code: 0, rest, payload }
                };
                let ip = IpHdr::new(from.ip, to.ip, from.ttl, rng.u16());
                frame::build(buf, &l2(from, to), &ip, &l4);
                if *reply_next {
                    *seq += 1;
                    *left -= 1;
                }
                *reply_next = !*reply_next;
                *left == 0
            }
        }
    }
}

/// Number of concurrently active flows in the mix.
const CONCURRENT: usize = 512;

fn mix<W: Write>(pw: &mut PcapWriter<W>, rng: &mut Rng, packets: u64) -> io::Result<Stats> {
    let mut flows: Vec<Flow> = (0..CONCURRENT).map(|_| Flow::spawn(rng)).collect();
    let mut buf = Vec::with_capacity(2048);
    let mut scratch = Vec::with_capacity(512);
    let mut st = Stats::default();
    let mut t = T0;
    while st.packets < packets {
        let i = rng.below(CONCURRENT as u64) as usize;
        let done = flows[i].step(rng, &mut buf, &mut scratch);
        // ~6 us mean gap: ~1 Gbit/s of ~750-byte average frames.
        t += 1 + rng.below(11 * US);
        pw.write_frame(t, &buf)?;
        st.packets += 1;
        st.wire_bytes += buf.len() as u64;
        if done {
            flows[i] = Flow::spawn(rng);
        }
    }
    Ok(st)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mix_is_deterministic_valid_and_has_ipv6() {
        let (a, sa) = generate(Vec::new(), Kind::Mix, 3_000, 0, 1).unwrap();
        let (b, _) = generate(Vec::new(), Kind::Mix, 3_000, 0, 1).unwrap();
        assert_eq!(a, b);
        assert_eq!(sa.packets, 3_000);
        let rep = crate::verify::check_pcap(&a).unwrap();
        assert_eq!(rep.packets, 3_000);
        assert_eq!(rep.l4_checked, 3_000);
        let (_, recs) = crate::pcap::parse(&a).unwrap();
        let v6 = recs.iter().filter(|r| r.1[12..14] == [0x86, 0xdd]).count();
        assert!(v6 > 100 && v6 < 900, "ipv6 share {v6}/3000");
        let avg = sa.wire_bytes / sa.packets;
        assert!((400..1100).contains(&avg), "average frame {avg}");
    }

    #[test]
    fn synflood_sources_are_distinct() {
        let (a, _) = generate(Vec::new(), Kind::SynFlood, 20_000, 0, 1).unwrap();
        crate::verify::check_pcap(&a).unwrap();
        let (_, recs) = crate::pcap::parse(&a).unwrap();
        let mut srcs: Vec<&[u8]> = recs.iter().map(|r| &r.1[26..30]).collect();
        srcs.sort_unstable();
        srcs.dedup();
        assert_eq!(srcs.len(), 20_000);
        assert!(recs.iter().all(|r| r.1[47] == tcpf::SYN));
    }
}
