//! The engine cut into independent parts so a replay can use several cores, with output
//! identical to [`crate::Engine`].
//!
//! Detectors keep state per host, pair or service across many flows (a port scan is many
//! flows), so sharding packets by flow hash would change what they see. What is independent
//! is each rule's detector: every one sees every packet, in order, and shares nothing with
//! the others but the alert id counter. So the engine splits into:
//! - a [`Front`]: time clamping, the once-a-second tick and the flow table (flow records);
//! - [`Group`]s: disjoint subsets of the detectors, each fed the same [`Step`]s in order;
//!   alerts get group-local ids and a position tag (packet, phase, rule, sequence);
//! - a [`Merger`]: merges the groups' tagged output in position order, which is exactly the
//!   order the sequential engine calls its sink in, and assigns the global ids there.
//!
//! Pure like the rest of the crate: the caller owns the threads and channels.

use crate::detect::{self, Detector, Out, PacketCtx};
use crate::engine::Limits;
use crate::flow::{FlowTable, FlowTableStats, FlowUpdate};
use crate::ruleset::{DetectorKind, RuleSet};
use crate::sink::EngineSink;
use netrec_format::decode::Decoded;
use netrec_format::{Alert, FlowRecord, PacketRef, Ts};
use std::collections::HashMap;

const TICK_NS: u64 = 1_000_000_000;

/// What the front decided for one packet; the detectors need nothing else from it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Step {
    /// Packet time, clamped to be non-decreasing.
    pub ts: Ts,
    /// A tick precedes this packet: detectors expire up to `ts` before seeing it.
    pub tick: bool,
    pub flow: Option<FlowUpdate>,
}

/// Time clamping, ticks and the flow table.
#[derive(Debug)]
pub struct Front {
    flows: FlowTable,
    now: Ts,
    started: bool,
    last_tick: Ts,
    packets: u64,
    out_of_order: u64,
}

impl Front {
    pub fn new(limits: &Limits) -> Front {
        Front {
            flows: FlowTable::new(limits.flow.clone()),
            now: Ts::ZERO,
            started: false,
            last_tick: Ts::ZERO,
            packets: 0,
            out_of_order: 0,
        }
    }

    /// Account one packet; flows that end on a tick go to `flows`.
    pub fn process(&mut self, pkt: &PacketRef<'_>, dec: &Decoded, flows: &mut dyn FnMut(FlowRecord)) -> Step {
        self.packets += 1;
        let ts = if self.started && pkt.ts < self.now {
            self.out_of_order += 1;
            self.now
        } else {
            pkt.ts
        };
        if !self.started {
            self.started = true;
            self.now = ts;
            self.last_tick = ts;
        }
        let tick = ts.saturating_sub(self.last_tick) >= TICK_NS;
        if tick {
            self.advance_to(ts, flows);
        }
        self.now = ts;
        let flow = self.flows.update(&PacketRef { ts, ..*pkt }, dec);
        Step { ts, tick, flow }
    }

    /// Move time to `t` (never backwards) and expire flows; returns the time used.
    pub fn advance_to(&mut self, t: Ts, flows: &mut dyn FnMut(FlowRecord)) -> Ts {
        let t = t.max(self.now);
        self.now = t;
        self.started = true;
        self.last_tick = t;
        self.flows.expire(t, flows);
        t
    }

    pub fn finish(&mut self, flows: &mut dyn FnMut(FlowRecord)) {
        self.flows.finish(flows);
    }

    pub fn packets(&self) -> u64 {
        self.packets
    }
    pub fn out_of_order(&self) -> u64 {
        self.out_of_order
    }
    pub fn flow_stats(&self) -> FlowTableStats {
        self.flows.stats()
    }
}

/// When an alert event happened in the sequential engine's order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Pos {
    /// Packet index (0-based); `u64::MAX` for `finish`.
    pub packet: u64,
    /// 0: the tick before the packet; 1: the packet itself.
    pub phase: u8,
    /// Index of the detector among the enabled rules (rule order).
    pub rule: u32,
    /// Order within that one detector call.
    pub seq: u32,
}

/// One alert event of a group, with its group-local id.
#[derive(Clone, Debug)]
pub struct Tagged {
    pub pos: Pos,
    /// true: a new alert (takes the next global id); false: the final version of one.
    pub new: bool,
    pub alert: Alert,
}

/// Collects one detector call's alerts.
struct Collect<'a> {
    out: &'a mut Vec<Tagged>,
    pos: Pos,
}

impl Collect<'_> {
    fn push(&mut self, new: bool, alert: Alert) {
        self.out.push(Tagged { pos: self.pos, new, alert });
        self.pos.seq += 1;
    }
}

impl EngineSink for Collect<'_> {
    fn alert(&mut self, alert: Alert) {
        self.push(true, alert);
    }
    fn alert_update(&mut self, alert: Alert) {
        self.push(false, alert);
    }
    fn flow(&mut self, _: FlowRecord) {}
}

/// A subset of the detectors, fed every packet in order.
#[derive(Debug)]
pub struct Group {
    detectors: Vec<(u32, Box<dyn Detector>)>,
    next_id: u64,
    packet: u64,
    out: Vec<Tagged>,
}

/// Relative cost of a detector per packet, for balancing groups (measured on a realistic mix:
/// the volume detectors see every packet, the scan detectors most).
fn weight(kind: DetectorKind) -> u32 {
    match kind {
        DetectorKind::Volumetric => 4,
        DetectorKind::PortScan | DetectorKind::HostSweep => 2,
        DetectorKind::SynFlood | DetectorKind::UdpFlood => 2,
        _ => 1,
    }
}

/// The detectors of `rules` split into `n` groups of about equal cost (at least one group;
/// groups may be empty when there are fewer rules than groups).
pub fn split(rules: &RuleSet, limits: &Limits, n: usize) -> Vec<Group> {
    let n = n.max(1);
    let mut groups: Vec<Group> =
        (0..n).map(|_| Group { detectors: Vec::new(), next_id: 1, packet: 0, out: Vec::new() }).collect();
    let mut load = vec![0u32; n];
    let enabled: Vec<_> = rules.rules().iter().filter(|r| r.enabled).collect();
    // Heaviest first onto the lightest group; ties by rule order, so the split is deterministic.
    let mut order: Vec<usize> = (0..enabled.len()).collect();
    order.sort_by_key(|&i| (std::cmp::Reverse(weight(enabled[i].detector)), i));
    for i in order {
        let g = (0..n).min_by_key(|&g| (load[g], g)).unwrap_or(0);
        load[g] += weight(enabled[i].detector);
        groups[g].detectors.push((i as u32, detect::build(enabled[i], limits.max_keys)));
    }
    for g in &mut groups {
        g.detectors.sort_by_key(|(i, _)| *i);
    }
    groups
}

impl Group {
    /// Run this group's detectors on the next packet (as the front stepped it).
    pub fn step(&mut self, pkt: &PacketRef<'_>, dec: &Decoded, step: &Step) {
        let packet = self.packet;
        self.packet += 1;
        if step.tick {
            for (rule, d) in &mut self.detectors {
                let mut sink =
                    Collect { out: &mut self.out, pos: Pos { packet, phase: 0, rule: *rule, seq: 0 } };
                d.expire(step.ts, &mut Out { next_id: &mut self.next_id, sink: &mut sink });
            }
        }
        let pkt = PacketRef { ts: step.ts, ..*pkt };
        let cx = PacketCtx { ts: step.ts, pkt: &pkt, dec, flow: step.flow.as_ref() };
        for (rule, d) in &mut self.detectors {
            let mut sink = Collect { out: &mut self.out, pos: Pos { packet, phase: 1, rule: *rule, seq: 0 } };
            d.on_packet(&cx, &mut Out { next_id: &mut self.next_id, sink: &mut sink });
        }
    }

    /// End of input: close every open incident.
    pub fn finish(&mut self) {
        for (rule, d) in &mut self.detectors {
            let mut sink =
                Collect { out: &mut self.out, pos: Pos { packet: u64::MAX, phase: 0, rule: *rule, seq: 0 } };
            d.finish(&mut Out { next_id: &mut self.next_id, sink: &mut sink });
        }
    }

    /// Number of detectors in this group.
    pub fn len(&self) -> usize {
        self.detectors.len()
    }
    pub fn is_empty(&self) -> bool {
        self.detectors.is_empty()
    }

    /// The alert events since the last call, in position order.
    pub fn take(&mut self) -> Vec<Tagged> {
        std::mem::take(&mut self.out)
    }
}

/// Assigns global alert ids in the sequential engine's order.
#[derive(Debug)]
pub struct Merger {
    next_id: u64,
    /// (group, local id) -> global id of alerts whose final version is still to come.
    open: HashMap<(usize, u64), u64>,
}

impl Default for Merger {
    fn default() -> Self {
        Merger { next_id: 1, open: HashMap::new() }
    }
}

impl Merger {
    /// Merge the events the groups produced for the same packets (`parts[g]` from group `g`,
    /// each in position order) into `sink`.
    pub fn merge(&mut self, parts: Vec<Vec<Tagged>>, sink: &mut impl EngineSink) {
        let mut all: Vec<(Pos, usize, Tagged)> = Vec::with_capacity(parts.iter().map(Vec::len).sum());
        for (g, part) in parts.into_iter().enumerate() {
            all.extend(part.into_iter().map(|t| (t.pos, g, t)));
        }
        // Positions are unique across groups (a rule lives in one group): a stable sort by
        // position alone is the sequential order.
        all.sort_by_key(|(pos, _, _)| *pos);
        for (_, g, mut t) in all {
            if t.new {
                let id = self.next_id;
                self.next_id += 1;
                self.open.insert((g, t.alert.id), id);
                t.alert.id = id;
                sink.alert(t.alert);
            } else {
                // Every update follows its alert (same group, earlier position).
                let id = self.open.remove(&(g, t.alert.id)).unwrap_or(t.alert.id);
                t.alert.id = id;
                sink.alert_update(t.alert);
            }
        }
    }

    /// Alerts issued so far.
    pub fn alerts(&self) -> u64 {
        self.next_id - 1
    }
}
