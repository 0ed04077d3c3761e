//! `netrec export`: recorded segments -> pcapng (the work is in `netrec_analyzer::export`).

use anyhow::Context as _;
use netrec_analyzer::export::{Export, ExportOptions, FlowFilter, parse_time};
use netrec_format::Ts;
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct ExportArgs {
    /// Output pcapng file (`-` writes to stdout).
    #[arg(long = "pcap", value_name = "OUT.pcapng")]
    pub pcap: PathBuf,
    /// Segment files or segment directories. The files of one directory form a chain read in
    /// sequence order; several chains are merged by packet time.
    #[arg(required = true, value_name = "SEGMENTS_OR_DIRS")]
    pub inputs: Vec<PathBuf>,
    /// First packet time to export (inclusive): RFC 3339 (2026-11-29T14:00:00Z) or unix
    /// seconds (1795960800.5).
    #[arg(long, value_name = "T", value_parser = parse_time)]
    pub from: Option<Ts>,
    /// Last packet time to export (inclusive), same forms as --from.
    #[arg(long, value_name = "T", value_parser = parse_time)]
    pub to: Option<Ts>,
    /// Only packets of this conversation, both directions:
    /// 'src=IP dst=IP port=N proto=tcp|udp|icmp' (every key optional).
    #[arg(long, value_name = "FILTER", value_parser = clap::value_parser!(FlowFilter))]
    pub flow: Option<FlowFilter>,
    /// Only the evidence of this recorded alert: its [first, last] window, packets between
    /// its sources and targets. ID as in `netrec segments cat --json`.
    #[arg(long, value_name = "ID")]
    pub alert: Option<u64>,
    /// No summary line.
    #[arg(long, short)]
    pub quiet: bool,
}

pub fn run(args: ExportArgs) -> anyhow::Result<ExitCode> {
    let opts = ExportOptions { from: args.from, to: args.to, flow: args.flow, alert: args.alert };
    // Options and inputs are checked before the output is created.
    let export = Export::prepare(&args.inputs, &opts)?;
    let mut report = |w: &netrec_analyzer::export::ExportWarning| eprintln!("netrec: warning: {w}");
    let to_stdout = args.pcap.as_os_str() == "-";
    let summary = if to_stdout {
        let out = BufWriter::with_capacity(1 << 20, std::io::stdout().lock());
        export.write(out, &mut report)?
    } else {
        let file = std::fs::File::create(&args.pcap)
            .with_context(|| format!("cannot create {}", args.pcap.display()))?;
        let mut out = BufWriter::with_capacity(1 << 20, file);
        let summary = export.write(&mut out, &mut report)?;
        out.flush().with_context(|| format!("cannot write {}", args.pcap.display()))?;
        summary
    };
    if !args.quiet {
        let dest = if to_stdout { "stdout".to_string() } else { args.pcap.display().to_string() };
        eprintln!(
            "netrec: exported {} of {} packets read ({} with alert comments) on {} interface(s) to {dest}{}",
            summary.packets_written,
            summary.packets_read,
            summary.packets_commented,
            summary.interfaces,
            if summary.damaged > 0 {
                format!("; {} damaged part(s) skipped", summary.damaged)
            } else {
                String::new()
            }
        );
    }
    // Like analyze: everything recoverable is exported, but damage changes the exit status.
    Ok(if summary.damaged > 0 { ExitCode::from(2) } else { ExitCode::SUCCESS })
}
