//! SCTP INIT scans (nmap `-sY`) through the whole engine (decoder, flow table, detectors): an
//! INIT opening its flow is a probe for `port_scan` and `host_sweep`; an INIT ACK answering it
//! counts as established/answered (an ABORT, the closed-port answer, does not).

#[path = "../format/tests/decode_builder.rs"]
mod builder;
mod common;

use builder::*;
use common::*;

const SCANNER: [u8; 4] = [10, 3, 0, 9];

/// SCTP common header (checksum 0) with one chunk of type `chunk`.
fn sctp(sp: u16, dp: u16, chunk: u8) -> Vec<u8> {
    let mut h = cat(&[&sp.to_be_bytes(), &dp.to_be_bytes(), &[0, 0, 0, 7], &[0; 4]]);
    // INIT/INIT ACK carry 16 bytes of parameters; ABORT none.
    let body: &[u8] = if chunk == 6 { &[] } else { &[0, 0, 0, 7, 0, 0, 0x10, 0, 0, 1, 0, 1, 0, 0, 0, 1] };
    h.extend_from_slice(&[chunk, 0]);
    h.extend_from_slice(&((4 + body.len()) as u16).to_be_bytes());
    h.extend_from_slice(body);
    h
}

fn frame(src: [u8; 4], dst: [u8; 4], sctp: &[u8]) -> Vec<u8> {
    eth(0x0800, &ipv4(src, dst, 132, sctp))
}

/// Alerts of `frames` (one pcap) with the default pack.
fn alerts(frames: &[Vec<u8>]) -> Vec<serde_json::Value> {
    let dir = tempfile::tempdir().unwrap();
    let pcap = dir.path().join("sctp.pcap");
    write_pcap(&pcap, 1, frames);
    let o = netrec(&["alerts", "--format", "jsonl", s(&pcap)]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    jsonl(&o)
}

fn of_rule<'a>(alerts: &'a [serde_json::Value], rule: &str) -> Vec<&'a serde_json::Value> {
    alerts.iter().filter(|a| a["rule_id"] == rule).collect()
}

#[test]
fn an_sctp_init_scan_is_a_port_scan_and_answered_inits_are_not() {
    let target = [10, 3, 0, 1];
    // 40 ports: 39 closed (ABORT), 2905 open (INIT ACK).
    let mut frames = Vec::new();
    for port in (2866..2906).rev() {
        frames.push(frame(SCANNER, target, &sctp(40000, port, 1)));
        let answer = if port == 2905 { 2 } else { 6 };
        frames.push(frame(target, SCANNER, &sctp(port, 40000, answer)));
    }
    let all = alerts(&frames);
    let scans = of_rule(&all, "port-scan");
    assert_eq!(scans.len(), 1, "{all:#?}");
    let a = scans[0];
    assert!(a["message"].as_str().unwrap().starts_with("SCTP port scan from 10.3.0.9 to 10.3.0.1"), "{a}");
    assert_eq!(a["src"], serde_json::json!(["10.3.0.9"]));
    assert!(a["stats"]["sctp_probes"].as_f64().unwrap() >= 25.0, "{a}");

    // A client whose 40 associations are all answered (INIT ACK) is not scanning.
    let mut frames = Vec::new();
    for port in 2866..2906 {
        frames.push(frame(SCANNER, target, &sctp(40000, port, 1)));
        frames.push(frame(target, SCANNER, &sctp(port, 40000, 2)));
    }
    let all = alerts(&frames);
    assert!(of_rule(&all, "port-scan").is_empty(), "{all:#?}");
}

#[test]
fn sctp_inits_to_many_hosts_are_a_host_sweep_unless_answered() {
    let sweep = |answer: Option<u8>| {
        let mut frames = Vec::new();
        for host in 1..=40u8 {
            let target = [10, 3, 1, host];
            frames.push(frame(SCANNER, target, &sctp(40001, 2905, 1)));
            if let Some(chunk) = answer {
                frames.push(frame(target, SCANNER, &sctp(2905, 40001, chunk)));
            }
        }
        alerts(&frames)
    };
    let all = sweep(None);
    let sweeps = of_rule(&all, "host-sweep");
    assert_eq!(sweeps.len(), 1, "{all:#?}");
    assert!(
        sweeps[0]["message"].as_str().unwrap().starts_with("SCTP host sweep from 10.3.0.9"),
        "{}",
        sweeps[0]
    );
    // ABORT answers (nothing listening) still leave it a sweep; INIT ACKs (a client of 40 servers) do not.
    assert_eq!(of_rule(&sweep(Some(6)), "host-sweep").len(), 1);
    assert!(of_rule(&sweep(Some(2)), "host-sweep").is_empty());
}
