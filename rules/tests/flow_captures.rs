//! The flow table on real captures (../shared/captures), checked against tshark/Zeek
//! ground truth from EXPECTED.md. The real decoder lands in parallel, so this test
//! carries a minimal Ethernet/SLL + IPv4 + TCP/UDP decoder of its own.

use netrec_format::decode::{Anomaly, Decoded, FragInfo, NetLayer, TcpInfo, Transport, UdpInfo};
use netrec_format::{Direction, FlowRecord, LinkType, PacketRef, TcpState};
use netrec_rules::flow::{FlowConfig, FlowTable};
use std::net::{IpAddr, Ipv4Addr};

mod common;

use common::{Frame, captures_dir};

fn read_pcap(name: &str) -> (LinkType, Vec<Frame>) {
    common::read_pcap(&captures_dir().join(name))
}

fn be16(b: &[u8], i: usize) -> u16 {
    u16::from_be_bytes([b[i], b[i + 1]])
}
fn be32(b: &[u8], i: usize) -> u32 {
    u32::from_be_bytes(b[i..i + 4].try_into().unwrap())
}

/// Just enough decoding for these captures (IPv4 over Ethernet or Linux SLL).
fn decode(link: LinkType, d: &[u8]) -> Decoded {
    let mut out = Decoded::default();
    let (mut off, mut et) = match link {
        LinkType::ETHERNET => (14, be16(d, 12)),
        LinkType::LINUX_SLL => (16, be16(d, 14)),
        l => panic!("link type {l:?} not handled by the test decoder"),
    };
    while et == 0x8100 {
        out.vlans[out.vlan_count as usize] = be16(d, off) & 0xfff;
        out.vlan_count += 1;
        et = be16(d, off + 2);
        off += 4;
    }
    if et != 0x0800 {
        return out;
    }
    let ip = &d[off..];
    let hl = (ip[0] & 15) as usize * 4;
    let total = be16(ip, 2) as usize;
    let (fo, mf) = (be16(ip, 6) & 0x1fff, be16(ip, 6) & 0x2000 != 0);
    let proto = ip[9];
    let frag = (fo != 0 || mf).then_some(FragInfo {
        id: u32::from(be16(ip, 4)),
        offset: u32::from(fo) * 8,
        more: mf,
    });
    out.net = Some(NetLayer {
        src: IpAddr::V4(Ipv4Addr::from(be32(ip, 12))),
        dst: IpAddr::V4(Ipv4Addr::from(be32(ip, 16))),
        proto,
        ttl: ip[8],
        header_len: hl as u16,
        total_len: total as u32,
        frag,
        dont_fragment: be16(ip, 6) & 0x4000 != 0,
        tos: ip[1],
        offset: off as u32,
    });
    let l4 = &ip[hl..ip.len().min(total)];
    let l4_len = total - hl;
    if fo != 0 {
        out.payload_len = l4_len as u32;
        return out;
    }
    match proto {
        6 if l4.len() >= 20 && l4.len() >= (l4[12] >> 4) as usize * 4 => {
            let thl = (l4[12] >> 4) as usize * 4;
            out.transport = Transport::Tcp(TcpInfo {
                src_port: be16(l4, 0),
                dst_port: be16(l4, 2),
                seq: be32(l4, 4),
                ack: be32(l4, 8),
                flags: l4[13],
                window: be16(l4, 14),
                header_len: thl as u8,
                ..TcpInfo::default()
            });
            out.payload_len = (l4_len - thl) as u32;
        }
        17 if l4.len() >= 8 => {
            out.transport =
                Transport::Udp(UdpInfo { src_port: be16(l4, 0), dst_port: be16(l4, 2), length: be16(l4, 4) });
            out.payload_len = (l4_len - 8) as u32;
        }
        6 | 17 if frag.is_some() => out.anomalies.set(Anomaly::TinyFragment),
        _ => {}
    }
    out
}

fn flows_of(name: &str) -> Vec<FlowRecord> {
    flows_with(name, |link, data, _| decode(link, data))
}

/// The same, through netrec's own decoder.
fn flows_real(name: &str) -> Vec<FlowRecord> {
    flows_with(name, netrec_format::decode::decode)
}

fn flows_with(name: &str, decode: impl Fn(LinkType, &[u8], u32) -> Decoded) -> Vec<FlowRecord> {
    let (link, frames) = read_pcap(name);
    let mut t = FlowTable::new(FlowConfig::default());
    let mut out = Vec::new();
    for f in &frames {
        let p = PacketRef {
            ts: f.ts,
            iface: 0,
            direction: Direction::Unknown,
            link_type: link,
            wire_len: f.wire_len,
            data: &f.data,
        };
        t.update(&p, &decode(link, &f.data, f.wire_len));
        t.expire(f.ts, &mut |r| out.push(r));
    }
    t.finish(&mut |r| out.push(r));
    out
}

#[test]
fn tcp_retransmissions_matches_tshark_and_zeek() {
    let flows = flows_of("tcp-retransmissions.pcap");
    assert_eq!(flows.len(), 1);
    let r = &flows[0];
    let k = r.key;
    assert_eq!(k.src_ip.to_string(), "10.0.88.85");
    assert_eq!((k.src_port, k.dst_ip.to_string(), k.dst_port), (50368, "192.168.0.27".into(), 80));
    // Zeek: orig_pkts 17, resp_pkts 22; tshark conv: 1488 bytes -> (frames incl. Ethernet).
    assert_eq!((r.fwd.packets, r.rev.packets), (17, 22));
    assert_eq!(r.fwd.bytes, 1488);
    // Zeek IP bytes: 1250 + 17*14 Ethernet, 28961 + 22*14.
    assert_eq!((r.fwd.bytes, r.rev.bytes), (1250 + 17 * 14, 28961 + 22 * 14));
    // tshark: 3 retransmissions (frames 32, 34, 36; one fast), all from the server.
    assert_eq!((r.fwd.retransmissions, r.rev.retransmissions), (0, 3));
    assert_eq!(r.rev.out_of_order + r.fwd.out_of_order, 0);
    // Handshake: SYN t=0, SYN/ACK t=0.000073, ACK t=0.185458 (tshark iRTT 0.185458).
    assert_eq!((r.rtt_server_ns, r.rtt_client_ns), (Some(73_000), Some(185_385_000)));
    assert_eq!(r.rtt_ns(), Some(185_458_000));
    // Zeek: RSTO, duration 60.991770.
    assert_eq!(r.tcp_state, TcpState::Reset);
    assert_eq!(r.last_ts.saturating_sub(r.first_ts), 60_991_770_000);
    // Zeek orig_bytes 474 (the request); payload bytes count every segment.
    assert_eq!(r.fwd.payload_bytes, 474);
}

#[test]
fn nanosecond_handshake_rtt() {
    let flows = flows_of("tcp-handshake-nanosecond.pcap");
    assert_eq!(flows.len(), 1);
    assert_eq!(flows[0].rtt_server_ns, Some(127_521_774));
    assert_eq!(flows[0].tcp_state, TcpState::Established);
    assert_eq!(flows[0].key.src_port, 46656);
}

#[test]
fn fragmented_syn_is_one_tcp_conversation() {
    // tshark: 1 TCP conversation 192.168.1.100:12345 -> 10.0.0.5:80 (the reassembled
    // datagram counts as 1 frame there; netrec counts both fragments on the wire).
    let flows = flows_of("ipv4-fragmented-syn.pcap");
    assert_eq!(flows.len(), 1, "{flows:?}");
    let r = &flows[0];
    assert_eq!((r.key.src_ip.to_string(), r.key.src_port), ("192.168.1.100".into(), 12345));
    assert_eq!((r.key.dst_ip.to_string(), r.key.dst_port), ("10.0.0.5".into(), 80));
    assert_eq!((r.fwd.packets, r.rev.packets), (2, 0));
    assert_eq!(r.tcp_state, TcpState::SynSent);
    assert_eq!(r.fwd.tcp_flags, 0x02);
}

#[test]
fn fragmented_udp_is_one_flow() {
    let flows = flows_of("ipv4-fragmented-1.pcap");
    assert_eq!(flows.len(), 1, "{flows:?}");
    assert_eq!((flows[0].key.proto, flows[0].key.src_port, flows[0].fwd.packets), (17, 123, 3));
}

#[test]
fn real_decoder_gives_the_same_flows() {
    for name in [
        "tcp-retransmissions.pcap",
        "tcp-handshake-nanosecond.pcap",
        "ipv4-fragmented-syn.pcap",
        "ipv4-fragmented-1.pcap",
    ] {
        let (a, b) = (flows_of(name), flows_real(name));
        assert_eq!(a.len(), b.len(), "{name}");
        for (x, y) in a.iter().zip(&b) {
            assert_eq!(x.key, y.key, "{name}");
            assert_eq!((x.fwd.packets, x.rev.packets), (y.fwd.packets, y.rev.packets), "{name}");
            assert_eq!(
                (x.fwd.retransmissions, x.rev.retransmissions),
                (y.fwd.retransmissions, y.rev.retransmissions),
                "{name}"
            );
            assert_eq!(
                (x.tcp_state, x.rtt_server_ns, x.rtt_client_ns),
                (y.tcp_state, y.rtt_server_ns, y.rtt_client_ns),
                "{name}"
            );
        }
    }
}

#[test]
fn ipv6_fragmented_dns_is_attributed() {
    // tshark (after IPv6 reassembly): 2 UDP conversations, :51850 (1+1 frames) and :51851
    // (2 queries, 1 reassembled response of 3 fragments, frames 6-8). Frame 4 is the last
    // fragment of a datagram whose first fragment was never captured: tshark puts it in
    // no UDP conversation; netrec counts it in a ports-0 flow (unattributed).
    let flows = flows_real("ipv6-fragmented-dns.pcap");
    let summary: Vec<(u16, u16, u64, u64)> =
        flows.iter().map(|r| (r.key.src_port, r.key.dst_port, r.fwd.packets, r.rev.packets)).collect();
    assert_eq!(summary, [(51850, 53, 1, 1), (51851, 53, 2, 3), (0, 0, 1, 0)]);
    assert_eq!(flows[2].key.src_ip.to_string(), "2607:f740:b::f93");
}

#[test]
fn every_classic_pcap_conserves_packets() {
    // Every packet with a network layer ends up in exactly one record, on every capture.
    let mut checked = 0;
    for e in std::fs::read_dir(captures_dir()).expect("captures dir") {
        let path = e.expect("dir entry").path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_owned();
        let magic = std::fs::read(&path).ok().and_then(|b| b.get(..4).map(|m| m.to_vec()));
        let classic = matches!(magic.as_deref(), Some([0xd4, 0xc3, 0xb2, 0xa1] | [0x4d, 0x3c, 0xb2, 0xa1]));
        if !(name.ends_with(".pcap") || name.ends_with(".pcapng")) || !classic {
            continue;
        }
        let (link, frames) = read_pcap(&name);
        let with_net = frames
            .iter()
            .filter(|f| netrec_format::decode::decode(link, &f.data, f.wire_len).net.is_some())
            .count() as u64;
        let flows = flows_real(&name);
        let counted: u64 = flows.iter().map(|r| r.fwd.packets + r.rev.packets).sum();
        assert_eq!(counted, with_net, "{name}");
        checked += 1;
    }
    assert!(checked >= 20, "only {checked} captures checked");
}

#[test]
fn http_wikipedia_matches_zeek_conn_log() {
    // Zeek conn.log baseline: 34 connections; each must be a netrec flow with the same
    // initiator-first key and the same packet counts per direction.
    let log =
        std::fs::read_to_string(captures_dir().join("http-wikipedia.pcap.zeek.conn.log")).expect("conn.log");
    let mut zeek: Vec<(String, u64, u64)> = log
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            let key = format!("{} {}:{} {}:{}", f[6], f[2], f[3], f[4], f[5]);
            (key, f[16].parse().expect("orig_pkts"), f[18].parse().expect("resp_pkts"))
        })
        .collect();
    zeek.sort();
    assert_eq!(zeek.len(), 34);
    let flows = flows_real("http-wikipedia.pcap");
    let mut ours: Vec<(String, u64, u64)> = flows
        .iter()
        .map(|r| {
            let k = r.key;
            let key = format!(
                "{} {}:{} {}:{}",
                netrec_format::proto_name(k.proto),
                k.src_ip,
                k.src_port,
                k.dst_ip,
                k.dst_port
            );
            (key, r.fwd.packets, r.rev.packets)
        })
        .collect();
    ours.sort();
    assert_eq!(ours, zeek);
}
