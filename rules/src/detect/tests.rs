//! Threshold-edge, suppression and robustness tests for every detector.

use super::testutil::*;
use netrec_format::decode::{Anomaly, FragInfo, tcp_flags as F};

const SYN: u8 = F::SYN;

fn rule(det: &str, extra: &str) -> String {
    format!("[[rule]]\nid = \"r\"\ndetector = \"{det}\"\n{extra}\n")
}

/// Feed `n` events from `gen(i)` 1 ms apart, return the alert count.
fn run(h: &mut Harness, n: u64, mut make: impl FnMut(u64) -> netrec_format::decode::Decoded) -> usize {
    for i in 0..n {
        h.feed(ms(i), &make(i));
    }
    h.sink.alerts.len()
}

fn src_n(i: u64) -> String {
    format!("10.{}.{}.{}", (i >> 16) & 255, (i >> 8) & 255, i & 255)
}

#[test]
fn syn_flood_edge_and_single_source_scan() {
    let r = rule("syn_flood", "min_syns = 100\nmin_sources = 20\nmin_same_port = 90");
    // 99 SYNs from 99 sources: below.
    let mut h = Harness::new(&r);
    assert_eq!(run(&mut h, 99, |i| tcp(&src_n(i), "192.0.2.1", 1000, 80, SYN)), 0);
    // The 100th crosses: exactly one alert, with the stats.
    h.feed(ms(100), &tcp("10.9.9.9", "192.0.2.1", 1000, 80, SYN));
    assert_eq!(h.sink.alerts.len(), 1);
    let a = &h.sink.alerts[0];
    assert_eq!(a.class, "syn_flood");
    assert_eq!(a.count, 100);
    assert_eq!(a.dst, vec![ip("192.0.2.1")]);
    assert!(a.stats.contains(&("syns".into(), 100.0)), "{:?}", a.stats);
    assert!(a.message.contains("100 SYNs"), "{}", a.message);
    // Single source sweeping 1000 ports (masscan-like): never a flood.
    let mut h = Harness::new(&r);
    assert_eq!(run(&mut h, 1000, |i| tcp("172.31.15.102", "192.0.2.1", 5555, i as u16, SYN)), 0);
    // Single source hammering one port: a flood via min_same_port.
    let mut h = Harness::new(&r);
    assert_eq!(run(&mut h, 100, |_| tcp("172.31.15.102", "192.0.2.1", 5555, 80, SYN)), 1);
}

#[test]
fn suppression_updates_then_new_incident_after_gap() {
    let r = rule("syn_flood", "min_syns = 10\nmin_sources = 2\nwindow = \"10s\"\nsuppress = \"5s\"");
    let mut h = Harness::new(&r);
    run(&mut h, 50, |i| tcp(&src_n(i), "192.0.2.1", 1, 80, SYN));
    assert_eq!(h.sink.alerts.len(), 1, "continued attack does not repeat");
    // Quiet for 4.9 s: still open.
    h.expire(ms(49 + 4_900));
    assert_eq!(h.sink.updates, 0);
    // Quiet for 5 s: closed with final counts.
    h.expire(ms(49 + 5_000));
    assert_eq!(h.sink.updates, 1);
    let a = &h.sink.alerts[0];
    assert_eq!((a.id, a.count, a.src_count), (1, 50, 50));
    assert_eq!(a.last_ts, ms(49));
    assert_eq!(a.first_ts, ms(0));
    // A new burst later is a new incident with a new id.
    for i in 0..10 {
        h.feed(ms(20_000 + i), &tcp(&src_n(i), "192.0.2.1", 1, 80, SYN));
    }
    assert_eq!(h.sink.alerts.len(), 2);
    assert_eq!(h.sink.alerts[1].id, 2);
    h.finish();
    assert_eq!(h.sink.updates, 2);
    assert_eq!(h.sink.alerts[1].count, 10);
}

#[test]
fn udp_and_icmp_flood_edges() {
    let r = rule("udp_flood", "min_packets = 50\nmin_sources = 10\nmin_unsolicited_ratio = 0.9");
    let mut h = Harness::new(&r);
    assert_eq!(run(&mut h, 49, |i| udp(&src_n(i), "192.0.2.1", 4000, 9999)), 0);
    h.feed(ms(49), &udp("10.1.1.1", "192.0.2.1", 4000, 9999));
    assert_eq!(h.sink.alerts.len(), 1);
    // Multicast destinations are never flood targets.
    let mut h = Harness::new(&r);
    assert_eq!(run(&mut h, 100, |i| udp(&src_n(i), "224.0.0.251", 5353, 5353)), 0);

    let r = rule("icmp_flood", "min_packets = 20");
    let mut h = Harness::new(&r);
    assert_eq!(run(&mut h, 19, |_| icmp_echo("10.0.0.1", "192.0.2.1")), 0);
    h.feed(ms(19), &icmp_echo("10.0.0.1", "192.0.2.1"));
    assert_eq!(h.sink.alerts.len(), 1);
}

#[test]
fn volumetric_needs_sources_or_unestablished() {
    let r = rule("volumetric", "min_packets = 100\nmin_sources = 5\nmin_unsolicited_ratio = 0.5");
    let mut h = Harness::new(&r);
    assert_eq!(run(&mut h, 99, |i| udp(&src_n(i), "192.0.2.1", 1, 2)), 0);
    h.feed(ms(99), &udp("10.7.7.7", "192.0.2.1", 1, 2));
    assert_eq!(h.sink.alerts.len(), 1);
}

#[test]
fn amplification_edge_and_ports() {
    let r = rule("amplification", "min_packets = 30\nmin_sources = 30");
    let mut h = Harness::new(&r);
    assert_eq!(run(&mut h, 29, |i| udp(&src_n(i), "192.0.2.1", 4500, 500)), 0);
    h.feed(ms(29), &udp("10.200.0.1", "192.0.2.1", 4500, 500));
    assert_eq!(h.sink.alerts.len(), 1);
    assert!(h.sink.alerts[0].message.contains("source port 4500"), "{}", h.sink.alerts[0].message);
    // Non-reflector source port: nothing.
    let mut h = Harness::new(&r);
    assert_eq!(run(&mut h, 100, |i| udp(&src_n(i), "192.0.2.1", 40000, 500)), 0);
}

#[test]
fn port_scan_edge_types_and_near_negatives() {
    let r = rule("port_scan", "min_ports = 25");
    let mut h = Harness::new(&r);
    assert_eq!(run(&mut h, 24, |i| tcp("10.0.0.1", "10.0.0.2", 40000, 1 + i as u16, SYN)), 0);
    h.feed(ms(24), &tcp("10.0.0.1", "10.0.0.2", 40000, 1000, SYN));
    assert_eq!(h.sink.alerts.len(), 1);
    let a = &h.sink.alerts[0];
    assert!(
        a.message.starts_with("SYN port scan from 10.0.0.1 to 10.0.0.2: 25 distinct ports"),
        "{}",
        a.message
    );
    assert!(a.stats.contains(&("syn_probes".into(), 25.0)));
    // NULL, XMAS, FIN and UDP scans are named.
    for (flags, name) in [(0u8, "NULL"), (F::FIN | F::PSH | F::URG, "XMAS"), (F::FIN, "FIN")] {
        let mut h = Harness::new(&r);
        run(&mut h, 25, |i| tcp("10.0.0.1", "10.0.0.2", 40000, 1 + i as u16, flags));
        assert_eq!(h.sink.alerts.len(), 1, "{name}");
        assert!(h.sink.alerts[0].message.starts_with(name), "{}", h.sink.alerts[0].message);
    }
    let mut h = Harness::new(&r);
    run(&mut h, 25, |i| udp("10.0.0.1", "10.0.0.2", 40000, i as u16));
    assert!(h.sink.alerts[0].message.starts_with("UDP port scan"));
    // nmap -sV of one port, browsing many hosts on 80/443, traceroute: nothing.
    let mut h = Harness::new(&r);
    run(&mut h, 200, |i| tcp("10.0.0.1", "10.0.0.2", 40000 + i as u16, 80 + (i % 2) as u16 * 363, SYN));
    run(&mut h, 200, |i| tcp("10.0.0.1", &src_n(i), 40000 + i as u16, 443, SYN));
    run(&mut h, 90, |i| udp("10.0.0.1", "10.0.0.3", 40000, 33434 + i as u16));
    assert_eq!(h.sink.alerts.len(), 0);
}

#[test]
fn host_sweep_edge_arp_and_icmp() {
    let r = rule("host_sweep", "min_targets = 30");
    let mut h = Harness::new(&r);
    assert_eq!(run(&mut h, 29, |i| icmp_echo("10.0.0.128", &format!("10.0.0.{i}"))), 0);
    h.feed(ms(29), &icmp_echo("10.0.0.128", "10.0.0.200"));
    assert_eq!(h.sink.alerts.len(), 1);
    assert!(h.sink.alerts[0].message.starts_with("ICMP_ECHO host sweep from 10.0.0.128: 30"));
    // ARP sweep; repeated requests for the same address count once.
    let mut h = Harness::new(&r);
    assert_eq!(run(&mut h, 58, |i| arp_who_has("192.168.1.71", &format!("192.168.1.{}", i / 2))), 0);
    h.feed(ms(60), &arp_who_has("192.168.1.71", "192.168.1.100"));
    assert_eq!(h.sink.alerts.len(), 1);
    // A router whose ARP requests are answered is not sweeping.
    let mut h = Harness::new(&r);
    for i in 0..100u64 {
        let t = format!("192.168.1.{i}");
        h.feed(ms(2 * i), &arp_who_has("192.168.1.1", &t));
        let mut reply = arp_who_has(&t, "192.168.1.1");
        if let Some(a) = reply.arp.as_mut() {
            a.op = 2;
        }
        h.feed(ms(2 * i + 1), &reply);
    }
    assert_eq!(h.sink.alerts.len(), 0);
    // Gratuitous ARP is ignored.
    let mut h = Harness::new(&r);
    assert_eq!(run(&mut h, 100, |_| arp_who_has("192.168.1.5", "192.168.1.5")), 0);
}

#[test]
fn tcp_flag_anomaly_kinds() {
    let r = rule("tcp_flag_anomaly", "");
    for (flags, kind) in [
        (0x3fu8, "all_flags"),
        (0xffu8, "all_flags"),
        (0, "null"),
        (F::SYN | F::FIN, "syn_fin"),
        (F::SYN | F::RST, "syn_rst"),
        (F::FIN | F::PSH | F::URG, "xmas"),
        (F::FIN, "fin_without_ack"),
    ] {
        let mut h = Harness::new(&r);
        h.feed(ms(0), &tcp("10.0.0.10", "10.0.0.80", 1, 80, flags));
        assert_eq!(h.sink.alerts.len(), 1, "{kind}");
        assert!(h.sink.alerts[0].stats.contains(&(kind.into(), 1.0)), "{kind}: {:?}", h.sink.alerts[0].stats);
    }
    let mut h = Harness::new(&r);
    for flags in [F::SYN, F::SYN | F::ACK, F::ACK, F::FIN | F::ACK, F::RST, F::RST | F::ACK, F::PSH | F::ACK]
    {
        h.feed(ms(0), &tcp("10.0.0.10", "10.0.0.80", 1, 80, flags));
    }
    assert_eq!(h.sink.alerts.len(), 0);
    let r2 = rule("tcp_flag_anomaly", "min_packets = 2");
    let mut h = Harness::new(&r2);
    h.feed(ms(0), &tcp("10.0.0.10", "10.0.0.80", 1, 80, 0));
    assert_eq!(h.sink.alerts.len(), 0);
    h.feed(ms(1), &tcp("10.0.0.10", "10.0.0.80", 2, 80, 0));
    assert_eq!(h.sink.alerts.len(), 1);
}

#[test]
fn land_only_tcp_udp_same_port() {
    let r = rule("land", "");
    let mut h = Harness::new(&r);
    h.feed(ms(0), &icmp_echo("192.0.2.1", "192.0.2.1"));
    h.feed(ms(1), &tcp("192.168.20.1", "192.168.20.1", 9090, 9091, 0));
    assert_eq!(h.sink.alerts.len(), 0);
    h.feed(ms(2), &tcp("192.168.20.1", "192.168.20.1", 9090, 9090, 0));
    assert_eq!(h.sink.alerts.len(), 1);
    assert!(h.sink.alerts[0].message.starts_with("LAND attack on 192.168.20.1"));
}

#[test]
fn ip_header_anomaly_ttl_and_flags() {
    let r = rule("ip_header_anomaly", "");
    let mut h = Harness::new(&r);
    let mut d = udp("10.0.0.1", "10.0.0.2", 1, 33434);
    d.net.as_mut().unwrap().ttl = 1;
    d.anomalies.set(Anomaly::LowTtl);
    d.anomalies.set(Anomaly::TruncatedIpv4);
    h.feed(ms(0), &d);
    assert_eq!(h.sink.alerts.len(), 0, "TTL 1 and snaplen truncation are normal");
    d.net.as_mut().unwrap().ttl = 0;
    h.feed(ms(1), &d);
    assert_eq!(h.sink.alerts.len(), 1);
    let mut e = udp("10.0.0.9", "10.0.0.2", 1, 2);
    e.anomalies.set(Anomaly::BadIpv4HeaderLength);
    h.feed(ms(2), &e);
    assert_eq!(h.sink.alerts.len(), 2);
    assert!(h.sink.alerts[1].stats.contains(&("bad_header_length".into(), 1.0)));
}

#[test]
fn fragment_anomalies_and_flood() {
    let r = rule("fragment_anomaly", "min_fragments = 100");
    let frag = |off: u32, len: u32| {
        let mut d = udp("10.0.0.1", "10.0.0.2", 1, 2);
        let n = d.net.as_mut().unwrap();
        n.frag = Some(FragInfo { id: 7, offset: off, more: true });
        n.total_len = 20 + len;
        d
    };
    let mut h = Harness::new(&r);
    h.feed(ms(0), &frag(0, 16));
    h.feed(ms(1), &frag(16, 16));
    h.feed(ms(2), &frag(16, 16));
    assert_eq!(h.sink.alerts.len(), 0, "adjacent and duplicate fragments are fine");
    h.feed(ms(3), &frag(8, 16));
    assert_eq!(h.sink.alerts.len(), 1);
    assert!(h.sink.alerts[0].stats.contains(&("overlap".into(), 1.0)), "{:?}", h.sink.alerts[0].stats);
    let mut h = Harness::new(&r);
    let mut t = frag(0, 8);
    t.anomalies.set(Anomaly::TinyFragment);
    h.feed(ms(0), &t);
    assert!(h.sink.alerts[0].message.contains("tiny"));
    // Flood: 99 clean fragments below, the 100th crosses.
    let mut h = Harness::new(&r);
    for i in 0..99u32 {
        let mut d = frag(0, 16);
        d.net.as_mut().unwrap().frag = Some(FragInfo { id: i, offset: 0, more: true });
        h.feed(ms(i as u64), &d);
    }
    assert_eq!(h.sink.alerts.len(), 0);
    h.feed(ms(100), &{
        let mut d = frag(0, 16);
        d.net.as_mut().unwrap().frag = Some(FragInfo { id: 1000, offset: 0, more: true });
        d
    });
    assert_eq!(h.sink.alerts.len(), 1);
    assert!(h.sink.alerts[0].message.starts_with("fragment flood"));
}

#[test]
fn brute_force_edge() {
    let r = rule("brute_force", "min_connections = 20");
    let mut h = Harness::new(&r);
    assert_eq!(run(&mut h, 19, |i| tcp("192.168.56.1", "192.168.56.101", 40000 + i as u16, 21, SYN)), 0);
    h.feed(ms(3000), &tcp("192.168.56.1", "192.168.56.101", 50000, 21, SYN));
    assert_eq!(h.sink.alerts.len(), 1);
    assert_eq!(h.sink.alerts[0].dst_ports, vec![21]);
    // Not a login port.
    let mut h = Harness::new(&r);
    assert_eq!(run(&mut h, 100, |i| tcp("192.168.56.1", "192.168.56.101", 40000 + i as u16, 80, SYN)), 0);
}

fn dns_query(name: &str, qtype: u16) -> Vec<u8> {
    let mut m = vec![0u8; 42];
    m.extend_from_slice(&[0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
    for l in name.split('.') {
        m.push(l.len() as u8);
        m.extend_from_slice(l.as_bytes());
    }
    m.push(0);
    m.extend_from_slice(&qtype.to_be_bytes());
    m.extend_from_slice(&[0, 1]);
    m
}

#[test]
fn dns_tunnel_edge_and_browsing() {
    let r = rule("dns_tunnel", "min_unique_names = 50");
    let send = |h: &mut Harness, i: u64, name: &str| {
        let data = dns_query(name, 16);
        let mut d = udp("192.168.220.56", "192.168.203.167", 56373, 53);
        d.payload_len = (data.len() - 42) as u32;
        h.feed_with(ms(i), &d, None, &data);
    };
    let mut h = Harness::new(&r);
    for i in 0..49u64 {
        let label = format!("{:0>60x}", i.wrapping_mul(0x9e3779b97f4a7c15));
        send(&mut h, i, &format!("{label}.{label}.skullseclabs.org"));
    }
    assert_eq!(h.sink.alerts.len(), 0);
    send(&mut h, 50, "deadbeef00112233445566778899aabbccddeeff0011223344.skullseclabs.org");
    assert_eq!(h.sink.alerts.len(), 1);
    let a = &h.sink.alerts[0];
    assert!(a.message.contains("via skullseclabs.org: 50 distinct names"), "{}", a.message);
    assert!(a.stats.contains(&("txt".into(), 50.0)));
    // Browsing: many repeated short names.
    let mut h = Harness::new(&r);
    for i in 0..300u64 {
        send(&mut h, i, &format!("www{}.wikipedia.org", i % 60));
    }
    assert_eq!(h.sink.alerts.len(), 0);
}

#[test]
fn blocklist_ips_and_ports() {
    let r = rule("blocklist", "ips = [\"203.0.113.0/24\"]\nports = [4444]");
    let mut h = Harness::new(&r);
    h.feed(ms(0), &tcp("10.0.0.1", "198.51.100.1", 1, 80, SYN));
    assert_eq!(h.sink.alerts.len(), 0);
    h.feed(ms(1), &tcp("10.0.0.1", "203.0.113.9", 1, 80, SYN));
    h.feed(ms(2), &tcp("10.0.0.1", "198.51.100.1", 1, 4444, SYN));
    assert_eq!(h.sink.alerts.len(), 2);
    assert!(h.sink.alerts[0].message.starts_with("blocklisted destination 203.0.113.9"));
    assert!(h.sink.alerts[1].message.starts_with("blocklisted port 4444"));
}

#[test]
fn blocklist_counts_a_conversation_once() {
    // Through the engine, so the flow table tells the detector which side initiated.
    let rs =
        crate::RuleSet::parse("t.toml", &rule("blocklist", "ips = [\"203.0.113.66/32\"]\nports = [4444]"))
            .unwrap();
    let mut e = crate::Engine::new(rs, crate::Limits::default());
    let mut sink = crate::VecSink::default();
    let pkt = |ts| netrec_format::PacketRef {
        ts,
        iface: 0,
        direction: netrec_format::Direction::Unknown,
        link_type: netrec_format::LinkType::ETHERNET,
        wire_len: 60,
        data: &[],
    };
    e.process(&pkt(ms(0)), &tcp("10.0.0.1", "203.0.113.66", 49152, 4444, SYN), &mut sink);
    e.process(&pkt(ms(1)), &tcp("203.0.113.66", "10.0.0.1", 4444, 49152, SYN | F::ACK), &mut sink);
    e.process(&pkt(ms(2)), &tcp("10.0.0.1", "203.0.113.66", 49152, 4444, F::ACK), &mut sink);
    e.finish(&mut sink);
    assert_eq!(sink.alerts.len(), 1, "{:?}", sink.alerts);
    let a = &sink.alerts[0];
    assert_eq!((a.src.clone(), a.dst.clone()), (vec![ip("10.0.0.1")], vec![ip("203.0.113.66")]));
    assert_eq!(a.count, 3);
}

#[test]
fn bounded_keys_evict_lru_and_count() {
    let rs = crate::RuleSet::parse("t.toml", &rule("port_scan", "min_ports = 25")).unwrap();
    let mut h = Harness::with_keys(&rs, 100);
    for i in 0..1000u64 {
        h.feed(ms(i), &tcp(&src_n(i), "10.0.0.2", 1, 80, SYN));
    }
    let (keys, evictions, _) = h.keys();
    assert!(keys <= 100, "{keys}");
    assert_eq!(keys as u64 + evictions, 1000);
}

/// A TCP packet carrying `payload` after a 54-byte Ethernet + IPv4 + TCP header.
fn tcp_with(
    payload: &[u8],
    src: &str,
    dst: &str,
    sport: u16,
    dport: u16,
) -> (netrec_format::decode::Decoded, Vec<u8>) {
    let mut d = tcp(src, dst, sport, dport, F::ACK | F::PSH);
    d.payload_offset = 54;
    d.payload_len = payload.len() as u32;
    let mut data = vec![0u8; 54];
    data.extend_from_slice(payload);
    (d, data)
}

#[test]
fn signature_content_with_hex_nocase_offset_and_depth() {
    let r = rule(
        "signature",
        "proto = \"tcp\"\ndst_ports = [80]\ncontent = [\"GET |2f|admin\", \"sqlmap\"]\nnocase = true\ndepth = 200\nmessage = \"sqlmap probing /admin\"",
    );
    let mut h = Harness::new(&r);
    let hit = b"GET /admin?id=1 HTTP/1.1\r\nUser-Agent: SQLMap/1.7\r\n\r\n";
    for (k, (payload, dport)) in [
        (&b"GET /index.html HTTP/1.1\r\nUser-Agent: sqlmap\r\n\r\n"[..], 80u16), // one pattern only
        (hit, 8080),                                                             // wrong port
        (hit, 80),                                                               // both, any case
    ]
    .into_iter()
    .enumerate()
    {
        let (d, data) = tcp_with(payload, "10.0.0.1", "10.0.0.2", 40000, dport);
        h.feed_with(ms(k as u64), &d, None, &data);
    }
    assert_eq!(h.sink.alerts.len(), 1, "{:?}", h.sink.alerts);
    let a = &h.sink.alerts[0];
    assert_eq!(a.message, "sqlmap probing /admin: 1 packets from 10.0.0.1 to 10.0.0.2:80");
    assert_eq!(a.class, "signature");
    // Case matters without nocase; offset and depth bound the search window.
    let exact = |extra: &str| {
        let mut h = Harness::new(&rule("signature", &format!("content = \"Admin\"\n{extra}")));
        let (d, data) = tcp_with(b"xxAdminyy", "10.0.0.1", "10.0.0.2", 1, 2);
        h.feed_with(ms(0), &d, None, &data);
        let (d, data) = tcp_with(b"xxadminyy", "10.0.0.1", "10.0.0.2", 1, 2);
        h.feed_with(ms(1), &d, None, &data);
        h.sink.alerts.len()
    };
    assert_eq!(exact(""), 1);
    assert_eq!(exact("offset = 2\ndepth = 5"), 1, "the window is exactly the pattern");
    assert_eq!(exact("offset = 3"), 0, "starts after the pattern");
    assert_eq!(exact("depth = 6"), 0, "ends before the pattern does");
    // Only the captured payload is searched: a pattern cut by the snaplen does not match.
    let mut h = Harness::new(&rule("signature", "content = \"Admin\""));
    let (mut d, mut data) = tcp_with(b"xxAdminyy", "10.0.0.1", "10.0.0.2", 1, 2);
    data.truncate(54 + 4);
    d.payload_len = 9;
    h.feed_with(ms(0), &d, None, &data);
    assert_eq!(h.sink.alerts.len(), 0);
}

#[test]
fn signature_header_only_threshold_and_tracking() {
    // No content: proto + source network + destination port; 3 packets per flow in the window.
    let r = rule(
        "signature",
        "proto = \"udp\"\nsrc_ips = [\"192.0.2.0/24\"]\ndst_ports = [161]\nmin_packets = 3\ntrack = \"by_flow\"",
    );
    let mut h = Harness::new(&r);
    for i in 0..2 {
        h.feed(ms(i), &udp("192.0.2.7", "10.0.0.9", 5000, 161));
    }
    h.feed(ms(2), &udp("192.0.2.7", "10.0.0.9", 5001, 161)); // another flow
    h.feed(ms(3), &udp("198.51.100.7", "10.0.0.9", 5000, 161)); // outside src_ips
    h.feed(ms(4), &tcp("192.0.2.7", "10.0.0.9", 5000, 161, SYN)); // not UDP
    assert_eq!(h.sink.alerts.len(), 0, "{:?}", h.sink.alerts);
    h.feed(ms(5), &udp("192.0.2.7", "10.0.0.9", 5000, 161));
    assert_eq!(h.sink.alerts.len(), 1);
    assert_eq!(h.sink.alerts[0].count, 3);
    assert!(
        h.sink.alerts[0].message.starts_with("signature matched: 3 packets"),
        "{}",
        h.sink.alerts[0].message
    );
    // icmp covers ICMPv4 (and v6); a port list never matches a portless packet.
    let mut h = Harness::new(&rule("signature", "proto = \"icmp\"\ndst_ips = [\"10.0.0.0/8\"]"));
    h.feed(ms(0), &icmp_echo("192.0.2.1", "10.1.1.1"));
    assert_eq!(h.sink.alerts.len(), 1);
    let mut h = Harness::new(&rule("signature", "dst_ports = [0]"));
    h.feed(ms(0), &icmp_echo("192.0.2.1", "10.1.1.1"));
    assert_eq!(h.sink.alerts.len(), 0);
}
