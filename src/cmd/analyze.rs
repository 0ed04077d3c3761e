//! `netrec analyze`: replay inputs into SQLite and print a summary.

use super::{RuleArgs, load_rules};
use anyhow::Context as _;
use netrec_analyzer::db::{Db, InputInfo, InputStats, InputWriter, PacketSeries};
use netrec_analyzer::pipeline::{self, Input, ReplayStats};
use netrec_analyzer::report::{Report, ReportKind};
use netrec_format::decode::Decoded;
use netrec_format::{Alert, FlowRecord, PROTO_ARP};
use netrec_rules::Limits;
use netrec_rules::{Engine, EngineSink};
use sha2::Digest as _;
use std::io::{IsTerminal as _, Read as _};
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum SummaryFormat {
    Table,
    Md,
    Html,
    Json,
}

#[derive(clap::Args, Debug)]
pub struct AnalyzeArgs {
    /// pcap, pcapng (optionally .gz/.zst) or segment files, directories, or globs.
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
}

/// Engine output before the input's identity (its SHA-256) is known.
enum Held {
    Flow(FlowRecord),
    Alert(Alert),
}

type HashResult = std::io::Result<(String, u64)>;

/// Streams engine output into the database writer. The input's SHA-256 is computed on another
/// thread while the replay runs (the hash is its identity in the database, and hashing first
/// would read the whole file twice in a row); until it is known, output is held in memory
/// (little: the hash runs at GB/s, far ahead of the replay). The first error is kept.
struct DbSink<'db, 'scope> {
    db: Option<&'db mut Db>,
    writer: Option<InputWriter<'db>>,
    hasher: Option<std::thread::ScopedJoinHandle<'scope, HashResult>>,
    path: &'db Path,
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
        let (sha256, size) = match h.join() {
            Ok(Ok(v)) => v,
            Ok(Err(e)) => {
                self.error =
                    Some(anyhow::Error::new(e).context(format!("{}: cannot read", self.path.display())));
                return;
            }
            Err(panic) => std::panic::resume_unwind(panic),
        };
        let Some(db) = self.db.take() else { return };
        let info = InputInfo {
            path: self.path.to_path_buf(),
            sha256,
            format: std::mem::take(&mut self.format),
            size_bytes: size,
        };
        match db.begin_input(info) {
            Ok(Some(w)) => {
                self.writer = Some(w);
                for h in std::mem::take(&mut self.held) {
                    match h {
                        Held::Flow(f) => self.write_flow(&f),
                        Held::Alert(a) => self.write_alert(&a),
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

fn sha256_file(path: &Path) -> std::io::Result<(String, u64)> {
    let mut f = std::fs::File::open(path)?;
    let mut h = sha2::Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
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
    let mut db = Db::open(&args.db).with_context(|| format!("cannot open database {}", args.db.display()))?;
    let show_progress = !args.quiet && std::io::stderr().is_terminal();
    let mut failed = 0usize;
    let mut analyzed = 0usize;
    let mut skipped = 0usize;
    let mut alerts = 0u64;
    let mut fresh = Vec::new();
    for path in &paths {
        match analyze_one(&mut db, path, &rules, show_progress) {
            Ok(Some(n)) => {
                fresh.push(path.clone());
                analyzed += 1;
                alerts += n;
            }
            Ok(None) => {
                skipped += 1;
                if !args.quiet {
                    eprintln!(
                        "netrec: {}: already in {} (same sha256), skipped",
                        path.display(),
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
    path: &Path,
    rules: &netrec_rules::ruleset::RuleSet,
    progress: bool,
) -> anyhow::Result<Option<u64>> {
    let mut input = Input::open(path)?;
    let size = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    let bar = progress.then(|| {
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
    });
    let mut engine = Engine::new(rules.clone(), Limits::default());
    let mut stats = ReplayStats::default();
    let format = input.format_name();
    std::thread::scope(|scope| {
        let mut sink = DbSink {
            db: Some(db),
            writer: None,
            hasher: Some(scope.spawn(|| sha256_file(path))),
            path,
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
        for w in stats.warnings.iter().take(20) {
            eprintln!("netrec: warning: {w}");
        }
        let Some(mut writer) = sink.writer else {
            anyhow::bail!("{}: internal error: no database writer after hashing", path.display())
        };
        writer.add_series(series);
        if input.format_name() == "segment" {
            netrec_analyzer::parity::add_segment_evidence(path, &mut writer)?;
        }
        writer.finish(InputStats {
            packets: stats.packets,
            bytes: stats.bytes,
            first_ts: stats.first_ts,
            last_ts: stats.last_ts,
            decode_anomalies: stats.decode_anomalies,
            warnings: stats.warning_count,
        })?;
        Ok(Some(sink.alerts))
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
