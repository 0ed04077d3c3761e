//! Unit tests of the flow table on hand-built `Decoded` values.

use super::*;
use netrec_format::decode::{
    Anomalies, FragInfo, IcmpInfo, NetLayer, TcpInfo, Transport, UdpInfo, tcp_flags as tf,
};
use netrec_format::{Direction, LinkType, TunnelKind};
use std::net::IpAddr;

const SYN: u8 = tf::SYN;
const SYNACK: u8 = tf::SYN | tf::ACK;
const ACK: u8 = tf::ACK;
const PSHACK: u8 = tf::PSH | tf::ACK;
const FINACK: u8 = tf::FIN | tf::ACK;
const RST: u8 = tf::RST;
const S: u64 = 1_000_000_000;

/// A test packet: the frame bytes (only used by fragment reassembly) and its decode.
#[derive(Clone, Debug)]
pub(super) struct P {
    pub ts: u64,
    pub wire_len: u32,
    pub data: Vec<u8>,
    pub dec: Decoded,
}

impl P {
    fn pkt(&self) -> PacketRef<'_> {
        PacketRef {
            ts: Ts(self.ts),
            iface: 0,
            direction: Direction::Unknown,
            link_type: LinkType::RAW,
            wire_len: self.wire_len,
            data: &self.data,
        }
    }
    fn frag(mut self, id: u32, offset: u32, more: bool) -> P {
        if let Some(n) = self.dec.net.as_mut() {
            n.frag = Some(FragInfo { id, offset, more });
        }
        if offset != 0 {
            self.dec.transport = Transport::None;
        }
        self
    }
    fn vlan(mut self, v: u16) -> P {
        self.dec.vlans[0] = v;
        self.dec.vlan_count = 1;
        self
    }
    fn window(mut self, w: u16) -> P {
        if let Transport::Tcp(t) = &mut self.dec.transport {
            t.window = w;
        }
        self
    }
    fn anomaly(mut self, a: Anomaly) -> P {
        self.dec.anomalies.set(a);
        self
    }
}

fn ip(s: &str) -> IpAddr {
    s.parse().expect("test address")
}

fn net(src: &str, dst: &str, proto: u8, l4_len: u32) -> NetLayer {
    let src = ip(src);
    let hl = if src.is_ipv4() { 20 } else { 40 };
    NetLayer {
        src,
        dst: ip(dst),
        proto,
        ttl: 64,
        header_len: hl,
        total_len: u32::from(hl) + l4_len,
        frag: None,
        dont_fragment: false,
        tos: 0,
        offset: 0,
    }
}

fn packet(n: NetLayer, transport: Transport, hdr: u32, payload: u32, ts: u64) -> P {
    let dec = Decoded {
        net: Some(n),
        transport,
        payload_offset: u32::from(n.header_len) + hdr,
        payload_len: payload,
        anomalies: Anomalies::default(),
        ..Decoded::default()
    };
    P { ts, wire_len: 14 + u32::from(n.header_len) + hdr + payload, data: Vec::new(), dec }
}

#[allow(clippy::too_many_arguments)]
pub(super) fn tcp(
    src: &str,
    sport: u16,
    dst: &str,
    dport: u16,
    flags: u8,
    seq: u32,
    ack: u32,
    len: u32,
    ts: u64,
) -> P {
    let t = TcpInfo {
        src_port: sport,
        dst_port: dport,
        seq,
        ack,
        flags,
        window: 65535,
        header_len: 20,
        ..TcpInfo::default()
    };
    packet(net(src, dst, ipproto::TCP, 20 + len), Transport::Tcp(t), 20, len, ts)
}

pub(super) fn udp(src: &str, sport: u16, dst: &str, dport: u16, len: u32, ts: u64) -> P {
    let u = UdpInfo { src_port: sport, dst_port: dport, length: 8 + len as u16 };
    packet(net(src, dst, ipproto::UDP, 8 + len), Transport::Udp(u), 8, len, ts)
}

pub(super) fn icmp(src: &str, dst: &str, icmp_type: u8, code: u8, ident: u16, seq: u16, ts: u64) -> P {
    let i = IcmpInfo { icmp_type, code, ident, seq };
    let v6 = ip(src).is_ipv6();
    let (proto, t) =
        if v6 { (ipproto::ICMPV6, Transport::Icmpv6(i)) } else { (ipproto::ICMP, Transport::Icmp(i)) };
    packet(net(src, dst, proto, 8 + 56), t, 8, 56, ts)
}

/// An IPv4 fragment carrying raw `bytes` of its datagram at `offset`, decoded the way
/// the decoder does for tiny/later fragments (no transport).
#[allow(clippy::too_many_arguments)]
fn raw_fragment(
    src: &str,
    dst: &str,
    proto: u8,
    id: u32,
    offset: u32,
    more: bool,
    bytes: &[u8],
    ts: u64,
) -> P {
    let mut n = net(src, dst, proto, bytes.len() as u32);
    n.frag = Some(FragInfo { id, offset, more });
    let mut data = vec![0x45u8; 20];
    data.extend_from_slice(bytes);
    let mut dec =
        Decoded { net: Some(n), payload_offset: 20, payload_len: bytes.len() as u32, ..Decoded::default() };
    if offset == 0 {
        dec.anomalies.set(Anomaly::TinyFragment);
    }
    P { ts, wire_len: 14 + data.len() as u32, data, dec }
}

fn table() -> FlowTable {
    FlowTable::new(FlowConfig::default())
}

fn feed(t: &mut FlowTable, p: &P) -> Option<FlowUpdate> {
    t.update(&p.pkt(), &p.dec)
}

fn feed_all(t: &mut FlowTable, ps: &[P]) -> Vec<Option<FlowUpdate>> {
    ps.iter().map(|p| feed(t, p)).collect()
}

fn finish(t: &mut FlowTable) -> Vec<FlowRecord> {
    let mut v = Vec::new();
    t.finish(&mut |r| v.push(r));
    v
}

fn expire(t: &mut FlowTable, now: u64) -> Vec<FlowRecord> {
    let mut v = Vec::new();
    t.expire(Ts(now), &mut |r| v.push(r));
    v
}

const C: &str = "10.0.0.1";
const SV: &str = "10.0.0.2";

/// Client C:40000 -> server SV:80 three-way handshake at t = 0, 1 ms, 3 ms.
fn handshake(t0: u64) -> Vec<P> {
    vec![
        tcp(C, 40000, SV, 80, SYN, 1000, 0, 0, t0),
        tcp(SV, 80, C, 40000, SYNACK, 5000, 1001, 0, t0 + 1_000_000),
        tcp(C, 40000, SV, 80, ACK, 1001, 5001, 0, t0 + 3_000_000),
    ]
}

// ---------------------------------------------------------------- keys & initiator

#[test]
fn syn_sender_is_initiator() {
    let mut t = table();
    let ups = feed_all(&mut t, &handshake(0));
    let k = ups[0].unwrap().key();
    assert_eq!((k.src_ip, k.src_port, k.dst_ip, k.dst_port), (ip(C), 40000, ip(SV), 80));
    assert_eq!(
        ups.iter().map(|u| u.unwrap().dir).collect::<Vec<_>>(),
        [FlowDir::Fwd, FlowDir::Rev, FlowDir::Fwd]
    );
    assert!(ups[0].unwrap().new_flow && !ups[1].unwrap().new_flow);
    let recs = finish(&mut t);
    assert_eq!(recs.len(), 1);
    assert_eq!((recs[0].fwd.packets, recs[0].rev.packets), (2, 1));
}

#[test]
fn synack_receiver_is_initiator() {
    let mut t = table();
    let u = feed(&mut t, &tcp(SV, 80, C, 40000, SYNACK, 5000, 1001, 0, 0)).unwrap();
    assert_eq!((u.key().src_ip, u.key().src_port, u.key().dst_port), (ip(C), 40000, 80));
    assert_eq!(u.dir, FlowDir::Rev);
    assert_eq!(u.tcp_state, TcpState::SynReceived);
    let u = feed(&mut t, &tcp(C, 40000, SV, 80, ACK, 1001, 5001, 0, 10)).unwrap();
    assert_eq!(u.dir, FlowDir::Fwd);
    assert!(u.handshake_done_now);
    let r = &finish(&mut t)[0];
    assert_eq!(r.rtt_server_ns, None);
    assert_eq!(r.rtt_client_ns, Some(10));
}

#[test]
fn first_packet_sender_otherwise() {
    let mut t = table();
    // Server data seen first: the server is the "initiator" (mid-stream).
    let u = feed(&mut t, &tcp(SV, 80, C, 40000, PSHACK, 5000, 1001, 100, 0)).unwrap();
    assert_eq!((u.key().src_ip, u.key().src_port), (ip(SV), 80));
    assert_eq!(u.tcp_state, TcpState::Midstream);
    let u = feed(&mut t, &udp("192.168.1.5", 5353, "224.0.0.251", 5353, 10, 0)).unwrap();
    assert_eq!(u.key().src_ip, ip("192.168.1.5"));
    assert_eq!(u.tcp_state, TcpState::None);
    let u = feed(&mut t, &udp("224.0.0.251", 5353, "192.168.1.5", 5353, 10, 1)).unwrap();
    assert_eq!(u.dir, FlowDir::Rev);
}

#[test]
fn non_ip_packets_have_no_flow() {
    let mut t = table();
    let mut p = udp(C, 1, SV, 2, 0, 0);
    p.dec.net = None;
    p.dec.transport = Transport::None;
    assert_eq!(feed(&mut t, &p), None);
    assert!(finish(&mut t).is_empty());
}

#[test]
fn other_protocols_key_on_addresses_only() {
    let mut t = table();
    let mut p = packet(net(C, SV, ipproto::GRE, 40), Transport::Other, 0, 40, 0);
    let u = feed(&mut t, &p).unwrap();
    assert_eq!((u.key().proto, u.key().src_port, u.key().dst_port), (47, 0, 0));
    p.dec.net = Some(net(SV, C, ipproto::GRE, 40));
    assert_eq!(feed(&mut t, &p).unwrap().dir, FlowDir::Rev);
    assert_eq!(finish(&mut t).len(), 1);
}

#[test]
fn vlan_and_tunnel_separate_flows() {
    let mut t = table();
    feed(&mut t, &udp(C, 1, SV, 2, 0, 0));
    feed(&mut t, &udp(C, 1, SV, 2, 0, 0).vlan(10));
    let mut p = udp(C, 1, SV, 2, 0, 0);
    p.dec.tunnel = Some(Tunnel {
        kind: TunnelKind::Vxlan,
        id: 1111,
        outer_src: ip("1.1.1.1"),
        outer_dst: ip("2.2.2.2"),
    });
    let u = feed(&mut t, &p).unwrap();
    assert_eq!(u.key().tunnel_id, 1111);
    let recs = finish(&mut t);
    assert_eq!(recs.len(), 3);
    assert_eq!(recs[1].key.vlan, 10);
    assert_eq!(recs[2].tunnel.map(|t| t.id), Some(1111));
}

#[test]
fn icmp_echo_request_and_reply_pair() {
    let mut t = table();
    let a = feed(&mut t, &icmp(C, SV, 8, 0, 0x1234, 1, 0)).unwrap();
    let b = feed(&mut t, &icmp(SV, C, 0, 0, 0x1234, 1, 5)).unwrap();
    let c = feed(&mut t, &icmp(C, SV, 8, 0, 0x9999, 1, 6)).unwrap(); // other echo id
    let d = feed(&mut t, &icmp(SV, C, 3, 3, 0, 0, 7)).unwrap(); // port unreachable
    assert_eq!(a.flow_id, b.flow_id);
    assert_eq!(b.dir, FlowDir::Rev);
    assert_ne!(c.flow_id, a.flow_id);
    assert_eq!((a.key().src_ip, a.key().src_port, a.key().dst_port), (ip(C), 0x1234, 0x0800));
    assert_eq!((d.key().src_ip, d.key().src_port, d.key().dst_port), (ip(SV), 0, 0x0303));
    // A reply seen first: its receiver is the initiator, and the request joins it.
    let e = feed(&mut t, &icmp("fe80::2", "fe80::1", 129, 0, 7, 1, 8)).unwrap();
    assert_eq!(
        (e.key().src_ip, e.key().src_port, e.key().dst_port, e.dir),
        (ip("fe80::1"), 7, 128 << 8, FlowDir::Rev)
    );
    let f = feed(&mut t, &icmp("fe80::1", "fe80::2", 128, 0, 7, 2, 9)).unwrap();
    assert_eq!((f.flow_id, f.dir), (e.flow_id, FlowDir::Fwd));
    assert_eq!(finish(&mut t).len(), 4);
}

// ---------------------------------------------------------------- TCP state

#[test]
fn tcp_state_transitions() {
    let mut t = table();
    let hs = handshake(0);
    let states: Vec<TcpState> = feed_all(&mut t, &hs).into_iter().map(|u| u.unwrap().tcp_state).collect();
    assert_eq!(states, [TcpState::SynSent, TcpState::SynReceived, TcpState::Established]);
    let u = feed(&mut t, &tcp(C, 40000, SV, 80, FINACK, 1001, 5001, 0, 10)).unwrap();
    assert_eq!(u.tcp_state, TcpState::FinWait);
    let u = feed(&mut t, &tcp(SV, 80, C, 40000, FINACK, 5001, 1002, 0, 11)).unwrap();
    assert_eq!(u.tcp_state, TcpState::Closed);
    let u = feed(&mut t, &tcp(C, 40000, SV, 80, ACK, 1002, 5002, 0, 12)).unwrap();
    assert_eq!(u.tcp_state, TcpState::Closed);
    let r = &finish(&mut t)[0];
    assert_eq!(r.tcp_state, TcpState::Closed);
    assert_eq!(r.fwd.tcp_flags, SYN | ACK | tf::FIN);

    let mut t = table();
    feed_all(&mut t, &handshake(0));
    let u = feed(&mut t, &tcp(SV, 80, C, 40000, RST, 5001, 0, 0, 10)).unwrap();
    assert_eq!(u.tcp_state, TcpState::Reset);
    // Only the ACK of the initiator completes the handshake.
    let mut t = table();
    feed(&mut t, &hs[0]);
    feed(&mut t, &hs[1]);
    let u = feed(&mut t, &tcp(SV, 80, C, 40000, ACK, 5001, 1001, 0, 2)).unwrap();
    assert_eq!(u.tcp_state, TcpState::SynReceived);
    assert!(!u.handshake_done_now);
}

#[test]
fn syn_scan_reset_state() {
    let mut t = table();
    feed(&mut t, &tcp(C, 40000, SV, 22, SYN, 7, 0, 0, 0));
    let u = feed(&mut t, &tcp(SV, 22, C, 40000, RST | ACK, 0, 8, 0, 1)).unwrap();
    assert_eq!(u.tcp_state, TcpState::Reset);
}

#[test]
fn handshake_rtt_matches_tcpdump_nanosecond_capture() {
    // tcp-handshake-nanosecond.pcap (tcpdump -tt --nano): SYN .924505488, SYN/ACK
    // .052027262 (next second), ACK .052115157; SYN -> SYN/ACK = 0.127521774 s.
    let base = 1_418_145_369 * S;
    let (a, b, c) = (base + 924_505_488, base + S + 52_027_262, base + S + 52_115_157);
    let (cl, sv) = ("131.155.215.69", "137.116.81.94");
    let mut t = table();
    feed(&mut t, &tcp(cl, 46656, sv, 80, SYN, 100, 0, 0, a));
    feed(&mut t, &tcp(sv, 80, cl, 46656, SYNACK, 900, 101, 0, b));
    let u = feed(&mut t, &tcp(cl, 46656, sv, 80, ACK, 101, 901, 0, c)).unwrap();
    assert!(u.handshake_done_now);
    let r = &finish(&mut t)[0];
    assert_eq!(r.rtt_server_ns, Some(127_521_774));
    assert_eq!(r.rtt_client_ns, Some(87_895));
    assert_eq!(r.rtt_ns(), Some(127_609_669));
}

#[test]
fn retransmitted_syn_rtt_uses_last_syn() {
    let mut t = table();
    feed(&mut t, &tcp(C, 40000, SV, 80, SYN, 1000, 0, 0, 0));
    let u = feed(&mut t, &tcp(C, 40000, SV, 80, SYN, 1000, 0, 0, S)).unwrap();
    assert!(u.retransmission, "a repeated SYN is a retransmission");
    assert!(!u.new_flow);
    feed(&mut t, &tcp(SV, 80, C, 40000, SYNACK, 5000, 1001, 0, S + 2_000));
    feed(&mut t, &tcp(C, 40000, SV, 80, ACK, 1001, 5001, 0, S + 5_000));
    let r = &finish(&mut t)[0];
    assert_eq!(r.rtt_server_ns, Some(2_000));
    assert_eq!(r.rtt_client_ns, Some(3_000));
    assert_eq!(r.fwd.retransmissions, 1);
}

#[test]
fn retransmission_out_of_order_keepalive_zero_window() {
    let mut t = table();
    feed_all(&mut t, &handshake(0));
    let d = |seq: u32, len: u32, ts: u64| tcp(C, 40000, SV, 80, PSHACK, seq, 5001, len, ts);
    let ms = 1_000_000;
    // In order: 1001..1101, 1101..1201.
    assert!(!feed(&mut t, &d(1001, 100, 10 * ms)).unwrap().retransmission);
    assert!(!feed(&mut t, &d(1101, 100, 11 * ms)).unwrap().retransmission);
    // Exact repeat: retransmission.
    assert!(feed(&mut t, &d(1101, 100, 12 * ms)).unwrap().retransmission);
    // Gap: 1301..1401 arrives before 1201..1301, which fills it 1 ms later (< iRTT 3 ms).
    assert!(!feed(&mut t, &d(1301, 100, 13 * ms)).unwrap().retransmission);
    assert!(!feed(&mut t, &d(1201, 100, 14 * ms)).unwrap().retransmission);
    // Keep-alive: 1 byte (or 0) at next-1.
    assert!(!feed(&mut t, &d(1400, 1, 15 * ms)).unwrap().retransmission);
    assert!(!feed(&mut t, &d(1400, 0, 15 * ms)).unwrap().retransmission);
    // A gap filled long after it opened: the data was resent (lost), not reordered.
    feed(&mut t, &d(1501, 100, 16 * ms)); // gap 1401..1501
    assert!(feed(&mut t, &d(1401, 100, 500 * ms)).unwrap().retransmission);
    // Zero window from the server, then probes of one byte at the next sequence.
    let zw = tcp(SV, 80, C, 40000, ACK, 5001, 1601, 0, 501 * ms).window(0);
    feed(&mut t, &zw);
    feed(&mut t, &zw);
    assert!(!feed(&mut t, &d(1601, 1, 600 * ms)).unwrap().retransmission);
    assert!(!feed(&mut t, &d(1601, 1, 800 * ms)).unwrap().retransmission);
    let r = &finish(&mut t)[0];
    assert_eq!(r.fwd.retransmissions, 2);
    assert_eq!(r.fwd.out_of_order, 1);
    assert_eq!(r.rev.zero_window, 2);
    assert_eq!(r.fwd.zero_window, 0);
    assert_eq!(r.rev.retransmissions, 0);
}

#[test]
fn sequence_analysis_wraps_around() {
    let mut t = table();
    let c = |f: u8, seq: u32, len: u32, ts: u64| tcp(C, 1, SV, 2, f, seq, 1, len, ts);
    feed(&mut t, &c(SYN, u32::MAX - 150, 0, 0));
    feed(&mut t, &tcp(SV, 2, C, 1, SYNACK, 0, u32::MAX - 149, 0, 1));
    feed(&mut t, &c(ACK, u32::MAX - 149, 0, 2));
    assert!(!feed(&mut t, &c(PSHACK, u32::MAX - 149, 100, 3)).unwrap().retransmission);
    assert!(!feed(&mut t, &c(PSHACK, u32::MAX - 49, 100, 4)).unwrap().retransmission); // wraps
    assert!(!feed(&mut t, &c(PSHACK, 50, 100, 5)).unwrap().retransmission);
    assert!(feed(&mut t, &c(PSHACK, u32::MAX - 49, 100, 6)).unwrap().retransmission);
}

#[test]
fn port_reuse_starts_a_new_flow() {
    let mut t = table();
    feed_all(&mut t, &handshake(0));
    feed(&mut t, &tcp(C, 40000, SV, 80, FINACK, 1001, 5001, 0, 10));
    feed(&mut t, &tcp(SV, 80, C, 40000, FINACK, 5001, 1002, 0, 11));
    let u = feed(&mut t, &tcp(C, 40000, SV, 80, SYN, 777_000, 0, 0, 20)).unwrap();
    assert!(u.new_flow);
    assert_eq!(u.tcp_state, TcpState::SynSent);
    assert_eq!(u.fwd_packets, 1);
    let first = expire(&mut t, 21);
    assert_eq!(first.len(), 1, "the old connection is emitted by the next expire");
    assert_eq!(first[0].end, FlowEnd::TcpClose);
    assert_eq!(first[0].fwd.packets + first[0].rev.packets, 5);

    // Answered SYN + a different ISN on a still-established key: new flow too.
    let mut t = table();
    feed_all(&mut t, &handshake(0));
    let u = feed(&mut t, &tcp(C, 40000, SV, 80, SYN, 1000, 0, 0, 50)).unwrap();
    assert!(!u.new_flow && u.retransmission, "same ISN: a retransmitted SYN");
    let u = feed(&mut t, &tcp(C, 40000, SV, 80, SYN, 42, 0, 0, 60)).unwrap();
    assert!(u.new_flow);
    assert_eq!(t.stats().port_reuse, 1);
    let recs = finish(&mut t);
    assert_eq!(recs.len(), 2);
    assert_eq!((recs[0].end, recs[0].fwd.packets), (FlowEnd::TcpClose, 3));
    assert_eq!((recs[1].end, recs[1].fwd.packets), (FlowEnd::Open, 1));
}

// ---------------------------------------------------------------- timeouts & eviction

fn small_cfg() -> FlowConfig {
    FlowConfig {
        max_flows: 1000,
        tcp_idle_ns: 100 * S,
        other_idle_ns: 10 * S,
        active_timeout_ns: 1000 * S,
        tcp_close_linger_ns: 2 * S,
        max_fragments: 16,
    }
}

#[test]
fn idle_timeouts_by_class() {
    let mut t = FlowTable::new(small_cfg());
    feed(&mut t, &udp(C, 1, SV, 53, 10, 0));
    feed_all(&mut t, &handshake(0));
    feed(&mut t, &tcp(C, 5, SV, 6, SYN, 1, 0, 0, 0)); // half-open: "other" timeout
    assert!(expire(&mut t, 10 * S).is_empty(), "idle exactly the timeout is not yet expired");
    let r = expire(&mut t, 10 * S + 1);
    assert_eq!(r.len(), 2);
    assert_eq!((r[0].key.proto, r[0].end), (17, FlowEnd::IdleTimeout));
    assert_eq!((r[1].tcp_state, r[1].end), (TcpState::SynSent, FlowEnd::IdleTimeout));
    assert!(expire(&mut t, 100 * S).is_empty());
    let r = expire(&mut t, 101 * S);
    assert_eq!((r.len(), r[0].tcp_state), (1, TcpState::Established));
    assert_eq!(t.stats().active, 0);
}

#[test]
fn closed_flows_linger_then_emit() {
    let mut t = FlowTable::new(small_cfg());
    feed_all(&mut t, &handshake(0));
    feed(&mut t, &tcp(C, 40000, SV, 80, FINACK, 1001, 5001, 0, S));
    feed(&mut t, &tcp(SV, 80, C, 40000, FINACK, 5001, 1002, 0, S));
    assert!(expire(&mut t, 3 * S).is_empty());
    feed(&mut t, &tcp(C, 40000, SV, 80, ACK, 1002, 5002, 0, 2 * S)); // last ACK absorbed
    assert!(expire(&mut t, 4 * S).is_empty());
    let r = expire(&mut t, 4 * S + 1);
    assert_eq!(r.len(), 1);
    assert_eq!((r[0].end, r[0].fwd.packets, r[0].rev.packets), (FlowEnd::TcpClose, 4, 2));
}

#[test]
fn active_timeout_splits_with_new_flow_id() {
    let cfg = FlowConfig { active_timeout_ns: 30 * S, other_idle_ns: 20 * S, ..small_cfg() };
    let mut t = FlowTable::new(cfg);
    let mut ids = Vec::new();
    for i in 0..10 {
        ids.push(feed(&mut t, &udp(C, 1, SV, 2, 10, i * 10 * S)).unwrap().flow_id); // 0..90 s
        if i == 3 {
            let r = expire(&mut t, 31 * S);
            assert_eq!(r.len(), 1);
            assert_eq!(
                (r[0].end, r[0].fwd.packets, r[0].first_ts, r[0].last_ts),
                (FlowEnd::ActiveTimeout, 4, Ts(0), Ts(30 * S))
            );
        }
    }
    assert_eq!(ids[3], ids[0]);
    assert_ne!(ids[4], ids[3], "the continuation has a new flow_id");
    let r = finish(&mut t);
    assert_eq!(r.len(), 1);
    assert_eq!((r[0].fwd.packets, r[0].first_ts, r[0].end), (6, Ts(40 * S), FlowEnd::Open));
    assert_eq!(t.stats().active_restarts, 1);

    // A continuation that never sees another packet emits nothing more.
    let mut t = FlowTable::new(cfg_with_idle(100 * S, 30 * S));
    feed(&mut t, &udp(C, 1, SV, 2, 10, 0));
    feed(&mut t, &udp(C, 1, SV, 2, 10, 20 * S));
    assert_eq!(expire(&mut t, 31 * S).len(), 1);
    assert!(expire(&mut t, 500 * S).is_empty());
    assert!(finish(&mut t).is_empty());
}

fn cfg_with_idle(other_idle_ns: u64, active_timeout_ns: u64) -> FlowConfig {
    FlowConfig { other_idle_ns, active_timeout_ns, ..small_cfg() }
}

#[test]
fn expire_output_is_ordered_by_flow_id() {
    let mut t = FlowTable::new(small_cfg());
    // Created B(0), A(1); A is seen last, but both expire together; ids decide the order.
    feed(&mut t, &udp(C, 2, SV, 2, 0, 0));
    feed(&mut t, &udp(C, 1, SV, 1, 0, 1));
    feed_all(&mut t, &handshake(2)); // tcp, different class list
    feed(&mut t, &udp(C, 2, SV, 2, 0, 5));
    let r = expire(&mut t, 1000 * S);
    let ports: Vec<u16> = r.iter().map(|r| r.key.src_port).collect();
    assert_eq!(ports, [2, 1, 40000]);
}

#[test]
fn eviction_of_least_recently_seen() {
    let cfg = FlowConfig { max_flows: 2, ..small_cfg() };
    let mut t = FlowTable::new(cfg);
    feed(&mut t, &udp(C, 1, SV, 9, 0, 0));
    feed(&mut t, &udp(C, 2, SV, 9, 0, 1));
    feed(&mut t, &udp(C, 1, SV, 9, 0, 2)); // port 1 is now more recent than port 2
    feed(&mut t, &udp(C, 3, SV, 9, 0, 3)); // evicts port 2
    let s = t.stats();
    assert_eq!((s.active, s.evicted, s.created), (2, 1, 3));
    let r = expire(&mut t, 4);
    assert_eq!(r.len(), 1);
    assert_eq!((r[0].key.src_port, r[0].end), (2, FlowEnd::Evicted));
    let r = finish(&mut t);
    assert_eq!(r.iter().map(|r| r.key.src_port).collect::<Vec<_>>(), [1, 3]);
    assert_eq!(r[0].fwd.packets, 2);
}

// ---------------------------------------------------------------- fragments

#[test]
fn later_fragments_follow_their_first_fragment() {
    let mut t = table();
    let first = udp("164.1.123.163", 123, "164.1.123.61", 123, 1472, 0).frag(7, 0, true);
    let u1 = feed(&mut t, &first).unwrap();
    assert!(u1.fragment);
    let later = udp("164.1.123.163", 123, "164.1.123.61", 123, 1000, 1).frag(7, 1480, true);
    let u2 = feed(&mut t, &later).unwrap();
    let last = udp("164.1.123.163", 123, "164.1.123.61", 123, 500, 2).frag(7, 2960, false);
    let u3 = feed(&mut t, &last).unwrap();
    assert_eq!((u2.flow_id, u3.flow_id), (u1.flow_id, u1.flow_id));
    assert!(u3.fragment);
    assert_eq!(u3.transport, first.dec.transport);
    assert_eq!(u3.fwd_packets, 3);
    let r = finish(&mut t);
    assert_eq!(r.len(), 1);
    assert_eq!((r[0].key.src_port, r[0].key.dst_port, r[0].fwd.packets), (123, 123, 3));
    assert_eq!(t.stats().fragments_unattributed, 0);
}

#[test]
fn fragment_before_first_goes_to_ports_zero_flow() {
    let mut t = table();
    let later = udp(C, 5000, SV, 53, 100, 0).frag(9, 1480, false);
    let u = feed(&mut t, &later).unwrap();
    assert_eq!((u.key().src_port, u.key().dst_port, u.key().proto), (0, 0, 17));
    assert_eq!(u.transport, Transport::None);
    feed(&mut t, &udp(C, 5000, SV, 53, 1472, 1).frag(9, 0, true));
    assert_eq!(t.stats().fragments_unattributed, 1);
    assert_eq!(finish(&mut t).len(), 2);
}

fn syn_header(sport: u16, dport: u16, seq: u32) -> Vec<u8> {
    let mut h = vec![0u8; 24];
    h[0..2].copy_from_slice(&sport.to_be_bytes());
    h[2..4].copy_from_slice(&dport.to_be_bytes());
    h[4..8].copy_from_slice(&seq.to_be_bytes());
    h[12] = 6 << 4;
    h[13] = SYN;
    h[14..16].copy_from_slice(&512u16.to_be_bytes());
    h[20..24].copy_from_slice(&[2, 4, 5, 0xb4]);
    h
}

#[test]
fn tiny_first_fragment_header_is_reassembled() {
    // ipv4-fragmented-syn.pcap: a SYN 192.168.1.100:12345 -> 10.0.0.5:80 in 2 fragments,
    // 8 + 16 bytes of TCP header; one TCP conversation.
    let (cl, sv) = ("192.168.1.100", "10.0.0.5");
    let h = syn_header(12345, 80, 1);
    let mut t = table();
    let f1 = raw_fragment(cl, sv, ipproto::TCP, 1, 0, true, &h[..8], 0);
    assert_eq!(feed(&mut t, &f1), None, "held until the header is complete");
    let f2 = raw_fragment(cl, sv, ipproto::TCP, 1, 8, false, &h[8..], 1);
    let u = feed(&mut t, &f2).unwrap();
    assert!(u.new_flow && u.fragment);
    assert_eq!(
        (u.key().src_ip, u.key().src_port, u.key().dst_ip, u.key().dst_port),
        (ip(cl), 12345, ip(sv), 80)
    );
    assert_eq!(u.tcp_state, TcpState::SynSent);
    assert_eq!(u.fwd_packets, 2);
    let Transport::Tcp(tcpi) = u.transport else { panic!("transport {:?}", u.transport) };
    assert_eq!((tcpi.flags, tcpi.mss), (SYN, Some(1460)));
    let r = finish(&mut t);
    assert_eq!(r.len(), 1);
    assert_eq!((r[0].fwd.packets, r[0].fwd.tcp_flags, r[0].anomalies), (2, SYN, 1));
    assert_eq!(r[0].first_ts, Ts(0));
}

#[test]
fn tiny_fragment_never_completed_is_still_counted() {
    let h = syn_header(1, 2, 3);
    let mut t = FlowTable::new(small_cfg());
    assert_eq!(feed(&mut t, &raw_fragment(C, SV, ipproto::TCP, 5, 0, true, &h[..8], 0)), None);
    assert!(expire(&mut t, S).is_empty());
    // The fragment timeout (other_idle) flushes it into a ports-0 flow, which is idle
    // since its packet time and so expires in the same call.
    assert!(expire(&mut t, 10 * S).is_empty());
    let r = expire(&mut t, 10 * S + 1);
    assert_eq!(r.len(), 1);
    assert_eq!((r[0].key.src_port, r[0].fwd.packets), (0, 1));
    assert_eq!(t.stats().fragments_unattributed, 1);
}

#[test]
fn fragment_table_is_bounded() {
    let cfg = FlowConfig { max_fragments: 1, ..small_cfg() };
    let mut t = FlowTable::new(cfg);
    let h = syn_header(1, 2, 3);
    assert_eq!(feed(&mut t, &raw_fragment(C, SV, ipproto::TCP, 1, 0, true, &h[..8], 0)), None);
    assert_eq!(feed(&mut t, &raw_fragment(C, SV, ipproto::TCP, 2, 0, true, &h[..8], 1)), None);
    assert_eq!(t.stats().fragment_table_evictions, 1);
    // Datagram 2 still completes; datagram 1's held fragment went to a ports-0 flow.
    let u = feed(&mut t, &raw_fragment(C, SV, ipproto::TCP, 2, 8, false, &h[8..], 2)).unwrap();
    assert_eq!(u.key().src_port, 1);
    let r = finish(&mut t);
    assert_eq!(r.iter().map(|r| (r.key.src_port, r.fwd.packets)).collect::<Vec<_>>(), [(0, 1), (1, 2)]);
}

// ---------------------------------------------------------------- misc

#[test]
fn malformed_anomalies_are_counted_per_flow() {
    let mut t = table();
    feed(&mut t, &udp(C, 1, SV, 2, 0, 0).anomaly(Anomaly::BadUdpLength));
    feed(&mut t, &udp(C, 1, SV, 2, 0, 1).anomaly(Anomaly::UnknownEthertype));
    feed(&mut t, &udp(C, 1, SV, 2, 0, 2));
    assert_eq!(finish(&mut t)[0].anomalies, 1);
}

/// A deterministic pseudo-random mix of flows and packets.
pub(super) fn synthetic_mix(n: usize, flows: u32, seed: u64) -> Vec<P> {
    let mut x = seed | 1;
    let mut rnd = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut seqs = vec![0u32; flows as usize];
    (0..n)
        .map(|i| {
            let r = rnd();
            let f = (r % u64::from(flows)) as u32;
            let (a, b) = (format!("10.{}.{}.1", f >> 8 & 255, f & 255), "192.168.0.1");
            let ts = i as u64 * 1000;
            let back = r >> 40 & 1 == 1;
            match f % 8 {
                0 => udp(&a, 1024 + (f % 5000) as u16, b, 53, 40, ts),
                1 => icmp(&a, b, if back { 0 } else { 8 }, 0, f as u16, i as u16, ts),
                _ => {
                    let s = &mut seqs[f as usize];
                    let flags = match *s {
                        0 => SYN,
                        1 => SYNACK,
                        _ => PSHACK,
                    };
                    let len = if *s < 3 { 0 } else { (r >> 20) as u32 % 1400 };
                    let p = if flags == SYNACK || (back && *s > 2) {
                        tcp(b, 443, &a, 1024 + (f % 60000) as u16, flags, *s * 1000, 1, len, ts)
                    } else {
                        tcp(&a, 1024 + (f % 60000) as u16, b, 443, flags, *s * 1000, 1, len, ts)
                    };
                    *s += 1;
                    p
                }
            }
        })
        .collect()
}

fn run(ps: &[P], cfg: FlowConfig) -> Vec<FlowRecord> {
    let mut t = FlowTable::new(cfg);
    let mut out = Vec::new();
    for (i, p) in ps.iter().enumerate() {
        feed(&mut t, p);
        if i % 97 == 0 {
            t.expire(Ts(p.ts), &mut |r| out.push(r));
        }
    }
    t.finish(&mut |r| out.push(r));
    out
}

#[test]
fn deterministic_across_runs() {
    let ps = synthetic_mix(20_000, 3000, 42);
    let cfg = FlowConfig { max_flows: 500, other_idle_ns: 3_000_000, ..FlowConfig::default() };
    let a = run(&ps, cfg.clone());
    let b = run(&ps, cfg);
    assert!(a.len() > 500);
    assert_eq!(a, b);
    let total: u64 = a.iter().map(|r| r.fwd.packets + r.rev.packets).sum();
    assert_eq!(total, 20_000);
}

mod props {
    use super::*;
    use proptest::prelude::*;

    #[derive(Clone, Debug)]
    enum Op {
        Pkt(P),
        Expire(u64),
    }

    fn arb_packet() -> impl Strategy<Value = P> {
        let hosts = proptest::sample::select(vec!["10.0.0.1", "10.0.0.2", "10.0.0.3"]);
        (
            hosts.clone(),
            hosts,
            0u8..7,
            proptest::sample::select(vec![1u16, 2, 80]),
            proptest::sample::select(vec![1u16, 2, 80]),
            any::<u8>(),
            proptest::sample::select(vec![0u32, 1, 1000, u32::MAX, 2000, 1001]),
            0u32..2000,
            0u64..5_000_000_000,
            (any::<bool>(), 0u32..3, proptest::sample::select(vec![0u32, 8, 16, 1480]), any::<bool>()),
            proptest::collection::vec(any::<u8>(), 0..40),
        )
            .prop_map(|(a, b, kind, sp, dp, flags, seq, len, ts, (fr, id, off, more), raw)| {
                let mut p = match kind {
                    0 | 1 => tcp(a, sp, b, dp, flags, seq, seq.wrapping_add(7), len, ts),
                    2 => udp(a, sp, b, dp, len, ts),
                    3 => icmp(a, b, flags % 12, 0, sp, dp, ts),
                    4 => raw_fragment(a, b, ipproto::TCP, id, off, more, &raw, ts),
                    5 => {
                        let mut p = udp(a, sp, b, dp, len, ts);
                        p.dec.net = None;
                        p.dec.transport = Transport::None;
                        p
                    }
                    _ => packet(net(a, b, 99, len), Transport::Other, 0, len, ts),
                };
                if fr && kind < 4 {
                    p = p.frag(id, off, more);
                }
                p
            })
    }

    fn arb_op() -> impl Strategy<Value = Op> {
        prop_oneof![
            8 => arb_packet().prop_map(Op::Pkt),
            1 => (0u64..10_000_000_000).prop_map(Op::Expire),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(400))]
        #[test]
        fn packets_are_conserved(ops in proptest::collection::vec(arb_op(), 0..120), max_flows in 1usize..6, max_fragments in 0usize..3) {
            let cfg = FlowConfig {
                max_flows,
                max_fragments,
                tcp_idle_ns: 2_000_000_000,
                other_idle_ns: 1_000_000_000,
                active_timeout_ns: 3_000_000_000,
                tcp_close_linger_ns: 500_000_000,
            };
            let mut t = FlowTable::new(cfg);
            let mut out = Vec::new();
            let mut given = 0u64;
            for op in &ops {
                match op {
                    Op::Pkt(p) => {
                        given += u64::from(p.dec.net.is_some());
                        let u = feed(&mut t, p);
                        if p.dec.net.is_none() {
                            prop_assert!(u.is_none());
                        }
                    }
                    Op::Expire(now) => t.expire(Ts(*now), &mut |r| out.push(r)),
                }
                prop_assert!(t.stats().active <= max_flows as u64);
            }
            t.finish(&mut |r| out.push(r));
            let emitted: u64 = out.iter().map(|r| r.fwd.packets + r.rev.packets).sum();
            prop_assert_eq!(emitted, given);
            prop_assert!(out.iter().all(|r| r.fwd.packets + r.rev.packets > 0));
            prop_assert_eq!(t.stats().active, 0);
        }
    }
}

#[test]
fn atomic_fragment_is_a_whole_datagram() {
    let mut t = table();
    let u = feed(&mut t, &udp(C, 1, SV, 2, 10, 0).frag(3, 0, false)).unwrap();
    assert!(u.fragment);
    assert_eq!(u.key().src_port, 1);
    // Nothing is remembered for it: a later "fragment" with the same id is unattributed.
    feed(&mut t, &udp(C, 1, SV, 2, 10, 1).frag(3, 8, false));
    assert_eq!(t.stats().fragments_unattributed, 1);
}

#[test]
fn midstream_fin_and_sticky_end_states() {
    let mut t = table();
    let u = feed(&mut t, &tcp(C, 7, SV, 8, FINACK, 10, 20, 0, 0)).unwrap(); // FIN scan / late capture
    assert_eq!(u.tcp_state, TcpState::FinWait);
    let u = feed(&mut t, &tcp(SV, 8, C, 7, RST, 20, 0, 0, 1)).unwrap();
    assert_eq!(u.tcp_state, TcpState::Reset);
    let u = feed(&mut t, &tcp(SV, 8, C, 7, FINACK, 20, 11, 0, 2)).unwrap();
    assert_eq!(u.tcp_state, TcpState::Reset, "reset is final");

    let mut t = table();
    feed(&mut t, &tcp(C, 7, SV, 8, PSHACK, 10, 20, 5, 0));
    feed(&mut t, &tcp(C, 7, SV, 8, FINACK, 15, 20, 0, 1));
    let u = feed(&mut t, &tcp(SV, 8, C, 7, FINACK, 20, 16, 0, 2)).unwrap();
    assert_eq!(u.tcp_state, TcpState::Closed);
    let u = feed(&mut t, &tcp(C, 7, SV, 8, RST, 16, 0, 0, 3)).unwrap();
    assert_eq!(u.tcp_state, TcpState::Closed, "closed stays closed after a late RST");
}

/// A SYN flood's million flows live in the table at once: every byte of a slot is a megabyte of
/// memory (page faults and cache misses are most of `flows`' cost on such a capture). 496 bytes
/// before the derived key, the boxed tunnel and TCP gaps, and the packed TCP times.
#[test]
fn flow_slot_stays_small() {
    assert!(std::mem::size_of::<super::Flow>() <= 304, "{}", std::mem::size_of::<super::Flow>());
    assert!(std::mem::size_of::<super::tcp::TcpTrack>() <= 96);
}

/// `finish` walks the slots in order while they are in id order, and otherwise sorts (id, slot)
/// pairs: the same records in the same order, with and without records pending from evictions.
#[test]
fn finish_in_slot_order_equals_finish_by_sorted_ids() {
    let ps = synthetic_mix(20_000, 3000, 7);
    for max_flows in [1 << 20, 400] {
        let cfg = FlowConfig { max_flows, ..FlowConfig::default() };
        let (mut fast, mut slow) = (FlowTable::new(cfg.clone()), FlowTable::new(cfg));
        slow.ids_follow_slots = false;
        for p in &ps {
            feed(&mut fast, p);
            feed(&mut slow, p);
        }
        assert_eq!(fast.ids_follow_slots, max_flows > 400, "evictions reuse slots");
        let (a, b) = (finish(&mut fast), finish(&mut slow));
        assert!(a.len() > 1000, "{}", a.len());
        assert_eq!(a, b, "max_flows {max_flows}");
        // In creation order: first packets (and ties in id order) ascending.
        assert!(a.windows(2).all(|w| w[0].first_ts <= w[1].first_ts || max_flows == 400));
    }
}

/// The one-pass `finish` with a record pending from a port reuse in the last slot (the flag stays
/// set: the new flow's slot is the last one): merged by id like the sorted path.
#[test]
fn finish_in_slot_order_merges_pending_records_by_id() {
    let run = |fast: bool| {
        let mut t = table();
        t.ids_follow_slots = fast;
        feed(&mut t, &udp(C, 1, SV, 9, 0, 0));
        feed(&mut t, &tcp(C, 40000, SV, 22, SYN, 7, 0, 0, 1));
        feed(&mut t, &tcp(SV, 22, C, 40000, RST | ACK, 0, 8, 0, 2));
        feed(&mut t, &tcp(C, 40000, SV, 22, SYN, 1000, 0, 0, 3));
        assert_eq!(t.ids_follow_slots, fast);
        assert_eq!(t.pending.len(), 1, "the reset connection's record waits");
        finish(&mut t)
    };
    let fast = run(true);
    assert_eq!(
        fast.iter().map(|r| (r.key.src_port, r.first_ts.0)).collect::<Vec<_>>(),
        [(1, 0), (40000, 1), (40000, 3)]
    );
    assert_eq!(fast, run(false));
}
