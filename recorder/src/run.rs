//! The recording loop: packets from a source -> the one decoder -> the one engine, and
//! headers, flows, alerts and loss counters -> rotated segment files.
//!
//! `run(config, source, shutdown)` takes its packet source as a parameter, so everything but
//! the kernel part is tested without root (see `ReplaySource`).

use netrec_format::decode::decode;
use netrec_format::segment::{SegmentError, SegmentHeaderInfo, WriterConfig};
use netrec_format::store::{
    RecoveredPartial, RecoveryOutcome, RetentionPolicy, RotationPolicy, SegmentFile, apply_retention,
    list_segments, recover_dir, recover_partial,
};
use netrec_format::{Alert, EvidenceTally, FlowRecord, LossRecord, PacketRecord, SegmentMeta, Ts};
use netrec_rules::Limits;
use netrec_rules::ruleset::RuleSet;
use netrec_rules::{Engine, EngineSink};
use std::future::Future;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::metrics::{Metrics, PacketTally};
use crate::sinks::{AlertEvent, SinkSet};

/// Where packets come from: the kernel ring buffer live, or a replay in tests.
pub trait PacketSource {
    /// Wait until packets may be queued, at most `timeout`.
    fn wait(&mut self, timeout: Duration) -> impl Future<Output = std::io::Result<()>>;
    /// Hand every queued packet to `f`; returns how many.
    fn drain(&mut self, f: &mut dyn FnMut(&PacketRecord)) -> usize;
    /// Loss and kernel counters since the previous call (None for sources without a kernel).
    fn loss(&mut self, now: Ts) -> Option<LossRecord>;
    /// Flows the kernel counted that ended (idle) by `now`, or all of them when `all`.
    fn ended_flows(&mut self, now: Ts, all: bool) -> Vec<FlowRecord>;
    /// True when the source has nothing more to give (replays); live sources never end.
    fn exhausted(&self) -> bool {
        false
    }
    /// True when `loss` returns kernel counters: live alert lines then wait for the loss record
    /// that covers their window, to state its evidence.
    fn counts_loss(&self) -> bool {
        true
    }
    /// The current time in packet time, for sources that replay recorded traffic: the
    /// recorder then reads no wall clock, so its output depends on the input only. None: wall
    /// clock (live sources).
    fn clock(&self) -> Option<Ts> {
        None
    }
}

/// Where live alerts go besides the segments.
pub enum AlertOutput {
    None,
    /// JSON lines (the `netrec alerts --format jsonl` schema, plus `"event": "alert" | "update"`).
    Jsonl(Box<dyn Write + Send>),
}

impl std::fmt::Debug for AlertOutput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            AlertOutput::None => "None",
            AlertOutput::Jsonl(_) => "Jsonl",
        })
    }
}

#[derive(Debug)]
pub struct RecordConfig {
    pub dir: PathBuf,
    pub rotation: RotationPolicy,
    pub retention: Option<RetentionPolicy>,
    pub writer: WriterConfig,
    pub rules: RuleSet,
    pub meta: SegmentMeta,
    pub alerts: AlertOutput,
    /// Alert sinks (EVE, webhooks, mail, syslog): fed without blocking; the caller keeps
    /// another handle to `finish` them after the run.
    pub sinks: Option<Arc<SinkSet>>,
    /// Live counters for `/metrics`.
    pub metrics: Option<Arc<Metrics>>,
    /// Stop after this much wall time (None: until shutdown).
    pub duration: Option<Duration>,
    /// How often queued packets are drained without a kernel wakeup, and counters polled.
    pub poll: Duration,
    /// Unix permission bits for segment files and the directory.
    pub file_mode: u32,
    pub dir_mode: u32,
    /// Called at every poll with the running totals (the CLI's live status line).
    pub status: Option<StatusHook>,
}

/// A callback for live progress; display only, never part of the recording.
pub struct StatusHook(pub Box<dyn FnMut(&RecordSummary) + Send>);

impl std::fmt::Debug for StatusHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StatusHook")
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RecordSummary {
    pub packets: u64,
    pub alerts: u64,
    pub flows: u64,
    pub segments: Vec<PathBuf>,
    pub ring_drops: u64,
    pub kernel_packets: u64,
    /// Times segment writing failed (e.g. disk full) and paused.
    pub writer_errors: u64,
    /// Packet header records not written to segments (writing paused, or lost with a block
    /// that failed); also stored as `writer_drops` in a loss record when writing resumes.
    pub writer_drops: u64,
    /// Other records (alerts, flows, loss) not written while writing was paused.
    pub records_not_written: u64,
    /// Leftover `.partial` files of an earlier run, and segments whose writing failed, and
    /// what recovery did with each.
    pub recovered: Vec<RecoveredPartial>,
    /// Segment bytes written so far (closed segments and the open one).
    pub bytes_written: u64,
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RunError {
    #[error("output directory {path}: {source}")]
    Dir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("segment in {dir}: {source}")]
    Segment {
        dir: PathBuf,
        #[source]
        source: SegmentError,
    },
    #[error("packet source: {0}")]
    Source(#[source] std::io::Error),
    #[error("{path} is locked: another netrec is writing to this directory")]
    Locked { path: PathBuf },
}

/// Wall-clock now. The recorder (not the engine) may read clocks: segment rotation and block
/// age are about the file system, not about packet time.
fn wall_now() -> Ts {
    let d = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    Ts(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// The open segment and the chain state. A write failure (disk full) pauses segment writing:
/// the failed segment is closed by recovery up to its last complete block, records are
/// counted as not written, and writing resumes in a new segment of the same chain when a file
/// can be created again (checked once per loop iteration).
struct Segments {
    /// Exclusive `flock` on DIR for the life of the run: recovery must never touch
    /// the open segment of another writer.
    _lock: std::fs::File,
    dir: PathBuf,
    cfg: WriterConfig,
    meta: SegmentMeta,
    file_mode: u32,
    current: Option<SegmentFile>,
    /// Packet records accepted by `current` (those missing after a failure were lost with it).
    current_packets: u64,
    next_seq: u64,
    prev_sha256: [u8; 32],
    closed: Vec<PathBuf>,
    paused: bool,
    pauses: u64,
    /// A segment whose writing failed and that recovery could not close yet.
    failed: Option<PathBuf>,
    /// Packet records not written since writing paused (reported when it resumes).
    dropped: u64,
    dropped_total: u64,
    other_lost: u64,
    recovered: Vec<RecoveredPartial>,
    closed_bytes: u64,
    /// `DIR/.netrec.reserve` while it exists (see [`make_reserve`]).
    reserve: Option<PathBuf>,
    failed_reported: bool,
}

/// Packet writes of one drain.
#[derive(Default)]
struct WriteTally {
    written: u64,
    not_written: u64,
    err: Option<SegmentError>,
}

impl WriteTally {
    /// After a write error the rest of the drain is not written (the engine still sees it).
    #[inline]
    fn push(
        &mut self,
        file: &mut Option<&mut SegmentFile>,
        pkt: &netrec_format::PacketRef<'_>,
        ev: &mut EvidenceTally,
    ) {
        match file {
            Some(f) if self.err.is_none() => match f.push_packet(pkt) {
                Ok(_) => {
                    self.written += 1;
                    ev.packet(pkt.ts);
                }
                Err(e) => {
                    self.err = Some(e);
                    self.not_written += 1;
                }
            },
            _ => self.not_written += 1,
        }
    }
}

impl Segments {
    fn open_dir(
        dir: &Path,
        cfg: WriterConfig,
        meta: SegmentMeta,
        dir_mode: u32,
        file_mode: u32,
    ) -> Result<Segments, RunError> {
        let io = |source| RunError::Dir { path: dir.to_path_buf(), source };
        std::fs::create_dir_all(dir).map_err(io)?;
        set_mode(dir, dir_mode).map_err(io)?;
        let lock = lock_dir(dir)?;
        // Leftover `.partial` files of a crashed run: closed up to their last complete block,
        // or quarantined; every action is reported, nothing is deleted.
        let (recovered, failed) = recover_dir(dir).map_err(io)?;
        for r in &recovered {
            eprintln!("netrec: {r}");
        }
        for e in &failed {
            eprintln!("netrec: {e} (left in place)");
        }
        // Continue the chain of the earlier run (a restart is a new link): the next sequence
        // number and the SHA-256 of the last closed segment.
        let list = list_segments(dir).map_err(io)?;
        let next_seq = list.iter().map(|l| l.name.seq + 1).max().unwrap_or(1);
        let prev_sha256 = match list.iter().rev().find(|l| !l.name.partial) {
            Some(last) => sha256_file(&last.path).map_err(io)?,
            None => [0; 32],
        };
        Ok(Segments {
            _lock: lock,
            dir: dir.to_path_buf(),
            cfg,
            meta,
            file_mode,
            current: None,
            current_packets: 0,
            next_seq,
            prev_sha256,
            closed: Vec::new(),
            paused: false,
            pauses: 0,
            failed: None,
            dropped: 0,
            dropped_total: 0,
            other_lost: 0,
            recovered,
            closed_bytes: 0,
            reserve: make_reserve(dir),
            failed_reported: false,
        })
    }

    fn bytes_written(&self) -> u64 {
        self.closed_bytes + self.current.as_ref().map_or(0, |f| f.bytes_written())
    }

    /// A new segment with its metadata; a file created but not completed is removed (it holds
    /// no record).
    fn open(&mut self, now: Ts) -> Result<SegmentFile, SegmentError> {
        let info = SegmentHeaderInfo { seq: self.next_seq, prev_sha256: self.prev_sha256, created_ns: now.0 };
        let mut f = SegmentFile::create(&self.dir, info, self.cfg)?;
        let _ = set_mode(&f.partial_path(), self.file_mode);
        if let Err(e) = f.write_meta(&self.meta) {
            let path = f.partial_path();
            drop(f);
            let _ = std::fs::remove_file(path);
            return Err(e);
        }
        self.next_seq += 1;
        self.current_packets = 0;
        Ok(f)
    }

    /// The open segment (opened now if needed); None while writing is paused.
    fn file(&mut self, now: Ts) -> Option<&mut SegmentFile> {
        if self.paused {
            return None;
        }
        if self.current.is_none() {
            match self.open(now) {
                Ok(f) => self.current = Some(f),
                Err(e) => {
                    self.pause(e);
                    return None;
                }
            }
        }
        self.current.as_mut()
    }

    /// Writes one record with `f`; a failure pauses writing. Records not written are counted.
    fn push(&mut self, now: Ts, f: impl FnOnce(&mut SegmentFile) -> Result<usize, SegmentError>) {
        let Some(file) = self.file(now) else {
            self.other_lost += 1;
            return;
        };
        if let Err(e) = f(file) {
            self.other_lost += 1;
            self.pause(e);
        }
    }

    /// Accounts the packet writes of one drain.
    fn settle(&mut self, t: WriteTally) {
        self.current_packets += t.written;
        self.dropped += t.not_written;
        self.dropped_total += t.not_written;
        if let Some(e) = t.err {
            self.pause(e);
        }
    }

    fn pause(&mut self, e: SegmentError) {
        if !self.paused {
            eprintln!(
                "netrec: writing segments in {} paused: {}; detection goes on, records not written are counted",
                self.dir.display(),
                with_causes(&e)
            );
            self.paused = true;
            self.pauses += 1;
        }
        if let Some(f) = self.current.take() {
            self.failed = Some(f.partial_path());
        }
        // The reserve makes room for the failed segment's trailer on a full disk.
        if let Some(r) = self.reserve.take() {
            let _ = std::fs::remove_file(r);
        }
        self.close_failed();
    }

    /// Closes the failed segment by recovery (its complete blocks stay evidence, in the chain).
    fn close_failed(&mut self) -> bool {
        let Some(path) = self.failed.clone() else { return true };
        if !path.exists() {
            // Renamed before the failure (a failed directory sync): nothing left to close.
            self.failed = None;
            return true;
        }
        match recover_partial(&path) {
            Ok(r) => {
                let lost = self.current_packets.saturating_sub(r.counts.packets);
                self.dropped += lost;
                self.dropped_total += lost;
                match r.outcome {
                    RecoveryOutcome::Recovered | RecoveryOutcome::Finalized => {
                        if let Some(h) = r.sha256 {
                            self.prev_sha256 = h;
                        }
                        self.closed_bytes += std::fs::metadata(&r.path).map(|m| m.len()).unwrap_or(0);
                        self.closed.push(r.path.clone());
                    }
                    // Its sequence number is free again: the chain stays gapless.
                    RecoveryOutcome::Quarantined => self.next_seq -= 1,
                }
                eprintln!("netrec: {r}");
                self.recovered.push(r);
                self.failed = None;
                self.failed_reported = false;
                self.current_packets = 0;
                true
            }
            Err(e) => {
                if !self.failed_reported {
                    eprintln!(
                        "netrec: cannot close it by recovery yet: {}; retrying when space returns",
                        with_causes(&e)
                    );
                    self.failed_reported = true;
                }
                false
            }
        }
    }

    /// While paused: close the failed segment, then open a new one and record the loss.
    fn try_resume(&mut self, now: Ts) {
        if !self.paused {
            return;
        }
        let free = free_bytes(&self.dir);
        // Closing the failed segment reads it whole: retry only once a trailer fits.
        if self.failed.is_some() && (free.is_some_and(|f| f < 64 << 10) || !self.close_failed()) {
            return;
        }
        // Resume only with room for a few blocks, not at the first free page (that would
        // leave a trail of tiny segments while the disk stays nearly full).
        let want = 2 * self.cfg.max_block_bytes as u64 + (64 << 10);
        if free.is_some_and(|f| f < want) {
            return;
        }
        let Ok(f) = self.open(now) else { return };
        self.reserve = make_reserve(&self.dir);
        eprintln!(
            "netrec: writing segments resumed in {}: {} packet record(s) and {} other record(s) were not written",
            f.partial_path().display(),
            self.dropped,
            self.other_lost
        );
        self.paused = false;
        self.current = Some(f);
    }

    /// Packet records not written since the last call, once writing works again (they go into
    /// the next loss record as `writer_drops`); 0 while paused.
    fn take_dropped(&mut self) -> u64 {
        if self.paused { 0 } else { std::mem::take(&mut self.dropped) }
    }

    /// Closes the open segment (at the end, a paused writer first tries once more to resume,
    /// so the loss record of what was not written lands in the segments).
    fn close(&mut self, now: Ts, last: bool) {
        if last && self.paused {
            self.try_resume(now);
        }
        if let Some(f) = self.current.take() {
            let partial = f.partial_path();
            match f.close() {
                Ok((path, summary)) => {
                    self.closed_bytes += summary.bytes;
                    self.prev_sha256 = summary.sha256;
                    self.closed.push(path);
                    self.current_packets = 0;
                }
                Err(e) => {
                    self.failed = Some(partial);
                    self.pause(e);
                }
            }
        }
    }
}

/// Bytes set aside while writing, so a disk that fills up still has room to close the failed
/// segment (its trailer); freed when writing fails, made again when it resumes.
const RESERVE_BYTES: usize = 64 << 10;

fn make_reserve(dir: &Path) -> Option<PathBuf> {
    let p = dir.join(".netrec.reserve");
    // Written, not sparse: the blocks must really be allocated.
    match std::fs::write(&p, vec![0u8; RESERVE_BYTES]) {
        Ok(()) => Some(p),
        Err(_) => {
            let _ = std::fs::remove_file(&p);
            None
        }
    }
}

/// Takes the directory's writer lock: `flock` on the directory itself (no lock file; released
/// when the descriptor is closed, also by a crash).
fn lock_dir(dir: &Path) -> Result<std::fs::File, RunError> {
    use std::os::fd::AsRawFd as _;
    let f = std::fs::File::open(dir).map_err(|source| RunError::Dir { path: dir.to_path_buf(), source })?;
    // SAFETY: flock on a descriptor we own, kept open as long as the returned File.
    if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        let e = std::io::Error::last_os_error();
        if e.kind() == std::io::ErrorKind::WouldBlock {
            return Err(RunError::Locked { path: dir.to_path_buf() });
        }
        return Err(RunError::Dir { path: dir.to_path_buf(), source: e });
    }
    Ok(f)
}

/// `error: cause: cause` (the io::Error inside a SegmentError says what happened).
fn with_causes(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

/// Bytes available to unprivileged writers on the file system of `dir` (None if unknown).
fn free_bytes(dir: &Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt as _;
    let c = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
    let mut st = std::mem::MaybeUninit::<libc::statvfs>::uninit();
    // SAFETY: `c` is a valid NUL-terminated path and `st` points to writable memory of the
    // right type; statvfs fills it on success (return 0) only, and we read it only then.
    let rc = unsafe { libc::statvfs(c.as_ptr(), st.as_mut_ptr()) };
    if rc != 0 {
        return None;
    }
    // SAFETY: initialised by the successful call above.
    let st = unsafe { st.assume_init() };
    #[allow(clippy::useless_conversion)] // the field types differ between targets
    Some(u64::from(st.f_bavail).saturating_mul(u64::from(st.f_frsize)))
}

fn set_mode(path: &Path, mode: u32) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
}

fn sha256_file(path: &Path) -> std::io::Result<[u8; 32]> {
    use sha2::Digest as _;
    let bytes = std::fs::read(path)?;
    Ok(sha2::Sha256::digest(&bytes).into())
}

/// Engine output during recording: alerts to the segment and the alert output; engine flows are
/// not stored (the kernel's complete per-flow counters are), replay recomputes them from headers.
struct LiveSink<'a> {
    alerts: &'a mut Vec<(bool, Alert)>,
}

impl EngineSink for LiveSink<'_> {
    fn alert(&mut self, alert: Alert) {
        self.alerts.push((false, alert));
    }
    fn alert_update(&mut self, alert: Alert) {
        self.alerts.push((true, alert));
    }
    fn flow(&mut self, _flow: FlowRecord) {}
}

/// Record until `shutdown` resolves, the duration passes, or a replay source is exhausted.
pub async fn run<S: PacketSource>(
    mut config: RecordConfig,
    mut source: S,
    shutdown: impl Future<Output = ()>,
) -> Result<RecordSummary, RunError> {
    // Replay parity: the segments carry the exact rule set the engine runs and the run identity.
    let mut meta = config.meta.clone();
    meta.ruleset_text = config.rules.canonical();
    meta.ruleset_digest = config.rules.digest();
    let mut segs = Segments::open_dir(&config.dir, config.writer, meta, config.dir_mode, config.file_mode)?;
    // Live: the start time. Replay (import): derived from the input and the chain head, so the
    // output stays deterministic and a second import into the same directory is another run.
    segs.meta.run_id = match source.clock() {
        Some(t) => t.0 ^ u64::from_le_bytes(segs.prev_sha256[..8].try_into().expect("8 bytes")),
        None => wall_now().0,
    };
    let mut engine = Engine::new(config.rules.clone(), Limits::default());
    let mut summary = RecordSummary::default();
    let mut pending: Vec<(bool, Alert)> = Vec::new();
    let mut live = LiveState { has_loss: source.counts_loss(), ..LiveState::default() };
    let started = std::time::Instant::now();
    let mut shutdown = std::pin::pin!(shutdown);
    let mut last_poll = std::time::Instant::now();
    let mut iface_tally = PacketTally::default();
    let mut seg_bytes = SegmentBytes::default();
    loop {
        let stop = tokio::select! {
            _ = &mut shutdown => true,
            r = source.wait(config.poll) => { r.map_err(RunError::Source)?; false }
        };
        let now = source.clock().unwrap_or_else(wall_now);
        segs.try_resume(now);
        // Packets. A write failure (disk full) pauses header writing; detection goes on.
        {
            let mut file = segs.file(now);
            let mut tally = WriteTally::default();
            let mut sink = LiveSink { alerts: &mut pending };
            let ev = &mut live.tally;
            let n = source.drain(&mut |rec: &PacketRecord| {
                iface_tally.add(rec.iface, rec.wire_len);
                let pkt = rec.as_ref();
                let dec = decode(pkt.link_type, pkt.data, pkt.wire_len);
                engine.process(&pkt, &dec, &mut sink);
                tally.push(&mut file, &pkt, ev);
            });
            summary.packets += n as u64;
            if let Some(m) = &config.metrics {
                m.add_packets(&mut iface_tally);
                if tally.err.is_some() {
                    m.add_writer_error();
                }
            }
            segs.settle(tally);
        }
        emit_alerts(&mut segs, now, &mut pending, &mut live, &config, &mut summary)?;
        live.flush_output(&mut config.alerts, false);
        // Counters and ended kernel flows, at the poll interval.
        if stop || last_poll.elapsed() >= config.poll {
            last_poll = std::time::Instant::now();
            live.writer_drops += segs.take_dropped();
            if let Some(loss) = live.loss(source.loss(now), now) {
                if let Some(m) = &config.metrics {
                    m.add_loss(&loss);
                }
                summary.ring_drops += loss.ring_drops;
                summary.kernel_packets += loss.kernel_packets;
                segs.push(now, |f| f.push_loss(&loss));
            }
            let ended = source.ended_flows(now, stop);
            summary.flows += ended.len() as u64;
            if let Some(m) = &config.metrics {
                m.add_flows(ended.len() as u64);
            }
            for f in &ended {
                segs.push(now, |file| file.push_flow(f));
            }
            if segs.current.is_some() {
                segs.push(now, |f| f.tick(now));
            }
            seg_bytes.observe(&segs, config.metrics.as_deref());
            // Rotation and retention.
            let rotate = segs
                .current
                .as_ref()
                .is_some_and(|f| config.rotation.should_rotate(f.opened_at(), now, f.bytes_written()));
            if rotate && !stop {
                segs.close(now, false);
                seg_bytes.observe(&segs, config.metrics.as_deref());
                if let Some(policy) = config.retention {
                    let _ = apply_retention(&config.dir, policy, now);
                }
            }
            if let Some(StatusHook(f)) = config.status.as_mut() {
                summary.bytes_written = segs.bytes_written();
                summary.writer_drops = segs.dropped_total;
                f(&summary);
            }
        }
        let expired = config.duration.is_some_and(|d| started.elapsed() >= d);
        if stop || expired || source.exhausted() {
            break;
        }
    }
    // Drain what is left, close incidents, close the segment cleanly.
    let now = source.clock().unwrap_or_else(wall_now);
    segs.try_resume(now);
    {
        let mut file = segs.file(now);
        let mut tally = WriteTally::default();
        let mut sink = LiveSink { alerts: &mut pending };
        let ev = &mut live.tally;
        summary.packets += source.drain(&mut |rec: &PacketRecord| {
            iface_tally.add(rec.iface, rec.wire_len);
            let pkt = rec.as_ref();
            let dec = decode(pkt.link_type, pkt.data, pkt.wire_len);
            engine.process(&pkt, &dec, &mut sink);
            tally.push(&mut file, &pkt, ev);
        }) as u64;
        engine.finish(&mut sink);
        segs.settle(tally);
    }
    if let Some(m) = &config.metrics {
        m.add_packets(&mut iface_tally);
    }
    emit_alerts(&mut segs, now, &mut pending, &mut live, &config, &mut summary)?;
    live.writer_drops += segs.take_dropped();
    if let Some(loss) = live.loss(source.loss(now), now) {
        if let Some(m) = &config.metrics {
            m.add_loss(&loss);
        }
        summary.ring_drops += loss.ring_drops;
        summary.kernel_packets += loss.kernel_packets;
        segs.push(now, |f| f.push_loss(&loss));
    }
    live.flush_output(&mut config.alerts, true);
    let ended = source.ended_flows(now, true);
    summary.flows += ended.len() as u64;
    if let Some(m) = &config.metrics {
        m.add_flows(ended.len() as u64);
    }
    for f in &ended {
        segs.push(now, |file| file.push_flow(f));
    }
    seg_bytes.observe(&segs, config.metrics.as_deref());
    segs.close(now, true);
    if let Some(r) = segs.reserve.take() {
        let _ = std::fs::remove_file(r);
    }
    summary.bytes_written = segs.bytes_written();
    if let Some(policy) = config.retention {
        let _ = apply_retention(&config.dir, policy, now);
    }
    if let AlertOutput::Jsonl(w) = &mut config.alerts {
        let _ = w.flush();
    }
    summary.writer_errors += segs.pauses;
    summary.writer_drops = segs.dropped_total;
    summary.records_not_written = segs.other_lost;
    summary.recovered = segs.recovered;
    summary.segments = segs.closed;
    Ok(summary)
}

/// Loss intervals kept for live evidence (about 2.8 h at the default 100 ms poll).
const LIVE_EVIDENCE_INTERVALS: usize = 100_000;

/// Live state for evidence: header records per loss interval, writer drops not yet reported, and
/// alert lines held until the loss record covering their window is written and the ring drained
/// once more (headers counted before the record may still be queued): at most two polls. Their
/// evidence is then final and equals what a replay of the segments computes.
struct LiveState {
    tally: EvidenceTally,
    writer_drops: u64,
    has_loss: bool,
    held: Vec<(bool, Alert)>,
}

impl Default for LiveState {
    fn default() -> Self {
        LiveState {
            tally: EvidenceTally::new(LIVE_EVIDENCE_INTERVALS),
            writer_drops: 0,
            has_loss: false,
            held: Vec::new(),
        }
    }
}

impl LiveState {
    /// The source's counters plus the packets the engine saw that could not be written; a loss
    /// record is made for writer drops even when the source has no kernel counters.
    fn loss(&mut self, from_source: Option<LossRecord>, now: Ts) -> Option<LossRecord> {
        let drops = std::mem::take(&mut self.writer_drops);
        let mut loss = match from_source {
            // Stamped after the counters were read: every packet they count is older, so headers
            // fall into the interval that counted them (evidence compares the two).
            Some(l) => LossRecord { ts: wall_now().max(l.ts), ..l },
            None if drops > 0 => LossRecord { ts: now, ..LossRecord::default() },
            None => return None,
        };
        loss.writer_drops += drops;
        self.has_loss = true;
        self.tally.loss(&loss);
        Some(loss)
    }

    /// Writes the held alert lines whose window is covered by loss records (all when `all`).
    fn flush_output(&mut self, out: &mut AlertOutput, all: bool) {
        let AlertOutput::Jsonl(w) = out else {
            self.held.clear();
            return;
        };
        let n = if all || !self.has_loss {
            self.held.len()
        } else {
            // In order: a covered line never overtakes an earlier held one.
            self.held.iter().take_while(|(_, a)| self.tally.covers(a.last_ts)).count()
        };
        if n == 0 {
            return;
        }
        for (update, alert) in self.held.drain(..n) {
            let mut v = netrec_rules::alert_json(&alert);
            v["event"] = serde_json::Value::from(if update { "update" } else { "alert" });
            let ev = self.tally.evidence(alert.first_ts, alert.last_ts);
            v["evidence_seen"] = ev.map(|e| e.seen).into();
            v["evidence_counted"] = ev.map(|e| e.counted).into();
            v["evidence_complete"] = ev.map(|e| e.complete).into();
            // A broken alert output must not stop recording.
            let _ = serde_json::to_writer(&mut *w, &v)
                .and_then(|()| w.write_all(b"\n").map_err(serde_json::Error::io));
        }
        let _ = w.flush();
    }
}

/// Segment bytes for the metrics: the growth of the open file since last looked at (a new
/// file starts from 0; the few trailer bytes written at close are not counted).
#[derive(Default)]
struct SegmentBytes {
    last: u64,
}

impl SegmentBytes {
    fn observe(&mut self, segs: &Segments, metrics: Option<&Metrics>) {
        let (Some(m), Some(f)) = (metrics, segs.current.as_ref()) else {
            self.last = 0;
            return;
        };
        let now = f.bytes_written();
        m.add_segment_bytes(if now >= self.last { now - self.last } else { now });
        self.last = now;
    }
}

fn emit_alerts(
    segs: &mut Segments,
    now: Ts,
    pending: &mut Vec<(bool, Alert)>,
    live: &mut LiveState,
    config: &RecordConfig,
    summary: &mut RecordSummary,
) -> Result<(), RunError> {
    for (update, alert) in pending.drain(..) {
        if !update {
            summary.alerts += 1;
        }
        segs.push(now, |f| f.push_alert(&alert));
        if let Some(m) = &config.metrics {
            m.add_alert(&alert.class, update);
        }
        if let Some(sinks) = &config.sinks {
            // Never blocks: a full sink queue is a counted drop. Sinks carry no evidence fields,
            // so they need not wait for the loss record like the JSONL output.
            sinks.send(AlertEvent { update, alert: alert.clone() });
        }
        live.held.push((update, alert));
    }
    Ok(())
}

/// A source replaying prepared packet records in chunks (tests, and `netrec record --replay`).
#[derive(Debug)]
pub struct ReplaySource {
    records: std::collections::VecDeque<PacketRecord>,
    chunk: usize,
    last: Option<Ts>,
}

impl ReplaySource {
    pub fn new(records: Vec<PacketRecord>, chunk: usize) -> ReplaySource {
        ReplaySource { records: records.into(), chunk: chunk.max(1), last: None }
    }
}

impl PacketSource for ReplaySource {
    async fn wait(&mut self, _timeout: Duration) -> std::io::Result<()> {
        tokio::task::yield_now().await;
        Ok(())
    }
    fn drain(&mut self, f: &mut dyn FnMut(&PacketRecord)) -> usize {
        let n = self.chunk.min(self.records.len());
        for rec in self.records.drain(..n) {
            self.last = Some(rec.ts);
            f(&rec);
        }
        n
    }
    fn loss(&mut self, _now: Ts) -> Option<LossRecord> {
        None
    }
    fn ended_flows(&mut self, _now: Ts, _all: bool) -> Vec<FlowRecord> {
        Vec::new()
    }
    fn exhausted(&self) -> bool {
        self.records.is_empty()
    }
    /// Packet time: of the next packet, or the last one once all were given.
    fn clock(&self) -> Option<Ts> {
        self.records.front().map(|r| r.ts).or(self.last)
    }
    fn counts_loss(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

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

    fn alert(id: u64, first: u64, last: u64) -> Alert {
        Alert {
            id,
            rule_id: "r".into(),
            class: "syn_flood".into(),
            severity: netrec_format::Severity::High,
            attack_id: "T".into(),
            first_ts: Ts(first),
            last_ts: Ts(last),
            src: vec![],
            src_count: 0,
            dst: vec![],
            dst_count: 0,
            dst_ports: vec![],
            count: 1,
            stats: vec![],
            message: String::new(),
        }
    }

    fn lines(buf: &Shared) -> Vec<serde_json::Value> {
        let b = buf.0.lock().unwrap();
        std::str::from_utf8(&b).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
    }

    #[test]
    fn alert_lines_wait_for_the_covering_loss_record_and_state_evidence() {
        let buf = Shared::default();
        let mut out = AlertOutput::Jsonl(Box::new(buf.clone()));
        let mut live = LiveState { has_loss: true, ..LiveState::default() };
        for t in [10, 20, 30] {
            live.tally.packet(Ts(t));
        }
        // The engine saw two more packets that could not be written.
        live.writer_drops = 2;
        live.held.push((false, alert(1, 10, 30)));
        // Ends after the next loss record (stamped with the wall clock when the counters are read).
        live.held.push((false, alert(2, 30, u64::MAX - 1)));
        live.flush_output(&mut out, false);
        assert!(lines(&buf).is_empty(), "held until covered");
        let from_kernel = LossRecord { ts: Ts(100), kernel_packets: 5, ..LossRecord::default() };
        let l = live.loss(Some(from_kernel), Ts(100)).unwrap();
        assert_eq!(l.writer_drops, 2, "writer drops go into the loss record");
        assert!(l.ts >= Ts(100), "stamped no earlier than the poll");
        live.flush_output(&mut out, false);
        let v = lines(&buf);
        assert_eq!(v.len(), 1, "only the covered alert: {v:?}");
        assert_eq!(v[0]["id"], 1);
        assert_eq!(v[0]["evidence_seen"], 3);
        assert_eq!(v[0]["evidence_counted"], 5);
        assert_eq!(v[0]["evidence_complete"], false);
        // Writer drops without kernel counters still make a loss record.
        live.writer_drops = 1;
        assert_eq!(live.loss(None, Ts(200)).map(|l| l.writer_drops), Some(1));
        assert_eq!(live.loss(None, Ts(300)), None);
        live.flush_output(&mut out, true);
        assert_eq!(lines(&buf).len(), 2);
    }

    #[test]
    fn without_kernel_counters_lines_go_out_at_once_with_null_evidence() {
        let buf = Shared::default();
        let mut out = AlertOutput::Jsonl(Box::new(buf.clone()));
        let mut live = LiveState { has_loss: false, ..LiveState::default() };
        live.held.push((true, alert(4, 1, 2)));
        live.flush_output(&mut out, false);
        let v = lines(&buf);
        assert_eq!(v[0]["event"], "update");
        assert!(v[0]["evidence_complete"].is_null());
    }
}
