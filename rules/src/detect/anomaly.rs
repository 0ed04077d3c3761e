//! Packets that are wrong by themselves: tcp_flag_anomaly, land, ip_header_anomaly
//! (one shared "count matching packets" detector), and fragment_anomaly.

use super::{Detector, Ev, Fire, Key, Out, PacketCtx, Tracker, Window, secs, stat, tracker_common};
use crate::ruleset::{DetectorKind, Rule, Track};
use netrec_format::Ts;
use netrec_format::decode::{Anomaly, Transport, tcp_flags as F};
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};

const MAX_KINDS: usize = 6;

/// Illegal TCP flag combinations, most specific first.
const TCP_KINDS: [&str; MAX_KINDS] = ["all_flags", "null", "syn_fin", "syn_rst", "xmas", "fin_without_ack"];

fn tcp_kind(flags: u8) -> Option<usize> {
    let low = flags & 0x3f;
    if low == 0x3f {
        Some(0)
    } else if low == 0 {
        Some(1)
    } else if low & (F::SYN | F::FIN) == (F::SYN | F::FIN) {
        Some(2)
    } else if low & (F::SYN | F::RST) == (F::SYN | F::RST) {
        Some(3)
    } else if low & (F::FIN | F::PSH | F::URG) == (F::FIN | F::PSH | F::URG) {
        Some(4)
    } else if low & (F::FIN | F::ACK) == F::FIN {
        Some(5)
    } else {
        None
    }
}

const IP_KINDS: [&str; MAX_KINDS] = [
    "bad_header_length",
    "bad_total_length",
    "reserved_flag",
    "bad_version",
    "bad_ipv6_ext_header",
    "ttl_zero",
];

fn ip_kind(cx: &PacketCtx<'_>) -> Option<usize> {
    let a = cx.dec.anomalies;
    // Truncation by the capture's snaplen is an artefact of recording, not of the packet.
    let kind = [
        Anomaly::BadIpv4HeaderLength,
        Anomaly::BadIpv4TotalLength,
        Anomaly::Ipv4ReservedFlag,
        Anomaly::BadIpVersion,
        Anomaly::BadIpv6ExtHeader,
    ]
    .iter()
    .position(|k| a.has(*k));
    // TTL 1 is normal (multicast, mDNS, SSDP, traceroute); TTL 0 must never be sent.
    kind.or_else(|| cx.dec.net.filter(|n| n.ttl == 0).map(|_| 5))
}

#[derive(Debug)]
pub(crate) struct CountWin {
    count: u64,
    kinds: [u64; MAX_KINDS],
}

impl Window for CountWin {
    fn reset(&mut self) {
        self.count = 0;
        self.kinds = [0; MAX_KINDS];
    }
}

fn key_for(track: Track, src: IpAddr, dst: IpAddr) -> Key {
    match track {
        Track::ByDst => Key::Ip(dst),
        Track::ByPair | Track::ByFlow => Key::Pair(src, dst),
        Track::BySrc => Key::Ip(src),
    }
}

/// tcp_flag_anomaly, land, ip_header_anomaly: fire after `min_packets` matching packets.
#[derive(Debug)]
pub(crate) struct OneShot {
    t: Tracker<CountWin>,
    kind: DetectorKind,
    track: Track,
    min_packets: u64,
}

impl OneShot {
    pub fn new(rule: &Rule, max_keys: usize) -> OneShot {
        OneShot {
            t: Tracker::new(rule, max_keys, |_| CountWin { count: 0, kinds: [0; MAX_KINDS] }),
            kind: rule.detector,
            track: rule.track,
            min_packets: rule.int("min_packets"),
        }
    }

    /// (src, dst, dst port, kind index) of a matching packet.
    fn classify(&self, cx: &PacketCtx<'_>) -> Option<(IpAddr, IpAddr, Option<u16>, usize)> {
        let unspecified = IpAddr::V4(Ipv4Addr::UNSPECIFIED);
        let (src, dst) = cx.dec.net.map(|n| (n.src, n.dst)).unwrap_or((unspecified, unspecified));
        match self.kind {
            DetectorKind::TcpFlagAnomaly => match cx.transport() {
                Transport::Tcp(t) => tcp_kind(t.flags).map(|k| (src, dst, Some(t.dst_port), k)),
                _ => None,
            },
            DetectorKind::Land => {
                cx.dec.net?;
                let (sp, dp) = cx.dec.ports()?;
                (src == dst && sp == dp).then_some((src, dst, Some(dp), 0))
            }
            _ => ip_kind(cx).map(|k| (src, dst, None, k)),
        }
    }

    fn names(&self) -> &'static [&'static str] {
        match self.kind {
            DetectorKind::TcpFlagAnomaly => &TCP_KINDS,
            DetectorKind::Land => &["land"],
            _ => &IP_KINDS,
        }
    }
}

impl Detector for OneShot {
    fn on_packet(&mut self, cx: &PacketCtx<'_>, out: &mut Out<'_>) {
        let Some((src, dst, port, kind)) = self.classify(cx) else { return };
        let key = if self.kind == DetectorKind::Land { Key::Ip(dst) } else { key_for(self.track, src, dst) };
        let (min, names, det, ts) = (self.min_packets, self.names(), self.kind, cx.ts);
        let ev = Ev { src: Some(src), dst: Some(dst), port };
        self.t.event(key, ts, ev, out, |w, start| {
            w.count += 1;
            if let Some(k) = w.kinds.get_mut(kind) {
                *k += 1;
            }
            if w.count < min {
                return None;
            }
            let mut stats =
                vec![stat("packets", w.count as f64), stat("elapsed_s", secs(ts.saturating_sub(start)))];
            let mut seen: Vec<&str> = Vec::new();
            for (i, n) in w.kinds.iter().enumerate() {
                if *n > 0
                    && let Some(name) = names.get(i)
                {
                    stats.push(stat(name, *n as f64));
                    seen.push(name);
                }
            }
            let what = seen.join(", ");
            let message = match det {
                DetectorKind::TcpFlagAnomaly => {
                    format!("illegal TCP flags from {src} to {dst}: {} packets ({what})", w.count)
                }
                DetectorKind::Land => format!(
                    "LAND attack on {dst}: {} packets with source = destination {dst} port {}",
                    w.count,
                    port.unwrap_or(0)
                ),
                _ => format!("malformed IP header from {src} to {dst}: {} packets ({what})", w.count),
            };
            Some(Fire {
                first_ts: start,
                count: w.count,
                srcs: vec![src],
                dsts: vec![dst],
                ports: port.into_iter().collect(),
                stats,
                message,
            })
        });
    }
    tracker_common!();
}

const FRAG_KINDS: [&str; 3] = ["tiny", "malformed", "overlap"];
/// Datagrams tracked for overlap detection, and fragments remembered per datagram.
const MAX_DATAGRAMS: usize = 16_384;
const MAX_RANGES: usize = 32;
/// A datagram's fragments older than this are forgotten (reassembly timeouts are 30-60 s).
const DATAGRAM_TTL_NS: u64 = 30_000_000_000;

#[derive(Debug)]
pub(crate) struct FragWin {
    fragments: u64,
    anomalies: u64,
    kinds: [u64; 3],
}

impl Window for FragWin {
    fn reset(&mut self) {
        self.fragments = 0;
        self.anomalies = 0;
        self.kinds = [0; 3];
    }
}

#[derive(Debug)]
struct Datagram {
    last: Ts,
    ranges: Vec<(u32, u32)>,
}

/// fragment_anomaly: tiny first fragments, malformed fragments, overlapping fragments of
/// one datagram, and fragment floods.
#[derive(Debug)]
pub(crate) struct Fragments {
    t: Tracker<FragWin>,
    track: Track,
    min_anomalies: u64,
    min_fragments: u64,
    datagrams: HashMap<(IpAddr, IpAddr, u8, u32), Datagram>,
    /// Fragments not checked for overlap because the datagram table was full.
    pub untracked: u64,
}

impl Fragments {
    pub fn new(rule: &Rule, max_keys: usize) -> Fragments {
        Fragments {
            t: Tracker::new(rule, max_keys, |_| FragWin { fragments: 0, anomalies: 0, kinds: [0; 3] }),
            track: rule.track,
            min_anomalies: rule.int("min_anomalies"),
            min_fragments: rule.int("min_fragments"),
            datagrams: HashMap::new(),
            untracked: 0,
        }
    }

    /// True when this fragment's byte range partially overlaps one already seen
    /// (exact duplicates are retransmissions, not overlaps).
    fn overlaps(&mut self, ts: Ts, key: (IpAddr, IpAddr, u8, u32), start: u32, end: u32) -> bool {
        if !self.datagrams.contains_key(&key) && self.datagrams.len() >= MAX_DATAGRAMS {
            self.untracked += 1;
            return false;
        }
        let d = self.datagrams.entry(key).or_insert_with(|| Datagram { last: ts, ranges: Vec::new() });
        d.last = ts;
        let hit = d.ranges.iter().any(|&(s, e)| start < e && s < end && (s, e) != (start, end));
        if d.ranges.len() < MAX_RANGES && !d.ranges.contains(&(start, end)) {
            d.ranges.push((start, end));
        }
        hit
    }
}

impl Detector for Fragments {
    fn on_packet(&mut self, cx: &PacketCtx<'_>, out: &mut Out<'_>) {
        let Some(net) = cx.dec.net else { return };
        let a = cx.dec.anomalies;
        let kind = if a.has(Anomaly::TinyFragment) {
            Some(0)
        } else if a.has(Anomaly::BadFragment) {
            Some(1)
        } else {
            None
        };
        let Some(frag) = net.frag else {
            if kind.is_none() {
                return;
            }
            return self.record(cx, net.src, net.dst, kind, out);
        };
        let len = net.total_len.saturating_sub(net.header_len as u32);
        let end = frag.offset.saturating_add(len);
        let overlap = self.overlaps(cx.ts, (net.src, net.dst, net.proto, frag.id), frag.offset, end);
        let kind = kind.or(overlap.then_some(2));
        self.record(cx, net.src, net.dst, kind, out);
    }
    fn expire(&mut self, now: Ts, out: &mut Out<'_>) {
        self.datagrams.retain(|_, d| now.saturating_sub(d.last) < DATAGRAM_TTL_NS);
        self.t.expire(now, out)
    }
    fn finish(&mut self, out: &mut Out<'_>) {
        self.datagrams.clear();
        self.t.finish(out)
    }
    fn counters(&self) -> (usize, u64, u64) {
        (self.t.keys(), self.t.evictions(), self.t.alerts())
    }
}

impl Fragments {
    fn record(
        &mut self,
        cx: &PacketCtx<'_>,
        src: IpAddr,
        dst: IpAddr,
        kind: Option<usize>,
        out: &mut Out<'_>,
    ) {
        let key = key_for(self.track, src, dst);
        let (min_a, min_f, ts) = (self.min_anomalies, self.min_fragments, cx.ts);
        let is_frag = cx.dec.net.is_some_and(|n| n.frag.is_some());
        let ev = Ev { src: Some(src), dst: Some(dst), port: None };
        self.t.event(key, ts, ev, out, |w, start| {
            w.fragments += is_frag as u64;
            if let Some(k) = kind {
                w.anomalies += 1;
                w.kinds[k] += 1;
            }
            let flood = w.fragments >= min_f;
            if w.anomalies < min_a && !flood {
                return None;
            }
            let elapsed = secs(ts.saturating_sub(start));
            let mut stats = vec![
                stat("fragments", w.fragments as f64),
                stat("anomalies", w.anomalies as f64),
                stat("elapsed_s", elapsed),
            ];
            let mut seen = Vec::new();
            for (i, n) in w.kinds.iter().enumerate() {
                if *n > 0 {
                    stats.push(stat(FRAG_KINDS[i], *n as f64));
                    seen.push(FRAG_KINDS[i]);
                }
            }
            let message = if w.anomalies >= min_a {
                format!(
                    "fragment anomaly from {src} to {dst}: {} bad fragments ({}) among {} fragments in {elapsed:.3} s",
                    w.anomalies,
                    seen.join(", "),
                    w.fragments
                )
            } else {
                format!("fragment flood from {src} to {dst}: {} fragments in {elapsed:.3} s", w.fragments)
            };
            Some(Fire {
                first_ts: start,
                count: w.fragments.max(w.anomalies),
                srcs: vec![src],
                dsts: vec![dst],
                ports: vec![],
                stats,
                message,
            })
        });
    }
}
