//! The committed fixtures are exactly what the generator writes, the generator is deterministic,
//! and every capture is valid and shows the behaviour its name promises.
//!
//! `NETREC_BLESS=1 cargo test -p xtask` rewrites fixtures/pcap from the generator.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::OnceLock;
use xtask::fixtures::{self, FIXTURES};
use xtask::verify::{self, Pkt};

fn fixtures_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fixtures/pcap")
}

fn temp_dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("xtask-{}-{tag}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

/// Every fixture rendered once per test binary (generation is the slow part in debug builds).
fn rendered() -> &'static BTreeMap<&'static str, Vec<u8>> {
    static CACHE: OnceLock<BTreeMap<&'static str, Vec<u8>>> = OnceLock::new();
    CACHE.get_or_init(|| FIXTURES.iter().map(|(n, _)| (*n, fixtures::render(n).unwrap())).collect())
}

#[test]
fn generation_is_deterministic() {
    // A second, independent run through the file-writing path must give the same bytes.
    let dir = temp_dir("again");
    let listed = fixtures::write_all(&dir).unwrap();
    assert_eq!(listed.len(), FIXTURES.len());
    for (name, len) in &listed {
        let again = std::fs::read(dir.join(name)).unwrap();
        assert_eq!(again.len(), *len);
        assert!(again == rendered()[name], "{name} differs between two runs");
    }
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn committed_fixtures_match_generator() {
    let dir = fixtures_dir();
    if std::env::var_os("NETREC_BLESS").is_some_and(|v| v == "1") {
        fixtures::write_all(&dir).unwrap();
    }
    let mut total = 0;
    for (name, _) in FIXTURES {
        let want = &rendered()[name];
        let have = std::fs::read(dir.join(name))
            .unwrap_or_else(|e| panic!("{name}: {e}; run `NETREC_BLESS=1 cargo test -p xtask` to create it"));
        assert!(
            &have == want,
            "fixtures/pcap/{name} differs from the generator (hand-edited? NETREC_BLESS=1 to rewrite)"
        );
        assert!(have.len() < 2_000_000, "{name} is {} bytes", have.len());
        total += have.len();
    }
    assert!(total < 8_000_000, "fixtures total {total} bytes");
    // No stray files that the generator does not own.
    let names: BTreeSet<String> = FIXTURES.iter().map(|(n, _)| n.to_string()).collect();
    for e in std::fs::read_dir(&dir).unwrap() {
        let n = e.unwrap().file_name().into_string().unwrap();
        assert!(names.contains(&n), "fixtures/pcap/{n} is not produced by the generator");
    }
}

fn load(name: &str) -> Vec<u8> {
    rendered()[name].clone()
}

fn pkts(bytes: &[u8]) -> Vec<Pkt> {
    verify::packets(bytes).unwrap().into_iter().map(|(p, _)| p).collect()
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

const SYN: u8 = 0x02;
const ACK: u8 = 0x10;
const RST: u8 = 0x04;
const FIN: u8 = 0x01;

#[test]
fn every_fixture_is_valid() {
    for (name, _) in FIXTURES {
        let b = load(name);
        let rep = verify::check_pcap(&b).unwrap_or_else(|e| panic!("{name}: {e:#}"));
        assert!(rep.packets > 0, "{name} is empty");
        assert!(rep.first_ts >= 1_767_225_600_000_000_000, "{name} starts before the time base");
        let n = verify::check_tcp_numbers(&b).unwrap_or_else(|e| panic!("{name}: {e:#}"));
        // Every capture with real connections checks some ACKs.
        if (name.starts_with("benign") && !name.contains("dns"))
            || name.starts_with("brute")
            || name == &"demo.pcap"
        {
            assert!(n > 10, "{name}: only {n} ACKs checked");
        }
    }
}

#[test]
fn syn_flood_is_a_flood() {
    let p = pkts(&load("syn_flood.pcap"));
    let tgt = ip("10.77.0.10");
    let syns: Vec<&Pkt> = p.iter().filter(|p| p.dst == tgt && p.dport == 80 && p.tcp_flags == SYN).collect();
    assert!(syns.len() >= 10_000, "{} SYNs", syns.len());
    let srcs: BTreeSet<IpAddr> = syns.iter().map(|p| p.src).collect();
    assert!(srcs.len() > 4_000, "{} sources", srcs.len());
    let span = syns.last().unwrap().ts - syns[syns.len() / 10].ts;
    assert!(span < 3_000_000_000);
    // Flood sources never complete a handshake (no pure ACK from a 172.16/12 source).
    assert!(!p.iter().any(|q| matches!(q.src, IpAddr::V4(a) if a.octets()[0] == 172) && q.tcp_flags == ACK));
    // Some legitimate handshakes complete.
    assert!(
        p.iter().any(|q| q.dst == tgt && q.tcp_flags == ACK && q.src.to_string().starts_with("10.77.4."))
    );
}

#[test]
fn floods_and_amplification() {
    let udp = pkts(&load("udp_flood.pcap"));
    assert_eq!(
        udp.iter().filter(|p| p.proto == 17 && p.dst == ip("10.77.0.20") && p.dport >= 1024).count(),
        10_000
    );
    assert!(udp.iter().map(|p| p.src).collect::<BTreeSet<_>>().len() > 900);
    let icmp = pkts(&load("icmp_flood.pcap"));
    assert_eq!(icmp.iter().filter(|p| p.proto == 1 && p.dst == ip("10.77.0.30")).count(), 8_000);
    let dns = pkts(&load("amplification_dns.pcap"));
    assert!(dns.iter().all(|p| p.sport == 53 && p.dst == ip("10.77.0.40") && p.payload_len > 1_300));
    assert!(dns.iter().map(|p| p.src).collect::<BTreeSet<_>>().len() > 700);
    let ntp = pkts(&load("amplification_ntp.pcap"));
    assert!(ntp.iter().all(|p| p.sport == 123 && p.payload_len == 440));
}

#[test]
fn scans_and_sweeps() {
    let syn = pkts(&load("port_scan_syn.pcap"));
    let probed: BTreeSet<u16> = syn.iter().filter(|p| p.tcp_flags == SYN).map(|p| p.dport).collect();
    assert_eq!(probed, (1..=1024).collect());
    assert_eq!(syn.iter().filter(|p| p.tcp_flags == SYN | ACK).count(), 3);
    for (name, flags) in [
        ("port_scan_fin.pcap", FIN),
        ("port_scan_null.pcap", 0),
        ("port_scan_xmas.pcap", 0x29),
        ("port_scan_ack.pcap", ACK),
    ] {
        let p = pkts(&load(name));
        let ports: BTreeSet<u16> = p
            .iter()
            .filter(|p| p.tcp_flags == flags && p.src == ip("198.51.100.23"))
            .map(|p| p.dport)
            .collect();
        assert_eq!(ports.len(), 500, "{name}");
    }
    let udp = pkts(&load("port_scan_udp.pcap"));
    assert_eq!(udp.iter().filter(|p| p.proto == 1).count(), 497);
    for name in ["host_sweep_icmp.pcap", "host_sweep_tcp.pcap"] {
        let p = pkts(&load(name));
        let targets: BTreeSet<IpAddr> =
            p.iter().filter(|p| p.src == ip("10.77.0.99")).map(|p| p.dst).collect();
        assert_eq!(targets.len(), 254, "{name}");
    }
    let arp_bytes = load("host_sweep_arp.pcap");
    let (_, arp) = xtask::pcap::parse(&arp_bytes).unwrap();
    let asked: BTreeSet<[u8; 4]> =
        arp.iter().filter(|r| r.1[20..22] == [0, 1]).map(|r| r.1[38..42].try_into().unwrap()).collect();
    assert_eq!(asked.len(), 254);
}

#[test]
fn anomalies() {
    let f = pkts(&load("tcp_flag_anomaly.pcap"));
    for flags in [0, 0x29, SYN | FIN, SYN | RST, FIN] {
        assert_eq!(
            f.iter().filter(|p| p.dst == ip("10.77.0.80") && p.tcp_flags == flags).count(),
            5,
            "flags {flags:#x}"
        );
    }
    let land = pkts(&load("land.pcap"));
    assert_eq!(land.iter().filter(|p| p.src == p.dst && p.sport == p.dport && p.sport == 139).count(), 4);
    let b = load("ip_header_anomaly.pcap");
    assert_eq!(verify::check_pcap(&b).unwrap().bad_ihl_skipped, 3);
    let h = pkts(&b);
    assert_eq!(h.iter().filter(|p| p.frag & 0x8000 != 0).count(), 3);
    assert_eq!(h.iter().filter(|p| p.ttl == 0).count(), 3);
    let fr = pkts(&load("fragment_anomaly.pcap"));
    let frags: Vec<&Pkt> = fr.iter().filter(|p| p.frag & 0x3fff != 0).collect();
    assert_eq!(frags.len(), 2_012);
    // Tiny first fragments carry 8 bytes of TCP.
    assert_eq!(frags.iter().filter(|p| p.proto == 6 && p.frag == 0x2000 && p.ihl == 20).count(), 3);
}

fn payloads(bytes: &[u8], needle: &[u8]) -> usize {
    verify::packets(bytes)
        .unwrap()
        .iter()
        .filter(|(p, f)| f.get(p.payload_off..).is_some_and(|d| d.windows(needle.len()).any(|w| w == needle)))
        .count()
}

#[test]
fn brute_force_tunnel_blocklist() {
    let ssh = pkts(&load("brute_force_ssh.pcap"));
    let conns = ssh.iter().filter(|p| p.dport == 22 && p.tcp_flags == SYN).count();
    assert_eq!(conns, 60);
    let span = ssh.last().unwrap().ts - ssh[0].ts;
    assert!(span < 90_000_000_000, "span {span}");
    let ftp = load("brute_force_ftp.pcap");
    assert_eq!(payloads(&ftp, b"530 Login incorrect."), 60);
    let dns = load("dns_tunnel.pcap");
    let q: Vec<(Pkt, &[u8])> =
        verify::packets(&dns).unwrap().into_iter().filter(|(p, _)| p.dport == 53).collect();
    assert_eq!(q.len(), 300);
    let names: BTreeSet<&[u8]> = q.iter().map(|(p, f)| &f[p.payload_off + 12..]).collect();
    assert_eq!(names.len(), 300);
    assert!(q.iter().all(|(p, _)| p.payload_len > 12 + 100 + 20));
    let bl = pkts(&load("blocklist.pcap"));
    assert!(bl.iter().any(|p| p.dst == ip("203.0.113.66") && p.dport == 4444 && p.tcp_flags == SYN));
}

#[test]
fn benign_captures_look_benign() {
    let nm = pkts(&load("benign_nmap_service_probe.pcap"));
    let ports: BTreeSet<u16> =
        nm.iter().filter(|p| p.src == ip("10.77.4.40") && p.proto == 6).map(|p| p.dport).collect();
    assert_eq!(ports, [80, 443].into());
    let br = pkts(&load("benign_browsing.pcap"));
    assert!(br.iter().any(|p| p.src.is_ipv6()));
    assert!(br.iter().filter(|p| p.tcp_flags == SYN).count() >= 40);
    let bulk = pkts(&load("benign_bulk_download.pcap"));
    assert_eq!(bulk.iter().filter(|p| p.tcp_flags == SYN).count(), 1);
    let st = pkts(&load("benign_speedtest.pcap"));
    assert_eq!(st.iter().filter(|p| p.tcp_flags == SYN).count(), 4);
    let res = pkts(&load("benign_dns_resolver.pcap"));
    let clients: BTreeSet<IpAddr> =
        res.iter().filter(|p| p.dport == 53 && p.dst == ip("10.77.2.53")).map(|p| p.src).collect();
    assert_eq!(clients.len(), 200);
}
