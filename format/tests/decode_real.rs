//! Decoder on real third-party frames. Short frames are inlined as hex (extracted from
//! /work/shared/captures with a throwaway script); expected values come from the ground
//! truth next to each capture (tcpdump / Zeek / nDPI outputs, EXPECTED.md), cited per test.
//! The capture files themselves are read only by the whole-file scans at the bottom.

#[path = "decode_builder.rs"]
mod builder;

use builder::hex;
use netrec_format::decode::{Anomaly, Decoded, Transport, decode, tcp_flags};
use netrec_format::{LinkType, TunnelKind};
use std::collections::BTreeSet;
use std::net::IpAddr;

mod common;

use common::captures_dir;

fn ip(s: &str) -> IpAddr {
    s.parse().expect("address")
}

fn dec(lt: u32, h: &str) -> Decoded {
    let f = hex(h);
    decode(LinkType(lt), &f, f.len() as u32)
}

fn names(d: &Decoded) -> Vec<&'static str> {
    d.anomalies.iter().map(Anomaly::name).collect()
}

#[track_caller]
fn assert_flow(d: &Decoded, src: &str, sport: u16, dst: &str, dport: u16) {
    let n = d.net.expect("net layer");
    assert_eq!((n.src, n.dst), (ip(src), ip(dst)));
    assert_eq!(d.ports(), Some((sport, dport)));
}

/// linux-sll2.pcap, Zeek core/linuxsll2.zeek baseline: ICMP echo 192.0.2.1 -> 192.0.2.1
/// (itype 8, len 56, ttl 64), ICMPv6 echo (128, len 56), an ARP request and a RARP packet
/// (192.0.2.1 asking for 192.0.2.2).
#[test]
fn linux_sll2() {
    let d = dec(
        276,
        "080000000000000103040006000000000000000045000054af8c40004001071ac0000201c0000201080066b4\
         00080001e9bdf96200000000e24e0d0000000000101112131415161718191a1b1c1d1e1f20212223242526\
         2728292a2b2c2d2e2f3031323334353637",
    );
    assert!(d.anomalies.is_empty(), "{:?}", names(&d));
    let n = d.net.unwrap();
    assert_eq!((n.src, n.dst, n.ttl, n.offset), (ip("192.0.2.1"), ip("192.0.2.1"), 64, 20));
    match d.transport {
        Transport::Icmp(i) => assert_eq!((i.icmp_type, i.code), (8, 0)),
        t => panic!("{t:?}"),
    }
    assert_eq!(d.payload_len, 56);
    let d = dec(
        276,
        "86dd0000000000010304000600000000000000006005c2e400403a40fe800000000000008c3606fffe44acaf\
         fe800000000000008c3606fffe44acaf8000a8d700090001f8bdf96200000000ab59010000000000101112\
         131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f3031323334353637",
    );
    assert!(d.anomalies.is_empty(), "{:?}", names(&d));
    assert_eq!((d.net.unwrap().src, d.net.unwrap().ttl), (ip("fe80::8c36:6ff:fe44:acaf"), 64));
    match d.transport {
        Transport::Icmpv6(i) => assert_eq!(i.icmp_type, 128),
        t => panic!("{t:?}"),
    }
    assert_eq!(d.payload_len, 56);
    for (h, op) in [
        (
            "080600000000001a000104068e360644acaf000000010800060400018e360644acafc0000201000000000000c0000202",
            1,
        ),
        (
            "803500000000001a000104068e360644acaf000000010800060400038e360644acafc0000201000000000000c0000202",
            3,
        ),
    ] {
        let a = dec(276, h).arp.expect("arp");
        assert_eq!(
            (a.op, a.sender_ip.to_string(), a.target_ip.to_string()),
            (op, "192.0.2.1".into(), "192.0.2.2".into())
        );
    }
}

/// linktype-nflog.pcap, tcpdump nflog.out packet 1: family IPv4, "74.82.42.42.53 >
/// 10.0.0.20.42585: ... (45)" (45 bytes of DNS).
#[test]
fn nflog_frame() {
    let d = dec(
        239,
        "02000014080001000800012705000a00000000000800040000000002100008000006ffffb8a386b9c3d6000006\
         000f000001000006001100000e0000120010000811961c10c8b8a386b9c3d6080000001400030000000000522a\
         1f9e00000000000960fc4d00090045000049000040003711c5144a522a2a0a0000140035a65900356ddf437181\
         800001000100000000076578616d706c6503636f6d0000010001c00c0001000100002f9600045db8d877000000",
    );
    assert!(d.anomalies.is_empty(), "{:?}", names(&d));
    assert_flow(&d, "74.82.42.42", 53, "10.0.0.20", 42585);
    assert_eq!(d.payload_len, 45);
}

/// linktype-raw-ipv4.pcap (101) and linktype-ipv4.pcap (228), tcpdump: "192.168.1.100.12345 >
/// 9.9.9.9.53: 4660+ A? example.com. (29)".
#[test]
fn raw_ipv4_and_ipv4_link_types() {
    let h = "45000039000100004011a695c0a80164090909093039003500251976123401000001000000000000076578616d\
             706c6503636f6d0000010001";
    for lt in [101, 228] {
        let d = dec(lt, h);
        assert!(d.anomalies.is_empty(), "{:?}", names(&d));
        assert_flow(&d, "192.168.1.100", 12345, "9.9.9.9", 53);
        assert_eq!((d.payload_offset, d.payload_len), (28, 29));
    }
}

/// linktype-ppp.pcap, nDPI: one UDP packet 193.167.0.252:44083 -> 193.167.100.100:443 of 1230
/// bytes. Only the first 40 bytes are inlined; the wire length stays 1230, so the payload
/// (1230 - 2 PPP - 20 IP - 8 UDP) is still counted.
#[test]
fn ppp_snaplen_cut() {
    let f = hex("0021450204cc413d40003f110d33c1a700fcc1a76464ac3301bb04b80000cfff00001d0cb712293a9b14f2");
    let d = decode(LinkType(9), &f, 1230);
    assert!(d.anomalies.is_empty(), "{:?}", names(&d));
    assert_flow(&d, "193.167.0.252", 44083, "193.167.100.100", 443);
    assert_eq!((d.payload_offset, d.payload_len), (30, 1200));
}

/// truncated-ipv4.pcap: 20 of 46 bytes captured; Zeek expects weird truncated_IP.
#[test]
fn truncated_ipv4() {
    let f = hex("0010db88d2efc8bcc896d2a00800450000200001");
    let d = decode(LinkType::ETHERNET, &f, 46);
    assert_eq!(names(&d), ["truncated_ipv4"]);
    assert_eq!((d.ethertype, d.net), (Some(0x0800), None));
}

/// ipv4-invalid-header-length.pcap, tcpdump -v: "IP [header length 16 < 20] (invalid)".
#[test]
fn ipv4_invalid_header_length() {
    let f = hex("c0d68236032bf04da23d5da3080044000054f1a60000401145948cd309ce2d217f9c98b7003500406ecb");
    let d = decode(LinkType::ETHERNET, &f, 98);
    assert_eq!(names(&d), ["bad_ipv4_header_length"]);
    assert_eq!(d.net.unwrap().header_len, 16);
    assert_eq!(d.transport, Transport::None);
}

/// tcp-all-eight-flags-set.pcap, tcpdump: "10.0.0.2.6260 > 10.128.0.2.80: Flags [FSRP.UEW],
/// seq 576462951, ack 486026015, win 512, urg 0, length 0".
#[test]
fn tcp_all_eight_flags() {
    let d = dec(
        1,
        "42010af0000142010af000170800450000288e4a00004006d8020a0000020a80000218740050225c20671cf82b1f50ff0200f4c30000",
    );
    assert!(d.anomalies.is_empty(), "{:?}", names(&d));
    assert_flow(&d, "10.0.0.2", 6260, "10.128.0.2", 80);
    let Transport::Tcp(t) = d.transport else { panic!("{:?}", d.transport) };
    let all = tcp_flags::FIN
        | tcp_flags::SYN
        | tcp_flags::RST
        | tcp_flags::PSH
        | tcp_flags::ACK
        | tcp_flags::URG
        | tcp_flags::ECE
        | tcp_flags::CWR;
    assert_eq!((t.flags, t.seq, t.ack, t.window, d.payload_len), (all, 576462951, 486026015, 512, 0));
}

/// tunnel-6in4.pcap, EXPECTED.md: IPv6-in-IPv4, 1 UDP dead::beef:30000 -> cafe::babe:13000.
#[test]
fn tunnel_6in4() {
    let d = dec(
        1,
        "0010db88d2efc8bcc896d2a00800450000480001000040296a79010203040506070860000000000c1140dead0000\
         00000000000000000000beefcafe000000000000000000000000babe753032c8000c83d258585858",
    );
    assert!(d.anomalies.is_empty(), "{:?}", names(&d));
    let t = d.tunnel.unwrap();
    assert_eq!(
        (t.kind, t.id, t.outer_src, t.outer_dst),
        (TunnelKind::IpInIp, 0, ip("1.2.3.4"), ip("5.6.7.8"))
    );
    assert_flow(&d, "dead::beef", 30000, "cafe::babe", 13000);
    assert_eq!(d.payload_len, 4);
}

/// vlan-qinqinq.pcap: 3 stacked VLAN tags; HTTP 141.142.228.5:59856 -> 192.150.187.43:80.
/// The tag values (30, 20, 10) are read off the frame bytes (0x001e, 0x0014, 0x000a).
#[test]
fn vlan_qinqinq() {
    let d = dec(
        1,
        "0010db88d2efc8bcc896d2a08100001e810000148100000a080045000040df8e400040066dd38d8ee405c096bb2b\
         e9d00050fe21323a00000000b002ffff3bc00000020405b4010303040101080a164add200000000004020000",
    );
    assert!(d.anomalies.is_empty(), "{:?}", names(&d));
    assert_eq!((d.vlan_count, &d.vlans[..3]), (3, &[30, 20, 10][..]));
    assert_flow(&d, "141.142.228.5", 59856, "192.150.187.43", 80);
    let Transport::Tcp(t) = d.transport else { panic!() };
    assert_eq!((t.flags, t.mss), (tcp_flags::SYN, Some(1460)));
}

/// geneve-tunnel.pcap, tcpdump -vv packets 1 and 3: "20.0.0.1.12618 > 20.0.0.2.6081 ... Geneve,
/// Flags [C], vni 0xa, options [... len 8 ...]" carrying "30.0.0.1 > 30.0.0.2: ICMP echo
/// request, id 10578, seq 23, length 64"; and "vni 0xb" carrying "30.0.0.2.51225 >
/// 30.0.0.1.22: Flags [S], seq 397610159, win 14600, options [mss 1460,sackOK,TS ..., nop,
/// wscale 7], length 0".
#[test]
fn geneve_tunnel() {
    let d = dec(
        1,
        "001b213cac30001b213cab6408004500008edfad4000401132af1400000114000002314a17c1007a000002406558\
         00000a00000080010000000cfe71d883724fb69ed2495148080045000054bda24000400141041e0000011e000002\
         08002c5429520017f1a2ce540000000017780c0000000000101112131415161718191a1b1c1d1e1f2021222324\
         25262728292a2b2c2d2e2f3031323334353637",
    );
    assert!(d.anomalies.is_empty(), "{:?}", names(&d));
    let t = d.tunnel.unwrap();
    assert_eq!(
        (t.kind, t.id, t.outer_src, t.outer_dst),
        (TunnelKind::Geneve, 0xa, ip("20.0.0.1"), ip("20.0.0.2"))
    );
    assert_eq!((d.net.unwrap().src, d.net.unwrap().dst), (ip("30.0.0.1"), ip("30.0.0.2")));
    let Transport::Icmp(i) = d.transport else { panic!("{:?}", d.transport) };
    assert_eq!((i.icmp_type, i.ident, i.seq, d.payload_len), (8, 10578, 23, 56));

    let d = dec(
        1,
        "001b213cab64001b213cac3008004500006e8806400040118a761400000214000001a9b317c1005a0000000065\
         5800000b00b69ed2495148fe71d883724f08004500003c5a1140004006a4a81e0000021e000001c819001617b3\
         0caf00000000a0023908e4370000020405b40402080aab6d56be0000000001030307",
    );
    assert!(d.anomalies.is_empty(), "{:?}", names(&d));
    assert_eq!(d.tunnel.unwrap().id, 0xb);
    assert_flow(&d, "30.0.0.2", 51225, "30.0.0.1", 22);
    let Transport::Tcp(t) = d.transport else { panic!() };
    assert_eq!((t.flags, t.seq, t.window), (tcp_flags::SYN, 397610159, 14600));
    assert_eq!((t.mss, t.sack_permitted, t.wscale), (Some(1460), true, Some(7)));
}

/// vxlan-tunnel.pcap: EXPECTED.md "VXLAN VNI 1111 over UDP/4789"; nDPI flow 4 "UDP
/// 10.10.20.4:44437 <-> 8.8.8.8:53 [VLAN: 5][proto: VXLAN:...DNS]".
#[test]
fn vxlan_tunnel() {
    let d = dec(
        1,
        "000cbd063a74000cbd063a758100000508004500006c033f00004011c9e8c0a81604c0a81605edd712b500586a04\
         0800000000045700667a50aaff9a1eea692a6fcf08004500003a35b040004011d6e50a0a140408080808ad950035\
         002617e290c6010000010000000000000866616365626f6f6b03636f6d0000010001",
    );
    assert!(d.anomalies.is_empty(), "{:?}", names(&d));
    let t = d.tunnel.unwrap();
    assert_eq!((t.kind, t.id), (TunnelKind::Vxlan, 1111));
    assert_eq!((d.vlan_count, d.vlan()), (1, 5));
    assert_flow(&d, "10.10.20.4", 44437, "8.8.8.8", 53);
}

/// gre-various.pcap, tcpdump -v packets 11 and 12: "10.172.64.7 > 10.172.64.6: GREv0, Flags
/// [key present], key=0x28, length 44, gre-proto-0x8909" and a keep-alive (GRE protocol 0).
/// Neither payload type is followed, so the packet stays the outer GRE packet.
#[test]
fn gre_unfollowed_payloads() {
    let d = dec(
        1,
        "aabbcc000100aabbcc000200810004bd080045c0004000a40000ff2f24c60aac40070aac40062000890900000028\
         080001010001000045c0001c00a30000ff2f24eb0aac40060aac40072000000000000028",
    );
    assert!(d.anomalies.is_empty(), "{:?}", names(&d));
    assert_eq!(d.tunnel, None);
    let n = d.net.unwrap();
    assert_eq!((n.src, n.dst, n.proto, n.total_len), (ip("10.172.64.7"), ip("10.172.64.6"), 47, 64));
    assert_eq!((d.transport, d.payload_len), (Transport::Other, 44));
    let d = dec(
        1,
        "aabbcc000200aabbcc000100810004bd080045c0001c00a30000fe2f25eb0aac40060aac40072000000000000028",
    );
    assert!(d.anomalies.is_empty(), "{:?}", names(&d));
    assert_eq!((d.tunnel, d.net.unwrap().src, d.payload_len), (None, ip("10.172.64.6"), 8));
}

// ---------------------------------------------------------------- whole-file scans

/// Captured bytes and wire length of one frame.
type Frame = (Vec<u8>, u32);

/// Frames of a classic pcap file (either byte order, µs or ns), with its link type.
fn pcap_frames(path: &std::path::Path) -> Option<(u32, Vec<Frame>)> {
    let b = std::fs::read(path).expect("read capture");
    let le = match b.get(..4)? {
        [0xd4, 0xc3, 0xb2, 0xa1] | [0x4d, 0x3c, 0xb2, 0xa1] => true,
        [0xa1, 0xb2, 0xc3, 0xd4] | [0xa1, 0xb2, 0x3c, 0x4d] => false,
        _ => return None,
    };
    let u32_at = |o: usize| {
        let w: [u8; 4] = b[o..o + 4].try_into().unwrap();
        if le { u32::from_le_bytes(w) } else { u32::from_be_bytes(w) }
    };
    let lt = u32_at(20);
    let mut out = Vec::new();
    let mut off = 24;
    while off + 16 <= b.len() {
        let (cap, wire) = (u32_at(off + 8) as usize, u32_at(off + 12));
        off += 16;
        let Some(data) = b.get(off..off + cap) else { break };
        out.push((data.to_vec(), wire));
        off += cap;
    }
    Some((lt, out))
}

fn decode_all(name: &str) -> Vec<Decoded> {
    let (lt, frames) = pcap_frames(&captures_dir().join(name)).expect("classic pcap");
    frames.iter().map(|(f, w)| decode(LinkType(lt), f, *w)).collect()
}

/// Every classic-pcap capture decodes without panicking, and no frame of the clean
/// captures is reported malformed except where the ground truth says so.
#[test]
fn every_shared_capture_decodes() {
    let dir = captures_dir();
    let manifest = std::fs::read_to_string(dir.join("MANIFEST.tsv")).expect("manifest");
    let mut files = 0;
    for name in manifest.lines().skip(1).filter_map(|l| l.split('\t').next()) {
        let Some((lt, frames)) = pcap_frames(&dir.join(name)) else { continue };
        files += 1;
        for (f, w) in &frames {
            let d = decode(LinkType(lt), f, *w);
            // Every decoded offset stays inside the wire length.
            assert!(
                d.payload_offset as usize + d.payload_len as usize <= (*w as usize).max(f.len()),
                "{name}"
            );
        }
    }
    assert!(files >= 25, "only {files} classic pcaps found");
}

/// Direction-free flow key.
fn canon(a: IpAddr, ap: u16, b: IpAddr, bp: u16) -> (IpAddr, u16, IpAddr, u16) {
    if (a, ap) <= (b, bp) { (a, ap, b, bp) } else { (b, bp, a, ap) }
}

/// vxlan-tunnel.pcap: every packet is VXLAN VNI 1111 on outer VLAN 5, and nDPI sees exactly
/// 4 inner flows (2 TCP to 157.240.224.35:443, 2 UDP to 8.8.8.8:53).
#[test]
fn vxlan_capture_inner_flows() {
    let all = decode_all("vxlan-tunnel.pcap");
    let mut flows = BTreeSet::new();
    for d in &all {
        assert!(!d.anomalies.any_malformed(), "{:?}", names(d));
        let t = d.tunnel.expect("tunnel");
        assert_eq!((t.kind, t.id, d.vlan()), (TunnelKind::Vxlan, 1111, 5));
        let n = d.net.unwrap();
        let (a, b) = d.ports().unwrap();
        flows.insert((n.proto, canon(n.src, a, n.dst, b)));
    }
    let expected: BTreeSet<_> = [
        (6, "10.10.20.4", 45228, "157.240.224.35", 443),
        (6, "10.10.20.4", 45226, "157.240.224.35", 443),
        (17, "10.10.20.4", 32860, "8.8.8.8", 53),
        (17, "10.10.20.4", 44437, "8.8.8.8", 53),
    ]
    .into_iter()
    .map(|(p, a, ap, b, bp)| (p, canon(ip(a), ap, ip(b), bp)))
    .collect();
    assert_eq!(flows, expected);
    // nDPI: 35+56+15+13+2+2+2+2 = 127 packets.
    assert_eq!(all.len(), 127);
}

/// tcp-flags-all-combinations-one-way.pcap, EXPECTED.md: 63 packets to 10.0.0.80:80, each with
/// its own flag byte 0x00..0x3e.
#[test]
fn all_flag_combinations() {
    let all = decode_all("tcp-flags-all-combinations-one-way.pcap");
    let flags: BTreeSet<u8> = all
        .iter()
        .map(|d| match d.transport {
            Transport::Tcp(t) => {
                assert_eq!(d.net.unwrap().dst, ip("10.0.0.80"));
                t.flags
            }
            t => panic!("{t:?}"),
        })
        .collect();
    assert_eq!(flags, (0x00..=0x3e).collect());
}

/// ipv6-fragmented-dns.pcap (Zeek: DNS seen after reassembly): the fragments carry the
/// IPv6 fragment header, the first one exposes the UDP port 53 header.
#[test]
fn ipv6_fragmented_dns_has_fragment_headers() {
    let all = decode_all("ipv6-fragmented-dns.pcap");
    let frags: Vec<_> = all.iter().filter_map(|d| d.net.and_then(|n| n.frag)).collect();
    assert!(!frags.is_empty());
    assert!(all.iter().any(|d| d.net.is_some_and(|n| n.frag.is_some_and(|f| f.is_first()))
        && d.ports().is_some_and(|(a, b)| a == 53 || b == 53)));
    assert!(frags.iter().any(|f| !f.is_first()));
}

/// ipv6-frag-flood-denial6.pcap, suricata-verify test.yaml: 39812 alerts of
/// `decode-event:ipv6.frag_invalid_length` (one per offending packet).
#[test]
fn ipv6_frag_flood_bad_fragment_count() {
    let all = decode_all("ipv6-frag-flood-denial6.pcap");
    assert_eq!(all.len(), 39838);
    assert_eq!(all.iter().filter(|d| d.anomalies.has(Anomaly::BadFragment)).count(), 39812);
}
