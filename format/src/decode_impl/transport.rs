//! TCP, UDP, ICMP and ICMPv6. `len` is the transport segment's length on the wire as
//! stated by the IP header; `first_frag` marks the first fragment of a larger datagram.

use super::{Cx, be16, get};
use crate::decode::*;

const VXLAN_PORT: u16 = 4789;
const VXLAN_GPE_PORT: u16 = 4790;
const GENEVE_PORT: u16 = 6081;
const GTP_U_PORT: u16 = 2152;
const L2TP_PORT: u16 = 1701;
const TEREDO_PORT: u16 = 3544;
/// MPLS in UDP (RFC 7510).
const MPLS_UDP_PORT: u16 = 6635;

impl Cx<'_> {
    /// The first fragment is too small for the transport header's fixed part.
    fn tiny(&mut self, len: usize, fixed: usize, first_frag: bool) -> bool {
        let tiny = first_frag && len < fixed;
        if tiny {
            self.flag(Anomaly::TinyFragment);
        }
        tiny
    }

    pub(super) fn tcp(&mut self, off: usize, len: usize, first_frag: bool) {
        if self.tiny(len, 20, first_frag) {
            return;
        }
        let Some(h) = get::<20>(self.data, off).filter(|_| len >= 20) else {
            self.flag(Anomaly::TruncatedTcp);
            return;
        };
        let hl = usize::from(h[12] >> 4) * 4;
        let mut t = TcpInfo {
            src_port: be16([h[0], h[1]]),
            dst_port: be16([h[2], h[3]]),
            seq: u32::from_be_bytes([h[4], h[5], h[6], h[7]]),
            ack: u32::from_be_bytes([h[8], h[9], h[10], h[11]]),
            flags: h[13],
            ns: h[12] & 1 != 0,
            window: be16([h[14], h[15]]),
            header_len: hl as u8,
            ..TcpInfo::default()
        };
        if h[12] & 0x0e != 0 {
            self.flag(Anomaly::TcpReservedBits);
        }
        if hl < 20 || hl > len {
            // Fixed part is reported; options and payload boundaries are unknown.
            self.flag(Anomaly::BadTcpHeaderLength);
            self.d.transport = Transport::Tcp(t);
            self.payload(off + 20, 0);
            return;
        }
        // Options: only what was captured, each length checked.
        let opt_end = (off + hl).min(self.data.len());
        let opts = self.data.get(off + 20..opt_end).unwrap_or(&[]);
        tcp_options(opts, &mut t);
        self.d.transport = Transport::Tcp(t);
        self.payload(off + hl, len - hl);
    }

    pub(super) fn udp(&mut self, off: usize, len: usize, first_frag: bool) {
        if self.tiny(len, 8, first_frag) {
            return;
        }
        let Some(h) = get::<8>(self.data, off).filter(|_| len >= 8) else {
            self.flag(Anomaly::TruncatedUdp);
            return;
        };
        let ulen = usize::from(be16([h[4], h[5]]));
        let u = UdpInfo { src_port: be16([h[0], h[1]]), dst_port: be16([h[2], h[3]]), length: ulen as u16 };
        self.d.transport = Transport::Udp(u);
        // A first fragment carries only part of the datagram the UDP length describes.
        let payload_len = if first_frag {
            len - 8
        } else if ulen != len {
            self.flag(Anomaly::BadUdpLength);
            if (8..len).contains(&ulen) { ulen - 8 } else { len - 8 }
        } else {
            len - 8
        };
        self.payload(off + 8, payload_len);
        if first_frag || ulen != len {
            return;
        }
        match u.dst_port {
            VXLAN_PORT => self.vxlan(off + 8, len - 8),
            VXLAN_GPE_PORT => self.vxlan_gpe(off + 8, len - 8),
            GENEVE_PORT => self.geneve(off + 8, len - 8),
            GTP_U_PORT => self.gtp_u(off + 8, len - 8),
            MPLS_UDP_PORT => self.mpls_udp(off + 8, len - 8),
            // The responder may answer from another port, to the initiator's 1701.
            _ if u.dst_port == L2TP_PORT || u.src_port == L2TP_PORT => self.l2tp(off + 8, len - 8),
            // Server and relays listen on 3544; clients use any port.
            _ if u.dst_port == TEREDO_PORT || u.src_port == TEREDO_PORT => self.teredo(off + 8, len - 8),
            _ => {}
        }
    }

    /// SCTP (RFC 9260) at `off`, `len` bytes on the wire: the 12-byte common header (ports,
    /// verification tag, checksum) and the first chunk's type. A header cut short (by the wire or
    /// the capture) leaves the packet `Transport::Other` without an anomaly, as before netrec
    /// read SCTP: flows then keep ports 0. The payload is the chunks.
    pub(super) fn sctp(&mut self, off: usize, len: usize) {
        self.d.transport = Transport::Other;
        let Some(h) = get::<12>(self.data, off).filter(|_| len >= 12) else { return };
        let first_chunk = if len >= 16 { self.data.get(off + 12).copied() } else { None };
        self.d.transport = Transport::Sctp(SctpInfo {
            src_port: be16([h[0], h[1]]),
            dst_port: be16([h[2], h[3]]),
            first_chunk,
        });
        self.payload(off + 12, len - 12);
    }

    pub(super) fn icmp(&mut self, off: usize, len: usize, first_frag: bool, v6: bool) {
        if self.tiny(len, 8, first_frag) {
            return;
        }
        let Some(h) = get::<8>(self.data, off).filter(|_| len >= 8) else {
            self.flag(Anomaly::TruncatedIcmp);
            return;
        };
        let mut i = IcmpInfo { icmp_type: h[0], code: h[1], ident: 0, seq: 0 };
        // Echo (and, for v4, timestamp / information / address mask) carry id and sequence.
        let has_id = if v6 { matches!(h[0], 128 | 129) } else { matches!(h[0], 0 | 8 | 13..=18) };
        if has_id {
            i.ident = be16([h[4], h[5]]);
            i.seq = be16([h[6], h[7]]);
        }
        self.d.transport = if v6 { Transport::Icmpv6(i) } else { Transport::Icmp(i) };
        self.payload(off + 8, len - 8);
    }
}

/// Parse MSS, window scale and SACK-permitted; stop quietly at anything malformed.
fn tcp_options(mut opts: &[u8], t: &mut TcpInfo) {
    while let Some((&kind, rest)) = opts.split_first() {
        match kind {
            0 => break,
            1 => {
                opts = rest;
                continue;
            }
            _ => {}
        }
        let Some(&len) = rest.first() else { break };
        let len = usize::from(len);
        let Some(opt) = opts.get(..len).filter(|_| len >= 2) else { break };
        match (kind, opt) {
            (2, &[_, _, a, b]) => t.mss = Some(be16([a, b])),
            (3, &[_, _, s]) => t.wscale = Some(s),
            (4, &[_, _]) => t.sack_permitted = true,
            _ => {}
        }
        opts = opts.get(len..).unwrap_or(&[]);
    }
}
