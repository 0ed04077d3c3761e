//! `netrec import` (issue #6, the offline writer): captures -> segments exactly as `record` writes
//! them, deterministic, and the same alerts as the analysis of the capture.

mod common;

use common::*;
use netrec_format::segment::{BlockBody, Recovery, SegmentReader};
use netrec_format::store::list_segments;
use netrec_format::{PacketRecord, SegmentMeta};
use std::path::{Path, PathBuf};

/// Every packet of a capture, cut to `snaplen`.
fn read_packets(path: &Path, snaplen: usize) -> Vec<PacketRecord> {
    capture_records(path, snaplen)
}

/// Closed segments of a directory in chain order.
fn segments(dir: &Path) -> Vec<PathBuf> {
    let list = list_segments(dir).unwrap();
    assert!(list.iter().all(|l| !l.name.partial), "a .partial was left: {list:?}");
    list.into_iter().map(|l| l.path).collect()
}

/// (meta records, packet records, alert count) of the segments of `dir`.
fn contents(dir: &Path) -> (Vec<SegmentMeta>, Vec<PacketRecord>, usize) {
    let (mut meta, mut pkts, mut alerts) = (Vec::new(), Vec::new(), 0);
    for p in segments(dir) {
        for b in SegmentReader::new(std::fs::File::open(&p).unwrap(), Recovery::Strict).unwrap() {
            match b.unwrap().body {
                BlockBody::Meta(m) => meta.extend(m),
                BlockBody::Packets(b) => pkts.extend(b.to_records()),
                BlockBody::Alerts(a) => alerts += a.len(),
                _ => {}
            }
        }
    }
    (meta, pkts, alerts)
}

fn import(args: &[&str]) -> std::process::Output {
    let mut a = vec!["import"];
    a.extend_from_slice(args);
    let o = netrec(&a);
    assert_no_panic(&o, &a.join(" "));
    o
}

/// Alerts as (rule_id, class, first_ts, last_ts, count, src, dst), sorted.
fn alert_keys(alerts: &[serde_json::Value]) -> Vec<(String, String, String, String, u64, String, String)> {
    let mut v: Vec<_> = alerts
        .iter()
        .map(|a| {
            (
                a["rule_id"].as_str().unwrap().to_owned(),
                a["class"].as_str().unwrap().to_owned(),
                a["first_ts"].as_str().unwrap().to_owned(),
                a["last_ts"].as_str().unwrap_or_default().to_owned(),
                a["count"].as_u64().unwrap(),
                a["src"].to_string(),
                a["dst"].to_string(),
            )
        })
        .collect();
    v.sort();
    v
}

fn db_alert_rules(db: &Path) -> Vec<(String, String, String, i64)> {
    let conn = db_ro(db);
    let mut st =
        conn.prepare("SELECT rule_id, class, first_ts, count FROM alerts ORDER BY 1, 2, 3, 4").unwrap();
    st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

#[test]
fn import_then_analyze_gives_the_alerts_of_the_capture() {
    for name in ["syn_flood.pcap", "port_scan_syn.pcap", "brute_force_ssh.pcap"] {
        let pcap = fixture(&format!("pcap/{name}"));
        let dir = tempfile::tempdir().unwrap();
        let segdir = dir.path().join("segs");
        let alerts = dir.path().join("alerts.jsonl");
        let o = import(&[s(&pcap), "-o", s(&segdir), "--alerts", s(&alerts)]);
        assert_eq!(code(&o), 0, "{name}: {}", stderr(&o));
        assert_eq!(code(&netrec(&["segments", "verify", s(&segdir)])), 0);

        let db_seg = dir.path().join("seg.sqlite");
        let o = netrec(&["analyze", "--quiet", "--db", s(&db_seg), s(&segdir)]);
        assert_eq!(code(&o), 0, "{name}: analyze segments: {}", stderr(&o));
        let db_pcap = dir.path().join("pcap.sqlite");
        let o = netrec(&["analyze", "--quiet", "--db", s(&db_pcap), s(&pcap)]);
        assert_eq!(code(&o), 0, "{name}: analyze pcap: {}", stderr(&o));
        let from_pcap = db_alert_rules(&db_pcap);
        assert!(!from_pcap.is_empty(), "{name} must raise alerts (fixtures/README.md)");
        assert_eq!(db_alert_rules(&db_seg), from_pcap, "{name}: analyze of the import differs");

        // The live alert lines of the import are the alerts of the capture, and they are stored
        // in the segments too.
        let text = std::fs::read_to_string(&alerts).unwrap();
        let lines: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        // Live lines: the alert when raised, then updates; the last line of each id is final.
        let mut last = std::collections::BTreeMap::new();
        for l in &lines {
            last.insert(l["id"].as_u64().expect("alert id"), l.clone());
        }
        let finals: Vec<serde_json::Value> = last.into_values().collect();
        let of_pcap = jsonl(&netrec(&["alerts", "--format", "jsonl", s(&pcap)]));
        assert_eq!(alert_keys(&finals), alert_keys(&of_pcap), "{name}: import alert lines");
        assert_eq!(contents(&segdir).2, lines.len(), "{name}: alerts stored in the segments");
    }
}

#[test]
fn import_writes_the_packets_cut_to_the_snaplen_with_meta() {
    // The demo mix: segment format 1.2 stores a short scan in a couple of 16K files only.
    let pcap = fixture("pcap/demo.pcap");
    for snaplen in [128usize, 40] {
        let dir = tempfile::tempdir().unwrap();
        let segdir = dir.path().join("segs");
        let o =
            import(&[s(&pcap), "-o", s(&segdir), "--snaplen", &snaplen.to_string(), "--rotate-size", "16K"]);
        assert_eq!(code(&o), 0, "{}", stderr(&o));
        let n = segments(&segdir).len();
        assert!(n >= 3, "--rotate-size 16K must rotate: {n} segment(s)");
        let (meta, pkts, _) = contents(&segdir);
        assert_eq!(pkts, read_packets(&pcap, snaplen), "snaplen {snaplen}: records differ from the capture");
        assert_eq!(meta.len(), n, "one meta record per segment");
        for m in &meta {
            assert_eq!(m.snaplen as usize, snaplen);
            assert_eq!(m.interfaces.len(), 1, "{m:?}");
            assert_eq!(m.interfaces[0].link_type, pkts[0].link_type);
            assert_eq!(m.ruleset_digest, netrec_rules::ruleset::RuleSet::default_pack().digest());
        }
        let st = stderr(&o);
        assert!(st.contains(&format!("imported {} packets", pkts.len())), "{st}");
    }
}

#[test]
fn import_is_deterministic() {
    let pcap = fixture("pcap/syn_flood.pcap");
    let mut runs = Vec::new();
    for _ in 0..2 {
        let dir = tempfile::tempdir().unwrap();
        let segdir = dir.path().join("segs");
        let o = import(&[s(&pcap), "-o", s(&segdir), "--rotate-size", "64K"]);
        assert_eq!(code(&o), 0, "{}", stderr(&o));
        let files: Vec<(String, Vec<u8>)> = std::fs::read_dir(&segdir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .map(|p| (p.file_name().unwrap().to_string_lossy().into_owned(), std::fs::read(&p).unwrap()))
            .collect::<std::collections::BTreeMap<_, _>>()
            .into_iter()
            .collect();
        assert!(files.len() >= 3, "{:?}", files.iter().map(|f| &f.0).collect::<Vec<_>>());
        runs.push((dir, files));
    }
    let (a, b) = (&runs[0].1, &runs[1].1);
    assert_eq!(a.iter().map(|f| &f.0).collect::<Vec<_>>(), b.iter().map(|f| &f.0).collect::<Vec<_>>());
    for ((name, x), (_, y)) in a.iter().zip(b) {
        assert!(x == y, "{name} differs between two imports of the same capture");
    }
}

#[test]
fn import_errors_name_the_input() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.pcap");
    let o = import(&[s(&missing), "-o", s(&dir.path().join("segs"))]);
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("nope.pcap"), "{}", stderr(&o));
    let o = import(&[s(&fixture("pcap/land.pcap")), "-o", s(&dir.path().join("segs")), "--snaplen", "0"]);
    assert_eq!(code(&o), 2, "snaplen 0 is refused: {}", stderr(&o));
}

/// Unmounts when dropped, even when the test fails.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(at: PathBuf, size: &str) -> Tmpfs {
        let id = std::process::Command::new("id").arg("-u").output().expect("run id -u");
        let uid = String::from_utf8_lossy(&id.stdout).trim().to_owned();
        assert_eq!(uid, "0", "the disk-full test mounts a tmpfs and must run as root (CI does); not skipped");
        std::fs::create_dir_all(&at).unwrap();
        let st = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&at)
            .status()
            .expect("run mount");
        assert!(st.success(), "mount -t tmpfs failed on {}", at.display());
        Tmpfs(at)
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}

/// Import into a nearly full 2 MiB tmpfs: header writing pauses with the loss counted and
/// reported (exit 2), the alert file outside the tmpfs gets the same alerts as with room, and
/// every closed segment verifies. (Resuming when space returns is tested in
/// recorder/tests/disk_full.rs, where a hook frees space mid-run.)
#[test]
fn import_into_a_full_disk_pauses_headers_and_keeps_alerting() {
    let pcap = fixture("pcap/syn_flood.pcap");
    let work = tempfile::tempdir().unwrap();
    let roomy_alerts = work.path().join("roomy.jsonl");
    let o = import(&[s(&pcap), "-o", s(&work.path().join("roomy")), "--alerts", s(&roomy_alerts)]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));

    let mnt = Tmpfs::mount(work.path().join("mnt"), "2m");
    let filler = mnt.0.join("filler");
    std::fs::write(&filler, vec![0x5au8; (2 << 20) - (160 << 10)]).unwrap();
    let segdir = mnt.0.join("segs");
    let alerts = work.path().join("alerts.jsonl");
    let o = import(&[s(&pcap), "-o", s(&segdir), "--alerts", s(&alerts), "--rotate-size", "64K"]);
    let st = stderr(&o);
    assert_eq!(code(&o), 2, "records not written must change the exit code: {st}");
    assert!(st.contains("paused: I/O error: No space left on device"), "{st}");
    let total = read_packets(&pcap, 128).len();
    let written = contents(&segdir).1.len();
    assert!(written > 0 && written < total, "{written} of {total} written");
    let want = format!("netrec: {} packet record(s) and ", total - written);
    assert!(st.contains(&want), "expected {want:?} (nothing lost silently): {st}");
    assert_eq!(
        std::fs::read_to_string(&alerts).unwrap(),
        std::fs::read_to_string(&roomy_alerts).unwrap(),
        "alerting must not depend on disk space"
    );
    let o = netrec(&["segments", "verify", s(&segdir)]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    drop(mnt);
}

/// Every real capture (../shared/captures) imports without a panic; what imports verifies and
/// holds every packet the capture reader yields, cut to the snaplen.
#[test]
fn real_captures_import_and_verify() {
    for cap in manifest_captures() {
        let dir = tempfile::tempdir().unwrap();
        let segdir = dir.path().join("segs");
        let alerts = dir.path().join("alerts.jsonl");
        let o = import(&[s(&cap), "-o", s(&segdir), "--alerts", s(&alerts)]);
        let name = cap.display();
        assert_eq!(code(&o), 0, "{name}: {}", stderr(&o));
        let v = netrec(&["segments", "verify", s(&segdir)]);
        assert_eq!(code(&v), 0, "{name}: {}", stderr(&v));
        assert_eq!(contents(&segdir).1, read_packets(&cap, 128), "{name}: records differ");
    }
}

/// Flows of `db` as comparable rows (ids and the input id left out).
fn flow_rows(db: &Path) -> Vec<Vec<String>> {
    let c = db_ro(db);
    let mut st = c
        .prepare(
            "SELECT proto, src_ip, src_port, dst_ip, dst_port, packets, bytes, first_ts_ns, last_ts_ns, \"end\"
             FROM flows ORDER BY first_ts_ns, src_ip, src_port, dst_ip, dst_port",
        )
        .unwrap();
    let n = st.column_count();
    st.query_map([], |r| {
        (0..n).map(|i| r.get::<_, rusqlite::types::Value>(i).map(|v| format!("{v:?}"))).collect()
    })
    .unwrap()
    .map(Result::unwrap)
    .collect()
}

/// A recording analyzed, then analyzed again after rotation added files, is stored once: the new
/// input replaces the old one in the commit that completes it, and the database equals a fresh
/// analysis of the whole recording. An earlier input with a file the recording no longer has
/// (retention deleted it) is kept: replacing it would lose that file's rows.
#[test]
fn reanalysis_of_a_grown_recording_replaces_the_earlier_input() {
    let pcap = fixture("pcap/syn_flood.pcap");
    let dir = tempfile::tempdir().unwrap();
    let full = dir.path().join("segs");
    let o = import(&[s(&pcap), "-o", s(&full), "--rotate-size", "64K"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let files = segments(&full);
    assert!(files.len() >= 3, "{files:?}");
    // The recording as it was two files ago.
    let early = dir.path().join("early/segs");
    std::fs::create_dir_all(&early).unwrap();
    for f in &files[..files.len() - 2] {
        std::fs::copy(f, early.join(f.file_name().unwrap())).unwrap();
    }
    let db = dir.path().join("db.sqlite");
    let o = netrec(&["analyze", "--quiet", "--db", s(&db), s(&early)]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let early_flows = sql_i64(&db, "SELECT COUNT(*) FROM flows");
    assert!(early_flows > 0);
    let o = netrec(&["analyze", "--quiet", "--db", s(&db), s(&full)]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(stderr(&o).contains(&format!("{}: replaces input 1 (", full.display())), "{}", stderr(&o));
    assert_eq!(sql_i64(&db, "SELECT COUNT(*) FROM inputs"), 1);
    assert_eq!(sql_i64(&db, "SELECT id FROM inputs WHERE complete = 1"), 2);
    let fresh = dir.path().join("fresh.sqlite");
    let o = netrec(&["analyze", "--quiet", "--db", s(&fresh), s(&full)]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let mut counts = table_counts(&db);
    let mut fresh_counts = table_counts(&fresh);
    counts.remove("inputs");
    fresh_counts.remove("inputs");
    assert_eq!(counts, fresh_counts, "tables after replacement vs a fresh analysis");
    assert_eq!(flow_rows(&db), flow_rows(&fresh));
    // Analyzing it a third time changes nothing.
    let o = netrec(&["analyze", "--quiet", "--db", s(&db), s(&full)]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(sql_i64(&db, "SELECT COUNT(*) FROM inputs"), 1);

    // Retention: the recording without its first file does not replace the input that has it.
    let late = dir.path().join("late/segs");
    std::fs::create_dir_all(&late).unwrap();
    for f in &files[1..] {
        std::fs::copy(f, late.join(f.file_name().unwrap())).unwrap();
    }
    let o = netrec(&["analyze", "--quiet", "--db", s(&db), s(&late)]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(!stderr(&o).contains("replaces"), "{}", stderr(&o));
    assert_eq!(sql_i64(&db, "SELECT COUNT(*) FROM inputs WHERE complete = 1"), 2);
}
