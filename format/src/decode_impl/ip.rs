//! IPv4, IPv6 (with extension headers) and the upper-layer dispatch.

use super::{Cx, be16, get, to_u32};
use crate::decode::*;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Extension headers followed before the chain counts as malformed.
const MAX_IPV6_EXT: u8 = 8;

/// Protocol numbers the decoder handles.
pub(super) mod proto {
    pub const ICMP: u8 = 1;
    pub const IPIP: u8 = 4;
    pub const TCP: u8 = 6;
    pub const UDP: u8 = 17;
    pub const SCTP: u8 = 132;
    pub const IPV6: u8 = 41;
    pub const GRE: u8 = 47;
    pub const AH: u8 = 51;
    pub const ETHERIP: u8 = 97;
    /// IPv6 "Ethernet" next header (RFC 8986).
    pub const ETHERNET: u8 = 143;
    pub const ICMPV6: u8 = 58;
}

impl Cx<'_> {
    pub(super) fn ipv4(&mut self, off: usize, end: usize) {
        let Some(h) = get::<20>(self.data, off) else {
            match self.data.get(off) {
                Some(b) if b >> 4 != 4 => self.flag(Anomaly::BadIpVersion),
                _ => self.flag(Anomaly::TruncatedIpv4),
            }
            return;
        };
        if h[0] >> 4 != 4 {
            self.flag(Anomaly::BadIpVersion);
            return;
        }
        let ihl = usize::from(h[0] & 0x0f) * 4;
        let total = usize::from(be16([h[2], h[3]]));
        let ff = be16([h[6], h[7]]);
        let more = ff & 0x2000 != 0;
        let frag_off = u32::from(ff & 0x1fff) * 8;
        let (ttl, protocol) = (h[8], h[9]);
        let frag = (more || frag_off != 0).then_some(FragInfo {
            id: u32::from(be16([h[4], h[5]])),
            offset: frag_off,
            more,
        });
        self.d.net = Some(NetLayer {
            src: IpAddr::V4(Ipv4Addr::new(h[12], h[13], h[14], h[15])),
            dst: IpAddr::V4(Ipv4Addr::new(h[16], h[17], h[18], h[19])),
            proto: protocol,
            ttl,
            header_len: ihl as u16,
            total_len: total as u32,
            frag,
            dont_fragment: ff & 0x4000 != 0,
            tos: h[1],
            offset: to_u32(off),
        });
        if ff & 0x8000 != 0 {
            self.flag(Anomaly::Ipv4ReservedFlag);
        }
        if ttl <= 1 {
            self.flag(Anomaly::LowTtl);
        }
        if ihl < 20 {
            self.flag(Anomaly::BadIpv4HeaderLength);
            return;
        }
        // Length of this packet on the wire: the header's word unless it lies, in which
        // case what the enclosing layer says is there. Length 0 is not a lie: Linux leaves it 0
        // on segmentation-offload super-packets (TSO/GSO captured before the split, GRO and BIG
        // TCP beyond 64 KiB), which a recorder on such a host sees all the time. tshark reads it
        // the same way, without an error; IPv6 payload length 0 is handled alike.
        let wire = end.saturating_sub(off);
        let pkt_len = if total == 0 {
            wire
        } else if total < ihl || total > wire {
            self.flag(Anomaly::BadIpv4TotalLength);
            wire
        } else {
            total
        };
        if ihl > pkt_len {
            self.flag(Anomaly::BadIpv4HeaderLength);
            return;
        }
        let (mut protocol, mut l4, mut l4_len) = (protocol, off + ihl, pkt_len - ihl);
        if l4 > self.data.len() {
            // Options cut by the snaplen.
            self.flag(Anomaly::TruncatedIpv4);
            return;
        }
        // IPsec AH (RFC 4302) authenticates, it does not hide: as for IPv6, where it is an
        // extension header, the packet is the transport inside (tshark's conversations too).
        // Unfragmented packets only; a length past the packet leaves it as protocol 51.
        if protocol == proto::AH
            && frag.is_none()
            && let Some([next, words]) = get::<2>(self.data, l4)
        {
            let ah = (usize::from(words) + 2) * 4;
            if ah <= l4_len && l4 + ah <= self.data.len() {
                (protocol, l4, l4_len) = (next, l4 + ah, l4_len - ah);
                if let Some(n) = self.d.net.as_mut() {
                    n.proto = next;
                    n.header_len = (l4 - off).min(usize::from(u16::MAX)) as u16;
                }
            }
        }
        if frag.is_some() && bad_fragment(frag_off, l4_len, more) {
            self.flag(Anomaly::BadFragment);
        }
        self.payload(l4, l4_len);
        if frag_off != 0 {
            return; // a later fragment: its transport header is in the first one
        }
        self.upper(protocol, l4, l4_len, more);
    }

    pub(super) fn ipv6(&mut self, off: usize, end: usize) {
        let Some(h) = get::<40>(self.data, off) else {
            match self.data.get(off) {
                Some(b) if b >> 4 != 6 => self.flag(Anomaly::BadIpVersion),
                _ => self.flag(Anomaly::TruncatedIpv6),
            }
            return;
        };
        if h[0] >> 4 != 6 {
            self.flag(Anomaly::BadIpVersion);
            return;
        }
        let plen = usize::from(be16([h[4], h[5]]));
        let hop_limit = h[7];
        let wire = end.saturating_sub(off);
        // Payload length 0 with bytes behind it is a jumbogram or a segmentation-offload
        // capture: take the wire length.
        let pkt_len = if plen == 0 {
            wire.max(40)
        } else if 40 + plen > wire {
            self.flag(Anomaly::BadIpv6PayloadLength);
            wire.max(40)
        } else {
            40 + plen
        };
        let pkt_end = off + pkt_len;

        // Walk the extension header chain.
        let mut nh = h[6];
        let mut cur = off + 40;
        let mut frag: Option<FragInfo> = None;
        let mut frag_payload_start = 0;
        let mut bad = false;
        let mut count = 0u8;
        loop {
            let ext_len = match nh {
                0 | 43 | 60 | 135 | 51 => get::<2>(self.data, cur).map(|e| {
                    let n = usize::from(e[1]);
                    (e[0], if nh == 51 { (n + 2) * 4 } else { (n + 1) * 8 })
                }),
                44 => get::<8>(self.data, cur).map(|e| {
                    let fo = be16([e[2], e[3]]);
                    frag = Some(FragInfo {
                        id: u32::from_be_bytes([e[4], e[5], e[6], e[7]]),
                        offset: u32::from(fo & 0xfff8),
                        more: fo & 1 != 0,
                    });
                    (e[0], 8)
                }),
                _ => break,
            };
            count += 1;
            match ext_len {
                Some((next, len)) if count <= MAX_IPV6_EXT && cur + len <= pkt_end => {
                    let was_frag = nh == 44;
                    nh = next;
                    cur += len;
                    if was_frag {
                        frag_payload_start = cur;
                        if frag.is_some_and(|f| f.offset != 0) {
                            break; // later fragment: the rest is opaque
                        }
                    }
                }
                _ => {
                    bad = true;
                    break;
                }
            }
        }

        self.d.net = Some(NetLayer {
            src: IpAddr::V6(Ipv6Addr::from(*h[8..24].first_chunk::<16>().unwrap_or(&[0; 16]))),
            dst: IpAddr::V6(Ipv6Addr::from(*h[24..40].first_chunk::<16>().unwrap_or(&[0; 16]))),
            proto: nh,
            ttl: hop_limit,
            header_len: (cur - off).min(usize::from(u16::MAX)) as u16,
            total_len: (40 + plen) as u32,
            frag,
            dont_fragment: false,
            tos: ((be16([h[0], h[1]]) >> 4) & 0xff) as u8,
            offset: to_u32(off),
        });
        if hop_limit <= 1 {
            self.flag(Anomaly::LowTtl);
        }
        if bad {
            self.flag(Anomaly::BadIpv6ExtHeader);
            return;
        }
        let l4_len = pkt_end - cur;
        if let Some(f) = frag
            && bad_fragment(f.offset, pkt_end - frag_payload_start, f.more)
        {
            self.flag(Anomaly::BadFragment);
        }
        self.payload(cur, l4_len);
        let more = match frag {
            Some(f) if f.offset != 0 => return,
            Some(f) => f.more,
            None => false,
        };
        self.upper(nh, cur, l4_len, more);
    }

    /// The upper layer at `off`, `len` bytes on the wire. `first_frag` is set when only the
    /// first fragment of the datagram is here (tunnels are not followed then).
    fn upper(&mut self, protocol: u8, off: usize, len: usize, first_frag: bool) {
        match protocol {
            proto::TCP => self.tcp(off, len, first_frag),
            proto::UDP => self.udp(off, len, first_frag),
            proto::ICMP => self.icmp(off, len, first_frag, false),
            proto::ICMPV6 => self.icmp(off, len, first_frag, true),
            proto::SCTP => self.sctp(off, len),
            _ => {
                self.d.transport = Transport::Other;
                if first_frag {
                    return;
                }
                match protocol {
                    proto::GRE => self.gre(off, len),
                    proto::IPIP => self.ip_in_ip(off, off + len, false),
                    proto::IPV6 => self.ip_in_ip(off, off + len, true),
                    proto::ETHERIP => self.ether_in_ip(off, len, true),
                    proto::ETHERNET => self.ether_in_ip(off, len, false),
                    _ => {}
                }
            }
        }
    }
}

/// Fragment beyond the 64 KiB datagram limit, or a non-last fragment whose data is not a
/// multiple of 8 bytes.
fn bad_fragment(offset: u32, len: usize, more: bool) -> bool {
    offset as usize + len > 65535 || (more && !len.is_multiple_of(8))
}
