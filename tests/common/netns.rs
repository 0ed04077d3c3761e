//! RAII network namespaces for privileged tests: two namespaces joined by a veth pair with the
//! test's own addresses (10.77.N.1 and 10.77.N.2). Torn down on drop, even when the test fails.
//! All test traffic stays between these two namespaces.
#![allow(dead_code)]

use std::process::{Command, Output, Stdio};

pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc_geteuid() == 0 }
}

unsafe extern "C" {
    #[link_name = "geteuid"]
    fn libc_geteuid() -> u32;
}

/// Skip (return false) when not root and not in CI; in CI a privileged test must run.
pub fn require_root(test: &str) -> bool {
    if is_root() {
        return true;
    }
    if std::env::var_os("CI").is_some() {
        panic!("{test}: CI must run privileged tests as root");
    }
    eprintln!("{test}: skipped (needs root)");
    false
}

fn ip(args: &[&str]) -> Output {
    let out = Command::new("ip").args(args).output().expect("run ip (iproute2)");
    assert!(out.status.success(), "ip {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr));
    out
}

/// Two namespaces `a` and `b`, veth `a_if` (10.77.N.1/24) in `a` and `b_if` (10.77.N.2/24) in `b`.
#[derive(Debug)]
pub struct VethPair {
    pub a: String,
    pub b: String,
    pub a_if: String,
    pub b_if: String,
    pub a_addr: String,
    pub b_addr: String,
    pub subnet: String,
}

impl VethPair {
    /// `n` picks the /24 (10.77.n.0/24) so concurrent tests do not collide.
    pub fn new(n: u8) -> VethPair {
        let tag = format!("{}{}", std::process::id() % 100_000, n);
        let pair = VethPair {
            a: format!("nra{tag}"),
            b: format!("nrb{tag}"),
            a_if: format!("nra{tag}"),
            b_if: format!("nrb{tag}"),
            a_addr: format!("10.77.{n}.1"),
            b_addr: format!("10.77.{n}.2"),
            subnet: format!("10.77.{n}.0"),
        };
        ip(&["netns", "add", &pair.a]);
        ip(&["netns", "add", &pair.b]);
        ip(&[
            "link", "add", &pair.a_if, "netns", &pair.a, "type", "veth", "peer", "name", &pair.b_if, "netns",
            &pair.b,
        ]);
        for (ns, ifname, addr) in [(&pair.a, &pair.a_if, &pair.a_addr), (&pair.b, &pair.b_if, &pair.b_addr)] {
            ip(&["-n", ns, "addr", "add", &format!("{addr}/24"), "dev", ifname]);
            ip(&["-n", ns, "link", "set", ifname, "up"]);
            ip(&["-n", ns, "link", "set", "lo", "up"]);
        }
        pair
    }

    /// A command to run inside namespace `ns`.
    pub fn cmd(&self, ns: &str, program: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", ns, program]);
        c.stdin(Stdio::null());
        c
    }

    /// rx/tx packet and byte counters of an interface in a namespace.
    pub fn link_stats(&self, ns: &str, ifname: &str) -> LinkStats {
        let read = |name: &str| -> u64 {
            let out = Command::new("ip")
                .args(["netns", "exec", ns, "cat", &format!("/sys/class/net/{ifname}/statistics/{name}")])
                .output()
                .expect("read link stats");
            String::from_utf8_lossy(&out.stdout).trim().parse().expect("counter")
        };
        LinkStats {
            rx_packets: read("rx_packets"),
            tx_packets: read("tx_packets"),
            rx_bytes: read("rx_bytes"),
            tx_bytes: read("tx_bytes"),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LinkStats {
    pub rx_packets: u64,
    pub tx_packets: u64,
    pub rx_bytes: u64,
    pub tx_bytes: u64,
}

impl Drop for VethPair {
    fn drop(&mut self) {
        // Deleting the namespaces deletes the veth pair with them.
        for ns in [&self.a, &self.b] {
            let _ = Command::new("ip").args(["netns", "del", ns]).output();
        }
    }
}
