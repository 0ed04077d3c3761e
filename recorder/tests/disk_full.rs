//! Crash safety and disk full for `run` (issue #6 item 3), without the kernel: a test source
//! generates a SYN flood in chunks and can run a hook between chunks (fill or free the disk).
//!
//! The disk-full test mounts a 2 MiB tmpfs and needs root; without root it fails (CI is root).

use netrec_format::segment::{BlockBody, Recovery, SegmentReader, WriterConfig, verify_chain};
use netrec_format::store::{RecoveryOutcome, RotationPolicy, list_segments};
use netrec_format::{
    Direction, FlowRecord, InterfaceInfo, LinkType, LossRecord, PacketRecord, SegmentMeta, Ts,
};
use netrec_recorder::run::{AlertOutput, PacketSource, RecordConfig, RecordSummary, run};
use netrec_rules::ruleset::RuleSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const T0: u64 = 1_700_000_000_000_000_000;

/// SYN flood to 10.0.0.2:80 from 10.1.x.y, 1 ms apart; 60 bytes of incompressible payload so
/// the segments really take space.
fn packet(i: u64) -> PacketRecord {
    let mut d = Vec::with_capacity(114);
    d.extend_from_slice(&[2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00]);
    let total = (20 + 20 + 60u16).to_be_bytes();
    d.extend_from_slice(&[0x45, 0, total[0], total[1], 0, 1, 0x40, 0, 64, 6, 0, 0]);
    d.extend_from_slice(&[10, 1, (i >> 8) as u8, i as u8, 10, 0, 0, 2]);
    let sport = (1024 + (i % 60_000) as u16).to_be_bytes();
    d.extend_from_slice(&[sport[0], sport[1], 0, 80]);
    d.extend_from_slice(&(i as u32).to_be_bytes());
    d.extend_from_slice(&[0, 0, 0, 0, 0x50, 0x02, 0xff, 0xff, 0, 0, 0, 0]);
    let mut x = i.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    for _ in 0..60 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        d.push(x as u8);
    }
    PacketRecord {
        ts: Ts(T0 + i * 1_000_000),
        iface: 1,
        direction: Direction::Ingress,
        link_type: LinkType::ETHERNET,
        wire_len: d.len() as u32,
        data: d,
    }
}

type Hook = Box<dyn FnMut(usize)>;

/// Gives `chunks` chunks of `per` packets; `hook(k)` runs before chunk k is given.
struct HookSource {
    chunks: usize,
    per: usize,
    next: usize,
    hook: Hook,
}

impl PacketSource for HookSource {
    async fn wait(&mut self, _timeout: Duration) -> std::io::Result<()> {
        tokio::task::yield_now().await;
        Ok(())
    }
    fn drain(&mut self, f: &mut dyn FnMut(&PacketRecord)) -> usize {
        if self.next >= self.chunks {
            return 0;
        }
        (self.hook)(self.next);
        let base = (self.next * self.per) as u64;
        for i in 0..self.per as u64 {
            f(&packet(base + i));
        }
        self.next += 1;
        self.per
    }
    fn loss(&mut self, _now: Ts) -> Option<LossRecord> {
        None
    }
    fn ended_flows(&mut self, _now: Ts, _all: bool) -> Vec<FlowRecord> {
        Vec::new()
    }
    fn exhausted(&self) -> bool {
        self.next >= self.chunks
    }
    fn clock(&self) -> Option<Ts> {
        Some(packet((self.next * self.per) as u64).ts)
    }
    fn counts_loss(&self) -> bool {
        false
    }
}

#[derive(Clone, Default)]
struct Shared(Arc<Mutex<Vec<u8>>>);
impl Write for Shared {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn config(dir: &Path, alerts: Shared) -> RecordConfig {
    RecordConfig {
        dir: dir.to_path_buf(),
        rotation: RotationPolicy { max_bytes: 256 << 10, max_age_ns: 0, align_ns: None },
        retention: None,
        writer: WriterConfig {
            max_block_bytes: 16 << 10,
            max_block_age_ns: 1_000_000_000,
            zstd_level: 3,
            ..WriterConfig::default()
        },
        rules: RuleSet::default_pack(),
        meta: SegmentMeta {
            host: "test".into(),
            interfaces: vec![InterfaceInfo { index: 1, name: "eth0".into(), link_type: LinkType::ETHERNET }],
            snaplen: 128,
            clock_base_ns: 0,
            netrec_version: "test".into(),
            ruleset_digest: String::new(),
            ..SegmentMeta::default()
        },
        alerts: AlertOutput::Jsonl(Box::new(alerts)),
        duration: None,
        poll: Duration::ZERO,
        file_mode: 0o640,
        dir_mode: 0o750,
        status: None,
        sinks: None,
        metrics: None,
    }
}

fn record(dir: &Path, chunks: usize, per: usize, hook: Hook) -> (RecordSummary, Vec<String>) {
    let alerts = Shared::default();
    let cfg = config(dir, alerts.clone());
    let src = HookSource { chunks, per, next: 0, hook };
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let summary = rt.block_on(run(cfg, src, std::future::pending())).expect("run");
    let text = String::from_utf8(alerts.0.lock().unwrap().clone()).unwrap();
    (summary, text.lines().map(str::to_owned).collect())
}

/// Closed segments of `dir` in chain order, checked as one chain; returns (packets, loss).
fn read_dir_chain(dir: &Path) -> (Vec<PacketRecord>, Vec<LossRecord>) {
    let list = list_segments(dir).unwrap();
    assert!(list.iter().all(|l| !l.name.partial), "no .partial may be left: {list:?}");
    let files: Vec<(PathBuf, std::fs::File)> =
        list.iter().map(|l| (l.path.clone(), std::fs::File::open(&l.path).unwrap())).collect();
    let rep = verify_chain(files);
    assert!(rep.is_intact(), "chain must verify: {:?}", rep.first_problem());
    let (mut pkts, mut loss) = (Vec::new(), Vec::new());
    for l in &list {
        for b in SegmentReader::new(std::fs::File::open(&l.path).unwrap(), Recovery::Strict).unwrap() {
            match b.unwrap().body {
                BlockBody::Packets(p) => pkts.extend(p.to_records()),
                BlockBody::Loss(v) => loss.extend(v),
                _ => {}
            }
        }
    }
    (pkts, loss)
}

/// Unmounts (and removes the mount point) when dropped, even when the test fails.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(at: PathBuf, size: &str) -> Tmpfs {
        // SAFETY: geteuid has no preconditions and cannot fail.
        let euid = unsafe { libc::geteuid() };
        assert_eq!(euid, 0, "the disk-full test mounts a tmpfs and must run as root (CI does); not skipped");
        std::fs::create_dir_all(&at).unwrap();
        let st = Command::new("mount")
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
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

/// Fills `path` with incompressible bytes until `bytes` are written or the disk is full.
fn fill(path: &Path, bytes: usize) {
    let mut f = std::fs::File::create(path).unwrap();
    let mut x = 0x1234_5678_9abc_def1u64;
    let chunk: Vec<u8> = (0..4096)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    let mut left = bytes;
    while left > 0 {
        let n = left.min(chunk.len());
        if f.write_all(&chunk[..n]).is_err() {
            break;
        }
        left -= n;
    }
    let _ = f.sync_all();
}

#[test]
fn disk_full_pauses_header_writing_counts_the_loss_keeps_alerting_and_resumes() {
    let (chunks, per) = (20, 500);
    // Reference: the same traffic with room to spare.
    let roomy = tempfile::tempdir().unwrap();
    let (ref_summary, ref_alerts) = record(roomy.path(), chunks, per, Box::new(|_| {}));
    assert_eq!(ref_summary.writer_drops, 0);
    assert_eq!(ref_summary.writer_errors, 0);
    assert!(!ref_alerts.is_empty(), "the SYN flood must raise alerts");
    let (ref_pkts, _) = read_dir_chain(roomy.path());
    assert_eq!(ref_pkts.len(), chunks * per);

    let base = tempfile::tempdir().unwrap();
    let mnt = Tmpfs::mount(base.path().join("mnt"), "2m");
    let dir = mnt.0.join("segs");
    let filler = mnt.0.join("filler");
    // Leave about 300 KiB: the ~1.2 MB of headers cannot fit.
    fill(&filler, (2 << 20) - (300 << 10));
    let (free_at, filler2) = (14, filler.clone());
    let freed = Arc::new(Mutex::new(false));
    let freed2 = freed.clone();
    let hook: Hook = Box::new(move |k| {
        if k == free_at {
            std::fs::remove_file(&filler2).unwrap();
            *freed2.lock().unwrap() = true;
        }
    });
    let (summary, alerts) = record(&dir, chunks, per, hook);
    assert!(*freed.lock().unwrap());

    // Writing paused once, with packets counted as not written.
    assert!(summary.writer_errors >= 1, "{summary:?}");
    assert!(summary.writer_drops > 0, "{summary:?}");
    assert_eq!(summary.packets, (chunks * per) as u64);
    // Alerting went on: the alert lines are those of the run with room, except that their
    // evidence now says it is incomplete (headers of the window were not written).
    let strip = |lines: &[String]| -> Vec<serde_json::Value> {
        lines
            .iter()
            .map(|l| {
                let mut v: serde_json::Value = serde_json::from_str(l).unwrap();
                for k in ["evidence_seen", "evidence_counted", "evidence_complete"] {
                    v.as_object_mut().unwrap().remove(k);
                }
                v
            })
            .collect()
    };
    assert_eq!(strip(&alerts), strip(&ref_alerts), "alerts must not depend on disk space");
    let last: serde_json::Value = serde_json::from_str(alerts.last().unwrap()).unwrap();
    assert_eq!(last["evidence_complete"], false, "the lost headers make the evidence incomplete: {last}");
    // Every closed segment verifies as one chain, the failed one closed by recovery.
    let (pkts, loss) = read_dir_chain(&dir);
    assert!(
        summary.recovered.iter().any(|r| r.outcome == RecoveryOutcome::Recovered),
        "the segment that failed is closed by recovery: {:?}",
        summary.recovered
    );
    // Nothing silently lost: written + counted = seen, and the count is in a loss record.
    assert_eq!(pkts.len() as u64 + summary.writer_drops, summary.packets);
    let recorded: u64 = loss.iter().map(|l| l.writer_drops).sum();
    assert_eq!(recorded, summary.writer_drops, "writer_drops in the loss records: {loss:?}");
    // Written records are the original ones, in order, with a hole where writing paused;
    // writing resumed: the last chunks are there.
    let mut it = ref_pkts.iter();
    for p in &pkts {
        assert!(it.any(|r| r == p), "a written packet is not one of the originals, in order");
    }
    assert_eq!(pkts.last(), ref_pkts.last(), "writing resumed after space returned");
    drop(mnt);
}

#[test]
fn a_restart_recovers_the_partial_and_continues_the_chain() {
    let dir = tempfile::tempdir().unwrap();
    let (first, _) = record(dir.path(), 4, 500, Box::new(|_| {}));
    assert!(first.recovered.is_empty());
    // Simulate a crash: a segment left open with complete blocks and a torn tail.
    let last = first.segments.last().unwrap().clone();
    assert_eq!(read_dir_chain(dir.path()).0.len(), 2000);
    let bytes = std::fs::read(&last).unwrap();
    // Drop the trailer (last 200+ bytes hold it) and cut into the last block.
    let cut = bytes.len() - 300;
    let partial = PathBuf::from(format!("{}.partial", last.display()));
    std::fs::write(&partial, &bytes[..cut]).unwrap();
    std::fs::remove_file(&last).unwrap();
    let (second, _) = record(dir.path(), 2, 500, Box::new(|_| {}));
    assert_eq!(second.recovered.len(), 1, "{:?}", second.recovered);
    let r = &second.recovered[0];
    assert_eq!(r.outcome, RecoveryOutcome::Recovered);
    assert_eq!(r.partial, partial);
    assert_eq!(r.path, last);
    // One chain: first run (recovered tail), then the second run's segments.
    let (pkts, _) = read_dir_chain(dir.path());
    assert!(pkts.len() <= 3000 && pkts.len() > 1000, "{}", pkts.len());
    // The first run's records are a prefix of what it was given, then the second run's.
    let first_run = pkts.len() - 1000;
    assert!(first_run >= r.counts.packets as usize);
    let expect: Vec<PacketRecord> = (0..first_run as u64).chain(0..1000).map(packet).collect();
    assert!(pkts == expect, "records differ from the originals");
}

/// Two writers never share a directory: the second would recover the first one's open segment.
#[test]
fn a_second_writer_on_the_same_directory_is_refused() {
    use std::os::fd::AsRawFd as _;
    let dir = tempfile::tempdir().unwrap();
    let held = std::fs::File::open(dir.path()).unwrap();
    // SAFETY: flock on a descriptor this test owns.
    assert_eq!(unsafe { libc::flock(held.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) }, 0);
    let cfg = config(dir.path(), Shared::default());
    let src = HookSource { chunks: 1, per: 10, next: 0, hook: Box::new(|_| {}) };
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let err = rt.block_on(run(cfg, src, std::future::pending())).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("{} is locked: another netrec is writing to this directory", dir.path().display())
    );
    drop(held);
    let (summary, _) = record(dir.path(), 1, 10, Box::new(|_| {}));
    assert_eq!(summary.packets, 10);
}
