//! The data model: what every netrec component exchanges and what segments store.
//!
//! Records may only grow by appending fields (SPEC.md, "Compatibility").

use serde::{Deserialize, Serialize};
use std::fmt;
use std::net::IpAddr;

/// Packet time: nanoseconds since the Unix epoch. netrec never reads a clock in its
/// engine; all time is packet time.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Ts(pub u64);

impl Ts {
    pub const ZERO: Ts = Ts(0);
    pub const fn from_secs(s: u64) -> Ts {
        Ts(s * 1_000_000_000)
    }
    pub const fn from_millis(ms: u64) -> Ts {
        Ts(ms * 1_000_000)
    }
    pub const fn nanos(self) -> u64 {
        self.0
    }
    pub const fn saturating_sub(self, other: Ts) -> u64 {
        self.0.saturating_sub(other.0)
    }
    pub const fn add_nanos(self, ns: u64) -> Ts {
        Ts(self.0.saturating_add(ns))
    }
    /// Seconds with 9 decimals, the form used in every text output (`1418145369.924505488`).
    pub fn to_decimal(self) -> String {
        format!("{}.{:09}", self.0 / 1_000_000_000, self.0 % 1_000_000_000)
    }
}

impl fmt::Display for Ts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:09}", self.0 / 1_000_000_000, self.0 % 1_000_000_000)
    }
}

/// Direction of a packet relative to the interface it was seen on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[repr(u8)]
pub enum Direction {
    #[default]
    Unknown = 0,
    Ingress = 1,
    Egress = 2,
}

impl Direction {
    pub fn from_u8(v: u8) -> Option<Direction> {
        match v {
            0 => Some(Direction::Unknown),
            1 => Some(Direction::Ingress),
            2 => Some(Direction::Egress),
            _ => None,
        }
    }
}

/// A pcap/pcapng LINKTYPE_ value (tcpdump.org link-layer header types).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct LinkType(pub u32);

impl LinkType {
    pub const NULL: LinkType = LinkType(0);
    pub const ETHERNET: LinkType = LinkType(1);
    pub const PPP: LinkType = LinkType(9);
    /// DLT_RAW as numbered on some BSDs; files written there may carry it.
    pub const RAW_BSD12: LinkType = LinkType(12);
    pub const RAW_BSD14: LinkType = LinkType(14);
    pub const PPP_HDLC: LinkType = LinkType(50);
    pub const PPP_ETHER: LinkType = LinkType(51);
    pub const RAW: LinkType = LinkType(101);
    /// Cisco HDLC: address, control, then an ethertype.
    pub const C_HDLC: LinkType = LinkType(104);
    /// IEEE 802.11 frames without a radio header.
    pub const IEEE802_11: LinkType = LinkType(105);
    /// IEEE 802.11 behind a radiotap header.
    pub const IEEE802_11_RADIOTAP: LinkType = LinkType(127);
    pub const LOOP: LinkType = LinkType(108);
    /// OpenBSD/FreeBSD pf firewall logs: a pflog header, then the IP packet.
    pub const PFLOG: LinkType = LinkType(117);
    /// IEEE 802.11 behind a Prism monitor-mode header.
    pub const IEEE802_11_PRISM: LinkType = LinkType(119);
    /// IEEE 802.11 behind an AVS monitor-mode header.
    pub const IEEE802_11_AVS: LinkType = LinkType(163);
    /// Per-Packet Information header, then the link type it names (802.11 or Ethernet).
    pub const PPI: LinkType = LinkType(192);
    /// Apple PKTAP (macOS `tcpdump -i pktap`): a metadata header, then the link type it names.
    pub const PKTAP: LinkType = LinkType(258);
    pub const LINUX_SLL: LinkType = LinkType(113);
    pub const IPV4: LinkType = LinkType(228);
    pub const IPV6: LinkType = LinkType(229);
    pub const NFLOG: LinkType = LinkType(239);
    /// ARCNET with the BSD header (source, destination, protocol id).
    pub const ARCNET_BSD: LinkType = LinkType(7);
    /// ARCNET with the Linux header (a 2-byte offset field after the addresses).
    pub const ARCNET_LINUX: LinkType = LinkType(129);
    /// Solaris IPNET: a 24-byte header, then IPv4 or IPv6.
    pub const IPNET: LinkType = LinkType(226);
    pub const LINUX_SLL2: LinkType = LinkType(276);
}

/// One captured packet as recorded: metadata plus the first `snaplen` bytes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PacketRecord {
    pub ts: Ts,
    /// Interface index (kernel ifindex live; pcapng interface id, or 0, for imports).
    pub iface: u32,
    pub direction: Direction,
    pub link_type: LinkType,
    /// Length of the packet on the wire; `data.len()` may be smaller (snaplen).
    pub wire_len: u32,
    #[serde(with = "hex_bytes")]
    pub data: Vec<u8>,
}

/// Borrowed view of a packet, used on the hot path (no copy of the bytes).
#[derive(Clone, Copy, Debug)]
pub struct PacketRef<'a> {
    pub ts: Ts,
    pub iface: u32,
    pub direction: Direction,
    pub link_type: LinkType,
    pub wire_len: u32,
    pub data: &'a [u8],
}

impl PacketRecord {
    pub fn as_ref(&self) -> PacketRef<'_> {
        PacketRef {
            ts: self.ts,
            iface: self.iface,
            direction: self.direction,
            link_type: self.link_type,
            wire_len: self.wire_len,
            data: &self.data,
        }
    }
}

/// IP protocol numbers netrec names.
pub mod ipproto {
    pub const ICMP: u8 = 1;
    pub const IGMP: u8 = 2;
    pub const IPIP: u8 = 4;
    pub const TCP: u8 = 6;
    pub const UDP: u8 = 17;
    pub const IPV6: u8 = 41;
    pub const GRE: u8 = 47;
    pub const ESP: u8 = 50;
    pub const AH: u8 = 51;
    pub const ICMPV6: u8 = 58;
    pub const SCTP: u8 = 132;
}

/// Lowercase protocol name used in every output (`"tcp"`, `"udp"`, `"icmp"`, `"icmpv6"`, ...);
/// unknown numbers print as `"ip-N"`. ARP is not an IP protocol; flows of it use `"arp"` (see
/// [`FlowKey::proto`], value [`PROTO_ARP`]).
pub fn proto_name(proto: u16) -> std::borrow::Cow<'static, str> {
    use std::borrow::Cow;
    match proto {
        1 => Cow::Borrowed("icmp"),
        2 => Cow::Borrowed("igmp"),
        6 => Cow::Borrowed("tcp"),
        17 => Cow::Borrowed("udp"),
        47 => Cow::Borrowed("gre"),
        50 => Cow::Borrowed("esp"),
        51 => Cow::Borrowed("ah"),
        58 => Cow::Borrowed("icmpv6"),
        132 => Cow::Borrowed("sctp"),
        PROTO_ARP => Cow::Borrowed("arp"),
        n => Cow::Owned(format!("ip-{n}")),
    }
}

/// Pseudo protocol number (outside the IP range) for ARP flows.
pub const PROTO_ARP: u16 = 0x0806; // > 255: never a valid IP protocol

/// Encapsulation the inner packet was found in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TunnelKind {
    Gre,
    Erspan,
    Vxlan,
    Geneve,
    /// IPv4 or IPv6 carried directly in IPv4/IPv6 (protocols 4 and 41).
    IpInIp,
    /// GTP-U (3GPP TS 29.281), the user plane of mobile networks: UDP port 2152.
    GtpU,
    /// L2TPv2 (RFC 2661) data messages: PPP over UDP port 1701.
    L2tp,
    /// Teredo (RFC 4380): IPv6 over UDP port 3544.
    Teredo,
    /// PPTP (RFC 2637): PPP over enhanced GRE (version 1).
    Pptp,
    /// MPLS in UDP (RFC 7510): a label stack over UDP port 6635.
    #[serde(rename = "mpls_udp")]
    MplsUdp,
    /// Ethernet directly in IP: EtherIP (RFC 3378, protocol 97) and IPv6's Ethernet next header
    /// (143, the SRv6 layer-2 services of RFC 8986).
    EtherIp,
}

impl TunnelKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TunnelKind::Gre => "gre",
            TunnelKind::Erspan => "erspan",
            TunnelKind::Vxlan => "vxlan",
            TunnelKind::Geneve => "geneve",
            TunnelKind::IpInIp => "ipip",
            TunnelKind::GtpU => "gtpu",
            TunnelKind::L2tp => "l2tp",
            TunnelKind::Teredo => "teredo",
            TunnelKind::Pptp => "pptp",
            TunnelKind::MplsUdp => "mpls_udp",
            TunnelKind::EtherIp => "etherip",
        }
    }
}

/// The outermost tunnel a packet was decapsulated from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Tunnel {
    pub kind: TunnelKind,
    /// VNI (VXLAN, Geneve), GRE key, ERSPAN session id, GTP-U TEID or L2TP tunnel id << 16 |
    /// session id; 0 when the tunnel has none.
    pub id: u32,
    pub outer_src: IpAddr,
    pub outer_dst: IpAddr,
}

impl Tunnel {
    /// The id flows are keyed on (with the inner addresses): the tunnel id where both
    /// directions carry the same one; 0 for GTP-U, L2TP and PPTP, whose ids (TEID; tunnel and
    /// session id; call id) are chosen by each receiving end (the two directions of one session differ), so
    /// keying on them would split every conversation in two.
    pub fn flow_key_id(&self) -> u32 {
        match self.kind {
            TunnelKind::GtpU | TunnelKind::L2tp | TunnelKind::Pptp | TunnelKind::Teredo => 0,
            _ => self.id,
        }
    }
}

impl fmt::Display for Tunnel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{} {}->{}", self.kind.as_str(), self.id, self.outer_src, self.outer_dst)
    }
}

/// Bidirectional flow key, stored initiator first. `proto` is the IP protocol number, or
/// [`PROTO_ARP`]. For ICMP, ports hold the echo identifier (src) and type<<8|code (dst)
/// the way flow tools key ICMP; see `docs/flows.md`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct FlowKey {
    pub proto: u16,
    pub src_ip: IpAddr,
    pub src_port: u16,
    pub dst_ip: IpAddr,
    pub dst_port: u16,
    /// Innermost 802.1Q/802.1ad VLAN id, 0 when untagged.
    pub vlan: u16,
    /// Tunnel id (VNI / GRE key) of the enclosing tunnel, 0 when none.
    pub tunnel_id: u32,
}

/// TCP connection state as seen from the capture point.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[repr(u8)]
pub enum TcpState {
    /// Not TCP.
    #[default]
    None = 0,
    /// SYN seen, no SYN/ACK.
    SynSent = 1,
    /// SYN and SYN/ACK seen, no final ACK.
    SynReceived = 2,
    /// Three-way handshake completed.
    Established = 3,
    /// At least one FIN seen.
    FinWait = 4,
    /// FIN seen in both directions.
    Closed = 5,
    /// Ended by a RST.
    Reset = 6,
    /// Mid-stream: the handshake was not seen.
    Midstream = 7,
}

impl TcpState {
    pub fn from_u8(v: u8) -> Option<TcpState> {
        Some(match v {
            0 => TcpState::None,
            1 => TcpState::SynSent,
            2 => TcpState::SynReceived,
            3 => TcpState::Established,
            4 => TcpState::FinWait,
            5 => TcpState::Closed,
            6 => TcpState::Reset,
            7 => TcpState::Midstream,
            _ => return None,
        })
    }
    pub fn as_str(self) -> &'static str {
        match self {
            TcpState::None => "none",
            TcpState::SynSent => "syn_sent",
            TcpState::SynReceived => "syn_received",
            TcpState::Established => "established",
            TcpState::FinWait => "fin_wait",
            TcpState::Closed => "closed",
            TcpState::Reset => "reset",
            TcpState::Midstream => "midstream",
        }
    }
}

/// Why a flow record was emitted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[repr(u8)]
pub enum FlowEnd {
    /// Still open at the end of the input (or a periodic snapshot of a live flow).
    #[default]
    Open = 0,
    IdleTimeout = 1,
    ActiveTimeout = 2,
    /// TCP closed by FIN in both directions or by RST.
    TcpClose = 3,
    /// Evicted because the table was full.
    Evicted = 4,
}

impl FlowEnd {
    pub fn from_u8(v: u8) -> Option<FlowEnd> {
        Some(match v {
            0 => FlowEnd::Open,
            1 => FlowEnd::IdleTimeout,
            2 => FlowEnd::ActiveTimeout,
            3 => FlowEnd::TcpClose,
            4 => FlowEnd::Evicted,
            _ => return None,
        })
    }
}

/// Per-direction counters of a flow.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DirStats {
    pub packets: u64,
    /// Wire bytes (the frame length as captured on the wire).
    pub bytes: u64,
    /// Transport payload bytes (TCP/UDP data, retransmissions included).
    pub payload_bytes: u64,
    /// OR of every TCP flag byte seen (FIN=0x01 ... CWR=0x80).
    pub tcp_flags: u8,
    pub retransmissions: u64,
    pub out_of_order: u64,
    pub zero_window: u64,
}

/// One flow as emitted by the flow table (and stored in flow blocks).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlowRecord {
    pub key: FlowKey,
    pub first_ts: Ts,
    pub last_ts: Ts,
    /// Initiator -> responder.
    pub fwd: DirStats,
    /// Responder -> initiator.
    pub rev: DirStats,
    pub tcp_state: TcpState,
    /// SYN -> SYN/ACK as seen at the capture point (capture point to server and back), ns.
    pub rtt_server_ns: Option<u64>,
    /// SYN/ACK -> ACK (capture point to client and back), ns.
    pub rtt_client_ns: Option<u64>,
    pub end: FlowEnd,
    pub tunnel: Option<Tunnel>,
    /// Packets of this flow that carried a decode anomaly.
    pub anomalies: u64,
}

impl FlowRecord {
    /// Full handshake RTT (client <-> server) when both halves were seen.
    pub fn rtt_ns(&self) -> Option<u64> {
        // Saturating: both halves come from recorded (possibly crafted) segments.
        Some(self.rtt_server_ns?.saturating_add(self.rtt_client_ns?))
    }
}

/// Alert severity, ordered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[repr(u8)]
pub enum Severity {
    Info = 0,
    Low = 1,
    Medium = 2,
    High = 3,
    Critical = 4,
}

impl Severity {
    pub fn from_u8(v: u8) -> Option<Severity> {
        Some(match v {
            0 => Severity::Info,
            1 => Severity::Low,
            2 => Severity::Medium,
            3 => Severity::High,
            4 => Severity::Critical,
            _ => return None,
        })
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }
}

/// An alert raised by the engine. One alert per rule and tracked key per incident: the
/// engine emits it when the threshold is crossed and it is final (with totals) when the
/// incident ends; see `docs/rules.md`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    /// Sequence number within one engine run (deterministic).
    pub id: u64,
    pub rule_id: String,
    pub class: String,
    pub severity: Severity,
    pub attack_id: String,
    pub first_ts: Ts,
    pub last_ts: Ts,
    /// Sources (up to a fixed number, sorted); `src_count` is the distinct total.
    pub src: Vec<IpAddr>,
    pub src_count: u64,
    /// Targets (up to a fixed number, sorted); `dst_count` is the distinct total.
    pub dst: Vec<IpAddr>,
    pub dst_count: u64,
    /// Target ports when the detector tracks them (sorted, capped).
    pub dst_ports: Vec<u16>,
    /// Number of events (packets, connections, queries) counted by the detector.
    pub count: u64,
    /// The window statistics that crossed the threshold, by name, in a fixed order.
    pub stats: Vec<(String, f64)>,
    pub message: String,
}

/// Loss and statistics counters for an interval, as counted by the kernel and the
/// recorder. Every missing byte is accounted for here.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LossRecord {
    pub ts: Ts,
    /// Interface index, 0 for "all".
    pub iface: u32,
    /// Packets the kernel program saw in this interval.
    pub kernel_packets: u64,
    pub kernel_bytes: u64,
    /// Header records that could not be reserved in the ring buffer.
    pub ring_drops: u64,
    /// Flow map updates that failed because the map was full.
    pub map_full: u64,
    /// Flow map updates lost to concurrent updates.
    pub busy: u64,
    /// Header records not written by user space (disk full, queue overflow).
    pub writer_drops: u64,
}

/// How complete the recorded evidence of one alert is: header records seen versus packets the
/// kernel counted, over the loss intervals (between consecutive [`LossRecord`]s) that overlap the
/// alert's `[first_ts, last_ts]`. Kernel counts exist per interval only, so both numbers are taken
/// over those whole intervals; see `docs/schema.md` (alerts, evidence columns).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Evidence {
    /// Header records (written to segments) with a time inside the overlapping intervals.
    pub seen: u64,
    /// Packets the kernel counted in the overlapping intervals.
    pub counted: u64,
    /// Loss records cover the whole window and report no ring or writer drop in it.
    pub complete: bool,
    /// Ring-buffer drops in the overlapping intervals (headers neither recorded nor seen live).
    pub ring_drops: u64,
    /// Writer drops in the overlapping intervals (headers seen live but not recorded).
    pub writer_drops: u64,
}

/// One closed loss interval `(start, end]` and the header records whose time falls in it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct LossInterval {
    end: u64,
    seen: u64,
    counted: u64,
    ring_drops: u64,
    writer_drops: u64,
}

/// Assigns header records to loss intervals by packet time, to compute [`Evidence`]. Used live
/// (records as written, loss records as polled) and in replay (loss records first, then every
/// header record): both give the same numbers for the same recording. Loss records must come in
/// time order; records of equal time (per interface) are one interval. Memory: one entry per
/// loss record (at most `max_intervals`, oldest dropped) plus one u64 per header record newer
/// than the last loss record.
#[derive(Clone, Debug)]
pub struct EvidenceTally {
    closed: std::collections::VecDeque<LossInterval>,
    /// Start of the oldest retained interval (0: the recording's beginning).
    start: u64,
    /// Times of header records newer than the last loss record (not yet assigned).
    open: Vec<u64>,
    max_intervals: usize,
    any_loss: bool,
}

impl Default for EvidenceTally {
    fn default() -> Self {
        EvidenceTally::new(usize::MAX)
    }
}

impl EvidenceTally {
    pub fn new(max_intervals: usize) -> EvidenceTally {
        EvidenceTally {
            closed: std::collections::VecDeque::new(),
            start: 0,
            open: Vec::new(),
            max_intervals: max_intervals.max(1),
            any_loss: false,
        }
    }

    fn last_end(&self) -> Option<u64> {
        self.closed.back().map(|i| i.end)
    }

    /// One header record, written with time `ts`.
    #[inline]
    pub fn packet(&mut self, ts: Ts) {
        match self.last_end() {
            Some(end) if ts.0 <= end => {
                // Late record of a closed interval (still in the ring when the counters were read).
                let k = self.closed.partition_point(|i| i.end < ts.0);
                if ts.0 > self.start
                    && let Some(i) = self.closed.get_mut(k)
                {
                    i.seen += 1;
                }
            }
            _ => self.open.push(ts.0),
        }
    }

    /// A loss record: closes the interval ending at its time.
    pub fn loss(&mut self, l: &LossRecord) {
        self.any_loss = true;
        let end = l.ts.0;
        if let Some(last) = self.closed.back_mut()
            && end <= last.end
        {
            // Same time (another interface) or out of order: account it to the last interval.
            last.counted += l.kernel_packets;
            last.ring_drops += l.ring_drops;
            last.writer_drops += l.writer_drops;
            return;
        }
        let before = self.open.len();
        self.open.retain(|&t| t > end);
        let seen = (before - self.open.len()) as u64;
        self.closed.push_back(LossInterval {
            end,
            seen,
            counted: l.kernel_packets,
            ring_drops: l.ring_drops,
            writer_drops: l.writer_drops,
        });
        while self.closed.len() > self.max_intervals {
            if let Some(old) = self.closed.pop_front() {
                self.start = old.end;
            }
        }
    }

    /// True when a loss record at or after `t` has been seen: evidence up to `t` is final.
    pub fn covers(&self, t: Ts) -> bool {
        self.last_end().is_some_and(|e| e >= t.0)
    }

    /// Evidence for the window `[first, last]`; `None` without any loss record (no kernel counts,
    /// e.g. pcap input). A window starting before the retained intervals is never complete.
    pub fn evidence(&self, first: Ts, last: Ts) -> Option<Evidence> {
        if !self.any_loss {
            return None;
        }
        let (first, last) = (first.0.min(last.0), first.0.max(last.0));
        let mut ev = Evidence::default();
        let mut start = self.start;
        let from = self.closed.partition_point(|i| i.end < first);
        if from > 0 {
            start = self.closed[from - 1].end;
        }
        for i in self.closed.range(from..) {
            if start >= last {
                break;
            }
            ev.seen += i.seen;
            ev.counted += i.counted;
            ev.ring_drops += i.ring_drops;
            ev.writer_drops += i.writer_drops;
            start = i.end;
        }
        let covered = self.covers(Ts(last)) && (first > self.start || self.start == 0);
        if !covered {
            ev.seen += self.open.iter().filter(|&&t| t >= first && t <= last).count() as u64;
        }
        ev.complete = covered && ev.ring_drops == 0 && ev.writer_drops == 0;
        Some(ev)
    }
}

/// Segment metadata: who recorded it, how, with which rules.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SegmentMeta {
    pub host: String,
    pub interfaces: Vec<InterfaceInfo>,
    pub snaplen: u32,
    /// Offset (ns) to add to kernel monotonic time to get Unix time, 0 when times are Unix.
    pub clock_base_ns: u64,
    pub netrec_version: String,
    /// SHA-256 (hex) of the canonical rule set the live engine used, empty if none.
    pub ruleset_digest: String,
    /// The canonical rule-set text itself (`RuleSet::canonical`), so a replay can use exactly
    /// the live rules (`analyze --check-parity`). Appended in format 1.0 layout 2; empty if unknown.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub ruleset_text: String,
    /// Identity of the recording run (wall-clock ns when it started, 0 if unknown). Every segment
    /// written by one run carries the same value: one live engine saw them as one stream.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub run_id: u64,
}

fn is_zero(v: &u64) -> bool {
    *v == 0
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InterfaceInfo {
    pub index: u32,
    pub name: String,
    pub link_type: LinkType,
}

mod hex_bytes {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut out = String::with_capacity(v.len() * 2);
        for b in v {
            out.push(HEX[(b >> 4) as usize] as char);
            out.push(HEX[(b & 15) as usize] as char);
        }
        s.serialize_str(&out)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let s = String::deserialize(d)?;
        if s.len() % 2 != 0 {
            return Err(serde::de::Error::custom("odd hex length"));
        }
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).map_err(serde::de::Error::custom))
            .collect()
    }
}

#[cfg(test)]
mod evidence_tests {
    use super::*;

    fn loss(ts: u64, kernel: u64, ring: u64, writer: u64) -> LossRecord {
        LossRecord {
            ts: Ts(ts),
            kernel_packets: kernel,
            ring_drops: ring,
            writer_drops: writer,
            ..LossRecord::default()
        }
    }

    /// Intervals (0,100] (100,200] (200,300]; 3, 4 and 2 headers; the second lost one to the ring.
    fn tally(loss_first: bool) -> EvidenceTally {
        let mut t = EvidenceTally::default();
        let losses = [loss(100, 3, 0, 0), loss(200, 5, 1, 0), loss(300, 2, 0, 0)];
        let packets = [10u64, 50, 100, 101, 150, 160, 199, 250, 300];
        if loss_first {
            losses.iter().for_each(|l| t.loss(l));
            packets.iter().for_each(|&p| t.packet(Ts(p)));
        } else {
            // Live order: packets drained, then the counters polled.
            let mut p = packets.iter().peekable();
            for l in &losses {
                while let Some(&&x) = p.peek().filter(|&&&x| x <= l.ts.0) {
                    t.packet(Ts(x));
                    p.next();
                }
                t.loss(l);
            }
        }
        t
    }

    #[test]
    fn counts_whole_overlapping_intervals_in_either_order() {
        for order in [true, false] {
            let t = tally(order);
            let e = t.evidence(Ts(20), Ts(60)).unwrap();
            assert_eq!((e.seen, e.counted, e.complete), (3, 3, true));
            // [100,101] touches (0,100] and (100,200].
            let e = t.evidence(Ts(100), Ts(101)).unwrap();
            assert_eq!((e.seen, e.counted, e.ring_drops, e.complete), (7, 8, 1, false));
            let e = t.evidence(Ts(201), Ts(300)).unwrap();
            assert_eq!((e.seen, e.counted, e.complete), (2, 2, true));
            // Past the last loss record: not covered, so not complete.
            let e = t.evidence(Ts(250), Ts(400)).unwrap();
            assert_eq!((e.seen, e.counted, e.complete), (2, 2, false));
        }
    }

    #[test]
    fn late_headers_go_to_their_interval_and_open_ones_count_until_covered() {
        let mut t = EvidenceTally::default();
        t.packet(Ts(5));
        t.loss(&loss(10, 2, 0, 0));
        t.packet(Ts(8)); // still in the ring at the poll
        t.packet(Ts(12));
        assert!(!t.covers(Ts(12)));
        let e = t.evidence(Ts(1), Ts(12)).unwrap();
        assert_eq!((e.seen, e.counted, e.complete), (3, 2, false));
        t.loss(&loss(20, 1, 0, 0));
        assert!(t.covers(Ts(12)));
        let e = t.evidence(Ts(1), Ts(12)).unwrap();
        assert_eq!((e.seen, e.counted, e.complete), (3, 3, true));
    }

    #[test]
    fn no_loss_records_means_no_evidence_and_writer_drops_are_incomplete() {
        let mut t = EvidenceTally::default();
        t.packet(Ts(1));
        assert_eq!(t.evidence(Ts(0), Ts(5)), None);
        t.loss(&loss(10, 2, 0, 1));
        let e = t.evidence(Ts(0), Ts(5)).unwrap();
        assert_eq!((e.seen, e.counted, e.writer_drops, e.complete), (1, 2, 1, false));
    }

    #[test]
    fn dropped_old_intervals_make_old_windows_incomplete() {
        let mut t = EvidenceTally::new(2);
        for k in 1..=4u64 {
            t.packet(Ts(k * 10 - 1));
            t.loss(&loss(k * 10, 1, 0, 0));
        }
        assert!(!t.evidence(Ts(1), Ts(35)).unwrap().complete);
        let e = t.evidence(Ts(25), Ts(35)).unwrap();
        assert_eq!((e.seen, e.counted, e.complete), (2, 2, true));
    }
}
