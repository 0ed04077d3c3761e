//! The flow table: bidirectional flows keyed by the normalized 5-tuple (+ VLAN and
//! tunnel id), driven by packet time only.
//!
//! Layout: a slab `Vec<Flow>` indexed by `u32`, a hash map from the canonical key to
//! the slab index, three intrusive LRU lists (one per timeout class, so expiry only
//! looks at list heads), and a creation-ordered queue for active timeouts. See
//! `docs/flows.md` for every definition.

mod frag;
pub(crate) mod hash;
mod json;
mod key;
mod tcp;
#[cfg(test)]
mod tests;

pub use json::{end_str, flow_json, write_flow_json};

use frag::{FragKey, FragState, FragTable, Held};
use key::NKey;
use netrec_format::decode::{Anomaly, Decoded, FragInfo, NetLayer, Transport};
use netrec_format::{DirStats, FlowEnd, FlowKey, FlowRecord, PacketRef, TcpState, Ts, Tunnel, ipproto};
use std::collections::VecDeque;
use tcp::{TcpOutcome, TcpTrack};

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
    /// The canonical key and whether its endpoint `a` initiated: [`FlowUpdate::key`] builds the
    /// flow's key from them only for the few packets a detector needs it for.
    nkey: NKey,
    init_is_a: bool,
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

impl FlowUpdate {
    /// The flow's key, initiator first.
    #[inline]
    pub fn key(&self) -> FlowKey {
        self.nkey.flow_key(self.init_is_a)
    }

    /// The first packet of a flow with `key` (initiator first; one address family), from the
    /// initiator, in state `None`: a base for detector tests, which set the other fields.
    #[cfg(test)]
    pub(crate) fn for_test(key: FlowKey) -> FlowUpdate {
        let (nkey, init_is_a) = key::canonical(&key);
        let f = FlowUpdate {
            flow_id: 1,
            nkey,
            init_is_a,
            dir: FlowDir::Fwd,
            new_flow: true,
            transport: Transport::None,
            tcp_state: TcpState::None,
            handshake_done_now: false,
            retransmission: false,
            fragment: false,
            fwd_packets: 1,
            rev_packets: 0,
            fwd_payload_bytes: 0,
            rev_payload_bytes: 0,
            first_ts: Ts::ZERO,
        };
        assert_eq!(f.key(), key);
        f
    }
}

/// Counters the table reports (evictions are never hidden).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FlowTableStats {
    pub active: u64,
    pub created: u64,
    pub evicted: u64,
    /// Later fragments (and held tiny fragments) that could not be attributed to their
    /// datagram's transport flow; they are counted in a flow keyed with ports 0.
    pub fragments_unattributed: u64,
    pub fragment_table_evictions: u64,
    /// Flows ended early because a new SYN reused their key (added with issue #3).
    pub port_reuse: u64,
    /// Flows emitted by the active timeout and continued as a new record (issue #3).
    pub active_restarts: u64,
}

const NIL: u32 = u32::MAX;

/// Timeout class, one LRU list each.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Class {
    /// Established / FinWait TCP: `tcp_idle_ns`.
    Tcp = 0,
    /// Everything else that is open: `other_idle_ns`.
    Other = 1,
    /// TCP closed by FIN/FIN or RST: `tcp_close_linger_ns`.
    Closed = 2,
}

/// Counters of one packet (or of several held fragments) to add to a flow.
#[derive(Clone, Copy, Debug)]
struct Counts {
    packets: u64,
    bytes: u64,
    payload: u64,
    malformed: u64,
    first_ns: u64,
    last_ns: u64,
}

/// LRU list links, kept apart from `Flow` so relinking touches small, cache-resident
/// entries instead of three large flow structs.
#[derive(Clone, Copy, Debug)]
struct Link {
    prev: u32,
    next: u32,
    class: Class,
}

/// 32 bits of the key's hash for the index: the high half of a further multiply, so every bit
/// of the Fx hash (whose low bits mix poorly) contributes.
#[inline]
fn key_hash32(k: &NKey) -> u32 {
    use std::hash::BuildHasher as _;
    (hash::FxBuild::default().hash_one(k).wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 32) as u32
}

/// The table hash of an entry: the 32 bits in both halves, so the bucket (low bits) and the
/// tag (top 7 bits) both come from them.
#[inline]
fn table_hash(h32: u32) -> u64 {
    u64::from(h32) << 32 | u64::from(h32)
}

const UNLINKED: Link = Link { prev: NIL, next: NIL, class: Class::Other };

#[derive(Clone, Debug)]
struct Flow {
    id: u64,
    /// The canonical key; the flow's own (initiator first) is `nkey.flow_key(init_is_a)`.
    nkey: NKey,
    /// The initiator is endpoint `a` of the canonical key.
    init_is_a: bool,
    live: bool,
    is_tcp: bool,
    /// False for the continuation of an active-timeout split (no handshake in it).
    report_rtt: bool,
    first_ns: u64,
    last_ns: u64,
    dirs: [DirStats; 2],
    tcp: TcpTrack,
    /// Boxed: 8 bytes in every flow instead of 40, for the few flows inside a tunnel.
    tunnel: Option<Box<Tunnel>>,
    anomalies: u64,
}

impl Flow {
    #[inline]
    fn key(&self) -> FlowKey {
        self.nkey.flow_key(self.init_is_a)
    }

    fn packets(&self) -> u64 {
        self.dirs[0].packets + self.dirs[1].packets
    }

    fn tcp_state(&self) -> TcpState {
        if self.is_tcp { self.tcp.state } else { TcpState::None }
    }

    fn class(&self) -> Class {
        match self.tcp_state() {
            TcpState::Closed | TcpState::Reset => Class::Closed,
            TcpState::Established | TcpState::FinWait => Class::Tcp,
            _ => Class::Other,
        }
    }

    fn record(&self, end: FlowEnd) -> (u64, FlowRecord) {
        let rtt = |v: Option<u64>| if self.report_rtt { v } else { None };
        let rec = FlowRecord {
            key: self.key(),
            first_ts: Ts(self.first_ns),
            last_ts: Ts(self.last_ns),
            fwd: self.dirs[0],
            rev: self.dirs[1],
            tcp_state: self.tcp_state(),
            rtt_server_ns: rtt(self.tcp.rtt_server_ns()),
            rtt_client_ns: rtt(self.tcp.rtt_client_ns()),
            end,
            tunnel: self.tunnel.as_deref().copied(),
            anomalies: self.anomalies,
        };
        (self.id, rec)
    }
}

/// An empty slot's contents (`init_flow` fills it): built without a packet.
fn placeholder_flow() -> Flow {
    Flow {
        id: 0,
        nkey: NKey::EMPTY,
        init_is_a: true,
        live: false,
        is_tcp: false,
        report_rtt: true,
        first_ns: 0,
        last_ns: 0,
        dirs: [DirStats::default(); 2],
        tcp: TcpTrack::default(),
        tunnel: None,
        anomalies: 0,
    }
}

/// The flow table. One per engine; not thread-safe by design (one core per table).
#[derive(Debug)]
pub struct FlowTable {
    cfg: FlowConfig,
    /// Anomaly bits that count as malformed (all but "not decoded" ones).
    malformed_mask: u32,
    /// Index of live flows: `slot << 32 | h32` per entry (8 bytes, not the 48-byte key: a
    /// million flows make a 16 MB index, not 128 MB). Keys are compared in the slab, after the
    /// stored 32-bit hash matches; growing the table rehashes from the stored bits alone.
    index: hashbrown::HashTable<u64>,
    flows: Vec<Flow>,
    /// Parallel to `flows`.
    links: Vec<Link>,
    free: Vec<u32>,
    heads: [u32; 3],
    tails: [u32; 3],
    /// (slot, flow_id) in order of each record's first packet; stale entries are skipped.
    active_q: VecDeque<(u32, u64)>,
    /// Records ended outside `expire` (eviction, port reuse), emitted by the next call.
    pending: Vec<(u64, FlowRecord)>,
    frags: FragTable,
    next_id: u64,
    /// Every id was given to a slot after all the slots of smaller ids (no slot reused, no
    /// restart): slot order is id order, and `finish` emits in one pass over the slab.
    ids_follow_slots: bool,
    stats: FlowTableStats,
}

impl FlowTable {
    pub fn new(cfg: FlowConfig) -> Self {
        let malformed_mask =
            Anomaly::ALL.iter().filter(|a| a.is_malformed()).fold(0u32, |m, a| m | *a as u32);
        FlowTable {
            frags: FragTable::new(cfg.max_fragments),
            cfg,
            malformed_mask,
            index: hashbrown::HashTable::new(),
            flows: Vec::new(),
            links: Vec::new(),
            free: Vec::new(),
            heads: [NIL; 3],
            tails: [NIL; 3],
            active_q: VecDeque::new(),
            pending: Vec::new(),
            next_id: 0,
            ids_follow_slots: true,
            stats: FlowTableStats::default(),
        }
    }

    /// Account one packet. `None` when the packet belongs to no flow (not IP, or the
    /// network header could not be decoded), and for a too-short first fragment whose
    /// transport header is still incomplete: it is held (counted) and attributed when a
    /// later fragment completes the header (see `docs/flows.md`).
    pub fn update(&mut self, pkt: &PacketRef<'_>, dec: &Decoded) -> Option<FlowUpdate> {
        let net = dec.net?;
        let ts = pkt.ts.0;
        let vlan = dec.vlan();
        let c = Counts {
            packets: 1,
            bytes: u64::from(pkt.wire_len),
            payload: u64::from(dec.payload_len),
            malformed: u64::from(dec.anomalies.0 & self.malformed_mask != 0),
            first_ns: ts,
            last_ns: ts,
        };
        match net.frag {
            // An "atomic" fragment (offset 0, no more) is a whole datagram.
            Some(fi) if fi.offset != 0 || fi.more => self.update_fragment(pkt, dec, &net, fi, vlan, c),
            frag => {
                let t = dec.transport;
                Some(self.apply(&net, t, dec.tunnel, vlan, c, dec.payload_len, true, frag.is_some()))
            }
        }
    }

    /// Emit every flow whose idle/active/close timeout passed at `now`, ordered by flow_id.
    /// Cost: proportional to the flows emitted plus a constant (list heads only).
    pub fn expire(&mut self, now: Ts, out: &mut dyn FnMut(FlowRecord)) {
        let now = now.0;
        while let Some(e) = self.frags.pop_expired(now, self.cfg.other_idle_ns) {
            self.flush_held(e);
        }
        // Removed flows stay intact in their slots until emitted (nothing reuses a slot before
        // `apply`), so only (id, slot) is kept per flow: a mass expiry costs no record copies.
        let mut batch = std::mem::take(&mut self.pending);
        let mut slots: Vec<(u64, u32, FlowEnd)> = Vec::new();
        for (class, timeout, end) in [
            (Class::Tcp, self.cfg.tcp_idle_ns, FlowEnd::IdleTimeout),
            (Class::Other, self.cfg.other_idle_ns, FlowEnd::IdleTimeout),
            (Class::Closed, self.cfg.tcp_close_linger_ns, FlowEnd::TcpClose),
        ] {
            loop {
                let head = self.heads[class as usize];
                if head == NIL || now.saturating_sub(self.flows[head as usize].last_ns) <= timeout {
                    break;
                }
                if self.remove_slot(head) {
                    slots.push((self.flows[head as usize].id, head, end));
                }
            }
        }
        while let Some(&(slot, id)) = self.active_q.front() {
            let f = &self.flows[slot as usize];
            if !(f.live && f.id == id && f.packets() > 0) {
                self.active_q.pop_front();
                continue;
            }
            if now.saturating_sub(f.first_ns) <= self.cfg.active_timeout_ns {
                break;
            }
            self.active_q.pop_front();
            batch.push(self.restart(slot));
        }
        self.emit_merged(batch, slots, out);
    }

    /// Emit every remaining flow (end = open), ordered by flow_id, and empty the table.
    pub fn finish(&mut self, out: &mut dyn FnMut(FlowRecord)) {
        while let Some(e) = self.frags.pop_any() {
            self.flush_held(e);
        }
        let mut batch = std::mem::take(&mut self.pending);
        if self.ids_follow_slots {
            // Slots in order are ids in order: one pass, no (id, slot) list to collect and sort
            // (a flood's million flows were read twice).
            batch.sort_unstable_by_key(|(id, _)| *id);
            let mut recs = batch.into_iter().peekable();
            for f in self.flows.iter().filter(|f| f.live && f.packets() > 0) {
                while let Some((_, r)) = recs.next_if(|(rid, _)| *rid < f.id) {
                    out(r);
                }
                out(f.record(FlowEnd::Open).1);
            }
            recs.for_each(|(_, r)| out(r));
        } else {
            // (id, slot) only: a table of a million flows is not copied into a million records.
            let slots: Vec<(u64, u32, FlowEnd)> = (0u32..)
                .zip(&self.flows)
                .filter(|(_, f)| f.live && f.packets() > 0)
                .map(|(slot, f)| (f.id, slot, FlowEnd::Open))
                .collect();
            self.emit_merged(batch, slots, out);
        }
        // Released, not cleared: the caller goes on to write what was emitted, and a flood's
        // table is most of the process's memory.
        self.index = hashbrown::HashTable::new();
        self.flows = Vec::new();
        self.links = Vec::new();
        self.free = Vec::new();
        self.heads = [NIL; 3];
        self.tails = [NIL; 3];
        self.active_q = VecDeque::new();
    }

    /// Emit finished records and flows still in their slots, together ordered by flow_id.
    fn emit_merged(
        &self,
        mut batch: Vec<(u64, FlowRecord)>,
        mut slots: Vec<(u64, u32, FlowEnd)>,
        out: &mut dyn FnMut(FlowRecord),
    ) {
        batch.sort_unstable_by_key(|(id, _)| *id);
        slots.sort_unstable_by_key(|(id, _, _)| *id);
        let mut recs = batch.into_iter().peekable();
        for (id, slot, end) in slots {
            while let Some((_, r)) = recs.next_if(|(rid, _)| *rid < id) {
                out(r);
            }
            out(self.flows[slot as usize].record(end).1);
        }
        recs.for_each(|(_, r)| out(r));
    }

    pub fn stats(&self) -> FlowTableStats {
        FlowTableStats { active: self.index.len() as u64, ..self.stats }
    }

    fn update_fragment(
        &mut self,
        pkt: &PacketRef<'_>,
        dec: &Decoded,
        net: &NetLayer,
        fi: FragInfo,
        vlan: u16,
        c: Counts,
    ) -> Option<FlowUpdate> {
        let tunnel_id = dec.tunnel.map_or(0, |t| t.flow_key_id());
        let fk = FragKey::new(net, fi.id, vlan, tunnel_id);
        let tiny = dec.transport == Transport::None && frag::reassemblable(net.proto);
        if fi.is_first() && !tiny {
            let t = dec.transport;
            let up = self.apply(net, t, dec.tunnel, vlan, c, dec.payload_len, true, true);
            if t == Transport::None {
                return Some(up);
            }
            let held = match self.frags.get_mut(&fk) {
                Some(e) => match std::mem::replace(&mut e.state, FragState::Known(t)) {
                    FragState::Pending { held, .. } => Some(held),
                    FragState::Known(_) => None,
                },
                None => {
                    self.track_datagram(fk, c.first_ns, FragState::Known(t), net, vlan, dec.tunnel);
                    None
                }
            };
            // Fragments held for this datagram before its header arrived join it now.
            if let Some(h) = held.filter(|h| h.packets > 0) {
                self.apply(net, t, dec.tunnel, vlan, held_counts(&h), 0, false, true);
            }
            return Some(up);
        }
        let Some(entry) = self.frags.get_mut(&fk) else {
            if fi.is_first() {
                // Too short for the transport header: hold it and collect its bytes.
                let mut held = Held::default();
                held.add(c.first_ns, c.bytes, c.payload, c.malformed != 0);
                let (mut buf, mut mask) = ([0u8; frag::HDR_CAP], 0u64);
                frag::collect(&mut buf, &mut mask, 0, frag::fragment_payload(pkt.data, net));
                let state = FragState::Pending { buf, mask, held };
                self.track_datagram(fk, c.first_ns, state, net, vlan, dec.tunnel);
                return self.try_complete(&fk, net, dec.tunnel, vlan, None);
            }
            // Before its first fragment (or the first was never seen): ports-0 flow.
            self.stats.fragments_unattributed += 1;
            return Some(self.apply(net, Transport::None, dec.tunnel, vlan, c, 0, false, true));
        };
        match &mut entry.state {
            FragState::Known(t) => {
                let t = *t;
                Some(self.apply(net, t, dec.tunnel, vlan, c, 0, false, true))
            }
            FragState::Pending { buf, mask, .. } => {
                frag::collect(buf, mask, fi.offset, frag::fragment_payload(pkt.data, net));
                self.try_complete(&fk, net, dec.tunnel, vlan, Some(c))
            }
        }
    }

    /// If the pending datagram `fk` has a complete transport header now, attribute its
    /// held fragments (they drive the TCP state machine: the first one carries the
    /// header) and then `current`, the packet that completed it. Otherwise hold
    /// `current` too and return None.
    fn try_complete(
        &mut self,
        fk: &FragKey,
        net: &NetLayer,
        tunnel: Option<Tunnel>,
        vlan: u16,
        current: Option<Counts>,
    ) -> Option<FlowUpdate> {
        let entry = self.frags.get_mut(fk)?;
        let FragState::Pending { buf, mask, held } = &mut entry.state else { return None };
        let Some(t) = frag::parse(entry.net.proto, buf, *mask) else {
            if let Some(c) = current {
                held.add(c.first_ns, c.bytes, c.payload, c.malformed != 0);
            }
            return None;
        };
        let h = *held;
        let (first_net, first_vlan, first_tunnel) = (entry.net, entry.vlan, entry.tunnel);
        entry.state = FragState::Known(t);
        let first = self.apply(&first_net, t, first_tunnel, first_vlan, held_counts(&h), 0, true, true);
        let Some(c) = current else { return Some(first) };
        let mut up = self.apply(net, t, tunnel, vlan, c, 0, false, true);
        up.new_flow |= first.new_flow;
        up.handshake_done_now |= first.handshake_done_now;
        up.retransmission |= first.retransmission;
        Some(up)
    }

    fn track_datagram(
        &mut self,
        fk: FragKey,
        now: u64,
        state: FragState,
        net: &NetLayer,
        vlan: u16,
        tunnel: Option<Tunnel>,
    ) {
        if let Some(ev) = self.frags.insert(fk, now, state, *net, vlan, tunnel) {
            self.stats.fragment_table_evictions += 1;
            self.flush_held(ev);
        }
    }

    /// Count fragments still held for a datagram that will never complete its header.
    fn flush_held(&mut self, e: frag::FragEntry) {
        if let FragState::Pending { held, .. } = e.state
            && held.packets > 0
        {
            self.stats.fragments_unattributed += held.packets;
            self.apply(&e.net, Transport::None, e.tunnel, e.vlan, held_counts(&held), 0, false, true);
        }
    }

    /// Find or create the flow of a packet and account it. `track` runs TCP analysis
    /// (false for non-first fragments, which carry no TCP header of their own).
    #[allow(clippy::too_many_arguments)]
    #[inline]
    fn apply(
        &mut self,
        net: &NetLayer,
        transport: Transport,
        tunnel: Option<Tunnel>,
        vlan: u16,
        c: Counts,
        seq_payload: u32,
        track: bool,
        fragment: bool,
    ) -> FlowUpdate {
        let ki = key::build(net, &transport, vlan, tunnel.map_or(0, |t| t.flow_key_id()));
        let tcp = match transport {
            Transport::Tcp(t) if track => Some(t),
            _ => None,
        };
        let h32 = key_hash32(&ki.nkey);
        let flows = &self.flows;
        let found = self
            .index
            .find(table_hash(h32), |&e| e as u32 == h32 && flows[(e >> 32) as usize].nkey == ki.nkey);
        let (slot, mut new_flow) = match found {
            Some(&e) => ((e >> 32) as u32, false),
            None => {
                let slot = match self.free.pop() {
                    Some(s) => s,
                    None => {
                        self.flows.push(placeholder_flow());
                        self.links.push(UNLINKED);
                        (self.flows.len() - 1) as u32
                    }
                };
                self.index.insert_unique(table_hash(h32), u64::from(slot) << 32 | u64::from(h32), |&e| {
                    table_hash(e as u32)
                });
                (slot, true)
            }
        };
        if new_flow {
            let sender_init = match tcp {
                Some(t) => tcp::sender_initiates(&t),
                None => !ki.receiver_initiates,
            };
            self.init_flow(slot, &ki, sender_init, net.proto, tunnel);
            self.push_tail(slot, Class::Other);
            self.stats.created += 1;
            if self.index.len() > self.cfg.max_flows.max(1) {
                self.evict_lru(slot);
            }
        } else if let Some(t) = tcp
            && tcp::is_pure_syn(&t)
        {
            let f = &self.flows[slot as usize];
            let dir = usize::from(ki.sender_is_a != f.init_is_a);
            if f.tcp.is_reuse(dir, t.seq) {
                // Port reuse: end the old connection, start a new one in the same slot.
                if f.packets() > 0 {
                    self.pending.push(f.record(FlowEnd::TcpClose));
                }
                self.stats.port_reuse += 1;
                self.stats.created += 1;
                self.init_flow(slot, &ki, true, net.proto, tunnel);
                new_flow = true;
            }
        }

        let f = &mut self.flows[slot as usize];
        let dir = usize::from(ki.sender_is_a != f.init_is_a);
        // The key rebuilt from the canonical one is the packet's own, oriented.
        #[cfg(debug_assertions)]
        assert_eq!(f.key(), ki.oriented(dir == 0));
        if f.packets() == 0 {
            f.first_ns = c.first_ns;
            f.last_ns = c.last_ns;
            self.active_q.push_back((slot, f.id));
        }
        f.first_ns = f.first_ns.min(c.first_ns);
        f.last_ns = f.last_ns.max(c.last_ns);
        f.anomalies += c.malformed;
        let d = &mut f.dirs[dir];
        d.packets += c.packets;
        d.bytes += c.bytes;
        d.payload_bytes += c.payload;
        let mut o = TcpOutcome::default();
        if let Some(t) = tcp {
            o = f.tcp.process(dir, &t, seq_payload, c.first_ns);
            let d = &mut f.dirs[dir];
            d.tcp_flags |= t.flags;
            d.retransmissions += u64::from(o.retransmission);
            d.out_of_order += u64::from(o.out_of_order);
            d.zero_window += u64::from(o.zero_window);
        }
        let update = FlowUpdate {
            flow_id: f.id,
            nkey: f.nkey,
            init_is_a: f.init_is_a,
            dir: if dir == 0 { FlowDir::Fwd } else { FlowDir::Rev },
            new_flow,
            transport,
            tcp_state: f.tcp_state(),
            handshake_done_now: o.handshake_done,
            retransmission: o.retransmission,
            fragment,
            fwd_packets: f.dirs[0].packets,
            rev_packets: f.dirs[1].packets,
            fwd_payload_bytes: f.dirs[0].payload_bytes,
            rev_payload_bytes: f.dirs[1].payload_bytes,
            first_ts: Ts(f.first_ns),
        };
        let class = f.class();
        self.touch(slot, class);
        update
    }

    fn init_flow(
        &mut self,
        slot: u32,
        ki: &key::KeyInfo,
        sender_init: bool,
        proto: u8,
        tunnel: Option<Tunnel>,
    ) {
        let id = self.next_id;
        self.next_id += 1;
        self.ids_follow_slots &= slot as usize + 1 == self.flows.len();
        let f = &mut self.flows[slot as usize];
        f.id = id;
        f.nkey = ki.nkey;
        f.init_is_a = ki.sender_is_a == sender_init;
        f.live = true;
        f.is_tcp = proto == ipproto::TCP;
        f.report_rtt = true;
        f.dirs = [DirStats::default(); 2];
        f.tcp = TcpTrack::default();
        f.tunnel = tunnel.map(Box::new);
        f.anomalies = 0;
    }

    /// Evict the least recently seen flow other than `keep`.
    fn evict_lru(&mut self, keep: u32) {
        let mut best: Option<(u64, u64, u32)> = None;
        for &h in &self.heads {
            let cand = if h == keep { self.links[h as usize].next } else { h };
            if cand == NIL {
                continue;
            }
            let f = &self.flows[cand as usize];
            let k = (f.last_ns, f.id, cand);
            if best.is_none_or(|b| k < b) {
                best = Some(k);
            }
        }
        if let Some((_, _, slot)) = best {
            self.stats.evicted += 1;
            if let Some(r) = self.remove(slot, FlowEnd::Evicted) {
                self.pending.push(r);
            }
        }
    }

    /// Remove a flow; its record unless it is an empty active-timeout continuation.
    fn remove(&mut self, slot: u32, end: FlowEnd) -> Option<(u64, FlowRecord)> {
        let f = &self.flows[slot as usize];
        let rec = (f.packets() > 0).then(|| f.record(end));
        self.remove_slot(slot);
        rec
    }

    /// Unlink and free a flow's slot, leaving its contents for a record; true when it has one.
    fn remove_slot(&mut self, slot: u32) -> bool {
        self.unlink(slot);
        let f = &mut self.flows[slot as usize];
        f.live = false;
        let h32 = key_hash32(&f.nkey);
        let has_record = f.packets() > 0;
        let entry = u64::from(slot) << 32 | u64::from(h32);
        if let Ok(e) = self.index.find_entry(table_hash(h32), |&e| e == entry) {
            e.remove();
        }
        self.free.push(slot);
        has_record
    }

    /// Active timeout: emit the flow so far and continue it as a new, empty record.
    fn restart(&mut self, slot: u32) -> (u64, FlowRecord) {
        self.stats.active_restarts += 1;
        let id = self.next_id;
        self.next_id += 1;
        self.ids_follow_slots = false;
        let f = &mut self.flows[slot as usize];
        let rec = f.record(FlowEnd::ActiveTimeout);
        f.id = id;
        f.dirs = [DirStats::default(); 2];
        f.anomalies = 0;
        f.report_rtt = false;
        rec
    }

    fn unlink(&mut self, i: u32) {
        let Link { prev: p, next: n, class } = self.links[i as usize];
        let c = class as usize;
        if p == NIL {
            self.heads[c] = n
        } else {
            self.links[p as usize].next = n
        }
        if n == NIL { self.tails[c] = p } else { self.links[n as usize].prev = p }
    }

    fn push_tail(&mut self, i: u32, class: Class) {
        let c = class as usize;
        let t = self.tails[c];
        self.links[i as usize] = Link { prev: t, next: NIL, class };
        if t == NIL {
            self.heads[c] = i
        } else {
            self.links[t as usize].next = i
        }
        self.tails[c] = i;
    }

    /// Mark `i` most recently seen in list `class`.
    #[inline]
    fn touch(&mut self, i: u32, class: Class) {
        if self.links[i as usize].class == class && self.tails[class as usize] == i {
            return;
        }
        self.unlink(i);
        self.push_tail(i, class);
    }
}

fn held_counts(h: &Held) -> Counts {
    Counts {
        packets: h.packets,
        bytes: h.bytes,
        payload: h.payload,
        malformed: h.malformed,
        first_ns: h.first_ns,
        last_ns: h.last_ns,
    }
}
