//! The live packet source: the kernel programs' ring buffer, counters and flow map.

use crate::ebpf::{KernelCounters, KernelFlow, KernelProbe};
use crate::packet_from_ring;
use crate::run::PacketSource;
use netrec_format::{DirStats, FlowEnd, FlowKey, FlowRecord, LossRecord, PacketRecord, TcpState, Ts};
use netrec_recorder_common as abi;
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::{AsRawFd, RawFd};
use std::time::Duration;
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;

/// Adapter so tokio can poll the ring buffer's fd while owning the probe.
struct RingFd(KernelProbe);

impl AsRawFd for RingFd {
    fn as_raw_fd(&self) -> RawFd {
        self.0.ring_fd().as_raw_fd()
    }
}

/// `CLOCK_REALTIME - CLOCK_MONOTONIC`: added to kernel times (bpf_ktime_get_ns) to get Unix time.
pub fn clock_base_ns() -> u64 {
    fn read(clock: libc::clockid_t) -> i128 {
        let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
        // SAFETY: valid pointer to a timespec.
        unsafe { libc::clock_gettime(clock, &mut ts) };
        ts.tv_sec as i128 * 1_000_000_000 + ts.tv_nsec as i128
    }
    (read(libc::CLOCK_REALTIME) - read(libc::CLOCK_MONOTONIC)).max(0) as u64
}

pub struct EbpfSource {
    fd: AsyncFd<RingFd>,
    clock_base: u64,
    last: KernelCounters,
    /// Kernel flows idle this long are emitted and removed from the map.
    idle_ns: u64,
    bad_records: u64,
}

impl std::fmt::Debug for EbpfSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EbpfSource").field("clock_base", &self.clock_base).finish_non_exhaustive()
    }
}

impl EbpfSource {
    /// Must be called inside a tokio runtime.
    pub fn new(probe: KernelProbe, idle: Duration) -> std::io::Result<EbpfSource> {
        // SAFETY: the fd belongs to the ring map owned by the probe, which the AsyncFd owns for
        // its whole life; it stays open and unchanged until the AsyncFd is dropped.
        let fd = unsafe { AsyncFd::register_with_interest(RingFd(probe), Interest::READABLE) }
            .map_err(|e| e.into_parts().1)?;
        Ok(EbpfSource {
            fd,
            clock_base: clock_base_ns(),
            last: KernelCounters::default(),
            idle_ns: idle.as_nanos() as u64,
            bad_records: 0,
        })
    }

    pub fn counters(&self) -> KernelCounters {
        self.fd.get_ref().0.counters()
    }
}

impl PacketSource for EbpfSource {
    async fn wait(&mut self, timeout: Duration) -> std::io::Result<()> {
        // The kernel wakes us only every WAKEUP_BYTES; the timeout bounds the latency otherwise.
        match tokio::time::timeout(timeout, self.fd.readable_mut()).await {
            Ok(Ok(mut guard)) => {
                guard.clear_ready();
                Ok(())
            }
            Ok(Err(e)) => Err(e),
            Err(_) => Ok(()),
        }
    }

    fn drain(&mut self, f: &mut dyn FnMut(&PacketRecord)) -> usize {
        let base = self.clock_base;
        let mut bad = 0;
        let n = self.fd.get_mut().0.drain_ring(|bytes| match packet_from_ring(bytes, base) {
            Ok(rec) => f(&rec),
            Err(_) => bad += 1,
        });
        self.bad_records += bad;
        n - bad as usize
    }

    fn loss(&mut self, now: Ts) -> Option<LossRecord> {
        let c = self.fd.get_ref().0.counters();
        let d = |a: u64, b: u64| a.wrapping_sub(b);
        let rec = LossRecord {
            ts: now,
            iface: 0,
            kernel_packets: d(c.packets, self.last.packets),
            kernel_bytes: d(c.bytes, self.last.bytes),
            ring_drops: d(c.ring_drops, self.last.ring_drops),
            map_full: d(c.map_full, self.last.map_full),
            busy: d(c.map_busy, self.last.map_busy),
            writer_drops: std::mem::take(&mut self.bad_records),
        };
        self.last = c;
        Some(rec)
    }

    fn ended_flows(&mut self, now: Ts, all: bool) -> Vec<FlowRecord> {
        let kernel_now = now.0.saturating_sub(self.clock_base);
        let cutoff = kernel_now.saturating_sub(self.idle_ns);
        // A flow that closed (FIN both ways, or RST) ends after a short grace for the last ACKs,
        // not after the idle timeout: its record is final and the map slot is freed early.
        let closed_cutoff = kernel_now.saturating_sub(CLOSE_GRACE_NS.min(self.idle_ns));
        let probe = &mut self.fd.get_mut().0;
        let flows = probe.read_flows(None);
        let paired = pair_flows(&flows, self.clock_base);
        let mut out = Vec::new();
        let mut remove = Vec::new();
        for (rec, keys) in paired {
            let last = rec.last_ts.0.saturating_sub(self.clock_base);
            let idle = last < cutoff || (rec.end == FlowEnd::TcpClose && last < closed_cutoff);
            if idle || all {
                let mut rec = rec;
                if idle && rec.end == FlowEnd::Open {
                    rec.end = FlowEnd::IdleTimeout;
                }
                // Emitted records leave the map, also at shutdown: a second final drain (stop
                // signal, then the last drain) must not emit the same flow twice.
                remove.extend(keys);
                out.push(rec);
            }
        }
        probe.remove_flows(&remove);
        out
    }
}

/// How long a closed TCP flow stays in the kernel map after its last packet.
const CLOSE_GRACE_NS: u64 = 2_000_000_000;

fn addr(raw: &[u8; 16], v: u8) -> IpAddr {
    if v == 4 {
        IpAddr::V4(Ipv4Addr::new(raw[12], raw[13], raw[14], raw[15]))
    } else {
        IpAddr::V6(Ipv6Addr::from(*raw))
    }
}

/// Pair the kernel's per-direction entries into bidirectional flow records (initiator first),
/// in a deterministic order.
pub fn pair_flows(flows: &[KernelFlow], clock_base: u64) -> Vec<(FlowRecord, Vec<abi::FlowKey>)> {
    type Side = ([u8; 16], u16);
    let mut groups: BTreeMap<(u8, u32, Side, Side), Vec<&KernelFlow>> = BTreeMap::new();
    for f in flows {
        let a = (f.key.src, f.key.src_port);
        let b = (f.key.dst, f.key.dst_port);
        let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
        groups.entry((f.key.proto, f.key.ifindex, lo, hi)).or_default().push(f);
    }
    let mut out = Vec::new();
    for (_, mut dirs) in groups {
        // Initiator: the side that sent a SYN without ACK, else the earliest.
        dirs.sort_by_key(|f| (f.counters.tcp_flags & 0x12 != 0x02, f.counters.first_ns));
        let fwd = dirs[0];
        let rev = dirs.get(1).copied();
        let stats = |f: Option<&KernelFlow>| match f {
            Some(f) => DirStats {
                packets: f.counters.packets,
                bytes: f.counters.bytes,
                payload_bytes: f.counters.payload_bytes,
                tcp_flags: f.counters.tcp_flags,
                ..DirStats::default()
            },
            None => DirStats::default(),
        };
        let (fs, rs) = (stats(Some(fwd)), stats(rev));
        let first = dirs.iter().map(|f| f.counters.first_ns).min().unwrap_or(0);
        let last = dirs.iter().map(|f| f.counters.last_ns).max().unwrap_or(0);
        let flags = fs.tcp_flags | rs.tcp_flags;
        let tcp = fwd.key.proto == 6;
        let state = if !tcp {
            TcpState::None
        } else if flags & 0x04 != 0 {
            TcpState::Reset
        } else if fs.tcp_flags & 0x01 != 0 && rs.tcp_flags & 0x01 != 0 {
            TcpState::Closed
        } else if flags & 0x01 != 0 {
            TcpState::FinWait
        } else if fs.tcp_flags & 0x02 != 0 && rs.tcp_flags & 0x12 == 0x12 && fs.tcp_flags & 0x10 != 0 {
            TcpState::Established
        } else if fs.tcp_flags & 0x02 != 0 && rs.tcp_flags & 0x12 == 0x12 {
            TcpState::SynReceived
        } else if fs.tcp_flags & 0x02 != 0 {
            TcpState::SynSent
        } else {
            TcpState::Midstream
        };
        let end = if matches!(state, TcpState::Reset | TcpState::Closed) {
            FlowEnd::TcpClose
        } else {
            FlowEnd::Open
        };
        let v = fwd.key.ip_version;
        let rec = FlowRecord {
            key: FlowKey {
                proto: fwd.key.proto as u16,
                src_ip: addr(&fwd.key.src, v),
                src_port: fwd.key.src_port,
                dst_ip: addr(&fwd.key.dst, v),
                dst_port: fwd.key.dst_port,
                vlan: 0,
                tunnel_id: 0,
            },
            first_ts: Ts(first.wrapping_add(clock_base)),
            last_ts: Ts(last.wrapping_add(clock_base)),
            fwd: fs,
            rev: rs,
            tcp_state: state,
            rtt_server_ns: None,
            rtt_client_ns: None,
            end,
            tunnel: None,
            anomalies: 0,
        };
        out.push((rec, dirs.iter().map(|f| f.key).collect()));
    }
    out.sort_by_key(|a| (a.0.first_ts, a.0.key));
    out
}
