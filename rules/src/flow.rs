//! The flow table: bidirectional flows keyed by the normalized 5-tuple (+ VLAN and
//! tunnel id), driven by packet time only.
//!
//! CONTRACT (other modules code against it; the implementation lands with issue #3).

use netrec_format::decode::{Decoded, Transport};
use netrec_format::{FlowKey, FlowRecord, PacketRef, TcpState, Ts};

/// Flow table limits and timeouts (all in packet-time nanoseconds).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FlowConfig {
    /// Maximum concurrent flows; beyond it the least recently seen flow is evicted (counted).
    pub max_flows: usize,
    /// Idle timeout for TCP flows that are established.
    pub tcp_idle_ns: u64,
    /// Idle timeout for every other flow (UDP, ICMP, half-open TCP, ...).
    pub other_idle_ns: u64,
    /// A flow longer than this is emitted (end = active_timeout) and continues as a new record.
    pub active_timeout_ns: u64,
    /// How long a TCP flow closed by FIN/FIN or RST lingers (to absorb the last ACKs and
    /// retransmitted FINs) before it is emitted.
    pub tcp_close_linger_ns: u64,
    /// Maximum IP datagrams tracked for fragment attribution.
    pub max_fragments: usize,
}

impl Default for FlowConfig {
    fn default() -> Self {
        FlowConfig {
            max_flows: 1 << 20,
            tcp_idle_ns: 300 * 1_000_000_000,
            other_idle_ns: 60 * 1_000_000_000,
            active_timeout_ns: 1800 * 1_000_000_000,
            tcp_close_linger_ns: 10 * 1_000_000_000,
            max_fragments: 65_536,
        }
    }
}

/// Direction of a packet within its flow.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FlowDir {
    /// Initiator -> responder.
    Fwd,
    /// Responder -> initiator.
    Rev,
}

/// What the flow table tells the detectors about one packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlowUpdate {
    /// Unique per table, assigned in creation order (deterministic).
    pub flow_id: u64,
    /// Initiator first.
    pub key: FlowKey,
    pub dir: FlowDir,
    /// This packet created the flow.
    pub new_flow: bool,
    /// Effective transport: for a non-first fragment, the transport of its datagram's
    /// first fragment when known (ports, TCP flags), else `Transport::None`.
    pub transport: Transport,
    /// TCP state after this packet.
    pub tcp_state: TcpState,
    /// This packet completed the three-way handshake.
    pub handshake_done_now: bool,
    /// This packet is a TCP retransmission.
    pub retransmission: bool,
    /// The packet is an IP fragment.
    pub fragment: bool,
    /// Counts after this packet.
    pub fwd_packets: u64,
    pub rev_packets: u64,
    pub fwd_payload_bytes: u64,
    pub rev_payload_bytes: u64,
    pub first_ts: Ts,
}

/// Counters the table reports (evictions are never hidden).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FlowTableStats {
    pub active: u64,
    pub created: u64,
    pub evicted: u64,
    pub fragments_unattributed: u64,
    pub fragment_table_evictions: u64,
}

/// Placeholder type until issue #3's implementation lands; every method is part of the contract.
#[derive(Debug)]
pub struct FlowTable {
    _cfg: FlowConfig,
}

impl FlowTable {
    pub fn new(cfg: FlowConfig) -> Self {
        FlowTable { _cfg: cfg }
    }
    /// Account one packet. `None` when the packet belongs to no flow (not IP, or the
    /// network header could not be decoded).
    pub fn update(&mut self, _pkt: &PacketRef<'_>, _dec: &Decoded) -> Option<FlowUpdate> {
        unimplemented!("flow table lands with issue #3")
    }
    /// Emit every flow whose idle/active/close timeout passed at `now`, ordered by flow_id.
    pub fn expire(&mut self, _now: Ts, _out: &mut dyn FnMut(FlowRecord)) {
        unimplemented!("flow table lands with issue #3")
    }
    /// Emit every remaining flow (end = open), ordered by flow_id.
    pub fn finish(&mut self, _out: &mut dyn FnMut(FlowRecord)) {
        unimplemented!("flow table lands with issue #3")
    }
    pub fn stats(&self) -> FlowTableStats {
        FlowTableStats::default()
    }
}
