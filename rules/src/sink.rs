//! The push-model output contract of the engine.
//!
//! Contract: the engine calls the sink synchronously, in a deterministic order that
//! depends only on the input. Flow records are emitted when a flow ends (timeout, TCP
//! close, eviction) or at `finish`.
//!
//! Alerts: [`EngineSink::alert`] is called once per incident, when a rule's threshold is
//! crossed for a key (ids are sequential per engine, starting at 1). When that incident
//! ends (the key was quiet for the rule's `suppress` time, its state was evicted, or at
//! `finish`), [`EngineSink::alert_update`] is called exactly once with the SAME id and
//! the final `last_ts`, `count`, `src`/`dst`/`dst_ports` and counts; every other field
//! is unchanged. A sink that stores alerts keeps the latest version per id; a sink that
//! only streams (e.g. a live console) may ignore updates (the default).

use netrec_format::{Alert, FlowRecord};

pub trait EngineSink {
    fn alert(&mut self, alert: Alert);
    fn flow(&mut self, flow: FlowRecord);
    /// Final version of an alert already passed to [`EngineSink::alert`] (same id).
    fn alert_update(&mut self, alert: Alert) {
        let _ = alert;
    }
}

/// Collects everything in memory (tests, small inputs); keeps the latest version of
/// each alert in first-emission order.
#[derive(Debug, Default)]
pub struct VecSink {
    pub alerts: Vec<Alert>,
    pub flows: Vec<FlowRecord>,
    /// Number of `alert_update` calls received.
    pub updates: u64,
}

impl EngineSink for VecSink {
    fn alert(&mut self, alert: Alert) {
        self.alerts.push(alert);
    }
    fn flow(&mut self, flow: FlowRecord) {
        self.flows.push(flow);
    }
    fn alert_update(&mut self, alert: Alert) {
        self.updates += 1;
        // Updates mostly concern recent alerts: search from the back.
        match self.alerts.iter_mut().rev().find(|a| a.id == alert.id) {
            Some(slot) => *slot = alert,
            None => self.alerts.push(alert),
        }
    }
}
