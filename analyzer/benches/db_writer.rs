//! Throughput of the SQLite writer alone, the database side of `netrec analyze`:
//! N synthetic flows shaped like a spoofed SYN flood (every flow from its own source address,
//! sources in pseudo-random order, one target), then `finish` (hosts, flow index, commit).
//!
//! `cargo bench -p netrec-analyzer --bench db_writer` (release profile). Environment:
//! `NETREC_BENCH_FLOWS` (default 1000000), `NETREC_BENCH_SOURCES` (distinct source addresses,
//! default = flows; fewer gives a mix-like hosts table), `NETREC_BENCH_PAGE_SIZE` (page size of
//! the new file; default SQLite's). One timed run: each phase is seconds
//! long, and a warm second run would only measure the page cache.
//!
//! Baseline: the writer before the bulk-load work is commit bd624d4 (this bench, old
//! `analyzer/src/db`): `git checkout bd624d4 -- analyzer/src/db`, run, `git checkout HEAD -- analyzer/src/db`.

use netrec_analyzer::db::{Db, InputInfo, InputStats};
use netrec_format::model::{DirStats, FlowEnd, FlowKey, FlowRecord, TcpState, Ts};
use std::net::{IpAddr, Ipv4Addr};
use std::time::Instant;

fn env_u32(name: &str, default: u32) -> u32 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Flow `n` of the synthetic load: source `n % sources` scattered over the address space (an
/// odd multiplier is a bijection of u32, so distinct inputs give distinct addresses).
fn flow(n: u32, sources: u32) -> FlowRecord {
    let src = (n % sources).wrapping_mul(0x9E37_79B1) | 1;
    let t = 1_700_000_000_000_000_000 + u64::from(n) * 1_000;
    FlowRecord {
        key: FlowKey {
            proto: 6,
            src_ip: IpAddr::V4(Ipv4Addr::from(src)),
            src_port: (n % 64_511 + 1024) as u16,
            dst_ip: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 80)),
            dst_port: 80,
            vlan: 0,
            tunnel_id: 0,
        },
        first_ts: Ts(t),
        last_ts: Ts(t),
        fwd: DirStats { packets: 1, bytes: 60, tcp_flags: 0x02, ..DirStats::default() },
        rev: DirStats::default(),
        tcp_state: TcpState::SynSent,
        rtt_server_ns: None,
        rtt_client_ns: None,
        end: FlowEnd::Open,
        tunnel: None,
        anomalies: 0,
    }
}

/// CPU time of this thread in seconds (the first field of schedstat, in ns; Linux): steadier than
/// wall time on a shared machine. 0 where unavailable.
fn cpu_s() -> f64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .map_or(0.0, |ns| ns as f64 / 1e9)
}

fn main() {
    // `cargo bench` passes `--bench`; a filter argument would be meaningless here.
    let flows = env_u32("NETREC_BENCH_FLOWS", 1_000_000).max(1);
    let sources = env_u32("NETREC_BENCH_SOURCES", flows).clamp(1, flows);
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("bench.sqlite");
    if let Some(page) = std::env::var("NETREC_BENCH_PAGE_SIZE").ok().and_then(|v| v.parse::<u32>().ok()) {
        // Only a new file takes a page size: set it before `Db::open` turns on WAL.
        let c = rusqlite::Connection::open(&path).expect("create db");
        c.execute_batch(&format!("PRAGMA page_size = {page}; VACUUM;")).expect("page size");
    }
    let mut db = Db::open(&path).expect("open db");
    let page: i64 = db.conn().query_row("PRAGMA page_size", [], |r| r.get(0)).expect("page size");
    println!("page_size {page}");
    let info = InputInfo {
        path: "bench.pcap".into(),
        sha256: "ab".repeat(32),
        format: "pcap".into(),
        size_bytes: 0,
        files: Vec::new(),
    };
    let (start, cpu0) = (Instant::now(), cpu_s());
    let mut w = db.begin_input(info).expect("begin").expect("new input");
    for n in 0..flows {
        w.add_flow(&flow(n, sources)).expect("add flow");
    }
    let (added, cpu1) = (start.elapsed(), cpu_s());
    let t = Instant::now();
    let totals = w.finish(InputStats { packets: u64::from(flows), ..InputStats::default() }).expect("finish");
    let fin = t.elapsed();
    let (total, cpu2) = (start.elapsed(), cpu_s());
    assert_eq!(totals.flows, u64::from(flows));
    assert_eq!(totals.hosts, u64::from(sources) + 1);
    let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0)
        + std::fs::metadata(dir.path().join("bench.sqlite-wal")).map(|m| m.len()).unwrap_or(0);
    let rows = totals.flows + totals.hosts;
    println!(
        "db_writer: {flows} flows, {} hosts | add_flow {:.2} s ({:.0} k flows/s) | finish {:.2} s \
         ({:.0} k hosts/s incl. index) | total {:.2} s, {:.0} k rows/s | {:.0} MB on disk\n\
         CPU: add_flow {:.2} s ({:.0} k flows/s) | finish {:.2} s | total {:.2} s, {:.0} k rows/s",
        totals.hosts,
        added.as_secs_f64(),
        f64::from(flows) / added.as_secs_f64() / 1e3,
        fin.as_secs_f64(),
        totals.hosts as f64 / fin.as_secs_f64() / 1e3,
        total.as_secs_f64(),
        rows as f64 / total.as_secs_f64() / 1e3,
        size as f64 / 1e6,
        cpu1 - cpu0,
        f64::from(flows) / (cpu1 - cpu0) / 1e3,
        cpu2 - cpu1,
        cpu2 - cpu0,
        rows as f64 / (cpu2 - cpu0) / 1e3,
    );
}
