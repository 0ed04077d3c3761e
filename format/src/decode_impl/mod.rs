//! Decoder implementation (see `decode.rs` for the contract and `docs/decoder.md`).
//!
//! Layout: `link` (link-layer headers, Ethernet, VLAN, ARP), `ip` (IPv4, IPv6 and the
//! upper-layer dispatch), `transport` (TCP, UDP, ICMP) and `tunnel` (GRE, ERSPAN, VXLAN,
//! Geneve, IP-in-IP, GTP-U, L2TP; MPLS label stacks are in `link`). Every read goes through
//! the bounds-checked helpers below, so no input can panic; nothing allocates.
//!
//! Offsets: every offset is absolute within the frame bytes. Each layer also receives
//! `end`, the absolute offset where its enclosing payload ends *on the wire* (as stated
//! by the outer headers), which may lie beyond `data.len()` when the capture was cut by
//! a snaplen. Header fields are parsed only from captured bytes; lengths come from `end`.

mod ip;
mod link;
mod transport;
mod tunnel;

use crate::decode::*;
use crate::model::LinkType;

/// Tunnels followed before `TunnelTooDeep` is set.
const MAX_TUNNEL_DEPTH: u8 = 3;

/// Decode one frame. `wire_len` is the frame's length on the wire (>= `data.len()`;
/// a smaller value is treated as `data.len()`).
pub fn decode(link_type: LinkType, data: &[u8], wire_len: u32) -> Decoded {
    let end = usize::try_from(wire_len).unwrap_or(usize::MAX).max(data.len());
    let mut cx = Cx { data, d: Decoded::default(), depth: 0 };
    cx.link(link_type, end);
    cx.d
}

/// Decoding state for one frame.
struct Cx<'a> {
    data: &'a [u8],
    d: Decoded,
    /// Tunnels decapsulated so far.
    depth: u8,
}

impl Cx<'_> {
    #[inline]
    fn flag(&mut self, a: Anomaly) {
        self.d.anomalies.set(a);
    }

    /// Enter one more level of encapsulation (tunnel, pseudowire, 802.1ah): false, with
    /// `tunnel_too_deep`, past `MAX_TUNNEL_DEPTH`. Every nesting path goes through it, so a
    /// crafted frame cannot recurse once per 20-odd bytes and exhaust the stack.
    fn nest(&mut self) -> bool {
        if self.depth >= MAX_TUNNEL_DEPTH {
            self.flag(Anomaly::TunnelTooDeep);
            return false;
        }
        self.depth += 1;
        true
    }

    /// Record the bytes after the last decoded header as the payload.
    #[inline]
    fn payload(&mut self, off: usize, len: usize) {
        self.d.payload_offset = to_u32(off);
        self.d.payload_len = to_u32(len);
    }
}

/// `N` captured bytes at `off`, or `None` when the capture is shorter.
#[inline]
fn get<const N: usize>(data: &[u8], off: usize) -> Option<[u8; N]> {
    data.get(off..)?.first_chunk::<N>().copied()
}

#[inline]
fn be16(b: [u8; 2]) -> u16 {
    u16::from_be_bytes(b)
}

#[inline]
fn to_u32(x: usize) -> u32 {
    u32::try_from(x).unwrap_or(u32::MAX)
}
