//! Frame builder: Ethernet (+802.1Q), IPv4/IPv6, TCP/UDP/ICMP/ICMPv6, ARP, with correct
//! lengths and checksums. Everything writes into a caller-owned buffer (no allocation per packet).

use crate::rng::Rng;
use std::net::IpAddr;

pub const ETH_IPV4: u16 = 0x0800;
pub const ETH_IPV6: u16 = 0x86dd;
pub const ETH_ARP: u16 = 0x0806;
pub const ETH_VLAN: u16 = 0x8100;

pub const PROTO_ICMP: u8 = 1;
pub const PROTO_TCP: u8 = 6;
pub const PROTO_UDP: u8 = 17;
pub const PROTO_ICMPV6: u8 = 58;

pub mod tcpf {
    pub const FIN: u8 = 0x01;
    pub const SYN: u8 = 0x02;
    pub const RST: u8 = 0x04;
    pub const PSH: u8 = 0x08;
    pub const ACK: u8 = 0x10;
    pub const URG: u8 = 0x20;
}

/// MSS 1460, NOP, WS 7, NOP, NOP, SACK-permitted: what a Linux client puts on a SYN (minus timestamps).
pub const SYN_OPTS: [u8; 12] = [2, 4, 0x05, 0xb4, 1, 3, 3, 7, 1, 1, 4, 2];
/// MSS 1440 (IPv6) variant.
pub const SYN_OPTS_V6: [u8; 12] = [2, 4, 0x05, 0xa0, 1, 3, 3, 7, 1, 1, 4, 2];

#[derive(Clone, Copy, Debug)]
pub struct L2 {
    pub src: [u8; 6],
    pub dst: [u8; 6],
    pub vlan: Option<u16>,
}

/// Network-layer fields. For IPv6 `id` becomes the low 16 bits of the flow label and the
/// fragment fields are ignored.
#[derive(Clone, Copy, Debug)]
pub struct IpHdr {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub ttl: u8,
    pub id: u16,
    pub df: bool,
    pub mf: bool,
    /// Fragment offset in 8-byte units.
    pub frag_off: u16,
    /// The "evil" reserved bit.
    pub reserved_flag: bool,
}

impl IpHdr {
    pub fn new(src: IpAddr, dst: IpAddr, ttl: u8, id: u16) -> Self {
        IpHdr { src, dst, ttl, id, df: true, mf: false, frag_off: 0, reserved_flag: false }
    }
}

#[derive(Clone, Copy, Debug)]
pub enum Payload<'a> {
    Empty,
    Bytes(&'a [u8]),
    /// `len` pseudo-random bytes from `seed` (full payload bytes without storing them).
    Random {
        len: usize,
        seed: u64,
    },
}

impl Payload<'_> {
    pub fn len(&self) -> usize {
        match self {
            Payload::Empty => 0,
            Payload::Bytes(b) => b.len(),
            Payload::Random { len, .. } => *len,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn append(&self, buf: &mut Vec<u8>) {
        match *self {
            Payload::Empty => {}
            Payload::Bytes(b) => buf.extend_from_slice(b),
            Payload::Random { len, seed } => {
                let start = buf.len();
                buf.resize(start + len, 0);
                Rng::new(seed).fill(&mut buf[start..]);
            }
        }
    }
}

#[derive(Clone, Copy, Debug)]
pub enum L4<'a> {
    Tcp {
        sport: u16,
        dport: u16,
        seq: u32,
        ack: u32,
        flags: u8,
        window: u16,
        options: &'a [u8],
        payload: Payload<'a>,
    },
    Udp {
        sport: u16,
        dport: u16,
        payload: Payload<'a>,
    },
    /// ICMPv4; `rest` is the 4 bytes after the checksum (id/seq, unused, ...).
    Icmp {
        ty: u8,
        code: u8,
        rest: [u8; 4],
        payload: Payload<'a>,
    },
    Icmp6 {
        ty: u8,
        code: u8,
        rest: [u8; 4],
        payload: Payload<'a>,
    },
}

impl L4<'_> {
    fn proto(&self, v6: bool) -> u8 {
        match self {
            L4::Tcp { .. } => PROTO_TCP,
            L4::Udp { .. } => PROTO_UDP,
            L4::Icmp { .. } if v6 => PROTO_ICMPV6,
            L4::Icmp { .. } => PROTO_ICMP,
            L4::Icmp6 { .. } => PROTO_ICMPV6,
        }
    }
}

fn put_l2(buf: &mut Vec<u8>, l2: &L2, ethertype: u16) {
    buf.extend_from_slice(&l2.dst);
    buf.extend_from_slice(&l2.src);
    if let Some(vid) = l2.vlan {
        buf.extend_from_slice(&ETH_VLAN.to_be_bytes());
        buf.extend_from_slice(&(vid & 0x0fff).to_be_bytes());
    }
    buf.extend_from_slice(&ethertype.to_be_bytes());
}

fn v6(a: IpAddr) -> [u8; 16] {
    match a {
        IpAddr::V4(a) => a.to_ipv6_mapped().octets(),
        IpAddr::V6(a) => a.octets(),
    }
}

/// Build a complete frame into `buf` (cleared first). Returns the L2 header length.
pub fn build(buf: &mut Vec<u8>, l2: &L2, ip: &IpHdr, l4: &L4<'_>) -> usize {
    buf.clear();
    // Mixed families are a caller bug; debug builds (the tests) catch it.
    debug_assert_eq!(ip.src.is_ipv6(), ip.dst.is_ipv6(), "mixed address families");
    let is_v6 = matches!((ip.src, ip.dst), (IpAddr::V6(_), _) | (_, IpAddr::V6(_)));
    put_l2(buf, l2, if is_v6 { ETH_IPV6 } else { ETH_IPV4 });
    let l3 = buf.len();
    buf.resize(l3 + if is_v6 { 40 } else { 20 }, 0);
    let l4_off = buf.len();
    let proto = l4.proto(is_v6);
    match *l4 {
        L4::Tcp { sport, dport, seq, ack, flags, window, options, payload } => {
            let opt_len = options.len().div_ceil(4) * 4;
            buf.extend_from_slice(&sport.to_be_bytes());
            buf.extend_from_slice(&dport.to_be_bytes());
            buf.extend_from_slice(&seq.to_be_bytes());
            buf.extend_from_slice(&ack.to_be_bytes());
            buf.push((((20 + opt_len) / 4) as u8) << 4);
            buf.push(flags);
            buf.extend_from_slice(&window.to_be_bytes());
            buf.extend_from_slice(&[0, 0, 0, 0]); // checksum, urgent pointer
            buf.extend_from_slice(options);
            buf.resize(buf.len() + opt_len - options.len(), 0); // EOL padding
            payload.append(buf);
        }
        L4::Udp { sport, dport, payload } => {
            buf.extend_from_slice(&sport.to_be_bytes());
            buf.extend_from_slice(&dport.to_be_bytes());
            buf.extend_from_slice(&[0, 0, 0, 0]);
            payload.append(buf);
            let ulen = (buf.len() - l4_off) as u16;
            buf[l4_off + 4..l4_off + 6].copy_from_slice(&ulen.to_be_bytes());
        }
        L4::Icmp { ty, code, rest, payload } | L4::Icmp6 { ty, code, rest, payload } => {
            buf.extend_from_slice(&[ty, code, 0, 0]);
            buf.extend_from_slice(&rest);
            payload.append(buf);
        }
    }
    let l4_len = buf.len() - l4_off;
    // Network header.
    if is_v6 {
        let h = &mut buf[l3..l4_off];
        let flow = ip.id as u32 | 0x7_0000;
        h[0..4].copy_from_slice(&((6u32 << 28) | flow).to_be_bytes());
        h[4..6].copy_from_slice(&(l4_len as u16).to_be_bytes());
        h[6] = proto;
        h[7] = ip.ttl;
        h[8..24].copy_from_slice(&v6(ip.src));
        h[24..40].copy_from_slice(&v6(ip.dst));
    } else {
        write_ipv4_header(&mut buf[l3..l4_off], ip, proto, 20 + l4_len);
    }
    // Transport checksum.
    let ck_off = match l4 {
        L4::Tcp { .. } => 16,
        L4::Udp { .. } => 6,
        L4::Icmp { .. } | L4::Icmp6 { .. } => 2,
    };
    let pseudo = if proto == PROTO_ICMP {
        0
    } else if is_v6 {
        sum(&buf[l3 + 8..l3 + 40], (l4_len as u64) + proto as u64)
    } else {
        sum(&buf[l3 + 12..l3 + 20], (l4_len as u64) + proto as u64)
    };
    let mut ck = finish(sum(&buf[l4_off..], pseudo));
    if proto == PROTO_UDP && ck == 0 {
        ck = 0xffff;
    }
    buf[l4_off + ck_off..l4_off + ck_off + 2].copy_from_slice(&ck.to_be_bytes());
    l3
}

fn write_ipv4_header(h: &mut [u8], ip: &IpHdr, proto: u8, total_len: usize) {
    let (IpAddr::V4(src), IpAddr::V4(dst)) = (ip.src, ip.dst) else { return };
    h[0] = 0x45;
    h[1] = 0;
    h[2..4].copy_from_slice(&(total_len as u16).to_be_bytes());
    h[4..6].copy_from_slice(&ip.id.to_be_bytes());
    let flags = (ip.reserved_flag as u16) << 15 | (ip.df as u16) << 14 | (ip.mf as u16) << 13;
    h[6..8].copy_from_slice(&(flags | (ip.frag_off & 0x1fff)).to_be_bytes());
    h[8] = ip.ttl;
    h[9] = proto;
    h[10..12].copy_from_slice(&[0, 0]);
    h[12..16].copy_from_slice(&src.octets());
    h[16..20].copy_from_slice(&dst.octets());
    let ck = finish(sum(&h[..20], 0));
    h[10..12].copy_from_slice(&ck.to_be_bytes());
}

/// Recompute the IPv4 header checksum (over 20 bytes) after hand edits.
pub fn fix_ipv4_checksum(frame: &mut [u8], l3: usize) {
    let Some(h) = frame.get_mut(l3..l3 + 20) else { return };
    h[10] = 0;
    h[11] = 0;
    let ck = finish(sum(h, 0));
    h[10..12].copy_from_slice(&ck.to_be_bytes());
}

/// Write one IPv4 fragment of the datagram in `datagram` (a frame built by [`build`] whose IP
/// header starts at `l3`): `data` placed at byte offset `off` (multiple of 8) of the IP payload.
/// `data` need not come from the datagram, which is how overlapping fragments disagree.
pub fn ipv4_fragment(out: &mut Vec<u8>, datagram: &[u8], l3: usize, off: usize, data: &[u8], mf: bool) {
    out.clear();
    out.extend_from_slice(&datagram[..l3 + 20]);
    out.extend_from_slice(data);
    let total = (20 + data.len()) as u16;
    out[l3 + 2..l3 + 4].copy_from_slice(&total.to_be_bytes());
    let flags = (mf as u16) << 13 | ((off / 8) as u16 & 0x1fff);
    out[l3 + 6..l3 + 8].copy_from_slice(&flags.to_be_bytes());
    fix_ipv4_checksum(out, l3);
}

pub fn build_arp(
    buf: &mut Vec<u8>,
    l2: &L2,
    op: u16,
    sha: [u8; 6],
    spa: [u8; 4],
    tha: [u8; 6],
    tpa: [u8; 4],
) {
    buf.clear();
    put_l2(buf, l2, ETH_ARP);
    buf.extend_from_slice(&[0, 1, 0x08, 0x00, 6, 4]);
    buf.extend_from_slice(&op.to_be_bytes());
    buf.extend_from_slice(&sha);
    buf.extend_from_slice(&spa);
    buf.extend_from_slice(&tha);
    buf.extend_from_slice(&tpa);
}

/// One's-complement partial sum of big-endian 16-bit words, 32 bits at a time into a u64
/// (2^32 = 1 mod 0xffff, so the fold at the end gives the same result).
#[inline]
pub fn sum(data: &[u8], mut acc: u64) -> u64 {
    let (words, rest) = data.as_chunks::<4>();
    for c in words {
        acc += u32::from_be_bytes(*c) as u64;
    }
    let mut tail = [0u8; 4];
    tail[..rest.len()].copy_from_slice(rest);
    acc + u32::from_be_bytes(tail) as u64
}

#[inline]
pub fn finish(mut acc: u64) -> u16 {
    while acc >> 16 != 0 {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    !(acc as u16)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    #[test]
    fn rfc1071_example_header_checksum() {
        // Classic example header (Wikipedia "IPv4 header checksum"): checksum 0xb861.
        let h = [
            0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0x00, 0x00, 0xc0, 0xa8, 0x00, 0x01,
            0xc0, 0xa8, 0x00, 0xc7,
        ];
        assert_eq!(finish(sum(&h, 0)), 0xb861);
    }

    #[test]
    fn udp_frame_layout() {
        let mut b = Vec::new();
        let l2 = L2 { src: [2; 6], dst: [4; 6], vlan: Some(77) };
        let ip = IpHdr::new(Ipv4Addr::new(10, 77, 0, 1).into(), Ipv4Addr::new(10, 77, 0, 2).into(), 64, 1);
        let l3 =
            build(&mut b, &l2, &ip, &L4::Udp { sport: 1000, dport: 53, payload: Payload::Bytes(b"abc") });
        assert_eq!(l3, 18);
        assert_eq!(&b[12..16], &[0x81, 0x00, 0x00, 77]);
        assert_eq!(&b[16..18], &[0x08, 0x00]);
        assert_eq!(b.len(), 18 + 20 + 8 + 3);
        assert_eq!(u16::from_be_bytes([b[20], b[21]]), 31); // total length
        assert_eq!(u16::from_be_bytes([b[42], b[43]]), 11); // udp length
        assert_eq!(finish(sum(&b[18..38], 0)), 0); // header checksum verifies
    }
}
