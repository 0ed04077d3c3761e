//! Connection simulator. The capture point is a tap next to the "client" side: a packet the
//! server sends in reaction to the client is seen one RTT later, a client reaction almost at once.

use crate::frame::{self, IpHdr, L2, L4, Payload, tcpf};
use crate::pcap::PcapWriter;
use crate::rng::Rng;
use std::io::{self, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// 2026-01-01T00:00:00Z, the time base of every generated capture.
pub const T0: u64 = 1_767_225_600 * NS;
pub const NS: u64 = 1_000_000_000;
pub const MS: u64 = 1_000_000;
pub const US: u64 = 1_000;

/// MAC of the default gateway: every off-link host is seen behind it.
pub const GW_MAC: [u8; 6] = [0x02, 0x77, 0x00, 0x00, 0x00, 0x01];

pub fn v4(a: u8, b: u8, c: u8, d: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(a, b, c, d))
}

pub fn v6(segs: [u16; 8]) -> IpAddr {
    IpAddr::V6(Ipv6Addr::new(segs[0], segs[1], segs[2], segs[3], segs[4], segs[5], segs[6], segs[7]))
}

#[derive(Clone, Copy, Debug)]
pub struct Host {
    pub ip: IpAddr,
    pub mac: [u8; 6],
    /// TTL / hop limit as seen at the tap.
    pub ttl: u8,
    pub vlan: Option<u16>,
}

impl Host {
    /// On-link host: MAC derived from the address, TTL 64.
    pub fn local(ip: IpAddr) -> Host {
        let o = match ip {
            IpAddr::V4(a) => a.octets(),
            IpAddr::V6(a) => {
                let o = a.octets();
                [o[12], o[13], o[14], o[15]]
            }
        };
        let tag = if ip.is_ipv4() { 0x77 } else { 0x76 };
        Host { ip, mac: [0x02, tag, o[0], o[1], o[2], o[3]], ttl: 64, vlan: None }
    }

    /// Off-link host some hops away: behind the gateway MAC.
    pub fn remote(ip: IpAddr, ttl: u8) -> Host {
        Host { ip, mac: GW_MAC, ttl, vlan: None }
    }

    pub fn with_vlan(mut self, vid: u16) -> Host {
        self.vlan = Some(vid);
        self
    }
}

pub fn l2(from: &Host, to: &Host) -> L2 {
    L2 { src: from.mac, dst: to.mac, vlan: from.vlan.or(to.vlan) }
}

struct Rec {
    ts: u64,
    ord: u32,
    orig: u32,
    data: Box<[u8]>,
}

/// Packets of a scenario in any order; written sorted by time (ties keep insertion order).
pub struct Trace {
    recs: Vec<Rec>,
    snaplen: usize,
    /// Scratch frame buffer for [`Trace::emit`].
    pub buf: Vec<u8>,
}

impl std::fmt::Debug for Trace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Trace").field("packets", &self.recs.len()).field("snaplen", &self.snaplen).finish()
    }
}

impl Trace {
    /// `snaplen == 0`: keep whole frames.
    pub fn new(snaplen: u32) -> Trace {
        let snaplen = if snaplen == 0 { 262_144 } else { snaplen as usize };
        Trace { recs: Vec::new(), snaplen, buf: Vec::with_capacity(2048) }
    }

    pub fn len(&self) -> usize {
        self.recs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.recs.is_empty()
    }

    pub fn push(&mut self, ts: u64, frame: &[u8]) {
        let incl = frame.len().min(self.snaplen);
        let ord = self.recs.len() as u32;
        self.recs.push(Rec { ts, ord, orig: frame.len() as u32, data: frame[..incl].into() });
    }

    /// Build a frame in the scratch buffer with `f`, then record it at `ts`.
    pub fn emit(&mut self, ts: u64, f: impl FnOnce(&mut Vec<u8>)) {
        let mut buf = std::mem::take(&mut self.buf);
        f(&mut buf);
        self.push(ts, &buf);
        self.buf = buf;
    }

    /// Build an IP packet between two hosts.
    pub fn ip(&mut self, ts: u64, from: &Host, to: &Host, id: u16, l4: &L4<'_>) {
        let ip = IpHdr::new(from.ip, to.ip, from.ttl, id);
        self.emit(ts, |b| {
            frame::build(b, &l2(from, to), &ip, l4);
        });
    }

    pub fn write_to<W: Write>(mut self, w: W) -> io::Result<W> {
        self.recs.sort_by_key(|r| (r.ts, r.ord));
        let mut pw = PcapWriter::new(w, self.snaplen as u32)?;
        for r in &self.recs {
            pw.write_record(r.ts, &r.data, r.orig)?;
        }
        Ok(pw.into_inner())
    }

    pub fn into_bytes(self) -> Vec<u8> {
        // Writing into a Vec cannot fail.
        self.write_to(Vec::new()).unwrap_or_default()
    }
}

/// What a data transfer carries.
#[derive(Clone, Copy, Debug)]
pub enum Content<'a> {
    Bytes(&'a [u8]),
    /// `n` random bytes (seeded from the connection).
    Random(usize),
}

/// One TCP connection with consistent sequence/ack numbers and IP ids on both sides.
#[derive(Debug)]
pub struct TcpConn {
    pub c: Host,
    pub s: Host,
    pub cport: u16,
    pub sport: u16,
    /// Next sequence number each side will send.
    pub c_nxt: u32,
    pub s_nxt: u32,
    c_id: u16,
    s_id: u16,
    pub rtt: u64,
    pub mss: usize,
    /// Bottleneck rate for spacing back-to-back segments (bytes per second).
    pub rate: u64,
    /// Probability that a data segment is retransmitted (after an RTO).
    pub loss: f64,
    pub rng: Rng,
}

impl TcpConn {
    pub fn new(rng: &mut Rng, c: Host, cport: u16, s: Host, sport: u16, rtt: u64) -> TcpConn {
        let mut rng = rng.fork();
        let v6 = c.ip.is_ipv6();
        TcpConn {
            c,
            s,
            cport,
            sport,
            c_nxt: rng.next_u32(),
            s_nxt: rng.next_u32(),
            c_id: rng.u16(),
            s_id: rng.u16(),
            rtt,
            mss: if v6 { 1440 } else { 1460 },
            rate: 12_500_000,
            loss: 0.0,
            rng,
        }
    }

    /// Build one segment with explicit numbers; does not advance state. Returns the frame length.
    #[allow(clippy::too_many_arguments)]
    pub fn frame_at(
        &mut self,
        buf: &mut Vec<u8>,
        from_client: bool,
        flags: u8,
        seq: u32,
        ack: u32,
        payload: Payload<'_>,
        opts: &[u8],
    ) {
        let (from, to, sp, dp, win) = if from_client {
            self.c_id = self.c_id.wrapping_add(1);
            (&self.c, &self.s, self.cport, self.sport, 502)
        } else {
            self.s_id = self.s_id.wrapping_add(1);
            (&self.s, &self.c, self.sport, self.cport, 501)
        };
        let win = if flags & tcpf::SYN != 0 { if from_client { 64240 } else { 65160 } } else { win };
        let id = if from_client { self.c_id } else { self.s_id };
        let ip = IpHdr::new(from.ip, to.ip, from.ttl, id);
        let ack = if flags & tcpf::ACK != 0 { ack } else { 0 };
        let l4 = L4::Tcp { sport: sp, dport: dp, seq, ack, flags, window: win, options: opts, payload };
        frame::build(buf, &l2(from, to), &ip, &l4);
    }

    /// Build the next segment from one side and advance its sequence number.
    pub fn frame(&mut self, buf: &mut Vec<u8>, from_client: bool, flags: u8, payload: Payload<'_>) {
        let (seq, ack) = if from_client { (self.c_nxt, self.s_nxt) } else { (self.s_nxt, self.c_nxt) };
        let opts: &[u8] = if flags & tcpf::SYN != 0 {
            if self.c.ip.is_ipv6() { &frame::SYN_OPTS_V6 } else { &frame::SYN_OPTS }
        } else {
            &[]
        };
        self.frame_at(buf, from_client, flags, seq, ack, payload, opts);
        let adv = payload.len() as u32 + (flags & tcpf::SYN != 0) as u32 + (flags & tcpf::FIN != 0) as u32;
        if from_client {
            self.c_nxt = self.c_nxt.wrapping_add(adv);
        } else {
            self.s_nxt = self.s_nxt.wrapping_add(adv);
        }
    }

    /// Delay until the other side's reaction to a packet sent by `from_client` is seen. The tap
    /// sits on our network's edge: next to the client, unless the client is the remote side
    /// (an inbound connection to a local server), where the far end's reactions take an RTT.
    fn react(&mut self, from_client: bool) -> u64 {
        let inbound = self.c.mac == GW_MAC && self.s.mac != GW_MAC;
        if from_client != inbound {
            self.rtt + self.rng.below(self.rtt / 10 + 1)
        } else {
            20 * US + self.rng.below(200 * US)
        }
    }

    fn seg(&mut self, tr: &mut Trace, t: u64, from_client: bool, flags: u8, payload: Payload<'_>) {
        let mut buf = std::mem::take(&mut tr.buf);
        self.frame(&mut buf, from_client, flags, payload);
        tr.push(t, &buf);
        tr.buf = buf;
    }

    /// SYN, SYN/ACK, ACK. Returns the time of the final ACK.
    pub fn open(&mut self, tr: &mut Trace, t: u64) -> u64 {
        self.seg(tr, t, true, tcpf::SYN, Payload::Empty);
        let t1 = t + self.react(true);
        self.seg(tr, t1, false, tcpf::SYN | tcpf::ACK, Payload::Empty);
        let t2 = t1 + self.react(false);
        self.seg(tr, t2, true, tcpf::ACK, Payload::Empty);
        t2
    }

    /// SYN answered by RST/ACK (closed port). Returns the time of the RST.
    pub fn refused(&mut self, tr: &mut Trace, t: u64) -> u64 {
        self.seg(tr, t, true, tcpf::SYN, Payload::Empty);
        let t1 = t + self.react(true);
        self.seg(tr, t1, false, tcpf::RST | tcpf::ACK, Payload::Empty);
        t1
    }

    /// Send `content` from one side in MSS-sized segments (PSH on the last); the receiver ACKs
    /// every second segment and the last. Returns when the last ACK is seen.
    pub fn send(&mut self, tr: &mut Trace, mut t: u64, from_client: bool, content: Content<'_>) -> u64 {
        let total = match content {
            Content::Bytes(b) => b.len(),
            Content::Random(n) => n,
        };
        let mut off = 0;
        let mut n = 0u32;
        let mut last_ack = t;
        let mut buf = std::mem::take(&mut tr.buf);
        while off < total {
            let len = (total - off).min(self.mss);
            let last = off + len == total;
            let seed = self.rng.next_u64();
            let payload = match content {
                Content::Bytes(b) => Payload::Bytes(&b[off..off + len]),
                Content::Random(_) => Payload::Random { len, seed },
            };
            let flags = tcpf::ACK | if last { tcpf::PSH } else { 0 };
            let (seq, ack) = if from_client { (self.c_nxt, self.s_nxt) } else { (self.s_nxt, self.c_nxt) };
            self.frame(&mut buf, from_client, flags, payload);
            tr.push(t, &buf);
            if self.loss > 0.0 && self.rng.chance(self.loss) {
                let rto = (self.rtt * 3).max(200 * MS);
                self.frame_at(&mut buf, from_client, flags, seq, ack, payload, &[]);
                tr.push(t + rto, &buf);
            }
            n += 1;
            off += len;
            if n.is_multiple_of(2) || last {
                let ta = t + self.react(from_client);
                let (rseq, rack) =
                    if from_client { (self.s_nxt, self.c_nxt) } else { (self.c_nxt, self.s_nxt) };
                self.frame_at(&mut buf, !from_client, tcpf::ACK, rseq, rack, Payload::Empty, &[]);
                tr.push(ta, &buf);
                last_ack = last_ack.max(ta);
            }
            t += ((len as u64 + 54) * NS / self.rate).max(1);
        }
        tr.buf = buf;
        last_ack
    }

    /// FIN/ACK from `from_client`, FIN/ACK back, final ACK. Returns the time of the last ACK.
    pub fn close(&mut self, tr: &mut Trace, t: u64, from_client: bool) -> u64 {
        self.seg(tr, t, from_client, tcpf::FIN | tcpf::ACK, Payload::Empty);
        let t1 = t + self.react(from_client);
        self.seg(tr, t1, !from_client, tcpf::FIN | tcpf::ACK, Payload::Empty);
        let t2 = t1 + self.react(!from_client);
        self.seg(tr, t2, from_client, tcpf::ACK, Payload::Empty);
        t2
    }

    /// An abortive close.
    pub fn reset(&mut self, tr: &mut Trace, t: u64, from_client: bool) {
        self.seg(tr, t, from_client, tcpf::RST | tcpf::ACK, Payload::Empty);
    }

    /// Raw segment from one side (for scans and anomalies).
    pub fn raw(&mut self, tr: &mut Trace, t: u64, from_client: bool, flags: u8, payload: Payload<'_>) {
        self.seg(tr, t, from_client, flags, payload);
    }

    /// Request/response exchange: handshake, request, response, close by the client.
    pub fn exchange(&mut self, tr: &mut Trace, t: u64, req: Content<'_>, resp: Content<'_>) -> u64 {
        let t = self.open(tr, t);
        let t = self.send(tr, t + 100 * US, true, req);
        let think = self.rng.range(MS, 20 * MS);
        let t = self.send(tr, t + think, false, resp);
        let linger = self.rng.range(MS, 50 * MS);
        self.close(tr, t + linger, true)
    }
}

/// A DNS query and (optionally) its response over UDP. Returns the response time.
#[allow(clippy::too_many_arguments)]
pub fn udp_exchange(
    tr: &mut Trace,
    rng: &mut Rng,
    t: u64,
    c: &Host,
    cport: u16,
    s: &Host,
    sport: u16,
    req: &[u8],
    resp: Option<&[u8]>,
    rtt: u64,
) -> u64 {
    tr.ip(t, c, s, rng.u16(), &L4::Udp { sport: cport, dport: sport, payload: Payload::Bytes(req) });
    let t1 = t + rtt;
    if let Some(r) = resp {
        tr.ip(t1, s, c, rng.u16(), &L4::Udp { sport, dport: cport, payload: Payload::Bytes(r) });
    }
    t1
}

/// ICMP (or ICMPv6) echo request and optional reply with a 56-byte Linux ping payload.
#[allow(clippy::too_many_arguments)]
pub fn ping(tr: &mut Trace, rng: &mut Rng, t: u64, a: &Host, b: &Host, id: u16, seq: u16, rtt: Option<u64>) {
    let mut data = [0u8; 56];
    data[..8].copy_from_slice(&(t / NS).to_le_bytes());
    for (i, d) in data.iter_mut().enumerate().skip(16) {
        *d = i as u8;
    }
    let mut rest = [0u8; 4];
    rest[..2].copy_from_slice(&id.to_be_bytes());
    rest[2..].copy_from_slice(&seq.to_be_bytes());
    let v6 = a.ip.is_ipv6();
    let (req, rep) = if v6 { (128, 129) } else { (8, 0) };
    let mk = |ty| {
        if v6 {
            L4::Icmp6 { ty, code: 0, rest, payload: Payload::Bytes(&data) }
        } else {
            L4::Icmp { ty, code: 0, rest, payload: Payload::Bytes(&data) }
        }
    };
    tr.ip(t, a, b, rng.u16(), &mk(req));
    if let Some(rtt) = rtt {
        tr.ip(t + rtt, b, a, rng.u16(), &mk(rep));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tcp_fields(f: &[u8]) -> (u32, u32, u8, usize) {
        let l4 = 14 + 20;
        let seq = u32::from_be_bytes(f[l4 + 4..l4 + 8].try_into().unwrap());
        let ack = u32::from_be_bytes(f[l4 + 8..l4 + 12].try_into().unwrap());
        let off = (f[l4 + 12] >> 4) as usize * 4;
        (seq, ack, f[l4 + 13], f.len() - l4 - off)
    }

    #[test]
    fn connection_numbers_follow_tcp() {
        let mut rng = Rng::new(3);
        let c = Host::local(v4(10, 77, 4, 1));
        let s = Host::remote(v4(192, 0, 2, 1), 50);
        let mut conn = TcpConn::new(&mut rng, c, 40000, s, 80, 10 * MS);
        let mut tr = Trace::new(0);
        let t = conn.open(&mut tr, T0);
        let t = conn.send(&mut tr, t, true, Content::Bytes(&[7; 3000]));
        conn.close(&mut tr, t, true);
        let bytes = tr.into_bytes();
        let (_, recs) = crate::pcap::parse(&bytes).unwrap();
        let f: Vec<_> = recs.iter().map(|r| tcp_fields(r.1)).collect();
        let (isn_c, _, fl, _) = f[0];
        assert_eq!(fl, tcpf::SYN);
        let (isn_s, ack, fl, _) = f[1];
        assert_eq!((fl, ack), (tcpf::SYN | tcpf::ACK, isn_c.wrapping_add(1)));
        assert_eq!(f[2], (isn_c.wrapping_add(1), isn_s.wrapping_add(1), tcpf::ACK, 0));
        // 3000 bytes: 1460 + 1460 + 80, the server ACKs after the 2nd and the last.
        let data: Vec<_> = f.iter().filter(|x| x.3 > 0).collect();
        assert_eq!(data.iter().map(|x| x.3).collect::<Vec<_>>(), vec![1460, 1460, 80]);
        assert_eq!(data[1].0, isn_c.wrapping_add(1 + 1460));
        let server_acks: Vec<u32> = f
            .iter()
            .filter(|x| x.2 == tcpf::ACK && x.0 == isn_s.wrapping_add(1) && x.1 != isn_c.wrapping_add(1))
            .map(|x| x.1)
            .collect();
        assert_eq!(server_acks, vec![isn_c.wrapping_add(1 + 2920), isn_c.wrapping_add(1 + 3000)]);
        // FIN consumes one sequence number on each side.
        let last = f.last().unwrap();
        assert_eq!(*last, (isn_c.wrapping_add(3002), isn_s.wrapping_add(2), tcpf::ACK, 0));
    }
}
