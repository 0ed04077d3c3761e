//! Reports from a synthetic database whose contents are known by construction.

use netrec_analyzer::db::{Db, InputInfo, InputStats};
use netrec_analyzer::report::{Report, ReportKind, summary_text};
use netrec_format::model::{
    Alert, DirStats, FlowEnd, FlowKey, FlowRecord, LossRecord, PROTO_ARP, Severity, TcpState, Ts,
};
use serde_json::Value;
use std::collections::BTreeSet;
use std::net::IpAddr;
use std::path::Path;

const S: u64 = 1_000_000_000;
/// 2014-12-09 17:16:00 UTC, a minute boundary.
const T0: u64 = 1_418_145_360;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

#[allow(clippy::too_many_arguments)]
fn flow(
    proto: u16,
    src: &str,
    sport: u16,
    dst: &str,
    dport: u16,
    t: u64,
    pk: (u64, u64),
    rtt_ms: Option<u64>,
    retx: u64,
) -> FlowRecord {
    FlowRecord {
        key: FlowKey {
            proto,
            src_ip: ip(src),
            src_port: sport,
            dst_ip: ip(dst),
            dst_port: dport,
            vlan: 0,
            tunnel_id: 0,
        },
        first_ts: Ts((T0 + t) * S),
        last_ts: Ts((T0 + t + 2) * S),
        fwd: DirStats { packets: pk.0, bytes: pk.0 * 100, retransmissions: retx, ..DirStats::default() },
        rev: DirStats { packets: pk.1, bytes: pk.1 * 1000, ..DirStats::default() },
        tcp_state: if proto == 6 { TcpState::Established } else { TcpState::None },
        // Split the RTT into server and client halves like the flow table does.
        rtt_server_ns: rtt_ms.map(|m| m * 1_000_000 - 100_000),
        rtt_client_ns: rtt_ms.map(|_| 100_000),
        end: FlowEnd::IdleTimeout,
        tunnel: None,
        anomalies: 0,
    }
}

#[allow(clippy::too_many_arguments)]
fn alert(id: u64, class: &str, sev: Severity, src: &str, dst: &str, t: u64, count: u64, msg: &str) -> Alert {
    Alert {
        id,
        rule_id: format!("{class}.default"),
        class: class.into(),
        severity: sev,
        attack_id: "T1046".into(),
        first_ts: Ts((T0 + t) * S),
        last_ts: Ts((T0 + t + 20) * S),
        src: vec![ip(src)],
        src_count: 1,
        dst: vec![ip(dst)],
        dst_count: 1,
        dst_ports: vec![22, 23, 80],
        count,
        stats: vec![("distinct_ports".into(), 3.0)],
        message: msg.into(),
    }
}

const ATTACKER: &str = "203.0.113.66";
const VICTIM: &str = "10.1.1.10";

/// Input 1: a web server with five handshakes (RTT 10..50 ms), a port scan by ATTACKER against
/// VICTIM (two alerts 60 s apart -> one incident), an unrelated flow, ARP and loss records.
/// Input 2: an IPv6 DNS exchange and a critical flood alert with a hostile message.
fn build(path: &Path) -> Db {
    let mut db = Db::open(path).unwrap();
    let mut w = db
        .begin_input(InputInfo {
            path: "cap/one.pcap".into(),
            sha256: "01".repeat(32),
            format: "pcap".into(),
            size_bytes: 9000,
            files: Vec::new(),
        })
        .unwrap()
        .unwrap();
    for (n, rtt) in [10u64, 20, 30, 40, 50].into_iter().enumerate() {
        let retx = if n == 4 { 3 } else { 0 };
        w.add_flow(&flow(
            6,
            "10.1.1.20",
            50000 + n as u16,
            "10.1.1.80",
            443,
            n as u64 * 10,
            (10, 8),
            Some(rtt),
            retx,
        ))
        .unwrap();
    }
    w.add_flow(&flow(6, ATTACKER, 41000, VICTIM, 22, 100, (2, 1), None, 0)).unwrap();
    w.add_flow(&flow(6, ATTACKER, 41001, VICTIM, 23, 101, (1, 1), None, 0)).unwrap();
    w.add_flow(&flow(6, ATTACKER, 41002, VICTIM, 80, 170, (3, 2), None, 0)).unwrap();
    // Same attacker, other host: not evidence for the incident against VICTIM.
    w.add_flow(&flow(6, ATTACKER, 41003, "10.1.1.99", 80, 120, (9, 9), None, 0)).unwrap();
    w.add_alert(&alert(1, "portscan", Severity::Medium, ATTACKER, VICTIM, 100, 12, "scan of 10.1.1.10"))
        .unwrap();
    w.add_alert(&alert(2, "portscan", Severity::High, ATTACKER, VICTIM, 160, 30, "scan continues")).unwrap();
    w.add_loss(&LossRecord {
        ts: Ts((T0 + 60) * S),
        iface: 2,
        kernel_packets: 1000,
        ring_drops: 5,
        writer_drops: 5,
        ..LossRecord::default()
    })
    .unwrap();
    for m in 0..3u64 {
        for _ in 0..(m + 1) * 10 {
            w.add_packet(Ts((T0 + m * 60 + 1) * S), 6, 100);
        }
    }
    w.add_packet(Ts((T0 + 5) * S), PROTO_ARP, 60);
    w.finish(InputStats {
        packets: 61,
        bytes: 6060,
        first_ts: Some(Ts(T0 * S)),
        last_ts: Some(Ts((T0 + 172) * S)),
        decode_anomalies: 1,
        warnings: 0,
    })
    .unwrap();

    let mut w = db
        .begin_input(InputInfo {
            path: "cap/two|<b>.pcapng".into(),
            sha256: "02".repeat(32),
            format: "pcapng".into(),
            size_bytes: 500,
            files: Vec::new(),
        })
        .unwrap()
        .unwrap();
    w.add_flow(&flow(17, "2001:db8::1", 5353, "2001:db8::53", 53, 400, (1, 1), None, 0)).unwrap();
    w.add_alert(&alert(
        1,
        "udp_flood",
        Severity::Critical,
        "2001:db8::1",
        "2001:db8::53",
        400,
        5000,
        "<script>alert('x')</script> | *boom*",
    ))
    .unwrap();
    w.add_packet(Ts((T0 + 400) * S), 17, 80);
    w.add_packet(Ts((T0 + 400) * S), 17, 80);
    w.finish(InputStats {
        packets: 2,
        bytes: 160,
        first_ts: Some(Ts((T0 + 400) * S)),
        last_ts: Some(Ts((T0 + 402) * S)),
        decode_anomalies: 0,
        warnings: 2,
    })
    .unwrap();
    db
}

fn keys(v: &Value) -> BTreeSet<String> {
    v.as_object().unwrap().keys().cloned().collect()
}

fn set(k: &[&str]) -> BTreeSet<String> {
    k.iter().map(|s| s.to_string()).collect()
}

#[test]
fn json_has_the_documented_keys_and_the_right_facts() {
    let dir = tempfile::tempdir().unwrap();
    let db = build(&dir.path().join("r.sqlite"));
    let v: Value = serde_json::from_str(&Report::load(&db, ReportKind::All).unwrap().to_json()).unwrap();
    assert_eq!(keys(&v), set(&["format", "kind", "inputs", "incidents", "traffic", "performance"]));
    assert_eq!(v["format"], "netrec-report/1");
    assert_eq!(v["kind"], "all");
    assert_eq!(
        keys(&v["inputs"][0]),
        set(&[
            "id",
            "path",
            "sha256",
            "format",
            "size_bytes",
            "packets",
            "bytes",
            "first_ts",
            "last_ts",
            "decode_anomalies",
            "warnings"
        ])
    );

    let incs = v["incidents"].as_array().unwrap();
    assert_eq!(incs.len(), 2, "two alerts 60 s apart merge; the flood is its own incident");
    assert_eq!(
        keys(&incs[0]),
        set(&[
            "id",
            "input_id",
            "class",
            "severity",
            "first_ts",
            "last_ts",
            "first_utc",
            "last_utc",
            "duration_s",
            "attackers",
            "targets",
            "alert_count",
            "event_count",
            "peak_rate",
            "rules",
            "attack_ids",
            "alerts",
            "evidence"
        ])
    );
    // Most severe first.
    assert_eq!(incs[0]["class"], "udp_flood");
    assert_eq!(incs[0]["severity"], "critical");
    assert!(incs[0]["evidence"][0]["tcp_state"].is_null(), "UDP flows have no TCP state");
    let scan = &incs[1];
    assert_eq!(scan["severity"], "high", "max of medium and high");
    assert_eq!(scan["alert_count"], 2);
    assert_eq!(scan["event_count"], 42);
    assert_eq!(scan["attackers"], serde_json::json!([ATTACKER]));
    assert_eq!(scan["targets"], serde_json::json!([VICTIM]));
    assert_eq!(scan["first_ts"], format!("{}.000000000", T0 + 100));
    assert_eq!(scan["last_ts"], format!("{}.000000000", T0 + 180));
    assert_eq!(scan["first_utc"], "2014-12-09 17:17:40 UTC");
    assert_eq!(scan["duration_s"], 80.0);
    // Peak: 30 events over 20 s.
    assert_eq!(scan["peak_rate"], 1.5);
    assert_eq!(scan["rules"], serde_json::json!(["portscan.default"]));
    assert_eq!(scan["alerts"].as_array().unwrap().len(), 2);
    assert_eq!(
        keys(&scan["alerts"][0]),
        set(&[
            "alert_id",
            "rule_id",
            "severity",
            "attack_id",
            "first_ts",
            "last_ts",
            "count",
            "dst_ports",
            "message"
        ])
    );
    // Evidence: the three flows to the victim, most packets first; not the flow to 10.1.1.99.
    let ev: Vec<(u64, u64)> = scan["evidence"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["dst_port"].as_u64().unwrap(), f["packets"].as_u64().unwrap()))
        .collect();
    assert_eq!(ev, vec![(80, 5), (22, 3), (23, 2)]);
    assert_eq!(
        keys(&scan["evidence"][0]),
        set(&[
            "flow_id",
            "input_id",
            "proto",
            "src_ip",
            "src_port",
            "dst_ip",
            "dst_port",
            "packets",
            "bytes",
            "first_ts",
            "last_ts",
            "tcp_state",
            "rtt_ms",
            "retransmissions"
        ])
    );

    let t = &v["traffic"];
    assert_eq!(
        keys(t),
        set(&["totals", "protocols", "top_sources", "top_destinations", "top_pairs", "top_ports", "series"])
    );
    assert_eq!(t["totals"]["packets"], 63);
    assert_eq!(t["totals"]["flows"], 10);
    assert_eq!(t["totals"]["inputs"], 2);
    assert_eq!(t["totals"]["warnings"], 2);
    assert_eq!(t["protocols"][0]["proto"], "tcp");
    assert_eq!(t["protocols"][0]["packets"], 60);
    assert_eq!(t["protocols"].as_array().unwrap().len(), 3);
    // 10.1.1.80 answered 5 flows x 8 packets x 1000 bytes: the biggest sender.
    assert_eq!(t["top_sources"][0]["ip"], "10.1.1.80");
    assert_eq!(t["top_sources"][0]["bytes"], 40_000);
    // The heaviest pair: 10.1.1.20 -> 10.1.1.80, 5 flows x (10 + 8) packets.
    assert_eq!(
        (t["top_pairs"][0]["flows"].as_u64(), t["top_pairs"][0]["packets"].as_u64()),
        (Some(5), Some(90))
    );
    assert_eq!(t["top_ports"][0]["port"], 443);
    assert_eq!(t["top_ports"][0]["flows"], 5);
    let series: Vec<(i64, u64)> = t["series"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["minute"].as_i64().unwrap(), p["packets"].as_u64().unwrap()))
        .collect();
    let m0 = T0 as i64;
    assert_eq!(series, vec![(m0, 11), (m0 + 60, 20), (m0 + 120, 30), (m0 + 360, 2)]);

    let p = &v["performance"];
    assert_eq!(
        keys(p),
        set(&["servers", "tcp", "capture_loss", "slowest_handshakes", "most_retransmissions"])
    );
    let srv = &p["servers"][0];
    assert_eq!(srv["server"], "10.1.1.80:443");
    assert_eq!(srv["samples"], 5);
    // Nearest rank over {10,20,30,40,50}: p50 = 3rd = 30, p90 = p99 = 5th = 50.
    assert_eq!(
        (srv["p50_ms"].as_f64(), srv["p90_ms"].as_f64(), srv["p99_ms"].as_f64()),
        (Some(30.0), Some(50.0), Some(50.0))
    );
    assert_eq!(p["tcp"]["retransmissions"], 3);
    assert_eq!(p["tcp"]["flows_with_retransmissions"], 1);
    assert_eq!(p["capture_loss"]["drop_rate"], 0.01);
    assert_eq!(p["slowest_handshakes"][0]["rtt_ms"], 50.0);
    assert_eq!(p["most_retransmissions"][0]["retransmissions"], 3);
}

#[test]
fn kinds_select_sections() {
    let dir = tempfile::tempdir().unwrap();
    let db = build(&dir.path().join("r.sqlite"));
    for (kind, present) in [
        (ReportKind::Incidents, "incidents"),
        (ReportKind::Traffic, "traffic"),
        (ReportKind::Performance, "performance"),
    ] {
        let v: Value = serde_json::from_str(&Report::load(&db, kind).unwrap().to_json()).unwrap();
        let mut expect = set(&["format", "kind", "inputs"]);
        expect.insert(present.to_owned());
        assert_eq!(keys(&v), expect, "{kind:?}");
    }
}

#[test]
fn markdown_has_tables_and_no_html() {
    let dir = tempfile::tempdir().unwrap();
    let db = build(&dir.path().join("r.sqlite"));
    let md = Report::load(&db, ReportKind::All).unwrap().to_markdown();
    assert!(md.contains("| id | severity | type |"), "{md}");
    assert!(md.contains("| --- | --- |"));
    assert!(md.contains("## Traffic"));
    // The hostile message is escaped: no raw tag, and its pipe does not split the row.
    assert!(!md.contains("<script>"));
    assert!(md.contains(r"\<script\>"));
    assert!(md.contains(r"\| \*boom\*"));
    // Every table row has as many cells as its header.
    let mut width = None;
    for line in md.lines() {
        if line.starts_with('|') {
            let cells = line.replace(r"\|", "").matches('|').count();
            match width {
                None => width = Some(cells),
                Some(w) => assert_eq!(cells, w, "ragged row: {line}"),
            }
        } else {
            width = None;
        }
    }
}

/// Minimal well-formedness check: every non-void element is closed in order, attributes are
/// quoted, and no raw `<` appears in text.
fn check_balanced(html: &str) {
    const VOID: &[&str] = &["meta", "br", "hr", "img", "input", "link"];
    let body = html.strip_prefix("<!DOCTYPE html>\n").expect("doctype");
    let mut stack: Vec<String> = Vec::new();
    let mut rest = body;
    while let Some(lt) = rest.find('<') {
        let after = &rest[lt + 1..];
        let gt = after.find('>').expect("unterminated tag");
        let tag = &after[..gt];
        assert!(!tag.contains('<'), "'<' inside tag: {tag}");
        assert_eq!(tag.matches('"').count() % 2, 0, "unbalanced quotes in {tag}");
        let self_closing = tag.ends_with('/');
        let name: String =
            tag.trim_start_matches('/').chars().take_while(|c| c.is_ascii_alphanumeric()).collect();
        assert!(!name.is_empty(), "bad tag <{tag}>");
        if let Some(closing) = tag.strip_prefix('/') {
            let open = stack.pop().unwrap_or_else(|| panic!("</{closing}> without opener"));
            assert_eq!(open, name, "</{name}> closes <{open}>");
        } else if !self_closing && !VOID.contains(&name.as_str()) {
            stack.push(name);
        }
        rest = &after[gt + 1..];
    }
    assert!(stack.is_empty(), "unclosed: {stack:?}");
}

#[test]
fn balance_checker_catches_broken_html() {
    for bad in ["<!DOCTYPE html>\n<p><b></p></b>", "<!DOCTYPE html>\n<p>", "<!DOCTYPE html>\n<p a=\"x>y</p>"]
    {
        assert!(std::panic::catch_unwind(|| check_balanced(bad)).is_err(), "{bad}");
    }
    check_balanced("<!DOCTYPE html>\n<p>a<br/><meta x=\"1\"></p>");
}

#[test]
fn html_is_well_formed_self_contained_and_complete() {
    let dir = tempfile::tempdir().unwrap();
    let db = build(&dir.path().join("r.sqlite"));
    let report = Report::load(&db, ReportKind::All).unwrap();
    let html = report.to_html();
    check_balanced(&html);
    assert_eq!(html.matches("<svg ").count(), 2, "series and protocol mix charts");
    assert_eq!(html.matches("</svg>").count(), 2);
    for inc in report.incidents.as_ref().unwrap() {
        assert!(html.contains(&format!("Incident {}: {}", inc.id, inc.class)), "incident {} missing", inc.id);
    }
    assert!(!html.contains("<script"), "data must be escaped");
    assert!(html.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;"));
    assert!(html.contains("cap/two|&lt;b&gt;.pcapng"));
    for external in ["src=", "href=", "@import", "url("] {
        assert!(!html.contains(external), "external reference {external}");
    }
    // The only URL is the SVG namespace.
    assert_eq!(html.matches("http").count(), html.matches("http://www.w3.org/2000/svg").count());
}

#[test]
fn empty_database_renders_everywhere() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path().join("e.sqlite")).unwrap();
    let r = Report::load(&db, ReportKind::All).unwrap();
    check_balanced(&r.to_html());
    assert!(r.to_table().contains("No analyzed inputs."));
    assert!(r.to_markdown().contains("No incidents."));
    let v: Value = serde_json::from_str(&r.to_json()).unwrap();
    assert_eq!(v["traffic"]["totals"]["packets"], 0);
    assert!(summary_text(&db).unwrap().starts_with("Incidents: 0\n"));
}

#[test]
fn every_format_is_deterministic() {
    let dir = tempfile::tempdir().unwrap();
    let a = build(&dir.path().join("a.sqlite"));
    let b = build(&dir.path().join("b.sqlite"));
    let render = |db: &Db| {
        let r = Report::load(db, ReportKind::All).unwrap();
        [r.to_json(), r.to_markdown(), r.to_html(), r.to_table(), summary_text(db).unwrap()]
    };
    let (ra, rb) = (render(&a), render(&b));
    assert_eq!(ra, rb);
    assert_eq!(ra, render(&a), "twice from the same db");
}

#[test]
fn table_and_summary_put_incidents_first() {
    let dir = tempfile::tempdir().unwrap();
    let db = build(&dir.path().join("r.sqlite"));
    let t = Report::load(&db, ReportKind::All).unwrap().to_table();
    assert!(t.contains("Handshake RTT per server (ms):"));
    assert!(t.find("Incidents (2)").unwrap() < t.find("Traffic").unwrap());
    let s = summary_text(&db).unwrap();
    let lines: Vec<&str> = s.lines().collect();
    assert_eq!(lines[0], "Incidents: 2");
    assert!(lines[1].starts_with("  [critical] udp_flood 2001:db8::1 -> 2001:db8::53"), "{s}");
    assert!(lines[2].starts_with(&format!("  [high] portscan {ATTACKER} -> {VICTIM}")), "{s}");
    assert!(lines[3].starts_with("Traffic: 63 packets"), "{s}");
}
