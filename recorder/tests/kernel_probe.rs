//! Privileged: load the kernel programs, attach them to a veth in a test namespace, send bounded
//! traffic between the test's own two namespaces, and check what the kernel counted and recorded.
//! Runs in CI (root); skipped elsewhere unless root.

use netrec_format::decode::{Transport, decode};
use netrec_recorder::ebpf::{Hook, KernelProbe, ObjectSource, ProbeConfig};
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::process::Command;

fn object() -> Option<ObjectSource> {
    if let Some(p) = std::env::var_os("NETREC_TEST_BPF_OBJECT") {
        return Some(ObjectSource::File(PathBuf::from(p)));
    }
    ObjectSource::default_available()
}

fn is_root() -> bool {
    // SAFETY: no preconditions.
    unsafe { libc::geteuid() == 0 }
}

struct Ns(Vec<String>);
impl Drop for Ns {
    fn drop(&mut self) {
        for n in &self.0 {
            let _ = Command::new("ip").args(["netns", "del", n]).output();
        }
    }
}

fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().expect("ip");
    assert!(out.status.success(), "ip {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr));
}

/// Move the calling thread into a named network namespace.
fn enter_netns(name: &str) {
    let f = std::fs::File::open(format!("/var/run/netns/{name}")).expect("open netns");
    // SAFETY: valid fd; CLONE_NEWNET only affects this thread.
    let rc = unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) };
    assert_eq!(rc, 0, "setns {name}: {}", std::io::Error::last_os_error());
}

fn stat(ns: &str, ifname: &str, what: &str) -> u64 {
    let out = Command::new("ip")
        .args(["netns", "exec", ns, "cat", &format!("/sys/class/net/{ifname}/statistics/{what}")])
        .output()
        .expect("stats");
    String::from_utf8_lossy(&out.stdout).trim().parse().expect("number")
}

#[test]
fn kernel_counts_and_records_udp_between_namespaces() {
    if !is_root() {
        assert!(std::env::var_os("CI").is_none(), "CI must run privileged tests as root");
        eprintln!("skipped: needs root");
        return;
    }
    let Some(obj) = object() else {
        assert!(std::env::var_os("CI").is_none(), "CI must build with the eBPF object (feature ebpf)");
        eprintln!("skipped: no eBPF object in this build");
        return;
    };
    let tag = std::process::id() % 100_000;
    let (a, b) = (format!("nrpa{tag}"), format!("nrpb{tag}"));
    let _guard = Ns(vec![a.clone(), b.clone()]);
    ip(&["netns", "add", &a]);
    ip(&["netns", "add", &b]);
    ip(&["link", "add", &a, "netns", &a, "type", "veth", "peer", "name", &b, "netns", &b]);
    for (ns, addr) in [(&a, "10.77.90.1/24"), (&b, "10.77.90.2/24")] {
        ip(&["-n", ns, "addr", "add", addr, "dev", ns]);
        ip(&["-n", ns, "link", "set", ns, "up"]);
    }
    // Settle neighbour discovery before counting, so the comparison covers a quiet interface.
    let gen_py = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/traffic/gen.py");
    let a2 = a.clone();
    let (tx, rx) = std::sync::mpsc::channel();
    let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
    let worker = std::thread::spawn(move || {
        enter_netns(&a2);
        let cfg = ProbeConfig {
            interfaces: vec![a2.clone()],
            snaplen: 128,
            record_headers: true,
            ring_bytes: 1 << 20,
            flow_entries: 4096,
            hook: Hook::Tcx,
            object: obj,
            netlink_fallback: false,
        };
        let mut probe = KernelProbe::load(&cfg).expect("load and attach");
        let before_rx = stat(&a2, &a2, "rx_packets");
        let before_tx = stat(&a2, &a2, "tx_packets");
        tx.send(()).unwrap();
        // Wait until the traffic is done.
        done_rx.recv().expect("traffic done");
        std::thread::sleep(std::time::Duration::from_millis(200));
        let after_rx = stat(&a2, &a2, "rx_packets");
        let after_tx = stat(&a2, &a2, "tx_packets");
        let mut records = Vec::new();
        probe.drain_ring(|bytes| records.push(netrec_recorder::packet_from_ring(bytes, 0).expect("record")));
        let counters = probe.counters();
        let flows = probe.read_flows(None);
        (counters, flows, records, after_rx - before_rx + after_tx - before_tx)
    });
    if rx.recv().is_err() {
        // The worker failed before attaching: surface its panic.
        std::panic::resume_unwind(worker.join().expect_err("worker failed"));
    }
    let status = Command::new("ip")
        .args(["netns", "exec", &b, "python3"])
        .arg(&gen_py)
        .args(["udp-client", "10.77.90.1", "7777", "20", "100"])
        .status()
        .expect("udp client");
    assert!(status.success());
    done_tx.send(()).unwrap();
    let (counters, flows, records, link_packets) = worker.join().expect("worker");

    // Loss is counted, never silent: every packet the kernel saw is a record or a counted drop.
    assert_eq!(counters.packets, records.len() as u64 + counters.ring_drops);
    assert!(counters.packets >= 20, "kernel saw {} packets", counters.packets);
    assert_eq!(counters.packets, link_packets, "kernel counters vs interface counters");
    // The UDP flow: 20 datagrams of 100 payload bytes, ingress on a.
    let udp: Vec<_> = flows.iter().filter(|f| f.key.proto == 17 && f.key.dst_port == 7777).collect();
    assert_eq!(udp.len(), 1, "flows: {flows:?}");
    assert_eq!(udp[0].counters.packets, 20);
    assert_eq!(udp[0].counters.payload_bytes, 2000);
    // Kernel/user decoder agreement on every recorded header.
    let mut udp_records = 0;
    for r in &records {
        let d = decode(r.link_type, &r.data, r.wire_len);
        if let Transport::Udp(u) = d.transport
            && u.dst_port == 7777
        {
            udp_records += 1;
            assert_eq!(d.payload_len, 100);
            assert_eq!(r.wire_len, 14 + 20 + 8 + 100);
        }
    }
    assert_eq!(udp_records, 20);
}
