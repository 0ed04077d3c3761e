//! Decoder implementation (see `decode.rs` for the contract).

use crate::decode::*;
use crate::model::LinkType;

/// Decode one frame. `wire_len` is the frame's length on the wire (>= `data.len()`).
pub fn decode(link_type: LinkType, data: &[u8], wire_len: u32) -> Decoded {
    let _ = (data, wire_len);
    let mut d = Decoded::default();
    if link_type != LinkType::ETHERNET {
        d.anomalies.set(Anomaly::UnsupportedLinkType);
    }
    d
}
