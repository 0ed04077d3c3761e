//! Link layers: pick where the network header starts and what it is.

use super::{Cx, be16, get};
use crate::decode::*;
use crate::model::LinkType;
use std::net::Ipv4Addr;

const ETH_IPV4: u16 = 0x0800;
const ETH_IPV6: u16 = 0x86dd;
const ETH_ARP: u16 = 0x0806;
const ETH_RARP: u16 = 0x8035;
const ETH_PPPOE_SESSION: u16 = 0x8864;
const ETH_MPLS_UNICAST: u16 = 0x8847;
const ETH_MPLS_MULTICAST: u16 = 0x8848;
/// IEEE 802.1ah provider backbone bridging (MAC-in-MAC) I-TAG.
const ETH_PBB_ITAG: u16 = 0x88e7;
/// Network Service Header (RFC 8300).
pub(super) const ETH_NSH: u16 = 0x894f;
const PPP_IPV4: u16 = 0x0021;
const PPP_IPV6: u16 = 0x0057;
/// PPP protocol numbers of MPLS (RFC 3032).
const PPP_MPLS_UNICAST: u16 = 0x0281;
const PPP_MPLS_MULTICAST: u16 = 0x0283;

/// NFLOG TLV type carrying the packet.
const NFULA_PAYLOAD: u16 = 9;

impl Cx<'_> {
    pub(super) fn link(&mut self, lt: LinkType, end: usize) {
        match lt {
            // The common case first, without the second dispatch of `link_at`.
            LinkType::ETHERNET => self.ethernet(0, end, true),
            LinkType::LINUX_SLL => self.sll(end),
            LinkType::LINUX_SLL2 => self.sll2(end),
            LinkType::PPP_HDLC => self.ppp_hdlc(end),
            LinkType::NFLOG => self.nflog(end),
            LinkType::C_HDLC => self.c_hdlc(end),
            LinkType::PFLOG => self.pflog(end),
            LinkType::IEEE802_11_PRISM => self.prism(end),
            LinkType::IEEE802_11_AVS => self.avs(0, end),
            LinkType::PPI => self.ppi(end),
            LinkType::PKTAP => self.pktap(end),
            LinkType::ARCNET_BSD => self.arcnet(2, end),
            LinkType::ARCNET_LINUX => self.arcnet(4, end),
            LinkType::IPNET => self.ipnet(end),
            _ => self.link_at(lt, 0, end),
        }
    }

    /// The link types that can also follow another header (PPI, PKTAP name one). PPI and PKTAP
    /// are not among them (`unsupported_link_type` there), so a lying header cannot recurse.
    fn link_at(&mut self, lt: LinkType, off: usize, end: usize) {
        match lt {
            LinkType::ETHERNET => self.ethernet(off, end, true),
            LinkType::RAW | LinkType::RAW_BSD12 | LinkType::RAW_BSD14 => self.ip_any(off, end),
            LinkType::IPV4 => self.ipv4(off, end),
            LinkType::IPV6 => self.ipv6(off, end),
            LinkType::NULL => self.null(off, end),
            LinkType::LOOP => self.af_family(get::<4>(self.data, off).map(u32::from_be_bytes), off + 4, end),
            LinkType::PPP => self.ppp(off, end),
            LinkType::PPP_ETHER => self.pppoe(off, end),
            LinkType::IEEE802_11 => self.ieee80211(off, end),
            LinkType::IEEE802_11_RADIOTAP => self.radiotap(off, end),
            _ => self.flag(Anomaly::UnsupportedLinkType),
        }
    }

    /// pf log (OpenBSD, FreeBSD, macOS): byte 0 is the header length, padded to 4 bytes (61
    /// -> 64; OpenBSD's longer header says 100), byte 1 the address family of the packet.
    fn pflog(&mut self, end: usize) {
        let Some([len, af]) = get::<2>(self.data, 0) else {
            self.flag(Anomaly::TruncatedLink);
            return;
        };
        let off = usize::from(len).next_multiple_of(4);
        // Shorter than the oldest pflog header (45 bytes): not one.
        if len < 45 || off > end {
            self.flag(Anomaly::TruncatedLink);
            return;
        }
        self.af_family(Some(u32::from(af)), off, end);
    }

    /// PPI (Per-Packet Information, CACE): version 0, flags, a little-endian header length and
    /// link type, then TLV fields. The 802.11-Common field (type 2) says whether an FCS ends
    /// the frame (flags bit 0): those 4 bytes are not payload.
    fn ppi(&mut self, end: usize) {
        let Some(h) = get::<8>(self.data, 0).filter(|h| h[0] == 0) else {
            self.flag(Anomaly::TruncatedLink);
            return;
        };
        let len = usize::from(u16::from_le_bytes([h[2], h[3]]));
        let dlt = u32::from_le_bytes([h[4], h[5], h[6], h[7]]);
        if len < 8 || len > end || len > self.data.len() {
            self.flag(Anomaly::TruncatedLink);
            return;
        }
        let mut end = end;
        let mut p = 8;
        while let Some(f) = get::<4>(self.data, p).filter(|_| p + 4 <= len) {
            let (ty, flen) =
                (u16::from_le_bytes([f[0], f[1]]), usize::from(u16::from_le_bytes([f[2], f[3]])));
            if ty == 2
                && flen >= 20
                && p + 4 + flen <= len
                && get::<2>(self.data, p + 12).is_some_and(|fl| fl[0] & 1 != 0)
            {
                end = end.saturating_sub(4).max(len);
            }
            p += 4 + flen;
            if h[1] & 1 != 0 {
                p = p.next_multiple_of(4); // 32-bit aligned fields
            }
        }
        self.link_at(LinkType(dlt), len, end);
    }

    /// Apple PKTAP: a header in the writer's byte order (little-endian: macOS on x86 and arm)
    /// whose first fields are its length, the type of what follows (1: a packet) and that
    /// packet's link type. Other record types carry no packet.
    fn pktap(&mut self, end: usize) {
        let Some(h) = get::<12>(self.data, 0) else {
            self.flag(Anomaly::TruncatedLink);
            return;
        };
        let rd = |i: usize| u32::from_le_bytes([h[i], h[i + 1], h[i + 2], h[i + 3]]);
        let (len, next, dlt) = (rd(0) as usize, rd(4), rd(8));
        if len < 12 || len > end || len > self.data.len() {
            self.flag(Anomaly::TruncatedLink);
            return;
        }
        if next != 1 {
            return;
        }
        self.link_at(LinkType(dlt), len, end);
    }

    /// Prism monitor header: message code, message length (the header length, 144 in practice),
    /// in the writer's byte order, then 802.11. Frames that start with the AVS magic are AVS (as
    /// some drivers write them under this link type).
    fn prism(&mut self, end: usize) {
        let Some(h) = get::<8>(self.data, 0) else {
            self.flag(Anomaly::TruncatedLink);
            return;
        };
        if u32::from_be_bytes([h[0], h[1], h[2], h[3]]) & 0xffff_fff0 == 0x8021_1000 {
            return self.avs(0, end);
        }
        let le = u32::from_le_bytes([h[4], h[5], h[6], h[7]]) as usize;
        let be = u32::from_be_bytes([h[4], h[5], h[6], h[7]]) as usize;
        let fits = |n: usize| (8..=end.min(self.data.len())).contains(&n);
        match (fits(le), fits(be)) {
            (true, _) => self.ieee80211(le, end),
            (false, true) => self.ieee80211(be, end),
            _ => self.flag(Anomaly::TruncatedLink),
        }
    }

    /// AVS monitor header at `off`: big-endian version (0x8021100x) and header length, then 802.11.
    fn avs(&mut self, off: usize, end: usize) {
        let Some(h) = get::<8>(self.data, off) else {
            self.flag(Anomaly::TruncatedLink);
            return;
        };
        let len = u32::from_be_bytes([h[4], h[5], h[6], h[7]]) as usize;
        if u32::from_be_bytes([h[0], h[1], h[2], h[3]]) & 0xffff_fff0 != 0x8021_1000
            || len < 8
            || off + len > end.min(self.data.len())
        {
            self.flag(Anomaly::TruncatedLink);
            return;
        }
        self.ieee80211(off + len, end);
    }

    /// Raw IP: the version nibble says which.
    fn ip_any(&mut self, off: usize, end: usize) {
        match self.data.get(off).map(|b| b >> 4) {
            None => self.flag(Anomaly::TruncatedLink),
            Some(4) => self.ipv4(off, end),
            Some(6) => self.ipv6(off, end),
            Some(_) => self.flag(Anomaly::BadIpVersion),
        }
    }

    /// Ethernet II at `off`. `outer` is false for frames inside a tunnel: their VLAN ids
    /// are skipped, not recorded (flows stay keyed on the capture-side VLANs).
    pub(super) fn ethernet(&mut self, off: usize, end: usize, outer: bool) {
        let Some(h) = get::<14>(self.data, off) else {
            self.flag(Anomaly::TruncatedLink);
            return;
        };
        self.ethertype(be16([h[12], h[13]]), off + 14, end, outer);
    }

    /// Dispatch on an ethertype whose payload starts at `off`, skipping VLAN tags first.
    fn ethertype(&mut self, mut et: u16, mut off: usize, end: usize, outer: bool) {
        while matches!(et, 0x8100 | 0x88a8 | 0x9100) {
            let Some(tag) = get::<4>(self.data, off) else {
                self.flag(Anomaly::TruncatedLink);
                return;
            };
            if outer {
                let n = usize::from(self.d.vlan_count);
                if let Some(slot) = self.d.vlans.get_mut(n) {
                    *slot = be16([tag[0], tag[1]]) & 0x0fff;
                    self.d.vlan_count += 1;
                } else {
                    self.flag(Anomaly::VlanTooDeep);
                }
            }
            et = be16([tag[2], tag[3]]);
            off += 4;
        }
        // Values up to 1500 are 802.3 lengths (LLC follows), not ethertypes; with a SNAP
        // header the ethertype comes after it.
        if et <= 1500 {
            let end = end.min(off + usize::from(et));
            // A SNAP ethertype that is itself a length is not followed (no recursion on lies).
            match self.snap(off, end).filter(|&inner| inner > 1500) {
                Some(inner) => return self.ethertype(inner, off + 8, end, outer),
                None => {
                    self.d.ethertype = None;
                    self.flag(Anomaly::UnknownEthertype);
                    self.payload(off, end.saturating_sub(off));
                    return;
                }
            }
        }
        self.d.ethertype = (et >= 0x0600).then_some(et);
        match et {
            ETH_IPV4 => self.ipv4(off, end),
            ETH_IPV6 => self.ipv6(off, end),
            ETH_ARP | ETH_RARP => self.arp(off),
            ETH_PPPOE_SESSION => self.pppoe(off, end),
            ETH_MPLS_UNICAST | ETH_MPLS_MULTICAST => self.mpls(off, end),
            ETH_NSH => self.nsh(off, end),
            // 802.1ah: a 4-byte I-TAG (flags, 24-bit I-SID), then the customer's frame from its
            // MAC addresses on. Like a pseudowire's, its VLAN tags are the customer's (not recorded).
            ETH_PBB_ITAG => match get::<18>(self.data, off).filter(|_| off + 18 <= end) {
                Some(h) if self.nest() => self.ethertype(be16([h[16], h[17]]), off + 18, end, false),
                Some(_) => {}
                None => self.flag(Anomaly::TruncatedLink),
            },
            _ => {
                self.flag(Anomaly::UnknownEthertype);
                self.payload(off, end.saturating_sub(off));
            }
        }
    }

    /// The ethertype of an 802.2 LLC + SNAP header at `off` (`AA AA 03`, OUI 0 or the 802.1H
    /// bridge-tunnel OUI `00 00 F8`), if that is what is there.
    fn snap(&self, off: usize, end: usize) -> Option<u16> {
        match get::<8>(self.data, off).filter(|_| off + 8 <= end)? {
            [0xaa, 0xaa, 0x03, 0, 0, 0 | 0xf8, a, b] => Some(be16([a, b])),
            _ => None,
        }
    }

    /// ARCNET: source and destination station bytes (the Linux header adds a 2-byte offset
    /// field), then the protocol id at `pid`. RFC 1051 ids (240 IP, 241 ARP) and diagnostics
    /// (0x80) have nothing more; RFC 1201 ids add a split flag and a sequence number, and on the
    /// BSD header a split flag of 0xff marks an exception packet with 4 more bytes (as tshark and
    /// tcpdump read them). Then 212/240 IPv4, 0xc4 IPv6, 213/241 ARP, 214 RARP; other protocols
    /// (IPX, AppleTalk, ...) are `unknown_ethertype`.
    fn arcnet(&mut self, pid: usize, end: usize) {
        let Some(&id) = self.data.get(pid) else {
            self.flag(Anomaly::TruncatedLink);
            return;
        };
        // Bytes from the protocol id to the payload; a split flag that is not there makes the
        // header run past the data, which the length check reports.
        let hdr = match (id, self.data.get(pid + 1)) {
            (240 | 241 | 0x80, _) => 1,
            (_, Some(0xff)) if pid == 2 => 8,
            _ => 4,
        };
        let off = pid + hdr;
        if off > self.data.len().min(end) {
            self.flag(Anomaly::TruncatedLink);
            return;
        }
        match id {
            212 | 240 => self.ipv4(off, end),
            0xc4 => self.ipv6(off, end),
            213 | 214 | 241 => self.arp(off),
            _ => {
                self.flag(Anomaly::UnknownEthertype);
                self.payload(off, end - off);
            }
        }
    }

    /// Solaris IPNET: version, address family (2 IPv4, 26 IPv6: Solaris's AF_INET6), hook
    /// type, packet length, interface and zone ids (24 bytes), then the IP packet.
    fn ipnet(&mut self, end: usize) {
        match get::<24>(self.data, 0).filter(|_| end >= 24).map(|h| h[1]) {
            None => self.flag(Anomaly::TruncatedLink),
            Some(2) => self.ipv4(24, end),
            Some(26) => self.ipv6(24, end),
            Some(_) => {
                self.flag(Anomaly::UnknownEthertype);
                self.payload(24, end - 24);
            }
        }
    }

    /// Cisco HDLC (RFC 1547 framing): address 0x0f/0x8f, control, ethertype. Its 0x8035 is
    /// SLARP, not RARP: not decoded.
    fn c_hdlc(&mut self, end: usize) {
        match get::<4>(self.data, 0) {
            None => self.flag(Anomaly::TruncatedLink),
            Some([_, _, 0x80, 0x35]) => self.flag(Anomaly::UnknownEthertype),
            Some([_, _, a, b]) => self.ethertype(be16([a, b]), 4, end, true),
        }
    }

    /// Radiotap (radiotap.org): skip its `it_len` bytes; when its flags field says the frame
    /// ends with a 4-byte FCS, that is not part of the 802.11 payload.
    fn radiotap(&mut self, off: usize, end: usize) {
        let Some(h) = get::<8>(self.data, off).filter(|h| h[0] == 0) else {
            self.flag(Anomaly::TruncatedLink);
            return;
        };
        // Absolute from here on: the radiotap header ends at `len`.
        let len = off + usize::from(u16::from_le_bytes([h[2], h[3]]));
        if len < off + 8 || len > self.data.len() || len > end {
            self.flag(Anomaly::TruncatedLink);
            return;
        }
        let present = u32::from_le_bytes([h[4], h[5], h[6], h[7]]);
        // Extended presence bitmaps (bit 31) come before the fields.
        let mut p = off + 8;
        let mut word = present;
        while word & 0x8000_0000 != 0 {
            match get::<4>(self.data, p).filter(|_| p + 4 <= len) {
                Some(w) => word = u32::from_le_bytes(w),
                None => {
                    self.flag(Anomaly::TruncatedLink);
                    return;
                }
            }
            p += 4;
        }
        let mut end = end;
        // Field 0 TSFT (8 bytes, 8-aligned), field 1 Flags (1 byte); 0x10: FCS at the end.
        if present & 0b10 != 0 {
            if present & 0b1 != 0 {
                // Alignment is relative to the radiotap header's start.
                p = off + (p - off).next_multiple_of(8) + 8;
            }
            if p < len && self.data.get(p).is_some_and(|f| f & 0x10 != 0) {
                end = end.saturating_sub(4).max(len);
            }
        }
        self.ieee80211(len, end);
    }

    /// An IEEE 802.11 frame at `off`: data frames only (type 2), not protected, with a body;
    /// the body starts with LLC/SNAP. Management and control frames, null data and encrypted
    /// bodies carry no packet netrec can decode (not an anomaly).
    fn ieee80211(&mut self, off: usize, end: usize) {
        let Some(fc) = get::<2>(self.data, off) else {
            self.flag(Anomaly::TruncatedLink);
            return;
        };
        let (ftype, subtype, flags) = ((fc[0] >> 2) & 3, fc[0] >> 4, fc[1]);
        if ftype != 2 || subtype & 0x4 != 0 || flags & 0x40 != 0 {
            return;
        }
        let mut hl = 24;
        if flags & 0x03 == 0x03 {
            hl += 6; // fourth address (WDS / mesh)
        }
        let qos = subtype & 0x8 != 0;
        // An A-MSDU (QoS control bit 7) is a list of subframes, not one LLC body.
        let amsdu = qos && self.data.get(off + hl).is_some_and(|q| q & 0x80 != 0);
        if qos {
            hl += 2; // QoS control
            if flags & 0x80 != 0 {
                hl += 4; // HT control
            }
        }
        let body = off + hl;
        if body > end || body > self.data.len() {
            self.flag(Anomaly::TruncatedLink);
            return;
        }
        match self.snap(body, end).filter(|&et| et > 1500 && !amsdu) {
            Some(et) => self.ethertype(et, body + 8, end, true),
            None => self.payload(body, end - body),
        }
    }

    /// An MPLS label stack (RFC 3032) at `off`: skip the 4-byte entries up to the one with the
    /// bottom-of-stack bit, then dispatch on what follows. MPLS does not say what it carries;
    /// like tshark, the first nibble decides: 4 IPv4, 6 IPv6, 0 a pseudowire control word
    /// (RFC 4385) followed by an Ethernet frame (RFC 4448). Anything else is left undecoded
    /// (`unknown_ethertype`, not malformed).
    pub(super) fn mpls(&mut self, mut off: usize, end: usize) {
        loop {
            let Some(entry) = get::<4>(self.data, off).filter(|_| off + 4 <= end) else {
                self.flag(Anomaly::TruncatedLink);
                return;
            };
            self.d.mpls_labels = self.d.mpls_labels.saturating_add(1);
            off += 4;
            if entry[2] & 1 != 0 {
                break;
            }
        }
        match self.data.get(off).map(|b| b >> 4) {
            Some(4) => self.ipv4(off, end),
            Some(6) => self.ipv6(off, end),
            // Control word, then a whole Ethernet frame (its VLAN tags are the customer's). Only
            // when that frame's type is one netrec decodes: nibble 0 alone is weak evidence, and
            // other payloads decoded as Ethernet would raise header anomalies out of noise.
            Some(0)
                if off + 4 + 14 <= end
                    && get::<14>(self.data, off + 4).is_some_and(|h| {
                        matches!(
                            be16([h[12], h[13]]),
                            ETH_IPV4 | ETH_IPV6 | ETH_ARP | 0x8100 | 0x88a8 | ETH_MPLS_UNICAST
                        )
                    }) =>
            {
                if self.nest() {
                    self.ethernet(off + 4, end, false)
                }
            }
            Some(_) => {
                self.flag(Anomaly::UnknownEthertype);
                self.payload(off, end.saturating_sub(off));
            }
            // Nothing after the stack was captured: the payload is still accounted.
            None => self.payload(off, end.saturating_sub(off)),
        }
    }

    /// NSH (RFC 8300), the service-function-chaining shim, at `off`: version 0 and a length (in
    /// 4-byte words) of at least the base and service path headers that covers the context
    /// headers (MD type 1's fixed 16 bytes or MD type 2's TLVs alike), then what its next-protocol
    /// byte says: 1 IPv4, 2 IPv6, 3 Ethernet, 5 MPLS. Like MPLS it is a shim, not a tunnel: the
    /// flow is the inner packet's. A header that lies is `bad_tunnel`; NSH in NSH (4) and other
    /// protocols are left undecoded (`unknown_ethertype`).
    pub(super) fn nsh(&mut self, off: usize, end: usize) {
        let Some(h) = get::<2>(self.data, off).filter(|_| off + 8 <= self.data.len()) else {
            self.flag(if off + 8 > end { Anomaly::BadTunnel } else { Anomaly::TruncatedLink });
            return;
        };
        let len = usize::from(h[1] & 0x3f) * 4;
        if h[0] >> 6 != 0 || len < 8 || off + len > end {
            self.flag(Anomaly::BadTunnel);
            return;
        }
        let (next, off) = (self.data[off + 3], off + len);
        if off > self.data.len() {
            self.flag(Anomaly::TruncatedLink);
            return;
        }
        match next {
            1 => self.ipv4(off, end),
            2 => self.ipv6(off, end),
            3 => {
                if self.nest() {
                    self.ethernet(off, end, false)
                }
            }
            5 => self.mpls(off, end),
            _ => {
                self.flag(Anomaly::UnknownEthertype);
                self.payload(off, end.saturating_sub(off));
            }
        }
    }

    fn arp(&mut self, off: usize) {
        let Some(h) = get::<8>(self.data, off) else {
            self.flag(Anomaly::TruncatedArp);
            return;
        };
        let (hlen, plen) = (usize::from(h[4]), usize::from(h[5]));
        if self.data.len() < off + 8 + 2 * hlen + 2 * plen {
            self.flag(Anomaly::TruncatedArp);
            return;
        }
        // Only IPv4 protocol addresses are reported; other ARP variants are left alone.
        if plen != 4 {
            return;
        }
        let sender = off + 8 + hlen;
        let target = sender + 4 + hlen;
        if let (Some(s), Some(t)) = (get::<4>(self.data, sender), get::<4>(self.data, target)) {
            self.d.arp = Some(ArpInfo {
                op: be16([h[6], h[7]]),
                sender_ip: Ipv4Addr::from(s),
                target_ip: Ipv4Addr::from(t),
            });
        }
    }

    /// BSD null/loopback: a 4-byte address family in the writer's byte order.
    fn null(&mut self, off: usize, end: usize) {
        let Some(h) = get::<4>(self.data, off) else {
            self.flag(Anomaly::TruncatedLink);
            return;
        };
        let le = u32::from_le_bytes(h);
        let af = if af_is_ip(le) { le } else { u32::from_be_bytes(h) };
        self.af_family(Some(af), off + 4, end);
    }

    /// Dispatch on a BSD address family (AF_INET 2; AF_INET6 24, 28 or 30 by BSD).
    fn af_family(&mut self, af: Option<u32>, off: usize, end: usize) {
        match af {
            None => self.flag(Anomaly::TruncatedLink),
            Some(2) => self.ipv4(off, end),
            Some(24 | 28 | 30) => self.ipv6(off, end),
            Some(_) => self.flag(Anomaly::UnknownEthertype),
        }
    }

    /// Linux cooked capture v1: 16 bytes, protocol (an ethertype) last.
    fn sll(&mut self, end: usize) {
        let Some(h) = get::<16>(self.data, 0) else {
            self.flag(Anomaly::TruncatedLink);
            return;
        };
        self.ethertype(be16([h[14], h[15]]), 16, end, true);
    }

    /// Linux cooked capture v2: 20 bytes, protocol first.
    fn sll2(&mut self, end: usize) {
        let Some(h) = get::<20>(self.data, 0) else {
            self.flag(Anomaly::TruncatedLink);
            return;
        };
        self.ethertype(be16([h[0], h[1]]), 20, end, true);
    }

    /// PPP: optional 0xff03 address/control, then a 1- or 2-byte protocol (RFC 1661
    /// protocol-field compression: an odd first byte is the whole field).
    pub(super) fn ppp(&mut self, off: usize, end: usize) {
        let Some((proto, p)) = self.ppp_protocol(off) else {
            self.flag(Anomaly::TruncatedLink);
            return;
        };
        match proto {
            PPP_IPV4 => self.ipv4(p, end),
            PPP_IPV6 => self.ipv6(p, end),
            PPP_MPLS_UNICAST | PPP_MPLS_MULTICAST => self.mpls(p, end),
            _ => self.flag(Anomaly::UnknownEthertype),
        }
    }

    /// The protocol of a PPP frame at `off` and where its payload starts; None when cut short.
    fn ppp_protocol(&self, off: usize) -> Option<(u16, usize)> {
        let p = if get::<2>(self.data, off) == Some([0xff, 0x03]) { off + 2 } else { off };
        match *self.data.get(p)? {
            b0 if b0 & 1 == 1 => Some((u16::from(b0), p + 1)),
            _ => get::<2>(self.data, p).map(|b| (be16(b), p + 2)),
        }
    }

    /// Whether the PPP frame at `off` carries a packet netrec decodes (not PPP's own control
    /// protocols such as LCP or IPCP).
    pub(super) fn ppp_carries_packet(&self, off: usize) -> bool {
        self.ppp_protocol(off).is_some_and(|(proto, _)| {
            matches!(proto, PPP_IPV4 | PPP_IPV6 | PPP_MPLS_UNICAST | PPP_MPLS_MULTICAST)
        })
    }

    /// PPP in HDLC-like framing; the same link type also carries Cisco HDLC frames
    /// (address 0x0f/0x8f, then an ethertype).
    fn ppp_hdlc(&mut self, end: usize) {
        match get::<4>(self.data, 0) {
            Some([0x0f | 0x8f, ..]) => self.c_hdlc(end),
            _ => self.ppp(0, end),
        }
    }

    /// PPPoE session header (6 bytes), then PPP without address/control.
    fn pppoe(&mut self, off: usize, end: usize) {
        let Some(h) = get::<6>(self.data, off) else {
            self.flag(Anomaly::TruncatedLink);
            return;
        };
        let end = end.min(off + 6 + usize::from(be16([h[4], h[5]])));
        self.ppp(off + 6, end);
    }

    /// NFLOG: family, version, resource id, then TLVs (host-endian length and type,
    /// padded to 4 bytes). The packet is in the NFULA_PAYLOAD TLV.
    fn nflog(&mut self, end: usize) {
        let Some(h) = get::<4>(self.data, 0) else {
            self.flag(Anomaly::TruncatedLink);
            return;
        };
        // The writer's byte order is not recorded: take the one whose first TLV length is sane.
        let little = match get::<2>(self.data, 4) {
            Some(l) => {
                let le = usize::from(u16::from_le_bytes(l));
                (4..=end.saturating_sub(4)).contains(&le)
                    || !(4..=end.saturating_sub(4)).contains(&usize::from(be16(l)))
            }
            None => true,
        };
        let rd = |b: [u8; 2]| if little { u16::from_le_bytes(b) } else { u16::from_be_bytes(b) };
        let mut off = 4;
        while let Some(t) = get::<4>(self.data, off) {
            let len = usize::from(rd([t[0], t[1]]));
            // Flag bits NLA_F_NESTED / NLA_F_NET_BYTEORDER are not part of the type.
            let ty = rd([t[2], t[3]]) & 0x3fff;
            if len < 4 || off + len > end {
                self.flag(Anomaly::TruncatedLink);
                return;
            }
            if ty == NFULA_PAYLOAD {
                let (p, pend) = (off + 4, off + len);
                // The family says v4/v6; the version nibble must agree.
                match (h[0], self.data.get(p).map(|b| b >> 4)) {
                    (_, None) => self.flag(Anomaly::TruncatedLink),
                    (2, Some(4)) | (10, Some(6)) => self.ip_any(p, pend),
                    (2 | 10, Some(_)) => self.flag(Anomaly::BadIpVersion),
                    _ => self.ip_any(p, pend),
                }
                return;
            }
            off += (len + 3) & !3;
        }
        // No payload TLV (or the capture ends before it): nothing more to decode.
    }
}

fn af_is_ip(af: u32) -> bool {
    matches!(af, 2 | 24 | 28 | 30)
}
