//! IP fragment attribution: which flow (transport) each datagram belongs to, and the
//! reassembly of a transport header split over tiny fragments.

use super::hash::FxHashMap;
use netrec_format::Tunnel;
use netrec_format::decode::{IcmpInfo, NetLayer, TcpInfo, Transport, UdpInfo};
use netrec_format::ipproto;
use std::collections::VecDeque;
use std::net::IpAddr;

/// Bytes of transport header kept per datagram (a TCP header with options fits).
pub(crate) const HDR_CAP: usize = 64;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct FragKey {
    src: u128,
    dst: u128,
    id: u32,
    proto: u8,
    v6: bool,
    vlan: u16,
    tunnel: u32,
}

impl FragKey {
    pub fn new(net: &NetLayer, id: u32, vlan: u16, tunnel: u32) -> FragKey {
        let bits = |ip: IpAddr| match ip {
            IpAddr::V4(v) => (u128::from(u32::from(v)), false),
            IpAddr::V6(v) => (u128::from(v), true),
        };
        let (src, v6) = bits(net.src);
        let (dst, _) = bits(net.dst);
        FragKey { src, dst, id, proto: net.proto, v6, vlan, tunnel }
    }
}

/// Counters of fragments held until their datagram's transport header is complete.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Held {
    pub packets: u64,
    pub bytes: u64,
    pub payload: u64,
    pub malformed: u64,
    pub first_ns: u64,
    pub last_ns: u64,
}

impl Held {
    pub fn add(&mut self, ts: u64, wire: u64, payload: u64, malformed: bool) {
        if self.packets == 0 {
            self.first_ns = ts;
        }
        self.packets += 1;
        self.bytes += wire;
        self.payload += payload;
        self.malformed += u64::from(malformed);
        self.last_ns = self.last_ns.max(ts);
    }
}

#[derive(Clone, Copy, Debug)]
pub(crate) enum FragState {
    /// The first fragment was decoded: later fragments use its transport.
    Known(Transport),
    /// The first fragment was too short for the transport header: collect its bytes.
    Pending { buf: [u8; HDR_CAP], mask: u64, held: Held },
}

#[derive(Clone, Copy, Debug)]
pub(crate) struct FragEntry {
    generation: u64,
    pub created_ns: u64,
    pub state: FragState,
    /// The first fragment's network layer (addresses, protocol) and encapsulation.
    pub net: NetLayer,
    pub vlan: u16,
    pub tunnel: Option<Tunnel>,
}

/// Bounded map of datagrams in flight, oldest evicted first.
#[derive(Debug)]
pub(crate) struct FragTable {
    map: FxHashMap<FragKey, FragEntry>,
    fifo: VecDeque<(FragKey, u64)>,
    next_gen: u64,
    cap: usize,
}

impl FragTable {
    pub fn new(cap: usize) -> FragTable {
        FragTable { map: FxHashMap::default(), fifo: VecDeque::new(), next_gen: 0, cap }
    }

    pub fn get_mut(&mut self, k: &FragKey) -> Option<&mut FragEntry> {
        self.map.get_mut(k)
    }

    /// Track a new datagram. Returns the entry evicted to make room, if any; when the
    /// table has no capacity at all the new entry itself is returned.
    pub fn insert(
        &mut self,
        k: FragKey,
        now: u64,
        state: FragState,
        net: NetLayer,
        vlan: u16,
        tunnel: Option<Tunnel>,
    ) -> Option<FragEntry> {
        let generation = self.next_gen;
        self.next_gen += 1;
        let entry = FragEntry { generation, created_ns: now, state, net, vlan, tunnel };
        if self.cap == 0 {
            return Some(entry);
        }
        let mut evicted = None;
        if !self.map.contains_key(&k) && self.map.len() >= self.cap {
            evicted = self.pop_front();
        }
        self.map.insert(k, entry);
        self.fifo.push_back((k, generation));
        evicted
    }

    /// Remove the oldest live entry.
    fn pop_front(&mut self) -> Option<FragEntry> {
        while let Some((k, generation)) = self.fifo.pop_front() {
            if self.map.get(&k).is_some_and(|e| e.generation == generation) {
                return self.map.remove(&k);
            }
        }
        None
    }

    /// Remove the oldest entry if it was created more than `timeout` before `now`.
    pub fn pop_expired(&mut self, now: u64, timeout: u64) -> Option<FragEntry> {
        while let Some(&(k, generation)) = self.fifo.front() {
            match self.map.get(&k) {
                Some(e) if e.generation == generation => {
                    if now.saturating_sub(e.created_ns) <= timeout {
                        return None;
                    }
                    self.fifo.pop_front();
                    return self.map.remove(&k);
                }
                _ => {
                    self.fifo.pop_front();
                }
            }
        }
        None
    }

    /// Remove every entry, oldest first.
    pub fn pop_any(&mut self) -> Option<FragEntry> {
        self.pop_front()
    }
}

/// The fragment's IP payload bytes as captured.
pub(crate) fn fragment_payload<'a>(data: &'a [u8], net: &NetLayer) -> &'a [u8] {
    let start = net.offset as usize + net.header_len as usize;
    let stated = (net.total_len as usize).saturating_sub(net.header_len as usize);
    let avail = data.get(start..).unwrap_or(&[]);
    &avail[..avail.len().min(stated)]
}

/// Copy the part of a fragment at byte `offset` of its datagram that falls in the
/// first HDR_CAP bytes.
pub(crate) fn collect(buf: &mut [u8; HDR_CAP], mask: &mut u64, offset: u32, bytes: &[u8]) {
    let off = offset as usize;
    if off >= HDR_CAP {
        return;
    }
    let n = bytes.len().min(HDR_CAP - off);
    buf[off..off + n].copy_from_slice(&bytes[..n]);
    for i in off..off + n {
        *mask |= 1u64 << i;
    }
}

fn covered(mask: u64, n: usize) -> bool {
    let want = if n >= 64 { u64::MAX } else { (1u64 << n) - 1 };
    mask & want == want
}

fn be16(b: &[u8], i: usize) -> u16 {
    u16::from_be_bytes([b[i], b[i + 1]])
}
fn be32(b: &[u8], i: usize) -> u32 {
    u32::from_be_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]])
}

/// Whether a first fragment of this protocol without a decoded transport is worth
/// reassembling.
pub(crate) fn reassemblable(proto: u8) -> bool {
    matches!(proto, ipproto::TCP | ipproto::UDP | ipproto::ICMP | ipproto::ICMPV6)
}

/// Parse the transport header once enough leading bytes are present.
pub(crate) fn parse(proto: u8, buf: &[u8; HDR_CAP], mask: u64) -> Option<Transport> {
    match proto {
        ipproto::TCP if covered(mask, 20) => {
            let header_len = (buf[12] >> 4) * 4;
            let mut t = TcpInfo {
                src_port: be16(buf, 0),
                dst_port: be16(buf, 2),
                seq: be32(buf, 4),
                ack: be32(buf, 8),
                flags: buf[13],
                ns: buf[12] & 1 != 0,
                window: be16(buf, 14),
                header_len,
                ..TcpInfo::default()
            };
            let hl = header_len as usize;
            if hl > 20 && hl <= HDR_CAP && covered(mask, hl) {
                tcp_options(&buf[20..hl], &mut t);
            }
            Some(Transport::Tcp(t))
        }
        ipproto::UDP if covered(mask, 8) => Some(Transport::Udp(UdpInfo {
            src_port: be16(buf, 0),
            dst_port: be16(buf, 2),
            length: be16(buf, 4),
        })),
        ipproto::ICMP | ipproto::ICMPV6 if covered(mask, 8) => {
            let (icmp_type, code) = (buf[0], buf[1]);
            let echo = matches!((proto, icmp_type), (ipproto::ICMP, 0 | 8) | (ipproto::ICMPV6, 128 | 129));
            let (ident, seq) = if echo { (be16(buf, 4), be16(buf, 6)) } else { (0, 0) };
            let i = IcmpInfo { icmp_type, code, ident, seq };
            Some(if proto == ipproto::ICMP { Transport::Icmp(i) } else { Transport::Icmpv6(i) })
        }
        _ => None,
    }
}

fn tcp_options(mut o: &[u8], t: &mut TcpInfo) {
    while let Some((&kind, rest)) = o.split_first() {
        match kind {
            0 => break,
            1 => o = rest,
            _ => {
                let Some(&len) = rest.first() else { break };
                let len = len as usize;
                if len < 2 || len > o.len() {
                    break;
                }
                let body = &o[2..len];
                match (kind, body.len()) {
                    (2, 2) => t.mss = Some(be16(body, 0)),
                    (3, 1) => t.wscale = Some(body[0]),
                    (4, 0) => t.sack_permitted = true,
                    _ => {}
                }
                o = &o[len..];
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tcp_header_needs_20_bytes_from_any_fragments() {
        let mut hdr = [0u8; 24];
        hdr[0..2].copy_from_slice(&12345u16.to_be_bytes());
        hdr[2..4].copy_from_slice(&80u16.to_be_bytes());
        hdr[4..8].copy_from_slice(&1000u32.to_be_bytes());
        hdr[12] = 6 << 4;
        hdr[13] = 0x02;
        hdr[14..16].copy_from_slice(&8192u16.to_be_bytes());
        hdr[20..24].copy_from_slice(&[2, 4, 0x05, 0xb4]);
        let (mut buf, mut mask) = ([0u8; HDR_CAP], 0u64);
        collect(&mut buf, &mut mask, 0, &hdr[..16]);
        assert_eq!(parse(ipproto::TCP, &buf, mask), None);
        collect(&mut buf, &mut mask, 16, &hdr[16..]);
        let Some(Transport::Tcp(t)) = parse(ipproto::TCP, &buf, mask) else { panic!("not parsed") };
        assert_eq!((t.src_port, t.dst_port, t.seq, t.flags, t.window), (12345, 80, 1000, 0x02, 8192));
        assert_eq!(t.mss, Some(1460));
    }

    #[test]
    fn collect_ignores_bytes_past_cap() {
        let (mut buf, mut mask) = ([0u8; HDR_CAP], 0u64);
        collect(&mut buf, &mut mask, 60, &[1; 10]);
        assert_eq!(mask, 0xF << 60);
        collect(&mut buf, &mut mask, 200, &[1; 10]);
        assert_eq!(mask, 0xF << 60);
    }
}
