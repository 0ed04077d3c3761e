//! Alert sinks against real local servers started by each test (127.0.0.1 / unix sockets only):
//! an HTTP server for webhooks, aiosmtpd for mail, UDP/TCP listeners for syslog, a unix socket
//! and files for EVE. Alerts come from a fake recording (`run` + `ReplaySource` over fixture
//! pcaps), so the recording loop's sink hook is exercised too; expected alerts are the golden
//! files in fixtures/expected.

mod common;

use common::*;
use netrec_analyzer::pipeline::Input;
use netrec_format::{PacketRecord, SegmentMeta};
use netrec_recorder::run::{AlertOutput, RecordConfig, ReplaySource, run};
use netrec_recorder::sinks::{DeliveryConfig, SinkReport, SinkSet};
use serde_json::Value;
use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn packets(pcap: &str) -> Vec<PacketRecord> {
    let mut input = Input::open(&fixture(&format!("pcap/{pcap}"))).expect("open fixture");
    let mut out = Vec::new();
    while let Some(p) = input.next_packet().expect("read fixture") {
        out.push(PacketRecord {
            ts: p.ts,
            iface: 1,
            direction: p.direction,
            link_type: p.link_type,
            wire_len: p.wire_len,
            data: p.data.to_vec(),
        });
    }
    out
}

/// The first report of an incident equals the golden (final) alert except for what updates
/// grow: `count`, `last_ts` (no larger than the final ones).
fn assert_first_report_of(got: &Value, golden: &Value) {
    let mut g = got.clone();
    let mut want = golden.clone();
    for k in ["count", "last_ts"] {
        g.as_object_mut().unwrap().remove(k);
        want.as_object_mut().unwrap().remove(k);
    }
    want["event"] = "alert".into();
    assert_eq!(g, want);
    assert!(got["count"].as_u64().unwrap() <= golden["count"].as_u64().unwrap());
    let ts = |v: &Value| v["last_ts"].as_str().unwrap().parse::<f64>().unwrap();
    assert!(ts(got) <= ts(golden));
}

fn golden(name: &str) -> Vec<Value> {
    let text = std::fs::read_to_string(fixture(&format!("expected/{name}.alerts.jsonl"))).expect("golden");
    text.lines().map(|l| serde_json::from_str(l).expect("golden json")).collect()
}

/// Record `pcaps` with `cfg`'s sinks (no kernel), then finish the sinks; returns the reports and
/// how long the recording itself took.
fn record_with(cfg: &DeliveryConfig, pcaps: &[&str], finish: Duration) -> (Vec<SinkReport>, Duration) {
    let sinks = Arc::new(cfg.start().expect("start sinks"));
    let records: Vec<PacketRecord> = pcaps.iter().flat_map(|p| packets(p)).collect();
    let dir = tempfile::tempdir().expect("tempdir");
    let config = RecordConfig {
        dir: dir.path().join("segs"),
        rotation: Default::default(),
        retention: None,
        writer: Default::default(),
        rules: netrec_rules::ruleset::RuleSet::default_pack(),
        meta: SegmentMeta::default(),
        alerts: AlertOutput::None,
        sinks: Some(sinks.clone()),
        metrics: None,
        duration: None,
        poll: Duration::from_millis(10),
        file_mode: 0o640,
        dir_mode: 0o750,
        status: None,
    };
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let t = Instant::now();
    rt.block_on(run(config, ReplaySource::new(records, 4096), std::future::pending::<()>()))
        .expect("recording");
    let took = t.elapsed();
    (SinkSet::finish_shared(sinks, finish), took)
}

fn cfg(text: &str) -> DeliveryConfig {
    DeliveryConfig::parse("test.toml", text).unwrap_or_else(|e| panic!("{e}"))
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

#[derive(Debug, Clone)]
struct Request {
    target: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("JSON body")
    }
}

/// A minimal HTTP/1.1 server: records each request, answers 200 with `answer`.
fn http_server(answer: &'static str) -> (u16, Arc<Mutex<Vec<Request>>>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let got = Arc::new(Mutex::new(Vec::new()));
    let got2 = got.clone();
    std::thread::spawn(move || {
        for c in l.incoming() {
            let Ok(c) = c else { continue };
            let got = got2.clone();
            std::thread::spawn(move || serve_http(c, answer, &got));
        }
    });
    (port, got)
}

fn serve_http(c: TcpStream, answer: &str, got: &Mutex<Vec<Request>>) {
    c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut r = BufReader::new(c.try_clone().unwrap());
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let target = line.split_whitespace().nth(1).unwrap_or("").to_string();
        assert!(line.starts_with("POST "), "{line}");
        let mut headers = Vec::new();
        loop {
            let mut h = String::new();
            r.read_line(&mut h).unwrap();
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            let (k, v) = h.split_once(':').unwrap();
            headers.push((k.trim().to_string(), v.trim().to_string()));
        }
        let len: usize = headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
            .map(|(_, v)| v.parse().unwrap())
            .expect("content-length");
        let mut body = vec![0; len];
        r.read_exact(&mut body).unwrap();
        got.lock().unwrap().push(Request { target, headers, body });
        let mut w = &c;
        write!(
            w,
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{answer}",
            answer.len()
        )
        .unwrap();
    }
}

#[test]
fn webhooks_post_generic_slack_and_wechat_bodies() {
    let (port, got) = http_server("{\"errcode\":0,\"errmsg\":\"ok\"}");
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token");
    std::fs::write(&token, "Bearer t0ken-secret\n").unwrap();
    let c = cfg(&format!(
        r#"
[[sink]]
type = "webhook"
name = "generic"
url = "http://127.0.0.1:{port}/generic/SECRETPATH"
headers = {{ Authorization = "file:{}", X-Source = "netrec-test" }}
[[sink]]
type = "webhook"
name = "slack"
format = "slack"
url = "http://127.0.0.1:{port}/services/T0/B0/XYZ"
[[sink]]
type = "webhook"
name = "wechat"
format = "wechat"
url = "http://127.0.0.1:{port}/cgi-bin/webhook/send?key=KEY123"
"#,
        token.display()
    ));
    let (reports, _) = record_with(&c, &["brute_force_ssh.pcap"], Duration::from_secs(10));
    let expected = golden("brute_force_ssh");
    assert_eq!(expected.len(), 1);
    for r in &reports {
        assert_eq!((r.delivered, r.dropped(), r.failures), (1, 0, 0), "{r}");
    }
    let got = got.lock().unwrap().clone();
    assert_eq!(got.len(), 3, "{got:?}");
    let by =
        |p: &str| got.iter().find(|r| r.target.starts_with(p)).unwrap_or_else(|| panic!("no request to {p}"));
    for r in &got {
        assert_eq!(r.header("content-type"), Some("application/json"));
    }

    // Generic: exactly the golden alert JSON plus "event".
    let g = by("/generic/SECRETPATH");
    assert_eq!(g.header("authorization"), Some("Bearer t0ken-secret"));
    assert_eq!(g.header("x-source"), Some("netrec-test"));
    assert_first_report_of(&g.json(), &expected[0]);

    // Slack: text + Block Kit blocks.
    let s = by("/services/T0/B0/XYZ").json();
    let text = s["text"].as_str().unwrap();
    assert!(text.starts_with("[HIGH] brute-force: possible brute force from 203.0.113.200"), "{text}");
    let blocks = s["blocks"].as_array().unwrap();
    assert_eq!(blocks[0]["type"], "header");
    assert_eq!(blocks[0]["text"]["type"], "plain_text");
    assert_eq!(blocks[1]["type"], "section");
    let fields: Vec<&str> =
        blocks[1]["fields"].as_array().unwrap().iter().map(|f| f["text"].as_str().unwrap()).collect();
    assert!(fields.contains(&"*Sources*\n203.0.113.200"), "{fields:?}");
    assert!(fields.contains(&"*Targets*\n10.77.0.60"), "{fields:?}");
    assert!(fields.contains(&"*Ports*\n22"), "{fields:?}");
    assert_eq!(s.as_object().unwrap().len(), 2);

    // WeChat Work: markdown message.
    let w = by("/cgi-bin/webhook/send?key=KEY123").json();
    assert_eq!(w["msgtype"], "markdown");
    let content = w["markdown"]["content"].as_str().unwrap();
    assert!(content.starts_with("## <font color=\"warning\">[HIGH] brute-force:"), "{content}");
    assert!(content.contains("> **Sources**: 203.0.113.200\n"), "{content}");
    assert!(content.len() <= 4096);
}

#[test]
fn dead_and_slow_endpoints_drop_counted_while_recording_completes() {
    // A closed port (connection refused) and a server that accepts and never answers.
    let closed = free_port();
    let hole = TcpListener::bind("127.0.0.1:0").unwrap();
    let hole_port = hole.local_addr().unwrap().port();
    let held = Arc::new(Mutex::new(Vec::new()));
    let held2 = held.clone();
    std::thread::spawn(move || {
        for c in hole.incoming().flatten() {
            held2.lock().unwrap().push(c);
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let eve = dir.path().join("eve.json");
    let c = cfg(&format!(
        r#"
[delivery]
retries = 2
backoff_initial = "20ms"
backoff_max = "50ms"
dedup_window = "0s"
[[sink]]
type = "webhook"
name = "dead"
url = "http://127.0.0.1:{closed}/x"
[[sink]]
type = "webhook"
name = "slow"
url = "http://127.0.0.1:{hole_port}/x"
timeout = "60s"
[[sink]]
type = "eve"
name = "file"
path = "{}"
"#,
        eve.display()
    ));
    let pcaps = ["demo.pcap"];
    let n_alerts = golden("demo").len() as u64;
    let t = Instant::now();
    let (reports, took) = record_with(&c, &pcaps, Duration::from_millis(500));
    let r = |name: &str| reports.iter().find(|r| r.name == name).unwrap().clone();
    // The slow sink holds each attempt for 60 s (5 alerts x 3 attempts): the recording must not
    // wait for it, and finishing waits 0.5 s plus a 0.5 s grace, not for the stuck request.
    assert!(took < Duration::from_secs(30), "recording took {took:?}");
    let finishing = t.elapsed() - took;
    assert!(finishing < Duration::from_secs(5), "finish was not bounded: {finishing:?}");
    let dead = r("dead");
    assert_eq!(dead.delivered, 0, "{dead}");
    assert_eq!(dead.dropped_failed, n_alerts, "{dead}");
    assert_eq!(dead.failures, 3 * n_alerts, "{dead}");
    let slow = r("slow");
    assert_eq!(slow.delivered, 0, "{slow}");
    assert_eq!(slow.dropped(), n_alerts, "{slow}");
    assert!(slow.dropped_shutdown > 0, "{slow}");
    // The healthy sink got everything.
    let file = r("file");
    assert_eq!((file.delivered, file.dropped()), (n_alerts, 0), "{file}");
    assert_eq!(std::fs::read_to_string(&eve).unwrap().lines().count() as u64, n_alerts);
}

/// Parse `<PRI>1 TS HOST APP PROCID MSGID SD MSG`; returns (pri, ts, host, app, procid, msgid, rest).
fn split5424(m: &str) -> (u16, String, String, String, String, String, String) {
    assert!(m.starts_with('<'), "{m}");
    let close = m.find('>').unwrap();
    let pri: u16 = m[1..close].parse().unwrap();
    let rest = &m[close + 1..];
    let mut it = rest.splitn(7, ' ');
    let mut next = || it.next().unwrap().to_string();
    let version = next();
    assert_eq!(version, "1", "{m}");
    (pri, next(), next(), next(), next(), next(), next())
}

fn assert_rfc3339_micro(ts: &str) {
    let b = ts.as_bytes();
    assert_eq!(b.len(), 27, "{ts}");
    for (i, c) in b.iter().enumerate() {
        match i {
            4 | 7 => assert_eq!(*c, b'-'),
            10 => assert_eq!(*c, b'T'),
            13 | 16 => assert_eq!(*c, b':'),
            19 => assert_eq!(*c, b'.'),
            26 => assert_eq!(*c, b'Z'),
            _ => assert!(c.is_ascii_digit(), "{ts}"),
        }
    }
}

#[test]
fn syslog_udp_rfc5424_and_cef() {
    let a = UdpSocket::bind("127.0.0.1:0").unwrap();
    let b = UdpSocket::bind("127.0.0.1:0").unwrap();
    for s in [&a, &b] {
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    }
    let c = cfg(&format!(
        r#"
[[sink]]
type = "syslog"
name = "plain"
address = "udp://{}"
hostname = "sensor-1"
[[sink]]
type = "syslog"
name = "cef"
address = "udp://{}"
format = "cef"
facility = "local3"
hostname = "sensor-1"
"#,
        a.local_addr().unwrap(),
        b.local_addr().unwrap()
    ));
    let (reports, _) = record_with(&c, &["brute_force_ssh.pcap"], Duration::from_secs(10));
    assert!(reports.iter().all(|r| r.delivered == 1), "{reports:?}");
    let golden = &golden("brute_force_ssh")[0];
    let mut buf = [0u8; 8192];

    let n = a.recv(&mut buf).unwrap();
    let m = std::str::from_utf8(&buf[..n]).unwrap();
    let (pri, ts, host, app, procid, msgid, rest) = split5424(m);
    assert_eq!(pri, 16 * 8 + 3, "local0.err for a high alert: {m}");
    assert_rfc3339_micro(&ts);
    assert!(ts.starts_with("2026-01-01T00:00:01.081745"), "{ts}"); // first_ts 1767225601.081745780
    assert_eq!((host.as_str(), app.as_str(), msgid.as_str()), ("sensor-1", "netrec", "alert"));
    assert_eq!(procid, std::process::id().to_string());
    assert!(
        rest.starts_with("[netrec@32473 rule_id=\"brute-force\" class=\"brute_force\" severity=\"high\""),
        "{rest}"
    );
    assert!(
        rest.contains(" src=\"203.0.113.200\"")
            && rest.contains(" dst=\"10.77.0.60\" ")
            && rest.contains(" dst_port=\"22\""),
        "{rest}"
    );
    let msg = &rest[rest.find("] ").unwrap() + 2..];
    assert_eq!(msg, format!("[HIGH] brute-force: {}", golden["message"].as_str().unwrap()));

    let n = b.recv(&mut buf).unwrap();
    let m = std::str::from_utf8(&buf[..n]).unwrap();
    let (pri, _, _, _, _, msgid, rest) = split5424(m);
    assert_eq!(pri, 19 * 8 + 3, "{m}");
    assert_eq!(msgid, "alert");
    let cef = rest.strip_prefix("- ").expect("no structured data with CEF");
    let fields: Vec<&str> = cef.splitn(8, '|').collect();
    assert_eq!(
        &fields[..7],
        [
            "CEF:0",
            "netrec",
            "netrec",
            env!("CARGO_PKG_VERSION"),
            "9000012",
            "NETREC brute_force brute-force (T1110)",
            "8"
        ]
    );
    let ext = fields[7];
    // The first report comes at the threshold: the golden message says "20 connections" (the
    // final count, 60, arrives with updates, which this sink does not get by default).
    assert!(golden["message"].as_str().unwrap().contains(": 20 connections"));
    for kv in [
        "rt=1767225601081",
        "src=203.0.113.200",
        "dst=10.77.0.60",
        "dpt=22",
        "proto=TCP",
        "cs1=brute-force",
        "cnt=20",
        "act=alert",
    ] {
        assert!(ext.split(' ').any(|f| f == kv), "{kv} not in {ext}");
    }
}

#[test]
fn syslog_tcp_uses_octet_counting() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let reader = std::thread::spawn(move || {
        let (mut c, _) = l.accept().unwrap();
        c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut all = Vec::new();
        let _ = c.read_to_end(&mut all);
        all
    });
    let c = cfg(&format!("[[sink]]\ntype = \"syslog\"\naddress = \"tcp://{addr}\"\ndedup_window = \"0s\"\n"));
    let (reports, _) = record_with(&c, &["demo.pcap"], Duration::from_secs(10));
    let n = golden("demo").len();
    assert_eq!(reports[0].delivered as usize, n);
    drop(reports); // the worker (and its connection) ended with finish
    let all = reader.join().unwrap();
    let mut rest = &all[..];
    let mut frames = 0;
    while !rest.is_empty() {
        let sp = rest.iter().position(|b| *b == b' ').unwrap();
        let len: usize = std::str::from_utf8(&rest[..sp]).unwrap().parse().unwrap();
        let msg = std::str::from_utf8(&rest[sp + 1..sp + 1 + len]).unwrap();
        assert!(msg.starts_with('<') && msg.contains(">1 "), "{msg}");
        assert!(!msg.contains('\n'));
        rest = &rest[sp + 1 + len..];
        frames += 1;
    }
    assert_eq!(frames, n);
}

/// Field by field against Suricata's EVE alert schema (names and JSON types).
fn check_eve_record(v: &Value) {
    let ts = v["timestamp"].as_str().unwrap();
    // 2017-04-07T22:24:37.251547+0100
    let b = ts.as_bytes();
    assert_eq!(b.len(), 31, "{ts}");
    assert!(matches!(b[26], b'+' | b'-') && b[19] == b'.' && b[10] == b'T', "{ts}");
    assert!(v["flow_id"].as_u64().is_some_and(|f| f > 0 && f < 1 << 53), "{v}");
    assert_eq!(v["event_type"], "alert");
    for k in ["src_ip", "dest_ip"] {
        v[k].as_str().unwrap().parse::<std::net::IpAddr>().unwrap_or_else(|_| panic!("{k} in {v}"));
    }
    for k in ["src_port", "dest_port"] {
        if let Some(p) = v.get(k) {
            assert!(p.as_u64().is_some_and(|p| p <= 65535), "{k} in {v}");
        }
    }
    assert!(["TCP", "UDP", "ICMP", "IP"].contains(&v["proto"].as_str().unwrap()), "{v}");
    let a = &v["alert"];
    assert_eq!(a["action"], "allowed");
    assert_eq!(a["gid"], 1);
    assert!(a["signature_id"].as_u64().is_some_and(|s| s > 0 && s <= u64::from(u32::MAX)));
    assert!(a["rev"].as_u64().is_some());
    assert!(!a["signature"].as_str().unwrap().is_empty());
    assert!(!a["category"].as_str().unwrap().is_empty());
    assert!((1..=3).contains(&a["severity"].as_u64().unwrap()));
    if let Some(c) = v.get("community_id") {
        let c = c.as_str().unwrap();
        assert!(c.starts_with("1:") && c.len() == 30, "{c}");
    }
}

#[test]
fn eve_file_and_socket_records_follow_the_eve_alert_schema() {
    let dir = tempfile::tempdir().unwrap();
    let eve = dir.path().join("eve.json");
    let sock = dir.path().join("eve.sock");
    let listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    let reader = std::thread::spawn(move || {
        let (c, _) = listener.accept().unwrap();
        BufReader::new(c).lines().map(|l| l.unwrap()).collect::<Vec<_>>()
    });
    let c = cfg(&format!(
        "[[sink]]\ntype = \"eve\"\npath = \"{}\"\n[[sink]]\ntype = \"eve\"\nsocket = \"unix_stream:{}\"\n",
        eve.display(),
        sock.display()
    ));
    let (reports, _) = record_with(&c, &["brute_force_ssh.pcap", "syn_flood.pcap"], Duration::from_secs(10));
    assert!(reports.iter().all(|r| r.delivered == 2 && r.dropped() == 0), "{reports:?}");
    let file: Vec<Value> =
        std::fs::read_to_string(&eve).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let socket: Vec<Value> =
        reader.join().unwrap().iter().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(file, socket);
    assert_eq!(file.len(), 2);
    for v in &file {
        check_eve_record(v);
    }
    let (bf, syn) = (&file[0], &file[1]);
    // A single-tuple alert (one source, one target, one port).
    assert_eq!(bf["src_ip"], "203.0.113.200");
    assert_eq!(bf["dest_ip"], "10.77.0.60");
    assert_eq!((bf["src_port"].as_u64(), bf["dest_port"].as_u64()), (Some(0), Some(22)));
    assert_eq!(bf["proto"], "TCP");
    // Computed with the Community ID reference implementation (pip `communityid`): tcp 203.0.113.200:0 -> 10.77.0.60:22.
    assert_eq!(bf["community_id"], "1:3QJjW4Ibv14fcJaB3X7iXlj3524=");
    assert_eq!(bf["timestamp"], "2026-01-01T00:00:01.081745+0000");
    assert_eq!(bf["alert"]["signature_id"], 9_000_012);
    assert_eq!(bf["alert"]["severity"], 1);
    assert_eq!(bf["alert"]["category"], "Attempted User Privilege Gain");
    assert_first_report_of(&bf["netrec"], &golden("brute_force_ssh")[0]);
    // An aggregate alert: 4175 sources, no tuple => no ports, no community_id.
    assert_eq!(syn["alert"]["signature_id"], 9_000_001);
    assert_eq!(syn["proto"], "TCP");
    // First of the alert's (sorted) source list at the time of the first report.
    assert_eq!(syn["src_ip"], syn["netrec"]["src"][0]);
    assert_eq!(syn["dest_ip"], "10.77.0.10");
    assert!(syn.get("community_id").is_none() && syn.get("src_port").is_none());
    assert_eq!(syn["dest_port"], 80);
    assert_eq!(syn["alert"]["category"], "Attempted Denial of Service");
}

fn python_with_aiosmtpd() -> String {
    for py in ["python3", "/usr/bin/python3"] {
        let ok = std::process::Command::new(py)
            .args(["-c", "import aiosmtpd"])
            .output()
            .is_ok_and(|o| o.status.success());
        if ok {
            return py.to_string();
        }
    }
    panic!("python3 with aiosmtpd not found: apt-get install python3-aiosmtpd (.ci/run installs it)");
}

#[test]
fn email_digest_through_aiosmtpd() {
    let py = python_with_aiosmtpd();
    let port = free_port();
    let mut server = std::process::Command::new(&py)
        .args([
            "-u",
            "-m",
            "aiosmtpd",
            "-n",
            "-l",
            &format!("127.0.0.1:{port}"),
            "-c",
            "aiosmtpd.handlers.Debugging",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start aiosmtpd");
    let t = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(t.elapsed() < Duration::from_secs(15), "aiosmtpd did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    let c = cfg(&format!(
        r#"
[[sink]]
type = "email"
server = "127.0.0.1"
port = {port}
tls = "none"
from = "netrec <netrec@example.org>"
to = ["soc@example.org", "oncall@example.org"]
digest_interval = "60s"
dedup_window = "0s"
"#
    ));
    let (reports, _) = record_with(&c, &["demo.pcap"], Duration::from_secs(15));
    let n = golden("demo").len() as u64;
    assert_eq!((reports[0].delivered, reports[0].dropped()), (n, 0), "{}", reports[0]);
    // Debugging prints each message; stop the server we started, then read what it printed.
    let _ = server.kill();
    let out = server.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(text.matches("---------- MESSAGE FOLLOWS ----------").count(), 1, "one digest: {text}");
    assert!(text.contains(&format!("Subject: [netrec] {n} alerts")), "{text}");
    assert!(text.contains("From: netrec <netrec@example.org>"), "{text}");
    assert!(text.contains("To: soc@example.org, oncall@example.org"), "{text}");
    for a in golden("demo") {
        let rule = a["rule_id"].as_str().unwrap();
        assert!(text.contains(&format!("] {rule}: ")), "{rule} missing: {text}");
    }
}

#[test]
fn example_config_parses_and_documents_every_key() {
    let path = repo_root().join("docs/config.example.toml");
    let c = DeliveryConfig::load(&path).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.sinks.len(), 7);
    assert_eq!(c.metrics, Some("127.0.0.1:9477".parse().unwrap()));
    let text = std::fs::read_to_string(&path).unwrap();
    for (section, keys) in netrec_recorder::sinks::config::known_keys() {
        for k in keys {
            let shown = text.lines().any(|l| {
                // Alternatives that cannot be set together are shown commented out.
                let l = l.trim_start();
                let l = l.strip_prefix("# ").unwrap_or(l);
                l.starts_with(&format!("{k} ="))
                    || l.starts_with(&format!("[{k}]"))
                    || l.starts_with(&format!("[[{k}]]"))
            });
            assert!(shown, "key `{k}` of {section} is not documented in docs/config.example.toml");
        }
    }
}

fn write(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn bad_config_is_file_line_col_and_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let bad = write(
        dir.path(),
        "bad.toml",
        "[delivery]\nretries = 3\n\n[[sink]]\ntype = \"webhook\"\nurl = \"ftp://x\"\n",
    );
    let o = netrec(&["record", "-i", "lo", "--config", s(&bad)]);
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert_eq!(
        stderr(&o).trim_end(),
        format!("netrec: {}:6:7: `url`: must start with http:// or https://", bad.display())
    );
    // analyze checks the delivery configuration before analyzing anything.
    let db = dir.path().join("a.sqlite");
    let o = netrec(&[
        "analyze",
        s(&fixture("pcap/demo.pcap")),
        "--db",
        s(&db),
        "-q",
        "--deliver",
        "--config",
        s(&bad),
    ]);
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert!(stderr(&o).starts_with(&format!("netrec: {}:6:7: ", bad.display())), "{}", stderr(&o));
    assert!(!db.exists(), "analysis ran despite the bad configuration");
    let o = netrec(&["analyze", s(&fixture("pcap/demo.pcap")), "--db", s(&db), "--deliver"]);
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).starts_with("netrec: --deliver needs a sink"), "{}", stderr(&o));
    let o = netrec(&["record", "-i", "lo", "--syslog", "localhost:514"]);
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).starts_with("netrec: --syslog: "), "{}", stderr(&o));
}

#[test]
fn analyze_deliver_sends_the_alerts_it_just_analyzed() {
    let dir = tempfile::tempdir().unwrap();
    let eve = dir.path().join("eve.json");
    let db = dir.path().join("a.sqlite");
    let pcap = fixture("pcap/demo.pcap");
    let args = ["analyze", s(&pcap), "--db", s(&db), "-q", "--deliver", "--eve", s(&eve)];
    let o = netrec(&args);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let lines: Vec<Value> =
        std::fs::read_to_string(&eve).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let want = golden("demo");
    assert_eq!(lines.len(), want.len());
    for (got, want) in lines.iter().zip(&want) {
        check_eve_record(got);
        assert_eq!(got["netrec"]["rule_id"], want["rule_id"]);
        assert_eq!(got["netrec"]["first_ts"], want["first_ts"]);
    }
    assert!(stderr(&o).contains("sink eve (eve): 5 delivered"), "{}", stderr(&o));
    // Already in the database: nothing new analyzed, nothing delivered again.
    let o = netrec(&args);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(std::fs::read_to_string(&eve).unwrap().lines().count(), want.len());
}

#[test]
fn syslog_unix_datagram() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log.sock");
    let sock = std::os::unix::net::UnixDatagram::bind(&path).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let c = cfg(&format!(
        "[[sink]]\ntype = \"syslog\"\naddress = \"unix://{}\"\nfacility = \"auth\"\n",
        path.display()
    ));
    let (reports, _) = record_with(&c, &["brute_force_ssh.pcap"], Duration::from_secs(10));
    assert_eq!(reports[0].delivered, 1, "{}", reports[0]);
    let mut buf = [0u8; 8192];
    let n = sock.recv(&mut buf).unwrap();
    let (pri, _, _, app, _, msgid, rest) = split5424(std::str::from_utf8(&buf[..n]).unwrap());
    assert_eq!((pri, app.as_str(), msgid.as_str()), (4 * 8 + 3, "netrec", "alert"));
    assert!(rest.starts_with("[netrec@32473 rule_id=\"brute-force\""), "{rest}");
}

#[test]
fn webhook_secrets_never_reach_the_output() {
    // A dead endpoint whose URL carries a token: the failure is reported, the token is not.
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let conf = write(
        dir.path(),
        "d.toml",
        &format!(
            "[delivery]\nretries = 0\n[[sink]]\ntype = \"webhook\"\nname = \"hook\"\nurl = \"http://127.0.0.1:{port}/services/T0/B0/SECRETTOKEN?key=KEYSECRET\"\nheaders = {{ Authorization = \"Bearer HEADERSECRET\" }}\n"
        ),
    );
    let db = dir.path().join("a.sqlite");
    let pcap = fixture("pcap/demo.pcap");
    let o = netrec(&["analyze", s(&pcap), "--db", s(&db), "-q", "--deliver", "--config", s(&conf)]);
    let err = stderr(&o);
    assert_eq!(code(&o), 2, "undelivered alerts change the exit code: {err}");
    assert!(
        err.contains(&format!(
            "sink hook: delivery failed (attempt 1), giving up: http://127.0.0.1:{port}/***: "
        )),
        "{err}"
    );
    assert!(err.contains("sink hook (webhook): 0 delivered, 0 duplicates suppressed, 5 dropped (queue full 0, rate limited 0, failed 5, shutdown 0), 5 failed attempts"), "{err}");
    for secret in ["SECRETTOKEN", "KEYSECRET", "HEADERSECRET", "/services/"] {
        assert!(!err.contains(secret) && !stdout(&o).contains(secret), "{secret} leaked: {err}");
    }
}

/// A test CA and a server certificate for 127.0.0.1/localhost signed by it (openssl CLI).
/// Returns (ca.pem, server cert, server key).
fn test_pki(dir: &Path) -> (std::path::PathBuf, std::path::PathBuf, std::path::PathBuf) {
    let run = |args: &[&str]| {
        let o = std::process::Command::new("openssl")
            .current_dir(dir)
            .args(args)
            .output()
            .expect("openssl (apt openssl)");
        assert!(o.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&o.stderr));
    };
    let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
    run(&[
        &["req", "-x509"][..],
        &ec,
        &["-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=netrec test CA"],
    ]
    .concat());
    run(&[&["req"][..], &ec, &["-keyout", "srv.key", "-out", "srv.csr", "-subj", "/CN=localhost"]].concat());
    std::fs::write(
        dir.join("ext.cnf"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    run(&[
        "x509",
        "-req",
        "-in",
        "srv.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "srv.pem",
        "-days",
        "1",
        "-extfile",
        "ext.cnf",
    ]);
    (dir.join("ca.pem"), dir.join("srv.pem"), dir.join("srv.key"))
}

const HTTPS_SERVER: &str = r#"
import http.server, ssl, sys, json
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers['Content-Length']))
        print(json.dumps({"path": self.path, "body": body.decode()}), flush=True)
        self.send_response(200); self.send_header('Content-Length', '2'); self.end_headers(); self.wfile.write(b'ok')
    def log_message(self, *a): pass
srv = http.server.HTTPServer(('127.0.0.1', 0), H)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER); ctx.load_cert_chain(sys.argv[1], sys.argv[2])
srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
print(srv.server_address[1], flush=True)
srv.serve_forever()
"#;

#[test]
fn webhook_over_https_with_a_private_ca() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, cert, key) = test_pki(dir.path());
    let mut server = std::process::Command::new("python3")
        .args(["-c", HTTPS_SERVER, s(&cert), s(&key)])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python3");
    let mut out = BufReader::new(server.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    let port: u16 = line.trim().parse().expect("HTTPS server port");
    let c = cfg(&format!(
        r#"
[delivery]
retries = 0
[[sink]]
type = "webhook"
name = "private-ca"
url = "https://127.0.0.1:{port}/hook"
ca_file = "{}"
[[sink]]
type = "webhook"
name = "public-roots"
url = "https://127.0.0.1:{port}/other"
"#,
        ca.display()
    ));
    let (reports, _) = record_with(&c, &["brute_force_ssh.pcap"], Duration::from_secs(10));
    let r = |n: &str| reports.iter().find(|r| r.name == n).unwrap().clone();
    assert_eq!((r("private-ca").delivered, r("private-ca").dropped()), (1, 0), "{}", r("private-ca"));
    // The bundled public roots do not trust the test CA: the TLS handshake fails, counted.
    assert_eq!(
        (r("public-roots").delivered, r("public-roots").dropped_failed),
        (0, 1),
        "{}",
        r("public-roots")
    );
    line.clear();
    out.read_line(&mut line).unwrap();
    let _ = server.kill();
    let _ = server.wait();
    let got: Value = serde_json::from_str(&line).unwrap();
    assert_eq!(got["path"], "/hook");
    let body: Value = serde_json::from_str(got["body"].as_str().unwrap()).unwrap();
    assert_first_report_of(&body, &golden("brute_force_ssh")[0]);
}

#[test]
fn email_with_starttls_through_aiosmtpd() {
    let py = python_with_aiosmtpd();
    let dir = tempfile::tempdir().unwrap();
    let (ca, cert, key) = test_pki(dir.path());
    let port = free_port();
    let mut server = std::process::Command::new(&py)
        .args([
            "-u",
            "-m",
            "aiosmtpd",
            "-n",
            "-l",
            &format!("127.0.0.1:{port}"),
            "-c",
            "aiosmtpd.handlers.Debugging",
        ])
        .args(["--tlscert", s(&cert), "--tlskey", s(&key)])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start aiosmtpd");
    let t = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(t.elapsed() < Duration::from_secs(15), "aiosmtpd did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    let c = cfg(&format!(
        "[[sink]]\ntype = \"email\"\nserver = \"127.0.0.1\"\nport = {port}\ntls = \"starttls\"\nca_file = \"{}\"\nfrom = \"netrec@example.org\"\nto = \"soc@example.org\"\ndigest_interval = \"100ms\"\nretries = 0\n",
        ca.display()
    ));
    let (reports, _) = record_with(&c, &["brute_force_ssh.pcap"], Duration::from_secs(15));
    assert_eq!((reports[0].delivered, reports[0].dropped()), (1, 0), "{}", reports[0]);
    let _ = server.kill();
    let out = server.wait_with_output().unwrap();
    // Unfold folded header lines (RFC 5322 §2.2.3).
    let text = String::from_utf8_lossy(&out.stdout).replace("\r\n ", " ").replace("\n ", " ");
    // aiosmtpd requires STARTTLS before accepting mail when it has a certificate.
    assert!(
        text.contains("Subject: [netrec] [HIGH] brute-force: possible brute force from 203.0.113.200"),
        "{text}"
    );
}
