//! netrec-analyzer: sources (pcap, pcapng, segments) -> decoder -> engine -> SQLite,
//! and the reports.

pub mod capwrite;
pub mod db;
pub mod export;
pub mod parity;
pub mod pipeline;
pub mod report;
pub mod segments;
pub mod segsource;
pub mod source;
