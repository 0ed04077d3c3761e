//! netrec project tasks: deterministic fixture and benchmark capture generation.
//!
//! Everything is seeded and byte-for-byte reproducible: no clock, no HashMap iteration.

pub mod bench;
pub mod dns;
pub mod fixtures;
pub mod frame;
pub mod pcap;
pub mod rng;
pub mod scenario;
pub mod sim;
pub mod verify;
