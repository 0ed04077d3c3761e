//! Detector plumbing: the per-packet context, keyed window state with bounded LRU
//! eviction, incidents (suppression) and alert construction.
//!
//! Detectors see a [`PacketCtx`] (packet, decoded headers, optional flow update), so
//! they are unit-testable without the flow table.

use crate::flow::hash::FxBuild;
use crate::flow::{FlowDir, FlowUpdate};
use crate::ruleset::Rule;
use crate::sink::EngineSink;
use netrec_format::decode::{Decoded, Transport};
use netrec_format::{Alert, PacketRef, Severity, TcpState, Ts};
use std::collections::HashSet;
use std::net::IpAddr;

pub(crate) mod anomaly;
pub(crate) mod flood;
pub(crate) mod misc;
pub(crate) mod scan;
pub(crate) mod sig;

/// At most this many addresses/ports are listed in an alert (the smallest, sorted).
pub const MAX_LIST: usize = 32;
/// Distinct sources/targets/ports counted per incident; beyond it counts saturate.
pub const MAX_DISTINCT: usize = 65_536;

/// Everything a detector may look at for one packet.
#[derive(Clone, Copy, Debug)]
pub struct PacketCtx<'a> {
    /// Packet time, already clamped to be non-decreasing by the engine.
    pub ts: Ts,
    pub pkt: &'a PacketRef<'a>,
    pub dec: &'a Decoded,
    pub flow: Option<&'a FlowUpdate>,
}

impl PacketCtx<'_> {
    /// Effective transport: the flow table knows it for non-first fragments.
    pub fn transport(&self) -> Transport {
        match (self.dec.transport, self.flow) {
            (Transport::None, Some(f)) => f.transport,
            (t, _) => t,
        }
    }
    /// True when the packet is not part of a conversation the destination answered:
    /// it created its flow or belongs to one whose responder never replied.
    /// Without flow information every packet counts as unsolicited.
    pub fn unsolicited(&self) -> bool {
        match self.flow {
            None => true,
            Some(f) => f.dir == FlowDir::Fwd && f.rev_packets == 0,
        }
    }
    /// Outside an established TCP connection / answered flow.
    pub fn non_established(&self) -> bool {
        match self.flow {
            None => true,
            Some(f) => match f.tcp_state {
                TcpState::Established | TcpState::FinWait | TcpState::Closed => false,
                TcpState::None => f.rev_packets == 0,
                _ => true,
            },
        }
    }
    /// The transport payload bytes that were captured.
    pub fn payload(&self) -> &[u8] {
        let start = self.dec.payload_offset as usize;
        let end = start.saturating_add(self.dec.payload_len as usize).min(self.pkt.data.len());
        self.pkt.data.get(start..end).unwrap_or(&[])
    }
}

/// Unicast, routable-as-a-target address (floods and sweeps ignore multicast/broadcast).
pub(crate) fn is_unicast(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(a) => !(a.is_multicast() || a.is_broadcast() || a.is_unspecified()),
        IpAddr::V6(a) => !(a.is_multicast() || a.is_unspecified()),
    }
}

/// What a detector's state is keyed on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Key {
    Ip(IpAddr),
    Pair(IpAddr, IpAddr),
    Service(IpAddr, IpAddr, u16),
    Flow(u8, IpAddr, u16, IpAddr, u16),
    /// Source and hash of a registered domain.
    Domain(IpAddr, u64),
}

impl Key {
    /// The key of a packet's (src, dst, ports) under `track`, for detectors that offer every
    /// track (blocklist, signature).
    pub fn tracked(
        track: crate::ruleset::Track,
        proto: u8,
        src: IpAddr,
        dst: IpAddr,
        ports: (u16, u16),
    ) -> Key {
        use crate::ruleset::Track;
        match track {
            Track::BySrc => Key::Ip(src),
            Track::ByDst => Key::Ip(dst),
            Track::ByPair => Key::Pair(src, dst),
            Track::ByFlow => Key::Flow(proto, src, ports.0, dst, ports.1),
        }
    }
}

/// Alert ids and the sink, shared by all detectors of one engine.
pub(crate) struct Out<'s> {
    pub next_id: &'s mut u64,
    pub sink: &'s mut dyn EngineSink,
}

/// The parts of a rule every alert carries.
#[derive(Clone, Debug)]
pub(crate) struct Meta {
    pub rule_id: String,
    pub class: &'static str,
    pub severity: Severity,
    pub attack_id: String,
    pub window_ns: u64,
    pub suppress_ns: u64,
}

impl Meta {
    pub fn new(r: &Rule) -> Meta {
        Meta {
            rule_id: r.id.clone(),
            class: r.detector.name(),
            severity: r.severity,
            attack_id: r.attack_id.clone(),
            window_ns: r.window_ns,
            suppress_ns: r.suppress_ns,
        }
    }
}

/// Distinct values, counted up to a cap (then the count saturates).
///
/// The first few values live inline: most keys (one per spoofed source in a flood) see one or
/// two values, and a hash set per key would be an allocation per packet.
#[derive(Debug, Clone)]
pub(crate) struct Distinct<T> {
    small: [Option<T>; INLINE],
    n_small: u8,
    /// Fx, not SipHash: inserted once per packet by the flood detectors (keys are bounded by `cap`).
    /// Used once more than `INLINE` values were seen (kept allocated across `clear`).
    set: HashSet<T, FxBuild>,
    spilled: bool,
    cap: usize,
}

const INLINE: usize = 4;

impl<T: std::hash::Hash + Eq + Copy + Ord> Distinct<T> {
    pub fn new(cap: usize) -> Self {
        Distinct {
            small: [None; INLINE],
            n_small: 0,
            set: HashSet::default(),
            spilled: false,
            cap: cap.max(1),
        }
    }
    #[inline]
    pub fn insert(&mut self, v: T) {
        if self.spilled {
            if self.set.len() < self.cap {
                self.set.insert(v);
            }
            return;
        }
        let n = self.n_small as usize;
        if self.small[..n].contains(&Some(v)) || n >= self.cap {
            return;
        }
        if n < INLINE {
            self.small[n] = Some(v);
            self.n_small += 1;
            return;
        }
        self.set.extend(self.small.iter().flatten().copied());
        self.set.insert(v);
        self.spilled = true;
    }
    pub fn len(&self) -> u64 {
        if self.spilled { self.set.len() as u64 } else { u64::from(self.n_small) }
    }
    pub fn clear(&mut self) {
        self.small = [None; INLINE];
        self.n_small = 0;
        self.set.clear();
        self.spilled = false;
    }
    pub fn smallest(&self, n: usize) -> Vec<T> {
        let mut v: Vec<T> = if self.spilled {
            self.set.iter().copied().collect()
        } else {
            self.small.iter().flatten().copied().collect()
        };
        v.sort_unstable();
        v.truncate(n);
        v
    }
}

/// Misra-Gries heavy hitters over ports: bounded, gives a lower bound of each count. Inline
/// arrays, not a Vec: it is updated on every event of a flood target, and a separate
/// allocation would be one more cache miss per packet.
#[derive(Debug, Clone, Default)]
pub(crate) struct TopPorts {
    ports: [u16; TOP_K],
    /// Saturating: a window would need 4 billion packets to one port to reach it.
    counts: [u32; TOP_K],
    len: u8,
}

const TOP_K: usize = 16;

impl TopPorts {
    #[inline]
    pub fn add(&mut self, port: u16) {
        let n = self.len as usize;
        if let Some(k) = self.ports[..n].iter().position(|&p| p == port) {
            self.counts[k] = self.counts[k].saturating_add(1);
        } else if n < TOP_K {
            self.ports[n] = port;
            self.counts[n] = 1;
            self.len += 1;
        } else {
            // Decrement every counter and drop those at zero, keeping the order of the rest.
            let mut w = 0;
            for r in 0..n {
                if self.counts[r] > 1 {
                    self.ports[w] = self.ports[r];
                    self.counts[w] = self.counts[r] - 1;
                    w += 1;
                }
            }
            self.len = w as u8;
        }
    }
    /// (port, count) of the most frequent port; ties -> lowest port.
    pub fn top(&self) -> Option<(u16, u64)> {
        let n = self.len as usize;
        self.ports[..n]
            .iter()
            .zip(&self.counts[..n])
            .map(|(&p, &c)| (p, u64::from(c)))
            .max_by(|a, b| a.1.cmp(&b.1).then(b.0.cmp(&a.0)))
    }
    pub fn clear(&mut self) {
        self.len = 0;
    }
}

/// One open incident of a rule and key: the alert was emitted, later events update it.
#[derive(Debug)]
pub(crate) struct Incident {
    id: u64,
    first_ts: Ts,
    last_ts: Ts,
    count: u64,
    srcs: Distinct<IpAddr>,
    dsts: Distinct<IpAddr>,
    ports: Distinct<u16>,
    stats: Vec<(String, f64)>,
    message: String,
}

/// What a detector reports when a threshold is crossed.
#[derive(Debug)]
pub(crate) struct Fire {
    /// Start of the window that crossed.
    pub first_ts: Ts,
    pub count: u64,
    pub srcs: Vec<IpAddr>,
    pub dsts: Vec<IpAddr>,
    pub ports: Vec<u16>,
    pub stats: Vec<(String, f64)>,
    pub message: String,
}

/// The addresses of one event, folded into an open incident.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Ev {
    pub src: Option<IpAddr>,
    pub dst: Option<IpAddr>,
    pub port: Option<u16>,
}

impl Incident {
    fn open(meta: &Meta, ts: Ts, f: Fire, out: &mut Out<'_>) -> Incident {
        let id = *out.next_id;
        *out.next_id += 1;
        let mut inc = Incident {
            id,
            first_ts: f.first_ts.min(ts),
            last_ts: ts,
            count: f.count,
            srcs: Distinct::new(MAX_DISTINCT),
            dsts: Distinct::new(MAX_DISTINCT),
            ports: Distinct::new(MAX_DISTINCT),
            stats: f.stats,
            message: f.message,
        };
        f.srcs.into_iter().for_each(|s| inc.srcs.insert(s));
        f.dsts.into_iter().for_each(|s| inc.dsts.insert(s));
        f.ports.into_iter().for_each(|s| inc.ports.insert(s));
        out.sink.alert(inc.alert(meta));
        inc
    }
    fn add(&mut self, ts: Ts, ev: Ev) {
        self.count += 1;
        self.last_ts = self.last_ts.max(ts);
        if let Some(s) = ev.src {
            self.srcs.insert(s);
        }
        if let Some(d) = ev.dst {
            self.dsts.insert(d);
        }
        if let Some(p) = ev.port {
            self.ports.insert(p);
        }
    }
    fn alert(&self, meta: &Meta) -> Alert {
        Alert {
            id: self.id,
            rule_id: meta.rule_id.clone(),
            class: meta.class.to_string(),
            severity: meta.severity,
            attack_id: meta.attack_id.clone(),
            first_ts: self.first_ts,
            last_ts: self.last_ts,
            src: self.srcs.smallest(MAX_LIST),
            src_count: self.srcs.len(),
            dst: self.dsts.smallest(MAX_LIST),
            dst_count: self.dsts.len(),
            dst_ports: self.ports.smallest(MAX_LIST),
            count: self.count,
            stats: self.stats.clone(),
            message: self.message.clone(),
        }
    }
}

/// Per-key state: the detector's window, its start, last update and the open incident.
#[derive(Debug)]
pub(crate) struct Slot<W> {
    key: Key,
    pub win: W,
    pub win_start: Ts,
    /// Boxed: few keys have an open incident, and inline it would triple every slot (a flood
    /// of spoofed sources fills `max_keys` slots of each scan detector).
    inc: Option<Box<Incident>>,
}

/// Window state of a detector; `reset` must keep allocations for reuse and leave the window
/// as a fresh one would be (slots of forgotten keys are reused through it).
pub(crate) trait Window: std::fmt::Debug {
    fn reset(&mut self);
}

/// A window that only counts events (connections, matching packets).
#[derive(Debug, Default)]
pub(crate) struct Counter {
    pub n: u64,
}

impl Window for Counter {
    fn reset(&mut self) {
        self.n = 0;
    }
}

#[inline]
fn key_hash(k: &Key) -> u64 {
    use std::hash::BuildHasher as _;
    FxBuild::default().hash_one(k)
}

/// `lasts` value of a free slot.
const FREE: u64 = u64::MAX;

/// Bounded keyed state of one rule, with incident handling and LRU eviction.
///
/// Slots live in a slab; the index is a hash table of bare slot numbers (4 bytes a bucket, so
/// it stays in cache) compared through the slot's own key: a lookup touches one slot, which
/// the event needs anyway. Forgotten slots are reused with their allocations, and eviction
/// scans a dense array of last-update times instead of every slot.
#[derive(Debug)]
pub(crate) struct Tracker<W> {
    pub meta: Meta,
    /// Fx like the flow table: bounded by `max_keys`, so a collision attack costs time, not memory.
    index: hashbrown::HashTable<u32>,
    slots: Vec<Slot<W>>,
    /// Last update (packet time, ns) of each slot, `FREE` for free slots.
    lasts: Vec<u64>,
    free: Vec<u32>,
    max_keys: usize,
    evictions: u64,
    alerts: u64,
    make: fn(&Rule) -> W,
    rule: Rule,
}

impl<W: Window> Tracker<W> {
    pub fn new(rule: &Rule, max_keys: usize, make: fn(&Rule) -> W) -> Self {
        Tracker {
            meta: Meta::new(rule),
            index: hashbrown::HashTable::new(),
            slots: Vec::new(),
            lasts: Vec::new(),
            free: Vec::new(),
            max_keys: max_keys.max(1),
            evictions: 0,
            alerts: 0,
            make,
            rule: rule.clone(),
        }
    }

    pub fn keys(&self) -> usize {
        self.index.len()
    }
    pub fn evictions(&self) -> u64 {
        self.evictions
    }
    pub fn alerts(&self) -> u64 {
        self.alerts
    }

    /// A slot for a new key, reusing a free one (and its window's allocations).
    fn alloc(&mut self, key: Key, ts: Ts) -> u32 {
        match self.free.pop() {
            Some(i) => {
                let slot = &mut self.slots[i as usize];
                slot.key = key;
                slot.win.reset();
                slot.win_start = ts;
                slot.inc = None;
                self.lasts[i as usize] = ts.nanos();
                i
            }
            None => {
                let win = (self.make)(&self.rule);
                self.slots.push(Slot { key, win, win_start: ts, inc: None });
                self.lasts.push(ts.nanos());
                (self.slots.len() - 1) as u32
            }
        }
    }

    /// Slot number of `key`, if tracked.
    #[inline]
    fn find(&self, h: u64, key: &Key) -> Option<u32> {
        let slots = &self.slots;
        self.index.find(h, |&i| slots[i as usize].key == *key).copied()
    }

    /// Forget slot `i` (its key must be in the index); returns its incident.
    fn release(&mut self, i: u32) -> Option<Box<Incident>> {
        let slot = &mut self.slots[i as usize];
        if let Ok(e) = self.index.find_entry(key_hash(&slot.key), |&j| j == i) {
            e.remove();
        }
        self.lasts[i as usize] = FREE;
        self.free.push(i);
        slot.inc.take()
    }

    /// Record one event for `key`. While an incident is open the event only updates it;
    /// otherwise `update` adds the event to the window and returns `Some` when the
    /// threshold is crossed, which opens an incident and emits the alert.
    pub fn event(
        &mut self,
        key: Key,
        ts: Ts,
        ev: Ev,
        out: &mut Out<'_>,
        update: impl FnOnce(&mut W, Ts) -> Option<Fire>,
    ) {
        // One hash per event; the extra lookup only when the key is new and the table full.
        let h = key_hash(&key);
        let i = match self.find(h, &key) {
            Some(i) => i,
            None => {
                if self.index.len() >= self.max_keys {
                    self.evict(out);
                }
                let i = self.alloc(key, ts);
                let slots = &self.slots;
                self.index.insert_unique(h, i, |&j| key_hash(&slots[j as usize].key));
                i
            }
        } as usize;
        self.lasts[i] = ts.nanos();
        let slot = &mut self.slots[i];
        if let Some(inc) = &mut slot.inc {
            inc.add(ts, ev);
            return;
        }
        if ts.saturating_sub(slot.win_start) >= self.meta.window_ns {
            slot.win.reset();
            slot.win_start = ts;
        }
        if let Some(fire) = update(&mut slot.win, slot.win_start) {
            slot.inc = Some(Box::new(Incident::open(&self.meta, ts, fire, out)));
            self.alerts += 1;
        }
    }

    /// Mutate the window of an existing key (e.g. credit an answer) without creating it.
    pub fn with_existing(&mut self, key: &Key, f: impl FnOnce(&mut W)) {
        if let Some(i) = self.find(key_hash(key), key)
            && let Some(slot) = self.slots.get_mut(i as usize)
            && slot.inc.is_none()
        {
            f(&mut slot.win);
        }
    }

    /// Drop the least recently updated eighth of the keys (amortized O(1) per insert),
    /// closing their incidents; ties broken by key for determinism.
    fn evict(&mut self, out: &mut Out<'_>) {
        let mut live: Vec<(u64, u32)> =
            self.lasts.iter().enumerate().filter(|(_, t)| **t != FREE).map(|(i, t)| (*t, i as u32)).collect();
        if live.is_empty() {
            return;
        }
        let n = (live.len() / 8).max(1);
        // The n smallest by (time, key): everything older than the n-th smallest time, then
        // the smallest keys among those updated exactly at that time.
        let (_, &mut (cut, _), _) = live.select_nth_unstable(n - 1);
        let mut chosen: Vec<(u64, Key, u32)> =
            live.iter().filter(|(t, _)| *t < cut).map(|&(t, i)| (t, self.slots[i as usize].key, i)).collect();
        let mut ties: Vec<(u64, Key, u32)> = live
            .iter()
            .filter(|(t, _)| *t == cut)
            .map(|&(t, i)| (t, self.slots[i as usize].key, i))
            .collect();
        ties.sort_unstable();
        ties.truncate(n - chosen.len());
        chosen.extend(ties);
        // Released in slot order (which slots get reused first is never seen outside); only the
        // incidents they close are ordered, by (time, key), for their updates' output order.
        // Sorting all the chosen keys was a tenth of `alerts` on a spoofed flood.
        let mut closed: Vec<(u64, Key, Box<Incident>)> = Vec::new();
        for (t, key, i) in chosen {
            self.evictions += 1;
            if let Some(inc) = self.release(i) {
                closed.push((t, key, inc));
            }
        }
        closed.sort_unstable_by_key(|&(t, key, _)| (t, key));
        for (_, _, inc) in closed {
            out.sink.alert_update(inc.alert(&self.meta));
        }
    }

    /// Close incidents quiet for `suppress` and forget stale windows. Closed incidents
    /// are emitted sorted by key.
    pub fn expire(&mut self, now: Ts, out: &mut Out<'_>) {
        let suppress = self.meta.suppress_ns;
        let window = self.meta.window_ns;
        let mut closed: Vec<(Key, Box<Incident>)> = Vec::new();
        for i in 0..self.slots.len() {
            let last = self.lasts[i];
            if last == FREE {
                continue;
            }
            let slot = &self.slots[i];
            let drop = match &slot.inc {
                Some(inc) => now.saturating_sub(inc.last_ts) >= suppress,
                None => now.nanos().saturating_sub(last) >= window,
            };
            if drop {
                let key = slot.key;
                if let Some(inc) = self.release(i as u32) {
                    closed.push((key, inc));
                }
            }
        }
        closed.sort_unstable_by_key(|(k, _)| *k);
        for (_, inc) in closed {
            out.sink.alert_update(inc.alert(&self.meta));
        }
    }

    pub fn finish(&mut self, out: &mut Out<'_>) {
        let mut closed: Vec<(Key, Box<Incident>)> = Vec::new();
        for i in 0..self.slots.len() {
            if self.lasts[i] != FREE {
                let key = self.slots[i].key;
                if let Some(inc) = self.release(i as u32) {
                    closed.push((key, inc));
                }
            }
        }
        self.slots.clear();
        self.lasts.clear();
        self.free.clear();
        closed.sort_unstable_by_key(|(k, _)| *k);
        for (_, inc) in closed {
            out.sink.alert_update(inc.alert(&self.meta));
        }
    }
}

/// Seconds as f64 for stats and messages.
pub(crate) fn secs(ns: u64) -> f64 {
    ns as f64 / 1e9
}

/// Round for stats (3 decimals) so JSON output stays short and stable.
pub(crate) fn r3(x: f64) -> f64 {
    if x.is_finite() { (x * 1000.0).round() / 1000.0 } else { 0.0 }
}

pub(crate) fn stat(name: &str, v: f64) -> (String, f64) {
    (name.to_string(), r3(v))
}

/// A detector instance (one per enabled rule).
pub(crate) trait Detector: std::fmt::Debug + Send {
    fn on_packet(&mut self, cx: &PacketCtx<'_>, out: &mut Out<'_>);
    fn expire(&mut self, now: Ts, out: &mut Out<'_>);
    fn finish(&mut self, out: &mut Out<'_>);
    /// (tracked keys, evictions, alerts)
    fn counters(&self) -> (usize, u64, u64);
}

/// Delegates the bookkeeping methods of [`Detector`] to a `tracker` field.
macro_rules! tracker_common {
    () => {
        fn expire(&mut self, now: netrec_format::Ts, out: &mut $crate::detect::Out<'_>) {
            self.t.expire(now, out)
        }
        fn finish(&mut self, out: &mut $crate::detect::Out<'_>) {
            self.t.finish(out)
        }
        fn counters(&self) -> (usize, u64, u64) {
            (self.t.keys(), self.t.evictions(), self.t.alerts())
        }
    };
}
pub(crate) use tracker_common;

/// Build the detector for a rule.
pub(crate) fn build(rule: &Rule, max_keys: usize) -> Box<dyn Detector> {
    use crate::ruleset::DetectorKind as D;
    match rule.detector {
        D::SynFlood | D::UdpFlood | D::IcmpFlood | D::Volumetric | D::Amplification => {
            Box::new(flood::Flood::new(rule, max_keys))
        }
        D::PortScan => Box::new(scan::PortScan::new(rule, max_keys)),
        D::HostSweep => Box::new(scan::HostSweep::new(rule, max_keys)),
        D::TcpFlagAnomaly | D::Land | D::IpHeaderAnomaly => Box::new(anomaly::OneShot::new(rule, max_keys)),
        D::FragmentAnomaly => Box::new(anomaly::Fragments::new(rule, max_keys)),
        D::BruteForce => Box::new(misc::BruteForce::new(rule, max_keys)),
        D::DnsTunnel => Box::new(misc::DnsTunnel::new(rule, max_keys)),
        D::Blocklist => Box::new(misc::Blocklist::new(rule, max_keys)),
        D::Signature => Box::new(sig::Signature::new(rule, max_keys)),
    }
}

#[cfg(test)]
pub(crate) mod testutil;

#[cfg(test)]
mod prop;
#[cfg(test)]
mod tests;
