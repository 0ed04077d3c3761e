//! Kernel <-> user ABI of the netrec eBPF programs.
//!
//! `#[repr(C)]`, explicit padding, sizes asserted at compile time so the kernel object
//! and user space can never silently disagree. These structs are an ABI, not a disk
//! format: user space converts them to `netrec-format` types before anything is stored.
#![no_std]

/// Default number of frame bytes copied into each ring-buffer record.
pub const DEFAULT_SNAPLEN: u32 = 128;
/// Largest snaplen the kernel program supports (the record's fixed data array).
pub const MAX_SNAPLEN: usize = 256;

/// Slots of the `CONFIG` array map, written by user space before attaching.
pub const CONFIG_SNAPLEN: u32 = 0;
pub const CONFIG_FLAGS: u32 = 1;
pub const CONFIG_SLOTS: u32 = 4;
/// `CONFIG_FLAGS` bit: copy packet headers into the ring buffer (off = flow counters only).
pub const FLAG_RECORD_HEADERS: u32 = 1;
/// The kernel wakes the ring reader only when this many bytes are queued; user space also
/// drains on a short timer, so records never wait long.
pub const WAKEUP_BYTES: u64 = 64 * 1024;

/// Direction values carried in [`PacketMeta::direction`] and [`FlowKey::direction`].
pub const DIR_INGRESS: u8 = 1;
pub const DIR_EGRESS: u8 = 2;

/// Per-CPU counter slots (index into the `COUNTERS` per-CPU array).
pub mod counter {
    pub const PACKETS: u32 = 0;
    pub const BYTES: u32 = 1;
    pub const SYN: u32 = 2;
    pub const SYN_ACK: u32 = 3;
    pub const RST: u32 = 4;
    pub const ICMP: u32 = 5;
    pub const NON_IP: u32 = 6;
    /// Ring-buffer reserve failures: header records lost.
    pub const RING_DROPS: u32 = 7;
    /// Flow map insert failures (map full).
    pub const MAP_FULL: u32 = 8;
    /// Flow map updates lost to a concurrent update (EEXIST/EBUSY).
    pub const MAP_BUSY: u32 = 9;
    pub const COUNT: u32 = 10;
}

/// Flow map key: the 5-tuple as seen on the wire (not normalized; user space pairs
/// directions). IPv4 addresses are stored as IPv4-mapped IPv6 (`::ffff:a.b.c.d`).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct FlowKey {
    pub src: [u8; 16],
    pub dst: [u8; 16],
    pub src_port: u16,
    pub dst_port: u16,
    pub proto: u8,
    pub ip_version: u8,
    pub _pad: [u8; 2],
    pub ifindex: u32,
}

/// Per-flow counters kept by the kernel for one direction of one flow.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct FlowCounters {
    pub packets: u64,
    pub bytes: u64,
    /// Transport payload bytes (frame length minus link, network and transport headers).
    pub payload_bytes: u64,
    pub first_ns: u64,
    pub last_ns: u64,
    /// OR of TCP flag bytes seen.
    pub tcp_flags: u8,
    pub direction: u8,
    pub _pad: [u8; 6],
}

/// Header of every ring-buffer record; `cap_len` frame bytes follow in [`PacketRecord::data`].
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct PacketMeta {
    /// `bpf_ktime_get_ns()` (CLOCK_MONOTONIC); user space adds the clock base.
    pub ts_ns: u64,
    pub ifindex: u32,
    pub wire_len: u32,
    pub cap_len: u16,
    pub direction: u8,
    pub _pad: [u8; 5],
}

/// A ring-buffer record: metadata plus up to MAX_SNAPLEN frame bytes.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PacketRecord {
    pub meta: PacketMeta,
    pub data: [u8; MAX_SNAPLEN],
}

const _: () = assert!(core::mem::size_of::<FlowKey>() == 44);
const _: () = assert!(core::mem::size_of::<FlowCounters>() == 48);
const _: () = assert!(core::mem::size_of::<PacketMeta>() == 24);
const _: () = assert!(core::mem::size_of::<PacketRecord>() == 24 + MAX_SNAPLEN);

impl FlowKey {
    /// IPv4-mapped form of an IPv4 address, as the kernel stores it.
    pub const fn v4_mapped(addr: [u8; 4]) -> [u8; 16] {
        [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, addr[0], addr[1], addr[2], addr[3]]
    }
}

// SAFETY: plain #[repr(C)] data with explicit padding; every bit pattern is valid.
#[cfg(feature = "user")]
unsafe impl aya::Pod for FlowKey {}
#[cfg(feature = "user")]
unsafe impl aya::Pod for FlowCounters {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v4_mapped_layout() {
        let m = FlowKey::v4_mapped([10, 77, 0, 1]);
        assert_eq!(&m[10..], &[0xff, 0xff, 10, 77, 0, 1]);
        assert!(m[..10].iter().all(|b| *b == 0));
    }

    #[test]
    fn record_alignment_is_8() {
        assert_eq!(core::mem::align_of::<PacketRecord>(), 8);
        assert_eq!(core::mem::align_of::<FlowCounters>(), 8);
    }
}
