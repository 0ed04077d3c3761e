//! `netrec record`: the live eBPF recorder.

use super::{RuleArgs, load_rules};
use anyhow::Context as _;
use netrec_format::segment::WriterConfig;
use netrec_format::store::{RetentionPolicy, RotationPolicy};
use netrec_format::{InterfaceInfo, LinkType, SegmentMeta};
use netrec_recorder::ebpf::{Hook, KernelProbe, ObjectSource, ProbeConfig};
use netrec_recorder::live::EbpfSource;
use netrec_recorder::run::{AlertOutput, RecordConfig, run as record_run};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum HookArg {
    /// tcx links (kernel >= 6.6), falling back to a clsact qdisc.
    Tcx,
    /// clsact qdisc + netlink filters.
    Tc,
}

#[derive(clap::Args, Debug)]
pub struct RecordArgs {
    /// Interface to record (repeatable).
    #[arg(short = 'i', long = "interface", required = true, value_name = "IFACE")]
    pub interfaces: Vec<String>,
    /// Segment directory.
    #[arg(short = 'o', long, value_name = "DIR", default_value = "./netrec-segments")]
    pub out: PathBuf,
    /// Bytes of each packet to record (0: flow counters only).
    #[arg(long, default_value_t = 128)]
    pub snaplen: u32,
    /// Start a new segment at this size (e.g. 64M, 1G).
    #[arg(long, value_name = "SIZE", value_parser = parse_size, default_value = "256M")]
    pub rotate_size: u64,
    /// Start a new segment after this long (e.g. 10m, 1h); aligned to the clock.
    #[arg(long, value_name = "DUR", value_parser = parse_duration)]
    pub rotate_time: Option<Duration>,
    /// Delete the oldest closed segments beyond this total size.
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    pub retain_size: Option<u64>,
    /// Delete closed segments older than this.
    #[arg(long, value_name = "DUR", value_parser = parse_duration)]
    pub retain_time: Option<Duration>,
    #[command(flatten)]
    pub rules: RuleArgs,
    /// Alerts as JSON lines to FILE, or `-` for stdout (default: DIR/alerts.jsonl).
    #[arg(long, value_name = "FILE")]
    pub alerts: Option<String>,
    /// Stop after this long (e.g. 30s).
    #[arg(long, value_name = "DUR", value_parser = parse_duration)]
    pub duration: Option<Duration>,
    #[arg(long, value_enum, default_value_t = HookArg::Tcx)]
    pub hook: HookArg,
    /// Load the kernel programs from this object instead of the embedded one.
    #[arg(long, value_name = "FILE")]
    pub bpf_object: Option<PathBuf>,
    /// Ring buffer size.
    #[arg(long, value_name = "SIZE", value_parser = parse_size, default_value = "8M")]
    pub ring_size: u64,
    #[command(flatten)]
    pub delivery: super::config::DeliveryArgs,
    /// Serve Prometheus metrics on http://ADDR/metrics (e.g. 127.0.0.1:9477).
    #[arg(long, value_name = "ADDR")]
    pub metrics: Option<SocketAddr>,
}

/// `512`, `64K`, `16M`, `2G` (powers of 1024).
pub fn parse_size(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let (num, mul) = match s.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => {
            let mul = match c.to_ascii_uppercase() {
                'K' => 1u64 << 10,
                'M' => 1 << 20,
                'G' => 1 << 30,
                'T' => 1 << 40,
                _ => return Err(format!("unknown size unit in {s:?} (use K, M, G or T)")),
            };
            (&s[..i], mul)
        }
        _ => (s, 1),
    };
    let n: u64 = num.parse().map_err(|_| format!("bad size {s:?}"))?;
    n.checked_mul(mul).ok_or_else(|| format!("size {s:?} too large"))
}

pub fn parse_duration(s: &str) -> Result<Duration, String> {
    netrec_rules::ruleset::parse_duration(s)
        .map(Duration::from_nanos)
        .ok_or_else(|| format!("bad duration {s:?} (e.g. 500ms, 30s, 10m, 1h)"))
}

pub fn run(args: RecordArgs) -> anyhow::Result<ExitCode> {
    let rules = load_rules(&args.rules)?;
    // Configuration mistakes surface before anything is loaded into the kernel.
    let mut delivery = super::config::delivery_config(&args.delivery)?;
    if args.metrics.is_some() {
        delivery.metrics = args.metrics;
    }
    let object = match &args.bpf_object {
        Some(p) => ObjectSource::File(p.clone()),
        None => ObjectSource::default_available().ok_or(netrec_recorder::ebpf::ProbeError::NoObject)?,
    };
    let probe_cfg = ProbeConfig {
        interfaces: args.interfaces.clone(),
        snaplen: args.snaplen,
        record_headers: args.snaplen > 0,
        ring_bytes: u32::try_from(args.ring_size).context("--ring-size too large")?,
        flow_entries: 65_536,
        hook: match args.hook {
            HookArg::Tcx => Hook::Tcx,
            HookArg::Tc => Hook::Tc,
        },
        object,
    };
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create output directory {}", args.out.display()))?;
    let alerts = match args.alerts.as_deref() {
        Some("-") => AlertOutput::Jsonl(Box::new(std::io::stdout())),
        Some(p) => AlertOutput::Jsonl(Box::new(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)
                .with_context(|| format!("cannot open alert file {p}"))?,
        )),
        None => {
            let p = args.out.join("alerts.jsonl");
            AlertOutput::Jsonl(Box::new(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&p)
                    .with_context(|| format!("cannot open alert file {}", p.display()))?,
            ))
        }
    };
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().context("tokio runtime")?;
    rt.block_on(async move {
        let probe = KernelProbe::load(&probe_cfg)?;
        let interfaces = probe
            .interfaces()
            .iter()
            .map(|(name, index)| InterfaceInfo { index: *index, name: name.clone(), link_type: LinkType::ETHERNET })
            .collect();
        let meta = SegmentMeta {
            host: hostname(),
            interfaces,
            snaplen: args.snaplen,
            clock_base_ns: 0,
            netrec_version: env!("CARGO_PKG_VERSION").to_string(),
            ruleset_digest: rules.digest(),
        };
        let source = EbpfSource::new(probe, Duration::from_secs(60)).context("ring buffer")?;
        let sinks = super::config::start_sinks(&delivery)?;
        let metrics = delivery.metrics.map(|_| {
            let names: Vec<(u32, String)> = meta.interfaces.iter().map(|i| (i.index, i.name.clone())).collect();
            Arc::new(netrec_recorder::metrics::Metrics::new(&names))
        });
        let _metrics_server = match (delivery.metrics, &metrics) {
            (Some(addr), Some(m)) => {
                if let Some(s) = &sinks {
                    m.register_sinks(s.stats());
                }
                let srv = netrec_recorder::metrics::MetricsServer::start(addr, m.clone())
                    .with_context(|| format!("cannot serve metrics on {addr}"))?;
                eprintln!("netrec: metrics on http://{}/metrics", srv.local_addr());
                Some(srv)
            }
            _ => None,
        };
        let config = RecordConfig {
            dir: args.out.clone(),
            rotation: RotationPolicy {
                max_bytes: args.rotate_size,
                max_age_ns: 0,
                align_ns: args.rotate_time.map(|d| d.as_nanos() as u64),
            },
            retention: (args.retain_size.is_some() || args.retain_time.is_some()).then_some(RetentionPolicy {
                max_total_bytes: args.retain_size,
                max_age_ns: args.retain_time.map(|d| d.as_nanos() as u64),
            }),
            writer: WriterConfig::default(),
            rules,
            meta,
            alerts,
            sinks: sinks.clone(),
            metrics,
            duration: args.duration,
            poll: Duration::from_millis(100),
            file_mode: 0o640,
            dir_mode: 0o750,
        };
        let shutdown = async {
            let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending().await } } => {}
            }
        };
        let summary = record_run(config, source, shutdown).await;
        // Deliver what is queued (bounded) even when recording failed.
        if let Some(s) = sinks {
            super::config::print_reports(&netrec_recorder::sinks::SinkSet::finish_shared(
                s,
                delivery.shutdown_timeout,
            ));
        }
        let summary = summary?;
        eprintln!(
            "netrec: recorded {} packets ({} counted by the kernel, {} ring drops), {} flows, {} alerts into {} segment(s) in {}",
            summary.packets,
            summary.kernel_packets,
            summary.ring_drops,
            summary.flows,
            summary.alerts,
            summary.segments.len(),
            args.out.display()
        );
        anyhow::Ok(ExitCode::SUCCESS)
    })
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname").map(|s| s.trim().to_string()).unwrap_or_default()
}
