//! Helpers shared by the end-to-end tests of the `netrec` binary.
#![allow(dead_code)]

pub mod netns;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

#[path = "captures.rs"]
mod captures;
#[allow(unused_imports)] // not every test file of the crate reads the shared captures
pub use captures::captures_dir;

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn fixture(rel: &str) -> PathBuf {
    repo_root().join("fixtures").join(rel)
}

/// Capture files listed in MANIFEST.tsv, in manifest order.
pub fn manifest_captures() -> Vec<PathBuf> {
    let dir = captures_dir();
    let text = std::fs::read_to_string(dir.join("MANIFEST.tsv")).expect("read MANIFEST.tsv");
    text.lines()
        .skip(1)
        .filter_map(|l| l.split('\t').next())
        .filter(|f| !f.is_empty())
        .map(|f| dir.join(f))
        .collect()
}

pub fn netrec(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_netrec")).args(args).output().expect("run netrec")
}

pub fn netrec_in(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_netrec")).current_dir(dir).args(args).output().expect("run netrec")
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Parse JSON lines.
pub fn jsonl(o: &Output) -> Vec<serde_json::Value> {
    stdout(o)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad json line {l:?}: {e}")))
        .collect()
}

/// Opens a database read-only (tests inspect what `netrec analyze` wrote, never change it).
pub fn db_ro(db: &Path) -> rusqlite::Connection {
    rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .unwrap_or_else(|e| panic!("open {}: {e}", db.display()))
}

/// One integer from a query (e.g. `SELECT count(*) FROM flows`).
pub fn sql_i64(db: &Path, sql: &str) -> i64 {
    db_ro(db).query_row(sql, [], |r| r.get(0)).unwrap_or_else(|e| panic!("{sql}: {e}"))
}

/// Row counts of every netrec table, by name.
pub fn table_counts(db: &Path) -> std::collections::BTreeMap<&'static str, i64> {
    ["inputs", "flows", "alerts", "incidents", "incident_alerts", "hosts", "timeseries", "losses"]
        .into_iter()
        .map(|t| (t, sql_i64(db, &format!("SELECT count(*) FROM {t}"))))
        .collect()
}

/// A path as `&str` (temp dirs and fixtures are UTF-8).
pub fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// Exit code; a missing code means netrec died by a signal.
pub fn code(o: &Output) -> i32 {
    o.status.code().unwrap_or_else(|| panic!("netrec killed by a signal:\n{}", stderr(o)))
}

/// Non-empty stderr lines.
pub fn err_lines(o: &Output) -> Vec<String> {
    stderr(o).lines().filter(|l| !l.trim().is_empty()).map(str::to_owned).collect()
}

pub fn assert_no_panic(o: &Output, what: &str) {
    let e = stderr(o);
    assert!(!e.contains("panicked"), "{what}: netrec panicked:\n{e}");
    assert!(o.status.code().is_some(), "{what}: killed by a signal:\n{e}");
}

/// `"<secs>.<9 digits>"` -> nanoseconds.
pub fn ts_ns(t: &str) -> u64 {
    let (s, f) = t.split_once('.').unwrap_or_else(|| panic!("bad timestamp {t}"));
    assert_eq!(f.len(), 9, "timestamp {t} needs 9 fraction digits");
    s.parse::<u64>().expect("seconds") * 1_000_000_000 + f.parse::<u64>().expect("nanoseconds")
}

/// Every packet of a capture as owned records, each cut to `snaplen` bytes (`usize::MAX`: whole).
/// Panics naming the file when it cannot be read.
pub fn capture_records(path: &Path, snaplen: usize) -> Vec<netrec_format::PacketRecord> {
    let mut src = netrec_analyzer::source::CaptureSource::open(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut out = Vec::new();
    while let Some(p) = src.next_packet().unwrap_or_else(|e| panic!("{}: {e}", path.display())) {
        out.push(netrec_format::PacketRecord {
            ts: p.ts,
            iface: p.iface,
            direction: p.direction,
            link_type: p.link_type,
            wire_len: p.wire_len,
            data: p.data[..p.data.len().min(snaplen)].to_vec(),
        });
    }
    out
}

/// A pcap (microseconds, link type `lt`) of `frames`, 1 ms apart from 2023-11-14 22:13:20 UTC.
pub fn write_pcap(path: &std::path::Path, lt: u32, frames: &[Vec<u8>]) {
    let mut out = Vec::new();
    out.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    out.extend_from_slice(&[2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    out.extend_from_slice(&65535u32.to_le_bytes());
    out.extend_from_slice(&lt.to_le_bytes());
    for (i, f) in frames.iter().enumerate() {
        let us = 1_700_000_000_000_000u64 + i as u64 * 1000;
        out.extend_from_slice(&((us / 1_000_000) as u32).to_le_bytes());
        out.extend_from_slice(&((us % 1_000_000) as u32).to_le_bytes());
        out.extend_from_slice(&(f.len() as u32).to_le_bytes());
        out.extend_from_slice(&(f.len() as u32).to_le_bytes());
        out.extend_from_slice(f);
    }
    std::fs::write(path, out).unwrap();
}
