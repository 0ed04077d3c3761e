//! Reusable traffic pieces (attacks and normal activity), shared by the fixtures and the demo.

// Scenario knobs (time, span, count, who, whom) read better as plain arguments than as structs.
#![allow(clippy::too_many_arguments)]

use crate::dns::{self, RData};
use crate::frame::{self, L4, Payload, tcpf};
use crate::rng::Rng;
use crate::sim::{Content, Host, MS, NS, TcpConn, Trace, US, l2, ping, udp_exchange, v4};
use std::net::IpAddr;

/// The office resolver.
pub fn resolver() -> Host {
    Host::local(v4(10, 77, 2, 53))
}

/// `n` distinct addresses in 172.16.0.0/12 (private: spoofed sources, reflectors, bots), drawn
/// as an affine bijection of a counter so they never repeat.
pub fn private_pool(rng: &mut Rng, n: usize) -> Vec<Host> {
    let start = rng.next_u32();
    let stride = rng.next_u32() | 1;
    (0..n as u32)
        .map(|i| {
            let x = start.wrapping_add(i.wrapping_mul(stride)) & 0x000f_ffff;
            let a = 0xac10_0000u32 | x;
            let ttl = rng.range(40, 120) as u8;
            Host::remote(IpAddr::V4(a.into()), ttl)
        })
        .collect()
}

fn ephemeral(rng: &mut Rng) -> u16 {
    rng.range(32768, 60999) as u16
}

/// Spoofed SYN flood: `n` SYNs over `dur` from `pool`, random source ports, no TCP options
/// (hping3-style); the target answers every `answer_every`-th with a SYN/ACK and nobody ACKs.
pub fn syn_flood(
    tr: &mut Trace,
    rng: &mut Rng,
    t: u64,
    n: u64,
    dur: u64,
    pool: &[Host],
    target: &Host,
    port: u16,
) {
    for i in 0..n {
        let ts = t + i * dur / n + rng.below(dur / n);
        let src = *rng.pick(pool);
        let sport = rng.range(1024, 65535) as u16;
        let seq = rng.next_u32();
        let syn = L4::Tcp {
            sport,
            dport: port,
            seq,
            ack: 0,
            flags: tcpf::SYN,
            window: 512,
            options: &[],
            payload: Payload::Empty,
        };
        tr.ip(ts, &src, target, rng.u16(), &syn);
        if i % 8 == 0 {
            let sa = L4::Tcp {
                sport: port,
                dport: sport,
                seq: rng.next_u32(),
                ack: seq.wrapping_add(1),
                flags: tcpf::SYN | tcpf::ACK,
                window: 64240,
                options: &[2, 4, 0x05, 0xb4],
                payload: Payload::Empty,
            };
            tr.ip(ts + rng.range(30 * US, 90 * US), target, &src, 0, &sa);
        }
    }
}

/// Normal HTTP exchanges from `clients` to `server:port` spread over `span`.
pub fn web_sessions(
    tr: &mut Trace,
    rng: &mut Rng,
    t: u64,
    span: u64,
    clients: &[Host],
    server: &Host,
    port: u16,
    n: usize,
) {
    for i in 0..n {
        let c = *rng.pick(clients);
        let ts = t + (i as u64) * span / n as u64 + rng.below(span / n as u64 / 2);
        let rtt =
            if server.mac == crate::sim::GW_MAC { rng.range(15, 60) * MS } else { rng.range(200, 900) * US };
        let cport = ephemeral(rng);
        let mut conn = TcpConn::new(rng, c, cport, *server, port, rtt);
        let req = http_get("/index.html", "www.example.com");
        let resp = rng.range(800, 30_000) as usize;
        conn.exchange(tr, ts, Content::Bytes(req.as_bytes()), Content::Random(resp));
    }
}

pub fn http_get(path: &str, host: &str) -> String {
    format!(
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0\r\nAccept: text/html,application/xhtml+xml,*/*;q=0.8\r\nAccept-Language: en-US,en;q=0.5\r\nConnection: keep-alive\r\n\r\n"
    )
}

/// UDP flood: `n` datagrams of 64..512 random bytes from `pool` to random high ports.
pub fn udp_flood(tr: &mut Trace, rng: &mut Rng, t: u64, n: u64, dur: u64, pool: &[Host], target: &Host) {
    for i in 0..n {
        let ts = t + i * dur / n + rng.below(dur / n);
        let src = *rng.pick(pool);
        let len = rng.range(64, 512) as usize;
        let l4 = L4::Udp {
            sport: rng.range(1024, 65535) as u16,
            dport: rng.range(1024, 65535) as u16,
            payload: Payload::Random { len, seed: rng.next_u64() },
        };
        tr.ip(ts, &src, target, rng.u16(), &l4);
    }
}

/// ICMP echo flood; the target answers a few before being overwhelmed.
pub fn icmp_flood(tr: &mut Trace, rng: &mut Rng, t: u64, n: u64, dur: u64, pool: &[Host], target: &Host) {
    for i in 0..n {
        let ts = t + i * dur / n + rng.below(dur / n);
        let src = *rng.pick(pool);
        let reply = if i % 20 == 0 { Some(rng.range(40, 120) * US) } else { None };
        let cport = rng.u16();
        ping(tr, rng, ts, &src, target, cport, (i & 0xffff) as u16, reply);
    }
}

/// Reflected DNS: large ANY/TXT responses from port 53 with no query from the victim.
pub fn dns_amplification(
    tr: &mut Trace,
    rng: &mut Rng,
    t: u64,
    n: u64,
    dur: u64,
    reflectors: &[Host],
    target: &Host,
) {
    let mut msg = Vec::new();
    let chunk: Vec<u8> = (0..255u32).map(|i| b'a' + (i % 26) as u8).collect();
    let strings: [&[u8]; 1] = [&chunk];
    let answers: Vec<(u32, RData<'_>)> = (0..5).map(|_| (3600, RData::Txt(&strings))).collect();
    // The victim's spoofed source port stays the same for a burst, as with real attack tools.
    let dport = rng.range(1024, 65535) as u16;
    for i in 0..n {
        let ts = t + i * dur / n + rng.below(dur / n);
        let src = *rng.pick(reflectors);
        let qt = if i % 2 == 0 { dns::QTYPE_ANY } else { dns::QTYPE_TXT };
        dns::response(&mut msg, rng.u16(), "example.net", qt, 0, &answers, true);
        let l4 = L4::Udp { sport: 53, dport, payload: Payload::Bytes(&msg) };
        tr.ip(ts, &src, target, rng.u16(), &l4);
    }
}

/// Reflected NTP monlist: mode-7 responses, 6 items of 72 bytes (IP length 468).
pub fn ntp_amplification(
    tr: &mut Trace,
    rng: &mut Rng,
    t: u64,
    n: u64,
    dur: u64,
    reflectors: &[Host],
    target: &Host,
) {
    let mut msg = vec![0u8; 8 + 6 * 72];
    // response + more bit, version 2, mode 7; implementation XNTPD (3); request MON_GETLIST_1 (42);
    // 6 items of 72 bytes.
    msg[..8].copy_from_slice(&[0xd7, 0x00, 0x03, 0x2a, 0x00, 0x06, 0x00, 0x48]);
    let dport = rng.range(1024, 65535) as u16;
    for i in 0..n {
        let ts = t + i * dur / n + rng.below(dur / n);
        let src = *rng.pick(reflectors);
        rng.fill(&mut msg[8..]);
        let l4 = L4::Udp { sport: 123, dport, payload: Payload::Bytes(&msg) };
        tr.ip(ts, &src, target, rng.u16(), &l4);
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ScanKind {
    Syn,
    Fin,
    Null,
    Xmas,
    Ack,
}

/// TCP port scan of `ports` (in the given order) over `dur`. Open ports per RFC 793 behaviour:
/// SYN -> SYN/ACK (scanner resets), FIN/NULL/XMAS -> silence, ACK -> RST regardless.
pub fn tcp_scan(
    tr: &mut Trace,
    rng: &mut Rng,
    t: u64,
    dur: u64,
    kind: ScanKind,
    scanner: &Host,
    target: &Host,
    ports: &[u16],
    open: &[u16],
) {
    let sport = ephemeral(rng);
    let rtt = rng.range(20, 40) * MS;
    let n = ports.len().max(1) as u64;
    for (i, &p) in ports.iter().enumerate() {
        let ts = t + i as u64 * dur / n + rng.below(dur / n / 2 + 1);
        let mut c = TcpConn::new(rng, *scanner, sport, *target, p, rtt);
        let is_open = open.contains(&p);
        let rt = ts + rtt;
        match kind {
            ScanKind::Syn => {
                c.raw(tr, ts, true, tcpf::SYN, Payload::Empty);
                if is_open {
                    c.raw(tr, rt, false, tcpf::SYN | tcpf::ACK, Payload::Empty);
                    c.raw(tr, rt + 30 * US, true, tcpf::RST, Payload::Empty);
                } else {
                    c.raw(tr, rt, false, tcpf::RST | tcpf::ACK, Payload::Empty);
                }
            }
            ScanKind::Fin | ScanKind::Null | ScanKind::Xmas => {
                let flags = match kind {
                    ScanKind::Fin => tcpf::FIN,
                    ScanKind::Null => 0,
                    _ => tcpf::FIN | tcpf::PSH | tcpf::URG,
                };
                c.raw(tr, ts, true, flags, Payload::Empty);
                if !is_open {
                    c.raw(tr, rt, false, tcpf::RST | tcpf::ACK, Payload::Empty);
                }
            }
            ScanKind::Ack => {
                c.raw(tr, ts, true, tcpf::ACK, Payload::Empty);
                // The probe acked s_nxt, so the RST carries it as its sequence number.
                c.raw(tr, rt, false, tcpf::RST, Payload::Empty);
            }
        }
    }
}

/// UDP scan: empty probes; closed ports answer ICMP port unreachable quoting the probe.
pub fn udp_scan(
    tr: &mut Trace,
    rng: &mut Rng,
    t: u64,
    dur: u64,
    scanner: &Host,
    target: &Host,
    ports: &[u16],
    open: &[u16],
) {
    let sport = ephemeral(rng);
    let rtt = rng.range(20, 40) * MS;
    let n = ports.len().max(1) as u64;
    let mut probe = Vec::new();
    let mut msg = Vec::new();
    for (i, &p) in ports.iter().enumerate() {
        let ts = t + i as u64 * dur / n + rng.below(dur / n / 2 + 1);
        let ip = frame::IpHdr::new(scanner.ip, target.ip, scanner.ttl, rng.u16());
        let payload = if p == 53 {
            dns::query(&mut msg, rng.u16(), "version.bind", dns::QTYPE_TXT, false);
            Payload::Bytes(&msg)
        } else {
            Payload::Empty
        };
        let l3 = frame::build(&mut probe, &l2(scanner, target), &ip, &L4::Udp { sport, dport: p, payload });
        tr.push(ts, &probe);
        if open.contains(&p) {
            continue; // open|filtered: no answer
        }
        let quoted = &probe[l3..(l3 + 28).min(probe.len())];
        let mut ip = frame::IpHdr::new(target.ip, scanner.ip, 64, rng.u16());
        ip.df = false;
        let l4 = L4::Icmp { ty: 3, code: 3, rest: [0; 4], payload: Payload::Bytes(quoted) };
        tr.emit(ts + rtt, |b| {
            frame::build(b, &l2(target, scanner), &ip, &l4);
        });
    }
}

/// The live hosts of 10.77.1.0/24 in sweep scenarios (fixed so every sweep agrees).
pub const LIVE_HOSTS: [u8; 12] = [1, 5, 10, 11, 23, 42, 77, 100, 128, 150, 200, 254];

pub fn sweep_targets() -> Vec<Host> {
    (1..=254u8).map(|d| Host::local(v4(10, 77, 1, d))).collect()
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum SweepKind {
    Icmp,
    Tcp80,
    Arp,
}

/// Host discovery over 10.77.1.1-254 from an on-link scanner.
pub fn host_sweep(tr: &mut Trace, rng: &mut Rng, t: u64, dur: u64, kind: SweepKind, scanner: &Host) {
    let mut targets = sweep_targets();
    rng.shuffle(&mut targets);
    let n = targets.len() as u64;
    let sport = ephemeral(rng);
    for (i, tgt) in targets.iter().enumerate() {
        let ts = t + i as u64 * dur / n + rng.below(dur / n / 2 + 1);
        let IpAddr::V4(ta) = tgt.ip else { continue };
        let live = LIVE_HOSTS.contains(&ta.octets()[3]);
        let rtt = rng.range(150, 900) * US;
        match kind {
            SweepKind::Icmp => ping(tr, rng, ts, scanner, tgt, 0x4d2, i as u16, live.then_some(rtt)),
            SweepKind::Tcp80 => {
                let mut c = TcpConn::new(rng, *scanner, sport, *tgt, 80, rtt);
                c.raw(tr, ts, true, tcpf::SYN, Payload::Empty);
                if live && ta.octets()[3] % 2 == 0 {
                    c.raw(tr, ts + rtt, false, tcpf::SYN | tcpf::ACK, Payload::Empty);
                    c.raw(tr, ts + rtt + 40 * US, true, tcpf::RST, Payload::Empty);
                } else if live {
                    c.raw(tr, ts + rtt, false, tcpf::RST | tcpf::ACK, Payload::Empty);
                }
            }
            SweepKind::Arp => {
                let IpAddr::V4(sa) = scanner.ip else { continue };
                let bcast = crate::frame::L2 { src: scanner.mac, dst: [0xff; 6], vlan: None };
                tr.emit(ts, |b| {
                    frame::build_arp(b, &bcast, 1, scanner.mac, sa.octets(), [0; 6], ta.octets())
                });
                if live {
                    let l = l2(tgt, scanner);
                    tr.emit(ts + rtt, |b| {
                        frame::build_arp(b, &l, 2, tgt.mac, ta.octets(), scanner.mac, sa.octets())
                    });
                }
            }
        }
    }
}

/// DNS lookup from a client through a resolver; answers as given (empty = NXDOMAIN).
pub fn dns_lookup(
    tr: &mut Trace,
    rng: &mut Rng,
    t: u64,
    client: &Host,
    server: &Host,
    name: &str,
    qtype: u16,
    answers: &[(u32, RData<'_>)],
    rtt: u64,
) -> u64 {
    let id = rng.u16();
    let mut q = Vec::new();
    let mut r = Vec::new();
    dns::query(&mut q, id, name, qtype, false);
    let rcode = if answers.is_empty() { 3 } else { 0 };
    dns::response(&mut r, id, name, qtype, rcode, answers, false);
    let port = ephemeral(rng);
    udp_exchange(tr, rng, t, client, port, server, 53, &q, Some(&r), rtt)
}

/// Deterministic address for an ordinary name (documentation ranges, never .66).
pub fn addr_for(name: &str) -> ([u8; 4], [u8; 16]) {
    let h = crate::rng::fnv1a(name.as_bytes());
    let nets = [[192, 0, 2], [198, 51, 100], [203, 0, 113]];
    let net = nets[(h % 3) as usize];
    let last = 10 + ((h >> 8) % 40) as u8;
    let mut a6 = [0u8; 16];
    a6[..6].copy_from_slice(&[0x20, 0x01, 0x0d, 0xb8, 0x01, 0x00]);
    a6[15] = last;
    ([net[0], net[1], net[2], last], a6)
}

/// One encoded chunk for DNS tunnelling: `len` chars of base32 (a-z2-7) or hex.
pub fn tunnel_label_data(rng: &mut Rng, len: usize, hex: bool) -> String {
    const B32: &[u8] = b"abcdefghijklmnopqrstuvwxyz234567";
    const HEX: &[u8] = b"0123456789abcdef";
    let alpha = if hex { HEX } else { B32 };
    (0..len).map(|_| alpha[rng.below(alpha.len() as u64) as usize] as char).collect()
}

/// Split data into <= 63-char labels.
pub fn dotted(data: &str) -> String {
    let b = data.as_bytes();
    b.chunks(60).map(|c| std::str::from_utf8(c).unwrap_or("x")).collect::<Vec<_>>().join(".")
}

/// DNS tunnel: `n` TXT/CNAME queries with 100-200 char encoded names under tunnel.example.com.
/// `lens` bounds the encoded data length (before dots and the domain).
pub fn dns_tunnel(
    tr: &mut Trace,
    rng: &mut Rng,
    t: u64,
    dur: u64,
    n: u64,
    lens: (u64, u64),
    client: &Host,
    server: &Host,
) {
    for i in 0..n {
        let ts = t + i * dur / n + rng.below(dur / n / 2 + 1);
        let hex = i % 3 == 0;
        let len = rng.range(lens.0, lens.1) as usize;
        // A sequence number in front keeps every name unique (as dnscat2/iodine do).
        let data = format!("{:04x}{}", i, tunnel_label_data(rng, len - 4, hex));
        let name = format!("{}.tunnel.example.com", dotted(&data));
        let cport = rng.range(60, 200) as usize;
        let reply_data = tunnel_label_data(rng, cport, false);
        let rtt = rng.range(20, 60) * MS;
        if i % 2 == 0 {
            let strs: [&[u8]; 1] = [reply_data.as_bytes()];
            dns_lookup(tr, rng, ts, client, server, &name, dns::QTYPE_TXT, &[(0, RData::Txt(&strs))], rtt);
        } else {
            let cname = format!("{}.tunnel.example.com", dotted(&reply_data));
            dns_lookup(
                tr,
                rng,
                ts,
                client,
                server,
                &name,
                dns::QTYPE_CNAME,
                &[(0, RData::Cname(&cname))],
                rtt,
            );
        }
    }
}

/// SSH brute force: short connections, banner exchange, key exchange, one failed auth, server closes.
pub fn ssh_brute_force(
    tr: &mut Trace,
    rng: &mut Rng,
    t: u64,
    dur: u64,
    n: u64,
    attacker: &Host,
    server: &Host,
) {
    for i in 0..n {
        let ts = t + i * dur / n + rng.below(dur / n / 4 + 1);
        let (cport, rtt) = (ephemeral(rng), rng.range(30, 60) * MS);
        let mut c = TcpConn::new(rng, *attacker, cport, *server, 22, rtt);
        let mut t1 = c.open(tr, ts);
        t1 = c.send(tr, t1 + 2 * MS, false, Content::Bytes(b"SSH-2.0-OpenSSH_9.6p1 Ubuntu-3ubuntu13.5\r\n"));
        t1 = c.send(tr, t1 + MS, true, Content::Bytes(b"SSH-2.0-libssh2_1.11.0\r\n"));
        let mut cookie = [0u8; 16];
        rng.fill(&mut cookie);
        t1 = c.send(tr, t1 + rng.range(MS, 5 * MS), true, Content::Bytes(&ssh_kexinit(&cookie, false)));
        rng.fill(&mut cookie);
        t1 = c.send(tr, t1 + rng.range(MS, 5 * MS), false, Content::Bytes(&ssh_kexinit(&cookie, true)));
        let mut q = [0u8; 32];
        rng.fill(&mut q);
        t1 = c.send(tr, t1 + rng.range(MS, 5 * MS), true, Content::Bytes(&ssh_packet(30, &ssh_string(&q))));
        let mut reply = Vec::new();
        let mut key = b"\0\0\0\x0bssh-ed25519".to_vec();
        key.extend_from_slice(&ssh_string(&[0x5a; 32]));
        reply.extend_from_slice(&ssh_string(&key));
        rng.fill(&mut q);
        reply.extend_from_slice(&ssh_string(&q));
        let mut sig = b"\0\0\0\x0bssh-ed25519".to_vec();
        let mut sig_bytes = [0u8; 64];
        rng.fill(&mut sig_bytes);
        sig.extend_from_slice(&ssh_string(&sig_bytes));
        reply.extend_from_slice(&ssh_string(&sig));
        let mut flight = ssh_packet(31, &reply);
        flight.extend_from_slice(&ssh_packet(21, &[]));
        t1 = c.send(tr, t1 + rng.range(MS, 5 * MS), false, Content::Bytes(&flight));
        t1 = c.send(tr, t1 + rng.range(MS, 5 * MS), true, Content::Bytes(&ssh_packet(21, &[])));
        // Encrypted from here on: service request/accept, password attempt.
        for (from_client, len) in [(true, 52), (false, 52), (true, 84)] {
            t1 = c.send(tr, t1 + rng.range(MS, 5 * MS), from_client, Content::Random(len));
        }
        // Password rejected after the usual PAM delay; the attacker gives up on this connection.
        t1 = c.send(tr, t1 + rng.range(400, 900) * MS, false, Content::Random(52));
        c.close(tr, t1 + MS, true);
    }
}

fn ssh_string(b: &[u8]) -> Vec<u8> {
    let mut v = (b.len() as u32).to_be_bytes().to_vec();
    v.extend_from_slice(b);
    v
}

/// RFC 4253 binary packet (unencrypted): length, padding length, payload, >= 4 bytes padding to 8.
fn ssh_packet(msg: u8, body: &[u8]) -> Vec<u8> {
    let unpadded = 4 + 1 + 1 + body.len();
    let pad = 4 + (8 - (unpadded + 4) % 8) % 8;
    let mut v = ((1 + 1 + body.len() + pad) as u32).to_be_bytes().to_vec();
    v.push(pad as u8);
    v.push(msg);
    v.extend_from_slice(body);
    v.resize(v.len() + pad, 0);
    v
}

fn ssh_kexinit(cookie: &[u8; 16], server: bool) -> Vec<u8> {
    let kex = if server { "curve25519-sha256,ecdh-sha2-nistp256" } else { "curve25519-sha256,ext-info-c" };
    let lists = [
        kex,
        "ssh-ed25519,rsa-sha2-512",
        "chacha20-poly1305@openssh.com,aes128-ctr",
        "chacha20-poly1305@openssh.com,aes128-ctr",
        "hmac-sha2-256,hmac-sha1",
        "hmac-sha2-256,hmac-sha1",
        "none,zlib@openssh.com",
        "none,zlib@openssh.com",
        "",
        "",
    ];
    let mut body = cookie.to_vec();
    for l in lists {
        body.extend_from_slice(&ssh_string(l.as_bytes()));
    }
    body.extend_from_slice(&[0, 0, 0, 0, 0]);
    ssh_packet(20, &body)
}

const PASSWORDS: [&str; 12] = [
    "123456", "password", "admin", "root", "qwerty", "letmein", "12345678", "111111", "abc123", "ftp",
    "test", "guest",
];

/// FTP brute force: USER/PASS with "530 Login incorrect." from a vsftpd-like server.
pub fn ftp_brute_force(
    tr: &mut Trace,
    rng: &mut Rng,
    t: u64,
    dur: u64,
    n: u64,
    attacker: &Host,
    server: &Host,
) {
    let users = ["admin", "root", "ftp", "user"];
    for i in 0..n {
        let ts = t + i * dur / n + rng.below(dur / n / 4 + 1);
        let (cport, rtt) = (ephemeral(rng), rng.range(30, 60) * MS);
        let mut c = TcpConn::new(rng, *attacker, cport, *server, 21, rtt);
        let user = users[(i % 4) as usize];
        let pass = PASSWORDS[(i / 4 % 12) as usize];
        let mut t1 = c.open(tr, ts);
        t1 = c.send(tr, t1 + 3 * MS, false, Content::Bytes(b"220 (vsFTPd 3.0.5)\r\n"));
        t1 = c.send(tr, t1 + MS, true, Content::Bytes(format!("USER {user}\r\n").as_bytes()));
        t1 = c.send(tr, t1 + MS, false, Content::Bytes(b"331 Please specify the password.\r\n"));
        t1 = c.send(tr, t1 + MS, true, Content::Bytes(format!("PASS {pass}{i}\r\n").as_bytes()));
        t1 = c.send(tr, t1 + rng.range(600, 1000) * MS, false, Content::Bytes(b"530 Login incorrect.\r\n"));
        t1 = c.send(tr, t1 + MS, true, Content::Bytes(b"QUIT\r\n"));
        t1 = c.send(tr, t1 + MS, false, Content::Bytes(b"221 Goodbye.\r\n"));
        c.close(tr, t1 + 100 * US, false);
    }
}

/// Ordinary site names (10-25 chars).
pub const SITES: [&str; 20] = [
    "www.example.com",
    "mail.example.org",
    "cdn.example.net",
    "news.example.com",
    "static.example.org",
    "api.example.net",
    "docs.example.com",
    "img.example.org",
    "shop.example.net",
    "video.example.com",
    "login.example.org",
    "fonts.example.net",
    "maps.example.com",
    "blog.example.org",
    "files.example.net",
    "wiki.example.com",
    "calendar.example.org",
    "chat.example.net",
    "search.example.com",
    "updates.example.org",
];

/// Web browsing by `clients` over `span`: DNS lookup (A, plus AAAA for IPv6 clients), then an
/// HTTPS (or HTTP) connection with 1-4 request/response rounds of realistic sizes.
pub fn browsing(
    tr: &mut Trace,
    rng: &mut Rng,
    t: u64,
    span: u64,
    clients: &[(Host, Option<Host>)],
    n_conns: usize,
) {
    let dns_srv = resolver();
    let sizes = [1_200usize, 4_500, 9_000, 15_000, 42_000, 120_000];
    for i in 0..n_conns {
        let (c4, c6) = *rng.pick(clients);
        let name = SITES[rng.below(SITES.len() as u64) as usize];
        let ts = t + i as u64 * span / n_conns as u64 + rng.below(span / n_conns as u64 / 2 + 1);
        let (a4, a6) = addr_for(name);
        let use_v6 = c6.is_some() && rng.chance(0.5);
        let dns_rtt = rng.range(1, 4) * MS;
        let mut t1 =
            dns_lookup(tr, rng, ts, &c4, &dns_srv, name, dns::QTYPE_A, &[(300, RData::A(a4))], dns_rtt);
        if c6.is_some() {
            t1 = dns_lookup(
                tr,
                rng,
                t1 + 50 * US,
                &c4,
                &dns_srv,
                name,
                dns::QTYPE_AAAA,
                &[(300, RData::Aaaa(a6))],
                2 * MS,
            );
        }
        let (client, server) = match (use_v6, c6) {
            (true, Some(c6)) => (c6, Host::remote(IpAddr::from(a6), 54)),
            _ => (c4, Host::remote(IpAddr::from(a4), 52)),
        };
        let https = rng.chance(0.8);
        let (cport, rtt) = (ephemeral(rng), rng.range(12, 80) * MS);
        let mut conn = TcpConn::new(rng, client, cport, server, if https { 443 } else { 80 }, rtt);
        conn.loss = 0.003;
        let mut t2 = conn.open(tr, t1 + 200 * US);
        if https {
            // ClientHello, ServerHello..Finished, client Finished.
            t2 = conn.send(tr, t2 + 100 * US, true, Content::Random(517));
            t2 = conn.send(tr, t2 + MS, false, Content::Random(rng.range(2800, 5200) as usize));
            t2 = conn.send(tr, t2 + 200 * US, true, Content::Random(80));
        }
        for _ in 0..rng.range(1, 4) {
            let req = http_get("/", name);
            t2 = if https {
                conn.send(tr, t2 + rng.range(1, 300) * MS, true, Content::Random(req.len() + 29))
            } else {
                conn.send(tr, t2 + rng.range(1, 300) * MS, true, Content::Bytes(req.as_bytes()))
            };
            let size = sizes[rng.below(sizes.len() as u64) as usize] + rng.below(2000) as usize;
            t2 = conn.send(tr, t2 + rng.range(5, 60) * MS, false, Content::Random(size));
        }
        // Browsers often abort idle connections with a RST instead of a FIN exchange.
        if rng.chance(0.15) {
            conn.reset(tr, t2 + rng.range(1, 5) * NS, true);
        } else {
            conn.close(tr, t2 + rng.range(1, 5) * NS, true);
        }
    }
}
