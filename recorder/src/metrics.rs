//! Live counters and their Prometheus text exposition (format 0.0.4) on `/metrics`.
//!
//! The recording loop adds to the registry once per drained batch (never per packet with a
//! lock); the HTTP server is a small std thread, independent of the recorder's runtime, so a
//! test serves it from a replayed recording without root.

use crate::sinks::SinkStats;
use netrec_format::LossRecord;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Every metric name the registry exposes (the dashboard test checks against this and the output).
pub const METRIC_NAMES: &[&str] = &[
    "netrec_packets_total",
    "netrec_bytes_total",
    "netrec_kernel_packets_total",
    "netrec_kernel_bytes_total",
    "netrec_flows_total",
    "netrec_alerts_total",
    "netrec_alert_updates_total",
    "netrec_ring_drops_total",
    "netrec_map_full_total",
    "netrec_writer_errors_total",
    "netrec_segment_bytes_written_total",
    "netrec_sink_deliveries_total",
    "netrec_sink_failures_total",
    "netrec_sink_suppressed_total",
    "netrec_sink_drops_total",
    "netrec_sink_queue_length",
    "netrec_start_time_seconds",
];

#[derive(Debug, Default, Clone, Copy)]
struct IfaceCounts {
    packets: u64,
    bytes: u64,
}

/// Per-interface packet and byte counts of one drained batch (a few interfaces: a small vec).
#[derive(Debug, Default)]
pub struct PacketTally {
    by_iface: Vec<(u32, IfaceCounts)>,
}

impl PacketTally {
    #[inline]
    pub fn add(&mut self, iface: u32, wire_len: u32) {
        let c = match self.by_iface.iter_mut().find(|(i, _)| *i == iface) {
            Some((_, c)) => c,
            None => {
                self.by_iface.push((iface, IfaceCounts::default()));
                &mut self.by_iface.last_mut().expect("just pushed").1
            }
        };
        c.packets += 1;
        c.bytes += u64::from(wire_len);
    }
}

/// The registry.
#[derive(Debug)]
pub struct Metrics {
    start_unix_secs: u64,
    /// ifindex -> name, for the `interface` label (the index itself when unknown).
    iface_names: BTreeMap<u32, String>,
    packets: Mutex<BTreeMap<u32, IfaceCounts>>,
    kernel_packets: AtomicU64,
    kernel_bytes: AtomicU64,
    flows: AtomicU64,
    ring_drops: AtomicU64,
    map_full: AtomicU64,
    writer_errors: AtomicU64,
    segment_bytes: AtomicU64,
    /// class -> (alerts, updates). Alerts are rare: a lock is fine.
    alerts: Mutex<BTreeMap<String, (u64, u64)>>,
    sinks: Mutex<Vec<Arc<SinkStats>>>,
}

impl Metrics {
    /// `interfaces`: (ifindex, name) pairs of the recording.
    pub fn new(interfaces: &[(u32, String)]) -> Metrics {
        let start = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        Metrics {
            start_unix_secs: start.as_secs(),
            iface_names: interfaces.iter().cloned().collect(),
            packets: Mutex::default(),
            kernel_packets: AtomicU64::new(0),
            kernel_bytes: AtomicU64::new(0),
            flows: AtomicU64::new(0),
            ring_drops: AtomicU64::new(0),
            map_full: AtomicU64::new(0),
            writer_errors: AtomicU64::new(0),
            segment_bytes: AtomicU64::new(0),
            alerts: Mutex::default(),
            sinks: Mutex::default(),
        }
    }

    /// Add a drained batch's counts and reset the tally.
    pub fn add_packets(&self, tally: &mut PacketTally) {
        if tally.by_iface.is_empty() {
            return;
        }
        let mut m = self.packets.lock().unwrap_or_else(|e| e.into_inner());
        for (iface, c) in tally.by_iface.drain(..) {
            let e = m.entry(iface).or_default();
            e.packets += c.packets;
            e.bytes += c.bytes;
        }
    }

    pub fn add_loss(&self, l: &LossRecord) {
        self.kernel_packets.fetch_add(l.kernel_packets, Relaxed);
        self.kernel_bytes.fetch_add(l.kernel_bytes, Relaxed);
        self.ring_drops.fetch_add(l.ring_drops, Relaxed);
        self.map_full.fetch_add(l.map_full, Relaxed);
    }

    pub fn add_flows(&self, n: u64) {
        self.flows.fetch_add(n, Relaxed);
    }

    pub fn add_writer_error(&self) {
        self.writer_errors.fetch_add(1, Relaxed);
    }

    pub fn add_segment_bytes(&self, n: u64) {
        self.segment_bytes.fetch_add(n, Relaxed);
    }

    pub fn add_alert(&self, class: &str, update: bool) {
        let mut m = self.alerts.lock().unwrap_or_else(|e| e.into_inner());
        let e = match m.get_mut(class) {
            Some(e) => e,
            None => m.entry(class.to_string()).or_default(),
        };
        if update {
            e.1 += 1;
        } else {
            e.0 += 1;
        }
    }

    /// Expose these sinks' counters.
    pub fn register_sinks(&self, stats: Vec<Arc<SinkStats>>) {
        self.sinks.lock().unwrap_or_else(|e| e.into_inner()).extend(stats);
    }

    /// The Prometheus text exposition (deterministic order: metrics as listed, labels sorted).
    pub fn render(&self) -> String {
        let mut o = String::with_capacity(4096);
        let header = |o: &mut String, name: &str, kind: &str, help: &str| {
            let _ = writeln!(o, "# HELP {name} {help}\n# TYPE {name} {kind}");
        };
        let packets = self.packets.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let iface = |i: &u32| match self.iface_names.get(i) {
            Some(n) => escape(n),
            None => i.to_string(),
        };
        header(&mut o, "netrec_packets_total", "counter", "Packets the recorder processed, by interface.");
        for (i, c) in &packets {
            let _ = writeln!(o, "netrec_packets_total{{interface=\"{}\"}} {}", iface(i), c.packets);
        }
        header(
            &mut o,
            "netrec_bytes_total",
            "counter",
            "Wire bytes of the packets the recorder processed, by interface.",
        );
        for (i, c) in &packets {
            let _ = writeln!(o, "netrec_bytes_total{{interface=\"{}\"}} {}", iface(i), c.bytes);
        }
        let plain = |o: &mut String, name: &str, kind: &str, help: &str, v: u64| {
            header(o, name, kind, help);
            let _ = writeln!(o, "{name} {v}");
        };
        plain(
            &mut o,
            "netrec_kernel_packets_total",
            "counter",
            "Packets the kernel program counted.",
            self.kernel_packets.load(Relaxed),
        );
        plain(
            &mut o,
            "netrec_kernel_bytes_total",
            "counter",
            "Bytes the kernel program counted.",
            self.kernel_bytes.load(Relaxed),
        );
        plain(
            &mut o,
            "netrec_flows_total",
            "counter",
            "Flow records written (ended flows).",
            self.flows.load(Relaxed),
        );
        let alerts = self.alerts.lock().unwrap_or_else(|e| e.into_inner()).clone();
        header(&mut o, "netrec_alerts_total", "counter", "Alerts raised, by detector class.");
        for (class, (n, _)) in &alerts {
            let _ = writeln!(o, "netrec_alerts_total{{class=\"{}\"}} {n}", escape(class));
        }
        header(
            &mut o,
            "netrec_alert_updates_total",
            "counter",
            "Alert updates (an open incident grew), by detector class.",
        );
        for (class, (_, n)) in &alerts {
            let _ = writeln!(o, "netrec_alert_updates_total{{class=\"{}\"}} {n}", escape(class));
        }
        plain(
            &mut o,
            "netrec_ring_drops_total",
            "counter",
            "Header records lost because the ring buffer was full.",
            self.ring_drops.load(Relaxed),
        );
        plain(
            &mut o,
            "netrec_map_full_total",
            "counter",
            "Flow map updates that failed because the map was full.",
            self.map_full.load(Relaxed),
        );
        plain(
            &mut o,
            "netrec_writer_errors_total",
            "counter",
            "Batches of headers that could not be written to a segment.",
            self.writer_errors.load(Relaxed),
        );
        plain(
            &mut o,
            "netrec_segment_bytes_written_total",
            "counter",
            "Bytes written to segment files.",
            self.segment_bytes.load(Relaxed),
        );
        let sinks = self.sinks.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let labels = |s: &SinkStats| format!("sink=\"{}\",type=\"{}\"", escape(&s.name), s.kind);
        header(&mut o, "netrec_sink_deliveries_total", "counter", "Alerts delivered, by sink.");
        for s in &sinks {
            let _ =
                writeln!(o, "netrec_sink_deliveries_total{{{}}} {}", labels(s), s.delivered.load(Relaxed));
        }
        header(
            &mut o,
            "netrec_sink_failures_total",
            "counter",
            "Failed delivery attempts (each retry counts), by sink.",
        );
        for s in &sinks {
            let _ = writeln!(o, "netrec_sink_failures_total{{{}}} {}", labels(s), s.failures.load(Relaxed));
        }
        header(
            &mut o,
            "netrec_sink_suppressed_total",
            "counter",
            "Duplicate alerts suppressed (same rule, sources and targets within the window), by sink.",
        );
        for s in &sinks {
            let _ =
                writeln!(o, "netrec_sink_suppressed_total{{{}}} {}", labels(s), s.suppressed.load(Relaxed));
        }
        header(&mut o, "netrec_sink_drops_total", "counter", "Alerts not delivered, by sink and reason.");
        for s in &sinks {
            for (reason, c) in [
                ("queue_full", &s.dropped_queue_full),
                ("rate_limited", &s.dropped_rate_limited),
                ("failed", &s.dropped_failed),
                ("shutdown", &s.dropped_shutdown),
            ] {
                let _ = writeln!(
                    o,
                    "netrec_sink_drops_total{{{},reason=\"{reason}\"}} {}",
                    labels(s),
                    c.load(Relaxed)
                );
            }
        }
        header(
            &mut o,
            "netrec_sink_queue_length",
            "gauge",
            "Alerts waiting in a sink's queue or being delivered.",
        );
        for s in &sinks {
            let _ = writeln!(o, "netrec_sink_queue_length{{{}}} {}", labels(s), s.queued.load(Relaxed));
        }
        header(&mut o, "netrec_start_time_seconds", "gauge", "Unix time the recorder started.");
        let _ = writeln!(o, "netrec_start_time_seconds {}", self.start_unix_secs);
        o
    }
}

/// Label value escaping: backslash, double quote, newline.
fn escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// A running `/metrics` server; stops when dropped.
#[derive(Debug)]
pub struct MetricsServer {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl MetricsServer {
    /// Bind `addr` (port 0: any free port) and serve `metrics` on a thread.
    pub fn start(addr: SocketAddr, metrics: Arc<Metrics>) -> std::io::Result<MetricsServer> {
        let listener = TcpListener::bind(addr)?;
        let addr = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = stop.clone();
        let thread = std::thread::Builder::new().name("netrec-metrics".into()).spawn(move || {
            for conn in listener.incoming() {
                if stop2.load(Relaxed) {
                    break;
                }
                if let Ok(c) = conn {
                    // One request per connection; a slow client costs at most the timeouts.
                    let _ = serve_one(c, &metrics);
                }
            }
        })?;
        Ok(MetricsServer { addr, stop, thread: Some(thread) })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        self.stop.store(true, Relaxed);
        // Wake the blocking accept.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_millis(200));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve_one(mut c: TcpStream, metrics: &Metrics) -> std::io::Result<()> {
    c.set_read_timeout(Some(Duration::from_secs(2)))?;
    c.set_write_timeout(Some(Duration::from_secs(2)))?;
    let mut buf = [0u8; 4096];
    let mut n = 0;
    while n < buf.len() {
        let k = c.read(&mut buf[n..])?;
        if k == 0 {
            break;
        }
        n += k;
        if buf[..n].windows(4).any(|w| w == b"\r\n\r\n") || buf[..n].windows(2).any(|w| w == b"\n\n") {
            break;
        }
    }
    let line = buf[..n].split(|b| *b == b'\n').next().unwrap_or(&[]);
    let line = String::from_utf8_lossy(line);
    let mut parts = line.split_whitespace();
    let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let path = path.split('?').next().unwrap_or("");
    let (status, ctype, body) = match (method, path) {
        ("GET" | "HEAD", "/metrics") => {
            ("200 OK", "text/plain; version=0.0.4; charset=utf-8", metrics.render())
        }
        ("GET" | "HEAD", "/") => {
            ("200 OK", "text/plain; charset=utf-8", "netrec: metrics at /metrics\n".to_string())
        }
        ("GET" | "HEAD", _) => ("404 Not Found", "text/plain; charset=utf-8", "not found\n".to_string()),
        _ => ("405 Method Not Allowed", "text/plain; charset=utf-8", "method not allowed\n".to_string()),
    };
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    c.write_all(head.as_bytes())?;
    if method != "HEAD" {
        c.write_all(body.as_bytes())?;
    }
    c.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_every_listed_metric_with_help_and_type() {
        let m = Metrics::new(&[(2, "eth0".into())]);
        let mut t = PacketTally::default();
        t.add(2, 100);
        t.add(2, 60);
        t.add(7, 1);
        m.add_packets(&mut t);
        m.add_alert("port_scan", false);
        m.add_alert("port_scan", true);
        let text = m.render();
        for name in METRIC_NAMES {
            assert!(text.contains(&format!("# TYPE {name} ")), "{name} missing");
            assert!(text.contains(&format!("# HELP {name} ")), "{name} missing");
        }
        assert!(text.contains("netrec_packets_total{interface=\"eth0\"} 2\n"));
        assert!(text.contains("netrec_bytes_total{interface=\"eth0\"} 160\n"));
        assert!(text.contains("netrec_packets_total{interface=\"7\"} 1\n"));
        assert!(text.contains("netrec_alerts_total{class=\"port_scan\"} 1\n"));
        assert!(text.contains("netrec_alert_updates_total{class=\"port_scan\"} 1\n"));
    }

    #[test]
    fn serves_metrics_over_http() {
        let m = Arc::new(Metrics::new(&[]));
        m.add_flows(3);
        let srv = MetricsServer::start("127.0.0.1:0".parse().unwrap(), m).unwrap();
        let get = |path: &str| {
            let mut c = TcpStream::connect(srv.local_addr()).unwrap();
            write!(c, "GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
            let mut s = String::new();
            c.read_to_string(&mut s).unwrap();
            s
        };
        let r = get("/metrics");
        assert!(r.starts_with("HTTP/1.1 200 OK\r\n"), "{r}");
        assert!(r.contains("\r\n\r\n# HELP netrec_packets_total"));
        assert!(r.contains("\nnetrec_flows_total 3\n"));
        assert!(get("/nope").starts_with("HTTP/1.1 404"));
        drop(srv);
    }
}
