//! Helpers shared by the rules crate's integration tests: a classic-pcap reader (the rules crate
//! has no capture reader of its own) and the shared captures directory.

#![allow(dead_code)]

use netrec_format::{LinkType, Ts};
use std::path::Path;

#[path = "../../../tests/common/captures.rs"]
mod captures;
#[allow(unused_imports)] // not every test file of the crate reads the shared captures
pub use captures::captures_dir;

pub struct Frame {
    pub ts: Ts,
    pub wire_len: u32,
    pub data: Vec<u8>,
}

/// Classic little-endian pcap, micro- or nanosecond; stops at a truncated last record.
pub fn read_pcap(path: &Path) -> (LinkType, Vec<Frame>) {
    let b = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let u32le = |i: usize| u32::from_le_bytes(b[i..i + 4].try_into().unwrap());
    let nano = match u32le(0) {
        0xa1b2_c3d4 => false,
        0xa1b2_3c4d => true,
        m => panic!("{}: unexpected magic {m:#x}", path.display()),
    };
    let link = LinkType(u32le(20));
    let mut frames = Vec::new();
    let mut i = 24;
    while i + 16 <= b.len() {
        let (sec, frac, incl, orig) = (u32le(i), u32le(i + 4), u32le(i + 8) as usize, u32le(i + 12));
        let ns = if nano { u64::from(frac) } else { u64::from(frac) * 1000 };
        if b.len() < i + 16 + incl {
            break;
        }
        frames.push(Frame {
            ts: Ts(u64::from(sec) * 1_000_000_000 + ns),
            wire_len: orig,
            data: b[i + 16..i + 16 + incl].to_vec(),
        });
        i += 16 + incl;
    }
    (link, frames)
}
