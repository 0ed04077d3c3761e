//! `netrec analyze`: replay inputs into SQLite and print a summary.

use super::{RuleArgs, load_rules};
use anyhow::Context as _;
use netrec_analyzer::db::{Db, InputFile, InputInfo, InputStats, InputWriter, PacketSeries, chain_sha256};
use netrec_analyzer::pipeline::PacketBatch;
use netrec_analyzer::pipeline::{self, Input, InputGroup, ReplayStats};
use netrec_analyzer::report::{Report, ReportKind};
use netrec_format::decode::Decoded;
use netrec_format::{Alert, FlowRecord, PROTO_ARP};
use netrec_rules::Limits;
use netrec_rules::{Engine, EngineSink, split};
use sha2::Digest as _;
use std::io::{IsTerminal as _, Read as _};
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{SyncSender, channel, sync_channel};

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum SummaryFormat {
    Table,
    Md,
    Html,
    Json,
}

#[derive(clap::Args, Debug)]
pub struct AnalyzeArgs {
    /// pcap, pcapng (optionally .gz/.zst) or segment files, directories, or globs (regular files:
    /// each is read twice, to hash it and to replay it).
    #[arg(required = true, value_name = "INPUT")]
    pub inputs: Vec<PathBuf>,
    /// SQLite database to create or add to.
    #[arg(long, value_name = "PATH", default_value = "./netrec.sqlite")]
    pub db: PathBuf,
    #[command(flatten)]
    pub rules: RuleArgs,
    /// Print this report (all kinds) after the run instead of the short summary.
    #[arg(long, value_enum, value_name = "FORMAT")]
    pub report: Option<SummaryFormat>,
    /// No summary, no progress bar.
    #[arg(long, short)]
    pub quiet: bool,
    /// Exit with code 1 when the analyzed inputs raised at least one alert.
    #[arg(long)]
    pub fail_on_alert: bool,
    /// After the run, send the alerts of the inputs analyzed now through the configured sinks.
    #[arg(long)]
    pub deliver: bool,
    #[command(flatten)]
    pub delivery: super::config::DeliveryArgs,
    /// Replay recorded segments with their recorded rule set (or --rules) and compare with the
    /// alerts recorded live; print the differences, exit 1 on any. Writes no database.
    #[arg(long)]
    pub check_parity: bool,
    /// Threads per input: 1 replays on this thread; N >= 2 runs reading + decoding, the flow
    /// table, N-1 threads of detectors (the rules split between them) and the SQLite writer as
    /// a pipeline (same database, row for row). Default: the available cores.
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,
}

/// Engine output before the input's identity (its SHA-256) is known, or on its way to the
/// writer thread.
enum Held {
    Flow(FlowRecord),
    Alert(Alert),
    /// Final version of an alert already passed on (see `EngineSink::alert_update`).
    Update(Alert),
}

type HashResult = anyhow::Result<Vec<InputFile>>;

/// Streams engine output into the database writer. The input's SHA-256 is computed on another
/// thread while the replay runs (the hash is its identity in the database, and hashing first
/// would read the whole file twice in a row); until it is known, output is held in memory
/// (little: the hash runs at GB/s, far ahead of the replay). The first error is kept.
struct DbSink<'db, 'scope> {
    db: Option<&'db mut Db>,
    writer: Option<InputWriter<'db>>,
    hasher: Option<std::thread::ScopedJoinHandle<'scope, HashResult>>,
    group: &'db InputGroup,
    format: String,
    held: Vec<Held>,
    /// The database has this input already (same SHA-256).
    present: bool,
    error: Option<anyhow::Error>,
    alerts: u64,
}

impl DbSink<'_, '_> {
    /// Once the hash is known (`wait`: block until it is), begin the input and write what was held.
    fn resolve(&mut self, wait: bool) {
        if !wait && !self.hasher.as_ref().is_some_and(|h| h.is_finished()) {
            return;
        }
        let Some(h) = self.hasher.take() else { return };
        let files = match h.join() {
            Ok(Ok(v)) => v,
            Ok(Err(e)) => {
                self.error = Some(e);
                return;
            }
            Err(panic) => std::panic::resume_unwind(panic),
        };
        let Some(db) = self.db.take() else { return };
        let info = match files.as_slice() {
            [one] => InputInfo {
                path: one.path.clone(),
                sha256: one.sha256.clone(),
                format: std::mem::take(&mut self.format),
                size_bytes: one.size_bytes,
                files: Vec::new(),
            },
            chain => InputInfo {
                path: self.group.path.clone(),
                sha256: chain_sha256(chain),
                format: std::mem::take(&mut self.format),
                size_bytes: chain.iter().map(|f| f.size_bytes).sum(),
                files,
            },
        };
        match db.begin_input(info) {
            Ok(Some(w)) => {
                self.writer = Some(w);
                for h in std::mem::take(&mut self.held) {
                    match h {
                        Held::Flow(f) => self.write_flow(&f),
                        Held::Alert(a) | Held::Update(a) => self.write_alert(&a),
                    }
                }
            }
            Ok(None) => self.present = true,
            Err(e) => self.error = Some(e.into()),
        }
    }

    /// Nothing more to do for this input: it is present already, or writing failed.
    fn stopped(&self) -> bool {
        self.present || self.error.is_some()
    }

    fn write_flow(&mut self, f: &FlowRecord) {
        if let (None, Some(w)) = (&self.error, &mut self.writer) {
            self.error = w.add_flow(f).err().map(Into::into);
        }
    }

    fn write_alert(&mut self, a: &Alert) {
        if let (None, Some(w)) = (&self.error, &mut self.writer) {
            self.error = w.add_alert(a).err().map(Into::into);
        }
    }

    fn alert_or_hold(&mut self, alert: Alert) {
        if self.writer.is_some() {
            self.write_alert(&alert);
        } else if !self.stopped() {
            self.held.push(Held::Alert(alert));
        }
    }
}

impl EngineSink for DbSink<'_, '_> {
    fn alert(&mut self, alert: Alert) {
        self.alerts += 1;
        self.alert_or_hold(alert);
    }
    fn alert_update(&mut self, alert: Alert) {
        self.alert_or_hold(alert);
    }
    fn flow(&mut self, flow: FlowRecord) {
        if self.writer.is_some() {
            self.write_flow(&flow);
        } else if !self.stopped() {
            self.held.push(Held::Flow(flow));
        }
    }
}

/// SHA-256 and size of each file, in order.
fn sha256_files(files: &[PathBuf]) -> HashResult {
    files
        .iter()
        .map(|path| {
            let (sha256, size_bytes) =
                sha256_file(path).with_context(|| format!("{}: cannot read", path.display()))?;
            Ok(InputFile { path: path.clone(), sha256, size_bytes })
        })
        .collect()
}

fn sha256_file(path: &Path) -> std::io::Result<(String, u64)> {
    let mut f = std::fs::File::open(path)?;
    let mut h = sha2::Sha256::new();
    // Cache-sized reads: the copy out of the page cache is the larger part of hashing cost
    // otherwise (see `source::buf::BUF_SIZE`).
    let mut buf = vec![0u8; 128 << 10];
    let mut n = 0u64;
    loop {
        let k = f.read(&mut buf)?;
        if k == 0 {
            break;
        }
        n += k as u64;
        h.update(&buf[..k]);
    }
    Ok((hex::encode(h.finalize()), n))
}

/// The protocol a packet is counted under in the time series.
fn series_proto(dec: &Decoded) -> u16 {
    match (&dec.net, &dec.arp) {
        (Some(n), _) => n.proto as u16,
        (None, Some(_)) => PROTO_ARP,
        _ => 0,
    }
}

pub fn run(args: AnalyzeArgs) -> anyhow::Result<ExitCode> {
    if args.check_parity {
        return check_parity(&args);
    }
    let rules = load_rules(&args.rules)?;
    // A delivery configuration mistake is reported before the analysis, not after it.
    let delivery = super::config::analyze_delivery(args.deliver, &args.delivery)?;
    let paths = pipeline::expand_inputs(&args.inputs)?;
    // A segment chain (a recording's rotated files) is one input: one stream, one `inputs` row.
    let groups = pipeline::group_inputs(&paths);
    let mut db = Db::open(&args.db).with_context(|| format!("cannot open database {}", args.db.display()))?;
    let show_progress = !args.quiet && std::io::stderr().is_terminal();
    let threads = args
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1))
        .max(1);
    let mut failed = 0usize;
    let mut analyzed = 0usize;
    let mut skipped = 0usize;
    let mut alerts = 0u64;
    let mut fresh = Vec::new();
    for group in &groups {
        if let Err(e) = pipeline::require_regular(
            &group.files,
            "analyze reads an input twice (its SHA-256, then its packets)",
        ) {
            eprintln!("netrec: {e}");
            failed += 1;
            continue;
        }
        let res = if threads > 1 {
            analyze_one_threaded(&mut db, group, &rules, show_progress, threads - 1)
        } else {
            analyze_one(&mut db, group, &rules, show_progress)
        };
        match res {
            Ok(Some(n)) => {
                fresh.extend(group.files.iter().cloned());
                analyzed += 1;
                alerts += n;
            }
            Ok(None) => {
                skipped += 1;
                if !args.quiet {
                    eprintln!(
                        "netrec: {}: already in {} (same sha256), skipped",
                        group.path.display(),
                        args.db.display()
                    );
                }
            }
            Err(e) => {
                eprintln!("netrec: {e:#}");
                failed += 1;
            }
        }
    }
    if !args.quiet {
        let report = Report::load(&db, ReportKind::All).context("cannot read back the database")?;
        let text = match args.report {
            None | Some(SummaryFormat::Table) => report.to_table(),
            Some(SummaryFormat::Md) => report.to_markdown(),
            Some(SummaryFormat::Html) => report.to_html(),
            Some(SummaryFormat::Json) => report.to_json(),
        };
        super::write_stdout(text.as_bytes())?;
        eprintln!(
            "netrec: {analyzed} inputs analyzed, {skipped} already present, {failed} failed; {alerts} alerts; database {}",
            args.db.display()
        );
    }
    if let Some(d) = &delivery
        && super::config::deliver_inputs(&fresh, &rules, d)?
    {
        failed += 1;
    }
    if failed > 0 {
        return Ok(ExitCode::from(2));
    }
    if args.fail_on_alert && alerts > 0 {
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}

/// Analyze one input into the database; `Ok(None)` when it was already there.
fn analyze_one(
    db: &mut Db,
    group: &InputGroup,
    rules: &netrec_rules::ruleset::RuleSet,
    progress: bool,
) -> anyhow::Result<Option<u64>> {
    let mut input = Input::open_group(group)?;
    let size: u64 = group.files.iter().map(|f| std::fs::metadata(f).map(|m| m.len()).unwrap_or(0)).sum();
    let bar = progress_bar(progress, &group.path, size);
    let mut engine = Engine::new(rules.clone(), Limits::default());
    let mut stats = ReplayStats::default();
    let format = input.format_name();
    // Segment inputs also store their loss records and each alert's evidence completeness.
    let is_segment = format == "segment";
    std::thread::scope(|scope| {
        let mut sink = DbSink {
            db: Some(db),
            writer: None,
            hasher: Some(scope.spawn(|| sha256_files(&group.files))),
            group,
            format,
            held: Vec::new(),
            present: false,
            error: None,
            alerts: 0,
        };
        // Time series are aggregated in memory: no SQL per packet.
        let mut series = PacketSeries::default();
        let mut since = 0u32;
        // Progress in file bytes, approximated by record sizes (the reader is borrowed by replay).
        let mut approx = 0u64;
        let bar_ref = bar.as_ref();
        let res = pipeline::replay_until(&mut input, &mut engine, &mut sink, &mut stats, |sink, pkt, dec| {
            series.add(pkt.ts.nanos(), series_proto(dec), pkt.wire_len);
            approx += pkt.data.len() as u64 + 16;
            since += 1;
            if since == 8192 {
                since = 0;
                if let Some(b) = bar_ref {
                    b.set_position(approx.min(size));
                }
                sink.resolve(false);
                if sink.stopped() {
                    return ControlFlow::Break(());
                }
            }
            ControlFlow::Continue(())
        });
        if let Some(b) = bar {
            b.finish_and_clear();
        }
        sink.resolve(true);
        if sink.present {
            return Ok(None);
        }
        if sink.error.is_none() {
            engine.finish(&mut sink);
        }
        if let Some(e) = sink.error {
            return Err(e);
        }
        res?;
        finish_input(sink, group, is_segment, series, &stats)
    })
}

/// Warnings, then the time series and totals: the input is complete.
fn finish_input(
    sink: DbSink<'_, '_>,
    group: &InputGroup,
    is_segment: bool,
    series: PacketSeries,
    stats: &ReplayStats,
) -> anyhow::Result<Option<u64>> {
    for w in stats.warnings.iter().take(20) {
        eprintln!("netrec: warning: {w}");
    }
    let Some(mut writer) = sink.writer else {
        anyhow::bail!("{}: internal error: no database writer after hashing", group.path.display())
    };
    writer.add_series(series);
    if is_segment {
        netrec_analyzer::parity::add_segment_evidence(&group.files, &mut writer)?;
    }
    let totals = writer.finish(InputStats {
        packets: stats.packets,
        bytes: stats.bytes,
        first_ts: stats.first_ts,
        last_ts: stats.last_ts,
        decode_anomalies: stats.decode_anomalies,
        warnings: stats.warning_count,
    })?;
    if !totals.replaced.is_empty() {
        let ids: Vec<String> = totals.replaced.iter().map(i64::to_string).collect();
        eprintln!(
            "netrec: {}: replaces input {} (the same recording before it grew: all of its files are in this one)",
            group.path.display(),
            ids.join(", ")
        );
    }
    Ok(Some(sink.alerts))
}

/// Engine output batched for the writer thread.
struct ChanSink {
    buf: Vec<Held>,
    tx: SyncSender<WriterMsg>,
    /// The writer is gone (it stopped early): drop output.
    closed: bool,
}

/// Records per message to the writer thread.
const OUT_BATCH: usize = 512;

enum WriterMsg {
    Out(Vec<Held>),
    /// Everything was sent: store the series and totals and mark the input complete.
    Done(PacketSeries, Box<ReplayStats>),
}

impl ChanSink {
    fn push(&mut self, h: Held) {
        self.buf.push(h);
        if self.buf.len() >= OUT_BATCH {
            self.flush();
        }
    }
    fn flush(&mut self) {
        if self.buf.is_empty() || self.closed {
            self.buf.clear();
            return;
        }
        let batch = std::mem::replace(&mut self.buf, Vec::with_capacity(OUT_BATCH));
        self.closed = self.tx.send(WriterMsg::Out(batch)).is_err();
    }
}

impl EngineSink for ChanSink {
    fn alert(&mut self, alert: Alert) {
        self.push(Held::Alert(alert));
    }
    fn alert_update(&mut self, alert: Alert) {
        self.push(Held::Update(alert));
    }
    fn flow(&mut self, flow: FlowRecord) {
        self.push(Held::Flow(flow));
    }
}

/// [`analyze_one`] as a three-stage pipeline over bounded channels: this thread reads, decodes
/// and accounts packets; an engine thread runs the flow table and detectors; a writer thread
/// owns the database. Each stage sees the same sequence as the single-threaded path, so the
/// database is identical row for row (`tests/analyze_parallel.rs`).
fn analyze_one_threaded(
    db: &mut Db,
    group: &InputGroup,
    rules: &netrec_rules::ruleset::RuleSet,
    progress: bool,
    detector_threads: usize,
) -> anyhow::Result<Option<u64>> {
    let mut input = Input::open_group(group)?;
    let size: u64 = group.files.iter().map(|f| std::fs::metadata(f).map(|m| m.len()).unwrap_or(0)).sum();
    let bar = progress_bar(progress, &group.path, size);
    let format = input.format_name();
    // Segment inputs also store their loss records and each alert's evidence completeness.
    let is_segment = format == "segment";
    let stop = AtomicBool::new(false);
    std::thread::scope(|scope| {
        let stop = &stop;
        let hasher = spawn_named(scope, "nr-hash", || sha256_files(&group.files));
        let (out_tx, out_rx) = sync_channel::<WriterMsg>(16);
        let writer = spawn_named(scope, "nr-writer", move || {
            let mut sink = DbSink {
                db: Some(db),
                writer: None,
                hasher: Some(hasher),
                group,
                format,
                held: Vec::new(),
                present: false,
                error: None,
                alerts: 0,
            };
            let mut done = None;
            for msg in out_rx.iter() {
                match msg {
                    WriterMsg::Out(batch) => {
                        sink.resolve(false);
                        for h in batch {
                            match h {
                                Held::Flow(f) => sink.flow(f),
                                Held::Alert(a) => sink.alert(a),
                                Held::Update(a) => sink.alert_update(a),
                            }
                        }
                        if sink.stopped() {
                            stop.store(true, Ordering::Relaxed);
                            break;
                        }
                    }
                    WriterMsg::Done(series, stats) => done = Some((series, stats)),
                }
            }
            drop(out_rx);
            sink.resolve(true);
            if sink.present {
                return Ok(None);
            }
            if let Some(e) = sink.error {
                return Err(e);
            }
            match done {
                Some((series, stats)) => finish_input(sink, group, is_segment, series, &stats),
                // The reader or engine failed: their error is reported, nothing is committed.
                None => Ok(None),
            }
        });
        let (pkt_tx, pkt_rx) = sync_channel::<PacketBatch>(8);
        let (back_tx, back_rx) = channel::<PacketBatch>();
        let limits = Limits::default();
        let groups = split::split(rules, &limits, detector_threads);
        // Front: time, ticks and the flow table; each batch then goes, with its steps, to
        // every detector group.
        let mut group_txs = Vec::new();
        let mut group_rxs = Vec::new();
        for _ in 0..groups.len() {
            let (tx, rx) = sync_channel::<Arc<(PacketBatch, Vec<split::Step>)>>(4);
            group_txs.push(tx);
            group_rxs.push(rx);
        }
        let front_out = out_tx.clone();
        let front = spawn_named(scope, "nr-flows", move || {
            let mut front = split::Front::new(&limits);
            let mut sink = ChanSink { buf: Vec::with_capacity(OUT_BATCH), tx: front_out, closed: false };
            for batch in pkt_rx.iter() {
                let steps: Vec<split::Step> = batch
                    .packets()
                    .map(|(pkt, dec)| front.process(&pkt, dec, &mut |f| sink.flow(f)))
                    .collect();
                let shared = Arc::new((batch, steps));
                let gone = group_txs.iter().any(|tx| tx.send(Arc::clone(&shared)).is_err());
                if gone || sink.closed {
                    return (front, sink, false);
                }
            }
            (front, sink, true)
        });
        // Detector groups: alerts tagged with their position, one message per batch and a last
        // one at the end, so the merger can take them in lockstep.
        let (merge_txs, merge_rxs): (Vec<_>, Vec<_>) =
            (0..groups.len()).map(|_| sync_channel::<Vec<split::Tagged>>(4)).unzip();
        let mut group_handles = Vec::new();
        for ((mut group, rx), tx) in groups.into_iter().zip(group_rxs).zip(merge_txs) {
            let back_tx = back_tx.clone();
            group_handles.push(spawn_named(scope, "nr-detect", move || {
                pipeline::run_detector_group(&mut group, &rx, &tx, &back_tx)
            }));
        }
        drop(back_tx);
        let merge_out = out_tx.clone();
        let merger = spawn_named(scope, "nr-merge", move || {
            let mut merger = split::Merger::default();
            let mut sink = ChanSink { buf: Vec::with_capacity(OUT_BATCH), tx: merge_out, closed: false };
            loop {
                let parts: Option<Vec<Vec<split::Tagged>>> =
                    merge_rxs.iter().map(|rx| rx.recv().ok()).collect();
                let Some(parts) = parts else { break };
                merger.merge(parts, &mut sink);
                if sink.closed {
                    break;
                }
            }
            sink
        });
        let mut stats = ReplayStats::default();
        let mut series = PacketSeries::default();
        let (mut since, mut approx) = (0u32, 0u64);
        let bar_ref = bar.as_ref();
        let res = pipeline::read_ahead(&mut input, &mut stats, &pkt_tx, &back_rx, stop, |pkt, dec| {
            series.add(pkt.ts.nanos(), series_proto(dec), pkt.wire_len);
            approx += pkt.data.len() as u64 + 16;
            since += 1;
            if since == 8192 {
                since = 0;
                if let Some(b) = bar_ref {
                    b.set_position(approx.min(size));
                }
            }
        });
        drop(pkt_tx);
        if let Some(b) = bar {
            b.finish_and_clear();
        }
        let (mut front, mut sink, front_ok) = pipeline::join_scoped(front);
        let groups_ok = group_handles.into_iter().map(pipeline::join_scoped).fold(true, |a, b| a & b);
        let mut merged = pipeline::join_scoped(merger);
        if front_ok && groups_ok && !stop.load(Ordering::Relaxed) && !sink.closed && !merged.closed {
            merged.flush();
            front.finish(&mut |f| sink.flow(f));
            sink.flush();
            if res.is_ok() && !sink.closed && !merged.closed {
                let _ = out_tx.send(WriterMsg::Done(series, Box::new(stats)));
            }
        }
        drop(merged);
        drop(sink);
        drop(out_tx);
        let written = match writer.join() {
            Ok(v) => v,
            Err(panic) => std::panic::resume_unwind(panic),
        };
        let written = written?;
        res?;
        Ok(written)
    })
}

/// A scoped thread with a name (shown by top -H, perf and /proc: which stage is the bottleneck).
fn spawn_named<'scope, 'env, T: Send + 'scope>(
    scope: &'scope std::thread::Scope<'scope, 'env>,
    name: &str,
    f: impl FnOnce() -> T + Send + 'scope,
) -> std::thread::ScopedJoinHandle<'scope, T> {
    std::thread::Builder::new()
        .name(name.to_string())
        .spawn_scoped(scope, f)
        .unwrap_or_else(|e| panic!("cannot start thread {name}: {e}"))
}

fn progress_bar(progress: bool, path: &Path, size: u64) -> Option<indicatif::ProgressBar> {
    progress.then(|| {
        let b = indicatif::ProgressBar::new(size);
        b.set_style(
            indicatif::ProgressStyle::with_template(
                "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} ETA {eta}",
            )
            .expect("static template")
            .progress_chars("=> "),
        );
        b.set_message(path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default());
        b
    })
}

/// `--check-parity`: the logic is `netrec_analyzer::parity`.
fn check_parity(args: &AnalyzeArgs) -> anyhow::Result<ExitCode> {
    let rules = (!args.rules.rules.is_empty() || args.rules.no_default_rules)
        .then(|| load_rules(&args.rules))
        .transpose()?;
    let paths = pipeline::expand_inputs(&args.inputs)?;
    let report = netrec_analyzer::parity::check_parity(&paths, rules.as_ref())?;
    super::write_stdout(report.render().as_bytes())?;
    Ok(if report.is_equal() { ExitCode::SUCCESS } else { ExitCode::from(1) })
}
