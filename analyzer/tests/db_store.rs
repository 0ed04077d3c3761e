//! The SQLite store: creation, refusal of foreign/newer files, idempotent inputs, batching,
//! derived tables.

use netrec_analyzer::db::{Db, DbError, InputInfo, InputStats, SCHEMA_VERSION};
use netrec_format::model::{
    Alert, DirStats, FlowEnd, FlowKey, FlowRecord, LossRecord, PROTO_ARP, Severity, TcpState, Ts,
};
use sha2::{Digest, Sha256};
use std::net::IpAddr;
use std::path::Path;

const S: u64 = 1_000_000_000;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn info(name: &str, sha: &str) -> InputInfo {
    InputInfo {
        path: name.into(),
        sha256: sha.into(),
        format: "pcap".into(),
        size_bytes: 1234,
        files: Vec::new(),
    }
}

fn flow(
    src: &str,
    sport: u16,
    dst: &str,
    dport: u16,
    t0: u64,
    fwd: (u64, u64),
    rev: (u64, u64),
) -> FlowRecord {
    FlowRecord {
        key: FlowKey {
            proto: 6,
            src_ip: ip(src),
            src_port: sport,
            dst_ip: ip(dst),
            dst_port: dport,
            vlan: 0,
            tunnel_id: 0,
        },
        first_ts: Ts(t0 * S),
        last_ts: Ts(t0 * S + 1_500_000_000),
        fwd: DirStats { packets: fwd.0, bytes: fwd.1, payload_bytes: fwd.1 / 2, ..DirStats::default() },
        rev: DirStats { packets: rev.0, bytes: rev.1, retransmissions: 1, ..DirStats::default() },
        tcp_state: TcpState::Closed,
        rtt_server_ns: Some(2_000_000),
        rtt_client_ns: Some(500_000),
        end: FlowEnd::TcpClose,
        tunnel: None,
        anomalies: 0,
    }
}

fn alert(id: u64, class: &str, src: &str, dst: &str, t0: u64, count: u64) -> Alert {
    Alert {
        id,
        rule_id: format!("{class}-rule"),
        class: class.into(),
        severity: Severity::High,
        attack_id: "T1046".into(),
        first_ts: Ts(t0 * S),
        last_ts: Ts((t0 + 10) * S),
        src: vec![ip(src)],
        src_count: 1,
        dst: vec![ip(dst)],
        dst_count: 1,
        dst_ports: vec![22, 80],
        count,
        stats: vec![("distinct_ports".into(), 40.0)],
        message: format!("{class} from {src}"),
    }
}

fn file_hash(p: &Path) -> Vec<u8> {
    Sha256::digest(std::fs::read(p).unwrap()).to_vec()
}

fn count(db: &Db, table: &str) -> i64 {
    db.conn().query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0)).unwrap()
}

/// One input with two flows, one alert (updated once), a loss record and some packets.
fn write_sample(db: &mut Db, sha: &str) -> bool {
    let Some(mut w) = db.begin_input(info("a.pcap", sha)).unwrap() else { return false };
    w.add_flow(&flow("10.0.0.1", 40000, "10.0.0.2", 80, 100, (5, 500), (4, 4000))).unwrap();
    w.add_flow(&flow("10.0.0.3", 40001, "10.0.0.2", 22, 130, (2, 120), (1, 60))).unwrap();
    w.add_alert(&alert(1, "portscan", "10.0.0.3", "10.0.0.2", 130, 5)).unwrap();
    w.add_alert(&alert(1, "portscan", "10.0.0.3", "10.0.0.2", 130, 50)).unwrap();
    w.add_loss(&LossRecord {
        ts: Ts(140 * S),
        iface: 2,
        kernel_packets: 100,
        ring_drops: 3,
        ..Default::default()
    })
    .unwrap();
    w.add_packet(Ts(100 * S), 6, 500);
    w.add_packet(Ts(121 * S), 6, 100);
    w.add_packet(Ts(121 * S), PROTO_ARP, 42);
    let t = w
        .finish(InputStats {
            packets: 12,
            bytes: 4680,
            first_ts: Some(Ts(100 * S)),
            last_ts: Some(Ts(140 * S)),
            decode_anomalies: 0,
            warnings: 0,
        })
        .unwrap();
    assert_eq!((t.flows, t.alerts, t.losses, t.incidents, t.hosts), (2, 1, 1, 1, 3));
    true
}

#[test]
fn open_creates_and_reopen_is_a_no_op() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("n.sqlite");
    let db = Db::open(&p).unwrap();
    assert_eq!(db.schema_version().unwrap(), SCHEMA_VERSION);
    let app: i32 = db.conn().query_row("PRAGMA application_id", [], |r| r.get(0)).unwrap();
    assert_eq!(app, 0x4E52_4543);
    let mode: String = db.conn().query_row("PRAGMA journal_mode", [], |r| r.get(0)).unwrap();
    assert_eq!(mode, "wal");
    let objects = count(&db, "sqlite_master");
    drop(db);
    let db = Db::open(&p).unwrap();
    assert_eq!(db.schema_version().unwrap(), SCHEMA_VERSION);
    assert_eq!(count(&db, "sqlite_master"), objects);
    drop(db);
    Db::open_read_only(&p).unwrap();
}

#[test]
fn zero_length_file_is_initialized() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("empty.sqlite");
    std::fs::write(&p, b"").unwrap();
    let db = Db::open(&p).unwrap();
    assert_eq!(db.schema_version().unwrap(), SCHEMA_VERSION);
}

#[test]
fn foreign_sqlite_file_is_rejected_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("other.sqlite");
    {
        let c = rusqlite::Connection::open(&p).unwrap();
        c.execute_batch(
            "CREATE TABLE customers (id INTEGER, name TEXT); INSERT INTO customers VALUES (1, 'x');",
        )
        .unwrap();
    }
    let before = file_hash(&p);
    let err = Db::open(&p).unwrap_err();
    assert!(matches!(err, DbError::Foreign { application_id: 0, table_count: 1, .. }), "{err:?}");
    assert!(err.to_string().contains("not a netrec database"), "{err}");
    assert!(matches!(Db::open_read_only(&p).unwrap_err(), DbError::Foreign { .. }));
    assert_eq!(file_hash(&p), before);
}

#[test]
fn other_application_id_is_rejected_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("app.sqlite");
    {
        let c = rusqlite::Connection::open(&p).unwrap();
        c.execute_batch("PRAGMA application_id = 1234;").unwrap();
    }
    let before = file_hash(&p);
    let err = Db::open(&p).unwrap_err();
    assert!(matches!(err, DbError::Foreign { application_id: 1234, table_count: 0, .. }), "{err:?}");
    assert_eq!(file_hash(&p), before);
}

#[test]
fn non_sqlite_file_is_rejected_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("notes.txt");
    std::fs::write(&p, "these are not the bytes you are looking for\n".repeat(200)).unwrap();
    let before = file_hash(&p);
    let err = Db::open(&p).unwrap_err();
    assert!(matches!(err, DbError::NotSqlite { .. }), "{err:?}");
    assert_eq!(file_hash(&p), before);
}

#[test]
fn newer_schema_is_rejected_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("future.sqlite");
    drop(Db::open(&p).unwrap());
    {
        let c = rusqlite::Connection::open(&p).unwrap();
        c.execute_batch(&format!("PRAGMA user_version = {};", SCHEMA_VERSION + 1)).unwrap();
        c.execute_batch("PRAGMA journal_mode = DELETE;").unwrap();
    }
    let before = file_hash(&p);
    let err = Db::open(&p).unwrap_err();
    match &err {
        DbError::TooNew { found, supported, .. } => {
            assert_eq!((*found, *supported), (SCHEMA_VERSION + 1, SCHEMA_VERSION));
        }
        other => panic!("expected TooNew, got {other:?}"),
    }
    assert!(matches!(Db::open_read_only(&p).unwrap_err(), DbError::TooNew { .. }));
    assert_eq!(file_hash(&p), before);
}

#[test]
fn read_only_open_of_missing_file_names_it() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("nope.sqlite");
    let err = Db::open_read_only(&p).unwrap_err();
    assert!(matches!(err, DbError::Missing { .. }));
    assert!(err.to_string().contains("nope.sqlite"));
    assert!(!p.exists());
}

#[test]
fn same_input_twice_adds_nothing_and_new_input_adds_rows() {
    let dir = tempfile::tempdir().unwrap();
    let mut db = Db::open(dir.path().join("n.sqlite")).unwrap();
    assert!(write_sample(&mut db, "AA11"));
    let tables =
        ["inputs", "flows", "alerts", "incidents", "incident_alerts", "hosts", "timeseries", "losses"];
    let first: Vec<i64> = tables.iter().map(|t| count(&db, t)).collect();
    assert_eq!(first, vec![1, 2, 1, 1, 1, 3, 3, 1]);
    // Same digest (case-insensitive hex): no-op.
    assert!(db.begin_input(info("copy-of-a.pcap", "aa11")).unwrap().is_none());
    assert!(!write_sample(&mut db, "AA11"));
    assert_eq!(tables.iter().map(|t| count(&db, t)).collect::<Vec<_>>(), first);
    // A new input adds its own rows with the next id.
    assert!(write_sample(&mut db, "bb22"));
    let second: Vec<i64> = tables.iter().map(|t| count(&db, t)).collect();
    assert_eq!(second, first.iter().map(|n| n * 2).collect::<Vec<_>>());
    let ids: Vec<i64> = db
        .conn()
        .prepare("SELECT id FROM inputs ORDER BY id")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(ids, vec![1, 2]);
}

#[test]
fn interrupted_input_is_invisible_and_redone() {
    let dir = tempfile::tempdir().unwrap();
    let mut db = Db::open(dir.path().join("n.sqlite")).unwrap();
    {
        let mut w = db.begin_input(info("a.pcap", "cc33")).unwrap().unwrap();
        // More than one batch, so some rows are committed before the "crash".
        for n in 0..10_050u64 {
            w.add_flow(&flow("10.0.0.1", (n % 60000) as u16, "10.0.0.2", 80, n, (1, 60), (0, 0))).unwrap();
        }
        // dropped without finish
    }
    let complete: i64 = db.conn().query_row("SELECT complete FROM inputs", [], |r| r.get(0)).unwrap();
    assert_eq!(complete, 0);
    assert_eq!(count(&db, "flows"), 10_000, "the first batch was committed, the open one rolled back");
    assert!(write_sample(&mut db, "cc33"), "an incomplete input is redone");
    assert_eq!(count(&db, "flows"), 2);
    assert_eq!(count(&db, "inputs"), 1);
    let id: i64 = db.conn().query_row("SELECT id FROM inputs", [], |r| r.get(0)).unwrap();
    assert_eq!(id, 1, "the discarded attempt's id is reused");
}

#[test]
fn alert_update_is_an_upsert_and_feeds_incidents() {
    let dir = tempfile::tempdir().unwrap();
    let mut db = Db::open(dir.path().join("n.sqlite")).unwrap();
    write_sample(&mut db, "dd44");
    let (n, stats, ports): (i64, String, String) = db
        .conn()
        .query_row("SELECT count, stats, dst_ports FROM alerts WHERE alert_id = 1", [], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })
        .unwrap();
    assert_eq!((n, stats.as_str(), ports.as_str()), (50, r#"{"distinct_ports":40.0}"#, "22,80"));
    let (events, sources, targets, sev): (i64, String, String, String) = db
        .conn()
        .query_row("SELECT event_count, sources, targets, severity FROM incidents", [], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })
        .unwrap();
    assert_eq!(
        (events, sources.as_str(), targets.as_str(), sev.as_str()),
        (50, "10.0.0.3", "10.0.0.2", "high")
    );
}

#[test]
fn flows_hosts_timeseries_and_losses_hold_the_right_values() {
    let dir = tempfile::tempdir().unwrap();
    let mut db = Db::open(dir.path().join("n.sqlite")).unwrap();
    write_sample(&mut db, "ee55");
    let c = db.conn();
    let row: (String, i64, i64, String, String, f64, String, String, i64) = c
        .query_row(
            r#"SELECT proto, packets, bytes, first_ts, duration, rtt_ms, tcp_state, "end", retransmissions
               FROM flows ORDER BY id LIMIT 1"#,
            [],
            |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                    r.get(6)?,
                    r.get(7)?,
                    r.get(8)?,
                ))
            },
        )
        .unwrap();
    assert_eq!(
        row,
        (
            "tcp".into(),
            9,
            4500,
            "100.000000000".into(),
            "1.500000000".into(),
            2.5,
            "closed".into(),
            "tcp_close".into(),
            1
        )
    );
    // 10.0.0.2 is the responder of both flows: sent 4+1 packets / 4000+60 bytes, received 5+2 / 500+120.
    let h: (i64, i64, i64, i64, i64, i64, String, String) = c
        .query_row(
            "SELECT packets_sent, packets_recv, bytes_sent, bytes_recv, flows_initiated, flows_received,
             first_ts, last_ts FROM hosts WHERE ip = '10.0.0.2'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?, r.get(7)?)),
        )
        .unwrap();
    assert_eq!(h, (5, 7, 4060, 620, 0, 2, "100.000000000".into(), "131.500000000".into()));
    let ts: Vec<(i64, String, i64, i64)> = c
        .prepare("SELECT minute, proto, packets, bytes FROM timeseries ORDER BY minute, proto_num")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(ts, vec![(60, "tcp".into(), 1, 500), (120, "tcp".into(), 1, 100), (120, "arp".into(), 1, 42)]);
    let loss: (String, i64, i64) = c
        .query_row("SELECT ts, iface, ring_drops FROM losses", [], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap();
    assert_eq!(loss, ("140.000000000".into(), 2, 3));
    let inp: (i64, i64, String, i64) = c
        .query_row("SELECT packets, bytes, last_ts, complete FROM inputs", [], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })
        .unwrap();
    assert_eq!(inp, (12, 4680, "140.000000000".into(), 1));
}

/// Every table, every row, in primary-key order, as text.
fn dump(db: &Db) -> String {
    let mut out = String::new();
    let tables: Vec<String> = db
        .conn()
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    for t in tables {
        let mut st = db.conn().prepare(&format!("SELECT * FROM {t} ORDER BY 1, 2, 3")).unwrap();
        let n = st.column_count();
        let mut rows = st.query([]).unwrap();
        while let Some(r) = rows.next().unwrap() {
            out.push_str(&t);
            for k in 0..n {
                out.push_str(&format!("|{:?}", r.get_ref(k).unwrap()));
            }
            out.push('\n');
        }
    }
    out
}

#[test]
fn same_inputs_give_identical_databases() {
    let dir = tempfile::tempdir().unwrap();
    let mut a = Db::open(dir.path().join("a.sqlite")).unwrap();
    let mut b = Db::open(dir.path().join("b.sqlite")).unwrap();
    for db in [&mut a, &mut b] {
        write_sample(db, "f1");
        write_sample(db, "f2");
    }
    let da = dump(&a);
    assert!(da.lines().count() > 20);
    assert_eq!(da, dump(&b));
}

/// The `flows` columns named like the jsonl fields hold exactly what `flow_json` prints.
#[test]
fn flow_columns_equal_the_jsonl_schema() {
    use netrec_format::model::{Tunnel, TunnelKind};
    let mut tcp = flow("10.0.0.1", 40000, "10.0.0.2", 80, 100, (5, 500), (4, 4000));
    tcp.first_ts = Ts(1_418_145_369_924_505_488);
    tcp.last_ts = Ts(1_418_145_370_000_000_001);
    let mut udp = flow("2001:db8::1", 5353, "2001:db8::53", 53, 200, (1, 80), (1, 120));
    udp.key.proto = 17;
    udp.key.vlan = 100;
    udp.key.tunnel_id = 42;
    udp.tcp_state = TcpState::None;
    udp.rtt_server_ns = None;
    udp.rtt_client_ns = None;
    udp.end = FlowEnd::IdleTimeout;
    udp.tunnel = Some(Tunnel {
        kind: TunnelKind::Vxlan,
        id: 42,
        outer_src: ip("192.0.2.1"),
        outer_dst: ip("192.0.2.2"),
    });
    let mut arp = flow("10.0.0.5", 0, "10.0.0.6", 0, 300, (1, 42), (0, 0));
    arp.key.proto = PROTO_ARP;
    arp.tcp_state = TcpState::None;
    arp.end = FlowEnd::Open;
    let flows = [tcp, udp, arp];

    let dir = tempfile::tempdir().unwrap();
    let mut db = Db::open(dir.path().join("n.sqlite")).unwrap();
    let mut w = db.begin_input(info("j.pcap", "99")).unwrap().unwrap();
    for f in &flows {
        w.add_flow(f).unwrap();
    }
    w.finish(InputStats::default()).unwrap();

    const COLS: [&str; 23] = [
        "proto",
        "src_ip",
        "src_port",
        "dst_ip",
        "dst_port",
        "packets",
        "bytes",
        "fwd_packets",
        "fwd_bytes",
        "fwd_payload_bytes",
        "rev_packets",
        "rev_bytes",
        "rev_payload_bytes",
        "first_ts",
        "last_ts",
        "duration",
        "tcp_state",
        "rtt_ms",
        "retransmissions",
        "vlan",
        "tunnel",
        "end",
        "id",
    ];
    let sql = format!(
        "SELECT {} FROM flows ORDER BY id",
        COLS.iter().map(|c| format!("\"{c}\"")).collect::<Vec<_>>().join(", ")
    );
    let mut st = db.conn().prepare(&sql).unwrap();
    let mut rows = st.query([]).unwrap();
    let mut n = 0;
    while let Some(r) = rows.next().unwrap() {
        let mut obj = serde_json::Map::new();
        for (k, col) in COLS.iter().enumerate().take(COLS.len() - 1) {
            use rusqlite::types::ValueRef;
            let v = match r.get_ref(k).unwrap() {
                ValueRef::Null => serde_json::Value::Null,
                ValueRef::Integer(i) => i.into(),
                ValueRef::Real(f) => f.into(),
                ValueRef::Text(t) if *col == "tunnel" => serde_json::from_slice(t).unwrap(),
                ValueRef::Text(t) => std::str::from_utf8(t).unwrap().into(),
                ValueRef::Blob(_) => panic!("blob in {col}"),
            };
            obj.insert(col.to_string(), v);
        }
        assert_eq!(serde_json::Value::Object(obj), netrec_rules::flow::flow_json(&flows[n]), "flow {n}");
        n += 1;
    }
    assert_eq!(n, 3);
}
