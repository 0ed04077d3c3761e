//! The replay pipeline shared by `flows`, `alerts` and `analyze`:
//! input (pcap, pcapng, segment) -> decoder -> engine -> sink.

use crate::source::{CaptureSource, SourceError};
use netrec_format::decode::{Decoded, decode};
use netrec_format::{PacketRef, Ts};
use netrec_rules::{Engine, EngineSink};
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

/// What one input contributed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReplayStats {
    pub packets: u64,
    /// Wire bytes.
    pub bytes: u64,
    pub first_ts: Option<Ts>,
    pub last_ts: Option<Ts>,
    /// Packets with at least one malformed-header anomaly.
    pub decode_anomalies: u64,
    /// Packets whose link type netrec cannot decode.
    pub unsupported_link: u64,
    /// Reader warnings (damaged tails, invalid timestamps...), already formatted with the byte offset.
    pub warnings: Vec<String>,
    pub warning_count: u64,
}

impl ReplayStats {
    fn account(&mut self, pkt: &PacketRef<'_>, dec: &Decoded) {
        self.packets += 1;
        self.bytes += pkt.wire_len as u64;
        if self.first_ts.is_none_or(|t| pkt.ts < t) {
            self.first_ts = Some(pkt.ts);
        }
        if self.last_ts.is_none_or(|t| pkt.ts > t) {
            self.last_ts = Some(pkt.ts);
        }
        if dec.anomalies.any_malformed() {
            self.decode_anomalies += 1;
        }
        if dec.anomalies.has(netrec_format::decode::Anomaly::UnsupportedLinkType) {
            self.unsupported_link += 1;
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InputError {
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error("{path}: {}", with_offset(.source))]
    Segment {
        path: PathBuf,
        #[source]
        source: netrec_format::segment::SegmentError,
    },
    /// Every packet of the input has a link type the decoder does not know: nothing usable.
    #[error("{path}: link type {link_type} is not supported ({packets} packets skipped)")]
    UnsupportedLinkType { path: PathBuf, link_type: u32, packets: u64 },
    #[error("{path}: directory holds no capture or segment files")]
    EmptyDirectory { path: PathBuf },
    /// A pipe, terminal or device where the command must read the input twice or from its
    /// start (a pipe yields its bytes once).
    #[error(
        "{path}: not a regular file: {why}; save the stream to a file first (flows and alerts read captures from pipes, and - for standard input)"
    )]
    NotRegular { path: PathBuf, why: &'static str },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// A segment error's text with its byte offset in front when the text does not name it (the
/// file-header faults, all at offset 0), as `segments verify` prints them.
fn with_offset(e: &netrec_format::segment::SegmentError) -> String {
    let text = e.to_string();
    match e.offset() {
        Some(o) if !text.contains("offset") => format!("offset {o}: {text}"),
        _ => text,
    }
}

/// An opened input of any supported kind, detected by content.
#[derive(Debug)]
pub struct Input {
    path: PathBuf,
    inner: Inner,
}

#[derive(Debug)]
enum Inner {
    Capture(Box<CaptureSource>),
    Segment(Box<crate::segsource::SegmentPackets>),
}

impl Input {
    pub fn open(path: &Path) -> Result<Input, InputError> {
        let inner = match CaptureSource::open(path) {
            Ok(src) => Inner::Capture(Box::new(src)),
            // The segment reader opens the file again, from its start: a stream's first bytes
            // are gone (read to tell the format).
            Err(SourceError::IsSegment { .. }) if !is_regular(path) => {
                return Err(InputError::NotRegular {
                    path: path.to_path_buf(),
                    why: "a segment is read from its file, not from a stream",
                });
            }
            Err(SourceError::IsSegment { .. }) => {
                Inner::Segment(Box::new(crate::segsource::SegmentPackets::open(path)?))
            }
            Err(e) => return Err(e.into()),
        };
        Ok(Input { path: path.to_path_buf(), inner })
    }

    /// The segment files of one recording (its rotations, in order) as one input: one stream,
    /// so flows and attacks spanning a rotation are seen whole. `path` names the input (the
    /// chain's directory) in errors about the whole input.
    pub fn open_chain(path: &Path, files: &[PathBuf]) -> Result<Input, InputError> {
        let inner = Inner::Segment(Box::new(crate::segsource::SegmentPackets::open_chain(files)?));
        Ok(Input { path: path.to_path_buf(), inner })
    }

    /// Open a group from [`group_inputs`].
    pub fn open_group(group: &InputGroup) -> Result<Input, InputError> {
        match group.files.as_slice() {
            [one] => Input::open(one),
            files => Input::open_chain(&group.path, files),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// "pcap", "pcapng" or "segment" (with "+gz"/"+zst" when compressed).
    pub fn format_name(&self) -> String {
        match &self.inner {
            Inner::Capture(c) => {
                let base = match c.format() {
                    crate::source::CaptureFormat::Pcap => "pcap",
                    crate::source::CaptureFormat::PcapNg => "pcapng",
                };
                match c.compression() {
                    Some(comp) => format!("{base}+{comp}"),
                    None => base.to_string(),
                }
            }
            Inner::Segment(_) => "segment".to_string(),
        }
    }

    pub fn next_packet(&mut self) -> Result<Option<PacketRef<'_>>, InputError> {
        match &mut self.inner {
            Inner::Capture(c) => Ok(c.next_packet()?),
            Inner::Segment(s) => s.next_packet(),
        }
    }

    /// Input bytes consumed so far (for progress).
    pub fn bytes_consumed(&self) -> u64 {
        match &self.inner {
            Inner::Capture(c) => c.bytes_consumed(),
            Inner::Segment(s) => s.bytes_consumed(),
        }
    }

    fn collect_warnings(&self, stats: &mut ReplayStats) {
        match &self.inner {
            Inner::Capture(c) => {
                stats.warning_count += c.warning_count();
                stats.warnings.extend(c.warnings().iter().map(|w| format!("{}: {w}", self.path.display())));
            }
            Inner::Segment(s) => {
                stats.warning_count += s.warnings().len() as u64;
                stats.warnings.extend(s.warnings().iter().cloned());
            }
        }
    }
}

/// Replay every packet of `input` through the decoder and `engine`, reporting each decoded packet
/// to `on_packet` with the sink (for per-packet aggregates such as time series). The engine is not finished:
/// the caller decides whether several inputs form one stream.
pub fn replay<S: EngineSink>(
    input: &mut Input,
    engine: &mut Engine,
    sink: &mut S,
    stats: &mut ReplayStats,
    mut on_packet: impl FnMut(&mut S, &PacketRef<'_>, &Decoded),
) -> Result<(), InputError> {
    replay_until(input, engine, sink, stats, |s, p, d| {
        on_packet(s, p, d);
        ControlFlow::Continue(())
    })
}

/// [`replay`] on two threads: this one reads, decodes and accounts the packets (as
/// [`read_ahead`]), a second runs them through `engine` into `sink`. The engine sees the same
/// packets in the same order, so the output is [`replay`]'s exactly; `flows` and `alerts` use
/// it to keep both cores busy (reading and decoding were a third of their time).
pub fn replay_threaded<S: EngineSink + Send>(
    input: &mut Input,
    engine: &mut Engine,
    sink: &mut S,
    stats: &mut ReplayStats,
) -> Result<(), InputError> {
    use std::sync::mpsc::{channel, sync_channel};
    let stop = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|scope| {
        let (tx, rx) = sync_channel::<PacketBatch>(8);
        let (back_tx, back_rx) = channel::<PacketBatch>();
        let worker = std::thread::Builder::new()
            .name("nr-engine".into())
            .spawn_scoped(scope, move || {
                for batch in rx.iter() {
                    for (pkt, dec) in batch.packets() {
                        engine.process(&pkt, dec, sink);
                    }
                    // Spent buffers go back to the reader (which may have finished: ignored).
                    let _ = back_tx.send(batch);
                }
            })
            .unwrap_or_else(|e| panic!("cannot start thread nr-engine: {e}"));
        let res = read_ahead(input, stats, &tx, &back_rx, &stop, |_, _| {});
        drop(tx);
        if let Err(panic) = worker.join() {
            std::panic::resume_unwind(panic);
        }
        res
    })
}

/// [`replay_threaded`] and then [`Engine::finish`], with the engine itself split over threads
/// ([`netrec_rules::split`]): this thread reads and decodes, one runs the flow table, the
/// detectors run in `detector_threads` groups, and a merger hands their alerts to `sink` in the
/// sequential engine's order, with its ids. The sink gets the flow records in the sequential
/// order and the alerts in the sequential order; only how the two interleave differs. On a
/// flood the flow table and the detectors each take a core's worth of work: on one engine
/// thread they ran one after the other.
pub fn replay_split<S: EngineSink + Send>(
    input: &mut Input,
    rules: &netrec_rules::ruleset::RuleSet,
    limits: &netrec_rules::Limits,
    detector_threads: usize,
    sink: &mut S,
    stats: &mut ReplayStats,
) -> Result<(), InputError> {
    use netrec_format::FlowRecord;
    use netrec_rules::split::{self, Front, Step, Tagged};
    use std::sync::Arc;
    use std::sync::mpsc::{channel, sync_channel};
    let stop = std::sync::atomic::AtomicBool::new(false);
    let groups = split::split(rules, limits, detector_threads);
    std::thread::scope(|scope| {
        let spawn = |name: &str| std::thread::Builder::new().name(name.into());
        let (pkt_tx, pkt_rx) = sync_channel::<PacketBatch>(8);
        let (back_tx, back_rx) = channel::<PacketBatch>();
        let (flow_tx, flow_rx) = sync_channel::<Vec<FlowRecord>>(4);
        let (group_txs, group_rxs): (Vec<_>, Vec<_>) =
            groups.iter().map(|_| sync_channel::<Arc<(PacketBatch, Vec<Step>)>>(4)).unzip();
        let (part_txs, part_rxs): (Vec<_>, Vec<_>) =
            groups.iter().map(|_| sync_channel::<Vec<Tagged>>(4)).unzip();
        // The flow table: steps for the detectors, and each batch's flow records for the merger.
        let front = spawn("nr-flows")
            .spawn_scoped(scope, move || {
                let mut front = Front::new(limits);
                for batch in pkt_rx.iter() {
                    let mut flows = Vec::new();
                    let steps: Vec<Step> = batch
                        .packets()
                        .map(|(pkt, dec)| front.process(&pkt, dec, &mut |f| flows.push(f)))
                        .collect();
                    if flow_tx.send(flows).is_err() {
                        break;
                    }
                    let shared = Arc::new((batch, steps));
                    if group_txs.iter().any(|tx| tx.send(Arc::clone(&shared)).is_err()) {
                        break;
                    }
                }
                front
            })
            .unwrap_or_else(|e| panic!("cannot start thread nr-flows: {e}"));
        let mut detectors = Vec::new();
        for ((mut group, rx), tx) in groups.into_iter().zip(group_rxs).zip(part_txs) {
            let back_tx = back_tx.clone();
            let h = spawn("nr-detect")
                .spawn_scoped(scope, move || run_detector_group(&mut group, &rx, &tx, &back_tx))
                .unwrap_or_else(|e| panic!("cannot start thread nr-detect: {e}"));
            detectors.push(h);
        }
        drop(back_tx);
        // The merger: per batch its flow records, then the groups' alerts; at the end the
        // alerts of the detectors' `finish` (the groups' last message).
        let merger = spawn("nr-merge")
            .spawn_scoped(scope, move || {
                let mut merger = split::Merger::default();
                let parts = || part_rxs.iter().map(|rx| rx.recv().ok()).collect::<Option<Vec<_>>>();
                for flows in flow_rx.iter() {
                    flows.into_iter().for_each(|f| sink.flow(f));
                    let Some(p) = parts() else { return sink };
                    merger.merge(p, &mut *sink);
                }
                if let Some(p) = parts() {
                    merger.merge(p, &mut *sink);
                }
                sink
            })
            .unwrap_or_else(|e| panic!("cannot start thread nr-merge: {e}"));
        let res = read_ahead(input, stats, &pkt_tx, &back_rx, &stop, |_, _| {});
        drop(pkt_tx);
        let mut front: Front = join_scoped(front);
        detectors.into_iter().for_each(|h| {
            join_scoped(h);
        });
        let sink = join_scoped(merger);
        // As `Engine::finish`: the detectors' last alerts (merged above), then the flows left.
        front.finish(&mut |f| sink.flow(f));
        res
    })
}

/// The body of a detector-group thread of a split engine: the group steps through every batch
/// the flow table stepped, and sends its tagged alerts once per batch and once more after its
/// `finish`, so a merger can take all groups in lockstep. The last group done with a batch hands
/// its buffers back to the reader. False when a receiver is gone (the replay is being abandoned).
pub fn run_detector_group(
    group: &mut netrec_rules::split::Group,
    rx: &std::sync::mpsc::Receiver<std::sync::Arc<(PacketBatch, Vec<netrec_rules::split::Step>)>>,
    tx: &std::sync::mpsc::SyncSender<Vec<netrec_rules::split::Tagged>>,
    back_tx: &std::sync::mpsc::Sender<PacketBatch>,
) -> bool {
    for shared in rx.iter() {
        for ((pkt, dec), step) in shared.0.packets().zip(&shared.1) {
            group.step(&pkt, dec, step);
        }
        if let Ok((batch, _)) = std::sync::Arc::try_unwrap(shared) {
            let _ = back_tx.send(batch);
        }
        if tx.send(group.take()).is_err() {
            return false;
        }
    }
    group.finish();
    tx.send(group.take()).is_ok()
}

/// Average captured bytes per packet under which [`split_pays`] splits the engine.
const SPLIT_BELOW_BYTES_PER_PACKET: usize = 256;
/// Packets [`split_pays`] looks at.
const PROBE_PACKETS: usize = 4096;

/// Whether [`replay_split`] is faster than [`replay_threaded`] for `group` on `cores` cores. With
/// four or more, reading, the flow table and the detectors each get a core: always. With fewer,
/// the reader shares a core with the engine's parts, so splitting pays only when the engine is
/// most of the work: when packets carry few captured bytes (reading costs per byte, the engine
/// per packet). Measured on 2 cores: a 1M-packet SYN flood (54 B per packet) `alerts` in 1.41 s
/// instead of 2.19; a 1M-packet mix (727 B) in 0.66 s instead of 0.59. Looks at the first
/// packets of a second opening of regular files only (a pipe cannot be read twice). The output
/// is the same either way: this only picks the faster shape.
pub fn split_pays(group: &InputGroup, cores: usize) -> bool {
    if cores >= 4 {
        return true;
    }
    if cores < 2 || !group.files.iter().all(|f| is_regular(f)) {
        return false;
    }
    let Ok(mut input) = Input::open_group(group) else { return false };
    let (mut packets, mut bytes) = (0usize, 0usize);
    while packets < PROBE_PACKETS {
        match input.next_packet() {
            Ok(Some(p)) => {
                packets += 1;
                bytes += p.data.len();
            }
            _ => break,
        }
    }
    packets > 0 && bytes / packets < SPLIT_BELOW_BYTES_PER_PACKET
}

/// Join a scoped thread, re-raising its panic here.
pub fn join_scoped<T>(h: std::thread::ScopedJoinHandle<'_, T>) -> T {
    match h.join() {
        Ok(v) => v,
        Err(panic) => std::panic::resume_unwind(panic),
    }
}

/// [`replay`] that stops after the packet for which `on_packet` returns `Break` (that packet is
/// still processed by the engine). `analyze` uses it to stop replaying an input found, by its
/// hash computed concurrently, to be in the database already.
pub fn replay_until<S: EngineSink>(
    input: &mut Input,
    engine: &mut Engine,
    sink: &mut S,
    stats: &mut ReplayStats,
    mut on_packet: impl FnMut(&mut S, &PacketRef<'_>, &Decoded) -> ControlFlow<()>,
) -> Result<(), InputError> {
    drive(input, stats, |pkt, dec| {
        let flow = on_packet(sink, pkt, dec);
        engine.process(pkt, dec, sink);
        flow
    })
}

/// Read, decode and account every packet of `input`, handing each to `each` until it returns
/// `Break`; then collect the reader's warnings and judge unsupported link types. The one loop
/// behind [`replay_until`] and [`read_ahead`], so both account packets identically.
fn drive(
    input: &mut Input,
    stats: &mut ReplayStats,
    mut each: impl FnMut(&PacketRef<'_>, &Decoded) -> ControlFlow<()>,
) -> Result<(), InputError> {
    let (packets0, unsupported0) = (stats.packets, stats.unsupported_link);
    let mut unsupported_lt = None;
    let result = loop {
        match input.next_packet() {
            Ok(Some(pkt)) => {
                let dec = decode(pkt.link_type, pkt.data, pkt.wire_len);
                stats.account(&pkt, &dec);
                if unsupported_lt.is_none() && stats.unsupported_link > unsupported0 {
                    unsupported_lt = Some(pkt.link_type.0);
                }
                if each(&pkt, &dec).is_break() {
                    break Ok(());
                }
            }
            Ok(None) => break Ok(()),
            Err(e) => break Err(e),
        }
    };
    input.collect_warnings(stats);
    let (packets, unsupported) = (stats.packets - packets0, stats.unsupported_link - unsupported0);
    match (result, unsupported_lt) {
        // Say which file and link type, not just a count in the summary.
        (Ok(()), Some(link_type)) if unsupported == packets => {
            Err(InputError::UnsupportedLinkType { path: input.path.clone(), link_type, packets })
        }
        (result, Some(link_type)) => {
            stats.warning_count += 1;
            stats.warnings.push(format!(
                "{}: {unsupported} packets of unsupported link type {link_type} skipped",
                input.path.display()
            ));
            result
        }
        (result, None) => result,
    }
}

/// Packets read ahead of the engine: their bytes in one buffer, metadata and decoded headers
/// beside them. Buffers are recycled, so a steady replay allocates nothing per packet.
#[derive(Debug, Default)]
pub struct PacketBatch {
    data: Vec<u8>,
    items: Vec<(BatchMeta, Decoded)>,
}

#[derive(Clone, Copy, Debug)]
struct BatchMeta {
    ts: Ts,
    iface: u32,
    direction: netrec_format::Direction,
    link_type: netrec_format::LinkType,
    wire_len: u32,
    start: usize,
    end: usize,
}

/// Packets per batch: large enough to amortize the channel, small enough to stay in cache.
pub const BATCH_PACKETS: usize = 1024;

impl PacketBatch {
    fn clear(&mut self) {
        self.data.clear();
        self.items.clear();
    }
    fn push(&mut self, pkt: &PacketRef<'_>, dec: &Decoded) {
        let start = self.data.len();
        self.data.extend_from_slice(pkt.data);
        let meta = BatchMeta {
            ts: pkt.ts,
            iface: pkt.iface,
            direction: pkt.direction,
            link_type: pkt.link_type,
            wire_len: pkt.wire_len,
            start,
            end: self.data.len(),
        };
        self.items.push((meta, *dec));
    }
    pub fn len(&self) -> usize {
        self.items.len()
    }
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }
    /// The packets in read order, exactly as the reader produced them.
    pub fn packets(&self) -> impl Iterator<Item = (PacketRef<'_>, &Decoded)> {
        self.items.iter().map(|(m, dec)| {
            let pkt = PacketRef {
                ts: m.ts,
                iface: m.iface,
                direction: m.direction,
                link_type: m.link_type,
                wire_len: m.wire_len,
                data: self.data.get(m.start..m.end).unwrap_or(&[]),
            };
            (pkt, dec)
        })
    }
}

/// The reading half of a two-thread replay: read, decode and account every packet of `input`
/// (like [`replay_until`] without the engine), reporting each to `on_packet`, and send them in
/// batches to `tx` for an engine on another thread. Spent batches come back on `recycle`. Stops
/// early, after a whole batch, when `stop` is set or the receiver is gone.
pub fn read_ahead(
    input: &mut Input,
    stats: &mut ReplayStats,
    tx: &std::sync::mpsc::SyncSender<PacketBatch>,
    recycle: &std::sync::mpsc::Receiver<PacketBatch>,
    stop: &std::sync::atomic::AtomicBool,
    mut on_packet: impl FnMut(&PacketRef<'_>, &Decoded),
) -> Result<(), InputError> {
    use std::sync::atomic::Ordering;
    let fresh = |recycle: &std::sync::mpsc::Receiver<PacketBatch>| {
        let mut b = recycle.try_recv().unwrap_or_default();
        b.clear();
        b
    };
    let mut batch = fresh(recycle);
    let res = drive(input, stats, |pkt, dec| {
        on_packet(pkt, dec);
        batch.push(pkt, dec);
        if batch.len() < BATCH_PACKETS {
            return ControlFlow::Continue(());
        }
        let full = std::mem::replace(&mut batch, fresh(recycle));
        if tx.send(full).is_err() || stop.load(Ordering::Relaxed) {
            return ControlFlow::Break(());
        }
        ControlFlow::Continue(())
    });
    if !batch.is_empty() {
        let _ = tx.send(batch);
    }
    res
}

/// Expand command-line inputs: files stay as given; a directory contributes its segment files
/// (sorted by sequence) or, without segments, its capture files (sorted by name). A path with
/// `*` or `?` in its last component that does not exist is expanded as a glob.
pub fn expand_inputs(args: &[PathBuf]) -> Result<Vec<PathBuf>, InputError> {
    let mut out = Vec::new();
    for arg in args {
        if arg.as_os_str() == STDIN_ARG {
            // Named as the system names it, so errors say where the bytes came from.
            out.push(PathBuf::from("/dev/stdin"));
        } else if arg.is_dir() {
            let before = out.len();
            let rd = std::fs::read_dir(arg).map_err(|source| InputError::Io { path: arg.clone(), source })?;
            let mut names: Vec<PathBuf> =
                rd.filter_map(|e| e.ok()).map(|e| e.path()).filter(|p| p.is_file()).collect();
            names.sort();
            let segs: Vec<PathBuf> =
                names.iter().filter(|p| p.extension().is_some_and(|e| e == "nrseg")).cloned().collect();
            if segs.is_empty() {
                out.extend(
                    names
                        .into_iter()
                        .filter(|p| !p.file_name().is_some_and(|n| n.to_string_lossy().starts_with('.'))),
                );
            } else {
                out.extend(segs);
            }
            if out.len() == before {
                return Err(InputError::EmptyDirectory { path: arg.clone() });
            }
        } else if !arg.exists() && arg.file_name().is_some_and(|n| n.to_string_lossy().contains(['*', '?'])) {
            let dir = arg.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
            let pattern = arg.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            let rd = std::fs::read_dir(dir)
                .map_err(|source| InputError::Io { path: dir.to_path_buf(), source })?;
            let mut hits: Vec<PathBuf> = rd
                .filter_map(|e| e.ok())
                .filter(|e| glob_match(&pattern, &e.file_name().to_string_lossy()))
                .map(|e| e.path())
                .collect();
            hits.sort();
            if hits.is_empty() {
                return Err(InputError::Io {
                    path: arg.clone(),
                    source: std::io::Error::new(std::io::ErrorKind::NotFound, "no file matches this pattern"),
                });
            }
            out.extend(hits);
        } else {
            out.push(arg.clone());
        }
    }
    Ok(out)
}

/// Inputs replayed as one stream: a capture file, or consecutive segment files of one directory
/// (a recording and its rotations; a recorder restart in the same directory continues it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InputGroup {
    /// The file, or for a chain of several segment files their directory.
    pub path: PathBuf,
    pub files: Vec<PathBuf>,
}

impl InputGroup {
    pub fn is_chain(&self) -> bool {
        self.files.len() > 1
    }
}

/// Group expanded inputs (see [`expand_inputs`]): consecutive segment files (by content, or by the
/// `.nrseg` name of a file whose header is damaged) with the same parent directory form one
/// group; every other file is a group of its own.
pub fn group_inputs(paths: &[PathBuf]) -> Vec<InputGroup> {
    let mut out: Vec<InputGroup> = Vec::new();
    let mut chain_dir: Option<PathBuf> = None;
    for p in paths {
        let dir = is_segment_file(p).then(|| p.parent().map(PathBuf::from).unwrap_or_default());
        match (&dir, &chain_dir, out.last_mut()) {
            (Some(d), Some(c), Some(last)) if d == c => {
                last.files.push(p.clone());
                last.path = if d.as_os_str().is_empty() { PathBuf::from(".") } else { d.clone() };
            }
            _ => out.push(InputGroup { path: p.clone(), files: vec![p.clone()] }),
        }
        chain_dir = dir;
    }
    out
}

/// `-` among the inputs: standard input (tcpdump's `-r -`).
pub const STDIN_ARG: &str = "-";

/// A regular file (following links): one that can be read twice, and from its start.
pub fn is_regular(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.is_file())
}

/// For commands that read each input twice (`analyze` hashes it, then replays it; `import`
/// reads a capture's interfaces, then its packets): an input that exists must be a regular
/// file, or the second read would find a pipe already drained. (A missing one fails when it is
/// opened, with the system's error.)
pub fn require_regular(paths: &[PathBuf], why: &'static str) -> Result<(), InputError> {
    match paths.iter().find(|p| p.exists() && !is_regular(p)) {
        Some(p) => Err(InputError::NotRegular { path: p.clone(), why }),
        None => Ok(()),
    }
}

fn is_segment_file(path: &Path) -> bool {
    use std::io::Read as _;
    if path.extension().is_some_and(|e| e == "nrseg") {
        return true;
    }
    // Only regular files are sniffed: the head of a pipe, once read here, would be missing
    // when the input is opened to be replayed.
    if !is_regular(path) {
        return false;
    }
    let mut head = [0u8; 8];
    std::fs::File::open(path).and_then(|mut f| f.read_exact(&mut head)).is_ok()
        && head[..] == netrec_format::segment::MAGIC[..]
}

/// `*` and `?` wildcard match (no character classes).
pub fn glob_match(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    let (mut pi, mut ni, mut star, mut mark) = (0usize, 0usize, None, 0usize);
    while ni < n.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == n[ni]) {
            pi += 1;
            ni += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ni;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ni = mark;
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == '*' {
        pi += 1;
    }
    pi == p.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob() {
        assert!(glob_match("*.pcap", "a.pcap"));
        assert!(glob_match("a?c*", "abcdef"));
        assert!(!glob_match("*.pcap", "a.pcapng"));
        assert!(glob_match("*", ""));
        assert!(!glob_match("?", ""));
    }

    /// The two-thread replay gives the one-thread replay's alerts, updates, flows and counts,
    /// on captures of attacks and of ordinary traffic.
    #[test]
    fn threaded_replay_equals_replay() {
        use netrec_rules::{Limits, VecSink, ruleset::RuleSet};
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/pcap");
        let paths = expand_inputs(&[dir]).unwrap();
        assert!(paths.len() > 10, "{} fixtures", paths.len());
        let (mut alerts, mut flows) = (0, 0);
        for p in &paths {
            let run = |threaded: bool| {
                let mut input = Input::open(p).unwrap();
                let mut engine = Engine::new(RuleSet::default_pack(), Limits::default());
                let (mut sink, mut stats) = (VecSink::default(), ReplayStats::default());
                let res = if threaded {
                    replay_threaded(&mut input, &mut engine, &mut sink, &mut stats)
                } else {
                    replay(&mut input, &mut engine, &mut sink, &mut stats, |_, _, _| {})
                };
                engine.finish(&mut sink);
                (res.map_err(|e| e.to_string()), sink.alerts, sink.updates, sink.flows, stats)
            };
            let (one, two) = (run(false), run(true));
            alerts += one.1.len();
            flows += one.3.len();
            assert_eq!(one, two, "{}", p.display());
        }
        assert!(alerts > 0 && flows > 0, "{alerts} alerts, {flows} flows: nothing compared");
    }

    /// The split engine gives the sequential engine's flows and alerts (ids, updates, order), with
    /// one detector group and with the detectors spread over several, on every fixture and on
    /// shared captures with floods and scans.
    #[test]
    fn split_replay_equals_the_sequential_engine() {
        use netrec_rules::{Limits, VecSink, ruleset::RuleSet};
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let mut paths = expand_inputs(&[root.join("fixtures/pcap")]).unwrap();
        let shared = root.join("../shared/captures");
        for name in ["ddos-syn-flood-ecn-cwr.pcapng", "masscan-tcp-ports-0-1000.pcap", "icmp-ping-sweep.pcap"]
        {
            paths.push(shared.join(name));
        }
        let (mut alerts, mut updates, mut flows) = (0, 0, 0);
        for p in &paths {
            let rules = RuleSet::default_pack();
            let mut input = Input::open(p).unwrap();
            let mut engine = Engine::new(rules.clone(), Limits::default());
            let (mut sink, mut stats) = (VecSink::default(), ReplayStats::default());
            let res = replay(&mut input, &mut engine, &mut sink, &mut stats, |_, _, _| {});
            engine.finish(&mut sink);
            let want = (res.map_err(|e| e.to_string()), sink.alerts, sink.updates, sink.flows, stats);
            alerts += want.1.len();
            updates += want.2;
            flows += want.3.len();
            for groups in [1, 3] {
                let mut input = Input::open(p).unwrap();
                let (mut sink, mut stats) = (VecSink::default(), ReplayStats::default());
                let res = replay_split(&mut input, &rules, &Limits::default(), groups, &mut sink, &mut stats);
                let got = (res.map_err(|e| e.to_string()), sink.alerts, sink.updates, sink.flows, stats);
                assert_eq!(got, want, "{} with {groups} detector groups", p.display());
            }
        }
        assert!(
            alerts > 20 && updates > 0 && flows > 1000,
            "{alerts} alerts, {updates} updates, {flows} flows"
        );
    }

    #[test]
    fn the_engine_is_split_for_small_packets_or_many_cores() {
        let dir = tempfile::tempdir().unwrap();
        let pcap = |name: &str, size: usize| {
            let mut b = vec![0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0];
            b.extend([0u8; 8]);
            b.extend(65535u32.to_le_bytes());
            b.extend(1u32.to_le_bytes());
            for i in 0..5000u32 {
                b.extend([i.to_le_bytes(), 0u32.to_le_bytes()].concat());
                b.extend([(size as u32).to_le_bytes(); 2].concat());
                b.extend(vec![0u8; size]);
            }
            let path = dir.path().join(name);
            std::fs::write(&path, b).unwrap();
            InputGroup { path: path.clone(), files: vec![path] }
        };
        let (small, large) = (pcap("small.pcap", 60), pcap("large.pcap", 700));
        assert!(split_pays(&small, 2));
        assert!(!split_pays(&large, 2));
        assert!(split_pays(&large, 4));
        assert!(!split_pays(&small, 1));
        // Packets of exactly the limit are not split; one byte less is.
        assert!(!split_pays(&pcap("at.pcap", SPLIT_BELOW_BYTES_PER_PACKET), 2));
        assert!(split_pays(&pcap("below.pcap", SPLIT_BELOW_BYTES_PER_PACKET - 1), 2));
        // Not a regular file (a pipe could not be read again), or no packets: not split.
        let device = InputGroup { path: "/dev/null".into(), files: vec!["/dev/null".into()] };
        assert!(!split_pays(&device, 2));
        let empty = dir.path().join("empty.pcap");
        std::fs::write(
            &empty,
            [0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 255, 255, 0, 0, 1, 0, 0, 0],
        )
        .unwrap();
        assert!(!split_pays(&InputGroup { path: empty.clone(), files: vec![empty] }, 2));
    }

    #[test]
    fn a_directory_without_captures_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let err = expand_inputs(&[dir.path().to_path_buf()]).unwrap_err();
        assert!(matches!(&err, InputError::EmptyDirectory { path } if path == dir.path()), "{err}");
        std::fs::write(dir.path().join("a.pcap"), b"").unwrap();
        assert_eq!(expand_inputs(&[dir.path().to_path_buf()]).unwrap(), vec![dir.path().join("a.pcap")]);
    }
}
