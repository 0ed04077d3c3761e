//! netrec-analyzer: sources (pcap, pcapng, segments) -> decoder -> engine -> SQLite,
//! and the reports.

pub mod capwrite;
pub mod segments;
pub mod source;
