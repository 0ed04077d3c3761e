//! netrec-recorder: turns kernel records into `netrec-format` types (the kernel ABI is
//! never the disk format) and, with issue #5, loads/attaches the eBPF programs.

pub mod ebpf;
pub mod live;
pub mod metrics;
pub mod privs;
pub mod run;
pub mod sinks;

use netrec_format::{Direction, LinkType, PacketRecord, Ts};
use netrec_recorder_common as abi;

/// Error converting a kernel ring-buffer record.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RecordError {
    #[error("ring record too short: {len} bytes, need at least {need}")]
    Short { len: usize, need: usize },
    #[error("ring record claims {cap_len} captured bytes but carries {available}")]
    CapLen { cap_len: usize, available: usize },
}

/// Convert one raw ring-buffer record (as read from the ring) into a packet record.
/// `clock_base_ns` is added to the kernel's monotonic time to get Unix time.
pub fn packet_from_ring(bytes: &[u8], clock_base_ns: u64) -> Result<PacketRecord, RecordError> {
    let need = core::mem::size_of::<abi::PacketMeta>();
    if bytes.len() < need {
        return Err(RecordError::Short { len: bytes.len(), need });
    }
    let u64_at = |o: usize| u64::from_le_bytes(bytes[o..o + 8].try_into().expect("8 bytes"));
    let u32_at = |o: usize| u32::from_le_bytes(bytes[o..o + 4].try_into().expect("4 bytes"));
    let ts_ns = u64_at(0);
    let ifindex = u32_at(8);
    let wire_len = u32_at(12);
    let cap_len = u16::from_le_bytes([bytes[16], bytes[17]]) as usize;
    let direction = Direction::from_u8(bytes[18]).unwrap_or(Direction::Unknown);
    let available = bytes.len() - need;
    if cap_len > available || cap_len > abi::MAX_SNAPLEN {
        return Err(RecordError::CapLen { cap_len, available });
    }
    Ok(PacketRecord {
        ts: Ts(ts_ns.wrapping_add(clock_base_ns)),
        iface: ifindex,
        direction,
        link_type: LinkType::ETHERNET,
        wire_len,
        data: bytes[need..need + cap_len].to_vec(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(meta: abi::PacketMeta, data: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(&meta.ts_ns.to_le_bytes());
        v.extend_from_slice(&meta.ifindex.to_le_bytes());
        v.extend_from_slice(&meta.wire_len.to_le_bytes());
        v.extend_from_slice(&meta.cap_len.to_le_bytes());
        v.push(meta.direction);
        v.extend_from_slice(&[0; 5]);
        v.extend_from_slice(data);
        v
    }

    #[test]
    fn converts_ring_record() {
        let meta =
            abi::PacketMeta { ts_ns: 5, ifindex: 7, wire_len: 1500, cap_len: 3, direction: 2, _pad: [0; 5] };
        let p = packet_from_ring(&raw(meta, &[1, 2, 3, 4]), 1_000).unwrap();
        assert_eq!(p.ts, Ts(1_005));
        assert_eq!(p.iface, 7);
        assert_eq!(p.wire_len, 1500);
        assert_eq!(p.direction, Direction::Egress);
        assert_eq!(p.data, vec![1, 2, 3]);
    }

    #[test]
    fn rejects_short_and_overlong() {
        assert!(matches!(packet_from_ring(&[0; 10], 0), Err(RecordError::Short { .. })));
        let meta =
            abi::PacketMeta { ts_ns: 0, ifindex: 0, wire_len: 9, cap_len: 9, direction: 1, _pad: [0; 5] };
        assert!(matches!(packet_from_ring(&raw(meta, &[0; 4]), 0), Err(RecordError::CapLen { .. })));
    }
}
