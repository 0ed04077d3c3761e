//! Flow keys: the canonical (direction-free) lookup key and the initiator-first
//! [`FlowKey`] stored in records.

use netrec_format::FlowKey;
use netrec_format::decode::{NetLayer, Transport};
use std::hash::{Hash, Hasher};
use std::net::IpAddr;

/// ICMP echo request/reply type pairs (v4: 8/0, v6: 128/129).
const ICMP_ECHO_REQUEST: u8 = 8;
const ICMP_ECHO_REPLY: u8 = 0;
const ICMPV6_ECHO_REQUEST: u8 = 128;
const ICMPV6_ECHO_REPLY: u8 = 129;

/// Canonical lookup key: endpoint `a` sorts before endpoint `b`, so both directions of
/// a flow hash to the same key. Cheap to hash (6 words).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct NKey {
    a: u128,
    b: u128,
    /// a_port << 16 | b_port
    ports: u32,
    proto: u16,
    vlan: u16,
    tunnel: u32,
    v6: bool,
}

impl Hash for NKey {
    #[inline]
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u128(self.a);
        state.write_u128(self.b);
        state.write_u64(u64::from(self.ports) << 32 | u64::from(self.proto) << 16 | u64::from(self.vlan));
        state.write_u64(u64::from(self.tunnel) << 1 | u64::from(self.v6));
    }
}

impl NKey {
    /// The key of no packet (an empty table slot).
    pub const EMPTY: NKey = NKey { a: 0, b: 0, ports: 0, proto: 0, vlan: 0, tunnel: 0, v6: false };

    /// The flow's key with endpoint `a` (`a_first`) or `b` as its source: what `KeyInfo::oriented`
    /// built when the flow began, recomputed so a flow does not store both keys.
    #[inline]
    pub fn flow_key(&self, a_first: bool) -> FlowKey {
        let ip =
            |bits: u128| if self.v6 { IpAddr::V6(bits.into()) } else { IpAddr::V4((bits as u32).into()) };
        let (hi, lo) = ((self.ports >> 16) as u16, self.ports as u16);
        // ICMP keys (the only ones whose ports describe the flow, not the endpoints) hold the
        // same ports in both orders; any other key holds endpoint a's port first.
        let icmp = matches!(self.proto, 1 | 58);
        let (src, dst, src_port, dst_port) = match (a_first, icmp) {
            (true, _) => (self.a, self.b, hi, lo),
            (false, true) => (self.b, self.a, hi, lo),
            (false, false) => (self.b, self.a, lo, hi),
        };
        FlowKey {
            proto: self.proto,
            src_ip: ip(src),
            src_port,
            dst_ip: ip(dst),
            dst_port,
            vlan: self.vlan,
            tunnel_id: self.tunnel,
        }
    }
}

/// The canonical key of a flow key (initiator first) and whether its source is endpoint `a`:
/// what the table stores, for tests that make flow updates without a table. Both addresses must
/// be of one family (as in every packet).
#[cfg(test)]
pub(crate) fn canonical(k: &FlowKey) -> (NKey, bool) {
    let (s, v6) = ip_bits(k.src_ip);
    let (d, _) = ip_bits(k.dst_ip);
    let icmp = matches!(k.proto, 1 | 58);
    let src_is_a = if icmp { s <= d } else { (s, k.src_port) <= (d, k.dst_port) };
    let (a, b) = if src_is_a { (s, d) } else { (d, s) };
    let (sp, dp) = (u32::from(k.src_port), u32::from(k.dst_port));
    let ports = if icmp || src_is_a { sp << 16 | dp } else { dp << 16 | sp };
    (NKey { a, b, ports, proto: k.proto, vlan: k.vlan, tunnel: k.tunnel_id, v6 }, src_is_a)
}

/// Everything the table needs to know about a packet's key.
#[derive(Clone, Copy, Debug)]
pub(crate) struct KeyInfo {
    pub nkey: NKey,
    /// The packet's sender is endpoint `a` of the canonical key.
    pub sender_is_a: bool,
    /// The key with the packet's sender as `src`, from the packet alone: debug builds check
    /// every flow's key (rebuilt from `nkey`) against it. Not built in release (38 instructions
    /// a packet).
    #[cfg(debug_assertions)]
    pub sender_key: FlowKey,
    /// Ports describe the flow, not the endpoints (ICMP): flipping the key keeps them.
    #[cfg(debug_assertions)]
    pub ports_fixed: bool,
    /// If this packet opens the flow, its receiver is the initiator (ICMP echo reply).
    /// TCP SYN/ACK is decided by the TCP code.
    pub receiver_initiates: bool,
}

#[cfg(debug_assertions)]
impl KeyInfo {
    /// The key with the initiator first, given whether the sender initiated.
    pub fn oriented(&self, sender_initiates: bool) -> FlowKey {
        if sender_initiates {
            return self.sender_key;
        }
        let k = self.sender_key;
        let (src_port, dst_port) =
            if self.ports_fixed { (k.src_port, k.dst_port) } else { (k.dst_port, k.src_port) };
        FlowKey { src_ip: k.dst_ip, dst_ip: k.src_ip, src_port, dst_port, ..k }
    }
}

#[inline]
fn ip_bits(ip: IpAddr) -> (u128, bool) {
    match ip {
        IpAddr::V4(v4) => (u128::from(u32::from(v4)), false),
        IpAddr::V6(v6) => (u128::from(v6), true),
    }
}

/// Build the key of a packet whose network layer is `net` and effective transport
/// `transport`.
#[inline]
pub(crate) fn build(net: &NetLayer, transport: &Transport, vlan: u16, tunnel_id: u32) -> KeyInfo {
    let (src_port, dst_port, ports_fixed, receiver_initiates) = match *transport {
        Transport::Tcp(t) => (t.src_port, t.dst_port, false, false),
        Transport::Udp(u) => (u.src_port, u.dst_port, false, false),
        Transport::Sctp(s) => (s.src_port, s.dst_port, false, false),
        Transport::Icmp(i) => icmp_ports(i.icmp_type, i.code, i.ident, ICMP_ECHO_REQUEST, ICMP_ECHO_REPLY),
        Transport::Icmpv6(i) => {
            icmp_ports(i.icmp_type, i.code, i.ident, ICMPV6_ECHO_REQUEST, ICMPV6_ECHO_REPLY)
        }
        Transport::Other | Transport::None => (0, 0, false, false),
    };
    let (s, v6) = ip_bits(net.src);
    let (d, _) = ip_bits(net.dst);
    let sender_is_a = if ports_fixed { s <= d } else { (s, src_port) <= (d, dst_port) };
    let (a, b) = if sender_is_a { (s, d) } else { (d, s) };
    let ports = if ports_fixed || sender_is_a {
        u32::from(src_port) << 16 | u32::from(dst_port)
    } else {
        u32::from(dst_port) << 16 | u32::from(src_port)
    };
    let proto = u16::from(net.proto);
    KeyInfo {
        nkey: NKey { a, b, ports, proto, vlan, tunnel: tunnel_id, v6 },
        sender_is_a,
        #[cfg(debug_assertions)]
        sender_key: FlowKey { proto, src_ip: net.src, src_port, dst_ip: net.dst, dst_port, vlan, tunnel_id },
        #[cfg(debug_assertions)]
        ports_fixed,
        receiver_initiates,
    }
}

/// ICMP keying: an echo request and its reply share (ident, request type<<8|code);
/// every other message keys on (0, type<<8|code).
fn icmp_ports(ty: u8, code: u8, ident: u16, request: u8, reply: u8) -> (u16, u16, bool, bool) {
    let tc = |t: u8| u16::from(t) << 8 | u16::from(code);
    if ty == request {
        (ident, tc(request), true, false)
    } else if ty == reply {
        (ident, tc(request), true, true)
    } else {
        (0, tc(ty), true, false)
    }
}
