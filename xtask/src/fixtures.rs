//! The committed fixture captures: one function per file, all from one fixed seed.

use crate::dns::{self, RData};
use crate::frame::{self, IpHdr, L4, Payload, tcpf};
use crate::rng::Rng;
use crate::scenario::{self as sc, ScanKind, SweepKind};
use crate::sim::{Content, Host, MS, NS, T0, TcpConn, Trace, US, l2, v4, v6};
use std::path::Path;

/// The seed of every fixture (also written in fixtures/README.md).
pub const SEED: u64 = 0x6e65_7472_6563_2026;

type Gen = fn(&mut Rng) -> Trace;

/// (file name, generator). Order is the order of generation, not significant otherwise.
pub const FIXTURES: &[(&str, Gen)] = &[
    ("syn_flood.pcap", syn_flood),
    ("udp_flood.pcap", udp_flood),
    ("icmp_flood.pcap", icmp_flood),
    ("amplification_dns.pcap", amplification_dns),
    ("amplification_ntp.pcap", amplification_ntp),
    ("port_scan_syn.pcap", port_scan_syn),
    ("port_scan_fin.pcap", |r| port_scan(r, ScanKind::Fin)),
    ("port_scan_null.pcap", |r| port_scan(r, ScanKind::Null)),
    ("port_scan_xmas.pcap", |r| port_scan(r, ScanKind::Xmas)),
    ("port_scan_ack.pcap", |r| port_scan(r, ScanKind::Ack)),
    ("port_scan_udp.pcap", port_scan_udp),
    ("host_sweep_icmp.pcap", |r| host_sweep(r, SweepKind::Icmp)),
    ("host_sweep_tcp.pcap", |r| host_sweep(r, SweepKind::Tcp80)),
    ("host_sweep_arp.pcap", |r| host_sweep(r, SweepKind::Arp)),
    ("tcp_flag_anomaly.pcap", tcp_flag_anomaly),
    ("land.pcap", land),
    ("ip_header_anomaly.pcap", ip_header_anomaly),
    ("fragment_anomaly.pcap", fragment_anomaly),
    ("brute_force_ssh.pcap", brute_force_ssh),
    ("brute_force_ftp.pcap", brute_force_ftp),
    ("dns_tunnel.pcap", dns_tunnel),
    ("blocklist.pcap", blocklist),
    ("benign_browsing.pcap", benign_browsing),
    ("benign_bulk_download.pcap", benign_bulk_download),
    ("benign_speedtest.pcap", benign_speedtest),
    ("benign_dns_resolver.pcap", benign_dns_resolver),
    ("benign_nmap_service_probe.pcap", benign_nmap_service_probe),
    ("demo.pcap", demo),
];

/// The bytes of one fixture.
pub fn render(name: &str) -> Option<Vec<u8>> {
    let (n, g) = FIXTURES.iter().find(|(n, _)| *n == name)?;
    let mut rng = Rng::derive(SEED, n);
    Some(g(&mut rng).into_bytes())
}

/// Write every fixture into `dir` (created if missing). Returns (name, bytes written).
pub fn write_all(dir: &Path) -> std::io::Result<Vec<(&'static str, usize)>> {
    std::fs::create_dir_all(dir)?;
    let mut out = Vec::new();
    for (name, _) in FIXTURES {
        let bytes = render(name).unwrap_or_default();
        std::fs::write(dir.join(name), &bytes)?;
        out.push((*name, bytes.len()));
    }
    Ok(out)
}

const START: u64 = T0 + NS;

fn office_clients() -> Vec<Host> {
    (11..=16).map(|d| Host::local(v4(10, 77, 4, d))).collect()
}

fn syn_flood(rng: &mut Rng) -> Trace {
    let mut tr = Trace::new(128);
    let target = Host::local(v4(10, 77, 0, 10));
    let pool = sc::private_pool(rng, 5_000);
    sc::web_sessions(&mut tr, rng, START, 6 * NS, &office_clients(), &target, 80, 6);
    sc::syn_flood(&mut tr, rng, START + 2 * NS, 10_000, 5 * NS / 2, &pool, &target, 80);
    tr
}

fn udp_flood(rng: &mut Rng) -> Trace {
    // Headers only: the payload bytes carry nothing a detector needs and would bloat the repo.
    let mut tr = Trace::new(42);
    let target = Host::local(v4(10, 77, 0, 20));
    let pool = sc::private_pool(rng, 1_000);
    sc::udp_flood(&mut tr, rng, START, 10_000, 2 * NS, &pool, &target);
    tr
}

fn icmp_flood(rng: &mut Rng) -> Trace {
    let mut tr = Trace::new(42);
    let target = Host::local(v4(10, 77, 0, 30));
    let pool = sc::private_pool(rng, 500);
    sc::icmp_flood(&mut tr, rng, START, 8_000, 2 * NS, &pool, &target);
    tr
}

fn amplification_dns(rng: &mut Rng) -> Trace {
    let mut tr = Trace::new(64);
    let target = Host::local(v4(10, 77, 0, 40));
    let pool = sc::private_pool(rng, 800);
    sc::dns_amplification(&mut tr, rng, START, 3_000, NS, &pool, &target);
    tr
}

fn amplification_ntp(rng: &mut Rng) -> Trace {
    let mut tr = Trace::new(64);
    let target = Host::local(v4(10, 77, 0, 41));
    let pool = sc::private_pool(rng, 800);
    sc::ntp_amplification(&mut tr, rng, START, 3_000, NS, &pool, &target);
    tr
}

fn scanner() -> Host {
    Host::remote(v4(198, 51, 100, 23), 49)
}

fn scan_target() -> Host {
    Host::local(v4(10, 77, 0, 70))
}

const OPEN_TCP: [u16; 3] = [22, 80, 443];

fn port_scan_syn(rng: &mut Rng) -> Trace {
    let mut tr = Trace::new(0);
    let mut ports: Vec<u16> = (1..=1024).collect();
    rng.shuffle(&mut ports);
    sc::tcp_scan(&mut tr, rng, START, 4 * NS, ScanKind::Syn, &scanner(), &scan_target(), &ports, &OPEN_TCP);
    tr
}

fn port_scan(rng: &mut Rng, kind: ScanKind) -> Trace {
    let mut tr = Trace::new(0);
    let mut ports: Vec<u16> = (1..=500).collect();
    rng.shuffle(&mut ports);
    sc::tcp_scan(&mut tr, rng, START, 2 * NS, kind, &scanner(), &scan_target(), &ports, &OPEN_TCP);
    tr
}

fn port_scan_udp(rng: &mut Rng) -> Trace {
    let mut tr = Trace::new(0);
    let mut ports: Vec<u16> = (1..=500).collect();
    rng.shuffle(&mut ports);
    sc::udp_scan(&mut tr, rng, START, 3 * NS, &scanner(), &scan_target(), &ports, &[53, 123, 161]);
    tr
}

fn host_sweep(rng: &mut Rng, kind: SweepKind) -> Trace {
    let mut tr = Trace::new(0);
    let me = Host::local(v4(10, 77, 0, 99));
    sc::host_sweep(&mut tr, rng, START, 3 * NS, kind, &me);
    tr
}

fn tcp_flag_anomaly(rng: &mut Rng) -> Trace {
    let mut tr = Trace::new(128);
    let attacker = Host::remote(v4(203, 0, 113, 45), 51);
    let target = Host::local(v4(10, 77, 0, 80));
    sc::web_sessions(&mut tr, rng, START, 10 * NS, &office_clients(), &target, 80, 4);
    let combos =
        [0, tcpf::FIN | tcpf::PSH | tcpf::URG, tcpf::SYN | tcpf::FIN, tcpf::SYN | tcpf::RST, tcpf::FIN];
    let mut t = START + 2 * NS;
    for flags in combos {
        for port in [22u16, 80, 443, 8080, 3389] {
            let cport = rng.range(32768, 60999) as u16;
            let mut c = TcpConn::new(rng, attacker, cport, target, port, 30 * MS);
            c.raw(&mut tr, t, true, flags, Payload::Empty);
            t += rng.range(50, 300) * MS;
        }
    }
    tr
}

fn land(rng: &mut Rng) -> Trace {
    let mut tr = Trace::new(128);
    let victim = Host::local(v4(10, 77, 0, 50));
    // Forged from outside: arrives from the gateway MAC with the victim's own address and port.
    let forged = Host::remote(victim.ip, 64);
    sc::web_sessions(&mut tr, rng, START, 6 * NS, &office_clients(), &Host::local(v4(10, 77, 0, 51)), 80, 3);
    for i in 0..4u64 {
        let l4 = L4::Tcp {
            sport: 139,
            dport: 139,
            seq: rng.next_u32(),
            ack: 0,
            flags: tcpf::SYN,
            window: 2048,
            options: &[],
            payload: Payload::Empty,
        };
        tr.ip(START + NS + i * 700 * MS, &forged, &victim, rng.u16(), &l4);
    }
    tr
}

fn ip_header_anomaly(rng: &mut Rng) -> Trace {
    let mut tr = Trace::new(128);
    let src = Host::remote(v4(198, 51, 100, 99), 50);
    let dst = Host::local(v4(10, 77, 0, 85));
    sc::web_sessions(&mut tr, rng, START, 6 * NS, &office_clients(), &Host::local(v4(10, 77, 0, 86)), 80, 3);
    let mut t = START + NS;
    for kind in 0..3 {
        for _ in 0..3 {
            let mut ip = IpHdr::new(src.ip, dst.ip, src.ttl, rng.u16());
            if kind == 1 {
                ip.reserved_flag = true;
            }
            if kind == 2 {
                ip.ttl = 0;
            }
            let l4 = L4::Tcp {
                sport: rng.range(1024, 65535) as u16,
                dport: 80,
                seq: rng.next_u32(),
                ack: 0,
                flags: tcpf::SYN,
                window: 1024,
                options: &[],
                payload: Payload::Empty,
            };
            tr.emit(t, |b| {
                let l3 = frame::build(b, &l2(&src, &dst), &ip, &l4);
                if kind == 0 {
                    // IHL 4 (16 bytes): below the 20-byte minimum, invalid by definition.
                    b[l3] = 0x44;
                    frame::fix_ipv4_checksum(b, l3);
                }
            });
            t += 400 * MS;
        }
    }
    tr
}

fn fragment_anomaly(rng: &mut Rng) -> Trace {
    let mut tr = Trace::new(64);
    let target = Host::local(v4(10, 77, 0, 90));
    let attacker = Host::remote(v4(203, 0, 113, 77), 47);
    let mut whole = Vec::new();
    let mut frag = Vec::new();
    let mut t = START;
    // Tiny first fragments: the TCP header split after 8 bytes (flags and ports apart).
    for _ in 0..3 {
        let mut ip = IpHdr::new(attacker.ip, target.ip, attacker.ttl, rng.u16());
        ip.df = false;
        let l4 = L4::Tcp {
            sport: rng.range(1024, 65535) as u16,
            dport: 80,
            seq: rng.next_u32(),
            ack: 0,
            flags: tcpf::SYN,
            window: 1024,
            options: &[],
            payload: Payload::Empty,
        };
        let l3 = frame::build(&mut whole, &l2(&attacker, &target), &ip, &l4);
        let body = whole[l3 + 20..].to_vec();
        frame::ipv4_fragment(&mut frag, &whole, l3, 0, &body[..8], true);
        tr.push(t, &frag);
        frame::ipv4_fragment(&mut frag, &whole, l3, 8, &body[8..], false);
        tr.push(t + 200 * US, &frag);
        t += 500 * MS;
    }
    // Overlapping fragments (teardrop-like): the second rewrites bytes 24..48 with other data.
    for _ in 0..3 {
        let mut ip = IpHdr::new(attacker.ip, target.ip, attacker.ttl, rng.u16());
        ip.df = false;
        let l4 = L4::Udp { sport: 53, dport: 53, payload: Payload::Random { len: 64, seed: rng.next_u64() } };
        let l3 = frame::build(&mut whole, &l2(&attacker, &target), &ip, &l4);
        let body = whole[l3 + 20..].to_vec();
        frame::ipv4_fragment(&mut frag, &whole, l3, 0, &body[..48], true);
        tr.push(t, &frag);
        let mut other = [0u8; 48];
        rng.fill(&mut other);
        frame::ipv4_fragment(&mut frag, &whole, l3, 24, &other, false);
        tr.push(t + 150 * US, &frag);
        t += 500 * MS;
    }
    // Fragment flood: 1,000 datagrams of 1,800 bytes, two fragments each, in 2 s.
    let pool = sc::private_pool(rng, 50);
    let t0 = t + NS;
    for i in 0..1_000u64 {
        let src = *rng.pick(&pool);
        let mut ip = IpHdr::new(src.ip, target.ip, src.ttl, rng.u16());
        ip.df = false;
        let l4 = L4::Udp {
            sport: rng.range(1024, 65535) as u16,
            // One service, as floods aim at: random ports per datagram would (rightly) also
            // look like a UDP port scan from each source.
            dport: 10_000,
            // Zero fill as flood tools send (random bytes trip protocol heuristics in dissectors).
            payload: Payload::Bytes(&[0; 1_800]),
        };
        let l3 = frame::build(&mut whole, &l2(&src, &target), &ip, &l4);
        let body = whole[l3 + 20..].to_vec();
        let ts = t0 + i * 2 * MS;
        frame::ipv4_fragment(&mut frag, &whole, l3, 0, &body[..1480], true);
        tr.push(ts, &frag);
        frame::ipv4_fragment(&mut frag, &whole, l3, 1480, &body[1480..], false);
        tr.push(ts + 5 * US, &frag);
    }
    tr
}

fn brute_force_ssh(rng: &mut Rng) -> Trace {
    let mut tr = Trace::new(128);
    let attacker = Host::remote(v4(203, 0, 113, 200), 48);
    let server = Host::local(v4(10, 77, 0, 60));
    sc::ssh_brute_force(&mut tr, rng, START, 88 * NS, 60, &attacker, &server);
    tr
}

fn brute_force_ftp(rng: &mut Rng) -> Trace {
    let mut tr = Trace::new(0);
    let attacker = Host::remote(v4(203, 0, 113, 201), 48);
    let server = Host::local(v4(10, 77, 0, 61));
    sc::ftp_brute_force(&mut tr, rng, START, 88 * NS, 60, &attacker, &server);
    tr
}

fn dns_tunnel(rng: &mut Rng) -> Trace {
    let mut tr = Trace::new(0);
    let client = Host::local(v4(10, 77, 4, 62));
    sc::dns_tunnel(&mut tr, rng, START, 120 * NS, 300, (100, 200), &client, &sc::resolver());
    tr
}

fn blocklist(rng: &mut Rng) -> Trace {
    let mut tr = Trace::new(128);
    let client = Host::local(v4(10, 77, 4, 21));
    sc::browsing(&mut tr, rng, START, 30 * NS, &[(client, None)], 5);
    let c2 = Host::remote(v4(203, 0, 113, 66), 45);
    let mut c = TcpConn::new(rng, client, 49_152, c2, 4444, 70 * MS);
    let mut t = c.open(&mut tr, START + 12 * NS);
    for _ in 0..4 {
        t = c.send(&mut tr, t + 300 * MS, false, Content::Random(rng.range(20, 200) as usize));
        t = c.send(&mut tr, t + 50 * MS, true, Content::Random(rng.range(100, 1_400) as usize));
    }
    c.close(&mut tr, t + NS, true);
    tr
}

fn benign_browsing(rng: &mut Rng) -> Trace {
    let mut tr = Trace::new(128);
    let clients = [
        (Host::local(v4(10, 77, 4, 11)), Some(Host::local(v6([0x2001, 0xdb8, 0x77, 4, 0, 0, 0, 0x11])))),
        (Host::local(v4(10, 77, 4, 12)), None),
        // One client sits on a tagged access VLAN.
        (Host::local(v4(10, 77, 4, 13)).with_vlan(77), None),
    ];
    sc::browsing(&mut tr, rng, START, 120 * NS, &clients, 40);
    // The IPv6 client checks reachability of a remote host (ICMPv6 echo).
    let (Some(me6), far6) = (clients[0].1, Host::remote(v6([0x2001, 0xdb8, 0x100, 0, 0, 0, 0, 1]), 57))
    else {
        return tr;
    };
    for i in 0..4u16 {
        crate::sim::ping(&mut tr, rng, START + 30 * NS + i as u64 * NS, &me6, &far6, 0x66, i, Some(21 * MS));
    }
    tr
}

fn bulk_download(tr: &mut Trace, rng: &mut Rng, t: u64, client: Host, segments: usize, dur: u64) -> u64 {
    let server = Host::remote(v4(198, 51, 100, 80), 55);
    let mut c = TcpConn::new(rng, client, 51_000, server, 443, 25 * MS);
    let bytes = segments * c.mss;
    c.rate = (bytes as u64 + segments as u64 * 54) * NS / dur;
    let t1 = c.open(tr, t);
    let t1 = c.send(tr, t1 + 100 * US, true, Content::Random(517));
    let t1 = c.send(tr, t1 + MS, false, Content::Random(bytes));
    c.close(tr, t1 + 50 * MS, true)
}

fn benign_bulk_download(rng: &mut Rng) -> Trace {
    let mut tr = Trace::new(64);
    bulk_download(&mut tr, rng, START, Host::local(v4(10, 77, 4, 30)), 5_000, 5 * NS / 2);
    tr
}

fn benign_speedtest(rng: &mut Rng) -> Trace {
    let mut tr = Trace::new(64);
    let client = Host::local(v4(10, 77, 4, 31));
    let server = Host::remote(v4(203, 0, 113, 90), 56);
    // 4 flows x (1,500 data segments + 750 ACKs) = 9,000 packets in 1.5 s (6,000 packets/s).
    for f in 0..4u16 {
        let mut c = TcpConn::new(rng, client, 50_000 + f, server, 8080, 18 * MS);
        let bytes = 1_500 * c.mss;
        c.rate = (bytes as u64 + 1_500 * 54) * NS * 2 / (3 * NS);
        let t = c.open(&mut tr, START + f as u64 * 3 * MS);
        let t = c.send(&mut tr, t + MS, false, Content::Random(bytes));
        c.close(&mut tr, t + 10 * MS, true);
    }
    tr
}

/// Ordinary names for the resolver scenario: word.example.{com,org,net} and www.word.example.
fn ordinary_name(i: usize) -> String {
    const WORDS: [&str; 25] = [
        "alpha", "river", "garden", "market", "travel", "sports", "weather", "music", "cloud", "office",
        "photo", "school", "health", "bank", "games", "forum", "radio", "energy", "paper", "coffee",
        "planet", "library", "museum", "transit", "kitchen",
    ];
    let w = WORDS[i % 25];
    match i / 25 % 4 {
        0 => format!("{w}.example.com"),
        1 => format!("www.{w}.example.org"),
        2 => format!("{w}{}.example.net", i / 100),
        _ => format!("mail.{w}.example"),
    }
}

fn benign_dns_resolver(rng: &mut Rng) -> Trace {
    let mut tr = Trace::new(128);
    let res = sc::resolver();
    let upstream = Host::remote(v4(198, 51, 100, 53), 58);
    let clients: Vec<Host> = (1..=200u8).map(|d| Host::local(v4(10, 77, 5, d))).collect();
    let mut cached = vec![false; 500];
    let n = 2_500u64;
    let span = 30 * NS;
    let mut q = Vec::new();
    let mut r = Vec::new();
    for i in 0..n {
        let ts = START + i * span / n + rng.below(span / n);
        let c = *rng.pick(&clients);
        // Skewed popularity: low indexes are asked often.
        let u = (rng.next_u32() as f64) / (u32::MAX as f64);
        let idx = ((u * u) * 500.0) as usize % 500;
        let name = ordinary_name(idx);
        let (a4, a6) = sc::addr_for(&name);
        let qtype = match rng.below(20) {
            0 => dns::QTYPE_MX,
            1..=5 => dns::QTYPE_AAAA,
            _ => dns::QTYPE_A,
        };
        let mx_name = format!("mx.{name}");
        let answers: Vec<(u32, RData<'_>)> = match qtype {
            dns::QTYPE_MX => vec![(3600, RData::Mx(10, &mx_name))],
            dns::QTYPE_AAAA => vec![(300, RData::Aaaa(a6))],
            _ => vec![(300, RData::A(a4)), (300, RData::A([a4[0], a4[1], a4[2], a4[3].wrapping_add(1)]))],
        };
        let id = rng.u16();
        let cport = rng.range(32768, 60999) as u16;
        dns::query(&mut q, id, &name, qtype, false);
        tr.ip(ts, &c, &res, rng.u16(), &L4::Udp { sport: cport, dport: 53, payload: Payload::Bytes(&q) });
        let mut tr_at = ts + rng.range(60, 300) * US;
        if !cached[idx] {
            cached[idx] = true;
            let uid = rng.u16();
            let uport = rng.range(1024, 65535) as u16;
            dns::query(&mut q, uid, &name, qtype, true);
            tr.ip(
                tr_at,
                &res,
                &upstream,
                rng.u16(),
                &L4::Udp { sport: uport, dport: 53, payload: Payload::Bytes(&q) },
            );
            let back = tr_at + rng.range(10, 40) * MS;
            dns::response(&mut r, uid, &name, qtype, 0, &answers, true);
            tr.ip(
                back,
                &upstream,
                &res,
                rng.u16(),
                &L4::Udp { sport: 53, dport: uport, payload: Payload::Bytes(&r) },
            );
            tr_at = back + rng.range(20, 80) * US;
        }
        dns::response(&mut r, id, &name, qtype, 0, &answers, false);
        tr.ip(tr_at, &res, &c, rng.u16(), &L4::Udp { sport: 53, dport: cport, payload: Payload::Bytes(&r) });
    }
    tr
}

const NMAP_PROBES: [(&[u8], &[u8]); 6] = [
    (b"", b""),
    (b"GET / HTTP/1.0\r\n\r\n", b"HTTP/1.1 200 OK\r\nServer: nginx/1.24.0\r\nContent-Type: text/html\r\nContent-Length: 615\r\nConnection: close\r\n\r\n"),
    (b"OPTIONS / HTTP/1.0\r\n\r\n", b"HTTP/1.1 405 Not Allowed\r\nServer: nginx/1.24.0\r\nContent-Type: text/html\r\nContent-Length: 157\r\nConnection: close\r\n\r\n"),
    (b"OPTIONS / RTSP/1.0\r\n\r\n", b"HTTP/1.1 400 Bad Request\r\nServer: nginx/1.24.0\r\nContent-Type: text/html\r\nContent-Length: 157\r\nConnection: close\r\n\r\n"),
    (b"GET /nice%20ports%2C/Tri%6Eity.txt%2ebak HTTP/1.0\r\n\r\n", b"HTTP/1.1 404 Not Found\r\nServer: nginx/1.24.0\r\nContent-Type: text/html\r\nContent-Length: 153\r\nConnection: close\r\n\r\n"),
    (b"\r\n\r\n", b"HTTP/1.1 400 Bad Request\r\nServer: nginx/1.24.0\r\nContent-Type: text/html\r\nContent-Length: 157\r\nConnection: close\r\n\r\n"),
];

fn benign_nmap_service_probe(rng: &mut Rng) -> Trace {
    let mut tr = Trace::new(0);
    let me = Host::local(v4(10, 77, 4, 40));
    let target = Host::local(v4(10, 77, 0, 100));
    let rtt = 400 * US;
    let mut t = START;
    // Host discovery: echo request, SYN to 443, ACK to 80 (nmap's default probes).
    let cport = rng.u16();
    crate::sim::ping(&mut tr, rng, t, &me, &target, cport, 0, Some(rtt));
    let cport = rng.range(32768, 60999) as u16;
    let mut c443 = TcpConn::new(rng, me, cport, target, 443, rtt);
    c443.raw(&mut tr, t + 20 * US, true, tcpf::SYN, Payload::Empty);
    c443.raw(&mut tr, t + 20 * US + rtt, false, tcpf::RST | tcpf::ACK, Payload::Empty);
    let cport = rng.range(32768, 60999) as u16;
    let mut c80 = TcpConn::new(rng, me, cport, target, 80, rtt);
    c80.raw(&mut tr, t + 40 * US, true, tcpf::ACK, Payload::Empty);
    c80.raw(&mut tr, t + 40 * US + rtt, false, tcpf::RST, Payload::Empty);
    t += 300 * MS;
    // SYN scan of port 80.
    let cport = rng.range(32768, 60999) as u16;
    let mut s = TcpConn::new(rng, me, cport, target, 80, rtt);
    s.raw(&mut tr, t, true, tcpf::SYN, Payload::Empty);
    s.raw(&mut tr, t + rtt, false, tcpf::SYN | tcpf::ACK, Payload::Empty);
    s.raw(&mut tr, t + rtt + 30 * US, true, tcpf::RST, Payload::Empty);
    t += 200 * MS;
    // Service detection: full connections with nmap's probes.
    for (req, resp) in NMAP_PROBES {
        let cport = rng.range(32768, 60999) as u16;
        let mut c = TcpConn::new(rng, me, cport, target, 80, rtt);
        let mut t1 = c.open(&mut tr, t);
        if req.is_empty() {
            // NULL probe: wait for a banner that an HTTP server never sends.
            t1 += 5 * NS;
        } else {
            t1 = c.send(&mut tr, t1 + 100 * US, true, Content::Bytes(req));
            let mut body = resp.to_vec();
            body.extend_from_slice(
                b"<html>\r\n<head><title>nginx</title></head>\r\n<body>\r\n</body>\r\n</html>\r\n",
            );
            t1 = c.send(&mut tr, t1 + 300 * US, false, Content::Bytes(&body));
        }
        // HTTP/1.0 with Connection: close: the server closes; after the NULL probe nmap does.
        let t2 = c.close(&mut tr, t1 + 200 * US, req.is_empty());
        t = t2 + 100 * MS;
    }
    tr
}

fn demo(rng: &mut Rng) -> Trace {
    let mut tr = Trace::new(256);
    let office = office_clients();
    let clients: Vec<(Host, Option<Host>)> = office
        .iter()
        .enumerate()
        .map(|(i, h)| {
            (*h, (i % 3 == 0).then(|| Host::local(v6([0x2001, 0xdb8, 0x77, 4, 0, 0, 0, 0x11 + i as u16]))))
        })
        .collect();
    let minute = 60 * NS;
    sc::browsing(&mut tr, rng, START, 2 * minute, &clients, 24);
    bulk_download(&mut tr, rng, START + 10 * NS, Host::local(v4(10, 77, 4, 30)), 1_200, 6 * NS);
    let gw = Host::local(v4(10, 77, 0, 1));
    for i in 0..120u64 {
        crate::sim::ping(&mut tr, rng, START + i * NS, &office[0], &gw, 0x77, i as u16, Some(300 * US));
    }
    // Attacks at distinct times.
    let mut ports: Vec<u16> = (1..=1024).collect();
    rng.shuffle(&mut ports);
    sc::tcp_scan(
        &mut tr,
        rng,
        START + 20 * NS,
        4 * NS,
        ScanKind::Syn,
        &scanner(),
        &scan_target(),
        &ports,
        &OPEN_TCP,
    );
    sc::host_sweep(&mut tr, rng, START + 35 * NS, 3 * NS, SweepKind::Icmp, &Host::local(v4(10, 77, 0, 99)));
    let web = Host::local(v4(10, 77, 0, 10));
    sc::web_sessions(&mut tr, rng, START, 2 * minute, &office, &web, 80, 20);
    let pool = sc::private_pool(rng, 2_000);
    sc::syn_flood(&mut tr, rng, START + 50 * NS, 5_000, 2 * NS, &pool, &web, 80);
    // Query names of 60-120 encoded characters: whole queries fit the demo's 256-byte snaplen.
    let tunneler = Host::local(v4(10, 77, 4, 62));
    sc::dns_tunnel(&mut tr, rng, START + 65 * NS, 15 * NS, 100, (60, 120), &tunneler, &sc::resolver());
    let attacker = Host::remote(v4(203, 0, 113, 200), 48);
    sc::ssh_brute_force(
        &mut tr,
        rng,
        START + 85 * NS,
        30 * NS,
        30,
        &attacker,
        &Host::local(v4(10, 77, 0, 60)),
    );
    tr
}
