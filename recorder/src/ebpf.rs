//! Loading, configuring and attaching the kernel programs, and reading their maps.
//!
//! Everything kernel-specific lives here; the rest of the recorder sees `PacketRecord`s,
//! `KernelCounters` and `KernelFlow`s (format-crate types or plain structs), never ABI structs.

use aya::maps::{Array, MapData, PerCpuArray, PerCpuHashMap, RingBuf};
use aya::programs::tc::{NlOptions, TcAttachOptions};
use aya::programs::{LinkOrder, SchedClassifier, TcAttachType, TestRun, TestRunOptions, Xdp};
use aya::{Ebpf, EbpfLoader};
use netrec_recorder_common as abi;
use std::os::fd::{AsFd, BorrowedFd};
use std::path::PathBuf;

/// Where the kernel object comes from.
#[derive(Clone, Debug)]
pub enum ObjectSource {
    /// The object embedded at build time (`ebpf` feature).
    Embedded,
    File(PathBuf),
}

impl ObjectSource {
    /// The embedded object when this build has one, else none.
    pub fn default_available() -> Option<ObjectSource> {
        if embedded_object().is_some() { Some(ObjectSource::Embedded) } else { None }
    }
}

/// The embedded object's bytes (tests derive broken objects from it).
pub fn object_bytes() -> Option<&'static [u8]> {
    embedded_object()
}

#[cfg(netrec_embedded_ebpf)]
fn embedded_object() -> Option<&'static [u8]> {
    // The ELF parser needs 8-byte alignment; include_bytes! only guarantees 1.
    #[repr(C, align(8))]
    struct Aligned<T: ?Sized>(T);
    static OBJ: &Aligned<[u8]> = &Aligned(*include_bytes!(env!("NETREC_EBPF_OBJ")));
    Some(&OBJ.0)
}

#[cfg(not(netrec_embedded_ebpf))]
fn embedded_object() -> Option<&'static [u8]> {
    None
}

/// How the classifier is attached.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hook {
    /// tcx links (kernel >= 6.6); falls back to a clsact qdisc when tcx is unavailable.
    Tcx,
    /// A clsact qdisc with netlink-attached filters (older kernels).
    Tc,
    /// XDP on ingress only (no egress): the cheapest hook for high receive rates.
    Xdp(XdpMode),
    /// Load and configure the programs but attach nothing (BPF_PROG_TEST_RUN, tests).
    Detached,
}

/// How the XDP program is attached.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum XdpMode {
    /// The driver's native XDP when it has one, else generic (skb) mode: the kernel decides.
    Auto,
    /// Native (driver) mode only; fails on drivers without XDP support.
    Native,
    /// Generic (skb) mode: works on every interface, slower.
    Skb,
}

impl XdpMode {
    fn aya(self) -> aya::programs::XdpMode {
        match self {
            XdpMode::Auto => aya::programs::XdpMode::Default,
            XdpMode::Native => aya::programs::XdpMode::Driver,
            XdpMode::Skb => aya::programs::XdpMode::Skb,
        }
    }
}

/// Which program a test run executes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TestProgram {
    TcIngress,
    TcEgress,
    Xdp,
}

#[derive(Clone, Debug)]
pub struct ProbeConfig {
    pub interfaces: Vec<String>,
    pub snaplen: u32,
    pub record_headers: bool,
    pub ring_bytes: u32,
    pub flow_entries: u32,
    pub hook: Hook,
    pub object: ObjectSource,
    /// With `Hook::Tcx`, fall back to a clsact qdisc + netlink filter when tcx is unavailable.
    /// Off when privileges are dropped: a netlink filter cannot be removed without CAP_NET_ADMIN.
    pub netlink_fallback: bool,
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProbeError {
    #[error(
        "this netrec was built without the eBPF programs; rebuild with `make build-ebpf` (feature `ebpf`) or pass --bpf-object FILE"
    )]
    NoObject,
    #[error("reading eBPF object {path}")]
    ReadObject {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("unknown interface {name:?} (see `ip link`)")]
    UnknownInterface { name: String },
    #[error("snaplen {snaplen} out of range 0..={max}")]
    Snaplen { snaplen: u32, max: usize },
    #[error("loading the eBPF programs failed{hint}")]
    Load {
        hint: String,
        #[source]
        source: Box<aya::EbpfError>,
    },
    #[error("the kernel verifier rejected program {program}{hint}; verifier log (last lines):\n{log_tail}\n")]
    Verifier {
        program: &'static str,
        hint: String,
        log_tail: String,
        /// The syscall's error; the log is not repeated in the source chain.
        #[source]
        source: std::io::Error,
    },
    #[error("loading program {program} failed{hint}")]
    Program {
        program: &'static str,
        hint: String,
        #[source]
        source: Box<aya::programs::ProgramError>,
    },
    #[error("attaching {program} to {interface} ({direction}) failed{hint}")]
    Attach {
        program: &'static str,
        interface: String,
        direction: &'static str,
        hint: String,
        #[source]
        source: Box<aya::programs::ProgramError>,
    },
    #[error("BPF_PROG_TEST_RUN of {program} failed")]
    TestRun {
        program: &'static str,
        #[source]
        source: Box<aya::programs::ProgramError>,
    },
    #[error("eBPF map {name} missing or of the wrong type")]
    Map {
        name: &'static str,
        #[source]
        source: Option<aya::maps::MapError>,
    },
}

const PRIV_HINT: &str = " (needs root, or CAP_BPF + CAP_NET_ADMIN + CAP_PERFMON)";

fn hint_for(err: &dyn std::error::Error) -> String {
    let mut e: Option<&dyn std::error::Error> = Some(err);
    while let Some(cur) = e {
        let text = cur.to_string();
        if text.contains("Operation not permitted")
            || text.contains("EPERM")
            || text.contains("Permission denied")
        {
            return PRIV_HINT.to_string();
        }
        if text.contains("No such device") || text.contains("ENODEV") {
            return " (no such interface)".to_string();
        }
        e = cur.source();
    }
    String::new()
}

/// Sum of the per-CPU counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KernelCounters {
    pub packets: u64,
    pub bytes: u64,
    pub syn: u64,
    pub syn_ack: u64,
    pub rst: u64,
    pub icmp: u64,
    pub non_ip: u64,
    pub ring_drops: u64,
    pub map_full: u64,
    pub map_busy: u64,
}

/// One direction of one flow as counted by the kernel (per-CPU values summed).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KernelFlow {
    pub key: abi::FlowKey,
    pub counters: abi::FlowCounters,
}

/// The loaded and attached programs with their maps. Dropping it detaches everything.
pub struct KernelProbe {
    // Field order matters for drop: maps first, then the Ebpf (which owns the links).
    ring: RingBuf<MapData>,
    counters: PerCpuArray<MapData, u64>,
    flows: PerCpuHashMap<MapData, abi::FlowKey, abi::FlowCounters>,
    bpf: Ebpf,
    ifindexes: Vec<(String, u32)>,
}

impl std::fmt::Debug for KernelProbe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KernelProbe").field("interfaces", &self.ifindexes).finish_non_exhaustive()
    }
}

pub fn ifindex(name: &str) -> Option<u32> {
    let c = std::ffi::CString::new(name).ok()?;
    // SAFETY: a valid NUL-terminated string; if_nametoindex only reads it.
    let idx = unsafe { libc::if_nametoindex(c.as_ptr()) };
    (idx != 0).then_some(idx)
}

impl KernelProbe {
    pub fn load(cfg: &ProbeConfig) -> Result<KernelProbe, ProbeError> {
        if cfg.snaplen as usize > abi::MAX_SNAPLEN {
            return Err(ProbeError::Snaplen { snaplen: cfg.snaplen, max: abi::MAX_SNAPLEN });
        }
        let mut ifindexes = Vec::new();
        for name in &cfg.interfaces {
            let idx = ifindex(name).ok_or_else(|| ProbeError::UnknownInterface { name: name.clone() })?;
            ifindexes.push((name.clone(), idx));
        }
        let owned;
        let bytes: &[u8] = match &cfg.object {
            ObjectSource::Embedded => embedded_object().ok_or(ProbeError::NoObject)?,
            ObjectSource::File(p) => {
                owned =
                    std::fs::read(p).map_err(|source| ProbeError::ReadObject { path: p.clone(), source })?;
                &owned
            }
        };
        // Raising RLIMIT_MEMLOCK is unnecessary on kernels with memcg accounting (>= 5.11) and
        // fails in some containers; aya's loader does not need it, so we do not try.
        let mut bpf = EbpfLoader::new()
            .map_max_entries("EVENTS", cfg.ring_bytes.next_power_of_two().max(4096))
            .map_max_entries("FLOWS", cfg.flow_entries.max(1))
            .load(bytes)
            .map_err(|source| ProbeError::Load { hint: hint_for(&source), source: Box::new(source) })?;

        {
            let mut config: Array<&mut MapData, u32> = Array::try_from(
                bpf.map_mut("CONFIG").ok_or(ProbeError::Map { name: "CONFIG", source: None })?,
            )
            .map_err(|e| ProbeError::Map { name: "CONFIG", source: Some(e) })?;
            let flags = if cfg.record_headers { abi::FLAG_RECORD_HEADERS } else { 0 };
            config
                .set(abi::CONFIG_SNAPLEN, cfg.snaplen, 0)
                .map_err(|e| ProbeError::Map { name: "CONFIG", source: Some(e) })?;
            config
                .set(abi::CONFIG_FLAGS, flags, 0)
                .map_err(|e| ProbeError::Map { name: "CONFIG", source: Some(e) })?;
        }

        match cfg.hook {
            Hook::Tcx | Hook::Tc => attach_tc(&mut bpf, cfg.hook, cfg.netlink_fallback, &ifindexes)?,
            Hook::Xdp(mode) => attach_xdp(&mut bpf, mode, &ifindexes)?,
            Hook::Detached => {
                for program in ["netrec_ingress", "netrec_egress"] {
                    load_program::<SchedClassifier>(&mut bpf, program)?;
                }
                load_program::<Xdp>(&mut bpf, "netrec_xdp")?;
            }
        }

        let ring = RingBuf::try_from(
            bpf.take_map("EVENTS").ok_or(ProbeError::Map { name: "EVENTS", source: None })?,
        )
        .map_err(|e| ProbeError::Map { name: "EVENTS", source: Some(e) })?;
        let counters = PerCpuArray::try_from(
            bpf.take_map("COUNTERS").ok_or(ProbeError::Map { name: "COUNTERS", source: None })?,
        )
        .map_err(|e| ProbeError::Map { name: "COUNTERS", source: Some(e) })?;
        let flows = PerCpuHashMap::try_from(
            bpf.take_map("FLOWS").ok_or(ProbeError::Map { name: "FLOWS", source: None })?,
        )
        .map_err(|e| ProbeError::Map { name: "FLOWS", source: Some(e) })?;
        Ok(KernelProbe { ring, counters, flows, bpf, ifindexes })
    }

    pub fn interfaces(&self) -> &[(String, u32)] {
        &self.ifindexes
    }

    /// The ring buffer's fd, for readiness polling.
    pub fn ring_fd(&self) -> BorrowedFd<'_> {
        self.ring.as_fd()
    }

    /// Hand every queued ring record to `f`; returns how many.
    pub fn drain_ring(&mut self, mut f: impl FnMut(&[u8])) -> usize {
        let mut n = 0;
        while let Some(item) = self.ring.next() {
            f(&item);
            n += 1;
        }
        n
    }

    pub fn counters(&self) -> KernelCounters {
        let mut sum = [0u64; abi::counter::COUNT as usize];
        for (i, slot) in sum.iter_mut().enumerate() {
            if let Ok(values) = self.counters.get(&(i as u32), 0) {
                *slot = values.iter().copied().fold(0u64, u64::wrapping_add);
            }
        }
        use abi::counter as c;
        KernelCounters {
            packets: sum[c::PACKETS as usize],
            bytes: sum[c::BYTES as usize],
            syn: sum[c::SYN as usize],
            syn_ack: sum[c::SYN_ACK as usize],
            rst: sum[c::RST as usize],
            icmp: sum[c::ICMP as usize],
            non_ip: sum[c::NON_IP as usize],
            ring_drops: sum[c::RING_DROPS as usize],
            map_full: sum[c::MAP_FULL as usize],
            map_busy: sum[c::MAP_BUSY as usize],
        }
    }

    /// Read every flow entry (per-CPU values merged). With `remove_idle_before` set, entries whose
    /// last packet is older than that kernel time are deleted after being read, freeing room.
    pub fn read_flows(&mut self, remove_idle_before: Option<u64>) -> Vec<KernelFlow> {
        let mut out = Vec::new();
        for item in self.flows.iter() {
            let Ok((key, values)) = item else { continue };
            let mut merged = abi::FlowCounters::default();
            for v in values.iter() {
                if v.packets == 0 {
                    continue;
                }
                merged.packets += v.packets;
                merged.bytes += v.bytes;
                merged.payload_bytes += v.payload_bytes;
                merged.tcp_flags |= v.tcp_flags;
                merged.direction = v.direction;
                if merged.first_ns == 0 || (v.first_ns != 0 && v.first_ns < merged.first_ns) {
                    merged.first_ns = v.first_ns;
                }
                merged.last_ns = merged.last_ns.max(v.last_ns);
            }
            out.push(KernelFlow { key, counters: merged });
        }
        if let Some(before) = remove_idle_before {
            for f in &out {
                if f.counters.last_ns < before {
                    let _ = self.flows.remove(&f.key);
                }
            }
        }
        // Map iteration order is the kernel's hash order: sort for deterministic output.
        out.sort_by(|a, b| {
            (a.counters.first_ns, a.key.src, a.key.dst).cmp(&(b.counters.first_ns, b.key.src, b.key.dst))
        });
        out
    }
}

impl KernelProbe {
    /// Run one program on a synthetic frame with BPF_PROG_TEST_RUN (the kernel builds an skb or
    /// xdp_buff around it); returns the program's return code. Its map updates and ring records are
    /// real, so tests read them back with `read_flows` and `drain_ring`.
    pub fn test_run(&mut self, program: TestProgram, frame: &[u8]) -> Result<u32, ProbeError> {
        let name = match program {
            TestProgram::TcIngress => "netrec_ingress",
            TestProgram::TcEgress => "netrec_egress",
            TestProgram::Xdp => "netrec_xdp",
        };
        let prog = self.bpf.program(name).ok_or(ProbeError::Map { name: "program", source: None })?;
        let opts = TestRunOptions { data_in: Some(frame), ..TestRunOptions::default() };
        let res = match program {
            TestProgram::Xdp => <&Xdp>::try_from(prog).ok().map(|p| p.test_run(opts)),
            _ => <&SchedClassifier>::try_from(prog).ok().map(|p| p.test_run(opts)),
        };
        let res = res.ok_or(ProbeError::Map { name: "program", source: None })?;
        res.map(|r| r.return_value)
            .map_err(|source| ProbeError::TestRun { program: name, source: Box::new(source) })
    }

    /// Delete flow entries (after their counters were emitted). A packet counted between the read
    /// and the delete is lost with the entry; idle entries make that window negligible.
    pub fn remove_flows(&mut self, keys: &[abi::FlowKey]) {
        for k in keys {
            let _ = self.flows.remove(k);
        }
    }
}

/// Load (verify) one program of the object; the verifier's log tail goes into the error.
fn load_program<'a, P>(bpf: &'a mut Ebpf, program: &'static str) -> Result<&'a mut P, ProbeError>
where
    P: 'a + LoadableProgram,
    &'a mut P: TryFrom<&'a mut aya::programs::Program>,
{
    let prog: &mut P = bpf
        .program_mut(program)
        .and_then(|p| p.try_into().ok())
        .ok_or(ProbeError::Map { name: "program", source: None })?;
    prog.load_program().map_err(|source| program_error(program, source))?;
    Ok(prog)
}

/// The two program kinds we load, behind one `load` (their `load` methods differ in arguments).
trait LoadableProgram {
    fn load_program(&mut self) -> Result<(), aya::programs::ProgramError>;
}
impl LoadableProgram for SchedClassifier {
    fn load_program(&mut self) -> Result<(), aya::programs::ProgramError> {
        self.load()
    }
}
impl LoadableProgram for Xdp {
    fn load_program(&mut self) -> Result<(), aya::programs::ProgramError> {
        self.load()
    }
}

fn attach_tc(
    bpf: &mut Ebpf,
    hook: Hook,
    fallback: bool,
    ifindexes: &[(String, u32)],
) -> Result<(), ProbeError> {
    for (program, attach) in
        [("netrec_ingress", TcAttachType::Ingress), ("netrec_egress", TcAttachType::Egress)]
    {
        let prog = load_program::<SchedClassifier>(bpf, program)?;
        let direction = if attach == TcAttachType::Ingress { "ingress" } else { "egress" };
        for (name, _) in ifindexes {
            let res = if hook == Hook::Tcx {
                prog.attach_with_options(name, attach, TcAttachOptions::TcxOrder(LinkOrder::default()))
            } else {
                Err(aya::programs::ProgramError::UnexpectedProgramType)
            };
            let res = match res {
                Ok(id) => Ok(id),
                Err(e) if hook == Hook::Tcx && !fallback => Err(e),
                Err(_) => {
                    // Older kernels: clsact qdisc + netlink filter (an existing qdisc is fine).
                    let _ = aya::programs::tc::qdisc_add_clsact(name);
                    prog.attach_with_options(name, attach, TcAttachOptions::Netlink(NlOptions::default()))
                }
            };
            res.map_err(|source| ProbeError::Attach {
                program,
                interface: name.clone(),
                direction,
                hint: hint_for(&source),
                source: Box::new(source),
            })?;
        }
    }
    Ok(())
}

fn attach_xdp(bpf: &mut Ebpf, mode: XdpMode, ifindexes: &[(String, u32)]) -> Result<(), ProbeError> {
    let prog = load_program::<Xdp>(bpf, "netrec_xdp")?;
    for (name, _) in ifindexes {
        prog.attach(name, mode.aya()).map_err(|source| {
            let mut hint = hint_for(&source);
            if hint.is_empty() && mode == XdpMode::Native {
                hint = " (the driver may lack native XDP: try --xdp-mode skb)".to_string();
            }
            ProbeError::Attach {
                program: "netrec_xdp",
                interface: name.clone(),
                direction: "ingress",
                hint,
                source: Box::new(source),
            }
        })?;
    }
    Ok(())
}

/// Names of the netrec programs currently loaded in the kernel (by anyone): what a clean exit
/// must leave empty.
pub fn loaded_netrec_programs() -> Vec<String> {
    aya::programs::loaded_programs()
        .filter_map(Result::ok)
        .filter_map(|p| p.name_as_str().map(str::to_string))
        .filter(|n| n.starts_with("netrec_"))
        .collect()
}

fn program_error(program: &'static str, err: aya::programs::ProgramError) -> ProbeError {
    match err {
        aya::programs::ProgramError::LoadError { io_error, verifier_log } => {
            // The log's last lines hold the rejected instruction and the reason.
            let text = format!("{verifier_log:?}");
            let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
            let start = lines.len().saturating_sub(20);
            let hint = hint_for(&io_error);
            ProbeError::Verifier { program, hint, log_tail: lines[start..].join("\n"), source: io_error }
        }
        other => ProbeError::Program { program, hint: hint_for(&other), source: Box::new(other) },
    }
}
