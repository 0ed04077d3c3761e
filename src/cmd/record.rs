//! `netrec record`: the live eBPF recorder.

use super::{RuleArgs, load_rules};
use anyhow::Context as _;
use netrec_format::segment::WriterConfig;
use netrec_format::store::{RetentionPolicy, RotationPolicy};
use netrec_format::{InterfaceInfo, LinkType, SegmentMeta};
use netrec_recorder::ebpf::{Hook, KernelProbe, ObjectSource, ProbeConfig, XdpMode};
use netrec_recorder::live::EbpfSource;
use netrec_recorder::run::{AlertOutput, RecordConfig, RecordSummary, StatusHook, run as record_run};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum StatusArg {
    Auto,
    Always,
    Never,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum HookArg {
    /// tcx links (kernel >= 6.6), falling back to a clsact qdisc.
    Tcx,
    /// clsact qdisc + netlink filters.
    Tc,
    /// XDP, ingress only (no egress packets are seen); see --xdp-mode.
    Xdp,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum XdpModeArg {
    /// Native driver mode when the driver has it, else generic.
    Auto,
    /// Native driver mode only.
    Native,
    /// Generic (skb) mode: every interface, slower.
    Skb,
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
    /// Where the kernel program runs.
    #[arg(long, value_enum, default_value_t = HookArg::Tcx)]
    pub hook: HookArg,
    /// XDP attach mode (with --hook xdp).
    #[arg(long, value_enum, default_value_t = XdpModeArg::Auto)]
    pub xdp_mode: XdpModeArg,
    /// Drop to this user (and its groups, and no capabilities) once the programs are attached and
    /// the maps opened, like `tcpdump -Z`. The output directory is handed to the user first.
    #[arg(long, value_name = "USER")]
    pub user: Option<String>,
    /// Permission bits (octal) of segment and alert files.
    #[arg(long, value_name = "MODE", value_parser = parse_mode, default_value = "0640")]
    pub file_mode: u32,
    /// Permission bits (octal) of the output directory.
    #[arg(long, value_name = "MODE", value_parser = parse_mode, default_value = "0750")]
    pub dir_mode: u32,
    /// Live status line on stderr: auto (when stderr is a terminal), always, never.
    #[arg(long, value_enum, default_value_t = StatusArg::Auto)]
    pub status: StatusArg,
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

/// Octal permission bits, e.g. `0640`; no setuid/setgid/sticky and never world-writable.
pub fn parse_mode(s: &str) -> Result<u32, String> {
    let m = u32::from_str_radix(s.trim_start_matches("0o"), 8)
        .map_err(|_| format!("bad mode {s:?} (octal, e.g. 0640)"))?;
    if m > 0o777 {
        return Err(format!("mode {s:?}: only permission bits (at most 0777)"));
    }
    if m & 0o002 != 0 {
        return Err(format!("mode {s:?} is world-writable: evidence must not be"));
    }
    Ok(m)
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
            HookArg::Xdp => Hook::Xdp(match args.xdp_mode {
                XdpModeArg::Auto => XdpMode::Auto,
                XdpModeArg::Native => XdpMode::Native,
                XdpModeArg::Skb => XdpMode::Skb,
            }),
        },
        object,
        netlink_fallback: args.user.is_none(),
    };
    if args.user.is_some() && args.hook == HookArg::Tc {
        anyhow::bail!(
            "--user needs --hook tcx or xdp: a tc netlink filter cannot be removed after privileges are dropped"
        );
    }
    let account = args.user.as_deref().map(netrec_recorder::privs::lookup).transpose()?;
    // Every check that can fail without the kernel comes before anything is attached.
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create output directory {}", args.out.display()))?;
    check_writable(&args.out)?;
    // Secrets and CA files are read here, before anything is attached to the kernel.
    let sinks = super::config::start_sinks(&delivery)?;
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().context("tokio runtime")?;
    rt.block_on(async move {
        let probe = KernelProbe::load(&probe_cfg)?;
        // Opened after attaching so a failed attach leaves no file; before the drop so a root-only
        // alert path still works.
        let alerts = open_alerts(&args)?;
        if let Some(acct) = &account {
            // Attached, maps open: from here on no privilege is needed (see recorder::privs).
            netrec_recorder::privs::hand_over(&args.out, acct)?;
            netrec_recorder::privs::drop_to(acct)?;
        }
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
            ..SegmentMeta::default()
        };
        let source = EbpfSource::new(probe, Duration::from_secs(60)).context("ring buffer")?;
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
            file_mode: args.file_mode,
            dir_mode: args.dir_mode,
            status: status_hook(args.status),
        };
        let shutdown = async {
            let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending().await } } => {}
            }
        };
        let show_status = config.status.is_some();
        let summary = record_run(config, source, shutdown).await;
        if show_status {
            eprintln!();
        }
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

/// The alert JSON lines output: `--alerts FILE`, `-` for stdout, or DIR/alerts.jsonl (0640).
fn open_alerts(args: &RecordArgs) -> anyhow::Result<AlertOutput> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let path = match args.alerts.as_deref() {
        Some("-") => return Ok(AlertOutput::Jsonl(Box::new(std::io::stdout()))),
        Some(p) => PathBuf::from(p),
        None => args.out.join("alerts.jsonl"),
    };
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(args.file_mode)
        .open(&path)
        .with_context(|| format!("cannot open alert file {}", path.display()))?;
    Ok(AlertOutput::Jsonl(Box::new(file)))
}

/// Fail before attaching anything when segments could not be written (read-only mount, no
/// permission): a probe file is created and removed.
fn check_writable(dir: &std::path::Path) -> anyhow::Result<()> {
    let probe = dir.join(format!(".netrec-write-test-{}", std::process::id()));
    std::fs::File::create(&probe)
        .with_context(|| format!("output directory {} is not writable (hint: -o DIR)", dir.display()))?;
    let _ = std::fs::remove_file(&probe);
    Ok(())
}

/// One status line on stderr, rewritten in place at most once a second.
fn status_hook(mode: StatusArg) -> Option<StatusHook> {
    use std::io::IsTerminal as _;
    let on = match mode {
        StatusArg::Always => true,
        StatusArg::Never => false,
        StatusArg::Auto => std::io::stderr().is_terminal(),
    };
    if !on {
        return None;
    }
    let mut last: Option<(std::time::Instant, u64)> = None;
    Some(StatusHook(Box::new(move |s: &RecordSummary| {
        let now = std::time::Instant::now();
        let rate = match last {
            Some((t, _)) if now.duration_since(t) < Duration::from_secs(1) => return,
            Some((t, p)) => (s.packets.saturating_sub(p)) as f64 / now.duration_since(t).as_secs_f64(),
            None => 0.0,
        };
        last = Some((now, s.packets));
        eprint!("\r\x1b[K{}", status_line(s, rate));
    })))
}

fn status_line(s: &RecordSummary, pps: f64) -> String {
    format!(
        "netrec: {pps:.0} pkt/s | {} packets | {} flows | {} alerts | {} ring drops | {} written",
        s.packets,
        s.flows,
        s.alerts,
        s.ring_drops,
        human_bytes(s.bytes_written)
    )
}

fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 { format!("{n} B") } else { format!("{v:.1} {}", UNITS[u]) }
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname").map(|s| s.trim().to_string()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_line_shows_every_figure() {
        let s = RecordSummary {
            packets: 1234,
            flows: 7,
            alerts: 2,
            ring_drops: 3,
            bytes_written: 3 * 1024 * 1024 / 2,
            ..RecordSummary::default()
        };
        assert_eq!(
            status_line(&s, 99.6),
            "netrec: 100 pkt/s | 1234 packets | 7 flows | 2 alerts | 3 ring drops | 1.5 MiB written"
        );
        assert_eq!(human_bytes(512), "512 B");
    }

    #[test]
    fn sizes_and_durations_parse_or_say_why() {
        assert_eq!(parse_size("64K"), Ok(64 << 10));
        assert!(parse_size("3X").unwrap_err().contains("unit"));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert!(parse_duration("soon").is_err());
        assert_eq!(parse_mode("0640"), Ok(0o640));
        assert!(parse_mode("0666").unwrap_err().contains("world-writable"));
        assert!(parse_mode("4755").is_err());
        assert!(parse_mode("rw").is_err());
    }
}
