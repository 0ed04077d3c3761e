//! Issue #4 acceptance, generated fixtures: `netrec alerts --format jsonl` on every `fixtures/pcap/*.pcap`
//! equals `fixtures/expected/<stem>.alerts.jsonl` byte for byte, and a per-protocol flow summary of
//! `netrec flows --format jsonl` equals `fixtures/expected/<stem>.flows.json`.
//! `NETREC_BLESS=1 cargo test --test golden_alerts` rewrites the expected files.
//!
//! Independently of the golden files, the alert classes, sources and targets are checked against the
//! generator's ground truth (fixtures/README.md, "must raise"), and benign captures must raise nothing.

mod common;

use common::*;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::OnceLock;

/// One fixture's outputs; the binary runs once per mode and the results are shared by every test.
struct Run {
    stem: String,
    alerts: Vec<u8>,
    /// A second `alerts` run, for the determinism check.
    alerts_again: Vec<u8>,
    alerts_stderr: String,
    flows: Vec<u8>,
    flows_ok: bool,
    alerts_ok: bool,
}

fn fixtures() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(fixture("pcap"))
        .expect("read fixtures/pcap")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "pcap"))
        .collect();
    v.sort();
    v
}

fn alert_args(path: &std::path::Path) -> Vec<String> {
    let mut a = vec!["alerts".to_string(), "--format".into(), "jsonl".into()];
    if path.file_stem().is_some_and(|s| s == "blocklist") {
        a.push("--rules".into());
        a.push(fixture("rules/blocklist.toml").display().to_string());
    }
    a.push(path.display().to_string());
    a
}

fn run_one(path: PathBuf) -> Run {
    let args = alert_args(&path);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let a1 = netrec(&args);
    let a2 = netrec(&args);
    let f = netrec(&["flows", "--format", "jsonl", path.to_str().expect("utf-8 path")]);
    Run {
        stem: path.file_stem().expect("stem").to_string_lossy().into_owned(),
        alerts_ok: a1.status.code() == Some(0) && a2.status.code() == Some(0),
        alerts_stderr: stderr(&a1),
        alerts: a1.stdout,
        alerts_again: a2.stdout,
        flows_ok: f.status.code() == Some(0),
        flows: f.stdout,
    }
}

/// All fixtures, run on two threads (the binary is single-threaded; the machine is shared).
fn runs() -> &'static [Run] {
    static RUNS: OnceLock<Vec<Run>> = OnceLock::new();
    RUNS.get_or_init(|| {
        let files = fixtures();
        assert!(files.len() >= 25, "only {} fixtures in fixtures/pcap", files.len());
        let (even, odd): (Vec<_>, Vec<_>) = files.into_iter().enumerate().partition(|(i, _)| i % 2 == 0);
        let mut out: Vec<Run> = std::thread::scope(|s| {
            let h = s.spawn(|| odd.into_iter().map(|(_, p)| run_one(p)).collect::<Vec<_>>());
            let mut v: Vec<Run> = even.into_iter().map(|(_, p)| run_one(p)).collect();
            v.extend(h.join().expect("runner thread"));
            v
        });
        out.sort_by(|a, b| a.stem.cmp(&b.stem));
        out
    })
}

fn run(stem: &str) -> &'static Run {
    runs().iter().find(|r| r.stem == stem).unwrap_or_else(|| panic!("no fixture {stem}.pcap"))
}

fn parse_lines(bytes: &[u8]) -> Vec<Value> {
    String::from_utf8_lossy(bytes)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad json line {l:?}: {e}")))
        .collect()
}

/// Flow count, packets and bytes per protocol, plus totals; BTreeMap keeps the key order fixed.
fn flow_summary(flows: &[Value]) -> Value {
    let mut per: BTreeMap<String, [u64; 3]> = BTreeMap::new();
    for f in flows {
        let proto = f["proto"].as_str().unwrap_or_else(|| panic!("flow without proto: {f}")).to_string();
        let n = |k: &str| f[k].as_u64().unwrap_or_else(|| panic!("flow without {k}: {f}"));
        let e = per.entry(proto).or_default();
        e[0] += 1;
        e[1] += n("fwd_packets") + n("rev_packets");
        e[2] += n("fwd_bytes") + n("rev_bytes");
    }
    let total = per.values().fold([0u64; 3], |t, e| [t[0] + e[0], t[1] + e[1], t[2] + e[2]]);
    let obj = |e: [u64; 3]| serde_json::json!({ "flows": e[0], "packets": e[1], "bytes": e[2] });
    let by_proto: serde_json::Map<String, Value> = per.into_iter().map(|(k, e)| (k, obj(e))).collect();
    serde_json::json!({ "total": obj(total), "by_proto": by_proto })
}

fn flow_summary_text(r: &Run) -> String {
    let mut s = serde_json::to_string_pretty(&flow_summary(&parse_lines(&r.flows))).expect("json");
    s.push('\n');
    s
}

fn bless() -> bool {
    std::env::var_os("NETREC_BLESS").is_some_and(|v| v == "1")
}

#[test]
fn alerts_and_flow_summaries_equal_expected_files() {
    let dir = fixture("expected");
    let blessing = bless();
    if blessing {
        std::fs::create_dir_all(&dir).expect("create fixtures/expected");
    }
    let mut failures = Vec::new();
    for r in runs() {
        assert!(r.alerts_ok && r.flows_ok, "{}: netrec failed: {}", r.stem, r.alerts_stderr);
        for (name, actual) in [
            (format!("{}.alerts.jsonl", r.stem), r.alerts.clone()),
            (format!("{}.flows.json", r.stem), flow_summary_text(r).into_bytes()),
        ] {
            let path = dir.join(&name);
            if blessing {
                std::fs::write(&path, &actual).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
                continue;
            }
            match std::fs::read(&path) {
                Ok(expected) if expected == actual => {}
                Ok(expected) => failures.push(format!(
                    "{name} differs\n--- expected\n{}--- actual\n{}",
                    String::from_utf8_lossy(&expected),
                    String::from_utf8_lossy(&actual)
                )),
                Err(e) => failures.push(format!("{name}: missing expected file ({e}); run NETREC_BLESS=1")),
            }
        }
    }
    if !blessing {
        // A stale expected file (its capture was removed or renamed) is a failure too.
        for e in std::fs::read_dir(&dir).expect("read fixtures/expected") {
            let name = e.expect("dir entry").file_name().to_string_lossy().into_owned();
            let stem = name.split('.').next().unwrap_or_default();
            if !runs().iter().any(|r| r.stem == stem) {
                failures.push(format!("{name}: no fixtures/pcap/{stem}.pcap"));
            }
        }
    }
    assert!(failures.is_empty(), "{} golden mismatches:\n{}", failures.len(), failures.join("\n"));
}

#[test]
fn output_is_deterministic() {
    for r in runs() {
        assert!(!r.alerts.is_empty() || r.stem.starts_with("benign_"), "{}: no output", r.stem);
        assert_eq!(r.alerts, r.alerts_again, "{}: two runs gave different alert bytes", r.stem);
    }
}

/// (class, source, target, target port); `None` = not asserted. From fixtures/README.md.
type Must = (&'static str, Option<&'static str>, Option<&'static str>, Option<u64>);

/// Ground truth per attack fixture: the alerts that must be raised, and classes that may also appear
/// (a FIN/NULL/XMAS probe is itself an illegal flag combination). Anything else is a false positive.
fn ground_truth(stem: &str) -> Option<(Vec<Must>, &'static [&'static str])> {
    let m = |c, s, d, p| -> Must { (c, s, d, p) };
    let flags: &'static [&'static str] = &["tcp_flag_anomaly"];
    Some(match stem {
        "syn_flood" => (vec![m("syn_flood", None, Some("10.77.0.10"), Some(80))], &[]),
        "udp_flood" => (vec![m("udp_flood", None, Some("10.77.0.20"), None)], &[]),
        "icmp_flood" => (vec![m("icmp_flood", None, Some("10.77.0.30"), None)], &[]),
        "amplification_dns" => (vec![m("amplification", None, Some("10.77.0.40"), None)], &[]),
        "amplification_ntp" => (vec![m("amplification", None, Some("10.77.0.41"), None)], &[]),
        "port_scan_syn" => (vec![m("port_scan", Some("198.51.100.23"), Some("10.77.0.70"), None)], &[]),
        "port_scan_ack" | "port_scan_udp" => (vec![m("port_scan", Some("198.51.100.23"), None, None)], &[]),
        "port_scan_fin" | "port_scan_null" | "port_scan_xmas" => {
            (vec![m("port_scan", Some("198.51.100.23"), None, None)], flags)
        }
        "host_sweep_icmp" | "host_sweep_tcp" | "host_sweep_arp" => {
            (vec![m("host_sweep", Some("10.77.0.99"), None, None)], &[])
        }
        "tcp_flag_anomaly" => {
            (vec![m("tcp_flag_anomaly", Some("203.0.113.45"), Some("10.77.0.80"), None)], &[])
        }
        "land" => (vec![m("land", Some("10.77.0.50"), Some("10.77.0.50"), Some(139))], &[]),
        "ip_header_anomaly" => {
            (vec![m("ip_header_anomaly", Some("198.51.100.99"), Some("10.77.0.85"), None)], &[])
        }
        "fragment_anomaly" => (vec![m("fragment_anomaly", None, Some("10.77.0.90"), None)], &[]),
        "brute_force_ssh" => {
            (vec![m("brute_force", Some("203.0.113.200"), Some("10.77.0.60"), Some(22))], &[])
        }
        "brute_force_ftp" => {
            (vec![m("brute_force", Some("203.0.113.201"), Some("10.77.0.61"), Some(21))], &[])
        }
        "dns_tunnel" => (vec![m("dns_tunnel", Some("10.77.4.62"), Some("10.77.2.53"), Some(53))], &[]),
        "blocklist" => (vec![m("blocklist", Some("10.77.4.21"), Some("203.0.113.66"), Some(4444))], &[]),
        "demo" => (
            vec![
                m("port_scan", Some("198.51.100.23"), Some("10.77.0.70"), None),
                m("host_sweep", Some("10.77.0.99"), None, None),
                m("syn_flood", None, Some("10.77.0.10"), Some(80)),
                m("dns_tunnel", Some("10.77.4.62"), None, None),
                m("brute_force", Some("203.0.113.200"), Some("10.77.0.60"), Some(22)),
            ],
            &[],
        ),
        _ => return None,
    })
}

fn has(v: &Value, field: &str, want: &str) -> bool {
    v[field].as_array().is_some_and(|a| a.iter().any(|x| x.as_str() == Some(want)))
}

fn matches(a: &Value, (class, src, dst, port): Must) -> bool {
    a["class"] == class
        && src.is_none_or(|s| has(a, "src", s))
        && dst.is_none_or(|d| has(a, "dst", d))
        && port.is_none_or(|p| {
            a["dst_ports"].as_array().is_some_and(|ps| ps.iter().any(|x| x.as_u64() == Some(p)))
        })
}

#[test]
fn attack_fixtures_raise_their_class_and_nothing_else() {
    let mut failures = Vec::new();
    let mut attacks = 0;
    for r in runs() {
        let Some((must, allowed)) = ground_truth(&r.stem) else { continue };
        attacks += 1;
        let alerts = parse_lines(&r.alerts);
        for m in &must {
            if !alerts.iter().any(|a| matches(a, *m)) {
                failures.push(format!("{}: no alert {m:?}", r.stem));
            }
        }
        for a in &alerts {
            let class = a["class"].as_str().unwrap_or_default();
            if !must.iter().any(|m| m.0 == class) && !allowed.contains(&class) {
                failures.push(format!("{}: unexpected {class} alert: {a}", r.stem));
            }
        }
        // One incident per attack: the single-scenario fixtures (and the demo's five) raise each once.
        let expected_max = must.len() + allowed.len();
        if alerts.len() > expected_max {
            failures.push(format!("{}: {} alerts, expected at most {expected_max}", r.stem, alerts.len()));
        }
    }
    assert_eq!(attacks, 23, "ground-truth table and fixtures/pcap disagree");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn benign_fixtures_raise_nothing() {
    let benign: Vec<&Run> = runs().iter().filter(|r| r.stem.starts_with("benign_")).collect();
    assert_eq!(benign.len(), 5);
    for r in benign {
        assert!(r.alerts.is_empty(), "{}: false positives:\n{}", r.stem, String::from_utf8_lossy(&r.alerts));
        assert!(r.alerts_stderr.contains(" 0 alerts"), "{}: {}", r.stem, r.alerts_stderr);
    }
}

/// Exact counts the generator guarantees (fixtures/README.md): every anomalous packet is in the incident.
#[test]
fn anomaly_incidents_count_every_anomalous_packet() {
    for (stem, class, count) in [
        ("land", "land", 4),                           // 4 LAND SYNs
        ("ip_header_anomaly", "ip_header_anomaly", 9), // 3 IHL 4 + 3 evil bit + 3 TTL 0
        ("tcp_flag_anomaly", "tcp_flag_anomaly", 25),  // 5 kinds x 5 packets
        ("blocklist", "blocklist", 22),                // the whole 203.0.113.66:4444 connection
    ] {
        let alerts = parse_lines(&run(stem).alerts);
        let a = alerts.iter().find(|a| a["class"] == class).unwrap_or_else(|| panic!("{stem}: no {class}"));
        assert_eq!(a["count"], count, "{stem}: {a}");
    }
}

/// Packets per fixture (fixtures/README.md). Every IP packet lands in exactly one flow; ARP has no flows.
#[test]
fn flows_account_for_every_ip_packet() {
    let packets = [
        ("syn_flood", 11382),
        ("udp_flood", 10000),
        ("icmp_flood", 8400),
        ("amplification_dns", 3000),
        ("port_scan_syn", 2051),
        ("port_scan_udp", 997),
        ("host_sweep_icmp", 266),
        ("tcp_flag_anomaly", 119),
        ("ip_header_anomaly", 69),
        ("fragment_anomaly", 2012),
        ("brute_force_ftp", 1200),
        ("dns_tunnel", 600),
        ("blocklist", 502),
        ("benign_browsing", 5468),
        ("benign_dns_resolver", 5966),
        ("demo", 14215),
        ("host_sweep_arp", 0),
    ];
    for (stem, want) in packets {
        let s = flow_summary(&parse_lines(&run(stem).flows));
        assert_eq!(s["total"]["packets"], want, "{stem}: {s}");
    }
    // Bulk transfer: one TCP flow.
    let s = flow_summary(&parse_lines(&run("benign_bulk_download").flows));
    assert_eq!(
        (s["total"]["flows"].as_u64(), s["by_proto"]["tcp"]["packets"].as_u64()),
        (Some(1), Some(7508))
    );
}

#[test]
fn flow_summary_groups_by_proto() {
    let flows = parse_lines(
        b"{\"proto\":\"tcp\",\"fwd_packets\":3,\"rev_packets\":2,\"fwd_bytes\":100,\"rev_bytes\":50}\n\
          {\"proto\":\"udp\",\"fwd_packets\":1,\"rev_packets\":0,\"fwd_bytes\":60,\"rev_bytes\":0}\n\
          {\"proto\":\"tcp\",\"fwd_packets\":1,\"rev_packets\":1,\"fwd_bytes\":10,\"rev_bytes\":10}\n",
    );
    let s = flow_summary(&flows);
    assert_eq!(s["by_proto"]["tcp"], serde_json::json!({"flows": 2, "packets": 7, "bytes": 170}));
    assert_eq!(s["total"], serde_json::json!({"flows": 3, "packets": 8, "bytes": 230}));
}

/// A payload signature finds exactly the packets whose captured bytes tshark says contain its
/// pattern (`frame contains`), on a capture and on its imported recording alike; with `nocase`
/// the pattern's case does not matter.
#[test]
fn signature_rule_counts_the_packets_tshark_finds() {
    let pcap = fixture("pcap/benign_browsing.pcap");
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("sig.toml");
    std::fs::write(
        &rules,
        "[[rule]]\nid = \"video-host\"\ndetector = \"signature\"\nproto = \"tcp\"\ndst_ports = [80]\n\
         content = \"host: VIDEO.example.com|0d 0a|\"\nnocase = true\ntrack = \"by_src\"\nwindow = \"24h\"\n\
         message = \"request to the video host\"\n",
    )
    .unwrap();
    let run = |input: &std::path::Path| {
        let o =
            netrec(&["alerts", "--no-default-rules", "--rules", s(&rules), "--format", "jsonl", s(input)]);
        assert_eq!(code(&o), 0, "{}", stderr(&o));
        jsonl(&o)
    };
    let alerts = run(&pcap);
    assert!(!alerts.is_empty(), "no signature alert");
    assert!(alerts.iter().all(|a| a["class"] == "signature" && a["rule_id"] == "video-host"), "{alerts:?}");
    let count: u64 = alerts.iter().map(|a| a["count"].as_u64().unwrap()).sum();
    let have_tshark =
        std::process::Command::new("tshark").arg("-v").output().is_ok_and(|o| o.status.success());
    if have_tshark {
        let o = std::process::Command::new("tshark")
            .env("HOME", std::env::temp_dir())
            .args([
                "-n",
                "-r",
                s(&pcap),
                "-Y",
                "tcp.dstport == 80 && frame matches \"(?i)host: video\\\\.example\\\\.com\\r\\n\"",
            ])
            .output()
            .expect("run tshark");
        let expected =
            String::from_utf8_lossy(&o.stdout).lines().filter(|l| !l.trim().is_empty()).count() as u64;
        assert!(expected > 0, "tshark finds no such packet: {}", String::from_utf8_lossy(&o.stderr));
        assert_eq!(count, expected, "signature count vs tshark's matching frames");
    } else {
        assert!(std::env::var_os("CI").is_none(), "CI must have tshark (.ci/run installs it)");
    }
    // The recording keeps the first 128 bytes of each packet, as this capture did: same alerts.
    let segs = dir.path().join("segs");
    let o = netrec(&["import", s(&pcap), "--out", s(&segs), "--no-default-rules", "--rules", s(&rules)]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(run(&segs), alerts, "alerts of the imported recording");
}

/// `netrec flows` past its in-memory limit (forced down to 5000 of the fixtures' 44649 records: 9 runs) spills sorted runs and
/// merges them: for every sort and format the bytes equal the in-memory sort's, and the spill
/// directory is gone afterwards.
#[test]
fn flows_sorted_in_bounded_memory_equal_the_in_memory_sort() {
    let input = fixture("pcap");
    for sort in ["start", "bytes", "packets"] {
        for format in ["jsonl", "csv", "table"] {
            let args = ["flows", s(&input), "--sort", sort, "--format", format];
            let whole = netrec(&args);
            assert_eq!(code(&whole), 0, "{}", stderr(&whole));
            let tmp = tempfile::tempdir().unwrap();
            let o = std::process::Command::new(env!("CARGO_BIN_EXE_netrec"))
                .args(args)
                .env("NETREC_FLOWS_SORT_RECORDS", "5000")
                .env("TMPDIR", tmp.path())
                .output()
                .unwrap();
            assert_eq!(code(&o), 0, "{}", stderr(&o));
            assert!(o.stdout.len() > 10_000, "{sort} {format}: {} bytes", o.stdout.len());
            assert!(
                o.stdout == whole.stdout,
                "{sort} {format}: spilled output differs from the in-memory sort"
            );
            assert_eq!(stderr(&o), stderr(&whole), "{sort} {format}: summary");
            let left: Vec<_> = std::fs::read_dir(tmp.path()).unwrap().collect();
            assert!(left.is_empty(), "{sort} {format}: spill files left: {left:?}");
        }
    }
}
