//! Decoder unit tests on hand-built frames: one group per link type, network layer,
//! transport and tunnel. Expected values are the ones the builder put in.

#[path = "decode_builder.rs"]
mod builder;

use builder::*;
use netrec_format::decode::{Anomaly, Decoded, FragInfo, Transport, decode, tcp_flags};
use netrec_format::{LinkType, TunnelKind};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

const A: [u8; 4] = [192, 0, 2, 1];
const B: [u8; 4] = [198, 51, 100, 7];

fn dec(lt: LinkType, f: &[u8]) -> Decoded {
    decode(lt, f, f.len() as u32)
}

fn ip4(a: [u8; 4]) -> IpAddr {
    IpAddr::V4(Ipv4Addr::from(a))
}

fn ip6(a: [u8; 16]) -> IpAddr {
    IpAddr::V6(Ipv6Addr::from(a))
}

fn anomalies(d: &Decoded) -> Vec<&'static str> {
    d.anomalies.iter().map(Anomaly::name).collect()
}

fn tcp_of(d: &Decoded) -> netrec_format::decode::TcpInfo {
    match d.transport {
        Transport::Tcp(t) => t,
        other => panic!("expected TCP, got {other:?}"),
    }
}

fn udp_of(d: &Decoded) -> netrec_format::decode::UdpInfo {
    match d.transport {
        Transport::Udp(u) => u,
        other => panic!("expected UDP, got {other:?}"),
    }
}

// ---------------------------------------------------------------- Ethernet / VLAN / ARP

#[test]
fn ethernet_ipv4_tcp_syn_with_options() {
    let opts = [2, 4, 0x05, 0xb4, 1, 3, 3, 7, 4, 2, 1, 1];
    let f = eth(0x0800, &ipv4(A, B, 6, &tcp(40000, 443, tcp_flags::SYN, 1000, 0, &opts, b"")));
    let d = dec(LinkType::ETHERNET, &f);
    assert!(d.anomalies.is_empty(), "{:?}", anomalies(&d));
    assert_eq!(d.ethertype, Some(0x0800));
    let n = d.net.unwrap();
    assert_eq!((n.src, n.dst, n.proto, n.ttl), (ip4(A), ip4(B), 6, 64));
    assert_eq!((n.header_len, n.total_len, n.offset, n.frag), (20, 52, 14, None));
    let t = tcp_of(&d);
    assert_eq!((t.src_port, t.dst_port, t.seq, t.ack), (40000, 443, 1000, 0));
    assert_eq!((t.flags, t.ns, t.window, t.header_len), (tcp_flags::SYN, false, 65535, 32));
    assert_eq!((t.mss, t.wscale, t.sack_permitted), (Some(1460), Some(7), true));
    assert_eq!((d.payload_offset, d.payload_len), (14 + 20 + 32, 0));
    assert_eq!(d.ports(), Some((40000, 443)));
    assert_eq!(d.vlan(), 0);
}

#[test]
fn ethernet_ipv4_tcp_payload_and_padding() {
    // 6 bytes of payload, then Ethernet padding up to 60 bytes: padding is not payload.
    let mut f = eth(0x0800, &ipv4(A, B, 6, &tcp(1, 2, 0x18, 5, 6, &[], b"abcdef")));
    f.resize(f.len() + 4, 0);
    let d = dec(LinkType::ETHERNET, &f);
    assert!(d.anomalies.is_empty(), "{:?}", anomalies(&d));
    assert_eq!((d.payload_offset, d.payload_len), (54, 6));
    assert_eq!(&f[54..60], b"abcdef");
}

#[test]
fn vlan_stacks_any_tpid_outermost_first() {
    let tags = [(0x88a8, 0x2000 | 100), (0x8100, 200), (0x9100, 300)];
    let f = eth_tags(&tags, 0x0800, &ipv4(A, B, 17, &udp(1, 2, b"x")));
    let d = dec(LinkType::ETHERNET, &f);
    assert!(d.anomalies.is_empty());
    assert_eq!((d.vlan_count, &d.vlans[..3]), (3, &[100, 200, 300][..]));
    assert_eq!(d.vlan(), 300);
    assert_eq!(d.net.unwrap().offset, 14 + 12);
    assert_eq!(udp_of(&d).dst_port, 2);
}

#[test]
fn vlan_too_deep_keeps_first_four_and_decodes() {
    let f = eth_vlans(&[1, 2, 3, 4, 5, 6], 0x0800, &ipv4(A, B, 17, &udp(1, 2, b"x")));
    let d = dec(LinkType::ETHERNET, &f);
    assert_eq!(anomalies(&d), ["vlan_too_deep"]);
    assert_eq!((d.vlan_count, d.vlans), (4, [1, 2, 3, 4]));
    assert_eq!(d.net.unwrap().src, ip4(A));
    assert_eq!(udp_of(&d).src_port, 1);
}

#[test]
fn vlan_tag_cut_short_is_truncated_link() {
    let f = cat(&[&MAC_B, &MAC_A, &[0x81, 0x00, 0x00]]);
    let d = dec(LinkType::ETHERNET, &f);
    assert_eq!(anomalies(&d), ["truncated_link"]);
}

#[test]
fn arp_and_rarp() {
    let d = dec(LinkType::ETHERNET, &eth(0x0806, &arp(1, A, B)));
    let a = d.arp.unwrap();
    assert_eq!((a.op, a.sender_ip, a.target_ip), (1, Ipv4Addr::from(A), Ipv4Addr::from(B)));
    assert!(d.net.is_none() && d.anomalies.is_empty());
    let d = dec(LinkType::ETHERNET, &eth(0x8035, &arp(3, A, B)));
    assert_eq!(d.arp.unwrap().op, 3);
    assert_eq!(d.ethertype, Some(0x8035));
    let mut short = eth(0x0806, &arp(2, A, B));
    short.truncate(14 + 20);
    let d = dec(LinkType::ETHERNET, &short);
    assert_eq!((d.arp, anomalies(&d)), (None, vec!["truncated_arp"]));
}

#[test]
fn short_and_unknown_ethernet() {
    assert_eq!(anomalies(&dec(LinkType::ETHERNET, &[0u8; 13])), ["truncated_link"]);
    assert_eq!(anomalies(&dec(LinkType::ETHERNET, &[])), ["truncated_link"]);
    let d = dec(LinkType::ETHERNET, &eth(0x88cc, &[0; 20]));
    assert_eq!((d.ethertype, anomalies(&d)), (Some(0x88cc), vec!["unknown_ethertype"]));
    assert!(!d.anomalies.any_malformed());
    assert_eq!((d.payload_offset, d.payload_len), (14, 20));
    // 802.3 length field (LLC follows): not an ethertype.
    let d = dec(LinkType::ETHERNET, &eth(0x0026, &[0x42; 38]));
    assert_eq!((d.ethertype, anomalies(&d)), (None, vec!["unknown_ethertype"]));
}

// ---------------------------------------------------------------- IPv4

#[test]
fn ipv4_options_are_skipped() {
    let mut ip = ipv4(A, B, 17, &cat(&[&[1, 1, 1, 0], &udp(7, 9, b"hi")]));
    ip[0] = 0x46;
    let d = dec(LinkType::RAW, &ip);
    assert!(d.anomalies.is_empty(), "{:?}", anomalies(&d));
    assert_eq!(d.net.unwrap().header_len, 24);
    assert_eq!(udp_of(&d).src_port, 7);
    assert_eq!((d.payload_offset, d.payload_len), (32, 2));
}

#[test]
fn ipv4_bad_header_length_stops_after_addresses() {
    let mut ip = ipv4(A, B, 6, &tcp(1, 2, 2, 0, 0, &[], b""));
    ip[0] = 0x44;
    let d = dec(LinkType::IPV4, &ip);
    assert_eq!(anomalies(&d), ["bad_ipv4_header_length"]);
    assert_eq!(d.net.unwrap().header_len, 16);
    assert_eq!(d.transport, Transport::None);
    // IHL larger than the total length.
    let mut ip = ipv4(A, B, 6, &[]);
    ip[0] = 0x4f;
    let d = dec(LinkType::IPV4, &ip);
    assert!(d.anomalies.has(Anomaly::BadIpv4HeaderLength));
    assert_eq!(d.transport, Transport::None);
}

#[test]
fn ipv4_total_length_lies() {
    // Larger than the wire: clamp to the wire.
    let mut ip = ipv4(A, B, 17, &udp(1, 2, b"abcd"));
    ip[2..4].copy_from_slice(&1000u16.to_be_bytes());
    let d = dec(LinkType::RAW, &ip);
    assert!(d.anomalies.has(Anomaly::BadIpv4TotalLength));
    assert_eq!(d.net.unwrap().total_len, 1000);
    assert_eq!(udp_of(&d).dst_port, 2);
    assert_eq!(d.payload_len, 4);
    // Smaller than the header: take the wire length.
    ip[2..4].copy_from_slice(&19u16.to_be_bytes());
    let d = dec(LinkType::RAW, &ip);
    assert!(d.anomalies.has(Anomaly::BadIpv4TotalLength));
    assert_eq!(d.payload_len, 4);
    // 0 (TSO/GSO/GRO super-packets, BIG TCP): the wire length, not an anomaly.
    ip[2..4].copy_from_slice(&0u16.to_be_bytes());
    let d = dec(LinkType::RAW, &ip);
    assert!(!d.anomalies.any_malformed(), "{:?}", d.anomalies);
    assert_eq!(udp_of(&d).dst_port, 2);
    assert_eq!(d.payload_len, 4);
    // A BIG TCP segment past 64 KiB: every byte of the frame counts.
    let mut big = ipv4(A, B, 6, &tcp(40000, 443, 0x10, 1, 1, &[], &vec![7u8; 70_000]));
    big[2..4].copy_from_slice(&0u16.to_be_bytes());
    let d = dec(LinkType::RAW, &big);
    assert!(!d.anomalies.any_malformed(), "{:?}", d.anomalies);
    assert_eq!(tcp_of(&d).dst_port, 443);
    assert_eq!(d.payload_len, 70_000);
}

#[test]
fn ipv4_reserved_flag_and_low_ttl() {
    let mut ip = ipv4(A, B, 17, &udp(1, 2, b""));
    ip[6] |= 0x80 | 0x40;
    ip[8] = 1;
    let d = dec(LinkType::RAW, &ip);
    assert_eq!(anomalies(&d), ["ipv4_reserved_flag", "low_ttl"]);
    let n = d.net.unwrap();
    assert!(n.dont_fragment && n.frag.is_none());
    ip[8] = 0;
    assert!(dec(LinkType::RAW, &ip).anomalies.has(Anomaly::LowTtl));
    ip[8] = 2;
    assert!(!dec(LinkType::RAW, &ip).anomalies.has(Anomaly::LowTtl));
}

#[test]
fn ipv4_snaplen_truncation_counts_wire_payload() {
    let f = eth(0x0800, &ipv4(A, B, 6, &tcp(1, 2, 0x10, 0, 0, &[], &[7; 1000])));
    let wire = f.len() as u32;
    // Cut after the TCP header: everything decoded, payload counted from the headers.
    let d = decode(LinkType::ETHERNET, &f[..54], wire);
    assert!(d.anomalies.is_empty(), "{:?}", anomalies(&d));
    assert_eq!((d.payload_offset, d.payload_len), (54, 1000));
    // Cut inside the TCP header.
    let d = decode(LinkType::ETHERNET, &f[..40], wire);
    assert_eq!(anomalies(&d), ["truncated_tcp"]);
    assert_eq!(d.net.unwrap().dst, ip4(B));
    assert_eq!(d.transport, Transport::None);
    // Cut inside the IPv4 header.
    let d = decode(LinkType::ETHERNET, &f[..20], wire);
    assert_eq!(anomalies(&d), ["truncated_ipv4"]);
    assert!(d.net.is_none());
    // Options cut by the snaplen.
    let mut g = ipv4(A, B, 17, &cat(&[&[1; 8], &udp(1, 2, b"")]));
    g[0] = 0x47;
    let d = decode(LinkType::RAW, &g[..24], g.len() as u32);
    assert_eq!(anomalies(&d), ["truncated_ipv4"]);
}

#[test]
fn ipv4_fragments() {
    let seg = tcp(1000, 80, tcp_flags::SYN, 1, 0, &[], &[0; 4]);
    // First fragment: transport parsed, frag info set.
    let mut first = ipv4(A, B, 6, &seg);
    first[4..6].copy_from_slice(&0xbeefu16.to_be_bytes());
    first[6] = 0x20;
    let d = dec(LinkType::RAW, &first);
    assert!(d.anomalies.is_empty(), "{:?}", anomalies(&d));
    assert_eq!(d.net.unwrap().frag, Some(FragInfo { id: 0xbeef, offset: 0, more: true }));
    assert_eq!(tcp_of(&d).flags, tcp_flags::SYN);
    // A later fragment: no transport, the fragment data is the payload.
    let mut later = ipv4(A, B, 6, &[0; 16]);
    later[6..8].copy_from_slice(&(0x2000u16 | 3).to_be_bytes());
    let d = dec(LinkType::RAW, &later);
    assert_eq!(d.net.unwrap().frag, Some(FragInfo { id: 0x1234, offset: 24, more: true }));
    assert_eq!((d.transport, d.payload_offset, d.payload_len), (Transport::None, 20, 16));
    assert!(d.anomalies.is_empty());
    // Tiny first fragment: 8 bytes cannot hold a TCP header.
    let mut tiny = ipv4(A, B, 6, &seg[..8]);
    tiny[6] = 0x20;
    let d = dec(LinkType::RAW, &tiny);
    assert_eq!(anomalies(&d), ["tiny_fragment"]);
    assert_eq!(d.transport, Transport::None);
    // Non-last fragment whose size is not a multiple of 8, and one past 65535.
    let mut odd = ipv4(A, B, 17, &[0; 13]);
    odd[6..8].copy_from_slice(&(0x2000u16 | 10).to_be_bytes());
    assert_eq!(anomalies(&dec(LinkType::RAW, &odd)), ["bad_fragment"]);
    let mut far = ipv4(A, B, 17, &[0; 16]);
    far[6..8].copy_from_slice(&0x1fffu16.to_be_bytes());
    assert_eq!(anomalies(&dec(LinkType::RAW, &far)), ["bad_fragment"]);
}

// ---------------------------------------------------------------- IPv6

#[test]
fn ipv6_extension_chain_to_tcp() {
    let payload = cat(&[&ext6(60, 0), &ext6(43, 1), &ext6(6, 0), &tcp(5, 6, 0x12, 9, 10, &[], b"zz")]);
    let d = dec(LinkType::IPV6, &ipv6(v6(1), v6(2), 0, &payload));
    assert!(d.anomalies.is_empty(), "{:?}", anomalies(&d));
    let n = d.net.unwrap();
    assert_eq!((n.src, n.dst, n.proto, n.ttl), (ip6(v6(1)), ip6(v6(2)), 6, 64));
    assert_eq!((n.header_len, n.total_len), (40 + 8 + 16 + 8, 40 + payload.len() as u32));
    assert_eq!(tcp_of(&d).flags, 0x12);
    assert_eq!((d.payload_offset, d.payload_len), (72 + 20, 2));
}

#[test]
fn ipv6_fragment_header() {
    let first = cat(&[&frag6(17, 0, true, 0xdead_beef), &udp(53, 5353, &[0; 8])]);
    let d = dec(LinkType::IPV6, &ipv6(v6(1), v6(2), 44, &first));
    assert!(d.anomalies.is_empty(), "{:?}", anomalies(&d));
    let n = d.net.unwrap();
    assert_eq!(n.frag, Some(FragInfo { id: 0xdead_beef, offset: 0, more: true }));
    assert_eq!((n.proto, n.header_len), (17, 48));
    assert_eq!(udp_of(&d).src_port, 53);
    // Later fragment: proto is the fragment's next header, no transport.
    let later = cat(&[&frag6(17, 1448, false, 7), &[0; 10]]);
    let d = dec(LinkType::IPV6, &ipv6(v6(1), v6(2), 44, &later));
    let n = d.net.unwrap();
    assert_eq!((n.proto, n.frag.unwrap().offset, n.frag.unwrap().more), (17, 1448, false));
    assert_eq!((d.transport, d.payload_offset, d.payload_len), (Transport::None, 48, 10));
    // Non-last fragment of 10 bytes: bad.
    let odd = cat(&[&frag6(17, 8, true, 7), &[0; 10]]);
    assert_eq!(anomalies(&dec(LinkType::IPV6, &ipv6(v6(1), v6(2), 44, &odd))), ["bad_fragment"]);
}

#[test]
fn ipv6_bad_extension_chains() {
    // Nine destination-options headers: over the bound.
    let mut chain = Vec::new();
    for _ in 0..9 {
        chain.extend(ext6(60, 0));
    }
    chain.extend(udp(1, 2, b""));
    let last = chain.len() - 8 - 8;
    chain[last] = 17;
    let d = dec(LinkType::IPV6, &ipv6(v6(1), v6(2), 60, &chain));
    assert_eq!(anomalies(&d), ["bad_ipv6_ext_header"]);
    assert_eq!(d.transport, Transport::None);
    // Eight is fine.
    let d = dec(LinkType::IPV6, &ipv6(v6(1), v6(2), 60, &chain[8..]));
    assert!(d.anomalies.is_empty(), "{:?}", anomalies(&d));
    // Extension header longer than the payload.
    let d = dec(LinkType::IPV6, &ipv6(v6(1), v6(2), 0, &ext6(6, 4)[..16]));
    assert_eq!(anomalies(&d), ["bad_ipv6_ext_header"]);
}

#[test]
fn ipv6_stops_at_esp_and_no_next() {
    let d = dec(LinkType::IPV6, &ipv6(v6(1), v6(2), 50, &[1; 24]));
    assert_eq!((d.net.unwrap().proto, d.transport), (50, Transport::Other));
    assert_eq!((d.payload_offset, d.payload_len), (40, 24));
    let d = dec(LinkType::IPV6, &ipv6(v6(1), v6(2), 0, &ext6(59, 0)));
    assert_eq!((d.net.unwrap().proto, d.payload_len), (59, 0));
    assert!(d.anomalies.is_empty());
}

#[test]
fn ipv6_truncated_and_lying_length() {
    let f = ipv6(v6(1), v6(2), 17, &udp(1, 2, b"abc"));
    assert_eq!(anomalies(&decode(LinkType::IPV6, &f[..39], f.len() as u32)), ["truncated_ipv6"]);
    let mut g = f.clone();
    g[4..6].copy_from_slice(&500u16.to_be_bytes());
    let d = dec(LinkType::IPV6, &g);
    assert!(d.anomalies.has(Anomaly::BadIpv6PayloadLength));
    assert_eq!(d.net.unwrap().total_len, 540);
    assert_eq!(udp_of(&d).src_port, 1);
    let mut h = f.clone();
    h[7] = 1;
    assert_eq!(anomalies(&dec(LinkType::IPV6, &h)), ["low_ttl"]);
}

// ---------------------------------------------------------------- transports

#[test]
fn tcp_all_flags_ns_and_reserved_bits() {
    let mut seg = tcp(1, 2, 0xff, 0, 0, &[], b"");
    seg[12] |= 0x0f;
    let d = dec(LinkType::RAW, &ipv4(A, B, 6, &seg));
    assert_eq!(anomalies(&d), ["tcp_reserved_bits"]);
    let t = tcp_of(&d);
    assert_eq!((t.flags, t.ns), (0xff, true));
}

#[test]
fn tcp_bad_header_length_keeps_fixed_fields() {
    let mut seg = tcp(1, 2, tcp_flags::SYN, 0, 0, &[], b"");
    seg[12] = 0x40;
    let d = dec(LinkType::RAW, &ipv4(A, B, 6, &seg));
    assert_eq!(anomalies(&d), ["bad_tcp_header_length"]);
    assert_eq!(tcp_of(&d).header_len, 16);
    assert_eq!(d.payload_len, 0);
    let mut seg = tcp(1, 2, tcp_flags::SYN, 0, 0, &[], b"");
    seg[12] = 0xf0; // 60 bytes in a 20-byte segment
    assert!(dec(LinkType::RAW, &ipv4(A, B, 6, &seg)).anomalies.has(Anomaly::BadTcpHeaderLength));
}

#[test]
fn tcp_malformed_options_are_ignored() {
    // MSS with length 0, then garbage: no values, no panic, no anomaly.
    let d = dec(LinkType::RAW, &ipv4(A, B, 6, &tcp(1, 2, 2, 0, 0, &[2, 0, 5, 0xb4], b"")));
    let t = tcp_of(&d);
    assert_eq!((t.mss, t.wscale, t.sack_permitted), (None, None, false));
    // Window scale with a wrong length is not taken; a later valid SACK-permitted is.
    let d = dec(LinkType::RAW, &ipv4(A, B, 6, &tcp(1, 2, 2, 0, 0, &[3, 4, 7, 0, 4, 2], b"")));
    let t = tcp_of(&d);
    assert_eq!((t.wscale, t.sack_permitted), (None, true));
}

#[test]
fn udp_length_checks() {
    let mut seg = udp(1, 2, b"abcdef");
    seg[4..6].copy_from_slice(&10u16.to_be_bytes());
    let d = dec(LinkType::RAW, &ipv4(A, B, 17, &seg));
    assert_eq!(anomalies(&d), ["bad_udp_length"]);
    assert_eq!((udp_of(&d).length, d.payload_len), (10, 2));
    let d = dec(LinkType::RAW, &ipv4(A, B, 17, &[0; 5]));
    assert_eq!((anomalies(&d), d.transport), (vec!["truncated_udp"], Transport::None));
}

#[test]
fn icmp_and_icmpv6_echo() {
    let d = dec(LinkType::RAW, &ipv4(A, B, 1, &icmp(8, 0, 0x1234, 7, &[0; 56])));
    match d.transport {
        Transport::Icmp(i) => assert_eq!((i.icmp_type, i.code, i.ident, i.seq), (8, 0, 0x1234, 7)),
        t => panic!("{t:?}"),
    }
    assert_eq!((d.payload_offset, d.payload_len), (28, 56));
    // Destination unreachable carries no id/seq.
    let d = dec(LinkType::RAW, &ipv4(A, B, 1, &icmp(3, 3, 9, 9, &[0; 28])));
    assert_eq!(
        d.transport,
        Transport::Icmp(netrec_format::decode::IcmpInfo { icmp_type: 3, code: 3, ident: 0, seq: 0 })
    );
    let d = dec(LinkType::IPV6, &ipv6(v6(1), v6(2), 58, &icmp(129, 0, 5, 6, b"")));
    match d.transport {
        Transport::Icmpv6(i) => assert_eq!((i.icmp_type, i.ident, i.seq), (129, 5, 6)),
        t => panic!("{t:?}"),
    }
    let d = dec(LinkType::RAW, &ipv4(A, B, 1, &[8, 0, 0, 0]));
    assert_eq!(anomalies(&d), ["truncated_icmp"]);
}

#[test]
fn other_ip_protocol() {
    // DCCP (33): not read; the IP payload is the payload.
    let d = dec(LinkType::RAW, &ipv4(A, B, 33, &[0; 12]));
    assert_eq!((d.transport, d.net.unwrap().proto), (Transport::Other, 33));
    assert_eq!((d.payload_offset, d.payload_len), (20, 12));
    assert!(d.anomalies.is_empty());
}

#[test]
fn sctp_ports_and_first_chunk() {
    use netrec_format::decode::SctpInfo;
    // Common header: ports 2905 -> 36412 (S1AP), vtag, checksum; an INIT chunk.
    let init = [0x0b, 0x59, 0x8e, 0x3c, 0, 0, 0, 0, 1, 2, 3, 4, 1, 0, 0, 20];
    let d = dec(LinkType::RAW, &ipv4(A, B, 132, &cat(&[&init, &[0; 16]])));
    assert_eq!(
        d.transport,
        Transport::Sctp(SctpInfo { src_port: 2905, dst_port: 36412, first_chunk: Some(1) })
    );
    assert_eq!((d.ports(), d.payload_offset, d.payload_len), (Some((2905, 36412)), 32, 20));
    assert!(d.anomalies.is_empty());
    // Over IPv6, a bare common header (no chunk).
    let d = dec(LinkType::IPV6, &ipv6(v6(1), v6(2), 132, &init[..12]));
    assert_eq!(d.transport, Transport::Sctp(SctpInfo { src_port: 2905, dst_port: 36412, first_chunk: None }));
    // Cut short by the wire or by the capture: `Other`, ports unknown, no anomaly.
    let d = dec(LinkType::RAW, &ipv4(A, B, 132, &init[..11]));
    assert_eq!((d.transport, d.ports(), d.anomalies.is_empty()), (Transport::Other, None, true));
    let full = ipv4(A, B, 132, &init);
    let d = decode(LinkType::RAW, &full[..30], full.len() as u32);
    assert_eq!((d.transport, d.anomalies.is_empty()), (Transport::Other, true));
}

// ---------------------------------------------------------------- link types

fn udp4() -> Vec<u8> {
    ipv4(A, B, 17, &udp(1111, 53, b"dns?"))
}

fn udp6() -> Vec<u8> {
    ipv6(v6(1), v6(2), 17, &udp(2222, 53, b"dns?"))
}

/// The frame decodes to the IPv4 (or IPv6) UDP packet above, starting at `net_off`.
#[track_caller]
fn assert_udp(d: &Decoded, v6_: bool, net_off: u32) {
    assert!(d.anomalies.is_empty(), "{:?}", anomalies(d));
    let n = d.net.expect("net layer");
    assert_eq!(n.offset, net_off);
    if v6_ {
        assert_eq!((n.src, udp_of(d).src_port), (ip6(v6(1)), 2222));
    } else {
        assert_eq!((n.src, udp_of(d).src_port), (ip4(A), 1111));
    }
    assert_eq!(d.payload_len, 4);
}

#[test]
fn raw_ip_link_types() {
    for lt in [LinkType::RAW, LinkType::RAW_BSD12, LinkType::RAW_BSD14] {
        assert_udp(&dec(lt, &udp4()), false, 0);
        assert_udp(&dec(lt, &udp6()), true, 0);
        assert_eq!(anomalies(&dec(lt, &[0x55; 30])), ["bad_ip_version"]);
        assert_eq!(anomalies(&dec(lt, &[])), ["truncated_link"]);
    }
    assert_udp(&dec(LinkType::IPV4, &udp4()), false, 0);
    assert_udp(&dec(LinkType::IPV6, &udp6()), true, 0);
    assert_eq!(anomalies(&dec(LinkType::IPV4, &udp6())), ["bad_ip_version"]);
    assert_eq!(anomalies(&dec(LinkType::IPV6, &udp4())), ["bad_ip_version"]);
}

#[test]
fn null_and_loop() {
    for af in [24u32, 28, 30] {
        assert_udp(&dec(LinkType::NULL, &cat(&[&af.to_le_bytes(), &udp6()])), true, 4);
        assert_udp(&dec(LinkType::NULL, &cat(&[&af.to_be_bytes(), &udp6()])), true, 4);
        assert_udp(&dec(LinkType::LOOP, &cat(&[&af.to_be_bytes(), &udp6()])), true, 4);
    }
    assert_udp(&dec(LinkType::NULL, &cat(&[&2u32.to_le_bytes(), &udp4()])), false, 4);
    assert_udp(&dec(LinkType::NULL, &cat(&[&2u32.to_be_bytes(), &udp4()])), false, 4);
    assert_udp(&dec(LinkType::LOOP, &cat(&[&2u32.to_be_bytes(), &udp4()])), false, 4);
    // LOOP is network order only.
    let d = dec(LinkType::LOOP, &cat(&[&2u32.to_le_bytes(), &udp4()]));
    assert_eq!(anomalies(&d), ["unknown_ethertype"]);
    assert_eq!(anomalies(&dec(LinkType::NULL, &cat(&[&7u32.to_le_bytes(), &udp4()]))), ["unknown_ethertype"]);
    assert_eq!(anomalies(&dec(LinkType::NULL, &[2, 0])), ["truncated_link"]);
}

#[test]
fn linux_cooked_v1_and_v2() {
    let d = dec(LinkType::LINUX_SLL, &sll(0x0800, &udp4()));
    assert_udp(&d, false, 16);
    assert_eq!(d.ethertype, Some(0x0800));
    assert_udp(&dec(LinkType::LINUX_SLL2, &sll2(0x86dd, &udp6())), true, 20);
    // A VLAN tag left in the cooked payload.
    let d = dec(LinkType::LINUX_SLL, &sll(0x8100, &cat(&[&[0, 42, 0x08, 0x00], &udp4()])));
    assert_eq!((d.vlan(), d.net.unwrap().offset), (42, 20));
    let d = dec(LinkType::LINUX_SLL2, &sll2(0x0806, &arp(2, A, B)));
    assert_eq!(d.arp.unwrap().op, 2);
    assert_eq!(anomalies(&dec(LinkType::LINUX_SLL, &[0; 15])), ["truncated_link"]);
    assert_eq!(anomalies(&dec(LinkType::LINUX_SLL2, &[0; 19])), ["truncated_link"]);
}

#[test]
fn ppp_variants() {
    assert_udp(&dec(LinkType::PPP, &cat(&[&[0x00, 0x21], &udp4()])), false, 2);
    assert_udp(&dec(LinkType::PPP, &cat(&[&[0xff, 0x03, 0x00, 0x57], &udp6()])), true, 4);
    // Protocol-field compression: one odd byte.
    assert_udp(&dec(LinkType::PPP, &cat(&[&[0x21], &udp4()])), false, 1);
    assert_udp(&dec(LinkType::PPP_HDLC, &cat(&[&[0xff, 0x03, 0x57], &udp6()])), true, 3);
    // Cisco HDLC in the same link type.
    assert_udp(&dec(LinkType::PPP_HDLC, &cat(&[&[0x0f, 0x00, 0x08, 0x00], &udp4()])), false, 4);
    // LCP is not decoded.
    assert_eq!(anomalies(&dec(LinkType::PPP, &[0xff, 0x03, 0xc0, 0x21, 1, 1])), ["unknown_ethertype"]);
    assert_eq!(anomalies(&dec(LinkType::PPP, &[0xff, 0x03])), ["truncated_link"]);
}

#[test]
fn pppoe_session() {
    let ip = udp4();
    let mut h = vec![0x11, 0x00, 0x12, 0x34];
    h.extend_from_slice(&((ip.len() + 2) as u16).to_be_bytes());
    let sess = cat(&[&h, &[0x00, 0x21], &ip]);
    assert_udp(&dec(LinkType::PPP_ETHER, &sess), false, 8);
    assert_udp(&dec(LinkType::ETHERNET, &eth(0x8864, &sess)), false, 22);
}

#[test]
fn nflog_little_and_big_endian() {
    let f = nflog(2, &udp4());
    let d = dec(LinkType::NFLOG, &f);
    assert_udp(&d, false, f.len() as u32 - udp4().len() as u32);
    // The same frame written on a big-endian host.
    let mut be = f.clone();
    let mut off = 4;
    while off + 4 <= be.len() {
        let len = u16::from_le_bytes([be[off], be[off + 1]]) as usize;
        be.swap(off, off + 1);
        be.swap(off + 2, off + 3);
        off += (len + 3) & !3;
    }
    assert_udp(&dec(LinkType::NFLOG, &be), false, f.len() as u32 - udp4().len() as u32);
    assert_udp(&dec(LinkType::NFLOG, &nflog(10, &udp6())), true, f.len() as u32 - udp4().len() as u32);
    assert_eq!(anomalies(&dec(LinkType::NFLOG, &nflog(10, &udp4()))), ["bad_ip_version"]);
    // A TLV running past the frame.
    let mut bad = f.clone();
    bad[4] = 0xf0;
    assert_eq!(anomalies(&dec(LinkType::NFLOG, &bad)), ["truncated_link"]);
}

#[test]
fn unsupported_link_type() {
    let d = dec(LinkType(147), &udp4());
    assert_eq!(anomalies(&d), ["unsupported_link_type"]);
    assert!(d.net.is_none() && !d.anomalies.any_malformed());
}

// ---------------------------------------------------------------- tunnels

const OA: [u8; 4] = [172, 16, 0, 1];
const OB: [u8; 4] = [172, 16, 0, 2];

fn inner_eth() -> Vec<u8> {
    eth(0x0800, &ipv4(A, B, 6, &tcp(3333, 22, tcp_flags::SYN, 1, 0, &[], b"")))
}

/// The innermost packet is the TCP SYN A:3333 -> B:22 at `net_off`; the tunnel is as given.
#[track_caller]
fn assert_inner_syn(d: &Decoded, kind: TunnelKind, id: u32, net_off: u32) {
    assert!(d.anomalies.is_empty(), "{:?}", anomalies(d));
    let t = d.tunnel.expect("tunnel");
    assert_eq!((t.kind, t.id, t.outer_src, t.outer_dst), (kind, id, ip4(OA), ip4(OB)));
    let n = d.net.unwrap();
    assert_eq!((n.src, n.dst, n.offset), (ip4(A), ip4(B), net_off));
    assert_eq!(d.ports(), Some((3333, 22)));
    assert_eq!((d.payload_offset, d.payload_len), (net_off + 40, 0));
}

#[test]
fn gre_plain_ipv4_and_key() {
    let inner = ipv4(A, B, 6, &tcp(3333, 22, tcp_flags::SYN, 1, 0, &[], b""));
    let d = dec(LinkType::ETHERNET, &eth(0x0800, &ipv4(OA, OB, 47, &gre(false, None, None, 0x0800, &inner))));
    assert_inner_syn(&d, TunnelKind::Gre, 0, 14 + 20 + 4);
    let f = eth(0x0800, &ipv4(OA, OB, 47, &gre(true, Some(0xabcd), Some(9), 0x0800, &inner)));
    assert_inner_syn(&dec(LinkType::ETHERNET, &f), TunnelKind::Gre, 0xabcd, 14 + 20 + 16);
}

#[test]
fn gre_transparent_ethernet_keeps_outer_vlans() {
    let inner = eth_vlans(&[777], 0x0800, &ipv4(A, B, 6, &tcp(3333, 22, tcp_flags::SYN, 1, 0, &[], b"")));
    let f = eth_vlans(&[10], 0x0800, &ipv4(OA, OB, 47, &gre(false, Some(5), None, 0x6558, &inner)));
    let d = dec(LinkType::ETHERNET, &f);
    assert_inner_syn(&d, TunnelKind::Gre, 5, 18 + 20 + 8 + 18);
    assert_eq!((d.vlan_count, d.vlan()), (1, 10));
    assert_eq!(d.ethertype, Some(0x0800));
}

#[test]
fn gre_ipv6_inner() {
    let inner = ipv6(v6(1), v6(2), 17, &udp(1, 2, b"x"));
    let d = dec(LinkType::RAW, &ipv4(OA, OB, 47, &gre(false, None, None, 0x86dd, &inner)));
    assert_eq!(d.tunnel.unwrap().kind, TunnelKind::Gre);
    assert_eq!((d.net.unwrap().src, udp_of(&d).dst_port), (ip6(v6(1)), 2));
}

#[test]
fn gre_not_followed_or_malformed_keeps_outer() {
    // Unknown payload type (Cisco 0x8909) and keepalives: outer packet, no anomaly.
    let d = dec(LinkType::RAW, &ipv4(OA, OB, 47, &gre(false, Some(40), None, 0x8909, &[0; 12])));
    assert_eq!((d.tunnel, d.transport, d.net.unwrap().src), (None, Transport::Other, ip4(OA)));
    assert!(d.anomalies.is_empty());
    assert_eq!((d.payload_offset, d.payload_len), (20, 20));
    // Key announced but cut off.
    let mut g = gre(false, Some(40), None, 0x0800, &[]);
    g.truncate(6);
    let d = dec(LinkType::RAW, &ipv4(OA, OB, 47, &g));
    assert_eq!((anomalies(&d), d.tunnel), (vec!["bad_tunnel"], None));
    assert_eq!(d.net.unwrap().src, ip4(OA));
    // IPv4 type but no IPv4 inside.
    let d = dec(LinkType::RAW, &ipv4(OA, OB, 47, &gre(false, None, None, 0x0800, &[0x60; 20])));
    assert_eq!((anomalies(&d), d.tunnel), (vec!["bad_tunnel"], None));
    // Routing present (RFC 1701): not parsed.
    let mut r = gre(false, None, None, 0x0800, &udp4());
    r[0] |= 0x40;
    assert_eq!(anomalies(&dec(LinkType::RAW, &ipv4(OA, OB, 47, &r))), ["bad_tunnel"]);
}

#[test]
fn erspan_types_i_ii_iii() {
    let f2 = ipv4(OA, OB, 47, &gre(false, None, Some(1), 0x88be, &erspan2(0x155, 3, &inner_eth())));
    let d = dec(LinkType::RAW, &f2);
    assert_inner_syn(&d, TunnelKind::Erspan, 0x155, 20 + 8 + 8 + 14);
    assert_eq!(d.vlan_count, 0);
    let f1 = ipv4(OA, OB, 47, &gre(false, None, None, 0x88be, &inner_eth()));
    assert_inner_syn(&dec(LinkType::RAW, &f1), TunnelKind::Erspan, 0, 20 + 4 + 14);
    let f3 = ipv4(OA, OB, 47, &gre(false, None, Some(1), 0x22eb, &erspan3(0x3ff, false, &inner_eth())));
    assert_inner_syn(&dec(LinkType::RAW, &f3), TunnelKind::Erspan, 0x3ff, 20 + 8 + 12 + 14);
    let f3s = ipv4(OA, OB, 47, &gre(false, None, None, 0x22eb, &erspan3(2, true, &inner_eth())));
    assert_inner_syn(&dec(LinkType::RAW, &f3s), TunnelKind::Erspan, 2, 20 + 4 + 20 + 14);
    // Wrong ERSPAN version: malformed.
    let mut bad = gre(false, None, Some(1), 0x88be, &erspan2(1, 0, &inner_eth()));
    bad[8] = 0x70;
    assert_eq!(anomalies(&dec(LinkType::RAW, &ipv4(OA, OB, 47, &bad))), ["bad_tunnel"]);
}

#[test]
fn vxlan_tunnel() {
    let f = eth(0x0800, &ipv4(OA, OB, 17, &udp(50000, 4789, &vxlan(1111, &inner_eth()))));
    let d = dec(LinkType::ETHERNET, &f);
    assert_inner_syn(&d, TunnelKind::Vxlan, 1111, 14 + 20 + 8 + 8 + 14);
    // I flag missing: the packet stays plain UDP to 4789.
    let mut v = vxlan(1111, &inner_eth());
    v[0] = 0;
    let d = dec(LinkType::ETHERNET, &eth(0x0800, &ipv4(OA, OB, 17, &udp(50000, 4789, &v))));
    assert_eq!((anomalies(&d), d.tunnel), (vec!["bad_tunnel"], None));
    assert_eq!(d.ports(), Some((50000, 4789)));
    assert_eq!((d.payload_offset, d.payload_len), (42, v.len() as u32));
    // Inner frame cut short on the wire.
    let d = dec(LinkType::RAW, &ipv4(OA, OB, 17, &udp(1, 4789, &vxlan(1, &[0; 10]))));
    assert_eq!((anomalies(&d), d.tunnel), (vec!["bad_tunnel"], None));
    // Source port 4789 alone is not VXLAN.
    let d = dec(LinkType::RAW, &ipv4(OA, OB, 17, &udp(4789, 1, &vxlan(1, &inner_eth()))));
    assert_eq!((d.tunnel, d.ports()), (None, Some((4789, 1))));
}

#[test]
fn geneve_tunnel() {
    let g = geneve(0xa, 0x6558, 2, &inner_eth());
    let d = dec(LinkType::RAW, &ipv4(OA, OB, 17, &udp(12618, 6081, &g)));
    assert_inner_syn(&d, TunnelKind::Geneve, 0xa, 20 + 8 + 16 + 14);
    let inner_ip = ipv4(A, B, 6, &tcp(3333, 22, tcp_flags::SYN, 1, 0, &[], b""));
    let d = dec(LinkType::RAW, &ipv4(OA, OB, 17, &udp(1, 6081, &geneve(7, 0x0800, 0, &inner_ip))));
    assert_inner_syn(&d, TunnelKind::Geneve, 7, 20 + 8 + 8);
    // Version 1 and options running past the packet: malformed.
    let mut v1 = g.clone();
    v1[0] |= 0x40;
    assert_eq!(anomalies(&dec(LinkType::RAW, &ipv4(OA, OB, 17, &udp(1, 6081, &v1)))), ["bad_tunnel"]);
    let long = geneve(7, 0x6558, 63, &[]);
    let d = dec(LinkType::RAW, &ipv4(OA, OB, 17, &udp(1, 6081, &long[..40])));
    assert_eq!((anomalies(&d), d.tunnel), (vec!["bad_tunnel"], None));
}

#[test]
fn ieee_802_3_llc_snap_and_cisco_hdlc() {
    let u = ipv4(A, B, 17, &udp(1, 2, b"x"));
    // 802.3 length + LLC/SNAP: the ethertype after SNAP; Ethernet padding beyond the length.
    let mut f = eth8023(&llc_snap(0x0800, &u));
    f.resize(60, 0);
    let d = dec(LinkType::ETHERNET, &f);
    assert!(d.anomalies.is_empty(), "{:?}", anomalies(&d));
    assert_eq!((d.ethertype, d.net.unwrap().offset, d.ports()), (Some(0x0800), 22, Some((1, 2))));
    // Plain LLC (spanning tree): not decoded, payload bounded by the 802.3 length.
    let mut stp = eth8023(&[0x42, 0x42, 0x03, 0, 0, 0, 0, 0]);
    stp.resize(60, 0);
    let d = dec(LinkType::ETHERNET, &stp);
    assert_eq!((anomalies(&d), d.ethertype, d.payload_len), (vec!["unknown_ethertype"], None, 8));
    // A SNAP "ethertype" that is a length again is not followed.
    let d = dec(LinkType::ETHERNET, &eth8023(&llc_snap(40, &eth8023(&[0; 40]))));
    assert_eq!((anomalies(&d), d.net), (vec!["unknown_ethertype"], None));
    // Cisco HDLC: IPv4 by ethertype; SLARP (0x8035) is not RARP.
    let d = dec(LinkType::C_HDLC, &cat(&[&[0x0f, 0, 0x08, 0], &u]));
    assert_eq!((anomalies(&d), d.ports()), (vec![], Some((1, 2))));
    let slarp = dec(LinkType::C_HDLC, &cat(&[&[0x8f, 0, 0x80, 0x35], &[0; 20]]));
    assert_eq!((anomalies(&slarp), slarp.arp), (vec!["unknown_ethertype"], None));
    assert_eq!(anomalies(&dec(LinkType::C_HDLC, &[0x0f, 0])), ["truncated_link"]);
    // The same frames inside PPP-in-HDLC captures (link type 50).
    let slarp = dec(LinkType::PPP_HDLC, &cat(&[&[0x8f, 0, 0x80, 0x35], &[0; 20]]));
    assert_eq!((anomalies(&slarp), slarp.arp), (vec!["unknown_ethertype"], None));
    assert_eq!(dec(LinkType::PPP_HDLC, &cat(&[&[0x0f, 0, 0x08, 0], &u])).ports(), Some((1, 2)));
}

#[test]
fn ieee_802_11_data_frames_and_radiotap() {
    let t = ipv4(A, B, 6, &tcp(3333, 22, tcp_flags::SYN, 1, 0, &[], b""));
    let body = llc_snap(0x0800, &t);
    // Plain data (24-byte header), QoS (+2), QoS + HT control (+6), four addresses (+6).
    for (flags, qos, ht, hl) in [
        (0x01, None, false, 24),
        (0x02, Some(0), false, 26),
        (0x81, Some(5), true, 30),
        (0x03, Some(0), false, 32),
    ] {
        let d = dec(LinkType::IEEE802_11, &wifi_data(flags, qos, ht, &body));
        assert!(d.anomalies.is_empty(), "{flags:#x}: {:?}", anomalies(&d));
        assert_eq!((d.ethertype, d.net.unwrap().offset), (Some(0x0800), hl + 8), "{flags:#x}");
        assert_eq!(d.ports(), Some((3333, 22)));
    }
    // Protected (encrypted body), null data, management and A-MSDU: nothing decoded, no anomaly.
    let protected = wifi_data(0x41, None, false, &body);
    let mut null = wifi_data(0x01, None, false, &[]);
    null[0] |= 0x4 << 4;
    let mut beacon = wifi_data(0, None, false, &[0; 40]);
    beacon[0] = 0x80;
    let amsdu = wifi_data(0x01, Some(0x80), false, &body);
    for f in [protected, null, beacon, amsdu] {
        let d = dec(LinkType::IEEE802_11, &f);
        assert_eq!((anomalies(&d), d.net), (vec![], None));
    }
    // Header cut short.
    assert_eq!(
        anomalies(&dec(LinkType::IEEE802_11, &wifi_data(0x01, None, false, &[])[..20])),
        ["truncated_link"]
    );
    // Radiotap with TSFT and Flags (FCS at the end: not payload), an extended presence word.
    let frame = cat(&[
        &wifi_data(0x02, None, false, &llc_snap(0x0800, &ipv4(A, B, 17, &udp(1, 2, b"abc")))),
        &[0xfc; 4],
    ]);
    let rt = radiotap(true, Some(0x10), true, &frame);
    let d = dec(LinkType::IEEE802_11_RADIOTAP, &rt);
    assert!(d.anomalies.is_empty(), "{:?}", anomalies(&d));
    let rl = rt.len() - frame.len();
    assert_eq!((rl, d.net.unwrap().offset), (25, 25 + 24 + 8));
    assert_eq!((d.ports(), d.payload_len), (Some((1, 2)), 3));
    // Without the FCS flag the same bytes are all frame (the IPv4 length still bounds the UDP).
    let d = dec(LinkType::IEEE802_11_RADIOTAP, &radiotap(false, None, false, &frame));
    assert_eq!((anomalies(&d), d.ports()), (vec![], Some((1, 2))));
    // Radiotap version 1, or a length beyond the frame.
    let mut v1 = rt.clone();
    v1[0] = 1;
    assert_eq!(anomalies(&dec(LinkType::IEEE802_11_RADIOTAP, &v1)), ["truncated_link"]);
    let mut long = rt.clone();
    long[2] = 0xff;
    long[3] = 0xff;
    assert_eq!(anomalies(&dec(LinkType::IEEE802_11_RADIOTAP, &long)), ["truncated_link"]);
}

#[test]
fn mpls_label_stacks_carry_ipv4_ipv6_and_pseudowires() {
    let syn = ipv4(A, B, 6, &tcp(3333, 22, tcp_flags::SYN, 1, 0, &[], b""));
    // One label, IPv4: decoded as if the stack were not there; the capture-side VLAN is kept.
    let d = dec(LinkType::ETHERNET, &eth_vlans(&[30], 0x8847, &mpls(&[16], &syn)));
    assert!(d.anomalies.is_empty(), "{:?}", anomalies(&d));
    assert_eq!((d.mpls_labels, d.ethertype, d.vlan(), d.tunnel), (1, Some(0x8847), 30, None));
    let n = d.net.unwrap();
    assert_eq!((n.src, n.dst, n.offset), (ip4(A), ip4(B), 18 + 4));
    assert_eq!(d.ports(), Some((3333, 22)));
    // Three labels (multicast ethertype), IPv6.
    let d = dec(
        LinkType::ETHERNET,
        &eth(0x8848, &mpls(&[100, 200, 3], &ipv6(v6(1), v6(2), 17, &udp(5, 6, b"hi")))),
    );
    assert!(d.anomalies.is_empty(), "{:?}", anomalies(&d));
    assert_eq!((d.mpls_labels, d.net.unwrap().offset, d.ports()), (3, 14 + 12, Some((5, 6))));
    assert_eq!((d.payload_offset, d.payload_len), (14 + 12 + 40 + 8, 2));
    // Ethernet pseudowire with a control word: the customer frame, its VLAN not recorded.
    let pw = cat(&[&[0, 0, 0, 0], &eth_vlans(&[999], 0x0800, &syn)]);
    let d = dec(LinkType::ETHERNET, &eth(0x8847, &mpls(&[17, 18], &pw)));
    assert!(d.anomalies.is_empty(), "{:?}", anomalies(&d));
    assert_eq!((d.mpls_labels, d.vlan_count, d.net.unwrap().offset), (2, 0, 14 + 8 + 4 + 18));
    assert_eq!(d.ports(), Some((3333, 22)));
    // Over PPP (protocol 0x0281), and inside GRE (protocol type 0x8847).
    let d = dec(LinkType::PPP, &cat(&[&[0xff, 0x03, 0x02, 0x81], &mpls(&[5], &syn)]));
    assert_eq!((d.mpls_labels, d.net.unwrap().offset, d.ports()), (1, 4 + 4, Some((3333, 22))));
    let d = dec(LinkType::RAW, &ipv4(OA, OB, 47, &gre(false, Some(7), None, 0x8847, &mpls(&[9], &syn))));
    assert_inner_syn(&d, TunnelKind::Gre, 7, 20 + 8 + 4);
    assert_eq!(d.mpls_labels, 1);
    // SLL carries the ethertype too.
    let d = dec(LinkType::LINUX_SLL, &sll(0x8847, &mpls(&[1], &syn)));
    assert_eq!((d.net.unwrap().offset, d.ports()), (16 + 4, Some((3333, 22))));
}

#[test]
fn mpls_stack_cut_short_or_carrying_the_unknown() {
    let syn = ipv4(A, B, 6, &tcp(3333, 22, tcp_flags::SYN, 1, 0, &[], b""));
    // No bottom-of-stack entry before the frame ends.
    let mut f = eth(0x8847, &mpls(&[1, 2], &[]));
    f[14 + 6] &= !1;
    let d = dec(LinkType::ETHERNET, &f);
    assert_eq!((anomalies(&d), d.net), (vec!["truncated_link"], None));
    // A label entry half captured.
    let d = dec(LinkType::ETHERNET, &eth(0x8847, &[0, 1, 0x01]));
    assert_eq!(anomalies(&d), ["truncated_link"]);
    // The stack captured, the packet after it not (snaplen): no anomaly, payload on the wire.
    let full = eth(0x8847, &mpls(&[1], &syn));
    let d = decode(LinkType::ETHERNET, &full[..18], full.len() as u32);
    assert!(d.anomalies.is_empty(), "{:?}", anomalies(&d));
    assert_eq!((d.mpls_labels, d.net, d.payload_offset, d.payload_len), (1, None, 18, 40));
    // First nibble 0x8: not IP, no control word: left undecoded, not malformed.
    let d = dec(LinkType::ETHERNET, &eth(0x8847, &mpls(&[1], &[0x80; 30])));
    assert_eq!((anomalies(&d), d.net), (vec!["unknown_ethertype"], None));
    assert!(!d.anomalies.any_malformed());
    // Nibble 0 followed by something that is not an Ethernet frame netrec decodes.
    let not_eth = cat(&[&[0; 4], &eth(0x1234, &syn)]);
    let d = dec(LinkType::ETHERNET, &eth(0x8847, &mpls(&[1], &not_eth)));
    assert_eq!((anomalies(&d), d.net), (vec!["unknown_ethertype"], None));
    // A control word without a whole Ethernet header behind it.
    let d = dec(LinkType::ETHERNET, &eth(0x8847, &mpls(&[1], &[0; 10])));
    assert_eq!((anomalies(&d), d.net), (vec!["unknown_ethertype"], None));
    // A stack of 300 labels is walked (bounded by the frame) and counted saturating.
    let labels: Vec<u32> = (0..300).collect();
    let d = dec(LinkType::ETHERNET, &eth(0x8847, &mpls(&labels, &syn)));
    assert_eq!((d.mpls_labels, d.ports()), (255, Some((3333, 22))));
}

#[test]
fn gtp_u_g_pdus_are_followed() {
    let syn = ipv4(A, B, 6, &tcp(3333, 22, tcp_flags::SYN, 1, 0, &[], b""));
    let g = gtpu(0xff, 0x1234_5678, None, &[], &syn);
    let d = dec(LinkType::RAW, &ipv4(OA, OB, 17, &udp(2152, 2152, &g)));
    assert_inner_syn(&d, TunnelKind::GtpU, 0x1234_5678, 20 + 8 + 8);
    // Sequence number, and a PDU session container extension (type 0x85, 4 bytes).
    let g = gtpu(0xff, 7, Some(42), &[(0x85, vec![0x00, 0x09])], &syn);
    let d = dec(LinkType::RAW, &ipv4(OA, OB, 17, &udp(2152, 2152, &g)));
    assert_inner_syn(&d, TunnelKind::GtpU, 7, 20 + 8 + 12 + 4);
    // Two chained extension headers, IPv6 inside.
    let ext = [(0x85, vec![1, 2]), (0x40, vec![3, 4, 5, 6, 7, 8])];
    let inner6 = ipv6(v6(1), v6(2), 17, &udp(1, 2, b"x"));
    let d = dec(LinkType::RAW, &ipv4(OA, OB, 17, &udp(40000, 2152, &gtpu(0xff, 9, None, &ext, &inner6))));
    assert!(d.anomalies.is_empty(), "{:?}", anomalies(&d));
    assert_eq!((d.tunnel.unwrap().kind, d.tunnel.unwrap().id), (TunnelKind::GtpU, 9));
    assert_eq!((d.net.unwrap().offset, d.ports()), (20 + 8 + 12 + 4 + 8, Some((1, 2))));
    assert_eq!(TunnelKind::GtpU.as_str(), "gtpu");
}

#[test]
fn gtp_u_signalling_and_malformed_headers_stay_udp() {
    let syn = ipv4(A, B, 6, &tcp(3333, 22, tcp_flags::SYN, 1, 0, &[], b""));
    let udp_to = |g: &[u8]| dec(LinkType::RAW, &ipv4(OA, OB, 17, &udp(2152, 2152, g)));
    // Echo request (type 1) and end marker (254): plain UDP, no anomaly.
    for msg in [1, 254] {
        let d = udp_to(&gtpu(msg, 0, Some(1), &[], &[]));
        assert_eq!((anomalies(&d), d.tunnel, d.ports()), (vec![], None, Some((2152, 2152))));
    }
    // Version 2 (GTP-C) or PT clear on the user-plane port: malformed.
    let mut v2 = gtpu(0xff, 1, None, &[], &syn);
    v2[0] = 0x48;
    assert_eq!((anomalies(&udp_to(&v2)), udp_to(&v2).tunnel), (vec!["bad_tunnel"], None));
    let mut pt0 = gtpu(0xff, 1, None, &[], &syn);
    pt0[0] &= !0x10;
    assert_eq!(anomalies(&udp_to(&pt0)), ["bad_tunnel"]);
    // GTP length beyond the UDP payload.
    let mut long = gtpu(0xff, 1, None, &[], &syn);
    long[3] = long[3].wrapping_add(1);
    assert_eq!(anomalies(&udp_to(&long)), ["bad_tunnel"]);
    // An extension header of length 0 (would never end), and one running past the packet.
    let mut zero = gtpu(0xff, 1, None, &[(0x85, vec![0, 1])], &syn);
    zero[12] = 0;
    assert_eq!(anomalies(&udp_to(&zero)), ["bad_tunnel"]);
    let mut past = gtpu(0xff, 1, None, &[(0x85, vec![0, 1])], &syn);
    past[12] = 200;
    assert_eq!((anomalies(&udp_to(&past)), udp_to(&past).tunnel), (vec!["bad_tunnel"], None));
    // An empty G-PDU: nothing to follow, not malformed.
    let d = udp_to(&gtpu(0xff, 1, None, &[], &[]));
    assert_eq!((anomalies(&d), d.tunnel), (vec![], None));
    // Source port 2152 alone is not GTP-U.
    let d = dec(LinkType::RAW, &ipv4(OA, OB, 17, &udp(2152, 9, &gtpu(0xff, 1, None, &[], &syn))));
    assert_eq!((d.tunnel, d.ports()), (None, Some((2152, 9))));
}

#[test]
fn l2tp_data_messages_carry_ppp() {
    let syn = ipv4(A, B, 6, &tcp(3333, 22, tcp_flags::SYN, 1, 0, &[], b""));
    let ppp = cat(&[&[0xff, 0x03, 0x00, 0x21], &syn]);
    // Plain data message: 6-byte header, PPP with address/control; id = tunnel << 16 | session.
    let d = dec(LinkType::RAW, &ipv4(OA, OB, 17, &udp(1701, 1701, &l2tp(false, false, None, 7, 9, &ppp))));
    assert_inner_syn(&d, TunnelKind::L2tp, 7 << 16 | 9, 20 + 8 + 6 + 4);
    // Length, sequence numbers and 3 bytes of offset padding; the responder's port is not 1701.
    let l = l2tp(true, true, Some(3), 1, 2, &cat(&[&[0x00, 0x21], &syn]));
    let d = dec(LinkType::RAW, &ipv4(OA, OB, 17, &udp(1701, 40000, &l)));
    assert_inner_syn(&d, TunnelKind::L2tp, 1 << 16 | 2, 20 + 8 + 2 + 2 + 4 + 4 + 2 + 3 + 2);
    assert_eq!(TunnelKind::L2tp.as_str(), "l2tp");
    // Control messages, L2TPv3 and PPP negotiation (LCP) stay UDP, without an anomaly.
    let mut control = l2tp(true, true, None, 1, 0, &[0; 20]);
    control[0] |= 0x80;
    let mut v3 = l2tp(false, false, None, 1, 2, &ppp);
    v3[1] = 0x03;
    let lcp = l2tp(false, false, None, 1, 2, &[0xff, 0x03, 0xc0, 0x21, 1, 1, 0, 4]);
    for m in [control, v3, lcp] {
        let d = dec(LinkType::RAW, &ipv4(OA, OB, 17, &udp(1701, 1701, &m)));
        assert_eq!((anomalies(&d), d.tunnel, d.ports()), (vec![], None, Some((1701, 1701))));
    }
    // A length field beyond the datagram, and offset padding past the end: malformed.
    let mut long = l2tp(true, false, None, 1, 2, &ppp);
    long[3] = 0xff;
    let d = dec(LinkType::RAW, &ipv4(OA, OB, 17, &udp(1701, 1701, &long)));
    assert_eq!((anomalies(&d), d.tunnel), (vec!["bad_tunnel"], None));
    let pad = l2tp(false, false, Some(500), 1, 2, &[]);
    let d = dec(LinkType::RAW, &ipv4(OA, OB, 17, &udp(1701, 1701, &pad[..pad.len() - 500])));
    assert_eq!(anomalies(&d), ["bad_tunnel"]);
}

#[test]
fn ip_in_ip_variants() {
    let inner4 = ipv4(A, B, 6, &tcp(3333, 22, tcp_flags::SYN, 1, 0, &[], b""));
    assert_inner_syn(&dec(LinkType::RAW, &ipv4(OA, OB, 4, &inner4)), TunnelKind::IpInIp, 0, 20);
    let inner6 = ipv6(v6(1), v6(2), 17, &udp(1, 2, b"x"));
    let d = dec(LinkType::RAW, &ipv4(OA, OB, 41, &inner6));
    assert_eq!(d.tunnel.unwrap().kind, TunnelKind::IpInIp);
    assert_eq!((d.net.unwrap().dst, d.net.unwrap().offset), (ip6(v6(2)), 20));
    let d = dec(LinkType::IPV6, &ipv6(v6(8), v6(9), 41, &inner6));
    let t = d.tunnel.unwrap();
    assert_eq!((t.outer_src, t.outer_dst, d.net.unwrap().src), (ip6(v6(8)), ip6(v6(9)), ip6(v6(1))));
    assert_eq!(udp_of(&d).src_port, 1);
    // Protocol 41 with an IPv4 packet inside: malformed.
    let d = dec(LinkType::RAW, &ipv4(OA, OB, 41, &inner4));
    assert_eq!((anomalies(&d), d.tunnel), (vec!["bad_tunnel"], None));
}

#[test]
fn tunnel_nesting_is_bounded() {
    let mut pkt = ipv4(A, B, 6, &tcp(3333, 22, tcp_flags::SYN, 1, 0, &[], b""));
    // Three levels are followed.
    for _ in 0..3 {
        pkt = ipv4(OA, OB, 4, &pkt);
    }
    let d = dec(LinkType::RAW, &pkt);
    assert_inner_syn(&d, TunnelKind::IpInIp, 0, 60);
    // A fourth stops at the third inner packet.
    let mut deep = ipv4(OA, OB, 47, &gre(false, Some(99), None, 0x0800, &pkt));
    deep = eth(0x0800, &deep);
    let d = dec(LinkType::ETHERNET, &deep);
    assert_eq!(anomalies(&d), ["tunnel_too_deep"]);
    let t = d.tunnel.unwrap();
    assert_eq!((t.kind, t.id), (TunnelKind::Gre, 99));
    let n = d.net.unwrap();
    assert_eq!((n.src, n.proto, n.offset), (ip4(OA), 4, 14 + 20 + 8 + 40));
}

#[test]
fn fragmented_tunnel_is_not_followed() {
    let mut f = ipv4(OA, OB, 17, &udp(1, 4789, &vxlan(5, &inner_eth())));
    f[6] = 0x20; // first fragment
    let d = dec(LinkType::RAW, &f);
    assert_eq!(d.tunnel, None);
    assert_eq!(d.ports(), Some((1, 4789)));
}

#[test]
fn pflog_headers_of_both_lengths_and_families() {
    let u = ipv4(A, B, 17, &udp(1000, 53, b"q"));
    // Classic 61-byte header (padded to 64), AF_INET.
    let d = dec(LinkType::PFLOG, &pflog(61, 2, &u));
    assert!(d.anomalies.is_empty(), "{:?}", anomalies(&d));
    assert_eq!((d.net.unwrap().offset, d.ports()), (64, Some((1000, 53))));
    // OpenBSD's 100-byte header; IPv6 under each BSD's AF_INET6.
    let t6 = ipv6(v6(1), v6(2), 6, &tcp(5, 443, tcp_flags::SYN, 1, 0, &[], b""));
    for af in [24, 28, 30] {
        let d = dec(LinkType::PFLOG, &pflog(100, af, &t6));
        assert!(d.anomalies.is_empty(), "af {af}: {:?}", anomalies(&d));
        assert_eq!((d.net.unwrap().offset, d.ports()), (100, Some((5, 443))), "af {af}");
    }
    // Unknown family: not IP, not malformed; a length below any pflog header, or past the
    // frame: truncated.
    assert_eq!(anomalies(&dec(LinkType::PFLOG, &pflog(61, 17, &u))), ["unknown_ethertype"]);
    assert_eq!(anomalies(&dec(LinkType::PFLOG, &pflog(40, 2, &u))), ["truncated_link"]);
    assert_eq!(anomalies(&dec(LinkType::PFLOG, &pflog(61, 2, &u)[..50])), ["truncated_link"]);
    assert_eq!(anomalies(&dec(LinkType::PFLOG, &[61])), ["truncated_link"]);
}

#[test]
fn ppi_and_pktap_name_the_link_type_that_follows() {
    let u = ipv4(A, B, 17, &udp(1, 2, b"abc"));
    let wifi = wifi_data(0x01, None, false, &llc_snap(0x0800, &u));
    // PPI + 802.11 with an FCS (flagged in 802.11-Common), fields 32-bit aligned.
    let f = ppi(105, Some(true), true, &cat(&[&wifi, &[0xfc; 4]]));
    let d = dec(LinkType::PPI, &f);
    assert!(d.anomalies.is_empty(), "{:?}", anomalies(&d));
    let hl = f.len() - wifi.len() - 4;
    assert_eq!((hl, d.net.unwrap().offset), (8 + 8 + 24, 8 + 8 + 24 + 24 + 8));
    assert_eq!((d.ports(), d.payload_len), (Some((1, 2)), 3));
    // The FCS flag is what takes the last 4 bytes out of the payload: the same frame with
    // trailing bytes and no flag has them (the IP length still bounds the UDP payload).
    let d = dec(LinkType::PPI, &ppi(105, Some(false), false, &cat(&[&wifi, &[0xfc; 4]])));
    assert_eq!((anomalies(&d), d.ports()), (vec![], Some((1, 2))));
    // PPI + Ethernet; PKTAP + Ethernet, + BSD null; PKTAP records that are not packets.
    let e = eth(0x0800, &u);
    for (lt, f) in [
        (LinkType::PPI, ppi(1, None, false, &e)),
        (LinkType::PKTAP, pktap(1, 1, &e)),
        (LinkType::PKTAP, pktap(1, 0, &cat(&[&2u32.to_le_bytes(), &u]))),
    ] {
        let d = dec(lt, &f);
        assert!(d.anomalies.is_empty(), "{lt:?}: {:?}", anomalies(&d));
        assert_eq!(d.ports(), Some((1, 2)), "{lt:?}");
    }
    let d = dec(LinkType::PKTAP, &pktap(2, 1, &e));
    assert_eq!((anomalies(&d), d.net), (vec![], None));
    // Nesting is refused, lengths past the frame are truncated, a PPI version other than 0
    // is not PPI, and a link type netrec does not decode is counted as such.
    assert_eq!(
        anomalies(&dec(LinkType::PPI, &ppi(192, None, false, &ppi(1, None, false, &e)))),
        ["unsupported_link_type"]
    );
    assert_eq!(anomalies(&dec(LinkType::PKTAP, &pktap(1, 258, &pktap(1, 1, &e)))), ["unsupported_link_type"]);
    assert_eq!(anomalies(&dec(LinkType::PKTAP, &pktap(1, 147, &e))), ["unsupported_link_type"]);
    assert_eq!(anomalies(&dec(LinkType::PKTAP, &pktap(1, 1, &e)[..100])), ["truncated_link"]);
    let mut long = ppi(1, None, false, &e);
    long[2] = 0xff;
    assert_eq!(anomalies(&dec(LinkType::PPI, &long)), ["truncated_link"]);
    let mut v1 = ppi(1, None, false, &e);
    v1[0] = 1;
    assert_eq!(anomalies(&dec(LinkType::PPI, &v1)), ["truncated_link"]);
}

#[test]
fn prism_and_avs_monitor_headers() {
    let u = ipv4(A, B, 17, &udp(7, 8, b"xy"));
    let wifi = wifi_data(0x02, Some(0), false, &llc_snap(0x0800, &u));
    for (name, lt, f, hl) in [
        ("prism le", LinkType::IEEE802_11_PRISM, prism(false, &wifi), 144),
        ("prism be", LinkType::IEEE802_11_PRISM, prism(true, &wifi), 144),
        ("avs", LinkType::IEEE802_11_AVS, avs(&wifi), 64),
        // Some drivers write AVS headers under the Prism link type.
        ("avs as prism", LinkType::IEEE802_11_PRISM, avs(&wifi), 64),
    ] {
        let d = dec(lt, &f);
        assert!(d.anomalies.is_empty(), "{name}: {:?}", anomalies(&d));
        assert_eq!((d.net.unwrap().offset, d.ports()), (hl + 26 + 8, Some((7, 8))), "{name}");
    }
    let mut bad = avs(&wifi);
    bad[0] = 0;
    assert_eq!(anomalies(&dec(LinkType::IEEE802_11_AVS, &bad)), ["truncated_link"]);
    assert_eq!(anomalies(&dec(LinkType::IEEE802_11_PRISM, &prism(false, &wifi)[..100])), ["truncated_link"]);
}

#[test]
fn teredo_carries_ipv6_in_udp_3544() {
    let inner = ipv6(v6(1), v6(2), 6, &tcp(5000, 80, tcp_flags::SYN, 1, 0, &[], b""));
    for (auth, origin) in [(false, false), (true, false), (false, true), (true, true)] {
        for (sport, dport) in [(40000, 3544), (3544, 40000)] {
            let d = dec(LinkType::RAW, &ipv4(A, B, 17, &udp(sport, dport, &teredo(auth, origin, &inner))));
            assert!(d.anomalies.is_empty(), "{auth} {origin}: {:?}", anomalies(&d));
            let t = d.tunnel.expect("teredo tunnel");
            assert_eq!((t.kind.as_str(), t.id, t.outer_src, t.outer_dst), ("teredo", 0, ip4(A), ip4(B)));
            let n = d.net.unwrap();
            assert_eq!((n.src, n.dst, d.ports()), (ip6(v6(1)), ip6(v6(2)), Some((5000, 80))));
        }
    }
    // Not IPv6, or an IPv6 header that does not fill the datagram: plain UDP, no anomaly.
    let mut short = inner.clone();
    short[5] += 1; // payload length one byte too long
    for payload in [b"qualification".to_vec(), short, inner[..30].to_vec()] {
        let d = dec(LinkType::RAW, &ipv4(A, B, 17, &udp(40000, 3544, &payload)));
        assert_eq!((anomalies(&d), d.tunnel, d.ports()), (vec![], None, Some((40000, 3544))));
    }
}

#[test]
fn pptp_enhanced_gre_carries_ppp() {
    let u = ipv4([192, 168, 0, 1], [192, 168, 0, 2], 17, &udp(1000, 2000, b"pptp"));
    for (seq, ack, ppp) in [
        (Some(1), Some(0), cat(&[&[0xff, 0x03, 0, 0x21], &u])),
        (Some(2), None, cat(&[&[0x21], &u])), // address/control and protocol field compressed
        (None, Some(5), cat(&[&[0xff, 0x03, 0, 0x21], &u])),
    ] {
        let d = dec(LinkType::RAW, &ipv4(A, B, 47, &pptp(0x1234, seq, ack, &ppp)));
        assert!(d.anomalies.is_empty(), "{seq:?} {ack:?}: {:?}", anomalies(&d));
        let t = d.tunnel.expect("pptp tunnel");
        assert_eq!((t.kind.as_str(), t.id), ("pptp", 0x1234));
        assert_eq!(d.ports(), Some((1000, 2000)));
        assert_eq!(d.net.unwrap().src, ip4([192, 168, 0, 1]));
    }
    // Acknowledgment only, MPPE-compressed PPP (0x00fd), LCP: stays GRE without an anomaly.
    for ppp in [vec![], vec![0xff, 0x03, 0x00, 0xfd, 1, 2, 3], vec![0xff, 0x03, 0xc0, 0x21, 1, 1, 0, 4]] {
        let d = dec(LinkType::RAW, &ipv4(A, B, 47, &pptp(9, None, Some(1), &ppp)));
        assert_eq!((anomalies(&d), d.tunnel), (vec![], None), "{ppp:?}");
        assert_eq!(d.net.unwrap().proto, 47);
    }
    // A checksum flag, a payload length past the packet, a header cut short: bad_tunnel.
    let mut csum = pptp(9, None, None, &cat(&[&[0x21], &u]));
    csum[0] |= 0x80;
    let mut long = pptp(9, None, None, &cat(&[&[0x21], &u]));
    long[5] += 1;
    let cut = pptp(9, Some(1), None, &[])[..6].to_vec();
    for g in [csum, long, cut] {
        assert_eq!(anomalies(&dec(LinkType::RAW, &ipv4(A, B, 47, &g))), ["bad_tunnel"], "{g:?}");
    }
}

#[test]
fn ipv4_ah_is_read_through_like_ipv6s() {
    let syn = tcp(3333, 22, tcp_flags::SYN, 1, 0, &[], b"");
    let d = dec(LinkType::RAW, &ipv4(A, B, 51, &ah(6, 0x100, &syn)));
    assert!(d.anomalies.is_empty(), "{:?}", anomalies(&d));
    let n = d.net.unwrap();
    assert_eq!((n.proto, n.header_len, d.ports()), (6, 20 + 24, Some((3333, 22))));
    assert_eq!(d.payload_offset, 20 + 24 + 20);
    // IPv6: AH is an extension header, the same result.
    let d = dec(LinkType::RAW, &ipv6(v6(1), v6(2), 51, &ah(6, 0x100, &syn)));
    assert!(d.anomalies.is_empty(), "{:?}", anomalies(&d));
    assert_eq!((d.net.unwrap().proto, d.net.unwrap().header_len, d.ports()), (6, 40 + 24, Some((3333, 22))));
    // A length past the packet, or a fragment: left as protocol 51, no anomaly.
    let mut long = ah(6, 1, &[]);
    long[1] = 200;
    let d = dec(LinkType::RAW, &ipv4(A, B, 51, &long));
    assert_eq!((anomalies(&d), d.net.unwrap().proto, d.ports()), (vec![], 51, None));
    let mut frag = ipv4(A, B, 51, &ah(6, 1, &syn));
    frag[6] = 0x20; // more fragments
    let d = dec(LinkType::RAW, &frag);
    assert_eq!((d.net.unwrap().proto, d.ports()), (51, None));
}

#[test]
fn pbb_carries_the_customer_frame() {
    let u = ipv4(A, B, 17, &udp(7, 8, b"c"));
    // B-VLAN 100 (recorded), I-TAG, customer VLAN 7 (the customer's: not recorded).
    let f = eth_vlans(&[100], 0x88e7, &pbb(0x1234, &cat(&[&[0x81, 0, 0, 7, 0x08, 0], &u])));
    let d = dec(LinkType::ETHERNET, &f);
    assert!(d.anomalies.is_empty(), "{:?}", anomalies(&d));
    assert_eq!((d.vlan(), d.vlan_count, d.ethertype), (100, 1, Some(0x0800)));
    assert_eq!((d.net.unwrap().offset, d.ports()), (14 + 4 + 16 + 4 + 2, Some((7, 8))));
    // Cut inside the I-TAG or the customer addresses.
    assert_eq!(anomalies(&dec(LinkType::ETHERNET, &f[..18 + 10])), ["truncated_link"]);
}

/// Pseudowires and 802.1ah frames nested thousands deep (a crafted 100 KB frame) stop at the
/// nesting limit with `tunnel_too_deep`: no recursion per 20-odd bytes, no stack exhaustion.
#[test]
fn nested_pseudowires_and_pbb_stop_at_the_nesting_limit() {
    let syn = ipv4(A, B, 6, &tcp(1, 2, tcp_flags::SYN, 1, 0, &[], b""));
    let mut pw = eth(0x0800, &syn);
    let mut bb = eth(0x0800, &syn);
    for _ in 0..5000 {
        pw = eth(0x8847, &mpls(&[16], &cat(&[&[0; 4], &pw])));
        bb = eth(0x88e7, &pbb(1, &bb[12..]));
    }
    for f in [pw, bb] {
        let d = decode(LinkType::ETHERNET, &f, f.len() as u32);
        assert!(anomalies(&d).contains(&"tunnel_too_deep"), "{:?}", anomalies(&d));
        assert!(d.net.is_none());
    }
    // Three levels are fine.
    let mut pw = eth(0x0800, &syn);
    for _ in 0..3 {
        pw = eth(0x8847, &mpls(&[16], &cat(&[&[0; 4], &pw])));
    }
    let d = dec(LinkType::ETHERNET, &pw);
    assert_eq!((anomalies(&d), d.ports()), (vec![], Some((1, 2))));
}

#[test]
fn vxlan_gpe_by_next_protocol() {
    let syn = ipv4(A, B, 6, &tcp(1111, 443, tcp_flags::SYN, 1, 0, &[], b""));
    let syn6 = ipv6(v6(1), v6(2), 6, &tcp(1111, 443, tcp_flags::SYN, 1, 0, &[], b""));
    for (next, inner) in [(1, syn.clone()), (2, syn6), (3, eth(0x0800, &syn)), (5, mpls(&[20], &syn))] {
        let d = dec(
            LinkType::RAW,
            &ipv4([192, 0, 2, 1], [192, 0, 2, 2], 17, &udp(40000, 4790, &vxlan_gpe(0x42, next, &inner))),
        );
        assert!(d.anomalies.is_empty(), "next {next}: {:?}", anomalies(&d));
        let t = d.tunnel.expect("tunnel");
        assert_eq!((t.kind.as_str(), t.id, d.ports()), ("vxlan", 0x42, Some((1111, 443))), "next {next}");
    }
    // An unknown next protocol is not followed (NSH, 4, is: `nsh_shim_in_ethernet_gre_and_vxlan_gpe`);
    // no I flag, a version, or a cut header: bad_tunnel.
    let d = dec(LinkType::RAW, &ipv4(A, B, 17, &udp(40000, 4790, &vxlan_gpe(1, 0x7f, &syn))));
    assert_eq!((anomalies(&d), d.tunnel, d.ports()), (vec![], None, Some((40000, 4790))));
    let mut no_i = vxlan_gpe(1, 1, &syn);
    no_i[0] = 0x04;
    let mut v1 = vxlan_gpe(1, 1, &syn);
    v1[0] |= 0x10;
    for g in [no_i, v1, vxlan_gpe(1, 1, &[])[..6].to_vec()] {
        assert_eq!(anomalies(&dec(LinkType::RAW, &ipv4(A, B, 17, &udp(40000, 4790, &g)))), ["bad_tunnel"]);
    }
}

/// NSH (RFC 8300) in Ethernet, GRE and VXLAN-GPE: the inner packet is decoded, whatever the MD
/// type; a header that lies is `bad_tunnel`, one cut by the snaplen `truncated_link`.
#[test]
fn nsh_shim_in_ethernet_gre_and_vxlan_gpe() {
    let inner4 = ipv4(A, B, 6, &tcp(1234, 80, 0x02, 1, 0, &[], b""));
    for (md, words) in [(1, 0), (2, 0), (2, 3)] {
        let d = dec(LinkType::ETHERNET, &eth(0x894f, &nsh(md, words, 1, &inner4)));
        assert!(!d.anomalies.any_malformed(), "md {md}: {:?}", d.anomalies);
        assert_eq!(tcp_of(&d).dst_port, 80, "md {md}");
        assert!(d.tunnel.is_none(), "a shim, not a tunnel");
    }
    let inner6 = ipv6(v6(1), v6(2), 17, &udp(5000, 53, b"q"));
    let d = dec(LinkType::ETHERNET, &eth(0x894f, &nsh(1, 0, 2, &inner6)));
    assert_eq!(udp_of(&d).dst_port, 53);
    // Ethernet and MPLS inside.
    let d = dec(LinkType::ETHERNET, &eth(0x894f, &nsh(2, 1, 3, &eth(0x0800, &inner4))));
    assert_eq!(tcp_of(&d).dst_port, 80);
    let mpls = [0x00, 0x01, 0x01, 0x40].iter().copied().chain(inner4.iter().copied()).collect::<Vec<u8>>();
    let d = dec(LinkType::ETHERNET, &eth(0x894f, &nsh(1, 0, 5, &mpls)));
    assert_eq!((tcp_of(&d).dst_port, d.mpls_labels), (80, 1));
    // In GRE (protocol type 0x894f) and VXLAN-GPE (next protocol 4): the tunnel is reported.
    let d = dec(
        LinkType::ETHERNET,
        &eth(0x0800, &ipv4(OA, OB, 47, &gre(false, Some(7), None, 0x894f, &nsh(1, 0, 1, &inner4)))),
    );
    assert_eq!((tcp_of(&d).dst_port, d.tunnel.map(|t| t.id)), (80, Some(7)));
    let g = vxlan_gpe(0x42, 4, &nsh(1, 0, 1, &inner4));
    let d = dec(LinkType::ETHERNET, &eth(0x0800, &ipv4(OA, OB, 17, &udp(40000, 4790, &g))));
    assert_eq!((tcp_of(&d).dst_port, d.tunnel.map(|t| t.id)), (80, Some(0x42)));
    // NSH in NSH and unknown protocols: not followed, not malformed.
    for next in [4, 0xfe] {
        let d = dec(LinkType::ETHERNET, &eth(0x894f, &nsh(1, 0, next, &inner4)));
        assert!(d.net.is_none() && d.anomalies.has(Anomaly::UnknownEthertype), "next {next}");
        assert!(!d.anomalies.any_malformed());
    }
    // Lies: version 1, length below 2 words, length past the frame.
    let good = eth(0x894f, &nsh(1, 0, 1, &inner4));
    for (i, mask, val) in [(14, 0xc0, 0x40), (15, 0x3f, 1), (15, 0x3f, 0x3f)] {
        let mut f = good.clone();
        f[i] = (f[i] & !mask) | val;
        let d = dec(LinkType::ETHERNET, &f);
        assert!(
            d.anomalies.has(Anomaly::BadTunnel) && d.net.is_none(),
            "byte {i} = {val:#x}: {:?}",
            d.anomalies
        );
    }
    // Cut by the snaplen inside the context headers: truncated, not malformed.
    let d = decode(LinkType::ETHERNET, &good[..14 + 12], good.len() as u32);
    assert!(
        d.anomalies.has(Anomaly::TruncatedLink) && !d.anomalies.has(Anomaly::BadTunnel),
        "{:?}",
        d.anomalies
    );
}

/// ARCNET (BSD and Linux headers, RFC 1051 and RFC 1201 ids) and Solaris IPNET: what the header
/// says comes next is decoded; short headers are `truncated_link`, other protocols not malformed.
#[test]
fn arcnet_and_ipnet_headers() {
    let syn = ipv4(A, B, 6, &tcp(1234, 80, 0x02, 1, 0, &[], b""));
    for (lt, hdr) in [
        (LinkType::ARCNET_LINUX, &[1, 2, 0, 0, 212, 0, 0, 0][..]),
        (LinkType::ARCNET_LINUX, &[1, 2, 0, 0, 240][..]),
        (LinkType::ARCNET_BSD, &[1, 2, 212, 0, 9, 0][..]),
        (LinkType::ARCNET_BSD, &[1, 2, 212, 0xff, 0xff, 0xff, 212, 0, 9, 0][..]),
        (LinkType::IPNET, &[1, 2, 0, 0, 0, 0, 0, 40, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0][..]),
    ] {
        let d = dec(lt, &cat(&[hdr, &syn]));
        assert!(d.anomalies.is_empty(), "{lt:?} {hdr:?}: {:?}", anomalies(&d));
        assert_eq!(tcp_of(&d).dst_port, 80, "{lt:?} {hdr:?}");
    }
    // ARP (RFC 1201 id 213): ARCNET hardware addresses are one byte.
    let arp = [0, 7, 8, 0, 1, 4, 0, 1, 0x01, 10, 0, 0, 1, 0x00, 10, 0, 0, 2];
    let d = dec(LinkType::ARCNET_LINUX, &cat(&[&[1, 0xff, 0, 0, 213, 0, 0, 0], &arp]));
    assert_eq!(d.arp.map(|a| (a.op, a.target_ip.octets())), Some((1, [10, 0, 0, 2])));
    // IPX (250) and an unknown IPNET family: not followed, not malformed.
    let d = dec(LinkType::ARCNET_BSD, &cat(&[&[1, 2, 250, 0, 0, 0], &syn]));
    assert_eq!((anomalies(&d), d.net.is_none()), (vec!["unknown_ethertype"], true));
    let d = dec(LinkType::IPNET, &cat(&[&[1, 9], &[0; 22], &syn]));
    assert_eq!((anomalies(&d), d.net.is_none()), (vec!["unknown_ethertype"], true));
    // Headers cut short.
    for (lt, f) in [
        (LinkType::ARCNET_LINUX, &[1, 2, 0, 0][..]),
        (LinkType::ARCNET_LINUX, &[1, 2, 0, 0, 212, 0, 0][..]),
        (LinkType::ARCNET_BSD, &[1, 2, 212, 0xff, 0, 0, 212, 0][..]),
        (LinkType::IPNET, &[1, 2, 0, 0][..]),
    ] {
        assert_eq!(anomalies(&dec(lt, f)), ["truncated_link"], "{lt:?} {f:?}");
    }
}

/// MPLS in UDP (RFC 7510, port 6635): the label stack and what follows, tunnel `mpls_udp` id 0;
/// an empty stack is `bad_tunnel` and the packet stays UDP.
#[test]
fn mpls_in_udp() {
    let syn = ipv4(A, B, 6, &tcp(1234, 80, 0x02, 1, 0, &[], b""));
    for labels in [&[16][..], &[16, 17, 18][..]] {
        let d = dec(LinkType::RAW, &ipv4(OA, OB, 17, &udp(49152, 6635, &mpls(labels, &syn))));
        assert!(d.anomalies.is_empty(), "{:?}", anomalies(&d));
        let t = d.tunnel.expect("tunnel");
        assert_eq!(
            (t.kind, t.id, t.outer_src, d.mpls_labels),
            (TunnelKind::MplsUdp, 0, ip4(OA), labels.len() as u8)
        );
        assert_eq!(tcp_of(&d).dst_port, 80);
    }
    // From 6635 (a reply's source port) it is plain UDP, as for tshark.
    let d = dec(LinkType::RAW, &ipv4(OA, OB, 17, &udp(6635, 49152, &mpls(&[16], &syn))));
    assert_eq!((d.tunnel, d.ports()), (None, Some((6635, 49152))));
    let d = dec(LinkType::RAW, &ipv4(OA, OB, 17, &udp(49152, 6635, &[0, 1])));
    assert_eq!((anomalies(&d), d.tunnel, d.ports()), (vec!["bad_tunnel"], None, Some((49152, 6635))));
}

/// Ethernet directly in IP: EtherIP (protocol 97, version 3) in IPv4 and IPv6's Ethernet next
/// header (143) after a segment routing header; EtherIP of another version is `bad_tunnel`.
#[test]
fn etherip_and_ipv6_ethernet_next_header() {
    let syn = eth(0x0800, &ipv4(A, B, 6, &tcp(1234, 80, 0x02, 1, 0, &[], b"")));
    let d = dec(LinkType::RAW, &ipv4(OA, OB, 97, &cat(&[&[0x30, 0], &syn])));
    assert!(d.anomalies.is_empty(), "{:?}", anomalies(&d));
    let t = d.tunnel.expect("tunnel");
    assert_eq!((t.kind, t.id, t.outer_src, tcp_of(&d).dst_port), (TunnelKind::EtherIp, 0, ip4(OA), 80));
    // SRH (routing type 4, one segment), then Ethernet.
    let srh = cat(&[&[143, 2, 4, 0, 0, 0, 0, 0], &v6(9)]);
    let d = dec(LinkType::IPV6, &ipv6(v6(1), v6(2), 43, &cat(&[&srh, &syn])));
    assert!(d.anomalies.is_empty(), "{:?}", anomalies(&d));
    assert_eq!(
        (d.tunnel.map(|t| (t.kind, t.outer_src)), tcp_of(&d).dst_port),
        (Some((TunnelKind::EtherIp, ip6(v6(1)))), 80)
    );
    for bad in [&[0x20, 0][..], &[0x30][..]] {
        let d = dec(LinkType::RAW, &ipv4(OA, OB, 97, &cat(&[bad, if bad.len() == 1 { &[] } else { &syn }])));
        assert_eq!(
            (anomalies(&d), d.tunnel, d.net.map(|n| n.proto)),
            (vec!["bad_tunnel"], None, Some(97)),
            "{bad:?}"
        );
    }
}
