//! Tunnels: validate the tunnel header, then decode the inner packet in place of the
//! outer one. A malformed tunnel header sets `BadTunnel` and leaves the outer packet as
//! decoded; a tunnel payload type netrec does not follow leaves it too, silently.

use super::{Cx, be16, get};
use crate::decode::*;
use crate::model::{Tunnel, TunnelKind};

/// What the tunnel carries.
#[derive(Clone, Copy)]
enum Inner {
    Ethernet,
    Ipv4,
    Ipv6,
    /// An MPLS label stack (GRE protocol type 0x8847/0x8848).
    Mpls,
    /// A PPP frame (L2TP).
    Ppp,
    /// A Network Service Header and what it carries.
    Nsh,
}

impl Inner {
    fn from_ethertype(et: u16) -> Option<Inner> {
        match et {
            0x6558 => Some(Inner::Ethernet),
            0x0800 => Some(Inner::Ipv4),
            0x86dd => Some(Inner::Ipv6),
            0x8847 | 0x8848 => Some(Inner::Mpls),
            super::link::ETH_NSH => Some(Inner::Nsh),
            _ => None,
        }
    }
}

const GRE_CSUM: u16 = 0x8000;
const GRE_ROUTING: u16 = 0x4000;
const GRE_KEY: u16 = 0x2000;
const GRE_SEQ: u16 = 0x1000;
const GRE_ERSPAN2: u16 = 0x88be;
const GRE_ERSPAN3: u16 = 0x22eb;
/// Enhanced GRE (version 1, PPTP) protocol type: PPP.
const GRE_PPP: u16 = 0x880b;
/// Enhanced GRE acknowledgment-number-present flag.
const GRE_ACK: u16 = 0x0080;

impl Cx<'_> {
    /// GRE at `off`, `len` bytes on the wire (RFC 2784/2890, version 0 only).
    pub(super) fn gre(&mut self, off: usize, len: usize) {
        let end = off + len;
        let Some(h) = get::<4>(self.data, off).filter(|_| len >= 4) else {
            self.flag(Anomaly::BadTunnel);
            return;
        };
        let (flags, ptype) = (be16([h[0], h[1]]), be16([h[2], h[3]]));
        match flags & 0x0007 {
            0 => {}
            1 if ptype == GRE_PPP => return self.pptp(off, len, flags),
            _ => return, // other versions: not followed
        }
        if flags & GRE_ROUTING != 0 {
            // RFC 1701 source routing: obsolete, and its SRE list is not parsed.
            self.flag(Anomaly::BadTunnel);
            return;
        }
        let mut p = off + 4;
        if flags & GRE_CSUM != 0 {
            p += 4;
        }
        let mut key = 0;
        if flags & GRE_KEY != 0 {
            match get::<4>(self.data, p) {
                Some(k) => key = u32::from_be_bytes(k),
                None => {
                    self.flag(Anomaly::BadTunnel);
                    return;
                }
            }
            p += 4;
        }
        let seq = flags & GRE_SEQ != 0;
        if seq {
            p += 4;
        }
        if p > end || p > self.data.len() {
            self.flag(Anomaly::BadTunnel);
            return;
        }
        match ptype {
            // ERSPAN type I has no sequence number and no ERSPAN header.
            GRE_ERSPAN2 if !seq => self.decap(TunnelKind::Erspan, 0, p, end, Inner::Ethernet),
            GRE_ERSPAN2 => self.erspan2(p, end),
            GRE_ERSPAN3 => self.erspan3(p, end),
            _ => {
                if let Some(inner) = Inner::from_ethertype(ptype) {
                    self.decap(TunnelKind::Gre, key, p, end, inner);
                }
            }
        }
    }

    /// ERSPAN type II: 8-byte header (version 1, 10-bit session id), then Ethernet.
    fn erspan2(&mut self, off: usize, end: usize) {
        match get::<8>(self.data, off) {
            Some(h) if h[0] >> 4 == 1 && off + 8 <= end => {
                let session = u32::from(be16([h[2], h[3]]) & 0x03ff);
                self.decap(TunnelKind::Erspan, session, off + 8, end, Inner::Ethernet);
            }
            _ => self.flag(Anomaly::BadTunnel),
        }
    }

    /// ERSPAN type III: 12-byte header (version 2), an 8-byte platform subheader when the
    /// O bit is set, then the frame (followed only for frame type 0, Ethernet).
    fn erspan3(&mut self, off: usize, end: usize) {
        let Some(h) = get::<12>(self.data, off).filter(|h| h[0] >> 4 == 2) else {
            self.flag(Anomaly::BadTunnel);
            return;
        };
        let session = u32::from(be16([h[2], h[3]]) & 0x03ff);
        let frame_type = (h[10] >> 2) & 0x1f;
        let hl = if h[11] & 1 != 0 { 20 } else { 12 };
        if off + hl > end {
            self.flag(Anomaly::BadTunnel);
            return;
        }
        if frame_type == 0 {
            self.decap(TunnelKind::Erspan, session, off + hl, end, Inner::Ethernet);
        }
    }

    /// VXLAN (RFC 7348) in a UDP payload at `off`, `len` bytes.
    pub(super) fn vxlan(&mut self, off: usize, len: usize) {
        match get::<8>(self.data, off) {
            Some(h) if h[0] & 0x08 != 0 && len >= 8 => {
                let vni = u32::from_be_bytes([0, h[4], h[5], h[6]]);
                self.decap(TunnelKind::Vxlan, vni, off + 8, off + len, Inner::Ethernet);
            }
            _ => self.flag(Anomaly::BadTunnel),
        }
    }

    /// VXLAN-GPE (draft-ietf-nvo3-vxlan-gpe) in a UDP payload at `off`, `len` bytes: VXLAN's
    /// header with version 0 and, when the P flag is set, a next-protocol byte (1 IPv4, 2 IPv6,
    /// 3 Ethernet, 4 NSH, 5 MPLS; others are not followed); without P, Ethernet as VXLAN. The
    /// tunnel is reported as `vxlan` with its VNI.
    pub(super) fn vxlan_gpe(&mut self, off: usize, len: usize) {
        let Some(h) = get::<8>(self.data, off).filter(|h| h[0] & 0x08 != 0 && h[0] & 0x30 == 0 && len >= 8)
        else {
            self.flag(Anomaly::BadTunnel);
            return;
        };
        let vni = u32::from_be_bytes([0, h[4], h[5], h[6]]);
        let inner = match (h[0] & 0x04 != 0).then_some(h[3]) {
            None | Some(3) => Inner::Ethernet,
            Some(1) => Inner::Ipv4,
            Some(2) => Inner::Ipv6,
            Some(4) => Inner::Nsh,
            Some(5) => Inner::Mpls,
            Some(_) => return,
        };
        self.decap(TunnelKind::Vxlan, vni, off + 8, off + len, inner);
    }

    /// MPLS in UDP (RFC 7510, destination port 6635) at `off`, `len` bytes: a label stack, then
    /// what follows it as for MPLS anywhere. Labels change hop by hop: the tunnel id is 0.
    pub(super) fn mpls_udp(&mut self, off: usize, len: usize) {
        self.decap(TunnelKind::MplsUdp, 0, off, off + len, Inner::Mpls);
    }

    /// Geneve (RFC 8926) in a UDP payload at `off`, `len` bytes.
    pub(super) fn geneve(&mut self, off: usize, len: usize) {
        let Some(h) = get::<8>(self.data, off).filter(|h| h[0] >> 6 == 0) else {
            self.flag(Anomaly::BadTunnel);
            return;
        };
        let hl = 8 + usize::from(h[0] & 0x3f) * 4;
        if hl > len || off + hl > self.data.len() {
            self.flag(Anomaly::BadTunnel);
            return;
        }
        let vni = u32::from_be_bytes([0, h[4], h[5], h[6]]);
        if let Some(inner) = Inner::from_ethertype(be16([h[2], h[3]])) {
            self.decap(TunnelKind::Geneve, vni, off + hl, off + len, inner);
        }
    }

    /// GTP-U (3GPP TS 29.281) in a UDP payload at `off`, `len` bytes: version 1, protocol type
    /// GTP. Only G-PDUs (message type 255) carry a user packet; echo, error indication and end
    /// marker messages stay plain UDP. Optional fields (sequence number, N-PDU number, next
    /// extension header type) are present when any of E, S, PN is set; extension headers are
    /// chained by their last byte and sized in 4-byte units.
    pub(super) fn gtp_u(&mut self, off: usize, len: usize) {
        const G_PDU: u8 = 0xff;
        let Some(h) = get::<8>(self.data, off).filter(|h| h[0] >> 5 == 1 && h[0] & 0x10 != 0 && len >= 8)
        else {
            self.flag(Anomaly::BadTunnel);
            return;
        };
        // The GTP length counts the bytes after the mandatory 8-byte header.
        let end = off + 8 + usize::from(be16([h[2], h[3]]));
        if end > off + len {
            self.flag(Anomaly::BadTunnel);
            return;
        }
        if h[1] != G_PDU {
            return;
        }
        let teid = u32::from_be_bytes([h[4], h[5], h[6], h[7]]);
        let mut p = off + 8;
        if h[0] & 0x07 != 0 {
            let Some(opt) = get::<4>(self.data, p) else {
                self.flag(Anomaly::BadTunnel);
                return;
            };
            p += 4;
            let mut next = if h[0] & 0x04 != 0 { opt[3] } else { 0 };
            while next != 0 {
                let Some(&units) = self.data.get(p).filter(|&&u| u != 0) else {
                    self.flag(Anomaly::BadTunnel);
                    return;
                };
                p += usize::from(units) * 4;
                let Some(&n) = self.data.get(p - 1) else {
                    self.flag(Anomaly::BadTunnel);
                    return;
                };
                next = n;
            }
        }
        if p > end {
            self.flag(Anomaly::BadTunnel);
            return;
        }
        match self.data.get(p).map(|b| b >> 4) {
            Some(4) => self.decap(TunnelKind::GtpU, teid, p, end, Inner::Ipv4),
            Some(6) => self.decap(TunnelKind::GtpU, teid, p, end, Inner::Ipv6),
            // An empty G-PDU or a non-IP PDU type: left as the outer UDP packet.
            _ => {}
        }
    }

    /// L2TPv2 (RFC 2661) in a UDP payload at `off`, `len` bytes. Data messages carry a PPP
    /// frame; control messages (T set) and other versions (L2TPv3) stay plain UDP. Optional
    /// fields: length (L), Ns/Nr (S), offset size + padding (O).
    pub(super) fn l2tp(&mut self, off: usize, len: usize) {
        let Some(h) = get::<2>(self.data, off).filter(|_| len >= 6) else {
            self.flag(Anomaly::BadTunnel);
            return;
        };
        if h[1] & 0x0f != 2 || h[0] & 0x80 != 0 {
            return;
        }
        let mut end = off + len;
        let mut p = off + 2;
        if h[0] & 0x40 != 0 {
            let Some(l) = get::<2>(self.data, p) else {
                self.flag(Anomaly::BadTunnel);
                return;
            };
            let l = usize::from(be16(l));
            if l < 6 || l > len {
                self.flag(Anomaly::BadTunnel);
                return;
            }
            end = off + l;
            p += 2;
        }
        let Some(ids) = get::<4>(self.data, p) else {
            self.flag(Anomaly::BadTunnel);
            return;
        };
        p += 4;
        if h[0] & 0x08 != 0 {
            p += 4;
        }
        if h[0] & 0x02 != 0 {
            let Some(o) = get::<2>(self.data, p) else {
                self.flag(Anomaly::BadTunnel);
                return;
            };
            p += 2 + usize::from(be16(o));
        }
        if p >= end {
            self.flag(Anomaly::BadTunnel);
            return;
        }
        // Only packets are followed: PPP's own negotiation (LCP, IPCP, ...) stays in the outer
        // UDP flow of the tunnel.
        if self.ppp_carries_packet(p) {
            self.decap(TunnelKind::L2tp, u32::from_be_bytes(ids), p, end, Inner::Ppp);
        }
    }

    /// PPTP's enhanced GRE (RFC 2637 §4.1, version 1) at `off`: key present (payload length,
    /// call id), optional sequence and acknowledgment numbers, no checksum or routing; then the
    /// PPP frame, followed when it carries a packet (not compressed/encrypted or negotiation).
    /// An acknowledgment-only packet (payload length 0) carries nothing.
    fn pptp(&mut self, off: usize, len: usize, flags: u16) {
        if flags & (GRE_CSUM | GRE_ROUTING | GRE_KEY) != GRE_KEY {
            self.flag(Anomaly::BadTunnel);
            return;
        }
        let Some(k) = get::<4>(self.data, off + 4).filter(|_| len >= 8) else {
            self.flag(Anomaly::BadTunnel);
            return;
        };
        let (payload_len, call) = (usize::from(be16([k[0], k[1]])), u32::from(be16([k[2], k[3]])));
        let p = off + 8 + if flags & GRE_SEQ != 0 { 4 } else { 0 } + if flags & GRE_ACK != 0 { 4 } else { 0 };
        let end = p + payload_len;
        if end > off + len {
            self.flag(Anomaly::BadTunnel);
            return;
        }
        if payload_len > 0 && self.ppp_carries_packet(p) {
            self.decap(TunnelKind::Pptp, call, p, end, Inner::Ppp);
        }
    }

    /// Teredo (RFC 4380 §5.1.1) in a UDP payload at `off`, `len` bytes: an optional
    /// authentication indicator (type 1), an optional origin indication (type 0), then an IPv6
    /// packet that fills the rest exactly. Anything else on port 3544 (qualification traffic that
    /// is not IPv6, other protocols) stays plain UDP, without an anomaly.
    pub(super) fn teredo(&mut self, off: usize, len: usize) {
        let end = off + len;
        let mut p = off;
        if let Some([0, 1, id_len, au_len]) = get::<4>(self.data, p) {
            // Client id, authentication value, 8-byte nonce, confirmation byte.
            p += 4 + usize::from(id_len) + usize::from(au_len) + 9;
        }
        if let Some([0, 0]) = get::<2>(self.data, p) {
            p += 8;
        }
        let fills = get::<8>(self.data, p)
            .is_some_and(|h| h[0] >> 4 == 6 && p + 40 + usize::from(be16([h[4], h[5]])) == end);
        if fills {
            self.decap(TunnelKind::Teredo, 0, p, end, Inner::Ipv6);
        }
    }

    /// IPv4 or IPv6 directly inside IP (protocols 4 and 41).
    pub(super) fn ip_in_ip(&mut self, off: usize, end: usize, v6: bool) {
        let inner = if v6 { Inner::Ipv6 } else { Inner::Ipv4 };
        self.decap(TunnelKind::IpInIp, 0, off, end, inner);
    }

    /// An Ethernet frame directly in IP at `off`, `len` bytes: after EtherIP's 2-byte header
    /// (RFC 3378: version 3, the rest reserved; another version is `bad_tunnel`, where tshark
    /// decodes it anyway) or, for IPv6's Ethernet next header (143), at once. Tunnel id 0.
    pub(super) fn ether_in_ip(&mut self, off: usize, len: usize, etherip_header: bool) {
        let start = if etherip_header {
            match get::<2>(self.data, off).filter(|_| len >= 2) {
                Some(h) if h[0] >> 4 == 3 => off + 2,
                _ => {
                    self.flag(Anomaly::BadTunnel);
                    return;
                }
            }
        } else {
            off
        };
        self.decap(TunnelKind::EtherIp, 0, start, off + len, Inner::Ethernet);
    }

    /// Replace the outer packet by the inner one at `off` (ending at `end` on the wire).
    fn decap(&mut self, kind: TunnelKind, id: u32, off: usize, end: usize, inner: Inner) {
        // The inner packet must at least start like what the tunnel says it carries.
        let starts_ok = match inner {
            Inner::Ethernet => off + 14 <= end && off + 14 <= self.data.len(),
            Inner::Ipv4 => off < end && self.data.get(off).is_some_and(|b| b >> 4 == 4),
            Inner::Ipv6 => off < end && self.data.get(off).is_some_and(|b| b >> 4 == 6),
            Inner::Mpls => off + 4 <= end && off + 4 <= self.data.len(),
            Inner::Ppp => off < end && off < self.data.len(),
            Inner::Nsh => off + 8 <= end && off + 8 <= self.data.len(),
        };
        if !starts_ok {
            self.flag(Anomaly::BadTunnel);
            return;
        }
        let Some(outer) = self.d.net else { return };
        if !self.nest() {
            return;
        }
        if self.d.tunnel.is_none() {
            self.d.tunnel = Some(Tunnel { kind, id, outer_src: outer.src, outer_dst: outer.dst });
        }
        self.d.net = None;
        self.d.transport = Transport::None;
        self.payload(off, end.saturating_sub(off));
        match inner {
            Inner::Ethernet => self.ethernet(off, end, false),
            Inner::Ipv4 => self.ipv4(off, end),
            Inner::Ipv6 => self.ipv6(off, end),
            Inner::Mpls => self.mpls(off, end),
            Inner::Ppp => self.ppp(off, end),
            Inner::Nsh => self.nsh(off, end),
        }
    }
}
