//! Reconnaissance: port_scan (distinct ports per source/pair) and host_sweep
//! (distinct targets per source).
//!
//! Both count probes, not connections: a probe is a packet that opens no answered
//! conversation yet (SYN, FIN, NULL, XMAS, bare ACK outside a known connection,
//! unsolicited UDP, an SCTP INIT opening its flow). Completed handshakes and answered
//! UDP/ARP/SCTP INIT count against the alert (a client using many services is not scanning them).

use super::{
    Detector, Distinct, Ev, Fire, Key, Out, PacketCtx, Tracker, Window, is_unicast, secs, stat,
    tracker_common,
};
use crate::flow::FlowDir;
use crate::ruleset::{Rule, Track};
use netrec_format::TcpState;
use netrec_format::decode::{Transport, tcp_flags as F};
use std::net::IpAddr;

/// Probe kinds, in the order used for stats and naming.
const PROBE_NAMES: [&str; KINDS] = ["syn", "fin", "null", "xmas", "ack", "udp", "icmp_echo", "arp", "sctp"];
const KINDS: usize = 9;
const SYN: usize = 0;
const FIN: usize = 1;
const NULL: usize = 2;
const XMAS: usize = 3;
const ACK: usize = 4;
const UDP: usize = 5;
const ICMP: usize = 6;
const ARP: usize = 7;
const SCTP: usize = 8;

/// SCTP chunk types (RFC 9260).
const SCTP_INIT: u8 = 1;
const SCTP_INIT_ACK: u8 = 2;

/// Destination port of an SCTP INIT that opens its flow (no answer yet): nmap's `-sY` probe.
fn sctp_probe(cx: &PacketCtx<'_>) -> Option<u16> {
    match cx.transport() {
        Transport::Sctp(s) if s.first_chunk == Some(SCTP_INIT) && cx.unsolicited() => Some(s.dst_port),
        _ => None,
    }
}

/// The first answer of an SCTP flow is an INIT ACK: the port is open (an ABORT says closed).
fn sctp_answered(cx: &PacketCtx<'_>) -> bool {
    matches!(cx.transport(), Transport::Sctp(s) if s.first_chunk == Some(SCTP_INIT_ACK))
        && cx.flow.is_some_and(|f| f.dir == FlowDir::Rev && f.rev_packets == 1)
}

/// Traceroute's UDP probes walk 33434.. one port per probe; they are not a scan.
const TRACEROUTE_PORTS: std::ops::RangeInclusive<u16> = 33434..=33534;

fn tcp_probe(cx: &PacketCtx<'_>, flags: u8) -> Option<usize> {
    let low = flags & 0x3f;
    if flags & (F::SYN | F::ACK | F::RST | F::FIN) == F::SYN {
        return Some(SYN);
    }
    if low == 0 {
        return Some(NULL);
    }
    if low & (F::FIN | F::PSH | F::URG) == (F::FIN | F::PSH | F::URG) && low & (F::SYN | F::ACK) == 0 {
        return Some(XMAS);
    }
    if low == F::FIN {
        return Some(FIN);
    }
    // A bare ACK is a probe only outside a known connection.
    let outside = cx.flow.is_none_or(|f| f.tcp_state == TcpState::Midstream && f.new_flow);
    if low == F::ACK && cx.dec.payload_len == 0 && outside {
        return Some(ACK);
    }
    None
}

/// The dominant probe kind's name.
fn dominant(counts: &[u64; KINDS]) -> &'static str {
    let mut best = 0;
    for i in 1..counts.len() {
        if counts[i] > counts[best] {
            best = i;
        }
    }
    PROBE_NAMES[best]
}

fn probe_stats(counts: &[u64; KINDS], out: &mut Vec<(String, f64)>) {
    for (i, n) in counts.iter().enumerate() {
        if *n > 0 {
            out.push(stat(&format!("{}_probes", PROBE_NAMES[i]), *n as f64));
        }
    }
}

#[derive(Debug)]
pub(crate) struct ScanWin {
    ports: Distinct<u16>,
    targets: Distinct<IpAddr>,
    probes: u64,
    established: u64,
    kinds: [u64; KINDS],
}

impl Window for ScanWin {
    fn reset(&mut self) {
        self.ports.clear();
        self.targets.clear();
        self.probes = 0;
        self.established = 0;
        self.kinds = [0; KINDS];
    }
}

#[derive(Debug)]
pub(crate) struct PortScan {
    t: Tracker<ScanWin>,
    track: Track,
    min_ports: u64,
    max_established_ratio: f64,
}

impl PortScan {
    pub fn new(rule: &Rule, max_keys: usize) -> PortScan {
        let min_ports = rule.int("min_ports");
        PortScan {
            t: Tracker::new(rule, max_keys, |r| ScanWin {
                ports: Distinct::new(r.int("min_ports") as usize),
                targets: Distinct::new(super::MAX_LIST),
                probes: 0,
                established: 0,
                kinds: [0; KINDS],
            }),
            track: rule.track,
            min_ports,
            max_established_ratio: rule.float("max_established_ratio"),
        }
    }
    fn key(&self, src: IpAddr, dst: IpAddr) -> Key {
        match self.track {
            Track::BySrc => Key::Ip(src),
            _ => Key::Pair(src, dst),
        }
    }
}

impl Detector for PortScan {
    fn on_packet(&mut self, cx: &PacketCtx<'_>, out: &mut Out<'_>) {
        let Some(net) = cx.dec.net.as_ref() else { return };
        if let Some(f) = cx.flow
            && ((f.handshake_done_now && f.dir == FlowDir::Fwd) || sctp_answered(cx))
        {
            let fk = f.key();
            let k = self.key(fk.src_ip, fk.dst_ip);
            self.t.with_existing(&k, |w| w.established += 1);
        }
        if !is_unicast(net.dst) {
            return;
        }
        let (kind, port) = match cx.transport() {
            Transport::Tcp(t) => match tcp_probe(cx, t.flags) {
                Some(k) => (k, t.dst_port),
                None => return,
            },
            Transport::Udp(u) if cx.unsolicited() && !TRACEROUTE_PORTS.contains(&u.dst_port) => {
                (UDP, u.dst_port)
            }
            _ => match sctp_probe(cx) {
                Some(port) => (SCTP, port),
                None => return,
            },
        };
        let (src, dst, ts) = (net.src, net.dst, cx.ts);
        let key = self.key(src, dst);
        let (min_ports, max_ratio) = (self.min_ports, self.max_established_ratio);
        let ev = Ev { src: Some(src), dst: Some(dst), port: Some(port) };
        self.t.event(key, ts, ev, out, |w, start| {
            w.ports.insert(port);
            w.targets.insert(dst);
            w.probes += 1;
            w.kinds[kind] += 1;
            let ports = w.ports.len();
            let ratio = w.established as f64 / ports.max(1) as f64;
            if ports < min_ports || ratio > max_ratio {
                return None;
            }
            let name = dominant(&w.kinds);
            let elapsed = secs(ts.saturating_sub(start));
            let mut stats = vec![
                stat("distinct_ports", ports as f64),
                stat("probes", w.probes as f64),
                stat("established_ratio", ratio),
                stat("elapsed_s", elapsed),
            ];
            probe_stats(&w.kinds, &mut stats);
            let target = if w.targets.len() == 1 { dst.to_string() } else { format!("{} hosts", w.targets.len()) };
            Some(Fire {
                first_ts: start,
                count: w.probes,
                srcs: vec![src],
                dsts: w.targets.smallest(super::MAX_LIST),
                ports: w.ports.smallest(super::MAX_LIST),
                stats,
                message: format!(
                    "{} port scan from {src} to {target}: {ports} distinct ports in {elapsed:.3} s ({} probes)",
                    name.to_uppercase(),
                    w.probes
                ),
            })
        });
    }
    tracker_common!();
}

#[derive(Debug)]
pub(crate) struct HostSweep {
    t: Tracker<ScanWin>,
    min_targets: u64,
    max_answered_ratio: f64,
}

impl HostSweep {
    pub fn new(rule: &Rule, max_keys: usize) -> HostSweep {
        HostSweep {
            t: Tracker::new(rule, max_keys, |r| ScanWin {
                ports: Distinct::new(super::MAX_LIST),
                targets: Distinct::new(r.int("min_targets") as usize),
                probes: 0,
                established: 0,
                kinds: [0; KINDS],
            }),
            min_targets: rule.int("min_targets"),
            max_answered_ratio: rule.float("max_answered_ratio"),
        }
    }

    /// (prober, target, kind, port) when the packet probes a host.
    fn probe(cx: &PacketCtx<'_>) -> Option<(IpAddr, IpAddr, usize, Option<u16>)> {
        if let Some(a) = cx.dec.arp {
            let gratuitous = a.sender_ip == a.target_ip || a.sender_ip.is_unspecified();
            return (a.op == 1 && !gratuitous).then_some((a.sender_ip.into(), a.target_ip.into(), ARP, None));
        }
        let net = cx.dec.net.as_ref()?;
        if !is_unicast(net.dst) {
            return None;
        }
        match cx.transport() {
            Transport::Icmp(i) if i.icmp_type == 8 => Some((net.src, net.dst, ICMP, None)),
            Transport::Icmpv6(i) if i.icmp_type == 128 => Some((net.src, net.dst, ICMP, None)),
            Transport::Tcp(t) => match tcp_probe(cx, t.flags) {
                Some(k @ (SYN | ACK)) => Some((net.src, net.dst, k, Some(t.dst_port))),
                _ => None,
            },
            Transport::Udp(u) if cx.unsolicited() => Some((net.src, net.dst, UDP, Some(u.dst_port))),
            _ => sctp_probe(cx).map(|port| (net.src, net.dst, SCTP, Some(port))),
        }
    }

    /// The prober to credit when this packet shows a target answered (benign use).
    fn answer(cx: &PacketCtx<'_>) -> Option<IpAddr> {
        if let Some(a) = cx.dec.arp {
            return (a.op == 2).then_some(a.target_ip.into());
        }
        let f = cx.flow?;
        if f.handshake_done_now && f.dir == FlowDir::Fwd {
            return Some(f.key().src_ip);
        }
        let udp_reply =
            matches!(cx.transport(), Transport::Udp(_)) && f.dir == FlowDir::Rev && f.rev_packets == 1;
        (udp_reply || sctp_answered(cx)).then_some(f.key().src_ip)
    }
}

impl Detector for HostSweep {
    fn on_packet(&mut self, cx: &PacketCtx<'_>, out: &mut Out<'_>) {
        if let Some(p) = Self::answer(cx) {
            self.t.with_existing(&Key::Ip(p), |w| w.established += 1);
        }
        let Some((src, dst, kind, port)) = Self::probe(cx) else { return };
        let (min_targets, max_ratio, ts) = (self.min_targets, self.max_answered_ratio, cx.ts);
        let ev = Ev { src: Some(src), dst: Some(dst), port };
        self.t.event(Key::Ip(src), ts, ev, out, |w, start| {
            w.targets.insert(dst);
            if let Some(p) = port {
                w.ports.insert(p);
            }
            w.probes += 1;
            w.kinds[kind] += 1;
            let targets = w.targets.len();
            let ratio = (w.established as f64 / targets.max(1) as f64).min(1.0);
            if targets < min_targets || ratio > max_ratio {
                return None;
            }
            let name = dominant(&w.kinds);
            let elapsed = secs(ts.saturating_sub(start));
            let mut stats = vec![
                stat("distinct_targets", targets as f64),
                stat("probes", w.probes as f64),
                stat("answered_ratio", ratio),
                stat("elapsed_s", elapsed),
            ];
            probe_stats(&w.kinds, &mut stats);
            Some(Fire {
                first_ts: start,
                count: w.probes,
                srcs: vec![src],
                dsts: w.targets.smallest(super::MAX_LIST),
                ports: w.ports.smallest(super::MAX_LIST),
                stats,
                message: format!(
                    "{} host sweep from {src}: {targets} distinct hosts probed in {elapsed:.3} s ({} probes)",
                    name.to_uppercase(),
                    w.probes
                ),
            })
        });
    }
    tracker_common!();
}
