//! Throughput of the writer, run by hand once in release:
//! `cargo test -p netrec-analyzer --release --test db_bench -- --ignored --nocapture`

use netrec_analyzer::db::{Db, InputInfo, InputStats};
use netrec_format::model::{DirStats, FlowEnd, FlowKey, FlowRecord, TcpState, Ts};
use std::net::{IpAddr, Ipv4Addr};
use std::time::Instant;

#[test]
#[ignore = "benchmark; run in release by hand"]
fn writer_throughput() {
    const FLOWS: u32 = 200_000;
    const PACKETS: u64 = 20_000_000;
    let dir = tempfile::tempdir().unwrap();
    let mut db = Db::open(dir.path().join("bench.sqlite")).unwrap();
    let mut w = db
        .begin_input(InputInfo {
            path: "bench".into(),
            sha256: "ab".repeat(32),
            format: "pcap".into(),
            size_bytes: 0,
            files: Vec::new(),
        })
        .unwrap()
        .unwrap();

    let t = Instant::now();
    for n in 0..PACKETS {
        // 1 µs apart, mixed protocols: about 333 minutes of traffic.
        w.add_packet(Ts(1_400_000_000_000_000_000 + n * 1_000), [6u16, 17, 6, 1][(n % 4) as usize], 100);
    }
    let pk = t.elapsed();

    let t = Instant::now();
    for n in 0..FLOWS {
        let f = FlowRecord {
            key: FlowKey {
                proto: 6,
                src_ip: IpAddr::V4(Ipv4Addr::from(0x0a00_0000 | (n % 5000))),
                src_port: (n % 60000) as u16,
                dst_ip: IpAddr::V4(Ipv4Addr::from(0xc000_0200 | (n % 200))),
                dst_port: 443,
                vlan: 0,
                tunnel_id: 0,
            },
            first_ts: Ts(1_400_000_000_000_000_000 + u64::from(n) * 1_000_000),
            last_ts: Ts(1_400_000_000_000_000_000 + u64::from(n) * 1_000_000 + 5_000_000),
            fwd: DirStats { packets: 10, bytes: 1000, ..DirStats::default() },
            rev: DirStats { packets: 8, bytes: 8000, ..DirStats::default() },
            tcp_state: TcpState::Closed,
            rtt_server_ns: Some(1_000_000),
            rtt_client_ns: Some(200_000),
            end: FlowEnd::TcpClose,
            tunnel: None,
            anomalies: 0,
        };
        w.add_flow(&f).unwrap();
    }
    let fl = t.elapsed();
    let t = Instant::now();
    let totals = w.finish(InputStats { packets: PACKETS, ..InputStats::default() }).unwrap();
    let fin = t.elapsed();
    assert_eq!(totals.flows, u64::from(FLOWS));
    assert_eq!(totals.hosts, 5200);
    println!(
        "add_packet: {:.1} M packets/s; add_flow: {:.0} k flows/s; finish (timeseries + hosts): {:.2} s",
        PACKETS as f64 / pk.as_secs_f64() / 1e6,
        f64::from(FLOWS) / fl.as_secs_f64() / 1e3,
        fin.as_secs_f64()
    );
}
