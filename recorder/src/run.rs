//! The recording loop: packets from a source -> the one decoder -> the one engine, and
//! headers, flows, alerts and loss counters -> rotated segment files.
//!
//! `run(config, source, shutdown)` takes its packet source as a parameter, so everything but
//! the kernel part is tested without root (see `ReplaySource`).

use netrec_format::decode::decode;
use netrec_format::segment::{SegmentError, SegmentHeaderInfo, WriterConfig};
use netrec_format::store::{RetentionPolicy, RotationPolicy, SegmentFile, apply_retention, list_segments};
use netrec_format::{Alert, EvidenceTally, FlowRecord, LossRecord, PacketRecord, SegmentMeta, Ts};
use netrec_rules::Limits;
use netrec_rules::ruleset::RuleSet;
use netrec_rules::{Engine, EngineSink};
use std::future::Future;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

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
    pub writer_errors: u64,
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
}

/// Wall-clock now. The recorder (not the engine) may read clocks: segment rotation and block
/// age are about the file system, not about packet time.
fn wall_now() -> Ts {
    let d = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    Ts(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// The open segment and the chain state.
struct Segments {
    dir: PathBuf,
    cfg: WriterConfig,
    meta: SegmentMeta,
    file_mode: u32,
    current: Option<SegmentFile>,
    next_seq: u64,
    prev_sha256: [u8; 32],
    closed: Vec<PathBuf>,
    closed_bytes: u64,
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
        // Continue the chain of an earlier run: the next sequence number and the SHA-256 of the
        // last closed segment. Unfinished `.partial` files are left where they are, never deleted.
        let list = list_segments(dir).map_err(io)?;
        let next_seq = list.iter().map(|l| l.name.seq + 1).max().unwrap_or(1);
        let prev_sha256 = match list.iter().rev().find(|l| !l.name.partial) {
            Some(last) => sha256_file(&last.path).map_err(io)?,
            None => [0; 32],
        };
        Ok(Segments {
            dir: dir.to_path_buf(),
            cfg,
            meta,
            file_mode,
            current: None,
            next_seq,
            prev_sha256,
            closed: Vec::new(),
            closed_bytes: 0,
        })
    }

    fn bytes_written(&self) -> u64 {
        self.closed_bytes + self.current.as_ref().map_or(0, |f| f.bytes_written())
    }

    fn err(&self, source: SegmentError) -> RunError {
        RunError::Segment { dir: self.dir.clone(), source }
    }

    fn file(&mut self, now: Ts) -> Result<&mut SegmentFile, RunError> {
        if self.current.is_none() {
            let info =
                SegmentHeaderInfo { seq: self.next_seq, prev_sha256: self.prev_sha256, created_ns: now.0 };
            let mut f = SegmentFile::create(&self.dir, info, self.cfg).map_err(|e| self.err(e))?;
            let _ = set_mode(&f.partial_path(), self.file_mode);
            f.write_meta(&self.meta).map_err(|e| self.err(e))?;
            self.next_seq += 1;
            self.current = Some(f);
        }
        Ok(self.current.as_mut().expect("just opened"))
    }

    fn close(&mut self) -> Result<(), RunError> {
        if let Some(f) = self.current.take() {
            let (path, summary) = f.close().map_err(|e| self.err(e))?;
            self.closed_bytes += std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
            self.prev_sha256 = summary.sha256;
            self.closed.push(path);
        }
        Ok(())
    }
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
    meta.run_id = wall_now().0;
    let mut segs = Segments::open_dir(&config.dir, config.writer, meta, config.dir_mode, config.file_mode)?;
    let mut engine = Engine::new(config.rules.clone(), Limits::default());
    let mut summary = RecordSummary::default();
    let mut pending: Vec<(bool, Alert)> = Vec::new();
    let mut live = LiveState { has_loss: source.counts_loss(), ..LiveState::default() };
    let started = std::time::Instant::now();
    let mut shutdown = std::pin::pin!(shutdown);
    let mut last_poll = std::time::Instant::now();
    loop {
        let stop = tokio::select! {
            _ = &mut shutdown => true,
            r = source.wait(config.poll) => { r.map_err(RunError::Source)?; false }
        };
        let now = wall_now();
        // Packets.
        let mut write_err: Option<SegmentError> = None;
        {
            let file = segs.file(now)?;
            let mut sink = LiveSink { alerts: &mut pending };
            let (tally, drops) = (&mut live.tally, &mut live.writer_drops);
            let n = source.drain(&mut |rec: &PacketRecord| {
                let pkt = rec.as_ref();
                let dec = decode(pkt.link_type, pkt.data, pkt.wire_len);
                engine.process(&pkt, &dec, &mut sink);
                write_packet(file, &pkt, &mut write_err, tally, drops);
            });
            summary.packets += n as u64;
        }
        if let Some(e) = write_err {
            // Headers could not be written (e.g. disk full): detection goes on, the loss is counted.
            summary.writer_errors += 1;
            eprintln!("netrec: writing headers: {e}");
        }
        emit_alerts(&mut segs, now, &mut pending, &mut live, &mut summary)?;
        live.flush_output(&mut config.alerts, false);
        // Counters and ended kernel flows, at the poll interval.
        if stop || last_poll.elapsed() >= config.poll {
            last_poll = std::time::Instant::now();
            if let Some(loss) = live.loss(source.loss(now), now) {
                summary.ring_drops += loss.ring_drops;
                summary.kernel_packets += loss.kernel_packets;
                segs.file(now)?.push_loss(&loss).map_err(|e| segs.err(e))?;
            }
            let ended = source.ended_flows(now, stop);
            summary.flows += ended.len() as u64;
            let file = segs.file(now)?;
            for f in &ended {
                file.push_flow(f).map_err(|e| RunError::Segment { dir: config.dir.clone(), source: e })?;
            }
            segs.file(now)?.tick(now).map_err(|e| segs.err(e))?;
            // Rotation and retention.
            let rotate = segs
                .current
                .as_ref()
                .is_some_and(|f| config.rotation.should_rotate(f.opened_at(), now, f.bytes_written()));
            if rotate && !stop {
                segs.close()?;
                if let Some(policy) = config.retention {
                    let _ = apply_retention(&config.dir, policy, now);
                }
            }
            if let Some(StatusHook(f)) = config.status.as_mut() {
                summary.bytes_written = segs.bytes_written();
                f(&summary);
            }
        }
        let expired = config.duration.is_some_and(|d| started.elapsed() >= d);
        if stop || expired || source.exhausted() {
            break;
        }
    }
    // Drain what is left, close incidents, close the segment cleanly.
    let now = wall_now();
    {
        let file = segs.file(now)?;
        let mut sink = LiveSink { alerts: &mut pending };
        let mut write_err = None;
        let (tally, drops) = (&mut live.tally, &mut live.writer_drops);
        summary.packets += source.drain(&mut |rec: &PacketRecord| {
            let pkt = rec.as_ref();
            let dec = decode(pkt.link_type, pkt.data, pkt.wire_len);
            engine.process(&pkt, &dec, &mut sink);
            write_packet(file, &pkt, &mut write_err, tally, drops);
        }) as u64;
        engine.finish(&mut sink);
        if write_err.is_some() {
            summary.writer_errors += 1;
        }
    }
    emit_alerts(&mut segs, now, &mut pending, &mut live, &mut summary)?;
    if let Some(loss) = live.loss(source.loss(now), now) {
        summary.ring_drops += loss.ring_drops;
        summary.kernel_packets += loss.kernel_packets;
        segs.file(now)?.push_loss(&loss).map_err(|e| segs.err(e))?;
    }
    live.flush_output(&mut config.alerts, true);
    let ended = source.ended_flows(now, true);
    summary.flows += ended.len() as u64;
    for f in &ended {
        segs.file(now)?.push_flow(f).map_err(|e| RunError::Segment { dir: config.dir.clone(), source: e })?;
    }
    segs.close()?;
    summary.bytes_written = segs.bytes_written();
    if let Some(policy) = config.retention {
        let _ = apply_retention(&config.dir, policy, now);
    }
    if let AlertOutput::Jsonl(w) = &mut config.alerts {
        let _ = w.flush();
    }
    summary.segments = segs.closed;
    Ok(summary)
}

/// One packet to the segment, accounted for evidence; after a write error the rest of the drain
/// is not written (the engine still sees it): each such packet is a writer drop.
#[inline]
fn write_packet(
    file: &mut SegmentFile,
    pkt: &netrec_format::PacketRef<'_>,
    err: &mut Option<SegmentError>,
    tally: &mut EvidenceTally,
    drops: &mut u64,
) {
    if err.is_none() {
        match file.push_packet(pkt) {
            Ok(_) => tally.packet(pkt.ts),
            Err(e) => *err = Some(e),
        }
    }
    if err.is_some() {
        *drops += 1;
    }
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

fn emit_alerts(
    segs: &mut Segments,
    now: Ts,
    pending: &mut Vec<(bool, Alert)>,
    live: &mut LiveState,
    summary: &mut RecordSummary,
) -> Result<(), RunError> {
    for (update, alert) in pending.drain(..) {
        if !update {
            summary.alerts += 1;
        }
        segs.file(now)?.push_alert(&alert).map_err(|e| segs.err(e))?;
        live.held.push((update, alert));
    }
    Ok(())
}

/// A source replaying prepared packet records in chunks (tests, and `netrec record --replay`).
#[derive(Debug)]
pub struct ReplaySource {
    records: std::collections::VecDeque<PacketRecord>,
    chunk: usize,
}

impl ReplaySource {
    pub fn new(records: Vec<PacketRecord>, chunk: usize) -> ReplaySource {
        ReplaySource { records: records.into(), chunk: chunk.max(1) }
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
