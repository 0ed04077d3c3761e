//! Privileged (issue #5): the kernel program and the user-space decoder agree. Every Ethernet frame
//! of the bundled fixture captures runs through the real classifier and XDP program with
//! BPF_PROG_TEST_RUN; the flow key, TCP flags and payload bytes the kernel counted, and the header
//! record it queued, must equal what `netrec_format::decode` says about the same bytes.

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
    // 802.3 + LLC/SNAP frames: the kernel dispatches on Ethernet II types only.
    if u16::from_be_bytes([frame[12], frame[13]]) <= 1500 {
        return None;
    }
    let net = d.net?;
    if d.tunnel.is_some() || d.mpls_labels > 0 || d.vlan_count > 2 || d.anomalies.any_malformed() {
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
        Transport::Icmp(i) | Transport::Icmpv6(i) if first => {
            (0, (i.icmp_type as u16) << 8 | i.code as u16, 0, None)
        }
        _ => (0, 0, 0, None),
    };
    Some((mapped(net.src), mapped(net.dst), sp, dp, net.proto, version, flags, payload))
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
    for path in &dir {
        let mut src = CaptureSource::open(path).expect("fixture opens");
        let mut n = 0;
        // The first 400 frames of each capture: every kind the generator makes, bounded time.
        while let Some(p) = src.next_packet().expect("fixture reads") {
            if p.link_type != LinkType::ETHERNET || p.data.len() < 14 || n >= 400 {
                continue;
            }
            n += 1;
            let frame = p.data.to_vec();
            let program = if n % 3 == 0 { TestProgram::Xdp } else { TestProgram::TcIngress };
            let what = format!("{} frame {n} ({program:?})", path.display());
            let rc = probe.test_run(program, &frame).expect("BPF_PROG_TEST_RUN");
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
            records += 1;

            let flows = probe.read_flows(Some(u64::MAX));
            match expected(&frame) {
                Some((src, dst, sp, dp, proto, version, flags, payload)) => {
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
                    compared += 1;
                }
                None => outside += 1,
            }
        }
    }
    eprintln!(
        "{compared} frames agreed on key and counters, {records} header records, {outside} outside the kernel parser"
    );
    assert!(compared > 2000, "too few frames compared: {compared}");
    let c = probe.counters();
    assert_eq!(c.packets, records, "kernel packet counter");
    assert_eq!((c.ring_drops, c.map_full, c.map_busy), (0, 0, 0), "no loss in the test");
}
