//! Crash test (issue #6 acceptance): 20 times, `kill -9` of `netrec import` at a random moment
//! (seeded, printed; set NETREC_CRASH_SEED to repeat a run). Each time: every closed segment
//! verifies and the closed ones form one chain; the next start recovers (or quarantines) the
//! `.partial` and says so; every recovered packet record equals the original packet cut to the
//! snaplen; afterwards the whole directory verifies as one chain across the restart.

mod common;

use common::*;
use netrec_format::PacketRecord;
use netrec_format::segment::{BlockBody, Recovery, SegmentReader, verify_chain, verify_file};
use netrec_format::store::list_segments;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const SNAPLEN: usize = 96;

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// A pcap of `n` TCP packets (a SYN flood plus noise), 140 bytes each with incompressible
/// payload, 100 µs apart, starting at `t0` seconds.
fn write_capture(path: &Path, n: u32, t0: u32) {
    let mut out = Vec::with_capacity(24 + n as usize * 156);
    out.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&4u16.to_le_bytes());
    out.extend_from_slice(&[0; 8]);
    out.extend_from_slice(&65_535u32.to_le_bytes());
    out.extend_from_slice(&1u32.to_le_bytes());
    let mut rng = Rng(0x5eed_0000_0000_0001 ^ u64::from(t0));
    for i in 0..n {
        let mut d = Vec::with_capacity(140);
        d.extend_from_slice(&[2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00]);
        let total = 126u16.to_be_bytes();
        d.extend_from_slice(&[0x45, 0, total[0], total[1], 0, 1, 0x40, 0, 64, 6, 0, 0]);
        d.extend_from_slice(&[10, 1, (i >> 8) as u8, i as u8, 10, 0, 0, 2]);
        let sport = (1024 + (i % 60_000) as u16).to_be_bytes();
        d.extend_from_slice(&[sport[0], sport[1], 0, 80]);
        d.extend_from_slice(&i.to_be_bytes());
        d.extend_from_slice(&[0, 0, 0, 0, 0x50, 0x02, 0xff, 0xff, 0, 0, 0, 0]);
        while d.len() < 140 {
            d.push(rng.next() as u8);
        }
        let us = u64::from(i) * 100;
        out.extend_from_slice(&(t0 + (us / 1_000_000) as u32).to_le_bytes());
        out.extend_from_slice(&((us % 1_000_000) as u32).to_le_bytes());
        out.extend_from_slice(&(d.len() as u32).to_le_bytes());
        out.extend_from_slice(&(d.len() as u32).to_le_bytes());
        out.extend_from_slice(&d);
    }
    std::fs::File::create(path).unwrap().write_all(&out).unwrap();
}

fn read_packets(path: &Path) -> Vec<PacketRecord> {
    capture_records(path, SNAPLEN)
}

fn packets_of(files: &[PathBuf]) -> Vec<PacketRecord> {
    let mut out = Vec::new();
    for f in files {
        for b in SegmentReader::new(std::fs::File::open(f).unwrap(), Recovery::Strict).unwrap() {
            if let BlockBody::Packets(p) = b.unwrap().body {
                out.extend(p.to_records());
            }
        }
    }
    out
}

fn import_cmd(capture: &Path, dir: &Path, alerts: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_netrec"));
    c.args(["import", s(capture), "-o", s(dir), "--rotate-size", "32K", "--snaplen", &SNAPLEN.to_string()])
        .args(["--alerts", s(alerts)]);
    c
}

#[test]
fn kill_9_at_random_moments_loses_nothing_but_the_open_block() {
    let started = Instant::now();
    let seed = std::env::var("NETREC_CRASH_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64 | 1
    });
    println!("crash test seed {seed} (NETREC_CRASH_SEED={seed} repeats it)");
    let mut rng = Rng(seed);
    let work = tempfile::tempdir().unwrap();
    let big = work.path().join("big.pcap");
    let small = work.path().join("small.pcap");
    write_capture(&big, 6_000, 1_767_225_600);
    write_capture(&small, 50, 1_767_229_200);
    let original = read_packets(&big);
    let alerts = work.path().join("alerts.jsonl");

    // How long a whole import takes: kills land anywhere in it. The fastest of three runs: the
    // first one starts cold (binary and capture not in the page cache) and can take 3x longer,
    // which would put most kills after the import ended.
    let mut full = Duration::MAX;
    let mut closed_full = 0;
    for i in 0..3 {
        let full_dir = work.path().join(format!("full{i}"));
        let t = Instant::now();
        let o = import_cmd(&big, &full_dir, &alerts).output().unwrap();
        full = full.min(t.elapsed());
        assert_eq!(code(&o), 0, "{}", stderr(&o));
        closed_full = list_segments(&full_dir).unwrap().len();
    }
    println!("a full import takes {full:?} and writes {closed_full} segments");
    assert!(closed_full >= 5, "the capture must rotate several times");

    let (mut recovered, mut quarantined, mut partials) = (0, 0, 0);
    for round in 0..20 {
        let dir = work.path().join(format!("r{round}"));
        let delay = Duration::from_nanos(rng.next() % (full.as_nanos() as u64 + 1));
        let mut child =
            import_cmd(&big, &dir, &alerts).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
        std::thread::sleep(delay);
        let _ = child.kill(); // SIGKILL
        let _ = child.wait();
        println!("round {round}: kill -9 after {delay:?}");
        if !dir.exists() {
            continue;
        }
        // Every closed segment verifies, and the closed ones are one chain.
        let list = list_segments(&dir).unwrap();
        let closed: Vec<PathBuf> = list.iter().filter(|l| !l.name.partial).map(|l| l.path.clone()).collect();
        let open: Vec<PathBuf> = list.iter().filter(|l| l.name.partial).map(|l| l.path.clone()).collect();
        assert!(open.len() <= 1, "round {round}: more than one .partial: {open:?}");
        for c in &closed {
            let rep = verify_file(std::fs::File::open(c).unwrap());
            assert!(rep.is_intact(), "round {round}: closed {} damaged: {:?}", c.display(), rep.damage);
        }
        let chain = verify_chain(closed.iter().map(|p| (p.clone(), std::fs::File::open(p).unwrap())));
        assert!(chain.is_intact(), "round {round}: {:?}", chain.first_problem());
        let before: Vec<(PathBuf, Vec<u8>)> =
            closed.iter().map(|p| (p.clone(), std::fs::read(p).unwrap())).collect();

        // The next start recovers the .partial and reports it.
        let o = import_cmd(&small, &dir, &alerts).output().unwrap();
        assert_eq!(code(&o), 0, "round {round}: restart failed: {}", stderr(&o));
        let err = stderr(&o);
        let mut closed_now = false;
        if let Some(p) = open.first() {
            partials += 1;
            let line = err.lines().find(|l| l.contains(&p.display().to_string()));
            let line = line.unwrap_or_else(|| panic!("round {round}: {} not reported:\n{err}", p.display()));
            if line.starts_with("netrec: recovered ") || line.starts_with("netrec: finalized ") {
                recovered += 1;
                closed_now = true;
            } else {
                assert!(line.starts_with("netrec: quarantined "), "round {round}: {line}");
                quarantined += 1;
            }
        }
        // Every record of the killed run that is in a closed segment now (recovered included)
        // is the original packet, in order, with none missing before it.
        let mut run1 = closed.clone();
        if closed_now {
            let p = open[0].to_str().unwrap().strip_suffix(".partial").unwrap();
            run1.push(PathBuf::from(p));
        }
        // A restart never changes a closed segment.
        for (p, bytes) in &before {
            assert!(std::fs::read(p).unwrap() == *bytes, "round {round}: {} changed", p.display());
        }
        let got = packets_of(&run1);
        assert!(got.len() <= original.len());
        if let Some(i) = got.iter().zip(&original).position(|(a, b)| a != b) {
            panic!("round {round}: recovered packet {i} differs from the original");
        }
        // The whole directory, across the restart, is one intact chain.
        let o = netrec(&["segments", "verify", s(&dir)]);
        assert_eq!(code(&o), 0, "round {round}: {}", stderr(&o));
        assert!(list_segments(&dir).unwrap().iter().all(|l| !l.name.partial));
    }
    println!(
        "{partials} .partial files: {recovered} recovered, {quarantined} quarantined; {:?} in all",
        started.elapsed()
    );
    assert!(partials >= 5, "kills must mostly land while a segment is open ({partials} of 20)");
    assert!(started.elapsed() < Duration::from_secs(60), "the crash test must stay under 60 s");
}

/// `kill -9` of `netrec analyze` while it loads an input, its rollback journal on disk (the
/// database is then "hot": read-only connections cannot read it until it is rolled back).
/// A report opens it at once and shows the earlier input; the next analysis redoes the
/// interrupted input completely.
#[test]
fn kill_9_during_a_load_leaves_the_database_readable_and_the_input_redone() {
    let work = tempfile::tempdir().unwrap();
    let first = work.path().join("first.pcap");
    let big = work.path().join("big.pcap");
    write_capture(&first, 2_000, 1_000);
    // One flow per packet: a load long enough to be caught mid-transaction.
    write_capture(&big, 120_000, 2_000);
    let base = work.path().join("base.sqlite");
    let o = netrec(&["analyze", "--quiet", "--db", s(&base), s(&first)]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let db = work.path().join("a.sqlite");
    let journal = work.path().join("a.sqlite-journal");
    let mut caught = None;
    for attempt in 0..5 {
        let _ = std::fs::remove_file(&journal);
        std::fs::copy(&base, &db).unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_netrec"))
            .args(["analyze", "--quiet", "--db", s(&db), s(&big)])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        // Killed as soon as the load's journal appears: inside a write transaction.
        while !journal.exists() && child.try_wait().unwrap().is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_micros(200));
        }
        let _ = child.kill();
        let _ = child.wait();
        // Hot, as SQLite judges it: a journal still empty (killed between creating it and
        // writing its header) or zeroed needs no rollback, and a read-only open leaves it.
        if std::fs::read(&journal).is_ok_and(|j| j.first().is_some_and(|&b| b != 0)) {
            caught = Some(attempt);
            break;
        }
    }
    assert!(caught.is_some(), "no kill left a hot journal in 5 attempts");

    let o = netrec(&["report", "--db", s(&db)]);
    assert_eq!(code(&o), 0, "a report of the interrupted database: {}", stderr(&o));
    assert!(!journal.exists(), "rolled back by the open");
    assert_eq!(sql_i64(&db, "SELECT count(*) FROM inputs WHERE complete = 1"), 1);
    let o = netrec(&["analyze", "--quiet", "--db", s(&db), s(&big)]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(sql_i64(&db, "SELECT count(*) FROM inputs WHERE complete = 1"), 2);
    assert_eq!(sql_i64(&db, "SELECT count(*) FROM inputs"), 2);
    assert_eq!(sql_i64(&db, "SELECT packets FROM inputs WHERE id = 2"), 120_000);
    assert_eq!(sql_i64(&db, "SELECT count(*) FROM flows WHERE input_id = 2"), 120_000);
    let c = db_ro(&db);
    let check: String = c.query_row("PRAGMA integrity_check", [], |r| r.get(0)).unwrap();
    assert_eq!(check, "ok");
    let mode: String = c.query_row("PRAGMA journal_mode", [], |r| r.get(0)).unwrap();
    assert_eq!(mode, "wal", "the load put WAL back");
}
