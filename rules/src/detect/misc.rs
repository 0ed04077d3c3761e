//! brute_force, dns_tunnel and blocklist.

use super::{
    Counter, Detector, Distinct, Ev, Fire, Key, Out, PacketCtx, Tracker, Window, secs, stat, tracker_common,
};
use crate::dns::{self, qtype};
use crate::flow::FlowDir;
use crate::netlist::NetSet;
use crate::ruleset::{Rule, Track};
use netrec_format::decode::{Transport, tcp_flags as F};
use std::net::IpAddr;

/// brute_force: many connections from one source to one login service. A connection is
/// a completed handshake when the flow table is present (a SYN without it), so SYN
/// scans and floods never count.
#[derive(Debug)]
pub(crate) struct BruteForce {
    t: Tracker<Counter>,
    track: Track,
    min: u64,
    ports: Vec<u16>,
}

impl BruteForce {
    pub fn new(rule: &Rule, max_keys: usize) -> BruteForce {
        let mut ports = rule.ports("ports").to_vec();
        ports.sort_unstable();
        BruteForce {
            t: Tracker::new(rule, max_keys, |_| Counter::default()),
            track: rule.track,
            min: rule.int("min_connections"),
            ports,
        }
    }
    fn connection(&self, cx: &PacketCtx<'_>) -> Option<(IpAddr, IpAddr, u16)> {
        match cx.flow {
            Some(f) => {
                if !(f.handshake_done_now && f.dir == FlowDir::Fwd) {
                    return None;
                }
                let k = f.key();
                (k.proto == 6).then_some((k.src_ip, k.dst_ip, k.dst_port))
            }
            None => {
                let net = cx.dec.net?;
                match cx.transport() {
                    Transport::Tcp(t) if t.flags & (F::SYN | F::ACK | F::RST) == F::SYN => {
                        Some((net.src, net.dst, t.dst_port))
                    }
                    _ => None,
                }
            }
        }
        .filter(|c| self.ports.binary_search(&c.2).is_ok())
    }
}

impl Detector for BruteForce {
    fn on_packet(&mut self, cx: &PacketCtx<'_>, out: &mut Out<'_>) {
        let Some((src, dst, port)) = self.connection(cx) else { return };
        let key = match self.track {
            Track::BySrc => Key::Ip(src),
            _ => Key::Service(src, dst, port),
        };
        let (min, ts) = (self.min, cx.ts);
        let ev = Ev { src: Some(src), dst: Some(dst), port: Some(port) };
        self.t.event(key, ts, ev, out, |w, start| {
            w.n += 1;
            if w.n < min {
                return None;
            }
            let elapsed = secs(ts.saturating_sub(start));
            Some(Fire {
                first_ts: start,
                count: w.n,
                srcs: vec![src],
                dsts: vec![dst],
                ports: vec![port],
                stats: vec![stat("connections", w.n as f64), stat("elapsed_s", elapsed)],
                message: format!(
                    "possible brute force from {src} on {dst}:{port}: {} connections in {elapsed:.3} s",
                    w.n
                ),
            })
        });
    }
    tracker_common!();
}

#[derive(Debug)]
pub(crate) struct DnsWin {
    domain: String,
    queries: u64,
    names: Distinct<u64>,
    sum_len: u64,
    max_len: u64,
    sum_entropy: f64,
    /// TXT, NULL, CNAME, MX
    types: [u64; 4],
}

impl Window for DnsWin {
    fn reset(&mut self) {
        // Cleared too: a reused slot may belong to another domain.
        self.domain.clear();
        self.queries = 0;
        self.names.clear();
        self.sum_len = 0;
        self.max_len = 0;
        self.sum_entropy = 0.0;
        self.types = [0; 4];
    }
}

/// dns_tunnel: many distinct long or random names under one registered domain from one
/// client (keyed by client and domain).
#[derive(Debug)]
pub(crate) struct DnsTunnel {
    t: Tracker<DnsWin>,
    min_unique: u64,
    min_len: f64,
    min_entropy: f64,
}

fn hash64(b: &[u8]) -> u64 {
    // FNV-1a: stable across runs and platforms (the key order must be deterministic).
    let mut h: u64 = 0xcbf29ce484222325;
    for &x in b {
        h ^= x as u64;
        h = h.wrapping_mul(0x100000001b3);
    }
    h
}

impl DnsTunnel {
    pub fn new(rule: &Rule, max_keys: usize) -> DnsTunnel {
        DnsTunnel {
            t: Tracker::new(rule, max_keys, |r| DnsWin {
                domain: String::new(),
                queries: 0,
                names: Distinct::new(r.int("min_unique_names") as usize),
                sum_len: 0,
                max_len: 0,
                sum_entropy: 0.0,
                types: [0; 4],
            }),
            min_unique: rule.int("min_unique_names"),
            min_len: rule.float("min_mean_name_len"),
            min_entropy: rule.float("min_mean_entropy"),
        }
    }
}

impl Detector for DnsTunnel {
    fn on_packet(&mut self, cx: &PacketCtx<'_>, out: &mut Out<'_>) {
        let Some(net) = cx.dec.net else { return };
        let Transport::Udp(u) = cx.transport() else { return };
        if u.dst_port != 53 {
            return;
        }
        let Some(q) = dns::parse_query(cx.payload()) else { return };
        let name = q.name();
        let reg = q.registered_domain();
        let sub = name.get(..name.len().saturating_sub(reg.len() + 1)).unwrap_or(&[]);
        let ent = dns::entropy(sub);
        let name_hash = hash64(name);
        let (src, dst, ts) = (net.src, net.dst, cx.ts);
        let (min_u, min_len, min_ent) = (self.min_unique, self.min_len, self.min_entropy);
        let ty = match q.qtype {
            qtype::TXT => Some(0),
            qtype::NULL => Some(1),
            qtype::CNAME => Some(2),
            qtype::MX => Some(3),
            _ => None,
        };
        let ev = Ev { src: Some(src), dst: Some(dst), port: Some(53) };
        self.t.event(Key::Domain(src, hash64(reg)), ts, ev, out, |w, start| {
            if w.domain.is_empty() {
                w.domain = if reg.is_empty() {
                    "names without a registered domain".to_string()
                } else {
                    String::from_utf8_lossy(reg).into_owned()
                };
            }
            w.queries += 1;
            w.names.insert(name_hash);
            w.sum_len += name.len() as u64;
            w.max_len = w.max_len.max(name.len() as u64);
            w.sum_entropy += ent;
            if let Some(i) = ty {
                w.types[i] += 1;
            }
            let unique = w.names.len();
            let n = w.queries as f64;
            let (mean_len, mean_ent) = (w.sum_len as f64 / n, w.sum_entropy / n);
            if unique < min_u || (mean_len < min_len && mean_ent < min_ent) {
                return None;
            }
            let elapsed = secs(ts.saturating_sub(start));
            let t = &w.types;
            Some(Fire {
                first_ts: start,
                count: w.queries,
                srcs: vec![src],
                dsts: vec![dst],
                ports: vec![53],
                stats: vec![
                    stat("queries", n),
                    stat("unique_names", unique as f64),
                    stat("mean_name_len", mean_len),
                    stat("max_name_len", w.max_len as f64),
                    stat("mean_entropy", mean_ent),
                    stat("txt", t[0] as f64),
                    stat("null", t[1] as f64),
                    stat("cname", t[2] as f64),
                    stat("mx", t[3] as f64),
                    stat("elapsed_s", elapsed),
                ],
                message: format!(
                    "possible DNS tunnel from {src} via {}: {unique} distinct names in {elapsed:.3} s, mean length {mean_len:.1}, entropy {mean_ent:.2} bits/char, TXT/NULL/CNAME/MX {}",
                    w.domain,
                    t.iter().sum::<u64>()
                ),
            })
        });
    }
    tracker_common!();
}

#[derive(Debug)]
pub(crate) struct HitWin {
    count: u64,
    src_hits: u64,
    dst_hits: u64,
    port_hits: u64,
}

impl Window for HitWin {
    fn reset(&mut self) {
        *self = HitWin { count: 0, src_hits: 0, dst_hits: 0, port_hits: 0 };
    }
}

/// blocklist: traffic from/to listed networks or to listed ports.
#[derive(Debug)]
pub(crate) struct Blocklist {
    t: Tracker<HitWin>,
    track: Track,
    nets: NetSet,
    ports: Vec<u16>,
    min: u64,
}

impl Blocklist {
    pub fn new(rule: &Rule, max_keys: usize) -> Blocklist {
        let mut ports = rule.ports("ports").to_vec();
        ports.sort_unstable();
        Blocklist {
            t: Tracker::new(rule, max_keys, |_| HitWin { count: 0, src_hits: 0, dst_hits: 0, port_hits: 0 }),
            track: rule.track,
            nets: NetSet::new(rule.nets("ips")),
            ports,
            min: rule.int("min_packets"),
        }
    }
}

impl Detector for Blocklist {
    fn on_packet(&mut self, cx: &PacketCtx<'_>, out: &mut Out<'_>) {
        let Some(net) = cx.dec.net else { return };
        // A reply belongs to its conversation's incident: orient every packet initiator ->
        // responder when the flow table knows the direction, so one connection to a listed
        // host is one hit (not one per direction) and a listed service port matches both ways.
        let (src, dst, ports) = match cx.flow {
            Some(f) if f.dir == FlowDir::Rev => (net.dst, net.src, cx.dec.ports().map(|(a, b)| (b, a))),
            _ => (net.src, net.dst, cx.dec.ports()),
        };
        let s = !self.nets.is_empty() && self.nets.contains(src);
        let d = !self.nets.is_empty() && self.nets.contains(dst);
        let p = !self.ports.is_empty() && ports.is_some_and(|(_, dp)| self.ports.binary_search(&dp).is_ok());
        if !(s || d || p) {
            return;
        }
        let dp = ports.map_or(0, |p| p.1);
        let key = Key::tracked(self.track, net.proto, src, dst, ports.unwrap_or((0, 0)));
        let (min, ts) = (self.min, cx.ts);
        let ev = Ev { src: Some(src), dst: Some(dst), port: ports.map(|p| p.1) };
        self.t.event(key, ts, ev, out, |w, start| {
            w.count += 1;
            w.src_hits += s as u64;
            w.dst_hits += d as u64;
            w.port_hits += p as u64;
            if w.count < min {
                return None;
            }
            let what = if s {
                format!("blocklisted source {src}")
            } else if d {
                format!("blocklisted destination {dst}")
            } else {
                format!("blocklisted port {dp}")
            };
            Some(Fire {
                first_ts: start,
                count: w.count,
                srcs: vec![src],
                dsts: vec![dst],
                ports: ports.map(|p| p.1).into_iter().collect(),
                stats: vec![
                    stat("packets", w.count as f64),
                    stat("src_hits", w.src_hits as f64),
                    stat("dst_hits", w.dst_hits as f64),
                    stat("port_hits", w.port_hits as f64),
                    stat("elapsed_s", secs(ts.saturating_sub(start))),
                ],
                message: format!("{what}: {} packets from {src} to {dst}", w.count),
            })
        });
    }
    tracker_common!();
}
