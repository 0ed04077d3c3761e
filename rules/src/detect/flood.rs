//! Per-target floods: syn_flood, udp_flood, icmp_flood, volumetric, amplification.
//!
//! One implementation with a per-kind event filter. Volume alone is never enough: a
//! flood also needs many sources, or traffic the target never answered / never
//! established (a single fast TCP download is not a flood), and syn_flood needs many
//! sources or many SYNs to one port (so a single-source port scan is not a flood).

use super::{
    Detector, Distinct, Ev, Fire, Key, Out, PacketCtx, TopPorts, Tracker, Window, is_unicast, secs, stat,
    tracker_common,
};
use crate::flow::FlowDir;
use crate::ruleset::{DetectorKind, Rule};
use netrec_format::Ts;
use netrec_format::decode::{Transport, tcp_flags as F};
use std::net::IpAddr;

/// Sources remembered per target window at least.
const WINDOW_SOURCES: usize = 256;

#[derive(Debug)]
pub(crate) struct FloodWin {
    packets: u64,
    bytes: u64,
    unsolicited: u64,
    /// syn_flood: handshakes completed towards the target.
    completed: u64,
    sources: Distinct<IpAddr>,
    ports: TopPorts,
}

impl Window for FloodWin {
    fn reset(&mut self) {
        self.packets = 0;
        self.bytes = 0;
        self.unsolicited = 0;
        self.completed = 0;
        self.sources.clear();
        self.ports.clear();
    }
}

#[derive(Debug)]
pub(crate) struct Flood {
    t: Tracker<FloodWin>,
    cfg: Cfg,
}

#[derive(Debug)]
struct Cfg {
    kind: DetectorKind,
    min_packets: u64,
    min_bytes: u64,
    min_sources: u64,
    min_same_port: u64,
    min_ratio: f64,
    /// amplification: reflector source ports (sorted).
    ports: Vec<u16>,
}

fn make(r: &Rule) -> FloodWin {
    FloodWin {
        packets: 0,
        bytes: 0,
        unsolicited: 0,
        completed: 0,
        // Capped (memory per target stays bounded); the cap only limits how many of the
        // sources seen before the alert are carried into the incident's src_count.
        sources: Distinct::new((r.int("min_sources") as usize).max(WINDOW_SOURCES)),
        ports: TopPorts::default(),
    }
}

impl Flood {
    pub fn new(rule: &Rule, max_keys: usize) -> Flood {
        let ratio = match rule.detector {
            DetectorKind::SynFlood => rule.float("min_half_open_ratio"),
            _ => rule.float("min_unsolicited_ratio"),
        };
        let cfg = Cfg {
            kind: rule.detector,
            min_packets: match rule.detector {
                DetectorKind::SynFlood => rule.int("min_syns"),
                _ => rule.int("min_packets"),
            },
            min_bytes: rule.int("min_bytes"),
            min_sources: rule.int("min_sources"),
            min_same_port: rule.int("min_same_port"),
            min_ratio: ratio,
            ports: rule.ports("ports").to_vec(),
        };
        Flood { t: Tracker::new(rule, max_keys, make), cfg }
    }
}

impl Cfg {
    /// (src, dst, port for the stats, unsolicited) when the packet is an event of this kind.
    fn classify(&self, cx: &PacketCtx<'_>) -> Option<(IpAddr, IpAddr, u16, bool)> {
        let net = cx.dec.net.as_ref()?;
        if !is_unicast(net.dst) {
            return None;
        }
        let tr = cx.transport();
        match self.kind {
            DetectorKind::SynFlood => match tr {
                Transport::Tcp(t) if t.flags & (F::SYN | F::ACK | F::RST) == F::SYN => {
                    Some((net.src, net.dst, t.dst_port, true))
                }
                _ => None,
            },
            DetectorKind::UdpFlood => match tr {
                Transport::Udp(u) => Some((net.src, net.dst, u.dst_port, cx.unsolicited())),
                _ => None,
            },
            DetectorKind::IcmpFlood => match tr {
                Transport::Icmp(_) => Some((net.src, net.dst, 0, cx.unsolicited())),
                // Neighbour discovery and MLD (130..=143) are link-local housekeeping.
                Transport::Icmpv6(i) if !(130..=143).contains(&i.icmp_type) => {
                    Some((net.src, net.dst, 0, cx.unsolicited()))
                }
                _ => None,
            },
            DetectorKind::Volumetric => {
                let port = cx.dec.ports().map(|p| p.1).unwrap_or(0);
                Some((net.src, net.dst, port, cx.non_established()))
            }
            DetectorKind::Amplification => match tr {
                Transport::Udp(u) if self.ports.binary_search(&u.src_port).is_ok() => {
                    // A reply to a request the target sent is Rev in its flow: not reflection.
                    let unsolicited = cx.flow.is_none_or(|f| f.dir == FlowDir::Fwd);
                    unsolicited.then_some((net.src, net.dst, u.src_port, true))
                }
                _ => None,
            },
            _ => None,
        }
    }

    fn check(&self, w: &FloodWin, start: Ts, now: Ts, dst: IpAddr) -> Option<Fire> {
        let volume = w.packets >= self.min_packets || (self.min_bytes > 0 && w.bytes >= self.min_bytes);
        if !volume {
            return None;
        }
        let sources = w.sources.len();
        let unsolicited_ratio = w.unsolicited as f64 / w.packets.max(1) as f64;
        let top = w.ports.top().unwrap_or((0, 0));
        let half_open = 1.0 - (w.completed as f64 / w.packets.max(1) as f64).min(1.0);
        // Decide first: a busy target that is not flooded crosses the volume threshold on every
        // packet of its window, and must not pay for the alert's text each time.
        let ok = match self.kind {
            DetectorKind::SynFlood => {
                half_open >= self.min_ratio && (sources >= self.min_sources || top.1 >= self.min_same_port)
            }
            DetectorKind::Amplification => sources >= self.min_sources,
            _ => sources >= self.min_sources || unsolicited_ratio >= self.min_ratio,
        };
        if !ok {
            return None;
        }
        let elapsed = secs(now.saturating_sub(start));
        let (stats, message) = match self.kind {
            DetectorKind::SynFlood => {
                let stats = vec![
                    stat("syns", w.packets as f64),
                    stat("sources", sources as f64),
                    stat("half_open_ratio", half_open),
                    stat("top_port", top.0 as f64),
                    stat("top_port_syns", top.1 as f64),
                    stat("elapsed_s", elapsed),
                ];
                let msg = format!(
                    "SYN flood on {dst}: {} SYNs in {elapsed:.3} s from {sources}{} sources, {:.0}% half-open, {} to port {}",
                    w.packets,
                    if sources >= self.min_sources { "+" } else { "" },
                    half_open * 100.0,
                    top.1,
                    top.0
                );
                (stats, msg)
            }
            DetectorKind::Amplification => {
                let stats = vec![
                    stat("packets", w.packets as f64),
                    stat("bytes", w.bytes as f64),
                    stat("reflectors", sources as f64),
                    stat("reflector_port", top.0 as f64),
                    stat("elapsed_s", elapsed),
                ];
                let msg = format!(
                    "UDP reflection flood on {dst}: {} unsolicited packets ({} bytes) in {elapsed:.3} s from {sources}+ reflectors, mostly source port {}",
                    w.packets, w.bytes, top.0
                );
                (stats, msg)
            }
            _ => {
                let what = match self.kind {
                    DetectorKind::UdpFlood => "UDP flood",
                    DetectorKind::IcmpFlood => "ICMP flood",
                    _ => "volumetric flood",
                };
                let stats = vec![
                    stat("packets", w.packets as f64),
                    stat("bytes", w.bytes as f64),
                    stat("sources", sources as f64),
                    stat("unsolicited_ratio", unsolicited_ratio),
                    stat("elapsed_s", elapsed),
                ];
                let msg = format!(
                    "{what} on {dst}: {} packets ({} bytes) in {elapsed:.3} s from {sources} sources, {:.0}% unanswered/unestablished",
                    w.packets,
                    w.bytes,
                    unsolicited_ratio * 100.0
                );
                (stats, msg)
            }
        };
        Some(Fire {
            first_ts: start,
            count: w.packets,
            srcs: w.sources.smallest(super::MAX_LIST),
            dsts: vec![dst],
            ports: if self.kind == DetectorKind::Amplification { vec![] } else { vec![top.0] },
            stats,
            message,
        })
    }
}

impl Detector for Flood {
    fn on_packet(&mut self, cx: &PacketCtx<'_>, out: &mut Out<'_>) {
        // A completed handshake towards a target lowers its half-open ratio.
        if self.cfg.kind == DetectorKind::SynFlood
            && let Some(f) = cx.flow
            && f.handshake_done_now
        {
            self.t.with_existing(&Key::Ip(f.key().dst_ip), |w| w.completed += 1);
        }
        let cfg = &self.cfg;
        let Some((src, dst, port, unsolicited)) = cfg.classify(cx) else { return };
        let bytes = cx.pkt.wire_len as u64;
        let ev = Ev {
            src: Some(src),
            dst: Some(dst),
            port: (cfg.kind != DetectorKind::Amplification && port != 0).then_some(port),
        };
        let ts = cx.ts;
        self.t.event(Key::Ip(dst), ts, ev, out, |w, start| {
            w.packets += 1;
            w.bytes += bytes;
            w.unsolicited += unsolicited as u64;
            w.sources.insert(src);
            w.ports.add(port);
            cfg.check(w, start, ts, dst)
        });
    }
    tracker_common!();
}
