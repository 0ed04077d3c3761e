//! The header decoder: raw frame bytes + link type -> decoded headers.
//!
//! One decoder serves the pcap path, the segment replay path and the live recorder.
//! It never panics and never allocates: malformed or truncated headers set an
//! [`Anomaly`] bit (with the layer) and decoding stops there; the packet is still counted.

use crate::model::Tunnel;
use std::net::IpAddr;

/// Maximum VLAN tags kept (outermost first). Deeper stacks are still skipped.
pub const MAX_VLANS: usize = 4;

/// Decode anomalies, as a bit set. Names are stable (`Anomaly::name`), used in outputs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Anomalies(pub u32);

/// One decode anomaly kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum Anomaly {
    /// Link-layer header shorter than its fixed size.
    TruncatedLink = 1 << 0,
    /// Link type netrec cannot decode.
    UnsupportedLinkType = 1 << 1,
    /// VLAN stack deeper than MAX_VLANS (still decoded).
    VlanTooDeep = 1 << 2,
    /// IPv4 header cut short by the capture (snaplen) or the frame.
    TruncatedIpv4 = 1 << 3,
    /// IPv4 IHL < 5 or larger than the available bytes / total length.
    BadIpv4HeaderLength = 1 << 4,
    /// IPv4 total length smaller than the header, or larger than the frame on the wire.
    BadIpv4TotalLength = 1 << 5,
    /// IPv4 reserved (evil) flag bit set.
    Ipv4ReservedFlag = 1 << 6,
    /// TTL / hop limit 0 or 1.
    LowTtl = 1 << 7,
    TruncatedIpv6 = 1 << 8,
    /// IPv6 extension header chain malformed or truncated.
    BadIpv6ExtHeader = 1 << 9,
    /// Fragment offset + length beyond 65535, or a non-last fragment whose payload is not a multiple of 8.
    BadFragment = 1 << 10,
    /// First fragment too small to hold the transport header (tiny-fragment evasion).
    TinyFragment = 1 << 11,
    TruncatedTcp = 1 << 12,
    /// TCP data offset < 5 or beyond the segment.
    BadTcpHeaderLength = 1 << 13,
    TruncatedUdp = 1 << 14,
    /// UDP length field disagrees with the IP payload length.
    BadUdpLength = 1 << 15,
    TruncatedIcmp = 1 << 16,
    /// Tunnel header malformed or truncated (decoding stops at the outer packet).
    BadTunnel = 1 << 17,
    TruncatedArp = 1 << 18,
    /// Network protocol in the link header that netrec does not decode (not an error).
    UnknownEthertype = 1 << 19,
    /// Tunnels nested deeper than netrec follows.
    TunnelTooDeep = 1 << 20,
    /// IP version nibble disagrees with the link header.
    BadIpVersion = 1 << 21,
    /// TCP reserved bits (the 3 bits before NS/AE) set.
    TcpReservedBits = 1 << 22,
    /// IPv6 payload length larger than the packet on the wire (the wire length is used).
    BadIpv6PayloadLength = 1 << 23,
}

impl Anomaly {
    pub const ALL: [Anomaly; 24] = [
        Anomaly::TruncatedLink,
        Anomaly::UnsupportedLinkType,
        Anomaly::VlanTooDeep,
        Anomaly::TruncatedIpv4,
        Anomaly::BadIpv4HeaderLength,
        Anomaly::BadIpv4TotalLength,
        Anomaly::Ipv4ReservedFlag,
        Anomaly::LowTtl,
        Anomaly::TruncatedIpv6,
        Anomaly::BadIpv6ExtHeader,
        Anomaly::BadFragment,
        Anomaly::TinyFragment,
        Anomaly::TruncatedTcp,
        Anomaly::BadTcpHeaderLength,
        Anomaly::TruncatedUdp,
        Anomaly::BadUdpLength,
        Anomaly::TruncatedIcmp,
        Anomaly::BadTunnel,
        Anomaly::TruncatedArp,
        Anomaly::UnknownEthertype,
        Anomaly::TunnelTooDeep,
        Anomaly::BadIpVersion,
        Anomaly::TcpReservedBits,
        Anomaly::BadIpv6PayloadLength,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Anomaly::TruncatedLink => "truncated_link",
            Anomaly::UnsupportedLinkType => "unsupported_link_type",
            Anomaly::VlanTooDeep => "vlan_too_deep",
            Anomaly::TruncatedIpv4 => "truncated_ipv4",
            Anomaly::BadIpv4HeaderLength => "bad_ipv4_header_length",
            Anomaly::BadIpv4TotalLength => "bad_ipv4_total_length",
            Anomaly::Ipv4ReservedFlag => "ipv4_reserved_flag",
            Anomaly::LowTtl => "low_ttl",
            Anomaly::TruncatedIpv6 => "truncated_ipv6",
            Anomaly::BadIpv6ExtHeader => "bad_ipv6_ext_header",
            Anomaly::BadFragment => "bad_fragment",
            Anomaly::TinyFragment => "tiny_fragment",
            Anomaly::TruncatedTcp => "truncated_tcp",
            Anomaly::BadTcpHeaderLength => "bad_tcp_header_length",
            Anomaly::TruncatedUdp => "truncated_udp",
            Anomaly::BadUdpLength => "bad_udp_length",
            Anomaly::TruncatedIcmp => "truncated_icmp",
            Anomaly::BadTunnel => "bad_tunnel",
            Anomaly::TruncatedArp => "truncated_arp",
            Anomaly::UnknownEthertype => "unknown_ethertype",
            Anomaly::TunnelTooDeep => "tunnel_too_deep",
            Anomaly::BadIpVersion => "bad_ip_version",
            Anomaly::TcpReservedBits => "tcp_reserved_bits",
            Anomaly::BadIpv6PayloadLength => "bad_ipv6_payload_length",
        }
    }

    /// Whether this anomaly means "the packet is broken" (as opposed to "netrec does not
    /// look inside"): unsupported link types and unknown ethertypes are not errors.
    pub fn is_malformed(self) -> bool {
        // Not decode errors: what netrec does not look into, and protocol oddities that
        // decode fine and are the detectors' business (TTL 0/1, reserved bits, deep stacks).
        !matches!(
            self,
            Anomaly::UnsupportedLinkType
                | Anomaly::UnknownEthertype
                | Anomaly::LowTtl
                | Anomaly::Ipv4ReservedFlag
                | Anomaly::TcpReservedBits
                | Anomaly::VlanTooDeep
                | Anomaly::TunnelTooDeep
        )
    }
}

impl Anomalies {
    pub fn set(&mut self, a: Anomaly) {
        self.0 |= a as u32;
    }
    pub fn has(self, a: Anomaly) -> bool {
        self.0 & a as u32 != 0
    }
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }
    pub fn iter(self) -> impl Iterator<Item = Anomaly> {
        Anomaly::ALL.into_iter().filter(move |a| self.has(*a))
    }
    /// True when any anomaly other than "not decoded" ones is set.
    pub fn any_malformed(self) -> bool {
        self.iter().any(Anomaly::is_malformed)
    }
}

/// IPv4 fragment information (also used for IPv6 fragment headers).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct FragInfo {
    /// Identification (IPv4: 16 bits; IPv6: 32 bits).
    pub id: u32,
    /// Offset in bytes.
    pub offset: u32,
    pub more: bool,
}

impl FragInfo {
    pub fn is_first(&self) -> bool {
        self.offset == 0
    }
}

/// The network layer of the (innermost) packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NetLayer {
    pub src: IpAddr,
    pub dst: IpAddr,
    /// Transport protocol (after IPv6 extension headers, or an IPv4 AH header).
    pub proto: u8,
    /// TTL or hop limit.
    pub ttl: u8,
    /// IPv4 header length in bytes (IHL*4, plus an AH header when one was followed); for IPv6
    /// 40 + extension headers.
    pub header_len: u16,
    /// IPv4 total length / IPv6 40 + payload length, as stated in the header.
    pub total_len: u32,
    /// Set when the packet is a fragment (offset != 0 or more fragments).
    pub frag: Option<FragInfo>,
    /// IPv4 DF bit.
    pub dont_fragment: bool,
    /// IPv4 TOS / IPv6 traffic class.
    pub tos: u8,
    /// Offset of the network header within the frame bytes.
    pub offset: u32,
}

/// TCP header fields.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TcpInfo {
    pub src_port: u16,
    pub dst_port: u16,
    pub seq: u32,
    pub ack: u32,
    /// FIN=0x01 SYN=0x02 RST=0x04 PSH=0x08 ACK=0x10 URG=0x20 ECE=0x40 CWR=0x80.
    pub flags: u8,
    /// NS / AE bit (the 9th flag).
    pub ns: bool,
    pub window: u16,
    pub header_len: u8,
    /// Window scale option (shift), MSS option, SACK permitted, when present.
    pub wscale: Option<u8>,
    pub mss: Option<u16>,
    pub sack_permitted: bool,
}

pub mod tcp_flags {
    pub const FIN: u8 = 0x01;
    pub const SYN: u8 = 0x02;
    pub const RST: u8 = 0x04;
    pub const PSH: u8 = 0x08;
    pub const ACK: u8 = 0x10;
    pub const URG: u8 = 0x20;
    pub const ECE: u8 = 0x40;
    pub const CWR: u8 = 0x80;
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct UdpInfo {
    pub src_port: u16,
    pub dst_port: u16,
    /// UDP length field.
    pub length: u16,
}

/// The SCTP common header (RFC 9260): its ports key flows as TCP's and UDP's do.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SctpInfo {
    pub src_port: u16,
    pub dst_port: u16,
    /// Type of the first chunk (1 INIT, 2 INIT ACK, 6 ABORT, ...), when one was captured.
    pub first_chunk: Option<u8>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IcmpInfo {
    pub icmp_type: u8,
    pub code: u8,
    /// Echo identifier and sequence (0 for other types).
    pub ident: u16,
    pub seq: u16,
}

/// The transport layer of the innermost packet.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Transport {
    /// No transport header (not IP, non-first fragment, or truncated before it).
    #[default]
    None,
    Tcp(TcpInfo),
    Udp(UdpInfo),
    Icmp(IcmpInfo),
    Icmpv6(IcmpInfo),
    Sctp(SctpInfo),
    /// Another IP protocol (the number is in `NetLayer::proto`).
    Other,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ArpInfo {
    /// 1 request, 2 reply (3/4 RARP).
    pub op: u16,
    pub sender_ip: std::net::Ipv4Addr,
    pub target_ip: std::net::Ipv4Addr,
}

/// Everything the decoder found in one frame. Plain data, `Copy`, no allocation.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Decoded {
    /// VLAN ids, outermost first; `vlan_count` of them are valid.
    pub vlans: [u16; MAX_VLANS],
    pub vlan_count: u8,
    /// MPLS label stack entries skipped on the way to the network layer (saturating).
    pub mpls_labels: u8,
    /// The outermost tunnel the packet was decapsulated from (inner headers are below).
    pub tunnel: Option<Tunnel>,
    /// Innermost network layer.
    pub net: Option<NetLayer>,
    pub transport: Transport,
    pub arp: Option<ArpInfo>,
    /// Ethertype of the (innermost) link layer, when the link type has one.
    pub ethertype: Option<u16>,
    /// Transport payload offset within the frame bytes and its length on the wire as
    /// stated by the headers (the captured part may be shorter).
    pub payload_offset: u32,
    pub payload_len: u32,
    pub anomalies: Anomalies,
}

impl Decoded {
    /// Innermost VLAN id, 0 when untagged.
    pub fn vlan(&self) -> u16 {
        if self.vlan_count == 0 { 0 } else { self.vlans[self.vlan_count as usize - 1] }
    }
    pub fn ports(&self) -> Option<(u16, u16)> {
        match self.transport {
            Transport::Tcp(t) => Some((t.src_port, t.dst_port)),
            Transport::Udp(u) => Some((u.src_port, u.dst_port)),
            Transport::Sctp(s) => Some((s.src_port, s.dst_port)),
            _ => None,
        }
    }
}

// The implementation lives in decode_impl (kept apart so the types above stay the
// readable contract).
pub use crate::decode_impl::decode;
