//! Property and determinism tests over every default-pack detector (no flow table).

use crate::flow::{FlowDir, FlowUpdate};
use crate::{DetectorSet, PacketCtx, RuleSet, VecSink, alert_json};
use netrec_format::decode::{
    Anomalies, ArpInfo, Decoded, FragInfo, IcmpInfo, NetLayer, TcpInfo, Transport, UdpInfo,
};
use netrec_format::{Direction, FlowKey, LinkType, PacketRef, TcpState, Ts};
use proptest::prelude::*;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

fn all_rules() -> RuleSet {
    // Low thresholds so random input actually reaches the alert paths.
    let low = "[[rule]]\nid=\"a\"\ndetector=\"syn_flood\"\nmin_syns=3\nmin_sources=2\n\
[[rule]]\nid=\"b\"\ndetector=\"port_scan\"\nmin_ports=3\n\
[[rule]]\nid=\"c\"\ndetector=\"host_sweep\"\nmin_targets=3\n\
[[rule]]\nid=\"d\"\ndetector=\"dns_tunnel\"\nmin_unique_names=2\nmin_mean_name_len=1\n\
[[rule]]\nid=\"e\"\ndetector=\"amplification\"\nmin_packets=2\nmin_sources=2\n\
[[rule]]\nid=\"f\"\ndetector=\"blocklist\"\nips=[\"10.0.0.0/8\",\"::/0\"]\nports=[53]\n";
    RuleSet::default_pack().merge(RuleSet::parse("low.toml", low).unwrap())
}

fn arb_ip() -> impl Strategy<Value = IpAddr> {
    prop_oneof![
        (0u32..16).prop_map(|v| IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + v))),
        any::<u32>().prop_map(|v| IpAddr::V4(Ipv4Addr::from(v))),
        any::<u128>().prop_map(|v| IpAddr::V6(Ipv6Addr::from(v))),
    ]
}

fn arb_transport() -> impl Strategy<Value = Transport> {
    prop_oneof![
        Just(Transport::None),
        Just(Transport::Other),
        (any::<u16>(), 0u16..100, any::<u8>()).prop_map(|(s, d, f)| Transport::Tcp(TcpInfo {
            src_port: s,
            dst_port: d,
            flags: f,
            ..Default::default()
        })),
        (prop_oneof![Just(53u16), Just(4500), any::<u16>()], prop_oneof![Just(53u16), any::<u16>()])
            .prop_map(|(s, d)| Transport::Udp(UdpInfo { src_port: s, dst_port: d, length: 0 })),
        (any::<u8>(), any::<u8>()).prop_map(|(t, c)| Transport::Icmp(IcmpInfo {
            icmp_type: t,
            code: c,
            ident: 0,
            seq: 0
        })),
        any::<u8>().prop_map(|t| Transport::Icmpv6(IcmpInfo { icmp_type: t, code: 0, ident: 0, seq: 0 })),
    ]
}

prop_compose! {
    fn arb_decoded()(src in arb_ip(), dst in arb_ip(), ttl in 0u8..3, tr in arb_transport(),
                     frag in proptest::option::of((any::<u32>(), any::<u32>(), any::<bool>())),
                     hl in any::<u16>(), tl in any::<u32>(), anomalies in any::<u32>(),
                     has_net in any::<bool>(), arp in proptest::option::of((0u16..5, any::<u32>(), any::<u32>())),
                     poff in 0u32..80, plen in any::<u32>()) -> Decoded {
        Decoded {
            net: has_net.then_some(NetLayer { src, dst, proto: 6, ttl, header_len: hl, total_len: tl,
                frag: frag.map(|(id, offset, more)| FragInfo { id, offset, more }),
                dont_fragment: false, tos: 0, offset: 14 }),
            transport: tr,
            arp: arp.map(|(op, s, t)| ArpInfo { op, sender_ip: s.into(), target_ip: t.into() }),
            payload_offset: poff,
            payload_len: plen,
            anomalies: Anomalies(anomalies),
            ..Default::default()
        }
    }
}

prop_compose! {
    fn arb_flow()(dir in any::<bool>(), new in any::<bool>(), hs in any::<bool>(), rev in 0u64..3,
                  st in 0u8..8, a in arb_ip(), b in arb_ip()) -> FlowUpdate {
        // One family per flow, as in every packet.
        let b = match (a, b) {
            (IpAddr::V4(_), IpAddr::V6(v6)) => IpAddr::V4(Ipv4Addr::from(u128::from(v6) as u32)),
            (IpAddr::V6(_), IpAddr::V4(v4)) => IpAddr::V6(v4.to_ipv6_mapped()),
            _ => b,
        };
        let mut f = FlowUpdate::for_test(
            FlowKey { proto: 6, src_ip: a, src_port: 1, dst_ip: b, dst_port: 22, vlan: 0, tunnel_id: 0 });
        f.dir = if dir { FlowDir::Fwd } else { FlowDir::Rev };
        f.new_flow = new;
        f.tcp_state = TcpState::from_u8(st).unwrap_or_default();
        f.handshake_done_now = hs;
        f.rev_packets = rev;
        f
    }
}

type Event = (u64, Decoded, Option<FlowUpdate>, Vec<u8>);

fn run(events: &[Event]) -> Vec<u8> {
    let mut set = DetectorSet::new(&all_rules(), 64);
    let mut sink = VecSink::default();
    let mut ts = 0u64;
    for (dt, dec, flow, data) in events {
        ts += dt;
        let pkt = PacketRef {
            ts: Ts(ts),
            iface: 0,
            direction: Direction::Unknown,
            link_type: LinkType::ETHERNET,
            wire_len: data.len() as u32,
            data,
        };
        set.on_packet(&PacketCtx { ts: Ts(ts), pkt: &pkt, dec, flow: flow.as_ref() }, &mut sink);
        if ts.is_multiple_of(7) {
            set.advance_to(Ts(ts), &mut sink);
        }
    }
    set.finish(&mut sink);
    let mut out = Vec::new();
    for a in &sink.alerts {
        out.extend_from_slice(serde_json::to_string(&alert_json(a)).unwrap().as_bytes());
        out.push(b'\n');
    }
    out
}

fn arb_event() -> impl Strategy<Value = Event> {
    (
        prop_oneof![Just(0u64), 0u64..2_000_000_000, 0u64..100_000_000_000],
        arb_decoded(),
        proptest::option::of(arb_flow()),
        proptest::collection::vec(any::<u8>(), 0..120),
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]
    #[test]
    fn detectors_never_panic_and_are_deterministic(events in proptest::collection::vec(arb_event(), 1..60)) {
        let a = run(&events);
        let b = run(&events);
        prop_assert_eq!(a, b);
    }
}

#[test]
fn same_sequence_same_json_bytes() {
    let mut events: Vec<Event> = Vec::new();
    for i in 0..300u32 {
        let src = IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + (i % 40)));
        let dst = IpAddr::V4(Ipv4Addr::from(0xc000_0201 + (i % 3)));
        let dec = Decoded {
            net: Some(NetLayer {
                src,
                dst,
                proto: 6,
                ttl: 64,
                header_len: 20,
                total_len: 40,
                frag: None,
                dont_fragment: false,
                tos: 0,
                offset: 14,
            }),
            transport: Transport::Tcp(TcpInfo {
                src_port: 1000,
                dst_port: (i % 50) as u16,
                flags: 2,
                ..Default::default()
            }),
            ..Default::default()
        };
        events.push((1_000_000, dec, None, vec![]));
    }
    let a = run(&events);
    assert!(!a.is_empty());
    assert_eq!(a, run(&events));
    let text = String::from_utf8(a).unwrap();
    assert!(text.contains("\"class\":\"syn_flood\""), "{text}");
}

/// The textbook Misra-Gries summary (a Vec of (port, count)), the reference for `TopPorts`.
fn misra_gries_top(ports: &[u16]) -> Option<(u16, u64)> {
    let mut slots: Vec<(u16, u64)> = Vec::new();
    for &p in ports {
        if let Some(s) = slots.iter_mut().find(|s| s.0 == p) {
            s.1 += 1;
        } else if slots.len() < 16 {
            slots.push((p, 1));
        } else {
            slots.iter_mut().for_each(|s| s.1 -= 1);
            slots.retain(|s| s.1 > 0);
        }
    }
    slots.into_iter().max_by(|a, b| a.1.cmp(&b.1).then(b.0.cmp(&a.0)))
}

proptest! {
    /// `TopPorts` (inline arrays) reports what the textbook summary reports, across clears.
    #[test]
    fn top_ports_matches_misra_gries(
        runs in proptest::collection::vec(proptest::collection::vec(0u16..40, 0..400), 1..4)
    ) {
        let mut t = super::TopPorts::default();
        for ports in &runs {
            t.clear();
            ports.iter().for_each(|&p| t.add(p));
            prop_assert_eq!(t.top(), misra_gries_top(ports));
        }
    }
}
