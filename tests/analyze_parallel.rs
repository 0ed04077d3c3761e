//! Issue #8 acceptance: `netrec analyze --threads N` (reader | flow table | detector groups |
//! merger | SQLite writer) stores exactly what `--threads 1` stores: every table, row for row,
//! and the same alerts.

mod common;

use common::*;
use rusqlite::types::Value;
use std::path::{Path, PathBuf};

/// Every table and view of the database (by name), each row in primary-key (rowid) order, every
/// column; views (`flows`, `hosts`) by their first two columns (a key of each).
fn dump(db: &Path) -> Vec<(String, Vec<Vec<Value>>)> {
    let conn = db_ro(db);
    let mut names: Vec<(String, String)> = conn
        .prepare("SELECT name, type FROM sqlite_master WHERE type IN ('table', 'view') ORDER BY name")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    names.retain(|(n, _)| !n.starts_with("sqlite_"));
    names
        .into_iter()
        .map(|(t, kind)| {
            let order = if kind == "view" { "1, 2" } else { "rowid" };
            let mut st = conn.prepare(&format!("SELECT * FROM \"{t}\" ORDER BY {order}")).unwrap();
            let n = st.column_count();
            let rows = st
                .query_map([], |r| (0..n).map(|i| r.get::<_, Value>(i)).collect::<Result<Vec<_>, _>>())
                .unwrap()
                .map(Result::unwrap)
                .collect();
            (t, rows)
        })
        .collect()
}

fn analyze(db: &Path, threads: &str, inputs: &[PathBuf]) -> String {
    let mut args = vec!["analyze", "--quiet", "--threads", threads, "--db", s(db)];
    args.extend(inputs.iter().map(|p| s(p)));
    let o = netrec(&args);
    assert_eq!(code(&o), 0, "analyze --threads {threads} {inputs:?}: {}", stderr(&o));
    stderr(&o)
}

fn rows<'a>(dump: &'a [(String, Vec<Vec<Value>>)], table: &str) -> &'a [Vec<Value>] {
    &dump.iter().find(|(t, _)| t == table).unwrap_or_else(|| panic!("no table {table}")).1
}

/// Compare two dumps table by table and row by row, naming the first difference.
fn assert_same(a: &[(String, Vec<Vec<Value>>)], b: &[(String, Vec<Vec<Value>>)], what: &str) {
    let names = |d: &[(String, Vec<Vec<Value>>)]| d.iter().map(|(t, _)| t.clone()).collect::<Vec<_>>();
    assert_eq!(names(a), names(b), "{what}: tables differ");
    for ((t, ra), (_, rb)) in a.iter().zip(b) {
        assert_eq!(ra.len(), rb.len(), "{what}: table {t}: row counts differ");
        for (n, (x, y)) in ra.iter().zip(rb).enumerate() {
            assert_eq!(x, y, "{what}: table {t}: row {n} differs");
        }
    }
}

fn check(inputs: &[PathBuf], what: &str) -> Vec<(String, Vec<Vec<Value>>)> {
    let dir = tempfile::tempdir().unwrap();
    let one = dir.path().join("one.sqlite");
    analyze(&one, "1", inputs);
    let a = dump(&one);
    // 2: one detector thread; 4: the detectors split over three threads and merged.
    for threads in ["2", "4"] {
        let db = dir.path().join(format!("t{threads}.sqlite"));
        analyze(&db, threads, inputs);
        assert_same(&a, &dump(&db), &format!("{what}, --threads {threads}"));
    }
    a
}

#[test]
fn fixtures_with_attacks_give_identical_databases() {
    let names = [
        "demo.pcap",
        "syn_flood.pcap",
        "port_scan_syn.pcap",
        "host_sweep_icmp.pcap",
        "dns_tunnel.pcap",
        "fragment_anomaly.pcap",
        "benign_browsing.pcap",
        "amplification_dns.pcap",
    ];
    let inputs: Vec<PathBuf> = names.iter().map(|n| fixture(&format!("pcap/{n}"))).collect();
    let d = check(&inputs, "fixtures");
    // Not vacuous: every input stored and complete, flows and alerts present, several batches.
    let inputs_rows = rows(&d, "inputs");
    assert_eq!(inputs_rows.len(), names.len());
    assert!(rows(&d, "alerts").len() >= 6, "alerts: {}", rows(&d, "alerts").len());
    assert!(!rows(&d, "incidents").is_empty());
    assert!(rows(&d, "flows").len() > 1000, "flows: {}", rows(&d, "flows").len());
    // inputs columns: id, path, sha256, format, size_bytes, complete, packets, ...
    assert!(inputs_rows.iter().all(|r| r[5] == Value::Integer(1)), "an input is not complete");
    let demo_packets = match inputs_rows[0][6] {
        Value::Integer(n) => n,
        ref v => panic!("packets: {v:?}"),
    };
    assert!(demo_packets > 4 * 1024, "demo has {demo_packets} packets: too few to span several batches");
}

#[test]
fn real_captures_give_identical_databases() {
    let dir = captures_dir();
    let inputs: Vec<PathBuf> =
        ["ddos-syn-flood-ecn-cwr.pcapng", "ddos-udp-amp-isakmp.pcap", "dns-exfiltration-dnscat.pcap"]
            .iter()
            .map(|n| dir.join(n))
            .collect();
    let d = check(&inputs, "captures");
    assert!(!rows(&d, "alerts").is_empty());
}

#[test]
fn threaded_reanalysis_is_idempotent_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db.sqlite");
    let input = vec![fixture("pcap/syn_flood.pcap")];
    analyze(&db, "2", &input);
    let before = dump(&db);
    let o = netrec(&["analyze", "--threads", "2", "--db", s(&db), s(&input[0])]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(stderr(&o).contains("already in"), "{}", stderr(&o));
    assert_same(&before, &dump(&db), "re-analysis");
}

/// Past `NETREC_HOSTS_RUN_ADDRS` distinct addresses the host totals are spilled in sorted runs and
/// merged back: a database identical to one summed in memory, row for row (an address found in
/// several runs summed once).
#[test]
fn host_totals_spilled_in_runs_give_identical_databases() {
    let dir = tempfile::tempdir().unwrap();
    let names = ["demo.pcap", "port_scan_syn.pcap", "host_sweep_icmp.pcap", "benign_browsing.pcap"];
    let inputs: Vec<PathBuf> = names.iter().map(|n| fixture(&format!("pcap/{n}"))).collect();
    let memory = dir.path().join("memory.sqlite");
    analyze(&memory, "2", &inputs);
    let a = dump(&memory);
    let hosts = rows(&a, "host_rows");
    assert!(hosts.len() > 200, "host rows: {}", hosts.len());
    for (threads, run) in [("1", "7"), ("2", "7"), ("2", "64")] {
        let db = dir.path().join(format!("spilled-{threads}-{run}.sqlite"));
        let mut args = vec!["analyze", "--quiet", "--threads", threads, "--db", s(&db)];
        args.extend(inputs.iter().map(|p| s(p)));
        let o = std::process::Command::new(env!("CARGO_BIN_EXE_netrec"))
            .args(&args)
            .env("NETREC_HOSTS_RUN_ADDRS", run)
            .output()
            .unwrap();
        assert_eq!(code(&o), 0, "{}", stderr(&o));
        assert_same(&a, &dump(&db), &format!("runs of {run} addresses, --threads {threads}"));
    }
}
