//! `netrec import`: the offline writer. Captures go through the recorder's own loop
//! (`netrec_recorder::run::run`), so segments are written exactly as `record` writes them:
//! headers cut to the snaplen, metadata with the interfaces, the engine's alerts, the rule-set
//! digest. The clock is packet time: the same captures give byte-identical segments.

use super::record::parse_size;
use super::{RuleArgs, load_rules};
use anyhow::Context as _;
use netrec_analyzer::source::{CaptureSource, SourceError};
use netrec_format::segment::WriterConfig;
use netrec_format::store::RotationPolicy;
use netrec_format::{FlowRecord, InterfaceInfo, LossRecord, PacketRecord, SegmentMeta, Ts};
use netrec_recorder::run::{AlertOutput, PacketSource, RecordConfig, run as record_run};
use std::cell::RefCell;
use std::collections::VecDeque;
use std::path::PathBuf;
use std::process::ExitCode;
use std::rc::Rc;
use std::time::Duration;

#[derive(clap::Args, Debug)]
pub struct ImportArgs {
    /// pcap or pcapng files (optionally compressed), read in the order given.
    #[arg(required = true, value_name = "CAPTURE")]
    pub captures: Vec<PathBuf>,
    /// Segment directory (created if needed; leftover .partial files are recovered first).
    #[arg(short = 'o', long, value_name = "DIR", required = true)]
    pub out: PathBuf,
    /// Bytes of each packet to keep (as the kernel recorder's snaplen).
    #[arg(long, default_value_t = 128, value_parser = clap::value_parser!(u32).range(1..=65535))]
    pub snaplen: u32,
    /// Start a new segment at this size (e.g. 64K, 256M).
    #[arg(long, value_name = "SIZE", value_parser = parse_size, default_value = "256M")]
    pub rotate_size: u64,
    #[command(flatten)]
    pub rules: RuleArgs,
    /// Alerts as JSON lines to FILE, or `-` for stdout (default: DIR/alerts.jsonl).
    #[arg(long, value_name = "FILE")]
    pub alerts: Option<String>,
}

/// Packets per drain: rotation and block age are checked between drains.
const CHUNK: usize = 1024;

/// Streams the captures one packet at a time (one reused buffer, never the whole file), cut
/// to the snaplen. One packet is read ahead so `clock` can give its time.
struct CaptureStream {
    files: VecDeque<PathBuf>,
    cur: Option<CaptureSource>,
    snaplen: usize,
    /// The packet read ahead, valid when `ahead`.
    rec: PacketRecord,
    ahead: bool,
    last: Option<Ts>,
    /// A fatal read error ends the input; reported after the segments are closed.
    error: Rc<RefCell<Option<SourceError>>>,
}

impl CaptureStream {
    fn new(files: Vec<PathBuf>, snaplen: u32) -> Result<CaptureStream, SourceError> {
        let mut s = CaptureStream {
            files: files.into(),
            cur: None,
            snaplen: snaplen as usize,
            rec: PacketRecord {
                ts: Ts(0),
                iface: 0,
                direction: netrec_format::Direction::Unknown,
                link_type: netrec_format::LinkType::ETHERNET,
                wire_len: 0,
                data: Vec::new(),
            },
            ahead: false,
            last: None,
            error: Rc::default(),
        };
        s.advance()?;
        Ok(s)
    }

    /// Reads the next packet into `rec`; opens the next file at the end of one.
    fn advance(&mut self) -> Result<(), SourceError> {
        self.ahead = false;
        loop {
            if self.cur.is_none() {
                let Some(path) = self.files.pop_front() else { return Ok(()) };
                self.cur = Some(CaptureSource::open(&path)?);
            }
            let src = self.cur.as_mut().expect("opened above");
            if let Some(p) = src.next_packet()? {
                let r = &mut self.rec;
                (r.ts, r.iface, r.direction, r.link_type, r.wire_len) =
                    (p.ts, p.iface, p.direction, p.link_type, p.wire_len);
                r.data.clear();
                r.data.extend_from_slice(&p.data[..p.data.len().min(self.snaplen)]);
                self.ahead = true;
                return Ok(());
            }
            self.finish_file();
        }
    }

    fn finish_file(&mut self) {
        if let Some(src) = self.cur.take() {
            for w in src.warnings() {
                eprintln!("netrec: {}: {w}", src.path().display());
            }
        }
    }

    /// Interfaces of every capture: pcap has one, pcapng those its IDBs declare (read up to
    /// the first packet). Captures are opened again for streaming afterwards.
    fn interfaces(files: &[PathBuf]) -> Result<Vec<InterfaceInfo>, SourceError> {
        let mut out: Vec<InterfaceInfo> = Vec::new();
        for f in files {
            let mut src = CaptureSource::open(f)?;
            let _ = src.next_packet()?;
            for i in src.interfaces() {
                if !out.iter().any(|o| o.index == i.index) {
                    out.push(i.clone());
                }
            }
        }
        Ok(out)
    }
}

impl PacketSource for CaptureStream {
    async fn wait(&mut self, _timeout: Duration) -> std::io::Result<()> {
        Ok(())
    }
    fn drain(&mut self, f: &mut dyn FnMut(&PacketRecord)) -> usize {
        let mut n = 0;
        while n < CHUNK && self.ahead {
            f(&self.rec);
            self.last = Some(self.rec.ts);
            n += 1;
            if let Err(e) = self.advance() {
                *self.error.borrow_mut() = Some(e);
                self.ahead = false;
            }
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
        !self.ahead
    }
    fn clock(&self) -> Option<Ts> {
        if self.ahead { Some(self.rec.ts) } else { self.last }
    }
}

pub fn run(args: ImportArgs) -> anyhow::Result<ExitCode> {
    let rules = load_rules(&args.rules)?;
    netrec_analyzer::pipeline::require_regular(
        &args.captures,
        "import reads a capture twice (its interfaces, then its packets)",
    )?;
    let interfaces = CaptureStream::interfaces(&args.captures)?;
    let source = CaptureStream::new(args.captures.clone(), args.snaplen)?;
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create output directory {}", args.out.display()))?;
    let alerts = match args.alerts.as_deref() {
        Some("-") => AlertOutput::Jsonl(Box::new(std::io::stdout())),
        other => {
            let p = other.map_or_else(|| args.out.join("alerts.jsonl"), PathBuf::from);
            AlertOutput::Jsonl(Box::new(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&p)
                    .with_context(|| format!("cannot open alert file {}", p.display()))?,
            ))
        }
    };
    let meta = SegmentMeta {
        // No host name: the output depends on the captures only.
        host: String::new(),
        interfaces,
        snaplen: args.snaplen,
        clock_base_ns: 0,
        netrec_version: env!("CARGO_PKG_VERSION").to_string(),
        ruleset_digest: rules.digest(),
        ..SegmentMeta::default()
    };
    // Blocks small enough that a segment of `rotate_size` has several (a crash loses one).
    let block = usize::try_from(args.rotate_size / 8).unwrap_or(usize::MAX).clamp(4 << 10, 1 << 20);
    let config = RecordConfig {
        dir: args.out.clone(),
        rotation: RotationPolicy { max_bytes: args.rotate_size, max_age_ns: 0, align_ns: None },
        retention: None,
        writer: WriterConfig { max_block_bytes: block, ..WriterConfig::default() },
        rules,
        meta,
        alerts,
        duration: None,
        // Poll on every drain: rotation points depend on the input only.
        poll: Duration::ZERO,
        file_mode: 0o640,
        dir_mode: 0o750,
        status: None,
        sinks: None,
        metrics: None,
    };
    let rt = tokio::runtime::Builder::new_current_thread().build().context("tokio runtime")?;
    let read_error = source.error.clone();
    let summary = rt.block_on(record_run(config, source, std::future::pending()))?;
    eprintln!(
        "netrec: imported {} packets: {} alerts into {} segment(s) in {}",
        summary.packets,
        summary.alerts,
        summary.segments.len(),
        args.out.display()
    );
    let mut code = ExitCode::SUCCESS;
    if summary.writer_drops > 0 || summary.records_not_written > 0 {
        eprintln!(
            "netrec: {} packet record(s) and {} other record(s) were not written to {} (see the messages above)",
            summary.writer_drops,
            summary.records_not_written,
            args.out.display()
        );
        code = ExitCode::from(2);
    }
    if let Some(e) = read_error.borrow_mut().take() {
        eprintln!("netrec: {e}; the segments hold the packets read before it");
        code = ExitCode::from(2);
    }
    Ok(code)
}
