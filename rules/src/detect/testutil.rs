//! Test helpers: synthetic decoded packets and a detector harness without the flow table.

use super::{Detector, Out, PacketCtx, build};
use crate::flow::FlowUpdate;
use crate::ruleset::RuleSet;
use crate::sink::VecSink;
use netrec_format::decode::{ArpInfo, Decoded, IcmpInfo, NetLayer, TcpInfo, Transport, UdpInfo};
use netrec_format::{Direction, LinkType, PacketRef, Ts};
use std::net::IpAddr;

pub fn ip(s: &str) -> IpAddr {
    s.parse().expect("test ip")
}

pub fn net(src: &str, dst: &str, proto: u8) -> NetLayer {
    NetLayer {
        src: ip(src),
        dst: ip(dst),
        proto,
        ttl: 64,
        header_len: 20,
        total_len: 60,
        frag: None,
        dont_fragment: false,
        tos: 0,
        offset: 14,
    }
}

pub fn tcp(src: &str, dst: &str, sport: u16, dport: u16, flags: u8) -> Decoded {
    Decoded {
        net: Some(net(src, dst, 6)),
        transport: Transport::Tcp(TcpInfo { src_port: sport, dst_port: dport, flags, ..Default::default() }),
        ..Default::default()
    }
}

pub fn udp(src: &str, dst: &str, sport: u16, dport: u16) -> Decoded {
    Decoded {
        net: Some(net(src, dst, 17)),
        transport: Transport::Udp(UdpInfo { src_port: sport, dst_port: dport, length: 8 }),
        payload_offset: 42,
        ..Default::default()
    }
}

pub fn icmp_echo(src: &str, dst: &str) -> Decoded {
    Decoded {
        net: Some(net(src, dst, 1)),
        transport: Transport::Icmp(IcmpInfo { icmp_type: 8, code: 0, ident: 1, seq: 1 }),
        ..Default::default()
    }
}

pub fn arp_who_has(sender: &str, target: &str) -> Decoded {
    Decoded {
        arp: Some(ArpInfo { op: 1, sender_ip: sender.parse().unwrap(), target_ip: target.parse().unwrap() }),
        ..Default::default()
    }
}

pub fn ms(v: u64) -> Ts {
    Ts::from_millis(1_700_000_000_000 + v)
}

/// Runs one detector built from the first rule of a TOML text.
pub struct Harness {
    det: Box<dyn Detector>,
    pub sink: VecSink,
    next_id: u64,
}

impl Harness {
    pub fn new(toml: &str) -> Harness {
        let rs = RuleSet::parse("t.toml", toml).expect("test rule");
        Harness::with_keys(&rs, 1000)
    }
    pub fn with_keys(rs: &RuleSet, max_keys: usize) -> Harness {
        Harness { det: build(&rs.rules()[0], max_keys), sink: VecSink::default(), next_id: 1 }
    }
    pub fn feed(&mut self, ts: Ts, dec: &Decoded) {
        self.feed_with(ts, dec, None, &[]);
    }
    pub fn feed_with(&mut self, ts: Ts, dec: &Decoded, flow: Option<&FlowUpdate>, data: &[u8]) {
        let pkt = PacketRef {
            ts,
            iface: 0,
            direction: Direction::Unknown,
            link_type: LinkType::ETHERNET,
            wire_len: 100,
            data,
        };
        let cx = PacketCtx { ts, pkt: &pkt, dec, flow };
        let mut out = Out { next_id: &mut self.next_id, sink: &mut self.sink };
        self.det.on_packet(&cx, &mut out);
    }
    pub fn expire(&mut self, now: Ts) {
        let mut out = Out { next_id: &mut self.next_id, sink: &mut self.sink };
        self.det.expire(now, &mut out);
    }
    pub fn finish(&mut self) {
        let mut out = Out { next_id: &mut self.next_id, sink: &mut self.sink };
        self.det.finish(&mut out);
    }
    pub fn keys(&self) -> (usize, u64, u64) {
        self.det.counters()
    }
}
