//! signature: packets matching a header pattern (protocol, addresses, ports) and byte patterns in
//! their payload, in the manner of a Suricata/Snort rule's header plus `content` options.
//!
//! Only the captured payload is searched: a pcap usually has all of it, a recording the first
//! bytes of each packet up to the snaplen (the header records of `netrec record`).

use super::{Counter, Detector, Ev, Fire, Key, Out, PacketCtx, Tracker, secs, stat, tracker_common};
use crate::netlist::NetSet;
use crate::ruleset::{Rule, Track};
use memchr::memmem::Finder;
use netrec_format::decode::Transport;

/// Which transports a rule's `proto` admits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Proto {
    Any,
    Tcp,
    Udp,
    Icmp,
}

#[derive(Debug)]
pub(crate) struct Signature {
    t: Tracker<Counter>,
    track: Track,
    proto: Proto,
    src_nets: NetSet,
    dst_nets: NetSet,
    /// Sorted (the rule parser sorts and deduplicates ports).
    src_ports: Vec<u16>,
    dst_ports: Vec<u16>,
    /// One per content pattern (lowercased when `nocase`); all must occur.
    finders: Vec<Finder<'static>>,
    nocase: bool,
    offset: usize,
    /// 0: to the end of the payload.
    depth: usize,
    message: String,
    min: u64,
    /// The lowercased search window of a `nocase` rule (reused: no allocation per packet).
    folded: Vec<u8>,
}

impl Signature {
    pub fn new(rule: &Rule, max_keys: usize) -> Signature {
        let nocase = rule.bool("nocase");
        let finders = rule
            .patterns("content")
            .iter()
            .map(|p| Finder::new(&if nocase { p.to_ascii_lowercase() } else { p.clone() }).into_owned())
            .collect();
        Signature {
            t: Tracker::new(rule, max_keys, |_| Counter::default()),
            track: rule.track,
            proto: match rule.text("proto") {
                "tcp" => Proto::Tcp,
                "udp" => Proto::Udp,
                "icmp" => Proto::Icmp,
                _ => Proto::Any,
            },
            src_nets: NetSet::new(rule.nets("src_ips")),
            dst_nets: NetSet::new(rule.nets("dst_ips")),
            src_ports: rule.ports("src_ports").to_vec(),
            dst_ports: rule.ports("dst_ports").to_vec(),
            finders,
            nocase,
            offset: rule.int("offset") as usize,
            depth: rule.int("depth") as usize,
            message: rule.text("message").to_string(),
            min: rule.int("min_packets"),
            folded: Vec::new(),
        }
    }

    /// Every content pattern occurs in the captured payload's search window.
    fn payload_matches(&mut self, cx: &PacketCtx<'_>) -> bool {
        if self.finders.is_empty() {
            return true;
        }
        let data = cx.pkt.data;
        let start = (cx.dec.payload_offset as usize).min(data.len());
        let end = start.saturating_add(cx.dec.payload_len as usize).min(data.len());
        let payload = &data[start..end];
        let Some(mut window) = payload.get(self.offset..) else { return false };
        if self.depth > 0 {
            window = &window[..window.len().min(self.depth)];
        }
        let hay = if self.nocase {
            self.folded.clear();
            self.folded.extend(window.iter().map(u8::to_ascii_lowercase));
            &self.folded[..]
        } else {
            window
        };
        self.finders.iter().all(|f| f.find(hay).is_some())
    }
}

impl Detector for Signature {
    fn on_packet(&mut self, cx: &PacketCtx<'_>, out: &mut Out<'_>) {
        let Some(net) = cx.dec.net else { return };
        let transport = cx.transport();
        let proto_ok = match self.proto {
            Proto::Any => true,
            Proto::Tcp => matches!(transport, Transport::Tcp(_)),
            Proto::Udp => matches!(transport, Transport::Udp(_)),
            Proto::Icmp => matches!(transport, Transport::Icmp(_) | Transport::Icmpv6(_)),
        };
        if !proto_ok {
            return;
        }
        let ports = cx.dec.ports();
        let port_ok = |list: &[u16], p: Option<u16>| {
            list.is_empty() || p.is_some_and(|p| list.binary_search(&p).is_ok())
        };
        if !port_ok(&self.src_ports, ports.map(|p| p.0)) || !port_ok(&self.dst_ports, ports.map(|p| p.1)) {
            return;
        }
        if (!self.src_nets.is_empty() && !self.src_nets.contains(net.src))
            || (!self.dst_nets.is_empty() && !self.dst_nets.contains(net.dst))
        {
            return;
        }
        if !self.payload_matches(cx) {
            return;
        }
        let (src, dst) = (net.src, net.dst);
        let dp = ports.map_or(0, |p| p.1);
        let key = Key::tracked(self.track, net.proto, src, dst, ports.unwrap_or((0, 0)));
        let (min, ts) = (self.min, cx.ts);
        let what = if self.message.is_empty() { "signature matched" } else { self.message.as_str() };
        let ev = Ev { src: Some(src), dst: Some(dst), port: ports.map(|p| p.1) };
        self.t.event(key, ts, ev, out, |w, start| {
            w.n += 1;
            if w.n < min {
                return None;
            }
            let to = match ports {
                Some(_) => format!("{dst}:{dp}"),
                None => dst.to_string(),
            };
            Some(Fire {
                first_ts: start,
                count: w.n,
                srcs: vec![src],
                dsts: vec![dst],
                ports: ports.map(|p| p.1).into_iter().collect(),
                stats: vec![stat("packets", w.n as f64), stat("elapsed_s", secs(ts.saturating_sub(start)))],
                message: format!("{what}: {} packets from {src} to {to}", w.n),
            })
        });
    }
    tracker_common!();
}
