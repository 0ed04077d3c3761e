//! netrec-analyzer: sources (pcap, pcapng, segments) -> decoder -> engine -> SQLite,
//! and the reports.

pub mod capwrite;
pub mod pipeline;
pub mod segsource;
pub mod segments;
pub mod source;
