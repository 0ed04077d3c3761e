//! Privileged (issue #5): the kernel program and the user-space decoder agree. Every Ethernet frame
//! of the bundled fixture captures runs through the real classifier and XDP program with
//! BPF_PROG_TEST_RUN; the flow key, TCP flags and payload bytes the kernel counted, and the header
//! record it queued, must equal what `netrec_format::decode` says about the same bytes.

#[path = "../format/tests/decode_builder.rs"]
mod builder;
mod common;

use common::netns::require_root;
use common::*;
use netrec_analyzer::source::CaptureSource;
use netrec_format::LinkType;
use netrec_format::decode::{Transport, decode};
use netrec_recorder::ebpf::{Hook, KernelProbe, ObjectSource, ProbeConfig, TestProgram};
use std::net::IpAddr;

const SNAPLEN: u32 = 96;

fn probe() -> Option<KernelProbe> {
    let object = match std::env::var_os("NETREC_TEST_BPF_OBJECT") {
        Some(p) => ObjectSource::File(p.into()),
        None => match ObjectSource::default_available() {
            Some(o) => o,
            None => {
                assert!(
                    std::env::var_os("CI").is_none(),
                    "CI must build with the eBPF object (feature ebpf)"
                );
                eprintln!("skipped: no eBPF object in this build");
                return None;
            }
        },
    };
    let cfg = ProbeConfig {
        interfaces: Vec::new(),
        snaplen: SNAPLEN,
        record_headers: true,
        ring_bytes: 1 << 20,
        flow_entries: 1024,
        hook: Hook::Detached,
        object,
        netlink_fallback: false,
    };
    Some(KernelProbe::load(&cfg).expect("load the programs (verifier)"))
}

fn mapped(ip: IpAddr) -> [u8; 16] {
    match ip {
        IpAddr::V4(v4) => v4.to_ipv6_mapped().octets(),
        IpAddr::V6(v6) => v6.octets(),
    }
}

/// (src, dst, src_port, dst_port, proto, ip_version, tcp_flags, payload_bytes when defined)
type Expected = ([u8; 16], [u8; 16], u16, u16, u8, u8, u8, Option<u64>);

/// What the kernel must have keyed and counted, from the user-space decoder; None when the frame
/// is outside what the kernel parses by design (tunnels, MPLS, deep VLAN stacks, IPv6 extension
/// headers, malformed headers), where only the header record is compared.
fn expected(frame: &[u8]) -> Option<Expected> {
    let d = decode(LinkType::ETHERNET, frame, frame.len() as u32);
    // The kernel dispatches on the Ethernet II type after at most two VLAN tags (TPID 0x8100,
    // 0x88a8 or 0x9100): 802.3 + LLC/SNAP, 802.1ah (PBB) and anything else are outside it.
    let be16 = |o: usize| frame.get(o..o + 2).map_or(0, |b| u16::from_be_bytes([b[0], b[1]]));
    let (mut off, mut et) = (12, be16(12));
    for _ in 0..2 {
        if matches!(et, 0x8100 | 0x88a8 | 0x9100) {
            off += 4;
            et = be16(off);
        }
    }
    if !matches!(et, 0x0800 | 0x86dd | 0x8847 | 0x8848) {
        return None;
    }
    let net = d.net?;
    // MPLS: the kernel follows up to 4 labels to IPv4/IPv6, not a pseudowire's inner Ethernet
    // (then `ethertype` is the inner frame's, not the label stack's).
    let mpls_outside =
        d.mpls_labels > 4 || (d.mpls_labels > 0 && !matches!(d.ethertype, Some(0x8847 | 0x8848)));
    if d.tunnel.is_some() || mpls_outside || d.vlan_count > 2 || d.anomalies.any_malformed() {
        return None;
    }
    let version = if net.src.is_ipv4() { 4 } else { 6 };
    if version == 6 && (net.header_len != 40 || net.frag.is_some()) {
        return None;
    }
    let first = net.frag.is_none_or(|f| f.offset == 0);
    let (sp, dp, flags, payload) = match d.transport {
        Transport::Tcp(t) if first => (t.src_port, t.dst_port, t.flags, Some(d.payload_len as u64)),
        Transport::Udp(u) if first => (u.src_port, u.dst_port, 0, Some(d.payload_len as u64)),
        Transport::Sctp(s) if first => (s.src_port, s.dst_port, 0, Some(d.payload_len as u64)),
        Transport::Icmp(i) | Transport::Icmpv6(i) if first => {
            (0, (i.icmp_type as u16) << 8 | i.code as u16, 0, None)
        }
        _ => (0, 0, 0, None),
    };
    Some((mapped(net.src), mapped(net.dst), sp, dp, net.proto, version, flags, payload))
}

/// Runs one frame through the classifier (or, one in three, the XDP program) and compares the
/// header record and the flow entry with the user-space decoder. True when the key and counters
/// were compared, false when the frame is outside the kernel parser (record compared only).
fn check_frame(probe: &mut KernelProbe, frame: &[u8], n: usize, what: &str) -> bool {
    let program = if n.is_multiple_of(3) { TestProgram::Xdp } else { TestProgram::TcIngress };
    let what = format!("{what} ({program:?})");
    let rc = probe.test_run(program, frame).expect("BPF_PROG_TEST_RUN");
    // TC_ACT_UNSPEC (-1) or XDP_PASS (2): never alters or drops traffic.
    let pass = if program == TestProgram::Xdp { 2 } else { u32::MAX };
    assert_eq!(rc, pass, "{what}: return code");

    // The header record: first SNAPLEN bytes, wire length, ifindex of the test device.
    let mut recs = Vec::new();
    probe.drain_ring(|b| recs.push(netrec_recorder::packet_from_ring(b, 0).expect("ring record")));
    assert_eq!(recs.len(), 1, "{what}: one ring record");
    let r = &recs[0];
    let cap = frame.len().min(SNAPLEN as usize);
    assert_eq!(r.data, frame[..cap], "{what}: recorded bytes");
    assert_eq!(r.wire_len as usize, frame.len(), "{what}: wire length");

    let flows = probe.read_flows(Some(u64::MAX));
    let Some((src, dst, sp, dp, proto, version, flags, payload)) = expected(frame) else { return false };
    assert_eq!(flows.len(), 1, "{what}: one flow entry");
    let (k, c) = (flows[0].key, flows[0].counters);
    assert_eq!(
        (k.src, k.dst, k.src_port, k.dst_port, k.proto, k.ip_version),
        (src, dst, sp, dp, proto, version),
        "{what}: flow key"
    );
    assert_eq!(k.ifindex, r.iface, "{what}: key and record name the same interface");
    assert_eq!((c.packets, c.bytes), (1, frame.len() as u64), "{what}: counters");
    assert_eq!(c.tcp_flags, flags, "{what}: TCP flags");
    if let Some(payload) = payload {
        assert_eq!(c.payload_bytes, payload, "{what}: payload bytes");
    }
    true
}

#[test]
fn kernel_and_user_space_decoders_agree_on_every_fixture_frame() {
    if !require_root("kernel_and_user_space_decoders_agree_on_every_fixture_frame") {
        return;
    }
    let Some(mut probe) = probe() else { return };
    let mut dir: Vec<_> = std::fs::read_dir(repo_root().join("fixtures/pcap"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "pcap"))
        .collect();
    dir.sort();
    let (mut compared, mut records, mut outside) = (0u64, 0u64, 0u64);
    let mut tally = |agreed: bool| {
        records += 1;
        if agreed { compared += 1 } else { outside += 1 }
    };
    for path in &dir {
        let mut src = CaptureSource::open(path).expect("fixture opens");
        let mut n = 0;
        // The first 400 frames of each capture: every kind the generator makes, bounded time.
        while let Some(p) = src.next_packet().expect("fixture reads") {
            if p.link_type != LinkType::ETHERNET || p.data.len() < 14 || n >= 400 {
                continue;
            }
            n += 1;
            let what = format!("{} frame {n}", path.display());
            tally(check_frame(&mut probe, p.data, n, &what));
        }
    }
    // The decoder's corpus (VLAN stacks, IPv6, fragments, tunnels, 802.3) and MPLS stacks of 1 to
    // 5 labels: those of at most 4 over IP are keyed on the inner packet by the kernel too.
    let syn = builder::ipv4([10, 1, 0, 1], [10, 1, 0, 2], 6, &builder::tcp(4000, 80, 0x02, 1, 0, &[], b""));
    let mut extra: Vec<(String, Vec<u8>, Option<bool>)> = builder::corpus()
        .into_iter()
        .filter(|(lt, f)| *lt == LinkType::ETHERNET && f.len() >= 14)
        .enumerate()
        .map(|(i, (_, f))| (format!("corpus frame {i}"), f, None))
        .collect();
    let qinq = builder::eth_tags(&[(0x9100, 10), (0x8100, 20)], 0x0800, &syn);
    extra.push(("QinQ with TPID 0x9100".into(), qinq, Some(true)));
    for labels in 1..=5u32 {
        let stack: Vec<u32> = (0..labels).map(|l| 16 + l).collect();
        let f = builder::eth_vlans(&[5], 0x8847, &builder::mpls(&stack, &syn));
        extra.push((format!("MPLS, {labels} labels"), f, Some(labels <= 4)));
    }
    // SCTP keyed by its ports (a header cut short: ports 0 on both sides); IPv4 total length 0
    // (segmentation offload): the whole frame is the packet, payload included.
    let sctp = [
        0x0b, 0x59, 0x0b, 0x59, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 20, 0, 0, 0, 7, 0, 0, 0x10, 0, 0, 1, 0, 1,
        0, 0, 0, 1,
    ];
    for (what, l4) in [("SCTP INIT", &sctp[..]), ("SCTP header cut short", &sctp[..10])] {
        let f = builder::eth(0x0800, &builder::ipv4([10, 1, 0, 1], [10, 1, 0, 2], 132, l4));
        extra.push((what.into(), f, Some(true)));
    }
    let mut tso =
        builder::ipv4([10, 1, 0, 1], [10, 1, 0, 2], 6, &builder::tcp(4000, 80, 0x10, 1, 1, &[], &[9; 3000]));
    tso[2..4].copy_from_slice(&[0, 0]);
    extra.push(("IPv4 total length 0 (TSO)".into(), builder::eth(0x0800, &tso), Some(true)));
    for (k, (what, frame, must_agree)) in extra.into_iter().enumerate() {
        let agreed = check_frame(&mut probe, &frame, k, &what);
        if let Some(m) = must_agree {
            assert_eq!(agreed, m, "{what}: keyed by the kernel (true) or left to user space (false)");
        }
        tally(agreed);
    }
    eprintln!(
        "{compared} frames agreed on key and counters, {records} header records, {outside} outside the kernel parser"
    );
    assert!(compared > 2000, "too few frames compared: {compared}");
    let c = probe.counters();
    assert_eq!(c.packets, records, "kernel packet counter");
    assert_eq!((c.ring_drops, c.map_full, c.map_busy), (0, 0, 0), "no loss in the test");
}
