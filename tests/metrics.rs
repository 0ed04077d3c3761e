//! `/metrics` served from a fake recording (recorder `run` + `ReplaySource`, no eBPF, no root):
//! values against the fixture's ground truth, `promtool check metrics` (Debian `prometheus`), and
//! the Grafana dashboard referencing only exposed metric names.

mod common;

use common::*;
use netrec_analyzer::pipeline::Input;
use netrec_format::{PacketRecord, SegmentMeta};
use netrec_recorder::metrics::{METRIC_NAMES, Metrics, MetricsServer};
use netrec_recorder::run::{AlertOutput, RecordConfig, ReplaySource, run};
use netrec_recorder::sinks::{DeliveryConfig, SinkSet};
use std::collections::BTreeSet;
use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::Duration;

fn packets(pcap: &str, iface: u32) -> Vec<PacketRecord> {
    let mut input = Input::open(&fixture(&format!("pcap/{pcap}"))).expect("open fixture");
    let mut out = Vec::new();
    while let Some(p) = input.next_packet().expect("read fixture") {
        out.push(PacketRecord {
            ts: p.ts,
            iface,
            direction: p.direction,
            link_type: p.link_type,
            wire_len: p.wire_len,
            data: p.data.to_vec(),
        });
    }
    out
}

fn get(addr: std::net::SocketAddr, path: &str) -> (String, String) {
    let mut c = TcpStream::connect(addr).unwrap();
    write!(c, "GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n").unwrap();
    let mut s = String::new();
    c.read_to_string(&mut s).unwrap();
    let (head, body) = s.split_once("\r\n\r\n").unwrap();
    (head.to_string(), body.to_string())
}

/// Value of the sample line `name{labels}` (exact text before the value).
fn sample(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series).and_then(|r| r.strip_prefix(' ')))
        .unwrap_or_else(|| panic!("{series} not in:\n{text}"))
        .parse()
        .unwrap()
}

/// A fake recording of two "interfaces" with an EVE sink, metrics served while it runs.
fn recorded_metrics() -> String {
    let dir = tempfile::tempdir().unwrap();
    let eve = dir.path().join("eve.json");
    let cfg = DeliveryConfig::parse(
        "t.toml",
        &format!("[[sink]]\ntype = \"eve\"\nname = \"siem\"\npath = \"{}\"\n", eve.display()),
    )
    .unwrap();
    let sinks = Arc::new(cfg.start().unwrap());
    let metrics = Arc::new(Metrics::new(&[(3, "eth0".into()), (4, "eth1".into())]));
    metrics.register_sinks(sinks.stats());
    let server = MetricsServer::start("127.0.0.1:0".parse().unwrap(), metrics.clone()).unwrap();
    let a = packets("brute_force_ssh.pcap", 3);
    let b = packets("port_scan_syn.pcap", 4);
    let (na, nb) = (a.len(), b.len());
    let (ba, bb): (u64, u64) =
        (a.iter().map(|p| u64::from(p.wire_len)).sum(), b.iter().map(|p| u64::from(p.wire_len)).sum());
    let mut records = a;
    records.extend(b);
    let config = RecordConfig {
        dir: dir.path().join("segs"),
        rotation: Default::default(),
        retention: None,
        writer: Default::default(),
        rules: netrec_rules::ruleset::RuleSet::default_pack(),
        meta: SegmentMeta::default(),
        alerts: AlertOutput::None,
        sinks: Some(sinks.clone()),
        metrics: Some(metrics.clone()),
        duration: None,
        poll: Duration::from_millis(10),
        file_mode: 0o640,
        dir_mode: 0o750,
        status: None,
    };
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let summary = rt
        .block_on(run(config, ReplaySource::new(records, 2048), std::future::pending::<()>()))
        .expect("recording");
    let reports = SinkSet::finish_shared(sinks, Duration::from_secs(10));
    let (head, body) = get(server.local_addr(), "/metrics");
    assert!(head.starts_with("HTTP/1.1 200 OK"), "{head}");
    assert!(head.contains("Content-Type: text/plain; version=0.0.4"), "{head}");
    // Ground truth: what went in.
    assert_eq!(sample(&body, "netrec_packets_total{interface=\"eth0\"}"), na as f64);
    assert_eq!(sample(&body, "netrec_packets_total{interface=\"eth1\"}"), nb as f64);
    assert_eq!(sample(&body, "netrec_bytes_total{interface=\"eth0\"}"), ba as f64);
    assert_eq!(sample(&body, "netrec_bytes_total{interface=\"eth1\"}"), bb as f64);
    assert_eq!(summary.packets, (na + nb) as u64);
    // The golden alert files of the two fixtures: one brute force, one port scan.
    for (class, golden) in [("brute_force", "brute_force_ssh"), ("port_scan", "port_scan_syn")] {
        let n = std::fs::read_to_string(fixture(&format!("expected/{golden}.alerts.jsonl")))
            .unwrap()
            .lines()
            .count();
        assert_eq!(sample(&body, &format!("netrec_alerts_total{{class=\"{class}\"}}")), n as f64, "{class}");
    }
    assert_eq!(
        sample(&body, "netrec_alerts_total{class=\"brute_force\"}")
            + sample(&body, "netrec_alerts_total{class=\"port_scan\"}"),
        summary.alerts as f64
    );
    let lines = std::fs::read_to_string(&eve).unwrap().lines().count() as f64;
    assert_eq!(sample(&body, "netrec_sink_deliveries_total{sink=\"siem\",type=\"eve\"}"), lines);
    assert_eq!(reports[0].delivered as f64, lines);
    assert_eq!(
        sample(&body, "netrec_sink_drops_total{sink=\"siem\",type=\"eve\",reason=\"queue_full\"}"),
        0.0
    );
    assert!(sample(&body, "netrec_segment_bytes_written_total") > 0.0);
    let on_disk: u64 = std::fs::read_dir(dir.path().join("segs"))
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum();
    assert!(sample(&body, "netrec_segment_bytes_written_total") <= on_disk as f64);
    body
}

#[test]
fn metrics_of_a_fake_recording_pass_promtool() {
    let body = recorded_metrics();
    let promtool =
        which("promtool").expect("promtool not found: apt-get install prometheus (.ci/run installs it)");
    let mut child = std::process::Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(body.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success() && out.stdout.is_empty() && out.stderr.is_empty(),
        "promtool check metrics: {}\n{}\n{body}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn which(cmd: &str) -> Option<std::path::PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|d| std::path::Path::new(d).join(cmd))
        .find(|p| p.is_file())
}

/// `netrec_*` identifiers in a PromQL expression.
fn metric_names(expr: &str) -> Vec<String> {
    let mut out = Vec::new();
    let b = expr.as_bytes();
    let mut i = 0;
    while let Some(off) = expr[i..].find("netrec_") {
        let start = i + off;
        let boundary = start == 0 || !(b[start - 1].is_ascii_alphanumeric() || b[start - 1] == b'_');
        let mut end = start;
        while end < b.len() && (b[end].is_ascii_alphanumeric() || b[end] == b'_') {
            end += 1;
        }
        if boundary {
            out.push(expr[start..end].to_string());
        }
        i = end;
    }
    out
}

fn exprs(v: &serde_json::Value, out: &mut Vec<String>) {
    match v {
        serde_json::Value::Object(m) => {
            for (k, x) in m {
                match (k.as_str(), x) {
                    ("expr" | "query" | "definition", serde_json::Value::String(s)) => out.push(s.clone()),
                    _ => exprs(x, out),
                }
            }
        }
        serde_json::Value::Array(a) => a.iter().for_each(|x| exprs(x, out)),
        _ => {}
    }
}

#[test]
fn dashboard_uses_only_exposed_metrics() {
    let body = recorded_metrics();
    let exposed: BTreeSet<&str> =
        body.lines().filter_map(|l| l.strip_prefix("# TYPE ")).filter_map(|l| l.split(' ').next()).collect();
    assert_eq!(exposed, METRIC_NAMES.iter().copied().collect());
    let dash: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(repo_root().join("docs/grafana/netrec.json")).unwrap())
            .unwrap();
    let mut all = Vec::new();
    exprs(&dash, &mut all);
    let mut used = BTreeSet::new();
    for e in &all {
        for n in metric_names(e) {
            assert!(
                exposed.contains(n.as_str()),
                "dashboard query `{e}` uses {n}, which /metrics does not expose"
            );
            used.insert(n);
        }
    }
    assert!(all.len() >= 10, "{all:?}");
    // Every panel query has a metric; the dashboard covers the loss and sink counters.
    for must in
        ["netrec_packets_total", "netrec_alerts_total", "netrec_ring_drops_total", "netrec_sink_drops_total"]
    {
        assert!(used.contains(must), "{must} not on the dashboard");
    }
}

#[test]
fn metric_name_scanner() {
    assert_eq!(
        metric_names("sum(rate(netrec_a_total{x=\"netrec_b\"}[5m])) / xnetrec_c"),
        ["netrec_a_total", "netrec_b"]
    );
}
