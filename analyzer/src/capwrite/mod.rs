//! Capture writers: classic pcap (nanosecond) and pcapng, for exports and test fixtures.
//!
//! Writers emit little-endian files and write straight to `W`; wrap files in a
//! `BufWriter`. Output is a pure function of the calls made (no clock, no host data).

mod pcap;
mod pcapng;

pub use pcap::PcapWriter;
pub use pcapng::PcapNgWriter;

use std::io;

/// A packet or interface that cannot be written, or an I/O failure.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CapWriteError {
    #[error("write failed")]
    Io(#[from] io::Error),
    /// Classic pcap stores seconds in 32 bits (until 2106-02-07).
    #[error("timestamp {ts_ns} ns does not fit a pcap record (32-bit seconds)")]
    TimestampOutOfRange { ts_ns: u64 },
    #[error("packet of {len} bytes is too long to write")]
    PacketTooLong { len: usize },
    #[error("interface {iface} was not added (have {count})")]
    UnknownInterface { iface: u32, count: u32 },
    #[error("option {what} of {len} bytes exceeds the 65535-byte pcapng option limit")]
    OptionTooLong { what: &'static str, len: usize },
}
