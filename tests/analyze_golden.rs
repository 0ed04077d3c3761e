//! Issue #9 acceptance: `netrec analyze` of every fixture pcap stores exactly what `netrec flows` /
//! `netrec alerts` print for the same file; re-analysis is idempotent; the demo's reports are
//! deterministic (JSON blessed in fixtures/expected/demo.report.json), well-formed and self-contained.

mod common;

use common::*;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn fixture_pcaps() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(fixture("pcap"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "pcap"))
        .collect();
    v.sort();
    assert!(v.len() >= 20, "fixtures/pcap looks incomplete: {v:?}");
    v
}

fn analyze_quiet(db: &Path, inputs: &[&Path]) {
    analyze_quiet_with(db, inputs, &[]);
}

fn analyze_quiet_with(db: &Path, inputs: &[&Path], extra: &[&str]) {
    let mut args = vec!["analyze", "--quiet", "--db", s(db)];
    args.extend(extra);
    args.extend(inputs.iter().map(|p| s(p)));
    let o = netrec(&args);
    assert_eq!(code(&o), 0, "analyze {inputs:?}: {}", stderr(&o));
    assert!(stdout(&o).is_empty(), "--quiet printed: {}", stdout(&o));
}

/// The flows of one input in `netrec flows` order (start time, then emission), as the same JSON
/// objects `netrec flows --format jsonl` prints (docs/schema.md: same names and values).
fn db_flows(db: &Path, input_id: i64) -> Vec<Value> {
    let conn = db_ro(db);
    let mut st = conn
        .prepare(
            "SELECT proto, src_ip, src_port, dst_ip, dst_port, packets, bytes, fwd_packets, fwd_bytes,
                    fwd_payload_bytes, rev_packets, rev_bytes, rev_payload_bytes, first_ts, last_ts, duration,
                    tcp_state, rtt_ms, retransmissions, vlan, tunnel, \"end\"
             FROM flows WHERE input_id = ?1 ORDER BY first_ts_ns, id",
        )
        .unwrap();
    let names: Vec<String> = st.column_names().map(str::to_owned).collect();
    st.query_map([input_id], |r| {
        let mut m = serde_json::Map::new();
        for (i, n) in names.iter().enumerate() {
            use rusqlite::types::ValueRef;
            let v = match r.get_ref(i)? {
                ValueRef::Null => Value::Null,
                ValueRef::Integer(x) => json!(x),
                ValueRef::Real(x) => json!(x),
                ValueRef::Text(t) => {
                    let t = String::from_utf8_lossy(t).into_owned();
                    // `tunnel` holds the jsonl object as JSON text.
                    if n == "tunnel" {
                        serde_json::from_str(&t).expect("tunnel JSON")
                    } else {
                        Value::String(t)
                    }
                }
                ValueRef::Blob(_) => panic!("blob in flows.{n}"),
            };
            m.insert(n.clone(), v);
        }
        Ok(Value::Object(m))
    })
    .unwrap()
    .map(Result::unwrap)
    .collect()
}

/// The alerts of one input as the comparable subset of `alert_json`, by alert id.
fn db_alerts(db: &Path, input_id: i64) -> Vec<Value> {
    let conn = db_ro(db);
    let mut st = conn
        .prepare(
            "SELECT alert_id, rule_id, class, severity, attack_id, first_ts, last_ts, src, src_count, dst,
                    dst_count, count, message
             FROM alerts WHERE input_id = ?1 ORDER BY alert_id",
        )
        .unwrap();
    let list = |t: String| -> Value {
        if t.is_empty() { json!([]) } else { json!(t.split(',').collect::<Vec<_>>()) }
    };
    st.query_map([input_id], |r| {
        Ok(json!({
            "id": r.get::<_, i64>(0)?,
            "rule_id": r.get::<_, String>(1)?,
            "class": r.get::<_, String>(2)?,
            "severity": r.get::<_, String>(3)?,
            "attack_id": r.get::<_, String>(4)?,
            "first_ts": r.get::<_, String>(5)?,
            "last_ts": r.get::<_, String>(6)?,
            "src": list(r.get(7)?),
            "src_count": r.get::<_, i64>(8)?,
            "dst": list(r.get(9)?),
            "dst_count": r.get::<_, i64>(10)?,
            "count": r.get::<_, i64>(11)?,
            "message": r.get::<_, String>(12)?,
        }))
    })
    .unwrap()
    .map(Result::unwrap)
    .collect()
}

/// `alert_json` reduced to the keys `db_alerts` reads, with address lists sorted (the table stores
/// them sorted, docs/schema.md).
fn comparable_alert(a: &Value) -> Value {
    let sorted = |v: &Value| {
        let mut l: Vec<String> =
            v.as_array().unwrap().iter().map(|x| x.as_str().unwrap().to_owned()).collect();
        l.sort_by_key(|x| x.parse::<std::net::IpAddr>().expect("address"));
        json!(l)
    };
    let mut m = serde_json::Map::new();
    for k in [
        "id",
        "rule_id",
        "class",
        "severity",
        "attack_id",
        "first_ts",
        "last_ts",
        "src_count",
        "dst_count",
        "count",
        "message",
    ] {
        m.insert(k.into(), a[k].clone());
    }
    m.insert("src".into(), sorted(&a["src"]));
    m.insert("dst".into(), sorted(&a["dst"]));
    Value::Object(m)
}

/// Incidents the documented rule makes of these alerts (docs/schema.md, `incidents`): same class
/// and same target list, sorted by start, a new incident after a gap of more than 5 minutes.
fn expected_incidents(alerts: &[Value]) -> usize {
    const GAP: u64 = 5 * 60 * 1_000_000_000;
    let mut groups: BTreeMap<(String, String), Vec<(u64, u64)>> = BTreeMap::new();
    for a in alerts {
        let mut dst: Vec<&str> = a["dst"].as_array().unwrap().iter().map(|x| x.as_str().unwrap()).collect();
        dst.sort();
        let key = (a["class"].as_str().unwrap().to_owned(), dst.join(","));
        let span = (ts_ns(a["first_ts"].as_str().unwrap()), ts_ns(a["last_ts"].as_str().unwrap()));
        groups.entry(key).or_default().push(span);
    }
    let mut n = 0;
    for mut spans in groups.into_values() {
        spans.sort();
        let mut last: Option<u64> = None;
        for (first, end) in spans {
            match last {
                Some(l) if first <= l + GAP => last = Some(l.max(end)),
                _ => {
                    n += 1;
                    last = Some(end.max(first));
                }
            }
        }
    }
    n
}

#[test]
fn every_fixture_db_equals_flows_and_alerts_jsonl() {
    let tmp = tempfile::tempdir().unwrap();
    for pcap in fixture_pcaps() {
        let name = pcap.file_name().unwrap().to_str().unwrap().to_owned();
        let db = tmp.path().join(format!("{name}.sqlite"));
        // blocklist.pcap is meant for the fixture blocklist rules (fixtures/README.md).
        let rules = fixture("rules/blocklist.toml");
        let extra: Vec<&str> = if name == "blocklist.pcap" { vec!["--rules", s(&rules)] } else { vec![] };
        analyze_quiet_with(&db, &[&pcap], &extra);
        let flows_out = netrec(&["flows", "--format", "jsonl", s(&pcap)]);
        assert_eq!(code(&flows_out), 0, "{name}: flows: {}", stderr(&flows_out));
        let flows = jsonl(&flows_out);
        let mut args = vec!["alerts", "--format", "jsonl", s(&pcap)];
        args.extend(&extra);
        let alerts_out = netrec(&args);
        assert_eq!(code(&alerts_out), 0, "{name}: alerts: {}", stderr(&alerts_out));
        let alerts = jsonl(&alerts_out);

        let counts = table_counts(&db);
        assert_eq!(counts["inputs"], 1, "{name}");
        assert_eq!(sql_i64(&db, "SELECT complete FROM inputs WHERE id = 1"), 1, "{name}");
        assert_eq!(counts["flows"] as usize, flows.len(), "{name}: flows rows vs jsonl lines");
        assert_eq!(counts["alerts"] as usize, alerts.len(), "{name}: alerts rows vs jsonl lines");
        assert_eq!(counts["incidents"] as usize, expected_incidents(&alerts), "{name}: incidents");
        assert_eq!(counts["incident_alerts"], counts["alerts"], "{name}: every alert in one incident");
        assert_eq!(
            sql_i64(&db, "SELECT coalesce(sum(alert_count), 0) FROM incidents"),
            counts["alerts"],
            "{name}"
        );
        let events: i64 = alerts.iter().map(|a| a["count"].as_i64().unwrap()).sum();
        assert_eq!(sql_i64(&db, "SELECT coalesce(sum(event_count), 0) FROM incidents"), events, "{name}");
        // Packets read: every packet is counted once in the time series.
        assert_eq!(
            sql_i64(&db, "SELECT packets FROM inputs"),
            sql_i64(&db, "SELECT coalesce(sum(packets), 0) FROM timeseries"),
            "{name}: inputs.packets vs timeseries"
        );

        let rows = db_flows(&db, 1);
        for (i, (row, line)) in rows.iter().zip(&flows).enumerate() {
            assert_eq!(row, line, "{name}: flow {i} (start order) differs between the db and `netrec flows`");
        }
        let rows = db_alerts(&db, 1);
        let lines: Vec<Value> = alerts.iter().map(comparable_alert).collect();
        assert_eq!(rows, lines, "{name}: alerts differ between the db and `netrec alerts`");

        // Ground truth (fixtures/README.md): benign captures raise nothing, attacks raise something.
        if name.starts_with("benign_") {
            assert_eq!(counts["alerts"], 0, "{name} must raise nothing");
        } else {
            assert!(counts["alerts"] > 0, "{name} must raise an alert");
        }
        if name == "blocklist.pcap" {
            // Only the one blocklisted peer. (The README says "exactly one hit"; the engine's by_pair
            // tracking raises one per direction, 2 in all: reported to the lead, not asserted here.)
            assert_eq!(sql_i64(&db, "SELECT count(*) FROM alerts WHERE class <> 'blocklist'"), 0);
            assert_eq!(
                sql_i64(&db, "SELECT count(*) FROM alerts WHERE dst = '203.0.113.66' AND dst_ports = '4444'"),
                1
            );
            assert_eq!(
                sql_i64(
                    &db,
                    "SELECT count(*) FROM alerts WHERE src <> '203.0.113.66' AND dst <> '203.0.113.66'"
                ),
                0
            );
        }
    }
}

#[test]
fn reanalysis_is_idempotent_and_a_new_input_adds_rows() {
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("db.sqlite");
    let demo = fixture("pcap/demo.pcap");
    analyze_quiet(&db, &[&demo]);
    let before = table_counts(&db);
    assert_eq!(before["inputs"], 1);
    assert!(before["flows"] > 0 && before["alerts"] > 0 && before["incidents"] > 0, "{before:?}");

    // Same file again, and a byte-identical copy under another name: both skipped (sha256 identity).
    let copy = tmp.path().join("copy-of-demo.pcap");
    std::fs::copy(&demo, &copy).unwrap();
    for p in [&demo, &copy] {
        let o = netrec(&["analyze", "--db", s(&db), s(p)]);
        assert_eq!(code(&o), 0, "{}", stderr(&o));
        let e = stderr(&o);
        assert!(e.contains(&format!("{}: already in", p.display())) && e.contains("skipped"), "{e}");
        assert!(e.contains("0 inputs analyzed, 1 already present, 0 failed"), "{e}");
        assert_eq!(table_counts(&db), before, "re-analysis of {} changed the database", p.display());
    }

    // A different input adds exactly its own rows.
    let land = fixture("pcap/land.pcap");
    analyze_quiet(&db, &[&land]);
    let after = table_counts(&db);
    let land_flows = jsonl(&netrec(&["flows", "--format", "jsonl", s(&land)])).len() as i64;
    let land_alerts = jsonl(&netrec(&["alerts", "--format", "jsonl", s(&land)])).len() as i64;
    assert!(land_alerts > 0);
    assert_eq!(after["inputs"], 2);
    assert_eq!(after["flows"], before["flows"] + land_flows);
    assert_eq!(after["alerts"], before["alerts"] + land_alerts);
    assert_eq!(sql_i64(&db, "SELECT count(*) FROM flows WHERE input_id = 2"), land_flows);
    assert!(after["incidents"] > before["incidents"]);
    assert_eq!(sql_i64(&db, "SELECT count(*) FROM inputs WHERE complete = 1"), 2);
}

/// The demo analyzed from the repository root, so the stored path is the stable
/// `fixtures/pcap/demo.pcap`.
fn demo_db(dir: &Path, name: &str) -> PathBuf {
    let db = dir.join(name);
    let o = netrec_in(&repo_root(), &["analyze", "--quiet", "--db", s(&db), "fixtures/pcap/demo.pcap"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    db
}

fn report(db: &Path, kind: &str, format: &str) -> String {
    let o = netrec(&["report", "--db", s(db), kind, "--format", format]);
    assert_eq!(code(&o), 0, "report {kind} {format}: {}", stderr(&o));
    stdout(&o)
}

#[test]
fn demo_json_report_is_deterministic_and_matches_the_blessed_file() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (demo_db(tmp.path(), "a.sqlite"), demo_db(tmp.path(), "b.sqlite"));
    let text = report(&a, "all", "json");
    assert_eq!(text, report(&b, "all", "json"), "two analyses of the demo give different reports");
    assert_eq!(text, report(&a, "all", "json"), "the same db gives different reports");
    // -o writes the same bytes.
    let out = tmp.path().join("r.json");
    let o = netrec(&["report", "--db", s(&a), "all", "--format", "json", "-o", s(&out)]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(std::fs::read_to_string(&out).unwrap(), text);

    // Ground truth, independent of the blessed file (fixtures/README.md, demo.pcap row).
    let r: Value = serde_json::from_str(&text).expect("report is JSON");
    assert_eq!(r["format"], "netrec-report/1");
    assert_eq!(r["kind"], "all");
    let inputs = r["inputs"].as_array().unwrap();
    assert_eq!(inputs.len(), 1);
    assert_eq!(inputs[0]["path"], "fixtures/pcap/demo.pcap");
    assert_eq!(inputs[0]["packets"], 14215);
    assert_eq!(inputs[0]["size_bytes"], std::fs::metadata(fixture("pcap/demo.pcap")).unwrap().len());
    use sha2::Digest as _;
    let sha = hex::encode(sha2::Sha256::digest(std::fs::read(fixture("pcap/demo.pcap")).unwrap()));
    assert_eq!(inputs[0]["sha256"], sha.as_str());
    assert_eq!(r["traffic"]["totals"]["packets"], 14215);
    let incidents = r["incidents"].as_array().unwrap();
    let has = |attacker: Option<&str>, target: Option<&str>| {
        incidents.iter().any(|i| {
            let inl = |k: &str, v: Option<&str>| {
                v.is_none_or(|v| i[k].as_array().unwrap().iter().any(|x| x.as_str() == Some(v)))
            };
            inl("attackers", attacker) && inl("targets", target)
        })
    };
    // The five attacks of the demo and nothing else.
    assert!(has(Some("198.51.100.23"), Some("10.77.0.70")), "port scan missing");
    assert!(has(Some("10.77.0.99"), None), "ICMP sweep missing");
    assert!(has(None, Some("10.77.0.10")), "SYN flood missing");
    assert!(has(Some("10.77.4.62"), None), "DNS tunnel missing");
    assert!(has(Some("203.0.113.200"), Some("10.77.0.60")), "SSH brute force missing");
    let classes: BTreeSet<&str> = incidents.iter().map(|i| i["class"].as_str().unwrap()).collect();
    assert_eq!(classes.len(), 5, "exactly five attack classes expected: {classes:?}");
    for i in incidents {
        assert!(!i["alerts"].as_array().unwrap().is_empty(), "incident without alerts: {i}");
        assert!(!i["evidence"].as_array().unwrap().is_empty(), "incident without evidence flows: {i}");
    }

    let blessed = fixture("expected/demo.report.json");
    if std::env::var_os("NETREC_BLESS").is_some() {
        std::fs::create_dir_all(blessed.parent().unwrap()).unwrap();
        std::fs::write(&blessed, &text).unwrap();
    }
    let want = std::fs::read_to_string(&blessed)
        .unwrap_or_else(|e| panic!("{}: {e} (bless with NETREC_BLESS=1)", blessed.display()));
    assert!(
        want == text,
        "demo report differs from {} (bless with NETREC_BLESS=1 after review)",
        blessed.display()
    );
}

/// Checks that every non-void element is closed in order; returns the element names seen.
fn check_tag_balance(html: &str) -> BTreeMap<String, usize> {
    const VOID: &[&str] = &[
        "area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr",
    ];
    let mut stack: Vec<String> = Vec::new();
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let mut rest = html;
    while let Some(i) = rest.find('<') {
        rest = &rest[i..];
        if rest.starts_with("<!--") {
            let end = rest.find("-->").expect("unterminated comment");
            rest = &rest[end + 3..];
            continue;
        }
        let end =
            rest.find('>').unwrap_or_else(|| panic!("unterminated tag at {:?}", &rest[..rest.len().min(40)]));
        let tag = &rest[1..end];
        rest = &rest[end + 1..];
        if tag.starts_with('!') || tag.starts_with('?') {
            continue;
        }
        let closing = tag.starts_with('/');
        let body = tag.trim_start_matches('/');
        let name: String = body
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
            .collect::<String>()
            .to_lowercase();
        assert!(!name.is_empty(), "bad tag <{tag}>");
        // Raw text elements: their content is not markup.
        if !closing && (name == "style" || name == "script") {
            let close = format!("</{name}>");
            let e = rest.find(&close).unwrap_or_else(|| panic!("<{name}> not closed"));
            rest = &rest[e + close.len()..];
            *seen.entry(name).or_default() += 1;
            continue;
        }
        if closing {
            let top = stack.pop().unwrap_or_else(|| panic!("</{name}> without an open element"));
            assert_eq!(top, name, "</{name}> closes <{top}>");
        } else {
            *seen.entry(name.clone()).or_default() += 1;
            if !tag.ends_with('/') && !VOID.contains(&name.as_str()) {
                stack.push(name);
            }
        }
    }
    assert!(stack.is_empty(), "unclosed elements: {stack:?}");
    seen
}

#[test]
fn tag_balance_checker_rejects_broken_html() {
    assert!(std::panic::catch_unwind(|| check_tag_balance("<div><p>x</div></p>")).is_err());
    assert!(std::panic::catch_unwind(|| check_tag_balance("<div><span>x</span>")).is_err());
    assert!(std::panic::catch_unwind(|| check_tag_balance("<b>x</b></i>")).is_err());
    let ok = check_tag_balance(
        "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><style>a>b{}</style></head><body><svg><rect/></svg><br></body></html>",
    );
    assert_eq!(ok["svg"], 1);
}

#[test]
fn demo_html_report_is_well_formed_self_contained_and_lists_every_incident() {
    let tmp = tempfile::tempdir().unwrap();
    let db = demo_db(tmp.path(), "d.sqlite");
    let html = report(&db, "all", "html");
    let seen = check_tag_balance(&html);
    assert!(
        seen.get("svg").copied().unwrap_or(0) >= 2,
        "expected the protocol mix and per-minute charts: {seen:?}"
    );
    assert!(html.contains("<svg"));
    assert_eq!(seen.get("script"), None, "no scripts in the report");
    // No external resources: no URL fetched by src/href/url()/@import (an SVG xmlns is a name, not a fetch).
    for needle in [
        "src=\"http",
        "href=\"http",
        "url(http",
        "url('http",
        "url(\"http",
        "@import",
        "src='http",
        "href='http",
    ] {
        assert!(!html.contains(needle), "external reference {needle:?} in the HTML report");
    }
    let without_xmlns = html.replace("xmlns=\"http://www.w3.org/2000/svg\"", "");
    assert!(
        !without_xmlns.contains("http://") && !without_xmlns.contains("https://"),
        "URL in the HTML report"
    );
    // One entry per incident: every incident class and every incident's attackers/targets appear.
    let conn = db_ro(&db);
    let mut st = conn.prepare("SELECT class, sources, targets FROM incidents ORDER BY id").unwrap();
    let incidents: Vec<(String, String, String)> =
        st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?))).unwrap().map(Result::unwrap).collect();
    assert_eq!(incidents.len(), 5, "{incidents:?}");
    for (class, sources, targets) in &incidents {
        assert!(html.contains(class.as_str()), "incident class {class} missing from the HTML report");
        for ip in sources.split(',').chain(targets.split(',')).filter(|x| !x.is_empty()).take(3) {
            assert!(html.contains(ip), "address {ip} of a {class} incident missing from the HTML report");
        }
    }
}

#[test]
fn demo_markdown_report_has_table_rows() {
    let tmp = tempfile::tempdir().unwrap();
    let db = demo_db(tmp.path(), "d.sqlite");
    let md = report(&db, "all", "md");
    let rows: Vec<&str> = md.lines().filter(|l| l.starts_with('|') && l.ends_with('|')).collect();
    let seps = rows.iter().filter(|l| l.chars().all(|c| matches!(c, '|' | '-' | ':' | ' '))).count();
    assert!(seps >= 3, "expected several Markdown tables:\n{md}");
    assert!(rows.len() > seps * 2, "tables without data rows:\n{md}");
    assert!(!md.contains("<table") && !md.contains("<div"), "Markdown report must contain no HTML");
    for class in ["198.51.100.23", "203.0.113.200", "10.77.0.10"] {
        assert!(md.contains(class), "{class} missing from the Markdown report");
    }
}
