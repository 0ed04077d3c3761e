//! The engine: flow table + one detector per enabled rule, driven by packet time.

use crate::detect::{self, Detector, Out, PacketCtx};
use crate::flow::{FlowConfig, FlowTableStats};
use crate::ruleset::RuleSet;
use crate::sink::EngineSink;
use crate::split::Front;
use netrec_format::decode::Decoded;
use netrec_format::{PacketRef, Ts};

/// Resource bounds of one engine.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Keys (sources, targets, pairs, ...) each detector tracks at most; beyond it the
    /// least recently updated keys are evicted and counted.
    pub max_keys: usize,
    pub flow: FlowConfig,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_keys: 100_000, flow: FlowConfig::default() }
    }
}

/// Counters of one detector (one per enabled rule).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DetectorStats {
    pub rule_id: String,
    pub tracked_keys: u64,
    pub evictions: u64,
    pub alerts: u64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EngineStats {
    pub packets: u64,
    /// Packets whose timestamp was before the latest one seen (clamped).
    pub out_of_order: u64,
    pub alerts: u64,
    pub flows: FlowTableStats,
    pub detectors: Vec<DetectorStats>,
}

/// THE detection engine. See `docs/rules.md` for the semantics.
///
/// A [`Front`] (time, ticks, flow table) and one detector per enabled rule; `crate::split`
/// runs the same parts on several threads with identical output.
#[derive(Debug)]
pub struct Engine {
    rules: RuleSet,
    front: Front,
    detectors: Vec<(String, Box<dyn Detector>)>,
    next_id: u64,
}

impl Engine {
    pub fn new(rule_set: RuleSet, limits: Limits) -> Engine {
        let detectors = rule_set
            .rules()
            .iter()
            .filter(|r| r.enabled)
            .map(|r| (r.id.clone(), detect::build(r, limits.max_keys)))
            .collect();
        Engine { front: Front::new(&limits), rules: rule_set, detectors, next_id: 1 }
    }

    pub fn rule_set(&self) -> &RuleSet {
        &self.rules
    }

    /// Account one packet: flow table first, then every detector in rule order.
    pub fn process(&mut self, pkt: &PacketRef<'_>, dec: &Decoded, sink: &mut impl EngineSink) {
        let step = self.front.process(pkt, dec, &mut |r| sink.flow(r));
        let mut out = Out { next_id: &mut self.next_id, sink };
        if step.tick {
            for (_, d) in &mut self.detectors {
                d.expire(step.ts, &mut out);
            }
        }
        let pkt = PacketRef { ts: step.ts, ..*pkt };
        let cx = PacketCtx { ts: step.ts, pkt: &pkt, dec, flow: step.flow.as_ref() };
        for (_, d) in &mut self.detectors {
            d.on_packet(&cx, &mut out);
        }
    }

    /// Move packet time to `t` (never backwards): expire flows, then close quiet
    /// incidents and stale windows of each detector in rule order.
    pub fn advance_to(&mut self, t: Ts, sink: &mut impl EngineSink) {
        let t = self.front.advance_to(t, &mut |r| sink.flow(r));
        let mut out = Out { next_id: &mut self.next_id, sink };
        for (_, d) in &mut self.detectors {
            d.expire(t, &mut out);
        }
    }

    /// End of input: close every open incident (rule order, then key order), then emit
    /// every remaining flow (flow id order).
    pub fn finish(&mut self, sink: &mut impl EngineSink) {
        {
            let mut out = Out { next_id: &mut self.next_id, sink: &mut *sink };
            for (_, d) in &mut self.detectors {
                d.finish(&mut out);
            }
        }
        self.front.finish(&mut |r| sink.flow(r));
    }

    pub fn stats(&self) -> EngineStats {
        let detectors: Vec<DetectorStats> = self
            .detectors
            .iter()
            .map(|(id, d)| {
                let (keys, evictions, alerts) = d.counters();
                DetectorStats { rule_id: id.clone(), tracked_keys: keys as u64, evictions, alerts }
            })
            .collect();
        EngineStats {
            packets: self.front.packets(),
            out_of_order: self.front.out_of_order(),
            alerts: self.next_id - 1,
            flows: self.front.flow_stats(),
            detectors,
        }
    }
}

/// The detectors of a rule set without the flow table: for benchmarks and callers that
/// bring their own flow information. Same alert semantics as [`Engine`].
#[derive(Debug)]
pub struct DetectorSet {
    detectors: Vec<Box<dyn Detector>>,
    next_id: u64,
}

impl DetectorSet {
    pub fn new(rule_set: &RuleSet, max_keys: usize) -> DetectorSet {
        let detectors =
            rule_set.rules().iter().filter(|r| r.enabled).map(|r| detect::build(r, max_keys)).collect();
        DetectorSet { detectors, next_id: 1 }
    }
    /// `cx.ts` must be non-decreasing (the engine clamps it).
    pub fn on_packet(&mut self, cx: &PacketCtx<'_>, sink: &mut impl EngineSink) {
        let mut out = Out { next_id: &mut self.next_id, sink };
        for d in &mut self.detectors {
            d.on_packet(cx, &mut out);
        }
    }
    pub fn advance_to(&mut self, now: Ts, sink: &mut impl EngineSink) {
        let mut out = Out { next_id: &mut self.next_id, sink };
        for d in &mut self.detectors {
            d.expire(now, &mut out);
        }
    }
    pub fn finish(&mut self, sink: &mut impl EngineSink) {
        let mut out = Out { next_id: &mut self.next_id, sink };
        for d in &mut self.detectors {
            d.finish(&mut out);
        }
    }
}
