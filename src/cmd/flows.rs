//! `netrec flows`: the flow table of captures and segments.

use super::flowsort::FlowSorter;
use anyhow::Context as _;
use netrec_analyzer::pipeline::{self, Input, ReplayStats};
use netrec_format::{FlowRecord, proto_name};
use netrec_rules::ruleset::RuleSet;
use netrec_rules::{Engine, EngineSink, Limits, VecSink, flow::write_flow_json};
use std::io::{BufWriter, Write as _};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum FlowFormat {
    Table,
    Jsonl,
    Csv,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum FlowSort {
    /// Most bytes first.
    Bytes,
    /// Most packets first.
    Packets,
    /// Earliest first (then by emission order).
    #[default]
    Start,
}

#[derive(clap::Args, Debug)]
pub struct FlowsArgs {
    /// pcap, pcapng (optionally .gz/.zst) or segment files, or directories of them; `-` (or a
    /// pipe) streams a capture from standard input.
    #[arg(required = true, value_name = "INPUT")]
    pub inputs: Vec<PathBuf>,
    #[arg(long, value_enum, default_value_t = FlowFormat::Table)]
    pub format: FlowFormat,
    #[arg(long, value_enum, default_value_t = FlowSort::Start)]
    pub sort: FlowSort,
}

/// Outcome of replaying several inputs: per-input failures are reported and counted, the rest go on.
pub struct Collected {
    /// The alerts (flows are in `flows`).
    pub sink: VecSink,
    /// The flow records, when asked for, sorted in bounded memory.
    pub flows: Option<FlowSorter>,
    pub stats: ReplayStats,
    pub failed_inputs: usize,
    pub inputs: usize,
}

/// Keeps alerts, and flows only when asked (`alerts` prints none: a flood's million flow
/// records would only cost memory).
struct KeepSink {
    inner: VecSink,
    flows: Option<FlowSorter>,
}

impl EngineSink for KeepSink {
    fn alert(&mut self, alert: netrec_format::Alert) {
        self.inner.alert(alert)
    }
    fn alert_update(&mut self, alert: netrec_format::Alert) {
        self.inner.alert_update(alert)
    }
    fn flow(&mut self, flow: FlowRecord) {
        if let Some(s) = self.flows.as_mut() {
            s.push(flow)
        }
    }
}

/// Replay every input through its own engine (inputs are independent captures), keeping the
/// alerts, and the flow records (sorted by `flows`) only when asked.
pub fn collect_into(
    inputs: &[PathBuf],
    rules: &RuleSet,
    flows: Option<FlowSort>,
) -> anyhow::Result<Collected> {
    let paths = pipeline::expand_inputs(inputs)?;
    let mut sink = KeepSink { inner: VecSink::default(), flows: flows.map(FlowSorter::new) };
    let mut total = ReplayStats::default();
    let mut failed = 0;
    // Consecutive segment files of one directory are one recording (rotated): one stream, so
    // flows and incidents spanning a rotation are not split. Captures are independent.
    for group in pipeline::group_inputs(&paths) {
        let mut input = match Input::open_group(&group) {
            Ok(i) => i,
            Err(e) => {
                eprintln!("netrec: {e}");
                failed += 1;
                continue;
            }
        };
        let mut stats = ReplayStats::default();
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let res = if rules.rules().iter().any(|r| r.enabled) && pipeline::split_pays(&group, cores) {
            // The flow table and the detectors on threads of their own (same output).
            let detector_threads = cores.saturating_sub(2).max(1);
            pipeline::replay_split(
                &mut input,
                rules,
                &Limits::default(),
                detector_threads,
                &mut sink,
                &mut stats,
            )
        } else {
            let mut engine = Engine::new(rules.clone(), Limits::default());
            let res = pipeline::replay_threaded(&mut input, &mut engine, &mut sink, &mut stats);
            engine.finish(&mut sink);
            res
        };
        for w in stats.warnings.iter().take(20) {
            eprintln!("netrec: warning: {w}");
        }
        if stats.warning_count > 20 {
            eprintln!(
                "netrec: warning: {}: {} more warnings",
                group.path.display(),
                stats.warning_count - 20
            );
        }
        if let Err(e) = res {
            eprintln!("netrec: {e}");
            failed += 1;
        }
        merge_stats(&mut total, &stats);
    }
    Ok(Collected {
        sink: sink.inner,
        flows: sink.flows,
        stats: total,
        failed_inputs: failed,
        inputs: paths.len(),
    })
}

fn merge_stats(total: &mut ReplayStats, s: &ReplayStats) {
    total.packets += s.packets;
    total.bytes += s.bytes;
    total.decode_anomalies += s.decode_anomalies;
    total.unsupported_link += s.unsupported_link;
    total.warning_count += s.warning_count;
    total.first_ts = match (total.first_ts, s.first_ts) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    total.last_ts = match (total.last_ts, s.last_ts) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    };
}

/// Exit code policy: 2 only when nothing usable was read.
pub fn exit_code(c: &Collected) -> ExitCode {
    if c.failed_inputs > 0 && c.failed_inputs == c.inputs { ExitCode::from(2) } else { ExitCode::SUCCESS }
}

pub fn run(args: FlowsArgs) -> anyhow::Result<ExitCode> {
    let mut c = collect_into(&args.inputs, &RuleSet::default(), Some(args.sort))?;
    let sorter = c.flows.take().unwrap_or_else(|| FlowSorter::new(args.sort));
    let count = sorter.len();
    // Streamed for jsonl and csv: past `flowsort`'s memory limit the records come from its runs.
    let mut flows = sorter.finish()?;
    let stdout = std::io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    match args.format {
        // Written from the record: the same bytes as `flow_json`, no `Value` per flow.
        FlowFormat::Jsonl => write_lines(&mut flows, &mut out, json_line)?,
        FlowFormat::Csv => {
            writeln!(out, "{CSV_HEADER}").context("write")?;
            write_lines(&mut flows, &mut out, csv_line)?;
        }
        FlowFormat::Table => {
            let all = flows.by_ref().collect::<anyhow::Result<Vec<_>>>()?;
            out.write_all(table(&all).as_bytes()).context("write")?;
        }
    }
    out.flush().context("write")?;
    eprintln!(
        "netrec: {} packets, {} flows, {} decode anomalies, {} packets of unsupported link types, {} warnings",
        c.stats.packets, count, c.stats.decode_anomalies, c.stats.unsupported_link, c.stats.warning_count
    );
    Ok(exit_code(&c))
}

/// Records per chunk of parallel formatting: ~1 MB of text, a few hundred microseconds of work.
const LINES_CHUNK: usize = 2048;

/// Write a line per record, in order. Records held in memory (all but huge outputs) are
/// formatted in chunks on two threads, a second one taking every other chunk, and written in
/// order: the same bytes as one thread, and a flood's million lines in about half the time
/// (formatting was half of `netrec flows` on a SYN flood, while the other core idled).
fn write_lines(
    flows: &mut super::flowsort::Sorted,
    out: &mut impl std::io::Write,
    line: fn(&mut String, &FlowRecord),
) -> anyhow::Result<()> {
    let Some(recs) = flows.in_memory() else {
        // Merged from spilled runs: a stream, formatted here.
        let mut buf = String::with_capacity(512);
        for f in flows {
            buf.clear();
            line(&mut buf, &f?);
            out.write_all(buf.as_bytes()).context("write")?;
        }
        return Ok(());
    };
    let chunks: Vec<&[FlowRecord]> = recs.chunks(LINES_CHUNK).collect();
    let format = |buf: &mut String, chunk: &[FlowRecord]| {
        buf.clear();
        chunk.iter().for_each(|f| line(buf, f));
    };
    std::thread::scope(|scope| {
        let (tx, rx) = std::sync::mpsc::sync_channel::<String>(2);
        let (back_tx, back_rx) = std::sync::mpsc::channel::<String>();
        let theirs = chunks.iter().skip(1).step_by(2);
        std::thread::Builder::new()
            .name("nr-format".into())
            .spawn_scoped(scope, move || {
                for chunk in theirs {
                    let mut buf = back_rx.try_recv().unwrap_or_default();
                    format(&mut buf, chunk);
                    // The receiver is gone only when writing failed: stop.
                    if tx.send(buf).is_err() {
                        break;
                    }
                }
            })
            .context("cannot start thread nr-format")?;
        let mut mine = String::new();
        for pair in chunks.chunks(2) {
            format(&mut mine, pair[0]);
            out.write_all(mine.as_bytes()).context("write")?;
            if pair.len() == 2 {
                let theirs = rx.recv().context("formatting thread ended early")?;
                out.write_all(theirs.as_bytes()).context("write")?;
                let _ = back_tx.send(theirs);
            }
        }
        Ok(())
    })
}

/// The JSON line of one flow (appended to `line`).
fn json_line(line: &mut String, f: &FlowRecord) {
    write_flow_json(line, f);
    line.push('\n');
}

const CSV_HEADER: &str = "proto,src_ip,src_port,dst_ip,dst_port,packets,bytes,fwd_packets,fwd_bytes,rev_packets,rev_bytes,first_ts,last_ts,tcp_state,rtt_ms,retransmissions,vlan,tunnel,end";

/// The CSV line of one flow (appended to `line`): the columns of `CSV_HEADER` with
/// `flow_json`'s values (null empty, a tunnel as `kind:id`), written directly: no JSON object
/// per flow.
fn csv_line(line: &mut String, f: &FlowRecord) {
    use netrec_format::text::{push_ip, push_ts, push_u64};
    {
        let k = &f.key;
        let (fw, rv) = (&f.fwd, &f.rev);
        line.push_str(&proto_name(k.proto));
        line.push(',');
        push_ip(line, &k.src_ip);
        line.push(',');
        push_u64(line, u64::from(k.src_port));
        line.push(',');
        push_ip(line, &k.dst_ip);
        for v in [
            u64::from(k.dst_port),
            fw.packets + rv.packets,
            fw.bytes + rv.bytes,
            fw.packets,
            fw.bytes,
            rv.packets,
            rv.bytes,
        ] {
            line.push(',');
            push_u64(line, v);
        }
        line.push(',');
        push_ts(line, f.first_ts.nanos());
        line.push(',');
        push_ts(line, f.last_ts.nanos());
        line.push(',');
        if f.tcp_state != netrec_format::TcpState::None {
            line.push_str(f.tcp_state.as_str());
        }
        line.push(',');
        if let Some(ns) = f.rtt_ns() {
            // serde_json's float text, as in the JSON output.
            line.push_str(&serde_json::to_string(&(ns as f64 / 1e6)).unwrap_or_default());
        }
        line.push(',');
        push_u64(line, fw.retransmissions + rv.retransmissions);
        line.push(',');
        if k.vlan != 0 {
            push_u64(line, u64::from(k.vlan));
        }
        line.push(',');
        if let Some(t) = &f.tunnel {
            line.push_str(t.kind.as_str());
            line.push(':');
            push_u64(line, u64::from(t.id));
        }
        line.push(',');
        line.push_str(netrec_rules::flow::end_str(f.end));
        line.push('\n');
    }
}

fn table(flows: &[FlowRecord]) -> String {
    let mut b = tabled::builder::Builder::default();
    b.push_record([
        "proto",
        "source",
        "destination",
        "pkts →",
        "bytes →",
        "pkts ←",
        "bytes ←",
        "start",
        "duration",
        "state",
        "rtt ms",
        "retx",
    ]);
    for f in flows {
        let k = &f.key;
        b.push_record([
            proto_name(k.proto).into_owned(),
            endpoint(k.src_ip, k.src_port, k.proto),
            endpoint(k.dst_ip, k.dst_port, k.proto),
            f.fwd.packets.to_string(),
            f.fwd.bytes.to_string(),
            f.rev.packets.to_string(),
            f.rev.bytes.to_string(),
            f.first_ts.to_decimal(),
            format!("{:.3}", f.last_ts.saturating_sub(f.first_ts) as f64 / 1e9),
            if f.tcp_state == netrec_format::TcpState::None {
                String::new()
            } else {
                f.tcp_state.as_str().to_string()
            },
            f.rtt_ns().map(|r| format!("{:.3}", r as f64 / 1e6)).unwrap_or_default(),
            (f.fwd.retransmissions + f.rev.retransmissions).to_string(),
        ]);
    }
    let mut t = b.build();
    t.with(tabled::settings::Style::psql());
    format!("{t}\n")
}

fn endpoint(ip: std::net::IpAddr, port: u16, proto: u16) -> String {
    let ported = matches!(proto, 6 | 17 | 132);
    match (ip, ported) {
        (std::net::IpAddr::V6(v6), true) => format!("[{v6}]:{port}"),
        (ip, true) => format!("{ip}:{port}"),
        (ip, false) => ip.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use netrec_rules::flow::flow_json;

    /// The CSV before it was written directly: every column from `flow_json`'s object.
    fn csv_from_json(flows: &[FlowRecord]) -> String {
        let mut out = format!("{CSV_HEADER}\n");
        for f in flows {
            let j = flow_json(f);
            let s = |k: &str| match &j[k] {
                serde_json::Value::Null => String::new(),
                serde_json::Value::String(s) => s.clone(),
                serde_json::Value::Object(_) => j["tunnel"]["kind"]
                    .as_str()
                    .map(|k| format!("{k}:{}", j["tunnel"]["id"]))
                    .unwrap_or_default(),
                v => v.to_string(),
            };
            let cols: Vec<String> = CSV_HEADER.split(',').map(s).collect();
            out.push_str(&cols.join(","));
            out.push('\n');
        }
        out
    }

    /// Formatting on two threads writes exactly the lines of one thread, in order: chunk counts
    /// odd and even, a last partial chunk; and the streamed path (records merged from spilled
    /// runs) writes the same.
    #[test]
    fn parallel_lines_equal_sequential_lines() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let c =
            collect_into(&[root.join("fixtures/pcap")], &RuleSet::default(), Some(FlowSort::Start)).unwrap();
        let base: Vec<FlowRecord> =
            c.flows.unwrap().finish().unwrap().collect::<anyhow::Result<_>>().unwrap();
        assert!(base.len() > 100, "{} flows", base.len());
        for n in [1, LINES_CHUNK - 1, 2 * LINES_CHUNK, 3 * LINES_CHUNK + 7] {
            let recs: Vec<FlowRecord> = base.iter().cycle().take(n).cloned().collect();
            for line in [json_line as fn(&mut String, &FlowRecord), csv_line] {
                let mut want = String::new();
                let mut sorter = FlowSorter::new(FlowSort::Bytes);
                recs.iter().cloned().for_each(|f| sorter.push(f));
                let mut sorted = sorter.finish().unwrap();
                sorted.in_memory().unwrap().iter().for_each(|f| line(&mut want, f));
                let mut got = Vec::new();
                write_lines(&mut sorted, &mut got, line).unwrap();
                assert_eq!(String::from_utf8(got).unwrap(), want, "{n} records");

                let mut spilled = FlowSorter::with_limit(FlowSort::Bytes, 500);
                recs.iter().cloned().for_each(|f| spilled.push(f));
                let mut sorted = spilled.finish().unwrap();
                assert_eq!(sorted.in_memory().is_none(), n >= 500);
                let mut got = Vec::new();
                write_lines(&mut sorted, &mut got, line).unwrap();
                assert_eq!(String::from_utf8(got).unwrap(), want, "{n} records, spilled");
            }
        }
    }

    /// Every flow of every fixture capture and of the shared tunnel/VLAN captures (TCP with
    /// RTTs, UDP, ICMP, ARP, fragments, VLAN, GRE/VXLAN/Geneve): the direct CSV equals the
    /// JSON-derived one.
    #[test]
    fn csv_equals_the_json_columns_on_every_fixture() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut inputs: Vec<PathBuf> = vec![root.join("fixtures/pcap")];
        let shared = root.join("../shared/captures");
        for name in ["gre-various.pcap", "vxlan-tunnel.pcap", "geneve-tunnel.pcap", "vlan-qinqinq.pcap"] {
            assert!(shared.join(name).exists(), "{} missing", shared.join(name).display());
            inputs.push(shared.join(name));
        }
        let c = collect_into(&inputs, &RuleSet::default(), Some(FlowSort::Start)).unwrap();
        let flows: Vec<FlowRecord> =
            c.flows.unwrap().finish().unwrap().collect::<anyhow::Result<_>>().unwrap();
        let flows = &flows;
        assert!(flows.len() > 1000, "{} flows", flows.len());
        assert!(flows.iter().any(|f| f.rtt_ns().is_some()) && flows.iter().any(|f| f.key.vlan != 0));
        assert!(flows.iter().any(|f| f.tunnel.is_some()), "no tunnel flow");
        let mut got = format!("{CSV_HEADER}\n");
        let mut line = String::new();
        for f in flows {
            line.clear();
            csv_line(&mut line, f);
            got.push_str(&line);
        }
        assert_eq!(got, csv_from_json(flows));
    }
}
